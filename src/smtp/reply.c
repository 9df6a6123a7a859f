/*
 * Classification of remote SMTP answers.
 *
 * The action follows the reply code: providers mean what the first digit
 * says, and a 4xx that we turned into a bounce (or a 5xx we retried) would
 * be worse than a wrong category. The category is searched in the text
 * first, because large providers put everything under 5.7.1 and say what
 * they mean in words ("blocked using zen.spamhaus.org", "likely
 * unsolicited mail", "contains a virus"); then in the enhanced code; then
 * it is "other". Text rules are ordered so that the specific beats the
 * general: "spamhaus" is a block list before it is spam.
 */
#include "smtp-private.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct text_rule {
	const char *needle; /* matched case-insensitively */
	enum smtp_reply_category category;
};

static const struct text_rule text_rules[] = {
	/* virus before spam: "malware" mails are sometimes "spam" too */
	{"virus", SMTP_CAT_VIRUS},
	{"malware", SMTP_CAT_VIRUS},
	{"infected", SMTP_CAT_VIRUS},
	{"potential security issue", SMTP_CAT_VIRUS},
	{"banned attachment", SMTP_CAT_VIRUS},
	/* block lists before spam ("spamhaus", "spamcop") */
	{"spamhaus", SMTP_CAT_BLOCKLIST},
	{"spamcop", SMTP_CAT_BLOCKLIST},
	{"barracuda", SMTP_CAT_BLOCKLIST},
	{"blocklist", SMTP_CAT_BLOCKLIST},
	{"block list", SMTP_CAT_BLOCKLIST},
	{"blacklist", SMTP_CAT_BLOCKLIST},
	{"dnsbl", SMTP_CAT_BLOCKLIST},
	{"rbl", SMTP_CAT_BLOCKLIST},
	{"banned sending ip", SMTP_CAT_BLOCKLIST},
	{"traffic not accepted from this ip", SMTP_CAT_BLOCKLIST},
	{"permanently deferred", SMTP_CAT_BLOCKLIST},
	{"poor reputation", SMTP_CAT_BLOCKLIST},
	{"ip reputation", SMTP_CAT_BLOCKLIST},
	{"client host blocked", SMTP_CAT_BLOCKLIST},
	{"listed", SMTP_CAT_BLOCKLIST},
	/* sender authentication */
	{"dmarc", SMTP_CAT_DMARC},
	{"dkim", SMTP_CAT_DMARC},
	{"spf", SMTP_CAT_DMARC},
	{"sender is unauthenticated", SMTP_CAT_DMARC},
	{"not authenticated", SMTP_CAT_DMARC},
	/* greylisting */
	{"greylist", SMTP_CAT_GREYLIST},
	{"graylist", SMTP_CAT_GREYLIST},
	{"grey-list", SMTP_CAT_GREYLIST},
	{"greylisting", SMTP_CAT_GREYLIST},
	{"postgrey", SMTP_CAT_GREYLIST},
	{"come back later", SMTP_CAT_GREYLIST},
	/* spam */
	{"spam", SMTP_CAT_SPAM},
	{"unsolicited", SMTP_CAT_SPAM},
	{"junk", SMTP_CAT_SPAM},
	{"bulk mail", SMTP_CAT_SPAM},
	/* mailbox full */
	{"over quota", SMTP_CAT_MAILBOX_FULL},
	{"overquota", SMTP_CAT_MAILBOX_FULL},
	{"quota exceeded", SMTP_CAT_MAILBOX_FULL},
	{"exceeded storage", SMTP_CAT_MAILBOX_FULL},
	{"mailbox full", SMTP_CAT_MAILBOX_FULL},
	{"mailbox is full", SMTP_CAT_MAILBOX_FULL},
	{"insufficient storage", SMTP_CAT_MAILBOX_FULL},
	{"out of storage", SMTP_CAT_MAILBOX_FULL},
	/* size */
	{"too large", SMTP_CAT_SIZE},
	{"too big", SMTP_CAT_SIZE},
	{"size exceeds", SMTP_CAT_SIZE},
	{"size limit", SMTP_CAT_SIZE},
	{"exceeds maximum", SMTP_CAT_SIZE},
	{"allowed maximum", SMTP_CAT_SIZE},
	{"message size", SMTP_CAT_SIZE},
	/* tls */
	{"starttls", SMTP_CAT_TLS},
	{"tls required", SMTP_CAT_TLS},
	{"encryption required", SMTP_CAT_TLS},
	{"must issue a starttls", SMTP_CAT_TLS},
	/* recipient */
	{"user unknown", SMTP_CAT_RECIPIENT},
	{"unknown user", SMTP_CAT_RECIPIENT},
	{"no such user", SMTP_CAT_RECIPIENT},
	{"does not exist", SMTP_CAT_RECIPIENT},
	{"doesn't have a", SMTP_CAT_RECIPIENT},
	{"recipient not found", SMTP_CAT_RECIPIENT},
	{"recipientnotfound", SMTP_CAT_RECIPIENT},
	{"mailbox not found", SMTP_CAT_RECIPIENT},
	{"mailbox unavailable", SMTP_CAT_RECIPIENT},
	{"unrouteable address", SMTP_CAT_RECIPIENT},
	{"invalid recipient", SMTP_CAT_RECIPIENT},
	{"no mailbox", SMTP_CAT_RECIPIENT},
	{"account disabled", SMTP_CAT_RECIPIENT},
	{"account has been disabled", SMTP_CAT_RECIPIENT},
	/* network */
	{"timed out", SMTP_CAT_NETWORK},
	{"timeout", SMTP_CAT_NETWORK},
	{"connection refused", SMTP_CAT_NETWORK},
	{"connection reset", SMTP_CAT_NETWORK},
	{"lost connection", SMTP_CAT_NETWORK},
	{"no route to host", SMTP_CAT_NETWORK},
	{"host not found", SMTP_CAT_NETWORK},
	/* policy */
	{"relay access denied", SMTP_CAT_POLICY},
	{"relaying denied", SMTP_CAT_POLICY},
	{"policy", SMTP_CAT_POLICY},
	{"too many recipients", SMTP_CAT_POLICY},
	{"rate limit", SMTP_CAT_POLICY},
	{"unexpected volume", SMTP_CAT_POLICY},
	{"administrative prohibition", SMTP_CAT_POLICY},
	{"ptr record", SMTP_CAT_POLICY},
	{"reverse dns", SMTP_CAT_POLICY},
	{"cannot find your hostname", SMTP_CAT_POLICY},
};

/* Needles match at the start of a word ("listed" not in "greylisted"),
 * short ones as whole words ("rbl" not in "horrible"). */
static bool
is_word_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9');
}

static bool
text_has(const char *text, const char *needle)
{
	size_t n = strlen(needle);
	bool short_word = n <= 4;

	for (const char *p = text; *p != '\0'; p++) {
		if (strncasecmp(p, needle, n) != 0)
			continue;
		if (p != text && is_word_char(p[-1]))
			continue;
		if (!short_word || !is_word_char(p[n]))
			return true;
	}
	return false;
}

static enum smtp_reply_category
category_from_enhanced(int subject, int detail, int code)
{
	switch (subject) {
	case 1: /* addressing */
		return SMTP_CAT_RECIPIENT;
	case 2: /* mailbox */
		if (detail == 2)
			return SMTP_CAT_MAILBOX_FULL;
		if (detail == 3)
			return SMTP_CAT_SIZE;
		return SMTP_CAT_RECIPIENT;
	case 3: /* mail system */
		if (detail == 4)
			return SMTP_CAT_SIZE;
		return SMTP_CAT_OTHER;
	case 4: /* network and routing */
		if (detail == 1 && code >= 500)
			return SMTP_CAT_RECIPIENT; /* M365 "access denied" */
		return SMTP_CAT_NETWORK;
	case 5: /* protocol */
		if (detail == 3)
			return SMTP_CAT_POLICY; /* too many recipients */
		return SMTP_CAT_OTHER;
	case 6: /* content */
		return SMTP_CAT_OTHER;
	case 7: /* security or policy */
		if (detail == 10 || detail == 11)
			return SMTP_CAT_TLS;
		if (detail >= 20 && detail <= 24)
			return SMTP_CAT_DMARC;
		if (detail == 26)
			return SMTP_CAT_DMARC;
		return SMTP_CAT_POLICY;
	default:
		return SMTP_CAT_OTHER;
	}
}

struct smtp_reply_class
smtp_reply_classify(int code, const char *enhanced, const char *text)
{
	struct smtp_reply_class cls = {SMTP_REPLY_DEFER, SMTP_CAT_OTHER};
	int cls_digit, subject, detail;

	if (code >= 200 && code < 400) {
		cls.action = SMTP_REPLY_OK;
		cls.category = SMTP_CAT_NONE;
		return cls;
	}
	cls.action = code >= 500 && code < 600 ? SMTP_REPLY_REJECT
					       : SMTP_REPLY_DEFER;
	if (code == 0) {
		cls.category = SMTP_CAT_NETWORK;
		if (text != NULL && (text_has(text, "tls") ||
				     text_has(text, "ssl")))
			cls.category = SMTP_CAT_TLS;
		return cls;
	}
	if (text != NULL) {
		for (size_t i = 0; i < SP_N_ELEMENTS(text_rules); i++) {
			if (text_has(text, text_rules[i].needle)) {
				cls.category = text_rules[i].category;
				return cls;
			}
		}
	}
	if (enhanced != NULL &&
	    sscanf(enhanced, "%d.%d.%d", &cls_digit, &subject, &detail) == 3) {
		cls.category = category_from_enhanced(subject, detail, code);
		return cls;
	}
	switch (code) {
	case 421:
		cls.category = SMTP_CAT_NETWORK;
		break;
	case 450:
	case 550:
	case 551:
	case 553:
		cls.category = SMTP_CAT_RECIPIENT;
		break;
	case 452:
	case 552:
		cls.category = SMTP_CAT_MAILBOX_FULL;
		break;
	default:
		break;
	}
	return cls;
}

const char *
smtp_reply_category_name(enum smtp_reply_category category)
{
	static const char *const names[] = {
		[SMTP_CAT_NONE] = "none",
		[SMTP_CAT_RECIPIENT] = "recipient",
		[SMTP_CAT_MAILBOX_FULL] = "mailbox-full",
		[SMTP_CAT_BLOCKLIST] = "blocklist",
		[SMTP_CAT_SPAM] = "spam",
		[SMTP_CAT_VIRUS] = "virus",
		[SMTP_CAT_POLICY] = "policy",
		[SMTP_CAT_DMARC] = "dmarc",
		[SMTP_CAT_GREYLIST] = "greylist",
		[SMTP_CAT_NETWORK] = "network",
		[SMTP_CAT_TLS] = "tls",
		[SMTP_CAT_SIZE] = "size",
		[SMTP_CAT_OTHER] = "other",
	};

	if ((size_t)category >= SP_N_ELEMENTS(names))
		return "other";
	return names[category];
}
