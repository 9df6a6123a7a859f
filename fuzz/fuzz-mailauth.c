/*
 * libFuzzer target for src/mailauth's parsers: the message splitter and
 * canonicalization, DKIM tag lists and signature fields, ARC sets, the
 * From: domain, SPF records (with macros), DKIM key records and SRS
 * addresses. The first byte picks the parser; DNS is a table resolver
 * holding the input where a record is needed. Any input must be handled
 * without a crash, a leak or a read outside it.
 */
#include "core/core.h"
#include "crypto/crypto.h"
#include "mailauth/mailauth-private.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fuzz_message(const char *msg, size_t len)
{
	struct mailauth_dns *dns = mailauth_dns_table_create();
	struct mailauth_msg m;
	struct mailauth_tags tags;
	struct mailauth_dkim_sig *sigs;
	struct mailauth_arc_result arc;
	struct sp_buf out;
	size_t n;
	char *s;

	mailauth_msg_parse(msg, len, &m);
	sp_buf_init(&out);
	for (size_t i = 0; i < m.count; i++) {
		mailauth_canon_header(MAILAUTH_CANON_RELAXED, m.headers[i].raw,
				      m.headers[i].raw_len, false, &out);
		mailauth_canon_header(MAILAUTH_CANON_SIMPLE, m.headers[i].raw,
				      m.headers[i].raw_len, true, &out);
		if (mailauth_tags_parse(m.headers[i].value,
					m.headers[i].value_len, &tags) == 0)
			mailauth_tags_deinit(&tags);
	}
	sp_buf_deinit(&out);
	s = mailauth_body_canon_string(MAILAUTH_CANON_RELAXED, m.body,
				       m.body_len, &n);
	free(s);
	mailauth_msg_deinit(&m);
	free(mailauth_from_domain(msg, len));
	mailauth_dkim_verify(dns, msg, len, 0, &sigs, &n);
	mailauth_dkim_sigs_free(&sigs, n);
	mailauth_arc_verify(dns, msg, len, &arc);
	mailauth_arc_result_clear(&arc);
	mailauth_dns_destroy(&dns);
}

/* The input becomes the TXT record of f.test (and of its include). */
static void
fuzz_record(const char *text, size_t len, int kind)
{
	struct mailauth_dns *dns = mailauth_dns_table_create();
	char *line = xstrndup(text, len), *zone;
	const char *error;

	for (char *p = line; *p != '\0'; p++) {
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	}
	if (kind == 1) {
		struct mailauth_spf_request req = {
			.helo = "h.test",
			.mail_from = "a.b@f.test",
		};
		struct mailauth_spf_result r;

		zone = xasprintf("f.test TXT %s\ni.f.test TXT %s\n"
				 "f.test A 192.0.2.1\nf.test MX 1 f.test\n"
				 "192.0.2.1 PTR f.test\n",
				 line, line);
		if (mailauth_dns_table_add(dns, zone, &error) == 0) {
			mailauth_ip_parse("192.0.2.1", &req.ip);
			mailauth_spf_check(dns, &req, &r);
			mailauth_spf_result_clear(&r);
			mailauth_ip_parse("2001:db8::1", &req.ip);
			mailauth_spf_check(dns, &req, &r);
			mailauth_spf_result_clear(&r);
		}
	} else if (kind == 2) {
		struct mailauth_pubkey key;
		const char *reason;

		zone = xasprintf("s._domainkey.f.test TXT %s\n"
				 "_dmarc.f.test TXT %s\n",
				 line, line);
		if (mailauth_dns_table_add(dns, zone, &error) == 0) {
			struct mailauth_dmarc_result d;

			if (mailauth_pubkey_fetch(dns, "s", "f.test", &key,
						  &reason) == MAILAUTH_PASS)
				mailauth_pubkey_deinit(&key);
			mailauth_dmarc_check(dns, "f.test", NULL, NULL, 0, &d);
			mailauth_dmarc_result_clear(&d);
		}
	} else {
		struct crypto_key *k = crypto_key_create();
		struct mailauth_srs *srs = mailauth_srs_create(k);
		char *out;

		zone = NULL;
		if (mailauth_srs_reverse(srs, line, &out, &error) == 1)
			free(out);
		if (mailauth_srs_forward(srs, line, "fwd.test", &out, &error) ==
		    0)
			free(out);
		mailauth_srs_destroy(&srs);
		crypto_key_destroy(&k);
	}
	free(zone);
	free(line);
	mailauth_dns_destroy(&dns);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool init;

	if (!init) {
		if (crypto_init() < 0)
			abort();
		init = true;
	}
	if (size < 1)
		return 0;
	switch (data[0] % 4) {
	case 0:
		fuzz_message((const char *)data + 1, size - 1);
		break;
	default:
		/* Records are text: stop at a NUL like DNS text would. */
		fuzz_record((const char *)data + 1,
			    strnlen((const char *)data + 1, size - 1),
			    data[0] % 4);
		break;
	}
	return 0;
}
