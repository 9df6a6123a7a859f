/* The sessions of one alias: shared keys, store handle and serial queue;
 * the spool watch that brings new mail in while any of them is open. */
#include "imap-private.h"

#include "backup/backup.h"

#include <errno.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

static char *
spool_dir(struct imap_user *user)
{
	return xasprintf("%s/spool/%s", user->server->data_dir,
			 user->keys.mailbox_id);
}

struct imap_user *
imap_user_attach(struct imap_server *server, struct imap_session *session,
		 struct account_session_keys *keys)
{
	struct imap_user *user;

	for (user = server->users; user != NULL; user = user->next) {
		if (strcmp(user->keys.mailbox_id, keys->mailbox_id) == 0)
			break;
	}
	if (user != NULL) {
		/* The alias's keys are already unlocked: this session's copy
		 * is not needed. */
		account_session_keys_clear(keys);
	} else {
		user = xcalloc(1, sizeof(*user));
		user->server = server;
		user->keys = *keys;
		memset(keys, 0, sizeof(*keys));
		user->queue = net_workq_create(server->net);
		user->watch = -1;
		user->next = server->users;
		if (server->users != NULL)
			server->users->prev = user;
		server->users = user;
		imap_user_watch_spool(user);
	}
	user->refcount++;
	session->user = user;
	session->user_next = user->sessions;
	user->sessions = session;
	return user;
}

static void user_release(struct imap_user *user);

static void
close_work(void *ctx)
{
	struct imap_user *user = ctx;

	store_mailbox_close(&user->mbox);
}

static void
close_done(void *ctx)
{
	struct imap_user *user = ctx;
	struct imap_server *server = user->server;

	if (user->prev != NULL)
		user->prev->next = user->next;
	else
		server->releasing = user->next;
	if (user->next != NULL)
		user->next->prev = user->prev;
	/* The unlocked keys die with the alias's last session. */
	account_session_keys_clear(&user->keys);
	free(user);
}

void
imap_user_detach(struct imap_session *session)
{
	struct imap_user *user = session->user;
	struct imap_session **sp;

	if (user == NULL)
		return;
	session->user = NULL;
	for (sp = &user->sessions; *sp != NULL; sp = &(*sp)->user_next) {
		if (*sp == session) {
			*sp = session->user_next;
			break;
		}
	}
	if (user->keys.address != NULL)
		account_login_release(user->keys.address);
	if (--user->refcount == 0)
		user_release(user);
}

/* No session and no job holds the alias any more. */
static void
user_release(struct imap_user *user)
{
	struct imap_server *server = user->server;

	if (user->watch >= 0 && server->inotify_fd >= 0)
		inotify_rm_watch(server->inotify_fd, user->watch);
	if (user->prev != NULL)
		user->prev->next = user->next;
	else
		server->users = user->next;
	if (user->next != NULL)
		user->next->prev = user->prev;
	/* Until the handle is closed (close_done). */
	user->prev = NULL;
	user->next = server->releasing;
	if (server->releasing != NULL)
		server->releasing->prev = user;
	server->releasing = user;
	/* Closing runs behind whatever is still queued for the mailbox. */
	net_work_submit(server->net, user->queue, close_work, close_done,
			user);
	net_workq_destroy(&user->queue);
}

/* An IDLE session's wake-up: report changes now. */
static void
idle_sync_work(void *ctx)
{
	struct imap_cmd *cmd = ctx;
	struct imap_session *s = cmd->session;

	if (s->user->mbox != NULL && s->state == IMAP_STATE_SELECTED)
		imap_session_sync(s, s->user->mbox, &cmd->out, true);
}

static void
idle_sync_done(void *ctx)
{
	imap_session_cmd_done(ctx);
}

void
imap_user_idle_sync(struct imap_session *s)
{
	struct imap_cmd *cmd = xcalloc(1, sizeof(*cmd));

	cmd->session = s;
	sp_buf_init(&cmd->out);
	sp_buf_init(&cmd->tagged);
	s->busy = true;
	net_conn_pause_input(s->conn);
	net_work_submit(s->server->net, s->user->queue, idle_sync_work,
			idle_sync_done, cmd);
}

void
imap_user_notify(struct imap_user *user, struct imap_session *except)
{
	for (struct imap_session *s = user->sessions; s != NULL;
	     s = s->user_next) {
		if (s == except || s->closed || s->conn == NULL)
			continue;
		if (s->busy) {
			/* Its job may be entering IDLE: look again when it
			 * is done. */
			s->idle_sync_pending = true;
			continue;
		}
		if (s->input_mode == IMAP_INPUT_IDLE &&
		    s->state == IMAP_STATE_SELECTED)
			imap_user_idle_sync(s);
	}
}

/* Worker side, first job of the alias: open the mailbox, drain. */
void
imap_user_open(struct imap_user *user)
{
	const char *error;
	size_t drained = 0;

	if (account_mailbox_held(user->keys.mailbox_id)) {
		/* A restore is replacing the file: no handle on it until the
		 * swap is done (the sessions are being closed); the next
		 * login after it opens the new file. */
		store_mailbox_close(&user->mbox);
		user->open_error = STORE_ERR_TEMP;
		user->opened = false;
		return;
	}
	if (user->opened)
		return;
	user->opened = true;
	user->open_error = store_mailbox_open(
		user->server->data_dir, user->keys.mailbox_id,
		user->keys.mailbox_key, STORE_OPEN_CREATE, &user->mbox, &error);
	if (user->open_error != STORE_OK) {
		log_warn(NULL, "imap: cannot open a mailbox: %s", error);
		return;
	}
	if (user->quota > 0)
		store_mailbox_set_quota(user->mbox, user->quota);
	if (store_spool_drain(user->mbox, user->keys.public_key,
			      user->keys.secret_key, &drained,
			      &error) != STORE_OK)
		log_warn(NULL, "imap: spool drain failed: %s", error);
	/* Only a logged-in session holds the key, so the daily backup starts
	 * here; it runs on its own thread and returns at once. A domain may
	 * name its own bucket; when that cannot be read, no backup rather
	 * than one in the wrong bucket. */
	{
		struct account_db *adb = imap_account_db();
		char *bucket = NULL;

		if (adb != NULL &&
		    account_alias_backup_bucket(adb, user->keys.address,
						&bucket, &error) >= 0)
			(void)backup_maybe_daily(user->server->data_dir,
						 user->keys.mailbox_id,
						 user->keys.mailbox_key,
						 bucket);
		free(bucket);
	}
}

static void
drain_work(void *ctx)
{
	struct imap_user *user = ctx;
	const char *error;
	size_t drained = 0;

	if (user->mbox == NULL)
		return;
	if (store_spool_drain(user->mbox, user->keys.public_key,
			      user->keys.secret_key, &drained,
			      &error) != STORE_OK)
		log_warn(NULL, "imap: spool drain failed: %s", error);
}

static void
drain_done(void *ctx)
{
	struct imap_user *user = ctx;

	user->drain_queued = false;
	if (--user->refcount == 0) {
		/* Only the drain kept it: the sessions are gone. */
		user_release(user);
		return;
	}
	imap_user_notify(user, NULL);
	if (user->drain_again) {
		user->drain_again = false;
		imap_user_drain(user);
	}
}

void
imap_user_drain(struct imap_user *user)
{
	if (user->drain_queued) {
		user->drain_again = true;
		return;
	}
	user->drain_queued = true;
	user->refcount++;
	net_work_submit(user->server->net, user->queue, drain_work,
			drain_done, user);
}

void
imap_user_watch_spool(struct imap_user *user)
{
	struct imap_server *server = user->server;
	char *dir;

	if (server->inotify_fd < 0)
		return;
	dir = spool_dir(user);
	if (fs_mkdir_p(dir, 0700) < 0)
		log_warn(NULL, "imap: cannot create a spool directory: %s",
			 strerror(errno));
	user->watch = inotify_add_watch(server->inotify_fd, dir,
					IN_MOVED_TO | IN_CLOSE_WRITE);
	if (user->watch < 0)
		log_warn(NULL, "imap: cannot watch a spool directory: %s",
			 strerror(errno));
	free(dir);
}

void
imap_user_inotify(struct imap_server *server)
{
	char buf[4096] __attribute__((aligned(__alignof__(
		struct inotify_event))));
	ssize_t len;

	while ((len = read(server->inotify_fd, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p < buf + len;) {
			const struct inotify_event *ev = (const void *)p;

			for (struct imap_user *u = server->users; u != NULL;
			     u = u->next) {
				if (u->watch == ev->wd) {
					imap_user_drain(u);
					break;
				}
			}
			p += sizeof(*ev) + ev->len;
		}
	}
}

unsigned
imap_server_close_mailbox(struct imap_server *server, const char *mailbox_id,
			  bool force)
{
	unsigned told = 0;

	for (struct imap_user *u = server->users; u != NULL; u = u->next) {
		if (strcmp(u->keys.mailbox_id, mailbox_id) != 0)
			continue;
		for (struct imap_session *s = u->sessions; s != NULL;
		     s = s->user_next) {
			if (s->conn == NULL)
				continue;
			if (force) {
				net_conn_close(s->conn);
				continue;
			}
			if (net_conn_is_closing(s->conn))
				continue;
			/* A session whose job is running gets its answer
			 * dropped: nothing is written after the BYE. */
			net_conn_write_str(s->conn,
					   "* BYE The mailbox is being "
					   "replaced (restored from a backup, "
					   "or a new password)\r\n");
			net_conn_close_after_flush(s->conn);
			told++;
		}
	}
	return told;
}

bool
imap_server_mailbox_open(const struct imap_server *server,
			 const char *mailbox_id)
{
	const struct imap_user *lists[] = {server->users, server->releasing};

	for (size_t i = 0; i < SP_N_ELEMENTS(lists); i++) {
		for (const struct imap_user *u = lists[i]; u != NULL;
		     u = u->next) {
			if (strcmp(u->keys.mailbox_id, mailbox_id) == 0)
				return true;
		}
	}
	return false;
}
