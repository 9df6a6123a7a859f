/* store: the password change around store_mailbox_rekey(), and the
 * completion of one that a crash interrupted, wherever a password opens the
 * mailbox (IMAP, POP3, the CLI).
 *
 * The file and the control plane cannot change in one atomic step. The
 * change therefore first writes the new credentials to
 * <data>/mailboxes/<id>.pending, encrypted with the server key, then
 * re-keys the file (atomic rename), then updates the control plane, then
 * removes the .pending. After a crash, the file itself says how far it got:
 *  - it opens with the old key: the re-key never reached it; the new
 *    password is void, the .pending and any half-made copy are removed;
 *  - it opens with the pending key: the control plane takes the pending
 *    credentials (the new password proves them by opening the file), and
 *    the old password, whose key no longer opens anything, is refused.
 * <id>.rekey-lock (flock) keeps them apart: every open handle holds it
 * shared, a change or a recovery holds it exclusively, so a change never
 * copies a file that another handle may still write to (its commits would
 * be lost with the old inode, and its WAL would be applied to the new
 * file), and a recovery never judges a file whose change is still under
 * way. */
#include "store-private.h"

#include "crypto/crypto.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#define STORE_REKEY_LOCK_STEP_MS 20

/* salt | verifier | public key | wrapped secret key length (1) | wrapped */
#define PENDING_PLAIN_BYTES                                                  \
	(CRYPTO_SALT_BYTES + CRYPTO_VERIFIER_BYTES + CRYPTO_PUBLIC_KEY_BYTES + \
	 1 + ACCOUNT_WRAPPED_SK_BYTES)

static char *
pending_path(const char *data_dir, const char *mailbox_id)
{
	return xasprintf("%s/mailboxes/%s.pending", data_dir, mailbox_id);
}

int
store_lock_file(const char *path, int op, int wait_ms)
{
	int fd, waited = 0;

	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -1;
	/* flock, not fcntl: SQLite's own fcntl locks on the database are
	 * unrelated, and a second descriptor in the same process (another
	 * thread's session) conflicts as another process would. */
	while (flock(fd, op | LOCK_NB) < 0) {
		if (errno != EWOULDBLOCK && errno != EINTR)
			goto fail;
		if (waited >= wait_ms) {
			errno = EWOULDBLOCK;
			goto fail;
		}
		struct timespec ts = {0, STORE_REKEY_LOCK_STEP_MS * 1000000L};
		nanosleep(&ts, NULL);
		waited += STORE_REKEY_LOCK_STEP_MS;
	}
	return fd;
fail: {
	int saved = errno;

	close(fd);
	errno = saved;
	return -1;
}
}

char *
store_lock_path(const char *data_dir, const char *mailbox_id)
{
	return xasprintf("%s/mailboxes/%s.rekey-lock", data_dir, mailbox_id);
}

int
store_rekey_lock(const char *data_dir, const char *mailbox_id, int wait_ms)
{
	char *path = store_lock_path(data_dir, mailbox_id);
	int fd = store_lock_file(path, LOCK_EX, wait_ms);

	free(path);
	return fd;
}

void
store_rekey_unlock(int fd)
{
	if (fd >= 0)
		close(fd);
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

int
store_rekey_pending_write(const char *data_dir, const char *mailbox_id,
			  const struct account_credentials *creds,
			  const char **error_r)
{
	unsigned char plain[PENDING_PLAIN_BYTES] = {0};
	unsigned char sealed[PENDING_PLAIN_BYTES + CRYPTO_WRAP_OVERHEAD];
	struct crypto_key *skey;
	unsigned char *p = plain;
	char *path, *dir;
	int ret;

	if (creds->wrapped_sk_len > ACCOUNT_WRAPPED_SK_BYTES) {
		store_set_error(error_r, "pending: bad wrapped key");
		return -1;
	}
	skey = server_key_load(data_dir);
	if (skey == NULL) {
		store_set_error(error_r, "server key: %s", strerror(errno));
		return -1;
	}
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
	dir = xasprintf("%s/mailboxes", data_dir);
	ret = fs_mkdir_p(dir, 0700);
	free(dir);
	path = pending_path(data_dir, mailbox_id);
	if (ret == 0)
		ret = fs_write_atomic(path, sealed, sizeof(sealed), 0600);
	if (ret < 0)
		store_set_error(error_r, "%s: %s", path, strerror(errno));
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
		sodium_memzero(plain, sizeof(plain));
	}
	crypto_key_destroy(&skey);
	free(data);
	return rc;
}

static bool
pending_exists(const char *data_dir, const char *mailbox_id)
{
	char *path = pending_path(data_dir, mailbox_id);
	bool exists = fs_exists(path);

	free(path);
	return exists;
}

void
store_rekey_pending_remove(const char *data_dir, const char *mailbox_id)
{
	char *path = pending_path(data_dir, mailbox_id);

	if (fs_exists(path))
		(void)fs_secure_unlink(path);
	free(path);
}

/* Under the lock: the change died before the file was re-keyed. */
static void
rekey_abandon(const char *data_dir, const char *mailbox_id)
{
	char *path = store_mailbox_path(data_dir, mailbox_id);

	store_remove_rekey_leftovers(path);
	free(path);
	store_rekey_pending_remove(data_dir, mailbox_id);
}

/* Opens and closes the file with `key`: does it open with it? */
static enum store_error
rekey_probe(const char *data_dir, const char *mailbox_id,
	    const struct crypto_key *key, const char **error_r)
{
	struct store_mailbox *mbox = NULL;
	enum store_error err;

	err = store_mailbox_open(data_dir, mailbox_id, key,
				 STORE_OPEN_LOCK_HELD, &mbox, error_r);
	store_mailbox_close(&mbox);
	return err;
}

int
store_rekey_recover(struct account_db *adb, const char *data_dir,
		    const char *address, const char *password,
		    const char **error_r)
{
	struct account_credentials pending, current;
	struct account_alias *alias = NULL;
	struct crypto_login login = {0};
	const char *error = NULL;
	enum store_error serr;
	int fd = -1, rc;

	rc = account_alias_get(adb, address, &alias, &error);
	if (rc <= 0 || !alias->has_mailbox ||
	    !pending_exists(data_dir, alias->mailbox_id)) {
		account_alias_free(&alias);
		return 0;
	}
	if (pending_read(data_dir, alias->mailbox_id, &pending) <= 0 ||
	    crypto_login_derive(password, strlen(password), pending.salt,
				&login) < 0) {
		account_alias_free(&alias);
		return 0;
	}
	rc = 0;
	if (!crypto_verifier_equal(login.verifier, pending.verifier))
		goto out;
	/* From here the caller knows the pending password: it may learn
	 * that the change is still running. */
	fd = store_rekey_lock(data_dir, alias->mailbox_id,
			      STORE_REKEY_LOCK_WAIT_MS);
	if (fd < 0) {
		store_set_error(error_r, "a password change is under way");
		rc = -1;
		goto out;
	}
	if (!pending_exists(data_dir, alias->mailbox_id)) {
		/* Completed (or abandoned) while we waited: log in again. */
		rc = 1;
		goto out;
	}
	serr = rekey_probe(data_dir, alias->mailbox_id, login.mailbox_key,
			   &error);
	if (serr == STORE_ERR_BADKEY) {
		/* Still under the old key: the change never reached the
		 * file. */
		rekey_abandon(data_dir, alias->mailbox_id);
		goto out;
	}
	if (serr != STORE_OK && serr != STORE_ERR_NOTFOUND) {
		store_set_error(error_r, "mailbox: %s", error);
		rc = -1;
		goto out;
	}
	/* The file opens with the pending key (or there is no file, which
	 * the change treats as done too): the control plane follows. The
	 * condition on the current verifier keeps a later change safe. */
	if (account_alias_get_credentials(adb, alias->address, &current,
					  &error) <= 0) {
		store_set_error(error_r, "credentials: %s",
				error != NULL ? error : "missing");
		rc = -1;
		goto out;
	}
	if (!crypto_verifier_equal(current.verifier, pending.verifier) &&
	    account_alias_set_credentials(adb, alias->address, &pending,
					  current.verifier,
					  &error) != ACCOUNT_OK) {
		store_set_error(error_r, "credentials: %s", error);
		rc = -1;
		goto out;
	}
	store_rekey_pending_remove(data_dir, alias->mailbox_id);
	{
		char *path = store_mailbox_path(data_dir, alias->mailbox_id);

		store_remove_rekey_leftovers(path);
		free(path);
	}
	log_info(NULL, "store: completed an interrupted password change");
	rc = 1;
out:
	store_rekey_unlock(fd);
	sodium_memzero(&pending, sizeof(pending));
	crypto_login_clear(&login);
	account_alias_free(&alias);
	return rc;
}

/* After a login with the control plane's password: 0 when the mailbox is
 * (as far as a pending change goes) the key's, 1 when a change re-keyed
 * the file away from it, -1 on error. */
static int
rekey_settle(const char *data_dir, const char *mailbox_id,
	     const struct crypto_key *key, const char **error_r)
{
	enum store_error serr;
	const char *error = NULL;
	int fd, rc = 0;

	if (!pending_exists(data_dir, mailbox_id))
		return 0;
	fd = store_rekey_lock(data_dir, mailbox_id, STORE_REKEY_LOCK_WAIT_MS);
	if (fd < 0) {
		/* A change is running: the file is the old one until its
		 * rename, as for a session opened a moment earlier. */
		return 0;
	}
	if (pending_exists(data_dir, mailbox_id)) {
		serr = rekey_probe(data_dir, mailbox_id, key, &error);
		if (serr == STORE_OK || serr == STORE_ERR_NOTFOUND) {
			rekey_abandon(data_dir, mailbox_id);
		} else if (serr == STORE_ERR_BADKEY) {
			rc = 1;
		} else {
			store_set_error(error_r, "mailbox: %s", error);
			rc = -1;
		}
	}
	store_rekey_unlock(fd);
	return rc;
}

enum account_error
store_login(struct account_db *adb, const char *data_dir, const char *address,
	    const char *password, struct account_session_keys *keys_r,
	    const char **error_r)
{
	enum account_error aerr;
	const char *error = NULL;
	int rc;

	aerr = account_login(adb, address, password, keys_r, error_r);
	if (aerr == ACCOUNT_ERR_AUTH) {
		rc = store_rekey_recover(adb, data_dir, address, password,
					 &error);
		if (rc == 1)
			return account_login(adb, address, password, keys_r,
					     error_r);
		if (rc < 0) {
			*error_r = error;
			return ACCOUNT_ERR_TEMP;
		}
		return aerr;
	}
	if (aerr != ACCOUNT_OK)
		return aerr;
	rc = rekey_settle(data_dir, keys_r->mailbox_id, keys_r->mailbox_key,
			  &error);
	if (rc == 0)
		return ACCOUNT_OK;
	account_login_release(keys_r->address);
	account_session_keys_clear(keys_r);
	if (rc > 0) {
		/* The password was changed: this one opens nothing now. */
		*error_r = "authentication failed";
		return ACCOUNT_ERR_AUTH;
	}
	*error_r = error;
	return ACCOUNT_ERR_TEMP;
}
