#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "conf/conf.h"
#include "core/core.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[] = "/tmp/sealpost-conf-XXXXXX";

static void
write_conf(const char *text)
{
	char *path = xasprintf("%s/sealpost.conf", dir);

	assert_int_equal(fs_write_atomic(path, text, strlen(text), 0600), 0);
	free(path);
}

static void
test_defaults_without_file(void **state)
{
	const char *error = NULL;

	unsetenv("SEALPOST_IMAPS_LISTEN");
	assert_int_equal(conf_load("/nonexistent-sealpost", &error), 0);
	assert_string_equal(conf_str("imaps_listen"), "0.0.0.0:993");
	assert_int_equal(conf_int("alias_create_per_day"), 50);
	assert_false(conf_bool("webhook_allow_private"));
}

static void
test_file_then_environment(void **state)
{
	const char *error = NULL;

	write_conf("# comment\n  imaps_listen = 127.0.0.1:10993 \n"
		   "alias_create_per_day=7\nwebhook_allow_private = yes\n"
		   "s3_bucket = \"quoted value\"\n");
	unsetenv("SEALPOST_IMAPS_LISTEN");
	assert_int_equal(conf_load(dir, &error), 0);
	assert_string_equal(conf_str("imaps_listen"), "127.0.0.1:10993");
	assert_int_equal(conf_int("alias_create_per_day"), 7);
	assert_true(conf_bool("webhook_allow_private"));
	assert_string_equal(conf_str("s3_bucket"), "quoted value");

	/* The environment wins, and an empty value is a value. */
	setenv("SEALPOST_IMAPS_LISTEN", "", 1);
	setenv("SEALPOST_ALIAS_CREATE_PER_DAY", "3", 1);
	assert_int_equal(conf_load(dir, &error), 0);
	assert_string_equal(conf_str("imaps_listen"), "");
	assert_int_equal(conf_int("alias_create_per_day"), 3);
	unsetenv("SEALPOST_IMAPS_LISTEN");
	unsetenv("SEALPOST_ALIAS_CREATE_PER_DAY");
}

static void
test_bad_values_are_reported(void **state)
{
	const char *error = NULL;

	write_conf("no_such_setting = 1\n");
	assert_int_equal(conf_load(dir, &error), -1);
	assert_non_null(strstr(error, "no_such_setting"));
	write_conf("backup_keep = many\n");
	assert_int_equal(conf_load(dir, &error), -1);
	assert_non_null(strstr(error, "backup_keep"));
	write_conf("webhook_allow_private = maybe\n");
	assert_int_equal(conf_load(dir, &error), -1);
	write_conf("just a line\n");
	assert_int_equal(conf_load(dir, &error), -1);
	assert_non_null(strstr(error, "line 1"));
	write_conf("");
	setenv("SEALPOST_LOG_LEVEL", "loud", 1);
	assert_int_equal(conf_load(dir, &error), -1);
	unsetenv("SEALPOST_LOG_LEVEL");
	conf_reset();
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults_without_file),
		cmocka_unit_test(test_file_then_environment),
		cmocka_unit_test(test_bad_values_are_reported),
	};
	int ret;

	if (mkdtemp(dir) == NULL)
		return 1;
	ret = cmocka_run_group_tests(tests, NULL, NULL);
	{
		char *path = xasprintf("%s/sealpost.conf", dir);
		unlink(path);
		free(path);
		rmdir(dir);
	}
	return ret;
}
