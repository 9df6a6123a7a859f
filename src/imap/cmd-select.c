/* SELECT and EXAMINE (with the CONDSTORE parameter). */
#include "imap-private.h"

#include <stdlib.h>
#include <string.h>

static void
select_folder(struct imap_cmd *cmd, bool readonly)
{
	struct imap_session *s = cmd->session;
	struct store_mailbox *mbox = s->user->mbox;
	struct store_folder *folder = NULL;
	struct store_folder_status st;
	struct store_search *unseen;
	uint32_t *uids = NULL, *recent = NULL;
	size_t count = 0, recent_count = 0;
	const char *error = NULL;
	enum store_error err;
	char *name;

	if (cmd->argc < 1 || cmd->argc > 2) {
		imap_cmd_bad(cmd, "Invalid arguments.");
		return;
	}
	if ((name = imap_cmd_mailbox(cmd, &cmd->args[0])) == NULL)
		return;
	if (cmd->argc == 2) {
		const struct imap_arg *p = &cmd->args[1];

		if (p->type != IMAP_ARG_LIST || p->list_count != 1 ||
		    !imap_arg_is_atom(&p->list[0], "CONDSTORE")) {
			free(name);
			imap_cmd_bad(cmd, "Unknown SELECT parameter.");
			return;
		}
		s->condstore = true;
	}
	/* A failed SELECT leaves no folder selected (RFC 3501 6.3.1). */
	imap_session_unselect(s);
	cmd->no_sync = true;
	err = store_folder_get(mbox, name, &folder, &error);
	if (err == STORE_OK)
		err = store_folder_status(mbox, folder->id, &st, &error);
	if (err == STORE_OK)
		err = store_folder_uids(mbox, folder->id, &uids, &count,
					&error);
	if (err == STORE_OK && !readonly)
		err = store_folder_take_recent(mbox, folder->id, &recent,
					       &recent_count, &error);
	if (err != STORE_OK) {
		imap_cmd_store_error(cmd, err, error);
		store_folder_free(&folder);
		free(uids);
		free(name);
		return;
	}
	s->folder_id = folder->id;
	s->folder_name = name;
	s->readonly = readonly;
	s->uidvalidity = st.uidvalidity;
	s->uids = uids;
	s->uid_count = s->uid_cap = count;
	s->recent = recent;
	s->recent_count = recent_count;
	s->modseq = st.highest_modseq;
	s->state = IMAP_STATE_SELECTED;

	sp_buf_append_str(&cmd->out,
			  "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen "
			  "\\Draft)\r\n");
	sp_buf_append_str(&cmd->out,
			  readonly ? "* OK [PERMANENTFLAGS ()] Read-only "
				     "mailbox.\r\n"
				   : "* OK [PERMANENTFLAGS (\\Answered "
				     "\\Flagged \\Deleted \\Seen \\Draft \\*)] "
				     "Flags permitted.\r\n");
	sp_buf_printf(&cmd->out, "* %zu EXISTS\r\n* %zu RECENT\r\n", count,
		      recent_count);
	/* The first unseen message, as RFC 3501 asks. */
	unseen = store_search_new(STORE_SEARCH_NOFLAGS);
	unseen->flags = STORE_FLAG_SEEN;
	{
		uint32_t *found = NULL;
		size_t found_count = 0;

		if (store_search_run(mbox, folder->id, unseen, NULL, 0, &found,
				     &found_count, NULL, &error) == STORE_OK &&
		    found_count > 0) {
			uint32_t seq = imap_session_seq(s, found[0]);

			if (seq > 0)
				sp_buf_printf(&cmd->out,
					      "* OK [UNSEEN %u] First unseen."
					      "\r\n",
					      seq);
		}
		free(found);
	}
	store_search_free(&unseen);
	sp_buf_printf(&cmd->out,
		      "* OK [UIDVALIDITY %u] UIDs valid.\r\n"
		      "* OK [UIDNEXT %u] Predicted next UID.\r\n",
		      st.uidvalidity, st.uidnext);
	sp_buf_printf(&cmd->out,
		      "* OK [HIGHESTMODSEQ %llu] Highest.\r\n",
		      (unsigned long long)(st.highest_modseq > 0
						   ? st.highest_modseq
						   : 1));
	imap_cmd_ok(cmd, "[%s] %s completed.",
		    readonly ? "READ-ONLY" : "READ-WRITE",
		    readonly ? "Examine" : "Select");
	store_folder_free(&folder);
}

void
imap_cmd_select(struct imap_cmd *cmd)
{
	select_folder(cmd, false);
}

void
imap_cmd_examine(struct imap_cmd *cmd)
{
	select_folder(cmd, true);
}
