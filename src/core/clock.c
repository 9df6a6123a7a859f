#include "core.h"

#include <stdatomic.h>
#include <stdlib.h>

static _Atomic int64_t clock_offset;
static atomic_bool clock_env_read;

static void
clock_read_env(void)
{
	const char *s;

	if (atomic_exchange(&clock_env_read, true))
		return;
	s = getenv("SEALPOST_CLOCK_OFFSET");
	if (s != NULL && *s != '\0')
		atomic_store(&clock_offset, strtoll(s, NULL, 10));
}

time_t
clock_now(void)
{
	clock_read_env();
	return time(NULL) + (time_t)atomic_load(&clock_offset);
}

void
clock_set_offset(int64_t seconds)
{
	atomic_store(&clock_env_read, true);
	atomic_store(&clock_offset, seconds);
}

void
clock_format_iso8601(time_t t, char out[21])
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, 21, "%Y-%m-%dT%H:%M:%SZ", &tm);
}
