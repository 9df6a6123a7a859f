/*
 * imap: the IMAP4rev1 server (RFC 3501 with IDLE, UIDPLUS, MOVE, NAMESPACE,
 * ID, ENABLE, LITERAL+, SASL-IR, SPECIAL-USE, CHILDREN, UNSELECT, CONDSTORE,
 * ESEARCH, QUOTA, APPENDLIMIT, STATUS=SIZE) over the encrypted store.
 *
 * `sealpost serve` creates one struct imap_server on its net_server; it
 * opens the listeners imap_listen (STARTTLS) and imaps_listen (implicit
 * TLS) and serves until destroyed. Each connection is a session driven by
 * the I/O-free parser (imap-parser.h) and a static command table; store work
 * runs on the net worker pool, serialised per mailbox. Sessions of one alias
 * share one store handle and the unlocked keys, which are wiped when the
 * last of them ends. New spool files (sealpost deliver, the MX) are noticed
 * with inotify, drained into INBOX at once and announced to IDLE clients.
 */
#ifndef SEALPOST_IMAP_H
#define SEALPOST_IMAP_H

#include <stdbool.h>

struct net_server;
struct imap_server;

/* Reads the settings, opens the listeners (an empty *_listen setting is
 * off). Returns 0 with *server_r (the caller destroys it before the net
 * server), or -1 with error_r. */
int imap_server_create(struct net_server *net, struct imap_server **server_r,
		       const char **error_r);
void imap_server_destroy(struct imap_server **server);

/* For a restore or a password change, which replace the mailbox file (the
 * serve control channel): says "* BYE" to every session of the mailbox and closes it once
 * the line is written (force: closes at once, dropping unsent output).
 * Returns how many sessions were told (one already closing is not counted
 * again). */
unsigned imap_server_close_mailbox(struct imap_server *server,
				   const char *mailbox_id, bool force);
/* True while a session of the mailbox or its store handle is still open:
 * the handle closes, and the keys are wiped, behind the work still queued
 * for the mailbox. */
bool imap_server_mailbox_open(const struct imap_server *server,
			      const char *mailbox_id);

#endif
