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

/* The clock is the dearest thing a packet pays for (docs/benchmarks.md), so
 * it is read only when a decision needs it: the precise clock for limits and
 * latencies, the tick-granular one for timeouts, where a few ms of lateness
 * on a timeout of seconds does not matter. */
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

static __always_inline void count(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&sluice_counters, &idx);

	if (v)
		*v += 1; /* per-CPU: no atomics needed */
}

#endif
