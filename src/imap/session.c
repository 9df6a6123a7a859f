/* A session: drives the parser from the connection's input, dispatches
 * commands, runs store work on the alias's serial queue and writes the
 * results back on the loop. */
#include "imap-private.h"

#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* How much input is handed to the parser at a time. */
#define IMAP_FEED_CHUNK (64 * 1024)

static void session_input(struct net_conn *conn, void *ctx);
static void session_close(struct net_conn *conn, void *ctx);
static void session_timeout(struct net_conn *conn, void *ctx);
static void session_dispatch(struct imap_session *s);

static const struct net_conn_handlers session_handlers = {
	.on_input = session_input,
	.on_timeout = session_timeout,
	.on_close = session_close,
};

const char *
imap_session_capability(const struct imap_session *s)
{
	if (s->state != IMAP_STATE_NOT_AUTH)
		return s->server->capability_auth;
	if (s->conn != NULL && net_conn_is_tls(s->conn))
		return s->server->capability_tls;
	if (imap_session_login_allowed(s))
		return s->server->capability_tls;
	return s->server->capability_plain;
}

bool
imap_session_login_allowed(const struct imap_session *s)
{
	if (s->conn == NULL)
		return false;
	if (net_conn_is_tls(s->conn))
		return true;
	return s->server->set.allow_plaintext_loopback &&
	       net_conn_is_loopback(s->conn);
}

void
imap_session_accept(struct net_conn *conn, void *ctx)
{
	struct imap_server *server = ctx;
	struct imap_session *s = xcalloc(1, sizeof(*s));

	s->server = server;
	s->conn = conn;
	s->parser = imap_parser_create(&server->set.limits_before_login);
	s->next = server->sessions;
	if (server->sessions != NULL)
		server->sessions->prev = s;
	server->sessions = s;
	net_conn_set_handlers(conn, &session_handlers, s);
	net_conn_set_idle_timeout(conn, server->set.login_timeout);
	net_conn_printf(conn, "* OK [CAPABILITY %s] Sealpost ready.\r\n",
			imap_session_capability(s));
}

static void
session_free(struct imap_session *s)
{
	struct imap_server *server = s->server;

	imap_user_detach(s);
	imap_session_unselect(s);
	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		server->sessions = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	imap_parser_destroy(&s->parser);
	free(s->pending_tag);
	if (s->rate_ev != NULL)
		event_free(s->rate_ev);
	free(s);
}

static void
session_close(struct net_conn *conn, void *ctx)
{
	struct imap_session *s = ctx;

	s->conn = NULL;
	s->closed = true;
	if (!s->busy)
		session_free(s);
}

static void
session_timeout(struct net_conn *conn, void *ctx)
{
	net_conn_write_str(conn, "* BYE Autologout; idle for too long\r\n");
	net_conn_close_after_flush(conn);
}

void
imap_session_unselect(struct imap_session *s)
{
	free(s->uids);
	free(s->recent);
	free(s->folder_name);
	s->uids = s->recent = NULL;
	s->folder_name = NULL;
	s->uid_count = s->uid_cap = s->recent_count = 0;
	s->folder_id = 0;
	if (s->state == IMAP_STATE_SELECTED)
		s->state = IMAP_STATE_AUTH;
}

static void
cmd_free(struct imap_cmd *cmd)
{
	sp_buf_deinit(&cmd->out);
	sp_buf_deinit(&cmd->tagged);
	free(cmd->tag);
	free(cmd);
}

/* Ends the command: output, notification, next command. */
void
imap_session_cmd_done(struct imap_cmd *cmd)
{
	struct imap_session *s = cmd->session;

	if (s->conn != NULL) {
		if (cmd->out.len > 0)
			net_conn_write(s->conn, cmd->out.data, cmd->out.len);
		if (cmd->tagged.len > 0)
			net_conn_write(s->conn, cmd->tagged.data,
				       cmd->tagged.len);
	}
	if (cmd->changed && s->user != NULL)
		imap_user_notify(s->user, s);
	if (s->state == IMAP_STATE_LOGOUT && s->conn != NULL)
		net_conn_close_after_flush(s->conn);
	cmd_free(cmd);
	s->busy = false;
	if (s->closed) {
		session_free(s);
		return;
	}
	if (s->input_mode == IMAP_INPUT_COMMAND)
		imap_parser_reset(s->parser);
	if (s->idle_sync_pending) {
		/* Something changed while the job ran; outside IDLE the next
		 * command reports it anyway. */
		s->idle_sync_pending = false;
		if (s->input_mode == IMAP_INPUT_IDLE &&
		    s->state == IMAP_STATE_SELECTED && s->conn != NULL &&
		    !net_conn_is_closing(s->conn)) {
			imap_user_idle_sync(s);
			return;
		}
	}
	if (s->conn != NULL && !net_conn_is_closing(s->conn))
		net_conn_resume_input(s->conn);
}

static void
job_work(void *ctx)
{
	struct imap_cmd *cmd = ctx;
	struct imap_session *s = cmd->session;
	struct imap_user *user = s->user;

	if (user->mbox == NULL) {
		imap_cmd_store_error(cmd, user->open_error, NULL);
		return;
	}
	if (cmd->def != NULL)
		cmd->def->func(cmd);
	if (s->state == IMAP_STATE_SELECTED && !cmd->no_sync)
		imap_session_sync(s, user->mbox, &cmd->out,
				  cmd->allow_expunge);
}

static void
job_done(void *ctx)
{
	imap_session_cmd_done(ctx);
}

void
imap_session_run_job(struct imap_cmd *cmd)
{
	struct imap_session *s = cmd->session;

	net_work_submit(s->server->net, s->user->queue, job_work, job_done,
			cmd);
}

static void
rate_resume(evutil_socket_t fd, short events, void *arg)
{
	struct imap_session *s = arg;

	if (s->conn == NULL || s->busy)
		return;
	if (s->rate_pending) {
		s->rate_pending = false;
		session_dispatch(s);
	}
	if (s->conn != NULL && !s->busy)
		net_conn_resume_input(s->conn);
}

/* Commands per second: over the limit, stop reading for a second rather
 * than failing commands a client would not understand. */
static bool
rate_exceeded(struct imap_session *s)
{
	time_t now = time(NULL);
	unsigned max = s->server->set.commands_per_second;
	struct timeval tv = {1, 0};

	if (max == 0)
		return false;
	if (now != s->rate_second) {
		s->rate_second = now;
		s->rate_count = 0;
	}
	if (++s->rate_count <= max)
		return false;
	if (s->rate_ev == NULL)
		s->rate_ev = evtimer_new(net_server_base(s->server->net),
					 rate_resume, s);
	net_conn_pause_input(s->conn);
	evtimer_add(s->rate_ev, &tv);
	s->rate_count = 0;
	return true;
}

static void
session_dispatch(struct imap_session *s)
{
	unsigned argc;
	const struct imap_arg *args = imap_parser_args(s->parser, &argc);
	const struct imap_command *def;
	struct imap_cmd *cmd;
	bool uid = false;
	const char *name = args[1].str;

	if (imap_arg_is_atom(&args[1], "UID") && argc > 2 &&
	    args[2].type == IMAP_ARG_ATOM) {
		uid = true;
		name = args[2].str;
	}
	def = imap_command_find(name);
	if (def == NULL || (uid && (def->flags & IMAP_CMD_UID) == 0)) {
		net_conn_printf(s->conn, "%s BAD Unknown command\r\n",
				args[0].str);
		imap_parser_reset(s->parser);
		return;
	}
	if ((def->flags & IMAP_CMD_ANY) == 0) {
		const char *why = NULL;

		if (s->state == IMAP_STATE_NOT_AUTH &&
		    (def->flags & IMAP_CMD_NOT_AUTH) == 0)
			why = "Not logged in";
		else if (s->state != IMAP_STATE_NOT_AUTH &&
			 (def->flags & IMAP_CMD_NOT_AUTH) != 0)
			why = "Already logged in";
		else if ((def->flags & IMAP_CMD_SELECTED) != 0 &&
			 s->state != IMAP_STATE_SELECTED)
			why = "No mailbox selected";
		if (why != NULL) {
			net_conn_printf(s->conn, "%s BAD %s\r\n", args[0].str,
					why);
			imap_parser_reset(s->parser);
			return;
		}
	}
	cmd = xcalloc(1, sizeof(*cmd));
	cmd->session = s;
	cmd->def = def;
	cmd->tag = xstrdup(args[0].str);
	cmd->uid = uid;
	cmd->args = args + (uid ? 3 : 2);
	cmd->argc = argc - (uid ? 3 : 2);
	cmd->allow_expunge = uid || (def->flags & IMAP_CMD_NO_EXPUNGE) == 0;
	cmd->changed = (def->flags & IMAP_CMD_CHANGES) != 0;
	sp_buf_init(&cmd->out);
	sp_buf_init(&cmd->tagged);
	s->busy = true;
	net_conn_pause_input(s->conn);
	if ((def->flags & IMAP_CMD_LOOP) != 0 || s->user == NULL) {
		/* Not logged in: no store to work on (NOOP). */
		if ((def->flags & IMAP_CMD_LOOP) == 0) {
			def->func(cmd);
			imap_session_cmd_done(cmd);
			return;
		}
		/* The handler ends the command itself (at once, or later
		 * from a job of its own). */
		def->func(cmd);
		return;
	}
	imap_session_run_job(cmd);
}

/* IDLE's DONE and AUTHENTICATE's response line. */
static bool
session_line(struct imap_session *s)
{
	char *line;
	size_t len;
	int ret;

	ret = net_conn_read_line(s->conn, s->server->set.limits.max_line,
				 &line, &len);
	if (ret == 0)
		return false;
	if (ret < 0) {
		net_conn_write_str(s->conn, "* BYE Line too long\r\n");
		net_conn_close_after_flush(s->conn);
		return false;
	}
	if (s->input_mode == IMAP_INPUT_IDLE) {
		if (strcasecmp(line, "DONE") == 0) {
			net_conn_printf(s->conn, "%s OK Idle completed.\r\n",
					s->pending_tag);
		} else {
			net_conn_printf(s->conn,
					"%s BAD Expected DONE.\r\n",
					s->pending_tag);
		}
		free(s->pending_tag);
		s->pending_tag = NULL;
		s->input_mode = IMAP_INPUT_COMMAND;
		imap_parser_reset(s->parser);
		net_conn_set_idle_timeout(s->conn, s->server->set.idle_timeout);
	} else {
		s->input_mode = IMAP_INPUT_COMMAND;
		imap_login_sasl_response(s, line);
	}
	/* The line may be a SASL response with a password in it. */
	explicit_bzero(line, len);
	free(line);
	return true;
}

static void
session_input(struct net_conn *conn, void *ctx)
{
	struct imap_session *s = ctx;

	while (!s->busy && !net_conn_is_closing(conn)) {
		const unsigned char *data;
		size_t len, used;
		enum imap_parse_result r;

		if (s->input_mode != IMAP_INPUT_COMMAND) {
			if (!session_line(s))
				break;
			continue;
		}
		data = net_conn_peek(conn, IMAP_FEED_CHUNK, &len);
		if (len == 0)
			break;
		r = imap_parser_feed(s->parser, data, len, &used);
		net_conn_consume(conn, used);
		switch (r) {
		case IMAP_PARSE_NEED_MORE:
			break;
		case IMAP_PARSE_CONTINUE:
			net_conn_write_str(conn, "+ OK\r\n");
			break;
		case IMAP_PARSE_DONE:
			if (rate_exceeded(s)) {
				/* Dispatched when the pause is over: the
				 * parsed command stays in the parser. */
				s->rate_pending = true;
				return;
			}
			session_dispatch(s);
			break;
		case IMAP_PARSE_ERROR: {
			const char *tag = imap_parser_tag(s->parser);

			net_conn_printf(conn, "%s BAD %s\r\n",
					tag != NULL ? tag : "*",
					imap_parser_error(s->parser));
			imap_parser_reset(s->parser);
			break;
		}
		case IMAP_PARSE_LITERAL_TOO_BIG: {
			const char *tag = imap_parser_tag(s->parser);

			net_conn_printf(conn, "%s NO [TOOBIG] %s\r\n",
					tag != NULL ? tag : "*",
					imap_parser_error(s->parser));
			imap_parser_reset(s->parser);
			break;
		}
		case IMAP_PARSE_FATAL:
			net_conn_printf(conn, "* BYE %s\r\n",
					imap_parser_error(s->parser));
			net_conn_close_after_flush(conn);
			return;
		}
		if (r == IMAP_PARSE_NEED_MORE && used == len &&
		    net_conn_input_len(conn) == 0)
			break;
	}
}
