/*
 * The state shared by the two servers built on one SMTP session machine:
 * the MX (server.c) and message submission (submit.c). Private to
 * src/smtp.
 */
#ifndef SEALPOST_SMTP_SESSION_H
#define SEALPOST_SMTP_SESSION_H

#include "smtp-private.h"

#include "account/account.h"
#include "crypto/crypto.h"
#include "route/route.h"

#include <pthread.h>
#include <stdint.h>

struct event;
struct net_conn;
struct net_ratelimit;
struct net_server;
struct queue;
struct mailauth_dns;
struct mailauth_srs;

#define SMTP_MAX_HEADER_BYTES (1024 * 1024)

enum smtp_auth_step {
	SMTP_AUTH_NONE,
	SMTP_AUTH_PLAIN,       /* "334 " sent, waiting for the response */
	SMTP_AUTH_LOGIN_USER,  /* waiting for the user name */
	SMTP_AUTH_LOGIN_PASS,  /* waiting for the password */
};

/* The alias a submission session authenticated as. */
struct smtp_user {
	char *address; /* written form, lower-case */
	char *domain;
	char mailbox_id[ACCOUNT_MAILBOX_ID_BUF]; /* "" without a mailbox */
	unsigned char public_key[CRYPTO_PUBLIC_KEY_BYTES];
	bool save_sent;
	/* Its domain lets it send as any alias of `owner`. */
	bool any_alias;
	char *owner;
	unsigned refs; /* the session and jobs in flight */
};

/* A submission's envelope. */
struct smtp_envelope {
	char *mail_from;
	/* Another alias than the user's: its owner is checked after DATA,
	 * on a thread that may read the control plane. */
	bool sender_unchecked;
	char *envid;
	enum smtp_ret ret;
	bool eightbit, smtputf8;
	struct smtp_rcpt {
		char *address;
		char *orcpt;
		unsigned notify;
	} *rcpts;
	size_t rcpt_count;
};

enum smtp_state {
	SMTP_STATE_INIT,       /* before EHLO/HELO */
	SMTP_STATE_HELO,       /* greeted, no transaction */
	SMTP_STATE_MAIL,       /* MAIL accepted, no recipient yet */
	SMTP_STATE_RCPT,       /* at least one recipient */
	SMTP_STATE_BODY,       /* reading DATA */
	SMTP_STATE_DELIVERING, /* waiting for the targets' outcome */
	SMTP_STATE_QUIT,
};


struct smtp_job;
struct smtp_login;

/* Deliveries wait on the network (remote MX, webhooks) far more than they
 * compute, so they get their own pool of threads, sized by
 * smtp_delivery_threads, instead of occupying net's CPU-sized pool that
 * logins (Argon2id) and mailbox work need. Finished jobs go back to the
 * loop through our own eventfd, so that a delivery still running while
 * `serve` shuts down never touches the net_server, which is gone first. */
struct smtp_pool {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_t *threads;
	unsigned count;
	bool stopping;
	struct smtp_job *head, *tail;	    /* waiting */
	struct smtp_job *done_head, *done_tail; /* finished, for the loop */
	int done_fd;
	struct event *done_ev;
};

struct smtp_server {
	struct net_server *net;
	struct smtp_pool pool;
	struct route *route;
	struct mailauth_dns *dns;
	struct mailauth_srs *srs;
	struct net_ratelimit *msg_limit;
	char *hostname;
	char *relayhost;
	size_t max_size;
	unsigned max_rcpts, max_line, timeout, outbound_timeout;
	bool log_addresses;
	/* Submission (submit.c): a second server on the submission ports. */
	bool submission;
	struct queue *queue;
	char *data_dir;
	struct net_ratelimit *sent_per_alias, *sent_per_domain; /* a day */
};

struct smtp_session {
	struct smtp_server *server;
	struct net_conn *conn;
	enum smtp_state state;
	char *helo;
	bool esmtp;
	bool skipping_line; /* discarding the rest of an overlong line */
	unsigned rcpt_refused;
	/* The transaction. */
	struct route_tx *tx;
	uint64_t declared_size;
	bool tx_utf8, tx_8bit;
	struct smtp_data_reader data;
	bool data_active;
	struct smtp_job *job; /* delivery in flight */
	/* Submission: the SASL exchange, the authenticated alias, and the
	 * envelope (instead of tx). */
	enum smtp_auth_step auth_step;
	char *auth_username; /* AUTH LOGIN's first answer (secure memory) */
	struct smtp_login *login; /* Argon2id in flight */
	struct smtp_user *user;	  /* NULL until AUTH succeeded */
	struct smtp_envelope *env;
};

/* A delivery on a worker thread. It owns the transaction and the message,
 * so the session may go away meanwhile (job->session is then NULL). */
struct smtp_job {
	struct smtp_job *next; /* in the pool's queue */
	struct smtp_session *session;
	struct smtp_server *server;
	struct route_tx *tx;
	struct sp_buf msg;
	char id[17];
	struct route_result result;
	/* Submission: the envelope and sender instead of tx, and the
	 * answer worked out on the worker. */
	struct smtp_envelope *env;
	struct smtp_user *user;
	int reply_code;
	char reply_text[256];
};


/* server.c */
void smtp_reply(struct smtp_session *s, const char *fmt, ...) SP_PRINTF(2, 3);
void smtp_enter_state(struct smtp_session *s, enum smtp_state state);
/* Forgets the transaction (MX tx or submission envelope). */
void tx_reset(struct smtp_session *s);
/* Hands a job to the delivery threads; input stays paused meanwhile. */
void smtp_job_submit(struct smtp_session *s, struct smtp_job *job);

/* submit.c */
void smtp_envelope_free(struct smtp_envelope **env);
void smtp_user_unref(struct smtp_user **user);
/* Commands whose meaning differs on the submission ports. Each returns
 * after replying. */
void smtp_submit_auth(struct smtp_session *s, struct smtp_command *c);
/* A line of an unfinished SASL exchange. */
void smtp_submit_auth_line(struct smtp_session *s, const char *line);
void smtp_submit_mail(struct smtp_session *s, struct smtp_command *c);
void smtp_submit_rcpt(struct smtp_session *s, struct smtp_command *c);
/* After DATA: the message in s->data goes to a job. */
void smtp_submit_data_done(struct smtp_session *s, const char *id);
/* On a delivery thread: checks, fixes up, queues, files the Sent copy;
 * sets job->reply_code/reply_text. */
void smtp_submit_work(struct smtp_job *job);
/* The session ends: drop the login in flight and the user. */
void smtp_submit_session_close(struct smtp_session *s);

#endif
