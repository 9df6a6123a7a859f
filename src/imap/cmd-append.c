/* APPEND (UIDPLUS APPENDUID, APPENDLIMIT). */
#include "imap-private.h"

#include <stdlib.h>
#include <string.h>

void
imap_cmd_append(struct imap_cmd *cmd)
{
	struct imap_session *s = cmd->session;
	const struct imap_arg *args = cmd->args, *msg;
	unsigned ai = 1;
	uint32_t flags = 0, uid = 0;
	char *keywords = NULL, *name;
	time_t date = 0;
	struct store_folder *folder = NULL;
	const char *error = NULL;
	enum store_error err;

	if (cmd->argc < 2 || cmd->argc > 4) {
		imap_cmd_bad(cmd, "Invalid APPEND arguments.");
		return;
	}
	if ((name = imap_cmd_mailbox(cmd, &args[0])) == NULL)
		return;
	if (ai < cmd->argc - 1 && args[ai].type == IMAP_ARG_LIST) {
		if (imap_parse_flags(args[ai].list, args[ai].list_count,
				     &flags, &keywords) < 0)
			goto bad;
		ai++;
	}
	if (ai < cmd->argc - 1) {
		if (args[ai].type != IMAP_ARG_STRING ||
		    imap_parse_datetime(args[ai].str, &date) < 0)
			goto bad;
		ai++;
	}
	msg = &args[ai];
	if (ai != cmd->argc - 1 || msg->type == IMAP_ARG_LIST)
		goto bad;
	if (msg->len > s->server->set.append_limit) {
		imap_cmd_no(cmd, "[TOOBIG] Message too large.");
		goto out;
	}
	if (msg->len == 0) {
		imap_cmd_no(cmd, "Empty message.");
		goto out;
	}
	err = store_folder_get(s->user->mbox, name, &folder, &error);
	if (err == STORE_ERR_NOTFOUND) {
		imap_cmd_no(cmd, "[TRYCREATE] Mailbox doesn't exist.");
		goto out;
	}
	if (err == STORE_OK)
		err = store_append(s->user->mbox, folder->id, msg->str,
				   msg->len, flags, keywords, date, &uid,
				   &error);
	if (err != STORE_OK) {
		imap_cmd_store_error(cmd, err, error);
		goto out;
	}
	imap_cmd_ok(cmd, "[APPENDUID %u %u] Append completed.",
		    folder->uidvalidity, uid);
	goto out;
bad:
	imap_cmd_bad(cmd, "Invalid APPEND arguments.");
out:
	store_folder_free(&folder);
	free(keywords);
	free(name);
}
