/* Header splitting, canonicalization (RFC 6376 3.4) and tag lists (3.2). */
#include "mailauth/mailauth-private.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static bool
is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

/* Length of the line starting at p, without its end; *next_r points after
 * the LF (or at end). */
static size_t
line_len(const char *p, const char *end, const char **next_r)
{
	const char *lf = memchr(p, '\n', (size_t)(end - p));
	size_t n;

	if (lf == NULL) {
		*next_r = end;
		return (size_t)(end - p);
	}
	*next_r = lf + 1;
	n = (size_t)(lf - p);
	if (n > 0 && p[n - 1] == '\r')
		n--;
	return n;
}

void
mailauth_msg_parse(const char *msg, size_t len, struct mailauth_msg *msg_r)
{
	const char *p = msg, *end = msg + len, *next;
	size_t cap = 0;

	memset(msg_r, 0, sizeof(*msg_r));
	while (p < end) {
		size_t n = line_len(p, end, &next);
		const char *colon, *field_end;
		struct mailauth_header *hdr;

		if (n == 0) {
			/* The empty line: body starts after it. */
			msg_r->body = next;
			msg_r->body_len = (size_t)(end - next);
			return;
		}
		colon = memchr(p, ':', n);
		if (colon == NULL || is_wsp(*p)) {
			/* Not a header field: the rest is body. */
			break;
		}
		field_end = p + n;
		/* Continuation lines start with WSP. */
		while (next < end && is_wsp(*next)) {
			const char *cont = next;
			size_t m = line_len(cont, end, &next);

			field_end = cont + m;
		}
		if (msg_r->count == cap) {
			cap = cap == 0 ? 32 : cap * 2;
			msg_r->headers =
				xrealloc(msg_r->headers, cap * sizeof(*hdr));
		}
		hdr = &msg_r->headers[msg_r->count++];
		hdr->name = p;
		hdr->name_len = (size_t)(colon - p);
		while (hdr->name_len > 0 && is_wsp(p[hdr->name_len - 1]))
			hdr->name_len--;
		hdr->raw = p;
		hdr->raw_len = (size_t)(field_end - p);
		hdr->value = colon + 1;
		hdr->value_len = (size_t)(field_end - (colon + 1));
		p = next;
	}
	msg_r->body = p;
	msg_r->body_len = (size_t)(end - p);
}

void
mailauth_msg_deinit(struct mailauth_msg *msg)
{
	free(msg->headers);
	memset(msg, 0, sizeof(*msg));
}

bool
mailauth_header_is(const struct mailauth_header *hdr, const char *name)
{
	return strlen(name) == hdr->name_len &&
	       strncasecmp(hdr->name, name, hdr->name_len) == 0;
}

void
mailauth_canon_header(enum mailauth_canon canon, const char *raw,
		      size_t raw_len, bool no_crlf, struct sp_buf *out)
{
	const char *colon = memchr(raw, ':', raw_len), *p, *end = raw + raw_len;
	bool space = false, started = false;
	size_t name_len;

	if (canon == MAILAUTH_CANON_SIMPLE || colon == NULL) {
		/* Unchanged, except that a bare LF line end becomes CRLF. */
		for (p = raw; p < end; p++) {
			if (*p == '\n' && (p == raw || p[-1] != '\r'))
				sp_buf_append(out, "\r", 1);
			sp_buf_append(out, p, 1);
		}
		if (!no_crlf)
			sp_buf_append(out, "\r\n", 2);
		return;
	}
	name_len = (size_t)(colon - raw);
	while (name_len > 0 && is_wsp(raw[name_len - 1]))
		name_len--;
	for (size_t i = 0; i < name_len; i++) {
		char c = (char)tolower((unsigned char)raw[i]);

		sp_buf_append(out, &c, 1);
	}
	sp_buf_append(out, ":", 1);
	/* Unfold, squeeze WSP runs to one SP, drop WSP at both ends. */
	for (p = colon + 1; p < end; p++) {
		if (*p == '\r' || *p == '\n')
			continue;
		if (is_wsp(*p)) {
			space = true;
			continue;
		}
		if (space && started)
			sp_buf_append(out, " ", 1);
		space = false;
		started = true;
		sp_buf_append(out, p, 1);
	}
	if (!no_crlf)
		sp_buf_append(out, "\r\n", 2);
}

/* Body canonicalization. */

static void
body_write(struct mailauth_body_canon *bc, const char *data, size_t len)
{
	if (bc->limit >= 0) {
		uint64_t room = (uint64_t)bc->limit - bc->written;

		if (len > room)
			len = (size_t)room;
	}
	if (len == 0)
		return;
	bc->written += len;
	/* Relaxed output comes in word-sized pieces: batch them. */
	if (bc->out_len + len > sizeof(bc->out)) {
		EVP_DigestUpdate(bc->md, bc->out, bc->out_len);
		bc->out_len = 0;
	}
	if (len >= sizeof(bc->out)) {
		EVP_DigestUpdate(bc->md, data, len);
		return;
	}
	memcpy(bc->out + bc->out_len, data, len);
	bc->out_len += len;
}

static void
body_line(struct mailauth_body_canon *bc, const char *line, size_t len)
{
	size_t last = len;

	if (bc->canon == MAILAUTH_CANON_RELAXED) {
		/* Trailing WSP goes; the line may then be empty. */
		while (last > 0 && is_wsp(line[last - 1]))
			last--;
	}
	if (last == 0) {
		bc->pending_empty++;
		return;
	}
	for (; bc->pending_empty > 0; bc->pending_empty--)
		body_write(bc, "\r\n", 2);
	if (bc->canon == MAILAUTH_CANON_SIMPLE) {
		body_write(bc, line, len);
	} else {
		/* Runs of WSP become one SP; the rest is written as is. */
		size_t i = 0;

		while (i < last) {
			size_t run = i;

			if (is_wsp(line[i])) {
				while (i < last && is_wsp(line[i]))
					i++;
				body_write(bc, " ", 1);
				continue;
			}
			while (i < last && !is_wsp(line[i]))
				i++;
			body_write(bc, line + run, i - run);
		}
	}
	body_write(bc, "\r\n", 2);
}

void
mailauth_body_canon_init(struct mailauth_body_canon *bc,
			 enum mailauth_canon canon, int64_t limit)
{
	memset(bc, 0, sizeof(*bc));
	bc->canon = canon;
	bc->limit = limit;
	bc->md = EVP_MD_CTX_new();
	if (bc->md == NULL ||
	    EVP_DigestInit_ex(bc->md, EVP_sha256(), NULL) != 1)
		core_panic("mailauth: EVP_DigestInit failed");
	sp_buf_init(&bc->line);
}

void
mailauth_body_canon_feed(struct mailauth_body_canon *bc, const char *data,
			 size_t len)
{
	const char *p = data, *end = data + len;

	while (p < end) {
		const char *lf = memchr(p, '\n', (size_t)(end - p));

		if (lf == NULL) {
			sp_buf_append(&bc->line, p, (size_t)(end - p));
			return;
		}
		if (bc->line.len == 0) {
			/* A whole line in the input: no copy. */
			size_t n = (size_t)(lf - p);

			if (n > 0 && p[n - 1] == '\r')
				n--;
			body_line(bc, p, n);
			p = lf + 1;
			continue;
		}
		sp_buf_append(&bc->line, p, (size_t)(lf - p));
		if (bc->line.len > 0 && bc->line.data[bc->line.len - 1] == '\r')
			bc->line.len--;
		body_line(bc, bc->line.data, bc->line.len);
		sp_buf_reset(&bc->line);
		p = lf + 1;
	}
}

void
mailauth_body_canon_finish(struct mailauth_body_canon *bc,
			   unsigned char digest[32])
{
	unsigned int n = 32;

	/* A last line without its CRLF still counts as a line. */
	if (bc->line.len > 0)
		body_line(bc, bc->line.data, bc->line.len);
	/* Simple: an empty body is one CRLF. Relaxed: it stays empty. */
	if (bc->canon == MAILAUTH_CANON_SIMPLE && bc->written == 0 &&
	    (bc->limit < 0 || bc->limit > 0))
		body_write(bc, "\r\n", 2);
	EVP_DigestUpdate(bc->md, bc->out, bc->out_len);
	EVP_DigestFinal_ex(bc->md, digest, &n);
	EVP_MD_CTX_free(bc->md);
	sp_buf_deinit(&bc->line);
	bc->md = NULL;
}

/* The same canonicalizer writing into a buffer instead of a digest. */
char *
mailauth_body_canon_string(enum mailauth_canon canon, const char *body,
			   size_t len, size_t *len_r)
{
	struct sp_buf out;
	const char *p = body, *end = body + len, *next;
	size_t pending = 0;
	bool any = false;

	sp_buf_init(&out);
	while (p < end) {
		size_t n = line_len(p, end, &next);
		struct sp_buf line;

		sp_buf_init(&line);
		if (canon == MAILAUTH_CANON_RELAXED) {
			bool space = false;

			for (size_t i = 0; i < n; i++) {
				if (is_wsp(p[i])) {
					space = true;
					continue;
				}
				if (space)
					sp_buf_append(&line, " ", 1);
				space = false;
				sp_buf_append(&line, &p[i], 1);
			}
		} else {
			sp_buf_append(&line, p, n);
		}
		if (line.len == 0) {
			pending++;
		} else {
			for (; pending > 0; pending--)
				sp_buf_append(&out, "\r\n", 2);
			sp_buf_append(&out, line.data, line.len);
			sp_buf_append(&out, "\r\n", 2);
			any = true;
		}
		sp_buf_deinit(&line);
		p = next;
	}
	if (!any && canon == MAILAUTH_CANON_SIMPLE)
		sp_buf_append(&out, "\r\n", 2);
	return sp_buf_steal(&out, len_r);
}

/* Tag lists. */

static bool
is_fws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

int
mailauth_tags_parse(const char *text, size_t len, struct mailauth_tags *tags_r)
{
	size_t i = 0, cap = 0;

	memset(tags_r, 0, sizeof(*tags_r));
	while (i < len) {
		size_t name_start, name_end, value_start, value_end, raw_start;
		struct mailauth_tag *tag;

		while (i < len && is_fws(text[i]))
			i++;
		if (i == len)
			break; /* trailing ';' or empty list */
		name_start = i;
		if (!isalpha((unsigned char)text[i]))
			goto fail;
		while (i < len &&
		       (isalnum((unsigned char)text[i]) || text[i] == '_'))
			i++;
		name_end = i;
		while (i < len && is_fws(text[i]))
			i++;
		if (i == len || text[i] != '=')
			goto fail;
		i++;
		raw_start = i;
		while (i < len && text[i] != ';')
			i++;
		value_start = raw_start;
		value_end = i;
		while (value_start < value_end && is_fws(text[value_start]))
			value_start++;
		while (value_end > value_start && is_fws(text[value_end - 1]))
			value_end--;
		/* tval is printable ASCII without ';'; FWS only between. */
		for (size_t j = value_start; j < value_end; j++) {
			unsigned char c = (unsigned char)text[j];

			if (c < 0x21 && !is_fws((char)c))
				goto fail;
			if (c == 0x7f)
				goto fail;
		}
		if (tags_r->count == cap) {
			cap = cap == 0 ? 16 : cap * 2;
			tags_r->tags =
				xrealloc(tags_r->tags, cap * sizeof(*tag));
		}
		tag = &tags_r->tags[tags_r->count];
		tag->name = xstrndup(text + name_start, name_end - name_start);
		if (mailauth_tags_find(tags_r, tag->name) != NULL) {
			free(tag->name);
			goto fail;
		}
		tag->value =
			xstrndup(text + value_start, value_end - value_start);
		tag->value_off = raw_start;
		tag->value_len = i - raw_start;
		tags_r->count++;
		if (i < len)
			i++; /* ';' */
	}
	return 0;
fail:
	mailauth_tags_deinit(tags_r);
	return -1;
}

void
mailauth_tags_deinit(struct mailauth_tags *tags)
{
	for (size_t i = 0; i < tags->count; i++) {
		free(tags->tags[i].name);
		free(tags->tags[i].value);
	}
	free(tags->tags);
	memset(tags, 0, sizeof(*tags));
}

const struct mailauth_tag *
mailauth_tags_find(const struct mailauth_tags *tags, const char *name)
{
	for (size_t i = 0; i < tags->count; i++) {
		if (strcmp(tags->tags[i].name, name) == 0)
			return &tags->tags[i];
	}
	return NULL;
}

const char *
mailauth_tags_get(const struct mailauth_tags *tags, const char *name)
{
	const struct mailauth_tag *tag = mailauth_tags_find(tags, name);

	return tag == NULL ? NULL : tag->value;
}

/* Signed header selection: for each name in h=, the last instance not yet
 * used (RFC 6376 5.4.2); a name with no instance left contributes
 * nothing. */
void
mailauth_hash_headers(const struct mailauth_msg *msg, const char *h_list,
		      enum mailauth_canon canon, struct sp_buf *out)
{
	bool *used = xcalloc(msg->count + 1, sizeof(bool));
	const char *p = h_list;

	while (*p != '\0') {
		const char *start, *end;
		char *name;

		while (*p == ':' || is_fws(*p))
			p++;
		if (*p == '\0')
			break;
		start = p;
		while (*p != '\0' && *p != ':')
			p++;
		end = p;
		while (end > start && is_fws(end[-1]))
			end--;
		name = xstrndup(start, (size_t)(end - start));
		for (size_t i = msg->count; i > 0; i--) {
			const struct mailauth_header *hdr =
				&msg->headers[i - 1];

			if (!used[i - 1] && mailauth_header_is(hdr, name)) {
				used[i - 1] = true;
				mailauth_canon_header(canon, hdr->raw,
						      hdr->raw_len, false, out);
				break;
			}
		}
		free(name);
	}
	free(used);
}

/* Folding of the fields we create. */
static void
fold_append(struct sp_buf *out, size_t *col, const char *s, size_t len,
	    bool space_before)
{
	if (*col + len + (space_before ? 1 : 0) > 76 && *col > 1) {
		sp_buf_append(out, "\r\n\t", 3);
		*col = 1;
	} else if (space_before) {
		sp_buf_append(out, " ", 1);
		(*col)++;
	}
	sp_buf_append(out, s, len);
	*col += len;
}

char *
mailauth_fold(const char *field, const char *const *tags, size_t count)
{
	struct sp_buf out;
	size_t col;

	sp_buf_init(&out);
	sp_buf_printf(&out, "%s:", field);
	col = out.len;
	for (size_t i = 0; i < count; i++) {
		const char *tag = tags[i], *eq = strchr(tag, '=');
		bool last = i + 1 == count;
		bool chunked = eq != NULL && (str_has_prefix(tag, "b=") ||
					      str_has_prefix(tag, "bh=") ||
					      str_has_prefix(tag, "h="));
		size_t len = strlen(tag);

		if (!chunked || len + col < 74) {
			char *piece = xasprintf("%s%s", tag, last ? "" : ";");

			fold_append(&out, &col, piece, strlen(piece), true);
			free(piece);
			continue;
		}
		/* Long value: break between chunks (h= only after ':'). */
		fold_append(&out, &col, tag, (size_t)(eq + 1 - tag), true);
		for (const char *p = eq + 1; *p != '\0';) {
			size_t n = strlen(p);

			if (tag[0] == 'h') {
				const char *colon = strchr(p, ':');

				n = colon == NULL ? n : (size_t)(colon + 1 - p);
			} else if (n > 60) {
				n = 60;
			}
			if (col + n > 76) {
				sp_buf_append(&out, "\r\n\t", 3);
				col = 1;
			}
			sp_buf_append(&out, p, n);
			col += n;
			p += n;
		}
		if (!last) {
			sp_buf_append(&out, ";", 1);
			col++;
		}
	}
	return sp_buf_steal(&out, NULL);
}
