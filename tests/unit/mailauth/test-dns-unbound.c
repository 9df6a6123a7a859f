/* The production resolver's answer cache (src/mailauth/dns-unbound.c),
 * against a small DNS server on 127.0.0.1 run by this test: an answer is
 * reused for its TTL and no longer, a TTL of 0 is never kept, negative
 * answers are kept for their SOA's negative TTL, failures never, and names
 * compare without regard to case. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/core.h"
#include "mailauth/mailauth.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

/* What the server knows, and how often each name was asked. */
struct zone_name {
	const char *name;
	uint32_t ttl;
	int rcode; /* 0, 2 (SERVFAIL) or 3 (NXDOMAIN, with an SOA) */
	unsigned asked;
};

static struct zone_name zone[] = {
	{"ttl60.cache.example.com", 60, 0, 0},
	{"ttl0.cache.example.com", 0, 0, 0},
	{"gone.cache.example.com", 30, 3, 0},
	{"broken.cache.example.com", 60, 2, 0},
};

static int server_fd = -1;
static volatile int server_stop;
static pthread_t server_thread;

static size_t
put16(unsigned char *p, unsigned v)
{
	p[0] = (unsigned char)(v >> 8);
	p[1] = (unsigned char)v;
	return 2;
}

static size_t
put32(unsigned char *p, uint32_t v)
{
	put16(p, v >> 16);
	put16(p + 2, v & 0xffff);
	return 4;
}

/* Answers one query in q (len bytes) into r; returns the length, 0 to
 * drop it. */
static size_t
answer(const unsigned char *q, size_t len, unsigned char *r)
{
	char name[256];
	size_t i = 12, n = 0, out;
	struct zone_name *z = NULL;
	unsigned qtype;

	if (len < 17)
		return 0;
	while (i < len && q[i] != 0) {
		size_t l = q[i];

		if (i + 1 + l > len || n + l + 1 >= sizeof(name))
			return 0;
		if (n > 0)
			name[n++] = '.';
		memcpy(name + n, q + i + 1, l);
		n += l;
		i += 1 + l;
	}
	name[n] = '\0';
	if (i + 5 > len)
		return 0;
	qtype = (unsigned)(q[i + 1] << 8 | q[i + 2]);
	i += 5; /* the root label, type, class */
	for (size_t k = 0; k < sizeof(zone) / sizeof(zone[0]); k++)
		if (strcasecmp(zone[k].name, name) == 0)
			z = &zone[k];
	memcpy(r, q, 2); /* id */
	r[2] = 0x84 | (q[2] & 0x01); /* QR AA, RD copied */
	r[3] = 0x80;		     /* RA */
	put16(r + 4, 1);
	put16(r + 6, 0);
	put16(r + 8, 0);
	put16(r + 10, 0);
	memcpy(r + 12, q + 12, i - 12);
	out = i;
	if (z != NULL)
		__atomic_add_fetch(&z->asked, 1, __ATOMIC_SEQ_CST);
	if (z == NULL || z->rcode == 3) {
		/* NXDOMAIN with the zone's SOA: negative TTL z->ttl (30) */
		static const unsigned char soa_name[] = "\7example\3com";
		uint32_t neg = z != NULL ? z->ttl : 30;

		r[3] |= 3;
		put16(r + 8, 1);
		memcpy(r + out, soa_name, sizeof(soa_name));
		out += sizeof(soa_name);
		out += put16(r + out, 6);
		out += put16(r + out, 1);
		out += put32(r + out, neg);
		out += put16(r + out, 1 + 1 + 20);
		r[out++] = 0; /* mname: the root */
		r[out++] = 0; /* rname: the root */
		out += put32(r + out, 1);
		out += put32(r + out, 3600);
		out += put32(r + out, 600);
		out += put32(r + out, 86400);
		out += put32(r + out, neg);
		return out;
	}
	if (z->rcode == 2) {
		r[3] |= 2;
		return out;
	}
	if (qtype != 16)
		return out; /* NODATA without SOA */
	put16(r + 6, 1);
	out += put16(r + out, 0xc00c);
	out += put16(r + out, 16);
	out += put16(r + out, 1);
	out += put32(r + out, z->ttl);
	out += put16(r + out, 1 + 11);
	r[out++] = 11;
	memcpy(r + out, "v=spf1 -all", 11);
	out += 11;
	return out;
}

static void *
serve(void *arg)
{
	/* Bounded: the test stops it; each wait is at most 100 ms. */
	while (!server_stop) {
		struct pollfd pfd = {.fd = server_fd, .events = POLLIN};
		unsigned char q[1500], r[1500];
		struct sockaddr_storage from;
		socklen_t fromlen = sizeof(from);
		ssize_t n;
		size_t m;

		if (poll(&pfd, 1, 100) <= 0)
			continue;
		n = recvfrom(server_fd, q, sizeof(q), 0,
			     (struct sockaddr *)&from, &fromlen);
		if (n <= 0)
			continue;
		m = answer(q, (size_t)n, r);
		if (m > 0)
			(void)sendto(server_fd, r, m, 0,
				     (struct sockaddr *)&from, fromlen);
	}
	return NULL;
}

static int
setup(void **state)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	socklen_t len = sizeof(sin);
	struct mailauth_dns *dns;
	const char *error;
	char fwd[64];

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	server_fd = socket(AF_INET, SOCK_DGRAM, 0);
	assert_true(server_fd >= 0);
	assert_int_equal(bind(server_fd, (struct sockaddr *)&sin, sizeof(sin)),
			 0);
	assert_int_equal(
		getsockname(server_fd, (struct sockaddr *)&sin, &len), 0);
	assert_int_equal(pthread_create(&server_thread, NULL, serve, NULL), 0);
	snprintf(fwd, sizeof(fwd), "127.0.0.1@%u", ntohs(sin.sin_port));
	dns = mailauth_dns_unbound_create(fwd, &error);
	assert_non_null(dns);
	*state = dns;
	return 0;
}

static int
teardown(void **state)
{
	struct mailauth_dns *dns = *state;

	mailauth_dns_destroy(&dns);
	server_stop = 1;
	pthread_join(server_thread, NULL);
	close(server_fd);
	return 0;
}

static enum mailauth_dns_status
txt(struct mailauth_dns *dns, const char *name, char **first_r)
{
	struct mailauth_dns_reply reply;
	enum mailauth_dns_status st;

	memset(&reply, 0, sizeof(reply));
	st = dns->v->txt(dns->context, name, &reply);
	if (first_r != NULL)
		*first_r = st == MAILAUTH_DNS_OK ? xstrdup(reply.strings[0])
						 : NULL;
	mailauth_dns_reply_clear(&reply);
	return st;
}

static unsigned
asked(size_t i)
{
	return __atomic_load_n(&zone[i].asked, __ATOMIC_SEQ_CST);
}

static void
test_cache(void **state)
{
	struct mailauth_dns *dns = *state;
	char *text;

	/* Kept for its TTL, whatever the case of the name. */
	for (int i = 0; i < 5; i++) {
		assert_int_equal(txt(dns, i % 2 ? "TTL60.cache.example.com"
						: "ttl60.cache.example.com",
				     &text),
				 MAILAUTH_DNS_OK);
		assert_string_equal(text, "v=spf1 -all");
		free(text);
	}
	assert_int_equal(asked(0), 1);
	/* The four repeats came from our cache, not through ub_resolve. */
	assert_int_equal(mailauth_dns_unbound_cache_hits(dns), 4);
	/* Another type is another question. */
	{
		struct mailauth_dns_reply reply;

		memset(&reply, 0, sizeof(reply));
		assert_int_equal(dns->v->mx(dns->context,
					    "ttl60.cache.example.com", &reply),
				 MAILAUTH_DNS_NODATA);
		mailauth_dns_reply_clear(&reply);
	}
	assert_int_equal(asked(0), 2);

	/* TTL 0: asked every time (libunbound keeps nothing either). */
	for (int i = 0; i < 3; i++)
		assert_int_equal(txt(dns, "ttl0.cache.example.com", NULL),
				 MAILAUTH_DNS_OK);
	assert_int_equal(asked(1), 3);
	assert_int_equal(mailauth_dns_unbound_cache_hits(dns), 4);

	/* NXDOMAIN with an SOA: kept for its negative TTL. */
	for (int i = 0; i < 3; i++)
		assert_int_equal(txt(dns, "gone.cache.example.com", NULL),
				 MAILAUTH_DNS_NXDOMAIN);
	assert_int_equal(asked(2), 1);
	assert_int_equal(mailauth_dns_unbound_cache_hits(dns), 6);

	/* SERVFAIL: a temporary failure, never kept by us (libunbound may
	 * retry it on its own, so only "more than once" is certain). */
	for (int i = 0; i < 2; i++)
		assert_int_equal(txt(dns, "broken.cache.example.com", NULL),
				 MAILAUTH_DNS_TEMPFAIL);
	assert_true(asked(3) >= 2);
	assert_int_equal(mailauth_dns_unbound_cache_hits(dns), 6);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cache),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
