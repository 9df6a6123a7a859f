/* sealpost mailbox import|export|delete|stats: an alias's mailbox, opened
 * with its password like a login does (the spool is drained first). */
#include "admin-private.h"

#include "account/account.h"
#include "crypto/crypto.h"
#include "store/store.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
admin_mailbox_removed(const char *mailbox_id, void *context)
{
	const char *data_dir = context, *error = NULL;

	if (store_mailbox_delete(data_dir, mailbox_id, &error) < 0)
		admin_fail("mailbox file: %s", error);
	admin_pending_remove(data_dir, mailbox_id);
}

void
admin_mailbox_close(struct admin_mailbox *am)
{
	store_mailbox_close(&am->mbox);
	if (am->logged_in) {
		account_session_keys_clear(&am->keys);
		account_login_release(am->alias->address);
		am->logged_in = false;
	}
	account_alias_free(&am->alias);
	account_db_close(&am->adb);
}

int
admin_mailbox_open(struct admin_ctx *ctx, const char *address,
		   struct admin_mailbox *am)
{
	const char *error = NULL;
	enum account_error aerr;
	enum store_error serr;
	char *password;
	size_t drained;
	int rc;

	memset(am, 0, sizeof(*am));
	if (admin_become_data_owner(ctx) < 0 ||
	    (am->adb = admin_account_open(ctx)) == NULL)
		return ADMIN_EXIT_FAIL;
	rc = account_alias_get(am->adb, address, &am->alias, &error);
	if (rc <= 0) {
		admin_mailbox_close(am);
		return rc == 0 ? admin_fail("no alias %s", address)
			       : admin_fail("%s", error);
	}
	if (!am->alias->has_mailbox || !am->alias->has_credentials) {
		rc = admin_fail(!am->alias->has_mailbox
					? "%s has no mailbox target"
					: "%s has no password yet (sealpost "
					  "alias password ADDRESS)",
				am->alias->address);
		admin_mailbox_close(am);
		return rc;
	}
	password = admin_read_secret("SEALPOST_PASSWORD", "Password: ");
	if (password == NULL) {
		admin_mailbox_close(am);
		return admin_fail("the password is too long");
	}
	aerr = store_login(am->adb, ctx->data_dir, am->alias->address,
			   password, &am->keys, &error);
	admin_secret_free(&password);
	if (aerr != ACCOUNT_OK) {
		admin_mailbox_close(am);
		return aerr == ACCOUNT_ERR_AUTH
			       ? admin_fail("wrong password for %s", address)
			       : admin_fail("%s", error);
	}
	am->logged_in = true;
	serr = store_mailbox_open(ctx->data_dir, am->keys.mailbox_id,
				  am->keys.mailbox_key, STORE_OPEN_CREATE,
				  &am->mbox, &error);
	if (serr != STORE_OK) {
		rc = serr == STORE_ERR_BADKEY
			     ? admin_fail("wrong password for %s (the mailbox "
					  "does not open with it)",
					  address)
			     : admin_fail("mailbox: %s", error);
		admin_mailbox_close(am);
		return rc;
	}
	serr = store_spool_drain(am->mbox, am->keys.public_key,
				 am->keys.secret_key, &drained, &error);
	if (serr != STORE_OK) {
		admin_mailbox_close(am);
		return admin_fail("spool: %s", error);
	}
	return ADMIN_EXIT_OK;
}

/* Options of the form --name VALUE among the arguments; the rest are
 * positional. */
int
admin_cmd_mailbox_import(struct admin_ctx *ctx, int argc, char **argv)
{
	struct admin_mailbox am;
	const char *folder = NULL, *value, *error = NULL;
	const char **files = xcalloc((size_t)argc + 1, sizeof(char *));
	const char *address = NULL;
	size_t nfiles = 0, total = 0;
	int ret;

	for (int i = 0; i < argc; i++) {
		int rc = admin_option_value(argc, argv, &i, "--folder", &value);

		if (rc < 0) {
			free(files);
			return admin_usage(ctx, "--folder needs NAME");
		}
		if (rc > 0) {
			folder = value;
		} else if (argv[i][0] == '-' && argv[i][1] != '\0') {
			free(files);
			return admin_usage(ctx, "unknown option '%s'", argv[i]);
		} else if (address == NULL) {
			address = argv[i];
		} else {
			files[nfiles++] = argv[i];
		}
	}
	if (address == NULL || nfiles == 0) {
		free(files);
		return admin_usage(ctx, "ADDRESS and FILE are needed");
	}
	if ((ret = admin_mailbox_open(ctx, address, &am)) != ADMIN_EXIT_OK) {
		free(files);
		return ret;
	}
	if (folder != NULL) {
		enum store_error err =
			store_folder_create(am.mbox, folder, STORE_SPECIAL_NONE,
					    &error);

		if (err != STORE_OK && err != STORE_ERR_EXISTS) {
			ret = admin_fail("folder %s: %s", folder, error);
			goto out;
		}
	}
	for (size_t i = 0; i < nfiles; i++) {
		size_t n = 0;
		enum store_error err =
			store_import(am.mbox, folder, files[i], &n, &error);

		if (err != STORE_OK) {
			ret = admin_fail("%s: %s", files[i], error);
			goto out;
		}
		total += n;
	}
	if (ctx->json)
		printf("{\"imported\": %zu}\n", total);
	else
		fprintf(stderr, "sealpost: imported %zu message%s\n", total,
			total == 1 ? "" : "s");
out:
	admin_mailbox_close(&am);
	free(files);
	return ret;
}

int
admin_cmd_mailbox_export(struct admin_ctx *ctx, int argc, char **argv)
{
	struct admin_mailbox am;
	const char *folder = NULL, *out = NULL, *format = "mbox", *value;
	const char *address = NULL, *error = NULL;
	enum store_format fmt;
	size_t n = 0;
	int ret;

	for (int i = 0; i < argc; i++) {
		int rc;

		if ((rc = admin_option_value(argc, argv, &i, "--folder",
					     &value)) != 0) {
			if (rc < 0)
				return admin_usage(ctx, "--folder needs NAME");
			folder = value;
		} else if ((rc = admin_option_value(argc, argv, &i, "--format",
						    &value)) != 0) {
			if (rc < 0)
				return admin_usage(ctx, "--format needs a "
							"value");
			format = value;
		} else if ((rc = admin_option_value(argc, argv, &i, "-o",
						    &value)) != 0 ||
			   (rc = admin_option_value(argc, argv, &i, "--output",
						    &value)) != 0) {
			if (rc < 0)
				return admin_usage(ctx, "-o needs PATH");
			out = value;
		} else if (argv[i][0] == '-' && argv[i][1] != '\0') {
			return admin_usage(ctx, "unknown option '%s'", argv[i]);
		} else if (address == NULL) {
			address = argv[i];
		} else {
			return admin_usage(ctx, "unexpected argument '%s'",
					   argv[i]);
		}
	}
	if (address == NULL || out == NULL)
		return admin_usage(ctx, "ADDRESS and -o PATH are needed");
	if (strcmp(format, "mbox") == 0)
		fmt = STORE_FORMAT_MBOX;
	else if (strcmp(format, "eml") == 0)
		fmt = STORE_FORMAT_EML;
	else
		return admin_usage(ctx, "--format is mbox or eml");
	if ((ret = admin_mailbox_open(ctx, address, &am)) != ADMIN_EXIT_OK)
		return ret;
	if (store_export(am.mbox, folder, fmt, out, &n, &error) != STORE_OK)
		ret = admin_fail("export: %s", error);
	else if (ctx->json)
		printf("{\"exported\": %zu}\n", n);
	else
		fprintf(stderr, "sealpost: exported %zu message%s to %s\n", n,
			n == 1 ? "" : "s", out);
	admin_mailbox_close(&am);
	return ret;
}

int
admin_cmd_mailbox_delete(struct admin_ctx *ctx, int argc, char **argv)
{
	struct account_db *adb;
	struct account_alias *alias = NULL;
	const char *error = NULL;
	int rc;

	if (argc != 1 || argv[0][0] == '-')
		return admin_usage(ctx, argc == 0 ? "ADDRESS is missing"
						  : "unexpected argument '%s'",
				   argc == 0 ? "" : argv[argc - 1]);
	if (admin_become_data_owner(ctx) < 0 ||
	    (adb = admin_account_open(ctx)) == NULL)
		return ADMIN_EXIT_FAIL;
	rc = account_alias_get(adb, argv[0], &alias, &error);
	if (rc <= 0) {
		account_db_close(&adb);
		return rc == 0 ? admin_fail("no alias %s", argv[0])
			       : admin_fail("%s", error);
	}
	rc = store_mailbox_delete(ctx->data_dir, alias->mailbox_id, &error);
	admin_pending_remove(ctx->data_dir, alias->mailbox_id);
	account_alias_free(&alias);
	account_db_close(&adb);
	if (rc < 0)
		return admin_fail("delete: %s", error);
	return ADMIN_EXIT_OK;
}

int
admin_cmd_mailbox_stats(struct admin_ctx *ctx, int argc, char **argv)
{
	struct admin_mailbox am;
	struct store_folder *folders = NULL;
	struct store_usage usage;
	size_t nfolders = 0;
	const char *error = NULL;
	json_t *root = NULL, *jfolders = NULL;
	int ret;

	if (argc != 1 || argv[0][0] == '-')
		return admin_usage(ctx, argc == 0 ? "ADDRESS is missing"
						  : "unexpected argument '%s'",
				   argc == 0 ? "" : argv[argc - 1]);
	if ((ret = admin_mailbox_open(ctx, argv[0], &am)) != ADMIN_EXIT_OK)
		return ret;
	if (store_mailbox_usage(am.mbox, &usage, &error) != STORE_OK ||
	    store_folder_list(am.mbox, &folders, &nfolders, &error) !=
		    STORE_OK) {
		ret = admin_fail("%s", error);
		goto out;
	}
	if (ctx->json) {
		root = json_object();
		jfolders = json_array();
	} else {
		printf("%-30s %8s %8s %12s\n", "folder", "messages", "unseen",
		       "bytes");
	}
	for (size_t i = 0; i < nfolders; i++) {
		struct store_folder_status st;

		if (store_folder_status(am.mbox, folders[i].id, &st,
					&error) != STORE_OK) {
			ret = admin_fail("%s", error);
			goto out;
		}
		if (ctx->json) {
			json_t *f = json_object();
			const char *use =
				store_special_use_name(folders[i].special_use);

			json_object_set_new(f, "name",
					    json_string(folders[i].name));
			json_object_set_new(f, "special_use",
					    use != NULL ? json_string(use)
							: json_null());
			json_object_set_new(f, "messages",
					    json_integer(st.messages));
			json_object_set_new(f, "unseen",
					    json_integer(st.unseen));
			json_object_set_new(f, "bytes",
					    json_integer((json_int_t)st.size));
			json_object_set_new(f, "uidvalidity",
					    json_integer(st.uidvalidity));
			json_object_set_new(f, "uidnext",
					    json_integer(st.uidnext));
			json_array_append_new(jfolders, f);
		} else {
			printf("%-30s %8u %8u %12llu\n", folders[i].name,
			       st.messages, st.unseen,
			       (unsigned long long)st.size);
		}
	}
	if (ctx->json) {
		json_object_set_new(root, "folders", jfolders);
		jfolders = NULL;
		json_object_set_new(root, "messages",
				    json_integer((json_int_t)usage.messages));
		json_object_set_new(root, "bytes",
				    json_integer((json_int_t)usage.bytes));
		json_object_set_new(root, "attachments",
				    json_integer(
					    (json_int_t)usage.attachments));
		json_object_set_new(root, "attachment_bytes",
				    json_integer((json_int_t)
							 usage.attachment_bytes));
		json_object_set_new(root, "dedup_saved_bytes",
				    json_integer(
					    (json_int_t)usage.dedup_saved));
		json_object_set_new(root, "file_bytes",
				    json_integer((json_int_t)usage.file_bytes));
		admin_json_print(root);
		root = NULL;
	} else {
		printf("total: %llu messages, %llu bytes; %llu attachment "
		       "bodies (%llu bytes) stored once, %llu bytes saved by "
		       "de-duplication; file %llu bytes\n",
		       (unsigned long long)usage.messages,
		       (unsigned long long)usage.bytes,
		       (unsigned long long)usage.attachments,
		       (unsigned long long)usage.attachment_bytes,
		       (unsigned long long)usage.dedup_saved,
		       (unsigned long long)usage.file_bytes);
	}
out:
	json_decref(root);
	json_decref(jfolders);
	store_folder_list_free(&folders, nfolders);
	admin_mailbox_close(&am);
	return ret;
}
