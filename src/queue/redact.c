/* Retention of sent mail: once every recipient is final, a message's
 * content stays for its domain's retention_days (0: not at all), then its
 * body is replaced by a fixed notice, and queue_purge_days later the whole
 * record goes. queue.sqlite runs with secure_delete, so the old pages are
 * overwritten, not just unlinked from the b-tree.
 *
 * The headers are kept as they were, except the MIME headers that describe
 * the body (Content-Type, Content-Transfer-Encoding): the notice is plain
 * text, and a kept "multipart/mixed; boundary=..." would describe a body
 * that is no longer there. */
#include "queue-private.h"

#include "conf/conf.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static bool
is_body_header(const char *line, size_t len)
{
	static const char *const names[] = {"Content-Type:",
					    "Content-Transfer-Encoding:"};

	for (size_t i = 0; i < SP_N_ELEMENTS(names); i++) {
		size_t n = strlen(names[i]);

		if (len >= n && strncasecmp(line, names[i], n) == 0)
			return true;
	}
	return false;
}

char *
queue_redact_message(const char *msg, size_t len, size_t *len_r)
{
	size_t hlen = queue_header_length(msg, len);
	struct sp_buf b;
	size_t pos = 0;
	bool skipping = false;

	sp_buf_init(&b);
	/* Header fields with their continuation lines, minus the body's. */
	while (pos < hlen) {
		const char *nl = memchr(msg + pos, '\n', hlen - pos);
		size_t end = nl != NULL ? (size_t)(nl - msg) + 1 : hlen;
		const char *line = msg + pos;
		size_t n = end - pos;

		if (n <= 2 && (line[0] == '\r' || line[0] == '\n'))
			break; /* the empty line */
		if (line[0] != ' ' && line[0] != '\t')
			skipping = is_body_header(line, n);
		if (!skipping) {
			sp_buf_append(&b, line, n);
			if (line[n - 1] != '\n')
				sp_buf_append(&b, "\r\n", 2);
		}
		pos = end;
	}
	sp_buf_append_str(&b, "Content-Type: text/plain; charset=us-ascii\r\n"
			      "Content-Transfer-Encoding: 7bit\r\n"
			      "\r\n" QUEUE_REDACTED_TEXT "\r\n");
	return sp_buf_steal(&b, len_r);
}

int
queue_redact_due(struct queue *q, time_t now, const char **error_r)
{
	long long purge_days = conf_int("queue_purge_days");
	sqlite3_stmt *st;
	int rc, done = 0;

	if (purge_days < 0)
		purge_days = 0;
	pthread_mutex_lock(&q->db_lock);
	/* The runner calls this every second: a look at two indexes first,
	 * a write transaction only when there is work. */
	st = db_prepare(q->db, "SELECT EXISTS (SELECT 1 FROM message "
			       "WHERE final > 0 AND redacted = 0 AND "
			       "redact_at <= ?1) OR EXISTS (SELECT 1 FROM "
			       "message WHERE redacted > 0 AND redacted <= ?2)");
	sqlite3_bind_int64(st, 1, now);
	sqlite3_bind_int64(st, 2, now - (time_t)purge_days * 86400);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && sqlite3_column_int(st, 0) == 0) {
		sqlite3_finalize(st);
		pthread_mutex_unlock(&q->db_lock);
		return 0;
	}
	sqlite3_finalize(st);
	if (db_begin(q->db, error_r) < 0) {
		pthread_mutex_unlock(&q->db_lock);
		return -1;
	}
	st = db_prepare(q->db, "SELECT id, content FROM message "
			       "WHERE final > 0 AND redacted = 0 AND "
			       "redact_at <= ? LIMIT 100");
	sqlite3_bind_int64(st, 1, now);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *content = sqlite3_column_blob(st, 1);
		size_t len = (size_t)sqlite3_column_bytes(st, 1), n;
		char *redacted = queue_redact_message(
			content != NULL ? content : "", len, &n);
		sqlite3_stmt *up = db_prepare(
			q->db, "UPDATE message SET content = ?, redacted = ? "
			       "WHERE id = ?");

		sqlite3_bind_blob64(up, 1, redacted, n, SQLITE_STATIC);
		/* 0 means "not redacted": a clock at the epoch is a test's. */
		sqlite3_bind_int64(up, 2, now > 0 ? now : 1);
		sqlite3_bind_text(up, 3,
				  (const char *)sqlite3_column_text(st, 0), -1,
				  SQLITE_TRANSIENT);
		rc = sqlite3_step(up);
		sqlite3_finalize(up);
		free(redacted);
		if (rc != SQLITE_DONE)
			break;
		log_info((const char *)sqlite3_column_text(st, 0),
			 "queue: content redacted");
		done++;
	}
	sqlite3_finalize(st);
	if (rc == SQLITE_DONE) {
		st = db_prepare(q->db, "DELETE FROM message WHERE redacted > 0 "
				       "AND redacted <= ?");
		sqlite3_bind_int64(st, 1, now - (time_t)purge_days * 86400);
		rc = sqlite3_step(st);
		done += sqlite3_changes(q->db);
		sqlite3_finalize(st);
	}
	if (rc != SQLITE_DONE) {
		*error_r = queue_db_error(q, "redaction");
		db_rollback(q->db);
		pthread_mutex_unlock(&q->db_lock);
		return -1;
	}
	if (db_commit(q->db, error_r) < 0) {
		db_rollback(q->db);
		pthread_mutex_unlock(&q->db_lock);
		return -1;
	}
	pthread_mutex_unlock(&q->db_lock);
	return done;
}
