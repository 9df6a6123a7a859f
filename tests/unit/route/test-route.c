#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "account/account.h"
#include "conf/conf.h"
#include "core/core.h"
#include "crypto/crypto.h"
#include "mailauth/mailauth.h"
#include "route/route.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

static char dir[] = "/tmp/sealpost-route-XXXXXX";

/* The fake forwarder: answers per destination from a table, counts calls. */
struct fake_call {
	char rcpt[128];
	char mail_from[128];
	bool has_received, has_original_to, has_arc;
};
static struct fake_call calls[32];
static size_t call_count;
static enum route_answer_action answer_x = ROUTE_ANSWER_OK;
static enum route_answer_action answer_y = ROUTE_ANSWER_OK;

static void
fake_forward(void *ctx, const char *mail_from, const char *rcpt,
	     const void *msg, size_t len, bool eightbit, bool smtputf8,
	     struct route_answer *a)
{
	struct fake_call *c = &calls[call_count++];

	str_copy(c->rcpt, rcpt, sizeof(c->rcpt));
	str_copy(c->mail_from, mail_from, sizeof(c->mail_from));
	/* Our trace fields, under our ARC set (the first header). */
	c->has_received = memmem(msg, len, "\r\nReceived: from", 16) != NULL;
	c->has_arc = len > 22 &&
		     memcmp(msg, "ARC-Seal: i=1; cv=none;", 23) == 0 &&
		     memmem(msg, len, "ARC-Authentication-Results: i=1; ",
			    33) != NULL &&
		     memmem(msg, len, "spf=temperror", 13) != NULL;
	c->has_original_to = memmem(msg, len, "X-Original-To: ", 15) != NULL;
	memset(a, 0, sizeof(*a));
	a->action = strncmp(rcpt, "y", 1) == 0 ? answer_y : answer_x;
	if (a->action == ROUTE_ANSWER_REJECT) {
		a->code = 550;
		str_copy(a->enhanced, "5.1.1", sizeof(a->enhanced));
		snprintf(a->text, sizeof(a->text), "<%s>: user unknown", rcpt);
	} else if (a->action == ROUTE_ANSWER_DEFER) {
		a->code = 451;
		str_copy(a->enhanced, "4.2.0", sizeof(a->enhanced));
		str_copy(a->text, "greylisted", sizeof(a->text));
	}
}

static int
setup(void **state)
{
	struct account_db *db;
	struct account_alias_change ch;
	const char *error;
	char *path;
	const char *fwd[] = {"x@dest.example", "y@dest.example"};
	const char *fwd1[] = {"x@dest.example"};

	assert_int_equal(crypto_init(), 0);
	assert_non_null(mkdtemp(dir));
	path = xasprintf("%s/server.key", dir);
	assert_int_equal(crypto_server_key_create(path), 0);
	free(path);
	if (account_db_open(dir, ACCOUNT_OPEN_CREATE, &db, &error) !=
	    ACCOUNT_OK)
		fail_msg("open: %s", error);
	assert_int_equal(account_domain_add(db, "ex.example", NULL, -1, 0,
					    &error),
			 ACCOUNT_OK);
	account_alias_change_init(&ch);
	ch.forwards = fwd;
	ch.forward_count = 2;
	assert_int_equal(account_alias_add(db, "a@ex.example", &ch, &error),
			 ACCOUNT_OK);
	account_alias_change_init(&ch);
	ch.forwards = fwd1;
	ch.forward_count = 1;
	assert_int_equal(account_alias_add(db, "b@ex.example", &ch, &error),
			 ACCOUNT_OK);
	account_alias_change_init(&ch);
	ch.forwards = fwd1;
	ch.forward_count = 1;
	ch.enabled = 0;
	assert_int_equal(account_alias_add(db, "off@ex.example", &ch, &error),
			 ACCOUNT_OK);
	account_db_close(&db);
	return 0;
}

static int
teardown(void **state)
{
	char *cmd = xasprintf("rm -rf %s", dir);

	assert_int_equal(system(cmd), 0);
	free(cmd);
	return 0;
}

static struct route *
make_route(void)
{
	struct route_settings s = {
		.data_dir = dir,
		.hostname = "mx.test",
		.forward = fake_forward,
	};

	return route_create(&s);
}

static void
test_rcpt_statuses(void **state)
{
	struct route *r = make_route();
	struct route_tx *tx = route_tx_create("s@sender.example", "h", "::1",
					      false, false);

	assert_int_equal(route_rcpt(r, tx, "nobody@ex.example"),
			 ROUTE_RCPT_UNKNOWN);
	assert_int_equal(route_rcpt(r, tx, "a@elsewhere.example"),
			 ROUTE_RCPT_RELAY);
	assert_int_equal(route_rcpt(r, tx, "off@ex.example"),
			 ROUTE_RCPT_DISABLED);
	assert_int_equal(route_tx_rcpt_count(tx), 0);
	assert_int_equal(route_rcpt(r, tx, "A@EX.example"), ROUTE_RCPT_OK);
	assert_int_equal(route_tx_rcpt_count(tx), 1);
	route_tx_destroy(&tx);
	assert_null(tx);
	route_destroy(&r);
	assert_null(r);
}

static void
test_deliver_dedup_and_tag(void **state)
{
	struct route *r = make_route();
	struct route_tx *tx = route_tx_create("s@sender.example", "h", "::1",
					      false, false);
	struct route_result res;
	const char *msg = "Subject: t\r\n\r\nbody\r\n";

	call_count = 0;
	answer_x = answer_y = ROUTE_ANSWER_OK;
	/* a and b both forward to x: x gets one copy. */
	assert_int_equal(route_rcpt(r, tx, "a+news@ex.example"), ROUTE_RCPT_OK);
	assert_int_equal(route_rcpt(r, tx, "b@ex.example"), ROUTE_RCPT_OK);
	route_deliver(r, tx, msg, strlen(msg), &res);
	assert_int_equal(res.outcome, ROUTE_DELIVERED);
	assert_int_equal(res.code, 250);
	/* x+news (from a+news), y+news, and x (from b) */
	assert_int_equal(call_count, 3);
	assert_string_equal(calls[0].rcpt, "x+news@dest.example");
	assert_string_equal(calls[1].rcpt, "y+news@dest.example");
	assert_string_equal(calls[2].rcpt, "x@dest.example");
	assert_true(calls[0].has_received);
	assert_true(calls[0].has_original_to);
	/* Sealed, with temperror results: this router has no resolver. */
	assert_true(calls[0].has_arc);
	route_tx_destroy(&tx);
	route_destroy(&r);
}

static void
test_partial_failure_retry(void **state)
{
	struct route *r = make_route();
	struct route_tx *tx;
	struct route_result res;
	const char *msg = "Subject: retry\r\n\r\nbody\r\n";

	call_count = 0;
	answer_x = ROUTE_ANSWER_OK;
	answer_y = ROUTE_ANSWER_DEFER;
	tx = route_tx_create("s@sender.example", "h", "::1", false, false);
	assert_int_equal(route_rcpt(r, tx, "a@ex.example"), ROUTE_RCPT_OK);
	route_deliver(r, tx, msg, strlen(msg), &res);
	assert_int_equal(res.outcome, ROUTE_TEMPFAIL);
	assert_int_equal(res.code, 451);
	assert_string_equal(res.text, "4.2.0 greylisted");
	assert_int_equal(call_count, 2);
	route_tx_destroy(&tx);

	/* The sender retries: x is remembered, only y is tried. */
	answer_y = ROUTE_ANSWER_OK;
	tx = route_tx_create("s@sender.example", "h2", "::1", false, false);
	assert_int_equal(route_rcpt(r, tx, "a@ex.example"), ROUTE_RCPT_OK);
	route_deliver(r, tx, msg, strlen(msg), &res);
	assert_int_equal(res.outcome, ROUTE_DELIVERED);
	assert_int_equal(res.remembered, 1);
	assert_int_equal(call_count, 3);
	assert_string_equal(calls[2].rcpt, "y@dest.example");
	route_tx_destroy(&tx);

	/* A permanent rejection: 550 with the remote reason. */
	answer_y = ROUTE_ANSWER_REJECT;
	tx = route_tx_create("other@sender.example", "h", "::1", false, false);
	assert_int_equal(route_rcpt(r, tx, "a@ex.example"), ROUTE_RCPT_OK);
	route_deliver(r, tx, msg, strlen(msg), &res);
	assert_int_equal(res.outcome, ROUTE_PERMFAIL);
	assert_int_equal(res.code, 550);
	/* ... without the private forward address */
	assert_string_equal(res.text, "5.1.1 <a@ex.example>: user unknown");
	route_tx_destroy(&tx);
	route_destroy(&r);
}

/* Forwards leave with an SRS sender of the alias's domain; a bounce to that
 * address goes back to the original sender. */
static void
test_srs(void **state)
{
	struct crypto_key *key = crypto_key_create();
	struct mailauth_srs *srs;
	struct route_settings set = {
		.data_dir = dir,
		.hostname = "mx.test",
		.forward = fake_forward,
	};
	struct route *r;
	struct route_tx *tx;
	struct route_result res;
	const char *msg = "Subject: srs\r\n\r\nbody\r\n";
	char srs_addr[128];

	crypto_key_random(key);
	srs = mailauth_srs_create(key);
	set.srs = srs;
	r = route_create(&set);
	call_count = 0;
	answer_x = answer_y = ROUTE_ANSWER_OK;
	tx = route_tx_create("alice@sender.example", "h", "::1", false, false);
	assert_int_equal(route_rcpt(r, tx, "b@ex.example"), ROUTE_RCPT_OK);
	route_deliver(r, tx, msg, strlen(msg), &res);
	assert_int_equal(res.outcome, ROUTE_DELIVERED);
	assert_int_equal(call_count, 1);
	assert_true(strncasecmp(calls[0].mail_from, "SRS0=", 5) == 0);
	assert_non_null(strstr(calls[0].mail_from, "@ex.example"));
	str_copy(srs_addr, calls[0].mail_from, sizeof(srs_addr));
	route_tx_destroy(&tx);

	/* The bounce. */
	tx = route_tx_create("", "h", "::1", false, false);
	assert_int_equal(route_rcpt(r, tx, srs_addr), ROUTE_RCPT_OK);
	route_deliver(r, tx, msg, strlen(msg), &res);
	assert_int_equal(res.outcome, ROUTE_DELIVERED);
	assert_int_equal(call_count, 2);
	assert_string_equal(calls[1].rcpt, "alice@sender.example");
	assert_string_equal(calls[1].mail_from, "");
	route_tx_destroy(&tx);

	/* A forged one is nobody. */
	srs_addr[6] ^= 1;
	tx = route_tx_create("", "h", "::1", false, false);
	assert_int_equal(route_rcpt(r, tx, srs_addr), ROUTE_RCPT_UNKNOWN);
	route_tx_destroy(&tx);
	route_destroy(&r);
	mailauth_srs_destroy(&srs);
	crypto_key_destroy(&key);
}

static void
test_memory_expiry_and_cap(void **state)
{
	struct route_memory *m = route_memory_create(3);
	unsigned char fp[32] = {1}, k[4][32];

	route_memory_key(m, fp, "forward:a", k[0]);
	route_memory_key(m, fp, "forward:b", k[1]);
	route_memory_key(m, fp, "forward:c", k[2]);
	route_memory_key(m, fp, "forward:d", k[3]);
	assert_memory_not_equal(k[0], k[1], 32);
	route_memory_add(m, k[0]);
	route_memory_add(m, k[1]);
	route_memory_add(m, k[2]);
	assert_true(route_memory_has(m, k[0]));
	route_memory_add(m, k[3]); /* over the cap: the oldest goes */
	assert_false(route_memory_has(m, k[0]));
	assert_true(route_memory_has(m, k[3]));
	assert_int_equal(route_memory_count(m), 3);
	clock_set_offset(ROUTE_ACCEPTED_TTL - 10);
	assert_true(route_memory_has(m, k[3]));
	clock_set_offset(ROUTE_ACCEPTED_TTL + 1);
	assert_false(route_memory_has(m, k[3]));
	assert_int_equal(route_memory_count(m), 0);
	clock_set_offset(0);
	route_memory_destroy(&m);
	assert_null(m);
}

static void
test_address_with_tag(void **state)
{
	char *s = route_address_with_tag("dest@x.example", "tag");

	assert_string_equal(s, "dest+tag@x.example");
	free(s);
	s = route_address_with_tag("dest@x.example", NULL);
	assert_string_equal(s, "dest@x.example");
	free(s);
}

static bool
is_private(const char *text)
{
	struct sockaddr_storage ss;

	memset(&ss, 0, sizeof(ss));
	if (strchr(text, ':') != NULL) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		s6->sin6_family = AF_INET6;
		assert_int_equal(inet_pton(AF_INET6, text, &s6->sin6_addr), 1);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		s4->sin_family = AF_INET;
		assert_int_equal(inet_pton(AF_INET, text, &s4->sin_addr), 1);
	}
	return route_address_is_private((struct sockaddr *)&ss);
}

static void
test_private_addresses(void **state)
{
	static const char *const private_ones[] = {
		"127.0.0.1", "10.1.2.3", "172.16.0.1", "172.31.255.255",
		"192.168.1.1", "169.254.169.254", "0.0.0.0", "100.64.0.1",
		"::1", "::", "fe80::1", "fd00::1", "::ffff:127.0.0.1",
		"::ffff:169.254.169.254", "224.0.0.1", "255.255.255.255",
	};
	static const char *const public_ones[] = {
		"93.184.216.34", "8.8.8.8", "172.32.0.1", "2606:4700::1111",
	};

	for (size_t i = 0; i < SP_N_ELEMENTS(private_ones); i++)
		if (!is_private(private_ones[i]))
			fail_msg("%s should be private", private_ones[i]);
	for (size_t i = 0; i < SP_N_ELEMENTS(public_ones); i++)
		if (is_private(public_ones[i]))
			fail_msg("%s should be public", public_ones[i]);
}

static void
test_webhook_sign(void **state)
{
	unsigned char key[32];
	char sig[65];

	/* Cross-checked with Python:
	 * hmac.new(bytes(range(32)), b"1700000000.{}", sha256).hexdigest() */
	for (int i = 0; i < 32; i++)
		key[i] = (unsigned char)i;
	route_webhook_sign(key, "1700000000", "{}", 2, sig);
	assert_string_equal(sig, "964e2b26140befacf0aaa228f3e88a10"
				 "c4eb5e3e46d8877482e44d7ee8f35c2c");
}

/* A file of `len` bytes at <dir>/<rel> (directories made). */
static void
write_file(const char *rel, size_t len)
{
	char *path = xasprintf("%s/%s", dir, rel);
	char *cmd = xasprintf("mkdir -p \"$(dirname '%s')\"", path);
	FILE *f;

	assert_int_equal(system(cmd), 0);
	f = fopen(path, "wb");
	assert_non_null(f);
	for (size_t i = 0; i < len; i++)
		fputc('x', f);
	assert_int_equal(fclose(f), 0);
	free(cmd);
	free(path);
}

static void
remove_spool(const char *mailbox_id)
{
	char *cmd = xasprintf("rm -rf %s/spool/%s %s/mailboxes/%s.sqlite*",
			      dir, mailbox_id, dir, mailbox_id);

	assert_int_equal(system(cmd), 0);
	free(cmd);
}

static void
test_mailbox_usage(void **state)
{
	const char *id = "usage0000000000000000000000000000";

	assert_int_equal(route_mailbox_usage(dir, id), 0);
	write_file("mailboxes/usage0000000000000000000000000000.sqlite", 4096);
	write_file("mailboxes/usage0000000000000000000000000000.sqlite-wal",
		   1000);
	/* Sealed messages count as the message; a sealing in progress and
	 * anything else in the directory do not. */
	write_file("spool/usage0000000000000000000000000000/1.msg",
		   300 + CRYPTO_SEAL_OVERHEAD);
	write_file("spool/usage0000000000000000000000000000/2.sent.msg",
		   20 + CRYPTO_SEAL_OVERHEAD);
	write_file("spool/usage0000000000000000000000000000/3.msg.tmp.abc",
		   5000);
	write_file("spool/usage0000000000000000000000000000/.hidden.msg", 7000);
	assert_int_equal(route_mailbox_usage(dir, id), 4096 + 1000 + 300 + 20);
	remove_spool(id);
	assert_int_equal(route_mailbox_usage(dir, id), 0);
}

/* Writes a sealed-size spool file of a message of `len` bytes. */
static void
spool_message(const char *mailbox_id, const char *name, size_t len)
{
	char *rel = xasprintf("spool/%s/%s.msg", mailbox_id, name);

	write_file(rel, len + CRYPTO_SEAL_OVERHEAD);
	free(rel);
}

static void
test_quota(void **state)
{
	struct account_db *db;
	struct account_alias_change ch;
	struct account_alias *m = NULL, *m2 = NULL;
	struct route *r;
	struct route_tx *tx;
	struct route_result res;
	const char *error;
	char big[601], small[401];

	memset(big, 'b', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	memset(small, 's', sizeof(small) - 1);
	small[sizeof(small) - 1] = '\0';
	assert_int_equal(account_db_open(dir, 0, &db, &error), ACCOUNT_OK);
	account_alias_change_init(&ch);
	ch.mailbox = 1;
	ch.quota_bytes = 1000;
	assert_int_equal(account_alias_add(db, "m@ex.example", &ch, &error),
			 ACCOUNT_OK);
	account_alias_change_init(&ch);
	ch.mailbox = 1;
	assert_int_equal(account_alias_add(db, "m2@ex.example", &ch, &error),
			 ACCOUNT_OK);
	assert_int_equal(account_alias_get(db, "m@ex.example", &m, &error), 1);
	assert_int_equal(account_alias_get(db, "m2@ex.example", &m2, &error),
			 1);

	/* Empty: accepted at RCPT. Half full: a message that fits goes on
	 * to delivery (which defers: no password, no key to seal to), one
	 * that does not is 452 4.2.2 before anything is sealed. */
	r = make_route();
	tx = route_tx_create("s@sender.example", "h", "::1", false, false);
	assert_int_equal(route_rcpt(r, tx, "m@ex.example"), ROUTE_RCPT_OK);
	spool_message(m->mailbox_id, "1", 500);
	route_deliver(r, tx, small, strlen(small), &res);
	assert_int_equal(res.code, 451);
	assert_string_equal(res.text, "4.2.1 Mailbox not ready");
	route_deliver(r, tx, big, strlen(big), &res);
	assert_int_equal(res.outcome, ROUTE_TEMPFAIL);
	assert_int_equal(res.code, 452);
	assert_string_equal(res.text, "4.2.2 Mailbox full");
	route_tx_destroy(&tx);

	/* Full: refused at RCPT; the other alias is not affected. */
	spool_message(m->mailbox_id, "2", 500);
	tx = route_tx_create("s@sender.example", "h", "::1", false, false);
	assert_int_equal(route_rcpt(r, tx, "m@ex.example"),
			 ROUTE_RCPT_OVER_QUOTA);
	assert_int_equal(route_rcpt(r, tx, "m+tag@ex.example"),
			 ROUTE_RCPT_OVER_QUOTA);
	assert_int_equal(route_rcpt(r, tx, "m2@ex.example"), ROUTE_RCPT_OK);
	assert_int_equal(route_tx_rcpt_count(tx), 1);
	route_tx_destroy(&tx);
	route_destroy(&r);

	/* The setting makes both answers permanent. */
	assert_int_equal(conf_set("smtp_quota_permanent", "true", &error), 0);
	r = make_route();
	tx = route_tx_create("s@sender.example", "h", "::1", false, false);
	assert_int_equal(route_rcpt(r, tx, "m@ex.example"),
			 ROUTE_RCPT_OVER_QUOTA_PERM);
	route_tx_destroy(&tx);
	remove_spool(m->mailbox_id);
	spool_message(m->mailbox_id, "1", 500);
	tx = route_tx_create("s@sender.example", "h", "::1", false, false);
	assert_int_equal(route_rcpt(r, tx, "m@ex.example"), ROUTE_RCPT_OK);
	route_deliver(r, tx, big, strlen(big), &res);
	assert_int_equal(res.outcome, ROUTE_PERMFAIL);
	assert_int_equal(res.code, 552);
	assert_string_equal(res.text, "5.2.2 Mailbox full");
	route_tx_destroy(&tx);
	route_destroy(&r);
	conf_reset();

	/* The owner's quota is shared: m's 500 bytes count against m2,
	 * which has no limit of its own. */
	assert_int_equal(account_owner_set_quota(db, ACCOUNT_DEFAULT_OWNER,
						 1000, &error),
			 ACCOUNT_OK);
	r = make_route();
	tx = route_tx_create("s@sender.example", "h", "::1", false, false);
	assert_int_equal(route_rcpt(r, tx, "m2@ex.example"), ROUTE_RCPT_OK);
	route_deliver(r, tx, big, strlen(big), &res);
	assert_int_equal(res.code, 452);
	route_tx_destroy(&tx);
	spool_message(m2->mailbox_id, "1", 500);
	tx = route_tx_create("s@sender.example", "h", "::1", false, false);
	assert_int_equal(route_rcpt(r, tx, "m2@ex.example"),
			 ROUTE_RCPT_OVER_QUOTA);
	route_tx_destroy(&tx);
	route_destroy(&r);

	assert_int_equal(account_owner_set_quota(db, ACCOUNT_DEFAULT_OWNER, 0,
						 &error),
			 ACCOUNT_OK);
	remove_spool(m->mailbox_id);
	remove_spool(m2->mailbox_id);
	account_alias_free(&m);
	account_alias_free(&m2);
	account_db_close(&db);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rcpt_statuses),
		cmocka_unit_test(test_deliver_dedup_and_tag),
		cmocka_unit_test(test_partial_failure_retry),
		cmocka_unit_test(test_srs),
		cmocka_unit_test(test_memory_expiry_and_cap),
		cmocka_unit_test(test_address_with_tag),
		cmocka_unit_test(test_private_addresses),
		cmocka_unit_test(test_webhook_sign),
		cmocka_unit_test(test_mailbox_usage),
		cmocka_unit_test(test_quota),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
