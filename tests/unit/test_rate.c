// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#define TEST_GROUP "bpf" /* loads BPF programs or creates maps: needs root (harness.h) */
/*
 * Token-bucket (GCRA) arithmetic, seen from outside: frames are run on the
 * test clock, and the verdicts, the drop-reason counters, the rule's counters
 * and the bucket itself must agree with what a token bucket of that rate and
 * depth would do. Expected counts come from the rate and burst the rule was
 * given (docs/design.md, "Token buckets"); where the fixed-point rounding
 * changes a count, the comment on the row does the arithmetic.
 */
#include <errno.h>
#include <string.h>
#include <bpf/bpf.h>
#include "fixture.h"
#include "harness.h"

#define MS 1000000ULL
#define SEC 1000000000ULL

#define PASS (-1) /* a step's `want`: passed; otherwise the drop counter */

/* A UDP frame from src (v4 or v6 text) of len bytes (0: the smallest). */
static struct pkt_spec frame_from(const char *src, size_t len)
{
	struct pkt_spec s = {
		.family = strchr(src, ':') ? 6 : 4,
		.src = src,
		.proto = PKT_UDP,
		.sport = 1024,
		.dport = 80,
		.frame_len = len,
	};
	return s;
}

static int send_from(struct fx *f, const char *src, size_t len)
{
	struct pkt_spec s = frame_from(src, len);

	return fx_send(f, &s);
}

/* The bucket's whole-ns cost per packet and tolerance for pps N burst B,
 * computed here from the rates, not read from the rule. */
static __u64 pkt_cost(__u64 pps)
{
	return ((SEC << SLUICE_FP_SHIFT) / pps) >> SLUICE_FP_SHIFT;
}

static int read_rule(struct fx *f, int slot, struct sluice_rule *r)
{
	__u32 k = (__u32)slot;

	return CHECK(bpf_map_lookup_elem(f->m.rules, &k, r) == 0, "read rule in slot %d", slot);
}

/* Drop counters that are about rates; a step must move exactly one of them
 * (or none, if it passed). */
static const enum sluice_counter drop_cnts[] = {
	SLUICE_CNT_DROP_DENY, SLUICE_CNT_DROP_BAN, SLUICE_CNT_DROP_RATE, SLUICE_CNT_DROP_BYTES,
};

struct step {
	__u64 at_ns;     /* test clock offset */
	const char *src;
	size_t len;      /* 0: smallest frame */
	int want;        /* PASS or the drop counter */
};

static void run_steps(struct fx *f, const char *name, const struct step *s, size_t n)
{
	__u64 c0[SLUICE_CNT_MAX], c1[SLUICE_CNT_MAX];
	size_t i, j;

	for (i = 0; i < n; i++) {
		int v;

		fx_at(f, s[i].at_ns);
		fx_counters(f, c0);
		v = send_from(f, s[i].src, s[i].len);
		fx_counters(f, c1);
		CHECK(v == (s[i].want == PASS ? XDP_PASS_V : XDP_DROP_V),
		      "%s step %zu (t=%llu ns, %s, %zu bytes): verdict %d, want %s", name, i,
		      (unsigned long long)s[i].at_ns, s[i].src, s[i].len, v,
		      s[i].want == PASS ? "PASS" : "DROP");
		for (j = 0; j < NELEM(drop_cnts); j++) {
			__u64 d = c1[drop_cnts[j]] - c0[drop_cnts[j]];

			CHECK(d == ((int)drop_cnts[j] == s[i].want),
			      "%s step %zu: drop counter %d moved by %llu", name, i,
			      (int)drop_cnts[j], (unsigned long long)d);
		}
	}
}

/* pps N burst B from idle: at one instant exactly B pass and the next drops;
 * the bucket's TAT has moved B costs ahead. One cost later (1/N s, rounded
 * down to whole ns) exactly one more passes, not two; one ns earlier none. */
static const struct {
	const char *rule;
	__u64 pps, burst;
} burst_cases[] = {
	{ "rule add pps 10 burst 5", 10, 5 },
	{ "rule add pps 10", 10, 10 }, /* default burst: one second of pps */
	{ "rule add pps 1", 1, 1 },
	{ "rule add pps 3 burst 3", 3, 3 }, /* 333333333.33 ns: cost 333333333 */
	{ "rule add pps 10000000 burst 100", 10000000, 100 },
	{ "rule add pps 1000000000 burst 7", 1000000000, 7 }, /* 1 ns per packet */
};

TEST(rate_burst_then_one_per_interval)
{
	const __u64 t = 7 * SEC;
	size_t i;

	for (i = 0; i < NELEM(burst_cases); i++) {
		const char *name = burst_cases[i].rule;
		__u64 B = burst_cases[i].burst, c = pkt_cost(burst_cases[i].pps);
		__u64 ifp = (SEC << SLUICE_FP_SHIFT) / burst_cases[i].pps;
		struct sluice_bucket_key k;
		struct sluice_rule_stats rs;
		struct sluice_bucket b;
		struct sluice_rule r;
		__u64 n, passed = 0;
		struct fx f;
		int slot;

		if (fx_open(&f, 0))
			return;
		slot = fx_cmd(&f, name);
		if (slot < 0 || !read_rule(&f, slot, &r))
			goto next;
		CHECK(r.burst == B && r.pkt_interval_fp == ifp &&
		      r.pkt_tolerance_ns == ((ifp * B) >> SLUICE_FP_SHIFT),
		      "%s: compiled burst %llu interval_fp %llu tolerance %llu", name,
		      (unsigned long long)r.burst, (unsigned long long)r.pkt_interval_fp,
		      (unsigned long long)r.pkt_tolerance_ns);

		fx_at(&f, t);
		for (n = 0; n <= B; n++)
			passed += send_from(&f, "198.18.0.1", 100) == XDP_PASS_V;
		CHECK(passed == B, "%s: %llu of %llu passed at one instant, want %llu", name,
		      (unsigned long long)passed, (unsigned long long)(B + 1),
		      (unsigned long long)B);
		CHECK_EQ(fx_counter(&f, SLUICE_CNT_DROP_RATE), 1, name);
		CHECK_EQ(fx_counter(&f, SLUICE_CNT_STATE_INSERT), 1, name);
		rs = fx_rstats(&f, slot);
		CHECK(rs.passed_pkts == B && rs.dropped_pkts == 1 && rs.passed_bytes == B * 100 &&
		      rs.dropped_bytes == 100, "%s: rule stats %llu/%llu pkts %llu/%llu bytes",
		      name, (unsigned long long)rs.passed_pkts, (unsigned long long)rs.dropped_pkts,
		      (unsigned long long)rs.passed_bytes, (unsigned long long)rs.dropped_bytes);
		k = fx_bkey(r.id, "198.18.0.1", 32);
		if (CHECK(fx_bucket(&f, &k, &b) == 0, "%s: no bucket for the source", name)) {
			CHECK(b.pkt_tat == f.t0 + t + B * c, "%s: tat %+lld ns from now, want %llu",
			      name, (long long)(b.pkt_tat - f.t0 - t), (unsigned long long)(B * c));
			CHECK(b.passed_pkts == B && b.dropped_pkts == 1 && b.created_ns == f.t0 + t,
			      "%s: bucket passed %llu dropped %llu", name,
			      (unsigned long long)b.passed_pkts,
			      (unsigned long long)b.dropped_pkts);
		}

		if (c > 1) {
			fx_at(&f, t + c - 1);
			CHECK(send_from(&f, "198.18.0.1", 100) == XDP_DROP_V,
			      "%s: passed 1 ns before a token was due", name);
		}
		fx_at(&f, t + c);
		CHECK(send_from(&f, "198.18.0.1", 100) == XDP_PASS_V,
		      "%s: no pass one interval (%llu ns) later", name, (unsigned long long)c);
		CHECK(send_from(&f, "198.18.0.1", 100) == XDP_DROP_V,
		      "%s: two passed one interval later", name);
		rs = fx_rstats(&f, slot);
		CHECK_EQ(rs.passed_pkts, B + 1, name);
		CHECK_EQ(fx_counter(&f, SLUICE_CNT_DROP_RATE), c > 1 ? 3 : 2, name);
next:
		fx_close(&f);
	}
}

TEST(rate_default_bursts_are_one_second)
{
	struct sluice_rule r;
	struct fx f;
	int slot;

	if (fx_open(&f, 0))
		return;
	/* bburst defaults to one second of bytes, but never below one
	 * full-size frame (1518). */
	slot = fx_cmd(&f, "rule add pps 250 bps 800000");
	if (slot >= 0 && read_rule(&f, slot, &r)) {
		CHECK_EQ(r.burst, 250, "default burst");
		CHECK_EQ(r.pkt_tolerance_ns, SEC, "default packet tolerance");
		CHECK_EQ(r.bburst, 100000, "default bburst");
		CHECK_EQ(r.byte_tolerance_ns, SEC, "default byte tolerance");
	}
	slot = fx_cmd(&f, "rule add pps 250 bps 8000");
	if (slot >= 0 && read_rule(&f, slot, &r))
		CHECK_EQ(r.bburst, 1518, "default bburst of a slow byte rate");
	fx_close(&f);
}

/* A source far above its rate: at each step from 0 to T (both included) it
 * sends until a frame drops. With steps no longer than the tolerance (so no
 * refill is lost to a full bucket), a token bucket then passes every n with
 * n * cost <= T + tolerance, i.e. N*T + B where the costs are whole ns. */
static const struct {
	const char *rule;
	size_t len;
	__u64 T, step, want;
	int reason; /* the drop counter, or PASS: both rate and bytes */
} sat_cases[] = {
	{ "rule add pps 10 burst 5", 0, 10 * SEC, 10 * MS, 10 * 10 + 5, SLUICE_CNT_DROP_RATE },
	{ "rule add pps 1", 0, 60 * SEC, 250 * MS, 60 + 1, SLUICE_CNT_DROP_RATE },
	/* Cost 333333333 ns, tolerance 999999999: floor((1000 s + tol) / cost)
	 * = 3003.000009, so the rounding loses nothing over 1000 s. */
	{ "rule add pps 3 burst 3", 0, 1000 * SEC, 50 * MS, 3000 + 3, SLUICE_CNT_DROP_RATE },
	{ "rule add pps 10000000 burst 100", 0, MS, 10000, 10000 + 100, SLUICE_CNT_DROP_RATE },
	/* The accepted error (docs/design.md): each packet's cost is rounded
	 * down to whole ns, 333 for 333.33, so 10 ms + tolerance 3333 ns buys
	 * floor(10003333 / 333) = 30040, not 30000 + 10 (0.1% = 1/333). */
	{ "rule add pps 3000000 burst 10", 0, 10 * MS, 1000, 30040, SLUICE_CNT_DROP_RATE },
	/* 1000 B/s, bburst 2000: 1000-byte frames are byte-bound (10 + 2),
	 * 64-byte ones packet-bound (640 B/s). */
	{ "rule add pps 10 burst 5 bps 8000 bburst 2000", 1000, 10 * SEC, 10 * MS, 12,
	  SLUICE_CNT_DROP_BYTES },
	{ "rule add pps 10 burst 5 bps 8000 bburst 2000", 64, 10 * SEC, 10 * MS, 105,
	  SLUICE_CNT_DROP_RATE },
	/* 150-byte frames at 10 pps want 1500 B/s: packet-bound until the
	 * byte burst is spent (~2.5 s), byte-bound after: (12000 B) / 150. */
	{ "rule add pps 10 burst 5 bps 8000 bburst 2000", 150, 10 * SEC, 10 * MS, 80, PASS },
	/* 375000 B/s is 2666.67 ns per byte: the fixed-point interval keeps
	 * the fraction (a 1000-byte frame costs 2666666 ns), so 100 s passes
	 * 37500 + 3 frames. A whole-ns interval (2666) would pass 37512. */
	{ "rule add pps 1000000000 bps 3000000 bburst 3000", 1000, 100 * SEC, 5 * MS, 37503,
	  SLUICE_CNT_DROP_BYTES },
};

TEST(rate_saturating_source_long_run)
{
	size_t i;

	for (i = 0; i < NELEM(sat_cases); i++) {
		const char *name = sat_cases[i].rule;
		struct pkt_spec s = frame_from("198.18.0.1", sat_cases[i].len);
		__u64 t, passed = 0, dropped = 0, c[SLUICE_CNT_MAX];
		struct sluice_rule_stats rs;
		struct sluice_bucket_key k;
		struct sluice_bucket b;
		__u8 buf[PKT_MAX];
		int slot, stuck = 0, bad = 0;
		struct fx f;
		size_t n;

		n = pkt_build(&s, buf, sizeof(buf));
		if (!CHECK(n > 0, "%s: build", name) || fx_open(&f, 0))
			return;
		slot = fx_cmd(&f, name);
		if (slot < 0)
			goto next;
		for (t = 0; t <= sat_cases[i].T && !stuck; t += sat_cases[i].step) {
			int v, sent = 0;

			fx_at(&f, t);
			while ((v = fx_run(&f, buf, n)) == XDP_PASS_V) {
				passed++;
				if (++sent > 100000) {
					stuck = 1; /* never drops: stop, the count check fails */
					break;
				}
			}
			bad += v != XDP_PASS_V && v != XDP_DROP_V;
			dropped += v == XDP_DROP_V;
		}
		CHECK(passed == sat_cases[i].want, "%s, %zu-byte frames: %llu passed, want %llu",
		      name, n, (unsigned long long)passed, (unsigned long long)sat_cases[i].want);
		CHECK(bad == 0, "%s: %d runs failed", name, bad);

		fx_counters(&f, c);
		if (sat_cases[i].reason == PASS)
			CHECK(c[SLUICE_CNT_DROP_RATE] && c[SLUICE_CNT_DROP_BYTES] &&
			      c[SLUICE_CNT_DROP_RATE] + c[SLUICE_CNT_DROP_BYTES] == dropped,
			      "%s: drops rate %llu + bytes %llu, want both, summing to %llu", name,
			      (unsigned long long)c[SLUICE_CNT_DROP_RATE],
			      (unsigned long long)c[SLUICE_CNT_DROP_BYTES],
			      (unsigned long long)dropped);
		else
			CHECK(c[sat_cases[i].reason] == dropped &&
			      c[SLUICE_CNT_DROP_RATE] + c[SLUICE_CNT_DROP_BYTES] == dropped,
			      "%s: drops rate %llu bytes %llu, want all %llu as counter %d", name,
			      (unsigned long long)c[SLUICE_CNT_DROP_RATE],
			      (unsigned long long)c[SLUICE_CNT_DROP_BYTES],
			      (unsigned long long)dropped, sat_cases[i].reason);
		CHECK_EQ(c[SLUICE_CNT_CAS_EXHAUSTED], 0, name);
		rs = fx_rstats(&f, slot);
		CHECK(rs.passed_pkts == passed && rs.dropped_pkts == dropped &&
		      rs.passed_bytes == passed * n, "%s: rule stats %llu/%llu", name,
		      (unsigned long long)rs.passed_pkts, (unsigned long long)rs.dropped_pkts);
		k = fx_bkey(fx_rule_id(&f, slot), "198.18.0.1", 32);
		if (CHECK(fx_bucket(&f, &k, &b) == 0, "%s: no bucket", name))
			CHECK(b.passed_pkts == passed && b.dropped_pkts == dropped &&
			      b.passed_bytes == passed * n && b.dropped_bytes == dropped * n,
			      "%s: bucket %llu/%llu", name, (unsigned long long)b.passed_pkts,
			      (unsigned long long)b.dropped_pkts);
next:
		fx_close(&f);
	}
}

/* A source within its rate never loses a packet, even at burst 1 and
 * arrivals exactly one interval apart; the last two rows are the controls
 * that show the same schedule one ns (or one packet) too fast does drop.
 * Arrival k is at (k / group) * num / den ns. */
static const struct under_case {
	const char *rule;
	__u64 group, num, den, count, want_dropped;
} under_cases[] = {
	{ "rule add pps 10 burst 1", 1, 100 * MS, 1, 1001, 0 },
	/* k/3 s rounded down: gaps of 333333333 and 333333334 ns, never less
	 * than the 333333333 ns cost. */
	{ "rule add pps 3 burst 1", 1, SEC, 3, 3001, 0 },
	{ "rule add pps 1 burst 1", 1, SEC, 1, 121, 0 },
	{ "rule add pps 10000000 burst 1", 1, 100, 1, 100001, 0 },
	{ "rule add pps 10 burst 5", 5, 500 * MS, 1, 1000, 0 }, /* 5 at once, twice a second */
	/* 1 ns too fast at burst 1: every other packet finds its token 1 ns early. */
	{ "rule add pps 10 burst 1", 1, 100 * MS - 1, 1, 1001, 500 },
	/* 6 at once every 0.6 s is 10 pps, but a burst of 6 > 5. */
	{ "rule add pps 10 burst 5", 6, 600 * MS, 1, 1002, 167 },
};

TEST(rate_under_limit_never_drops)
{
	size_t i;

	for (i = 0; i < NELEM(under_cases); i++) {
		const struct under_case *u = &under_cases[i];
		const char *name = u->rule;
		__u64 k, dropped = 0, c[SLUICE_CNT_MAX];
		struct sluice_rule_stats rs;
		struct pkt_spec s = frame_from("198.18.0.1", 0);
		__u8 buf[PKT_MAX];
		struct fx f;
		size_t n;
		int slot, bad = 0;

		n = pkt_build(&s, buf, sizeof(buf));
		if (!CHECK(n > 0, "%s: build", name) || fx_open(&f, 0))
			return;
		slot = fx_cmd(&f, name);
		if (slot < 0)
			goto next;
		for (k = 0; k < u->count; k++) {
			int v;

			fx_at(&f, (k / u->group) * u->num / u->den);
			v = fx_run(&f, buf, n);
			dropped += v == XDP_DROP_V;
			bad += v != XDP_PASS_V && v != XDP_DROP_V;
		}
		CHECK(dropped == u->want_dropped,
		      "%s, arrivals every %llu/%llu ns in groups of %llu: %llu dropped, want %llu",
		      name, (unsigned long long)u->num, (unsigned long long)u->den,
		      (unsigned long long)u->group, (unsigned long long)dropped,
		      (unsigned long long)u->want_dropped);
		CHECK(bad == 0, "%s: %d runs failed", name, bad);
		fx_counters(&f, c);
		CHECK_EQ(c[SLUICE_CNT_DROP_RATE], dropped, name);
		rs = fx_rstats(&f, slot);
		CHECK(rs.passed_pkts == u->count - dropped && rs.dropped_pkts == dropped,
		      "%s: rule stats %llu/%llu", name, (unsigned long long)rs.passed_pkts,
		      (unsigned long long)rs.dropped_pkts);
next:
		fx_close(&f);
	}
}

/* 1000 B/s (1e6 ns per byte), bburst 2000. One 1400-byte frame leaves 600
 * bytes: the next big frame drops for bytes while nine 64-byte frames (576)
 * pass and the tenth (640) does not. With 24 bytes left, the next big frame
 * fits once 1376 bytes have refilled: at 1.376 s, not 1 ns before. */
static const struct step bps_steps[] = {
	{ 0, "198.18.0.1", 1400, PASS },
	{ 0, "198.18.0.1", 1400, SLUICE_CNT_DROP_BYTES },
	{ 0, "198.18.0.1", 64, PASS }, { 0, "198.18.0.1", 64, PASS },
	{ 0, "198.18.0.1", 64, PASS }, { 0, "198.18.0.1", 64, PASS },
	{ 0, "198.18.0.1", 64, PASS }, { 0, "198.18.0.1", 64, PASS },
	{ 0, "198.18.0.1", 64, PASS }, { 0, "198.18.0.1", 64, PASS },
	{ 0, "198.18.0.1", 64, PASS },
	{ 0, "198.18.0.1", 64, SLUICE_CNT_DROP_BYTES },
	{ 1376 * MS - 1, "198.18.0.1", 1400, SLUICE_CNT_DROP_BYTES },
	{ 1376 * MS, "198.18.0.1", 1400, PASS },
	{ 1376 * MS, "198.18.0.1", 64, SLUICE_CNT_DROP_BYTES },
};

TEST(rate_bps_big_frames_drop_small_pass)
{
	struct sluice_bucket_key k;
	struct sluice_rule_stats rs;
	struct sluice_bucket b;
	struct fx f;
	int slot;

	if (fx_open(&f, 0))
		return;
	slot = fx_cmd(&f, "rule add pps 1000 bps 8000 bburst 2000");
	if (slot < 0)
		goto out;
	run_steps(&f, "bps", bps_steps, NELEM(bps_steps));
	rs = fx_rstats(&f, slot);
	CHECK(rs.passed_pkts == 11 && rs.passed_bytes == 2 * 1400 + 9 * 64 &&
	      rs.dropped_pkts == 4 && rs.dropped_bytes == 2 * 1400 + 2 * 64,
	      "rule stats %llu pkts %llu bytes passed, %llu pkts %llu bytes dropped",
	      (unsigned long long)rs.passed_pkts, (unsigned long long)rs.passed_bytes,
	      (unsigned long long)rs.dropped_pkts, (unsigned long long)rs.dropped_bytes);
	k = fx_bkey(fx_rule_id(&f, slot), "198.18.0.1", 32);
	if (CHECK(fx_bucket(&f, &k, &b) == 0, "no bucket"))
		/* every byte admitted is 1e6 ns of TAT, from t = 0 */
		CHECK(b.byte_tat == f.t0 + (2 * 1400 + 9 * 64) * MS,
		      "byte tat %lld ns from t0, want %llu", (long long)(b.byte_tat - f.t0),
		      (unsigned long long)((2 * 1400 + 9 * 64) * MS));
out:
	fx_close(&f);
}

/* pps 10 burst 3 with the byte limit above. After one big frame, five more
 * drop for bytes; had they been charged a packet token, the tokens would be
 * gone after two of them (the rest dropping for rate) and the two small
 * frames after them would drop too. */
static const struct step refund_steps[] = {
	{ 0, "198.18.0.1", 1400, PASS },
	{ 0, "198.18.0.1", 1400, SLUICE_CNT_DROP_BYTES },
	{ 0, "198.18.0.1", 1400, SLUICE_CNT_DROP_BYTES },
	{ 0, "198.18.0.1", 1400, SLUICE_CNT_DROP_BYTES },
	{ 0, "198.18.0.1", 1400, SLUICE_CNT_DROP_BYTES },
	{ 0, "198.18.0.1", 1400, SLUICE_CNT_DROP_BYTES },
	{ 0, "198.18.0.1", 64, PASS },
	{ 0, "198.18.0.1", 64, PASS },
	{ 0, "198.18.0.1", 64, SLUICE_CNT_DROP_RATE }, /* bytes would fit: rate it is */
};

TEST(rate_bytes_drop_refunds_packet_token)
{
	struct sluice_bucket_key k;
	struct sluice_bucket b;
	struct fx f;
	int slot;

	if (fx_open(&f, 0))
		return;
	slot = fx_cmd(&f, "rule add pps 10 burst 3 bps 8000 bburst 2000");
	if (slot < 0)
		goto out;
	fx_at(&f, 0);
	run_steps(&f, "refund", refund_steps, NELEM(refund_steps));
	k = fx_bkey(fx_rule_id(&f, slot), "198.18.0.1", 32);
	if (CHECK(fx_bucket(&f, &k, &b) == 0, "no bucket")) {
		/* three packets admitted, 1e8 ns each; the refused ones left
		 * neither TAT moved */
		CHECK(b.pkt_tat == f.t0 + 3 * 100 * MS, "packet tat %lld ns from t0, want 3e8",
		      (long long)(b.pkt_tat - f.t0));
		CHECK(b.byte_tat == f.t0 + (1400 + 2 * 64) * MS, "byte tat %lld ns from t0",
		      (long long)(b.byte_tat - f.t0));
		CHECK(b.passed_pkts == 3 && b.dropped_pkts == 6, "bucket passed %llu dropped %llu",
		      (unsigned long long)b.passed_pkts, (unsigned long long)b.dropped_pkts);
	}
out:
	fx_close(&f);
}

/* Keys: which sources share a bucket. Each source sends one frame at t = 0
 * to a rule of burst 3, so the fourth frame into one bucket drops; the
 * buckets that must exist (and one that must not) are listed with their
 * counters. A NULL address is the rule-wide bucket. */
struct key_case {
	const char *name, *rule;
	struct {
		const char *src;
		int pass;
	} pkts[8];
	struct {
		const char *addr;
		__u8 plen;
		__u64 passed, dropped;
	} buckets[3];
	struct {
		const char *addr;
		__u8 plen;
	} absent;
	size_t nbuckets;
};

static const struct key_case key_cases[] = {
	{ "key src", "rule add pps 10 burst 3",
	  { { "198.18.0.1", 1 }, { "198.18.0.1", 1 }, { "198.18.0.1", 1 }, { "198.18.0.1", 0 },
	    { "198.18.0.2", 1 }, { "198.18.0.2", 1 }, { "198.18.0.2", 1 }, { "198.18.0.2", 0 } },
	  { { "198.18.0.1", 32, 3, 1 }, { "198.18.0.2", 32, 3, 1 } },
	  { "198.18.0.0", 24 }, 2 },
	{ "mask4 24", "rule add pps 10 burst 3 mask4 24",
	  { { "198.18.0.1", 1 }, { "198.18.0.200", 1 }, { "198.18.0.77", 1 },
	    { "198.18.0.9", 0 }, { "198.18.1.1", 1 }, { "198.19.0.1", 1 } },
	  { { "198.18.0.0", 24, 3, 1 }, { "198.18.1.0", 24, 1, 0 }, { "198.19.0.0", 24, 1, 0 } },
	  { "198.18.0.1", 32 }, 3 },
	{ "mask4 20 (not on a byte)", "rule add pps 10 burst 3 mask4 20",
	  { { "198.18.0.1", 1 }, { "198.18.15.255", 1 }, { "198.18.7.7", 1 },
	    { "198.18.8.1", 0 }, { "198.18.16.1", 1 } },
	  { { "198.18.0.0", 20, 3, 1 }, { "198.18.16.0", 20, 1, 0 } },
	  { "198.18.0.0", 24 }, 2 },
	{ "mask6 default 64", "rule add pps 10 burst 3",
	  { { "2001:db8:0:1::1", 1 }, { "2001:db8:0:1:ffff:ffff:ffff:ffff", 1 },
	    { "2001:db8:0:1::2", 1 }, { "2001:db8:0:1:8000::", 0 }, { "2001:db8:0:2::1", 1 },
	    { "2001:db8:1:1::1", 1 } },
	  { { "2001:db8:0:1::", 64, 3, 1 }, { "2001:db8:0:2::", 64, 1, 0 },
	    { "2001:db8:1:1::", 64, 1, 0 } },
	  { "2001:db8:0:1::1", 128 }, 3 },
	{ "mask6 56", "rule add pps 10 burst 3 mask6 56",
	  { { "2001:db8:0:1::1", 1 }, { "2001:db8:0:ff::1", 1 }, { "2001:db8:0:42::1", 1 },
	    { "2001:db8:0:7::", 0 }, { "2001:db8:0:100::1", 1 } },
	  { { "2001:db8::", 56, 3, 1 }, { "2001:db8:0:100::", 56, 1, 0 } },
	  { "2001:db8:0:1::", 64 }, 2 },
	{ "key rule", "rule add pps 10 burst 3 key rule",
	  { { "198.18.0.1", 1 }, { "2001:db8::1", 1 }, { "203.0.113.9", 1 },
	    { "2001:db8:ffff::1", 0 }, { "198.18.0.1", 0 } },
	  { { NULL, 0, 3, 2 } },
	  { "198.18.0.1", 32 }, 1 },
};

static struct sluice_bucket_key key_of(__u32 id, const char *addr, __u8 plen)
{
	struct sluice_bucket_key k = { .rule_id = id };

	return addr ? fx_bkey(id, addr, plen) : k;
}

TEST(rate_bucket_keys)
{
	size_t i, j;

	for (i = 0; i < NELEM(key_cases); i++) {
		const struct key_case *c = &key_cases[i];
		struct sluice_bucket_key k;
		struct sluice_bucket b;
		struct fx f;
		__u32 id;
		int slot;

		if (fx_open(&f, 0))
			return;
		slot = fx_cmd(&f, c->rule);
		if (slot < 0)
			goto next;
		id = fx_rule_id(&f, slot);
		fx_at(&f, SEC);
		for (j = 0; j < NELEM(c->pkts) && c->pkts[j].src; j++)
			CHECK(send_from(&f, c->pkts[j].src, 0) ==
			      (c->pkts[j].pass ? XDP_PASS_V : XDP_DROP_V),
			      "%s: frame %zu from %s: want %s", c->name, j, c->pkts[j].src,
			      c->pkts[j].pass ? "PASS" : "DROP");
		for (j = 0; j < NELEM(c->buckets) && c->buckets[j].passed; j++) {
			const char *addr = c->buckets[j].addr ? c->buckets[j].addr : "(rule)";

			k = key_of(id, c->buckets[j].addr, c->buckets[j].plen);
			if (!CHECK(fx_bucket(&f, &k, &b) == 0, "%s: no bucket %s/%u", c->name, addr,
				   c->buckets[j].plen))
				continue;
			CHECK(b.passed_pkts == c->buckets[j].passed &&
			      b.dropped_pkts == c->buckets[j].dropped,
			      "%s: bucket %s/%u passed %llu dropped %llu, want %llu/%llu", c->name,
			      addr, c->buckets[j].plen, (unsigned long long)b.passed_pkts,
			      (unsigned long long)b.dropped_pkts,
			      (unsigned long long)c->buckets[j].passed,
			      (unsigned long long)c->buckets[j].dropped);
		}
		k = key_of(id, c->absent.addr, c->absent.plen);
		CHECK(fx_bucket(&f, &k, &b) == -ENOENT, "%s: bucket %s/%u should not exist",
		      c->name, c->absent.addr, c->absent.plen);
		CHECK(fx_nbuckets(&f) == c->nbuckets, "%s: %zu buckets, want %zu", c->name,
		      fx_nbuckets(&f), c->nbuckets);
		CHECK_EQ(fx_counter(&f, SLUICE_CNT_STATE_INSERT), c->nbuckets, c->name);
next:
		fx_close(&f);
	}
}
