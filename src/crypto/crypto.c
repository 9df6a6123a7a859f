#include "crypto.h"

#include "core/core.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <string.h>
#include <unistd.h>

/* Sub-key ids under the master key, with libsodium's 8-byte context. */
#define SUBKEY_CONTEXT "sealpost"
enum subkey_id {
	SUBKEY_MAILBOX = 1,
	SUBKEY_WRAP = 2,
	SUBKEY_VERIFIER = 3,
};

#define WRAP_VERSION 1
#define SEAL_VERSION 1

int
crypto_init(void)
{
	return sodium_init() < 0 ? -1 : 0;
}

struct crypto_key *
crypto_key_create(void)
{
	struct crypto_key *key = sodium_malloc(sizeof(*key));

	if (key == NULL)
		core_panic("sodium_malloc failed (locked memory limit?)");
	sodium_memzero(key, sizeof(*key));
	return key;
}

struct crypto_key *
crypto_key_dup(const struct crypto_key *key)
{
	struct crypto_key *copy = crypto_key_create();

	memcpy(copy->bytes, key->bytes, sizeof(copy->bytes));
	return copy;
}

void
crypto_key_destroy(struct crypto_key **key)
{
	if (*key == NULL)
		return;
	/* sodium_free() wipes before it frees. */
	sodium_free(*key);
	*key = NULL;
}

void
crypto_key_random(struct crypto_key *key)
{
	randombytes_buf(key->bytes, sizeof(key->bytes));
}

int
crypto_master_derive(const char *password, size_t password_len,
		     const unsigned char salt[CRYPTO_SALT_BYTES],
		     struct crypto_key *master_r)
{
	return crypto_pwhash(master_r->bytes, sizeof(master_r->bytes),
			     password, password_len, salt,
			     CRYPTO_ARGON2_OPSLIMIT, CRYPTO_ARGON2_MEMLIMIT,
			     crypto_pwhash_ALG_ARGON2ID13) == 0
		       ? 0
		       : -1;
}

void
crypto_login_from_master(const struct crypto_key *master,
			 struct crypto_login *login_r)
{
	login_r->mailbox_key = crypto_key_create();
	login_r->wrap_key = crypto_key_create();
	crypto_kdf_derive_from_key(login_r->mailbox_key->bytes,
				   CRYPTO_KEY_BYTES, SUBKEY_MAILBOX,
				   SUBKEY_CONTEXT, master->bytes);
	crypto_kdf_derive_from_key(login_r->wrap_key->bytes, CRYPTO_KEY_BYTES,
				   SUBKEY_WRAP, SUBKEY_CONTEXT, master->bytes);
	crypto_kdf_derive_from_key(login_r->verifier, CRYPTO_VERIFIER_BYTES,
				   SUBKEY_VERIFIER, SUBKEY_CONTEXT,
				   master->bytes);
}

int
crypto_login_derive(const char *password, size_t password_len,
		    const unsigned char salt[CRYPTO_SALT_BYTES],
		    struct crypto_login *login_r)
{
	struct crypto_key *master = crypto_key_create();
	int ret = crypto_master_derive(password, password_len, salt, master);

	if (ret == 0)
		crypto_login_from_master(master, login_r);
	crypto_key_destroy(&master);
	return ret;
}

void
crypto_login_clear(struct crypto_login *login)
{
	crypto_key_destroy(&login->mailbox_key);
	crypto_key_destroy(&login->wrap_key);
	sodium_memzero(login->verifier, sizeof(login->verifier));
}

bool
crypto_verifier_equal(const unsigned char *a, const unsigned char *b)
{
	return sodium_memcmp(a, b, CRYPTO_VERIFIER_BYTES) == 0;
}

void
crypto_wrap(const struct crypto_key *key, const unsigned char *secret,
	    size_t len, unsigned char *out)
{
	unsigned char *nonce = out + 1;

	out[0] = WRAP_VERSION;
	randombytes_buf(nonce, crypto_secretbox_NONCEBYTES);
	crypto_secretbox_easy(out + 1 + crypto_secretbox_NONCEBYTES, secret,
			      len, nonce, key->bytes);
}

int
crypto_unwrap(const struct crypto_key *key, const unsigned char *in,
	      size_t in_len, unsigned char *out)
{
	if (in_len < CRYPTO_WRAP_OVERHEAD || in[0] != WRAP_VERSION)
		return -1;
	if (crypto_secretbox_open_easy(
		    out, in + 1 + crypto_secretbox_NONCEBYTES,
		    in_len - 1 - crypto_secretbox_NONCEBYTES, in + 1,
		    key->bytes) != 0) {
		sodium_memzero(out, in_len - CRYPTO_WRAP_OVERHEAD);
		return -1;
	}
	return 0;
}

void
crypto_spool_keypair(unsigned char pk[CRYPTO_PUBLIC_KEY_BYTES],
		     struct crypto_key *sk_r)
{
	crypto_box_keypair(pk, sk_r->bytes);
}

void
crypto_seal(const unsigned char pk[CRYPTO_PUBLIC_KEY_BYTES],
	    const unsigned char *msg, size_t len, unsigned char *out)
{
	out[0] = SEAL_VERSION;
	crypto_box_seal(out + 1, msg, len, pk);
}

int
crypto_seal_open(const unsigned char pk[CRYPTO_PUBLIC_KEY_BYTES],
		 const struct crypto_key *sk, const unsigned char *in,
		 size_t in_len, unsigned char *out)
{
	if (in_len < CRYPTO_SEAL_OVERHEAD || in[0] != SEAL_VERSION)
		return -1;
	return crypto_box_seal_open(out, in + 1, in_len - 1, pk, sk->bytes) ==
			       0
		       ? 0
		       : -1;
}

void
crypto_keyed_hash(const struct crypto_key *key, const void *data, size_t len,
		  unsigned char out[32])
{
	crypto_generichash(out, 32, data, len, key->bytes, CRYPTO_KEY_BYTES);
}

void
crypto_password_generate(char out[CRYPTO_PASSWORD_BUF])
{
	/* 31 symbols without look-alikes (no 0/o, 1/l/i), 4.95 bits each:
	 * 28 symbols carry 138 bits, written as 7 groups of 4. */
	static const char alphabet[] = "abcdefghjkmnpqrstuvwxyz23456789";
	size_t pos = 0;

	for (int group = 0; group < 7; group++) {
		if (group > 0)
			out[pos++] = '-';
		for (int i = 0; i < 4; i++)
			out[pos++] = alphabet[randombytes_uniform(
				sizeof(alphabet) - 1)];
	}
	out[pos] = '\0';
}

int
crypto_server_key_create(const char *path)
{
	struct crypto_key *key = crypto_key_create();
	int fd, ret = -1;

	crypto_key_random(key);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd >= 0) {
		if (write(fd, key->bytes, CRYPTO_KEY_BYTES) == CRYPTO_KEY_BYTES &&
		    fsync(fd) == 0)
			ret = 0;
		close(fd);
		if (ret == 0)
			ret = fs_fsync_parent(path);
	}
	crypto_key_destroy(&key);
	return ret;
}

int
crypto_server_key_load(const char *path, struct crypto_key *key_r)
{
	unsigned char extra;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	n = read(fd, key_r->bytes, CRYPTO_KEY_BYTES);
	if (n == CRYPTO_KEY_BYTES && read(fd, &extra, 1) == 0) {
		close(fd);
		return 0;
	}
	close(fd);
	sodium_memzero(key_r->bytes, CRYPTO_KEY_BYTES);
	errno = EINVAL;
	return -1;
}

char *
crypto_secret_strndup(const char *s, size_t len)
{
	char *copy = sodium_malloc(len + 1);

	if (copy == NULL)
		core_panic("sodium_malloc failed");
	memcpy(copy, s, len);
	copy[len] = '\0';
	return copy;
}

void
crypto_secret_free(char **s)
{
	if (*s == NULL)
		return;
	sodium_free(*s); /* wipes before it frees */
	*s = NULL;
}
