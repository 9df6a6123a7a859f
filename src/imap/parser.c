/* The incremental IMAP command parser (see imap-parser.h). */
#include "imap-parser.h"

#include "core/core.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum parser_state {
	ST_START, /* where an argument may begin */
	ST_AFTER, /* right after an argument */
	ST_ATOM,
	ST_QUOTED,
	ST_QUOTED_ESC,
	ST_TILDE,
	ST_LITSIZE,
	ST_LITPLUS,
	ST_LITEND_CR,
	ST_LITEND_LF,
	ST_LITDATA,
	ST_CR,
	ST_SKIP,
	ST_SKIP_LIT,
};

struct arg_list {
	struct imap_arg *args;
	unsigned count, cap;
};

struct imap_parser {
	struct imap_parser_limits limits;
	enum parser_state state;
	/* stack[0] is the top level; stack[depth] the innermost list. */
	struct arg_list *stack;
	unsigned depth, stack_cap;
	struct sp_buf tok;
	unsigned brackets;
	bool literal8, literal_sync;
	uint64_t literal_size, literal_left;
	size_t line_len;
	size_t literal_total;
	unsigned literal_count;
	bool is_append;
	const char *error;
	/* While skipping a bad line: a trailing {n} or {n+}. */
	enum { SK_NONE, SK_DIGITS, SK_PLUS, SK_CLOSED, SK_CR } skip_state;
	uint64_t skip_n;
	bool skip_sync;
	bool skip_digits_seen;
};

struct imap_parser *
imap_parser_create(const struct imap_parser_limits *limits)
{
	struct imap_parser *p = xcalloc(1, sizeof(*p));

	p->limits = *limits;
	p->stack_cap = 4;
	p->stack = xcalloc(p->stack_cap, sizeof(*p->stack));
	sp_buf_init(&p->tok);
	return p;
}

static void
args_free(struct imap_arg *args, unsigned count)
{
	for (unsigned i = 0; i < count; i++) {
		free(args[i].str);
		if (args[i].type == IMAP_ARG_LIST)
			args_free(args[i].list, args[i].list_count);
	}
	free(args);
}

void
imap_parser_reset(struct imap_parser *p)
{
	for (unsigned i = 0; i <= p->depth; i++) {
		args_free(p->stack[i].args, p->stack[i].count);
		memset(&p->stack[i], 0, sizeof(p->stack[i]));
	}
	p->depth = 0;
	p->state = ST_START;
	p->brackets = 0;
	p->line_len = 0;
	p->literal_total = 0;
	p->literal_count = 0;
	p->is_append = false;
	p->error = NULL;
	p->skip_state = SK_NONE;
	sp_buf_deinit(&p->tok);
	sp_buf_init(&p->tok);
}

void
imap_parser_destroy(struct imap_parser **_p)
{
	struct imap_parser *p = *_p;

	if (p == NULL)
		return;
	*_p = NULL;
	imap_parser_reset(p);
	sp_buf_deinit(&p->tok);
	free(p->stack);
	free(p);
}

void
imap_parser_set_limits(struct imap_parser *p,
		       const struct imap_parser_limits *limits)
{
	p->limits = *limits;
}

const struct imap_arg *
imap_parser_args(const struct imap_parser *p, unsigned *count_r)
{
	*count_r = p->stack[0].count;
	return p->stack[0].args;
}

const char *
imap_parser_tag(const struct imap_parser *p)
{
	if (p->stack[0].count > 0 && p->stack[0].args[0].type == IMAP_ARG_ATOM)
		return p->stack[0].args[0].str;
	return NULL;
}

const char *
imap_parser_error(const struct imap_parser *p)
{
	return p->error != NULL ? p->error : "Syntax error";
}

static bool
is_atom_char(unsigned char c)
{
	if (c <= 0x20 || c == 0x7f)
		return false;
	return c != '(' && c != ')' && c != '{' && c != '"';
}

static struct imap_arg *
push_arg(struct imap_parser *p, enum imap_arg_type type)
{
	struct arg_list *l = &p->stack[p->depth];
	struct imap_arg *arg;

	if (l->count == l->cap) {
		l->cap = l->cap == 0 ? 8 : l->cap * 2;
		l->args = xrealloc(l->args, l->cap * sizeof(*l->args));
	}
	arg = &l->args[l->count++];
	memset(arg, 0, sizeof(*arg));
	arg->type = type;
	return arg;
}

/* Turns the token buffer into an argument. Returns false with p->error on
 * a grammar error at the tag or command position. */
static bool
finish_token(struct imap_parser *p, enum imap_arg_type type)
{
	struct imap_arg *arg;
	size_t len;

	if (p->depth == 0 && p->stack[0].count < 2 && type != IMAP_ARG_ATOM) {
		p->error = p->stack[0].count == 0 ? "Invalid tag"
						  : "Invalid command";
		return false;
	}
	arg = push_arg(p, type);
	arg->literal8 = type == IMAP_ARG_LITERAL && p->literal8;
	if (p->tok.data == NULL)
		sp_buf_append(&p->tok, "", 0);
	arg->str = sp_buf_steal(&p->tok, &len);
	arg->len = len;
	if (p->depth == 0 && p->stack[0].count == 1) {
		if (strchr(arg->str, '+') != NULL || arg->len == 0) {
			p->error = "Invalid tag";
			return false;
		}
	}
	if (p->depth == 0 && p->stack[0].count == 2)
		p->is_append = strcasecmp(arg->str, "APPEND") == 0;
	return true;
}

static bool
open_list(struct imap_parser *p)
{
	if (p->depth == 0 && p->stack[0].count < 2) {
		p->error = "Invalid tag or command";
		return false;
	}
	if (p->depth >= p->limits.max_depth) {
		p->error = "Lists nested too deeply";
		return false;
	}
	if (p->depth + 1 >= p->stack_cap) {
		p->stack_cap *= 2;
		p->stack = xrealloc(p->stack, p->stack_cap * sizeof(*p->stack));
	}
	p->depth++;
	memset(&p->stack[p->depth], 0, sizeof(p->stack[p->depth]));
	return true;
}

static bool
close_list(struct imap_parser *p)
{
	struct arg_list inner;
	struct imap_arg *arg;

	if (p->depth == 0) {
		p->error = "Unexpected ')'";
		return false;
	}
	inner = p->stack[p->depth];
	memset(&p->stack[p->depth], 0, sizeof(p->stack[p->depth]));
	p->depth--;
	arg = push_arg(p, IMAP_ARG_LIST);
	arg->list = inner.args;
	arg->list_count = inner.count;
	return true;
}

/* Checks a literal announced as {literal_size}; returns a parse result or
 * -1 when it may be read. */
static int
check_literal(struct imap_parser *p)
{
	bool ok;

	if (p->depth == 0 && p->stack[0].count < 2) {
		p->error = "Invalid tag or command";
		return p->literal_sync ? IMAP_PARSE_ERROR : IMAP_PARSE_FATAL;
	}
	if (p->is_append) {
		ok = p->literal_size <= p->limits.max_append;
	} else {
		ok = p->literal_size <= p->limits.max_literal &&
		     p->literal_count < p->limits.max_literals &&
		     p->literal_total + p->literal_size <=
			     p->limits.max_literal_total;
	}
	if (!ok) {
		p->error = "Literal too large";
		return p->literal_sync ? IMAP_PARSE_LITERAL_TOO_BIG
				       : IMAP_PARSE_FATAL;
	}
	p->literal_count++;
	p->literal_total += p->literal_size;
	return -1;
}

/* Bad input at byte c: skip the rest of the line. Returns true when the
 * error is to be reported now (c ended the line). */
static bool
enter_skip(struct imap_parser *p, unsigned char c)
{
	if (p->error == NULL)
		p->error = "Syntax error";
	if (c == '\n')
		return true;
	p->state = ST_SKIP;
	p->skip_state = c == '{' ? SK_DIGITS : SK_NONE;
	p->skip_n = 0;
	p->skip_digits_seen = false;
	return false;
}

static void
skip_track(struct imap_parser *p, unsigned char c)
{
	switch (p->skip_state) {
	case SK_DIGITS:
		if (c >= '0' && c <= '9' && p->skip_n < (UINT64_MAX - 9) / 10) {
			p->skip_n = p->skip_n * 10 + (c - '0');
			p->skip_digits_seen = true;
			return;
		}
		if (c == '+' && p->skip_digits_seen) {
			p->skip_state = SK_PLUS;
			return;
		}
		if (c == '}' && p->skip_digits_seen) {
			p->skip_sync = true;
			p->skip_state = SK_CLOSED;
			return;
		}
		break;
	case SK_PLUS:
		if (c == '}') {
			p->skip_sync = false;
			p->skip_state = SK_CLOSED;
			return;
		}
		break;
	case SK_CLOSED:
		if (c == '\r') {
			p->skip_state = SK_CR;
			return;
		}
		break;
	default:
		break;
	}
	p->skip_state = SK_NONE;
	if (c == '{') {
		p->skip_state = SK_DIGITS;
		p->skip_n = 0;
		p->skip_digits_seen = false;
	}
}

enum imap_parse_result
imap_parser_feed(struct imap_parser *p, const unsigned char *data, size_t len,
		 size_t *consumed_r)
{
	size_t i = 0;

#define RETURN(result)                  \
	do {                            \
		*consumed_r = i;        \
		return (result);        \
	} while (0)
#define FAIL(c)                                    \
	do {                                       \
		if (enter_skip(p, (c)))            \
			RETURN(IMAP_PARSE_ERROR); \
		goto next;                         \
	} while (0)

	while (i < len) {
		unsigned char c = data[i];

		if (p->state == ST_LITDATA) {
			size_t n = len - i;

			if (n > p->literal_left)
				n = (size_t)p->literal_left;
			sp_buf_append(&p->tok, data + i, n);
			p->literal_left -= n;
			i += n;
			if (p->literal_left == 0) {
				if (!finish_token(p, IMAP_ARG_LITERAL)) {
					p->state = ST_SKIP;
					p->skip_state = SK_NONE;
				} else {
					p->state = ST_AFTER;
				}
			}
			continue;
		}
		if (p->state == ST_SKIP_LIT) {
			size_t n = len - i;

			if (n > p->skip_n)
				n = (size_t)p->skip_n;
			p->skip_n -= n;
			i += n;
			if (p->skip_n == 0) {
				p->state = ST_SKIP;
				p->skip_state = SK_NONE;
			}
			continue;
		}
		i++;
		if (p->state != ST_SKIP && ++p->line_len > p->limits.max_line) {
			p->error = "Line too long";
			RETURN(IMAP_PARSE_FATAL);
		}
		switch (p->state) {
		case ST_START:
		case ST_AFTER:
			if (c == ' ') {
				if (p->state == ST_START &&
				    p->stack[0].count == 0 && p->depth == 0)
					FAIL(c);
				p->state = ST_START;
				break;
			}
			if (c == '\r') {
				p->state = ST_CR;
				break;
			}
			if (c == '\n')
				goto end_of_line;
			if (c == ')') {
				if (!close_list(p))
					FAIL(c);
				p->state = ST_AFTER;
				break;
			}
			if (p->state == ST_AFTER) {
				p->error = "Missing space between arguments";
				FAIL(c);
			}
			if (c == '(') {
				if (!open_list(p))
					FAIL(c);
				p->state = ST_START;
			} else if (c == '"') {
				p->state = ST_QUOTED;
				sp_buf_append(&p->tok, "", 0);
			} else if (c == '{') {
				p->literal8 = false;
				p->literal_size = 0;
				p->state = ST_LITSIZE;
			} else if (c == '~') {
				p->state = ST_TILDE;
			} else if (is_atom_char(c)) {
				p->brackets = c == '[' ? 1 : 0;
				sp_buf_append(&p->tok, &c, 1);
				p->state = ST_ATOM;
			} else {
				FAIL(c);
			}
			break;
		case ST_ATOM:
			if (p->brackets > 0 && c != '\r' && c != '\n') {
				/* Spaces and parentheses, yes (a header
				 * list); control characters, no: a NUL
				 * would cut the atom short for every reader
				 * of arg->str (found by fuzz-imap). */
				if (c < 0x20 || c == 0x7f) {
					p->error = "Invalid character in atom";
					FAIL(c);
				}
				if (c == '[')
					p->brackets++;
				else if (c == ']')
					p->brackets--;
				sp_buf_append(&p->tok, &c, 1);
				break;
			}
			if (is_atom_char(c)) {
				if (c == '[')
					p->brackets++;
				sp_buf_append(&p->tok, &c, 1);
				break;
			}
			if (c != ' ' && c != ')' && c != '\r' && c != '\n') {
				p->error = "Invalid character in atom";
				FAIL(c);
			}
			if (p->brackets > 0) {
				p->error = "Unterminated [";
				FAIL(c);
			}
			if (!finish_token(p, IMAP_ARG_ATOM))
				FAIL(c);
			if (c == ' ') {
				p->state = ST_START;
			} else if (c == ')') {
				if (!close_list(p))
					FAIL(c);
				p->state = ST_AFTER;
			} else if (c == '\r') {
				p->state = ST_CR;
			} else {
				goto end_of_line;
			}
			break;
		case ST_QUOTED:
			if (c == '\\') {
				p->state = ST_QUOTED_ESC;
			} else if (c == '"') {
				if (!finish_token(p, IMAP_ARG_STRING))
					FAIL(c);
				p->state = ST_AFTER;
			} else if (c == '\r' || c == '\n' || c == '\0') {
				p->error = "Invalid character in quoted string";
				FAIL(c);
			} else {
				sp_buf_append(&p->tok, &c, 1);
			}
			break;
		case ST_QUOTED_ESC:
			if (c != '\\' && c != '"') {
				p->error = "Invalid escape in quoted string";
				FAIL(c);
			}
			sp_buf_append(&p->tok, &c, 1);
			p->state = ST_QUOTED;
			break;
		case ST_TILDE:
			if (c != '{') {
				/* "~" starting an atom (a mailbox name). */
				unsigned char t = '~';

				sp_buf_append(&p->tok, &t, 1);
				if (c == ' ' || c == '\r' || c == '\n' ||
				    c == ')') {
					i--;
					p->line_len--;
				} else if (is_atom_char(c)) {
					sp_buf_append(&p->tok, &c, 1);
				} else {
					FAIL(c);
				}
				p->brackets = 0;
				p->state = ST_ATOM;
				break;
			}
			p->literal8 = true;
			p->literal_size = 0;
			p->state = ST_LITSIZE;
			break;
		case ST_LITSIZE:
			if (c >= '0' && c <= '9') {
				if (p->literal_size > UINT32_MAX) {
					p->error = "Literal too large";
					RETURN(IMAP_PARSE_FATAL);
				}
				p->literal_size =
					p->literal_size * 10 + (c - '0');
				p->tok.len++; /* counts digits */
				break;
			}
			if (p->tok.len == 0) {
				p->error = "Invalid literal size";
				FAIL(c);
			}
			p->tok.len = 0;
			if (c == '+') {
				p->literal_sync = false;
				p->state = ST_LITPLUS;
			} else if (c == '}') {
				p->literal_sync = true;
				p->state = ST_LITEND_CR;
			} else {
				p->error = "Invalid literal size";
				FAIL(c);
			}
			break;
		case ST_LITPLUS:
			if (c != '}') {
				p->error = "Invalid literal size";
				FAIL(c);
			}
			p->state = ST_LITEND_CR;
			break;
		case ST_LITEND_CR:
			if (c == '\r') {
				p->state = ST_LITEND_LF;
				break;
			}
			/* fall through */
		case ST_LITEND_LF:
			if (c != '\n') {
				p->error = "Missing CRLF after literal size";
				FAIL(c);
			} else {
				int ret = check_literal(p);

				if (ret == IMAP_PARSE_ERROR) {
					/* The line is over (the client waits
					 * or sent a bad one); report now. */
					RETURN(IMAP_PARSE_ERROR);
				}
				if (ret >= 0)
					RETURN((enum imap_parse_result)ret);
				p->literal_left = p->literal_size;
				if (p->tok.data == NULL)
					sp_buf_append(&p->tok, "", 0);
				p->state = ST_LITDATA;
				if (p->literal_left == 0) {
					if (!finish_token(p, IMAP_ARG_LITERAL))
						FAIL(c);
					p->state = ST_AFTER;
				}
				if (p->literal_sync)
					RETURN(IMAP_PARSE_CONTINUE);
			}
			break;
		case ST_CR:
			if (c != '\n') {
				p->error = "CR without LF";
				FAIL(c);
			}
			goto end_of_line;
		case ST_SKIP:
			if (c != '\n') {
				skip_track(p, c);
				break;
			}
			if ((p->skip_state == SK_CLOSED ||
			     p->skip_state == SK_CR) &&
			    !p->skip_sync && p->skip_n > 0) {
				if (p->skip_n > p->limits.max_append) {
					p->error = "Literal too large";
					RETURN(IMAP_PARSE_FATAL);
				}
				p->state = ST_SKIP_LIT;
				break;
			}
			RETURN(IMAP_PARSE_ERROR);
		case ST_LITDATA:
		case ST_SKIP_LIT:
			SP_ASSERT(false);
		}
		continue;
	end_of_line:
		if (p->depth > 0) {
			p->error = "Unclosed list";
			RETURN(IMAP_PARSE_ERROR);
		}
		if (p->stack[0].count == 0) {
			/* An empty line: ignore it. */
			imap_parser_reset(p);
			continue;
		}
		if (p->stack[0].count < 2) {
			p->error = "Missing command";
			RETURN(IMAP_PARSE_ERROR);
		}
		RETURN(IMAP_PARSE_DONE);
	next:
		continue;
	}
	RETURN(IMAP_PARSE_NEED_MORE);
#undef RETURN
#undef FAIL
}

bool
imap_arg_is_atom(const struct imap_arg *arg, const char *atom)
{
	return arg->type == IMAP_ARG_ATOM && strcasecmp(arg->str, atom) == 0;
}

const char *
imap_arg_astring(const struct imap_arg *arg)
{
	if (arg->type == IMAP_ARG_LIST)
		return NULL;
	/* NULs cannot be part of a name or a password. */
	if (strlen(arg->str) != arg->len)
		return NULL;
	return arg->str;
}

bool
imap_arg_is_nil(const struct imap_arg *arg)
{
	return imap_arg_is_atom(arg, "NIL");
}

/* ---- sequence sets ---- */

static int
parse_seq_number(const char **p, uint32_t *n_r)
{
	const char *s = *p;
	uint64_t n = 0;

	if (*s == '*') {
		*n_r = UINT32_MAX;
		*p = s + 1;
		return 0;
	}
	if (*s < '1' || *s > '9')
		return -1;
	while (*s >= '0' && *s <= '9') {
		n = n * 10 + (uint64_t)(*s - '0');
		if (n >= UINT32_MAX)
			return -1;
		s++;
	}
	*n_r = (uint32_t)n;
	*p = s;
	return 0;
}

int
imap_seqset_parse(const char *str, struct imap_seqset *set_r)
{
	const char *p = str;
	size_t cap = 0;

	memset(set_r, 0, sizeof(*set_r));
	for (;;) {
		uint32_t a, b;

		if (parse_seq_number(&p, &a) < 0)
			goto fail;
		b = a;
		if (*p == ':') {
			p++;
			if (parse_seq_number(&p, &b) < 0)
				goto fail;
		}
		if (set_r->count == cap) {
			cap = cap == 0 ? 4 : cap * 2;
			set_r->ranges = xrealloc(set_r->ranges,
						 cap * sizeof(*set_r->ranges));
		}
		set_r->ranges[set_r->count].first = a < b ? a : b;
		set_r->ranges[set_r->count].last = a < b ? b : a;
		set_r->count++;
		if (*p == '\0')
			return 0;
		if (*p != ',')
			goto fail;
		p++;
	}
fail:
	imap_seqset_clear(set_r);
	return -1;
}

void
imap_seqset_clear(struct imap_seqset *set)
{
	free(set->ranges);
	set->ranges = NULL;
	set->count = 0;
}

bool
imap_seqset_contains(const struct imap_seqset *set, uint32_t n, uint32_t max)
{
	for (size_t i = 0; i < set->count; i++) {
		uint32_t a = set->ranges[i].first, b = set->ranges[i].last;

		if (a == UINT32_MAX)
			a = max;
		if (b == UINT32_MAX)
			b = max;
		if (a > b) {
			uint32_t t = a;

			a = b;
			b = t;
		}
		if (n >= a && n <= b)
			return true;
	}
	return false;
}
