#include "core.h"

#include <sodium.h>

void
random_bytes(void *buf, size_t len)
{
	randombytes_buf(buf, len);
}

void
hex_encode(const unsigned char *in, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 0x0f];
	}
	out[2 * len] = '\0';
}

static int
hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int
hex_decode(const char *in, unsigned char *out, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		int hi, lo;

		if (in[2 * i] == '\0' || in[2 * i + 1] == '\0')
			return -1;
		hi = hex_value(in[2 * i]);
		lo = hex_value(in[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		out[i] = (unsigned char)(hi << 4 | lo);
	}
	return in[2 * len] == '\0' ? 0 : -1;
}

void
random_hex_id(char *out, size_t nbytes)
{
	unsigned char raw[64];

	SP_ASSERT(nbytes <= sizeof(raw));
	random_bytes(raw, nbytes);
	hex_encode(raw, nbytes, out);
}
