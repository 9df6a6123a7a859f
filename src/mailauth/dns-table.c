/* A resolver that answers from records given as text: tests and the test
 * tool plug it where production plugs libunbound. */
#include "mailauth/mailauth-private.h"

#include <ctype.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

enum table_type {
	TABLE_TXT,
	TABLE_A,
	TABLE_AAAA,
	TABLE_MX,
	TABLE_PTR,
	TABLE_NXDOMAIN,
	TABLE_TEMPFAIL,
};

struct table_record {
	char *name;
	enum table_type type;
	char *text;	       /* TXT, MX host, PTR host */
	unsigned int pref;     /* MX */
	struct mailauth_ip ip; /* A, AAAA */
};

struct dns_table {
	struct table_record *records;
	size_t count;
	atomic_uint queries;
};

static enum mailauth_dns_status
table_lookup(struct dns_table *table, const char *name, enum table_type type,
	     struct mailauth_dns_reply *reply_r)
{
	bool exists = false;
	size_t len = strlen(name);

	atomic_fetch_add(&table->queries, 1);
	if (len > 0 && name[len - 1] == '.')
		len--;
	for (size_t i = 0; i < table->count; i++) {
		struct table_record *r = &table->records[i];
		size_t n;

		if (strlen(r->name) != len ||
		    strncasecmp(r->name, name, len) != 0)
			continue;
		if (r->type == TABLE_NXDOMAIN || r->type == TABLE_TEMPFAIL) {
			mailauth_dns_reply_clear(reply_r);
			return r->type == TABLE_NXDOMAIN
				       ? MAILAUTH_DNS_NXDOMAIN
				       : MAILAUTH_DNS_TEMPFAIL;
		}
		exists = true;
		if (r->type != type)
			continue;
		n = reply_r->count++;
		if (type == TABLE_A || type == TABLE_AAAA) {
			reply_r->ips = xrealloc(
				reply_r->ips, (n + 1) * sizeof(*reply_r->ips));
			reply_r->ips[n] = r->ip;
			continue;
		}
		reply_r->strings =
			xrealloc(reply_r->strings, (n + 1) * sizeof(char *));
		reply_r->strings[n] = xstrdup(r->text);
		if (type == TABLE_MX) {
			reply_r->mx_prefs =
				xrealloc(reply_r->mx_prefs,
					 (n + 1) * sizeof(*reply_r->mx_prefs));
			reply_r->mx_prefs[n] = r->pref;
		}
	}
	if (reply_r->count > 0)
		return MAILAUTH_DNS_OK;
	return exists ? MAILAUTH_DNS_NODATA : MAILAUTH_DNS_NXDOMAIN;
}

static enum mailauth_dns_status
table_txt(void *context, const char *name, struct mailauth_dns_reply *reply_r)
{
	return table_lookup(context, name, TABLE_TXT, reply_r);
}

static enum mailauth_dns_status
table_addr(void *context, const char *name, int family,
	   struct mailauth_dns_reply *reply_r)
{
	return table_lookup(context, name,
			    family == AF_INET ? TABLE_A : TABLE_AAAA, reply_r);
}

static enum mailauth_dns_status
table_mx(void *context, const char *name, struct mailauth_dns_reply *reply_r)
{
	return table_lookup(context, name, TABLE_MX, reply_r);
}

static enum mailauth_dns_status
table_ptr(void *context, const struct mailauth_ip *ip,
	  struct mailauth_dns_reply *reply_r)
{
	char text[46];

	mailauth_ip_format(ip, text);
	return table_lookup(context, text, TABLE_PTR, reply_r);
}

static void
table_destroy(void *context)
{
	struct dns_table *table = context;

	for (size_t i = 0; i < table->count; i++) {
		free(table->records[i].name);
		free(table->records[i].text);
	}
	free(table->records);
	free(table);
}

static const struct mailauth_dns_vfuncs table_vfuncs = {
	.txt = table_txt,
	.addr = table_addr,
	.mx = table_mx,
	.ptr = table_ptr,
	.destroy = table_destroy,
};

struct mailauth_dns *
mailauth_dns_table_create(void)
{
	struct mailauth_dns *dns = xcalloc(1, sizeof(*dns));
	struct dns_table *table = xcalloc(1, sizeof(*table));

	atomic_init(&table->queries, 0);
	dns->v = &table_vfuncs;
	dns->context = table;
	return dns;
}

static const char *
next_word(const char **p, size_t *len_r)
{
	const char *start;

	while (**p == ' ' || **p == '\t')
		(*p)++;
	start = *p;
	while (**p != '\0' && **p != ' ' && **p != '\t')
		(*p)++;
	*len_r = (size_t)(*p - start);
	return start;
}

static int
table_add_line(struct dns_table *table, const char *line, const char **error_r)
{
	const char *p = line, *name, *type, *rest;
	size_t name_len, type_len;
	struct table_record r;

	memset(&r, 0, sizeof(r));
	name = next_word(&p, &name_len);
	if (name_len == 0 || *name == '#')
		return 0;
	type = next_word(&p, &type_len);
	while (*p == ' ' || *p == '\t')
		p++;
	rest = p;
	r.name = xstrndup(name, name_len);
	if (name_len > 1 && r.name[name_len - 1] == '.')
		r.name[name_len - 1] = '\0';
	if (type_len == 3 && strncasecmp(type, "TXT", 3) == 0) {
		r.type = TABLE_TXT;
		r.text = xstrdup(rest);
	} else if ((type_len == 1 && strncasecmp(type, "A", 1) == 0) ||
		   (type_len == 4 && strncasecmp(type, "AAAA", 4) == 0)) {
		r.type = type_len == 1 ? TABLE_A : TABLE_AAAA;
		if (mailauth_ip_parse(rest, &r.ip) < 0 ||
		    r.ip.family != (type_len == 1 ? AF_INET : AF_INET6)) {
			*error_r = "bad address";
			goto fail;
		}
	} else if (type_len == 2 && strncasecmp(type, "MX", 2) == 0) {
		char *end;
		size_t host_len;
		const char *host;

		r.type = TABLE_MX;
		r.pref = (unsigned int)strtoul(rest, &end, 10);
		if (end == rest) {
			*error_r = "bad MX preference";
			goto fail;
		}
		p = end;
		host = next_word(&p, &host_len);
		if (host_len > 1 && host[host_len - 1] == '.')
			host_len--;
		r.text = xstrndup(host, host_len);
	} else if (type_len == 3 && strncasecmp(type, "PTR", 3) == 0) {
		size_t host_len;
		const char *host;

		r.type = TABLE_PTR;
		p = rest;
		host = next_word(&p, &host_len);
		if (host_len > 1 && host[host_len - 1] == '.')
			host_len--;
		r.text = xstrndup(host, host_len);
	} else if (type_len == 8 && strncasecmp(type, "NXDOMAIN", 8) == 0) {
		r.type = TABLE_NXDOMAIN;
	} else if (type_len == 8 && strncasecmp(type, "TEMPFAIL", 8) == 0) {
		r.type = TABLE_TEMPFAIL;
	} else {
		*error_r = "unknown record type";
		goto fail;
	}
	if (r.type == TABLE_PTR) {
		/* Store the address in its canonical text form. */
		struct mailauth_ip ip;

		if (mailauth_ip_parse(r.name, &ip) == 0) {
			char text[46];

			mailauth_ip_format(&ip, text);
			free(r.name);
			r.name = xstrdup(text);
		}
	}
	table->records =
		xrealloc(table->records, (table->count + 1) * sizeof(r));
	table->records[table->count++] = r;
	return 0;
fail:
	free(r.name);
	free(r.text);
	return -1;
}

int
mailauth_dns_table_add(struct mailauth_dns *dns, const char *lines,
		       const char **error_r)
{
	struct dns_table *table = dns->context;
	const char *p = lines;

	SP_ASSERT(dns->v == &table_vfuncs);
	while (*p != '\0') {
		const char *nl = strchr(p, '\n');
		size_t n = nl == NULL ? strlen(p) : (size_t)(nl - p);
		char *line = xstrndup(p, n);
		int ret;

		if (n > 0 && line[n - 1] == '\r')
			line[n - 1] = '\0';
		ret = table_add_line(table, line, error_r);
		free(line);
		if (ret < 0)
			return -1;
		p += n;
		if (*p == '\n')
			p++;
	}
	return 0;
}

unsigned int
mailauth_dns_table_queries(const struct mailauth_dns *dns)
{
	struct dns_table *table = dns->context;

	SP_ASSERT(dns->v == &table_vfuncs);
	return atomic_load(&table->queries);
}
