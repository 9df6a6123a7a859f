/* The POP3 server: settings and listeners. */
#include "pop3-private.h"

#include "conf/conf.h"

#include <stdlib.h>

/* RFC 2449 4 allows 255 octets per command; AUTH's initial response and
 * long passwords need more, so the floor is that. */
#define POP3_MIN_LINE 255

int
pop3_server_create(struct net_server *net, struct pop3_server **server_r,
		   const char **error_r)
{
	struct pop3_server *server = xcalloc(1, sizeof(*server));
	struct net_listen_settings ls = {
		.protocol = "pop3",
		.reject_line = "-ERR [SYS/TEMP] Too many connections from "
			       "your IP.\r\n",
	};

	server->net = net;
	server->data_dir = xstrdup(conf_data_dir());
	server->set.allow_plaintext_loopback =
		conf_bool("pop3_allow_plaintext_loopback");
	/* RFC 1939 3 asks for at least 10 minutes (the default); lower is
	 * the operator's choice. */
	server->set.idle_timeout = conf_uint("pop3_timeout_seconds", 1);
	server->set.max_line = conf_uint("pop3_max_line_length",
					 POP3_MIN_LINE);
	ls.max_per_ip = conf_uint("pop3_max_connections_per_ip", 0);
	ls.address = conf_str("pop3_listen");
	ls.implicit_tls = false;
	if (net_listen(net, &ls, pop3_session_accept, server, error_r) < 0)
		goto fail;
	ls.address = conf_str("pop3s_listen");
	ls.implicit_tls = true;
	if (net_listen(net, &ls, pop3_session_accept, server, error_r) < 0)
		goto fail;
	*server_r = server;
	return 0;
fail:
	pop3_server_destroy(&server);
	return -1;
}

static void
server_free(struct pop3_server *server)
{
	free(server->data_dir);
	free(server);
}

void
pop3_server_destroy(struct pop3_server **_server)
{
	struct pop3_server *server = *_server;

	if (server == NULL)
		return;
	*_server = NULL;
	if (server->destroying) {
		/* Called again by the last session's free. */
		server_free(server);
		return;
	}
	server->destroying = true;
	if (server->sessions == NULL) {
		server_free(server);
		return;
	}
	/* Each session frees itself from on_close (or after its job);
	 * the last one frees the server. */
	for (struct pop3_session *s = server->sessions; s != NULL;
	     s = s->next) {
		if (s->conn != NULL)
			net_conn_close(s->conn);
	}
}
