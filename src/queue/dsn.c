/* Delivery status notifications (RFC 3464, RFC 3461 parameters).
 *
 * A report is multipart/report; report-type=delivery-status with three
 * parts: a short text for people, the machine-readable message/
 * delivery-status (one per-message block, one block per recipient), and
 * the original's headers (text/rfc822-headers) or, with RET=FULL, the
 * whole original (message/rfc822). It comes from mailer-daemon@<domain>
 * with Auto-Submitted: auto-replied and is sent with the null sender, so
 * no report is ever made about it. */
#include "queue-private.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
queue_format_date(time_t t, char out[40])
{
	static const char *const days[] = {"Sun", "Mon", "Tue", "Wed",
					   "Thu", "Fri", "Sat"};
	static const char *const months[] = {"Jan", "Feb", "Mar", "Apr",
					     "May", "Jun", "Jul", "Aug",
					     "Sep", "Oct", "Nov", "Dec"};
	struct tm tm;

	gmtime_r(&t, &tm);
	snprintf(out, 40, "%s, %02d %s %04d %02d:%02d:%02d +0000",
		 days[tm.tm_wday % 7], tm.tm_mday, months[tm.tm_mon % 12],
		 tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

size_t
queue_header_length(const char *msg, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (msg[i] != '\n')
			continue;
		/* An empty line: "\n\n" or "\n\r\n". */
		if (i + 1 < len && msg[i + 1] == '\n')
			return i + 2;
		if (i + 2 < len && msg[i + 1] == '\r' && msg[i + 2] == '\n')
			return i + 3;
	}
	return len;
}

/* Appends text with every line ending made CR LF. */
static void
append_crlf(struct sp_buf *b, const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r'))
			sp_buf_append(b, "\r", 1);
		sp_buf_append(b, &s[i], 1);
	}
}

/* A reply text made safe for one header line: control characters are
 * replaced by spaces. */
static char *
one_line(const char *s)
{
	char *t = xstrdup(s != NULL ? s : "");

	for (char *p = t; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = ' ';
	return t;
}

/* The Status field: the remote's enhanced code when it fits the action;
 * a recipient that failed by expiry keeps its last (4.x.x) status, as
 * Postfix does, so the sender sees why it never went through. */
static const char *
status_of(const struct queue_dsn_params *p, const struct queue_dsn_rcpt *r)
{
	char first = r->enhanced != NULL ? r->enhanced[0] : '\0';

	switch (p->kind) {
	case QUEUE_DSN_FAILED:
		if (first == '5' || first == '4')
			return r->enhanced;
		return r->code >= 500 ? "5.0.0" : "4.4.7";
	case QUEUE_DSN_DELAYED:
		if (first == '4')
			return r->enhanced;
		return "4.0.0";
	case QUEUE_DSN_RELAYED:
		break;
	}
	return first == '2' ? r->enhanced : "2.0.0";
}

char *
queue_dsn_build(const struct queue_dsn_params *p, size_t *len_r)
{
	char boundary[40], date[40], id[33];
	const char *subject, *action;
	struct sp_buf b;
	size_t hlen;

	random_hex_id(id, 16);
	snprintf(boundary, sizeof(boundary), "=_dsn_%.24s", id);
	queue_format_date(clock_now(), date);
	switch (p->kind) {
	case QUEUE_DSN_FAILED:
		subject = "Undelivered Mail Returned to Sender";
		action = "failed";
		break;
	case QUEUE_DSN_DELAYED:
		subject = "Delayed Mail (still being retried)";
		action = "delayed";
		break;
	default:
		subject = "Successful Mail Delivery Report";
		/* We relay to a server that was not asked for DSNs. */
		action = "relayed";
		break;
	}
	sp_buf_init(&b);
	sp_buf_printf(&b,
		      "From: Mail Delivery System <mailer-daemon@%s>\r\n"
		      "To: <%s>\r\n"
		      "Subject: %s\r\n"
		      "Date: %s\r\n"
		      "Message-ID: <%s@%s>\r\n"
		      "Auto-Submitted: auto-replied\r\n"
		      "MIME-Version: 1.0\r\n"
		      "Content-Type: multipart/report; "
		      "report-type=delivery-status;\r\n"
		      "\tboundary=\"%s\"\r\n"
		      "\r\n"
		      "This is a MIME-encapsulated message.\r\n"
		      "\r\n",
		      p->domain, p->mail_from, subject, date, id, p->domain,
		      boundary);

	/* 1: for people. */
	sp_buf_printf(&b,
		      "--%s\r\n"
		      "Content-Type: text/plain; charset=utf-8\r\n"
		      "Content-Transfer-Encoding: 8bit\r\n"
		      "\r\n",
		      boundary);
	switch (p->kind) {
	case QUEUE_DSN_FAILED:
		sp_buf_append_str(&b, "Your message could not be delivered "
				      "to the following recipients. The "
				      "delivery failed permanently.\r\n\r\n");
		break;
	case QUEUE_DSN_DELAYED: {
		char until[40];

		queue_format_date(p->retry_until, until);
		sp_buf_printf(&b,
			      "Your message has not been delivered yet to "
			      "the following recipients. It is still being "
			      "retried until %s; you do not need to send it "
			      "again.\r\n\r\n",
			      until);
		break;
	}
	default:
		sp_buf_append_str(&b, "Your message was delivered to the "
				      "mail server of the following "
				      "recipients.\r\n\r\n");
		break;
	}
	for (size_t i = 0; i < p->rcpt_count; i++) {
		const struct queue_dsn_rcpt *r = &p->rcpts[i];
		char *text = one_line(r->text);

		sp_buf_printf(&b, "<%s>", r->address);
		if (r->code > 0)
			sp_buf_printf(&b, ": %s said: %d %s%s%s",
				      r->remote[0] != '\0' ? r->remote
							   : "the server",
				      r->code, r->enhanced,
				      r->enhanced[0] != '\0' ? " " : "",
				      text);
		else if (text[0] != '\0')
			sp_buf_printf(&b, ": %s", text);
		sp_buf_append_str(&b, "\r\n");
		free(text);
	}
	sp_buf_append_str(&b, "\r\n");

	/* 2: for machines. */
	{
		char arrival[40];

		queue_format_date(p->arrival, arrival);
		sp_buf_printf(&b,
			      "--%s\r\n"
			      "Content-Type: message/delivery-status\r\n"
			      "\r\n"
			      "Reporting-MTA: dns; %s\r\n",
			      boundary, p->hostname);
		if (p->envid != NULL && p->envid[0] != '\0') {
			/* xtext-decoded: "+0D+0A" must not end the field. */
			char *envid = one_line(p->envid);

			sp_buf_printf(&b, "Original-Envelope-Id: %s\r\n",
				      envid);
			free(envid);
		}
		sp_buf_printf(&b, "Arrival-Date: %s\r\n", arrival);
	}
	for (size_t i = 0; i < p->rcpt_count; i++) {
		const struct queue_dsn_rcpt *r = &p->rcpts[i];
		char last[40];

		sp_buf_append_str(&b, "\r\n");
		if (r->orcpt != NULL && r->orcpt[0] != '\0') {
			char *orcpt = one_line(r->orcpt);

			sp_buf_printf(&b, "Original-Recipient: %s\r\n",
				      orcpt);
			free(orcpt);
		}
		sp_buf_printf(&b,
			      "Final-Recipient: rfc822;%s\r\n"
			      "Action: %s\r\n"
			      "Status: %s\r\n",
			      r->address, action, status_of(p, r));
		if (r->remote != NULL && r->remote[0] != '\0')
			sp_buf_printf(&b, "Remote-MTA: dns; %s\r\n",
				      r->remote);
		if (r->code > 0) {
			char *text = one_line(r->text);

			sp_buf_printf(&b, "Diagnostic-Code: smtp; %d %s%s%s\r\n",
				      r->code, r->enhanced,
				      r->enhanced[0] != '\0' ? " " : "",
				      text);
			free(text);
		}
		if (r->last_attempt > 0) {
			queue_format_date(r->last_attempt, last);
			sp_buf_printf(&b, "Last-Attempt-Date: %s\r\n", last);
		}
		if (p->kind == QUEUE_DSN_DELAYED) {
			queue_format_date(p->retry_until, last);
			sp_buf_printf(&b, "Will-Retry-Until: %s\r\n", last);
		}
	}
	sp_buf_append_str(&b, "\r\n");

	/* 3: the original, whole or its headers. */
	hlen = queue_header_length(p->orig, p->orig_len);
	if (p->ret == QUEUE_RET_FULL) {
		sp_buf_printf(&b,
			      "--%s\r\n"
			      "Content-Type: message/rfc822\r\n"
			      "\r\n",
			      boundary);
		append_crlf(&b, p->orig, p->orig_len);
	} else {
		sp_buf_printf(&b,
			      "--%s\r\n"
			      "Content-Type: text/rfc822-headers\r\n"
			      "\r\n",
			      boundary);
		append_crlf(&b, p->orig, hlen);
	}
	if (b.len >= 2 && memcmp(b.data + b.len - 2, "\r\n", 2) != 0)
		sp_buf_append_str(&b, "\r\n");
	sp_buf_printf(&b, "--%s--\r\n", boundary);
	return sp_buf_steal(&b, len_r);
}
