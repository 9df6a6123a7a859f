/* Login and the login key cache (SPEC "Login cost").
 *
 * The cache maps a keyed hash of (canonical address, password) to the
 * Argon2id master key that password produced. The hash key is random per
 * process, so the table says nothing about passwords to anyone who reads
 * memory without that key, and an entry can only be found by someone who
 * knows the password. Entries are added only after the verifier matched, so
 * a wrong password never finds or creates one. A hit is still checked
 * against the verifier in the database: a password changed by another
 * process (the CLI) makes the entry stale, and it is dropped. */
#include "account-private.h"

#include "conf/conf.h"

#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define HASH_BYTES 32

struct cache_entry {
	unsigned char id[HASH_BYTES];	 /* H(address, password) */
	unsigned char alias[HASH_BYTES]; /* H(address) */
	struct crypto_key *master;
	unsigned int sessions; /* open sessions that logged in with it */
	time_t expires;	       /* when sessions == 0 */
	struct cache_entry *next;
};

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct crypto_key *cache_hash_key;
static struct cache_entry *cache_head;
static size_t cache_entries;
static uint64_t cache_hits, cache_misses;

/* A fixed salt for the Argon2id run that a login for an unknown alias does,
 * so it costs what a real one costs. */
static const unsigned char dummy_salt[CRYPTO_SALT_BYTES] = "sealpost-dummy!";

/* Under cache_lock. */
static void
cache_hash(const char *canonical, const char *password, bool with_password,
	   unsigned char out[HASH_BYTES])
{
	size_t alen = strlen(canonical) + 1;
	size_t plen = with_password ? strlen(password) : 0;
	unsigned char *buf = sodium_malloc(alen + plen + 1);

	if (buf == NULL)
		core_panic("sodium_malloc failed");
	if (cache_hash_key == NULL) {
		cache_hash_key = crypto_key_create();
		crypto_key_random(cache_hash_key);
	}
	/* The NUL after the address keeps ("a", "bc") apart from ("ab",
	 * "c"); addresses have no NUL. */
	memcpy(buf, canonical, alen);
	if (plen > 0)
		memcpy(buf + alen, password, plen);
	crypto_keyed_hash(cache_hash_key, buf, alen + plen, out);
	sodium_free(buf);
}

static void
entry_free(struct cache_entry *e)
{
	crypto_key_destroy(&e->master);
	sodium_memzero(e, sizeof(*e));
	free(e);
}

/* Under cache_lock. Unlinks and wipes every entry for which drop()
 * says so. */
static void
cache_remove_if(bool (*drop)(const struct cache_entry *, const void *),
		const void *arg)
{
	struct cache_entry **p = &cache_head;

	while (*p != NULL) {
		struct cache_entry *e = *p;

		if (drop(e, arg)) {
			*p = e->next;
			entry_free(e);
			cache_entries--;
		} else {
			p = &e->next;
		}
	}
}

static bool
entry_expired(const struct cache_entry *e, const void *arg)
{
	const time_t *now = arg;

	return e->sessions == 0 && e->expires <= *now;
}

static bool
entry_of_alias(const struct cache_entry *e, const void *arg)
{
	return sodium_memcmp(e->alias, arg, HASH_BYTES) == 0;
}

static bool
entry_with_id(const struct cache_entry *e, const void *arg)
{
	return sodium_memcmp(e->id, arg, HASH_BYTES) == 0;
}

static bool
entry_any(const struct cache_entry *e, const void *arg)
{
	return true;
}

static struct cache_entry *
cache_find(const unsigned char id[HASH_BYTES])
{
	for (struct cache_entry *e = cache_head; e != NULL; e = e->next) {
		if (sodium_memcmp(e->id, id, HASH_BYTES) == 0)
			return e;
	}
	return NULL;
}

void
account_cache_expire(void)
{
	time_t now = clock_now();

	pthread_mutex_lock(&cache_lock);
	cache_remove_if(entry_expired, &now);
	pthread_mutex_unlock(&cache_lock);
}

void
account_cache_forget(const char *address)
{
	char *canonical = account_login_canonical(address);
	unsigned char alias[HASH_BYTES];

	if (canonical == NULL)
		return;
	pthread_mutex_lock(&cache_lock);
	cache_hash(canonical, NULL, false, alias);
	cache_remove_if(entry_of_alias, alias);
	pthread_mutex_unlock(&cache_lock);
	free(canonical);
}

void
account_cache_clear(void)
{
	pthread_mutex_lock(&cache_lock);
	cache_remove_if(entry_any, NULL);
	crypto_key_destroy(&cache_hash_key);
	cache_hits = cache_misses = 0;
	pthread_mutex_unlock(&cache_lock);
}

void
account_login_release(const char *address)
{
	char *canonical = account_login_canonical(address);
	unsigned char alias[HASH_BYTES];
	long long seconds = conf_int("login_key_cache_seconds");
	time_t now = clock_now();

	if (canonical == NULL)
		return;
	pthread_mutex_lock(&cache_lock);
	cache_hash(canonical, NULL, false, alias);
	for (struct cache_entry *e = cache_head; e != NULL; e = e->next) {
		if (e->sessions > 0 &&
		    sodium_memcmp(e->alias, alias, HASH_BYTES) == 0) {
			if (--e->sessions == 0)
				e->expires = now + (seconds > 0 ? seconds : 0);
			break;
		}
	}
	cache_remove_if(entry_expired, &now);
	pthread_mutex_unlock(&cache_lock);
	free(canonical);
}

void
account_cache_get_stats(struct account_cache_stats *stats_r)
{
	pthread_mutex_lock(&cache_lock);
	stats_r->entries = cache_entries;
	stats_r->hits = cache_hits;
	stats_r->misses = cache_misses;
	pthread_mutex_unlock(&cache_lock);
}

/* A copy of the cached master key for `id`, or NULL. */
static struct crypto_key *
cache_take(const unsigned char id[HASH_BYTES])
{
	struct crypto_key *master = NULL;
	struct cache_entry *e;
	time_t now = clock_now();

	pthread_mutex_lock(&cache_lock);
	cache_remove_if(entry_expired, &now);
	e = cache_find(id);
	if (e != NULL)
		master = crypto_key_dup(e->master);
	pthread_mutex_unlock(&cache_lock);
	return master;
}

/* Counts a session on the entry for `id`, adding it when missing. */
static void
cache_put(const unsigned char id[HASH_BYTES],
	  const unsigned char alias[HASH_BYTES],
	  const struct crypto_key *master, bool hit)
{
	struct cache_entry *e;

	pthread_mutex_lock(&cache_lock);
	if (hit)
		cache_hits++;
	else
		cache_misses++;
	e = cache_find(id);
	if (e == NULL) {
		e = xcalloc(1, sizeof(*e));
		memcpy(e->id, id, HASH_BYTES);
		memcpy(e->alias, alias, HASH_BYTES);
		e->master = crypto_key_dup(master);
		e->next = cache_head;
		cache_head = e;
		cache_entries++;
	}
	e->sessions++;
	pthread_mutex_unlock(&cache_lock);
}

static void
cache_drop(const unsigned char id[HASH_BYTES])
{
	pthread_mutex_lock(&cache_lock);
	cache_remove_if(entry_with_id, id);
	pthread_mutex_unlock(&cache_lock);
}

/* The stored login data of an enabled exact alias. 1/0/-1. */
struct login_row {
	int64_t alias_id;
	char mailbox_id[ACCOUNT_MAILBOX_ID_BUF];
	char *address;
	struct account_credentials creds;
};

static int
login_row_read(struct account_db *db, const char *canonical,
	       struct login_row *row_r, const char **error_r)
{
	const char *at = strrchr(canonical, '@');
	char *local = xstrndup(canonical, (size_t)(at - canonical));
	sqlite3_stmt *stmt = db_prepare(
		db->db,
		"SELECT a.id, a.mailbox_id, a.local, d.name, a.salt, "
		"a.verifier, a.public_key, a.wrapped_sk FROM aliases a "
		"JOIN domains d ON d.id = a.domain_id WHERE d.name = ?1 AND "
		"a.kind = 'exact' AND a.local_lc = ?2 AND a.enabled = 1 AND "
		"a.verifier IS NOT NULL;");
	int rc, ret = 0;
	int sk_len;

	sqlite3_bind_text(stmt, 1, at + 1, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 2, local, -1, SQLITE_STATIC);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		sk_len = sqlite3_column_bytes(stmt, 7);
		if (sqlite3_column_bytes(stmt, 4) == CRYPTO_SALT_BYTES &&
		    sqlite3_column_bytes(stmt, 5) == CRYPTO_VERIFIER_BYTES &&
		    sqlite3_column_bytes(stmt, 6) == CRYPTO_PUBLIC_KEY_BYTES &&
		    sk_len == CRYPTO_SECRET_KEY_BYTES + CRYPTO_WRAP_OVERHEAD) {
			row_r->alias_id = sqlite3_column_int64(stmt, 0);
			str_copy(row_r->mailbox_id,
				 (const char *)sqlite3_column_text(stmt, 1),
				 sizeof(row_r->mailbox_id));
			row_r->address = xasprintf(
				"%s@%s",
				(const char *)sqlite3_column_text(stmt, 2),
				(const char *)sqlite3_column_text(stmt, 3));
			memcpy(row_r->creds.salt, sqlite3_column_blob(stmt, 4),
			       CRYPTO_SALT_BYTES);
			memcpy(row_r->creds.verifier,
			       sqlite3_column_blob(stmt, 5),
			       CRYPTO_VERIFIER_BYTES);
			memcpy(row_r->creds.public_key,
			       sqlite3_column_blob(stmt, 6),
			       CRYPTO_PUBLIC_KEY_BYTES);
			memcpy(row_r->creds.wrapped_sk,
			       sqlite3_column_blob(stmt, 7), (size_t)sk_len);
			row_r->creds.wrapped_sk_len = (size_t)sk_len;
			ret = 1;
		}
	} else if (rc != SQLITE_DONE) {
		account_db_fail(db, "login", error_r);
		ret = -1;
	}
	sqlite3_finalize(stmt);
	free(local);
	return ret;
}

void
account_session_keys_clear(struct account_session_keys *keys)
{
	crypto_key_destroy(&keys->mailbox_key);
	crypto_key_destroy(&keys->secret_key);
	free(keys->address);
	sodium_memzero(keys, sizeof(*keys));
}

enum account_error
account_login(struct account_db *db, const char *address, const char *password,
	      struct account_session_keys *keys_r, const char **error_r)
{
	char *canonical = account_login_canonical(address);
	struct login_row row = {0};
	struct crypto_login login = {0};
	struct crypto_key *master = NULL, *sk = NULL;
	unsigned char id[HASH_BYTES], alias[HASH_BYTES];
	long long seconds = conf_int("login_key_cache_seconds");
	enum account_error ret;
	bool hit = false;
	int rc;

	memset(keys_r, 0, sizeof(*keys_r));
	rc = canonical == NULL ? 0
			       : login_row_read(db, canonical, &row, error_r);
	if (rc < 0) {
		ret = ACCOUNT_ERR_TEMP;
		goto out;
	}
	if (rc == 0) {
		/* Same work, same answer as a wrong password: response time
		 * must not tell which aliases exist. */
		master = crypto_key_create();
		(void)crypto_master_derive(password, strlen(password),
					   dummy_salt, master);
		*error_r = "authentication failed";
		ret = ACCOUNT_ERR_AUTH;
		goto out;
	}
	if (seconds > 0) {
		pthread_mutex_lock(&cache_lock);
		cache_hash(canonical, password, true, id);
		cache_hash(canonical, NULL, false, alias);
		pthread_mutex_unlock(&cache_lock);
		master = cache_take(id);
		hit = master != NULL;
	}
	for (;;) {
		if (master == NULL) {
			master = crypto_key_create();
			if (crypto_master_derive(password, strlen(password),
						 row.creds.salt, master) < 0) {
				*error_r = "Argon2id could not get its memory";
				ret = ACCOUNT_ERR_TEMP;
				goto out;
			}
		}
		crypto_login_from_master(master, &login);
		if (crypto_verifier_equal(login.verifier, row.creds.verifier))
			break;
		crypto_login_clear(&login);
		crypto_key_destroy(&master);
		if (!hit) {
			*error_r = "authentication failed";
			ret = ACCOUNT_ERR_AUTH;
			goto out;
		}
		/* The password was changed elsewhere since this entry was
		 * made: forget it and derive afresh with the new salt. */
		cache_drop(id);
		hit = false;
	}
	sk = crypto_key_create();
	if (crypto_unwrap(login.wrap_key, row.creds.wrapped_sk,
			  row.creds.wrapped_sk_len, sk->bytes) < 0) {
		/* The verifier matched, so the wrapped key is damaged. */
		*error_r = "the alias's wrapped key does not open";
		ret = ACCOUNT_ERR_TEMP;
		goto out;
	}
	if (seconds > 0)
		cache_put(id, alias, master, hit);
	keys_r->mailbox_key = login.mailbox_key;
	login.mailbox_key = NULL;
	keys_r->secret_key = sk;
	sk = NULL;
	memcpy(keys_r->public_key, row.creds.public_key,
	       sizeof(keys_r->public_key));
	memcpy(keys_r->mailbox_id, row.mailbox_id, sizeof(row.mailbox_id));
	keys_r->alias_id = row.alias_id;
	keys_r->address = row.address;
	row.address = NULL;
	ret = ACCOUNT_OK;
out:
	crypto_login_clear(&login);
	crypto_key_destroy(&master);
	crypto_key_destroy(&sk);
	sodium_memzero(&row.creds, sizeof(row.creds));
	sodium_memzero(id, sizeof(id));
	free(row.address);
	free(canonical);
	return ret;
}
