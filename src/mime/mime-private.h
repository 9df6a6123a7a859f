/* Private to src/mime: the raw-byte MIME tree and the helpers around it. */
#ifndef SEALPOST_MIME_PRIVATE_H
#define SEALPOST_MIME_PRIVATE_H

#include "mime/mime.h"

#include <gmime/gmime.h>

enum mime_node_kind {
	MIME_NODE_LEAF,
	MIME_NODE_MULTIPART,
	/* message/rfc822: `children` is the one encapsulated message. */
	MIME_NODE_MESSAGE,
};

/* One body part, or a message (the top level and every encapsulated one).
 * All offsets are into the raw message. */
struct mime_node {
	enum mime_node_kind kind;
	size_t start;	   /* first byte of the header block */
	size_t header_len; /* header block, blank line included */
	size_t body_start; /* start + header_len */
	size_t body_len;
	/* Lower case; the RFC 2045/2046 default when the header has none or
	 * a broken one. A multipart without boundary or a container past
	 * the caps is "application/octet-stream" and a leaf (opaque). */
	char *type, *subtype;
	/* Parsed Content-Type (for its parameters); NULL when absent. */
	GMimeContentType *content_type;
	unsigned depth;
	struct mime_node *children, *next;
	unsigned child_count;
};

struct mime_tree {
	struct mime_node *root;
	unsigned part_count;
	unsigned max_depth_seen;
	/* A cap cut the tree short (the rest is opaque). */
	bool capped;
};

/* One header field inside a header block: [start, end) covers the field
 * with its folding and final line ending; the name is [start,
 * start+name_len) (0 when the line has no colon), the value starts at
 * value_start. */
struct mime_field {
	size_t start, end, name_len, value_start;
};

/* Length of the header block at `start` (blank line included; the whole
 * rest when there is no blank line); *blank_len_r gets the length of the
 * blank line (0, 1 or 2). */
size_t mime_header_block_len(const char *raw, size_t start, size_t end,
			     size_t *blank_len_r);
/* Iterates the fields of the header block [*pos, hend); false at the end. */
bool mime_field_next(const char *raw, size_t *pos, size_t hend,
		     struct mime_field *field_r);
bool mime_field_is(const char *raw, const struct mime_field *field,
		   const char *name, size_t name_len);
/* The value unfolded (CR and LF dropped, NUL as space) and trimmed; caller
 * frees. */
char *mime_field_value(const char *raw, const struct mime_field *field);
/* The first field `name` of the header block of `node`, as
 * mime_field_value(); NULL when absent. */
char *mime_node_header(const char *raw, const struct mime_node *node,
		       const char *name);

/* Builds the tree of the message [0, len) with the given caps. Never fails;
 * free with mime_tree_deinit(). */
void mime_tree_build(struct mime_tree *tree, const char *raw, size_t len,
		     unsigned max_depth, unsigned max_parts);
void mime_tree_deinit(struct mime_tree *tree);

/* Lines in [start, start+len): LF count, plus one for a last line with no
 * line ending. */
size_t mime_count_lines(const char *raw, size_t start, size_t len);

/* IMAP output (imap.c). */
void mime_imap_write_string(struct sp_buf *out, const char *s);
void mime_imap_write_nstring(struct sp_buf *out, const char *s);
void mime_imap_write_envelope(struct sp_buf *out, const char *raw,
			      const struct mime_node *msg);
void mime_imap_write_body(struct sp_buf *out, const char *raw,
			  const struct mime_node *node, bool extended);

/* Text extraction (text.c). */
/* The body of a leaf decoded from its transfer encoding, reading at most
 * max_in encoded bytes; caller frees. */
char *mime_node_decode(const char *raw, const struct mime_node *node,
		       size_t max_in, size_t *len_r);
/* Appends `len` bytes in `charset` (NULL: us-ascii) as valid UTF-8. */
void mime_text_append_utf8(struct sp_buf *out, const char *data, size_t len,
			   const char *charset);
/* Appends the text of HTML, tags stripped, entities decoded. */
void mime_text_append_html(struct sp_buf *out, const char *html, size_t len);
/* Fills `out` with the FTS text of the tree, at most max bytes. */
void mime_text_extract(struct sp_buf *out, const char *raw,
		       const struct mime_node *node, size_t max);

#endif
