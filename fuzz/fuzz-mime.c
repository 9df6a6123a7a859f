/*
 * libFuzzer target for src/mime: any bytes must parse without a crash, a
 * leak or a read outside the input, and every byte range the parser
 * reports must lie inside the input. BODY[section] extraction runs on the
 * same input for a fixed set of sections.
 */
#include "core/core.h"
#include "mime/mime.h"

#include <stdint.h>
#include <stdlib.h>

static const char *const sections[] = {
	"",	    "HEADER", "TEXT", "1",	 "1.MIME", "2",
	"2.1",	    "2.HEADER", "2.TEXT", "1.2.3", "3.1.MIME",
	"HEADER.FIELDS (Subject From Content-Type)",
	"HEADER.FIELDS.NOT (Subject)",
	"2.HEADER.FIELDS (To)",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mime_limits limits = { 1024 * 1024, 10, 100 };
	struct mime_info *info;
	const char *error;
	struct sp_buf buf;
	size_t i;
	char *value;

	if (mime_parse(data, size, &info, &error) == 0) {
		for (i = 0; i < info->attachment_count; i++) {
			if (info->attachments[i].body_offset >
				    size ||
			    info->attachments[i].body_len >
				    size - info->attachments[i].body_offset)
				abort();
		}
		if (info->header_len > size)
			abort();
		mime_info_destroy(&info);
	}
	(void)mime_check_limits(data, size, &limits, &error);
	sp_buf_init(&buf);
	for (i = 0; i < SP_N_ELEMENTS(sections); i++) {
		size_t before = buf.len;

		if (mime_section(data, size, sections[i], &buf) != 0)
			abort();
		/* No section is larger than the message, except the blank
		 * line HEADER.FIELDS always ends with. */
		if (buf.len - before > size + 2 * 64)
			abort();
	}
	sp_buf_deinit(&buf);
	value = mime_header_get(data, size, "Subject");
	free(value);
	return 0;
}
