/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* stats.h - read the counters: global, per rule, per source (buckets). */
#ifndef SLUICE_STATS_H
#define SLUICE_STATS_H

#include <stddef.h>
#include "maps.h"
#include "sluice.h"

extern const char *const stats_counter_names[SLUICE_CNT_MAX];

int stats_counters(const struct sluice_maps *m, __u64 out[SLUICE_CNT_MAX]);
int stats_rule(const struct sluice_maps *m, __u32 slot, struct sluice_rule_stats *out);

struct bucket_row {
	struct sluice_bucket_key key;
	struct sluice_bucket val;
};
/* Every bucket; *rows is malloc'd. */
int stats_buckets(const struct sluice_maps *m, struct bucket_row **rows, size_t *n);

#endif
