/* USER/PASS and AUTH PLAIN (RFC 5034, with an initial response): Argon2id
 * on a worker, then the maildrop lock, the mailbox opened, the spool
 * drained and the INBOX snapshot taken on the session's own lane. */
#include "pop3-private.h"

#include "backup/backup.h"
#include "conf/conf.h"
#include "crypto/crypto.h"

#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct login_ctx {
	struct pop3_cmd *cmd;
	char *address; /* sodium_malloc: user input next to a secret */
	char *password;
	struct account_session_keys keys;
	enum account_error result;
	uint64_t quota;
};

/* What the open job found. */
struct open_ctx {
	enum store_error err;
	struct store_mailbox *mbox;
	int64_t inbox_id;
	uint32_t uidvalidity;
	struct pop3_msg *msgs;
	size_t count;
};

/* The worker thread's control-plane handle (closed when the thread ends,
 * see account_db_thread). */
struct account_db *
pop3_account_db(void)
{
	struct account_db *adb;
	const char *error;

	adb = account_db_thread(conf_data_dir(), &error);
	if (adb == NULL)
		log_error(NULL, "pop3: cannot open the control plane: %s",
			  error);
	return adb;
}

static void
login_ctx_free(struct login_ctx *ctx)
{
	crypto_secret_free(&ctx->address);
	crypto_secret_free(&ctx->password);
	account_session_keys_clear(&ctx->keys);
	free(ctx);
}

/* The one answer for every kind of bad credentials (RFC 3206 [AUTH]). */
static void
auth_failed(struct pop3_cmd *cmd)
{
	pop3_cmd_err(cmd, "[AUTH] Authentication failed.");
	pop3_cmd_done(cmd);
}

static void
login_work(void *_ctx)
{
	struct login_ctx *ctx = _ctx;
	struct account_db *adb = pop3_account_db();
	const char *error;

	if (adb == NULL) {
		ctx->result = ACCOUNT_ERR_TEMP;
		return;
	}
	/* store_login: also settles a password change a crash cut short. */
	ctx->result = store_login(adb, conf_data_dir(), ctx->address,
				  ctx->password, &ctx->keys, &error);
	crypto_secret_free(&ctx->password);
	if (ctx->result == ACCOUNT_ERR_TEMP)
		log_warn(NULL, "pop3: login failed: %s", error);
	if (ctx->result == ACCOUNT_OK)
		ctx->quota = account_alias_storage_limit(adb, ctx->keys.address);
}

static void
open_work(void *_ctx)
{
	struct pop3_cmd *cmd = _ctx;
	struct pop3_session *s = cmd->session;
	struct open_ctx *o = cmd->ctx;
	struct store_folder *inbox = NULL;
	struct store_uid_size *msgs = NULL;
	size_t count = 0, drained = 0;
	const char *error;

	if (account_mailbox_held(s->keys.mailbox_id)) {
		/* A restore is replacing the file: not now. */
		o->err = STORE_ERR_TEMP;
		return;
	}
	o->err = store_mailbox_open(s->server->data_dir, s->keys.mailbox_id,
				    s->keys.mailbox_key, STORE_OPEN_CREATE,
				    &o->mbox, &error);
	if (o->err != STORE_OK) {
		log_warn(NULL, "pop3: cannot open a mailbox: %s", error);
		return;
	}
	if (s->quota > 0)
		store_mailbox_set_quota(o->mbox, s->quota);
	/* Mail that waited in the spool is part of the maildrop. A failed
	 * drain (over quota, I/O) leaves it spooled for a later session:
	 * not fatal. */
	if (store_spool_drain(o->mbox, s->keys.public_key, s->keys.secret_key,
			      &drained, &error) != STORE_OK)
		log_warn(NULL, "pop3: spool drain failed: %s", error);
	/* As in IMAP: the daily backup starts from a session that holds the
	 * key, on its own thread. */
	{
		struct account_db *adb = pop3_account_db();
		char *bucket = NULL;

		if (adb != NULL &&
		    account_alias_backup_bucket(adb, s->keys.address, &bucket,
						&error) >= 0)
			(void)backup_maybe_daily(s->server->data_dir,
						 s->keys.mailbox_id,
						 s->keys.mailbox_key, bucket);
		free(bucket);
	}
	o->err = store_folder_get(o->mbox, "INBOX", &inbox, &error);
	if (o->err == STORE_OK)
		o->err = store_fetch_sizes(o->mbox, inbox->id, &msgs, &count,
					   &error);
	if (o->err != STORE_OK) {
		log_warn(NULL, "pop3: cannot list INBOX: %s", error);
		store_folder_free(&inbox);
		store_mailbox_close(&o->mbox);
		return;
	}
	o->inbox_id = inbox->id;
	o->uidvalidity = inbox->uidvalidity;
	o->msgs = xcalloc(count + 1, sizeof(*o->msgs));
	for (size_t i = 0; i < count; i++) {
		o->msgs[i].uid = msgs[i].uid;
		o->msgs[i].size = msgs[i].size;
	}
	o->count = count;
	free(msgs);
	store_folder_free(&inbox);
}

static void
open_done(void *_ctx)
{
	struct pop3_cmd *cmd = _ctx;
	struct pop3_session *s = cmd->session;
	struct open_ctx *o = cmd->ctx;

	cmd->ctx = NULL;
	s->mbox = o->mbox;
	if (o->err == STORE_OK) {
		s->state = POP3_STATE_TRANSACTION;
		s->inbox_id = o->inbox_id;
		s->uidvalidity = o->uidvalidity;
		s->msgs = o->msgs;
		s->msg_count = o->count;
		pop3_cmd_ok(cmd, "Logged in.");
	} else {
		pop3_cmd_store_error(cmd, o->err);
		pop3_session_detach(s);
	}
	free(o);
	pop3_cmd_done(cmd);
}

static void
login_done(void *_ctx)
{
	struct login_ctx *ctx = _ctx;
	struct pop3_cmd *cmd = ctx->cmd;
	struct pop3_session *s = cmd->session;
	struct pop3_server *server = s->server;

	if (ctx->result != ACCOUNT_OK) {
		if (ctx->result == ACCOUNT_ERR_AUTH) {
			net_login_failed(server->net,
					 s->conn != NULL
						 ? net_conn_peer_ip(s->conn)
						 : NULL,
					 ctx->address);
			pop3_cmd_err(cmd, "[AUTH] Authentication failed.");
		} else {
			pop3_cmd_err(cmd, "[SYS/TEMP] Temporary failure; try "
					  "again later.");
		}
		login_ctx_free(ctx);
		pop3_cmd_done(cmd);
		return;
	}
	if (s->closed || s->state != POP3_STATE_AUTHORIZATION) {
		account_login_release(ctx->keys.address);
		login_ctx_free(ctx);
		pop3_cmd_done(cmd);
		return;
	}
	/* RFC 1939 8: exclusive access to the maildrop. */
	if (pop3_session_mailbox_in_use(server, ctx->keys.mailbox_id)) {
		account_login_release(ctx->keys.address);
		login_ctx_free(ctx);
		pop3_cmd_err(cmd, "[IN-USE] Mailbox is locked by another POP3 "
				  "session.");
		pop3_cmd_done(cmd);
		return;
	}
	pop3_session_attach(s, &ctx->keys);
	s->quota = ctx->quota;
	login_ctx_free(ctx);
	cmd->ctx = xcalloc(1, sizeof(struct open_ctx));
	pop3_session_submit(cmd, open_work, open_done);
}

static void
start_login(struct pop3_cmd *cmd, const char *address, size_t address_len,
	    const char *password, size_t password_len)
{
	struct pop3_session *s = cmd->session;
	struct pop3_server *server = s->server;
	struct login_ctx *ctx;

	ctx = xcalloc(1, sizeof(*ctx));
	ctx->cmd = cmd;
	ctx->address = crypto_secret_strndup(address, address_len);
	for (char *p = ctx->address; *p != '\0'; p++) {
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	}
	/* The same answer, whatever the reason, and no Argon2id to spend
	 * once a limit is reached. */
	if (net_login_blocked(server->net, net_conn_peer_ip(s->conn),
			      ctx->address)) {
		login_ctx_free(ctx);
		auth_failed(cmd);
		return;
	}
	ctx->password = crypto_secret_strndup(password, password_len);
	net_work_submit(server->net, NULL, login_work, login_done, ctx);
}

static bool
check_tls(struct pop3_cmd *cmd)
{
	if (pop3_session_login_allowed(cmd->session))
		return true;
	pop3_cmd_err(cmd, "[AUTH] Plaintext authentication disallowed on "
			  "non-secure connections; use STLS.");
	pop3_cmd_done(cmd);
	return false;
}

void
pop3_cmd_user(struct pop3_cmd *cmd)
{
	struct pop3_session *s = cmd->session;

	if (cmd->argc != 1) {
		pop3_cmd_err(cmd, "USER takes one argument.");
		pop3_cmd_done(cmd);
		return;
	}
	if (!check_tls(cmd))
		return;
	crypto_secret_free(&s->user);
	s->user = crypto_secret_strndup(cmd->args[0], strlen(cmd->args[0]));
	pop3_cmd_ok(cmd, "%s", "");
	pop3_cmd_done(cmd);
}

void
pop3_cmd_pass(struct pop3_cmd *cmd)
{
	struct pop3_session *s = cmd->session;
	const char *pass = pop3_parser_rest(s->parser);
	char *user;

	if (s->user == NULL) {
		pop3_cmd_err(cmd, "No username given.");
		pop3_cmd_done(cmd);
		return;
	}
	/* One PASS per USER (RFC 1939 7). */
	user = s->user;
	s->user = NULL;
	if (cmd->argc == 0) {
		crypto_secret_free(&user);
		pop3_cmd_err(cmd, "PASS takes one argument.");
		pop3_cmd_done(cmd);
		return;
	}
	if (!check_tls(cmd)) {
		crypto_secret_free(&user);
		return;
	}
	start_login(cmd, user, strlen(user), pass, strlen(pass));
	crypto_secret_free(&user);
}

/* authzid NUL authcid NUL password, base64 ("=" is empty). */
static void
sasl_plain(struct pop3_cmd *cmd, const char *b64)
{
	struct net_sasl_plain plain;

	switch (net_sasl_plain_decode(b64, &plain)) {
	case NET_SASL_BAD_BASE64:
		pop3_cmd_err(cmd, "Invalid base64 data.");
		pop3_cmd_done(cmd);
		return;
	case NET_SASL_BAD_CREDENTIALS:
		auth_failed(cmd);
		return;
	case NET_SASL_OK:
		break;
	}
	start_login(cmd, plain.authcid, strlen(plain.authcid), plain.password,
		    plain.password_len);
	net_sasl_plain_clear(&plain);
}

void
pop3_cmd_auth(struct pop3_cmd *cmd)
{
	struct pop3_session *s = cmd->session;

	if (cmd->argc == 0) {
		/* The mechanism list (RFC 1734's AUTH without argument,
		 * which clients still send). */
		pop3_cmd_ok(cmd, "%s", "");
		if (pop3_session_login_allowed(s))
			sp_buf_append_str(&cmd->out, "PLAIN\r\n");
		sp_buf_append_str(&cmd->out, ".\r\n");
		pop3_cmd_done(cmd);
		return;
	}
	if (cmd->argc > 2) {
		pop3_cmd_err(cmd, "Too many arguments.");
		pop3_cmd_done(cmd);
		return;
	}
	if (strcasecmp(cmd->args[0], "PLAIN") != 0) {
		pop3_cmd_err(cmd, "Unsupported authentication mechanism.");
		pop3_cmd_done(cmd);
		return;
	}
	if (!check_tls(cmd))
		return;
	if (cmd->argc == 2) {
		sasl_plain(cmd, cmd->args[1]);
		return;
	}
	/* The session reads the response as a raw line. */
	sp_buf_append_str(&cmd->out, "+ \r\n");
	s->sasl_pending = true;
	pop3_cmd_done(cmd);
}

void
pop3_login_sasl_response(struct pop3_cmd *cmd, const char *line)
{
	if (strcmp(line, "*") == 0) {
		pop3_cmd_err(cmd, "Authentication aborted.");
		pop3_cmd_done(cmd);
		return;
	}
	sasl_plain(cmd, line);
}
