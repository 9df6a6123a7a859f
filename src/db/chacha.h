/*
 * db/chacha: the ChaCha20 and Poly1305 primitives under every encrypted
 * page, on libsodium.
 *
 * SQLite3MultipleCiphers' chacha20 cipher encrypts each page with ChaCha20
 * (RFC 8439: 32-byte key, 12-byte nonce, 32-bit block counter) and
 * authenticates it with Poly1305. Its own portable C code for both was the
 * largest part of what encryption costs an append; libsodium computes the
 * same functions with SIMD code chosen at run time (sodium_init()), so
 * src/db/sqlite3mc.c routes the amalgamation's two primitives here. Only
 * that file calls these.
 */
#ifndef SEALPOST_DB_CHACHA_H
#define SEALPOST_DB_CHACHA_H

#include <stddef.h>
#include <stdint.h>

/* XORs n bytes at buffer with the ChaCha20 key stream that starts at block
 * `counter`. When the 32-bit counter passes its end it wraps to 0 and the
 * nonce stays as it is, as in SQLite3MultipleCiphers' own code. */
void db_chacha20_xor(void *buffer, size_t n, const uint8_t key[32],
		     const uint8_t nonce[12], uint32_t counter);

/* The Poly1305 tag of msg under the one-time key. */
void db_poly1305(const uint8_t *msg, size_t n, const uint8_t key[32],
		 uint8_t tag[16]);

#endif
