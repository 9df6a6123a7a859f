#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/core.h"
#include "crypto/crypto.h"
#include "mailauth/mailauth-private.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* RFC 6376 3.4.6, the example message. */
static const char rfc_example[] = "A: X\r\n"
				  "B : Y\t\r\n"
				  "\tZ  \r\n"
				  "\r\n"
				  " C \r\n"
				  "D \t E\r\n"
				  "\r\n"
				  "\r\n";

static void
canon_headers(enum mailauth_canon canon, const char *msg, struct sp_buf *out)
{
	struct mailauth_msg m;

	mailauth_msg_parse(msg, strlen(msg), &m);
	for (size_t i = 0; i < m.count; i++)
		mailauth_canon_header(canon, m.headers[i].raw,
				      m.headers[i].raw_len, false, out);
	mailauth_msg_deinit(&m);
}

static void
test_canon_rfc_example(void **state)
{
	struct sp_buf out;
	struct mailauth_msg m;
	char *body;
	size_t len;

	sp_buf_init(&out);
	canon_headers(MAILAUTH_CANON_RELAXED, rfc_example, &out);
	assert_string_equal(out.data, "a:X\r\nb:Y Z\r\n");
	sp_buf_reset(&out);
	canon_headers(MAILAUTH_CANON_SIMPLE, rfc_example, &out);
	assert_string_equal(out.data, "A: X\r\nB : Y\t\r\n\tZ  \r\n");
	sp_buf_deinit(&out);

	mailauth_msg_parse(rfc_example, strlen(rfc_example), &m);
	assert_int_equal(m.count, 2);
	body = mailauth_body_canon_string(MAILAUTH_CANON_RELAXED, m.body,
					  m.body_len, &len);
	assert_int_equal(len, strlen(" C\r\nD E\r\n"));
	assert_memory_equal(body, " C\r\nD E\r\n", len);
	free(body);
	body = mailauth_body_canon_string(MAILAUTH_CANON_SIMPLE, m.body,
					  m.body_len, &len);
	assert_int_equal(len, strlen(" C \r\nD \t E\r\n"));
	assert_memory_equal(body, " C \r\nD \t E\r\n", len);
	free(body);
	mailauth_msg_deinit(&m);
}

static void
test_canon_body_edges(void **state)
{
	char *b;
	size_t len;

	/* Empty body: simple is one CRLF, relaxed is empty. */
	b = mailauth_body_canon_string(MAILAUTH_CANON_SIMPLE, "", 0, &len);
	assert_int_equal(len, 2);
	assert_memory_equal(b, "\r\n", 2);
	free(b);
	b = mailauth_body_canon_string(MAILAUTH_CANON_RELAXED, "\r\n\r\n", 4,
				       &len);
	assert_int_equal(len, 0);
	free(b);
	/* No final CRLF: one is added. Bare LF reads as CRLF. */
	b = mailauth_body_canon_string(MAILAUTH_CANON_SIMPLE, "a\nb", 3, &len);
	assert_int_equal(len, 6);
	assert_memory_equal(b, "a\r\nb\r\n", 6);
	free(b);
	/* Whitespace-only lines at the end vanish in relaxed. */
	b = mailauth_body_canon_string(MAILAUTH_CANON_RELAXED,
				       "x \t\r\n \r\n\t\r\n", 11, &len);
	assert_int_equal(len, 3);
	assert_memory_equal(b, "x\r\n", 3);
	free(b);
	/* ...but not in simple: " \r\n" is not an empty line. */
	b = mailauth_body_canon_string(MAILAUTH_CANON_SIMPLE, "x\r\n \r\n\r\n",
				       8, &len);
	assert_int_equal(len, 6);
	free(b);
}

/* The streamed canonicalizer must give the digest of the one-shot one,
 * whatever the chunking (byte by byte here). */
static void
test_canon_body_streamed(void **state)
{
	static const char body[] = "a  b \r\n\r\n c\t\r\n\r\n\r\n";
	enum mailauth_canon canons[] = {MAILAUTH_CANON_SIMPLE,
					MAILAUTH_CANON_RELAXED};

	for (size_t c = 0; c < 2; c++) {
		struct mailauth_body_canon bc;
		unsigned char d1[32], d2[32];
		size_t len;
		char *s = mailauth_body_canon_string(canons[c], body,
						     strlen(body), &len);

		EVP_Digest(s, len, d1, NULL, EVP_sha256(), NULL);
		free(s);
		mailauth_body_canon_init(&bc, canons[c], -1);
		for (size_t i = 0; i < strlen(body); i++)
			mailauth_body_canon_feed(&bc, body + i, 1);
		mailauth_body_canon_finish(&bc, d2);
		assert_memory_equal(d1, d2, 32);
	}
}

static void
test_tags(void **state)
{
	static const char text[] = " v=1; a=rsa-sha256;\r\n\tb=ab cd\r\n ef ;"
				   " h = from : to ;";
	struct mailauth_tags tags;
	const struct mailauth_tag *b;

	assert_int_equal(mailauth_tags_parse(text, strlen(text), &tags), 0);
	assert_int_equal(tags.count, 4);
	assert_string_equal(mailauth_tags_get(&tags, "v"), "1");
	assert_string_equal(mailauth_tags_get(&tags, "h"), "from : to");
	b = mailauth_tags_find(&tags, "b");
	assert_string_equal(b->value, "ab cd\r\n ef");
	/* The raw range runs from after '=' to the ';'. */
	assert_memory_equal(text + b->value_off, "ab cd\r\n ef ", b->value_len);
	assert_null(mailauth_tags_get(&tags, "x"));
	mailauth_tags_deinit(&tags);

	assert_int_equal(mailauth_tags_parse("a=1; a=2", 8, &tags), -1);
	assert_int_equal(mailauth_tags_parse("=1", 2, &tags), -1);
	assert_int_equal(mailauth_tags_parse("a", 1, &tags), -1);
	assert_int_equal(mailauth_tags_parse("1a=x", 4, &tags), -1);
	assert_int_equal(mailauth_tags_parse("", 0, &tags), 0);
	assert_int_equal(tags.count, 0);
	assert_int_equal(mailauth_tags_parse("a=;", 3, &tags), 0);
	assert_string_equal(mailauth_tags_get(&tags, "a"), "");
	mailauth_tags_deinit(&tags);
}

/* DKIM */

static const char test_msg[] = "From: Alice <alice@example.org>\r\n"
			       "To: bob@example.net\r\n"
			       "Subject: a folded\r\n"
			       "  subject   with space \r\n"
			       "Date: Mon, 23 Nov 2026 18:00:00 +0000\r\n"
			       "Message-ID: <1@example.org>\r\n"
			       "\r\n"
			       "Hello  Bob, \r\n"
			       "\r\n"
			       "bye\r\n"
			       "\r\n\r\n";

static struct mailauth_dns *
dns_with_key(const struct mailauth_key *key, const char *name)
{
	struct mailauth_dns *dns = mailauth_dns_table_create();
	char *rec = mailauth_key_dns_record(key);
	char *line = xasprintf("%s TXT %s\n", name, rec);
	const char *error;

	assert_int_equal(mailauth_dns_table_add(dns, line, &error), 0);
	free(line);
	free(rec);
	return dns;
}

static char *
cat(const char *a, const char *b)
{
	return xasprintf("%s%s", a, b);
}

/* The first occurrence of needle in the body: a search from the top of the
 * message could land inside a random signature's base64 (it did, in CI). */
static char *
body_find(char *msg, const char *needle)
{
	char *body = strstr(msg, "\r\n\r\n");
	char *at;

	assert_non_null(body);
	at = strstr(body, needle);
	assert_non_null(at);
	return at;
}

static void
dkim_roundtrip(enum mailauth_key_type type, enum mailauth_canon hc,
	       enum mailauth_canon bc)
{
	const char *error;
	struct mailauth_key *key = mailauth_key_generate(type, &error);
	struct mailauth_dns *dns =
		dns_with_key(key, "sel._domainkey.example.org");
	struct mailauth_dkim_sign_params p = {
		.domain = "example.org",
		.selector = "sel",
		.key = key,
		.header_canon = hc,
		.body_canon = bc,
	};
	struct mailauth_dkim_sig *sigs;
	size_t n;
	char *hdr, *signed_msg, *bad;

	assert_int_equal(mailauth_dkim_sign(&p, test_msg, strlen(test_msg),
					    &hdr, &error),
			 0);
	assert_true(str_has_prefix(hdr, "DKIM-Signature: v=1; a="));
	for (char *l = hdr; (l = strchr(l, '\n')) != NULL; l++)
		; /* lines are folded; checked by dkimpy in pytest */
	signed_msg = cat(hdr, test_msg);
	mailauth_dkim_verify(dns, signed_msg, strlen(signed_msg), 0, &sigs, &n);
	assert_int_equal(n, 1);
	assert_int_equal(sigs[0].result, MAILAUTH_PASS);
	assert_string_equal(sigs[0].domain, "example.org");
	assert_int_equal(sigs[0].algorithm, type);
	mailauth_dkim_sigs_free(&sigs, n);

	/* A changed body fails; so does an added From. */
	bad = xstrdup(signed_msg);
	*body_find(bad, "bye") = 'B';
	mailauth_dkim_verify(dns, bad, strlen(bad), 0, &sigs, &n);
	assert_int_equal(sigs[0].result, MAILAUTH_FAIL);
	assert_string_equal(sigs[0].reason, "body hash mismatch");
	mailauth_dkim_sigs_free(&sigs, n);
	free(bad);
	bad = cat(signed_msg, "");
	{
		char *extra = xasprintf("From: mallory@example.com\r\n%s", bad);

		mailauth_dkim_verify(dns, extra, strlen(extra), 0, &sigs, &n);
		assert_int_equal(sigs[0].result, MAILAUTH_FAIL);
		mailauth_dkim_sigs_free(&sigs, n);
		free(extra);
	}
	free(bad);
	free(signed_msg);
	free(hdr);
	mailauth_dns_destroy(&dns);
	mailauth_key_destroy(&key);
}

static void
test_dkim_rsa(void **state)
{
	dkim_roundtrip(MAILAUTH_KEY_RSA, MAILAUTH_CANON_RELAXED,
		       MAILAUTH_CANON_RELAXED);
	dkim_roundtrip(MAILAUTH_KEY_RSA, MAILAUTH_CANON_SIMPLE,
		       MAILAUTH_CANON_SIMPLE);
}

static void
test_dkim_ed25519(void **state)
{
	dkim_roundtrip(MAILAUTH_KEY_ED25519, MAILAUTH_CANON_RELAXED,
		       MAILAUTH_CANON_RELAXED);
	dkim_roundtrip(MAILAUTH_KEY_ED25519, MAILAUTH_CANON_RELAXED,
		       MAILAUTH_CANON_SIMPLE);
}

static void
test_dkim_key_errors(void **state)
{
	const char *error;
	struct mailauth_key *key =
		mailauth_key_generate(MAILAUTH_KEY_ED25519, &error);
	struct mailauth_dkim_sign_params p = {
		.domain = "example.org",
		.selector = "sel",
		.key = key,
	};
	struct mailauth_dns *dns = mailauth_dns_table_create();
	struct mailauth_dkim_sig *sigs;
	char *hdr, *m;
	size_t n;

	assert_int_equal(mailauth_dkim_sign(&p, test_msg, strlen(test_msg),
					    &hdr, &error),
			 0);
	m = cat(hdr, test_msg);
	/* No key record: permerror. */
	mailauth_dkim_verify(dns, m, strlen(m), 0, &sigs, &n);
	assert_int_equal(sigs[0].result, MAILAUTH_PERMERROR);
	mailauth_dkim_sigs_free(&sigs, n);
	mailauth_dns_destroy(&dns);
	/* DNS failure: temperror. */
	dns = mailauth_dns_table_create();
	assert_int_equal(
		mailauth_dns_table_add(
			dns, "sel._domainkey.example.org TEMPFAIL", &error),
		0);
	mailauth_dkim_verify(dns, m, strlen(m), 0, &sigs, &n);
	assert_int_equal(sigs[0].result, MAILAUTH_TEMPERROR);
	mailauth_dkim_sigs_free(&sigs, n);
	mailauth_dns_destroy(&dns);
	/* Revoked key (empty p=). */
	dns = mailauth_dns_table_create();
	assert_int_equal(
		mailauth_dns_table_add(
			dns,
			"sel._domainkey.example.org TXT v=DKIM1; p=", &error),
		0);
	mailauth_dkim_verify(dns, m, strlen(m), 0, &sigs, &n);
	assert_int_equal(sigs[0].result, MAILAUTH_PERMERROR);
	mailauth_dkim_sigs_free(&sigs, n);
	mailauth_dns_destroy(&dns);
	/* Expired signature (x=). */
	free(hdr);
	free(m);
	p.expire_secs = 60;
	assert_int_equal(mailauth_dkim_sign(&p, test_msg, strlen(test_msg),
					    &hdr, &error),
			 0);
	m = cat(hdr, test_msg);
	dns = dns_with_key(key, "sel._domainkey.example.org");
	mailauth_dkim_verify(dns, m, strlen(m), 0, &sigs, &n);
	assert_int_equal(sigs[0].result, MAILAUTH_PASS);
	mailauth_dkim_sigs_free(&sigs, n);
	clock_set_offset(3600);
	mailauth_dkim_verify(dns, m, strlen(m), 0, &sigs, &n);
	clock_set_offset(0);
	assert_int_equal(sigs[0].result, MAILAUTH_FAIL);
	assert_string_equal(sigs[0].reason, "signature expired");
	mailauth_dkim_sigs_free(&sigs, n);
	mailauth_dns_destroy(&dns);
	free(hdr);
	free(m);
	mailauth_key_destroy(&key);
}

static struct mailauth_dns *zone(const char *text);

static char *
replace_once(const char *s, const char *from, const char *to)
{
	const char *at = strstr(s, from);

	assert_non_null(at);
	return xasprintf("%.*s%s%s", (int)(at - s), s, to, at + strlen(from));
}

static enum mailauth_result
verify_one(struct mailauth_dns *dns, const char *m, const char **reason_r)
{
	struct mailauth_dkim_sig *sigs;
	enum mailauth_result r;
	size_t n;

	mailauth_dkim_verify(dns, m, strlen(m), 0, &sigs, &n);
	assert_int_equal(n, 1);
	r = sigs[0].result;
	if (reason_r != NULL)
		*reason_r = sigs[0].reason;
	mailauth_dkim_sigs_free(&sigs, n);
	return r;
}

static void
test_dkim_signature_checks(void **state)
{
	const char *error, *reason;
	struct mailauth_key *rsa =
		mailauth_key_generate(MAILAUTH_KEY_RSA, &error);
	struct mailauth_key *ed =
		mailauth_key_generate(MAILAUTH_KEY_ED25519, &error);
	struct mailauth_dns *dns =
		dns_with_key(rsa, "sel._domainkey.example.org");
	struct mailauth_dkim_sign_params p = {
		.domain = "example.org",
		.selector = "sel",
		.key = rsa,
	};
	static const char *const no_from[] = {"to", "subject", NULL};
	char *hdr, *m, *bad, *lf;
	size_t j = 0;

	assert_int_equal(mailauth_dkim_sign(&p, test_msg, strlen(test_msg),
					    &hdr, &error),
			 0);
	m = cat(hdr, test_msg);
	free(hdr);
	assert_int_equal(verify_one(dns, m, NULL), MAILAUTH_PASS);

	/* The same message with bare LF line ends still verifies. */
	lf = xmalloc(strlen(m) + 1);
	for (size_t i = 0; m[i] != '\0'; i++) {
		if (m[i] != '\r')
			lf[j++] = m[i];
	}
	lf[j] = '\0';
	assert_int_equal(verify_one(dns, lf, NULL), MAILAUTH_PASS);
	free(lf);

	bad = replace_once(m, "v=1;", "v=2;");
	assert_int_equal(verify_one(dns, bad, NULL), MAILAUTH_NEUTRAL);
	free(bad);
	bad = replace_once(m, "a=rsa-sha256", "a=rsa-sha1");
	assert_int_equal(verify_one(dns, bad, &reason), MAILAUTH_PERMERROR);
	assert_string_equal(reason, "unsupported algorithm");
	free(bad);
	bad = replace_once(m, "h=from:from:", "h=subject:to:");
	assert_int_equal(verify_one(dns, bad, &reason), MAILAUTH_NEUTRAL);
	assert_string_equal(reason, "From not signed");
	free(bad);
	bad = replace_once(m, "d=example.org;", "d=example.org; i=@evil.test;");
	assert_int_equal(verify_one(dns, bad, &reason), MAILAUTH_NEUTRAL);
	assert_string_equal(reason, "i= not within d=");
	free(bad);
	bad = replace_once(m, "v=1;", "v=1; v=1;");
	assert_int_equal(verify_one(dns, bad, &reason), MAILAUTH_NEUTRAL);
	free(bad);
	/* An added copy of an over-signed field breaks the signature. */
	bad = replace_once(m, "Subject:", "Subject: again\r\nSubject:");
	assert_int_equal(verify_one(dns, bad, NULL), MAILAUTH_FAIL);
	free(bad);
	/* A header the signer did not sign may be added. */
	bad = replace_once(m, "Subject:", "X-Added: yes\r\nSubject:");
	assert_int_equal(verify_one(dns, bad, NULL), MAILAUTH_PASS);
	free(bad);
	free(m);

	/* A key of the wrong type for a=. */
	p.key = ed;
	assert_int_equal(mailauth_dkim_sign(&p, test_msg, strlen(test_msg),
					    &hdr, &error),
			 0);
	m = cat(hdr, test_msg);
	free(hdr);
	assert_int_equal(verify_one(dns, m, &reason), MAILAUTH_PERMERROR);
	assert_string_equal(reason, "key type does not match a=");
	free(m);

	/* From must be in an explicit header list. */
	p.headers = no_from;
	assert_int_equal(mailauth_dkim_sign(&p, test_msg, strlen(test_msg),
					    &hdr, &error),
			 -1);
	p.headers = NULL;

	/* t=s: i= must be exactly d=. */
	mailauth_dns_destroy(&dns);
	{
		char *rec = mailauth_key_dns_record(rsa);
		char *z = xasprintf("sel._domainkey.example.org TXT %s; t=s\n"
				    "loose._domainkey.example.org TXT %s\n",
				    rec, rec);

		dns = zone(z);
		free(z);
		free(rec);
	}
	p.key = rsa;
	p.identity = "@mail.example.org";
	assert_int_equal(mailauth_dkim_sign(&p, test_msg, strlen(test_msg),
					    &hdr, &error),
			 0);
	m = cat(hdr, test_msg);
	free(hdr);
	assert_int_equal(verify_one(dns, m, &reason), MAILAUTH_FAIL);
	free(m);
	p.selector = "loose";
	assert_int_equal(mailauth_dkim_sign(&p, test_msg, strlen(test_msg),
					    &hdr, &error),
			 0);
	m = cat(hdr, test_msg);
	free(hdr);
	assert_int_equal(verify_one(dns, m, NULL), MAILAUTH_PASS);
	free(m);

	mailauth_dns_destroy(&dns);
	mailauth_key_destroy(&rsa);
	mailauth_key_destroy(&ed);
}

/* RSA and Ed25519 on one message (issue 3: Ed25519 as a second
 * signature), and the max_sigs cap. */
static void
test_dkim_two_signatures(void **state)
{
	const char *error;
	struct mailauth_key *rsa =
		mailauth_key_generate(MAILAUTH_KEY_RSA, &error);
	struct mailauth_key *ed =
		mailauth_key_generate(MAILAUTH_KEY_ED25519, &error);
	char *r1 = mailauth_key_dns_record(rsa),
	     *r2 = mailauth_key_dns_record(ed);
	char *z = xasprintf("r._domainkey.example.org TXT %s\n"
			    "e._domainkey.example.org TXT %s\n",
			    r1, r2);
	struct mailauth_dns *dns = zone(z);
	struct mailauth_dkim_sign_params p = {
		.domain = "example.org",
		.selector = "r",
		.key = rsa,
	};
	struct mailauth_dkim_sig *sigs;
	char *h1, *h2, *m;
	size_t n;

	assert_int_equal(
		mailauth_dkim_sign(&p, test_msg, strlen(test_msg), &h1, &error),
		0);
	p.selector = "e";
	p.key = ed;
	assert_int_equal(
		mailauth_dkim_sign(&p, test_msg, strlen(test_msg), &h2, &error),
		0);
	m = xasprintf("%s%s%s", h2, h1, test_msg);
	mailauth_dkim_verify(dns, m, strlen(m), 0, &sigs, &n);
	assert_int_equal(n, 2);
	assert_int_equal(sigs[0].result, MAILAUTH_PASS);
	assert_int_equal(sigs[0].algorithm, MAILAUTH_KEY_ED25519);
	assert_int_equal(sigs[1].result, MAILAUTH_PASS);
	assert_int_equal(sigs[1].algorithm, MAILAUTH_KEY_RSA);
	mailauth_dkim_sigs_free(&sigs, n);
	mailauth_dkim_verify(dns, m, strlen(m), 1, &sigs, &n);
	assert_int_equal(n, 1);
	mailauth_dkim_sigs_free(&sigs, n);
	free(m);
	free(h1);
	free(h2);
	free(z);
	free(r1);
	free(r2);
	mailauth_dns_destroy(&dns);
	mailauth_key_destroy(&rsa);
	mailauth_key_destroy(&ed);
}

static void
test_key_pem_and_record(void **state)
{
	const char *error;
	struct mailauth_key *key = mailauth_key_generate(MAILAUTH_KEY_RSA,
							 &error),
			    *back;
	char *pem, *r1, *r2;
	size_t len;

	assert_non_null(key);
	assert_int_equal(mailauth_key_to_pem(key, &pem, &len, &error), 0);
	assert_true(str_has_prefix(pem, "-----BEGIN PRIVATE KEY-----"));
	back = mailauth_key_load_pem(pem, len, &error);
	assert_non_null(back);
	r1 = mailauth_key_dns_record(key);
	r2 = mailauth_key_dns_record(back);
	assert_string_equal(r1, r2);
	assert_true(str_has_prefix(r1, "v=DKIM1; k=rsa; p=MIIBIjAN"));
	mailauth_pem_free(&pem);
	assert_null(pem);
	free(r1);
	free(r2);
	mailauth_key_destroy(&key);
	mailauth_key_destroy(&back);
	assert_null(mailauth_key_load_pem("junk", 4, &error));

	key = mailauth_key_generate(MAILAUTH_KEY_ED25519, &error);
	r1 = mailauth_key_dns_record(key);
	assert_true(str_has_prefix(r1, "v=DKIM1; k=ed25519; p="));
	assert_int_equal(strlen(r1), strlen("v=DKIM1; k=ed25519; p=") + 44);
	free(r1);
	mailauth_key_destroy(&key);
}

/* SPF */

static const char spf_zone[] =
	"example.org TXT v=spf1 ip4:192.0.2.0/24 include:_spf.example.net "
	"-all\n"
	"example.org TXT some other text\n"
	"_spf.example.net TXT v=spf1 ip6:2001:db8::/32 a:mail.example.net "
	"~all\n"
	"mail.example.net A 198.51.100.7\n"
	"mx.example.com TXT v=spf1 mx/24 -all\n"
	"mx.example.com MX 10 mx1.example.com\n"
	"mx1.example.com A 203.0.113.10\n"
	"macro.test TXT v=spf1 exists:%{ir}.%{l1r-}.lp._spf.%{d} "
	"-all exp=explain.macro.test\n"
	"explain.macro.test TXT %{i} is not allowed for %{s} via %{d}\n"
	"5.2.0.192.strong.lp._spf.macro.test A 127.0.0.2\n"
	"loop-a.test TXT v=spf1 include:loop-b.test -all\n"
	"loop-b.test TXT v=spf1 include:loop-a.test -all\n"
	"two.test TXT v=spf1 -all\n"
	"two.test TXT v=spf1 +all\n"
	"temp.test TEMPFAIL\n"
	"redir.test TXT v=spf1 redirect=example.org\n"
	"ptr.test TXT v=spf1 ptr -all\n"
	"192.0.2.77 PTR host.ptr.test\n"
	"host.ptr.test A 192.0.2.77\n"
	"2001:db8:0::77 PTR other.test\n"
	"2001:db8::77 PTR host6.ptr.test\n"
	"host6.ptr.test AAAA 2001:db8::77\n"
	"2001:db8::78 PTR host7.ptr.test\n"
	"host7.ptr.test AAAA 2001:db8::79\n"
	"void.test TXT v=spf1 a:n1.void.test a:n2.void.test "
	"a:n3.void.test +all\n"
	"void2.test TXT v=spf1 a:n1.void.test a:n2.void.test +all\n"
	"bad.test TXT v=spf1 foo:bar -all\n"
	"nospf.test TXT hello\n";

static enum mailauth_result
spf(struct mailauth_dns *dns, const char *ip, const char *from,
    struct mailauth_spf_result *r)
{
	struct mailauth_spf_request req = {
		.helo = "helo.example",
		.mail_from = from,
	};

	assert_int_equal(mailauth_ip_parse(ip, &req.ip), 0);
	mailauth_spf_check(dns, &req, r);
	return r->result;
}

static struct mailauth_dns *
zone(const char *text)
{
	struct mailauth_dns *dns = mailauth_dns_table_create();
	const char *error;

	assert_int_equal(mailauth_dns_table_add(dns, text, &error), 0);
	return dns;
}

static void
test_spf_basic(void **state)
{
	struct mailauth_dns *dns = zone(spf_zone);
	struct mailauth_spf_result r;

#define CHECK(ip, from, want)                                                  \
	do {                                                                   \
		assert_int_equal(spf(dns, ip, from, &r), want);                \
		mailauth_spf_result_clear(&r);                                 \
	} while (0)
	CHECK("192.0.2.9", "a@example.org", MAILAUTH_PASS);
	CHECK("2001:db8::5", "a@example.org", MAILAUTH_PASS);
	CHECK("198.51.100.7", "a@example.org", MAILAUTH_PASS);
	CHECK("198.51.100.8", "a@example.org", MAILAUTH_FAIL);
	CHECK("::ffff:192.0.2.1", "a@example.org", MAILAUTH_PASS);
	CHECK("203.0.113.99", "x@mx.example.com", MAILAUTH_PASS);
	CHECK("203.0.114.1", "x@mx.example.com", MAILAUTH_FAIL);
	CHECK("192.0.2.5", "x@two.test", MAILAUTH_PERMERROR);
	CHECK("192.0.2.5", "x@temp.test", MAILAUTH_TEMPERROR);
	CHECK("192.0.2.5", "x@nospf.test", MAILAUTH_NONE);
	CHECK("192.0.2.5", "x@unknown.test", MAILAUTH_NONE);
	CHECK("192.0.2.5", "x@redir.test", MAILAUTH_PASS);
	CHECK("192.0.2.77", "x@ptr.test", MAILAUTH_PASS);
	CHECK("2001:db8::77", "x@ptr.test", MAILAUTH_PASS);
	CHECK("2001:db8::78", "x@ptr.test", MAILAUTH_FAIL);
	CHECK("192.0.2.78", "x@ptr.test", MAILAUTH_FAIL);
	CHECK("192.0.2.5", "x@bad.test", MAILAUTH_PERMERROR);
	CHECK("192.0.2.5", "x@void2.test", MAILAUTH_PASS);
	/* Third void look-up: permerror (RFC 7208 4.6.4). */
	CHECK("192.0.2.5", "x@void.test", MAILAUTH_PERMERROR);
	/* Include loop ends at the 10-term limit. */
	assert_int_equal(spf(dns, "192.0.2.5", "x@loop-a.test", &r),
			 MAILAUTH_PERMERROR);
	assert_string_equal(r.reason, "too many DNS lookups");
	assert_int_equal(r.dns_terms, 11);
	mailauth_spf_result_clear(&r);
	/* Null sender: HELO identity. */
	{
		struct mailauth_spf_request req = {
			.helo = "example.org",
			.mail_from = "",
		};

		mailauth_ip_parse("192.0.2.1", &req.ip);
		mailauth_spf_check(dns, &req, &r);
		assert_int_equal(r.result, MAILAUTH_PASS);
		assert_true(r.from_helo);
		mailauth_spf_result_clear(&r);
	}
#undef CHECK
	mailauth_dns_destroy(&dns);
}

static void
test_spf_macros(void **state)
{
	struct mailauth_dns *dns = zone(spf_zone);
	struct mailauth_spf_result r;

	/* exists:%{ir}.%{l1r-}.lp._spf.%{d} for strong-bad@macro.test from
	 * 192.0.2.5 -> 5.2.0.192.strong.lp._spf.macro.test */
	assert_int_equal(spf(dns, "192.0.2.5", "strong-bad@macro.test", &r),
			 MAILAUTH_PASS);
	mailauth_spf_result_clear(&r);
	assert_int_equal(spf(dns, "192.0.2.6", "strong-bad@macro.test", &r),
			 MAILAUTH_FAIL);
	assert_string_equal(r.explanation, "192.0.2.6 is not allowed for "
					   "strong-bad@macro.test via "
					   "macro.test");
	mailauth_spf_result_clear(&r);
	mailauth_dns_destroy(&dns);

	/* RFC 7208 7.4 examples through exists: */
	dns = zone("email.example.com TXT v=spf1 "
		   "exists:%{ir}.%{v}._spf.%{d2} "
		   "exists:%{lr-}.lp.%{d2} -all\n"
		   "3.2.0.192.in-addr._spf.example.com A 127.0.0.2\n"
		   "bad.strong.lp.example.com A 127.0.0.2\n");
	assert_int_equal(spf(dns, "192.0.2.3", "x@email.example.com", &r),
			 MAILAUTH_PASS);
	mailauth_spf_result_clear(&r);
	assert_int_equal(
		spf(dns, "192.0.2.4", "strong-bad@email.example.com", &r),
		MAILAUTH_PASS);
	mailauth_spf_result_clear(&r);
	assert_int_equal(spf(dns, "192.0.2.4", "x@email.example.com", &r),
			 MAILAUTH_FAIL);
	mailauth_spf_result_clear(&r);
	mailauth_dns_destroy(&dns);

	/* A bad macro is a permerror. */
	dns = zone("m.test TXT v=spf1 exists:%{z}.m.test -all\n");
	assert_int_equal(spf(dns, "192.0.2.3", "x@m.test", &r),
			 MAILAUTH_PERMERROR);
	mailauth_spf_result_clear(&r);
	mailauth_dns_destroy(&dns);
}

static void
test_spf_lookup_limit(void **state)
{
	struct sp_buf z;
	struct mailauth_dns *dns;
	struct mailauth_spf_result r;

	/* Ten includes are allowed, eleven are not. */
	for (int total = 10; total <= 11; total++) {
		sp_buf_init(&z);
		sp_buf_append_str(&z, "lim.test TXT v=spf1");
		for (int i = 0; i < total; i++)
			sp_buf_printf(&z, " include:i%d.lim.test", i);
		sp_buf_append_str(&z, " -all\n");
		for (int i = 0; i < total; i++)
			sp_buf_printf(&z, "i%d.lim.test TXT v=spf1 %s\n", i,
				      i == total - 1 ? "+all" : "-all");
		dns = zone(z.data);
		assert_int_equal(spf(dns, "192.0.2.1", "a@lim.test", &r),
				 total == 10 ? MAILAUTH_PASS
					     : MAILAUTH_PERMERROR);
		mailauth_spf_result_clear(&r);
		mailauth_dns_destroy(&dns);
		sp_buf_deinit(&z);
	}
}

/* DMARC */

static void
test_dmarc(void **state)
{
	struct mailauth_dns *dns = zone(
		"_dmarc.example.org TXT v=DMARC1; p=reject; sp=quarantine\n"
		"_dmarc.strict.test TXT v=DMARC1; p=quarantine; adkim=s; "
		"aspf=s\n");
	struct mailauth_dmarc_result d;
	struct mailauth_spf_result spf_r = {
		.result = MAILAUTH_PASS,
		.domain = (char *)"bounce.example.org",
	};
	struct mailauth_dkim_sig sig = {
		.result = MAILAUTH_PASS,
		.domain = (char *)"example.org",
	};
	char *org;

	org = mailauth_org_domain("a.b.example.co.uk");
	assert_string_equal(org, "example.co.uk");
	free(org);
	org = mailauth_org_domain("Mail.Example.ORG.");
	assert_string_equal(org, "example.org");
	free(org);
	org = mailauth_org_domain("org");
	assert_string_equal(org, "org");
	free(org);
	if (fs_exists("/usr/share/publicsuffix/public_suffix_list.dat")) {
		/* Wildcard (*.ck) and exception (!www.ck) rules, and a
		 * private-section suffix. */
		org = mailauth_org_domain("a.b.foo.ck");
		assert_string_equal(org, "b.foo.ck");
		free(org);
		org = mailauth_org_domain("a.www.ck");
		assert_string_equal(org, "www.ck");
		free(org);
		org = mailauth_org_domain("x.someone.github.io");
		assert_string_equal(org, "someone.github.io");
		free(org);
	}
	assert_true(mailauth_dmarc_aligned("mail.example.org", "example.org",
					   false));
	assert_false(mailauth_dmarc_aligned("mail.example.org", "example.org",
					    true));
	assert_false(
		mailauth_dmarc_aligned("example.com", "example.org", false));

	/* Sub-domain of example.org: org fallback, sp= applies. */
	mailauth_dmarc_check(dns, "news.example.org", &spf_r, NULL, 0, &d);
	assert_int_equal(d.result, MAILAUTH_PASS);
	assert_true(d.spf_aligned);
	assert_string_equal(d.policy_domain, "example.org");
	assert_int_equal(d.policy, MAILAUTH_DMARC_POLICY_QUARANTINE);
	mailauth_dmarc_result_clear(&d);

	mailauth_dmarc_check(dns, "example.org", NULL, &sig, 1, &d);
	assert_int_equal(d.result, MAILAUTH_PASS);
	assert_true(d.dkim_aligned);
	assert_int_equal(d.policy, MAILAUTH_DMARC_POLICY_REJECT);
	mailauth_dmarc_result_clear(&d);

	/* Strict: a sub-domain signature does not align. */
	sig.domain = (char *)"mail.strict.test";
	spf_r.domain = (char *)"strict.test";
	spf_r.result = MAILAUTH_FAIL;
	mailauth_dmarc_check(dns, "strict.test", &spf_r, &sig, 1, &d);
	assert_int_equal(d.result, MAILAUTH_FAIL);
	mailauth_dmarc_result_clear(&d);

	mailauth_dmarc_check(dns, "nothing.test", &spf_r, &sig, 1, &d);
	assert_int_equal(d.result, MAILAUTH_NONE);
	mailauth_dmarc_result_clear(&d);
	mailauth_dns_destroy(&dns);

	{
		static const char m1[] =
			"From: \"A, B\" <a@Example.ORG>\r\n\r\n";
		static const char m2[] = "From: a@x.test, b@y.test\r\n\r\n";
		static const char m3[] = "To: a@x.test\r\n\r\n";
		char *fd = mailauth_from_domain(m1, strlen(m1));

		assert_string_equal(fd, "example.org");
		free(fd);
		assert_null(mailauth_from_domain(m2, strlen(m2)));
		assert_null(mailauth_from_domain(m3, strlen(m3)));
	}
}

/* SRS */

static void
test_srs(void **state)
{
	struct crypto_key *server = crypto_key_create(), *other;
	struct mailauth_srs *srs, *srs2;
	const char *error;
	char *fwd, *back, *fwd2, *tampered;

	crypto_key_random(server);
	srs = mailauth_srs_create(server);
	assert_int_equal(mailauth_srs_forward(srs, "alice@example.org",
					      "fwd.test", &fwd, &error),
			 0);
	assert_true(str_has_prefix(fwd, "SRS0="));
	assert_true(strstr(fwd, "=example.org=alice@fwd.test") != NULL);
	assert_int_equal(mailauth_srs_reverse(srs, fwd, &back, &error), 1);
	assert_string_equal(back, "alice@example.org");
	free(back);

	/* Case folded by a relay: still reverses. */
	{
		char *lower = xstrdup(fwd);

		str_lower(lower);
		lower[0] = 'S';
		assert_int_equal(
			mailauth_srs_reverse(srs, lower, &back, &error), 1);
		free(back);
		free(lower);
	}

	/* Tampered address: the hash no longer matches. */
	tampered = xstrdup(fwd);
	*strstr(tampered, "alice") = 'm';
	assert_int_equal(mailauth_srs_reverse(srs, tampered, &back, &error),
			 -1);
	assert_string_equal(error, "SRS hash does not match");
	free(tampered);

	/* Another server key does not accept it. */
	other = crypto_key_create();
	crypto_key_random(other);
	srs2 = mailauth_srs_create(other);
	assert_int_equal(mailauth_srs_reverse(srs2, fwd, &back, &error), -1);

	/* Expiry: fine after 9 days, refused after 11. */
	clock_set_offset(9 * 86400);
	assert_int_equal(mailauth_srs_reverse(srs, fwd, &back, &error), 1);
	free(back);
	clock_set_offset(11 * 86400);
	assert_int_equal(mailauth_srs_reverse(srs, fwd, &back, &error), -1);
	assert_string_equal(error, "SRS address expired");
	clock_set_offset(0);

	/* A second forwarder turns it into SRS1 and reverses to our SRS0. */
	assert_int_equal(
		mailauth_srs_forward(srs2, fwd, "hop2.test", &fwd2, &error), 0);
	assert_true(str_has_prefix(fwd2, "SRS1="));
	assert_true(strstr(fwd2, "=fwd.test==") != NULL);
	assert_int_equal(mailauth_srs_reverse(srs2, fwd2, &back, &error), 1);
	assert_string_equal(back, fwd);
	free(back);
	/* A third hop keeps the first hop's part. */
	{
		char *fwd3;

		assert_int_equal(mailauth_srs_forward(srs, fwd2, "hop3.test",
						      &fwd3, &error),
				 0);
		assert_true(str_has_prefix(fwd3, "SRS1="));
		assert_true(strstr(fwd3, "=fwd.test==") != NULL);
		assert_true(
			str_has_prefix(strchr(fwd3 + 5, '='), "=fwd.test=="));
		assert_int_equal(mailauth_srs_reverse(srs, fwd3, &back, &error),
				 1);
		assert_string_equal(back, fwd);
		free(back);
		free(fwd3);
	}

	assert_int_equal(
		mailauth_srs_reverse(srs, "plain@fwd.test", &back, &error), 0);
	assert_int_equal(
		mailauth_srs_reverse(srs, "SRS0=xx@fwd.test", &back, &error),
		-1);
	/* Our own domain and <> stay as they are. */
	assert_int_equal(mailauth_srs_forward(srs, "me@fwd.test", "fwd.test",
					      &back, &error),
			 0);
	assert_string_equal(back, "me@fwd.test");
	free(back);
	assert_int_equal(
		mailauth_srs_forward(srs, "", "fwd.test", &back, &error), 0);
	assert_string_equal(back, "");
	free(back);
	assert_int_equal(mailauth_srs_forward(srs, "nodomain", "fwd.test",
					      &back, &error),
			 -1);

	free(fwd);
	free(fwd2);
	mailauth_srs_destroy(&srs);
	mailauth_srs_destroy(&srs2);
	assert_null(srs);
	crypto_key_destroy(&server);
	crypto_key_destroy(&other);
}

/* ARC */

static void
test_arc_seal_and_verify(void **state)
{
	const char *error;
	struct mailauth_key *k1 =
		mailauth_key_generate(MAILAUTH_KEY_RSA, &error);
	struct mailauth_key *k2 =
		mailauth_key_generate(MAILAUTH_KEY_ED25519, &error);
	struct mailauth_dns *dns = mailauth_dns_table_create();
	struct mailauth_arc_result r;
	char *rec1 = mailauth_key_dns_record(k1);
	char *rec2 = mailauth_key_dns_record(k2);
	char *zone_text = xasprintf("arc._domainkey.fwd1.test TXT %s\n"
				    "arc._domainkey.fwd2.test TXT %s\n",
				    rec1, rec1);
	char *hdrs, *m1, *m2, *bad;
	struct mailauth_arc_seal_params p = {
		.domain = "fwd1.test",
		.selector = "arc",
		.key = k1,
		.authserv_id = "mx.fwd1.test",
		.results = "spf=pass smtp.mailfrom=example.org; dkim=none",
		.chain = MAILAUTH_NONE,
	};

	assert_int_equal(mailauth_dns_table_add(dns, zone_text, &error), 0);
	mailauth_arc_verify(dns, test_msg, strlen(test_msg), &r);
	assert_int_equal(r.result, MAILAUTH_NONE);
	mailauth_arc_result_clear(&r);

	assert_int_equal(mailauth_arc_seal(&p, test_msg, strlen(test_msg),
					   &hdrs, &error),
			 0);
	assert_true(str_has_prefix(hdrs, "ARC-Seal: i=1; cv=none;"));
	assert_non_null(strstr(hdrs, "\r\nARC-Message-Signature: i=1;"));
	assert_non_null(strstr(hdrs, "\r\nARC-Authentication-Results: i=1; "
				     "mx.fwd1.test;\r\n\tspf=pass "
				     "smtp.mailfrom=example.org; dkim=none"));
	m1 = cat(hdrs, test_msg);
	free(hdrs);
	mailauth_arc_verify(dns, m1, strlen(m1), &r);
	assert_int_equal(r.result, MAILAUTH_PASS);
	assert_int_equal(r.instances, 1);
	mailauth_arc_result_clear(&r);

	/* Ed25519 is refused for ARC; the second hop seals with RSA. */
	p.key = k2;
	assert_int_equal(mailauth_arc_seal(&p, m1, strlen(m1), &hdrs, &error),
			 -1);
	p.domain = "fwd2.test";
	p.key = k1;
	p.chain = MAILAUTH_PASS;
	p.chain_instances = 1;
	p.results = "arc=pass";
	assert_int_equal(mailauth_arc_seal(&p, m1, strlen(m1), &hdrs, &error),
			 0);
	assert_true(str_has_prefix(hdrs, "ARC-Seal: i=2; cv=pass;"));
	m2 = cat(hdrs, m1);
	free(hdrs);
	mailauth_arc_verify(dns, m2, strlen(m2), &r);
	assert_int_equal(r.result, MAILAUTH_PASS);
	assert_int_equal(r.instances, 2);
	assert_string_equal(r.oldest_pass_domain, "fwd1.test");
	mailauth_arc_result_clear(&r);

	/* A chain state that does not match the message is refused. */
	p.chain_instances = 0;
	assert_int_equal(mailauth_arc_seal(&p, m1, strlen(m1), &hdrs, &error),
			 -1);

	/* Changing the body breaks the newest AMS. */
	bad = xstrdup(m2);
	*body_find(bad, "bye") = 'B';
	mailauth_arc_verify(dns, bad, strlen(bad), &r);
	assert_int_equal(r.result, MAILAUTH_FAIL);
	mailauth_arc_result_clear(&r);
	free(bad);
	/* Changing the first AAR breaks the seals. */
	bad = xstrdup(m2);
	*strstr(bad, "spf=pass") = 'S';
	mailauth_arc_verify(dns, bad, strlen(bad), &r);
	assert_int_equal(r.result, MAILAUTH_FAIL);
	mailauth_arc_result_clear(&r);
	free(bad);
	/* A missing set member: fail. */
	bad = xstrdup(m1);
	memcpy(strstr(bad, "ARC-Authentication-Results"), "X-Foo", 5);
	mailauth_arc_verify(dns, bad, strlen(bad), &r);
	assert_int_equal(r.result, MAILAUTH_FAIL);
	mailauth_arc_result_clear(&r);
	free(bad);

	free(m1);
	free(m2);
	free(zone_text);
	free(rec1);
	free(rec2);
	mailauth_dns_destroy(&dns);
	mailauth_key_destroy(&k1);
	mailauth_key_destroy(&k2);
}

static void
test_verdict(void **state)
{
	const char *error;
	struct mailauth_key *key =
		mailauth_key_generate(MAILAUTH_KEY_ED25519, &error);
	char *rec = mailauth_key_dns_record(key);
	char *zone_text =
		xasprintf("sel._domainkey.example.org TXT %s\n"
			  "example.org TXT v=spf1 ip4:192.0.2.0/24 -all\n"
			  "_dmarc.example.org TXT v=DMARC1; p=reject\n",
			  rec);
	struct mailauth_dns *dns = zone(zone_text);
	struct mailauth_dkim_sign_params p = {
		.domain = "example.org",
		.selector = "sel",
		.key = key,
	};
	struct mailauth_spf_request env = {
		.helo = "mail.example.org",
		.mail_from = "alice@example.org",
	};
	struct mailauth_verdict *v;
	char *hdr, *m, *ar;

	assert_int_equal(mailauth_dkim_sign(&p, test_msg, strlen(test_msg),
					    &hdr, &error),
			 0);
	m = cat(hdr, test_msg);
	mailauth_ip_parse("198.51.100.1", &env.ip);
	v = mailauth_verify_message(dns, &env, m, strlen(m));
	assert_int_equal(v->spf.result, MAILAUTH_FAIL);
	assert_int_equal(v->dkim_count, 1);
	assert_int_equal(v->dmarc.result, MAILAUTH_PASS);
	ar = mailauth_verdict_format(v);
	assert_true(str_has_prefix(ar, "spf=fail smtp.mailfrom=example.org; "
				       "dkim=pass header.d=example.org "
				       "header.s=sel header.b=\""));
	assert_non_null(strstr(ar, "; dmarc=pass header.from=example.org; "
				   "arc=none"));
	free(ar);
	mailauth_verdict_free(&v);
	assert_null(v);
	free(m);
	free(hdr);
	free(zone_text);
	free(rec);
	mailauth_dns_destroy(&dns);
	mailauth_key_destroy(&key);
}

static void
test_dns_table(void **state)
{
	struct mailauth_dns *dns = zone("a.test A 192.0.2.1\n"
					"a.test MX 10 mx.a.test.\n"
					"# comment\n"
					"b.test NXDOMAIN\n");
	struct mailauth_dns_reply r;
	const char *error;

	memset(&r, 0, sizeof(r));
	assert_int_equal(dns->v->addr(dns->context, "A.TEST.", AF_INET, &r),
			 MAILAUTH_DNS_OK);
	assert_int_equal(r.count, 1);
	mailauth_dns_reply_clear(&r);
	assert_int_equal(dns->v->txt(dns->context, "a.test", &r),
			 MAILAUTH_DNS_NODATA);
	assert_int_equal(dns->v->mx(dns->context, "a.test", &r),
			 MAILAUTH_DNS_OK);
	assert_string_equal(r.strings[0], "mx.a.test");
	assert_int_equal(r.mx_prefs[0], 10);
	mailauth_dns_reply_clear(&r);
	assert_int_equal(dns->v->txt(dns->context, "b.test", &r),
			 MAILAUTH_DNS_NXDOMAIN);
	assert_int_equal(dns->v->txt(dns->context, "c.test", &r),
			 MAILAUTH_DNS_NXDOMAIN);
	assert_int_equal(mailauth_dns_table_queries(dns), 5);
	assert_int_equal(mailauth_dns_table_add(dns, "x.test BOGUS 1", &error),
			 -1);
	assert_int_equal(
		mailauth_dns_table_add(dns, "x.test A 2001:db8::1", &error),
		-1);
	mailauth_dns_destroy(&dns);
	assert_null(dns);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_canon_rfc_example),
		cmocka_unit_test(test_canon_body_edges),
		cmocka_unit_test(test_canon_body_streamed),
		cmocka_unit_test(test_tags),
		cmocka_unit_test(test_dkim_rsa),
		cmocka_unit_test(test_dkim_ed25519),
		cmocka_unit_test(test_dkim_key_errors),
		cmocka_unit_test(test_dkim_signature_checks),
		cmocka_unit_test(test_dkim_two_signatures),
		cmocka_unit_test(test_key_pem_and_record),
		cmocka_unit_test(test_spf_basic),
		cmocka_unit_test(test_spf_macros),
		cmocka_unit_test(test_spf_lookup_limit),
		cmocka_unit_test(test_dmarc),
		cmocka_unit_test(test_srs),
		cmocka_unit_test(test_arc_seal_and_verify),
		cmocka_unit_test(test_verdict),
		cmocka_unit_test(test_dns_table),
	};

	if (crypto_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
