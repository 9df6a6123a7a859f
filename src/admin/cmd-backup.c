/* sealpost mailbox backup|backups|download|restore: the backup module on
 * the command line. Each asks for the alias's password (SEALPOST_PASSWORD
 * or a prompt): the backups are encrypted with the mailbox key. */
#include "admin-private.h"

#include "account/account.h"
#include "backup/backup.h"
#include "crypto/crypto.h"
#include "store/store.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* backup_error -> exit code: all failures are ADMIN_EXIT_FAIL, with the
 * module's message. */
static int
backup_cli_fail(enum backup_error err, const char *error)
{
	(void)err;
	return admin_fail("%s", error != NULL ? error : backup_error_str(err));
}

/* A login that does not open the mailbox (a restore must not drain the
 * spool into the file it is about to replace). */
struct backup_cli_login {
	struct account_db *adb;
	struct account_alias *alias;
	struct account_session_keys keys;
	bool logged_in;
	struct backup_target target;
};

static void
backup_cli_logout(struct backup_cli_login *l)
{
	if (l->logged_in) {
		account_session_keys_clear(&l->keys);
		account_login_release(l->alias->address);
		l->logged_in = false;
	}
	account_alias_free(&l->alias);
	account_db_close(&l->adb);
	backup_target_clear(&l->target);
}

/* need_target false: only a local file is involved (restore --file). */
static int
backup_cli_login(struct admin_ctx *ctx, const char *address, bool need_target,
		 struct backup_cli_login *l)
{
	const char *error = NULL;
	enum account_error aerr;
	enum backup_error berr;
	char *password;
	int rc;

	memset(l, 0, sizeof(*l));
	if (admin_become_data_owner(ctx) < 0 ||
	    (l->adb = admin_account_open(ctx)) == NULL)
		return ADMIN_EXIT_FAIL;
	rc = account_alias_get(l->adb, address, &l->alias, &error);
	if (rc <= 0) {
		backup_cli_logout(l);
		return rc == 0 ? admin_fail("no alias %s", address)
			       : admin_fail("%s", error);
	}
	/* Configuration first: no password is asked for nothing. The
	 * alias's domain may name its own bucket. */
	if (need_target) {
		berr = backup_target_from_settings(
			l->alias->domain != NULL
				? l->alias->domain->backup_bucket
				: NULL,
			&l->target, &error);
		if (berr != BACKUP_OK) {
			backup_cli_logout(l);
			return backup_cli_fail(berr, error);
		}
	}
	if (!l->alias->has_mailbox || !l->alias->has_credentials) {
		rc = admin_fail(!l->alias->has_mailbox
					? "%s has no mailbox target"
					: "%s has no password yet (sealpost "
					  "alias password ADDRESS)",
				l->alias->address);
		backup_cli_logout(l);
		return rc;
	}
	password = admin_read_secret("SEALPOST_PASSWORD", "Password: ");
	if (password == NULL) {
		backup_cli_logout(l);
		return admin_fail("the password is too long");
	}
	aerr = account_login(l->adb, l->alias->address, password, &l->keys,
			     &error);
	if (aerr == ACCOUNT_ERR_AUTH &&
	    admin_login_recover(ctx, l->adb, l->alias, password) == 1)
		aerr = account_login(l->adb, l->alias->address, password,
				     &l->keys, &error);
	admin_secret_free(&password);
	if (aerr != ACCOUNT_OK) {
		backup_cli_logout(l);
		return aerr == ACCOUNT_ERR_AUTH
			       ? admin_fail("wrong password for %s", address)
			       : admin_fail("%s", error);
	}
	l->logged_in = true;
	return ADMIN_EXIT_OK;
}

static void
backup_cli_print_version(const struct backup_version *v, bool json,
			 json_t *array)
{
	char when[21];

	clock_format_iso8601(v->created, when);
	if (json) {
		json_t *o = json_object();

		json_object_set_new(o, "version", json_string(v->version));
		json_object_set_new(o, "time", json_string(when));
		json_object_set_new(o, "size",
				    json_integer((json_int_t)v->size));
		json_object_set_new(o, "sha256", json_string(v->sha256));
		json_object_set_new(o, "key", json_string(v->key));
		json_array_append_new(array, o);
	} else {
		printf("%s  %s  %12llu  %s\n", v->version, when,
		       (unsigned long long)v->size, v->sha256);
	}
}

int
admin_cmd_mailbox_backup(struct admin_ctx *ctx, int argc, char **argv)
{
	struct admin_mailbox am;
	struct backup_target target;
	struct backup_result result;
	enum backup_error err;
	const char *error = NULL;
	int ret;

	if (argc != 1 || argv[0][0] == '-')
		return admin_usage(ctx, "ADDRESS is needed");
	if (admin_load_conf(ctx) < 0)
		return ADMIN_EXIT_FAIL;
	/* The domain's own bucket, before the password is asked for. */
	{
		struct account_db *adb;
		char *bucket = NULL;
		int rc;

		if (admin_become_data_owner(ctx) < 0 ||
		    (adb = admin_account_open(ctx)) == NULL)
			return ADMIN_EXIT_FAIL;
		rc = account_alias_backup_bucket(adb, argv[0], &bucket,
						 &error);
		account_db_close(&adb);
		if (rc < 0)
			return admin_fail("%s", error);
		err = backup_target_from_settings(bucket, &target, &error);
		free(bucket);
	}
	if (err != BACKUP_OK)
		return backup_cli_fail(err, error);
	/* Opening drains the spool: what has arrived is in the backup. */
	if ((ret = admin_mailbox_open(ctx, argv[0], &am)) != ADMIN_EXIT_OK) {
		backup_target_clear(&target);
		return ret;
	}
	store_mailbox_close(&am.mbox);
	err = backup_mailbox(&target, ctx->data_dir, am.keys.mailbox_id,
			     am.keys.mailbox_key, &result, &error);
	admin_mailbox_close(&am);
	backup_target_clear(&target);
	if (err != BACKUP_OK)
		return backup_cli_fail(err, error);
	if (ctx->json) {
		json_t *o = json_object();

		json_object_set_new(o, "uploaded",
				    json_boolean(result.uploaded));
		json_object_set_new(o, "copied", json_boolean(result.copied));
		json_object_set_new(o, "version",
				    json_string(result.version.version));
		json_object_set_new(
			o, "size",
			json_integer((json_int_t)result.version.size));
		json_object_set_new(o, "sha256",
				    json_string(result.version.sha256));
		json_object_set_new(o, "messages",
				    json_integer((json_int_t)result.messages));
		json_object_set_new(o, "pruned",
				    json_integer((json_int_t)result.pruned));
		json_object_set_new(o, "copy_seconds",
				    json_real(result.copy_seconds));
		json_object_set_new(o, "verify_seconds",
				    json_real(result.verify_seconds));
		json_object_set_new(o, "upload_seconds",
				    json_real(result.upload_seconds));
		admin_json_print(o);
	} else if (result.uploaded) {
		printf("uploaded %s (%llu bytes, %llu messages, SHA-256 %s)\n",
		       result.version.version,
		       (unsigned long long)result.version.size,
		       (unsigned long long)result.messages,
		       result.version.sha256);
	} else {
		printf("unchanged since %s: nothing uploaded\n",
		       result.version.version);
	}
	backup_result_clear(&result);
	return ADMIN_EXIT_OK;
}

int
admin_cmd_mailbox_backups(struct admin_ctx *ctx, int argc, char **argv)
{
	struct backup_cli_login l;
	struct backup_version *versions = NULL;
	size_t count = 0;
	enum backup_error err;
	const char *error = NULL;
	int ret;

	if (argc != 1 || argv[0][0] == '-')
		return admin_usage(ctx, "ADDRESS is needed");
	if ((ret = backup_cli_login(ctx, argv[0], true, &l)) != ADMIN_EXIT_OK)
		return ret;
	err = backup_list(&l.target, l.keys.mailbox_id, &versions, &count,
			  &error);
	backup_cli_logout(&l);
	if (err != BACKUP_OK)
		return backup_cli_fail(err, error);
	if (ctx->json) {
		json_t *array = json_array();

		for (size_t i = 0; i < count; i++)
			backup_cli_print_version(&versions[i], true, array);
		admin_json_print(array);
	} else {
		for (size_t i = 0; i < count; i++)
			backup_cli_print_version(&versions[i], false, NULL);
		if (count == 0)
			fprintf(stderr, "sealpost: no backups\n");
	}
	backup_versions_free(&versions, count);
	return ADMIN_EXIT_OK;
}

int
admin_cmd_mailbox_download(struct admin_ctx *ctx, int argc, char **argv)
{
	struct backup_cli_login l;
	const char *address = NULL, *version = NULL, *out = NULL, *value;
	const char *error = NULL;
	enum backup_error err;
	int ret;

	for (int i = 0; i < argc; i++) {
		int rc = admin_option_value(argc, argv, &i, "-o", &value);

		if (rc < 0)
			return admin_usage(ctx, "-o needs FILE");
		if (rc > 0)
			out = value;
		else if (argv[i][0] == '-')
			return admin_usage(ctx, "unknown option '%s'", argv[i]);
		else if (address == NULL)
			address = argv[i];
		else if (version == NULL)
			version = argv[i];
		else
			return admin_usage(ctx, "unexpected argument '%s'",
					   argv[i]);
	}
	if (address == NULL || out == NULL)
		return admin_usage(ctx, "ADDRESS and -o FILE are needed");
	if ((ret = backup_cli_login(ctx, address, true, &l)) != ADMIN_EXIT_OK)
		return ret;
	err = backup_download(&l.target, l.keys.mailbox_id, version,
			      l.keys.mailbox_key, out, &error);
	backup_cli_logout(&l);
	if (err != BACKUP_OK)
		return backup_cli_fail(err, error);
	if (!ctx->json)
		fprintf(stderr, "sealpost: downloaded and verified %s\n", out);
	return ADMIN_EXIT_OK;
}

/* The restore's before_swap: a running server closes the alias's sessions
 * (IMAP "* BYE", POP3 "-ERR") and keeps the mailbox shut until
 * admin_control_done. No server: nothing to close. */
struct backup_cli_swap {
	const char *data_dir;
	const char *mailbox_id;
	int fd;
	unsigned closed;
};

static int
backup_cli_before_swap(void *_ctx, const char **error_r)
{
	struct backup_cli_swap *swap = _ctx;

	if (admin_control_close_sessions(swap->data_dir, swap->mailbox_id,
					 &swap->fd, &swap->closed,
					 error_r) < 0)
		return -1;
	return 0;
}

int
admin_cmd_mailbox_restore(struct admin_ctx *ctx, int argc, char **argv)
{
	struct backup_cli_swap swap = {.fd = -1};
	struct backup_cli_login l;
	const char *address = NULL, *version = NULL, *file = NULL, *value;
	const char *error = NULL;
	enum backup_error err;
	uint64_t messages = 0;
	int ret;

	for (int i = 0; i < argc; i++) {
		int rc = admin_option_value(argc, argv, &i, "--file", &value);

		if (rc < 0)
			return admin_usage(ctx, "--file needs FILE");
		if (rc > 0)
			file = value;
		else if (argv[i][0] == '-')
			return admin_usage(ctx, "unknown option '%s'", argv[i]);
		else if (address == NULL)
			address = argv[i];
		else if (version == NULL)
			version = argv[i];
		else
			return admin_usage(ctx, "unexpected argument '%s'",
					   argv[i]);
	}
	if (address == NULL)
		return admin_usage(ctx, "ADDRESS is needed");
	if (file != NULL && version != NULL)
		return admin_usage(ctx,
				   "VERSION and --file exclude each other");
	ret = backup_cli_login(ctx, address, file == NULL, &l);
	if (ret != ADMIN_EXIT_OK)
		return ret;
	swap.data_dir = ctx->data_dir;
	swap.mailbox_id = l.keys.mailbox_id;
	err = backup_restore(file == NULL ? &l.target : NULL, ctx->data_dir,
			     l.keys.mailbox_id, l.keys.mailbox_key, version,
			     file, backup_cli_before_swap, &swap, &messages,
			     &error);
	/* The server lets the alias in again: to the restored file. */
	admin_control_done(&swap.fd, l.keys.mailbox_id);
	backup_cli_logout(&l);
	if (swap.closed > 0 && !ctx->json)
		fprintf(stderr,
			"sealpost: closed %u session(s) of the alias first\n",
			swap.closed);
	if (err != BACKUP_OK)
		return backup_cli_fail(err, error);
	if (ctx->json) {
		json_t *o = json_object();

		json_object_set_new(o, "messages",
				    json_integer((json_int_t)messages));
		json_object_set_new(o, "sessions_closed",
				    json_integer((json_int_t)swap.closed));
		admin_json_print(o);
	} else {
		printf("restored %llu messages\n",
		       (unsigned long long)messages);
	}
	return ADMIN_EXIT_OK;
}
