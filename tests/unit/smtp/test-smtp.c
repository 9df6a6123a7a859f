#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "smtp/smtp.h"

#include <stdlib.h>
#include <string.h>

/* ---- command parser ------------------------------------------------------ */

static enum smtp_parse_result
parse(const char *line, struct smtp_command *cmd)
{
	return smtp_command_parse(line, strlen(line), cmd);
}

static void
test_parse_basic(void **state)
{
	struct smtp_command cmd;

	assert_int_equal(parse("EHLO mail.example.org", &cmd), SMTP_PARSE_OK);
	assert_int_equal(cmd.verb, SMTP_VERB_EHLO);
	assert_string_equal(cmd.arg, "mail.example.org");
	smtp_command_clear(&cmd);
	assert_int_equal(parse("helo  x ", &cmd), SMTP_PARSE_OK);
	assert_string_equal(cmd.arg, "x");
	smtp_command_clear(&cmd);
	assert_int_equal(parse("EHLO", &cmd), SMTP_PARSE_SYNTAX);
	assert_int_equal(parse("data", &cmd), SMTP_PARSE_OK);
	assert_int_equal(cmd.verb, SMTP_VERB_DATA);
	assert_int_equal(parse("DATA x", &cmd), SMTP_PARSE_SYNTAX);
	assert_int_equal(parse("QUIT", &cmd), SMTP_PARSE_OK);
	assert_int_equal(parse("FOO bar", &cmd), SMTP_PARSE_UNKNOWN);
	assert_int_equal(parse("", &cmd), SMTP_PARSE_UNKNOWN);
	assert_int_equal(smtp_command_parse("NOOP\0x", 6, &cmd),
			 SMTP_PARSE_SYNTAX);
	assert_int_equal(parse("NOOP\r", &cmd), SMTP_PARSE_SYNTAX);
	assert_int_equal(parse("VRFY someone", &cmd), SMTP_PARSE_OK);
	assert_int_equal(cmd.verb, SMTP_VERB_VRFY);
	smtp_command_clear(&cmd);
}

/* RFC 3461 parameters: parsed and decoded, the server decides whether
 * they are offered. */
static void
test_parse_dsn(void **state)
{
	struct smtp_command cmd;

	assert_int_equal(parse("MAIL FROM:<a@b.example> RET=HDRS ENVID=x+2By",
			       &cmd),
			 SMTP_PARSE_OK);
	assert_true(cmd.dsn);
	assert_int_equal(cmd.ret, SMTP_RET_HDRS);
	assert_string_equal(cmd.envid, "x+y");
	smtp_command_clear(&cmd);
	assert_int_equal(parse("MAIL FROM:<a@b.example> AUTH=<>", &cmd),
			 SMTP_PARSE_OK);
	assert_false(cmd.dsn);
	smtp_command_clear(&cmd);
	assert_int_equal(parse("RCPT TO:<u@d.example> NOTIFY=SUCCESS,DELAY "
			       "ORCPT=rfc822;u+40d.example",
			       &cmd),
			 SMTP_PARSE_OK);
	assert_int_equal(cmd.notify, SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_DELAY);
	assert_string_equal(cmd.orcpt, "rfc822;u@d.example");
	smtp_command_clear(&cmd);
	assert_int_equal(parse("RCPT TO:<u@d.example> NOTIFY=NEVER", &cmd),
			 SMTP_PARSE_OK);
	assert_int_equal(cmd.notify, SMTP_NOTIFY_NEVER);
	smtp_command_clear(&cmd);
	/* NEVER stands alone; unknown keywords, empty items, bad xtext,
	 * repeats and a missing address type are syntax errors. */
	assert_int_equal(parse("RCPT TO:<u@d> NOTIFY=NEVER,DELAY", &cmd),
			 SMTP_PARSE_SYNTAX);
	assert_int_equal(parse("RCPT TO:<u@d> NOTIFY=SOMETIMES", &cmd),
			 SMTP_PARSE_SYNTAX);
	assert_int_equal(parse("RCPT TO:<u@d> NOTIFY=DELAY,", &cmd),
			 SMTP_PARSE_SYNTAX);
	assert_int_equal(parse("RCPT TO:<u@d> ORCPT=u@d", &cmd),
			 SMTP_PARSE_SYNTAX);
	assert_int_equal(parse("RCPT TO:<u@d> ORCPT=rfc822;a+zzb", &cmd),
			 SMTP_PARSE_SYNTAX);
	assert_int_equal(parse("MAIL FROM:<a@b> RET=ALL", &cmd),
			 SMTP_PARSE_SYNTAX);
	assert_int_equal(parse("MAIL FROM:<a@b> RET=FULL RET=HDRS", &cmd),
			 SMTP_PARSE_SYNTAX);
	assert_int_equal(parse("MAIL FROM:<a@b> ENVID=a+0Ab", &cmd),
			 SMTP_PARSE_SYNTAX);
}

static void
test_parse_mail_rcpt(void **state)
{
	struct smtp_command cmd;

	assert_int_equal(parse("MAIL FROM:<a@b.example> SIZE=1000 BODY=8BITMIME",
			       &cmd),
			 SMTP_PARSE_OK);
	assert_string_equal(cmd.address, "a@b.example");
	assert_int_equal(cmd.size, 1000);
	assert_int_equal(cmd.body, SMTP_BODY_8BITMIME);
	assert_false(cmd.smtputf8);
	smtp_command_clear(&cmd);

	assert_int_equal(parse("mail from: <>", &cmd), SMTP_PARSE_OK);
	assert_string_equal(cmd.address, "");
	smtp_command_clear(&cmd);

	assert_int_equal(parse("RCPT TO:<@relay.example,@b.example:u@d.example>",
			       &cmd),
			 SMTP_PARSE_OK);
	assert_string_equal(cmd.address, "u@d.example");
	smtp_command_clear(&cmd);

	assert_int_equal(parse("RCPT TO:<\"a b>c\"@d.example>", &cmd),
			 SMTP_PARSE_OK);
	assert_string_equal(cmd.address, "\"a b>c\"@d.example");
	smtp_command_clear(&cmd);

	assert_int_equal(parse("RCPT TO:<>", &cmd), SMTP_PARSE_BAD_ADDRESS);
	assert_int_equal(parse("RCPT TO:<nodomain>", &cmd),
			 SMTP_PARSE_BAD_ADDRESS);
	assert_int_equal(parse("RCPT TO:u@d.example", &cmd), SMTP_PARSE_SYNTAX);
	assert_int_equal(parse("RCPT TO:<u@d.example", &cmd),
			 SMTP_PARSE_SYNTAX);
	assert_int_equal(parse("RCPT TO:<u@d.example> FOO=1", &cmd),
			 SMTP_PARSE_BAD_PARAM);
	assert_int_equal(parse("MAIL FROM:<a@b> FOO=1", &cmd),
			 SMTP_PARSE_BAD_PARAM);
	assert_int_equal(parse("MAIL FROM:<a@b> SIZE=x", &cmd),
			 SMTP_PARSE_SYNTAX);
	assert_int_equal(parse("MAIL TO:<a@b>", &cmd), SMTP_PARSE_SYNTAX);
	assert_int_equal(parse("MAIL FROM:<a b@c>", &cmd),
			 SMTP_PARSE_BAD_ADDRESS);

	/* UTF-8 needs SMTPUTF8 on MAIL; RCPT only reports it. */
	assert_int_equal(parse("MAIL FROM:<j\xc3\xb6@b.example>", &cmd),
			 SMTP_PARSE_NON_ASCII);
	assert_int_equal(parse("MAIL FROM:<j\xc3\xb6@b.example> SMTPUTF8",
			       &cmd),
			 SMTP_PARSE_OK);
	assert_true(cmd.smtputf8);
	smtp_command_clear(&cmd);
	assert_int_equal(parse("RCPT TO:<j\xc3\xb6@b.example>", &cmd),
			 SMTP_PARSE_OK);
	assert_true(cmd.address_utf8);
	smtp_command_clear(&cmd);

	/* Addresses longer than 256 octets are refused. */
	{
		char line[400];

		memset(line, 'a', sizeof(line));
		memcpy(line, "RCPT TO:<", 9);
		memcpy(line + 300, "@d.example>", 12);
		assert_int_equal(parse(line, &cmd), SMTP_PARSE_BAD_ADDRESS);
	}
}

static void
test_address_split(void **state)
{
	char *l, *d;

	assert_int_equal(smtp_address_split("a+b@c@d.example", &l, &d), 0);
	assert_string_equal(l, "a+b@c");
	assert_string_equal(d, "d.example");
	free(l);
	free(d);
	assert_int_equal(smtp_address_split("nodomain", &l, &d), -1);
	assert_int_equal(smtp_address_split("x@", &l, &d), -1);
}

/* ---- DATA reader --------------------------------------------------------- */

static size_t last_content_len;

/* Feeds all at once and byte by byte; both must agree. Returns the number
 * of bytes of `in` that belonged to DATA (0 when no end was found). */
static size_t
read_data(const char *in, size_t len, size_t max_size, size_t max_header,
	  char **content_r, enum smtp_data_error *error_r)
{
	struct smtp_data_reader a, b;
	size_t used_a = 0, used_b = 0, consumed;
	bool done_a, done_b = false;

	smtp_data_reader_init(&a, max_size, max_header);
	smtp_data_reader_init(&b, max_size, max_header);
	done_a = smtp_data_reader_feed(&a, in, len, &used_a);
	if (!done_a)
		used_a = 0;
	for (size_t i = 0; i < len && !done_b; i++) {
		done_b = smtp_data_reader_feed(&b, in + i, 1, &consumed);
		if (done_b)
			used_b = i + consumed;
	}
	assert_int_equal(done_a, done_b);
	assert_int_equal(used_a, used_b);
	assert_int_equal(a.content.len, b.content.len);
	if (a.content.len > 0)
		assert_memory_equal(a.content.data, b.content.data,
				    a.content.len);
	assert_int_equal(a.error, b.error);
	*content_r = xmalloc(a.content.len + 1);
	if (a.content.len > 0)
		memcpy(*content_r, a.content.data, a.content.len);
	(*content_r)[a.content.len] = '\0';
	last_content_len = a.content.len;
	*error_r = a.error;
	smtp_data_reader_deinit(&a);
	smtp_data_reader_deinit(&b);
	return used_a;
}

static void
expect_data(const char *in, const char *content, const char *rest)
{
	char *got;
	enum smtp_data_error error;
	size_t used = read_data(in, strlen(in), 0, 0, &got, &error);

	assert_int_not_equal(used, 0);
	assert_string_equal(got, content);
	assert_string_equal(in + used, rest);
	assert_int_equal(error, SMTP_DATA_ERR_NONE);
	free(got);
}

static void
test_data_basic(void **state)
{
	expect_data(".\r\n", "", "");
	expect_data("Subject: x\r\n\r\nhi\r\n.\r\nQUIT\r\n",
		    "Subject: x\r\n\r\nhi\r\n", "QUIT\r\n");
	/* dot-unstuffing */
	expect_data("a\r\n..b\r\n..\r\n...\r\n.\r\n", "a\r\n.b\r\n.\r\n..\r\n",
		    "");
	expect_data(".x\r\n.\r\n", "x\r\n", "");
	/* no end: nothing consumed as DATA end */
	{
		char *got;
		enum smtp_data_error error;

		assert_int_equal(read_data("a\r\n.", 5, 0, 0, &got, &error), 0);
		free(got);
	}
}

/* Every published smuggling end-of-data variant must stay content: after
 * the real CRLF.CRLF only the real next command remains. */
static void
test_data_smuggling(void **state)
{
	static const char *const fakes[] = {
		"\n.\n", "\n.\r\n", "\r.\r", "\r\n.\r", "\r.\r\n", "\r\n.\n",
		"\n.\r", "\r.\n", "\r\n\x00.\r\n", "\n..\n",
	};

	for (size_t i = 0; i < SP_N_ELEMENTS(fakes); i++) {
		struct sp_buf in;
		char *got;
		enum smtp_data_error error;
		size_t used, flen = strlen(fakes[i]);

		if (i == 8)
			flen = 6; /* holds a NUL */
		sp_buf_init(&in);
		sp_buf_append_str(&in, "Subject: a\r\n\r\nbody");
		sp_buf_append(&in, fakes[i], flen);
		sp_buf_append_str(&in, "MAIL FROM:<evil@x>\r\nRCPT TO:<v@y>\r\n"
				       "DATA\r\nSubject: smuggled\r\n\r\n"
				       "evil\r\n.\r\nQUIT\r\n");
		used = read_data(in.data, in.len, 0, 0, &got, &error);
		assert_int_not_equal(used, 0);
		/* The only thing left is the real QUIT after the real end. */
		assert_string_equal(in.data + used, "QUIT\r\n");
		assert_non_null(memmem(got, last_content_len, "Subject: smuggled", 17));
		/* No bare CR or LF survives in the content. */
		for (size_t k = 0; k < last_content_len; k++) {
			if (got[k] == '\r')
				assert_int_equal(got[k + 1], '\n');
			if (got[k] == '\n')
				assert_true(k > 0 && got[k - 1] == '\r');
		}
		free(got);
		sp_buf_deinit(&in);
	}
}

static void
test_data_normalise(void **state)
{
	expect_data("a\nb\rc\r\n.\r\n", "a\r\nb\r\nc\r\n", "");
	/* "." after a bare LF is content and kept as a "." line */
	expect_data("a\n.\nb\r\n.\r\n", "a\r\n.\r\nb\r\n", "");
	/* "\r\n.\r" then not LF: content */
	expect_data("a\r\n.\rb\r\n.\r\n", "a\r\n.\r\nb\r\n", "");
}

static void
test_data_limits(void **state)
{
	char *got;
	enum smtp_data_error error;
	const char *msg = "Subject: 0123456789\r\n\r\nbody body body\r\n.\r\nX";
	size_t used;

	used = read_data(msg, strlen(msg), 10, 0, &got, &error);
	assert_int_equal(error, SMTP_DATA_ERR_TOO_BIG);
	assert_string_equal(msg + used, "X");
	free(got);
	used = read_data(msg, strlen(msg), 0, 15, &got, &error);
	assert_int_equal(error, SMTP_DATA_ERR_HEADER_BIG);
	assert_string_equal(msg + used, "X");
	free(got);
	/* The header limit applies to the header only. */
	used = read_data(msg, strlen(msg), 0, 30, &got, &error);
	assert_int_equal(error, SMTP_DATA_ERR_NONE);
	free(got);
	/* Exactly at the size limit is fine. */
	used = read_data(msg, strlen(msg), 39, 0, &got, &error);
	assert_int_equal(error, SMTP_DATA_ERR_NONE);
	assert_int_equal(strlen(got), 39);
	free(got);
}

static void
test_data_encode_roundtrip(void **state)
{
	const char *msg = "a\r\n.b\r\n.\r\n..\r\nend";
	struct sp_buf out;
	char *got;
	enum smtp_data_error error;

	sp_buf_init(&out);
	smtp_data_encode(msg, strlen(msg), &out);
	assert_string_equal(out.data, "a\r\n..b\r\n..\r\n...\r\nend\r\n");
	sp_buf_append_str(&out, ".\r\n");
	assert_int_not_equal(read_data(out.data, out.len, 0, 0, &got, &error),
			     0);
	assert_string_equal(got, "a\r\n.b\r\n.\r\n..\r\nend\r\n");
	free(got);
	sp_buf_reset(&out);
	smtp_data_encode("x\ny\r", 4, &out);
	assert_string_equal(out.data, "x\r\ny\r\n");
	sp_buf_deinit(&out);
}

/* ---- classification ------------------------------------------------------ */

struct reply_case {
	int code;
	const char *enhanced;
	const char *text;
	enum smtp_reply_action action;
	enum smtp_reply_category category;
};

/* Real answers as large providers and stock MTAs send them. */
static const struct reply_case reply_cases[] = {
	/* Gmail */
	{550, "5.1.1", "The email account that you tried to reach does not "
		       "exist. Please try double-checking the recipient's email "
		       "address for typos or unnecessary spaces.",
	 SMTP_REPLY_REJECT, SMTP_CAT_RECIPIENT},
	{452, "4.2.2", "The email account that you tried to reach is over "
		       "quota. Please direct the recipient to "
		       "https://support.google.com/mail/?p=OverQuotaTemp",
	 SMTP_REPLY_DEFER, SMTP_CAT_MAILBOX_FULL},
	{550, "5.7.1", "[192.0.2.1] Our system has detected that this message "
		       "is likely unsolicited mail. To reduce the amount of "
		       "spam sent to Gmail, this message has been blocked.",
	 SMTP_REPLY_REJECT, SMTP_CAT_SPAM},
	{552, "5.7.0", "This message was blocked because its content presents "
		       "a potential security issue.",
	 SMTP_REPLY_REJECT, SMTP_CAT_VIRUS},
	{550, "5.7.26", "This mail has been blocked because the sender is "
			"unauthenticated. Gmail requires all senders to "
			"authenticate with either SPF or DKIM.",
	 SMTP_REPLY_REJECT, SMTP_CAT_DMARC},
	{550, "5.7.26", "Unauthenticated email from example.org is not "
			"accepted due to domain's DMARC policy.",
	 SMTP_REPLY_REJECT, SMTP_CAT_DMARC},
	{421, "4.7.28", "[192.0.2.1] Our system has detected an unusual rate "
			"of unsolicited mail originating from your IP address.",
	 SMTP_REPLY_DEFER, SMTP_CAT_SPAM},
	{552, "5.2.3", "Your message exceeded Google's message size limits.",
	 SMTP_REPLY_REJECT, SMTP_CAT_SIZE},
	{452, "4.5.3", "Your message has too many recipients.",
	 SMTP_REPLY_DEFER, SMTP_CAT_POLICY},
	{421, "4.7.0", "TLS required for RCPT domain, closing connection.",
	 SMTP_REPLY_DEFER, SMTP_CAT_TLS},
	{550, "5.7.25", "The IP address sending this message does not have a "
			"PTR record setup, or the corresponding forward DNS "
			"entry does not point to the sending IP.",
	 SMTP_REPLY_REJECT, SMTP_CAT_POLICY},
	{550, "5.2.1", "The email account that you tried to reach is "
		       "disabled.",
	 SMTP_REPLY_REJECT, SMTP_CAT_RECIPIENT},
	/* Outlook.com / Microsoft 365 */
	{550, "5.5.0", "Requested action not taken: mailbox unavailable "
		       "(S2017062302).",
	 SMTP_REPLY_REJECT, SMTP_CAT_RECIPIENT},
	{550, "5.1.10", "RESOLVER.ADR.RecipientNotFound; Recipient not found "
			"by SMTP address lookup",
	 SMTP_REPLY_REJECT, SMTP_CAT_RECIPIENT},
	{550, "5.4.1", "Recipient address rejected: Access denied. "
		       "AS(201806281)",
	 SMTP_REPLY_REJECT, SMTP_CAT_RECIPIENT},
	{550, "5.7.1", "Unfortunately, messages from [192.0.2.1] weren't sent. "
		       "Please contact your Internet service provider since "
		       "part of their network is on our block list (S3140).",
	 SMTP_REPLY_REJECT, SMTP_CAT_BLOCKLIST},
	{550, "5.7.606", "Access denied, banned sending IP [192.0.2.1].",
	 SMTP_REPLY_REJECT, SMTP_CAT_BLOCKLIST},
	{550, "5.7.708", "Service unavailable. Access denied, traffic not "
			 "accepted from this IP.",
	 SMTP_REPLY_REJECT, SMTP_CAT_BLOCKLIST},
	{451, "4.7.500", "Server busy. Please try again later from "
			 "[192.0.2.1]. (S77719)",
	 SMTP_REPLY_DEFER, SMTP_CAT_POLICY},
	{452, "4.3.1", "Insufficient system resources (UsedDiskSpace)",
	 SMTP_REPLY_DEFER, SMTP_CAT_OTHER},
	{550, "5.7.509", "Access denied, sending domain example.org does not "
			 "pass DMARC verification and has a DMARC policy of "
			 "reject.",
	 SMTP_REPLY_REJECT, SMTP_CAT_DMARC},
	{554, "5.6.211", "Invalid MIME Content: Single text value size "
			 "(32004) exceeded allowed maximum (32000)",
	 SMTP_REPLY_REJECT, SMTP_CAT_SIZE},
	/* Yahoo / AOL */
	{421, "4.7.0", "[TSS04] Messages from 192.0.2.1 temporarily deferred "
		       "due to unexpected volume or user complaints",
	 SMTP_REPLY_DEFER, SMTP_CAT_POLICY},
	{553, "5.7.2", "[TSS09] All messages from 192.0.2.1 will be "
		       "permanently deferred; Retrying will NOT succeed.",
	 SMTP_REPLY_REJECT, SMTP_CAT_BLOCKLIST},
	{554, "5.7.9", "Message not accepted for policy reasons.",
	 SMTP_REPLY_REJECT, SMTP_CAT_POLICY},
	{554, NULL, "delivery error: dd This user doesn't have a yahoo.com "
		    "account (someone@yahoo.com) [0] - mta1001.mail.ne1.yahoo.com",
	 SMTP_REPLY_REJECT, SMTP_CAT_RECIPIENT},
	{554, NULL, "delivery error: dd Requested mailbox is full [0]",
	 SMTP_REPLY_REJECT, SMTP_CAT_MAILBOX_FULL},
	{550, "5.7.9", "This mail has been blocked because the sender is "
		       "unauthenticated. Yahoo requires all senders to "
		       "authenticate with either SPF or DKIM.",
	 SMTP_REPLY_REJECT, SMTP_CAT_DMARC},
	/* iCloud */
	{550, "5.1.1", "<someone@icloud.com>: user does not exist",
	 SMTP_REPLY_REJECT, SMTP_CAT_RECIPIENT},
	{552, "5.2.2", "<someone@icloud.com>: user is over quota",
	 SMTP_REPLY_REJECT, SMTP_CAT_MAILBOX_FULL},
	{554, "5.7.1", "[CS01] Message rejected due to local policy. Please "
		       "visit https://support.apple.com/en-us/HT204137",
	 SMTP_REPLY_REJECT, SMTP_CAT_POLICY},
	{550, "5.7.0", "Blocked - see https://support.proofpoint.com/"
		       "dnsbl-lookup.cgi?ip=192.0.2.1",
	 SMTP_REPLY_REJECT, SMTP_CAT_BLOCKLIST},
	/* Proton, Fastmail */
	{550, "5.1.1", "Address does not exist", SMTP_REPLY_REJECT,
	 SMTP_CAT_RECIPIENT},
	{552, "5.2.2", "Mailbox is full / Blocks limit exceeded / Inode limit "
		       "exceeded",
	 SMTP_REPLY_REJECT, SMTP_CAT_MAILBOX_FULL},
	{550, "5.7.1", "Message rejected as spam by Content Filtering.",
	 SMTP_REPLY_REJECT, SMTP_CAT_SPAM},
	{550, "5.1.1", "<someone@fastmail.com>: Recipient address rejected: "
		       "User unknown in virtual mailbox table",
	 SMTP_REPLY_REJECT, SMTP_CAT_RECIPIENT},
	/* Postfix defaults */
	{554, "5.7.1", "Service unavailable; Client host [192.0.2.1] blocked "
		       "using zen.spamhaus.org; https://www.spamhaus.org/"
		       "query/ip/192.0.2.1",
	 SMTP_REPLY_REJECT, SMTP_CAT_BLOCKLIST},
	{450, "4.2.0", "<u@example.org>: Recipient address rejected: "
		       "Greylisted, see http://postgrey.schweikert.ch/help/"
		       "example.org.html",
	 SMTP_REPLY_DEFER, SMTP_CAT_GREYLIST},
	{552, "5.3.4", "Message size exceeds fixed limit", SMTP_REPLY_REJECT,
	 SMTP_CAT_SIZE},
	{554, "5.7.1", "<u@example.org>: Relay access denied",
	 SMTP_REPLY_REJECT, SMTP_CAT_POLICY},
	{450, "4.7.1", "Client host rejected: cannot find your hostname, "
		       "[192.0.2.1]",
	 SMTP_REPLY_DEFER, SMTP_CAT_POLICY},
	{451, "4.3.0", "Error: queue file write error", SMTP_REPLY_DEFER,
	 SMTP_CAT_OTHER},
	{550, "5.1.1", "<u@example.org>: Recipient address rejected: User "
		       "unknown in local recipient table",
	 SMTP_REPLY_REJECT, SMTP_CAT_RECIPIENT},
	{530, "5.7.0", "Must issue a STARTTLS command first",
	 SMTP_REPLY_REJECT, SMTP_CAT_TLS},
	{452, "4.2.2", "Mailbox full", SMTP_REPLY_DEFER,
	 SMTP_CAT_MAILBOX_FULL},
	/* Exim defaults, rspamd, ClamAV */
	{550, NULL, "Unrouteable address", SMTP_REPLY_REJECT,
	 SMTP_CAT_RECIPIENT},
	{550, NULL, "Administrative prohibition", SMTP_REPLY_REJECT,
	 SMTP_CAT_POLICY},
	{451, NULL, "Temporary local problem - please try later",
	 SMTP_REPLY_DEFER, SMTP_CAT_OTHER},
	{552, NULL, "Message size exceeds maximum permitted",
	 SMTP_REPLY_REJECT, SMTP_CAT_SIZE},
	{451, "4.7.1", "Greylisting in action, please come back later",
	 SMTP_REPLY_DEFER, SMTP_CAT_GREYLIST},
	{554, "5.7.1", "Spam message rejected", SMTP_REPLY_REJECT,
	 SMTP_CAT_SPAM},
	{550, NULL, "This message contains a virus (Eicar-Test-Signature)",
	 SMTP_REPLY_REJECT, SMTP_CAT_VIRUS},
	{421, NULL, "mx.example.org lost input connection", SMTP_REPLY_DEFER,
	 SMTP_CAT_NETWORK},
	{421, "4.4.2", "mx.example.org Error: timeout exceeded",
	 SMTP_REPLY_DEFER, SMTP_CAT_NETWORK},
	/* Our own failures before any answer */
	{0, NULL, "connect: Connection refused", SMTP_REPLY_DEFER,
	 SMTP_CAT_NETWORK},
	{0, NULL, "TLS handshake failed", SMTP_REPLY_DEFER, SMTP_CAT_TLS},
	{250, "2.0.0", "OK 1700000000 x", SMTP_REPLY_OK, SMTP_CAT_NONE},
	/* No text, enhanced code only */
	{550, "5.1.1", NULL, SMTP_REPLY_REJECT, SMTP_CAT_RECIPIENT},
	{552, "5.2.2", "", SMTP_REPLY_REJECT, SMTP_CAT_MAILBOX_FULL},
	{550, "5.7.1", "", SMTP_REPLY_REJECT, SMTP_CAT_POLICY},
	{451, "4.4.1", "", SMTP_REPLY_DEFER, SMTP_CAT_NETWORK},
	/* Words that merely contain a short keyword do not match it. */
	{550, NULL, "Horrible error", SMTP_REPLY_REJECT, SMTP_CAT_RECIPIENT},
};

static void
test_reply_classify(void **state)
{
	for (size_t i = 0; i < SP_N_ELEMENTS(reply_cases); i++) {
		const struct reply_case *c = &reply_cases[i];
		struct smtp_reply_class cls =
			smtp_reply_classify(c->code, c->enhanced, c->text);

		if (cls.action != c->action || cls.category != c->category)
			fail_msg("case %zu (%d %s): got %d/%s, want %d/%s", i,
				 c->code, c->text != NULL ? c->text : "",
				 cls.action,
				 smtp_reply_category_name(cls.category),
				 c->action,
				 smtp_reply_category_name(c->category));
	}
	assert_string_equal(smtp_reply_category_name(SMTP_CAT_MAILBOX_FULL),
			    "mailbox-full");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_basic),
		cmocka_unit_test(test_parse_mail_rcpt),
		cmocka_unit_test(test_address_split),
		cmocka_unit_test(test_data_basic),
		cmocka_unit_test(test_data_smuggling),
		cmocka_unit_test(test_data_normalise),
		cmocka_unit_test(test_data_limits),
		cmocka_unit_test(test_data_encode_roundtrip),
		cmocka_unit_test(test_reply_classify),
		cmocka_unit_test(test_parse_dsn),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
