/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * loop.h - the one event loop every sluice program runs: file descriptors
 * with a handler each, timers in a binary heap (no scan of every
 * connection), and deferred work posted to run after the current handler
 * returns, so a completion never calls back up into its caller's stack
 * (nginx's posted events, libuv's handles).
 *
 * Objects embed the handles and find themselves with container_of. A
 * handle belongs to whoever embeds it; the loop only points at it while it
 * is registered, armed or posted, and every handle must be removed
 * (loop_io_del, loop_timer_stop, loop_post_cancel) before its memory goes.
 *
 * One turn: wait for I/O (until the earliest timer at most), run the I/O
 * handlers, then the expired timers, then the posted work until none is
 * left. loop_now() is the turn's clock (CLOCK_MONOTONIC ns), read once per
 * turn, so a handler that wants the exact time calls loop_clock().
 */
#ifndef SLUICE_LOOP_H
#define SLUICE_LOOP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/epoll.h>

#ifndef container_of
#define container_of(p, type, member) ((type *)((char *)(p) - offsetof(type, member)))
#endif

struct loop;

struct loop_io {
	int fd;
	uint32_t events;                 /* EPOLLIN, EPOLLOUT, EPOLLET, ... */
	void (*cb)(struct loop_io *io, uint32_t revents);
	int registered;
};

struct loop_timer {
	uint64_t when_ns;                /* CLOCK_MONOTONIC */
	void (*cb)(struct loop_timer *t);
	size_t heap_idx;                 /* + 1; 0 = not armed */
};

struct loop_post {
	void (*cb)(struct loop_post *p);
	struct loop_post *next;
	int posted;
};

int loop_new(struct loop **out);
/* Handles still registered are forgotten, not touched. */
void loop_free(struct loop *l);

/* Run turns until loop_stop; 0, or a negative errno from epoll. */
int loop_run(struct loop *l);
/* One turn that waits at most timeout_ms (-1: until something happens). */
int loop_run_once(struct loop *l, int timeout_ms);
void loop_stop(struct loop *l);
int loop_stopped(const struct loop *l);

uint64_t loop_now(const struct loop *l);   /* this turn's clock */
uint64_t loop_clock(void);                 /* CLOCK_MONOTONIC now, in ns */

/* I/O: io->fd, io->cb and the events set by the caller. */
int loop_io_add(struct loop *l, struct loop_io *io, int fd, uint32_t events,
		void (*cb)(struct loop_io *, uint32_t));
int loop_io_mod(struct loop *l, struct loop_io *io, uint32_t events);
/* Removes it from the loop (the fd stays open: its owner closes it). A
 * registered fd must be deleted before it is closed. An event of this turn
 * not yet handled is dropped, so the owner may free io as soon as this
 * returns. */
void loop_io_del(struct loop *l, struct loop_io *io);

/* Timers: one-shot, at an absolute CLOCK_MONOTONIC time; setting an armed
 * timer moves it. */
void loop_timer_init(struct loop_timer *t, void (*cb)(struct loop_timer *));
int loop_timer_at(struct loop *l, struct loop_timer *t, uint64_t when_ns);
int loop_timer_after(struct loop *l, struct loop_timer *t, uint64_t delay_ns);
void loop_timer_stop(struct loop *l, struct loop_timer *t);
static inline int loop_timer_armed(const struct loop_timer *t) { return t->heap_idx != 0; }

/* Deferred work: runs once, after the handler that posted it returns, in
 * the order posted. Posting what is already posted does nothing. */
void loop_post_init(struct loop_post *p, void (*cb)(struct loop_post *));
void loop_post(struct loop *l, struct loop_post *p);
void loop_post_cancel(struct loop *l, struct loop_post *p);

#endif
