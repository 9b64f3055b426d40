// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#define TEST_GROUP "bpf" /* loads BPF programs or creates maps: needs root (harness.h) */
/*
 * Connection limits (conns, conn-rate) and the counts behind them: exactly
 * N concurrent connections per limit key, the slot of a closed, reset or
 * expired connection reusable, `action count` never dropping, conn-rate on
 * the test clock, the flow-table-full policy, and no count ever leaking.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include "fixture.h"
#include "harness.h"
#include "stats.h"

#define MS 1000000ULL
#define SEC 1000000000ULL
#define FA (PKT_FIN | PKT_ACK)

static int open_tc(struct fx *f, __u32 flow_entries)
{
	struct fx_opts o = { .tc = 1, .flow_entries = flow_entries };

	return fx_open_opts(f, &o);
}

static struct pkt_spec conn(int family, const char *src, __u16 sport)
{
	struct pkt_spec s = { .family = family, .src = src, .proto = PKT_TCP, .sport = sport,
			      .dport = 80 };

	return s;
}

/* The count of a key, 0 if it has no entry. */
static __u64 count_of(struct fx *f, const struct sluice_bucket_key *k)
{
	struct sluice_conn_count c;

	return fx_conn_count(f, k, &c) ? 0 : c.count;
}

/* --- conns: exactly N per key -------------------------------------------- */

struct key_case {
	const char *name;
	const char *rule;      /* with conns N */
	int family;
	const char *same[2];   /* two sources that share one key */
	const char *other;     /* a source with a key of its own, or NULL */
	const char *key_addr;  /* the key's (masked) address, NULL for key rule */
	__u8 key_plen;
};

#define N 3

static const struct key_case key_cases[] = {
	{ "v4 per source", "rule add dport 80 conns 3", 4, { "198.18.0.1", "198.18.0.1" },
	  "198.18.0.2", "198.18.0.1", 32 },
	{ "v4 masked /24", "rule add dport 80 conns 3 mask4 24", 4,
	  { "198.18.0.1", "198.18.0.77" }, "198.18.1.1", "198.18.0.0", 24 },
	{ "v4 key rule", "rule add dport 80 conns 3 key rule", 4, { "198.18.0.1", "203.0.113.5" },
	  NULL, NULL, 0 },
	{ "v6 default /64", "rule add dport 80 conns 3", 6,
	  { "2001:db8:1:2::1", "2001:db8:1:2::99" }, "2001:db8:1:3::1", "2001:db8:1:2::", 64 },
	{ "v6 masked /48", "rule add dport 80 conns 3 mask6 48", 6,
	  { "2001:db8:1:2::1", "2001:db8:1:ff::1" }, "2001:db8:2::1", "2001:db8:1::", 48 },
	{ "v6 key rule", "rule add dport 80 conns 3 key rule", 6,
	  { "2001:db8::1", "2001:db8:ffff::1" }, NULL, NULL, 0 },
};

static void run_key_case(struct fx *f, const struct key_case *kc)
{
	struct sluice_bucket_key k;
	struct pkt_spec c[N + 2], o;
	struct sluice_conn_count cc;
	__u64 drops0;
	int slot, i, v;
	__u32 id;

	slot = fx_cmd(f, kc->rule);
	if (slot < 0)
		return;
	id = fx_rule_id(f, slot);
	k = kc->key_addr ? fx_bkey(id, kc->key_addr, kc->key_plen) : fx_bkey(id, "", 0);
	drops0 = fx_counter(f, SLUICE_CNT_DROP_CONNS);
	/* N connections, alternating between the two sources of the key. */
	for (i = 0; i < N + 2; i++)
		c[i] = conn(kc->family, kc->same[i % 2], (__u16)(50000 + i));
	for (i = 0; i < N; i++) {
		v = fx_client(f, &c[i], PKT_SYN, NULL);
		CHECK(v == XDP_PASS_V, "%s: SYN %d of %d: %d", kc->name, i + 1, N, v);
	}
	CHECK_EQ(count_of(f, &k), N, kc->name);
	v = fx_client(f, &c[N], PKT_SYN, NULL);
	CHECK(v == XDP_DROP_V, "%s: SYN %d over conns %d: %d", kc->name, N + 1, N, v);
	CHECK_EQ(fx_counter(f, SLUICE_CNT_DROP_CONNS) - drops0, 1, kc->name);
	CHECK(fx_flow(f, &c[N], &(struct sluice_flow){ 0 }) == -ENOENT,
	      "%s: the refused SYN has a flow", kc->name);
	/* Its retransmission is refused again; the live ones pass. */
	CHECK_EQ(fx_client(f, &c[N], PKT_SYN, NULL), XDP_DROP_V, kc->name);
	CHECK_EQ(fx_client(f, &c[0], PKT_SYN, NULL), XDP_PASS_V, kc->name);
	if (CHECK(fx_conn_count(f, &k, &cc) == 0, "%s: no count entry", kc->name))
		CHECK(cc.count == N && cc.opened == N && cc.refused == 2,
		      "%s: count %llu opened %llu refused %llu", kc->name,
		      (unsigned long long)cc.count, (unsigned long long)cc.opened,
		      (unsigned long long)cc.refused);
	/* Established connections are never cut by the limit. */
	for (i = 0; i < N; i++) {
		fx_server(f, &c[i], PKT_SYN | PKT_ACK, NULL);
		CHECK_EQ(fx_client(f, &c[i], PKT_ACK, NULL), XDP_PASS_V, kc->name);
		CHECK_EQ(fx_client(f, &c[i], PKT_ACK | PKT_PSH, "GET /"), XDP_PASS_V, kc->name);
	}
	if (kc->other) {
		o = conn(kc->family, kc->other, 50100);
		CHECK(fx_client(f, &o, PKT_SYN, NULL) == XDP_PASS_V,
		      "%s: another key's source was refused", kc->name);
		CHECK_EQ(count_of(f, &k), N, kc->name);
	}
	/* Free one slot each way: close, client reset, server reset. */
	CHECK_EQ(fx_client(f, &c[0], FA, NULL), XDP_PASS_V, kc->name);
	CHECK_EQ(count_of(f, &k), N, "half-closed still holds its slot");
	fx_server(f, &c[0], FA, NULL);
	CHECK_EQ(count_of(f, &k), N - 1, "closed");
	CHECK(fx_client(f, &c[N], PKT_SYN, NULL) == XDP_PASS_V, "%s: slot freed by a close",
	      kc->name);
	CHECK_EQ(fx_client(f, &c[N + 1], PKT_SYN, NULL), XDP_DROP_V, kc->name);
	fx_client(f, &c[1], PKT_RST, NULL);
	CHECK(fx_client(f, &c[N + 1], PKT_SYN, NULL) == XDP_PASS_V,
	      "%s: slot freed by a client RST", kc->name);
	fx_server(f, &c[2], PKT_RST | PKT_ACK, NULL);
	CHECK(fx_client(f, &c[0], PKT_SYN, NULL) == XDP_PASS_V,
	      "%s: slot freed by a server RST", kc->name);
	CHECK_EQ(count_of(f, &k), N, kc->name);
	CHECK_EQ(fx_client(f, &c[1], PKT_SYN, NULL), XDP_DROP_V, kc->name);
}

TEST(conns_exactly_n_per_key)
{
	struct fx f;
	size_t i;

	if (open_tc(&f, 0))
		return;
	for (i = 0; i < NELEM(key_cases); i++) {
		char line[32];
		__u32 id = fx_rule_id(&f, 0);

		if (id) {
			snprintf(line, sizeof(line), "rule del %u", id);
			if (fx_cmd(&f, line) < 0)
				break;
		}
		if (fx_clear_flows(&f))
			break;
		run_key_case(&f, &key_cases[i]);
	}
	fx_close(&f);
}

/* A half-open connection holds its slot until syn_timeout; then the
 * sweeper frees it. An established one until idle_timeout. */
TEST(conns_slot_freed_by_expiry)
{
	struct pkt_spec a = conn(4, "198.18.0.9", 1000), b = conn(4, "198.18.0.9", 1001);
	struct sluice_bucket_key k;
	struct fx f;
	int slot;

	if (open_tc(&f, 0))
		return;
	if (fx_timeouts(&f, 2 * SEC, 5 * SEC, 20 * SEC))
		goto out;
	slot = fx_cmd(&f, "rule add dport 80 conns 1");
	if (slot < 0)
		goto out;
	k = fx_bkey(fx_rule_id(&f, slot), "198.18.0.9", 32);
	CHECK_EQ(fx_client(&f, &a, PKT_SYN, NULL), XDP_PASS_V, "half-open SYN");
	CHECK_EQ(fx_client(&f, &b, PKT_SYN, NULL), XDP_DROP_V, "second SYN");
	fx_at(&f, 2 * SEC);
	fx_sweep(&f);
	CHECK_EQ(fx_client(&f, &b, PKT_SYN, NULL), XDP_DROP_V, "at syn_timeout");
	fx_at(&f, 2 * SEC + 1);
	fx_sweep(&f);
	CHECK_EQ(count_of(&f, &k), 0, "count after the half-open expired");
	if (fx_handshake(&f, &b))
		goto out;
	CHECK_EQ(fx_client(&f, &a, PKT_SYN, NULL), XDP_DROP_V, "SYN beside an established one");
	/* It opened at 2 s + 1 ns: silent for idle_timeout, it stays. */
	fx_at(&f, 22 * SEC + 1);
	fx_sweep(&f);
	CHECK_EQ(fx_client(&f, &a, PKT_SYN, NULL), XDP_DROP_V, "SYN at idle_timeout");
	fx_at(&f, 22 * SEC + 2);
	fx_sweep(&f);
	CHECK_EQ(count_of(&f, &k), 0, "count after the established one idled out");
	CHECK_EQ(fx_client(&f, &a, PKT_SYN, NULL), XDP_PASS_V, "SYN after idle expiry");
out:
	fx_close(&f);
}

/* A count that sat at zero for CONN_COUNT_IDLE_NS (1 s) is reclaimed. */
TEST(conns_zero_counts_reclaimed)
{
	struct pkt_spec a = conn(6, "2001:db8::7", 1000);
	struct sluice_conn_count cc;
	struct sluice_bucket_key k;
	struct fx f;
	int slot;

	if (open_tc(&f, 0))
		return;
	slot = fx_cmd(&f, "rule add dport 80 conns 2");
	if (slot < 0)
		goto out;
	k = fx_bkey(fx_rule_id(&f, slot), "2001:db8::", 64);
	fx_at(&f, 10 * SEC);
	if (fx_handshake(&f, &a))
		goto out;
	fx_at(&f, 30 * SEC);
	fx_sweep(&f);
	CHECK(fx_conn_count(&f, &k, &cc) == 0 && cc.count == 1, "a live count was reclaimed");
	fx_client(&f, &a, PKT_RST, NULL);
	CHECK(fx_conn_count(&f, &k, &cc) == 0 && cc.count == 0, "count after the reset");
	fx_at(&f, 31 * SEC - 1);
	fx_sweep(&f);
	CHECK(fx_conn_count(&f, &k, &cc) == 0, "reclaimed before it sat idle 1 s");
	fx_at(&f, 31 * SEC);
	fx_sweep(&f);
	CHECK(fx_conn_count(&f, &k, &cc) == -ENOENT, "zero count kept after 1 s idle");
	CHECK_EQ(fx_nconns(&f), 0, "count entries");
	/* The next SYN gets a fresh entry. */
	CHECK_EQ(fx_client(&f, &a, PKT_SYN, NULL), XDP_PASS_V, "SYN after reclaim");
	CHECK_EQ(count_of(&f, &k), 1, "fresh count");
out:
	fx_close(&f);
}

/* `action count`: over the limit is counted (rule dropped_pkts, the
 * key's refused), never dropped; the count is the true number. */
TEST(conns_action_count_never_drops)
{
	struct sluice_rule_stats rs;
	struct sluice_conn_count cc;
	struct sluice_bucket_key k;
	struct fx f;
	int slot, i, bad = 0;

	if (open_tc(&f, 0))
		return;
	slot = fx_cmd(&f, "rule add dport 80 conns 2 action count");
	if (slot < 0)
		goto out;
	k = fx_bkey(fx_rule_id(&f, slot), "198.18.0.1", 32);
	for (i = 0; i < 5; i++) {
		struct pkt_spec c = conn(4, "198.18.0.1", (__u16)(2000 + i));

		bad += fx_client(&f, &c, PKT_SYN, NULL) != XDP_PASS_V;
	}
	CHECK_EQ(bad, 0, "SYNs a count rule dropped");
	rs = fx_rstats(&f, slot);
	CHECK(rs.passed_pkts == 2 && rs.dropped_pkts == 3, "rule passed %llu dropped %llu",
	      (unsigned long long)rs.passed_pkts, (unsigned long long)rs.dropped_pkts);
	CHECK_EQ(fx_counter(&f, SLUICE_CNT_DROP_CONNS), 0, "conns drops");
	if (CHECK(fx_conn_count(&f, &k, &cc) == 0, "no count entry"))
		CHECK(cc.count == 5 && cc.refused == 3, "count %llu refused %llu",
		      (unsigned long long)cc.count, (unsigned long long)cc.refused);
	CHECK_EQ(fx_nflows(&f), 5, "flows");
out:
	fx_close(&f);
}

/* conn-rate 10 conn-burst 3: three at once, then one per 100 ms; only a
 * SYN that opens a connection is charged. */
TEST(conns_conn_rate_on_the_test_clock)
{
	static const struct {
		__u64 at_ms;
		const char *verdicts; /* one new connection per letter */
	} steps[] = {
		{ 0, "PPPD" }, { 50, "D" }, { 100, "PD" }, { 199, "D" }, { 200, "PD" },
		{ 1000, "PPPD" }, { 1100, "PD" },
	};
	struct pkt_spec first = conn(4, "198.18.0.3", 3000);
	__u64 drops = 0, passes = 0;
	__u16 port = 3000;
	size_t i;
	struct fx f;
	int j;

	if (open_tc(&f, 0))
		return;
	if (fx_cmd(&f, "rule add dport 80 conn-rate 10 conn-burst 3") < 0)
		goto out;
	for (i = 0; i < NELEM(steps); i++) {
		fx_at(&f, steps[i].at_ms * MS);
		for (j = 0; steps[i].verdicts[j]; j++) {
			struct pkt_spec c = conn(4, "198.18.0.3", port++);
			int want = steps[i].verdicts[j] == 'P' ? XDP_PASS_V : XDP_DROP_V;
			int v = fx_client(&f, &c, PKT_SYN, NULL);

			CHECK(v == want, "at %llu ms, SYN %d: %d, want %d",
			      (unsigned long long)steps[i].at_ms, j + 1, v, want);
			drops += want == XDP_DROP_V;
			passes += want == XDP_PASS_V;
		}
		/* Segments of open connections, and retransmitted SYNs, are
		 * never charged: the first connection keeps passing. */
		CHECK_EQ(fx_client(&f, &first, PKT_SYN, NULL), XDP_PASS_V, "retransmitted SYN");
		CHECK_EQ(fx_client(&f, &first, PKT_ACK, NULL), XDP_PASS_V, "ACK");
	}
	CHECK_EQ(fx_counter(&f, SLUICE_CNT_DROP_CONN_RATE), drops, "conn_rate drops");
	CHECK_EQ(fx_counter(&f, SLUICE_CNT_FLOW_INSERT), passes, "flows opened");
	/* Another source has its own bucket. */
	{
		struct pkt_spec o = conn(4, "198.18.0.4", 3000);

		CHECK_EQ(fx_client(&f, &o, PKT_SYN, NULL), XDP_PASS_V, "another source");
	}
out:
	fx_close(&f);
}

/* --- flow table full ----------------------------------------------------- */

TEST(conns_flow_table_full_policy)
{
	static const struct {
		const char *name;
		__u32 policy;
	} cases[] = {
		{ "fail open", SLUICE_FULL_OPEN },
		{ "fail closed", SLUICE_FULL_CLOSED },
	};
	size_t i;

	for (i = 0; i < NELEM(cases); i++) {
		const char *name = cases[i].name;
		struct pkt_spec c, extra = conn(4, "198.18.0.1", 4999);
		struct sluice_bucket_key k;
		__u64 c0[SLUICE_CNT_MAX], c1[SLUICE_CNT_MAX];
		int slot, j, v, closed = cases[i].policy == SLUICE_FULL_CLOSED;
		struct fx f;

		if (open_tc(&f, 4))
			return;
		if (fx_flows_full(&f, cases[i].policy) ||
		    (slot = fx_cmd(&f, "rule add dport 80 conns 10")) < 0)
			goto next;
		k = fx_bkey(fx_rule_id(&f, slot), "198.18.0.1", 32);
		for (j = 0; j < 4; j++) {
			c = conn(4, "198.18.0.1", (__u16)(4000 + j));
			CHECK_EQ(fx_client(&f, &c, PKT_SYN, NULL), XDP_PASS_V, name);
		}
		fx_counters(&f, c0);
		v = fx_client(&f, &extra, PKT_SYN, NULL);
		fx_counters(&f, c1);
		CHECK(v == (closed ? XDP_DROP_V : XDP_PASS_V), "%s: SYN into a full table: %d",
		      name, v);
		CHECK_EQ(c1[SLUICE_CNT_FLOW_FULL] - c0[SLUICE_CNT_FLOW_FULL], 1, name);
		CHECK_EQ(c1[SLUICE_CNT_DROP_FLOW_FULL] - c0[SLUICE_CNT_DROP_FLOW_FULL], closed,
			 name);
		CHECK_EQ(c1[SLUICE_CNT_FLOW_INSERT] - c0[SLUICE_CNT_FLOW_INSERT], 0, name);
		CHECK_EQ(fx_nflows(&f), 4, name);
		/* The refused flow gave its conns charge back. */
		CHECK_EQ(count_of(&f, &k), 4, name);
		/* Untracked, its later segments pass and change nothing. */
		CHECK_EQ(fx_client(&f, &extra, PKT_ACK, NULL), XDP_PASS_V, name);
		fx_client(&f, &extra, PKT_RST, NULL);
		CHECK_EQ(count_of(&f, &k), 4, name);
		/* A slot freed, the next SYN is tracked again. */
		c = conn(4, "198.18.0.1", 4000);
		fx_client(&f, &c, PKT_RST, NULL);
		CHECK_EQ(fx_client(&f, &extra, PKT_SYN, NULL), XDP_PASS_V, name);
		CHECK_EQ(fx_nflows(&f), 4, name);
		CHECK_EQ(count_of(&f, &k), 4, name);
next:
		fx_close(&f);
	}
}

/* --- counts never leak --------------------------------------------------- */

/* xorshift64*: the mix is the same on every run. */
static __u64 rnd(__u64 *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ULL;
}

struct rule_key {
	__u32 id;
	__u8 slot;
};

/* Every count entry equals the number of live flows that hold its key
 * (recomputed from the flow table and the rules); returns mismatches. */
static int counts_match_flows(struct fx *f, __u64 *total_count)
{
	struct { struct sluice_bucket_key k; __u64 n; } tally[256];
	struct sluice_flow_key fk, next;
	struct sluice_bucket_key ck, cnext;
	struct sluice_flow fl;
	struct sluice_conn_count cc;
	int ntally = 0, bad = 0, i, j, err;
	void *prev = NULL;

	*total_count = 0;
	while (!bpf_map_get_next_key(f->m.flows, prev, &next)) {
		fk = next;
		prev = &fk;
		if (bpf_map_lookup_elem(f->m.flows, &fk, &fl))
			continue;
		for (i = 0; i < SLUICE_FLOW_CONN_RULES; i++) {
			struct sluice_rule r;
			struct sluice_bucket_key k = { 0 };
			__u32 s = fl.charged_slot[i];

			if (!fl.charged_id[i])
				continue;
			if (bpf_map_lookup_elem(f->m.rules, &s, &r) || r.id != fl.charged_id[i]) {
				bad++;
				continue;
			}
			k.rule_id = r.id;
			if (r.flags & SLUICE_RULE_KEY_SRC) {
				k.family = fk.family;
				if (fk.family == SLUICE_AF_INET) {
					__u32 a;

					memcpy(&a, fk.client, 4);
					a &= r.key_mask4;
					memcpy(k.addr, &a, 4);
					k.prefix_len = r.mask4;
				} else {
					for (j = 0; j < 16; j++)
						k.addr[j] = fk.client[j] &
							    ((__u8 *)r.key_mask6)[j];
					k.prefix_len = r.mask6;
				}
			}
			for (j = 0; j < ntally; j++)
				if (!memcmp(&tally[j].k, &k, sizeof(k)))
					break;
			if (j == ntally) {
				if (ntally == (int)NELEM(tally))
					return bad + 1;
				tally[ntally].k = k;
				tally[ntally++].n = 0;
			}
			tally[j].n++;
		}
	}
	for (i = 0; i < ntally; i++)
		if (fx_conn_count(f, &tally[i].k, &cc) || cc.count != tally[i].n)
			bad++;
	/* And no count is above zero without flows behind it. */
	prev = NULL;
	while (!(err = bpf_map_get_next_key(f->m.conns, prev, &cnext))) {
		ck = cnext;
		prev = &ck;
		if (fx_conn_count(f, &ck, &cc))
			continue;
		*total_count += cc.count;
		for (j = 0; j < ntally; j++)
			if (!memcmp(&tally[j].k, &ck, sizeof(ck)))
				break;
		if (j == ntally && cc.count)
			bad++;
	}
	return bad;
}

#define NSRC 6
#define MAXC 512

TEST(conns_never_leak_under_a_random_mix)
{
	static const char *const srcs[NSRC] = {
		"198.18.0.1", "198.18.0.2", "198.18.5.1", "2001:db8:1::1", "2001:db8:1::2",
		"2001:db8:2::1",
	};
	static struct pkt_spec live[MAXC]; /* connections the mix may end */
	__u64 seed = 0x5eed5eedULL, now = 0, total, max_total = 0, c[SLUICE_CNT_MAX];
	int nlive = 0, op, bad, checkpoints = 0, bad_cp = 0, opened = 0, refused = 0;
	__u16 port = 1024;
	struct fx f;

	if (open_tc(&f, 0))
		return;
	if (fx_timeouts(&f, 1 * SEC, 2 * SEC, 2 * SEC))
		goto out;
	{
		const char *rules[] = {
			"rule add dport 80 conns 8",              /* per source (/32, /64) */
			"rule add dport 80 conns 12 mask4 24 mask6 48",
			"rule add dport 80 conns 40 key rule",
			"rule add dport 80 conns 3 action count", /* over often, never drops */
			"rule add dport 80 conn-rate 400 conn-burst 50",
		};

		if (fx_policy(&f, rules, NELEM(rules), NULL, 0) < 0)
			goto out;
	}
	for (op = 0; op < 4000; op++) {
		__u64 r = rnd(&seed);
		int what = (int)(r % 100);

		now += (r >> 8) % (20 * MS);
		fx_at(&f, now);
		if (what < 40 || !nlive) {
			/* open: a SYN, maybe answered, maybe completed */
			int fam = (int)((r >> 16) % NSRC);
			struct pkt_spec s = conn(fam >= 3 ? 6 : 4, srcs[fam], port++);
			int v;

			if (port < 1024)
				port = 1024;
			v = fx_client(&f, &s, PKT_SYN, NULL);
			refused += v != XDP_PASS_V;
			opened += v == XDP_PASS_V;
			/* Past MAXC live, abandoned at once. */
			if (v == XDP_PASS_V && nlive < MAXC) {
				live[nlive++] = s;
				/* Answered three times in four, completed
				 * twice in three of those. */
				if ((r >> 24) % 4) {
					fx_server(&f, &s, PKT_SYN | PKT_ACK, NULL);
					if ((r >> 28) % 3)
						fx_client(&f, &s, PKT_ACK, NULL);
				}
			}
		} else {
			int idx = (int)((r >> 16) % (__u64)nlive);
			struct pkt_spec *s = &live[idx];

			switch ((r >> 32) % 8) {
			case 0: /* close, client first */
				fx_client(&f, s, PKT_FIN | PKT_ACK, NULL);
				fx_server(&f, s, PKT_FIN | PKT_ACK, NULL);
				break;
			case 1: /* close, server first */
				fx_server(&f, s, PKT_FIN | PKT_ACK, NULL);
				fx_client(&f, s, PKT_FIN | PKT_ACK, NULL);
				break;
			case 2:
				fx_client(&f, s, PKT_RST, NULL);
				break;
			case 3:
				fx_server(&f, s, PKT_RST | PKT_ACK, NULL);
				break;
			case 4: /* half close, then abandoned */
				fx_client(&f, s, PKT_FIN | PKT_ACK, NULL);
				break;
			default: /* abandoned as it is */
				break;
			}
			live[idx] = live[--nlive];
		}
		if (op % 97 == 0)
			fx_sweep(&f);
		if (op % 250 == 0) {
			checkpoints++;
			bad = counts_match_flows(&f, &total);
			bad_cp += bad != 0;
			if (total > max_total)
				max_total = total;
			if (bad)
				CHECK(0, "op %d: %d count keys disagree with the flows", op, bad);
		}
	}
	CHECK(bad_cp == 0, "%d of %d checkpoints found counts that disagree with the flows",
	      bad_cp, checkpoints);
	CHECK(opened > 1000 && refused > 50 && max_total > 20,
	      "the mix opened %d, refused %d, held at most %llu counts: too tame", opened,
	      refused, (unsigned long long)max_total);
	/* Everything still open is abandoned: past every timeout, nothing is
	 * left, and a second later no count entry either. */
	now += 3 * SEC;
	fx_at(&f, now);
	fx_sweep(&f);
	CHECK_EQ(fx_nflows(&f), 0, "flows after every timeout");
	bad = counts_match_flows(&f, &total);
	CHECK_EQ(bad, 0, "count keys disagreeing after the timeouts");
	CHECK_EQ(total, 0, "sum of counts after the timeouts");
	now += 2 * SEC;
	fx_at(&f, now);
	fx_sweep(&f);
	CHECK_EQ(fx_nconns(&f), 0, "count entries after they sat at zero");
	/* Every connection opened ended exactly one way. */
	fx_counters(&f, c);
	CHECK_EQ(c[SLUICE_CNT_FLOW_INSERT], opened, "flows opened");
	CHECK_EQ(c[SLUICE_CNT_FLOW_CLOSED] + c[SLUICE_CNT_FLOW_RESET] +
		 c[SLUICE_CNT_FLOW_EXPIRED_HALF_OPEN] + c[SLUICE_CNT_FLOW_EXPIRED_IDLE], opened,
		 "flows ended");
out:
	fx_close(&f);
}

/* A rule deleted while connections hold its count, and its slot reused by
 * a new conns rule: the old connections' ends release nothing of the new
 * rule's (charges carry the rule id), so its count neither wraps below zero
 * nor frees slots it never gave. */
TEST(conns_rule_deleted_under_live_connections)
{
	struct pkt_spec c[4];
	struct sluice_bucket_key k;
	char line[32];
	struct fx f;
	int slot, i;

	if (open_tc(&f, 0))
		return;
	slot = fx_cmd(&f, "rule add dport 80 conns 2");
	if (slot < 0)
		goto out;
	for (i = 0; i < 4; i++)
		c[i] = conn(4, "198.18.0.1", (__u16)(6000 + i));
	for (i = 0; i < 2; i++)
		if (fx_handshake(&f, &c[i]))
			goto out;
	snprintf(line, sizeof(line), "rule del %u", fx_rule_id(&f, slot));
	if (fx_cmd(&f, line) < 0)
		goto out;
	CHECK_EQ(fx_nconns(&f), 0, "count entries of the deleted rule");
	if (!CHECK(fx_cmd(&f, "rule add dport 80 conns 2") == slot, "the slot was not reused"))
		goto out;
	k = fx_bkey(fx_rule_id(&f, slot), "198.18.0.1", 32);
	for (i = 2; i < 4; i++)
		CHECK_EQ(fx_client(&f, &c[i], PKT_SYN, NULL), XDP_PASS_V, "SYN under the new rule");
	CHECK_EQ(count_of(&f, &k), 2, "new rule's count");
	/* The old connections end: the new rule's count does not move. */
	fx_client(&f, &c[0], PKT_RST, NULL);
	fx_client(&f, &c[1], PKT_FIN | PKT_ACK, NULL);
	fx_server(&f, &c[1], PKT_FIN | PKT_ACK, NULL);
	CHECK_EQ(fx_nflows(&f), 2, "flows left");
	CHECK_EQ(count_of(&f, &k), 2, "new rule's count after the old connections ended");
	CHECK_EQ(fx_client(&f, &c[0], PKT_SYN, NULL), XDP_DROP_V, "third SYN under the new rule");
out:
	fx_close(&f);
}
