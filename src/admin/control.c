/* The local control channel between the CLI and a running `sealpost serve`
 * (see admin-private.h): a Unix socket in the data directory, served on
 * serve's libevent loop, with a line protocol. Today it has one use: a
 * restore has the server close the alias's sessions and keep new ones out
 * while it swaps the mailbox file.
 *
 *   close-sessions <mailbox id>  -> "ok <n>" once no session of the
 *                                   mailbox is left and its store handles
 *                                   are closed (keys wiped); the mailbox
 *                                   stays held shut (account_mailbox_hold)
 *   done <mailbox id>            -> "ok": the hold ends
 *   anything else                -> "error <text>"
 *
 * A hold also ends when the client's connection closes (the CLI exited or
 * died) and after CONTROL_HOLD_SECONDS in any case. Only the server's own
 * user and root may talk to it: the socket is 0600 in the 0700 data
 * directory, and the peer's uid is checked (SO_PEERCRED) on accept. */
#include "admin-private.h"

#include "account/account.h"
#include "imap/imap.h"
#include "pop3/pop3.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define CONTROL_SOCKET "control.sock"
#define CONTROL_MAX_LINE 256
/* How long a restore may keep a mailbox shut. The swap itself takes
 * milliseconds; this only bounds a CLI that stopped answering. */
#define CONTROL_HOLD_SECONDS 60
/* Closing: look every POLL_MS; after POLITE_MS, sessions that have not
 * flushed their BYE are closed hard; after GIVE_UP_MS the answer is an
 * error (a store handle busy with a long job). */
#define CONTROL_POLL_MS 20
#define CONTROL_POLITE_MS 5000
#define CONTROL_GIVE_UP_MS 30000
/* The client waits a little longer than the server gives up. */
#define CONTROL_CLIENT_TIMEOUT_S 40

struct control_client {
	struct control_client *prev, *next;
	struct admin_control *ctl;
	struct bufferevent *bev;
	struct event *poll;
	unsigned poll_ms;	/* since the close started */
	unsigned told;		/* sessions told so far */
	char held[ACCOUNT_MAILBOX_ID_BUF]; /* "" when none */
};

struct admin_control {
	struct evconnlistener *listener;
	struct imap_server *imap;
	struct pop3_server *pop3;
	struct control_client *clients;
	char *path;
};

static bool
control_mailbox_id_valid(const char *id)
{
	size_t len = strlen(id);

	if (len != ACCOUNT_MAILBOX_ID_BUF - 1)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (!((id[i] >= '0' && id[i] <= '9') ||
		      (id[i] >= 'a' && id[i] <= 'f')))
			return false;
	}
	return true;
}

static char *
control_path(const char *data_dir)
{
	return xasprintf("%s/%s", data_dir, CONTROL_SOCKET);
}

/* Fills a sockaddr_un; -1 when the path does not fit. */
static int
control_addr(const char *path, struct sockaddr_un *sun)
{
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun->sun_path))
		return -1;
	memcpy(sun->sun_path, path, strlen(path));
	return 0;
}

/* ---- Server side ---- */

static void
control_release(struct control_client *c)
{
	if (c->held[0] != '\0') {
		account_mailbox_unhold(c->held);
		log_info(NULL, "control: mailbox %s released", c->held);
		c->held[0] = '\0';
	}
}

static void
control_client_free(struct control_client *c)
{
	struct admin_control *ctl = c->ctl;

	control_release(c);
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		ctl->clients = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	if (c->poll != NULL)
		event_free(c->poll);
	bufferevent_free(c->bev);
	free(c);
}

static void
control_reply(struct control_client *c, const char *fmt, ...)
	SP_PRINTF(2, 3);

static void
control_reply(struct control_client *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	evbuffer_add_vprintf(bufferevent_get_output(c->bev), fmt, ap);
	va_end(ap);
	evbuffer_add(bufferevent_get_output(c->bev), "\n", 1);
}

static bool
control_mailbox_open(struct admin_control *ctl, const char *id)
{
	return (ctl->imap != NULL && imap_server_mailbox_open(ctl->imap, id)) ||
	       (ctl->pop3 != NULL && pop3_server_mailbox_open(ctl->pop3, id));
}

static unsigned
control_close(struct admin_control *ctl, const char *id, bool force)
{
	unsigned told = 0;

	if (ctl->imap != NULL)
		told += imap_server_close_mailbox(ctl->imap, id, force);
	if (ctl->pop3 != NULL)
		told += pop3_server_close_mailbox(ctl->pop3, id, force);
	return told;
}

/* The close in progress: done when nothing of the mailbox is open. Each
 * round closes again, for a login that attached before the hold took
 * effect (its open is refused, but its session is there). */
static void
control_poll(evutil_socket_t fd, short events, void *arg)
{
	struct control_client *c = arg;
	struct admin_control *ctl = c->ctl;
	struct timeval tv = {0, CONTROL_POLL_MS * 1000};

	c->poll_ms += CONTROL_POLL_MS;
	if (!control_mailbox_open(ctl, c->held)) {
		log_info(NULL, "control: %u session(s) of mailbox %s closed",
			 c->told, c->held);
		control_reply(c, "ok %u", c->told);
		bufferevent_enable(c->bev, EV_READ);
		return;
	}
	if (c->poll_ms >= CONTROL_GIVE_UP_MS) {
		log_warn(NULL, "control: mailbox %s still open after %u ms",
			 c->held, c->poll_ms);
		control_release(c);
		control_reply(c, "error the sessions did not close in time");
		bufferevent_enable(c->bev, EV_READ);
		return;
	}
	c->told += control_close(ctl, c->held,
				 c->poll_ms >= CONTROL_POLITE_MS);
	evtimer_add(c->poll, &tv);
}

static void
control_command(struct control_client *c, char *line)
{
	struct admin_control *ctl = c->ctl;
	char *arg = strchr(line, ' ');
	struct timeval now = {0, 0};

	if (arg != NULL)
		*arg++ = '\0';
	if (arg == NULL || !control_mailbox_id_valid(arg)) {
		control_reply(c, "error expected: close-sessions|done "
				 "<mailbox id>");
		return;
	}
	if (strcmp(line, "close-sessions") == 0) {
		/* One mailbox per client: a second one ends the first
		 * one's hold. */
		if (strcmp(c->held, arg) != 0)
			control_release(c);
		account_mailbox_hold(arg, CONTROL_HOLD_SECONDS);
		str_copy(c->held, arg, sizeof(c->held));
		c->poll_ms = 0;
		c->told = control_close(ctl, arg, false);
		/* One command at a time: the answer comes from the poll. */
		bufferevent_disable(c->bev, EV_READ);
		if (c->poll == NULL)
			c->poll = evtimer_new(bufferevent_get_base(c->bev),
					      control_poll, c);
		evtimer_add(c->poll, &now);
	} else if (strcmp(line, "done") == 0) {
		if (strcmp(c->held, arg) == 0)
			control_release(c);
		else
			account_mailbox_unhold(arg);
		control_reply(c, "ok");
	} else {
		control_reply(c, "error unknown command");
	}
}

static void
control_read(struct bufferevent *bev, void *arg)
{
	struct control_client *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	char *line;
	size_t len;

	while ((bufferevent_get_enabled(bev) & EV_READ) != 0 &&
	       (line = evbuffer_readln(in, &len, EVBUFFER_EOL_CRLF)) !=
		       NULL) {
		control_command(c, line);
		free(line);
	}
	if (evbuffer_get_length(in) > CONTROL_MAX_LINE) {
		control_client_free(c);
		return;
	}
}

static void
control_event(struct bufferevent *bev, short what, void *arg)
{
	if ((what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) != 0)
		control_client_free(arg);
}

static void
control_accept(struct evconnlistener *listener, evutil_socket_t fd,
	       struct sockaddr *addr, int socklen, void *arg)
{
	struct admin_control *ctl = arg;
	struct control_client *c;
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 ||
	    (cred.uid != 0 && cred.uid != geteuid())) {
		log_warn(NULL, "control: refused a peer of another user");
		evutil_closesocket(fd);
		return;
	}
	c = xcalloc(1, sizeof(*c));
	c->ctl = ctl;
	c->bev = bufferevent_socket_new(evconnlistener_get_base(listener), fd,
					BEV_OPT_CLOSE_ON_FREE);
	bufferevent_setcb(c->bev, control_read, NULL, control_event, c);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	c->next = ctl->clients;
	if (ctl->clients != NULL)
		ctl->clients->prev = c;
	ctl->clients = c;
}

/* A socket left by a server that died is removed; one that answers
 * belongs to a running server. 0 free to bind, -1 in use. */
static int
control_clear_stale(const char *path, const struct sockaddr_un *sun)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int ret = 0;

	if (fd < 0)
		return 0;
	if (connect(fd, (const struct sockaddr *)sun, sizeof(*sun)) == 0)
		ret = -1;
	else if (errno == ECONNREFUSED)
		(void)unlink(path);
	close(fd);
	return ret;
}

int
admin_control_start(struct event_base *base, const char *data_dir,
		    struct imap_server *imap, struct pop3_server *pop3,
		    struct admin_control **ctl_r, const char **error_r)
{
	static _Thread_local char error_buf[256];
	struct admin_control *ctl;
	struct sockaddr_un sun;
	char *path = control_path(data_dir);
	mode_t old_umask;
	int fd;

	*ctl_r = NULL;
	if (control_addr(path, &sun) < 0) {
		snprintf(error_buf, sizeof(error_buf),
			 "%s: path too long for a Unix socket", path);
		goto fail;
	}
	if (control_clear_stale(path, &sun) < 0) {
		snprintf(error_buf, sizeof(error_buf),
			 "%s: another server answers on it", path);
		goto fail;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		snprintf(error_buf, sizeof(error_buf), "socket: %s",
			 strerror(errno));
		goto fail;
	}
	/* Created 0600 from the start: no moment in which others could
	 * connect. */
	old_umask = umask(0177);
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		umask(old_umask);
		snprintf(error_buf, sizeof(error_buf), "%s: %s", path,
			 strerror(errno));
		close(fd);
		goto fail;
	}
	umask(old_umask);
	ctl = xcalloc(1, sizeof(*ctl));
	ctl->imap = imap;
	ctl->pop3 = pop3;
	ctl->path = path;
	ctl->listener = evconnlistener_new(
		base, control_accept, ctl,
		LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 16, fd);
	if (ctl->listener == NULL) {
		snprintf(error_buf, sizeof(error_buf), "%s: cannot listen",
			 path);
		close(fd);
		(void)unlink(path);
		free(ctl);
		goto fail;
	}
	*ctl_r = ctl;
	return 0;
fail:
	free(path);
	*error_r = error_buf;
	return -1;
}

void
admin_control_stop(struct admin_control **_ctl)
{
	struct admin_control *ctl = *_ctl;

	if (ctl == NULL)
		return;
	*_ctl = NULL;
	while (ctl->clients != NULL)
		control_client_free(ctl->clients);
	evconnlistener_free(ctl->listener);
	(void)unlink(ctl->path);
	free(ctl->path);
	free(ctl);
}

/* ---- Client side ---- */

/* Reads one answer line into buf; -1 on error or timeout. */
static int
control_read_line(int fd, char *buf, size_t size)
{
	size_t len = 0;

	while (len + 1 < size) {
		ssize_t n = read(fd, buf + len, 1);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		if (buf[len] == '\n') {
			buf[len] = '\0';
			return 0;
		}
		len++;
	}
	return -1;
}

static int
control_send(int fd, const char *cmd, const char *mailbox_id, char *answer,
	     size_t size)
{
	char line[CONTROL_MAX_LINE];
	int len = snprintf(line, sizeof(line), "%s %s\n", cmd, mailbox_id);

	if (len < 0 || (size_t)len >= sizeof(line) ||
	    write(fd, line, (size_t)len) != len)
		return -1;
	return control_read_line(fd, answer, size);
}

int
admin_control_close_sessions(const char *data_dir, const char *mailbox_id,
			     int *fd_r, unsigned *closed_r,
			     const char **error_r)
{
	static _Thread_local char error_buf[CONTROL_MAX_LINE + 64];
	struct timeval tv = {CONTROL_CLIENT_TIMEOUT_S, 0};
	struct sockaddr_un sun;
	char *path = control_path(data_dir);
	char answer[CONTROL_MAX_LINE];
	unsigned closed;
	int fd;

	*fd_r = -1;
	*closed_r = 0;
	*error_r = error_buf;
	if (control_addr(path, &sun) < 0) {
		/* A server could not have bound it either. */
		free(path);
		return 0;
	}
	free(path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(error_buf, sizeof(error_buf), "socket: %s",
			 strerror(errno));
		return -1;
	}
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		int err = errno;

		close(fd);
		if (err == ENOENT || err == ECONNREFUSED)
			return 0; /* no server runs */
		snprintf(error_buf, sizeof(error_buf),
			 "cannot reach the running server (%s): %s",
			 CONTROL_SOCKET, strerror(err));
		return -1;
	}
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (control_send(fd, "close-sessions", mailbox_id, answer,
			 sizeof(answer)) < 0) {
		snprintf(error_buf, sizeof(error_buf),
			 "the running server did not answer on %s",
			 CONTROL_SOCKET);
		close(fd);
		return -1;
	}
	if (sscanf(answer, "ok %u", &closed) != 1) {
		snprintf(error_buf, sizeof(error_buf),
			 "the running server could not close the sessions: "
			 "%s",
			 strncmp(answer, "error ", 6) == 0 ? answer + 6
							   : answer);
		close(fd);
		return -1;
	}
	*fd_r = fd;
	*closed_r = closed;
	return 1;
}

void
admin_control_done(int *fd, const char *mailbox_id)
{
	char answer[CONTROL_MAX_LINE];

	if (*fd < 0)
		return;
	/* Closing alone would end the hold too; "done" waits for it. */
	(void)control_send(*fd, "done", mailbox_id, answer, sizeof(answer));
	close(*fd);
	*fd = -1;
}
