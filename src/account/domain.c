/* Owners and domains. */
#include "account-private.h"

#include "conf/conf.h"

#include <stdlib.h>
#include <string.h>

#define OWNER_NAME_MAX 64
#define VERIFY_TOKEN_BYTES 16

#define DOMAIN_COLUMNS                                                         \
	"d.id, d.name, o.name, o.quota_bytes, d.verify_token, "                \
	"d.retention_days, d.quota_bytes, d.webhook_key, d.created, "          \
	"(SELECT count(*) FROM aliases a WHERE a.domain_id = d.id), "         \
	"d.dkim_ed25519, d.backup_bucket, d.submit_any_alias "                 \
	"FROM domains d JOIN owners o ON o.id = d.owner_id "

static struct account_domain *
domain_from_row(sqlite3_stmt *stmt)
{
	struct account_domain *d = xcalloc(1, sizeof(*d));
	const void *key = sqlite3_column_blob(stmt, 7);

	d->id = sqlite3_column_int64(stmt, 0);
	d->name = xstrdup((const char *)sqlite3_column_text(stmt, 1));
	d->name_utf8 = account_domain_to_unicode(d->name);
	d->owner = xstrdup((const char *)sqlite3_column_text(stmt, 2));
	d->owner_quota_bytes = sqlite3_column_int64(stmt, 3);
	d->verify_token = xstrdup((const char *)sqlite3_column_text(stmt, 4));
	d->retention_days = sqlite3_column_int(stmt, 5);
	d->quota_bytes = sqlite3_column_int64(stmt, 6);
	if (key != NULL &&
	    sqlite3_column_bytes(stmt, 7) == ACCOUNT_WEBHOOK_KEY_BYTES)
		memcpy(d->webhook_key, key, ACCOUNT_WEBHOOK_KEY_BYTES);
	d->created = (time_t)sqlite3_column_int64(stmt, 8);
	d->alias_count = (size_t)sqlite3_column_int64(stmt, 9);
	d->dkim_ed25519 = sqlite3_column_int(stmt, 10) != 0;
	if (sqlite3_column_type(stmt, 11) == SQLITE_TEXT)
		d->backup_bucket =
			xstrdup((const char *)sqlite3_column_text(stmt, 11));
	d->submit_any_alias = sqlite3_column_int(stmt, 12) != 0;
	return d;
}

void
account_domain_free(struct account_domain **domain)
{
	struct account_domain *d = *domain;

	if (d == NULL)
		return;
	free(d->name);
	free(d->name_utf8);
	free(d->owner);
	free(d->verify_token);
	free(d->backup_bucket);
	explicit_bzero(d->webhook_key, sizeof(d->webhook_key));
	free(d);
	*domain = NULL;
}

void
account_domain_list_free(struct account_domain ***domains, size_t count)
{
	if (*domains == NULL)
		return;
	for (size_t i = 0; i < count; i++)
		account_domain_free(&(*domains)[i]);
	free(*domains);
	*domains = NULL;
}

static int
domain_get_where(struct account_db *db, const char *where, const char *text,
		 int64_t id, struct account_domain **domain_r,
		 const char **error_r)
{
	char *sql = xasprintf("SELECT " DOMAIN_COLUMNS "WHERE %s;", where);
	sqlite3_stmt *stmt = db_prepare(db->db, sql);
	int rc, ret;

	free(sql);
	if (text != NULL)
		sqlite3_bind_text(stmt, 1, text, -1, SQLITE_STATIC);
	else
		sqlite3_bind_int64(stmt, 1, id);
	*domain_r = NULL;
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		*domain_r = domain_from_row(stmt);
		ret = 1;
	} else if (rc == SQLITE_DONE) {
		ret = 0;
	} else {
		account_db_fail(db, "domain", error_r);
		ret = -1;
	}
	sqlite3_finalize(stmt);
	return ret;
}

int
account_domain_get_ascii(struct account_db *db, const char *ascii,
			 struct account_domain **domain_r, const char **error_r)
{
	return domain_get_where(db, "d.name = ?1", ascii, 0, domain_r, error_r);
}

int
account_domain_get_id(struct account_db *db, int64_t id,
		      struct account_domain **domain_r, const char **error_r)
{
	return domain_get_where(db, "d.id = ?1", NULL, id, domain_r, error_r);
}

int
account_domain_get(struct account_db *db, const char *name,
		   struct account_domain **domain_r, const char **error_r)
{
	char *ascii = account_domain_normalize(name);
	int ret;

	*domain_r = NULL;
	if (ascii == NULL)
		return 0;
	ret = account_domain_get_ascii(db, ascii, domain_r, error_r);
	free(ascii);
	return ret;
}

enum account_error
account_domain_list(struct account_db *db, struct account_domain ***domains_r,
		    size_t *count_r, const char **error_r)
{
	sqlite3_stmt *stmt =
		db_prepare(db->db, "SELECT " DOMAIN_COLUMNS "ORDER BY d.name;");
	struct account_domain **list = NULL;
	size_t count = 0, cap = 0;
	int rc;

	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		if (count == cap) {
			cap = cap == 0 ? 8 : cap * 2;
			list = xrealloc(list, cap * sizeof(*list));
		}
		list[count++] = domain_from_row(stmt);
	}
	sqlite3_finalize(stmt);
	if (rc != SQLITE_DONE) {
		account_domain_list_free(&list, count);
		return account_db_fail(db, "list domains", error_r);
	}
	*domains_r = list;
	*count_r = count;
	return ACCOUNT_OK;
}

static bool
owner_name_is_valid(const char *name)
{
	size_t len = strlen(name);

	if (len == 0 || len > OWNER_NAME_MAX)
		return false;
	for (const char *p = name; *p != '\0'; p++) {
		char c = *p;

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		      c == '-' || c == '@'))
			return false;
	}
	return true;
}

/* Row id of the owner, created when missing; inside a transaction. */
static int
owner_ensure(struct account_db *db, const char *owner, int64_t *id_r,
	     const char **error_r)
{
	sqlite3_stmt *stmt = db_prepare(
		db->db, "INSERT INTO owners(name, created) VALUES(?1, ?2) "
			"ON CONFLICT(name) DO NOTHING;");
	int rc;

	sqlite3_bind_text(stmt, 1, owner, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 2, (int64_t)clock_now());
	rc = sqlite3_step(stmt);
	sqlite3_finalize(stmt);
	if (rc != SQLITE_DONE) {
		account_db_fail(db, "owner", error_r);
		return -1;
	}
	stmt = db_prepare(db->db, "SELECT id FROM owners WHERE name = ?1;");
	sqlite3_bind_text(stmt, 1, owner, -1, SQLITE_STATIC);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW)
		*id_r = sqlite3_column_int64(stmt, 0);
	sqlite3_finalize(stmt);
	if (rc != SQLITE_ROW) {
		account_db_fail(db, "owner", error_r);
		return -1;
	}
	return 0;
}

enum account_error
account_domain_add(struct account_db *db, const char *name, const char *owner,
		   int retention_days, int64_t quota_bytes,
		   const char **error_r)
{
	char *ascii = account_domain_normalize(name);
	char token[2 * VERIFY_TOKEN_BYTES + 1];
	unsigned char webhook_key[ACCOUNT_WEBHOOK_KEY_BYTES];
	sqlite3_stmt *stmt;
	int64_t owner_id;
	enum account_error ret;
	int rc;

	if (ascii == NULL) {
		*error_r = account_error_printf("'%s' is not a valid domain "
						"name",
						name);
		return ACCOUNT_ERR_INVALID;
	}
	if (owner == NULL)
		owner = ACCOUNT_DEFAULT_OWNER;
	if (!owner_name_is_valid(owner)) {
		*error_r = account_error_printf(
			"'%s' is not a valid owner name (letters, digits, "
			"'.', '_', '-', '@'; at most %d)",
			owner, OWNER_NAME_MAX);
		free(ascii);
		return ACCOUNT_ERR_INVALID;
	}
	if (retention_days < 0)
		retention_days = (int)conf_int("default_retention_days");
	if (quota_bytes < 0) {
		*error_r = "a quota cannot be negative";
		free(ascii);
		return ACCOUNT_ERR_INVALID;
	}
	random_hex_id(token, VERIFY_TOKEN_BYTES);
	random_bytes(webhook_key, sizeof(webhook_key));

	if (db_begin(db->db, error_r) < 0) {
		free(ascii);
		return ACCOUNT_ERR_TEMP;
	}
	if (owner_ensure(db, owner, &owner_id, error_r) < 0) {
		ret = ACCOUNT_ERR_TEMP;
		goto fail;
	}
	stmt = db_prepare(db->db,
			  "INSERT INTO domains(name, owner_id, verify_token, "
			  "retention_days, quota_bytes, webhook_key, created) "
			  "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7);");
	sqlite3_bind_text(stmt, 1, ascii, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 2, owner_id);
	sqlite3_bind_text(stmt, 3, token, -1, SQLITE_STATIC);
	sqlite3_bind_int(stmt, 4, retention_days);
	sqlite3_bind_int64(stmt, 5, quota_bytes);
	sqlite3_bind_blob(stmt, 6, webhook_key, sizeof(webhook_key),
			  SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 7, (int64_t)clock_now());
	rc = sqlite3_step(stmt);
	sqlite3_finalize(stmt);
	explicit_bzero(webhook_key, sizeof(webhook_key));
	if ((rc & 0xff) == SQLITE_CONSTRAINT) {
		*error_r =
			account_error_printf("domain %s exists already", ascii);
		ret = ACCOUNT_ERR_EXISTS;
		goto fail;
	}
	if (rc != SQLITE_DONE) {
		ret = account_db_fail(db, "add domain", error_r);
		goto fail;
	}
	/* Its signing keys come with it, so its DNS records are complete
	 * from the first `domain dns`. */
	ret = account_dkim_generate_in_tx(db, sqlite3_last_insert_rowid(db->db),
					  false, error_r);
	if (ret != ACCOUNT_OK)
		goto fail;
	if (db_commit(db->db, error_r) < 0) {
		ret = ACCOUNT_ERR_TEMP;
		goto fail;
	}
	free(ascii);
	return ACCOUNT_OK;
fail:
	db_rollback(db->db);
	free(ascii);
	return ret;
}

enum account_error
account_domain_remove(struct account_db *db, const char *name, bool force,
		      account_mailbox_removed_func *removed, void *context,
		      const char **error_r)
{
	struct account_domain *domain = NULL;
	char **mailbox_ids = NULL, **addresses = NULL;
	size_t count = 0;
	sqlite3_stmt *stmt;
	enum account_error ret;
	int rc;

	if (db_begin(db->db, error_r) < 0)
		return ACCOUNT_ERR_TEMP;
	rc = account_domain_get(db, name, &domain, error_r);
	if (rc <= 0) {
		db_rollback(db->db);
		if (rc == 0)
			*error_r = account_error_printf("no domain %s", name);
		return rc == 0 ? ACCOUNT_ERR_NOTFOUND : ACCOUNT_ERR_TEMP;
	}
	stmt = db_prepare(db->db, "SELECT mailbox_id, kind, local "
				  "FROM aliases WHERE domain_id = ?1;");
	sqlite3_bind_int64(stmt, 1, domain->id);
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		const char *kind = (const char *)sqlite3_column_text(stmt, 1);

		mailbox_ids = xrealloc(mailbox_ids,
				       (count + 1) * sizeof(*mailbox_ids));
		addresses =
			xrealloc(addresses, (count + 1) * sizeof(*addresses));
		mailbox_ids[count] =
			xstrdup((const char *)sqlite3_column_text(stmt, 0));
		/* Only exact aliases can log in, hence have cache entries. */
		addresses[count] =
			strcmp(kind, "exact") == 0
				? xasprintf("%s@%s",
					    (const char *)sqlite3_column_text(
						    stmt, 2),
					    domain->name)
				: NULL;
		count++;
	}
	sqlite3_finalize(stmt);
	if (rc != SQLITE_DONE) {
		ret = account_db_fail(db, "remove domain", error_r);
		goto fail;
	}
	if (count > 0 && !force) {
		*error_r = account_error_printf(
			"domain %s still has %zu alias%s (remove them first, "
			"or use --force)",
			domain->name, count, count == 1 ? "" : "es");
		ret = ACCOUNT_ERR_NOTEMPTY;
		goto fail;
	}
	/* Aliases, targets and the creation log go with it (ON DELETE
	 * CASCADE). */
	stmt = db_prepare(db->db, "DELETE FROM domains WHERE id = ?1;");
	sqlite3_bind_int64(stmt, 1, domain->id);
	rc = sqlite3_step(stmt);
	sqlite3_finalize(stmt);
	if (rc != SQLITE_DONE) {
		ret = account_db_fail(db, "remove domain", error_r);
		goto fail;
	}
	if (db_commit(db->db, error_r) < 0) {
		ret = ACCOUNT_ERR_TEMP;
		goto fail;
	}
	for (size_t i = 0; i < count; i++) {
		if (removed != NULL)
			removed(mailbox_ids[i], context);
		if (addresses[i] != NULL)
			account_cache_forget(addresses[i]);
	}
	ret = ACCOUNT_OK;
	goto out;
fail:
	db_rollback(db->db);
out:
	for (size_t i = 0; i < count; i++) {
		free(mailbox_ids[i]);
		free(addresses[i]);
	}
	free(mailbox_ids);
	free(addresses);
	account_domain_free(&domain);
	return ret;
}

enum account_error
account_owner_set_quota(struct account_db *db, const char *owner,
			int64_t quota_bytes, const char **error_r)
{
	sqlite3_stmt *stmt;
	int rc;

	if (quota_bytes < 0) {
		*error_r = "a quota cannot be negative";
		return ACCOUNT_ERR_INVALID;
	}
	stmt = db_prepare(
		db->db, "UPDATE owners SET quota_bytes = ?1 WHERE name = ?2;");
	sqlite3_bind_int64(stmt, 1, quota_bytes);
	sqlite3_bind_text(stmt, 2, owner, -1, SQLITE_STATIC);
	rc = sqlite3_step(stmt);
	sqlite3_finalize(stmt);
	if (rc != SQLITE_DONE)
		return account_db_fail(db, "owner quota", error_r);
	if (sqlite3_changes(db->db) == 0) {
		*error_r = account_error_printf("no owner %s", owner);
		return ACCOUNT_ERR_NOTFOUND;
	}
	return ACCOUNT_OK;
}

void
account_owner_list_free(struct account_owner **owners, size_t count)
{
	if (*owners == NULL)
		return;
	for (size_t i = 0; i < count; i++)
		free((*owners)[i].name);
	free(*owners);
	*owners = NULL;
}

enum account_error
account_owner_list(struct account_db *db, struct account_owner **owners_r,
		   size_t *count_r, const char **error_r)
{
	sqlite3_stmt *stmt = db_prepare(
		db->db, "SELECT o.name, o.quota_bytes, (SELECT count(*) FROM "
			"domains d WHERE d.owner_id = o.id) FROM owners o "
			"ORDER BY o.name;");
	struct account_owner *list = NULL;
	size_t count = 0;
	int rc;

	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		list = xrealloc(list, (count + 1) * sizeof(*list));
		list[count].name =
			xstrdup((const char *)sqlite3_column_text(stmt, 0));
		list[count].quota_bytes = sqlite3_column_int64(stmt, 1);
		list[count].domain_count =
			(size_t)sqlite3_column_int64(stmt, 2);
		count++;
	}
	sqlite3_finalize(stmt);
	if (rc != SQLITE_DONE) {
		account_owner_list_free(&list, count);
		return account_db_fail(db, "list owners", error_r);
	}
	*owners_r = list;
	*count_r = count;
	return ACCOUNT_OK;
}

void
account_mailbox_ids_free(char ***ids, size_t count)
{
	if (*ids == NULL)
		return;
	for (size_t i = 0; i < count; i++)
		free((*ids)[i]);
	free(*ids);
	*ids = NULL;
}

enum account_error
account_mailbox_ids(struct account_db *db, const char *owner,
		    const char *domain, char ***ids_r, size_t *count_r,
		    const char **error_r)
{
	char *ascii = NULL;
	char **ids = NULL;
	size_t count = 0;
	sqlite3_stmt *stmt;
	int rc;

	SP_ASSERT((owner == NULL) != (domain == NULL));
	*ids_r = NULL;
	*count_r = 0;
	if (domain != NULL) {
		ascii = account_domain_normalize(domain);
		if (ascii == NULL) {
			*error_r = account_error_printf("no domain %s", domain);
			return ACCOUNT_ERR_NOTFOUND;
		}
		stmt = db_prepare(db->db,
				  "SELECT a.mailbox_id FROM aliases a JOIN "
				  "domains d ON d.id = a.domain_id WHERE "
				  "d.name = ?1 ORDER BY a.id;");
		sqlite3_bind_text(stmt, 1, ascii, -1, SQLITE_STATIC);
	} else {
		stmt = db_prepare(db->db,
				  "SELECT a.mailbox_id FROM aliases a JOIN "
				  "domains d ON d.id = a.domain_id JOIN owners "
				  "o ON o.id = d.owner_id WHERE o.name = ?1 "
				  "ORDER BY a.id;");
		sqlite3_bind_text(stmt, 1, owner, -1, SQLITE_STATIC);
	}
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		ids = xrealloc(ids, (count + 1) * sizeof(*ids));
		ids[count++] =
			xstrdup((const char *)sqlite3_column_text(stmt, 0));
	}
	sqlite3_finalize(stmt);
	free(ascii);
	if (rc != SQLITE_DONE) {
		account_mailbox_ids_free(&ids, count);
		return account_db_fail(db, "mailbox ids", error_r);
	}
	*ids_r = ids;
	*count_r = count;
	return ACCOUNT_OK;
}

/* S3 bucket names (AWS rules, which other S3 services follow): 3-63
 * characters of lower-case letters, digits, '.' and '-', starting and
 * ending with a letter or digit. Anything else would also break the
 * virtual-host URL. */
static bool
backup_bucket_is_valid(const char *name)
{
	size_t len = strlen(name);

	if (len < 3 || len > 63)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = name[i];
		bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');

		if (!alnum && ((c != '.' && c != '-') || i == 0 ||
			       i == len - 1))
			return false;
	}
	return true;
}

enum account_error
account_domain_set_submit_any_alias(struct account_db *db, const char *domain,
				    bool any, const char **error_r)
{
	char *ascii = account_domain_normalize(domain);
	sqlite3_stmt *stmt;
	int rc;

	if (ascii == NULL) {
		*error_r = account_error_printf("no domain %s", domain);
		return ACCOUNT_ERR_NOTFOUND;
	}
	stmt = db_prepare(db->db, "UPDATE domains SET submit_any_alias = ?1 "
				  "WHERE name = ?2;");
	sqlite3_bind_int(stmt, 1, any ? 1 : 0);
	sqlite3_bind_text(stmt, 2, ascii, -1, SQLITE_STATIC);
	rc = sqlite3_step(stmt);
	sqlite3_finalize(stmt);
	if (rc != SQLITE_DONE) {
		free(ascii);
		return account_db_fail(db, "submit any alias", error_r);
	}
	if (sqlite3_changes(db->db) == 0) {
		*error_r = account_error_printf("no domain %s", ascii);
		free(ascii);
		return ACCOUNT_ERR_NOTFOUND;
	}
	free(ascii);
	return ACCOUNT_OK;
}

enum account_error
account_domain_set_backup_bucket(struct account_db *db, const char *domain,
				 const char *bucket, const char **error_r)
{
	char *ascii = account_domain_normalize(domain);
	sqlite3_stmt *stmt;
	int rc;

	if (ascii == NULL) {
		*error_r = account_error_printf("no domain %s", domain);
		return ACCOUNT_ERR_NOTFOUND;
	}
	if (bucket != NULL && *bucket != '\0' &&
	    !backup_bucket_is_valid(bucket)) {
		free(ascii);
		*error_r = account_error_printf(
			"not an S3 bucket name: 3-63 characters a-z, 0-9, "
			"'.' and '-'");
		return ACCOUNT_ERR_INVALID;
	}
	stmt = db_prepare(db->db, "UPDATE domains SET backup_bucket = ?1 "
				  "WHERE name = ?2;");
	if (bucket != NULL && *bucket != '\0')
		sqlite3_bind_text(stmt, 1, bucket, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(stmt, 1);
	sqlite3_bind_text(stmt, 2, ascii, -1, SQLITE_STATIC);
	rc = sqlite3_step(stmt);
	sqlite3_finalize(stmt);
	if (rc != SQLITE_DONE) {
		free(ascii);
		return account_db_fail(db, "backup bucket", error_r);
	}
	if (sqlite3_changes(db->db) == 0) {
		*error_r = account_error_printf("no domain %s", ascii);
		free(ascii);
		return ACCOUNT_ERR_NOTFOUND;
	}
	free(ascii);
	return ACCOUNT_OK;
}

int
account_alias_backup_bucket(struct account_db *db, const char *address,
			    char **bucket_r, const char **error_r)
{
	struct account_alias *alias = NULL;
	int rc;

	*bucket_r = NULL;
	rc = account_alias_get(db, address, &alias, error_r);
	if (rc <= 0)
		return rc;
	if (alias->domain != NULL && alias->domain->backup_bucket != NULL) {
		*bucket_r = xstrdup(alias->domain->backup_bucket);
		rc = 1;
	} else {
		rc = 0;
	}
	account_alias_free(&alias);
	return rc;
}
