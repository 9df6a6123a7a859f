/*
 * queue: the outbound queue of submitted mail.
 *
 * Submission (src/smtp, port 465/587) hands every accepted message to
 * queue_submit(), which signs it with the sending domain's DKIM keys and
 * writes it, with one row per recipient, into <data>/queue.sqlite (a
 * SQLite3MultipleCiphers database encrypted with a key derived from the
 * server key) in one durable transaction: when it returns 0 the message is
 * on disk and the session may answer 250.
 *
 * A runner thread (queue_runner_start) delivers what is due: the
 * recipients of one message are grouped by destination domain and handed
 * to the delivery function the caller injected (`sealpost serve` passes
 * the SMTP client; unit tests pass a fake), so this module knows what to
 * send and when, and src/smtp knows how. Each recipient's outcome is
 * committed as soon as it is known: delivered, deferred (retried with
 * growing back-off until queue_max_age_days after acceptance, then
 * failed) or failed. Failures and long delays produce RFC 3464 delivery
 * status notifications, queued like any message from
 * mailer-daemon@<domain> to the envelope sender, never to a null sender.
 *
 * When every recipient reached a final state the message body is kept for
 * the domain's retention, then replaced by a short notice (headers kept),
 * and the record is deleted queue_purge_days after that. Time is
 * clock_now(), which tests move.
 *
 * After a restart (or kill -9) the runner starts from the database:
 * nothing that queue_submit() acknowledged is lost, a recipient whose
 * delivery was committed is never sent again, and recipients that were
 * due are retried at the runner's normal pace, not all at once.
 *
 * Decisions the interface leaves open, as implemented:
 * - Back-off after the n-th deferral: queue_retry_min_seconds * 2^(n-1),
 *   at most queue_retry_max_seconds, never past the expiry; a deferral at
 *   or after the expiry fails the recipient (the failure DSN then carries
 *   the last 4.x.x status, as Postfix does).
 * - The delay DSN comes at the first deferral queue_delay_warning_hours
 *   or more after acceptance, once per recipient.
 * - Reports are made per attempt: one DSN per kind (failed, delayed,
 *   relayed for NOTIFY=SUCCESS) for the recipients of that envelope; they
 *   are committed in the same transaction as the outcomes.
 * - Retention is the domain's retention_days when the message was
 *   accepted (default_retention_days for an unknown domain). Redaction
 *   keeps every header but Content-Type and Content-Transfer-Encoding,
 *   which become text/plain, 7bit, to describe the notice.
 * - One process delivers: the in-flight set lives in memory, so
 *   queue_run_once() must not run in a second process beside a server.
 */
#ifndef SEALPOST_QUEUE_H
#define SEALPOST_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct queue;

/* RFC 3461 NOTIFY, a bit set; 0 means "not given" (FAILURE,DELAY). */
enum queue_notify {
	QUEUE_NOTIFY_NEVER = 1 << 0,
	QUEUE_NOTIFY_SUCCESS = 1 << 1,
	QUEUE_NOTIFY_FAILURE = 1 << 2,
	QUEUE_NOTIFY_DELAY = 1 << 3,
};

/* RFC 3461 RET. */
enum queue_ret {
	QUEUE_RET_UNSPEC, /* headers only, as for HDRS */
	QUEUE_RET_FULL,
	QUEUE_RET_HDRS,
};

struct queue_recipient {
	const char *address; /* the forward-path, without angle brackets */
	const char *orcpt;   /* ORCPT decoded ("rfc822;a@b"), or NULL */
	unsigned notify;     /* enum queue_notify bits, 0: not given */
};

struct queue_submission {
	const char *mail_from; /* envelope sender; "" for the null sender */
	/* The sending domain (of the authenticated alias): DKIM keys,
	 * retention, mailer-daemon@ of its DSNs. */
	const char *domain;
	const char *envid; /* ENVID (xtext-decoded), or NULL */
	enum queue_ret ret;
	bool eightbit, smtputf8;
	const struct queue_recipient *rcpts;
	size_t rcpt_count;
	/* The message as it will be sent (CR LF lines, not dot-stuffed),
	 * before DKIM signing: queue_submit() adds the signatures. */
	const void *msg;
	size_t len;
};

/* Opens (creating on first use) <data_dir>/queue.sqlite with the key
 * derived from <data_dir>/server.key. One handle serves every thread.
 * 0 or -1 with *error_r. */
int queue_open(const char *data_dir, struct queue **queue_r,
	       const char **error_r);
/* Stops the runner if it runs, closes; NULLs, accepts NULL. */
void queue_close(struct queue **queue);

/* DKIM-signs and stores one message durably (fsync'd before it returns)
 * and wakes the runner. *signed_r (may be NULL) receives the signed
 * message the caller may keep a copy of (the Sent folder); free() it.
 * id_r receives the queue id (16 hex digits). Thread-safe.
 * 0, or -1 with *error_r (the session answers 451 4.3.0). */
int queue_submit(struct queue *queue, const struct queue_submission *sub,
		 char id_r[17], char **signed_r, size_t *signed_len_r,
		 const char **error_r);

/* ---- delivery -------------------------------------------------------- */

enum queue_action {
	QUEUE_ACTION_OK,
	QUEUE_ACTION_DEFER,
	QUEUE_ACTION_REJECT,
};

/* One recipient's outcome of one attempt, filled by the delivery func. */
struct queue_result {
	enum queue_action action;
	const char *category; /* smtp_reply_category_name(); static */
	int code;	      /* remote reply code, 0: none (network) */
	char enhanced[16];    /* "5.1.1" or "" */
	char text[512];	      /* remote reply text */
	char remote[256];     /* host that answered, "" when none */
};

/* One attempt: one envelope, all its recipients on one destination
 * domain. */
struct queue_delivery {
	const char *id; /* queue id, for logs */
	const char *mail_from;
	const char *const *rcpts;
	size_t rcpt_count;
	const char *envid;
	const void *msg;
	size_t len;
	bool eightbit, smtputf8;
};

/* Delivers and fills results[i] for rcpts[i]. Runs on a runner thread;
 * may block. */
typedef void queue_deliver_func(void *ctx, const struct queue_delivery *d,
				 struct queue_result *results);

struct queue_runner_settings {
	queue_deliver_func *deliver;
	void *deliver_ctx;
	unsigned threads; /* concurrent deliveries; 0: 1 */
	/* The name of this host for DSNs (Reporting-MTA). */
	const char *hostname;
};

/* Starts the runner threads. 0 or -1 with *error_r. */
int queue_runner_start(struct queue *queue,
		       const struct queue_runner_settings *settings,
		       const char **error_r);
/* Lets the deliveries in flight finish, joins the threads. */
void queue_runner_stop(struct queue *queue);
/* Runs one pass over what is due now on the calling thread and returns
 * when it is done (tests and `sealpost queue run`). Returns the number of
 * recipients attempted, -1 on error. */
int queue_run_once(struct queue *queue,
		   const struct queue_runner_settings *settings,
		   const char **error_r);

/* ---- inspection and control (the `sealpost queue` CLI) ------------- */

enum queue_rcpt_state {
	QUEUE_RCPT_PENDING,   /* not tried yet, or deferred */
	QUEUE_RCPT_DELIVERED,
	QUEUE_RCPT_FAILED,    /* rejected, expired, or dropped */
};

struct queue_rcpt_info {
	char *address;
	enum queue_rcpt_state state;
	unsigned attempts;
	time_t next_attempt; /* 0 when final */
	int last_code;
	/* last_action: the last answer's "ok", "defer" or "reject" (""
	 * before any attempt; a failed recipient whose last action is
	 * "defer" expired); last_category: smtp_reply_category_name(). */
	char *last_enhanced, *last_text, *last_action, *last_category;
	bool delay_notified;
};

struct queue_message_info {
	char id[17];
	char *mail_from;
	char *domain;
	time_t accepted;
	time_t final;	 /* every recipient final; 0 while not */
	time_t redacted; /* 0 while the content is kept */
	uint64_t size;
	bool is_dsn;
	struct queue_rcpt_info *rcpts;
	size_t rcpt_count;
};

/* Frees what an info holds (not the struct itself); accepts NULL. */
void queue_message_info_free(struct queue_message_info *info);
/* Frees a queue_list() array; NULLs the pointer. */
void queue_message_list_free(struct queue_message_info **list, size_t count);

/* Every message still held (pending ones, and final ones until they are
 * purged), oldest first: *list_r is an array of *count_r entries, freed
 * with queue_message_list_free(&list, count). */
int queue_list(struct queue *queue, struct queue_message_info **list_r,
	       size_t *count_r, const char **error_r);
/* 1 and *info_r, 0 when there is no such id, -1 on error. */
int queue_show(struct queue *queue, const char *id,
	       struct queue_message_info *info_r, const char **error_r);
/* The stored content of `id` (signed; after redaction the notice): 1 and
 * *msg_r (NUL-terminated, free()), 0 no such id, -1. */
int queue_content(struct queue *queue, const char *id, char **msg_r,
		  size_t *len_r, const char **error_r);
/* Makes the pending recipients of `id` due now. 1, 0 no such id, -1. */
int queue_retry(struct queue *queue, const char *id, const char **error_r);
/* Removes the message and its recipients at once (securely: the file is
 * opened with secure_delete). 1, 0 no such id, -1. */
int queue_drop(struct queue *queue, const char *id, const char **error_r);

#endif
