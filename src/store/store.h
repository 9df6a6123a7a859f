/*
 * store: one encrypted mailbox per alias, and the sealed spool in front of it.
 *
 * A mailbox is one SQLite3MultipleCiphers file,
 * <data>/mailboxes/<24-hex id>.sqlite, opened through db_open() with the
 * alias's 32-byte mailbox key (from crypto_login_derive). It holds folders
 * (hierarchy delimiter '/', SPECIAL-USE), messages (UID, MODSEQ, flags and
 * keywords, internal date, the header fields SEARCH and SORT use, cached
 * ENVELOPE/BODY/BODYSTRUCTURE, the raw bytes with large attachment bodies
 * cut out and de-duplicated by SHA-256), a change journal for
 * IDLE/CONDSTORE/QRESYNC and an FTS5 index for BODY/TEXT search. Nothing of
 * it is readable without the key.
 *
 * Mail that arrives while nobody is logged in goes to the spool,
 * <data>/spool/<id>/, sealed to the alias's X25519 public key
 * (store_spool_seal, needs no secret); the owner's next session moves it into
 * INBOX (store_spool_drain).
 *
 * Threads: a struct store_mailbox is one SQLite connection and belongs to one
 * thread at a time. Several handles on the same file (one per session or per
 * worker thread) are fine: the file runs in WAL mode, writers queue on the
 * write lock (busy_timeout 5 s), and each sees the others' commits at its
 * next call. Another session learns what changed through
 * store_changes_since() on the MODSEQ it last saw.
 *
 * Errors: calls whose outcome picks a protocol reply return enum store_error
 * (STORE_OK is 0) and put one line (no content, no address) in *error_r,
 * static or thread-local, valid until the next call on the thread. The rest
 * return 0/-1.
 *
 * Ownership: every array or struct handed out is the caller's and has its
 * own free function named next to the call.
 */
#ifndef SEALPOST_STORE_H
#define SEALPOST_STORE_H

#include "account/account.h"
#include "core/core.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct crypto_key;

#define STORE_MAILBOX_ID_BUF 25 /* 24 hex digits + NUL */

enum store_error {
	STORE_OK = 0,
	STORE_ERR_TEMP,	    /* I/O, lock timeout, database failure: retry */
	STORE_ERR_NOTFOUND, /* no such mailbox, folder or message */
	STORE_ERR_EXISTS,   /* the folder exists already */
	STORE_ERR_QUOTA,    /* the append would pass the storage limit */
	STORE_ERR_BADKEY,   /* wrong key: an authentication failure */
	STORE_ERR_INVALID,  /* bad folder name, INBOX rename/delete, bad input */
	STORE_ERR_NOTEMPTY, /* delete of a folder that has child folders */
};

/* A short English text for an error, for replies and logs. */
const char *store_error_str(enum store_error error);

/* ---- Mailboxes ---- */

struct store_mailbox;

enum store_open_flags {
	STORE_OPEN_CREATE = 1 << 0, /* create the file when missing */
};

/* <data_dir>/mailboxes/<mailbox_id>.sqlite; the caller frees. */
char *store_mailbox_path(const char *data_dir, const char *mailbox_id);

/* Opens (or with STORE_OPEN_CREATE creates) the mailbox `mailbox_id` under
 * data_dir with `key` (NULL: no encryption; only benchmarks do that),
 * brings its schema up to date and creates the special folders (INBOX,
 * Sent, Drafts, Trash, Junk, Archive) on first open. The key is copied into
 * secure memory; the caller may destroy its own. A wrong key is
 * STORE_ERR_BADKEY and leaves the file's bytes untouched; a missing file
 * without STORE_OPEN_CREATE is STORE_ERR_NOTFOUND. The caller closes
 * *mbox_r with store_mailbox_close(). */
enum store_error store_mailbox_open(const char *data_dir,
				    const char *mailbox_id,
				    const struct crypto_key *key, int flags,
				    struct store_mailbox **mbox_r,
				    const char **error_r);
/* Closes; NULLs the pointer; accepts NULL. */
void store_mailbox_close(struct store_mailbox **mbox);

/* Storage limit checked by store_append/copy (bytes of message sizes,
 * 0: none). The protocols set it from the account's quotas after login. */
void store_mailbox_set_quota(struct store_mailbox *mbox, uint64_t max_bytes);

/* The mailbox-wide highest MODSEQ (every change bumps it). */
uint64_t store_mailbox_highest_modseq(struct store_mailbox *mbox);

struct store_usage {
	uint64_t messages;
	uint64_t bytes;		   /* sum of message sizes (QUOTA STORAGE) */
	uint64_t attachments;	   /* distinct attachment bodies kept */
	uint64_t attachment_bytes; /* their bytes, each counted once */
	uint64_t dedup_saved;	   /* bytes not stored twice thanks to dedup */
	uint64_t file_bytes;	   /* the database file and its -wal */
};

enum store_error store_mailbox_usage(struct store_mailbox *mbox,
				     struct store_usage *usage_r,
				     const char **error_r);

/* Re-keys a CLOSED mailbox file from old_key to new_key, crash-safely
 * (the caller holds store_rekey_lock(); see "Password change" below):
 * VACUUM INTO a copy, re-key the copy, fsync it, verify that it opens with
 * new_key and holds as many messages, rename it over the original, fsync the
 * directory. A crash at any point leaves a file that opens with exactly one
 * of the two keys, with every message. The lock guarantees that no other
 * handle is open on the mailbox. A wrong old_key is STORE_ERR_BADKEY and
 * changes nothing. */
enum store_error store_mailbox_rekey(const char *data_dir,
				     const char *mailbox_id,
				     const struct crypto_key *old_key,
				     const struct crypto_key *new_key,
				     const char **error_r);

/* ---- Password change ----
 *
 * A change of password (the CLI's `alias password`) runs, holding the
 * mailbox's re-key lock: store_rekey_pending_write(new credentials),
 * store_mailbox_rekey(), account_alias_set_credentials(),
 * store_rekey_pending_remove(). A crash anywhere in it is completed (or
 * undone) by the next login through store_login(): the file decides, since
 * it opens with exactly one of the two keys. */

/* Takes the exclusive re-key lock of a mailbox (<id>.rekey-lock, flock),
 * trying for up to wait_ms: a descriptor for store_rekey_unlock(), or -1 with
 * errno (EWOULDBLOCK: held elsewhere). Every open handle of the mailbox
 * holds the lock shared, so this also waits until no handle is open, and
 * store_mailbox_open() waits (5 s, then STORE_ERR_TEMP) while it is held. */
int store_rekey_lock(const char *data_dir, const char *mailbox_id,
		     int wait_ms);
/* Releases; accepts -1. */
void store_rekey_unlock(int fd);

/* Writes the credentials a change is about to install, durably, sealed with
 * the server key, to <data>/mailboxes/<id>.pending. 0 or -1 (error_r). */
int store_rekey_pending_write(const char *data_dir, const char *mailbox_id,
			      const struct account_credentials *creds,
			      const char **error_r);
/* Securely removes the .pending of a mailbox, if any. */
void store_rekey_pending_remove(const char *data_dir, const char *mailbox_id);

/* For a password the control plane refused: when it is the one of a
 * pending change and the mailbox file opens with it (the change died after
 * the re-key), the control plane takes the pending credentials and the
 * leftovers go. When the file still opens only with the old key, the
 * pending change is void and removed. 1 when the control plane changed (log
 * in again), 0 when there was nothing to complete, -1 (error_r) when the
 * password is the pending one but the change could not be settled now (a
 * change still running, I/O). */
int store_rekey_recover(struct account_db *adb, const char *data_dir,
			const char *address, const char *password,
			const char **error_r);

/* account_login() for anything that then opens the mailbox with the keys
 * (IMAP, POP3, the CLI): it first settles a password change that a crash
 * interrupted, so that whichever password the file now opens with logs in
 * (and finds every message), and the other is ACCOUNT_ERR_AUTH. Same
 * contract as account_login(). */
enum account_error store_login(struct account_db *adb, const char *data_dir,
			       const char *address, const char *password,
			       struct account_session_keys *keys_r,
			       const char **error_r);

/* Securely deletes a mailbox: the database, its -wal and -shm, any rekey
 * leftover and the spool directory, each file overwritten then unlinked.
 * A mailbox that does not exist is not an error. 0 or -1 (error_r). */
int store_mailbox_delete(const char *data_dir, const char *mailbox_id,
			 const char **error_r);

/* ---- Folders ---- */

/* SPECIAL-USE attribute of a folder (RFC 6154). */
enum store_special_use {
	STORE_SPECIAL_NONE = 0,
	STORE_SPECIAL_INBOX, /* not a SPECIAL-USE flag; marks INBOX */
	STORE_SPECIAL_SENT,
	STORE_SPECIAL_DRAFTS,
	STORE_SPECIAL_TRASH,
	STORE_SPECIAL_JUNK,
	STORE_SPECIAL_ARCHIVE,
};

/* "\\Sent" and so on, or NULL for NONE and INBOX. */
const char *store_special_use_name(enum store_special_use use);

/* Folder names are UTF-8 (IMAP converts modified UTF-7 at its edge), '/'
 * separates levels, "INBOX" is matched without regard to case and always
 * spelled "INBOX". Empty levels, a leading or trailing '/', control
 * characters, '*' and '%' are STORE_ERR_INVALID. */
struct store_folder {
	int64_t id; /* stable across renames; what message calls take */
	char *name;
	enum store_special_use special_use;
	bool subscribed;
	bool has_children;
	uint32_t uidvalidity;
	uint32_t uidnext;
};

/* Every folder, sorted by name (INBOX first). Caller frees with
 * store_folder_list_free(). */
enum store_error store_folder_list(struct store_mailbox *mbox,
				   struct store_folder **folders_r,
				   size_t *count_r, const char **error_r);
void store_folder_list_free(struct store_folder **folders, size_t count);

/* Looks a folder up by name; *folder_r (may be NULL) is the caller's to
 * free with store_folder_free(). STORE_ERR_NOTFOUND when there is none. */
enum store_error store_folder_get(struct store_mailbox *mbox,
				  const char *name,
				  struct store_folder **folder_r,
				  const char **error_r);
void store_folder_free(struct store_folder **folder);

/* Creates a folder, and any missing parents (RFC 3501 CREATE). A trailing
 * '/' is dropped. */
enum store_error store_folder_create(struct store_mailbox *mbox,
				     const char *name,
				     enum store_special_use special_use,
				     const char **error_r);
/* Renames a folder and every folder below it, creating missing parents of
 * the new name. Ids, UIDVALIDITY and UIDs stay (a name used before gets a
 * fresh UIDVALIDITY anyway, since every folder creation takes a new one).
 * Renaming INBOX moves its messages into a new folder and leaves INBOX
 * empty, as RFC 3501 says. */
enum store_error store_folder_rename(struct store_mailbox *mbox,
				     const char *old_name,
				     const char *new_name,
				     const char **error_r);
/* Deletes a folder and its messages (INBOX: STORE_ERR_INVALID; a folder
 * with children: STORE_ERR_NOTEMPTY). */
enum store_error store_folder_delete(struct store_mailbox *mbox,
				     const char *name, const char **error_r);
enum store_error store_folder_subscribe(struct store_mailbox *mbox,
					const char *name, bool subscribed,
					const char **error_r);

struct store_folder_status {
	uint32_t messages;
	uint32_t recent;
	uint32_t unseen;
	uint32_t uidnext;
	uint32_t uidvalidity;
	uint64_t highest_modseq; /* of this folder's messages and expunges */
	uint64_t size;		 /* STATUS=SIZE: sum of message sizes */
};

enum store_error store_folder_status(struct store_mailbox *mbox,
				     int64_t folder_id,
				     struct store_folder_status *status_r,
				     const char **error_r);

/* The UIDs of a folder in ascending order, i.e. its message sequence
 * numbers (uids[seq - 1]). Caller frees *uids_r (free()). */
enum store_error store_folder_uids(struct store_mailbox *mbox,
				   int64_t folder_id, uint32_t **uids_r,
				   size_t *count_r, const char **error_r);

/* \Recent (RFC 3501): the first session that calls this after messages
 * arrive gets their UIDs (caller frees) and nobody else does. */
enum store_error store_folder_take_recent(struct store_mailbox *mbox,
					  int64_t folder_id,
					  uint32_t **uids_r, size_t *count_r,
					  const char **error_r);

/* ---- Messages ---- */

/* System flags as a bit set; keywords are separate strings. */
enum store_flag {
	STORE_FLAG_SEEN = 1 << 0,
	STORE_FLAG_ANSWERED = 1 << 1,
	STORE_FLAG_FLAGGED = 1 << 2,
	STORE_FLAG_DELETED = 1 << 3,
	STORE_FLAG_DRAFT = 1 << 4,
};
#define STORE_FLAG_ALL 0x1f

/* A set of UIDs: ranges with first <= last (the caller resolves '*' and
 * sequence numbers). NULL where a set is taken means every message. */
struct store_uid_range {
	uint32_t first, last;
};
struct store_uidset {
	const struct store_uid_range *ranges;
	size_t count;
};

struct store_message {
	int64_t id; /* unique in the mailbox (the FTS rowid) */
	uint32_t uid;
	uint64_t modseq;
	uint32_t flags;	 /* enum store_flag */
	char *keywords;	 /* space-separated, sorted, "" when none */
	uint64_t size;	 /* RFC822.SIZE: bytes of the raw message */
	time_t internal_date;
	/* Only with the matching STORE_FETCH_* bit, else NULL. */
	char *envelope;
	char *body;
	char *bodystructure;
};

enum store_fetch_fields {
	STORE_FETCH_ENVELOPE = 1 << 0,
	STORE_FETCH_BODY = 1 << 1,
	STORE_FETCH_BODYSTRUCTURE = 1 << 2,
};

void store_messages_free(struct store_message **messages, size_t count);

/* Appends a raw message (any line endings, kept byte for byte) to a folder
 * with flags, keywords (space-separated or NULL) and internal date (0: now).
 * Parses it once with mime_parse() for the cached fields and the FTS index,
 * cuts out attachment bodies of 512 bytes and more, stored once per
 * mailbox. The commit is durable before this returns (db_begin_durable):
 * an APPEND may answer OK at once. *uid_r (may be NULL) gets the new UID.
 * STORE_ERR_QUOTA when the mailbox limit would be passed. */
enum store_error store_append(struct store_mailbox *mbox, int64_t folder_id,
			      const void *raw, size_t len, uint32_t flags,
			      const char *keywords, time_t internal_date,
			      uint32_t *uid_r, const char **error_r);

/* Metadata of the messages of `uids` (NULL: all) in UID order. */
enum store_error store_fetch(struct store_mailbox *mbox, int64_t folder_id,
			     const struct store_uidset *uids, int fields,
			     struct store_message **messages_r,
			     size_t *count_r, const char **error_r);

/* UID and RFC822.SIZE of every message of a folder, in UID order, and
 * nothing else (no flags, keywords or cached structures): what a POP3
 * maildrop listing needs. The caller frees *sizes_r (free()). */
struct store_uid_size {
	uint32_t uid;
	uint64_t size;
};
enum store_error store_fetch_sizes(struct store_mailbox *mbox,
				   int64_t folder_id,
				   struct store_uid_size **sizes_r,
				   size_t *count_r, const char **error_r);

/* Appends the raw message, reassembled byte for byte, to out. */
enum store_error store_fetch_raw(struct store_mailbox *mbox,
				 int64_t folder_id, uint32_t uid,
				 struct sp_buf *out, const char **error_r);

enum store_flags_op {
	STORE_FLAGS_SET,
	STORE_FLAGS_ADD,
	STORE_FLAGS_REMOVE,
};

/* STORE: changes flags and keywords of the messages in `uids`. Each message
 * whose flags really change gets a new MODSEQ (one per call, journaled).
 * With unchangedsince > 0 (CONDSTORE) a message whose MODSEQ is greater is
 * left alone and its UID goes to *failed_r ([MODIFIED]). *changed_r gets
 * every message of the set as it is afterwards (flags, keywords, modseq) for
 * the FETCH responses. Both arrays may be NULL pointers if not wanted;
 * free with store_messages_free() and free(). */
enum store_error store_flags_update(struct store_mailbox *mbox,
				    int64_t folder_id,
				    const struct store_uidset *uids,
				    enum store_flags_op op, uint32_t flags,
				    const char *keywords,
				    uint64_t unchangedsince,
				    struct store_message **changed_r,
				    size_t *changed_count_r,
				    uint32_t **failed_r,
				    size_t *failed_count_r,
				    const char **error_r);

/* Removes the messages flagged \Deleted (within `uids` when not NULL: UID
 * EXPUNGE) in one durable transaction (a POP3 QUIT may answer +OK at once).
 * *expunged_r (ascending UIDs, may be NULL) is the caller's to free. */
enum store_error store_expunge(struct store_mailbox *mbox, int64_t folder_id,
			       const struct store_uidset *uids,
			       uint32_t **expunged_r, size_t *count_r,
			       const char **error_r);

/* COPY / MOVE: for UIDPLUS COPYUID, src_uids[i] became dst_uids[i] in a
 * folder of uidvalidity dst_uidvalidity. Free with store_uid_map_clear(). */
struct store_uid_map {
	uint32_t dst_uidvalidity;
	uint32_t *src_uids;
	uint32_t *dst_uids;
	size_t count;
};
void store_uid_map_clear(struct store_uid_map *map);

/* Copies (move: moves, with EXPUNGE of the sources journaled) the messages
 * of `uids` to another folder, keeping flags and internal dates, sharing
 * attachment bodies; durable. map_r may be NULL. */
enum store_error store_copy(struct store_mailbox *mbox, int64_t src_folder_id,
			    const struct store_uidset *uids,
			    int64_t dst_folder_id, bool move,
			    struct store_uid_map *map_r, const char **error_r);

/* ---- Changes (IDLE, other sessions, CONDSTORE/QRESYNC) ---- */

enum store_change_kind {
	STORE_CHANGE_APPEND,  /* a new message (EXISTS) */
	STORE_CHANGE_FLAGS,   /* flags changed (FETCH FLAGS) */
	STORE_CHANGE_EXPUNGE, /* removed (EXPUNGE / VANISHED) */
};

struct store_change {
	uint64_t modseq;
	uint32_t uid;
	enum store_change_kind kind;
};

/* Changes to the folder with MODSEQ > since, in MODSEQ order; caller frees
 * *changes_r (free()). The journal keeps every expunge, so QRESYNC's
 * VANISHED (EARLIER) can be answered from any MODSEQ. */
enum store_error store_changes_since(struct store_mailbox *mbox,
				     int64_t folder_id, uint64_t since,
				     struct store_change **changes_r,
				     size_t *count_r, const char **error_r);

/* ---- Search and sort ---- */

/* A search program is a tree of nodes (RFC 3501 6.4.4 keys). The IMAP
 * parser builds it with store_search_new() and store_search_add(); the store
 * turns it into one SQL statement with bound values. Strings are matched as
 * case-insensitive substrings (RFC 3501). */
enum store_search_key {
	STORE_SEARCH_ALL,
	STORE_SEARCH_AND, /* children, all must match */
	STORE_SEARCH_OR,  /* children, one must match */
	STORE_SEARCH_NOT, /* one child */
	STORE_SEARCH_UID, /* uids */
	STORE_SEARCH_FLAGS,   /* every flag in `flags` set */
	STORE_SEARCH_NOFLAGS, /* every flag in `flags` clear */
	STORE_SEARCH_KEYWORD,	/* str set */
	STORE_SEARCH_UNKEYWORD, /* str not set */
	STORE_SEARCH_RECENT,	/* \Recent not yet taken */
	STORE_SEARCH_BEFORE,	/* internal date < day of `date` (UTC) */
	STORE_SEARCH_ON,
	STORE_SEARCH_SINCE, /* internal date >= day */
	STORE_SEARCH_SENTBEFORE, /* Date: header, same */
	STORE_SEARCH_SENTON,
	STORE_SEARCH_SENTSINCE,
	STORE_SEARCH_LARGER, /* size > num */
	STORE_SEARCH_SMALLER,
	STORE_SEARCH_MODSEQ, /* modseq >= num */
	STORE_SEARCH_SUBJECT, /* str in the decoded field */
	STORE_SEARCH_FROM,
	STORE_SEARCH_TO,
	STORE_SEARCH_CC,
	STORE_SEARCH_BCC,
	STORE_SEARCH_HEADER, /* str in header `field` (decoded, "" = present) */
	STORE_SEARCH_BODY,   /* str in the body text (FTS5 then exact) */
	STORE_SEARCH_TEXT,   /* str in header or body */
	/* Extension: PCRE2 pattern `str` against `field` ("subject", "from",
	 * "to", "cc", "bcc", "body", or any header name). */
	STORE_SEARCH_REGEXP,
};

struct store_search {
	enum store_search_key key;
	char *str;
	char *field;
	time_t date; /* any time within the day, read as UTC */
	uint64_t num;
	uint32_t flags;
	struct store_uid_range *ranges; /* STORE_SEARCH_UID */
	size_t range_count;
	struct store_search **children;
	size_t child_count;
};

/* A node with that key and zeroed fields; set str/field (xstrdup'd, owned
 * by the node) and the rest directly. */
struct store_search *store_search_new(enum store_search_key key);
/* Makes `child` a child of `parent`, which then owns it. */
void store_search_add(struct store_search *parent, struct store_search *child);
/* Frees the tree; NULLs the pointer; accepts NULL. */
void store_search_free(struct store_search **search);

/* RFC 5256 sort keys. */
enum store_sort_key {
	STORE_SORT_ARRIVAL,
	STORE_SORT_CC,
	STORE_SORT_DATE,
	STORE_SORT_FROM,
	STORE_SORT_SIZE,
	STORE_SORT_SUBJECT, /* base subject (RFC 5256 2.1, simplified) */
	STORE_SORT_TO,
};
struct store_sort {
	enum store_sort_key key;
	bool reverse;
};

/* Runs a search in a folder: the matching UIDs, ascending, or in the order
 * of `sort` (count may be 0; UID breaks ties). *highest_modseq_r (may be
 * NULL) gets the greatest MODSEQ among the matches (CONDSTORE). A pattern
 * PCRE2 refuses is STORE_ERR_INVALID. Caller frees *uids_r. */
enum store_error store_search_run(struct store_mailbox *mbox,
				  int64_t folder_id,
				  const struct store_search *search,
				  const struct store_sort *sort,
				  size_t sort_count, uint32_t **uids_r,
				  size_t *count_r, uint64_t *highest_modseq_r,
				  const char **error_r);

/* ---- Export and import ---- */

enum store_format {
	STORE_FORMAT_MBOX, /* mboxrd: ">From " quoting, reversible */
	STORE_FORMAT_EML,  /* a directory of <folder>/<uid>.eml files */
};

/* Exports one folder (NULL: every folder) to `path`, the messages' bytes
 * unchanged (flags are not exported). MBOX: one mboxrd file; in a
 * whole-mailbox export each message of a folder other than INBOX has one
 * line "X-Sealpost-Folder: <name>" between its "From " line and its own
 * header, which store_import() takes away again (a message that itself
 * starts with such a line gets one more, as mboxrd quotes "From "), so
 * folders survive and export -> import -> export is byte for byte. Empty
 * folders are not in the file. EML: a directory of <uid>.eml files; with
 * every folder one directory per folder, <path>/<folder>/ (a level "."
 * or ".." written "_"). Returns the number of messages through *count_r
 * (may be NULL). */
enum store_error store_export(struct store_mailbox *mbox, const char *folder,
			      enum store_format format, const char *path,
			      size_t *count_r, const char **error_r);

/* Imports an mbox file (mboxrd/mboxo: ">From " unquoted once) or one
 * message file (.eml) into `folder` (NULL: INBOX), all in one transaction;
 * messages keep the date of their "From " line as internal date. A
 * message that starts with an X-Sealpost-Folder line (see store_export)
 * loses that line and goes to the folder it names (under `folder` when
 * given), created when missing. A directory is read as a whole-mailbox EML
 * export: <rel>/<n>.eml files go to folder <rel> (in <n> order), <rel>.mbox
 * files are imported into folder <rel>, both under `folder` when given;
 * other names and dot files are skipped; one transaction per file. */
enum store_error store_import(struct store_mailbox *mbox, const char *folder,
			      const char *path, size_t *count_r,
			      const char **error_r);

/* ---- Spool (mail for an absent owner) ---- */

/* Seals `raw` to the alias's public key and writes it to
 * <data_dir>/spool/<mailbox_id>/ (temporary file, fsync, rename, fsync
 * directory): durable when this returns 0, so the MX may answer 250. Needs
 * no secret. -1 with error_r on failure (the MX answers 4xx). */
int store_spool_seal(const char *data_dir, const char *mailbox_id,
		     const unsigned char *public_key, const void *raw,
		     size_t len, const char **error_r);

/* Where a drain files a spooled message. */
enum store_spool_folder {
	STORE_SPOOL_INBOX, /* received mail */
	STORE_SPOOL_SENT,  /* the owner's submitted mail: Sent, \Seen */
};

/* store_spool_seal() for a chosen folder. */
int store_spool_seal_to(const char *data_dir, const char *mailbox_id,
			const unsigned char *public_key,
			enum store_spool_folder folder, const void *raw,
			size_t len, const char **error_r);

/* <data_dir>/spool/<mailbox_id>, the directory a session may watch
 * (inotify) to learn of new mail; the caller frees. */
char *store_spool_path(const char *data_dir, const char *mailbox_id);

/* Number of files waiting in the spool (0 when none or no spool). */
size_t store_spool_count(const char *data_dir, const char *mailbox_id);

/* Opens every spooled message with the key pair (public_key is
 * CRYPTO_PUBLIC_KEY_BYTES long), appends them to INBOX (or, for copies
 * sealed with STORE_SPOOL_SENT, to the Sent folder) in arrival order in
 * one durable transaction, then securely deletes the spool files.
 * *count_r (may be NULL) gets how many were moved. A file that does not
 * open with the key is left in place and reported in the log (never its
 * content). All or nothing: STORE_ERR_QUOTA when the mail would pass the
 * limit (nothing moved, the spool kept; a session may go on without it). */
enum store_error store_spool_drain(struct store_mailbox *mbox,
				   const unsigned char *public_key,
				   const struct crypto_key *secret_key,
				   size_t *count_r, const char **error_r);

/* ---- Delivery (the MX and `sealpost deliver`) ---- */

struct account_db;
struct account_alias;

enum store_deliver_result {
	STORE_DELIVER_OK = 0,	  /* sealed into the spool, durable: 250 */
	STORE_DELIVER_UNKNOWN,	  /* no alias takes the address: 550 5.1.1 */
	STORE_DELIVER_DISABLED,	  /* the alias is disabled: 550 5.2.1 */
	STORE_DELIVER_NO_MAILBOX, /* the alias has no mailbox target */
	STORE_DELIVER_NO_KEY,	  /* no password set yet: no public key */
	STORE_DELIVER_INVALID,	  /* not an address: 501/553 */
	STORE_DELIVER_TEMP,	  /* database or disk failure: 451 4.3.0 */
};

/* The mailbox half of delivery for an alias the caller already looked up
 * (the MX, after account_lookup, for an alias with a mailbox target):
 * fetches its public key and seals `raw` into its spool. */
enum store_deliver_result store_deliver_alias(struct account_db *adb,
					      const char *data_dir,
					      const struct account_alias *alias,
					      const void *raw, size_t len,
					      const char **error_r);

/* Lookup plus store_deliver_alias(): routes one message for `address`
 * (exact, plus-address, regex, catch-all) into the spool of the alias's
 * mailbox. What `sealpost deliver` runs. */
enum store_deliver_result store_deliver(struct account_db *adb,
					const char *data_dir,
					const char *address, const void *raw,
					size_t len, const char **error_r);

/* ---- Backup hooks (backup-hooks.c; used by src/backup) ----
 *
 * store_mailbox_change_marker() (below) is how a backup of an unchanged
 * mailbox skips the copy: see its comment. */

/* Writes a consistent copy of an open mailbox to `dest` (which must not
 * exist), encrypted with the same key: holds the mailbox's write lock (a
 * second connection, opened with `key`, in BEGIN IMMEDIATE) so no writer
 * commits meanwhile, checkpoints the WAL (PASSIVE), counts the messages
 * into *messages_r and runs VACUUM INTO on mbox's connection, which must
 * not be in a transaction. Writers of other handles wait (busy_timeout)
 * while it runs. The copy is in rollback-journal mode. */
enum store_error store_mailbox_snapshot(struct store_mailbox *mbox,
					const struct crypto_key *key,
					const char *dest,
					uint64_t *messages_r,
					const char **error_r);

/* A digest (SHA-256, 32 bytes) of what any change to the mailbox moves,
 * read in one read transaction without copying anything: the file's
 * identity (device, inode and, where the file system records it, birth
 * time: a restore or re-key renames a new file into place, and a deleted
 * and re-created mailbox is a new file), the schema version, every `meta`
 * row (the mailbox-wide highest MODSEQ, which every message change bumps),
 * every folder row (name, UIDVALIDITY, UIDNEXT, highest MODSEQ, \Recent
 * mark, subscription, SPECIAL-USE: folder changes take no MODSEQ) and the
 * messages' count, highest row id and total size. Equal markers of one
 * mailbox mean nothing changed in between; the backup module uses it to
 * skip the copy of an unchanged mailbox. */
#define STORE_CHANGE_MARKER_BYTES 32
enum store_error store_mailbox_change_marker(
	struct store_mailbox *mbox,
	unsigned char marker_r[STORE_CHANGE_MARKER_BYTES],
	const char **error_r);

/* Checks a copy of a mailbox (a snapshot, a downloaded backup) without
 * writing to it: opens it read-only with `key` (STORE_ERR_BADKEY),
 * PRAGMA integrity_check (STORE_ERR_INVALID with "corrupt ..."), and
 * counts its messages into *messages_r. */
enum store_error store_snapshot_verify(const char *path,
				       const struct crypto_key *key,
				       uint64_t *messages_r,
				       const char **error_r);

#endif
