/*
 * backup: encrypted mailbox backups on S3-compatible storage.
 *
 * One backup of a mailbox is a consistent copy of its database file made
 * with VACUUM INTO while the mailbox's write lock is held, still encrypted
 * with the owner's key (the storage provider reads nothing), verified
 * (opens with the key, PRAGMA integrity_check, as many messages as the
 * live file) and uploaded to S3 with libcurl's AWS Signature V4. Objects
 * are named by the mailbox id, never by the address:
 *   <mailbox id>.sqlite                      backup_keep = 1
 *   <mailbox id>/<YYYYMMDDTHHMMSSZ>.sqlite   backup_keep > 1
 * Each object carries, as metadata, the SHA-256 of its bytes
 * (x-amz-meta-sha256, checked on every download), the time it was made by
 * clock_now() (x-amz-meta-created) and a fingerprint of its content
 * (x-amz-meta-fingerprint) and the mailbox's change marker when the copy
 * was taken (x-amz-meta-marker). The fingerprint exists because
 * SQLite3MultipleCiphers encrypts every page with a fresh random nonce: two
 * copies of an unchanged mailbox never share a SHA-256, so "unchanged" is
 * decided on the decrypted pages instead, hashed with SHA-256 and then
 * keyed with the mailbox key (BLAKE2b) so the value tells the provider
 * nothing. An unchanged mailbox uploads nothing. Most unchanged mailboxes
 * are not even copied: the change marker (store_mailbox_change_marker:
 * file identity, highest MODSEQ, folder rows, message count and size,
 * keyed with the mailbox key like the fingerprint) is read from the live
 * file first, and when it equals the newest backup's the backup ends
 * there. A different marker does not mean a changed mailbox (a restore of
 * the newest backup is a new file): the copy is made and the fingerprint
 * decides, as the second line.
 *
 * Everything needs the mailbox key, i.e. the owner's password: the CLI
 * asks for it, and the server starts the daily backup (backup_maybe_daily)
 * from a session that has just logged in.
 *
 * Errors: calls return enum backup_error (BACKUP_OK is 0) with one line in
 * *error_r (thread-local; no address, no content). Nothing here ever
 * changes the live mailbox except backup_restore() after every check has
 * passed.
 */
#ifndef SEALPOST_BACKUP_H
#define SEALPOST_BACKUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct crypto_key;

enum backup_error {
	BACKUP_OK = 0,
	BACKUP_ERR_CONFIG,	/* s3_* settings missing or malformed */
	BACKUP_ERR_UNREACHABLE, /* the endpoint does not answer */
	BACKUP_ERR_AUTH,	/* the storage refused the credentials */
	BACKUP_ERR_NO_BUCKET,	/* the bucket does not exist */
	BACKUP_ERR_NOTFOUND,	/* no backup (of that version) or mailbox */
	BACKUP_ERR_BADKEY,	/* the key does not open the mailbox/backup */
	BACKUP_ERR_CORRUPT,	/* SHA-256 or integrity check failed */
	BACKUP_ERR_BUSY,	/* restore: the mailbox is open elsewhere */
	BACKUP_ERR_TEMP,	/* local I/O, database, unexpected answer */
};

/* Where backups go: the s3_* settings, with an optional bucket of the
 * domain's own. Strings are owned by the struct. */
struct backup_target {
	char *endpoint; /* http(s)://host[:port], no trailing '/' */
	char *region;
	char *bucket;
	char *access_key_id;
	char *secret_access_key;
	bool path_style; /* endpoint/bucket/key, else bucket.host/key */
	unsigned keep;	 /* versions kept per mailbox, >= 1 */
};

/* Fills *target_r from the settings; `bucket` (may be NULL or "") replaces
 * s3_bucket (a domain's own bucket). BACKUP_ERR_CONFIG names what is
 * missing. Clear with backup_target_clear() in any case. */
enum backup_error backup_target_from_settings(const char *bucket,
					      struct backup_target *target_r,
					      const char **error_r);
void backup_target_clear(struct backup_target *target);

/* One stored backup of a mailbox. */
struct backup_version {
	char *key;	      /* object key */
	char version[17];     /* YYYYMMDDTHHMMSSZ: what the CLI names */
	time_t created;	      /* clock_now() when it was made */
	uint64_t size;	      /* bytes */
	char sha256[65];      /* hex SHA-256 of the object bytes */
	char fingerprint[65]; /* hex keyed content fingerprint */
	char marker[65];      /* hex keyed change marker, "" when none */
};

void backup_versions_free(struct backup_version **versions, size_t count);

/* The backups of a mailbox, newest first. *versions_r (may be empty) is
 * the caller's (backup_versions_free). */
enum backup_error backup_list(const struct backup_target *target,
			      const char *mailbox_id,
			      struct backup_version **versions_r,
			      size_t *count_r, const char **error_r);

struct backup_result {
	bool uploaded;	    /* false: unchanged since the newest backup */
	bool copied;	    /* false: the change marker said unchanged, so
			     * no copy was made at all */
	struct backup_version version; /* the new one, or the newest */
	uint64_t messages;  /* in the copy */
	double copy_seconds;	/* write lock + VACUUM INTO */
	double verify_seconds;	/* integrity check, hashes */
	double upload_seconds;	/* listing, upload, pruning */
	size_t pruned;	    /* old versions deleted (beyond keep) */
};

/* Backs up one mailbox (see the top of this file): copy, verify, skip
 * when unchanged, else upload and delete the oldest versions beyond
 * target->keep. The temporary copy <mailbox>.sqlite.backup is removed in
 * every case. Clear result_r->version.key with backup_result_clear(). */
enum backup_error backup_mailbox(const struct backup_target *target,
				 const char *data_dir, const char *mailbox_id,
				 const struct crypto_key *key,
				 struct backup_result *result_r,
				 const char **error_r);
void backup_result_clear(struct backup_result *result);

/* Downloads a backup (version NULL: the newest) to `path`, checks its
 * SHA-256 against the object's metadata and that it opens with `key` and
 * passes the integrity check, and only then renames it into place: a
 * failed download leaves nothing at `path`. */
enum backup_error backup_download(const struct backup_target *target,
				  const char *mailbox_id, const char *version,
				  const struct crypto_key *key,
				  const char *path, const char **error_r);

/* Replaces the live mailbox with a backup: from storage (`version`, NULL:
 * the newest; target may be NULL when `file` is given) or a local `file`
 * made by backup_download. The copy is fetched next to the mailbox,
 * checked (SHA-256 for a download, then key, integrity, message count),
 * and only then swapped in with rename(): the old file is kept until the
 * swap is done, its WAL checkpointed first and no stale -wal/-shm is left
 * for the new file. The mailbox must not be open in any other process:
 * sessions hold it open, and a restore under them would corrupt it, so
 * `before_swap` (may be NULL) runs once the copy has passed every check
 * and before anything of the live mailbox is touched: the CLI has the
 * server close the alias's sessions there (and keep new ones out until
 * the swap is done). It returns 0 to go on, or -1 with *error_r to stop
 * (BACKUP_ERR_BUSY, nothing changed). If the mailbox is still open after
 * it, BACKUP_ERR_BUSY is returned as well. *messages_r (may be NULL) gets
 * the restored message count. */
typedef int backup_restore_hook(void *ctx, const char **error_r);
enum backup_error backup_restore(const struct backup_target *target,
				 const char *data_dir, const char *mailbox_id,
				 const struct crypto_key *key,
				 const char *version, const char *file,
				 backup_restore_hook *before_swap,
				 void *hook_ctx, uint64_t *messages_r,
				 const char **error_r);

/* True when a process other than this one has the mailbox's database open
 * (SQLite's WAL shared-memory lock is held). */
bool backup_mailbox_in_use(const char *data_dir, const char *mailbox_id);

/* The daily backup, for a session that has just logged in (it has the
 * key). Returns at once: when backups are configured and this process has
 * not looked at the mailbox in the last 24 hours (clock_now), a thread of
 * its own lists the mailbox's backups and, when the newest is 24 hours old
 * or more (or there is none), runs backup_mailbox() on a handle of its own,
 * so neither the session nor other users wait. The key is copied into
 * secure memory and wiped when the thread ends. `bucket` as for
 * backup_target_from_settings. At most BACKUP_DAILY_MAX run at once, one
 * per mailbox; the rest are tried at their next login. Returns 1 when a
 * thread was started, 0 when not due or not configured. */
#define BACKUP_DAILY_MAX 2
#define BACKUP_DAILY_SECONDS (24 * 3600)
int backup_maybe_daily(const char *data_dir, const char *mailbox_id,
		       const struct crypto_key *key, const char *bucket);
/* Asks running daily backups to stop (an upload in progress is aborted)
 * and waits for their threads; for server shutdown. */
void backup_daily_shutdown(void);

/* A short English text for an error. */
const char *backup_error_str(enum backup_error error);

#endif
