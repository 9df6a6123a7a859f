/* Private to src/queue. */
#ifndef SEALPOST_QUEUE_PRIVATE_H
#define SEALPOST_QUEUE_PRIVATE_H

#include "queue.h"

#include "account/account.h"
#include "core/core.h"
#include "db/db.h"

#include <pthread.h>

/* The exact text a redacted message's body becomes (issue 3). */
#define QUEUE_REDACTED_TEXT                                                    \
	"This message was successfully sent. It has been redacted and "       \
	"purged for your security and privacy."

/* What one runner thread (or queue_run_once) works on: the due recipients
 * of one message on one destination domain. */
struct queue_job {
	char id[17];
	char *domain;
	/* In the in-flight set: 0 while delivered; else the job failed to
	 * commit its outcome and is held back until then, so a broken disk
	 * does not turn into the same delivery over and over. */
	time_t held_until;
};

struct queue {
	char *data_dir;
	/* The one connection on queue.sqlite; a transaction holds the lock
	 * from BEGIN to COMMIT, deliveries never do. */
	pthread_mutex_t db_lock;
	sqlite3 *db;
	/* Control-plane handles (retention, keys), pooled. */
	pthread_mutex_t pool_lock;
	struct account_db **pool;
	size_t pool_count, pool_cap;
	struct account_keyring *keyring;

	/* runner.c */
	pthread_mutex_t run_lock;
	pthread_cond_t run_cond;
	bool running, stopping;
	/* Bumped by queue_runner_wake(): a thread sleeps only when nothing
	 * woke the runner since it last looked. */
	unsigned long wake_gen;
	pthread_t *threads;
	unsigned thread_count;
	struct queue_runner_settings set;
	char *hostname;
	/* Jobs being delivered now, so no two threads take the same. */
	struct queue_job *inflight;
	size_t inflight_count, inflight_cap;
	time_t last_maintenance;
};

/* queue.c */
struct account_db *queue_account_get(struct queue *queue,
				     const char **error_r);
/* ok false: the handle failed and is closed instead of pooled. */
void queue_account_put(struct queue *queue, struct account_db *db, bool ok);
/* Signs msg with the domain's keys (RSA, then Ed25519 when enabled) into
 * *out (headers prepended). 0 or -1 with *error_r. */
int queue_dkim_sign(struct queue *queue, const char *domain, const void *msg,
		    size_t len, struct sp_buf *out, const char **error_r);
/* Inserts one message with its recipients inside the caller's
 * transaction (db_lock held). retention_days: the domain's. */
int queue_insert_locked(struct queue *queue,
			const struct queue_submission *sub, bool is_dsn,
			int retention_days, const void *msg, size_t len,
			char id_r[17], const char **error_r);
/* The domain's retention in days (default_retention_days when the domain
 * is unknown). */
int queue_domain_retention(struct queue *queue, const char *domain);
/* Wakes the runner threads (no-op when none run). */
void queue_runner_wake(struct queue *queue);
const char *queue_error_printf(const char *fmt, ...) SP_PRINTF(1, 2);
const char *queue_db_error(struct queue *queue, const char *what);

/* runner.c */
/* Redacts and purges what is due (redact.c). */
void queue_maintenance(struct queue *queue);

/* dsn.c */
enum queue_dsn_kind {
	QUEUE_DSN_FAILED,
	QUEUE_DSN_DELAYED,
	QUEUE_DSN_RELAYED,
};

/* One recipient's lines in a DSN. */
struct queue_dsn_rcpt {
	const char *address;
	const char *orcpt;
	int code;
	const char *enhanced; /* "" when none */
	const char *text;
	const char *remote; /* "" when none */
	time_t last_attempt;
};

struct queue_dsn_params {
	enum queue_dsn_kind kind;
	const char *hostname; /* Reporting-MTA */
	const char *domain;   /* mailer-daemon@ */
	const char *mail_from; /* the original envelope sender */
	const char *envid;    /* or NULL */
	time_t arrival;
	time_t retry_until; /* delayed only */
	enum queue_ret ret;
	const char *orig; /* the original message */
	size_t orig_len;
	const struct queue_dsn_rcpt *rcpts;
	size_t rcpt_count;
};

/* Builds the (unsigned) RFC 3464 report. Caller frees. */
char *queue_dsn_build(const struct queue_dsn_params *params, size_t *len_r);
/* RFC 5322 date-time of t in UTC; out holds 40 bytes. */
void queue_format_date(time_t t, char out[40]);
/* The length of the header section including the empty line (or the
 * whole message when there is no body). */
size_t queue_header_length(const char *msg, size_t len);

/* redact.c */
/* The message with its body replaced by the redaction notice. Caller
 * frees. */
char *queue_redact_message(const char *msg, size_t len, size_t *len_r);
int queue_redact_due(struct queue *queue, time_t now, const char **error_r);

#endif
