// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * bench_live.bpf.c - the live flood of `make bench` (bench/bench_live.c).
 *
 * bench_gen is the traffic generator: run with BPF_PROG_TEST_RUN and
 * BPF_F_TEST_XDP_LIVE_FRAMES on the sending end of a veth pair, its XDP_TX
 * really sends each frame through the pair. It rewrites the IPv4 source of
 * every frame, round robin over bench_sources addresses from bench_src_base,
 * and the header checksum with it (the receiver's IP stack checks it).
 * bench_pass is what the netfilter cases attach on the receiving end: veth
 * takes XDP frames only on a peer with an XDP program, and a bare XDP_PASS
 * costs what the bare XDP_DROP floor does, so the floor cancels it out.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "defs.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

const volatile __u32 bench_src_base = 0; /* host order */
const volatile __u32 bench_sources = 1;
/* Frames sent; one generator runs on one CPU at a time. */
__u64 bench_seq = 0;

SEC("xdp")
int bench_gen(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *iph = (void *)(eth + 1);
	__u16 *w = (__u16 *)iph;
	__u32 sum = 0;
	int i;

	if ((void *)(iph + 1) > data_end)
		return XDP_ABORTED;
	/* Live frames may come back from the page pool as the last run left
	 * them: write the whole source and checksum, never adjust them. */
	iph->saddr = bpf_htonl(bench_src_base + (__u32)(bench_seq++ % bench_sources));
	iph->check = 0;
#pragma unroll
	for (i = 0; i < (int)(sizeof(*iph) / 2); i++)
		sum += w[i];
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	iph->check = (__u16)~sum;
	return XDP_TX;
}

SEC("xdp")
int bench_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}
