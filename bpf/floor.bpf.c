// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* The benchmark floor: the cheapest XDP program there is. make bench reports
 * sluice's cost per packet as a ratio to this, measured in the same run. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("xdp")
int floor_drop(struct xdp_md *ctx)
{
	return XDP_DROP;
}

/* The floor of the TC egress program: a bare TC_ACT_OK. */
SEC("tc")
int floor_tc(struct __sk_buff *skb)
{
	return 0;
}
