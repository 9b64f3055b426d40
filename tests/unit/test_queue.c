// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * sluice-l7's wait queue: strict priority, FIFO within a priority, O(1)
 * removal from anywhere, the bound, and deadlines.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include "harness.h"
#include "queue.h"


/* Pushes rows of (prio, deadline) into e[]; 0 or the first error. */
struct qrow {
	unsigned int prio;
	uint64_t deadline;
};

static int push_rows(struct wait_queue *q, struct wq_entry *e, const struct qrow *rows, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int err = wq_push(q, &e[i], rows[i].prio, rows[i].deadline);

		if (!CHECK(err == 0, "push row %zu: %d", i, err))
			return err;
	}
	return 0;
}

/* Index of entry p in e[], or -1. */
static int idx(const struct wq_entry *e, size_t n, const struct wq_entry *p)
{
	for (size_t i = 0; i < n; i++)
		if (&e[i] == p)
			return (int)i;
	return -1;
}

static const struct qrow order_rows[] = {
	{ 1, 100 }, { 5, 100 }, { 1, 100 }, { 5, 100 }, { 3, 100 }, { 0, 100 }, { 100, 100 },
};
/* priority high to low, then arrival: 100 (clamped to 15), 5, 5, 3, 1, 1, 0 */
static const int order_want[] = { 6, 1, 3, 4, 0, 2, 5 };

TEST(wq_priority_then_fifo)
{
	struct wait_queue q;
	struct wq_entry e[NELEM(order_rows)];
	struct wq_entry *p;
	size_t k = 0;

	memset(e, 0, sizeof(e));
	wq_init(&q, 64);
	CHECK(wq_first(&q) == NULL, "empty: no first");
	if (push_rows(&q, e, order_rows, NELEM(order_rows)))
		return;
	CHECK_EQ(q.len, NELEM(order_rows), "len");
	CHECK_EQ(e[6].prio, WQ_MAX_PRIORITIES - 1, "priority clamped");

	/* wq_next walks the order without taking anything */
	for (p = wq_first(&q); p && k < NELEM(order_want); p = wq_next(&q, p), k++)
		CHECK_EQ(idx(e, NELEM(e), p), order_want[k], "wq_next order");
	CHECK(p == NULL && k == NELEM(order_want), "the walk ends after every entry");
	CHECK_EQ(q.len, NELEM(order_rows), "walking took nothing");

	/* popping gives the same order */
	for (k = 0; (p = wq_first(&q)) != NULL && k < NELEM(order_want); k++) {
		CHECK_EQ(idx(e, NELEM(e), p), order_want[k], "pop order");
		wq_remove(&q, p);
		CHECK(!p->queued, "removed");
	}
	CHECK_EQ(k, NELEM(order_want), "popped every entry");
	CHECK_EQ(q.len, 0, "empty again");
}

TEST(wq_remove_middle)
{
	struct wait_queue q;
	struct wq_entry e[NELEM(order_rows)];
	static const int want[] = { 6, 1, 4, 0, 5 }; /* without 3 (prio 5) and 2 (prio 1) */
	struct wq_entry *p;
	size_t k = 0;

	memset(e, 0, sizeof(e));
	wq_init(&q, 64);
	if (push_rows(&q, e, order_rows, NELEM(order_rows)))
		return;
	wq_remove(&q, &e[3]);
	wq_remove(&q, &e[2]);
	wq_remove(&q, &e[2]);            /* not queued: no-op */
	CHECK_EQ(q.len, NELEM(order_rows) - 2, "two removed");
	for (p = wq_first(&q); p && k < NELEM(want); p = wq_next(&q, p), k++)
		CHECK_EQ(idx(e, NELEM(e), p), want[k], "order after removal");
	CHECK(p == NULL && k == NELEM(want), "the rest, and nothing else");
	CHECK(wq_next(&q, &e[3]) == NULL, "next of a removed entry");

	/* the last of a priority, then a priority emptied */
	wq_remove(&q, &e[4]);
	p = wq_next(&q, &e[1]);
	CHECK_EQ(idx(e, NELEM(e), p), 0, "next skips the emptied priority");
	/* a removed entry can be queued again, at the back */
	CHECK_EQ(wq_push(&q, &e[3], 1, 100), 0, "push again");
	CHECK_EQ(idx(e, NELEM(e), wq_next(&q, &e[0])), 3, "behind the earlier prio 1");
}

TEST(wq_bound)
{
	struct wait_queue q;
	struct wq_entry e[4];

	memset(e, 0, sizeof(e));
	wq_init(&q, 3);
	for (int i = 0; i < 3; i++)
		CHECK_EQ(wq_push(&q, &e[i], 2, 10), 0, "under the bound");
	CHECK_EQ(wq_push(&q, &e[3], 9, 10), -ENOSPC, "at max: ENOSPC");
	CHECK(!e[3].queued, "the refused entry is not queued");
	CHECK_EQ(wq_push(&q, &e[0], 2, 10), -EALREADY, "already queued");
	CHECK_EQ(q.len, 3, "len unchanged");
	wq_remove(&q, &e[1]);
	CHECK_EQ(wq_push(&q, &e[3], 9, 10), 0, "room again");
	CHECK(wq_first(&q) == &e[3], "higher priority first");

	wq_init(&q, 0);
	memset(e, 0, sizeof(e));
	CHECK_EQ(wq_push(&q, &e[0], 0, 10), -ENOSPC, "max 0 holds nothing");
}

TEST(wq_deadlines)
{
	static const struct qrow rows[] = {
		{ 1, 500 }, { 5, 300 }, { 1, 200 }, { 5, 900 }, { 3, 300 }, { 0, 100 },
	};
	struct wait_queue q;
	struct wq_entry e[NELEM(rows)];
	static const struct {
		uint64_t now;
		int want[NELEM(rows) + 1];   /* entries due, in order; -1 ends */
	} steps[] = {
		{ 50, { -1 } },
		{ 100, { 5, -1 } },
		{ 299, { 2, -1 } },
		{ 300, { 1, 4, -1 } },       /* equal deadlines: priority order */
		{ 1000, { 0, 3, -1 } },
	};
	static const uint64_t next_want[] = { 100, 200, 300, 500, UINT64_MAX };

	memset(e, 0, sizeof(e));
	wq_init(&q, 64);
	CHECK_EQ(wq_next_deadline(&q), UINT64_MAX, "empty: no deadline");
	CHECK(wq_expired(&q, UINT64_MAX) == NULL, "empty: nothing expires");
	if (push_rows(&q, e, rows, NELEM(rows)))
		return;
	for (size_t s = 0; s < NELEM(steps); s++) {
		struct wq_entry *p;
		size_t k = 0;

		while ((p = wq_expired(&q, steps[s].now)) != NULL && k < NELEM(rows)) {
			CHECK_EQ(idx(e, NELEM(e), p), steps[s].want[k], "expiry order");
			CHECK(p->deadline_ns <= steps[s].now, "due");
			wq_remove(&q, p);
			k++;
		}
		CHECK(steps[s].want[k] == -1, "step %zu: %zu expired, more were due", s, k);
		CHECK_EQ(wq_next_deadline(&q), next_want[s], "next deadline after the step");
	}
	CHECK_EQ(q.len, 0, "everything expired");
}
