/* SASL PLAIN (RFC 4616), shared by every protocol that logs users in. */
#include "net.h"

#include <sodium.h>
#include <string.h>

enum net_sasl_result
net_sasl_plain_decode(const char *b64, struct net_sasl_plain *plain_r)
{
	size_t b64_len = strlen(b64), len;
	const char *authzid, *authcid, *pass, *end;
	unsigned char *raw;

	memset(plain_r, 0, sizeof(*plain_r));
	if (strcmp(b64, "=") == 0)
		b64_len = 0;
	raw = sodium_malloc(b64_len + 1);
	if (raw == NULL)
		core_panic("sodium_malloc failed");
	if (sodium_base642bin(raw, b64_len + 1, b64, b64_len, NULL, &len,
			      NULL, sodium_base64_VARIANT_ORIGINAL) != 0) {
		sodium_free(raw);
		return NET_SASL_BAD_BASE64;
	}
	raw[len] = '\0';
	authzid = (const char *)raw;
	end = (const char *)raw + len;
	authcid = memchr(authzid, '\0', len) != NULL
			  ? authzid + strlen(authzid) + 1
			  : end;
	pass = authcid < end ? authcid + strlen(authcid) + 1 : end;
	/* We act for nobody else: an authorization id must be the user. */
	if (authcid >= end || pass > end ||
	    (authzid[0] != '\0' && strcmp(authzid, authcid) != 0)) {
		sodium_free(raw);
		return NET_SASL_BAD_CREDENTIALS;
	}
	plain_r->raw = raw;
	plain_r->authcid = authcid;
	plain_r->password = pass;
	plain_r->password_len = (size_t)(end - pass);
	return NET_SASL_OK;
}

void
net_sasl_plain_clear(struct net_sasl_plain *plain)
{
	if (plain->raw != NULL)
		sodium_free(plain->raw); /* wipes */
	memset(plain, 0, sizeof(*plain));
}
