/* Private to src/net: the structures behind net.h. */
#ifndef SEALPOST_NET_PRIVATE_H
#define SEALPOST_NET_PRIVATE_H

#include "net.h"

#include <netinet/in.h>
#include <openssl/ssl.h>
#include <pthread.h>

struct bufferevent;
struct evconnlistener;
struct event;

#define NET_IP_BUCKETS 1024

/* Connections per (protocol, IP), for max_per_ip. */
struct net_ip_count {
	struct net_ip_count *next;
	unsigned count;
	char key[];
};

struct net_listener {
	struct net_listener *next;
	struct net_server *server;
	struct evconnlistener *evl;
	bool implicit_tls;
	unsigned max_per_ip;
	char *protocol;
	char *reject_line;
	net_accept_func *accept_cb;
	void *ctx;
};

struct net_job {
	struct net_job *next;
	struct net_workq *queue;
	net_work_func *work;
	net_done_func *done;
	void *ctx;
};

struct net_workq {
	struct net_server *server;
	/* Jobs waiting for the one before them (under server->lock). */
	struct net_job *head, *tail;
	bool running;
	bool destroyed;
	/* Submitted jobs whose done callback has not yet run (loop side,
	 * under server->lock as well). */
	unsigned outstanding;
};

struct net_server {
	struct event_base *base;
	SSL_CTX *tls;
	struct net_listener *listeners;
	struct net_conn *conns; /* doubly linked */
	struct net_conn *reap;  /* closed, waiting to be freed */
	struct event *reap_ev;
	struct net_ip_count *ip_counts[NET_IP_BUCKETS];
	struct net_ratelimit *fail_ip, *fail_alias; /* failed logins */

	/* Worker pool. */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_t *threads;
	unsigned thread_count;
	bool stopping;
	struct net_job *jobs_head, *jobs_tail; /* runnable */
	struct net_job *done_head, *done_tail; /* finished, for the loop */
	int done_fd;			       /* eventfd */
	struct event *done_ev;
};

struct net_conn {
	struct net_conn *prev, *next;
	struct net_conn *reap_next;
	struct net_server *server;
	struct net_listener *listener;
	struct bufferevent *bev;
	int fd;
	const struct net_conn_handlers *handlers;
	void *ctx;
	size_t low_mark, high_mark;
	unsigned idle_timeout;
	bool tls;
	bool loopback;
	bool closing;
	bool reaped;
	bool close_after_flush;
	bool starttls_pending;
	bool above_high;
	bool input_paused;
	char id[9];
	char ip[INET6_ADDRSTRLEN];
};

void net_conn_accept(struct net_listener *listener, int fd,
		     const struct sockaddr *addr, int addrlen);
void net_conn_reap_all(struct net_server *server);
void net_ip_release(struct net_server *server, const char *protocol,
		    const char *ip);

int net_work_start(struct net_server *server, unsigned threads,
		   const char **error_r);
void net_work_stop(struct net_server *server);
void net_work_free(struct net_server *server);

#endif
