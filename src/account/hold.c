/* Mailboxes held shut while a restore swaps their file (see account.h).
 * A short list under a mutex: there is one entry per restore in
 * progress, so a linear search is all it needs. */
#include "account-private.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct account_hold {
	struct account_hold *next;
	char mailbox_id[ACCOUNT_MAILBOX_ID_BUF];
	struct timespec until;
};

static pthread_mutex_t hold_lock = PTHREAD_MUTEX_INITIALIZER;
static struct account_hold *holds;

static bool
hold_expired(const struct account_hold *h, const struct timespec *now)
{
	return now->tv_sec > h->until.tv_sec ||
	       (now->tv_sec == h->until.tv_sec &&
		now->tv_nsec >= h->until.tv_nsec);
}

/* Drops expired entries and `mailbox_id` (may be NULL); hold_lock held. */
static void
hold_prune(const char *mailbox_id)
{
	struct account_hold **hp = &holds;
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	while (*hp != NULL) {
		struct account_hold *h = *hp;

		if (hold_expired(h, &now) ||
		    (mailbox_id != NULL &&
		     strcmp(h->mailbox_id, mailbox_id) == 0)) {
			*hp = h->next;
			free(h);
		} else {
			hp = &h->next;
		}
	}
}

void
account_mailbox_hold(const char *mailbox_id, unsigned seconds)
{
	struct account_hold *h = xcalloc(1, sizeof(*h));

	str_copy(h->mailbox_id, mailbox_id, sizeof(h->mailbox_id));
	clock_gettime(CLOCK_MONOTONIC, &h->until);
	h->until.tv_sec += (time_t)seconds;
	pthread_mutex_lock(&hold_lock);
	hold_prune(mailbox_id);
	h->next = holds;
	holds = h;
	pthread_mutex_unlock(&hold_lock);
}

void
account_mailbox_unhold(const char *mailbox_id)
{
	pthread_mutex_lock(&hold_lock);
	hold_prune(mailbox_id);
	pthread_mutex_unlock(&hold_lock);
}

bool
account_mailbox_held(const char *mailbox_id)
{
	bool held = false;

	pthread_mutex_lock(&hold_lock);
	hold_prune(NULL);
	for (const struct account_hold *h = holds; h != NULL; h = h->next) {
		if (strcmp(h->mailbox_id, mailbox_id) == 0) {
			held = true;
			break;
		}
	}
	pthread_mutex_unlock(&hold_lock);
	return held;
}
