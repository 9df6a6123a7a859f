/* What src/backup needs from the store: a consistent copy made under the
 * write lock, and a check of a copy. Kept apart from mailbox.c so the
 * backup module reaches no further into the store than this. */
#include "store-private.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <string.h>
#include <sys/stat.h>

static int64_t
hooks_count_messages(sqlite3 *db, const char **error_r)
{
	sqlite3_stmt *stmt = db_prepare(db, "SELECT count(*) FROM messages;");
	int64_t n = -1;

	if (sqlite3_step(stmt) == SQLITE_ROW)
		n = sqlite3_column_int64(stmt, 0);
	else
		store_set_error(error_r, "count: %s", sqlite3_errmsg(db));
	sqlite3_finalize(stmt);
	return n;
}

enum store_error
store_mailbox_snapshot(struct store_mailbox *mbox,
		       const struct crypto_key *key, const char *dest,
		       uint64_t *messages_r, const char **error_r)
{
	sqlite3 *lock = NULL;
	const char *dberr;
	char *sql = NULL;
	enum store_error err = STORE_ERR_TEMP;
	enum db_error derr;
	int64_t count;

	if (fs_exists(dest)) {
		store_set_error(error_r, "snapshot: %s exists", dest);
		return STORE_ERR_TEMP;
	}
	/* VACUUM INTO cannot run inside a transaction, so the write lock is
	 * held by a second connection: between the count below and the end
	 * of the copy no writer commits, and the two agree. */
	derr = db_open(mbox->path, key, 0, &lock, &dberr);
	if (derr != DB_OK) {
		store_set_error(error_r, "snapshot: %s", dberr);
		return derr == DB_ERR_BADKEY ? STORE_ERR_BADKEY
					     : STORE_ERR_TEMP;
	}
	if (db_begin(lock, &dberr) < 0) {
		store_set_error(error_r, "snapshot: write lock: %s", dberr);
		goto out;
	}
	/* PASSIVE: folds in what it can without waiting for readers. */
	if (db_exec(mbox->db, "PRAGMA wal_checkpoint(PASSIVE);", &dberr) < 0) {
		store_set_error(error_r, "snapshot: checkpoint: %s", dberr);
		goto out;
	}
	if ((count = hooks_count_messages(mbox->db, error_r)) < 0)
		goto out;
	sql = sqlite3_mprintf("VACUUM INTO %Q;", dest);
	if (db_exec(mbox->db, sql, &dberr) < 0) {
		store_set_error(error_r, "snapshot: %s", dberr);
		goto out;
	}
	/* SQLite creates files 0644; the directory is private, the copy is
	 * made so too. */
	(void)chmod(dest, 0600);
	*messages_r = (uint64_t)count;
	err = STORE_OK;
out:
	if (lock != NULL && !sqlite3_get_autocommit(lock))
		db_rollback(lock);
	/* Not db_close(): PRAGMA optimize must not write into the mailbox
	 * from here. */
	sqlite3_close_v2(lock);
	sqlite3_free(sql);
	if (err != STORE_OK && fs_exists(dest))
		(void)fs_secure_unlink(dest);
	return err;
}

/* Feeds every column of every row of `sql` into the hash, each value
 * length-prefixed so that no two row sets hash alike by concatenation. */
static int
hooks_hash_rows(sqlite3 *db, crypto_hash_sha256_state *st, const char *sql,
		const char **error_r)
{
	sqlite3_stmt *stmt = db_prepare(db, sql);
	int rc;

	if (stmt == NULL) {
		store_set_error(error_r, "change marker: %s",
				sqlite3_errmsg(db));
		return -1;
	}
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		int n = sqlite3_column_count(stmt);

		for (int i = 0; i < n; i++) {
			const unsigned char *v = sqlite3_column_text(stmt, i);
			uint32_t len = (uint32_t)sqlite3_column_bytes(stmt, i);
			unsigned char type =
				(unsigned char)sqlite3_column_type(stmt, i);

			crypto_hash_sha256_update(st, &type, 1);
			crypto_hash_sha256_update(st, (const void *)&len,
						  sizeof(len));
			if (v != NULL)
				crypto_hash_sha256_update(st, v, len);
		}
	}
	if (rc != SQLITE_DONE)
		store_set_error(error_r, "change marker: %s",
				sqlite3_errmsg(db));
	sqlite3_finalize(stmt);
	return rc == SQLITE_DONE ? 0 : -1;
}

enum store_error
store_mailbox_change_marker(struct store_mailbox *mbox,
			    unsigned char marker_r[STORE_CHANGE_MARKER_BYTES],
			    const char **error_r)
{
	static const char *const queries[] = {
		"PRAGMA user_version;",
		"SELECT key, value FROM meta ORDER BY key;",
		"SELECT id, name, special_use, subscribed, uidvalidity, "
		"uidnext, highest_modseq, recent_uid FROM folders ORDER BY id;",
		"SELECT count(*), coalesce(max(id), 0), coalesce(sum(size), 0) "
		"FROM messages;",
	};
	crypto_hash_sha256_state st;
	struct statx stx;
	struct {
		uint64_t dev_major, dev_minor, ino;
		int64_t btime_sec;
		uint32_t btime_nsec, has_btime;
	} id;
	const char *dberr;
	enum store_error err = STORE_ERR_TEMP;

	memset(&id, 0, sizeof(id));
	if (statx(AT_FDCWD, mbox->path, 0, STATX_INO | STATX_BTIME, &stx) <
	    0) {
		store_set_error(error_r, "change marker: %s: %s", mbox->path,
				strerror(errno));
		return STORE_ERR_TEMP;
	}
	id.dev_major = stx.stx_dev_major;
	id.dev_minor = stx.stx_dev_minor;
	id.ino = stx.stx_ino;
	if ((stx.stx_mask & STATX_BTIME) != 0) {
		id.has_btime = 1;
		id.btime_sec = stx.stx_btime.tv_sec;
		id.btime_nsec = stx.stx_btime.tv_nsec;
	}
	crypto_hash_sha256_init(&st);
	crypto_hash_sha256_update(&st, (const void *)&id, sizeof(id));
	/* One read transaction: the rows all come from one commit. */
	if (db_exec(mbox->db, "BEGIN;", &dberr) < 0) {
		store_set_error(error_r, "change marker: %s", dberr);
		return STORE_ERR_TEMP;
	}
	for (size_t i = 0; i < SP_N_ELEMENTS(queries); i++) {
		if (hooks_hash_rows(mbox->db, &st, queries[i], error_r) < 0)
			goto out;
	}
	crypto_hash_sha256_final(&st, marker_r);
	err = STORE_OK;
out:
	(void)db_exec(mbox->db, "COMMIT;", NULL);
	sodium_memzero(&st, sizeof(st));
	return err;
}

enum store_error
store_snapshot_verify(const char *path, const struct crypto_key *key,
		      uint64_t *messages_r, const char **error_r)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *stmt;
	const char *dberr;
	enum store_error err = STORE_ERR_TEMP;
	enum db_error derr;
	int64_t count;
	int rc;

	derr = db_open(path, key, DB_OPEN_READONLY | DB_OPEN_NO_WAL, &db,
		       &dberr);
	if (derr == DB_ERR_BADKEY) {
		store_set_error(error_r,
				"the copy does not open with this key");
		return STORE_ERR_BADKEY;
	}
	if (derr == DB_ERR_NOTFOUND) {
		store_set_error(error_r, "no such copy");
		return STORE_ERR_NOTFOUND;
	}
	if (derr != DB_OK) {
		/* A page that fails its MAC reads as "not a database" or as
		 * I/O failure: either way the copy is damaged. */
		store_set_error(error_r, "corrupt copy: %s", dberr);
		return STORE_ERR_INVALID;
	}
	stmt = db_prepare(db, "PRAGMA integrity_check;");
	rc = sqlite3_step(stmt);
	if (rc != SQLITE_ROW ||
	    strcmp((const char *)sqlite3_column_text(stmt, 0), "ok") != 0) {
		store_set_error(error_r, "corrupt copy: integrity check: %s",
				rc == SQLITE_ROW ? (const char *)
							   sqlite3_column_text(
								   stmt, 0)
						 : sqlite3_errmsg(db));
		sqlite3_finalize(stmt);
		err = STORE_ERR_INVALID;
		goto out;
	}
	sqlite3_finalize(stmt);
	if ((count = hooks_count_messages(db, error_r)) < 0) {
		err = STORE_ERR_INVALID;
		goto out;
	}
	*messages_r = (uint64_t)count;
	err = STORE_OK;
out:
	sqlite3_close_v2(db);
	return err;
}
