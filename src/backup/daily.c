/* The daily backup: started after a login, run on a thread of its own so
 * that neither the session nor other users wait for it. */
#include "backup-private.h"

#include "crypto/crypto.h"
#include "store/store.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct daily_job {
	struct daily_job *next;
	pthread_t thread;
	char mailbox_id[STORE_MAILBOX_ID_BUF];
	char *data_dir;
	char *bucket;
	struct crypto_key *key;
	bool done;
};

/* When this process last made sure of a mailbox's backup. */
struct daily_seen {
	struct daily_seen *next;
	char mailbox_id[STORE_MAILBOX_ID_BUF];
	time_t checked;
};

static pthread_mutex_t daily_lock = PTHREAD_MUTEX_INITIALIZER;
static struct daily_job *daily_jobs;
static struct daily_seen *daily_seen;

static struct daily_seen *
daily_seen_find(const char *mailbox_id)
{
	for (struct daily_seen *s = daily_seen; s != NULL; s = s->next) {
		if (strcmp(s->mailbox_id, mailbox_id) == 0)
			return s;
	}
	return NULL;
}

static void
daily_mark_checked(const char *mailbox_id, time_t when)
{
	struct daily_seen *s;

	pthread_mutex_lock(&daily_lock);
	if ((s = daily_seen_find(mailbox_id)) == NULL) {
		s = xcalloc(1, sizeof(*s));
		str_copy(s->mailbox_id, mailbox_id, sizeof(s->mailbox_id));
		s->next = daily_seen;
		daily_seen = s;
	}
	s->checked = when;
	pthread_mutex_unlock(&daily_lock);
}

/* Joins the threads that have finished; with daily_lock held. */
static void
daily_reap(void)
{
	struct daily_job **jp = &daily_jobs;

	while (*jp != NULL) {
		struct daily_job *job = *jp;

		if (!job->done) {
			jp = &job->next;
			continue;
		}
		*jp = job->next;
		pthread_join(job->thread, NULL);
		free(job->data_dir);
		free(job->bucket);
		free(job);
	}
}

static void *
daily_run(void *ctx)
{
	struct daily_job *job = ctx;
	struct backup_target target;
	struct backup_version *versions = NULL;
	struct backup_result result;
	size_t count = 0;
	const char *error;
	time_t now = clock_now();
	enum backup_error err;

	err = backup_target_from_settings(job->bucket, &target, &error);
	if (err == BACKUP_OK)
		err = backup_list(&target, job->mailbox_id, &versions, &count,
				  &error);
	if (err == BACKUP_OK && count > 0 &&
	    now - versions[0].created < BACKUP_DAILY_SECONDS) {
		/* Recent enough: look again when it is a day old. */
		daily_mark_checked(job->mailbox_id, versions[0].created);
	} else if (err == BACKUP_OK) {
		err = backup_mailbox(&target, job->data_dir, job->mailbox_id,
				     job->key, &result, &error);
		if (err == BACKUP_OK) {
			daily_mark_checked(job->mailbox_id, now);
			log_info(NULL,
				 "backup: daily backup %s (%llu bytes, "
				 "%.1f s)",
				 result.uploaded ? "uploaded" : "unchanged",
				 (unsigned long long)result.version.size,
				 result.copy_seconds + result.verify_seconds +
					 result.upload_seconds);
			backup_result_clear(&result);
		}
	}
	if (err != BACKUP_OK)
		log_warn(NULL, "backup: daily backup failed: %s", error);
	backup_versions_free(&versions, count);
	backup_target_clear(&target);
	crypto_key_destroy(&job->key);
	pthread_mutex_lock(&daily_lock);
	job->done = true;
	pthread_mutex_unlock(&daily_lock);
	return NULL;
}

int
backup_maybe_daily(const char *data_dir, const char *mailbox_id,
		   const struct crypto_key *key, const char *bucket)
{
	struct backup_target target;
	struct daily_seen *seen;
	struct daily_job *job;
	const char *error;
	size_t running = 0;
	time_t now = clock_now();

	if (atomic_load(&backup_s3_abort) ||
	    strlen(mailbox_id) != STORE_MAILBOX_ID_BUF - 1)
		return 0;
	/* Not configured is not an error for a login. */
	if (backup_target_from_settings(bucket, &target, &error) !=
	    BACKUP_OK)
		return 0;
	backup_target_clear(&target);

	pthread_mutex_lock(&daily_lock);
	daily_reap();
	seen = daily_seen_find(mailbox_id);
	if (seen != NULL && now - seen->checked < BACKUP_DAILY_SECONDS) {
		pthread_mutex_unlock(&daily_lock);
		return 0;
	}
	for (job = daily_jobs; job != NULL; job = job->next) {
		if (strcmp(job->mailbox_id, mailbox_id) == 0) {
			pthread_mutex_unlock(&daily_lock);
			return 0;
		}
		running++;
	}
	if (running >= BACKUP_DAILY_MAX) {
		pthread_mutex_unlock(&daily_lock);
		return 0;
	}
	job = xcalloc(1, sizeof(*job));
	str_copy(job->mailbox_id, mailbox_id, sizeof(job->mailbox_id));
	job->data_dir = xstrdup(data_dir);
	job->bucket = bucket != NULL ? xstrdup(bucket) : NULL;
	job->key = crypto_key_dup(key);
	if (pthread_create(&job->thread, NULL, daily_run, job) != 0) {
		pthread_mutex_unlock(&daily_lock);
		log_warn(NULL, "backup: cannot start a thread");
		crypto_key_destroy(&job->key);
		free(job->data_dir);
		free(job->bucket);
		free(job);
		return 0;
	}
	job->next = daily_jobs;
	daily_jobs = job;
	pthread_mutex_unlock(&daily_lock);
	return 1;
}

void
backup_daily_shutdown(void)
{
	struct daily_job *jobs;

	atomic_store(&backup_s3_abort, true);
	pthread_mutex_lock(&daily_lock);
	jobs = daily_jobs;
	daily_jobs = NULL;
	pthread_mutex_unlock(&daily_lock);
	/* A copy in progress finishes (SQLite cannot be interrupted from
	 * here without the handle); a transfer stops at its next progress
	 * call. */
	while (jobs != NULL) {
		struct daily_job *next = jobs->next;

		pthread_join(jobs->thread, NULL);
		free(jobs->data_dir);
		free(jobs->bucket);
		free(jobs);
		jobs = next;
	}
	pthread_mutex_lock(&daily_lock);
	while (daily_seen != NULL) {
		struct daily_seen *next = daily_seen->next;

		free(daily_seen);
		daily_seen = next;
	}
	pthread_mutex_unlock(&daily_lock);
}
