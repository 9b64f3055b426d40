// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#define TEST_GROUP "bpf" /* loads BPF programs or creates maps: needs root (harness.h) */
/*
 * Rule matching: which rules a frame reaches, by source prefix, destination
 * port and protocol class (docs/design.md, "Classifier"). Every rule of a
 * table admits one frame and then, with the test clock standing still, drops
 * the next; each frame is sent twice, so a match shows in the verdicts, in
 * the matching rules' counters, and in no other rule's counters.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <bpf/bpf.h>
#include "fixture.h"
#include "harness.h"
#include "stats.h"

#define B(x) (1ULL << (x))
#define LIMIT "pps 1 burst 1 key rule"

struct match_case {
	const char *name;
	struct pkt_spec s;
	__u64 want;  /* slots of the rules it matches */
	__u64 flows; /* connections its first frame opens (a passed TCP SYN
		      * with a port; the second is a retransmission) */
};

static const char *vname(int v)
{
	return v == XDP_PASS_V ? "PASS" : v == XDP_DROP_V ? "DROP" : "error";
}

static int popcount64(__u64 m)
{
	int n = 0;

	for (; m; m &= m - 1)
		n++;
	return n;
}

static void rule_stats(struct fx *f, int nrules, struct sluice_rule_stats *out)
{
	int i;

	for (i = 0; i < nrules; i++)
		out[i] = fx_rstats(f, i);
}

static int clear_buckets(struct fx *f)
{
	struct sluice_bucket_key k;

	while (!bpf_map_get_next_key(f->m.buckets, NULL, &k))
		if (!CHECK(bpf_map_delete_elem(f->m.buckets, &k) == 0, "clear buckets: %s",
			   strerror(errno)))
			return -1;
	return 0;
}

/* "rule add MATCH LIMIT" for each match, in one transaction: slots 0..n-1. */
static int load_rules(struct fx *f, const char *const *match, int n)
{
	char lines[SLUICE_MAX_RULES][160];
	const char *lp[SLUICE_MAX_RULES];
	__u32 id0;
	int i;

	for (i = 0; i < n; i++) {
		snprintf(lines[i], sizeof(lines[i]), "rule add %s " LIMIT, match[i]);
		lp[i] = lines[i];
	}
	if (fx_policy(f, lp, n, NULL, 0) < 0)
		return -1;
	id0 = fx_rule_id(f, 0);
	for (i = 0; i < n; i++)
		if (!CHECK(id0 && fx_rule_id(f, i) == id0 + (__u32)i, "rule '%s' not in slot %d",
			   match[i], i))
			return -1;
	return 0;
}

static void run_match(const char *const *match, int nrules, const struct match_case *cases,
		      size_t ncases)
{
	struct sluice_rule_stats before[SLUICE_MAX_RULES], after[SLUICE_MAX_RULES];
	__u64 c0[SLUICE_CNT_MAX], c1[SLUICE_CNT_MAX], want[SLUICE_CNT_MAX];
	__u8 buf[PKT_MAX];
	struct fx f;
	size_t i;
	int j;

	if (fx_open(&f, 0))
		return;
	if (load_rules(&f, match, nrules))
		goto out;
	for (i = 0; i < ncases; i++) {
		const struct match_case *c = &cases[i];
		__u64 len = pkt_build(&c->s, buf, sizeof(buf)), got = 0;
		int v1, v2;

		if (!CHECK(len > 0, "%s: frame does not build", c->name))
			continue;
		/* Every rule gets its one token back. */
		if (clear_buckets(&f))
			break;
		rule_stats(&f, nrules, before);
		fx_counters(&f, c0);
		v1 = fx_run(&f, buf, len);
		v2 = fx_run(&f, buf, len);
		fx_counters(&f, c1);
		rule_stats(&f, nrules, after);

		CHECK(v1 == XDP_PASS_V, "%s: first frame: %s, want PASS", c->name, vname(v1));
		CHECK(v2 == (c->want ? XDP_DROP_V : XDP_PASS_V), "%s: second frame: %s, want %s",
		      c->name, vname(v2), c->want ? "DROP" : "PASS");
		for (j = 0; j < nrules; j++) {
			const struct sluice_rule_stats *b = &before[j], *a = &after[j];
			int hit = !!(c->want & B(j));

			if (a->passed_pkts != b->passed_pkts || a->dropped_pkts != b->dropped_pkts)
				got |= B(j);
			CHECK(a->passed_pkts - b->passed_pkts == (__u64)hit &&
			      a->passed_bytes - b->passed_bytes == hit * len &&
			      a->dropped_pkts - b->dropped_pkts == (__u64)hit &&
			      a->dropped_bytes - b->dropped_bytes == hit * len,
			      "%s: rule '%s' counted +%llu/%llu B passed, +%llu/%llu B dropped",
			      c->name, match[j],
			      (unsigned long long)(a->passed_pkts - b->passed_pkts),
			      (unsigned long long)(a->passed_bytes - b->passed_bytes),
			      (unsigned long long)(a->dropped_pkts - b->dropped_pkts),
			      (unsigned long long)(a->dropped_bytes - b->dropped_bytes));
		}
		CHECK(got == c->want, "%s: matched rules 0x%llx, want 0x%llx", c->name,
		      (unsigned long long)got, (unsigned long long)c->want);

		memset(want, 0, sizeof(want));
		want[SLUICE_CNT_PACKETS] = 2;
		want[SLUICE_CNT_DROP_RATE] = c->want ? 1 : 0;
		want[SLUICE_CNT_STATE_INSERT] = (__u64)popcount64(c->want);
		want[SLUICE_CNT_FLOW_INSERT] = c->flows;
		for (j = 0; j < SLUICE_CNT_MAX; j++)
			CHECK(c1[j] - c0[j] == want[j], "%s: counter %s +%llu, want +%llu", c->name,
			      stats_counter_names[j], (unsigned long long)(c1[j] - c0[j]),
			      (unsigned long long)want[j]);
	}
out:
	fx_close(&f);
}

/* --- source prefixes ---------------------------------------------------- */

enum { S4_24, S4_25, S4_26, S4_32, S4_0, S6_32, S6_48, S6_64, S6_128, S6_0, S_NRULES };

static const char *const src_rules[S_NRULES] = {
	[S4_24] = "src 198.18.0.0/24",
	[S4_25] = "src 198.18.0.128/25",
	[S4_26] = "src 198.18.0.64/26",
	[S4_32] = "src 198.18.0.7/32",
	[S4_0] = "src 0.0.0.0/0",
	[S6_32] = "src 2001:db8::/32",
	[S6_48] = "src 2001:db8:1::/48",
	[S6_64] = "src 2001:db8:1:2::/64",
	[S6_128] = "src 2001:db8:1:2::5/128",
	[S6_0] = "src ::/0",
};

#define UDP4(a) { .family = 4, .src = (a), .proto = PKT_UDP, .sport = 5000, .dport = 9 }
#define UDP6(a) { .family = 6, .src = (a), .proto = PKT_UDP, .sport = 5000, .dport = 9 }
#define IN4_24 (B(S4_24) | B(S4_0))
#define IN6_48 (B(S6_32) | B(S6_48) | B(S6_0))

static const struct match_case src_cases[] = {
	{ "v4 first of the /24", UDP4("198.18.0.0"), IN4_24, 0 },
	{ "v4 the /32", UDP4("198.18.0.7"), IN4_24 | B(S4_32), 0 },
	{ "v4 below the /32", UDP4("198.18.0.6"), IN4_24, 0 },
	{ "v4 above the /32", UDP4("198.18.0.8"), IN4_24, 0 },
	{ "v4 below the /26", UDP4("198.18.0.63"), IN4_24, 0 },
	{ "v4 first of the /26", UDP4("198.18.0.64"), IN4_24 | B(S4_26), 0 },
	{ "v4 last of the /26", UDP4("198.18.0.127"), IN4_24 | B(S4_26), 0 },
	{ "v4 first of the /25", UDP4("198.18.0.128"), IN4_24 | B(S4_25), 0 },
	{ "v4 last of the /24 and /25", UDP4("198.18.0.255"), IN4_24 | B(S4_25), 0 },
	{ "v4 just past the /24", UDP4("198.18.1.0"), B(S4_0), 0 },
	{ "v4 just before the /24", UDP4("198.17.255.255"), B(S4_0), 0 },
	{ "v4 0.0.0.0", UDP4("0.0.0.0"), B(S4_0), 0 },
	{ "v4 255.255.255.255", UDP4("255.255.255.255"), B(S4_0), 0 },
	/* 32.1.13.184 is 0x20010db8: the bits of 2001:db8::/32. */
	{ "v4 with the bits of a v6 prefix", UDP4("32.1.13.184"), B(S4_0), 0 },

	{ "v6 the /128", UDP6("2001:db8:1:2::5"), IN6_48 | B(S6_64) | B(S6_128), 0 },
	{ "v6 below the /128", UDP6("2001:db8:1:2::4"), IN6_48 | B(S6_64), 0 },
	{ "v6 above the /128", UDP6("2001:db8:1:2::6"), IN6_48 | B(S6_64), 0 },
	{ "v6 first of the /64", UDP6("2001:db8:1:2::"), IN6_48 | B(S6_64), 0 },
	{ "v6 last of the /64", UDP6("2001:db8:1:2:ffff:ffff:ffff:ffff"), IN6_48 | B(S6_64), 0 },
	{ "v6 just past the /64", UDP6("2001:db8:1:3::"), IN6_48, 0 },
	{ "v6 just before the /64", UDP6("2001:db8:1:1:ffff:ffff:ffff:ffff"), IN6_48, 0 },
	{ "v6 first of the /48", UDP6("2001:db8:1::"), IN6_48, 0 },
	{ "v6 last of the /48", UDP6("2001:db8:1:ffff:ffff:ffff:ffff:ffff"), IN6_48, 0 },
	{ "v6 just past the /48", UDP6("2001:db8:2::"), B(S6_32) | B(S6_0), 0 },
	{ "v6 just before the /48", UDP6("2001:db8:0:ffff:ffff:ffff:ffff:ffff"),
	  B(S6_32) | B(S6_0), 0 },
	{ "v6 just past the /32", UDP6("2001:db9::"), B(S6_0), 0 },
	{ "v6 just before the /32", UDP6("2001:db7:ffff:ffff:ffff:ffff:ffff:ffff"), B(S6_0), 0 },
	/* c612:0007 is 198.18.0.7: the family tag keeps it off the v4 rules. */
	{ "v6 with the bits of a v4 /32", UDP6("c612:7::1"), B(S6_0), 0 },
	{ "v6 v4-mapped address", UDP6("::ffff:198.18.0.7"), B(S6_0), 0 },
	{ "v6 ::", UDP6("::"), B(S6_0), 0 },
};

TEST(match_source_prefix)
{
	run_match(src_rules, S_NRULES, src_cases, NELEM(src_cases));
}

/* Two rules whose prefixes nest, and nothing covering the rest of the
 * space: an address in the inner prefix reaches both rules, one outside it
 * only the outer rule, one outside both no rule. The v4 pair has the inner
 * prefix in the lower slot, the v6 pair the outer, so neither slot order
 * nor the order the classifier meets the prefixes decides the result. */
enum { O4_24, O4_8, O6_32, O6_48, O_NRULES };

static const char *const overlap_rules[O_NRULES] = {
	[O4_24] = "src 198.18.0.0/24",
	[O4_8] = "src 198.0.0.0/8",
	[O6_32] = "src 2001:db8::/32",
	[O6_48] = "src 2001:db8:1::/48",
};

static const struct match_case overlap_cases[] = {
	{ "v4 first of the /24", UDP4("198.18.0.0"), B(O4_24) | B(O4_8), 0 },
	{ "v4 last of the /24", UDP4("198.18.0.255"), B(O4_24) | B(O4_8), 0 },
	{ "v4 just past the /24", UDP4("198.18.1.0"), B(O4_8), 0 },
	{ "v4 just before the /24", UDP4("198.17.255.255"), B(O4_8), 0 },
	{ "v4 first of the /8", UDP4("198.0.0.0"), B(O4_8), 0 },
	{ "v4 last of the /8", UDP4("198.255.255.255"), B(O4_8), 0 },
	{ "v4 just past the /8", UDP4("199.0.0.0"), 0, 0 },
	{ "v4 just before the /8", UDP4("197.255.255.255"), 0, 0 },
	{ "v6 first of the /48", UDP6("2001:db8:1::"), B(O6_32) | B(O6_48), 0 },
	{ "v6 last of the /48", UDP6("2001:db8:1:ffff:ffff:ffff:ffff:ffff"),
	  B(O6_32) | B(O6_48), 0 },
	{ "v6 just past the /48", UDP6("2001:db8:2::"), B(O6_32), 0 },
	{ "v6 just before the /48", UDP6("2001:db8:0:ffff:ffff:ffff:ffff:ffff"), B(O6_32), 0 },
	{ "v6 first of the /32", UDP6("2001:db8::"), B(O6_32), 0 },
	{ "v6 last of the /32", UDP6("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"), B(O6_32), 0 },
	{ "v6 just past the /32", UDP6("2001:db9::"), 0, 0 },
	{ "v6 just before the /32", UDP6("2001:db7:ffff:ffff:ffff:ffff:ffff:ffff"), 0, 0 },
};

TEST(match_overlapping_prefixes)
{
	run_match(overlap_rules, O_NRULES, overlap_cases, NELEM(overlap_cases));
}

/* --- destination ports and protocols ------------------------------------- */

enum { P_TCP80, P_ANY80, P_UDP1000, P_ANY1000, P_TCP443, P_UDP53, P_LO, P_HI, P_TCP, P_UDP,
       P_ICMP, P_ALL, P_NRULES };

static const char *const port_rules[P_NRULES] = {
	[P_TCP80] = "dport 80 proto tcp",
	[P_ANY80] = "dport 80 proto any",
	[P_UDP1000] = "dport 1000-2000 proto udp",
	[P_ANY1000] = "dport 1000-2000",
	[P_TCP443] = "dport 443-443 proto tcp",
	[P_UDP53] = "dport 53 proto udp",
	[P_LO] = "dport 1",
	[P_HI] = "dport 65535",
	[P_TCP] = "proto tcp",
	[P_UDP] = "proto udp",
	[P_ICMP] = "proto icmp",
	[P_ALL] = "name all", /* no match words: everything */
};

#define TCP(p) { .family = 4, .proto = PKT_TCP, .sport = 5000, .dport = (p) }
#define UDP(p) { .family = 4, .proto = PKT_UDP, .sport = 5000, .dport = (p) }
#define ANYTCP (B(P_TCP) | B(P_ALL))
#define ANYUDP (B(P_UDP) | B(P_ALL))

static const struct match_case port_cases[] = {
	{ "tcp 79", TCP(79), ANYTCP, 1 },
	{ "tcp 80", TCP(80), ANYTCP | B(P_TCP80) | B(P_ANY80), 1 },
	{ "tcp 81", TCP(81), ANYTCP, 1 },
	{ "udp 80", UDP(80), ANYUDP | B(P_ANY80), 0 },
	{ "udp 999", UDP(999), ANYUDP, 0 },
	{ "udp 1000", UDP(1000), ANYUDP | B(P_UDP1000) | B(P_ANY1000), 0 },
	{ "udp 1500", UDP(1500), ANYUDP | B(P_UDP1000) | B(P_ANY1000), 0 },
	{ "udp 2000", UDP(2000), ANYUDP | B(P_UDP1000) | B(P_ANY1000), 0 },
	{ "udp 2001", UDP(2001), ANYUDP, 0 },
	{ "tcp 999", TCP(999), ANYTCP, 1 },
	{ "tcp 1000", TCP(1000), ANYTCP | B(P_ANY1000), 1 },
	{ "tcp 2000", TCP(2000), ANYTCP | B(P_ANY1000), 1 },
	{ "tcp 2001", TCP(2001), ANYTCP, 1 },
	{ "tcp 442", TCP(442), ANYTCP, 1 },
	{ "tcp 443", TCP(443), ANYTCP | B(P_TCP443), 1 },
	{ "tcp 444", TCP(444), ANYTCP, 1 },
	{ "udp 53", UDP(53), ANYUDP | B(P_UDP53), 0 },
	{ "tcp 53", TCP(53), ANYTCP, 1 },
	{ "udp 1", UDP(1), ANYUDP | B(P_LO), 0 },
	{ "tcp 2", TCP(2), ANYTCP, 1 },
	{ "tcp 65535", TCP(65535), ANYTCP | B(P_HI), 1 },
	{ "udp 65534", UDP(65534), ANYUDP, 0 },
	/* Port 0 is the classifier's "no port": only port-less rules. */
	{ "tcp 0", TCP(0), ANYTCP, 0 /* no port: not a trackable connection */ },
	{ "udp 0", UDP(0), ANYUDP, 0 },
	{ "icmp", { .family = 4, .proto = PKT_ICMP }, B(P_ICMP) | B(P_ALL), 0 },
	{ "icmpv6 counts as icmp", { .family = 6, .proto = PKT_ICMPV6 }, B(P_ICMP) | B(P_ALL), 0 },
	{ "802.1q icmp", { .tags = { PKT_ETH_8021Q }, .family = 4, .proto = PKT_ICMP },
	  B(P_ICMP) | B(P_ALL), 0 },
	{ "gre: other protocol", { .family = 4, .proto = PKT_GRE, .payload = 8 }, B(P_ALL), 0 },
	{ "v6 no next header", { .family = 6, .proto = PKT_NONE }, B(P_ALL), 0 },
	{ "v6 tcp 80", { .family = 6, .proto = PKT_TCP, .dport = 80 },
	  ANYTCP | B(P_TCP80) | B(P_ANY80), 1 },
	{ "v6 udp 1000", { .family = 6, .proto = PKT_UDP, .dport = 1000 },
	  ANYUDP | B(P_UDP1000) | B(P_ANY1000), 0 },
	{ "v6 udp 2001", { .family = 6, .proto = PKT_UDP, .dport = 2001 }, ANYUDP, 0 },
	{ "v6 tcp 65535", { .family = 6, .proto = PKT_TCP, .dport = 65535 }, ANYTCP | B(P_HI), 1 },
	/* The header bytes say port 53, but a non-first fragment has none. */
	{ "v4 non-first fragment udp", { .family = 4, .frag_offset = 10, .proto = PKT_UDP,
					 .dport = 53, .payload = 16 }, ANYUDP, 0 },
	{ "v6 non-first fragment tcp", { .family = 6, .next = 1, .ext = { PKT_FRAGMENT },
					 .frag_offset = 10, .proto = PKT_TCP, .dport = 80,
					 .payload = 16 }, ANYTCP, 0 /* no TCP header */ },
};

TEST(match_port_and_protocol)
{
	run_match(port_rules, P_NRULES, port_cases, NELEM(port_cases));
}

/* --- combinations: every dimension must match ----------------------------- */

enum { C_WEB4, C_DNS6, C_ICMP4, C_RANGE4, C_ICMP6, C_TCP6, C_NRULES };

static const char *const combo_rules[C_NRULES] = {
	[C_WEB4] = "src 198.18.0.0/24 dport 80 proto tcp",
	[C_DNS6] = "src 2001:db8:1::/48 dport 53 proto udp",
	[C_ICMP4] = "src 198.18.0.0/24 proto icmp",
	[C_RANGE4] = "src 198.18.0.128/25 dport 8000-8080",
	[C_ICMP6] = "src 2001:db8:1::/48 proto icmp",
	[C_TCP6] = "src 2001:db8:1:2::/64 proto tcp",
};

#define F4(a, pr, p) { .family = 4, .src = (a), .proto = (pr), .sport = 5000, .dport = (p) }
#define F6(a, pr, p) { .family = 6, .src = (a), .proto = (pr), .sport = 5000, .dport = (p) }

static const struct match_case combo_cases[] = {
	{ "v4 web: all three match", F4("198.18.0.1", PKT_TCP, 80), B(C_WEB4), 1 },
	{ "v4 web: source outside", F4("198.18.1.1", PKT_TCP, 80), 0, 1 },
	{ "v4 web: udp", F4("198.18.0.1", PKT_UDP, 80), 0, 0 },
	{ "v4 web: port 81", F4("198.18.0.1", PKT_TCP, 81), 0, 1 },
	{ "v4 icmp from the /24", F4("198.18.0.1", PKT_ICMP, 0), B(C_ICMP4), 0 },
	{ "v4 icmp from outside", F4("198.18.1.1", PKT_ICMP, 0), 0, 0 },
	{ "v4 range: tcp 8000 from the /25", F4("198.18.0.200", PKT_TCP, 8000),
	  B(C_RANGE4), 1 },
	{ "v4 range: udp 8080 from the /25", F4("198.18.0.200", PKT_UDP, 8080),
	  B(C_RANGE4), 0 },
	{ "v4 range: tcp 8081", F4("198.18.0.200", PKT_TCP, 8081), 0, 1 },
	{ "v4 range: tcp 7999", F4("198.18.0.200", PKT_TCP, 7999), 0, 1 },
	{ "v4 range: source below the /25", F4("198.18.0.127", PKT_TCP, 8000), 0, 1 },
	{ "v4 web from the /25: only web", F4("198.18.0.200", PKT_TCP, 80), B(C_WEB4), 1 },
	{ "v4 icmp from the /25: only icmp", F4("198.18.0.200", PKT_ICMP, 0), B(C_ICMP4), 0 },
	{ "v4 udp 53: the dns rule is v6", F4("198.18.0.1", PKT_UDP, 53), 0, 0 },
	{ "v6 dns: all three match", F6("2001:db8:1::9", PKT_UDP, 53), B(C_DNS6), 0 },
	{ "v6 dns: tcp", F6("2001:db8:1::9", PKT_TCP, 53), 0, 1 },
	{ "v6 dns: port 54", F6("2001:db8:1::9", PKT_UDP, 54), 0, 0 },
	{ "v6 dns: source outside", F6("2001:db8:2::9", PKT_UDP, 53), 0, 0 },
	{ "v6 icmpv6 from the /48", F6("2001:db8:1::9", PKT_ICMPV6, 0), B(C_ICMP6), 0 },
	{ "v6 tcp from the /64", F6("2001:db8:1:2::9", PKT_TCP, 22), B(C_TCP6), 1 },
	{ "v6 icmpv6 from the /64", F6("2001:db8:1:2::9", PKT_ICMPV6, 0), B(C_ICMP6), 0 },
	{ "v6 dns from the /64", F6("2001:db8:1:2::9", PKT_UDP, 53), B(C_DNS6), 0 },
	{ "v6 tcp just past the /64", F6("2001:db8:1:3::9", PKT_TCP, 22), 0, 1 },
	{ "v6 icmpv6 with the bits of the v4 /24", F6("c612:1::", PKT_ICMPV6, 0), 0, 0 },
};

TEST(match_combinations)
{
	run_match(combo_rules, C_NRULES, combo_cases, NELEM(combo_cases));
}

/* --- a full table ---------------------------------------------------------- */

#define PORT0 1000 /* rule i matches udp to PORT0 + i */

static int send_udp(struct fx *f, __u16 port, __u64 *len)
{
	struct pkt_spec s = UDP(port);
	__u8 buf[PKT_MAX];
	size_t n = pkt_build(&s, buf, sizeof(buf));

	*len = n;
	return n ? fx_run(f, buf, n) : -EINVAL;
}

static int read_rules(struct fx *f, struct sluice_rule *r)
{
	__u32 k;

	for (k = 0; k < SLUICE_MAX_RULES; k++)
		if (!CHECK(bpf_map_lookup_elem(f->m.rules, &k, &r[k]) == 0, "read slot %u", k))
			return -1;
	return 0;
}

static int read_cfg(struct fx *f, struct sluice_config *c)
{
	__u32 zero = 0;

	return CHECK(bpf_map_lookup_elem(f->m.cfg, &zero, c) == 0, "read config") ? 0 : -1;
}

/* Stats of every slot equal except `slot`, which moved by exactly d. */
static int stats_moved(const struct sluice_rule_stats *b, const struct sluice_rule_stats *a,
		       int slot, const struct sluice_rule_stats *d)
{
	int i, bad = 0;

	for (i = 0; i < SLUICE_MAX_RULES; i++) {
		const struct sluice_rule_stats z = { 0 }, *w = i == slot ? d : &z;

		bad += a[i].passed_pkts - b[i].passed_pkts != w->passed_pkts ||
		       a[i].passed_bytes - b[i].passed_bytes != w->passed_bytes ||
		       a[i].dropped_pkts - b[i].dropped_pkts != w->dropped_pkts ||
		       a[i].dropped_bytes - b[i].dropped_bytes != w->dropped_bytes;
	}
	return bad;
}

/* All 64 slots in use: each frame reaches exactly its rule; a 65th rule is
 * refused and changes nothing; a freed slot is reused by a rule that starts
 * with clean stats and a clean bucket (bucket keys carry the rule id). */
TEST(match_64_rules)
{
	static struct sluice_rule rules0[SLUICE_MAX_RULES], rules1[SLUICE_MAX_RULES];
	struct sluice_rule_stats before[SLUICE_MAX_RULES], after[SLUICE_MAX_RULES];
	struct sluice_config cfg0, cfg1;
	struct sluice_bucket_key bk = { 0 };
	struct sluice_bucket b;
	struct sluice_deny_val d;
	__u64 len = 0, c0[SLUICE_CNT_MAX], c1[SLUICE_CNT_MAX];
	int i, slot, bad_slot = 0, bad_verdict = 0, bad_stats = 0;
	__u32 old_id, new_id;
	char line[128], err[256];
	const char *lines[2];
	struct fx f;

	if (fx_open(&f, 0))
		return;
	for (i = 0; i < SLUICE_MAX_RULES; i++) {
		snprintf(line, sizeof(line), "rule add name r%d dport %d proto udp " LIMIT, i,
			 PORT0 + i);
		slot = fx_cmd(&f, line);
		if (slot < 0)
			goto out;
		bad_slot += slot != i;
	}
	CHECK(bad_slot == 0, "%d rules not in the slot of their order", bad_slot);

	fx_counters(&f, c0);
	for (i = 0; i < SLUICE_MAX_RULES; i++) {
		struct sluice_rule_stats d1;

		rule_stats(&f, SLUICE_MAX_RULES, before);
		bad_verdict += send_udp(&f, (__u16)(PORT0 + i), &len) != XDP_PASS_V;
		bad_verdict += send_udp(&f, (__u16)(PORT0 + i), &len) != XDP_DROP_V;
		rule_stats(&f, SLUICE_MAX_RULES, after);
		d1 = (struct sluice_rule_stats){ 1, len, 1, len };
		bad_stats += stats_moved(before, after, i, &d1);
	}
	CHECK(bad_verdict == 0, "%d frames to a rule's port not passed, then dropped",
	      bad_verdict);
	CHECK(bad_stats == 0, "%d slot counters wrong after frames to each rule", bad_stats);
	fx_counters(&f, c1);
	CHECK_EQ(c1[SLUICE_CNT_DROP_RATE] - c0[SLUICE_CNT_DROP_RATE], SLUICE_MAX_RULES,
		 "rate drops");
	CHECK_EQ(c1[SLUICE_CNT_STATE_INSERT] - c0[SLUICE_CNT_STATE_INSERT], SLUICE_MAX_RULES,
		 "buckets created");

	/* Ports just outside the table reach no rule. */
	rule_stats(&f, SLUICE_MAX_RULES, before);
	CHECK(send_udp(&f, PORT0 - 1, &len) == XDP_PASS_V, "port below the table");
	CHECK(send_udp(&f, PORT0 + SLUICE_MAX_RULES, &len) == XDP_PASS_V,
	      "port above the table");
	rule_stats(&f, SLUICE_MAX_RULES, after);
	CHECK(stats_moved(before, after, -1, NULL) == 0, "a frame outside the table hit a rule");

	/* The 65th rule, in a transaction with a deny entry: all refused. */
	if (read_rules(&f, rules0) || read_cfg(&f, &cfg0))
		goto out;
	snprintf(line, sizeof(line), "rule add dport %d proto udp " LIMIT,
		 PORT0 + SLUICE_MAX_RULES);
	lines[0] = "deny add 203.0.113.0/24";
	lines[1] = line;
	err[0] = '\0';
	slot = fx_policy(&f, lines, 2, err, sizeof(err));
	CHECK(slot == -ENOSPC && strstr(err, "full"), "65th rule: returned %d, '%s'", slot, err);
	if (read_rules(&f, rules1) || read_cfg(&f, &cfg1))
		goto out;
	CHECK(!memcmp(rules0, rules1, sizeof(rules0)), "the rules changed");
	CHECK(!memcmp(&cfg0, &cfg1, sizeof(cfg0)), "the config changed");
	CHECK(fx_deny_get(&f, "203.0.113.0/24", &d) == -ENOENT,
	      "the rest of the refused transaction was written");
	rule_stats(&f, SLUICE_MAX_RULES, before);
	fx_counters(&f, c0);
	CHECK(send_udp(&f, PORT0 + SLUICE_MAX_RULES, &len) == XDP_PASS_V &&
	      send_udp(&f, PORT0 + SLUICE_MAX_RULES, &len) == XDP_PASS_V,
	      "the refused rule's port was limited");
	fx_counters(&f, c1);
	rule_stats(&f, SLUICE_MAX_RULES, after);
	CHECK(stats_moved(before, after, -1, NULL) == 0, "the refused rule's port hit a rule");
	CHECK_EQ(c1[SLUICE_CNT_STATE_INSERT] - c0[SLUICE_CNT_STATE_INSERT], 0,
		 "buckets created for the refused rule's port");

	/* A slot freed in a transaction is not reused by the same one. */
	lines[0] = "rule del r7";
	slot = fx_policy(&f, lines, 2, err, sizeof(err));
	CHECK(slot == -ENOSPC, "del and add in one transaction on a full table: %d", slot);
	CHECK_EQ(fx_rule_id(&f, 7), rules0[7].id, "slot 7 after the refused transaction");

	/* Free slot 5, whose bucket is spent; its port then reaches nothing. */
	slot = 5;
	old_id = fx_rule_id(&f, slot);
	if (fx_cmd(&f, "rule del r5") < 0)
		goto out;
	CHECK_EQ(fx_rule_id(&f, slot), 0, "slot 5 after rule del");
	bk.rule_id = old_id;
	CHECK(fx_bucket(&f, &bk, &b) == -ENOENT, "rule del left the old rule's bucket");
	rule_stats(&f, SLUICE_MAX_RULES, before);
	CHECK(send_udp(&f, PORT0 + 5, &len) == XDP_PASS_V &&
	      send_udp(&f, PORT0 + 5, &len) == XDP_PASS_V, "a deleted rule still limits");
	rule_stats(&f, SLUICE_MAX_RULES, after);
	CHECK(stats_moved(before, after, -1, NULL) == 0, "a deleted rule still counts");

	/* The same rule again lands in slot 5 with a new id, zeroed stats and
	 * no bucket: its first frame passes although the old bucket was spent. */
	slot = fx_cmd(&f, "rule add name r5 dport 1005 proto udp " LIMIT);
	if (!CHECK(slot == 5, "re-added rule in slot %d, want 5", slot))
		goto out;
	new_id = fx_rule_id(&f, slot);
	CHECK(new_id != old_id && new_id > rules0[SLUICE_MAX_RULES - 1].id,
	      "re-added rule id %u (old %u, highest %u)", new_id, old_id,
	      rules0[SLUICE_MAX_RULES - 1].id);
	after[slot] = fx_rstats(&f, slot);
	CHECK(!after[slot].passed_pkts && !after[slot].passed_bytes &&
	      !after[slot].dropped_pkts && !after[slot].dropped_bytes,
	      "the re-added rule inherited counters");
	bk.rule_id = new_id;
	CHECK(fx_bucket(&f, &bk, &b) == -ENOENT, "the re-added rule has a bucket already");
	rule_stats(&f, SLUICE_MAX_RULES, before);
	CHECK(send_udp(&f, PORT0 + 5, &len) == XDP_PASS_V, "first frame to the re-added rule");
	CHECK(send_udp(&f, PORT0 + 5, &len) == XDP_DROP_V, "second frame to the re-added rule");
	rule_stats(&f, SLUICE_MAX_RULES, after);
	{
		struct sluice_rule_stats d1 = { 1, len, 1, len };

		CHECK(stats_moved(before, after, slot, &d1) == 0,
		      "frames to the re-added rule: wrong slot counters");
	}
	if (CHECK(fx_bucket(&f, &bk, &b) == 0, "no bucket under the new rule id %u", new_id))
		CHECK(b.passed_pkts == 1 && b.dropped_pkts == 1,
		      "new bucket passed %llu dropped %llu", (unsigned long long)b.passed_pkts,
		      (unsigned long long)b.dropped_pkts);
	bk.rule_id = old_id;
	CHECK(fx_bucket(&f, &bk, &b) == -ENOENT, "a bucket under the old rule id");
out:
	fx_close(&f);
}
