/* store: the spool -- mail sealed to an absent owner's public key, filed
 * into INBOX at the owner's next login. */
#include "store-private.h"

#include "crypto/crypto.h"

#include <dirent.h>
#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define STORE_SPOOL_SUFFIX ".msg"
/* A copy of the owner's own submitted mail: filed into the Sent folder,
 * marked \Seen. The name is all a drain needs to know, so the sealed
 * content stays exactly the message. */
#define STORE_SPOOL_SENT_SUFFIX ".sent" STORE_SPOOL_SUFFIX
/* A sealing that crashed leaves "<name>.msg.tmp.XXXXXX"; older than this it
 * is certainly abandoned. */
#define STORE_SPOOL_STALE_SECONDS 3600

char *
store_spool_path(const char *data_dir, const char *mailbox_id)
{
	return xasprintf("%s/spool/%s", data_dir, mailbox_id);
}

int
store_spool_seal(const char *data_dir, const char *mailbox_id,
		 const unsigned char *public_key, const void *raw, size_t len,
		 const char **error_r)
{
	return store_spool_seal_to(data_dir, mailbox_id, public_key,
				   STORE_SPOOL_INBOX, raw, len, error_r);
}

int
store_spool_seal_to(const char *data_dir, const char *mailbox_id,
		    const unsigned char *public_key,
		    enum store_spool_folder folder, const void *raw,
		    size_t len, const char **error_r)
{
	static unsigned counter;
	char *dir, *path;
	unsigned char *sealed;
	char rnd[9];
	struct timespec ts;
	bool created;
	int ret = 0;

	if (strlen(mailbox_id) != STORE_MAILBOX_ID_BUF - 1 ||
	    strchr(mailbox_id, '/') != NULL) {
		store_set_error(error_r, "invalid mailbox id");
		return -1;
	}
	dir = store_spool_path(data_dir, mailbox_id);
	created = !fs_exists(dir);
	if (fs_mkdir_p(dir, 0700) < 0 ||
	    (created && fs_fsync_parent(dir) < 0)) {
		store_set_error(error_r, "spool: %s", strerror(errno));
		free(dir);
		return -1;
	}
	/* Names sort in arrival order: nanoseconds, then a per-process
	 * counter, then randomness against other processes. */
	clock_gettime(CLOCK_REALTIME, &ts);
	random_hex_id(rnd, 4);
	path = xasprintf("%s/%020lld-%010u-%s%s", dir,
			 (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec,
			 __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED),
			 rnd,
			 folder == STORE_SPOOL_SENT ? STORE_SPOOL_SENT_SUFFIX
						    : STORE_SPOOL_SUFFIX);
	sealed = xmalloc(len + CRYPTO_SEAL_OVERHEAD);
	crypto_seal(public_key, raw, len, sealed);
	if (fs_write_atomic(path, sealed, len + CRYPTO_SEAL_OVERHEAD, 0600) <
	    0) {
		store_set_error(error_r, "spool: %s", strerror(errno));
		ret = -1;
	}
	free(sealed);
	free(path);
	free(dir);
	return ret;
}

static int
store_name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool
store_has_suffix(const char *name, const char *suffix)
{
	size_t n = strlen(name), s = strlen(suffix);

	return n > s && strcmp(name + n - s, suffix) == 0;
}

/* Names of the spooled messages, sorted; removes stale temporary files. */
static char **
store_spool_list(const char *dir, size_t *count_r)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char **names = NULL;
	size_t n = 0, cap = 0;

	*count_r = 0;
	if (d == NULL)
		return NULL;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (!store_has_suffix(de->d_name, STORE_SPOOL_SUFFIX)) {
			char *path = xasprintf("%s/%s", dir, de->d_name);
			struct stat st;

			if (strstr(de->d_name, STORE_SPOOL_SUFFIX ".tmp.") !=
				    NULL &&
			    stat(path, &st) == 0 &&
			    st.st_mtime + STORE_SPOOL_STALE_SECONDS <
				    time(NULL))
				(void)fs_secure_unlink(path);
			free(path);
			continue;
		}
		if (n == cap) {
			cap = cap == 0 ? 16 : cap * 2;
			names = xrealloc(names, cap * sizeof(*names));
		}
		names[n++] = xstrdup(de->d_name);
	}
	closedir(d);
	if (n > 1)
		qsort(names, n, sizeof(*names), store_name_cmp);
	*count_r = n;
	return names;
}

static void
store_names_free(char **names, size_t count)
{
	for (size_t i = 0; i < count; i++)
		free(names[i]);
	free(names);
}

size_t
store_spool_count(const char *data_dir, const char *mailbox_id)
{
	char *dir = store_spool_path(data_dir, mailbox_id);
	size_t count;
	char **names = store_spool_list(dir, &count);

	store_names_free(names, count);
	free(dir);
	return count;
}

static int
store_spool_mark(struct store_mailbox *mbox, const char *name, bool add)
{
	sqlite3_stmt *stmt = db_prepare(
		mbox->db, add ? "INSERT OR IGNORE INTO spool_drained VALUES(?);"
			      : "DELETE FROM spool_drained WHERE name = ?;");
	int rc;

	sqlite3_bind_text(stmt, 1, name, -1, SQLITE_TRANSIENT);
	rc = sqlite3_step(stmt);
	sqlite3_finalize(stmt);
	return rc == SQLITE_DONE ? 0 : -1;
}

static bool
store_spool_was_drained(struct store_mailbox *mbox, const char *name)
{
	sqlite3_stmt *stmt = db_prepare(
		mbox->db, "SELECT 1 FROM spool_drained WHERE name = ?;");
	bool found;

	sqlite3_bind_text(stmt, 1, name, -1, SQLITE_TRANSIENT);
	found = sqlite3_step(stmt) == SQLITE_ROW;
	sqlite3_finalize(stmt);
	return found;
}

/* The folder marked \Sent, created when the owner deleted it. */
static enum store_error
store_spool_sent_folder(struct store_mailbox *mbox, int64_t *id_r,
			const char **error_r)
{
	struct store_folder *folders = NULL, *sent = NULL;
	size_t count = 0;
	enum store_error err;

	err = store_folder_list(mbox, &folders, &count, error_r);
	for (size_t i = 0; err == STORE_OK && i < count; i++) {
		if (folders[i].special_use == STORE_SPECIAL_SENT) {
			*id_r = folders[i].id;
			store_folder_list_free(&folders, count);
			return STORE_OK;
		}
	}
	store_folder_list_free(&folders, count);
	if (err != STORE_OK)
		return err;
	err = store_folder_create(mbox, "Sent", STORE_SPECIAL_SENT, error_r);
	if (err != STORE_OK && err != STORE_ERR_EXISTS)
		return err;
	err = store_folder_get(mbox, "Sent", &sent, error_r);
	if (err == STORE_OK)
		*id_r = sent->id;
	store_folder_free(&sent);
	return err;
}

enum store_error
store_spool_drain(struct store_mailbox *mbox, const unsigned char *public_key,
		  const struct crypto_key *secret_key, size_t *count_r,
		  const char **error_r)
{
	char *dir = store_spool_path(mbox->data_dir, mbox->mailbox_id);
	size_t count, moved = 0;
	char **names = store_spool_list(dir, &count);
	bool *done = xcalloc(count + 1, sizeof(*done));
	enum store_error err = STORE_OK;
	struct store_folder *inbox = NULL;
	int64_t sent_id = -1;
	const char *dberr;

	if (count_r != NULL)
		*count_r = 0;
	if (count == 0)
		goto out_free;
	err = store_folder_get(mbox, "INBOX", &inbox, error_r);
	if (err != STORE_OK)
		goto out_free;
	for (size_t i = 0; i < count && sent_id < 0; i++) {
		if (store_has_suffix(names[i], STORE_SPOOL_SENT_SUFFIX)) {
			err = store_spool_sent_folder(mbox, &sent_id, error_r);
			if (err != STORE_OK)
				goto out_free;
		}
	}
	if (db_begin_durable(mbox->db, &dberr) < 0) {
		store_set_error(error_r, "%s", dberr);
		err = STORE_ERR_TEMP;
		goto out_free;
	}
	for (size_t i = 0; i < count && err == STORE_OK; i++) {
		char *path = xasprintf("%s/%s", dir, names[i]);
		char *data = NULL;
		unsigned char *plain;
		size_t len;

		/* Filed by a session that crashed before unlinking it. */
		if (store_spool_was_drained(mbox, names[i])) {
			done[i] = true;
			free(path);
			continue;
		}
		if (fs_read_file(path, &data, &len) < 0) {
			/* Another session drained it meanwhile. */
			free(path);
			continue;
		}
		free(path);
		if (len <= CRYPTO_SEAL_OVERHEAD) {
			log_warn(NULL, "spool: a file is too short to be "
				       "sealed mail; left in place");
			free(data);
			continue;
		}
		plain = xmalloc(len - CRYPTO_SEAL_OVERHEAD);
		if (crypto_seal_open(public_key, secret_key,
				     (unsigned char *)data, len, plain) < 0) {
			log_warn(NULL, "spool: a file does not open with the "
				       "alias's key; left in place");
		} else {
			bool sent = sent_id >= 0 &&
				    store_has_suffix(names[i],
						     STORE_SPOOL_SENT_SUFFIX);

			err = store_append_locked(
				mbox, sent ? sent_id : inbox->id, plain,
				len - CRYPTO_SEAL_OVERHEAD,
				sent ? STORE_FLAG_SEEN : 0, NULL, 0, NULL,
				error_r);
			/* Unparseable input cannot be filed; drop it. */
			if (err == STORE_ERR_INVALID)
				err = STORE_OK;
			else if (err == STORE_OK)
				moved++;
			if (err == STORE_OK &&
			    store_spool_mark(mbox, names[i], true) < 0)
				err = store_db_error(mbox, "spool", error_r);
			done[i] = err == STORE_OK;
		}
		sodium_memzero(plain, len - CRYPTO_SEAL_OVERHEAD);
		free(plain);
		free(data);
	}
	if (err == STORE_OK && db_commit(mbox->db, &dberr) < 0) {
		store_set_error(error_r, "%s", dberr);
		err = STORE_ERR_TEMP;
	}
	if (err != STORE_OK) {
		db_rollback(mbox->db);
		moved = 0;
		goto out_free;
	}
	/* Committed: now the files may go. A crash here leaves names that
	 * spool_drained remembers. */
	for (size_t i = 0; i < count; i++) {
		char *path;

		if (!done[i])
			continue;
		path = xasprintf("%s/%s", dir, names[i]);
		if (fs_secure_unlink(path) == 0 || errno == ENOENT)
			(void)store_spool_mark(mbox, names[i], false);
		free(path);
	}
	if (count_r != NULL)
		*count_r = moved;
out_free:
	store_folder_free(&inbox);
	free(done);
	store_names_free(names, count);
	free(dir);
	return err;
}
