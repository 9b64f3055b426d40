/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * pkt.h - build test frames into a byte buffer from a declarative spec, so a
 * table row can say "QinQ, IPv6, hop-by-hop + routing, TCP to port 80" in
 * one initialiser.
 *
 * Every length and checksum field is filled in; fields a test wants to be
 * wrong (IP version, IHL) are overridable. The frame is built whole; a test
 * that wants it truncated passes a shorter length to the program.
 */
#ifndef SLUICE_TEST_PKT_H
#define SLUICE_TEST_PKT_H

#include <stddef.h>
#include <linux/types.h>

#define PKT_MAX 2048
#define PKT_MAX_TAGS 4
#define PKT_MAX_EXT 12

/* Protocol numbers the specs use (netinet/in.h lacks some in strict C11). */
#define PKT_HOPOPTS 0
#define PKT_ICMP 1
#define PKT_TCP 6
#define PKT_UDP 17
#define PKT_ROUTING 43
#define PKT_FRAGMENT 44
#define PKT_AH 51
#define PKT_ICMPV6 58
#define PKT_NONE 59
#define PKT_DSTOPTS 60
#define PKT_GRE 47

/* TCP flags (byte 13 of the header). */
#define PKT_FIN 0x01
#define PKT_SYN 0x02
#define PKT_RST 0x04
#define PKT_PSH 0x08
#define PKT_ACK 0x10
#define PKT_NO_FLAGS 0x100 /* tcp_flags: a segment with none set */

/* pkt_spec.fill: the payload after `data` is all byte b. */
#define PKT_FILL(b) (0x100 | (__u8)(b))

/* ICMP types a spec can ask for by name. */
#define PKT_ICMP_UNREACH 3    /* destination unreachable */
#define PKT_ICMPV6_UNREACH 1

#define PKT_ETH_ARP 0x0806
#define PKT_ETH_8021Q 0x8100
#define PKT_ETH_8021AD 0x88a8

struct pkt_spec {
	/* L2: VLAN TPIDs, outermost first (0 ends the list), then ethertype
	 * (0: from family; set it for non-IP frames, which get `payload`
	 * bytes after the Ethernet header). */
	__u16 tags[PKT_MAX_TAGS];
	__u16 ethertype;

	/* L3 */
	int family;          /* 4 or 6 */
	const char *src;     /* default 198.18.0.1 or 2001:db8::1 */
	const char *dst;     /* default 198.19.0.1 or 2001:db8::2 */
	__u8 proto;          /* PKT_TCP, PKT_UDP, PKT_ICMP/PKT_ICMPV6, or any */
	__u8 version;        /* 0: the family's; set to build a bad header */
	__u8 ihl;            /* IPv4: 0 = 5 + opt_words */
	__u8 opt_words;      /* IPv4 options, in 4-byte words (NOPs, then EOL) */
	__u16 frag_offset;   /* fragment offset in 8-byte units (v4 header, or */
	int more_frags;      /* the v6 fragment header, which must be in ext[]) */

	/* IPv6 extension headers in order, next-header values; their length
	 * unit field (hdrlen) from ext_len[], 0 = the smallest header. */
	int next;
	__u8 ext[PKT_MAX_EXT];
	__u8 ext_len[PKT_MAX_EXT];

	int no_ip_csum;      /* IPv4: leave the header checksum 0 (sluice does not
			      * check it; sluice-bench's frames have it 0) */

	/* L4 */
	__u16 sport, dport;
	__u16 tcp_flags;     /* PKT_SYN, PKT_ACK, ...; 0 = a SYN (PKT_NO_FLAGS: none) */
	__u32 seq;           /* TCP sequence number */
	size_t payload;      /* bytes after the L4 header */
	size_t frame_len;    /* if set: pad the payload so the frame has this length */
	/* The payload starts with these bytes (a 0 byte ends them); payload
	 * 0 means exactly these. The rest is a counting pattern, or with
	 * fill = PKT_FILL(b) the byte b. */
	const char *data;
	int fill;

	/* ICMP/ICMPv6: type and code (default an echo request, or destination
	 * unreachable when quoting). `quote` is the packet the message is
	 * about: its IP header and transport header follow the ICMP header. */
	__u8 icmp_type, icmp_code;
	const struct pkt_spec *quote;
};

/* The addresses a spec stands for, defaults filled in. */
const char *pkt_src(const struct pkt_spec *s);
const char *pkt_dst(const struct pkt_spec *s);

/* The other direction of s's connection (addresses and ports swapped, no
 * payload, no tags kept), with these TCP flags; its headers built the way
 * s's are (seq, fill, no_ip_csum kept). */
struct pkt_spec pkt_reply(const struct pkt_spec *s, __u16 tcp_flags);

/* Returns the frame length, or 0 if the spec is invalid or does not fit. */
size_t pkt_build(const struct pkt_spec *s, __u8 *buf, size_t cap);

/* Offset of the L4 header in the frame last built from s (for tests that
 * truncate inside it). */
size_t pkt_l4_offset(const struct pkt_spec *s);

#endif
