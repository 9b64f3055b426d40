// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* stats and top: read the counters, never write. */
#include <errno.h>
#include <stddef.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "cli.h"
#include "json.h"
#include "log.h"
#include "opts.h"
#include "loader.h"
#include "parse.h"
#include "policy.h"
#include "prefix.h"
#include "stats.h"

struct stats_opts {
	int json;
};

static const struct cli_opt stats_options[] = {
	{ .name = "json", .short_name = 'j', .kind = CLI_FLAG,
	  .off = offsetof(struct stats_opts, json), .help = "the same as one JSON object" },
	{ .name = NULL },
};

const struct cli_cmd stats_cmd = {
	"stats", NULL, 0, 0,
	"Counters since the maps were created: packets seen, drops by reason, per-rule\n"
	"passed and dropped packets and bytes (for an 'action count' rule, dropped\n"
	"means would-have-dropped), the per-source state table's pressure (entries,\n"
	"inserts, inserts refused by --insert-rate, and evictions), and the flow\n"
	"table's: connections tracked now and ever, how they ended (closed by FINs,\n"
	"reset, expired half-open or idle), SYNs that found it full, sweeper runs.\n"
	"\n"
	"Drop reasons: deny and ban (the deny list), rate (pps), bytes (bps),\n"
	"conn_rate and conns (a SYN over a connection limit), flow_full (a SYN\n"
	"refused because the flow table was full under 'sluice set flows-full\n"
	"closed'). malformed counts frames that could not be parsed; they are\n"
	"passed to the kernel, not dropped.\n",
	stats_options,
};

struct top_opts {
	__u64 count;
	int once, json;
};

static const struct cli_opt top_options[] = {
	{ .name = "count", .kind = CLI_U64, .off = offsetof(struct top_opts, count),
	  .arg = "N", .min = 1, .max = 100000, .help = "rows to show (default 20)" },
	{ .name = "once", .kind = CLI_FLAG, .off = offsetof(struct top_opts, once),
	  .help = "print the totals once instead of refreshing every second" },
	{ .name = "json", .short_name = 'j', .kind = CLI_FLAG,
	  .off = offsetof(struct top_opts, json),
	  .help = "the rows as a JSON array; without --once, one array per refresh, each on a line" },
	{ .name = NULL },
};

const struct cli_cmd top_cmd = {
	"top", NULL, 0, 0,
	"The heaviest sources by packets, per rule, with passed and dropped rates.\n"
	"Refreshes every second until interrupted; --once prints the totals once.\n"
	"With --json and no --once, one JSON document per line per refresh.\n",
	top_options,
};

/* The flow table's counters: JSON key and counter. */
static const struct {
	const char *key;
	int cnt;
} flow_counters[] = {
	{ "opened", SLUICE_CNT_FLOW_INSERT },
	{ "closed", SLUICE_CNT_FLOW_CLOSED },
	{ "reset", SLUICE_CNT_FLOW_RESET },
	{ "expired_half_open", SLUICE_CNT_FLOW_EXPIRED_HALF_OPEN },
	{ "expired_idle", SLUICE_CNT_FLOW_EXPIRED_IDLE },
	{ "table_full", SLUICE_CNT_FLOW_FULL },
	{ "sweeps", SLUICE_CNT_SWEEPS },
};
#define N_FLOW_COUNTERS (sizeof(flow_counters) / sizeof(flow_counters[0]))

static int open_all(const char *what, struct sluice_maps *m, struct policy *p)
{
	if (need_root(what))
		return -1;
	if (maps_open_pinned(m))
		return -1;
	if (policy_load(p, m)) {
		maps_close(m);
		return -1;
	}
	return 0;
}

int cmd_stats(int argc, char **argv)
{
	struct bucket_row *rows = NULL;
	__u64 cnt[SLUICE_CNT_MAX], evictions = 0, flows = 0;
	__u32 flows_max = 0;
	struct sluice_maps m;
	struct policy p;
	size_t nrows = 0, i;
	struct stats_opts o = { 0 };
	int slot;

	slot = cli_parse(&stats_cmd, argc, argv, &o, NULL);
	if (slot < 0)
		return slot == CLI_HELP ? 0 : EXIT_USAGE;
	cli.json = o.json;
	if (open_all("stats", &m, &p))
		return 1;
	if (stats_counters(&m, cnt) || stats_buckets(&m, &rows, &nrows) ||
	    stats_map_fill(m.flows, &flows, &flows_max)) {
		pr_err("stats: reading the counters failed: %s", strerror(errno));
		policy_free(&p);
		maps_close(&m);
		return 1;
	}
	if (cnt[SLUICE_CNT_STATE_INSERT] > p.cfg.state_deleted + nrows)
		evictions = cnt[SLUICE_CNT_STATE_INSERT] - p.cfg.state_deleted - nrows;

	if (cli.json) {
		struct json j;

		json_init(&j, stdout);
		json_obj_begin(&j, NULL);
		json_u64(&j, "packets", cnt[SLUICE_CNT_PACKETS]);
		json_u64(&j, "non_ip", cnt[SLUICE_CNT_NON_IP]);
		json_u64(&j, "allowed", cnt[SLUICE_CNT_ALLOWED]);
		json_u64(&j, "malformed", cnt[SLUICE_CNT_MALFORMED]);
		json_obj_begin(&j, "drops");
		for (i = 0; i < stats_n_drop_reasons; i++)
			json_u64(&j, stats_drop_reasons[i].name, cnt[stats_drop_reasons[i].cnt]);
		json_obj_end(&j);
		json_obj_begin(&j, "state");
		json_u64(&j, "size", loader_pinned_state_entries());
		json_u64(&j, "entries", nrows);
		json_u64(&j, "inserts", cnt[SLUICE_CNT_STATE_INSERT]);
		json_u64(&j, "insert_throttled", cnt[SLUICE_CNT_STATE_THROTTLED]);
		json_u64(&j, "evictions", evictions);
		json_obj_end(&j);
		json_obj_begin(&j, "flows");
		json_u64(&j, "entries", flows);
		json_u64(&j, "max", flows_max);
		for (i = 0; i < N_FLOW_COUNTERS; i++)
			json_u64(&j, flow_counters[i].key, cnt[flow_counters[i].cnt]);
		json_obj_end(&j);
		json_u64(&j, "signals_table_full", cnt[SLUICE_CNT_SIGNALS_FULL]);
		json_u64(&j, "bans_issued", cnt[SLUICE_CNT_BANS]);
		json_u64(&j, "bucket_contended", cnt[SLUICE_CNT_CAS_EXHAUSTED]);
		json_arr_begin(&j, "rules");
		for (slot = 0; slot < SLUICE_MAX_RULES; slot++) {
			struct sluice_rule_stats st = {};

			if (!policy_rule_live(&p, slot))
				continue;
			stats_rule(&m, (__u32)slot, &st);
			json_obj_begin(&j, NULL);
			json_u64(&j, "id", p.rules[slot].id);
			json_str(&j, "name", p.rules[slot].name);
			json_str(&j, "action", p.rules[slot].flags & SLUICE_RULE_ACTION_COUNT ? "count" : "drop");
			json_u64(&j, "passed_pkts", st.passed_pkts);
			json_u64(&j, "passed_bytes", st.passed_bytes);
			json_u64(&j, "dropped_pkts", st.dropped_pkts);
			json_u64(&j, "dropped_bytes", st.dropped_bytes);
			if (p.rules[slot].flags & SLUICE_RULE_GLOBAL)
				cli_fleet_json(&j, &m, (__u32)slot, p.rules[slot].id, p.now_ns);
			json_obj_end(&j);
		}
		json_arr_end(&j);
		json_obj_end(&j);
		json_end(&j);
	} else {
		printf("packets %llu  non-ip %llu  allowed %llu  malformed %llu (passed)\n",
		       (unsigned long long)cnt[SLUICE_CNT_PACKETS],
		       (unsigned long long)cnt[SLUICE_CNT_NON_IP],
		       (unsigned long long)cnt[SLUICE_CNT_ALLOWED],
		       (unsigned long long)cnt[SLUICE_CNT_MALFORMED]);
		printf("drops:");
		for (i = 0; i < stats_n_drop_reasons; i++)
			printf(" %s %llu", stats_drop_reasons[i].name,
			       (unsigned long long)cnt[stats_drop_reasons[i].cnt]);
		printf("\n");
		printf("state: %zu of %u entries, %llu inserts, %llu throttled, %llu evictions, %llu bans\n",
		       nrows, loader_pinned_state_entries(),
		       (unsigned long long)cnt[SLUICE_CNT_STATE_INSERT],
		       (unsigned long long)cnt[SLUICE_CNT_STATE_THROTTLED],
		       (unsigned long long)evictions, (unsigned long long)cnt[SLUICE_CNT_BANS]);
		printf("flows: %llu of %u entries,", (unsigned long long)flows, flows_max);
		for (i = 0; i < N_FLOW_COUNTERS; i++)
			printf(" %s %llu", flow_counters[i].key,
			       (unsigned long long)cnt[flow_counters[i].cnt]);
		printf("\n");
		if (cnt[SLUICE_CNT_SIGNALS_FULL])
			printf("signals: %llu events on ports past the table's %d\n",
			       (unsigned long long)cnt[SLUICE_CNT_SIGNALS_FULL], SLUICE_MAX_SERVICES);
		printf("%-5s %-16s %-6s %14s %16s %14s %16s\n", "ID", "NAME", "ACTION", "PASSED_PKTS",
		       "PASSED_BYTES", "DROPPED_PKTS", "DROPPED_BYTES");
		for (slot = 0; slot < SLUICE_MAX_RULES; slot++) {
			struct sluice_rule_stats st = {};

			if (!policy_rule_live(&p, slot))
				continue;
			stats_rule(&m, (__u32)slot, &st);
			printf("%-5u %-16s %-6s %14llu %16llu %14llu %16llu\n", p.rules[slot].id,
			       p.rules[slot].name[0] ? p.rules[slot].name : "-",
			       p.rules[slot].flags & SLUICE_RULE_ACTION_COUNT ? "count" : "drop",
			       (unsigned long long)st.passed_pkts, (unsigned long long)st.passed_bytes,
			       (unsigned long long)st.dropped_pkts, (unsigned long long)st.dropped_bytes);
		}
		for (slot = 0; slot < SLUICE_MAX_RULES; slot++) {
			char line[512];

			if (!policy_rule_live(&p, slot) || !(p.rules[slot].flags & SLUICE_RULE_GLOBAL))
				continue;
			cli_fleet_line(&m, (__u32)slot, p.rules[slot].id, p.now_ns, line, sizeof(line));
			printf("global %s (id %u): %s\n", p.rules[slot].name, p.rules[slot].id, line);
		}
	}
	free(rows);
	policy_free(&p);
	maps_close(&m);
	return 0;
}

/* --- top ------------------------------------------------------------------ */

struct talker {
	struct sluice_bucket_key key;
	__u64 passed, dropped, passed_bytes, dropped_bytes;
	double passed_rate, dropped_rate;
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static int key_cmp(const void *a, const void *b)
{
	return memcmp(&((const struct talker *)a)->key, &((const struct talker *)b)->key,
		      sizeof(struct sluice_bucket_key));
}

static int rank_cmp_total(const void *a, const void *b)
{
	const struct talker *x = a, *y = b;
	__u64 tx = x->passed + x->dropped, ty = y->passed + y->dropped;

	return tx < ty ? 1 : tx > ty ? -1 : 0;
}

static int rank_cmp_rate(const void *a, const void *b)
{
	const struct talker *x = a, *y = b;
	double tx = x->passed_rate + x->dropped_rate, ty = y->passed_rate + y->dropped_rate;

	if (tx != ty)
		return tx < ty ? 1 : -1;
	return rank_cmp_total(a, b);
}

/* top's SOURCE column: a rule-wide key or overflow bucket in parentheses,
 * so it cannot be read as an address. */
static const char *source_str(const struct sluice_bucket_key *k, char *buf, size_t len)
{
	if (k->family == SLUICE_AF_NONE) {
		char word[16];

		snprintf(buf, len, "(%s)", stats_key_str(k, word, sizeof(word)));
		return buf;
	}
	return stats_key_str(k, buf, len);
}

static int snapshot(const struct sluice_maps *m, struct talker **out, size_t *n)
{
	struct bucket_row *rows;
	struct talker *t;
	size_t i;
	int err = stats_buckets(m, &rows, n);

	if (err)
		return err;
	t = calloc(*n ? *n : 1, sizeof(*t));
	if (!t) {
		free(rows);
		return -ENOMEM;
	}
	for (i = 0; i < *n; i++) {
		t[i].key = rows[i].key;
		t[i].passed = rows[i].val.passed_pkts;
		t[i].dropped = rows[i].val.dropped_pkts;
		t[i].passed_bytes = rows[i].val.passed_bytes;
		t[i].dropped_bytes = rows[i].val.dropped_bytes;
	}
	free(rows);
	qsort(t, *n, sizeof(*t), key_cmp);
	*out = t;
	return 0;
}

static void print_top(const struct policy *p, struct talker *t, size_t n, size_t count,
		      int rates)
{
	char src[PREFIX_STRLEN];
	size_t i;

	qsort(t, n, sizeof(*t), rates ? rank_cmp_rate : rank_cmp_total);
	if (n > count)
		n = count;
	if (cli.json) {
		struct json j;

		json_init(&j, stdout);
		json_arr_begin(&j, NULL);
		for (i = 0; i < n; i++) {
			json_obj_begin(&j, NULL);
			json_str(&j, "source", source_str(&t[i].key, src, sizeof(src)));
			json_u64(&j, "rule_id", t[i].key.rule_id);
			json_str(&j, "rule_name", policy_rule_name(p, t[i].key.rule_id));
			json_u64(&j, "passed_pkts", t[i].passed);
			json_u64(&j, "passed_bytes", t[i].passed_bytes);
			json_u64(&j, "dropped_pkts", t[i].dropped);
			json_u64(&j, "dropped_bytes", t[i].dropped_bytes);
			if (rates) {
				json_f64(&j, "passed_pps", t[i].passed_rate);
				json_f64(&j, "dropped_pps", t[i].dropped_rate);
			}
			json_obj_end(&j);
		}
		json_arr_end(&j);
		json_end(&j);
		return;
	}
	if (rates)
		printf("%-44s %-5s %12s %12s %14s %14s\n", "SOURCE", "RULE", "PASSED/s", "DROPPED/s",
		       "PASSED", "DROPPED");
	else
		printf("%-44s %-5s %14s %14s %16s %16s\n", "SOURCE", "RULE", "PASSED", "DROPPED",
		       "PASSED_BYTES", "DROPPED_BYTES");
	for (i = 0; i < n; i++) {
		if (rates)
			printf("%-44s %-5u %12.0f %12.0f %14llu %14llu\n",
			       source_str(&t[i].key, src, sizeof(src)), t[i].key.rule_id,
			       t[i].passed_rate, t[i].dropped_rate, (unsigned long long)t[i].passed,
			       (unsigned long long)t[i].dropped);
		else
			printf("%-44s %-5u %14llu %14llu %16llu %16llu\n",
			       source_str(&t[i].key, src, sizeof(src)), t[i].key.rule_id,
			       (unsigned long long)t[i].passed, (unsigned long long)t[i].dropped,
			       (unsigned long long)t[i].passed_bytes,
			       (unsigned long long)t[i].dropped_bytes);
	}
	fflush(stdout);
}

int cmd_top(int argc, char **argv)
{
	struct talker *prev = NULL, *cur = NULL;
	size_t nprev = 0, ncur = 0, i;
	struct top_opts o = { .count = 20 };
	__u64 count, t_prev, t_cur;
	struct sluice_maps m;
	struct policy p;
	int n, once, err = 0;

	n = cli_parse(&top_cmd, argc, argv, &o, NULL);
	if (n < 0)
		return n == CLI_HELP ? 0 : EXIT_USAGE;
	cli.json = o.json;
	once = o.once;
	count = o.count;
	if (open_all("top", &m, &p))
		return 1;
	if (once) {
		err = snapshot(&m, &cur, &ncur);
		if (!err)
			print_top(&p, cur, ncur, count, 0);
		goto out;
	}

	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	err = snapshot(&m, &prev, &nprev);
	t_prev = monotonic_ns();
	while (!err && !stop) {
		struct timespec ts = { .tv_sec = 1 };
		double secs;

		nanosleep(&ts, NULL);
		if (stop)
			break;
		err = snapshot(&m, &cur, &ncur);
		if (err)
			break;
		t_cur = monotonic_ns();
		secs = (double)(t_cur - t_prev) / 1e9;
		for (i = 0; i < ncur; i++) {
			struct talker *old = bsearch(&cur[i], prev, nprev, sizeof(*prev), key_cmp);
			__u64 dp = cur[i].passed - (old ? old->passed : 0);
			__u64 dd = cur[i].dropped - (old ? old->dropped : 0);

			cur[i].passed_rate = (double)dp / secs;
			cur[i].dropped_rate = (double)dd / secs;
		}
		/* The new snapshot is the next baseline: keep it in key order. */
		free(prev);
		prev = malloc((ncur ? ncur : 1) * sizeof(*prev));
		if (!prev) {
			err = -ENOMEM;
			break;
		}
		memcpy(prev, cur, ncur * sizeof(*cur));
		nprev = ncur;
		t_prev = t_cur;
		if (!cli.json)
			printf("\033[H\033[2J");
		print_top(&p, cur, ncur, count, 1);
		free(cur);
		cur = NULL;
	}
out:
	if (err)
		pr_err("top: reading the state table failed: %s", strerror(-err));
	free(prev);
	free(cur);
	policy_free(&p);
	maps_close(&m);
	return err ? 1 : 0;
}
