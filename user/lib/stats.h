/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* stats.h - read the counters: global, per rule, per source (buckets). */
#ifndef SLUICE_STATS_H
#define SLUICE_STATS_H

#include <stddef.h>
#include "maps.h"
#include "sluice.h"

extern const char *const stats_counter_names[SLUICE_CNT_MAX];

/* SLUICE_DROP_REASONS (sluice.h) as a table: counter, name, meaning. */
struct stats_drop_reason {
	enum sluice_counter cnt;
	const char *name;
	const char *meaning;
};
extern const struct stats_drop_reason stats_drop_reasons[];
extern const size_t stats_n_drop_reasons;
/* JSON keys of enum sluice_signal and enum sluice_hist. */
extern const char *const stats_signal_names[SLUICE_SIG_MAX];
extern const char *const stats_hist_names[SLUICE_HISTS];

int stats_counters(const struct sluice_maps *m, __u64 out[SLUICE_CNT_MAX]);
/* A limit key as text: its masked prefix ("198.18.0.0/24"), or "rule" for a
 * rule-wide key and "overflow" for a rule's overflow bucket. */
const char *stats_key_str(const struct sluice_bucket_key *k, char *buf, size_t len);
int stats_rule(const struct sluice_maps *m, __u32 slot, struct sluice_rule_stats *out);

struct bucket_row {
	struct sluice_bucket_key key;
	struct sluice_bucket val;
};
/* Every bucket; *rows is malloc'd. */
int stats_buckets(const struct sluice_maps *m, struct bucket_row **rows, size_t *n);

/* Live entries of a hash map (walked key by key) and its max_entries. */
int stats_map_fill(int fd, __u64 *entries, __u32 *max);

/* Concurrent connection counts per limit key (sluice_conns). A count the
 * sweeper is reclaiming (SLUICE_CONN_DEAD) reads as 0. */
struct conn_row {
	struct sluice_bucket_key key;
	struct sluice_conn_count val;
};
int stats_conns(const struct sluice_maps *m, struct conn_row **rows, size_t *n);

/* Backend signals per service port (sluice_signals), in port order. */
struct signal_row {
	__u32 port;
	struct sluice_signals val;
};
int stats_signals(const struct sluice_maps *m, struct signal_row **rows, size_t *n);

#endif
