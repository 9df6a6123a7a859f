/* A small S3 client on libcurl: PUT, GET, HEAD, DELETE and ListObjectsV2,
 * signed with AWS Signature V4 by libcurl (CURLOPT_AWS_SIGV4). The XML of
 * listings and error documents is read with expat. */
#include "backup-private.h"

#include <curl/curl.h>
#include <errno.h>
#include <expat.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

atomic_bool backup_s3_abort;

/* SHA-256 of nothing: the payload hash of requests without a body. */
#define S3_EMPTY_SHA256                                                      \
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
/* Answers to listings and errors are small; anything larger is not S3. */
#define S3_MAX_SMALL_BODY (8u * 1024 * 1024)

static pthread_once_t s3_once = PTHREAD_ONCE_INIT;

static void
s3_global_init(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* ---- XML ---- */

enum s3_xml_kind {
	S3_XML_LIST,
	S3_XML_ERROR,
};

struct s3_xml {
	enum s3_xml_kind kind;
	int depth;
	bool in_contents;
	bool seen_root;
	struct sp_buf text;
	/* Listing. */
	struct backup_s3_object **objects;
	size_t *count;
	char *cur_key;
	uint64_t cur_size;
	bool truncated;
	char *next_token;
	/* Error. */
	char *code;
	char *message;
};

/* Element names may carry the S3 namespace prefix-less; compare the local
 * part only. */
static const char *
s3_local_name(const char *name)
{
	const char *colon = strrchr(name, ':');

	return colon != NULL ? colon + 1 : name;
}

static void XMLCALL
s3_xml_start(void *data, const char *name, const char **attrs)
{
	struct s3_xml *x = data;

	(void)attrs;
	name = s3_local_name(name);
	x->depth++;
	sp_buf_reset(&x->text);
	if (x->depth == 1) {
		x->seen_root = strcmp(name, x->kind == S3_XML_LIST
						    ? "ListBucketResult"
						    : "Error") == 0;
		return;
	}
	if (x->kind == S3_XML_LIST && x->depth == 2 &&
	    strcmp(name, "Contents") == 0) {
		x->in_contents = true;
		free(x->cur_key);
		x->cur_key = NULL;
		x->cur_size = 0;
	}
}

/* The <Contents> just closed becomes one object (the key is handed
 * over). */
static void
s3_xml_add_object(struct s3_xml *x)
{
	if (x->cur_key == NULL)
		return;
	*x->objects = xrealloc(*x->objects,
			       (*x->count + 1) * sizeof(**x->objects));
	(*x->objects)[*x->count].key = x->cur_key;
	(*x->objects)[*x->count].size = x->cur_size;
	(*x->count)++;
	x->cur_key = NULL;
}

static void XMLCALL
s3_xml_end(void *data, const char *name)
{
	struct s3_xml *x = data;
	const char *text = x->text.data != NULL ? x->text.data : "";

	name = s3_local_name(name);
	if (!x->seen_root) {
		x->depth--;
		return;
	}
	if (x->kind == S3_XML_ERROR && x->depth == 2) {
		if (strcmp(name, "Code") == 0 && x->code == NULL)
			x->code = xstrdup(text);
		else if (strcmp(name, "Message") == 0 && x->message == NULL)
			x->message = xstrdup(text);
	} else if (x->kind == S3_XML_LIST && x->depth == 2) {
		if (strcmp(name, "IsTruncated") == 0) {
			x->truncated = strcmp(text, "true") == 0;
		} else if (strcmp(name, "NextContinuationToken") == 0) {
			free(x->next_token);
			x->next_token = xstrdup(text);
		} else if (strcmp(name, "Contents") == 0 && x->in_contents) {
			x->in_contents = false;
			s3_xml_add_object(x);
		}
	} else if (x->kind == S3_XML_LIST && x->depth == 3 &&
		   x->in_contents) {
		if (strcmp(name, "Key") == 0) {
			free(x->cur_key);
			x->cur_key = xstrdup(text);
		} else if (strcmp(name, "Size") == 0) {
			x->cur_size = strtoull(text, NULL, 10);
		}
	}
	sp_buf_reset(&x->text);
	x->depth--;
}

static void XMLCALL
s3_xml_chars(void *data, const char *s, int len)
{
	struct s3_xml *x = data;

	if (x->text.len + (size_t)len < 64 * 1024)
		sp_buf_append(&x->text, s, (size_t)len);
}

static int
s3_xml_parse(struct s3_xml *x, const char *xml, size_t len)
{
	XML_Parser p = XML_ParserCreate("UTF-8");
	int ret;

	if (p == NULL)
		core_panic("XML_ParserCreate failed");
	sp_buf_init(&x->text);
	XML_SetUserData(p, x);
	XML_SetElementHandler(p, s3_xml_start, s3_xml_end);
	XML_SetCharacterDataHandler(p, s3_xml_chars);
	ret = XML_Parse(p, xml, (int)len, 1) == XML_STATUS_OK && x->seen_root
		      ? 0
		      : -1;
	XML_ParserFree(p);
	sp_buf_deinit(&x->text);
	free(x->cur_key);
	x->cur_key = NULL;
	return ret;
}

int
backup_s3_parse_list(const char *xml, size_t len,
		     struct backup_s3_object **objects, size_t *count,
		     bool *truncated_r, char **next_token_r)
{
	struct s3_xml x = {.kind = S3_XML_LIST};

	x.objects = objects;
	x.count = count;
	*next_token_r = NULL;
	if (len > INT32_MAX || s3_xml_parse(&x, xml, len) < 0) {
		free(x.next_token);
		return -1;
	}
	*truncated_r = x.truncated;
	*next_token_r = x.next_token;
	return 0;
}

int
backup_s3_parse_error(const char *xml, size_t len, char **code_r,
		      char **message_r)
{
	struct s3_xml x = {.kind = S3_XML_ERROR};

	*code_r = NULL;
	*message_r = NULL;
	if (len > INT32_MAX || s3_xml_parse(&x, xml, len) < 0) {
		free(x.code);
		free(x.message);
		return -1;
	}
	*code_r = x.code;
	*message_r = x.message;
	return 0;
}

void
backup_s3_objects_free(struct backup_s3_object **objects, size_t count)
{
	if (*objects == NULL)
		return;
	for (size_t i = 0; i < count; i++)
		free((*objects)[i].key);
	free(*objects);
	*objects = NULL;
}

/* ---- URLs ---- */

/* SigV4 URI encoding: unreserved characters stay, everything else is
 * %XX (upper case); '/' stays in paths. */
static void
s3_uri_encode(struct sp_buf *out, const char *s, bool keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";

	for (const unsigned char *p = (const unsigned char *)s; *p != '\0';
	     p++) {
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		    (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' ||
		    *p == '_' || *p == '~' || (keep_slash && *p == '/')) {
			sp_buf_append(out, p, 1);
		} else {
			char esc[3] = {'%', hex[*p >> 4], hex[*p & 15]};

			sp_buf_append(out, esc, 3);
		}
	}
}

char *
backup_s3_url(const struct backup_target *target, const char *key)
{
	struct sp_buf url;
	const char *host = strstr(target->endpoint, "://");

	sp_buf_init(&url);
	if (target->path_style || host == NULL) {
		sp_buf_printf(&url, "%s/", target->endpoint);
		s3_uri_encode(&url, target->bucket, false);
		sp_buf_append_str(&url, "/");
	} else {
		/* Virtual-host style: the bucket becomes the first label of
		 * the endpoint's host. */
		sp_buf_append(&url, target->endpoint,
			      (size_t)(host + 3 - target->endpoint));
		s3_uri_encode(&url, target->bucket, false);
		sp_buf_printf(&url, ".%s/", host + 3);
	}
	if (key != NULL)
		s3_uri_encode(&url, key, true);
	return sp_buf_steal(&url, NULL);
}

/* ---- Requests ---- */

struct s3_request {
	CURL *curl;
	struct curl_slist *headers;
	long status;
	/* Body sink: small answers go to `body`; a successful GET to a file
	 * goes to `out` and through `sha`. */
	struct sp_buf body;
	int out_fd;
	EVP_MD_CTX *sha;
	bool write_failed;
	struct backup_s3_meta meta;
	char errbuf[CURL_ERROR_SIZE];
};

static size_t
s3_write(char *ptr, size_t size, size_t nmemb, void *ctx)
{
	struct s3_request *r = ctx;
	size_t len = size * nmemb;
	long status = 0;

	curl_easy_getinfo(r->curl, CURLINFO_RESPONSE_CODE, &status);
	if (r->out_fd >= 0 && status >= 200 && status < 300) {
		size_t done = 0;

		EVP_DigestUpdate(r->sha, ptr, len);
		while (done < len) {
			ssize_t n = write(r->out_fd, ptr + done, len - done);

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				r->write_failed = true;
				return 0;
			}
			done += (size_t)n;
		}
		return len;
	}
	if (r->body.len + len > S3_MAX_SMALL_BODY)
		return 0;
	sp_buf_append(&r->body, ptr, len);
	return len;
}

static void
s3_header_value(const char *line, size_t len, const char *name, char *out,
		size_t out_size)
{
	size_t nlen = strlen(name);
	size_t vlen;
	const char *v;

	if (len <= nlen + 1 || strncasecmp(line, name, nlen) != 0 ||
	    line[nlen] != ':')
		return;
	v = line + nlen + 1;
	vlen = len - nlen - 1;
	while (vlen > 0 && (*v == ' ' || *v == '\t')) {
		v++;
		vlen--;
	}
	while (vlen > 0 && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n' ||
			    v[vlen - 1] == ' '))
		vlen--;
	if (vlen >= out_size)
		return;
	memcpy(out, v, vlen);
	out[vlen] = '\0';
}

static size_t
s3_header(char *line, size_t size, size_t nitems, void *ctx)
{
	struct s3_request *r = ctx;
	size_t len = size * nitems;
	char num[32] = "";

	/* A new status line (redirects, 100-continue) starts over. */
	if (len >= 5 && strncmp(line, "HTTP/", 5) == 0)
		memset(&r->meta, 0, sizeof(r->meta));
	s3_header_value(line, len, "x-amz-meta-sha256", r->meta.sha256,
			sizeof(r->meta.sha256));
	s3_header_value(line, len, "x-amz-meta-fingerprint",
			r->meta.fingerprint, sizeof(r->meta.fingerprint));
	s3_header_value(line, len, "x-amz-meta-created", r->meta.created,
			sizeof(r->meta.created));
	s3_header_value(line, len, "x-amz-meta-marker", r->meta.marker,
			sizeof(r->meta.marker));
	s3_header_value(line, len, "content-length", num, sizeof(num));
	if (num[0] != '\0')
		r->meta.size = strtoull(num, NULL, 10);
	return len;
}

static int
s3_progress(void *ctx, curl_off_t dltotal, curl_off_t dlnow,
	    curl_off_t ultotal, curl_off_t ulnow)
{
	(void)ctx;
	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	return atomic_load(&backup_s3_abort) ? 1 : 0;
}

static void
s3_request_init(struct s3_request *r, const struct backup_target *target,
		const char *url, const char *payload_sha256)
{
	char *sigv4 = xasprintf("aws:amz:%s:s3", target->region);
	char *h;

	pthread_once(&s3_once, s3_global_init);
	memset(r, 0, sizeof(*r));
	r->out_fd = -1;
	sp_buf_init(&r->body);
	r->curl = curl_easy_init();
	if (r->curl == NULL)
		core_panic("curl_easy_init failed");
	curl_easy_setopt(r->curl, CURLOPT_URL, url);
	curl_easy_setopt(r->curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(r->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(r->curl, CURLOPT_ERRORBUFFER, r->errbuf);
	curl_easy_setopt(r->curl, CURLOPT_CONNECTTIMEOUT, 15L);
	/* No fixed total time (a large mailbox takes what it takes), but a
	 * transfer that stalls for five minutes is given up (the storage
	 * may take a while to answer after the last byte of a large PUT). */
	curl_easy_setopt(r->curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(r->curl, CURLOPT_LOW_SPEED_TIME, 300L);
	curl_easy_setopt(r->curl, CURLOPT_AWS_SIGV4, sigv4);
	curl_easy_setopt(r->curl, CURLOPT_USERNAME, target->access_key_id);
	curl_easy_setopt(r->curl, CURLOPT_PASSWORD, target->secret_access_key);
	curl_easy_setopt(r->curl, CURLOPT_WRITEFUNCTION, s3_write);
	curl_easy_setopt(r->curl, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(r->curl, CURLOPT_HEADERFUNCTION, s3_header);
	curl_easy_setopt(r->curl, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(r->curl, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(r->curl, CURLOPT_XFERINFOFUNCTION, s3_progress);
	/* S3 wants the payload hash in this header; libcurl (7.87 and
	 * later) signs it and uses its value as the hashed payload of the
	 * canonical request. */
	h = xasprintf("x-amz-content-sha256: %s", payload_sha256);
	r->headers = curl_slist_append(r->headers, h);
	free(h);
	free(sigv4);
}

static void
s3_request_deinit(struct s3_request *r)
{
	curl_slist_free_all(r->headers);
	curl_easy_cleanup(r->curl);
	sp_buf_deinit(&r->body);
	if (r->sha != NULL)
		EVP_MD_CTX_free(r->sha);
	explicit_bzero(r->errbuf, sizeof(r->errbuf));
}

/* Runs the request and maps the outcome. 2xx is BACKUP_OK. */
static enum backup_error
s3_perform(struct s3_request *r, const struct backup_target *target,
	   const char *what, const char **error_r)
{
	char *code = NULL, *message = NULL;
	enum backup_error err;
	CURLcode rc;

	curl_easy_setopt(r->curl, CURLOPT_HTTPHEADER, r->headers);
	rc = curl_easy_perform(r->curl);
	if (rc != CURLE_OK) {
		if (atomic_load(&backup_s3_abort)) {
			backup_set_error(error_r, "%s: stopped", what);
			return BACKUP_ERR_TEMP;
		}
		if (r->write_failed) {
			backup_set_error(error_r,
					 "%s: writing the download: %s", what,
					 strerror(errno));
			return BACKUP_ERR_TEMP;
		}
		switch (rc) {
		case CURLE_COULDNT_RESOLVE_HOST:
		case CURLE_COULDNT_CONNECT:
		case CURLE_OPERATION_TIMEDOUT:
		case CURLE_SSL_CONNECT_ERROR:
		case CURLE_PEER_FAILED_VERIFICATION:
		case CURLE_RECV_ERROR:
		case CURLE_SEND_ERROR:
		case CURLE_GOT_NOTHING:
			backup_set_error(error_r,
					 "cannot reach the S3 endpoint %s: %s",
					 target->endpoint,
					 r->errbuf[0] != '\0'
						 ? r->errbuf
						 : curl_easy_strerror(rc));
			return BACKUP_ERR_UNREACHABLE;
		default:
			backup_set_error(error_r, "%s: %s", what,
					 r->errbuf[0] != '\0'
						 ? r->errbuf
						 : curl_easy_strerror(rc));
			return BACKUP_ERR_TEMP;
		}
	}
	curl_easy_getinfo(r->curl, CURLINFO_RESPONSE_CODE, &r->status);
	if (r->status >= 200 && r->status < 300)
		return BACKUP_OK;
	(void)backup_s3_parse_error(r->body.data, r->body.len, &code,
				    &message);
	if (code != NULL && strcmp(code, "NoSuchBucket") == 0) {
		backup_set_error(error_r, "the bucket '%s' does not exist",
				 target->bucket);
		err = BACKUP_ERR_NO_BUCKET;
	} else if (r->status == 404) {
		backup_set_error(error_r, "%s: no such object", what);
		err = BACKUP_ERR_NOTFOUND;
	} else if (r->status == 401 || r->status == 403) {
		backup_set_error(error_r,
				 "the S3 storage refused the credentials "
				 "(%s%s%s)",
				 code != NULL ? code : "HTTP 403",
				 message != NULL ? ": " : "",
				 message != NULL ? message : "");
		err = BACKUP_ERR_AUTH;
	} else {
		backup_set_error(error_r, "%s: the S3 storage answered %ld%s%s",
				 what, r->status, code != NULL ? " " : "",
				 code != NULL ? code : "");
		err = BACKUP_ERR_TEMP;
	}
	free(code);
	free(message);
	return err;
}

enum backup_error
backup_s3_put_file(const struct backup_target *target, const char *key,
		   const char *path, const char *sha256_hex,
		   const struct backup_s3_header *headers, size_t header_count,
		   const char **error_r)
{
	struct s3_request r;
	char *url = backup_s3_url(target, key);
	enum backup_error err;
	FILE *f = fopen(path, "rb");
	off_t size;

	if (f == NULL) {
		free(url);
		backup_set_error(error_r, "%s: %s", path, strerror(errno));
		return BACKUP_ERR_TEMP;
	}
	if (fseeko(f, 0, SEEK_END) < 0 || (size = ftello(f)) < 0 ||
	    fseeko(f, 0, SEEK_SET) < 0) {
		fclose(f);
		free(url);
		backup_set_error(error_r, "%s: %s", path, strerror(errno));
		return BACKUP_ERR_TEMP;
	}
	s3_request_init(&r, target, url, sha256_hex);
	for (size_t i = 0; i < header_count; i++) {
		char *h = xasprintf("x-amz-meta-%s: %s", headers[i].name,
				    headers[i].value);

		r.headers = curl_slist_append(r.headers, h);
		free(h);
	}
	r.headers = curl_slist_append(r.headers,
				      "Content-Type: application/octet-stream");
	/* No "Expect: 100-continue" round trip. */
	r.headers = curl_slist_append(r.headers, "Expect:");
	curl_easy_setopt(r.curl, CURLOPT_UPLOAD, 1L);
	curl_easy_setopt(r.curl, CURLOPT_READDATA, f);
	curl_easy_setopt(r.curl, CURLOPT_INFILESIZE_LARGE, (curl_off_t)size);
	err = s3_perform(&r, target, "upload", error_r);
	s3_request_deinit(&r);
	fclose(f);
	free(url);
	return err;
}

enum backup_error
backup_s3_get_file(const struct backup_target *target, const char *key,
		   const char *path, char *sha256_hex_r,
		   struct backup_s3_meta *meta_r, const char **error_r)
{
	struct s3_request r;
	char *url = backup_s3_url(target, key);
	enum backup_error err;
	unsigned char md[32];
	unsigned int md_len = 0;
	int fd;

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		free(url);
		backup_set_error(error_r, "%s: %s", path, strerror(errno));
		return BACKUP_ERR_TEMP;
	}
	s3_request_init(&r, target, url, S3_EMPTY_SHA256);
	r.out_fd = fd;
	r.sha = EVP_MD_CTX_new();
	if (r.sha == NULL || EVP_DigestInit_ex(r.sha, EVP_sha256(), NULL) != 1)
		core_panic("EVP_DigestInit failed");
	err = s3_perform(&r, target, "download", error_r);
	if (err == BACKUP_OK && fsync(fd) < 0) {
		backup_set_error(error_r, "%s: %s", path, strerror(errno));
		err = BACKUP_ERR_TEMP;
	}
	if (err == BACKUP_OK) {
		EVP_DigestFinal_ex(r.sha, md, &md_len);
		hex_encode(md, sizeof(md), sha256_hex_r);
		*meta_r = r.meta;
	}
	close(fd);
	if (err != BACKUP_OK)
		(void)unlink(path);
	s3_request_deinit(&r);
	free(url);
	return err;
}

enum backup_error
backup_s3_head(const struct backup_target *target, const char *key,
	       struct backup_s3_meta *meta_r, const char **error_r)
{
	struct s3_request r;
	char *url = backup_s3_url(target, key);
	enum backup_error err;

	s3_request_init(&r, target, url, S3_EMPTY_SHA256);
	curl_easy_setopt(r.curl, CURLOPT_NOBODY, 1L);
	err = s3_perform(&r, target, "metadata", error_r);
	if (err == BACKUP_OK)
		*meta_r = r.meta;
	s3_request_deinit(&r);
	free(url);
	return err;
}

enum backup_error
backup_s3_delete(const struct backup_target *target, const char *key,
		 const char **error_r)
{
	struct s3_request r;
	char *url = backup_s3_url(target, key);
	enum backup_error err;

	s3_request_init(&r, target, url, S3_EMPTY_SHA256);
	curl_easy_setopt(r.curl, CURLOPT_CUSTOMREQUEST, "DELETE");
	err = s3_perform(&r, target, "delete", error_r);
	s3_request_deinit(&r);
	free(url);
	return err;
}

enum backup_error
backup_s3_list(const struct backup_target *target, const char *prefix,
	       struct backup_s3_object **objects_r, size_t *count_r,
	       const char **error_r)
{
	char *token = NULL;
	enum backup_error err = BACKUP_OK;

	*objects_r = NULL;
	*count_r = 0;
	/* Bounded: 1000 keys a page, and a mailbox has a handful. */
	for (int page = 0; page < 1000; page++) {
		struct s3_request r;
		struct sp_buf url;
		char *base = backup_s3_url(target, NULL);
		bool truncated = false;

		/* SigV4 signs the query sorted by name, values encoded. */
		sp_buf_init(&url);
		sp_buf_append_str(&url, base);
		free(base);
		sp_buf_append_str(&url, "?");
		if (token != NULL) {
			sp_buf_append_str(&url, "continuation-token=");
			s3_uri_encode(&url, token, false);
			sp_buf_append_str(&url, "&");
		}
		sp_buf_append_str(&url, "list-type=2&prefix=");
		s3_uri_encode(&url, prefix, false);
		s3_request_init(&r, target, url.data, S3_EMPTY_SHA256);
		err = s3_perform(&r, target, "list", error_r);
		if (err == BACKUP_OK) {
			free(token);
			token = NULL;
			if (backup_s3_parse_list(r.body.data, r.body.len,
						 objects_r, count_r,
						 &truncated, &token) < 0) {
				backup_set_error(error_r,
						 "list: the answer is not an "
						 "S3 listing");
				err = BACKUP_ERR_TEMP;
			}
		} else if (err == BACKUP_ERR_NOTFOUND) {
			/* A 404 without NoSuchBucket on the bucket URL. */
			backup_set_error(error_r,
					 "the bucket '%s' does not exist",
					 target->bucket);
			err = BACKUP_ERR_NO_BUCKET;
		}
		s3_request_deinit(&r);
		sp_buf_deinit(&url);
		if (err != BACKUP_OK || !truncated || token == NULL)
			break;
	}
	free(token);
	if (err != BACKUP_OK)
		backup_s3_objects_free(objects_r, *count_r);
	if (err != BACKUP_OK)
		*count_r = 0;
	return err;
}
