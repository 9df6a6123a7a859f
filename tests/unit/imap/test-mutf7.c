/* Modified UTF-7 mailbox names (RFC 3501 5.1.3): both directions, "&-",
 * characters beyond the BMP, and every kind of malformed input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "imap/imap-mutf7.h"

/* UTF-8 and its modified UTF-7 (checked against Python's utf-7 codec with
 * "/" replaced by ","). */
static const struct {
	const char *utf8, *mutf7;
} pairs[] = {
	{"INBOX", "INBOX"},
	{"", ""},
	{"&", "&-"},
	{"A&B&&", "A&-B&-&-"},
	{"Sent Items", "Sent Items"},
	{"日本語", "&ZeVnLIqe-"},
	{"~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"},
	{"Entwürfe", "Entw&APw-rfe"},
	{"&Entwürfe&", "&-Entw&APw-rfe&-"},
	/* U+1F600: the surrogate pair D83D DE00. */
	{"😀", "&2D3eAA-"},
	{"a😀b", "a&2D3eAA-b"},
	{"é😀é", "&AOnYPd4AAOk-"},
	{"\xef\xbf\xbd", "&,,0-"},
	/* Control characters are not printable: encoded. */
	{"a\x01z", "a&AAE-z"},
	{"\x7f", "&AH8-"},
};

static void
test_pairs(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
		const char *error = NULL;
		char *enc = imap_mutf7_encode(pairs[i].utf8);
		char *dec = imap_mutf7_decode(pairs[i].mutf7, &error);

		assert_string_equal(enc, pairs[i].mutf7);
		assert_non_null(dec);
		assert_string_equal(dec, pairs[i].utf8);
		free(enc);
		free(dec);
	}
}

static void
put_utf8(char *out, uint32_t cp)
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		out[1] = '\0';
	} else if (cp < 0x800) {
		snprintf(out, 8, "%c%c", 0xc0 | (cp >> 6), 0x80 | (cp & 0x3f));
	} else if (cp < 0x10000) {
		snprintf(out, 8, "%c%c%c", 0xe0 | (cp >> 12),
			 0x80 | ((cp >> 6) & 0x3f), 0x80 | (cp & 0x3f));
	} else {
		snprintf(out, 8, "%c%c%c%c", 0xf0 | (cp >> 18),
			 0x80 | ((cp >> 12) & 0x3f), 0x80 | ((cp >> 6) & 0x3f),
			 0x80 | (cp & 0x3f));
	}
}

/* Every run length (1..3 characters, so each padding case) of code points
 * across the planes survives UTF-8 -> mUTF-7 -> UTF-8, and the encoding is
 * pure printable ASCII. */
static void
test_round_trip(void **state)
{
	static const uint32_t cps[] = {
		0x01, 0x1f, 0x7f, 0x80, 0xe9, 0x7ff, 0x800, 0x3042, 0xd7ff,
		0xe000, 0xfffd, 0xffff, 0x10000, 0x1f600, 0x10ffff,
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cps) / sizeof(cps[0]); i++) {
		for (unsigned len = 1; len <= 3; len++) {
			char name[64] = "x", ch[8];
			const char *error = NULL;
			char *enc, *dec;

			put_utf8(ch, cps[i]);
			for (unsigned k = 0; k < len; k++)
				strcat(name, ch);
			strcat(name, "&y");
			enc = imap_mutf7_encode(name);
			for (const char *p = enc; *p != '\0'; p++)
				assert_true(*p >= 0x20 && *p <= 0x7e);
			dec = imap_mutf7_decode(enc, &error);
			assert_non_null(dec);
			assert_string_equal(dec, name);
			free(enc);
			free(dec);
		}
	}
}

static void
test_invalid(void **state)
{
	static const char *const bad[] = {
		"&",	      /* not closed */
		"a&ZeV",      /* not closed */
		"&ZeVnLIqe",  /* not closed */
		"&&-",	      /* "&" inside a run */
		"&Ze/nLIqe-", /* "/" is not modified base64 */
		"&Ze=nLIqe-", /* no padding either */
		"&AGE-",      /* "a" encoded */
		"&ACY-",      /* "&" encoded instead of "&-" */
		"&AAA-",      /* U+0000 */
		"&2D0-",      /* high surrogate alone */
		"&2D3YPQ-",   /* high surrogate followed by a high one */
		"&3gA-",      /* low surrogate alone */
		"&ZeVnLIqeA-", /* six bits too many */
		"&APx-",      /* non-zero padding bits */
		"Entw\xc3\xbcrfe", /* raw UTF-8 */
		"a\tb",	      /* control character */
		"\x7f",	      /* DEL */
	};
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *error = NULL;
		char *dec = imap_mutf7_decode(bad[i], &error);

		if (dec != NULL)
			fail_msg("\"%s\" decoded to \"%s\"", bad[i], dec);
		assert_non_null(error);
		assert_true(strlen(error) > 0);
	}
}

/* Invalid UTF-8 in a stored name still encodes (U+FFFD per bad byte), so
 * LIST never fails on it. */
static void
test_encode_invalid_utf8(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{"a\xff", "a&,,0-"},
		{"\xc0\xaf", "&,,3,,Q-"},	  /* overlong "/" */
		{"\xed\xa0\x80", "&,,3,,f,9-"},	  /* encoded surrogate */
		{"\xe6\x97", "&,,3,,Q-"},	  /* truncated */
		{"\xf4\x90\x80\x80x", "&,,3,,f,9,,0-x"}, /* > U+10FFFF */
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *enc = imap_mutf7_encode(cases[i].in);

		assert_string_equal(enc, cases[i].out);
		free(enc);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pairs),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_invalid),
		cmocka_unit_test(test_encode_invalid_utf8),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
