/* Private to src/pop3. */
#ifndef SEALPOST_POP3_PRIVATE_H
#define SEALPOST_POP3_PRIVATE_H

#include "pop3.h"
#include "pop3-parser.h"

#include "account/account.h"
#include "core/core.h"
#include "net/net.h"
#include "store/store.h"

struct pop3_settings {
	bool allow_plaintext_loopback;
	unsigned idle_timeout; /* seconds (RFC 1939: at least 10 minutes) */
	size_t max_line;       /* bytes of a command line */
};

struct pop3_server {
	struct net_server *net;
	struct pop3_settings set;
	struct pop3_session *sessions;
	/* Store handles of ended sessions, until closed on their queue. */
	struct pop3_leftover *leftovers;
	char *data_dir;
	/* pop3_server_destroy ran: free with the last session, and close
	 * mailboxes on the spot (the workers are stopping). */
	bool destroying;
};

enum pop3_state {
	POP3_STATE_AUTHORIZATION,
	POP3_STATE_TRANSACTION,
	POP3_STATE_UPDATE, /* QUIT is removing the deleted messages */
};

/* One message of the INBOX snapshot taken at login; its number is its
 * index + 1 for the whole session. */
struct pop3_msg {
	uint32_t uid;
	uint64_t size;
	bool deleted;
};

struct pop3_session {
	struct pop3_session *prev, *next;
	struct pop3_server *server;
	struct net_conn *conn; /* NULL once the connection is gone */
	struct pop3_parser *parser;
	enum pop3_state state;
	bool busy;	   /* a job of this session is queued or running */
	bool closed;	   /* the connection is gone: free after the job */
	bool sasl_pending; /* AUTH PLAIN waits for its response line */
	bool stls;	   /* STLS accepted: read nothing more in plaintext */
	char *user;	   /* from USER, until PASS (sodium_malloc) */

	/* After login: the alias's keys, its maildrop lock, the serial lane
	 * for its store work and the store handle (worker side while busy,
	 * loop side else). */
	struct account_session_keys keys;
	bool locked;
	struct net_workq *queue;
	uint64_t quota; /* storage limit for the spool drain (0: none) */
	struct store_mailbox *mbox;
	int64_t inbox_id;
	uint32_t uidvalidity;
	struct pop3_msg *msgs;
	size_t msg_count;
};

struct pop3_cmd;
/* Runs on the loop. Ends the command with pop3_cmd_done(), at once or
 * from a job's completion. */
typedef void pop3_cmd_func(struct pop3_cmd *cmd);

enum pop3_cmd_flags {
	POP3_CMD_AUTHORIZATION = 1 << 0, /* valid before login */
	POP3_CMD_TRANSACTION = 1 << 1,	 /* valid after login */
};

struct pop3_command {
	const char *name;
	pop3_cmd_func *func;
	int flags;
};

struct pop3_cmd {
	struct pop3_session *session;
	const struct pop3_command *def;
	const char *const *args; /* the parser's, valid until cmd_done */
	unsigned argc;
	struct sp_buf out; /* the reply, written by pop3_cmd_done */
	bool close;	   /* close once the reply is flushed (QUIT) */
	/* Job state (RETR, TOP, QUIT, login). */
	uint32_t uid;
	long lines;
	void *ctx;
};

/* commands.c */
const struct pop3_command *pop3_command_find(const char *name);
void pop3_cmd_ok(struct pop3_cmd *cmd, const char *fmt, ...) SP_PRINTF(2, 3);
void pop3_cmd_err(struct pop3_cmd *cmd, const char *fmt, ...)
	SP_PRINTF(2, 3);
/* The one mapping of store errors to -ERR replies. */
void pop3_cmd_store_error(struct pop3_cmd *cmd, enum store_error error);

/* session.c */
void pop3_session_accept(struct net_conn *conn, void *ctx);
/* Writes the reply, frees the command, resumes reading. */
void pop3_cmd_done(struct pop3_cmd *cmd);
/* Runs `work` on the session's serial queue, then `done` on the loop. */
void pop3_session_submit(struct pop3_cmd *cmd, net_work_func *work,
			 net_done_func *done);
bool pop3_session_login_allowed(const struct pop3_session *s);
/* The CAPA list for the session's state. */
void pop3_session_capa(const struct pop3_session *s, struct sp_buf *out);
/* Starts the session's store lane after a successful login (keys taken
 * over from *keys). */
void pop3_session_attach(struct pop3_session *s,
			 struct account_session_keys *keys);
/* True when another session of the server holds the alias's maildrop. */
bool pop3_session_mailbox_in_use(const struct pop3_server *server,
				 const char *mailbox_id);
/* Drops keys, lock, store handle (closed on its lane). */
void pop3_session_detach(struct pop3_session *s);

/* login.c */
pop3_cmd_func pop3_cmd_user, pop3_cmd_pass, pop3_cmd_auth;
/* The response line after "AUTH PLAIN" without an initial response. */
void pop3_login_sasl_response(struct pop3_cmd *cmd, const char *line);
/* Control-plane handle of the calling worker thread. */
struct account_db *pop3_account_db(void);

#endif
