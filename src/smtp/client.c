/*
 * The outbound SMTP client: one message to one recipient, blocking.
 *
 * Blocking sockets with SO_RCVTIMEO/SO_SNDTIMEO (and a polled connect) keep
 * the dialogue linear, and OpenSSL runs straight on the socket for
 * STARTTLS. Callers run it on worker threads (see smtp.h).
 *
 * Routing (RFC 5321 5.1): with outbound_relayhost every message goes to
 * that host. Otherwise the recipient domain's MX records, by preference
 * (equal preferences in random order); no MX record (NODATA): the domain's
 * own A/AAAA ("implicit MX"); a single MX "." is a null MX (RFC 7505): the
 * domain takes no mail, a permanent failure. Each exchange's AAAA then A
 * addresses are tried in turn while the failure is one of connection or
 * greeting; once a server has answered MAIL, its answer is final.
 *
 * TLS is opportunistic (RFC 7435): STARTTLS whenever offered, certificates
 * not verified (there is no policy yet saying whom to trust). A failed
 * handshake is a temporary failure of category tls rather than a silent
 * fall back to plaintext on the same connection.
 */
#include "smtp-private.h"

#include "mailauth/mailauth.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sodium.h>
#include <stdarg.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define CLIENT_MAX_ADDRESSES 8
#define CLIENT_LINE_MAX 2048

struct client_conn {
	int fd;
	SSL *ssl;
	char buf[4096];
	size_t len, pos;
	/* What the server offered in EHLO. */
	bool esmtp, starttls, eightbit, smtputf8, pipelining;
	uint64_t size_limit;
};

static pthread_once_t client_tls_once = PTHREAD_ONCE_INIT;
static SSL_CTX *client_tls_ctx;

static void
client_tls_init(void)
{
	client_tls_ctx = SSL_CTX_new(TLS_client_method());
	if (client_tls_ctx == NULL)
		return;
	SSL_CTX_set_min_proto_version(client_tls_ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(client_tls_ctx, SSL_VERIFY_NONE, NULL);
}

static void
result_set(struct smtp_client_result *r, int code, const char *enhanced,
	   const char *text)
{
	r->code = code;
	str_copy(r->enhanced, enhanced != NULL ? enhanced : "",
		 sizeof(r->enhanced));
	str_copy(r->text, text != NULL ? text : "", sizeof(r->text));
	r->cls = smtp_reply_classify(code, r->enhanced[0] != '\0' ? r->enhanced
								   : NULL,
				     r->text);
}

/* A failure before or instead of an answer (code 0, or a code we pick). */
static void
result_local(struct smtp_client_result *r, int code, const char *enhanced,
	     const char *fmt, ...) SP_PRINTF(4, 5);

static void
result_local(struct smtp_client_result *r, int code, const char *enhanced,
	     const char *fmt, ...)
{
	char text[256];
	va_list args;

	va_start(args, fmt);
	vsnprintf(text, sizeof(text), fmt, args);
	va_end(args);
	result_set(r, code, enhanced, text);
}

/* ---- I/O ----------------------------------------------------------------- */

static int
conn_write(struct client_conn *c, const void *data, size_t len)
{
	const char *p = data;

	while (len > 0) {
		ssize_t n;

		if (c->ssl != NULL) {
			int ret = SSL_write(c->ssl, p, (int)(len > INT32_MAX
								 ? INT32_MAX
								 : len));

			n = ret > 0 ? ret : -1;
		} else {
			n = send(c->fd, p, len, MSG_NOSIGNAL);
			if (n < 0 && errno == EINTR)
				continue;
		}
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int
conn_fill(struct client_conn *c)
{
	ssize_t n;

	if (c->pos > 0) {
		memmove(c->buf, c->buf + c->pos, c->len - c->pos);
		c->len -= c->pos;
		c->pos = 0;
	}
	if (c->len == sizeof(c->buf))
		return -1;
	do {
		if (c->ssl != NULL) {
			int ret = SSL_read(c->ssl, c->buf + c->len,
					   (int)(sizeof(c->buf) - c->len));

			n = ret > 0 ? ret : -1;
		} else {
			n = recv(c->fd, c->buf + c->len,
				 sizeof(c->buf) - c->len, 0);
		}
	} while (n < 0 && errno == EINTR && c->ssl == NULL);
	if (n <= 0)
		return -1;
	c->len += (size_t)n;
	return 0;
}

/* One line without CR LF into line (size CLIENT_LINE_MAX). */
static int
conn_read_line(struct client_conn *c, char *line)
{
	for (;;) {
		char *lf = memchr(c->buf + c->pos, '\n', c->len - c->pos);

		if (lf != NULL) {
			size_t n = (size_t)(lf - (c->buf + c->pos));

			if (n > 0 && c->buf[c->pos + n - 1] == '\r')
				n--;
			if (n >= CLIENT_LINE_MAX)
				n = CLIENT_LINE_MAX - 1;
			memcpy(line, c->buf + c->pos, n);
			line[n] = '\0';
			c->pos = (size_t)(lf - c->buf) + 1;
			return 0;
		}
		if (conn_fill(c) < 0)
			return -1;
	}
}

/* Reads a whole (multi-line) reply. Fills code, enhanced (from the first
 * line) and the text lines joined by a space; with `ehlo` set, records the
 * extensions. Returns the code, or -1 when the connection failed or the
 * reply was not SMTP. */
static int
conn_read_reply(struct client_conn *c, struct smtp_client_result *r,
		bool ehlo)
{
	char line[CLIENT_LINE_MAX];
	char enhanced[16] = "";
	struct sp_buf text;
	int code = -1;
	bool first = true;
	unsigned lineno = 0;

	sp_buf_init(&text);
	for (;;) {
		const char *t;
		int this_code;

		if (conn_read_line(c, line) < 0 || strlen(line) < 3 ||
		    sscanf(line, "%3d", &this_code) != 1 || this_code < 200 ||
		    this_code > 599 || (line[3] != '\0' && line[3] != ' ' &&
					line[3] != '-')) {
			code = -1;
			break;
		}
		t = line[3] == '\0' ? "" : line + 4;
		if (first) {
			int a, b, d, n = 0;

			if (sscanf(t, "%1d.%3d.%3d%n", &a, &b, &d, &n) == 3 &&
			    (t[n] == ' ' || t[n] == '\0') &&
			    a == this_code / 100) {
				snprintf(enhanced, sizeof(enhanced), "%d.%d.%d",
					 a, b, d);
				t += n;
				while (*t == ' ')
					t++;
			}
			first = false;
		} else if (enhanced[0] != '\0' &&
			   strncmp(t, enhanced, strlen(enhanced)) == 0) {
			t += strlen(enhanced);
			while (*t == ' ')
				t++;
		}
		if (ehlo && lineno++ > 0) {
			/* Lines after the first name extensions. */
			if (strncasecmp(t, "STARTTLS", 8) == 0 &&
			    (t[8] == '\0' || t[8] == ' '))
				c->starttls = true;
			else if (strncasecmp(t, "8BITMIME", 8) == 0)
				c->eightbit = true;
			else if (strncasecmp(t, "SMTPUTF8", 8) == 0)
				c->smtputf8 = true;
			else if (strncasecmp(t, "PIPELINING", 10) == 0)
				c->pipelining = true;
			else if (strncasecmp(t, "SIZE", 4) == 0 &&
				 (t[4] == ' ' || t[4] == '\0'))
				c->size_limit = strtoull(t + 4, NULL, 10);
		}
		if (text.len > 0)
			sp_buf_append(&text, " ", 1);
		sp_buf_append_str(&text, t);
		code = this_code;
		if (line[3] != '-')
			break;
	}
	if (code > 0)
		result_set(r, code, enhanced,
			   text.data != NULL ? text.data : "");
	sp_buf_deinit(&text);
	return code;
}

static int
conn_command(struct client_conn *c, struct smtp_client_result *r,
	     bool ehlo, const char *fmt, ...) SP_PRINTF(4, 5);

static int
conn_command(struct client_conn *c, struct smtp_client_result *r, bool ehlo,
	     const char *fmt, ...)
{
	char line[1100];
	va_list args;
	int n;

	va_start(args, fmt);
	n = vsnprintf(line, sizeof(line) - 2, fmt, args);
	va_end(args);
	if (n < 0 || (size_t)n >= sizeof(line) - 2)
		return -1;
	memcpy(line + n, "\r\n", 2);
	if (conn_write(c, line, (size_t)n + 2) < 0)
		return -1;
	return conn_read_reply(c, r, ehlo);
}

static void
conn_close(struct client_conn *c)
{
	if (c->ssl != NULL) {
		SSL_shutdown(c->ssl);
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

/* Connects with a timeout; then sets the same timeout on every read and
 * write. */
static int
connect_addr(const struct sockaddr *sa, socklen_t salen, unsigned timeout)
{
	struct timeval tv = {.tv_sec = timeout};
	struct pollfd pfd;
	int fd, flags, err = 0;
	socklen_t errlen = sizeof(err);

	fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	flags = fcntl(fd, F_GETFL);
	fcntl(fd, F_SETFL, flags | O_NONBLOCK);
	if (connect(fd, sa, salen) < 0) {
		if (errno != EINPROGRESS)
			goto fail;
		pfd.fd = fd;
		pfd.events = POLLOUT;
		if (poll(&pfd, 1, (int)timeout * 1000) != 1)
			goto fail;
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &errlen) < 0 ||
		    err != 0) {
			errno = err;
			goto fail;
		}
	}
	fcntl(fd, F_SETFL, flags);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	return fd;
fail:
	close(fd);
	return -1;
}

/* ---- the dialogue -------------------------------------------------------- */

enum attempt_result {
	ATTEMPT_DONE,	   /* final answer in the result */
	ATTEMPT_NEXT_HOST, /* connection-level failure: try another address */
};

/* The same answer for every recipient (a failure before RCPT). */
static void
results_fill(struct smtp_client_result *results, size_t count,
	     const struct smtp_client_result *r)
{
	for (size_t i = 0; i < count; i++)
		results[i] = *r;
}

static enum attempt_result
attempt(const struct smtp_client_options *o, int fd, const char *host,
	const char *mail_from, const char *const *rcpts, size_t count,
	const void *msg, size_t len, bool eightbit, bool smtputf8,
	struct smtp_client_result *results)
{
	struct client_conn c = {.fd = fd};
	struct smtp_client_result res, *r = &res;
	struct sp_buf data;
	const char *helo = o->helo != NULL && o->helo[0] != '\0' ? o->helo
							       : "localhost";
	enum attempt_result ret = ATTEMPT_DONE;
	bool *accepted = xcalloc(count, sizeof(*accepted));
	size_t naccepted = 0;
	int code;
	bool utf8_needed = smtputf8 || !str_is_ascii(mail_from);

	memset(&res, 0, sizeof(res));
	for (size_t i = 0; i < count; i++)
		if (!str_is_ascii(rcpts[i]))
			utf8_needed = true;
	code = conn_read_reply(&c, r, false);
	if (code != 220) {
		if (code < 0)
			result_local(r, 0, NULL, "no greeting");
		ret = ATTEMPT_NEXT_HOST;
		goto session_failed;
	}
	code = conn_command(&c, r, true, "EHLO %s", helo);
	if (code >= 500 && code < 600) {
		code = conn_command(&c, r, false, "HELO %s", helo);
	} else {
		c.esmtp = code == 250;
	}
	if (code != 250) {
		if (code < 0)
			result_local(r, 0, NULL,
				     "connection lost after greeting");
		ret = ATTEMPT_NEXT_HOST;
		goto session_failed;
	}
	if (c.starttls) {
		pthread_once(&client_tls_once, client_tls_init);
		code = conn_command(&c, r, false, "STARTTLS");
		if (code == 220 && client_tls_ctx != NULL) {
			c.ssl = SSL_new(client_tls_ctx);
			SSL_set_fd(c.ssl, c.fd);
			if (c.pos != c.len || SSL_connect(c.ssl) != 1) {
				result_local(r, 0, NULL,
					     "TLS handshake failed");
				ERR_clear_error();
				goto session_failed;
			}
			r->tls = true;
			c.starttls = c.eightbit = c.smtputf8 = false;
			c.size_limit = 0;
			code = conn_command(&c, r, true, "EHLO %s", helo);
			if (code != 250) {
				if (code < 0)
					result_local(r, 0, NULL,
						     "connection lost after "
						     "TLS");
				goto session_failed;
			}
		} else if (code < 0) {
			result_local(r, 0, NULL, "connection lost at STARTTLS");
			ret = ATTEMPT_NEXT_HOST;
			goto session_failed;
		}
		/* A refused STARTTLS: go on in plaintext (opportunistic). */
	}
	if (utf8_needed && !c.smtputf8) {
		conn_command(&c, r, false, "QUIT");
		result_local(r, 553, "5.6.7",
			     "the destination does not support SMTPUTF8");
		goto session_failed;
	}
	if (c.size_limit != 0 && len > c.size_limit) {
		conn_command(&c, r, false, "QUIT");
		result_local(r, 552, "5.3.4",
			     "message size exceeds the destination's limit");
		goto session_failed;
	}
	{
		char size_param[32] = "";

		if (c.esmtp && c.size_limit != 0)
			snprintf(size_param, sizeof(size_param), " SIZE=%zu",
				 len);
		code = conn_command(&c, r, false, "MAIL FROM:<%s>%s%s%s",
				    mail_from, size_param,
				    eightbit && c.eightbit ? " BODY=8BITMIME"
							   : "",
				    utf8_needed ? " SMTPUTF8" : "");
	}
	if (code != 250) {
		if (code < 0)
			result_local(r, 0, NULL, "connection lost during the "
						 "transaction");
		else
			conn_command(&c, &(struct smtp_client_result){0},
				     false, "QUIT");
		goto session_failed;
	}
	/* Each recipient gets its own answer to RCPT. */
	for (size_t i = 0; i < count; i++) {
		results[i].tls = r->tls;
		code = conn_command(&c, &results[i], false, "RCPT TO:<%s>",
				    rcpts[i]);
		if (code < 0) {
			for (size_t j = i; j < count; j++)
				result_local(&results[j], 0, NULL,
					     "connection lost during the "
					     "transaction");
			for (size_t j = 0; j < i; j++)
				if (accepted[j])
					result_local(&results[j], 0, NULL,
						     "connection lost during "
						     "the transaction");
			conn_close(&c);
			free(accepted);
			return ATTEMPT_DONE;
		}
		if (code == 250 || code == 251) {
			accepted[i] = true;
			naccepted++;
		}
	}
	if (naccepted == 0) {
		conn_command(&c, &(struct smtp_client_result){0}, false,
			     "QUIT");
		conn_close(&c);
		free(accepted);
		return ATTEMPT_DONE;
	}
	/* The answer to DATA (or to the end of data) is every accepted
	 * recipient's. */
	code = conn_command(&c, r, false, "DATA");
	if (code == 354) {
		sp_buf_init(&data);
		smtp_data_encode(msg, len, &data);
		sp_buf_append(&data, ".\r\n", 3);
		if (conn_write(&c, data.data, data.len) < 0)
			code = -1;
		else
			code = conn_read_reply(&c, r, false);
		sodium_memzero(data.data, data.cap);
		sp_buf_deinit(&data);
	}
	if (code < 0) {
		/* No final answer: the message may or may not have arrived,
		 * and only a retry later is safe. */
		result_local(r, 0, NULL, "connection lost during the "
					 "transaction");
	} else {
		conn_command(&c, &(struct smtp_client_result){0}, false,
			     "QUIT");
	}
	for (size_t i = 0; i < count; i++)
		if (accepted[i])
			results[i] = *r;
	conn_close(&c);
	free(accepted);
	return ATTEMPT_DONE;

session_failed:
	results_fill(results, count, r);
	conn_close(&c);
	free(accepted);
	return ret;
}

/* ---- routing ------------------------------------------------------------- */

struct client_addr {
	struct sockaddr_storage ss;
	socklen_t len;
	char host[256]; /* the name it came from, for results' remote */
};

static size_t
addrs_from_getaddrinfo(const char *host, unsigned port,
		       struct client_addr *out, size_t max)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_NUMERICSERV};
	struct addrinfo *res, *ai;
	char portstr[8];
	size_t n = 0;

	snprintf(portstr, sizeof(portstr), "%u", port);
	if (getaddrinfo(host, portstr, &hints, &res) != 0)
		return 0;
	for (ai = res; ai != NULL && n < max; ai = ai->ai_next) {
		memcpy(&out[n].ss, ai->ai_addr, ai->ai_addrlen);
		out[n].len = ai->ai_addrlen;
		str_copy(out[n].host, host, sizeof(out[n].host));
		n++;
	}
	freeaddrinfo(res);
	return n;
}

static void
addr_from_ip(const struct mailauth_ip *ip, unsigned port,
	     struct client_addr *out)
{
	memset(out, 0, sizeof(*out));
	if (ip->family == AF_INET6) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&out->ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		memcpy(&sin6->sin6_addr, ip->addr, 16);
		out->len = sizeof(*sin6);
	} else {
		struct sockaddr_in *sin = (struct sockaddr_in *)&out->ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		memcpy(&sin->sin_addr, ip->addr, 4);
		out->len = sizeof(*sin);
	}
}

/* AAAA then A of one host, appended to out. Returns how many were added;
 * *tempfail_r is set when a look-up failed temporarily. */
static size_t
addrs_of_host(struct mailauth_dns *dns, const char *host, unsigned port,
	      struct client_addr *out, size_t max, bool *tempfail_r)
{
	static const int families[] = {AF_INET6, AF_INET};
	size_t n = 0;

	for (size_t f = 0; f < SP_N_ELEMENTS(families) && n < max; f++) {
		struct mailauth_dns_reply reply;
		enum mailauth_dns_status st;

		memset(&reply, 0, sizeof(reply));
		st = dns->v->addr(dns->context, host, families[f], &reply);
		if (st == MAILAUTH_DNS_TEMPFAIL)
			*tempfail_r = true;
		if (st == MAILAUTH_DNS_OK)
			for (size_t i = 0; i < reply.count && n < max; i++) {
				addr_from_ip(&reply.ips[i], port, &out[n]);
				str_copy(out[n].host, host,
					 sizeof(out[n].host));
				n++;
			}
		mailauth_dns_reply_clear(&reply);
	}
	return n;
}

/* Splits "host:port" / "[v6]:port". */
static int
parse_hostport(const char *s, char *host, size_t host_size, unsigned *port_r)
{
	const char *colon;
	unsigned long port;
	char *end;

	if (s[0] == '[') {
		const char *close = strchr(s, ']');

		if (close == NULL || close[1] != ':')
			return -1;
		if ((size_t)(close - s - 1) >= host_size)
			return -1;
		memcpy(host, s + 1, (size_t)(close - s - 1));
		host[close - s - 1] = '\0';
		colon = close + 1;
	} else {
		colon = strrchr(s, ':');
		if (colon == NULL || (size_t)(colon - s) >= host_size)
			return -1;
		memcpy(host, s, (size_t)(colon - s));
		host[colon - s] = '\0';
	}
	port = strtoul(colon + 1, &end, 10);
	if (*end != '\0' || port == 0 || port > 65535 || host[0] == '\0')
		return -1;
	*port_r = (unsigned)port;
	return 0;
}

static int
mx_compare(const void *a, const void *b)
{
	const unsigned *x = a, *y = b;

	return x[0] < y[0] ? -1 : x[0] > y[0];
}

/* Fills out with addresses for the recipient's domain. Returns the count,
 * or 0 with *result set (permanent or temporary failure). */
static size_t
route_domain(const struct smtp_client_options *o, const char *domain,
	     struct client_addr *out, size_t max,
	     struct smtp_client_result *r)
{
	struct mailauth_dns *dns = o->dns;
	struct mailauth_dns_reply mx;
	enum mailauth_dns_status st;
	unsigned port = o->port != 0 ? o->port : 25;
	bool tempfail = false;
	size_t n = 0;

	if (dns == NULL) {
		result_local(r, 0, NULL, "no resolver configured");
		return 0;
	}
	memset(&mx, 0, sizeof(mx));
	st = dns->v->mx(dns->context, domain, &mx);
	if (st == MAILAUTH_DNS_TEMPFAIL) {
		result_local(r, 451, "4.4.3", "MX look-up failed temporarily");
		return 0;
	}
	if (st == MAILAUTH_DNS_NXDOMAIN) {
		result_local(r, 550, "5.1.2", "the recipient domain does not "
					      "exist");
		return 0;
	}
	if (st == MAILAUTH_DNS_OK) {
		/* Sort by preference, ties in random order:
		 * order[i] = {pref, rnd, i}. */
		unsigned (*order)[3] = xcalloc(mx.count, sizeof(*order));

		if (mx.count == 1 && mx.mx_prefs[0] == 0 &&
		    (mx.strings[0][0] == '\0' ||
		     strcmp(mx.strings[0], ".") == 0)) {
			free(order);
			mailauth_dns_reply_clear(&mx);
			result_local(r, 556, "5.1.10", "the recipient domain "
						       "accepts no mail (null "
						       "MX)");
			return 0;
		}
		for (size_t i = 0; i < mx.count; i++) {
			unsigned rnd;

			random_bytes(&rnd, sizeof(rnd));
			order[i][0] = mx.mx_prefs[i];
			order[i][1] = rnd;
			order[i][2] = (unsigned)i;
		}
		qsort(order, mx.count, sizeof(*order), mx_compare);
		for (size_t i = 0; i < mx.count && n < max; i++)
			n += addrs_of_host(dns, mx.strings[order[i][2]], port,
					   out + n, max - n, &tempfail);
		free(order);
		mailauth_dns_reply_clear(&mx);
	} else {
		mailauth_dns_reply_clear(&mx);
		/* NODATA: implicit MX (RFC 5321 5.1). */
		n = addrs_of_host(dns, domain, port, out, max, &tempfail);
	}
	if (n == 0) {
		if (tempfail)
			result_local(r, 451, "4.4.3", "address look-up failed "
						      "temporarily");
		else
			result_local(r, 550, "5.1.2", "the recipient domain "
						      "has no mail server "
						      "address");
	}
	return n;
}

int
smtp_client_send_batch(const struct smtp_client_options *options,
		       const char *mail_from, const char *const *rcpts,
		       size_t rcpt_count, const void *msg, size_t len,
		       bool eightbit, bool smtputf8,
		       struct smtp_client_result *results)
{
	struct client_addr addrs[CLIENT_MAX_ADDRESSES];
	struct smtp_client_result r;
	unsigned timeout = options->timeout_seconds != 0
				   ? options->timeout_seconds
				   : 300;
	size_t n, ok = 0;

	memset(&r, 0, sizeof(r));
	if (rcpt_count == 0)
		return 0;
	if (options->relayhost != NULL && options->relayhost[0] != '\0') {
		char host[256];
		unsigned port;

		if (parse_hostport(options->relayhost, host, sizeof(host),
				   &port) < 0) {
			result_local(&r, 0, NULL,
				     "outbound_relayhost is not host:port");
			results_fill(results, rcpt_count, &r);
			return 0;
		}
		n = addrs_from_getaddrinfo(host, port, addrs,
					   CLIENT_MAX_ADDRESSES);
		if (n == 0) {
			result_local(&r, 0, NULL,
				     "cannot resolve the relay host");
			results_fill(results, rcpt_count, &r);
			return 0;
		}
	} else {
		/* One destination domain: the first recipient's. */
		const char *at = strrchr(rcpts[0], '@');

		if (at == NULL || at[1] == '\0') {
			result_local(&r, 553, "5.1.3",
				     "bad recipient address");
			results_fill(results, rcpt_count, &r);
			return 0;
		}
		n = route_domain(options, at + 1, addrs, CLIENT_MAX_ADDRESSES,
				 &r);
		if (n == 0) {
			results_fill(results, rcpt_count, &r);
			return 0;
		}
	}
	result_local(&r, 0, NULL, "no mail server could be reached");
	results_fill(results, rcpt_count, &r);
	for (size_t i = 0; i < n; i++) {
		int fd = connect_addr((struct sockaddr *)&addrs[i].ss,
				      addrs[i].len, timeout);
		enum attempt_result ar;

		if (fd < 0) {
			result_local(&r, 0, NULL, "connect: %s",
				     strerror(errno));
			results_fill(results, rcpt_count, &r);
			continue;
		}
		for (size_t j = 0; j < rcpt_count; j++)
			memset(&results[j], 0, sizeof(results[j]));
		ar = attempt(options, fd, addrs[i].host, mail_from, rcpts,
			     rcpt_count, msg, len, eightbit, smtputf8,
			     results);
		for (size_t j = 0; j < rcpt_count; j++)
			str_copy(results[j].remote, addrs[i].host,
				 sizeof(results[j].remote));
		if (ar == ATTEMPT_DONE)
			break;
	}
	for (size_t j = 0; j < rcpt_count; j++)
		if (results[j].cls.action == SMTP_REPLY_OK)
			ok++;
	return (int)ok;
}

int
smtp_client_send(const struct smtp_client_options *options,
		 const char *mail_from, const char *rcpt, const void *msg,
		 size_t len, bool eightbit, bool smtputf8,
		 struct smtp_client_result *result_r)
{
	const char *rcpts[1] = {rcpt};

	memset(result_r, 0, sizeof(*result_r));
	return smtp_client_send_batch(options, mail_from, rcpts, 1, msg, len,
				      eightbit, smtputf8, result_r) == 1
		       ? 0
		       : -1;
}
