/* Modified UTF-7 <-> UTF-8 for mailbox names (see imap-mutf7.h). */
#include "imap-mutf7.h"

#include "core/core.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

static const char b64[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

static int
b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == ',')
		return 63;
	return -1;
}

static void
put_utf8(struct sp_buf *out, uint32_t cp)
{
	unsigned char b[4];
	size_t n;

	if (cp < 0x80) {
		b[0] = (unsigned char)cp;
		n = 1;
	} else if (cp < 0x800) {
		b[0] = (unsigned char)(0xc0 | (cp >> 6));
		b[1] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		b[0] = (unsigned char)(0xe0 | (cp >> 12));
		b[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		b[2] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		b[0] = (unsigned char)(0xf0 | (cp >> 18));
		b[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
		b[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		b[3] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	sp_buf_append(out, b, n);
}

/* Decodes one base64 run, s pointing after the "&" and before the first
 * base64 character; *end_r is the closing "-". Returns NULL or an error. */
static const char *
decode_run(const char *s, const char **end_r, struct sp_buf *out)
{
	uint32_t bits = 0, high = 0;
	unsigned nbits = 0;

	for (;; s++) {
		unsigned char c = (unsigned char)*s;
		int v;

		if (c == '-')
			break;
		if (c == '\0')
			return "\"&\" without a closing \"-\"";
		if ((v = b64_value(c)) < 0)
			return "invalid character in a base64 run";
		bits = (bits << 6) | (uint32_t)v;
		nbits += 6;
		if (nbits < 16)
			continue;
		nbits -= 16;
		uint32_t unit = (bits >> nbits) & 0xffff;

		bits &= (1u << nbits) - 1;
		if (high != 0) {
			if (unit < 0xdc00 || unit > 0xdfff)
				return "unpaired UTF-16 surrogate";
			put_utf8(out, 0x10000 + ((high - 0xd800) << 10) +
					      (unit - 0xdc00));
			high = 0;
		} else if (unit >= 0xd800 && unit <= 0xdbff) {
			high = unit;
		} else if (unit >= 0xdc00 && unit <= 0xdfff) {
			return "unpaired UTF-16 surrogate";
		} else if (unit == 0) {
			return "encoded NUL character";
		} else if (unit >= 0x20 && unit <= 0x7e) {
			/* RFC 3501: MUST NOT be encoded. One spelling per
			 * name keeps names comparable byte for byte. */
			return "encoded printable US-ASCII character";
		} else {
			put_utf8(out, unit);
		}
	}
	if (high != 0)
		return "unpaired UTF-16 surrogate";
	/* Padding: fewer than 6 bits, all zero. */
	if (nbits >= 6 || bits != 0)
		return "bits left over at the end of a base64 run";
	*end_r = s;
	return NULL;
}

char *
imap_mutf7_decode(const char *in, const char **error_r)
{
	struct sp_buf out;
	const char *s;

	sp_buf_init(&out);
	sp_buf_append(&out, "", 0);
	for (s = in; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		const char *error;

		if (c < 0x20 || c > 0x7e) {
			*error_r = c >= 0x80 ? "8-bit character (names are "
					       "modified UTF-7)"
					     : "control character";
			sp_buf_deinit(&out);
			return NULL;
		}
		if (c != '&') {
			sp_buf_append(&out, s, 1);
			continue;
		}
		if (s[1] == '-') {
			sp_buf_append(&out, "&", 1);
			s++;
			continue;
		}
		if ((error = decode_run(s + 1, &s, &out)) != NULL) {
			*error_r = error;
			sp_buf_deinit(&out);
			return NULL;
		}
	}
	return sp_buf_steal(&out, NULL);
}

/* The next code point of UTF-8 at *s (advanced); U+FFFD and one byte for
 * anything that is not shortest-form UTF-8 of a scalar value. */
static uint32_t
next_utf8(const unsigned char **s)
{
	const unsigned char *p = *s;
	uint32_t cp, min;
	unsigned n;

	if (p[0] < 0x80) {
		*s = p + 1;
		return p[0];
	}
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		n = 1, cp = p[0] & 0x1f, min = 0x80;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		n = 2, cp = p[0] & 0x0f, min = 0x800;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		n = 3, cp = p[0] & 0x07, min = 0x10000;
	else
		goto bad;
	for (unsigned i = 1; i <= n; i++) {
		/* Also stops at the NUL terminator. */
		if ((p[i] & 0xc0) != 0x80)
			goto bad;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		goto bad;
	*s = p + n + 1;
	return cp;
bad:
	*s = p + 1;
	return 0xfffd;
}

struct b64_run {
	bool open;
	uint32_t bits;
	unsigned nbits;
};

static void
run_unit(struct sp_buf *out, struct b64_run *r, uint32_t unit)
{
	if (!r->open) {
		sp_buf_append(out, "&", 1);
		r->open = true;
	}
	r->bits = (r->bits << 16) | unit;
	r->nbits += 16;
	while (r->nbits >= 6) {
		r->nbits -= 6;
		sp_buf_append(out, &b64[(r->bits >> r->nbits) & 0x3f], 1);
	}
	r->bits &= (1u << r->nbits) - 1;
}

static void
run_close(struct sp_buf *out, struct b64_run *r)
{
	if (!r->open)
		return;
	if (r->nbits > 0)
		sp_buf_append(out, &b64[(r->bits << (6 - r->nbits)) & 0x3f],
			      1);
	sp_buf_append(out, "-", 1);
	memset(r, 0, sizeof(*r));
}

char *
imap_mutf7_encode(const char *in)
{
	const unsigned char *s = (const unsigned char *)in;
	struct b64_run run = {0};
	struct sp_buf out;

	sp_buf_init(&out);
	sp_buf_append(&out, "", 0);
	while (*s != '\0') {
		uint32_t cp = next_utf8(&s);

		if (cp >= 0x20 && cp <= 0x7e) {
			char c = (char)cp;

			run_close(&out, &run);
			sp_buf_append(&out, &c, 1);
			if (c == '&')
				sp_buf_append(&out, "-", 1);
		} else if (cp >= 0x10000) {
			cp -= 0x10000;
			run_unit(&out, &run, 0xd800 | (cp >> 10));
			run_unit(&out, &run, 0xdc00 | (cp & 0x3ff));
		} else {
			run_unit(&out, &run, cp);
		}
	}
	run_close(&out, &run);
	return sp_buf_steal(&out, NULL);
}
