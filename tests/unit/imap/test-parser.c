/* The IMAP parser, fed whole and byte by byte (as Dovecot's
 * test-imap-parser.c does). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "imap/imap-parser.h"

static const struct imap_parser_limits limits = {
	.max_line = 200,
	.max_literal = 100,
	.max_append = 1000,
	.max_literal_total = 150,
	.max_literals = 3,
	.max_depth = 3,
};

/* Feeds `input` in pieces of `step` bytes (0: all at once), answering
 * continuations; returns the first result that is not NEED_MORE or
 * CONTINUE, and the bytes consumed through *used_r. */
static enum imap_parse_result
feed(struct imap_parser *p, const char *input, size_t len, size_t step,
     size_t *used_r, unsigned *continues_r)
{
	size_t pos = 0;
	unsigned continues = 0;

	while (pos < len) {
		size_t n = step == 0 ? len - pos : step, used;
		enum imap_parse_result r;

		if (n > len - pos)
			n = len - pos;
		/* The parser may consume less than it was given: feed the
		 * rest again, as the session does. */
		r = imap_parser_feed(p, (const unsigned char *)input + pos, n,
				     &used);
		pos += used;
		if (r == IMAP_PARSE_CONTINUE) {
			continues++;
			continue;
		}
		if (r != IMAP_PARSE_NEED_MORE) {
			*used_r = pos;
			if (continues_r != NULL)
				*continues_r = continues;
			return r;
		}
		assert_int_equal(used, n);
	}
	*used_r = pos;
	if (continues_r != NULL)
		*continues_r = continues;
	return IMAP_PARSE_NEED_MORE;
}

static void
check_both(const char *input, enum imap_parse_result expect,
	   void (*verify)(struct imap_parser *p))
{
	size_t steps[] = {0, 1, 2, 3, 7};

	for (size_t s = 0; s < sizeof(steps) / sizeof(steps[0]); s++) {
		struct imap_parser *p = imap_parser_create(&limits);
		size_t used;
		enum imap_parse_result r =
			feed(p, input, strlen(input), steps[s], &used, NULL);

		assert_int_equal(r, expect);
		if (verify != NULL)
			verify(p);
		imap_parser_destroy(&p);
		assert_null(p);
	}
}

static void
verify_simple(struct imap_parser *p)
{
	unsigned n;
	const struct imap_arg *a = imap_parser_args(p, &n);

	assert_int_equal(n, 4);
	assert_string_equal(a[0].str, "a1");
	assert_true(imap_arg_is_atom(&a[1], "login"));
	assert_int_equal(a[2].type, IMAP_ARG_STRING);
	assert_string_equal(a[2].str, "us\"er\\x");
	assert_int_equal(a[3].type, IMAP_ARG_LITERAL);
	assert_int_equal(a[3].len, 5);
	assert_memory_equal(a[3].str, "pa\0ss", 5);
}

static void
test_simple(void **state)
{
	static const char in[] = "a1 LOGIN \"us\\\"er\\\\x\" {5}\r\npa\0ss\r\n";
	size_t steps[] = {0, 1, 2, 5};

	/* strlen() would stop at the NUL: feed by size. */
	for (size_t s = 0; s < 4; s++) {
		struct imap_parser *p = imap_parser_create(&limits);
		size_t used;
		unsigned continues;

		assert_int_equal(feed(p, in, sizeof(in) - 1, steps[s], &used,
				      &continues),
				 IMAP_PARSE_DONE);
		assert_int_equal(used, sizeof(in) - 1);
		assert_int_equal(continues, 1);
		verify_simple(p);
		imap_parser_destroy(&p);
	}
}

static void
verify_lists(struct imap_parser *p)
{
	unsigned n;
	const struct imap_arg *a = imap_parser_args(p, &n);

	assert_int_equal(n, 4);
	assert_string_equal(a[2].str, "1:*,5:3");
	assert_int_equal(a[3].type, IMAP_ARG_LIST);
	assert_int_equal(a[3].list_count, 4);
	assert_string_equal(a[3].list[0].str, "FLAGS");
	assert_string_equal(a[3].list[1].str,
			    "BODY.PEEK[HEADER.FIELDS (FROM TO)]<0.10>");
	assert_int_equal(a[3].list[2].type, IMAP_ARG_LIST);
	assert_int_equal(a[3].list[2].list_count, 0);
	assert_int_equal(a[3].list[3].type, IMAP_ARG_LIST);
	assert_int_equal(a[3].list[3].list_count, 2);
	assert_string_equal(a[3].list[3].list[1].list[0].str, "x");
}

static void
test_lists(void **state)
{
	check_both("t FETCH 1:*,5:3 (FLAGS BODY.PEEK[HEADER.FIELDS (FROM TO)]"
		   "<0.10> () (\\Seen (x)))\r\n",
		   IMAP_PARSE_DONE, verify_lists);
}

static void
verify_nonsync(struct imap_parser *p)
{
	unsigned n;
	const struct imap_arg *a = imap_parser_args(p, &n);

	assert_int_equal(n, 3);
	assert_string_equal(a[2].str, "abc");
	assert_int_equal(a[2].type, IMAP_ARG_LITERAL);
}

static void
test_nonsync_literal(void **state)
{
	check_both("x SELECT {3+}\r\nabc\r\n", IMAP_PARSE_DONE,
		   verify_nonsync);
	/* Bare LF line endings are accepted too. */
	check_both("x SELECT {3+}\nabc\n", IMAP_PARSE_DONE, verify_nonsync);
}

static void
verify_tag(struct imap_parser *p)
{
	assert_string_equal(imap_parser_tag(p), "a");
}

static void
test_errors(void **state)
{
	check_both("a FETCH (1\r\n", IMAP_PARSE_ERROR, verify_tag);
	check_both("a FETCH 1)\r\n", IMAP_PARSE_ERROR, verify_tag);
	check_both("a LOGIN \"x\\y\" z\r\n", IMAP_PARSE_ERROR, verify_tag);
	check_both("a LOGIN \"x\r\n", IMAP_PARSE_ERROR, verify_tag);
	check_both("a NOOP \"x\"y\r\n", IMAP_PARSE_ERROR, verify_tag);
	check_both("a\r\n", IMAP_PARSE_ERROR, verify_tag);
	check_both("a+ NOOP\r\n", IMAP_PARSE_ERROR, NULL);
	check_both("(a) NOOP\r\n", IMAP_PARSE_ERROR, NULL);
	check_both("a X (((( x))))\r\n", IMAP_PARSE_ERROR, verify_tag);
	check_both("a X {x}\r\n", IMAP_PARSE_ERROR, verify_tag);
	check_both("a X \x01\r\n", IMAP_PARSE_ERROR, verify_tag);
	/* Control characters inside [] too (found by fuzz-imap: a NUL cut
	 * the atom short). */
	check_both("a FETCH 1 BODY[HEADER.FIELDS (F\x01)]\r\n",
		   IMAP_PARSE_ERROR, verify_tag);
	/* A sync literal over the limit is refused before any data. */
	check_both("a X {101}\r\n", IMAP_PARSE_LITERAL_TOO_BIG, verify_tag);
	/* ...but APPEND has its own limit. */
	check_both("a APPEND INBOX {101}\r\n", IMAP_PARSE_NEED_MORE, NULL);
	check_both("a APPEND INBOX {1001}\r\n", IMAP_PARSE_LITERAL_TOO_BIG,
		   NULL);
	/* Too many literals, or too many bytes of them, in one command. */
	check_both("a X {1+}\r\na {1+}\r\nb {1+}\r\nc {1+}\r\nd\r\n",
		   IMAP_PARSE_FATAL, NULL);
	check_both("a X {100+}\r\n", IMAP_PARSE_NEED_MORE, NULL);
	check_both("a X {100}\r\n", IMAP_PARSE_NEED_MORE, NULL);
	check_both("a X {101+}\r\n", IMAP_PARSE_FATAL, NULL);
}

static void
test_line_too_long(void **state)
{
	char line[400];

	memset(line, 'x', sizeof(line) - 1);
	line[sizeof(line) - 1] = '\0';
	memcpy(line, "a NOOP ", 7);
	check_both(line, IMAP_PARSE_FATAL, NULL);
}

/* After an error the parser skips the bad line (and a non-synchronizing
 * literal announced at its end), then parses the next command. */
static void
test_recovery(void **state)
{
	static const char in[] = "a X \"bad\\q\" {4+}\r\n)))\r\nb NOOP\r\n";
	size_t steps[] = {0, 1, 3};

	for (size_t s = 0; s < 3; s++) {
		struct imap_parser *p = imap_parser_create(&limits);
		size_t used, used2;
		unsigned n;
		const struct imap_arg *a;

		assert_int_equal(feed(p, in, sizeof(in) - 1, steps[s], &used,
				      NULL),
				 IMAP_PARSE_ERROR);
		imap_parser_reset(p);
		assert_int_equal(feed(p, in + used, sizeof(in) - 1 - used,
				      steps[s], &used2, NULL),
				 IMAP_PARSE_DONE);
		a = imap_parser_args(p, &n);
		assert_int_equal(n, 2);
		assert_string_equal(a[0].str, "b");
		imap_parser_destroy(&p);
	}
}

static void
test_empty_lines_and_literal8(void **state)
{
	struct imap_parser *p = imap_parser_create(&limits);
	static const char in[] = "\r\n\r\nc APPEND INBOX ~{2+}\r\nhi\r\n";
	size_t used;
	unsigned n;
	const struct imap_arg *a;

	assert_int_equal(feed(p, in, sizeof(in) - 1, 1, &used, NULL),
			 IMAP_PARSE_DONE);
	a = imap_parser_args(p, &n);
	assert_int_equal(n, 4);
	assert_true(a[3].literal8);
	assert_string_equal(a[3].str, "hi");
	imap_parser_destroy(&p);
}

static void
test_seqset(void **state)
{
	struct imap_seqset set;

	assert_int_equal(imap_seqset_parse("1,3:5,7:*,10:8", &set), 0);
	assert_int_equal(set.count, 4);
	assert_int_equal(set.ranges[3].first, 8);
	assert_int_equal(set.ranges[3].last, 10);
	assert_int_equal(set.ranges[2].last, UINT32_MAX);
	assert_true(imap_seqset_contains(&set, 4, 20));
	assert_false(imap_seqset_contains(&set, 6, 20));
	assert_true(imap_seqset_contains(&set, 20, 20));
	imap_seqset_clear(&set);
	/* "*:4" with * = 2 is 2:4. */
	assert_int_equal(imap_seqset_parse("*:4", &set), 0);
	assert_true(imap_seqset_contains(&set, 3, 2));
	assert_false(imap_seqset_contains(&set, 1, 2));
	imap_seqset_clear(&set);
	assert_int_equal(imap_seqset_parse("0", &set), -1);
	assert_int_equal(imap_seqset_parse("1,", &set), -1);
	assert_int_equal(imap_seqset_parse("1:", &set), -1);
	assert_int_equal(imap_seqset_parse("", &set), -1);
	assert_int_equal(imap_seqset_parse("a", &set), -1);
	assert_int_equal(imap_seqset_parse("4294967296", &set), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_simple),
		cmocka_unit_test(test_lists),
		cmocka_unit_test(test_nonsync_literal),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_line_too_long),
		cmocka_unit_test(test_recovery),
		cmocka_unit_test(test_empty_lines_and_literal8),
		cmocka_unit_test(test_seqset),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
