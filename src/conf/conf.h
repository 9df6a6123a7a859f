/*
 * conf: the one table of settings, read from sealpost.conf with environment
 * overrides (12-factor).
 *
 * Every setting has a name, a type, a default and a one-line description in
 * settings.c; nothing else in the program invents a setting. The file is
 * "name = value" lines with '#' comments. The environment variable
 * SEALPOST_<NAME> (upper case) overrides the file, and an empty value is a
 * real value (an empty *_listen turns that listener off).
 *
 * Load once at start-up with conf_load(); afterwards the getters are
 * read-only and safe from any thread. Asking for a name that is not in the
 * table is a programming error and aborts.
 */
#ifndef SEALPOST_CONF_H
#define SEALPOST_CONF_H

#include <stdbool.h>
#include <stdio.h>

enum conf_type {
	CONF_STRING,
	CONF_INT,
	CONF_BOOL,
};

struct conf_setting {
	const char *name;
	enum conf_type type;
	const char *default_value;
	const char *description;
};

/* The table (settings.c), terminated by a row with name == NULL. */
extern const struct conf_setting conf_settings[];

/* Reads <data_dir>/sealpost.conf when present, then the environment.
 * Returns 0, or -1 with a message in *error_r (static or owned by conf). */
int conf_load(const char *data_dir, const char **error_r);
/* Resets every value to its default and forgets the file (tests). */
void conf_reset(void);
/* Sets one value as the file would (tests and `sealpost init`). */
int conf_set(const char *name, const char *value, const char **error_r);

const char *conf_data_dir(void);
const char *conf_str(const char *name);
long long conf_int(const char *name);
/* conf_int clamped to [min, UINT32_MAX]: counts, sizes and seconds. */
unsigned conf_uint(const char *name, unsigned min);
bool conf_bool(const char *name);

/* The commented default configuration file written by `sealpost init`. */
void conf_write_default(FILE *out);
/* The settings table as Markdown (docs/configuration.md is checked
 * against it by a test). */
void conf_write_markdown(FILE *out);

#endif
