/* The command table and the commands of the TRANSACTION state. Everything
 * but RETR, TOP and QUIT answers from the INBOX snapshot on the loop. */
#include "pop3-private.h"

#include <limits.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static pop3_cmd_func cmd_capa, cmd_noop, cmd_quit, cmd_stls, cmd_stat,
	cmd_list, cmd_uidl, cmd_retr, cmd_top, cmd_dele, cmd_rset;

#define AUTHZ POP3_CMD_AUTHORIZATION
#define TRANS POP3_CMD_TRANSACTION

static const struct pop3_command commands[] = {
	{"CAPA", cmd_capa, AUTHZ | TRANS},
	{"NOOP", cmd_noop, TRANS},
	{"QUIT", cmd_quit, AUTHZ | TRANS},
	{"STLS", cmd_stls, AUTHZ},
	{"USER", pop3_cmd_user, AUTHZ},
	{"PASS", pop3_cmd_pass, AUTHZ},
	{"AUTH", pop3_cmd_auth, AUTHZ},
	{"STAT", cmd_stat, TRANS},
	{"LIST", cmd_list, TRANS},
	{"UIDL", cmd_uidl, TRANS},
	{"RETR", cmd_retr, TRANS},
	{"TOP", cmd_top, TRANS},
	{"DELE", cmd_dele, TRANS},
	{"RSET", cmd_rset, TRANS},
};

const struct pop3_command *
pop3_command_find(const char *name)
{
	for (size_t i = 0; i < SP_N_ELEMENTS(commands); i++) {
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	}
	return NULL;
}

static void
reply(struct pop3_cmd *cmd, const char *status, const char *fmt, va_list args)
{
	char text[512];

	vsnprintf(text, sizeof(text), fmt, args);
	sp_buf_append_str(&cmd->out, status);
	if (text[0] != '\0') {
		sp_buf_append(&cmd->out, " ", 1);
		sp_buf_append_str(&cmd->out, text);
	}
	sp_buf_append(&cmd->out, "\r\n", 2);
}

void
pop3_cmd_ok(struct pop3_cmd *cmd, const char *fmt, ...)
{
	va_list args;

	va_start(args, fmt);
	reply(cmd, "+OK", fmt, args);
	va_end(args);
}

void
pop3_cmd_err(struct pop3_cmd *cmd, const char *fmt, ...)
{
	va_list args;

	va_start(args, fmt);
	reply(cmd, "-ERR", fmt, args);
	va_end(args);
}

void
pop3_cmd_store_error(struct pop3_cmd *cmd, enum store_error error)
{
	switch (error) {
	case STORE_OK:
		break;
	case STORE_ERR_BADKEY:
		pop3_cmd_err(cmd, "[AUTH] Authentication failed.");
		break;
	case STORE_ERR_NOTFOUND:
		pop3_cmd_err(cmd, "Message no longer exists.");
		break;
	case STORE_ERR_TEMP:
	case STORE_ERR_QUOTA:
	case STORE_ERR_EXISTS:
	case STORE_ERR_INVALID:
	case STORE_ERR_NOTEMPTY: {
		char when[21];

		/* Details are in the log; the client gets a time to quote. */
		clock_format_iso8601(clock_now(), when);
		pop3_cmd_err(cmd, "[SYS/TEMP] Internal error occurred. "
				  "Refer to server log for more information. "
				  "[%s]",
			     when);
		break;
	}
	}
}

static void
cmd_capa(struct pop3_cmd *cmd)
{
	pop3_cmd_ok(cmd, "Capability list follows");
	pop3_session_capa(cmd->session, &cmd->out);
	pop3_cmd_done(cmd);
}

static void
cmd_noop(struct pop3_cmd *cmd)
{
	if (cmd->argc != 0)
		pop3_cmd_err(cmd, "NOOP takes no arguments.");
	else
		pop3_cmd_ok(cmd, "%s", "");
	pop3_cmd_done(cmd);
}

static void
cmd_stls(struct pop3_cmd *cmd)
{
	struct pop3_session *s = cmd->session;
	const char *error;

	if (cmd->argc != 0) {
		pop3_cmd_err(cmd, "STLS takes no arguments.");
	} else if (net_conn_is_tls(s->conn)) {
		pop3_cmd_err(cmd, "TLS is already active.");
	} else if (!net_server_has_tls(s->server->net)) {
		pop3_cmd_err(cmd, "TLS is not available.");
	} else {
		pop3_cmd_ok(cmd, "Begin TLS negotiation now.");
		/* The reply goes out first, in plaintext; the upgrade waits
		 * for it to be flushed. */
		net_conn_write(s->conn, cmd->out.data, cmd->out.len);
		sp_buf_reset(&cmd->out);
		if (net_conn_starttls(s->conn, &error) < 0) {
			log_warn(net_conn_id(s->conn), "pop3: STLS: %s", error);
			net_conn_close(s->conn);
		} else {
			/* RFC 2595 4: forget what was learned before TLS. */
			s->stls = true;
			if (s->user != NULL)
				sodium_free(s->user);
			s->user = NULL;
		}
	}
	pop3_cmd_done(cmd);
}

/* ---- the snapshot ---- */

/* Looks up the message-number argument: the message, or NULL after an
 * -ERR reply. */
static struct pop3_msg *
msg_arg(struct pop3_cmd *cmd, const char *arg)
{
	struct pop3_session *s = cmd->session;
	unsigned long n;

	if (pop3_parse_number(arg, UINT32_MAX, &n) < 0 || n == 0) {
		pop3_cmd_err(cmd, "Invalid message number.");
		return NULL;
	}
	if (n > s->msg_count) {
		pop3_cmd_err(cmd, "There is no message %lu.", n);
		return NULL;
	}
	if (s->msgs[n - 1].deleted) {
		pop3_cmd_err(cmd, "Message %lu is deleted.", n);
		return NULL;
	}
	return &s->msgs[n - 1];
}

static void
cmd_stat(struct pop3_cmd *cmd)
{
	struct pop3_session *s = cmd->session;
	uint64_t count = 0, size = 0;

	if (cmd->argc != 0) {
		pop3_cmd_err(cmd, "STAT takes no arguments.");
		pop3_cmd_done(cmd);
		return;
	}
	for (size_t i = 0; i < s->msg_count; i++) {
		if (!s->msgs[i].deleted) {
			count++;
			size += s->msgs[i].size;
		}
	}
	pop3_cmd_ok(cmd, "%llu %llu", (unsigned long long)count,
		    (unsigned long long)size);
	pop3_cmd_done(cmd);
}

/* Stable across sessions as long as INBOX keeps its UIDVALIDITY (RFC 1939
 * 7: 1 to 70 characters in 0x21..0x7E). */
static void
format_uidl(const struct pop3_session *s, const struct pop3_msg *m,
	    char out[18])
{
	snprintf(out, 18, "%08x%08x", s->uidvalidity, m->uid);
}

/* LIST and UIDL: one line per message, or one message. */
static void
list_or_uidl(struct pop3_cmd *cmd, bool uidl)
{
	struct pop3_session *s = cmd->session;
	char uid[18];

	if (cmd->argc > 1) {
		pop3_cmd_err(cmd, "Too many arguments.");
	} else if (cmd->argc == 1) {
		struct pop3_msg *m = msg_arg(cmd, cmd->args[0]);

		if (m != NULL && uidl) {
			format_uidl(s, m, uid);
			pop3_cmd_ok(cmd, "%zu %s", (size_t)(m - s->msgs) + 1,
				    uid);
		} else if (m != NULL) {
			pop3_cmd_ok(cmd, "%zu %llu", (size_t)(m - s->msgs) + 1,
				    (unsigned long long)m->size);
		}
	} else {
		pop3_cmd_ok(cmd, uidl ? "Unique-ID listing follows"
				      : "Scan listing follows");
		for (size_t i = 0; i < s->msg_count; i++) {
			const struct pop3_msg *m = &s->msgs[i];

			if (m->deleted)
				continue;
			if (uidl) {
				format_uidl(s, m, uid);
				sp_buf_printf(&cmd->out, "%zu %s\r\n", i + 1,
					      uid);
			} else {
				sp_buf_printf(&cmd->out, "%zu %llu\r\n", i + 1,
					      (unsigned long long)m->size);
			}
		}
		sp_buf_append_str(&cmd->out, ".\r\n");
	}
	pop3_cmd_done(cmd);
}

static void
cmd_list(struct pop3_cmd *cmd)
{
	list_or_uidl(cmd, false);
}

static void
cmd_uidl(struct pop3_cmd *cmd)
{
	list_or_uidl(cmd, true);
}

static void
cmd_dele(struct pop3_cmd *cmd)
{
	struct pop3_msg *m;

	if (cmd->argc != 1) {
		pop3_cmd_err(cmd, "DELE takes one message number.");
	} else if ((m = msg_arg(cmd, cmd->args[0])) != NULL) {
		m->deleted = true;
		pop3_cmd_ok(cmd, "Marked to be deleted.");
	}
	pop3_cmd_done(cmd);
}

static void
cmd_rset(struct pop3_cmd *cmd)
{
	struct pop3_session *s = cmd->session;

	if (cmd->argc != 0) {
		pop3_cmd_err(cmd, "RSET takes no arguments.");
	} else {
		for (size_t i = 0; i < s->msg_count; i++)
			s->msgs[i].deleted = false;
		pop3_cmd_ok(cmd, "%s", "");
	}
	pop3_cmd_done(cmd);
}

/* ---- RETR and TOP: fetched and formatted on the session's lane ---- */

static void
fetch_work(void *ctx)
{
	struct pop3_cmd *cmd = ctx;
	struct pop3_session *s = cmd->session;
	struct sp_buf raw;
	enum store_error err;
	const char *error;

	sp_buf_init(&raw);
	err = store_fetch_raw(s->mbox, s->inbox_id, cmd->uid, &raw, &error);
	if (err != STORE_OK) {
		log_warn(NULL, "pop3: fetch failed: %s", error);
		pop3_cmd_store_error(cmd, err);
	} else {
		if (cmd->lines < 0)
			pop3_cmd_ok(cmd, "%zu octets", raw.len);
		else
			pop3_cmd_ok(cmd, "Top of message follows");
		pop3_format_message(raw.data, raw.len, cmd->lines, &cmd->out);
	}
	/* The plaintext of a mail: wiped, not just freed. */
	if (raw.data != NULL)
		sodium_memzero(raw.data, raw.len);
	sp_buf_deinit(&raw);
}

static void
fetch_done(void *ctx)
{
	pop3_cmd_done(ctx);
}

static void
fetch(struct pop3_cmd *cmd, const char *msg_str, long lines)
{
	struct pop3_msg *m = msg_arg(cmd, msg_str);

	if (m == NULL) {
		pop3_cmd_done(cmd);
		return;
	}
	cmd->uid = m->uid;
	cmd->lines = lines;
	pop3_session_submit(cmd, fetch_work, fetch_done);
}

static void
cmd_retr(struct pop3_cmd *cmd)
{
	if (cmd->argc != 1) {
		pop3_cmd_err(cmd, "RETR takes one message number.");
		pop3_cmd_done(cmd);
		return;
	}
	fetch(cmd, cmd->args[0], -1);
}

static void
cmd_top(struct pop3_cmd *cmd)
{
	unsigned long lines;

	if (cmd->argc != 2) {
		pop3_cmd_err(cmd, "TOP takes a message number and a line "
				  "count.");
		pop3_cmd_done(cmd);
		return;
	}
	if (pop3_parse_number(cmd->args[1], LONG_MAX, &lines) < 0) {
		pop3_cmd_err(cmd, "Invalid number of lines.");
		pop3_cmd_done(cmd);
		return;
	}
	fetch(cmd, cmd->args[0], (long)lines);
}

/* ---- QUIT: the UPDATE state ---- */

struct quit_ctx {
	struct store_uid_range *ranges;
	size_t count;
	enum store_error err;
};

static void
quit_work(void *ctx)
{
	struct pop3_cmd *cmd = ctx;
	struct pop3_session *s = cmd->session;
	struct quit_ctx *q = cmd->ctx;
	struct store_uidset set = {q->ranges, q->count};
	const char *error;

	/* Marked \Deleted, then expunged within exactly this set: other
	 * messages an IMAP session flagged stay until it expunges them.
	 * Both commits are durable, so +OK means gone. */
	q->err = store_flags_update(s->mbox, s->inbox_id, &set,
				    STORE_FLAGS_ADD, STORE_FLAG_DELETED, NULL,
				    0, NULL, NULL, NULL, NULL, &error);
	if (q->err == STORE_OK)
		q->err = store_expunge(s->mbox, s->inbox_id, &set, NULL, NULL,
				       &error);
	if (q->err != STORE_OK)
		log_warn(NULL, "pop3: removing deleted messages failed: %s",
			 error);
}

static void
quit_done(void *ctx)
{
	struct pop3_cmd *cmd = ctx;
	struct quit_ctx *q = cmd->ctx;

	if (q->err == STORE_OK)
		pop3_cmd_ok(cmd, "Logging out, messages deleted.");
	else
		pop3_cmd_err(cmd, "[SYS/TEMP] Some deleted messages were not "
				  "removed.");
	free(q->ranges);
	free(q);
	cmd->close = true;
	pop3_cmd_done(cmd);
}

static void
cmd_quit(struct pop3_cmd *cmd)
{
	struct pop3_session *s = cmd->session;
	struct quit_ctx *q;

	if (s->state == POP3_STATE_AUTHORIZATION || s->msg_count == 0) {
		pop3_cmd_ok(cmd, "Logging out.");
		cmd->close = true;
		pop3_cmd_done(cmd);
		return;
	}
	q = xcalloc(1, sizeof(*q));
	/* The UIDs are ascending: one range per run of deleted ones. */
	q->ranges = xcalloc(s->msg_count, sizeof(*q->ranges));
	for (size_t i = 0; i < s->msg_count; i++) {
		if (!s->msgs[i].deleted)
			continue;
		if (q->count > 0 && i > 0 && s->msgs[i - 1].deleted) {
			q->ranges[q->count - 1].last = s->msgs[i].uid;
			continue;
		}
		q->ranges[q->count].first = s->msgs[i].uid;
		q->ranges[q->count].last = s->msgs[i].uid;
		q->count++;
	}
	if (q->count == 0) {
		free(q->ranges);
		free(q);
		pop3_cmd_ok(cmd, "Logging out.");
		cmd->close = true;
		pop3_cmd_done(cmd);
		return;
	}
	s->state = POP3_STATE_UPDATE;
	cmd->ctx = q;
	pop3_session_submit(cmd, quit_work, quit_done);
}
