// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/bpf.h>
#include "stats.h"

/* Metric-friendly names; the first five are the "drops" object keys. */
const char *const stats_counter_names[SLUICE_CNT_MAX] = {
	[SLUICE_CNT_DROP_DENY] = "deny",
	[SLUICE_CNT_DROP_BAN] = "ban",
	[SLUICE_CNT_DROP_RATE] = "rate",
	[SLUICE_CNT_DROP_BYTES] = "bytes",
	[SLUICE_CNT_MALFORMED] = "malformed",
	[SLUICE_CNT_PACKETS] = "packets",
	[SLUICE_CNT_NON_IP] = "non_ip",
	[SLUICE_CNT_ALLOWED] = "allowed",
	[SLUICE_CNT_STATE_INSERT] = "state_inserts",
	[SLUICE_CNT_STATE_THROTTLED] = "state_insert_throttled",
	[SLUICE_CNT_BANS] = "bans_issued",
	[SLUICE_CNT_CAS_EXHAUSTED] = "bucket_contended",
	[SLUICE_CNT_DROP_CONN_RATE] = "conn_rate",
	[SLUICE_CNT_DROP_CONNS] = "conns",
	[SLUICE_CNT_DROP_FLOW_FULL] = "flow_full",
	[SLUICE_CNT_FLOW_INSERT] = "flows_opened",
	[SLUICE_CNT_FLOW_FULL] = "flow_table_full",
	[SLUICE_CNT_FLOW_CLOSED] = "flows_closed",
	[SLUICE_CNT_FLOW_RESET] = "flows_reset",
	[SLUICE_CNT_FLOW_EXPIRED_HALF_OPEN] = "flows_expired_half_open",
	[SLUICE_CNT_FLOW_EXPIRED_IDLE] = "flows_expired_idle",
	[SLUICE_CNT_SWEEPS] = "sweeps",
	[SLUICE_CNT_SIGNALS_FULL] = "signals_table_full",
};

int stats_counters(const struct sluice_maps *m, __u64 out[SLUICE_CNT_MAX])
{
	__u32 i;
	int err;

	for (i = 0; i < SLUICE_CNT_MAX; i++) {
		err = maps_percpu_sum(m->counters, i, &out[i], 1);
		if (err)
			return err;
	}
	return 0;
}

int stats_rule(const struct sluice_maps *m, __u32 slot, struct sluice_rule_stats *out)
{
	return maps_percpu_sum(m->rstats, slot, (__u64 *)out, sizeof(*out) / sizeof(__u64));
}

int stats_buckets(const struct sluice_maps *m, struct bucket_row **rows, size_t *n)
{
	struct sluice_bucket_key k, next;
	struct bucket_row *v = NULL;
	size_t cap = 0;
	void *prev = NULL;

	*n = 0;
	while (!bpf_map_get_next_key(m->buckets, prev, &next)) {
		if (*n == cap) {
			size_t ncap = cap ? cap * 2 : 1024;
			struct bucket_row *nv = realloc(v, ncap * sizeof(*nv));

			if (!nv) {
				free(v);
				return -ENOMEM;
			}
			v = nv;
			cap = ncap;
		}
		v[*n].key = next;
		if (!bpf_map_lookup_elem(m->buckets, &next, &v[*n].val))
			(*n)++; /* else evicted between the two calls */
		k = next;
		prev = &k;
	}
	*rows = v;
	return 0;
}
