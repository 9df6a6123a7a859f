/* Header-level edits and address lists, for message submission: reading
 * the addresses of From (the sender check) and rewriting the top header
 * block (Bcc removed, Message-ID and Date added) without parsing or
 * re-encoding anything else, so a message is sent byte for byte as the
 * client wrote it apart from those fields. */
#include "mime-private.h"

#include <gmime/gmime.h>
#include <stdlib.h>
#include <string.h>

static void
collect_addresses(InternetAddressList *list, char ***addrs, size_t *count)
{
	int n = internet_address_list_length(list);

	for (int i = 0; i < n; i++) {
		InternetAddress *ia = internet_address_list_get_address(list, i);

		if (INTERNET_ADDRESS_IS_GROUP(ia)) {
			collect_addresses(internet_address_group_get_members(
						  INTERNET_ADDRESS_GROUP(ia)),
					  addrs, count);
		} else if (INTERNET_ADDRESS_IS_MAILBOX(ia)) {
			const char *a = internet_address_mailbox_get_addr(
				INTERNET_ADDRESS_MAILBOX(ia));

			if (a == NULL || *a == '\0')
				continue;
			*addrs = xrealloc(*addrs, (*count + 1) * sizeof(**addrs));
			(*addrs)[(*count)++] = xstrdup(a);
		}
	}
}

int
mime_header_addresses(const void *raw_data, size_t len, const char *name,
		      char ***addrs_r, size_t *count_r)
{
	const char *raw = raw_data;
	struct mime_field field;
	size_t blank_len, pos = 0, name_len = strlen(name);
	size_t hend = mime_header_block_len(raw, 0, len, &blank_len);
	int fields = 0;

	*addrs_r = NULL;
	*count_r = 0;
	mime_init();
	while (mime_field_next(raw, &pos, hend, &field)) {
		InternetAddressList *list;
		char *value;

		if (!mime_field_is(raw, &field, name, name_len))
			continue;
		fields++;
		value = mime_field_value(raw, &field);
		list = internet_address_list_parse(NULL, value);
		free(value);
		if (list == NULL)
			continue;
		collect_addresses(list, addrs_r, count_r);
		g_object_unref(list);
	}
	return fields;
}

void
mime_addresses_free(char ***addrs, size_t count)
{
	for (size_t i = 0; i < count; i++)
		free((*addrs)[i]);
	free(*addrs);
	*addrs = NULL;
}

bool
mime_header_has(const void *raw_data, size_t len, const char *name)
{
	const char *raw = raw_data;
	struct mime_field field;
	size_t blank_len, pos = 0, name_len = strlen(name);
	size_t hend = mime_header_block_len(raw, 0, len, &blank_len);

	while (mime_field_next(raw, &pos, hend, &field)) {
		if (mime_field_is(raw, &field, name, name_len))
			return true;
	}
	return false;
}

void
mime_header_rewrite(const void *raw_data, size_t len, const char *prepend,
		    const char *const *drop, struct sp_buf *out)
{
	const char *raw = raw_data;
	struct mime_field field;
	size_t blank_len, pos = 0;
	size_t hend = mime_header_block_len(raw, 0, len, &blank_len);

	if (prepend != NULL)
		sp_buf_append_str(out, prepend);
	while (mime_field_next(raw, &pos, hend, &field)) {
		bool keep = true;

		for (size_t i = 0; drop != NULL && drop[i] != NULL; i++) {
			if (mime_field_is(raw, &field, drop[i],
					  strlen(drop[i]))) {
				keep = false;
				break;
			}
		}
		if (keep)
			sp_buf_append(out, raw + field.start,
				      field.end - field.start);
	}
	/* The blank line and the body, untouched. */
	sp_buf_append(out, raw + pos, len - pos);
}
