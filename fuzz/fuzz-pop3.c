/* libFuzzer target for the POP3 line parser and the RETR/TOP formatter.
 *
 * The input's first byte picks the line limit and a piece size; the parser
 * fed in pieces must give the same results, in the same order and with the
 * same bytes consumed, as fed whole. The formatter's output of the input
 * must end in ".\r\n", hold only CRLF line endings, and have no line that
 * is a lone "." before that end (a dot-stuffing failure would end the
 * reply early). */
#include "pop3/pop3-parser.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_RESULTS 4096

struct run {
	enum pop3_parse_result results[MAX_RESULTS];
	size_t ends[MAX_RESULTS];
	size_t count;
};

static void
parse(const unsigned char *in, size_t len, size_t max_line, size_t step,
      struct run *run)
{
	struct pop3_parser *p = pop3_parser_create(max_line);
	size_t pos = 0;

	run->count = 0;
	while (pos < len && run->count < MAX_RESULTS) {
		size_t n = step == 0 ? len - pos : step, used;
		enum pop3_parse_result r;

		if (n > len - pos)
			n = len - pos;
		r = pop3_parser_feed(p, in + pos, n, &used);
		if (used > n)
			abort();
		pos += used;
		if (r == POP3_PARSE_NEED_MORE) {
			if (used != n)
				abort();
			continue;
		}
		if (r == POP3_PARSE_DONE) {
			size_t line_len;
			const char *line = pop3_parser_line(p, &line_len);

			/* Within the limit, no NUL, ended by the LF. */
			if (line_len > max_line || strlen(line) != line_len ||
			    in[pos - 1] != '\n')
				abort();
		}
		run->results[run->count] = r;
		run->ends[run->count] = pos;
		run->count++;
		pop3_parser_reset(p);
		/* Every other line in raw mode, as AUTH's response would be. */
		pop3_parser_set_raw(p, run->count % 3 == 2);
	}
	pop3_parser_destroy(&p);
}

static void
check_format(const char *raw, size_t len, long lines)
{
	struct sp_buf out;

	sp_buf_init(&out);
	pop3_format_message(raw, len, lines, &out);
	if (out.len < 3 || memcmp(out.data + out.len - 3, ".\r\n", 3) != 0)
		abort();
	for (size_t i = 0; i < out.len; i++) {
		if (out.data[i] == '\n' && (i == 0 || out.data[i - 1] != '\r'))
			abort();
	}
	/* A lone "." line may only be the last one. */
	for (size_t i = 0; i + 3 < out.len; i++) {
		if ((i == 0 || out.data[i - 1] == '\n') &&
		    memcmp(out.data + i, ".\r\n", 3) == 0)
			abort();
	}
	sp_buf_deinit(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct run whole, pieces;
	size_t max_line, step;

	if (size == 0)
		return 0;
	max_line = 1 + data[0] % 64;
	step = 1 + (data[0] >> 6);
	parse(data + 1, size - 1, max_line, 0, &whole);
	parse(data + 1, size - 1, max_line, step, &pieces);
	if (whole.count != pieces.count)
		abort();
	for (size_t i = 0; i < whole.count; i++) {
		if (whole.results[i] != pieces.results[i] ||
		    whole.ends[i] != pieces.ends[i])
			abort();
	}
	check_format((const char *)data + 1, size - 1, -1);
	check_format((const char *)data + 1, size - 1, data[0] % 5);
	return 0;
}
