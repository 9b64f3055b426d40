// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * loop.c - epoll, a binary min-heap of timers, and a FIFO of posted work.
 * See loop.h for the contract.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "loop.h"
#include "util.h"

#define LOOP_MAX_EVENTS 64
#define HEAP_MIN 64

struct loop {
	int ep;
	int stop;
	uint64_t now;
	struct loop_timer **heap;      /* heap[0] fires first */
	size_t n_timers, cap_timers;
	struct loop_post *post_head, *post_tail;
	struct epoll_event *batch;     /* this turn's events, while they run */
	int batch_n;
};

uint64_t loop_clock(void)
{
	return monotonic_ns();
}

int loop_new(struct loop **out)
{
	struct loop *l = calloc(1, sizeof(*l));

	*out = NULL;
	if (!l)
		return -ENOMEM;
	l->ep = epoll_create1(EPOLL_CLOEXEC);
	if (l->ep < 0) {
		int err = -errno;

		free(l);
		return err;
	}
	l->now = loop_clock();
	*out = l;
	return 0;
}

void loop_free(struct loop *l)
{
	size_t i;

	if (!l)
		return;
	for (i = 0; i < l->n_timers; i++)
		l->heap[i]->heap_idx = 0;
	for (struct loop_post *p = l->post_head; p; p = p->next)
		p->posted = 0;
	free(l->heap);
	close(l->ep);
	free(l);
}

void loop_stop(struct loop *l)
{
	l->stop = 1;
}

int loop_stopped(const struct loop *l)
{
	return l->stop;
}

uint64_t loop_now(const struct loop *l)
{
	return l->now;
}

/* --- I/O ------------------------------------------------------------------- */

int loop_io_add(struct loop *l, struct loop_io *io, int fd, uint32_t events,
		void (*cb)(struct loop_io *, uint32_t))
{
	struct epoll_event ev = { .events = events, .data.ptr = io };

	io->fd = fd;
	io->events = events;
	io->cb = cb;
	if (epoll_ctl(l->ep, EPOLL_CTL_ADD, fd, &ev))
		return -errno;
	io->registered = 1;
	return 0;
}

int loop_io_mod(struct loop *l, struct loop_io *io, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = io };

	if (io->registered && io->events == events)
		return 0;
	if (epoll_ctl(l->ep, EPOLL_CTL_MOD, io->fd, &ev))
		return -errno;
	io->events = events;
	return 0;
}

void loop_io_del(struct loop *l, struct loop_io *io)
{
	if (!io->registered)
		return;
	/* Fails only for an fd already closed, which epoll forgot by itself. */
	epoll_ctl(l->ep, EPOLL_CTL_DEL, io->fd, NULL);
	io->registered = 0;
	/* An event of this turn not yet handled must not reach it: its owner
	 * may free it as soon as this returns. */
	for (int i = 0; i < l->batch_n; i++)
		if (l->batch[i].data.ptr == io)
			l->batch[i].data.ptr = NULL;
}

/* --- timers: a binary min-heap on when_ns ------------------------------------ */

static void heap_set(struct loop *l, size_t i, struct loop_timer *t)
{
	l->heap[i] = t;
	t->heap_idx = i + 1;
}

static void heap_up(struct loop *l, size_t i)
{
	struct loop_timer *t = l->heap[i];

	while (i > 0) {
		size_t parent = (i - 1) / 2;

		if (l->heap[parent]->when_ns <= t->when_ns)
			break;
		heap_set(l, i, l->heap[parent]);
		i = parent;
	}
	heap_set(l, i, t);
}

static void heap_down(struct loop *l, size_t i)
{
	struct loop_timer *t = l->heap[i];

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= l->n_timers)
			break;
		if (c + 1 < l->n_timers && l->heap[c + 1]->when_ns < l->heap[c]->when_ns)
			c++;
		if (t->when_ns <= l->heap[c]->when_ns)
			break;
		heap_set(l, i, l->heap[c]);
		i = c;
	}
	heap_set(l, i, t);
}

void loop_timer_init(struct loop_timer *t, void (*cb)(struct loop_timer *))
{
	t->when_ns = 0;
	t->cb = cb;
	t->heap_idx = 0;
}

void loop_timer_stop(struct loop *l, struct loop_timer *t)
{
	size_t i;

	if (!t->heap_idx)
		return;
	i = t->heap_idx - 1;
	t->heap_idx = 0;
	if (i == --l->n_timers)
		return;
	t = l->heap[l->n_timers];       /* the last one fills the hole */
	heap_set(l, i, t);
	heap_up(l, i);
	heap_down(l, t->heap_idx - 1);
}

int loop_timer_at(struct loop *l, struct loop_timer *t, uint64_t when_ns)
{
	if (t->heap_idx) {
		size_t i = t->heap_idx - 1;

		t->when_ns = when_ns;
		heap_up(l, i);
		heap_down(l, t->heap_idx - 1);
		return 0;
	}
	if (array_grow(&l->heap, &l->cap_timers, l->n_timers + 1, sizeof(*l->heap), HEAP_MIN))
		return -ENOMEM;
	t->when_ns = when_ns;
	heap_set(l, l->n_timers++, t);
	heap_up(l, l->n_timers - 1);
	return 0;
}

int loop_timer_after(struct loop *l, struct loop_timer *t, uint64_t delay_ns)
{
	return loop_timer_at(l, t, loop_clock() + delay_ns);
}

/* --- posted work ------------------------------------------------------------- */

void loop_post_init(struct loop_post *p, void (*cb)(struct loop_post *))
{
	p->cb = cb;
	p->next = NULL;
	p->posted = 0;
}

void loop_post(struct loop *l, struct loop_post *p)
{
	if (p->posted)
		return;
	p->posted = 1;
	p->next = NULL;
	if (l->post_tail)
		l->post_tail->next = p;
	else
		l->post_head = p;
	l->post_tail = p;
}

void loop_post_cancel(struct loop *l, struct loop_post *p)
{
	struct loop_post **pp, *prev = NULL;

	if (!p->posted)
		return;
	for (pp = &l->post_head; *pp; prev = *pp, pp = &(*pp)->next) {
		if (*pp != p)
			continue;
		*pp = p->next;
		if (l->post_tail == p)
			l->post_tail = prev;
		break;
	}
	p->posted = 0;
	p->next = NULL;
}

static void run_posted(struct loop *l)
{
	struct loop_post *p;

	while ((p = l->post_head)) {
		l->post_head = p->next;
		if (!l->post_head)
			l->post_tail = NULL;
		p->next = NULL;
		p->posted = 0;
		p->cb(p);
	}
}

static void run_timers(struct loop *l)
{
	/* Timers armed by a callback for "now" wait for the next turn, so a
	 * timer that re-arms itself at once cannot starve the I/O. */
	uint64_t now = l->now;

	while (l->n_timers && l->heap[0]->when_ns <= now) {
		struct loop_timer *t = l->heap[0];

		loop_timer_stop(l, t);
		t->cb(t);
		run_posted(l);
	}
}

/* --- the turn ------------------------------------------------------------------ */

int loop_run_once(struct loop *l, int timeout_ms)
{
	struct epoll_event evs[LOOP_MAX_EVENTS];
	int n, i;

	run_posted(l); /* work posted before the loop ran, or between turns */
	if (l->n_timers) {
		uint64_t now = loop_clock(), first = l->heap[0]->when_ns;
		int64_t ms = first <= now ? 0 : (int64_t)((first - now + 999999) / 1000000);

		if (timeout_ms < 0 || ms < timeout_ms)
			timeout_ms = ms > 3600000 ? 3600000 : (int)ms;
	}
	n = epoll_wait(l->ep, evs, LOOP_MAX_EVENTS, timeout_ms);
	if (n < 0) {
		if (errno != EINTR)
			return -errno;
		n = 0;
	}
	l->now = loop_clock();
	l->batch = evs;
	l->batch_n = n;
	for (i = 0; i < n; i++) {
		struct loop_io *io = evs[i].data.ptr;

		if (!io)
			continue; /* deleted by an earlier handler of this turn */
		io->cb(io, evs[i].events);
		run_posted(l);
	}
	l->batch = NULL;
	l->batch_n = 0;
	run_timers(l);
	return 0;
}

int loop_run(struct loop *l)
{
	while (!l->stop) {
		int err = loop_run_once(l, -1);

		if (err)
			return err;
	}
	return 0;
}
