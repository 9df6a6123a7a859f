/*
 * The libsodium-backed ChaCha20 and Poly1305 under SQLite3MultipleCiphers'
 * page cipher must compute exactly what the amalgamation's portable code
 * computed, or existing mailboxes stop opening. Expected values come from
 * RFC 8439 and, for the counter wrap, from `openssl enc -chacha20` run one
 * 64-byte block at a time (OpenSSL itself carries into the nonce).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "db/chacha.h"

#include <sodium.h>
#include <string.h>

static void
hex_decode(const char *hex, uint8_t *out, size_t len)
{
	size_t got = 0;

	assert_int_equal(sodium_hex2bin(out, len, hex, strlen(hex), NULL, &got,
					NULL),
			 0);
	assert_int_equal(got, len);
}

static const char key_hex[] =
	"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

/* RFC 8439, section 2.4.2. */
static void
test_chacha20_rfc8439(void **state)
{
	static const char plaintext[] =
		"Ladies and Gentlemen of the class of '99: If I could offer "
		"you only one tip for the future, sunscreen would be it.";
	static const char expected_hex[] =
		"6e2e359a2568f98041ba0728dd0d6981e97e7aec1d4360c20a27afccfd9fae0b"
		"f91b65c5524733ab8f593dabcd62b3571639d624e65152ab8f530c359f0861d8"
		"07ca0dbf500d6a6156a38e088a22b65e52bc514d16ccf806818ce91ab7793736"
		"5af90bbf74a35be6b40b8eedf2785e42874d";
	uint8_t key[32], nonce[12], buf[sizeof(plaintext) - 1];
	uint8_t expected[sizeof(buf)];

	hex_decode(key_hex, key, sizeof(key));
	hex_decode("000000000000004a00000000", nonce, sizeof(nonce));
	hex_decode(expected_hex, expected, sizeof(expected));
	memcpy(buf, plaintext, sizeof(buf));
	db_chacha20_xor(buf, sizeof(buf), key, nonce, 1);
	assert_memory_equal(buf, expected, sizeof(buf));
	db_chacha20_xor(buf, sizeof(buf), key, nonce, 1);
	assert_memory_equal(buf, plaintext, sizeof(buf));
}

/* Past block 2^32 - 1 the counter wraps to 0 with the nonce unchanged:
 * SQLite3MultipleCiphers' behaviour, which libsodium would abort on. */
static void
test_chacha20_counter_wraps_without_carry(void **state)
{
	static const char expected_hex[] =
		"ff2941b8d740f6cbb50936bf997ebd5218cb108dc53f41c64841d0218167430c"
		"a03b770ca74ccb642a28194d1dedd2ed13151e25ec5d7faeb6d060bfb7e6b146"
		"8adc91fd9ff4f0f51b0fad50ff15d637e40efda206cc52c783a74200503c1582"
		"cd9833367d0a54d57d3c9e998f490ee69ca34c1ff9e939a75584c52d690a35d4";
	uint8_t key[32], nonce[12], buf[128] = {0}, expected[128];

	hex_decode(key_hex, key, sizeof(key));
	hex_decode("000000090000004a00000000", nonce, sizeof(nonce));
	hex_decode(expected_hex, expected, sizeof(expected));
	db_chacha20_xor(buf, sizeof(buf), key, nonce, UINT32_MAX);
	assert_memory_equal(buf, expected, sizeof(buf));

	/* A partial last block after the wrap. */
	memset(buf, 0, sizeof(buf));
	db_chacha20_xor(buf, 100, key, nonce, UINT32_MAX);
	assert_memory_equal(buf, expected, 100);
	assert_int_equal(buf[100], 0);
}

/* RFC 8439, section 2.5.2. */
static void
test_poly1305_rfc8439(void **state)
{
	static const char msg[] = "Cryptographic Forum Research Group";
	uint8_t key[32], tag[16], expected[16];

	hex_decode("85d6be7857556d337f4452fe42d506a80103808afb0db2fd4abff6af"
		   "4149f51b",
		   key, sizeof(key));
	hex_decode("a8061dc1305136c6c22b8baf0c0127a9", expected,
		   sizeof(expected));
	db_poly1305((const uint8_t *)msg, sizeof(msg) - 1, key, tag);
	assert_memory_equal(tag, expected, sizeof(tag));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_chacha20_rfc8439),
		cmocka_unit_test(test_chacha20_counter_wraps_without_carry),
		cmocka_unit_test(test_poly1305_rfc8439),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
