#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "account/account.h"
#include "conf/conf.h"
#include "core/core.h"
#include "crypto/crypto.h"
#include "db/db.h"

#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static char dir[] = "/tmp/sealpost-account-XXXXXX";
static struct account_db *db;

static void
must(enum account_error err, const char *error)
{
	if (err != ACCOUNT_OK)
		fail_msg("unexpected error %d: %s", err,
			 error != NULL ? error : "(none)");
}

static void
add_alias(const char *address, bool mailbox, const char *forward)
{
	struct account_alias_change ch;
	const char *error = NULL;
	const char *fwd[1] = {forward};

	account_alias_change_init(&ch);
	ch.enabled = 1;
	ch.mailbox = mailbox ? 1 : -1;
	if (forward != NULL) {
		ch.forwards = fwd;
		ch.forward_count = 1;
	}
	must(account_alias_add(db, address, &ch, &error), error);
}

static int
setup(void **state)
{
	const char *error = NULL;
	char *key;

	assert_int_equal(crypto_init(), 0);
	conf_reset();
	assert_non_null(mkdtemp(dir));
	key = xasprintf("%s/server.key", dir);
	assert_int_equal(crypto_server_key_create(key), 0);
	free(key);
	assert_int_equal(account_db_open(dir, 0, &db, &error),
			 ACCOUNT_ERR_NOTFOUND);
	must(account_db_open(dir, ACCOUNT_OPEN_CREATE, &db, &error), error);

	must(account_domain_add(db, "Example.COM", NULL, -1, 0, &error), error);
	must(account_domain_add(db, "other.example", "alice", 7, 1000, &error),
	     error);
	/* Added in Unicode, looked up in punycode, and the reverse. */
	must(account_domain_add(db, "bücher.example", NULL, -1, 0, &error),
	     error);
	must(account_domain_add(db, "xn--mnchen-3ya.example", NULL, -1, 0,
				&error),
	     error);

	add_alias("john@example.com", true, NULL);
	add_alias("john+special@example.com", false, "special@dest.example");
	add_alias("Mixed.Case@example.com", true, NULL);
	add_alias("*@example.com", false, "catchall@dest.example");
	add_alias("/^sales-[0-9]+$/@example.com", false, "sales@dest.example");
	add_alias("gone@example.com", true, NULL);
	{
		struct account_alias_change ch;

		account_alias_change_init(&ch);
		ch.enabled = 0;
		must(account_alias_set(db, "gone@example.com", &ch, &error),
		     error);
	}
	add_alias("user@other.example", true, NULL);
	add_alias("sales-exact@other.example", true, NULL);
	add_alias("/^sales-.*$/@other.example", false, "s@dest.example");
	add_alias("/^SALES-.*$/@other.example", false, "never@dest.example");
	add_alias("user@xn--bcher-kva.example", true, NULL);
	add_alias("user@münchen.example", true, NULL);
	return 0;
}

static int
teardown(void **state)
{
	char *cmd = xasprintf("rm -rf '%s'", dir);

	account_db_close(&db);
	assert_null(db);
	account_cache_clear();
	assert_int_equal(system(cmd), 0);
	free(cmd);
	return 0;
}

struct lookup_case {
	const char *address;
	int ret;	      /* 1, 0, -1 */
	const char *alias;    /* written form expected */
	const char *plus_tag; /* NULL: none */
	bool enabled;
	enum account_error err; /* for ret == -1 */
};

static const struct lookup_case lookup_cases[] = {
	/* exact, any case on either side */
	{"john@example.com", 1, "john@example.com", NULL, true, 0},
	{"JOHN@EXAMPLE.COM", 1, "john@example.com", NULL, true, 0},
	{"john@example.com.", 1, "john@example.com", NULL, true, 0},
	{"mixed.case@example.com", 1, "Mixed.Case@example.com", NULL, true, 0},
	/* plus addressing */
	{"john+news@example.com", 1, "john@example.com", "news", true, 0},
	{"John+News@Example.com", 1, "john@example.com", "News", true, 0},
	{"john+a+b@example.com", 1, "john@example.com", "a+b", true, 0},
	{"john+@example.com", 1, "john@example.com", "", true, 0},
	/* an exact alias with a '+' beats stripping */
	{"john+special@example.com", 1, "john+special@example.com", NULL, true,
	 0},
	/* a leading '+' is no tag: catch-all */
	{"+john@example.com", 1, "*@example.com", NULL, true, 0},
	/* catch-all takes what nothing else does, tag and all */
	{"nobody@example.com", 1, "*@example.com", NULL, true, 0},
	{"nobody+x@example.com", 1, "*@example.com", NULL, true, 0},
	/* regex, caseless, before catch-all; also on the stripped form */
	{"sales-42@example.com", 1, "/^sales-[0-9]+$/@example.com", NULL, true,
	 0},
	{"SALES-42@example.com", 1, "/^sales-[0-9]+$/@example.com", NULL, true,
	 0},
	{"sales-42+x@example.com", 1, "/^sales-[0-9]+$/@example.com", NULL,
	 true, 0},
	{"sales-abc@example.com", 1, "*@example.com", NULL, true, 0},
	/* disabled: returned and final, never falls through to catch-all */
	{"gone@example.com", 1, "gone@example.com", NULL, false, 0},
	{"gone+x@example.com", 1, "gone@example.com", "x", false, 0},
	/* exact beats regex; the oldest matching regex wins; no catch-all */
	{"sales-exact@other.example", 1, "sales-exact@other.example", NULL,
	 true, 0},
	{"sales-x@other.example", 1, "/^sales-.*$/@other.example", NULL, true,
	 0},
	{"nobody@other.example", 0, NULL, NULL, false, 0},
	{"user+tag@other.example", 1, "user@other.example", "tag", true, 0},
	/* unknown domain */
	{"john@unknown.example", 0, NULL, NULL, false, 0},
	{"john@sub.example.com", 0, NULL, NULL, false, 0},
	/* IDN in both directions, any case */
	{"user@bücher.example", 1, "user@xn--bcher-kva.example", NULL, true, 0},
	{"user@BÜCHER.EXAMPLE", 1, "user@xn--bcher-kva.example", NULL, true, 0},
	{"user@xn--bcher-kva.example", 1, "user@xn--bcher-kva.example", NULL,
	 true, 0},
	{"user@xn--mnchen-3ya.example", 1, "user@xn--mnchen-3ya.example", NULL,
	 true, 0},
	{"user@münchen.example", 1, "user@xn--mnchen-3ya.example", NULL, true,
	 0},
	/* malformed: refused cleanly */
	{"john", -1, NULL, NULL, false, ACCOUNT_ERR_INVALID},
	{"@example.com", -1, NULL, NULL, false, ACCOUNT_ERR_INVALID},
	{"john@", -1, NULL, NULL, false, ACCOUNT_ERR_INVALID},
	{"\"john\"@example.com", -1, NULL, NULL, false, ACCOUNT_ERR_INVALID},
	{"\"jo@hn\"@example.com", -1, NULL, NULL, false, ACCOUNT_ERR_INVALID},
	{"jo hn@example.com", -1, NULL, NULL, false, ACCOUNT_ERR_INVALID},
	{"john..doe@example.com", -1, NULL, NULL, false, ACCOUNT_ERR_INVALID},
	{".john@example.com", -1, NULL, NULL, false, ACCOUNT_ERR_INVALID},
	{"john@exa mple.com", -1, NULL, NULL, false, ACCOUNT_ERR_INVALID},
	{"john@-example.com", -1, NULL, NULL, false, ACCOUNT_ERR_INVALID},
	{"john@[127.0.0.1]", -1, NULL, NULL, false, ACCOUNT_ERR_INVALID},
	{"j\xff@example.com", -1, NULL, NULL, false, ACCOUNT_ERR_INVALID},
};

static void
test_lookup_table(void **state)
{
	for (size_t i = 0; i < SP_N_ELEMENTS(lookup_cases); i++) {
		const struct lookup_case *c = &lookup_cases[i];
		struct account_alias *a = NULL;
		enum account_error err = ACCOUNT_OK;
		int ret = account_lookup(db, c->address, &a, &err);

		if (ret != c->ret)
			fail_msg("%s: returned %d, expected %d", c->address,
				 ret, c->ret);
		if (ret < 0) {
			assert_int_equal(err, c->err);
			assert_null(a);
			continue;
		}
		if (ret == 0) {
			assert_null(a);
			continue;
		}
		if (strcmp(a->address, c->alias) != 0)
			fail_msg("%s: found %s, expected %s", c->address,
				 a->address, c->alias);
		if (c->plus_tag == NULL && a->plus_tag != NULL)
			fail_msg("%s: unexpected tag %s", c->address,
				 a->plus_tag);
		if (c->plus_tag != NULL &&
		    (a->plus_tag == NULL ||
		     strcmp(a->plus_tag, c->plus_tag) != 0))
			fail_msg("%s: tag %s, expected %s", c->address,
				 a->plus_tag != NULL ? a->plus_tag : "(none)",
				 c->plus_tag);
		if (a->enabled != c->enabled)
			fail_msg("%s: enabled %d", c->address, a->enabled);
		assert_non_null(a->domain);
		assert_true(a->target_count > 0);
		account_alias_free(&a);
		assert_null(a);
	}
}

static void
test_lookup_returns_targets_and_domain(void **state)
{
	struct account_alias *a;

	assert_int_equal(account_lookup(db, "x@Other.Example", &a, NULL), 0);
	assert_int_equal(account_lookup(db, "sales-1@other.example", &a, NULL),
			 1);
	assert_int_equal(a->kind, ACCOUNT_ALIAS_REGEX);
	assert_string_equal(a->local, "^sales-.*$");
	assert_int_equal(a->target_count, 1);
	assert_int_equal(a->targets[0].kind, ACCOUNT_TARGET_FORWARD);
	assert_string_equal(a->targets[0].value, "s@dest.example");
	assert_string_equal(a->domain->name, "other.example");
	assert_string_equal(a->domain->owner, "alice");
	assert_int_equal(a->domain->retention_days, 7);
	assert_int_equal(a->domain->quota_bytes, 1000);
	assert_false(a->has_mailbox);
	account_alias_free(&a);

	assert_int_equal(account_lookup(db, "john@example.com", &a, NULL), 1);
	assert_true(a->has_mailbox);
	assert_int_equal(strlen(a->mailbox_id), 24);
	assert_int_equal(a->domain->retention_days, 30);
	assert_string_equal(a->domain->owner, ACCOUNT_DEFAULT_OWNER);
	account_alias_free(&a);
}

static void
test_names(void **state)
{
	char *s;

	s = account_domain_normalize("BÜCHER.Example.");
	assert_string_equal(s, "xn--bcher-kva.example");
	free(s);
	s = account_domain_to_unicode("xn--bcher-kva.example");
	assert_string_equal(s, "bücher.example");
	free(s);
	assert_null(account_domain_normalize(""));
	assert_null(account_domain_normalize("a_b.example"));
	assert_null(account_domain_normalize("a..b"));
	assert_null(account_domain_normalize("example.com-"));

	assert_true(account_address_is_valid("a.b+c@example.com"));
	assert_true(account_address_is_valid("jörg@bücher.example"));
	assert_false(account_address_is_valid("ab"));
	assert_false(account_address_is_valid("a@b@"));
	assert_false(account_address_is_valid("\"a b\"@example.com"));

	assert_true(account_webhook_url_is_valid("https://h.example/hook"));
	assert_true(
		account_webhook_url_is_valid("http://127.0.0.1:8080/x?y=1"));
	assert_false(account_webhook_url_is_valid("ftp://h.example/"));
	assert_false(account_webhook_url_is_valid("https://"));
	assert_false(account_webhook_url_is_valid("h.example/hook"));
	assert_false(account_webhook_url_is_valid("https://h.example/a b"));
	assert_false(account_webhook_url_is_valid("javascript:alert(1)"));
}

static void
test_alias_management(void **state)
{
	struct account_alias_change ch;
	struct account_alias *a;
	const char *error = NULL;
	const char *fwd[] = {"a@dest.example", "A@DEST.EXAMPLE",
			     "b@bücher.example"};
	const char *self[] = {"Manage@Example.com"};
	const char *bad_fwd[] = {"not an address"};
	const char *hooks[] = {"https://h.example/1"};
	const char *bad_hooks[] = {"ftp://h.example/"};

	/* no target */
	account_alias_change_init(&ch);
	assert_int_equal(
		account_alias_add(db, "manage@example.com", &ch, &error),
		ACCOUNT_ERR_INVALID);
	/* bad inputs, nothing written */
	ch.forwards = bad_fwd;
	ch.forward_count = 1;
	assert_int_equal(
		account_alias_add(db, "manage@example.com", &ch, &error),
		ACCOUNT_ERR_INVALID);
	ch.forward_count = 0;
	ch.webhooks = bad_hooks;
	ch.webhook_count = 1;
	assert_int_equal(
		account_alias_add(db, "manage@example.com", &ch, &error),
		ACCOUNT_ERR_INVALID);
	ch.webhooks = hooks;
	ch.forwards = self;
	ch.forward_count = 1;
	assert_int_equal(
		account_alias_add(db, "manage@example.com", &ch, &error),
		ACCOUNT_ERR_INVALID);
	assert_non_null(strstr(error, "itself"));
	assert_int_equal(
		account_alias_add(db, "/(unclosed/@example.com", &ch, &error),
		ACCOUNT_ERR_INVALID);
	assert_int_equal(
		account_alias_add(db, "x@nowhere.example", &ch, &error),
		ACCOUNT_ERR_NOTFOUND);
	assert_int_equal(
		account_alias_get(db, "manage@example.com", &a, &error), 0);

	/* duplicates (case-insensitive) are dropped; order is kept */
	ch.forwards = fwd;
	ch.forward_count = 3;
	ch.quota_bytes = 5000;
	must(account_alias_add(db, "manage@example.com", &ch, &error), error);
	assert_int_equal(
		account_alias_add(db, "MANAGE@example.com", &ch, &error),
		ACCOUNT_ERR_EXISTS);
	assert_int_equal(
		account_alias_get(db, "Manage@EXAMPLE.com", &a, &error), 1);
	assert_int_equal(a->target_count, 3);
	assert_string_equal(a->targets[0].value, "a@dest.example");
	assert_string_equal(a->targets[1].value, "b@xn--bcher-kva.example");
	assert_int_equal(a->targets[2].kind, ACCOUNT_TARGET_WEBHOOK);
	assert_int_equal(a->quota_bytes, 5000);
	assert_true(a->enabled);
	assert_false(a->has_credentials);
	account_alias_free(&a);

	/* set: clear and replace, disable, key */
	account_alias_change_init(&ch);
	ch.clear_targets = true;
	assert_int_equal(
		account_alias_set(db, "manage@example.com", &ch, &error),
		ACCOUNT_ERR_INVALID);
	ch.mailbox = 1;
	ch.enabled = 0;
	ch.pgp_key = "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmQINBF\n"
		     "-----END PGP PUBLIC KEY BLOCK-----\n";
	must(account_alias_set(db, "manage@example.com", &ch, &error), error);
	assert_int_equal(
		account_alias_get(db, "manage@example.com", &a, &error), 1);
	assert_int_equal(a->target_count, 1);
	assert_true(a->has_mailbox);
	assert_false(a->enabled);
	assert_non_null(a->pgp_key);
	account_alias_free(&a);
	account_alias_change_init(&ch);
	ch.pgp_key = "not a key";
	assert_int_equal(
		account_alias_set(db, "manage@example.com", &ch, &error),
		ACCOUNT_ERR_INVALID);
	ch.pgp_key = "";
	ch.enabled = 1;
	must(account_alias_set(db, "manage@example.com", &ch, &error), error);
	assert_int_equal(
		account_alias_get(db, "manage@example.com", &a, &error), 1);
	assert_null(a->pgp_key);
	assert_true(a->enabled);
	account_alias_free(&a);
	assert_int_equal(
		account_alias_set(db, "nobody@example.com", &ch, &error),
		ACCOUNT_ERR_NOTFOUND);

	must(account_alias_remove(db, "manage@example.com", NULL, NULL, &error),
	     error);
	assert_int_equal(account_alias_remove(db, "manage@example.com", NULL,
					      NULL, &error),
			 ACCOUNT_ERR_NOTFOUND);
}

static void
test_mailbox_ids(void **state)
{
	struct account_owner *owners;
	struct account_alias *a;
	char **ids;
	size_t count, n;
	const char *error = NULL;
	bool seen = false;

	/* other.example is alice's: her aliases are exactly its aliases */
	must(account_mailbox_ids(db, "alice", NULL, &ids, &count, &error),
	     error);
	must(account_owner_list(db, &owners, &n, &error), error);
	assert_int_equal(n, 2);
	assert_string_equal(owners[0].name, "alice");
	assert_int_equal(owners[0].domain_count, 1);
	assert_int_equal(owners[1].domain_count, 3);
	account_owner_list_free(&owners, n);
	assert_int_equal(account_lookup(db, "user@other.example", &a, NULL), 1);
	for (size_t i = 0; i < count; i++)
		seen |= strcmp(ids[i], a->mailbox_id) == 0;
	assert_true(seen);
	account_mailbox_ids_free(&ids, count);
	must(account_mailbox_ids(db, NULL, "Other.Example", &ids, &n, &error),
	     error);
	assert_int_equal(n, count);
	assert_int_equal(n, 4);
	account_mailbox_ids_free(&ids, n);
	account_alias_free(&a);

	must(account_owner_set_quota(db, "alice", 12345, &error), error);
	assert_int_equal(account_lookup(db, "user@other.example", &a, NULL), 1);
	assert_int_equal(a->domain->owner_quota_bytes, 12345);
	account_alias_free(&a);
	assert_int_equal(account_owner_set_quota(db, "bob", 1, &error),
			 ACCOUNT_ERR_NOTFOUND);
}

static void
collect_id(const char *mailbox_id, void *context)
{
	size_t *count = context;

	assert_int_equal(strlen(mailbox_id), 24);
	(*count)++;
}

/* A domain's own backup bucket: set, read through an alias, cleared;
 * bad names refused. */
static void
test_backup_bucket(void **state)
{
	struct account_domain *d = NULL;
	const char *error = NULL;
	char *bucket = NULL;

	(void)state;
	must(account_domain_add(db, "bucket.example", NULL, -1, 0, &error),
	     error);
	add_alias("b@bucket.example", true, NULL);
	assert_int_equal(account_alias_backup_bucket(db, "b@bucket.example",
						     &bucket, &error),
			 0);
	assert_null(bucket);
	must(account_domain_set_backup_bucket(db, "BUCKET.example",
					      "own-bucket.1", &error),
	     error);
	assert_int_equal(account_alias_backup_bucket(db, "b@bucket.example",
						     &bucket, &error),
			 1);
	assert_string_equal(bucket, "own-bucket.1");
	free(bucket);
	assert_int_equal(account_domain_get(db, "bucket.example", &d, &error),
			 1);
	assert_string_equal(d->backup_bucket, "own-bucket.1");
	account_domain_free(&d);
	for (size_t i = 0; i < 4; i++) {
		static const char *const bad[] = {"ab", "Upper", "-dash",
						  "a/b"};

		assert_int_equal(account_domain_set_backup_bucket(
					 db, "bucket.example", bad[i], &error),
				 ACCOUNT_ERR_INVALID);
	}
	assert_int_equal(account_domain_set_backup_bucket(db, "nope.example",
							  "abc", &error),
			 ACCOUNT_ERR_NOTFOUND);
	must(account_domain_set_backup_bucket(db, "bucket.example", "",
					      &error),
	     error);
	assert_int_equal(account_alias_backup_bucket(db, "b@bucket.example",
						     &bucket, &error),
			 0);
	must(account_domain_remove(db, "bucket.example", true, NULL, NULL,
				   &error),
	     error);
}

/* Mailboxes held shut during a restore: by id, until unheld or expired. */
static void
test_mailbox_hold(void **state)
{
	static const char a[] = "aaaaaaaaaaaaaaaaaaaaaaaa";
	static const char b[] = "bbbbbbbbbbbbbbbbbbbbbbbb";

	(void)state;
	assert_false(account_mailbox_held(a));
	account_mailbox_hold(a, 60);
	account_mailbox_hold(b, 0); /* expires at once */
	assert_true(account_mailbox_held(a));
	assert_false(account_mailbox_held(b));
	account_mailbox_hold(a, 60); /* renewed, still one entry */
	account_mailbox_unhold(a);
	assert_false(account_mailbox_held(a));
	account_mailbox_unhold(b);
}

static void
test_domain_remove(void **state)
{
	struct account_domain **list;
	size_t count, removed = 0;
	const char *error = NULL;

	must(account_domain_add(db, "gone.example", NULL, -1, 0, &error),
	     error);
	assert_int_equal(
		account_domain_add(db, "GONE.example", NULL, -1, 0, &error),
		ACCOUNT_ERR_EXISTS);
	assert_int_equal(
		account_domain_add(db, "bad_name.example", NULL, -1, 0, &error),
		ACCOUNT_ERR_INVALID);
	add_alias("a@gone.example", true, NULL);
	add_alias("*@gone.example", true, NULL);
	assert_int_equal(account_domain_remove(db, "gone.example", false,
					       collect_id, &removed, &error),
			 ACCOUNT_ERR_NOTEMPTY);
	assert_int_equal(removed, 0);
	must(account_domain_remove(db, "gone.example", true, collect_id,
				   &removed, &error),
	     error);
	assert_int_equal(removed, 2);
	assert_int_equal(account_domain_remove(db, "gone.example", true, NULL,
					       NULL, &error),
			 ACCOUNT_ERR_NOTFOUND);
	must(account_domain_list(db, &list, &count, &error), error);
	assert_int_equal(count, 4);
	assert_string_equal(list[0]->name, "example.com");
	assert_int_equal(list[0]->alias_count, 6);
	account_domain_list_free(&list, count);
}

static void
test_alias_rate_limit(void **state)
{
	const char *error = NULL;
	struct account_alias_change ch;

	assert_int_equal(conf_set("alias_create_per_day", "5", &error), 0);
	must(account_domain_add(db, "rate.example", NULL, -1, 0, &error),
	     error);
	account_alias_change_init(&ch);
	ch.mailbox = 1;
	for (int i = 0; i < 5; i++) {
		char *address = xasprintf("r%d@rate.example", i);

		must(account_alias_add(db, address, &ch, &error), error);
		free(address);
	}
	assert_int_equal(account_alias_add(db, "r5@rate.example", &ch, &error),
			 ACCOUNT_ERR_LIMIT);
	assert_non_null(strstr(error, "alias_create_per_day"));
	/* Removing does not give a creation back. */
	must(account_alias_remove(db, "r0@rate.example", NULL, NULL, &error),
	     error);
	assert_int_equal(account_alias_add(db, "r5@rate.example", &ch, &error),
			 ACCOUNT_ERR_LIMIT);
	/* Another domain has its own budget. */
	must(account_alias_add(db, "r5@other.example", &ch, &error), error);
	/* 23 hours later: still full; a day later: room again. */
	clock_set_offset(23 * 3600);
	assert_int_equal(account_alias_add(db, "r5@rate.example", &ch, &error),
			 ACCOUNT_ERR_LIMIT);
	clock_set_offset(24 * 3600 + 1);
	must(account_alias_add(db, "r5@rate.example", &ch, &error), error);
	clock_set_offset(0);
	assert_int_equal(conf_set("alias_create_per_day", "50", &error), 0);
}

/* What the store's `alias password` does: fresh salt, derive, key pair,
 * wrap, save. */
static void
make_credentials(const char *password, struct account_credentials *creds,
		 struct crypto_key *sk_r)
{
	struct crypto_login login = {0};

	random_bytes(creds->salt, sizeof(creds->salt));
	assert_int_equal(crypto_login_derive(password, strlen(password),
					     creds->salt, &login),
			 0);
	memcpy(creds->verifier, login.verifier, sizeof(creds->verifier));
	crypto_spool_keypair(creds->public_key, sk_r);
	crypto_wrap(login.wrap_key, sk_r->bytes, CRYPTO_SECRET_KEY_BYTES,
		    creds->wrapped_sk);
	creds->wrapped_sk_len = ACCOUNT_WRAPPED_SK_BYTES;
	crypto_login_clear(&login);
}

static void
test_credentials_roundtrip(void **state)
{
	struct account_credentials creds, got, other;
	struct crypto_key *sk = crypto_key_create();
	struct account_alias *a;
	const char *error = NULL;

	assert_int_equal(account_alias_get_credentials(db, "john@example.com",
						       &got, &error),
			 0);
	make_credentials("first password", &creds, sk);
	must(account_alias_set_credentials(db, "John@example.com", &creds, NULL,
					   &error),
	     error);
	assert_int_equal(account_alias_get_credentials(db, "john@example.com",
						       &got, &error),
			 1);
	assert_memory_equal(&got.salt, &creds.salt, sizeof(creds.salt));
	assert_memory_equal(&got.verifier, &creds.verifier,
			    sizeof(creds.verifier));
	assert_memory_equal(&got.public_key, &creds.public_key,
			    sizeof(creds.public_key));
	assert_int_equal(got.wrapped_sk_len, creds.wrapped_sk_len);
	assert_memory_equal(got.wrapped_sk, creds.wrapped_sk,
			    creds.wrapped_sk_len);
	assert_int_equal(account_alias_get(db, "john@example.com", &a, &error),
			 1);
	assert_true(a->has_credentials);
	account_alias_free(&a);

	/* Conditional update: only over the verifier the caller knew. */
	other = creds;
	other.salt[0] ^= 1;
	other.verifier[0] ^= 1;
	assert_int_equal(account_alias_set_credentials(db, "john@example.com",
						       &other, other.verifier,
						       &error),
			 ACCOUNT_ERR_AUTH);
	must(account_alias_set_credentials(db, "john@example.com", &other,
					   creds.verifier, &error),
	     error);
	assert_int_equal(account_alias_get_credentials(db, "john@example.com",
						       &got, &error),
			 1);
	assert_memory_equal(&got.verifier, &other.verifier,
			    sizeof(other.verifier));
	/* Only exact aliases log in. */
	assert_int_equal(account_alias_set_credentials(db, "*@example.com",
						       &creds, NULL, &error),
			 ACCOUNT_ERR_INVALID);
	assert_int_equal(account_alias_set_credentials(db, "no@example.com",
						       &creds, NULL, &error),
			 ACCOUNT_ERR_NOTFOUND);
	/* A truncated blob is refused. */
	other.wrapped_sk_len = 0;
	assert_int_equal(account_alias_set_credentials(db, "john@example.com",
						       &other, NULL, &error),
			 ACCOUNT_ERR_INVALID);
	crypto_key_destroy(&sk);
}

static double
now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
test_login_and_cache(void **state)
{
	struct account_credentials creds;
	struct crypto_key *sk = crypto_key_create();
	struct account_session_keys keys, keys2;
	struct account_cache_stats st;
	struct crypto_login login = {0};
	const char *error = NULL;
	const char *pw = "abcde-fghij-klmno-pqrst-uvwxy";

	account_cache_clear();
	assert_int_equal(conf_set("login_key_cache_seconds", "300", &error), 0);
	make_credentials(pw, &creds, sk);
	must(account_alias_set_credentials(db, "mixed.case@example.com", &creds,
					   NULL, &error),
	     error);

	/* First login: a miss, then cached. */
	must(account_login(db, "Mixed.Case@Example.com", pw, &keys, &error),
	     error);
	assert_memory_equal(keys.secret_key->bytes, sk->bytes,
			    CRYPTO_SECRET_KEY_BYTES);
	assert_memory_equal(keys.public_key, creds.public_key,
			    CRYPTO_PUBLIC_KEY_BYTES);
	assert_int_equal(
		crypto_login_derive(pw, strlen(pw), creds.salt, &login), 0);
	assert_memory_equal(keys.mailbox_key->bytes, login.mailbox_key->bytes,
			    CRYPTO_KEY_BYTES);
	crypto_login_clear(&login);
	assert_string_equal(keys.address, "Mixed.Case@example.com");
	assert_int_equal(strlen(keys.mailbox_id), 24);
	account_cache_get_stats(&st);
	assert_int_equal(st.entries, 1);
	assert_int_equal(st.misses, 1);
	assert_int_equal(st.hits, 0);

	/* A wrong password: the same answer as an unknown alias, and it
	 * neither hits nor adds an entry. */
	assert_int_equal(account_login(db, "mixed.case@example.com", "wrong",
				       &keys2, &error),
			 ACCOUNT_ERR_AUTH);
	assert_null(keys2.mailbox_key);
	assert_int_equal(
		account_login(db, "nobody@example.com", pw, &keys2, &error),
		ACCOUNT_ERR_AUTH);
	assert_int_equal(account_login(db, "*@example.com", pw, &keys2, &error),
			 ACCOUNT_ERR_AUTH);
	assert_int_equal(
		account_login(db, "not an address", pw, &keys2, &error),
		ACCOUNT_ERR_AUTH);
	/* john has other credentials than this password */
	assert_int_equal(
		account_login(db, "john@example.com", pw, &keys2, &error),
		ACCOUNT_ERR_AUTH);
	account_cache_get_stats(&st);
	assert_int_equal(st.entries, 1);
	assert_int_equal(st.hits, 0);
	assert_int_equal(st.misses, 1);

	/* Second session: a hit with the same keys. */
	must(account_login(db, "mixed.case@example.com", pw, &keys2, &error),
	     error);
	assert_memory_equal(keys2.mailbox_key->bytes, keys.mailbox_key->bytes,
			    CRYPTO_KEY_BYTES);
	assert_memory_equal(keys2.secret_key->bytes, sk->bytes,
			    CRYPTO_SECRET_KEY_BYTES);
	account_cache_get_stats(&st);
	assert_int_equal(st.hits, 1);
	account_session_keys_clear(&keys2);
	assert_null(keys2.mailbox_key);

	/* Both sessions end; the entry lives on for the configured time,
	 * then goes. */
	account_login_release("mixed.case@example.com");
	account_login_release("MIXED.CASE@example.com");
	account_cache_expire();
	account_cache_get_stats(&st);
	assert_int_equal(st.entries, 1);
	clock_set_offset(299);
	account_cache_expire();
	account_cache_get_stats(&st);
	assert_int_equal(st.entries, 1);
	clock_set_offset(301);
	account_cache_expire();
	account_cache_get_stats(&st);
	assert_int_equal(st.entries, 0);
	clock_set_offset(0);

	/* An open session keeps it however long. */
	must(account_login(db, "mixed.case@example.com", pw, &keys2, &error),
	     error);
	account_session_keys_clear(&keys2);
	clock_set_offset(100000);
	account_cache_expire();
	account_cache_get_stats(&st);
	assert_int_equal(st.entries, 1);
	clock_set_offset(0);

	/* Forget wipes it at once. */
	account_cache_forget("Mixed.Case@example.com");
	account_cache_get_stats(&st);
	assert_int_equal(st.entries, 0);

	/* A disabled alias does not log in. */
	{
		struct account_alias_change ch;

		account_alias_change_init(&ch);
		ch.enabled = 0;
		must(account_alias_set(db, "mixed.case@example.com", &ch,
				       &error),
		     error);
		assert_int_equal(account_login(db, "mixed.case@example.com", pw,
					       &keys2, &error),
				 ACCOUNT_ERR_AUTH);
		ch.enabled = 1;
		must(account_alias_set(db, "mixed.case@example.com", &ch,
				       &error),
		     error);
	}

	/* A password change forgets the cache: the old one fails, the new
	 * one works. */
	must(account_login(db, "mixed.case@example.com", pw, &keys2, &error),
	     error);
	account_session_keys_clear(&keys2);
	{
		struct account_credentials fresh;
		struct crypto_key *sk2 = crypto_key_create();

		make_credentials("second", &fresh, sk2);
		must(account_alias_set_credentials(db, "mixed.case@example.com",
						   &fresh, creds.verifier,
						   &error),
		     error);
		account_cache_get_stats(&st);
		assert_int_equal(st.entries, 0);
		assert_int_equal(account_login(db, "mixed.case@example.com", pw,
					       &keys2, &error),
				 ACCOUNT_ERR_AUTH);
		must(account_login(db, "mixed.case@example.com", "second",
				   &keys2, &error),
		     error);
		assert_memory_equal(keys2.secret_key->bytes, sk2->bytes,
				    CRYPTO_SECRET_KEY_BYTES);
		account_session_keys_clear(&keys2);
		crypto_key_destroy(&sk2);
	}

	/* Off: nothing is kept. */
	account_cache_clear();
	assert_int_equal(conf_set("login_key_cache_seconds", "0", &error), 0);
	must(account_login(db, "mixed.case@example.com", "second", &keys2,
			   &error),
	     error);
	account_session_keys_clear(&keys2);
	account_cache_get_stats(&st);
	assert_int_equal(st.entries, 0);
	assert_int_equal(conf_set("login_key_cache_seconds", "300", &error), 0);
	account_session_keys_clear(&keys);
	crypto_key_destroy(&sk);
	account_cache_clear();
}

/* Logins per second with and without the cache: printed, never asserted
 * (timing is no test). Bounded by count. */
static void
test_login_bench(void **state)
{
	struct account_credentials creds;
	struct crypto_key *sk = crypto_key_create();
	struct account_session_keys keys;
	const char *error = NULL;
	const char *pw = "bench-password";
	const int slow_n = 3, fast_n = 200;
	double t0, slow, fast;

	make_credentials(pw, &creds, sk);
	must(account_alias_set_credentials(db, "user@other.example", &creds,
					   NULL, &error),
	     error);
	account_cache_clear();
	assert_int_equal(conf_set("login_key_cache_seconds", "0", &error), 0);
	t0 = now_seconds();
	for (int i = 0; i < slow_n; i++) {
		must(account_login(db, "user@other.example", pw, &keys, &error),
		     error);
		account_session_keys_clear(&keys);
	}
	slow = (now_seconds() - t0) / slow_n;
	assert_int_equal(conf_set("login_key_cache_seconds", "300", &error), 0);
	must(account_login(db, "user@other.example", pw, &keys, &error), error);
	account_session_keys_clear(&keys);
	t0 = now_seconds();
	for (int i = 0; i < fast_n; i++) {
		must(account_login(db, "user@other.example", pw, &keys, &error),
		     error);
		account_session_keys_clear(&keys);
		account_login_release("user@other.example");
	}
	fast = (now_seconds() - t0) / fast_n;
	printf("# login: %.1f/s without cache (Argon2id), %.0f/s with cache "
	       "(%.0fx)\n",
	       1.0 / slow, 1.0 / fast, slow / fast);
	crypto_key_destroy(&sk);
	account_cache_clear();
}

struct thread_arg {
	const char *password;
	int ok;
};

/* Each thread has its own handle (the documented model) and shares the
 * process-wide cache. */
static void *
login_thread(void *p)
{
	struct thread_arg *arg = p;
	struct account_db *tdb = NULL;
	struct account_session_keys keys;
	const char *error;

	if (account_db_open(dir, 0, &tdb, &error) != ACCOUNT_OK)
		return NULL;
	for (int i = 0; i < 50; i++) {
		if (account_login(tdb, "user@other.example", arg->password,
				  &keys, &error) == ACCOUNT_OK) {
			arg->ok++;
			account_session_keys_clear(&keys);
			account_login_release("user@other.example");
		}
		if (i % 10 == 0)
			account_cache_expire();
	}
	account_db_close(&tdb);
	return NULL;
}

static void
test_login_threads(void **state)
{
	struct account_credentials creds;
	struct crypto_key *sk = crypto_key_create();
	struct account_session_keys keys;
	struct account_cache_stats st;
	struct thread_arg args[4];
	pthread_t threads[4];
	const char *error = NULL;

	account_cache_clear();
	assert_int_equal(conf_set("login_key_cache_seconds", "300", &error), 0);
	make_credentials("threaded", &creds, sk);
	must(account_alias_set_credentials(db, "user@other.example", &creds,
					   NULL, &error),
	     error);
	/* Warm the cache once so the threads hit it. */
	must(account_login(db, "user@other.example", "threaded", &keys, &error),
	     error);
	account_session_keys_clear(&keys);
	for (int i = 0; i < 4; i++) {
		args[i].password = "threaded";
		args[i].ok = 0;
		assert_int_equal(pthread_create(&threads[i], NULL, login_thread,
						&args[i]),
				 0);
	}
	for (int i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(threads[i], NULL), 0);
		assert_int_equal(args[i].ok, 50);
	}
	account_cache_get_stats(&st);
	assert_int_equal(st.entries, 1);
	assert_int_equal(st.hits, 200);
	assert_int_equal(st.misses, 1);
	account_login_release("user@other.example");
	crypto_key_destroy(&sk);
	account_cache_clear();
}

struct handle_arg {
	struct account_db *first, *second;
	size_t open_inside;
};

static void *
handle_thread(void *p)
{
	struct handle_arg *arg = p;
	const char *error = NULL;

	arg->first = account_db_thread(dir, &error);
	arg->second = account_db_thread(dir, &error);
	arg->open_inside = account_db_open_handles();
	return NULL;
}

/* Each thread gets one handle, reused on the next call, and closed when the
 * thread exits: after joining N threads the count is back where it was. */
static void
test_db_thread_closed_at_exit(void **state)
{
	struct handle_arg args[4];
	pthread_t threads[4];
	size_t before = account_db_open_handles();

	(void)state;
	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < 4; i++) {
			args[i] = (struct handle_arg){0};
			assert_int_equal(pthread_create(&threads[i], NULL,
							handle_thread,
							&args[i]),
					 0);
		}
		for (int i = 0; i < 4; i++) {
			assert_int_equal(pthread_join(threads[i], NULL), 0);
			assert_non_null(args[i].first);
			assert_ptr_equal(args[i].first, args[i].second);
			assert_true(args[i].open_inside > before);
		}
		assert_int_equal(account_db_open_handles(), before);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_lookup_table),
		cmocka_unit_test(test_lookup_returns_targets_and_domain),
		cmocka_unit_test(test_mailbox_ids),
		cmocka_unit_test(test_alias_management),
		cmocka_unit_test(test_backup_bucket),
		cmocka_unit_test(test_mailbox_hold),
		cmocka_unit_test(test_domain_remove),
		cmocka_unit_test(test_alias_rate_limit),
		cmocka_unit_test(test_credentials_roundtrip),
		cmocka_unit_test(test_login_and_cache),
		cmocka_unit_test(test_login_bench),
		cmocka_unit_test(test_login_threads),
		cmocka_unit_test(test_db_thread_closed_at_exit),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
