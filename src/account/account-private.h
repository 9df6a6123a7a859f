#ifndef SEALPOST_ACCOUNT_PRIVATE_H
#define SEALPOST_ACCOUNT_PRIVATE_H

#include "account.h"

#include "core/core.h"
#include "db/db.h"

struct account_db {
	sqlite3 *db;
};

/* An alias's written form taken apart. */
struct account_name {
	enum account_alias_kind kind;
	char *local;	/* as given ("*", or the pattern without slashes) */
	char *local_lc; /* the compared form: lower-case for exact aliases */
	char *domain;	/* ASCII, lower-case */
};

/* Formats a message into a thread-local buffer and returns it. */
const char *account_error_printf(const char *fmt, ...) SP_PRINTF(1, 2);
/* Sets *error_r (may be NULL) to the database's message; returns
 * ACCOUNT_ERR_TEMP. */
enum account_error account_db_fail(struct account_db *db, const char *what,
				   const char **error_r);

/* names.c */
bool account_local_part_is_valid(const char *local);
/* Parses "local@domain", "*@domain" or "/re/@domain". 0, or -1 with
 * *error_r. Free with account_name_deinit(). */
int account_name_parse(const char *address, struct account_name *name_r,
		       const char **error_r);
void account_name_deinit(struct account_name *name);
/* The written form of an alias; the caller frees. */
char *account_name_format(enum account_alias_kind kind, const char *local,
			  const char *domain);
/* The form the login cache is keyed by: lower-case local @ ASCII domain;
 * NULL when the address is not an exact alias's. The caller frees. */
char *account_login_canonical(const char *address);
/* Checks that a PCRE2 pattern compiles. */
int account_regex_check(const char *pattern, const char **error_r);
/* True when pattern (caseless, UTF) matches subject; a pattern that does
 * not compile or a match that hits the limits is false. */
bool account_regex_match(const char *pattern, const char *subject);
const char *account_alias_kind_name(enum account_alias_kind kind);
const char *account_target_kind_name(enum account_target_kind kind);

/* domain.c */
/* 1 and *domain_r, 0 not found, -1 error; `ascii` is already normalised. */
int account_domain_get_ascii(struct account_db *db, const char *ascii,
			     struct account_domain **domain_r,
			     const char **error_r);
int account_domain_get_id(struct account_db *db, int64_t id,
			  struct account_domain **domain_r,
			  const char **error_r);

/* dkim.c */
/* Makes the signing keys domain_id lacks (rotate: replaces every one),
 * inside the caller's transaction. */
enum account_error account_dkim_generate_in_tx(struct account_db *db,
					       int64_t domain_id, bool rotate,
					       const char **error_r);

/* alias.c */
/* Loads one alias, with targets and domain, by row id. 1/0/-1. */
int account_alias_load(struct account_db *db, int64_t id,
		       struct account_alias **alias_r, const char **error_r);
/* Row id of the alias (domain id, kind, compared local part). 1/0/-1. */
int account_alias_find(struct account_db *db, int64_t domain_id,
		       enum account_alias_kind kind, const char *local_lc,
		       int64_t *id_r, const char **error_r);

#endif
