/*
 * pop3: the POP3 server (RFC 1939 with CAPA and the extensions of RFC 2449:
 * TOP, UIDL, USER, SASL PLAIN with an initial response (RFC 5034), STLS,
 * RESP-CODES, AUTH-RESP-CODE, PIPELINING) over the INBOX of the encrypted
 * store.
 *
 * `sealpost serve` creates one struct pop3_server on its net_server; it
 * opens the listeners pop3_listen (STLS) and pop3s_listen (implicit TLS)
 * and serves until destroyed. Each connection is a session driven by the
 * I/O-free line parser (pop3-parser.h) and a static command table. Login
 * (Argon2id) runs on the net worker pool; after it the session holds the
 * alias's unlocked keys, drains the spool into INBOX, takes a snapshot of
 * INBOX (message numbers, sizes, UIDs) and does all further store work on a
 * serial work queue of its own. One POP3 session per alias at a time (the
 * maildrop lock of RFC 1939: a second one gets -ERR [IN-USE]); IMAP
 * sessions may run alongside. DELE only marks; the messages are removed at
 * QUIT, durably, before the +OK. A dropped connection removes nothing.
 */
#ifndef SEALPOST_POP3_H
#define SEALPOST_POP3_H

#include <stdbool.h>

struct net_server;
struct pop3_server;

/* Reads the settings, opens the listeners (an empty *_listen setting is
 * off). Returns 0 with *server_r (the caller destroys it, before or after
 * the net server's connections are closed), or -1 with error_r. */
int pop3_server_create(struct net_server *net, struct pop3_server **server_r,
		       const char **error_r);
/* Closes every session's connection; the server itself is freed at once
 * when no session is left, else with the last one (when the net server
 * reaps the connections). NULLs, accepts NULL. */
void pop3_server_destroy(struct pop3_server **server);

/* For a restore or a password change, which replace the mailbox file (the
 * serve control channel): POP3 has no unsolicited responses, so every session of the
 * mailbox gets "-ERR [SYS/TEMP] ..." and is closed once it is written
 * (force: at once). Nothing marked with DELE is removed. Returns how many
 * sessions were told (one already closing is not counted again). */
unsigned pop3_server_close_mailbox(struct pop3_server *server,
				   const char *mailbox_id, bool force);
/* True while a session of the mailbox or its store handle is still open
 * (the handle closes, and the keys are wiped, on the session's queue). */
bool pop3_server_mailbox_open(const struct pop3_server *server,
			      const char *mailbox_id);

#endif
