/* Everything an MX checks on one message, and its Authentication-Results
 * text (RFC 8601). */
#include "mailauth/mailauth-private.h"

#include <stdlib.h>
#include <string.h>

struct mailauth_verdict *
mailauth_verify_message(struct mailauth_dns *dns,
			const struct mailauth_spf_request *envelope,
			const char *msg, size_t len)
{
	struct mailauth_verdict *v = xcalloc(1, sizeof(*v));
	char *from;

	mailauth_spf_check(dns, envelope, &v->spf);
	mailauth_dkim_verify(dns, msg, len, 0, &v->dkim, &v->dkim_count);
	from = mailauth_from_domain(msg, len);
	mailauth_dmarc_check(dns, from, &v->spf, v->dkim, v->dkim_count,
			     &v->dmarc);
	free(from);
	mailauth_arc_verify(dns, msg, len, &v->arc);
	return v;
}

void
mailauth_verdict_free(struct mailauth_verdict **verdict)
{
	struct mailauth_verdict *v = *verdict;

	if (v == NULL)
		return;
	mailauth_spf_result_clear(&v->spf);
	mailauth_dkim_sigs_free(&v->dkim, v->dkim_count);
	mailauth_dmarc_result_clear(&v->dmarc);
	mailauth_arc_result_clear(&v->arc);
	free(v);
	*verdict = NULL;
}

/* Values we put in the header come from DNS names we validated; anything
 * else is left out rather than quoted. */
static bool
token_ok(const char *s)
{
	if (s == NULL || *s == '\0')
		return false;
	for (; *s != '\0'; s++) {
		if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f ||
		    strchr("()<>,;:\\\"[]?=@", *s) != NULL)
			return false;
	}
	return true;
}

char *
mailauth_verdict_format(const struct mailauth_verdict *v)
{
	struct sp_buf out;

	sp_buf_init(&out);
	sp_buf_printf(&out, "spf=%s", mailauth_result_name(v->spf.result));
	if (token_ok(v->spf.domain))
		sp_buf_printf(&out, " smtp.%s=%s",
			      v->spf.from_helo ? "helo" : "mailfrom",
			      v->spf.domain);
	if (v->dkim_count == 0)
		sp_buf_append_str(&out, "; dkim=none");
	for (size_t i = 0; i < v->dkim_count; i++) {
		const struct mailauth_dkim_sig *s = &v->dkim[i];

		sp_buf_printf(&out, "; dkim=%s",
			      mailauth_result_name(s->result));
		if (token_ok(s->domain))
			sp_buf_printf(&out, " header.d=%s", s->domain);
		if (token_ok(s->selector))
			sp_buf_printf(&out, " header.s=%s", s->selector);
		if (token_ok(s->b_prefix))
			sp_buf_printf(&out, " header.b=\"%s\"", s->b_prefix);
	}
	sp_buf_printf(&out, "; dmarc=%s",
		      mailauth_result_name(v->dmarc.result));
	if (token_ok(v->dmarc.from_domain))
		sp_buf_printf(&out, " header.from=%s", v->dmarc.from_domain);
	sp_buf_printf(&out, "; arc=%s", mailauth_result_name(v->arc.result));
	return sp_buf_steal(&out, NULL);
}
