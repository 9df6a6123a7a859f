/* store: folders -- names, hierarchy, SPECIAL-USE, status, \Recent. */
#include "store-private.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *
store_special_use_name(enum store_special_use use)
{
	switch (use) {
	case STORE_SPECIAL_SENT:
		return "\\Sent";
	case STORE_SPECIAL_DRAFTS:
		return "\\Drafts";
	case STORE_SPECIAL_TRASH:
		return "\\Trash";
	case STORE_SPECIAL_JUNK:
		return "\\Junk";
	case STORE_SPECIAL_ARCHIVE:
		return "\\Archive";
	case STORE_SPECIAL_NONE:
	case STORE_SPECIAL_INBOX:
		break;
	}
	return NULL;
}

char *
store_folder_name_normalize(const char *name)
{
	size_t len = strlen(name);
	char *out;

	while (len > 0 && name[len - 1] == '/')
		len--;
	if (len == 0 || name[0] == '/' || len > 1000)
		return NULL;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];

		if (c < 0x20 || c == 0x7f || c == '*' || c == '%')
			return NULL;
		if (c == '/' && name[i + 1] == '/')
			return NULL;
	}
	out = xstrndup(name, len);
	/* INBOX is case-insensitive, also as the first level of a name. */
	if (strncasecmp(out, "INBOX", 5) == 0 &&
	    (out[5] == '\0' || out[5] == '/'))
		memcpy(out, "INBOX", 5);
	return out;
}

static void
store_folder_from_row(sqlite3_stmt *stmt, struct store_folder *f)
{
	f->id = sqlite3_column_int64(stmt, 0);
	f->name = xstrdup((const char *)sqlite3_column_text(stmt, 1));
	f->special_use = (enum store_special_use)sqlite3_column_int(stmt, 2);
	f->subscribed = sqlite3_column_int(stmt, 3) != 0;
	f->uidvalidity = (uint32_t)sqlite3_column_int64(stmt, 4);
	f->uidnext = (uint32_t)sqlite3_column_int64(stmt, 5);
	f->has_children = sqlite3_column_int(stmt, 6) != 0;
}

#define STORE_FOLDER_COLUMNS                                                 \
	"f.id, f.name, f.special_use, f.subscribed, f.uidvalidity,"          \
	" f.uidnext, EXISTS(SELECT 1 FROM folders c WHERE c.name >"          \
	" f.name || '/' AND c.name < f.name || '0')"

enum store_error
store_folder_list(struct store_mailbox *mbox, struct store_folder **folders_r,
		  size_t *count_r, const char **error_r)
{
	sqlite3_stmt *stmt = db_prepare(
		mbox->db, "SELECT " STORE_FOLDER_COLUMNS " FROM folders f"
			  " ORDER BY f.name != 'INBOX', f.name;");
	struct store_folder *folders = NULL;
	size_t count = 0, cap = 0;
	int rc;

	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		if (count == cap) {
			cap = cap == 0 ? 16 : cap * 2;
			folders = xrealloc(folders, cap * sizeof(*folders));
		}
		store_folder_from_row(stmt, &folders[count++]);
	}
	sqlite3_finalize(stmt);
	if (rc != SQLITE_DONE) {
		store_folder_list_free(&folders, count);
		return store_db_error(mbox, "folder list", error_r);
	}
	*folders_r = folders;
	*count_r = count;
	return STORE_OK;
}

void
store_folder_list_free(struct store_folder **folders, size_t count)
{
	if (*folders == NULL)
		return;
	for (size_t i = 0; i < count; i++)
		free((*folders)[i].name);
	free(*folders);
	*folders = NULL;
}

void
store_folder_free(struct store_folder **folder)
{
	if (*folder == NULL)
		return;
	free((*folder)->name);
	free(*folder);
	*folder = NULL;
}

enum store_error
store_folder_get(struct store_mailbox *mbox, const char *name,
		 struct store_folder **folder_r, const char **error_r)
{
	char *norm = store_folder_name_normalize(name);
	sqlite3_stmt *stmt;
	enum store_error err;
	int rc;

	if (folder_r != NULL)
		*folder_r = NULL;
	if (norm == NULL) {
		store_set_error(error_r, "invalid folder name");
		return STORE_ERR_INVALID;
	}
	stmt = db_prepare(mbox->db, "SELECT " STORE_FOLDER_COLUMNS
				    " FROM folders f WHERE f.name = ?;");
	sqlite3_bind_text(stmt, 1, norm, -1, SQLITE_TRANSIENT);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		if (folder_r != NULL) {
			*folder_r = xcalloc(1, sizeof(**folder_r));
			store_folder_from_row(stmt, *folder_r);
		}
		err = STORE_OK;
	} else if (rc == SQLITE_DONE) {
		store_set_error(error_r, "no such folder");
		err = STORE_ERR_NOTFOUND;
	} else {
		err = store_db_error(mbox, "folder", error_r);
	}
	sqlite3_finalize(stmt);
	free(norm);
	return err;
}

static uint32_t
store_take_uidvalidity(struct store_mailbox *mbox)
{
	sqlite3_stmt *stmt = db_prepare(
		mbox->db, "UPDATE meta SET value = CASE WHEN value >= 4294967295"
			  " THEN 1 ELSE value + 1 END"
			  " WHERE key = 'next_uidvalidity' RETURNING value - 1;");
	uint32_t v = 1;

	if (sqlite3_step(stmt) == SQLITE_ROW)
		v = (uint32_t)sqlite3_column_int64(stmt, 0);
	sqlite3_finalize(stmt);
	return v == 0 ? 1 : v;
}

/* Inserts one folder when missing; 1 created, 0 existed, -1 error. */
static int
store_folder_insert(struct store_mailbox *mbox, const char *name,
		    enum store_special_use use)
{
	sqlite3_stmt *stmt = db_prepare(
		mbox->db, "INSERT INTO folders(name, special_use, uidvalidity)"
			  " VALUES(?, ?, ?) ON CONFLICT(name) DO NOTHING;");
	int rc;

	sqlite3_bind_text(stmt, 1, name, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int(stmt, 2, (int)use);
	sqlite3_bind_int64(stmt, 3, store_take_uidvalidity(mbox));
	rc = sqlite3_step(stmt);
	sqlite3_finalize(stmt);
	if (rc != SQLITE_DONE)
		return -1;
	return sqlite3_changes(mbox->db) > 0 ? 1 : 0;
}

enum store_error
store_folder_create(struct store_mailbox *mbox, const char *name,
		    enum store_special_use special_use, const char **error_r)
{
	char *norm = store_folder_name_normalize(name);
	const char *dberr;
	enum store_error err = STORE_OK;
	int rc;

	if (norm == NULL) {
		store_set_error(error_r, "invalid folder name");
		return STORE_ERR_INVALID;
	}
	if (db_begin_durable(mbox->db, &dberr) < 0) {
		free(norm);
		store_set_error(error_r, "%s", dberr);
		return STORE_ERR_TEMP;
	}
	/* Missing parents first, as RFC 3501 CREATE asks. */
	for (char *p = strchr(norm, '/'); p != NULL; p = strchr(p + 1, '/')) {
		*p = '\0';
		rc = store_folder_insert(mbox, norm, STORE_SPECIAL_NONE);
		*p = '/';
		if (rc < 0) {
			err = store_db_error(mbox, "create", error_r);
			goto out;
		}
	}
	rc = store_folder_insert(mbox, norm, special_use);
	if (rc < 0) {
		err = store_db_error(mbox, "create", error_r);
	} else if (rc == 0) {
		store_set_error(error_r, "folder exists");
		err = STORE_ERR_EXISTS;
	}
out:
	if (err == STORE_OK && db_commit(mbox->db, &dberr) < 0) {
		store_set_error(error_r, "%s", dberr);
		err = STORE_ERR_TEMP;
	}
	if (err != STORE_OK)
		db_rollback(mbox->db);
	free(norm);
	return err;
}

static enum store_error
store_folder_id(struct store_mailbox *mbox, const char *norm, int64_t *id_r,
		const char **error_r)
{
	sqlite3_stmt *stmt =
		db_prepare(mbox->db, "SELECT id FROM folders WHERE name = ?;");
	int rc;

	sqlite3_bind_text(stmt, 1, norm, -1, SQLITE_TRANSIENT);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW)
		*id_r = sqlite3_column_int64(stmt, 0);
	sqlite3_finalize(stmt);
	if (rc == SQLITE_ROW)
		return STORE_OK;
	if (rc == SQLITE_DONE) {
		store_set_error(error_r, "no such folder");
		return STORE_ERR_NOTFOUND;
	}
	return store_db_error(mbox, "folder", error_r);
}

/* RENAME INBOX: the messages move to a new folder, INBOX stays. */
static enum store_error
store_rename_inbox(struct store_mailbox *mbox, const char *new_name,
		   const char **error_r)
{
	int64_t inbox, dst;
	struct store_uid_map map = {0};
	enum store_error err;
	const char *dberr;

	if ((err = store_folder_id(mbox, "INBOX", &inbox, error_r)) !=
	    STORE_OK)
		return err;
	err = store_folder_create(mbox, new_name, STORE_SPECIAL_NONE,
				  error_r);
	if (err != STORE_OK)
		return err;
	if ((err = store_folder_id(mbox, new_name, &dst, error_r)) != STORE_OK)
		return err;
	err = store_copy(mbox, inbox, NULL, dst, true, &map, error_r);
	store_uid_map_clear(&map);
	(void)dberr;
	return err;
}

enum store_error
store_folder_rename(struct store_mailbox *mbox, const char *old_name,
		    const char *new_name, const char **error_r)
{
	char *from = store_folder_name_normalize(old_name);
	char *to = store_folder_name_normalize(new_name);
	enum store_error err = STORE_OK;
	sqlite3_stmt *stmt;
	const char *dberr;
	int64_t id, other;
	size_t from_len;

	if (from == NULL || to == NULL) {
		store_set_error(error_r, "invalid folder name");
		err = STORE_ERR_INVALID;
		goto out_free;
	}
	from_len = strlen(from);
	if (strcmp(to, "INBOX") == 0 ||
	    (strncmp(to, from, from_len) == 0 && to[from_len] == '/')) {
		store_set_error(error_r, "cannot rename a folder into "
					 "itself or to INBOX");
		err = STORE_ERR_INVALID;
		goto out_free;
	}
	if (strcmp(from, to) == 0) {
		err = store_folder_id(mbox, to, &id, error_r);
		if (err == STORE_OK) {
			store_set_error(error_r, "folder exists");
			err = STORE_ERR_EXISTS;
		}
		goto out_free;
	}
	if (strcmp(from, "INBOX") == 0) {
		if (store_folder_id(mbox, to, &other, NULL) == STORE_OK) {
			store_set_error(error_r, "folder exists");
			err = STORE_ERR_EXISTS;
		} else {
			err = store_rename_inbox(mbox, to, error_r);
		}
		goto out_free;
	}
	if (db_begin_durable(mbox->db, &dberr) < 0) {
		store_set_error(error_r, "%s", dberr);
		err = STORE_ERR_TEMP;
		goto out_free;
	}
	if ((err = store_folder_id(mbox, from, &id, error_r)) != STORE_OK)
		goto out;
	if (store_folder_id(mbox, to, &other, NULL) == STORE_OK) {
		store_set_error(error_r, "folder exists");
		err = STORE_ERR_EXISTS;
		goto out;
	}
	/* The folder and everything below it, in one statement; a clash
	 * with an existing child name fails on UNIQUE. substr() counts
	 * characters of text, not bytes: cut after length(?2) characters
	 * (from_len would break UTF-8 names). */
	stmt = db_prepare(mbox->db,
			  "UPDATE folders SET name = ?1 || substr(name,"
			  " length(?2) + 1)"
			  " WHERE name = ?2 OR (name > ?2 || '/' AND"
			  " name < ?2 || '0');");
	sqlite3_bind_text(stmt, 1, to, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(stmt, 2, from, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(stmt) != SQLITE_DONE) {
		if (sqlite3_extended_errcode(mbox->db) ==
		    SQLITE_CONSTRAINT_UNIQUE) {
			store_set_error(error_r, "folder exists");
			err = STORE_ERR_EXISTS;
		} else {
			err = store_db_error(mbox, "rename", error_r);
		}
	}
	sqlite3_finalize(stmt);
	if (err != STORE_OK)
		goto out;
	/* Parents of the new name that do not exist yet. */
	for (char *p = strchr(to, '/'); p != NULL; p = strchr(p + 1, '/')) {
		*p = '\0';
		if (store_folder_insert(mbox, to, STORE_SPECIAL_NONE) < 0)
			err = store_db_error(mbox, "rename", error_r);
		*p = '/';
		if (err != STORE_OK)
			goto out;
	}
out:
	if (err == STORE_OK && db_commit(mbox->db, &dberr) < 0) {
		store_set_error(error_r, "%s", dberr);
		err = STORE_ERR_TEMP;
	}
	if (err != STORE_OK)
		db_rollback(mbox->db);
out_free:
	free(from);
	free(to);
	return err;
}

enum store_error
store_folder_delete(struct store_mailbox *mbox, const char *name,
		    const char **error_r)
{
	char *norm = store_folder_name_normalize(name);
	enum store_error err = STORE_OK;
	sqlite3_stmt *stmt;
	const char *dberr;
	int64_t id;

	if (norm == NULL || strcmp(norm, "INBOX") == 0) {
		store_set_error(error_r, norm == NULL ? "invalid folder name"
						      : "INBOX cannot be deleted");
		free(norm);
		return STORE_ERR_INVALID;
	}
	if (db_begin_durable(mbox->db, &dberr) < 0) {
		store_set_error(error_r, "%s", dberr);
		free(norm);
		return STORE_ERR_TEMP;
	}
	if ((err = store_folder_id(mbox, norm, &id, error_r)) != STORE_OK)
		goto out;
	stmt = db_prepare(mbox->db, "SELECT 1 FROM folders WHERE name > ?1 ||"
				    " '/' AND name < ?1 || '0' LIMIT 1;");
	sqlite3_bind_text(stmt, 1, norm, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(stmt) == SQLITE_ROW) {
		store_set_error(error_r, "folder has child folders");
		err = STORE_ERR_NOTEMPTY;
	}
	sqlite3_finalize(stmt);
	if (err != STORE_OK)
		goto out;
	/* Messages first: their trigger releases attachments and the index. */
	stmt = db_prepare(mbox->db, "DELETE FROM messages WHERE folder_id = ?1;"
				    "");
	sqlite3_bind_int64(stmt, 1, id);
	if (sqlite3_step(stmt) != SQLITE_DONE)
		err = store_db_error(mbox, "delete", error_r);
	sqlite3_finalize(stmt);
	if (err != STORE_OK)
		goto out;
	stmt = db_prepare(mbox->db, "DELETE FROM changes WHERE folder_id = ?1;");
	sqlite3_bind_int64(stmt, 1, id);
	if (sqlite3_step(stmt) != SQLITE_DONE)
		err = store_db_error(mbox, "delete", error_r);
	sqlite3_finalize(stmt);
	if (err != STORE_OK)
		goto out;
	stmt = db_prepare(mbox->db, "DELETE FROM folders WHERE id = ?1;");
	sqlite3_bind_int64(stmt, 1, id);
	if (sqlite3_step(stmt) != SQLITE_DONE)
		err = store_db_error(mbox, "delete", error_r);
	sqlite3_finalize(stmt);
out:
	if (err == STORE_OK && db_commit(mbox->db, &dberr) < 0) {
		store_set_error(error_r, "%s", dberr);
		err = STORE_ERR_TEMP;
	}
	if (err != STORE_OK)
		db_rollback(mbox->db);
	free(norm);
	return err;
}

enum store_error
store_folder_subscribe(struct store_mailbox *mbox, const char *name,
		       bool subscribed, const char **error_r)
{
	char *norm = store_folder_name_normalize(name);
	sqlite3_stmt *stmt;
	enum store_error err = STORE_OK;

	if (norm == NULL) {
		store_set_error(error_r, "invalid folder name");
		return STORE_ERR_INVALID;
	}
	stmt = db_prepare(mbox->db,
			  "UPDATE folders SET subscribed = ? WHERE name = ?;");
	sqlite3_bind_int(stmt, 1, subscribed ? 1 : 0);
	sqlite3_bind_text(stmt, 2, norm, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(stmt) != SQLITE_DONE) {
		err = store_db_error(mbox, "subscribe", error_r);
	} else if (sqlite3_changes(mbox->db) == 0) {
		store_set_error(error_r, "no such folder");
		err = STORE_ERR_NOTFOUND;
	}
	sqlite3_finalize(stmt);
	free(norm);
	return err;
}

enum store_error
store_folder_status(struct store_mailbox *mbox, int64_t folder_id,
		    struct store_folder_status *status_r,
		    const char **error_r)
{
	sqlite3_stmt *stmt = db_prepare(
		mbox->db,
		"SELECT f.uidnext, f.uidvalidity, f.highest_modseq,"
		" (SELECT count(*) FROM messages m WHERE m.folder_id = f.id),"
		" (SELECT count(*) FROM messages m WHERE m.folder_id = f.id"
		"  AND m.uid >= f.recent_uid),"
		" (SELECT count(*) FROM messages m WHERE m.folder_id = f.id"
		"  AND (m.flags & 1) = 0),"
		" (SELECT total(size) FROM messages m WHERE m.folder_id = f.id)"
		" FROM folders f WHERE f.id = ?;");
	enum store_error err = STORE_OK;
	int rc;

	sqlite3_bind_int64(stmt, 1, folder_id);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		status_r->uidnext = (uint32_t)sqlite3_column_int64(stmt, 0);
		status_r->uidvalidity = (uint32_t)sqlite3_column_int64(stmt, 1);
		status_r->highest_modseq =
			(uint64_t)sqlite3_column_int64(stmt, 2);
		status_r->messages = (uint32_t)sqlite3_column_int64(stmt, 3);
		status_r->recent = (uint32_t)sqlite3_column_int64(stmt, 4);
		status_r->unseen = (uint32_t)sqlite3_column_int64(stmt, 5);
		status_r->size = (uint64_t)sqlite3_column_double(stmt, 6);
	} else if (rc == SQLITE_DONE) {
		store_set_error(error_r, "no such folder");
		err = STORE_ERR_NOTFOUND;
	} else {
		err = store_db_error(mbox, "status", error_r);
	}
	sqlite3_finalize(stmt);
	return err;
}

static enum store_error
store_collect_uids(struct store_mailbox *mbox, sqlite3_stmt *stmt,
		   uint32_t **uids_r, size_t *count_r, const char **error_r)
{
	uint32_t *uids = NULL;
	size_t count = 0, cap = 0;
	int rc;

	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		if (count == cap) {
			cap = cap == 0 ? 64 : cap * 2;
			uids = xrealloc(uids, cap * sizeof(*uids));
		}
		uids[count++] = (uint32_t)sqlite3_column_int64(stmt, 0);
	}
	if (rc != SQLITE_DONE) {
		free(uids);
		return store_db_error(mbox, "uids", error_r);
	}
	*uids_r = uids;
	*count_r = count;
	return STORE_OK;
}

enum store_error
store_folder_uids(struct store_mailbox *mbox, int64_t folder_id,
		  uint32_t **uids_r, size_t *count_r, const char **error_r)
{
	sqlite3_stmt *stmt = db_prepare(
		mbox->db,
		"SELECT uid FROM messages WHERE folder_id = ? ORDER BY uid;");
	enum store_error err;

	sqlite3_bind_int64(stmt, 1, folder_id);
	err = store_collect_uids(mbox, stmt, uids_r, count_r, error_r);
	sqlite3_finalize(stmt);
	return err;
}

enum store_error
store_folder_take_recent(struct store_mailbox *mbox, int64_t folder_id,
			 uint32_t **uids_r, size_t *count_r,
			 const char **error_r)
{
	sqlite3_stmt *stmt;
	enum store_error err;
	const char *dberr;

	*uids_r = NULL;
	*count_r = 0;
	if (db_begin(mbox->db, &dberr) < 0) {
		store_set_error(error_r, "%s", dberr);
		return STORE_ERR_TEMP;
	}
	stmt = db_prepare(mbox->db,
			  "SELECT m.uid FROM messages m JOIN folders f ON"
			  " f.id = m.folder_id WHERE f.id = ? AND"
			  " m.uid >= f.recent_uid ORDER BY m.uid;");
	sqlite3_bind_int64(stmt, 1, folder_id);
	err = store_collect_uids(mbox, stmt, uids_r, count_r, error_r);
	sqlite3_finalize(stmt);
	if (err == STORE_OK) {
		stmt = db_prepare(mbox->db, "UPDATE folders SET recent_uid ="
					    " uidnext WHERE id = ?;");
		sqlite3_bind_int64(stmt, 1, folder_id);
		if (sqlite3_step(stmt) != SQLITE_DONE)
			err = store_db_error(mbox, "recent", error_r);
		sqlite3_finalize(stmt);
	}
	if (err == STORE_OK && db_commit(mbox->db, &dberr) < 0) {
		store_set_error(error_r, "%s", dberr);
		err = STORE_ERR_TEMP;
	}
	if (err != STORE_OK) {
		db_rollback(mbox->db);
		free(*uids_r);
		*uids_r = NULL;
		*count_r = 0;
	}
	return err;
}
