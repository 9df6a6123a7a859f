#ifndef SEALPOST_ADMIN_PRIVATE_H
#define SEALPOST_ADMIN_PRIVATE_H

#include "conf/conf.h"
#include "core/core.h"

#include <stdbool.h>

enum admin_exit {
	ADMIN_EXIT_OK = 0,
	ADMIN_EXIT_USAGE = 1,
	ADMIN_EXIT_FAIL = 2,
};

struct admin_ctx {
	const char *data_dir;
	bool json;
	/* The command's row, for usage messages. */
	const struct admin_command *command;
};

/* Handlers get the arguments after the command words. */
typedef int admin_cmd_func(struct admin_ctx *ctx, int argc, char **argv);

struct admin_command {
	const char *words; /* "domain add" */
	const char *usage; /* "DOMAIN [--owner NAME]" */
	const char *help;
	admin_cmd_func *func;
};

/* Prints "sealpost: <text>" to stderr and returns ADMIN_EXIT_FAIL. */
int admin_fail(const char *fmt, ...) SP_PRINTF(1, 2);
/* Prints the usage of the current command and returns ADMIN_EXIT_USAGE. */
int admin_usage(struct admin_ctx *ctx, const char *fmt, ...) SP_PRINTF(2, 3);
/* Loads the configuration of ctx->data_dir; on failure prints and returns
 * -1. */
int admin_load_conf(struct admin_ctx *ctx);
/* Reads a secret from the environment variable `env`, else prompts on the
 * terminal without echo. The caller frees with admin_secret_free(). */
char *admin_read_secret(const char *env, const char *prompt);
void admin_secret_free(char **secret);

/* Handlers, by file. */
admin_cmd_func admin_cmd_init;
admin_cmd_func admin_cmd_serve;
admin_cmd_func admin_cmd_config_markdown;
admin_cmd_func admin_cmd_config_defaults;

#endif
