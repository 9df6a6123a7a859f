/* sealpost alias password: set up or re-key an alias's mailbox.
 *
 * First time: a new salt, the keys derived from a fresh password, an X25519
 * pair whose secret half is wrapped by the password, and an empty mailbox.
 * Later: the old password opens the mailbox, which is re-keyed crash-safely
 * (store_mailbox_rekey), the spool key pair is kept (mail sealed meanwhile
 * still opens) and re-wrapped, and the control plane gets the new salt and
 * verifier.
 *
 * The file and the control plane cannot change in one atomic step, so the
 * new credentials are first written to <data>/mailboxes/<id>.pending,
 * encrypted with the server key. If the process dies after the file was
 * re-keyed but before the control plane was updated, the next login with
 * the new password finds them there, proves them by opening the mailbox
 * and completes the change (admin_login_recover). */
#include "admin-private.h"

#include "account/account.h"
#include "crypto/crypto.h"
#include "store/store.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* salt | verifier | public key | wrapped secret key length (1) | wrapped */
#define PENDING_PLAIN_BYTES                                                  \
	(CRYPTO_SALT_BYTES + CRYPTO_VERIFIER_BYTES + CRYPTO_PUBLIC_KEY_BYTES + \
	 1 + ACCOUNT_WRAPPED_SK_BYTES)

static char *
pending_path(const char *data_dir, const char *mailbox_id)
{
	return xasprintf("%s/mailboxes/%s.pending", data_dir, mailbox_id);
}

static struct crypto_key *
server_key_load(const char *data_dir)
{
	struct crypto_key *key = crypto_key_create();
	char *path = xasprintf("%s/server.key", data_dir);
	int rc = crypto_server_key_load(path, key);

	free(path);
	if (rc < 0)
		crypto_key_destroy(&key);
	return key;
}

static int
pending_write(const char *data_dir, const char *mailbox_id,
	      const struct account_credentials *creds)
{
	unsigned char plain[PENDING_PLAIN_BYTES] = {0};
	unsigned char sealed[PENDING_PLAIN_BYTES + CRYPTO_WRAP_OVERHEAD];
	struct crypto_key *skey = server_key_load(data_dir);
	unsigned char *p = plain;
	char *path;
	int ret;

	if (skey == NULL)
		return -1;
	memcpy(p, creds->salt, CRYPTO_SALT_BYTES);
	p += CRYPTO_SALT_BYTES;
	memcpy(p, creds->verifier, CRYPTO_VERIFIER_BYTES);
	p += CRYPTO_VERIFIER_BYTES;
	memcpy(p, creds->public_key, CRYPTO_PUBLIC_KEY_BYTES);
	p += CRYPTO_PUBLIC_KEY_BYTES;
	*p++ = (unsigned char)creds->wrapped_sk_len;
	memcpy(p, creds->wrapped_sk, creds->wrapped_sk_len);
	crypto_wrap(skey, plain, sizeof(plain), sealed);
	sodium_memzero(plain, sizeof(plain));
	crypto_key_destroy(&skey);
	path = pending_path(data_dir, mailbox_id);
	ret = fs_write_atomic(path, sealed, sizeof(sealed), 0600);
	free(path);
	return ret;
}

/* 1 and *creds_r, 0 when there is no pending change, -1 when it is
 * unreadable. */
static int
pending_read(const char *data_dir, const char *mailbox_id,
	     struct account_credentials *creds_r)
{
	unsigned char plain[PENDING_PLAIN_BYTES];
	struct crypto_key *skey;
	char *path = pending_path(data_dir, mailbox_id), *data;
	const unsigned char *p = plain;
	size_t len;
	int rc;

	rc = fs_read_file(path, &data, &len);
	free(path);
	if (rc < 0)
		return errno == ENOENT ? 0 : -1;
	skey = server_key_load(data_dir);
	rc = -1;
	if (skey != NULL && len == sizeof(plain) + CRYPTO_WRAP_OVERHEAD &&
	    crypto_unwrap(skey, (unsigned char *)data, len, plain) == 0) {
		memset(creds_r, 0, sizeof(*creds_r));
		memcpy(creds_r->salt, p, CRYPTO_SALT_BYTES);
		p += CRYPTO_SALT_BYTES;
		memcpy(creds_r->verifier, p, CRYPTO_VERIFIER_BYTES);
		p += CRYPTO_VERIFIER_BYTES;
		memcpy(creds_r->public_key, p, CRYPTO_PUBLIC_KEY_BYTES);
		p += CRYPTO_PUBLIC_KEY_BYTES;
		creds_r->wrapped_sk_len = *p++;
		if (creds_r->wrapped_sk_len <= ACCOUNT_WRAPPED_SK_BYTES) {
			memcpy(creds_r->wrapped_sk, p, creds_r->wrapped_sk_len);
			rc = 1;
		}
	}
	crypto_key_destroy(&skey);
	free(data);
	return rc;
}

void
admin_pending_remove(const char *data_dir, const char *mailbox_id)
{
	char *path = pending_path(data_dir, mailbox_id);

	if (fs_exists(path))
		(void)fs_secure_unlink(path);
	free(path);
}

int
admin_login_recover(struct admin_ctx *ctx, struct account_db *adb,
		    const struct account_alias *alias, const char *password)
{
	struct account_credentials pending, current;
	struct crypto_login login = {0};
	struct store_mailbox *mbox = NULL;
	const char *error = NULL;
	int rc;

	rc = pending_read(ctx->data_dir, alias->mailbox_id, &pending);
	if (rc <= 0)
		return rc;
	if (account_alias_get_credentials(adb, alias->address, &current,
					  &error) <= 0)
		return -1;
	if (crypto_login_derive(password, strlen(password), pending.salt,
				&login) < 0)
		return -1;
	rc = 0;
	/* The pending password, and the file already re-keyed to it. */
	if (crypto_verifier_equal(login.verifier, pending.verifier) &&
	    store_mailbox_open(ctx->data_dir, alias->mailbox_id,
			       login.mailbox_key, 0, &mbox,
			       &error) == STORE_OK) {
		store_mailbox_close(&mbox);
		if (account_alias_set_credentials(adb, alias->address, &pending,
						  current.verifier,
						  &error) == ACCOUNT_OK) {
			admin_pending_remove(ctx->data_dir, alias->mailbox_id);
			rc = 1;
		} else {
			rc = -1;
		}
	}
	crypto_login_clear(&login);
	return rc;
}

/* Creates the credentials of an alias that has none, and its mailbox. */
static int
password_first(struct admin_ctx *ctx, struct account_db *adb,
	       const struct account_alias *alias, const char *password,
	       const unsigned char salt[CRYPTO_SALT_BYTES])
{
	struct account_credentials creds = {0};
	struct crypto_login login = {0};
	struct crypto_key *sk = crypto_key_create();
	struct store_mailbox *mbox = NULL;
	enum store_error serr;
	const char *error = NULL;
	char *path = store_mailbox_path(ctx->data_dir, alias->mailbox_id);
	int ret = ADMIN_EXIT_OK;

	/* A mailbox without credentials comes from a set-up that died before
	 * its password was shown: nothing can have been stored in it (mail
	 * needs the public key, which was never published). */
	if (fs_exists(path) &&
	    store_mailbox_delete(ctx->data_dir, alias->mailbox_id, &error) <
		    0) {
		ret = admin_fail("%s", error);
		goto out;
	}
	if (crypto_login_derive(password, strlen(password), salt, &login) <
	    0) {
		ret = admin_fail("Argon2id could not get its memory");
		goto out;
	}
	memcpy(creds.salt, salt, CRYPTO_SALT_BYTES);
	memcpy(creds.verifier, login.verifier, CRYPTO_VERIFIER_BYTES);
	crypto_spool_keypair(creds.public_key, sk);
	crypto_wrap(login.wrap_key, sk->bytes, CRYPTO_SECRET_KEY_BYTES,
		    creds.wrapped_sk);
	creds.wrapped_sk_len = ACCOUNT_WRAPPED_SK_BYTES;
	serr = store_mailbox_open(ctx->data_dir, alias->mailbox_id,
				  login.mailbox_key, STORE_OPEN_CREATE, &mbox,
				  &error);
	if (serr != STORE_OK) {
		ret = admin_fail("mailbox: %s", error);
		goto out;
	}
	store_mailbox_close(&mbox);
	if (account_alias_set_credentials(adb, alias->address, &creds, NULL,
					  &error) != ACCOUNT_OK) {
		ret = admin_fail("%s", error);
		goto out;
	}
	printf("%s\n", password);
	fflush(stdout);
out:
	crypto_login_clear(&login);
	crypto_key_destroy(&sk);
	free(path);
	return ret;
}

/* Re-keys: the old password opens everything, the new one takes over. */
static int
password_change(struct admin_ctx *ctx, struct account_db *adb,
		const struct account_alias *alias, const char *password,
		const unsigned char salt[CRYPTO_SALT_BYTES])
{
	struct account_session_keys old = {0};
	struct account_credentials creds = {0}, current;
	struct crypto_login login = {0};
	const char *error = NULL;
	char *old_pw;
	enum account_error aerr;
	enum store_error serr;
	int ret = ADMIN_EXIT_OK;

	old_pw = admin_read_secret("SEALPOST_OLD_PASSWORD",
				   "Current password: ");
	if (old_pw == NULL)
		return admin_fail("the current password is too long");
	aerr = account_login(adb, alias->address, old_pw, &old, &error);
	if (aerr == ACCOUNT_ERR_AUTH &&
	    admin_login_recover(ctx, adb, alias, old_pw) == 1)
		aerr = account_login(adb, alias->address, old_pw, &old,
				     &error);
	if (aerr != ACCOUNT_OK) {
		admin_secret_free(&old_pw);
		return aerr == ACCOUNT_ERR_AUTH
			       ? admin_fail("wrong password for %s",
					    alias->address)
			       : admin_fail("%s", error);
	}
	admin_secret_free(&old_pw);
	if (account_alias_get_credentials(adb, alias->address, &current,
					  &error) <= 0) {
		ret = admin_fail("credentials: %s",
				 error != NULL ? error : "missing");
		goto out;
	}
	if (crypto_login_derive(password, strlen(password), salt, &login) <
	    0) {
		ret = admin_fail("Argon2id could not get its memory");
		goto out;
	}
	memcpy(creds.salt, salt, CRYPTO_SALT_BYTES);
	memcpy(creds.verifier, login.verifier, CRYPTO_VERIFIER_BYTES);
	memcpy(creds.public_key, old.public_key, CRYPTO_PUBLIC_KEY_BYTES);
	crypto_wrap(login.wrap_key, old.secret_key->bytes,
		    CRYPTO_SECRET_KEY_BYTES, creds.wrapped_sk);
	creds.wrapped_sk_len = ACCOUNT_WRAPPED_SK_BYTES;

	if (pending_write(ctx->data_dir, alias->mailbox_id, &creds) < 0) {
		ret = admin_fail("%s/mailboxes: %s", ctx->data_dir,
				 strerror(errno));
		goto out;
	}
	/* Shown before the point of no return: whatever happens from here,
	 * the owner holds the password the file may end up keyed with. */
	printf("%s\n", password);
	fflush(stdout);
	serr = store_mailbox_rekey(ctx->data_dir, alias->mailbox_id,
				   old.mailbox_key, login.mailbox_key, &error);
	if (serr == STORE_ERR_NOTFOUND) {
		/* No file (deleted): the next open creates it. */
		serr = STORE_OK;
	}
	if (serr != STORE_OK) {
		admin_pending_remove(ctx->data_dir, alias->mailbox_id);
		ret = admin_fail("re-key failed, the password is unchanged: %s",
				 error);
		goto out;
	}
	/* Fault injection for the crash tests: die exactly in the window
	 * that admin_login_recover() exists for. */
	if (getenv("SEALPOST_TEST_CRASH_AFTER_REKEY") != NULL)
		_exit(ADMIN_EXIT_FAIL);
	if (account_alias_set_credentials(adb, alias->address, &creds,
					  current.verifier,
					  &error) != ACCOUNT_OK) {
		ret = admin_fail("the mailbox is re-keyed but the control "
				 "plane was not updated (%s); the next login "
				 "with the new password completes it",
				 error);
		goto out;
	}
	admin_pending_remove(ctx->data_dir, alias->mailbox_id);
out:
	crypto_login_clear(&login);
	account_session_keys_clear(&old);
	account_login_release(alias->address);
	return ret;
}

int
admin_cmd_alias_password(struct admin_ctx *ctx, int argc, char **argv)
{
	struct account_credentials creds;
	struct account_alias *alias = NULL;
	struct account_db *adb;
	unsigned char salt[CRYPTO_SALT_BYTES];
	char *password;
	const char *error = NULL;
	int rc, ret;

	if (argc == 0)
		return admin_usage(ctx, "ADDRESS is missing");
	if (argc > 1 || argv[0][0] == '-')
		return admin_usage(ctx, "unexpected argument '%s'",
				   argc > 1 ? argv[1] : argv[0]);
	if (admin_become_data_owner(ctx) < 0 ||
	    (adb = admin_account_open(ctx)) == NULL)
		return ADMIN_EXIT_FAIL;
	rc = account_alias_get(adb, argv[0], &alias, &error);
	if (rc <= 0) {
		account_db_close(&adb);
		return rc == 0 ? admin_fail("no alias %s", argv[0])
			       : admin_fail("%s", error);
	}
	if (!alias->has_mailbox) {
		ret = admin_fail("%s has no mailbox target (sealpost alias set "
				 "%s --mailbox)",
				 alias->address, alias->address);
		goto out;
	}
	rc = account_alias_get_credentials(adb, alias->address, &creds,
					   &error);
	if (rc < 0) {
		ret = admin_fail("%s", error);
		goto out;
	}
	password = sodium_malloc(CRYPTO_PASSWORD_BUF);
	if (password == NULL)
		core_panic("sodium_malloc failed");
	crypto_password_generate(password);
	random_bytes(salt, sizeof(salt));
	ret = rc == 0 ? password_first(ctx, adb, alias, password, salt)
		      : password_change(ctx, adb, alias, password, salt);
	sodium_free(password);
out:
	account_alias_free(&alias);
	account_db_close(&adb);
	return ret;
}
