/* The queue database: opening, submission, inspection (see queue.h).
 *
 * queue.sqlite holds one row per message (its signed content until
 * redaction) and one per recipient (state, attempts, next attempt, the last
 * answer). The runner's due query reads the partial index on pending
 * recipients by next_attempt, so polling it every second costs nothing
 * when the queue is idle. */
#include "queue-private.h"

#include "conf/conf.h"
#include "crypto/crypto.h"
#include "mailauth/mailauth.h"

#include <errno.h>
#include <stdarg.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *const queue_migrations[] = {
	/* 1 */
	"CREATE TABLE message ("
	" id TEXT PRIMARY KEY,"
	" mail_from TEXT NOT NULL,"
	" domain TEXT NOT NULL,"
	" envid TEXT,"
	" ret INTEGER NOT NULL,"
	" eightbit INTEGER NOT NULL,"
	" smtputf8 INTEGER NOT NULL,"
	" is_dsn INTEGER NOT NULL,"
	" accepted INTEGER NOT NULL,"
	" retention_days INTEGER NOT NULL,"
	" final INTEGER NOT NULL DEFAULT 0,"
	" redact_at INTEGER NOT NULL DEFAULT 0,"
	" redacted INTEGER NOT NULL DEFAULT 0,"
	" size INTEGER NOT NULL,"
	" content BLOB NOT NULL);"
	"CREATE INDEX message_accepted ON message(accepted);"
	"CREATE INDEX message_redact ON message(redact_at)"
	" WHERE final > 0 AND redacted = 0;"
	"CREATE INDEX message_purge ON message(redacted) WHERE redacted > 0;"
	"CREATE TABLE recipient ("
	" message_id TEXT NOT NULL REFERENCES message(id) ON DELETE CASCADE,"
	" idx INTEGER NOT NULL,"
	" address TEXT NOT NULL,"
	" rcpt_domain TEXT NOT NULL,"
	" orcpt TEXT,"
	" notify INTEGER NOT NULL,"
	" state INTEGER NOT NULL DEFAULT 0,"
	" attempts INTEGER NOT NULL DEFAULT 0,"
	" next_attempt INTEGER NOT NULL,"
	" last_attempt INTEGER NOT NULL DEFAULT 0,"
	" last_code INTEGER NOT NULL DEFAULT 0,"
	" last_enhanced TEXT NOT NULL DEFAULT '',"
	" last_text TEXT NOT NULL DEFAULT '',"
	" last_action TEXT NOT NULL DEFAULT '',"
	" last_category TEXT NOT NULL DEFAULT '',"
	" remote TEXT NOT NULL DEFAULT '',"
	" delay_notified INTEGER NOT NULL DEFAULT 0,"
	" PRIMARY KEY (message_id, idx));"
	"CREATE INDEX recipient_due ON recipient(next_attempt)"
	" WHERE state = 0;",
};

static _Thread_local char queue_error_buf[512];

const char *
queue_error_printf(const char *fmt, ...)
{
	va_list args;

	va_start(args, fmt);
	vsnprintf(queue_error_buf, sizeof(queue_error_buf), fmt, args);
	va_end(args);
	return queue_error_buf;
}

const char *
queue_db_error(struct queue *q, const char *what)
{
	return queue_error_printf("queue: %s: %s", what, sqlite3_errmsg(q->db));
}

/* The queue's database key: a keyed BLAKE2b of a fixed context under the
 * server key, so queue.sqlite and control.sqlite never share a key. */
static void
queue_key_derive(const struct crypto_key *server_key, struct crypto_key *out)
{
	static const char context[] = "sealpost queue.sqlite key v1";

	crypto_keyed_hash(server_key, context, sizeof(context) - 1,
			  out->bytes);
}

static void
restrict_file(const char *path, const char *suffix)
{
	char *p = xasprintf("%s%s", path, suffix);

	(void)chmod(p, 0600);
	free(p);
}

int
queue_open(const char *data_dir, struct queue **queue_r, const char **error_r)
{
	char *key_path = xasprintf("%s/server.key", data_dir);
	char *path = xasprintf("%s/queue.sqlite", data_dir);
	struct crypto_key *server_key = NULL, *key = NULL;
	struct queue *q;
	sqlite3 *db = NULL;
	const char *err;
	int ret = -1;

	*queue_r = NULL;
	if (crypto_init() < 0) {
		*error_r = "libsodium failed to initialise";
		goto out;
	}
	server_key = crypto_key_create();
	if (crypto_server_key_load(key_path, server_key) < 0) {
		*error_r = queue_error_printf(
			"%s: %s", key_path,
			errno == ENOENT ? "missing (run sealpost init)"
					: strerror(errno));
		goto out;
	}
	key = crypto_key_create();
	queue_key_derive(server_key, key);
	switch (db_open(path, key, DB_OPEN_CREATE, &db, &err)) {
	case DB_OK:
		break;
	case DB_ERR_BADKEY:
		*error_r = queue_error_printf(
			"%s: does not open with server.key", path);
		goto out;
	default:
		*error_r = queue_error_printf("%s: %s", path, err);
		goto out;
	}
	if (db_migrate(db, queue_migrations, SP_N_ELEMENTS(queue_migrations),
		       &err) < 0) {
		*error_r = queue_error_printf("%s: %s", path, err);
		db_close(&db);
		goto out;
	}
	if (db_file_is_plaintext(path)) {
		*error_r = queue_error_printf("%s: not encrypted", path);
		db_close(&db);
		goto out;
	}
	restrict_file(path, "");
	restrict_file(path, "-wal");
	restrict_file(path, "-shm");

	q = xcalloc(1, sizeof(*q));
	q->data_dir = xstrdup(data_dir);
	q->db = db;
	pthread_mutex_init(&q->db_lock, NULL);
	pthread_mutex_init(&q->pool_lock, NULL);
	pthread_mutex_init(&q->run_lock, NULL);
	pthread_cond_init(&q->run_cond, NULL);
	q->keyring = account_keyring_create();
	*queue_r = q;
	ret = 0;
out:
	crypto_key_destroy(&server_key);
	crypto_key_destroy(&key);
	free(key_path);
	free(path);
	return ret;
}

void
queue_close(struct queue **queue)
{
	struct queue *q = *queue;

	if (q == NULL)
		return;
	queue_runner_stop(q);
	for (size_t i = 0; i < q->pool_count; i++)
		account_db_close(&q->pool[i]);
	free(q->pool);
	account_keyring_destroy(&q->keyring);
	db_close(&q->db);
	pthread_mutex_destroy(&q->db_lock);
	pthread_mutex_destroy(&q->pool_lock);
	pthread_mutex_destroy(&q->run_lock);
	pthread_cond_destroy(&q->run_cond);
	for (size_t i = 0; i < q->inflight_count; i++)
		free(q->inflight[i].domain);
	free(q->inflight);
	free(q->data_dir);
	free(q);
	*queue = NULL;
}

/* ---- the control plane ------------------------------------------------ */

struct account_db *
queue_account_get(struct queue *q, const char **error_r)
{
	struct account_db *db = NULL;

	pthread_mutex_lock(&q->pool_lock);
	if (q->pool_count > 0)
		db = q->pool[--q->pool_count];
	pthread_mutex_unlock(&q->pool_lock);
	if (db == NULL &&
	    account_db_open(q->data_dir, 0, &db, error_r) != ACCOUNT_OK)
		return NULL;
	return db;
}

void
queue_account_put(struct queue *q, struct account_db *db, bool ok)
{
	if (!ok) {
		account_db_close(&db);
		return;
	}
	pthread_mutex_lock(&q->pool_lock);
	if (q->pool_count == q->pool_cap) {
		q->pool_cap = q->pool_cap == 0 ? 4 : q->pool_cap * 2;
		q->pool = xrealloc(q->pool, q->pool_cap * sizeof(*q->pool));
	}
	q->pool[q->pool_count++] = db;
	pthread_mutex_unlock(&q->pool_lock);
}

int
queue_domain_retention(struct queue *q, const char *domain)
{
	struct account_domain *dom = NULL;
	struct account_db *db;
	const char *error;
	int ret, days = (int)conf_int("default_retention_days");

	db = queue_account_get(q, &error);
	if (db == NULL)
		return days;
	ret = account_domain_get(db, domain, &dom, &error);
	queue_account_put(q, db, ret >= 0);
	if (ret > 0) {
		days = dom->retention_days;
		account_domain_free(&dom);
	}
	return days < 0 ? 0 : days;
}

static int
sign_one(const char *domain, const struct account_dkim_key *key,
	 const void *msg, size_t len, struct sp_buf *out,
	 const char **error_r)
{
	struct mailauth_dkim_sign_params p;
	char *header;

	memset(&p, 0, sizeof(p));
	p.domain = domain;
	p.selector = key->selector;
	p.key = key->key;
	p.header_canon = MAILAUTH_CANON_RELAXED;
	p.body_canon = MAILAUTH_CANON_RELAXED;
	if (mailauth_dkim_sign(&p, msg, len, &header, error_r) < 0)
		return -1;
	sp_buf_append_str(out, header);
	free(header);
	return 0;
}

int
queue_dkim_sign(struct queue *q, const char *domain, const void *msg,
		size_t len, struct sp_buf *out, const char **error_r)
{
	struct account_keyring_ref *ref = account_keyring_lookup(q->keyring,
								 domain);
	const struct account_signing_keys *keys;
	int ret = 0;

	if (ref == NULL) {
		struct account_db *db = queue_account_get(q, error_r);

		if (db == NULL)
			return -1;
		ret = account_keyring_load(q->keyring, db, domain, &ref,
					   error_r);
		queue_account_put(q, db, ret >= 0);
		if (ret <= 0) {
			*error_r = queue_error_printf("no DKIM key: %s",
						      *error_r);
			return -1;
		}
	}
	keys = account_keyring_keys(ref);
	/* Prepended in this order, the RSA signature comes first: verifiers
	 * that check only one usually take the first. */
	ret = sign_one(domain, keys->rsa, msg, len, out, error_r);
	if (ret == 0 && keys->ed25519_enabled && keys->ed25519 != NULL)
		ret = sign_one(domain, keys->ed25519, msg, len, out, error_r);
	if (ret == 0)
		sp_buf_append(out, msg, len);
	account_keyring_release(q->keyring, &ref);
	return ret;
}

/* ---- submission -------------------------------------------------------- */

static char *
rcpt_domain(const char *address)
{
	const char *at = strrchr(address, '@');
	char *d = xstrdup(at != NULL ? at + 1 : "");

	str_lower(d);
	return d;
}

int
queue_insert_locked(struct queue *q, const struct queue_submission *sub,
		    bool is_dsn, int retention_days, const void *msg,
		    size_t len, char id_r[17], const char **error_r)
{
	time_t now = clock_now();
	sqlite3_stmt *st;
	int rc;

	random_hex_id(id_r, 8);
	st = db_prepare(q->db,
			"INSERT INTO message (id, mail_from, domain, envid, "
			"ret, eightbit, smtputf8, is_dsn, accepted, "
			"retention_days, size, content) "
			"VALUES (?,?,?,?,?,?,?,?,?,?,?,?)");
	sqlite3_bind_text(st, 1, id_r, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, sub->mail_from, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, sub->domain, -1, SQLITE_STATIC);
	if (sub->envid != NULL)
		sqlite3_bind_text(st, 4, sub->envid, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 5, (int)sub->ret);
	sqlite3_bind_int(st, 6, sub->eightbit);
	sqlite3_bind_int(st, 7, sub->smtputf8);
	sqlite3_bind_int(st, 8, is_dsn);
	sqlite3_bind_int64(st, 9, now);
	sqlite3_bind_int(st, 10, retention_days);
	sqlite3_bind_int64(st, 11, (sqlite3_int64)len);
	sqlite3_bind_blob64(st, 12, msg, len, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		*error_r = queue_db_error(q, "insert");
		return -1;
	}
	st = db_prepare(q->db,
			"INSERT INTO recipient (message_id, idx, address, "
			"rcpt_domain, orcpt, notify, next_attempt) "
			"VALUES (?,?,?,?,?,?,?)");
	for (size_t i = 0; i < sub->rcpt_count; i++) {
		const struct queue_recipient *r = &sub->rcpts[i];
		char *d = rcpt_domain(r->address);

		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
		sqlite3_bind_text(st, 1, id_r, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)i);
		sqlite3_bind_text(st, 3, r->address, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 4, d, -1, SQLITE_TRANSIENT);
		if (r->orcpt != NULL)
			sqlite3_bind_text(st, 5, r->orcpt, -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 6, (int)r->notify);
		sqlite3_bind_int64(st, 7, now);
		rc = sqlite3_step(st);
		free(d);
		if (rc != SQLITE_DONE) {
			sqlite3_finalize(st);
			*error_r = queue_db_error(q, "insert recipient");
			return -1;
		}
	}
	sqlite3_finalize(st);
	return 0;
}

int
queue_submit(struct queue *q, const struct queue_submission *sub,
	     char id_r[17], char **signed_r, size_t *signed_len_r,
	     const char **error_r)
{
	struct queue_submission norm = *sub;
	struct sp_buf out;
	char *domain;
	int retention, ret = -1;

	if (signed_r != NULL)
		*signed_r = NULL;
	if (signed_len_r != NULL)
		*signed_len_r = 0;
	if (sub->rcpt_count == 0) {
		*error_r = "queue: no recipients";
		return -1;
	}
	domain = account_domain_normalize(sub->domain);
	if (domain == NULL) {
		*error_r = "queue: invalid sending domain";
		return -1;
	}
	norm.domain = domain;
	sp_buf_init(&out);
	if (queue_dkim_sign(q, domain, sub->msg, sub->len, &out, error_r) < 0)
		goto done;
	retention = queue_domain_retention(q, domain);

	pthread_mutex_lock(&q->db_lock);
	if (db_begin_durable(q->db, error_r) < 0) {
		pthread_mutex_unlock(&q->db_lock);
		goto done;
	}
	if (queue_insert_locked(q, &norm, false, retention, out.data,
				out.len, id_r, error_r) < 0 ||
	    db_commit(q->db, error_r) < 0) {
		db_rollback(q->db);
		pthread_mutex_unlock(&q->db_lock);
		goto done;
	}
	pthread_mutex_unlock(&q->db_lock);
	log_info(id_r, "queue: accepted, %zu recipients, %zu bytes",
		 sub->rcpt_count, out.len);
	queue_runner_wake(q);
	if (signed_r != NULL) {
		size_t n;

		*signed_r = sp_buf_steal(&out, &n);
		if (signed_len_r != NULL)
			*signed_len_r = n;
	}
	ret = 0;
done:
	if (out.data != NULL)
		sodium_memzero(out.data, out.cap);
	sp_buf_deinit(&out);
	free(domain);
	return ret;
}

/* ---- inspection and control ------------------------------------------- */

static char *
col_strdup(sqlite3_stmt *st, int col)
{
	const unsigned char *s = sqlite3_column_text(st, col);

	return xstrdup(s != NULL ? (const char *)s : "");
}

void
queue_message_info_free(struct queue_message_info *info)
{
	if (info == NULL)
		return;
	free(info->mail_from);
	free(info->domain);
	for (size_t i = 0; i < info->rcpt_count; i++) {
		struct queue_rcpt_info *r = &info->rcpts[i];

		free(r->address);
		free(r->last_enhanced);
		free(r->last_text);
		free(r->last_action);
		free(r->last_category);
	}
	free(info->rcpts);
	memset(info, 0, sizeof(*info));
}

void
queue_message_list_free(struct queue_message_info **list, size_t count)
{
	if (*list == NULL)
		return;
	for (size_t i = 0; i < count; i++)
		queue_message_info_free(&(*list)[i]);
	free(*list);
	*list = NULL;
}

#define MESSAGE_COLUMNS                                                        \
	"id, mail_from, domain, accepted, final, redacted, size, is_dsn"

static void
info_from_row(sqlite3_stmt *st, struct queue_message_info *info)
{
	memset(info, 0, sizeof(*info));
	str_copy(info->id, (const char *)sqlite3_column_text(st, 0),
		 sizeof(info->id));
	info->mail_from = col_strdup(st, 1);
	info->domain = col_strdup(st, 2);
	info->accepted = (time_t)sqlite3_column_int64(st, 3);
	info->final = (time_t)sqlite3_column_int64(st, 4);
	info->redacted = (time_t)sqlite3_column_int64(st, 5);
	info->size = (uint64_t)sqlite3_column_int64(st, 6);
	info->is_dsn = sqlite3_column_int(st, 7) != 0;
}

static int
load_rcpts_locked(struct queue *q, struct queue_message_info *info,
		  const char **error_r)
{
	sqlite3_stmt *st = db_prepare(
		q->db, "SELECT address, state, attempts, next_attempt, "
		       "last_code, last_enhanced, last_text, last_action, "
		       "last_category, delay_notified FROM recipient "
		       "WHERE message_id = ? ORDER BY idx");
	int rc;

	sqlite3_bind_text(st, 1, info->id, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct queue_rcpt_info *r;

		info->rcpts = xrealloc(info->rcpts, (info->rcpt_count + 1) *
							    sizeof(*info->rcpts));
		r = &info->rcpts[info->rcpt_count++];
		r->address = col_strdup(st, 0);
		r->state = (enum queue_rcpt_state)sqlite3_column_int(st, 1);
		r->attempts = (unsigned)sqlite3_column_int(st, 2);
		r->next_attempt = r->state == QUEUE_RCPT_PENDING
					  ? (time_t)sqlite3_column_int64(st, 3)
					  : 0;
		r->last_code = sqlite3_column_int(st, 4);
		r->last_enhanced = col_strdup(st, 5);
		r->last_text = col_strdup(st, 6);
		r->last_action = col_strdup(st, 7);
		r->last_category = col_strdup(st, 8);
		r->delay_notified = sqlite3_column_int(st, 9) != 0;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		*error_r = queue_db_error(q, "recipients");
		return -1;
	}
	return 0;
}

int
queue_list(struct queue *q, struct queue_message_info **list_r,
	   size_t *count_r, const char **error_r)
{
	struct queue_message_info *list = NULL;
	size_t count = 0;
	sqlite3_stmt *st;
	int rc, ret = 0;

	pthread_mutex_lock(&q->db_lock);
	st = db_prepare(q->db, "SELECT " MESSAGE_COLUMNS " FROM message "
			       "ORDER BY accepted, rowid");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		list = xrealloc(list, (count + 1) * sizeof(*list));
		info_from_row(st, &list[count++]);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		*error_r = queue_db_error(q, "list");
		ret = -1;
	}
	for (size_t i = 0; i < count && ret == 0; i++)
		ret = load_rcpts_locked(q, &list[i], error_r);
	pthread_mutex_unlock(&q->db_lock);
	if (ret < 0) {
		for (size_t i = 0; i < count; i++)
			queue_message_info_free(&list[i]);
		free(list);
		return -1;
	}
	*list_r = list;
	*count_r = count;
	return 0;
}

int
queue_show(struct queue *q, const char *id, struct queue_message_info *info_r,
	   const char **error_r)
{
	sqlite3_stmt *st;
	int rc, ret;

	memset(info_r, 0, sizeof(*info_r));
	pthread_mutex_lock(&q->db_lock);
	st = db_prepare(q->db, "SELECT " MESSAGE_COLUMNS
			       " FROM message WHERE id = ?");
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		info_from_row(st, info_r);
		ret = 1;
	} else if (rc == SQLITE_DONE) {
		ret = 0;
	} else {
		*error_r = queue_db_error(q, "show");
		ret = -1;
	}
	sqlite3_finalize(st);
	if (ret == 1 && load_rcpts_locked(q, info_r, error_r) < 0) {
		queue_message_info_free(info_r);
		ret = -1;
	}
	pthread_mutex_unlock(&q->db_lock);
	return ret;
}

int
queue_content(struct queue *q, const char *id, char **msg_r, size_t *len_r,
	      const char **error_r)
{
	sqlite3_stmt *st;
	int rc, ret;

	*msg_r = NULL;
	*len_r = 0;
	pthread_mutex_lock(&q->db_lock);
	st = db_prepare(q->db, "SELECT content FROM message WHERE id = ?");
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		size_t n = (size_t)sqlite3_column_bytes(st, 0);

		*msg_r = xmalloc(n + 1);
		if (n > 0)
			memcpy(*msg_r, sqlite3_column_blob(st, 0), n);
		(*msg_r)[n] = '\0';
		*len_r = n;
		ret = 1;
	} else if (rc == SQLITE_DONE) {
		ret = 0;
	} else {
		*error_r = queue_db_error(q, "content");
		ret = -1;
	}
	sqlite3_finalize(st);
	pthread_mutex_unlock(&q->db_lock);
	return ret;
}

/* Runs one statement binding id; 1 when a message row `id` exists. */
static int
id_statement(struct queue *q, const char *id, const char *sql,
	     const char **error_r)
{
	sqlite3_stmt *st;
	int rc, exists;

	pthread_mutex_lock(&q->db_lock);
	st = db_prepare(q->db, "SELECT 1 FROM message WHERE id = ?");
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		*error_r = queue_db_error(q, "look-up");
		pthread_mutex_unlock(&q->db_lock);
		return -1;
	}
	exists = rc == SQLITE_ROW;
	if (exists) {
		if (db_begin_durable(q->db, error_r) < 0) {
			pthread_mutex_unlock(&q->db_lock);
			return -1;
		}
		st = db_prepare(q->db, sql);
		if (sqlite3_bind_parameter_count(st) >= 2) {
			sqlite3_bind_int64(st, 1, clock_now());
			sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
		} else {
			sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
		}
		rc = sqlite3_step(st);
		sqlite3_finalize(st);
		if (rc != SQLITE_DONE || db_commit(q->db, error_r) < 0) {
			if (rc != SQLITE_DONE)
				*error_r = queue_db_error(q, "update");
			db_rollback(q->db);
			pthread_mutex_unlock(&q->db_lock);
			return -1;
		}
	}
	pthread_mutex_unlock(&q->db_lock);
	return exists;
}

int
queue_retry(struct queue *q, const char *id, const char **error_r)
{
	int ret = id_statement(q, id,
			       "UPDATE recipient SET next_attempt = ? "
			       "WHERE message_id = ? AND state = 0",
			       error_r);

	if (ret > 0) {
		log_info(id, "queue: retry requested");
		queue_runner_wake(q);
	}
	return ret;
}

int
queue_drop(struct queue *q, const char *id, const char **error_r)
{
	int ret = id_statement(q, id, "DELETE FROM message WHERE id = ?",
			       error_r);

	if (ret > 0)
		log_info(id, "queue: dropped");
	return ret;
}
