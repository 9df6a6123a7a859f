/* The IMAP server: settings, capability strings, listeners, the spool
 * watch. */
#include "imap-private.h"

#include "conf/conf.h"

#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

/* Before login a client has no business sending big literals. */
#define IMAP_PRELOGIN_LITERAL 8192

static void
load_settings(struct imap_settings *set)
{
	set->allow_plaintext_loopback =
		conf_bool("imap_allow_plaintext_loopback");
	/* RFC 3501 5.4: the autologout timer is at least 30 minutes. */
	set->idle_timeout = conf_uint("imap_idle_timeout_seconds", 1800);
	set->login_timeout = conf_uint("imap_login_timeout_seconds", 10);
	set->max_per_alias = conf_uint("imap_max_connections_per_alias", 0);
	set->commands_per_second = conf_uint("imap_commands_per_second", 0);
	set->append_limit = (uint64_t)conf_int("imap_append_limit");
	set->limits.max_line = conf_uint("imap_max_line", 1024);
	set->limits.max_literal = conf_uint("imap_max_literal_bytes", 1024);
	set->limits.max_literal_total = set->limits.max_literal;
	set->limits.max_literals = conf_uint("imap_max_literals", 1);
	set->limits.max_append = (size_t)set->append_limit;
	set->limits.max_depth = 32;
	set->limits_before_login = set->limits;
	set->limits_before_login.max_literal = IMAP_PRELOGIN_LITERAL;
	set->limits_before_login.max_literal_total = 2 * IMAP_PRELOGIN_LITERAL;
	set->limits_before_login.max_append = 0;
}

static void
build_capabilities(struct imap_server *server)
{
	static const char common[] = "IMAP4rev1 LITERAL+ SASL-IR ID ENABLE "
				     "IDLE NAMESPACE";
	char after[512];

	snprintf(server->capability_plain, sizeof(server->capability_plain),
		 "%s%s LOGINDISABLED", common,
		 net_server_has_tls(server->net) ? " STARTTLS" : "");
	snprintf(server->capability_tls, sizeof(server->capability_tls),
		 "%s AUTH=PLAIN", common);
	snprintf(after, sizeof(after),
		 "UNSELECT CHILDREN SPECIAL-USE UIDPLUS MOVE CONDSTORE "
		 "ESEARCH QUOTA QUOTA=RES-STORAGE APPENDLIMIT=%llu "
		 "STATUS=SIZE X-REGEX",
		 (unsigned long long)server->set.append_limit);
	snprintf(server->capability_auth, sizeof(server->capability_auth),
		 "%s %s", common, after);
}

static void
on_inotify(evutil_socket_t fd, short events, void *arg)
{
	imap_user_inotify(arg);
}

int
imap_server_create(struct net_server *net, struct imap_server **server_r,
		   const char **error_r)
{
	struct imap_server *server = xcalloc(1, sizeof(*server));
	struct net_listen_settings ls = {
		.protocol = "imap",
		.reject_line = "* BYE Too many connections from your IP\r\n",
	};

	server->net = net;
	server->data_dir = xstrdup(conf_data_dir());
	load_settings(&server->set);
	build_capabilities(server);
	server->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (server->inotify_fd < 0) {
		log_warn(NULL, "imap: no inotify; new mail is seen at the "
			       "next login");
	} else {
		server->inotify_ev = event_new(net_server_base(net),
					       server->inotify_fd,
					       EV_READ | EV_PERSIST,
					       on_inotify, server);
		event_add(server->inotify_ev, NULL);
	}
	ls.max_per_ip = conf_uint("imap_max_connections_per_ip", 0);
	ls.address = conf_str("imap_listen");
	ls.implicit_tls = false;
	if (net_listen(net, &ls, imap_session_accept, server, error_r) < 0)
		goto fail;
	ls.address = conf_str("imaps_listen");
	ls.implicit_tls = true;
	if (net_listen(net, &ls, imap_session_accept, server, error_r) < 0)
		goto fail;
	*server_r = server;
	return 0;
fail:
	imap_server_destroy(&server);
	return -1;
}

void
imap_server_destroy(struct imap_server **_server)
{
	struct imap_server *server = *_server;

	if (server == NULL)
		return;
	*_server = NULL;
	if (server->inotify_ev != NULL)
		event_free(server->inotify_ev);
	if (server->inotify_fd >= 0)
		close(server->inotify_fd);
	free(server->data_dir);
	free(server);
}
