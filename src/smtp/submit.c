/*
 * Message submission (RFC 6409) on the session machine of server.c: AUTH
 * PLAIN and LOGIN against the alias passwords, the envelope and From:
 * checks that keep a user to their own address, the header fix-ups a
 * submission server owes (Message-ID, Date, no Bcc), then the outbound
 * queue, which answers only once the message is on disk, and a sealed
 * copy for the sender's Sent folder.
 *
 * The Argon2id of a login runs on net's worker pool like IMAP's; the
 * checks, the DKIM signature and the fsyncs of an accepted message run on
 * the SMTP delivery threads (smtp_submit_work), never on the loop.
 */
#include "session.h"

#include "conf/conf.h"
#include "mime/mime.h"
#include "net/net.h"
#include "queue/queue.h"
#include "store/store.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* An AUTH in flight on a worker. */
struct smtp_login {
	struct smtp_session *session; /* NULL once the session is gone */
	struct net_server *net;
	char *data_dir;
	char *address;	/* secure memory */
	char *password; /* secure memory, wiped after use */
	enum account_error result;
	struct smtp_user *user;
};

void
smtp_envelope_free(struct smtp_envelope **_env)
{
	struct smtp_envelope *env = *_env;

	if (env == NULL)
		return;
	for (size_t i = 0; i < env->rcpt_count; i++) {
		free(env->rcpts[i].address);
		free(env->rcpts[i].orcpt);
	}
	free(env->rcpts);
	free(env->mail_from);
	free(env->envid);
	free(env);
	*_env = NULL;
}

static struct smtp_user *
user_ref(struct smtp_user *user)
{
	__atomic_add_fetch(&user->refs, 1, __ATOMIC_RELAXED);
	return user;
}

void
smtp_user_unref(struct smtp_user **_user)
{
	struct smtp_user *user = *_user;

	if (user == NULL)
		return;
	*_user = NULL;
	if (__atomic_sub_fetch(&user->refs, 1, __ATOMIC_ACQ_REL) > 0)
		return;
	free(user->address);
	free(user->domain);
	free(user->owner);
	free(user);
}

/* ---- AUTH ---------------------------------------------------------------- */

static void
login_free(struct smtp_login *login)
{
	crypto_secret_free(&login->address);
	crypto_secret_free(&login->password);
	smtp_user_unref(&login->user);
	free(login->data_dir);
	free(login);
}

static void
login_work(void *ctx)
{
	struct smtp_login *login = ctx;
	struct account_session_keys keys;
	struct account_alias *alias = NULL;
	struct account_db *adb;
	struct smtp_user *user;
	const char *error, *at;

	memset(&keys, 0, sizeof(keys));
	adb = account_db_thread(login->data_dir, &error);
	if (adb == NULL) {
		log_error(NULL, "submission: cannot open the control plane: %s",
			  error);
		login->result = ACCOUNT_ERR_TEMP;
		return;
	}
	login->result = account_login(adb, login->address, login->password,
				      &keys, &error);
	crypto_secret_free(&login->password);
	if (login->result != ACCOUNT_OK) {
		if (login->result == ACCOUNT_ERR_TEMP)
			log_error(NULL, "submission: login: %s", error);
		return;
	}
	user = xcalloc(1, sizeof(*user));
	user->refs = 1;
	user->address = xstrdup(keys.address);
	str_lower(user->address);
	at = strrchr(user->address, '@');
	user->domain = xstrdup(at != NULL ? at + 1 : "");
	str_copy(user->mailbox_id, keys.mailbox_id, sizeof(user->mailbox_id));
	memcpy(user->public_key, keys.public_key, sizeof(user->public_key));
	if (account_alias_get(adb, keys.address, &alias, &error) == 1) {
		user->save_sent = alias->save_sent && alias->has_mailbox;
		if (alias->domain != NULL) {
			user->any_alias = alias->domain->submit_any_alias;
			user->owner = xstrdup(alias->domain->owner);
		}
		account_alias_free(&alias);
	}
	/* Submission needs no mailbox key: let the login cache count the
	 * session as ended (the key stays cached for a reconnect). */
	account_login_release(keys.address);
	account_session_keys_clear(&keys);
	login->user = user;
}

static void
login_done(void *ctx)
{
	struct smtp_login *login = ctx;
	struct smtp_session *s = login->session;

	if (s == NULL) {
		login_free(login);
		return;
	}
	s->login = NULL;
	switch (login->result) {
	case ACCOUNT_OK:
		s->user = login->user;
		login->user = NULL;
		smtp_reply(s, "235 2.7.0 Authentication successful");
		break;
	case ACCOUNT_ERR_TEMP:
		smtp_reply(s, "454 4.7.0 Temporary authentication failure");
		break;
	default:
		net_login_failed(login->net, net_conn_peer_ip(s->conn),
				 login->address);
		smtp_reply(s, "535 5.7.8 Authentication credentials invalid");
		break;
	}
	login_free(login);
	net_conn_resume_input(s->conn);
}

/* Takes ownership of both secure strings. */
static void
login_start(struct smtp_session *s, char *address, char *password)
{
	struct smtp_login *login;

	str_lower(address);
	if (net_login_blocked(s->server->net, net_conn_peer_ip(s->conn),
			      address)) {
		/* The same answer as a wrong password, and no Argon2id. */
		crypto_secret_free(&address);
		crypto_secret_free(&password);
		smtp_reply(s, "535 5.7.8 Authentication credentials invalid");
		return;
	}
	login = xcalloc(1, sizeof(*login));
	login->session = s;
	login->net = s->server->net;
	login->data_dir = xstrdup(s->server->data_dir);
	login->address = address;
	login->password = password;
	s->login = login;
	net_conn_pause_input(s->conn);
	net_work_submit(s->server->net, NULL, login_work, login_done, login);
}

static void
auth_plain(struct smtp_session *s, const char *b64)
{
	struct net_sasl_plain plain;

	switch (net_sasl_plain_decode(b64, &plain)) {
	case NET_SASL_OK:
		login_start(s, crypto_secret_strndup(plain.authcid,
						     strlen(plain.authcid)),
			    crypto_secret_strndup(plain.password,
						  plain.password_len));
		net_sasl_plain_clear(&plain);
		return;
	case NET_SASL_BAD_BASE64:
		smtp_reply(s, "501 5.5.2 Cannot decode the response");
		return;
	case NET_SASL_BAD_CREDENTIALS:
		smtp_reply(s, "535 5.7.8 Authentication credentials invalid");
		return;
	}
}

/* A base64 line of AUTH LOGIN into secure memory; NULL when it is not
 * base64 or holds a NUL. */
static char *
decode_login_line(const char *b64)
{
	size_t len = strlen(b64), bin_len = 0;
	unsigned char *bin = sodium_malloc(len + 1);
	char *out = NULL;

	if (bin == NULL)
		return NULL;
	if (sodium_base642bin(bin, len + 1, b64, len, NULL, &bin_len, NULL,
			      sodium_base64_VARIANT_ORIGINAL) == 0 &&
	    bin_len > 0 && memchr(bin, '\0', bin_len) == NULL)
		out = crypto_secret_strndup((const char *)bin, bin_len);
	sodium_free(bin);
	return out;
}

void
smtp_submit_auth(struct smtp_session *s, struct smtp_command *c)
{
	const char *arg = c->arg != NULL ? c->arg : "";
	const char *sp = strchr(arg, ' ');
	size_t mech_len = sp != NULL ? (size_t)(sp - arg) : strlen(arg);
	const char *ir = sp != NULL ? sp + 1 : NULL;

	if (s->state == SMTP_STATE_INIT) {
		smtp_reply(s, "503 5.5.1 Say EHLO first");
	} else if (!net_conn_is_tls(s->conn)) {
		smtp_reply(s, "530 5.7.0 Must issue a STARTTLS command first");
	} else if (s->user != NULL) {
		smtp_reply(s, "503 5.5.1 Already authenticated");
	} else if (s->state != SMTP_STATE_HELO) {
		smtp_reply(s, "503 5.5.1 AUTH not allowed during a mail "
			      "transaction");
	} else if (mech_len == 5 && strncasecmp(arg, "PLAIN", 5) == 0) {
		if (ir != NULL) {
			auth_plain(s, ir);
		} else {
			s->auth_step = SMTP_AUTH_PLAIN;
			smtp_reply(s, "334 ");
		}
	} else if (mech_len == 5 && strncasecmp(arg, "LOGIN", 5) == 0) {
		if (ir != NULL) {
			s->auth_username = decode_login_line(ir);
			if (s->auth_username == NULL) {
				smtp_reply(s, "501 5.5.2 Cannot decode the "
					      "response");
			} else {
				s->auth_step = SMTP_AUTH_LOGIN_PASS;
				smtp_reply(s, "334 UGFzc3dvcmQ6");
			}
		} else {
			s->auth_step = SMTP_AUTH_LOGIN_USER;
			smtp_reply(s, "334 VXNlcm5hbWU6");
		}
	} else {
		smtp_reply(s, "504 5.5.4 Unrecognized authentication type");
	}
	/* The initial response held the password. */
	if (c->arg != NULL)
		sodium_memzero(c->arg, strlen(c->arg));
}

void
smtp_submit_auth_line(struct smtp_session *s, const char *line)
{
	enum smtp_auth_step step = s->auth_step;
	char *password;

	s->auth_step = SMTP_AUTH_NONE;
	if (strcmp(line, "*") == 0) {
		crypto_secret_free(&s->auth_username);
		smtp_reply(s, "501 5.0.0 Authentication cancelled");
		return;
	}
	switch (step) {
	case SMTP_AUTH_PLAIN:
		auth_plain(s, line);
		return;
	case SMTP_AUTH_LOGIN_USER:
		s->auth_username = decode_login_line(line);
		if (s->auth_username == NULL) {
			smtp_reply(s, "501 5.5.2 Cannot decode the response");
			return;
		}
		s->auth_step = SMTP_AUTH_LOGIN_PASS;
		smtp_reply(s, "334 UGFzc3dvcmQ6");
		return;
	case SMTP_AUTH_LOGIN_PASS:
		password = decode_login_line(line);
		if (password == NULL) {
			crypto_secret_free(&s->auth_username);
			smtp_reply(s, "501 5.5.2 Cannot decode the response");
			return;
		}
		login_start(s, s->auth_username, password);
		s->auth_username = NULL;
		return;
	case SMTP_AUTH_NONE:
		break;
	}
}

void
smtp_submit_session_close(struct smtp_session *s)
{
	if (s->login != NULL) {
		s->login->session = NULL;
		s->login = NULL;
	}
	crypto_secret_free(&s->auth_username);
	smtp_user_unref(&s->user);
}

/* ---- the envelope -------------------------------------------------------- */

void
smtp_submit_mail(struct smtp_session *s, struct smtp_command *c)
{
	struct smtp_server *srv = s->server;
	struct smtp_envelope *env;

	if (s->user == NULL) {
		smtp_reply(s, "530 5.7.0 Authentication required");
		return;
	}
	if (strcasecmp(c->address, s->user->address) != 0 &&
	    (!s->user->any_alias || c->address[0] == '\0')) {
		smtp_reply(s, "550 5.7.1 Sender address rejected: you may "
			      "send only as %s",
			   s->user->address);
		return;
	}
	if ((srv->sent_per_alias != NULL &&
	     net_ratelimit_exceeded(srv->sent_per_alias, s->user->address)) ||
	    (srv->sent_per_domain != NULL &&
	     net_ratelimit_exceeded(srv->sent_per_domain, s->user->domain))) {
		smtp_reply(s, "451 4.7.1 Daily sending limit reached, try "
			      "again later");
		return;
	}
	env = xcalloc(1, sizeof(*env));
	env->mail_from = xstrdup(c->address);
	env->sender_unchecked = strcasecmp(c->address, s->user->address) != 0;
	env->envid = c->envid;
	c->envid = NULL;
	env->ret = c->ret;
	env->eightbit = c->body == SMTP_BODY_8BITMIME;
	env->smtputf8 = c->smtputf8;
	s->env = env;
	s->tx_utf8 = c->smtputf8;
	s->declared_size = c->size;
	smtp_reply(s, "250 2.1.0 Ok");
	smtp_enter_state(s, SMTP_STATE_MAIL);
}

void
smtp_submit_rcpt(struct smtp_session *s, struct smtp_command *c)
{
	struct smtp_envelope *env = s->env;
	struct smtp_rcpt *r;

	for (size_t i = 0; i < env->rcpt_count; i++) {
		if (strcasecmp(env->rcpts[i].address, c->address) == 0) {
			/* The same mailbox once is enough. */
			smtp_reply(s, "250 2.1.5 Ok");
			return;
		}
	}
	env->rcpts = xrealloc(env->rcpts,
			      (env->rcpt_count + 1) * sizeof(*env->rcpts));
	r = &env->rcpts[env->rcpt_count++];
	r->address = xstrdup(c->address);
	r->orcpt = c->orcpt;
	c->orcpt = NULL;
	r->notify = c->notify;
	smtp_reply(s, "250 2.1.5 Ok");
	smtp_enter_state(s, SMTP_STATE_RCPT);
}

void
smtp_submit_data_done(struct smtp_session *s, const char *id)
{
	struct smtp_server *srv = s->server;
	struct smtp_job *job = xcalloc(1, sizeof(*job));

	/* Counted when offered, so a sender cannot exceed the limit with
	 * messages refused later for their From. */
	if (srv->sent_per_alias != NULL)
		net_ratelimit_hit(srv->sent_per_alias, s->user->address);
	if (srv->sent_per_domain != NULL)
		net_ratelimit_hit(srv->sent_per_domain, s->user->domain);
	job->session = s;
	job->server = srv;
	job->env = s->env;
	s->env = NULL;
	job->user = user_ref(s->user);
	job->msg = s->data.content; /* moved, not copied */
	sp_buf_init(&s->data.content);
	smtp_data_reader_deinit(&s->data);
	s->data_active = false;
	str_copy(job->id, id, sizeof(job->id));
	smtp_job_submit(s, job);
}

/* ---- on a delivery thread ------------------------------------------------ */

static void
job_answer(struct smtp_job *job, int code, const char *text)
{
	job->reply_code = code;
	str_copy(job->reply_text, text, sizeof(job->reply_text));
}

/* The envelope sender is another alias than the one logged in, which the
 * domain allows when that alias (exact, enabled) has the same owner. */
static bool
sender_is_owners(const struct smtp_job *job)
{
	struct account_alias *alias = NULL;
	struct account_db *adb;
	const char *error;
	bool ok;

	adb = account_db_thread(job->server->data_dir, &error);
	if (adb == NULL ||
	    account_alias_get(adb, job->env->mail_from, &alias, &error) != 1)
		return false;
	ok = alias->kind == ACCOUNT_ALIAS_EXACT && alias->enabled &&
	     alias->domain != NULL && job->user->owner != NULL &&
	     strcmp(alias->domain->owner, job->user->owner) == 0;
	account_alias_free(&alias);
	return ok;
}

/* Every address of every From field is the envelope sender, which is the
 * user's own address or one the user may send as. */
static bool
from_is_sender(const struct smtp_job *job)
{
	char **addrs;
	size_t count;
	bool ok;

	if (mime_header_addresses(job->msg.data, job->msg.len, "From", &addrs,
				  &count) != 1)
		return false;
	ok = count > 0;
	for (size_t i = 0; ok && i < count; i++)
		ok = strcasecmp(addrs[i], job->env->mail_from) == 0;
	mime_addresses_free(&addrs, count);
	return ok;
}

/* Message-ID and Date when missing, Bcc never (RFC 6409 8.1-8.3). */
static void
fix_headers(const struct smtp_job *job, struct sp_buf *out)
{
	static const char *const drop[] = {"Bcc", "Resent-Bcc", NULL};
	struct sp_buf add;
	const char *msg = job->msg.data;
	size_t len = job->msg.len;

	sp_buf_init(&add);
	if (!mime_header_has(msg, len, "Message-ID")) {
		char rnd[33];

		random_hex_id(rnd, 16);
		sp_buf_printf(&add, "Message-ID: <%s@%s>\r\n", rnd,
			      job->user->domain);
	}
	if (!mime_header_has(msg, len, "Date")) {
		time_t now = clock_now();
		struct tm tm;
		char date[64];

		gmtime_r(&now, &tm);
		strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000",
			 &tm);
		sp_buf_printf(&add, "Date: %s\r\n", date);
	}
	mime_header_rewrite(msg, len, add.len > 0 ? add.data : NULL, drop,
			    out);
	sp_buf_deinit(&add);
}

static unsigned
queue_notify_bits(unsigned notify)
{
	unsigned bits = 0;

	if (notify & SMTP_NOTIFY_NEVER)
		bits |= QUEUE_NOTIFY_NEVER;
	if (notify & SMTP_NOTIFY_SUCCESS)
		bits |= QUEUE_NOTIFY_SUCCESS;
	if (notify & SMTP_NOTIFY_FAILURE)
		bits |= QUEUE_NOTIFY_FAILURE;
	if (notify & SMTP_NOTIFY_DELAY)
		bits |= QUEUE_NOTIFY_DELAY;
	return bits;
}

void
smtp_submit_work(struct smtp_job *job)
{
	struct smtp_envelope *env = job->env;
	struct smtp_user *user = job->user;
	struct queue_recipient *rcpts;
	struct queue_submission sub;
	struct sp_buf msg;
	char qid[17], text[128];
	char *signed_msg = NULL;
	size_t signed_len = 0;
	const char *error, *sender_domain;

	if (env->sender_unchecked && !sender_is_owners(job)) {
		job_answer(job, 550, "5.7.1 Sender address rejected: not an "
				     "alias you may send as");
		return;
	}
	if (!from_is_sender(job)) {
		job_answer(job, 550, "5.7.1 From: header must be your own "
				     "address");
		return;
	}
	sp_buf_init(&msg);
	fix_headers(job, &msg);
	rcpts = xcalloc(env->rcpt_count, sizeof(*rcpts));
	for (size_t i = 0; i < env->rcpt_count; i++) {
		rcpts[i].address = env->rcpts[i].address;
		rcpts[i].orcpt = env->rcpts[i].orcpt;
		rcpts[i].notify = queue_notify_bits(env->rcpts[i].notify);
	}
	memset(&sub, 0, sizeof(sub));
	sub.mail_from = env->mail_from;
	/* The sender's domain signs (an alias of the same owner may be on
	 * another of the owner's domains). */
	sender_domain = strrchr(env->mail_from, '@');
	sub.domain = sender_domain != NULL ? sender_domain + 1 : user->domain;
	sub.envid = env->envid;
	sub.ret = env->ret == SMTP_RET_FULL   ? QUEUE_RET_FULL
		  : env->ret == SMTP_RET_HDRS ? QUEUE_RET_HDRS
					      : QUEUE_RET_UNSPEC;
	sub.eightbit = env->eightbit;
	sub.smtputf8 = env->smtputf8;
	sub.rcpts = rcpts;
	sub.rcpt_count = env->rcpt_count;
	sub.msg = msg.data;
	sub.len = msg.len;
	if (queue_submit(job->server->queue, &sub, qid, &signed_msg,
			 &signed_len, &error) < 0) {
		log_error(job->id, "submission: cannot queue: %s", error);
		job_answer(job, 451, "4.3.0 Temporary failure, try again "
				     "later");
		goto out;
	}
	if (user->save_sent) {
		/* After the queue, so a failure here never costs the mail
		 * itself; the Sent copy is then missing, and the log says
		 * so. */
		if (store_spool_seal_to(job->server->data_dir, user->mailbox_id,
					user->public_key, STORE_SPOOL_SENT,
					signed_msg, signed_len, &error) < 0)
			log_warn(job->id, "submission: no Sent copy: %s",
				 error);
	}
	snprintf(text, sizeof(text), "2.0.0 Ok: queued as %s", qid);
	job_answer(job, 250, text);
out:
	if (signed_msg != NULL) {
		sodium_memzero(signed_msg, signed_len);
		free(signed_msg);
	}
	free(rcpts);
	if (msg.data != NULL)
		sodium_memzero(msg.data, msg.cap);
	sp_buf_deinit(&msg);
}
