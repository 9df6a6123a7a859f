/* sealpost deliver ADDRESS < message: one message through the recipient
 * lookup into the spool of the alias's mailbox -- store_deliver(), the path
 * the MX takes for mailbox targets. */
#include "admin-private.h"

#include "account/account.h"
#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Far above any sane message; stops a runaway pipe from eating memory. */
#define DELIVER_MAX_BYTES (256u * 1024 * 1024)

int
admin_cmd_deliver(struct admin_ctx *ctx, int argc, char **argv)
{
	struct account_db *adb;
	struct sp_buf msg;
	char chunk[65536];
	enum store_deliver_result result;
	const char *error = NULL;
	size_t n;
	int ret = ADMIN_EXIT_OK;

	if (argc != 1 || argv[0][0] == '-')
		return admin_usage(ctx, argc == 0 ? "ADDRESS is missing"
						  : "unexpected argument '%s'",
				   argc == 0 ? "" : argv[argc - 1]);
	sp_buf_init(&msg);
	while ((n = fread(chunk, 1, sizeof(chunk), stdin)) > 0) {
		if (msg.len + n > DELIVER_MAX_BYTES) {
			explicit_bzero(msg.data, msg.cap);
			sp_buf_deinit(&msg);
			return admin_fail("the message is larger than %u bytes",
					  DELIVER_MAX_BYTES);
		}
		sp_buf_append(&msg, chunk, n);
	}
	explicit_bzero(chunk, sizeof(chunk));
	if (ferror(stdin) || msg.len == 0) {
		sp_buf_deinit(&msg);
		return admin_fail("no message on standard input");
	}
	if (admin_become_data_owner(ctx) < 0 ||
	    (adb = admin_account_open(ctx)) == NULL) {
		explicit_bzero(msg.data, msg.cap);
		sp_buf_deinit(&msg);
		return ADMIN_EXIT_FAIL;
	}
	result = store_deliver(adb, ctx->data_dir, argv[0], msg.data, msg.len,
			       &error);
	if (result != STORE_DELIVER_OK)
		ret = admin_fail("%s: %s", argv[0], error);
	explicit_bzero(msg.data, msg.cap);
	sp_buf_deinit(&msg);
	account_db_close(&adb);
	return ret;
}
