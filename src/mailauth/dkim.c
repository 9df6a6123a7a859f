/* DKIM signatures (RFC 6376, RFC 8463), shared with ARC's AMS. */
#include "mailauth/mailauth-private.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Signed once more than they occur (From always), so that a field added
 * in transit breaks the signature. */
static const char *const default_headers[] = {
	"from",
	"reply-to",
	"subject",
	"date",
	"to",
	"cc",
	"resent-date",
	"resent-from",
	"resent-sender",
	"resent-to",
	"resent-cc",
	"in-reply-to",
	"references",
	"message-id",
	"mime-version",
	"content-type",
	"content-transfer-encoding",
	"content-id",
	"content-description",
	"list-id",
	"list-help",
	"list-unsubscribe",
	"list-subscribe",
	"list-post",
	"list-owner",
	"list-archive",
	"sender",
	NULL,
};

static char *
build_h_list(const struct mailauth_sig_params *params,
	     const struct mailauth_msg *msg)
{
	struct sp_buf h;

	sp_buf_init(&h);
	if (params->headers != NULL) {
		for (size_t i = 0; params->headers[i] != NULL; i++) {
			char *name = xstrdup(params->headers[i]);

			str_lower(name);
			if (params->skip_arc &&
			    (str_has_prefix(name, "arc-") ||
			     strcmp(name, "authentication-results") == 0)) {
				free(name);
				continue;
			}
			sp_buf_printf(&h, "%s%s", h.len > 0 ? ":" : "", name);
			free(name);
		}
		return sp_buf_steal(&h, NULL);
	}
	for (size_t i = 0; default_headers[i] != NULL; i++) {
		size_t n = 0;

		for (size_t j = 0; j < msg->count; j++) {
			if (mailauth_header_is(&msg->headers[j],
					       default_headers[i]))
				n++;
		}
		if (n == 0 && i != 0)
			continue;
		for (size_t k = 0; k < n + 1; k++)
			sp_buf_printf(&h, "%s%s", h.len > 0 ? ":" : "",
				      default_headers[i]);
	}
	return sp_buf_steal(&h, NULL);
}

static const char *
canon_name(enum mailauth_canon c)
{
	return c == MAILAUTH_CANON_SIMPLE ? "simple" : "relaxed";
}

int
mailauth_sig_create(const struct mailauth_sig_params *params,
		    const struct mailauth_msg *msg, char **header_r,
		    const char **error_r)
{
	struct mailauth_body_canon bc;
	unsigned char bh[32], *sig;
	size_t sig_len, ntags = 0, col;
	const char *tags[12];
	char *bh64, *h_list, *folded, *b64, *owned[12];
	size_t nowned = 0;
	struct sp_buf data, out;
	time_t t = params->timestamp != 0 ? params->timestamp : clock_now();
	const char *nl;
	int ret;

	if (params->domain == NULL || params->selector == NULL ||
	    params->key == NULL ||
	    !mailauth_domain_valid(params->domain, true) ||
	    !mailauth_domain_valid(params->selector, true)) {
		*error_r = "invalid domain, selector or key";
		return -1;
	}
	mailauth_body_canon_init(&bc, params->body_canon, -1);
	mailauth_body_canon_feed(&bc, msg->body, msg->body_len);
	mailauth_body_canon_finish(&bc, bh);
	bh64 = mailauth_base64_encode(bh, sizeof(bh));
	h_list = build_h_list(params, msg);

#define OWN(s) (owned[nowned++] = (s))
	tags[ntags++] = params->prefix;
	tags[ntags++] =
		OWN(xasprintf("a=%s", mailauth_key_algorithm(params->key)));
	tags[ntags++] =
		OWN(xasprintf("c=%s/%s", canon_name(params->header_canon),
			      canon_name(params->body_canon)));
	tags[ntags++] = OWN(xasprintf("d=%s", params->domain));
	tags[ntags++] = OWN(xasprintf("s=%s", params->selector));
	if (params->identity != NULL)
		tags[ntags++] = OWN(xasprintf("i=%s", params->identity));
	tags[ntags++] = OWN(xasprintf("t=%lld", (long long)t));
	if (params->expire_secs != 0)
		tags[ntags++] = OWN(xasprintf(
			"x=%lld", (long long)t + params->expire_secs));
	tags[ntags++] = OWN(xasprintf("h=%s", h_list));
	tags[ntags++] = OWN(xasprintf("bh=%s", bh64));
	tags[ntags++] = "b=";
#undef OWN
	folded = mailauth_fold(params->field, tags, ntags);

	sp_buf_init(&data);
	mailauth_hash_headers(msg, h_list, params->header_canon, &data);
	mailauth_canon_header(params->header_canon, folded, strlen(folded),
			      true, &data);
	ret = mailauth_key_sign(params->key, data.data, data.len, &sig,
				&sig_len);
	sp_buf_deinit(&data);
	if (ret < 0) {
		*error_r = "signing failed";
	} else {
		b64 = mailauth_base64_encode(sig, sig_len);
		free(sig);
		sp_buf_init(&out);
		sp_buf_append_str(&out, folded);
		nl = strrchr(folded, '\n');
		col = nl == NULL ? strlen(folded) : strlen(nl + 1) + 1;
		/* b= is last, so folding its value changes nothing that
		 * was hashed: the verifier removes all of it. */
		for (const char *p = b64; *p != '\0';) {
			size_t n = strlen(p);

			if (col >= 76) {
				sp_buf_append(&out, "\r\n\t", 3);
				col = 1;
			}
			if (n > 76 - col)
				n = 76 - col;
			sp_buf_append(&out, p, n);
			col += n;
			p += n;
		}
		sp_buf_append(&out, "\r\n", 2);
		*header_r = sp_buf_steal(&out, NULL);
		free(b64);
	}
	for (size_t i = 0; i < nowned; i++)
		free(owned[i]);
	free(folded);
	free(h_list);
	free(bh64);
	return ret;
}

int
mailauth_dkim_sign(const struct mailauth_dkim_sign_params *params,
		   const char *msg, size_t len, char **header_r,
		   const char **error_r)
{
	struct mailauth_sig_params sp = {
		.field = "DKIM-Signature",
		.prefix = "v=1",
		.domain = params->domain,
		.selector = params->selector,
		.key = params->key,
		.header_canon = params->header_canon,
		.body_canon = params->body_canon,
		.headers = params->headers,
		.identity = params->identity,
		.timestamp = params->timestamp,
		.expire_secs = params->expire_secs,
	};
	struct mailauth_msg m;
	int ret;

	if (params->headers != NULL) {
		bool from = false;

		for (size_t i = 0; params->headers[i] != NULL; i++)
			from |= strcasecmp(params->headers[i], "from") == 0;
		if (!from) {
			*error_r = "From must be signed";
			return -1;
		}
	}
	mailauth_msg_parse(msg, len, &m);
	ret = mailauth_sig_create(&sp, &m, header_r, error_r);
	mailauth_msg_deinit(&m);
	return ret;
}

static int
parse_canon(const char *c, enum mailauth_canon *h_r, enum mailauth_canon *b_r)
{
	const char *slash;
	size_t hl;

	*h_r = *b_r = MAILAUTH_CANON_SIMPLE;
	if (c == NULL)
		return 0;
	slash = strchr(c, '/');
	hl = slash == NULL ? strlen(c) : (size_t)(slash - c);
	if (hl == 7 && strncmp(c, "relaxed", 7) == 0)
		*h_r = MAILAUTH_CANON_RELAXED;
	else if (!(hl == 6 && strncmp(c, "simple", 6) == 0))
		return -1;
	if (slash == NULL)
		return 0;
	if (strcmp(slash + 1, "relaxed") == 0)
		*b_r = MAILAUTH_CANON_RELAXED;
	else if (strcmp(slash + 1, "simple") != 0)
		return -1;
	return 0;
}

static bool
h_has_from(const char *h)
{
	char *copy = mailauth_strip_ws(h);
	bool found = false;

	for (char *n = strtok(copy, ":"); n != NULL; n = strtok(NULL, ":"))
		found |= strcasecmp(n, "from") == 0;
	free(copy);
	return found;
}

static bool
parse_uint(const char *s, uint64_t *v_r)
{
	char *end;

	if (s == NULL || !isdigit((unsigned char)*s) || strlen(s) > 18)
		return false;
	*v_r = strtoull(s, &end, 10);
	return *end == '\0';
}

/* Whether identity's domain (after '@') is d or a sub-domain of it. */
static bool
identity_in_domain(const char *identity, const char *d, bool strict)
{
	const char *at = strrchr(identity, '@');
	size_t il, dl = strlen(d);

	if (at == NULL)
		return false;
	at++;
	il = strlen(at);
	if (il == dl)
		return strcasecmp(at, d) == 0;
	if (strict || il < dl + 1)
		return false;
	return at[il - dl - 1] == '.' && strcasecmp(at + il - dl, d) == 0;
}

void
mailauth_sig_verify(struct mailauth_dns *dns, const struct mailauth_msg *msg,
		    const struct mailauth_header *hdr, bool is_arc,
		    struct mailauth_dkim_sig *sig_r)
{
	struct mailauth_tags tags;
	const struct mailauth_tag *btag;
	const char *a, *b, *bh, *d, *h, *s, *i, *l, *q, *t, *x;
	enum mailauth_canon hc, bcanon;
	struct mailauth_pubkey key;
	struct mailauth_body_canon bc;
	unsigned char digest[32], *want = NULL, *sigbytes = NULL;
	size_t want_len, sig_len, voff;
	uint64_t lv = 0, tv = 0, xv = 0;
	struct sp_buf data, raw;
	const char *reason = NULL;

	memset(sig_r, 0, sizeof(*sig_r));
	sig_r->result = MAILAUTH_NEUTRAL;
	if (mailauth_tags_parse(hdr->value, hdr->value_len, &tags) < 0) {
		sig_r->reason = "signature syntax";
		return;
	}
	a = mailauth_tags_get(&tags, "a");
	b = mailauth_tags_get(&tags, "b");
	bh = mailauth_tags_get(&tags, "bh");
	d = mailauth_tags_get(&tags, "d");
	h = mailauth_tags_get(&tags, "h");
	s = mailauth_tags_get(&tags, "s");
	i = mailauth_tags_get(&tags, "i");
	l = mailauth_tags_get(&tags, "l");
	q = mailauth_tags_get(&tags, "q");
	t = mailauth_tags_get(&tags, "t");
	x = mailauth_tags_get(&tags, "x");
	if (d != NULL) {
		sig_r->domain = xstrdup(d);
		str_lower(sig_r->domain);
	}
	if (s != NULL)
		sig_r->selector = xstrdup(s);
	if (b != NULL) {
		char *clean = mailauth_strip_ws(b);

		clean[strlen(clean) > 8 ? 8 : strlen(clean)] = '\0';
		sig_r->b_prefix = clean;
	}
	if (!is_arc) {
		const char *v = mailauth_tags_get(&tags, "v");

		if (v == NULL || strcmp(v, "1") != 0) {
			sig_r->reason = "missing or unknown v=";
			goto out;
		}
		if (i != NULL)
			sig_r->identity = xstrdup(i);
		else if (d != NULL)
			sig_r->identity = xasprintf("@%s", sig_r->domain);
	}
	if (a == NULL || b == NULL || bh == NULL || d == NULL || h == NULL ||
	    s == NULL) {
		sig_r->reason = "missing required tag";
		goto out;
	}
	if (strcmp(a, "rsa-sha256") == 0) {
		sig_r->algorithm = MAILAUTH_KEY_RSA;
	} else if (strcmp(a, "ed25519-sha256") == 0) {
		sig_r->algorithm = MAILAUTH_KEY_ED25519;
	} else {
		/* rsa-sha1 is refused too (RFC 8301). */
		sig_r->result = MAILAUTH_PERMERROR;
		sig_r->reason = "unsupported algorithm";
		goto out;
	}
	if (parse_canon(mailauth_tags_get(&tags, "c"), &hc, &bcanon) < 0) {
		sig_r->reason = "unknown canonicalization";
		goto out;
	}
	if (!mailauth_domain_valid(d, true) ||
	    !mailauth_domain_valid(s, true)) {
		sig_r->reason = "invalid d= or s=";
		goto out;
	}
	if (!is_arc && !h_has_from(h)) {
		sig_r->reason = "From not signed";
		goto out;
	}
	if (!is_arc && i != NULL && !identity_in_domain(i, d, false)) {
		sig_r->reason = "i= not within d=";
		goto out;
	}
	if (q != NULL && strstr(q, "dns/txt") == NULL) {
		sig_r->reason = "unknown query method";
		goto out;
	}
	if ((l != NULL && !parse_uint(l, &lv)) ||
	    (t != NULL && !parse_uint(t, &tv)) ||
	    (x != NULL && !parse_uint(x, &xv))) {
		sig_r->reason = "bad number in l=, t= or x=";
		goto out;
	}
	if (x != NULL && t != NULL && xv < tv) {
		sig_r->reason = "x= before t=";
		goto out;
	}
	if (x != NULL && (uint64_t)clock_now() > xv) {
		sig_r->result = MAILAUTH_FAIL;
		sig_r->reason = "signature expired";
		goto out;
	}
	if (mailauth_base64_decode(bh, &want, &want_len) < 0 ||
	    mailauth_base64_decode(b, &sigbytes, &sig_len) < 0) {
		sig_r->reason = "b= or bh= not base64";
		goto out;
	}

	/* Body first: it needs no DNS. */
	mailauth_body_canon_init(&bc, bcanon, l != NULL ? (int64_t)lv : -1);
	mailauth_body_canon_feed(&bc, msg->body, msg->body_len);
	{
		uint64_t written;

		mailauth_body_canon_finish(&bc, digest);
		written = bc.written;
		if (l != NULL && written < lv) {
			sig_r->result = MAILAUTH_FAIL;
			sig_r->reason = "l= longer than body";
			goto out;
		}
	}
	if (want_len != 32 || memcmp(want, digest, 32) != 0) {
		sig_r->result = MAILAUTH_FAIL;
		sig_r->reason = "body hash mismatch";
		goto out;
	}

	sig_r->result = mailauth_pubkey_fetch(dns, s, d, &key, &reason);
	if (sig_r->result != MAILAUTH_PASS) {
		sig_r->reason = reason;
		goto out;
	}
	if (key.type != sig_r->algorithm) {
		sig_r->result = MAILAUTH_PERMERROR;
		sig_r->reason = "key type does not match a=";
		mailauth_pubkey_deinit(&key);
		goto out;
	}
	if (!is_arc && key.strict && i != NULL &&
	    !identity_in_domain(i, d, true)) {
		sig_r->result = MAILAUTH_FAIL;
		sig_r->reason = "key t=s forbids sub-domain i=";
		mailauth_pubkey_deinit(&key);
		goto out;
	}

	/* The signature field itself, with the value of b= emptied. */
	btag = mailauth_tags_find(&tags, "b");
	voff = (size_t)(hdr->value - hdr->raw);
	sp_buf_init(&raw);
	sp_buf_append(&raw, hdr->raw, voff + btag->value_off);
	sp_buf_append(&raw, hdr->raw + voff + btag->value_off + btag->value_len,
		      hdr->raw_len - voff - btag->value_off - btag->value_len);
	sp_buf_init(&data);
	mailauth_hash_headers(msg, h, hc, &data);
	mailauth_canon_header(hc, raw.data, raw.len, true, &data);
	if (mailauth_pubkey_verify(&key, data.data, data.len, sigbytes,
				   sig_len) == 1) {
		sig_r->result = MAILAUTH_PASS;
		sig_r->reason = NULL;
	} else {
		sig_r->result = MAILAUTH_FAIL;
		sig_r->reason = "signature did not verify";
	}
	sp_buf_deinit(&raw);
	sp_buf_deinit(&data);
	mailauth_pubkey_deinit(&key);
out:
	free(want);
	free(sigbytes);
	mailauth_tags_deinit(&tags);
}

void
mailauth_dkim_verify(struct mailauth_dns *dns, const char *msg, size_t len,
		     unsigned int max_sigs, struct mailauth_dkim_sig **sigs_r,
		     size_t *count_r)
{
	struct mailauth_msg m;
	struct mailauth_dkim_sig *sigs = NULL;
	size_t n = 0;

	if (max_sigs == 0)
		max_sigs = 8;
	mailauth_msg_parse(msg, len, &m);
	for (size_t i = 0; i < m.count && n < max_sigs; i++) {
		if (!mailauth_header_is(&m.headers[i], "DKIM-Signature"))
			continue;
		sigs = xrealloc(sigs, (n + 1) * sizeof(*sigs));
		mailauth_sig_verify(dns, &m, &m.headers[i], false, &sigs[n]);
		n++;
	}
	mailauth_msg_deinit(&m);
	*sigs_r = sigs;
	*count_r = n;
}

void
mailauth_dkim_sigs_free(struct mailauth_dkim_sig **sigs, size_t count)
{
	if (*sigs == NULL)
		return;
	for (size_t i = 0; i < count; i++) {
		free((*sigs)[i].domain);
		free((*sigs)[i].selector);
		free((*sigs)[i].identity);
		free((*sigs)[i].b_prefix);
	}
	free(*sigs);
	*sigs = NULL;
}
