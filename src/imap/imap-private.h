/* Private to src/imap. */
#ifndef SEALPOST_IMAP_PRIVATE_H
#define SEALPOST_IMAP_PRIVATE_H

#include "imap.h"
#include "imap-parser.h"

#include "account/account.h"
#include "core/core.h"
#include "net/net.h"
#include "store/store.h"

#include <stdio.h>
#include <stdarg.h>
#include "store/store.h"

struct event;

#define IMAP_MAX_KEYWORDS_LEN 4096

struct imap_settings {
	bool allow_plaintext_loopback;
	unsigned idle_timeout;	     /* seconds, >= 1800 */
	unsigned login_timeout;	     /* seconds before login */
	unsigned max_per_alias;	     /* sessions of one alias */
	unsigned commands_per_second; /* 0: no limit */
	uint64_t append_limit;	     /* APPENDLIMIT */
	struct imap_parser_limits limits_before_login;
	struct imap_parser_limits limits;
};

struct imap_server {
	struct net_server *net;
	struct imap_settings set;
	struct imap_user *users;
	/* Users whose last session is gone, until their store handle is
	 * closed (imap_server_mailbox_open). */
	struct imap_user *releasing;
	struct imap_session *sessions;
	int inotify_fd;
	struct event *inotify_ev;
	char *data_dir;
	char capability_tls[1024];   /* after TLS, before login */
	char capability_plain[1024]; /* before TLS */
	char capability_auth[1024];  /* after login */
};

/* The sessions of one alias: the unlocked keys, the one store handle, the
 * serial work queue that keeps one writer per mailbox file. */
struct imap_user {
	struct imap_user *prev, *next;
	struct imap_server *server;
	struct account_session_keys keys;
	struct net_workq *queue;
	/* Worker side (only touched by jobs on `queue`). */
	struct store_mailbox *mbox;
	enum store_error open_error;
	bool opened; /* the open job ran */
	uint64_t quota;
	/* Loop side. */
	unsigned refcount;
	struct imap_session *sessions; /* linked through user_next */
	int watch;
	bool drain_queued, drain_again;
};

enum imap_state {
	IMAP_STATE_NOT_AUTH,
	IMAP_STATE_AUTH,
	IMAP_STATE_SELECTED,
	IMAP_STATE_LOGOUT,
};

enum imap_input_mode {
	IMAP_INPUT_COMMAND,
	IMAP_INPUT_IDLE,      /* waiting for DONE */
	IMAP_INPUT_AUTH_CONT, /* waiting for the SASL response line */
};

struct imap_session {
	struct imap_session *prev, *next;
	struct imap_session *user_next;
	struct imap_server *server;
	struct net_conn *conn; /* NULL once the connection is gone */
	struct imap_parser *parser;
	enum imap_state state;
	enum imap_input_mode input_mode;
	struct imap_user *user;
	bool busy;	/* a job of this session is queued or running */
	bool closed;	/* the connection is gone: free after the job */
	bool condstore; /* ENABLE CONDSTORE or a CONDSTORE command */
	bool idle_sync_pending;
	bool rate_pending; /* a parsed command waits out the rate limit */
	char *pending_tag; /* IDLE or AUTHENTICATE */
	/* Rate limiting. */
	time_t rate_second;
	unsigned rate_count;
	struct event *rate_ev;

	/* The selected folder (worker side while busy, loop side else). */
	int64_t folder_id;
	char *folder_name;
	bool readonly;
	uint32_t uidvalidity;
	uint32_t *uids; /* seq -> uid */
	size_t uid_count, uid_cap;
	uint32_t *recent; /* sorted UIDs that are \Recent here */
	size_t recent_count;
	uint64_t modseq; /* changes up to here have been reported */
};

struct imap_cmd;
typedef void imap_cmd_func(struct imap_cmd *cmd);

enum imap_cmd_flags {
	IMAP_CMD_NOT_AUTH = 1 << 0, /* only before login */
	IMAP_CMD_AUTH = 1 << 1,	    /* after login */
	IMAP_CMD_SELECTED = 1 << 2, /* needs a selected folder */
	IMAP_CMD_ANY = 1 << 3,	    /* any state */
	IMAP_CMD_LOOP = 1 << 4,	    /* runs on the loop, no store access */
	IMAP_CMD_UID = 1 << 5,	    /* has a UID form */
	/* May not send EXPUNGE responses (RFC 3501 7.4.1): FETCH, STORE,
	 * SEARCH without UID. */
	IMAP_CMD_NO_EXPUNGE = 1 << 6,
	IMAP_CMD_CHANGES = 1 << 7, /* may change the mailbox: notify */
};

struct imap_command {
	const char *name;
	imap_cmd_func *func;
	int flags;
};

struct imap_cmd {
	struct imap_session *session;
	const struct imap_command *def;
	char *tag;
	bool uid;
	const struct imap_arg *args; /* after the command name (and UID) */
	unsigned argc;
	struct sp_buf out;    /* untagged responses */
	struct sp_buf tagged; /* the tagged line */
	bool allow_expunge;
	bool changed; /* notify the alias's other sessions */
	bool no_sync;
	/* For handlers that continue on the loop (LOGIN). */
	void *ctx;
};

/* commands.c */
const struct imap_command *imap_command_find(const char *name);
void imap_cmd_ok(struct imap_cmd *cmd, const char *fmt, ...) SP_PRINTF(2, 3);
void imap_cmd_no(struct imap_cmd *cmd, const char *fmt, ...) SP_PRINTF(2, 3);
void imap_cmd_bad(struct imap_cmd *cmd, const char *fmt, ...) SP_PRINTF(2, 3);
/* The one mapping of store errors to replies. */
void imap_cmd_store_error(struct imap_cmd *cmd, enum store_error error,
			  const char *error_text);
/* A mailbox argument: astring in modified UTF-7 -> store name in UTF-8
 * (INBOX case-folded; the caller frees). NULL after replying BAD (not an
 * astring) or NO (not modified UTF-7). */
char *imap_cmd_mailbox(struct imap_cmd *cmd, const struct imap_arg *arg);
void imap_append_astring(struct sp_buf *buf, const char *s);
/* A store name (UTF-8) as the client sees it: modified UTF-7, quoted. */
void imap_append_mailbox(struct sp_buf *buf, const char *name);
/* Converts a sequence or UID set to UID ranges of the selected folder.
 * Returns 0, or -1 for a bad set (BAD). *set_r is empty when nothing
 * matches; free its ranges. */
int imap_cmd_uidset(struct imap_cmd *cmd, const char *str, bool uid,
		    struct store_uidset *set_r);
/* The same; with `search` true a sequence set is a SEARCH key, where a
 * number past EXISTS (or any set on an empty mailbox) matches nothing
 * instead of being BAD. */
int imap_cmd_uidset_mode(struct imap_cmd *cmd, const char *str, bool uid,
			 bool search, struct store_uidset *set_r);
/* seq of a UID in the selected folder, 0 when it is not there. */
uint32_t imap_session_seq(const struct imap_session *s, uint32_t uid);
bool imap_session_is_recent(const struct imap_session *s, uint32_t uid);
void imap_append_flags(struct sp_buf *buf, uint32_t flags,
		       const char *keywords, bool recent);
/* Parses a flag list (or one flag); 0 or -1 (bad flag). keywords_r is
 * the space-separated keywords (caller frees). */
int imap_parse_flags(const struct imap_arg *args, unsigned count,
		     uint32_t *flags_r, char **keywords_r);
/* "dd-Mon-yyyy" -> time (UTC midnight); -1 if bad. */
int imap_parse_date(const char *s, time_t *t_r);
int imap_parse_datetime(const char *s, time_t *t_r);
void imap_format_datetime(time_t t, char out[32]);

imap_cmd_func imap_cmd_capability, imap_cmd_noop, imap_cmd_logout,
	imap_cmd_starttls, imap_cmd_id, imap_cmd_enable, imap_cmd_namespace,
	imap_cmd_login, imap_cmd_authenticate, imap_cmd_select,
	imap_cmd_examine, imap_cmd_create, imap_cmd_delete, imap_cmd_rename,
	imap_cmd_subscribe, imap_cmd_unsubscribe, imap_cmd_list,
	imap_cmd_lsub, imap_cmd_status, imap_cmd_append, imap_cmd_check,
	imap_cmd_close, imap_cmd_unselect, imap_cmd_expunge, imap_cmd_search,
	imap_cmd_fetch, imap_cmd_store, imap_cmd_copy, imap_cmd_move,
	imap_cmd_idle, imap_cmd_getquota, imap_cmd_getquotaroot,
	imap_cmd_setquota;

/* session.c */
void imap_session_accept(struct net_conn *conn, void *ctx);
/* Submits the command's job on the alias's queue. */
void imap_session_run_job(struct imap_cmd *cmd);
/* Finishes a command that ran on the loop: writes, frees, resumes. */
void imap_session_cmd_done(struct imap_cmd *cmd);
/* Emits EXISTS/EXPUNGE/FETCH FLAGS for changes since the last sync
 * (worker side). */
void imap_session_sync(struct imap_session *s, struct store_mailbox *mbox,
		       struct sp_buf *out, bool allow_expunge);
void imap_session_unselect(struct imap_session *s);
/* Before a command changes flags itself: true when nothing happened since
 * the last sync; pass it to imap_session_own_changes() afterwards so the
 * command's own changes are not reported twice. */
bool imap_session_in_sync(struct imap_session *s, struct store_mailbox *mbox);
void imap_session_own_changes(struct imap_session *s,
			      struct store_mailbox *mbox, bool was_in_sync);
const char *imap_session_capability(const struct imap_session *s);
bool imap_session_login_allowed(const struct imap_session *s);

/* user.c */
/* Attaches a session to the alias of `keys` (taking them over or wiping
 * them when the alias already has a user). */
struct imap_user *imap_user_attach(struct imap_server *server,
				   struct imap_session *session,
				   struct account_session_keys *keys);
void imap_user_detach(struct imap_session *session);
/* Tells the alias's other sessions that the mailbox changed. */
void imap_user_notify(struct imap_user *user, struct imap_session *except);
/* Runs a sync job for a session in IDLE (reports changes at once). */
void imap_user_idle_sync(struct imap_session *s);
void imap_user_watch_spool(struct imap_user *user);
void imap_user_drain(struct imap_user *user);
void imap_user_inotify(struct imap_server *server);
/* Worker side: opens the mailbox once, drains the spool. */
void imap_user_open(struct imap_user *user);

/* cmd-login.c */
void imap_login_sasl_response(struct imap_session *s, const char *line);
struct account_db *imap_account_db(void);

#endif
