/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * metrics.h - sluice's maps in the Prometheus text exposition format 0.0.4:
 * counters, table fill, backend latency histograms (in seconds), error
 * counters, the adaptive controllers' state, and the top talkers.
 * docs/metrics.md lists every family.
 *
 * The renderer is stateless: it reads the maps on every call and writes one
 * complete exposition into a bounded buffer. Whatever only the daemon knows
 * (controller state, how many talkers to show) comes in struct metrics_extra,
 * which the daemon fills from its own structs.
 */
#ifndef SLUICE_METRICS_H
#define SLUICE_METRICS_H

#include <stddef.h>
#include "buf.h"
#include "maps.h"
#include "sluice.h"

/* The most an exposition may take (its buffer's ceiling): metrics_render
 * returns -E2BIG past it. */
#define METRICS_MAX_BYTES (16u << 20)

/* One adaptive controller, as the daemon last computed it. Latencies in
 * seconds; a NaN latency or ratio means "no data in the window" and is
 * exported as NaN. */
#define METRICS_LIMIT_KIND_LEN 16
struct metrics_adaptive {
	__u32 port;                          /* the protected service */
	__u32 rule_id;                       /* the rule whose limit it writes */
	char kind[METRICS_LIMIT_KIND_LEN];   /* "conn_rate" or "pps" */
	double limit;                        /* current limit (per second) */
	double min, max;                     /* configured bounds */
	double latency_s;                    /* recent latency the controller saw */
	double baseline_s;                   /* its long-window baseline */
	double error_ratio;                  /* errors / responses in the window */
	__u64 changes;                       /* times the limit changed, ever */
	int shadow;                          /* 1: computed, not written */
};

#define METRICS_TOP_DEFAULT 10
#define METRICS_TOP_MAX 1000

struct metrics_extra {
	unsigned int top_n;                  /* talkers to export; 0 = default (10) */
	const struct metrics_adaptive *adaptive;
	size_t n_adaptive;
	int store;                           /* 0: no store (no metric); else 1 + enum store_state */
};

/* Appends the whole exposition to out (it is not reset first). x may be NULL
 * (no controllers, 10 talkers). Returns 0 or a negative errno; on error out
 * holds a partial exposition that must not be served. */
int metrics_render(const struct sluice_maps *m, const struct metrics_extra *x,
		   struct buf *out);

/* The latency histograms' `le` bounds in microseconds, each an exact upper
 * edge of a sluice_hist_bucket() bucket (so the cumulative counts are
 * exact), and how many there are (without +Inf). For the tests. */
extern const __u64 metrics_le_us[];
extern const size_t metrics_n_le;

/* Appends s as a Prometheus label value (backslash, double quote and
 * newline escaped). */
int metrics_label_escape(struct buf *b, const char *s);

#endif
