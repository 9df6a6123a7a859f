/*
 * mime_parse() and the small entry points: one scan builds the tree
 * (scan.c), then everything the store caches is derived from it.
 */
#include "mime/mime-private.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Decoded header text as valid UTF-8; NULL stays NULL. */
static char *
decode_text(const char *value)
{
	struct sp_buf buf;
	char *decoded;

	if (value == NULL)
		return NULL;
	decoded = g_mime_utils_header_decode_text(NULL, value);
	sp_buf_init(&buf);
	mime_text_append_utf8(&buf, decoded != NULL ? decoded : value,
			      strlen(decoded != NULL ? decoded : value), NULL);
	g_free(decoded);
	return sp_buf_steal(&buf, NULL);
}

static char *
sanitized_dup(const char *s)
{
	struct sp_buf buf;

	if (s == NULL)
		return NULL;
	sp_buf_init(&buf);
	mime_text_append_utf8(&buf, s, strlen(s), NULL);
	return sp_buf_steal(&buf, NULL);
}

/* "Name <a@b>, c@d, group: e@f;" with names decoded. Not
 * internet_address_list_to_string(): that converts every domain with
 * libidn2, a quarter of the whole parse, for text only SEARCH reads. */
static void
format_addresses(struct sp_buf *out, InternetAddressList *list)
{
	int i, n = internet_address_list_length(list);

	for (i = 0; i < n; i++) {
		InternetAddress *ia =
			internet_address_list_get_address(list, i);
		const char *name = internet_address_get_name(ia);
		const char *addr;

		if (i > 0)
			sp_buf_append_str(out, ", ");
		if (INTERNET_ADDRESS_IS_GROUP(ia)) {
			sp_buf_printf(out, "%s: ", name != NULL ? name : "");
			format_addresses(out,
					 internet_address_group_get_members(
						 INTERNET_ADDRESS_GROUP(ia)));
			sp_buf_append_str(out, ";");
		} else if (INTERNET_ADDRESS_IS_MAILBOX(ia)) {
			addr = internet_address_mailbox_get_addr(
				INTERNET_ADDRESS_MAILBOX(ia));
			if (addr == NULL)
				addr = "";
			if (name != NULL && *name != '\0')
				sp_buf_printf(out, "%s <%s>", name, addr);
			else
				sp_buf_append_str(out, addr);
		}
	}
}

static char *
decode_addresses(const char *value)
{
	InternetAddressList *list;
	struct sp_buf text;
	char *result;

	if (value == NULL)
		return NULL;
	list = internet_address_list_parse(NULL, value);
	if (list == NULL || internet_address_list_length(list) == 0) {
		if (list != NULL)
			g_object_unref(list);
		return decode_text(value);
	}
	sp_buf_init(&text);
	format_addresses(&text, list);
	g_object_unref(list);
	result = sanitized_dup(text.data != NULL ? text.data : "");
	sp_buf_deinit(&text);
	return result;
}

static time_t
parse_date(const char *value)
{
	GDateTime *dt;
	gint64 t;

	if (value == NULL)
		return 0;
	dt = g_mime_utils_header_decode_date(value);
	if (dt == NULL)
		return 0;
	t = g_date_time_to_unix(dt);
	g_date_time_unref(dt);
	return t < 0 ? 0 : (time_t)t;
}

/* Whether a leaf is worth storing once per mailbox: anything but the
 * inline text a reader sees as the message. */
static bool
leaf_is_attachment(const struct mime_node *node, const char *disposition)
{
	bool inline_text = strcmp(node->type, "text") == 0 &&
			   (strcmp(node->subtype, "plain") == 0 ||
			    strcmp(node->subtype, "html") == 0);

	if (node->body_len == 0)
		return false;
	if (disposition != NULL && strcasecmp(disposition, "attachment") == 0)
		return true;
	return !inline_text;
}

static void
add_attachment(struct mime_info *info, size_t *cap, const char *raw,
	       const struct mime_node *node)
{
	char *value = mime_node_header(raw, node, "Content-Disposition");
	GMimeContentDisposition *disp = NULL;
	const char *filename = NULL, *kind = NULL;
	struct mime_attachment *att;
	char *cte;

	if (value != NULL) {
		disp = g_mime_content_disposition_parse(NULL, value);
		free(value);
		if (disp != NULL) {
			kind = g_mime_content_disposition_get_disposition(disp);
			filename = g_mime_content_disposition_get_parameter(
				disp, "filename");
		}
	}
	if (!leaf_is_attachment(node, kind)) {
		if (disp != NULL)
			g_object_unref(disp);
		return;
	}
	if (filename == NULL && node->content_type != NULL)
		filename = g_mime_content_type_get_parameter(node->content_type,
							     "name");
	if (info->attachment_count == *cap) {
		*cap = *cap == 0 ? 4 : *cap * 2;
		info->attachments = xrealloc(info->attachments,
					     *cap * sizeof(*info->attachments));
	}
	att = &info->attachments[info->attachment_count++];
	att->body_offset = node->body_start;
	att->body_len = node->body_len;
	att->content_type = xasprintf("%s/%s", node->type, node->subtype);
	att->filename = filename != NULL && *filename != '\0' ?
				sanitized_dup(filename) :
				NULL;
	cte = mime_node_header(raw, node, "Content-Transfer-Encoding");
	if (cte == NULL || *cte == '\0') {
		free(cte);
		cte = xstrdup("7bit");
	}
	str_lower(cte);
	att->encoding = cte;
	if (disp != NULL)
		g_object_unref(disp);
}

static void
collect_attachments(struct mime_info *info, size_t *cap, const char *raw,
		    const struct mime_node *node)
{
	const struct mime_node *child;

	switch (node->kind) {
	case MIME_NODE_LEAF:
		add_attachment(info, cap, raw, node);
		break;
	case MIME_NODE_MESSAGE:
	case MIME_NODE_MULTIPART:
		for (child = node->children; child != NULL; child = child->next)
			collect_attachments(info, cap, raw, child);
		break;
	}
}

int
mime_parse(const void *raw_data, size_t len, struct mime_info **info_r,
	   const char **error_r)
{
	const char *raw = raw_data;
	struct mime_info *info;
	struct mime_tree tree;
	struct mime_node *root;
	struct sp_buf buf;
	size_t cap = 0;
	char *value;

	*info_r = NULL;
	if (len == 0) {
		*error_r = "empty message";
		return -1;
	}
	mime_tree_build(&tree, raw, len, MIME_MAX_DEPTH, MIME_MAX_PARTS);
	root = tree.root;
	info = xcalloc(1, sizeof(*info));
	info->header_len = root->header_len;
	info->part_count = tree.part_count;

	sp_buf_init(&buf);
	mime_imap_write_envelope(&buf, raw, root);
	info->envelope = sp_buf_steal(&buf, NULL);
	mime_imap_write_body(&buf, raw, root, false);
	info->body = sp_buf_steal(&buf, NULL);
	mime_imap_write_body(&buf, raw, root, true);
	info->bodystructure = sp_buf_steal(&buf, NULL);

	value = mime_node_header(raw, root, "Subject");
	info->subject = decode_text(value);
	free(value);
#define ADDRESS_FIELD(field, name)                                    \
	value = mime_node_header(raw, root, name);                    \
	info->field = decode_addresses(value);                        \
	free(value)
	ADDRESS_FIELD(from, "From");
	ADDRESS_FIELD(to, "To");
	ADDRESS_FIELD(cc, "Cc");
	ADDRESS_FIELD(bcc, "Bcc");
	ADDRESS_FIELD(reply_to, "Reply-To");
	ADDRESS_FIELD(sender, "Sender");
#undef ADDRESS_FIELD
	value = mime_node_header(raw, root, "Message-ID");
	info->message_id = sanitized_dup(value);
	free(value);
	value = mime_node_header(raw, root, "In-Reply-To");
	info->in_reply_to = sanitized_dup(value);
	free(value);
	value = mime_node_header(raw, root, "References");
	info->references = sanitized_dup(value);
	free(value);
	value = mime_node_header(raw, root, "Date");
	info->date = parse_date(value);
	free(value);

	mime_text_extract(&buf, raw, root, MIME_TEXT_MAX);
	info->text = sp_buf_steal(&buf, NULL);
	if (info->text == NULL)
		info->text = xstrdup("");
	collect_attachments(info, &cap, raw, root);

	sp_buf_deinit(&buf);
	mime_tree_deinit(&tree);
	*info_r = info;
	return 0;
}

void
mime_info_destroy(struct mime_info **_info)
{
	struct mime_info *info = *_info;
	size_t i;

	if (info == NULL)
		return;
	*_info = NULL;
	free(info->envelope);
	free(info->body);
	free(info->bodystructure);
	free(info->subject);
	free(info->from);
	free(info->to);
	free(info->cc);
	free(info->bcc);
	free(info->reply_to);
	free(info->sender);
	free(info->message_id);
	free(info->in_reply_to);
	free(info->references);
	free(info->text);
	for (i = 0; i < info->attachment_count; i++) {
		free(info->attachments[i].content_type);
		free(info->attachments[i].filename);
		free(info->attachments[i].encoding);
	}
	free(info->attachments);
	free(info);
}

char *
mime_header_get_raw(const void *raw_data, size_t len, const char *name)
{
	const char *raw = raw_data;
	struct mime_field field;
	size_t blank_len, pos = 0, name_len = strlen(name);
	size_t hend = mime_header_block_len(raw, 0, len, &blank_len);

	while (mime_field_next(raw, &pos, hend, &field)) {
		if (mime_field_is(raw, &field, name, name_len))
			return mime_field_value(raw, &field);
	}
	return NULL;
}

char *
mime_header_get(const void *raw, size_t len, const char *name)
{
	char *value = mime_header_get_raw(raw, len, name), *decoded;

	if (value == NULL)
		return NULL;
	mime_init();
	decoded = decode_text(value);
	free(value);
	return decoded;
}

int
mime_check_limits(const void *raw_data, size_t len,
		  const struct mime_limits *limits, const char **error_r)
{
	const char *raw = raw_data;
	unsigned max_depth = limits->max_depth, max_parts = limits->max_parts;
	size_t blank_len, header_len;
	struct mime_tree tree;
	int ret = 0;

	header_len = mime_header_block_len(raw, 0, len, &blank_len);
	if (limits->max_header_bytes != 0 &&
	    header_len > limits->max_header_bytes) {
		*error_r = "header block too large";
		return -1;
	}
	/* Build one level and one part past each limit, so exceeding it
	 * shows, and never beyond the module's own caps. */
	if (max_depth == 0 || max_depth > MIME_MAX_DEPTH)
		max_depth = MIME_MAX_DEPTH;
	if (max_parts == 0 || max_parts > MIME_MAX_PARTS)
		max_parts = MIME_MAX_PARTS;
	mime_tree_build(&tree, raw, len, max_depth + 1, max_parts + 1);
	if (tree.max_depth_seen > max_depth) {
		*error_r = "MIME nesting too deep";
		ret = -1;
	} else if (tree.part_count > max_parts) {
		*error_r = "too many MIME parts";
		ret = -1;
	}
	mime_tree_deinit(&tree);
	return ret;
}
