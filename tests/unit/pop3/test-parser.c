/* The POP3 line parser, fed whole and byte by byte, and the RETR/TOP
 * formatter. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <limits.h>
#include <string.h>

#include <cmocka.h>

#include "pop3/pop3-parser.h"

#define MAX_LINE 40

/* Feeds `input` in pieces of `step` bytes (0: all at once), feeding again
 * what the parser did not consume, and returns the first result that is
 * not NEED_MORE with the bytes consumed up to it. */
static enum pop3_parse_result
feed(struct pop3_parser *p, const char *input, size_t len, size_t step,
     size_t *used_r)
{
	size_t pos = 0;

	while (pos < len) {
		size_t n = step == 0 ? len - pos : step, used;
		enum pop3_parse_result r;

		if (n > len - pos)
			n = len - pos;
		r = pop3_parser_feed(p, (const unsigned char *)input + pos, n,
				     &used);
		assert_true(used <= n);
		pos += used;
		if (r != POP3_PARSE_NEED_MORE) {
			*used_r = pos;
			return r;
		}
		assert_int_equal(used, n);
	}
	*used_r = pos;
	return POP3_PARSE_NEED_MORE;
}

static const size_t steps[] = {0, 1, 2, 3, 7};

/* Every step size gives the same result, consuming exactly the line. */
static void
check(const char *input, size_t expect_used, enum pop3_parse_result expect,
      void (*verify)(struct pop3_parser *p))
{
	for (size_t i = 0; i < SP_N_ELEMENTS(steps); i++) {
		struct pop3_parser *p = pop3_parser_create(MAX_LINE);
		size_t used;

		assert_int_equal(feed(p, input, strlen(input), steps[i], &used),
				 expect);
		assert_int_equal(used, expect_used);
		if (verify != NULL)
			verify(p);
		pop3_parser_destroy(&p);
		assert_null(p);
	}
}

static void
verify_stat(struct pop3_parser *p)
{
	unsigned argc;
	size_t len;

	assert_string_equal(pop3_parser_keyword(p), "STAT");
	pop3_parser_args(p, &argc);
	assert_int_equal(argc, 0);
	assert_string_equal(pop3_parser_line(p, &len), "stat");
	assert_int_equal(len, 4);
	assert_string_equal(pop3_parser_rest(p), "");
}

static void
test_keyword(void **state)
{
	check("stat\r\n", 6, POP3_PARSE_DONE, verify_stat);
	/* A bare LF ends a line too. */
	check("stat\n", 5, POP3_PARSE_DONE, verify_stat);
	/* Only the first line is consumed. */
	check("stat\r\nNOOP\r\n", 6, POP3_PARSE_DONE, verify_stat);
}

static void
verify_top(struct pop3_parser *p)
{
	unsigned argc;
	const char *const *args = pop3_parser_args(p, &argc);

	assert_string_equal(pop3_parser_keyword(p), "TOP");
	assert_int_equal(argc, 2);
	assert_string_equal(args[0], "1");
	assert_string_equal(args[1], "10");
	assert_string_equal(pop3_parser_rest(p), "1  10 ");
}

static void
test_args(void **state)
{
	/* Runs of spaces separate; trailing spaces are dropped. */
	check("Top 1  10 \r\n", 12, POP3_PARSE_DONE, verify_top);
}

static void
verify_pass(struct pop3_parser *p)
{
	unsigned argc;

	assert_string_equal(pop3_parser_keyword(p), "PASS");
	pop3_parser_args(p, &argc);
	assert_int_equal(argc, 3);
	/* RFC 1939 7: the password may contain spaces. */
	assert_string_equal(pop3_parser_rest(p), "a b  c");
}

static void
test_pass_spaces(void **state)
{
	check("PASS a b  c\r\n", 13, POP3_PARSE_DONE, verify_pass);
}

static void
verify_many(struct pop3_parser *p)
{
	unsigned argc;
	const char *const *args = pop3_parser_args(p, &argc);

	/* All are counted, the first POP3_PARSER_MAX_ARGS kept. */
	assert_int_equal(argc, 6);
	assert_string_equal(args[POP3_PARSER_MAX_ARGS - 1], "4");
}

static void
test_many_args(void **state)
{
	check("X 1 2 3 4 5 6\r\n", 15, POP3_PARSE_DONE, verify_many);
}

static void
expect_error(struct pop3_parser *p, enum pop3_parse_error error)
{
	assert_int_equal(pop3_parser_error(p), error);
	assert_non_null(pop3_parse_error_str(error));
}

static void
verify_too_long(struct pop3_parser *p)
{
	expect_error(p, POP3_PARSE_ERR_TOO_LONG);
}

static void
verify_empty(struct pop3_parser *p)
{
	expect_error(p, POP3_PARSE_ERR_EMPTY);
}

static void
verify_nul(struct pop3_parser *p)
{
	expect_error(p, POP3_PARSE_ERR_NUL);
}

static void
verify_keyword(struct pop3_parser *p)
{
	expect_error(p, POP3_PARSE_ERR_KEYWORD);
}

static void
verify_exact(struct pop3_parser *p)
{
	size_t len;

	pop3_parser_line(p, &len);
	assert_int_equal(len, MAX_LINE);
}

static void
test_errors(void **state)
{
	char line[200];

	/* Exactly the limit, with and without CR, is fine. */
	memset(line, 'A', MAX_LINE);
	strcpy(line + MAX_LINE, "\r\n");
	check(line, MAX_LINE + 2, POP3_PARSE_ERROR, verify_keyword);
	memcpy(line, "USER ", 5);
	check(line, MAX_LINE + 2, POP3_PARSE_DONE, verify_exact);
	strcpy(line + MAX_LINE, "\n");
	check(line, MAX_LINE + 1, POP3_PARSE_DONE, verify_exact);
	/* One byte more is too long, reported at its LF, whole line used. */
	memset(line, 'B', sizeof(line));
	strcpy(line + MAX_LINE + 1, "\r\n");
	check(line, MAX_LINE + 3, POP3_PARSE_ERROR, verify_too_long);
	memset(line, 'B', sizeof(line));
	strcpy(line + 150, "\r\nNOOP\r\n");
	check(line, 152, POP3_PARSE_ERROR, verify_too_long);
	check("\r\n", 2, POP3_PARSE_ERROR, verify_empty);
	check("   \r\n", 5, POP3_PARSE_ERROR, verify_empty);
	check("\x01STAT\r\n", 7, POP3_PARSE_ERROR, verify_keyword);
	check("ABCDEFGHIJKLMNOPQ\r\n", 19, POP3_PARSE_ERROR,
	      verify_keyword);
}

static void
test_nul(void **state)
{
	static const char input[] = "US\0ER x\r\nNOOP\r\n";

	for (size_t i = 0; i < SP_N_ELEMENTS(steps); i++) {
		struct pop3_parser *p = pop3_parser_create(MAX_LINE);
		size_t used;

		assert_int_equal(feed(p, input, sizeof(input) - 1, steps[i],
				      &used),
				 POP3_PARSE_ERROR);
		assert_int_equal(used, 9);
		verify_nul(p);
		pop3_parser_destroy(&p);
	}
}

/* After an error or a line, reset and the next line parses. */
static void
test_sequence(void **state)
{
	char input[300];
	struct pop3_parser *p = pop3_parser_create(MAX_LINE);
	size_t used, pos = 0, len;
	enum pop3_parse_result r;

	memset(input, 'x', 100);
	strcpy(input + 100, "\r\nLIST 2\r\nretr 1\r\n");
	len = strlen(input);
	r = feed(p, input, len, 1, &used);
	assert_int_equal(r, POP3_PARSE_ERROR);
	pos += used;
	pop3_parser_reset(p);
	r = feed(p, input + pos, len - pos, 1, &used);
	assert_int_equal(r, POP3_PARSE_DONE);
	assert_string_equal(pop3_parser_keyword(p), "LIST");
	pos += used;
	pop3_parser_reset(p);
	r = feed(p, input + pos, len - pos, 0, &used);
	assert_int_equal(r, POP3_PARSE_DONE);
	assert_string_equal(pop3_parser_keyword(p), "RETR");
	pos += used;
	assert_int_equal(pos, len);
	pop3_parser_destroy(&p);
}

static void
test_raw(void **state)
{
	struct pop3_parser *p = pop3_parser_create(MAX_LINE);
	static const char input[] = "AGFAYi5jAHNlY3JldCBwYXNzd29yZA==\r\n";
	size_t used, len;

	pop3_parser_set_raw(p, true);
	assert_int_equal(feed(p, input, strlen(input), 1, &used),
			 POP3_PARSE_DONE);
	assert_string_equal(pop3_parser_line(p, &len),
			    "AGFAYi5jAHNlY3JldCBwYXNzd29yZA==");
	pop3_parser_reset(p);
	pop3_parser_set_raw(p, false);
	assert_int_equal(feed(p, "*\r\n", 3, 0, &used), POP3_PARSE_DONE);
	assert_string_equal(pop3_parser_keyword(p), "*");
	pop3_parser_destroy(&p);
}

static void
test_number(void **state)
{
	unsigned long n;

	assert_int_equal(pop3_parse_number("1", 10, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(pop3_parse_number("0", 10, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(pop3_parse_number("010", 10, &n), 0);
	assert_int_equal(n, 10);
	assert_int_equal(pop3_parse_number("4294967295", UINT32_MAX, &n), 0);
	assert_int_equal(pop3_parse_number("4294967296", UINT32_MAX, &n), -1);
	assert_int_equal(pop3_parse_number("11", 10, &n), -1);
	assert_int_equal(pop3_parse_number("", 10, &n), -1);
	assert_int_equal(pop3_parse_number("-1", 10, &n), -1);
	assert_int_equal(pop3_parse_number("+1", 10, &n), -1);
	assert_int_equal(pop3_parse_number("1a", 10, &n), -1);
	assert_int_equal(pop3_parse_number("99999999999", ULONG_MAX, &n), -1);
}

static void
check_format(const char *raw, long lines, const char *expect)
{
	struct sp_buf out;

	sp_buf_init(&out);
	pop3_format_message(raw, strlen(raw), lines, &out);
	assert_string_equal(out.data, expect);
	sp_buf_deinit(&out);
}

static void
test_format(void **state)
{
	static const char msg[] = "Subject: x\r\n"
				  "\r\n"
				  "one\r\n"
				  ".two\r\n"
				  "..\r\n"
				  ".\r\n"
				  "three\r\n";

	check_format(msg, -1,
		     "Subject: x\r\n\r\none\r\n..two\r\n...\r\n..\r\n"
		     "three\r\n.\r\n");
	check_format(msg, 0, "Subject: x\r\n\r\n.\r\n");
	check_format(msg, 2, "Subject: x\r\n\r\none\r\n..two\r\n.\r\n");
	check_format(msg, 100,
		     "Subject: x\r\n\r\none\r\n..two\r\n...\r\n..\r\n"
		     "three\r\n.\r\n");
	/* Bare LF becomes CRLF; a last line without one gets one. */
	check_format("A: b\n\nx\n.y", -1, "A: b\r\n\r\nx\r\n..y\r\n.\r\n");
	/* No empty line: all header, TOP 0 sends it all. */
	check_format("A: b\r\nC: d\r\n", 0, "A: b\r\nC: d\r\n.\r\n");
	check_format("", -1, ".\r\n");
	/* A lone CR inside a line stays. */
	check_format("A: b\r\n\r\nx\ry\r\n", -1,
		     "A: b\r\n\r\nx\ry\r\n.\r\n");
	/* A dot-started header line is stuffed too. */
	check_format(".A: b\r\n", 0, "..A: b\r\n.\r\n");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keyword),
		cmocka_unit_test(test_args),
		cmocka_unit_test(test_pass_spaces),
		cmocka_unit_test(test_many_args),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_nul),
		cmocka_unit_test(test_sequence),
		cmocka_unit_test(test_raw),
		cmocka_unit_test(test_number),
		cmocka_unit_test(test_format),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
