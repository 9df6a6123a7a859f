/*
 * The IMAP command parser: I/O-free and incremental, after Dovecot's
 * lib-imap. Feed it bytes as they arrive, in pieces of any size; it answers
 * "a command is complete", "need more", "send a continuation for a
 * synchronizing literal" or an error, and takes its limits as parameters.
 *
 * One command line is parsed into a list of arguments: atoms (flags,
 * sequence sets, "BODY[HEADER.FIELDS (FROM)]<0.10>" -- inside [] an atom may
 * hold spaces and parentheses), quoted strings (\" and \\ escapes), literals
 * ({n} synchronizing, {n+} non-synchronizing, ~{n} literal8) and nested
 * parenthesised lists. The first two arguments are the tag and the command
 * name; the session interprets the rest. Lines of other shapes (IDLE's
 * DONE, AUTHENTICATE responses) are read by the session, not here.
 */
#ifndef SEALPOST_IMAP_PARSER_H
#define SEALPOST_IMAP_PARSER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum imap_arg_type {
	IMAP_ARG_ATOM,
	IMAP_ARG_STRING,  /* quoted */
	IMAP_ARG_LITERAL, /* {n} or ~{n}; may hold NULs */
	IMAP_ARG_LIST,
};

struct imap_arg {
	enum imap_arg_type type;
	bool literal8;
	/* ATOM, STRING, LITERAL: NUL-terminated, `len` bytes. */
	char *str;
	size_t len;
	/* LIST: the elements. */
	struct imap_arg *list;
	unsigned list_count;
};

struct imap_parser_limits {
	size_t max_line;	 /* bytes outside literals (64 KiB) */
	size_t max_literal;	 /* one literal, any command but APPEND */
	size_t max_append;	 /* one APPEND literal (APPENDLIMIT) */
	size_t max_literal_total; /* all literals of one non-APPEND command */
	unsigned max_literals;	  /* literals in one non-APPEND command */
	unsigned max_depth;	  /* list nesting */
};

enum imap_parse_result {
	IMAP_PARSE_DONE,     /* a whole command: read the args */
	IMAP_PARSE_NEED_MORE, /* every byte consumed; feed more */
	/* A synchronizing literal {n} was announced and fits the limits:
	 * send "+ ..." and keep feeding. */
	IMAP_PARSE_CONTINUE,
	/* The command is malformed. The bad line has been consumed (and any
	 * non-synchronizing literal in it): answer BAD, reset, go on. */
	IMAP_PARSE_ERROR,
	/* A synchronizing literal is too large: the client will send
	 * nothing more of this command. Answer (BAD/NO), reset, go on. */
	IMAP_PARSE_LITERAL_TOO_BIG,
	/* The stream cannot be resynchronised (line too long, a
	 * non-synchronizing literal over the limit): BYE and close. */
	IMAP_PARSE_FATAL,
};

struct imap_parser;

struct imap_parser *imap_parser_create(const struct imap_parser_limits *limits);
void imap_parser_destroy(struct imap_parser **parser);
void imap_parser_set_limits(struct imap_parser *parser,
			    const struct imap_parser_limits *limits);

/* Consumes bytes from data[0..len) and returns as soon as it has something
 * to say; *consumed_r is how many bytes it used (the rest must be fed
 * again). */
enum imap_parse_result imap_parser_feed(struct imap_parser *parser,
					const unsigned char *data, size_t len,
					size_t *consumed_r);
/* After DONE: the top-level arguments (tag, command, ...). Owned by the
 * parser until the next reset. */
const struct imap_arg *imap_parser_args(const struct imap_parser *parser,
					unsigned *count_r);
/* The tag once it has been read (for BAD replies), else NULL. */
const char *imap_parser_tag(const struct imap_parser *parser);
/* Why the last ERROR/FATAL/LITERAL_TOO_BIG happened (static text). */
const char *imap_parser_error(const struct imap_parser *parser);
/* Forgets the current command and starts a new one. */
void imap_parser_reset(struct imap_parser *parser);

/* Helpers on arguments. */
bool imap_arg_is_atom(const struct imap_arg *arg, const char *atom);
/* ATOM, STRING or LITERAL: astring. */
const char *imap_arg_astring(const struct imap_arg *arg);
bool imap_arg_is_nil(const struct imap_arg *arg);

/* ---- sequence sets ---- */

/* A parsed sequence set; `*` is stored as UINT32_MAX and ranges are
 * normalised (first <= last) but not merged. */
struct imap_seqset {
	struct imap_seq_range {
		uint32_t first, last;
	} *ranges;
	size_t count;
};

/* Parses "1,3:5,*,7:*,9:2". 0, or -1 when the syntax is bad (0 is not a
 * valid number). The caller frees with imap_seqset_clear(). */
int imap_seqset_parse(const char *str, struct imap_seqset *set_r);
void imap_seqset_clear(struct imap_seqset *set);
/* True when n is in the set, with `*` meaning `max`. */
bool imap_seqset_contains(const struct imap_seqset *set, uint32_t n,
			  uint32_t max);

#endif
