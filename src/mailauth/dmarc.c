/* DMARC (RFC 7489): policy discovery with the organizational-domain
 * fallback, identifier alignment, and the From: domain. */
#include "mailauth/mailauth-private.h"

#include <ctype.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define PSL_PATH "/usr/share/publicsuffix/public_suffix_list.dat"

/* The public suffix list, sorted for bsearch; NULL when the file is
 * absent and the heuristic below stands in. */
static char **psl_rules;
static size_t psl_count;
static pthread_once_t psl_once = PTHREAD_ONCE_INIT;

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
psl_load(void)
{
	char *data, *line, *save;
	size_t len, cap = 0;

	if (fs_read_file(PSL_PATH, &data, &len) < 0)
		return;
	for (line = strtok_r(data, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		size_t n = strcspn(line, " \t\r");

		if (n == 0 || (line[0] == '/' && line[1] == '/'))
			continue;
		line[n] = '\0';
		if (psl_count == cap) {
			cap = cap == 0 ? 8192 : cap * 2;
			psl_rules = xrealloc(psl_rules, cap * sizeof(char *));
		}
		psl_rules[psl_count] = xstrdup(line);
		str_lower(psl_rules[psl_count]);
		psl_count++;
	}
	free(data);
	qsort(psl_rules, psl_count, sizeof(char *), cmp_str);
}

static bool
psl_has(const char *rule)
{
	return bsearch(&rule, psl_rules, psl_count, sizeof(char *), cmp_str) !=
	       NULL;
}

/* Number of labels of the public suffix of d (whose labels start at
 * labels[0..n-1]), per the list's algorithm: exception rules win, else
 * the longest matching rule, else "*" (one label). */
static size_t
psl_suffix_labels(const char *d, const char *const *labels, size_t n)
{
	size_t best = 1;

	for (size_t i = 0; i < n; i++) {
		const char *suffix = labels[i];
		size_t count = n - i;
		char *excl = xasprintf("!%s", suffix);
		bool hit;

		if (psl_has(excl)) {
			free(excl);
			return count - 1;
		}
		free(excl);
		hit = psl_has(suffix);
		if (!hit && i + 1 < n) {
			char *wild = xasprintf("*.%s", labels[i + 1]);

			hit = psl_has(wild);
			free(wild);
		}
		if (hit && count > best)
			best = count;
	}
	(void)d;
	return best;
}

/* Without the list: a two-letter country code under a common generic
 * second level (co.uk, com.au, ne.jp, ...) is a suffix of two labels. */
static size_t
heuristic_suffix_labels(const char *const *labels, size_t n)
{
	static const char *const second[] = {
		"co", "com", "net", "org", "gov", "edu", "ac",	"or", "ne",
		"go", "gob", "mil", "nic", "ltd", "plc", "sch", NULL,
	};

	if (n >= 3 && strlen(labels[n - 1]) == 2) {
		const char *sl = labels[n - 2];
		size_t sl_len = (size_t)(labels[n - 1] - sl) - 1;

		for (size_t i = 0; second[i] != NULL; i++) {
			if (strlen(second[i]) == sl_len &&
			    strncmp(sl, second[i], sl_len) == 0)
				return 2;
		}
	}
	return 1;
}

char *
mailauth_org_domain(const char *domain)
{
	char *d = xstrdup(domain);
	const char *labels[128];
	size_t n = 0, len = strlen(d), suffix;

	pthread_once(&psl_once, psl_load);
	if (len > 0 && d[len - 1] == '.')
		d[--len] = '\0';
	str_lower(d);
	labels[n++] = d;
	for (char *p = d; *p != '\0' && n < SP_N_ELEMENTS(labels); p++) {
		if (*p == '.')
			labels[n++] = p + 1;
	}
	if (psl_rules != NULL)
		suffix = psl_suffix_labels(d, labels, n);
	else
		suffix = heuristic_suffix_labels(labels, n);
	if (suffix >= n) {
		/* The name is itself a public suffix. */
		return d;
	}
	{
		char *org = xstrdup(labels[n - suffix - 1]);

		free(d);
		return org;
	}
}

bool
mailauth_dmarc_aligned(const char *a, const char *b, bool strict)
{
	char *oa, *ob;
	bool same;

	if (a == NULL || b == NULL)
		return false;
	if (strcasecmp(a, b) == 0)
		return true;
	if (strict)
		return false;
	oa = mailauth_org_domain(a);
	ob = mailauth_org_domain(b);
	same = strcmp(oa, ob) == 0;
	free(oa);
	free(ob);
	return same;
}

/* Policy discovery (6.6.3): one v=DMARC1 record at _dmarc.<name>.
 * Returns 1 found, 0 none, -1 tempfail. */
static int
dmarc_fetch(struct mailauth_dns *dns, const char *name, char **record_r)
{
	struct mailauth_dns_reply reply;
	enum mailauth_dns_status st;
	char *q = xasprintf("_dmarc.%s", name);
	size_t found = 0;

	*record_r = NULL;
	memset(&reply, 0, sizeof(reply));
	st = dns->v->txt(dns->context, q, &reply);
	free(q);
	if (st == MAILAUTH_DNS_TEMPFAIL) {
		mailauth_dns_reply_clear(&reply);
		return -1;
	}
	for (size_t i = 0; st == MAILAUTH_DNS_OK && i < reply.count; i++) {
		const char *r = reply.strings[i];

		while (*r == ' ' || *r == '\t')
			r++;
		if (strncmp(r, "v=DMARC1", 8) != 0 ||
		    (r[8] != '\0' && r[8] != ';' && r[8] != ' ' &&
		     r[8] != '\t'))
			continue;
		if (found++ == 0)
			*record_r = xstrdup(r);
	}
	mailauth_dns_reply_clear(&reply);
	if (found != 1) {
		/* Several records: as if there were none (6.6.3). */
		free(*record_r);
		*record_r = NULL;
		return 0;
	}
	return 1;
}

static int
parse_policy(const char *p, enum mailauth_dmarc_policy *policy_r)
{
	if (p == NULL)
		return -1;
	if (strcasecmp(p, "none") == 0)
		*policy_r = MAILAUTH_DMARC_POLICY_NONE;
	else if (strcasecmp(p, "quarantine") == 0)
		*policy_r = MAILAUTH_DMARC_POLICY_QUARANTINE;
	else if (strcasecmp(p, "reject") == 0)
		*policy_r = MAILAUTH_DMARC_POLICY_REJECT;
	else
		return -1;
	return 0;
}

void
mailauth_dmarc_check(struct mailauth_dns *dns, const char *from_domain,
		     const struct mailauth_spf_result *spf,
		     const struct mailauth_dkim_sig *sigs, size_t count,
		     struct mailauth_dmarc_result *result_r)
{
	struct mailauth_tags tags;
	char *record = NULL, *org;
	const char *adkim, *aspf, *pct, *sp;
	int rc;

	memset(result_r, 0, sizeof(*result_r));
	result_r->pct = 100;
	if (from_domain == NULL || !mailauth_domain_valid(from_domain, true)) {
		result_r->result = MAILAUTH_PERMERROR;
		return;
	}
	result_r->from_domain = xstrdup(from_domain);
	str_lower(result_r->from_domain);
	rc = dmarc_fetch(dns, result_r->from_domain, &record);
	if (rc == 0) {
		org = mailauth_org_domain(result_r->from_domain);
		if (strcmp(org, result_r->from_domain) != 0) {
			rc = dmarc_fetch(dns, org, &record);
			if (rc == 1)
				result_r->policy_domain = xstrdup(org);
		}
		free(org);
	} else if (rc == 1) {
		result_r->policy_domain = xstrdup(result_r->from_domain);
	}
	if (rc < 0) {
		result_r->result = MAILAUTH_TEMPERROR;
		return;
	}
	if (rc == 0) {
		result_r->result = MAILAUTH_NONE;
		return;
	}
	if (mailauth_tags_parse(record, strlen(record), &tags) < 0) {
		free(record);
		result_r->result = MAILAUTH_PERMERROR;
		return;
	}
	free(record);
	if (parse_policy(mailauth_tags_get(&tags, "p"), &result_r->policy) <
	    0) {
		/* 6.6.3: an invalid p= with a valid rua is p=none; without
		 * one, no policy. */
		if (mailauth_tags_get(&tags, "rua") == NULL) {
			mailauth_tags_deinit(&tags);
			result_r->result = MAILAUTH_NONE;
			return;
		}
		result_r->policy = MAILAUTH_DMARC_POLICY_NONE;
	}
	sp = mailauth_tags_get(&tags, "sp");
	if (sp != NULL &&
	    strcmp(result_r->policy_domain, result_r->from_domain) != 0) {
		enum mailauth_dmarc_policy sub;

		if (parse_policy(sp, &sub) == 0)
			result_r->policy = sub;
	}
	adkim = mailauth_tags_get(&tags, "adkim");
	aspf = mailauth_tags_get(&tags, "aspf");
	pct = mailauth_tags_get(&tags, "pct");
	if (pct != NULL) {
		char *end;
		long v = strtol(pct, &end, 10);

		if (*end == '\0' && end != pct && v >= 0 && v <= 100)
			result_r->pct = (unsigned int)v;
	}
	if (spf != NULL && spf->result == MAILAUTH_PASS)
		result_r->spf_aligned = mailauth_dmarc_aligned(
			spf->domain, result_r->from_domain,
			aspf != NULL && strcmp(aspf, "s") == 0);
	for (size_t i = 0; i < count; i++) {
		if (sigs[i].result == MAILAUTH_PASS &&
		    mailauth_dmarc_aligned(
			    sigs[i].domain, result_r->from_domain,
			    adkim != NULL && strcmp(adkim, "s") == 0))
			result_r->dkim_aligned = true;
	}
	mailauth_tags_deinit(&tags);
	result_r->result = result_r->spf_aligned || result_r->dkim_aligned
				   ? MAILAUTH_PASS
				   : MAILAUTH_FAIL;
}

void
mailauth_dmarc_result_clear(struct mailauth_dmarc_result *result)
{
	free(result->from_domain);
	free(result->policy_domain);
	memset(result, 0, sizeof(*result));
}

/* The one address of From: without quoted strings and comments. */
char *
mailauth_from_domain(const char *msg, size_t len)
{
	struct mailauth_msg m;
	const struct mailauth_header *from = NULL;
	struct sp_buf clean;
	char *at, *end, *out = NULL;
	int depth = 0;
	bool quoted = false;
	size_t ats = 0;

	mailauth_msg_parse(msg, len, &m);
	for (size_t i = 0; i < m.count; i++) {
		if (!mailauth_header_is(&m.headers[i], "From"))
			continue;
		if (from != NULL) {
			mailauth_msg_deinit(&m);
			return NULL;
		}
		from = &m.headers[i];
	}
	if (from == NULL) {
		mailauth_msg_deinit(&m);
		return NULL;
	}
	sp_buf_init(&clean);
	for (size_t i = 0; i < from->value_len; i++) {
		char c = from->value[i];

		if (quoted) {
			if (c == '\\' && i + 1 < from->value_len)
				i++;
			else if (c == '"')
				quoted = false;
			continue;
		}
		if (depth > 0) {
			if (c == '\\' && i + 1 < from->value_len)
				i++;
			else if (c == '(')
				depth++;
			else if (c == ')')
				depth--;
			continue;
		}
		if (c == '"')
			quoted = true;
		else if (c == '(')
			depth = 1;
		else
			sp_buf_append(&clean, &c, 1);
	}
	mailauth_msg_deinit(&m);
	for (size_t i = 0; i < clean.len; i++)
		ats += clean.data[i] == '@';
	if (ats != 1)
		goto out;
	/* memchr: the header may hold NUL bytes. */
	at = (char *)memchr(clean.data, '@', clean.len) + 1;
	end = at;
	while (end < clean.data + clean.len && *end != '\0' && *end != '>' &&
	       *end != ',' && !isspace((unsigned char)*end))
		end++;
	if (end == at)
		goto out;
	out = xstrndup(at, (size_t)(end - at));
	str_lower(out);
	if (out[strlen(out) - 1] == '.')
		out[strlen(out) - 1] = '\0';
	if (!mailauth_domain_valid(out, true)) {
		free(out);
		out = NULL;
	}
out:
	sp_buf_deinit(&clean);
	return out;
}
