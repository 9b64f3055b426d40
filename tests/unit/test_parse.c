// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#define TEST_GROUP "bpf" /* loads BPF programs or creates maps: needs root (harness.h) */
/*
 * Parsing, seen from outside: each frame is run past a set of never-limiting
 * rules, one per thing the parser extracts (protocol class, destination port,
 * source family), and the rules a frame matched say what the parser made of
 * it. Frames the parser refuses match no rule and count as malformed or
 * non-IP.
 */
#include <errno.h>
#include <string.h>
#include "fixture.h"
#include "harness.h"

/* One rule per parsed field; "key rule" so they keep no per-source state,
 * and a rate nothing here reaches. */
enum {
	M_TCP80 = 1 << 0, /* dport 80 proto tcp */
	M_UDP53 = 1 << 1, /* dport 53 proto udp */
	M_ICMP = 1 << 2,  /* proto icmp */
	M_V4 = 1 << 3,    /* src 198.18.0.0/15 */
	M_V6 = 1 << 4,    /* src 2001:db8::/32 */
	M_ANY = 1 << 5,   /* everything */
	M_PORT80 = 1 << 6, /* dport 80, any protocol */
	M_TCP = 1 << 7,   /* proto tcp, any port */
	M_UDP = 1 << 8,   /* proto udp, any port */
	M_NRULES = 9,
};

static const char *const parse_rules[M_NRULES] = {
	"rule add name tcp80 dport 80 proto tcp pps 1000000 key rule",
	"rule add name udp53 dport 53 proto udp pps 1000000 key rule",
	"rule add name icmp proto icmp pps 1000000 key rule",
	"rule add name v4 src 198.18.0.0/15 pps 1000000 key rule",
	"rule add name v6 src 2001:db8::/32 pps 1000000 key rule",
	"rule add name any pps 1000000 key rule",
	"rule add name port80 dport 80 pps 1000000 key rule",
	"rule add name tcp proto tcp pps 1000000 key rule",
	"rule add name udp proto udp pps 1000000 key rule",
};

#define V4_TCP80 (M_TCP80 | M_V4 | M_ANY | M_PORT80 | M_TCP)
#define V4_UDP53 (M_UDP53 | M_V4 | M_ANY | M_UDP)
#define V6_TCP80 (M_TCP80 | M_V6 | M_ANY | M_PORT80 | M_TCP)
#define V6_UDP53 (M_UDP53 | M_V6 | M_ANY | M_UDP)

enum { R_OK = 0, R_MALFORMED, R_NON_IP };

struct parse_case {
	const char *name;
	struct pkt_spec s;
	unsigned int want_rules;
	int want; /* R_* */
};

#define DSTOPTS8 { PKT_DSTOPTS, PKT_DSTOPTS, PKT_DSTOPTS, PKT_DSTOPTS, \
		   PKT_DSTOPTS, PKT_DSTOPTS, PKT_DSTOPTS, PKT_DSTOPTS }

static const struct parse_case parse_cases[] = {
	{ "v4 tcp", { .family = 4, .proto = PKT_TCP, .sport = 1234, .dport = 80 }, V4_TCP80, R_OK },
	{ "v4 udp", { .family = 4, .proto = PKT_UDP, .sport = 1234, .dport = 53, .payload = 30 },
	  V4_UDP53, R_OK },
	{ "v4 icmp", { .family = 4, .proto = PKT_ICMP }, M_ICMP | M_V4 | M_ANY, R_OK },
	{ "v4 other proto (gre)", { .family = 4, .proto = PKT_GRE, .payload = 8 }, M_V4 | M_ANY, R_OK },
	{ "v4 options ihl 8", { .family = 4, .opt_words = 3, .proto = PKT_TCP, .dport = 80 },
	  V4_TCP80, R_OK },
	{ "v4 options ihl 15", { .family = 4, .opt_words = 10, .proto = PKT_UDP, .dport = 53 },
	  V4_UDP53, R_OK },
	{ "v4 first fragment", { .family = 4, .more_frags = 1, .proto = PKT_TCP, .dport = 80,
				 .payload = 64 }, V4_TCP80, R_OK },
	/* The bytes where a TCP header would be say port 80, but a non-first
	 * fragment carries payload there: no port, only port-less rules. */
	{ "v4 non-first fragment tcp", { .family = 4, .frag_offset = 185, .proto = PKT_TCP,
					 .dport = 80, .payload = 64 }, M_V4 | M_ANY | M_TCP, R_OK },
	{ "v4 last fragment udp", { .family = 4, .frag_offset = 3, .proto = PKT_UDP,
				    .dport = 53, .payload = 16 }, M_V4 | M_ANY | M_UDP, R_OK },
	{ "v4 non-first fragment shorter than an l4 header",
	  { .family = 4, .frag_offset = 1, .proto = PKT_GRE, .payload = 2 }, M_V4 | M_ANY, R_OK },
	{ "802.1q v4 udp", { .tags = { PKT_ETH_8021Q }, .family = 4, .proto = PKT_UDP,
			     .dport = 53 }, V4_UDP53, R_OK },
	{ "qinq v4 udp", { .tags = { PKT_ETH_8021AD, PKT_ETH_8021Q }, .family = 4,
			   .proto = PKT_UDP, .dport = 53 }, V4_UDP53, R_OK },
	{ "qinq v6 tcp", { .tags = { PKT_ETH_8021AD, PKT_ETH_8021Q }, .family = 6,
			   .proto = PKT_TCP, .dport = 80 }, V6_TCP80, R_OK },
	{ "three vlan tags", { .tags = { PKT_ETH_8021AD, PKT_ETH_8021Q, PKT_ETH_8021Q },
			       .family = 4, .proto = PKT_UDP, .dport = 53 }, 0, R_MALFORMED },
	{ "v6 tcp", { .family = 6, .proto = PKT_TCP, .dport = 80 }, V6_TCP80, R_OK },
	{ "v6 udp", { .family = 6, .proto = PKT_UDP, .dport = 53, .payload = 100 }, V6_UDP53, R_OK },
	{ "v6 icmpv6", { .family = 6, .proto = PKT_ICMPV6 }, M_ICMP | M_V6 | M_ANY, R_OK },
	{ "v6 no next header", { .family = 6, .proto = PKT_NONE }, M_V6 | M_ANY, R_OK },
	{ "v6 hop-by-hop + dest-opts + routing", { .family = 6, .next = 3,
	  .ext = { PKT_HOPOPTS, PKT_DSTOPTS, PKT_ROUTING }, .ext_len = { 0, 1, 2 },
	  .proto = PKT_TCP, .dport = 80 }, V6_TCP80, R_OK },
	{ "v6 ah", { .family = 6, .next = 1, .ext = { PKT_AH }, .ext_len = { 4 },
		     .proto = PKT_UDP, .dport = 53 }, V6_UDP53, R_OK },
	{ "v6 first fragment", { .family = 6, .next = 1, .ext = { PKT_FRAGMENT },
				 .more_frags = 1, .proto = PKT_TCP, .dport = 80, .payload = 64 },
	  V6_TCP80, R_OK },
	{ "v6 non-first fragment", { .family = 6, .next = 1, .ext = { PKT_FRAGMENT },
				     .frag_offset = 100, .proto = PKT_TCP, .dport = 80,
				     .payload = 64 }, M_V6 | M_ANY | M_TCP, R_OK },
	{ "v6 hop-by-hop + non-first fragment", { .family = 6, .next = 2,
	  .ext = { PKT_HOPOPTS, PKT_FRAGMENT }, .frag_offset = 7, .more_frags = 1,
	  .proto = PKT_UDP, .dport = 53, .payload = 8 }, M_V6 | M_ANY | M_UDP, R_OK },
	{ "arp", { .ethertype = PKT_ETH_ARP, .payload = 28 }, 0, R_NON_IP },
	{ "vlan arp", { .tags = { PKT_ETH_8021Q }, .ethertype = PKT_ETH_ARP, .payload = 28 },
	  0, R_NON_IP },
	{ "v4 ethertype, version 6", { .family = 4, .version = 6, .proto = PKT_TCP,
				       .dport = 80 }, 0, R_MALFORMED },
	{ "v4 ihl 4", { .family = 4, .ihl = 4, .proto = PKT_TCP, .dport = 80 }, 0,
	  R_MALFORMED },
	{ "v4 ihl 1", { .family = 4, .ihl = 1, .proto = PKT_UDP, .dport = 53 }, 0,
	  R_MALFORMED },
	{ "v4 ihl past the end of the frame", { .family = 4, .ihl = 15, .proto = PKT_TCP,
						.dport = 80 }, 0, R_MALFORMED },
	{ "v6 ethertype, version 4", { .family = 6, .version = 4, .proto = PKT_TCP,
				       .dport = 80 }, 0, R_MALFORMED },
};

/* docs/design.md: "IPv6 with a walk over at most 8 extension headers; more
 * is malformed". */
static const struct parse_case ext_limit_cases[] = {
	{ "v6 7 extension headers", { .family = 6, .next = 7, .ext = DSTOPTS8,
				      .proto = PKT_TCP, .dport = 80 }, V6_TCP80, R_OK },
	{ "v6 8 extension headers", { .family = 6, .next = 8, .ext = DSTOPTS8,
				      .proto = PKT_TCP, .dport = 80 }, V6_TCP80, R_OK },
	{ "v6 9 extension headers", { .family = 6, .next = 9,
	  .ext = { PKT_HOPOPTS, PKT_DSTOPTS, PKT_DSTOPTS, PKT_DSTOPTS, PKT_DSTOPTS,
		   PKT_DSTOPTS, PKT_DSTOPTS, PKT_DSTOPTS, PKT_DSTOPTS },
	  .proto = PKT_TCP, .dport = 80 }, 0, R_MALFORMED },
};

static int load_parse_rules(struct fx *f)
{
	int i;

	for (i = 0; i < M_NRULES; i++)
		if (!CHECK(fx_cmd(f, parse_rules[i]) == i, "rule %d in slot %d", i, i))
			return -1;
	return 0;
}

static unsigned int matched_rules(const struct sluice_rule_stats *before,
				  const struct sluice_rule_stats *after)
{
	unsigned int m = 0;
	int i;

	for (i = 0; i < M_NRULES; i++)
		if (after[i].passed_pkts + after[i].dropped_pkts !=
		    before[i].passed_pkts + before[i].dropped_pkts)
			m |= 1u << i;
	return m;
}

static void run_parse_cases(const struct parse_case *cases, size_t ncases)
{
	struct sluice_rule_stats before[M_NRULES], after[M_NRULES];
	__u64 c0[SLUICE_CNT_MAX], c1[SLUICE_CNT_MAX];
	struct fx f;
	size_t i;
	int j;

	if (fx_open(&f, 0))
		return;
	if (load_parse_rules(&f))
		goto out;
	for (i = 0; i < ncases; i++) {
		const struct parse_case *c = &cases[i];
		unsigned int got;
		int v;

		for (j = 0; j < M_NRULES; j++)
			before[j] = fx_rstats(&f, j);
		fx_counters(&f, c0);
		v = fx_send(&f, &c->s);
		fx_counters(&f, c1);
		for (j = 0; j < M_NRULES; j++)
			after[j] = fx_rstats(&f, j);
		got = matched_rules(before, after);

		CHECK(v == XDP_PASS_V, "%s: verdict %d, want PASS", c->name, v);
		CHECK(got == c->want_rules, "%s: matched rules 0x%x, want 0x%x", c->name, got,
		      c->want_rules);
		CHECK(c1[SLUICE_CNT_PACKETS] - c0[SLUICE_CNT_PACKETS] == 1, "%s: packets +%llu",
		      c->name, (unsigned long long)(c1[SLUICE_CNT_PACKETS] - c0[SLUICE_CNT_PACKETS]));
		CHECK(c1[SLUICE_CNT_MALFORMED] - c0[SLUICE_CNT_MALFORMED] ==
		      (c->want == R_MALFORMED), "%s: malformed +%llu", c->name,
		      (unsigned long long)(c1[SLUICE_CNT_MALFORMED] - c0[SLUICE_CNT_MALFORMED]));
		CHECK(c1[SLUICE_CNT_NON_IP] - c0[SLUICE_CNT_NON_IP] == (c->want == R_NON_IP),
		      "%s: non_ip +%llu", c->name,
		      (unsigned long long)(c1[SLUICE_CNT_NON_IP] - c0[SLUICE_CNT_NON_IP]));
	}
out:
	fx_close(&f);
}


TEST(parse_frames)
{
	run_parse_cases(parse_cases, NELEM(parse_cases));
}

TEST(parse_ipv6_extension_header_limit)
{
	run_parse_cases(ext_limit_cases, NELEM(ext_limit_cases));
}

/* Every prefix of a valid frame is a truncated frame. Each must pass and
 * count as malformed, and must never reach a rule, even one that would drop
 * the whole frame. Frames have no payload, so every cut is inside a header.
 * Below 14 bytes the kernel refuses to run XDP at all. */
static const struct {
	const char *name;
	struct pkt_spec s;
} trunc_frames[] = {
	{ "v4 tcp", { .family = 4, .proto = PKT_TCP, .dport = 80 } },
	{ "v4 udp", { .family = 4, .proto = PKT_UDP, .dport = 53 } },
	{ "v4 options icmp", { .family = 4, .opt_words = 2, .proto = PKT_ICMP } },
	{ "v6 tcp with hop-by-hop", { .family = 6, .next = 1, .ext = { PKT_HOPOPTS },
				      .ext_len = { 1 }, .proto = PKT_TCP, .dport = 80 } },
	{ "v6 fragment + icmpv6", { .family = 6, .next = 2, .ext = { PKT_DSTOPTS, PKT_FRAGMENT },
				    .more_frags = 1, .proto = PKT_ICMPV6 } },
	{ "qinq v4 udp", { .tags = { PKT_ETH_8021AD, PKT_ETH_8021Q }, .family = 4,
			   .proto = PKT_UDP, .dport = 53 } },
};

TEST(parse_truncated_every_length)
{
	__u8 buf[PKT_MAX];
	size_t i, len, n;
	struct fx f;
	int slot;

	if (fx_open(&f, 0))
		return;
	/* A rule-wide bucket of one packet that never refills (the clock
	 * stands still): after the first full frame, any frame that reaches
	 * the rule is dropped. */
	slot = fx_cmd(&f, "rule add pps 1 burst 1 key rule");
	if (slot < 0)
		goto out;
	for (i = 0; i < NELEM(trunc_frames); i++) {
		const char *name = trunc_frames[i].name;
		int bad_verdict = 0, bad_count = 0, bad_errno = 0;
		struct sluice_rule_stats r0, r1;
		__u64 c0[SLUICE_CNT_MAX], c1[SLUICE_CNT_MAX];

		n = pkt_build(&trunc_frames[i].s, buf, sizeof(buf));
		if (!CHECK(n > 14, "%s: build", name))
			continue;
		CHECK(fx_run(&f, buf, n) == (i == 0 ? XDP_PASS_V : XDP_DROP_V),
		      "%s: the whole frame reaches the exhausted rule", name);
		r0 = fx_rstats(&f, slot);
		fx_counters(&f, c0);
		for (len = 0; len < n; len++) {
			int v = fx_run(&f, buf, len);

			if (len < 14) {
				bad_errno += v != -EINVAL;
				continue;
			}
			bad_verdict += v != XDP_PASS_V;
			fx_counters(&f, c1);
			bad_count += c1[SLUICE_CNT_MALFORMED] != c0[SLUICE_CNT_MALFORMED] + 1 ||
				     c1[SLUICE_CNT_NON_IP] != c0[SLUICE_CNT_NON_IP] ||
				     c1[SLUICE_CNT_PACKETS] != c0[SLUICE_CNT_PACKETS] + 1;
			memcpy(c0, c1, sizeof(c0));
		}
		r1 = fx_rstats(&f, slot);
		CHECK(bad_errno == 0, "%s: %d lengths below 14 not refused with EINVAL", name,
		      bad_errno);
		CHECK(bad_verdict == 0, "%s: %d truncated lengths not passed", name, bad_verdict);
		CHECK(bad_count == 0, "%s: %d truncated lengths not counted malformed once", name,
		      bad_count);
		CHECK(r1.passed_pkts == r0.passed_pkts && r1.dropped_pkts == r0.dropped_pkts,
		      "%s: a truncated frame reached the rule", name);
		CHECK(fx_run(&f, buf, n) == XDP_DROP_V, "%s: the whole frame still drops", name);
	}
out:
	fx_close(&f);
}
