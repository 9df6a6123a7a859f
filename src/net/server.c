/* The server: listeners, TLS context, per-IP counts, privilege drop. */
#include "net-private.h"

#include "conf/conf.h"

#include <errno.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <grp.h>
#include <openssl/err.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void
on_reap(evutil_socket_t fd, short events, void *arg)
{
	net_conn_reap_all(arg);
}

int
net_server_create(struct event_base *base, unsigned worker_threads,
		  struct net_server **server_r, const char **error_r)
{
	struct net_server *server = xcalloc(1, sizeof(*server));

	server->base = base;
	server->done_fd = -1;
	/* One count for every protocol that logs in (IMAP, POP3, submission):
	 * a guesser gains nothing by switching ports. */
	server->fail_ip = net_ratelimit_create(
		conf_uint("login_failures_per_ip", 0),
		conf_uint("login_failure_window_seconds", 1));
	server->fail_alias = net_ratelimit_create(
		conf_uint("login_failures_per_alias", 0),
		conf_uint("login_failure_window_seconds", 1));
	server->reap_ev = event_new(base, -1, 0, on_reap, server);
	if (worker_threads == 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);

		worker_threads = n < 2 ? 2 : (unsigned)n;
	}
	if (net_work_start(server, worker_threads, error_r) < 0) {
		event_free(server->reap_ev);
		net_ratelimit_destroy(&server->fail_ip);
		net_ratelimit_destroy(&server->fail_alias);
		free(server);
		return -1;
	}
	*server_r = server;
	return 0;
}

struct event_base *
net_server_base(struct net_server *server)
{
	return server->base;
}

bool
net_login_blocked(struct net_server *server, const char *ip,
		  const char *alias)
{
	return (ip != NULL && net_ratelimit_exceeded(server->fail_ip, ip)) ||
	       (alias != NULL &&
		net_ratelimit_exceeded(server->fail_alias, alias));
}

void
net_login_failed(struct net_server *server, const char *ip,
		 const char *alias)
{
	if (ip != NULL)
		net_ratelimit_hit(server->fail_ip, ip);
	if (alias != NULL)
		net_ratelimit_hit(server->fail_alias, alias);
}

void
net_server_destroy(struct net_server **_server)
{
	struct net_server *server = *_server;
	struct net_listener *l;

	if (server == NULL)
		return;
	*_server = NULL;
	/* No new connections, then none left; connections keep pointing at
	 * their listener until they are freed. */
	for (l = server->listeners; l != NULL; l = l->next)
		evconnlistener_disable(l->evl);
	while (server->conns != NULL)
		net_conn_close(server->conns);
	net_conn_reap_all(server);
	net_work_stop(server);
	/* Completions run by the stop may have closed more connections. */
	while (server->conns != NULL)
		net_conn_close(server->conns);
	net_conn_reap_all(server);
	net_work_free(server);
	while ((l = server->listeners) != NULL) {
		server->listeners = l->next;
		evconnlistener_free(l->evl);
		free(l->protocol);
		free(l->reject_line);
		free(l);
	}
	event_free(server->reap_ev);
	net_ratelimit_destroy(&server->fail_ip);
	net_ratelimit_destroy(&server->fail_alias);
	for (size_t i = 0; i < NET_IP_BUCKETS; i++) {
		struct net_ip_count *c, *next;

		for (c = server->ip_counts[i]; c != NULL; c = next) {
			next = c->next;
			free(c);
		}
	}
	if (server->tls != NULL)
		SSL_CTX_free(server->tls);
	free(server);
}

static char *
data_path(const char *path)
{
	if (path[0] == '/' || conf_data_dir() == NULL)
		return xstrdup(path);
	return xasprintf("%s/%s", conf_data_dir(), path);
}

int
net_server_load_tls(struct net_server *server, const char *cert,
		    const char *key, const char **error_r)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	char *cert_path, *key_path;
	int ret = 0;

	if (ctx == NULL) {
		*error_r = "cannot create the TLS context";
		return -1;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	/* Idle connections keep no 16 KiB record buffers: the memory goal
	 * per idle connection depends on it. */
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION |
				 SSL_OP_CIPHER_SERVER_PREFERENCE);
	cert_path = data_path(cert);
	key_path = data_path(key);
	if (SSL_CTX_use_certificate_chain_file(ctx, cert_path) != 1) {
		*error_r = "cannot load the TLS certificate (tls_cert)";
		ret = -1;
	} else if (SSL_CTX_use_PrivateKey_file(ctx, key_path,
					       SSL_FILETYPE_PEM) != 1 ||
		   SSL_CTX_check_private_key(ctx) != 1) {
		*error_r = "cannot load the TLS key (tls_key)";
		ret = -1;
	}
	free(cert_path);
	free(key_path);
	ERR_clear_error();
	if (ret < 0) {
		SSL_CTX_free(ctx);
		return -1;
	}
	if (server->tls != NULL)
		SSL_CTX_free(server->tls);
	server->tls = ctx;
	return 0;
}

bool
net_server_has_tls(struct net_server *server)
{
	return server->tls != NULL;
}

static unsigned
ip_hash(const char *key)
{
	unsigned h = 5381;

	for (; *key != '\0'; key++)
		h = h * 33 + (unsigned char)*key;
	return h % NET_IP_BUCKETS;
}

/* Returns false when the (protocol, ip) pair is at its limit. */
static bool
net_ip_acquire(struct net_server *server, const char *protocol,
	       const char *ip, unsigned max)
{
	char key[128];
	struct net_ip_count *c;
	unsigned h;

	snprintf(key, sizeof(key), "%s/%s", protocol, ip);
	h = ip_hash(key);
	for (c = server->ip_counts[h]; c != NULL; c = c->next) {
		if (strcmp(c->key, key) == 0)
			break;
	}
	if (c == NULL) {
		size_t len = strlen(key) + 1;

		c = xcalloc(1, sizeof(*c) + len);
		memcpy(c->key, key, len);
		c->next = server->ip_counts[h];
		server->ip_counts[h] = c;
	}
	if (max != 0 && c->count >= max)
		return false;
	c->count++;
	return true;
}

void
net_ip_release(struct net_server *server, const char *protocol,
	       const char *ip)
{
	char key[128];
	struct net_ip_count **cp, *c;

	snprintf(key, sizeof(key), "%s/%s", protocol, ip);
	for (cp = &server->ip_counts[ip_hash(key)]; (c = *cp) != NULL;
	     cp = &c->next) {
		if (strcmp(c->key, key) != 0)
			continue;
		if (--c->count == 0) {
			*cp = c->next;
			free(c);
		}
		return;
	}
}

static void
on_accept(struct evconnlistener *evl, evutil_socket_t fd,
	  struct sockaddr *addr, int addrlen, void *arg)
{
	struct net_listener *l = arg;
	char ip[INET6_ADDRSTRLEN] = "?";

	if (addr->sa_family == AF_INET)
		evutil_inet_ntop(AF_INET,
				 &((struct sockaddr_in *)addr)->sin_addr, ip,
				 sizeof(ip));
	else if (addr->sa_family == AF_INET6)
		evutil_inet_ntop(AF_INET6,
				 &((struct sockaddr_in6 *)addr)->sin6_addr,
				 ip, sizeof(ip));
	if (!net_ip_acquire(l->server, l->protocol, ip, l->max_per_ip)) {
		/* Over the limit: one plain line where the protocol is
		 * plaintext at this point, else just the close. */
		if (!l->implicit_tls && l->reject_line != NULL) {
			ssize_t ret = write(fd, l->reject_line,
					    strlen(l->reject_line));
			(void)ret;
		}
		evutil_closesocket(fd);
		log_info(NULL, "%s: connection limit per IP reached",
			 l->protocol);
		return;
	}
	net_conn_accept(l, fd, addr, addrlen);
}

static void
on_accept_error(struct evconnlistener *evl, void *arg)
{
	struct net_listener *l = arg;

	/* EMFILE and friends: keep listening; the next accept may work. */
	log_warn(NULL, "%s: accept failed: %s", l->protocol,
		 evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
}

int
net_listen(struct net_server *server,
	   const struct net_listen_settings *settings,
	   net_accept_func *accept_cb, void *ctx, const char **error_r)
{
	struct sockaddr_storage ss;
	int sslen = sizeof(ss);
	const char *address = settings->address;
	char *tmp = NULL;
	struct net_listener *l;

	if (address == NULL || address[0] == '\0')
		return 0;
	if (str_has_prefix(address, "*:")) {
		tmp = xasprintf("0.0.0.0%s", address + 1);
		address = tmp;
	}
	memset(&ss, 0, sizeof(ss));
	if (evutil_parse_sockaddr_port(address, (struct sockaddr *)&ss,
				       &sslen) < 0) {
		free(tmp);
		*error_r = "listener address is not host:port";
		return -1;
	}
	free(tmp);
	if (settings->implicit_tls && server->tls == NULL) {
		*error_r = "TLS listener without a certificate";
		return -1;
	}
	l = xcalloc(1, sizeof(*l));
	l->server = server;
	l->implicit_tls = settings->implicit_tls;
	l->max_per_ip = settings->max_per_ip;
	l->protocol = xstrdup(settings->protocol != NULL ? settings->protocol
							  : "net");
	l->reject_line = settings->reject_line != NULL
				 ? xstrdup(settings->reject_line)
				 : NULL;
	l->accept_cb = accept_cb;
	l->ctx = ctx;
	l->evl = evconnlistener_new_bind(
		server->base, on_accept, l,
		LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE |
			LEV_OPT_CLOSE_ON_EXEC,
		1024, (struct sockaddr *)&ss, sslen);
	if (l->evl == NULL) {
		*error_r = xasprintf("cannot listen on %s: %s",
				     settings->address, strerror(errno));
		free(l->protocol);
		free(l->reject_line);
		free(l);
		return -1;
	}
	evconnlistener_set_error_cb(l->evl, on_accept_error);
	l->next = server->listeners;
	server->listeners = l;
	return 1;
}

int
net_drop_privileges(const char *user, const char **error_r)
{
	struct passwd *pw;

	if (geteuid() != 0 && getuid() != 0)
		return 0;
	pw = user != NULL && user[0] != '\0' ? getpwnam(user) : NULL;
	if (pw == NULL)
		pw = getpwnam("nobody");
	if (pw == NULL) {
		*error_r = "neither the configured user nor nobody exists";
		return -1;
	}
	if (pw->pw_uid == 0) {
		*error_r = "the configured user is root";
		return -1;
	}
	if (setgroups(1, &pw->pw_gid) < 0 || setgid(pw->pw_gid) < 0 ||
	    setuid(pw->pw_uid) < 0) {
		*error_r = "cannot switch to the unprivileged user";
		return -1;
	}
	if (setuid(0) == 0 || geteuid() == 0) {
		*error_r = "root could be regained after dropping privileges";
		return -1;
	}
	log_info(NULL, "running as uid %u", (unsigned)pw->pw_uid);
	return 0;
}
