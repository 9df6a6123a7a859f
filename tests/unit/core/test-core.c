#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/core.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void
test_buf_grows_and_terminates(void **state)
{
	struct sp_buf buf;

	sp_buf_init(&buf);
	for (int i = 0; i < 1000; i++)
		sp_buf_printf(&buf, "%d,", i);
	assert_true(buf.len > 2000);
	assert_int_equal(buf.data[buf.len], '\0');
	assert_true(str_has_prefix(buf.data, "0,1,2,"));
	sp_buf_reset(&buf);
	assert_int_equal(buf.len, 0);
	sp_buf_append(&buf, "a\0b", 3);
	assert_int_equal(buf.len, 3);
	assert_memory_equal(buf.data, "a\0b", 3);
	sp_buf_deinit(&buf);
}

static void
test_hex_round_trip_and_rejects(void **state)
{
	unsigned char in[4] = {0x00, 0xab, 0x7f, 0xff}, out[4];
	char hex[9];

	hex_encode(in, 4, hex);
	assert_string_equal(hex, "00ab7fff");
	assert_int_equal(hex_decode(hex, out, 4), 0);
	assert_memory_equal(in, out, 4);
	assert_int_equal(hex_decode("00ab7f", out, 4), -1);
	assert_int_equal(hex_decode("00ab7fffaa", out, 4), -1);
	assert_int_equal(hex_decode("00ab7fzz", out, 4), -1);
	assert_int_equal(hex_decode("00AB7FFF", out, 4), 0);
}

static void
test_random_hex_id_is_fresh(void **state)
{
	char a[25], b[25];

	random_hex_id(a, 12);
	random_hex_id(b, 12);
	assert_int_equal(strlen(a), 24);
	assert_string_not_equal(a, b);
}

static void
test_fs_write_atomic_replaces_and_sets_mode(void **state)
{
	char dir[] = "/tmp/sealpost-test-XXXXXX";
	char *path, *data;
	size_t len;
	struct stat st;

	assert_non_null(mkdtemp(dir));
	path = xasprintf("%s/sub/dir/file", dir);
	assert_int_equal(fs_mkdir_p(dir, 0700), 0);
	{
		char *sub = xasprintf("%s/sub/dir", dir);
		assert_int_equal(fs_mkdir_p(sub, 0700), 0);
		free(sub);
	}
	assert_int_equal(fs_write_atomic(path, "one", 3, 0600), 0);
	assert_int_equal(fs_write_atomic(path, "second", 6, 0600), 0);
	assert_int_equal(fs_read_file(path, &data, &len), 0);
	assert_int_equal(len, 6);
	assert_memory_equal(data, "second", 6);
	free(data);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(fs_secure_unlink(path), 0);
	assert_false(fs_exists(path));
	assert_int_equal(fs_read_file(path, &data, &len), -1);
	free(path);
	{
		char *cmd = xasprintf("rm -rf %s", dir);
		assert_int_equal(system(cmd), 0);
		free(cmd);
	}
}

static void
test_clock_offset_moves_time(void **state)
{
	time_t before = clock_now();
	char iso[21];

	clock_set_offset(5 * 86400);
	assert_true(clock_now() >= before + 5 * 86400);
	clock_set_offset(0);
	clock_format_iso8601(0, iso);
	assert_string_equal(iso, "1970-01-01T00:00:00Z");
}

static void
test_log_level_parse(void **state)
{
	enum log_level level;

	assert_int_equal(log_parse_level("WARN", &level), 0);
	assert_int_equal(level, LOG_LEVEL_WARN);
	assert_int_equal(log_parse_level("loud", &level), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_buf_grows_and_terminates),
		cmocka_unit_test(test_hex_round_trip_and_rejects),
		cmocka_unit_test(test_random_hex_id_is_fresh),
		cmocka_unit_test(test_fs_write_atomic_replaces_and_sets_mode),
		cmocka_unit_test(test_clock_offset_moves_time),
		cmocka_unit_test(test_log_level_parse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
