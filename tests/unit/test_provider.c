// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Learned provider limits (user/l7/provider.c) on a test clock: every form
 * of the headers and garbage in each, cooldowns and their expiry and
 * backoff, budgets that account for requests in flight, refill and reset,
 * stale reports, and the earliest of two backends. Expected numbers are
 * computed here from the headers, not read back from the module.
 */
#include <stdio.h>
#include <string.h>
#include "harness.h"
#include "provider.h"

#define MS 1000000ULL
#define SEC 1000000000ULL
#define WALL 1700000000LL   /* 2023-11-14T22:13:20Z */

static int hdr(struct provider_resp *r, const char *name, const char *value)
{
	return provider_resp_header(r, name, strlen(name), value, strlen(value), WALL);
}

/* --- values -------------------------------------------------------------------- */

TEST(prov_duration_forms)
{
	static const struct {
		const char *s;
		unsigned long long ns;
	} good[] = {
		{ "1s", SEC }, { "6m0s", 360 * SEC }, { "20ms", 20 * MS },
		{ "1h2m3.5s", 3723 * SEC + 500 * MS }, { "0s", 0 }, { "12", 12 * SEC },
		{ "1.5", 1500 * MS }, { "0.25s", 250 * MS }, { "  7ms ", 7 * MS },
		{ "1m30s", 90 * SEC }, { "2h", 7200 * SEC }, { "500us", 500000 },
		{ "500\xc2\xb5s", 500000 }, { "42ns", 42 }, { "1s500ms", 1500 * MS },
		{ "23h59m59s", 86399 * SEC }, { "86400", 86400 * SEC },
		{ "0.000000001", 1 }, { "5.123456789012s", 5123456789ULL },
	};
	static const char *const bad[] = {
		"", " ", "s", "ms", "1", /* placeholder: replaced below */ "-1s", "1x", "1s1s",
		"1s1m", "1ms1s", "1.s", ".5s", "1..5s", "abc", "1e3", "inf", "nan", "1 s",
		"1h 2m", "25h", "86401", "9999999999999999s", "1,5s", "0x10", "1m-5s", "+1s",
	};
	uint64_t ns;

	for (size_t i = 0; i < NELEM(good); i++) {
		int err = provider_parse_duration(good[i].s, strlen(good[i].s), &ns);

		CHECK(!err && ns == good[i].ns, "'%s': err %d, %llu ns, want %llu", good[i].s, err,
		      (unsigned long long)ns, good[i].ns);
	}
	for (size_t i = 0; i < NELEM(bad); i++) {
		if (!strcmp(bad[i], "1"))
			continue;  /* plain seconds: good */
		ns = 12345;
		CHECK(provider_parse_duration(bad[i], strlen(bad[i]), &ns) != 0 && ns == 12345,
		      "'%s' accepted as %llu ns", bad[i], (unsigned long long)ns);
	}
	/* Not NUL-terminated: the length is the end. */
	CHECK(!provider_parse_duration("20msXXX", 4, &ns) && ns == 20 * MS, "length bound");
}

TEST(prov_retry_after_forms)
{
	static const struct {
		const char *s;
		unsigned long long ns;
	} good[] = {
		{ "0", 0 }, { "1", SEC }, { "120", 120 * SEC }, { "1.5", 1500 * MS },
		/* WALL + 30 s, and one in the past */
		{ "Tue, 14 Nov 2023 22:13:50 GMT", 30 * SEC },
		{ "Tue, 14 Nov 2023 22:13:20 GMT", 0 },
		{ "Sun, 06 Nov 1994 08:49:37 GMT", 0 },
		{ "Wed, 15 Nov 2023 00:00:00 GMT", (86400 - 80000) * SEC },
	};
	static const char *const bad[] = {
		"", "soon", "-1", "1s", "1e2", "100000", "Tue, 14 Nov 2023 22:13:50 UTC",
		"Tue, 14 Nov 2023 22:13:50", "Tue, 32 Nov 2023 22:13:50 GMT",
		"Tue, 14 Foo 2023 22:13:50 GMT", "Tue, 14 Nov 2023 24:13:50 GMT",
		"Tuesday, 14-Nov-23 22:13:50 GMT", "Tue, 14 Nov 2025 22:13:50 GMT",
		"Tue, 1a Nov 2023 22:13:50 GMT", "Tue, 30 Feb 2023 22:13:50 GMT",
	};
	uint64_t ns;

	for (size_t i = 0; i < NELEM(good); i++) {
		int err = provider_parse_retry_after(good[i].s, strlen(good[i].s), WALL, &ns);

		CHECK(!err && ns == good[i].ns, "'%s': err %d, %llu ns, want %llu", good[i].s, err,
		      (unsigned long long)ns, good[i].ns);
	}
	for (size_t i = 0; i < NELEM(bad); i++)
		CHECK(provider_parse_retry_after(bad[i], strlen(bad[i]), WALL, &ns) != 0,
		      "'%s' accepted as %llu ns", bad[i], (unsigned long long)ns);
}

TEST(prov_count_forms)
{
	uint64_t v;

	CHECK(!provider_parse_count("0", 1, &v) && v == 0, "0");
	CHECK(!provider_parse_count(" 59 ", 4, &v) && v == 59, "blanks");
	CHECK(!provider_parse_count("1000000000000000", 16, &v) && v == PROVIDER_COUNT_MAX, "max");
	CHECK(provider_parse_count("1000000000000001", 16, &v) != 0, "past max");
	CHECK(provider_parse_count("99999999999999999999", 20, &v) != 0, "overflow");
	CHECK(provider_parse_count("-1", 2, &v) != 0, "negative");
	CHECK(provider_parse_count("1.5", 3, &v) != 0, "fraction");
	CHECK(provider_parse_count("", 0, &v) != 0, "empty");
	CHECK(provider_parse_count("12k", 3, &v) != 0, "suffix");
}

TEST(prov_response_headers)
{
	struct provider_resp r;

	provider_resp_init(&r, 200);
	CHECK_EQ(hdr(&r, "X-RateLimit-Limit-Requests", "600"), 1, "limit-requests");
	CHECK_EQ(hdr(&r, "x-ratelimit-limit-tokens", "40000"), 1, "limit-tokens");
	CHECK_EQ(hdr(&r, "x-ratelimit-remaining-requests", "599"), 1, "remaining-requests");
	CHECK_EQ(hdr(&r, "x-ratelimit-remaining-tokens", "39000"), 1, "remaining-tokens");
	CHECK_EQ(hdr(&r, "x-ratelimit-reset-requests", "100ms"), 1, "reset-requests");
	CHECK_EQ(hdr(&r, "x-ratelimit-reset-tokens", "1.5s"), 1, "reset-tokens");
	CHECK_EQ(hdr(&r, "content-type", "application/json"), 0, "not ours");
	CHECK_EQ(hdr(&r, "x-ratelimit-foo", "1"), 0, "not ours either");
	CHECK(r.has_limit[PROV_REQUESTS] && r.limit[PROV_REQUESTS] == 600, "limit r");
	CHECK(r.has_limit[PROV_TOKENS] && r.limit[PROV_TOKENS] == 40000, "limit t");
	CHECK(r.has_remaining[PROV_REQUESTS] && r.remaining[PROV_REQUESTS] == 599, "rem r");
	CHECK(r.has_remaining[PROV_TOKENS] && r.remaining[PROV_TOKENS] == 39000, "rem t");
	CHECK(r.has_reset[PROV_REQUESTS] && r.reset_ns[PROV_REQUESTS] == 100 * MS, "reset r");
	CHECK(r.has_reset[PROV_TOKENS] && r.reset_ns[PROV_TOKENS] == 1500 * MS, "reset t");
	CHECK_EQ(r.bad, 0, "nothing bad");
	CHECK(!r.has_retry, "no retry");

	/* retry-after-ms wins whatever the order. */
	provider_resp_init(&r, 429);
	hdr(&r, "retry-after", "2");
	hdr(&r, "retry-after-ms", "1250");
	CHECK(r.has_retry && r.retry_ns == 1250 * MS, "ms after: %llu", (unsigned long long)r.retry_ns);
	provider_resp_init(&r, 429);
	hdr(&r, "Retry-After-Ms", "1250.5");
	hdr(&r, "Retry-After", "2");
	CHECK(r.has_retry && r.retry_ns == 1250500000ULL, "ms before: %llu",
	      (unsigned long long)r.retry_ns);
	/* A bad retry-after-ms leaves a good retry-after. */
	provider_resp_init(&r, 429);
	CHECK_EQ(hdr(&r, "retry-after-ms", "soon"), -1, "bad ms");
	hdr(&r, "retry-after", "3");
	CHECK(r.has_retry && r.retry_ns == 3 * SEC && r.bad == 1, "fallback to seconds");

	/* Garbage: ignored, counted, never a cap of 0 or none. */
	provider_resp_init(&r, 200);
	CHECK_EQ(hdr(&r, "x-ratelimit-limit-requests", "0"), -1, "limit 0");
	CHECK_EQ(hdr(&r, "x-ratelimit-limit-tokens", "lots"), -1, "limit word");
	CHECK_EQ(hdr(&r, "x-ratelimit-remaining-requests", "-3"), -1, "negative");
	CHECK_EQ(hdr(&r, "x-ratelimit-remaining-tokens", ""), -1, "empty");
	CHECK_EQ(hdr(&r, "x-ratelimit-reset-requests", "tomorrow"), -1, "reset word");
	CHECK_EQ(hdr(&r, "x-ratelimit-reset-tokens", "99999h"), -1, "reset too long");
	CHECK_EQ(hdr(&r, "retry-after", "-5"), -1, "negative retry");
	CHECK_EQ(hdr(&r, "retry-after-ms", "1e9"), -1, "exponent");
	CHECK_EQ(r.bad, 8, "all counted");
	for (int k = 0; k < PROV_KINDS; k++)
		CHECK(!r.has_limit[k] && !r.has_remaining[k] && !r.has_reset[k], "kind %d empty", k);
	CHECK(!r.has_retry, "no retry from garbage");
}

TEST(prov_parse_http_response)
{
	static const char head[] =
		"HTTP/1.1 429 Too Many Requests\r\n"
		"Content-Type: application/json\r\n"
		"retry-after: 2\r\n"
		"retry-after-ms: 1500\r\n"
		"x-ratelimit-limit-requests: 60\r\n"
		"x-ratelimit-remaining-requests: 0\r\n"
		"x-ratelimit-reset-requests: 1s\r\n"
		"Content-Length: 0\r\n\r\n";
	struct http_response resp;
	struct provider_resp r;
	long n = http_parse_response(head, sizeof(head) - 1, 4096, &resp);

	if (!CHECK(n > 0, "parse: %ld", n))
		return;
	provider_resp_parse(&r, &resp, WALL);
	CHECK_EQ(r.status, 429, "status");
	CHECK(r.has_retry && r.retry_ns == 1500 * MS, "retry-after-ms");
	CHECK(r.has_remaining[PROV_REQUESTS] && r.remaining[PROV_REQUESTS] == 0, "remaining 0");
	CHECK(r.has_limit[PROV_REQUESTS] && r.limit[PROV_REQUESTS] == 60, "limit");
}

/* --- decisions ------------------------------------------------------------------- */

/* A response of status with the request budget (limit, remaining, reset). */
static void resp_req(struct provider_resp *r, int status, const char *limit, const char *rem,
		     const char *reset)
{
	provider_resp_init(r, status);
	if (limit)
		hdr(r, "x-ratelimit-limit-requests", limit);
	if (rem)
		hdr(r, "x-ratelimit-remaining-requests", rem);
	if (reset)
		hdr(r, "x-ratelimit-reset-requests", reset);
}

TEST(prov_unknown_is_no_cap)
{
	struct provider p;
	struct provider_ticket t;
	struct provider_resp r;
	uint64_t w = 7;

	provider_init(&p);
	CHECK(provider_can_send(&p, 0, 100000, &w) && w == 0, "a fresh backend is open");
	for (int i = 0; i < 1000; i++)
		provider_sent(&p, 0, 1000, &t);
	CHECK(provider_can_send(&p, 0, 1000, &w), "no headers ever: no cap");
	CHECK_EQ(provider_remaining(&p, 0, PROV_REQUESTS), -1, "remaining unknown");
	provider_resp_init(&r, 200);
	CHECK_EQ(provider_done(&p, 1, &t, &r), 0, "a plain 200 changes nothing");
	CHECK(provider_can_send(&p, 1, 1000, &w), "still open");
	CHECK_EQ(p.inflight, 999, "in flight");
	CHECK_EQ(provider_done(&p, 1, &t, &r), 0, "a ticket closes once");
	CHECK_EQ(p.inflight, 999, "not twice");
}

TEST(prov_cooldown_retry_after)
{
	struct provider p;
	struct provider_ticket t;
	struct provider_resp r;
	uint64_t w;
	unsigned int ev;

	provider_init(&p);
	provider_sent(&p, 0, 10, &t);
	provider_resp_init(&r, 429);
	hdr(&r, "retry-after-ms", "1500");
	ev = provider_done(&p, 100 * MS, &t, &r);
	CHECK(ev & PROVIDER_EV_COOLDOWN, "cooldown began: %u", ev);
	CHECK(ev & PROVIDER_EV_429, "a 429");
	CHECK(!provider_can_send(&p, 100 * MS, 10, &w) && w == 1500 * MS, "wait %llu",
	      (unsigned long long)w);
	CHECK(!provider_can_send(&p, 1600 * MS - 1, 10, &w) && w == 1, "1 ns before: %llu",
	      (unsigned long long)w);
	CHECK(provider_can_send(&p, 1600 * MS, 10, &w), "open at the end of the cooldown");
	CHECK_EQ(provider_cooldown_left(&p, 600 * MS), 1000 * MS, "left");
	CHECK_EQ(p.st.cooldowns, 1, "one cooldown");
	CHECK_EQ(p.st.seen_429, 1, "one 429");

	/* 503 with Retry-After cools; without, it is passive health's. */
	provider_init(&p);
	provider_sent(&p, 0, 0, &t);
	provider_resp_init(&r, 503);
	provider_done(&p, 0, &t, &r);
	CHECK(provider_can_send(&p, 0, 0, &w), "a bare 503 does not cool");
	provider_sent(&p, 0, 0, &t);
	provider_resp_init(&r, 503);
	hdr(&r, "Retry-After", "3");
	provider_done(&p, 0, &t, &r);
	CHECK(!provider_can_send(&p, 0, 0, &w) && w == 3 * SEC, "503 + Retry-After: %llu",
	      (unsigned long long)w);
	CHECK_EQ(p.st.seen_503_retry, 1, "counted");
	CHECK_EQ(p.st.seen_429, 0, "not a 429");

	/* A Retry-After elsewhere (200) is no cooldown. */
	provider_init(&p);
	provider_sent(&p, 0, 0, &t);
	provider_resp_init(&r, 200);
	hdr(&r, "retry-after", "30");
	provider_done(&p, 0, &t, &r);
	CHECK(provider_can_send(&p, 0, 0, &w), "200 with Retry-After");

	/* retry-after: 0 still cools, briefly. */
	provider_init(&p);
	provider_sent(&p, 0, 0, &t);
	provider_resp_init(&r, 429);
	hdr(&r, "retry-after", "0");
	provider_done(&p, 0, &t, &r);
	CHECK(!provider_can_send(&p, 0, 0, &w) && w == PROVIDER_COOLDOWN_MIN_NS, "floor: %llu",
	      (unsigned long long)w);
	/* An HTTP-date. */
	provider_init(&p);
	provider_sent(&p, 0, 0, &t);
	provider_resp_init(&r, 429);
	hdr(&r, "retry-after", "Tue, 14 Nov 2023 22:13:25 GMT");
	provider_done(&p, 0, &t, &r);
	CHECK(!provider_can_send(&p, 0, 0, &w) && w == 5 * SEC, "date: %llu", (unsigned long long)w);
}

TEST(prov_cooldown_backoff)
{
	struct provider p;
	struct provider_ticket t[4];
	struct provider_resp r;
	uint64_t w, now = 0, want = SEC;

	provider_init(&p);
	provider_resp_init(&r, 429);  /* no Retry-After */
	hdr(&r, "retry-after", "later");  /* garbage is none */
	/* Four in flight come back 429 together: one cooldown of 1 s, not 16. */
	for (int i = 0; i < 4; i++)
		provider_sent(&p, now, 0, &t[i]);
	for (int i = 0; i < 4; i++)
		provider_done(&p, now + (uint64_t)i * MS, &t[i], &r);
	CHECK(!provider_can_send(&p, now, 0, &w), "cooling");
	CHECK_EQ(w, 3 * MS + SEC, "the last in-flight 429 + 1 s, not doubled");
	CHECK_EQ(p.st.cooldowns, 1, "one cooldown entered");
	CHECK_EQ(p.st.seen_429, 4, "four 429s seen");
	/* Each retry after the cooldown that is refused doubles it, to 32 s. */
	now = 10 * SEC;
	for (int i = 0; i < 8; i++) {
		want = SEC << (i + 1);
		if (want > PROVIDER_BACKOFF_MAX_NS)
			want = PROVIDER_BACKOFF_MAX_NS;
		provider_sent(&p, now, 0, &t[0]);
		provider_done(&p, now, &t[0], &r);
		CHECK(!provider_can_send(&p, now, 0, &w) && w == want, "try %d: wait %llu, want %llu",
		      i, (unsigned long long)w, (unsigned long long)want);
		now += w;
	}
	/* A success resets the backoff. */
	provider_sent(&p, now, 0, &t[0]);
	provider_resp_init(&r, 200);
	provider_done(&p, now, &t[0], &r);
	provider_resp_init(&r, 429);
	provider_sent(&p, now, 0, &t[0]);
	provider_done(&p, now, &t[0], &r);
	CHECK(!provider_can_send(&p, now, 0, &w) && w == SEC, "back to 1 s: %llu",
	      (unsigned long long)w);
	/* A later explicit Retry-After counts, and the backoff restarts. */
	provider_sent(&p, now + 2 * SEC, 0, &t[0]);
	hdr(&r, "retry-after-ms", "200");
	provider_done(&p, now + 2 * SEC, &t[0], &r);
	CHECK(!provider_can_send(&p, now + 2 * SEC, 0, &w) && w == 200 * MS, "explicit: %llu",
	      (unsigned long long)w);
	CHECK_EQ(p.backoff, 0, "backoff restarts");
}

TEST(prov_budget_in_flight)
{
	struct provider p;
	struct provider_ticket t[10];
	struct provider_resp r;
	uint64_t w;
	int n = 0;

	provider_init(&p);
	/* 10 sent; the first's response says 3 remain (no limit: step model,
	 * reset in 10 s). Nine are in flight after it, so the budget is
	 * 3 - 9 < 0: nothing more until the reset. */
	for (int i = 0; i < 10; i++)
		provider_sent(&p, 0, 0, &t[i]);
	resp_req(&r, 200, NULL, "3", "10s");
	CHECK(provider_done(&p, 1 * MS, &t[0], &r) & PROVIDER_EV_LEARNED, "learned");
	CHECK(!provider_can_send(&p, 1 * MS, 0, &w) && w == 10 * SEC, "held to the reset: %llu",
	      (unsigned long long)w);
	CHECK_EQ(provider_remaining(&p, 1 * MS, PROV_REQUESTS), 0, "remaining shows 0");
	/* The last one back says 5 remain: nothing was sent after it. */
	resp_req(&r, 200, NULL, "5", "10s");
	provider_done(&p, 2 * MS, &t[9], &r);
	CHECK_EQ(provider_remaining(&p, 2 * MS, PROV_REQUESTS), 5, "the freshest report");
	/* An older request's report does not override it. */
	resp_req(&r, 200, NULL, "1", "10s");
	CHECK(!(provider_done(&p, 3 * MS, &t[5], &r) & PROVIDER_EV_LEARNED), "stale report");
	CHECK_EQ(provider_remaining(&p, 3 * MS, PROV_REQUESTS), 5, "unchanged");
	/* Exactly 5 more go. */
	while (n < 100 && provider_can_send(&p, 4 * MS, 0, &w)) {
		provider_sent(&p, 4 * MS, 0, &t[0]);
		n++;
	}
	CHECK_EQ(n, 5, "sent on a budget of 5");
	/* Past the reset, with no limit to refill: forgotten, open. */
	CHECK(provider_can_send(&p, 2 * MS + 10 * SEC, 0, &w), "open after the reset");
	CHECK_EQ(provider_remaining(&p, 2 * MS + 10 * SEC, PROV_REQUESTS), -1, "unknown again");
	CHECK_EQ(p.st.reports, 3, "three reports");
}

TEST(prov_budget_refill_from_limit)
{
	struct provider p;
	struct provider_ticket t;
	struct provider_resp r;
	uint64_t w, now, sent = 0;

	provider_init(&p);
	/* 600 a minute: 10/s. 590 left, 1 s to full: a refill of 10 per s. */
	provider_sent(&p, 0, 0, &t);
	resp_req(&r, 200, "600", "590", "1s");
	provider_done(&p, 0, &t, &r);
	CHECK_EQ(provider_remaining(&p, 0, PROV_REQUESTS), 590, "590");
	CHECK_EQ(provider_remaining(&p, 500 * MS, PROV_REQUESTS), 595, "half a second: +5");
	CHECK_EQ(provider_remaining(&p, 5 * SEC, PROV_REQUESTS), 600, "capped at the limit");
	/* Spend it all at t=1s, then the rate: one per 100 ms. */
	now = SEC;
	while (provider_can_send(&p, now, 0, &w) && sent < 10000) {
		provider_sent(&p, now, 0, &t);
		sent++;
	}
	CHECK_EQ(sent, 600, "the limit at once");
	CHECK(w > 99 * MS && w <= 100 * MS + 1, "then 100 ms: %llu", (unsigned long long)w);
	sent = 0;
	for (now = SEC; now < 61 * SEC; now += MS) {
		if (provider_can_send(&p, now, 0, &w)) {
			provider_sent(&p, now, 0, &t);
			sent++;
		}
	}
	CHECK(sent >= 599 && sent <= 601, "a minute at the learned rate: %llu",
	      (unsigned long long)sent);
	/* A fresh report (nothing after it) replaces the level, keeps the rate. */
	resp_req(&r, 200, "600", "600", "0s");
	provider_done(&p, now, &t, &r);
	CHECK_EQ(provider_remaining(&p, now, PROV_REQUESTS), 600, "full");
	CHECK(p.b[PROV_REQUESTS].rate > 0, "the rate kept");
}

TEST(prov_budget_tokens)
{
	struct provider p;
	struct provider_ticket t, t2;
	struct provider_resp r;
	uint64_t w;

	provider_init(&p);
	provider_sent(&p, 0, 1000, &t);
	provider_sent(&p, 0, 3000, &t2);   /* in flight after t */
	provider_resp_init(&r, 200);
	hdr(&r, "x-ratelimit-limit-tokens", "60000");
	hdr(&r, "x-ratelimit-remaining-tokens", "9000");
	hdr(&r, "x-ratelimit-reset-tokens", "51s");   /* 51000 / 51 s = 1000 / s */
	provider_done(&p, 0, &t, &r);
	CHECK_EQ(provider_remaining(&p, 0, PROV_TOKENS), 6000, "9000 - 3000 in flight");
	CHECK(provider_can_send(&p, 0, 6000, &w), "6000 fits");
	CHECK(!provider_can_send(&p, 0, 6500, &w), "6500 does not");
	CHECK(w > 499 * MS && w <= 500 * MS + 1, "500 tokens: 0.5 s: %llu", (unsigned long long)w);
	CHECK(provider_can_send(&p, 0, 0, &w), "a request without tokens is not held");
	CHECK_EQ(provider_remaining(&p, 0, PROV_REQUESTS), -1, "requests unknown");
	/* Bigger than the limit: passes once full. */
	CHECK(!provider_can_send(&p, 0, 100000, &w), "not yet");
	CHECK(w > 53 * SEC && w <= 54 * SEC, "54 s to full: %llu", (unsigned long long)w);
	CHECK(provider_can_send(&p, 54 * SEC + 1, 100000, &w), "full: passes");
	provider_sent(&p, 54 * SEC + 1, 100000, &t);
	CHECK_EQ(provider_remaining(&p, 54 * SEC + 1, PROV_TOKENS), 0, "a debt shows 0");
	CHECK(!provider_can_send(&p, 54 * SEC + 1, 1, &w), "and holds");
}

TEST(prov_reset_rollover)
{
	struct provider p;
	struct provider_ticket t;
	struct provider_resp r;
	uint64_t w;

	provider_init(&p);
	/* Remaining without a reset: held for the default, then forgotten. */
	provider_sent(&p, 0, 0, &t);
	resp_req(&r, 200, NULL, "0", NULL);
	provider_done(&p, 0, &t, &r);
	CHECK(!provider_can_send(&p, 0, 0, &w) && w == PROVIDER_RESET_DEFAULT_NS, "default: %llu",
	      (unsigned long long)w);
	CHECK(provider_can_send(&p, PROVIDER_RESET_DEFAULT_NS, 0, &w), "forgotten after");
	/* A garbage reset is the same as none; a garbage remaining is none. */
	provider_sent(&p, 2 * SEC, 0, &t);
	resp_req(&r, 200, NULL, "0", "whenever");
	provider_done(&p, 2 * SEC, &t, &r);
	CHECK(!provider_can_send(&p, 2 * SEC, 0, &w) && w == PROVIDER_RESET_DEFAULT_NS,
	      "garbage reset: %llu", (unsigned long long)w);
	provider_init(&p);
	provider_sent(&p, 0, 0, &t);
	resp_req(&r, 200, "0", "-1", "1s");
	provider_done(&p, 0, &t, &r);
	CHECK(provider_can_send(&p, 0, 0, &w), "garbage limit and remaining: no cap");
	CHECK_EQ(p.st.bad_headers, 2, "counted");
	/* Learned 0 of 60 with a reset of 6 s: 10 a second come back, and at
	 * the reset it is full. */
	provider_sent(&p, 0, 0, &t);
	resp_req(&r, 200, "60", "0", "6s");
	provider_done(&p, 0, &t, &r);
	CHECK(!provider_can_send(&p, 0, 0, &w) && w > 99 * MS && w <= 100 * MS + 1,
	      "first in 100 ms: %llu", (unsigned long long)w);
	CHECK_EQ(provider_remaining(&p, 6 * SEC, PROV_REQUESTS), 60, "full at the reset");
	CHECK_EQ(provider_remaining(&p, 600 * SEC, PROV_REQUESTS), 60, "and stays full");
	/* A remaining above the limit is the limit. */
	provider_sent(&p, 600 * SEC, 0, &t);
	resp_req(&r, 200, "60", "90", "0s");
	provider_done(&p, 600 * SEC, &t, &r);
	CHECK_EQ(provider_remaining(&p, 600 * SEC, PROV_REQUESTS), 60, "capped");
}

TEST(prov_error_without_head)
{
	struct provider p;
	struct provider_ticket t, t2;
	struct provider_resp r;

	provider_init(&p);
	provider_sent(&p, 0, 0, &t);
	provider_sent(&p, 0, 0, &t2);
	CHECK_EQ(provider_done(&p, 0, &t, NULL), 0, "no head: nothing learned");
	CHECK_EQ(p.inflight, 1, "but no longer in flight");
	/* Its unit stays counted: t2's report subtracts nothing for t. */
	resp_req(&r, 200, NULL, "4", "10s");
	provider_done(&p, 0, &t2, &r);
	CHECK_EQ(provider_remaining(&p, 0, PROV_REQUESTS), 4, "4");
	CHECK_EQ(p.inflight, 0, "none in flight");
	CHECK_EQ(p.st.sent, 2, "sent");
	CHECK_EQ(p.st.responses, 1, "one response");
}

TEST(prov_two_backends)
{
	struct provider a, b;
	struct provider *ps[3] = { &a, NULL, &b };
	struct provider_ticket t;
	struct provider_resp r;
	uint64_t at;
	int which;

	provider_init(&a);
	provider_init(&b);
	at = provider_earliest(ps, 3, 5 * SEC, 10, &which);
	CHECK(at == 5 * SEC && which == 0, "both open: the first, now");
	/* a cools 2 s; b is open. */
	provider_sent(&a, 5 * SEC, 10, &t);
	provider_resp_init(&r, 429);
	hdr(&r, "retry-after", "2");
	provider_done(&a, 5 * SEC, &t, &r);
	at = provider_earliest(ps, 3, 5 * SEC, 10, &which);
	CHECK(at == 5 * SEC && which == 2, "b now: %d %llu", which, (unsigned long long)at);
	/* b learns 0 tokens left of 6000, a minute to full (100/s): 10 tokens
	 * in 100 ms, before a's cooldown ends. */
	provider_sent(&b, 5 * SEC, 10, &t);
	provider_resp_init(&r, 200);
	hdr(&r, "x-ratelimit-limit-tokens", "6000");
	hdr(&r, "x-ratelimit-remaining-tokens", "0");
	hdr(&r, "x-ratelimit-reset-tokens", "1m0s");
	provider_done(&b, 5 * SEC, &t, &r);
	at = provider_earliest(ps, 3, 5 * SEC, 10, &which);
	CHECK(which == 2 && at > 5 * SEC + 99 * MS && at <= 5 * SEC + 100 * MS + 1,
	      "b in 100 ms: %d %llu", which, (unsigned long long)at);
	/* 500 tokens: b needs 5 s, a is open in 2 s. */
	at = provider_earliest(ps, 3, 5 * SEC, 500, &which);
	CHECK(which == 0 && at == 7 * SEC, "a at its cooldown's end: %d %llu", which,
	      (unsigned long long)at);
	/* The other backend's state is its own. */
	CHECK_EQ(provider_remaining(&a, 5 * SEC, PROV_TOKENS), -1, "a knows no tokens");
	CHECK_EQ(provider_cooldown_left(&b, 5 * SEC), 0, "b is not cooling");
	provider_held(&a);
	CHECK_EQ(a.st.held_back, 1, "held counted on a");
	CHECK_EQ(b.st.held_back, 0, "not on b");
	at = provider_earliest(ps, 0, 5 * SEC, 10, &which);
	CHECK(at == UINT64_MAX && which == -1, "no backends");
}

/* --- against a simulated provider ------------------------------------------------
 * The acceptance test of issue 12 in miniature, on the test clock: a
 * provider that enforces rpm and tpm as token buckets (as mock-llm's
 * --limit-* does) and reports them in its headers, 200 ms per answer and an
 * immediate 429 when over; clients offering three times what it allows;
 * every request waits until provider_can_send says yes. The provider's 429s
 * must stay near zero while its limit is used to within 5%. */

struct sim_provider {
	double level[PROV_KINDS], limit[PROV_KINDS], per_ns[PROV_KINDS];
	uint64_t at;
};

struct sim_flight {
	uint64_t at;                       /* the response arrives */
	struct provider_ticket t;
	struct provider_resp r;
	int used;
};

static void sim_refill(struct sim_provider *sp, uint64_t now)
{
	for (int k = 0; k < PROV_KINDS; k++) {
		sp->level[k] += sp->per_ns[k] * (double)(now - sp->at);
		if (sp->level[k] > sp->limit[k])
			sp->level[k] = sp->limit[k];
	}
	sp->at = now;
}

/* mock-llm's reset format, from ns rounded up to a millisecond. */
static void sim_duration(char *out, size_t n, double ns)
{
	unsigned long long ms = (unsigned long long)(ns / 1e6) + 1;

	if (ms < 1000)
		snprintf(out, n, "%llums", ms);
	else if (ms < 60000)
		snprintf(out, n, "%llu.%03llus", ms / 1000, ms % 1000);
	else
		snprintf(out, n, "%llum%llu.%03llus", ms / 60000, ms / 1000 % 60, ms % 1000);
}

/* The provider takes the request at now: a 200 or a 429, with headers. */
static void sim_answer(struct sim_provider *sp, uint64_t now, uint64_t cost,
		       struct provider_resp *r)
{
	static const char *const names[PROV_KINDS][3] = {
		{ "x-ratelimit-limit-requests", "x-ratelimit-remaining-requests",
		  "x-ratelimit-reset-requests" },
		{ "x-ratelimit-limit-tokens", "x-ratelimit-remaining-tokens",
		  "x-ratelimit-reset-tokens" },
	};
	double need[PROV_KINDS] = { 1, (double)cost }, wait = 0;
	char v[64];

	sim_refill(sp, now);
	if (need[1] > sp->limit[1])
		need[1] = sp->limit[1];
	for (int k = 0; k < PROV_KINDS; k++)
		if (sp->level[k] < need[k] && (need[k] - sp->level[k]) / sp->per_ns[k] > wait)
			wait = (need[k] - sp->level[k]) / sp->per_ns[k];
	provider_resp_init(r, wait > 0 ? 429 : 200);
	if (wait <= 0) {
		sp->level[0] -= 1;
		sp->level[1] -= (double)cost;
	} else {
		snprintf(v, sizeof(v), "%llu", (unsigned long long)(wait / 1e6) + 1);
		hdr(r, "retry-after-ms", v);
	}
	for (int k = 0; k < PROV_KINDS; k++) {
		snprintf(v, sizeof(v), "%llu", (unsigned long long)sp->limit[k]);
		hdr(r, names[k][0], v);
		snprintf(v, sizeof(v), "%llu",
			 (unsigned long long)(sp->level[k] > 0 ? sp->level[k] : 0));
		hdr(r, names[k][1], v);
		sim_duration(v, sizeof(v), (sp->limit[k] - sp->level[k]) / sp->per_ns[k]);
		hdr(r, names[k][2], v);
	}
}

/* Runs span_ns of load over nb backends (each request to the first one
 * ready) with one provider bucket behind them; returns the requests and
 * tokens served, the 429s, and the requests sent. (More than one backend on
 * one account is not asserted: each sees the others' spending only in its
 * reports, and uncoordinated senders at the full rate meet 429s.) */
static void sim_run(unsigned int nb, uint64_t rpm, uint64_t tpm, uint64_t span_ns,
		    uint64_t *served_r, uint64_t *served_t, uint64_t *n429, uint64_t *sent)
{
	static struct sim_flight fl[4096];
	struct sim_provider sp = {
		.level = { (double)rpm, (double)tpm }, .limit = { (double)rpm, (double)tpm },
		.per_ns = { (double)rpm / 60e9, (double)tpm / 60e9 },
	};
	static struct provider p[4];
	static unsigned int fl_b[4096];
	struct provider *ps[4] = { &p[0], &p[1], &p[2], &p[3] };
	uint64_t queue = 0, next_cost = 0, seed = 12345;

	for (unsigned int b = 0; b < 4; b++)
		provider_init(&p[b]);
	memset(fl, 0, sizeof(fl));
	*served_r = *served_t = *n429 = *sent = 0;
	for (uint64_t now = 0; now < span_ns; now += MS) {
		/* Offered: three times the request limit, arriving evenly. */
		if ((now / MS) % (60000 / (3 * rpm)) == 0)
			queue++;
		for (size_t i = 0; i < NELEM(fl); i++) {
			if (!fl[i].used || fl[i].at > now)
				continue;
			provider_done(&p[fl_b[i]], now, &fl[i].t, &fl[i].r);
			fl[i].used = 0;
		}
		while (queue) {
			size_t i;
			int b;

			if (!next_cost) {  /* 50..249 tokens, a fixed sequence */
				seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
				next_cost = 50 + (seed >> 33) % 200;
			}
			/* The backend ready first (the first of those ready now). */
			if (provider_earliest(ps, nb, now, next_cost, &b) > now)
				break;
			for (i = 0; i < NELEM(fl) && fl[i].used; i++)
				;
			if (i == NELEM(fl))
				break;
			provider_sent(&p[b], now, next_cost, &fl[i].t);
			fl_b[i] = (unsigned int)b;
			(*sent)++;
			/* It reaches the provider 2 ms later; the answer is back
			 * 200 ms after sending, a 429 at once. */
			sim_answer(&sp, now + 2 * MS, next_cost, &fl[i].r);
			fl[i].at = now + (fl[i].r.status == 429 ? 4 * MS : 200 * MS);
			fl[i].used = 1;
			if (fl[i].r.status == 429) {
				(*n429)++;
			} else {
				(*served_r)++;
				*served_t += next_cost;
				queue--;
				next_cost = 0;
			}
		}
	}
}

TEST(prov_sim_requests_bind)
{
	uint64_t r, t, n429, sent, max_r;

	/* 600 rpm binds (tokens: 150 a request on average, 90000/min room for 600) */
	sim_run(1, 600, 1000000, 120 * SEC, &r, &t, &n429, &sent);
	max_r = 600 + 600 * 120 / 60;
	CHECK(r <= max_r, "served %llu past the provider's %llu", (unsigned long long)r,
	      (unsigned long long)max_r);
	CHECK(r * 100 >= max_r * 95, "served %llu of %llu: under 95%%", (unsigned long long)r,
	      (unsigned long long)max_r);
	CHECK(n429 * 100 <= sent, "429s %llu of %llu sent: over 1%%", (unsigned long long)n429,
	      (unsigned long long)sent);
}

TEST(prov_sim_tokens_bind)
{
	uint64_t r, t, n429, sent, max_t;

	/* 60000 tpm binds: about 400 requests a minute of 150 tokens */
	sim_run(1, 6000, 60000, 120 * SEC, &r, &t, &n429, &sent);
	max_t = 60000 + 60000 * 120 / 60;
	CHECK(t <= max_t + 250, "served %llu tokens past the provider's %llu",
	      (unsigned long long)t, (unsigned long long)max_t);
	CHECK(t * 100 >= max_t * 95, "served %llu of %llu tokens: under 95%%",
	      (unsigned long long)t, (unsigned long long)max_t);
	CHECK(n429 * 100 <= sent, "429s %llu of %llu sent: over 1%%", (unsigned long long)n429,
	      (unsigned long long)sent);
}

/* Random bytes, and random mixes of the characters the formats use, into
 * every parser: no crash (the sanitizer build watches), and whatever is
 * accepted is within the bounds. */
TEST(prov_garbage_never_crashes)
{
	static const char alphabet[] = "0123456789.hmsunµ ,:-+eGMTSunNov";
	uint64_t seed = 99, v;
	unsigned int accepted = 0;
	char s[40];

	for (int i = 0; i < 20000; i++) {
		size_t n;
		struct provider_resp r;
		struct provider p;
		struct provider_ticket t;

		seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
		n = (seed >> 40) % sizeof(s);
		for (size_t j = 0; j < n; j++) {
			seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
			s[j] = i & 1 ? (char)(seed >> 56)
				     : alphabet[(seed >> 33) % (sizeof(alphabet) - 1)];
		}
		if (!provider_parse_duration(s, n, &v)) {
			accepted++;
			CHECK(v <= PROVIDER_WAIT_MAX_NS, "'%.*s': %llu", (int)n, s,
			      (unsigned long long)v);
		}
		if (!provider_parse_retry_after(s, n, WALL, &v))
			CHECK(v <= PROVIDER_WAIT_MAX_NS, "'%.*s': %llu", (int)n, s,
			      (unsigned long long)v);
		if (!provider_parse_count(s, n, &v))
			CHECK(v <= PROVIDER_COUNT_MAX, "'%.*s': %llu", (int)n, s,
			      (unsigned long long)v);
		/* Through a whole response: never a cap of nothing for ever. */
		provider_init(&p);
		provider_sent(&p, 0, 10, &t);
		provider_resp_init(&r, i % 3 ? 200 : 429);
		provider_resp_header(&r, "x-ratelimit-limit-requests", 26, s, n, WALL);
		provider_resp_header(&r, "x-ratelimit-remaining-requests", 30, s, n, WALL);
		provider_resp_header(&r, "x-ratelimit-reset-requests", 26, s, n, WALL);
		provider_resp_header(&r, "retry-after", 11, s, n, WALL);
		provider_done(&p, 0, &t, &r);
		CHECK(provider_ready_at(&p, 0, 10) <= PROVIDER_WAIT_MAX_NS + 1,
		      "'%.*s' holds the backend for ever", (int)n, s);
	}
	CHECK(accepted > 100, "the mixes hit the good forms too: %u", accepted);
}
