/* The control-plane database: opening, schema, error messages. */
#include "account-private.h"

#include "conf/conf.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static _Thread_local char account_error_buf[512];
/* Handles open in the process: lets tests (and leak hunts) prove that
 * per-thread handles are closed when their threads end. */
static atomic_size_t account_db_handles;

/* Kinds are stored as words so the file reads plainly in a debugger;
 * local_lc is the compared form (see account_name). Credentials are NULL
 * until `alias password` runs. The creation log feeds alias_create_per_day. */
static const char *const account_migrations[] = {
	"CREATE TABLE owners ("
	"  id INTEGER PRIMARY KEY,"
	"  name TEXT NOT NULL UNIQUE,"
	"  quota_bytes INTEGER NOT NULL DEFAULT 0,"
	"  created INTEGER NOT NULL);"
	"CREATE TABLE domains ("
	"  id INTEGER PRIMARY KEY,"
	"  name TEXT NOT NULL UNIQUE,"
	"  owner_id INTEGER NOT NULL REFERENCES owners(id),"
	"  verify_token TEXT NOT NULL,"
	"  retention_days INTEGER NOT NULL,"
	"  quota_bytes INTEGER NOT NULL DEFAULT 0,"
	"  webhook_key BLOB NOT NULL,"
	"  created INTEGER NOT NULL);"
	"CREATE TABLE aliases ("
	"  id INTEGER PRIMARY KEY,"
	"  domain_id INTEGER NOT NULL REFERENCES domains(id) ON DELETE CASCADE,"
	"  kind TEXT NOT NULL CHECK (kind IN ('exact', 'catchall', 'regex')),"
	"  local TEXT NOT NULL,"
	"  local_lc TEXT NOT NULL,"
	"  enabled INTEGER NOT NULL DEFAULT 1,"
	"  quota_bytes INTEGER NOT NULL DEFAULT 0,"
	"  pgp_key TEXT,"
	"  mailbox_id TEXT NOT NULL UNIQUE,"
	"  salt BLOB,"
	"  verifier BLOB,"
	"  public_key BLOB,"
	"  wrapped_sk BLOB,"
	"  created INTEGER NOT NULL,"
	"  UNIQUE (domain_id, kind, local_lc));"
	"CREATE TABLE targets ("
	"  id INTEGER PRIMARY KEY,"
	"  alias_id INTEGER NOT NULL REFERENCES aliases(id) ON DELETE CASCADE,"
	"  kind TEXT NOT NULL CHECK (kind IN ('mailbox', 'forward', "
	"'webhook')),"
	"  value TEXT NOT NULL DEFAULT '',"
	"  position INTEGER NOT NULL);"
	"CREATE INDEX targets_alias ON targets(alias_id, position);"
	"CREATE TABLE alias_creations ("
	"  domain_id INTEGER NOT NULL REFERENCES domains(id) ON DELETE CASCADE,"
	"  created INTEGER NOT NULL);"
	"CREATE INDEX alias_creations_domain "
	"  ON alias_creations(domain_id, created);",
	/* 2: per-domain DKIM/ARC signing keys, one per algorithm, as PKCS#8
	 * PEM (the file is encrypted); dkim_ed25519 turns on the second
	 * (Ed25519) signature. */
	"ALTER TABLE domains ADD COLUMN dkim_ed25519 INTEGER NOT NULL "
	"  DEFAULT 0;"
	"CREATE TABLE dkim_keys ("
	"  id INTEGER PRIMARY KEY,"
	"  domain_id INTEGER NOT NULL REFERENCES domains(id) ON DELETE CASCADE,"
	"  algorithm TEXT NOT NULL CHECK (algorithm IN ('rsa', 'ed25519')),"
	"  selector TEXT NOT NULL,"
	"  private_key BLOB NOT NULL,"
	"  created INTEGER NOT NULL,"
	"  UNIQUE (domain_id, algorithm));",
	/* 3: whether a copy of the alias's submitted mail goes to its Sent
	 * folder (on by default). */
	"ALTER TABLE aliases ADD COLUMN save_sent INTEGER NOT NULL DEFAULT 1;",
	/* 4: a domain's own S3 bucket for its mailboxes' backups (NULL: the
	 * s3_bucket setting). */
	"ALTER TABLE domains ADD COLUMN backup_bucket TEXT;",
	/* 5: submission may use any alias of the domain's owner as sender
	 * (off: only the alias that logged in). */
	"ALTER TABLE domains ADD COLUMN submit_any_alias INTEGER NOT NULL "
	"  DEFAULT 0;",
};

const char *
account_error_printf(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(account_error_buf, sizeof(account_error_buf), fmt, ap);
	va_end(ap);
	return account_error_buf;
}

enum account_error
account_db_fail(struct account_db *db, const char *what, const char **error_r)
{
	const char *msg = account_error_printf("control plane: %s: %s", what,
					       sqlite3_errmsg(db->db));

	if (error_r != NULL)
		*error_r = msg;
	return ACCOUNT_ERR_TEMP;
}

static void
restrict_sidecar(const char *path, const char *suffix)
{
	char *side = xasprintf("%s%s", path, suffix);

	(void)chmod(side, 0600);
	free(side);
}

enum account_error
account_db_open(const char *data_dir, int flags, struct account_db **db_r,
		const char **error_r)
{
	char *key_path = xasprintf("%s/server.key", data_dir);
	char *path = xasprintf("%s/control.sqlite", data_dir);
	struct crypto_key *key = NULL;
	enum account_error ret = ACCOUNT_ERR_TEMP;
	bool create = (flags & ACCOUNT_OPEN_CREATE) != 0;
	sqlite3 *sq = NULL;
	const char *err;

	*db_r = NULL;
	if (crypto_init() < 0) {
		*error_r = "libsodium failed to initialise";
		goto out;
	}
	if (!create && !fs_exists(path)) {
		*error_r = account_error_printf(
			"no control plane in %s (run sealpost init)", data_dir);
		ret = ACCOUNT_ERR_NOTFOUND;
		goto out;
	}
	key = crypto_key_create();
	if (crypto_server_key_load(key_path, key) < 0) {
		*error_r = account_error_printf(
			"%s: %s", key_path,
			errno == ENOENT ? "missing (run sealpost init)"
					: strerror(errno));
		ret = errno == ENOENT ? ACCOUNT_ERR_NOTFOUND : ACCOUNT_ERR_TEMP;
		goto out;
	}
	switch (db_open(path, key, create ? DB_OPEN_CREATE : 0, &sq, &err)) {
	case DB_OK:
		break;
	case DB_ERR_BADKEY:
		*error_r = account_error_printf(
			"%s: does not open with server.key", path);
		goto out;
	case DB_ERR_NOTFOUND:
		*error_r = account_error_printf(
			"no control plane in %s (run sealpost init)", data_dir);
		ret = ACCOUNT_ERR_NOTFOUND;
		goto out;
	default:
		*error_r = account_error_printf("%s: %s", path, err);
		goto out;
	}
	if (db_migrate(sq, account_migrations,
		       SP_N_ELEMENTS(account_migrations), &err) < 0) {
		*error_r = account_error_printf("%s: %s", path, err);
		db_close(&sq);
		goto out;
	}
	if (create) {
		/* Older SQLite3MultipleCiphers releases could leave a new file
		 * in plaintext after a key-setup error; never accept that
		 * silently. */
		if (db_file_is_plaintext(path)) {
			*error_r =
				account_error_printf("%s: not encrypted", path);
			db_close(&sq);
			goto out;
		}
		/* Encrypted or not, only the server's user reads it. */
		(void)chmod(path, 0600);
		restrict_sidecar(path, "-wal");
		restrict_sidecar(path, "-shm");
	}
	*db_r = xcalloc(1, sizeof(**db_r));
	(*db_r)->db = sq;
	atomic_fetch_add(&account_db_handles, 1);
	ret = ACCOUNT_OK;
out:
	crypto_key_destroy(&key);
	free(key_path);
	free(path);
	return ret;
}

void
account_db_close(struct account_db **db)
{
	if (*db == NULL)
		return;
	db_close(&(*db)->db);
	free(*db);
	*db = NULL;
	atomic_fetch_sub(&account_db_handles, 1);
}

size_t
account_db_open_handles(void)
{
	return atomic_load(&account_db_handles);
}
