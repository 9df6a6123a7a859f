/*
 * route: from a recipient address to the targets of its alias, and the
 * delivery of one message to all of them.
 *
 * The MX calls route_rcpt() for each RCPT TO (is this ours, and where does
 * it go? an SRS address of ours is reversed and relayed back), collecting
 * the answers in a struct route_tx, then, after DATA,
 * route_deliver() on a worker thread. route_deliver() tries every target of
 * every accepted recipient once, de-duplicated:
 *   forward  - the message, with Received and X-Original-To prepended,
 *              sealed with an ARC set (RFC 8617) by the RSA key of the
 *              recipient's domain (account_dkim_key_get) that records the
 *              SPF, DKIM, DMARC and ARC results of the inbound message
 *              (checked once per message, only when something is
 *              forwarded), and the envelope sender rewritten with SRS, is
 *              handed to the forward function the caller supplies (the
 *              SMTP client, which sits above this module), in memory only;
 *   webhook  - a signed JSON POST with libcurl (webhook.c);
 *   mailbox  - sealed into the alias's spool (store_deliver_alias), durable
 *              before it returns.
 * and returns one outcome for the sender: every target delivered -> 250;
 * any temporary failure -> 451 (nothing is kept; the sender retries);
 * otherwise any permanent failure -> 550 with the remote reason.
 *
 * So that such a retry does not deliver twice, each target that accepted a
 * message is remembered for ROUTE_ACCEPTED_TTL seconds under a keyed hash
 * (crypto_keyed_hash, per-process random key) of the message fingerprint
 * (envelope sender and the bytes as received) and the target; a remembered
 * target counts as delivered without being tried. The memory lives in this
 * process only (Redis later), bounded in size.
 *
 * Threads: route_rcpt() and route_deliver() may run on any thread; struct
 * route keeps a small pool of control-plane handles behind a mutex. Nothing
 * here logs an address unless log_addresses is set.
 */
#ifndef SEALPOST_ROUTE_H
#define SEALPOST_ROUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "core/core.h"

#define ROUTE_ACCEPTED_TTL (7 * 24 * 3600)

struct route;
struct sockaddr;
struct route_tx;

/* What a forward attempt came to (the SMTP client's answer, reduced). */
enum route_answer_action {
	ROUTE_ANSWER_OK,
	ROUTE_ANSWER_DEFER,
	ROUTE_ANSWER_REJECT,
};

struct route_answer {
	enum route_answer_action action;
	int code;	   /* remote reply code; 0 when none */
	char enhanced[16]; /* "5.1.1" or "" */
	char text[256];	   /* remote text, for the 550 to the sender */
};

/* Sends one copy. Runs on the delivering (worker) thread; must fill
 * *answer_r. */
typedef void route_forward_func(void *ctx, const char *mail_from,
				const char *rcpt, const void *msg, size_t len,
				bool eightbit, bool smtputf8,
				struct route_answer *answer_r);

struct mailauth_srs;
struct mailauth_dns;

struct route_settings {
	const char *data_dir;
	/* Rewrites the envelope sender of forwards and reverses bounces to
	 * our SRS addresses; NULL: senders pass unchanged (tests). Not
	 * owned; must outlive the router. */
	const struct mailauth_srs *srs;
	/* Resolver for the SPF, DKIM, DMARC and ARC checks of messages that
	 * are forwarded (their results go into the ARC set each forwarded
	 * copy gets); NULL: every check is temperror. Not owned; must
	 * outlive the router; called from the delivering threads. */
	struct mailauth_dns *dns;
	const char *hostname; /* for Received */
	unsigned max_forward_targets;
	bool webhook_allow_private;
	unsigned webhook_timeout_seconds;
	route_forward_func *forward;
	void *forward_ctx;
};

/* Creates the router (copies the settings). The caller owns it. */
struct route *route_create(const struct route_settings *settings);
void route_destroy(struct route **route);

/* ---- recipients ---------------------------------------------------------- */

enum route_rcpt_status {
	ROUTE_RCPT_OK,	     /* 250 2.1.5 */
	ROUTE_RCPT_UNKNOWN,  /* 550 5.1.1 no such alias in a domain of ours */
	ROUTE_RCPT_DISABLED, /* 550 5.2.1 */
	ROUTE_RCPT_RELAY,    /* 550 5.7.1 not a domain of ours */
	ROUTE_RCPT_INVALID,  /* 553 5.1.3 not local@domain */
	ROUTE_RCPT_TEMP,     /* 451 4.3.0 the control plane failed */
	/* The alias's mailbox is at or past its storage limit (see
	 * route_mailbox_usage): 452 4.2.2, or 552 5.2.2 with the setting
	 * smtp_quota_permanent. */
	ROUTE_RCPT_OVER_QUOTA,	    /* 452 4.2.2 */
	ROUTE_RCPT_OVER_QUOTA_PERM, /* 552 5.2.2 */
};

/* The envelope of one message. The caller owns it (route_tx_destroy). */
struct route_tx *route_tx_create(const char *mail_from, const char *helo,
				 const char *remote_ip, bool eightbit,
				 bool smtputf8);
void route_tx_destroy(struct route_tx **tx);
/* Recipients accepted so far. */
size_t route_tx_rcpt_count(const struct route_tx *tx);
/* Appends "from=<..> to=<..>,<..>" for the log_addresses debug setting;
 * never call it otherwise. */
void route_tx_describe(const struct route_tx *tx, struct sp_buf *out);

/* Looks `address` up and, on ROUTE_RCPT_OK, adds its targets to tx. A
 * recipient whose alias has a mailbox target is refused with
 * ROUTE_RCPT_OVER_QUOTA(_PERM) when the mailbox is already full; after DATA,
 * route_deliver() refuses the mailbox target the same way (452 4.2.2 or
 * 552 5.2.2 as the message's answer) when this message would pass the
 * limit. The router reads smtp_quota_permanent when it is created. */
enum route_rcpt_status route_rcpt(struct route *route, struct route_tx *tx,
				  const char *address);

/* ---- delivery ------------------------------------------------------------ */

enum route_outcome {
	ROUTE_DELIVERED, /* 250 */
	ROUTE_TEMPFAIL,	 /* 451 */
	ROUTE_PERMFAIL,	 /* 550 */
};

struct route_result {
	enum route_outcome outcome;
	/* The reply for the sender, without the code: "4.4.1 ..." */
	int code;
	char text[320];
	unsigned targets, delivered, remembered, deferred, rejected;
};

/* Delivers `len` bytes (CR LF lines, as received) to every target of tx.
 * Blocks (network, fsync): run it on a worker thread. */
void route_deliver(struct route *route, const struct route_tx *tx,
		   const char *msg, size_t len, struct route_result *result_r);

/* ---- pieces, public for tests -------------------------------------------- */

/* What the MX, which holds no key to open a mailbox, estimates a mailbox
 * uses, in bytes: the size on disk of its database file and -wal
 * (compressed bodies, the search index and SQLite's pages, not the sum of
 * message sizes that IMAP QUOTA reports; see docs/architecture.md), plus
 * the exact size of every message sealed in its spool (each file is the
 * message plus CRYPTO_SEAL_OVERHEAD). 0 for a mailbox that does not exist
 * yet. */
uint64_t route_mailbox_usage(const char *data_dir, const char *mailbox_id);

/* "dest@x" + tag "t" -> "dest+t@x" (caller frees); no tag: a copy. */
char *route_address_with_tag(const char *address, const char *tag);

/* Class of an IP address for the webhook check. */
bool route_address_is_private(const struct sockaddr *sa);

/* The accepted-target memory. */
struct route_memory;
struct route_memory *route_memory_create(size_t max_entries);
void route_memory_destroy(struct route_memory **memory);
/* 32-byte key of (fingerprint, target). */
void route_memory_key(const struct route_memory *memory,
		      const unsigned char fingerprint[32], const char *target,
		      unsigned char key_r[32]);
bool route_memory_has(struct route_memory *memory,
		      const unsigned char key[32]);
void route_memory_add(struct route_memory *memory,
		      const unsigned char key[32]);
size_t route_memory_count(struct route_memory *memory);

/* Webhook request signature: lower-case hex HMAC-SHA256 of
 * "<timestamp>.<body>" with the domain's 32-byte key; out holds 65 bytes. */
void route_webhook_sign(const unsigned char key[32], const char *timestamp,
			const char *body, size_t body_len, char out[65]);

#endif
