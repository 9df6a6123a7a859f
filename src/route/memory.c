/*
 * The "already accepted" memory: keyed hashes with a fixed time to live.
 *
 * Every entry lives ROUTE_ACCEPTED_TTL seconds, so insertion order is
 * expiry order: a FIFO list gives the oldest entry for free, and a chained
 * hash table finds a key. Past max_entries the oldest entries go first
 * (losing one only risks a duplicate on a retry, never a loss).
 */
#include "route-private.h"

#include "crypto/crypto.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define MEMORY_BUCKETS 65536

struct memory_entry {
	struct memory_entry *hash_next;
	struct memory_entry *fifo_next;
	time_t expires;
	unsigned char key[32];
};

struct route_memory {
	pthread_mutex_t lock;
	struct crypto_key *hash_key;
	struct memory_entry *buckets[MEMORY_BUCKETS];
	struct memory_entry *oldest, *newest;
	size_t count, max_entries;
};

struct route_memory *
route_memory_create(size_t max_entries)
{
	struct route_memory *m = xcalloc(1, sizeof(*m));

	pthread_mutex_init(&m->lock, NULL);
	m->hash_key = crypto_key_create();
	crypto_key_random(m->hash_key);
	m->max_entries = max_entries != 0 ? max_entries : 1;
	return m;
}

void
route_memory_destroy(struct route_memory **memory)
{
	struct route_memory *m = *memory;
	struct memory_entry *e, *next;

	if (m == NULL)
		return;
	for (e = m->oldest; e != NULL; e = next) {
		next = e->fifo_next;
		free(e);
	}
	crypto_key_destroy(&m->hash_key);
	pthread_mutex_destroy(&m->lock);
	free(m);
	*memory = NULL;
}

void
route_memory_key(const struct route_memory *memory,
		 const unsigned char fingerprint[32], const char *target,
		 unsigned char key_r[32])
{
	struct sp_buf buf;

	sp_buf_init(&buf);
	sp_buf_append(&buf, fingerprint, 32);
	sp_buf_append_str(&buf, target);
	crypto_keyed_hash(memory->hash_key, buf.data, buf.len, key_r);
	sp_buf_deinit(&buf);
}

static size_t
bucket_of(const unsigned char key[32])
{
	return ((size_t)key[0] | (size_t)key[1] << 8) % MEMORY_BUCKETS;
}

static void
unlink_oldest(struct route_memory *m)
{
	struct memory_entry *e = m->oldest, **pp;

	for (pp = &m->buckets[bucket_of(e->key)]; *pp != e;
	     pp = &(*pp)->hash_next)
		;
	*pp = e->hash_next;
	m->oldest = e->fifo_next;
	if (m->oldest == NULL)
		m->newest = NULL;
	m->count--;
	free(e);
}

static void
expire(struct route_memory *m, time_t now)
{
	while (m->oldest != NULL && m->oldest->expires <= now)
		unlink_oldest(m);
}

bool
route_memory_has(struct route_memory *m, const unsigned char key[32])
{
	struct memory_entry *e;
	bool found = false;

	pthread_mutex_lock(&m->lock);
	expire(m, clock_now());
	for (e = m->buckets[bucket_of(key)]; e != NULL; e = e->hash_next) {
		if (memcmp(e->key, key, 32) == 0) {
			found = true;
			break;
		}
	}
	pthread_mutex_unlock(&m->lock);
	return found;
}

void
route_memory_add(struct route_memory *m, const unsigned char key[32])
{
	struct memory_entry *e = xcalloc(1, sizeof(*e));
	size_t b = bucket_of(key);

	memcpy(e->key, key, 32);
	pthread_mutex_lock(&m->lock);
	e->expires = clock_now() + ROUTE_ACCEPTED_TTL;
	expire(m, clock_now());
	while (m->count >= m->max_entries)
		unlink_oldest(m);
	e->hash_next = m->buckets[b];
	m->buckets[b] = e;
	if (m->newest != NULL)
		m->newest->fifo_next = e;
	else
		m->oldest = e;
	m->newest = e;
	m->count++;
	pthread_mutex_unlock(&m->lock);
}

size_t
route_memory_count(struct route_memory *m)
{
	size_t n;

	pthread_mutex_lock(&m->lock);
	expire(m, clock_now());
	n = m->count;
	pthread_mutex_unlock(&m->lock);
	return n;
}
