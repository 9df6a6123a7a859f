/* Signing keys (RSA 2048, Ed25519) and the public keys of DKIM records. */
#include "mailauth/mailauth-private.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

struct mailauth_key {
	EVP_PKEY *pkey;
	enum mailauth_key_type type;
};

static struct mailauth_key *
key_wrap(EVP_PKEY *pkey, const char **error_r)
{
	struct mailauth_key *key;

	switch (EVP_PKEY_get_base_id(pkey)) {
	case EVP_PKEY_RSA:
		if (EVP_PKEY_get_bits(pkey) < 1024) {
			*error_r = "RSA key shorter than 1024 bits";
			EVP_PKEY_free(pkey);
			return NULL;
		}
		key = xcalloc(1, sizeof(*key));
		key->type = MAILAUTH_KEY_RSA;
		break;
	case EVP_PKEY_ED25519:
		key = xcalloc(1, sizeof(*key));
		key->type = MAILAUTH_KEY_ED25519;
		break;
	default:
		*error_r = "key is neither RSA nor Ed25519";
		EVP_PKEY_free(pkey);
		return NULL;
	}
	key->pkey = pkey;
	return key;
}

struct mailauth_key *
mailauth_key_generate(enum mailauth_key_type type, const char **error_r)
{
	EVP_PKEY *pkey;

	if (type == MAILAUTH_KEY_RSA)
		pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	else
		pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	if (pkey == NULL) {
		*error_r = "key generation failed";
		return NULL;
	}
	return key_wrap(pkey, error_r);
}

struct mailauth_key *
mailauth_key_load_pem(const char *pem, size_t len, const char **error_r)
{
	BIO *bio = BIO_new_mem_buf(pem, (int)len);
	EVP_PKEY *pkey;

	if (bio == NULL) {
		*error_r = "out of memory";
		return NULL;
	}
	pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	BIO_free(bio);
	if (pkey == NULL) {
		*error_r = "not a PEM private key";
		return NULL;
	}
	return key_wrap(pkey, error_r);
}

void
mailauth_key_destroy(struct mailauth_key **key)
{
	if (*key == NULL)
		return;
	EVP_PKEY_free((*key)->pkey);
	free(*key);
	*key = NULL;
}

enum mailauth_key_type
mailauth_key_get_type(const struct mailauth_key *key)
{
	return key->type;
}

const char *
mailauth_key_algorithm(const struct mailauth_key *key)
{
	return key->type == MAILAUTH_KEY_RSA ? "rsa-sha256" : "ed25519-sha256";
}

int
mailauth_key_to_pem(const struct mailauth_key *key, char **pem_r, size_t *len_r,
		    const char **error_r)
{
	BIO *bio = BIO_new(BIO_s_secmem());
	char *data, *out;
	long n;

	if (bio == NULL)
		bio = BIO_new(BIO_s_mem());
	if (bio == NULL ||
	    PEM_write_bio_PKCS8PrivateKey(bio, key->pkey, NULL, NULL, 0, NULL,
					  NULL) != 1) {
		BIO_free(bio);
		*error_r = "PEM encoding failed";
		return -1;
	}
	n = BIO_get_mem_data(bio, &data);
	out = sodium_malloc((size_t)n + 1);
	if (out == NULL)
		core_panic("sodium_malloc failed");
	memcpy(out, data, (size_t)n);
	out[n] = '\0';
	OPENSSL_cleanse(data, (size_t)n);
	BIO_free(bio);
	*pem_r = out;
	*len_r = (size_t)n;
	return 0;
}

void
mailauth_pem_free(char **pem)
{
	if (*pem == NULL)
		return;
	sodium_free(*pem); /* wipes */
	*pem = NULL;
}

char *
mailauth_key_dns_record(const struct mailauth_key *key)
{
	unsigned char *der = NULL, raw[32];
	size_t raw_len = sizeof(raw);
	char *b64, *out;
	int n;

	if (key->type == MAILAUTH_KEY_ED25519) {
		if (EVP_PKEY_get_raw_public_key(key->pkey, raw, &raw_len) != 1)
			core_panic("mailauth: Ed25519 public key");
		b64 = mailauth_base64_encode(raw, raw_len);
		out = xasprintf("v=DKIM1; k=ed25519; p=%s", b64);
		free(b64);
		return out;
	}
	n = i2d_PUBKEY(key->pkey, &der);
	if (n <= 0)
		core_panic("mailauth: RSA public key");
	b64 = mailauth_base64_encode(der, (size_t)n);
	OPENSSL_free(der);
	out = xasprintf("v=DKIM1; k=rsa; p=%s", b64);
	free(b64);
	return out;
}

/* Both algorithms sign the SHA-256 of the data: RSASSA-PKCS1-v1_5 over the
 * digest, and for Ed25519 (RFC 8463) PureEdDSA over the 32 digest
 * bytes. */
int
mailauth_key_sign(const struct mailauth_key *key, const void *data, size_t len,
		  unsigned char **sig_r, size_t *sig_len_r)
{
	unsigned char digest[32];
	unsigned char *sig = NULL;
	size_t sig_len = 0;
	int ret = -1;

	if (EVP_Digest(data, len, digest, NULL, EVP_sha256(), NULL) != 1)
		return -1;
	if (key->type == MAILAUTH_KEY_RSA) {
		EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(key->pkey, NULL);

		if (ctx != NULL && EVP_PKEY_sign_init(ctx) == 1 &&
		    EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) == 1 &&
		    EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) == 1 &&
		    EVP_PKEY_sign(ctx, NULL, &sig_len, digest, 32) == 1) {
			sig = xmalloc(sig_len);
			if (EVP_PKEY_sign(ctx, sig, &sig_len, digest, 32) == 1)
				ret = 0;
		}
		EVP_PKEY_CTX_free(ctx);
	} else {
		EVP_MD_CTX *md = EVP_MD_CTX_new();

		sig_len = 64;
		sig = xmalloc(sig_len);
		if (md != NULL &&
		    EVP_DigestSignInit(md, NULL, NULL, NULL, key->pkey) == 1 &&
		    EVP_DigestSign(md, sig, &sig_len, digest, 32) == 1)
			ret = 0;
		EVP_MD_CTX_free(md);
	}
	if (ret < 0) {
		free(sig);
		return -1;
	}
	*sig_r = sig;
	*sig_len_r = sig_len;
	return 0;
}

/* Public keys from DNS (RFC 6376 3.6.1). */

static EVP_PKEY *
rsa_from_der(const unsigned char *der, size_t len)
{
	const unsigned char *p = der;
	EVP_PKEY *pkey = d2i_PUBKEY(NULL, &p, (long)len);

	if (pkey != NULL)
		return pkey;
	/* Some publish the bare RSAPublicKey (PKCS#1). */
	p = der;
	return d2i_PublicKey(EVP_PKEY_RSA, NULL, &p, (long)len);
}

static enum mailauth_result
pubkey_parse(const char *record, struct mailauth_pubkey *key_r,
	     const char **reason_r)
{
	struct mailauth_tags tags;
	const char *v, *k, *p, *h, *t, *s;
	unsigned char *der;
	size_t der_len;
	enum mailauth_result result = MAILAUTH_PERMERROR;

	if (mailauth_tags_parse(record, strlen(record), &tags) < 0) {
		*reason_r = "key record syntax";
		return MAILAUTH_PERMERROR;
	}
	v = mailauth_tags_get(&tags, "v");
	k = mailauth_tags_get(&tags, "k");
	p = mailauth_tags_get(&tags, "p");
	h = mailauth_tags_get(&tags, "h");
	t = mailauth_tags_get(&tags, "t");
	s = mailauth_tags_get(&tags, "s");
	if (v != NULL &&
	    (strcmp(v, "DKIM1") != 0 || strcmp(tags.tags[0].name, "v") != 0)) {
		*reason_r = "key record version";
		goto out;
	}
	if (p == NULL) {
		*reason_r = "key record without p=";
		goto out;
	}
	if (p[0] == '\0') {
		*reason_r = "key revoked";
		goto out;
	}
	if (h != NULL && strstr(h, "sha256") == NULL) {
		*reason_r = "key does not allow sha256";
		goto out;
	}
	if (s != NULL && strstr(s, "email") == NULL && strstr(s, "*") == NULL) {
		*reason_r = "key not for email";
		goto out;
	}
	if (mailauth_base64_decode(p, &der, &der_len) < 0) {
		*reason_r = "key not base64";
		goto out;
	}
	if (k == NULL || strcmp(k, "rsa") == 0) {
		key_r->pkey = rsa_from_der(der, der_len);
		key_r->type = MAILAUTH_KEY_RSA;
		if (key_r->pkey != NULL &&
		    EVP_PKEY_get_base_id(key_r->pkey) != EVP_PKEY_RSA) {
			EVP_PKEY_free(key_r->pkey);
			key_r->pkey = NULL;
		}
		if (key_r->pkey != NULL &&
		    EVP_PKEY_get_bits(key_r->pkey) < 1024) {
			EVP_PKEY_free(key_r->pkey);
			key_r->pkey = NULL;
			free(der);
			*reason_r = "RSA key shorter than 1024 bits";
			result = MAILAUTH_POLICY;
			goto out;
		}
	} else if (strcmp(k, "ed25519") == 0) {
		key_r->type = MAILAUTH_KEY_ED25519;
		if (der_len == 32)
			key_r->pkey = EVP_PKEY_new_raw_public_key(
				EVP_PKEY_ED25519, NULL, der, der_len);
	} else {
		free(der);
		*reason_r = "unknown key type";
		goto out;
	}
	free(der);
	if (key_r->pkey == NULL) {
		*reason_r = "key not parseable";
		goto out;
	}
	if (t != NULL) {
		char *flags = mailauth_strip_ws(t);

		for (char *f = strtok(flags, ":"); f != NULL;
		     f = strtok(NULL, ":")) {
			if (strcmp(f, "y") == 0)
				key_r->testing = true;
			else if (strcmp(f, "s") == 0)
				key_r->strict = true;
		}
		free(flags);
	}
	result = MAILAUTH_PASS;
out:
	mailauth_tags_deinit(&tags);
	return result;
}

enum mailauth_result
mailauth_pubkey_fetch(struct mailauth_dns *dns, const char *selector,
		      const char *domain, struct mailauth_pubkey *key_r,
		      const char **reason_r)
{
	struct mailauth_dns_reply reply;
	enum mailauth_dns_status status;
	enum mailauth_result result = MAILAUTH_PERMERROR;
	char *name = xasprintf("%s._domainkey.%s", selector, domain);

	memset(key_r, 0, sizeof(*key_r));
	memset(&reply, 0, sizeof(reply));
	status = dns->v->txt(dns->context, name, &reply);
	free(name);
	if (status == MAILAUTH_DNS_TEMPFAIL) {
		mailauth_dns_reply_clear(&reply);
		*reason_r = "key lookup failed";
		return MAILAUTH_TEMPERROR;
	}
	if (status != MAILAUTH_DNS_OK) {
		mailauth_dns_reply_clear(&reply);
		*reason_r = "no key";
		return MAILAUTH_PERMERROR;
	}
	if (reply.count != 1) {
		/* RFC 6376 leaves several records open; one must parse. */
		for (size_t i = 0; i < reply.count; i++) {
			result =
				pubkey_parse(reply.strings[i], key_r, reason_r);
			if (result == MAILAUTH_PASS)
				break;
		}
	} else {
		result = pubkey_parse(reply.strings[0], key_r, reason_r);
	}
	mailauth_dns_reply_clear(&reply);
	return result;
}

void
mailauth_pubkey_deinit(struct mailauth_pubkey *key)
{
	EVP_PKEY_free(key->pkey);
	memset(key, 0, sizeof(*key));
}

int
mailauth_pubkey_verify(const struct mailauth_pubkey *key, const void *data,
		       size_t len, const unsigned char *sig, size_t sig_len)
{
	unsigned char digest[32];
	int ok = 0;

	if (EVP_Digest(data, len, digest, NULL, EVP_sha256(), NULL) != 1)
		return 0;
	if (key->type == MAILAUTH_KEY_RSA) {
		EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(key->pkey, NULL);

		ok = ctx != NULL && EVP_PKEY_verify_init(ctx) == 1 &&
		     EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) ==
			     1 &&
		     EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) == 1 &&
		     EVP_PKEY_verify(ctx, sig, sig_len, digest, 32) == 1;
		EVP_PKEY_CTX_free(ctx);
	} else {
		EVP_MD_CTX *md = EVP_MD_CTX_new();

		ok = md != NULL &&
		     EVP_DigestVerifyInit(md, NULL, NULL, NULL, key->pkey) ==
			     1 &&
		     EVP_DigestVerify(md, sig, sig_len, digest, 32) == 1;
		EVP_MD_CTX_free(md);
	}
	return ok ? 1 : 0;
}
