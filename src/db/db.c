#include "db.h"

#include "core/core.h"
#include "crypto/crypto.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <string.h>
#include <unistd.h>

static _Thread_local char db_error_buf[512];

static const char *
db_set_error(const char *what, sqlite3 *db)
{
	snprintf(db_error_buf, sizeof(db_error_buf), "%s: %s", what,
		 db != NULL ? sqlite3_errmsg(db) : "out of memory");
	return db_error_buf;
}

int
db_exec(sqlite3 *db, const char *sql, const char **error_r)
{
	char *msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		snprintf(db_error_buf, sizeof(db_error_buf), "%s",
			 msg != NULL ? msg : sqlite3_errmsg(db));
		sqlite3_free(msg);
		if (error_r != NULL)
			*error_r = db_error_buf;
		return -1;
	}
	return 0;
}

/* The key goes in as "raw:" + 32 bytes, assembled in locked memory. */
static int
db_apply_key(sqlite3 *db, const struct crypto_key *key)
{
	unsigned char *raw = sodium_malloc(4 + CRYPTO_KEY_BYTES);
	int rc;

	if (raw == NULL)
		core_panic("sodium_malloc failed");
	memcpy(raw, "raw:", 4);
	memcpy(raw + 4, key->bytes, CRYPTO_KEY_BYTES);
	rc = sqlite3_key_v2(db, "main", raw, 4 + CRYPTO_KEY_BYTES);
	sodium_free(raw);
	return rc;
}

static const char db_pragmas[] = "PRAGMA busy_timeout=5000;"
				 "PRAGMA foreign_keys=ON;"
				 "PRAGMA secure_delete=ON;"
				 "PRAGMA temp_store=FILE;";

enum db_error
db_open(const char *path, const struct crypto_key *key, int flags,
	sqlite3 **db_r, const char **error_r)
{
	sqlite3 *db = NULL;
	int oflags = SQLITE_OPEN_NOMUTEX;
	bool is_new;
	int rc;

	*db_r = NULL;
	is_new = !fs_exists(path);
	if (is_new && (flags & DB_OPEN_CREATE) == 0) {
		snprintf(db_error_buf, sizeof(db_error_buf),
			 "%s: no such database", path);
		*error_r = db_error_buf;
		return DB_ERR_NOTFOUND;
	}
	oflags |= (flags & DB_OPEN_READONLY) != 0
			  ? SQLITE_OPEN_READONLY
			  : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
	rc = sqlite3_open_v2(path, &db, oflags, NULL);
	if (rc != SQLITE_OK) {
		*error_r = db_set_error("open", db);
		sqlite3_close(db);
		return DB_ERR_IO;
	}
	/* Before the first read: a session closing the same file (its
	 * checkpoint holds a lock) must make this open wait, not fail. */
	sqlite3_busy_timeout(db, 5000);
	if (key != NULL) {
		/* The cipher is chosen per connection before the key. */
		if (db_exec(db, "PRAGMA cipher='chacha20';", error_r) < 0 ||
		    db_apply_key(db, key) != SQLITE_OK) {
			*error_r = db_set_error("key", db);
			sqlite3_close(db);
			return DB_ERR_IO;
		}
	}
	/* The first read proves the key; a wrong one fails with NOTADB before
	 * anything is written. */
	rc = sqlite3_exec(db, "SELECT count(*) FROM sqlite_master;", NULL, NULL,
			  NULL);
	if (rc == SQLITE_NOTADB) {
		sqlite3_close(db);
		*error_r = "wrong key, or not a Sealpost database";
		return DB_ERR_BADKEY;
	}
	if (rc != SQLITE_OK) {
		*error_r = db_set_error("read", db);
		sqlite3_close(db);
		return DB_ERR_IO;
	}
	if (db_exec(db, db_pragmas, error_r) < 0)
		goto fail;
	if ((flags & DB_OPEN_READONLY) == 0) {
		if (is_new &&
		    db_exec(db,
			    "PRAGMA encoding='UTF-8';"
			    "PRAGMA auto_vacuum=FULL;",
			    error_r) < 0)
			goto fail;
		if ((flags & DB_OPEN_NO_WAL) == 0 &&
		    db_exec(db, "PRAGMA journal_mode=WAL;", error_r) < 0)
			goto fail;
		if (db_exec(db, "PRAGMA synchronous=NORMAL;", error_r) < 0)
			goto fail;
	}
	*db_r = db;
	return DB_OK;
fail:
	sqlite3_close(db);
	return DB_ERR_IO;
}

void
db_close(sqlite3 **db)
{
	if (*db == NULL)
		return;
	if (!sqlite3_db_readonly(*db, "main"))
		(void)sqlite3_exec(*db, "PRAGMA optimize;", NULL, NULL, NULL);
	sqlite3_close_v2(*db);
	*db = NULL;
}

int
db_migrate(sqlite3 *db, const char *const *migrations, size_t count,
	   const char **error_r)
{
	sqlite3_stmt *stmt = db_prepare(db, "PRAGMA user_version;");
	int version = 0;

	if (sqlite3_step(stmt) == SQLITE_ROW)
		version = sqlite3_column_int(stmt, 0);
	sqlite3_finalize(stmt);
	if (version < 0 || (size_t)version > count) {
		snprintf(db_error_buf, sizeof(db_error_buf),
			 "schema version %d is newer than this program (%zu)",
			 version, count);
		*error_r = db_error_buf;
		return -1;
	}
	for (size_t v = (size_t)version; v < count; v++) {
		char set_version[64];

		snprintf(set_version, sizeof(set_version),
			 "PRAGMA user_version=%zu;", v + 1);
		if (db_begin_durable(db, error_r) < 0)
			return -1;
		if (db_exec(db, migrations[v], error_r) < 0 ||
		    db_exec(db, set_version, error_r) < 0 ||
		    db_commit(db, error_r) < 0) {
			db_rollback(db);
			return -1;
		}
	}
	return 0;
}

int
db_begin(sqlite3 *db, const char **error_r)
{
	return db_exec(db, "BEGIN IMMEDIATE;", error_r);
}

int
db_begin_durable(sqlite3 *db, const char **error_r)
{
	if (db_exec(db, "PRAGMA synchronous=FULL;", error_r) < 0)
		return -1;
	if (db_begin(db, error_r) < 0) {
		(void)db_exec(db, "PRAGMA synchronous=NORMAL;", NULL);
		return -1;
	}
	return 0;
}

int
db_commit(sqlite3 *db, const char **error_r)
{
	int ret = db_exec(db, "COMMIT;", error_r);

	/* Back to the default after a durable transaction; a no-op else. */
	if (sqlite3_get_autocommit(db))
		(void)db_exec(db, "PRAGMA synchronous=NORMAL;", NULL);
	return ret;
}

void
db_rollback(sqlite3 *db)
{
	if (!sqlite3_get_autocommit(db))
		(void)sqlite3_exec(db, "ROLLBACK;", NULL, NULL, NULL);
	(void)sqlite3_exec(db, "PRAGMA synchronous=NORMAL;", NULL, NULL, NULL);
}

sqlite3_stmt *
db_prepare(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *stmt = NULL;

	if (sqlite3_prepare_v2(db, sql, -1, &stmt, NULL) != SQLITE_OK)
		core_panic("SQL does not compile: %s: %s", sqlite3_errmsg(db),
			   sql);
	return stmt;
}

bool
db_file_is_plaintext(const char *path)
{
	static const char magic[16] = "SQLite format 3";
	char head[16];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	bool plain;

	if (fd < 0)
		return false;
	plain = read(fd, head, sizeof(head)) == (ssize_t)sizeof(head) &&
		memcmp(head, magic, sizeof(magic)) == 0;
	close(fd);
	return plain;
}
