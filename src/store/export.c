/* store: export to mboxrd and EML, import from mbox and EML. */
#include "store-private.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* Plaintext copies of mail do not outlive their use in memory. */
static void
store_buf_wipe(struct sp_buf *buf)
{
	if (buf->data != NULL)
		explicit_bzero(buf->data, buf->cap);
	sp_buf_deinit(buf);
}

/* ---- mboxrd ---- */

/* The folder of a message in a whole-mailbox mbox: one line before the
 * message's own header, which import takes away again. */
#define STORE_FOLDER_HEADER "X-Sealpost-Folder:"
#define STORE_FOLDER_HEADER_LEN (sizeof(STORE_FOLDER_HEADER) - 1)

static bool
store_starts_with_folder_header(const char *raw, size_t len)
{
	return len >= STORE_FOLDER_HEADER_LEN &&
	       strncasecmp(raw, STORE_FOLDER_HEADER,
			   STORE_FOLDER_HEADER_LEN) == 0;
}

/* Writes one message as mboxrd: a "From " line with the internal date,
 * every line matching ^>*From  with one more '>', a newline added when the
 * message lacks a final one, then the blank separator line. With `folder`
 * (whole-mailbox export, a folder other than INBOX), or when the message
 * itself starts with the folder line (which import would otherwise take
 * for ours: quoting, as mboxrd does for "From "), one folder line comes
 * first, ended like the message's first line. */
static void
store_mbox_append(struct sp_buf *out, const char *raw, size_t len,
		  time_t internal_date, const char *folder,
		  const char *folder_name)
{
	struct tm tm;
	char date[64];
	size_t pos = 0;

	gmtime_r(&internal_date, &tm);
	strftime(date, sizeof(date), "%a %b %e %H:%M:%S %Y", &tm);
	sp_buf_printf(out, "From MAILER-DAEMON %s\n", date);
	if (folder != NULL || store_starts_with_folder_header(raw, len)) {
		const char *nl = memchr(raw, '\n', len);
		bool crlf = nl != NULL && nl > raw && nl[-1] == '\r';

		sp_buf_printf(out, "%s %s%s", STORE_FOLDER_HEADER,
			      folder != NULL ? folder : folder_name,
			      crlf ? "\r\n" : "\n");
	}
	while (pos < len) {
		const char *nl = memchr(raw + pos, '\n', len - pos);
		size_t end = nl != NULL ? (size_t)(nl - raw) + 1 : len;
		size_t q = pos;

		while (q < end && raw[q] == '>')
			q++;
		if (end - q >= 5 && memcmp(raw + q, "From ", 5) == 0)
			sp_buf_append(out, ">", 1);
		sp_buf_append(out, raw + pos, end - pos);
		pos = end;
	}
	if (len == 0 || raw[len - 1] != '\n')
		sp_buf_append(out, "\n", 1);
	sp_buf_append(out, "\n", 1);
}

static int
store_write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	const char *p = data;

	if (fd < 0)
		return -1;
	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			close(fd);
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	if (fsync(fd) < 0) {
		close(fd);
		return -1;
	}
	return close(fd);
}

/* A folder name as a relative directory: levels "." and ".." and empty
 * ones cannot escape the export directory. */
static char *
store_folder_dir_name(const char *folder)
{
	struct sp_buf buf;
	char *copy = xstrdup(folder), *save = NULL;

	sp_buf_init(&buf);
	for (char *w = strtok_r(copy, "/", &save); w != NULL;
	     w = strtok_r(NULL, "/", &save)) {
		if (buf.len > 0)
			sp_buf_append(&buf, "/", 1);
		if (strcmp(w, ".") == 0 || strcmp(w, "..") == 0)
			sp_buf_append_str(&buf, "_");
		else
			sp_buf_append_str(&buf, w);
	}
	free(copy);
	return sp_buf_steal(&buf, NULL);
}

static enum store_error
store_export_folder(struct store_mailbox *mbox, const struct store_folder *f,
		    enum store_format format, bool whole,
		    struct sp_buf *mbox_out, const char *dir, size_t *count,
		    const char **error_r)
{
	struct store_message *msgs = NULL;
	size_t n = 0;
	enum store_error err;
	struct sp_buf raw;

	err = store_fetch(mbox, f->id, NULL, 0, &msgs, &n, error_r);
	if (err != STORE_OK)
		return err;
	if (format == STORE_FORMAT_EML && fs_mkdir_p(dir, 0700) < 0) {
		store_messages_free(&msgs, n);
		store_set_error(error_r, "%s: %s", dir, strerror(errno));
		return STORE_ERR_TEMP;
	}
	sp_buf_init(&raw);
	for (size_t i = 0; i < n && err == STORE_OK; i++) {
		sp_buf_reset(&raw);
		err = store_raw_by_id(mbox, msgs[i].id, &raw, error_r);
		if (err != STORE_OK)
			break;
		if (format == STORE_FORMAT_MBOX) {
			store_mbox_append(
				mbox_out, raw.data, raw.len,
				msgs[i].internal_date,
				whole && strcmp(f->name, "INBOX") != 0
					? f->name
					: NULL,
				f->name);
		} else {
			char *path = xasprintf("%s/%u.eml", dir, msgs[i].uid);

			if (store_write_file(path, raw.data, raw.len) < 0) {
				store_set_error(error_r, "%s: %s", path,
						strerror(errno));
				err = STORE_ERR_TEMP;
			}
			free(path);
		}
		(*count)++;
	}
	sp_buf_deinit(&raw);
	store_messages_free(&msgs, n);
	return err;
}

enum store_error
store_export(struct store_mailbox *mbox, const char *folder,
	     enum store_format format, const char *path, size_t *count_r,
	     const char **error_r)
{
	struct store_folder *folders = NULL;
	size_t nfolders = 0, count = 0;
	struct sp_buf out;
	enum store_error err;

	if (count_r != NULL)
		*count_r = 0;
	if (folder != NULL) {
		struct store_folder *one;

		err = store_folder_get(mbox, folder, &one, error_r);
		if (err != STORE_OK)
			return err;
		folders = one;
		nfolders = 1;
	} else if ((err = store_folder_list(mbox, &folders, &nfolders,
					    error_r)) != STORE_OK) {
		return err;
	}
	/* One read snapshot for the whole export. */
	bool own_txn = sqlite3_get_autocommit(mbox->db) &&
		       db_exec(mbox->db, "BEGIN;", NULL) == 0;
	sp_buf_init(&out);
	for (size_t i = 0; i < nfolders && err == STORE_OK; i++) {
		char *dir = NULL;

		if (format == STORE_FORMAT_EML) {
			char *rel = store_folder_dir_name(folders[i].name);

			dir = folder != NULL ? xstrdup(path)
					     : xasprintf("%s/%s", path, rel);
			free(rel);
		}
		err = store_export_folder(mbox, &folders[i], format,
					  folder == NULL, &out, dir, &count,
					  error_r);
		free(dir);
	}
	if (own_txn)
		(void)db_exec(mbox->db, "COMMIT;", NULL);
	if (err == STORE_OK && format == STORE_FORMAT_MBOX &&
	    store_write_file(path, out.data, out.len) < 0) {
		store_set_error(error_r, "%s: %s", path, strerror(errno));
		err = STORE_ERR_TEMP;
	}
	if (format == STORE_FORMAT_EML && err == STORE_OK && count == 0 &&
	    fs_mkdir_p(path, 0700) < 0) {
		store_set_error(error_r, "%s: %s", path, strerror(errno));
		err = STORE_ERR_TEMP;
	}
	store_buf_wipe(&out);
	store_folder_list_free(&folders, nfolders);
	if (err == STORE_OK && count_r != NULL)
		*count_r = count;
	return err;
}

/* ---- Import ---- */

static time_t
store_mbox_from_date(const char *line, size_t len)
{
	char buf[128];
	struct tm tm = {0};
	const char *p;

	if (len >= sizeof(buf))
		return 0;
	memcpy(buf, line, len);
	buf[len] = '\0';
	/* "From sender Wed Nov 23 18:25:00 2026": the date follows the
	 * second space. */
	p = strchr(buf + 5, ' ');
	if (p == NULL)
		return 0;
	while (*p == ' ')
		p++;
	if (strptime(p, "%a %b %e %H:%M:%S %Y", &tm) == NULL)
		return 0;
	return timegm(&tm);
}

static bool
store_is_from_line(const char *p, size_t left)
{
	return left >= 5 && memcmp(p, "From ", 5) == 0;
}

/* A "From " line separates messages only after a blank line (or at the
 * start): an unquoted "From " inside a body (mboxo) stays in it. */
static bool
store_is_separator(const char *data, size_t pos, size_t len)
{
	if (!store_is_from_line(data + pos, len - pos))
		return false;
	if (pos == 0)
		return true;
	return (pos >= 2 && data[pos - 2] == '\n') ||
	       (pos >= 3 && data[pos - 3] == '\n' && data[pos - 2] == '\r');
}

/* Undoes mboxrd quoting of one message and strips the separator. */
static void
store_mbox_unquote(const char *data, size_t len, struct sp_buf *out)
{
	size_t pos = 0;

	if (len >= 2 && data[len - 1] == '\n' && data[len - 2] == '\n')
		len--;
	else if (len >= 4 && memcmp(data + len - 4, "\r\n\r\n", 4) == 0)
		len -= 2;
	else if (len >= 1 && data[len - 1] == '\n')
		len--;
	while (pos < len) {
		const char *nl = memchr(data + pos, '\n', len - pos);
		size_t end = nl != NULL ? (size_t)(nl - data) + 1 : len;
		size_t q = pos;

		while (q < end && data[q] == '>')
			q++;
		if (q > pos && end - q >= 5 && memcmp(data + q, "From ", 5) == 0)
			pos++;
		sp_buf_append(out, data + pos, end - pos);
		pos = end;
	}
}

static enum store_error store_import_file(struct store_mailbox *mbox,
					  const char *folder, const char *path,
					  size_t *count_r,
					  const char **error_r);

static bool
store_has_suffix(const char *name, const char *suffix)
{
	size_t n = strlen(name), m = strlen(suffix);

	return n > m && strcmp(name + n - m, suffix) == 0;
}

/* Directory entries in import order: "12.eml" before "100.eml" (UIDs keep
 * their order), otherwise by name. */
static int
store_entry_cmp(const void *a, const void *b)
{
	const char *x = *(const char *const *)a, *y = *(const char *const *)b;
	char *ex, *ey;
	unsigned long nx = strtoul(x, &ex, 10), ny = strtoul(y, &ey, 10);

	if (ex != x && ey != y && strcmp(ex, ".eml") == 0 &&
	    strcmp(ey, ".eml") == 0 && nx != ny)
		return nx < ny ? -1 : 1;
	return strcmp(x, y);
}

static char *
store_join_folder(const char *parent, const char *name)
{
	if (parent == NULL || parent[0] == '\0')
		return xstrdup(name);
	return xasprintf("%s/%s", parent, name);
}

static enum store_error
store_import_folder_ready(struct store_mailbox *mbox, const char *name,
			  const char **error_r)
{
	enum store_error err =
		store_folder_create(mbox, name, STORE_SPECIAL_NONE, error_r);

	return err == STORE_ERR_EXISTS ? STORE_OK : err;
}

/* A whole-mailbox export read back: <rel>.mbox files are folder <rel>,
 * <rel>/<n>.eml files go to folder <rel>; both under `folder` when given.
 * Other names are not ours and are left alone. */
static enum store_error
store_import_tree(struct store_mailbox *mbox, const char *folder,
		  const char *dir, int depth, size_t *count,
		  const char **error_r)
{
	enum store_error err = STORE_OK;
	struct dirent *de;
	char **names = NULL;
	size_t n = 0, cap = 0;
	DIR *d;

	if (depth > 64) {
		store_set_error(error_r, "%s: folders nested too deep", dir);
		return STORE_ERR_INVALID;
	}
	d = opendir(dir);
	if (d == NULL) {
		store_set_error(error_r, "%s: %s", dir, strerror(errno));
		return STORE_ERR_TEMP;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (n == cap) {
			cap = cap == 0 ? 16 : cap * 2;
			names = xrealloc(names, cap * sizeof(*names));
		}
		names[n++] = xstrdup(de->d_name);
	}
	closedir(d);
	if (n > 0)
		qsort(names, n, sizeof(*names), store_entry_cmp);
	for (size_t i = 0; i < n && err == STORE_OK; i++) {
		char *path = xasprintf("%s/%s", dir, names[i]);
		struct stat st;
		size_t got = 0;

		if (stat(path, &st) < 0) {
			store_set_error(error_r, "%s: %s", path,
					strerror(errno));
			err = STORE_ERR_TEMP;
		} else if (S_ISDIR(st.st_mode)) {
			char *sub = store_join_folder(folder, names[i]);

			err = store_import_tree(mbox, sub, path, depth + 1,
						count, error_r);
			free(sub);
		} else if (S_ISREG(st.st_mode) &&
			   store_has_suffix(names[i], ".mbox")) {
			char *base = xstrndup(names[i], strlen(names[i]) - 5);
			char *name = store_join_folder(folder, base);

			err = store_import_folder_ready(mbox, name, error_r);
			if (err == STORE_OK)
				err = store_import_file(mbox, name, path, &got,
							error_r);
			*count += got;
			free(name);
			free(base);
		} else if (S_ISREG(st.st_mode) &&
			   store_has_suffix(names[i], ".eml")) {
			const char *name = folder != NULL ? folder : "INBOX";

			err = store_import_folder_ready(mbox, name, error_r);
			if (err == STORE_OK)
				err = store_import_file(mbox, name, path, &got,
							error_r);
			*count += got;
		}
		free(path);
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return err;
}

enum store_error
store_import(struct store_mailbox *mbox, const char *folder,
	     const char *path, size_t *count_r, const char **error_r)
{
	struct stat st;
	size_t count = 0;
	enum store_error err;

	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
		if (count_r != NULL)
			*count_r = 0;
		err = store_import_tree(mbox, folder, path, 0, &count,
					error_r);
		if (count_r != NULL)
			*count_r = count;
		return err;
	}
	return store_import_file(mbox, folder, path, count_r, error_r);
}

/* The next message of an mbox at *pos: its body (after the "From " line)
 * is data[*body_r, *end_r), its "From " date *date_r. */
static bool
store_mbox_next(const char *data, size_t len, size_t *pos, size_t *body_r,
		size_t *end_r, time_t *date_r)
{
	const char *nl;
	size_t body, end;

	if (*pos >= len)
		return false;
	nl = memchr(data + *pos, '\n', len - *pos);
	body = nl != NULL ? (size_t)(nl - data) + 1 : len;
	*date_r = store_mbox_from_date(data + *pos, body - *pos);
	/* The message runs to the next "From " at a line start. */
	end = body;
	while (end < len && !store_is_separator(data, end, len)) {
		const char *n2 = memchr(data + end, '\n', len - end);

		end = n2 != NULL ? (size_t)(n2 - data) + 1 : len;
	}
	*body_r = body;
	*end_r = end;
	*pos = end;
	return true;
}

/* When the message starts with the folder line of a whole-mailbox export:
 * the folder it names (under `parent` when given; caller frees) and the
 * length of the line, else NULL. */
static char *
store_folder_line(const char *msg, size_t len, const char *parent,
		  size_t *line_len_r)
{
	const char *nl, *v, *e;
	char *name, *full;

	if (!store_starts_with_folder_header(msg, len))
		return NULL;
	nl = memchr(msg, '\n', len);
	if (nl == NULL)
		return NULL;
	*line_len_r = (size_t)(nl - msg) + 1;
	v = msg + STORE_FOLDER_HEADER_LEN;
	while (v < nl && (*v == ' ' || *v == '\t'))
		v++;
	e = nl;
	if (e > v && e[-1] == '\r')
		e--;
	name = xstrndup(v, (size_t)(e - v));
	if (parent == NULL)
		return name;
	full = xasprintf("%s/%s", parent, name);
	free(name);
	return full;
}

/* Creates every folder the file's folder lines name (folder creation is a
 * transaction of its own, so before the import's). */
static enum store_error
store_import_prepare_folders(struct store_mailbox *mbox, const char *data,
			     size_t len, const char *parent,
			     const char **error_r)
{
	size_t pos = 0, body, end, line;
	enum store_error err = STORE_OK;
	char *last = NULL;
	time_t date;

	while (err == STORE_OK &&
	       store_mbox_next(data, len, &pos, &body, &end, &date)) {
		char *name = store_folder_line(data + body, end - body, parent,
					       &line);

		if (name != NULL && (last == NULL || strcmp(name, last) != 0)) {
			err = store_import_folder_ready(mbox, name, error_r);
			free(last);
			last = name;
		} else {
			free(name);
		}
	}
	free(last);
	return err;
}

static enum store_error
store_import_file(struct store_mailbox *mbox, const char *folder,
		  const char *path, size_t *count_r, const char **error_r)
{
	struct store_folder *f = NULL, *other = NULL;
	char *data = NULL;
	size_t len, count = 0;
	enum store_error err;
	const char *dberr;
	struct sp_buf msg;

	if (count_r != NULL)
		*count_r = 0;
	err = store_folder_get(mbox, folder != NULL ? folder : "INBOX", &f,
			       error_r);
	if (err != STORE_OK)
		return err;
	if (fs_read_file(path, &data, &len) < 0) {
		store_set_error(error_r, "%s: %s", path, strerror(errno));
		store_folder_free(&f);
		return errno == ENOENT ? STORE_ERR_NOTFOUND : STORE_ERR_TEMP;
	}
	if (len == 0) {
		/* An empty folder's mbox file: nothing to add. */
		free(data);
		store_folder_free(&f);
		return STORE_OK;
	}
	if (store_is_from_line(data, len) &&
	    (err = store_import_prepare_folders(mbox, data, len, folder,
						error_r)) != STORE_OK) {
		explicit_bzero(data, len);
		free(data);
		store_folder_free(&f);
		return err;
	}
	if (db_begin_durable(mbox->db, &dberr) < 0) {
		store_set_error(error_r, "%s", dberr);
		explicit_bzero(data, len);
		free(data);
		store_folder_free(&f);
		return STORE_ERR_TEMP;
	}
	sp_buf_init(&msg);
	if (!store_is_from_line(data, len)) {
		/* One message (.eml). */
		err = store_append_locked(mbox, f->id, data, len, 0, NULL, 0,
					  NULL, error_r);
		count = err == STORE_OK ? 1 : 0;
	} else {
		size_t pos = 0, body, end, line = 0;
		time_t date;

		while (err == STORE_OK &&
		       store_mbox_next(data, len, &pos, &body, &end, &date)) {
			int64_t folder_id = f->id;
			char *name;

			sp_buf_reset(&msg);
			store_mbox_unquote(data + body, end - body, &msg);
			name = store_folder_line(msg.data, msg.len, folder,
						 &line);
			if (name != NULL) {
				/* Messages of one folder come together: the
				 * last lookup is usually the one. */
				if (other == NULL ||
				    strcmp(other->name, name) != 0) {
					store_folder_free(&other);
					err = store_folder_get(mbox, name,
							       &other, error_r);
				}
				free(name);
				if (err != STORE_OK)
					break;
				folder_id = other->id;
			} else {
				line = 0;
			}
			if (msg.len > line) {
				err = store_append_locked(
					mbox, folder_id, msg.data + line,
					msg.len - line, 0, NULL, date, NULL,
					error_r);
				if (err == STORE_OK)
					count++;
			}
		}
	}
	if (err == STORE_OK && db_commit(mbox->db, &dberr) < 0) {
		store_set_error(error_r, "%s", dberr);
		err = STORE_ERR_TEMP;
	}
	if (err != STORE_OK) {
		db_rollback(mbox->db);
		count = 0;
	}
	store_buf_wipe(&msg);
	explicit_bzero(data, len);
	free(data);
	store_folder_free(&f);
	store_folder_free(&other);
	if (count_r != NULL)
		*count_r = count;
	return err;
}
