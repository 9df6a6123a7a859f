/* SEARCH and UID SEARCH: every RFC 3501 key, CONDSTORE's MODSEQ, ESEARCH
 * return options, and the X-REGEX extension key (PCRE2, by the store):
 *   X-REGEX <field> <pattern>   field: subject, from, to, cc, bcc, body or
 *                               a header name. */
#include "imap-private.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct search_ctx {
	struct imap_cmd *cmd;
	const struct imap_arg *args;
	unsigned argc, pos;
	bool has_modseq;
	const char *error;
};

static struct store_search *parse_key(struct search_ctx *c);

static const char *
next_astring(struct search_ctx *c)
{
	const char *s;

	if (c->pos >= c->argc ||
	    (s = imap_arg_astring(&c->args[c->pos])) == NULL)
		return NULL;
	c->pos++;
	return s;
}

static struct store_search *
str_key(struct search_ctx *c, enum store_search_key key)
{
	const char *s = next_astring(c);
	struct store_search *n;

	if (s == NULL)
		return NULL;
	n = store_search_new(key);
	n->str = xstrdup(s);
	return n;
}

static struct store_search *
date_key(struct search_ctx *c, enum store_search_key key)
{
	const char *s = next_astring(c);
	struct store_search *n;
	time_t t;

	if (s == NULL || imap_parse_date(s, &t) < 0)
		return NULL;
	n = store_search_new(key);
	n->date = t;
	return n;
}

static struct store_search *
num_key(struct search_ctx *c, enum store_search_key key)
{
	const char *s = next_astring(c);
	struct store_search *n;
	unsigned long long v;
	char end;

	if (s == NULL || sscanf(s, "%llu%c", &v, &end) != 1)
		return NULL;
	n = store_search_new(key);
	n->num = v;
	return n;
}

static struct store_search *
flag_key(enum store_search_key key, uint32_t flag)
{
	struct store_search *n = store_search_new(key);

	n->flags = flag;
	return n;
}

static struct store_search *
uid_ranges_key(const uint32_t *uids, size_t count)
{
	struct store_search *n;

	if (count == 0) {
		n = store_search_new(STORE_SEARCH_NOT);
		store_search_add(n, store_search_new(STORE_SEARCH_ALL));
		return n;
	}
	n = store_search_new(STORE_SEARCH_UID);
	n->ranges = xcalloc(count, sizeof(*n->ranges));
	for (size_t i = 0; i < count; i++)
		n->ranges[i].first = n->ranges[i].last = uids[i];
	n->range_count = count;
	return n;
}

static struct store_search *
set_key(struct search_ctx *c, const char *str, bool uid)
{
	struct store_uidset set;
	struct store_search *n;

	if (imap_cmd_uidset_mode(c->cmd, str, uid, true, &set) < 0)
		return NULL;
	n = store_search_new(STORE_SEARCH_UID);
	n->ranges = (struct store_uid_range *)set.ranges;
	n->range_count = set.count;
	if (set.count == 0) {
		store_search_free(&n);
		return uid_ranges_key(NULL, 0);
	}
	return n;
}

static struct store_search *
parse_key(struct search_ctx *c)
{
	struct imap_session *s = c->cmd->session;
	const struct imap_arg *arg;
	const char *k;
	struct store_search *n, *a, *b;

	if (c->pos >= c->argc)
		return NULL;
	arg = &c->args[c->pos++];
	if (arg->type == IMAP_ARG_LIST) {
		struct search_ctx sub = *c;

		sub.args = arg->list;
		sub.argc = arg->list_count;
		sub.pos = 0;
		if (sub.argc == 0)
			return NULL;
		n = store_search_new(STORE_SEARCH_AND);
		while (sub.pos < sub.argc) {
			a = parse_key(&sub);
			if (a == NULL) {
				store_search_free(&n);
				return NULL;
			}
			store_search_add(n, a);
		}
		c->has_modseq |= sub.has_modseq;
		return n;
	}
	if (arg->type != IMAP_ARG_ATOM)
		return NULL;
	k = arg->str;
	if ((k[0] >= '0' && k[0] <= '9') || k[0] == '*')
		return set_key(c, k, false);
	if (strcasecmp(k, "ALL") == 0)
		return store_search_new(STORE_SEARCH_ALL);
	if (strcasecmp(k, "ANSWERED") == 0)
		return flag_key(STORE_SEARCH_FLAGS, STORE_FLAG_ANSWERED);
	if (strcasecmp(k, "DELETED") == 0)
		return flag_key(STORE_SEARCH_FLAGS, STORE_FLAG_DELETED);
	if (strcasecmp(k, "DRAFT") == 0)
		return flag_key(STORE_SEARCH_FLAGS, STORE_FLAG_DRAFT);
	if (strcasecmp(k, "FLAGGED") == 0)
		return flag_key(STORE_SEARCH_FLAGS, STORE_FLAG_FLAGGED);
	if (strcasecmp(k, "SEEN") == 0)
		return flag_key(STORE_SEARCH_FLAGS, STORE_FLAG_SEEN);
	if (strcasecmp(k, "UNANSWERED") == 0)
		return flag_key(STORE_SEARCH_NOFLAGS, STORE_FLAG_ANSWERED);
	if (strcasecmp(k, "UNDELETED") == 0)
		return flag_key(STORE_SEARCH_NOFLAGS, STORE_FLAG_DELETED);
	if (strcasecmp(k, "UNDRAFT") == 0)
		return flag_key(STORE_SEARCH_NOFLAGS, STORE_FLAG_DRAFT);
	if (strcasecmp(k, "UNFLAGGED") == 0)
		return flag_key(STORE_SEARCH_NOFLAGS, STORE_FLAG_FLAGGED);
	if (strcasecmp(k, "UNSEEN") == 0)
		return flag_key(STORE_SEARCH_NOFLAGS, STORE_FLAG_SEEN);
	/* \Recent is per session: the session's own list decides. */
	if (strcasecmp(k, "RECENT") == 0)
		return uid_ranges_key(s->recent, s->recent_count);
	if (strcasecmp(k, "OLD") == 0) {
		n = store_search_new(STORE_SEARCH_NOT);
		store_search_add(n, uid_ranges_key(s->recent,
						   s->recent_count));
		return n;
	}
	if (strcasecmp(k, "NEW") == 0) {
		n = store_search_new(STORE_SEARCH_AND);
		store_search_add(n, uid_ranges_key(s->recent,
						   s->recent_count));
		store_search_add(n, flag_key(STORE_SEARCH_NOFLAGS,
					     STORE_FLAG_SEEN));
		return n;
	}
	if (strcasecmp(k, "KEYWORD") == 0)
		return str_key(c, STORE_SEARCH_KEYWORD);
	if (strcasecmp(k, "UNKEYWORD") == 0)
		return str_key(c, STORE_SEARCH_UNKEYWORD);
	if (strcasecmp(k, "BCC") == 0)
		return str_key(c, STORE_SEARCH_BCC);
	if (strcasecmp(k, "CC") == 0)
		return str_key(c, STORE_SEARCH_CC);
	if (strcasecmp(k, "FROM") == 0)
		return str_key(c, STORE_SEARCH_FROM);
	if (strcasecmp(k, "TO") == 0)
		return str_key(c, STORE_SEARCH_TO);
	if (strcasecmp(k, "SUBJECT") == 0)
		return str_key(c, STORE_SEARCH_SUBJECT);
	if (strcasecmp(k, "BODY") == 0)
		return str_key(c, STORE_SEARCH_BODY);
	if (strcasecmp(k, "TEXT") == 0)
		return str_key(c, STORE_SEARCH_TEXT);
	if (strcasecmp(k, "HEADER") == 0) {
		const char *field = next_astring(c);

		if (field == NULL)
			return NULL;
		n = str_key(c, STORE_SEARCH_HEADER);
		if (n != NULL)
			n->field = xstrdup(field);
		return n;
	}
	if (strcasecmp(k, "X-REGEX") == 0) {
		const char *field = next_astring(c);

		if (field == NULL)
			return NULL;
		n = str_key(c, STORE_SEARCH_REGEXP);
		if (n != NULL) {
			n->field = xstrdup(field);
			str_lower(n->field);
		}
		return n;
	}
	if (strcasecmp(k, "BEFORE") == 0)
		return date_key(c, STORE_SEARCH_BEFORE);
	if (strcasecmp(k, "ON") == 0)
		return date_key(c, STORE_SEARCH_ON);
	if (strcasecmp(k, "SINCE") == 0)
		return date_key(c, STORE_SEARCH_SINCE);
	if (strcasecmp(k, "SENTBEFORE") == 0)
		return date_key(c, STORE_SEARCH_SENTBEFORE);
	if (strcasecmp(k, "SENTON") == 0)
		return date_key(c, STORE_SEARCH_SENTON);
	if (strcasecmp(k, "SENTSINCE") == 0)
		return date_key(c, STORE_SEARCH_SENTSINCE);
	if (strcasecmp(k, "LARGER") == 0)
		return num_key(c, STORE_SEARCH_LARGER);
	if (strcasecmp(k, "SMALLER") == 0)
		return num_key(c, STORE_SEARCH_SMALLER);
	if (strcasecmp(k, "UID") == 0) {
		const char *set = next_astring(c);

		return set != NULL ? set_key(c, set, true) : NULL;
	}
	if (strcasecmp(k, "MODSEQ") == 0) {
		/* MODSEQ [entry-name entry-type] n: the entry is a
		 * per-flag refinement we answer with the message MODSEQ,
		 * as RFC 7162 allows. */
		if (c->pos + 2 < c->argc + 0 &&
		    c->args[c->pos].type == IMAP_ARG_STRING)
			c->pos += 2;
		c->has_modseq = true;
		return num_key(c, STORE_SEARCH_MODSEQ);
	}
	if (strcasecmp(k, "NOT") == 0) {
		a = parse_key(c);
		if (a == NULL)
			return NULL;
		n = store_search_new(STORE_SEARCH_NOT);
		store_search_add(n, a);
		return n;
	}
	if (strcasecmp(k, "OR") == 0) {
		a = parse_key(c);
		if (a == NULL)
			return NULL;
		b = parse_key(c);
		if (b == NULL) {
			store_search_free(&a);
			return NULL;
		}
		n = store_search_new(STORE_SEARCH_OR);
		store_search_add(n, a);
		store_search_add(n, b);
		return n;
	}
	return NULL;
}

enum esearch_ret {
	RET_MIN = 1 << 0,
	RET_MAX = 1 << 1,
	RET_ALL = 1 << 2,
	RET_COUNT = 1 << 3,
};

static void
append_num_set(struct sp_buf *out, const uint32_t *nums, size_t count)
{
	for (size_t i = 0; i < count;) {
		size_t j = i;

		while (j + 1 < count && nums[j + 1] == nums[j] + 1)
			j++;
		if (i > 0)
			sp_buf_append_str(out, ",");
		if (j > i)
			sp_buf_printf(out, "%u:%u", nums[i], nums[j]);
		else
			sp_buf_printf(out, "%u", nums[i]);
		i = j + 1;
	}
}

void
imap_cmd_search(struct imap_cmd *cmd)
{
	struct imap_session *s = cmd->session;
	struct search_ctx c = {.cmd = cmd, .args = cmd->args,
			       .argc = cmd->argc};
	struct store_search *root;
	uint32_t *uids = NULL;
	size_t count = 0, n = 0;
	uint64_t highest = 0;
	const char *error = NULL;
	enum store_error err;
	int ret = 0;
	bool esearch = false;

	if (c.argc >= 2 && imap_arg_is_atom(&c.args[0], "RETURN") &&
	    c.args[1].type == IMAP_ARG_LIST) {
		const struct imap_arg *opts = &c.args[1];

		esearch = true;
		for (unsigned i = 0; i < opts->list_count; i++) {
			if (imap_arg_is_atom(&opts->list[i], "MIN"))
				ret |= RET_MIN;
			else if (imap_arg_is_atom(&opts->list[i], "MAX"))
				ret |= RET_MAX;
			else if (imap_arg_is_atom(&opts->list[i], "ALL"))
				ret |= RET_ALL;
			else if (imap_arg_is_atom(&opts->list[i], "COUNT"))
				ret |= RET_COUNT;
			else {
				imap_cmd_bad(cmd, "Unknown RETURN option.");
				return;
			}
		}
		if (ret == 0)
			ret = RET_ALL;
		c.pos = 2;
	}
	if (c.argc >= c.pos + 2 &&
	    imap_arg_is_atom(&c.args[c.pos], "CHARSET")) {
		const char *cs = imap_arg_astring(&c.args[c.pos + 1]);

		if (cs == NULL || (strcasecmp(cs, "UTF-8") != 0 &&
				   strcasecmp(cs, "US-ASCII") != 0)) {
			imap_cmd_no(cmd, "[BADCHARSET (UTF-8 US-ASCII)] "
					 "Unsupported charset.");
			return;
		}
		c.pos += 2;
	}
	if (c.pos >= c.argc) {
		imap_cmd_bad(cmd, "Missing search keys.");
		return;
	}
	root = store_search_new(STORE_SEARCH_AND);
	while (c.pos < c.argc) {
		struct store_search *k = parse_key(&c);

		if (k == NULL) {
			store_search_free(&root);
			imap_cmd_bad(cmd, "Invalid search key.");
			return;
		}
		store_search_add(root, k);
	}
	if (c.has_modseq)
		s->condstore = true;
	err = store_search_run(s->user->mbox, s->folder_id, root, NULL, 0,
			       &uids, &count, &highest, &error);
	store_search_free(&root);
	if (err != STORE_OK) {
		if (err == STORE_ERR_INVALID)
			imap_cmd_bad(cmd, "Invalid search pattern.");
		else
			imap_cmd_store_error(cmd, err, error);
		return;
	}
	/* Numbers for the reply: UIDs, or the session's sequence numbers
	 * (messages it has not been told about yet are left out). */
	for (size_t i = 0; i < count; i++) {
		uint32_t v = cmd->uid ? uids[i] : imap_session_seq(s, uids[i]);

		if (v != 0)
			uids[n++] = v;
	}
	if (!esearch) {
		sp_buf_append_str(&cmd->out, "* SEARCH");
		for (size_t i = 0; i < n; i++)
			sp_buf_printf(&cmd->out, " %u", uids[i]);
		if (c.has_modseq && n > 0)
			sp_buf_printf(&cmd->out, " (MODSEQ %llu)",
				      (unsigned long long)highest);
		sp_buf_append_str(&cmd->out, "\r\n");
	} else {
		sp_buf_append_str(&cmd->out, "* ESEARCH (TAG ");
		imap_append_astring(&cmd->out, cmd->tag);
		sp_buf_append_str(&cmd->out, ")");
		if (cmd->uid)
			sp_buf_append_str(&cmd->out, " UID");
		if ((ret & RET_MIN) != 0 && n > 0)
			sp_buf_printf(&cmd->out, " MIN %u", uids[0]);
		if ((ret & RET_MAX) != 0 && n > 0)
			sp_buf_printf(&cmd->out, " MAX %u", uids[n - 1]);
		if ((ret & RET_COUNT) != 0)
			sp_buf_printf(&cmd->out, " COUNT %zu", n);
		if ((ret & RET_ALL) != 0 && n > 0) {
			sp_buf_append_str(&cmd->out, " ALL ");
			append_num_set(&cmd->out, uids, n);
		}
		if (c.has_modseq && n > 0)
			sp_buf_printf(&cmd->out, " MODSEQ %llu",
				      (unsigned long long)highest);
		sp_buf_append_str(&cmd->out, "\r\n");
	}
	free(uids);
	imap_cmd_ok(cmd, "Search completed.");
}
