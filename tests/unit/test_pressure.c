// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#define TEST_GROUP "bpf" /* loads BPF programs or creates maps: needs root (harness.h) */
/*
 * State-table pressure (docs/design.md, "State table pressure"): a flood of
 * spoofed sources must not create per-source entries faster than the
 * state-insert limiter allows, the sources it refuses share the rule's
 * overflow bucket, a source that had an entry before the flood keeps it, and
 * without the limiter the LRU's evictions can be told from the counters.
 * The limiter is configured the way `sluice attach --insert-rate` does it,
 * with loader_init_config().
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/bpf.h>
#include "fixture.h"
#include "harness.h"
#include "loader.h"
#include "stats.h"

#define MS 1000000ULL
#define SEC 1000000000ULL

#define LEGIT "192.0.2.1"

static int send_to(struct fx *f, const char *src, __u16 dport)
{
	struct pkt_spec s = {
		.family = 4, .src = src, .proto = PKT_UDP, .sport = 1024, .dport = dport,
	};

	return fx_send(f, &s);
}

/* Spoofed source number j: 10.x.y.1, distinct for j < 65536. */
static const char *spoofed(unsigned int j, char *buf, size_t len)
{
	snprintf(buf, len, "10.%u.%u.1", (j >> 8) & 255, j & 255);
	return buf;
}

/* One frame from each of n new sources, source j at j * gap ns from `from`.
 * Returns how many failed to run. */
static int flood(struct fx *f, unsigned int n, __u64 from, __u64 gap)
{
	char a[32];
	unsigned int j;
	int bad = 0;

	for (j = 0; j < n; j++) {
		int v;

		fx_at(f, from + j * gap);
		v = send_to(f, spoofed(j, a, sizeof(a)), 80);
		bad += v != XDP_PASS_V && v != XDP_DROP_V;
	}
	return bad;
}

static int read_cfg(struct fx *f, struct sluice_config *cfg)
{
	__u32 zero = 0;

	return CHECK(bpf_map_lookup_elem(f->m.cfg, &zero, cfg) == 0, "read config") ? 0 : -1;
}

/* The state-insert limiter at `rate` per second with a burst of
 * table / 100, as `sluice attach --state-size TABLE --insert-rate RATE`. */
static int set_insert_rate(struct fx *f, __u32 table, __u64 rate)
{
	int err = loader_init_config(f->m.cfg, table, rate);

	return CHECK(err == 0, "loader_init_config: %s", strerror(-err)) ? 0 : -1;
}

/* What the bucket table holds, for one rule. */
struct census {
	size_t per_source, overflow, other;
	__u64 passed, dropped; /* summed over the rule's buckets */
	struct sluice_bucket ovf;
};

static int take_census(struct fx *f, __u32 id, struct census *c)
{
	struct bucket_row *rows = NULL;
	size_t n = 0, i;
	int err = stats_buckets(&f->m, &rows, &n);

	memset(c, 0, sizeof(*c));
	if (!CHECK(err == 0, "read buckets: %s", strerror(-err)))
		return -1;
	for (i = 0; i < n; i++) {
		const struct sluice_bucket_key *k = &rows[i].key;

		if (k->rule_id != id) {
			c->other++;
			continue;
		}
		if (k->prefix_len == SLUICE_OVERFLOW_PREFIX && k->family == SLUICE_AF_NONE) {
			c->overflow++;
			c->ovf = rows[i].val;
		} else {
			c->per_source++;
		}
		c->passed += rows[i].val.passed_pkts;
		c->dropped += rows[i].val.dropped_pkts;
	}
	free(rows);
	return 0;
}

/* Insert rate 1000/s, burst 50. A legitimate source has its bucket before
 * 5001 spoofed sources arrive one every 0.2 ms for 1 s (t = 0 .. 1 s, both
 * included). The n-th insert is due at n * 1 ms - 50 ms, so by 1 s exactly
 * 1000 + 50 sources (the legitimate one among them) have entries; the other
 * 3952 share the overflow bucket, whose creation is one more insert. */
TEST(pressure_insert_limiter_caps_new_entries)
{
	struct sluice_bucket_key k;
	struct sluice_rule_stats rs;
	struct sluice_config cfg;
	struct sluice_bucket b;
	struct census c;
	struct fx f;
	int slot, i, bad, passed = 0;
	__u32 id;

	if (fx_open(&f, 0))
		return;
	if (set_insert_rate(&f, 5000, 1000) || read_cfg(&f, &cfg))
		goto out;
	CHECK(cfg.insert_interval_fp == (SEC << SLUICE_FP_SHIFT) / 1000 &&
	      cfg.insert_tolerance_ns == 50 * MS, "insert limiter interval_fp %llu tolerance %llu",
	      (unsigned long long)cfg.insert_interval_fp,
	      (unsigned long long)cfg.insert_tolerance_ns);
	slot = fx_cmd(&f, "rule add pps 10 burst 5");
	if (slot < 0)
		goto out;
	id = fx_rule_id(&f, slot);

	fx_at(&f, 0);
	for (i = 0; i < 3; i++)
		passed += send_to(&f, LEGIT, 80) == XDP_PASS_V;
	CHECK_EQ(passed, 3, "legitimate frames passed before the flood");
	bad = flood(&f, 5001, 0, 200000); /* not in CHECK_EQ: it evaluates twice */
	CHECK_EQ(bad, 0, "flood frames that failed to run");

	CHECK_EQ(fx_counter(&f, SLUICE_CNT_STATE_INSERT), 1050 + 1, "inserts");
	CHECK_EQ(fx_counter(&f, SLUICE_CNT_STATE_THROTTLED), 5002 - 1050, "throttled");
	if (take_census(&f, id, &c) == 0) {
		CHECK_EQ(c.per_source, 1050, "per-source entries");
		CHECK_EQ(c.overflow, 1, "overflow buckets");
		CHECK_EQ(c.other, 0, "other buckets");
		/* Each throttled source sent one frame into the overflow bucket. */
		CHECK_EQ(c.ovf.passed_pkts + c.ovf.dropped_pkts, 5002 - 1050, "overflow frames");
		/* ...which limits them together as one source: 1 s + burst. */
		CHECK(c.ovf.passed_pkts <= 10 + 5 && c.ovf.dropped_pkts > 0,
		      "overflow bucket passed %llu", (unsigned long long)c.ovf.passed_pkts);
		rs = fx_rstats(&f, slot);
		CHECK(c.passed == rs.passed_pkts && c.dropped == rs.dropped_pkts,
		      "buckets %llu/%llu, rule %llu/%llu", (unsigned long long)c.passed,
		      (unsigned long long)c.dropped, (unsigned long long)rs.passed_pkts,
		      (unsigned long long)rs.dropped_pkts);
	}

	/* The legitimate source kept its own bucket, so it is not in the
	 * overflow bucket's crowd: it passes where a new source drops. */
	k = fx_bkey(id, LEGIT, 32);
	if (CHECK(fx_bucket(&f, &k, &b) == 0, "the legitimate source lost its bucket"))
		CHECK(b.created_ns == f.t0 && b.passed_pkts == 3 && b.dropped_pkts == 0,
		      "legitimate bucket created %+lld passed %llu dropped %llu",
		      (long long)(b.created_ns - f.t0), (unsigned long long)b.passed_pkts,
		      (unsigned long long)b.dropped_pkts);
	fx_at(&f, SEC);
	CHECK(send_to(&f, LEGIT, 80) == XDP_PASS_V, "legitimate source dropped after the flood");
	CHECK(send_to(&f, "10.200.0.1", 80) == XDP_DROP_V, "a new source passed the overflow");
	CHECK_EQ(fx_counter(&f, SLUICE_CNT_STATE_THROTTLED), 5002 - 1050 + 1, "throttled");
	if (CHECK(fx_bucket(&f, &k, &b) == 0, "the legitimate source lost its bucket"))
		CHECK_EQ(b.passed_pkts, 4, "legitimate passes");
out:
	fx_close(&f);
}

/* A 256-entry table and the same flood: with the limiter (100/s, burst 2)
 * only 100 + 2 sources get entries, nothing is evicted, and the legitimate
 * source keeps its bucket; without it the flood turns the LRU over and the
 * legitimate source comes back to a fresh bucket (and a fresh burst). */
static const struct small_case {
	const char *name;
	__u64 insert_rate; /* 0: no limiter */
	__u64 inserts, throttled;
	int kept;
} small_cases[] = {
	{ "insert rate 100", 100, 102 + 1, 5002 - 102, 1 },
	{ "no insert limiter", 0, 5002, 0, 0 },
};

TEST(pressure_small_table_keeps_known_sources)
{
	size_t i;

	for (i = 0; i < NELEM(small_cases); i++) {
		const struct small_case *sc = &small_cases[i];
		const char *name = sc->name;
		struct sluice_bucket_key k;
		struct sluice_bucket b;
		struct fx f;
		size_t live;
		int slot, n, passed = 0;

		if (fx_open(&f, 256))
			return;
		if (sc->insert_rate && set_insert_rate(&f, 256, sc->insert_rate))
			goto next;
		slot = fx_cmd(&f, "rule add pps 10 burst 5");
		if (slot < 0)
			goto next;
		fx_at(&f, 0);
		for (n = 0; n < 3; n++)
			passed += send_to(&f, LEGIT, 80) == XDP_PASS_V;
		CHECK(passed == 3, "%s: %d legitimate frames passed", name, passed);
		CHECK(flood(&f, 5001, 0, 200000) == 0, "%s: flood frames failed to run", name);

		CHECK_EQ(fx_counter(&f, SLUICE_CNT_STATE_INSERT), sc->inserts, name);
		CHECK_EQ(fx_counter(&f, SLUICE_CNT_STATE_THROTTLED), sc->throttled, name);
		live = fx_nbuckets(&f);
		CHECK(live <= 256, "%s: %zu entries in a table of 256", name, live);
		if (sc->kept)
			CHECK(live == sc->inserts, "%s: %zu live of %llu inserted", name, live,
			      (unsigned long long)sc->inserts);
		k = fx_bkey(fx_rule_id(&f, slot), LEGIT, 32);
		CHECK((fx_bucket(&f, &k, &b) == 0) == sc->kept,
		      "%s: legitimate bucket present %d, want %d", name, fx_bucket(&f, &k, &b) == 0,
		      sc->kept);

		fx_at(&f, SEC);
		CHECK(send_to(&f, LEGIT, 80) == XDP_PASS_V, "%s: legitimate source dropped", name);
		if (CHECK(fx_bucket(&f, &k, &b) == 0, "%s: no legitimate bucket", name))
			CHECK(b.created_ns == f.t0 + (sc->kept ? 0 : SEC) &&
			      b.passed_pkts == (sc->kept ? 4u : 1u),
			      "%s: legitimate bucket created %+lld passed %llu", name,
			      (long long)(b.created_ns - f.t0), (unsigned long long)b.passed_pkts);
next:
		fx_close(&f);
	}
}

/* No limiter, a 256-entry table, 1000 sources: the LRU never holds more
 * than its size, and evictions = inserts - deleted - live (include/sluice.h)
 * is exactly the number of sources whose bucket is gone, counted here one by
 * one. A `rule del` moves the rule's live buckets to `deleted` and leaves the
 * eviction figure as it was. */
TEST(pressure_lru_evictions_add_up)
{
	struct sluice_config cfg;
	__u64 inserts, evictions;
	size_t live, missing = 0;
	struct sluice_bucket b;
	char a[32], line[64];
	unsigned int j;
	struct fx f;
	int slot, bad;
	__u32 id;

	if (fx_open(&f, 256))
		return;
	if (read_cfg(&f, &cfg))
		goto out;
	CHECK_EQ(cfg.insert_interval_fp, 0, "insert limiter of a fresh fixture");
	slot = fx_cmd(&f, "rule add pps 10 burst 5");
	if (slot < 0)
		goto out;
	id = fx_rule_id(&f, slot);
	bad = flood(&f, 1000, 0, MS);
	CHECK_EQ(bad, 0, "frames that failed to run");

	inserts = fx_counter(&f, SLUICE_CNT_STATE_INSERT);
	CHECK_EQ(inserts, 1000, "inserts");
	CHECK_EQ(fx_counter(&f, SLUICE_CNT_STATE_THROTTLED), 0, "throttled");
	live = fx_nbuckets(&f);
	CHECK(live > 0 && live <= 256, "%zu live entries in a table of 256", live);
	for (j = 0; j < 1000; j++) {
		struct sluice_bucket_key k = fx_bkey(id, spoofed(j, a, sizeof(a)), 32);

		missing += fx_bucket(&f, &k, &b) == -ENOENT;
	}
	if (read_cfg(&f, &cfg))
		goto out;
	evictions = inserts - cfg.state_deleted - live;
	CHECK(evictions == missing, "evictions %llu (inserts %llu - deleted %llu - live %zu), "
	      "but %zu buckets are gone", (unsigned long long)evictions,
	      (unsigned long long)inserts, (unsigned long long)cfg.state_deleted, live, missing);
	CHECK(missing >= 1000 - 256, "only %zu of 1000 evicted from 256 entries", missing);

	snprintf(line, sizeof(line), "rule del %u", id);
	if (fx_cmd(&f, line) < 0 || read_cfg(&f, &cfg))
		goto out;
	CHECK_EQ(cfg.state_deleted, live, "buckets deleted with the rule");
	CHECK_EQ(fx_nbuckets(&f), 0, "buckets left after rule del");
	CHECK_EQ(fx_counter(&f, SLUICE_CNT_STATE_INSERT) - cfg.state_deleted - fx_nbuckets(&f),
		 missing, "evictions after rule del");
out:
	fx_close(&f);
}

/* Sources the limiter refused share one bucket that has no source: it never
 * bans (it has no source to ban), even when it drops far past the strikes.
 * A refused source gets its own entry once the budget refills, and a
 * rule-wide bucket needs no budget at all. Insert rate 1/s, burst 1. */
TEST(pressure_overflow_bucket_shares_and_never_bans)
{
	struct sluice_bucket_key k;
	struct sluice_deny_val d;
	struct sluice_bucket b;
	struct census c;
	char a[32];
	struct fx f;
	int slot, wide, j, passed = 0;

	if (fx_open(&f, 0))
		return;
	if (set_insert_rate(&f, 100, 1))
		goto out;
	slot = fx_cmd(&f, "rule add dport 80 proto udp pps 10 burst 5 ban 30");
	wide = fx_cmd(&f, "rule add dport 53 proto udp pps 10 burst 5 key rule");
	if (slot < 0 || wide < 0)
		goto out;

	fx_at(&f, 0);
	CHECK(send_to(&f, "198.18.0.1", 80) == XDP_PASS_V, "the first source dropped");
	for (j = 0; j < 20; j++) {
		snprintf(a, sizeof(a), "198.18.1.%d", j);
		passed += send_to(&f, a, 80) == XDP_PASS_V;
	}
	CHECK_EQ(passed, 5, "refused sources passed (one shared burst)");
	CHECK_EQ(fx_counter(&f, SLUICE_CNT_STATE_THROTTLED), 20, "throttled");
	CHECK_EQ(fx_counter(&f, SLUICE_CNT_STATE_INSERT), 2, "inserts (source + overflow)");
	CHECK_EQ(fx_counter(&f, SLUICE_CNT_DROP_RATE), 15, "rate drops");
	CHECK_EQ(fx_counter(&f, SLUICE_CNT_BANS), 0, "bans");
	CHECK(fx_deny_get(&f, "198.18.1.0/32", &d) == -ENOENT, "a refused source was banned");
	if (take_census(&f, fx_rule_id(&f, slot), &c) == 0) {
		CHECK(c.per_source == 1 && c.overflow == 1, "%zu per-source, %zu overflow buckets",
		      c.per_source, c.overflow);
		CHECK(c.ovf.passed_pkts == 5 && c.ovf.dropped_pkts == 15,
		      "overflow bucket passed %llu dropped %llu",
		      (unsigned long long)c.ovf.passed_pkts,
		      (unsigned long long)c.ovf.dropped_pkts);
	}

	/* No budget left, yet the rule-wide bucket is created. */
	CHECK(send_to(&f, "198.18.2.1", 53) == XDP_PASS_V, "rule-wide rule dropped");
	CHECK_EQ(fx_counter(&f, SLUICE_CNT_STATE_INSERT), 3, "inserts with the rule-wide bucket");
	CHECK_EQ(fx_counter(&f, SLUICE_CNT_STATE_THROTTLED), 20, "throttled by a rule-wide rule");

	/* One second later there is one insert again. */
	fx_at(&f, SEC);
	CHECK(send_to(&f, "198.18.1.0", 80) == XDP_PASS_V, "refused source dropped");
	k = fx_bkey(fx_rule_id(&f, slot), "198.18.1.0", 32);
	if (CHECK(fx_bucket(&f, &k, &b) == 0, "refused source got no entry once budget returned"))
		CHECK(b.created_ns == f.t0 + SEC && b.passed_pkts == 1,
		      "its bucket created %+lld passed %llu", (long long)(b.created_ns - f.t0),
		      (unsigned long long)b.passed_pkts);
	CHECK(send_to(&f, "198.18.1.1", 80) == XDP_PASS_V, "overflow bucket not refilled");
	CHECK_EQ(fx_counter(&f, SLUICE_CNT_STATE_THROTTLED), 21, "throttled after refill");
	k = fx_bkey(fx_rule_id(&f, slot), "198.18.1.1", 32);
	CHECK(fx_bucket(&f, &k, &b) == -ENOENT, "two inserts with a budget of one");
out:
	fx_close(&f);
}
