/*
 * smtp: the SMTP protocol, both ways.
 *
 * Inbound (the MX): smtp_server_start() opens the smtp_listen listener on a
 * net_server and runs each connection as a state machine (server.c) whose
 * commands are parsed by the I/O-free smtp_command_parse() and whose DATA
 * is read by the incremental smtp_data_reader. Recipients are checked and
 * messages delivered through the route module; the sender gets one answer
 * per message once every target's outcome is known.
 *
 * Outbound: smtp_client_send() relays one message to one recipient (MX
 * look-up with A/AAAA fallback and null MX, or the outbound_relayhost smart
 * host; opportunistic STARTTLS). It blocks, so it runs on a worker thread:
 * delivery after DATA already happens there (spool fsync, webhooks), the
 * code stays linear, and the outbound queue can call it the same way.
 *
 * smtp_reply_classify() turns any remote answer into defer/reject and a
 * category; the forwarder and the outbound queue both use it.
 *
 * Line endings in DATA (SMTP smuggling): only CR LF "." CR LF on the wire
 * ends a message. A bare LF or a bare CR inside DATA is normalised to CR LF
 * as content, so a "." line reached through one never ends DATA and no
 * second message can be injected: whatever follows stays part of the one
 * message (which we then forward dot-stuffed). Command lines must end in
 * CR LF; a command line ending in a bare LF is refused with 500 5.5.2.
 */
#ifndef SEALPOST_SMTP_H
#define SEALPOST_SMTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

/* ---- commands (parser.c) ------------------------------------------------- */

enum smtp_verb {
	SMTP_VERB_UNKNOWN,
	SMTP_VERB_EHLO,
	SMTP_VERB_HELO,
	SMTP_VERB_MAIL,
	SMTP_VERB_RCPT,
	SMTP_VERB_DATA,
	SMTP_VERB_RSET,
	SMTP_VERB_NOOP,
	SMTP_VERB_QUIT,
	SMTP_VERB_VRFY,
	SMTP_VERB_HELP,
	SMTP_VERB_STARTTLS,
	SMTP_VERB_BDAT,
	SMTP_VERB_AUTH,
	SMTP_VERB_EXPN,
};

enum smtp_body_type {
	SMTP_BODY_UNSPEC,
	SMTP_BODY_7BIT,
	SMTP_BODY_8BITMIME,
};

enum smtp_ret {
	SMTP_RET_UNSPEC,
	SMTP_RET_FULL,
	SMTP_RET_HDRS,
};

enum smtp_notify {
	SMTP_NOTIFY_NEVER = 1 << 0,
	SMTP_NOTIFY_SUCCESS = 1 << 1,
	SMTP_NOTIFY_FAILURE = 1 << 2,
	SMTP_NOTIFY_DELAY = 1 << 3,
};

struct smtp_command {
	enum smtp_verb verb;
	/* EHLO/HELO domain, VRFY/HELP argument: the rest of the line. */
	char *arg;
	/* MAIL/RCPT: the address without angle brackets or source route;
	 * "" for the null sender. */
	char *address;
	/* MAIL parameters. */
	uint64_t size; /* SIZE=, 0 when absent */
	enum smtp_body_type body;
	bool smtputf8;
	/* The address holds 8-bit (UTF-8) bytes. */
	bool address_utf8;
	/* DSN parameters (RFC 3461), only accepted where DSN is offered:
	 * MAIL RET= and ENVID=, RCPT NOTIFY= and ORCPT=. ENVID and the
	 * ORCPT address come xtext-decoded; ORCPT keeps its "type;" prefix.
	 * dsn says that any of them was given. */
	bool dsn;
	enum smtp_ret ret;
	char *envid;
	unsigned notify; /* enum smtp_notify bits; 0: not given */
	char *orcpt;
};

enum smtp_parse_result {
	SMTP_PARSE_OK,
	SMTP_PARSE_UNKNOWN,	 /* 500 5.5.1 unknown command */
	SMTP_PARSE_SYNTAX,	 /* 501 5.5.4 / 501 5.1.7 bad arguments */
	SMTP_PARSE_BAD_PARAM,	 /* 555 5.5.4 unsupported parameter */
	SMTP_PARSE_BAD_ADDRESS,	 /* 553 5.1.3 bad address syntax */
	SMTP_PARSE_NON_ASCII,	 /* 553 5.6.7 UTF-8 sender w/o SMTPUTF8 */
};

/* Parses one command line (without its CR LF; `len` bytes, may hold NULs).
 * On SMTP_PARSE_OK *cmd_r is filled (free with smtp_command_clear);
 * otherwise *cmd_r holds at most the verb and nothing to free. An address
 * longer than 256 octets is SMTP_PARSE_BAD_ADDRESS. */
enum smtp_parse_result smtp_command_parse(const char *line, size_t len,
					  struct smtp_command *cmd_r);
void smtp_command_clear(struct smtp_command *cmd);

/* Splits an address into local part and domain at its last '@'. Returns 0,
 * or -1 when there is no '@' or either side is empty. */
int smtp_address_split(const char *address, char **local_r, char **domain_r);

/* ---- DATA (data.c) ------------------------------------------------------- */

enum smtp_data_error {
	SMTP_DATA_ERR_NONE,
	SMTP_DATA_ERR_TOO_BIG,	  /* past max_size: 552 5.3.4 */
	SMTP_DATA_ERR_HEADER_BIG, /* header block past max_header: 552 5.3.4 */
};

/* Reads the body of DATA incrementally. The content collected is the
 * message as the sender meant it: dot-unstuffed, every line ending CR LF
 * (bare CR and bare LF normalised, see the top of this file). Past a limit
 * the reader keeps looking for the end but stops collecting. */
struct smtp_data_reader {
	int state;
	bool real_break; /* the current line began after a CR LF on the wire */
	bool header_done;
	size_t line_len; /* bytes collected on the current line */
	size_t max_size, max_header;
	size_t total; /* content bytes, counted even past a limit */
	enum smtp_data_error error;
	struct sp_buf content;
};

/* max_size/max_header 0: no limit. */
void smtp_data_reader_init(struct smtp_data_reader *reader, size_t max_size,
			   size_t max_header);
/* Wipes the collected content and frees it. */
void smtp_data_reader_deinit(struct smtp_data_reader *reader);
/* Consumes bytes from `in`. Returns true when the end of DATA was found;
 * *consumed_r says how many bytes of `in` belonged to DATA (the rest are
 * the next commands). Returns false when all of `in` was consumed and more
 * is needed. */
bool smtp_data_reader_feed(struct smtp_data_reader *reader, const char *in,
			   size_t len, size_t *consumed_r);

/* Appends `len` bytes of a message to `out` the way DATA sends them: every
 * line ending as CR LF (bare LF and bare CR become CR LF), lines starting
 * with "." get another, and a final CR LF when the message lacks one. The
 * terminating "." line is not added. */
void smtp_data_encode(const char *msg, size_t len, struct sp_buf *out);

/* ---- answer classification (reply.c) ------------------------------------- */

enum smtp_reply_action {
	SMTP_REPLY_OK,	   /* 2xx */
	SMTP_REPLY_DEFER,  /* try again later */
	SMTP_REPLY_REJECT, /* permanent */
};

enum smtp_reply_category {
	SMTP_CAT_NONE, /* accepted */
	SMTP_CAT_RECIPIENT,
	SMTP_CAT_MAILBOX_FULL,
	SMTP_CAT_BLOCKLIST,
	SMTP_CAT_SPAM,
	SMTP_CAT_VIRUS,
	SMTP_CAT_POLICY,
	SMTP_CAT_DMARC, /* sender authentication: SPF, DKIM, DMARC */
	SMTP_CAT_GREYLIST,
	SMTP_CAT_NETWORK,
	SMTP_CAT_TLS,
	SMTP_CAT_SIZE,
	SMTP_CAT_OTHER,
};

struct smtp_reply_class {
	enum smtp_reply_action action;
	enum smtp_reply_category category;
};

/* Classifies a remote answer: `code` the three-digit reply code (0 for a
 * failure of our own before any answer: connection, DNS, timeout, which is
 * deferred as network), `enhanced` the RFC 3463 code ("5.1.1") or NULL,
 * `text` the reply text (all lines joined) or NULL. The action follows the
 * code's first digit; the category comes from the text where it names
 * something specific (a block list, a virus, ...), else from the enhanced
 * code, else "other". */
struct smtp_reply_class smtp_reply_classify(int code, const char *enhanced,
					    const char *text);
/* "recipient", "mailbox-full", ...: static strings. */
const char *smtp_reply_category_name(enum smtp_reply_category category);

/* ---- outbound client (client.c) ------------------------------------------ */

struct mailauth_dns;

struct smtp_client_options {
	/* "host:port" of a smart host; NULL or "": MX look-up. */
	const char *relayhost;
	/* Name given in EHLO. */
	const char *helo;
	/* Resolver for MX/A/AAAA (not needed with a relayhost). */
	struct mailauth_dns *dns;
	/* Per step (connect, each reply); 0: 300 s as RFC 5321 suggests
	 * for DATA, 5 minutes. */
	unsigned timeout_seconds;
	/* Port for MX hosts; 0: 25. */
	unsigned port;
};

/* The outcome of one delivery attempt. */
struct smtp_client_result {
	int code;	   /* final relevant reply code; 0: none (network) */
	char enhanced[16]; /* "5.1.1" or "" */
	char text[512];	   /* reply text, lines joined with a space */
	struct smtp_reply_class cls;
	bool tls;	   /* the message went over TLS */
	char remote[256];  /* the server that answered ("" when none) */
};

/* Delivers `len` bytes of `msg` (CR LF lines, not dot-stuffed) from
 * envelope sender `mail_from` ("" for <>) to `rcpt`. Blocks: call from a
 * worker thread. Always fills *result_r; returns 0 when the message was
 * accepted (250), -1 otherwise (result says defer or reject and why). With
 * `eightbit`/`smtputf8` the matching MAIL parameters are sent when the
 * server offers them; a server that does not offer SMTPUTF8 gets a
 * permanent failure for a UTF-8 envelope. Thread-safe. */
int smtp_client_send(const struct smtp_client_options *options,
		     const char *mail_from, const char *rcpt, const void *msg,
		     size_t len, bool eightbit, bool smtputf8,
		     struct smtp_client_result *result_r);

/* ---- the outbound queue's delivery (outbound.c) ------------------------ */

struct queue_delivery;
struct queue_result;
struct smtp_outbound;

/* The client settings of conf (outbound_relayhost, hostname,
 * outbound_timeout_seconds, dns_resolver) for the queue's deliveries. */
struct smtp_outbound *smtp_outbound_create(void);
void smtp_outbound_destroy(struct smtp_outbound **out);
/* The name this host gives in EHLO (hostname, else the system's). */
const char *smtp_outbound_hostname(const struct smtp_outbound *out);
/* A queue_deliver_func (queue.h); ctx is a struct smtp_outbound. */
void smtp_outbound_deliver(void *ctx, const struct queue_delivery *d,
			   struct queue_result *results);

/* One envelope with several recipients on one destination domain (the
 * first recipient's decides the route, as for smtp_client_send): one
 * connection, one MAIL, one RCPT per recipient, one DATA. Fills
 * results[i] for rcpts[i]: a failure before RCPT (connection, greeting,
 * MAIL) is every recipient's; a refused RCPT is that recipient's own; the
 * answer to DATA is every accepted recipient's. Returns how many
 * recipients the server accepted the message for. Blocks; thread-safe. */
int smtp_client_send_batch(const struct smtp_client_options *options,
			   const char *mail_from, const char *const *rcpts,
			   size_t rcpt_count, const void *msg, size_t len,
			   bool eightbit, bool smtputf8,
			   struct smtp_client_result *results);

/* ---- the MX (server.c) --------------------------------------------------- */

struct net_server;
struct smtp_server;

/* Opens the smtp_listen listener on `net` (which must stay alive) with the
 * settings of conf. Returns 1 listening, 0 when smtp_listen is empty, -1
 * with error_r. The caller owns *server_r (smtp_server_destroy) on 1. */
int smtp_server_start(struct net_server *net, struct smtp_server **server_r,
		      const char **error_r);
struct queue;

/* Opens the submission listeners, submission_listen (STARTTLS, which AUTH
 * requires) and submissions_listen (implicit TLS), on `net`. Accepted
 * messages go to `queue` (which must stay alive). Returns 1 listening, 0
 * when both are empty, -1 with error_r; the caller owns *server_r on 1 and
 * frees it with smtp_server_destroy(). */
int smtp_submission_start(struct net_server *net, struct queue *queue,
			  struct smtp_server **server_r, const char **error_r);
/* Frees the MX state; the net_server closes the connections. NULLs,
 * accepts NULL. */
void smtp_server_destroy(struct smtp_server **server);

#endif
