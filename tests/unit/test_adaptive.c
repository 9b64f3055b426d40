// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#define TEST_GROUP "bpf" /* loads BPF programs or creates maps: needs root (harness.h) */
/*
 * The adaptive controller (user/lib/adaptive.c): its config statement, the
 * window it reads from sluice_signals, one step of the formula on fixed
 * inputs, the guards (empty windows, errors, baseline drift, the floor), a
 * closed loop against a modelled backend (a FIFO queue in front of C
 * workers), and the rule it writes, read back from the unit fixture's maps.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/bpf.h>
#include "adaptive.h"
#include "fixture.h"
#include "harness.h"
#include "parse.h"
#include "rate.h"


static double absd(double x) { return x < 0 ? -x : x; }

static int parse_line(const char *line, struct adaptive_config *c, struct errbuf *e)
{
	char buf[256], *w[32];
	int n;

	snprintf(buf, sizeof(buf), "%s", line);
	n = split_words(buf, w, 32);
	return adaptive_parse(n, w, c, e);
}

/* ------------------------------------------------------------------------
 * Config
 */

TEST(adaptive_parse_defaults)
{
	struct adaptive_config c;
	struct errbuf e = {};
	char d[256];

	if (!CHECK(!parse_line("port 8080 limit conn-rate min 10 max 1k", &c, &e), "%s", e.msg))
		return;
	CHECK_EQ(c.port, 8080, "port");
	CHECK_EQ(c.kind, ADAPTIVE_CONN_RATE, "kind");
	CHECK_EQ(c.min, 10, "min");
	CHECK_EQ(c.max, 1000, "max, with a k suffix");
	CHECK_EQ(c.mode, ADAPTIVE_GRADIENT, "no target: gradient mode");
	CHECK(c.error_ratio == 0.05, "default error-ratio 0.05, got %g", c.error_ratio);
	CHECK_EQ(c.tick_ms, 1000, "default tick");
	CHECK_EQ(c.shadow, 0, "not shadow");
	CHECK_EQ(c.rule[0], 0, "rule found by port");

	if (!CHECK(!parse_line("port 53 limit pps min 1 max 1 target-latency 2.5 error-ratio 0.2 "
			       "tick 250 shadow rule dns-1", &c, &e), "%s", e.msg))
		return;
	CHECK_EQ(c.kind, ADAPTIVE_PPS, "pps");
	CHECK_EQ(c.mode, ADAPTIVE_TARGET, "target mode");
	CHECK_EQ(c.target_us, 2500, "target in us");
	CHECK(c.error_ratio == 0.2, "error-ratio %g", c.error_ratio);
	CHECK_EQ(c.tick_ms, 250, "tick");
	CHECK_EQ(c.shadow, 1, "shadow");
	CHECK(!strcmp(c.rule, "dns-1"), "rule '%s'", c.rule);
	adaptive_describe(&c, d, sizeof(d));
	CHECK(!strcmp(d, "port 53 limit pps min 1 max 1 target-latency 2.5 error-ratio 0.2 "
		      "tick 250 shadow rule dns-1"), "describe: '%s'", d);
}

TEST(adaptive_parse_errors)
{
	static const struct {
		const char *line, *want;
	} rows[] = {
		{ "", "'port' is required" },
		{ "port 8080 min 1 max 2", "'limit' is required" },
		{ "port 8080 limit pps max 2", "'min' and 'max' are required" },
		{ "port 0 limit pps min 1 max 2", "bad port '0'" },
		{ "port 65536 limit pps min 1 max 2", "bad port '65536'" },
		{ "port http limit pps min 1 max 2", "bad port 'http'" },
		{ "port 80 limit bps min 1 max 2", "bad limit 'bps'" },
		{ "port 80 limit pps min 5 max 2", "min 5 is above max 2" },
		{ "port 80 limit pps min 0 max 2", "bad min '0'" },
		{ "port 80 limit conn-rate min 1 max 200m", "above the largest conn-rate" },
		{ "port 80 limit pps min 1 max 2 target-latency 0", "bad target-latency '0'" },
		{ "port 80 limit pps min 1 max 2 target-latency 5ms", "bad target-latency '5ms'" },
		{ "port 80 limit pps min 1 max 2 target-latency 5 gradient", "exclude each other" },
		{ "port 80 limit pps min 1 max 2 error-ratio 0", "bad error-ratio '0'" },
		{ "port 80 limit pps min 1 max 2 error-ratio 1.5", "bad error-ratio '1.5'" },
		{ "port 80 limit pps min 1 max 2 error-ratio 5%", "bad error-ratio '5%'" },
		{ "port 80 limit pps min 1 max 2 tick 10", "bad tick '10'" },
		{ "port 80 limit pps min 1 max 2 tick", "'tick' needs a value" },
		{ "port 80 limit pps min 1 max 2 rule a/b", "bad rule 'a/b'" },
		{ "port 80 limit pps min 1 max 2 port 81", "'port' given twice" },
		{ "port 80 limit pps min 1 max 2 shadoww", "unknown word 'shadoww'" },
	};
	struct adaptive_config c;
	unsigned int i;

	for (i = 0; i < NELEM(rows); i++) {
		struct errbuf e = {};
		int err = parse_line(rows[i].line, &c, &e);

		CHECK(err < 0 && strstr(e.msg, rows[i].want) && !strncmp(e.msg, "adaptive", 8),
		      "'%s': got %d '%s', want '%s'", rows[i].line, err, e.msg, rows[i].want);
	}
}

/* ------------------------------------------------------------------------
 * The window
 */

static void record(struct sluice_signals *s, int h, __u64 us, __u64 times)
{
	s->hist[h].count += times;
	s->hist[h].sum_us += us * times;
	s->hist[h].bucket[sluice_hist_bucket(us)] += times;
}

static struct adaptive_config cfg(enum adaptive_mode mode, __u64 min, __u64 max)
{
	struct adaptive_config c = {
		.port = 8080, .kind = ADAPTIVE_CONN_RATE, .mode = mode, .min = min, .max = max,
		.target_us = 100000, .error_ratio = ADAPTIVE_DEFAULT_ERROR_RATIO,
		.tick_ms = 1000,
	};
	return c;
}

TEST(adaptive_window_reads_the_difference)
{
	struct adaptive_config c = cfg(ADAPTIVE_GRADIENT, 1, 100);
	struct sluice_signals *s = calloc(1, sizeof(*s));
	struct adaptive *a = malloc(sizeof(*a));
	struct adaptive_input in;

	if (!CHECK(s && a, "alloc"))
		goto out;
	adaptive_init(a, &c);
	record(s, SLUICE_HIST_RESPONSE, 1000, 50); /* history before the first tick */
	s->counter[SLUICE_SIG_REQUESTS] = s->counter[SLUICE_SIG_RESPONSES] = 50;
	adaptive_window(a, s, &in);
	CHECK(!in.have_latency && in.latency_us < 0 && !in.have_errors,
	      "the first snapshot only opens the window");

	adaptive_window(a, s, &in);
	CHECK(!in.have_latency && in.latency_us < 0 && in.samples == 0 && !in.have_errors &&
	      in.error_ratio < 0, "nothing new: no information (not 0, not infinite)");

	record(s, SLUICE_HIST_RESPONSE, 40000, 9);
	s->counter[SLUICE_SIG_REQUESTS] += 10;
	s->counter[SLUICE_SIG_RESPONSES] += 9;
	s->counter[SLUICE_SIG_HTTP_5XX] += 1;
	s->counter[SLUICE_SIG_SERVER_RST] += 1;
	adaptive_window(a, s, &in);
	CHECK(in.have_latency && in.source == SLUICE_HIST_RESPONSE && in.samples == 9 &&
	      absd(in.latency_us - 40000) <= 40000 * 0.0625,
	      "p50 of this window only (40 ms), not of history (1 ms): %g us", in.latency_us);
	CHECK(in.requests == 10 && in.responses == 9 && in.errors == 2 && in.have_errors &&
	      absd(in.error_ratio - 0.2) < 1e-9, "errors 2 of max(10 requests, 10 outcomes): %g",
	      in.error_ratio);

	/* no responses: connect latency stands in */
	record(s, SLUICE_HIST_CONNECT, 300, 4);
	s->counter[SLUICE_SIG_SYN_TIMEOUT] += 4;
	adaptive_window(a, s, &in);
	CHECK(in.have_latency && in.source == SLUICE_HIST_CONNECT && in.samples == 4 &&
	      absd(in.latency_us - 300) <= 300 * 0.0625, "connect latency fallback: %g us",
	      in.latency_us);
	CHECK(in.errors == 4 && absd(in.error_ratio - 1) < 1e-9, "SYN timeouts alone: ratio %g",
	      in.error_ratio);

	/* entry evicted and recreated smaller: its content is the window */
	memset(s, 0, sizeof(*s));
	record(s, SLUICE_HIST_RESPONSE, 2000, 3);
	s->counter[SLUICE_SIG_RESPONSES] = 3;
	adaptive_window(a, s, &in);
	CHECK(in.have_latency && in.samples == 3 && in.responses == 3, "recreated entry: %llu",
	      (unsigned long long)in.samples);
	adaptive_window(a, NULL, &in);
	CHECK(!in.have_latency && !a->have_prev, "no entry: no information, window restarts");
out:
	free(s);
	free(a);
}

/* ------------------------------------------------------------------------
 * The formula
 */

static struct adaptive_input win(double lat_us, __u64 requests, __u64 responses, __u64 errors)
{
	struct adaptive_input in = {
		.have_latency = lat_us >= 0, .source = SLUICE_HIST_RESPONSE, .latency_us = lat_us,
		.samples = responses, .requests = requests, .responses = responses,
		.connections = requests, /* one request per connection */
		.errors = errors, .have_errors = requests || responses,
		.error_ratio = -1,
	};
	__u64 d = requests > responses ? requests : responses;

	if (d)
		in.error_ratio = (double)errors / (double)d;
	return in;
}

TEST(adaptive_formula_fixed_inputs)
{
	struct adaptive_config c = cfg(ADAPTIVE_GRADIENT, 10, 1000);
	struct adaptive *a = malloc(sizeof(*a));
	struct adaptive_decision why;
	struct adaptive_input in;
	__u64 l;

	if (!CHECK(a, "alloc"))
		return;
	adaptive_init(a, &c);
	CHECK_EQ(a->limit, 1000, "starts at max");

	in = win(50000, 100, 100, 0); /* the baseline: 50 ms, ref = 75 ms */
	l = adaptive_tick(a, &in, &why);
	CHECK(l == 1000 && a->baseline_us == 50000, "at max, baseline %g", a->baseline_us);

	/* Over: 150 ms; the backend answered 200 of 250 requests: capacity is
	 * 250 * 0.8 = 200, the excess drained over 0.5 s: 1 - (150 - 75) / 500
	 * = 0.85. */
	a->limit = 250;
	a->last.new_limit = 250;
	in = win(150000, 250, 200, 0);
	l = adaptive_tick(a, &in, &why);
	CHECK(l == 170 && why.reason == ADAPTIVE_GRADIENT_STEP && why.old_limit == 250 &&
	      why.new_limit == 170 && why.changed && why.latency_us == 150000 &&
	      why.baseline_us == 50000, "200 * 0.85 = 170: got %llu (%s, %llu -> %llu)",
	      (unsigned long long)l, adaptive_reason_name(why.reason),
	      (unsigned long long)why.old_limit, (unsigned long long)why.new_limit);
	CHECK(absd(a->capacity - 200) < 1e-6, "capacity remembered: %g", a->capacity);

	/* Far over: the cut is bounded at MIN_CUT of the limit per tick,
	 * even when the throughput says less (1000 * 0.1). */
	a->limit = 1000;
	in = win(5e6, 1000, 100, 0);
	l = adaptive_tick(a, &in, &why);
	CHECK_EQ(l, 250, "1000 * 0.25");
	CHECK(absd(a->capacity - 100) < 1e-6, "capacity re-measured: %g", a->capacity);

	/* Under, far below the capacity: straight back to 85% of it. */
	a->limit = 40;
	in = win(50000, 40, 40, 0);
	adaptive_tick(a, &in, &why);
	CHECK(absd(a->limit - 85) < 1e-6, "back to 0.85 * 100: %g", a->limit);

	/* Under, no capacity known: ref / latency = 1.5, bounded at +15%. */
	a->capacity = 0;
	a->limit = 40;
	in = win(50000, 40, 40, 0);
	adaptive_tick(a, &in, &why);
	CHECK(absd(a->limit - 40 * 1.15) < 1e-6, "40 * 1.15: %g", a->limit);
	a->capacity = 200;

	/* Under, near the capacity (200): +2% only... */
	a->limit = 172;
	in = win(50000, 172, 172, 0);
	adaptive_tick(a, &in, &why);
	CHECK(absd(a->limit - 172 * 1.02) < 1e-6, "172 * 1.02 near capacity: %g", a->limit);
	/* ... and no higher than 10% under it */
	a->limit = 178;
	in = win(50000, 178, 178, 0);
	adaptive_tick(a, &in, &why);
	CHECK(absd(a->limit - 180) < 1e-6, "178 * 1.02 held at 0.9 * 200: %g", a->limit);

	/* Just under ref: the raise is the gradient, 75 / 70 - 1 = 7%. */
	a->capacity = 0;
	a->limit = 100;
	in = win(70000, 100, 100, 0);
	adaptive_tick(a, &in, &why);
	CHECK(absd(a->limit - 100 * 75.0 / 70.0) < 1e-6, "100 * 75/70: %g", a->limit);

	/* Target mode: ref is the target itself (100 ms). */
	c = cfg(ADAPTIVE_TARGET, 10, 1000);
	adaptive_init(a, &c);
	in = win(120000, 1000, 500, 0); /* capacity 500, 1 - 20/500 */
	l = adaptive_tick(a, &in, &why);
	CHECK(l == 480 && why.baseline_us == 100000, "500 * (1 - 0.02/0.5) = 480: %llu",
	      (unsigned long long)l);
	free(a);
}

TEST(adaptive_empty_windows_hold)
{
	struct adaptive_config c = cfg(ADAPTIVE_GRADIENT, 10, 1000);
	struct adaptive *a = malloc(sizeof(*a));
	struct adaptive_decision why;
	struct adaptive_input in;
	int i;

	if (!CHECK(a, "alloc"))
		return;
	adaptive_init(a, &c);
	in = win(50000, 100, 100, 0);
	adaptive_tick(a, &in, NULL);
	a->limit = 300;
	a->last.new_limit = 300;
	for (i = 0; i < 200; i++) { /* longer than the baseline window */
		in = win(-1, 0, 0, 0);
		adaptive_tick(a, &in, &why);
	}
	CHECK(a->limit == 300 && why.reason == ADAPTIVE_HOLD && !why.changed &&
	      why.latency_us < 0 && why.error_ratio < 0, "held at 300: %g (%s)", a->limit,
	      adaptive_reason_name(why.reason));
	CHECK(a->baseline_us == 50000 && a->probe_left == 0 && a->probes == 0,
	      "baseline untouched, no probe from silence: %g", a->baseline_us);
	CHECK_EQ(a->empty_windows, 200, "counted");
	/* Requests sent, nothing answered yet: still no latency information. */
	in = win(-1, 50, 0, 0);
	adaptive_tick(a, &in, &why);
	CHECK(a->limit == 300 && why.reason == ADAPTIVE_HOLD, "requests without answers hold");
	free(a);
}

TEST(adaptive_errors_cut_and_recover)
{
	struct adaptive_config c = cfg(ADAPTIVE_GRADIENT, 10, 1000);
	struct adaptive *a = malloc(sizeof(*a));
	struct adaptive_decision why;
	struct adaptive_input in;
	__u64 l = 0;
	int i;

	if (!CHECK(a, "alloc"))
		return;
	adaptive_init(a, &c);
	in = win(50000, 100, 100, 0);
	adaptive_tick(a, &in, NULL);

	/* 4% errors: under the 5% threshold */
	in = win(50000, 100, 100, 4);
	adaptive_tick(a, &in, &why);
	CHECK(a->limit == 1000 && why.reason != ADAPTIVE_ERRORS, "4%% does not cut");
	/* 2 errors of 2: too few to act on */
	in = win(50000, 2, 2, 2);
	adaptive_tick(a, &in, &why);
	CHECK(a->limit == 1000, "2 errors are noise");

	/* 503s: fast answers, half of them errors; latency alone would raise */
	for (i = 0; i < 3; i++) {
		in = win(1000, 100, 100, 50);
		l = adaptive_tick(a, &in, &why);
	}
	CHECK(l == 343 && why.reason == ADAPTIVE_ERRORS && absd(why.error_ratio - 0.5) < 1e-9,
	      "1000 * 0.7^3 = 343: %llu (%s)", (unsigned long long)l,
	      adaptive_reason_name(why.reason));
	CHECK(a->baseline_us == 50000, "error windows never set the baseline (1 ms 503s): %g",
	      a->baseline_us);
	CHECK_EQ(a->error_cuts, 3, "counted");
	/* errors stop: back to max by the bounded raise (+15% per tick) */
	for (i = 0; i < 30 && a->limit < 1000; i++) {
		in = win(50000, 100, 100, 0);
		l = adaptive_tick(a, &in, &why);
	}
	CHECK(l == 1000 && i <= 8, "recovered to max in %d ticks", i);
	/* errors without any latency (SYN timeouts): still a cut */
	in = win(-1, 0, 0, 0);
	in.errors = 20;
	in.have_errors = 1;
	in.error_ratio = 1;
	l = adaptive_tick(a, &in, &why);
	CHECK(l == 700 && why.reason == ADAPTIVE_ERRORS, "cut without latency: %llu",
	      (unsigned long long)l);
	free(a);
}

TEST(adaptive_baseline_drift_guard)
{
	struct adaptive_config c = cfg(ADAPTIVE_GRADIENT, 10, 1000);
	struct adaptive *a = malloc(sizeof(*a));
	struct adaptive_decision why;
	struct adaptive_input in;
	__u32 i, window = ADAPTIVE_BASELINE_WINDOW_S;

	if (!CHECK(a, "alloc"))
		return;
	adaptive_init(a, &c);
	in = win(50000, 100, 100, 0);
	adaptive_tick(a, &in, NULL);
	a->limit = 400;

	/* Sustained load at 70 ms (within tolerance, so the limit holds or
	 * rises slowly): an averaging baseline would creep up towards 70 and
	 * let latency creep with it. The min baseline stays. */
	for (i = 0; i + 1 < window; i++) {
		in = win(70000, 400, 400, 0);
		adaptive_tick(a, &in, &why);
		if (a->baseline_us != 50000)
			break;
	}
	CHECK(a->baseline_us == 50000 && why.reason == ADAPTIVE_GRADIENT_STEP,
	      "baseline still 50 ms after %u loaded windows: %g", i, a->baseline_us);
	a->limit = 400;
	/* A whole window unconfirmed: re-probe at half the limit for two
	 * ticks, then the probe's p50 is the baseline and the limit returns. */
	in = win(70000, 400, 400, 0);
	adaptive_tick(a, &in, &why);
	CHECK(why.reason == ADAPTIVE_PROBE && a->limit == 200 && a->probes == 1,
	      "probe at half: %g (%s)", a->limit, adaptive_reason_name(why.reason));
	in = win(58000, 200, 200, 0);
	adaptive_tick(a, &in, &why);
	CHECK(why.reason == ADAPTIVE_PROBE && a->limit == 200, "probe draining");
	in = win(52000, 200, 200, 0);
	adaptive_tick(a, &in, &why);
	CHECK(why.reason == ADAPTIVE_PROBE && a->limit == 400 && a->baseline_us == 52000,
	      "baseline re-measured (52 ms), limit back: %g %g", a->limit, a->baseline_us);

	/* A faster window lowers the baseline at once. */
	in = win(30000, 400, 400, 0);
	adaptive_tick(a, &in, &why);
	CHECK(a->baseline_us == 30000, "faster baseline: %g", a->baseline_us);

	/* The floor: the backend became slower for good (60 ms against a
	 * 30 ms baseline, ref 45): the limit falls to min, and leaves it
	 * once a probe has re-measured the baseline. */
	for (i = 0; i < 3 * window && !(a->probes == 2 && !a->probe_left); i++) {
		in = win(60000, (__u64)a->limit, (__u64)a->limit, 0);
		adaptive_tick(a, &in, &why);
	}
	CHECK(a->baseline_us == 60000 && i <= window + 3, "slower baseline adopted after %u ticks: %g",
	      i, a->baseline_us);
	for (i = 0; i < 60 && a->limit < 1000; i++) {
		in = win(60000, (__u64)a->limit, (__u64)a->limit, 0);
		adaptive_tick(a, &in, &why);
	}
	CHECK(a->limit == 1000, "left the floor: %g after %u ticks", a->limit, i);
	free(a);
}

/* ------------------------------------------------------------------------
 * Closed loop: a backend of C workers, each request served in s0, excess
 * requests waiting in a FIFO queue (tests/adaptive/testbackend.py's default model),
 * with offered load far above its capacity C / s0. Time in microseconds,
 * stepped by 1 ms; the admitted rate is the limit (GCRA-smooth).
 */

#define SIM_C 10
#define SIM_S0_US 50000ULL            /* capacity 200 requests/s */
#define SIM_CAP 200.0
#define SIM_SECS 90
#define SIM_OVER_START 5
#define SIM_OVER_END 50

struct sim {
	__u64 free_at[SIM_C];
	__u64 *finish, *lat;   /* FIFO of requests in the backend */
	size_t head, tail, size;
	double credit;
	struct sluice_signals *sig;
	struct adaptive *a;
	double limit[SIM_SECS + 1], p50[SIM_SECS + 1], admitted[SIM_SECS + 1];
};

static int sim_open(struct sim *s, const struct adaptive_config *c)
{
	memset(s, 0, sizeof(*s));
	s->size = 1 << 20;
	s->finish = calloc(s->size, sizeof(__u64));
	s->lat = calloc(s->size, sizeof(__u64));
	s->sig = calloc(1, sizeof(*s->sig));
	s->a = malloc(sizeof(*s->a));
	if (!s->finish || !s->lat || !s->sig || !s->a)
		return -ENOMEM;
	adaptive_init(s->a, c);
	return 0;
}

static void sim_close(struct sim *s)
{
	free(s->finish);
	free(s->lat);
	free(s->sig);
	free(s->a);
}

/* Runs SIM_SECS seconds; offered(t) requests/s, failing(t): answer 503 at
 * once. The controller ticks once a second on the signals so far. */
static void sim_run(struct sim *s, double (*offered)(int sec), int (*failing)(int sec))
{
	struct adaptive_input in;
	__u64 now = 0;
	int sec, ms;

	adaptive_window(s->a, s->sig, &in); /* opens the first window */
	for (sec = 0; sec < SIM_SECS; sec++) {
		double adm = 0;

		for (ms = 0; ms < 1000; ms++, now += 1000) {
			double rate = offered(sec) < s->a->limit ? offered(sec) : s->a->limit;

			s->credit += rate / 1000.0;
			while (s->credit >= 1) {
				s->credit -= 1;
				adm++;
				s->sig->counter[SLUICE_SIG_CONNECTIONS]++; /* one request each */
				s->sig->counter[SLUICE_SIG_REQUESTS]++;
				if (failing(sec)) {
					s->sig->counter[SLUICE_SIG_RESPONSES]++;
					s->sig->counter[SLUICE_SIG_HTTP_5XX]++;
					record(s->sig, SLUICE_HIST_RESPONSE, 1000, 1);
					continue;
				}
				/* FIFO: the earliest free worker takes it */
				{
					int w, best = 0;
					__u64 start;

					for (w = 1; w < SIM_C; w++)
						if (s->free_at[w] < s->free_at[best])
							best = w;
					start = s->free_at[best] > now ? s->free_at[best] : now;
					s->free_at[best] = start + SIM_S0_US;
					s->finish[s->tail % s->size] = start + SIM_S0_US;
					s->lat[s->tail % s->size] = start + SIM_S0_US - now;
					s->tail++;
				}
			}
			while (s->head < s->tail && s->finish[s->head % s->size] <= now) {
				s->sig->counter[SLUICE_SIG_RESPONSES]++;
				s->sig->counter[SLUICE_SIG_HTTP_2XX]++;
				record(s->sig, SLUICE_HIST_RESPONSE, s->lat[s->head % s->size], 1);
				s->head++;
			}
		}
		adaptive_window(s->a, s->sig, &in);
		adaptive_tick(s->a, &in, NULL);
		s->admitted[sec] = adm;
		s->p50[sec] = in.have_latency ? in.latency_us : -1;
		s->limit[sec + 1] = s->a->limit;
	}
}

static double overload(int sec)
{
	return sec >= SIM_OVER_START && sec < SIM_OVER_END ? 3 * SIM_CAP : SIM_CAP / 2;
}

static int never(int sec)
{
	(void)sec;
	return 0;
}

static void sim_print(const struct sim *s, const char *name)
{
	int i;

	if (!getenv("ADAPTIVE_SIM"))
		return;
	for (i = 0; i < SIM_SECS; i++)
		fprintf(stderr, "%s %d limit %.1f admitted %.0f p50_ms %.1f\n", name, i + 1,
			s->limit[i + 1], s->admitted[i], s->p50[i] / 1000.0);
}

/* Settles within 10 s of the overload's start, holds latency, oscillates by
 * no more than 20% around its mean, climbs back to max within 30 s. */
static void sim_check(struct sim *s, double ref_us, const char *name)
{
	int settle = SIM_OVER_START + 10, i, over = 0, back = -1;
	double sum = 0, lo = 1e18, hi = 0, mean, lsum = 0, lmax = 0;

	for (i = settle; i < SIM_OVER_END; i++) {
		double l = s->limit[i + 1];

		sum += l;
		lsum += s->p50[i];
		lmax = s->p50[i] > lmax ? s->p50[i] : lmax;
		lo = l < lo ? l : lo;
		hi = l > hi ? l : hi;
		if (s->p50[i] > ref_us)
			over++;
	}
	mean = sum / (SIM_OVER_END - settle);
	lsum /= SIM_OVER_END - settle;
	CHECK(hi <= mean * 1.2 && lo >= mean * 0.8,
	      "%s: settled limit %.1f..%.1f around %.1f (capacity %.0f): within 20%%", name, lo, hi,
	      mean, SIM_CAP);
	CHECK(mean >= SIM_CAP * 0.8 && mean <= SIM_CAP * 1.2, "%s: settles near capacity: %.1f",
	      name, mean);
	CHECK(lsum <= ref_us && over * 3 <= SIM_OVER_END - settle,
	      "%s: p50 held under %.0f ms: mean %.1f ms, %d of %d windows over", name,
	      ref_us / 1000, lsum / 1000, over, SIM_OVER_END - settle);
	for (i = SIM_OVER_END; i < SIM_SECS; i++)
		if (s->limit[i + 1] >= (double)s->a->cfg.max) {
			back = i + 1 - SIM_OVER_END;
			break;
		}
	CHECK(back >= 0 && back <= 30, "%s: back at max %d s after the overload", name, back);
	if (getenv("ADAPTIVE_SIM"))
		fprintf(stderr, "%s: limit %.1f..%.1f mean %.1f, p50 mean %.1f max %.1f ms, %d of "
			"%d windows over ref, back at max after %d s\n", name, lo, hi, mean,
			lsum / 1000, lmax / 1000, over, SIM_OVER_END - settle, back);
}

TEST(adaptive_closed_loop_gradient)
{
	struct adaptive_config c = cfg(ADAPTIVE_GRADIENT, 10, 1000);
	struct sim *s = malloc(sizeof(*s));

	if (!CHECK(s && !sim_open(s, &c), "alloc"))
		return;
	sim_run(s, overload, never);
	sim_print(s, "gradient");
	CHECK(absd(s->a->baseline_us - SIM_S0_US) <= SIM_S0_US * 0.07, "baseline ~50 ms: %g",
	      s->a->baseline_us);
	sim_check(s, SIM_S0_US * ADAPTIVE_TOLERANCE, "gradient");
	sim_close(s);
	free(s);
}

TEST(adaptive_closed_loop_target)
{
	struct adaptive_config c = cfg(ADAPTIVE_TARGET, 10, 1000);
	struct sim *s = malloc(sizeof(*s));

	if (!CHECK(s && !sim_open(s, &c), "alloc"))
		return;
	sim_run(s, overload, never);
	sim_print(s, "target");
	sim_check(s, (double)c.target_us, "target");
	sim_close(s);
	free(s);
}

static double steady(int sec)
{
	(void)sec;
	return SIM_CAP / 2;
}

static int fail_phase(int sec)
{
	return sec >= 10 && sec < 20;
}

TEST(adaptive_closed_loop_5xx)
{
	struct adaptive_config c = cfg(ADAPTIVE_GRADIENT, 10, 1000);
	struct sim *s = malloc(sizeof(*s));
	double low = 1e18;
	int i, back = -1;

	if (!CHECK(s && !sim_open(s, &c), "alloc"))
		return;
	sim_run(s, steady, fail_phase);
	sim_print(s, "5xx");
	CHECK(s->limit[10] == 1000, "at max before the errors: %g", s->limit[10]);
	for (i = 10; i <= 20; i++)
		low = s->limit[i] < low ? s->limit[i] : low;
	CHECK(low <= 50, "the 503s drive the limit down: %g", low);
	for (i = 20; i < SIM_SECS; i++)
		if (s->limit[i + 1] >= 1000) {
			back = i + 1 - 20;
			break;
		}
	CHECK(back >= 0 && back <= 30, "back at max %d s after the errors stop", back);
	CHECK(absd(s->a->baseline_us - SIM_S0_US) <= SIM_S0_US * 0.07,
	      "the fast 503s never became the baseline: %g", s->a->baseline_us);
	sim_close(s);
	free(s);
}

/* ------------------------------------------------------------------------
 * The rule it writes, and the window it reads, on the fixture's maps.
 */

static int rule_at(struct fx *f, int slot, struct sluice_rule *r)
{
	__u32 k = (__u32)slot;

	return bpf_map_lookup_elem(f->m.rules, &k, r);
}

TEST(adaptive_apply_rewrites_the_rule)
{
	struct adaptive_config c = cfg(ADAPTIVE_GRADIENT, 10, 1000);
	struct adaptive *a = malloc(sizeof(*a));
	struct sluice_rule r, before;
	struct errbuf e = {};
	struct fx f;
	int slot, other, pslot;

	if (!CHECK(a, "alloc") || fx_open(&f, 0)) {
		free(a);
		return;
	}
	adaptive_init(a, &c);
	CHECK_EQ(adaptive_bind(&f.m, a, &e), -ENOENT, "no rule yet");
	CHECK(strstr(e.msg, "no rule with dport 8080 and a conn-rate limit") != NULL, "%s", e.msg);

	slot = fx_cmd(&f, "rule add name web dport 8080 proto tcp conn-rate 400 conn-burst 100 key rule");
	fx_cmd(&f, "rule add name wide dport 8000-8100 conn-rate 5");
	fx_cmd(&f, "rule add name pkts dport 8080 pps 10");
	if (!CHECK(slot >= 0 && !adaptive_bind(&f.m, a, &e), "bind: %s", e.msg))
		goto out;
	CHECK(a->slot == (__u32)slot && absd(a->burst_secs - 0.25) < 1e-9,
	      "the exact-port conn-rate rule, burst 0.25 s: slot %u %g", a->slot, a->burst_secs);
	rule_at(&f, slot, &before);

	CHECK_EQ(adaptive_apply(&f.m, a, 40), 0, "apply 40");
	rule_at(&f, slot, &r);
	CHECK(r.conn_rate == 40 && r.conn_burst == 10 &&
	      r.conn_interval_fp == rate_interval_fp(40) &&
	      r.conn_tolerance_ns == rate_tolerance_ns(rate_interval_fp(40), 10) &&
	      r.ban_strikes == 10, "conn-rate 40 burst 10 compiled: %llu %llu %llu %llu",
	      (unsigned long long)r.conn_rate, (unsigned long long)r.conn_burst,
	      (unsigned long long)r.conn_interval_fp, (unsigned long long)r.conn_tolerance_ns);
	CHECK(r.id == before.id && r.flags == before.flags && r.dport_lo == 8080 &&
	      !strcmp(r.name, "web"), "the rest of the rule is untouched");

	/* shadow never writes */
	a->cfg.shadow = 1;
	CHECK_EQ(adaptive_apply(&f.m, a, 300), 0, "shadow apply");
	rule_at(&f, slot, &r);
	CHECK_EQ(r.conn_rate, 40, "shadow: still 40");
	a->cfg.shadow = 0;

	/* a second exact-port conn-rate rule: ambiguous unless named */
	other = fx_cmd(&f, "rule add name web2 dport 8080 conn-rate 50");
	CHECK_EQ(adaptive_bind(&f.m, a, &e), -ENOTUNIQ, "two rules on 8080");
	CHECK(strstr(e.msg, "name one with 'rule NAME'") != NULL, "%s", e.msg);
	strcpy(a->cfg.rule, "web2");
	if (CHECK(!adaptive_bind(&f.m, a, &e), "by name: %s", e.msg))
		CHECK_EQ(a->slot, (__u32)other, "the named one");
	strcpy(a->cfg.rule, "pkts");
	CHECK_EQ(adaptive_bind(&f.m, a, &e), -EINVAL, "named rule without the kind");
	CHECK(strstr(e.msg, "has no conn-rate limit") != NULL, "%s", e.msg);

	/* pps: the burst follows at the configured seconds (1 s by default) */
	a->cfg.kind = ADAPTIVE_PPS;
	if (CHECK(!adaptive_bind(&f.m, a, &e), "bind pps: %s", e.msg)) {
		pslot = (int)a->slot;
		CHECK_EQ(adaptive_apply(&f.m, a, 2500), 0, "apply pps");
		rule_at(&f, pslot, &r);
		CHECK(r.pps == 2500 && r.burst == 2500 && r.pkt_interval_fp == rate_interval_fp(2500) &&
		      r.pkt_tolerance_ns == rate_tolerance_ns(rate_interval_fp(2500), 2500),
		      "pps 2500 burst 2500: %llu %llu", (unsigned long long)r.pps,
		      (unsigned long long)r.burst);
	}

	/* the bound rule deleted (its slot reused or empty): stale */
	fx_cmd(&f, "rule del pkts");
	CHECK_EQ(adaptive_apply(&f.m, a, 100), -ESTALE, "deleted rule: bind again");
	a->bound = 0;
	CHECK_EQ(adaptive_apply(&f.m, a, 100), -EINVAL, "never bound");
out:
	fx_close(&f);
	free(a);
}

TEST(adaptive_sample_reads_the_map)
{
	struct adaptive_config c = cfg(ADAPTIVE_GRADIENT, 10, 1000);
	struct adaptive *a = malloc(sizeof(*a));
	struct sluice_signals *s = calloc(1, sizeof(*s));
	struct adaptive_input in;
	__u32 port = 8080;
	struct fx f;

	if (!CHECK(a && s, "alloc") || fx_open(&f, 0)) {
		free(a);
		free(s);
		return;
	}
	adaptive_init(a, &c);
	CHECK_EQ(adaptive_sample(&f.m, a, &in), 0, "no entry is not an error");
	CHECK(!in.have_latency, "no entry: no information");
	CHECK(!bpf_map_update_elem(f.m.signals, &port, s, BPF_ANY), "write signals");
	adaptive_sample(&f.m, a, &in);
	record(s, SLUICE_HIST_RESPONSE, 20000, 7);
	s->counter[SLUICE_SIG_REQUESTS] = s->counter[SLUICE_SIG_RESPONSES] = 7;
	CHECK(!bpf_map_update_elem(f.m.signals, &port, s, BPF_ANY), "write signals");
	CHECK_EQ(adaptive_sample(&f.m, a, &in), 0, "sample");
	CHECK(in.have_latency && in.samples == 7 && absd(in.latency_us - 20000) < 1,
	      "7 responses at 20 ms: %g", in.latency_us);
	fx_close(&f);
	free(a);
	free(s);
}
