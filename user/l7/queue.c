// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * queue.c - the wait queue: one circular doubly linked list per priority,
 * each with a sentinel head, so push, remove and pop are O(1). Expiry and
 * the next deadline scan every entry: within a priority entries are FIFO,
 * but tiers may have different timeouts after a reload, so deadlines are
 * not sorted; the queue is small (queue_size) and a scan is cheap and
 * plainly correct.
 */
#include <errno.h>
#include <stddef.h>
#include "queue.h"

void wq_init(struct wait_queue *q, unsigned int max)
{
	for (unsigned int p = 0; p < WQ_MAX_PRIORITIES; p++) {
		q->head[p].prev = q->head[p].next = &q->head[p];
		q->head[p].deadline_ns = UINT64_MAX;
		q->head[p].prio = p;
		q->head[p].queued = 0;
	}
	q->len = 0;
	q->max = max;
}

/* An entry already queued gets -EALREADY: linking it twice would corrupt
 * both lists. */
int wq_push(struct wait_queue *q, struct wq_entry *e, unsigned int prio, uint64_t deadline_ns)
{
	struct wq_entry *h;

	if (e->queued)
		return -EALREADY;
	if (q->len >= q->max)
		return -ENOSPC;
	if (prio >= WQ_MAX_PRIORITIES)
		prio = WQ_MAX_PRIORITIES - 1;
	h = &q->head[prio];
	e->prio = prio;
	e->deadline_ns = deadline_ns;
	e->next = h;
	e->prev = h->prev;
	h->prev->next = e;
	h->prev = e;
	e->queued = 1;
	q->len++;
	return 0;
}

void wq_remove(struct wait_queue *q, struct wq_entry *e)
{
	if (!e->queued)
		return;
	e->prev->next = e->next;
	e->next->prev = e->prev;
	e->prev = e->next = NULL;
	e->queued = 0;
	q->len--;
}

/* The first entry at priority `from` or below, or NULL. */
static struct wq_entry *first_from(struct wait_queue *q, int from)
{
	for (int p = from; p >= 0; p--)
		if (q->head[p].next != &q->head[p])
			return q->head[p].next;
	return NULL;
}

struct wq_entry *wq_first(struct wait_queue *q)
{
	return first_from(q, WQ_MAX_PRIORITIES - 1);
}

struct wq_entry *wq_next(struct wait_queue *q, struct wq_entry *e)
{
	if (!e || !e->queued)
		return NULL;
	if (e->next != &q->head[e->prio])
		return e->next;
	return first_from(q, (int)e->prio - 1);
}

/* Of the entries due, the one with the earliest deadline (ties: priority
 * order), so timeouts are answered in the order they fell due. */
struct wq_entry *wq_expired(struct wait_queue *q, uint64_t now)
{
	struct wq_entry *best = NULL;

	for (struct wq_entry *e = wq_first(q); e; e = wq_next(q, e))
		if (e->deadline_ns <= now && (!best || e->deadline_ns < best->deadline_ns))
			best = e;
	return best;
}

uint64_t wq_next_deadline(const struct wait_queue *q)
{
	uint64_t min = UINT64_MAX;

	for (unsigned int p = 0; p < WQ_MAX_PRIORITIES; p++)
		for (const struct wq_entry *e = q->head[p].next; e != &q->head[p]; e = e->next)
			if (e->deadline_ns < min)
				min = e->deadline_ns;
	return min;
}
