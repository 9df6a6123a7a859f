/* sealpost serve: the server in the foreground until SIGINT or SIGTERM. */
#include "admin-private.h"

#include <event2/event.h>
#include <signal.h>
#include <stdio.h>

static void
on_signal(evutil_socket_t sig, short events, void *arg)
{
	struct event_base *base = arg;

	log_info(NULL, "signal %d: shutting down", (int)sig);
	event_base_loopexit(base, NULL);
}

int
admin_cmd_serve(struct admin_ctx *ctx, int argc, char **argv)
{
	struct event_base *base;
	struct event *sigint, *sigterm;

	if (argc != 0)
		return admin_usage(ctx, "unexpected argument '%s'", argv[0]);
	if (admin_load_conf(ctx) < 0)
		return ADMIN_EXIT_FAIL;
	base = event_base_new();
	if (base == NULL)
		return admin_fail("could not create the event loop");
	signal(SIGPIPE, SIG_IGN);
	sigint = evsignal_new(base, SIGINT, on_signal, base);
	sigterm = evsignal_new(base, SIGTERM, on_signal, base);
	event_add(sigint, NULL);
	event_add(sigterm, NULL);
	log_info(NULL, "sealpost serving data directory %s", ctx->data_dir);
	event_base_dispatch(base);
	event_free(sigint);
	event_free(sigterm);
	event_base_free(base);
	return ADMIN_EXIT_OK;
}
