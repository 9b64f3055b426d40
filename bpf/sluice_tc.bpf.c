// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * sluice_tc.bpf.c - TC egress: the server's side of the connections XDP saw
 * open on the same interface. It never changes a packet or its fate
 * (always TC_ACT_OK); it moves flows through their states (bpf/flow.h) and
 * measures the backends (bpf/signals.h): connect latency, time to first
 * response byte, server RSTs, ICMP unreachables sent back, and the status
 * class of plaintext HTTP/1.x responses.
 *
 * Its maps are the XDP object's: the loader hands it their fds.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "defs.h"
#include "sluice.h"
#include "parsing.h"
#include "maps.h"
#include "clock.h"
#include "flow.h"
#include "signals.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define TC_ACT_OK 0
/* Headers we parse must be in the linear part of the skb. */
#define TC_PULL_LEN 128

#define ICMP_DEST_UNREACH 3
#define ICMPV6_DEST_UNREACH 1

/* "HTTP/1.x NNN": the class digit of a response's status line, or 0. */
static __always_inline __u32 http_status_class(struct __sk_buff *skb, __u32 off)
{
	char b[10];

	if (bpf_skb_load_bytes(skb, off, b, sizeof(b)))
		return 0;
	if (b[0] != 'H' || b[1] != 'T' || b[2] != 'T' || b[3] != 'P' || b[4] != '/' ||
	    b[5] != '1' || b[6] != '.' || b[8] != ' ')
		return 0;
	if (b[9] < '1' || b[9] > '5')
		return 0;
	return b[9] - '0';
}

/* An ICMP(v6) destination unreachable going back to a client: the packet it
 * quotes is the client's, so its destination port names the service. */
static __always_inline void icmp_unreach(struct __sk_buff *skb, const struct pkt *p)
{
	__u32 off = p->l4_off + 8, port_off;
	__u8 proto;
	__u16 dport;

	if (p->family == SLUICE_AF_INET) {
		__u8 vihl;

		if (p->icmp_type != ICMP_DEST_UNREACH)
			return;
		if (bpf_skb_load_bytes(skb, off, &vihl, 1) ||
		    bpf_skb_load_bytes(skb, off + 9, &proto, 1))
			return;
		port_off = off + (vihl & 0xF) * 4 + 2;
	} else {
		if (p->icmp_type != ICMPV6_DEST_UNREACH)
			return;
		if (bpf_skb_load_bytes(skb, off + 6, &proto, 1))
			return;
		port_off = off + 40 + 2; /* no extension headers in the quote */
	}
	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
		return;
	if (bpf_skb_load_bytes(skb, port_off, &dport, 2))
		return;
	signals_add(signals_get(bpf_ntohs(dport), 1), SLUICE_SIG_ICMP_UNREACH);
}

SEC("tc")
int sluice_tc_egress(struct __sk_buff *skb)
{
	struct sluice_flow_key k = {};
	struct pkt p = {};
	void *data, *data_end;
	__u32 class;

	/* volatile reads: clang must not keep &skb->data in a register,
	 * which the verifier refuses as a modified context pointer. */
	data = (void *)(long)READ_ONCE(skb->data);
	data_end = (void *)(long)READ_ONCE(skb->data_end);
	if (data_end - data < TC_PULL_LEN && skb->len > data_end - data) {
		bpf_skb_pull_data(skb, skb->len < TC_PULL_LEN ? skb->len : TC_PULL_LEN);
		data = (void *)(long)READ_ONCE(skb->data);
		data_end = (void *)(long)READ_ONCE(skb->data_end);
	}
	if (parse_packet(data, data_end, &p) != PARSE_OK)
		return TC_ACT_OK;

	if (p.proto == SLUICE_PROTO_ICMP) {
		icmp_unreach(skb, &p);
		return TC_ACT_OK;
	}
	if (p.proto != SLUICE_PROTO_TCP || !p.sport || !p.dport)
		return TC_ACT_OK;
	flow_key_from_server(&p, &k);
	if (!(flow_from_server(&k, &p) & SERVER_FIRST_RESPONSE))
		return TC_ACT_OK;
	class = http_status_class(skb, p.payload_off);
	if (class)
		signals_add(signals_get(k.server_port, 0), SLUICE_SIG_HTTP_1XX + class - 1);
	return TC_ACT_OK;
}
