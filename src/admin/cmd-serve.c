/* sealpost serve: the server in the foreground until SIGINT or SIGTERM.
 *
 * Order matters: bind every listener and load the TLS key as root, hand the
 * data directory to the unprivileged user, drop privileges, and only then
 * accept connections. */
#include "admin-private.h"

#include "backup/backup.h"

#include "account/account.h"
#include "imap/imap.h"
#include "net/net.h"
#include "pop3/pop3.h"
#include "queue/queue.h"
#include "smtp/smtp.h"

#include <errno.h>
#include <event2/event.h>
#include <ftw.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void
on_signal(evutil_socket_t sig, short events, void *arg)
{
	struct event_base *base = arg;

	log_info(NULL, "signal %d: shutting down", (int)sig);
	event_base_loopexit(base, NULL);
}

static void
on_cache_timer(evutil_socket_t fd, short events, void *arg)
{
	account_cache_expire();
}

static uid_t chown_uid;
static gid_t chown_gid;

static int
chown_entry(const char *path, const struct stat *st, int type,
	    struct FTW *ftw)
{
	if (st->st_uid != chown_uid || st->st_gid != chown_gid) {
		if (lchown(path, chown_uid, chown_gid) < 0)
			return -1;
	}
	return 0;
}

/* The user `serve` runs as when started as root: the setting, else
 * nobody. NULL when there is none. */
static const struct passwd *
service_user(void)
{
	const char *name = conf_str("user");
	struct passwd *pw = name[0] != '\0' ? getpwnam(name) : NULL;

	return pw != NULL ? pw : getpwnam("nobody");
}

/* The data directory belongs to the service user, so that the server can
 * reach its mailboxes after dropping root. */
static int
give_data_dir(const char *data_dir)
{
	const struct passwd *pw = service_user();

	if (pw == NULL || pw->pw_uid == 0)
		return 0; /* net_drop_privileges() reports it */
	chown_uid = pw->pw_uid;
	chown_gid = pw->pw_gid;
	return nftw(data_dir, chown_entry, 16, FTW_PHYS);
}

/* Works from inside the data directory with relative paths from now on:
 * after dropping root, the directories above it (a 0700 home, a test's
 * temporary directory) need not be reachable. */
static int
enter_data_dir(struct admin_ctx *ctx)
{
	const char *error;

	if (chdir(ctx->data_dir) < 0)
		return -1;
	ctx->data_dir = ".";
	if (conf_load(".", &error) < 0) {
		admin_fail("%s", error);
		return -1;
	}
	return 0;
}

int
admin_become_data_owner(struct admin_ctx *ctx)
{
	struct stat st;

	/* Root running the CLI on a data directory that a server owns acts
	 * as that owner, so every file it creates stays readable there. */
	if (geteuid() != 0 || stat(ctx->data_dir, &st) < 0 || st.st_uid == 0)
		return 0;
	if (enter_data_dir(ctx) < 0) {
		admin_fail("cannot enter the data directory");
		return -1;
	}
	if (setgroups(1, &st.st_gid) < 0 || setgid(st.st_gid) < 0 ||
	    setuid(st.st_uid) < 0) {
		admin_fail("cannot switch to the owner of the data directory");
		return -1;
	}
	return 0;
}

int
admin_cmd_serve(struct admin_ctx *ctx, int argc, char **argv)
{
	struct event_base *base;
	struct event *sigint, *sigterm, *cache_timer;
	struct net_server *net = NULL;
	struct imap_server *imap = NULL;
	struct pop3_server *pop3 = NULL;
	struct smtp_server *smtp = NULL, *submission = NULL;
	struct smtp_outbound *outbound = NULL;
	struct queue *queue = NULL;
	struct admin_control *control = NULL;
	struct timeval ten = {10, 0};
	const char *error;
	int ret = ADMIN_EXIT_FAIL;

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
	cache_timer = event_new(base, -1, EV_PERSIST, on_cache_timer, NULL);
	event_add(sigint, NULL);
	event_add(sigterm, NULL);
	event_add(cache_timer, &ten);

	log_info(NULL, "sealpost serving data directory %s", ctx->data_dir);
	if (geteuid() == 0 && enter_data_dir(ctx) < 0) {
		admin_fail("cannot enter the data directory");
		goto out;
	}
	if (net_server_create(base, 0, &net, &error) < 0) {
		admin_fail("%s", error);
		goto out;
	}
	if (net_server_load_tls(net, conf_str("tls_cert"), conf_str("tls_key"),
				&error) < 0)
		log_warn(NULL, "%s: TLS listeners and STARTTLS are off",
			 error);
	if (imap_server_create(net, &imap, &error) < 0) {
		admin_fail("imap: %s", error);
		goto out;
	}
	if (pop3_server_create(net, &pop3, &error) < 0) {
		admin_fail("pop3: %s", error);
		goto out;
	}
	if (smtp_server_start(net, &smtp, &error) < 0) {
		admin_fail("smtp: %s", error);
		goto out;
	}
	/* Opened (and created) before the data directory changes hands
	 * below, so its files are handed over too. */
	if (queue_open(ctx->data_dir, &queue, &error) < 0) {
		admin_fail("queue: %s", error);
		goto out;
	}
	if (smtp_submission_start(net, queue, &submission, &error) < 0) {
		admin_fail("submission: %s", error);
		goto out;
	}
	if (geteuid() == 0 && give_data_dir(ctx->data_dir) < 0) {
		admin_fail("cannot hand the data directory to the service "
			   "user: %s",
			   strerror(errno));
		goto out;
	}
	if (net_drop_privileges(conf_str("user"), &error) < 0) {
		admin_fail("%s", error);
		goto out;
	}
	{
		/* Deliveries are protocol code: they start only now, without
		 * root. */
		struct queue_runner_settings rs = {
			.deliver = smtp_outbound_deliver,
			.threads = conf_uint("queue_threads", 1),
		};

		outbound = smtp_outbound_create();
		rs.deliver_ctx = outbound;
		rs.hostname = smtp_outbound_hostname(outbound);
		if (queue_runner_start(queue, &rs, &error) < 0) {
			admin_fail("queue: %s", error);
			goto out;
		}
	}
	/* After the drop: the socket belongs to the service user, like the
	 * data directory it lives in. Without it a restore refuses while a
	 * session is open, so the server runs on. */
	if (admin_control_start(base, ctx->data_dir, imap, pop3, &control,
				&error) < 0)
		log_warn(NULL, "control channel off: %s", error);
	event_base_dispatch(base);
	ret = ADMIN_EXIT_OK;
out:
	/* Its holds end and it stops using the IMAP and POP3 servers. */
	admin_control_stop(&control);
	/* Connections close first: their sessions still use the IMAP
	 * server while they go. */
	net_server_destroy(&net);
	imap_server_destroy(&imap);
	pop3_server_destroy(&pop3);
	smtp_server_destroy(&smtp);
	smtp_server_destroy(&submission);
	/* The runner's deliveries use outbound until it stops. */
	queue_close(&queue);
	smtp_outbound_destroy(&outbound);
	/* Daily backups hold copies of mailbox keys on their threads. */
	backup_daily_shutdown();
	account_cache_clear();
	event_free(sigint);
	event_free(sigterm);
	event_free(cache_timer);
	event_base_free(base);
	return ret;
}
