/* SPF (RFC 7208): check_host() with the limits of 4.6.4 (10 DNS-querying
 * terms, 2 void look-ups, 10 MX and 10 PTR names) and macros (7). */
#include "mailauth/mailauth-private.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#define SPF_MAX_TERMS 10
#define SPF_MAX_VOID  2
#define SPF_MAX_NAMES 10
#define SPF_MAX_DEPTH 20

struct spf_ctx {
	struct mailauth_dns *dns;
	const struct mailauth_spf_request *req;
	char *sender; /* local@domain */
	char *sender_local;
	char *sender_domain;
	unsigned int terms;
	unsigned int voids;
	char *ptr_name; /* %{p}, computed on first use */
	const char *reason;
	char *explanation;
};

/* Thrown results travel as this enum; MAILAUTH_NONE from a mechanism means
 * "no match". */
#define SPF_NOMATCH MAILAUTH_NONE

static enum mailauth_result check_host(struct spf_ctx *ctx, const char *domain,
				       unsigned int depth, bool top);

static bool
ip_in_cidr(const struct mailauth_ip *ip, const struct mailauth_ip *net,
	   unsigned int bits)
{
	unsigned int full = bits / 8, rest = bits % 8;

	if (ip->family != net->family)
		return false;
	if (memcmp(ip->addr, net->addr, full) != 0)
		return false;
	if (rest == 0)
		return true;
	return ((ip->addr[full] ^ net->addr[full]) & (0xff << (8 - rest)) &
		0xff) == 0;
}

/* Counts a DNS-querying term; false (permerror) past the limit. */
static bool
count_term(struct spf_ctx *ctx)
{
	if (++ctx->terms > SPF_MAX_TERMS) {
		ctx->reason = "too many DNS lookups";
		return false;
	}
	return true;
}

/* A look-up with no answer counts towards the void limit. Returns -1
 * (permerror, reason set) past it, -2 on tempfail, else 0. */
static int
note_status(struct spf_ctx *ctx, enum mailauth_dns_status st)
{
	if (st == MAILAUTH_DNS_TEMPFAIL) {
		ctx->reason = "DNS failure";
		return -2;
	}
	if (st == MAILAUTH_DNS_NODATA || st == MAILAUTH_DNS_NXDOMAIN) {
		if (++ctx->voids > SPF_MAX_VOID) {
			ctx->reason = "too many void lookups";
			return -1;
		}
	}
	return 0;
}

static enum mailauth_result
status_error(int rc)
{
	return rc == -2 ? MAILAUTH_TEMPERROR : MAILAUTH_PERMERROR;
}

/* Macros (RFC 7208 7). */

static void
ip_macro_i(const struct mailauth_ip *ip, struct sp_buf *out)
{
	if (ip->family == AF_INET) {
		sp_buf_printf(out, "%u.%u.%u.%u", ip->addr[0], ip->addr[1],
			      ip->addr[2], ip->addr[3]);
		return;
	}
	for (int i = 0; i < 16; i++)
		sp_buf_printf(out, "%s%x.%x", i == 0 ? "" : ".",
			      ip->addr[i] >> 4, ip->addr[i] & 0xf);
}

static const char *validated_ptr(struct spf_ctx *ctx, const char *domain);

static bool
is_delim(char c)
{
	return c != '\0' && strchr(".-+,/_=", c) != NULL;
}

static void
url_escape(const char *s, struct sp_buf *out)
{
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (isalnum(c) || strchr("-._~", c) != NULL)
			sp_buf_append(out, s, 1);
		else
			sp_buf_printf(out, "%%%02X", c);
	}
}

/* Applies digits/r/delimiters to value; appends to out. */
static void
macro_transform(const char *value, unsigned int digits, bool reverse,
		const char *delims, struct sp_buf *out, bool escape)
{
	char *copy = xstrdup(value), **parts = NULL;
	size_t n = 0, first;
	struct sp_buf joined;
	char *p = copy, *start = copy;

	for (;; p++) {
		if (*p == '\0' || strchr(delims, *p) != NULL) {
			bool end = *p == '\0';

			*p = '\0';
			parts = xrealloc(parts, (n + 1) * sizeof(char *));
			parts[n++] = start;
			start = p + 1;
			if (end)
				break;
		}
	}
	if (reverse) {
		for (size_t i = 0; i < n / 2; i++) {
			char *t = parts[i];

			parts[i] = parts[n - 1 - i];
			parts[n - 1 - i] = t;
		}
	}
	first = digits > 0 && digits < n ? n - digits : 0;
	sp_buf_init(&joined);
	for (size_t i = first; i < n; i++)
		sp_buf_printf(&joined, "%s%s", i == first ? "" : ".", parts[i]);
	if (escape)
		url_escape(joined.data, out);
	else
		sp_buf_append(out, joined.data, joined.len);
	sp_buf_deinit(&joined);
	free(parts);
	free(copy);
}

/* Expands a macro-string. exp: the explanation's extra letters c, r, t are
 * allowed. Returns NULL (reason set) on a syntax error. */
static char *
macro_expand(struct spf_ctx *ctx, const char *spec, const char *domain,
	     bool exp)
{
	struct sp_buf out;
	const char *p = spec;

	sp_buf_init(&out);
	while (*p != '\0') {
		char letter, delims[8];
		unsigned int digits = 0;
		bool reverse = false, upper;
		size_t nd = 0;
		struct sp_buf val;

		if (*p != '%') {
			if ((unsigned char)*p < 0x21 && !exp)
				goto bad;
			sp_buf_append(&out, p++, 1);
			continue;
		}
		p++;
		if (*p == '%') {
			sp_buf_append(&out, "%", 1);
			p++;
			continue;
		}
		if (*p == '_') {
			sp_buf_append(&out, " ", 1);
			p++;
			continue;
		}
		if (*p == '-') {
			sp_buf_append(&out, "%20", 3);
			p++;
			continue;
		}
		if (*p != '{')
			goto bad;
		p++;
		if (*p == '\0')
			goto bad;
		letter = *p++;
		upper = isupper((unsigned char)letter);
		letter = (char)tolower((unsigned char)letter);
		while (isdigit((unsigned char)*p)) {
			digits = digits * 10 + (unsigned int)(*p - '0');
			if (digits > 128)
				goto bad;
			p++;
		}
		if (digits == 0 && p[-1] == '0')
			goto bad;
		if (*p == 'r' || *p == 'R') {
			reverse = true;
			p++;
		}
		while (is_delim(*p) && nd < sizeof(delims) - 1)
			delims[nd++] = *p++;
		delims[nd] = '\0';
		if (nd == 0)
			str_copy(delims, ".", sizeof(delims));
		if (*p != '}')
			goto bad;
		p++;
		sp_buf_init(&val);
		switch (letter) {
		case 's':
			sp_buf_append_str(&val, ctx->sender);
			break;
		case 'l':
			sp_buf_append_str(&val, ctx->sender_local);
			break;
		case 'o':
			sp_buf_append_str(&val, ctx->sender_domain);
			break;
		case 'd':
			sp_buf_append_str(&val, domain);
			break;
		case 'i':
			ip_macro_i(&ctx->req->ip, &val);
			break;
		case 'p':
			sp_buf_append_str(&val, validated_ptr(ctx, domain));
			break;
		case 'v':
			sp_buf_append_str(&val, ctx->req->ip.family == AF_INET
							? "in-addr"
							: "ip6");
			break;
		case 'h':
			sp_buf_append_str(&val, ctx->req->helo != NULL
							? ctx->req->helo
							: "unknown");
			break;
		case 'c':
		case 'r':
		case 't':
			if (!exp) {
				sp_buf_deinit(&val);
				goto bad;
			}
			if (letter == 'c') {
				char text[46];

				mailauth_ip_format(&ctx->req->ip, text);
				sp_buf_append_str(&val, text);
			} else if (letter == 'r') {
				sp_buf_append_str(&val,
						  ctx->req->receiver != NULL
							  ? ctx->req->receiver
							  : "unknown");
			} else {
				sp_buf_printf(&val, "%lld",
					      (long long)clock_now());
			}
			break;
		default:
			sp_buf_deinit(&val);
			goto bad;
		}
		macro_transform(val.data, digits, reverse, delims, &out, upper);
		sp_buf_deinit(&val);
	}
	return sp_buf_steal(&out, NULL);
bad:
	sp_buf_deinit(&out);
	ctx->reason = "macro syntax";
	return NULL;
}

/* A domain-spec: expanded, trailing dot dropped, shortened from the left
 * to 253 characters (7.3), and ending in a valid top label. */
static char *
expand_domain(struct spf_ctx *ctx, const char *spec, const char *domain)
{
	char *d = macro_expand(ctx, spec, domain, false), *p, *last;
	size_t len;

	if (d == NULL)
		return NULL;
	len = strlen(d);
	if (len > 0 && d[len - 1] == '.')
		d[--len] = '\0';
	p = d;
	while (strlen(p) > 253) {
		char *dot = strchr(p, '.');

		if (dot == NULL)
			break;
		p = dot + 1;
	}
	if (p != d)
		memmove(d, p, strlen(p) + 1);
	last = strrchr(d, '.');
	last = last == NULL ? d : last + 1;
	len = strlen(last);
	{
		bool alpha = false,
		     ok = len > 0 && last[0] != '-' && last[len - 1] != '-';

		for (size_t i = 0; i < len; i++) {
			if (isalpha((unsigned char)last[i]))
				alpha = true;
			else if (!isdigit((unsigned char)last[i]) &&
				 last[i] != '-')
				ok = false;
		}
		if (!ok || !alpha || strchr(d, '.') == NULL) {
			free(d);
			ctx->reason = "invalid domain-spec";
			return NULL;
		}
	}
	return d;
}

/* Address look-ups of name in the client's family; -1/-2 like
 * note_status. */
static int
lookup_addrs(struct spf_ctx *ctx, const char *name, int family,
	     struct mailauth_dns_reply *reply)
{
	enum mailauth_dns_status st;

	memset(reply, 0, sizeof(*reply));
	st = ctx->dns->v->addr(ctx->dns->context, name, family, reply);
	if (st != MAILAUTH_DNS_OK)
		mailauth_dns_reply_clear(reply);
	return note_status(ctx, st);
}

static bool
any_in_cidr(const struct spf_ctx *ctx, const struct mailauth_dns_reply *r,
	    unsigned int bits)
{
	for (size_t i = 0; i < r->count; i++) {
		if (ip_in_cidr(&ctx->req->ip, &r->ips[i], bits))
			return true;
	}
	return false;
}

static bool
name_in_domain(const char *name, const char *domain)
{
	size_t n = strlen(name), d = strlen(domain);

	if (n == d)
		return strcasecmp(name, domain) == 0;
	return n > d && name[n - d - 1] == '.' &&
	       strcasecmp(name + n - d, domain) == 0;
}

/* Validated names of the client address (5.5). Returns -1/-2 like
 * note_status; *names_r holds the validated names. */
static int
validated_names(struct spf_ctx *ctx, struct mailauth_dns_reply *names_r)
{
	struct mailauth_dns_reply ptr;
	enum mailauth_dns_status st;
	int rc;

	memset(names_r, 0, sizeof(*names_r));
	memset(&ptr, 0, sizeof(ptr));
	st = ctx->dns->v->ptr(ctx->dns->context, &ctx->req->ip, &ptr);
	if (st != MAILAUTH_DNS_OK)
		mailauth_dns_reply_clear(&ptr);
	/* A failed PTR look-up is no match, not an error (5.5). */
	if (st == MAILAUTH_DNS_TEMPFAIL)
		return 0;
	if ((rc = note_status(ctx, st)) < 0)
		return rc;
	for (size_t i = 0; i < ptr.count && i < SPF_MAX_NAMES; i++) {
		struct mailauth_dns_reply a;

		rc = lookup_addrs(ctx, ptr.strings[i], ctx->req->ip.family, &a);
		if (rc == -1) {
			mailauth_dns_reply_clear(&ptr);
			mailauth_dns_reply_clear(names_r);
			return -1;
		}
		if (any_in_cidr(ctx, &a,
				ctx->req->ip.family == AF_INET ? 32 : 128)) {
			size_t n = names_r->count++;

			names_r->strings = xrealloc(names_r->strings,
						    (n + 1) * sizeof(char *));
			names_r->strings[n] = xstrdup(ptr.strings[i]);
		}
		mailauth_dns_reply_clear(&a);
	}
	mailauth_dns_reply_clear(&ptr);
	return 0;
}

static const char *
validated_ptr(struct spf_ctx *ctx, const char *domain)
{
	struct mailauth_dns_reply names;
	const char *pick = NULL;

	if (ctx->ptr_name != NULL)
		return ctx->ptr_name;
	if (validated_names(ctx, &names) == 0) {
		for (size_t i = 0; i < names.count && pick == NULL; i++) {
			if (name_in_domain(names.strings[i], domain))
				pick = names.strings[i];
		}
		if (pick == NULL && names.count > 0)
			pick = names.strings[0];
	}
	ctx->ptr_name = xstrdup(pick != NULL ? pick : "unknown");
	mailauth_dns_reply_clear(&names);
	return ctx->ptr_name;
}

/* Fetches the one SPF record of domain: PASS with *record_r, NONE, or
 * TEMPERROR / PERMERROR. */
static enum mailauth_result
fetch_record(struct spf_ctx *ctx, const char *domain, char **record_r)
{
	struct mailauth_dns_reply reply;
	enum mailauth_dns_status st;
	size_t found = 0;

	*record_r = NULL;
	memset(&reply, 0, sizeof(reply));
	st = ctx->dns->v->txt(ctx->dns->context, domain, &reply);
	if (st == MAILAUTH_DNS_TEMPFAIL) {
		mailauth_dns_reply_clear(&reply);
		ctx->reason = "DNS failure";
		return MAILAUTH_TEMPERROR;
	}
	for (size_t i = 0; st == MAILAUTH_DNS_OK && i < reply.count; i++) {
		const char *r = reply.strings[i];

		if (strncasecmp(r, "v=spf1", 6) != 0 ||
		    (r[6] != '\0' && r[6] != ' '))
			continue;
		if (found++ == 0)
			*record_r = xstrdup(r);
	}
	mailauth_dns_reply_clear(&reply);
	if (found > 1) {
		free(*record_r);
		*record_r = NULL;
		ctx->reason = "several SPF records";
		return MAILAUTH_PERMERROR;
	}
	if (found == 0) {
		ctx->reason = "no SPF record";
		return MAILAUTH_NONE;
	}
	return MAILAUTH_PASS;
}

struct spf_term {
	char qualifier;
	char *name; /* lower case mechanism or modifier name */
	char *arg;  /* after ':' or '=' (NULL if none) */
	char *cidr; /* "/n", "//m" or "/n//m" suffix (a, mx, ip4, ip6) */
	bool modifier;
};

static void
terms_free(struct spf_term *terms, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(terms[i].name);
		free(terms[i].arg);
		free(terms[i].cidr);
	}
	free(terms);
}

static bool
valid_modifier_name(const char *s, size_t len)
{
	if (len == 0 || !isalpha((unsigned char)s[0]))
		return false;
	for (size_t i = 1; i < len; i++) {
		if (!isalnum((unsigned char)s[i]) &&
		    strchr("-_.", s[i]) == NULL)
			return false;
	}
	return true;
}

/* Splits a record into terms; -1 (reason set) on a syntax error. */
static int
parse_record(struct spf_ctx *ctx, const char *record, struct spf_term **terms_r,
	     size_t *count_r)
{
	struct spf_term *terms = NULL;
	size_t n = 0;
	const char *p = record + 6;

	while (*p != '\0') {
		const char *start, *end, *eq, *sep;
		struct spf_term t;

		while (*p == ' ')
			p++;
		if (*p == '\0')
			break;
		start = p;
		while (*p != '\0' && *p != ' ')
			p++;
		end = p;
		memset(&t, 0, sizeof(t));
		eq = memchr(start, '=', (size_t)(end - start));
		sep = start;
		while (sep < end && *sep != ':' && *sep != '/' && *sep != '=')
			sep++;
		if (eq != NULL && sep == eq &&
		    valid_modifier_name(start, (size_t)(eq - start))) {
			t.modifier = true;
			t.name = xstrndup(start, (size_t)(eq - start));
			str_lower(t.name);
			t.arg = xstrndup(eq + 1, (size_t)(end - eq - 1));
		} else {
			const char *m = start;
			const char *q;

			t.qualifier = '+';
			if (strchr("+-~?", *m) != NULL)
				t.qualifier = *m++;
			q = m;
			while (q < end && *q != ':' && *q != '/')
				q++;
			t.name = xstrndup(m, (size_t)(q - m));
			str_lower(t.name);
			if (q < end && *q == ':') {
				const char *c = q + 1, *slash = NULL;

				/* ip6 addresses contain ':'; the CIDR is
				 * the last '/'-part there. */
				for (const char *s = c; s < end; s++) {
					if (*s == '/') {
						slash = s;
						break;
					}
				}
				t.arg = xstrndup(
					c,
					(size_t)((slash != NULL ? slash : end) -
						 c));
				if (slash != NULL)
					t.cidr = xstrndup(
						slash, (size_t)(end - slash));
			} else if (q < end && *q == '/') {
				t.cidr = xstrndup(q, (size_t)(end - q));
			}
		}
		terms = xrealloc(terms, (n + 1) * sizeof(t));
		terms[n++] = t;
		if (!t.modifier) {
			static const char *const known[] = {
				"all", "include", "a",	    "mx", "ptr",
				"ip4", "ip6",	  "exists", NULL,
			};
			bool ok = false;

			for (size_t k = 0; known[k] != NULL; k++)
				ok |= strcmp(t.name, known[k]) == 0;
			if (!ok) {
				ctx->reason = "unknown mechanism";
				goto fail;
			}
		}
	}
	*terms_r = terms;
	*count_r = n;
	return 0;
fail:
	terms_free(terms, n);
	return -1;
}

static bool
parse_bits(const char *s, size_t len, unsigned int max, unsigned int *bits_r)
{
	unsigned int v = 0;

	if (len == 0 || len > 3 || (len > 1 && s[0] == '0'))
		return false;
	for (size_t i = 0; i < len; i++) {
		if (!isdigit((unsigned char)s[i]))
			return false;
		v = v * 10 + (unsigned int)(s[i] - '0');
	}
	if (v > max)
		return false;
	*bits_r = v;
	return true;
}

/* "/n", "//m", "/n//m" -> bits for the client's family. */
static bool
parse_dual_cidr(const char *cidr, unsigned int *v4_r, unsigned int *v6_r)
{
	const char *dbl;

	*v4_r = 32;
	*v6_r = 128;
	if (cidr == NULL)
		return true;
	dbl = strstr(cidr, "//");
	if (dbl != cidr) {
		size_t len =
			(dbl != NULL ? (size_t)(dbl - cidr) : strlen(cidr)) - 1;

		if (cidr[0] != '/' || !parse_bits(cidr + 1, len, 32, v4_r))
			return false;
	}
	if (dbl != NULL && !parse_bits(dbl + 2, strlen(dbl + 2), 128, v6_r))
		return false;
	return true;
}

static enum mailauth_result
qualifier_result(char q)
{
	switch (q) {
	case '-':
		return MAILAUTH_FAIL;
	case '~':
		return MAILAUTH_SOFTFAIL;
	case '?':
		return MAILAUTH_NEUTRAL;
	default:
		return MAILAUTH_PASS;
	}
}

/* Evaluates one mechanism: 1 match, 0 no match, or a result to return
 * at once (temperror / permerror) through *err_r. */
static int
eval_mechanism(struct spf_ctx *ctx, const struct spf_term *t,
	       const char *domain, unsigned int depth,
	       enum mailauth_result *err_r)
{
	unsigned int v4 = 32, v6 = 128, bits;
	char *target = NULL;
	int ret = 0, rc;
	bool ipv4 = ctx->req->ip.family == AF_INET;

	*err_r = MAILAUTH_PERMERROR;
	if (strcmp(t->name, "all") == 0) {
		if (t->arg != NULL || t->cidr != NULL) {
			ctx->reason = "all takes no argument";
			return -1;
		}
		return 1;
	}
	if (strcmp(t->name, "ip4") == 0 || strcmp(t->name, "ip6") == 0) {
		struct mailauth_ip net;
		bool is4 = t->name[2] == '4';
		char *arg = t->arg;

		if (arg == NULL || mailauth_ip_parse(arg, &net) < 0 ||
		    (is4 && strchr(arg, ':') != NULL) ||
		    (!is4 && strchr(arg, ':') == NULL)) {
			ctx->reason = "bad ip4/ip6 address";
			return -1;
		}
		bits = is4 ? 32 : 128;
		if (t->cidr != NULL &&
		    (t->cidr[0] != '/' ||
		     !parse_bits(t->cidr + 1, strlen(t->cidr + 1), bits,
				 &bits))) {
			ctx->reason = "bad CIDR length";
			return -1;
		}
		if (!is4 && net.family == AF_INET) {
			/* An IPv4-mapped ip6: compare it as ip6 text. */
			return 0;
		}
		return ip_in_cidr(&ctx->req->ip, &net, bits) ? 1 : 0;
	}
	/* The rest take a domain-spec and count as DNS terms. */
	if (strcmp(t->name, "include") == 0 || strcmp(t->name, "exists") == 0) {
		if (t->arg == NULL || t->arg[0] == '\0' || t->cidr != NULL) {
			ctx->reason = "missing domain-spec";
			return -1;
		}
	}
	if ((strcmp(t->name, "a") == 0 || strcmp(t->name, "mx") == 0) &&
	    !parse_dual_cidr(t->cidr, &v4, &v6)) {
		ctx->reason = "bad CIDR length";
		return -1;
	}
	if (strcmp(t->name, "ptr") == 0 && t->cidr != NULL) {
		ctx->reason = "ptr takes no CIDR";
		return -1;
	}
	if (t->arg != NULL) {
		if (t->arg[0] == '\0') {
			ctx->reason = "empty domain-spec";
			return -1;
		}
		target = expand_domain(ctx, t->arg, domain);
		if (target == NULL)
			return -1;
	} else {
		target = xstrdup(domain);
	}
	if (!count_term(ctx)) {
		free(target);
		return -1;
	}
	bits = ipv4 ? v4 : v6;

	if (strcmp(t->name, "include") == 0) {
		enum mailauth_result r =
			check_host(ctx, target, depth + 1, false);

		switch (r) {
		case MAILAUTH_PASS:
			ret = 1;
			break;
		case MAILAUTH_FAIL:
		case MAILAUTH_SOFTFAIL:
		case MAILAUTH_NEUTRAL:
			ret = 0;
			break;
		case MAILAUTH_TEMPERROR:
			*err_r = MAILAUTH_TEMPERROR;
			ret = -1;
			break;
		default:
			if (r == MAILAUTH_NONE)
				ctx->reason = "include of domain without SPF";
			ret = -1;
			break;
		}
	} else if (strcmp(t->name, "a") == 0 ||
		   strcmp(t->name, "exists") == 0) {
		struct mailauth_dns_reply r;
		bool exists = t->name[0] == 'e';

		/* exists always asks for A, whatever the client's family. */
		rc = lookup_addrs(ctx, target,
				  exists || ipv4 ? AF_INET : AF_INET6, &r);
		if (rc < 0) {
			*err_r = status_error(rc);
			ret = -1;
		} else if (exists) {
			ret = r.count > 0 ? 1 : 0;
		} else {
			ret = any_in_cidr(ctx, &r, bits) ? 1 : 0;
		}
		mailauth_dns_reply_clear(&r);
	} else if (strcmp(t->name, "mx") == 0) {
		struct mailauth_dns_reply mx;
		enum mailauth_dns_status st;

		memset(&mx, 0, sizeof(mx));
		st = ctx->dns->v->mx(ctx->dns->context, target, &mx);
		if (st != MAILAUTH_DNS_OK)
			mailauth_dns_reply_clear(&mx);
		rc = note_status(ctx, st);
		if (rc < 0) {
			*err_r = status_error(rc);
			ret = -1;
		} else if (mx.count > SPF_MAX_NAMES) {
			ctx->reason = "more than 10 MX names";
			ret = -1;
		}
		for (size_t i = 0; ret == 0 && i < mx.count; i++) {
			struct mailauth_dns_reply a;

			rc = lookup_addrs(ctx, mx.strings[i],
					  ipv4 ? AF_INET : AF_INET6, &a);
			if (rc < 0) {
				*err_r = status_error(rc);
				ret = -1;
			} else if (any_in_cidr(ctx, &a, bits)) {
				ret = 1;
			}
			mailauth_dns_reply_clear(&a);
		}
		mailauth_dns_reply_clear(&mx);
	} else { /* ptr */
		struct mailauth_dns_reply names;

		rc = validated_names(ctx, &names);
		if (rc < 0) {
			*err_r = status_error(rc);
			ret = -1;
		}
		for (size_t i = 0; ret == 0 && i < names.count; i++) {
			if (name_in_domain(names.strings[i], target))
				ret = 1;
		}
		mailauth_dns_reply_clear(&names);
	}
	free(target);
	return ret;
}

static void
fetch_explanation(struct spf_ctx *ctx, const char *spec, const char *domain)
{
	struct mailauth_dns_reply reply;
	char *target;

	target = expand_domain(ctx, spec, domain);
	if (target == NULL)
		return;
	memset(&reply, 0, sizeof(reply));
	if (ctx->dns->v->txt(ctx->dns->context, target, &reply) ==
		    MAILAUTH_DNS_OK &&
	    reply.count == 1) {
		const char *saved = ctx->reason;

		free(ctx->explanation);
		ctx->explanation =
			macro_expand(ctx, reply.strings[0], domain, true);
		ctx->reason = saved;
	}
	mailauth_dns_reply_clear(&reply);
	free(target);
}

static enum mailauth_result
check_host(struct spf_ctx *ctx, const char *domain, unsigned int depth,
	   bool top)
{
	struct spf_term *terms = NULL;
	size_t n = 0;
	char *record;
	const struct spf_term *redirect = NULL, *exp = NULL;
	enum mailauth_result result;

	if (depth > SPF_MAX_DEPTH) {
		ctx->reason = "too deep";
		return MAILAUTH_PERMERROR;
	}
	if (!mailauth_domain_valid(domain, false)) {
		ctx->reason = "invalid domain";
		return MAILAUTH_NONE;
	}
	result = fetch_record(ctx, domain, &record);
	if (result != MAILAUTH_PASS)
		return result;
	if (parse_record(ctx, record, &terms, &n) < 0) {
		free(record);
		return MAILAUTH_PERMERROR;
	}
	free(record);
	for (size_t i = 0; i < n; i++) {
		if (!terms[i].modifier)
			continue;
		if (strcmp(terms[i].name, "redirect") == 0) {
			if (redirect != NULL) {
				ctx->reason = "several redirect=";
				result = MAILAUTH_PERMERROR;
				goto out;
			}
			redirect = &terms[i];
		} else if (strcmp(terms[i].name, "exp") == 0) {
			if (exp != NULL) {
				ctx->reason = "several exp=";
				result = MAILAUTH_PERMERROR;
				goto out;
			}
			exp = &terms[i];
		} else {
			/* Unknown modifiers are ignored, but their macros
			 * must still be valid. */
			char *x =
				macro_expand(ctx, terms[i].arg, domain, false);

			if (x == NULL) {
				result = MAILAUTH_PERMERROR;
				goto out;
			}
			free(x);
		}
	}
	if ((redirect != NULL && redirect->arg[0] == '\0') ||
	    (exp != NULL && exp->arg[0] == '\0')) {
		ctx->reason = "empty modifier";
		result = MAILAUTH_PERMERROR;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		enum mailauth_result err;
		int m;

		if (terms[i].modifier)
			continue;
		m = eval_mechanism(ctx, &terms[i], domain, depth, &err);
		if (m < 0) {
			result = err;
			goto out;
		}
		if (m == 1) {
			result = qualifier_result(terms[i].qualifier);
			ctx->reason = NULL;
			if (result == MAILAUTH_FAIL && top && exp != NULL)
				fetch_explanation(ctx, exp->arg, domain);
			goto out;
		}
	}
	if (redirect != NULL) {
		char *target = expand_domain(ctx, redirect->arg, domain);

		if (target == NULL) {
			result = MAILAUTH_PERMERROR;
			goto out;
		}
		if (!count_term(ctx)) {
			free(target);
			result = MAILAUTH_PERMERROR;
			goto out;
		}
		result = check_host(ctx, target, depth + 1, top);
		free(target);
		if (result == MAILAUTH_NONE) {
			ctx->reason = "redirect to domain without SPF";
			result = MAILAUTH_PERMERROR;
		}
		goto out;
	}
	result = MAILAUTH_NEUTRAL;
	ctx->reason = "no mechanism matched";
out:
	terms_free(terms, n);
	return result;
}

void
mailauth_spf_check_host(struct mailauth_dns *dns,
			const struct mailauth_spf_request *req,
			const char *domain, const char *sender,
			struct mailauth_spf_result *result_r)
{
	struct spf_ctx ctx;
	const char *at = strrchr(sender, '@');
	char *d = xstrdup(domain);
	size_t dl = strlen(d);

	memset(&ctx, 0, sizeof(ctx));
	memset(result_r, 0, sizeof(*result_r));
	if (dl > 0 && d[dl - 1] == '.')
		d[dl - 1] = '\0';
	str_lower(d);
	ctx.dns = dns;
	ctx.req = req;
	if (at == NULL || at == sender) {
		ctx.sender_local = xstrdup("postmaster");
		ctx.sender_domain = xstrdup(at == NULL ? d : at + 1);
	} else {
		ctx.sender_local = xstrndup(sender, (size_t)(at - sender));
		ctx.sender_domain = xstrdup(at + 1);
	}
	ctx.sender = xasprintf("%s@%s", ctx.sender_local, ctx.sender_domain);
	result_r->result = check_host(&ctx, d, 0, true);
	result_r->domain = d;
	result_r->explanation = ctx.explanation;
	result_r->reason =
		result_r->result == MAILAUTH_PASS ? NULL : ctx.reason;
	result_r->dns_terms = ctx.terms;
	result_r->void_lookups = ctx.voids;
	free(ctx.sender);
	free(ctx.sender_local);
	free(ctx.sender_domain);
	free(ctx.ptr_name);
}

void
mailauth_spf_check(struct mailauth_dns *dns,
		   const struct mailauth_spf_request *req,
		   struct mailauth_spf_result *result_r)
{
	const char *from = req->mail_from != NULL ? req->mail_from : "";
	const char *at = strrchr(from, '@');
	char *sender;

	if (from[0] == '\0' || at == NULL || at[1] == '\0') {
		/* Null sender: the HELO identity (2.3). */
		const char *helo = req->helo != NULL ? req->helo : "";

		sender = xasprintf("postmaster@%s", helo);
		mailauth_spf_check_host(dns, req, helo, sender, result_r);
		result_r->from_helo = true;
	} else {
		sender = xstrdup(from);
		mailauth_spf_check_host(dns, req, at + 1, sender, result_r);
	}
	free(sender);
}

void
mailauth_spf_result_clear(struct mailauth_spf_result *result)
{
	free(result->domain);
	free(result->explanation);
	memset(result, 0, sizeof(*result));
}
