/* store: messages -- append, fetch, flags, expunge, copy/move, journal. */
#include "store-private.h"

#include "mime/mime.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- UID sets ---- */

static int
store_range_cmp(const void *a, const void *b)
{
	const struct store_uid_range *x = a, *y = b;

	return x->first < y->first ? -1 : x->first > y->first ? 1 : 0;
}

/* Sorted, merged copy of a set; NULL set: one range over every UID. */
static struct store_uid_range *
store_uidset_normalize(const struct store_uidset *set, size_t *count_r)
{
	struct store_uid_range *r;
	size_t n = 0;

	if (set == NULL) {
		r = xmalloc(sizeof(*r));
		r->first = 1;
		r->last = UINT32_MAX;
		*count_r = 1;
		return r;
	}
	r = xmalloc((set->count + 1) * sizeof(*r));
	for (size_t i = 0; i < set->count; i++) {
		uint32_t a = set->ranges[i].first, b = set->ranges[i].last;

		r[i].first = a < b ? a : b;
		r[i].last = a < b ? b : a;
	}
	qsort(r, set->count, sizeof(*r), store_range_cmp);
	for (size_t i = 0; i < set->count; i++) {
		if (n > 0 && (uint64_t)r[n - 1].last + 1 >= r[i].first) {
			if (r[i].last > r[n - 1].last)
				r[n - 1].last = r[i].last;
		} else {
			r[n++] = r[i];
		}
	}
	*count_r = n;
	return r;
}

/* ---- Keywords ---- */

static int
store_str_casecmp(const void *a, const void *b)
{
	return strcasecmp(*(char *const *)a, *(char *const *)b);
}

/* Splits a space-separated keyword list; caller frees the array and the
 * copy in *copy_r. Duplicates (without regard to case) are dropped. */
static char **
store_keywords_split(const char *list, char **copy_r, size_t *count_r)
{
	char *copy = xstrdup(list != NULL ? list : ""), *save = NULL;
	char **words = NULL;
	size_t n = 0, cap = 0;

	for (char *w = strtok_r(copy, " ", &save); w != NULL;
	     w = strtok_r(NULL, " ", &save)) {
		bool dup = false;

		for (size_t i = 0; i < n && !dup; i++)
			dup = strcasecmp(words[i], w) == 0;
		if (dup)
			continue;
		if (n == cap) {
			cap = cap == 0 ? 8 : cap * 2;
			words = xrealloc(words, cap * sizeof(*words));
		}
		words[n++] = w;
	}
	if (n > 1)
		qsort(words, n, sizeof(*words), store_str_casecmp);
	*copy_r = copy;
	*count_r = n;
	return words;
}

static char *
store_keywords_join(char **words, size_t count)
{
	struct sp_buf buf;

	sp_buf_init(&buf);
	for (size_t i = 0; i < count; i++) {
		if (i > 0)
			sp_buf_append(&buf, " ", 1);
		sp_buf_append_str(&buf, words[i]);
	}
	return sp_buf_steal(&buf, NULL);
}

static char *
store_keywords_normalize(const char *list)
{
	char *copy, **words, *out;
	size_t n;

	words = store_keywords_split(list, &copy, &n);
	out = store_keywords_join(words, n);
	free(words);
	free(copy);
	return out;
}

/* Applies op to `current` with `change`; caller frees the result. */
static char *
store_keywords_apply(const char *current, enum store_flags_op op,
		     const char *change)
{
	char *c1, *c2, **cur, **chg, *out;
	size_t n1, n2, n = 0;
	char **res;

	if (op == STORE_FLAGS_SET)
		return store_keywords_normalize(change);
	cur = store_keywords_split(current, &c1, &n1);
	chg = store_keywords_split(change, &c2, &n2);
	res = xmalloc((n1 + n2 + 1) * sizeof(*res));
	for (size_t i = 0; i < n1; i++) {
		bool in_chg = false;

		for (size_t j = 0; j < n2 && !in_chg; j++)
			in_chg = strcasecmp(cur[i], chg[j]) == 0;
		if (op == STORE_FLAGS_REMOVE && in_chg)
			continue;
		res[n++] = cur[i];
	}
	if (op == STORE_FLAGS_ADD) {
		for (size_t j = 0; j < n2; j++) {
			bool in_cur = false;

			for (size_t i = 0; i < n1 && !in_cur; i++)
				in_cur = strcasecmp(cur[i], chg[j]) == 0;
			if (!in_cur)
				res[n++] = chg[j];
		}
	}
	if (n > 1)
		qsort(res, n, sizeof(*res), store_str_casecmp);
	out = store_keywords_join(res, n);
	free(res);
	free(cur);
	free(chg);
	free(c1);
	free(c2);
	return out;
}

/* ---- Dates ---- */

static time_t
store_parse_iso8601(const char *s)
{
	struct tm tm = {0};

	if (s == NULL || strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm) == NULL)
		return 0;
	return timegm(&tm);
}

/* ---- Append ---- */

static void
store_bind_opt_text(sqlite3_stmt *stmt, int col, const char *text)
{
	if (text != NULL)
		sqlite3_bind_text(stmt, col, text, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(stmt, col);
}

/* Attachment bodies worth cutting out: long enough, inside the body, in
 * ascending non-overlapping order (mime lists leaves in part order). */
static size_t
store_pick_cuts(const struct mime_info *info, size_t len,
		const struct mime_attachment **cuts)
{
	size_t n = 0, end = info->header_len;

	for (size_t i = 0; i < info->attachment_count; i++) {
		const struct mime_attachment *a = &info->attachments[i];

		if (a->body_len < STORE_DEDUP_MIN || a->body_offset < end ||
		    a->body_offset + a->body_len > len)
			continue;
		cuts[n++] = a;
		end = a->body_offset + a->body_len;
	}
	return n;
}

static int
store_step_done(sqlite3_stmt *stmt)
{
	int rc = sqlite3_step(stmt);

	sqlite3_reset(stmt);
	return rc == SQLITE_DONE ? 0 : -1;
}

enum store_error
store_append_locked(struct store_mailbox *mbox, int64_t folder_id,
		    const void *raw, size_t len, uint32_t flags,
		    const char *keywords, time_t internal_date,
		    uint32_t *uid_r, const char **error_r)
{
	const unsigned char *bytes = raw;
	struct mime_info *info = NULL;
	const struct mime_attachment **cuts = NULL;
	struct sp_buf rest, addresses, zrest, ztext;
	char date[21], *kw = NULL, *sort_subject = NULL;
	char *sort_from = NULL, *sort_to = NULL, *sort_cc = NULL;
	const char *perr;
	enum store_error err = STORE_OK;
	sqlite3_stmt *stmt;
	uint32_t uid;
	uint64_t modseq;
	int64_t message_id;
	size_t ncuts, pos;

	sp_buf_init(&rest);
	sp_buf_init(&addresses);
	sp_buf_init(&zrest);
	sp_buf_init(&ztext);
	if (len == 0 || mime_parse(raw, len, &info, &perr) < 0) {
		store_set_error(error_r, "not a message");
		return STORE_ERR_INVALID;
	}
	if ((err = store_quota_check(mbox, len, error_r)) != STORE_OK)
		goto out;

	stmt = store_stmt(mbox, STORE_STMT_FOLDER_FOR_APPEND,
			  "SELECT uidnext FROM folders WHERE id = ?;");
	sqlite3_bind_int64(stmt, 1, folder_id);
	if (sqlite3_step(stmt) != SQLITE_ROW) {
		sqlite3_reset(stmt);
		store_set_error(error_r, "no such folder");
		err = STORE_ERR_NOTFOUND;
		goto out;
	}
	uid = (uint32_t)sqlite3_column_int64(stmt, 0);
	sqlite3_reset(stmt);
	if (uid == 0 || uid == UINT32_MAX) {
		store_set_error(error_r, "folder out of UIDs");
		err = STORE_ERR_INVALID;
		goto out;
	}
	modseq = store_next_modseq(mbox);

	cuts = xcalloc(info->attachment_count + 1, sizeof(*cuts));
	ncuts = store_pick_cuts(info, len, cuts);
	pos = info->header_len;
	for (size_t i = 0; i < ncuts; i++) {
		sp_buf_append(&rest, bytes + pos, cuts[i]->body_offset - pos);
		pos = cuts[i]->body_offset + cuts[i]->body_len;
	}
	sp_buf_append(&rest, bytes + pos, len - pos);
	store_deflate(rest.data, rest.len, &zrest);
	store_deflate(info->text, strlen(info->text), &ztext);

	clock_format_iso8601(internal_date != 0 ? internal_date : clock_now(),
			     date);
	kw = store_keywords_normalize(keywords);
	sort_subject = store_base_subject(info->subject);
	sort_from = store_sort_address(info->from);
	sort_to = store_sort_address(info->to);
	sort_cc = store_sort_address(info->cc);

	stmt = store_stmt(
		mbox, STORE_STMT_INSERT_MESSAGE,
		"INSERT INTO messages(folder_id, uid, modseq, flags, keywords,"
		" internal_date, size, sent_date, subject, from_addr, to_addr,"
		" cc_addr, bcc_addr, reply_to, sender, message_id, in_reply_to,"
		" refs, sort_subject, sort_from, sort_to, sort_cc, envelope,"
		" body, bodystructure) VALUES(?1, ?2, ?3,"
		" ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,"
		" ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25);");
	sqlite3_bind_int64(stmt, 1, folder_id);
	sqlite3_bind_int64(stmt, 2, uid);
	sqlite3_bind_int64(stmt, 3, (sqlite3_int64)modseq);
	sqlite3_bind_int(stmt, 4, (int)(flags & STORE_FLAG_ALL));
	sqlite3_bind_text(stmt, 5, kw, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 6, date, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 7, (sqlite3_int64)len);
	if (info->date != 0)
		sqlite3_bind_int64(stmt, 8, (sqlite3_int64)info->date);
	else
		sqlite3_bind_null(stmt, 8);
	store_bind_opt_text(stmt, 9, info->subject);
	store_bind_opt_text(stmt, 10, info->from);
	store_bind_opt_text(stmt, 11, info->to);
	store_bind_opt_text(stmt, 12, info->cc);
	store_bind_opt_text(stmt, 13, info->bcc);
	store_bind_opt_text(stmt, 14, info->reply_to);
	store_bind_opt_text(stmt, 15, info->sender);
	store_bind_opt_text(stmt, 16, info->message_id);
	store_bind_opt_text(stmt, 17, info->in_reply_to);
	store_bind_opt_text(stmt, 18, info->references);
	store_bind_opt_text(stmt, 19, sort_subject);
	store_bind_opt_text(stmt, 20, sort_from);
	store_bind_opt_text(stmt, 21, sort_to);
	store_bind_opt_text(stmt, 22, sort_cc);
	store_bind_opt_text(stmt, 23, info->envelope);
	store_bind_opt_text(stmt, 24, info->body);
	store_bind_opt_text(stmt, 25, info->bodystructure);
	if (store_step_done(stmt) < 0) {
		err = store_db_error(mbox, "append", error_r);
		goto out;
	}
	message_id = sqlite3_last_insert_rowid(mbox->db);
	stmt = store_stmt(mbox, STORE_STMT_INSERT_CONTENT,
			  "INSERT INTO message_content(id, header, rest, text)"
			  " VALUES(?1, ?2, ?3, ?4);");
	sqlite3_bind_int64(stmt, 1, message_id);
	sqlite3_bind_blob64(stmt, 2, raw, info->header_len, SQLITE_STATIC);
	sqlite3_bind_blob64(stmt, 3, zrest.data, zrest.len, SQLITE_STATIC);
	sqlite3_bind_blob64(stmt, 4, ztext.data, ztext.len, SQLITE_STATIC);
	if (store_step_done(stmt) < 0) {
		err = store_db_error(mbox, "append", error_r);
		goto out;
	}

	for (size_t i = 0; i < ncuts; i++) {
		unsigned char hash[crypto_hash_sha256_BYTES];
		const unsigned char *body = bytes + cuts[i]->body_offset;
		int64_t att_id = 0;

		crypto_hash_sha256(hash, body, cuts[i]->body_len);
		stmt = store_stmt(mbox, STORE_STMT_INSERT_ATTACHMENT,
				  "INSERT INTO attachments(sha256, refcount,"
				  " content) VALUES(?, 1, ?) ON CONFLICT(sha256)"
				  " DO UPDATE SET refcount = refcount + 1"
				  " RETURNING id;");
		sqlite3_bind_blob(stmt, 1, hash, sizeof(hash), SQLITE_STATIC);
		sqlite3_bind_blob64(stmt, 2, body, cuts[i]->body_len,
				    SQLITE_STATIC);
		if (sqlite3_step(stmt) == SQLITE_ROW)
			att_id = sqlite3_column_int64(stmt, 0);
		if (att_id == 0 || sqlite3_step(stmt) != SQLITE_DONE) {
			sqlite3_reset(stmt);
			err = store_db_error(mbox, "attachment", error_r);
			goto out;
		}
		sqlite3_reset(stmt);
		stmt = store_stmt(mbox, STORE_STMT_INSERT_MSG_ATTACHMENT,
				  "INSERT INTO message_parts(message_id, offset,"
				  " attachment_id, length) VALUES(?, ?, ?, ?);");
		sqlite3_bind_int64(stmt, 1, message_id);
		sqlite3_bind_int64(stmt, 2,
				   (sqlite3_int64)cuts[i]->body_offset);
		sqlite3_bind_int64(stmt, 3, att_id);
		sqlite3_bind_int64(stmt, 4, (sqlite3_int64)cuts[i]->body_len);
		if (store_step_done(stmt) < 0) {
			err = store_db_error(mbox, "attachment", error_r);
			goto out;
		}
	}

	{
		const char *lists[] = {info->from,	info->to,
				       info->cc,	info->bcc,
				       info->reply_to, info->sender};

		for (size_t i = 0; i < SP_N_ELEMENTS(lists); i++) {
			if (lists[i] == NULL)
				continue;
			if (addresses.len > 0)
				sp_buf_append(&addresses, "\n", 1);
			sp_buf_append_str(&addresses, lists[i]);
		}
	}
	stmt = store_stmt(mbox, STORE_STMT_INSERT_FTS,
			  "INSERT INTO fts(rowid, subject, addresses, text)"
			  " VALUES(?, ?, ?, ?);");
	sqlite3_bind_int64(stmt, 1, message_id);
	sqlite3_bind_text(stmt, 2, info->subject != NULL ? info->subject : "",
			  -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 3, addresses.len > 0 ? addresses.data : "",
			  -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 4, info->text, -1, SQLITE_STATIC);
	if (store_step_done(stmt) < 0) {
		err = store_db_error(mbox, "index", error_r);
		goto out;
	}

	stmt = store_stmt(mbox, STORE_STMT_UPDATE_FOLDER_APPEND,
			  "UPDATE folders SET uidnext = ?1 + 1,"
			  " highest_modseq = ?2 WHERE id = ?3;");
	sqlite3_bind_int64(stmt, 1, uid);
	sqlite3_bind_int64(stmt, 2, (sqlite3_int64)modseq);
	sqlite3_bind_int64(stmt, 3, folder_id);
	if (store_step_done(stmt) < 0 ||
	    store_journal(mbox, folder_id, uid, modseq, STORE_CHANGE_APPEND) <
		    0) {
		err = store_db_error(mbox, "append", error_r);
		goto out;
	}
	if (uid_r != NULL)
		*uid_r = uid;
out:
	free(cuts);
	free(kw);
	free(sort_subject);
	free(sort_from);
	free(sort_to);
	free(sort_cc);
	sp_buf_deinit(&rest);
	sp_buf_deinit(&addresses);
	sp_buf_deinit(&zrest);
	sp_buf_deinit(&ztext);
	mime_info_destroy(&info);
	return err;
}

enum store_error
store_append(struct store_mailbox *mbox, int64_t folder_id, const void *raw,
	     size_t len, uint32_t flags, const char *keywords,
	     time_t internal_date, uint32_t *uid_r, const char **error_r)
{
	enum store_error err;
	const char *dberr;

	if (db_begin_durable(mbox->db, &dberr) < 0) {
		store_set_error(error_r, "%s", dberr);
		return STORE_ERR_TEMP;
	}
	err = store_append_locked(mbox, folder_id, raw, len, flags, keywords,
				  internal_date, uid_r, error_r);
	if (err == STORE_OK && db_commit(mbox->db, &dberr) < 0) {
		store_set_error(error_r, "%s", dberr);
		err = STORE_ERR_TEMP;
	}
	if (err != STORE_OK)
		db_rollback(mbox->db);
	return err;
}

/* ---- Fetch ---- */

static void
store_messages_free_one(struct store_message *m)
{
	free(m->keywords);
	free(m->envelope);
	free(m->body);
	free(m->bodystructure);
}

void
store_messages_free(struct store_message **messages, size_t count)
{
	if (*messages == NULL)
		return;
	for (size_t i = 0; i < count; i++)
		store_messages_free_one(&(*messages)[i]);
	free(*messages);
	*messages = NULL;
}

static char *
store_column_strdup(sqlite3_stmt *stmt, int col)
{
	const char *s = (const char *)sqlite3_column_text(stmt, col);

	return s != NULL ? xstrdup(s) : NULL;
}

#define STORE_MESSAGE_COLUMNS                                                \
	"id, uid, modseq, flags, keywords, size, internal_date, envelope,"   \
	" body, bodystructure"

static void
store_message_from_row(sqlite3_stmt *stmt, int fields,
		       struct store_message *m)
{
	memset(m, 0, sizeof(*m));
	m->id = sqlite3_column_int64(stmt, 0);
	m->uid = (uint32_t)sqlite3_column_int64(stmt, 1);
	m->modseq = (uint64_t)sqlite3_column_int64(stmt, 2);
	m->flags = (uint32_t)sqlite3_column_int(stmt, 3);
	m->keywords = store_column_strdup(stmt, 4);
	if (m->keywords == NULL)
		m->keywords = xstrdup("");
	m->size = (uint64_t)sqlite3_column_int64(stmt, 5);
	m->internal_date =
		store_parse_iso8601((const char *)sqlite3_column_text(stmt, 6));
	if ((fields & STORE_FETCH_ENVELOPE) != 0)
		m->envelope = store_column_strdup(stmt, 7);
	if ((fields & STORE_FETCH_BODY) != 0)
		m->body = store_column_strdup(stmt, 8);
	if ((fields & STORE_FETCH_BODYSTRUCTURE) != 0)
		m->bodystructure = store_column_strdup(stmt, 9);
}

/* Runs a SELECT of STORE_MESSAGE_COLUMNS bound to (folder, first, last) for
 * each range and collects the rows. */
static enum store_error
store_collect_messages(struct store_mailbox *mbox, const char *sql,
		       int64_t folder_id, const struct store_uidset *uids,
		       int fields, struct store_message **messages_r,
		       size_t *count_r, const char **error_r)
{
	struct store_uid_range *ranges;
	struct store_message *msgs = NULL;
	size_t nranges, count = 0, cap = 0;
	sqlite3_stmt *stmt = db_prepare(mbox->db, sql);
	int rc = SQLITE_DONE;

	ranges = store_uidset_normalize(uids, &nranges);
	for (size_t r = 0; r < nranges && rc == SQLITE_DONE; r++) {
		sqlite3_reset(stmt);
		sqlite3_bind_int64(stmt, 1, folder_id);
		sqlite3_bind_int64(stmt, 2, ranges[r].first);
		sqlite3_bind_int64(stmt, 3, ranges[r].last);
		while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
			if (count == cap) {
				cap = cap == 0 ? 64 : cap * 2;
				msgs = xrealloc(msgs, cap * sizeof(*msgs));
			}
			store_message_from_row(stmt, fields, &msgs[count++]);
		}
	}
	sqlite3_finalize(stmt);
	free(ranges);
	if (rc != SQLITE_DONE) {
		store_messages_free(&msgs, count);
		return store_db_error(mbox, "fetch", error_r);
	}
	*messages_r = msgs;
	*count_r = count;
	return STORE_OK;
}

enum store_error
store_fetch(struct store_mailbox *mbox, int64_t folder_id,
	    const struct store_uidset *uids, int fields,
	    struct store_message **messages_r, size_t *count_r,
	    const char **error_r)
{
	*messages_r = NULL;
	*count_r = 0;
	return store_collect_messages(
		mbox,
		"SELECT " STORE_MESSAGE_COLUMNS " FROM messages WHERE"
		" folder_id = ?1 AND uid BETWEEN ?2 AND ?3 ORDER BY uid;",
		folder_id, uids, fields, messages_r, count_r, error_r);
}

enum store_error
store_fetch_sizes(struct store_mailbox *mbox, int64_t folder_id,
		  struct store_uid_size **sizes_r, size_t *count_r,
		  const char **error_r)
{
	/* Two columns that come before the blobs in the row: only the
	 * row's first page is read. */
	sqlite3_stmt *stmt = db_prepare(mbox->db,
					"SELECT uid, size FROM messages WHERE"
					" folder_id = ? ORDER BY uid;");
	struct store_uid_size *sizes = NULL;
	size_t count = 0, cap = 0;
	int rc;

	*sizes_r = NULL;
	*count_r = 0;
	sqlite3_bind_int64(stmt, 1, folder_id);
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		if (count == cap) {
			cap = cap == 0 ? 64 : cap * 2;
			sizes = xrealloc(sizes, cap * sizeof(*sizes));
		}
		sizes[count].uid = (uint32_t)sqlite3_column_int64(stmt, 0);
		sizes[count].size = (uint64_t)sqlite3_column_int64(stmt, 1);
		count++;
	}
	if (rc != SQLITE_DONE) {
		enum store_error err =
			store_db_error(mbox, "fetch sizes", error_r);

		sqlite3_finalize(stmt);
		free(sizes);
		return err;
	}
	sqlite3_finalize(stmt);
	*sizes_r = sizes;
	*count_r = count;
	return STORE_OK;
}

enum store_error
store_raw_by_id(struct store_mailbox *mbox, int64_t message_id,
		struct sp_buf *out, const char **error_r)
{
	sqlite3_stmt *stmt, *parts;
	struct sp_buf rest;
	size_t rest_pos = 0, pos;
	int rc;

	stmt = store_stmt(mbox, STORE_STMT_GET_RAW,
			  "SELECT header, rest FROM message_content WHERE id = ?;");
	sqlite3_bind_int64(stmt, 1, message_id);
	rc = sqlite3_step(stmt);
	if (rc != SQLITE_ROW) {
		sqlite3_reset(stmt);
		if (rc == SQLITE_DONE) {
			store_set_error(error_r, "no such message");
			return STORE_ERR_NOTFOUND;
		}
		return store_db_error(mbox, "fetch", error_r);
	}
	pos = (size_t)sqlite3_column_bytes(stmt, 0);
	sp_buf_append(out, sqlite3_column_blob(stmt, 0), pos);
	sp_buf_init(&rest);
	if (store_inflate(sqlite3_column_blob(stmt, 1),
			  (size_t)sqlite3_column_bytes(stmt, 1), &rest) < 0) {
		sqlite3_reset(stmt);
		sp_buf_deinit(&rest);
		store_set_error(error_r, "message body is damaged");
		return STORE_ERR_TEMP;
	}
	sqlite3_reset(stmt);

	parts = store_stmt(mbox, STORE_STMT_GET_PARTS,
			   "SELECT p.offset, a.content FROM message_parts p"
			   " JOIN attachments a ON a.id = p.attachment_id"
			   " WHERE p.message_id = ? ORDER BY p.offset;");
	sqlite3_bind_int64(parts, 1, message_id);
	while ((rc = sqlite3_step(parts)) == SQLITE_ROW) {
		size_t offset = (size_t)sqlite3_column_int64(parts, 0);
		size_t gap = offset - pos;

		if (offset < pos || rest_pos + gap > rest.len)
			break;
		sp_buf_append(out, rest.data + rest_pos, gap);
		rest_pos += gap;
		sp_buf_append(out, sqlite3_column_blob(parts, 1),
			      (size_t)sqlite3_column_bytes(parts, 1));
		pos = offset + (size_t)sqlite3_column_bytes(parts, 1);
	}
	sqlite3_reset(parts);
	sp_buf_append(out, rest.data + rest_pos, rest.len - rest_pos);
	explicit_bzero(rest.data, rest.cap);
	sp_buf_deinit(&rest);
	if (rc != SQLITE_DONE) {
		store_set_error(error_r, "message parts are damaged");
		return STORE_ERR_TEMP;
	}
	return STORE_OK;
}

enum store_error
store_fetch_raw(struct store_mailbox *mbox, int64_t folder_id, uint32_t uid,
		struct sp_buf *out, const char **error_r)
{
	sqlite3_stmt *stmt = db_prepare(
		mbox->db,
		"SELECT id FROM messages WHERE folder_id = ? AND uid = ?;");
	enum store_error err;
	int64_t id = 0;
	int rc;

	sqlite3_bind_int64(stmt, 1, folder_id);
	sqlite3_bind_int64(stmt, 2, uid);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW)
		id = sqlite3_column_int64(stmt, 0);
	sqlite3_finalize(stmt);
	if (rc == SQLITE_DONE) {
		store_set_error(error_r, "no such message");
		return STORE_ERR_NOTFOUND;
	}
	if (rc != SQLITE_ROW)
		return store_db_error(mbox, "fetch", error_r);
	/* Header and parts come from one snapshot (the caller's transaction
	 * when it has one). */
	if (!sqlite3_get_autocommit(mbox->db))
		return store_raw_by_id(mbox, id, out, error_r);
	if (db_exec(mbox->db, "BEGIN;", NULL) < 0)
		return store_db_error(mbox, "fetch", error_r);
	err = store_raw_by_id(mbox, id, out, error_r);
	(void)db_exec(mbox->db, "COMMIT;", NULL);
	return err;
}

/* ---- Flags ---- */

static uint32_t
store_flags_apply(uint32_t cur, enum store_flags_op op, uint32_t flags)
{
	switch (op) {
	case STORE_FLAGS_SET:
		return flags & STORE_FLAG_ALL;
	case STORE_FLAGS_ADD:
		return (cur | flags) & STORE_FLAG_ALL;
	case STORE_FLAGS_REMOVE:
		return cur & ~flags & STORE_FLAG_ALL;
	}
	return cur;
}

static void
store_u32_push(uint32_t **arr, size_t *count, size_t *cap, uint32_t v)
{
	if (*count == *cap) {
		*cap = *cap == 0 ? 16 : *cap * 2;
		*arr = xrealloc(*arr, *cap * sizeof(**arr));
	}
	(*arr)[(*count)++] = v;
}

enum store_error
store_flags_update(struct store_mailbox *mbox, int64_t folder_id,
		   const struct store_uidset *uids, enum store_flags_op op,
		   uint32_t flags, const char *keywords,
		   uint64_t unchangedsince, struct store_message **changed_r,
		   size_t *changed_count_r, uint32_t **failed_r,
		   size_t *failed_count_r, const char **error_r)
{
	struct store_message *msgs = NULL;
	uint32_t *failed = NULL;
	size_t count = 0, nfailed = 0, failed_cap = 0, nkept = 0;
	uint64_t modseq = 0;
	sqlite3_stmt *upd = NULL;
	enum store_error err;
	const char *dberr;

	if (db_begin_durable(mbox->db, &dberr) < 0) {
		store_set_error(error_r, "%s", dberr);
		return STORE_ERR_TEMP;
	}
	err = store_fetch(mbox, folder_id, uids, 0, &msgs, &count, error_r);
	if (err != STORE_OK)
		goto out;
	upd = db_prepare(mbox->db, "UPDATE messages SET flags = ?, keywords ="
				   " ?, modseq = ? WHERE id = ?;");
	for (size_t i = 0; i < count && err == STORE_OK; i++) {
		struct store_message *m = &msgs[i];
		uint32_t nflags = store_flags_apply(m->flags, op, flags);
		char *nkw;

		if (unchangedsince > 0 && m->modseq > unchangedsince) {
			store_u32_push(&failed, &nfailed, &failed_cap, m->uid);
			m->id = -1; /* left out of *changed_r below */
			continue;
		}
		nkw = keywords != NULL || op == STORE_FLAGS_SET
			      ? store_keywords_apply(m->keywords, op, keywords)
			      : xstrdup(m->keywords);
		if (nflags != m->flags || strcmp(nkw, m->keywords) != 0) {
			if (modseq == 0)
				modseq = store_next_modseq(mbox);
			sqlite3_reset(upd);
			sqlite3_bind_int(upd, 1, (int)nflags);
			sqlite3_bind_text(upd, 2, nkw, -1, SQLITE_TRANSIENT);
			sqlite3_bind_int64(upd, 3, (sqlite3_int64)modseq);
			sqlite3_bind_int64(upd, 4, m->id);
			if (sqlite3_step(upd) != SQLITE_DONE ||
			    store_journal(mbox, folder_id, m->uid, modseq,
					  STORE_CHANGE_FLAGS) < 0) {
				free(nkw);
				err = store_db_error(mbox, "store", error_r);
				break;
			}
			m->flags = nflags;
			m->modseq = modseq;
		}
		free(m->keywords);
		m->keywords = nkw;
	}
	if (err != STORE_OK)
		goto out;
	for (size_t i = 0; i < count; i++) {
		if (msgs[i].id == -1)
			store_messages_free_one(&msgs[i]);
		else
			msgs[nkept++] = msgs[i];
	}
	count = nkept;
	if (modseq != 0 && store_folder_touch(mbox, folder_id, modseq) < 0)
		err = store_db_error(mbox, "store", error_r);
out:
	sqlite3_finalize(upd);
	if (err == STORE_OK && db_commit(mbox->db, &dberr) < 0) {
		store_set_error(error_r, "%s", dberr);
		err = STORE_ERR_TEMP;
	}
	if (err != STORE_OK) {
		db_rollback(mbox->db);
		store_messages_free(&msgs, count);
		free(failed);
		failed = NULL;
		nfailed = count = 0;
	}
	if (changed_r != NULL) {
		*changed_r = msgs;
		*changed_count_r = count;
	} else {
		store_messages_free(&msgs, count);
	}
	if (failed_r != NULL) {
		*failed_r = failed;
		*failed_count_r = nfailed;
	} else {
		free(failed);
	}
	return err;
}

/* ---- Expunge ---- */

/* Deletes message rows by id and journals their expunge with `modseq`. */
static int
store_delete_messages(struct store_mailbox *mbox, int64_t folder_id,
		      const struct store_message *msgs, size_t count,
		      uint64_t modseq)
{
	sqlite3_stmt *del =
		db_prepare(mbox->db, "DELETE FROM messages WHERE id = ?;");
	int ret = 0;

	for (size_t i = 0; i < count && ret == 0; i++) {
		sqlite3_reset(del);
		sqlite3_bind_int64(del, 1, msgs[i].id);
		if (sqlite3_step(del) != SQLITE_DONE ||
		    store_journal(mbox, folder_id, msgs[i].uid, modseq,
				  STORE_CHANGE_EXPUNGE) < 0)
			ret = -1;
	}
	sqlite3_finalize(del);
	if (ret == 0 && count > 0 &&
	    store_folder_touch(mbox, folder_id, modseq) < 0)
		ret = -1;
	return ret;
}

enum store_error
store_expunge(struct store_mailbox *mbox, int64_t folder_id,
	      const struct store_uidset *uids, uint32_t **expunged_r,
	      size_t *count_r, const char **error_r)
{
	struct store_message *msgs = NULL;
	size_t count = 0;
	enum store_error err;
	const char *dberr;

	if (expunged_r != NULL) {
		*expunged_r = NULL;
		*count_r = 0;
	}
	if (db_begin_durable(mbox->db, &dberr) < 0) {
		store_set_error(error_r, "%s", dberr);
		return STORE_ERR_TEMP;
	}
	err = store_collect_messages(
		mbox,
		"SELECT " STORE_MESSAGE_COLUMNS " FROM messages WHERE"
		" folder_id = ?1 AND uid BETWEEN ?2 AND ?3 AND (flags & 8) != 0"
		" ORDER BY uid;",
		folder_id, uids, 0, &msgs, &count, error_r);
	if (err == STORE_OK && count > 0 &&
	    store_delete_messages(mbox, folder_id, msgs, count,
				  store_next_modseq(mbox)) < 0)
		err = store_db_error(mbox, "expunge", error_r);
	if (err == STORE_OK && db_commit(mbox->db, &dberr) < 0) {
		store_set_error(error_r, "%s", dberr);
		err = STORE_ERR_TEMP;
	}
	if (err != STORE_OK) {
		db_rollback(mbox->db);
	} else if (expunged_r != NULL) {
		*expunged_r = xmalloc((count + 1) * sizeof(uint32_t));
		for (size_t i = 0; i < count; i++)
			(*expunged_r)[i] = msgs[i].uid;
		*count_r = count;
	}
	store_messages_free(&msgs, count);
	return err;
}

/* ---- Copy and move ---- */

void
store_uid_map_clear(struct store_uid_map *map)
{
	free(map->src_uids);
	free(map->dst_uids);
	memset(map, 0, sizeof(*map));
}

enum store_error
store_copy(struct store_mailbox *mbox, int64_t src_folder_id,
	   const struct store_uidset *uids, int64_t dst_folder_id, bool move,
	   struct store_uid_map *map_r, const char **error_r)
{
	struct store_message *msgs = NULL;
	size_t count = 0;
	sqlite3_stmt *stmt, *ins = NULL, *content = NULL, *parts = NULL,
		     *refs = NULL, *fts = NULL;
	uint32_t uidnext = 0, uidvalidity = 0;
	uint64_t modseq = 0, total = 0;
	enum store_error err;
	const char *dberr;
	uint32_t *dst = NULL;

	if (map_r != NULL)
		memset(map_r, 0, sizeof(*map_r));
	if (db_begin_durable(mbox->db, &dberr) < 0) {
		store_set_error(error_r, "%s", dberr);
		return STORE_ERR_TEMP;
	}
	stmt = db_prepare(mbox->db, "SELECT uidnext, uidvalidity FROM folders"
				    " WHERE id = ?;");
	sqlite3_bind_int64(stmt, 1, dst_folder_id);
	if (sqlite3_step(stmt) == SQLITE_ROW) {
		uidnext = (uint32_t)sqlite3_column_int64(stmt, 0);
		uidvalidity = (uint32_t)sqlite3_column_int64(stmt, 1);
	}
	sqlite3_finalize(stmt);
	if (uidnext == 0) {
		store_set_error(error_r, "no such folder");
		err = STORE_ERR_NOTFOUND;
		goto out;
	}
	err = store_fetch(mbox, src_folder_id, uids, 0, &msgs, &count,
			  error_r);
	if (err != STORE_OK || count == 0)
		goto out;
	for (size_t i = 0; i < count; i++)
		total += msgs[i].size;
	if (!move && (err = store_quota_check(mbox, total, error_r)) !=
			     STORE_OK)
		goto out;
	if ((uint64_t)uidnext + count >= UINT32_MAX) {
		store_set_error(error_r, "folder out of UIDs");
		err = STORE_ERR_INVALID;
		goto out;
	}
	modseq = store_next_modseq(mbox);
	dst = xmalloc(count * sizeof(*dst));
	ins = db_prepare(
		mbox->db,
		"INSERT INTO messages(folder_id, uid, modseq, flags, keywords,"
		" internal_date, size, sent_date, subject, from_addr, to_addr,"
		" cc_addr, bcc_addr, reply_to, sender, message_id, in_reply_to,"
		" refs, sort_subject, sort_from, sort_to, sort_cc, envelope,"
		" body, bodystructure) SELECT ?1, ?2, ?3,"
		" flags, keywords, internal_date, size, sent_date, subject,"
		" from_addr, to_addr, cc_addr, bcc_addr, reply_to, sender,"
		" message_id, in_reply_to, refs, sort_subject, sort_from,"
		" sort_to, sort_cc, envelope, body, bodystructure"
		" FROM messages WHERE id = ?4;");
	content = db_prepare(mbox->db,
			     "INSERT INTO message_content(id, header, rest,"
			     " text) SELECT ?1, header, rest, text FROM"
			     " message_content WHERE id = ?2;");
	parts = db_prepare(mbox->db,
			   "INSERT INTO message_parts(message_id, offset,"
			   " attachment_id, length) SELECT ?1, offset,"
			   " attachment_id, length FROM message_parts WHERE"
			   " message_id = ?2;");
	refs = db_prepare(mbox->db,
			  "UPDATE attachments SET refcount = refcount +"
			  " (SELECT count(*) FROM message_parts p WHERE"
			  " p.message_id = ?1 AND p.attachment_id ="
			  " attachments.id) WHERE id IN (SELECT attachment_id"
			  " FROM message_parts WHERE message_id = ?1);");
	/* The index is contentless: its columns are rebuilt as append
	 * wrote them. */
	fts = db_prepare(mbox->db,
			 "INSERT INTO fts(rowid, subject, addresses, text)"
			 " SELECT ?1, coalesce(subject, ''), concat_ws(char(10),"
			 " from_addr, to_addr, cc_addr, bcc_addr, reply_to, sender),"
			 " sp_inflate(c.text) FROM messages m JOIN message_content c"
			 " ON c.id = m.id WHERE m.id = ?2;");
	for (size_t i = 0; i < count; i++) {
		int64_t new_id;

		dst[i] = uidnext + (uint32_t)i;
		sqlite3_reset(ins);
		sqlite3_bind_int64(ins, 1, dst_folder_id);
		sqlite3_bind_int64(ins, 2, dst[i]);
		sqlite3_bind_int64(ins, 3, (sqlite3_int64)modseq);
		sqlite3_bind_int64(ins, 4, msgs[i].id);
		if (sqlite3_step(ins) != SQLITE_DONE)
			goto db_fail;
		new_id = sqlite3_last_insert_rowid(mbox->db);
		sqlite3_reset(content);
		sqlite3_bind_int64(content, 1, new_id);
		sqlite3_bind_int64(content, 2, msgs[i].id);
		if (sqlite3_step(content) != SQLITE_DONE)
			goto db_fail;
		sqlite3_reset(parts);
		sqlite3_bind_int64(parts, 1, new_id);
		sqlite3_bind_int64(parts, 2, msgs[i].id);
		sqlite3_reset(refs);
		sqlite3_bind_int64(refs, 1, new_id);
		sqlite3_reset(fts);
		sqlite3_bind_int64(fts, 1, new_id);
		sqlite3_bind_int64(fts, 2, msgs[i].id);
		if (sqlite3_step(parts) != SQLITE_DONE ||
		    sqlite3_step(refs) != SQLITE_DONE ||
		    sqlite3_step(fts) != SQLITE_DONE ||
		    store_journal(mbox, dst_folder_id, dst[i], modseq,
				  STORE_CHANGE_APPEND) < 0)
			goto db_fail;
	}
	stmt = db_prepare(mbox->db, "UPDATE folders SET uidnext = ?,"
				    " highest_modseq = ? WHERE id = ?;");
	sqlite3_bind_int64(stmt, 1, (sqlite3_int64)uidnext + (int64_t)count);
	sqlite3_bind_int64(stmt, 2, (sqlite3_int64)modseq);
	sqlite3_bind_int64(stmt, 3, dst_folder_id);
	if (sqlite3_step(stmt) != SQLITE_DONE) {
		sqlite3_finalize(stmt);
		goto db_fail;
	}
	sqlite3_finalize(stmt);
	if (move && store_delete_messages(mbox, src_folder_id, msgs, count,
					  modseq) < 0)
		goto db_fail;
	goto out;
db_fail:
	err = store_db_error(mbox, move ? "move" : "copy", error_r);
out:
	sqlite3_finalize(ins);
	sqlite3_finalize(content);
	sqlite3_finalize(parts);
	sqlite3_finalize(refs);
	sqlite3_finalize(fts);
	if (err == STORE_OK && db_commit(mbox->db, &dberr) < 0) {
		store_set_error(error_r, "%s", dberr);
		err = STORE_ERR_TEMP;
	}
	if (err != STORE_OK) {
		db_rollback(mbox->db);
	} else if (map_r != NULL) {
		map_r->dst_uidvalidity = uidvalidity;
		map_r->count = count;
		map_r->src_uids = xmalloc((count + 1) * sizeof(uint32_t));
		for (size_t i = 0; i < count; i++)
			map_r->src_uids[i] = msgs[i].uid;
		map_r->dst_uids = dst;
		dst = NULL;
	}
	free(dst);
	store_messages_free(&msgs, count);
	return err;
}

/* ---- Changes ---- */

enum store_error
store_changes_since(struct store_mailbox *mbox, int64_t folder_id,
		    uint64_t since, struct store_change **changes_r,
		    size_t *count_r, const char **error_r)
{
	sqlite3_stmt *stmt = db_prepare(
		mbox->db, "SELECT modseq, uid, kind FROM changes WHERE"
			  " folder_id = ? AND modseq > ? ORDER BY modseq, uid;");
	struct store_change *changes = NULL;
	size_t count = 0, cap = 0;
	int rc;

	sqlite3_bind_int64(stmt, 1, folder_id);
	sqlite3_bind_int64(stmt, 2, (sqlite3_int64)since);
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		if (count == cap) {
			cap = cap == 0 ? 16 : cap * 2;
			changes = xrealloc(changes, cap * sizeof(*changes));
		}
		changes[count].modseq = (uint64_t)sqlite3_column_int64(stmt, 0);
		changes[count].uid = (uint32_t)sqlite3_column_int64(stmt, 1);
		changes[count].kind =
			(enum store_change_kind)sqlite3_column_int(stmt, 2);
		count++;
	}
	sqlite3_finalize(stmt);
	if (rc != SQLITE_DONE) {
		free(changes);
		return store_db_error(mbox, "changes", error_r);
	}
	*changes_r = changes;
	*count_r = count;
	return STORE_OK;
}
