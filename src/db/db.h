/*
 * db: opening SQLite3MultipleCiphers databases the one way Sealpost does.
 *
 * Every database Sealpost writes (each mailbox, the control plane, the
 * queue) is opened here: cipher chacha20, a raw 32-byte key handed over with
 * the "raw:" prefix so SQLite3MultipleCiphers runs no KDF of its own, the key
 * checked at once, then the PRAGMAs of SPEC.md (WAL, busy_timeout 5000,
 * synchronous NORMAL, foreign keys, UTF-8, secure_delete, auto_vacuum FULL,
 * temp_store FILE). Schemas evolve through numbered migrations kept in
 * PRAGMA user_version.
 *
 * Durability: WAL with synchronous=NORMAL may lose the last commits on power
 * loss. A transaction that gates an acknowledgement to a peer starts with
 * db_begin_durable(), which switches the connection to synchronous=FULL (the
 * WAL is fsync'd before COMMIT returns; SQLite allows the switch only
 * outside a transaction); db_commit() switches back to NORMAL.
 */
#ifndef SEALPOST_DB_H
#define SEALPOST_DB_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>

struct crypto_key;

enum db_open_flags {
	DB_OPEN_CREATE = 1 << 0,   /* create the file when missing */
	DB_OPEN_READONLY = 1 << 1, /* no writes (verification of copies) */
	DB_OPEN_NO_WAL = 1 << 2,   /* keep the rollback journal (copies) */
};

enum db_error {
	DB_OK = 0,
	DB_ERR_BADKEY,	 /* wrong key, or not a database of ours */
	DB_ERR_NOTFOUND, /* no such file and DB_OPEN_CREATE not given */
	DB_ERR_IO,	 /* anything else; see error_r */
};

/* Opens `path` with `key` (NULL: no encryption; only benchmarks do that).
 * On success *db_r is an open handle the caller closes with db_close().
 * On failure *error_r points to a static or thread-local message. A wrong
 * key changes nothing in the file. */
enum db_error db_open(const char *path, const struct crypto_key *key,
		      int flags, sqlite3 **db_r, const char **error_r);
/* Runs PRAGMA optimize and closes; NULLs the pointer; accepts NULL. */
void db_close(sqlite3 **db);

/* Brings the schema to the newest version: migrations[i] takes the schema
 * from version i to i + 1, each in its own transaction. */
int db_migrate(sqlite3 *db, const char *const *migrations, size_t count,
	       const char **error_r);

/* Runs SQL without results. 0 or -1 with *error_r (thread-local). */
int db_exec(sqlite3 *db, const char *sql, const char **error_r);
int db_begin(sqlite3 *db, const char **error_r); /* BEGIN IMMEDIATE */
/* BEGIN IMMEDIATE of a transaction whose COMMIT is on disk when it returns
 * (see above). */
int db_begin_durable(sqlite3 *db, const char **error_r);
int db_commit(sqlite3 *db, const char **error_r);
void db_rollback(sqlite3 *db);

/* Prepares a statement; aborts on SQL that does not compile (a programming
 * error). The caller finalizes. */
sqlite3_stmt *db_prepare(sqlite3 *db, const char *sql);

/* True when the file's first bytes are the plaintext SQLite header, i.e.
 * the file is NOT encrypted. Missing file: false. */
bool db_file_is_plaintext(const char *path);

#endif
