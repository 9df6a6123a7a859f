#include "core.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

static enum log_level log_min_level = LOG_LEVEL_INFO;

static const char *const log_level_names[] = {
	[LOG_LEVEL_DEBUG] = "debug",
	[LOG_LEVEL_INFO] = "info",
	[LOG_LEVEL_WARN] = "warn",
	[LOG_LEVEL_ERROR] = "error",
};

void
log_set_level(enum log_level level)
{
	log_min_level = level;
}

int
log_parse_level(const char *name, enum log_level *level_r)
{
	for (size_t i = 0; i < SP_N_ELEMENTS(log_level_names); i++) {
		if (strcasecmp(name, log_level_names[i]) == 0) {
			*level_r = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

void
log_msg(enum log_level level, const char *id, const char *fmt, ...)
{
	char stamp[21];
	char line[1024];
	va_list ap;

	if (level < log_min_level)
		return;
	clock_format_iso8601(time(NULL), stamp);
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	/* One fprintf per line so concurrent threads do not interleave. */
	if (id != NULL)
		fprintf(stderr, "%s %s [%s] %s\n", stamp,
			log_level_names[level], id, line);
	else
		fprintf(stderr, "%s %s %s\n", stamp, log_level_names[level],
			line);
}
