/* net: the worker pool's serial queues and completions, the rate limiter,
 * and a real connection on loopback (line reads, close-after-flush). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <sodium.h>

#include <arpa/inet.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/net.h"

#define JOBS 200

struct queue_test {
	struct event_base *base;
	atomic_int inflight;
	atomic_int max_inflight;
	int order[JOBS];
	atomic_int next;
	int done;
	int done_on_wrong_order;
};

struct job {
	struct queue_test *t;
	int n;
};

static void
job_work(void *ctx)
{
	struct job *j = ctx;
	int now = atomic_fetch_add(&j->t->inflight, 1) + 1;

	if (now > atomic_load(&j->t->max_inflight))
		atomic_store(&j->t->max_inflight, now);
	usleep(100);
	j->t->order[atomic_fetch_add(&j->t->next, 1)] = j->n;
	atomic_fetch_sub(&j->t->inflight, 1);
}

static void
job_done(void *ctx)
{
	struct job *j = ctx;

	if (j->n != j->t->done)
		j->t->done_on_wrong_order++;
	if (++j->t->done == JOBS)
		event_base_loopexit(j->t->base, NULL);
}

static void
test_serial_queue(void **state)
{
	static struct job jobs[JOBS];
	struct queue_test t = {0};
	struct net_server *server;
	struct net_workq *q;
	const char *error;

	t.base = event_base_new();
	assert_int_equal(net_server_create(t.base, 4, &server, &error), 0);
	q = net_workq_create(server);
	for (int i = 0; i < JOBS; i++) {
		jobs[i].t = &t;
		jobs[i].n = i;
		net_work_submit(server, q, job_work, job_done, &jobs[i]);
	}
	net_workq_destroy(&q); /* frees once the jobs are done */
	assert_null(q);
	event_base_dispatch(t.base);
	assert_int_equal(t.done, JOBS);
	assert_int_equal(t.max_inflight, 1);
	for (int i = 0; i < JOBS; i++)
		assert_int_equal(t.order[i], i);
	assert_int_equal(t.done_on_wrong_order, 0);
	net_server_destroy(&server);
	assert_null(server);
	event_base_free(t.base);
}

static void
test_ratelimit(void **state)
{
	struct net_ratelimit *rl = net_ratelimit_create(2, 60);

	assert_false(net_ratelimit_exceeded(rl, "1.2.3.4"));
	net_ratelimit_hit(rl, "1.2.3.4");
	assert_false(net_ratelimit_exceeded(rl, "1.2.3.4"));
	net_ratelimit_hit(rl, "1.2.3.4");
	assert_true(net_ratelimit_exceeded(rl, "1.2.3.4"));
	assert_false(net_ratelimit_exceeded(rl, "5.6.7.8"));
	/* The window passes. */
	clock_set_offset(61);
	assert_false(net_ratelimit_exceeded(rl, "1.2.3.4"));
	clock_set_offset(0);
	net_ratelimit_destroy(&rl);
	assert_null(rl);
	rl = net_ratelimit_create(0, 60);
	for (int i = 0; i < 100; i++)
		net_ratelimit_hit(rl, "x");
	assert_false(net_ratelimit_exceeded(rl, "x"));
	net_ratelimit_destroy(&rl);
}

/* An echo-ish protocol: every line is answered "got <line>"; "quit" gets
 * "bye" and close-after-flush. */
struct conn_test {
	struct event_base *base;
	int lines;
	int closed;
};

static void
echo_input(struct net_conn *conn, void *ctx)
{
	struct conn_test *t = ctx;
	char *line;
	size_t len;
	int ret;

	while ((ret = net_conn_read_line(conn, 16, &line, &len)) == 1) {
		t->lines++;
		if (strcmp(line, "quit") == 0) {
			net_conn_write_str(conn, "bye\r\n");
			net_conn_close_after_flush(conn);
			free(line);
			return;
		}
		net_conn_printf(conn, "got %s\r\n", line);
		free(line);
	}
	if (ret < 0) {
		net_conn_write_str(conn, "too long\r\n");
		net_conn_close_after_flush(conn);
	}
}

static void
echo_close(struct net_conn *conn, void *ctx)
{
	struct conn_test *t = ctx;

	t->closed++;
	event_base_loopexit(t->base, NULL);
}

static const struct net_conn_handlers echo_handlers = {
	.on_input = echo_input,
	.on_close = echo_close,
};

static void
echo_accept(struct net_conn *conn, void *ctx)
{
	assert_true(net_conn_is_loopback(conn));
	assert_false(net_conn_is_tls(conn));
	assert_string_equal(net_conn_peer_ip(conn), "127.0.0.1");
	net_conn_set_handlers(conn, &echo_handlers, ctx);
}

struct client_arg {
	int port;
	char reply[256];
	const char *send;
};

static void *
client_main(void *arg)
{
	struct client_arg *c = arg;
	struct sockaddr_in sin = {0};
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	size_t got = 0;
	ssize_t n;

	sin.sin_family = AF_INET;
	sin.sin_port = htons(c->port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0)
		return NULL;
	if (write(fd, c->send, strlen(c->send)) < 0)
		return NULL;
	while ((n = read(fd, c->reply + got, sizeof(c->reply) - 1 - got)) > 0)
		got += (size_t)n;
	c->reply[got] = '\0';
	close(fd);
	return NULL;
}

static int
pick_port(void)
{
	struct sockaddr_in sin = {0};
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	bind(fd, (struct sockaddr *)&sin, sizeof(sin));
	getsockname(fd, (struct sockaddr *)&sin, &len);
	port = ntohs(sin.sin_port);
	close(fd);
	return port;
}

static void
run_client(const char *send, char *reply, size_t size)
{
	struct conn_test t = {0};
	struct net_server *server;
	struct client_arg c = {0};
	char address[64];
	struct net_listen_settings ls = {.protocol = "test"};
	const char *error;
	pthread_t th;

	t.base = event_base_new();
	assert_int_equal(net_server_create(t.base, 2, &server, &error), 0);
	c.port = pick_port();
	c.send = send;
	snprintf(address, sizeof(address), "127.0.0.1:%d", c.port);
	ls.address = address;
	assert_int_equal(net_listen(server, &ls, echo_accept, &t, &error), 1);
	ls.address = "";
	assert_int_equal(net_listen(server, &ls, echo_accept, &t, &error), 0);
	ls.address = "not an address";
	assert_int_equal(net_listen(server, &ls, echo_accept, &t, &error), -1);
	pthread_create(&th, NULL, client_main, &c);
	event_base_dispatch(t.base);
	pthread_join(th, NULL);
	assert_int_equal(t.closed, 1);
	net_server_destroy(&server);
	event_base_free(t.base);
	snprintf(reply, size, "%s", c.reply);
}

static void
test_connection_lines(void **state)
{
	char reply[256];

	/* Pipelined lines, CRLF and bare LF, then close-after-flush. */
	run_client("a\r\nbb\ncc\r\nquit\r\nignored\r\n", reply, sizeof(reply));
	assert_string_equal(reply, "got a\r\ngot bb\r\ngot cc\r\nbye\r\n");
	/* A line over the maximum. */
	run_client("0123456789abcdefXYZ\r\n", reply, sizeof(reply));
	assert_string_equal(reply, "too long\r\n");
}

static void
test_sasl_plain(void **state)
{
	struct net_sasl_plain plain;

	assert_true(sodium_init() >= 0);
	/* "\0user@x\0pass word" */
	assert_int_equal(net_sasl_plain_decode("AHVzZXJAeABwYXNzIHdvcmQ=",
					       &plain),
			 NET_SASL_OK);
	assert_string_equal(plain.authcid, "user@x");
	assert_int_equal(plain.password_len, 9);
	assert_memory_equal(plain.password, "pass word", 9);
	net_sasl_plain_clear(&plain);
	assert_null(plain.raw);
	/* "user@x\0user@x\0pw": authzid equal to the user is fine. */
	assert_int_equal(net_sasl_plain_decode("dXNlckB4AHVzZXJAeABwdw==",
					       &plain),
			 NET_SASL_OK);
	net_sasl_plain_clear(&plain);
	/* "other\0user@x\0pw": acting for someone else is refused. */
	assert_int_equal(net_sasl_plain_decode("b3RoZXIAdXNlckB4AHB3", &plain),
			 NET_SASL_BAD_CREDENTIALS);
	/* "user@x" with no separators, and the empty response. */
	assert_int_equal(net_sasl_plain_decode("dXNlckB4", &plain),
			 NET_SASL_BAD_CREDENTIALS);
	assert_int_equal(net_sasl_plain_decode("=", &plain),
			 NET_SASL_BAD_CREDENTIALS);
	assert_int_equal(net_sasl_plain_decode("not base64!", &plain),
			 NET_SASL_BAD_BASE64);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_serial_queue),
		cmocka_unit_test(test_sasl_plain),
		cmocka_unit_test(test_ratelimit),
		cmocka_unit_test(test_connection_lines),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
