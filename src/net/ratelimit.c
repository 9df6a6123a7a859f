/* Fixed-window event counters keyed by a keyed hash of the key (failed
 * logins per IP and per alias), so no address sits in the table. */
#include "net.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define RL_BUCKETS 256
#define RL_HASH_LEN 16

struct rl_entry {
	struct rl_entry *next;
	unsigned char hash[RL_HASH_LEN];
	time_t window_start;
	unsigned count;
};

struct net_ratelimit {
	unsigned max_events;
	unsigned window;
	unsigned char key[crypto_generichash_KEYBYTES];
	struct rl_entry *buckets[RL_BUCKETS];
	unsigned entries;
};

struct net_ratelimit *
net_ratelimit_create(unsigned max_events, unsigned window_seconds)
{
	struct net_ratelimit *rl = xcalloc(1, sizeof(*rl));

	rl->max_events = max_events;
	rl->window = window_seconds != 0 ? window_seconds : 1;
	random_bytes(rl->key, sizeof(rl->key));
	return rl;
}

void
net_ratelimit_destroy(struct net_ratelimit **_rl)
{
	struct net_ratelimit *rl = *_rl;

	if (rl == NULL)
		return;
	*_rl = NULL;
	for (size_t i = 0; i < RL_BUCKETS; i++) {
		struct rl_entry *e, *next;

		for (e = rl->buckets[i]; e != NULL; e = next) {
			next = e->next;
			free(e);
		}
	}
	sodium_memzero(rl->key, sizeof(rl->key));
	free(rl);
}

/* Drops entries whose window is over; run when the table grows. */
static void
rl_sweep(struct net_ratelimit *rl, time_t now)
{
	for (size_t i = 0; i < RL_BUCKETS; i++) {
		struct rl_entry **ep = &rl->buckets[i], *e;

		while ((e = *ep) != NULL) {
			if (now - e->window_start >= (time_t)rl->window) {
				*ep = e->next;
				free(e);
				rl->entries--;
			} else {
				ep = &e->next;
			}
		}
	}
}

static struct rl_entry *
rl_find(struct net_ratelimit *rl, const char *key, bool create)
{
	unsigned char hash[RL_HASH_LEN];
	struct rl_entry *e;
	time_t now = clock_now();
	unsigned b;

	crypto_generichash(hash, sizeof(hash), (const unsigned char *)key,
			   strlen(key), rl->key, sizeof(rl->key));
	b = hash[0] | (unsigned)hash[1] << 8;
	b %= RL_BUCKETS;
	for (e = rl->buckets[b]; e != NULL; e = e->next) {
		if (memcmp(e->hash, hash, sizeof(hash)) == 0)
			break;
	}
	if (e != NULL && now - e->window_start >= (time_t)rl->window) {
		e->window_start = now;
		e->count = 0;
	}
	if (e == NULL && create) {
		if (rl->entries > 4096)
			rl_sweep(rl, now);
		e = xcalloc(1, sizeof(*e));
		memcpy(e->hash, hash, sizeof(hash));
		e->window_start = now;
		e->next = rl->buckets[b];
		rl->buckets[b] = e;
		rl->entries++;
	}
	return e;
}

bool
net_ratelimit_exceeded(struct net_ratelimit *rl, const char *key)
{
	struct rl_entry *e;

	if (rl->max_events == 0)
		return false;
	e = rl_find(rl, key, false);
	return e != NULL && e->count >= rl->max_events;
}

void
net_ratelimit_hit(struct net_ratelimit *rl, const char *key)
{
	struct rl_entry *e;

	if (rl->max_events == 0)
		return;
	e = rl_find(rl, key, true);
	e->count++;
}
