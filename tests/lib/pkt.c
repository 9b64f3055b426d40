// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <arpa/inet.h>
#include <string.h>
#include "pkt.h"

struct wr {
	__u8 *buf;
	size_t len, cap;
	int err;
};

/* n zeroed bytes at the end of the frame, or NULL (and w->err) if full. */
static __u8 *put(struct wr *w, size_t n)
{
	__u8 *p;

	if (w->err || n > w->cap - w->len) {
		w->err = 1;
		return NULL;
	}
	p = w->buf + w->len;
	memset(p, 0, n);
	w->len += n;
	return p;
}

static void be16(__u8 *p, __u16 v)
{
	p[0] = (__u8)(v >> 8);
	p[1] = (__u8)v;
}

static __u16 csum(const __u8 *p, size_t n)
{
	__u32 s = 0;
	size_t i;

	for (i = 0; i + 1 < n; i += 2)
		s += (__u32)(p[i] << 8 | p[i + 1]);
	if (n & 1)
		s += (__u32)(p[n - 1] << 8);
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (__u16)~s;
}

static int is_ext(__u8 nh)
{
	return nh == PKT_HOPOPTS || nh == PKT_ROUTING || nh == PKT_DSTOPTS || nh == PKT_AH ||
	       nh == PKT_FRAGMENT;
}

/* Size of one IPv6 extension header as built. */
static size_t ext_size(__u8 type, __u8 len)
{
	if (type == PKT_FRAGMENT)
		return 8;
	if (type == PKT_AH)
		return ((size_t)len + 2) * 4; /* AH counts 4-byte words, minus 2 */
	return ((size_t)len + 1) * 8;
}

const char *pkt_src(const struct pkt_spec *s)
{
	return s->src ? s->src : s->family == 6 ? "2001:db8::1" : "198.18.0.1";
}

const char *pkt_dst(const struct pkt_spec *s)
{
	return s->dst ? s->dst : s->family == 6 ? "2001:db8::2" : "198.19.0.1";
}

struct pkt_spec pkt_reply(const struct pkt_spec *s, __u16 tcp_flags)
{
	struct pkt_spec r = {
		.family = s->family,
		.src = pkt_dst(s),
		.dst = pkt_src(s),
		.proto = s->proto,
		.sport = s->dport,
		.dport = s->sport,
		.tcp_flags = tcp_flags,
		.seq = s->seq,
		.fill = s->fill,
		.no_ip_csum = s->no_ip_csum,
	};

	return r;
}

static size_t l4_size(__u8 proto)
{
	switch (proto) {
	case PKT_TCP: return 20;
	case PKT_UDP: return 8;
	case PKT_ICMP:
	case PKT_ICMPV6: return 8;
	default: return 0;
	}
}

static size_t l2_size(const struct pkt_spec *s)
{
	size_t n = 14;
	int i;

	for (i = 0; i < PKT_MAX_TAGS && s->tags[i]; i++)
		n += 4;
	return n;
}

static size_t l3_size(const struct pkt_spec *s)
{
	size_t n;
	int i;

	if (s->family == 4)
		return 20 + (size_t)s->opt_words * 4;
	if (s->family != 6)
		return 0;
	n = 40;
	for (i = 0; i < s->next && i < PKT_MAX_EXT; i++)
		n += ext_size(s->ext[i], s->ext_len[i]);
	return n;
}

size_t pkt_l4_offset(const struct pkt_spec *s)
{
	return l2_size(s) + l3_size(s);
}

static void put_l2(struct wr *w, const struct pkt_spec *s, __u16 l3type)
{
	static const __u8 dmac[6] = { 0x02, 0, 0, 0, 0, 0x02 };
	static const __u8 smac[6] = { 0x02, 0, 0, 0, 0, 0x01 };
	__u8 *eth = put(w, 14);
	__u8 *type;
	int i;

	if (!eth)
		return;
	memcpy(eth, dmac, 6);
	memcpy(eth + 6, smac, 6);
	type = eth + 12;
	for (i = 0; i < PKT_MAX_TAGS && s->tags[i]; i++) {
		__u8 *tag;

		be16(type, s->tags[i]);
		tag = put(w, 4);
		if (!tag)
			return;
		be16(tag, (__u16)(100 + i)); /* VID */
		type = tag + 2;
	}
	be16(type, l3type);
}

/* The quoted packet of an ICMP error: its IP packet, without L2. */
static size_t quote_size(const struct pkt_spec *s)
{
	const struct pkt_spec *q = s->quote;

	if (!q || (s->proto != PKT_ICMP && s->proto != PKT_ICMPV6))
		return 0;
	return l3_size(q) + l4_size(q->proto) + (q->data ? strlen(q->data) : 0) + q->payload;
}

static size_t payload_size(const struct pkt_spec *s)
{
	size_t n = s->payload;

	if (s->data && !n)
		n = strlen(s->data);
	return n + quote_size(s);
}

static void put_l4(struct wr *w, const struct pkt_spec *s, size_t payload)
{
	__u8 *h = put(w, l4_size(s->proto));
	__u8 *pl;
	size_t i, from = 0;

	if (!h)
		return;
	switch (s->proto) {
	case PKT_TCP:
		be16(h, s->sport);
		be16(h + 2, s->dport);
		be16(h + 4, (__u16)(s->seq >> 16));
		be16(h + 6, (__u16)s->seq);
		h[12] = 5 << 4; /* data offset */
		h[13] = (__u8)(s->tcp_flags == PKT_NO_FLAGS ? 0 : s->tcp_flags ? s->tcp_flags
									 : PKT_SYN);
		be16(h + 14, 65535);
		break;
	case PKT_UDP:
		be16(h, s->sport);
		be16(h + 2, s->dport);
		be16(h + 4, (__u16)(8 + payload));
		break;
	case PKT_ICMP:
		h[0] = s->icmp_type ? s->icmp_type : s->quote ? PKT_ICMP_UNREACH : 8 /* echo */;
		h[1] = s->icmp_code;
		break;
	case PKT_ICMPV6:
		h[0] = s->icmp_type ? s->icmp_type : s->quote ? PKT_ICMPV6_UNREACH : 128;
		h[1] = s->icmp_code;
		break;
	}
	pl = put(w, payload);
	if (!pl)
		return;
	if (quote_size(s) && quote_size(s) <= payload) {
		__u8 q[PKT_MAX];
		size_t qn = pkt_build(s->quote, q, sizeof(q)), ql2 = l2_size(s->quote);

		if (qn < ql2 || qn - ql2 != quote_size(s)) {
			w->err = 1;
			return;
		}
		memcpy(pl, q + ql2, qn - ql2);
		from = qn - ql2;
	}
	if (s->data) {
		size_t n = strlen(s->data);

		if (n > payload - from)
			n = payload - from;
		memcpy(pl + from, s->data, n);
		from += n;
	}
	for (i = from; i < payload; i++)
		pl[i] = s->fill ? (__u8)s->fill : (__u8)i;
}

size_t pkt_build(const struct pkt_spec *s, __u8 *buf, size_t cap)
{
	struct wr w = { .buf = buf, .cap = cap };
	size_t l3_off = l2_size(s), payload = payload_size(s);
	size_t hdrs = l2_size(s) + l3_size(s) + l4_size(s->proto);
	__u8 *ip;
	int i;

	if (s->frame_len) {
		if (s->frame_len < hdrs)
			return 0;
		payload = s->frame_len - hdrs;
	}

	if (s->family != 4 && s->family != 6) {
		/* Non-IP: Ethernet (and tags), then opaque payload. */
		__u8 *pl;

		put_l2(&w, s, s->ethertype);
		pl = put(&w, payload);
		if (pl)
			memset(pl, 0xab, payload);
		return w.err ? 0 : w.len;
	}

	put_l2(&w, s, s->ethertype ? s->ethertype : s->family == 4 ? 0x0800 : 0x86dd);
	if (s->family == 4) {
		size_t hl = 20 + (size_t)s->opt_words * 4;

		ip = put(&w, hl);
		if (!ip)
			return 0;
		ip[0] = (__u8)(((s->version ? s->version : 4) << 4) |
			       (s->ihl ? s->ihl : (__u8)(hl / 4)));
		be16(ip + 6, (__u16)((s->more_frags ? 0x2000 : 0) | (s->frag_offset & 0x1fff)));
		ip[8] = 64;
		ip[9] = s->proto;
		if (inet_pton(AF_INET, pkt_src(s), ip + 12) != 1 ||
		    inet_pton(AF_INET, pkt_dst(s), ip + 16) != 1)
			return 0;
		if (s->opt_words) {
			memset(ip + 20, 1, (size_t)s->opt_words * 4 - 1); /* NOP */
			ip[hl - 1] = 0;                                   /* EOL */
		}
		put_l4(&w, s, payload);
		if (w.err)
			return 0;
		ip = buf + l3_off;
		be16(ip + 2, (__u16)(w.len - l3_off));
		if (!s->no_ip_csum)
			be16(ip + 10, csum(ip, hl));
		return w.len;
	}

	ip = put(&w, 40);
	if (!ip)
		return 0;
	ip[0] = (__u8)((s->version ? s->version : 6) << 4);
	ip[6] = s->next ? s->ext[0] : s->proto;
	ip[7] = 64;
	if (inet_pton(AF_INET6, pkt_src(s), ip + 8) != 1 ||
	    inet_pton(AF_INET6, pkt_dst(s), ip + 24) != 1)
		return 0;
	for (i = 0; i < s->next && i < PKT_MAX_EXT; i++) {
		__u8 type = s->ext[i];
		__u8 nh = i + 1 < s->next ? s->ext[i + 1] : s->proto;
		__u8 *x;

		if (!is_ext(type))
			return 0;
		x = put(&w, ext_size(type, s->ext_len[i]));
		if (!x)
			return 0;
		x[0] = nh;
		if (type == PKT_FRAGMENT) {
			be16(x + 2, (__u16)((s->frag_offset << 3) | (s->more_frags ? 1 : 0)));
			x[4] = 0x12; /* identification */
		} else {
			x[1] = s->ext_len[i];
			if (type == PKT_HOPOPTS || type == PKT_DSTOPTS)
				x[2] = 1; /* PadN covering the rest */
			if (type == PKT_HOPOPTS || type == PKT_DSTOPTS)
				x[3] = (__u8)(ext_size(type, s->ext_len[i]) - 4);
		}
	}
	put_l4(&w, s, payload);
	if (w.err)
		return 0;
	ip = buf + l3_off;
	be16(ip + 4, (__u16)(w.len - l3_off - 40));
	return w.len;
}
