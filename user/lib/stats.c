// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/bpf.h>
#include <stdio.h>
#include "prefix.h"
#include "stats.h"
#include "util.h"

/* Metric-friendly names; the first five are the "drops" object keys. */
const char *const stats_counter_names[SLUICE_CNT_MAX] = {
#define DROP_NAME(cnt, name, meaning) [cnt] = name,
	SLUICE_DROP_REASONS(DROP_NAME)
#undef DROP_NAME
	[SLUICE_CNT_MALFORMED] = "malformed",
	[SLUICE_CNT_PACKETS] = "packets",
	[SLUICE_CNT_NON_IP] = "non_ip",
	[SLUICE_CNT_ALLOWED] = "allowed",
	[SLUICE_CNT_STATE_INSERT] = "state_inserts",
	[SLUICE_CNT_STATE_THROTTLED] = "state_insert_throttled",
	[SLUICE_CNT_BANS] = "bans_issued",
	[SLUICE_CNT_CAS_EXHAUSTED] = "bucket_contended",
	[SLUICE_CNT_FLOW_INSERT] = "flows_opened",
	[SLUICE_CNT_FLOW_FULL] = "flow_table_full",
	[SLUICE_CNT_FLOW_CLOSED] = "flows_closed",
	[SLUICE_CNT_FLOW_RESET] = "flows_reset",
	[SLUICE_CNT_FLOW_EXPIRED_HALF_OPEN] = "flows_expired_half_open",
	[SLUICE_CNT_FLOW_EXPIRED_IDLE] = "flows_expired_idle",
	[SLUICE_CNT_SWEEPS] = "sweeps",
	[SLUICE_CNT_SIGNALS_FULL] = "signals_table_full",
};

const struct stats_drop_reason stats_drop_reasons[] = {
#define DROP_ROW(cnt, name, meaning) { cnt, name, meaning },
	SLUICE_DROP_REASONS(DROP_ROW)
#undef DROP_ROW
};
const size_t stats_n_drop_reasons = sizeof(stats_drop_reasons) / sizeof(stats_drop_reasons[0]);

const char *const stats_signal_names[SLUICE_SIG_MAX] = {
	[SLUICE_SIG_CONNECTIONS] = "connections",
	[SLUICE_SIG_REQUESTS] = "requests",
	[SLUICE_SIG_RESPONSES] = "responses",
	[SLUICE_SIG_SERVER_RST] = "server_rst",
	[SLUICE_SIG_ICMP_UNREACH] = "icmp_unreach",
	[SLUICE_SIG_SYN_TIMEOUT] = "syn_timeout",
	[SLUICE_SIG_HTTP_1XX] = "http_1xx",
	[SLUICE_SIG_HTTP_2XX] = "http_2xx",
	[SLUICE_SIG_HTTP_3XX] = "http_3xx",
	[SLUICE_SIG_HTTP_4XX] = "http_4xx",
	[SLUICE_SIG_HTTP_5XX] = "http_5xx",
	[SLUICE_SIG_L7_429] = "l7_429",
};

const char *const stats_hist_names[SLUICE_HISTS] = {
	[SLUICE_HIST_CONNECT] = "connect",
	[SLUICE_HIST_RESPONSE] = "response",
	[SLUICE_HIST_TOTAL] = "total",
	[SLUICE_HIST_PER_TOKEN] = "per_token",
};

const char *stats_key_str(const struct sluice_bucket_key *k, char *buf, size_t len)
{
	struct prefix p = { .family = k->family, .len = k->prefix_len };

	if (k->family == SLUICE_AF_NONE) {
		snprintf(buf, len, "%s", k->prefix_len == SLUICE_OVERFLOW_PREFIX ? "overflow" : "rule");
		return buf;
	}
	memcpy(p.addr, k->addr, 16);
	return prefix_str(&p, buf, len);
}

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
		if (array_grow(&v, &cap, *n + 1, sizeof(*v), 1024)) {
			free(v);
			return -ENOMEM;
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

int stats_map_fill(int fd, __u64 *entries, __u32 *max)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);
	char key[256], next[256];
	void *prev = NULL;

	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		return -errno;
	if (info.key_size > sizeof(key))
		return -E2BIG;
	*max = info.max_entries;
	*entries = 0;
	while (!bpf_map_get_next_key(fd, prev, next)) {
		(*entries)++;
		memcpy(key, next, info.key_size);
		prev = key;
	}
	return errno == ENOENT ? 0 : -errno;
}

/* Walks a hash map into a growing array of rows: each row is the key at
 * key_off and the value at val_off of a row_size struct. */
static int walk_map(int fd, size_t row_size, size_t key_off, size_t key_size, size_t val_off,
		    void **rows, size_t *n)
{
	char *v = NULL, prev_key[64];
	void *prev = NULL;
	size_t cap = 0;

	*n = 0;
	for (;;) {
		char *row;

		if (array_grow(&v, &cap, *n + 1, row_size, 256)) {
			free(v);
			return -ENOMEM;
		}
		row = v + *n * row_size;
		memset(row, 0, row_size);
		if (bpf_map_get_next_key(fd, prev, row + key_off))
			break;
		if (!bpf_map_lookup_elem(fd, row + key_off, row + val_off))
			(*n)++; /* else deleted between the two calls */
		memcpy(prev_key, row + key_off, key_size);
		prev = prev_key;
	}
	if (errno != ENOENT) {
		int err = -errno;

		free(v);
		return err;
	}
	*rows = v;
	return 0;
}

int stats_conns(const struct sluice_maps *m, struct conn_row **rows, size_t *n)
{
	size_t i;
	int err = walk_map(m->conns, sizeof(**rows), offsetof(struct conn_row, key),
			   sizeof(struct sluice_bucket_key), offsetof(struct conn_row, val),
			   (void **)rows, n);

	if (err)
		return err;
	for (i = 0; i < *n; i++)
		if ((*rows)[i].val.count & SLUICE_CONN_DEAD)
			(*rows)[i].val.count = 0;
	return 0;
}

static int port_cmp(const void *a, const void *b)
{
	__u32 x = ((const struct signal_row *)a)->port, y = ((const struct signal_row *)b)->port;

	return x < y ? -1 : x > y;
}

int stats_signals(const struct sluice_maps *m, struct signal_row **rows, size_t *n)
{
	int err = walk_map(m->signals, sizeof(**rows), offsetof(struct signal_row, port),
			   sizeof(__u32), offsetof(struct signal_row, val), (void **)rows, n);

	if (!err)
		qsort(*rows, *n, sizeof(**rows), port_cmp);
	return err;
}
