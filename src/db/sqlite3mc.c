/*
 * The SQLite3MultipleCiphers amalgamation as Sealpost compiles it.
 *
 * sqlite3mc-amalgamation.h is the fetched sqlite3.c with the definitions of
 * its portable chacha20_xor() and poly1305() renamed (by
 * scripts/sqlite3mc-sodium.py, at build time); the two functions are defined
 * below on libsodium instead, in this same translation unit because the
 * amalgamation declares them static. Same algorithms, same file format:
 * mailboxes written before this change open unchanged (tests/unit/db).
 */
#include "sqlite3mc-amalgamation.h"
#include "db/chacha.h"

SQLITE_PRIVATE void
chacha20_xor(void *data, size_t n, const uint8_t key[32],
	     const uint8_t nonce[12], uint32_t counter)
{
	db_chacha20_xor(data, n, key, nonce, counter);
}

SQLITE_PRIVATE void
poly1305(const uint8_t *msg, size_t n, const uint8_t key[32], uint8_t tag[16])
{
	db_poly1305(msg, n, key, tag);
}
