#include "conf.h"

#include "core/core.h"

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CONF_MAX_SETTINGS 256

/* Current values, parallel to conf_settings[]; NULL means the default. */
static char *conf_values[CONF_MAX_SETTINGS];
static char *conf_dir;
static char conf_error[256];

static int
conf_index(const char *name)
{
	for (int i = 0; conf_settings[i].name != NULL; i++) {
		if (strcmp(conf_settings[i].name, name) == 0)
			return i;
	}
	return -1;
}

static int
conf_index_or_die(const char *name)
{
	int i = conf_index(name);

	if (i < 0)
		core_panic("unknown setting '%s'", name);
	return i;
}

static int
conf_parse_bool(const char *value, bool *out)
{
	static const char *const yes[] = {"1", "true", "yes", "on"};
	static const char *const no[] = {"0", "false", "no", "off"};

	for (size_t i = 0; i < SP_N_ELEMENTS(yes); i++) {
		if (strcasecmp(value, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(value, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return -1;
}

static int
conf_parse_int(const char *value, long long *out)
{
	char *end;

	errno = 0;
	*out = strtoll(value, &end, 10);
	if (errno != 0 || end == value || *end != '\0')
		return -1;
	return 0;
}

static int
conf_validate(int i, const char *value, const char **error_r)
{
	bool b;
	long long n;

	switch (conf_settings[i].type) {
	case CONF_BOOL:
		if (conf_parse_bool(value, &b) < 0) {
			snprintf(conf_error, sizeof(conf_error),
				 "setting %s: '%s' is not a boolean",
				 conf_settings[i].name, value);
			*error_r = conf_error;
			return -1;
		}
		break;
	case CONF_INT:
		if (conf_parse_int(value, &n) < 0 || n < 0) {
			snprintf(conf_error, sizeof(conf_error),
				 "setting %s: '%s' is not a non-negative "
				 "integer",
				 conf_settings[i].name, value);
			*error_r = conf_error;
			return -1;
		}
		break;
	case CONF_STRING:
		break;
	}
	return 0;
}

int
conf_set(const char *name, const char *value, const char **error_r)
{
	int i = conf_index(name);

	if (i < 0) {
		snprintf(conf_error, sizeof(conf_error), "unknown setting '%s'",
			 name);
		*error_r = conf_error;
		return -1;
	}
	if (conf_validate(i, value, error_r) < 0)
		return -1;
	free(conf_values[i]);
	conf_values[i] = xstrdup(value);
	return 0;
}

void
conf_reset(void)
{
	for (int i = 0; i < CONF_MAX_SETTINGS; i++) {
		free(conf_values[i]);
		conf_values[i] = NULL;
	}
	free(conf_dir);
	conf_dir = NULL;
}

static char *
trim(char *s)
{
	char *end;

	while (isspace((unsigned char)*s))
		s++;
	end = s + strlen(s);
	while (end > s && isspace((unsigned char)end[-1]))
		*--end = '\0';
	return s;
}

static int
conf_load_file(const char *path, const char **error_r)
{
	char *data, *line, *save = NULL;
	size_t len;
	int lineno = 0, ret = 0;

	if (fs_read_file(path, &data, &len) < 0) {
		if (errno == ENOENT)
			return 0;
		snprintf(conf_error, sizeof(conf_error), "%s: %s", path,
			 strerror(errno));
		*error_r = conf_error;
		return -1;
	}
	for (line = strtok_r(data, "\n", &save); line != NULL && ret == 0;
	     line = strtok_r(NULL, "\n", &save)) {
		char *eq, *name, *value;

		lineno++;
		line = trim(line);
		if (*line == '\0' || *line == '#')
			continue;
		eq = strchr(line, '=');
		if (eq == NULL) {
			snprintf(conf_error, sizeof(conf_error),
				 "%s: line %d: expected name = value", path,
				 lineno);
			*error_r = conf_error;
			ret = -1;
			break;
		}
		*eq = '\0';
		name = trim(line);
		value = trim(eq + 1);
		size_t vlen = strlen(value);
		if (vlen >= 2 && value[0] == '"' && value[vlen - 1] == '"') {
			value[vlen - 1] = '\0';
			value++;
		}
		ret = conf_set(name, value, error_r);
	}
	free(data);
	return ret;
}

static int
conf_load_env(const char **error_r)
{
	char envname[128];

	for (int i = 0; conf_settings[i].name != NULL; i++) {
		const char *value;
		size_t j;

		snprintf(envname, sizeof(envname), "SEALPOST_%s",
			 conf_settings[i].name);
		for (j = strlen("SEALPOST_"); envname[j] != '\0'; j++)
			envname[j] = (char)toupper((unsigned char)envname[j]);
		value = getenv(envname);
		if (value != NULL &&
		    conf_set(conf_settings[i].name, value, error_r) < 0)
			return -1;
	}
	return 0;
}

int
conf_load(const char *data_dir, const char **error_r)
{
	char *path;
	int ret;

	SP_ASSERT(conf_index("") < 0);
	conf_reset();
	conf_dir = xstrdup(data_dir);
	path = xasprintf("%s/sealpost.conf", data_dir);
	ret = conf_load_file(path, error_r);
	free(path);
	if (ret == 0)
		ret = conf_load_env(error_r);
	if (ret == 0) {
		enum log_level level;

		if (log_parse_level(conf_str("log_level"), &level) < 0) {
			*error_r = "setting log_level: expected debug, info, "
				   "warn or error";
			return -1;
		}
		log_set_level(level);
	}
	return ret;
}

const char *
conf_data_dir(void)
{
	return conf_dir != NULL ? conf_dir : ".";
}

const char *
conf_str(const char *name)
{
	int i = conf_index_or_die(name);

	return conf_values[i] != NULL ? conf_values[i]
				      : conf_settings[i].default_value;
}

long long
conf_int(const char *name)
{
	long long n = 0;

	SP_ASSERT(conf_settings[conf_index_or_die(name)].type == CONF_INT);
	(void)conf_parse_int(conf_str(name), &n);
	return n;
}

unsigned
conf_uint(const char *name, unsigned min)
{
	long long v = conf_int(name);

	if (v < (long long)min)
		v = min;
	if (v > UINT32_MAX)
		v = UINT32_MAX;
	return (unsigned)v;
}

bool
conf_bool(const char *name)
{
	bool b = false;

	SP_ASSERT(conf_settings[conf_index_or_die(name)].type == CONF_BOOL);
	(void)conf_parse_bool(conf_str(name), &b);
	return b;
}

static const char *
conf_type_name(enum conf_type type)
{
	switch (type) {
	case CONF_STRING:
		return "string";
	case CONF_INT:
		return "integer";
	case CONF_BOOL:
		return "boolean";
	}
	return "?";
}

void
conf_write_default(FILE *out)
{
	fputs("# Sealpost configuration. Every setting can be overridden by "
	      "the environment\n# variable SEALPOST_<NAME>; an empty *_listen "
	      "turns that listener off.\n# Lines below show the defaults.\n",
	      out);
	for (int i = 0; conf_settings[i].name != NULL; i++) {
		fprintf(out, "\n# %s (%s)\n#%s = %s\n",
			conf_settings[i].description,
			conf_type_name(conf_settings[i].type),
			conf_settings[i].name, conf_settings[i].default_value);
	}
}

void
conf_write_markdown(FILE *out)
{
	fputs("| Setting | Type | Default | Meaning |\n"
	      "| --- | --- | --- | --- |\n",
	      out);
	for (int i = 0; conf_settings[i].name != NULL; i++) {
		fprintf(out, "| `%s` | %s | `%s` | %s |\n",
			conf_settings[i].name,
			conf_type_name(conf_settings[i].type),
			conf_settings[i].default_value,
			conf_settings[i].description);
	}
}
