/* The command table, shared helpers, and the commands too small for a file
 * of their own. */
#include "imap-private.h"
#include "imap-mutf7.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define ANY IMAP_CMD_ANY
#define NAUTH IMAP_CMD_NOT_AUTH
#define AUTH IMAP_CMD_AUTH
#define SEL (IMAP_CMD_AUTH | IMAP_CMD_SELECTED)
#define LOOP IMAP_CMD_LOOP
#define UID IMAP_CMD_UID
#define NOEXP IMAP_CMD_NO_EXPUNGE
#define CHG IMAP_CMD_CHANGES

static const struct imap_command commands[] = {
	{"APPEND", imap_cmd_append, AUTH | CHG},
	{"AUTHENTICATE", imap_cmd_authenticate, NAUTH | LOOP},
	{"CAPABILITY", imap_cmd_capability, ANY | LOOP},
	{"CHECK", imap_cmd_check, SEL},
	{"CLOSE", imap_cmd_close, SEL | CHG},
	{"COPY", imap_cmd_copy, SEL | UID | CHG},
	{"CREATE", imap_cmd_create, AUTH},
	{"DELETE", imap_cmd_delete, AUTH | CHG},
	{"ENABLE", imap_cmd_enable, AUTH | LOOP},
	{"EXAMINE", imap_cmd_examine, AUTH},
	{"EXPUNGE", imap_cmd_expunge, SEL | UID | CHG},
	{"FETCH", imap_cmd_fetch, SEL | UID | NOEXP | CHG},
	{"GETQUOTA", imap_cmd_getquota, AUTH},
	{"GETQUOTAROOT", imap_cmd_getquotaroot, AUTH},
	{"ID", imap_cmd_id, ANY | LOOP},
	{"IDLE", imap_cmd_idle, AUTH},
	{"LIST", imap_cmd_list, AUTH},
	{"LOGIN", imap_cmd_login, NAUTH | LOOP},
	{"LOGOUT", imap_cmd_logout, ANY | LOOP},
	{"LSUB", imap_cmd_lsub, AUTH},
	{"MOVE", imap_cmd_move, SEL | UID | CHG},
	{"NAMESPACE", imap_cmd_namespace, AUTH | LOOP},
	{"NOOP", imap_cmd_noop, ANY},
	{"RENAME", imap_cmd_rename, AUTH | CHG},
	{"SEARCH", imap_cmd_search, SEL | UID | NOEXP},
	{"SELECT", imap_cmd_select, AUTH},
	{"SETQUOTA", imap_cmd_setquota, AUTH},
	{"STARTTLS", imap_cmd_starttls, NAUTH | LOOP},
	{"STATUS", imap_cmd_status, AUTH},
	{"STORE", imap_cmd_store, SEL | UID | NOEXP | CHG},
	{"SUBSCRIBE", imap_cmd_subscribe, AUTH},
	{"UNSELECT", imap_cmd_unselect, SEL},
	{"UNSUBSCRIBE", imap_cmd_unsubscribe, AUTH},
};

const struct imap_command *
imap_command_find(const char *name)
{
	size_t lo = 0, hi = SP_N_ELEMENTS(commands);

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcasecmp(name, commands[mid].name);

		if (c == 0)
			return &commands[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

static void
tagged(struct imap_cmd *cmd, const char *status, const char *fmt, va_list ap)
{
	sp_buf_reset(&cmd->tagged);
	sp_buf_printf(&cmd->tagged, "%s %s ", cmd->tag, status);
	{
		char *text;

		if (vasprintf(&text, fmt, ap) < 0)
			core_panic("out of memory");
		sp_buf_append_str(&cmd->tagged, text);
		free(text);
	}
	sp_buf_append_str(&cmd->tagged, "\r\n");
}

void
imap_cmd_ok(struct imap_cmd *cmd, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	tagged(cmd, "OK", fmt, ap);
	va_end(ap);
}

void
imap_cmd_no(struct imap_cmd *cmd, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	tagged(cmd, "NO", fmt, ap);
	va_end(ap);
}

void
imap_cmd_bad(struct imap_cmd *cmd, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	tagged(cmd, "BAD", fmt, ap);
	va_end(ap);
	/* A BAD command changed nothing. */
	cmd->changed = false;
}

void
imap_cmd_store_error(struct imap_cmd *cmd, enum store_error error,
		     const char *error_text)
{
	switch (error) {
	case STORE_OK:
		imap_cmd_ok(cmd, "Completed.");
		break;
	case STORE_ERR_NOTFOUND:
		imap_cmd_no(cmd, "[NONEXISTENT] Mailbox doesn't exist.");
		break;
	case STORE_ERR_EXISTS:
		imap_cmd_no(cmd, "[ALREADYEXISTS] Mailbox already exists.");
		break;
	case STORE_ERR_QUOTA:
		imap_cmd_no(cmd, "[OVERQUOTA] Quota exceeded.");
		break;
	case STORE_ERR_BADKEY:
		imap_cmd_no(cmd, "[AUTHENTICATIONFAILED] Authentication "
				 "failed.");
		break;
	case STORE_ERR_INVALID:
		imap_cmd_no(cmd, "[CANNOT] Invalid mailbox name or "
				 "operation.");
		break;
	case STORE_ERR_NOTEMPTY:
		imap_cmd_no(cmd, "[INUSE] Mailbox has children; delete them "
				 "first.");
		break;
	case STORE_ERR_TEMP:
	default: {
		char when[21];

		clock_format_iso8601(clock_now(), when);
		if (error_text != NULL)
			log_warn(cmd->session->conn != NULL
					 ? net_conn_id(cmd->session->conn)
					 : NULL,
				 "imap: store: %s", error_text);
		imap_cmd_no(cmd,
			    "[SERVERBUG] Internal error occurred. Refer to "
			    "server log for more information. [%s]",
			    when);
		break;
	}
	}
}

char *
imap_cmd_mailbox(struct imap_cmd *cmd, const struct imap_arg *arg)
{
	const char *s = imap_arg_astring(arg), *error = NULL;
	char *name;
	size_t len;

	if (s == NULL || s[0] == '\0') {
		imap_cmd_bad(cmd, "Invalid mailbox name.");
		return NULL;
	}
	if ((name = imap_mutf7_decode(s, &error)) == NULL) {
		/* A valid astring, but no name: NO, as Dovecot answers. */
		imap_cmd_no(cmd, "Mailbox name is not valid modified UTF-7 "
				 "(RFC 3501 5.1.3): %s.", error);
		return NULL;
	}
	len = strlen(name);
	/* A trailing delimiter names the same folder (CREATE "a/"). */
	while (len > 1 && name[len - 1] == '/')
		name[--len] = '\0';
	if (strcasecmp(name, "INBOX") == 0)
		memcpy(name, "INBOX", 5);
	else if (strncasecmp(name, "INBOX/", 6) == 0)
		memcpy(name, "INBOX", 5);
	return name;
}

void
imap_append_mailbox(struct sp_buf *buf, const char *name)
{
	char *mutf7 = imap_mutf7_encode(name);

	imap_append_astring(buf, mutf7);
	free(mutf7);
}

void
imap_append_astring(struct sp_buf *buf, const char *s)
{
	bool quote_ok = true;

	for (const char *p = s; *p != '\0'; p++) {
		if (*p == '\r' || *p == '\n' || (unsigned char)*p >= 0x80)
			quote_ok = false;
	}
	if (!quote_ok) {
		sp_buf_printf(buf, "{%zu}\r\n%s", strlen(s), s);
		return;
	}
	sp_buf_append_str(buf, "\"");
	for (const char *p = s; *p != '\0'; p++) {
		if (*p == '"' || *p == '\\')
			sp_buf_append_str(buf, "\\");
		sp_buf_append(buf, p, 1);
	}
	sp_buf_append_str(buf, "\"");
}

int
imap_cmd_uidset(struct imap_cmd *cmd, const char *str, bool uid,
		struct store_uidset *set_r)
{
	return imap_cmd_uidset_mode(cmd, str, uid, false, set_r);
}

int
imap_cmd_uidset_mode(struct imap_cmd *cmd, const char *str, bool uid,
		     bool search, struct store_uidset *set_r)
{
	struct imap_session *s = cmd->session;
	struct imap_seqset set;
	struct store_uid_range *ranges;
	size_t n = 0;
	uint32_t max_uid = s->uid_count > 0 ? s->uids[s->uid_count - 1] : 0;

	memset(set_r, 0, sizeof(*set_r));
	if (str == NULL || imap_seqset_parse(str, &set) < 0)
		return -1;
	ranges = xcalloc(set.count, sizeof(*ranges));
	for (size_t i = 0; i < set.count; i++) {
		uint32_t a = set.ranges[i].first, b = set.ranges[i].last;

		if (uid) {
			if (a == UINT32_MAX)
				a = max_uid;
			if (b == UINT32_MAX)
				b = max_uid;
			if (a > b) {
				uint32_t t = a;

				a = b;
				b = t;
			}
			/* Messages this session has not been told about
			 * yet stay out of reach until the next sync. */
			if (b > max_uid)
				b = max_uid;
			if (a > b || a == 0)
				continue;
		} else {
			if (a == UINT32_MAX)
				a = (uint32_t)s->uid_count;
			if (b == UINT32_MAX)
				b = (uint32_t)s->uid_count;
			if (a > b) {
				uint32_t t = a;

				a = b;
				b = t;
			}
			/* A search key only selects: numbers past EXISTS
			 * (and "1:*" on an empty mailbox) match nothing,
			 * as in Dovecot. */
			if (search && b > s->uid_count)
				b = (uint32_t)s->uid_count;
			if (search && (a == 0 || a > b))
				continue;
			if (a == 0 || b > s->uid_count) {
				free(ranges);
				imap_seqset_clear(&set);
				return -1;
			}
			a = s->uids[a - 1];
			b = s->uids[b - 1];
		}
		ranges[n].first = a;
		ranges[n].last = b;
		n++;
	}
	imap_seqset_clear(&set);
	set_r->ranges = ranges;
	set_r->count = n;
	return 0;
}

static const char *const flag_names[] = {
	"\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft",
};

void
imap_append_flags(struct sp_buf *buf, uint32_t flags, const char *keywords,
		  bool recent)
{
	bool first = true;

	sp_buf_append_str(buf, "(");
	for (size_t i = 0; i < SP_N_ELEMENTS(flag_names); i++) {
		if ((flags & (1u << i)) == 0)
			continue;
		if (!first)
			sp_buf_append_str(buf, " ");
		sp_buf_append_str(buf, flag_names[i]);
		first = false;
	}
	if (recent) {
		if (!first)
			sp_buf_append_str(buf, " ");
		sp_buf_append_str(buf, "\\Recent");
		first = false;
	}
	if (keywords != NULL && keywords[0] != '\0') {
		if (!first)
			sp_buf_append_str(buf, " ");
		sp_buf_append_str(buf, keywords);
	}
	sp_buf_append_str(buf, ")");
}

static bool
keyword_valid(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c <= 0x20 || c >= 0x7f || strchr("(){%*\"\\]", c) != NULL)
			return false;
	}
	return true;
}

int
imap_parse_flags(const struct imap_arg *args, unsigned count,
		 uint32_t *flags_r, char **keywords_r)
{
	struct sp_buf kw;

	*flags_r = 0;
	sp_buf_init(&kw);
	sp_buf_append(&kw, "", 0);
	for (unsigned i = 0; i < count; i++) {
		const char *f;
		bool found = false;

		if (args[i].type != IMAP_ARG_ATOM)
			goto bad;
		f = args[i].str;
		if (f[0] == '\\') {
			if (strcasecmp(f, "\\Recent") == 0)
				continue; /* not settable; ignored */
			for (size_t j = 0; j < SP_N_ELEMENTS(flag_names); j++) {
				if (strcasecmp(f, flag_names[j]) == 0) {
					*flags_r |= 1u << j;
					found = true;
				}
			}
			if (!found)
				goto bad;
			continue;
		}
		if (!keyword_valid(f) || kw.len + strlen(f) + 1 >
						 IMAP_MAX_KEYWORDS_LEN)
			goto bad;
		if (kw.len > 0)
			sp_buf_append_str(&kw, " ");
		sp_buf_append_str(&kw, f);
	}
	*keywords_r = sp_buf_steal(&kw, NULL);
	return 0;
bad:
	sp_buf_deinit(&kw);
	return -1;
}

static const char *const months[] = {"Jan", "Feb", "Mar", "Apr",
				     "May", "Jun", "Jul", "Aug",
				     "Sep", "Oct", "Nov", "Dec"};

static int
parse_month(const char *s)
{
	for (int i = 0; i < 12; i++) {
		if (strncasecmp(s, months[i], 3) == 0)
			return i;
	}
	return -1;
}

int
imap_parse_date(const char *s, time_t *t_r)
{
	struct tm tm;
	int day, year, mon;
	char mname[4];
	int n = 0;

	if (sscanf(s, "%2d-%3[A-Za-z]-%4d%n", &day, mname, &year, &n) != 3 ||
	    s[n] != '\0' || (mon = parse_month(mname)) < 0 || day < 1 ||
	    day > 31 || year < 1900)
		return -1;
	memset(&tm, 0, sizeof(tm));
	tm.tm_mday = day;
	tm.tm_mon = mon;
	tm.tm_year = year - 1900;
	*t_r = timegm(&tm);
	return 0;
}

int
imap_parse_datetime(const char *s, time_t *t_r)
{
	struct tm tm;
	int day, year, mon, hh, mm, ss, zone;
	char mname[4], sign;
	int n = 0;

	while (*s == ' ')
		s++;
	if (sscanf(s, "%2d-%3[A-Za-z]-%4d %2d:%2d:%2d %c%4d%n", &day, mname,
		   &year, &hh, &mm, &ss, &sign, &zone, &n) != 8 ||
	    s[n] != '\0' || (mon = parse_month(mname)) < 0 ||
	    (sign != '+' && sign != '-') || day < 1 || day > 31 ||
	    hh > 23 || mm > 59 || ss > 60)
		return -1;
	memset(&tm, 0, sizeof(tm));
	tm.tm_mday = day;
	tm.tm_mon = mon;
	tm.tm_year = year - 1900;
	tm.tm_hour = hh;
	tm.tm_min = mm;
	tm.tm_sec = ss;
	*t_r = timegm(&tm) -
	       (sign == '-' ? -1 : 1) *
		       ((zone / 100) * 3600 + (zone % 100) * 60);
	return 0;
}

void
imap_format_datetime(time_t t, char out[32])
{
	struct tm tm;

	gmtime_r(&t, &tm);
	snprintf(out, 32, "%02d-%s-%04d %02d:%02d:%02d +0000", tm.tm_mday,
		 months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
		 tm.tm_sec);
}

/* ---- small commands ---- */

void
imap_cmd_capability(struct imap_cmd *cmd)
{
	sp_buf_printf(&cmd->out, "* CAPABILITY %s\r\n",
		      imap_session_capability(cmd->session));
	imap_cmd_ok(cmd, "Capability completed.");
	imap_session_cmd_done(cmd);
}

void
imap_cmd_noop(struct imap_cmd *cmd)
{
	/* Runs as a job when logged in: the sync reports changes. */
	imap_cmd_ok(cmd, "NOOP completed.");
}

void
imap_cmd_check(struct imap_cmd *cmd)
{
	imap_cmd_ok(cmd, "Check completed.");
}

void
imap_cmd_logout(struct imap_cmd *cmd)
{
	sp_buf_append_str(&cmd->out, "* BYE Logging out\r\n");
	imap_cmd_ok(cmd, "Logout completed.");
	cmd->session->state = IMAP_STATE_LOGOUT;
	imap_session_cmd_done(cmd);
}

void
imap_cmd_starttls(struct imap_cmd *cmd)
{
	struct imap_session *s = cmd->session;
	const char *error;

	if (cmd->argc != 0) {
		imap_cmd_bad(cmd, "Unexpected arguments.");
	} else if (net_conn_is_tls(s->conn)) {
		imap_cmd_bad(cmd, "TLS is already active.");
	} else if (!net_server_has_tls(net_conn_server(s->conn))) {
		imap_cmd_no(cmd, "TLS is not available.");
	} else {
		imap_cmd_ok(cmd, "Begin TLS negotiation now.");
		net_conn_write(s->conn, cmd->tagged.data, cmd->tagged.len);
		sp_buf_reset(&cmd->tagged);
		if (net_conn_starttls(s->conn, &error) < 0) {
			net_conn_close(s->conn);
		}
	}
	imap_session_cmd_done(cmd);
}

void
imap_cmd_id(struct imap_cmd *cmd)
{
	if (cmd->argc != 1 || (cmd->args[0].type != IMAP_ARG_LIST &&
			       !imap_arg_is_nil(&cmd->args[0]))) {
		imap_cmd_bad(cmd, "Invalid ID arguments.");
	} else {
		sp_buf_append_str(&cmd->out,
				  "* ID (\"name\" \"Sealpost\" \"version\" \""
				  "0.1.0\")\r\n");
		imap_cmd_ok(cmd, "ID completed.");
	}
	imap_session_cmd_done(cmd);
}

void
imap_cmd_enable(struct imap_cmd *cmd)
{
	struct sp_buf enabled;

	if (cmd->argc == 0) {
		imap_cmd_bad(cmd, "Missing capabilities.");
		imap_session_cmd_done(cmd);
		return;
	}
	sp_buf_init(&enabled);
	for (unsigned i = 0; i < cmd->argc; i++) {
		if (imap_arg_is_atom(&cmd->args[i], "CONDSTORE") &&
		    !cmd->session->condstore) {
			cmd->session->condstore = true;
			sp_buf_append_str(&enabled, " CONDSTORE");
		}
	}
	sp_buf_printf(&cmd->out, "* ENABLED%s\r\n",
		      enabled.data != NULL ? enabled.data : "");
	sp_buf_deinit(&enabled);
	imap_cmd_ok(cmd, "Enabled.");
	imap_session_cmd_done(cmd);
}

void
imap_cmd_namespace(struct imap_cmd *cmd)
{
	sp_buf_append_str(&cmd->out, "* NAMESPACE ((\"\" \"/\")) NIL NIL\r\n");
	imap_cmd_ok(cmd, "Namespace completed.");
	imap_session_cmd_done(cmd);
}

void
imap_cmd_idle(struct imap_cmd *cmd)
{
	struct imap_session *s = cmd->session;

	if (cmd->argc != 0) {
		imap_cmd_bad(cmd, "Unexpected arguments.");
		return;
	}
	/* The sync after this handler reports what is pending; from now on
	 * the session waits for DONE and is woken by notifications. */
	sp_buf_append_str(&cmd->tagged, "+ idling\r\n");
	s->pending_tag = xstrdup(cmd->tag);
	s->input_mode = IMAP_INPUT_IDLE;
	cmd->no_sync = false;
}

static void
create_subscribe(struct imap_cmd *cmd, bool create, bool subscribe)
{
	struct imap_session *s = cmd->session;
	char *name;
	enum store_error err;
	const char *error = NULL;

	if (cmd->argc != 1) {
		imap_cmd_bad(cmd, "Invalid arguments.");
		return;
	}
	if ((name = imap_cmd_mailbox(cmd, &cmd->args[0])) == NULL)
		return;
	if (create) {
		if (strcmp(name, "INBOX") == 0)
			err = STORE_ERR_EXISTS;
		else
			err = store_folder_create(s->user->mbox, name,
						  STORE_SPECIAL_NONE, &error);
	} else {
		err = store_folder_subscribe(s->user->mbox, name, subscribe,
					     &error);
	}
	if (err == STORE_OK)
		imap_cmd_ok(cmd, "%s completed.",
			    create ? "Create"
				   : subscribe ? "Subscribe" : "Unsubscribe");
	else
		imap_cmd_store_error(cmd, err, error);
	free(name);
}

void
imap_cmd_create(struct imap_cmd *cmd)
{
	create_subscribe(cmd, true, false);
}

void
imap_cmd_subscribe(struct imap_cmd *cmd)
{
	create_subscribe(cmd, false, true);
}

void
imap_cmd_unsubscribe(struct imap_cmd *cmd)
{
	create_subscribe(cmd, false, false);
}

void
imap_cmd_delete(struct imap_cmd *cmd)
{
	struct imap_session *s = cmd->session;
	char *name;
	enum store_error err;
	const char *error = NULL;

	if (cmd->argc != 1) {
		imap_cmd_bad(cmd, "Invalid arguments.");
		return;
	}
	if ((name = imap_cmd_mailbox(cmd, &cmd->args[0])) == NULL)
		return;
	if (s->folder_name != NULL && strcmp(s->folder_name, name) == 0)
		imap_session_unselect(s);
	err = store_folder_delete(s->user->mbox, name, &error);
	if (err == STORE_OK)
		imap_cmd_ok(cmd, "Delete completed.");
	else
		imap_cmd_store_error(cmd, err, error);
	free(name);
}

void
imap_cmd_rename(struct imap_cmd *cmd)
{
	struct imap_session *s = cmd->session;
	char *from, *to = NULL;
	enum store_error err;
	const char *error = NULL;

	if (cmd->argc != 2) {
		imap_cmd_bad(cmd, "Invalid arguments.");
		return;
	}
	if ((from = imap_cmd_mailbox(cmd, &cmd->args[0])) == NULL)
		return;
	if ((to = imap_cmd_mailbox(cmd, &cmd->args[1])) == NULL) {
		free(from);
		return;
	}
	err = store_folder_rename(s->user->mbox, from, to, &error);
	if (err == STORE_OK) {
		imap_cmd_ok(cmd, "Rename completed.");
		if (s->folder_name != NULL && strcmp(s->folder_name, from) == 0)
			imap_session_unselect(s);
	} else {
		imap_cmd_store_error(cmd, err, error);
	}
	free(from);
	free(to);
}

void
imap_cmd_unselect(struct imap_cmd *cmd)
{
	imap_session_unselect(cmd->session);
	imap_cmd_ok(cmd, "Unselect completed.");
}

void
imap_cmd_close(struct imap_cmd *cmd)
{
	struct imap_session *s = cmd->session;
	const char *error;

	/* CLOSE expunges silently (no EXPUNGE responses). */
	if (!s->readonly)
		(void)store_expunge(s->user->mbox, s->folder_id, NULL, NULL,
				    NULL, &error);
	imap_session_unselect(s);
	imap_cmd_ok(cmd, "Close completed.");
}

void
imap_cmd_expunge(struct imap_cmd *cmd)
{
	struct imap_session *s = cmd->session;
	struct store_uidset set;
	enum store_error err;
	const char *error = NULL;
	bool have_set = false;

	if (cmd->uid) {
		if (cmd->argc != 1 ||
		    imap_cmd_uidset(cmd, imap_arg_astring(&cmd->args[0]), true,
				    &set) < 0) {
			imap_cmd_bad(cmd, "Invalid UID set.");
			return;
		}
		have_set = true;
	} else if (cmd->argc != 0) {
		imap_cmd_bad(cmd, "Unexpected arguments.");
		return;
	}
	if (s->readonly) {
		imap_cmd_no(cmd, "[READ-ONLY] Mailbox is read-only.");
		if (have_set)
			free((void *)set.ranges);
		return;
	}
	if (have_set && set.count == 0)
		err = STORE_OK;
	else
		err = store_expunge(s->user->mbox, s->folder_id,
				    have_set ? &set : NULL, NULL, NULL, &error);
	if (have_set)
		free((void *)set.ranges);
	if (err == STORE_OK)
		imap_cmd_ok(cmd, "Expunge completed.");
	else
		imap_cmd_store_error(cmd, err, error);
}

/* QUOTA (RFC 9208): one root "" for the whole mailbox, STORAGE in KiB. */
static enum store_error
quota_line(struct imap_cmd *cmd)
{
	struct store_usage usage;
	const char *error = NULL;
	enum store_error err;
	uint64_t limit = cmd->session->user->quota;

	err = store_mailbox_usage(cmd->session->user->mbox, &usage, &error);
	if (err != STORE_OK) {
		imap_cmd_store_error(cmd, err, error);
		return err;
	}
	if (limit > 0)
		sp_buf_printf(&cmd->out,
			      "* QUOTA \"\" (STORAGE %llu %llu)\r\n",
			      (unsigned long long)((usage.bytes + 1023) / 1024),
			      (unsigned long long)(limit / 1024));
	else
		sp_buf_append_str(&cmd->out, "* QUOTA \"\" ()\r\n");
	return STORE_OK;
}

void
imap_cmd_getquota(struct imap_cmd *cmd)
{
	const char *root;

	if (cmd->argc != 1 ||
	    (root = imap_arg_astring(&cmd->args[0])) == NULL) {
		imap_cmd_bad(cmd, "Invalid arguments.");
		return;
	}
	if (root[0] != '\0') {
		imap_cmd_no(cmd, "[NONEXISTENT] No such quota root.");
		return;
	}
	if (quota_line(cmd) == STORE_OK)
		imap_cmd_ok(cmd, "Getquota completed.");
}

void
imap_cmd_getquotaroot(struct imap_cmd *cmd)
{
	struct store_folder *folder = NULL;
	char *name;
	const char *error = NULL;
	enum store_error err;

	if (cmd->argc != 1) {
		imap_cmd_bad(cmd, "Invalid arguments.");
		return;
	}
	if ((name = imap_cmd_mailbox(cmd, &cmd->args[0])) == NULL)
		return;
	err = store_folder_get(cmd->session->user->mbox, name, &folder,
			       &error);
	if (err != STORE_OK) {
		imap_cmd_store_error(cmd, err, error);
		free(name);
		return;
	}
	store_folder_free(&folder);
	sp_buf_append_str(&cmd->out, "* QUOTAROOT ");
	imap_append_mailbox(&cmd->out, name);
	sp_buf_append_str(&cmd->out, " \"\"\r\n");
	free(name);
	if (quota_line(cmd) == STORE_OK)
		imap_cmd_ok(cmd, "Getquotaroot completed.");
}

void
imap_cmd_setquota(struct imap_cmd *cmd)
{
	imap_cmd_no(cmd, "[NOPERM] Quotas are set by the administrator.");
}
