/*
 * The MX: one state machine per connection, on net.
 *
 * As in OpenSMTPD's smtp_session.c, a session has an enum smtp_state
 * entered through one logging function, the message being received lives
 * in its own struct (smtp_tx, here the route_tx plus the DATA reader), and
 * each verb has a row in a table naming a check (sequence and syntax; sends
 * the error reply) and a proceed (the effect). Unlike OpenSMTPD, commands
 * may be pipelined: the input loop runs every complete command that is
 * buffered and stops only for DATA delivery, which runs on a worker thread
 * (network, fsync) while input is paused.
 *
 * Command lines are framed here rather than by net_conn_read_line because
 * we must see whether a line ended in CR LF (see smtp.h).
 */
#include "session.h"

#include "conf/conf.h"
#include "crypto/crypto.h"
#include "mailauth/mailauth.h"
#include "net/net.h"
#include "route/route.h"

#include <event2/event.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const state_names[] = {
	"init", "helo", "mail", "rcpt", "body", "delivering", "quit",
};

typedef bool smtp_check_func(struct smtp_session *s, struct smtp_command *c);
typedef void smtp_proceed_func(struct smtp_session *s,
			       struct smtp_command *c);

struct smtp_command_row {
	enum smtp_verb verb;
	smtp_check_func *check;
	smtp_proceed_func *proceed;
};

void
smtp_reply(struct smtp_session *s, const char *fmt, ...)
{
	va_list args;
	char line[600];
	int n;

	va_start(args, fmt);
	n = vsnprintf(line, sizeof(line) - 2, fmt, args);
	va_end(args);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(line) - 3)
		n = (int)sizeof(line) - 3;
	memcpy(line + n, "\r\n", 2);
	net_conn_write(s->conn, line, (size_t)n + 2);
}

void
smtp_enter_state(struct smtp_session *s, enum smtp_state state)
{
	log_debug(net_conn_id(s->conn), "smtp: %s -> %s",
		  state_names[s->state], state_names[state]);
	s->state = state;
}

void
tx_reset(struct smtp_session *s)
{
	route_tx_destroy(&s->tx);
	smtp_envelope_free(&s->env);
	if (s->data_active) {
		smtp_data_reader_deinit(&s->data);
		s->data_active = false;
	}
	s->declared_size = 0;
	s->tx_utf8 = s->tx_8bit = false;
	s->rcpt_refused = 0;
}

/* ---- checks -------------------------------------------------------------- */

static bool
check_helo(struct smtp_session *s, struct smtp_command *c)
{
	return true;
}

static bool
check_mail(struct smtp_session *s, struct smtp_command *c)
{
	if (s->state == SMTP_STATE_INIT) {
		smtp_reply(s, "503 5.5.1 Say EHLO first");
		return false;
	}
	if (s->state != SMTP_STATE_HELO) {
		smtp_reply(s, "503 5.5.1 Nested MAIL command");
		return false;
	}
	if (c->size > s->server->max_size) {
		smtp_reply(s, "552 5.3.4 Message size exceeds fixed maximum "
			      "message size");
		return false;
	}
	if (c->dsn && !s->server->submission) {
		smtp_reply(s, "555 5.5.4 Unsupported parameter");
		return false;
	}
	if (s->server->msg_limit != NULL &&
	    net_ratelimit_exceeded(s->server->msg_limit,
				   net_conn_peer_ip(s->conn))) {
		smtp_reply(s, "451 4.7.1 Too many messages from your address, "
			      "try again later");
		return false;
	}
	return true;
}

static bool
check_rcpt(struct smtp_session *s, struct smtp_command *c)
{
	if (s->state != SMTP_STATE_MAIL && s->state != SMTP_STATE_RCPT) {
		smtp_reply(s, "503 5.5.1 Need MAIL before RCPT");
		return false;
	}
	if (c->dsn && !s->server->submission) {
		smtp_reply(s, "555 5.5.4 Unsupported parameter");
		return false;
	}
	if (s->server->submission) {
		if (s->env->rcpt_count >= s->server->max_rcpts) {
			smtp_reply(s, "452 4.5.3 Too many recipients");
			return false;
		}
	} else if (route_tx_rcpt_count(s->tx) >= s->server->max_rcpts) {
		smtp_reply(s, "452 4.5.3 Too many recipients");
		return false;
	}
	if (c->address_utf8 && !s->tx_utf8) {
		smtp_reply(s, "553 5.6.7 SMTPUTF8 is needed for this address");
		return false;
	}
	return true;
}

static bool
check_data(struct smtp_session *s, struct smtp_command *c)
{
	if (s->state == SMTP_STATE_MAIL) {
		smtp_reply(s, "554 5.5.1 No valid recipients");
		return false;
	}
	if (s->state != SMTP_STATE_RCPT) {
		smtp_reply(s, "503 5.5.1 Need RCPT before DATA");
		return false;
	}
	return true;
}

static bool
check_starttls(struct smtp_session *s, struct smtp_command *c)
{
	if (net_conn_is_tls(s->conn)) {
		smtp_reply(s, "503 5.5.1 TLS already active");
		return false;
	}
	if (!net_server_has_tls(s->server->net)) {
		smtp_reply(s, "454 4.7.0 TLS not available");
		return false;
	}
	if (s->state == SMTP_STATE_MAIL || s->state == SMTP_STATE_RCPT) {
		smtp_reply(s, "503 5.5.1 STARTTLS inside a transaction");
		return false;
	}
	return true;
}

static bool
check_any(struct smtp_session *s, struct smtp_command *c)
{
	return true;
}

/* ---- proceeds ------------------------------------------------------------ */

static void
proceed_helo(struct smtp_session *s, struct smtp_command *c)
{
	struct smtp_server *srv = s->server;

	tx_reset(s);
	free(s->helo);
	s->helo = xstrdup(c->arg);
	s->esmtp = c->verb == SMTP_VERB_EHLO;
	if (!s->esmtp) {
		smtp_reply(s, "250 %s", srv->hostname);
	} else {
		smtp_reply(s, "250-%s", srv->hostname);
		smtp_reply(s, "250-PIPELINING");
		smtp_reply(s, "250-SIZE %zu", srv->max_size);
		smtp_reply(s, "250-8BITMIME");
		smtp_reply(s, "250-SMTPUTF8");
		if (!net_conn_is_tls(s->conn) &&
		    net_server_has_tls(srv->net))
			smtp_reply(s, "250-STARTTLS");
		/* RFC 4954 4: no mechanism is offered before TLS, since
		 * none would be accepted there. */
		if (srv->submission && net_conn_is_tls(s->conn))
			smtp_reply(s, "250-AUTH PLAIN LOGIN");
		if (srv->submission)
			smtp_reply(s, "250-DSN");
		smtp_reply(s, "250 ENHANCEDSTATUSCODES");
	}
	smtp_enter_state(s, SMTP_STATE_HELO);
}

static void
proceed_mail(struct smtp_session *s, struct smtp_command *c)
{
	if (s->server->submission) {
		smtp_submit_mail(s, c);
		return;
	}
	s->tx = route_tx_create(c->address, s->helo, net_conn_peer_ip(s->conn),
				c->body == SMTP_BODY_8BITMIME, c->smtputf8);
	s->declared_size = c->size;
	s->tx_utf8 = c->smtputf8;
	s->tx_8bit = c->body == SMTP_BODY_8BITMIME;
	smtp_reply(s, "250 2.1.0 Ok");
	smtp_enter_state(s, SMTP_STATE_MAIL);
}

static void
proceed_rcpt(struct smtp_session *s, struct smtp_command *c)
{
	enum route_rcpt_status st;

	if (s->server->submission) {
		smtp_submit_rcpt(s, c);
		return;
	}
	st = route_rcpt(s->server->route, s->tx, c->address);

	switch (st) {
	case ROUTE_RCPT_OK:
		smtp_reply(s, "250 2.1.5 Ok");
		smtp_enter_state(s, SMTP_STATE_RCPT);
		return;
	case ROUTE_RCPT_UNKNOWN:
		smtp_reply(s, "550 5.1.1 No such recipient here");
		break;
	case ROUTE_RCPT_DISABLED:
		smtp_reply(s, "550 5.2.1 Mailbox disabled");
		break;
	case ROUTE_RCPT_RELAY:
		smtp_reply(s, "550 5.7.1 Relaying denied");
		break;
	case ROUTE_RCPT_INVALID:
		smtp_reply(s, "553 5.1.3 Bad recipient address syntax");
		break;
	case ROUTE_RCPT_TEMP:
		smtp_reply(s, "451 4.3.0 Temporary lookup failure, try again "
			      "later");
		break;
	case ROUTE_RCPT_OVER_QUOTA:
		smtp_reply(s, "452 4.2.2 Mailbox full, try again later");
		break;
	case ROUTE_RCPT_OVER_QUOTA_PERM:
		smtp_reply(s, "552 5.2.2 Mailbox full");
		break;
	}
	s->rcpt_refused++;
}

static void
proceed_data(struct smtp_session *s, struct smtp_command *c)
{
	smtp_data_reader_init(&s->data, s->server->max_size,
			      SMTP_MAX_HEADER_BYTES);
	s->data_active = true;
	smtp_reply(s, "354 End data with <CR><LF>.<CR><LF>");
	smtp_enter_state(s, SMTP_STATE_BODY);
}

static void
proceed_rset(struct smtp_session *s, struct smtp_command *c)
{
	tx_reset(s);
	if (s->state != SMTP_STATE_INIT)
		smtp_enter_state(s, SMTP_STATE_HELO);
	smtp_reply(s, "250 2.0.0 Ok");
}

static void
proceed_noop(struct smtp_session *s, struct smtp_command *c)
{
	smtp_reply(s, "250 2.0.0 Ok");
}

static void
proceed_quit(struct smtp_session *s, struct smtp_command *c)
{
	smtp_reply(s, "221 2.0.0 Bye");
	smtp_enter_state(s, SMTP_STATE_QUIT);
	net_conn_close_after_flush(s->conn);
}

static void
proceed_vrfy(struct smtp_session *s, struct smtp_command *c)
{
	smtp_reply(s, "252 2.5.0 Cannot VRFY user, but will accept message "
		      "and attempt delivery");
}

static void
proceed_help(struct smtp_session *s, struct smtp_command *c)
{
	smtp_reply(s, "214-2.0.0 Commands: EHLO HELO MAIL RCPT DATA RSET NOOP");
	smtp_reply(s, s->server->submission
			      ? "214 2.0.0 QUIT VRFY HELP STARTTLS AUTH"
			      : "214 2.0.0 QUIT VRFY HELP STARTTLS");
}

static void
proceed_starttls(struct smtp_session *s, struct smtp_command *c)
{
	const char *error;

	smtp_reply(s, "220 2.0.0 Ready to start TLS");
	if (net_conn_starttls(s->conn, &error) < 0) {
		log_warn(net_conn_id(s->conn), "smtp: STARTTLS: %s", error);
		net_conn_close_after_flush(s->conn);
		return;
	}
	/* RFC 3207 4.2: forget everything learned before TLS. */
	tx_reset(s);
	free(s->helo);
	s->helo = NULL;
	smtp_enter_state(s, SMTP_STATE_INIT);
}

static void
proceed_not_implemented(struct smtp_session *s, struct smtp_command *c)
{
	smtp_reply(s, "502 5.5.1 Command not implemented");
}

static void
proceed_auth(struct smtp_session *s, struct smtp_command *c)
{
	if (!s->server->submission) {
		/* An MX takes mail for its domains from anyone. */
		proceed_not_implemented(s, c);
		return;
	}
	smtp_submit_auth(s, c);
}

static const struct smtp_command_row commands[] = {
	{SMTP_VERB_EHLO, check_helo, proceed_helo},
	{SMTP_VERB_HELO, check_helo, proceed_helo},
	{SMTP_VERB_MAIL, check_mail, proceed_mail},
	{SMTP_VERB_RCPT, check_rcpt, proceed_rcpt},
	{SMTP_VERB_DATA, check_data, proceed_data},
	{SMTP_VERB_RSET, check_any, proceed_rset},
	{SMTP_VERB_NOOP, check_any, proceed_noop},
	{SMTP_VERB_QUIT, check_any, proceed_quit},
	{SMTP_VERB_VRFY, check_any, proceed_vrfy},
	{SMTP_VERB_HELP, check_any, proceed_help},
	{SMTP_VERB_STARTTLS, check_starttls, proceed_starttls},
	{SMTP_VERB_BDAT, check_any, proceed_not_implemented},
	{SMTP_VERB_AUTH, check_any, proceed_auth},
	{SMTP_VERB_EXPN, check_any, proceed_not_implemented},
};

static void
reply_parse_error(struct smtp_session *s, enum smtp_parse_result r,
		  enum smtp_verb verb)
{
	switch (r) {
	case SMTP_PARSE_UNKNOWN:
		smtp_reply(s, "500 5.5.1 Command unrecognized");
		break;
	case SMTP_PARSE_SYNTAX:
		smtp_reply(s, "501 5.5.4 Syntax error in parameters or "
			      "arguments");
		break;
	case SMTP_PARSE_BAD_PARAM:
		smtp_reply(s, "555 5.5.4 Unsupported parameter");
		break;
	case SMTP_PARSE_BAD_ADDRESS:
		smtp_reply(s, verb == SMTP_VERB_MAIL
				      ? "553 5.1.7 Bad sender address syntax"
				      : "553 5.1.3 Bad recipient address "
					"syntax");
		break;
	case SMTP_PARSE_NON_ASCII:
		smtp_reply(s, "553 5.6.7 SMTPUTF8 is needed for this address");
		break;
	case SMTP_PARSE_OK:
		break;
	}
}

static void
run_command(struct smtp_session *s, const char *line, size_t len)
{
	struct smtp_command cmd;
	enum smtp_parse_result r = smtp_command_parse(line, len, &cmd);

	if (r != SMTP_PARSE_OK) {
		reply_parse_error(s, r, cmd.verb);
		return;
	}
	for (size_t i = 0; i < SP_N_ELEMENTS(commands); i++) {
		if (commands[i].verb != cmd.verb)
			continue;
		if (commands[i].check(s, &cmd))
			commands[i].proceed(s, &cmd);
		break;
	}
	smtp_command_clear(&cmd);
}

/* ---- delivery ------------------------------------------------------------ */

static void job_done(void *ctx);
static void job_free(struct smtp_job *job);

static void *
pool_main(void *arg)
{
	struct smtp_server *srv = arg;
	struct smtp_pool *p = &srv->pool;

	for (;;) {
		struct smtp_job *job;

		pthread_mutex_lock(&p->lock);
		while (p->head == NULL && !p->stopping)
			pthread_cond_wait(&p->cond, &p->lock);
		if (p->head == NULL) {
			pthread_mutex_unlock(&p->lock);
			return NULL;
		}
		job = p->head;
		p->head = job->next;
		if (p->head == NULL)
			p->tail = NULL;
		pthread_mutex_unlock(&p->lock);
		if (job->env != NULL)
			smtp_submit_work(job);
		else
			route_deliver(srv->route, job->tx, job->msg.data,
				      job->msg.len, &job->result);
		pthread_mutex_lock(&p->lock);
		job->next = NULL;
		if (p->done_tail != NULL)
			p->done_tail->next = job;
		else
			p->done_head = job;
		p->done_tail = job;
		pthread_mutex_unlock(&p->lock);
		{
			uint64_t one = 1;

			/* Fails only when the counter is full, and then a
			 * wake-up is due anyway. */
			(void)!write(p->done_fd, &one, sizeof(one));
		}
	}
}

static void
job_free(struct smtp_job *job)
{
	route_tx_destroy(&job->tx);
	smtp_envelope_free(&job->env);
	smtp_user_unref(&job->user);
	if (job->msg.data != NULL)
		sodium_memzero(job->msg.data, job->msg.cap);
	sp_buf_deinit(&job->msg);
	free(job);
}

static void
pool_done_cb(evutil_socket_t fd, short events, void *arg)
{
	struct smtp_pool *p = arg;
	struct smtp_job *job, *next;
	uint64_t n;

	/* EAGAIN: another wake-up took the count; the list is what counts. */
	(void)!read(fd, &n, sizeof(n));
	pthread_mutex_lock(&p->lock);
	job = p->done_head;
	p->done_head = p->done_tail = NULL;
	pthread_mutex_unlock(&p->lock);
	for (; job != NULL; job = next) {
		next = job->next;
		job_done(job);
	}
}

static void
pool_submit(struct smtp_server *srv, struct smtp_job *job)
{
	struct smtp_pool *p = &srv->pool;

	job->next = NULL;
	pthread_mutex_lock(&p->lock);
	if (p->tail != NULL)
		p->tail->next = job;
	else
		p->head = job;
	p->tail = job;
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
}

void
smtp_job_submit(struct smtp_session *s, struct smtp_job *job)
{
	s->job = job;
	smtp_enter_state(s, SMTP_STATE_DELIVERING);
	net_conn_pause_input(s->conn);
	pool_submit(s->server, job);
}

static int
pool_start(struct smtp_server *srv, unsigned count, const char **error_r)
{
	struct smtp_pool *p = &srv->pool;

	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	p->done_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (p->done_fd < 0) {
		*error_r = "eventfd failed";
		return -1;
	}
	p->done_ev = event_new(net_server_base(srv->net), p->done_fd,
			       EV_READ | EV_PERSIST, pool_done_cb, p);
	event_add(p->done_ev, NULL);
	if (count == 0)
		count = 1;
	p->threads = xcalloc(count, sizeof(*p->threads));
	for (; p->count < count; p->count++) {
		if (pthread_create(&p->threads[p->count], NULL, pool_main,
				   srv) != 0) {
			*error_r = "cannot start the delivery threads";
			return -1;
		}
	}
	return 0;
}

/* Lets the threads finish the deliveries they run, then joins them.
 * Queued jobs not yet started are dropped: their senders got no answer,
 * so they will retry. */
static void
pool_stop(struct smtp_server *srv)
{
	struct smtp_pool *p = &srv->pool;

	if (p->done_ev == NULL)
		return;
	pthread_mutex_lock(&p->lock);
	p->stopping = true;
	while (p->head != NULL) {
		struct smtp_job *job = p->head;

		p->head = job->next;
		job_free(job);
	}
	p->tail = NULL;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	for (unsigned i = 0; i < p->count; i++)
		pthread_join(p->threads[i], NULL);
	free(p->threads);
	p->threads = NULL;
	/* Finished after the loop stopped: their sessions are gone. */
	while (p->done_head != NULL) {
		struct smtp_job *job = p->done_head;

		p->done_head = job->next;
		job_free(job);
	}
	event_free(p->done_ev);
	p->done_ev = NULL;
	close(p->done_fd);
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->lock);
}

static void
job_done(void *ctx)
{
	struct smtp_job *job = ctx;
	struct smtp_session *s = job->session;
	const struct route_result *r = &job->result;
	static const char *const outcomes[] = {"delivered", "deferred",
					       "rejected"};

	if (job->env != NULL) {
		log_info(job->id, "submission: %d, %zu bytes, %zu recipients",
			 job->reply_code, job->msg.len, job->env->rcpt_count);
		if (s != NULL) {
			s->job = NULL;
			smtp_reply(s, "%d %s", job->reply_code,
				   job->reply_text);
			smtp_enter_state(s, SMTP_STATE_HELO);
			net_conn_resume_input(s->conn);
		}
		job_free(job);
		return;
	}

	log_info(job->id,
		 "smtp: message %s, %zu bytes, %u targets (%u delivered, %u "
		 "remembered, %u deferred, %u rejected)",
		 outcomes[r->outcome], job->msg.len, r->targets, r->delivered,
		 r->remembered, r->deferred, r->rejected);
	if (job->server->log_addresses) {
		/* Off by default: the operator asked for addresses. */
		struct sp_buf who;

		sp_buf_init(&who);
		route_tx_describe(job->tx, &who);
		log_info(job->id, "smtp: %s", who.data);
		sp_buf_deinit(&who);
	}
	if (s != NULL) {
		s->job = NULL;
		if (r->outcome == ROUTE_DELIVERED)
			smtp_reply(s, "%d %s id=%s", r->code, r->text, job->id);
		else
			smtp_reply(s, "%d %s", r->code, r->text);
		smtp_enter_state(s, SMTP_STATE_HELO);
		net_conn_resume_input(s->conn);
	}
	job_free(job);
}

static void
finish_data(struct smtp_session *s)
{
	struct smtp_server *srv = s->server;
	struct smtp_job *job;
	char id[17];

	random_hex_id(id, 8);
	if (s->data.error != SMTP_DATA_ERR_NONE) {
		log_info(id, "smtp: message refused, %zu bytes: %s",
			 s->data.total,
			 s->data.error == SMTP_DATA_ERR_TOO_BIG
				 ? "too big"
				 : "header too big");
		smtp_reply(s, s->data.error == SMTP_DATA_ERR_TOO_BIG
				      ? "552 5.3.4 Message size exceeds fixed "
					"maximum message size"
				      : "552 5.3.4 Message header too large");
		tx_reset(s);
		smtp_enter_state(s, SMTP_STATE_HELO);
		return;
	}
	if (srv->submission) {
		smtp_submit_data_done(s, id);
		return;
	}
	if (srv->msg_limit != NULL)
		net_ratelimit_hit(srv->msg_limit, net_conn_peer_ip(s->conn));
	job = xcalloc(1, sizeof(*job));
	job->session = s;
	job->server = srv;
	job->tx = s->tx;
	s->tx = NULL;
	job->msg = s->data.content; /* moved, not copied */
	sp_buf_init(&s->data.content);
	smtp_data_reader_deinit(&s->data);
	s->data_active = false;
	memcpy(job->id, id, sizeof(job->id));
	smtp_job_submit(s, job);
}

/* ---- input --------------------------------------------------------------- */

static void
session_input(struct net_conn *conn, void *ctx)
{
	struct smtp_session *s = ctx;

	while (!net_conn_is_closing(conn)) {
		const unsigned char *p;
		const char *lf;
		size_t avail, want;

		if (s->state == SMTP_STATE_DELIVERING ||
		    s->state == SMTP_STATE_QUIT || s->login != NULL)
			return;
		if (s->state == SMTP_STATE_BODY) {
			size_t used;
			bool done;

			avail = net_conn_input_len(conn);
			if (avail == 0)
				return;
			p = net_conn_peek(conn, avail, &avail);
			done = smtp_data_reader_feed(&s->data, (const char *)p,
						     avail, &used);
			net_conn_consume(conn, used);
			if (done)
				finish_data(s);
			continue;
		}
		if (s->skipping_line) {
			if (net_conn_skip_line(conn) == 0)
				return;
			s->skipping_line = false;
			continue;
		}
		want = s->server->max_line + 2;
		p = net_conn_peek(conn, want, &avail);
		if (avail == 0)
			return;
		lf = memchr(p, '\n', avail);
		if (lf == NULL) {
			if (avail < want)
				return;
			smtp_reply(s, "500 5.5.2 Line too long");
			s->skipping_line = true;
			continue;
		}
		{
			size_t len = (size_t)(lf - (const char *)p);
			char *line;

			if (len == 0 || p[len - 1] != '\r') {
				net_conn_consume(conn, len + 1);
				smtp_reply(s, "500 5.5.2 Lines must end with "
					      "CRLF");
				continue;
			}
			if (s->auth_step != SMTP_AUTH_NONE) {
				/* Credentials: secure memory, wiped. */
				line = crypto_secret_strndup((const char *)p,
							     len - 1);
				net_conn_consume(conn, len + 1);
				smtp_submit_auth_line(s, line);
				crypto_secret_free(&line);
				continue;
			}
			line = xstrndup((const char *)p, len - 1);
			net_conn_consume(conn, len + 1);
			run_command(s, line, len - 1);
			free(line);
		}
	}
}

static void
session_timeout(struct net_conn *conn, void *ctx)
{
	struct smtp_session *s = ctx;

	if (s->state == SMTP_STATE_DELIVERING)
		return; /* our own slowness is not the client's */
	smtp_reply(s, "421 4.4.2 Timeout, closing connection");
	net_conn_close_after_flush(conn);
}

static void
session_close(struct net_conn *conn, void *ctx)
{
	struct smtp_session *s = ctx;

	if (s->job != NULL)
		s->job->session = NULL;
	smtp_submit_session_close(s);
	tx_reset(s);
	free(s->helo);
	free(s);
}

static const struct net_conn_handlers session_handlers = {
	.on_input = session_input,
	.on_timeout = session_timeout,
	.on_close = session_close,
};

static void
server_accept(struct net_conn *conn, void *ctx)
{
	struct smtp_server *srv = ctx;
	struct smtp_session *s = xcalloc(1, sizeof(*s));

	s->server = srv;
	s->conn = conn;
	s->state = SMTP_STATE_INIT;
	net_conn_set_handlers(conn, &session_handlers, s);
	net_conn_set_idle_timeout(conn, srv->timeout);
	smtp_reply(s, "220 %s ESMTP Sealpost", srv->hostname);
}

/* ---- the forwarder route calls ------------------------------------------- */

static void
server_forward(void *ctx, const char *mail_from, const char *rcpt,
	       const void *msg, size_t len, bool eightbit, bool smtputf8,
	       struct route_answer *a)
{
	struct smtp_server *srv = ctx;
	struct smtp_client_options o = {
		.relayhost = srv->relayhost,
		.helo = srv->hostname,
		.dns = srv->dns,
		.timeout_seconds = srv->outbound_timeout,
	};
	struct smtp_client_result r;

	smtp_client_send(&o, mail_from, rcpt, msg, len, eightbit, smtputf8,
			 &r);
	a->action = r.cls.action == SMTP_REPLY_OK      ? ROUTE_ANSWER_OK
		    : r.cls.action == SMTP_REPLY_REJECT ? ROUTE_ANSWER_REJECT
							: ROUTE_ANSWER_DEFER;
	a->code = r.code;
	str_copy(a->enhanced, r.enhanced, sizeof(a->enhanced));
	str_copy(a->text, r.text, sizeof(a->text));
}

static char *
our_hostname(void)
{
	const char *conf_name = conf_str("hostname");
	char name[256];

	if (conf_name[0] != '\0')
		return xstrdup(conf_name);
	if (gethostname(name, sizeof(name)) < 0)
		return xstrdup("localhost");
	name[sizeof(name) - 1] = '\0';
	return xstrdup(name);
}

int
smtp_server_start(struct net_server *net, struct smtp_server **server_r,
		  const char **error_r)
{
	struct smtp_server *srv;
	struct route_settings rs;
	struct net_listen_settings ls;
	const char *listen = conf_str("smtp_listen");
	long long per_hour = conf_int("smtp_max_messages_per_ip_hour");
	int ret;

	if (listen == NULL || listen[0] == '\0')
		return 0;
	srv = xcalloc(1, sizeof(*srv));
	srv->net = net;
	srv->hostname = our_hostname();
	srv->relayhost = xstrdup(conf_str("outbound_relayhost"));
	srv->max_size = (size_t)conf_int("smtp_max_message_size");
	srv->max_rcpts = (unsigned)conf_int("smtp_max_recipients");
	srv->max_line = (unsigned)conf_int("smtp_max_line_length");
	srv->timeout = (unsigned)conf_int("smtp_timeout_seconds");
	srv->outbound_timeout = (unsigned)conf_int("outbound_timeout_seconds");
	srv->log_addresses = conf_bool("log_addresses");
	if (per_hour > 0)
		srv->msg_limit = net_ratelimit_create((unsigned)per_hour, 3600);
	{
		/* One resolver for the MX look-ups of forwards and for the
		 * SPF/DKIM/DMARC/ARC checks whose results forwarded copies
		 * carry in their ARC set (route.c). */
		const char *derr;

		srv->dns = mailauth_dns_unbound_create(conf_str("dns_resolver"),
						       &derr);
		if (srv->dns == NULL)
			log_warn(NULL, "smtp: no DNS resolver (%s): %s", derr,
				 srv->relayhost[0] == '\0'
					 ? "forwards will be deferred"
					 : "inbound checks are temperror");
	}
	{
		char *path = xasprintf("%s/server.key", conf_data_dir());
		struct crypto_key *key = crypto_key_create();

		if (crypto_server_key_load(path, key) == 0)
			srv->srs = mailauth_srs_create(key);
		else
			log_warn(NULL, "smtp: no server key: forwards keep "
				       "their envelope sender (no SRS)");
		crypto_key_destroy(&key);
		free(path);
	}
	memset(&rs, 0, sizeof(rs));
	rs.data_dir = conf_data_dir();
	rs.srs = srv->srs;
	rs.dns = srv->dns;
	rs.hostname = srv->hostname;
	rs.max_forward_targets = (unsigned)conf_int("smtp_max_forward_targets");
	rs.webhook_allow_private = conf_bool("webhook_allow_private");
	rs.webhook_timeout_seconds =
		(unsigned)conf_int("webhook_timeout_seconds");
	rs.forward = server_forward;
	rs.forward_ctx = srv;
	srv->route = route_create(&rs);
	if (pool_start(srv, (unsigned)conf_int("smtp_delivery_threads"),
		       error_r) < 0) {
		smtp_server_destroy(&srv);
		return -1;
	}

	memset(&ls, 0, sizeof(ls));
	ls.address = listen;
	ls.protocol = "smtp";
	ls.max_per_ip = (unsigned)conf_int("smtp_max_connections_per_ip");
	ls.reject_line = "421 4.7.0 Too many connections from your address\r\n";
	ret = net_listen(net, &ls, server_accept, srv, error_r);
	if (ret <= 0) {
		smtp_server_destroy(&srv);
		return ret;
	}
	*server_r = srv;
	return 1;
}

static void
submission_accept(struct net_conn *conn, void *ctx)
{
	server_accept(conn, ctx);
}

int
smtp_submission_start(struct net_server *net, struct queue *queue,
		      struct smtp_server **server_r, const char **error_r)
{
	const char *listens[2] = {conf_str("submission_listen"),
				  conf_str("submissions_listen")};
	struct smtp_server *srv;
	long long per_alias = conf_int("submission_max_messages_per_day");
	long long per_domain =
		conf_int("submission_max_messages_per_domain_day");
	int listening = 0;

	if ((listens[0] == NULL || listens[0][0] == '\0') &&
	    (listens[1] == NULL || listens[1][0] == '\0'))
		return 0;
	srv = xcalloc(1, sizeof(*srv));
	srv->net = net;
	srv->submission = true;
	srv->queue = queue;
	srv->data_dir = xstrdup(conf_data_dir());
	srv->hostname = our_hostname();
	srv->relayhost = xstrdup("");
	srv->max_size = (size_t)conf_int("submission_max_message_size");
	srv->max_rcpts = conf_uint("submission_max_recipients", 1);
	srv->max_line = conf_uint("smtp_max_line_length", 512);
	srv->timeout = conf_uint("smtp_timeout_seconds", 1);
	srv->log_addresses = conf_bool("log_addresses");
	/* Counted in memory over fixed one-day windows: a restart gives a
	 * sender a fresh day, which the limit's purpose (a stolen password
	 * or a runaway script) tolerates. */
	if (per_alias > 0)
		srv->sent_per_alias =
			net_ratelimit_create((unsigned)per_alias, 86400);
	if (per_domain > 0)
		srv->sent_per_domain =
			net_ratelimit_create((unsigned)per_domain, 86400);
	if (pool_start(srv, conf_uint("smtp_delivery_threads", 1), error_r) <
	    0) {
		smtp_server_destroy(&srv);
		return -1;
	}
	for (size_t i = 0; i < 2; i++) {
		struct net_listen_settings ls = {
			.address = listens[i],
			.implicit_tls = i == 1,
			.protocol = "submission",
			.max_per_ip = conf_uint("smtp_max_connections_per_ip",
						0),
			.reject_line = "421 4.7.0 Too many connections from "
				       "your address\r\n",
		};
		int ret = net_listen(net, &ls, submission_accept, srv,
				     error_r);

		if (ret < 0) {
			smtp_server_destroy(&srv);
			return -1;
		}
		listening += ret;
	}
	if (listening == 0) {
		smtp_server_destroy(&srv);
		return 0;
	}
	*server_r = srv;
	return 1;
}

void
smtp_server_destroy(struct smtp_server **server)
{
	struct smtp_server *srv = *server;

	if (srv == NULL)
		return;
	pool_stop(srv);
	route_destroy(&srv->route);
	mailauth_srs_destroy(&srv->srs);
	mailauth_dns_destroy(&srv->dns);
	net_ratelimit_destroy(&srv->msg_limit);
	net_ratelimit_destroy(&srv->sent_per_alias);
	net_ratelimit_destroy(&srv->sent_per_domain);
	free(srv->data_dir);
	free(srv->hostname);
	free(srv->relayhost);
	free(srv);
	*server = NULL;
}
