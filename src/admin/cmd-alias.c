/* sealpost alias add|list|show|remove|set (alias password is the store's,
 * in its own file). */
#include "admin-private.h"

#include "account/account.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PGP_FILE_MAX (64 * 1024)

/* The options of add and set, parsed into an account_alias_change. */
struct alias_args {
	const char *address;
	struct account_alias_change change;
	const char **forwards;
	const char **webhooks;
	char *pgp_key;
};

static void
alias_args_deinit(struct alias_args *args)
{
	free(args->forwards);
	free(args->webhooks);
	free(args->pgp_key);
}

static int
read_pgp_file(struct admin_ctx *ctx, const char *path, char **key_r)
{
	char *data;
	size_t len;

	if (fs_read_file(path, &data, &len) < 0)
		return admin_fail("%s: %s", path, strerror(errno));
	if (len > PGP_FILE_MAX || memchr(data, '\0', len) != NULL) {
		free(data);
		return admin_fail("%s: not an ASCII-armored OpenPGP key "
				  "(export it with gpg --armor --export)",
				  path);
	}
	*key_r = data;
	return ADMIN_EXIT_OK;
}

/* Parses ADDRESS and the options; `set` allows the options that change an
 * existing alias. Returns an exit code (ADMIN_EXIT_OK to go on). */
static int
alias_args_parse(struct admin_ctx *ctx, int argc, char **argv, bool set,
		 struct alias_args *args)
{
	size_t nfwd = 0, nhook = 0;
	const char *value;
	int rc;

	memset(args, 0, sizeof(*args));
	account_alias_change_init(&args->change);
	args->forwards = xcalloc((size_t)argc + 1, sizeof(char *));
	args->webhooks = xcalloc((size_t)argc + 1, sizeof(char *));
	if (!set)
		args->change.enabled = 1;
	for (int i = 0; i < argc; i++) {
		const char *arg = argv[i];

		if (strcmp(arg, "--mailbox") == 0) {
			args->change.mailbox = 1;
		} else if (set && strcmp(arg, "--no-mailbox") == 0) {
			args->change.mailbox = 0;
		} else if (set && strcmp(arg, "--clear-targets") == 0) {
			args->change.clear_targets = true;
		} else if (set && strcmp(arg, "--enable") == 0) {
			args->change.enabled = 1;
		} else if (strcmp(arg, "--disable") == 0 ||
			   (!set && strcmp(arg, "--disabled") == 0)) {
			args->change.enabled = 0;
		} else if (strcmp(arg, "--save-sent") == 0) {
			args->change.save_sent = 1;
		} else if (strcmp(arg, "--no-save-sent") == 0) {
			args->change.save_sent = 0;
		} else if (set && strcmp(arg, "--no-pgp-key") == 0) {
			free(args->pgp_key);
			args->pgp_key = xstrdup("");
		} else if ((rc = admin_option_value(argc, argv, &i, "--forward",
						    &value)) != 0) {
			if (rc < 0)
				return admin_usage(ctx, "--forward needs ADDR");
			args->forwards[nfwd++] = value;
		} else if ((rc = admin_option_value(argc, argv, &i, "--webhook",
						    &value)) != 0) {
			if (rc < 0)
				return admin_usage(ctx, "--webhook needs URL");
			args->webhooks[nhook++] = value;
		} else if ((rc = admin_option_value(argc, argv, &i, "--quota",
						    &value)) != 0) {
			if (rc < 0 ||
			    admin_parse_bytes(value,
					      &args->change.quota_bytes) < 0)
				return admin_usage(ctx, "--quota needs BYTES "
							"(e.g. 100000000 or "
							"1G; 0: no limit)");
		} else if ((rc = admin_option_value(argc, argv, &i, "--pgp-key",
						    &value)) != 0) {
			if (rc < 0)
				return admin_usage(ctx, "--pgp-key needs FILE");
			free(args->pgp_key);
			args->pgp_key = NULL;
			if ((rc = read_pgp_file(ctx, value, &args->pgp_key)) !=
			    ADMIN_EXIT_OK)
				return rc;
		} else if (arg[0] == '-' && arg[1] != '\0') {
			return admin_usage(ctx, "unknown option '%s'", arg);
		} else if (args->address == NULL) {
			args->address = arg;
		} else {
			return admin_usage(ctx, "unexpected argument '%s'",
					   arg);
		}
	}
	if (args->address == NULL)
		return admin_usage(ctx, "ADDRESS is missing");
	args->change.forwards = args->forwards;
	args->change.forward_count = nfwd;
	args->change.webhooks = args->webhooks;
	args->change.webhook_count = nhook;
	args->change.pgp_key = args->pgp_key;
	return ADMIN_EXIT_OK;
}

static json_t *
alias_json(const struct account_alias *a, bool full)
{
	char created[21];
	json_t *o = json_object(), *targets = json_array();

	clock_format_iso8601(a->created, created);
	json_object_set_new(o, "address", json_string(a->address));
	json_object_set_new(o, "kind",
			    json_string(a->kind == ACCOUNT_ALIAS_EXACT ? "exact"
					: a->kind == ACCOUNT_ALIAS_CATCHALL
						? "catchall"
						: "regex"));
	json_object_set_new(o, "local", json_string(a->local));
	json_object_set_new(o, "domain", json_string(a->domain->name));
	json_object_set_new(o, "enabled", json_boolean(a->enabled));
	for (size_t i = 0; i < a->target_count; i++) {
		const struct account_target *t = &a->targets[i];
		json_t *to = json_object();

		switch (t->kind) {
		case ACCOUNT_TARGET_MAILBOX:
			json_object_set_new(to, "kind", json_string("mailbox"));
			break;
		case ACCOUNT_TARGET_FORWARD:
			json_object_set_new(to, "kind", json_string("forward"));
			json_object_set_new(to, "value", json_string(t->value));
			break;
		case ACCOUNT_TARGET_WEBHOOK:
			json_object_set_new(to, "kind", json_string("webhook"));
			json_object_set_new(to, "value", json_string(t->value));
			break;
		}
		json_array_append_new(targets, to);
	}
	json_object_set_new(o, "targets", targets);
	json_object_set_new(o, "quota_bytes", json_integer(a->quota_bytes));
	json_object_set_new(o, "save_sent", json_boolean(a->save_sent));
	json_object_set_new(o, "has_password",
			    json_boolean(a->has_credentials));
	json_object_set_new(o, "has_pgp_key", json_boolean(a->pgp_key != NULL));
	json_object_set_new(o, "created", json_string(created));
	if (full) {
		json_object_set_new(o, "mailbox_id",
				    json_string(a->mailbox_id));
		json_object_set_new(o, "pgp_key",
				    a->pgp_key != NULL ? json_string(a->pgp_key)
						       : json_null());
	}
	return o;
}

static void
print_targets(const struct account_alias *a, FILE *out)
{
	for (size_t i = 0; i < a->target_count; i++) {
		const struct account_target *t = &a->targets[i];

		if (i > 0)
			fputc(',', out);
		if (t->kind == ACCOUNT_TARGET_MAILBOX)
			fputs("mailbox", out);
		else
			fprintf(out, "%s:%s",
				t->kind == ACCOUNT_TARGET_FORWARD ? "forward"
								  : "webhook",
				t->value);
	}
}

static int
alias_change_cmd(struct admin_ctx *ctx, int argc, char **argv, bool set)
{
	struct alias_args args;
	struct account_db *db = NULL;
	struct account_alias *a = NULL;
	const char *error;
	enum account_error err;
	int ret = alias_args_parse(ctx, argc, argv, set, &args);

	if (ret != ADMIN_EXIT_OK)
		goto out;
	if (!set && args.change.mailbox != 1 &&
	    args.change.forward_count == 0 && args.change.webhook_count == 0) {
		ret = admin_usage(ctx, "give at least one target: --mailbox, "
				       "--forward ADDR or --webhook URL");
		goto out;
	}
	if ((db = admin_account_open(ctx)) == NULL) {
		ret = ADMIN_EXIT_FAIL;
		goto out;
	}
	err = set ? account_alias_set(db, args.address, &args.change, &error)
		  : account_alias_add(db, args.address, &args.change, &error);
	if (err != ACCOUNT_OK) {
		ret = admin_fail("%s", error);
		goto out;
	}
	if (ctx->json && account_alias_get(db, args.address, &a, &error) > 0)
		admin_json_print(alias_json(a, true));
out:
	account_alias_free(&a);
	account_db_close(&db);
	alias_args_deinit(&args);
	return ret;
}

int
admin_cmd_alias_add(struct admin_ctx *ctx, int argc, char **argv)
{
	return alias_change_cmd(ctx, argc, argv, false);
}

int
admin_cmd_alias_set(struct admin_ctx *ctx, int argc, char **argv)
{
	return alias_change_cmd(ctx, argc, argv, true);
}

int
admin_cmd_alias_list(struct admin_ctx *ctx, int argc, char **argv)
{
	struct account_db *db;
	struct account_alias **list;
	const char *domain = NULL, *error;
	size_t count;

	for (int i = 0; i < argc; i++) {
		if (argv[i][0] == '-')
			return admin_usage(ctx, "unknown option '%s'", argv[i]);
		if (domain != NULL)
			return admin_usage(ctx, "unexpected argument '%s'",
					   argv[i]);
		domain = argv[i];
	}
	if ((db = admin_account_open(ctx)) == NULL)
		return ADMIN_EXIT_FAIL;
	if (account_alias_list(db, domain, &list, &count, &error) !=
	    ACCOUNT_OK) {
		account_db_close(&db);
		return admin_fail("%s", error);
	}
	if (ctx->json) {
		json_t *arr = json_array();

		for (size_t i = 0; i < count; i++)
			json_array_append_new(arr, alias_json(list[i], false));
		admin_json_print(arr);
	} else {
		for (size_t i = 0; i < count; i++) {
			printf("%s\t%s\t", list[i]->address,
			       list[i]->enabled ? "enabled" : "disabled");
			print_targets(list[i], stdout);
			fputc('\n', stdout);
		}
	}
	account_alias_list_free(&list, count);
	account_db_close(&db);
	return ADMIN_EXIT_OK;
}

/* The single ADDRESS argument of show and remove. */
static int
one_address(struct admin_ctx *ctx, int argc, char **argv,
	    const char **address_r)
{
	if (argc == 0)
		return admin_usage(ctx, "ADDRESS is missing");
	for (int i = 0; i < argc; i++) {
		if (argv[i][0] == '-' && argv[i][1] != '\0')
			return admin_usage(ctx, "unknown option '%s'", argv[i]);
	}
	if (argc > 1)
		return admin_usage(ctx, "unexpected argument '%s'", argv[1]);
	*address_r = argv[0];
	return ADMIN_EXIT_OK;
}

int
admin_cmd_alias_show(struct admin_ctx *ctx, int argc, char **argv)
{
	struct account_db *db;
	struct account_alias *a;
	const char *address, *error = NULL;
	char created[21];
	int rc, ret = one_address(ctx, argc, argv, &address);

	if (ret != ADMIN_EXIT_OK)
		return ret;
	if ((db = admin_account_open(ctx)) == NULL)
		return ADMIN_EXIT_FAIL;
	rc = account_alias_get(db, address, &a, &error);
	if (rc <= 0) {
		account_db_close(&db);
		return rc == 0 ? admin_fail("no alias %s", address)
			       : admin_fail("%s", error);
	}
	if (ctx->json) {
		admin_json_print(alias_json(a, true));
	} else {
		clock_format_iso8601(a->created, created);
		printf("address: %s\n", a->address);
		printf("kind: %s\n", a->kind == ACCOUNT_ALIAS_EXACT ? "exact"
				     : a->kind == ACCOUNT_ALIAS_CATCHALL
					     ? "catch-all"
					     : "regular expression");
		printf("enabled: %s\n", a->enabled ? "yes" : "no");
		printf("save sent: %s\n", a->save_sent ? "yes" : "no");
		printf("targets: ");
		print_targets(a, stdout);
		fputc('\n', stdout);
		if (a->quota_bytes > 0)
			printf("quota: %lld bytes\n",
			       (long long)a->quota_bytes);
		else
			printf("quota: none\n");
		printf("password: %s\n",
		       a->has_credentials ? "set" : "not set");
		printf("pgp key: %s\n", a->pgp_key != NULL ? "yes" : "no");
		printf("mailbox id: %s\n", a->mailbox_id);
		printf("created: %s\n", created);
	}
	account_alias_free(&a);
	account_db_close(&db);
	return ADMIN_EXIT_OK;
}

int
admin_cmd_alias_remove(struct admin_ctx *ctx, int argc, char **argv)
{
	struct account_db *db;
	const char *address, *error;
	int ret = one_address(ctx, argc, argv, &address);

	if (ret != ADMIN_EXIT_OK)
		return ret;
	if ((db = admin_account_open(ctx)) == NULL)
		return ADMIN_EXIT_FAIL;
	if (account_alias_remove(db, address, admin_mailbox_removed,
				 (void *)ctx->data_dir, &error) != ACCOUNT_OK)
		ret = admin_fail("%s", error);
	account_db_close(&db);
	return ret;
}
