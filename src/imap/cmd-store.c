/* STORE and UID STORE, with CONDSTORE's UNCHANGEDSINCE. */
#include "imap-private.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* "1,3:5" from sorted numbers. */
static void
append_set(struct sp_buf *out, uint32_t *nums, size_t count)
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

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

void
imap_cmd_store(struct imap_cmd *cmd)
{
	struct imap_session *s = cmd->session;
	const struct imap_arg *args = cmd->args;
	unsigned argc = cmd->argc, ai = 1;
	uint64_t unchangedsince = 0;
	enum store_flags_op op;
	bool silent = false;
	const char *opname;
	uint32_t flags;
	char *keywords = NULL;
	struct store_uidset set;
	struct store_message *changed = NULL;
	size_t changed_count = 0, failed_count = 0;
	uint32_t *failed = NULL;
	const char *error = NULL;
	enum store_error err;
	bool in_sync;

	if (argc < 3)
		goto bad;
	if (args[1].type == IMAP_ARG_LIST) {
		unsigned long long v;
		char end;

		if (args[1].list_count != 2 ||
		    !imap_arg_is_atom(&args[1].list[0], "UNCHANGEDSINCE") ||
		    args[1].list[1].type != IMAP_ARG_ATOM ||
		    sscanf(args[1].list[1].str, "%llu%c", &v, &end) != 1)
			goto bad;
		unchangedsince = v;
		s->condstore = true;
		ai = 2;
	}
	if (argc < ai + 2 || args[ai].type != IMAP_ARG_ATOM)
		goto bad;
	opname = args[ai].str;
	if (opname[0] == '+') {
		op = STORE_FLAGS_ADD;
		opname++;
	} else if (opname[0] == '-') {
		op = STORE_FLAGS_REMOVE;
		opname++;
	} else {
		op = STORE_FLAGS_SET;
	}
	if (strcasecmp(opname, "FLAGS.SILENT") == 0)
		silent = true;
	else if (strcasecmp(opname, "FLAGS") != 0)
		goto bad;
	ai++;
	if (args[ai].type == IMAP_ARG_LIST) {
		if (argc != ai + 1 ||
		    imap_parse_flags(args[ai].list, args[ai].list_count, &flags,
				     &keywords) < 0)
			goto bad;
	} else if (imap_parse_flags(&args[ai], argc - ai, &flags,
				    &keywords) < 0) {
		goto bad;
	}
	if (s->readonly) {
		free(keywords);
		imap_cmd_no(cmd, "[READ-ONLY] Mailbox is read-only.");
		return;
	}
	if (imap_cmd_uidset(cmd, imap_arg_astring(&args[0]), cmd->uid, &set) <
	    0) {
		free(keywords);
		imap_cmd_bad(cmd, "Invalid sequence set.");
		return;
	}
	if (set.count == 0) {
		free(keywords);
		free((void *)set.ranges);
		imap_cmd_ok(cmd, "Store completed.");
		return;
	}
	in_sync = imap_session_in_sync(s, s->user->mbox);
	err = store_flags_update(s->user->mbox, s->folder_id, &set, op, flags,
				 keywords, unchangedsince, &changed,
				 &changed_count, &failed, &failed_count,
				 &error);
	free(keywords);
	free((void *)set.ranges);
	if (err != STORE_OK) {
		imap_cmd_store_error(cmd, err, error);
		return;
	}
	imap_session_own_changes(s, s->user->mbox, in_sync);
	for (size_t i = 0; i < changed_count; i++) {
		const struct store_message *m = &changed[i];
		uint32_t seq = imap_session_seq(s, m->uid);
		bool failed_uid = false;

		for (size_t j = 0; j < failed_count; j++)
			failed_uid |= failed[j] == m->uid;
		/* .SILENT still reports the MODSEQ under CONDSTORE. */
		if (seq == 0 || failed_uid ||
		    (silent && unchangedsince == 0))
			continue;
		sp_buf_printf(&cmd->out, "* %u FETCH (", seq);
		if (cmd->uid)
			sp_buf_printf(&cmd->out, "UID %u ", m->uid);
		if (!silent) {
			sp_buf_append_str(&cmd->out, "FLAGS ");
			imap_append_flags(&cmd->out, m->flags, m->keywords,
					  imap_session_is_recent(s, m->uid));
		}
		if (s->condstore)
			sp_buf_printf(&cmd->out, "%sMODSEQ (%llu)",
				      silent ? "" : " ",
				      (unsigned long long)m->modseq);
		sp_buf_append_str(&cmd->out, ")\r\n");
	}
	store_messages_free(&changed, changed_count);
	if (failed_count > 0) {
		struct sp_buf mod;

		if (!cmd->uid) {
			for (size_t i = 0; i < failed_count; i++)
				failed[i] = imap_session_seq(s, failed[i]);
		}
		qsort(failed, failed_count, sizeof(uint32_t), cmp_u32);
		sp_buf_init(&mod);
		append_set(&mod, failed, failed_count);
		imap_cmd_ok(cmd, "[MODIFIED %s] Conditional STORE failed.",
			    mod.data);
		sp_buf_deinit(&mod);
	} else {
		imap_cmd_ok(cmd, "Store completed.");
	}
	free(failed);
	return;
bad:
	imap_cmd_bad(cmd, "Invalid STORE arguments.");
}
