/*
 * IMAP BODY[section] (RFC 3501 6.4.5) straight from the raw bytes.
 *
 * Part numbers walk the tree: in a multipart, n is its n-th part; a
 * message that is not multipart has one part, 1, its body; a
 * message/rfc822 part continues into the message it carries. A part's
 * bytes are its body exactly as in the raw message (BODYSTRUCTURE gives
 * the same size), MIME is its header block, and HEADER and TEXT exist only
 * for the top level and message/rfc822 parts.
 */
#include "mime/mime-private.h"

#include <ctype.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SECTION_MAX_NUMBERS 64
#define SECTION_MAX_FIELDS 256

enum section_text {
	SECTION_ALL, /* no text part: the whole (sub)message or part body */
	SECTION_HEADER,
	SECTION_TEXT,
	SECTION_MIME,
	SECTION_FIELDS,
	SECTION_FIELDS_NOT,
};

struct section_spec {
	unsigned numbers[SECTION_MAX_NUMBERS];
	unsigned number_count;
	enum section_text text;
	/* HEADER.FIELDS names, each [start, start+len) into the spec. */
	const char *names[SECTION_MAX_FIELDS];
	size_t name_lens[SECTION_MAX_FIELDS];
	unsigned name_count;
};

static bool
has_keyword(const char **p, const char *keyword)
{
	size_t n = strlen(keyword);

	if (strncasecmp(*p, keyword, n) != 0)
		return false;
	*p += n;
	return true;
}

/* IMAP ASTRING-CHAR minus ']' (section text ends at ']'). */
static bool
is_atom_char(char c)
{
	return (unsigned char)c > ' ' && (unsigned char)c < 0x7f &&
	       strchr("(){%*\"\\]", c) == NULL;
}

static int
parse_field_names(const char *p, struct section_spec *spec)
{
	if (*p++ != ' ' || *p++ != '(')
		return -1;
	for (;;) {
		const char *start, *end;

		if (spec->name_count == SECTION_MAX_FIELDS)
			return -1;
		if (*p == '"') {
			/* Field names need no escapes; refuse them rather
			 * than unescape. */
			start = ++p;
			while (*p != '"' && *p != '\0' && *p != '\\')
				p++;
			if (*p != '"' || p == start)
				return -1;
			end = p++;
		} else {
			start = p;
			while (is_atom_char(*p))
				p++;
			if (p == start)
				return -1;
			end = p;
		}
		spec->names[spec->name_count] = start;
		spec->name_lens[spec->name_count++] = (size_t)(end - start);
		if (*p == ')')
			break;
		if (*p++ != ' ')
			return -1;
	}
	return p[1] == '\0' ? 0 : -1;
}

static int
section_parse(const char *p, struct section_spec *spec)
{
	memset(spec, 0, sizeof(*spec));
	while (*p >= '0' && *p <= '9') {
		unsigned long n = 0;

		if (*p == '0' || spec->number_count == SECTION_MAX_NUMBERS)
			return -1;
		while (*p >= '0' && *p <= '9') {
			n = n * 10 + (unsigned)(*p++ - '0');
			if (n > UINT_MAX)
				return -1;
		}
		spec->numbers[spec->number_count++] = (unsigned)n;
		if (*p == '\0')
			return 0;
		if (*p++ != '.' || *p == '\0')
			return -1;
	}
	if (*p == '\0')
		return 0;
	if (has_keyword(&p, "HEADER.FIELDS.NOT")) {
		spec->text = SECTION_FIELDS_NOT;
		return parse_field_names(p, spec);
	}
	if (has_keyword(&p, "HEADER.FIELDS")) {
		spec->text = SECTION_FIELDS;
		return parse_field_names(p, spec);
	}
	if (has_keyword(&p, "HEADER"))
		spec->text = SECTION_HEADER;
	else if (has_keyword(&p, "TEXT"))
		spec->text = SECTION_TEXT;
	else if (spec->number_count > 0 && has_keyword(&p, "MIME"))
		spec->text = SECTION_MIME;
	else
		return -1;
	return *p == '\0' ? 0 : -1;
}

static const struct mime_node *
nth_child(const struct mime_node *node, unsigned n)
{
	const struct mime_node *child = node->children;

	while (child != NULL && --n > 0)
		child = child->next;
	return child;
}

/* Part n of a message (the top level or an encapsulated one). */
static const struct mime_node *
message_part(const struct mime_node *msg, unsigned n)
{
	if (msg->kind == MIME_NODE_MULTIPART)
		return nth_child(msg, n);
	return n == 1 ? msg : NULL;
}

static const struct mime_node *
resolve(const struct mime_node *root, const struct section_spec *spec)
{
	const struct mime_node *part = NULL;
	unsigned i;

	for (i = 0; i < spec->number_count; i++) {
		unsigned n = spec->numbers[i];

		if (part == NULL)
			part = message_part(root, n);
		else if (part->kind == MIME_NODE_MULTIPART)
			part = nth_child(part, n);
		else if (part->kind == MIME_NODE_MESSAGE)
			part = message_part(part->children, n);
		else
			return NULL;
		if (part == NULL)
			return NULL;
	}
	return part;
}

static bool
field_listed(const char *raw, const struct mime_field *field,
	     const struct section_spec *spec)
{
	unsigned i;

	for (i = 0; i < spec->name_count; i++) {
		if (mime_field_is(raw, field, spec->names[i],
				  spec->name_lens[i]))
			return true;
	}
	return false;
}

static void
append_fields(struct sp_buf *out, const char *raw,
	      const struct mime_node *msg, const struct section_spec *spec)
{
	size_t blank_len, pos = msg->start, hend;
	struct mime_field field;
	bool want = spec->text == SECTION_FIELDS;

	mime_header_block_len(raw, msg->start, msg->start + msg->header_len,
			      &blank_len);
	hend = msg->start + msg->header_len - blank_len;
	while (mime_field_next(raw, &pos, hend, &field)) {
		if (field_listed(raw, &field, spec) != want)
			continue;
		sp_buf_append(out, raw + field.start, field.end - field.start);
		if (raw[field.end - 1] != '\n')
			sp_buf_append(out, "\r\n", 2);
	}
	sp_buf_append(out, "\r\n", 2);
}

int
mime_section(const void *raw_data, size_t len, const char *section,
	     struct sp_buf *out)
{
	const char *raw = raw_data;
	const struct mime_node *node, *msg;
	struct section_spec *spec = xmalloc(sizeof(*spec));
	struct mime_tree tree;

	if (section_parse(section, spec) < 0) {
		free(spec);
		return -1;
	}
	if (spec->number_count == 0 && spec->text == SECTION_ALL) {
		sp_buf_append(out, raw, len);
		free(spec);
		return 0;
	}
	mime_tree_build(&tree, raw, len, MIME_MAX_DEPTH, MIME_MAX_PARTS);
	node = spec->number_count == 0 ? tree.root : resolve(tree.root, spec);
	if (node == NULL)
		goto out;

	switch (spec->text) {
	case SECTION_ALL:
		sp_buf_append(out, raw + node->body_start, node->body_len);
		goto out;
	case SECTION_MIME:
		sp_buf_append(out, raw + node->start, node->header_len);
		goto out;
	default:
		break;
	}
	/* HEADER, TEXT and HEADER.FIELDS: of the top level, or of the
	 * message a message/rfc822 part carries. */
	if (spec->number_count == 0)
		msg = tree.root;
	else if (node->kind == MIME_NODE_MESSAGE)
		msg = node->children;
	else
		goto out;
	switch (spec->text) {
	case SECTION_HEADER:
		sp_buf_append(out, raw + msg->start, msg->header_len);
		break;
	case SECTION_TEXT:
		sp_buf_append(out, raw + msg->body_start, msg->body_len);
		break;
	default:
		append_fields(out, raw, msg, spec);
		break;
	}
out:
	mime_tree_deinit(&tree);
	free(spec);
	return 0;
}
