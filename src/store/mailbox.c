/* store: opening, schema, usage, re-keying and deletion of a mailbox file. */
#include "store-private.h"

#include "crypto/crypto.h"

#include <dirent.h>
#include <sodium.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

static _Thread_local char store_error_buf[512];

const char *
store_set_error(const char **error_r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(store_error_buf, sizeof(store_error_buf), fmt, ap);
	va_end(ap);
	if (error_r != NULL)
		*error_r = store_error_buf;
	return store_error_buf;
}

enum store_error
store_db_error(struct store_mailbox *mbox, const char *what,
	       const char **error_r)
{
	store_set_error(error_r, "%s: %s", what, sqlite3_errmsg(mbox->db));
	return STORE_ERR_TEMP;
}

const char *
store_error_str(enum store_error error)
{
	switch (error) {
	case STORE_OK:
		return "success";
	case STORE_ERR_TEMP:
		return "temporary failure";
	case STORE_ERR_NOTFOUND:
		return "not found";
	case STORE_ERR_EXISTS:
		return "already exists";
	case STORE_ERR_QUOTA:
		return "storage limit reached";
	case STORE_ERR_BADKEY:
		return "wrong password";
	case STORE_ERR_INVALID:
		return "invalid request";
	case STORE_ERR_NOTEMPTY:
		return "folder has child folders";
	}
	return "unknown error";
}

sqlite3_stmt *
store_stmt(struct store_mailbox *mbox, enum store_stmt_id id, const char *sql)
{
	sqlite3_stmt *stmt = mbox->stmts[id];

	if (stmt == NULL) {
		if (sqlite3_prepare_v3(mbox->db, sql, -1,
				       SQLITE_PREPARE_PERSISTENT, &stmt,
				       NULL) != SQLITE_OK)
			core_panic("SQL does not compile: %s: %s",
				   sqlite3_errmsg(mbox->db), sql);
		mbox->stmts[id] = stmt;
	}
	sqlite3_reset(stmt);
	sqlite3_clear_bindings(stmt);
	return stmt;
}

/*
 * Schema version 1. Notes on choices:
 * - messages.header holds the raw header block (blank line included) and
 *   messages.rest the remainder with de-duplicated attachment bodies cut
 *   out, compressed; message_parts says where each cut body goes back
 *   (offsets into the whole message), so FETCH reassembles byte for byte.
 *   messages.text is the decoded text that was indexed, compressed, for
 *   the exact check behind FTS narrowing (the FTS table is contentless).
 * - The FTS5 table uses the trigram tokenizer so that BODY/TEXT narrowing
 *   has the substring semantics of RFC 3501; detail=none keeps it small
 *   (our queries are ANDs of single trigrams, never phrases).
 * - changes is the journal: the newest FLAGS/APPEND entry per message and
 *   every EXPUNGE, so it stays as long as the mailbox plus its expunges.
 */
static const char *const store_migrations[] = {
	"CREATE TABLE meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL)"
	" WITHOUT ROWID;"
	"INSERT INTO meta VALUES('highest_modseq', 0), ('next_uidvalidity',"
	" CAST(strftime('%s','now') AS INTEGER) % 4000000000 + 1);"
	"CREATE TABLE folders("
	" id INTEGER PRIMARY KEY,"
	" name TEXT NOT NULL UNIQUE,"
	" special_use INTEGER NOT NULL DEFAULT 0,"
	" subscribed INTEGER NOT NULL DEFAULT 0,"
	" uidvalidity INTEGER NOT NULL,"
	" uidnext INTEGER NOT NULL DEFAULT 1,"
	" highest_modseq INTEGER NOT NULL DEFAULT 0,"
	" recent_uid INTEGER NOT NULL DEFAULT 1);"
	"CREATE TABLE messages("
	" id INTEGER PRIMARY KEY,"
	" folder_id INTEGER NOT NULL REFERENCES folders(id),"
	" uid INTEGER NOT NULL,"
	" modseq INTEGER NOT NULL,"
	" flags INTEGER NOT NULL DEFAULT 0,"
	" keywords TEXT NOT NULL DEFAULT '',"
	" internal_date TEXT NOT NULL,"
	" size INTEGER NOT NULL,"
	" sent_date INTEGER,"
	" subject TEXT, from_addr TEXT, to_addr TEXT, cc_addr TEXT,"
	" bcc_addr TEXT, reply_to TEXT, sender TEXT, message_id TEXT,"
	" in_reply_to TEXT, refs TEXT,"
	" sort_subject TEXT, sort_from TEXT, sort_to TEXT, sort_cc TEXT,"
	" envelope TEXT, body TEXT, bodystructure TEXT,"
	" header BLOB NOT NULL,"
	" rest BLOB NOT NULL,"
	" text BLOB NOT NULL,"
	" UNIQUE(folder_id, uid));"
	"CREATE INDEX messages_flags ON messages(folder_id, flags);"
	"CREATE INDEX messages_modseq ON messages(folder_id, modseq);"
	"CREATE INDEX messages_internal_date ON messages(folder_id,"
	" internal_date);"
	"CREATE INDEX messages_sent_date ON messages(folder_id, sent_date);"
	"CREATE INDEX messages_size ON messages(folder_id, size);"
	"CREATE INDEX messages_subject ON messages(folder_id, sort_subject);"
	"CREATE INDEX messages_from ON messages(folder_id, sort_from);"
	"CREATE INDEX messages_to ON messages(folder_id, sort_to);"
	"CREATE INDEX messages_cc ON messages(folder_id, sort_cc);"
	"CREATE INDEX messages_message_id ON messages(message_id);"
	"CREATE TABLE attachments("
	" id INTEGER PRIMARY KEY,"
	" sha256 BLOB NOT NULL UNIQUE,"
	" refcount INTEGER NOT NULL,"
	" content BLOB NOT NULL);"
	"CREATE TABLE message_parts("
	" message_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE"
	" CASCADE,"
	" offset INTEGER NOT NULL,"
	" attachment_id INTEGER NOT NULL REFERENCES attachments(id),"
	" length INTEGER NOT NULL,"
	" PRIMARY KEY(message_id, offset)) WITHOUT ROWID;"
	"CREATE INDEX message_parts_attachment ON message_parts(attachment_id);"
	"CREATE TABLE changes("
	" modseq INTEGER NOT NULL,"
	" folder_id INTEGER NOT NULL,"
	" uid INTEGER NOT NULL,"
	" kind INTEGER NOT NULL);"
	"CREATE INDEX changes_folder ON changes(folder_id, modseq);"
	"CREATE INDEX changes_uid ON changes(folder_id, uid);"
	"CREATE VIRTUAL TABLE fts USING fts5(subject, addresses, text,"
	" tokenize='trigram', detail='none', content='',"
	" contentless_delete=1);"
	/* Reference counts follow the parts; the last user of a body frees
	 * it, and the index entry goes with its message. */
	"CREATE TRIGGER messages_delete BEFORE DELETE ON messages BEGIN"
	" UPDATE attachments SET refcount = refcount -"
	"  (SELECT count(*) FROM message_parts p WHERE p.message_id = old.id"
	"   AND p.attachment_id = attachments.id)"
	"  WHERE id IN (SELECT attachment_id FROM message_parts"
	"   WHERE message_id = old.id);"
	" DELETE FROM message_parts WHERE message_id = old.id;"
	" DELETE FROM attachments WHERE refcount <= 0;"
	" DELETE FROM fts WHERE rowid = old.id;"
	"END;"
	"CREATE INDEX attachments_refcount ON attachments(refcount);"
	/* Spool files already filed into INBOX whose unlink may not have
	 * happened yet (crash between commit and unlink): never twice. */
	"CREATE TABLE spool_drained(name TEXT PRIMARY KEY) WITHOUT ROWID;",
	/* 2: the raw header, the deflated rest and the index text move out
	 * of `messages` into a table of their own. SQLite rewrites a whole
	 * record, overflow pages included, to change one column: with the
	 * bodies in the row, setting a flag re-encrypted (and, under
	 * secure_delete, zeroed) every page of the message, and every scan
	 * of flags or dates decrypted pages of bodies. */
	"CREATE TABLE message_content("
	" id INTEGER PRIMARY KEY REFERENCES messages(id) ON DELETE CASCADE,"
	" header BLOB NOT NULL,"
	" rest BLOB NOT NULL,"
	" text BLOB NOT NULL);"
	"INSERT INTO message_content(id, header, rest, text)"
	" SELECT id, header, rest, text FROM messages;"
	"ALTER TABLE messages DROP COLUMN header;"
	"ALTER TABLE messages DROP COLUMN rest;"
	"ALTER TABLE messages DROP COLUMN text;",
};

static const struct {
	const char *name;
	enum store_special_use use;
	bool subscribed;
} store_default_folders[] = {
	{"INBOX", STORE_SPECIAL_INBOX, true},
	{"Sent", STORE_SPECIAL_SENT, true},
	{"Drafts", STORE_SPECIAL_DRAFTS, true},
	{"Trash", STORE_SPECIAL_TRASH, true},
	{"Junk", STORE_SPECIAL_JUNK, true},
	{"Archive", STORE_SPECIAL_ARCHIVE, true},
};

char *
store_mailbox_path(const char *data_dir, const char *mailbox_id)
{
	return xasprintf("%s/mailboxes/%s.sqlite", data_dir, mailbox_id);
}

static bool
store_mailbox_id_is_valid(const char *id)
{
	size_t n = strlen(id);

	if (n != STORE_MAILBOX_ID_BUF - 1)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (!((id[i] >= '0' && id[i] <= '9') ||
		      (id[i] >= 'a' && id[i] <= 'f')))
			return false;
	}
	return true;
}

static int
store_create_default_folders(struct store_mailbox *mbox, const char **error_r)
{
	sqlite3_stmt *stmt;
	int count = 0;

	stmt = db_prepare(mbox->db, "SELECT count(*) FROM folders;");
	if (sqlite3_step(stmt) == SQLITE_ROW)
		count = sqlite3_column_int(stmt, 0);
	sqlite3_finalize(stmt);
	if (count > 0)
		return 0;
	for (size_t i = 0; i < SP_N_ELEMENTS(store_default_folders); i++) {
		enum store_error err = store_folder_create(
			mbox, store_default_folders[i].name,
			store_default_folders[i].use, error_r);

		if (err != STORE_OK && err != STORE_ERR_EXISTS)
			return -1;
		if (store_folder_subscribe(mbox, store_default_folders[i].name,
					   true, error_r) != STORE_OK)
			return -1;
	}
	return 0;
}

/* A re-key that crashed leaves its copy behind; it holds the same mail under
 * one of the two keys and must not linger. */
void
store_remove_rekey_leftovers(const char *path)
{
	char *tmp = xasprintf("%s.rekey", path);
	char *journal = xasprintf("%s.rekey-journal", path);

	if (fs_exists(journal))
		(void)fs_secure_unlink(journal);
	if (fs_exists(tmp))
		(void)fs_secure_unlink(tmp);
	free(tmp);
	free(journal);
}

static void
store_chmod_private(const char *path)
{
	static const char *const suffixes[] = {"", "-wal", "-shm"};

	for (size_t i = 0; i < SP_N_ELEMENTS(suffixes); i++) {
		char *file = xasprintf("%s%s", path, suffixes[i]);

		(void)chmod(file, 0600);
		free(file);
	}
}

enum store_error
store_mailbox_open(const char *data_dir, const char *mailbox_id,
		   const struct crypto_key *key, int flags,
		   struct store_mailbox **mbox_r, const char **error_r)
{
	struct store_mailbox *mbox;
	const char *dberr;
	char *dir;
	enum db_error derr;
	sqlite3 *db;
	bool created;

	*mbox_r = NULL;
	if (!store_mailbox_id_is_valid(mailbox_id)) {
		store_set_error(error_r, "invalid mailbox id");
		return STORE_ERR_INVALID;
	}
	if ((flags & STORE_OPEN_CREATE) != 0) {
		dir = xasprintf("%s/mailboxes", data_dir);
		if (fs_mkdir_p(dir, 0700) < 0) {
			store_set_error(error_r, "%s: %s", dir,
					strerror(errno));
			free(dir);
			return STORE_ERR_TEMP;
		}
		free(dir);
	}
	mbox = xcalloc(1, sizeof(*mbox));
	mbox->data_dir = xstrdup(data_dir);
	mbox->mailbox_id = xstrdup(mailbox_id);
	mbox->path = store_mailbox_path(data_dir, mailbox_id);
	mbox->lock_fd = -1;
	if ((flags & STORE_OPEN_CREATE) == 0 && !fs_exists(mbox->path)) {
		store_set_error(error_r, "no such mailbox");
		store_mailbox_close(&mbox);
		return STORE_ERR_NOTFOUND;
	}
	if ((flags & STORE_OPEN_LOCK_HELD) == 0) {
		/* Held shared while the handle lives: a password change
		 * (exclusive) waits until no handle is open, and an open waits
		 * while a change runs. */
		char *lock = store_lock_path(data_dir, mailbox_id);

		mbox->lock_fd = store_lock_file(lock, LOCK_SH,
						STORE_REKEY_LOCK_WAIT_MS);
		free(lock);
		if (mbox->lock_fd < 0) {
			store_set_error(error_r, "%s",
					errno == EWOULDBLOCK
						? "a password change of the "
						  "mailbox is under way"
						: strerror(errno));
			store_mailbox_close(&mbox);
			return STORE_ERR_TEMP;
		}
	}
	/* No change runs (we hold the lock, shared or exclusive): a copy
	 * left behind is from one that died. */
	store_remove_rekey_leftovers(mbox->path);

	created = !fs_exists(mbox->path);
	derr = db_open(mbox->path, key,
		       (flags & STORE_OPEN_CREATE) != 0 ? DB_OPEN_CREATE : 0,
		       &db, &dberr);
	if (derr != DB_OK) {
		enum store_error err = derr == DB_ERR_BADKEY ? STORE_ERR_BADKEY
				       : derr == DB_ERR_NOTFOUND
					       ? STORE_ERR_NOTFOUND
					       : STORE_ERR_TEMP;

		store_set_error(error_r, "%s",
				err == STORE_ERR_BADKEY ? "wrong password"
				: err == STORE_ERR_NOTFOUND ? "no such mailbox"
							    : dberr);
		store_mailbox_close(&mbox);
		return err;
	}
	mbox->db = db;
	/* SQLite creates files 0644 and gives the -wal and -shm the mode of
	 * the database; mail is for the server's user only. */
	if (created)
		store_chmod_private(mbox->path);
	/* A new file's directory entry must survive a crash too. */
	if (created && fs_fsync_parent(mbox->path) < 0) {
		store_set_error(error_r, "fsync: %s", strerror(errno));
		store_mailbox_close(&mbox);
		return STORE_ERR_TEMP;
	}
	if (store_sql_functions_register(db) < 0) {
		store_set_error(error_r, "could not register SQL functions");
		store_mailbox_close(&mbox);
		return STORE_ERR_TEMP;
	}
	if (db_migrate(db, store_migrations, SP_N_ELEMENTS(store_migrations),
		       &dberr) < 0) {
		store_set_error(error_r, "schema: %s", dberr);
		store_mailbox_close(&mbox);
		return STORE_ERR_TEMP;
	}
	if (store_create_default_folders(mbox, &dberr) < 0) {
		store_set_error(error_r, "folders: %s", dberr);
		store_mailbox_close(&mbox);
		return STORE_ERR_TEMP;
	}
	*mbox_r = mbox;
	return STORE_OK;
}

void
store_mailbox_close(struct store_mailbox **_mbox)
{
	struct store_mailbox *mbox = *_mbox;

	if (mbox == NULL)
		return;
	*_mbox = NULL;
	for (size_t i = 0; i < STORE_STMT_COUNT; i++)
		sqlite3_finalize(mbox->stmts[i]);
	db_close(&mbox->db);
	/* After the close: the WAL is folded in and gone before a waiting
	 * change copies the file. */
	if (mbox->lock_fd >= 0)
		close(mbox->lock_fd);
	free(mbox->data_dir);
	free(mbox->mailbox_id);
	free(mbox->path);
	free(mbox);
}

void
store_mailbox_set_quota(struct store_mailbox *mbox, uint64_t max_bytes)
{
	mbox->quota_bytes = max_bytes;
}

static int64_t
store_query_int(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *stmt = db_prepare(db, sql);
	int64_t value = 0;

	if (sqlite3_step(stmt) == SQLITE_ROW)
		value = sqlite3_column_int64(stmt, 0);
	sqlite3_finalize(stmt);
	return value;
}

uint64_t
store_mailbox_highest_modseq(struct store_mailbox *mbox)
{
	return (uint64_t)store_query_int(
		mbox->db, "SELECT value FROM meta WHERE key='highest_modseq';");
}

uint64_t
store_next_modseq(struct store_mailbox *mbox)
{
	sqlite3_stmt *stmt = store_stmt(
		mbox, STORE_STMT_SET_MODSEQ,
		"UPDATE meta SET value = value + 1 WHERE key='highest_modseq'"
		" RETURNING value;");
	uint64_t modseq = 0;

	if (sqlite3_step(stmt) == SQLITE_ROW)
		modseq = (uint64_t)sqlite3_column_int64(stmt, 0);
	sqlite3_reset(stmt);
	return modseq;
}

int
store_journal(struct store_mailbox *mbox, int64_t folder_id, uint32_t uid,
	      uint64_t modseq, enum store_change_kind kind)
{
	sqlite3_stmt *stmt;
	int rc;

	/* Only the newest state of a message matters to a session catching
	 * up; an expunge supersedes everything before it. */
	if (kind != STORE_CHANGE_APPEND) {
		stmt = store_stmt(
			mbox, STORE_STMT_DELETE_CHANGES_OF_UID,
			"DELETE FROM changes WHERE folder_id = ? AND uid = ?"
			" AND (kind = ? OR ? = 2);");
		sqlite3_bind_int64(stmt, 1, folder_id);
		sqlite3_bind_int64(stmt, 2, uid);
		sqlite3_bind_int(stmt, 3, (int)kind);
		sqlite3_bind_int(stmt, 4, (int)kind);
		rc = sqlite3_step(stmt);
		sqlite3_reset(stmt);
		if (rc != SQLITE_DONE)
			return -1;
	}
	stmt = store_stmt(mbox, STORE_STMT_INSERT_CHANGE,
			  "INSERT INTO changes(modseq, folder_id, uid, kind)"
			  " VALUES(?, ?, ?, ?);");
	sqlite3_bind_int64(stmt, 1, (sqlite3_int64)modseq);
	sqlite3_bind_int64(stmt, 2, folder_id);
	sqlite3_bind_int64(stmt, 3, uid);
	sqlite3_bind_int(stmt, 4, (int)kind);
	rc = sqlite3_step(stmt);
	sqlite3_reset(stmt);
	return rc == SQLITE_DONE ? 0 : -1;
}

int
store_folder_touch(struct store_mailbox *mbox, int64_t folder_id,
		   uint64_t modseq)
{
	sqlite3_stmt *stmt = db_prepare(
		mbox->db, "UPDATE folders SET highest_modseq = max("
			  "highest_modseq, ?) WHERE id = ?;");
	int rc;

	sqlite3_bind_int64(stmt, 1, (sqlite3_int64)modseq);
	sqlite3_bind_int64(stmt, 2, folder_id);
	rc = sqlite3_step(stmt);
	sqlite3_finalize(stmt);
	return rc == SQLITE_DONE ? 0 : -1;
}

enum store_error
store_quota_check(struct store_mailbox *mbox, uint64_t extra,
		  const char **error_r)
{
	sqlite3_stmt *stmt;
	uint64_t used = 0;

	if (mbox->quota_bytes == 0)
		return STORE_OK;
	stmt = store_stmt(mbox, STORE_STMT_USAGE_BYTES,
			  "SELECT total(size) FROM messages;");
	if (sqlite3_step(stmt) == SQLITE_ROW)
		used = (uint64_t)sqlite3_column_double(stmt, 0);
	sqlite3_reset(stmt);
	if (used + extra > mbox->quota_bytes) {
		store_set_error(error_r, "storage limit reached");
		return STORE_ERR_QUOTA;
	}
	return STORE_OK;
}

static uint64_t
store_file_size(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

enum store_error
store_mailbox_usage(struct store_mailbox *mbox, struct store_usage *usage_r,
		    const char **error_r)
{
	sqlite3_stmt *stmt;
	char *wal;

	memset(usage_r, 0, sizeof(*usage_r));
	stmt = db_prepare(mbox->db,
			  "SELECT count(*), total(size) FROM messages;");
	if (sqlite3_step(stmt) != SQLITE_ROW) {
		sqlite3_finalize(stmt);
		return store_db_error(mbox, "usage", error_r);
	}
	usage_r->messages = (uint64_t)sqlite3_column_int64(stmt, 0);
	usage_r->bytes = (uint64_t)sqlite3_column_double(stmt, 1);
	sqlite3_finalize(stmt);
	stmt = db_prepare(mbox->db,
			  "SELECT count(*), total(length(content)),"
			  " total(length(content) * (refcount - 1))"
			  " FROM attachments;");
	if (sqlite3_step(stmt) != SQLITE_ROW) {
		sqlite3_finalize(stmt);
		return store_db_error(mbox, "usage", error_r);
	}
	usage_r->attachments = (uint64_t)sqlite3_column_int64(stmt, 0);
	usage_r->attachment_bytes = (uint64_t)sqlite3_column_double(stmt, 1);
	usage_r->dedup_saved = (uint64_t)sqlite3_column_double(stmt, 2);
	sqlite3_finalize(stmt);
	wal = xasprintf("%s-wal", mbox->path);
	usage_r->file_bytes = store_file_size(mbox->path) + store_file_size(wal);
	free(wal);
	return STORE_OK;
}

/* ---- Re-keying ---- */

static int
store_fsync_path(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int ret;

	if (fd < 0)
		return -1;
	ret = fsync(fd);
	close(fd);
	return ret;
}

static int64_t
store_count_messages(sqlite3 *db)
{
	return store_query_int(db, "SELECT count(*) FROM messages;");
}

/*
 * The steps, and what a crash after each leaves:
 *  1. open with old_key, checkpoint, VACUUM INTO <path>.rekey (old key);
 *  2. open the copy, rollback journal, sqlite3_rekey(new_key), close;
 *  3. fsync the copy, open it read-only with new_key, count messages;
 *  4. rename(copy, path), fsync the directory.
 * Until the rename, <path> is the untouched original (old key) and the copy
 * is removed by the next open; the rename is atomic, after it <path> is the
 * verified copy (new key). The original had no -wal left behind (closed
 * after a TRUNCATE checkpoint), so no old frame is applied to the new file.
 */
enum store_error
store_mailbox_rekey(const char *data_dir, const char *mailbox_id,
		    const struct crypto_key *old_key,
		    const struct crypto_key *new_key, const char **error_r)
{
	struct store_mailbox *mbox = NULL;
	char *tmp = NULL, *sql = NULL, *wal = NULL;
	sqlite3 *copy = NULL;
	const char *dberr;
	enum store_error err;
	int64_t count, copy_count;
	enum db_error derr;

	/* The caller holds the lock: no other handle is open, and the open
	 * removes the copy of a change that died (VACUUM INTO wants no file
	 * or an empty one). */
	err = store_mailbox_open(data_dir, mailbox_id, old_key,
				 STORE_OPEN_LOCK_HELD, &mbox, error_r);
	if (err != STORE_OK)
		return err;
	tmp = xasprintf("%s.rekey", mbox->path);
	count = store_count_messages(mbox->db);
	if (db_exec(mbox->db, "PRAGMA wal_checkpoint(TRUNCATE);", &dberr) <
		    0 ||
	    db_exec(mbox->db, (sql = sqlite3_mprintf("VACUUM INTO %Q;", tmp)),
		    &dberr) < 0) {
		store_set_error(error_r, "copy: %s", dberr);
		err = STORE_ERR_TEMP;
		goto out;
	}
	store_mailbox_close(&mbox);

	derr = db_open(tmp, old_key, DB_OPEN_NO_WAL, &copy, &dberr);
	if (derr != DB_OK ||
	    db_exec(copy, "PRAGMA journal_mode=DELETE;", &dberr) < 0) {
		store_set_error(error_r, "copy: %s", dberr);
		err = STORE_ERR_TEMP;
		goto out;
	}
	{
		/* "raw:" + key, assembled in locked memory as db.c does. */
		unsigned char *raw = sodium_malloc(4 + CRYPTO_KEY_BYTES);
		int rc;

		if (raw == NULL)
			core_panic("sodium_malloc failed");
		memcpy(raw, "raw:", 4);
		memcpy(raw + 4, new_key->bytes, CRYPTO_KEY_BYTES);
		rc = sqlite3_rekey_v2(copy, "main", raw, 4 + CRYPTO_KEY_BYTES);
		sodium_free(raw);
		if (rc != SQLITE_OK) {
			store_set_error(error_r, "rekey: %s",
					sqlite3_errmsg(copy));
			err = STORE_ERR_TEMP;
			goto out;
		}
	}
	sqlite3_close_v2(copy);
	copy = NULL;
	if (store_fsync_path(tmp) < 0) {
		store_set_error(error_r, "fsync: %s", strerror(errno));
		err = STORE_ERR_TEMP;
		goto out;
	}
	derr = db_open(tmp, new_key, DB_OPEN_READONLY, &copy, &dberr);
	if (derr != DB_OK) {
		store_set_error(error_r, "verify: %s", dberr);
		err = STORE_ERR_TEMP;
		goto out;
	}
	store_chmod_private(tmp);
	copy_count = store_count_messages(copy);
	sqlite3_close_v2(copy);
	copy = NULL;
	if (copy_count != count) {
		store_set_error(error_r, "verify: the copy lost messages");
		err = STORE_ERR_TEMP;
		goto out;
	}
	{
		char *path = store_mailbox_path(data_dir, mailbox_id);
		int rc = rename(tmp, path);

		if (rc == 0)
			rc = fs_fsync_parent(path);
		if (rc < 0) {
			store_set_error(error_r, "rename: %s",
					strerror(errno));
			err = STORE_ERR_TEMP;
		}
		free(path);
		if (rc < 0)
			goto out;
	}
	err = STORE_OK;
out:
	if (copy != NULL)
		sqlite3_close_v2(copy);
	store_mailbox_close(&mbox);
	if (err != STORE_OK && tmp != NULL && fs_exists(tmp))
		(void)fs_secure_unlink(tmp);
	sqlite3_free(sql);
	free(wal);
	free(tmp);
	return err;
}

/* ---- Deletion ---- */

static int
store_secure_unlink_if_exists(const char *path)
{
	if (!fs_exists(path))
		return 0;
	return fs_secure_unlink(path);
}

int
store_mailbox_delete(const char *data_dir, const char *mailbox_id,
		     const char **error_r)
{
	static const char *const suffixes[] = {
		"", "-wal", "-shm", "-journal", ".rekey", ".rekey-journal",
	};
	char *path, *spool, *lock;
	DIR *dir;
	int ret = 0, fd;

	if (!store_mailbox_id_is_valid(mailbox_id)) {
		store_set_error(error_r, "invalid mailbox id");
		return -1;
	}
	/* Not in the middle of a password change; the lock file goes last,
	 * with its lock still held. */
	fd = store_rekey_lock(data_dir, mailbox_id, STORE_REKEY_LOCK_WAIT_MS);
	store_rekey_pending_remove(data_dir, mailbox_id);
	path = store_mailbox_path(data_dir, mailbox_id);
	for (size_t i = 0; i < SP_N_ELEMENTS(suffixes); i++) {
		char *file = xasprintf("%s%s", path, suffixes[i]);

		if (store_secure_unlink_if_exists(file) < 0) {
			store_set_error(error_r, "%s: %s", file,
					strerror(errno));
			ret = -1;
		}
		free(file);
	}
	free(path);

	spool = xasprintf("%s/spool/%s", data_dir, mailbox_id);
	dir = opendir(spool);
	if (dir != NULL) {
		struct dirent *de;

		while ((de = readdir(dir)) != NULL) {
			char *file;

			if (de->d_name[0] == '.' &&
			    (de->d_name[1] == '\0' ||
			     (de->d_name[1] == '.' && de->d_name[2] == '\0')))
				continue;
			file = xasprintf("%s/%s", spool, de->d_name);
			if (fs_secure_unlink(file) < 0) {
				store_set_error(error_r, "%s: %s", file,
						strerror(errno));
				ret = -1;
			}
			free(file);
		}
		closedir(dir);
		if (rmdir(spool) < 0 && errno != ENOENT) {
			store_set_error(error_r, "%s: %s", spool,
					strerror(errno));
			ret = -1;
		}
		(void)fs_fsync_parent(spool);
	}
	free(spool);
	lock = store_lock_path(data_dir, mailbox_id);
	if (unlink(lock) < 0 && errno != ENOENT) {
		store_set_error(error_r, "%s: %s", lock, strerror(errno));
		ret = -1;
	}
	free(lock);
	store_rekey_unlock(fd);
	return ret;
}
