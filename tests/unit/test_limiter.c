// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * sluice-l7's admission policy on a test clock: token buckets against the
 * arithmetic of their rate and burst, tokens reserved, reconciled and
 * refunded, all-or-none admission across caller and tier, concurrency,
 * the x-ratelimit-* values, the caller table's eviction and the 429
 * strikes. Expected numbers are computed here from the limits, not read
 * back from the limiter.
 */
#include <stdio.h>
#include <string.h>
#include "harness.h"
#include "limiter.h"

#define US 1000ULL
#define MS 1000000ULL
#define SEC 1000000000ULL

/* A config with n tiers named t0, t1, ..., no limits, a one-minute period. */
static void cfg_init(struct l7_config *c, unsigned int n)
{
	l7_config_defaults(c);
	c->n_tiers = n;
	for (unsigned int i = 0; i < n; i++)
		snprintf(c->tiers[i].name, sizeof(c->tiers[i].name), "t%u", i);
}

static struct limiter *lim_make(const struct l7_config *c, unsigned int max_callers)
{
	struct limiter *l = NULL;
	int err = limiter_new(c, max_callers, &l);

	CHECK(err == 0 && l, "limiter_new: %d", err);
	return err ? NULL : l;
}

static struct lim_caller *get(struct limiter *l, const char *id, unsigned int tier, uint64_t now)
{
	return limiter_get(l, id, strlen(id), tier, now);
}

static int near(double a, double b)
{
	return a - b < 1e-6 && b - a < 1e-6;
}

/* --- buckets -------------------------------------------------------------- */

TEST(lim_bucket_burst_then_rate)
{
	struct l7_limit lim = { .rate = 600, .burst = 10 };
	struct bucket b = { .level = 10, .at_ns = 0 };
	uint64_t period = 60 * SEC, w;
	int admitted = 0;

	for (int i = 0; i < 11; i++)
		admitted += bucket_take(&b, &lim, period, 0, 1) == 0;
	CHECK_EQ(admitted, 10, "admitted at t=0 from a full bucket of 10");
	/* one unit per 60 s / 600 = 100 ms */
	CHECK_EQ(bucket_take(&b, &lim, period, 0, 1), 100 * MS, "wait for the 11th");
	CHECK(bucket_take(&b, &lim, period, 100 * MS - 1, 1) != 0, "1 ns early is refused");
	CHECK_EQ(bucket_take(&b, &lim, period, 100 * MS, 1), 0, "admitted after 100 ms");
	w = bucket_take(&b, &lim, period, 100 * MS, 1);
	CHECK_EQ(w, 100 * MS, "then the next waits 100 ms again");
	for (int i = 2; i <= 50; i++)
		CHECK_EQ(bucket_take(&b, &lim, period, (uint64_t)i * 100 * MS, 1), 0,
			 "one every 100 ms");
	CHECK(bucket_take(&b, &lim, period, 50 * 100 * MS, 1) != 0, "and no more than one");
	/* an hour idle fills it to the burst, not beyond */
	admitted = 0;
	for (int i = 0; i < 20; i++)
		admitted += bucket_take(&b, &lim, period, 3600 * SEC, 1) == 0;
	CHECK_EQ(admitted, 10, "after an hour idle: the burst, no more");
}

/* Arrivals every `step` for `T`: admitted within 1 of burst + rate*T/period. */
TEST(lim_bucket_long_run_accuracy)
{
	static const struct {
		uint64_t rate, burst, period_ns, step_ns, span_ns;
	} rows[] = {
		{ 600, 10, 60 * SEC, 1 * MS, 60 * SEC },      /* the 10 rpm-per-second case */
		{ 60, 0, 60 * SEC, 1 * MS, 60 * SEC },        /* burst 0: the rate, 60 */
		{ 1000, 1, 1 * SEC, 100 * US, 10 * SEC },
		{ 7, 3, 1 * SEC, 13 * MS, 5 * SEC },          /* steps that do not divide the gap */
		{ 100000, 500, 60 * SEC, 1 * MS, 120 * SEC }, /* faster than arrivals after burst */
	};

	for (size_t r = 0; r < NELEM(rows); r++) {
		struct l7_limit lim = { .rate = rows[r].rate, .burst = rows[r].burst };
		uint64_t burst = rows[r].burst ? rows[r].burst : rows[r].rate;
		struct bucket b;
		uint64_t admitted = 0, arrivals = 0;
		double want;

		b = (struct bucket){ .level = (double)burst };

		for (uint64_t t = 0; t < rows[r].span_ns; t += rows[r].step_ns, arrivals++)
			admitted += bucket_take(&b, &lim, rows[r].period_ns, t, 1) == 0;
		want = (double)burst + (double)rows[r].rate * (double)rows[r].span_ns /
					       (double)rows[r].period_ns;
		if (want > (double)arrivals)
			want = (double)arrivals;
		CHECK(admitted + 1 >= want && (double)admitted <= want + 1,
		      "row %zu: admitted %llu of %llu arrivals, want %.1f +- 1", r,
		      (unsigned long long)admitted, (unsigned long long)arrivals, want);
	}
}

TEST(lim_bucket_big_cost_and_refund)
{
	struct l7_limit lim = { .rate = 600, .burst = 10 };
	struct bucket b = { .level = 10, .at_ns = 0 };
	uint64_t period = 60 * SEC;

	CHECK_EQ(bucket_take(&b, &lim, period, 0, 25), 0, "a cost of 25 passes a full bucket of 10");
	CHECK(near(b.level, -15), "level went negative: %f", b.level);
	/* back to full takes 25 units = 2.5 s */
	CHECK_EQ(bucket_take(&b, &lim, period, 0, 25), 2500 * MS, "wait until full again");
	CHECK(bucket_take(&b, &lim, period, 2500 * MS - 1, 25) != 0, "not before");
	CHECK_EQ(bucket_take(&b, &lim, period, 2500 * MS, 25), 0, "full again: passes");
	/* a level of 9 is not full: a cost over the burst waits for the 10th */
	b.level = 9;
	b.at_ns = 10 * SEC;
	CHECK_EQ(bucket_take(&b, &lim, period, 10 * SEC, 25), 100 * MS, "9 of 10: one more unit");
	CHECK(near(b.level, 9), "a refused take leaves the level: %f", b.level);

	/* refunds stop at the burst */
	b.level = 10;
	bucket_adjust(&b, &lim, period, 10 * SEC, 100);
	CHECK(near(b.level, 10), "refund on a full bucket: %f", b.level);
	CHECK_EQ(bucket_take(&b, &lim, period, 10 * SEC, 3), 0, "take 3");
	bucket_adjust(&b, &lim, period, 10 * SEC, 5);
	CHECK(near(b.level, 10), "refund of 5 after taking 3: %f", b.level);
	bucket_adjust(&b, &lim, period, 10 * SEC, -30);
	CHECK(near(b.level, -20), "a charge goes below zero: %f", b.level);
	CHECK_EQ(bucket_remaining(&b, &lim, period, 10 * SEC), 0, "remaining of a debt");
	CHECK_EQ(bucket_reset_ns(&b, &lim, period, 10 * SEC), 3 * SEC, "30 units to full");

	/* rate 0: unlimited, never touched */
	struct l7_limit none = { 0, 0 };
	b.level = 0;
	CHECK_EQ(bucket_take(&b, &none, period, 0, 1e9), 0, "rate 0 admits everything");
	CHECK(near(b.level, 0), "and takes nothing");
}

/* --- through the limiter ------------------------------------------------- */

TEST(lim_burst_default_resolved)
{
	static const struct {
		uint64_t rate, burst, want;
	} rows[] = {
		/* burst 0 is the rate (l7_config.c's default) */
		{ 100, 0, 100 }, { 5, 0, 5 }, { 1, 0, 1 }, { 600, 0, 600 }, { 600, 4, 4 },
	};

	for (size_t r = 0; r < NELEM(rows); r++) {
		struct l7_config c;
		struct limiter *l;
		struct lim_caller *cl;
		struct lim_ticket t;
		uint64_t retry, n = 0;

		cfg_init(&c, 1);
		c.tiers[0].rpm = (struct l7_limit){ rows[r].rate, rows[r].burst };
		l = lim_make(&c, 16);
		if (!l)
			return;
		cl = get(l, "key:a", 0, 5 * SEC);
		while (n < 1000 && limiter_take(l, cl, 0, 0, 5 * SEC, &t, &retry) == LIM_OK)
			n++;
		CHECK_EQ(n, rows[r].want, "requests at once (the resolved burst)");
		CHECK_EQ(c.tiers[0].rpm.burst, rows[r].burst, "the config is left alone");
		limiter_put(l, cl);
		limiter_free(l);
	}
}

TEST(lim_rpm_long_run_through_limiter)
{
	struct l7_config c;
	struct limiter *l;
	struct lim_caller *cl;
	struct lim_ticket t;
	uint64_t retry, admitted = 0;

	cfg_init(&c, 1);
	c.period_ms = 1000; /* a minute scaled to a second */
	c.tiers[0].rpm = (struct l7_limit){ 600, 10 };
	l = lim_make(&c, 16);
	if (!l)
		return;
	cl = get(l, "key:a", 0, 0);
	for (uint64_t now = 0; now < 10 * SEC; now += 100 * US)
		admitted += limiter_take(l, cl, 0, 0, now, &t, &retry) == LIM_OK;
	/* 10 + 600 * 10 s / 1 s */
	CHECK(admitted >= 6009 && admitted <= 6011, "admitted %llu, want 6010 +- 1",
	      (unsigned long long)admitted);
	limiter_put(l, cl);
	limiter_free(l);
}

/* Many requests reserve tokens and stay in flight (never reconciled): what
 * they hold together over T never exceeds burst + rate*T/period + one
 * reservation, and falls short of rate*T/period by at most one. */
TEST(lim_tpm_reservations_bounded)
{
	struct l7_config c;
	struct limiter *l;
	struct lim_caller *cl;
	struct lim_ticket t;
	uint64_t retry, held = 0, max_res = 0, x = 12345;
	const uint64_t rate = 10000, burst = 1000, span = 60 * SEC;
	double bound;

	cfg_init(&c, 1);
	c.tiers[0].tpm = (struct l7_limit){ rate, burst };
	l = lim_make(&c, 16);
	if (!l)
		return;
	cl = get(l, "key:a", 0, 0);
	for (uint64_t now = 0; now < span; now += 10 * MS) {
		uint64_t in, out;

		x = x * 6364136223846793005ULL + 1442695040888963407ULL;
		in = 50 + (x >> 33) % 700;
		out = (x >> 13) % 800;       /* up to 1500: some above the burst */
		if (limiter_take(l, cl, in, out, now, &t, &retry) == LIM_OK) {
			held += in + out;
			if (in + out > max_res)
				max_res = in + out;
			CHECK(near(t.tokens_charged, (double)(in + out)), "the ticket holds %llu",
			      (unsigned long long)(in + out));
		} else {
			CHECK(retry > 0, "a refusal says when to retry");
		}
	}
	bound = (double)burst + (double)rate * (double)span / (60.0 * SEC);
	CHECK((double)held <= bound + (double)max_res, "held %llu, bound %.0f + %llu",
	      (unsigned long long)held, bound, (unsigned long long)max_res);
	CHECK((double)held >= (double)rate - (double)max_res, "held %llu: the limit is usable",
	      (unsigned long long)held);
	limiter_put(l, cl);
	limiter_free(l);
}

TEST(lim_tpm_kind_reconcile)
{
	static const struct {
		enum l7_tpm_kind kind;
		double est, actual; /* for est (100 in, 200 out), actual (120 in, 50 out) */
	} rows[] = {
		{ L7_TPM_TOTAL, 300, 170 },
		{ L7_TPM_INPUT, 100, 120 },
		{ L7_TPM_OUTPUT, 200, 50 },
	};

	for (size_t r = 0; r < NELEM(rows); r++) {
		struct l7_config c;
		struct limiter *l;
		struct lim_caller *cl;
		struct lim_ticket t;
		const struct lim_state *ts;
		uint64_t retry;

		cfg_init(&c, 1);
		c.tiers[0].tpm = (struct l7_limit){ 60000, 1000 };
		c.tiers[0].tier_tpm = (struct l7_limit){ 600000, 5000 };
		c.tiers[0].tpm_kind = rows[r].kind;
		l = lim_make(&c, 16);
		if (!l)
			return;
		ts = limiter_tier_state(l, 0);
		cl = get(l, "key:a", 0, 0);
		CHECK_EQ(limiter_take(l, cl, 100, 200, 0, &t, &retry), LIM_OK, "take");
		CHECK(near(t.tokens_charged, rows[r].est), "row %zu: charged %f", r,
		      t.tokens_charged);
		CHECK(near(cl->st.tpm.level, 1000 - rows[r].est), "row %zu: caller %f", r,
		      cl->st.tpm.level);
		CHECK(near(ts->tpm.level, 5000 - rows[r].est), "row %zu: tier %f", r,
		      ts->tpm.level);
		limiter_reconcile(l, &t, 120, 50, 0);
		CHECK(near(t.tokens_charged, rows[r].actual), "row %zu: now %f", r,
		      t.tokens_charged);
		CHECK(near(cl->st.tpm.level, 1000 - rows[r].actual), "row %zu: caller after %f",
		      r, cl->st.tpm.level);
		CHECK(near(ts->tpm.level, 5000 - rows[r].actual), "row %zu: tier after %f", r,
		      ts->tpm.level);
		limiter_put(l, cl);
		limiter_free(l);
	}
}

TEST(lim_reconcile_charges_past_zero)
{
	struct l7_config c;
	struct limiter *l;
	struct lim_caller *cl;
	struct lim_ticket t, t2;
	uint64_t retry;

	cfg_init(&c, 1);
	c.tiers[0].rpm = (struct l7_limit){ 600, 10 };
	c.tiers[0].tpm = (struct l7_limit){ 6000, 1000 }; /* 100 tokens a second */
	l = lim_make(&c, 16);
	if (!l)
		return;
	cl = get(l, "key:a", 0, 0);
	CHECK_EQ(limiter_take(l, cl, 100, 100, 0, &t, &retry), LIM_OK, "reserve 200");
	limiter_reconcile(l, &t, 700, 800, 0);         /* it used 1500 */
	CHECK(near(cl->st.tpm.level, -500), "charged the difference: %f", cl->st.tpm.level);
	CHECK_EQ(limiter_take(l, cl, 10, 0, 0, &t2, &retry), LIM_TPM, "in debt: refused");
	CHECK_EQ(retry, 5100 * MS, "510 tokens at 100/s");
	CHECK(near(cl->st.rpm.level, 9), "the refusal took no request: %f", cl->st.rpm.level);
	/* a request without tokens is no tpm draw */
	CHECK_EQ(limiter_take(l, cl, 0, 0, 0, &t2, &retry), LIM_OK, "0 tokens pass a debt");
	CHECK(near(cl->st.tpm.level, -500), "and leave it: %f", cl->st.tpm.level);
	limiter_put(l, cl);
	limiter_free(l);
}

TEST(lim_cancel_refunds)
{
	struct l7_config c;
	struct limiter *l;
	struct lim_caller *cl;
	struct lim_ticket t;
	const struct lim_state *ts;
	uint64_t retry;

	cfg_init(&c, 1);
	c.tiers[0].rpm = (struct l7_limit){ 600, 10 };
	c.tiers[0].tpm = (struct l7_limit){ 60000, 1000 };
	c.tiers[0].tier_rpm = (struct l7_limit){ 6000, 100 };
	c.tiers[0].tier_tpm = (struct l7_limit){ 600000, 10000 };
	l = lim_make(&c, 16);
	if (!l)
		return;
	ts = limiter_tier_state(l, 0);
	cl = get(l, "key:a", 0, 0);
	CHECK_EQ(limiter_take(l, cl, 100, 50, 0, &t, &retry), LIM_OK, "first");
	CHECK_EQ(limiter_take(l, cl, 300, 200, 0, &t, &retry), LIM_OK, "second");
	CHECK(near(cl->st.rpm.level, 8) && near(cl->st.tpm.level, 350), "caller %f %f",
	      cl->st.rpm.level, cl->st.tpm.level);
	CHECK(near(ts->rpm.level, 98) && near(ts->tpm.level, 9350), "tier %f %f",
	      ts->rpm.level, ts->tpm.level);
	limiter_cancel(l, &t, 0);
	CHECK(near(cl->st.rpm.level, 9) && near(cl->st.tpm.level, 850), "caller refunded %f %f",
	      cl->st.rpm.level, cl->st.tpm.level);
	CHECK(near(ts->rpm.level, 99) && near(ts->tpm.level, 9850), "tier refunded %f %f",
	      ts->rpm.level, ts->tpm.level);
	CHECK(near(t.tokens_charged, 0), "the ticket holds nothing");
	limiter_put(l, cl);
	limiter_free(l);
}

TEST(lim_all_or_none)
{
	struct l7_config c;
	struct limiter *l;
	struct lim_caller *a, *b;
	struct lim_ticket t;
	uint64_t retry;

	cfg_init(&c, 1);
	c.tiers[0].rpm = (struct l7_limit){ 600, 10 };
	c.tiers[0].tpm = (struct l7_limit){ 60000, 1000 };
	c.tiers[0].tier_rpm = (struct l7_limit){ 60, 1 };  /* one a second for the tier */
	c.tiers[0].tier_tpm = (struct l7_limit){ 6000, 400 };
	l = lim_make(&c, 16);
	if (!l)
		return;
	a = get(l, "key:a", 0, 0);
	b = get(l, "key:b", 0, 0);
	CHECK_EQ(limiter_take(l, a, 100, 100, 0, &t, &retry), LIM_OK, "a takes the tier's one");
	CHECK_EQ(limiter_take(l, b, 10, 10, 0, &t, &retry), LIM_TIER_RPM, "b: the tier's rpm");
	CHECK_EQ(retry, 1 * SEC, "a tier request a second");
	CHECK(near(b->st.rpm.level, 10) && near(b->st.tpm.level, 1000),
	      "b's own buckets untouched: %f %f", b->st.rpm.level, b->st.tpm.level);
	CHECK(near(limiter_tier_state(l, 0)->tpm.level, 200), "tier tpm untouched: %f",
	      limiter_tier_state(l, 0)->tpm.level);

	/* several failing: the first reason in rank order, the longest wait */
	a->st.rpm.level = 0;
	/* a: rpm (100 ms), tier rpm (1 s), tier tpm (needs 400, has 200: 2 s) */
	CHECK_EQ(limiter_take(l, a, 250, 250, 0, &t, &retry), LIM_RPM, "rpm ranks first");
	CHECK_EQ(retry, 2 * SEC, "the longest of the waits");
	CHECK(near(a->st.tpm.level, 800), "a's tpm untouched: %f", a->st.tpm.level);
	CHECK_EQ(limiter_take(l, b, 250, 250, 1 * SEC, &t, &retry), LIM_TIER_TPM,
		 "b at 1 s: only the tier's tokens");
	CHECK_EQ(retry, 1 * SEC, "100 tokens short at 100/s");
	CHECK(near(b->st.rpm.level, 10), "b's rpm untouched: %f", b->st.rpm.level);
	CHECK_EQ(limiter_take(l, b, 250, 250, 2 * SEC, &t, &retry), LIM_OK, "b at 2 s passes");
	limiter_put(l, a);
	limiter_put(l, b);
	limiter_free(l);
}

TEST(lim_reason_names)
{
	CHECK(!strcmp(lim_reason_name(LIM_RPM), "rpm"), "rpm");
	CHECK(!strcmp(lim_reason_name(LIM_TIER_TPM), "tier_tpm"), "tier_tpm");
	CHECK(!strcmp(lim_reason_name(LIM_TIER_CONCURRENCY), "tier_concurrency"), "tier_conc");
	CHECK(!strcmp(lim_reason_name(LIM_REASONS), "unknown"), "out of range");
}

TEST(lim_concurrency)
{
	struct l7_config c;
	struct limiter *l;
	struct lim_caller *a, *b;
	struct lim_ticket t[6];
	uint64_t retry;

	cfg_init(&c, 1);
	c.tiers[0].concurrency = 2;
	c.tiers[0].tier_concurrency = 3;
	l = lim_make(&c, 16);
	if (!l)
		return;
	a = get(l, "key:a", 0, 0);
	b = get(l, "key:b", 0, 0);
	for (int i = 0; i < 3; i++)
		CHECK_EQ(limiter_take(l, a, 0, 0, 0, &t[i], &retry), LIM_OK, "a take");
	for (int i = 3; i < 6; i++)
		CHECK_EQ(limiter_take(l, b, 0, 0, 0, &t[i], &retry), LIM_OK, "b take");
	CHECK_EQ(limiter_start(l, &t[0]), LIM_OK, "a 1st");
	CHECK_EQ(limiter_start(l, &t[0]), LIM_OK, "starting twice counts once");
	CHECK_EQ(limiter_start(l, &t[1]), LIM_OK, "a 2nd");
	CHECK_EQ(limiter_start(l, &t[2]), LIM_CONCURRENCY, "a 3rd: over the caller's 2");
	CHECK_EQ(limiter_start(l, &t[3]), LIM_OK, "b 1st");
	CHECK_EQ(limiter_start(l, &t[4]), LIM_TIER_CONCURRENCY, "b 2nd: over the tier's 3");
	CHECK_EQ(a->st.inflight, 2, "a in flight");
	CHECK_EQ(limiter_tier_state(l, 0)->inflight, 3, "tier in flight");
	limiter_finish(l, &t[0]);
	limiter_finish(l, &t[0]);
	CHECK_EQ(a->st.inflight, 1, "a finished one (twice is once)");
	CHECK_EQ(limiter_tier_state(l, 0)->inflight, 2, "tier after finish");
	CHECK_EQ(limiter_start(l, &t[4]), LIM_OK, "b 2nd gets the freed slot");
	CHECK_EQ(limiter_start(l, &t[2]), LIM_TIER_CONCURRENCY, "a 3rd: tier full again");
	limiter_cancel(l, &t[4], 0);
	CHECK_EQ(limiter_tier_state(l, 0)->inflight, 2, "a cancelled started ticket leaves");
	CHECK_EQ(limiter_start(l, &t[2]), LIM_OK, "a 3rd now");
	for (int i = 0; i < 6; i++)
		limiter_finish(l, &t[i]);
	CHECK_EQ(a->st.inflight + b->st.inflight + limiter_tier_state(l, 0)->inflight, 0,
		 "all finished");

	/* 0 = unlimited */
	c.tiers[0].concurrency = 0;
	c.tiers[0].tier_concurrency = 0;
	limiter_reconfigure(l, &c);
	for (int i = 0; i < 6; i++)
		CHECK_EQ(limiter_start(l, &t[i]), LIM_OK, "unlimited");
	limiter_put(l, a);
	limiter_put(l, b);
	limiter_free(l);
}

/* The headers OpenAI's way: a fresh caller's remaining equals its limit,
 * which with the default burst (0: the rate) is the rate itself. */
TEST(lim_view_fresh_caller_full)
{
	struct l7_config c;
	struct limiter *l;
	struct lim_caller *a;
	struct lim_view v;

	cfg_init(&c, 1);
	c.tiers[0].rpm = (struct l7_limit){ 600, 0 };
	c.tiers[0].tpm = (struct l7_limit){ 10000000, 0 };
	l = lim_make(&c, 16);
	if (!l)
		return;
	a = get(l, "key:fresh", 0, 5 * SEC);
	limiter_view(l, a, 5 * SEC, &v);
	CHECK_EQ(v.limit_requests, 600, "limit-requests: the rate (burst 0 = the rate)");
	CHECK_EQ(v.remaining_requests, v.limit_requests, "a fresh key: remaining = limit");
	CHECK_EQ(v.limit_tokens, 10000000, "limit-tokens: the rate");
	CHECK_EQ(v.remaining_tokens, v.limit_tokens, "a fresh key: remaining = limit (tokens)");
	CHECK_EQ(v.reset_tokens_ns, 0, "full: no reset");
	limiter_put(l, a);
	limiter_free(l);
}

TEST(lim_view_values)
{
	struct l7_config c;
	struct limiter *l;
	struct lim_caller *a;
	struct lim_ticket t;
	struct lim_view v;
	uint64_t retry;

	cfg_init(&c, 2);
	c.tiers[0].rpm = (struct l7_limit){ 600, 10 };
	c.tiers[0].tier_rpm = (struct l7_limit){ 6000, 100 };
	c.tiers[0].tier_tpm = (struct l7_limit){ 60000, 1000 }; /* no per-key tpm */
	l = lim_make(&c, 16);
	if (!l)
		return;
	a = get(l, "key:a", 0, 0);
	for (int i = 0; i < 3; i++)
		limiter_take(l, a, 100, 50, 0, &t, &retry);
	limiter_view(l, a, 0, &v);
	CHECK_EQ(v.limit_requests, 10, "the caller's rpm bucket's capacity (its burst)");
	CHECK_EQ(v.remaining_requests, 7, "10 - 3");
	CHECK_EQ(v.reset_requests_ns, 300 * MS, "3 requests at 100 ms each");
	CHECK_EQ(v.limit_tokens, 1000, "the tier's tpm burst (the caller has none)");
	CHECK_EQ(v.remaining_tokens, 550, "1000 - 450");
	CHECK_EQ(v.reset_tokens_ns, 450 * MS, "450 tokens at 1000/s");
	limiter_view(l, a, 150 * MS, &v);
	CHECK_EQ(v.remaining_requests, 8, "1.5 refilled: whole units");
	CHECK_EQ(v.reset_requests_ns, 150 * MS, "half way");
	limiter_view(l, a, 10 * SEC, &v);
	CHECK_EQ(v.remaining_requests, 10, "full");
	CHECK_EQ(v.reset_requests_ns, 0, "full: no reset");
	limiter_put(l, a);

	a = get(l, "key:b", 1, 0);          /* tier 1: no limits at all */
	limiter_view(l, a, 0, &v);
	CHECK(v.limit_requests == 0 && v.limit_tokens == 0, "unlimited: limit 0");
	limiter_put(l, a);
	limiter_free(l);
}

TEST(lim_fmt_duration_table)
{
	static const struct {
		uint64_t ns;
		const char *want;
	} rows[] = {
		{ 0, "0s" },
		{ 1, "1ms" },                  /* rounded up, never to 0 */
		{ 12 * MS, "12ms" },
		{ 12 * MS + 1, "13ms" },
		{ 999 * MS, "999ms" },
		{ 999 * MS + 1, "1s" },
		{ 1 * SEC, "1s" },
		{ 1500 * MS, "1.5s" },
		{ 1230 * MS, "1.23s" },
		{ 1234 * MS, "1.234s" },
		{ 1234 * MS + 1, "1.235s" },
		{ 12 * SEC, "12s" },
		{ 59 * SEC + 999 * MS, "59.999s" },
		{ 59 * SEC + 999 * MS + 1, "1m0s" },
		{ 60 * SEC, "1m0s" },
		{ 61 * SEC + 200 * MS, "1m2s" },
		{ 360 * SEC, "6m0s" },
		{ 3723 * SEC, "1h2m3s" },
	};
	char buf[32], small[4];

	for (size_t r = 0; r < NELEM(rows); r++) {
		lim_fmt_duration(rows[r].ns, buf, sizeof(buf));
		CHECK(!strcmp(buf, rows[r].want), "%llu ns: got \"%s\", want \"%s\"",
		      (unsigned long long)rows[r].ns, buf, rows[r].want);
	}
	lim_fmt_duration(3723 * SEC, small, sizeof(small));
	CHECK_EQ(strlen(small), 3, "cut to the buffer");
}

TEST(lim_retry_after_rounding)
{
	static const struct {
		uint64_t ns;
		unsigned int want;
	} rows[] = {
		{ 0, 1 }, { 1, 1 }, { 999 * MS, 1 }, { 1 * SEC, 1 }, { 1 * SEC + 1, 2 },
		{ 2500 * MS, 3 }, { 60 * SEC, 60 }, { UINT64_MAX, UINT32_MAX }, /* clamped */
	};

	for (size_t r = 0; r < NELEM(rows); r++)
		CHECK(lim_retry_after_s(rows[r].ns) == rows[r].want, "%llu ns: got %u, want %u",
		      (unsigned long long)rows[r].ns, lim_retry_after_s(rows[r].ns), rows[r].want);
}

/* --- the caller table ------------------------------------------------------ */

/* A caller that has taken n requests shows it: level burst - n. */
#define EV_BURST 50

static struct lim_caller *get_take(struct limiter *l, const char *id, int n)
{
	struct lim_caller *c = get(l, id, 0, 0);
	struct lim_ticket t;
	uint64_t retry;

	for (int i = 0; c && i < n; i++)
		limiter_take(l, c, 0, 0, 0, &t, &retry);
	return c;
}

TEST(lim_table_eviction)
{
	struct l7_config c;
	struct limiter *l;
	struct lim_caller *cl[5];
	char id[16];

	cfg_init(&c, 1);
	c.tiers[0].rpm = (struct l7_limit){ 6000, EV_BURST };
	l = lim_make(&c, 4);
	if (!l)
		return;
	/* a..d each take 1, released in order a, b, c, d */
	for (int i = 0; i < 4; i++) {
		snprintf(id, sizeof(id), "key:%c", 'a' + i);
		cl[i] = get_take(l, id, 1);
		CHECK(cl[i] != NULL, "get %s", id);
	}
	CHECK_EQ(limiter_n_callers(l), 4, "four callers");
	for (int i = 0; i < 4; i++)
		limiter_put(l, cl[i]);
	/* a is used again: b is now the least recently used */
	cl[0] = get(l, "key:a", 0, 0);
	CHECK(cl[0] && near(cl[0]->st.rpm.level, EV_BURST - 1), "a kept its state");
	limiter_put(l, cl[0]);
	cl[4] = get(l, "key:e", 0, 0);
	CHECK(cl[4] != NULL, "e evicts an idle caller");
	CHECK_EQ(limiter_n_callers(l), 4, "still four");
	limiter_put(l, cl[4]);
	/* c, d, a, e remain; b comes back fresh (and evicts c) */
	cl[1] = get(l, "key:b", 0, 0);
	CHECK(cl[1] && near(cl[1]->st.rpm.level, EV_BURST), "b was evicted: starts full");
	limiter_put(l, cl[1]);
	cl[3] = get(l, "key:d", 0, 0);
	CHECK(cl[3] && near(cl[3]->st.rpm.level, EV_BURST - 1), "d was kept");
	limiter_put(l, cl[3]);
	cl[0] = get(l, "key:a", 0, 0);
	CHECK(cl[0] && near(cl[0]->st.rpm.level, EV_BURST - 1), "a was kept");
	limiter_put(l, cl[0]);

	/* all held: nothing can make way */
	for (int i = 0; i < 4; i++) {
		snprintf(id, sizeof(id), "key:h%d", i);
		cl[i] = get(l, id, 0, 0);
		CHECK(cl[i] != NULL, "get %s", id);
	}
	CHECK(get(l, "key:x", 0, 0) == NULL, "table full of held callers: NULL");
	/* a second reference to a held caller is fine */
	cl[4] = get(l, "key:h0", 0, 0);
	CHECK(cl[4] == cl[0] && cl[0]->refs == 2, "same caller, two refs");
	limiter_put(l, cl[4]);
	CHECK(get(l, "key:x", 0, 0) == NULL, "one ref left: still NULL");
	limiter_put(l, cl[2]);
	cl[2] = get(l, "key:x", 0, 0);
	CHECK(cl[2] != NULL && !strcmp(cl[2]->id, "key:x"), "a release makes room");
	for (int i = 0; i < 4; i++)
		limiter_put(l, cl[i]);

	/* too long to store: refused, not cut */
	char big[sizeof(cl[0]->id) + 1];
	memset(big, 'k', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	CHECK(get(l, big, 0, 0) == NULL, "an id too long");
	limiter_free(l);
}

/* Many ids through a small table: after heavy eviction (which shifts hash
 * entries around) the most recent ones are all still found with their
 * state. */
TEST(lim_table_churn)
{
	struct l7_config c;
	struct limiter *l;
	char id[32];
	const int cap = 64, n = 20000;
	int found = 0;

	cfg_init(&c, 1);
	c.tiers[0].rpm = (struct l7_limit){ 6000, EV_BURST };
	l = lim_make(&c, (unsigned int)cap);
	if (!l)
		return;
	for (int i = 0; i < n; i++) {
		struct lim_caller *cl;

		snprintf(id, sizeof(id), "addr:10.0.%d.%d", i / 256, i % 256);
		cl = get_take(l, id, 1);
		if (!CHECK(cl != NULL, "get %s", id))
			break;
		limiter_put(l, cl);
	}
	CHECK_EQ(limiter_n_callers(l), cap, "bounded at max_callers");
	/* in reverse order, so each lookup finds one before any is evicted */
	for (int i = n - 1; i >= n - cap; i--) {
		struct lim_caller *cl;

		snprintf(id, sizeof(id), "addr:10.0.%d.%d", i / 256, i % 256);
		cl = get(l, id, 0, 0);
		found += cl && near(cl->st.rpm.level, EV_BURST - 1) && !strcmp(cl->id, id);
		limiter_put(l, cl);
	}
	CHECK_EQ(found, cap, "the last max_callers ids kept their state");
	limiter_free(l);
}

/* --- reconfiguration ------------------------------------------------------- */

TEST(lim_reconfigure_moves_state)
{
	struct l7_config c;
	struct limiter *l;
	struct lim_caller *f, *p;
	struct lim_ticket tf, tp;
	uint64_t retry;

	cfg_init(&c, 2);
	snprintf(c.tiers[0].name, L7_NAME_LEN, "free");
	snprintf(c.tiers[1].name, L7_NAME_LEN, "pro");
	c.tiers[0].rpm = (struct l7_limit){ 600, 10 };
	c.tiers[1].rpm = (struct l7_limit){ 6000, 100 };
	c.tiers[1].tier_rpm = (struct l7_limit){ 60000, 1000 };
	l = lim_make(&c, 16);
	if (!l)
		return;
	f = get(l, "key:f", 0, 0);
	p = get(l, "key:p", 1, 0);
	CHECK_EQ(limiter_take(l, f, 0, 0, 0, &tf, &retry), LIM_OK, "f takes");
	CHECK_EQ(limiter_take(l, p, 0, 0, 0, &tp, &retry), LIM_OK, "p takes");
	CHECK_EQ(limiter_start(l, &tf), LIM_OK, "f starts");
	CHECK_EQ(limiter_start(l, &tp), LIM_OK, "p starts");

	/* "free" is gone, "pro" moves to index 0, "gold" is new and the default */
	cfg_init(&c, 2);
	snprintf(c.tiers[0].name, L7_NAME_LEN, "pro");
	snprintf(c.tiers[1].name, L7_NAME_LEN, "gold");
	c.tiers[0].rpm = (struct l7_limit){ 6000, 100 };
	c.tiers[0].tier_rpm = (struct l7_limit){ 60000, 1000 };
	c.tiers[1].rpm = (struct l7_limit){ 60, 5 };
	c.default_tier = 1;
	limiter_reconfigure(l, &c);
	CHECK_EQ(p->tier, 0, "pro's caller follows the name");
	CHECK_EQ(f->tier, 1, "free's caller goes to the default tier");
	CHECK(near(limiter_tier_state(l, 0)->rpm.level, 999), "pro's aggregate kept: %f",
	      limiter_tier_state(l, 0)->rpm.level);
	CHECK(near(p->st.rpm.level, 99), "p's own state kept: %f", p->st.rpm.level);
	CHECK_EQ(limiter_tier_state(l, 1)->inflight, 1, "f's request counts in gold");
	CHECK_EQ(limiter_tier_state(l, 0)->inflight, 1, "p's request still counts once in pro");
	limiter_finish(l, &tf);
	CHECK_EQ(limiter_tier_state(l, 1)->inflight, 0, "and leaves gold");
	/* f's level (9) is capped at gold's burst on the next refill */
	CHECK_EQ(limiter_take(l, f, 0, 0, 0, &tf, &retry), LIM_OK, "f under gold");
	CHECK(near(f->st.rpm.level, 4), "capped at 5, took 1: %f", f->st.rpm.level);
	CHECK(limiter_tier_state(l, 2) == NULL, "no third tier");
	limiter_put(l, f);
	limiter_put(l, p);
	limiter_free(l);
}

/* --- strikes ------------------------------------------------------------------ */

TEST(lim_strikes)
{
	struct l7_config c;
	struct limiter *l;
	uint8_t a[16] = { [10] = 0xff, [11] = 0xff, [12] = 10, [15] = 1 };
	uint8_t b[16] = { [10] = 0xff, [11] = 0xff, [12] = 10, [15] = 2 };
	const uint64_t win = 10 * SEC;
	int fired = 0;

	cfg_init(&c, 1);
	l = lim_make(&c, 16);
	if (!l)
		return;
	CHECK_EQ(limiter_strike(l, a, 3, win, 0), 0, "1st");
	CHECK_EQ(limiter_strike(l, b, 3, win, 0), 0, "b's 1st: its own count");
	CHECK_EQ(limiter_strike(l, a, 3, win, 1 * SEC), 0, "2nd");
	CHECK_EQ(limiter_strike(l, b, 3, win, 1 * SEC), 0, "b: 2nd");
	CHECK_EQ(limiter_strike(l, a, 3, win, 2 * SEC), 1, "3rd within the window fires");
	CHECK_EQ(limiter_strike(l, a, 3, win, 3 * SEC), 0, "then it counts again: 1st");
	CHECK_EQ(limiter_strike(l, a, 3, win, 4 * SEC), 0, "2nd");
	CHECK_EQ(limiter_strike(l, a, 3, win, 5 * SEC), 1, "3rd fires again");

	/* outside the window the count restarts */
	CHECK_EQ(limiter_strike(l, a, 3, win, 20 * SEC), 0, "1st");
	CHECK_EQ(limiter_strike(l, a, 3, win, 25 * SEC), 0, "2nd");
	CHECK_EQ(limiter_strike(l, a, 3, win, 31 * SEC), 0, "11 s after the 1st: a new 1st");
	CHECK_EQ(limiter_strike(l, a, 3, win, 32 * SEC), 0, "2nd");
	CHECK_EQ(limiter_strike(l, a, 3, win, 33 * SEC), 1, "3rd");

	CHECK_EQ(limiter_strike(l, a, 0, win, 40 * SEC), 0, "after 0: never");
	CHECK_EQ(limiter_strike(l, a, 1, win, 41 * SEC), 1, "after 1: every strike");
	CHECK_EQ(limiter_strike(l, a, 1, win, 41 * SEC), 1, "after 1: every strike");

	/* a flood of addresses fills the table; a new address still counts */
	for (uint32_t i = 0; i < 20000; i++) {
		uint8_t x[16] = { 0x20, 0x01, [12] = (uint8_t)(i >> 24), (uint8_t)(i >> 16),
				  (uint8_t)(i >> 8), (uint8_t)i };

		fired += limiter_strike(l, x, 3, win, 50 * SEC + i);
	}
	CHECK_EQ(fired, 0, "one strike each fires nothing");
	CHECK_EQ(limiter_strike(l, a, 2, win, 60 * SEC), 0, "a after the flood: 1st");
	CHECK_EQ(limiter_strike(l, a, 2, win, 60 * SEC + 1), 1, "2nd fires");
	limiter_free(l);
}
