// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#define TEST_GROUP "bpf" /* loads BPF programs or creates maps: needs root (harness.h) */
/*
 * Verdict order (docs/design.md, "Verdict order"): deny list, then, once the
 * transport header parsed, the allow list, then every matching rule; a frame
 * passes only if every matching rule admits it. Each case applies its own
 * policy to an emptied program, runs its frames and checks every verdict,
 * every global counter and the counters of the first rule slots.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/bpf.h>
#include "fixture.h"
#include "harness.h"
#include "policy.h"
#include "stats.h"

#define SEC 1000000000ULL

/* With the test clock standing still, RULE_ONE admits one frame and drops
 * every later one; RULE_OPEN admits everything a case sends. */
#define ONE "pps 1 burst 1 key rule"
#define RULE_ONE "rule add " ONE
#define RULE_OPEN "rule add pps 1000000 key rule"

/* Counter deltas in a case's initialiser. */
#define DENY(n) [SLUICE_CNT_DROP_DENY] = (n)
#define RATE(n) [SLUICE_CNT_DROP_RATE] = (n)
#define BYTES(n) [SLUICE_CNT_DROP_BYTES] = (n)
#define MALFORMED(n) [SLUICE_CNT_MALFORMED] = (n)
#define NON_IP(n) [SLUICE_CNT_NON_IP] = (n)
#define ALLOWED(n) [SLUICE_CNT_ALLOWED] = (n)
#define INSERTS(n) [SLUICE_CNT_STATE_INSERT] = (n)
/* A TCP SYN with a port that passes opens a flow; its repeats are
 * retransmissions of the same connection and open none. */
#define FLOWS(n) [SLUICE_CNT_FLOW_INSERT] = (n)

#define V4_TCP80 { .family = 4, .proto = PKT_TCP, .sport = 1234, .dport = 80 }
#define V6_TCP80 { .family = 6, .proto = PKT_TCP, .sport = 1234, .dport = 80 }
#define ARP { .ethertype = PKT_ETH_ARP, .payload = 28 }

#define MAX_LINES 4
#define NSLOTS 3 /* rule slots whose counters each case checks */

struct vcase {
	const char *name;
	const char *policy[MAX_LINES]; /* one transaction; rules fill slots 0, 1, ... */
	struct pkt_spec s;
	size_t len;                    /* run only this many bytes (0: the whole frame) */
	const char *verdicts;          /* one frame per letter: P passes, D drops */
	__u64 cnt[SLUICE_CNT_MAX];     /* deltas; PACKETS is implied, one per frame */
	__u64 rules[NSLOTS][2];        /* per slot: frames passed, frames dropped */
};

static const char *vname(int v)
{
	return v == XDP_PASS_V ? "PASS" : v == XDP_DROP_V ? "DROP" : "error";
}

/* Every global counter moved by exactly want[c] since c0. */
static void check_counters(struct fx *f, const char *name, const __u64 *c0, const __u64 *want)
{
	__u64 c1[SLUICE_CNT_MAX];
	int c;

	fx_counters(f, c1);
	for (c = 0; c < SLUICE_CNT_MAX; c++)
		CHECK(c1[c] - c0[c] == want[c], "%s: counter %s +%llu, want +%llu", name,
		      stats_counter_names[c], (unsigned long long)(c1[c] - c0[c]),
		      (unsigned long long)want[c]);
}

/* A rule's counters, for frames that were all len bytes long. */
static void check_rule(struct fx *f, const char *name, int slot, __u64 passed, __u64 dropped,
		       __u64 len)
{
	struct sluice_rule_stats s = fx_rstats(f, slot);

	CHECK(s.passed_pkts == passed && s.passed_bytes == passed * len &&
	      s.dropped_pkts == dropped && s.dropped_bytes == dropped * len,
	      "%s: slot %d passed %llu (%llu B) dropped %llu (%llu B), want %llu, %llu of %llu B",
	      name, slot, (unsigned long long)s.passed_pkts, (unsigned long long)s.passed_bytes,
	      (unsigned long long)s.dropped_pkts, (unsigned long long)s.dropped_bytes,
	      (unsigned long long)passed, (unsigned long long)dropped, (unsigned long long)len);
}

static int clear_map(int fd, const char *what)
{
	union {
		struct sluice_lpm_key lpm;
		struct sluice_bucket_key bucket;
		struct sluice_flow_key flow;
	} k;

	while (!bpf_map_get_next_key(fd, NULL, &k))
		if (!CHECK(bpf_map_delete_elem(fd, &k) == 0, "clear %s: %s", what, strerror(errno)))
			return -1;
	return 0;
}

/* Back to an empty policy and no flows, so that one loaded program serves a
 * whole table (verifying the program takes a third of a second) and every
 * row's first SYN opens a connection of its own. */
static int reset(struct fx *f)
{
	static const struct sluice_pressure zero_pressure;
	char lines[SLUICE_MAX_RULES][32];
	const char *dels[SLUICE_MAX_RULES];
	struct sluice_rule_stats *zero;
	int slot, n = 0, err = 0;
	__u32 k;

	for (slot = 0; slot < SLUICE_MAX_RULES; slot++) {
		__u32 id = fx_rule_id(f, slot);

		if (!id)
			continue;
		snprintf(lines[n], sizeof(lines[n]), "rule del %u", id);
		dels[n] = lines[n];
		n++;
	}
	if (n && fx_policy(f, dels, n, NULL, 0) < 0)
		return -1;
	if (clear_map(f->m.allow, "allow") || clear_map(f->m.deny, "deny") ||
	    clear_map(f->m.buckets, "buckets") || clear_map(f->m.flows, "flows") ||
	    clear_map(f->m.conns, "conns"))
		return -1;
	/* A rule add zeroes its slot's stats, but a case also checks the
	 * slots it leaves empty. */
	zero = calloc((size_t)maps_ncpus(), sizeof(*zero));
	if (!CHECK(zero != NULL, "out of memory"))
		return -1;
	for (k = 0; k < NSLOTS && !err; k++)
		err = bpf_map_update_elem(f->m.rstats, &k, zero, BPF_ANY);
	free(zero);
	k = 0;
	if (!err)
		err = bpf_map_update_elem(f->m.pressure, &k, &zero_pressure, BPF_ANY);
	if (!CHECK(err == 0, "reset rule stats and pressure: %s", strerror(errno)))
		return -1;
	fx_at(f, 0);
	return 0;
}

static void run_vcase(struct fx *f, const struct vcase *c)
{
	__u64 c0[SLUICE_CNT_MAX], want[SLUICE_CNT_MAX];
	__u8 buf[PKT_MAX];
	size_t n, len;
	int lines = 0, i, slot;

	n = pkt_build(&c->s, buf, sizeof(buf));
	if (!CHECK(n > 0, "%s: frame does not build", c->name))
		return;
	len = c->len ? c->len : n;
	while (lines < MAX_LINES && c->policy[lines])
		lines++;
	if (lines && fx_policy(f, c->policy, lines, NULL, 0) < 0)
		return;
	fx_counters(f, c0);
	for (i = 0; c->verdicts[i]; i++) {
		int want_v = c->verdicts[i] == 'D' ? XDP_DROP_V : XDP_PASS_V;
		int v = fx_run(f, buf, len);

		CHECK(v == want_v, "%s: frame %d: %s, want %s", c->name, i + 1, vname(v),
		      vname(want_v));
	}
	memcpy(want, c->cnt, sizeof(want));
	want[SLUICE_CNT_PACKETS] = (__u64)i;
	check_counters(f, c->name, c0, want);
	for (slot = 0; slot < NSLOTS; slot++)
		check_rule(f, c->name, slot, c->rules[slot][0], c->rules[slot][1], len);
}

static void run_vcases(const struct vcase *cases, size_t n)
{
	struct fx f;
	size_t i;

	if (fx_open(&f, 0))
		return;
	for (i = 0; i < n; i++) {
		if (reset(&f))
			break;
		run_vcase(&f, &cases[i]);
	}
	fx_close(&f);
}

/* The same rule (RULE_ONE) stands behind most rows: where it shows up in the
 * counters, the lists let the frame through to it; where it does not, a
 * list decided first. */
static const struct vcase order_cases[] = {
	{ "v4 no policy", {}, V4_TCP80, 0, "PPP", { FLOWS(1) }, {} },
	{ "v4 rule alone: one frame, then rate drops", { RULE_ONE }, V4_TCP80, 0, "PDD",
	  { RATE(2), INSERTS(1), FLOWS(1) }, { { 1, 2 } } },
	{ "v4 deny", { "deny add 198.18.0.1/32" }, V4_TCP80, 0, "DDD", { DENY(3) }, {} },
	{ "v4 deny beats allow of the same /32",
	  { "allow add 198.18.0.1/32", "deny add 198.18.0.1/32" }, V4_TCP80, 0, "DDD",
	  { DENY(3) }, {} },
	{ "v4 deny beats a rule that admits", { RULE_OPEN, "deny add 198.18.0.1/32" }, V4_TCP80,
	  0, "DDD", { DENY(3) }, { { 0, 0 } } },
	{ "v4 deny /24 beats allow /32 and a rule",
	  { RULE_OPEN, "allow add 198.18.0.1/32", "deny add 198.18.0.0/24" }, V4_TCP80, 0, "DDD",
	  { DENY(3) }, { { 0, 0 } } },
	/* Deny is looked up first, so an allow entry never wins, whichever
	 * of the two prefixes is longer. */
	{ "v4 allowed /32 inside a denied /24",
	  { "deny add 198.18.0.0/24", "allow add 198.18.0.1/32" }, V4_TCP80, 0, "DDD",
	  { DENY(3) }, {} },
	{ "v4 denied /32 inside an allowed /24",
	  { "allow add 198.18.0.0/24", "deny add 198.18.0.1/32" }, V4_TCP80, 0, "DDD",
	  { DENY(3) }, {} },
	{ "v4 allow skips a rule that would drop", { RULE_ONE, "allow add 198.18.0.1/32" },
	  V4_TCP80, 0, "PPP", { ALLOWED(3), FLOWS(1) }, { { 0, 0 } } },
	/* Three kinds of rule that all drop the source (the control row), and
	 * the same three behind an allow entry: none of them is even charged. */
	{ "v4 rule wide, per source and count rules all drop",
	  { RULE_ONE, "rule add proto tcp pps 1 burst 1",
	    "rule add dport 80 " ONE " action count" },
	  V4_TCP80, 0, "PDD", { RATE(2), INSERTS(3), FLOWS(1) },
	  { { 1, 2 }, { 1, 2 }, { 1, 2 } } },
	{ "v4 allow skips every rule",
	  { RULE_ONE, "rule add proto tcp pps 1 burst 1", "rule add dport 80 " ONE " action count",
	    "allow add 198.18.0.1/32" },
	  V4_TCP80, 0, "PPP", { ALLOWED(3), FLOWS(1) }, { { 0, 0 }, { 0, 0 }, { 0, 0 } } },
	{ "v4 allow /24 covers the source", { RULE_ONE, "allow add 198.18.0.0/24" }, V4_TCP80, 0,
	  "PPP", { ALLOWED(3), FLOWS(1) }, { { 0, 0 } } },
	{ "v4 allow /24 beside a denied neighbour /32",
	  { RULE_ONE, "allow add 198.18.0.0/24", "deny add 198.18.0.2/32" }, V4_TCP80, 0, "PPP",
	  { ALLOWED(3), FLOWS(1) }, { { 0, 0 } } },
	{ "v4 lists of other sources: the rule decides",
	  { RULE_ONE, "allow add 198.18.0.2/32", "deny add 198.18.1.0/24" }, V4_TCP80, 0, "PDD",
	  { RATE(2), INSERTS(1), FLOWS(1) }, { { 1, 2 } } },
	{ "v4 deny 0.0.0.0/0 covers every v4 source", { RULE_OPEN, "deny add 0.0.0.0/0" },
	  { .family = 4, .src = "203.0.113.9", .proto = PKT_UDP, .dport = 53 }, 0, "DDD",
	  { DENY(3) }, { { 0, 0 } } },
	/* The family tag in the LPM key keeps the families apart. */
	{ "v6 frame: deny 0.0.0.0/0 does not cover it", { RULE_ONE, "deny add 0.0.0.0/0" },
	  V6_TCP80, 0, "PDD", { RATE(2), INSERTS(1), FLOWS(1) }, { { 1, 2 } } },
	{ "v4 frame: deny ::/0 does not cover it", { RULE_ONE, "deny add ::/0" }, V4_TCP80, 0,
	  "PDD", { RATE(2), INSERTS(1), FLOWS(1) }, { { 1, 2 } } },

	{ "v6 rule alone: one frame, then rate drops", { RULE_ONE }, V6_TCP80, 0, "PDD",
	  { RATE(2), INSERTS(1), FLOWS(1) }, { { 1, 2 } } },
	{ "v6 deny", { "deny add 2001:db8::1/128" }, V6_TCP80, 0, "DDD", { DENY(3) }, {} },
	{ "v6 deny beats allow of the same /128",
	  { "allow add 2001:db8::1/128", "deny add 2001:db8::1/128" }, V6_TCP80, 0, "DDD",
	  { DENY(3) }, {} },
	{ "v6 deny /64 beats allow /128 and a rule",
	  { RULE_OPEN, "allow add 2001:db8::1/128", "deny add 2001:db8::/64" }, V6_TCP80, 0,
	  "DDD", { DENY(3) }, { { 0, 0 } } },
	{ "v6 denied /128 inside an allowed /48",
	  { RULE_OPEN, "allow add 2001:db8::/48", "deny add 2001:db8::1/128" }, V6_TCP80, 0,
	  "DDD", { DENY(3) }, { { 0, 0 } } },
	{ "v6 allow skips a rule that would drop", { RULE_ONE, "allow add 2001:db8::/32" },
	  V6_TCP80, 0, "PPP", { ALLOWED(3), FLOWS(1) }, { { 0, 0 } } },
	{ "v6 allow skips every rule",
	  { RULE_ONE, "rule add proto tcp pps 1 burst 1", "rule add dport 80 " ONE " action count",
	    "allow add 2001:db8::1/128" },
	  V6_TCP80, 0, "PPP", { ALLOWED(3), FLOWS(1) }, { { 0, 0 }, { 0, 0 }, { 0, 0 } } },
	{ "v6 deny ::/0 covers every v6 source", { RULE_OPEN, "deny add ::/0" },
	  { .family = 6, .src = "fe80::9", .proto = PKT_ICMPV6 }, 0, "DDD", { DENY(3) },
	  { { 0, 0 } } },

	/* The source is known before the transport header: deny applies, the
	 * allow list and the rules do not (the frame is malformed, passed). */
	{ "v4 truncated tcp: deny drops", { "deny add 198.18.0.1/32" }, V4_TCP80,
	  14 + 20 + 1, "DDD", { DENY(3) }, {} },
	{ "v4 truncated udp: deny drops", { "deny add 198.18.0.0/16" },
	  { .family = 4, .proto = PKT_UDP, .dport = 53 }, 14 + 20 + 4, "DD", { DENY(2) }, {} },
	{ "v4 truncated icmp: deny drops", { "deny add 198.18.0.1/32" },
	  { .family = 4, .proto = PKT_ICMP }, 14 + 20 + 7, "DD", { DENY(2) }, {} },
	{ "v4 truncated tcp: allow does not apply", { "allow add 198.18.0.1/32" }, V4_TCP80,
	  14 + 20 + 1, "PPP", { MALFORMED(3) }, {} },
	{ "v4 truncated tcp: no rule applies", { RULE_ONE }, V4_TCP80, 14 + 20 + 1, "PPP",
	  { MALFORMED(3) }, { { 0, 0 } } },
	{ "v6 truncated tcp: deny drops", { "deny add 2001:db8::1/128" }, V6_TCP80,
	  14 + 40 + 19, "DDD", { DENY(3) }, {} },
	{ "v6 truncated extension header: deny drops", { "deny add 2001:db8::/32" },
	  { .family = 6, .next = 1, .ext = { PKT_HOPOPTS }, .proto = PKT_TCP, .dport = 80 },
	  14 + 40 + 1, "DD", { DENY(2) }, {} },
	{ "v6 truncated tcp: allow and rule do not apply",
	  { RULE_ONE, "allow add 2001:db8::1/128" }, V6_TCP80, 14 + 40 + 1, "PPP",
	  { MALFORMED(3) }, { { 0, 0 } } },

	/* No source address: nothing applies. */
	{ "v4 bad ihl: deny-all does not apply", { RULE_ONE, "deny add 0.0.0.0/0" },
	  { .family = 4, .ihl = 4, .proto = PKT_TCP, .dport = 80 }, 0, "PPP", { MALFORMED(3) },
	  { { 0, 0 } } },
	{ "v6 bad version: deny-all does not apply", { RULE_ONE, "deny add ::/0" },
	  { .family = 6, .version = 4, .proto = PKT_TCP, .dport = 80 }, 0, "PPP",
	  { MALFORMED(3) }, { { 0, 0 } } },
	{ "arp passes a deny-all policy",
	  { RULE_ONE, "deny add 0.0.0.0/0", "deny add ::/0", "allow add 198.18.0.0/15" }, ARP, 0,
	  "PPP", { NON_IP(3) }, { { 0, 0 } } },
	{ "802.1q arp passes a deny-all policy", { RULE_ONE, "deny add 0.0.0.0/0" },
	  { .tags = { PKT_ETH_8021Q }, .ethertype = PKT_ETH_ARP, .payload = 28 }, 0, "PP",
	  { NON_IP(2) }, { { 0, 0 } } },
	{ "ipx ethertype passes", { RULE_ONE }, { .ethertype = 0x8137, .payload = 46 }, 0,
	  "PP", { NON_IP(2) }, { { 0, 0 } } },

	{ "802.1q v4: deny drops", { RULE_OPEN, "deny add 198.18.0.1/32" },
	  { .tags = { PKT_ETH_8021Q }, .family = 4, .proto = PKT_UDP, .dport = 53 }, 0, "DD",
	  { DENY(2) }, { { 0, 0 } } },
	{ "qinq v6: allow skips the rule", { RULE_ONE, "allow add 2001:db8::1/128" },
	  { .tags = { PKT_ETH_8021AD, PKT_ETH_8021Q }, .family = 6, .proto = PKT_UDP,
	    .dport = 53 }, 0, "PPP", { ALLOWED(3) }, { { 0, 0 } } },
};

TEST(verdict_order)
{
	run_vcases(order_cases, NELEM(order_cases));
}

/* Every matching rule charges its own bucket and counts its own verdict,
 * lowest slot first, even after one dropped; the first drop in slot order
 * names the reason (apply_rule). */
static const struct vcase several_cases[] = {
	{ "an admitting rule counts a pass for a frame a later rule drops",
	  { "rule add dport 80 pps 1000000 key rule", "rule add proto tcp " ONE },
	  V4_TCP80, 0, "PDD", { RATE(2), INSERTS(2), FLOWS(1) }, { { 3, 0 }, { 1, 2 } } },
	{ "the walk goes on past a dropping rule",
	  { "rule add proto tcp " ONE, "rule add dport 80 pps 1000000 key rule" },
	  V4_TCP80, 0, "PDD", { RATE(2), INSERTS(2), FLOWS(1) }, { { 1, 2 }, { 3, 0 } } },
	/* Frame 2 spends slot 0's second token although slot 1 drops it, so
	 * frame 3 finds slot 0 empty too. */
	{ "a dropped frame has spent the admitting rule's token",
	  { "rule add dport 80 pps 2 burst 2 key rule", "rule add proto tcp " ONE },
	  V4_TCP80, 0, "PDD", { RATE(2), INSERTS(2), FLOWS(1) }, { { 2, 1 }, { 1, 2 } } },
	{ "three rules, the middle one drops",
	  { "rule add dport 80 pps 1000000 key rule", "rule add proto tcp " ONE,
	    "rule add src 198.18.0.0/24 pps 1000000 key rule" },
	  V4_TCP80, 0, "PDD", { RATE(2), INSERTS(3), FLOWS(1) },
	  { { 3, 0 }, { 1, 2 }, { 3, 0 } } },
	/* bps 8000 = 1000 bytes/s, bburst 1518: one 1000-byte frame fits,
	 * two do not. Both rules drop frames 2 and 3; slot 0 names why. */
	{ "bytes in slot 0 and rate in slot 1: the reason is bytes",
	  { "rule add pps 1000000 bps 8000 bburst 1518 key rule", RULE_ONE },
	  { .family = 4, .proto = PKT_TCP, .dport = 80, .frame_len = 1000 }, 0, "PDD",
	  { BYTES(2), INSERTS(2), FLOWS(1) }, { { 1, 2 }, { 1, 2 } } },
	{ "rate in slot 0 and bytes in slot 1: the reason is rate",
	  { RULE_ONE, "rule add pps 1000000 bps 8000 bburst 1518 key rule" },
	  { .family = 4, .proto = PKT_TCP, .dport = 80, .frame_len = 1000 }, 0, "PDD",
	  { RATE(2), INSERTS(2), FLOWS(1) }, { { 1, 2 }, { 1, 2 } } },
	{ "a count rule's would-be drop neither drops nor names the reason",
	  { RULE_ONE " action count", "rule add dport 80 pps 2 burst 2 key rule" }, V4_TCP80, 0,
	  "PPD", { RATE(1), INSERTS(2), FLOWS(1) }, { { 1, 2 }, { 2, 1 } } },
	{ "rules that do not match are not charged",
	  { "rule add dport 81 pps 1 burst 1 key rule", "rule add proto udp " ONE,
	    "rule add dport 80 pps 1000000 key rule" },
	  V4_TCP80, 0, "PPP", { INSERTS(1), FLOWS(1) }, { { 0, 0 }, { 0, 0 }, { 3, 0 } } },
	{ "v6: an admitting rule counts a pass for a frame a later rule drops",
	  { "rule add src 2001:db8::/64 pps 1000000", "rule add dport 80 " ONE },
	  V6_TCP80, 0, "PDD", { RATE(2), INSERTS(2), FLOWS(1) }, { { 3, 0 }, { 1, 2 } } },
};

TEST(verdict_every_matching_rule_applies)
{
	run_vcases(several_cases, NELEM(several_cases));
}

/* `action count` is a dry run: dropped_* count what would have dropped, the
 * frame passes and no drop reason moves. */
static const struct vcase count_cases[] = {
	{ "count over a packet rate", { "rule add dport 80 pps 1 burst 1 key rule action count" },
	  V4_TCP80, 0, "PPPP", { INSERTS(1), FLOWS(1) }, { { 1, 3 } } },
	{ "count over a byte rate",
	  { "rule add pps 1000000 bps 8000 bburst 1518 key rule action count" },
	  { .family = 4, .proto = PKT_UDP, .dport = 53, .frame_len = 1000 }, 0, "PPP",
	  { INSERTS(1) }, { { 1, 2 } } },
	{ "count per source (key src), v6", { "rule add pps 1 burst 1 action count" }, V6_TCP80,
	  0, "PPP", { INSERTS(1), FLOWS(1) }, { { 1, 2 } } },
	{ "count, key src, at a higher burst", { "rule add proto tcp pps 5 burst 2 action count" },
	  V4_TCP80, 0, "PPPPP", { INSERTS(1), FLOWS(1) }, { { 2, 3 } } },
	{ "deny drops before a count rule", { RULE_ONE " action count", "deny add 198.18.0.1/32" },
	  V4_TCP80, 0, "DD", { DENY(2) }, { { 0, 0 } } },
	{ "allow passes before a count rule",
	  { RULE_ONE " action count", "allow add 198.18.0.1/32" }, V4_TCP80, 0, "PP",
	  { ALLOWED(2), FLOWS(1) }, { { 0, 0 } } },
};

TEST(verdict_action_count)
{
	run_vcases(count_cases, NELEM(count_cases));
}

/* Per-rule and per-bucket byte counters add up the exact frame lengths
 * (data_end - data: VLAN tags and padding included). */
TEST(verdict_rule_counters_exact_bytes)
{
	static const struct {
		struct pkt_spec s;
		int pass;
	} frames[] = {
		{ { .family = 4, .proto = PKT_TCP, .dport = 80 }, 1 },                   /* 54 */
		{ { .family = 4, .proto = PKT_TCP, .dport = 80, .frame_len = 1514 }, 1 },
		{ { .tags = { PKT_ETH_8021Q }, .family = 6, .proto = PKT_TCP, .dport = 80,
		    .payload = 7 }, 1 },                                                 /* 85 */
		{ { .family = 6, .proto = PKT_TCP, .dport = 80, .frame_len = 333 }, 0 },
		{ { .family = 4, .opt_words = 3, .proto = PKT_TCP, .dport = 80 }, 0 },   /* 66 */
		{ { .family = 4, .proto = PKT_TCP, .dport = 80, .frame_len = 2000 }, 0 },
	};
	struct sluice_bucket_key k = { 0 };
	__u64 pass_b = 0, drop_b = 0, len;
	struct sluice_rule_stats rs, other;
	struct sluice_bucket b;
	__u8 buf[PKT_MAX];
	struct fx f;
	size_t i;
	int slot;

	if (fx_open(&f, 0))
		return;
	/* A neighbour that matches none of the frames must stay at zero. */
	if (fx_cmd(&f, "rule add dport 81 pps 1000000 key rule") != 0)
		goto out;
	slot = fx_cmd(&f, "rule add dport 80 pps 3 burst 3 key rule");
	if (!CHECK(slot == 1, "rule in slot %d, want 1", slot))
		goto out;
	for (i = 0; i < NELEM(frames); i++) {
		int v;

		len = pkt_build(&frames[i].s, buf, sizeof(buf));
		if (!CHECK(len > 0, "frame %zu does not build", i))
			continue;
		v = fx_run(&f, buf, len);
		CHECK(v == (frames[i].pass ? XDP_PASS_V : XDP_DROP_V), "frame %zu (%llu B): %s", i,
		      (unsigned long long)len, vname(v));
		if (frames[i].pass)
			pass_b += len;
		else
			drop_b += len;
	}
	/* The frame lengths themselves, so a builder change cannot move both
	 * sides of the comparison at once. */
	CHECK_EQ(pass_b, 54 + 1514 + 85, "bytes sent that pass");
	CHECK_EQ(drop_b, 333 + 66 + 2000, "bytes sent that drop");
	rs = fx_rstats(&f, slot);
	CHECK_EQ(rs.passed_pkts, 3, "rule passed packets");
	CHECK_EQ(rs.passed_bytes, pass_b, "rule passed bytes");
	CHECK_EQ(rs.dropped_pkts, 3, "rule dropped packets");
	CHECK_EQ(rs.dropped_bytes, drop_b, "rule dropped bytes");
	other = fx_rstats(&f, 0);
	CHECK(!other.passed_pkts && !other.passed_bytes && !other.dropped_pkts &&
	      !other.dropped_bytes, "the rule on port 81 counted something");
	k.rule_id = fx_rule_id(&f, slot);
	if (CHECK(fx_bucket(&f, &k, &b) == 0, "no rule-wide bucket for rule %u", k.rule_id)) {
		CHECK_EQ(b.passed_pkts, 3, "bucket passed packets");
		CHECK_EQ(b.passed_bytes, pass_b, "bucket passed bytes");
		CHECK_EQ(b.dropped_pkts, 3, "bucket dropped packets");
		CHECK_EQ(b.dropped_bytes, drop_b, "bucket dropped bytes");
	}
	CHECK_EQ(fx_counter(&f, SLUICE_CNT_DROP_RATE), 3, "rate drops");
	CHECK_EQ(fx_counter(&f, SLUICE_CNT_PACKETS), NELEM(frames), "packets");
out:
	fx_close(&f);
}

/* `deny add P timeout S`: userspace stamps the expiry with CLOCK_MONOTONIC,
 * which f.t0 lines the test clock up with. The entry drops until the
 * nanosecond it expires; from then on the program deletes it on the first
 * hit and the rules decide. */
static const struct {
	const char *deny, *src;
	__u32 plen;
} timed_cases[] = {
	{ "198.18.0.1/32", "198.18.0.1", 32 },
	{ "198.18.0.0/16", "198.18.200.9", 16 },
	{ "2001:db8::1/128", "2001:db8::1", 128 },
	{ "2001:db8:0:ff00::/56", "2001:db8:0:ffaa::1", 56 },
};

TEST(verdict_deny_timeout)
{
	struct fx f;
	size_t i;

	if (fx_open(&f, 0))
		return;
	for (i = 0; i < NELEM(timed_cases); i++) {
		const char *name = timed_cases[i].deny;
		struct pkt_spec s = {
			.family = strchr(timed_cases[i].src, ':') ? 6 : 4,
			.src = timed_cases[i].src,
			.proto = PKT_UDP,
			.dport = 53,
		};
		__u64 c0[SLUICE_CNT_MAX], want[SLUICE_CNT_MAX] = { 0 }, exp, now;
		struct sluice_deny_val d;
		char line[128];
		int v;

		if (reset(&f) || fx_cmd(&f, RULE_OPEN) != 0)
			break;
		snprintf(line, sizeof(line), "deny add %s timeout 5", name);
		if (fx_cmd(&f, line) < 0)
			break;
		now = monotonic_ns();
		if (!CHECK(fx_deny_get(&f, name, &d) == 0, "%s: not in the deny map", name))
			continue;
		CHECK(d.kind == SLUICE_DENY_STATIC && d.prefix_len == timed_cases[i].plen &&
		      d.expires_ns == d.created_ns + 5 * SEC,
		      "%s: entry kind %u prefix_len %u expires %llu created %llu", name, d.kind,
		      d.prefix_len, (unsigned long long)d.expires_ns,
		      (unsigned long long)d.created_ns);
		/* The test clock must be able to stand where the stamp was. */
		if (!CHECK(d.created_ns >= f.t0 && d.created_ns <= now,
			   "%s: created %llu, test clock origin %llu, now %llu", name,
			   (unsigned long long)d.created_ns, (unsigned long long)f.t0,
			   (unsigned long long)now))
			continue;
		exp = d.expires_ns - f.t0;
		fx_counters(&f, c0);

		fx_at(&f, d.created_ns - f.t0);
		v = fx_send(&f, &s);
		CHECK(v == XDP_DROP_V, "%s: when added: %s", name, vname(v));
		fx_at(&f, exp - 1);
		v = fx_send(&f, &s);
		CHECK(v == XDP_DROP_V, "%s: 1 ns before expiry: %s", name, vname(v));
		CHECK(fx_deny_get(&f, name, &d) == 0, "%s: gone before it expired", name);
		fx_at(&f, exp);
		v = fx_send(&f, &s);
		CHECK(v == XDP_PASS_V, "%s: at expiry: %s", name, vname(v));
		CHECK(fx_deny_get(&f, name, &d) == -ENOENT,
		      "%s: the program left the expired entry in the map", name);
		fx_at(&f, exp + SEC);
		v = fx_send(&f, &s);
		CHECK(v == XDP_PASS_V, "%s: a second after expiry: %s", name, vname(v));

		want[SLUICE_CNT_DROP_DENY] = 2;
		want[SLUICE_CNT_PACKETS] = 4;
		want[SLUICE_CNT_STATE_INSERT] = 1;
		check_counters(&f, name, c0, want);
		check_rule(&f, name, 0, 2, 0, pkt_l4_offset(&s) + 8);
	}
	fx_close(&f);
}

/* An expired entry that is longer than a static one behind it must not
 * shadow it: check_deny deletes what expired and looks again. */
static const struct {
	const char *name;
	const char *policy[MAX_LINES];
	const char *src;
	int drops_after;          /* after expiry: still dropped (by a static entry) */
	const char *gone[2];      /* expired entries the hit removes */
	const char *kept[2];      /* entries still in the map */
} shadow_cases[] = {
	{ "v4 expired /32 over a static /24",
	  { "deny add 198.18.0.0/24", "deny add 198.18.0.1/32 timeout 5" }, "198.18.0.1", 1,
	  { "198.18.0.1/32" }, { "198.18.0.0/24" } },
	{ "v6 expired /128 over a static /48",
	  { "deny add 2001:db8::/48", "deny add 2001:db8::1/128 timeout 5" }, "2001:db8::1", 1,
	  { "2001:db8::1/128" }, { "2001:db8::/48" } },
	{ "v4 expired /32 and /28 over a static /24",
	  { "deny add 198.18.0.0/24", "deny add 198.18.0.0/28 timeout 5",
	    "deny add 198.18.0.1/32 timeout 5" }, "198.18.0.1", 1,
	  { "198.18.0.1/32", "198.18.0.0/28" }, { "198.18.0.0/24" } },
	{ "v6 expired /128 and /64 over a static /32",
	  { "deny add 2001:db8::/32", "deny add 2001:db8::/64 timeout 5",
	    "deny add 2001:db8::1/128 timeout 5" }, "2001:db8::1", 1,
	  { "2001:db8::1/128", "2001:db8::/64" }, { "2001:db8::/32" } },
	{ "v4 static /32 inside an expired /24",
	  { "deny add 198.18.0.0/24 timeout 5", "deny add 198.18.0.1/32" }, "198.18.0.1", 1,
	  {}, { "198.18.0.1/32", "198.18.0.0/24" } },
	{ "v4 neighbour of a static /32 inside an expired /24",
	  { "deny add 198.18.0.0/24 timeout 5", "deny add 198.18.0.1/32" }, "198.18.0.2", 0,
	  { "198.18.0.0/24" }, { "198.18.0.1/32" } },
};

TEST(verdict_expired_deny_does_not_shadow_static)
{
	struct fx f;
	size_t i;
	int j;

	if (fx_open(&f, 0))
		return;
	for (i = 0; i < NELEM(shadow_cases); i++) {
		const char *name = shadow_cases[i].name;
		struct pkt_spec s = {
			.family = strchr(shadow_cases[i].src, ':') ? 6 : 4,
			.src = shadow_cases[i].src,
			.proto = PKT_TCP,
			.dport = 22,
		};
		__u64 c0[SLUICE_CNT_MAX], want[SLUICE_CNT_MAX] = { 0 };
		struct sluice_deny_val d;
		int lines = 0, v;

		if (reset(&f))
			break;
		while (lines < MAX_LINES && shadow_cases[i].policy[lines])
			lines++;
		if (fx_policy(&f, shadow_cases[i].policy, lines, NULL, 0) < 0)
			break;
		/* Now on the clock that stamped the timeouts: before all of
		 * them expire; six seconds on, after. */
		fx_at(&f, monotonic_ns() - f.t0);
		fx_counters(&f, c0);
		v = fx_send(&f, &s);
		CHECK(v == XDP_DROP_V, "%s: before expiry: %s", name, vname(v));
		fx_at(&f, fx_now(&f) - f.t0 + 6 * SEC);
		v = fx_send(&f, &s);
		CHECK(v == (shadow_cases[i].drops_after ? XDP_DROP_V : XDP_PASS_V),
		      "%s: after expiry: %s", name, vname(v));
		for (j = 0; j < 2 && shadow_cases[i].gone[j]; j++)
			CHECK(fx_deny_get(&f, shadow_cases[i].gone[j], &d) == -ENOENT,
			      "%s: expired %s still in the map", name, shadow_cases[i].gone[j]);
		for (j = 0; j < 2 && shadow_cases[i].kept[j]; j++)
			CHECK(fx_deny_get(&f, shadow_cases[i].kept[j], &d) == 0,
			      "%s: %s left the map", name, shadow_cases[i].kept[j]);
		want[SLUICE_CNT_DROP_DENY] = 1 + (__u64)shadow_cases[i].drops_after;
		want[SLUICE_CNT_PACKETS] = 2;
		/* The SYN that gets through opens a connection. */
		want[SLUICE_CNT_FLOW_INSERT] = !shadow_cases[i].drops_after;
		check_counters(&f, name, c0, want);
	}
	fx_close(&f);
}
