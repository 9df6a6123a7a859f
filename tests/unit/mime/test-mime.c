#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/core.h"
#include "mime/mime.h"

#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

static struct mime_info *
parse(const char *msg)
{
	struct mime_info *info;
	const char *error = NULL;

	if (mime_parse(msg, strlen(msg), &info, &error) < 0)
		fail_msg("mime_parse: %s", error);
	assert_non_null(info->envelope);
	assert_non_null(info->body);
	assert_non_null(info->bodystructure);
	assert_non_null(info->text);
	return info;
}

/* BODY[section] of msg as a NUL-terminated string (freed by the caller). */
static char *
section(const char *msg, size_t len, const char *spec)
{
	struct sp_buf buf;
	char *s;

	sp_buf_init(&buf);
	assert_int_equal(mime_section(msg, len, spec, &buf), 0);
	s = sp_buf_steal(&buf, NULL);
	return s != NULL ? s : xstrdup("");
}

static void
assert_section(const char *msg, const char *spec, const char *expected)
{
	char *got = section(msg, strlen(msg), spec);

	if (strcmp(got, expected) != 0)
		fail_msg("BODY[%s]: got \"%s\" want \"%s\"", spec, got,
			 expected);
	free(got);
}

static const char simple_msg[] =
	"Date: Mon, 23 Nov 2026 18:00:00 +0000\r\n"
	"From: Alice Example <alice@example.org>\r\n"
	"To: bob@example.net, \"Carol \\\"C\\\" Doe\" <carol@example.net>\r\n"
	"Cc: undisclosed-recipients:;\r\n"
	"Subject: Hello\r\n"
	" world\r\n"
	"Message-ID: <m1@example.org>\r\n"
	"In-Reply-To: <m0@example.org>\r\n"
	"References: <a@x> <m0@example.org>\r\n"
	"\r\n"
	"Hi Bob,\r\n"
	"two lines.\r\n";

static void
test_simple_text(void **state)
{
	struct mime_info *info = parse(simple_msg);

	assert_string_equal(
		info->envelope,
		"(\"Mon, 23 Nov 2026 18:00:00 +0000\" \"Hello world\" "
		"((\"Alice Example\" NIL \"alice\" \"example.org\")) "
		"((\"Alice Example\" NIL \"alice\" \"example.org\")) "
		"((\"Alice Example\" NIL \"alice\" \"example.org\")) "
		"((NIL NIL \"bob\" \"example.net\")"
		"(\"Carol \\\"C\\\" Doe\" NIL \"carol\" \"example.net\")) "
		"((NIL NIL \"undisclosed-recipients\" NIL)(NIL NIL NIL NIL)) "
		"NIL \"<m0@example.org>\" \"<m1@example.org>\")");
	assert_string_equal(info->body,
			    "(\"text\" \"plain\" (\"charset\" \"us-ascii\") "
			    "NIL NIL \"7bit\" 21 2)");
	assert_string_equal(info->bodystructure,
			    "(\"text\" \"plain\" (\"charset\" \"us-ascii\") "
			    "NIL NIL \"7bit\" 21 2 NIL NIL NIL NIL)");
	assert_string_equal(info->subject, "Hello world");
	assert_string_equal(info->from, "Alice Example <alice@example.org>");
	assert_non_null(strstr(info->to, "bob@example.net"));
	assert_non_null(strstr(info->to, "carol@example.net"));
	assert_null(info->bcc);
	assert_null(info->sender);
	assert_string_equal(info->message_id, "<m1@example.org>");
	assert_string_equal(info->in_reply_to, "<m0@example.org>");
	assert_string_equal(info->references, "<a@x> <m0@example.org>");
	assert_int_equal(info->date, 1795456800);
	assert_string_equal(info->text, "Hi Bob,\r\ntwo lines.\r\n");
	assert_int_equal(info->attachment_count, 0);
	assert_null(info->attachments);
	assert_int_equal(info->header_len, strlen(simple_msg) - 21);
	assert_int_equal(info->part_count, 1);
	mime_info_destroy(&info);
	assert_null(info);
	mime_info_destroy(&info);
}

static const char alt_msg[] =
	"From: a@example.org\r\n"
	"Subject: alt\r\n"
	"MIME-Version: 1.0\r\n"
	"Content-Type: multipart/alternative; boundary=\"=_b1\"\r\n"
	"\r\n"
	"This is a multi-part message.\r\n"
	"--=_b1\r\n"
	"Content-Type: text/plain; charset=utf-8\r\n"
	"\r\n"
	"plain version\r\n"
	"--=_b1\r\n"
	"Content-Type: text/html; charset=utf-8\r\n"
	"Content-Transfer-Encoding: quoted-printable\r\n"
	"\r\n"
	"<p>html version</p>\r\n"
	"\r\n"
	"--=_b1--\r\n"
	"epilogue\r\n";

static void
test_multipart_alternative(void **state)
{
	struct mime_info *info = parse(alt_msg);

	/* Part bodies stop before the CRLF that precedes a delimiter. */
	assert_string_equal(
		info->bodystructure,
		"((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" "
		"13 1 NIL NIL NIL NIL)"
		"(\"text\" \"html\" (\"charset\" \"utf-8\") NIL NIL "
		"\"quoted-printable\" 21 1 NIL NIL NIL NIL) "
		"\"alternative\" (\"boundary\" \"=_b1\") NIL NIL NIL)");
	assert_string_equal(
		info->body,
		"((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" "
		"13 1)"
		"(\"text\" \"html\" (\"charset\" \"utf-8\") NIL NIL "
		"\"quoted-printable\" 21 1) \"alternative\")");
	/* One version of the text, the plain one. */
	assert_string_equal(info->text, "plain version");
	assert_int_equal(info->attachment_count, 0);
	assert_int_equal(info->part_count, 3);
	assert_section(alt_msg, "1", "plain version");
	assert_section(alt_msg, "2", "<p>html version</p>\r\n");
	assert_section(alt_msg, "2.MIME",
		       "Content-Type: text/html; charset=utf-8\r\n"
		       "Content-Transfer-Encoding: quoted-printable\r\n\r\n");
	mime_info_destroy(&info);
}

/* 300 bytes of binary-ish data, base64 in 76-column lines. */
static char *
make_base64(size_t *raw_len_r)
{
	unsigned char data[300];
	char line[77], *b64;
	struct sp_buf buf;
	size_t i, enc_len = sodium_base64_ENCODED_LEN(
			  sizeof(data), sodium_base64_VARIANT_ORIGINAL);

	for (i = 0; i < sizeof(data); i++)
		data[i] = (unsigned char)(i * 7 + 3);
	b64 = xmalloc(enc_len);
	sodium_bin2base64(b64, enc_len, data, sizeof(data),
			  sodium_base64_VARIANT_ORIGINAL);
	sp_buf_init(&buf);
	for (i = 0; i < strlen(b64); i += 76) {
		str_copy(line, b64 + i, sizeof(line));
		sp_buf_printf(&buf, "%s\r\n", line);
	}
	free(b64);
	/* The CRLF after the last line belongs to the delimiter. */
	buf.len -= 2;
	buf.data[buf.len] = '\0';
	*raw_len_r = buf.len;
	return sp_buf_steal(&buf, NULL);
}

static void
test_multipart_mixed_attachment(void **state)
{
	size_t b64_len;
	char *b64 = make_base64(&b64_len);
	char *msg = xasprintf(
		"From: a@example.org\r\n"
		"Content-Type: multipart/mixed; boundary=XYZ\r\n"
		"\r\n"
		"--XYZ\r\n"
		"Content-Type: text/plain\r\n"
		"\r\n"
		"see attached\r\n"
		"--XYZ\r\n"
		"Content-Type: application/pdf; name=\"report.pdf\"\r\n"
		"Content-Disposition: attachment; filename=\"report.pdf\"\r\n"
		"Content-Transfer-Encoding: base64\r\n"
		"Content-ID: <part2@x>\r\n"
		"Content-Description: The report\r\n"
		"Content-Language: en, de\r\n"
		"Content-Location: http://example.org/r.pdf\r\n"
		"\r\n"
		"%s\r\n"
		"--XYZ--\r\n",
		b64);
	struct mime_info *info = parse(msg);
	unsigned char want[32], got[32];
	struct mime_attachment *att;
	char *part, *expected;

	assert_int_equal(info->attachment_count, 1);
	att = &info->attachments[0];
	assert_string_equal(att->content_type, "application/pdf");
	assert_string_equal(att->filename, "report.pdf");
	assert_string_equal(att->encoding, "base64");
	assert_int_equal(att->body_len, b64_len);
	crypto_hash_sha256(want, (unsigned char *)b64, b64_len);
	crypto_hash_sha256(got, (unsigned char *)msg + att->body_offset,
			   att->body_len);
	assert_memory_equal(want, got, 32);
	/* BODY[2] is the same byte range. */
	part = section(msg, strlen(msg), "2");
	assert_int_equal(strlen(part), att->body_len);
	assert_string_equal(part, b64);
	free(part);

	expected = xasprintf(
		"((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL "
		"\"7bit\" 12 1 NIL NIL NIL NIL)"
		"(\"application\" \"pdf\" (\"name\" \"report.pdf\") "
		"\"<part2@x>\" \"The report\" \"base64\" %zu NIL "
		"(\"attachment\" (\"filename\" \"report.pdf\")) (\"en\" \"de\") "
		"\"http://example.org/r.pdf\") \"mixed\" (\"boundary\" \"XYZ\") "
		"NIL NIL NIL)",
		b64_len);
	assert_string_equal(info->bodystructure, expected);
	free(expected);
	assert_string_equal(info->text, "see attached");
	mime_info_destroy(&info);
	free(msg);
	free(b64);
}

static size_t
count_lf(const char *s, size_t len)
{
	size_t i, n = 0;

	for (i = 0; i < len; i++)
		n += s[i] == '\n';
	return n;
}

static const char nested_msg[] =
	"From: outer@example.org\r\n"
	"Subject: fwd\r\n"
	"Content-Type: multipart/mixed; boundary=\"outer\"\r\n"
	"\r\n"
	"--outer\r\n"
	"Content-Type: text/plain\r\n"
	"\r\n"
	"see below\r\n"
	"--outer\r\n"
	"Content-Type: message/rfc822\r\n"
	"\r\n"
	"From: inner@example.org\r\n"
	"Subject: inner subject\r\n"
	"X-Folded: a\r\n"
	"\tb\r\n"
	"Content-Type: multipart/alternative; boundary=\"inner\"\r\n"
	"\r\n"
	"--inner\r\n"
	"Content-Type: text/plain\r\n"
	"\r\n"
	"inner plain\r\n"
	"--inner\r\n"
	"Content-Type: text/html\r\n"
	"\r\n"
	"<b>inner</b>\r\n"
	"--inner--\r\n"
	"\r\n"
	"--outer--\r\n";

static void
test_nested_message(void **state)
{
	struct mime_info *info = parse(nested_msg);
	const char *inner = strstr(nested_msg, "From: inner");
	const char *inner_end = strstr(nested_msg, "\r\n--outer--");
	size_t inner_len = (size_t)(inner_end - inner);
	char *expected, *got;

	expected = xasprintf(
		"((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL "
		"\"7bit\" 9 1 NIL NIL NIL NIL)"
		"(\"message\" \"rfc822\" NIL NIL NIL \"7bit\" %zu "
		"(NIL \"inner subject\" "
		"((NIL NIL \"inner\" \"example.org\")) "
		"((NIL NIL \"inner\" \"example.org\")) "
		"((NIL NIL \"inner\" \"example.org\")) NIL NIL NIL NIL NIL) "
		"((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL "
		"\"7bit\" 11 1 NIL NIL NIL NIL)"
		"(\"text\" \"html\" (\"charset\" \"us-ascii\") NIL NIL "
		"\"7bit\" 12 1 NIL NIL NIL NIL) \"alternative\" "
		"(\"boundary\" \"inner\") NIL NIL NIL) %zu NIL NIL NIL NIL) "
		"\"mixed\" (\"boundary\" \"outer\") NIL NIL NIL)",
		inner_len, count_lf(inner, inner_len));
	assert_string_equal(info->bodystructure, expected);
	free(expected);
	assert_string_equal(info->text, "see below\ninner plain");
	assert_int_equal(info->part_count, 6);

	/* Part numbers into the carried message. */
	got = section(nested_msg, strlen(nested_msg), "2");
	assert_int_equal(strlen(got), inner_len);
	assert_memory_equal(got, inner, inner_len);
	free(got);
	assert_section(nested_msg, "2.MIME",
		       "Content-Type: message/rfc822\r\n\r\n");
	assert_section(nested_msg, "2.HEADER",
		       "From: inner@example.org\r\n"
		       "Subject: inner subject\r\n"
		       "X-Folded: a\r\n"
		       "\tb\r\n"
		       "Content-Type: multipart/alternative; "
		       "boundary=\"inner\"\r\n\r\n");
	assert_section(nested_msg, "2.HEADER.FIELDS (x-folded SUBJECT)",
		       "Subject: inner subject\r\nX-Folded: a\r\n\tb\r\n"
		       "\r\n");
	assert_section(nested_msg, "2.1", "inner plain");
	assert_section(nested_msg, "2.2", "<b>inner</b>");
	assert_section(nested_msg, "2.2.MIME",
		       "Content-Type: text/html\r\n\r\n");
	assert_section(nested_msg, "2.3", "");
	assert_section(nested_msg, "2.1.1", "");
	/* HEADER and TEXT exist only for message/rfc822 parts. */
	assert_section(nested_msg, "1.HEADER", "");
	assert_section(nested_msg, "1.TEXT", "");
	got = section(nested_msg, strlen(nested_msg), "2.TEXT");
	assert_true(str_has_prefix(got, "--inner\r\n"));
	assert_true(strlen(got) > 0 &&
		    strcmp(got + strlen(got) - 11, "--inner--\r\n") == 0);
	free(got);
	mime_info_destroy(&info);
}

static void
test_rfc2047_subjects(void **state)
{
	static const char utf8_msg[] =
		"Subject: =?UTF-8?B?R3LDvMOfZQ==?= =?utf-8?q?_aus_K=C3=B6ln?=\r\n"
		"From: =?iso-8859-1?q?Andr=E9?= <andre@example.fr>\r\n"
		"\r\n"
		"x\r\n";
	static const char latin1_msg[] =
		"Subject: =?ISO-8859-1?Q?Caf=E9_cr=E8me?=\r\n"
		"\r\n"
		"x\r\n";
	struct mime_info *info = parse(utf8_msg);
	char *expected;

	assert_string_equal(info->subject, "Grüße aus Köln");
	assert_string_equal(info->from, "André <andre@example.fr>");
	/* ENVELOPE keeps the subject as it is in the header; the name of an
	 * address is 7-bit again (RFC 2047), never raw 8-bit. */
	expected = xasprintf("(NIL \"%s\" ((",
			     "=?UTF-8?B?R3LDvMOfZQ==?= "
			     "=?utf-8?q?_aus_K=C3=B6ln?=");
	assert_true(str_has_prefix(info->envelope, expected));
	free(expected);
	assert_non_null(
		strstr(info->envelope, "NIL \"andre\" \"example.fr\")"));
	assert_non_null(strstr(info->envelope, "((\"=?"));
	mime_info_destroy(&info);

	info = parse(latin1_msg);
	assert_string_equal(info->subject, "Café crème");
	assert_true(str_has_prefix(info->envelope,
				   "(NIL \"=?ISO-8859-1?Q?Caf=E9_cr=E8me?=\" "));
	mime_info_destroy(&info);
}

static void
test_imap_quoting(void **state)
{
	/* Raw 8-bit and many escapes become literals; a few quotes are
	 * escaped inside a quoted string. */
	char slashes[21], *msg, *expected;
	struct mime_info *info;

	memset(slashes, '\\', 20);
	slashes[20] = '\0';
	msg = xasprintf("Subject: Gr\xc3\xbc\xc3\x9f" "e \"raw\"\r\n"
			"Message-ID: <a\\b\"c@x>\r\n"
			"In-Reply-To: %s\r\n"
			"\r\n"
			"body\r\n",
			slashes);
	info = parse(msg);
	expected = xasprintf("(NIL {13}\r\nGr\xc3\xbc\xc3\x9f" "e \"raw\" NIL "
			     "NIL NIL NIL NIL NIL {20}\r\n%s "
			     "\"<a\\\\b\\\"c@x>\")",
			     slashes);
	assert_string_equal(info->envelope, expected);
	assert_string_equal(info->subject, "Grüße \"raw\"");
	mime_info_destroy(&info);
	free(expected);
	free(msg);
}

static void
test_rfc2231_filename(void **state)
{
	static const char msg[] =
		"Content-Type: multipart/mixed; boundary=b\r\n"
		"\r\n"
		"--b\r\n"
		"Content-Type: application/octet-stream;\r\n"
		" name*0*=UTF-8''%E2%82%AC%20rapport;\r\n"
		" name*1*=%20d%C3%A9tail.bin\r\n"
		"Content-Disposition: attachment;\r\n"
		" filename*0*=utf-8''%E2%82%AC%20rapport;\r\n"
		" filename*1*=%20d%C3%A9tail.bin\r\n"
		"\r\n"
		"AAAA\r\n"
		"--b\r\n"
		"Content-Type: image/png; name=\"=?utf-8?q?b=C3=A9b=C3=A9.png?=\"\r\n"
		"Content-Transfer-Encoding: base64\r\n"
		"\r\n"
		"iVBORw0K\r\n"
		"--b--\r\n";
	struct mime_info *info = parse(msg);

	assert_int_equal(info->attachment_count, 2);
	assert_string_equal(info->attachments[0].filename,
			    "€ rapport détail.bin");
	assert_string_equal(info->attachments[0].content_type,
			    "application/octet-stream");
	assert_string_equal(info->attachments[0].encoding, "7bit");
	assert_int_equal(info->attachments[0].body_len, 4);
	assert_memory_equal(msg + info->attachments[0].body_offset, "AAAA", 4);
	assert_string_equal(info->attachments[1].filename, "bébé.png");
	assert_string_equal(info->attachments[1].content_type, "image/png");
	assert_memory_equal(msg + info->attachments[1].body_offset,
			    "iVBORw0K", 8);
	/* Non-ASCII parameters are sent in RFC 2231 form. */
	assert_non_null(strstr(info->bodystructure,
			       "(\"attachment\" (\"filename*\" "
			       "\"utf-8''%E2%82%AC%20rapport%20d%C3%A9tail.bin\"))"));
	mime_info_destroy(&info);
}

static void
test_text_charsets_and_html(void **state)
{
	static const char latin1[] =
		"Content-Type: text/plain; charset=ISO-8859-1\r\n"
		"Content-Transfer-Encoding: 8bit\r\n"
		"\r\n"
		"Gr\xfc\xdf" "e, na\xefve caf\xe9\r\n";
	static const char qp_win[] =
		"Content-Type: text/plain; charset=windows-1252\r\n"
		"Content-Transfer-Encoding: quoted-printable\r\n"
		"\r\n"
		"=93quoted=94 soft=\r\nbreak =80\r\n";
	static const char html[] =
		"Content-Type: text/html; charset=utf-8\r\n"
		"\r\n"
		"<html><head><style>p { color: red }</style>"
		"<script>var x = \"<p>\";</script></head>"
		"<body><p>Hello&nbsp;<b>W</b>orld &amp; caf&#233; &#x263A;</p>"
		"<!-- hidden --><td>a</td><td>b</td></body></html>\r\n";
	static const char bad_utf8[] =
		"Content-Type: text/plain; charset=utf-8\r\n"
		"\r\n"
		"ok \xff\xfe end\r\n";
	struct mime_info *info;

	info = parse(latin1);
	assert_string_equal(info->text, "Grüße, naïve café\r\n");
	mime_info_destroy(&info);

	info = parse(qp_win);
	assert_string_equal(info->text, "“quoted” soft" "break €\r\n");
	mime_info_destroy(&info);

	info = parse(html);
	assert_string_equal(info->text, "Hello W orld & café ☺ a b ");
	mime_info_destroy(&info);

	info = parse(bad_utf8);
	assert_string_equal(info->text, "ok \xef\xbf\xbd\xef\xbf\xbd end\r\n");
	mime_info_destroy(&info);
}

static void
test_text_cap(void **state)
{
	/* 2 MiB of a three-byte character: the index text stops at 1 MiB
	 * on a character boundary. */
	size_t n = 2 * 1024 * 1024 / 3, i, hlen;
	const char *header = "Content-Type: text/plain; charset=utf-8\r\n\r\n";
	char *msg;
	struct mime_info *info;
	const char *error;
	size_t tlen;

	hlen = strlen(header);
	msg = xmalloc(hlen + n * 3);
	memcpy(msg, header, hlen);
	for (i = 0; i < n; i++)
		memcpy(msg + hlen + i * 3, "\xe2\x82\xac", 3);
	assert_int_equal(mime_parse(msg, hlen + n * 3, &info, &error), 0);
	tlen = strlen(info->text);
	assert_true(tlen <= MIME_TEXT_MAX);
	assert_true(tlen > MIME_TEXT_MAX - 3);
	assert_int_equal(tlen % 3, 0);
	mime_info_destroy(&info);
	free(msg);
}

static const char sections_msg[] =
	"From: a@example.org\r\n"
	"To: b@example.org\r\n"
	"Subject: sections\r\n"
	"X-Long: one\r\n"
	" two\r\n"
	"Content-Type: multipart/mixed; boundary=\"s1\"\r\n"
	"\r\n"
	"--s1\r\n"
	"\r\n"
	"first\r\n"
	"--s1\r\n"
	"Content-Type: multipart/alternative; boundary=\"s2\"\r\n"
	"\r\n"
	"--s2\r\n"
	"Content-Type: text/plain\r\n"
	"\r\n"
	"second plain\r\n"
	"--s2\r\n"
	"Content-Type: text/html\r\n"
	"\r\n"
	"<i>second</i>\r\n"
	"--s2--\r\n"
	"--s1--\r\n";

static void
test_digest(void **state)
{
	/* In multipart/digest a part without Content-Type is a message. */
	static const char msg[] =
		"Content-Type: multipart/digest; boundary=d\r\n"
		"\r\n"
		"--d\r\n"
		"\r\n"
		"Subject: one\r\n"
		"\r\n"
		"first\r\n"
		"--d--\r\n";
	struct mime_info *info = parse(msg);

	assert_string_equal(
		info->body,
		"((\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 21 "
		"(NIL \"one\" NIL NIL NIL NIL NIL NIL NIL NIL) "
		"(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL "
		"\"7bit\" 5 1) 3) \"digest\")");
	mime_info_destroy(&info);
	assert_section(msg, "1.HEADER", "Subject: one\r\n\r\n");
	assert_section(msg, "1.1", "first");
	assert_section(msg, "1.TEXT", "first");
}

static void
test_sections(void **state)
{
	const char *body = strstr(sections_msg, "\r\n\r\n") + 4;
	size_t hlen = (size_t)(body - sections_msg);
	char *got, *header = xstrndup(sections_msg, hlen);

	got = section(sections_msg, strlen(sections_msg), "");
	assert_string_equal(got, sections_msg);
	free(got);
	assert_section(sections_msg, "HEADER", header);
	assert_section(sections_msg, "header", header);
	assert_section(sections_msg, "TEXT", body);
	assert_section(sections_msg, "HEADER.FIELDS (Subject From)",
		       "From: a@example.org\r\nSubject: sections\r\n\r\n");
	/* Partial: names that are not there simply do not appear. */
	assert_section(sections_msg, "HEADER.FIELDS (X-LONG CC \"To\")",
		       "To: b@example.org\r\nX-Long: one\r\n two\r\n\r\n");
	assert_section(sections_msg, "HEADER.FIELDS (BCC)", "\r\n");
	assert_section(sections_msg,
		       "HEADER.FIELDS.NOT (Subject Content-Type x-long)",
		       "From: a@example.org\r\nTo: b@example.org\r\n\r\n");
	assert_section(sections_msg, "1", "first");
	assert_section(sections_msg, "1.MIME", "\r\n");
	assert_section(sections_msg, "2.1", "second plain");
	assert_section(sections_msg, "2.2", "<i>second</i>");
	assert_section(sections_msg, "2.1.MIME",
		       "Content-Type: text/plain\r\n\r\n");
	assert_section(sections_msg, "2.MIME",
		       "Content-Type: multipart/alternative; "
		       "boundary=\"s2\"\r\n\r\n");
	assert_section(sections_msg, "2",
		       "--s2\r\nContent-Type: text/plain\r\n\r\nsecond plain"
		       "\r\n--s2\r\nContent-Type: text/html\r\n\r\n"
		       "<i>second</i>\r\n--s2--");
	/* Parts that do not exist: empty, not an error. */
	assert_section(sections_msg, "3", "");
	assert_section(sections_msg, "2.3", "");
	assert_section(sections_msg, "1.1", "");
	assert_section(sections_msg, "4294967295", "");
	free(header);
}

static void
test_sections_single_part(void **state)
{
	/* A message that is not multipart has one part, its body. */
	assert_section(simple_msg, "1", "Hi Bob,\r\ntwo lines.\r\n");
	assert_section(simple_msg, "TEXT", "Hi Bob,\r\ntwo lines.\r\n");
	assert_section(simple_msg, "2", "");
	assert_section(simple_msg, "1.1", "");
	assert_section(simple_msg, "HEADER.FIELDS (MESSAGE-ID)",
		       "Message-ID: <m1@example.org>\r\n\r\n");
}

static void
test_sections_bad_syntax(void **state)
{
	static const char *const bad[] = {
		"0",
		"01",
		"1.",
		".1",
		"1..2",
		"MIME",
		"HEADERS",
		"TEXT ",
		"HEADER.FIELDS",
		"HEADER.FIELDS ()",
		"HEADER.FIELDS (A",
		"HEADER.FIELDS (A B) x",
		"HEADER.FIELDS(A)",
		"HEADER.FIELDS (\"A)",
		"1.2.FOO",
		"99999999999999999999",
		"x",
	};
	struct sp_buf buf;
	size_t i;

	sp_buf_init(&buf);
	for (i = 0; i < SP_N_ELEMENTS(bad); i++) {
		if (mime_section(simple_msg, strlen(simple_msg), bad[i],
				 &buf) != -1)
			fail_msg("section \"%s\" accepted", bad[i]);
		assert_int_equal(buf.len, 0);
	}
	sp_buf_deinit(&buf);
}

static void
test_malformed(void **state)
{
	static const char *const msgs[] = {
		/* no header at all */
		"\r\njust a body\r\n",
		/* no blank line: all header */
		"just some text without a header\r\nsecond line",
		/* bare LF */
		"Subject: lf\nContent-Type: multipart/mixed; boundary=z\n\n"
		"--z\nContent-Type: text/plain\n\nbody one\n--z\n\ntwo\n--z--\n",
		/* truncated multipart: no close delimiter */
		"Content-Type: multipart/mixed; boundary=t\r\n\r\n--t\r\n"
		"Content-Type: text/plain\r\n\r\npart one\r\n--t\r\n"
		"Content-Type: application/zip\r\n\r\nPK\x03\x04",
		/* multipart without boundary */
		"Content-Type: multipart/mixed\r\n\r\nstuff\r\n",
		/* multipart without any delimiter */
		"Content-Type: multipart/mixed; boundary=nope\r\n\r\nstuff\r\n",
		/* garbage Content-Type */
		"Content-Type: ;;;/\r\nContent-Transfer-Encoding: base64\r\n"
		"\r\n!!!not base64\r\n",
		/* base64 message/rfc822 stays opaque */
		"Content-Type: message/rfc822\r\n"
		"Content-Transfer-Encoding: base64\r\n\r\nU3ViamVjdDogeA==\r\n",
		/* message/rfc822 with nothing inside */
		"Content-Type: message/rfc822\r\n\r\n",
		/* broken addresses and encoded words */
		"From: <<<@@>>>, \"unterminated\r\nTo: ;;;,,,\r\n"
		"Subject: =?utf-8?B?broken?= =?x-unknown?q?abc?=\r\n\r\n",
		/* NUL bytes (length given separately below) */
		"Subject: nul\r\n\r\nbefore",
		/* header continuation first, colon-less lines */
		" folded first\r\nno colon here\r\n\r\nbody",
		/* unknown charset */
		"Content-Type: text/plain; charset=x-no-such-charset\r\n\r\n"
		"b\xe9" "d\r\n",
		"\n",
		"\r",
		"-",
	};
	size_t i;

	for (i = 0; i < SP_N_ELEMENTS(msgs); i++) {
		struct mime_info *info = parse(msgs[i]);

		mime_info_destroy(&info);
	}
	{
		/* Embedded NULs. */
		static const char nul[] = "Subject: a\0b\r\n\r\nx\0y\r\n";
		struct mime_info *info;
		const char *error;

		assert_int_equal(mime_parse(nul, sizeof(nul) - 1, &info,
					    &error),
				 0);
		assert_string_equal(info->subject, "a b");
		assert_non_null(strstr(info->bodystructure, "\"7bit\" 5 1"));
		/* A NUL in the text is replaced, the rest kept. */
		assert_string_equal(info->text, "x\xef\xbf\xbdy\r\n");
		mime_info_destroy(&info);
	}
}

static void
test_malformed_details(void **state)
{
	struct mime_info *info;
	const char *error = NULL;

	assert_int_equal(mime_parse("", 0, &info, &error), -1);
	assert_null(info);
	assert_non_null(error);

	/* No header: the body is everything after the empty first line. */
	info = parse("\r\njust a body\r\n");
	assert_string_equal(info->envelope,
			    "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)");
	assert_string_equal(info->body, "(\"text\" \"plain\" (\"charset\" "
					"\"us-ascii\") NIL NIL \"7bit\" 13 1)");
	assert_int_equal(info->header_len, 2);
	mime_info_destroy(&info);

	/* Bare LF: sizes count the bytes that are there. */
	info = parse("Subject: lf\nContent-Type: multipart/mixed; boundary=z\n"
		     "\n--z\nContent-Type: text/plain\n\nbody one\n--z\n\ntwo\n"
		     "--z--\n");
	assert_string_equal(info->body,
			    "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL "
			    "NIL \"7bit\" 8 1)(\"text\" \"plain\" (\"charset\" "
			    "\"us-ascii\") NIL NIL \"7bit\" 3 1) \"mixed\")");
	mime_info_destroy(&info);

	/* Truncated: the last part runs to the end of the message. */
	info = parse("Content-Type: multipart/mixed; boundary=t\r\n\r\n--t\r\n"
		     "Content-Type: text/plain\r\n\r\npart one\r\n--t\r\n"
		     "Content-Type: application/zip\r\n\r\nPK\x03\x04");
	assert_string_equal(info->body,
			    "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL "
			    "NIL \"7bit\" 8 1)(\"application\" \"zip\" NIL NIL "
			    "NIL \"7bit\" 4) \"mixed\")");
	assert_int_equal(info->attachment_count, 1);
	assert_int_equal(info->attachments[0].body_len, 4);
	mime_info_destroy(&info);

	/* A multipart without boundary is an opaque leaf. */
	info = parse("Content-Type: multipart/mixed\r\n\r\nstuff\r\n");
	assert_string_equal(info->body, "(\"application\" \"octet-stream\" "
					"NIL NIL NIL \"7bit\" 7)");
	mime_info_destroy(&info);

	/* No delimiter at all: IMAP still gets one (empty) part. */
	info = parse("Content-Type: multipart/mixed; boundary=nope\r\n\r\n"
		     "stuff\r\n");
	assert_string_equal(info->body,
			    "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL "
			    "NIL \"7bit\" 0 0) \"mixed\")");
	mime_info_destroy(&info);

	/* Garbage Content-Type: the RFC 2045 default. */
	info = parse("Content-Type: ;;;/\r\n\r\nx\r\n");
	assert_string_equal(info->body, "(\"text\" \"plain\" (\"charset\" "
					"\"us-ascii\") NIL NIL \"7bit\" 3 1)");
	mime_info_destroy(&info);
}

/* Every prefix of a complex message parses, and every part it reports is
 * inside the message. */
static void
test_truncation_everywhere(void **state)
{
	size_t len = strlen(nested_msg), cut;

	for (cut = 1; cut <= len; cut++) {
		struct mime_info *info;
		const char *error;
		struct sp_buf buf;
		size_t i;

		assert_int_equal(mime_parse(nested_msg, cut, &info, &error), 0);
		for (i = 0; i < info->attachment_count; i++)
			assert_true(info->attachments[i].body_offset +
					    info->attachments[i].body_len <=
				    cut);
		sp_buf_init(&buf);
		assert_int_equal(mime_section(nested_msg, cut, "2.1", &buf), 0);
		assert_int_equal(mime_section(nested_msg, cut, "2.HEADER",
					      &buf),
				 0);
		assert_int_equal(mime_section(nested_msg, cut, "TEXT", &buf),
				 0);
		assert_true(buf.len <= 3 * cut);
		sp_buf_deinit(&buf);
		mime_info_destroy(&info);
	}
}

/* n multiparts nested inside each other, one text part at the bottom. */
static char *
make_nested(unsigned n, size_t *len_r)
{
	struct sp_buf buf;
	unsigned i;

	sp_buf_init(&buf);
	for (i = 0; i < n; i++)
		sp_buf_printf(&buf,
			      "Content-Type: multipart/mixed; boundary=b%u\r\n"
			      "\r\n--b%u\r\n",
			      i, i);
	sp_buf_append_str(&buf, "Content-Type: text/plain\r\n\r\ndeep\r\n");
	for (i = n; i-- > 0;)
		sp_buf_printf(&buf, "--b%u--\r\n", i);
	*len_r = buf.len;
	return sp_buf_steal(&buf, NULL);
}

static void
test_limits(void **state)
{
	struct mime_limits limits = { .max_header_bytes = 100,
				      .max_depth = 3,
				      .max_parts = 10 };
	const char *error = NULL;
	struct sp_buf buf;
	size_t len;
	char *msg;
	unsigned i;

	assert_int_equal(mime_check_limits(simple_msg, strlen(simple_msg),
					   &limits, &error),
			 -1);
	assert_string_equal(error, "header block too large");
	limits.max_header_bytes = 1000;
	assert_int_equal(mime_check_limits(simple_msg, strlen(simple_msg),
					   &limits, &error),
			 0);
	/* Without a blank line, all of it is header. */
	msg = xmalloc(2000);
	memset(msg, 'a', 2000);
	memcpy(msg, "X-Long: ", 8);
	assert_int_equal(mime_check_limits(msg, 2000, &limits, &error), -1);
	assert_int_equal(mime_check_limits(msg, 999, &limits, &error), 0);
	free(msg);

	/* Depth 3 passes, depth 4 does not. */
	msg = make_nested(3, &len);
	assert_int_equal(mime_check_limits(msg, len, &limits, &error), 0);
	free(msg);
	msg = make_nested(4, &len);
	assert_int_equal(mime_check_limits(msg, len, &limits, &error), -1);
	assert_string_equal(error, "MIME nesting too deep");
	free(msg);

	/* 1 + 9 parts pass, 1 + 10 do not. */
	for (i = 9; i <= 10; i++) {
		unsigned j;

		sp_buf_init(&buf);
		sp_buf_append_str(&buf, "Content-Type: multipart/mixed; "
					"boundary=p\r\n\r\n");
		for (j = 0; j < i; j++)
			sp_buf_printf(&buf, "--p\r\n\r\npart %u\r\n", j);
		sp_buf_append_str(&buf, "--p--\r\n");
		assert_int_equal(mime_check_limits(buf.data, buf.len, &limits,
						   &error),
				 i == 9 ? 0 : -1);
		if (i == 10)
			assert_string_equal(error, "too many MIME parts");
		sp_buf_deinit(&buf);
	}
}

static void
test_parse_caps(void **state)
{
	/* Deeper than MIME_MAX_DEPTH: parsed, the rest opaque. */
	size_t len;
	char *msg = make_nested(MIME_MAX_DEPTH + 50, &len);
	struct mime_limits limits = { 0 };
	struct mime_info *info;
	const char *error;
	struct sp_buf buf;

	assert_int_equal(mime_parse(msg, len, &info, &error), 0);
	assert_int_equal(info->part_count, MIME_MAX_DEPTH + 1);
	assert_non_null(strstr(info->bodystructure,
			       "(\"application\" \"octet-stream\""));
	mime_info_destroy(&info);
	assert_int_equal(mime_check_limits(msg, len, &limits, &error), -1);
	sp_buf_init(&buf);
	assert_int_equal(mime_section(msg, len, "1.1.1", &buf), 0);
	assert_true(str_has_prefix(buf.data, "--b3\r\n"));
	sp_buf_deinit(&buf);
	free(msg);
}

static void
test_header_get(void **state)
{
	char *v;

	v = mime_header_get(simple_msg, strlen(simple_msg), "subject");
	assert_string_equal(v, "Hello world");
	free(v);
	v = mime_header_get(simple_msg, strlen(simple_msg), "X-Missing");
	assert_null(v);
	/* Only the top-level header counts, not the body. */
	v = mime_header_get(alt_msg, strlen(alt_msg),
			    "Content-Transfer-Encoding");
	assert_null(v);
	v = mime_header_get("Subject: =?utf-8?q?=C3=A9t=C3=A9?=\r\n\r\n", 39,
			    "SUBJECT");
	assert_string_equal(v, "été");
	free(v);
	v = mime_header_get_raw("Subject: =?utf-8?q?=C3=A9t=C3=A9?=\r\n\r\n",
				39, "Subject");
	assert_string_equal(v, "=?utf-8?q?=C3=A9t=C3=A9?=");
	free(v);
	/* A field named like the start of another does not match. */
	v = mime_header_get("Subjects: no\r\nSubject : yes\r\n\r\n", 32,
			    "Subject");
	assert_string_equal(v, "yes");
	free(v);
}

static const char thread_latin1_msg[] =
	"Subject: =?ISO-8859-1?Q?Caf=E9?=\r\n"
	"From: =?iso-8859-15?q?J=F6rg?= <j@example.org>\r\n"
	"Content-Type: text/plain; charset=windows-1252\r\n"
	"\r\n"
	"na\xefve \x80\r\n";

static void *
thread_parse(void *arg)
{
	unsigned i;

	for (i = 0; i < 200; i++) {
		struct mime_info *info;
		const char *error;
		bool ok;

		if (mime_parse(nested_msg, strlen(nested_msg), &info, &error) <
		    0)
			return arg;
		ok = strstr(info->bodystructure, "\"inner subject\"") != NULL;
		mime_info_destroy(&info);
		if (!ok || mime_parse(thread_latin1_msg,
				      strlen(thread_latin1_msg), &info,
				      &error) < 0)
			return arg;
		ok = strcmp(info->subject, "Café") == 0 &&
		     strcmp(info->from, "Jörg <j@example.org>") == 0 &&
		     strcmp(info->text, "naïve €\r\n") == 0;
		mime_info_destroy(&info);
		if (!ok)
			return arg;
	}
	return NULL;
}

/* Submission's header edits: addresses of From, fields dropped with their
 * folded lines, fields prepended, the body untouched. */
static void
test_header_edits(void **state)
{
	static const char msg[] =
		"From: \"Alice A.\" <alice@ex.test>, team: bob@ex.test;\r\n"
		"Bcc: hidden@x.example,\r\n"
		"  other@x.example\r\n"
		"Subject: hi\r\n"
		"\r\n"
		"Bcc: in the body stays\r\n";
	static const char *const drop[] = {"bcc", NULL};
	struct sp_buf out;
	char **addrs;
	size_t count;

	assert_int_equal(mime_header_addresses(msg, strlen(msg), "From",
					       &addrs, &count),
			 1);
	assert_int_equal(count, 2);
	assert_string_equal(addrs[0], "alice@ex.test");
	assert_string_equal(addrs[1], "bob@ex.test");
	mime_addresses_free(&addrs, count);
	assert_int_equal(mime_header_addresses(msg, strlen(msg), "Sender",
					       &addrs, &count),
			 0);
	assert_true(mime_header_has(msg, strlen(msg), "subject"));
	assert_false(mime_header_has(msg, strlen(msg), "Date"));
	sp_buf_init(&out);
	mime_header_rewrite(msg, strlen(msg), "Date: now\r\n", drop, &out);
	sp_buf_append(&out, "", 1);
	assert_string_equal(out.data,
			    "Date: now\r\n"
			    "From: \"Alice A.\" <alice@ex.test>, team: "
			    "bob@ex.test;\r\n"
			    "Subject: hi\r\n"
			    "\r\n"
			    "Bcc: in the body stays\r\n");
	sp_buf_deinit(&out);
}

static void
test_threads(void **state)
{
	pthread_t threads[4];
	void *ret;
	unsigned i;

	for (i = 0; i < SP_N_ELEMENTS(threads); i++)
		assert_int_equal(pthread_create(&threads[i], NULL, thread_parse,
						threads),
				 0);
	for (i = 0; i < SP_N_ELEMENTS(threads); i++) {
		assert_int_equal(pthread_join(threads[i], &ret), 0);
		assert_null(ret);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_simple_text),
		cmocka_unit_test(test_multipart_alternative),
		cmocka_unit_test(test_multipart_mixed_attachment),
		cmocka_unit_test(test_nested_message),
		cmocka_unit_test(test_rfc2047_subjects),
		cmocka_unit_test(test_imap_quoting),
		cmocka_unit_test(test_rfc2231_filename),
		cmocka_unit_test(test_text_charsets_and_html),
		cmocka_unit_test(test_text_cap),
		cmocka_unit_test(test_digest),
		cmocka_unit_test(test_sections),
		cmocka_unit_test(test_sections_single_part),
		cmocka_unit_test(test_sections_bad_syntax),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_malformed_details),
		cmocka_unit_test(test_truncation_everywhere),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_parse_caps),
		cmocka_unit_test(test_header_get),
		cmocka_unit_test(test_header_edits),
		cmocka_unit_test(test_threads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
