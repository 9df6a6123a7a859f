/* The per-domain DKIM/ARC signing keys of the control plane. */
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
#include "mailauth/mailauth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char dir[] = "/tmp/sealpost-dkim-XXXXXX";
static struct account_db *db;

static void
must(enum account_error err, const char *error)
{
	if (err != ACCOUNT_OK)
		fail_msg("unexpected error %d: %s", err,
			 error != NULL ? error : "(none)");
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
	assert_int_equal(account_db_open(dir, ACCOUNT_OPEN_CREATE, &db,
					 &error),
			 ACCOUNT_OK);
	return 0;
}

static int
teardown(void **state)
{
	char *cmd = xasprintf("rm -rf %s", dir);

	account_db_close(&db);
	assert_int_equal(system(cmd), 0);
	free(cmd);
	return 0;
}

/* Signs a message with the key and verifies it against the key's own DNS
 * record: the stored key is a usable private key of that record. */
static void
assert_key_signs(const struct account_dkim_key *k, const char *domain)
{
	static const char msg[] =
		"From: a@x.example\r\nSubject: s\r\n\r\nb\r\n";
	struct mailauth_dkim_sign_params p = {
		.domain = domain,
		.selector = k->selector,
		.key = k->key,
	};
	struct mailauth_dns *dns = mailauth_dns_table_create();
	struct mailauth_dkim_sig *sigs;
	struct sp_buf signed_msg;
	char *header, *record, *line;
	const char *error;
	size_t count;

	assert_int_equal(mailauth_dkim_sign(&p, msg, strlen(msg), &header,
					    &error),
			 0);
	record = mailauth_key_dns_record(k->key);
	line = xasprintf("%s._domainkey.%s TXT %s\n", k->selector, domain,
			 record);
	assert_int_equal(mailauth_dns_table_add(dns, line, &error), 0);
	sp_buf_init(&signed_msg);
	sp_buf_append_str(&signed_msg, header);
	sp_buf_append_str(&signed_msg, msg);
	mailauth_dkim_verify(dns, signed_msg.data, signed_msg.len, 0, &sigs,
			     &count);
	assert_int_equal(count, 1);
	assert_int_equal(sigs[0].result, MAILAUTH_PASS);
	mailauth_dkim_sigs_free(&sigs, count);
	sp_buf_deinit(&signed_msg);
	mailauth_dns_destroy(&dns);
	free(line);
	free(record);
	free(header);
}

static void
test_selector_names(void **state)
{
	char *s = account_dkim_selector(MAILAUTH_KEY_RSA, 1795478400);

	/* 2026-11-23 */
	assert_string_equal(s, "sp202611");
	free(s);
	s = account_dkim_selector(MAILAUTH_KEY_ED25519, 0);
	assert_string_equal(s, "sp197001e");
	free(s);
}

static void
test_domain_add_makes_keys(void **state)
{
	struct account_dkim_key **keys, *rsa, *ed;
	struct account_domain *d;
	const char *error = NULL;
	char *want;
	size_t count;

	must(account_domain_add(db, "keys.example", NULL, -1, 0, &error),
	     error);
	must(account_dkim_key_list(db, "KEYS.example", &keys, &count, &error),
	     error);
	assert_int_equal(count, 2);
	assert_int_equal(keys[0]->type, MAILAUTH_KEY_RSA);
	assert_int_equal(mailauth_key_get_type(keys[0]->key),
			 MAILAUTH_KEY_RSA);
	assert_int_equal(keys[1]->type, MAILAUTH_KEY_ED25519);
	assert_int_equal(mailauth_key_get_type(keys[1]->key),
			 MAILAUTH_KEY_ED25519);
	want = account_dkim_selector(MAILAUTH_KEY_RSA, keys[0]->created);
	assert_string_equal(keys[0]->selector, want);
	free(want);
	assert_int_equal(strlen(keys[1]->selector), strlen("sp202611e"));
	assert_key_signs(keys[0], "keys.example");
	assert_key_signs(keys[1], "keys.example");
	account_dkim_key_list_free(&keys, count);
	assert_null(keys);

	assert_int_equal(account_dkim_key_get(db, "keys.example",
					      MAILAUTH_KEY_RSA, &rsa, &error),
			 1);
	assert_int_equal(account_dkim_key_get(db, "keys.example",
					      MAILAUTH_KEY_ED25519, &ed,
					      &error),
			 1);
	assert_int_equal(rsa->type, MAILAUTH_KEY_RSA);
	assert_int_equal(ed->type, MAILAUTH_KEY_ED25519);
	account_dkim_key_free(&rsa);
	account_dkim_key_free(&ed);
	assert_null(rsa);

	/* The second signature is off until asked for. */
	assert_int_equal(account_domain_get(db, "keys.example", &d, &error), 1);
	assert_false(d->dkim_ed25519);
	account_domain_free(&d);
	must(account_domain_set_dkim_ed25519(db, "keys.example", true, &error),
	     error);
	assert_int_equal(account_domain_get(db, "keys.example", &d, &error), 1);
	assert_true(d->dkim_ed25519);
	account_domain_free(&d);
	assert_int_equal(account_domain_set_dkim_ed25519(db, "no.example",
							 true, &error),
			 ACCOUNT_ERR_NOTFOUND);
}

static void
test_unknown_domain(void **state)
{
	struct account_dkim_key *k = NULL, **keys = NULL;
	const char *error = NULL;
	size_t count = 7;

	assert_int_equal(account_dkim_key_get(db, "none.example",
					      MAILAUTH_KEY_RSA, &k, &error),
			 0);
	assert_null(k);
	assert_int_equal(account_dkim_key_list(db, "none.example", &keys,
					       &count, &error),
			 ACCOUNT_ERR_NOTFOUND);
	assert_int_equal(account_dkim_generate(db, "none.example", false,
					       &error),
			 ACCOUNT_ERR_NOTFOUND);
	assert_int_equal(account_dkim_key_get(db, "not a domain",
					      MAILAUTH_KEY_RSA, &k, &error),
			 0);
}

static char *
record_of(const char *domain, enum mailauth_key_type type, char **selector_r)
{
	struct account_dkim_key *k;
	const char *error = NULL;
	char *record;

	assert_int_equal(account_dkim_key_get(db, domain, type, &k, &error),
			 1);
	record = mailauth_key_dns_record(k->key);
	*selector_r = xstrdup(k->selector);
	account_dkim_key_free(&k);
	return record;
}

static void
test_rotate(void **state)
{
	const char *error = NULL;
	char *rec1, *rec2, *rec3, *sel1, *sel2, *sel3, *want;

	must(account_domain_add(db, "rot.example", NULL, -1, 0, &error),
	     error);
	rec1 = record_of("rot.example", MAILAUTH_KEY_RSA, &sel1);
	/* Without rotate nothing changes. */
	must(account_dkim_generate(db, "rot.example", false, &error), error);
	rec2 = record_of("rot.example", MAILAUTH_KEY_RSA, &sel2);
	assert_string_equal(rec1, rec2);
	assert_string_equal(sel1, sel2);
	free(rec2);
	free(sel2);
	/* Twice in one month: new keys, new selectors each time. */
	must(account_dkim_generate(db, "rot.example", true, &error), error);
	rec2 = record_of("rot.example", MAILAUTH_KEY_RSA, &sel2);
	must(account_dkim_generate(db, "rot.example", true, &error), error);
	rec3 = record_of("rot.example", MAILAUTH_KEY_RSA, &sel3);
	assert_string_not_equal(rec1, rec2);
	assert_string_not_equal(rec2, rec3);
	want = xasprintf("%s-2", sel1);
	assert_string_equal(sel2, want);
	free(want);
	want = xasprintf("%s-3", sel1);
	assert_string_equal(sel3, want);
	free(want);
	free(rec1);
	free(rec2);
	free(rec3);
	free(sel1);
	free(sel2);
	free(sel3);
	rec1 = record_of("rot.example", MAILAUTH_KEY_ED25519, &sel1);
	assert_non_null(strstr(sel1, "e-3"));
	free(rec1);
	free(sel1);
}

/* A domain from before keys existed has none until asked for; removing a
 * domain takes its keys along. */
static void
test_lazy_keys_and_removal(void **state)
{
	struct account_dkim_key *k = NULL, **keys;
	const char *error = NULL;
	char *path = xasprintf("%s/control.sqlite", dir);
	char *key_path = xasprintf("%s/server.key", dir);
	struct crypto_key *key = crypto_key_create();
	sqlite3 *raw;
	size_t count;

	must(account_domain_add(db, "old.example", NULL, -1, 0, &error),
	     error);
	assert_int_equal(crypto_server_key_load(key_path, key), 0);
	assert_int_equal(db_open(path, key, 0, &raw, &error), DB_OK);
	assert_int_equal(db_exec(raw,
				 "DELETE FROM dkim_keys WHERE domain_id = "
				 "(SELECT id FROM domains WHERE name = "
				 "'old.example');",
				 &error),
			 0);
	db_close(&raw);
	crypto_key_destroy(&key);
	assert_int_equal(account_dkim_key_get(db, "old.example",
					      MAILAUTH_KEY_RSA, &k, &error),
			 0);
	must(account_dkim_key_list(db, "old.example", &keys, &count, &error),
	     error);
	assert_int_equal(count, 0);
	free(keys);
	must(account_dkim_generate(db, "old.example", false, &error), error);
	assert_int_equal(account_dkim_key_get(db, "old.example",
					      MAILAUTH_KEY_RSA, &k, &error),
			 1);
	account_dkim_key_free(&k);

	must(account_domain_remove(db, "old.example", true, NULL, NULL,
				   &error),
	     error);
	assert_int_equal(account_dkim_key_get(db, "old.example",
					      MAILAUTH_KEY_RSA, &k, &error),
			 0);
	assert_int_equal(db_open(path, NULL, 0, &raw, &error), DB_ERR_BADKEY);
	free(path);
	free(key_path);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_selector_names),
		cmocka_unit_test(test_domain_add_makes_keys),
		cmocka_unit_test(test_unknown_domain),
		cmocka_unit_test(test_rotate),
		cmocka_unit_test(test_lazy_keys_and_removal),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
