/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * queue.h - the bounded wait queue of sluice-l7: requests over their
 * caller's concurrency, or arriving while the backends are saturated, wait
 * here ordered by priority (higher first), FIFO within a priority, each for
 * at most its deadline. Strict priority: a lower tier never goes ahead of a
 * higher one, so it cannot starve it.
 *
 * The queue does not own its entries; they are embedded in the proxy's
 * request structs, so removal (a client that hung up) is O(1).
 */
#ifndef SLUICE_L7_QUEUE_H
#define SLUICE_L7_QUEUE_H

#include <stdint.h>

#define WQ_MAX_PRIORITIES 16

struct wq_entry {
	struct wq_entry *prev, *next;
	uint64_t deadline_ns;
	unsigned int prio;        /* index of its list: < WQ_MAX_PRIORITIES */
	int queued;
};

struct wait_queue {
	struct wq_entry head[WQ_MAX_PRIORITIES];  /* circular lists, by priority */
	unsigned int len, max;
};

void wq_init(struct wait_queue *q, unsigned int max);
/* 0, or -ENOSPC when the queue holds max entries (-EALREADY if e is queued
 * already). prio is clamped to WQ_MAX_PRIORITIES - 1. */
int wq_push(struct wait_queue *q, struct wq_entry *e, unsigned int prio, uint64_t deadline_ns);
void wq_remove(struct wait_queue *q, struct wq_entry *e);   /* no-op if not queued */
/* The first entry in priority order (not removed), or NULL. */
struct wq_entry *wq_first(struct wait_queue *q);
/* The next entry after e in priority order, or NULL: lets the proxy skip an
 * entry that still cannot start (its caller is at its own limit) and offer
 * the slot to the next. */
struct wq_entry *wq_next(struct wait_queue *q, struct wq_entry *e);
/* An entry whose deadline is <= now, or NULL (call until NULL). */
struct wq_entry *wq_expired(struct wait_queue *q, uint64_t now);
/* The earliest deadline, or UINT64_MAX when empty. */
uint64_t wq_next_deadline(const struct wait_queue *q);

#endif
