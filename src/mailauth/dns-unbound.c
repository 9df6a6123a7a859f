/* The production resolver: libunbound, one context shared by all threads
 * (ub_resolve is thread-safe; the context caches answers), behind a small
 * answer cache of our own.
 *
 * Why a second cache: libunbound's synchronous ub_resolve() sets up a
 * complete worker (event base, outside network, random state seeded
 * through SHA-256, module environment) for every call and tears it down
 * afterwards, even when the answer comes from its own cache. Profiling
 * the forward path (docs/performance.md) put 43% of the MX's CPU there:
 * each forwarded message asks the same few SPF, DMARC and DKIM-key names.
 * So answers are kept here, in memory, for exactly the TTL libunbound
 * reports (res->ttl: the record's TTL, or the negative TTL of the zone's
 * SOA for NXDOMAIN and NODATA, counting down while unbound holds them),
 * never longer than CACHE_MAX_TTL, never when the TTL is 0, and never a
 * temporary failure or a DNSSEC-bogus answer. A record is therefore never
 * served for longer than unbound itself would serve it from its cache. */
#include "mailauth/mailauth-private.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <unbound.h>

/* Bounds of the answer cache: entries at most (a flood of distinct names,
 * such as an SPF include chain of a hostile domain, cannot grow it past
 * this), seconds at most, and the largest answer kept (an oversized TXT
 * set is asked again rather than held). */
#define CACHE_BUCKETS	   1024
#define CACHE_MAX_ENTRIES  4096
#define CACHE_MAX_TTL	   3600
#define CACHE_MAX_BYTES	   16384

#define RR_A	 1
#define RR_PTR	 12
#define RR_MX	 15
#define RR_TXT	 16
#define RR_AAAA	 28
#define CLASS_IN 1

/* A wire-format name (uncompressed: libunbound expands rdata names) to
 * text without the trailing dot. NULL when malformed. */
static char *
wire_name(const unsigned char *p, size_t len)
{
	struct sp_buf out;
	size_t i = 0;

	sp_buf_init(&out);
	while (i < len) {
		size_t n = p[i++];

		if (n == 0) {
			if (out.len == 0)
				sp_buf_append(&out, ".", 1);
			return sp_buf_steal(&out, NULL);
		}
		if (n > 63 || i + n > len)
			break;
		if (out.len > 0)
			sp_buf_append(&out, ".", 1);
		sp_buf_append(&out, p + i, n);
		i += n;
	}
	sp_buf_deinit(&out);
	return NULL;
}

/* ---- the answer cache ---------------------------------------------------- */

struct cache_entry {
	struct cache_entry *next; /* in its bucket */
	int type;
	char *name; /* lower case */
	enum mailauth_dns_status status;
	struct mailauth_dns_reply reply;
	time_t expires; /* CLOCK_MONOTONIC seconds */
};

struct unbound {
	struct ub_ctx *ctx;
	pthread_mutex_t lock;
	struct cache_entry *buckets[CACHE_BUCKETS];
	size_t count;
	unsigned long hits;
};

static time_t
monotonic_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

/* Names compare without regard to ASCII case (RFC 4343). */
static char *
name_key(const char *name)
{
	char *key = xstrdup(name);

	for (char *p = key; *p != '\0'; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	return key;
}

static size_t
bucket_of(const char *key, int type)
{
	uint32_t h = 2166136261u ^ (uint32_t)type; /* FNV-1a */

	for (const unsigned char *p = (const unsigned char *)key; *p != 0;
	     p++)
		h = (h ^ *p) * 16777619u;
	return h % CACHE_BUCKETS;
}

static void
reply_copy(const struct mailauth_dns_reply *src,
	   struct mailauth_dns_reply *dst)
{
	memset(dst, 0, sizeof(*dst));
	dst->count = src->count;
	if (src->strings != NULL) {
		dst->strings = xcalloc(src->count, sizeof(char *));
		for (size_t i = 0; i < src->count; i++)
			dst->strings[i] = xstrdup(src->strings[i]);
	}
	if (src->mx_prefs != NULL) {
		dst->mx_prefs = xcalloc(src->count, sizeof(*dst->mx_prefs));
		memcpy(dst->mx_prefs, src->mx_prefs,
		       src->count * sizeof(*dst->mx_prefs));
	}
	if (src->ips != NULL) {
		dst->ips = xcalloc(src->count, sizeof(*dst->ips));
		memcpy(dst->ips, src->ips, src->count * sizeof(*dst->ips));
	}
}

static size_t
reply_bytes(const struct mailauth_dns_reply *r)
{
	size_t n = r->count * (sizeof(char *) + sizeof(*r->mx_prefs) +
			       sizeof(*r->ips));

	for (size_t i = 0; r->strings != NULL && i < r->count; i++)
		n += strlen(r->strings[i]) + 1;
	return n;
}

static void
entry_free(struct cache_entry *e)
{
	mailauth_dns_reply_clear(&e->reply);
	free(e->name);
	free(e);
}

/* Drops expired entries, or every entry when `all`. Under the lock. */
static void
cache_sweep(struct unbound *u, time_t now, bool all)
{
	for (size_t b = 0; b < CACHE_BUCKETS; b++) {
		struct cache_entry **pp = &u->buckets[b];

		while (*pp != NULL) {
			struct cache_entry *e = *pp;

			if (all || e->expires <= now) {
				*pp = e->next;
				entry_free(e);
				u->count--;
			} else {
				pp = &e->next;
			}
		}
	}
}

/* 1 and a copy in *reply_r, *status_r when a live answer is kept. */
static int
cache_get(struct unbound *u, const char *key, int type,
	  enum mailauth_dns_status *status_r,
	  struct mailauth_dns_reply *reply_r)
{
	time_t now = monotonic_now();
	int found = 0;

	pthread_mutex_lock(&u->lock);
	for (struct cache_entry *e = u->buckets[bucket_of(key, type)];
	     e != NULL; e = e->next) {
		if (e->type == type && e->expires > now &&
		    strcmp(e->name, key) == 0) {
			*status_r = e->status;
			reply_copy(&e->reply, reply_r);
			u->hits++;
			found = 1;
			break;
		}
	}
	pthread_mutex_unlock(&u->lock);
	return found;
}

static void
cache_put(struct unbound *u, const char *key, int type,
	  enum mailauth_dns_status status,
	  const struct mailauth_dns_reply *reply, int ttl)
{
	time_t now = monotonic_now();
	struct cache_entry *e, **pp;
	size_t b = bucket_of(key, type);

	if (ttl <= 0 || reply_bytes(reply) > CACHE_MAX_BYTES)
		return;
	if (ttl > CACHE_MAX_TTL)
		ttl = CACHE_MAX_TTL;
	e = xcalloc(1, sizeof(*e));
	e->type = type;
	e->name = xstrdup(key);
	e->status = status;
	reply_copy(reply, &e->reply);
	e->expires = now + ttl;
	pthread_mutex_lock(&u->lock);
	/* Another thread may have asked the same name meanwhile: replace. */
	for (pp = &u->buckets[b]; *pp != NULL; pp = &(*pp)->next) {
		if ((*pp)->type == type && strcmp((*pp)->name, key) == 0) {
			struct cache_entry *old = *pp;

			e->next = old->next;
			*pp = e;
			entry_free(old);
			pthread_mutex_unlock(&u->lock);
			return;
		}
	}
	if (u->count >= CACHE_MAX_ENTRIES) {
		cache_sweep(u, now, false);
		/* All live: start over rather than track recency; the cost
		 * is one round of look-ups through libunbound's cache. */
		if (u->count >= CACHE_MAX_ENTRIES)
			cache_sweep(u, now, true);
	}
	e->next = u->buckets[b];
	u->buckets[b] = e;
	u->count++;
	pthread_mutex_unlock(&u->lock);
}

/* ---- queries ------------------------------------------------------------- */

static enum mailauth_dns_status
resolve(struct ub_ctx *ctx, const char *name, int type,
	struct mailauth_dns_reply *reply_r, int *ttl_r)
{
	struct ub_result *res = NULL;
	enum mailauth_dns_status status;

	*ttl_r = 0;
	if (ub_resolve(ctx, name, type, CLASS_IN, &res) != 0 || res == NULL)
		return MAILAUTH_DNS_TEMPFAIL;
	if (!res->bogus)
		*ttl_r = res->ttl;
	if (res->nxdomain) {
		status = MAILAUTH_DNS_NXDOMAIN;
		goto out;
	}
	if (res->rcode != 0) {
		status = MAILAUTH_DNS_TEMPFAIL; /* SERVFAIL, REFUSED */
		goto out;
	}
	if (!res->havedata || res->bogus) {
		status = res->bogus ? MAILAUTH_DNS_TEMPFAIL
				    : MAILAUTH_DNS_NODATA;
		goto out;
	}
	for (size_t i = 0; res->data[i] != NULL; i++) {
		const unsigned char *d = (const unsigned char *)res->data[i];
		size_t len = (size_t)res->len[i], n = reply_r->count;
		char *text = NULL;

		switch (type) {
		case RR_A:
		case RR_AAAA:
			if (len != (type == RR_A ? 4u : 16u))
				continue;
			reply_r->ips = xrealloc(
				reply_r->ips, (n + 1) * sizeof(*reply_r->ips));
			memset(&reply_r->ips[n], 0, sizeof(reply_r->ips[n]));
			reply_r->ips[n].family =
				type == RR_A ? AF_INET : AF_INET6;
			memcpy(reply_r->ips[n].addr, d, len);
			reply_r->count++;
			continue;
		case RR_TXT: {
			struct sp_buf buf;
			size_t j = 0;

			/* One record: several character-strings, joined. */
			sp_buf_init(&buf);
			while (j < len) {
				size_t sl = d[j++];

				if (j + sl > len)
					break;
				sp_buf_append(&buf, d + j, sl);
				j += sl;
			}
			text = sp_buf_steal(&buf, NULL);
			break;
		}
		case RR_MX:
			if (len < 3)
				continue;
			text = wire_name(d + 2, len - 2);
			if (text == NULL)
				continue;
			reply_r->mx_prefs =
				xrealloc(reply_r->mx_prefs,
					 (n + 1) * sizeof(*reply_r->mx_prefs));
			reply_r->mx_prefs[n] = (unsigned int)(d[0] << 8 | d[1]);
			break;
		case RR_PTR:
			text = wire_name(d, len);
			if (text == NULL)
				continue;
			break;
		}
		reply_r->strings =
			xrealloc(reply_r->strings, (n + 1) * sizeof(char *));
		reply_r->strings[n] = text;
		reply_r->count++;
	}
	status = reply_r->count > 0 ? MAILAUTH_DNS_OK : MAILAUTH_DNS_NODATA;
out:
	ub_resolve_free(res);
	if (status != MAILAUTH_DNS_OK)
		mailauth_dns_reply_clear(reply_r);
	return status;
}

static enum mailauth_dns_status
unbound_query(void *context, const char *name, int type,
	      struct mailauth_dns_reply *reply_r)
{
	struct unbound *u = context;
	enum mailauth_dns_status status;
	char *key = name_key(name);
	int ttl;

	if (cache_get(u, key, type, &status, reply_r)) {
		free(key);
		return status;
	}
	status = resolve(u->ctx, name, type, reply_r, &ttl);
	if (status != MAILAUTH_DNS_TEMPFAIL)
		cache_put(u, key, type, status, reply_r, ttl);
	free(key);
	return status;
}

static enum mailauth_dns_status
unbound_txt(void *context, const char *name, struct mailauth_dns_reply *r)
{
	return unbound_query(context, name, RR_TXT, r);
}

static enum mailauth_dns_status
unbound_addr(void *context, const char *name, int family,
	     struct mailauth_dns_reply *r)
{
	return unbound_query(context, name, family == AF_INET ? RR_A : RR_AAAA,
			     r);
}

static enum mailauth_dns_status
unbound_mx(void *context, const char *name, struct mailauth_dns_reply *r)
{
	return unbound_query(context, name, RR_MX, r);
}

static enum mailauth_dns_status
unbound_ptr(void *context, const struct mailauth_ip *ip,
	    struct mailauth_dns_reply *r)
{
	struct sp_buf name;
	enum mailauth_dns_status st;

	sp_buf_init(&name);
	if (ip->family == AF_INET) {
		sp_buf_printf(&name, "%u.%u.%u.%u.in-addr.arpa", ip->addr[3],
			      ip->addr[2], ip->addr[1], ip->addr[0]);
	} else {
		for (int i = 15; i >= 0; i--)
			sp_buf_printf(&name, "%x.%x.", ip->addr[i] & 0xf,
				      ip->addr[i] >> 4);
		sp_buf_append_str(&name, "ip6.arpa");
	}
	st = unbound_query(context, name.data, RR_PTR, r);
	sp_buf_deinit(&name);
	return st;
}

static void
unbound_destroy(void *context)
{
	struct unbound *u = context;

	cache_sweep(u, 0, true);
	pthread_mutex_destroy(&u->lock);
	ub_ctx_delete(u->ctx);
	free(u);
}

static const struct mailauth_dns_vfuncs unbound_vfuncs = {
	.txt = unbound_txt,
	.addr = unbound_addr,
	.mx = unbound_mx,
	.ptr = unbound_ptr,
	.destroy = unbound_destroy,
};

struct mailauth_dns *
mailauth_dns_unbound_create(const char *forwarder, const char **error_r)
{
	struct ub_ctx *ctx = ub_ctx_create();
	struct mailauth_dns *dns;
	struct unbound *u;

	if (ctx == NULL) {
		*error_r = "ub_ctx_create failed";
		return NULL;
	}
	/* A forwarder on loopback (a local resolver, or the tests' server)
	 * must be reachable; unbound refuses localhost by default. */
	(void)ub_ctx_set_option(ctx, "do-not-query-localhost:", "no");
	if (forwarder != NULL && forwarder[0] != '\0') {
		if (ub_ctx_set_fwd(ctx, forwarder) != 0) {
			ub_ctx_delete(ctx);
			*error_r = "invalid DNS forwarder address";
			return NULL;
		}
	} else if (ub_ctx_resolvconf(ctx, NULL) != 0) {
		/* No usable resolv.conf: full recursion from the roots. */
		(void)0;
	}
	/* Answers are small; keep the library from writing anything. */
	(void)ub_ctx_set_option(ctx, "use-syslog:", "no");
	(void)ub_ctx_set_option(ctx, "verbosity:", "0");
	u = xcalloc(1, sizeof(*u));
	u->ctx = ctx;
	pthread_mutex_init(&u->lock, NULL);
	dns = xcalloc(1, sizeof(*dns));
	dns->v = &unbound_vfuncs;
	dns->context = u;
	return dns;
}

unsigned long
mailauth_dns_unbound_cache_hits(const struct mailauth_dns *dns)
{
	struct unbound *u = dns->context;
	unsigned long hits;

	SP_ASSERT(dns->v == &unbound_vfuncs);
	pthread_mutex_lock(&u->lock);
	hits = u->hits;
	pthread_mutex_unlock(&u->lock);
	return hits;
}
