/* The runner: what is due, to whom, and what became of it.
 *
 * A job is the due recipients of one message on one destination domain
 * (one envelope, one connection). Runner threads take jobs oldest-due
 * first; an in-memory set of the jobs in flight keeps two threads off the
 * same one. Nothing is written before a delivery: an attempt cut short by
 * a crash leaves its recipients pending and due, and the restarted runner
 * retries them at its normal pace (queue_threads jobs at a time), so a
 * restart never turns a backlog into a storm. Each outcome is committed in
 * one durable transaction together with the DSNs it causes, so a report is
 * never lost nor sent twice for one outcome.
 *
 * Back-off: after the n-th deferral the next attempt is
 * queue_retry_min_seconds * 2^(n-1), at most queue_retry_max_seconds, and
 * never later than the message's expiry (queue_max_age_days after
 * acceptance); a deferral at or after expiry fails the recipient. The
 * threads sleep until woken by queue_submit()/queue_retry() or for one
 * second, when they look again: the due query reads an index, and the
 * poll notices `sealpost queue retry` from another process and a clock
 * that tests moved. */
#include "queue-private.h"

#include "conf/conf.h"

#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

/* How many due rows one look reads (several rows may share a job). */
#define RUNNER_DUE_ROWS 1000

struct job_rcpt {
	int64_t idx;
	char *address, *orcpt;
	unsigned notify;
	unsigned attempts;
	bool delay_notified;
	struct queue_result res;
	enum queue_rcpt_state state;
	time_t next_attempt;
	const char *action; /* of the last answer: ok, defer, reject */
	bool dsn_failed, dsn_delayed, dsn_relayed;
};

struct job_msg {
	char *mail_from, *domain, *envid;
	enum queue_ret ret;
	bool eightbit, smtputf8, is_dsn;
	time_t accepted;
	int retention_days;
	char *content;
	size_t len;
};

static void
job_msg_clear(struct job_msg *m)
{
	free(m->mail_from);
	free(m->domain);
	free(m->envid);
	if (m->content != NULL)
		sodium_memzero(m->content, m->len);
	free(m->content);
	memset(m, 0, sizeof(*m));
}

static void
job_rcpts_free(struct job_rcpt *r, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		free(r[i].address);
		free(r[i].orcpt);
	}
	free(r);
}

/* ---- the jobs in flight ------------------------------------------------ */

/* True when the job is being delivered or held back; forgets holds that
 * ended. */
static bool
inflight_has_locked(struct queue *q, const char *id, const char *domain,
		    time_t now)
{
	for (size_t i = 0; i < q->inflight_count; i++) {
		struct queue_job *j = &q->inflight[i];

		if (strcmp(j->id, id) != 0 || strcmp(j->domain, domain) != 0)
			continue;
		if (j->held_until == 0 || j->held_until > now)
			return true;
		free(j->domain);
		q->inflight[i] = q->inflight[--q->inflight_count];
		return false;
	}
	return false;
}

/* The job is done; with `hold`, it stays out of reach until
 * queue_retry_min_seconds from now (its outcome was not committed). */
static void
inflight_remove(struct queue *q, const struct queue_job *job, bool hold)
{
	pthread_mutex_lock(&q->run_lock);
	for (size_t i = 0; i < q->inflight_count; i++) {
		if (strcmp(q->inflight[i].id, job->id) == 0 &&
		    strcmp(q->inflight[i].domain, job->domain) == 0) {
			if (hold) {
				q->inflight[i].held_until =
					clock_now() +
					conf_uint("queue_retry_min_seconds", 1);
				break;
			}
			free(q->inflight[i].domain);
			q->inflight[i] = q->inflight[--q->inflight_count];
			break;
		}
	}
	pthread_mutex_unlock(&q->run_lock);
}

/* Claims up to `max` due jobs not in flight (0: no limit), marking them in
 * flight. Returns how many, -1 on a database error. */
static int
claim_jobs(struct queue *q, time_t now, size_t max, struct queue_job **jobs_r,
	   const char **error_r)
{
	struct queue_job *jobs = NULL;
	size_t count = 0;
	sqlite3_stmt *st;
	int rc = SQLITE_DONE;

	*jobs_r = NULL;
	pthread_mutex_lock(&q->db_lock);
	st = db_prepare(q->db, "SELECT message_id, rcpt_domain FROM recipient "
			       "WHERE state = 0 AND next_attempt <= ? "
			       "ORDER BY next_attempt LIMIT ?");
	sqlite3_bind_int64(st, 1, now);
	sqlite3_bind_int(st, 2, max == 0 ? -1 : RUNNER_DUE_ROWS);
	pthread_mutex_lock(&q->run_lock);
	while ((max == 0 || count < max) &&
	       (rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *id = (const char *)sqlite3_column_text(st, 0);
		const char *domain = (const char *)sqlite3_column_text(st, 1);

		if (id == NULL || domain == NULL ||
		    inflight_has_locked(q, id, domain, now))
			continue;
		if (q->inflight_count == q->inflight_cap) {
			q->inflight_cap = q->inflight_cap == 0
						  ? 16
						  : q->inflight_cap * 2;
			q->inflight = xrealloc(q->inflight,
					       q->inflight_cap *
						       sizeof(*q->inflight));
		}
		str_copy(q->inflight[q->inflight_count].id, id, 17);
		q->inflight[q->inflight_count].domain = xstrdup(domain);
		q->inflight[q->inflight_count].held_until = 0;
		q->inflight_count++;
		jobs = xrealloc(jobs, (count + 1) * sizeof(*jobs));
		str_copy(jobs[count].id, id, 17);
		jobs[count].domain = xstrdup(domain);
		count++;
	}
	if (max != 0 && count >= max)
		rc = SQLITE_DONE;
	pthread_mutex_unlock(&q->run_lock);
	sqlite3_finalize(st);
	pthread_mutex_unlock(&q->db_lock);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		*error_r = queue_db_error(q, "due query");
		for (size_t i = 0; i < count; i++) {
			inflight_remove(q, &jobs[i], false);
			free(jobs[i].domain);
		}
		free(jobs);
		return -1;
	}
	*jobs_r = jobs;
	return (int)count;
}

/* ---- one job ----------------------------------------------------------- */

static char *
col_dup(sqlite3_stmt *st, int col)
{
	const unsigned char *s = sqlite3_column_text(st, col);

	return s != NULL ? xstrdup((const char *)s) : NULL;
}

/* 1 loaded, 0 nothing to do (dropped, or no longer due), -1 error. */
static int
job_load(struct queue *q, const struct queue_job *job, time_t now,
	 struct job_msg *m, struct job_rcpt **rcpts_r, size_t *count_r,
	 const char **error_r)
{
	struct job_rcpt *rcpts = NULL;
	size_t count = 0;
	sqlite3_stmt *st;
	int rc, ret = 1;

	memset(m, 0, sizeof(*m));
	*rcpts_r = NULL;
	*count_r = 0;
	pthread_mutex_lock(&q->db_lock);
	st = db_prepare(q->db, "SELECT mail_from, domain, envid, ret, "
			       "eightbit, smtputf8, is_dsn, accepted, "
			       "retention_days, content FROM message "
			       "WHERE id = ?");
	sqlite3_bind_text(st, 1, job->id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		m->mail_from = col_dup(st, 0);
		m->domain = col_dup(st, 1);
		m->envid = col_dup(st, 2);
		m->ret = (enum queue_ret)sqlite3_column_int(st, 3);
		m->eightbit = sqlite3_column_int(st, 4) != 0;
		m->smtputf8 = sqlite3_column_int(st, 5) != 0;
		m->is_dsn = sqlite3_column_int(st, 6) != 0;
		m->accepted = (time_t)sqlite3_column_int64(st, 7);
		m->retention_days = sqlite3_column_int(st, 8);
		m->len = (size_t)sqlite3_column_bytes(st, 9);
		m->content = xmalloc(m->len + 1);
		if (m->len > 0)
			memcpy(m->content, sqlite3_column_blob(st, 9), m->len);
		m->content[m->len] = '\0';
	} else {
		ret = rc == SQLITE_DONE ? 0 : -1;
	}
	sqlite3_finalize(st);
	if (ret == 1) {
		st = db_prepare(q->db,
				"SELECT idx, address, orcpt, notify, attempts, "
				"delay_notified FROM recipient "
				"WHERE message_id = ? AND rcpt_domain = ? AND "
				"state = 0 AND next_attempt <= ? ORDER BY idx");
		sqlite3_bind_text(st, 1, job->id, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, job->domain, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, now);
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			struct job_rcpt *r;

			rcpts = xrealloc(rcpts, (count + 1) * sizeof(*rcpts));
			r = &rcpts[count++];
			memset(r, 0, sizeof(*r));
			r->idx = sqlite3_column_int64(st, 0);
			r->address = col_dup(st, 1);
			r->orcpt = col_dup(st, 2);
			r->notify = (unsigned)sqlite3_column_int(st, 3);
			r->attempts = (unsigned)sqlite3_column_int(st, 4);
			r->delay_notified = sqlite3_column_int(st, 5) != 0;
			if (r->address == NULL)
				r->address = xstrdup("");
		}
		if (rc != SQLITE_DONE)
			ret = -1;
		else if (count == 0)
			ret = 0;
		sqlite3_finalize(st);
	}
	if (ret < 0)
		*error_r = queue_db_error(q, "load");
	pthread_mutex_unlock(&q->db_lock);
	if (ret <= 0) {
		job_msg_clear(m);
		job_rcpts_free(rcpts, count);
		return ret;
	}
	*rcpts_r = rcpts;
	*count_r = count;
	return 1;
}

/* RFC 3461: NOTIFY=NEVER asks for nothing; no NOTIFY means FAILURE,DELAY. */
static bool
notify_wants(unsigned notify, enum queue_notify what)
{
	if ((notify & QUEUE_NOTIFY_NEVER) != 0)
		return false;
	if (notify == 0)
		return what == QUEUE_NOTIFY_FAILURE || what == QUEUE_NOTIFY_DELAY;
	return (notify & (unsigned)what) != 0;
}

static time_t
backoff_seconds(unsigned attempts)
{
	time_t min = conf_uint("queue_retry_min_seconds", 1);
	time_t max = conf_uint("queue_retry_max_seconds", 1);
	time_t delay = min;

	for (unsigned i = 1; i < attempts && delay < max; i++)
		delay *= 2;
	return delay < max ? delay : max;
}

static void
job_outcomes(const struct job_msg *m, struct job_rcpt *rcpts, size_t count,
	     time_t now)
{
	time_t expire = m->accepted +
			(time_t)conf_uint("queue_max_age_days", 0) * 86400;
	time_t warn = (time_t)conf_uint("queue_delay_warning_hours", 0) * 3600;
	bool reports = m->mail_from[0] != '\0' && !m->is_dsn;

	for (size_t i = 0; i < count; i++) {
		struct job_rcpt *r = &rcpts[i];

		r->attempts++;
		switch (r->res.action) {
		case QUEUE_ACTION_OK:
			r->state = QUEUE_RCPT_DELIVERED;
			r->action = "ok";
			r->dsn_relayed = reports &&
					 notify_wants(r->notify,
						      QUEUE_NOTIFY_SUCCESS);
			break;
		case QUEUE_ACTION_REJECT:
			r->state = QUEUE_RCPT_FAILED;
			r->action = "reject";
			r->dsn_failed = reports &&
					notify_wants(r->notify,
						     QUEUE_NOTIFY_FAILURE);
			break;
		default:
			r->action = "defer";
			if (now >= expire) {
				/* Expired: failed, after a last deferral. */
				r->state = QUEUE_RCPT_FAILED;
				r->dsn_failed =
					reports &&
					notify_wants(r->notify,
						     QUEUE_NOTIFY_FAILURE);
				break;
			}
			r->state = QUEUE_RCPT_PENDING;
			r->next_attempt = now + backoff_seconds(r->attempts);
			if (r->next_attempt > expire)
				r->next_attempt = expire;
			if (!r->delay_notified && now - m->accepted >= warn) {
				/* Marked even when not wanted: the question
				 * is settled once per recipient. */
				r->delay_notified = true;
				r->dsn_delayed =
					reports &&
					notify_wants(r->notify,
						     QUEUE_NOTIFY_DELAY);
			}
			break;
		}
	}
}

/* Builds and signs one report about the recipients flagged for `kind`;
 * NULL when there are none or signing failed (logged). */
static char *
job_report(struct queue *q, const char *id, const struct job_msg *m,
	   const struct job_rcpt *rcpts, size_t count,
	   enum queue_dsn_kind kind, time_t now, size_t *len_r)
{
	struct queue_dsn_rcpt *dr = xcalloc(count, sizeof(*dr));
	struct queue_dsn_params p;
	struct sp_buf out;
	const char *error;
	size_t n = 0, len;
	char *report;

	for (size_t i = 0; i < count; i++) {
		const struct job_rcpt *r = &rcpts[i];
		bool want = kind == QUEUE_DSN_FAILED    ? r->dsn_failed
			    : kind == QUEUE_DSN_DELAYED ? r->dsn_delayed
							: r->dsn_relayed;

		if (!want)
			continue;
		dr[n].address = r->address;
		dr[n].orcpt = r->orcpt;
		dr[n].code = r->res.code;
		dr[n].enhanced = r->res.enhanced;
		dr[n].text = r->res.text;
		dr[n].remote = r->res.remote;
		dr[n].last_attempt = now;
		n++;
	}
	if (n == 0) {
		free(dr);
		return NULL;
	}
	memset(&p, 0, sizeof(p));
	p.kind = kind;
	p.hostname = q->hostname != NULL ? q->hostname : "localhost";
	p.domain = m->domain;
	p.mail_from = m->mail_from;
	p.envid = m->envid;
	p.arrival = m->accepted;
	p.retry_until = m->accepted +
			(time_t)conf_uint("queue_max_age_days", 0) * 86400;
	p.ret = m->ret;
	p.orig = m->content;
	p.orig_len = m->len;
	p.rcpts = dr;
	p.rcpt_count = n;
	report = queue_dsn_build(&p, &len);
	free(dr);
	sp_buf_init(&out);
	if (queue_dkim_sign(q, m->domain, report, len, &out, &error) < 0) {
		log_error(id, "queue: report not signed, sent unsigned: %s",
			  error);
		sp_buf_reset(&out);
		sp_buf_append(&out, report, len);
	}
	free(report);
	return sp_buf_steal(&out, len_r);
}

/* Commits the outcomes and the reports in one durable transaction. */
static int
job_commit(struct queue *q, const char *id, const struct job_msg *m,
	   const struct job_rcpt *rcpts, size_t count, char **reports,
	   const size_t *report_lens, size_t report_count, time_t now,
	   const char **error_r)
{
	struct queue_recipient to = {.address = m->mail_from,
				     .notify = QUEUE_NOTIFY_NEVER};
	struct queue_submission dsn = {
		.mail_from = "",
		.domain = m->domain,
		.ret = QUEUE_RET_UNSPEC,
		.eightbit = true,
		.smtputf8 = !str_is_ascii(m->mail_from),
		.rcpts = &to,
		.rcpt_count = 1,
	};
	sqlite3_stmt *st;
	int rc = SQLITE_DONE, exists = 0;

	pthread_mutex_lock(&q->db_lock);
	if (db_begin_durable(q->db, error_r) < 0) {
		pthread_mutex_unlock(&q->db_lock);
		return -1;
	}
	st = db_prepare(q->db,
			"UPDATE recipient SET state = ?, attempts = ?, "
			"next_attempt = ?, last_attempt = ?, last_code = ?, "
			"last_enhanced = ?, last_text = ?, last_action = ?, "
			"last_category = ?, remote = ?, delay_notified = ? "
			"WHERE message_id = ? AND idx = ?");
	for (size_t i = 0; i < count && rc == SQLITE_DONE; i++) {
		const struct job_rcpt *r = &rcpts[i];

		sqlite3_reset(st);
		sqlite3_bind_int(st, 1, (int)r->state);
		sqlite3_bind_int(st, 2, (int)r->attempts);
		sqlite3_bind_int64(st, 3, r->next_attempt);
		sqlite3_bind_int64(st, 4, now);
		sqlite3_bind_int(st, 5, r->res.code);
		sqlite3_bind_text(st, 6, r->res.enhanced, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 7, r->res.text, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 8, r->action, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 9,
				  r->res.category != NULL ? r->res.category
							  : "",
				  -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 10, r->res.remote, -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 11, r->delay_notified);
		sqlite3_bind_text(st, 12, id, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 13, r->idx);
		rc = sqlite3_step(st);
		exists += sqlite3_changes(q->db);
	}
	sqlite3_finalize(st);
	/* A message dropped while it was being delivered stays dropped,
	 * and its reports go with it. */
	for (size_t i = 0; i < report_count && rc == SQLITE_DONE && exists > 0;
	     i++) {
		char dsn_id[17];

		if (reports[i] == NULL)
			continue;
		if (queue_insert_locked(q, &dsn, true, m->retention_days,
					reports[i], report_lens[i], dsn_id,
					error_r) < 0)
			goto fail;
		log_info(id, "queue: report %s queued", dsn_id);
	}
	if (rc == SQLITE_DONE && exists > 0) {
		st = db_prepare(q->db,
				"UPDATE message SET final = ?1, "
				"redact_at = ?1 + retention_days * 86400 "
				"WHERE id = ?2 AND final = 0 AND NOT EXISTS "
				"(SELECT 1 FROM recipient WHERE message_id = ?2 "
				"AND state = 0)");
		sqlite3_bind_int64(st, 1, now > 0 ? now : 1);
		sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
		sqlite3_finalize(st);
	}
	if (rc != SQLITE_DONE) {
		*error_r = queue_db_error(q, "outcome");
		goto fail;
	}
	if (db_commit(q->db, error_r) < 0)
		goto fail;
	pthread_mutex_unlock(&q->db_lock);
	return 0;
fail:
	db_rollback(q->db);
	pthread_mutex_unlock(&q->db_lock);
	return -1;
}

/* Delivers one job; returns the recipients attempted, -1 on error. */
static int
job_run(struct queue *q, const struct queue_runner_settings *set,
	const struct queue_job *job, const char **error_r)
{
	struct job_msg m;
	struct job_rcpt *rcpts;
	struct queue_delivery d;
	struct queue_result *results;
	const char **addrs;
	char *reports[3];
	size_t report_lens[3], count;
	time_t now;
	int ret;

	ret = job_load(q, job, clock_now(), &m, &rcpts, &count, error_r);
	if (ret <= 0)
		return ret;
	addrs = xcalloc(count, sizeof(*addrs));
	results = xcalloc(count, sizeof(*results));
	for (size_t i = 0; i < count; i++) {
		addrs[i] = rcpts[i].address;
		results[i].action = QUEUE_ACTION_DEFER;
		results[i].category = "other";
		str_copy(results[i].text, "no result from the delivery",
			 sizeof(results[i].text));
	}
	memset(&d, 0, sizeof(d));
	d.id = job->id;
	d.mail_from = m.mail_from;
	d.rcpts = addrs;
	d.rcpt_count = count;
	d.envid = m.envid;
	d.msg = m.content;
	d.len = m.len;
	d.eightbit = m.eightbit;
	d.smtputf8 = m.smtputf8;
	set->deliver(set->deliver_ctx, &d, results);

	now = clock_now();
	for (size_t i = 0; i < count; i++)
		rcpts[i].res = results[i];
	job_outcomes(&m, rcpts, count, now);
	reports[0] = job_report(q, job->id, &m, rcpts, count, QUEUE_DSN_FAILED,
				now, &report_lens[0]);
	reports[1] = job_report(q, job->id, &m, rcpts, count,
				QUEUE_DSN_DELAYED, now, &report_lens[1]);
	reports[2] = job_report(q, job->id, &m, rcpts, count,
				QUEUE_DSN_RELAYED, now, &report_lens[2]);
	ret = job_commit(q, job->id, &m, rcpts, count, reports, report_lens,
			 SP_N_ELEMENTS(reports), now, error_r);
	for (size_t i = 0; i < count; i++)
		log_info(job->id, "queue: recipient %lld %s, %s (%d %s, %s)",
			 (long long)rcpts[i].idx,
			 rcpts[i].state == QUEUE_RCPT_DELIVERED ? "delivered"
			 : rcpts[i].state == QUEUE_RCPT_FAILED	 ? "failed"
								 : "pending",
			 rcpts[i].action,
			 rcpts[i].res.code, rcpts[i].res.enhanced,
			 rcpts[i].res.category != NULL ? rcpts[i].res.category
						       : "");
	for (size_t i = 0; i < SP_N_ELEMENTS(reports); i++)
		free(reports[i]);
	if (ret == 0 && (reports[0] != NULL || reports[1] != NULL ||
			 reports[2] != NULL))
		queue_runner_wake(q);
	free(addrs);
	free(results);
	job_msg_clear(&m);
	job_rcpts_free(rcpts, count);
	return ret < 0 ? -1 : (int)count;
}

/* ---- maintenance ------------------------------------------------------- */

void
queue_maintenance(struct queue *q)
{
	const char *error;

	if (queue_redact_due(q, clock_now(), &error) < 0)
		log_error(NULL, "%s", error);
}

/* ---- threads ----------------------------------------------------------- */

static void
settings_copy(struct queue *q, const struct queue_runner_settings *set)
{
	q->set = *set;
	if (q->hostname == NULL)
		q->hostname = xstrdup(set->hostname != NULL &&
					      set->hostname[0] != '\0'
				      ? set->hostname
				      : "localhost");
	q->set.hostname = q->hostname;
}

void
queue_runner_wake(struct queue *q)
{
	pthread_mutex_lock(&q->run_lock);
	q->wake_gen++;
	pthread_cond_broadcast(&q->run_cond);
	pthread_mutex_unlock(&q->run_lock);
}

static void *
runner_thread(void *arg)
{
	struct queue *q = arg;

	pthread_mutex_lock(&q->run_lock);
	while (!q->stopping) {
		struct queue_job *job;
		const char *error;
		unsigned long seen = q->wake_gen;
		bool maintain;
		time_t now;
		int n;

		pthread_mutex_unlock(&q->run_lock);
		now = clock_now();
		n = claim_jobs(q, now, 1, &job, &error);
		if (n < 0)
			log_error(NULL, "%s", error);
		if (n > 0) {
			bool failed = job_run(q, &q->set, job, &error) < 0;

			if (failed)
				log_error(job->id, "%s", error);
			inflight_remove(q, job, failed);
			free(job->domain);
			free(job);
			pthread_mutex_lock(&q->run_lock);
			continue;
		}
		pthread_mutex_lock(&q->run_lock);
		maintain = q->last_maintenance != now;
		q->last_maintenance = now;
		pthread_mutex_unlock(&q->run_lock);
		if (maintain)
			queue_maintenance(q);
		pthread_mutex_lock(&q->run_lock);
		if (q->wake_gen == seen && !q->stopping) {
			struct timespec ts;

			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += 1;
			pthread_cond_timedwait(&q->run_cond, &q->run_lock, &ts);
		}
	}
	pthread_mutex_unlock(&q->run_lock);
	return NULL;
}

int
queue_runner_start(struct queue *q, const struct queue_runner_settings *set,
		   const char **error_r)
{
	unsigned n = set->threads != 0 ? set->threads : 1;

	if (set->deliver == NULL) {
		*error_r = "queue: no delivery function";
		return -1;
	}
	if (q->running) {
		*error_r = "queue: the runner runs already";
		return -1;
	}
	settings_copy(q, set);
	q->stopping = false;
	q->threads = xcalloc(n, sizeof(*q->threads));
	for (unsigned i = 0; i < n; i++) {
		int err = pthread_create(&q->threads[i], NULL, runner_thread, q);

		if (err != 0) {
			*error_r = queue_error_printf("queue: thread: %s",
						      strerror(err));
			q->thread_count = i;
			queue_runner_stop(q);
			return -1;
		}
	}
	q->thread_count = n;
	q->running = true;
	return 0;
}

void
queue_runner_stop(struct queue *q)
{
	pthread_mutex_lock(&q->run_lock);
	q->stopping = true;
	pthread_cond_broadcast(&q->run_cond);
	pthread_mutex_unlock(&q->run_lock);
	for (unsigned i = 0; i < q->thread_count; i++)
		pthread_join(q->threads[i], NULL);
	free(q->threads);
	q->threads = NULL;
	q->thread_count = 0;
	q->running = false;
	free(q->hostname);
	q->hostname = NULL;
}

int
queue_run_once(struct queue *q, const struct queue_runner_settings *set,
	       const char **error_r)
{
	struct queue_job *jobs;
	int n, total = 0, ret = 0;

	if (set->deliver == NULL) {
		*error_r = "queue: no delivery function";
		return -1;
	}
	if (!q->running)
		settings_copy(q, set);
	n = claim_jobs(q, clock_now(), 0, &jobs, error_r);
	if (n < 0)
		return -1;
	for (int i = 0; i < n; i++) {
		if (ret == 0) {
			int done = job_run(q, set, &jobs[i], error_r);

			if (done < 0)
				ret = -1;
			else
				total += done;
		}
		inflight_remove(q, &jobs[i], false);
		free(jobs[i].domain);
	}
	free(jobs);
	if (!q->running) {
		free(q->hostname);
		q->hostname = NULL;
	}
	queue_maintenance(q);
	return ret < 0 ? -1 : total;
}
