/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * adaptive.h - the adaptive limit controller: one per protected service.
 *
 * Each tick the daemon reads the window since the last tick from the
 * service's backend signals (adaptive_sample), lets the controller decide a
 * new limit (adaptive_tick, pure: no maps, no clock, so tests drive it), and
 * writes it into the service's rule (adaptive_apply). docs/design.md,
 * "Adaptive controller", gives the formula, the defaults and why.
 *
 *   adaptive_parse(argc, argv, &cfg, &e);     config: the words after `adaptive`
 *   adaptive_init(&a, &cfg);                  starts at max
 *   adaptive_bind(&maps, &a, &e);             find the rule (at start, reload)
 *   every cfg.tick_ms:
 *     adaptive_sample(&maps, &a, &in);
 *     limit = adaptive_tick(&a, &in, &why);  why: for the log line, metrics
 *     adaptive_apply(&maps, &a, limit);       no-op in shadow mode
 */
#ifndef SLUICE_ADAPTIVE_H
#define SLUICE_ADAPTIVE_H

#include <stddef.h>
#include "sluice.h"
#include "log.h"
#include "maps.h"

/* Defaults and fixed tunables (docs/design.md says why each). */
#define ADAPTIVE_DEFAULT_ERROR_RATIO 0.05 /* 5% errors: cut the limit */
#define ADAPTIVE_DEFAULT_TICK_MS 1000
#define ADAPTIVE_MIN_TICK_MS 100
#define ADAPTIVE_MAX_TICK_MS 60000
#define ADAPTIVE_MAX_TARGET_MS 60000

/* The controller's fixed tunables (docs/design.md, "Adaptive controller"). */
#define ADAPTIVE_TOLERANCE 1.5      /* gradient mode: latency allowed over baseline */
#define ADAPTIVE_DRAIN_TICKS 0.5    /* drain the excess queue over this many ticks */
#define ADAPTIVE_MIN_CUT 0.25       /* one tick cuts the limit to no less than this */
#define ADAPTIVE_MAX_RAISE 0.15     /* one tick raises the limit by at most this */
#define ADAPTIVE_NEAR_RAISE 0.02    /* ... and by this near the known capacity */
#define ADAPTIVE_NEAR_MARGIN 0.15   /* "near": within 15% of it */
#define ADAPTIVE_HEADROOM 0.10      /* held this far under a measured capacity */
#define ADAPTIVE_QUEUE_SLACK 0.05   /* responses this far short of requests: a queue */
#define ADAPTIVE_QUEUE_MIN_SHORT 5  /* ... and at least this many: a few is noise at low rates */
#define ADAPTIVE_BINDING 0.80       /* admitted under this share of the limit: not binding */
#define ADAPTIVE_ERROR_CUT 0.30     /* errors over threshold: limit *= 1 - this */
#define ADAPTIVE_ERROR_RESUME 0.5   /* errors over, latency fine: back to this share of the limit before them */
#define ADAPTIVE_MIN_ERRORS 3       /* fewer errors in a window are noise */
#define ADAPTIVE_MIN_REQUESTS 10    /* for the throughput ratio */
#define ADAPTIVE_BASELINE_WINDOW_S 60 /* unconfirmed this long: re-probe */
#define ADAPTIVE_CONFIRM 1.10       /* a p50 this close to baseline confirms it */
#define ADAPTIVE_PROBE_TICKS 2      /* drain, then measure */
#define ADAPTIVE_PROBE_FRACTION 0.5 /* of the limit, during a probe */

/* Which of the rule's limits the controller owns. */
enum adaptive_kind {
	ADAPTIVE_CONN_RATE = 0, /* rule's conn-rate (conn-burst follows) */
	ADAPTIVE_PPS = 1,       /* rule's pps (burst follows) */
};

enum adaptive_mode {
	ADAPTIVE_GRADIENT = 0, /* baseline = the service's own low-load latency */
	ADAPTIVE_TARGET = 1,   /* baseline = target-latency */
};

struct adaptive_config {
	__u16 port;             /* service (TCP destination port), 1-65535 */
	__u16 pad;
	enum adaptive_kind kind;
	enum adaptive_mode mode;
	__u64 min, max;         /* bounds of the limit, 1 <= min <= max */
	__u64 target_us;        /* ADAPTIVE_TARGET only */
	double error_ratio;     /* threshold, 0 < r <= 1 */
	__u32 tick_ms;
	int shadow;             /* compute and report, never write */
	char rule[SLUICE_NAME_LEN]; /* "" = the one rule on exactly this port */
};

/* One window's inputs. An empty window is "no information" (have_latency
 * 0), never a latency of zero or infinity. */
struct adaptive_input {
	int have_latency;
	enum sluice_hist source; /* SLUICE_HIST_RESPONSE, else _CONNECT */
	double latency_us;       /* p50 of the window */
	__u64 samples;           /* latency values in the window */
	__u64 requests, responses;
	__u64 connections;       /* handshakes answered: what a conn-rate limit admits */
	__u64 errors;            /* http_5xx + server_rst + syn_timeout + icmp_unreach */
	int have_errors;         /* the window had outcomes: error_ratio is real */
	double error_ratio;      /* errors / max(requests, outcomes), 0..1 */
};

/* Why adaptive_tick chose what it chose. */
enum adaptive_reason {
	ADAPTIVE_HOLD = 0,   /* no information this window: limit unchanged */
	ADAPTIVE_GRADIENT_STEP, /* latency gradient (up, down or flat) */
	ADAPTIVE_ERRORS,     /* error ratio over threshold: multiplicative decrease */
	ADAPTIVE_PROBE,      /* re-measuring the baseline at a lower limit */
	ADAPTIVE_REASONS,
};
const char *adaptive_reason_name(enum adaptive_reason r);
const char *adaptive_kind_name(enum adaptive_kind k); /* "conn-rate", "pps" */

struct adaptive_decision {
	enum adaptive_reason reason;
	double latency_us;   /* this window's p50; -1 = no information */
	double baseline_us;  /* what it was compared with (target in target mode) */
	double gradient;     /* applied factor before smoothing; 1 when none */
	double error_ratio;  /* -1 = no information */
	__u64 old_limit, new_limit;
	int changed;         /* new_limit != old_limit: worth a log line */
};

/* Controller state. Everything a metrics exporter wants is here and in the
 * last decision; fields below `private` are the sampler's and the binder's. */
struct adaptive {
	struct adaptive_config cfg;
	double limit;           /* unrounded; the rule gets it rounded, clamped */
	double baseline_us;     /* gradient: windowed min of p50s; -1 = none yet */
	enum sluice_hist baseline_source; /* the histogram it was measured on */
	__u32 baseline_age;     /* ticks since the baseline was set or confirmed */
	__u32 probe_left;       /* ticks left in a baseline re-probe, 0 = none */
	double probe_resume;    /* limit to return to after the probe */
	double capacity;        /* limit at which latency last rose; 0 = unknown */
	__u32 capacity_age;     /* informative ticks since it was measured */
	__u32 pad;
	double before_errors;   /* limit before a run of error cuts; 0 = none */
	__u64 ticks;
	__u64 probes;           /* re-probes started */
	__u64 error_cuts;       /* ticks that cut for errors */
	__u64 empty_windows;    /* ticks without information */
	struct adaptive_decision last;

	/* private: sampler (the previous snapshot) */
	int have_prev;
	struct sluice_signals prev;
	/* private: binder */
	int bound;
	__u32 slot, rule_id;
	double burst_secs;      /* configured burst / rate, kept as the rate moves */
};

/* The words after `adaptive`; strict, errors name the bad word:
 *   port P limit conn-rate|pps min N max N [target-latency MS | gradient]
 *   [error-ratio R] [tick MS] [shadow] [rule NAME]
 * Defaults: gradient mode, error-ratio 0.05, tick 1000 ms, not shadow, the
 * rule found by port. */
int adaptive_parse(int argc, char **argv, struct adaptive_config *c, struct errbuf *e);
/* "port 8080 limit conn-rate min 10 max 1000 gradient ..." as parsed. */
void adaptive_describe(const struct adaptive_config *c, char *buf, size_t len);

void adaptive_init(struct adaptive *a, const struct adaptive_config *c);

/* Finds the controller's rule (by name, else the one live rule whose dport
 * range is exactly the port and that has the limit kind) and records its
 * slot, id and burst in seconds of rate. Call at start and after every
 * policy change; 0, or -ENOENT / -ENOTUNIQ / -EINVAL with the reason in e. */
int adaptive_bind(const struct sluice_maps *m, struct adaptive *a, struct errbuf *e);

/* Reads the window since the previous call from sluice_signals[port]. The
 * first call, and a service without an entry, give no information.
 * 0 or -errno (a map read failing other than ENOENT). */
int adaptive_sample(const struct sluice_maps *m, struct adaptive *a, struct adaptive_input *out);
/* The same from a snapshot already read (NULL: the service has no entry);
 * what adaptive_sample does after the map lookup. Tests drive it directly. */
void adaptive_window(struct adaptive *a, const struct sluice_signals *now,
		     struct adaptive_input *out);

/* One control step: returns the new limit (also in a->limit, rounded and in
 * [min, max]) and fills why (may be NULL). Pure: no maps, no clock. */
__u64 adaptive_tick(struct adaptive *a, const struct adaptive_input *in,
		    struct adaptive_decision *why);

/* Writes limit into the bound rule's slot in one map update: the limit, its
 * compiled interval and tolerance (rate.h), the burst kept at burst_secs of
 * the new rate. No write in shadow mode or when the rule already holds it.
 * 0; -ESTALE if the slot no longer holds the bound rule (bind again);
 * -EINVAL if never bound; -errno from the map. The caller holds the pin
 * lock (pin_lock) if other writers (the CLI) may run. */
int adaptive_apply(const struct sluice_maps *m, const struct adaptive *a, __u64 limit);

#endif
