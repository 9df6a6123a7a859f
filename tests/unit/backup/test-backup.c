#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "backup/backup-private.h"
#include "conf/conf.h"
#include "core/core.h"
#include "crypto/crypto.h"
#include "db/db.h"
#include "store/store.h"

#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define ID "0123456789abcdef01234567"

static char dir[] = "/tmp/sealpost-backup-XXXXXX";

static void
test_parse_list(void **state)
{
	static const char xml[] =
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<ListBucketResult "
		"xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
		"<Name>b</Name><Prefix>" ID "</Prefix><KeyCount>2</KeyCount>"
		"<IsTruncated>true</IsTruncated>"
		"<NextContinuationToken>tok/en+=</NextContinuationToken>"
		"<Contents><Key>" ID ".sqlite</Key>"
		"<ETag>&quot;abc&quot;</ETag><Size>4096</Size></Contents>"
		"<Contents><Key>" ID "/20261123T184223Z.sqlite</Key>"
		"<Size>123456789012</Size><Owner><ID>x</ID></Owner>"
		"</Contents></ListBucketResult>";
	struct backup_s3_object *objects = NULL;
	size_t count = 0;
	bool truncated = false;
	char *token = NULL;

	(void)state;
	assert_int_equal(backup_s3_parse_list(xml, strlen(xml), &objects,
					      &count, &truncated, &token),
			 0);
	assert_int_equal(count, 2);
	assert_string_equal(objects[0].key, ID ".sqlite");
	assert_int_equal(objects[0].size, 4096);
	assert_string_equal(objects[1].key, ID "/20261123T184223Z.sqlite");
	assert_true(objects[1].size == 123456789012ULL);
	assert_true(truncated);
	assert_string_equal(token, "tok/en+=");
	free(token);
	backup_s3_objects_free(&objects, count);
	assert_null(objects);
}

static void
test_parse_list_rejects_other_documents(void **state)
{
	static const char error[] =
		"<?xml version=\"1.0\"?><Error><Code>NoSuchBucket</Code>"
		"<Message>The specified bucket does not exist</Message>"
		"</Error>";
	static const char broken[] = "<ListBucketResult><Contents>";
	struct backup_s3_object *objects = NULL;
	size_t count = 0;
	bool truncated;
	char *token, *code, *message;

	(void)state;
	assert_int_equal(backup_s3_parse_list(error, strlen(error), &objects,
					      &count, &truncated, &token),
			 -1);
	assert_int_equal(backup_s3_parse_list(broken, strlen(broken),
					      &objects, &count, &truncated,
					      &token),
			 -1);
	backup_s3_objects_free(&objects, count);
	assert_int_equal(backup_s3_parse_error(error, strlen(error), &code,
					       &message),
			 0);
	assert_string_equal(code, "NoSuchBucket");
	assert_string_equal(message, "The specified bucket does not exist");
	free(code);
	free(message);
	assert_int_equal(backup_s3_parse_error("", 0, &code, &message), -1);
	assert_null(code);
}

static void
test_key_names(void **state)
{
	char stamp[17];

	(void)state;
	assert_int_equal(backup_key_parse(ID, ID ".sqlite", stamp), 1);
	assert_string_equal(stamp, "");
	assert_int_equal(
		backup_key_parse(ID, ID "/20261123T184223Z.sqlite", stamp), 1);
	assert_string_equal(stamp, "20261123T184223Z");
	assert_int_equal(backup_key_parse(ID, ID ".sqlite.bak", stamp), 0);
	assert_int_equal(
		backup_key_parse(ID, ID "/2026112XT184223Z.sqlite", stamp), 0);
	assert_int_equal(backup_key_parse(ID, ID "/x/20261123T184223Z.sqlite",
					  stamp),
			 0);
	assert_int_equal(backup_key_parse(ID, "ffff" ID ".sqlite", stamp), 0);
	backup_stamp(0, stamp);
	assert_string_equal(stamp, "19700101T000000Z");
}

static void
test_urls(void **state)
{
	struct backup_target t = {
		.endpoint = "https://s3.example.net:9000",
		.region = "r",
		.bucket = "bk",
		.path_style = true,
	};
	char *url;

	(void)state;
	url = backup_s3_url(&t, ID "/20261123T184223Z.sqlite");
	assert_string_equal(url, "https://s3.example.net:9000/bk/" ID
				 "/20261123T184223Z.sqlite");
	free(url);
	t.path_style = false;
	url = backup_s3_url(&t, "a b+c");
	assert_string_equal(url, "https://bk.s3.example.net:9000/a%20b%2Bc");
	free(url);
	url = backup_s3_url(&t, NULL);
	assert_string_equal(url, "https://bk.s3.example.net:9000/");
	free(url);
}

static struct crypto_key *
make_mailbox(const char *id, int messages)
{
	struct crypto_key *key = crypto_key_create();
	struct store_mailbox *mbox = NULL;
	struct store_folder *inbox = NULL;
	const char *error;
	static const char msg[] = "From: a@b.test\r\nSubject: s\r\n\r\nhi\r\n";

	crypto_key_random(key);
	assert_int_equal(store_mailbox_open(dir, id, key, STORE_OPEN_CREATE,
					    &mbox, &error),
			 STORE_OK);
	assert_int_equal(store_folder_get(mbox, "INBOX", &inbox, &error),
			 STORE_OK);
	for (int i = 0; i < messages; i++) {
		assert_int_equal(store_append(mbox, inbox->id, msg,
					      sizeof(msg) - 1, 0, NULL, 0,
					      NULL, &error),
				 STORE_OK);
	}
	store_folder_free(&inbox);
	store_mailbox_close(&mbox);
	return key;
}

static void
test_snapshot_and_verify(void **state)
{
	struct crypto_key *key = make_mailbox(ID, 3), *other;
	struct store_mailbox *mbox = NULL;
	char *copy = xasprintf("%s/copy.sqlite", dir);
	const char *error;
	uint64_t live = 0, copied = 0;

	(void)state;
	assert_int_equal(store_mailbox_open(dir, ID, key, 0, &mbox, &error),
			 STORE_OK);
	assert_int_equal(store_mailbox_snapshot(mbox, key, copy, &live,
						&error),
			 STORE_OK);
	/* An existing destination is never overwritten. */
	assert_int_equal(store_mailbox_snapshot(mbox, key, copy, &live,
						&error),
			 STORE_ERR_TEMP);
	store_mailbox_close(&mbox);
	assert_int_equal(live, 3);
	assert_false(db_file_is_plaintext(copy));
	assert_int_equal(store_snapshot_verify(copy, key, &copied, &error),
			 STORE_OK);
	assert_int_equal(copied, 3);

	other = crypto_key_create();
	crypto_key_random(other);
	assert_int_equal(store_snapshot_verify(copy, other, &copied, &error),
			 STORE_ERR_BADKEY);
	crypto_key_destroy(&other);
	{
		/* A flipped bit in a page fails its MAC. */
		char *data;
		size_t len;

		assert_int_equal(fs_read_file(copy, &data, &len), 0);
		data[len - 4096 + 100] ^= 1;
		assert_int_equal(fs_write_atomic(copy, data, len, 0600), 0);
		free(data);
		assert_int_equal(
			store_snapshot_verify(copy, key, &copied, &error),
			STORE_ERR_INVALID);
	}
	unlink(copy);
	free(copy);
	crypto_key_destroy(&key);
}

static void
marker_of(const char *id, const struct crypto_key *key,
	  unsigned char out[STORE_CHANGE_MARKER_BYTES])
{
	struct store_mailbox *mbox = NULL;
	const char *error;

	assert_int_equal(store_mailbox_open(dir, id, key, 0, &mbox, &error),
			 STORE_OK);
	assert_int_equal(store_mailbox_change_marker(mbox, out, &error),
			 STORE_OK);
	store_mailbox_close(&mbox);
}

/* The change marker moves with every kind of change, including those that
 * take no MODSEQ, and with a new file of the same content; opening and
 * closing alone leave it. */
static void
test_change_marker(void **state)
{
	static const char id[] = "cccccccccccccccccccccccc";
	static const char msg[] = "From: a@b.test\r\nSubject: t\r\n\r\nyo\r\n";
	struct crypto_key *key = make_mailbox(id, 2);
	unsigned char m1[STORE_CHANGE_MARKER_BYTES], m2[sizeof(m1)],
		m3[sizeof(m1)], m4[sizeof(m1)], m5[sizeof(m1)], m6[sizeof(m1)];
	struct store_mailbox *mbox = NULL;
	struct store_folder *inbox = NULL;
	struct store_uidset set = {0};
	struct store_uid_range range = {1, 1};
	char *path = store_mailbox_path(dir, id);
	char *copy = xasprintf("%s/marker-copy.sqlite", dir);
	const char *error;
	uint64_t n;

	(void)state;
	marker_of(id, key, m1);
	marker_of(id, key, m2);
	assert_memory_equal(m1, m2, sizeof(m1));

	/* A folder, then its subscription: no MODSEQ, still a change. */
	assert_int_equal(store_mailbox_open(dir, id, key, 0, &mbox, &error),
			 STORE_OK);
	assert_int_equal(store_folder_create(mbox, "Projects",
					     STORE_SPECIAL_NONE, &error),
			 STORE_OK);
	store_mailbox_close(&mbox);
	marker_of(id, key, m3);
	assert_memory_not_equal(m2, m3, sizeof(m1));
	assert_int_equal(store_mailbox_open(dir, id, key, 0, &mbox, &error),
			 STORE_OK);
	{
		struct store_folder *f = NULL;

		assert_int_equal(store_folder_get(mbox, "Projects", &f,
						  &error),
				 STORE_OK);
		assert_int_equal(store_folder_subscribe(mbox, "Projects",
							!f->subscribed,
							&error),
				 STORE_OK);
		store_folder_free(&f);
	}
	store_mailbox_close(&mbox);
	marker_of(id, key, m4);
	assert_memory_not_equal(m3, m4, sizeof(m1));

	/* A flag, then a message. */
	assert_int_equal(store_mailbox_open(dir, id, key, 0, &mbox, &error),
			 STORE_OK);
	assert_int_equal(store_folder_get(mbox, "INBOX", &inbox, &error),
			 STORE_OK);
	set.ranges = &range;
	set.count = 1;
	assert_int_equal(store_flags_update(mbox, inbox->id, &set,
					    STORE_FLAGS_ADD, STORE_FLAG_SEEN,
					    NULL, 0, NULL, NULL, NULL, NULL,
					    &error),
			 STORE_OK);
	store_mailbox_close(&mbox);
	marker_of(id, key, m5);
	assert_memory_not_equal(m4, m5, sizeof(m1));
	assert_int_equal(store_mailbox_open(dir, id, key, 0, &mbox, &error),
			 STORE_OK);
	assert_int_equal(store_append(mbox, inbox->id, msg, sizeof(msg) - 1,
				      0, NULL, 0, NULL, &error),
			 STORE_OK);

	/* The same content in a new file (what a restore puts in place). */
	assert_int_equal(store_mailbox_snapshot(mbox, key, copy, &n, &error),
			 STORE_OK);
	store_mailbox_close(&mbox);
	marker_of(id, key, m6);
	assert_memory_not_equal(m5, m6, sizeof(m1));
	assert_int_equal(rename(copy, path), 0);
	marker_of(id, key, m1);
	assert_memory_not_equal(m6, m1, sizeof(m1));

	store_folder_free(&inbox);
	free(copy);
	free(path);
	crypto_key_destroy(&key);
}

static void
test_in_use_probe(void **state)
{
	static const char id[] = "abcdefabcdefabcdefabcdef";
	struct crypto_key *key = make_mailbox(id, 1);
	int up[2], down[2];
	char c;
	pid_t pid;

	(void)state;
	assert_false(backup_mailbox_in_use(dir, id));
	assert_int_equal(pipe(up), 0);
	assert_int_equal(pipe(down), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct store_mailbox *mbox = NULL;
		const char *error;

		if (store_mailbox_open(dir, id, key, 0, &mbox, &error) !=
		    STORE_OK)
			_exit(1);
		(void)write(up[1], "o", 1);
		(void)read(down[0], &c, 1);
		store_mailbox_close(&mbox);
		_exit(0);
	}
	assert_int_equal(read(up[0], &c, 1), 1);
	assert_true(backup_mailbox_in_use(dir, id));
	assert_int_equal(write(down[1], "x", 1), 1);
	assert_int_equal(waitpid(pid, NULL, 0), pid);
	assert_false(backup_mailbox_in_use(dir, id));
	close(up[0]);
	close(up[1]);
	close(down[0]);
	close(down[1]);
	crypto_key_destroy(&key);
}

static void
test_daily(void **state)
{
	static const char id[] = "aaaaaaaaaaaaaaaaaaaaaaaa";
	struct crypto_key *key = crypto_key_create();
	const char *error;
	char *endpoint;
	int port;

	(void)state;
	crypto_key_random(key);
	conf_reset();
	/* Not configured: nothing starts, and that is not an error. */
	assert_int_equal(backup_maybe_daily(dir, id, key, NULL), 0);
	/* A port nobody listens on (bound, then closed). */
	{
		struct sockaddr_in sa = {.sin_family = AF_INET};
		socklen_t len = sizeof(sa);
		int fd = socket(AF_INET, SOCK_STREAM, 0);

		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)),
				 0);
		assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len),
				 0);
		port = ntohs(sa.sin_port);
		close(fd);
	}
	endpoint = xasprintf("http://127.0.0.1:%d", port);
	assert_int_equal(conf_set("s3_endpoint", endpoint, &error), 0);
	assert_int_equal(conf_set("s3_bucket", "b", &error), 0);
	assert_int_equal(conf_set("s3_access_key_id", "k", &error), 0);
	assert_int_equal(conf_set("s3_secret_access_key", "s", &error), 0);
	assert_int_equal(backup_maybe_daily(dir, "short", key, NULL), 0);
	assert_int_equal(backup_maybe_daily(dir, id, key, NULL), 1);
	/* One at a time per mailbox; the key was copied, so the caller's
	 * may go at once. */
	assert_int_equal(backup_maybe_daily(dir, id, key, NULL), 0);
	crypto_key_destroy(&key);
	backup_daily_shutdown();
	conf_reset();
	free(endpoint);
	/* After shutdown nothing starts any more. */
	key = crypto_key_create();
	assert_int_equal(backup_maybe_daily(dir, id, key, NULL), 0);
	crypto_key_destroy(&key);
}

static int
setup(void **state)
{
	(void)state;
	if (crypto_init() < 0 || mkdtemp(dir) == NULL)
		return -1;
	return 0;
}

static int
teardown(void **state)
{
	char *cmd = xasprintf("rm -rf '%s'", dir);

	(void)state;
	if (system(cmd) != 0)
		return -1;
	free(cmd);
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_list),
		cmocka_unit_test(test_parse_list_rejects_other_documents),
		cmocka_unit_test(test_key_names),
		cmocka_unit_test(test_urls),
		cmocka_unit_test(test_snapshot_and_verify),
		cmocka_unit_test(test_change_marker),
		cmocka_unit_test(test_in_use_probe),
		cmocka_unit_test(test_daily),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
