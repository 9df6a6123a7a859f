/* The outbound client against a tiny scripted SMTP server in a thread, with
 * mailauth's table resolver standing in for DNS. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "mailauth/mailauth.h"
#include "smtp/smtp.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int listen_fd;
static unsigned listen_port;
static pthread_t server_thread;
/* What the last session received (commands and data), for assertions. */
static char transcript[65536];
static size_t transcript_len;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static void
record(const char *p, size_t n)
{
	pthread_mutex_lock(&lock);
	if (transcript_len + n < sizeof(transcript)) {
		memcpy(transcript + transcript_len, p, n);
		transcript_len += n;
		transcript[transcript_len] = '\0';
	}
	pthread_mutex_unlock(&lock);
}

static void
say(int fd, const char *s)
{
	if (write(fd, s, strlen(s)) < 0)
		return;
}

/* Reads one line (with its LF) from fd into buf; returns its length. */
static size_t
read_line(int fd, char *buf, size_t size)
{
	size_t n = 0;

	while (n + 1 < size) {
		if (read(fd, buf + n, 1) != 1)
			break;
		if (buf[n++] == '\n')
			break;
	}
	buf[n] = '\0';
	return n;
}

static void
serve_one(int fd)
{
	char line[2048];
	size_t n;

	say(fd, "220 fake ESMTP\r\n");
	while ((n = read_line(fd, line, sizeof(line))) > 0) {
		record(line, n);
		if (strncasecmp(line, "EHLO", 4) == 0) {
			say(fd, "250-fake\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n"
				"250 SIZE 1000000\r\n");
		} else if (strncasecmp(line, "MAIL", 4) == 0) {
			say(fd, "250 2.1.0 ok\r\n");
		} else if (strncasecmp(line, "RCPT", 4) == 0) {
			if (strstr(line, "bad") != NULL)
				say(fd, "550-5.1.1 <bad@x>: the account\r\n"
					"550 5.1.1 does not exist\r\n");
			else if (strstr(line, "later") != NULL)
				say(fd, "451 4.7.1 greylisted, come back "
					"later\r\n");
			else
				say(fd, "250 2.1.5 ok\r\n");
		} else if (strncasecmp(line, "DATA", 4) == 0) {
			say(fd, "354 go\r\n");
			while ((n = read_line(fd, line, sizeof(line))) > 0) {
				record(line, n);
				if (strcmp(line, ".\r\n") == 0)
					break;
			}
			say(fd, "250 2.0.0 queued\r\n");
		} else if (strncasecmp(line, "QUIT", 4) == 0) {
			say(fd, "221 bye\r\n");
			break;
		} else {
			say(fd, "500 what\r\n");
		}
	}
	close(fd);
}

static void *
server_main(void *arg)
{
	for (;;) {
		int fd = accept(listen_fd, NULL, NULL);

		if (fd < 0)
			return NULL;
		serve_one(fd);
	}
}

static int
setup(void **state)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	socklen_t len = sizeof(sin);

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	listen_fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(listen_fd >= 0);
	assert_int_equal(bind(listen_fd, (struct sockaddr *)&sin, sizeof(sin)),
			 0);
	assert_int_equal(listen(listen_fd, 8), 0);
	assert_int_equal(getsockname(listen_fd, (struct sockaddr *)&sin, &len),
			 0);
	listen_port = ntohs(sin.sin_port);
	assert_int_equal(pthread_create(&server_thread, NULL, server_main,
					NULL),
			 0);
	return 0;
}

static int
teardown(void **state)
{
	shutdown(listen_fd, SHUT_RDWR);
	close(listen_fd);
	pthread_join(server_thread, NULL);
	return 0;
}

static void
reset_transcript(void)
{
	pthread_mutex_lock(&lock);
	transcript_len = 0;
	transcript[0] = '\0';
	pthread_mutex_unlock(&lock);
}

static void
test_relayhost_delivery(void **state)
{
	char relay[64];
	struct smtp_client_options o = {.relayhost = relay, .helo = "me.test",
					.timeout_seconds = 10};
	struct smtp_client_result r;
	const char *msg = "Subject: x\r\n\r\n.leading dot\r\nlast";

	snprintf(relay, sizeof(relay), "127.0.0.1:%u", listen_port);
	reset_transcript();
	assert_int_equal(smtp_client_send(&o, "s@a.test", "u@b.test", msg,
					  strlen(msg), true, false, &r),
			 0);
	assert_int_equal(r.code, 250);
	assert_string_equal(r.enhanced, "2.0.0");
	assert_int_equal(r.cls.action, SMTP_REPLY_OK);
	assert_non_null(strstr(transcript, "EHLO me.test\r\n"));
	assert_non_null(strstr(transcript, "MAIL FROM:<s@a.test> SIZE="));
	assert_non_null(strstr(transcript, " BODY=8BITMIME\r\n"));
	assert_non_null(strstr(transcript, "RCPT TO:<u@b.test>\r\n"));
	/* dot-stuffed, final CRLF added */
	assert_non_null(strstr(transcript, "\r\n..leading dot\r\nlast\r\n.\r\n"));

	/* a UTF-8 recipient asks for SMTPUTF8, which the server offers */
	reset_transcript();
	assert_int_equal(smtp_client_send(&o, "", "j\xc3\xb6@b.test", msg,
					  strlen(msg), false, false, &r),
			 0);
	assert_non_null(strstr(transcript, "MAIL FROM:<> SIZE="));
	assert_non_null(strstr(transcript, " SMTPUTF8\r\n"));
}

static void
test_relayhost_rejections(void **state)
{
	char relay[64];
	struct smtp_client_options o = {.relayhost = relay,
					.timeout_seconds = 10};
	struct smtp_client_result r;

	snprintf(relay, sizeof(relay), "127.0.0.1:%u", listen_port);
	assert_int_equal(smtp_client_send(&o, "s@a.test", "bad@b.test", "x",
					  1, false, false, &r),
			 -1);
	assert_int_equal(r.code, 550);
	assert_string_equal(r.enhanced, "5.1.1");
	assert_string_equal(r.text, "<bad@x>: the account does not exist");
	assert_int_equal(r.cls.action, SMTP_REPLY_REJECT);
	assert_int_equal(r.cls.category, SMTP_CAT_RECIPIENT);

	assert_int_equal(smtp_client_send(&o, "s@a.test", "later@b.test", "x",
					  1, false, false, &r),
			 -1);
	assert_int_equal(r.code, 451);
	assert_int_equal(r.cls.action, SMTP_REPLY_DEFER);
	assert_int_equal(r.cls.category, SMTP_CAT_GREYLIST);

	/* too big for the advertised SIZE: refused before MAIL */
	{
		size_t big = 1000001;
		char *msg = malloc(big);

		memset(msg, 'a', big);
		assert_int_equal(smtp_client_send(&o, "s@a.test", "u@b.test",
						  msg, big, false, false, &r),
				 -1);
		assert_int_equal(r.code, 552);
		assert_int_equal(r.cls.category, SMTP_CAT_SIZE);
		free(msg);
	}

	/* nobody listening: a network deferral */
	snprintf(relay, sizeof(relay), "127.0.0.1:1");
	assert_int_equal(smtp_client_send(&o, "s@a.test", "u@b.test", "x", 1,
					  false, false, &r),
			 -1);
	assert_int_equal(r.code, 0);
	assert_int_equal(r.cls.action, SMTP_REPLY_DEFER);
	assert_int_equal(r.cls.category, SMTP_CAT_NETWORK);
	snprintf(relay, sizeof(relay), "no-port");
	assert_int_equal(smtp_client_send(&o, "s@a.test", "u@b.test", "x", 1,
					  false, false, &r),
			 -1);
}

static void
test_mx_routing(void **state)
{
	struct mailauth_dns *dns = mailauth_dns_table_create();
	struct smtp_client_options o = {.dns = dns, .port = listen_port,
					.timeout_seconds = 10};
	struct smtp_client_result r;
	const char *error = NULL;

	if (mailauth_dns_table_add(dns,
				   "mx.test MX 20 dead.mx.test\n"
				   "mx.test MX 10 live.mx.test\n"
				   "live.mx.test A 127.0.0.1\n"
				   "dead.mx.test A 127.0.0.2\n"
				   "implicit.test A 127.0.0.1\n"
				   "null.test MX 0 .\n"
				   "temp.test TEMPFAIL\n"
				   "noaddr.test MX 10 nowhere.test\n",
				   &error) < 0)
		fail_msg("table: %s", error);

	/* the preferred MX */
	reset_transcript();
	assert_int_equal(smtp_client_send(&o, "s@a.test", "u@mx.test", "x", 1,
					  false, false, &r),
			 0);
	assert_non_null(strstr(transcript, "RCPT TO:<u@mx.test>"));
	/* no MX record: the domain's own address (RFC 5321 5.1) */
	assert_int_equal(smtp_client_send(&o, "s@a.test", "u@implicit.test",
					  "x", 1, false, false, &r),
			 0);
	/* null MX (RFC 7505): permanent */
	assert_int_equal(smtp_client_send(&o, "s@a.test", "u@null.test", "x",
					  1, false, false, &r),
			 -1);
	assert_int_equal(r.code, 556);
	assert_int_equal(r.cls.action, SMTP_REPLY_REJECT);
	/* no such domain: permanent */
	assert_int_equal(smtp_client_send(&o, "s@a.test", "u@unknown.test",
					  "x", 1, false, false, &r),
			 -1);
	assert_int_equal(r.cls.action, SMTP_REPLY_REJECT);
	assert_int_equal(r.cls.category, SMTP_CAT_RECIPIENT);
	/* DNS trouble: try again later */
	assert_int_equal(smtp_client_send(&o, "s@a.test", "u@temp.test", "x",
					  1, false, false, &r),
			 -1);
	assert_int_equal(r.cls.action, SMTP_REPLY_DEFER);
	/* an MX without addresses */
	assert_int_equal(smtp_client_send(&o, "s@a.test", "u@noaddr.test", "x",
					  1, false, false, &r),
			 -1);
	assert_int_equal(r.cls.action, SMTP_REPLY_REJECT);
	mailauth_dns_destroy(&dns);
}

/* One envelope, several recipients: each RCPT answer is its recipient's,
 * the answer to DATA is every accepted one's. */
static void
test_batch(void **state)
{
	static const char *const rcpts[] = {"u1@b.test", "bad@b.test",
					    "later@b.test", "u2@b.test"};
	char relay[64];
	struct smtp_client_options o = {.relayhost = relay,
					.timeout_seconds = 10};
	struct smtp_client_result r[4];
	const char *msg = "Subject: x\r\n\r\nbody\r\n", *p;
	int rcpt_lines = 0;

	snprintf(relay, sizeof(relay), "127.0.0.1:%u", listen_port);
	reset_transcript();
	assert_int_equal(smtp_client_send_batch(&o, "s@a.test", rcpts, 4, msg,
						strlen(msg), false, false, r),
			 2);
	assert_int_equal(r[0].code, 250);
	assert_string_equal(r[0].enhanced, "2.0.0");
	assert_int_equal(r[0].cls.action, SMTP_REPLY_OK);
	assert_int_equal(r[1].code, 550);
	assert_string_equal(r[1].enhanced, "5.1.1");
	assert_int_equal(r[1].cls.action, SMTP_REPLY_REJECT);
	assert_int_equal(r[2].code, 451);
	assert_int_equal(r[2].cls.action, SMTP_REPLY_DEFER);
	assert_int_equal(r[3].code, 250);
	assert_int_equal(r[3].cls.action, SMTP_REPLY_OK);
	for (size_t i = 0; i < 4; i++)
		assert_string_equal(r[i].remote, "127.0.0.1");
	for (p = transcript; (p = strstr(p, "RCPT TO:")) != NULL; p++)
		rcpt_lines++;
	assert_int_equal(rcpt_lines, 4);
	assert_non_null(strstr(transcript, "MAIL FROM:<s@a.test>"));
	/* One transaction. */
	p = strstr(transcript, "MAIL FROM:");
	assert_null(strstr(p + 1, "MAIL FROM:"));
	p = strstr(transcript, "DATA\r\n");
	assert_non_null(p);
	assert_null(strstr(p + 1, "DATA\r\n"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_relayhost_delivery),
		cmocka_unit_test(test_relayhost_rejections),
		cmocka_unit_test(test_mx_routing),
		cmocka_unit_test(test_batch),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
