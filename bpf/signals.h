/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * signals.h - backend signals per service port: event counters and latency
 * histograms (layout in include/sluice.h). Written once per connection or
 * request, never per packet, so plain shared entries with atomic adds are
 * cheaper than per-CPU copies of 6 KiB each.
 */
#ifndef SLUICE_BPF_SIGNALS_H
#define SLUICE_BPF_SIGNALS_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "sluice.h"
#include "maps.h"
#include "clock.h"
#include "signals_update.h"

/* The template a new entry starts from: too big for the stack. */
static struct sluice_signals signals_zero;

/* The service's entry; created only when `create` (the server answered a
 * handshake or reset one), so SYNs to ports nobody serves create nothing. */
static __always_inline struct sluice_signals *signals_get(__u32 port, int create)
{
	struct sluice_signals *s = bpf_map_lookup_elem(&sluice_signals, &port);

	if (s || !create)
		return s;
	if (bpf_map_update_elem(&sluice_signals, &port, &signals_zero, BPF_NOEXIST) &&
	    !bpf_map_lookup_elem(&sluice_signals, &port)) {
		count(SLUICE_CNT_SIGNALS_FULL);
		return NULL;
	}
	return bpf_map_lookup_elem(&sluice_signals, &port);
}

#endif
