#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/core.h"
#include "crypto/crypto.h"
#include "store/store.h"

#include <dirent.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[] = "/tmp/sealpost-store-XXXXXX";
static char mid[STORE_MAILBOX_ID_BUF];
static struct crypto_key *key;

/* A base64 body long enough to be cut out and shared. */
static char *
make_attachment(char seed)
{
	struct sp_buf buf;

	sp_buf_init(&buf);
	for (int line = 0; line < 40; line++) {
		for (int i = 0; i < 76; i++)
			sp_buf_append(&buf, &(char){(char)('A' + (seed + i +
								 line) % 26)},
				      1);
		sp_buf_append(&buf, "\r\n", 2);
	}
	return sp_buf_steal(&buf, NULL);
}

static char *
make_message(const char *subject, const char *text, const char *attachment)
{
	if (attachment == NULL)
		return xasprintf("From: Alice <alice@example.org>\r\n"
				 "To: bob@example.net\r\n"
				 "Subject: %s\r\n"
				 "Date: Mon, 23 Nov 2026 10:00:00 +0000\r\n"
				 "Message-ID: <%s@example.org>\r\n"
				 "\r\n%s\r\n",
				 subject, subject, text);
	return xasprintf("From: Alice <alice@example.org>\r\n"
			 "To: bob@example.net\r\n"
			 "Subject: %s\r\n"
			 "Date: Mon, 23 Nov 2026 10:00:00 +0000\r\n"
			 "MIME-Version: 1.0\r\n"
			 "Content-Type: multipart/mixed; boundary=\"b1\"\r\n"
			 "\r\n--b1\r\n"
			 "Content-Type: text/plain; charset=utf-8\r\n\r\n"
			 "%s\r\n"
			 "--b1\r\n"
			 "Content-Type: application/octet-stream\r\n"
			 "Content-Transfer-Encoding: base64\r\n"
			 "Content-Disposition: attachment; filename=x.bin\r\n"
			 "\r\n%s"
			 "--b1--\r\n",
			 subject, text, attachment);
}

static struct store_mailbox *
open_fresh(void)
{
	struct store_mailbox *mbox;
	const char *error;

	random_hex_id(mid, 12);
	if (store_mailbox_open(dir, mid, key, STORE_OPEN_CREATE, &mbox,
			       &error) != STORE_OK)
		fail_msg("open: %s", error);
	return mbox;
}

static int64_t
folder_id(struct store_mailbox *mbox, const char *name)
{
	struct store_folder *f;
	const char *error;
	int64_t id;

	if (store_folder_get(mbox, name, &f, &error) != STORE_OK)
		fail_msg("folder %s: %s", name, error);
	id = f->id;
	store_folder_free(&f);
	return id;
}

static uint32_t
append(struct store_mailbox *mbox, int64_t folder, const char *raw)
{
	uint32_t uid = 0;
	const char *error;

	if (store_append(mbox, folder, raw, strlen(raw), 0, NULL, 0, &uid,
			 &error) != STORE_OK)
		fail_msg("append: %s", error);
	return uid;
}

static void
assert_raw(struct store_mailbox *mbox, int64_t folder, uint32_t uid,
	   const char *expect, size_t len)
{
	struct sp_buf buf;
	const char *error;

	sp_buf_init(&buf);
	assert_int_equal(store_fetch_raw(mbox, folder, uid, &buf, &error),
			 STORE_OK);
	assert_int_equal(buf.len, len);
	assert_memory_equal(buf.data, expect, len);
	sp_buf_deinit(&buf);
}

static void
test_append_fetch_exact_and_dedup(void **state)
{
	struct store_mailbox *mbox = open_fresh();
	int64_t inbox = folder_id(mbox, "inbox");
	char *att = make_attachment(3), *att2 = make_attachment(5);
	char *m1 = make_message("one", "first text", att);
	char *m2 = make_message("two", "second text", att);
	char *m3 = make_message("three", "third", att2);
	const char *m4 = "Subject: bare\n\nno final newline";
	struct store_usage usage;
	struct store_message *msgs;
	size_t n;
	uint32_t *gone, u1, u2, u3, u4;
	const char *error;

	u1 = append(mbox, inbox, m1);
	u2 = append(mbox, inbox, m2);
	u3 = append(mbox, inbox, m3);
	u4 = append(mbox, inbox, m4);
	assert_int_equal(u1, 1);
	assert_int_equal(u4, 4);
	assert_raw(mbox, inbox, u1, m1, strlen(m1));
	assert_raw(mbox, inbox, u2, m2, strlen(m2));
	assert_raw(mbox, inbox, u3, m3, strlen(m3));
	assert_raw(mbox, inbox, u4, m4, strlen(m4));

	assert_int_equal(store_mailbox_usage(mbox, &usage, &error), STORE_OK);
	assert_int_equal(usage.messages, 4);
	assert_int_equal(usage.attachments, 2);
		/* The CRLF before the boundary belongs to the delimiter. */
	assert_int_equal(usage.dedup_saved, strlen(att) - 2);

	assert_int_equal(store_fetch(mbox, inbox, NULL,
				     STORE_FETCH_ENVELOPE |
					     STORE_FETCH_BODYSTRUCTURE,
				     &msgs, &n, &error),
			 STORE_OK);
	assert_int_equal(n, 4);
	assert_int_equal(msgs[0].size, strlen(m1));
	assert_non_null(strstr(msgs[0].envelope, "\"one\""));
	assert_non_null(strcasestr(msgs[0].bodystructure, "\"mixed\""));
	store_messages_free(&msgs, n);
	{
		/* The POP3 listing: UIDs and sizes only, in UID order. */
		struct store_uid_size *sizes;
		const char *raws[] = {m1, m2, m3, m4};

		assert_int_equal(store_fetch_sizes(mbox, inbox, &sizes, &n,
						   &error),
				 STORE_OK);
		assert_int_equal(n, 4);
		for (size_t i = 0; i < 4; i++) {
			assert_int_equal(sizes[i].uid, i + 1);
			assert_int_equal(sizes[i].size, strlen(raws[i]));
		}
		free(sizes);
	}

	/* The shared body lives while one message uses it. */
	assert_int_equal(store_flags_update(mbox, inbox,
					    &(struct store_uidset){
						    &(struct store_uid_range){
							    1, 1},
						    1},
					    STORE_FLAGS_ADD,
					    STORE_FLAG_DELETED, NULL, 0, NULL,
					    NULL, NULL, NULL, &error),
			 STORE_OK);
	assert_int_equal(store_expunge(mbox, inbox, NULL, &gone, &n, &error),
			 STORE_OK);
	assert_int_equal(n, 1);
	assert_int_equal(gone[0], 1);
	free(gone);
	assert_int_equal(store_mailbox_usage(mbox, &usage, &error), STORE_OK);
	assert_int_equal(usage.attachments, 2);
	assert_int_equal(usage.dedup_saved, 0);
	assert_raw(mbox, inbox, u2, m2, strlen(m2));
	assert_int_equal(store_flags_update(mbox, inbox, NULL, STORE_FLAGS_ADD,
					    STORE_FLAG_DELETED, NULL, 0, NULL,
					    NULL, NULL, NULL, &error),
			 STORE_OK);
	assert_int_equal(store_expunge(mbox, inbox, NULL, NULL, NULL, &error),
			 STORE_OK);
	assert_int_equal(store_mailbox_usage(mbox, &usage, &error), STORE_OK);
	assert_int_equal(usage.messages, 0);
	assert_int_equal(usage.attachments, 0);

	free(att);
	free(att2);
	free(m1);
	free(m2);
	free(m3);
	store_mailbox_close(&mbox);
	assert_null(mbox);
}

static void
test_flags_modseq_and_changes(void **state)
{
	struct store_mailbox *mbox = open_fresh();
	int64_t inbox = folder_id(mbox, "INBOX");
	struct store_message *changed;
	struct store_change *changes;
	struct store_folder_status st;
	uint32_t *failed;
	size_t n, nfailed;
	uint64_t before, m2;
	const char *error;
	char *msg = make_message("flags", "x", NULL);

	append(mbox, inbox, msg);
	append(mbox, inbox, msg);
	before = store_mailbox_highest_modseq(mbox);
	assert_int_equal(store_flags_update(mbox, inbox, NULL, STORE_FLAGS_ADD,
					    STORE_FLAG_SEEN, "$Work Later",
					    0, &changed, &n, &failed,
					    &nfailed, &error),
			 STORE_OK);
	assert_int_equal(n, 2);
	assert_int_equal(nfailed, 0);
	assert_int_equal(changed[0].flags, STORE_FLAG_SEEN);
	assert_string_equal(changed[0].keywords, "$Work Later");
	assert_true(changed[0].modseq > before);
	m2 = changed[0].modseq;
	store_messages_free(&changed, n);
	free(failed);

	/* UNCHANGEDSINCE older than the message's MODSEQ: [MODIFIED]. */
	assert_int_equal(store_flags_update(mbox, inbox, NULL,
					    STORE_FLAGS_REMOVE, 0, "later",
					    m2 - 1, &changed, &n, &failed,
					    &nfailed, &error),
			 STORE_OK);
	assert_int_equal(n, 0);
	assert_int_equal(nfailed, 2);
	store_messages_free(&changed, n);
	free(failed);
	assert_int_equal(store_flags_update(mbox, inbox, NULL,
					    STORE_FLAGS_REMOVE, 0, "later",
					    m2, &changed, &n, NULL, NULL,
					    &error),
			 STORE_OK);
	assert_int_equal(n, 2);
	assert_string_equal(changed[1].keywords, "$Work");
	store_messages_free(&changed, n);

	assert_int_equal(store_changes_since(mbox, inbox, before, &changes, &n,
					     &error),
			 STORE_OK);
	assert_int_equal(n, 2); /* the newest FLAGS entry per message */
	assert_int_equal(changes[0].kind, STORE_CHANGE_FLAGS);
	free(changes);
	assert_int_equal(store_folder_status(mbox, inbox, &st, &error),
			 STORE_OK);
	assert_int_equal(st.messages, 2);
	assert_int_equal(st.unseen, 0);
	assert_int_equal(st.highest_modseq, store_mailbox_highest_modseq(mbox));
	assert_int_equal(st.uidnext, 3);
	free(msg);
	store_mailbox_close(&mbox);
}

static void
test_copy_move_and_recent(void **state)
{
	struct store_mailbox *mbox = open_fresh();
	int64_t inbox = folder_id(mbox, "INBOX");
	int64_t archive = folder_id(mbox, "Archive");
	struct store_uid_map map;
	struct store_folder_status st;
	struct store_change *changes;
	uint32_t *uids;
	size_t n;
	uint64_t before;
	const char *error;
	char *msg = make_message("copy", "copy me", NULL);

	for (int i = 0; i < 3; i++)
		append(mbox, inbox, msg);
	assert_int_equal(store_folder_take_recent(mbox, inbox, &uids, &n,
						  &error),
			 STORE_OK);
	assert_int_equal(n, 3);
	free(uids);
	assert_int_equal(store_folder_take_recent(mbox, inbox, &uids, &n,
						  &error),
			 STORE_OK);
	assert_int_equal(n, 0);
	free(uids);

	assert_int_equal(store_copy(mbox, inbox,
				    &(struct store_uidset){
					    &(struct store_uid_range){2, 3}, 1},
				    archive, false, &map, &error),
			 STORE_OK);
	assert_int_equal(map.count, 2);
	assert_int_equal(map.src_uids[0], 2);
	assert_int_equal(map.dst_uids[0], 1);
	assert_int_equal(map.dst_uids[1], 2);
	store_uid_map_clear(&map);
	assert_raw(mbox, archive, 2, msg, strlen(msg));

	before = store_mailbox_highest_modseq(mbox);
	assert_int_equal(store_copy(mbox, inbox, NULL, archive, true, &map,
				    &error),
			 STORE_OK);
	assert_int_equal(map.count, 3);
	assert_int_equal(map.dst_uids[2], 5);
	store_uid_map_clear(&map);
	assert_int_equal(store_folder_status(mbox, inbox, &st, &error),
			 STORE_OK);
	assert_int_equal(st.messages, 0);
	assert_int_equal(store_changes_since(mbox, inbox, before, &changes, &n,
					     &error),
			 STORE_OK);
	assert_int_equal(n, 3);
	assert_int_equal(changes[0].kind, STORE_CHANGE_EXPUNGE);
	free(changes);
	assert_int_equal(store_folder_status(mbox, archive, &st, &error),
			 STORE_OK);
	assert_int_equal(st.messages, 5);
	assert_int_equal(st.size, 5 * strlen(msg));
	free(msg);
	store_mailbox_close(&mbox);
}

static void
test_folders(void **state)
{
	struct store_mailbox *mbox = open_fresh();
	struct store_folder *list, *f;
	size_t n;
	const char *error;
	char *msg = make_message("inbox rename", "x", NULL);

	assert_int_equal(store_folder_list(mbox, &list, &n, &error), STORE_OK);
	assert_int_equal(n, 6);
	assert_string_equal(list[0].name, "INBOX");
	store_folder_list_free(&list, n);

	assert_int_equal(store_folder_create(mbox, "Work/2026/Q4",
					     STORE_SPECIAL_NONE, &error),
			 STORE_OK);
	assert_int_equal(store_folder_create(mbox, "Work", STORE_SPECIAL_NONE,
					     &error),
			 STORE_ERR_EXISTS);
	assert_int_equal(store_folder_create(mbox, "a//b", STORE_SPECIAL_NONE,
					     &error),
			 STORE_ERR_INVALID);
	assert_int_equal(store_folder_get(mbox, "Work", &f, &error), STORE_OK);
	assert_true(f->has_children);
	store_folder_free(&f);
	append(mbox, folder_id(mbox, "Work/2026"), msg);

	assert_int_equal(store_folder_rename(mbox, "Work", "Jobs/Old", &error),
			 STORE_OK);
	assert_int_equal(store_folder_get(mbox, "Work/2026", NULL, &error),
			 STORE_ERR_NOTFOUND);
	assert_int_equal(store_folder_get(mbox, "Jobs/Old/2026/Q4", NULL,
					  &error),
			 STORE_OK);
	assert_int_equal(store_folder_get(mbox, "Jobs", NULL, &error),
			 STORE_OK);
	assert_raw(mbox, folder_id(mbox, "Jobs/Old/2026"), 1, msg,
		   strlen(msg));
	assert_int_equal(store_folder_rename(mbox, "Jobs", "Jobs/x", &error),
			 STORE_ERR_INVALID);
	/* UTF-8 names: children keep their tail (substr() counts
	 * characters, not bytes). */
	assert_int_equal(store_folder_create(mbox, "日本語/台北",
					     STORE_SPECIAL_NONE, &error),
			 STORE_OK);
	assert_int_equal(store_folder_rename(mbox, "日本語", "Entwürfe",
					     &error),
			 STORE_OK);
	assert_int_equal(store_folder_get(mbox, "Entwürfe/台北", NULL,
					  &error),
			 STORE_OK);
	assert_int_equal(store_folder_delete(mbox, "Entwürfe/台北", &error),
			 STORE_OK);
	assert_int_equal(store_folder_delete(mbox, "Entwürfe", &error),
			 STORE_OK);
	assert_int_equal(store_folder_delete(mbox, "Jobs/Old", &error),
			 STORE_ERR_NOTEMPTY);
	assert_int_equal(store_folder_delete(mbox, "Jobs/Old/2026/Q4",
					     &error),
			 STORE_OK);
	assert_int_equal(store_folder_delete(mbox, "INBOX", &error),
			 STORE_ERR_INVALID);

	/* RENAME INBOX moves its mail and leaves INBOX in place. */
	append(mbox, folder_id(mbox, "INBOX"), msg);
	assert_int_equal(store_folder_rename(mbox, "inbox", "Old Inbox",
					     &error),
			 STORE_OK);
	{
		struct store_folder_status st;

		assert_int_equal(store_folder_status(mbox,
						     folder_id(mbox, "INBOX"),
						     &st, &error),
				 STORE_OK);
		assert_int_equal(st.messages, 0);
		assert_int_equal(store_folder_status(
					 mbox, folder_id(mbox, "Old Inbox"),
					 &st, &error),
				 STORE_OK);
		assert_int_equal(st.messages, 1);
	}
	assert_int_equal(store_folder_subscribe(mbox, "Old Inbox", true,
						&error),
			 STORE_OK);
	assert_int_equal(store_folder_subscribe(mbox, "Nope", true, &error),
			 STORE_ERR_NOTFOUND);
	free(msg);
	store_mailbox_close(&mbox);
}

static size_t
search(struct store_mailbox *mbox, int64_t folder, struct store_search *s,
       uint32_t **uids)
{
	size_t n;
	const char *error;

	if (store_search_run(mbox, folder, s, NULL, 0, uids, &n, NULL,
			     &error) != STORE_OK)
		fail_msg("search: %s", error);
	store_search_free(&s);
	return n;
}

static struct store_search *
key_str(enum store_search_key k, const char *field, const char *str)
{
	struct store_search *s = store_search_new(k);

	s->str = xstrdup(str);
	if (field != NULL)
		s->field = xstrdup(field);
	return s;
}

static void
test_search(void **state)
{
	struct store_mailbox *mbox = open_fresh();
	int64_t inbox = folder_id(mbox, "INBOX");
	char *m1 = make_message("Quarterly report", "The Zebrafish budget "
						    "grew. Ünïcode Straße.",
				NULL);
	char *m2 = make_message("Re: lunch", "sandwiches at noon", NULL);
	char *m3 = make_message("=?utf-8?q?caf=C3=A9?=", "nothing", NULL);
	struct store_search *s, *or;
	uint32_t *uids;
	size_t n;
	const char *error;

	append(mbox, inbox, m1);
	append(mbox, inbox, m2);
	append(mbox, inbox, m3);

	/* Substring inside a word, any case: RFC 3501. */
	n = search(mbox, inbox, key_str(STORE_SEARCH_BODY, NULL, "EBRAFI"),
		   &uids);
	assert_int_equal(n, 1);
	assert_int_equal(uids[0], 1);
	free(uids);
	n = search(mbox, inbox, key_str(STORE_SEARCH_BODY, NULL, "ünïCODE"),
		   &uids);
	assert_int_equal(n, 1);
	free(uids);
	n = search(mbox, inbox, key_str(STORE_SEARCH_BODY, NULL, "at"),
		   &uids);
	assert_int_equal(n, 1); /* "at noon"; shorter than a trigram */
	assert_int_equal(uids[0], 2);
	free(uids);
	n = search(mbox, inbox,
		   key_str(STORE_SEARCH_BODY, NULL, "zebrafish budgets"),
		   &uids);
	assert_int_equal(n, 0); /* trigrams all present, text is not */
	free(uids);
	n = search(mbox, inbox, key_str(STORE_SEARCH_TEXT, NULL, "lunch"),
		   &uids);
	assert_int_equal(n, 1);
	free(uids);
	n = search(mbox, inbox, key_str(STORE_SEARCH_SUBJECT, NULL, "CAFÉ"),
		   &uids);
	assert_int_equal(n, 1);
	assert_int_equal(uids[0], 3);
	free(uids);
	n = search(mbox, inbox,
		   key_str(STORE_SEARCH_HEADER, "message-id", "lunch@"),
		   &uids);
	assert_int_equal(n, 1);
	free(uids);
	n = search(mbox, inbox,
		   key_str(STORE_SEARCH_REGEXP, "subject", "^(Re|Fwd): l"),
		   &uids);
	assert_int_equal(n, 1);
	assert_int_equal(uids[0], 2);
	free(uids);
	n = search(mbox, inbox,
		   key_str(STORE_SEARCH_REGEXP, "body", "budget\\s+grew"),
		   &uids);
	assert_int_equal(n, 1);
	free(uids);

	s = key_str(STORE_SEARCH_REGEXP, "subject", "(unclosed");
	assert_int_equal(store_search_run(mbox, inbox, s, NULL, 0, &uids, &n,
					  NULL, &error),
			 STORE_ERR_INVALID);
	store_search_free(&s);

	/* NOT (OR SUBJECT report UID 3) */
	s = store_search_new(STORE_SEARCH_NOT);
	or = store_search_new(STORE_SEARCH_OR);
	store_search_add(or, key_str(STORE_SEARCH_SUBJECT, NULL, "report"));
	{
		struct store_search *u = store_search_new(STORE_SEARCH_UID);

		u->ranges = xcalloc(1, sizeof(*u->ranges));
		u->ranges[0].first = u->ranges[0].last = 3;
		u->range_count = 1;
		store_search_add(or, u);
	}
	store_search_add(s, or);
	n = search(mbox, inbox, s, &uids);
	assert_int_equal(n, 1);
	assert_int_equal(uids[0], 2);
	free(uids);

	{
		struct store_sort sort = {STORE_SORT_SUBJECT, false};

		s = store_search_new(STORE_SEARCH_ALL);
		assert_int_equal(store_search_run(mbox, inbox, s, &sort, 1,
						  &uids, &n, NULL, &error),
				 STORE_OK);
		store_search_free(&s);
		assert_int_equal(n, 3);
		/* café, lunch (Re: stripped), quarterly report */
		assert_int_equal(uids[0], 3);
		assert_int_equal(uids[1], 2);
		assert_int_equal(uids[2], 1);
		free(uids);
	}
	s = store_search_new(STORE_SEARCH_NOFLAGS);
	s->flags = STORE_FLAG_SEEN;
	n = search(mbox, inbox, s, &uids);
	assert_int_equal(n, 3);
	free(uids);
	s = store_search_new(STORE_SEARCH_SENTON);
	s->date = 1795428000; /* 2026-11-23 */
	n = search(mbox, inbox, s, &uids);
	assert_int_equal(n, 3);
	free(uids);
	free(m1);
	free(m2);
	free(m3);
	store_mailbox_close(&mbox);
}

static size_t
count_files(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;
	size_t n = 0;

	if (d == NULL)
		return 0;
	while ((de = readdir(d)) != NULL)
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

static void
test_spool(void **state)
{
	struct store_mailbox *mbox = open_fresh();
	unsigned char pk[CRYPTO_PUBLIC_KEY_BYTES];
	struct crypto_key *sk = crypto_key_create();
	char *spool = xasprintf("%s/spool/%s", dir, mid);
	char *m1 = make_message("spool one", "canary-5b1e first", NULL);
	char *m2 = make_message("spool two", "second", NULL);
	uint32_t *uids;
	size_t n;
	const char *error;

	crypto_spool_keypair(pk, sk);
	assert_int_equal(store_spool_seal(dir, mid, pk, m1, strlen(m1),
					  &error),
			 0);
	assert_int_equal(store_spool_seal(dir, mid, pk, m2, strlen(m2),
					  &error),
			 0);
	assert_int_equal(store_spool_count(dir, mid), 2);
	{
		DIR *d = opendir(spool);
		struct dirent *de;

		while ((de = readdir(d)) != NULL) {
			char *path, *data;
			size_t len;

			if (de->d_name[0] == '.')
				continue;
			path = xasprintf("%s/%s", spool, de->d_name);
			assert_int_equal(fs_read_file(path, &data, &len), 0);
			assert_null(memmem(data, len, "canary-5b1e", 11));
			free(data);
			free(path);
		}
		closedir(d);
	}
	assert_int_equal(store_spool_drain(mbox, pk, sk, &n, &error),
			 STORE_OK);
	assert_int_equal(n, 2);
	assert_int_equal(count_files(spool), 0);
	/* Arrival order is kept. */
	assert_raw(mbox, folder_id(mbox, "INBOX"), 1, m1, strlen(m1));
	assert_raw(mbox, folder_id(mbox, "INBOX"), 2, m2, strlen(m2));
	n = search(mbox, folder_id(mbox, "INBOX"),
		   key_str(STORE_SEARCH_BODY, NULL, "canary-5b1e"), &uids);
	assert_int_equal(n, 1);
	free(uids);
	assert_int_equal(store_spool_drain(mbox, pk, sk, &n, &error),
			 STORE_OK);
	assert_int_equal(n, 0);

	/* A file sealed to another key stays where it is. */
	{
		unsigned char pk2[CRYPTO_PUBLIC_KEY_BYTES];
		struct crypto_key *sk2 = crypto_key_create();

		crypto_spool_keypair(pk2, sk2);
		assert_int_equal(store_spool_seal(dir, mid, pk2, m2,
						  strlen(m2), &error),
				 0);
		assert_int_equal(store_spool_drain(mbox, pk, sk, &n, &error),
				 STORE_OK);
		assert_int_equal(n, 0);
		assert_int_equal(store_spool_count(dir, mid), 1);
		crypto_key_destroy(&sk2);
	}
	store_mailbox_close(&mbox);
	assert_int_equal(store_mailbox_delete(dir, mid, &error), 0);
	assert_false(fs_exists(spool));
	{
		char *path = store_mailbox_path(dir, mid);

		assert_false(fs_exists(path));
		free(path);
	}
	crypto_key_destroy(&sk);
	free(spool);
	free(m1);
	free(m2);
}

static void
file_hash(const char *path, unsigned char out[32])
{
	char *data;
	size_t len;

	assert_int_equal(fs_read_file(path, &data, &len), 0);
	crypto_hash_sha256(out, (unsigned char *)data, len);
	free(data);
}

static void
test_rekey_and_wrong_key(void **state)
{
	struct store_mailbox *mbox = open_fresh();
	struct crypto_key *new_key = crypto_key_create();
	char *path = store_mailbox_path(dir, mid);
	unsigned char before[32], after[32];
	struct store_usage usage;
	const char *error;
	char *msg = make_message("rekey", "canary-9c2d", NULL);

	for (int i = 0; i < 20; i++)
		append(mbox, folder_id(mbox, "INBOX"), msg);
	store_mailbox_close(&mbox);
	crypto_key_random(new_key);

	file_hash(path, before);
	assert_int_equal(store_mailbox_open(dir, mid, new_key, 0, &mbox,
					    &error),
			 STORE_ERR_BADKEY);
	assert_int_equal(store_mailbox_rekey(dir, mid, new_key, key, &error),
			 STORE_ERR_BADKEY);
	file_hash(path, after);
	assert_memory_equal(before, after, 32);

	assert_int_equal(store_mailbox_rekey(dir, mid, key, new_key, &error),
			 STORE_OK);
	assert_int_equal(store_mailbox_open(dir, mid, key, 0, &mbox, &error),
			 STORE_ERR_BADKEY);
	if (store_mailbox_open(dir, mid, new_key, 0, &mbox, &error) !=
	    STORE_OK)
		fail_msg("open after rekey: %s", error);
	assert_int_equal(store_mailbox_usage(mbox, &usage, &error), STORE_OK);
	assert_int_equal(usage.messages, 20);
	assert_raw(mbox, folder_id(mbox, "INBOX"), 20, msg, strlen(msg));
	store_mailbox_close(&mbox);
	{
		char *data, *rekey = xasprintf("%s.rekey", path);
		size_t len;

		assert_false(fs_exists(rekey));
		free(rekey);
		assert_int_equal(fs_read_file(path, &data, &len), 0);
		assert_null(memmem(data, len, "canary-9c2d", 11));
		assert_null(memmem(data, len, "SQLite format 3", 15));
		free(data);
	}
	crypto_key_destroy(&new_key);
	free(path);
	free(msg);
}

static void
test_mbox_roundtrip(void **state)
{
	struct store_mailbox *mbox = open_fresh();
	char *mbox_path = xasprintf("%s/in.mbox", dir);
	char *out_path = xasprintf("%s/out.mbox", dir);
	char *eml_dir = xasprintf("%s/eml", dir);
	static const char in[] =
		"From MAILER-DAEMON Mon Nov 23 10:00:00 2026\n"
		"Subject: one\n\n>From the start\n>>From quoted\n>>>From deep\n"
		">From inside\ntext\n\n"
		"From MAILER-DAEMON Tue Nov 24 11:30:00 2026\n"
		"Subject: two\r\n\r\ncrlf body\r\n\n";
	char *data;
	size_t len, n;
	struct store_message *msgs;
	const char *error;

	assert_int_equal(fs_write_atomic(mbox_path, "x", 1, 0600), 0);
	{
		FILE *f = fopen(mbox_path, "w");

		fputs(in, f);
		fclose(f);
	}
	assert_int_equal(store_import(mbox, NULL, mbox_path, &n, &error),
			 STORE_OK);
	assert_int_equal(n, 2);
	{
		static const char first[] =
			"Subject: one\n\nFrom the start\n>From quoted\n"
			">>From deep\nFrom inside\n"
			"text\n";

		assert_raw(mbox, folder_id(mbox, "INBOX"), 1, first,
			   strlen(first));
		assert_raw(mbox, folder_id(mbox, "INBOX"), 2,
			   "Subject: two\r\n\r\ncrlf body\r\n", 27);
	}
	assert_int_equal(store_fetch(mbox, folder_id(mbox, "INBOX"), NULL, 0,
				     &msgs, &n, &error),
			 STORE_OK);
	assert_int_equal(msgs[1].internal_date, 1795519800);
	store_messages_free(&msgs, n);
	assert_int_equal(store_export(mbox, "INBOX", STORE_FORMAT_MBOX,
				      out_path, &n, &error),
			 STORE_OK);
	assert_int_equal(n, 2);
	assert_int_equal(fs_read_file(out_path, &data, &len), 0);
	assert_int_equal(len, strlen(in));
	assert_memory_equal(data, in, len);
	free(data);

	assert_int_equal(store_export(mbox, NULL, STORE_FORMAT_EML, eml_dir,
				      &n, &error),
			 STORE_OK);
	{
		char *p = xasprintf("%s/INBOX/2.eml", eml_dir);

		assert_int_equal(fs_read_file(p, &data, &len), 0);
		assert_int_equal(len, 27);
		free(data);
		/* An .eml imports as one message. */
		assert_int_equal(store_import(mbox, "Archive", p, &n, &error),
				 STORE_OK);
		assert_int_equal(n, 1);
		free(p);
	}
	free(mbox_path);
	free(out_path);
	free(eml_dir);
	store_mailbox_close(&mbox);
}

static void
test_quota(void **state)
{
	struct store_mailbox *mbox = open_fresh();
	char *msg = make_message("quota", "0123456789", NULL);
	const char *error;
	uint32_t uid;

	store_mailbox_set_quota(mbox, strlen(msg) + 10);
	append(mbox, folder_id(mbox, "INBOX"), msg);
	assert_int_equal(store_append(mbox, folder_id(mbox, "INBOX"), msg,
				      strlen(msg), 0, NULL, 0, &uid, &error),
			 STORE_ERR_QUOTA);
	assert_int_equal(store_append(mbox, 999999, msg, strlen(msg), 0, NULL,
				      0, &uid, &error),
			 STORE_ERR_QUOTA);
	store_mailbox_set_quota(mbox, 0);
	assert_int_equal(store_append(mbox, 999999, msg, strlen(msg), 0, NULL,
				      0, &uid, &error),
			 STORE_ERR_NOTFOUND);
	free(msg);
	store_mailbox_close(&mbox);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_append_fetch_exact_and_dedup),
		cmocka_unit_test(test_flags_modseq_and_changes),
		cmocka_unit_test(test_copy_move_and_recent),
		cmocka_unit_test(test_folders),
		cmocka_unit_test(test_search),
		cmocka_unit_test(test_spool),
		cmocka_unit_test(test_rekey_and_wrong_key),
		cmocka_unit_test(test_mbox_roundtrip),
		cmocka_unit_test(test_quota),
	};
	char *cmd;
	int rc;

	if (crypto_init() < 0 || mkdtemp(dir) == NULL)
		return 1;
	key = crypto_key_create();
	crypto_key_random(key);
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	crypto_key_destroy(&key);
	cmd = xasprintf("rm -rf %s", dir);
	if (system(cmd) != 0)
		rc = 1;
	free(cmd);
	return rc;
}
