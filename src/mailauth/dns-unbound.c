/* The production resolver: libunbound, one context shared by all threads
 * (ub_resolve is thread-safe; the context caches answers). */
#include "mailauth/mailauth-private.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <unbound.h>

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

static enum mailauth_dns_status
unbound_query(void *context, const char *name, int type,
	      struct mailauth_dns_reply *reply_r)
{
	struct ub_ctx *ctx = context;
	struct ub_result *res = NULL;
	enum mailauth_dns_status status;

	if (ub_resolve(ctx, name, type, CLASS_IN, &res) != 0 || res == NULL)
		return MAILAUTH_DNS_TEMPFAIL;
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
	ub_ctx_delete(context);
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
	dns = xcalloc(1, sizeof(*dns));
	dns->v = &unbound_vfuncs;
	dns->context = ctx;
	return dns;
}
