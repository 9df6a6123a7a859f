/* libFuzzer target for the SMTP command parser and the DATA reader.
 *
 * The input's first byte picks where to split the rest into two feeds;
 * the reader must reach the same result as with one feed, never leave a
 * bare CR or LF in the content, and the content must survive a round trip
 * through smtp_data_encode(). Every line of the input is also parsed as a
 * command. */
#include "smtp/smtp.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void
check_content(const struct sp_buf *c)
{
	for (size_t i = 0; i < c->len; i++) {
		if (c->data[i] == '\r' && (i + 1 >= c->len || c->data[i + 1] != '\n'))
			abort();
		if (c->data[i] == '\n' && (i == 0 || c->data[i - 1] != '\r'))
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smtp_data_reader one, two, again;
	const char *in = (const char *)data + 1;
	size_t len, split, used1 = 0, used2a = 0, used2b = 0, used3 = 0;
	bool done1, done2, first_done;
	struct sp_buf enc;

	if (size == 0)
		return 0;
	len = size - 1;
	split = len == 0 ? 0 : data[0] % (len + 1);

	/* commands */
	for (size_t start = 0; start < len;) {
		const char *lf = memchr(in + start, '\n', len - start);
		size_t end = lf != NULL ? (size_t)(lf - in) : len;
		struct smtp_command cmd;

		if (smtp_command_parse(in + start, end - start, &cmd) ==
		    SMTP_PARSE_OK)
			smtp_command_clear(&cmd);
		start = end + 1;
	}

	/* DATA, one feed and two feeds */
	smtp_data_reader_init(&one, 0, 0);
	smtp_data_reader_init(&two, 0, 0);
	done1 = smtp_data_reader_feed(&one, in, len, &used1);
	first_done = done2 = smtp_data_reader_feed(&two, in, split, &used2a);
	if (!done2 && split < len)
		done2 = smtp_data_reader_feed(&two, in + split, len - split,
					      &used2b);
	if (done1 != done2)
		abort();
	if (done1 && used1 != (first_done ? used2a : split + used2b))
		abort();
	if (one.content.len != two.content.len ||
	    (one.content.len > 0 &&
	     memcmp(one.content.data, two.content.data, one.content.len) != 0))
		abort();
	check_content(&one.content);

	/* round trip */
	if (done1) {
		sp_buf_init(&enc);
		smtp_data_encode(one.content.data != NULL ? one.content.data : "",
				 one.content.len, &enc);
		sp_buf_append(&enc, ".\r\n", 3);
		smtp_data_reader_init(&again, 0, 0);
		if (!smtp_data_reader_feed(&again, enc.data, enc.len, &used3) ||
		    used3 != enc.len || again.content.len != one.content.len ||
		    (one.content.len > 0 &&
		     memcmp(again.content.data, one.content.data,
			    one.content.len) != 0))
			abort();
		smtp_data_reader_deinit(&again);
		sp_buf_deinit(&enc);
	}
	smtp_data_reader_deinit(&one);
	smtp_data_reader_deinit(&two);
	return 0;
}
