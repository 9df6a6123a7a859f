/* backup: declarations shared by the module's own files only. */
#ifndef SEALPOST_BACKUP_PRIVATE_H
#define SEALPOST_BACKUP_PRIVATE_H

#include "backup.h"

#include "core/core.h"

#include <stdatomic.h>

/* Sets *error_r to a thread-local copy of the formatted text. */
const char *backup_set_error(const char **error_r, const char *fmt, ...)
	SP_PRINTF(2, 3);

/* ---- The S3 client (s3.c) ---- */

/* What a HEAD or GET tells about an object. */
struct backup_s3_meta {
	uint64_t size;
	char sha256[65];      /* x-amz-meta-sha256, "" when absent */
	char fingerprint[65]; /* x-amz-meta-fingerprint */
	char created[21];     /* x-amz-meta-created, ISO 8601 */
	char marker[65];      /* x-amz-meta-marker, "" when absent */
};

struct backup_s3_object {
	char *key;
	uint64_t size;
};

/* A metadata header to send with a PUT ("x-amz-meta-<name>: value"). */
struct backup_s3_header {
	const char *name;
	const char *value;
};

/* Set to true to make every transfer in progress abort (shutdown). */
extern atomic_bool backup_s3_abort;

/* Uploads the file at `path` as `key` with its hex SHA-256 (signed as the
 * payload hash, so a storage that checks it refuses a damaged upload) and
 * the metadata headers. */
enum backup_error backup_s3_put_file(const struct backup_target *target,
				     const char *key, const char *path,
				     const char *sha256_hex,
				     const struct backup_s3_header *headers,
				     size_t header_count, const char **error_r);
/* Downloads `key` into a new file at `path` (created 0600, must not
 * exist), hashing what arrives: *sha256_hex_r (65 bytes) and *meta_r. On
 * failure the partial file is removed. */
enum backup_error backup_s3_get_file(const struct backup_target *target,
				     const char *key, const char *path,
				     char *sha256_hex_r,
				     struct backup_s3_meta *meta_r,
				     const char **error_r);
/* BACKUP_ERR_NOTFOUND when there is no such object. */
enum backup_error backup_s3_head(const struct backup_target *target,
				 const char *key, struct backup_s3_meta *meta_r,
				 const char **error_r);
enum backup_error backup_s3_delete(const struct backup_target *target,
				   const char *key, const char **error_r);
/* ListObjectsV2 of every key starting with `prefix`, all pages. Free with
 * backup_s3_objects_free(). */
enum backup_error backup_s3_list(const struct backup_target *target,
				 const char *prefix,
				 struct backup_s3_object **objects_r,
				 size_t *count_r, const char **error_r);
void backup_s3_objects_free(struct backup_s3_object **objects, size_t count);

/* Parses a ListObjectsV2 answer: appends its keys and sizes, sets
 * *truncated_r and *next_token_r (caller frees; NULL when none). 0 or -1
 * (not the XML of a listing). Exposed for the unit tests. */
int backup_s3_parse_list(const char *xml, size_t len,
			 struct backup_s3_object **objects,
			 size_t *count, bool *truncated_r,
			 char **next_token_r);
/* Parses an S3 error document: *code_r and *message_r (caller frees;
 * NULL when absent). 0 or -1. */
int backup_s3_parse_error(const char *xml, size_t len, char **code_r,
			  char **message_r);
/* The URL of `key` (NULL: the bucket itself) for the target's style;
 * caller frees. Percent-encodes the key as SigV4 wants it. */
char *backup_s3_url(const struct backup_target *target, const char *key);

/* ---- Names (backup.c) ---- */

/* The version stamp of `t`: YYYYMMDDTHHMMSSZ (17 bytes with NUL). */
void backup_stamp(time_t t, char out[17]);
/* 1 and the stamp when `key` is one of the mailbox's objects, else 0. */
int backup_key_parse(const char *mailbox_id, const char *key,
		     char stamp_r[17]);

#endif
