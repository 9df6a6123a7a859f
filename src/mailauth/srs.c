/* SRS, the Shevek scheme as libsrs2 implements it:
 *	SRS0=HHHH=TT=orig-domain=orig-local@forwarder
 *	SRS1=HHHH=first-hop==HHHH=TT=orig-domain=orig-local@forwarder
 * HHHH: the first 4 base64 characters of HMAC-SHA1 over the lower-cased
 * fields; TT: the day number modulo 1024 in base32. */
#include "mailauth/mailauth-private.h"
#include "crypto/crypto.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/hmac.h>

#define SRS_HASH_LEN   4
#define SRS_TIME_SLOTS 1024
#define SRS_DAY	       86400

static const char srs_base32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

struct mailauth_srs {
	struct crypto_key *key;
};

struct mailauth_srs *
mailauth_srs_create(const struct crypto_key *server_key)
{
	static const char label[] = "sealpost srs hmac key v1";
	struct mailauth_srs *srs = xcalloc(1, sizeof(*srs));

	/* A sub-key, so the server key itself never keys an HMAC that
	 * anyone can query with chosen input. */
	srs->key = crypto_key_create();
	crypto_keyed_hash(server_key, label, sizeof(label) - 1,
			  srs->key->bytes);
	return srs;
}

void
mailauth_srs_destroy(struct mailauth_srs **srs)
{
	if (*srs == NULL)
		return;
	crypto_key_destroy(&(*srs)->key);
	free(*srs);
	*srs = NULL;
}

/* HMAC over the lower-cased concatenation of the fields. */
static void
srs_hash(const struct mailauth_srs *srs, const char *const *fields, size_t n,
	 char out[SRS_HASH_LEN + 1])
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int mac_len = 0;
	struct sp_buf data;
	char *b64;

	sp_buf_init(&data);
	for (size_t i = 0; i < n; i++)
		sp_buf_append_str(&data, fields[i]);
	str_lower(data.data);
	HMAC(EVP_sha1(), srs->key->bytes, CRYPTO_KEY_BYTES,
	     (unsigned char *)data.data, data.len, mac, &mac_len);
	sp_buf_deinit(&data);
	b64 = mailauth_base64_encode(mac, mac_len);
	memcpy(out, b64, SRS_HASH_LEN);
	out[SRS_HASH_LEN] = '\0';
	free(b64);
}

static bool
srs_hash_ok(const struct mailauth_srs *srs, const char *const *fields, size_t n,
	    const char *given, size_t given_len)
{
	char want[SRS_HASH_LEN + 1];

	srs_hash(srs, fields, n, want);
	/* Case-insensitive like libsrs2: some MTAs fold the local part. */
	return given_len == SRS_HASH_LEN &&
	       strncasecmp(want, given, SRS_HASH_LEN) == 0;
}

static void
srs_timestamp(char out[3])
{
	unsigned int day =
		(unsigned int)((clock_now() / SRS_DAY) % SRS_TIME_SLOTS);

	out[0] = srs_base32[(day >> 5) & 31];
	out[1] = srs_base32[day & 31];
	out[2] = '\0';
}

static int
srs_timestamp_check(const char *ts, size_t len)
{
	unsigned int then = 0, now;

	if (len != 2)
		return -1;
	for (size_t i = 0; i < 2; i++) {
		const char *p =
			strchr(srs_base32, toupper((unsigned char)ts[i]));

		if (p == NULL || ts[i] == '\0')
			return -1;
		then = then * 32 + (unsigned int)(p - srs_base32);
	}
	now = (unsigned int)((clock_now() / SRS_DAY) % SRS_TIME_SLOTS);
	if (then > now)
		then -= SRS_TIME_SLOTS; /* wrapped; unsigned arithmetic */
	if (now - then > MAILAUTH_SRS_MAX_AGE_DAYS)
		return -1;
	return 0;
}

bool
mailauth_srs_is_srs(const char *local)
{
	return strlen(local) > 5 &&
	       (strncasecmp(local, "SRS0", 4) == 0 ||
		strncasecmp(local, "SRS1", 4) == 0) &&
	       strchr("=+-", local[4]) != NULL;
}

int
mailauth_srs_forward(const struct mailauth_srs *srs, const char *sender,
		     const char *our_domain, char **rewritten_r,
		     const char **error_r)
{
	const char *at = strrchr(sender, '@');
	char *local, hash[SRS_HASH_LEN + 1], ts[3];
	const char *domain;

	if (sender[0] == '\0') {
		*rewritten_r = xstrdup("");
		return 0;
	}
	if (at == NULL || at == sender || at[1] == '\0' ||
	    strchr(sender, ' ') != NULL) {
		*error_r = "sender is not local@domain";
		return -1;
	}
	domain = at + 1;
	if (strcasecmp(domain, our_domain) == 0) {
		*rewritten_r = xstrdup(sender);
		return 0;
	}
	local = xstrndup(sender, (size_t)(at - sender));
	if (mailauth_srs_is_srs(local)) {
		const char *rest = local + 4; /* from the separator on */
		const char *first_hop = domain;
		char *hop = NULL;

		if (toupper((unsigned char)local[3]) == '1') {
			/* SRS1=HHHH=hop==rest: keep hop and rest, re-hash. */
			const char *h = strchr(local + 5, '=');
			const char *sep = h == NULL ? NULL : strchr(h + 1, '=');

			if (h == NULL || sep == NULL || sep[1] == '\0') {
				free(local);
				*error_r = "malformed SRS1 sender";
				return -1;
			}
			hop = xstrndup(h + 1, (size_t)(sep - h - 1));
			first_hop = hop;
			rest = sep + 1;
		}
		{
			const char *fields[] = {first_hop, rest};

			srs_hash(srs, fields, 2, hash);
		}
		*rewritten_r = xasprintf("SRS1=%s=%s=%s@%s", hash, first_hop,
					 rest, our_domain);
		free(hop);
		free(local);
		return 0;
	}
	srs_timestamp(ts);
	{
		const char *fields[] = {ts, domain, local};

		srs_hash(srs, fields, 3, hash);
	}
	*rewritten_r = xasprintf("SRS0=%s=%s=%s=%s@%s", hash, ts, domain, local,
				 our_domain);
	free(local);
	return 0;
}

int
mailauth_srs_reverse(const struct mailauth_srs *srs, const char *address,
		     char **original_r, const char **error_r)
{
	const char *at = strrchr(address, '@');
	char *local = at == NULL ? xstrdup(address)
				 : xstrndup(address, (size_t)(at - address));
	const char *p, *h_end;
	int ret = -1;

	if (!mailauth_srs_is_srs(local)) {
		free(local);
		return 0;
	}
	p = local + 5;
	h_end = strchr(p, '=');
	if (h_end == NULL) {
		*error_r = "malformed SRS address";
		goto out;
	}
	if (toupper((unsigned char)local[3]) == '0') {
		/* HHHH=TT=domain=local */
		const char *ts = h_end + 1, *ts_end = strchr(ts, '=');
		const char *dom, *dom_end;
		char *tsv, *domv;

		if (ts_end == NULL ||
		    (dom_end = strchr(ts_end + 1, '=')) == NULL ||
		    dom_end[1] == '\0' || dom_end == ts_end + 1) {
			*error_r = "malformed SRS0 address";
			goto out;
		}
		dom = ts_end + 1;
		tsv = xstrndup(ts, (size_t)(ts_end - ts));
		domv = xstrndup(dom, (size_t)(dom_end - dom));
		{
			const char *fields[] = {tsv, domv, dom_end + 1};

			if (!srs_hash_ok(srs, fields, 3, p,
					 (size_t)(h_end - p))) {
				*error_r = "SRS hash does not match";
			} else if (srs_timestamp_check(tsv, strlen(tsv)) < 0) {
				*error_r = "SRS address expired";
			} else {
				*original_r =
					xasprintf("%s@%s", dom_end + 1, domv);
				ret = 1;
			}
		}
		free(tsv);
		free(domv);
	} else {
		/* HHHH=hop==rest -> SRS0=rest@hop (the first forwarder
		 * checks its own hash and time stamp). */
		const char *hop = h_end + 1, *sep = strchr(hop, '=');
		char *hopv;

		if (sep == NULL || sep == hop || sep[1] == '\0') {
			*error_r = "malformed SRS1 address";
			goto out;
		}
		hopv = xstrndup(hop, (size_t)(sep - hop));
		{
			const char *fields[] = {hopv, sep + 1};

			if (!srs_hash_ok(srs, fields, 2, p,
					 (size_t)(h_end - p))) {
				*error_r = "SRS hash does not match";
			} else {
				*original_r =
					xasprintf("SRS0%s@%s", sep + 1, hopv);
				ret = 1;
			}
		}
		free(hopv);
	}
out:
	free(local);
	return ret;
}
