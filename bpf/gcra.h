/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * gcra.h - the token bucket, as the Generic Cell Rate Algorithm.
 *
 * A bucket is one 64-bit "theoretical arrival time" (TAT). A packet of cost C
 * (interval * units) is admitted when max(TAT, now) + C - now <= tolerance,
 * where tolerance = burst * interval; admitting moves the TAT forward by C.
 * This is exactly a token bucket of depth `burst` refilled at 1/interval,
 * but its whole state is one word, so CPUs that see the same source at once
 * can update it with compare-and-swap and lose no update: over any span T a
 * source gets at most T / interval + burst units, and an admitted packet is
 * never charged twice. The retries are bounded; a packet whose update keeps
 * losing the race is dropped and counted (SLUICE_CNT_CAS_EXHAUSTED), see
 * docs/design.md for the bound.
 *
 * The clock is the coarse one (bpf/clock.h), which stands still for a tick
 * (slack ns) and then jumps. Plain GCRA on it would lose allowance at each
 * jump whenever the burst is shorter than a tick (the TAT falls behind
 * `now` and is reset to it), admitting burst + 1 per tick instead of the
 * rate. So the reset is to now - slack: a source that keeps sending gets
 * exactly its rate in the long run, and one that was idle may send up to a
 * tick's worth of its rate beyond its burst. docs/design.md bounds it.
 */
#ifndef SLUICE_BPF_GCRA_H
#define SLUICE_BPF_GCRA_H

#include "vmlinux.h"
#include "defs.h"
#include "sluice.h"
#include "clock.h"

#define GCRA_CAS_RETRIES 4

enum gcra_verdict {
	GCRA_ADMIT = 0,
	GCRA_OVER = 1,
	GCRA_CONTENDED = 2,
};

/* cost in ns for `units` at an interval in ns << SLUICE_FP_SHIFT. */
static __always_inline __u64 gcra_cost(__u64 interval_fp, __u64 units)
{
	return (interval_fp * units) >> SLUICE_FP_SHIFT;
}

/* Inlined: a BPF-to-BPF call per limit cost ~3 ns of the one-rule drop path
 * (50 to 47 ns); the verifier's work grows by 2% (158k to 161k insns). */
static __always_inline enum gcra_verdict gcra_admit(__u64 *tat, __u64 now, __u64 cost,
						    __u64 tolerance)
{
	__u64 floor = now > sluice_clock_slack_ns ? now - sluice_clock_slack_ns : 0;
	int i;

#pragma unroll
	for (i = 0; i < GCRA_CAS_RETRIES; i++) {
		__u64 old = READ_ONCE(*tat);
		__u64 next = (old > floor ? old : floor) + cost;

		/* Not next - now: with the slack, next can be before now. */
		if (next > now + tolerance)
			return GCRA_OVER;
		if (__sync_val_compare_and_swap(tat, old, next) == old)
			return GCRA_ADMIT;
	}
	return GCRA_CONTENDED;
}

/* Give back a charge that a later check in the same packet refused, so a
 * packet dropped for bytes does not also use up a packet token. */
static __always_inline void gcra_refund(__u64 *tat, __u64 cost)
{
	__sync_fetch_and_sub(tat, cost);
}

#endif
