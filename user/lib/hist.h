/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * hist.h - read the log-linear latency histograms of struct sluice_signals:
 * each bucket's bounds, a quantile interpolated within its bucket, the mean,
 * and the difference of two snapshots.
 */
#ifndef SLUICE_HIST_H
#define SLUICE_HIST_H

#include "sluice.h"

/* The values (microseconds) bucket b holds: [*lo, *hi). Buckets below
 * 2^SUB_BITS hold one value each; above, a bucket spans 1/8 of its power of
 * two. The last bucket also takes everything past its nominal end, which a
 * quantile cannot see: it is read as if nothing lay beyond. */
void hist_bucket_bounds(__u32 b, __u64 *lo, __u64 *hi);

/* The value at quantile q (0 < q <= 1) in microseconds, by nearest rank:
 * the rank's bucket is found, and the rank's place among that bucket's
 * values is spread evenly over the middle half of its span (a lone value
 * reads as the midpoint, within 6.25% of the truth). Buckets one
 * microsecond wide are exact. When every value sits in one bucket, their
 * mean is returned instead: it is known exactly and lies among them. The
 * estimate is never more than 3/4 of a bucket's width (3/32 of the value,
 * 9.4%) from any value in the bucket. Returns -1 for an empty histogram. */
double hist_quantile_us(const struct sluice_hist_data *h, double q);

struct hist_summary {
	__u64 count;
	double mean_ms, p50_ms, p90_ms, p99_ms; /* meaningless when count is 0 */
};

void hist_summarize(const struct sluice_hist_data *h, struct hist_summary *s);

/* out = now - then: what was recorded between two snapshots. If anything
 * went backwards (the entry was evicted and recreated), out = now. */
void hist_sub(struct sluice_hist_data *out, const struct sluice_hist_data *now,
	      const struct sluice_hist_data *then);

#endif
