// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#define TEST_GROUP "bpf" /* loads BPF programs or creates maps: needs root (harness.h) */
/*
 * The token buckets on the coarse clock (bpf/clock.h, bpf/gcra.h): the
 * clock stands still for a tick and then jumps, and the buckets reset an
 * idle TAT to now - tick rather than now. docs/design.md ("Clock") states
 * the error that buys: a saturating source gets its rate exactly in the long
 * run, whatever its burst, and one that was idle may send one tick's worth
 * of its rate beyond its burst, never more.
 *
 * Here the test clock plays the coarse one: it moves in whole ticks, and
 * within a tick a saturating source sends more than could ever pass. Both
 * bounds are checked against the GCRA arithmetic, so the test fails if the
 * slack is missing (a burst shorter than a tick then gets burst + 1 per tick,
 * far under the rate: the lower bound) or larger than a tick (the upper
 * bound and the burst after idle).
 */
#include <errno.h>
#include <string.h>
#include <bpf/bpf.h>
#include "fixture.h"
#include "harness.h"

#define MS 1000000ULL
#define SEC 1000000000ULL

static const struct {
	const char *rule;
	__u64 tick_ns;
} coarse_cases[] = {
	{ "rule add pps 1000 burst 5", 4 * MS },      /* make bench's live limit, HZ=250 */
	{ "rule add pps 1000000 burst 100", 4 * MS }, /* a burst 1/40 of a tick */
	{ "rule add pps 100000 burst 1", 1 * MS },    /* HZ=1000 */
	{ "rule add pps 10 burst 1", 10 * MS },       /* HZ=100, a tick under the interval */
	{ "rule add pps 3 burst 2", 4 * MS },         /* cost rounded down */
};

/* Runs the frame `n` times at the test clock's current value; the passes. */
static __u64 run_many(struct fx *f, int slot, const __u8 *frame, size_t len, __u32 n)
{
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = frame, .data_size_in = (__u32)len,
		    .repeat = n);
	struct sluice_rule_stats a = fx_rstats(f, slot), b;

	if (!CHECK(bpf_prog_test_run_opts(f->prog_fd, &o) == 0, "test run: %s", strerror(errno)))
		return 0;
	b = fx_rstats(f, slot);
	CHECK(b.passed_pkts + b.dropped_pkts - a.passed_pkts - a.dropped_pkts == n,
	      "the rule saw %llu of %u runs",
	      (unsigned long long)(b.passed_pkts + b.dropped_pkts - a.passed_pkts - a.dropped_pkts),
	      n);
	return b.passed_pkts - a.passed_pkts;
}

TEST(rate_coarse_clock_error_within_one_tick)
{
	struct pkt_spec s = { .family = 4, .src = "198.18.0.1", .proto = PKT_UDP,
			      .sport = 1024, .dport = 80 };
	__u8 buf[PKT_MAX];
	size_t i, n = pkt_build(&s, buf, sizeof(buf));

	if (!CHECK(n > 0, "build the frame"))
		return;
	for (i = 0; i < NELEM(coarse_cases); i++) {
		const char *name = coarse_cases[i].rule;
		const __u64 d = coarse_cases[i].tick_ns, ticks = SEC / d;
		struct fx_opts fo = { .tick_ns = d };
		__u64 c, tol, per_tick, k, passed, first, lo, hi;
		struct sluice_rule r;
		struct fx f;
		int slot;
		__u32 key;

		if (fx_open_opts(&f, &fo))
			return;
		slot = fx_cmd(&f, name);
		key = (__u32)slot;
		if (slot < 0 || !CHECK(bpf_map_lookup_elem(f.m.rules, &key, &r) == 0, "read rule"))
			goto next;
		c = r.pkt_interval_fp >> SLUICE_FP_SHIFT; /* whole ns per packet */
		tol = r.pkt_tolerance_ns;
		/* More than a tick's worth and a burst: the source saturates. */
		per_tick = 2 * (d / c + r.burst) + 2;

		/* The source's bucket, created by one packet (a new bucket
		 * starts at now: a new source gets its burst, no slack). */
		fx_at(&f, 1 * SEC);
		CHECK_EQ(run_many(&f, slot, buf, n, 1), 1, name);
		/* Idle for four seconds, then at one instant: the burst and a
		 * tick's worth of the rate (the slack), exactly. */
		fx_at(&f, 5 * SEC);
		first = run_many(&f, slot, buf, n, (__u32)per_tick);
		CHECK(first == (tol + d) / c,
		      "%s, tick %llu ms: %llu passed from idle at one instant, want (tolerance + "
		      "tick) / cost = %llu", name, (unsigned long long)(d / MS),
		      (unsigned long long)first, (unsigned long long)((tol + d) / c));
		CHECK(first <= r.burst + d / c + 1, "%s: burst after idle %llu over burst + "
		      "a tick's worth %llu", name, (unsigned long long)first,
		      (unsigned long long)(r.burst + d / c + 1));

		/* A second of ticks, saturating in every one. GCRA with the
		 * slack is exact GCRA on the coarse clock with a tolerance one
		 * tick longer: over ticks 0..K-1 at most (K tick + tol) / cost
		 * + 1 pass, and at least (K - 1) tick / cost + burst. */
		passed = first; /* the packet at 1 s is outside the span */
		for (k = 1; k < ticks; k++) {
			fx_at(&f, 5 * SEC + k * d);
			passed += run_many(&f, slot, buf, n, (__u32)per_tick);
		}
		hi = (ticks * d + tol) / c + 1;
		lo = (ticks - 1) * d / c + r.burst;
		CHECK(passed >= lo && passed <= hi,
		      "%s, tick %llu ms, saturating for %llu ticks: %llu passed, want %llu to %llu "
		      "(the rate over the span, and at most a burst and a tick more)", name,
		      (unsigned long long)(d / MS), (unsigned long long)ticks,
		      (unsigned long long)passed, (unsigned long long)lo, (unsigned long long)hi);
		CHECK_EQ(fx_counter(&f, SLUICE_CNT_CAS_EXHAUSTED), 0, name);
next:
		fx_close(&f);
	}
}
