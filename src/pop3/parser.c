/* The POP3 line parser and the RETR/TOP formatter: no I/O, no session. */
#include "pop3-parser.h"

#include <stdlib.h>
#include <string.h>

/* First allocation of the line buffer; it doubles up to max_line. */
#define POP3_PARSER_INITIAL 128

struct pop3_parser {
	size_t max_line;
	/* The line so far (raw, CR included) and the tokenised copy. */
	char *buf;
	size_t len, cap;
	char *tokens;
	bool skipping; /* over the limit: drop bytes up to the LF */
	bool saw_nul;
	bool done;
	bool raw;
	enum pop3_parse_error error;
	char keyword[POP3_PARSER_MAX_KEYWORD + 1];
	const char *args[POP3_PARSER_MAX_ARGS];
	unsigned argc;
	const char *rest;
};

struct pop3_parser *
pop3_parser_create(size_t max_line)
{
	struct pop3_parser *p = xcalloc(1, sizeof(*p));

	p->max_line = max_line;
	return p;
}

static void
wipe_free(char **buf, size_t len)
{
	if (*buf == NULL)
		return;
	explicit_bzero(*buf, len);
	free(*buf);
	*buf = NULL;
}

void
pop3_parser_destroy(struct pop3_parser **_p)
{
	struct pop3_parser *p = *_p;

	if (p == NULL)
		return;
	*_p = NULL;
	wipe_free(&p->buf, p->cap);
	wipe_free(&p->tokens, p->cap);
	free(p);
}

void
pop3_parser_reset(struct pop3_parser *p)
{
	/* Lines carry passwords (PASS, AUTH): nothing of one survives. */
	if (p->buf != NULL)
		explicit_bzero(p->buf, p->cap);
	if (p->tokens != NULL)
		explicit_bzero(p->tokens, p->cap);
	explicit_bzero(p->keyword, sizeof(p->keyword));
	p->len = 0;
	p->skipping = false;
	p->saw_nul = false;
	p->done = false;
	p->error = POP3_PARSE_ERR_NONE;
	p->argc = 0;
	p->rest = NULL;
}

/* Room for `more` bytes and a NUL, never beyond max_line + 2 (the CR that
 * may precede the LF, and the NUL). */
static void
reserve(struct pop3_parser *p, size_t more)
{
	size_t need = p->len + more + 1, cap;
	char *nbuf;

	if (need <= p->cap)
		return;
	cap = p->cap != 0 ? p->cap : POP3_PARSER_INITIAL;
	while (cap < need)
		cap *= 2;
	if (cap > p->max_line + 2)
		cap = p->max_line + 2;
	SP_ASSERT(cap >= need);
	/* Copy by hand so the old buffer can be wiped. */
	nbuf = xmalloc(cap);
	if (p->len > 0)
		memcpy(nbuf, p->buf, p->len);
	wipe_free(&p->buf, p->cap);
	wipe_free(&p->tokens, p->cap);
	p->buf = nbuf;
	p->tokens = xmalloc(cap);
	p->cap = cap;
}

static enum pop3_parse_result
fail(struct pop3_parser *p, enum pop3_parse_error error)
{
	p->error = error;
	return POP3_PARSE_ERROR;
}

/* Splits the finished line into keyword and arguments. */
static enum pop3_parse_result
tokenize(struct pop3_parser *p)
{
	char *s, *kw;
	size_t kwlen;

	memcpy(p->tokens, p->buf, p->len + 1);
	s = p->tokens;
	while (*s == ' ')
		s++;
	if (*s == '\0')
		return fail(p, POP3_PARSE_ERR_EMPTY);
	kw = s;
	while (*s != '\0' && *s != ' ')
		s++;
	kwlen = (size_t)(s - kw);
	if (kwlen > POP3_PARSER_MAX_KEYWORD)
		return fail(p, POP3_PARSE_ERR_KEYWORD);
	for (size_t i = 0; i < kwlen; i++) {
		unsigned char c = (unsigned char)kw[i];

		if (c < 0x21 || c > 0x7e)
			return fail(p, POP3_PARSE_ERR_KEYWORD);
		p->keyword[i] = (char)(c >= 'a' && c <= 'z' ? c - 32 : c);
	}
	p->keyword[kwlen] = '\0';
	/* The raw rest of the line, after exactly one space. */
	p->rest = p->buf + (s - p->tokens) + (*s == ' ' ? 1 : 0);
	while (*s != '\0') {
		while (*s == ' ')
			*s++ = '\0';
		if (*s == '\0')
			break;
		if (p->argc < POP3_PARSER_MAX_ARGS)
			p->args[p->argc] = s;
		p->argc++;
		while (*s != '\0' && *s != ' ')
			s++;
	}
	p->done = true;
	return POP3_PARSE_DONE;
}

static enum pop3_parse_result
finish_line(struct pop3_parser *p)
{
	if (p->skipping)
		return fail(p, POP3_PARSE_ERR_TOO_LONG);
	if (p->len > 0 && p->buf[p->len - 1] == '\r')
		p->len--;
	if (p->len > p->max_line)
		return fail(p, POP3_PARSE_ERR_TOO_LONG);
	if (p->saw_nul)
		return fail(p, POP3_PARSE_ERR_NUL);
	reserve(p, 0);
	p->buf[p->len] = '\0';
	if (p->raw) {
		p->done = true;
		return POP3_PARSE_DONE;
	}
	return tokenize(p);
}

enum pop3_parse_result
pop3_parser_feed(struct pop3_parser *p, const unsigned char *data, size_t len,
		 size_t *consumed_r)
{
	const unsigned char *lf;
	size_t take;

	SP_ASSERT(!p->done && p->error == POP3_PARSE_ERR_NONE);
	lf = memchr(data, '\n', len);
	take = lf != NULL ? (size_t)(lf - data) : len;
	*consumed_r = lf != NULL ? take + 1 : len;
	if (!p->skipping) {
		/* max_line + 1 bytes may be a full line and its CR. */
		if (take > p->max_line + 1 - p->len) {
			p->skipping = true;
			if (p->buf != NULL)
				explicit_bzero(p->buf, p->cap);
			p->len = 0;
		} else if (take > 0) {
			reserve(p, take);
			if (memchr(data, '\0', take) != NULL)
				p->saw_nul = true;
			memcpy(p->buf + p->len, data, take);
			p->len += take;
		}
	}
	if (lf == NULL)
		return POP3_PARSE_NEED_MORE;
	return finish_line(p);
}

const char *
pop3_parser_line(const struct pop3_parser *p, size_t *len_r)
{
	SP_ASSERT(p->done);
	*len_r = p->len;
	return p->buf;
}

void
pop3_parser_set_raw(struct pop3_parser *p, bool raw)
{
	p->raw = raw;
}

const char *
pop3_parser_keyword(const struct pop3_parser *p)
{
	SP_ASSERT(p->done && !p->raw);
	return p->keyword;
}

const char *const *
pop3_parser_args(const struct pop3_parser *p, unsigned *count_r)
{
	SP_ASSERT(p->done && !p->raw);
	*count_r = p->argc;
	return p->args;
}

const char *
pop3_parser_rest(const struct pop3_parser *p)
{
	SP_ASSERT(p->done && !p->raw);
	return p->rest;
}

enum pop3_parse_error
pop3_parser_error(const struct pop3_parser *p)
{
	return p->error;
}

const char *
pop3_parse_error_str(enum pop3_parse_error error)
{
	switch (error) {
	case POP3_PARSE_ERR_NONE:
		return "No error";
	case POP3_PARSE_ERR_TOO_LONG:
		return "Line too long";
	case POP3_PARSE_ERR_NUL:
		return "NUL byte in command";
	case POP3_PARSE_ERR_EMPTY:
		return "Empty command";
	case POP3_PARSE_ERR_KEYWORD:
		return "Invalid command";
	}
	return "Invalid command";
}

int
pop3_parse_number(const char *s, unsigned long max, unsigned long *n_r)
{
	unsigned long n = 0;
	size_t i;

	for (i = 0; s[i] != '\0'; i++) {
		if (s[i] < '0' || s[i] > '9' || i >= 10)
			return -1;
		n = n * 10 + (unsigned long)(s[i] - '0');
	}
	if (i == 0 || n > max)
		return -1;
	*n_r = n;
	return 0;
}

void
pop3_format_message(const char *raw, size_t len, long body_lines,
		    struct sp_buf *out)
{
	const char *p = raw, *end = raw + len;
	bool in_header = true;
	long lines = 0;

	while (p < end) {
		const char *lf = memchr(p, '\n', (size_t)(end - p));
		const char *next = lf != NULL ? lf + 1 : end;
		size_t n = (size_t)((lf != NULL ? lf : end) - p);

		if (n > 0 && p[n - 1] == '\r')
			n--;
		if (!in_header && body_lines >= 0 && lines++ >= body_lines)
			break;
		if (n > 0 && p[0] == '.')
			sp_buf_append(out, ".", 1);
		sp_buf_append(out, p, n);
		sp_buf_append(out, "\r\n", 2);
		if (in_header && n == 0)
			in_header = false;
		p = next;
	}
	sp_buf_append(out, ".\r\n", 3);
}
