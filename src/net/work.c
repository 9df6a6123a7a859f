/* The worker pool: blocking jobs run on threads, completions come back to
 * the loop through an eventfd. Serial queues (struct net_workq) keep one
 * job per mailbox in flight at a time. */
#include "net-private.h"

#include <errno.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

static void
push_runnable(struct net_server *server, struct net_job *job)
{
	job->next = NULL;
	if (server->jobs_tail != NULL)
		server->jobs_tail->next = job;
	else
		server->jobs_head = job;
	server->jobs_tail = job;
	pthread_cond_signal(&server->cond);
}

static void
push_done(struct net_server *server, struct net_job *job)
{
	uint64_t one = 1;
	ssize_t ret;

	job->next = NULL;
	if (server->done_tail != NULL)
		server->done_tail->next = job;
	else
		server->done_head = job;
	server->done_tail = job;
	ret = write(server->done_fd, &one, sizeof(one));
	(void)ret; /* the counter saturating still wakes the loop */
}

static void *
worker_main(void *arg)
{
	struct net_server *server = arg;
	struct net_job *job;

	pthread_mutex_lock(&server->lock);
	for (;;) {
		while (server->jobs_head == NULL && !server->stopping)
			pthread_cond_wait(&server->cond, &server->lock);
		if (server->jobs_head == NULL)
			break;
		job = server->jobs_head;
		server->jobs_head = job->next;
		if (server->jobs_head == NULL)
			server->jobs_tail = NULL;
		pthread_mutex_unlock(&server->lock);
		if (job->work != NULL)
			job->work(job->ctx);
		pthread_mutex_lock(&server->lock);
		if (job->queue != NULL) {
			struct net_workq *q = job->queue;
			struct net_job *next = q->head;

			if (next != NULL) {
				q->head = next->next;
				if (q->head == NULL)
					q->tail = NULL;
				push_runnable(server, next);
			} else {
				q->running = false;
			}
		}
		push_done(server, job);
	}
	pthread_mutex_unlock(&server->lock);
	return NULL;
}

static void
run_done(struct net_server *server)
{
	struct net_job *job, *next;

	pthread_mutex_lock(&server->lock);
	job = server->done_head;
	server->done_head = server->done_tail = NULL;
	pthread_mutex_unlock(&server->lock);
	for (; job != NULL; job = next) {
		struct net_workq *q = job->queue;

		next = job->next;
		if (job->done != NULL)
			job->done(job->ctx);
		if (q != NULL) {
			bool free_q;

			pthread_mutex_lock(&server->lock);
			q->outstanding--;
			free_q = q->destroyed && q->outstanding == 0;
			pthread_mutex_unlock(&server->lock);
			if (free_q)
				free(q);
		}
		free(job);
	}
}

static void
on_done(evutil_socket_t fd, short events, void *arg)
{
	uint64_t count;
	ssize_t ret = read(fd, &count, sizeof(count));

	(void)ret;
	run_done(arg);
}

int
net_work_start(struct net_server *server, unsigned threads,
	       const char **error_r)
{
	pthread_mutex_init(&server->lock, NULL);
	pthread_cond_init(&server->cond, NULL);
	server->done_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (server->done_fd < 0) {
		*error_r = "cannot create an eventfd";
		return -1;
	}
	server->done_ev = event_new(server->base, server->done_fd,
				    EV_READ | EV_PERSIST, on_done, server);
	event_add(server->done_ev, NULL);
	server->threads = xcalloc(threads, sizeof(pthread_t));
	for (unsigned i = 0; i < threads; i++) {
		if (pthread_create(&server->threads[i], NULL, worker_main,
				   server) != 0) {
			*error_r = "cannot start worker threads";
			server->thread_count = i;
			net_work_stop(server);
			return -1;
		}
	}
	server->thread_count = threads;
	return 0;
}

void
net_work_stop(struct net_server *server)
{
	pthread_mutex_lock(&server->lock);
	server->stopping = true;
	pthread_cond_broadcast(&server->cond);
	pthread_mutex_unlock(&server->lock);
	for (unsigned i = 0; i < server->thread_count; i++)
		pthread_join(server->threads[i], NULL);
	free(server->threads);
	server->threads = NULL;
	server->thread_count = 0;
	/* Completions that arrived meanwhile still run: they free what
	 * their jobs own. */
	run_done(server);
	if (server->done_ev != NULL)
		event_free(server->done_ev);
	server->done_ev = NULL;
	if (server->done_fd >= 0)
		close(server->done_fd);
	server->done_fd = -1;
}

void
net_work_free(struct net_server *server)
{
	pthread_mutex_destroy(&server->lock);
	pthread_cond_destroy(&server->cond);
}

struct net_workq *
net_workq_create(struct net_server *server)
{
	struct net_workq *q = xcalloc(1, sizeof(*q));

	q->server = server;
	return q;
}

void
net_workq_destroy(struct net_workq **_q)
{
	struct net_workq *q = *_q;
	bool free_q;

	if (q == NULL)
		return;
	*_q = NULL;
	pthread_mutex_lock(&q->server->lock);
	q->destroyed = true;
	free_q = q->outstanding == 0;
	pthread_mutex_unlock(&q->server->lock);
	if (free_q)
		free(q);
}

void
net_work_submit(struct net_server *server, struct net_workq *q,
		net_work_func *work, net_done_func *done, void *ctx)
{
	struct net_job *job;

	pthread_mutex_lock(&server->lock);
	if (server->thread_count == 0 && server->stopping) {
		/* Shutting down (a completion run by net_work_stop() closing
		 * a mailbox): the workers are gone, so run it here. */
		pthread_mutex_unlock(&server->lock);
		if (work != NULL)
			work(ctx);
		if (done != NULL)
			done(ctx);
		return;
	}
	job = xcalloc(1, sizeof(*job));
	job->queue = q;
	job->work = work;
	job->done = done;
	job->ctx = ctx;
	if (q != NULL) {
		q->outstanding++;
		if (q->running) {
			if (q->tail != NULL)
				q->tail->next = job;
			else
				q->head = job;
			q->tail = job;
			pthread_mutex_unlock(&server->lock);
			return;
		}
		q->running = true;
	}
	push_runnable(server, job);
	pthread_mutex_unlock(&server->lock);
}

void
net_server_call_on_loop(struct net_server *server, net_done_func *done,
			void *ctx)
{
	struct net_job *job = xcalloc(1, sizeof(*job));

	job->done = done;
	job->ctx = ctx;
	pthread_mutex_lock(&server->lock);
	push_done(server, job);
	pthread_mutex_unlock(&server->lock);
}
