/* The outbound queue: submission, delivery outcomes, back-off, expiry,
 * DSNs, retention, restart, DKIM. Deliveries go to a fake that accepts,
 * defers or rejects by the recipient's local part. */
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
#include "mime/mime.h"
#include "queue/queue.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define REDACTED                                                               \
	"This message was successfully sent. It has been redacted and "       \
	"purged for your security and privacy."

static const char message[] =
	"From: Sender <sender@example.com>\r\n"
	"To: someone@a.example\r\n"
	"Subject: the subject line\r\n"
	"Date: Sun, 06 Dec 2026 10:00:00 +0000\r\n"
	"Message-ID: <m1@example.com>\r\n"
	"MIME-Version: 1.0\r\n"
	"Content-Type: text/plain; charset=us-ascii\r\n"
	"\r\n"
	"The body of the message.\r\n";

struct delivery {
	char id[17];
	char *mail_from;
	char **rcpts;
	size_t rcpt_count;
	char *msg;
	size_t len;
};

struct fake {
	pthread_mutex_t lock;
	struct delivery *log;
	size_t count;
	unsigned rcpts_seen;
};

static char dir[64];
static struct queue *queue;
static struct fake fake;

static void
fake_deliver(void *ctx, const struct queue_delivery *d,
	     struct queue_result *results)
{
	struct fake *f = ctx;
	struct delivery *l;

	pthread_mutex_lock(&f->lock);
	f->log = xrealloc(f->log, (f->count + 1) * sizeof(*f->log));
	l = &f->log[f->count++];
	memset(l, 0, sizeof(*l));
	str_copy(l->id, d->id, sizeof(l->id));
	l->mail_from = xstrdup(d->mail_from);
	l->rcpts = xcalloc(d->rcpt_count, sizeof(*l->rcpts));
	l->rcpt_count = d->rcpt_count;
	l->msg = xstrndup(d->msg, d->len);
	l->len = d->len;
	/* The log may move when another runner thread appends: the lock is
	 * held until this entry is complete. */
	for (size_t i = 0; i < d->rcpt_count; i++) {
		struct queue_result *r = &results[i];

		l->rcpts[i] = xstrdup(d->rcpts[i]);
		memset(r, 0, sizeof(*r));
		str_copy(r->remote, "mx.remote.test", sizeof(r->remote));
		if (str_has_prefix(d->rcpts[i], "defer")) {
			r->action = QUEUE_ACTION_DEFER;
			r->category = "greylist";
			r->code = 451;
			str_copy(r->enhanced, "4.7.1", sizeof(r->enhanced));
			str_copy(r->text, "greylisted, try later",
				 sizeof(r->text));
		} else if (str_has_prefix(d->rcpts[i], "reject")) {
			r->action = QUEUE_ACTION_REJECT;
			r->category = "recipient";
			r->code = 550;
			str_copy(r->enhanced, "5.1.1", sizeof(r->enhanced));
			str_copy(r->text, "no such user", sizeof(r->text));
		} else {
			r->action = QUEUE_ACTION_OK;
			r->category = "none";
			r->code = 250;
			str_copy(r->enhanced, "2.0.0", sizeof(r->enhanced));
			str_copy(r->text, "queued as X", sizeof(r->text));
		}
	}
	f->rcpts_seen += (unsigned)d->rcpt_count;
	pthread_mutex_unlock(&f->lock);
}

static void
fake_reset(void)
{
	for (size_t i = 0; i < fake.count; i++) {
		for (size_t j = 0; j < fake.log[i].rcpt_count; j++)
			free(fake.log[i].rcpts[j]);
		free(fake.log[i].rcpts);
		free(fake.log[i].mail_from);
		free(fake.log[i].msg);
	}
	free(fake.log);
	fake.log = NULL;
	fake.count = 0;
	fake.rcpts_seen = 0;
}

static const struct queue_runner_settings settings = {
	.deliver = fake_deliver,
	.deliver_ctx = &fake,
	.threads = 1,
	.hostname = "mx.sealpost.test",
};

static int
run(void)
{
	const char *error = NULL;
	int n = queue_run_once(queue, &settings, &error);

	if (n < 0)
		fail_msg("queue_run_once: %s", error);
	return n;
}

static void
reopen(void)
{
	const char *error = NULL;

	queue_close(&queue);
	if (queue_open(dir, &queue, &error) < 0)
		fail_msg("queue_open: %s", error);
}

static int
setup(void **state)
{
	struct account_db *db;
	const char *error = NULL;
	char *key;

	assert_int_equal(crypto_init(), 0);
	conf_reset();
	clock_set_offset(0);
	memset(&fake, 0, sizeof(fake));
	pthread_mutex_init(&fake.lock, NULL);
	snprintf(dir, sizeof(dir), "/tmp/sealpost-queue-XXXXXX");
	assert_non_null(mkdtemp(dir));
	key = xasprintf("%s/server.key", dir);
	assert_int_equal(crypto_server_key_create(key), 0);
	free(key);
	assert_int_equal(account_db_open(dir, ACCOUNT_OPEN_CREATE, &db,
					 &error),
			 ACCOUNT_OK);
	assert_int_equal(account_domain_add(db, "example.com", NULL, 30, 0,
					    &error),
			 ACCOUNT_OK);
	assert_int_equal(account_domain_add(db, "zero.example", NULL, 0, 0,
					    &error),
			 ACCOUNT_OK);
	account_db_close(&db);
	if (queue_open(dir, &queue, &error) < 0)
		fail_msg("queue_open: %s", error);
	return 0;
}

static int
teardown(void **state)
{
	char *cmd = xasprintf("rm -rf %s", dir);

	queue_close(&queue);
	fake_reset();
	pthread_mutex_destroy(&fake.lock);
	clock_set_offset(0);
	assert_int_equal(system(cmd), 0);
	free(cmd);
	return 0;
}

struct sub_opts {
	const char *from, *domain, *envid;
	enum queue_ret ret;
	unsigned notify;
	const char *orcpt;
};

static void
submit(const struct sub_opts *o, const char *const *rcpts, size_t count,
       char id_r[17])
{
	struct queue_recipient *qr = xcalloc(count, sizeof(*qr));
	struct queue_submission sub;
	const char *error = NULL;

	for (size_t i = 0; i < count; i++) {
		qr[i].address = rcpts[i];
		qr[i].notify = o->notify;
		qr[i].orcpt = o->orcpt;
	}
	memset(&sub, 0, sizeof(sub));
	sub.mail_from = o->from != NULL ? o->from : "sender@example.com";
	sub.domain = o->domain != NULL ? o->domain : "example.com";
	sub.envid = o->envid;
	sub.ret = o->ret;
	sub.rcpts = qr;
	sub.rcpt_count = count;
	sub.msg = message;
	sub.len = strlen(message);
	if (queue_submit(queue, &sub, id_r, NULL, NULL, &error) < 0)
		fail_msg("queue_submit: %s", error);
	assert_int_equal(strlen(id_r), 16);
	free(qr);
}

static void
show(const char *id, struct queue_message_info *info)
{
	const char *error = NULL;

	if (queue_show(queue, id, info, &error) != 1)
		fail_msg("queue_show %s: %s", id, error ? error : "not found");
}

/* The DSNs in the queue (is_dsn), in order. */
static size_t
count_dsns(char ids[][17], size_t max)
{
	struct queue_message_info *list;
	const char *error = NULL;
	size_t count, n = 0;

	if (queue_list(queue, &list, &count, &error) < 0)
		fail_msg("queue_list: %s", error);
	for (size_t i = 0; i < count; i++) {
		if (!list[i].is_dsn)
			continue;
		if (n < max)
			str_copy(ids[n], list[i].id, 17);
		n++;
	}
	queue_message_list_free(&list, count);
	assert_null(list);
	return n;
}

static char *
content(const char *id, size_t *len_r)
{
	const char *error = NULL;
	char *msg;

	if (queue_content(queue, id, &msg, len_r, &error) != 1)
		fail_msg("queue_content: %s", error ? error : "not found");
	return msg;
}

/* ---- tests ------------------------------------------------------------- */

static void
test_submit_and_group(void **state)
{
	static const char *const rcpts[] = {"ok1@a.example", "ok2@b.example",
					    "ok3@A.example"};
	struct sub_opts o = {0};
	struct queue_message_info info;
	char id[17];

	submit(&o, rcpts, 3, id);
	show(id, &info);
	assert_int_equal(info.rcpt_count, 3);
	assert_int_equal(info.rcpts[0].state, QUEUE_RCPT_PENDING);
	assert_int_equal(info.final, 0);
	assert_false(info.is_dsn);
	assert_string_equal(info.domain, "example.com");
	queue_message_info_free(&info);

	assert_int_equal(run(), 3);
	/* Two destination domains, two envelopes. */
	assert_int_equal(fake.count, 2);
	for (size_t i = 0; i < fake.count; i++) {
		struct delivery *d = &fake.log[i];

		assert_string_equal(d->id, id);
		assert_string_equal(d->mail_from, "sender@example.com");
		if (d->rcpt_count == 2) {
			assert_string_equal(d->rcpts[0], "ok1@a.example");
			assert_string_equal(d->rcpts[1], "ok3@A.example");
		} else {
			assert_int_equal(d->rcpt_count, 1);
			assert_string_equal(d->rcpts[0], "ok2@b.example");
		}
		assert_non_null(strstr(d->msg, "DKIM-Signature:"));
	}
	show(id, &info);
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(info.rcpts[i].state, QUEUE_RCPT_DELIVERED);
		assert_int_equal(info.rcpts[i].attempts, 1);
		assert_int_equal(info.rcpts[i].next_attempt, 0);
		assert_int_equal(info.rcpts[i].last_code, 250);
		assert_string_equal(info.rcpts[i].last_action, "ok");
	}
	assert_true(info.final > 0);
	assert_int_equal(info.redacted, 0);
	queue_message_info_free(&info);
	/* Nothing is sent twice. */
	assert_int_equal(run(), 0);
	assert_int_equal(fake.count, 2);
	assert_int_equal(count_dsns(NULL, 0), 0);
}

static void
test_backoff(void **state)
{
	static const char *const rcpts[] = {"defer@a.example"};
	static const time_t expect[] = {300, 600, 1200, 2400, 3600, 3600};
	struct sub_opts o = {0};
	struct queue_message_info info;
	int64_t offset = 0;
	char id[17];

	submit(&o, rcpts, 1, id);
	for (size_t i = 0; i < SP_N_ELEMENTS(expect); i++) {
		time_t before = clock_now(), after;

		assert_int_equal(run(), 1);
		after = clock_now();
		show(id, &info);
		assert_int_equal(info.rcpts[0].state, QUEUE_RCPT_PENDING);
		assert_int_equal(info.rcpts[0].attempts, i + 1);
		assert_in_range(info.rcpts[0].next_attempt, before + expect[i],
				after + expect[i]);
		assert_int_equal(info.rcpts[0].last_code, 451);
		assert_string_equal(info.rcpts[0].last_enhanced, "4.7.1");
		assert_string_equal(info.rcpts[0].last_action, "defer");
		assert_string_equal(info.rcpts[0].last_category, "greylist");
		queue_message_info_free(&info);
		/* Not due yet. */
		assert_int_equal(run(), 0);
		offset += expect[i];
		clock_set_offset(offset);
	}
}

static void
test_retry_and_drop(void **state)
{
	static const char *const rcpts[] = {"defer@a.example"};
	struct sub_opts o = {0};
	const char *error = NULL;
	char id[17];

	submit(&o, rcpts, 1, id);
	assert_int_equal(run(), 1);
	assert_int_equal(run(), 0);
	assert_int_equal(queue_retry(queue, id, &error), 1);
	assert_int_equal(run(), 1);
	assert_int_equal(queue_retry(queue, "0000000000000000", &error), 0);
	assert_int_equal(queue_drop(queue, id, &error), 1);
	assert_int_equal(queue_drop(queue, id, &error), 0);
	assert_int_equal(queue_retry(queue, id, &error), 0);
	clock_set_offset(86400);
	assert_int_equal(run(), 0);
}

/* Parses a DSN and checks its structure; returns the delivery-status part
 * (caller frees). */
static char *
check_report(const char *msg, size_t len, const char *action,
	     const char *third_type)
{
	struct sp_buf part;
	char *v;

	v = mime_header_get(msg, len, "From");
	assert_non_null(strstr(v, "mailer-daemon@example.com"));
	free(v);
	v = mime_header_get(msg, len, "To");
	assert_non_null(strstr(v, "sender@example.com"));
	free(v);
	v = mime_header_get(msg, len, "Auto-Submitted");
	assert_string_equal(v, "auto-replied");
	free(v);
	v = mime_header_get(msg, len, "Content-Type");
	assert_non_null(strstr(v, "multipart/report"));
	assert_non_null(strstr(v, "report-type=delivery-status"));
	free(v);
	assert_non_null(strstr(msg, "DKIM-Signature:"));

	sp_buf_init(&part);
	mime_section(msg, len, "1.MIME", &part);
	assert_non_null(strstr(part.data, "text/plain"));
	sp_buf_reset(&part);
	mime_section(msg, len, "2.MIME", &part);
	assert_non_null(strstr(part.data, "message/delivery-status"));
	sp_buf_reset(&part);
	mime_section(msg, len, "3.MIME", &part);
	assert_non_null(strstr(part.data, third_type));
	sp_buf_reset(&part);
	mime_section(msg, len, "3", &part);
	assert_non_null(strstr(part.data, "Subject: the subject line"));
	if (strcmp(third_type, "message/rfc822") == 0)
		assert_non_null(strstr(part.data, "The body of the message."));
	else
		assert_null(strstr(part.data, "The body of the message."));
	sp_buf_reset(&part);
	mime_section(msg, len, "2", &part);
	{
		char *expect = xasprintf("Action: %s\r\n", action);

		assert_non_null(strstr(part.data, expect));
		free(expect);
	}
	assert_non_null(
		strstr(part.data, "Reporting-MTA: dns; mx.sealpost.test\r\n"));
	assert_non_null(strstr(part.data, "Arrival-Date: "));
	return sp_buf_steal(&part, NULL);
}

static void
test_failure_dsn(void **state)
{
	static const char *const rcpts[] = {"reject@a.example",
					    "ok@a.example"};
	struct sub_opts o = {.envid = "ENV-42\r\nX-Injected: 1",
			     .orcpt = "rfc822;orig@a.example"};
	struct queue_message_info info;
	char id[17], dsn[4][17], *status, *msg;
	size_t len;

	submit(&o, rcpts, 2, id);
	assert_int_equal(run(), 2);
	show(id, &info);
	assert_int_equal(info.rcpts[0].state, QUEUE_RCPT_FAILED);
	assert_string_equal(info.rcpts[0].last_action, "reject");
	assert_string_equal(info.rcpts[0].last_category, "recipient");
	assert_int_equal(info.rcpts[1].state, QUEUE_RCPT_DELIVERED);
	assert_true(info.final > 0);
	queue_message_info_free(&info);

	assert_int_equal(count_dsns(dsn, 4), 1);
	show(dsn[0], &info);
	assert_true(info.is_dsn);
	assert_string_equal(info.mail_from, "");
	assert_int_equal(info.rcpt_count, 1);
	assert_string_equal(info.rcpts[0].address, "sender@example.com");
	queue_message_info_free(&info);

	/* The report is delivered with the null sender. */
	fake_reset();
	assert_int_equal(run(), 1);
	assert_int_equal(fake.count, 1);
	assert_string_equal(fake.log[0].mail_from, "");
	assert_string_equal(fake.log[0].rcpts[0], "sender@example.com");
	msg = fake.log[0].msg;
	len = fake.log[0].len;
	status = check_report(msg, len, "failed", "text/rfc822-headers");
	assert_non_null(strstr(status, "Original-Envelope-Id: ENV-42  "
				       "X-Injected: 1\r\n"));
	assert_non_null(strstr(status, "Original-Recipient: rfc822;orig@a."
				       "example\r\n"));
	assert_non_null(strstr(status,
			       "Final-Recipient: rfc822;reject@a.example\r\n"));
	assert_non_null(strstr(status, "Status: 5.1.1\r\n"));
	assert_non_null(strstr(status, "Remote-MTA: dns; mx.remote.test\r\n"));
	assert_non_null(strstr(status, "Diagnostic-Code: smtp; 550 5.1.1 no "
				       "such user\r\n"));
	assert_non_null(strstr(status, "Last-Attempt-Date: "));
	/* Only the failed recipient is reported. */
	assert_null(strstr(status, "ok@a.example"));
	assert_null(strstr(status, "Will-Retry-Until"));
	free(status);
	/* No report about a report. */
	assert_int_equal(count_dsns(NULL, 0), 1);
	assert_int_equal(run(), 0);
}

static void
test_ret_full(void **state)
{
	static const char *const rcpts[] = {"reject@a.example"};
	struct sub_opts o = {.ret = QUEUE_RET_FULL};
	char id[17], *status;

	submit(&o, rcpts, 1, id);
	assert_int_equal(run(), 1);
	fake_reset();
	assert_int_equal(run(), 1);
	status = check_report(fake.log[0].msg, fake.log[0].len, "failed",
			      "message/rfc822");
	free(status);
}

static void
test_null_sender_and_never(void **state)
{
	static const char *const rcpts[] = {"reject@a.example"};
	struct sub_opts null_sender = {.from = ""};
	struct sub_opts never = {.notify = QUEUE_NOTIFY_NEVER};
	struct sub_opts fail_only = {.notify = QUEUE_NOTIFY_SUCCESS};
	char id[17];

	submit(&null_sender, rcpts, 1, id);
	submit(&never, rcpts, 1, id);
	/* NOTIFY=SUCCESS only: no report on failure either. */
	submit(&fail_only, rcpts, 1, id);
	assert_int_equal(run(), 3);
	assert_int_equal(count_dsns(NULL, 0), 0);
}

static void
test_success_dsn(void **state)
{
	static const char *const rcpts[] = {"ok@a.example"};
	struct sub_opts o = {.notify = QUEUE_NOTIFY_SUCCESS |
				       QUEUE_NOTIFY_FAILURE};
	char id[17], dsn[2][17], *msg, *status;
	size_t len;

	submit(&o, rcpts, 1, id);
	assert_int_equal(run(), 1);
	assert_int_equal(count_dsns(dsn, 2), 1);
	msg = content(dsn[0], &len);
	status = check_report(msg, len, "relayed", "text/rfc822-headers");
	assert_non_null(strstr(status, "Status: 2.0.0\r\n"));
	free(status);
	free(msg);
}

static void
test_delay_dsn_once(void **state)
{
	static const char *const rcpts[] = {"defer@a.example"};
	struct sub_opts o = {0};
	struct queue_message_info info;
	char id[17], dsn[4][17], *msg, *status;
	size_t len;

	submit(&o, rcpts, 1, id);
	assert_int_equal(run(), 1);
	assert_int_equal(count_dsns(NULL, 0), 0);
	clock_set_offset(4 * 3600);
	assert_int_equal(run(), 1);
	assert_int_equal(count_dsns(dsn, 4), 1);
	show(id, &info);
	assert_true(info.rcpts[0].delay_notified);
	assert_int_equal(info.rcpts[0].state, QUEUE_RCPT_PENDING);
	queue_message_info_free(&info);
	msg = content(dsn[0], &len);
	status = check_report(msg, len, "delayed", "text/rfc822-headers");
	assert_non_null(strstr(status, "Will-Retry-Until: "));
	assert_non_null(strstr(status, "Status: 4.7.1\r\n"));
	free(status);
	free(msg);
	/* Later deferrals send no second one (the report itself is delivered
	 * to the fake and leaves the count of reports unchanged). */
	clock_set_offset(6 * 3600);
	assert_int_equal(run(), 2);
	clock_set_offset(8 * 3600);
	assert_int_equal(run(), 1);
	assert_int_equal(count_dsns(NULL, 0), 1);
}

static void
test_expiry(void **state)
{
	static const char *const rcpts[] = {"defer@a.example"};
	struct sub_opts o = {.notify = QUEUE_NOTIFY_FAILURE};
	struct queue_message_info info;
	char id[17], dsn[4][17], *msg, *status;
	size_t len;

	submit(&o, rcpts, 1, id);
	assert_int_equal(run(), 1);
	clock_set_offset(5 * 86400 - 3600);
	assert_int_equal(run(), 1);
	show(id, &info);
	assert_int_equal(info.rcpts[0].state, QUEUE_RCPT_PENDING);
	/* The last retry is no later than the expiry. */
	assert_true(info.rcpts[0].next_attempt <= info.accepted + 5 * 86400);
	queue_message_info_free(&info);
	assert_int_equal(count_dsns(NULL, 0), 0); /* NOTIFY=FAILURE only */
	clock_set_offset(5 * 86400 + 1);
	assert_int_equal(run(), 1);
	show(id, &info);
	assert_int_equal(info.rcpts[0].state, QUEUE_RCPT_FAILED);
	assert_string_equal(info.rcpts[0].last_action, "defer");
	assert_true(info.final > 0);
	queue_message_info_free(&info);
	assert_int_equal(count_dsns(dsn, 4), 1);
	msg = content(dsn[0], &len);
	status = check_report(msg, len, "failed", "text/rfc822-headers");
	assert_non_null(strstr(status, "Status: 4.7.1\r\n"));
	assert_non_null(
		strstr(status, "Diagnostic-Code: smtp; 451 4.7.1 greylisted"));
	free(status);
	free(msg);
}

static void
test_redaction(void **state)
{
	static const char *const rcpts[] = {"ok@a.example"};
	struct sub_opts keep = {0};
	struct sub_opts now = {.from = "sender@zero.example",
			       .domain = "zero.example"};
	struct queue_message_info info;
	const char *error = NULL;
	char kept[17], gone[17], *msg;
	size_t len;

	submit(&keep, rcpts, 1, kept);
	submit(&now, rcpts, 1, gone);
	assert_int_equal(run(), 2);
	/* Retention 0: redacted at once, headers kept. */
	show(gone, &info);
	assert_true(info.redacted > 0);
	queue_message_info_free(&info);
	msg = content(gone, &len);
	assert_non_null(strstr(msg, "Subject: the subject line\r\n"));
	assert_non_null(strstr(msg, "DKIM-Signature:"));
	assert_null(strstr(msg, "The body of the message."));
	assert_non_null(strstr(msg, "\r\n\r\n" REDACTED "\r\n"));
	free(msg);
	/* Retention 30 days: kept until then. */
	show(kept, &info);
	assert_int_equal(info.redacted, 0);
	queue_message_info_free(&info);
	msg = content(kept, &len);
	assert_non_null(strstr(msg, "The body of the message."));
	free(msg);
	clock_set_offset(29 * 86400);
	run();
	show(kept, &info);
	assert_int_equal(info.redacted, 0);
	queue_message_info_free(&info);
	clock_set_offset(30 * 86400 + 1);
	run();
	show(kept, &info);
	assert_true(info.redacted > 0);
	queue_message_info_free(&info);
	msg = content(kept, &len);
	assert_null(strstr(msg, "The body of the message."));
	assert_non_null(strstr(msg, REDACTED));
	free(msg);
	/* queue_purge_days after redaction the record goes. */
	assert_int_equal(queue_show(queue, gone, &info, &error), 0);
	clock_set_offset(60 * 86400 + 2);
	run();
	assert_int_equal(queue_show(queue, kept, &info, &error), 0);
}

static void
test_restart(void **state)
{
	static const char *const rcpts[] = {"ok@a.example",
					    "defer@b.example"};
	struct queue_message_info info;
	struct sub_opts o = {0};
	char id[17];

	submit(&o, rcpts, 2, id);
	reopen();
	show(id, &info);
	assert_int_equal(info.rcpt_count, 2);
	assert_int_equal(info.rcpts[0].state, QUEUE_RCPT_PENDING);
	queue_message_info_free(&info);
	assert_int_equal(run(), 2);
	reopen();
	/* Encrypted at rest. */
	{
		char *path = xasprintf("%s/queue.sqlite", dir);

		assert_true(fs_exists(path));
		assert_false(db_file_is_plaintext(path));
		free(path);
	}
	show(id, &info);
	assert_int_equal(info.rcpts[0].state, QUEUE_RCPT_DELIVERED);
	assert_int_equal(info.rcpts[1].state, QUEUE_RCPT_PENDING);
	assert_int_equal(info.rcpts[1].attempts, 1);
	queue_message_info_free(&info);
	/* The delivered recipient is never sent again. */
	fake_reset();
	clock_set_offset(3600);
	assert_int_equal(run(), 1);
	assert_int_equal(fake.count, 1);
	assert_string_equal(fake.log[0].rcpts[0], "defer@b.example");
}

static void
test_runner_threads(void **state)
{
	static const char *const rcpts[] = {"ok@a.example", "ok@b.example"};
	struct queue_runner_settings set = settings;
	struct sub_opts o = {0};
	const char *error = NULL;
	char ids[20][17];
	unsigned seen;

	set.threads = 3;
	if (queue_runner_start(queue, &set, &error) < 0)
		fail_msg("queue_runner_start: %s", error);
	for (size_t i = 0; i < SP_N_ELEMENTS(ids); i++)
		submit(&o, rcpts, 2, ids[i]);
	/* Bounded wait: at most 30 s for 40 recipients. */
	for (int i = 0; i < 3000; i++) {
		pthread_mutex_lock(&fake.lock);
		seen = fake.rcpts_seen;
		pthread_mutex_unlock(&fake.lock);
		if (seen >= 40)
			break;
		usleep(10000);
	}
	queue_runner_stop(queue);
	assert_int_equal(fake.rcpts_seen, 40);
	/* Every (message, domain) exactly once. */
	for (size_t i = 0; i < SP_N_ELEMENTS(ids); i++) {
		unsigned n = 0;
		struct queue_message_info info;

		for (size_t j = 0; j < fake.count; j++)
			if (strcmp(fake.log[j].id, ids[i]) == 0)
				n++;
		assert_int_equal(n, 2);
		show(ids[i], &info);
		assert_true(info.final > 0);
		queue_message_info_free(&info);
	}
}

static void
verify_dkim(const char *msg, size_t len, bool ed25519)
{
	struct mailauth_dns *dns = mailauth_dns_table_create();
	struct account_dkim_key **keys;
	struct mailauth_dkim_sig *sigs;
	struct account_db *db;
	const char *error = NULL;
	size_t count, nsigs;
	bool rsa_pass = false, ed_pass = false;

	assert_int_equal(account_db_open(dir, 0, &db, &error), ACCOUNT_OK);
	assert_int_equal(account_dkim_key_list(db, "example.com", &keys, &count,
					       &error),
			 ACCOUNT_OK);
	for (size_t i = 0; i < count; i++) {
		char *record = mailauth_key_dns_record(keys[i]->key);
		char *line = xasprintf("%s._domainkey.example.com TXT %s\n",
				       keys[i]->selector, record);

		assert_int_equal(mailauth_dns_table_add(dns, line, &error), 0);
		free(line);
		free(record);
	}
	account_dkim_key_list_free(&keys, count);
	account_db_close(&db);
	mailauth_dkim_verify(dns, msg, len, 0, &sigs, &nsigs);
	assert_int_equal(nsigs, ed25519 ? 2 : 1);
	for (size_t i = 0; i < nsigs; i++) {
		assert_int_equal(sigs[i].result, MAILAUTH_PASS);
		assert_string_equal(sigs[i].domain, "example.com");
		if (sigs[i].algorithm == MAILAUTH_KEY_RSA)
			rsa_pass = true;
		else
			ed_pass = true;
	}
	assert_true(rsa_pass);
	assert_int_equal(ed_pass, ed25519);
	mailauth_dkim_sigs_free(&sigs, nsigs);
	mailauth_dns_destroy(&dns);
}

static void
test_dkim(void **state)
{
	static const struct queue_recipient rcpt = {.address =
							    "ok@a.example"};
	struct queue_submission sub = {
		.mail_from = "sender@example.com",
		.domain = "EXAMPLE.com",
		.rcpts = &rcpt,
		.rcpt_count = 1,
		.msg = message,
		.len = sizeof(message) - 1,
	};
	struct account_db *db;
	const char *error = NULL;
	char id[17], *signed_msg, *stored;
	size_t signed_len, stored_len;

	assert_int_equal(queue_submit(queue, &sub, id, &signed_msg,
				      &signed_len, &error),
			 0);
	assert_true(signed_len > sizeof(message));
	assert_memory_equal(signed_msg + signed_len - (sizeof(message) - 1),
			    message, sizeof(message) - 1);
	verify_dkim(signed_msg, signed_len, false);
	stored = content(id, &stored_len);
	assert_int_equal(stored_len, signed_len);
	assert_memory_equal(stored, signed_msg, signed_len);
	free(stored);
	free(signed_msg);

	/* With Ed25519 on, a second signature (after the key cache's TTL,
	 * which the clock skips). */
	assert_int_equal(account_db_open(dir, 0, &db, &error), ACCOUNT_OK);
	assert_int_equal(account_domain_set_dkim_ed25519(db, "example.com",
							 true, &error),
			 ACCOUNT_OK);
	account_db_close(&db);
	clock_set_offset(61);
	assert_int_equal(queue_submit(queue, &sub, id, &signed_msg,
				      &signed_len, &error),
			 0);
	verify_dkim(signed_msg, signed_len, true);
	free(signed_msg);
}

static void
test_unknown_domain(void **state)
{
	static const struct queue_recipient rcpt = {.address =
							    "ok@a.example"};
	struct queue_submission sub = {
		.mail_from = "sender@nowhere.example",
		.domain = "nowhere.example",
		.rcpts = &rcpt,
		.rcpt_count = 1,
		.msg = message,
		.len = sizeof(message) - 1,
	};
	const char *error = NULL;
	char id[17];

	assert_int_equal(queue_submit(queue, &sub, id, NULL, NULL, &error),
			 -1);
	assert_non_null(error);
	assert_int_equal(count_dsns(NULL, 0), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
		T(test_submit_and_group),
		T(test_backoff),
		T(test_retry_and_drop),
		T(test_failure_dsn),
		T(test_ret_full),
		T(test_null_sender_and_never),
		T(test_success_dsn),
		T(test_delay_dsn_once),
		T(test_expiry),
		T(test_redaction),
		T(test_restart),
		T(test_runner_threads),
		T(test_dkim),
		T(test_unknown_domain),
#undef T
	};

	log_set_level(LOG_LEVEL_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
