/* FETCH and UID FETCH: every RFC 3501 data item, BODY[section]<partial>
 * from the raw message through mime_section(), and CONDSTORE's MODSEQ and
 * CHANGEDSINCE. */
#include "imap-private.h"

#include "mime/mime.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum fetch_flags {
	F_UID = 1 << 0,
	F_FLAGS = 1 << 1,
	F_INTERNALDATE = 1 << 2,
	F_SIZE = 1 << 3,
	F_ENVELOPE = 1 << 4,
	F_BODY = 1 << 5,
	F_BODYSTRUCTURE = 1 << 6,
	F_MODSEQ = 1 << 7,
};

struct body_item {
	char *name;	/* in the response: "BODY[HEADER]<0>", "RFC822" */
	char *section;	/* for mime_section */
	bool peek;
	bool partial;
	uint64_t origin, length;
};

struct fetch_req {
	int flags;
	struct body_item *items;
	size_t item_count;
	bool sets_seen;
};

static void
fetch_req_clear(struct fetch_req *req)
{
	for (size_t i = 0; i < req->item_count; i++) {
		free(req->items[i].name);
		free(req->items[i].section);
	}
	free(req->items);
}

static struct body_item *
add_item(struct fetch_req *req)
{
	req->items = xrealloc(req->items,
			      (req->item_count + 1) * sizeof(*req->items));
	memset(&req->items[req->item_count], 0, sizeof(*req->items));
	return &req->items[req->item_count++];
}

/* "BODY[...]<a.b>" or "BODY.PEEK[...]<a.b>" */
static int
parse_body_item(struct fetch_req *req, const char *atom)
{
	bool peek = strncasecmp(atom, "BODY.PEEK[", 10) == 0;
	const char *start = atom + (peek ? 10 : 5), *end, *p;
	struct body_item *it;
	struct sp_buf check;
	char *section;
	int ret;

	end = strrchr(start, ']');
	if (end == NULL)
		return -1;
	section = xstrndup(start, (size_t)(end - start));
	sp_buf_init(&check);
	ret = mime_section("", 0, section, &check);
	sp_buf_deinit(&check);
	if (ret < 0) {
		free(section);
		return -1;
	}
	it = add_item(req);
	it->section = section;
	it->peek = peek;
	p = end + 1;
	if (*p == '<') {
		unsigned long long a, b;
		int n = 0;

		if (sscanf(p, "<%llu.%llu>%n", &a, &b, &n) != 2 ||
		    p[n] != '\0' || b == 0)
			return -1;
		it->partial = true;
		it->origin = a;
		it->length = b;
		it->name = xasprintf("BODY[%s]<%llu>", section, a);
	} else if (*p != '\0') {
		return -1;
	} else {
		it->name = xasprintf("BODY[%s]", section);
	}
	if (!peek)
		req->sets_seen = true;
	return 0;
}

static int
parse_item(struct fetch_req *req, const struct imap_arg *arg)
{
	const char *a;
	struct body_item *it;

	if (arg->type != IMAP_ARG_ATOM)
		return -1;
	a = arg->str;
	if (strcasecmp(a, "ALL") == 0)
		req->flags |= F_FLAGS | F_INTERNALDATE | F_SIZE | F_ENVELOPE;
	else if (strcasecmp(a, "FAST") == 0)
		req->flags |= F_FLAGS | F_INTERNALDATE | F_SIZE;
	else if (strcasecmp(a, "FULL") == 0)
		req->flags |= F_FLAGS | F_INTERNALDATE | F_SIZE | F_ENVELOPE |
			      F_BODY;
	else if (strcasecmp(a, "UID") == 0)
		req->flags |= F_UID;
	else if (strcasecmp(a, "FLAGS") == 0)
		req->flags |= F_FLAGS;
	else if (strcasecmp(a, "INTERNALDATE") == 0)
		req->flags |= F_INTERNALDATE;
	else if (strcasecmp(a, "RFC822.SIZE") == 0)
		req->flags |= F_SIZE;
	else if (strcasecmp(a, "ENVELOPE") == 0)
		req->flags |= F_ENVELOPE;
	else if (strcasecmp(a, "BODY") == 0)
		req->flags |= F_BODY;
	else if (strcasecmp(a, "BODYSTRUCTURE") == 0)
		req->flags |= F_BODYSTRUCTURE;
	else if (strcasecmp(a, "MODSEQ") == 0)
		req->flags |= F_MODSEQ;
	else if (strcasecmp(a, "RFC822") == 0 ||
		 strcasecmp(a, "RFC822.HEADER") == 0 ||
		 strcasecmp(a, "RFC822.TEXT") == 0) {
		it = add_item(req);
		it->name = xstrdup(a);
		str_lower(it->name);
		for (char *p = it->name; *p != '\0'; p++)
			*p = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
		it->section = xstrdup(strcasecmp(a, "RFC822") == 0 ? ""
				      : strcasecmp(a, "RFC822.HEADER") == 0
					      ? "HEADER"
					      : "TEXT");
		it->peek = strcasecmp(a, "RFC822.HEADER") == 0;
		if (!it->peek)
			req->sets_seen = true;
	} else if (strncasecmp(a, "BODY[", 5) == 0 ||
		   strncasecmp(a, "BODY.PEEK[", 10) == 0) {
		return parse_body_item(req, a);
	} else {
		return -1;
	}
	return 0;
}

static void
append_literal(struct sp_buf *out, const char *data, size_t len)
{
	sp_buf_printf(out, "{%zu}\r\n", len);
	sp_buf_append(out, data, len);
}

void
imap_cmd_fetch(struct imap_cmd *cmd)
{
	struct imap_session *s = cmd->session;
	struct store_mailbox *mbox = s->user->mbox;
	struct fetch_req req = {0};
	struct store_uidset set;
	struct store_message *msgs = NULL;
	size_t count = 0;
	uint64_t changedsince = 0;
	const char *error = NULL;
	enum store_error err;
	int fields = 0;
	struct sp_buf raw, part;

	if (cmd->argc < 2 || cmd->argc > 3)
		goto bad;
	if (cmd->args[1].type == IMAP_ARG_LIST) {
		if (cmd->args[1].list_count == 0)
			goto bad;
		for (unsigned i = 0; i < cmd->args[1].list_count; i++) {
			if (parse_item(&req, &cmd->args[1].list[i]) < 0)
				goto bad;
		}
	} else if (parse_item(&req, &cmd->args[1]) < 0) {
		goto bad;
	}
	if (cmd->argc == 3) {
		const struct imap_arg *m = &cmd->args[2];
		unsigned long long v;
		char end;

		if (m->type != IMAP_ARG_LIST || m->list_count != 2 ||
		    !imap_arg_is_atom(&m->list[0], "CHANGEDSINCE") ||
		    m->list[1].type != IMAP_ARG_ATOM ||
		    sscanf(m->list[1].str, "%llu%c", &v, &end) != 1)
			goto bad;
		changedsince = v;
		req.flags |= F_MODSEQ;
	}
	if (cmd->uid)
		req.flags |= F_UID;
	if ((req.flags & F_MODSEQ) != 0)
		s->condstore = true;
	if (imap_cmd_uidset(cmd, imap_arg_astring(&cmd->args[0]), cmd->uid,
			    &set) < 0) {
		fetch_req_clear(&req);
		imap_cmd_bad(cmd, "Invalid messageset.");
		return;
	}
	if (set.count == 0) {
		free((void *)set.ranges);
		fetch_req_clear(&req);
		imap_cmd_ok(cmd, "Fetch completed.");
		return;
	}
	if (req.sets_seen && !s->readonly) {
		/* Reading a body sets \Seen; the FETCH says so. */
		bool in_sync = imap_session_in_sync(s, mbox);

		err = store_flags_update(mbox, s->folder_id, &set,
					 STORE_FLAGS_ADD, STORE_FLAG_SEEN, NULL,
					 0, NULL, NULL, NULL, NULL, &error);
		if (err != STORE_OK) {
			free((void *)set.ranges);
			fetch_req_clear(&req);
			imap_cmd_store_error(cmd, err, error);
			return;
		}
		imap_session_own_changes(s, mbox, in_sync);
		req.flags |= F_FLAGS;
	}
	if ((req.flags & F_ENVELOPE) != 0)
		fields |= STORE_FETCH_ENVELOPE;
	if ((req.flags & F_BODY) != 0)
		fields |= STORE_FETCH_BODY;
	if ((req.flags & F_BODYSTRUCTURE) != 0)
		fields |= STORE_FETCH_BODYSTRUCTURE;
	err = store_fetch(mbox, s->folder_id, &set, fields, &msgs, &count,
			  &error);
	free((void *)set.ranges);
	if (err != STORE_OK) {
		fetch_req_clear(&req);
		imap_cmd_store_error(cmd, err, error);
		return;
	}
	sp_buf_init(&raw);
	sp_buf_init(&part);
	for (size_t i = 0; i < count; i++) {
		const struct store_message *m = &msgs[i];
		uint32_t seq = imap_session_seq(s, m->uid);
		const char *sep = "";

		if (seq == 0 || (changedsince > 0 && m->modseq <= changedsince))
			continue;
		sp_buf_printf(&cmd->out, "* %u FETCH (", seq);
		if ((req.flags & F_UID) != 0) {
			sp_buf_printf(&cmd->out, "UID %u", m->uid);
			sep = " ";
		}
		if ((req.flags & F_FLAGS) != 0) {
			sp_buf_printf(&cmd->out, "%sFLAGS ", sep);
			imap_append_flags(&cmd->out, m->flags, m->keywords,
					  imap_session_is_recent(s, m->uid));
			sep = " ";
		}
		if ((req.flags & F_INTERNALDATE) != 0) {
			char date[32];

			imap_format_datetime(m->internal_date, date);
			sp_buf_printf(&cmd->out, "%sINTERNALDATE \"%s\"", sep,
				      date);
			sep = " ";
		}
		if ((req.flags & F_SIZE) != 0) {
			sp_buf_printf(&cmd->out, "%sRFC822.SIZE %llu", sep,
				      (unsigned long long)m->size);
			sep = " ";
		}
		if ((req.flags & F_ENVELOPE) != 0 && m->envelope != NULL) {
			sp_buf_printf(&cmd->out, "%sENVELOPE %s", sep,
				      m->envelope);
			sep = " ";
		}
		if ((req.flags & F_BODY) != 0 && m->body != NULL) {
			sp_buf_printf(&cmd->out, "%sBODY %s", sep, m->body);
			sep = " ";
		}
		if ((req.flags & F_BODYSTRUCTURE) != 0 &&
		    m->bodystructure != NULL) {
			sp_buf_printf(&cmd->out, "%sBODYSTRUCTURE %s", sep,
				      m->bodystructure);
			sep = " ";
		}
		if ((req.flags & F_MODSEQ) != 0) {
			sp_buf_printf(&cmd->out, "%sMODSEQ (%llu)", sep,
				      (unsigned long long)m->modseq);
			sep = " ";
		}
		if (req.item_count > 0) {
			sp_buf_reset(&raw);
			err = store_fetch_raw(mbox, s->folder_id, m->uid, &raw,
					      &error);
			if (err != STORE_OK) {
				sp_buf_append_str(&cmd->out, ")\r\n");
				continue;
			}
		}
		for (size_t j = 0; j < req.item_count; j++) {
			const struct body_item *it = &req.items[j];
			const char *data;
			size_t len;

			sp_buf_reset(&part);
			(void)mime_section(raw.data != NULL ? raw.data : "",
					   raw.len, it->section, &part);
			data = part.data != NULL ? part.data : "";
			len = part.len;
			if (it->partial) {
				if (it->origin >= len) {
					len = 0;
				} else {
					data += it->origin;
					len -= (size_t)it->origin;
					if (len > it->length)
						len = (size_t)it->length;
				}
			}
			sp_buf_printf(&cmd->out, "%s%s ", sep, it->name);
			append_literal(&cmd->out, data, len);
			sep = " ";
		}
		sp_buf_append_str(&cmd->out, ")\r\n");
	}
	sp_buf_deinit(&raw);
	sp_buf_deinit(&part);
	store_messages_free(&msgs, count);
	fetch_req_clear(&req);
	imap_cmd_ok(cmd, "Fetch completed.");
	/* Only a \Seen change is a change others must hear of. */
	cmd->changed = req.sets_seen && !s->readonly;
	return;
bad:
	fetch_req_clear(&req);
	imap_cmd_bad(cmd, "Invalid FETCH arguments.");
}
