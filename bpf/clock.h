/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * clock.h - the programs' one clock, and the counters every program bumps.
 *
 * Tests set sluice_use_test_clock at load time and drive the clock through
 * sluice_test_now, so rate and timeout logic is tested without sleeping. In
 * production the verifier removes the branch (read-only data).
 */
#ifndef SLUICE_BPF_CLOCK_H
#define SLUICE_BPF_CLOCK_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "sluice.h"
#include "maps.h"

const volatile __u32 sluice_use_test_clock = 0;
__u64 sluice_test_now = 0;

/* The granularity of the clock the token buckets read: the coarse clock's
 * tick (the loader sets it from clock_getres(CLOCK_MONOTONIC_COARSE): 4 ms
 * at HZ=250). 0 on the test clock, unless a test simulates a coarse one.
 * bpf/gcra.h explains what it is for. */
const volatile __u64 sluice_clock_slack_ns = 0;

/* The precise clock is the dearest thing a packet can pay for (31 ns on
 * kvm-clock, docs/benchmarks.md), so it is read only for latencies (a SYN's
 * connect time, a request's start); limits and timeouts use the
 * tick-granular one, where a tick of lateness is bounded (docs/design.md). */
static __always_inline __u64 now_ns(void)
{
	if (sluice_use_test_clock)
		return sluice_test_now;
	return bpf_ktime_get_ns();
}

static __always_inline __u64 now_coarse_ns(void)
{
	if (sluice_use_test_clock)
		return sluice_test_now;
	return bpf_ktime_get_coarse_ns();
}

/* The token buckets' clock. The coarse clock costs ~2 ns to read where
 * bpf_ktime_get_ns() costs ~31 ns on a KVM guest's kvm-clock
 * (docs/benchmarks.md): a third of the one-rule drop path. Its ticks are
 * what gcra_admit()'s slack absorbs; docs/design.md bounds the error. */
static __always_inline __u64 now_bucket_ns(void)
{
	return now_coarse_ns();
}

static __always_inline void count(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&sluice_counters, &idx);

	if (v)
		*v += 1; /* per-CPU: no atomics needed */
}

#endif
