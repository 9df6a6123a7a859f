/* Small shared pieces: result names, addresses, base64, DNS replies. */
#include "mailauth/mailauth-private.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/evp.h>

const char *
mailauth_result_name(enum mailauth_result result)
{
	switch (result) {
	case MAILAUTH_NONE:
		return "none";
	case MAILAUTH_PASS:
		return "pass";
	case MAILAUTH_FAIL:
		return "fail";
	case MAILAUTH_SOFTFAIL:
		return "softfail";
	case MAILAUTH_NEUTRAL:
		return "neutral";
	case MAILAUTH_POLICY:
		return "policy";
	case MAILAUTH_TEMPERROR:
		return "temperror";
	case MAILAUTH_PERMERROR:
		return "permerror";
	}
	return "none";
}

int
mailauth_ip_parse(const char *text, struct mailauth_ip *ip_r)
{
	static const unsigned char mapped[12] = {0, 0, 0, 0, 0,	   0,
						 0, 0, 0, 0, 0xff, 0xff};

	memset(ip_r, 0, sizeof(*ip_r));
	if (inet_pton(AF_INET, text, ip_r->addr) == 1) {
		ip_r->family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, text, ip_r->addr) == 1) {
		ip_r->family = AF_INET6;
		if (memcmp(ip_r->addr, mapped, 12) == 0) {
			memmove(ip_r->addr, ip_r->addr + 12, 4);
			memset(ip_r->addr + 4, 0, 12);
			ip_r->family = AF_INET;
		}
		return 0;
	}
	return -1;
}

void
mailauth_ip_format(const struct mailauth_ip *ip, char out[46])
{
	if (inet_ntop(ip->family, ip->addr, out, 46) == NULL)
		str_copy(out, "invalid", 46);
}

void
mailauth_dns_reply_clear(struct mailauth_dns_reply *reply)
{
	for (size_t i = 0; reply->strings != NULL && i < reply->count; i++)
		free(reply->strings[i]);
	free(reply->strings);
	free(reply->mx_prefs);
	free(reply->ips);
	memset(reply, 0, sizeof(*reply));
}

void
mailauth_dns_destroy(struct mailauth_dns **dns)
{
	if (*dns == NULL)
		return;
	if ((*dns)->v->destroy != NULL)
		(*dns)->v->destroy((*dns)->context);
	free(*dns);
	*dns = NULL;
}

char *
mailauth_strip_ws(const char *s)
{
	char *out = xmalloc(strlen(s) + 1), *p = out;

	for (; *s != '\0'; s++) {
		if (!isspace((unsigned char)*s))
			*p++ = *s;
	}
	*p = '\0';
	return out;
}

char *
mailauth_base64_encode(const unsigned char *data, size_t len)
{
	char *out = xmalloc(4 * ((len + 2) / 3) + 1);

	EVP_EncodeBlock((unsigned char *)out, data, (int)len);
	return out;
}

int
mailauth_base64_decode(const char *text, unsigned char **data_r, size_t *len_r)
{
	char *clean = mailauth_strip_ws(text);
	size_t len = strlen(clean), pad = 0;
	unsigned char *out;
	int n;

	/* EVP_DecodeBlock wants whole quanta and counts padding as data. */
	if (len % 4 != 0 || len > (size_t)1 << 24) {
		free(clean);
		return -1;
	}
	if (len > 0 && clean[len - 1] == '=')
		pad++;
	if (len > 1 && clean[len - 2] == '=')
		pad++;
	out = xmalloc(len / 4 * 3 + 1);
	n = EVP_DecodeBlock(out, (unsigned char *)clean, (int)len);
	free(clean);
	if (n < 0 || (size_t)n < pad) {
		free(out);
		return -1;
	}
	*data_r = out;
	*len_r = (size_t)n - pad;
	return 0;
}

bool
mailauth_domain_valid(const char *s, bool allow_single)
{
	size_t len = strlen(s), label = 0;
	bool dot = false;

	if (len == 0 || len > 253)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '.') {
			if (label == 0)
				return false;
			label = 0;
			dot = true;
			continue;
		}
		if (!isalnum(c) && c != '-' && c != '_')
			return false;
		if (++label > 63)
			return false;
	}
	if (label == 0 && !(len > 1 && dot))
		return false;
	return allow_single || dot;
}
