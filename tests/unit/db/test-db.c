#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/core.h"
#include "crypto/crypto.h"
#include "db/db.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

static char dir[] = "/tmp/sealpost-db-XXXXXX";

static const char *const migrations[] = {
	"CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);",
	"ALTER TABLE t ADD COLUMN w INTEGER DEFAULT 7;",
};

static void
file_hash(const char *path, unsigned char out[32])
{
	char *data;
	size_t len;

	assert_int_equal(fs_read_file(path, &data, &len), 0);
	crypto_hash_sha256(out, (unsigned char *)data, len);
	free(data);
}

static void
test_encrypted_roundtrip_and_wrong_key(void **state)
{
	char *path = xasprintf("%s/a.sqlite", dir);
	struct crypto_key *key = crypto_key_create(), *bad;
	sqlite3 *db;
	const char *error;
	unsigned char before[32], after[32];
	char *data;
	size_t len;

	crypto_key_random(key);
	bad = crypto_key_dup(key);
	bad->bytes[31] ^= 0x80;

	assert_int_equal(db_open(path, key, 0, &db, &error), DB_ERR_NOTFOUND);
	if (db_open(path, key, DB_OPEN_CREATE, &db, &error) != DB_OK)
		fail_msg("open: %s", error);
	assert_int_equal(db_migrate(db, migrations, 2, &error), 0);
	assert_int_equal(db_begin_durable(db, &error), 0);
	assert_int_equal(db_exec(db, "INSERT INTO t(v) VALUES('canary-7f3a');",
				 &error),
			 0);
	assert_int_equal(db_commit(db, &error), 0);
	db_close(&db);
	assert_null(db);

	assert_false(db_file_is_plaintext(path));
	assert_int_equal(fs_read_file(path, &data, &len), 0);
	assert_null(memmem(data, len, "canary-7f3a", 11));
	free(data);

	file_hash(path, before);
	assert_int_equal(db_open(path, bad, 0, &db, &error), DB_ERR_BADKEY);
	assert_int_equal(db_open(path, NULL, 0, &db, &error), DB_ERR_BADKEY);
	file_hash(path, after);
	assert_memory_equal(before, after, 32);

	assert_int_equal(db_open(path, key, 0, &db, &error), DB_OK);
	{
		sqlite3_stmt *stmt = db_prepare(db, "SELECT v, w FROM t;");
		assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
		assert_string_equal((const char *)sqlite3_column_text(stmt, 0),
				    "canary-7f3a");
		assert_int_equal(sqlite3_column_int(stmt, 1), 7);
		sqlite3_finalize(stmt);
	}
	/* Migrating again is a no-op; a newer schema is refused. */
	assert_int_equal(db_migrate(db, migrations, 2, &error), 0);
	assert_int_equal(db_migrate(db, migrations, 1, &error), -1);
	db_close(&db);

	crypto_key_destroy(&key);
	crypto_key_destroy(&bad);
	free(path);
}

static void
test_plaintext_detection(void **state)
{
	char *path = xasprintf("%s/plain.sqlite", dir);
	sqlite3 *db;
	const char *error;

	assert_int_equal(db_open(path, NULL, DB_OPEN_CREATE, &db, &error), DB_OK);
	assert_int_equal(db_exec(db, "CREATE TABLE x(a);", &error), 0);
	db_close(&db);
	assert_true(db_file_is_plaintext(path));
	free(path);
}

/*
 * portable-cipher.sqlite was written by Sealpost before the page cipher's
 * ChaCha20 and Poly1305 moved to libsodium (with the amalgamation's own
 * portable code), with the key 00 01 .. 1f: 40 rows "row N " followed by
 * 1,000 characters "ab...", 17 pages. It must still open and read, and
 * pages written now must read back through the same code.
 */
static void
test_opens_database_written_by_portable_cipher(void **state)
{
	char *src = xasprintf("%s/portable-cipher.sqlite", DB_TEST_FIXTURES);
	char *path = xasprintf("%s/portable.sqlite", dir);
	struct crypto_key *key = crypto_key_create();
	sqlite3 *db;
	sqlite3_stmt *stmt;
	const char *error;
	char *data;
	size_t len;

	for (int i = 0; i < CRYPTO_KEY_BYTES; i++)
		key->bytes[i] = (unsigned char)i;
	assert_int_equal(fs_read_file(src, &data, &len), 0);
	assert_int_equal(fs_write_atomic(path, data, len, 0600), 0);
	free(data);

	if (db_open(path, key, 0, &db, &error) != DB_OK)
		fail_msg("open: %s", error);
	stmt = db_prepare(db, "SELECT count(*), sum(length(v)), "
			      "min(v LIKE 'row % abab%') FROM t;");
	assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(stmt, 0), 40);
	assert_int_equal(sqlite3_column_int(stmt, 2), 1);
	sqlite3_finalize(stmt);
	/* Rewrite every page with the current code, then read again. */
	assert_int_equal(db_exec(db, "UPDATE t SET v = upper(v); VACUUM;",
				 &error),
			 0);
	db_close(&db);
	if (db_open(path, key, 0, &db, &error) != DB_OK)
		fail_msg("reopen: %s", error);
	stmt = db_prepare(db, "SELECT count(*) FROM t WHERE v LIKE 'ROW % ABAB%';");
	assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(stmt, 0), 40);
	sqlite3_finalize(stmt);
	db_close(&db);
	assert_false(db_file_is_plaintext(path));
	crypto_key_destroy(&key);
	free(src);
	free(path);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_encrypted_roundtrip_and_wrong_key),
		cmocka_unit_test(test_plaintext_detection),
		cmocka_unit_test(test_opens_database_written_by_portable_cipher),
	};
	int ret;

	if (crypto_init() < 0 || mkdtemp(dir) == NULL)
		return 1;
	ret = cmocka_run_group_tests(tests, NULL, NULL);
	{
		char *cmd = xasprintf("rm -rf %s", dir);
		ret |= system(cmd);
		free(cmd);
	}
	return ret;
}
