/* LIST (with SPECIAL-USE and CHILDREN attributes), LSUB and STATUS. */
#include "imap-private.h"
#include "imap-mutf7.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* IMAP wildcards: '*' matches anything, '%' anything but the delimiter.
 * "INBOX" compares without regard to case. */
static bool
match(const char *pattern, const char *name)
{
	for (; *pattern != '\0'; pattern++, name++) {
		if (*pattern == '*' || *pattern == '%') {
			for (const char *n = name;; n++) {
				if (match(pattern + 1, n))
					return true;
				if (*n == '\0' ||
				    (*pattern == '%' && *n == '/'))
					return false;
			}
		}
		if (*pattern != *name)
			return false;
	}
	return *name == '\0';
}

static bool
match_name(const char *pattern, const char *name)
{
	if (strncasecmp(pattern, "INBOX", 5) == 0 &&
	    strncmp(name, "INBOX", 5) == 0) {
		char *p = xstrdup(pattern);
		bool ok;

		memcpy(p, "INBOX", 5);
		ok = match(p, name);
		free(p);
		return ok;
	}
	return match(pattern, name);
}

static void
list(struct imap_cmd *cmd, bool lsub)
{
	struct imap_session *s = cmd->session;
	struct store_folder *folders = NULL;
	size_t count = 0;
	const char *ref, *pat, *error = NULL;
	enum store_error err;
	unsigned argi = 0;
	bool special_only = false;
	char *pattern, *ref_utf8 = NULL, *pat_utf8;

	/* LIST-EXTENDED selection options: only (SPECIAL-USE) is known. */
	if (!lsub && cmd->argc > 0 && cmd->args[0].type == IMAP_ARG_LIST) {
		const struct imap_arg *opts = &cmd->args[0];

		for (unsigned i = 0; i < opts->list_count; i++) {
			if (imap_arg_is_atom(&opts->list[i], "SPECIAL-USE"))
				special_only = true;
			else if (!imap_arg_is_atom(&opts->list[i],
						   "SUBSCRIBED")) {
				imap_cmd_bad(cmd, "Unsupported LIST option.");
				return;
			}
		}
		argi = 1;
	}
	if (cmd->argc < argi + 2 ||
	    (ref = imap_arg_astring(&cmd->args[argi])) == NULL ||
	    (pat = imap_arg_astring(&cmd->args[argi + 1])) == NULL) {
		imap_cmd_bad(cmd, "Invalid arguments.");
		return;
	}
	/* RETURN (SPECIAL-USE) and the like: we always send the
	 * attributes, so the return options need nothing more. */
	if (pat[0] == '\0') {
		sp_buf_printf(&cmd->out, "* %s (\\Noselect) \"/\" \"\"\r\n",
			      lsub ? "LSUB" : "LIST");
		imap_cmd_ok(cmd, "%s completed.", lsub ? "Lsub" : "List");
		return;
	}
	/* Reference and pattern are modified UTF-7 like any name; the
	 * wildcards are printable ASCII and pass through. */
	if ((ref_utf8 = imap_mutf7_decode(ref, &error)) == NULL ||
	    (pat_utf8 = imap_mutf7_decode(pat, &error)) == NULL) {
		free(ref_utf8);
		imap_cmd_no(cmd, "Mailbox name is not valid modified UTF-7 "
				 "(RFC 3501 5.1.3): %s.", error);
		return;
	}
	pattern = pat_utf8[0] == '/' || ref_utf8[0] == '\0'
			  ? xstrdup(pat_utf8)
			  : xasprintf("%s%s%s", ref_utf8,
				      ref_utf8[strlen(ref_utf8) - 1] == '/'
					      ? ""
					      : "/",
				      pat_utf8);
	free(ref_utf8);
	free(pat_utf8);
	err = store_folder_list(s->user->mbox, &folders, &count, &error);
	if (err != STORE_OK) {
		free(pattern);
		imap_cmd_store_error(cmd, err, error);
		return;
	}
	for (size_t i = 0; i < count; i++) {
		const struct store_folder *f = &folders[i];
		const char *use = store_special_use_name(f->special_use);

		if (!match_name(pattern, f->name))
			continue;
		if (lsub && !f->subscribed)
			continue;
		if (special_only && use == NULL)
			continue;
		sp_buf_printf(&cmd->out, "* %s (%s", lsub ? "LSUB" : "LIST",
			      f->has_children ? "\\HasChildren"
					      : "\\HasNoChildren");
		if (use != NULL)
			sp_buf_printf(&cmd->out, " %s", use);
		if (f->subscribed && !lsub)
			sp_buf_append_str(&cmd->out, " \\Subscribed");
		sp_buf_append_str(&cmd->out, ") \"/\" ");
		imap_append_mailbox(&cmd->out, f->name);
		sp_buf_append_str(&cmd->out, "\r\n");
	}
	store_folder_list_free(&folders, count);
	free(pattern);
	imap_cmd_ok(cmd, "%s completed.", lsub ? "Lsub" : "List");
}

void
imap_cmd_list(struct imap_cmd *cmd)
{
	list(cmd, false);
}

void
imap_cmd_lsub(struct imap_cmd *cmd)
{
	list(cmd, true);
}

void
imap_cmd_status(struct imap_cmd *cmd)
{
	struct imap_session *s = cmd->session;
	struct store_folder *folder = NULL;
	struct store_folder_status st;
	const struct imap_arg *items;
	const char *error = NULL;
	enum store_error err;
	struct sp_buf line;
	char *name;

	if (cmd->argc != 2 || cmd->args[1].type != IMAP_ARG_LIST) {
		imap_cmd_bad(cmd, "Invalid arguments.");
		return;
	}
	if ((name = imap_cmd_mailbox(cmd, &cmd->args[0])) == NULL)
		return;
	err = store_folder_get(s->user->mbox, name, &folder, &error);
	if (err == STORE_OK)
		err = store_folder_status(s->user->mbox, folder->id, &st,
					  &error);
	store_folder_free(&folder);
	if (err != STORE_OK) {
		free(name);
		imap_cmd_store_error(cmd, err, error);
		return;
	}
	items = &cmd->args[1];
	sp_buf_init(&line);
	for (unsigned i = 0; i < items->list_count; i++) {
		const struct imap_arg *it = &items->list[i];
		unsigned long long v;
		const char *label;

		if (imap_arg_is_atom(it, "MESSAGES"))
			label = "MESSAGES", v = st.messages;
		else if (imap_arg_is_atom(it, "RECENT"))
			label = "RECENT", v = st.recent;
		else if (imap_arg_is_atom(it, "UIDNEXT"))
			label = "UIDNEXT", v = st.uidnext;
		else if (imap_arg_is_atom(it, "UIDVALIDITY"))
			label = "UIDVALIDITY", v = st.uidvalidity;
		else if (imap_arg_is_atom(it, "UNSEEN"))
			label = "UNSEEN", v = st.unseen;
		else if (imap_arg_is_atom(it, "HIGHESTMODSEQ"))
			label = "HIGHESTMODSEQ",
			v = st.highest_modseq > 0 ? st.highest_modseq : 1;
		else if (imap_arg_is_atom(it, "SIZE"))
			label = "SIZE", v = st.size;
		else {
			sp_buf_deinit(&line);
			free(name);
			imap_cmd_bad(cmd, "Unknown STATUS item.");
			return;
		}
		sp_buf_printf(&line, "%s%s %llu", line.len > 0 ? " " : "",
			      label, v);
	}
	sp_buf_append_str(&cmd->out, "* STATUS ");
	imap_append_mailbox(&cmd->out, name);
	sp_buf_printf(&cmd->out, " (%s)\r\n",
		      line.data != NULL ? line.data : "");
	sp_buf_deinit(&line);
	free(name);
	imap_cmd_ok(cmd, "Status completed.");
}
