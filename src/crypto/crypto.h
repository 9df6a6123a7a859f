/*
 * crypto: every use of libsodium in Sealpost, in one place.
 *
 * A password is turned into key material once per login with Argon2id
 * (crypto_login_derive). From that master key come three independent
 * sub-keys: the mailbox key handed to SQLite3MultipleCiphers as a raw key,
 * the wrapping key that protects the alias's X25519 private key, and a
 * verifier stored in the control plane so that a wrong password is refused
 * before any file is opened.
 *
 * Inbound mail for an absent owner is sealed to the alias's X25519 public key
 * (crypto_seal); only the private key, which exists unwrapped only while the
 * owner is logged in, opens it.
 *
 * Secret keys live in sodium_malloc() memory (guard pages, mlock'ed) and are
 * wiped when destroyed. The only file this module touches is the server key
 * (crypto_server_key_*), which encrypts the control plane and the queue.
 */
#ifndef SEALPOST_CRYPTO_H
#define SEALPOST_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>

#define CRYPTO_KEY_BYTES 32
#define CRYPTO_SALT_BYTES 16
#define CRYPTO_VERIFIER_BYTES 32
#define CRYPTO_PUBLIC_KEY_BYTES 32
#define CRYPTO_SECRET_KEY_BYTES 32
/* Version byte + nonce + MAC around a wrapped secret. */
#define CRYPTO_WRAP_OVERHEAD (1 + 24 + 16)
/* Version byte + ephemeral key + MAC around a sealed message. */
#define CRYPTO_SEAL_OVERHEAD (1 + 48)

/* Argon2id cost, also stated in docs/architecture.md. */
#define CRYPTO_ARGON2_OPSLIMIT 2
#define CRYPTO_ARGON2_MEMLIMIT (64u * 1024 * 1024)

/* A 32-byte secret in locked, guarded memory. */
struct crypto_key {
	unsigned char bytes[CRYPTO_KEY_BYTES];
};

/* Must run once before any other call (initialises libsodium). */
int crypto_init(void);

/* Returns a zeroed key in secure memory; free with crypto_key_destroy(). */
struct crypto_key *crypto_key_create(void);
struct crypto_key *crypto_key_dup(const struct crypto_key *key);
/* Wipes and frees; NULLs the pointer; accepts NULL. */
void crypto_key_destroy(struct crypto_key **key);
void crypto_key_random(struct crypto_key *key);

/* What one password unlocks. */
struct crypto_login {
	struct crypto_key *mailbox_key; /* SQLite3MC raw key */
	struct crypto_key *wrap_key;	/* wraps the X25519 private key */
	unsigned char verifier[CRYPTO_VERIFIER_BYTES];
};

/* Runs Argon2id on the password and salt, then splits the result.
 * Returns 0, or -1 when Argon2id could not get its memory. */
int crypto_login_derive(const char *password, size_t password_len,
			const unsigned char salt[CRYPTO_SALT_BYTES],
			struct crypto_login *login_r);
/* Derives the same sub-keys from an already derived master key (the login
 * cache keeps master keys). */
void crypto_login_from_master(const struct crypto_key *master,
			      struct crypto_login *login_r);
int crypto_master_derive(const char *password, size_t password_len,
			 const unsigned char salt[CRYPTO_SALT_BYTES],
			 struct crypto_key *master_r);
void crypto_login_clear(struct crypto_login *login);
/* Constant-time comparison of two verifiers. */
bool crypto_verifier_equal(const unsigned char *a, const unsigned char *b);

/* Authenticated encryption of a short secret (XSalsa20-Poly1305).
 * out must hold len + CRYPTO_WRAP_OVERHEAD bytes. */
void crypto_wrap(const struct crypto_key *key, const unsigned char *secret,
		 size_t len, unsigned char *out);
/* Returns 0, or -1 when the key is wrong or the data was altered; out
 * (in_len - CRYPTO_WRAP_OVERHEAD bytes) is then wiped. */
int crypto_unwrap(const struct crypto_key *key, const unsigned char *in,
		  size_t in_len, unsigned char *out);

/* X25519 key pair for sealed delivery; the secret half in secure memory. */
void crypto_spool_keypair(unsigned char pk[CRYPTO_PUBLIC_KEY_BYTES],
			  struct crypto_key *sk_r);

/* Seals a message to a public key. out must hold len + CRYPTO_SEAL_OVERHEAD
 * bytes. Anyone may seal; only the secret key opens. */
void crypto_seal(const unsigned char pk[CRYPTO_PUBLIC_KEY_BYTES],
		 const unsigned char *msg, size_t len, unsigned char *out);
/* Returns 0, or -1 when the data is not sealed to this key or altered. out
 * must hold in_len - CRYPTO_SEAL_OVERHEAD bytes. */
int crypto_seal_open(const unsigned char pk[CRYPTO_PUBLIC_KEY_BYTES],
		     const struct crypto_key *sk, const unsigned char *in,
		     size_t in_len, unsigned char *out);

/* Keyed hash (BLAKE2b-256) for fingerprints that must not be reversible. */
void crypto_keyed_hash(const struct crypto_key *key, const void *data,
		       size_t len, unsigned char out[32]);

/* A random password of at least 128 bits, easy to type: groups of five
 * lower-case letters and digits without look-alikes, joined by dashes.
 * out must hold CRYPTO_PASSWORD_BUF bytes. */
#define CRYPTO_PASSWORD_BUF 48
void crypto_password_generate(char out[CRYPTO_PASSWORD_BUF]);

/* A copy of a secret string (a password, an address at login) in secure
 * memory, NUL-terminated; free with crypto_secret_free(), which wipes it,
 * NULLs the pointer and accepts NULL. */
char *crypto_secret_strndup(const char *s, size_t len);
void crypto_secret_free(char **s);

/* The server key: 32 random bytes in a file of mode 0600. Create fails when
 * the file exists. Load returns 0, or -1 with errno set (EINVAL: wrong
 * size). */
int crypto_server_key_create(const char *path);
int crypto_server_key_load(const char *path, struct crypto_key *key_r);

#endif
