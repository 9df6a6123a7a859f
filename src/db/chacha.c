#include "db/chacha.h"

#include <sodium.h>

void
db_chacha20_xor(void *buffer, size_t n, const uint8_t key[32],
		const uint8_t nonce[12], uint32_t counter)
{
	unsigned char *p = buffer;

	/*
	 * Each page starts at a random counter, so about one page in 67
	 * million runs past 2^32 - 1. SQLite3MultipleCiphers then wraps the
	 * counter to 0 and keeps the nonce; libsodium aborts the process
	 * rather than wrap (and other implementations carry into the nonce).
	 * Splitting the run at the wrap keeps both the file format and the
	 * process.
	 */
	for (;;) {
		uint64_t blocks_to_wrap = (UINT64_C(1) << 32) - counter;
		uint64_t blocks = ((uint64_t)n + 63) / 64;

		if (blocks <= blocks_to_wrap) {
			crypto_stream_chacha20_ietf_xor_ic(p, p, n, nonce,
							   counter, key);
			return;
		}
		crypto_stream_chacha20_ietf_xor_ic(p, p, blocks_to_wrap * 64,
						   nonce, counter, key);
		p += blocks_to_wrap * 64;
		n -= blocks_to_wrap * 64;
		counter = 0;
	}
}

void
db_poly1305(const uint8_t *msg, size_t n, const uint8_t key[32],
	    uint8_t tag[16])
{
	crypto_onetimeauth_poly1305(tag, msg, n, key);
}
