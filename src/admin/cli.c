#include "admin.h"
#include "admin-private.h"

#include "crypto/crypto.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <sodium.h>

#define DEFAULT_DATA_DIR "/var/lib/sealpost"
#define MAX_COMMAND_WORDS 3

static const struct admin_command admin_commands[] = {
	{"init", "", "create the data directory: server key, TLS certificate, "
		     "sealpost.conf, control plane", admin_cmd_init},
	{"serve", "", "run the server in the foreground", admin_cmd_serve},
	{"config markdown", "", "print the settings table as Markdown",
	 admin_cmd_config_markdown},
	{"config defaults", "", "print a commented default sealpost.conf",
	 admin_cmd_config_defaults},
	{"domain add", "DOMAIN [--owner NAME] [--retention-days N] "
		       "[--quota BYTES]",
	 "add a domain (Unicode or punycode); quota 0: no limit",
	 admin_cmd_domain_add},
	{"domain list", "[--json]", "list the domains", admin_cmd_domain_list},
	{"domain show", "DOMAIN [--json]",
	 "show a domain's settings, verification token and webhook key",
	 admin_cmd_domain_show},
	{"domain remove", "DOMAIN [--force]",
	 "remove a domain (--force: with its aliases)", admin_cmd_domain_remove},
	{"domain set", "DOMAIN [--backup-bucket NAME] "
		       "[--submit-any-alias yes|no]",
	 "give the domain's mailboxes their own S3 bucket for backups (\"\": "
	 "back to the s3_bucket setting); let submission send as any alias "
	 "of the domain's owner",
	 admin_cmd_domain_set},
	{"domain dns", "DOMAIN",
	 "print the domain's DNS records as zone-file lines",
	 admin_cmd_domain_dns},
	{"domain rotate-dkim", "DOMAIN",
	 "replace the domain's DKIM keys with new ones under new selectors",
	 admin_cmd_domain_rotate_dkim},
	{"domain dkim-ed25519", "DOMAIN on|off",
	 "add (or stop adding) a second, Ed25519 DKIM signature",
	 admin_cmd_domain_dkim_ed25519},
	{"alias add", "ADDRESS [--mailbox] [--forward ADDR]... "
		      "[--webhook URL]... [--quota BYTES] [--pgp-key FILE] "
		      "[--disabled] [--no-save-sent]",
	 "add an alias: local@domain, *@domain (catch-all) or "
	 "/regex/@domain",
	 admin_cmd_alias_add},
	{"alias list", "[DOMAIN] [--json]", "list aliases", admin_cmd_alias_list},
	{"alias show", "ADDRESS [--json]", "show an alias",
	 admin_cmd_alias_show},
	{"alias remove", "ADDRESS", "remove an alias", admin_cmd_alias_remove},
	{"alias set", "ADDRESS [--mailbox|--no-mailbox] [--forward ADDR]... "
		      "[--webhook URL]... [--clear-targets] "
		      "[--enable|--disable] [--pgp-key FILE|--no-pgp-key] "
		      "[--quota BYTES] [--save-sent|--no-save-sent]",
	 "change an alias's targets and settings (--no-save-sent: no copy "
	 "of submitted mail in its Sent folder)",
	 admin_cmd_alias_set},
	{"owner list", "[--json]", "list owners with their shared quota",
	 admin_cmd_owner_list},
	{"owner set", "NAME --quota BYTES",
	 "set the storage quota shared by an owner's aliases (0: no limit)",
	 admin_cmd_owner_set},
	{"alias password", "ADDRESS",
	 "generate a new password and print only it; sets up the mailbox, or "
	 "re-keys it (the current password from SEALPOST_OLD_PASSWORD or a "
	 "prompt)",
	 admin_cmd_alias_password},
	{"mailbox import", "ADDRESS FILE|DIR... [--folder NAME]",
	 "import MBOX files or single messages (.eml), or the directory of "
	 "a whole-mailbox EML export; messages of a whole-mailbox export go "
	 "back to their folders (created when missing); password from "
	 "SEALPOST_PASSWORD or a prompt",
	 admin_cmd_mailbox_import},
	{"mailbox export", "ADDRESS [--folder NAME] [--format mbox|eml] -o PATH",
	 "export the mailbox (or one folder) as an mboxrd file or a "
	 "directory of EML files (FOLDER/UID.eml); in a whole-mailbox mboxrd "
	 "each message outside INBOX starts with an 'X-Sealpost-Folder: "
	 "NAME' line that import removes again; messages byte for byte, "
	 "flags not kept",
	 admin_cmd_mailbox_export},
	{"mailbox delete", "ADDRESS",
	 "securely delete the alias's mailbox file and spool",
	 admin_cmd_mailbox_delete},
	{"mailbox backup", "ADDRESS [--json]",
	 "back the mailbox up to S3 now (skipped when unchanged); password "
	 "from SEALPOST_PASSWORD or a prompt",
	 admin_cmd_mailbox_backup},
	{"mailbox backups", "ADDRESS [--json]",
	 "list the mailbox's backups: version, time, size, SHA-256",
	 admin_cmd_mailbox_backups},
	{"mailbox download", "ADDRESS [VERSION] -o FILE",
	 "download a backup (default: the newest), verified, to FILE",
	 admin_cmd_mailbox_download},
	{"mailbox restore", "ADDRESS [VERSION|--file FILE]",
	 "replace the mailbox with a verified backup (a running server "
	 "closes the alias's sessions first)",
	 admin_cmd_mailbox_restore},
	{"mailbox stats", "ADDRESS [--json]",
	 "messages and bytes per folder, de-duplicated attachments",
	 admin_cmd_mailbox_stats},
	{"queue list", "[--json]",
	 "list the outbound queue: per message its recipients' states",
	 admin_cmd_queue_list},
	{"queue show", "ID [--json]",
	 "show a queued message: per recipient state, attempts, next attempt, "
	 "last answer and its classification",
	 admin_cmd_queue_show},
	{"queue retry", "ID", "make a queued message's pending recipients due "
			      "now",
	 admin_cmd_queue_retry},
	{"queue drop", "ID", "remove a message from the queue (no report)",
	 admin_cmd_queue_drop},
	{"deliver", "ADDRESS < MESSAGE",
	 "route one message through the alias lookup into the mailbox spool, "
	 "as the MX does",
	 admin_cmd_deliver},
};

static struct admin_ctx *current_ctx;

int
admin_fail(const char *fmt, ...)
{
	va_list ap;

	fputs("sealpost: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return ADMIN_EXIT_FAIL;
}

int
admin_usage(struct admin_ctx *ctx, const char *fmt, ...)
{
	va_list ap;

	fputs("sealpost: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (ctx != NULL && ctx->command != NULL)
		fprintf(stderr, "usage: sealpost %s %s\n", ctx->command->words,
			ctx->command->usage);
	return ADMIN_EXIT_USAGE;
}

int
admin_load_conf(struct admin_ctx *ctx)
{
	const char *error;

	if (conf_load(ctx->data_dir, &error) < 0) {
		admin_fail("%s", error);
		return -1;
	}
	/* serve binds its ports as root and drops privileges itself. */
	if (ctx->command == NULL || ctx->command->func != admin_cmd_serve)
		return admin_become_data_owner(ctx);
	return 0;
}

char *
admin_read_secret(const char *env, const char *prompt)
{
	const char *value = getenv(env);
	char *secret = sodium_malloc(1024);
	struct termios old, quiet;
	bool tty;
	size_t len;

	if (secret == NULL)
		core_panic("sodium_malloc failed");
	if (value != NULL) {
		if (strlen(value) >= 1024) {
			sodium_free(secret);
			return NULL;
		}
		strcpy(secret, value);
		return secret;
	}
	tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &old) == 0;
	if (tty) {
		fputs(prompt, stderr);
		quiet = old;
		quiet.c_lflag &= (tcflag_t)~ECHO;
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
	}
	if (fgets(secret, 1024, stdin) == NULL)
		secret[0] = '\0';
	if (tty) {
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
		fputc('\n', stderr);
	}
	len = strlen(secret);
	while (len > 0 && (secret[len - 1] == '\n' || secret[len - 1] == '\r'))
		secret[--len] = '\0';
	return secret;
}

void
admin_secret_free(char **secret)
{
	crypto_secret_free(secret);
}

static void
print_commands(FILE *out)
{
	fputs("usage: sealpost [--data DIR] [--json] COMMAND [ARGS...]\n\n"
	      "commands:\n",
	      out);
	for (size_t i = 0; i < SP_N_ELEMENTS(admin_commands); i++) {
		fprintf(out, "  %-18s %s\n", admin_commands[i].words,
			admin_commands[i].help);
	}
	fputs("\nThe data directory is --data DIR, else $SEALPOST_DATA, else "
	      DEFAULT_DATA_DIR ".\n`sealpost COMMAND --help` describes one "
	      "command.\n",
	      out);
}

/* Number of leading argv words that spell `words`, or 0. */
static int
match_words(const char *words, int argc, char **argv)
{
	char *copy = xstrdup(words), *save = NULL;
	int n = 0;

	for (char *w = strtok_r(copy, " ", &save); w != NULL;
	     w = strtok_r(NULL, " ", &save)) {
		if (n >= argc || strcmp(argv[n], w) != 0) {
			n = 0;
			break;
		}
		n++;
	}
	free(copy);
	return n;
}

int
admin_main(int argc, char **argv)
{
	struct admin_ctx ctx = {0};
	char **rest = xcalloc((size_t)argc + 1, sizeof(char *));
	const struct admin_command *cmd = NULL;
	bool help = false;
	int nrest = 0, used = 0, ret;

	ctx.data_dir = getenv("SEALPOST_DATA");
	if (ctx.data_dir == NULL || *ctx.data_dir == '\0')
		ctx.data_dir = DEFAULT_DATA_DIR;
	current_ctx = &ctx;

	/* Global options may appear anywhere before a "--". */
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--data") == 0) {
			if (++i >= argc) {
				free(rest);
				return admin_usage(NULL, "--data needs DIR");
			}
			ctx.data_dir = argv[i];
		} else if (str_has_prefix(argv[i], "--data=")) {
			ctx.data_dir = argv[i] + strlen("--data=");
		} else if (strcmp(argv[i], "--json") == 0) {
			ctx.json = true;
		} else if (strcmp(argv[i], "--help") == 0 ||
			   strcmp(argv[i], "-h") == 0) {
			help = true;
		} else {
			rest[nrest++] = argv[i];
		}
	}

	for (size_t i = 0; i < SP_N_ELEMENTS(admin_commands); i++) {
		int n = match_words(admin_commands[i].words, nrest, rest);

		if (n > used) {
			used = n;
			cmd = &admin_commands[i];
		}
	}
	if (cmd == NULL) {
		if (help || nrest == 0) {
			print_commands(help ? stdout : stderr);
			free(rest);
			return help ? ADMIN_EXIT_OK : ADMIN_EXIT_USAGE;
		}
		fprintf(stderr, "sealpost: unknown command '%s'\n", rest[0]);
		print_commands(stderr);
		free(rest);
		return ADMIN_EXIT_USAGE;
	}
	ctx.command = cmd;
	if (help) {
		printf("usage: sealpost %s %s\n\n%s\n", cmd->words, cmd->usage,
		       cmd->help);
		free(rest);
		return ADMIN_EXIT_OK;
	}
	ret = cmd->func(&ctx, nrest - used, rest + used);
	free(rest);
	return ret;
}
