/* sealpost config: print the settings table. */
#include "admin-private.h"

#include <stdio.h>

int
admin_cmd_config_markdown(struct admin_ctx *ctx, int argc, char **argv)
{
	if (argc != 0)
		return admin_usage(ctx, "unexpected argument '%s'", argv[0]);
	conf_write_markdown(stdout);
	return ADMIN_EXIT_OK;
}

int
admin_cmd_config_defaults(struct admin_ctx *ctx, int argc, char **argv)
{
	if (argc != 0)
		return admin_usage(ctx, "unexpected argument '%s'", argv[0]);
	conf_write_default(stdout);
	return ADMIN_EXIT_OK;
}
