/* ARC (RFC 8617): verify the chain a message carries, seal a forward. */
#include "mailauth/mailauth-private.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#define ARC_MAX_INSTANCE 50

struct arc_set {
	const struct mailauth_header *aar, *ams, *as;
};

/* The i= of an ARC field: the first tag, "i=<1..50>". 0 when missing. */
static unsigned int
arc_instance(const struct mailauth_header *hdr)
{
	const char *p = hdr->value, *end = hdr->value + hdr->value_len;
	unsigned int n = 0;

	while (p < end && isspace((unsigned char)*p))
		p++;
	if (end - p < 2 || p[0] != 'i')
		return 0;
	p++;
	while (p < end && isspace((unsigned char)*p))
		p++;
	if (p == end || *p++ != '=')
		return 0;
	while (p < end && isspace((unsigned char)*p))
		p++;
	if (p == end || !isdigit((unsigned char)*p))
		return 0;
	while (p < end && isdigit((unsigned char)*p)) {
		n = n * 10 + (unsigned int)(*p - '0');
		if (n > ARC_MAX_INSTANCE)
			return 0;
		p++;
	}
	while (p < end && isspace((unsigned char)*p))
		p++;
	if (p != end && *p != ';')
		return 0;
	return n;
}

/* Returns the highest instance (0: no ARC field) or -1 with *reason_r
 * when the sets are not complete and unique. */
static int
arc_collect(const struct mailauth_msg *msg,
	    struct arc_set sets[ARC_MAX_INSTANCE + 1], const char **reason_r)
{
	unsigned int max = 0;
	bool any = false;

	memset(sets, 0, sizeof(*sets) * (ARC_MAX_INSTANCE + 1));
	for (size_t i = 0; i < msg->count; i++) {
		const struct mailauth_header *hdr = &msg->headers[i];
		const struct mailauth_header **slot;
		unsigned int n;

		if (mailauth_header_is(hdr, "ARC-Seal"))
			slot = NULL;
		else if (mailauth_header_is(hdr, "ARC-Message-Signature"))
			slot = NULL;
		else if (mailauth_header_is(hdr, "ARC-Authentication-Results"))
			slot = NULL;
		else
			continue;
		any = true;
		n = arc_instance(hdr);
		if (n == 0) {
			*reason_r = "ARC field without valid i=";
			return -1;
		}
		if (mailauth_header_is(hdr, "ARC-Seal"))
			slot = &sets[n].as;
		else if (mailauth_header_is(hdr, "ARC-Message-Signature"))
			slot = &sets[n].ams;
		else
			slot = &sets[n].aar;
		if (*slot != NULL) {
			*reason_r = "duplicate ARC field";
			return -1;
		}
		*slot = hdr;
		if (n > max)
			max = n;
	}
	if (!any)
		return 0;
	for (unsigned int n = 1; n <= max; n++) {
		if (sets[n].aar == NULL || sets[n].ams == NULL ||
		    sets[n].as == NULL) {
			*reason_r = "incomplete ARC set";
			return -1;
		}
	}
	return (int)max;
}

static void
arc_append_set(struct sp_buf *data, const struct arc_set *set)
{
	mailauth_canon_header(MAILAUTH_CANON_RELAXED, set->aar->raw,
			      set->aar->raw_len, false, data);
	mailauth_canon_header(MAILAUTH_CANON_RELAXED, set->ams->raw,
			      set->ams->raw_len, false, data);
}

/* Verifies ARC-Seal number n over sets 1..n. */
static int
arc_verify_seal(struct mailauth_dns *dns, const struct arc_set *sets,
		unsigned int n, const char **reason_r)
{
	const struct mailauth_header *as = sets[n].as;
	struct mailauth_tags tags;
	const struct mailauth_tag *btag;
	const char *a, *b, *cv, *d, *s;
	struct mailauth_pubkey key;
	unsigned char *sig = NULL;
	size_t sig_len, voff;
	struct sp_buf data;
	enum mailauth_key_type type;
	int ret = -1;

	if (mailauth_tags_parse(as->value, as->value_len, &tags) < 0) {
		*reason_r = "ARC-Seal syntax";
		return -1;
	}
	a = mailauth_tags_get(&tags, "a");
	b = mailauth_tags_get(&tags, "b");
	cv = mailauth_tags_get(&tags, "cv");
	d = mailauth_tags_get(&tags, "d");
	s = mailauth_tags_get(&tags, "s");
	if (a == NULL || b == NULL || cv == NULL || d == NULL || s == NULL ||
	    mailauth_tags_find(&tags, "h") != NULL) {
		*reason_r = "ARC-Seal tags";
		goto out;
	}
	if ((n == 1 && strcmp(cv, "none") != 0) ||
	    (n > 1 && strcmp(cv, "pass") != 0)) {
		*reason_r = "ARC-Seal cv= out of sequence";
		goto out;
	}
	if (strcmp(a, "rsa-sha256") == 0)
		type = MAILAUTH_KEY_RSA;
	else if (strcmp(a, "ed25519-sha256") == 0)
		type = MAILAUTH_KEY_ED25519;
	else {
		*reason_r = "ARC-Seal algorithm";
		goto out;
	}
	if (mailauth_base64_decode(b, &sig, &sig_len) < 0) {
		*reason_r = "ARC-Seal b= not base64";
		goto out;
	}
	if (mailauth_pubkey_fetch(dns, s, d, &key, reason_r) != MAILAUTH_PASS)
		goto out;
	if (key.type != type) {
		*reason_r = "ARC-Seal key type";
		mailauth_pubkey_deinit(&key);
		goto out;
	}
	sp_buf_init(&data);
	for (unsigned int i = 1; i < n; i++) {
		arc_append_set(&data, &sets[i]);
		mailauth_canon_header(MAILAUTH_CANON_RELAXED, sets[i].as->raw,
				      sets[i].as->raw_len, false, &data);
	}
	arc_append_set(&data, &sets[n]);
	{
		struct sp_buf raw;

		btag = mailauth_tags_find(&tags, "b");
		voff = (size_t)(as->value - as->raw);
		sp_buf_init(&raw);
		sp_buf_append(&raw, as->raw, voff + btag->value_off);
		sp_buf_append(
			&raw,
			as->raw + voff + btag->value_off + btag->value_len,
			as->raw_len - voff - btag->value_off - btag->value_len);
		mailauth_canon_header(MAILAUTH_CANON_RELAXED, raw.data, raw.len,
				      true, &data);
		sp_buf_deinit(&raw);
	}
	if (mailauth_pubkey_verify(&key, data.data, data.len, sig, sig_len) ==
	    1)
		ret = 0;
	else
		*reason_r = "ARC-Seal did not verify";
	sp_buf_deinit(&data);
	mailauth_pubkey_deinit(&key);
out:
	free(sig);
	mailauth_tags_deinit(&tags);
	return ret;
}

static bool
seal_says_fail(const struct mailauth_header *as)
{
	struct mailauth_tags tags;
	bool fail = false;

	if (mailauth_tags_parse(as->value, as->value_len, &tags) == 0) {
		const char *cv = mailauth_tags_get(&tags, "cv");

		fail = cv != NULL && strcmp(cv, "fail") == 0;
		mailauth_tags_deinit(&tags);
	}
	return fail;
}

void
mailauth_arc_verify(struct mailauth_dns *dns, const char *msg, size_t len,
		    struct mailauth_arc_result *result_r)
{
	struct arc_set sets[ARC_MAX_INSTANCE + 1];
	struct mailauth_msg m;
	struct mailauth_dkim_sig ams;
	int max;

	memset(result_r, 0, sizeof(*result_r));
	mailauth_msg_parse(msg, len, &m);
	max = arc_collect(&m, sets, &result_r->reason);
	if (max <= 0) {
		result_r->result = max == 0 ? MAILAUTH_NONE : MAILAUTH_FAIL;
		mailauth_msg_deinit(&m);
		return;
	}
	result_r->instances = (unsigned int)max;
	result_r->result = MAILAUTH_FAIL;
	if (seal_says_fail(sets[max].as)) {
		result_r->reason = "chain already failed";
		goto out;
	}
	/* Only the newest AMS must hold (RFC 8617 5.2 step 5). */
	mailauth_sig_verify(dns, &m, sets[max].ams, true, &ams);
	if (ams.result != MAILAUTH_PASS) {
		result_r->reason = "newest ARC-Message-Signature failed";
	}
	free(ams.domain);
	free(ams.selector);
	free(ams.identity);
	free(ams.b_prefix);
	if (result_r->reason != NULL)
		goto out;
	for (int n = max; n >= 1; n--) {
		if (arc_verify_seal(dns, sets, (unsigned int)n,
				    &result_r->reason) < 0)
			goto out;
	}
	result_r->result = MAILAUTH_PASS;
	result_r->reason = NULL;
	{
		struct mailauth_tags tags;

		if (mailauth_tags_parse(sets[1].as->value,
					sets[1].as->value_len, &tags) == 0) {
			const char *d = mailauth_tags_get(&tags, "d");

			if (d != NULL)
				result_r->oldest_pass_domain = xstrdup(d);
			mailauth_tags_deinit(&tags);
		}
	}
out:
	mailauth_msg_deinit(&m);
}

void
mailauth_arc_result_clear(struct mailauth_arc_result *result)
{
	free(result->oldest_pass_domain);
	memset(result, 0, sizeof(*result));
}

/* Folds an AAR value at its "; " separators. */
static char *
arc_fold_aar(unsigned int instance, const char *authserv_id,
	     const char *results)
{
	struct sp_buf out;
	size_t col;
	const char *p = results;

	sp_buf_init(&out);
	sp_buf_printf(&out, "ARC-Authentication-Results: i=%u; %s", instance,
		      authserv_id);
	col = out.len;
	while (*p != '\0') {
		const char *semi = strchr(p, ';');
		size_t n = semi == NULL ? strlen(p) : (size_t)(semi - p);

		while (n > 0 && isspace((unsigned char)*p)) {
			p++;
			n--;
		}
		if (n == 0 && semi == NULL)
			break;
		sp_buf_append(&out, ";", 1);
		col++;
		if (col + n + 1 > 76) {
			sp_buf_append(&out, "\r\n\t", 3);
			col = 1;
		} else {
			sp_buf_append(&out, " ", 1);
			col++;
		}
		sp_buf_append(&out, p, n);
		col += n;
		p += n;
		if (*p == ';')
			p++;
	}
	sp_buf_append(&out, "\r\n", 2);
	return sp_buf_steal(&out, NULL);
}

int
mailauth_arc_seal(const struct mailauth_arc_seal_params *params,
		  const char *msg, size_t len, char **headers_r,
		  const char **error_r)
{
	struct arc_set sets[ARC_MAX_INSTANCE + 1];
	struct mailauth_msg m, am;
	unsigned int instance = params->chain_instances + 1;
	bool fail = params->chain == MAILAUTH_FAIL;
	char *aar, *ams = NULL, *prefix, *folded, *b64, *tagstr[7];
	const char *tags[7], *cv;
	struct sp_buf data, out;
	unsigned char *sig;
	size_t sig_len, col;
	time_t t = params->timestamp != 0 ? params->timestamp : clock_now();
	int max, ret = -1;

	if (instance > ARC_MAX_INSTANCE) {
		*error_r = "ARC chain too long";
		return -1;
	}
	if (params->key == NULL ||
	    mailauth_key_get_type(params->key) != MAILAUTH_KEY_RSA) {
		/* RFC 8617 verifiers know rsa-sha256 only. */
		*error_r = "ARC needs an RSA key (rsa-sha256)";
		return -1;
	}
	if (params->authserv_id == NULL || params->results == NULL) {
		*error_r = "missing authserv-id or results";
		return -1;
	}
	mailauth_msg_parse(msg, len, &m);
	max = arc_collect(&m, sets, error_r);
	if (!fail &&
	    (max < 0 || (unsigned int)max != params->chain_instances)) {
		/* The caller's chain state does not describe this message. */
		*error_r = "ARC chain state does not match the message";
		mailauth_msg_deinit(&m);
		return -1;
	}
	if (fail)
		cv = "fail";
	else
		cv = instance == 1 ? "none" : "pass";

	prefix = xasprintf("i=%u", instance);
	{
		struct mailauth_sig_params sp = {
			.field = "ARC-Message-Signature",
			.prefix = prefix,
			.domain = params->domain,
			.selector = params->selector,
			.key = params->key,
			.header_canon = MAILAUTH_CANON_RELAXED,
			.body_canon = MAILAUTH_CANON_RELAXED,
			.headers = params->headers,
			.skip_arc = true,
			.timestamp = t,
		};

		if (mailauth_sig_create(&sp, &m, &ams, error_r) < 0) {
			free(prefix);
			mailauth_msg_deinit(&m);
			return -1;
		}
	}
	aar = arc_fold_aar(instance, params->authserv_id, params->results);

	tagstr[0] = prefix;
	tagstr[1] = xasprintf("cv=%s", cv);
	tagstr[2] = xasprintf("a=%s", mailauth_key_algorithm(params->key));
	tagstr[3] = xasprintf("d=%s", params->domain);
	tagstr[4] = xasprintf("s=%s", params->selector);
	tagstr[5] = xasprintf("t=%lld", (long long)t);
	for (size_t i = 0; i < 6; i++)
		tags[i] = tagstr[i];
	tags[6] = "b=";
	folded = mailauth_fold("ARC-Seal", tags, 7);

	/* The seal covers every earlier set (unless the chain failed:
	 * then only its own), oldest first, then the new AAR and AMS and
	 * itself with b= empty. */
	sp_buf_init(&data);
	for (unsigned int i = 1; !fail && i < instance; i++) {
		arc_append_set(&data, &sets[i]);
		mailauth_canon_header(MAILAUTH_CANON_RELAXED, sets[i].as->raw,
				      sets[i].as->raw_len, false, &data);
	}
	{
		/* Parse the new fields like received ones, so the seal
		 * hashes exactly what a verifier will see. */
		char *both = xasprintf("%s%s\r\n", aar, ams);

		mailauth_msg_parse(both, strlen(both), &am);
		SP_ASSERT(am.count == 2);
		mailauth_canon_header(MAILAUTH_CANON_RELAXED, am.headers[0].raw,
				      am.headers[0].raw_len, false, &data);
		mailauth_canon_header(MAILAUTH_CANON_RELAXED, am.headers[1].raw,
				      am.headers[1].raw_len, false, &data);
		mailauth_msg_deinit(&am);
		free(both);
	}
	mailauth_canon_header(MAILAUTH_CANON_RELAXED, folded, strlen(folded),
			      true, &data);
	if (mailauth_key_sign(params->key, data.data, data.len, &sig,
			      &sig_len) < 0) {
		*error_r = "signing failed";
		goto out;
	}
	b64 = mailauth_base64_encode(sig, sig_len);
	free(sig);
	sp_buf_init(&out);
	sp_buf_append_str(&out, folded);
	col = strrchr(folded, '\n') == NULL
		      ? strlen(folded)
		      : strlen(strrchr(folded, '\n') + 1) + 1;
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
	sp_buf_append_str(&out, ams);
	sp_buf_append_str(&out, aar);
	*headers_r = sp_buf_steal(&out, NULL);
	free(b64);
	ret = 0;
out:
	sp_buf_deinit(&data);
	for (size_t i = 0; i < 6; i++)
		free(tagstr[i]);
	free(folded);
	free(aar);
	free(ams);
	mailauth_msg_deinit(&m);
	return ret;
}
