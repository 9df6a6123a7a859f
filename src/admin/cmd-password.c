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
 * encrypted with the server key, all under the mailbox's re-key lock. If
 * the process dies half-way, the next login anywhere (IMAP, POP3, the CLI:
 * store_login) completes or undoes the change; see store/rekey.c. */
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

void
admin_pending_remove(const char *data_dir, const char *mailbox_id)
{
	store_rekey_pending_remove(data_dir, mailbox_id);
}

int
admin_login_recover(struct admin_ctx *ctx, struct account_db *adb,
		    const struct account_alias *alias, const char *password)
{
	const char *error = NULL;

	return store_rekey_recover(adb, ctx->data_dir, alias->address,
				   password, &error);
}

/* How long a change waits for the mailbox's sessions to close. */
#define PASSWORD_LOCK_WAIT_MS 30000

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
	int ret = ADMIN_EXIT_OK, lock = -1, hold_fd = -1;
	unsigned closed = 0;

	old_pw = admin_read_secret("SEALPOST_OLD_PASSWORD",
				   "Current password: ");
	if (old_pw == NULL)
		return admin_fail("the current password is too long");
	aerr = store_login(adb, ctx->data_dir, alias->address, old_pw, &old,
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

	/* A running server logs the alias's sessions out (IMAP "* BYE",
	 * POP3 "-ERR"), as a password change should, and lets no new one in
	 * until the change is done: then the lock below is free at once. */
	if (admin_control_close_sessions(ctx->data_dir, alias->mailbox_id,
					 &hold_fd, &closed, &error) < 0) {
		ret = admin_fail("cannot close the sessions of %s: %s; the "
				 "password is unchanged",
				 alias->address, error);
		goto out;
	}
	/* Exclusive: no handle open on the file (sessions, backups, another
	 * change), none opened until the change is done. Sessions that stay
	 * open anyway (no server to ask) make it give up rather than lose
	 * their writes. */
	lock = store_rekey_lock(ctx->data_dir, alias->mailbox_id,
				PASSWORD_LOCK_WAIT_MS);
	if (lock < 0) {
		ret = admin_fail("the mailbox of %s is in use (open IMAP or "
				 "POP3 sessions, a backup, another password "
				 "change); the password is unchanged",
				 alias->address);
		goto out;
	}
	if (store_rekey_pending_write(ctx->data_dir, alias->mailbox_id, &creds,
				      &error) < 0) {
		ret = admin_fail("%s", error);
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
	 * that store_rekey_recover() exists for. */
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
	store_rekey_unlock(lock);
	admin_control_done(&hold_fd, alias->mailbox_id);
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
