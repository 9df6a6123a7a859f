/* libFuzzer target for the IMAP command parser and the modified UTF-7
 * mailbox name codec.
 *
 * The input's first byte picks the limits (small, so that every limit is
 * reached) and a piece size; the parser fed in pieces must give the same
 * results, consume the same bytes and produce the same arguments as fed
 * whole. Every completed command must respect the limits: a tag and a
 * command atom first, no NUL outside literals, nesting and literal sizes
 * within bounds. Every string argument goes through the mUTF-7 codec:
 * whatever decodes must encode to something that decodes to the same
 * text, and whatever is encoded must decode again. */
#include "imap/imap-mutf7.h"
#include "imap/imap-parser.h"

#include "core/core.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_RESULTS 1024

struct run {
	enum imap_parse_result results[MAX_RESULTS];
	size_t ends[MAX_RESULTS];
	size_t count;
	struct sp_buf args; /* every DONE command's arguments, serialised */
};

static void
check_mutf7(const char *s)
{
	const char *error = NULL;
	char *dec = imap_mutf7_decode(s, &error), *enc, *dec2;

	if (dec != NULL) {
		enc = imap_mutf7_encode(dec);
		dec2 = imap_mutf7_decode(enc, &error);
		if (dec2 == NULL || strcmp(dec, dec2) != 0)
			abort();
		free(enc);
		free(dec2);
		free(dec);
	} else if (error == NULL || error[0] == '\0') {
		abort();
	}
	/* Any bytes encode (bad UTF-8 as U+FFFD) into valid mUTF-7 made of
	 * printable ASCII, and that is a fixed point. */
	enc = imap_mutf7_encode(s);
	for (const char *p = enc; *p != '\0'; p++) {
		if (*p < 0x20 || *p > 0x7e)
			abort();
	}
	dec = imap_mutf7_decode(enc, &error);
	if (dec == NULL)
		abort();
	dec2 = imap_mutf7_encode(dec);
	if (strcmp(enc, dec2) != 0)
		abort();
	free(dec2);
	free(dec);
	free(enc);
}

static void
check_args(const struct imap_arg *args, unsigned count, unsigned depth,
	   const struct imap_parser_limits *limits, struct sp_buf *out)
{
	if (depth > limits->max_depth)
		abort();
	for (unsigned i = 0; i < count; i++) {
		const struct imap_arg *a = &args[i];

		sp_buf_printf(out, "%d:%d:%zu:", (int)a->type, (int)a->literal8,
			      a->len);
		if (a->type == IMAP_ARG_LIST) {
			if (a->str != NULL)
				abort();
			sp_buf_append_str(out, "(");
			check_args(a->list, a->list_count, depth + 1, limits,
				   out);
			sp_buf_append_str(out, ")");
			continue;
		}
		if (a->str == NULL || a->str[a->len] != '\0')
			abort();
		if (a->type != IMAP_ARG_LITERAL &&
		    (strlen(a->str) != a->len || a->len > limits->max_line))
			abort();
		if (a->type == IMAP_ARG_ATOM && a->len == 0)
			abort();
		sp_buf_append(out, a->str, a->len);
		if (imap_arg_astring(a) != NULL)
			check_mutf7(a->str);
	}
}

static void
parse(const unsigned char *in, size_t len,
      const struct imap_parser_limits *limits, size_t step, struct run *run)
{
	struct imap_parser *p = imap_parser_create(limits);
	size_t pos = 0;

	run->count = 0;
	sp_buf_reset(&run->args);
	while (pos < len && run->count < MAX_RESULTS) {
		size_t n = step == 0 ? len - pos : step, used;
		enum imap_parse_result r;

		if (n > len - pos)
			n = len - pos;
		r = imap_parser_feed(p, in + pos, n, &used);
		if (used > n)
			abort();
		pos += used;
		if (r == IMAP_PARSE_NEED_MORE) {
			if (used != n)
				abort();
			continue;
		}
		run->results[run->count] = r;
		run->ends[run->count] = pos;
		run->count++;
		if (r == IMAP_PARSE_CONTINUE)
			continue;
		if (r == IMAP_PARSE_DONE) {
			unsigned count;
			const struct imap_arg *args =
				imap_parser_args(p, &count);

			if (count < 2 || args[0].type != IMAP_ARG_ATOM ||
			    args[1].type != IMAP_ARG_ATOM ||
			    imap_parser_tag(p) == NULL || in[pos - 1] != '\n')
				abort();
			check_args(args, count, 0, limits, &run->args);
			sp_buf_append_str(&run->args, "\n");
		}
		if (r == IMAP_PARSE_FATAL)
			break;
		/* As the session does after answering. */
		imap_parser_reset(p);
	}
	imap_parser_destroy(&p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct run whole, pieces;
	struct imap_parser_limits limits;

	if (size < 2)
		return 0;
	limits.max_line = 16 + (data[0] & 0x0f) * 16;
	limits.max_literal = 1 + (data[1] & 0x07) * 8;
	limits.max_append = 64 + (data[1] >> 3) * 4;
	limits.max_literal_total = limits.max_literal * 2;
	limits.max_literals = 1 + (data[1] & 0x03);
	limits.max_depth = 1 + ((data[0] >> 4) & 0x03);
	parse(data + 2, size - 2, &limits, 0, &whole);
	parse(data + 2, size - 2, &limits, 1 + (data[0] >> 6), &pieces);
	if (whole.count != pieces.count || whole.args.len != pieces.args.len ||
	    (whole.args.len > 0 &&
	     memcmp(whole.args.data, pieces.args.data, whole.args.len) != 0))
		abort();
	for (size_t i = 0; i < whole.count; i++) {
		if (whole.results[i] != pieces.results[i] ||
		    whole.ends[i] != pieces.ends[i])
			abort();
	}
	return 0;
}
