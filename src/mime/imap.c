/*
 * IMAP ENVELOPE, BODY and BODYSTRUCTURE (RFC 3501 7.4.2) from the tree.
 *
 * Strings are quoted when they are 7-bit and printable, else sent as
 * literals, which IMAP allows anywhere a string goes. ENVELOPE date, subject
 * and message ids are the raw header values unfolded (RFC 2047 words stay
 * encoded, as RFC 3501 asks). Address names come out of GMime decoded; a
 * name that is not ASCII is encoded again as RFC 2047 words so 7-bit
 * clients can show it. Parameter values that are not ASCII are given in
 * RFC 2231 form (name*=utf-8''...), as Dovecot does.
 */
#include "mime/mime-private.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* More quote/backslash escapes than this and a literal is simpler. */
#define MIME_IMAP_MAX_ESCAPES 16

void
mime_imap_write_string(struct sp_buf *out, const char *s)
{
	const unsigned char *p;
	size_t escapes = 0;
	bool literal = false;

	for (p = (const unsigned char *)s; *p != '\0'; p++) {
		if (*p >= 0x80 || *p == '\r' || *p == '\n')
			literal = true;
		else if (*p == '"' || *p == '\\')
			escapes++;
	}
	if (literal || escapes > MIME_IMAP_MAX_ESCAPES) {
		size_t len = strlen(s);

		sp_buf_printf(out, "{%zu}\r\n", len);
		sp_buf_append(out, s, len);
		return;
	}
	sp_buf_append(out, "\"", 1);
	for (p = (const unsigned char *)s; *p != '\0'; p++) {
		if (*p == '"' || *p == '\\')
			sp_buf_append(out, "\\", 1);
		sp_buf_append(out, p, 1);
	}
	sp_buf_append(out, "\"", 1);
}

void
mime_imap_write_nstring(struct sp_buf *out, const char *s)
{
	if (s == NULL)
		sp_buf_append_str(out, "NIL");
	else
		mime_imap_write_string(out, s);
}

/* Writes the header value `name` of `node` as an nstring (NIL if absent or
 * empty). */
static void
write_header_nstring(struct sp_buf *out, const char *raw,
		     const struct mime_node *node, const char *name)
{
	char *value = mime_node_header(raw, node, name);

	mime_imap_write_nstring(out, value == NULL || *value == '\0' ? NULL :
								       value);
	free(value);
}

static void
write_name(struct sp_buf *out, const char *name)
{
	char *encoded;

	if (name == NULL || *name == '\0') {
		sp_buf_append_str(out, "NIL");
		return;
	}
	if (str_is_ascii(name)) {
		mime_imap_write_string(out, name);
		return;
	}
	encoded = g_mime_utils_header_encode_phrase(NULL, name, "utf-8");
	mime_imap_write_nstring(out, encoded != NULL ? encoded : name);
	g_free(encoded);
}

static void
write_address_list(struct sp_buf *out, InternetAddressList *list);

static void
write_address(struct sp_buf *out, InternetAddress *ia)
{
	const char *name = internet_address_get_name(ia);

	if (INTERNET_ADDRESS_IS_GROUP(ia)) {
		InternetAddressList *members =
			internet_address_group_get_members(
				INTERNET_ADDRESS_GROUP(ia));

		/* RFC 3501: a group is (NIL NIL "name" NIL), its members,
		 * then (NIL NIL NIL NIL). */
		sp_buf_append_str(out, "(NIL NIL ");
		if (name == NULL || *name == '\0')
			sp_buf_append_str(out, "\"\"");
		else
			write_name(out, name);
		sp_buf_append_str(out, " NIL)");
		if (members != NULL)
			write_address_list(out, members);
		sp_buf_append_str(out, "(NIL NIL NIL NIL)");
	} else if (INTERNET_ADDRESS_IS_MAILBOX(ia)) {
		const char *addr = internet_address_mailbox_get_addr(
			INTERNET_ADDRESS_MAILBOX(ia));
		const char *at;
		char *local;

		if (addr == NULL)
			addr = "";
		at = strrchr(addr, '@');
		local = at == NULL ? xstrdup(addr) :
				     xstrndup(addr, (size_t)(at - addr));
		sp_buf_append_str(out, "(");
		write_name(out, name);
		sp_buf_append_str(out, " NIL ");
		mime_imap_write_string(out, local);
		sp_buf_append_str(out, " ");
		mime_imap_write_string(out, at == NULL ? "" : at + 1);
		sp_buf_append_str(out, ")");
		free(local);
	}
}

static void
write_address_list(struct sp_buf *out, InternetAddressList *list)
{
	int i, n = internet_address_list_length(list);

	for (i = 0; i < n; i++)
		write_address(out, internet_address_list_get_address(list, i));
}

/* The parsed address list of header `name`, NULL when absent or empty. */
static InternetAddressList *
parse_addresses(const char *raw, const struct mime_node *msg, const char *name)
{
	char *value = mime_node_header(raw, msg, name);
	InternetAddressList *list;

	if (value == NULL)
		return NULL;
	list = internet_address_list_parse(NULL, value);
	free(value);
	if (list != NULL && internet_address_list_length(list) == 0) {
		g_object_unref(list);
		list = NULL;
	}
	return list;
}

static void
write_addresses(struct sp_buf *out, InternetAddressList *list)
{
	if (list == NULL) {
		sp_buf_append_str(out, "NIL");
		return;
	}
	sp_buf_append_str(out, "(");
	write_address_list(out, list);
	sp_buf_append_str(out, ")");
}

void
mime_imap_write_envelope(struct sp_buf *out, const char *raw,
			 const struct mime_node *msg)
{
	static const char *const fields[] = { "Sender", "Reply-To", "To",
					      "Cc", "Bcc" };
	InternetAddressList *from;
	size_t i;

	sp_buf_append_str(out, "(");
	write_header_nstring(out, raw, msg, "Date");
	sp_buf_append_str(out, " ");
	write_header_nstring(out, raw, msg, "Subject");
	sp_buf_append_str(out, " ");
	from = parse_addresses(raw, msg, "From");
	write_addresses(out, from);
	for (i = 0; i < SP_N_ELEMENTS(fields); i++) {
		InternetAddressList *list = parse_addresses(raw, msg,
							    fields[i]);

		sp_buf_append_str(out, " ");
		/* RFC 3501: Sender and Reply-To default to From. */
		if (list == NULL && i < 2)
			write_addresses(out, from);
		else
			write_addresses(out, list);
		if (list != NULL)
			g_object_unref(list);
	}
	if (from != NULL)
		g_object_unref(from);
	sp_buf_append_str(out, " ");
	write_header_nstring(out, raw, msg, "In-Reply-To");
	sp_buf_append_str(out, " ");
	write_header_nstring(out, raw, msg, "Message-ID");
	sp_buf_append_str(out, ")");
}

static void
write_param_value(struct sp_buf *out, const char *name, const char *value)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *p;
	struct sp_buf enc;
	char *ext_name;

	if (str_is_ascii(value)) {
		mime_imap_write_string(out, name);
		sp_buf_append_str(out, " ");
		mime_imap_write_string(out, value);
		return;
	}
	/* RFC 2231 extended value: charset''percent-encoded. */
	sp_buf_init(&enc);
	sp_buf_append_str(&enc, "utf-8''");
	for (p = (const unsigned char *)value; *p != '\0'; p++) {
		if (*p >= 0x80 || *p <= ' ' || strchr("*'%()<>@,;:\\\"/[]?=",
						      *p) != NULL) {
			char esc[3] = { '%', hex[*p >> 4], hex[*p & 15] };

			sp_buf_append(&enc, esc, 3);
		} else {
			sp_buf_append(&enc, p, 1);
		}
	}
	ext_name = xasprintf("%s*", name);
	mime_imap_write_string(out, ext_name);
	sp_buf_append_str(out, " ");
	mime_imap_write_string(out, enc.data);
	free(ext_name);
	sp_buf_deinit(&enc);
}

/* Writes ("name" "value" ...) or NIL; for text types adds charset us-ascii
 * when the header names none (RFC 2045 default). */
static void
write_params(struct sp_buf *out, GMimeParamList *params, bool add_charset)
{
	int i, n = params == NULL ? 0 : g_mime_param_list_length(params);
	bool any = false;

	for (i = 0; i < n; i++) {
		GMimeParam *param = g_mime_param_list_get_parameter_at(params,
								       i);
		const char *name = g_mime_param_get_name(param);
		const char *value = g_mime_param_get_value(param);

		if (name == NULL || *name == '\0')
			continue;
		sp_buf_append_str(out, any ? " " : "(");
		any = true;
		write_param_value(out, name, value != NULL ? value : "");
		if (g_ascii_strcasecmp(name, "charset") == 0)
			add_charset = false;
	}
	if (add_charset) {
		sp_buf_append_str(out, any ? " " : "(");
		any = true;
		sp_buf_append_str(out, "\"charset\" \"us-ascii\"");
	}
	sp_buf_append_str(out, any ? ")" : "NIL");
}

/* The node's parameters, unless its type was overridden (opaque). */
static GMimeParamList *
node_params(const struct mime_node *node)
{
	GMimeContentType *ct = node->content_type;

	if (ct == NULL ||
	    g_ascii_strcasecmp(g_mime_content_type_get_media_type(ct),
			       node->type) != 0 ||
	    g_ascii_strcasecmp(g_mime_content_type_get_media_subtype(ct),
			       node->subtype) != 0)
		return NULL;
	return g_mime_content_type_get_parameters(ct);
}

static void
write_disposition(struct sp_buf *out, const char *raw,
		  const struct mime_node *node)
{
	char *value = mime_node_header(raw, node, "Content-Disposition");
	GMimeContentDisposition *disp;
	const char *kind;

	if (value == NULL || *value == '\0') {
		free(value);
		sp_buf_append_str(out, "NIL");
		return;
	}
	disp = g_mime_content_disposition_parse(NULL, value);
	free(value);
	kind = disp == NULL ? NULL :
			      g_mime_content_disposition_get_disposition(disp);
	if (kind == NULL || *kind == '\0') {
		sp_buf_append_str(out, "NIL");
	} else {
		sp_buf_append_str(out, "(");
		mime_imap_write_string(out, kind);
		sp_buf_append_str(out, " ");
		write_params(out,
			     g_mime_content_disposition_get_parameters(disp),
			     false);
		sp_buf_append_str(out, ")");
	}
	if (disp != NULL)
		g_object_unref(disp);
}

static void
write_language(struct sp_buf *out, const char *raw,
	       const struct mime_node *node)
{
	char *value = mime_node_header(raw, node, "Content-Language");
	char *save = NULL, *tok;
	struct sp_buf list;
	unsigned n = 0;

	if (value == NULL) {
		sp_buf_append_str(out, "NIL");
		return;
	}
	sp_buf_init(&list);
	for (tok = strtok_r(value, ", \t", &save); tok != NULL;
	     tok = strtok_r(NULL, ", \t", &save)) {
		if (n++ > 0)
			sp_buf_append_str(&list, " ");
		mime_imap_write_string(&list, tok);
	}
	if (n == 0)
		sp_buf_append_str(out, "NIL");
	else if (n == 1)
		sp_buf_append(out, list.data, list.len);
	else
		sp_buf_printf(out, "(%s)", list.data);
	sp_buf_deinit(&list);
	free(value);
}

static void
write_extension(struct sp_buf *out, const char *raw,
		const struct mime_node *node)
{
	sp_buf_append_str(out, " ");
	write_disposition(out, raw, node);
	sp_buf_append_str(out, " ");
	write_language(out, raw, node);
	sp_buf_append_str(out, " ");
	write_header_nstring(out, raw, node, "Content-Location");
}

void
mime_imap_write_body(struct sp_buf *out, const char *raw,
		     const struct mime_node *node, bool extended)
{
	const struct mime_node *child;
	char *cte;
	bool is_text;

	if (node->kind == MIME_NODE_MULTIPART) {
		sp_buf_append_str(out, "(");
		for (child = node->children; child != NULL; child = child->next)
			mime_imap_write_body(out, raw, child, extended);
		if (node->children == NULL) {
			/* IMAP needs at least one part; Dovecot answers a
			 * multipart without delimiters the same way. */
			sp_buf_append_str(out, "(\"text\" \"plain\" "
					       "(\"charset\" \"us-ascii\") NIL "
					       "NIL \"7bit\" 0 0");
			if (extended)
				sp_buf_append_str(out, " NIL NIL NIL NIL");
			sp_buf_append_str(out, ")");
		}
		sp_buf_append_str(out, " ");
		mime_imap_write_string(out, node->subtype);
		if (extended) {
			sp_buf_append_str(out, " ");
			write_params(out, node_params(node), false);
			write_extension(out, raw, node);
		}
		sp_buf_append_str(out, ")");
		return;
	}

	is_text = strcmp(node->type, "text") == 0;
	sp_buf_append_str(out, "(");
	mime_imap_write_string(out, node->type);
	sp_buf_append_str(out, " ");
	mime_imap_write_string(out, node->subtype);
	sp_buf_append_str(out, " ");
	write_params(out, node_params(node), is_text);
	sp_buf_append_str(out, " ");
	write_header_nstring(out, raw, node, "Content-ID");
	sp_buf_append_str(out, " ");
	write_header_nstring(out, raw, node, "Content-Description");
	sp_buf_append_str(out, " ");
	cte = mime_node_header(raw, node, "Content-Transfer-Encoding");
	if (cte != NULL)
		str_lower(cte);
	mime_imap_write_string(out, cte != NULL && *cte != '\0' ? cte : "7bit");
	free(cte);
	sp_buf_printf(out, " %zu", node->body_len);
	if (node->kind == MIME_NODE_MESSAGE) {
		sp_buf_append_str(out, " ");
		mime_imap_write_envelope(out, raw, node->children);
		sp_buf_append_str(out, " ");
		mime_imap_write_body(out, raw, node->children, extended);
	}
	if (is_text || node->kind == MIME_NODE_MESSAGE)
		sp_buf_printf(out, " %zu",
			      mime_count_lines(raw, node->body_start,
					       node->body_len));
	if (extended) {
		sp_buf_append_str(out, " ");
		write_header_nstring(out, raw, node, "Content-MD5");
		write_extension(out, raw, node);
	}
	sp_buf_append_str(out, ")");
}
