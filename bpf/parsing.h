/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * parsing.h - turn a frame into the few fields sluice decides on.
 *
 * Each helper takes a cursor and data_end and either advances the cursor or
 * reports why it cannot. Model: xdp-tools headers/xdp/parsing_helpers.h.
 */
#ifndef SLUICE_BPF_PARSING_H
#define SLUICE_BPF_PARSING_H

#include "vmlinux.h"
#include <bpf/bpf_endian.h>
#include "defs.h"
#include "sluice.h"

#define MAX_VLAN_TAGS 2      /* 802.1Q, and 802.1ad outside it (QinQ) */
#define MAX_IPV6_EXT_HDRS 8  /* more than this is treated as malformed */

enum parse_result {
	PARSE_OK = 0,        /* L3 and L4 parsed */
	PARSE_NON_IP,        /* not IPv4/IPv6: pass untouched */
	PARSE_MALFORMED_L2,  /* no source address known */
	PARSE_MALFORMED_L4,  /* source known, transport header truncated */
};

/* TCP flags as in byte 13 of the header. */
#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_ACK 0x10

/* What the rest of the program looks at. Addresses stay in network order. */
struct pkt {
	__u8 family;      /* SLUICE_AF_INET or SLUICE_AF_INET6 */
	__u8 proto;       /* enum sluice_proto */
	__u16 dport;      /* host order; 0 = no port (ICMP, non-first fragment) */
	__u32 len;        /* whole frame, for byte limits */
	__u32 saddr[4];   /* IPv4 in saddr[0] */
	__u32 daddr[4];
	__u16 sport;      /* host order, 0 like dport */
	__u8 tcp_flags;   /* TCP_* of a first fragment, else 0 */
	__u8 icmp_type;   /* ICMP/ICMPv6 type of a first fragment */
	__u16 l4_off;     /* offset of the transport header in the frame */
	__u16 payload_off;/* TCP: offset of the payload */
	__u32 payload_len;/* TCP: payload bytes, from the IP lengths (not the
			   * frame, which Ethernet may have padded) */
	__u32 ip_end;     /* offset where the IP packet ends, by its header */
};

struct cursor {
	void *pos;
};

static __always_inline int parse_eth(struct cursor *c, void *data_end, __u16 *eth_proto)
{
	struct ethhdr *eth = c->pos;
	struct vlan_hdr *vh;
	__u16 proto;
	int i;

	if ((void *)(eth + 1) > data_end)
		return -1;
	proto = eth->h_proto;
	c->pos = eth + 1;

#pragma unroll
	for (i = 0; i < MAX_VLAN_TAGS; i++) {
		if (proto != bpf_htons(ETH_P_8021Q) && proto != bpf_htons(ETH_P_8021AD))
			break;
		vh = c->pos;
		if ((void *)(vh + 1) > data_end)
			return -1;
		proto = vh->h_vlan_encapsulated_proto;
		c->pos = vh + 1;
	}
	*eth_proto = bpf_ntohs(proto);
	return 0;
}

/* Reads the ports for TCP/UDP (and TCP's flags and payload), checks
 * ICMP's fixed header. first_fragment is 0 for a non-first fragment, which
 * carries no L4 header. */
static __always_inline int parse_l4(struct cursor *c, void *data, void *data_end,
				    __u8 ipproto, int first_fragment, struct pkt *p)
{
	p->l4_off = c->pos - data;
	switch (ipproto) {
	case IPPROTO_TCP: {
		struct tcphdr *th = c->pos;
		__u32 hdr_end;

		p->proto = SLUICE_PROTO_TCP;
		if (!first_fragment)
			return 0;
		if ((void *)(th + 1) > data_end)
			return -1;
		p->dport = bpf_ntohs(th->dest);
		p->sport = bpf_ntohs(th->source);
		p->tcp_flags = ((__u8 *)th)[13];
		hdr_end = p->l4_off + th->doff * 4;
		p->payload_off = hdr_end;
		/* A sender may lie in its lengths: the payload is only what
		 * both the IP header and the TCP header allow. */
		if (p->ip_end > hdr_end)
			p->payload_len = p->ip_end - hdr_end;
		return 0;
	}
	case IPPROTO_UDP: {
		struct udphdr *uh = c->pos;

		p->proto = SLUICE_PROTO_UDP;
		if (!first_fragment)
			return 0;
		if ((void *)(uh + 1) > data_end)
			return -1;
		p->dport = bpf_ntohs(uh->dest);
		p->sport = bpf_ntohs(uh->source);
		return 0;
	}
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6: {
		/* type, code, checksum and the 4-byte rest-of-header */
		__u8 *ih = c->pos;

		p->proto = SLUICE_PROTO_ICMP;
		if (!first_fragment)
			return 0;
		if ((void *)(ih + 8) > data_end)
			return -1;
		p->icmp_type = ih[0];
		return 0;
	}
	default:
		p->proto = SLUICE_PROTO_OTHER;
		return 0;
	}
}

static __always_inline enum parse_result parse_ipv4(struct cursor *c, void *data,
						    void *data_end, struct pkt *p)
{
	struct iphdr *iph = c->pos;
	__u32 hdr_len;
	__u16 frag;

	if ((void *)(iph + 1) > data_end)
		return PARSE_MALFORMED_L2;
	if (iph->version != 4 || iph->ihl < 5)
		return PARSE_MALFORMED_L2;
	hdr_len = iph->ihl * 4;
	if (c->pos + hdr_len > data_end)
		return PARSE_MALFORMED_L2;

	p->family = SLUICE_AF_INET;
	p->saddr[0] = iph->saddr;
	p->daddr[0] = iph->daddr;
	p->ip_end = (c->pos - data) + bpf_ntohs(iph->tot_len);
	c->pos += hdr_len;

	frag = bpf_ntohs(iph->frag_off);
	if (parse_l4(c, data, data_end, iph->protocol, (frag & IP_OFFSET) == 0, p))
		return PARSE_MALFORMED_L4;
	return PARSE_OK;
}

/* Extension headers: Hop-by-Hop, Routing, Destination Options and AH have a
 * next-header byte and a length; Fragment is fixed size and may end the walk. */
static __always_inline enum parse_result parse_ipv6(struct cursor *c, void *data,
						    void *data_end, struct pkt *p)
{
	struct ipv6hdr *ip6h = c->pos;
	int first_fragment = 1;
	__u8 nexthdr;
	int i;

	if ((void *)(ip6h + 1) > data_end)
		return PARSE_MALFORMED_L2;
	if (ip6h->version != 6)
		return PARSE_MALFORMED_L2;

	p->family = SLUICE_AF_INET6;
	__builtin_memcpy(p->saddr, &ip6h->saddr, 16);
	__builtin_memcpy(p->daddr, &ip6h->daddr, 16);
	p->ip_end = (c->pos - data) + sizeof(*ip6h) + bpf_ntohs(ip6h->payload_len);
	nexthdr = ip6h->nexthdr;
	c->pos = ip6h + 1;

#pragma unroll
	for (i = 0; i < MAX_IPV6_EXT_HDRS; i++) {
		struct ipv6_opt_hdr *oh = c->pos;

		switch (nexthdr) {
		case IPPROTO_HOPOPTS:
		case IPPROTO_ROUTING:
		case IPPROTO_DSTOPTS:
			if ((void *)(oh + 1) > data_end)
				return PARSE_MALFORMED_L4;
			nexthdr = oh->nexthdr;
			c->pos += (oh->hdrlen + 1) * 8;
			break;
		case IPPROTO_AH:
			if ((void *)(oh + 1) > data_end)
				return PARSE_MALFORMED_L4;
			nexthdr = oh->nexthdr;
			c->pos += (oh->hdrlen + 2) * 4;
			break;
		case IPPROTO_FRAGMENT: {
			struct frag_hdr *fh = c->pos;

			if ((void *)(fh + 1) > data_end)
				return PARSE_MALFORMED_L4;
			nexthdr = fh->nexthdr;
			if (bpf_ntohs(fh->frag_off) & 0xFFF8)
				first_fragment = 0;
			c->pos = fh + 1;
			break;
		}
		case IPPROTO_NONE:
			p->proto = SLUICE_PROTO_OTHER;
			return PARSE_OK;
		default:
			goto transport;
		}
		if (!first_fragment)
			goto transport; /* headers after the fragment header are in fragment 0 */
	}
	/* Walked the most we do; what follows must not be one more. */
	switch (nexthdr) {
	case IPPROTO_HOPOPTS:
	case IPPROTO_ROUTING:
	case IPPROTO_DSTOPTS:
	case IPPROTO_AH:
	case IPPROTO_FRAGMENT:
		return PARSE_MALFORMED_L4;
	case IPPROTO_NONE:
		p->proto = SLUICE_PROTO_OTHER;
		return PARSE_OK;
	}

transport:
	if (parse_l4(c, data, data_end, nexthdr, first_fragment, p))
		return PARSE_MALFORMED_L4;
	return PARSE_OK;
}

static __always_inline enum parse_result parse_packet(void *data, void *data_end, struct pkt *p)
{
	struct cursor c = { .pos = data };
	__u16 eth_proto;

	p->len = data_end - data;
	if (parse_eth(&c, data_end, &eth_proto))
		return PARSE_MALFORMED_L2;
	if (eth_proto == ETH_P_IP)
		return parse_ipv4(&c, data, data_end, p);
	if (eth_proto == ETH_P_IPV6)
		return parse_ipv6(&c, data, data_end, p);
	if (eth_proto == ETH_P_8021Q || eth_proto == ETH_P_8021AD)
		return PARSE_MALFORMED_L2; /* a third tag: more than we walk */
	return PARSE_NON_IP;
}

#endif
