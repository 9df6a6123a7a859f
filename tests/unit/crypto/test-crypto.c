#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/core.h"
#include "crypto/crypto.h"

#include <string.h>

static const unsigned char salt[CRYPTO_SALT_BYTES] = "0123456789abcdef";

static void
test_login_is_deterministic_and_password_bound(void **state)
{
	struct crypto_login a = {0}, b = {0}, c = {0};

	assert_int_equal(crypto_login_derive("pw", 2, salt, &a), 0);
	assert_int_equal(crypto_login_derive("pw", 2, salt, &b), 0);
	assert_int_equal(crypto_login_derive("pX", 2, salt, &c), 0);
	assert_memory_equal(a.mailbox_key->bytes, b.mailbox_key->bytes, 32);
	assert_true(crypto_verifier_equal(a.verifier, b.verifier));
	assert_false(crypto_verifier_equal(a.verifier, c.verifier));
	/* The three sub-keys are independent of each other. */
	assert_memory_not_equal(a.mailbox_key->bytes, a.wrap_key->bytes, 32);
	assert_memory_not_equal(a.mailbox_key->bytes, a.verifier, 32);
	crypto_login_clear(&a);
	assert_null(a.mailbox_key);
	crypto_login_clear(&b);
	crypto_login_clear(&c);
}

static void
test_wrap_unwrap_and_tamper(void **state)
{
	struct crypto_key *key = crypto_key_create(), *other;
	unsigned char secret[32], wrapped[32 + CRYPTO_WRAP_OVERHEAD], out[32];

	crypto_key_random(key);
	other = crypto_key_dup(key);
	other->bytes[0] ^= 1;
	memset(secret, 0x5a, sizeof(secret));
	crypto_wrap(key, secret, sizeof(secret), wrapped);
	assert_int_equal(crypto_unwrap(key, wrapped, sizeof(wrapped), out), 0);
	assert_memory_equal(secret, out, 32);
	assert_int_equal(crypto_unwrap(other, wrapped, sizeof(wrapped), out),
			 -1);
	wrapped[sizeof(wrapped) - 1] ^= 1;
	assert_int_equal(crypto_unwrap(key, wrapped, sizeof(wrapped), out), -1);
	assert_int_equal(crypto_unwrap(key, wrapped, 10, out), -1);
	crypto_key_destroy(&key);
	crypto_key_destroy(&other);
	assert_null(key);
	crypto_key_destroy(&key);
}

static void
test_seal_opens_only_with_its_key(void **state)
{
	unsigned char pk[32], pk2[32];
	struct crypto_key *sk = crypto_key_create(), *sk2 = crypto_key_create();
	const char *msg = "Subject: canary\r\n\r\nhello";
	size_t len = strlen(msg);
	unsigned char sealed[64 + CRYPTO_SEAL_OVERHEAD], out[64];

	crypto_spool_keypair(pk, sk);
	crypto_spool_keypair(pk2, sk2);
	crypto_seal(pk, (const unsigned char *)msg, len, sealed);
	assert_null(memmem(sealed, len + CRYPTO_SEAL_OVERHEAD, "canary", 6));
	assert_int_equal(crypto_seal_open(pk, sk, sealed,
					  len + CRYPTO_SEAL_OVERHEAD, out),
			 0);
	assert_memory_equal(out, msg, len);
	assert_int_equal(crypto_seal_open(pk2, sk2, sealed,
					  len + CRYPTO_SEAL_OVERHEAD, out),
			 -1);
	crypto_key_destroy(&sk);
	crypto_key_destroy(&sk2);
}

static void
test_password_shape(void **state)
{
	char a[CRYPTO_PASSWORD_BUF], b[CRYPTO_PASSWORD_BUF];

	crypto_password_generate(a);
	crypto_password_generate(b);
	assert_int_equal(strlen(a), 34);
	assert_string_not_equal(a, b);
	assert_int_equal(a[4], '-');
	assert_null(strpbrk(a, "01ilo"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_login_is_deterministic_and_password_bound),
		cmocka_unit_test(test_wrap_unwrap_and_tamper),
		cmocka_unit_test(test_seal_opens_only_with_its_key),
		cmocka_unit_test(test_password_shape),
	};
	if (crypto_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
