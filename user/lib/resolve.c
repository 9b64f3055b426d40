// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * resolve.c - getaddrinfo on a worker thread, answers through an eventfd.
 * See resolve.h for the contract and the threading rule.
 *
 * A request is in exactly one place: the `todo` queue (QUEUED), the
 * worker's hands (RUNNING), or the `done` queue (DONE) until the loop
 * handler takes it. The queues and `state` are under `mu`; `cancelled` is
 * written and read by the loop thread only (the worker never looks at it:
 * it finishes what it took, and the loop side drops it).
 */
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/eventfd.h>
#include "loop.h"
#include "resolve.h"

enum req_state { REQ_QUEUED, REQ_RUNNING, REQ_DONE };

struct resolve_req {
	struct resolve_req *next;
	enum req_state state;           /* under mu */
	int cancelled;                  /* loop thread only */
	resolve_cb cb;
	void *arg;
	char host[RESOLVE_HOST_LEN];
	unsigned int port;
	/* the answer, written by the worker while RUNNING */
	int err;
	char msg[ERRBUF_LEN];
	size_t n;
	struct sockaddr_storage addrs[RESOLVE_MAX_ADDRS];
	socklen_t lens[RESOLVE_MAX_ADDRS];
};

struct resolver {
	struct loop *l;
	struct loop_io io;              /* the eventfd */
	int efd;
	pthread_t thread;
	int thread_started;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int stop;                       /* under mu */
	struct resolve_req *todo, *todo_tail, *done, *done_tail;  /* under mu */
	unsigned int pending, max_pending;  /* loop thread */
};

static void push(struct resolve_req **head, struct resolve_req **tail, struct resolve_req *q)
{
	q->next = NULL;
	if (*tail)
		(*tail)->next = q;
	else
		*head = q;
	*tail = q;
}

/* --- the worker's side ------------------------------------------------------- */

/* RFC 6761 6.4: .invalid names never exist; answer without a query. */
static int is_invalid_tld(const char *h)
{
	size_t n = strlen(h);

	if (n && h[n - 1] == '.')
		n--;
	if (n == 7 && !strncasecmp(h, "invalid", 7))
		return 1;
	return n > 8 && !strncasecmp(h + n - 8, ".invalid", 8);
}

static void lookup(struct resolve_req *q)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				  .ai_protocol = IPPROTO_TCP };
	struct addrinfo *res = NULL, *ai;
	int rc;

	q->n = 0;
	q->err = 0;
	q->msg[0] = 0;
	if (is_invalid_tld(q->host)) {
		q->err = -ENOENT;
		snprintf(q->msg, sizeof(q->msg), "resolve %s: no such name (.invalid names never "
			 "exist, RFC 6761)", q->host);
		return;
	}
	rc = getaddrinfo(q->host, NULL, &hints, &res);
	if (rc) {
		const char *hint = "";

		switch (rc) {
		case EAI_NONAME:
		case EAI_NODATA:
		case EAI_ADDRFAMILY:
			q->err = -ENOENT;
			hint = " (check the backend's name)";
			break;
		case EAI_AGAIN:
			q->err = -EAGAIN;
			hint = " (the name server did not answer: check /etc/resolv.conf)";
			break;
		case EAI_MEMORY:
			q->err = -ENOMEM;
			break;
		case EAI_SYSTEM:
			q->err = errno ? -errno : -EIO;
			break;
		default:
			q->err = -EIO;
		}
		snprintf(q->msg, sizeof(q->msg), "resolve %s: %s%s", q->host,
			 rc == EAI_SYSTEM ? strerror(-q->err) : gai_strerror(rc), hint);
		return;
	}
	for (ai = res; ai && q->n < RESOLVE_MAX_ADDRS; ai = ai->ai_next) {
		struct sockaddr_storage *ss = &q->addrs[q->n];
		size_t i;
		int dup = 0;

		if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) ||
		    ai->ai_addrlen > sizeof(*ss))
			continue;
		memset(ss, 0, sizeof(*ss));
		memcpy(ss, ai->ai_addr, ai->ai_addrlen);
		if (ai->ai_family == AF_INET)
			((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)q->port);
		else
			((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)q->port);
		for (i = 0; i < q->n && !dup; i++)
			dup = q->lens[i] == ai->ai_addrlen &&
			      !memcmp(&q->addrs[i], ss, ai->ai_addrlen);
		if (dup)
			continue;
		q->lens[q->n++] = ai->ai_addrlen;
	}
	freeaddrinfo(res);
	if (!q->n) {
		q->err = -ENOENT;
		snprintf(q->msg, sizeof(q->msg), "resolve %s: no IPv4 or IPv6 address", q->host);
	}
}

static void *worker(void *arg)
{
	struct resolver *r = arg;

	pthread_mutex_lock(&r->mu);
	for (;;) {
		struct resolve_req *q;
		uint64_t one = 1;

		while (!r->stop && !r->todo)
			pthread_cond_wait(&r->cv, &r->mu);
		if (r->stop)
			break;
		q = r->todo;
		r->todo = q->next;
		if (!r->todo)
			r->todo_tail = NULL;
		q->state = REQ_RUNNING;
		pthread_mutex_unlock(&r->mu);

		lookup(q);

		pthread_mutex_lock(&r->mu);
		q->state = REQ_DONE;
		push(&r->done, &r->done_tail, q);
		/* An eventfd counter cannot overflow at one write per request;
		 * a failed write would leave the answer queued until the next. */
		if (write(r->efd, &one, sizeof(one)) != (ssize_t)sizeof(one))
			fprintf(stderr, "resolve: write eventfd: %s\n", strerror(errno));
	}
	pthread_mutex_unlock(&r->mu);
	return NULL;
}

/* --- the loop's side --------------------------------------------------------- */

static void on_ready(struct loop_io *io, uint32_t events)
{
	struct resolver *r = container_of(io, struct resolver, io);
	struct resolve_req *list, *q;
	uint64_t v;

	(void)events;
	/* The count is only a wake-up: the queue says what is done. */
	while (read(r->efd, &v, sizeof(v)) < 0 && errno == EINTR)
		;
	pthread_mutex_lock(&r->mu);
	list = r->done;
	r->done = r->done_tail = NULL;
	pthread_mutex_unlock(&r->mu);
	while ((q = list)) {
		list = q->next;
		r->pending--;
		/* A callback may cancel a request still in `list`: checked here. */
		if (!q->cancelled) {
			struct resolve_result res = {
				.err = q->err, .msg = q->msg, .host = q->host, .n = q->n,
				.addrs = q->addrs, .lens = q->lens,
			};

			q->cancelled = 1; /* called back: a late cancel is a caller bug */
			q->cb(q->arg, &res);
		}
		free(q);
	}
}

int resolver_new(struct loop *l, unsigned int max_pending, struct resolver **out,
		 struct errbuf *e)
{
	struct resolver *r;
	sigset_t all, old;
	int err;

	*out = NULL;
	if (!max_pending)
		return errf(e, -EINVAL, "resolver: max_pending must be at least 1");
	r = calloc(1, sizeof(*r));
	if (!r)
		return errf(e, -ENOMEM, "resolver: out of memory");
	r->l = l;
	r->max_pending = max_pending;
	r->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (r->efd < 0) {
		err = -errno;
		free(r);
		return errf(e, err, "resolver: eventfd: %s", strerror(-err));
	}
	pthread_mutex_init(&r->mu, NULL);
	pthread_cond_init(&r->cv, NULL);
	err = loop_io_add(l, &r->io, r->efd, EPOLLIN, on_ready);
	if (err) {
		errf(e, err, "resolver: epoll_ctl add eventfd: %s", strerror(-err));
		goto fail;
	}
	/* The worker takes no signals: they belong to the loop's thread
	 * (signalfd, or a handler). */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	err = -pthread_create(&r->thread, NULL, worker, r);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err) {
		errf(e, err, "resolver: start the worker thread: %s", strerror(-err));
		goto fail;
	}
	r->thread_started = 1;
	*out = r;
	return 0;
fail:
	resolver_free(r);
	return err;
}

static void free_list(struct resolve_req *q)
{
	while (q) {
		struct resolve_req *next = q->next;

		free(q);
		q = next;
	}
}

void resolver_free(struct resolver *r)
{
	if (!r)
		return;
	pthread_mutex_lock(&r->mu);
	r->stop = 1;
	pthread_cond_signal(&r->cv);
	pthread_mutex_unlock(&r->mu);
	/* The worker finishes the lookup it holds (into `done`) and exits. */
	if (r->thread_started)
		pthread_join(r->thread, NULL);
	free_list(r->todo);
	free_list(r->done);
	loop_io_del(r->l, &r->io);
	close(r->efd);
	pthread_cond_destroy(&r->cv);
	pthread_mutex_destroy(&r->mu);
	free(r);
}

struct resolve_req *resolve_start(struct resolver *r, const char *host, unsigned int port,
				  resolve_cb cb, void *arg, struct errbuf *e)
{
	struct resolve_req *q;
	size_t n = host ? strlen(host) : 0;

	if (!n || n >= RESOLVE_HOST_LEN || port > 65535) {
		errf(e, -EINVAL, "resolve '%s': %s", host ? host : "",
		     !n ? "empty host name" : n >= RESOLVE_HOST_LEN ? "host name too long" :
		     "port out of range");
		return NULL;
	}
	if (r->pending >= r->max_pending) {
		errf(e, -EAGAIN, "resolve %s: %u lookups already outstanding (the name server is "
		     "slow or down)", host, r->pending);
		return NULL;
	}
	q = calloc(1, sizeof(*q));
	if (!q) {
		errf(e, -ENOMEM, "resolve %s: out of memory", host);
		return NULL;
	}
	memcpy(q->host, host, n + 1);
	q->port = port;
	q->cb = cb;
	q->arg = arg;
	q->state = REQ_QUEUED;
	pthread_mutex_lock(&r->mu);
	push(&r->todo, &r->todo_tail, q);
	pthread_cond_signal(&r->cv);
	pthread_mutex_unlock(&r->mu);
	r->pending++;
	return q;
}

void resolve_cancel(struct resolver *r, struct resolve_req *q)
{
	pthread_mutex_lock(&r->mu);
	if (q->state == REQ_QUEUED) {
		struct resolve_req **pp, *prev = NULL;

		for (pp = &r->todo; *pp && *pp != q; pp = &(*pp)->next)
			prev = *pp;
		if (*pp) {
			*pp = q->next;
			if (r->todo_tail == q)
				r->todo_tail = prev;
		}
		pthread_mutex_unlock(&r->mu);
		r->pending--;
		free(q);
		return;
	}
	/* RUNNING or DONE: the loop handler frees it without calling back. */
	q->cancelled = 1;
	pthread_mutex_unlock(&r->mu);
}

unsigned int resolver_pending(const struct resolver *r)
{
	return r->pending;
}
