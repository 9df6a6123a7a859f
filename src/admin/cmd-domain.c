/* sealpost domain add|list|show|remove|dns, and the helpers the account
 * commands share (options, sizes, opening the control plane). */
#include "admin-private.h"

#include "account/account.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int
admin_option_value(int argc, char **argv, int *i, const char *name,
		   const char **value_r)
{
	const char *arg = argv[*i];
	size_t len = strlen(name);

	if (strncmp(arg, name, len) != 0)
		return 0;
	if (arg[len] == '=') {
		*value_r = arg + len + 1;
		return 1;
	}
	if (arg[len] != '\0')
		return 0;
	if (*i + 1 >= argc)
		return -1;
	*value_r = argv[++*i];
	return 1;
}

int
admin_parse_bytes(const char *s, int64_t *bytes_r)
{
	static const char units[] = "KMGT";
	unsigned long long v;
	char *end;
	const char *u;
	int shift = 0;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0)
		return -1;
	if (*end != '\0') {
		char unit = (char)(end[0] & ~0x20);

		u = unit != '\0' ? strchr(units, unit) : NULL;
		if (u == NULL)
			return -1;
		shift = 10 * (int)(u - units + 1);
		end++;
		/* "10M", "10MB", "10MiB" all mean mebibytes. */
		if (strcmp(end, "") != 0 && strcmp(end, "B") != 0 &&
		    strcmp(end, "iB") != 0)
			return -1;
	}
	if (v > (unsigned long long)INT64_MAX >> shift)
		return -1;
	*bytes_r = (int64_t)(v << shift);
	return 0;
}

int
admin_parse_int(const char *s, long min, long max, long *value_r)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (*s == '\0' || *end != '\0' || errno != 0 || v < min || v > max)
		return -1;
	*value_r = v;
	return 0;
}

struct account_db *
admin_account_open(struct admin_ctx *ctx)
{
	struct account_db *db;
	const char *error;

	if (admin_load_conf(ctx) < 0)
		return NULL;
	if (account_db_open(ctx->data_dir, 0, &db, &error) != ACCOUNT_OK) {
		admin_fail("%s", error);
		return NULL;
	}
	return db;
}

void
admin_json_print(json_t *value)
{
	json_dumpf(value, stdout, JSON_INDENT(2));
	fputc('\n', stdout);
	json_decref(value);
}

static char *
iso_time(time_t t)
{
	char buf[21];

	clock_format_iso8601(t, buf);
	return xstrdup(buf);
}

static json_t *
domain_json(const struct account_domain *d, bool full)
{
	char created[21];
	json_t *o = json_object();

	clock_format_iso8601(d->created, created);
	json_object_set_new(o, "name", json_string(d->name));
	json_object_set_new(o, "name_unicode", json_string(d->name_utf8));
	json_object_set_new(o, "owner", json_string(d->owner));
	json_object_set_new(o, "aliases",
			    json_integer((json_int_t)d->alias_count));
	json_object_set_new(o, "retention_days",
			    json_integer(d->retention_days));
	json_object_set_new(o, "quota_bytes", json_integer(d->quota_bytes));
	json_object_set_new(o, "created", json_string(created));
	json_object_set_new(o, "dkim_ed25519", json_boolean(d->dkim_ed25519));
	json_object_set_new(o, "submit_any_alias",
			    json_boolean(d->submit_any_alias));
	json_object_set_new(o, "backup_bucket",
			    d->backup_bucket != NULL
				    ? json_string(d->backup_bucket)
				    : json_null());
	if (full) {
		char key[2 * ACCOUNT_WEBHOOK_KEY_BYTES + 1];

		json_object_set_new(o, "owner_quota_bytes",
				    json_integer(d->owner_quota_bytes));
		json_object_set_new(o, "verification_token",
				    json_string(d->verify_token));
		hex_encode(d->webhook_key, sizeof(d->webhook_key), key);
		json_object_set_new(o, "webhook_key", json_string(key));
		explicit_bzero(key, sizeof(key));
	}
	return o;
}

static const char *
quota_text(int64_t bytes, char buf[32])
{
	if (bytes == 0)
		return "none";
	snprintf(buf, 32, "%lld bytes", (long long)bytes);
	return buf;
}

int
admin_cmd_domain_add(struct admin_ctx *ctx, int argc, char **argv)
{
	const char *name = NULL, *owner = NULL, *value, *error;
	long retention = -1;
	int64_t quota = 0;
	struct account_db *db;
	struct account_domain *d = NULL;
	enum account_error err;
	int rc;

	for (int i = 0; i < argc; i++) {
		if ((rc = admin_option_value(argc, argv, &i, "--owner",
					     &owner)) != 0) {
			if (rc < 0)
				return admin_usage(ctx, "--owner needs NAME");
		} else if ((rc = admin_option_value(argc, argv, &i,
						    "--retention-days",
						    &value)) != 0) {
			if (rc < 0 ||
			    admin_parse_int(value, 1, 36500, &retention) < 0)
				return admin_usage(ctx,
						   "--retention-days needs "
						   "a number of days "
						   "(1-36500)");
		} else if ((rc = admin_option_value(argc, argv, &i, "--quota",
						    &value)) != 0) {
			if (rc < 0 || admin_parse_bytes(value, &quota) < 0)
				return admin_usage(ctx, "--quota needs BYTES "
							"(e.g. 500000000 or "
							"10G)");
		} else if (argv[i][0] == '-') {
			return admin_usage(ctx, "unknown option '%s'", argv[i]);
		} else if (name == NULL) {
			name = argv[i];
		} else {
			return admin_usage(ctx, "unexpected argument '%s'",
					   argv[i]);
		}
	}
	if (name == NULL)
		return admin_usage(ctx, "DOMAIN is missing");
	if ((db = admin_account_open(ctx)) == NULL)
		return ADMIN_EXIT_FAIL;
	err = account_domain_add(db, name, owner, (int)retention, quota,
				 &error);
	if (err != ACCOUNT_OK) {
		account_db_close(&db);
		return admin_fail("%s", error);
	}
	if (account_domain_get(db, name, &d, &error) > 0) {
		if (ctx->json)
			admin_json_print(domain_json(d, true));
		else
			fprintf(stderr,
				"sealpost: domain %s added; its DNS records: "
				"sealpost domain dns %s\n",
				d->name, d->name);
	}
	account_domain_free(&d);
	account_db_close(&db);
	return ADMIN_EXIT_OK;
}

int
admin_cmd_domain_list(struct admin_ctx *ctx, int argc, char **argv)
{
	struct account_db *db;
	struct account_domain **list;
	size_t count;
	const char *error;

	if (argc != 0)
		return admin_usage(ctx, "unexpected argument '%s'", argv[0]);
	if ((db = admin_account_open(ctx)) == NULL)
		return ADMIN_EXIT_FAIL;
	if (account_domain_list(db, &list, &count, &error) != ACCOUNT_OK) {
		account_db_close(&db);
		return admin_fail("%s", error);
	}
	if (ctx->json) {
		json_t *arr = json_array();

		for (size_t i = 0; i < count; i++)
			json_array_append_new(arr, domain_json(list[i], false));
		admin_json_print(arr);
	} else {
		for (size_t i = 0; i < count; i++) {
			char q[32];

			printf("%s\towner=%s\taliases=%zu\tretention=%dd\t"
			       "quota=%s\n",
			       list[i]->name, list[i]->owner,
			       list[i]->alias_count, list[i]->retention_days,
			       list[i]->quota_bytes == 0
				       ? "none"
				       : (snprintf(q, sizeof(q), "%lld",
						   (long long)list[i]
							   ->quota_bytes),
					  q));
		}
	}
	account_domain_list_free(&list, count);
	account_db_close(&db);
	return ADMIN_EXIT_OK;
}

/* Opens the control plane and loads DOMAIN, the only argument; prints and
 * returns the exit code on failure (then *db_r is closed). */
static int
one_domain(struct admin_ctx *ctx, int argc, char **argv,
	   struct account_db **db_r, struct account_domain **domain_r)
{
	const char *error = NULL;
	int rc;

	*db_r = NULL;
	*domain_r = NULL;
	if (argc == 0)
		return admin_usage(ctx, "DOMAIN is missing");
	for (int i = 0; i < argc; i++) {
		if (argv[i][0] == '-')
			return admin_usage(ctx, "unknown option '%s'", argv[i]);
	}
	if (argc > 1)
		return admin_usage(ctx, "unexpected argument '%s'", argv[1]);
	if ((*db_r = admin_account_open(ctx)) == NULL)
		return ADMIN_EXIT_FAIL;
	rc = account_domain_get(*db_r, argv[0], domain_r, &error);
	if (rc <= 0) {
		account_db_close(db_r);
		return rc == 0 ? admin_fail("no domain %s", argv[0])
			       : admin_fail("%s", error);
	}
	return ADMIN_EXIT_OK;
}

int
admin_cmd_domain_show(struct admin_ctx *ctx, int argc, char **argv)
{
	struct account_db *db;
	struct account_domain *d;
	char key[2 * ACCOUNT_WEBHOOK_KEY_BYTES + 1], q1[32], q2[32];
	char *created;
	int ret = one_domain(ctx, argc, argv, &db, &d);

	if (ret != ADMIN_EXIT_OK)
		return ret;
	if (ctx->json) {
		admin_json_print(domain_json(d, true));
	} else {
		created = iso_time(d->created);
		hex_encode(d->webhook_key, sizeof(d->webhook_key), key);
		printf("name: %s\n", d->name);
		if (strcmp(d->name, d->name_utf8) != 0)
			printf("unicode: %s\n", d->name_utf8);
		printf("owner: %s (quota %s)\n", d->owner,
		       quota_text(d->owner_quota_bytes, q1));
		printf("aliases: %zu\n", d->alias_count);
		printf("retention: %d days\n", d->retention_days);
		printf("quota: %s\n", quota_text(d->quota_bytes, q2));
		printf("verification token: %s\n", d->verify_token);
		printf("second DKIM signature (Ed25519): %s\n",
		       d->dkim_ed25519 ? "on" : "off");
		printf("submission as any alias of the owner: %s\n",
		       d->submit_any_alias ? "yes" : "no");
		printf("backup bucket: %s\n",
		       d->backup_bucket != NULL ? d->backup_bucket
						: "(the s3_bucket setting)");
		printf("webhook signing key: %s\n", key);
		printf("created: %s\n", created);
		explicit_bzero(key, sizeof(key));
		free(created);
	}
	account_domain_free(&d);
	account_db_close(&db);
	return ADMIN_EXIT_OK;
}

int
admin_cmd_domain_remove(struct admin_ctx *ctx, int argc, char **argv)
{
	const char *name = NULL, *error;
	struct account_db *db;
	bool force = false;

	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--force") == 0)
			force = true;
		else if (argv[i][0] == '-')
			return admin_usage(ctx, "unknown option '%s'", argv[i]);
		else if (name == NULL)
			name = argv[i];
		else
			return admin_usage(ctx, "unexpected argument '%s'",
					   argv[i]);
	}
	if (name == NULL)
		return admin_usage(ctx, "DOMAIN is missing");
	if ((db = admin_account_open(ctx)) == NULL)
		return ADMIN_EXIT_FAIL;
	/* The removed aliases' mailbox files go after the commit. */
	if (account_domain_remove(db, name, force, admin_mailbox_removed,
				  (void *)ctx->data_dir,
				  &error) != ACCOUNT_OK) {
		account_db_close(&db);
		return admin_fail("%s", error);
	}
	account_db_close(&db);
	return ADMIN_EXIT_OK;
}

/* One TXT record in zone-file syntax: strings of at most 255 bytes. */
static void
print_txt(const char *name, const char *value)
{
	size_t len = strlen(value);

	printf("%s.\t3600\tIN\tTXT\t", name);
	for (size_t off = 0; off < len; off += 255)
		printf("%s\"%.*s\"", off > 0 ? " " : "",
		       (int)(len - off > 255 ? 255 : len - off), value + off);
	putchar('\n');
}

/* The selector records of the domain's signing keys, made first when a
 * domain from before keys existed has none. */
static int
print_dkim_records(struct account_db *db, const struct account_domain *d)
{
	struct account_dkim_key **keys = NULL;
	size_t count = 0;
	const char *error;

	if (account_dkim_generate(db, d->name, false, &error) != ACCOUNT_OK ||
	    account_dkim_key_list(db, d->name, &keys, &count, &error) !=
		    ACCOUNT_OK)
		return admin_fail("%s", error);
	for (size_t i = 0; i < count; i++) {
		char *name = xasprintf("%s._domainkey.%s", keys[i]->selector,
				       d->name);
		char *record = mailauth_key_dns_record(keys[i]->key);

		if (keys[i]->type == MAILAUTH_KEY_ED25519)
			printf("; Ed25519 key: a second signature when "
			       "dkim-ed25519 is on (%s)\n",
			       d->dkim_ed25519 ? "now on" : "now off");
		else
			printf("; RSA key: DKIM signatures and ARC seals\n");
		print_txt(name, record);
		free(name);
		free(record);
	}
	account_dkim_key_list_free(&keys, count);
	return ADMIN_EXIT_OK;
}

int
admin_cmd_domain_rotate_dkim(struct admin_ctx *ctx, int argc, char **argv)
{
	struct account_db *db;
	struct account_domain *d;
	const char *error;
	int ret = one_domain(ctx, argc, argv, &db, &d);

	if (ret != ADMIN_EXIT_OK)
		return ret;
	if (account_dkim_generate(db, d->name, true, &error) != ACCOUNT_OK) {
		ret = admin_fail("%s", error);
	} else {
		fprintf(stderr,
			"sealpost: new DKIM keys for %s; publish them "
			"(sealpost domain dns %s) and keep the old selector "
			"records a few days for mail in flight\n",
			d->name, d->name);
		ret = print_dkim_records(db, d);
	}
	account_domain_free(&d);
	account_db_close(&db);
	return ret;
}

int
admin_cmd_domain_dkim_ed25519(struct admin_ctx *ctx, int argc, char **argv)
{
	struct account_db *db;
	struct account_domain *d;
	const char *error;
	bool on;
	int ret;

	if (argc != 2 || (strcmp(argv[1], "on") != 0 &&
			  strcmp(argv[1], "off") != 0))
		return admin_usage(ctx, "DOMAIN on|off");
	on = strcmp(argv[1], "on") == 0;
	ret = one_domain(ctx, 1, argv, &db, &d);
	if (ret != ADMIN_EXIT_OK)
		return ret;
	if (account_domain_set_dkim_ed25519(db, d->name, on, &error) !=
	    ACCOUNT_OK)
		ret = admin_fail("%s", error);
	account_domain_free(&d);
	account_db_close(&db);
	return ret;
}

int
admin_cmd_domain_dns(struct admin_ctx *ctx, int argc, char **argv)
{
	struct account_db *db;
	struct account_domain *d;
	char host[256] = "";
	int ret = one_domain(ctx, argc, argv, &db, &d);

	if (ret != ADMIN_EXIT_OK)
		return ret;
	if (*conf_str("hostname") != '\0')
		str_copy(host, conf_str("hostname"), sizeof(host));
	else if (gethostname(host, sizeof(host) - 1) < 0)
		str_copy(host, "localhost", sizeof(host));
	printf("; DNS records for %s\n", d->name);
	printf("%s.\t3600\tIN\tMX\t10 %s.\n", d->name, host);
	printf("%s.\t3600\tIN\tTXT\t\"v=spf1 mx -all\"\n", d->name);
	printf("_dmarc.%s.\t3600\tIN\tTXT\t\"v=DMARC1; p=quarantine; "
	       "adkim=s; aspf=r\"\n",
	       d->name);
	printf("_sealpost.%s.\t3600\tIN\tTXT\t\"sealpost-verification=%s\"\n",
	       d->name, d->verify_token);
	ret = print_dkim_records(db, d);
	account_domain_free(&d);
	account_db_close(&db);
	return ADMIN_EXIT_OK;
}

int
admin_cmd_owner_list(struct admin_ctx *ctx, int argc, char **argv)
{
	struct account_db *db;
	struct account_owner *list;
	size_t count;
	const char *error;

	if (argc != 0)
		return admin_usage(ctx, "unexpected argument '%s'", argv[0]);
	if ((db = admin_account_open(ctx)) == NULL)
		return ADMIN_EXIT_FAIL;
	if (account_owner_list(db, &list, &count, &error) != ACCOUNT_OK) {
		account_db_close(&db);
		return admin_fail("%s", error);
	}
	if (ctx->json) {
		json_t *arr = json_array();

		for (size_t i = 0; i < count; i++) {
			json_t *o = json_object();

			json_object_set_new(o, "name",
					    json_string(list[i].name));
			json_object_set_new(o, "quota_bytes",
					    json_integer(list[i].quota_bytes));
			json_object_set_new(
				o, "domains",
				json_integer((json_int_t)list[i].domain_count));
			json_array_append_new(arr, o);
		}
		admin_json_print(arr);
	} else {
		for (size_t i = 0; i < count; i++) {
			char q[32];

			printf("%s\tdomains=%zu\tquota=%s\n", list[i].name,
			       list[i].domain_count,
			       list[i].quota_bytes == 0
				       ? "none"
				       : (snprintf(q, sizeof(q), "%lld",
						   (long long)list[i]
							   .quota_bytes),
					  q));
		}
	}
	account_owner_list_free(&list, count);
	account_db_close(&db);
	return ADMIN_EXIT_OK;
}

int
admin_cmd_owner_set(struct admin_ctx *ctx, int argc, char **argv)
{
	const char *name = NULL, *value, *error;
	struct account_db *db;
	int64_t quota = -1;
	int rc;

	for (int i = 0; i < argc; i++) {
		if ((rc = admin_option_value(argc, argv, &i, "--quota",
					     &value)) != 0) {
			if (rc < 0 || admin_parse_bytes(value, &quota) < 0)
				return admin_usage(ctx, "--quota needs BYTES "
							"(0: no limit)");
		} else if (argv[i][0] == '-') {
			return admin_usage(ctx, "unknown option '%s'", argv[i]);
		} else if (name == NULL) {
			name = argv[i];
		} else {
			return admin_usage(ctx, "unexpected argument '%s'",
					   argv[i]);
		}
	}
	if (name == NULL)
		return admin_usage(ctx, "NAME is missing");
	if (quota < 0)
		return admin_usage(ctx, "nothing to change (--quota BYTES)");
	if ((db = admin_account_open(ctx)) == NULL)
		return ADMIN_EXIT_FAIL;
	if (account_owner_set_quota(db, name, quota, &error) != ACCOUNT_OK) {
		account_db_close(&db);
		return admin_fail("%s", error);
	}
	account_db_close(&db);
	return ADMIN_EXIT_OK;
}

int
admin_cmd_domain_set(struct admin_ctx *ctx, int argc, char **argv)
{
	const char *name = NULL, *bucket = NULL, *any = NULL, *error;
	struct account_db *db;
	enum account_error err = ACCOUNT_OK;
	int rc;

	for (int i = 0; i < argc; i++) {
		if ((rc = admin_option_value(argc, argv, &i,
					     "--submit-any-alias", &any)) != 0) {
			if (rc < 0 || (strcmp(any, "yes") != 0 &&
				       strcmp(any, "no") != 0))
				return admin_usage(ctx, "--submit-any-alias "
							"needs yes or no");
		} else if ((rc = admin_option_value(argc, argv, &i, "--backup-bucket",
					     &bucket)) != 0) {
			if (rc < 0)
				return admin_usage(ctx, "--backup-bucket needs "
							"NAME (\"\": the "
							"s3_bucket setting)");
		} else if (argv[i][0] == '-') {
			return admin_usage(ctx, "unknown option '%s'", argv[i]);
		} else if (name == NULL) {
			name = argv[i];
		} else {
			return admin_usage(ctx, "unexpected argument '%s'",
					   argv[i]);
		}
	}
	if (name == NULL)
		return admin_usage(ctx, "DOMAIN is missing");
	if (bucket == NULL && any == NULL)
		return admin_usage(ctx, "nothing to change (--backup-bucket "
					"NAME, --submit-any-alias yes|no)");
	if ((db = admin_account_open(ctx)) == NULL)
		return ADMIN_EXIT_FAIL;
	if (bucket != NULL)
		err = account_domain_set_backup_bucket(db, name, bucket,
						       &error);
	if (err == ACCOUNT_OK && any != NULL)
		err = account_domain_set_submit_any_alias(
			db, name, strcmp(any, "yes") == 0, &error);
	account_db_close(&db);
	if (err != ACCOUNT_OK)
		return admin_fail("%s", error);
	return ADMIN_EXIT_OK;
}
