/* LOGIN and AUTHENTICATE PLAIN (with SASL-IR): Argon2id on a worker, then
 * the alias's mailbox opened (and its spool drained) on its own queue. */
#include "imap-private.h"

#include "conf/conf.h"
#include "crypto/crypto.h"

#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

struct login_ctx {
	struct imap_cmd *cmd;
	char *address; /* sodium_malloc: it is user input next to a secret */
	char *password;
	struct account_session_keys keys;
	enum account_error result;
	uint64_t quota;
};

/* The worker thread's control-plane handle (closed when the thread ends,
 * see account_db_thread). */
struct account_db *
imap_account_db(void)
{
	struct account_db *adb;
	const char *error;

	adb = account_db_thread(conf_data_dir(), &error);
	if (adb == NULL)
		log_error(NULL, "imap: cannot open the control plane: %s",
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

static void
login_work(void *_ctx)
{
	struct login_ctx *ctx = _ctx;
	struct account_db *adb = imap_account_db();
	const char *error;

	if (adb == NULL) {
		ctx->result = ACCOUNT_ERR_TEMP;
		return;
	}
	/* store_login: also settles a password change a crash cut short. */
	ctx->result = store_login(adb, conf_data_dir(), ctx->address,
				  ctx->password, &ctx->keys, &error);
	crypto_secret_free(&ctx->password);
	if (ctx->result == ACCOUNT_OK)
		ctx->quota = account_alias_storage_limit(adb, ctx->keys.address);
}

static void
open_work(void *_ctx)
{
	struct imap_cmd *cmd = _ctx;

	imap_user_open(cmd->session->user);
}

static void
open_done(void *_ctx)
{
	struct imap_cmd *cmd = _ctx;
	struct imap_session *s = cmd->session;

	if (s->user != NULL && s->user->mbox != NULL) {
		s->state = IMAP_STATE_AUTH;
		imap_parser_set_limits(s->parser, &s->server->set.limits);
		if (s->conn != NULL)
			net_conn_set_idle_timeout(s->conn,
						  s->server->set.idle_timeout);
		imap_cmd_ok(cmd, "[CAPABILITY %s] Logged in",
			    imap_session_capability(s));
	} else {
		imap_cmd_store_error(cmd,
				     s->user != NULL ? s->user->open_error
						     : STORE_ERR_TEMP,
				     NULL);
		imap_user_detach(s);
	}
	imap_session_cmd_done(cmd);
}

static void
login_done(void *_ctx)
{
	struct login_ctx *ctx = _ctx;
	struct imap_cmd *cmd = ctx->cmd;
	struct imap_session *s = cmd->session;
	struct imap_server *server = s->server;
	struct imap_user *user;
	unsigned sessions = 0;

	if (ctx->result != ACCOUNT_OK) {
		if (ctx->result == ACCOUNT_ERR_AUTH) {
			net_login_failed(server->net,
					 s->conn != NULL
						 ? net_conn_peer_ip(s->conn)
						 : NULL,
					 ctx->address);
			imap_cmd_no(cmd, "[AUTHENTICATIONFAILED] "
					 "Authentication failed.");
		} else {
			imap_cmd_no(cmd, "[UNAVAILABLE] Temporary failure; "
					 "try again later.");
		}
		login_ctx_free(ctx);
		imap_session_cmd_done(cmd);
		return;
	}
	if (s->closed) {
		account_login_release(ctx->keys.address);
		login_ctx_free(ctx);
		imap_session_cmd_done(cmd);
		return;
	}
	for (user = server->users; user != NULL; user = user->next) {
		if (strcmp(user->keys.mailbox_id, ctx->keys.mailbox_id) == 0) {
			sessions = user->refcount;
			break;
		}
	}
	if (server->set.max_per_alias > 0 &&
	    sessions >= server->set.max_per_alias) {
		account_login_release(ctx->keys.address);
		login_ctx_free(ctx);
		imap_cmd_no(cmd, "[LIMIT] Too many connections for this "
				 "account.");
		imap_session_cmd_done(cmd);
		return;
	}
	user = imap_user_attach(server, s, &ctx->keys);
	if (user->quota == 0)
		user->quota = ctx->quota;
	login_ctx_free(ctx);
	/* The first job on the alias's queue opens the mailbox; later
	 * sessions just wait behind it. */
	net_work_submit(server->net, user->queue, open_work, open_done, cmd);
}

static void
start_login(struct imap_cmd *cmd, const char *address, size_t address_len,
	    const char *password, size_t password_len)
{
	struct imap_session *s = cmd->session;
	struct imap_server *server = s->server;
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
		imap_cmd_no(cmd, "[AUTHENTICATIONFAILED] Authentication "
				 "failed.");
		imap_session_cmd_done(cmd);
		return;
	}
	ctx->password = crypto_secret_strndup(password, password_len);
	net_work_submit(server->net, NULL, login_work, login_done, ctx);
}

static bool
check_tls(struct imap_cmd *cmd)
{
	if (imap_session_login_allowed(cmd->session))
		return true;
	imap_cmd_no(cmd, "[PRIVACYREQUIRED] Plaintext authentication "
			 "disallowed on non-secure connections.");
	imap_session_cmd_done(cmd);
	return false;
}

void
imap_cmd_login(struct imap_cmd *cmd)
{
	const char *user, *pass;

	if (cmd->argc != 2 ||
	    (user = imap_arg_astring(&cmd->args[0])) == NULL ||
	    (pass = imap_arg_astring(&cmd->args[1])) == NULL) {
		imap_cmd_bad(cmd, "Invalid arguments.");
		imap_session_cmd_done(cmd);
		return;
	}
	if (!check_tls(cmd))
		return;
	start_login(cmd, user, strlen(user), pass, strlen(pass));
}

/* authzid NUL authcid NUL password, base64 */
static void
sasl_plain(struct imap_cmd *cmd, const char *b64)
{
	struct net_sasl_plain plain;

	switch (net_sasl_plain_decode(b64, &plain)) {
	case NET_SASL_BAD_BASE64:
		imap_cmd_bad(cmd, "Invalid base64 data.");
		imap_session_cmd_done(cmd);
		return;
	case NET_SASL_BAD_CREDENTIALS:
		imap_cmd_no(cmd, "[AUTHENTICATIONFAILED] Authentication "
				 "failed.");
		imap_session_cmd_done(cmd);
		return;
	case NET_SASL_OK:
		break;
	}
	start_login(cmd, plain.authcid, strlen(plain.authcid), plain.password,
		    plain.password_len);
	net_sasl_plain_clear(&plain);
}

void
imap_cmd_authenticate(struct imap_cmd *cmd)
{
	struct imap_session *s = cmd->session;
	const char *mech, *ir = NULL;

	if (cmd->argc < 1 || cmd->argc > 2 ||
	    (mech = imap_arg_astring(&cmd->args[0])) == NULL ||
	    (cmd->argc == 2 &&
	     (ir = imap_arg_astring(&cmd->args[1])) == NULL)) {
		imap_cmd_bad(cmd, "Invalid arguments.");
		imap_session_cmd_done(cmd);
		return;
	}
	if (strcasecmp(mech, "PLAIN") != 0) {
		imap_cmd_no(cmd, "[CANNOT] Unsupported authentication "
				 "mechanism.");
		imap_session_cmd_done(cmd);
		return;
	}
	if (!check_tls(cmd))
		return;
	if (ir != NULL) {
		sasl_plain(cmd, ir);
		return;
	}
	/* Wait for the response line; the session reads it raw. */
	sp_buf_append_str(&cmd->out, "+ \r\n");
	s->pending_tag = xstrdup(cmd->tag);
	s->input_mode = IMAP_INPUT_AUTH_CONT;
	imap_session_cmd_done(cmd);
}

void
imap_login_sasl_response(struct imap_session *s, const char *line)
{
	struct imap_cmd *cmd = xcalloc(1, sizeof(*cmd));

	cmd->session = s;
	cmd->tag = s->pending_tag;
	s->pending_tag = NULL;
	sp_buf_init(&cmd->out);
	sp_buf_init(&cmd->tagged);
	s->busy = true;
	net_conn_pause_input(s->conn);
	if (strcmp(line, "*") == 0) {
		imap_cmd_bad(cmd, "Authentication aborted.");
		imap_session_cmd_done(cmd);
		return;
	}
	sasl_plain(cmd, line);
}
