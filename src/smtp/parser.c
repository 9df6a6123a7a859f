/* The I/O-free SMTP command parser (RFC 5321 4.1, 4.1.2). */
#include "smtp-private.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SMTP_ADDRESS_MAX 256

static const struct {
	const char *name;
	enum smtp_verb verb;
} verbs[] = {
	{"EHLO", SMTP_VERB_EHLO}, {"HELO", SMTP_VERB_HELO},
	{"MAIL", SMTP_VERB_MAIL}, {"RCPT", SMTP_VERB_RCPT},
	{"DATA", SMTP_VERB_DATA}, {"RSET", SMTP_VERB_RSET},
	{"NOOP", SMTP_VERB_NOOP}, {"QUIT", SMTP_VERB_QUIT},
	{"VRFY", SMTP_VERB_VRFY}, {"HELP", SMTP_VERB_HELP},
	{"STARTTLS", SMTP_VERB_STARTTLS}, {"BDAT", SMTP_VERB_BDAT},
	{"AUTH", SMTP_VERB_AUTH}, {"EXPN", SMTP_VERB_EXPN},
};

void
smtp_command_clear(struct smtp_command *cmd)
{
	free(cmd->arg);
	free(cmd->address);
	free(cmd->envid);
	free(cmd->orcpt);
	memset(cmd, 0, sizeof(*cmd));
}

static const char *
skip_spaces(const char *p, const char *end)
{
	while (p < end && *p == ' ')
		p++;
	return p;
}

/* Parses "<path>" at *pp; a source route "@a,@b:" is dropped (RFC 5321
 * 4.1.1.3: MUST accept, SHOULD ignore). Quoted local parts may hold '>'
 * and escaped characters. */
static enum smtp_parse_result
parse_path(const char **pp, const char *end, bool allow_null,
	   struct smtp_command *cmd)
{
	const char *p = *pp, *start;
	bool quoted = false;
	size_t n;

	if (p >= end || *p != '<')
		return SMTP_PARSE_SYNTAX;
	p++;
	if (p < end && *p == '@') {
		/* A-d-l: skip to the ':' that ends it. */
		while (p < end && *p != ':' && *p != '>')
			p++;
		if (p >= end || *p != ':')
			return SMTP_PARSE_BAD_ADDRESS;
		p++;
	}
	start = p;
	for (; p < end; p++) {
		unsigned char c = (unsigned char)*p;

		if (quoted && c == '\\' && p + 1 < end) {
			p++;
			continue;
		}
		if (c == '"')
			quoted = !quoted;
		else if (!quoted && c == '>')
			break;
		else if (c < 0x21 && !(quoted && c == ' '))
			return SMTP_PARSE_BAD_ADDRESS;
		else if (c == 0x7f)
			return SMTP_PARSE_BAD_ADDRESS;
		if (c >= 0x80)
			cmd->address_utf8 = true;
	}
	if (p >= end)
		return SMTP_PARSE_SYNTAX;
	n = (size_t)(p - start);
	if (n > SMTP_ADDRESS_MAX)
		return SMTP_PARSE_BAD_ADDRESS;
	if (n == 0) {
		if (!allow_null)
			return SMTP_PARSE_BAD_ADDRESS;
	} else {
		const char *at = NULL;

		for (const char *q = start; q < p; q++)
			if (*q == '@')
				at = q;
		if (at == NULL || at == start || at + 1 == p)
			return SMTP_PARSE_BAD_ADDRESS;
	}
	cmd->address = xstrndup(start, n);
	*pp = p + 1;
	return SMTP_PARSE_OK;
}

static bool
parse_u64(const char *s, size_t len, uint64_t *value_r)
{
	uint64_t v = 0;

	if (len == 0 || len > 19)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (!isdigit((unsigned char)s[i]))
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*value_r = v;
	return true;
}

/* RFC 3461 4: xtext is printable ASCII but '+' and '=', with "+XX" (two
 * upper-case hex digits) for anything else. NULL when malformed or empty;
 * decoded bytes outside printable ASCII are refused too, since the values
 * end up in DSN header fields. */
static char *
xtext_decode(const char *s, size_t len)
{
	char *out = xmalloc(len + 1), *o = out;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '+') {
			unsigned v = 0;

			for (size_t k = 1; k <= 2; k++) {
				char h = i + k < len ? s[i + k] : '\0';

				if (h >= '0' && h <= '9')
					v = v * 16 + (unsigned)(h - '0');
				else if (h >= 'A' && h <= 'F')
					v = v * 16 + (unsigned)(h - 'A' + 10);
				else
					goto bad;
			}
			i += 2;
			c = (unsigned char)v;
		} else if (c < 0x21 || c > 0x7e || c == '=') {
			goto bad;
		}
		if (c < 0x20 || c > 0x7e)
			goto bad;
		*o++ = (char)c;
	}
	*o = '\0';
	if (o == out)
		goto bad;
	return out;
bad:
	free(out);
	return NULL;
}

/* NOTIFY=NEVER or a comma list of SUCCESS, FAILURE, DELAY. */
static bool
parse_notify(const char *s, size_t len, unsigned *notify_r)
{
	unsigned bits = 0;
	const char *end = s + len;

	while (s < end) {
		const char *comma = memchr(s, ',', (size_t)(end - s));
		size_t n = (size_t)((comma != NULL ? comma : end) - s);

		if (n == 5 && strncasecmp(s, "NEVER", 5) == 0)
			bits |= SMTP_NOTIFY_NEVER;
		else if (n == 7 && strncasecmp(s, "SUCCESS", 7) == 0)
			bits |= SMTP_NOTIFY_SUCCESS;
		else if (n == 7 && strncasecmp(s, "FAILURE", 7) == 0)
			bits |= SMTP_NOTIFY_FAILURE;
		else if (n == 5 && strncasecmp(s, "DELAY", 5) == 0)
			bits |= SMTP_NOTIFY_DELAY;
		else
			return false;
		s += n + (comma != NULL ? 1 : 0);
		if (comma != NULL && s == end)
			return false;
	}
	/* NEVER stands alone. */
	if (bits == 0 || ((bits & SMTP_NOTIFY_NEVER) && bits != SMTP_NOTIFY_NEVER))
		return false;
	*notify_r = bits;
	return true;
}

/* RCPT's NOTIFY and ORCPT. */
static enum smtp_parse_result
parse_rcpt_param(const char *w, size_t klen, const char *eq, size_t vlen,
		 struct smtp_command *cmd)
{
	if (eq == NULL)
		return SMTP_PARSE_SYNTAX;
	if (klen == 6 && strncasecmp(w, "NOTIFY", 6) == 0) {
		if (cmd->notify != 0 || !parse_notify(eq + 1, vlen, &cmd->notify))
			return SMTP_PARSE_SYNTAX;
	} else if (klen == 5 && strncasecmp(w, "ORCPT", 5) == 0) {
		const char *semi = memchr(eq + 1, ';', vlen);

		if (cmd->orcpt != NULL || semi == NULL || semi == eq + 1)
			return SMTP_PARSE_SYNTAX;
		cmd->orcpt = xtext_decode(eq + 1, vlen);
		if (cmd->orcpt == NULL)
			return SMTP_PARSE_SYNTAX;
	} else {
		return SMTP_PARSE_BAD_PARAM;
	}
	cmd->dsn = true;
	return SMTP_PARSE_OK;
}

/* "KEY=VALUE KEY ..." after the path. */
static enum smtp_parse_result
parse_params(const char *p, const char *end, bool is_mail,
	     struct smtp_command *cmd)
{
	while ((p = skip_spaces(p, end)) < end) {
		const char *w = p, *eq = NULL;
		size_t klen, vlen;

		while (p < end && *p != ' ') {
			if (*p == '=' && eq == NULL)
				eq = p;
			p++;
		}
		klen = (size_t)((eq != NULL ? eq : p) - w);
		vlen = eq != NULL ? (size_t)(p - eq - 1) : 0;
		if (!is_mail) {
			enum smtp_parse_result r =
				parse_rcpt_param(w, klen, eq, vlen, cmd);

			if (r != SMTP_PARSE_OK)
				return r;
			continue;
		}
		if (klen == 4 && strncasecmp(w, "SIZE", 4) == 0) {
			if (eq == NULL || !parse_u64(eq + 1, vlen, &cmd->size))
				return SMTP_PARSE_SYNTAX;
		} else if (klen == 4 && strncasecmp(w, "BODY", 4) == 0) {
			if (eq == NULL)
				return SMTP_PARSE_SYNTAX;
			if (vlen == 4 && strncasecmp(eq + 1, "7BIT", 4) == 0)
				cmd->body = SMTP_BODY_7BIT;
			else if (vlen == 8 &&
				 strncasecmp(eq + 1, "8BITMIME", 8) == 0)
				cmd->body = SMTP_BODY_8BITMIME;
			else
				return SMTP_PARSE_BAD_PARAM;
		} else if (klen == 8 && strncasecmp(w, "SMTPUTF8", 8) == 0 &&
			   eq == NULL) {
			cmd->smtputf8 = true;
		} else if (klen == 3 && strncasecmp(w, "RET", 3) == 0) {
			if (eq == NULL || cmd->ret != SMTP_RET_UNSPEC)
				return SMTP_PARSE_SYNTAX;
			if (vlen == 4 && strncasecmp(eq + 1, "FULL", 4) == 0)
				cmd->ret = SMTP_RET_FULL;
			else if (vlen == 4 &&
				 strncasecmp(eq + 1, "HDRS", 4) == 0)
				cmd->ret = SMTP_RET_HDRS;
			else
				return SMTP_PARSE_SYNTAX;
			cmd->dsn = true;
		} else if (klen == 5 && strncasecmp(w, "ENVID", 5) == 0) {
			/* RFC 3461 4.4: at most 100 characters. */
			if (eq == NULL || cmd->envid != NULL || vlen > 100 ||
			    (cmd->envid = xtext_decode(eq + 1, vlen)) == NULL)
				return SMTP_PARSE_SYNTAX;
			cmd->dsn = true;
		} else if (klen == 4 && strncasecmp(w, "AUTH", 4) == 0 &&
			   eq != NULL) {
			/* RFC 4954 5: accepted and, since we do not
			 * relay on a client's word, not acted on. */
		} else {
			return SMTP_PARSE_BAD_PARAM;
		}
	}
	return SMTP_PARSE_OK;
}

/* "FROM:" / "TO:" then optional spaces (a common deviation we accept). */
static enum smtp_parse_result
parse_mail_rcpt(const char *p, const char *end, bool is_mail,
		struct smtp_command *cmd)
{
	const char *kw = is_mail ? "FROM:" : "TO:";
	size_t kwlen = strlen(kw);
	enum smtp_parse_result ret;

	if ((size_t)(end - p) < kwlen || strncasecmp(p, kw, kwlen) != 0)
		return SMTP_PARSE_SYNTAX;
	p = skip_spaces(p + kwlen, end);
	ret = parse_path(&p, end, is_mail, cmd);
	if (ret != SMTP_PARSE_OK)
		return ret;
	if (p < end && *p != ' ')
		return SMTP_PARSE_SYNTAX;
	ret = parse_params(p, end, is_mail, cmd);
	if (ret != SMTP_PARSE_OK)
		return ret;
	if (is_mail && cmd->address_utf8 && !cmd->smtputf8)
		return SMTP_PARSE_NON_ASCII;
	return SMTP_PARSE_OK;
}

enum smtp_parse_result
smtp_command_parse(const char *line, size_t len, struct smtp_command *cmd_r)
{
	const char *end = line + len, *p = line, *rest;
	enum smtp_parse_result ret;
	size_t vlen;

	memset(cmd_r, 0, sizeof(*cmd_r));
	if (memchr(line, '\0', len) != NULL || memchr(line, '\r', len) != NULL)
		return SMTP_PARSE_SYNTAX;
	while (p < end && *p != ' ')
		p++;
	vlen = (size_t)(p - line);
	for (size_t i = 0; i < SP_N_ELEMENTS(verbs); i++) {
		if (strlen(verbs[i].name) == vlen &&
		    strncasecmp(line, verbs[i].name, vlen) == 0) {
			cmd_r->verb = verbs[i].verb;
			break;
		}
	}
	if (cmd_r->verb == SMTP_VERB_UNKNOWN)
		return SMTP_PARSE_UNKNOWN;
	rest = p < end ? p + 1 : end;

	switch (cmd_r->verb) {
	case SMTP_VERB_MAIL:
	case SMTP_VERB_RCPT:
		ret = parse_mail_rcpt(rest, end, cmd_r->verb == SMTP_VERB_MAIL,
				      cmd_r);
		if (ret != SMTP_PARSE_OK) {
			enum smtp_verb verb = cmd_r->verb;

			smtp_command_clear(cmd_r);
			cmd_r->verb = verb;
		}
		return ret;
	case SMTP_VERB_EHLO:
	case SMTP_VERB_HELO: {
		const char *a = skip_spaces(rest, end), *e = end;

		while (e > a && e[-1] == ' ')
			e--;
		if (a == e)
			return SMTP_PARSE_SYNTAX;
		cmd_r->arg = xstrndup(a, (size_t)(e - a));
		return SMTP_PARSE_OK;
	}
	case SMTP_VERB_DATA:
	case SMTP_VERB_RSET:
	case SMTP_VERB_QUIT:
	case SMTP_VERB_STARTTLS:
		if (skip_spaces(rest, end) != end)
			return SMTP_PARSE_SYNTAX;
		return SMTP_PARSE_OK;
	default:
		cmd_r->arg = xstrndup(rest, (size_t)(end - rest));
		return SMTP_PARSE_OK;
	}
}

int
smtp_address_split(const char *address, char **local_r, char **domain_r)
{
	const char *at = strrchr(address, '@');

	if (at == NULL || at == address || at[1] == '\0')
		return -1;
	*local_r = xstrndup(address, (size_t)(at - address));
	*domain_r = xstrdup(at + 1);
	return 0;
}
