#ifndef SEALPOST_ADMIN_PRIVATE_H
#define SEALPOST_ADMIN_PRIVATE_H

#include "account/account.h"
#include "conf/conf.h"
#include "core/core.h"

#include <stdbool.h>

enum admin_exit {
	ADMIN_EXIT_OK = 0,
	ADMIN_EXIT_USAGE = 1,
	ADMIN_EXIT_FAIL = 2,
};

struct admin_ctx {
	const char *data_dir;
	bool json;
	/* The command's row, for usage messages. */
	const struct admin_command *command;
};

/* Handlers get the arguments after the command words. */
typedef int admin_cmd_func(struct admin_ctx *ctx, int argc, char **argv);

struct admin_command {
	const char *words; /* "domain add" */
	const char *usage; /* "DOMAIN [--owner NAME]" */
	const char *help;
	admin_cmd_func *func;
};

/* Prints "sealpost: <text>" to stderr and returns ADMIN_EXIT_FAIL. */
int admin_fail(const char *fmt, ...) SP_PRINTF(1, 2);
/* Prints the usage of the current command and returns ADMIN_EXIT_USAGE. */
int admin_usage(struct admin_ctx *ctx, const char *fmt, ...) SP_PRINTF(2, 3);
/* Loads the configuration of ctx->data_dir; on failure prints and returns
 * -1. */
int admin_load_conf(struct admin_ctx *ctx);
/* Reads a secret from the environment variable `env`, else prompts on the
 * terminal without echo. The caller frees with admin_secret_free(). */
char *admin_read_secret(const char *env, const char *prompt);
void admin_secret_free(char **secret);

/* Run as root on a data directory owned by another user (a server ran
 * there): become that user, so files created stay readable to the server
 * (cmd-serve.c). 0, or -1 after printing. */
int admin_become_data_owner(struct admin_ctx *ctx);

/* Handlers, by file. */
admin_cmd_func admin_cmd_init;
admin_cmd_func admin_cmd_serve;
admin_cmd_func admin_cmd_config_markdown;
admin_cmd_func admin_cmd_config_defaults;
admin_cmd_func admin_cmd_domain_add;
admin_cmd_func admin_cmd_domain_list;
admin_cmd_func admin_cmd_domain_show;
admin_cmd_func admin_cmd_domain_remove;
admin_cmd_func admin_cmd_domain_dns;
admin_cmd_func admin_cmd_domain_rotate_dkim;
admin_cmd_func admin_cmd_domain_dkim_ed25519;
admin_cmd_func admin_cmd_domain_set;
admin_cmd_func admin_cmd_alias_add;
admin_cmd_func admin_cmd_alias_list;
admin_cmd_func admin_cmd_alias_show;
admin_cmd_func admin_cmd_alias_remove;
admin_cmd_func admin_cmd_alias_set;
admin_cmd_func admin_cmd_owner_list;
admin_cmd_func admin_cmd_owner_set;

/* Helpers of the account commands (cmd-domain.c). */
struct account_db;
struct json_t;
/* An option with a value, "--name VALUE" or "--name=VALUE", at argv[*i]:
 * 1 and *value_r (advancing *i past a separate value), 0 when argv[*i] is
 * another argument, -1 when the value is missing. */
int admin_option_value(int argc, char **argv, int *i, const char *name,
		       const char **value_r);
/* A size in bytes with an optional K, M, G or T (binary) suffix. 0 or -1. */
int admin_parse_bytes(const char *s, int64_t *bytes_r);
/* A decimal integer within [min, max]. 0 or -1. */
int admin_parse_int(const char *s, long min, long max, long *value_r);
/* Loads the configuration and opens the control plane; prints and returns
 * NULL on failure. The caller closes with account_db_close(). */
struct account_db *admin_account_open(struct admin_ctx *ctx);
/* Prints a JSON value (indented) and a newline on stdout, then releases
 * the reference. */
void admin_json_print(struct json_t *value);

/* The mailbox commands (cmd-mailbox.c, cmd-password.c, cmd-deliver.c). */
admin_cmd_func admin_cmd_alias_password;
admin_cmd_func admin_cmd_mailbox_import;
admin_cmd_func admin_cmd_mailbox_export;
admin_cmd_func admin_cmd_mailbox_delete;
admin_cmd_func admin_cmd_mailbox_stats;
admin_cmd_func admin_cmd_deliver;
/* The outbound queue (cmd-queue.c). */
admin_cmd_func admin_cmd_queue_list;
admin_cmd_func admin_cmd_queue_show;
admin_cmd_func admin_cmd_queue_retry;
admin_cmd_func admin_cmd_queue_drop;
/* Backups (cmd-backup.c). */
admin_cmd_func admin_cmd_mailbox_backup;
admin_cmd_func admin_cmd_mailbox_backups;
admin_cmd_func admin_cmd_mailbox_download;
admin_cmd_func admin_cmd_mailbox_restore;

/* An alias's mailbox opened with its password, spool drained. */
struct admin_mailbox {
	struct account_db *adb;
	struct account_alias *alias;
	struct account_session_keys keys;
	struct store_mailbox *mbox;
	bool logged_in;
};
/* Looks the alias up, reads SEALPOST_PASSWORD or prompts, logs in
 * (completing a re-key a crash interrupted), opens the mailbox and drains
 * the spool. An exit code; on failure it has printed the error. */
int admin_mailbox_open(struct admin_ctx *ctx, const char *address,
		       struct admin_mailbox *am);
void admin_mailbox_close(struct admin_mailbox *am);
/* A re-key that died between the file and the control plane: when
 * `password` is the pending one and opens the file, the control plane
 * takes the pending credentials. 1 done, 0 nothing to do, -1 error. */
int admin_login_recover(struct admin_ctx *ctx, struct account_db *adb,
			const struct account_alias *alias,
			const char *password);
void admin_pending_remove(const char *data_dir, const char *mailbox_id);
/* An account_mailbox_removed_func (context: the data directory) that
 * securely deletes the mailbox file and spool of a removed alias. */
void admin_mailbox_removed(const char *mailbox_id, void *context);

/* ---- The control channel of a running server (control.c) ----
 *
 * `serve` listens on <data>/control.sock (0600, its own user; a Unix
 * socket on its event loop) so that the CLI, a separate process, can have
 * it close the sessions of a mailbox before a restore swaps the file. */
struct event_base;
struct imap_server;
struct pop3_server;
struct admin_control;
/* Binds the socket (removing one a dead server left) and serves it on
 * `base`. imap/pop3 may be NULL. 0, or -1 with *error_r (another server
 * answers on it, path too long). */
int admin_control_start(struct event_base *base, const char *data_dir,
			struct imap_server *imap, struct pop3_server *pop3,
			struct admin_control **ctl_r, const char **error_r);
/* Ends every hold of its clients, closes and removes the socket. */
void admin_control_stop(struct admin_control **ctl);
/* Client: asks the server on `data_dir` to close every session of the
 * mailbox and keep it shut. 1: done, *closed_r sessions were closed and
 * *fd_r is the open connection (the mailbox stays shut until
 * admin_control_done, the connection's end, or a minute); 0: no server is
 * running (no socket, or nobody behind it); -1 with *error_r. */
int admin_control_close_sessions(const char *data_dir, const char *mailbox_id,
				 int *fd_r, unsigned *closed_r,
				 const char **error_r);
/* Ends the hold and closes *fd (ignores -1). */
void admin_control_done(int *fd, const char *mailbox_id);

#endif
