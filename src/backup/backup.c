/* Backup, listing, download and restore of one mailbox (see backup.h). */
#include "backup-private.h"

#include "conf/conf.h"
#include "crypto/crypto.h"
#include "db/db.h"
#include "store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

static _Thread_local char backup_error_buf[512];

const char *
backup_set_error(const char **error_r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(backup_error_buf, sizeof(backup_error_buf), fmt, ap);
	va_end(ap);
	if (error_r != NULL)
		*error_r = backup_error_buf;
	return backup_error_buf;
}

const char *
backup_error_str(enum backup_error error)
{
	switch (error) {
	case BACKUP_OK:
		return "ok";
	case BACKUP_ERR_CONFIG:
		return "backups are not configured";
	case BACKUP_ERR_UNREACHABLE:
		return "the S3 endpoint is unreachable";
	case BACKUP_ERR_AUTH:
		return "the S3 storage refused the credentials";
	case BACKUP_ERR_NO_BUCKET:
		return "the bucket does not exist";
	case BACKUP_ERR_NOTFOUND:
		return "no such backup";
	case BACKUP_ERR_BADKEY:
		return "wrong password for this backup";
	case BACKUP_ERR_CORRUPT:
		return "the backup is corrupt";
	case BACKUP_ERR_BUSY:
		return "the mailbox is in use";
	case BACKUP_ERR_TEMP:
		break;
	}
	return "temporary failure";
}

static double
backup_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- Settings ---- */

enum backup_error
backup_target_from_settings(const char *bucket, struct backup_target *target_r,
			    const char **error_r)
{
	const char *endpoint = conf_str("s3_endpoint");
	size_t len = strlen(endpoint);
	long long keep = conf_int("backup_keep");

	memset(target_r, 0, sizeof(*target_r));
	if (bucket == NULL || *bucket == '\0')
		bucket = conf_str("s3_bucket");
	if (*endpoint == '\0' || *bucket == '\0') {
		backup_set_error(error_r,
				 "backups are not configured: set s3_endpoint "
				 "and s3_bucket");
		return BACKUP_ERR_CONFIG;
	}
	if (!str_has_prefix(endpoint, "http://") &&
	    !str_has_prefix(endpoint, "https://")) {
		backup_set_error(error_r,
				 "s3_endpoint must be an http:// or https:// "
				 "URL");
		return BACKUP_ERR_CONFIG;
	}
	if (*conf_str("s3_access_key_id") == '\0' ||
	    *conf_str("s3_secret_access_key") == '\0') {
		backup_set_error(error_r,
				 "no S3 credentials: set s3_access_key_id and "
				 "s3_secret_access_key");
		return BACKUP_ERR_CONFIG;
	}
	if (keep < 1 || keep > 1000) {
		backup_set_error(error_r, "backup_keep must be 1 to 1000");
		return BACKUP_ERR_CONFIG;
	}
	while (len > 0 && endpoint[len - 1] == '/')
		len--;
	target_r->endpoint = xstrndup(endpoint, len);
	target_r->region = xstrdup(*conf_str("s3_region") != '\0'
					   ? conf_str("s3_region")
					   : "us-east-1");
	target_r->bucket = xstrdup(bucket);
	target_r->access_key_id = xstrdup(conf_str("s3_access_key_id"));
	target_r->secret_access_key = xstrdup(conf_str("s3_secret_access_key"));
	target_r->path_style = conf_bool("s3_path_style");
	target_r->keep = (unsigned)keep;
	return BACKUP_OK;
}

void
backup_target_clear(struct backup_target *target)
{
	free(target->endpoint);
	free(target->region);
	free(target->bucket);
	free(target->access_key_id);
	if (target->secret_access_key != NULL) {
		explicit_bzero(target->secret_access_key,
			       strlen(target->secret_access_key));
		free(target->secret_access_key);
	}
	memset(target, 0, sizeof(*target));
}

/* ---- Names ---- */

void
backup_stamp(time_t t, char out[17])
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}

static int
backup_stamp_parse(const char *s, time_t *t_r)
{
	struct tm tm = {0};
	const char *end = strptime(s, "%Y%m%dT%H%M%SZ", &tm);

	if (end == NULL || *end != '\0' || strlen(s) != 16)
		return -1;
	*t_r = timegm(&tm);
	return 0;
}

static int
backup_iso_parse(const char *s, time_t *t_r)
{
	struct tm tm = {0};
	const char *end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);

	if (end == NULL || *end != '\0')
		return -1;
	*t_r = timegm(&tm);
	return 0;
}

int
backup_key_parse(const char *mailbox_id, const char *key, char stamp_r[17])
{
	size_t n = strlen(mailbox_id);
	time_t t;

	if (strncmp(key, mailbox_id, n) != 0)
		return 0;
	key += n;
	if (strcmp(key, ".sqlite") == 0) {
		stamp_r[0] = '\0';
		return 1;
	}
	if (key[0] != '/' || strlen(key) != 1 + 16 + strlen(".sqlite") ||
	    strcmp(key + 17, ".sqlite") != 0)
		return 0;
	memcpy(stamp_r, key + 1, 16);
	stamp_r[16] = '\0';
	return backup_stamp_parse(stamp_r, &t) == 0 ? 1 : 0;
}

/* ---- Listing ---- */

void
backup_versions_free(struct backup_version **versions, size_t count)
{
	if (*versions == NULL)
		return;
	for (size_t i = 0; i < count; i++)
		free((*versions)[i].key);
	free(*versions);
	*versions = NULL;
}

static int
backup_version_cmp(const void *a, const void *b)
{
	const struct backup_version *va = a, *vb = b;

	if (va->created != vb->created)
		return va->created > vb->created ? -1 : 1;
	return strcmp(vb->key, va->key);
}

enum backup_error
backup_list(const struct backup_target *target, const char *mailbox_id,
	    struct backup_version **versions_r, size_t *count_r,
	    const char **error_r)
{
	struct backup_s3_object *objects = NULL;
	struct backup_version *versions = NULL;
	size_t count = 0, n = 0;
	enum backup_error err;

	*versions_r = NULL;
	*count_r = 0;
	err = backup_s3_list(target, mailbox_id, &objects, &count, error_r);
	if (err != BACKUP_OK)
		return err;
	versions = xcalloc(count + 1, sizeof(*versions));
	for (size_t i = 0; i < count; i++) {
		struct backup_version *v = &versions[n];
		struct backup_s3_meta meta;
		char stamp[17];

		if (backup_key_parse(mailbox_id, objects[i].key, stamp) != 1)
			continue;
		err = backup_s3_head(target, objects[i].key, &meta, error_r);
		if (err == BACKUP_ERR_NOTFOUND)
			continue; /* deleted meanwhile */
		if (err != BACKUP_OK)
			break;
		v->key = xstrdup(objects[i].key);
		v->size = objects[i].size;
		str_copy(v->sha256, meta.sha256, sizeof(v->sha256));
		str_copy(v->fingerprint, meta.fingerprint,
			 sizeof(v->fingerprint));
		str_copy(v->marker, meta.marker, sizeof(v->marker));
		/* The time it was made by our clock; an object written by
		 * someone else has only its name. */
		if (meta.created[0] == '\0' ||
		    backup_iso_parse(meta.created, &v->created) < 0) {
			if (stamp[0] == '\0' ||
			    backup_stamp_parse(stamp, &v->created) < 0)
				v->created = 0;
		}
		backup_stamp(v->created, v->version);
		n++;
	}
	backup_s3_objects_free(&objects, count);
	if (err != BACKUP_OK) {
		backup_versions_free(&versions, n);
		return err;
	}
	qsort(versions, n, sizeof(*versions), backup_version_cmp);
	*versions_r = versions;
	*count_r = n;
	return BACKUP_OK;
}

/* ---- Hashes ---- */

static void
backup_sha256_hex(EVP_MD_CTX *ctx, char out[65])
{
	unsigned char md[32];
	unsigned int len = 0;

	EVP_DigestFinal_ex(ctx, md, &len);
	hex_encode(md, sizeof(md), out);
}

/* SHA-256 of a file's bytes and its size. */
static int
backup_file_sha256(const char *path, char out[65], uint64_t *size_r)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	size_t bufsize = 1024 * 1024;
	char *buf = xmalloc(bufsize);
	uint64_t size = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int ret = -1;

	if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
		core_panic("EVP_DigestInit failed");
	if (fd >= 0) {
		ssize_t n;

		while ((n = read(fd, buf, bufsize)) > 0) {
			EVP_DigestUpdate(ctx, buf, (size_t)n);
			size += (uint64_t)n;
		}
		if (n == 0) {
			backup_sha256_hex(ctx, out);
			*size_r = size;
			ret = 0;
		}
		close(fd);
	}
	EVP_MD_CTX_free(ctx);
	free(buf);
	return ret;
}

/* The content fingerprint of a copy: SHA-256 over its decrypted pages
 * (each without its reserved tail, where the cipher keeps nonce and tag),
 * then BLAKE2b keyed with the mailbox key. The pages are read through the
 * connection's own file handle, which SQLite3MultipleCiphers decrypts;
 * nothing decrypted is written anywhere. */
/* SQLite's PENDING_BYTE (sqlite3.c; changed only by test builds). */
#define BACKUP_PENDING_BYTE 0x40000000LL

static enum backup_error
backup_fingerprint(const char *path, const struct crypto_key *key,
		   char out[65], const char **error_r)
{
	static const char label[] = "sealpost backup fingerprint v1";
	EVP_MD_CTX *ctx = NULL;
	sqlite3 *db = NULL;
	sqlite3_file *file = NULL;
	sqlite3_stmt *stmt;
	sqlite3_int64 size = 0;
	unsigned char *page = NULL, md[32], *msg = NULL, fp[32];
	unsigned int md_len = 0;
	const char *dberr;
	enum backup_error err = BACKUP_ERR_TEMP;
	int page_size = 0, reserved;

	if (db_open(path, key, DB_OPEN_READONLY | DB_OPEN_NO_WAL, &db,
		    &dberr) != DB_OK) {
		backup_set_error(error_r, "fingerprint: %s", dberr);
		return BACKUP_ERR_TEMP;
	}
	/* A read transaction keeps the file still while it is read. */
	if (db_exec(db, "BEGIN; SELECT count(*) FROM sqlite_master;",
		    &dberr) < 0) {
		backup_set_error(error_r, "fingerprint: %s", dberr);
		goto out;
	}
	stmt = db_prepare(db, "PRAGMA page_size;");
	if (sqlite3_step(stmt) == SQLITE_ROW)
		page_size = sqlite3_column_int(stmt, 0);
	sqlite3_finalize(stmt);
	if (page_size < 512 || page_size > 65536 ||
	    sqlite3_file_control(db, "main", SQLITE_FCNTL_FILE_POINTER,
				 &file) != SQLITE_OK ||
	    file == NULL || file->pMethods == NULL ||
	    file->pMethods->xFileSize(file, &size) != SQLITE_OK ||
	    size % page_size != 0) {
		backup_set_error(error_r, "fingerprint: cannot read the copy");
		goto out;
	}
	page = xmalloc((size_t)page_size);
	ctx = EVP_MD_CTX_new();
	if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
		core_panic("EVP_DigestInit failed");
	reserved = -1;
	for (sqlite3_int64 off = 0; off < size; off += page_size) {
		/* SQLite never writes the page holding the lock bytes (at 1
		 * GiB), so it has nothing to decrypt and no content. */
		if (off <= BACKUP_PENDING_BYTE &&
		    BACKUP_PENDING_BYTE < off + page_size)
			continue;
		if (file->pMethods->xRead(file, page, page_size, off) !=
		    SQLITE_OK) {
			backup_set_error(error_r,
					 "fingerprint: page %lld does not "
					 "decrypt",
					 (long long)(off / page_size + 1));
			err = BACKUP_ERR_CORRUPT;
			goto out;
		}
		if (reserved < 0)
			reserved = page[20]; /* header: reserved bytes */
		EVP_DigestUpdate(ctx, page, (size_t)(page_size - reserved));
	}
	EVP_DigestFinal_ex(ctx, md, &md_len);
	msg = xmalloc(sizeof(label) + sizeof(md));
	memcpy(msg, label, sizeof(label));
	memcpy(msg + sizeof(label), md, sizeof(md));
	crypto_keyed_hash(key, msg, sizeof(label) + sizeof(md), fp);
	hex_encode(fp, sizeof(fp), out);
	err = BACKUP_OK;
out:
	if (page != NULL) {
		explicit_bzero(page, (size_t)page_size);
		free(page);
	}
	free(msg);
	if (ctx != NULL)
		EVP_MD_CTX_free(ctx);
	if (db != NULL && !sqlite3_get_autocommit(db))
		(void)db_exec(db, "COMMIT;", NULL);
	sqlite3_close_v2(db);
	return err;
}

/* ---- Backup ---- */

static char *
backup_tmp_path(const char *data_dir, const char *mailbox_id,
		const char *suffix)
{
	char *path = store_mailbox_path(data_dir, mailbox_id);
	char *tmp = xasprintf("%s%s", path, suffix);

	free(path);
	return tmp;
}

/* Leftovers of an interrupted run hold mail (encrypted): they go the way
 * the store removes mailbox files. */
static void
backup_remove(const char *path)
{
	char *journal = xasprintf("%s-journal", path);

	if (fs_exists(path))
		(void)fs_secure_unlink(path);
	if (fs_exists(journal))
		(void)fs_secure_unlink(journal);
	free(journal);
}

/* One backup or restore of a mailbox at a time, across processes (the
 * server's daily backup, the CLI): an flock on <mailbox>.sqlite.lock,
 * removed by its holder when done. The inode check after locking catches
 * a file that its previous holder unlinked meanwhile. -1 with
 * BACKUP_ERR_BUSY semantics when another holds it. */
static int
backup_lock(const char *data_dir, const char *mailbox_id, char **path_r,
	    const char **error_r)
{
	char *path = backup_tmp_path(data_dir, mailbox_id, ".lock");
	char *dir = xasprintf("%s/mailboxes", data_dir);

	*path_r = NULL;
	(void)fs_mkdir_p(dir, 0700);
	free(dir);
	for (int tries = 0; tries < 10; tries++) {
		struct stat st_fd, st_path;
		int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);

		if (fd < 0) {
			backup_set_error(error_r, "%s: %s", path,
					 strerror(errno));
			free(path);
			return -1;
		}
		if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
			close(fd);
			backup_set_error(error_r,
					 "a backup or restore of this mailbox "
					 "is already running");
			free(path);
			return -1;
		}
		if (fstat(fd, &st_fd) == 0 && stat(path, &st_path) == 0 &&
		    st_fd.st_ino == st_path.st_ino &&
		    st_fd.st_dev == st_path.st_dev) {
			*path_r = path;
			return fd;
		}
		close(fd);
	}
	backup_set_error(error_r, "%s: cannot be locked", path);
	free(path);
	return -1;
}

static void
backup_unlock(int fd, char *path)
{
	if (fd < 0)
		return;
	(void)unlink(path);
	close(fd);
	free(path);
}

static enum backup_error
backup_from_store(enum store_error err)
{
	switch (err) {
	case STORE_OK:
		return BACKUP_OK;
	case STORE_ERR_BADKEY:
		return BACKUP_ERR_BADKEY;
	case STORE_ERR_NOTFOUND:
		return BACKUP_ERR_NOTFOUND;
	case STORE_ERR_INVALID:
		return BACKUP_ERR_CORRUPT;
	default:
		return BACKUP_ERR_TEMP;
	}
}

/* Deletes the oldest versions beyond keep, never `keep_key`. */
static size_t
backup_prune(const struct backup_target *target, const char *mailbox_id,
	     const char *keep_key)
{
	struct backup_version *versions = NULL;
	size_t count = 0, kept = 0, pruned = 0;
	const char *error;

	if (backup_list(target, mailbox_id, &versions, &count, &error) !=
	    BACKUP_OK) {
		log_warn(NULL, "backup: listing for pruning failed: %s",
			 error);
		return 0;
	}
	for (size_t i = 0; i < count; i++) {
		if (strcmp(versions[i].key, keep_key) == 0 ||
		    kept < target->keep - 1) {
			if (strcmp(versions[i].key, keep_key) != 0)
				kept++;
			continue;
		}
		if (backup_s3_delete(target, versions[i].key, &error) ==
		    BACKUP_OK)
			pruned++;
		else
			log_warn(NULL, "backup: deleting an old version: %s",
				 error);
	}
	backup_versions_free(&versions, count);
	return pruned;
}

/* The live mailbox's change marker, keyed with the mailbox key (like the
 * fingerprint) so that the value stored as metadata tells the provider
 * nothing, not even whether two mailboxes are alike. */
static enum backup_error
backup_marker(struct store_mailbox *mbox, const struct crypto_key *key,
	      char out[65], const char **error_r)
{
	static const char label[] = "sealpost backup marker v1";
	unsigned char msg[sizeof(label) + STORE_CHANGE_MARKER_BYTES], md[32];
	const char *serror;
	enum store_error serr;

	memcpy(msg, label, sizeof(label));
	serr = store_mailbox_change_marker(mbox, msg + sizeof(label),
					   &serror);
	if (serr != STORE_OK) {
		backup_set_error(error_r, "%s", serror);
		return backup_from_store(serr);
	}
	crypto_keyed_hash(key, msg, sizeof(msg), md);
	hex_encode(md, sizeof(md), out);
	return BACKUP_OK;
}

void
backup_result_clear(struct backup_result *result)
{
	free(result->version.key);
	memset(result, 0, sizeof(*result));
}

enum backup_error
backup_mailbox(const struct backup_target *target, const char *data_dir,
	       const char *mailbox_id, const struct crypto_key *key,
	       struct backup_result *result_r, const char **error_r)
{
	struct store_mailbox *mbox = NULL;
	struct backup_version *versions = NULL;
	size_t version_count = 0;
	char *tmp = backup_tmp_path(data_dir, mailbox_id, ".backup");
	char sha[65], fp[65], marker[65], created[21], stamp[17];
	uint64_t live = 0, copied = 0, size = 0;
	enum backup_error err;
	enum store_error serr;
	const char *serror;
	double t0 = backup_now(), t1, t2;
	time_t now = clock_now();
	char *lock_path = NULL;
	int lock_fd;

	memset(result_r, 0, sizeof(*result_r));
	if ((lock_fd = backup_lock(data_dir, mailbox_id, &lock_path,
				   error_r)) < 0) {
		free(tmp);
		return BACKUP_ERR_BUSY;
	}
	backup_remove(tmp);
	serr = store_mailbox_open(data_dir, mailbox_id, key, 0, &mbox,
				  &serror);
	if (serr != STORE_OK) {
		err = backup_from_store(serr);
		backup_set_error(error_r, "%s",
				 serr == STORE_ERR_BADKEY ? "wrong password"
				 : serr == STORE_ERR_NOTFOUND
					 ? "the alias has no mailbox file yet"
					 : serror);
		goto out;
	}
	/* First line: the change marker against the newest backup's. Read
	 * before the copy, so a change committed in between is in the copy
	 * but not in the recorded marker: the next run copies again rather
	 * than skipping a change. */
	err = backup_marker(mbox, key, marker, error_r);
	if (err == BACKUP_OK)
		err = backup_list(target, mailbox_id, &versions,
				  &version_count, error_r);
	if (err != BACKUP_OK) {
		store_mailbox_close(&mbox);
		goto out;
	}
	if (version_count > 0 && strcmp(versions[0].marker, marker) == 0) {
		store_mailbox_close(&mbox);
		result_r->uploaded = false;
		result_r->copied = false;
		result_r->version = versions[0];
		result_r->version.key = xstrdup(versions[0].key);
		result_r->upload_seconds = backup_now() - t0;
		goto out;
	}
	serr = store_mailbox_snapshot(mbox, key, tmp, &live, &serror);
	store_mailbox_close(&mbox);
	if (serr != STORE_OK) {
		err = backup_from_store(serr);
		backup_set_error(error_r, "copy: %s", serror);
		goto out;
	}
	t1 = backup_now();
	result_r->copy_seconds = t1 - t0;
	result_r->copied = true;

	serr = store_snapshot_verify(tmp, key, &copied, &serror);
	if (serr != STORE_OK || copied != live) {
		backup_set_error(error_r, "the copy failed verification: %s",
				 serr != STORE_OK ? serror
						  : "message count differs");
		err = BACKUP_ERR_TEMP;
		goto out;
	}
	result_r->messages = copied;
	if ((err = backup_fingerprint(tmp, key, fp, error_r)) != BACKUP_OK)
		goto out;
	if (backup_file_sha256(tmp, sha, &size) < 0) {
		backup_set_error(error_r, "%s: %s", tmp, strerror(errno));
		err = BACKUP_ERR_TEMP;
		goto out;
	}
	t2 = backup_now();
	result_r->verify_seconds = t2 - t1;

	/* Second line: the content itself. */
	if (version_count > 0 && strcmp(versions[0].fingerprint, fp) == 0) {
		result_r->uploaded = false;
		result_r->version = versions[0];
		result_r->version.key = xstrdup(versions[0].key);
		result_r->upload_seconds = backup_now() - t2;
		goto out;
	}
	backup_stamp(now, stamp);
	clock_format_iso8601(now, created);
	{
		char *obj =
			target->keep > 1
				? xasprintf("%s/%s.sqlite", mailbox_id, stamp)
				: xasprintf("%s.sqlite", mailbox_id);
		struct backup_s3_header headers[] = {
			{"sha256", sha},
			{"fingerprint", fp},
			{"created", created},
			{"marker", marker},
		};

		err = backup_s3_put_file(target, obj, tmp, sha, headers,
					 SP_N_ELEMENTS(headers), error_r);
		if (err != BACKUP_OK) {
			free(obj);
			goto out;
		}
		result_r->uploaded = true;
		result_r->version.key = obj;
		str_copy(result_r->version.version, stamp,
			 sizeof(result_r->version.version));
		result_r->version.created = now;
		result_r->version.size = size;
		str_copy(result_r->version.sha256, sha,
			 sizeof(result_r->version.sha256));
		str_copy(result_r->version.fingerprint, fp,
			 sizeof(result_r->version.fingerprint));
		str_copy(result_r->version.marker, marker,
			 sizeof(result_r->version.marker));
	}
	result_r->pruned = backup_prune(target, mailbox_id,
					result_r->version.key);
	result_r->upload_seconds = backup_now() - t2;
out:
	backup_versions_free(&versions, version_count);
	backup_remove(tmp);
	free(tmp);
	backup_unlock(lock_fd, lock_path);
	return err;
}

/* ---- Download ---- */

/* The version named `version` (NULL or "latest": the newest). */
static enum backup_error
backup_find(const struct backup_target *target, const char *mailbox_id,
	    const char *version, struct backup_version *found_r,
	    const char **error_r)
{
	struct backup_version *versions = NULL;
	size_t count = 0;
	enum backup_error err;

	err = backup_list(target, mailbox_id, &versions, &count, error_r);
	if (err != BACKUP_OK)
		return err;
	err = BACKUP_ERR_NOTFOUND;
	for (size_t i = 0; i < count; i++) {
		if (version == NULL || strcmp(version, "latest") == 0 ||
		    strcmp(versions[i].version, version) == 0) {
			*found_r = versions[i];
			found_r->key = xstrdup(versions[i].key);
			err = BACKUP_OK;
			break;
		}
	}
	if (err == BACKUP_ERR_NOTFOUND)
		backup_set_error(error_r,
				 version == NULL ? "the mailbox has no backup"
						 : "no backup of version %s",
				 version);
	backup_versions_free(&versions, count);
	return err;
}

/* Fetches a version to `path` and checks its bytes against the SHA-256
 * recorded at upload. */
static enum backup_error
backup_fetch(const struct backup_target *target, const char *mailbox_id,
	     const char *version, const char *path, const char **error_r)
{
	struct backup_version found = {0};
	struct backup_s3_meta meta;
	char sha[65];
	enum backup_error err;

	err = backup_find(target, mailbox_id, version, &found, error_r);
	if (err != BACKUP_OK)
		return err;
	err = backup_s3_get_file(target, found.key, path, sha, &meta, error_r);
	if (err == BACKUP_OK &&
	    (meta.sha256[0] == '\0' || strcmp(meta.sha256, sha) != 0)) {
		backup_set_error(error_r,
				 "the downloaded backup is corrupt (SHA-256 "
				 "%s, expected %s)",
				 sha, meta.sha256[0] != '\0' ? meta.sha256
							     : "none recorded");
		(void)unlink(path);
		err = BACKUP_ERR_CORRUPT;
	}
	free(found.key);
	return err;
}

/* A copy is usable when it opens with the key and passes the check. */
static enum backup_error
backup_check_copy(const char *path, const struct crypto_key *key,
		  uint64_t *messages_r, const char **error_r)
{
	const char *serror;
	enum store_error serr = store_snapshot_verify(path, key, messages_r,
						      &serror);

	if (serr == STORE_ERR_BADKEY) {
		backup_set_error(error_r,
				 "the backup does not open with this password "
				 "(made before a password change, or of "
				 "another mailbox)");
		return BACKUP_ERR_BADKEY;
	}
	if (serr != STORE_OK) {
		backup_set_error(error_r, "the backup is unusable: %s",
				 serror);
		return serr == STORE_ERR_NOTFOUND ? BACKUP_ERR_NOTFOUND
						  : BACKUP_ERR_CORRUPT;
	}
	return BACKUP_OK;
}

enum backup_error
backup_download(const struct backup_target *target, const char *mailbox_id,
		const char *version, const struct crypto_key *key,
		const char *path, const char **error_r)
{
	char *part = xasprintf("%s.part", path);
	uint64_t messages;
	enum backup_error err;

	backup_remove(part);
	err = backup_fetch(target, mailbox_id, version, part, error_r);
	if (err == BACKUP_OK)
		err = backup_check_copy(part, key, &messages, error_r);
	if (err == BACKUP_OK &&
	    (rename(part, path) < 0 || fs_fsync_parent(path) < 0)) {
		backup_set_error(error_r, "%s: %s", path, strerror(errno));
		err = BACKUP_ERR_TEMP;
	}
	if (err != BACKUP_OK && fs_exists(part))
		(void)unlink(part);
	free(part);
	return err;
}

/* ---- Restore ---- */

/* SQLite's unix VFS keeps a read lock on byte 128 of the -shm file (the
 * "DMS" lock, after the eight WAL locks at 120..127) for as long as a
 * connection has the WAL index mapped, i.e. the database open. F_GETLK
 * reports locks of other processes only. */
#define BACKUP_SHM_DMS_OFFSET 128

bool
backup_mailbox_in_use(const char *data_dir, const char *mailbox_id)
{
	char *shm = backup_tmp_path(data_dir, mailbox_id, "-shm");
	struct flock fl = {
		.l_type = F_WRLCK,
		.l_whence = SEEK_SET,
		.l_start = BACKUP_SHM_DMS_OFFSET,
		.l_len = 1,
	};
	int fd = open(shm, O_RDWR | O_CLOEXEC);
	bool in_use = false;

	free(shm);
	if (fd < 0)
		return false;
	if (fcntl(fd, F_GETLK, &fl) == 0 && fl.l_type != F_UNLCK)
		in_use = true;
	close(fd);
	return in_use;
}

/* Copies a local file next to the mailbox (rename needs one file
 * system). */
static int
backup_copy_file(const char *from, const char *to)
{
	char *buf = xmalloc(1024 * 1024);
	int in = open(from, O_RDONLY | O_CLOEXEC);
	int out = -1, ret = -1;
	ssize_t n = -1;

	if (in >= 0)
		out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (out >= 0) {
		while ((n = read(in, buf, 1024 * 1024)) > 0) {
			if (write(out, buf, (size_t)n) != n) {
				n = -1;
				break;
			}
		}
		if (n == 0 && fsync(out) == 0)
			ret = 0;
	}
	if (in >= 0)
		close(in);
	if (out >= 0)
		close(out);
	if (ret < 0 && out >= 0)
		(void)unlink(to);
	free(buf);
	return ret;
}

enum backup_error
backup_restore(const struct backup_target *target, const char *data_dir,
	       const char *mailbox_id, const struct crypto_key *key,
	       const char *version, const char *file,
	       backup_restore_hook *before_swap, void *hook_ctx,
	       uint64_t *messages_r, const char **error_r)
{
	char *path = store_mailbox_path(data_dir, mailbox_id);
	char *incoming = backup_tmp_path(data_dir, mailbox_id, ".restore");
	char *old = backup_tmp_path(data_dir, mailbox_id, ".pre-restore");
	char *wal = xasprintf("%s-wal", path);
	char *shm = xasprintf("%s-shm", path);
	char *old_wal = xasprintf("%s-wal", old);
	char *dir = xasprintf("%s/mailboxes", data_dir);
	uint64_t messages = 0;
	enum backup_error err;
	bool had_live;
	char *lock_path = NULL;
	int lock_fd;

	if ((lock_fd = backup_lock(data_dir, mailbox_id, &lock_path,
				   error_r)) < 0) {
		err = BACKUP_ERR_BUSY;
		goto out;
	}
	backup_remove(incoming);
	backup_remove(old);
	if (fs_exists(old_wal))
		(void)fs_secure_unlink(old_wal);
	if (fs_mkdir_p(dir, 0700) < 0) {
		backup_set_error(error_r, "%s: %s", dir, strerror(errno));
		err = BACKUP_ERR_TEMP;
		goto out;
	}
	/* 1. The backup, next to the mailbox, checked before anything. */
	if (file != NULL) {
		if (backup_copy_file(file, incoming) < 0) {
			backup_set_error(error_r, "%s: %s", file,
					 strerror(errno));
			err = errno == ENOENT ? BACKUP_ERR_NOTFOUND
					      : BACKUP_ERR_TEMP;
			goto out;
		}
	} else if (target == NULL) {
		backup_set_error(error_r, "restore: no storage and no file");
		err = BACKUP_ERR_CONFIG;
		goto out;
	} else {
		err = backup_fetch(target, mailbox_id, version, incoming,
				   error_r);
		if (err != BACKUP_OK)
			goto out;
	}
	err = backup_check_copy(incoming, key, &messages, error_r);
	if (err != BACKUP_OK)
		goto out;

	/* 2. Nobody may have the mailbox open: a connection on the old file
	 * would keep writing its -wal, which the new file would inherit. The
	 * hook closes the sessions of a running server. */
	if (before_swap != NULL && before_swap(hook_ctx, error_r) < 0) {
		err = BACKUP_ERR_BUSY;
		goto out;
	}
	if (backup_mailbox_in_use(data_dir, mailbox_id)) {
		backup_set_error(error_r,
				 "the mailbox is open (a session of the alias "
				 "is logged in): log it out, or stop the "
				 "server, and retry");
		err = BACKUP_ERR_BUSY;
		goto out;
	}
	had_live = fs_exists(path);
	if (had_live) {
		struct store_mailbox *mbox = NULL;
		const char *serror;

		/* The last connection to close checkpoints the WAL into the
		 * file and removes it: the old file is then whole by itself.
		 * A live file that no longer opens is replaced all the
		 * same -- that is what a restore is for. */
		if (store_mailbox_open(data_dir, mailbox_id, key, 0, &mbox,
				       &serror) == STORE_OK)
			store_mailbox_close(&mbox);
		if (backup_mailbox_in_use(data_dir, mailbox_id)) {
			backup_set_error(error_r,
					 "the mailbox was opened meanwhile; "
					 "retry when its sessions are gone");
			err = BACKUP_ERR_BUSY;
			goto out;
		}
		/* 3. Keep the old file under a second name until the swap
		 * is done; move its -wal (empty after the checkpoint) with
		 * it and drop the -shm (an index of that -wal), so no frame
		 * of the old file is ever applied to the new one. */
		if (link(path, old) < 0 ||
		    (fs_exists(wal) && rename(wal, old_wal) < 0) ||
		    (fs_exists(shm) && unlink(shm) < 0)) {
			backup_set_error(error_r, "keeping the old file: %s",
					 strerror(errno));
			(void)unlink(old);
			err = BACKUP_ERR_TEMP;
			goto out;
		}
	}
	/* 4. The swap: atomic, and durable once the directory is synced. */
	if (rename(incoming, path) < 0 || fs_fsync_dir(dir) < 0) {
		backup_set_error(error_r, "replacing the mailbox: %s",
				 strerror(errno));
		if (had_live && fs_exists(old_wal))
			(void)rename(old_wal, wal);
		if (had_live)
			(void)unlink(old);
		err = BACKUP_ERR_TEMP;
		goto out;
	}
	/* 5. The old file is no longer needed. */
	if (had_live) {
		backup_remove(old);
		if (fs_exists(old_wal))
			(void)fs_secure_unlink(old_wal);
	}
	if (messages_r != NULL)
		*messages_r = messages;
	err = BACKUP_OK;
out:
	if (lock_fd >= 0)
		backup_remove(incoming);
	backup_unlock(lock_fd, lock_path);
	free(path);
	free(incoming);
	free(old);
	free(wal);
	free(shm);
	free(old_wal);
	free(dir);
	return err;
}
