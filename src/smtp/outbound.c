/* The outbound queue's delivery function: what queue_runner_start() is
 * given by `sealpost serve`, so that the queue decides what to send and
 * when, and the SMTP client how. */
#include "smtp-private.h"

#include "conf/conf.h"
#include "mailauth/mailauth.h"
#include "queue/queue.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct smtp_outbound {
	char *relayhost;
	char *helo;
	struct mailauth_dns *dns;
	unsigned timeout;
};

struct smtp_outbound *
smtp_outbound_create(void)
{
	struct smtp_outbound *out = xcalloc(1, sizeof(*out));
	const char *name = conf_str("hostname");
	char host[256];
	const char *error;

	out->relayhost = xstrdup(conf_str("outbound_relayhost"));
	if (name[0] != '\0') {
		out->helo = xstrdup(name);
	} else if (gethostname(host, sizeof(host)) == 0) {
		host[sizeof(host) - 1] = '\0';
		out->helo = xstrdup(host);
	} else {
		out->helo = xstrdup("localhost");
	}
	out->timeout = conf_uint("outbound_timeout_seconds", 1);
	if (out->relayhost[0] == '\0') {
		out->dns = mailauth_dns_unbound_create(conf_str("dns_resolver"),
						       &error);
		if (out->dns == NULL)
			log_warn(NULL, "queue: no DNS resolver (%s): "
				       "deliveries will be deferred",
				 error);
	}
	return out;
}

const char *
smtp_outbound_hostname(const struct smtp_outbound *out)
{
	return out->helo;
}

void
smtp_outbound_destroy(struct smtp_outbound **_out)
{
	struct smtp_outbound *out = *_out;

	if (out == NULL)
		return;
	mailauth_dns_destroy(&out->dns);
	free(out->relayhost);
	free(out->helo);
	free(out);
	*_out = NULL;
}

static enum queue_action
queue_action_of(enum smtp_reply_action action)
{
	switch (action) {
	case SMTP_REPLY_OK:
		return QUEUE_ACTION_OK;
	case SMTP_REPLY_REJECT:
		return QUEUE_ACTION_REJECT;
	case SMTP_REPLY_DEFER:
		break;
	}
	return QUEUE_ACTION_DEFER;
}

void
smtp_outbound_deliver(void *ctx, const struct queue_delivery *d,
		      struct queue_result *results)
{
	struct smtp_outbound *out = ctx;
	struct smtp_client_options o = {
		.relayhost = out->relayhost,
		.helo = out->helo,
		.dns = out->dns,
		.timeout_seconds = out->timeout,
	};
	struct smtp_client_result *r = xcalloc(d->rcpt_count, sizeof(*r));

	smtp_client_send_batch(&o, d->mail_from, d->rcpts, d->rcpt_count,
			       d->msg, d->len, d->eightbit, d->smtputf8, r);
	for (size_t i = 0; i < d->rcpt_count; i++) {
		struct queue_result *q = &results[i];

		memset(q, 0, sizeof(*q));
		q->action = queue_action_of(r[i].cls.action);
		q->category = smtp_reply_category_name(r[i].cls.category);
		q->code = r[i].code;
		str_copy(q->enhanced, r[i].enhanced, sizeof(q->enhanced));
		str_copy(q->text, r[i].text, sizeof(q->text));
		str_copy(q->remote, r[i].remote, sizeof(q->remote));
	}
	free(r);
}
