/*
 * admin: the `sealpost` command line, the operator's one tool.
 *
 * The grammar is a table (cli.c): each row names a command ("domain add"), a
 * usage line, a help text and a handler in its own cmd-<noun>.c file. Global
 * options (--data DIR, --json, --help) come before or after the command.
 * Exit codes: 0 success, 1 bad usage, 2 failure; errors are one line on
 * standard error.
 */
#ifndef SEALPOST_ADMIN_H
#define SEALPOST_ADMIN_H

int admin_main(int argc, char **argv);

#endif
