/* A session: drives the line parser from the connection's input,
 * dispatches commands, runs store work on the session's own serial queue
 * and writes replies back on the loop. */
#include "pop3-private.h"

#include "crypto/crypto.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

/* How much buffered input is handed to the parser at a time. */
#define POP3_FEED_CHUNK (16 * 1024)

static void session_input(struct net_conn *conn, void *ctx);
static void session_close(struct net_conn *conn, void *ctx);
static void session_timeout(struct net_conn *conn, void *ctx);

static const struct net_conn_handlers session_handlers = {
	.on_input = session_input,
	.on_timeout = session_timeout,
	.on_close = session_close,
};

bool
pop3_session_login_allowed(const struct pop3_session *s)
{
	if (s->conn == NULL)
		return false;
	if (net_conn_is_tls(s->conn))
		return true;
	return s->server->set.allow_plaintext_loopback &&
	       net_conn_is_loopback(s->conn);
}

void
pop3_session_capa(const struct pop3_session *s, struct sp_buf *out)
{
	sp_buf_append_str(out, "TOP\r\nUIDL\r\nRESP-CODES\r\nPIPELINING\r\n"
			       "AUTH-RESP-CODE\r\n");
	if (s->state == POP3_STATE_AUTHORIZATION) {
		/* Offered only where they may be used (RFC 2595 4). */
		if (pop3_session_login_allowed(s))
			sp_buf_append_str(out, "USER\r\nSASL PLAIN\r\n");
		if (s->conn != NULL && !net_conn_is_tls(s->conn) &&
		    net_server_has_tls(s->server->net))
			sp_buf_append_str(out, "STLS\r\n");
	}
	sp_buf_append_str(out, "IMPLEMENTATION Sealpost\r\n.\r\n");
}

void
pop3_session_accept(struct net_conn *conn, void *ctx)
{
	struct pop3_server *server = ctx;
	struct pop3_session *s = xcalloc(1, sizeof(*s));

	s->server = server;
	s->conn = conn;
	s->parser = pop3_parser_create(server->set.max_line);
	s->next = server->sessions;
	if (server->sessions != NULL)
		server->sessions->prev = s;
	server->sessions = s;
	net_conn_set_handlers(conn, &session_handlers, s);
	net_conn_set_idle_timeout(conn, server->set.idle_timeout);
	net_conn_write_str(conn, "+OK Sealpost POP3 ready.\r\n");
}

bool
pop3_session_mailbox_in_use(const struct pop3_server *server,
			    const char *mailbox_id)
{
	for (const struct pop3_session *s = server->sessions; s != NULL;
	     s = s->next) {
		if (s->locked && strcmp(s->keys.mailbox_id, mailbox_id) == 0)
			return true;
	}
	return false;
}

void
pop3_session_attach(struct pop3_session *s, struct account_session_keys *keys)
{
	s->keys = *keys;
	memset(keys, 0, sizeof(*keys));
	s->locked = true;
	s->queue = net_workq_create(s->server->net);
}

/* What outlives a session on its queue: the store handle and the keys,
 * closed and wiped behind any job still running. */
struct pop3_leftover {
	struct pop3_leftover *prev, *next;
	struct pop3_server *server;
	struct store_mailbox *mbox;
	struct account_session_keys keys;
	struct pop3_msg *msgs;
};

static void
leftover_work(void *ctx)
{
	struct pop3_leftover *left = ctx;

	store_mailbox_close(&left->mbox);
}

static void
leftover_done(void *ctx)
{
	struct pop3_leftover *left = ctx;

	if (left->prev != NULL)
		left->prev->next = left->next;
	else
		left->server->leftovers = left->next;
	if (left->next != NULL)
		left->next->prev = left->prev;
	account_session_keys_clear(&left->keys);
	free(left->msgs);
	free(left);
}

void
pop3_session_detach(struct pop3_session *s)
{
	struct pop3_leftover *left;

	if (!s->locked)
		return;
	if (s->keys.address != NULL)
		account_login_release(s->keys.address);
	left = xcalloc(1, sizeof(*left));
	left->server = s->server;
	left->next = s->server->leftovers;
	if (left->next != NULL)
		left->next->prev = left;
	s->server->leftovers = left;
	left->mbox = s->mbox;
	left->keys = s->keys;
	left->msgs = s->msgs;
	s->mbox = NULL;
	s->msgs = NULL;
	s->msg_count = 0;
	memset(&s->keys, 0, sizeof(s->keys));
	s->locked = false;
	if (s->server->destroying) {
		/* The workers are stopping and nothing of ours is queued
		 * (the session is not busy): close here. */
		leftover_work(left);
		leftover_done(left);
	} else {
		net_work_submit(s->server->net, s->queue, leftover_work,
				leftover_done, left);
	}
	net_workq_destroy(&s->queue);
}

static void
session_free(struct pop3_session *s)
{
	struct pop3_server *server = s->server;

	/* Only QUIT removes messages: whatever DELE marked is forgotten. */
	pop3_session_detach(s);
	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		server->sessions = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	pop3_parser_destroy(&s->parser);
	crypto_secret_free(&s->user);
	free(s);
	if (server->destroying && server->sessions == NULL)
		pop3_server_destroy(&server);
}

static void
session_close(struct net_conn *conn, void *ctx)
{
	struct pop3_session *s = ctx;

	s->conn = NULL;
	s->closed = true;
	if (!s->busy)
		session_free(s);
}

static void
session_timeout(struct net_conn *conn, void *ctx)
{
	/* RFC 1939 3: an autologout timer ends the session without
	 * entering UPDATE, so nothing is removed. */
	net_conn_write_str(conn, "-ERR Disconnected for inactivity.\r\n");
	net_conn_close_after_flush(conn);
}

void
pop3_cmd_done(struct pop3_cmd *cmd)
{
	struct pop3_session *s = cmd->session;

	if (s->conn != NULL && cmd->out.len > 0)
		net_conn_write(s->conn, cmd->out.data, cmd->out.len);
	if (s->conn != NULL && cmd->close)
		net_conn_close_after_flush(s->conn);
	/* The buffer may have held a mail: wiped, not just freed. */
	if (cmd->out.data != NULL)
		sodium_memzero(cmd->out.data, cmd->out.len);
	sp_buf_deinit(&cmd->out);
	free(cmd);
	s->busy = false;
	pop3_parser_reset(s->parser);
	if (s->closed) {
		session_free(s);
		return;
	}
	if (s->conn != NULL && !net_conn_is_closing(s->conn))
		net_conn_resume_input(s->conn);
}

void
pop3_session_submit(struct pop3_cmd *cmd, net_work_func *work,
		    net_done_func *done)
{
	struct pop3_session *s = cmd->session;

	net_work_submit(s->server->net, s->queue, work, done, cmd);
}

static struct pop3_cmd *
cmd_new(struct pop3_session *s)
{
	struct pop3_cmd *cmd = xcalloc(1, sizeof(*cmd));

	cmd->session = s;
	sp_buf_init(&cmd->out);
	s->busy = true;
	net_conn_pause_input(s->conn);
	return cmd;
}

static void
session_dispatch(struct pop3_session *s)
{
	const struct pop3_command *def;
	struct pop3_cmd *cmd;
	const char *kw;

	if (s->sasl_pending) {
		size_t len;
		const char *line = pop3_parser_line(s->parser, &len);

		s->sasl_pending = false;
		pop3_login_sasl_response(cmd_new(s), line);
		return;
	}
	kw = pop3_parser_keyword(s->parser);
	def = pop3_command_find(kw);
	if (def == NULL) {
		net_conn_write_str(s->conn, "-ERR Unknown command.\r\n");
		pop3_parser_reset(s->parser);
		return;
	}
	if ((s->state == POP3_STATE_AUTHORIZATION &&
	     (def->flags & POP3_CMD_AUTHORIZATION) == 0) ||
	    (s->state == POP3_STATE_TRANSACTION &&
	     (def->flags & POP3_CMD_TRANSACTION) == 0)) {
		net_conn_write_str(s->conn,
				   s->state == POP3_STATE_TRANSACTION
					   ? "-ERR Already logged in.\r\n"
					   : "-ERR Not logged in.\r\n");
		pop3_parser_reset(s->parser);
		return;
	}
	cmd = cmd_new(s);
	cmd->def = def;
	cmd->args = pop3_parser_args(s->parser, &cmd->argc);
	def->func(cmd);
}

static void
session_input(struct net_conn *conn, void *ctx)
{
	struct pop3_session *s = ctx;

	if (s->stls && net_conn_is_tls(conn))
		s->stls = false; /* the handshake is done: TLS input */
	/* Drain every complete command that is buffered (pipelining);
	 * stop while one waits on the store, and after STLS, whose
	 * plaintext leftovers the net layer throws away. */
	while (!s->busy && !s->stls && !net_conn_is_closing(conn)) {
		const unsigned char *data;
		size_t len, used;
		enum pop3_parse_result r;

		data = net_conn_peek(conn, POP3_FEED_CHUNK, &len);
		if (len == 0)
			break;
		pop3_parser_set_raw(s->parser, s->sasl_pending);
		r = pop3_parser_feed(s->parser, data, len, &used);
		net_conn_consume(conn, used);
		if (r == POP3_PARSE_NEED_MORE)
			continue;
		if (r == POP3_PARSE_ERROR) {
			s->sasl_pending = false;
			net_conn_printf(conn, "-ERR %s.\r\n",
					pop3_parse_error_str(
						pop3_parser_error(s->parser)));
			pop3_parser_reset(s->parser);
			continue;
		}
		session_dispatch(s);
	}
}

unsigned
pop3_server_close_mailbox(struct pop3_server *server, const char *mailbox_id,
			  bool force)
{
	unsigned told = 0;

	for (struct pop3_session *s = server->sessions; s != NULL;
	     s = s->next) {
		if (!s->locked || s->conn == NULL ||
		    strcmp(s->keys.mailbox_id, mailbox_id) != 0)
			continue;
		if (force) {
			net_conn_close(s->conn);
			continue;
		}
		if (net_conn_is_closing(s->conn))
			continue;
		net_conn_write_str(s->conn,
				   "-ERR [SYS/TEMP] The mailbox is being "
				   "replaced (restored from a backup, or a "
				   "new password); closing.\r\n");
		net_conn_close_after_flush(s->conn);
		told++;
	}
	return told;
}

bool
pop3_server_mailbox_open(const struct pop3_server *server,
			 const char *mailbox_id)
{
	for (const struct pop3_session *s = server->sessions; s != NULL;
	     s = s->next) {
		if (s->locked && strcmp(s->keys.mailbox_id, mailbox_id) == 0)
			return true;
	}
	for (const struct pop3_leftover *l = server->leftovers; l != NULL;
	     l = l->next) {
		if (strcmp(l->keys.mailbox_id, mailbox_id) == 0)
			return true;
	}
	return false;
}
