/* The domains' ARC signing keys, loaded once and shared by every delivery.
 *
 * Reading a key from the control plane and parsing its PEM cost about as
 * much as the two RSA signatures it then makes (bench/smtp.py), so keys stay
 * loaded. An entry is re-read after ROUTE_KEY_TTL seconds so that
 * `sealpost domain rotate-dkim` reaches a running server without a restart.
 * Deliveries hold a reference while they sign; a replaced entry is freed by
 * whoever drops its last reference. */
#include "route-private.h"

#include <stdlib.h>
#include <strings.h>

#define ROUTE_KEY_TTL 60

struct route_key {
	char *domain;
	struct account_dkim_key *key;
	time_t loaded;
	unsigned refs;	 /* the cache's own reference counts as one */
};

static void
key_unref_locked(struct route_key *k)
{
	SP_ASSERT(k->refs > 0);
	if (--k->refs > 0)
		return;
	free(k->domain);
	account_dkim_key_free(&k->key);
	free(k);
}

void
route_keys_release(struct route *r, struct route_key **key)
{
	if (*key == NULL)
		return;
	pthread_mutex_lock(&r->keys_lock);
	key_unref_locked(*key);
	pthread_mutex_unlock(&r->keys_lock);
	*key = NULL;
}

void
route_keys_deinit(struct route *r)
{
	for (size_t i = 0; i < r->key_count; i++)
		key_unref_locked(r->keys[i]);
	free(r->keys);
	r->keys = NULL;
	r->key_count = 0;
	pthread_mutex_destroy(&r->keys_lock);
}

/* A fresh entry for `domain` with a reference for the caller, or NULL. */
static struct route_key *
keys_find_locked(struct route *r, const char *domain, size_t *index_r)
{
	for (size_t i = 0; i < r->key_count; i++) {
		if (strcasecmp(r->keys[i]->domain, domain) == 0) {
			*index_r = i;
			return r->keys[i];
		}
	}
	return NULL;
}

/* Reads the domain's RSA key, making one for a domain from before keys
 * existed. NULL when there is none or the control plane fails. */
static struct account_dkim_key *
keys_load(struct route *r, const char *domain)
{
	struct account_dkim_key *key = NULL;
	struct account_db *db = route_db_get(r);
	const char *error = NULL;
	int ret;

	if (db == NULL)
		return NULL;
	ret = account_dkim_key_get(db, domain, MAILAUTH_KEY_RSA, &key, &error);
	if (ret == 0 && account_dkim_generate(db, domain, false, &error) ==
				ACCOUNT_OK)
		ret = account_dkim_key_get(db, domain, MAILAUTH_KEY_RSA, &key,
					   &error);
	if (ret < 0)
		account_db_close(&db);
	else
		route_db_put(r, db);
	if (ret <= 0) {
		log_warn(NULL, "route: no ARC key: %s",
			 error != NULL ? error : "none");
		return NULL;
	}
	return key;
}

struct route_key *
route_keys_get(struct route *r, const char *domain)
{
	struct account_dkim_key *loaded;
	struct route_key *k;
	size_t i;

	pthread_mutex_lock(&r->keys_lock);
	k = keys_find_locked(r, domain, &i);
	if (k != NULL && clock_now() - k->loaded < ROUTE_KEY_TTL) {
		k->refs++;
		pthread_mutex_unlock(&r->keys_lock);
		return k;
	}
	pthread_mutex_unlock(&r->keys_lock);

	/* Loaded outside the lock: a slow control plane must not stall the
	 * other deliveries. Two threads may both load; the later one wins. */
	loaded = keys_load(r, domain);
	if (loaded == NULL)
		return NULL;
	k = xcalloc(1, sizeof(*k));
	k->domain = xstrdup(domain);
	k->key = loaded;
	k->loaded = clock_now();
	k->refs = 2; /* the cache's and the caller's */
	pthread_mutex_lock(&r->keys_lock);
	if (keys_find_locked(r, domain, &i) != NULL) {
		key_unref_locked(r->keys[i]);
		r->keys[i] = k;
	} else {
		r->keys = xrealloc(r->keys, (r->key_count + 1) *
						    sizeof(*r->keys));
		r->keys[r->key_count++] = k;
	}
	pthread_mutex_unlock(&r->keys_lock);
	return k;
}

const struct account_dkim_key *
route_key_dkim(const struct route_key *key)
{
	return key->key;
}
