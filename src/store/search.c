/* store: SEARCH and SORT -- a key tree turned into one SQL statement, the
 * SQL functions it needs (regexp on PCRE2, Unicode substring tests), and
 * the RFC 5256 sort keys. */
#include "store-private.h"

#include "mime/mime.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <ctype.h>
#include <glib.h>
#include <zlib.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* A message's raw header and its index text live in message_content (see
 * the schema): fetched per row only when an expression reaches them. */
#define STORE_SQL_HEADER \
	"(SELECT c.header FROM message_content c WHERE c.id = m.id)"
#define STORE_SQL_TEXT \
	"(SELECT c.text FROM message_content c WHERE c.id = m.id)"

/* ---- SQL functions ---- */

/* Compiled patterns, per connection: a search runs the same few patterns
 * over every row, so compiling once per statement row would dominate. */
#define STORE_REGEXP_CACHE 16
#define STORE_REGEXP_MATCH_LIMIT 1000000

struct store_regexp_slot {
	char *pattern;
	pcre2_code *code;
	pcre2_match_data *match;
};

struct store_regexp_cache {
	struct store_regexp_slot slots[STORE_REGEXP_CACHE];
	size_t next;
	pcre2_match_context *mctx;
};

static void
store_regexp_slot_clear(struct store_regexp_slot *slot)
{
	free(slot->pattern);
	pcre2_match_data_free(slot->match);
	pcre2_code_free(slot->code);
	memset(slot, 0, sizeof(*slot));
}

static void
store_regexp_cache_free(void *arg)
{
	struct store_regexp_cache *cache = arg;

	for (size_t i = 0; i < STORE_REGEXP_CACHE; i++)
		store_regexp_slot_clear(&cache->slots[i]);
	pcre2_match_context_free(cache->mctx);
	free(cache);
}

static pcre2_code *
store_regexp_compile(const char *pattern, const char **error_r)
{
	static _Thread_local char msg[256];
	PCRE2_UCHAR buf[200];
	PCRE2_SIZE offset;
	int code;
	pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED,
				       PCRE2_UTF | PCRE2_MATCH_INVALID_UTF,
				       &code, &offset, NULL);

	if (re == NULL) {
		pcre2_get_error_message(code, buf, sizeof(buf));
		snprintf(msg, sizeof(msg), "bad regular expression at %zu: %s",
			 (size_t)offset, (const char *)buf);
		*error_r = msg;
		return NULL;
	}
	(void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
	return re;
}

const char *
store_regexp_check(const char *pattern)
{
	const char *error = NULL;
	pcre2_code *re = store_regexp_compile(pattern, &error);

	pcre2_code_free(re);
	return re == NULL ? error : NULL;
}

static struct store_regexp_slot *
store_regexp_get(struct store_regexp_cache *cache, const char *pattern,
		 const char **error_r)
{
	struct store_regexp_slot *slot;
	pcre2_code *re;

	for (size_t i = 0; i < STORE_REGEXP_CACHE; i++) {
		if (cache->slots[i].pattern != NULL &&
		    strcmp(cache->slots[i].pattern, pattern) == 0)
			return &cache->slots[i];
	}
	if ((re = store_regexp_compile(pattern, error_r)) == NULL)
		return NULL;
	slot = &cache->slots[cache->next];
	cache->next = (cache->next + 1) % STORE_REGEXP_CACHE;
	store_regexp_slot_clear(slot);
	slot->pattern = xstrdup(pattern);
	slot->code = re;
	slot->match = pcre2_match_data_create_from_pattern(re, NULL);
	return slot;
}

/* regexp(pattern, text): 1 when the PCRE2 pattern matches, NULL text: 0. */
static void
store_sql_regexp(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	struct store_regexp_cache *cache = sqlite3_user_data(ctx);
	const char *pattern = (const char *)sqlite3_value_text(argv[0]);
	const char *text, *error = "bad regular expression";
	struct store_regexp_slot *slot;
	int rc;

	if (pattern == NULL) {
		sqlite3_result_error(ctx, error, -1);
		return;
	}
	if (sqlite3_value_type(argv[1]) == SQLITE_NULL) {
		sqlite3_result_int(ctx, 0);
		return;
	}
	text = (const char *)sqlite3_value_text(argv[1]);
	if ((slot = store_regexp_get(cache, pattern, &error)) == NULL) {
		sqlite3_result_error(ctx, error, -1);
		return;
	}
	rc = pcre2_match(slot->code, (PCRE2_SPTR)text,
			 (PCRE2_SIZE)sqlite3_value_bytes(argv[1]), 0, 0,
			 slot->match, cache->mctx);
	if (rc < 0 && rc != PCRE2_ERROR_NOMATCH) {
		sqlite3_result_error(ctx, "regular expression too costly", -1);
		return;
	}
	sqlite3_result_int(ctx, rc >= 0);
}

bool
store_icontains(const char *haystack, size_t hay_len, const char *needle)
{
	size_t nlen = strlen(needle);
	bool found = false;

	if (nlen == 0)
		return true;
	if (hay_len < nlen && str_is_ascii(needle))
		return false;
	if (str_is_ascii(needle)) {
		unsigned char first = (unsigned char)tolower(
			(unsigned char)needle[0]);

		for (size_t i = 0; i + nlen <= hay_len; i++) {
			if ((unsigned char)tolower((unsigned char)haystack[i]) !=
			    first)
				continue;
			if (strncasecmp(haystack + i, needle, nlen) == 0) {
				/* strncasecmp stops at a NUL in the text. */
				if (memchr(haystack + i, '\0', nlen) == NULL)
					return true;
			}
		}
		return false;
	}
	{
		gchar *valid = g_utf8_make_valid(haystack, (gssize)hay_len);
		gchar *fh = g_utf8_casefold(valid, -1);
		gchar *fn = g_utf8_casefold(needle, -1);

		found = strstr(fh, fn) != NULL;
		g_free(valid);
		g_free(fh);
		g_free(fn);
	}
	return found;
}

/* sp_icontains(text, needle): RFC 3501 case-insensitive substring. */
static void
store_sql_icontains(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	const char *needle = (const char *)sqlite3_value_text(argv[1]);
	const char *text;

	if (sqlite3_value_type(argv[0]) == SQLITE_NULL || needle == NULL) {
		sqlite3_result_int(ctx, 0);
		return;
	}
	text = sqlite3_value_type(argv[0]) == SQLITE_BLOB
		       ? sqlite3_value_blob(argv[0])
		       : (const char *)sqlite3_value_text(argv[0]);
	sqlite3_result_int(ctx, store_icontains(text != NULL ? text : "",
						(size_t)sqlite3_value_bytes(
							argv[0]),
						needle));
}

/* sp_header(header_block, name): the field decoded, or NULL. */
static void
store_sql_header(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	const void *hdr = sqlite3_value_blob(argv[0]);
	const char *name = (const char *)sqlite3_value_text(argv[1]);
	char *value;

	if (hdr == NULL || name == NULL) {
		sqlite3_result_null(ctx);
		return;
	}
	value = mime_header_get(hdr, (size_t)sqlite3_value_bytes(argv[0]),
				name);
	if (value == NULL)
		sqlite3_result_null(ctx);
	else
		sqlite3_result_text(ctx, value, -1, free);
}

void
store_deflate(const void *data, size_t len, struct sp_buf *out)
{
	uLongf zlen = compressBound((uLong)len);
	unsigned char hdr[4] = {(unsigned char)len, (unsigned char)(len >> 8),
				(unsigned char)(len >> 16),
				(unsigned char)(len >> 24)};
	Bytef *z = xmalloc(zlen);

	SP_ASSERT(len <= UINT32_MAX);
	/* Level 1: most of the gain for a fraction of the time. */
	if (compress2(z, &zlen, data, (uLong)len, 1) != Z_OK)
		core_panic("zlib compress failed");
	sp_buf_append(out, hdr, sizeof(hdr));
	sp_buf_append(out, z, zlen);
	free(z);
}

int
store_inflate(const void *blob, size_t len, struct sp_buf *out)
{
	const unsigned char *b = blob;
	uLongf orig, got;
	Bytef *plain;

	if (len < 4)
		return -1;
	orig = (uLongf)b[0] | (uLongf)b[1] << 8 | (uLongf)b[2] << 16 |
	       (uLongf)b[3] << 24;
	if (orig == 0)
		return 0;
	plain = xmalloc(orig);
	got = orig;
	if (uncompress(plain, &got, b + 4, (uLong)(len - 4)) != Z_OK ||
	    got != orig) {
		free(plain);
		return -1;
	}
	sp_buf_append(out, plain, got);
	explicit_bzero(plain, got);
	free(plain);
	return 0;
}

/* sp_inflate(blob): the text of a compressed blob, NULL when damaged. */
static void
store_sql_inflate(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	struct sp_buf buf;
	size_t len;
	char *data;

	if (sqlite3_value_type(argv[0]) == SQLITE_NULL) {
		sqlite3_result_null(ctx);
		return;
	}
	sp_buf_init(&buf);
	if (store_inflate(sqlite3_value_blob(argv[0]),
			  (size_t)sqlite3_value_bytes(argv[0]), &buf) < 0) {
		sp_buf_deinit(&buf);
		sqlite3_result_null(ctx);
		return;
	}
	data = sp_buf_steal(&buf, &len);
	if (data == NULL)
		sqlite3_result_text(ctx, "", 0, SQLITE_STATIC);
	else
		sqlite3_result_text64(ctx, data, len, free, SQLITE_UTF8);
}

int
store_sql_functions_register(sqlite3 *db)
{
	struct store_regexp_cache *cache = xcalloc(1, sizeof(*cache));
	int flags = SQLITE_UTF8 | SQLITE_DETERMINISTIC;

	cache->mctx = pcre2_match_context_create(NULL);
	pcre2_set_match_limit(cache->mctx, STORE_REGEXP_MATCH_LIMIT);
	pcre2_set_depth_limit(cache->mctx, 10000);
	if (sqlite3_create_function_v2(db, "regexp", 2, flags, cache,
				       store_sql_regexp, NULL, NULL,
				       store_regexp_cache_free) != SQLITE_OK)
		return -1;
	if (sqlite3_create_function_v2(db, "sp_icontains", 2, flags, NULL,
				       store_sql_icontains, NULL, NULL,
				       NULL) != SQLITE_OK ||
	    sqlite3_create_function_v2(db, "sp_header", 2, flags, NULL,
				       store_sql_header, NULL, NULL,
				       NULL) != SQLITE_OK ||
	    sqlite3_create_function_v2(db, "sp_inflate", 1, flags, NULL,
				       store_sql_inflate, NULL, NULL,
				       NULL) != SQLITE_OK)
		return -1;
	return 0;
}

/* ---- Sort keys ---- */

static bool
store_strip_prefix_ci(const char **s, const char *prefix)
{
	size_t n = strlen(prefix);

	if (strncasecmp(*s, prefix, n) != 0)
		return false;
	*s += n;
	return true;
}

char *
store_base_subject(const char *subject)
{
	const char *s = subject != NULL ? subject : "";
	char *out;
	size_t len;
	bool changed = true;

	/* RFC 5256 2.1, simplified: drop leading blobs "[...]" and
	 * "re:"/"fw:"/"fwd:" markers and trailing "(fwd)", repeatedly. */
	while (changed) {
		changed = false;
		while (*s == ' ' || *s == '\t')
			s++;
		if (*s == '[') {
			const char *end = strchr(s, ']');

			if (end != NULL && end[1] != '\0') {
				s = end + 1;
				changed = true;
				continue;
			}
		}
		if (store_strip_prefix_ci(&s, "re:") ||
		    store_strip_prefix_ci(&s, "fwd:") ||
		    store_strip_prefix_ci(&s, "fw:"))
			changed = true;
	}
	out = xstrdup(s);
	len = strlen(out);
	for (;;) {
		while (len > 0 && (out[len - 1] == ' ' || out[len - 1] == '\t'))
			out[--len] = '\0';
		if (len >= 5 && strcasecmp(out + len - 5, "(fwd)") == 0) {
			len -= 5;
			out[len] = '\0';
			continue;
		}
		break;
	}
	{
		gchar *folded = g_utf8_casefold(out, -1);

		free(out);
		out = xstrdup(folded);
		g_free(folded);
	}
	return out;
}

char *
store_sort_address(const char *list)
{
	const char *start, *end;
	char *out;

	if (list == NULL)
		return NULL;
	end = strchr(list, ',');
	start = strchr(list, '<');
	if (start != NULL && (end == NULL || start < end)) {
		start++;
	} else {
		start = list;
		while (*start == ' ')
			start++;
	}
	end = start;
	while (*end != '\0' && *end != '@' && *end != '>' && *end != ',')
		end++;
	out = xstrndup(start, (size_t)(end - start));
	str_lower(out);
	return out;
}

/* ---- The search tree ---- */

struct store_search *
store_search_new(enum store_search_key key)
{
	struct store_search *s = xcalloc(1, sizeof(*s));

	s->key = key;
	return s;
}

void
store_search_add(struct store_search *parent, struct store_search *child)
{
	parent->children = xrealloc(parent->children,
				    (parent->child_count + 1) *
					    sizeof(*parent->children));
	parent->children[parent->child_count++] = child;
}

void
store_search_free(struct store_search **_s)
{
	struct store_search *s = *_s;

	if (s == NULL)
		return;
	*_s = NULL;
	for (size_t i = 0; i < s->child_count; i++)
		store_search_free(&s->children[i]);
	free(s->children);
	free(s->ranges);
	free(s->str);
	free(s->field);
	free(s);
}

/* ---- SQL generation ---- */

enum store_bind_type { STORE_BIND_INT, STORE_BIND_TEXT };

struct store_bind {
	enum store_bind_type type;
	int64_t i;
	char *s; /* owned */
};

struct store_query {
	struct sp_buf sql;
	struct store_bind *binds;
	size_t count, cap;
	const char *error;
};

static void
store_query_bind(struct store_query *q, enum store_bind_type type, int64_t i,
		 const char *s)
{
	if (q->count == q->cap) {
		q->cap = q->cap == 0 ? 16 : q->cap * 2;
		q->binds = xrealloc(q->binds, q->cap * sizeof(*q->binds));
	}
	q->binds[q->count].type = type;
	q->binds[q->count].i = i;
	q->binds[q->count].s = s != NULL ? xstrdup(s) : NULL;
	q->count++;
}

static void
store_query_int(struct store_query *q, const char *sql, int64_t v)
{
	sp_buf_append_str(&q->sql, sql);
	store_query_bind(q, STORE_BIND_INT, v, NULL);
}

/* Midnight UTC of the day holding t, plus `days`. */
static time_t
store_day_start(time_t t, int days)
{
	return t - (t % 86400 + 86400) % 86400 + (time_t)days * 86400;
}

static void
store_query_day(struct store_query *q, time_t t, int days)
{
	char iso[21];

	clock_format_iso8601(store_day_start(t, days), iso);
	iso[10] = '\0';
	store_query_bind(q, STORE_BIND_TEXT, 0, iso);
}

/* A MATCH expression of the trigrams of `needle` ("abc" AND "bcd" ...) in
 * the text column, or NULL when the needle is shorter than a trigram. At
 * most 16 trigrams, spread along the needle: narrowing only, the exact
 * test decides. */
static char *
store_fts_query(const char *needle)
{
	const char *chars[4096];
	size_t n = 0, step;
	struct sp_buf buf;

	for (const char *p = needle; *p != '\0' && n < SP_N_ELEMENTS(chars) - 1;
	     p = g_utf8_next_char(p))
		chars[n++] = p;
	if (n < 3 || !g_utf8_validate(needle, -1, NULL))
		return NULL;
	chars[n] = needle + strlen(needle);
	sp_buf_init(&buf);
	sp_buf_append_str(&buf, "(");
	step = (n - 2 + 15) / 16;
	for (size_t i = 0; i + 2 < n; i += step) {
		if (i > 0)
			sp_buf_append_str(&buf, " AND ");
		sp_buf_append(&buf, "\"", 1);
		for (const char *c = chars[i]; c < chars[i + 3]; c++) {
			if (*c == '"')
				sp_buf_append(&buf, "\"", 1);
			sp_buf_append(&buf, c, 1);
		}
		sp_buf_append(&buf, "\"", 1);
	}
	sp_buf_append_str(&buf, ")");
	return sp_buf_steal(&buf, NULL);
}

static void
store_query_body(struct store_query *q, const char *needle)
{
	char *match = store_fts_query(needle);

	sp_buf_append_str(&q->sql, "(");
	if (match != NULL) {
		sp_buf_append_str(&q->sql, "m.id IN (SELECT rowid FROM fts"
					   " WHERE fts MATCH ?) AND ");
		store_query_bind(q, STORE_BIND_TEXT, 0, match);
		free(match);
	}
	sp_buf_append_str(&q->sql, "sp_icontains(sp_inflate(" STORE_SQL_TEXT "), ?))");
	store_query_bind(q, STORE_BIND_TEXT, 0, needle);
}

static const char *
store_field_column(const char *field)
{
	static const struct {
		const char *name, *column;
	} map[] = {
		{"subject", "m.subject"}, {"from", "m.from_addr"},
		{"to", "m.to_addr"},	  {"cc", "m.cc_addr"},
		{"bcc", "m.bcc_addr"},	  {"body", "sp_inflate(" STORE_SQL_TEXT ")"},
	};

	for (size_t i = 0; i < SP_N_ELEMENTS(map); i++) {
		if (strcasecmp(field, map[i].name) == 0)
			return map[i].column;
	}
	return NULL;
}

static void store_query_node(struct store_query *q,
			     const struct store_search *s);

static void
store_query_children(struct store_query *q, const struct store_search *s,
		     const char *op, const char *empty)
{
	if (s->child_count == 0) {
		sp_buf_append_str(&q->sql, empty);
		return;
	}
	sp_buf_append_str(&q->sql, "(");
	for (size_t i = 0; i < s->child_count; i++) {
		if (i > 0)
			sp_buf_append_str(&q->sql, op);
		store_query_node(q, s->children[i]);
	}
	sp_buf_append_str(&q->sql, ")");
}

static void
store_query_substring(struct store_query *q, const char *column,
		      const char *needle)
{
	sp_buf_printf(&q->sql, "sp_icontains(%s, ?)", column);
	store_query_bind(q, STORE_BIND_TEXT, 0, needle != NULL ? needle : "");
}

static void
store_query_node(struct store_query *q, const struct store_search *s)
{
	const char *str = s->str != NULL ? s->str : "";

	switch (s->key) {
	case STORE_SEARCH_ALL:
		sp_buf_append_str(&q->sql, "1");
		break;
	case STORE_SEARCH_AND:
		store_query_children(q, s, " AND ", "1");
		break;
	case STORE_SEARCH_OR:
		store_query_children(q, s, " OR ", "0");
		break;
	case STORE_SEARCH_NOT:
		sp_buf_append_str(&q->sql, "NOT ");
		store_query_children(q, s, " AND ", "1");
		break;
	case STORE_SEARCH_UID: {
		/* Any number of ranges without a deep OR chain. */
		struct sp_buf json;

		sp_buf_init(&json);
		sp_buf_append_str(&json, "[");
		for (size_t i = 0; i < s->range_count; i++) {
			uint32_t a = s->ranges[i].first, b = s->ranges[i].last;

			sp_buf_printf(&json, "%s[%u,%u]", i > 0 ? "," : "",
				      a < b ? a : b, a < b ? b : a);
		}
		sp_buf_append_str(&json, "]");
		sp_buf_append_str(&q->sql,
				  "EXISTS(SELECT 1 FROM json_each(?) j WHERE"
				  " m.uid BETWEEN j.value->>0 AND"
				  " j.value->>1)");
		store_query_bind(q, STORE_BIND_TEXT, 0, json.data);
		sp_buf_deinit(&json);
		break;
	}
	case STORE_SEARCH_FLAGS:
		store_query_int(q, "(m.flags & ?", s->flags & STORE_FLAG_ALL);
		store_query_int(q, ") = ?", s->flags & STORE_FLAG_ALL);
		break;
	case STORE_SEARCH_NOFLAGS:
		store_query_int(q, "(m.flags & ?) = 0",
				s->flags & STORE_FLAG_ALL);
		break;
	case STORE_SEARCH_KEYWORD:
	case STORE_SEARCH_UNKEYWORD:
		sp_buf_printf(&q->sql,
			      "instr(' ' || lower(m.keywords) || ' ', ' ' ||"
			      " lower(?) || ' ') %s 0",
			      s->key == STORE_SEARCH_KEYWORD ? ">" : "=");
		store_query_bind(q, STORE_BIND_TEXT, 0, str);
		break;
	case STORE_SEARCH_RECENT:
		sp_buf_append_str(&q->sql,
				  "m.uid >= (SELECT recent_uid FROM folders"
				  " WHERE id = m.folder_id)");
		break;
	case STORE_SEARCH_BEFORE:
		sp_buf_append_str(&q->sql, "m.internal_date < ?");
		store_query_day(q, s->date, 0);
		break;
	case STORE_SEARCH_ON:
		sp_buf_append_str(&q->sql, "(m.internal_date >= ? AND"
					   " m.internal_date < ?)");
		store_query_day(q, s->date, 0);
		store_query_day(q, s->date, 1);
		break;
	case STORE_SEARCH_SINCE:
		sp_buf_append_str(&q->sql, "m.internal_date >= ?");
		store_query_day(q, s->date, 0);
		break;
	case STORE_SEARCH_SENTBEFORE:
		store_query_int(q, "coalesce(m.sent_date, unixepoch("
				   "m.internal_date)) < ?",
				store_day_start(s->date, 0));
		break;
	case STORE_SEARCH_SENTON:
		store_query_int(q, "(coalesce(m.sent_date, unixepoch("
				   "m.internal_date)) >= ?",
				store_day_start(s->date, 0));
		store_query_int(q, " AND coalesce(m.sent_date, unixepoch("
				   "m.internal_date)) < ?)",
				store_day_start(s->date, 1));
		break;
	case STORE_SEARCH_SENTSINCE:
		store_query_int(q, "coalesce(m.sent_date, unixepoch("
				   "m.internal_date)) >= ?",
				store_day_start(s->date, 0));
		break;
	case STORE_SEARCH_LARGER:
		store_query_int(q, "m.size > ?",
				(int64_t)(s->num > INT64_MAX ? INT64_MAX
							     : s->num));
		break;
	case STORE_SEARCH_SMALLER:
		store_query_int(q, "m.size < ?",
				(int64_t)(s->num > INT64_MAX ? INT64_MAX
							     : s->num));
		break;
	case STORE_SEARCH_MODSEQ:
		store_query_int(q, "m.modseq >= ?",
				(int64_t)(s->num > INT64_MAX ? INT64_MAX
							     : s->num));
		break;
	case STORE_SEARCH_SUBJECT:
		store_query_substring(q, "m.subject", str);
		break;
	case STORE_SEARCH_FROM:
		store_query_substring(q, "m.from_addr", str);
		break;
	case STORE_SEARCH_TO:
		store_query_substring(q, "m.to_addr", str);
		break;
	case STORE_SEARCH_CC:
		store_query_substring(q, "m.cc_addr", str);
		break;
	case STORE_SEARCH_BCC:
		store_query_substring(q, "m.bcc_addr", str);
		break;
	case STORE_SEARCH_HEADER:
		sp_buf_append_str(&q->sql, "sp_icontains(sp_header(" STORE_SQL_HEADER ","
					   " ?), ?)");
		store_query_bind(q, STORE_BIND_TEXT, 0,
				 s->field != NULL ? s->field : "");
		store_query_bind(q, STORE_BIND_TEXT, 0, str);
		break;
	case STORE_SEARCH_BODY:
		store_query_body(q, str);
		break;
	case STORE_SEARCH_TEXT:
		sp_buf_append_str(&q->sql, "(");
		store_query_substring(q, STORE_SQL_HEADER, str);
		sp_buf_append_str(&q->sql, " OR ");
		store_query_substring(q, "m.subject", str);
		sp_buf_append_str(&q->sql, " OR ");
		store_query_substring(q, "m.from_addr", str);
		sp_buf_append_str(&q->sql, " OR ");
		store_query_substring(q, "m.to_addr", str);
		sp_buf_append_str(&q->sql, " OR ");
		store_query_substring(q, "m.cc_addr", str);
		sp_buf_append_str(&q->sql, " OR ");
		store_query_body(q, str);
		sp_buf_append_str(&q->sql, ")");
		break;
	case STORE_SEARCH_REGEXP: {
		const char *field = s->field != NULL ? s->field : "body";
		const char *column = store_field_column(field);
		const char *perr = store_regexp_check(str);

		if (perr != NULL && q->error == NULL)
			q->error = perr;
		if (column != NULL) {
			sp_buf_printf(&q->sql, "regexp(?, %s)", column);
			store_query_bind(q, STORE_BIND_TEXT, 0, str);
		} else {
			sp_buf_append_str(&q->sql,
					  "regexp(?, sp_header(" STORE_SQL_HEADER ", ?))");
			store_query_bind(q, STORE_BIND_TEXT, 0, str);
			store_query_bind(q, STORE_BIND_TEXT, 0, field);
		}
		break;
	}
	}
}

static const char *
store_sort_column(enum store_sort_key key)
{
	switch (key) {
	case STORE_SORT_ARRIVAL:
		return "m.internal_date";
	case STORE_SORT_CC:
		return "coalesce(m.sort_cc, '')";
	case STORE_SORT_DATE:
		return "coalesce(m.sent_date, unixepoch(m.internal_date))";
	case STORE_SORT_FROM:
		return "coalesce(m.sort_from, '')";
	case STORE_SORT_SIZE:
		return "m.size";
	case STORE_SORT_SUBJECT:
		return "coalesce(m.sort_subject, '')";
	case STORE_SORT_TO:
		return "coalesce(m.sort_to, '')";
	}
	return "m.uid";
}

enum store_error
store_search_run(struct store_mailbox *mbox, int64_t folder_id,
		 const struct store_search *search,
		 const struct store_sort *sort, size_t sort_count,
		 uint32_t **uids_r, size_t *count_r,
		 uint64_t *highest_modseq_r, const char **error_r)
{
	struct store_query q = {0};
	sqlite3_stmt *stmt = NULL;
	uint32_t *uids = NULL;
	size_t count = 0, cap = 0;
	uint64_t highest = 0;
	enum store_error err = STORE_OK;
	int rc;

	*uids_r = NULL;
	*count_r = 0;
	sp_buf_init(&q.sql);
	sp_buf_append_str(&q.sql, "SELECT m.uid, m.modseq FROM messages m"
				  " WHERE m.folder_id = ? AND ");
	store_query_bind(&q, STORE_BIND_INT, folder_id, NULL);
	if (search != NULL)
		store_query_node(&q, search);
	else
		sp_buf_append_str(&q.sql, "1");
	sp_buf_append_str(&q.sql, " ORDER BY ");
	for (size_t i = 0; i < sort_count; i++) {
		sp_buf_printf(&q.sql, "%s%s, ", store_sort_column(sort[i].key),
			      sort[i].reverse ? " DESC" : "");
	}
	sp_buf_append_str(&q.sql, "m.uid;");
	if (q.error != NULL) {
		store_set_error(error_r, "%s", q.error);
		err = STORE_ERR_INVALID;
		goto out;
	}
	if (sqlite3_prepare_v2(mbox->db, q.sql.data, -1, &stmt, NULL) !=
	    SQLITE_OK) {
		err = store_db_error(mbox, "search", error_r);
		goto out;
	}
	for (size_t i = 0; i < q.count; i++) {
		if (q.binds[i].type == STORE_BIND_INT)
			sqlite3_bind_int64(stmt, (int)i + 1, q.binds[i].i);
		else
			sqlite3_bind_text(stmt, (int)i + 1, q.binds[i].s, -1,
					  SQLITE_STATIC);
	}
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		uint64_t modseq = (uint64_t)sqlite3_column_int64(stmt, 1);

		if (count == cap) {
			cap = cap == 0 ? 64 : cap * 2;
			uids = xrealloc(uids, cap * sizeof(*uids));
		}
		uids[count++] = (uint32_t)sqlite3_column_int64(stmt, 0);
		if (modseq > highest)
			highest = modseq;
	}
	if (rc != SQLITE_DONE) {
		err = store_db_error(mbox, "search", error_r);
		free(uids);
		uids = NULL;
		count = 0;
	}
out:
	sqlite3_finalize(stmt);
	for (size_t i = 0; i < q.count; i++)
		free(q.binds[i].s);
	free(q.binds);
	sp_buf_deinit(&q.sql);
	*uids_r = uids;
	*count_r = count;
	if (highest_modseq_r != NULL)
		*highest_modseq_r = highest;
	return err;
}
