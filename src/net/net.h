/*
 * net: the network core every protocol server (IMAP, POP3, SMTP) stands on.
 *
 * One libevent loop runs every connection. A struct net_server owns the
 * loop's listeners, the TLS context (tls_cert/tls_key from the settings,
 * relative to the data directory), the per-IP connection counts and a pool
 * of worker threads. A protocol opens its listeners with net_listen() from a
 * "host:port" setting (an empty value means the listener is off), plain or
 * implicit TLS, and gets each accepted connection in its accept callback as
 * a struct net_conn.
 *
 * A connection is a buffered byte stream with protocol-friendly reads: whole
 * lines up to a maximum length, exactly N bytes for IMAP literals and SMTP
 * BDAT, and buffered writes whose growth the protocol watches for flow
 * control. Input is delivered through on_input whenever new bytes arrive;
 * the protocol consumes as many complete commands as are buffered and
 * returns. net_conn_starttls() upgrades a plain connection in place and
 * discards whatever the client pipelined in plaintext after the STARTTLS
 * command (CVE-2011-0411). Closing is always asynchronous: a connection is
 * freed from the loop, never inside its own callback chain, and the
 * protocol hears of it exactly once through on_close.
 *
 * Blocking work (the store, Argon2id) runs on the worker pool:
 * net_work_submit() runs a function on a worker thread, then its completion
 * on the loop thread. Jobs submitted to one struct net_workq run one at a
 * time in submission order, which gives "one writer per mailbox file".
 *
 * net_ratelimit counts events per key in a fixed window (failed logins per
 * IP and per alias); keys are hashed with a per-process random key, so no
 * address is ever kept in a table in clear.
 *
 * Everything here is called on the loop thread unless a comment says
 * otherwise.
 */
#ifndef SEALPOST_NET_H
#define SEALPOST_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

struct event_base;
struct net_server;
struct net_conn;
struct net_workq;

/* ---- server ---------------------------------------------------------- */

/* Creates the server on `base` (the caller keeps owning the base) with
 * `worker_threads` worker threads (0: the number of CPUs, at least 2).
 * Workers tell the loop about completions through an eventfd, so the base
 * need not be thread-aware. Returns 0, or -1 with error_r. The caller owns
 * *server_r. */
int net_server_create(struct event_base *base, unsigned worker_threads,
		      struct net_server **server_r, const char **error_r);
/* Closes listeners and connections (on_close fires for each), waits for the
 * workers to finish their current jobs, frees. NULLs, accepts NULL. */
void net_server_destroy(struct net_server **server);
struct event_base *net_server_base(struct net_server *server);

/* Loads the PEM certificate chain and private key (absolute paths, or
 * relative to conf_data_dir()). Required before any TLS listener or
 * STARTTLS. Returns 0, or -1 with error_r. */
int net_server_load_tls(struct net_server *server, const char *cert,
			const char *key, const char **error_r);
bool net_server_has_tls(struct net_server *server);

/* Called on the loop thread for every accepted connection. The callee sets
 * the handlers (net_conn_set_handlers) and usually writes a greeting. */
typedef void net_accept_func(struct net_conn *conn, void *ctx);

struct net_listen_settings {
	/* "host:port", "[v6]:port" or "*:port"; empty or NULL: off. */
	const char *address;
	/* Wrap every connection in TLS from the first byte. */
	bool implicit_tls;
	/* Short protocol name for logs and per-IP counting ("imap"). Per-IP
	 * limits count all listeners sharing this name together. */
	const char *protocol;
	/* Simultaneous connections from one IP for this protocol (0: no
	 * limit). Over the limit, `reject_line` (may be NULL) is written in
	 * plaintext listeners and the connection closed. */
	unsigned max_per_ip;
	const char *reject_line;
};

/* Binds and starts listening. Returns 1 when listening, 0 when the address
 * is empty (the listener is off), -1 with error_r on failure (bad address,
 * bind failure, TLS requested without a loaded certificate). */
int net_listen(struct net_server *server,
	       const struct net_listen_settings *settings,
	       net_accept_func *accept_cb, void *ctx, const char **error_r);

/* After binding: when running as root, switch to `user` (falling back to
 * "nobody" when that user does not exist): setgroups, setgid, setuid, and a
 * check that root cannot be regained. Does nothing when not root. Returns 0,
 * or -1 with error_r (the caller must then exit: never serve as root). */
int net_drop_privileges(const char *user, const char **error_r);

/* ---- connections ------------------------------------------------------ */

struct net_conn_handlers {
	/* New input is buffered (or input was resumed with bytes pending).
	 * The protocol reads what it can; bytes it leaves stay buffered. */
	void (*on_input)(struct net_conn *conn, void *ctx);
	/* The output buffer fell to or below the low mark set with
	 * net_conn_set_output_marks() after having been above the high
	 * mark: resume producing output (e.g. the rest of a big FETCH). */
	void (*on_output_drained)(struct net_conn *conn, void *ctx);
	/* The idle timer expired. NULL: the connection is simply closed. */
	void (*on_timeout)(struct net_conn *conn, void *ctx);
	/* The connection is gone (peer closed, error, timeout, or
	 * net_conn_close()); called exactly once, from the loop, after which
	 * `conn` is freed. The protocol frees its session here. */
	void (*on_close)(struct net_conn *conn, void *ctx);
};

void net_conn_set_handlers(struct net_conn *conn,
			   const struct net_conn_handlers *handlers,
			   void *ctx);

/* A short random session id for log lines ("c3f9a1b2"); lives as long as
 * the connection. */
const char *net_conn_id(const struct net_conn *conn);
/* The peer's address as text ("127.0.0.1", "::1"). */
const char *net_conn_peer_ip(const struct net_conn *conn);
bool net_conn_is_loopback(const struct net_conn *conn);
bool net_conn_is_tls(const struct net_conn *conn);
struct net_server *net_conn_server(const struct net_conn *conn);

/* Input. */
/* Bytes currently buffered. */
size_t net_conn_input_len(const struct net_conn *conn);
/* Reads one line ending in LF (a CR before it is removed as well). On 1,
 * *line_r is a NUL-terminated copy without the line ending that the caller
 * frees, and *len_r its length (the line may hold NULs). Returns 0 when no
 * complete line is buffered yet and fewer than max_len bytes are waiting,
 * -1 when the line is longer than max_len bytes: nothing is consumed then,
 * and the caller answers and closes or skips with net_conn_skip_line(). */
int net_conn_read_line(struct net_conn *conn, size_t max_len, char **line_r,
		       size_t *len_r);
/* Looks at up to `max_len` buffered bytes without consuming them, made
 * contiguous. *len_r is how many are available (may be fewer). */
const unsigned char *net_conn_peek(struct net_conn *conn, size_t max_len,
				   size_t *len_r);
/* Consumes `len` buffered bytes (at most net_conn_input_len()). */
void net_conn_consume(struct net_conn *conn, size_t len);
/* Moves up to `len` buffered bytes onto the end of `out` (a literal being
 * collected); returns how many were moved. */
size_t net_conn_read_bytes(struct net_conn *conn, size_t len,
			   struct sp_buf *out);
/* Consumes buffered bytes up to and including the next LF; returns 1 when
 * one was found, 0 when everything buffered was consumed without one (keep
 * skipping on the next input). */
int net_conn_skip_line(struct net_conn *conn);

/* Stops/starts reading from the socket (while a command waits on the store,
 * or output is backed up). Bytes already buffered stay buffered. Resuming
 * fires on_input again if bytes are pending. */
void net_conn_pause_input(struct net_conn *conn);
void net_conn_resume_input(struct net_conn *conn);

/* Output: copied into the connection's output buffer and sent as the
 * socket allows. */
void net_conn_write(struct net_conn *conn, const void *data, size_t len);
void net_conn_write_str(struct net_conn *conn, const char *s);
void net_conn_printf(struct net_conn *conn, const char *fmt, ...)
	SP_PRINTF(2, 3);
size_t net_conn_output_len(const struct net_conn *conn);
/* Flow control: when the output buffer grows above `high`, the protocol
 * should stop producing; on_output_drained fires once it is back at or
 * below `low`. Defaults: 256 KiB / 64 KiB. */
void net_conn_set_output_marks(struct net_conn *conn, size_t low,
			       size_t high);
bool net_conn_output_full(const struct net_conn *conn);

/* Idle timeout: the timer restarts whenever input arrives. 0 disables. */
void net_conn_set_idle_timeout(struct net_conn *conn, unsigned seconds);

/* Upgrades a plain connection to TLS once everything written so far has
 * been flushed (write the "OK Begin TLS" line first). Every byte of input
 * buffered now or received before the handshake starts is discarded.
 * Returns 0, or -1 with error_r (already TLS, no certificate loaded); on
 * -1 the connection is unchanged. */
int net_conn_starttls(struct net_conn *conn, const char **error_r);

/* Closes once the output buffer is flushed (after a BYE or a final error
 * line); input is ignored from now on. */
void net_conn_close_after_flush(struct net_conn *conn);
/* Closes now, dropping unsent output. Safe from any callback: the free
 * happens later on the loop, then on_close fires. */
void net_conn_close(struct net_conn *conn);
bool net_conn_is_closing(const struct net_conn *conn);

/* ---- worker pool ------------------------------------------------------ */

/* Runs on a worker thread: must not touch libevent or any connection. */
typedef void net_work_func(void *ctx);
/* Runs on the loop thread after the work function returned. */
typedef void net_done_func(void *ctx);

/* A serial lane: jobs submitted to the same queue run one at a time, in
 * order (on any worker). Create one per mailbox file. */
struct net_workq *net_workq_create(struct net_server *server);
/* Frees once the jobs already submitted have completed (their done
 * callbacks still run). NULLs, accepts NULL. */
void net_workq_destroy(struct net_workq **queue);

/* Queues `work` (NULL queue: no ordering with other jobs); `done` (may be
 * NULL) runs on the loop thread afterwards with the same ctx. Thread-safe:
 * may also be called from a worker. */
void net_work_submit(struct net_server *server, struct net_workq *queue,
		     net_work_func *work, net_done_func *done, void *ctx);

/* Runs `done(ctx)` on the loop thread soon; callable from any thread (a
 * worker telling the loop about something). */
void net_server_call_on_loop(struct net_server *server, net_done_func *done,
			     void *ctx);

/* ---- rate limiting ---------------------------------------------------- */

/* Counts events per key in fixed windows of `window_seconds`; at most
 * `max_events` per window (0: unlimited). Loop thread only. */
struct net_ratelimit *net_ratelimit_create(unsigned max_events,
					   unsigned window_seconds);
void net_ratelimit_destroy(struct net_ratelimit **limit);
/* True when the key already used up its window. */
bool net_ratelimit_exceeded(struct net_ratelimit *limit, const char *key);
/* Records one event for the key. */
void net_ratelimit_hit(struct net_ratelimit *limit, const char *key);

/* Failed logins, counted per IP and per alias across every protocol of
 * the server (settings login_failures_per_ip, login_failures_per_alias,
 * login_failure_window_seconds). A blocked login gets the same answer as
 * a wrong password. NULL ip or alias: not counted/checked. */
bool net_login_blocked(struct net_server *server, const char *ip,
		       const char *alias);
void net_login_failed(struct net_server *server, const char *ip,
		      const char *alias);

/* ---- SASL PLAIN ---------------------------------------------------- */

enum net_sasl_result {
	NET_SASL_OK,
	NET_SASL_BAD_BASE64,	  /* a protocol error: BAD / -ERR */
	NET_SASL_BAD_CREDENTIALS, /* no user or password, or a foreign authzid */
};

/* The decoded "authzid NUL authcid NUL password"; the strings point into
 * `raw`, secure memory wiped by net_sasl_plain_clear(). */
struct net_sasl_plain {
	unsigned char *raw;
	const char *authcid;
	const char *password;
	size_t password_len;
};

/* Decodes a base64 SASL PLAIN response ("=" is empty). On NET_SASL_OK the
 * caller clears *plain_r; on failure nothing is held. */
enum net_sasl_result net_sasl_plain_decode(const char *b64,
					   struct net_sasl_plain *plain_r);
void net_sasl_plain_clear(struct net_sasl_plain *plain);

#endif
