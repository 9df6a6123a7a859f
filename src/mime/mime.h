/*
 * mime: parse a raw RFC 5322 message once and hand the store and the
 * protocols everything they need from it.
 *
 * mime_parse() reads the raw bytes of a message (CRLF or bare LF line
 * endings, any amount of damage) and returns a struct mime_info: the IMAP
 * ENVELOPE, BODY and BODYSTRUCTURE strings ready to send, the decoded
 * header fields that SEARCH and SORT use, the plain text for the full-text
 * index, and the byte ranges of attachments worth de-duplicating. The store
 * caches these next to the message; IMAP never re-parses for FETCH
 * ENVELOPE/BODYSTRUCTURE.
 *
 * The MIME tree (part boundaries, header/body split, sizes and line counts)
 * comes from our own scan of the raw bytes, so every offset and size is
 * exact; GMime 3 does the decoding work (RFC 2047 words, RFC 2231
 * parameters, address lists, dates, charsets, transfer encodings).
 * mime_section() serves IMAP BODY[section] straight from the raw bytes with
 * the same scan.
 *
 * mime_check_limits() is the cheap pre-scan SMTP runs on DATA before any
 * tree is built. mime_parse() itself never descends deeper than
 * MIME_MAX_DEPTH or past MIME_MAX_PARTS parts: beyond a cap the rest is an
 * opaque leaf, never parsed without bound.
 *
 * Every function is thread-safe and keeps no state between calls (GMime is
 * initialised once, on first use). Nothing here logs.
 */
#ifndef SEALPOST_MIME_H
#define SEALPOST_MIME_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "core/core.h"

/* Caps mime_parse() and mime_section() apply to themselves (the SMTP limits
 * of the issue); parts past them are treated as opaque leaves. */
#define MIME_MAX_DEPTH 100
#define MIME_MAX_PARTS 10000
/* mime_info.text never holds more than this many bytes. */
#define MIME_TEXT_MAX (1024 * 1024)

/* A leaf part worth de-duplicating: not text/plain or text/html shown
 * inline, not multipart, not message/rfc822. */
struct mime_attachment {
	/* Byte range of the part's ENCODED body inside the raw message (what
	 * BODY[n] returns), so the store can cut it out and splice it back
	 * byte for byte. */
	size_t body_offset, body_len;
	/* Lower case "type/subtype", e.g. "application/pdf"; never NULL. */
	char *content_type;
	/* Decoded (RFC 2231/2047) to UTF-8, or NULL when the part has none. */
	char *filename;
	/* Lower case Content-Transfer-Encoding, "7bit" when absent. */
	char *encoding;
};

struct mime_info {
	/* IMAP ENVELOPE (RFC 3501 7.4.2), a parenthesised list ready to send:
	 * strings quoted, or as literals {n}\r\n... when they hold CR, LF,
	 * NUL or 8-bit bytes; NIL for absent fields. Header values appear as
	 * in the raw header (unfolded, RFC 2047 words left encoded), as RFC
	 * 3501 requires. */
	char *envelope;
	/* IMAP BODY (non-extensible) and BODYSTRUCTURE (with extension data:
	 * md5 NIL, disposition, language, location), same quoting rules. */
	char *body;
	char *bodystructure;

	/* Decoded to UTF-8 (RFC 2047), unfolded; NULL when absent. */
	char *subject;
	/* Address lists decoded to UTF-8 text, "Name <a@b>, c@d", for SEARCH;
	 * NULL when the field is absent. */
	char *from, *to, *cc, *bcc, *reply_to, *sender;
	/* As in the header, unfolded and trimmed; NULL when absent. */
	char *message_id, *in_reply_to, *references;
	/* Date: header as a Unix time; 0 if absent or unparseable. */
	time_t date;

	/* Plain text for the full-text index: text/plain parts decoded from
	 * their transfer encoding and charset to UTF-8, text/html with tags
	 * stripped, parts separated by a newline; at most MIME_TEXT_MAX bytes
	 * (cut on a UTF-8 character boundary). Never NULL (may be ""). */
	char *text;

	/* Leaves worth de-duplicating, in part order; NULL when none. */
	struct mime_attachment *attachments;
	size_t attachment_count;

	/* Octets of the top-level header block, blank line included (where
	 * BODY[TEXT] starts), and how many MIME parts the tree has. */
	size_t header_len;
	unsigned part_count;
};

/* Initialises GMime once per process, safe from any thread. Every function
 * here calls it; code elsewhere that uses GMime directly calls this instead
 * of g_mime_init(), which is not thread-safe. */
void mime_init(void);

/* Parses `len` bytes at `raw` (need not be NUL-terminated; may hold NULs).
 * Never fails on malformed mail, which yields the best structure it can;
 * returns -1 with error_r only when the input is not a message at all
 * (empty). On success the caller owns *info_r; free with
 * mime_info_destroy(). Nothing in *info_r points into `raw`. */
int mime_parse(const void *raw, size_t len, struct mime_info **info_r,
	       const char **error_r);
/* Frees everything, NULLs the pointer, accepts NULL. */
void mime_info_destroy(struct mime_info **info);

/* IMAP BODY[section] (RFC 3501 6.4.5), without the <partial> suffix (the
 * caller slices). section is "" (whole message), "HEADER", "TEXT",
 * "HEADER.FIELDS (A B)", "HEADER.FIELDS.NOT (A B)", "1", "1.2", "1.2.MIME",
 * and for message/rfc822 parts "1.2.HEADER", "1.2.TEXT",
 * "1.2.HEADER.FIELDS (...)"; keywords are case-insensitive and field names
 * may be quoted. Appends the exact bytes to out. HEADER.FIELDS[.NOT]
 * returns the matching fields as they are in the raw header (folding kept)
 * followed by the blank line.
 * Returns 0, or -1 for a syntactically bad section spec (out unchanged). A
 * section that does not exist appends nothing and returns 0, as IMAP
 * servers answer with an empty string. */
int mime_section(const void *raw, size_t len, const char *section,
		 struct sp_buf *out);

/* Pre-scan for SMTP DATA before any tree is built: the top header block
 * size, multipart nesting depth (a part directly inside the top-level
 * multipart is at depth 1) and total part count (every part, multiparts
 * and carried messages included). A zero max_header_bytes means no limit;
 * a zero max_depth or max_parts, or one above MIME_MAX_DEPTH /
 * MIME_MAX_PARTS, means those caps, as no deeper scan is ever made.
 * Returns 0 within limits, else -1 with a static error_r. */
struct mime_limits {
	size_t max_header_bytes;
	unsigned max_depth;
	unsigned max_parts;
};
int mime_check_limits(const void *raw, size_t len,
		      const struct mime_limits *limits, const char **error_r);

/* The first `name` field of the top-level header (case-insensitive),
 * unfolded, trimmed and RFC 2047-decoded to UTF-8. Caller frees; NULL if
 * absent. */
char *mime_header_get(const void *raw, size_t len, const char *name);

/* The same field, unfolded and trimmed but NOT decoded (for IMAP SEARCH
 * HEADER on raw values and for SMTP). Caller frees; NULL if absent. */
char *mime_header_get_raw(const void *raw, size_t len, const char *name);

/* ---- header edits (header.c), for message submission ---- */

/* The addr-specs of every `name` field of the top-level header (group
 * members included, display names and empty groups dropped). Returns the
 * number of such fields (0: none); *addrs_r holds *count_r strings, free
 * with mime_addresses_free(). */
int mime_header_addresses(const void *raw, size_t len, const char *name,
			  char ***addrs_r, size_t *count_r);
void mime_addresses_free(char ***addrs, size_t count);

/* True when the top-level header has a `name` field. */
bool mime_header_has(const void *raw, size_t len, const char *name);

/* Appends to `out` the message with `prepend` (complete CR LF-terminated
 * fields, may be NULL) before the first field and without any field named
 * in the NULL-terminated `drop` (folded lines go with their field); the
 * rest is copied byte for byte. */
void mime_header_rewrite(const void *raw, size_t len, const char *prepend,
			 const char *const *drop, struct sp_buf *out);

#endif
