/*
 * The MIME tree from a scan of the raw bytes.
 *
 * GMime's parser does not report where each part starts and ends in the
 * input, and IMAP clients check BODY[n] sizes against BODYSTRUCTURE to the
 * octet, so the structure comes from here: header blocks end at the first
 * empty line, a multipart's parts lie between delimiter lines
 * ("--boundary", optional "--", then only white space, RFC 2046 5.1.1), and
 * the line ending before a delimiter belongs to the delimiter. Lines end in
 * LF, with or without CR. GMime only parses the Content-Type value.
 */
#include "mime/mime-private.h"

#include <ctype.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static pthread_once_t gmime_once = PTHREAD_ONCE_INIT;

static void
gmime_init_once(void)
{
	g_mime_init();
}

void
mime_init(void)
{
	pthread_once(&gmime_once, gmime_init_once);
}

/* End of the line at pos: the index after its LF, or end. */
static size_t
line_end(const char *raw, size_t pos, size_t end)
{
	const char *lf = memchr(raw + pos, '\n', end - pos);

	return lf == NULL ? end : (size_t)(lf - raw) + 1;
}

size_t
mime_header_block_len(const char *raw, size_t start, size_t end,
		      size_t *blank_len_r)
{
	size_t pos = start, next;

	while (pos < end) {
		next = line_end(raw, pos, end);
		if (raw[pos] == '\n' ||
		    (raw[pos] == '\r' && next - pos == 2 &&
		     raw[pos + 1] == '\n')) {
			*blank_len_r = next - pos;
			return next - start;
		}
		pos = next;
	}
	*blank_len_r = 0;
	return end - start;
}

bool
mime_field_next(const char *raw, size_t *pos, size_t hend,
		struct mime_field *field_r)
{
	size_t p = *pos, next, i;

	if (p >= hend)
		return false;
	field_r->start = p;
	next = line_end(raw, p, hend);
	field_r->name_len = 0;
	field_r->value_start = next;
	for (i = p; i < next; i++) {
		if (raw[i] == ':') {
			size_t n = i - p;

			while (n > 0 && (raw[p + n - 1] == ' ' ||
					 raw[p + n - 1] == '\t'))
				n--;
			field_r->name_len = n;
			field_r->value_start = i + 1;
			break;
		}
		if (raw[i] == '\r' || raw[i] == '\n')
			break;
	}
	/* Continuation lines start with white space. */
	while (next < hend && (raw[next] == ' ' || raw[next] == '\t'))
		next = line_end(raw, next, hend);
	field_r->end = next;
	*pos = next;
	return true;
}

bool
mime_field_is(const char *raw, const struct mime_field *field,
	      const char *name, size_t name_len)
{
	return field->name_len == name_len &&
	       strncasecmp(raw + field->start, name, name_len) == 0;
}

char *
mime_field_value(const char *raw, const struct mime_field *field)
{
	size_t i, n = 0, start = field->value_start, end = field->end;
	char *s;

	if (start > end)
		start = end;
	s = xmalloc(end - start + 1);
	for (i = start; i < end; i++) {
		char c = raw[i];

		if (c == '\r' || c == '\n')
			continue;
		if (c == '\0')
			c = ' ';
		if (n == 0 && (c == ' ' || c == '\t'))
			continue;
		s[n++] = c;
	}
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	s[n] = '\0';
	return s;
}

static char *
header_find(const char *raw, size_t start, size_t hend, const char *name)
{
	struct mime_field field;
	size_t pos = start, name_len = strlen(name);

	while (mime_field_next(raw, &pos, hend, &field)) {
		if (mime_field_is(raw, &field, name, name_len))
			return mime_field_value(raw, &field);
	}
	return NULL;
}

char *
mime_node_header(const char *raw, const struct mime_node *node,
		 const char *name)
{
	return header_find(raw, node->start, node->start + node->header_len,
			   name);
}

size_t
mime_count_lines(const char *raw, size_t start, size_t len)
{
	const char *p = raw + start, *end = raw + start + len, *lf;
	size_t lines = 0;

	while (p < end && (lf = memchr(p, '\n', end - p)) != NULL) {
		lines++;
		p = lf + 1;
	}
	if (p < end)
		lines++;
	return lines;
}

/* RFC 2045 token characters, for validating a parsed type. */
static bool
is_token(const char *s)
{
	if (s == NULL || *s == '\0')
		return false;
	for (; *s != '\0'; s++) {
		unsigned char c = *s;

		if (c <= ' ' || c >= 0x7f || strchr("()<>@,;:\\\"/[]?=", c))
			return false;
	}
	return true;
}

/* Whether a Content-Type value starts with "type/subtype" (GMime falls
 * back to application/octet-stream on garbage; RFC 2045 5.2 wants
 * text/plain there). */
static bool
content_type_is_valid(const char *value)
{
	const char *p = value;
	size_t n;

	while (*p == ' ' || *p == '\t')
		p++;
	n = strcspn(p, " \t()<>@,;:\\\"/[]?=");
	if (n == 0)
		return false;
	p += n;
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p++ != '/')
		return false;
	while (*p == ' ' || *p == '\t')
		p++;
	return strcspn(p, " \t()<>@,;:\\\"/[]?=") > 0;
}

static char *
lower_dup(const char *s)
{
	char *d = xstrdup(s);

	str_lower(d);
	return d;
}

static void
node_set_type(struct mime_node *node, const char *raw, bool in_digest)
{
	char *value = mime_node_header(raw, node, "Content-Type");
	GMimeContentType *ct = NULL;

	if (value != NULL && content_type_is_valid(value)) {
		ct = g_mime_content_type_parse(NULL, value);
		if (ct != NULL &&
		    (!is_token(g_mime_content_type_get_media_type(ct)) ||
		     !is_token(g_mime_content_type_get_media_subtype(ct)))) {
			g_object_unref(ct);
			ct = NULL;
		}
	}
	free(value);
	if (ct != NULL) {
		node->type = lower_dup(g_mime_content_type_get_media_type(ct));
		node->subtype =
			lower_dup(g_mime_content_type_get_media_subtype(ct));
		node->content_type = ct;
	} else if (in_digest) {
		node->type = xstrdup("message");
		node->subtype = xstrdup("rfc822");
	} else {
		node->type = xstrdup("text");
		node->subtype = xstrdup("plain");
	}
}

static void
node_make_opaque(struct mime_node *node)
{
	free(node->type);
	free(node->subtype);
	node->type = xstrdup("application");
	node->subtype = xstrdup("octet-stream");
	node->kind = MIME_NODE_LEAF;
}

/* Whether the line [pos, eol) is a delimiter of `boundary`. */
static bool
is_delimiter(const char *raw, size_t pos, size_t eol, const char *boundary,
	     size_t blen, bool *close_r)
{
	size_t p;

	if (eol - pos < blen + 2 || raw[pos] != '-' || raw[pos + 1] != '-' ||
	    memcmp(raw + pos + 2, boundary, blen) != 0)
		return false;
	p = pos + 2 + blen;
	*close_r = false;
	if (eol - p >= 2 && raw[p] == '-' && raw[p + 1] == '-') {
		*close_r = true;
		p += 2;
	}
	for (; p < eol; p++) {
		if (raw[p] != ' ' && raw[p] != '\t' && raw[p] != '\r' &&
		    raw[p] != '\n')
			return false;
	}
	return true;
}

/* Finds the next delimiter line starting at a line start at or after pos.
 * Returns its start, or end when there is none. */
static size_t
find_delimiter(const char *raw, size_t pos, size_t end, const char *boundary,
	       size_t blen, size_t *next_r, bool *close_r)
{
	while (pos < end) {
		size_t eol = line_end(raw, pos, end);

		if (raw[pos] == '-' &&
		    is_delimiter(raw, pos, eol, boundary, blen, close_r)) {
			*next_r = eol;
			return pos;
		}
		pos = eol;
	}
	return end;
}

struct build_ctx {
	struct mime_tree *tree;
	const char *raw;
	unsigned max_depth, max_parts;
};

static struct mime_node *node_build(struct build_ctx *ctx, size_t start,
				    size_t end, unsigned depth,
				    bool in_digest);

static void
node_add_child(struct mime_node *node, struct mime_node **tail,
	       struct mime_node *child)
{
	if (*tail == NULL)
		node->children = child;
	else
		(*tail)->next = child;
	*tail = child;
	node->child_count++;
}

static void
multipart_build(struct build_ctx *ctx, struct mime_node *node)
{
	const char *raw = ctx->raw;
	const char *boundary =
		g_mime_content_type_get_parameter(node->content_type,
						  "boundary");
	size_t blen = strlen(boundary);
	size_t end = node->body_start + node->body_len;
	size_t pos, next, part_start, part_end;
	bool close = false, digest = strcmp(node->subtype, "digest") == 0;
	struct mime_node *tail = NULL;

	pos = find_delimiter(raw, node->body_start, end, boundary, blen,
			     &next, &close);
	if (pos == end)
		return; /* no delimiter at all: no parts */
	part_start = next;
	while (!close) {
		if (ctx->tree->part_count >= ctx->max_parts) {
			ctx->tree->capped = true;
			return;
		}
		pos = find_delimiter(raw, part_start, end, boundary, blen,
				     &next, &close);
		if (pos == end) {
			/* Truncated: the last part runs to the end. */
			if (part_start >= end && node->child_count > 0)
				return;
			part_end = end;
		} else if (pos == part_start) {
			part_end = pos;
		} else {
			/* The line ending before a delimiter is the
			 * delimiter's. */
			part_end = pos - 1;
			if (part_end > part_start && raw[part_end - 1] == '\r')
				part_end--;
		}
		node_add_child(node, &tail,
			       node_build(ctx, part_start, part_end,
					  node->depth + 1, digest));
		if (pos == end)
			return;
		part_start = next;
	}
}

static struct mime_node *
node_build(struct build_ctx *ctx, size_t start, size_t end, unsigned depth,
	   bool in_digest)
{
	struct mime_node *node = xcalloc(1, sizeof(*node));
	size_t blank_len;

	ctx->tree->part_count++;
	if (depth > ctx->tree->max_depth_seen)
		ctx->tree->max_depth_seen = depth;
	node->depth = depth;
	node->start = start;
	node->header_len =
		mime_header_block_len(ctx->raw, start, end, &blank_len);
	node->body_start = start + node->header_len;
	node->body_len = end - node->body_start;
	node_set_type(node, ctx->raw, in_digest);

	if (strcmp(node->type, "multipart") == 0) {
		const char *boundary =
			node->content_type == NULL ?
				NULL :
				g_mime_content_type_get_parameter(
					node->content_type, "boundary");

		if (boundary == NULL || *boundary == '\0') {
			node_make_opaque(node);
		} else if (depth >= ctx->max_depth) {
			ctx->tree->capped = true;
			node_make_opaque(node);
		} else {
			node->kind = MIME_NODE_MULTIPART;
			multipart_build(ctx, node);
		}
	} else if (strcmp(node->type, "message") == 0 &&
		   strcmp(node->subtype, "rfc822") == 0) {
		char *cte = mime_node_header(ctx->raw, node,
					     "Content-Transfer-Encoding");
		bool encoded = cte != NULL &&
			       (strcasecmp(cte, "base64") == 0 ||
				strcasecmp(cte, "quoted-printable") == 0);

		free(cte);
		if (encoded) {
			/* RFC 2046 5.2.1 forbids it; we do not decode to
			 * nest, the part stays opaque. */
			node_make_opaque(node);
		} else if (depth >= ctx->max_depth ||
			   ctx->tree->part_count >= ctx->max_parts) {
			ctx->tree->capped = true;
			node_make_opaque(node);
		} else {
			node->kind = MIME_NODE_MESSAGE;
			node->children =
				node_build(ctx, node->body_start,
					   node->body_start + node->body_len,
					   depth + 1, false);
			node->child_count = 1;
		}
	}
	return node;
}

void
mime_tree_build(struct mime_tree *tree, const char *raw, size_t len,
		unsigned max_depth, unsigned max_parts)
{
	struct build_ctx ctx = {
		.tree = tree,
		.raw = raw,
		.max_depth = max_depth,
		.max_parts = max_parts,
	};

	mime_init();
	memset(tree, 0, sizeof(*tree));
	tree->root = node_build(&ctx, 0, len, 0, false);
}

static void
node_free(struct mime_node *node)
{
	while (node != NULL) {
		struct mime_node *next = node->next;

		node_free(node->children);
		if (node->content_type != NULL)
			g_object_unref(node->content_type);
		free(node->type);
		free(node->subtype);
		free(node);
		node = next;
	}
}

void
mime_tree_deinit(struct mime_tree *tree)
{
	node_free(tree->root);
	tree->root = NULL;
}
