/* Connections: a bufferevent (plain socket or OpenSSL) with line and byte
 * reads, flow control, STARTTLS and deferred freeing. */
#include "net-private.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <arpa/inet.h>
#include <openssl/err.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NET_DEFAULT_LOW (64 * 1024)
#define NET_DEFAULT_HIGH (256 * 1024)

static void conn_read_cb(struct bufferevent *bev, void *arg);
static void conn_write_cb(struct bufferevent *bev, void *arg);
static void conn_event_cb(struct bufferevent *bev, short what, void *arg);

static const struct net_conn_handlers null_handlers = {0};

static void
conn_setup_bev(struct net_conn *conn)
{
	struct timeval tv = {conn->idle_timeout, 0};

	bufferevent_setcb(conn->bev, conn_read_cb, conn_write_cb,
			  conn_event_cb, conn);
	bufferevent_setwatermark(conn->bev, EV_WRITE, conn->low_mark, 0);
	bufferevent_set_timeouts(conn->bev,
				 conn->idle_timeout != 0 ? &tv : NULL, NULL);
	bufferevent_enable(conn->bev, conn->input_paused ? EV_WRITE
							 : EV_READ | EV_WRITE);
}

static struct bufferevent *
conn_tls_bev(struct net_conn *conn)
{
	SSL *ssl = SSL_new(conn->server->tls);

	if (ssl == NULL)
		return NULL;
	/* The bufferevent owns the SSL and the fd from here on. */
	return bufferevent_openssl_socket_new(conn->server->base, conn->fd,
					      ssl, BUFFEREVENT_SSL_ACCEPTING,
					      BEV_OPT_CLOSE_ON_FREE);
}

void
net_conn_accept(struct net_listener *l, int fd, const struct sockaddr *addr,
		int addrlen)
{
	struct net_server *server = l->server;
	struct net_conn *conn = xcalloc(1, sizeof(*conn));

	conn->server = server;
	conn->listener = l;
	conn->fd = fd;
	conn->handlers = &null_handlers;
	conn->low_mark = NET_DEFAULT_LOW;
	conn->high_mark = NET_DEFAULT_HIGH;
	random_hex_id(conn->id, 4);
	if (addr->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const void *)addr;

		inet_ntop(AF_INET, &sin->sin_addr, conn->ip, sizeof(conn->ip));
		conn->loopback = (ntohl(sin->sin_addr.s_addr) >> 24) == 127;
	} else if (addr->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const void *)addr;

		inet_ntop(AF_INET6, &sin6->sin6_addr, conn->ip,
			  sizeof(conn->ip));
		conn->loopback = IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr);
	} else {
		str_copy(conn->ip, "unknown", sizeof(conn->ip));
	}
	evutil_make_socket_nonblocking(fd);
	if (l->implicit_tls) {
		conn->bev = conn_tls_bev(conn);
		conn->tls = true;
	} else {
		conn->bev = bufferevent_socket_new(server->base, fd, 0);
	}
	if (conn->bev == NULL) {
		log_warn(NULL, "%s: cannot set up a connection", l->protocol);
		evutil_closesocket(fd);
		net_ip_release(server, l->protocol, conn->ip);
		free(conn);
		return;
	}
	conn_setup_bev(conn);
	conn->next = server->conns;
	if (server->conns != NULL)
		server->conns->prev = conn;
	server->conns = conn;
	l->accept_cb(conn, l->ctx);
}

void
net_conn_set_handlers(struct net_conn *conn,
		      const struct net_conn_handlers *handlers, void *ctx)
{
	conn->handlers = handlers != NULL ? handlers : &null_handlers;
	conn->ctx = ctx;
}

const char *
net_conn_id(const struct net_conn *conn)
{
	return conn->id;
}

const char *
net_conn_peer_ip(const struct net_conn *conn)
{
	return conn->ip;
}

bool
net_conn_is_loopback(const struct net_conn *conn)
{
	return conn->loopback;
}

bool
net_conn_is_tls(const struct net_conn *conn)
{
	return conn->tls;
}

struct net_server *
net_conn_server(const struct net_conn *conn)
{
	return conn->server;
}

/* ---- closing ---- */

static void
conn_free(struct net_conn *conn)
{
	struct net_server *server = conn->server;

	if (conn->handlers->on_close != NULL)
		conn->handlers->on_close(conn, conn->ctx);
	if (conn->bev != NULL) {
		bufferevent_free(conn->bev);
		if (!conn->tls)
			evutil_closesocket(conn->fd);
	}
	net_ip_release(server, conn->listener->protocol, conn->ip);
	free(conn);
}

void
net_conn_reap_all(struct net_server *server)
{
	struct net_conn *conn;

	while ((conn = server->reap) != NULL) {
		server->reap = conn->reap_next;
		conn_free(conn);
	}
}

void
net_conn_close(struct net_conn *conn)
{
	struct net_server *server = conn->server;

	if (conn->reaped)
		return;
	conn->reaped = true;
	conn->closing = true;
	bufferevent_disable(conn->bev, EV_READ | EV_WRITE);
	bufferevent_setcb(conn->bev, NULL, NULL, NULL, NULL);
	if (conn->prev != NULL)
		conn->prev->next = conn->next;
	else
		server->conns = conn->next;
	if (conn->next != NULL)
		conn->next->prev = conn->prev;
	conn->reap_next = server->reap;
	server->reap = conn;
	event_active(server->reap_ev, EV_TIMEOUT, 0);
}

bool
net_conn_is_closing(const struct net_conn *conn)
{
	return conn->closing;
}

void
net_conn_close_after_flush(struct net_conn *conn)
{
	if (conn->closing)
		return;
	conn->closing = true;
	conn->close_after_flush = true;
	bufferevent_disable(conn->bev, EV_READ);
	bufferevent_setwatermark(conn->bev, EV_WRITE, 0, 0);
	if (evbuffer_get_length(bufferevent_get_output(conn->bev)) == 0)
		net_conn_close(conn);
}

/* ---- callbacks ---- */

static void
conn_read_cb(struct bufferevent *bev, void *arg)
{
	struct net_conn *conn = arg;

	if (conn->closing) {
		evbuffer_drain(bufferevent_get_input(bev),
			       evbuffer_get_length(bufferevent_get_input(bev)));
		return;
	}
	if (conn->handlers->on_input != NULL)
		conn->handlers->on_input(conn, conn->ctx);
}

static void
conn_do_starttls(struct net_conn *conn)
{
	struct bufferevent *plain = conn->bev, *tls;

	conn->starttls_pending = false;
	/* Whatever the client sent in plaintext after STARTTLS is in the
	 * plain bufferevent's input and dies with it. */
	bufferevent_disable(plain, EV_READ | EV_WRITE);
	bufferevent_setcb(plain, NULL, NULL, NULL, NULL);
	bufferevent_free(plain);
	conn->bev = NULL;
	conn->tls = true;
	tls = conn_tls_bev(conn);
	if (tls == NULL) {
		/* The fd is still ours: close it through the plain path. */
		conn->tls = false;
		log_warn(conn->id, "STARTTLS: cannot set up TLS");
		conn->bev = bufferevent_socket_new(conn->server->base,
						   conn->fd, 0);
		net_conn_close(conn);
		return;
	}
	conn->bev = tls;
	conn_setup_bev(conn);
}

static void
conn_write_cb(struct bufferevent *bev, void *arg)
{
	struct net_conn *conn = arg;
	size_t len = evbuffer_get_length(bufferevent_get_output(bev));

	if (conn->close_after_flush) {
		if (len == 0)
			net_conn_close(conn);
		return;
	}
	if (conn->starttls_pending) {
		if (len == 0)
			conn_do_starttls(conn);
		return;
	}
	if (conn->above_high && len <= conn->low_mark) {
		conn->above_high = false;
		if (conn->handlers->on_output_drained != NULL)
			conn->handlers->on_output_drained(conn, conn->ctx);
	}
}

static void
conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct net_conn *conn = arg;

	/* The TLS handshake finished: nothing to do. */
	if ((what & BEV_EVENT_CONNECTED) != 0 &&
	    (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)) == 0)
		return;
	if ((what & BEV_EVENT_TIMEOUT) != 0 && !conn->closing &&
	    conn->handlers->on_timeout != NULL) {
		/* libevent stops reading on a timeout; the protocol decides
		 * (usually a BYE and close-after-flush). */
		if (!conn->input_paused)
			bufferevent_enable(bev, EV_READ);
		conn->handlers->on_timeout(conn, conn->ctx);
		return;
	}
	if ((what & BEV_EVENT_ERROR) != 0 && conn->tls) {
		unsigned long err;

		while ((err = bufferevent_get_openssl_error(bev)) != 0)
			log_debug(conn->id, "TLS: %s",
				  ERR_reason_error_string(err));
	}
	net_conn_close(conn);
}

/* ---- input ---- */

size_t
net_conn_input_len(const struct net_conn *conn)
{
	return evbuffer_get_length(bufferevent_get_input(conn->bev));
}

int
net_conn_read_line(struct net_conn *conn, size_t max_len, char **line_r,
		   size_t *len_r)
{
	struct evbuffer *in = bufferevent_get_input(conn->bev);
	struct evbuffer_ptr pos;
	size_t len;
	char *line;

	pos = evbuffer_search_eol(in, NULL, NULL, EVBUFFER_EOL_LF);
	if (pos.pos < 0)
		return evbuffer_get_length(in) > max_len ? -1 : 0;
	len = (size_t)pos.pos;
	if (len > max_len + 1)
		return -1;
	line = xmalloc(len + 1);
	evbuffer_remove(in, line, len);
	evbuffer_drain(in, 1);
	if (len > 0 && line[len - 1] == '\r')
		len--;
	if (len > max_len) {
		free(line);
		return -1;
	}
	line[len] = '\0';
	*line_r = line;
	*len_r = len;
	return 1;
}

const unsigned char *
net_conn_peek(struct net_conn *conn, size_t max_len, size_t *len_r)
{
	struct evbuffer *in = bufferevent_get_input(conn->bev);
	size_t len = evbuffer_get_length(in);

	if (len > max_len)
		len = max_len;
	*len_r = len;
	if (len == 0)
		return (const unsigned char *)"";
	return evbuffer_pullup(in, (ssize_t)len);
}

void
net_conn_consume(struct net_conn *conn, size_t len)
{
	evbuffer_drain(bufferevent_get_input(conn->bev), len);
}

size_t
net_conn_read_bytes(struct net_conn *conn, size_t len, struct sp_buf *out)
{
	struct evbuffer *in = bufferevent_get_input(conn->bev);
	size_t avail = evbuffer_get_length(in);

	if (len > avail)
		len = avail;
	if (len == 0)
		return 0;
	if (out->cap < out->len + len + 1) {
		out->cap = out->len + len + 1;
		out->data = xrealloc(out->data, out->cap);
	}
	evbuffer_remove(in, out->data + out->len, len);
	out->len += len;
	out->data[out->len] = '\0';
	return len;
}

int
net_conn_skip_line(struct net_conn *conn)
{
	struct evbuffer *in = bufferevent_get_input(conn->bev);
	struct evbuffer_ptr pos;

	pos = evbuffer_search_eol(in, NULL, NULL, EVBUFFER_EOL_LF);
	if (pos.pos < 0) {
		evbuffer_drain(in, evbuffer_get_length(in));
		return 0;
	}
	evbuffer_drain(in, (size_t)pos.pos + 1);
	return 1;
}

void
net_conn_pause_input(struct net_conn *conn)
{
	conn->input_paused = true;
	if (!conn->closing)
		bufferevent_disable(conn->bev, EV_READ);
}

void
net_conn_resume_input(struct net_conn *conn)
{
	conn->input_paused = false;
	if (conn->closing || conn->starttls_pending)
		return;
	bufferevent_enable(conn->bev, EV_READ);
	if (net_conn_input_len(conn) > 0)
		bufferevent_trigger(conn->bev, EV_READ,
				    BEV_TRIG_IGNORE_WATERMARKS |
					    BEV_TRIG_DEFER_CALLBACKS);
}

/* ---- output ---- */

void
net_conn_write(struct net_conn *conn, const void *data, size_t len)
{
	if (conn->reaped || conn->close_after_flush)
		return;
	bufferevent_write(conn->bev, data, len);
	if (evbuffer_get_length(bufferevent_get_output(conn->bev)) >
	    conn->high_mark)
		conn->above_high = true;
}

void
net_conn_write_str(struct net_conn *conn, const char *s)
{
	net_conn_write(conn, s, strlen(s));
}

void
net_conn_printf(struct net_conn *conn, const char *fmt, ...)
{
	va_list args;

	if (conn->reaped || conn->close_after_flush)
		return;
	va_start(args, fmt);
	evbuffer_add_vprintf(bufferevent_get_output(conn->bev), fmt, args);
	va_end(args);
	if (evbuffer_get_length(bufferevent_get_output(conn->bev)) >
	    conn->high_mark)
		conn->above_high = true;
}

size_t
net_conn_output_len(const struct net_conn *conn)
{
	return evbuffer_get_length(bufferevent_get_output(conn->bev));
}

void
net_conn_set_output_marks(struct net_conn *conn, size_t low, size_t high)
{
	conn->low_mark = low;
	conn->high_mark = high;
	if (!conn->close_after_flush && !conn->starttls_pending)
		bufferevent_setwatermark(conn->bev, EV_WRITE, low, 0);
}

bool
net_conn_output_full(const struct net_conn *conn)
{
	return net_conn_output_len(conn) > conn->high_mark;
}

void
net_conn_set_idle_timeout(struct net_conn *conn, unsigned seconds)
{
	struct timeval tv = {seconds, 0};

	conn->idle_timeout = seconds;
	if (conn->reaped)
		return;
	bufferevent_set_timeouts(conn->bev, seconds != 0 ? &tv : NULL, NULL);
}

int
net_conn_starttls(struct net_conn *conn, const char **error_r)
{
	if (conn->tls || conn->starttls_pending) {
		*error_r = "TLS is already active";
		return -1;
	}
	if (conn->server->tls == NULL) {
		*error_r = "no TLS certificate loaded";
		return -1;
	}
	conn->starttls_pending = true;
	/* Nothing more is read in plaintext, and what the client pipelined
	 * after STARTTLS is thrown away now. */
	evbuffer_drain(bufferevent_get_input(conn->bev),
		       evbuffer_get_length(bufferevent_get_input(conn->bev)));
	bufferevent_disable(conn->bev, EV_READ);
	bufferevent_setwatermark(conn->bev, EV_WRITE, 0, 0);
	/* The upgrade happens in the write callback once the reply is on the
	 * wire; trigger it (deferred) in case nothing is left to write. */
	bufferevent_trigger(conn->bev, EV_WRITE,
			    BEV_TRIG_IGNORE_WATERMARKS |
				    BEV_TRIG_DEFER_CALLBACKS);
	return 0;
}
