/*
 * The POP3 command parser and the message formatter: I/O-free, so both can
 * be tested byte by byte and fuzzed.
 *
 * The parser is fed bytes as they arrive, in pieces of any size, and
 * answers "need more", "a line is complete" or "the line was malformed".
 * A line ends in LF (one CR before it is removed as well). A complete line
 * is split into a keyword (upper-cased) and space-separated arguments; the
 * raw line stays available for the SASL response of AUTH and for PASS,
 * whose argument may hold spaces (RFC 1939 section 7). A line longer than
 * the limit is skipped up to its LF without being buffered, and reported
 * then: the session answers -ERR and goes on. The buffer is wiped on every
 * reset because lines carry passwords.
 *
 * The formatter turns a stored message into what RETR and TOP send: line
 * endings made CRLF, lines starting with '.' dot-stuffed (RFC 1939 section
 * 3), for TOP the header and at most n body lines, and the terminating
 * ".\r\n".
 */
#ifndef SEALPOST_POP3_PARSER_H
#define SEALPOST_POP3_PARSER_H

#include "core/core.h"

#include <stdbool.h>
#include <stddef.h>

/* Arguments kept (more are counted, not kept); no POP3 command takes more
 * than two. */
#define POP3_PARSER_MAX_ARGS 4
/* RFC 2449 keywords are 3 or 4 characters; anything up to this long is
 * still reported as a command (an unknown one), longer is malformed. */
#define POP3_PARSER_MAX_KEYWORD 16

enum pop3_parse_result {
	POP3_PARSE_DONE,      /* a line: read it, then reset */
	POP3_PARSE_NEED_MORE, /* every byte consumed; feed more */
	/* The line was malformed (see pop3_parser_error()). It has been
	 * consumed entirely: answer -ERR, reset, go on. */
	POP3_PARSE_ERROR,
};

enum pop3_parse_error {
	POP3_PARSE_ERR_NONE,
	POP3_PARSE_ERR_TOO_LONG, /* longer than max_line */
	POP3_PARSE_ERR_NUL,	 /* a NUL byte in the line */
	POP3_PARSE_ERR_EMPTY,	 /* nothing but spaces */
	POP3_PARSE_ERR_KEYWORD,	 /* keyword too long or not printable */
};

struct pop3_parser;

/* max_line: bytes of a line without its CRLF. The caller owns the parser
 * (pop3_parser_destroy). */
struct pop3_parser *pop3_parser_create(size_t max_line);
/* Wipes, frees, NULLs; accepts NULL. */
void pop3_parser_destroy(struct pop3_parser **parser);

/* Consumes bytes from data[0..len) and returns as soon as it has something
 * to say; *consumed_r is how many bytes it used (feed the rest again after
 * handling DONE or ERROR and resetting). */
enum pop3_parse_result pop3_parser_feed(struct pop3_parser *parser,
					const unsigned char *data, size_t len,
					size_t *consumed_r);
/* Raw mode (the SASL response after "AUTH PLAIN"): a complete line is
 * DONE without being split, so only pop3_parser_line() may be asked. */
void pop3_parser_set_raw(struct pop3_parser *parser, bool raw);
/* Forgets the line (wiping it) and starts the next. */
void pop3_parser_reset(struct pop3_parser *parser);

/* After DONE, valid until the next reset: */
/* The raw line without its line ending, and its length. */
const char *pop3_parser_line(const struct pop3_parser *parser, size_t *len_r);
/* The keyword in upper case (ASCII). */
const char *pop3_parser_keyword(const struct pop3_parser *parser);
/* The arguments after the keyword (runs of spaces separate them). */
const char *const *pop3_parser_args(const struct pop3_parser *parser,
				    unsigned *count_r);
/* Everything after the keyword and the one space after it, as sent ("" if
 * nothing): PASS's password may contain spaces. */
const char *pop3_parser_rest(const struct pop3_parser *parser);

/* After ERROR. */
enum pop3_parse_error pop3_parser_error(const struct pop3_parser *parser);
/* A short English text for the error. */
const char *pop3_parse_error_str(enum pop3_parse_error error);

/* A message number or line count argument: decimal digits only, no sign,
 * no leading '+', at most 10 digits and <= max. 0 or -1. */
int pop3_parse_number(const char *s, unsigned long max, unsigned long *n_r);

/* Appends the multi-line body of RETR (body_lines < 0) or TOP (header, the
 * empty line, then at most body_lines lines of the body) of `raw` to out:
 * CRLF line endings, dot-stuffing, and the terminating ".\r\n". A message
 * without an empty line is all header. */
void pop3_format_message(const char *raw, size_t len, long body_lines,
			 struct sp_buf *out);

#endif
