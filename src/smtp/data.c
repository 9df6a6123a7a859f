/*
 * The DATA reader and the DATA encoder.
 *
 * Reader states, per byte (see smtp.h for the policy):
 *   LINE_START  at the start of a line; real_break tells whether the line
 *               began after CR LF on the wire (or is the first line)
 *   LINE_DOT    a "." at the start of a line, not yet collected
 *   DOT_CR      "." CR at the start of a line that began after a real
 *               CR LF: one LF more and DATA is over
 *   IN_LINE     inside a line
 *   CR          a CR inside a line, waiting to see whether LF follows
 * A line break that is not CR LF on the wire is collected as CR LF but
 * leaves real_break false, so the "." line after it is content.
 */
#include "smtp-private.h"

#include <sodium.h>
#include <string.h>

enum {
	DATA_LINE_START,
	DATA_LINE_DOT,
	DATA_DOT_CR,
	DATA_IN_LINE,
	DATA_CR,
};

void
smtp_data_reader_init(struct smtp_data_reader *reader, size_t max_size,
		      size_t max_header)
{
	memset(reader, 0, sizeof(*reader));
	reader->state = DATA_LINE_START;
	reader->real_break = true;
	reader->max_size = max_size;
	reader->max_header = max_header;
	sp_buf_init(&reader->content);
}

void
smtp_data_reader_deinit(struct smtp_data_reader *reader)
{
	if (reader->content.data != NULL)
		sodium_memzero(reader->content.data, reader->content.cap);
	sp_buf_deinit(&reader->content);
}

static void
collect(struct smtp_data_reader *r, const char *p, size_t n)
{
	r->total += n;
	if (r->error != SMTP_DATA_ERR_NONE)
		return;
	if (r->max_size != 0 && r->total > r->max_size) {
		r->error = SMTP_DATA_ERR_TOO_BIG;
		return;
	}
	if (!r->header_done && r->max_header != 0 &&
	    r->content.len + n > r->max_header) {
		r->error = SMTP_DATA_ERR_HEADER_BIG;
		return;
	}
	sp_buf_append(&r->content, p, n);
}

static void
collect_break(struct smtp_data_reader *r, bool real)
{
	if (r->line_len == 0)
		r->header_done = true; /* the empty line ends the header */
	collect(r, "\r\n", 2);
	r->line_len = 0;
	r->real_break = real;
	r->state = DATA_LINE_START;
}

static void
collect_char(struct smtp_data_reader *r, char c)
{
	collect(r, &c, 1);
	r->line_len++;
}

/* One byte in LINE_START or IN_LINE (the states without pending input). */
static void
plain_byte(struct smtp_data_reader *r, char c)
{
	if (c == '\r') {
		r->state = DATA_CR;
	} else if (c == '\n') {
		collect_break(r, false); /* bare LF */
	} else if (c == '.' && r->state == DATA_LINE_START) {
		r->state = DATA_LINE_DOT;
	} else {
		collect_char(r, c);
		r->state = DATA_IN_LINE;
	}
}

bool
smtp_data_reader_feed(struct smtp_data_reader *r, const char *in, size_t len,
		      size_t *consumed_r)
{
	for (size_t i = 0; i < len; i++) {
		char c = in[i];

		switch (r->state) {
		case DATA_LINE_START:
		case DATA_IN_LINE:
			plain_byte(r, c);
			break;
		case DATA_LINE_DOT:
			if (c == '\r' && r->real_break) {
				r->state = DATA_DOT_CR;
			} else if (c == '\r' || c == '\n') {
				/* A lone "." line that does not end DATA
				 * stays content, unstuffed or not: keep it. */
				collect_char(r, '.');
				r->state = DATA_IN_LINE;
				plain_byte(r, c);
			} else {
				/* Dot-unstuffing: the leading dot goes. */
				collect_char(r, c);
				r->state = DATA_IN_LINE;
			}
			break;
		case DATA_DOT_CR:
			if (c == '\n') {
				*consumed_r = i + 1;
				return true;
			}
			/* "." then a bare CR: content. */
			collect_char(r, '.');
			collect_break(r, false);
			plain_byte(r, c);
			break;
		case DATA_CR:
			if (c == '\n') {
				collect_break(r, true);
			} else {
				collect_break(r, false); /* bare CR */
				plain_byte(r, c);
			}
			break;
		}
	}
	*consumed_r = len;
	return false;
}

void
smtp_data_encode(const char *msg, size_t len, struct sp_buf *out)
{
	bool line_start = true;

	for (size_t i = 0; i < len; i++) {
		char c = msg[i];

		if (line_start && c == '.')
			sp_buf_append(out, ".", 1);
		if (c == '\r') {
			if (i + 1 < len && msg[i + 1] == '\n')
				i++;
			sp_buf_append(out, "\r\n", 2);
			line_start = true;
		} else if (c == '\n') {
			sp_buf_append(out, "\r\n", 2);
			line_start = true;
		} else {
			sp_buf_append(out, &c, 1);
			line_start = false;
		}
	}
	if (!line_start)
		sp_buf_append(out, "\r\n", 2);
}
