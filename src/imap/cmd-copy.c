/* COPY and MOVE, with UIDPLUS COPYUID. */
#include "imap-private.h"

#include <stdlib.h>
#include <string.h>

static void
append_uids(struct sp_buf *out, const uint32_t *uids, size_t count)
{
	/* COPYUID sets must pair up element by element: no sorting, only
	 * runs that are consecutive on both sides may be joined, which the
	 * caller's order guarantees for the usual case. */
	for (size_t i = 0; i < count;) {
		size_t j = i;

		while (j + 1 < count && uids[j + 1] == uids[j] + 1)
			j++;
		if (i > 0)
			sp_buf_append_str(out, ",");
		if (j > i)
			sp_buf_printf(out, "%u:%u", uids[i], uids[j]);
		else
			sp_buf_printf(out, "%u", uids[i]);
		i = j + 1;
	}
}

static void
copy_move(struct imap_cmd *cmd, bool move)
{
	struct imap_session *s = cmd->session;
	struct store_folder *dst = NULL;
	struct store_uidset set;
	struct store_uid_map map = {0};
	const char *error = NULL;
	enum store_error err;
	char *name;

	if (cmd->argc != 2) {
		imap_cmd_bad(cmd, "Invalid arguments.");
		return;
	}
	if ((name = imap_cmd_mailbox(cmd, &cmd->args[1])) == NULL)
		return;
	if (move && s->readonly) {
		free(name);
		imap_cmd_no(cmd, "[READ-ONLY] Mailbox is read-only.");
		return;
	}
	if (imap_cmd_uidset(cmd, imap_arg_astring(&cmd->args[0]), cmd->uid,
			    &set) < 0) {
		free(name);
		imap_cmd_bad(cmd, "Invalid sequence set.");
		return;
	}
	err = store_folder_get(s->user->mbox, name, &dst, &error);
	free(name);
	if (err == STORE_ERR_NOTFOUND) {
		free((void *)set.ranges);
		imap_cmd_no(cmd, "[TRYCREATE] Mailbox doesn't exist.");
		return;
	}
	if (err == STORE_OK && set.count > 0)
		err = store_copy(s->user->mbox, s->folder_id, &set, dst->id,
				 move, &map, &error);
	free((void *)set.ranges);
	if (err != STORE_OK) {
		store_folder_free(&dst);
		imap_cmd_store_error(cmd, err, error);
		return;
	}
	if (map.count > 0) {
		struct sp_buf code;

		sp_buf_init(&code);
		sp_buf_printf(&code, "COPYUID %u ", map.dst_uidvalidity);
		append_uids(&code, map.src_uids, map.count);
		sp_buf_append_str(&code, " ");
		append_uids(&code, map.dst_uids, map.count);
		if (move) {
			/* RFC 6851: COPYUID before the EXPUNGEs. */
			sp_buf_printf(&cmd->out, "* OK [%s] Moved.\r\n",
				      code.data);
			imap_cmd_ok(cmd, "Move completed.");
		} else {
			imap_cmd_ok(cmd, "[%s] Copy completed.", code.data);
		}
		sp_buf_deinit(&code);
	} else {
		imap_cmd_ok(cmd, "%s completed.", move ? "Move" : "Copy");
	}
	store_uid_map_clear(&map);
	store_folder_free(&dst);
}

void
imap_cmd_copy(struct imap_cmd *cmd)
{
	copy_move(cmd, false);
}

void
imap_cmd_move(struct imap_cmd *cmd)
{
	copy_move(cmd, true);
}
