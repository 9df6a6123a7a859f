/* Aliases, their targets and credentials. */
#include "account-private.h"

#include "conf/conf.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define PGP_KEY_MAX (64 * 1024)
#define PGP_BEGIN "-----BEGIN PGP PUBLIC KEY BLOCK-----"
#define PGP_END "-----END PGP PUBLIC KEY BLOCK-----"
#define MAILBOX_ID_BYTES 12
#define DAY_SECONDS 86400

static enum account_alias_kind
kind_from_text(const char *s)
{
	if (strcmp(s, "catchall") == 0)
		return ACCOUNT_ALIAS_CATCHALL;
	if (strcmp(s, "regex") == 0)
		return ACCOUNT_ALIAS_REGEX;
	return ACCOUNT_ALIAS_EXACT;
}

static enum account_target_kind
target_kind_from_text(const char *s)
{
	if (strcmp(s, "forward") == 0)
		return ACCOUNT_TARGET_FORWARD;
	if (strcmp(s, "webhook") == 0)
		return ACCOUNT_TARGET_WEBHOOK;
	return ACCOUNT_TARGET_MAILBOX;
}

void
account_alias_free(struct account_alias **alias)
{
	struct account_alias *a = *alias;

	if (a == NULL)
		return;
	free(a->local);
	free(a->address);
	free(a->pgp_key);
	for (size_t i = 0; i < a->target_count; i++)
		free(a->targets[i].value);
	free(a->targets);
	account_domain_free(&a->domain);
	free(a->plus_tag);
	free(a);
	*alias = NULL;
}

void
account_alias_list_free(struct account_alias ***aliases, size_t count)
{
	if (*aliases == NULL)
		return;
	for (size_t i = 0; i < count; i++)
		account_alias_free(&(*aliases)[i]);
	free(*aliases);
	*aliases = NULL;
}

void
account_alias_change_init(struct account_alias_change *change)
{
	memset(change, 0, sizeof(*change));
	change->mailbox = -1;
	change->enabled = -1;
	change->quota_bytes = -1;
	change->save_sent = -1;
}

static int
load_targets(struct account_db *db, struct account_alias *a,
	     const char **error_r)
{
	sqlite3_stmt *stmt = db_prepare(
		db->db, "SELECT kind, value FROM targets WHERE alias_id = ?1 "
			"ORDER BY position, id;");
	int rc;

	sqlite3_bind_int64(stmt, 1, a->id);
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		struct account_target *t;

		a->targets = xrealloc(a->targets, (a->target_count + 1) *
							  sizeof(*a->targets));
		t = &a->targets[a->target_count++];
		t->kind = target_kind_from_text(
			(const char *)sqlite3_column_text(stmt, 0));
		t->value = xstrdup((const char *)sqlite3_column_text(stmt, 1));
		if (t->kind == ACCOUNT_TARGET_MAILBOX)
			a->has_mailbox = true;
	}
	sqlite3_finalize(stmt);
	if (rc != SQLITE_DONE) {
		account_db_fail(db, "targets", error_r);
		return -1;
	}
	return 0;
}

int
account_alias_load(struct account_db *db, int64_t id,
		   struct account_alias **alias_r, const char **error_r)
{
	sqlite3_stmt *stmt = db_prepare(
		db->db, "SELECT kind, local, enabled, quota_bytes, pgp_key, "
			"mailbox_id, verifier IS NOT NULL, created, domain_id, "
			"save_sent FROM aliases WHERE id = ?1;");
	struct account_alias *a;
	int64_t domain_id;
	int rc;

	*alias_r = NULL;
	sqlite3_bind_int64(stmt, 1, id);
	rc = sqlite3_step(stmt);
	if (rc != SQLITE_ROW) {
		sqlite3_finalize(stmt);
		if (rc == SQLITE_DONE)
			return 0;
		account_db_fail(db, "alias", error_r);
		return -1;
	}
	a = xcalloc(1, sizeof(*a));
	a->id = id;
	a->kind = kind_from_text((const char *)sqlite3_column_text(stmt, 0));
	a->local = xstrdup((const char *)sqlite3_column_text(stmt, 1));
	a->enabled = sqlite3_column_int(stmt, 2) != 0;
	a->quota_bytes = sqlite3_column_int64(stmt, 3);
	if (sqlite3_column_type(stmt, 4) != SQLITE_NULL)
		a->pgp_key =
			xstrdup((const char *)sqlite3_column_text(stmt, 4));
	str_copy(a->mailbox_id, (const char *)sqlite3_column_text(stmt, 5),
		 sizeof(a->mailbox_id));
	a->has_credentials = sqlite3_column_int(stmt, 6) != 0;
	a->created = (time_t)sqlite3_column_int64(stmt, 7);
	domain_id = sqlite3_column_int64(stmt, 8);
	a->save_sent = sqlite3_column_int(stmt, 9) != 0;
	sqlite3_finalize(stmt);

	rc = account_domain_get_id(db, domain_id, &a->domain, error_r);
	if (rc == 0) {
		/* The foreign key makes this impossible short of damage. */
		account_db_fail(db, "alias without domain", error_r);
		rc = -1;
	}
	if (rc < 0 || load_targets(db, a, error_r) < 0) {
		account_alias_free(&a);
		return -1;
	}
	a->address = account_name_format(a->kind, a->local, a->domain->name);
	*alias_r = a;
	return 1;
}

int
account_alias_find(struct account_db *db, int64_t domain_id,
		   enum account_alias_kind kind, const char *local_lc,
		   int64_t *id_r, const char **error_r)
{
	sqlite3_stmt *stmt = db_prepare(
		db->db, "SELECT id FROM aliases WHERE domain_id = ?1 AND "
			"kind = ?2 AND local_lc = ?3;");
	int rc, ret;

	sqlite3_bind_int64(stmt, 1, domain_id);
	sqlite3_bind_text(stmt, 2, account_alias_kind_name(kind), -1,
			  SQLITE_STATIC);
	sqlite3_bind_text(stmt, 3, local_lc, -1, SQLITE_STATIC);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		*id_r = sqlite3_column_int64(stmt, 0);
		ret = 1;
	} else if (rc == SQLITE_DONE) {
		ret = 0;
	} else {
		account_db_fail(db, "alias", error_r);
		ret = -1;
	}
	sqlite3_finalize(stmt);
	return ret;
}

/* Resolves a written form to its domain and row id. 1/0/-1; on 0 *error_r
 * says which of the two is missing and *missing_domain_r tells the caller. */
static int
alias_resolve(struct account_db *db, const char *address,
	      struct account_name *name, struct account_domain **domain_r,
	      int64_t *id_r, enum account_error *error_code_r,
	      const char **error_r)
{
	int rc;

	*domain_r = NULL;
	if (account_name_parse(address, name, error_r) < 0) {
		*error_code_r = ACCOUNT_ERR_INVALID;
		return -1;
	}
	rc = account_domain_get_ascii(db, name->domain, domain_r, error_r);
	if (rc == 0) {
		*error_r = account_error_printf(
			"no domain %s (add it with sealpost domain add)",
			name->domain);
		*error_code_r = ACCOUNT_ERR_NOTFOUND;
		return 0;
	}
	if (rc < 0) {
		*error_code_r = ACCOUNT_ERR_TEMP;
		return -1;
	}
	rc = account_alias_find(db, (*domain_r)->id, name->kind, name->local_lc,
				id_r, error_r);
	if (rc == 0) {
		*error_r = account_error_printf("no alias %s", address);
		*error_code_r = ACCOUNT_ERR_NOTFOUND;
	} else if (rc < 0) {
		*error_code_r = ACCOUNT_ERR_TEMP;
	}
	return rc;
}

int
account_alias_get(struct account_db *db, const char *address,
		  struct account_alias **alias_r, const char **error_r)
{
	struct account_name name;
	struct account_domain *domain;
	enum account_error code;
	int64_t id;
	int rc;

	*alias_r = NULL;
	rc = alias_resolve(db, address, &name, &domain, &id, &code, error_r);
	account_domain_free(&domain);
	account_name_deinit(&name);
	if (rc < 0)
		return code == ACCOUNT_ERR_INVALID ? 0 : -1;
	if (rc == 0)
		return 0;
	return account_alias_load(db, id, alias_r, error_r);
}

static bool
pgp_key_is_valid(const char *key)
{
	size_t len = strlen(key);

	if (len > PGP_KEY_MAX || strstr(key, PGP_BEGIN) == NULL ||
	    strstr(key, PGP_END) == NULL)
		return false;
	for (const char *p = key; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;

		/* Armor is 7-bit text. */
		if (c >= 0x80 ||
		    (c < 0x20 && c != '\n' && c != '\r' && c != '\t'))
			return false;
	}
	return true;
}

/* Forward destination in stored form: local part as given, ASCII domain.
 * NULL when invalid. */
static char *
forward_normalize(const char *address)
{
	const char *at = strrchr(address, '@');
	char *local, *domain, *out = NULL;

	if (at == NULL)
		return NULL;
	local = xstrndup(address, (size_t)(at - address));
	domain = account_domain_normalize(at + 1);
	if (domain != NULL && account_local_part_is_valid(local))
		out = xasprintf("%s@%s", local, domain);
	free(local);
	free(domain);
	return out;
}

static int
target_exists(struct account_db *db, int64_t alias_id, const char *kind,
	      const char *value, bool *exists_r, const char **error_r)
{
	sqlite3_stmt *stmt = db_prepare(
		db->db, "SELECT 1 FROM targets WHERE alias_id = ?1 AND "
			"kind = ?2 AND value = ?3 COLLATE NOCASE;");
	int rc;

	sqlite3_bind_int64(stmt, 1, alias_id);
	sqlite3_bind_text(stmt, 2, kind, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 3, value, -1, SQLITE_STATIC);
	rc = sqlite3_step(stmt);
	sqlite3_finalize(stmt);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		account_db_fail(db, "targets", error_r);
		return -1;
	}
	*exists_r = rc == SQLITE_ROW;
	return 0;
}

static int
target_add(struct account_db *db, int64_t alias_id, const char *kind,
	   const char *value, const char **error_r)
{
	sqlite3_stmt *stmt;
	bool exists;
	int rc;

	if (target_exists(db, alias_id, kind, value, &exists, error_r) < 0)
		return -1;
	if (exists)
		return 0;
	stmt = db_prepare(
		db->db, "INSERT INTO targets(alias_id, kind, value, position) "
			"VALUES(?1, ?2, ?3, (SELECT coalesce(max(position), "
			"0) + 1 FROM targets WHERE alias_id = ?1));");
	sqlite3_bind_int64(stmt, 1, alias_id);
	sqlite3_bind_text(stmt, 2, kind, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 3, value, -1, SQLITE_STATIC);
	rc = sqlite3_step(stmt);
	sqlite3_finalize(stmt);
	if (rc != SQLITE_DONE) {
		account_db_fail(db, "add target", error_r);
		return -1;
	}
	return 0;
}

static int
exec_bound(struct account_db *db, const char *sql, int64_t id,
	   const char **error_r)
{
	sqlite3_stmt *stmt = db_prepare(db->db, sql);
	int rc;

	sqlite3_bind_int64(stmt, 1, id);
	rc = sqlite3_step(stmt);
	sqlite3_finalize(stmt);
	if (rc != SQLITE_DONE) {
		account_db_fail(db, "update", error_r);
		return -1;
	}
	return 0;
}

/* Checks everything in a change that needs no database, so a bad argument
 * is reported before anything is written. */
static enum account_error
change_check(const struct account_alias_change *change, const char **error_r)
{
	for (size_t i = 0; i < change->forward_count; i++) {
		if (!account_address_is_valid(change->forwards[i])) {
			*error_r = account_error_printf(
				"'%s' is not a valid forward address",
				change->forwards[i]);
			return ACCOUNT_ERR_INVALID;
		}
	}
	for (size_t i = 0; i < change->webhook_count; i++) {
		if (!account_webhook_url_is_valid(change->webhooks[i])) {
			*error_r = account_error_printf(
				"'%s' is not a valid webhook URL (http:// or "
				"https://)",
				change->webhooks[i]);
			return ACCOUNT_ERR_INVALID;
		}
	}
	if (change->pgp_key != NULL && change->pgp_key[0] != '\0' &&
	    !pgp_key_is_valid(change->pgp_key)) {
		*error_r =
			"the OpenPGP key must be an ASCII-armored public key "
			"block (at most 64 KiB)";
		return ACCOUNT_ERR_INVALID;
	}
	if (change->quota_bytes < -1) {
		*error_r = "a quota cannot be negative";
		return ACCOUNT_ERR_INVALID;
	}
	return ACCOUNT_OK;
}

/* Runs `sql` binding ?1 to the alias id and ?2 to `value`. 0 or -1. */
static int
alias_set_number(struct account_db *db, int64_t id, const char *sql,
		 int64_t value, const char **error_r)
{
	sqlite3_stmt *stmt = db_prepare(db->db, sql);
	int rc;

	sqlite3_bind_int64(stmt, 1, id);
	sqlite3_bind_int64(stmt, 2, value);
	rc = sqlite3_step(stmt);
	sqlite3_finalize(stmt);
	if (rc != SQLITE_DONE) {
		account_db_fail(db, "update alias", error_r);
		return -1;
	}
	return 0;
}

/* Applies a checked change to alias `id` inside the caller's transaction. */
static enum account_error
change_apply(struct account_db *db, int64_t id, const char *self,
	     const struct account_alias_change *change, const char **error_r)
{
	sqlite3_stmt *stmt;
	int rc, count;

	if (change->clear_targets &&
	    exec_bound(db, "DELETE FROM targets WHERE alias_id = ?1;", id,
		       error_r) < 0)
		return ACCOUNT_ERR_TEMP;
	if (change->mailbox == 0 &&
	    exec_bound(db,
		       "DELETE FROM targets WHERE alias_id = ?1 AND "
		       "kind = 'mailbox';",
		       id, error_r) < 0)
		return ACCOUNT_ERR_TEMP;
	if (change->mailbox == 1 &&
	    target_add(db, id, "mailbox", "", error_r) < 0)
		return ACCOUNT_ERR_TEMP;
	for (size_t i = 0; i < change->forward_count; i++) {
		char *fwd = forward_normalize(change->forwards[i]);

		SP_ASSERT(fwd != NULL); /* change_check() passed */
		if (strcasecmp(fwd, self) == 0) {
			*error_r = account_error_printf(
				"%s cannot forward to itself", self);
			free(fwd);
			return ACCOUNT_ERR_INVALID;
		}
		rc = target_add(db, id, "forward", fwd, error_r);
		free(fwd);
		if (rc < 0)
			return ACCOUNT_ERR_TEMP;
	}
	for (size_t i = 0; i < change->webhook_count; i++) {
		if (target_add(db, id, "webhook", change->webhooks[i],
			       error_r) < 0)
			return ACCOUNT_ERR_TEMP;
	}
	if (change->enabled >= 0 &&
	    alias_set_number(db, id,
			     "UPDATE aliases SET enabled = ?2 WHERE id = ?1;",
			     change->enabled != 0, error_r) < 0)
		return ACCOUNT_ERR_TEMP;
	if (change->save_sent >= 0 &&
	    alias_set_number(db, id,
			     "UPDATE aliases SET save_sent = ?2 WHERE id = ?1;",
			     change->save_sent != 0, error_r) < 0)
		return ACCOUNT_ERR_TEMP;
	if (change->quota_bytes >= 0 &&
	    alias_set_number(db, id,
			     "UPDATE aliases SET quota_bytes = ?2 WHERE id = ?1;",
			     change->quota_bytes, error_r) < 0)
		return ACCOUNT_ERR_TEMP;
	if (change->pgp_key != NULL) {
		stmt = db_prepare(db->db, "UPDATE aliases SET pgp_key = ?2 "
					  "WHERE id = ?1;");
		sqlite3_bind_int64(stmt, 1, id);
		if (change->pgp_key[0] != '\0')
			sqlite3_bind_text(stmt, 2, change->pgp_key, -1,
					  SQLITE_STATIC);
		else
			sqlite3_bind_null(stmt, 2);
		rc = sqlite3_step(stmt);
		sqlite3_finalize(stmt);
		if (rc != SQLITE_DONE)
			return account_db_fail(db, "update alias", error_r);
	}
	/* An enabled alias without a target would accept mail and drop it. */
	stmt = db_prepare(db->db,
			  "SELECT count(*) FROM targets WHERE alias_id = ?1;");
	sqlite3_bind_int64(stmt, 1, id);
	rc = sqlite3_step(stmt);
	count = rc == SQLITE_ROW ? sqlite3_column_int(stmt, 0) : -1;
	sqlite3_finalize(stmt);
	if (count < 0)
		return account_db_fail(db, "targets", error_r);
	if (count == 0) {
		*error_r = "an alias needs at least one target (--mailbox, "
			   "--forward or --webhook)";
		return ACCOUNT_ERR_INVALID;
	}
	return ACCOUNT_OK;
}

/* Counts the domain's creations in the last 24 hours against the limit,
 * and logs this one; inside the caller's transaction. */
static enum account_error
creation_rate_check(struct account_db *db, const struct account_domain *d,
		    const char **error_r)
{
	long long limit = conf_int("alias_create_per_day");
	int64_t now = (int64_t)clock_now();
	sqlite3_stmt *stmt;
	long long count;
	int rc;

	stmt = db_prepare(db->db,
			  "SELECT count(*) FROM alias_creations WHERE "
			  "domain_id = ?1 AND created > ?2 AND created <= ?3;");
	sqlite3_bind_int64(stmt, 1, d->id);
	sqlite3_bind_int64(stmt, 2, now - DAY_SECONDS);
	sqlite3_bind_int64(stmt, 3, now);
	rc = sqlite3_step(stmt);
	count = rc == SQLITE_ROW ? sqlite3_column_int64(stmt, 0) : -1;
	sqlite3_finalize(stmt);
	if (count < 0)
		return account_db_fail(db, "alias rate", error_r);
	if (count >= limit) {
		*error_r = account_error_printf(
			"domain %s has reached its limit of %lld new aliases "
			"in 24 hours (setting alias_create_per_day); try "
			"again later",
			d->name, limit);
		return ACCOUNT_ERR_LIMIT;
	}
	stmt = db_prepare(db->db, "INSERT INTO alias_creations(domain_id, "
				  "created) VALUES(?1, ?2);");
	sqlite3_bind_int64(stmt, 1, d->id);
	sqlite3_bind_int64(stmt, 2, now);
	rc = sqlite3_step(stmt);
	sqlite3_finalize(stmt);
	if (rc != SQLITE_DONE)
		return account_db_fail(db, "alias rate", error_r);
	/* Old rows are of no further use. */
	stmt = db_prepare(db->db, "DELETE FROM alias_creations WHERE "
				  "domain_id = ?1 AND created < ?2;");
	sqlite3_bind_int64(stmt, 1, d->id);
	sqlite3_bind_int64(stmt, 2, now - 2 * DAY_SECONDS);
	rc = sqlite3_step(stmt);
	sqlite3_finalize(stmt);
	if (rc != SQLITE_DONE)
		return account_db_fail(db, "alias rate", error_r);
	return ACCOUNT_OK;
}

enum account_error
account_alias_add(struct account_db *db, const char *address,
		  const struct account_alias_change *change,
		  const char **error_r)
{
	struct account_name name;
	struct account_domain *domain = NULL;
	char mailbox_id[ACCOUNT_MAILBOX_ID_BUF];
	char *written = NULL;
	sqlite3_stmt *stmt;
	enum account_error ret;
	int64_t id;
	int rc;

	if (account_name_parse(address, &name, error_r) < 0)
		return ACCOUNT_ERR_INVALID;
	if (name.kind == ACCOUNT_ALIAS_REGEX &&
	    account_regex_check(name.local, error_r) < 0) {
		account_name_deinit(&name);
		return ACCOUNT_ERR_INVALID;
	}
	if ((ret = change_check(change, error_r)) != ACCOUNT_OK) {
		account_name_deinit(&name);
		return ret;
	}
	written = account_name_format(name.kind, name.local, name.domain);
	if (db_begin(db->db, error_r) < 0) {
		ret = ACCOUNT_ERR_TEMP;
		goto out;
	}
	rc = account_domain_get_ascii(db, name.domain, &domain, error_r);
	if (rc <= 0) {
		if (rc == 0)
			*error_r = account_error_printf(
				"no domain %s (add it with sealpost domain "
				"add)",
				name.domain);
		ret = rc == 0 ? ACCOUNT_ERR_NOTFOUND : ACCOUNT_ERR_TEMP;
		goto fail;
	}
	rc = account_alias_find(db, domain->id, name.kind, name.local_lc, &id,
				error_r);
	if (rc != 0) {
		if (rc > 0)
			*error_r = account_error_printf(
				"alias %s exists already", written);
		ret = rc > 0 ? ACCOUNT_ERR_EXISTS : ACCOUNT_ERR_TEMP;
		goto fail;
	}
	if ((ret = creation_rate_check(db, domain, error_r)) != ACCOUNT_OK)
		goto fail;
	random_hex_id(mailbox_id, MAILBOX_ID_BYTES);
	stmt = db_prepare(db->db, "INSERT INTO aliases(domain_id, kind, local, "
				  "local_lc, mailbox_id, created) "
				  "VALUES(?1, ?2, ?3, ?4, ?5, ?6);");
	sqlite3_bind_int64(stmt, 1, domain->id);
	sqlite3_bind_text(stmt, 2, account_alias_kind_name(name.kind), -1,
			  SQLITE_STATIC);
	sqlite3_bind_text(stmt, 3, name.local, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 4, name.local_lc, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 5, mailbox_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 6, (int64_t)clock_now());
	rc = sqlite3_step(stmt);
	sqlite3_finalize(stmt);
	if (rc != SQLITE_DONE) {
		ret = account_db_fail(db, "add alias", error_r);
		goto fail;
	}
	id = sqlite3_last_insert_rowid(db->db);
	if ((ret = change_apply(db, id, written, change, error_r)) !=
	    ACCOUNT_OK)
		goto fail;
	if (db_commit(db->db, error_r) < 0) {
		ret = ACCOUNT_ERR_TEMP;
		goto fail;
	}
	ret = ACCOUNT_OK;
	goto out;
fail:
	db_rollback(db->db);
out:
	free(written);
	account_domain_free(&domain);
	account_name_deinit(&name);
	return ret;
}

enum account_error
account_alias_set(struct account_db *db, const char *address,
		  const struct account_alias_change *change,
		  const char **error_r)
{
	struct account_name name;
	struct account_domain *domain = NULL;
	enum account_error ret;
	char *written = NULL;
	int64_t id;
	int rc;

	if ((ret = change_check(change, error_r)) != ACCOUNT_OK)
		return ret;
	if (db_begin(db->db, error_r) < 0)
		return ACCOUNT_ERR_TEMP;
	rc = alias_resolve(db, address, &name, &domain, &id, &ret, error_r);
	if (rc <= 0)
		goto fail;
	written = account_name_format(name.kind, name.local, name.domain);
	if ((ret = change_apply(db, id, written, change, error_r)) !=
	    ACCOUNT_OK)
		goto fail;
	if (db_commit(db->db, error_r) < 0) {
		ret = ACCOUNT_ERR_TEMP;
		goto fail;
	}
	ret = ACCOUNT_OK;
	goto out;
fail:
	db_rollback(db->db);
out:
	free(written);
	account_domain_free(&domain);
	account_name_deinit(&name);
	return ret;
}

enum account_error
account_alias_list(struct account_db *db, const char *domain,
		   struct account_alias ***aliases_r, size_t *count_r,
		   const char **error_r)
{
	struct account_alias **list = NULL;
	size_t count = 0;
	sqlite3_stmt *stmt;
	int64_t *ids = NULL;
	size_t nids = 0;
	int rc;

	*aliases_r = NULL;
	*count_r = 0;
	if (domain != NULL) {
		struct account_domain *d = NULL;

		rc = account_domain_get(db, domain, &d, error_r);
		if (rc <= 0) {
			if (rc == 0)
				*error_r = account_error_printf("no domain %s",
								domain);
			return rc == 0 ? ACCOUNT_ERR_NOTFOUND
				       : ACCOUNT_ERR_TEMP;
		}
		stmt = db_prepare(db->db, "SELECT a.id FROM aliases a WHERE "
					  "a.domain_id = ?1 ORDER BY a.kind, "
					  "a.local_lc, a.id;");
		sqlite3_bind_int64(stmt, 1, d->id);
		account_domain_free(&d);
	} else {
		stmt = db_prepare(db->db,
				  "SELECT a.id FROM aliases a JOIN domains d "
				  "ON d.id = a.domain_id ORDER BY d.name, "
				  "a.kind, a.local_lc, a.id;");
	}
	/* Ids first: loading each alias runs its own statements. */
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		ids = xrealloc(ids, (nids + 1) * sizeof(*ids));
		ids[nids++] = sqlite3_column_int64(stmt, 0);
	}
	sqlite3_finalize(stmt);
	if (rc != SQLITE_DONE) {
		free(ids);
		return account_db_fail(db, "list aliases", error_r);
	}
	list = xcalloc(nids + 1, sizeof(*list));
	for (size_t i = 0; i < nids; i++) {
		rc = account_alias_load(db, ids[i], &list[count], error_r);
		if (rc < 0) {
			account_alias_list_free(&list, count);
			free(ids);
			return ACCOUNT_ERR_TEMP;
		}
		if (rc > 0)
			count++;
	}
	free(ids);
	*aliases_r = list;
	*count_r = count;
	return ACCOUNT_OK;
}

enum account_error
account_alias_remove(struct account_db *db, const char *address,
		     account_mailbox_removed_func *removed, void *context,
		     const char **error_r)
{
	struct account_name name;
	struct account_domain *domain = NULL;
	struct account_alias *alias = NULL;
	enum account_error ret;
	int64_t id;
	int rc;

	if (db_begin(db->db, error_r) < 0)
		return ACCOUNT_ERR_TEMP;
	rc = alias_resolve(db, address, &name, &domain, &id, &ret, error_r);
	if (rc <= 0)
		goto fail;
	if (account_alias_load(db, id, &alias, error_r) <= 0) {
		ret = ACCOUNT_ERR_TEMP;
		goto fail;
	}
	if (exec_bound(db, "DELETE FROM aliases WHERE id = ?1;", id, error_r) <
		    0 ||
	    db_commit(db->db, error_r) < 0) {
		ret = ACCOUNT_ERR_TEMP;
		goto fail;
	}
	if (removed != NULL)
		removed(alias->mailbox_id, context);
	if (alias->kind == ACCOUNT_ALIAS_EXACT)
		account_cache_forget(alias->address);
	ret = ACCOUNT_OK;
	goto out;
fail:
	db_rollback(db->db);
out:
	account_alias_free(&alias);
	account_domain_free(&domain);
	account_name_deinit(&name);
	return ret;
}

/* ---- Credentials ---- */

enum account_error
account_alias_set_credentials(struct account_db *db, const char *address,
			      const struct account_credentials *creds,
			      const unsigned char *expect_verifier,
			      const char **error_r)
{
	struct account_name name;
	struct account_domain *domain = NULL;
	enum account_error ret;
	sqlite3_stmt *stmt;
	int64_t id;
	int rc;

	if (creds->wrapped_sk_len == 0 ||
	    creds->wrapped_sk_len > sizeof(creds->wrapped_sk)) {
		*error_r = "wrapped secret key has a wrong length";
		return ACCOUNT_ERR_INVALID;
	}
	/* Durable: the caller reports success (and the store may already
	 * have re-keyed the mailbox) once this returns. */
	if (db_begin_durable(db->db, error_r) < 0)
		return ACCOUNT_ERR_TEMP;
	rc = alias_resolve(db, address, &name, &domain, &id, &ret, error_r);
	if (rc <= 0)
		goto fail;
	if (name.kind != ACCOUNT_ALIAS_EXACT) {
		*error_r = "only an exact alias (local@domain) can have a "
			   "password";
		ret = ACCOUNT_ERR_INVALID;
		goto fail;
	}
	if (expect_verifier != NULL) {
		bool same = false;

		stmt = db_prepare(
			db->db, "SELECT verifier FROM aliases WHERE id = ?1;");
		sqlite3_bind_int64(stmt, 1, id);
		if (sqlite3_step(stmt) == SQLITE_ROW &&
		    sqlite3_column_bytes(stmt, 0) == CRYPTO_VERIFIER_BYTES)
			same = crypto_verifier_equal(
				sqlite3_column_blob(stmt, 0), expect_verifier);
		sqlite3_finalize(stmt);
		if (!same) {
			*error_r = "the password changed meanwhile";
			ret = ACCOUNT_ERR_AUTH;
			goto fail;
		}
	}
	stmt = db_prepare(db->db,
			  "UPDATE aliases SET salt = ?2, verifier = ?3, "
			  "public_key = ?4, wrapped_sk = ?5 WHERE id = ?1;");
	sqlite3_bind_int64(stmt, 1, id);
	sqlite3_bind_blob(stmt, 2, creds->salt, sizeof(creds->salt),
			  SQLITE_STATIC);
	sqlite3_bind_blob(stmt, 3, creds->verifier, sizeof(creds->verifier),
			  SQLITE_STATIC);
	sqlite3_bind_blob(stmt, 4, creds->public_key, sizeof(creds->public_key),
			  SQLITE_STATIC);
	sqlite3_bind_blob(stmt, 5, creds->wrapped_sk,
			  (int)creds->wrapped_sk_len, SQLITE_STATIC);
	rc = sqlite3_step(stmt);
	sqlite3_finalize(stmt);
	if (rc != SQLITE_DONE) {
		ret = account_db_fail(db, "credentials", error_r);
		goto fail;
	}
	if (db_commit(db->db, error_r) < 0) {
		ret = ACCOUNT_ERR_TEMP;
		goto fail;
	}
	account_cache_forget(address);
	ret = ACCOUNT_OK;
	goto out;
fail:
	db_rollback(db->db);
out:
	account_domain_free(&domain);
	account_name_deinit(&name);
	return ret;
}

int
account_alias_get_credentials(struct account_db *db, const char *address,
			      struct account_credentials *creds_r,
			      const char **error_r)
{
	struct account_name name;
	struct account_domain *domain = NULL;
	enum account_error code;
	sqlite3_stmt *stmt;
	int64_t id;
	int rc, ret;

	memset(creds_r, 0, sizeof(*creds_r));
	rc = alias_resolve(db, address, &name, &domain, &id, &code, error_r);
	account_domain_free(&domain);
	account_name_deinit(&name);
	if (rc <= 0)
		return rc < 0 && code != ACCOUNT_ERR_INVALID ? -1 : 0;
	stmt = db_prepare(db->db, "SELECT salt, verifier, public_key, "
				  "wrapped_sk FROM aliases WHERE id = ?1;");
	sqlite3_bind_int64(stmt, 1, id);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		int sk_len = sqlite3_column_bytes(stmt, 3);

		ret = 0;
		if (sqlite3_column_bytes(stmt, 0) == CRYPTO_SALT_BYTES &&
		    sqlite3_column_bytes(stmt, 1) == CRYPTO_VERIFIER_BYTES &&
		    sqlite3_column_bytes(stmt, 2) == CRYPTO_PUBLIC_KEY_BYTES &&
		    sk_len > 0 &&
		    (size_t)sk_len <= sizeof(creds_r->wrapped_sk)) {
			memcpy(creds_r->salt, sqlite3_column_blob(stmt, 0),
			       CRYPTO_SALT_BYTES);
			memcpy(creds_r->verifier, sqlite3_column_blob(stmt, 1),
			       CRYPTO_VERIFIER_BYTES);
			memcpy(creds_r->public_key,
			       sqlite3_column_blob(stmt, 2),
			       CRYPTO_PUBLIC_KEY_BYTES);
			memcpy(creds_r->wrapped_sk,
			       sqlite3_column_blob(stmt, 3), (size_t)sk_len);
			creds_r->wrapped_sk_len = (size_t)sk_len;
			ret = 1;
		}
	} else if (rc == SQLITE_DONE) {
		ret = 0;
	} else {
		account_db_fail(db, "credentials", error_r);
		ret = -1;
	}
	sqlite3_finalize(stmt);
	return ret;
}

uint64_t
account_alias_storage_limit(struct account_db *db, const char *address)
{
	struct account_alias *alias = NULL;
	const char *error;
	uint64_t limit = 0;

	if (account_alias_get(db, address, &alias, &error) != 1)
		return 0;
	if (alias->quota_bytes > 0)
		limit = (uint64_t)alias->quota_bytes;
	if (alias->domain != NULL && alias->domain->quota_bytes > 0 &&
	    (limit == 0 || (uint64_t)alias->domain->quota_bytes < limit))
		limit = (uint64_t)alias->domain->quota_bytes;
	account_alias_free(&alias);
	return limit;
}
