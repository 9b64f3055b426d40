/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * signals_update.h - the two updates of a backend-signals entry (a counter,
 * a latency observation), with atomics because several CPUs and sluice-l7's
 * batches write one entry. Apart from signals.h so that bpf/sluice_l7.bpf.c
 * uses them without the XDP program's maps.
 */
#ifndef SLUICE_BPF_SIGNALS_UPDATE_H
#define SLUICE_BPF_SIGNALS_UPDATE_H

#include "vmlinux.h"
#include "sluice.h"

static __always_inline void signals_add(struct sluice_signals *s, __u32 sig)
{
	if (s && sig < SLUICE_SIG_MAX)
		__sync_fetch_and_add(&s->counter[sig], 1);
}

static __always_inline void signals_observe(struct sluice_signals *s, __u32 hist, __u64 ns)
{
	__u64 us = ns / 1000;
	__u32 b = sluice_hist_bucket(us);

	/* The verifier needs to see the bound that clang knows already. */
	asm volatile("" : "+r"(b));
	if (!s || hist >= SLUICE_HISTS || b >= SLUICE_HIST_BUCKETS)
		return;
	__sync_fetch_and_add(&s->hist[hist].count, 1);
	__sync_fetch_and_add(&s->hist[hist].sum_us, us);
	__sync_fetch_and_add(&s->hist[hist].bucket[b], 1);
}

#endif
