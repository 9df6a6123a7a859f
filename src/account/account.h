/*
 * account: the control plane -- owners, domains, aliases, their targets and
 * credentials, the recipient lookup and the login.
 *
 * Everything lives in one SQLite3MultipleCiphers database,
 * <data>/control.sqlite, encrypted with the server key. A struct account_db
 * is one connection: it belongs to one thread at a time. The server opens a
 * handle per thread (or per call) and keeps transactions short; the database
 * runs in WAL mode, so the CLI's changes are seen by a running server at its
 * next query, without a restart.
 *
 * Names. Domains are stored lower-case in their ASCII (punycode, IDNA2008)
 * form; any function taking a domain or an address accepts either the
 * Unicode or the ASCII form, in any case. Local parts are stored as given and
 * compared without regard to ASCII case. An alias is written
 *   local@domain        exact
 *   *@domain            catch-all
 *   /regex/@domain      PCRE2 pattern matched, case-insensitively, against
 *                       the local part
 * and that written form is how the management functions name an alias.
 *
 * Recipient lookup (account_lookup) tries, in order: the exact local part,
 * the local part with its "+tag" stripped, the regular-expression aliases
 * (oldest first; each tried on the local part as written, then without its
 * tag), then the catch-all. A disabled alias is returned (enabled false) and
 * stops the search, so the MX can answer 550 5.2.1 for it.
 *
 * Login (account_login) checks a password against the alias's Argon2id
 * verifier and unwraps its X25519 private key. A small cache of derived
 * master keys (SPEC "Login cost", setting login_key_cache_seconds) spares
 * clients that reconnect all the time a second Argon2id; it is process-wide
 * and thread-safe.
 *
 * Return values: management calls return enum account_error (ACCOUNT_OK is
 * 0) with a one-line message in *error_r (static or thread-local; valid
 * until the next call on the same thread). Getters return 1 found, 0 not
 * found, -1 error.
 */
#ifndef SEALPOST_ACCOUNT_H
#define SEALPOST_ACCOUNT_H

#include "crypto/crypto.h"
#include "mailauth/mailauth.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* 24 hex digits + NUL: the name of an alias's mailbox file, never derived
 * from its address. */
#define ACCOUNT_MAILBOX_ID_BUF 25
#define ACCOUNT_WEBHOOK_KEY_BYTES 32
/* Room for a wrapped X25519 secret key. */
#define ACCOUNT_WRAPPED_SK_BYTES                                               \
	(CRYPTO_SECRET_KEY_BYTES + CRYPTO_WRAP_OVERHEAD)
/* The owner a domain gets when none is named. */
#define ACCOUNT_DEFAULT_OWNER "default"

enum account_error {
	ACCOUNT_OK = 0,
	ACCOUNT_ERR_TEMP,     /* database or system failure: try again later */
	ACCOUNT_ERR_NOTFOUND, /* no such domain or alias */
	ACCOUNT_ERR_EXISTS,   /* the domain or alias exists already */
	ACCOUNT_ERR_INVALID,  /* malformed name, address, pattern, URL, key */
	ACCOUNT_ERR_LIMIT,    /* alias_create_per_day reached for the domain */
	ACCOUNT_ERR_NOTEMPTY, /* domain still has aliases (remove without force)
			       */
	ACCOUNT_ERR_AUTH,     /* login: unknown alias, wrong password, disabled
				 alias or no password set -- one answer */
};

struct account_db;

enum account_open_flags {
	ACCOUNT_OPEN_CREATE = 1 << 0, /* create control.sqlite when missing */
};

/* Opens <data_dir>/control.sqlite with the key in <data_dir>/server.key and
 * brings its schema up to date. The caller owns *db_r (account_db_close).
 * A missing database without ACCOUNT_OPEN_CREATE is ACCOUNT_ERR_NOTFOUND
 * ("run sealpost init"). */
enum account_error account_db_open(const char *data_dir, int flags,
				   struct account_db **db_r,
				   const char **error_r);
/* Closes; NULLs the pointer; accepts NULL. */
void account_db_close(struct account_db **db);
/* The calling thread's own handle on <data_dir>/control.sqlite, opened on
 * first use and closed by a pthread key destructor when the thread exits
 * (protocol workers use it so a login costs no open). The thread owns it:
 * never close it, never pass it to another thread. NULL with *error_r on
 * failure (the next call tries again). One data_dir per process. */
struct account_db *account_db_thread(const char *data_dir,
				     const char **error_r);
/* How many handles are open in the process (account_db_open minus
 * account_db_close), for tests and diagnostics. */
size_t account_db_open_handles(void);

/* ---- Names ---- */

/* The ASCII (punycode) lower-case form of a domain name, or NULL when it is
 * not a valid host name. The caller frees. */
char *account_domain_normalize(const char *name);
/* The Unicode form for display (the ASCII form when conversion fails). The
 * caller frees. */
char *account_domain_to_unicode(const char *ascii);
/* True when `address` is a valid forward destination (dot-atom local part,
 * valid domain). */
bool account_address_is_valid(const char *address);
/* True when `url` is an absolute http:// or https:// URL with a host. */
bool account_webhook_url_is_valid(const char *url);

/* ---- Owners and domains ---- */

struct account_domain {
	int64_t id;
	char *name;	 /* ASCII, lower-case */
	char *name_utf8; /* for display */
	char *owner;
	int64_t owner_quota_bytes; /* 0: no limit */
	char *verify_token;	   /* value of the verification TXT record */
	int retention_days;	   /* sent-mail retention */
	int64_t quota_bytes;	   /* 0: no per-domain limit */
	unsigned char webhook_key[ACCOUNT_WEBHOOK_KEY_BYTES]; /* HMAC-SHA256 */
	time_t created;
	size_t alias_count;
	bool dkim_ed25519; /* sign with the Ed25519 key too (a second sig) */
	char *backup_bucket; /* its own S3 bucket for backups; NULL: none */
	/* Submission may send as any alias of the owner, not only the one
	 * that logged in. */
	bool submit_any_alias;
};

/* Frees; NULLs the pointer; accepts NULL. */
void account_domain_free(struct account_domain **domain);
void account_domain_list_free(struct account_domain ***domains, size_t count);

/* Adds a domain. owner NULL: ACCOUNT_DEFAULT_OWNER; an owner that does not
 * exist is created (quota 0). retention_days < 0: the setting
 * default_retention_days. quota_bytes 0: no limit. */
enum account_error account_domain_add(struct account_db *db, const char *name,
				      const char *owner, int retention_days,
				      int64_t quota_bytes,
				      const char **error_r);
/* 1 and *domain_r (caller frees), 0 not found, -1 error. */
int account_domain_get(struct account_db *db, const char *name,
		       struct account_domain **domain_r, const char **error_r);
/* Every domain, sorted by name; the caller frees with
 * account_domain_list_free(). */
enum account_error account_domain_list(struct account_db *db,
				       struct account_domain ***domains_r,
				       size_t *count_r, const char **error_r);

/* Called once per mailbox id whose alias is gone, after the removal is
 * committed, so the caller can delete the mailbox file and its spool (the
 * account module knows no files but its own). */
typedef void account_mailbox_removed_func(const char *mailbox_id,
					  void *context);

/* Removes a domain. With aliases left it fails with ACCOUNT_ERR_NOTEMPTY
 * unless `force`, which removes them too. removed may be NULL. */
enum account_error account_domain_remove(struct account_db *db,
					 const char *name, bool force,
					 account_mailbox_removed_func *removed,
					 void *context, const char **error_r);

/* ---- DKIM and ARC signing keys ---- */

/* Each domain has one RSA 2048 key (DKIM, and ARC seals on forwards, which
 * RFC 8617 allows RSA only) and one Ed25519 key (RFC 8463, a second DKIM
 * signature when the domain's dkim_ed25519 is on). account_domain_add makes
 * both; a domain from before keys existed gets them from
 * account_dkim_generate (the MX does that on first need). Selectors are
 * "sp<yyyymm>" for RSA and "sp<yyyymm>e" for Ed25519, from the month the
 * key was made, with "-2", "-3"... when a rotation in the same month would
 * reuse the selector of the key it replaces. The private key is stored as
 * PKCS#8 PEM inside the encrypted control database. */
struct account_dkim_key {
	enum mailauth_key_type type;
	char *selector;
	struct mailauth_key *key; /* the private key */
	time_t created;
};

/* Frees; NULLs the pointer; accepts NULL. */
void account_dkim_key_free(struct account_dkim_key **key);
void account_dkim_key_list_free(struct account_dkim_key ***keys,
				size_t count);

/* Makes the keys `domain` lacks; with `rotate`, replaces both with new
 * ones under new selectors (the old private keys are deleted at once:
 * publish the new records before mail signed with them goes out, and keep
 * the old ones in DNS a few days for mail in flight). */
enum account_error account_dkim_generate(struct account_db *db,
					 const char *domain, bool rotate,
					 const char **error_r);
/* The domain's key of one type: 1 and *key_r (caller frees), 0 when the
 * domain or its key of that type does not exist, -1 on error. */
int account_dkim_key_get(struct account_db *db, const char *domain,
			 enum mailauth_key_type type,
			 struct account_dkim_key **key_r, const char **error_r);
/* Every key of the domain, RSA first; an unknown domain is
 * ACCOUNT_ERR_NOTFOUND. The caller frees with account_dkim_key_list_free. */
enum account_error account_dkim_key_list(struct account_db *db,
					 const char *domain,
					 struct account_dkim_key ***keys_r,
					 size_t *count_r, const char **error_r);
/* Turns the second (Ed25519) signature on or off. */
enum account_error account_domain_set_dkim_ed25519(struct account_db *db,
						   const char *domain,
						   bool enabled,
						   const char **error_r);
/* Gives the domain its own S3 bucket for its mailboxes' backups; NULL or
 * "" goes back to the s3_bucket setting. A malformed bucket name is
 * ACCOUNT_ERR_INVALID. */
/* Lets submission use any alias of the domain's owner as sender. */
enum account_error account_domain_set_submit_any_alias(struct account_db *db,
						       const char *domain,
						       bool any,
						       const char **error_r);
enum account_error account_domain_set_backup_bucket(struct account_db *db,
						    const char *domain,
						    const char *bucket,
						    const char **error_r);
/* The backup bucket of the alias's domain: 1 and *bucket_r (caller
 * frees), 0 when the domain has none (or there is no such alias; the
 * s3_bucket setting applies), -1 on error. */
int account_alias_backup_bucket(struct account_db *db, const char *address,
				char **bucket_r, const char **error_r);

/* The selector a key of `type` made at `when` gets: "sp202611" or
 * "sp202611e" (UTC month); caller frees. */
char *account_dkim_selector(enum mailauth_key_type type, time_t when);

/* ---- The signing-key cache (keyring.c) ---- */

/* Loaded signing keys shared by the threads that sign (route's ARC seals,
 * the queue's DKIM signatures): an entry is read from the control plane
 * once and re-read after 60 s, so a key rotation reaches a running server
 * without a restart. Users hold a reference while they sign. Thread-safe. */
struct account_keyring;
struct account_keyring_ref;

struct account_signing_keys {
	const struct account_dkim_key *rsa;	/* never NULL */
	const struct account_dkim_key *ed25519; /* NULL when none */
	bool ed25519_enabled;			/* the domain's dkim_ed25519 */
};

struct account_keyring *account_keyring_create(void);
/* Frees; references still held stay valid until released. NULLs, accepts
 * NULL. */
void account_keyring_destroy(struct account_keyring **keyring);
/* The cached keys of `domain` (ASCII, as stored) with a reference for the
 * caller, or NULL when they are not cached or are older than the TTL. */
struct account_keyring_ref *account_keyring_lookup(struct account_keyring *kr,
						   const char *domain);
/* Reads the domain's keys from `db` (making them for a domain from before
 * keys existed) and caches them: 1 and *ref_r, 0 when the domain does not
 * exist, -1 on error (*error_r). */
int account_keyring_load(struct account_keyring *kr, struct account_db *db,
			 const char *domain, struct account_keyring_ref **ref_r,
			 const char **error_r);
const struct account_signing_keys *
account_keyring_keys(const struct account_keyring_ref *ref);
/* Drops the caller's reference; NULLs it, accepts NULL. */
void account_keyring_release(struct account_keyring *kr,
			     struct account_keyring_ref **ref);

struct account_owner {
	char *name;
	int64_t quota_bytes; /* shared by all its aliases; 0: no limit */
	size_t domain_count;
};

/* Frees the list; NULLs the pointer; accepts NULL. */
void account_owner_list_free(struct account_owner **owners, size_t count);
/* Every owner, sorted by name; the caller frees with
 * account_owner_list_free(). */
enum account_error account_owner_list(struct account_db *db,
				      struct account_owner **owners_r,
				      size_t *count_r, const char **error_r);
/* The mailbox ids of every alias of one owner (domain NULL) or of one
 * domain (owner NULL), so a caller can add up the usage a shared quota
 * covers. The caller frees with account_mailbox_ids_free(). */
enum account_error account_mailbox_ids(struct account_db *db, const char *owner,
				       const char *domain, char ***ids_r,
				       size_t *count_r, const char **error_r);
void account_mailbox_ids_free(char ***ids, size_t count);
/* Sets the shared quota of an existing owner (0: no limit). */
enum account_error account_owner_set_quota(struct account_db *db,
					   const char *owner,
					   int64_t quota_bytes,
					   const char **error_r);

/* ---- Aliases ---- */

enum account_alias_kind {
	ACCOUNT_ALIAS_EXACT,
	ACCOUNT_ALIAS_CATCHALL,
	ACCOUNT_ALIAS_REGEX,
};

enum account_target_kind {
	ACCOUNT_TARGET_MAILBOX,
	ACCOUNT_TARGET_FORWARD,
	ACCOUNT_TARGET_WEBHOOK,
};

struct account_target {
	enum account_target_kind kind;
	char *value; /* address or URL; "" for the mailbox */
};

struct account_alias {
	int64_t id;
	enum account_alias_kind kind;
	char *local;   /* as given; "*" for catch-all; the pattern for regex */
	char *address; /* the written form, ASCII domain: "a@d", "*@d", "/re/@d"
			*/
	bool enabled;
	int64_t quota_bytes; /* 0: no per-alias limit */
	char *pgp_key;	     /* armored OpenPGP public key, or NULL */
	char mailbox_id[ACCOUNT_MAILBOX_ID_BUF];
	bool has_mailbox;     /* a mailbox target is among the targets */
	bool has_credentials; /* a password has been set */
	bool save_sent;	      /* submitted mail copied to its Sent folder */
	time_t created;
	struct account_target *targets; /* in order */
	size_t target_count;
	struct account_domain *domain; /* its domain's settings (owned) */
	/* Set by account_lookup only: the "+tag" of the recipient (without
	 * the '+') when it was reached by plus-address stripping, else NULL. */
	char *plus_tag;
};

/* Frees; NULLs the pointer; accepts NULL. */
void account_alias_free(struct account_alias **alias);
void account_alias_list_free(struct account_alias ***aliases, size_t count);

/* What add and set change. account_alias_change_init() fills "keep" in every
 * field; for add, "keep" means: enabled, no quota, no key. */
struct account_alias_change {
	bool clear_targets; /* set: drop every target before adding */
	int mailbox;	    /* -1 keep, 0 drop the mailbox target, 1 add it */
	/* appended, duplicates ignored */
	const char *const *forwards;
	size_t forward_count;
	const char *const *webhooks; /* appended, duplicates ignored */
	size_t webhook_count;
	int enabled;	     /* -1 keep, 0, 1 */
	const char *pgp_key; /* NULL keep, "" remove, else armored text */
	int64_t quota_bytes; /* -1 keep, 0 no limit */
	int save_sent;	     /* -1 keep, 0, 1 */
};

void account_alias_change_init(struct account_alias_change *change);

/* Creates an alias (written form, see above) in an existing domain with a
 * fresh random mailbox id. Needs at least one target. Counts against
 * alias_create_per_day of the domain (a rolling 24 hours on clock_now();
 * removing an alias gives nothing back): ACCOUNT_ERR_LIMIT. */
enum account_error account_alias_add(struct account_db *db, const char *address,
				     const struct account_alias_change *change,
				     const char **error_r);
/* Changes an alias; the result must still have a target. */
enum account_error account_alias_set(struct account_db *db, const char *address,
				     const struct account_alias_change *change,
				     const char **error_r);
/* The alias written `address` (not a recipient lookup: "a+b@d" names the
 * alias "a+b@d" only). 1 and *alias_r (caller frees), 0 when there is no
 * such alias or domain or the address is malformed, -1 on error. */
int account_alias_get(struct account_db *db, const char *address,
		      struct account_alias **alias_r, const char **error_r);
/* The storage limit a mailbox of `address` must respect: the alias's or its
 * domain's, whichever is smaller; 0 for none (or when the alias cannot be
 * read: the limit is then not enforced rather than the login refused). */
uint64_t account_alias_storage_limit(struct account_db *db,
				     const char *address);
/* Every alias, or those of one domain (NULL: all), sorted by domain then
 * written form; caller frees with account_alias_list_free(). An unknown
 * domain is ACCOUNT_ERR_NOTFOUND. */
enum account_error account_alias_list(struct account_db *db, const char *domain,
				      struct account_alias ***aliases_r,
				      size_t *count_r, const char **error_r);
/* Removes an alias with its targets and credentials; then calls removed
 * (may be NULL) with its mailbox id, and forgets its cached logins. */
enum account_error account_alias_remove(struct account_db *db,
					const char *address,
					account_mailbox_removed_func *removed,
					void *context, const char **error_r);

/* ---- Recipient lookup ---- */

/* Finds the alias that receives mail for `address` (see the order above).
 * Returns 1 with *alias_r (caller frees; plus_tag set when reached through
 * "+tag"), 0 when no alias (or no such domain) takes it, -1 on error with
 * *code_r (may be NULL) ACCOUNT_ERR_INVALID for an address that is not
 * local@domain (no '@', a quoted local part, a bad domain) or
 * ACCOUNT_ERR_TEMP when the database failed. */
int account_lookup(struct account_db *db, const char *address,
		   struct account_alias **alias_r, enum account_error *code_r);

/* ---- Credentials (written by the store's `alias password`) ---- */

struct account_credentials {
	unsigned char salt[CRYPTO_SALT_BYTES];
	unsigned char verifier[CRYPTO_VERIFIER_BYTES];
	unsigned char public_key[CRYPTO_PUBLIC_KEY_BYTES];
	unsigned char wrapped_sk[ACCOUNT_WRAPPED_SK_BYTES];
	size_t wrapped_sk_len;
};

/* Replaces all four in one durable transaction and forgets the alias's
 * cached logins. `expect_verifier` (may be NULL) makes it conditional: the
 * update happens only when the stored verifier is that one (a re-key that
 * raced another fails with ACCOUNT_ERR_AUTH instead of overwriting). */
enum account_error
account_alias_set_credentials(struct account_db *db, const char *address,
			      const struct account_credentials *creds,
			      const unsigned char *expect_verifier,
			      const char **error_r);
/* 1 and *creds_r, 0 when the alias has no password yet or does not exist,
 * -1 error. */
int account_alias_get_credentials(struct account_db *db, const char *address,
				  struct account_credentials *creds_r,
				  const char **error_r);

/* ---- Login ---- */

/* What a successful login hands to a session. Keys in sodium_malloc memory. */
struct account_session_keys {
	struct crypto_key *mailbox_key; /* SQLite3MC raw key of mailbox */
	struct crypto_key *secret_key;	/* X25519 secret key of the spool */
	unsigned char public_key[CRYPTO_PUBLIC_KEY_BYTES];
	char mailbox_id[ACCOUNT_MAILBOX_ID_BUF];
	int64_t alias_id;
	char *address; /* the alias's written form (owned) */
};

/* Logs in with the alias's written address (exact aliases only) and
 * password. ACCOUNT_OK fills *keys_r (clear with
 * account_session_keys_clear) and counts one open session of the alias for
 * the cache: call account_login_release() when that session ends.
 * ACCOUNT_ERR_AUTH for an unknown or disabled alias, an alias without a
 * password, or a wrong password (the same answer, after the same Argon2id
 * work); ACCOUNT_ERR_TEMP for a database or memory failure. */
enum account_error account_login(struct account_db *db, const char *address,
				 const char *password,
				 struct account_session_keys *keys_r,
				 const char **error_r);
/* Wipes and frees the keys; the struct may be reused. */
void account_session_keys_clear(struct account_session_keys *keys);

/* One session of `address` ended: when it was the last, its cached key
 * expires login_key_cache_seconds from now. */
void account_login_release(const char *address);
/* Wipes the cached keys of one alias (password change, removal). */
void account_cache_forget(const char *address);
/* Wipes every cached key (shutdown). */
void account_cache_clear(void);
/* Wipes the entries whose time is up; the server calls it from a timer
 * (every cache call does it too). */
void account_cache_expire(void);

/* ---- Mailboxes held shut (a restore swapping the file) ----
 *
 * Process-wide and thread-safe. While a mailbox id is held, the IMAP and
 * POP3 servers do not open its file: a login fails as a temporary failure.
 * A hold ends with account_mailbox_unhold() or after `seconds` (monotonic
 * clock), whichever comes first, so a restore that dies cannot keep the
 * owner out for long. Holding an id that is held renews its time. */
void account_mailbox_hold(const char *mailbox_id, unsigned seconds);
void account_mailbox_unhold(const char *mailbox_id);
bool account_mailbox_held(const char *mailbox_id);

struct account_cache_stats {
	size_t entries;
	uint64_t hits;
	uint64_t misses;
};
void account_cache_get_stats(struct account_cache_stats *stats_r);

#endif
