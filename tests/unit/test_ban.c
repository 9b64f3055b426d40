// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#define TEST_GROUP "bpf" /* loads BPF programs or creates maps: needs root (harness.h) */
/*
 * Escalation: a rule with `ban S` puts a source's masked prefix on the deny
 * list for S seconds once the rule dropped it ban_strikes (= burst) times
 * within one strike window (docs/design.md, "Escalation: bans"). Checked on
 * the deny map itself, the BANS and DROP_BAN counters, and the verdicts
 * before, during and after the ban.
 */
#include <errno.h>
#include <string.h>
#include <bpf/bpf.h>
#include "fixture.h"
#include "harness.h"

#define MS 1000000ULL
#define SEC 1000000000ULL

static int send_from(struct fx *f, const char *src)
{
	struct pkt_spec s = {
		.family = strchr(src, ':') ? 6 : 4,
		.src = src,
		.proto = PKT_UDP,
		.sport = 1024,
		.dport = 80,
	};

	return fx_send(f, &s);
}

/* At offset t, sends from src until `drops` frames dropped; returns how many
 * passed first (-1 if a frame failed to run or the rule never dropped). */
static int drops_at(struct fx *f, __u64 t, const char *src, int drops)
{
	int passed = 0, sent;

	fx_at(f, t);
	for (sent = 0; drops > 0 && sent < 10000; sent++) {
		int v = send_from(f, src);

		if (v == XDP_PASS_V)
			passed++;
		else if (v == XDP_DROP_V)
			drops--;
		else
			return -1;
	}
	return drops ? -1 : passed;
}

static size_t deny_entries(struct fx *f)
{
	struct sluice_lpm_key k, next;
	void *prev = NULL;
	size_t n = 0;

	while (!bpf_map_get_next_key(f->m.deny, prev, &next)) {
		n++;
		k = next;
		prev = &k;
	}
	return n;
}

static int set_ban(struct fx *f, int slot, __u32 secs, __u32 strikes)
{
	struct sluice_rule r;
	__u32 k = (__u32)slot;

	if (!CHECK(bpf_map_lookup_elem(f->m.rules, &k, &r) == 0, "read rule %d", slot))
		return -1;
	r.ban_secs = secs;
	r.ban_strikes = strikes;
	return CHECK(bpf_map_update_elem(f->m.rules, &k, &r, BPF_EXIST) == 0, "write rule %d",
		     slot) ? 0 : -1;
}

/* The fifth drop within one second bans; the ban drops everything from the
 * source before any rule sees it, and no other source. */
TEST(ban_after_strikes_within_one_second)
{
	const __u64 t = 5 * SEC;
	struct sluice_rule_stats before, after;
	struct sluice_deny_val d;
	struct fx f;
	int slot, n;

	if (fx_open(&f, 0))
		return;
	slot = fx_cmd(&f, "rule add pps 10 burst 5 ban 30");
	if (slot < 0)
		goto out;
	n = drops_at(&f, t, "198.18.0.1", 4);
	CHECK_EQ(n, 5, "passed before 4 drops");
	CHECK(fx_deny_get(&f, "198.18.0.1/32", &d) == -ENOENT, "banned after 4 of 5 strikes");
	CHECK_EQ(fx_counter(&f, SLUICE_CNT_BANS), 0, "bans after 4 strikes");

	n = drops_at(&f, t, "198.18.0.1", 1);
	CHECK_EQ(n, 0, "passed before the 5th drop");
	CHECK_EQ(fx_counter(&f, SLUICE_CNT_BANS), 1, "bans after 5 strikes");
	CHECK_EQ(fx_counter(&f, SLUICE_CNT_DROP_RATE), 5, "rate drops");
	if (CHECK(fx_deny_get(&f, "198.18.0.1/32", &d) == 0, "no ban entry after 5 strikes")) {
		CHECK_EQ(d.kind, SLUICE_DENY_BAN, "kind");
		CHECK_EQ(d.rule_id, fx_rule_id(&f, slot), "rule id");
		CHECK_EQ(d.expires_ns, f.t0 + t + 30 * SEC, "expiry");
		CHECK_EQ(d.created_ns, f.t0 + t, "created");
		CHECK_EQ(d.prefix_len, 32, "prefix length");
	}
	CHECK_EQ(deny_entries(&f), 1, "deny entries");

	/* 10 s on, the bucket is full again: only the ban drops now, and the
	 * rule never sees the frames. */
	before = fx_rstats(&f, slot);
	fx_at(&f, t + 10 * SEC);
	CHECK(send_from(&f, "198.18.0.1") == XDP_DROP_V, "banned source passed");
	CHECK(send_from(&f, "198.18.0.1") == XDP_DROP_V, "banned source passed");
	after = fx_rstats(&f, slot);
	CHECK_EQ(fx_counter(&f, SLUICE_CNT_DROP_BAN), 2, "ban drops");
	CHECK_EQ(fx_counter(&f, SLUICE_CNT_DROP_RATE), 5, "rate drops after the ban");
	CHECK(after.passed_pkts == before.passed_pkts && after.dropped_pkts == before.dropped_pkts,
	      "a banned frame reached the rule");
	CHECK(send_from(&f, "198.18.0.2") == XDP_PASS_V, "another source was banned too");
	CHECK_EQ(fx_counter(&f, SLUICE_CNT_BANS), 1, "bans");
out:
	fx_close(&f);
}

/* What a ban covers is the bucket's masked prefix. */
static const struct {
	const char *rule, *src, *sibling, *outsider, *prefix;
	__u32 plen;
} mask_cases[] = {
	{ "rule add pps 10 burst 5 ban 60 mask4 24", "198.18.0.1", "198.18.0.254", "198.18.1.1",
	  "198.18.0.0/24", 24 },
	{ "rule add pps 10 burst 5 ban 60", "2001:db8:0:1::1", "2001:db8:0:1:ffff::9",
	  "2001:db8:0:2::1", "2001:db8:0:1::/64", 64 },
	{ "rule add pps 10 burst 5 ban 60 mask6 128", "2001:db8::1", "2001:db8::2", "2001:db8::3",
	  "2001:db8::1/128", 128 },
};

TEST(ban_covers_the_masked_prefix)
{
	size_t i;

	for (i = 0; i < NELEM(mask_cases); i++) {
		const char *name = mask_cases[i].rule;
		struct sluice_deny_val d;
		struct fx f;
		int slot;

		if (fx_open(&f, 0))
			return;
		slot = fx_cmd(&f, name);
		if (slot < 0)
			goto next;
		CHECK(drops_at(&f, SEC, mask_cases[i].src, 5) == 5, "%s: 5 pass, then 5 drops",
		      name);
		if (CHECK(fx_deny_get(&f, mask_cases[i].prefix, &d) == 0, "%s: no ban on %s", name,
			  mask_cases[i].prefix))
			CHECK(d.kind == SLUICE_DENY_BAN && d.prefix_len == mask_cases[i].plen &&
			      d.expires_ns == f.t0 + 61 * SEC,
			      "%s: entry kind %u prefix_len %u expires %+lld", name, d.kind,
			      d.prefix_len, (long long)(d.expires_ns - f.t0));
		CHECK_EQ(deny_entries(&f), 1, name);
		fx_at(&f, 2 * SEC);
		if (mask_cases[i].plen < 128)
			CHECK(send_from(&f, mask_cases[i].sibling) == XDP_DROP_V,
			      "%s: %s (same prefix) not banned", name, mask_cases[i].sibling);
		else
			CHECK(send_from(&f, mask_cases[i].sibling) == XDP_PASS_V,
			      "%s: %s (its own /128) banned", name, mask_cases[i].sibling);
		CHECK(send_from(&f, mask_cases[i].outsider) == XDP_PASS_V,
		      "%s: %s (other prefix) banned", name, mask_cases[i].outsider);
		CHECK_EQ(fx_counter(&f, SLUICE_CNT_DROP_BAN), mask_cases[i].plen < 128, name);

		/* On expiry the program deletes the entry from a frame whose
		 * address has host bits the entry's key does not. */
		fx_at(&f, 61 * SEC);
		CHECK(send_from(&f, mask_cases[i].plen < 128 ? mask_cases[i].sibling :
				mask_cases[i].src) == XDP_PASS_V, "%s: dropped after expiry", name);
		CHECK(fx_deny_get(&f, mask_cases[i].prefix, &d) == -ENOENT,
		      "%s: expired %s not deleted", name, mask_cases[i].prefix);
next:
		fx_close(&f);
	}
}

/* Strikes counted per window: the window opens when the bucket is created
 * or at the first drop more than 1 s after the window opened, so five drops
 * ban only when they fall in one such window. Each row is the (time, drops)
 * schedule of one source on "pps 10 burst 5 ban 30"; bucket created at 0. */
static const struct {
	const char *name;
	struct {
		__u64 at;
		int drops;
	} sched[4];
	int banned;
	__u64 strikes; /* in the bucket at the end */
} window_cases[] = {
	{ "5 at once", { { 0, 5 } }, 1, 5 },
	{ "4, then 1 at 0.999 s", { { 0, 4 }, { 999 * MS, 1 } }, 1, 5 },
	{ "4, then 1 at 1 s", { { 0, 4 }, { SEC, 1 } }, 1, 5 },
	{ "4, then 1 at 1 s + 1 ns", { { 0, 4 }, { SEC + 1, 1 } }, 0, 1 },
	{ "4, then 1 at 1.5 s", { { 0, 4 }, { 1500 * MS, 1 } }, 0, 1 },
	{ "2, 2 at 0.6 s, 1 at 1.2 s", { { 0, 2 }, { 600 * MS, 2 }, { 1200 * MS, 1 } }, 0, 1 },
	/* the window reopened at 1.5 s holds 1 + 4 */
	{ "4, 1 at 1.5 s, 4 at 2.4 s", { { 0, 4 }, { 1500 * MS, 1 }, { 2400 * MS, 4 } }, 1, 5 },
	{ "1 every 2 s", { { 0, 1 }, { 2 * SEC, 1 }, { 4 * SEC, 1 }, { 6 * SEC, 1 } },
	  0, 1 },
};

TEST(ban_strike_window)
{
	size_t i, j;

	for (i = 0; i < NELEM(window_cases); i++) {
		const char *name = window_cases[i].name;
		struct sluice_bucket_key k;
		struct sluice_deny_val d;
		struct sluice_bucket b;
		struct fx f;
		int slot, bad = 0;

		if (fx_open(&f, 0))
			return;
		slot = fx_cmd(&f, "rule add pps 10 burst 5 ban 30");
		if (slot < 0)
			goto next;
		for (j = 0; j < NELEM(window_cases[i].sched) && window_cases[i].sched[j].drops; j++)
			bad += drops_at(&f, window_cases[i].sched[j].at, "198.18.0.1",
					window_cases[i].sched[j].drops) < 0;
		CHECK(bad == 0, "%s: the schedule could not be sent", name);
		CHECK(fx_counter(&f, SLUICE_CNT_BANS) == (__u64)window_cases[i].banned,
		      "%s: bans %llu, want %d", name,
		      (unsigned long long)fx_counter(&f, SLUICE_CNT_BANS), window_cases[i].banned);
		CHECK((fx_deny_get(&f, "198.18.0.1/32", &d) == 0) == window_cases[i].banned,
		      "%s: ban entry present: %d, want %d", name,
		      fx_deny_get(&f, "198.18.0.1/32", &d) == 0, window_cases[i].banned);
		k = fx_bkey(fx_rule_id(&f, slot), "198.18.0.1", 32);
		if (CHECK(fx_bucket(&f, &k, &b) == 0, "%s: no bucket", name))
			CHECK(b.strikes == window_cases[i].strikes, "%s: %llu strikes, want %llu",
			      name, (unsigned long long)b.strikes,
			      (unsigned long long)window_cases[i].strikes);
next:
		fx_close(&f);
	}
}

/* A ban lasts exactly S seconds; then the program deletes the entry on the
 * next frame, which goes on to the rule and passes with a full bucket. If
 * the source keeps flooding, it is banned again. */
TEST(ban_expires_then_source_is_limited_again)
{
	const __u64 t = 3 * SEC, exp = t + 30 * SEC;
	struct sluice_deny_val d;
	struct fx f;
	int slot, n;

	if (fx_open(&f, 0))
		return;
	slot = fx_cmd(&f, "rule add pps 10 burst 5 ban 30");
	if (slot < 0)
		goto out;
	n = drops_at(&f, t, "198.18.0.1", 5);
	CHECK_EQ(n, 5, "passed before the ban");
	CHECK_EQ(fx_counter(&f, SLUICE_CNT_BANS), 1, "bans");

	fx_at(&f, exp - 1);
	CHECK(send_from(&f, "198.18.0.1") == XDP_DROP_V, "ban lifted 1 ns early");
	CHECK_EQ(fx_counter(&f, SLUICE_CNT_DROP_BAN), 1, "ban drops");
	CHECK(fx_deny_get(&f, "198.18.0.1/32", &d) == 0, "ban entry gone before expiry");

	/* Expired: the frame reaches the rule (a fresh burst of 5), and the
	 * entry is gone from the map. */
	n = drops_at(&f, exp, "198.18.0.1", 4);
	CHECK_EQ(n, 5, "passed after the ban");
	CHECK(fx_deny_get(&f, "198.18.0.1/32", &d) == -ENOENT, "expired ban not deleted");
	CHECK_EQ(fx_counter(&f, SLUICE_CNT_DROP_BAN), 1, "ban drops after expiry");
	CHECK_EQ(fx_counter(&f, SLUICE_CNT_BANS), 1, "bans after expiry");
	CHECK_EQ(fx_rstats(&f, slot).passed_pkts, 10, "rule passes");

	/* Still flooding: the fifth drop of the new window bans again. */
	n = drops_at(&f, exp, "198.18.0.1", 1);
	CHECK_EQ(n, 0, "passed before the second ban");
	CHECK_EQ(fx_counter(&f, SLUICE_CNT_BANS), 2, "second ban");
	if (CHECK(fx_deny_get(&f, "198.18.0.1/32", &d) == 0, "no second ban entry"))
		CHECK_EQ(d.expires_ns, f.t0 + exp + 30 * SEC, "second expiry");
out:
	fx_close(&f);
}

/* An expired /32 ban is longer than a static /16 deny behind it: the
 * program must delete it and look again, not pass the frame. */
TEST(ban_expired_does_not_shadow_static_deny)
{
	struct sluice_deny_val d;
	struct fx f;
	int slot, n;

	if (fx_open(&f, 0))
		return;
	slot = fx_cmd(&f, "rule add pps 10 burst 5 ban 60");
	if (slot < 0)
		goto out;
	n = drops_at(&f, 0, "198.18.0.1", 5);
	CHECK_EQ(n, 5, "passed before the ban");
	if (fx_cmd(&f, "deny add 198.18.0.0/16") < 0)
		goto out;
	CHECK(fx_deny_get(&f, "198.18.0.1/32", &d) == 0, "the transaction dropped the ban");
	fx_at(&f, 60 * SEC);
	CHECK(send_from(&f, "198.18.0.1") == XDP_DROP_V, "expired ban shadowed the deny");
	CHECK_EQ(fx_counter(&f, SLUICE_CNT_DROP_DENY), 1, "deny drops");
	CHECK_EQ(fx_counter(&f, SLUICE_CNT_DROP_BAN), 0, "ban drops");
	CHECK(fx_deny_get(&f, "198.18.0.1/32", &d) == -ENOENT, "expired ban not deleted");
	CHECK(fx_deny_get(&f, "198.18.0.0/16", &d) == 0 && d.kind == SLUICE_DENY_STATIC,
	      "the static deny went with the ban");
out:
	fx_close(&f);
}

/* Rules that cannot ban: the CLI refuses `ban` with `action count` and with
 * `key rule`; and should such a rule reach the map anyway, the program
 * bans nobody (a dry run only counts; a rule-wide bucket has no source). */
static const struct {
	const char *refused, *why, *rule;
	int drops;             /* does the rule drop, or only count */
	int over;              /* of 50 frames from two sources, over the limit */
} noban_cases[] = {
	{ "rule add pps 10 burst 5 action count ban 30", "'ban' cannot go with 'action count'",
	  "rule add pps 10 burst 5 action count", 0, 40 }, /* two buckets of 5 */
	{ "rule add pps 10 burst 5 key rule ban 30", "'ban' needs 'key src'",
	  "rule add pps 10 burst 5 key rule", 1, 45 },     /* one bucket of 5 */
};

TEST(ban_never_from_count_or_rule_wide)
{
	size_t i;

	for (i = 0; i < NELEM(noban_cases); i++) {
		const char *name = noban_cases[i].rule;
		struct sluice_rule_stats rs;
		char err[256] = "";
		int slot, n, over, passed = 0;
		struct fx f;

		if (fx_open(&f, 0))
			return;
		slot = fx_policy(&f, &noban_cases[i].refused, 1, err, sizeof(err));
		CHECK(slot == -EINVAL && strstr(err, noban_cases[i].why),
		      "'%s': returned %d, '%s'", noban_cases[i].refused, slot, err);
		CHECK_EQ(fx_rule_id(&f, 0), 0, "a refused rule was written");

		slot = fx_cmd(&f, name);
		if (slot < 0 || set_ban(&f, slot, 30, 5))
			goto next;
		fx_at(&f, SEC);
		for (n = 0; n < 50; n++)
			passed += send_from(&f, n % 2 ? "198.18.0.1" : "198.18.0.2") == XDP_PASS_V;
		over = noban_cases[i].over;
		CHECK(passed == (noban_cases[i].drops ? 50 - over : 50), "%s: %d of 50 passed",
		      name, passed);
		rs = fx_rstats(&f, slot);
		CHECK(rs.passed_pkts == (__u64)(50 - over) && rs.dropped_pkts == (__u64)over,
		      "%s: rule stats %llu/%llu", name, (unsigned long long)rs.passed_pkts,
		      (unsigned long long)rs.dropped_pkts);
		CHECK_EQ(fx_counter(&f, SLUICE_CNT_DROP_RATE), noban_cases[i].drops ? over : 0,
			 name);
		CHECK_EQ(fx_counter(&f, SLUICE_CNT_BANS), 0, name);
		CHECK_EQ(deny_entries(&f), 0, name);
next:
		fx_close(&f);
	}
}
