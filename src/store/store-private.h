/* store: declarations shared by the module's own files only. */
#ifndef SEALPOST_STORE_PRIVATE_H
#define SEALPOST_STORE_PRIVATE_H

#include "store.h"

#include "db/db.h"

/* Statements prepared once per handle (SQLITE_PREPARE_PERSISTENT), the ones
 * on the append and fetch paths. */
enum store_stmt_id {
	STORE_STMT_FOLDER_FOR_APPEND,
	STORE_STMT_INSERT_MESSAGE,
	STORE_STMT_INSERT_CONTENT,
	STORE_STMT_INSERT_ATTACHMENT,
	STORE_STMT_INSERT_MSG_ATTACHMENT,
	STORE_STMT_INSERT_FTS,
	STORE_STMT_INSERT_CHANGE,
	STORE_STMT_DELETE_CHANGES_OF_UID,
	STORE_STMT_UPDATE_FOLDER_APPEND,
	STORE_STMT_SET_MODSEQ,
	STORE_STMT_GET_RAW,
	STORE_STMT_GET_PARTS,
	STORE_STMT_USAGE_BYTES,
	STORE_STMT_COUNT
};

struct store_mailbox {
	sqlite3 *db;
	char *data_dir;
	char *mailbox_id;
	char *path;
	uint64_t quota_bytes;
	int lock_fd; /* <id>.rekey-lock held shared, or -1 */
	sqlite3_stmt *stmts[STORE_STMT_COUNT];
};

/* Securely removes <path>.rekey and <path>.rekey-journal (the caller holds
 * the mailbox's re-key lock). */
void store_remove_rekey_leftovers(const char *path);
/* How long an open, a login or a deletion waits for the re-key lock (the
 * same as SQLite's busy_timeout). */
#define STORE_REKEY_LOCK_WAIT_MS 5000
/* store_mailbox_open() flag: the caller holds the exclusive re-key lock
 * (the re-key itself, a recovery); no shared lock is taken. */
#define STORE_OPEN_LOCK_HELD (1 << 30)
/* <data>/mailboxes/<id>.rekey-lock; caller frees. */
char *store_lock_path(const char *data_dir, const char *mailbox_id);
/* Opens (creating) `path` and flocks it with op (LOCK_SH, LOCK_EX), trying
 * for up to wait_ms: the descriptor, or -1 with errno (EWOULDBLOCK). */
int store_lock_file(const char *path, int op, int wait_ms);

/* Attachment bodies this long or longer are cut out and shared. */
#define STORE_DEDUP_MIN 512

/* Sets *error_r to a thread-local copy of the formatted text. */
const char *store_set_error(const char **error_r, const char *fmt, ...)
	SP_PRINTF(2, 3);
/* The error of the last SQLite call on the handle, as STORE_ERR_TEMP. */
enum store_error store_db_error(struct store_mailbox *mbox, const char *what,
				const char **error_r);

sqlite3_stmt *store_stmt(struct store_mailbox *mbox, enum store_stmt_id id,
			 const char *sql);

/* Takes the next MODSEQ of the mailbox (inside a transaction). */
uint64_t store_next_modseq(struct store_mailbox *mbox);
/* Journals one change and drops the older entries it replaces. */
int store_journal(struct store_mailbox *mbox, int64_t folder_id, uint32_t uid,
		  uint64_t modseq, enum store_change_kind kind);
/* Sets the folder's highest MODSEQ. */
int store_folder_touch(struct store_mailbox *mbox, int64_t folder_id,
		       uint64_t modseq);

/* Appends within an open transaction (spool drain and import batch many). */
enum store_error store_append_locked(struct store_mailbox *mbox,
				     int64_t folder_id, const void *raw,
				     size_t len, uint32_t flags,
				     const char *keywords,
				     time_t internal_date, uint32_t *uid_r,
				     const char **error_r);
/* Quota check for `extra` more bytes (inside a transaction). */
enum store_error store_quota_check(struct store_mailbox *mbox, uint64_t extra,
				   const char **error_r);

/* Reassembles message `message_id` (the rowid) into out. */
enum store_error store_raw_by_id(struct store_mailbox *mbox,
				 int64_t message_id, struct sp_buf *out,
				 const char **error_r);

/* Compressed blobs (messages.rest, messages.text): a 4-byte little-endian
 * length, then a zlib stream (level 1). Less to encrypt, write and read
 * back: the cipher's cost scales with the pages touched. */
void store_deflate(const void *data, size_t len, struct sp_buf *out);
/* Appends the original bytes to out; -1 when the blob is damaged. */
int store_inflate(const void *blob, size_t len, struct sp_buf *out);

/* Normalises a folder name ("inbox/x" -> "INBOX/x", trailing '/' dropped)
 * or returns NULL when it is not valid. Caller frees. */
char *store_folder_name_normalize(const char *name);

/* The SQL functions regexp(), sp_icontains() and sp_header() of a
 * connection. */
int store_sql_functions_register(sqlite3 *db);
/* Case-insensitive (Unicode case folding) substring test. */
bool store_icontains(const char *haystack, size_t hay_len,
		     const char *needle);
/* Compiles a pattern to check it; NULL when fine, else a static message. */
const char *store_regexp_check(const char *pattern);

/* RFC 5256 base subject, lower-cased; caller frees. */
char *store_base_subject(const char *subject);
/* First address of a list, lower-cased mailbox part for SORT; caller frees;
 * NULL in, NULL out. */
char *store_sort_address(const char *list);

#endif
