/*
 * Webhook targets: a signed JSON POST per message.
 *
 * The document (jansson):
 *   envelope  {mail_from, recipients[], remote_ip, helo, arrival}
 *   headers   [{name, value}] in order, unfolded, as received
 *   subject, date (ISO 8601 UTC or null), message_id
 *   from, to, cc, reply_to   [{name, address}]
 *   text, html   the first text/plain and text/html bodies, decoded to UTF-8
 *   attachments  [{filename, content_type, size, content (base64)}]
 *   raw          the whole message, base64
 * The URL's query may say attachments=false and/or raw=false to leave those
 * out. Strings that are not UTF-8 have their bad bytes replaced by U+FFFD.
 * A message past the MIME caps (header block, nesting, parts) is sent with
 * envelope, headers and raw only: it is never parsed without bound.
 *
 * Signature: X-Webhook-Timestamp is the Unix time of the request and
 * X-Webhook-Signature the hex HMAC-SHA256 of "<timestamp>.<body>" with the
 * domain's webhook key, so a receiver can refuse both forgeries and replays.
 *
 * The host is resolved once here; every address must be public unless
 * webhook_allow_private, and curl is pinned to the checked addresses with
 * CURLOPT_RESOLVE so a second look-up cannot swap them (DNS rebinding).
 * Redirects are not followed. 2xx is delivered, anything else (or a
 * timeout) a temporary failure.
 */
#include "route-private.h"

#include "mime/mime.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <gmime/gmime.h>
#include <jansson.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static pthread_once_t webhook_once = PTHREAD_ONCE_INIT;

static void
webhook_global_init(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
	/* GMime starts once per process through the mime module, which other
	 * threads share; g_mime_init() itself is not thread-safe. */
	mime_init();
}

void
route_webhook_sign(const unsigned char key[32], const char *timestamp,
		   const char *body, size_t body_len, char out[65])
{
	crypto_auth_hmacsha256_state st;
	unsigned char mac[32];

	crypto_auth_hmacsha256_init(&st, key, 32);
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)timestamp,
				      strlen(timestamp));
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)".", 1);
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)body,
				      body_len);
	crypto_auth_hmacsha256_final(&st, mac);
	hex_encode(mac, sizeof(mac), out);
}

bool
route_address_is_private(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET) {
		const unsigned char *a = (const unsigned char *)&(
			(const struct sockaddr_in *)sa)->sin_addr;

		return a[0] == 0 || a[0] == 10 || a[0] == 127 ||
		       (a[0] == 100 && (a[1] & 0xc0) == 64) || /* CGNAT */
		       (a[0] == 169 && a[1] == 254) || /* link-local, cloud
							     metadata */
		       (a[0] == 172 && (a[1] & 0xf0) == 16) ||
		       (a[0] == 192 && a[1] == 168) ||
		       (a[0] == 192 && a[1] == 0 && a[2] == 0) ||
		       (a[0] == 198 && (a[1] & 0xfe) == 18) ||
		       a[0] >= 224; /* multicast, reserved, broadcast */
	}
	if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a6 =
			&((const struct sockaddr_in6 *)sa)->sin6_addr;
		const unsigned char *b = a6->s6_addr;

		if (IN6_IS_ADDR_V4MAPPED(a6) || IN6_IS_ADDR_V4COMPAT(a6)) {
			struct sockaddr_in sin = {.sin_family = AF_INET};

			memcpy(&sin.sin_addr, b + 12, 4);
			return route_address_is_private(
				(const struct sockaddr *)&sin);
		}
		return IN6_IS_ADDR_UNSPECIFIED(a6) ||
		       IN6_IS_ADDR_LOOPBACK(a6) ||
		       IN6_IS_ADDR_LINKLOCAL(a6) || IN6_IS_ADDR_SITELOCAL(a6) ||
		       IN6_IS_ADDR_MULTICAST(a6) ||
		       (b[0] & 0xfe) == 0xfc || /* unique local */
		       (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d &&
			b[3] == 0xb8) || /* documentation */
		       (b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xff &&
			b[3] == 0x9b); /* NAT64 of anything: refuse */
	}
	return true;
}

/* ---- JSON building ------------------------------------------------------- */

/* A JSON string from bytes that may not be UTF-8. */
static json_t *
json_text(const char *s, size_t len)
{
	struct sp_buf buf;
	json_t *j;
	size_t i = 0;

	if (s == NULL)
		return json_null();
	j = json_stringn(s, len);
	if (j != NULL)
		return j;
	sp_buf_init(&buf);
	while (i < len) {
		unsigned char c = (unsigned char)s[i];
		size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3
				     : (c >> 3) == 30 ? 4 : 0;
		bool ok = n > 0 && i + n <= len && c != 0;

		for (size_t k = 1; ok && k < n; k++)
			ok = ((unsigned char)s[i + k] & 0xc0) == 0x80;
		if (ok && n > 1) {
			json_t *probe = json_stringn(s + i, n);

			ok = probe != NULL;
			json_decref(probe);
		}
		if (ok) {
			sp_buf_append(&buf, s + i, n);
			i += n;
		} else {
			sp_buf_append(&buf, "\xef\xbf\xbd", 3);
			i++;
		}
	}
	j = json_stringn(buf.data != NULL ? buf.data : "", buf.len);
	sp_buf_deinit(&buf);
	return j != NULL ? j : json_string("");
}

static json_t *
json_cstr(const char *s)
{
	return s != NULL ? json_text(s, strlen(s)) : json_null();
}

static char *
base64(const void *data, size_t len)
{
	size_t n = sodium_base64_encoded_len(len,
					     sodium_base64_VARIANT_ORIGINAL);
	char *out = xmalloc(n);

	sodium_bin2base64(out, n, data, len, sodium_base64_VARIANT_ORIGINAL);
	return out;
}

/* The top header block as [{name, value}], unfolded. */
static json_t *
json_headers(const char *msg, size_t len)
{
	json_t *arr = json_array();
	size_t i = 0;

	while (i < len) {
		size_t start = i, colon = 0;
		struct sp_buf value;

		if (msg[i] == '\r' || msg[i] == '\n')
			break; /* the empty line */
		/* A field: up to a line break not followed by WSP. */
		for (;;) {
			while (i < len && msg[i] != '\n')
				i++;
			if (i < len)
				i++;
			if (i >= len || (msg[i] != ' ' && msg[i] != '\t'))
				break;
		}
		for (size_t k = start; k < i; k++)
			if (msg[k] == ':') {
				colon = k;
				break;
			}
		if (colon == 0)
			continue;
		sp_buf_init(&value);
		for (size_t k = colon + 1; k < i; k++)
			if (msg[k] != '\r' && msg[k] != '\n')
				sp_buf_append(&value, &msg[k], 1);
		{
			const char *v = value.data != NULL ? value.data : "";
			size_t vl = value.len;

			while (vl > 0 && (*v == ' ' || *v == '\t')) {
				v++;
				vl--;
			}
			json_array_append_new(
				arr, json_pack("{s:o,s:o}", "name",
					       json_text(msg + start,
							 colon - start),
					       "value", json_text(v, vl)));
		}
		sp_buf_deinit(&value);
	}
	return arr;
}

static void
add_addresses(json_t *arr, InternetAddressList *list)
{
	int n = list != NULL ? internet_address_list_length(list) : 0;

	for (int i = 0; i < n; i++) {
		InternetAddress *ia =
			internet_address_list_get_address(list, i);

		if (INTERNET_ADDRESS_IS_MAILBOX(ia)) {
			InternetAddressMailbox *mb =
				INTERNET_ADDRESS_MAILBOX(ia);
			json_t *name = json_cstr(internet_address_get_name(ia));
			const char *a = internet_address_mailbox_get_addr(mb);
			json_t *addr = json_cstr(a);

			json_array_append_new(arr,
					      json_pack("{s:o,s:o}", "name",
							name, "address", addr));
		} else if (INTERNET_ADDRESS_IS_GROUP(ia)) {
			InternetAddressGroup *g = INTERNET_ADDRESS_GROUP(ia);

			add_addresses(arr,
				      internet_address_group_get_members(g));
		}
	}
}

static json_t *
json_addresses(GMimeMessage *m, GMimeAddressType type)
{
	json_t *arr = json_array();

	add_addresses(arr, g_mime_message_get_addresses(m, type));
	return arr;
}

/* A part's decoded content; text converted to UTF-8 from its charset. */
static GByteArray *
part_content(GMimePart *part, bool text)
{
	GMimeDataWrapper *w = g_mime_part_get_content(part);
	GMimeStream *mem, *filtered;
	GByteArray *arr;

	if (w == NULL)
		return NULL;
	mem = g_mime_stream_mem_new();
	filtered = g_mime_stream_filter_new(mem);
	if (text) {
		const char *cs = g_mime_object_get_content_type_parameter(
			GMIME_OBJECT(part), "charset");

		if (cs != NULL && strcasecmp(cs, "utf-8") != 0 &&
		    strcasecmp(cs, "us-ascii") != 0) {
			GMimeFilter *f = g_mime_filter_charset_new(cs, "UTF-8");

			if (f != NULL) {
				g_mime_stream_filter_add(
					GMIME_STREAM_FILTER(filtered), f);
				g_object_unref(f);
			}
		}
	}
	g_mime_data_wrapper_write_to_stream(w, filtered);
	g_mime_stream_flush(filtered);
	arr = g_byte_array_new();
	g_byte_array_append(arr,
			    g_mime_stream_mem_get_byte_array(
				    GMIME_STREAM_MEM(mem))->data,
			    g_mime_stream_mem_get_byte_array(
				    GMIME_STREAM_MEM(mem))->len);
	g_object_unref(filtered);
	g_object_unref(mem);
	return arr;
}

static void
add_parts(json_t *doc, GMimeMessage *m, bool with_attachments)
{
	GMimePartIter *iter = g_mime_part_iter_new(GMIME_OBJECT(m));
	json_t *atts = json_array();
	bool have_text = false, have_html = false;
	unsigned seen = 0;

	if (g_mime_part_iter_is_valid(iter)) {
		do {
			GMimeObject *cur = g_mime_part_iter_get_current(iter);
			GMimeContentType *ct;
			GMimePart *part;
			GByteArray *data;

			if (++seen > MIME_MAX_PARTS)
				break;
			if (!GMIME_IS_PART(cur))
				continue;
			part = GMIME_PART(cur);
			ct = g_mime_object_get_content_type(cur);
			if (!g_mime_part_is_attachment(part) &&
			    g_mime_content_type_is_type(ct, "text", "plain") &&
			    !have_text) {
				data = part_content(part, true);
				if (data != NULL) {
					json_object_set_new(
						doc, "text",
						json_text((char *)data->data,
							  data->len));
					g_byte_array_unref(data);
				}
				have_text = true;
			} else if (!g_mime_part_is_attachment(part) &&
				   g_mime_content_type_is_type(ct, "text",
							       "html") &&
				   !have_html) {
				data = part_content(part, true);
				if (data != NULL) {
					json_object_set_new(
						doc, "html",
						json_text((char *)data->data,
							  data->len));
					g_byte_array_unref(data);
				}
				have_html = true;
			} else if (with_attachments) {
				char *mime = g_mime_content_type_get_mime_type(
					ct);
				const char *fname =
					g_mime_part_get_filename(part);
				size_t size;
				char *b64;

				data = part_content(part, false);
				size = data != NULL ? data->len : 0;
				b64 = base64(data != NULL ? data->data
							  : (guint8 *)"",
					     size);
				json_array_append_new(
					atts,
					json_pack("{s:o,s:o,s:I,s:s}",
						  "filename", json_cstr(fname),
						  "content_type",
						  json_cstr(mime), "size",
						  (json_int_t)size, "content",
						  b64));
				free(b64);
				g_free(mime);
				if (data != NULL)
					g_byte_array_unref(data);
			}
		} while (g_mime_part_iter_next(iter));
	}
	g_mime_part_iter_free(iter);
	if (with_attachments)
		json_object_set_new(doc, "attachments", atts);
	else
		json_decref(atts);
}

static bool
query_says_false(const char *url, const char *name)
{
	const char *q = strchr(url, '?');
	size_t n = strlen(name);

	for (; q != NULL; q = strchr(q + 1, '&')) {
		const char *p = q + 1;

		if (strncmp(p, name, n) == 0 && p[n] == '=' &&
		    (strncmp(p + n + 1, "false", 5) == 0 ||
		     strncmp(p + n + 1, "0", 1) == 0))
			return true;
	}
	return false;
}

/* The JSON body; caller frees (the content is wiped first). */
static char *
webhook_body(const struct route_tx *tx, const char *url, const char *msg,
	     size_t len)
{
	json_t *doc = json_object(), *env = json_object();
	json_t *rcpts = json_array();
	bool with_attachments = !query_says_false(url, "attachments");
	bool with_raw = !query_says_false(url, "raw");
	struct mime_limits limits = {1024 * 1024, MIME_MAX_DEPTH,
				     MIME_MAX_PARTS};
	const char *error;
	char arrival[21];
	char *body;

	clock_format_iso8601(tx->arrival, arrival);
	for (size_t i = 0; i < tx->rcpt_count; i++)
		json_array_append_new(rcpts, json_cstr(tx->rcpts[i]));
	json_object_set_new(env, "mail_from", json_cstr(tx->mail_from));
	json_object_set_new(env, "recipients", rcpts);
	json_object_set_new(env, "remote_ip", json_cstr(tx->remote_ip));
	json_object_set_new(env, "helo", json_cstr(tx->helo));
	json_object_set_new(env, "arrival", json_string(arrival));
	json_object_set_new(doc, "envelope", env);
	json_object_set_new(doc, "headers", json_headers(msg, len));

	if (mime_check_limits(msg, len, &limits, &error) == 0) {
		GMimeStream *stream = g_mime_stream_mem_new_with_buffer(msg,
									len);
		GMimeParser *parser = g_mime_parser_new_with_stream(stream);
		GMimeMessage *m = g_mime_parser_construct_message(parser, NULL);

		if (m != NULL) {
			GDateTime *date = g_mime_message_get_date(m);
			const char *subject = g_mime_message_get_subject(m);

			json_object_set_new(doc, "subject",
					    json_cstr(subject));
			if (date != NULL) {
				char out[21];

				clock_format_iso8601(
					(time_t)g_date_time_to_unix(date), out);
				json_object_set_new(doc, "date",
						    json_string(out));
			} else {
				json_object_set_new(doc, "date", json_null());
			}
			json_object_set_new(
				doc, "message_id",
				json_cstr(g_mime_message_get_message_id(m)));
			json_object_set_new(
				doc, "from",
				json_addresses(m, GMIME_ADDRESS_TYPE_FROM));
			json_object_set_new(
				doc, "to",
				json_addresses(m, GMIME_ADDRESS_TYPE_TO));
			json_object_set_new(
				doc, "cc",
				json_addresses(m, GMIME_ADDRESS_TYPE_CC));
			json_object_set_new(
				doc, "reply_to",
				json_addresses(m, GMIME_ADDRESS_TYPE_REPLY_TO));
			add_parts(doc, m, with_attachments);
			g_object_unref(m);
		}
		g_object_unref(parser);
		g_object_unref(stream);
	}
	if (with_raw) {
		char *raw = base64(msg, len);

		json_object_set_new(doc, "raw", json_string(raw));
		sodium_memzero(raw, strlen(raw));
		free(raw);
	}
	body = json_dumps(doc, JSON_COMPACT);
	json_decref(doc);
	return body;
}

/* ---- the request --------------------------------------------------------- */

static size_t
discard_body(char *ptr, size_t size, size_t nmemb, void *ctx)
{
	return size * nmemb;
}

/* Resolves the URL's host, checks every address, and pins curl to them.
 * Returns 0, or -1 with the answer set. */
static int
pin_addresses(struct route *r, CURL *curl, const char *url,
	      struct curl_slist **resolve_r, struct route_answer *a)
{
	CURLU *u = curl_url();
	char *host = NULL, *port = NULL, *scheme = NULL;
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
	struct sp_buf entry;
	int ret = -1;

	sp_buf_init(&entry);
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) !=
		    CURLUE_OK) {
		str_copy(a->text, "bad webhook URL", sizeof(a->text));
		goto out;
	}
	{
		/* "[::1]" -> "::1" for getaddrinfo */
		char *h = host;
		size_t hl = strlen(h);

		if (hl > 2 && h[0] == '[' && h[hl - 1] == ']') {
			h[hl - 1] = '\0';
			h++;
		}
		if (getaddrinfo(h, port, &hints, &res) != 0 || res == NULL) {
			str_copy(a->text, "webhook host does not resolve",
				 sizeof(a->text));
			goto out;
		}
	}
	sp_buf_printf(&entry, "%s:%s:", host, port);
	{
		bool first = true;

		for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
			char ip[INET6_ADDRSTRLEN];
			const struct sockaddr_in *sin =
				(const struct sockaddr_in *)ai->ai_addr;
			const struct sockaddr_in6 *sin6 =
				(const struct sockaddr_in6 *)ai->ai_addr;
			const void *src;

			if (ai->ai_family == AF_INET)
				src = &sin->sin_addr;
			else
				src = &sin6->sin6_addr;

			if (route_address_is_private(ai->ai_addr) &&
			    !r->set.webhook_allow_private) {
				str_copy(a->text,
					 "webhook address is not public",
					 sizeof(a->text));
				goto out;
			}
			inet_ntop(ai->ai_family, src, ip, sizeof(ip));
			if (!first)
				sp_buf_append(&entry, ",", 1);
			if (ai->ai_family == AF_INET6)
				sp_buf_printf(&entry, "[%s]", ip);
			else
				sp_buf_append_str(&entry, ip);
			first = false;
		}
	}
	*resolve_r = curl_slist_append(NULL, entry.data);
	curl_easy_setopt(curl, CURLOPT_RESOLVE, *resolve_r);
	ret = 0;
out:
	if (res != NULL)
		freeaddrinfo(res);
	sp_buf_deinit(&entry);
	curl_free(host);
	curl_free(port);
	curl_free(scheme);
	curl_url_cleanup(u);
	return ret;
}

void
route_webhook_post(struct route *r, const struct route_tx *tx,
		   const struct route_target *t, const char *msg, size_t len,
		   struct route_answer *a)
{
	CURL *curl;
	struct curl_slist *headers = NULL, *resolve = NULL;
	char ts[24], sig[65], *body, *h;
	long status = 0;
	CURLcode rc;

	pthread_once(&webhook_once, webhook_global_init);
	a->action = ROUTE_ANSWER_DEFER;
	a->code = 451;
	str_copy(a->enhanced, "4.4.0", sizeof(a->enhanced));
	curl = curl_easy_init();
	if (curl == NULL) {
		str_copy(a->text, "webhook unavailable", sizeof(a->text));
		return;
	}
	if (pin_addresses(r, curl, t->value, &resolve, a) < 0) {
		curl_easy_cleanup(curl);
		return;
	}
	body = webhook_body(tx, t->value, msg, len);
	snprintf(ts, sizeof(ts), "%lld", (long long)clock_now());
	route_webhook_sign(t->alias->domain->webhook_key, ts, body,
			   strlen(body), sig);
	headers = curl_slist_append(headers, "Content-Type: application/json");
	h = xasprintf("X-Webhook-Timestamp: %s", ts);
	headers = curl_slist_append(headers, h);
	free(h);
	h = xasprintf("X-Webhook-Signature: %s", sig);
	headers = curl_slist_append(headers, h);
	free(h);
	headers = curl_slist_append(headers, "Expect:");

	curl_easy_setopt(curl, CURLOPT_URL, t->value);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE,
			 (curl_off_t)strlen(body));
	curl_easy_setopt(curl, CURLOPT_TIMEOUT,
			 (long)(r->set.webhook_timeout_seconds != 0
					? r->set.webhook_timeout_seconds
					: 30));
	curl_easy_setopt(curl, CURLOPT_USERAGENT, "Sealpost");
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, discard_body);
	curl_easy_setopt(curl, CURLOPT_PROXY, "");
	rc = curl_easy_perform(curl);
	if (rc == CURLE_OK)
		curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	if (rc == CURLE_OK && status >= 200 && status < 300) {
		a->action = ROUTE_ANSWER_OK;
		a->code = 250;
		a->enhanced[0] = '\0';
		a->text[0] = '\0';
	} else if (rc != CURLE_OK) {
		snprintf(a->text, sizeof(a->text), "webhook: %s",
			 curl_easy_strerror(rc));
	} else {
		snprintf(a->text, sizeof(a->text), "webhook answered %ld",
			 status);
	}
	curl_slist_free_all(headers);
	curl_slist_free_all(resolve);
	curl_easy_cleanup(curl);
	sodium_memzero(body, strlen(body));
	free(body);
}
