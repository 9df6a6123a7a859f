/* Per-domain DKIM/ARC signing keys (see account.h). */
#include "account-private.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *
algorithm_name(enum mailauth_key_type type)
{
	return type == MAILAUTH_KEY_ED25519 ? "ed25519" : "rsa";
}

char *
account_dkim_selector(enum mailauth_key_type type, time_t when)
{
	struct tm tm;

	gmtime_r(&when, &tm);
	return xasprintf("sp%04d%02d%s", tm.tm_year + 1900, tm.tm_mon + 1,
			 type == MAILAUTH_KEY_ED25519 ? "e" : "");
}

void
account_dkim_key_free(struct account_dkim_key **key)
{
	if (*key == NULL)
		return;
	free((*key)->selector);
	mailauth_key_destroy(&(*key)->key);
	free(*key);
	*key = NULL;
}

void
account_dkim_key_list_free(struct account_dkim_key ***keys, size_t count)
{
	if (*keys == NULL)
		return;
	for (size_t i = 0; i < count; i++)
		account_dkim_key_free(&(*keys)[i]);
	free(*keys);
	*keys = NULL;
}

/* The selector of the domain's current key of one type, or NULL. */
static char *
current_selector(struct account_db *db, int64_t domain_id,
		 enum mailauth_key_type type)
{
	sqlite3_stmt *stmt = db_prepare(
		db->db, "SELECT selector FROM dkim_keys WHERE domain_id = ?1 "
			"AND algorithm = ?2;");
	char *selector = NULL;

	sqlite3_bind_int64(stmt, 1, domain_id);
	sqlite3_bind_text(stmt, 2, algorithm_name(type), -1, SQLITE_STATIC);
	if (sqlite3_step(stmt) == SQLITE_ROW)
		selector = xstrdup((const char *)sqlite3_column_text(stmt, 0));
	sqlite3_finalize(stmt);
	return selector;
}

/* A fresh key of one type replaces (or becomes) the domain's. */
static enum account_error
store_new_key(struct account_db *db, int64_t domain_id,
	      enum mailauth_key_type type, const char **error_r)
{
	struct mailauth_key *key;
	char *pem = NULL, *selector, *old;
	size_t pem_len;
	time_t now = clock_now();
	sqlite3_stmt *stmt;
	const char *err;
	int rc;

	key = mailauth_key_generate(type, &err);
	if (key == NULL) {
		*error_r = account_error_printf("DKIM key: %s", err);
		return ACCOUNT_ERR_TEMP;
	}
	rc = mailauth_key_to_pem(key, &pem, &pem_len, &err);
	mailauth_key_destroy(&key);
	if (rc < 0) {
		*error_r = account_error_printf("DKIM key: %s", err);
		return ACCOUNT_ERR_TEMP;
	}
	/* A rotation within the month must not reuse the selector whose
	 * record receivers may still hold for mail in flight. */
	selector = account_dkim_selector(type, now);
	old = current_selector(db, domain_id, type);
	if (old != NULL && strcmp(old, selector) == 0) {
		free(selector);
		selector = xasprintf("%s-2", old);
	} else if (old != NULL &&
		   strncmp(old, selector, strlen(selector)) == 0 &&
		   old[strlen(selector)] == '-') {
		int n = atoi(old + strlen(selector) + 1);
		char *next = xasprintf("%s-%d", selector, n + 1);

		free(selector);
		selector = next;
	}
	free(old);
	stmt = db_prepare(db->db,
			  "INSERT INTO dkim_keys(domain_id, algorithm, "
			  "selector, private_key, created) "
			  "VALUES(?1, ?2, ?3, ?4, ?5) "
			  "ON CONFLICT(domain_id, algorithm) DO UPDATE SET "
			  "selector = excluded.selector, "
			  "private_key = excluded.private_key, "
			  "created = excluded.created;");
	sqlite3_bind_int64(stmt, 1, domain_id);
	sqlite3_bind_text(stmt, 2, algorithm_name(type), -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 3, selector, -1, SQLITE_STATIC);
	sqlite3_bind_blob(stmt, 4, pem, (int)pem_len, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 5, (int64_t)now);
	rc = sqlite3_step(stmt);
	sqlite3_finalize(stmt);
	mailauth_pem_free(&pem);
	free(selector);
	if (rc != SQLITE_DONE)
		return account_db_fail(db, "store DKIM key", error_r);
	return ACCOUNT_OK;
}

enum account_error
account_dkim_generate_in_tx(struct account_db *db, int64_t domain_id,
			    bool rotate, const char **error_r)
{
	static const enum mailauth_key_type types[] = {
		MAILAUTH_KEY_RSA,
		MAILAUTH_KEY_ED25519,
	};

	for (size_t i = 0; i < SP_N_ELEMENTS(types); i++) {
		enum account_error err;
		char *old = rotate ? NULL
				   : current_selector(db, domain_id, types[i]);

		if (old != NULL) {
			free(old);
			continue;
		}
		err = store_new_key(db, domain_id, types[i], error_r);
		if (err != ACCOUNT_OK)
			return err;
	}
	return ACCOUNT_OK;
}

enum account_error
account_dkim_generate(struct account_db *db, const char *domain, bool rotate,
		      const char **error_r)
{
	struct account_domain *d = NULL;
	enum account_error err;
	int rc;

	if (db_begin(db->db, error_r) < 0)
		return ACCOUNT_ERR_TEMP;
	rc = account_domain_get(db, domain, &d, error_r);
	if (rc <= 0) {
		db_rollback(db->db);
		if (rc == 0)
			*error_r = account_error_printf("no domain %s", domain);
		return rc == 0 ? ACCOUNT_ERR_NOTFOUND : ACCOUNT_ERR_TEMP;
	}
	err = account_dkim_generate_in_tx(db, d->id, rotate, error_r);
	account_domain_free(&d);
	if (err != ACCOUNT_OK) {
		db_rollback(db->db);
		return err;
	}
	if (db_commit(db->db, error_r) < 0) {
		db_rollback(db->db);
		return ACCOUNT_ERR_TEMP;
	}
	return ACCOUNT_OK;
}

/* Reads the keys of `domain` (ASCII or Unicode), of one type or all
 * (type < 0). */
static enum account_error
keys_load(struct account_db *db, const char *domain, int type,
	  struct account_dkim_key ***keys_r, size_t *count_r,
	  const char **error_r)
{
	char *ascii = account_domain_normalize(domain);
	struct account_dkim_key **list = NULL;
	size_t count = 0;
	sqlite3_stmt *stmt;
	int rc;

	*keys_r = NULL;
	*count_r = 0;
	if (ascii == NULL) {
		*error_r = account_error_printf("no domain %s", domain);
		return ACCOUNT_ERR_NOTFOUND;
	}
	stmt = db_prepare(db->db,
			  "SELECT k.algorithm, k.selector, k.private_key, "
			  "k.created FROM domains d LEFT JOIN dkim_keys k ON "
			  "k.domain_id = d.id AND (?2 IS NULL OR "
			  "k.algorithm = ?2) WHERE d.name = ?1 "
			  "ORDER BY k.algorithm = 'ed25519';");
	sqlite3_bind_text(stmt, 1, ascii, -1, SQLITE_STATIC);
	if (type >= 0)
		sqlite3_bind_text(stmt, 2,
				  algorithm_name((enum mailauth_key_type)type),
				  -1, SQLITE_STATIC);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_DONE) {
		sqlite3_finalize(stmt);
		*error_r = account_error_printf("no domain %s", ascii);
		free(ascii);
		return ACCOUNT_ERR_NOTFOUND;
	}
	for (; rc == SQLITE_ROW; rc = sqlite3_step(stmt)) {
		struct account_dkim_key *k;
		const char *pem = sqlite3_column_blob(stmt, 2);
		const char *err;

		if (sqlite3_column_type(stmt, 0) == SQLITE_NULL)
			continue; /* the domain, without keys */
		k = xcalloc(1, sizeof(*k));
		k->type = strcmp((const char *)sqlite3_column_text(stmt, 0),
				 "ed25519") == 0
				  ? MAILAUTH_KEY_ED25519
				  : MAILAUTH_KEY_RSA;
		k->selector =
			xstrdup((const char *)sqlite3_column_text(stmt, 1));
		k->created = (time_t)sqlite3_column_int64(stmt, 3);
		k->key = pem == NULL ? NULL
				     : mailauth_key_load_pem(
					       pem,
					       (size_t)sqlite3_column_bytes(
						       stmt, 2),
					       &err);
		if (k->key == NULL) {
			account_dkim_key_free(&k);
			sqlite3_finalize(stmt);
			account_dkim_key_list_free(&list, count);
			*error_r = account_error_printf(
				"DKIM key of %s does not load", ascii);
			free(ascii);
			return ACCOUNT_ERR_TEMP;
		}
		list = xrealloc(list, (count + 1) * sizeof(*list));
		list[count++] = k;
	}
	sqlite3_finalize(stmt);
	if (rc != SQLITE_DONE) {
		account_dkim_key_list_free(&list, count);
		free(ascii);
		return account_db_fail(db, "DKIM keys", error_r);
	}
	free(ascii);
	*keys_r = list;
	*count_r = count;
	return ACCOUNT_OK;
}

int
account_dkim_key_get(struct account_db *db, const char *domain,
		     enum mailauth_key_type type,
		     struct account_dkim_key **key_r, const char **error_r)
{
	struct account_dkim_key **list;
	size_t count;
	enum account_error err;

	*key_r = NULL;
	err = keys_load(db, domain, (int)type, &list, &count, error_r);
	if (err == ACCOUNT_ERR_NOTFOUND)
		return 0;
	if (err != ACCOUNT_OK)
		return -1;
	if (count == 0) {
		free(list);
		return 0;
	}
	*key_r = list[0];
	list[0] = NULL;
	account_dkim_key_list_free(&list, count);
	return 1;
}

enum account_error
account_dkim_key_list(struct account_db *db, const char *domain,
		      struct account_dkim_key ***keys_r, size_t *count_r,
		      const char **error_r)
{
	return keys_load(db, domain, -1, keys_r, count_r, error_r);
}

enum account_error
account_domain_set_dkim_ed25519(struct account_db *db, const char *domain,
				bool enabled, const char **error_r)
{
	char *ascii = account_domain_normalize(domain);
	sqlite3_stmt *stmt;
	int rc;

	if (ascii == NULL) {
		*error_r = account_error_printf("no domain %s", domain);
		return ACCOUNT_ERR_NOTFOUND;
	}
	stmt = db_prepare(db->db, "UPDATE domains SET dkim_ed25519 = ?1 "
				  "WHERE name = ?2;");
	sqlite3_bind_int(stmt, 1, enabled ? 1 : 0);
	sqlite3_bind_text(stmt, 2, ascii, -1, SQLITE_STATIC);
	rc = sqlite3_step(stmt);
	sqlite3_finalize(stmt);
	if (rc != SQLITE_DONE) {
		free(ascii);
		return account_db_fail(db, "DKIM option", error_r);
	}
	if (sqlite3_changes(db->db) == 0) {
		*error_r = account_error_printf("no domain %s", ascii);
		free(ascii);
		return ACCOUNT_ERR_NOTFOUND;
	}
	free(ascii);
	return ACCOUNT_OK;
}
