/*
 * Body text for the full-text index: transfer decoding (GMime), charset
 * conversion to UTF-8 (GMime's iconv names and cache), HTML reduced to its
 * words. The result is always valid UTF-8: bytes that do not convert
 * become U+FFFD instead of failing the whole message.
 */
#include "mime/mime-private.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define REPLACEMENT "\xEF\xBF\xBD"

char *
mime_node_decode(const char *raw, const struct mime_node *node,
		 size_t max_in, size_t *len_r)
{
	size_t in_len = node->body_len < max_in ? node->body_len : max_in;
	char *cte = mime_node_header(raw, node, "Content-Transfer-Encoding");
	GMimeContentEncoding enc = GMIME_CONTENT_ENCODING_DEFAULT;
	GMimeEncoding state;
	char *out;
	size_t n;

	if (cte != NULL)
		enc = g_mime_content_encoding_from_string(cte);
	free(cte);
	if (enc != GMIME_CONTENT_ENCODING_BASE64 &&
	    enc != GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE &&
	    enc != GMIME_CONTENT_ENCODING_UUENCODE) {
		/* Not xstrndup(): the body may hold NULs. */
		out = xmalloc(in_len + 1);
		memcpy(out, raw + node->body_start, in_len);
		out[in_len] = '\0';
		*len_r = in_len;
		return out;
	}
	g_mime_encoding_init_decode(&state, enc);
	out = xmalloc(g_mime_encoding_outlen(&state, in_len) + 1);
	n = g_mime_encoding_flush(&state, raw + node->body_start, in_len, out);
	out[n] = '\0';
	*len_r = n;
	return out;
}

/* Appends data as UTF-8, each invalid byte (and NUL) as U+FFFD. */
static void
append_valid_utf8(struct sp_buf *out, const char *data, size_t len)
{
	const gchar *end;

	while (len > 0) {
		size_t valid;

		if (g_utf8_validate(data, (gssize)len, &end)) {
			sp_buf_append(out, data, len);
			return;
		}
		valid = (size_t)(end - data);
		sp_buf_append(out, data, valid);
		sp_buf_append_str(out, REPLACEMENT);
		data += valid + 1;
		len -= valid + 1;
	}
}

static bool
charset_is_utf8_compatible(const char *charset)
{
	return charset == NULL || strcasecmp(charset, "us-ascii") == 0 ||
	       strcasecmp(charset, "ascii") == 0 ||
	       strcasecmp(charset, "utf-8") == 0 ||
	       strcasecmp(charset, "utf8") == 0;
}

void
mime_text_append_utf8(struct sp_buf *out, const char *data, size_t len,
		      const char *charset)
{
	iconv_t cd;
	char *in = (char *)data, buf[4096];
	size_t inleft = len;

	if (charset_is_utf8_compatible(charset)) {
		append_valid_utf8(out, data, len);
		return;
	}
	cd = g_mime_iconv_open("UTF-8", g_mime_charset_iconv_name(charset));
	if (cd == (iconv_t)-1) {
		/* Unknown charset: keep what is valid UTF-8. */
		append_valid_utf8(out, data, len);
		return;
	}
	while (inleft > 0) {
		char *outp = buf;
		size_t outleft = sizeof(buf);
		size_t rc = iconv(cd, &in, &inleft, &outp, &outleft);
		int err = errno;

		append_valid_utf8(out, buf, sizeof(buf) - outleft);
		if (rc != (size_t)-1)
			break;
		if (err == E2BIG)
			continue;
		/* EILSEQ or EINVAL (cut short): one byte is lost. */
		sp_buf_append_str(out, REPLACEMENT);
		in++;
		inleft--;
		if (err != EILSEQ && err != EINVAL)
			break;
	}
	g_mime_iconv_close(cd);
}

static const struct {
	const char *name;
	const char *text;
} html_entities[] = {
	{ "amp", "&" },	  { "lt", "<" },      { "gt", ">" },
	{ "quot", "\"" }, { "apos", "'" },    { "nbsp", " " },
	{ "copy", "\xC2\xA9" }, { "reg", "\xC2\xAE" },
};

/* Decodes the entity at html[i] == '&'; returns bytes consumed, 0 when it
 * is not one we know. */
static size_t
html_entity(struct sp_buf *out, const char *html, size_t i, size_t len)
{
	size_t j, k, n = len - i;

	if (n >= 3 && html[i + 1] == '#') {
		unsigned long cp = 0;
		bool hex = html[i + 2] == 'x' || html[i + 2] == 'X';
		gchar utf8[6];

		for (j = i + (hex ? 3 : 2); j < len && j - i < 10; j++) {
			char c = html[j];

			if (c >= '0' && c <= '9')
				cp = cp * (hex ? 16 : 10) + (unsigned)(c - '0');
			else if (hex && c >= 'a' && c <= 'f')
				cp = cp * 16 + (unsigned)(c - 'a' + 10);
			else if (hex && c >= 'A' && c <= 'F')
				cp = cp * 16 + (unsigned)(c - 'A' + 10);
			else
				break;
		}
		if (j < len && html[j] == ';' && j > i + (hex ? 3 : 2)) {
			if (cp == 0 || cp > 0x10FFFF ||
			    (cp >= 0xD800 && cp <= 0xDFFF))
				sp_buf_append_str(out, REPLACEMENT);
			else
				sp_buf_append(out, utf8,
					      (size_t)g_unichar_to_utf8(
						      (gunichar)cp, utf8));
			return j + 1 - i;
		}
		return 0;
	}
	for (k = 0; k < SP_N_ELEMENTS(html_entities); k++) {
		size_t nl = strlen(html_entities[k].name);

		if (n > nl + 1 &&
		    strncasecmp(html + i + 1, html_entities[k].name, nl) == 0 &&
		    html[i + 1 + nl] == ';') {
			sp_buf_append_str(out, html_entities[k].text);
			return nl + 2;
		}
	}
	return 0;
}

static void
append_space(struct sp_buf *out)
{
	if (out->len > 0 && out->data[out->len - 1] != ' ' &&
	    out->data[out->len - 1] != '\n')
		sp_buf_append(out, " ", 1);
}

/* Index just past `needle` (case-insensitive) from i, or len. */
static size_t
skip_past(const char *s, size_t i, size_t len, const char *needle)
{
	size_t nl = strlen(needle);

	for (; i + nl <= len; i++) {
		if (strncasecmp(s + i, needle, nl) == 0)
			return i + nl;
	}
	return len;
}

void
mime_text_append_html(struct sp_buf *out, const char *html, size_t len)
{
	size_t i = 0;

	while (i < len) {
		char c = html[i];

		if (c == '<') {
			if (len - i >= 4 && strncmp(html + i, "<!--", 4) == 0) {
				i = skip_past(html, i + 4, len, "-->");
			} else if (len - i >= 7 &&
				   strncasecmp(html + i, "<script", 7) == 0) {
				i = skip_past(html, i + 7, len, "</script");
				i = skip_past(html, i, len, ">");
			} else if (len - i >= 6 &&
				   strncasecmp(html + i, "<style", 6) == 0) {
				i = skip_past(html, i + 6, len, "</style");
				i = skip_past(html, i, len, ">");
			} else {
				i = skip_past(html, i + 1, len, ">");
			}
			/* A tag separates words (</td><td>, <br>). */
			append_space(out);
		} else if (c == '&') {
			size_t used = html_entity(out, html, i, len);

			if (used == 0) {
				sp_buf_append(out, "&", 1);
				used = 1;
			}
			i += used;
		} else if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
			append_space(out);
			i++;
		} else {
			sp_buf_append(out, &c, 1);
			i++;
		}
	}
}

static const char *
node_charset(const struct mime_node *node)
{
	return node->content_type == NULL ?
		       NULL :
		       g_mime_content_type_get_parameter(node->content_type,
							 "charset");
}

/* Encoded input worth reading for `budget` bytes of index text: quoted-
 * printable takes up to three bytes per byte, and markup is most of an
 * HTML part. A huge part is thus never decoded whole. */
#define TEXT_INPUT_FACTOR 4
#define HTML_INPUT_FACTOR 16

static void
extract_leaf(struct sp_buf *out, const char *raw,
	     const struct mime_node *node, size_t max)
{
	bool html;
	char *decoded;
	size_t len, budget = max - out->len;

	if (strcmp(node->type, "text") != 0)
		return;
	html = strcmp(node->subtype, "html") == 0;
	if (!html && strcmp(node->subtype, "plain") != 0)
		return;
	decoded = mime_node_decode(raw, node,
				   budget * (html ? HTML_INPUT_FACTOR :
						    TEXT_INPUT_FACTOR) +
					   4096,
				   &len);
	if (out->len > 0 && out->data[out->len - 1] != '\n')
		sp_buf_append(out, "\n", 1);
	if (html) {
		struct sp_buf utf8;

		sp_buf_init(&utf8);
		mime_text_append_utf8(&utf8, decoded, len, node_charset(node));
		mime_text_append_html(out, utf8.data, utf8.len);
		sp_buf_deinit(&utf8);
	} else {
		mime_text_append_utf8(out, decoded, len, node_charset(node));
	}
	free(decoded);
}

static void
extract(struct sp_buf *out, const char *raw, const struct mime_node *node,
	size_t max)
{
	const struct mime_node *child, *pick = NULL;

	if (out->len >= max)
		return;
	switch (node->kind) {
	case MIME_NODE_LEAF:
		extract_leaf(out, raw, node, max);
		break;
	case MIME_NODE_MESSAGE:
		extract(out, raw, node->children, max);
		break;
	case MIME_NODE_MULTIPART:
		if (strcmp(node->subtype, "alternative") != 0) {
			for (child = node->children; child != NULL;
			     child = child->next)
				extract(out, raw, child, max);
			break;
		}
		/* One version of the same text: plain if there is one,
		 * else the last (richest) alternative. */
		for (child = node->children; child != NULL;
		     child = child->next) {
			if (strcmp(child->type, "text") == 0 &&
			    strcmp(child->subtype, "plain") == 0) {
				pick = child;
				break;
			}
			pick = child;
		}
		if (pick != NULL)
			extract(out, raw, pick, max);
		break;
	}
}

void
mime_text_extract(struct sp_buf *out, const char *raw,
		  const struct mime_node *node, size_t max)
{
	extract(out, raw, node, max);
	if (out->len > max) {
		size_t n = max;

		/* Cut on a character boundary. */
		while (n > 0 && ((unsigned char)out->data[n] & 0xC0) == 0x80)
			n--;
		out->len = n;
		out->data[n] = '\0';
	}
}
