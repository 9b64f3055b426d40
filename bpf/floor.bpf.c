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
