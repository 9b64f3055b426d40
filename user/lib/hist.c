// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include "hist.h"

#define SUB (1u << SLUICE_HIST_SUB_BITS)

/* The inverse of sluice_hist_bucket(): bucket b >= SUB is sub-bucket b % SUB
 * of the power of two 2^(b / SUB + SUB_BITS - 1), SUB sub-buckets of width
 * 2^(b / SUB - 1) each. */
void hist_bucket_bounds(__u32 b, __u64 *lo, __u64 *hi)
{
	__u32 shift;

	if (b >= SLUICE_HIST_BUCKETS)
		b = SLUICE_HIST_BUCKETS - 1;
	if (b < SUB) {
		*lo = b;
		*hi = (__u64)b + 1;
		return;
	}
	shift = b / SUB - 1;
	*lo = (__u64)(SUB + b % SUB) << shift;
	*hi = *lo + (1ULL << shift);
}

double hist_quantile_us(const struct sluice_hist_data *h, double q)
{
	__u64 total = 0, rank, below = 0, lo, hi;
	__u32 b, used = 0, only = 0;

	for (b = 0; b < SLUICE_HIST_BUCKETS; b++) {
		total += h->bucket[b];
		if (h->bucket[b]) {
			used++;
			only = b;
		}
	}
	if (!total)
		return -1;
	/* Every value in one bucket (a steady backend): their mean is known
	 * and lies inside it, which beats spreading them over the bucket. */
	if (used == 1 && h->count == total) {
		double mean = (double)h->sum_us / (double)total;

		hist_bucket_bounds(only, &lo, &hi);
		if (mean >= (double)lo && mean < (double)hi)
			return mean;
	}
	/* Nearest rank: the smallest value with at least q of them at or below. */
	if (q <= 0)
		rank = 1;
	else if (q >= 1)
		rank = total;
	else {
		double r = q * (double)total;

		rank = (__u64)r;
		if ((double)rank < r)
			rank++;
		if (rank < 1)
			rank = 1;
	}
	for (b = 0; b < SLUICE_HIST_BUCKETS; b++) {
		__u64 n = h->bucket[b];

		if (below + n < rank) {
			below += n;
			continue;
		}
		hist_bucket_bounds(b, &lo, &hi);
		if (hi - lo == 1)
			return (double)lo;
		/* The k-th of n values sits at the middle of the k-th of n
		 * equal slices of the middle half of the bucket: spread over
		 * the whole bucket, a cluster at one edge would read up to a
		 * bucket's width (1/8) off; kept to the middle half, no
		 * estimate is more than 3/4 of 1/8 (9.4%) from any value in
		 * the bucket. */
		return (double)lo + (double)(hi - lo) *
			(0.25 + 0.5 * ((double)(rank - below) - 0.5) / (double)n);
	}
	return -1; /* not reached: rank <= total */
}

void hist_summarize(const struct sluice_hist_data *h, struct hist_summary *s)
{
	__u64 total = 0;
	__u32 b;

	for (b = 0; b < SLUICE_HIST_BUCKETS; b++)
		total += h->bucket[b];
	/* The buckets are the count that the percentiles agree with; the
	 * count field is added separately and may run one update ahead. */
	s->count = total;
	s->mean_ms = total ? (double)h->sum_us / (double)total / 1000.0 : 0;
	s->p50_ms = hist_quantile_us(h, 0.50) / 1000.0;
	s->p90_ms = hist_quantile_us(h, 0.90) / 1000.0;
	s->p99_ms = hist_quantile_us(h, 0.99) / 1000.0;
}

void hist_sub(struct sluice_hist_data *out, const struct sluice_hist_data *now,
	      const struct sluice_hist_data *then)
{
	__u32 b;

	for (b = 0; b < SLUICE_HIST_BUCKETS; b++)
		if (now->bucket[b] < then->bucket[b])
			break;
	if (b < SLUICE_HIST_BUCKETS || now->count < then->count || now->sum_us < then->sum_us) {
		*out = *now; /* recreated since `then`: all of it is new */
		return;
	}
	out->count = now->count - then->count;
	out->sum_us = now->sum_us - then->sum_us;
	for (b = 0; b < SLUICE_HIST_BUCKETS; b++)
		out->bucket[b] = now->bucket[b] - then->bucket[b];
}
