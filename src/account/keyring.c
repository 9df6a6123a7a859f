/* The domains' DKIM/ARC signing keys, loaded once and shared by every
 * delivery (route's ARC seals) and every submission (the queue's DKIM
 * signatures).
 *
 * Reading a key from the control plane and parsing its PEM cost about as
 * much as the two RSA signatures it then makes (bench/smtp.py), so keys stay
 * loaded. An entry is re-read after ACCOUNT_KEYRING_TTL seconds so that
 * `sealpost domain rotate-dkim` reaches a running server without a restart.
 * Deliveries hold a reference while they sign; a replaced entry is freed by
 * whoever drops its last reference. */
#include "account-private.h"

#include <pthread.h>
#include <stdlib.h>
#include <strings.h>

#define ACCOUNT_KEYRING_TTL 60

struct account_keyring_ref {
	char *domain;
	struct account_signing_keys keys;
	struct account_dkim_key *rsa, *ed25519; /* owned; keys points here */
	time_t loaded;
	unsigned refs; /* the keyring's own reference counts as one */
};

struct account_keyring {
	pthread_mutex_t lock;
	struct account_keyring_ref **entries;
	size_t count;
};

struct account_keyring *
account_keyring_create(void)
{
	struct account_keyring *kr = xcalloc(1, sizeof(*kr));

	pthread_mutex_init(&kr->lock, NULL);
	return kr;
}

static void
ref_unref_locked(struct account_keyring_ref *k)
{
	SP_ASSERT(k->refs > 0);
	if (--k->refs > 0)
		return;
	free(k->domain);
	account_dkim_key_free(&k->rsa);
	account_dkim_key_free(&k->ed25519);
	free(k);
}

void
account_keyring_destroy(struct account_keyring **keyring)
{
	struct account_keyring *kr = *keyring;

	if (kr == NULL)
		return;
	for (size_t i = 0; i < kr->count; i++)
		ref_unref_locked(kr->entries[i]);
	free(kr->entries);
	pthread_mutex_destroy(&kr->lock);
	free(kr);
	*keyring = NULL;
}

void
account_keyring_release(struct account_keyring *kr,
			struct account_keyring_ref **ref)
{
	if (*ref == NULL)
		return;
	pthread_mutex_lock(&kr->lock);
	ref_unref_locked(*ref);
	pthread_mutex_unlock(&kr->lock);
	*ref = NULL;
}

static struct account_keyring_ref *
find_locked(struct account_keyring *kr, const char *domain, size_t *index_r)
{
	for (size_t i = 0; i < kr->count; i++) {
		if (strcasecmp(kr->entries[i]->domain, domain) == 0) {
			*index_r = i;
			return kr->entries[i];
		}
	}
	return NULL;
}

struct account_keyring_ref *
account_keyring_lookup(struct account_keyring *kr, const char *domain)
{
	struct account_keyring_ref *k;
	size_t i;

	pthread_mutex_lock(&kr->lock);
	k = find_locked(kr, domain, &i);
	if (k != NULL && clock_now() - k->loaded >= 0 &&
	    clock_now() - k->loaded < ACCOUNT_KEYRING_TTL)
		k->refs++;
	else
		k = NULL;
	pthread_mutex_unlock(&kr->lock);
	return k;
}

/* The domain's key of one type, making the keys of a domain from before
 * keys existed. 1, 0 none, -1 error. */
static int
keyring_read(struct account_db *db, const char *domain,
	     enum mailauth_key_type type, struct account_dkim_key **key_r,
	     const char **error_r)
{
	int ret = account_dkim_key_get(db, domain, type, key_r, error_r);

	if (ret == 0 && account_dkim_generate(db, domain, false, error_r) ==
				ACCOUNT_OK)
		ret = account_dkim_key_get(db, domain, type, key_r, error_r);
	return ret;
}

int
account_keyring_load(struct account_keyring *kr, struct account_db *db,
		     const char *domain, struct account_keyring_ref **ref_r,
		     const char **error_r)
{
	struct account_domain *dom = NULL;
	struct account_keyring_ref *k;
	size_t i;
	int ret;

	*ref_r = NULL;
	/* Loaded outside the lock: a slow control plane must not stall the
	 * other deliveries. Two threads may both load; the later one wins. */
	ret = account_domain_get(db, domain, &dom, error_r);
	if (ret <= 0) {
		if (ret == 0)
			*error_r = "no such domain";
		return ret;
	}
	k = xcalloc(1, sizeof(*k));
	k->domain = xstrdup(domain);
	k->keys.ed25519_enabled = dom->dkim_ed25519;
	account_domain_free(&dom);
	ret = keyring_read(db, domain, MAILAUTH_KEY_RSA, &k->rsa, error_r);
	if (ret > 0 && keyring_read(db, domain, MAILAUTH_KEY_ED25519,
				    &k->ed25519, error_r) < 0)
		ret = -1;
	if (ret <= 0) {
		if (ret == 0)
			*error_r = "the domain has no signing key";
		account_dkim_key_free(&k->rsa);
		free(k->domain);
		free(k);
		return ret;
	}
	k->keys.rsa = k->rsa;
	k->keys.ed25519 = k->ed25519;
	k->loaded = clock_now();
	k->refs = 2; /* the keyring's and the caller's */
	pthread_mutex_lock(&kr->lock);
	if (find_locked(kr, domain, &i) != NULL) {
		ref_unref_locked(kr->entries[i]);
		kr->entries[i] = k;
	} else {
		kr->entries = xrealloc(kr->entries, (kr->count + 1) *
							    sizeof(*kr->entries));
		kr->entries[kr->count++] = k;
	}
	pthread_mutex_unlock(&kr->lock);
	*ref_r = k;
	return 1;
}

const struct account_signing_keys *
account_keyring_keys(const struct account_keyring_ref *ref)
{
	return &ref->keys;
}
