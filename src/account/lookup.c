/* Recipient lookup: exact, plus-address stripped, regex, catch-all. */
#include "account-private.h"

#include <stdlib.h>
#include <string.h>

static void
set_code(enum account_error *code_r, enum account_error code)
{
	if (code_r != NULL)
		*code_r = code;
}

/* Row id of the first regex alias of the domain that matches `subject`
 * (or `alt`, the plus-stripped form, may be NULL). 1/0/-1. */
static int
lookup_regex(struct account_db *db, int64_t domain_id, const char *subject,
	     const char *alt, int64_t *id_r, const char **error_r)
{
	sqlite3_stmt *stmt = db_prepare(
		db->db, "SELECT id, local FROM aliases WHERE domain_id = ?1 "
			"AND kind = 'regex' ORDER BY id;");
	int rc, ret = 0;

	sqlite3_bind_int64(stmt, 1, domain_id);
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		const char *pattern =
			(const char *)sqlite3_column_text(stmt, 1);

		if (account_regex_match(pattern, subject) ||
		    (alt != NULL && account_regex_match(pattern, alt))) {
			*id_r = sqlite3_column_int64(stmt, 0);
			ret = 1;
			break;
		}
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		account_db_fail(db, "lookup", error_r);
		ret = -1;
	}
	sqlite3_finalize(stmt);
	return ret;
}

int
account_lookup(struct account_db *db, const char *address,
	       struct account_alias **alias_r, enum account_error *code_r)
{
	const char *at = strrchr(address, '@');
	struct account_domain *domain = NULL;
	char *local = NULL, *local_lc = NULL, *base = NULL, *tag = NULL;
	char *ascii = NULL, *plus;
	const char *error = NULL;
	int64_t id = 0;
	int rc;

	*alias_r = NULL;
	/* A quoted local part ("a b"@d) is valid SMTP, but no alias can
	 * have one; the dot-atom check below refuses it cleanly. */
	if (at == NULL || at == address) {
		set_code(code_r, ACCOUNT_ERR_INVALID);
		return -1;
	}
	local = xstrndup(address, (size_t)(at - address));
	ascii = account_domain_normalize(at + 1);
	if (ascii == NULL || !account_local_part_is_valid(local)) {
		set_code(code_r, ACCOUNT_ERR_INVALID);
		rc = -1;
		goto out;
	}
	rc = account_domain_get_ascii(db, ascii, &domain, &error);
	if (rc <= 0)
		goto done;
	local_lc = xstrdup(local);
	str_lower(local_lc);
	plus = strchr(local_lc, '+');
	if (plus != NULL && plus != local_lc) {
		base = xstrndup(local_lc, (size_t)(plus - local_lc));
		tag = xstrdup(local + (plus - local_lc) + 1);
	}

	/* 1. exact */
	rc = account_alias_find(db, domain->id, ACCOUNT_ALIAS_EXACT, local_lc,
				&id, &error);
	/* 2. plus-address stripped */
	if (rc == 0 && base != NULL) {
		rc = account_alias_find(db, domain->id, ACCOUNT_ALIAS_EXACT,
					base, &id, &error);
		if (rc <= 0) {
			free(tag);
			tag = NULL;
		}
	} else {
		free(tag);
		tag = NULL;
	}
	/* 3. regular expressions, on the local part as written, then
	 * without its tag */
	if (rc == 0)
		rc = lookup_regex(db, domain->id, local, base, &id, &error);
	/* 4. catch-all */
	if (rc == 0)
		rc = account_alias_find(db, domain->id, ACCOUNT_ALIAS_CATCHALL,
					"*", &id, &error);
	if (rc > 0)
		rc = account_alias_load(db, id, alias_r, &error);
	if (rc > 0) {
		(*alias_r)->plus_tag = tag;
		tag = NULL;
	}
done:
	if (rc < 0) {
		set_code(code_r, ACCOUNT_ERR_TEMP);
		if (error != NULL)
			log_error(NULL, "%s", error);
	}
out:
	account_domain_free(&domain);
	free(local);
	free(local_lc);
	free(base);
	free(tag);
	free(ascii);
	return rc;
}
