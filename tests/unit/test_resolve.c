// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The resolver: answers come on the loop, never from inside resolve_start;
 * localhost gives loopback addresses with the port set; a .invalid name
 * fails with a reason; a cancelled request never calls back, even when its
 * answer is already queued; the bound holds; freeing with requests
 * outstanding calls nothing back and leaks nothing. Loopback names only:
 * nothing here leaves the host.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <unistd.h>
#include "harness.h"
#include "loop.h"
#include "resolve.h"

struct answer {
	int calls;
	int err;
	char msg[ERRBUF_LEN];
	size_t n, loopback, with_port;
	int families;             /* bit 0: IPv4, bit 1: IPv6 */
	unsigned int port;
};

static void on_answer(void *arg, const struct resolve_result *res)
{
	struct answer *a = arg;

	a->calls++;
	a->err = res->err;
	snprintf(a->msg, sizeof(a->msg), "%s", res->msg);
	a->n = res->n;
	for (size_t i = 0; i < res->n; i++) {
		const struct sockaddr_storage *ss = &res->addrs[i];

		if (ss->ss_family == AF_INET) {
			const struct sockaddr_in *s = (const void *)ss;

			a->families |= 1;
			a->loopback += ntohl(s->sin_addr.s_addr) == INADDR_LOOPBACK;
			a->with_port += ntohs(s->sin_port) == a->port &&
					res->lens[i] == sizeof(*s);
		} else if (ss->ss_family == AF_INET6) {
			const struct sockaddr_in6 *s = (const void *)ss;

			a->families |= 2;
			a->loopback += IN6_IS_ADDR_LOOPBACK(&s->sin6_addr);
			a->with_port += ntohs(s->sin6_port) == a->port &&
					res->lens[i] == sizeof(*s);
		}
	}
}

/* Runs l until every answer in as[] has come, at most 10 s. */
static int wait_answers(struct loop *l, struct answer **as, int n)
{
	uint64_t end = loop_clock() + 10000000000ULL;

	for (;;) {
		int all = 1;

		for (int i = 0; i < n; i++)
			all &= as[i]->calls > 0;
		if (all)
			return 1;
		if (loop_clock() > end)
			return 0;
		loop_run_once(l, 100);
	}
}

TEST(resolve_localhost_on_the_loop)
{
	struct answer a = { .port = 8080 }, *as[] = { &a };
	struct errbuf e = { "" };
	struct resolver *r;
	struct loop *l;

	if (!CHECK(loop_new(&l) == 0, "loop_new"))
		return;
	if (!CHECK(resolver_new(l, 4, &r, &e) == 0, "resolver_new: %s", e.msg)) {
		loop_free(l);
		return;
	}
	CHECK(resolve_start(r, "localhost", 8080, on_answer, &a, &e) != NULL, "start: %s", e.msg);
	CHECK(a.calls == 0, "no answer from inside resolve_start");
	CHECK_EQ(resolver_pending(r), 1, "one outstanding");
	CHECK(wait_answers(l, as, 1), "an answer within 10 s");
	CHECK(a.err == 0 && a.n >= 1, "localhost: err %d '%s', %zu addresses", a.err, a.msg, a.n);
	CHECK(a.loopback == a.n, "every address of localhost is loopback (%zu of %zu)",
	      a.loopback, a.n);
	CHECK(a.with_port == a.n, "every address carries port 8080 (%zu of %zu)", a.with_port, a.n);
	CHECK_EQ(a.calls, 1, "called back once");
	CHECK_EQ(resolver_pending(r), 0, "none outstanding after");
	resolver_free(r);
	loop_free(l);
}

TEST(resolve_literals_and_invalid)
{
	struct answer v6 = { .port = 443 }, v4 = { .port = 1 }, bad = { .port = 80 };
	struct answer *as[] = { &v6, &v4, &bad };
	struct errbuf e = { "" };
	struct resolver *r;
	struct loop *l;

	if (!CHECK(loop_new(&l) == 0, "loop_new"))
		return;
	if (!CHECK(resolver_new(l, 4, &r, &e) == 0, "resolver_new: %s", e.msg)) {
		loop_free(l);
		return;
	}
	CHECK(resolve_start(r, "::1", 443, on_answer, &v6, &e) != NULL, "::1: %s", e.msg);
	CHECK(resolve_start(r, "127.0.0.1", 1, on_answer, &v4, &e) != NULL, "v4: %s", e.msg);
	CHECK(resolve_start(r, "no-such-host.invalid", 80, on_answer, &bad, &e) != NULL,
	      "invalid: %s", e.msg);
	CHECK(wait_answers(l, as, 3), "three answers within 10 s");
	CHECK(v6.err == 0 && v6.n == 1 && v6.families == 2 && v6.loopback == 1 &&
	      v6.with_port == 1, "::1 -> [::1]:443: err %d '%s' n %zu", v6.err, v6.msg, v6.n);
	CHECK(v4.err == 0 && v4.n == 1 && v4.families == 1 && v4.with_port == 1,
	      "127.0.0.1 -> 127.0.0.1:1: err %d '%s' n %zu", v4.err, v4.msg, v4.n);
	CHECK(bad.err == -ENOENT && bad.n == 0, "a .invalid name fails: err %d", bad.err);
	CHECK(strstr(bad.msg, "no-such-host.invalid") && strstr(bad.msg, "no such name"),
	      "the reason names the host: '%s'", bad.msg);
	/* refused at once */
	CHECK(resolve_start(r, "", 80, on_answer, &bad, &e) == NULL && strstr(e.msg, "empty"),
	      "empty name: '%s'", e.msg);
	resolver_free(r);
	loop_free(l);
}

struct canceller {
	struct answer a;
	struct resolver *r;
	struct resolve_req *victim;
};

static void on_answer_cancel(void *arg, const struct resolve_result *res)
{
	struct canceller *c = arg;

	on_answer(&c->a, res);
	if (c->victim)
		resolve_cancel(c->r, c->victim);
}

TEST(resolve_cancel_never_calls_back)
{
	struct answer a1 = { .port = 1 }, a2 = { .port = 2 }, a3 = { .port = 3 }, a4 = { .port = 4 };
	struct canceller c = { .a = { .port = 5 } };
	struct answer *as[] = { &a1, &a3, &c.a };
	struct resolve_req *q2, *q4;
	struct errbuf e = { "" };
	struct resolver *r;
	struct loop *l;

	if (!CHECK(loop_new(&l) == 0, "loop_new"))
		return;
	if (!CHECK(resolver_new(l, 8, &r, &e) == 0, "resolver_new: %s", e.msg)) {
		loop_free(l);
		return;
	}
	c.r = r;
	CHECK(resolve_start(r, "localhost", 1, on_answer, &a1, &e) != NULL, "1: %s", e.msg);
	q2 = resolve_start(r, "localhost", 2, on_answer, &a2, &e);
	CHECK(q2 != NULL, "2: %s", e.msg);
	CHECK(resolve_start(r, "127.0.0.1", 3, on_answer, &a3, &e) != NULL, "3: %s", e.msg);
	/* cancelled at once: queued, or already in the worker's hands */
	if (q2)
		resolve_cancel(r, q2);
	/* c's answer cancels q4, whose answer is queued behind it (or not yet made) */
	CHECK(resolve_start(r, "127.0.0.1", 5, on_answer_cancel, &c, &e) != NULL, "5: %s", e.msg);
	q4 = resolve_start(r, "127.0.0.1", 4, on_answer, &a4, &e);
	CHECK(q4 != NULL, "4: %s", e.msg);
	c.victim = q4;
	/* Let every answer be made before the loop looks, so that q4's is
	 * queued when c's callback cancels it. */
	usleep(200000);
	CHECK(wait_answers(l, as, 3), "the three others answered");
	for (int i = 0; i < 5; i++)
		loop_run_once(l, 20);
	CHECK(a1.calls == 1 && a3.calls == 1 && c.a.calls == 1, "the others once each: %d %d %d",
	      a1.calls, a3.calls, c.a.calls);
	CHECK_EQ(a2.calls, 0, "a request cancelled at once never calls back");
	CHECK_EQ(a4.calls, 0, "a request cancelled with its answer queued never calls back");
	CHECK_EQ(resolver_pending(r), 0, "none outstanding");
	resolver_free(r);
	loop_free(l);
}

TEST(resolve_bounded_and_free_outstanding)
{
	struct answer a[3] = { { .port = 1 }, { .port = 2 }, { .port = 3 } };
	struct errbuf e = { "" };
	struct resolver *r;
	struct loop *l;

	if (!CHECK(loop_new(&l) == 0, "loop_new"))
		return;
	if (!CHECK(resolver_new(l, 2, &r, &e) == 0, "resolver_new: %s", e.msg)) {
		loop_free(l);
		return;
	}
	CHECK(resolve_start(r, "localhost", 1, on_answer, &a[0], &e) != NULL, "1: %s", e.msg);
	CHECK(resolve_start(r, "localhost", 2, on_answer, &a[1], &e) != NULL, "2: %s", e.msg);
	CHECK(resolve_start(r, "localhost", 3, on_answer, &a[2], &e) == NULL,
	      "a third is refused at max_pending 2");
	CHECK(strstr(e.msg, "outstanding") != NULL, "and says why: '%s'", e.msg);
	usleep(100000); /* answers made, not delivered: still outstanding */
	CHECK(resolve_start(r, "localhost", 3, on_answer, &a[2], &e) == NULL,
	      "still refused while the answers wait for the loop");
	/* freed with requests outstanding: no callback, nothing leaked (ASan) */
	resolver_free(r);
	for (int i = 0; i < 3; i++)
		loop_run_once(l, 10);
	CHECK(a[0].calls + a[1].calls + a[2].calls == 0, "no callback after resolver_free");
	loop_free(l);
}
