/*
 * core: what every Sealpost module stands on.
 *
 * Allocation that aborts on out-of-memory (so call sites never check), a
 * growable byte buffer, logging that never carries message content or
 * addresses, the one clock every module reads (tests can move it), and the
 * file-system primitives that make an acknowledgement durable: write to a
 * temporary file, fsync it, rename it into place, fsync the directory.
 *
 * Nothing here knows about mail. Every other module may include this header;
 * this module includes no other.
 */
#ifndef SEALPOST_CORE_H
#define SEALPOST_CORE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#define SP_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#define SP_NORETURN __attribute__((noreturn))
#define SP_N_ELEMENTS(a) (sizeof(a) / sizeof((a)[0]))

/* Invariants only; never for validating input. */
#define SP_ASSERT(expr)                                                      \
	do {                                                                 \
		if (!(expr))                                                 \
			core_panic("%s:%d: assertion failed: %s", __FILE__,  \
				   __LINE__, #expr);                         \
	} while (0)

SP_NORETURN void core_panic(const char *fmt, ...) SP_PRINTF(1, 2);

/* Allocation: abort on OOM. The caller owns what is returned. */
void *xmalloc(size_t size);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *ptr, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) SP_PRINTF(1, 2);

/* A growable byte buffer, always NUL-terminated after `len` bytes. */
struct sp_buf {
	char *data;
	size_t len;
	size_t cap;
};

void sp_buf_init(struct sp_buf *buf);
void sp_buf_deinit(struct sp_buf *buf);
void sp_buf_reset(struct sp_buf *buf);
void sp_buf_append(struct sp_buf *buf, const void *data, size_t len);
void sp_buf_append_str(struct sp_buf *buf, const char *s);
void sp_buf_printf(struct sp_buf *buf, const char *fmt, ...) SP_PRINTF(2, 3);
/* Hands the data over to the caller (free()); the buffer is left empty. */
char *sp_buf_steal(struct sp_buf *buf, size_t *len_r);

/* Logging. Lines go to stderr as "time level [id] text". Callers never pass
 * addresses, subjects or content unless log_addresses is set. */
enum log_level {
	LOG_LEVEL_DEBUG,
	LOG_LEVEL_INFO,
	LOG_LEVEL_WARN,
	LOG_LEVEL_ERROR,
};

void log_set_level(enum log_level level);
int log_parse_level(const char *name, enum log_level *level_r);
void log_msg(enum log_level level, const char *id, const char *fmt, ...)
	SP_PRINTF(3, 4);
#define log_debug(id, ...) log_msg(LOG_LEVEL_DEBUG, id, __VA_ARGS__)
#define log_info(id, ...) log_msg(LOG_LEVEL_INFO, id, __VA_ARGS__)
#define log_warn(id, ...) log_msg(LOG_LEVEL_WARN, id, __VA_ARGS__)
#define log_error(id, ...) log_msg(LOG_LEVEL_ERROR, id, __VA_ARGS__)

/* The clock. Wall time plus an offset that tests set with the environment
 * variable SEALPOST_CLOCK_OFFSET (seconds), so retention, retries and rate
 * windows can be exercised without waiting. */
time_t clock_now(void);
void clock_set_offset(int64_t seconds);
/* ISO 8601 UTC, "2026-11-23T18:25:00Z"; out must hold 21 bytes. */
void clock_format_iso8601(time_t t, char out[21]);

/* Random bytes and ids (libsodium's generator underneath). */
void random_bytes(void *buf, size_t len);
/* A fresh random id of `nbytes` bytes as lower-case hex into out
 * (2 * nbytes + 1 bytes). */
void random_hex_id(char *out, size_t nbytes);
void hex_encode(const unsigned char *in, size_t len, char *out);
/* 0 on success, -1 when `in` is not exactly 2*len hex digits. */
int hex_decode(const char *in, unsigned char *out, size_t len);

/* File system. All return 0 on success, -1 with errno set on failure. */
int fs_mkdir_p(const char *path, mode_t mode);
int fs_fsync_dir(const char *dir);
int fs_fsync_parent(const char *path);
/* Writes data to a temporary file next to `path`, fsyncs it, renames it into
 * place and fsyncs the directory: after return the file is durable. */
int fs_write_atomic(const char *path, const void *data, size_t len,
		    mode_t mode);
/* Reads a whole file; the caller frees *data_r. */
int fs_read_file(const char *path, char **data_r, size_t *len_r);
/* Overwrites a file with zeros, fsyncs, then unlinks it. */
int fs_secure_unlink(const char *path);
bool fs_exists(const char *path);

/* Strings. */
bool str_has_prefix(const char *s, const char *prefix);
/* No byte of s is 0x80 or above. */
bool str_is_ascii(const char *s);
void str_lower(char *s);
/* Copies at most size-1 bytes and terminates; returns strlen(src). */
size_t str_copy(char *dst, const char *src, size_t size);

#endif
