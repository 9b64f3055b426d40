// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * sluice_l7.bpf.c - applies sluice-l7's measurements to the backend signals
 * (include/sluice.h, struct sluice_l7_event). Never attached: sluice-l7 runs
 * it with BPF_PROG_TEST_RUN, the frame's data being a batch of events, so
 * its updates are the same atomic adds the TC program makes on the same
 * entries, and neither side loses the other's.
 *
 * The map is the pinned sluice_signals, handed in with bpf_map__reuse_fd.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "defs.h"
#include "sluice.h"
#include "signals_update.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SLUICE_MAX_SERVICES);
	__type(key, __u32);
	__type(value, struct sluice_signals);
} sluice_signals SEC(".maps");

static struct sluice_signals signals_zero;

/* Events applied by the last runs, and those lost to a full table: read by
 * the tests through the skeleton's bss. */
__u64 sluice_l7_applied;
__u64 sluice_l7_lost;

static __always_inline struct sluice_signals *entry(__u32 port)
{
	struct sluice_signals *s = bpf_map_lookup_elem(&sluice_signals, &port);

	if (s)
		return s;
	bpf_map_update_elem(&sluice_signals, &port, &signals_zero, BPF_NOEXIST);
	return bpf_map_lookup_elem(&sluice_signals, &port);
}

SEC("xdp")
int sluice_l7_apply(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;

	for (__u32 i = 0; i < SLUICE_L7_BATCH; i++) {
		struct sluice_l7_event *ev = data + i * sizeof(*ev);
		struct sluice_signals *s;

		if ((void *)(ev + 1) > data_end)
			break;
		s = entry(ev->port);
		if (!s) {
			__sync_fetch_and_add(&sluice_l7_lost, 1);
			continue;
		}
		if (ev->kind == SLUICE_L7_EV_COUNT)
			signals_add(s, ev->index);
		else
			signals_observe(s, ev->index, ev->value_ns);
		__sync_fetch_and_add(&sluice_l7_applied, 1);
	}
	return XDP_PASS;
}
