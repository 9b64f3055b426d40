// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The event loop: timers fire in deadline order whatever order they were
 * armed in, a stopped or moved timer behaves, posted work runs after its
 * poster returns and in order, and an fd deleted during a turn gets no
 * further event of that turn.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include "harness.h"
#include "loop.h"

#define N_TIMERS 200

struct tt {
	struct loop_timer t;
	int id;
};

static int fired[N_TIMERS], n_fired;

static void on_timer(struct loop_timer *t)
{
	struct tt *x = container_of(t, struct tt, t);

	if (n_fired < N_TIMERS)
		fired[n_fired++] = x->id;
}

TEST(loop_timers_fire_in_order)
{
	static struct tt ts[N_TIMERS];
	struct loop *l;
	uint64_t base;
	int i, stopped = 0, rounds = 0;

	if (!CHECK(loop_new(&l) == 0, "loop_new"))
		return;
	base = loop_clock();
	n_fired = 0;
	/* deadlines in a scrambled order: id i fires at base + ((i * 37) % N) us */
	for (i = 0; i < N_TIMERS; i++) {
		ts[i].id = i;
		loop_timer_init(&ts[i].t, on_timer);
		loop_timer_at(l, &ts[i].t, base + (uint64_t)((i * 37) % N_TIMERS) * 1000);
	}
	/* every tenth stopped, and timer 1 moved to the very end */
	for (i = 0; i < N_TIMERS; i += 10) {
		loop_timer_stop(l, &ts[i].t);
		stopped++;
	}
	CHECK(!loop_timer_armed(&ts[0].t), "a stopped timer is not armed");
	loop_timer_at(l, &ts[1].t, base + 10 * 1000000ULL);
	while (n_fired < N_TIMERS - stopped && rounds++ < 1000)
		loop_run_once(l, 50);
	CHECK_EQ(n_fired, N_TIMERS - stopped, "every armed timer fired once");
	CHECK_EQ(fired[n_fired - 1], 1, "the moved timer fired last");
	for (i = 1; i < n_fired - 1; i++) {
		uint64_t a = ts[fired[i - 1]].t.when_ns, b = ts[fired[i]].t.when_ns;

		if (!CHECK(a <= b, "timer %d fired after %d though due earlier", fired[i],
			   fired[i - 1]))
			break;
	}
	for (i = 0; i < N_TIMERS; i += 10)
		CHECK(ts[i].id == i && !loop_timer_armed(&ts[i].t), "stopped timer %d", i);
	loop_free(l);
}

struct pp {
	struct loop_post p;
	struct loop *l;
	int id;
	int *log, *n;
	struct pp *chain;       /* posted by this one's callback */
};

static int in_poster;

static void on_post(struct loop_post *p)
{
	struct pp *x = container_of(p, struct pp, p);

	CHECK(!in_poster, "post %d ran inside its poster", x->id);
	x->log[(*x->n)++] = x->id;
	if (x->chain)
		loop_post(x->l, &x->chain->p);
}

static void poster_timer(struct loop_timer *t);

static struct pp posts[4];

static void poster_timer(struct loop_timer *t)
{
	(void)t;
	in_poster = 1;
	loop_post(posts[0].l, &posts[0].p);
	loop_post(posts[0].l, &posts[1].p);
	loop_post(posts[0].l, &posts[0].p);     /* already posted: no-op */
	loop_post(posts[0].l, &posts[3].p);
	loop_post_cancel(posts[0].l, &posts[3].p);
	in_poster = 0;
}

TEST(loop_posted_work_runs_after_its_poster_in_order)
{
	struct loop_timer t;
	struct loop *l;
	int log[8], n = 0, i;

	if (!CHECK(loop_new(&l) == 0, "loop_new"))
		return;
	for (i = 0; i < 4; i++) {
		loop_post_init(&posts[i].p, on_post);
		posts[i].l = l;
		posts[i].id = i;
		posts[i].log = log;
		posts[i].n = &n;
		posts[i].chain = NULL;
	}
	posts[1].chain = &posts[2]; /* posted from a posted callback: same turn */
	loop_timer_init(&t, poster_timer);
	loop_timer_after(l, &t, 0);
	loop_run_once(l, 100);
	CHECK_EQ(n, 3, "three ran (one cancelled, one duplicate ignored)");
	CHECK(log[0] == 0 && log[1] == 1 && log[2] == 2, "in order: %d %d %d", log[0], log[1],
	      log[2]);
	loop_free(l);
}

struct pair {
	struct loop_io io;
	struct loop *l;
	struct pair *other;
	int calls;
};

static void on_readable(struct loop_io *io, uint32_t ev)
{
	struct pair *p = container_of(io, struct pair, io);

	(void)ev;
	p->calls++;
	loop_io_del(p->l, &p->other->io); /* its event this turn must not arrive */
	loop_io_del(p->l, io);
}

TEST(loop_deleted_fd_gets_no_more_events_this_turn)
{
	struct pair a = { 0 }, b = { 0 };
	struct loop *l;
	int s1[2], s2[2];

	if (!CHECK(loop_new(&l) == 0, "loop_new"))
		return;
	if (!CHECK(!socketpair(AF_UNIX, SOCK_STREAM, 0, s1) && !socketpair(AF_UNIX, SOCK_STREAM, 0, s2),
		   "socketpair"))
		return;
	a.l = b.l = l;
	a.other = &b;
	b.other = &a;
	CHECK(loop_io_add(l, &a.io, s1[0], EPOLLIN, on_readable) == 0, "add a");
	CHECK(loop_io_add(l, &b.io, s2[0], EPOLLIN, on_readable) == 0, "add b");
	CHECK(write(s1[1], "x", 1) == 1 && write(s2[1], "x", 1) == 1, "write");
	loop_run_once(l, 100);
	CHECK_EQ(a.calls + b.calls, 1, "one handler ran, the other was deleted before its turn");
	close(s1[0]);
	close(s1[1]);
	close(s2[0]);
	close(s2[1]);
	loop_free(l);
}
