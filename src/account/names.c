/* Names: domains (IDNA2008 via libidn2), local parts, written alias forms,
 * patterns (PCRE2) and webhook URLs (libcurl's URL parser). */
#include "account-private.h"

#include <curl/curl.h>
#include <idn2.h>
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#define LOCAL_PART_MAX 64
#define DOMAIN_MAX 253
#define LABEL_MAX 63
#define URL_MAX 2048
/* Bounds on one regex match: a local part is at most 64 bytes, but a
 * pattern like (a+)+$ must not be able to stall the MX. */
#define REGEX_MATCH_LIMIT 100000
#define REGEX_DEPTH_LIMIT 1000

static bool
ldh_label_is_valid(const char *label, size_t len)
{
	if (len == 0 || len > LABEL_MAX || label[0] == '-' ||
	    label[len - 1] == '-')
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = label[i];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '-'))
			return false;
	}
	return true;
}

char *
account_domain_normalize(const char *name)
{
	char *input, *ascii = NULL, *result;
	size_t len = strlen(name);
	const char *label;

	if (len == 0 || len > 4 * DOMAIN_MAX)
		return NULL;
	input = xstrdup(name);
	/* A fully qualified name may end in a dot; we store it without. */
	if (len > 1 && input[len - 1] == '.')
		input[len - 1] = '\0';
	/* UTS #46 non-transitional mapping lower-cases and maps full-width
	 * forms, then IDNA2008 rules decide what is valid. */
	if (idn2_to_ascii_8z(input, &ascii, IDN2_NONTRANSITIONAL) != IDN2_OK) {
		free(input);
		return NULL;
	}
	free(input);
	result = xstrdup(ascii);
	idn2_free(ascii);
	str_lower(result);
	len = strlen(result);
	if (len == 0 || len > DOMAIN_MAX)
		goto bad;
	label = result;
	for (;;) {
		const char *dot = strchr(label, '.');
		size_t llen =
			dot != NULL ? (size_t)(dot - label) : strlen(label);

		if (!ldh_label_is_valid(label, llen))
			goto bad;
		if (dot == NULL)
			break;
		label = dot + 1;
	}
	return result;
bad:
	free(result);
	return NULL;
}

char *
account_domain_to_unicode(const char *ascii)
{
	char *out = NULL, *result;

	if (idn2_to_unicode_8z8z(ascii, &out, 0) != IDN2_OK)
		return xstrdup(ascii);
	result = xstrdup(out);
	idn2_free(out);
	return result;
}

/* Length of the UTF-8 sequence at s, or 0 when it is not well formed. */
static size_t
utf8_sequence_len(const unsigned char *s)
{
	size_t n;
	unsigned int cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4, cp = s[0] & 0x07;
	else
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) ||
	    (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

/* RFC 5322 dot-atom (RFC 6531 allows UTF-8 too). Quoted local parts are
 * legal SMTP but no alias can have one, so they are refused outright. */
bool
account_local_part_is_valid(const char *local)
{
	static const char specials[] = "!#$%&'*+-/=?^_`{|}~";
	size_t len = strlen(local);
	bool prev_dot = true;

	if (len == 0 || len > LOCAL_PART_MAX || local[len - 1] == '.')
		return false;
	for (size_t i = 0; i < len;) {
		unsigned char c = (unsigned char)local[i];

		if (c == '.') {
			if (prev_dot)
				return false;
			prev_dot = true;
			i++;
			continue;
		}
		prev_dot = false;
		if (c >= 0x80) {
			size_t n = utf8_sequence_len(
				(const unsigned char *)local + i);

			if (n == 0)
				return false;
			i += n;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || strchr(specials, c) != NULL))
			return false;
		i++;
	}
	return true;
}

bool
account_address_is_valid(const char *address)
{
	const char *at = strrchr(address, '@');
	char *local, *domain;
	bool ok;

	if (at == NULL)
		return false;
	local = xstrndup(address, (size_t)(at - address));
	domain = account_domain_normalize(at + 1);
	ok = domain != NULL && account_local_part_is_valid(local);
	free(local);
	free(domain);
	return ok;
}

bool
account_webhook_url_is_valid(const char *url)
{
	CURLU *u;
	char *scheme = NULL, *host = NULL;
	bool ok = false;

	if (strlen(url) > URL_MAX)
		return false;
	for (const char *p = url; *p != '\0'; p++) {
		/* No spaces or control characters: they would not survive
		 * an HTTP request line. */
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
			return false;
	}
	u = curl_url();
	if (u == NULL)
		core_panic("curl_url: out of memory");
	if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK) {
		ok = (strcmp(scheme, "http") == 0 ||
		      strcmp(scheme, "https") == 0) &&
		     host[0] != '\0' &&
		     (str_has_prefix(url, "http://") ||
		      str_has_prefix(url, "https://"));
	}
	curl_free(scheme);
	curl_free(host);
	curl_url_cleanup(u);
	return ok;
}

int
account_regex_check(const char *pattern, const char **error_r)
{
	pcre2_code *code;
	int errcode;
	PCRE2_SIZE offset;

	code = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED,
			     PCRE2_CASELESS | PCRE2_UTF, &errcode, &offset,
			     NULL);
	if (code == NULL) {
		PCRE2_UCHAR msg[160];

		pcre2_get_error_message(errcode, msg, sizeof(msg));
		*error_r = account_error_printf(
			"invalid regular expression at offset %zu: %s",
			(size_t)offset, (const char *)msg);
		return -1;
	}
	pcre2_code_free(code);
	return 0;
}

bool
account_regex_match(const char *pattern, const char *subject)
{
	pcre2_code *code;
	pcre2_match_data *md;
	pcre2_match_context *mctx;
	int errcode, rc;
	PCRE2_SIZE offset;

	code = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED,
			     PCRE2_CASELESS | PCRE2_UTF, &errcode, &offset,
			     NULL);
	if (code == NULL)
		return false;
	md = pcre2_match_data_create_from_pattern(code, NULL);
	mctx = pcre2_match_context_create(NULL);
	if (md == NULL || mctx == NULL)
		core_panic("pcre2: out of memory");
	pcre2_set_match_limit(mctx, REGEX_MATCH_LIMIT);
	pcre2_set_depth_limit(mctx, REGEX_DEPTH_LIMIT);
	rc = pcre2_match(code, (PCRE2_SPTR)subject, PCRE2_ZERO_TERMINATED, 0, 0,
			 md, mctx);
	pcre2_match_context_free(mctx);
	pcre2_match_data_free(md);
	pcre2_code_free(code);
	return rc >= 0;
}

int
account_name_parse(const char *address, struct account_name *name_r,
		   const char **error_r)
{
	const char *at = strrchr(address, '@');
	char *local;
	size_t llen;

	memset(name_r, 0, sizeof(*name_r));
	if (at == NULL || at == address) {
		*error_r = account_error_printf(
			"'%s' is not an address (local@domain, *@domain or "
			"/regex/@domain)",
			address);
		return -1;
	}
	name_r->domain = account_domain_normalize(at + 1);
	if (name_r->domain == NULL) {
		*error_r = account_error_printf("'%s' is not a valid domain "
						"name",
						at + 1);
		return -1;
	}
	local = xstrndup(address, (size_t)(at - address));
	llen = strlen(local);
	if (strcmp(local, "*") == 0) {
		name_r->kind = ACCOUNT_ALIAS_CATCHALL;
		name_r->local = local;
		name_r->local_lc = xstrdup(local);
	} else if (llen >= 3 && local[0] == '/' && local[llen - 1] == '/') {
		name_r->kind = ACCOUNT_ALIAS_REGEX;
		name_r->local = xstrndup(local + 1, llen - 2);
		/* Case matters in a pattern (\d is not \D). */
		name_r->local_lc = xstrdup(name_r->local);
		free(local);
	} else if (local[0] == '/') {
		/* "//" or "/abc": meant as a pattern, not a local part. */
		*error_r = account_error_printf(
			"'%s' is not a pattern: write /regex/@domain with a "
			"non-empty regex",
			local);
		free(local);
		account_name_deinit(name_r);
		return -1;
	} else if (account_local_part_is_valid(local)) {
		name_r->kind = ACCOUNT_ALIAS_EXACT;
		name_r->local = local;
		name_r->local_lc = xstrdup(local);
		str_lower(name_r->local_lc);
	} else {
		*error_r = account_error_printf(
			"'%s' is not a valid local part", local);
		free(local);
		account_name_deinit(name_r);
		return -1;
	}
	return 0;
}

void
account_name_deinit(struct account_name *name)
{
	free(name->local);
	free(name->local_lc);
	free(name->domain);
	memset(name, 0, sizeof(*name));
}

char *
account_name_format(enum account_alias_kind kind, const char *local,
		    const char *domain)
{
	if (kind == ACCOUNT_ALIAS_REGEX)
		return xasprintf("/%s/@%s", local, domain);
	return xasprintf("%s@%s", local, domain);
}

char *
account_login_canonical(const char *address)
{
	struct account_name name;
	const char *error;
	char *canonical;

	if (account_name_parse(address, &name, &error) < 0)
		return NULL;
	if (name.kind != ACCOUNT_ALIAS_EXACT) {
		account_name_deinit(&name);
		return NULL;
	}
	canonical = xasprintf("%s@%s", name.local_lc, name.domain);
	account_name_deinit(&name);
	return canonical;
}

const char *
account_alias_kind_name(enum account_alias_kind kind)
{
	switch (kind) {
	case ACCOUNT_ALIAS_EXACT:
		return "exact";
	case ACCOUNT_ALIAS_CATCHALL:
		return "catchall";
	case ACCOUNT_ALIAS_REGEX:
		return "regex";
	}
	return "?";
}

const char *
account_target_kind_name(enum account_target_kind kind)
{
	switch (kind) {
	case ACCOUNT_TARGET_MAILBOX:
		return "mailbox";
	case ACCOUNT_TARGET_FORWARD:
		return "forward";
	case ACCOUNT_TARGET_WEBHOOK:
		return "webhook";
	}
	return "?";
}
