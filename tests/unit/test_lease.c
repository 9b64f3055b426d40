// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * A gateway's side of a global rule on a test clock: wants from counters,
 * the lease while it lives, the safe share after, never zero, bursts in
 * proportion, and the rule's compiled fields following the lease.
 */
#include <string.h>
#include "harness.h"
#include "lease.h"
#include "rate.h"
#include "rule.h"

#define S 1000000000ULL

static int global_rule(const char *words, struct sluice_rule *r)
{
	char buf[256], *argv[32];
	struct errbuf e;
	int argc = 0;

	snprintf(buf, sizeof(buf), "%s", words);
	for (char *t = strtok(buf, " "); t && argc < 32; t = strtok(NULL, " "))
		argv[argc++] = t;
	if (rule_parse(argc, argv, r, &e)) {
		CHECK(0, "rule_parse '%s': %s", words, e.msg);
		return -1;
	}
	return 0;
}

TEST(lease_global_rule_grammar)
{
	struct sluice_rule r;
	char *bad1[] = { "pps", "10", "global" };
	char *bad2[] = { "name", "x", "pps", "10", "global" };
	char *bad3[] = { "name", "x", "pps", "10", "key", "rule", "global", "global" };
	struct errbuf e;
	char desc[256];

	CHECK(rule_parse(3, bad1, &r, &e) != 0 && strstr(e.msg, "name"), "global needs a name: %s",
	      e.msg);
	CHECK(rule_parse(5, bad2, &r, &e) != 0 && strstr(e.msg, "key rule"),
	      "global needs key rule: %s", e.msg);
	CHECK(rule_parse(8, bad3, &r, &e) != 0 && strstr(e.msg, "twice"), "twice: %s", e.msg);
	if (global_rule("name api dport 8080 proto tcp pps 30k key rule global", &r))
		return;
	CHECK(r.flags & SLUICE_RULE_GLOBAL, "flag set");
	CHECK_EQ(r.pps, 30000, "pps parsed after a flag word");
	rule_describe(&r, desc, sizeof(desc));
	CHECK(strstr(desc, " global") != NULL, "described: %s", desc);
}

TEST(lease_wants_follow_counters)
{
	struct sluice_rule r;
	struct lease l;
	struct lease_sample s = { 0 };

	if (global_rule("name api pps 30000 burst 3000 bps 80m conn-rate 100 conns 50 key rule global",
			&r))
		return;
	lease_init(&l, &r, 3);
	CHECK_EQ(l.global[SLUICE_FLEET_PPS], 30000, "G pps");
	CHECK_EQ(l.gburst[SLUICE_FLEET_PPS], 3000, "B pps");
	lease_sample(&l, &s, 10 * S);
	CHECK_EQ(l.want[SLUICE_FLEET_PPS], 0, "no rate from one sample");
	s.pkts = 8000;             /* 8000 packets in 1 s */
	s.bytes = 8000 * 100;
	s.conns_opened = 40;
	s.conns_open = 20;
	lease_sample(&l, &s, 11 * S);
	CHECK_EQ(l.want[SLUICE_FLEET_PPS], 8400, "pps want = 1.05 x rate");
	CHECK_EQ(l.want[SLUICE_FLEET_BPS], 6720000, "bps want = 1.05 x bits/s");
	CHECK_EQ(l.want[SLUICE_FLEET_CONN_RATE], 42, "conn-rate want");
	CHECK_EQ(l.want[SLUICE_FLEET_CONNS], 21, "conns want from open connections");
	s.pkts += 0;               /* idle for 2 s: the want falls to the minimum at once */
	lease_sample(&l, &s, 13 * S);
	CHECK_EQ(l.want[SLUICE_FLEET_PPS], 1, "an idle gateway wants 1");
}

TEST(lease_enforce_lease_then_safe_share)
{
	struct sluice_rule r, pinned;
	struct lease l;
	uint64_t grant[SLUICE_FLEET_KINDS] = { 12000, 0, 0, 0 }, e[SLUICE_FLEET_KINDS];
	struct sluice_fleet_rule f;

	if (global_rule("name api pps 30000 burst 3000 key rule global", &r))
		return;
	r.id = 7;
	lease_init(&l, &r, 0);
	lease_enforce(&l, 1 * S, e);
	CHECK_EQ(e[SLUICE_FLEET_PPS], 30000, "before any answer: G / 1 (no gateway count yet)");
	CHECK_EQ(e[SLUICE_FLEET_BPS], 0, "a kind without a global limit is 0");

	lease_granted(&l, grant, 3, 3000, 2 * S);
	lease_enforce(&l, 4 * S, e);
	CHECK_EQ(e[SLUICE_FLEET_PPS], 12000, "the lease while it lives");
	pinned = r;
	lease_write_rule(&l, e, &pinned);
	CHECK_EQ(pinned.pps, 12000, "rule pps = lease");
	CHECK_EQ(pinned.burst, 1200, "burst = B x lease / G");
	CHECK_EQ(pinned.pkt_interval_fp, rate_interval_fp(12000), "compiled interval follows");
	CHECK_EQ(pinned.pkt_tolerance_ns, rate_tolerance_ns(rate_interval_fp(12000), 1200),
		 "compiled tolerance follows");
	lease_describe(&l, e, 2, &f);
	CHECK(f.rule_id == 7 && f.source == SLUICE_LEASE_GRANTED && f.expires_ns == 5 * S,
	      "fleet entry: id %u source %u expires %llu", f.rule_id, f.source,
	      (unsigned long long)f.expires_ns);

	lease_enforce(&l, 5 * S, e);  /* expired: the lease ends exactly at send + lease */
	CHECK_EQ(e[SLUICE_FLEET_PPS], 10000, "expired: G / 3 gateways last seen");
	CHECK_EQ(l.source, SLUICE_LEASE_SAFE, "source safe-share");

	grant[SLUICE_FLEET_PPS] = 0;
	lease_granted(&l, grant, 3, 3000, 6 * S);
	lease_enforce(&l, 6 * S, e);
	CHECK_EQ(e[SLUICE_FLEET_PPS], 1, "a grant of 0 is enforced as 1: never zero");
	lease_write_rule(&l, e, &pinned);
	CHECK_EQ(pinned.burst, 1, "burst at least 1");
}

TEST(lease_adopt_after_restart)
{
	struct sluice_rule r;
	struct lease a, b;
	uint64_t grant[SLUICE_FLEET_KINDS] = { 5000, 0, 0, 0 }, e[SLUICE_FLEET_KINDS];
	struct sluice_fleet_rule f;

	if (global_rule("name api pps 30000 key rule global", &r))
		return;
	r.id = 9;
	lease_init(&a, &r, 1);
	lease_granted(&a, grant, 4, 3000, 10 * S);
	lease_enforce(&a, 11 * S, e);
	lease_describe(&a, e, 2, &f);
	lease_init(&b, &r, 1);
	lease_adopt(&b, &f);
	lease_enforce(&b, 12 * S, e);
	CHECK_EQ(e[SLUICE_FLEET_PPS], 5000, "a restarted daemon keeps the live lease");
	lease_enforce(&b, 13 * S, e);
	CHECK_EQ(e[SLUICE_FLEET_PPS], 7500, "then the safe share with the gateways it knew");
	f.rule_id = 10;
	lease_init(&b, &r, 1);
	lease_adopt(&b, &f);
	CHECK_EQ(b.source, SLUICE_LEASE_NONE, "another rule's entry is not adopted");
}
