// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * metrics.c - the Prometheus text exposition (format 0.0.4) of sluice's maps.
 *
 * Every family is written whole (HELP, TYPE, then its samples) so a family
 * never appears twice. Counters are exported as the maps hold them (since
 * the maps were created); Prometheus takes rates. docs/metrics.md lists them.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <bpf/bpf.h>
#include "hist.h"
#include "lease.h"
#include "metrics.h"
#include "prefix.h"
#include "stats.h"
#include "util.h"


int metrics_label_escape(struct buf *b, const char *s)
{
	int err = 0;

	for (; *s && !err; s++) {
		if (*s == '\\')
			err = buf_append(b, "\\\\", 2);
		else if (*s == '"')
			err = buf_append(b, "\\\"", 2);
		else if (*s == '\n')
			err = buf_append(b, "\\n", 2);
		else
			err = buf_append(b, s, 1);
	}
	return err;
}

/* --- histogram bounds ---------------------------------------------------- */

/* Powers of two from 8 us to 2^25 us (33.6 s), and between them from 512 us
 * to 2^21 us (2.1 s) the midpoint (1.5 x), where backend latencies usually
 * sit: 35 bounds, each the upper edge of a sluice_hist_bucket() bucket (a
 * power of two splits into 8 buckets, so 1.5 x 2^k is the 4th edge). The
 * last map bucket also holds everything past 2^26 us, so no finite bound
 * lies above it. */
const __u64 metrics_le_us[] = {
	8, 16, 32, 64, 128, 256, 512, 768, 1024, 1536, 2048, 3072, 4096, 6144, 8192, 12288,
	16384, 24576, 32768, 49152, 65536, 98304, 131072, 196608, 262144, 393216, 524288,
	786432, 1048576, 1572864, 2097152, 4194304, 8388608, 16777216, 33554432,
};
const size_t metrics_n_le = NELEM(metrics_le_us);

/* --- families ------------------------------------------------------------ */

struct render {
	struct buf *b;
	int err;
};

static void out(struct render *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void out(struct render *r, const char *fmt, ...)
{
	char small[512];
	va_list ap;
	int n;

	if (r->err)
		return;
	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(small)) {
		r->err = -EINVAL; /* every line we format is short */
		return;
	}
	r->err = buf_append(r->b, small, (size_t)n);
}

static void esc(struct render *r, const char *s)
{
	if (!r->err)
		r->err = metrics_label_escape(r->b, s);
}

static void family(struct render *r, const char *name, const char *type, const char *help)
{
	out(r, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A float sample value: Prometheus spells the specials NaN, +Inf, -Inf. */
static void fval(struct render *r, double v)
{
	if (isnan(v))
		out(r, " NaN\n");
	else if (isinf(v))
		out(r, v > 0 ? " +Inf\n" : " -Inf\n");
	else
		out(r, " %.15g\n", v);
}

/* Microseconds as exact decimal seconds: 1536 -> "0.001536". */
static void us_seconds(struct render *r, __u64 us)
{
	char frac[8];
	int i;

	snprintf(frac, sizeof(frac), "%06llu", (unsigned long long)(us % 1000000));
	for (i = 5; i > 0 && frac[i] == '0'; i--)
		frac[i] = '\0';
	if (!strcmp(frac, "0"))
		out(r, "%llu", (unsigned long long)(us / 1000000));
	else
		out(r, "%llu.%s", (unsigned long long)(us / 1000000), frac);
}

static void simple(struct render *r, const char *name, const char *type, const char *help,
		   __u64 v)
{
	family(r, name, type, help);
	out(r, "%s %llu\n", name, (unsigned long long)v);
}

/* --- what the maps hold -------------------------------------------------- */

struct snapshot {
	__u64 cnt[SLUICE_CNT_MAX];
	struct sluice_config cfg;
	struct sluice_rule rules[SLUICE_MAX_RULES];
	struct sluice_rule_stats rstats[SLUICE_MAX_RULES];
	int live[SLUICE_MAX_RULES];
	struct bucket_row *buckets;
	size_t nbuckets;
	__u32 state_max;
	__u64 flows;
	__u32 flows_max;
	__u64 conn_keys;
	__u32 conn_keys_max;
	struct signal_row *signals;
	size_t nsignals;
};

static int map_max_entries(int fd, __u32 *max)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);

	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		return -errno;
	*max = info.max_entries;
	return 0;
}

static int take_snapshot(const struct sluice_maps *m, struct snapshot *s)
{
	__u32 zero = 0, slot;
	int err;

	/* Counters before the bucket walk: evictions = inserts - deleted -
	 * live entries can then only be read low (a source inserted after
	 * the counters were read is live but not yet counted), never high. */
	err = stats_counters(m, s->cnt);
	if (err)
		return err;
	if (bpf_map_lookup_elem(m->cfg, &zero, &s->cfg))
		return -errno;
	for (slot = 0; slot < SLUICE_MAX_RULES; slot++) {
		if (bpf_map_lookup_elem(m->rules, &slot, &s->rules[slot]))
			return -errno;
		s->live[slot] = !!(s->rules[slot].flags & SLUICE_RULE_IN_USE);
		if (!s->live[slot])
			continue;
		err = stats_rule(m, slot, &s->rstats[slot]);
		if (err)
			return err;
	}
	err = stats_buckets(m, &s->buckets, &s->nbuckets);
	if (!err)
		err = map_max_entries(m->buckets, &s->state_max);
	if (!err)
		err = stats_map_fill(m->flows, &s->flows, &s->flows_max);
	if (!err)
		err = stats_map_fill(m->conns, &s->conn_keys, &s->conn_keys_max);
	if (!err)
		err = stats_signals(m, &s->signals, &s->nsignals);
	return err;
}

static void free_snapshot(struct snapshot *s)
{
	free(s->buckets);
	free(s->signals);
}

/* rule="NAME" (the id when the rule has no name),id="ID" */
static void rule_labels(struct render *r, const struct sluice_rule *rule)
{
	char name[SLUICE_NAME_LEN + 1];

	memcpy(name, rule->name, SLUICE_NAME_LEN);
	name[SLUICE_NAME_LEN] = '\0';
	out(r, "rule=\"");
	if (name[0])
		esc(r, name);
	else
		out(r, "%u", rule->id);
	out(r, "\",id=\"%u\"", rule->id);
}

static const struct sluice_rule *rule_by_id(const struct snapshot *s, __u32 id)
{
	int slot;

	for (slot = 0; slot < SLUICE_MAX_RULES; slot++)
		if (s->live[slot] && s->rules[slot].id == id)
			return &s->rules[slot];
	return NULL;
}

/* One counter family of every live rule, by verdict: the passed and dropped
 * fields of struct sluice_rule_stats at the given offsets. */
static void render_rule_verdicts(struct render *r, const struct snapshot *s, const char *name,
				 const char *help, size_t passed_off, size_t dropped_off)
{
	static const char *const verdicts[2] = { "passed", "dropped" };
	int slot, v;

	family(r, name, "counter", help);
	for (slot = 0; slot < SLUICE_MAX_RULES; slot++)
		for (v = 0; v < 2 && s->live[slot]; v++) {
			const char *st = (const char *)&s->rstats[slot];
			__u64 val;

			memcpy(&val, st + (v ? dropped_off : passed_off), sizeof(val));
			out(r, "%s{", name);
			rule_labels(r, &s->rules[slot]);
			out(r, ",verdict=\"%s\"} %llu\n", verdicts[v], (unsigned long long)val);
		}
}

static void render_rules(struct render *r, const struct snapshot *s)
{
	int slot;

	family(r, "sluice_rule_info", "gauge",
	       "A live rule (always 1); action is drop, or count for a dry run whose dropped counts are would-have-dropped.");
	for (slot = 0; slot < SLUICE_MAX_RULES; slot++) {
		if (!s->live[slot])
			continue;
		out(r, "sluice_rule_info{");
		rule_labels(r, &s->rules[slot]);
		out(r, ",action=\"%s\"} 1\n",
		    s->rules[slot].flags & SLUICE_RULE_ACTION_COUNT ? "count" : "drop");
	}
	render_rule_verdicts(r, s, "sluice_rule_packets_total", "Packets a rule matched, by its verdict.",
			     offsetof(struct sluice_rule_stats, passed_pkts),
			     offsetof(struct sluice_rule_stats, dropped_pkts));
	render_rule_verdicts(r, s, "sluice_rule_bytes_total",
			     "Bytes (whole frames) of the packets a rule matched, by its verdict.",
			     offsetof(struct sluice_rule_stats, passed_bytes),
			     offsetof(struct sluice_rule_stats, dropped_bytes));
	family(r, "sluice_rule_limit", "gauge",
	       "A rule's configured limit, per second (conns: concurrent connections); only the limits it has.");
	for (slot = 0; slot < SLUICE_MAX_RULES; slot++) {
		const struct sluice_rule *ru = &s->rules[slot];
		struct {
			const char *kind;
			__u32 flag;
			double v;
		} lim[] = {
			{ "pps", SLUICE_RULE_HAS_PPS, (double)ru->pps },
			{ "bytes", SLUICE_RULE_HAS_BPS, (double)ru->bps / 8.0 },
			{ "conn_rate", SLUICE_RULE_HAS_CONN_RATE, (double)ru->conn_rate },
			{ "conns", SLUICE_RULE_HAS_CONNS, (double)ru->conns },
		};
		size_t i;

		if (!s->live[slot])
			continue;
		for (i = 0; i < NELEM(lim); i++) {
			if (!(ru->flags & lim[i].flag))
				continue;
			out(r, "sluice_rule_limit{");
			rule_labels(r, ru);
			out(r, ",limit=\"%s\"}", lim[i].kind);
			fval(r, lim[i].v);
		}
	}
}

static void render_counters(struct render *r, const struct snapshot *s)
{
	static const struct {
		const char *reason;
		int cnt;
	} ended[] = {
		{ "closed", SLUICE_CNT_FLOW_CLOSED },
		{ "reset", SLUICE_CNT_FLOW_RESET },
		{ "expired_half_open", SLUICE_CNT_FLOW_EXPIRED_HALF_OPEN },
		{ "expired_idle", SLUICE_CNT_FLOW_EXPIRED_IDLE },
	};
	const __u64 *c = s->cnt;
	__u64 evictions = 0;
	size_t i;

	simple(r, "sluice_packets_total", "counter", "Packets the XDP program saw.",
	       c[SLUICE_CNT_PACKETS]);
	out(r, "# HELP sluice_drops_total Packets dropped, by reason:");
	for (i = 0; i < stats_n_drop_reasons; i++)
		out(r, "%s %s (%s)", i ? "," : "", stats_drop_reasons[i].name,
		    stats_drop_reasons[i].meaning);
	out(r, ".\n# TYPE sluice_drops_total counter\n");
	for (i = 0; i < stats_n_drop_reasons; i++)
		out(r, "sluice_drops_total{reason=\"%s\"} %llu\n", stats_drop_reasons[i].name,
		    (unsigned long long)c[stats_drop_reasons[i].cnt]);
	simple(r, "sluice_malformed_packets_total", "counter",
	       "Packets that could not be parsed; passed to the kernel, not dropped.",
	       c[SLUICE_CNT_MALFORMED]);
	simple(r, "sluice_non_ip_packets_total", "counter", "Non-IP frames, passed uninspected.",
	       c[SLUICE_CNT_NON_IP]);
	simple(r, "sluice_allowed_packets_total", "counter",
	       "Packets passed by the allow list, no rule applied.", c[SLUICE_CNT_ALLOWED]);
	simple(r, "sluice_bans_issued_total", "counter", "Timed bans issued by rule escalation.",
	       c[SLUICE_CNT_BANS]);
	simple(r, "sluice_bucket_contended_total", "counter",
	       "Packets dropped because a token-bucket update lost every compare-and-swap retry.",
	       c[SLUICE_CNT_CAS_EXHAUSTED]);

	/* Per-source state (token buckets). */
	simple(r, "sluice_state_entries", "gauge", "Live entries in the per-source state table.",
	       s->nbuckets);
	simple(r, "sluice_state_entries_max", "gauge", "Size of the per-source state table.",
	       s->state_max);
	simple(r, "sluice_state_inserts_total", "counter", "Per-source state entries created.",
	       c[SLUICE_CNT_STATE_INSERT]);
	simple(r, "sluice_state_inserts_throttled_total", "counter",
	       "New sources refused an entry of their own by the insert limiter (they share the rule's overflow bucket).",
	       c[SLUICE_CNT_STATE_THROTTLED]);
	if (c[SLUICE_CNT_STATE_INSERT] > s->cfg.state_deleted + s->nbuckets)
		evictions = c[SLUICE_CNT_STATE_INSERT] - s->cfg.state_deleted - s->nbuckets;
	simple(r, "sluice_state_evictions_total", "counter",
	       "Per-source state entries the LRU evicted (inserts - deleted by rule del - live).",
	       evictions);

	/* Connection tracking. */
	simple(r, "sluice_flow_entries", "gauge", "Connections in the flow table.", s->flows);
	simple(r, "sluice_flow_entries_max", "gauge", "Size of the flow table.", s->flows_max);
	simple(r, "sluice_flows_opened_total", "counter", "Connections tracked (SYNs that opened a flow).",
	       c[SLUICE_CNT_FLOW_INSERT]);
	family(r, "sluice_flows_ended_total", "counter",
	       "Tracked connections that ended, by how: closed (FIN both ways), reset (RST), expired_half_open (handshake never completed), expired_idle (silent past the idle or FIN timeout).");
	for (i = 0; i < NELEM(ended); i++)
		out(r, "sluice_flows_ended_total{reason=\"%s\"} %llu\n", ended[i].reason,
		    (unsigned long long)c[ended[i].cnt]);
	simple(r, "sluice_flow_table_full_total", "counter",
	       "SYNs that found the flow table or the connection count table full.",
	       c[SLUICE_CNT_FLOW_FULL]);
	simple(r, "sluice_flow_sweeps_total", "counter", "Runs of the flow table sweeper.",
	       c[SLUICE_CNT_SWEEPS]);
	simple(r, "sluice_conn_count_entries", "gauge",
	       "Keys (source or rule) holding a concurrent connection count.", s->conn_keys);
	simple(r, "sluice_conn_count_entries_max", "gauge", "Size of the connection count table.",
	       s->conn_keys_max);
	simple(r, "sluice_signals_table_full_total", "counter",
	       "Backend events on ports not measured because the signals table was full.",
	       c[SLUICE_CNT_SIGNALS_FULL]);
}

/* --- backend signals ------------------------------------------------------- */

static const struct {
	const char *name, *help;
	int hist;
	int always; /* TC measures it; the others only sluice-l7 */
} hists[] = {
	{ "sluice_backend_connect_seconds", "Client SYN to server SYN-ACK, per service port.",
	  SLUICE_HIST_CONNECT, 1 },
	{ "sluice_backend_response_seconds",
	  "Request start to the first response byte, per service port.", SLUICE_HIST_RESPONSE, 1 },
	{ "sluice_backend_request_seconds",
	  "Request start to the end of the response (sluice-l7), per service port.",
	  SLUICE_HIST_TOTAL, 0 },
	{ "sluice_backend_token_seconds", "Time per output token (sluice-l7), per service port.",
	  SLUICE_HIST_PER_TOKEN, 0 },
};

static int hist_empty(const struct sluice_hist_data *h)
{
	__u32 b;

	for (b = 0; b < SLUICE_HIST_BUCKETS; b++)
		if (h->bucket[b])
			return 0;
	return 1;
}

/* The log-linear microsecond buckets as cumulative `le` buckets. Every
 * bound is an upper bucket edge, so bucket b counts toward bound L exactly
 * when its end hi <= L: a value recorded as u us was really below u + 1,
 * which is at most hi. _count is the buckets' total (the count field may run
 * one update ahead of them), so it always equals the +Inf bucket. */
static void render_hist(struct render *r, const char *name, __u32 port,
			const struct sluice_hist_data *h)
{
	__u64 cum = 0, lo, hi;
	size_t i = 0;
	__u32 b;

	for (b = 0; b < SLUICE_HIST_BUCKETS; b++) {
		hist_bucket_bounds(b, &lo, &hi);
		while (i < metrics_n_le && metrics_le_us[i] < hi) {
			out(r, "%s_bucket{port=\"%u\",le=\"", name, port);
			us_seconds(r, metrics_le_us[i]);
			out(r, "\"} %llu\n", (unsigned long long)cum);
			i++;
		}
		cum += h->bucket[b];
	}
	while (i < metrics_n_le) { /* not reached: every bound is below the last edge */
		out(r, "%s_bucket{port=\"%u\",le=\"", name, port);
		us_seconds(r, metrics_le_us[i++]);
		out(r, "\"} %llu\n", (unsigned long long)cum);
	}
	out(r, "%s_bucket{port=\"%u\",le=\"+Inf\"} %llu\n", name, port, (unsigned long long)cum);
	out(r, "%s_sum{port=\"%u\"}", name, port);
	fval(r, (double)h->sum_us / 1e6);
	out(r, "%s_count{port=\"%u\"} %llu\n", name, port, (unsigned long long)cum);
}

static void render_signals(struct render *r, const struct snapshot *s)
{
	static const struct {
		const char *name, *help;
		int sig;
	} plain[] = {
		{ "sluice_backend_connections_total", "Handshakes the backend answered (SYN-ACKs seen).",
		  SLUICE_SIG_CONNECTIONS },
		{ "sluice_backend_requests_total", "Requests started (client data on a connection).",
		  SLUICE_SIG_REQUESTS },
		{ "sluice_backend_responses_total", "Responses started (first response byte seen).",
		  SLUICE_SIG_RESPONSES },
		{ "sluice_backend_l7_rejected_total", "Requests sluice-l7 answered with 429.",
		  SLUICE_SIG_L7_429 },
	};
	static const int classes[] = { SLUICE_SIG_HTTP_1XX, SLUICE_SIG_HTTP_2XX,
				       SLUICE_SIG_HTTP_3XX, SLUICE_SIG_HTTP_4XX,
				       SLUICE_SIG_HTTP_5XX };
	static const int errors[] = { SLUICE_SIG_SERVER_RST, SLUICE_SIG_ICMP_UNREACH,
				      SLUICE_SIG_SYN_TIMEOUT, SLUICE_SIG_HTTP_5XX };
	size_t i, k;

	for (k = 0; k < NELEM(hists); k++) {
		family(r, hists[k].name, "histogram", hists[k].help);
		for (i = 0; i < s->nsignals; i++) {
			const struct sluice_hist_data *h = &s->signals[i].val.hist[hists[k].hist];

			if (hists[k].always || !hist_empty(h))
				render_hist(r, hists[k].name, s->signals[i].port, h);
		}
	}
	for (k = 0; k < NELEM(plain); k++) {
		family(r, plain[k].name, "counter", plain[k].help);
		for (i = 0; i < s->nsignals; i++)
			out(r, "%s{port=\"%u\"} %llu\n", plain[k].name, s->signals[i].port,
			    (unsigned long long)s->signals[i].val.counter[plain[k].sig]);
	}
	family(r, "sluice_backend_http_responses_total", "counter",
	       "HTTP/1.x responses by status class (1xx .. 5xx).");
	for (i = 0; i < s->nsignals; i++)
		for (k = 0; k < NELEM(classes); k++)
			out(r, "sluice_backend_http_responses_total{port=\"%u\",class=\"%zuxx\"} %llu\n",
			    s->signals[i].port, k + 1,
			    (unsigned long long)s->signals[i].val.counter[classes[k]]);
	family(r, "sluice_backend_errors_total", "counter",
	       "Backend errors by kind: server_rst (RST from the server), icmp_unreach (port unreachable sent back), syn_timeout (SYN never answered), http_5xx (also counted in sluice_backend_http_responses_total).");
	for (i = 0; i < s->nsignals; i++)
		for (k = 0; k < NELEM(errors); k++)
			out(r, "sluice_backend_errors_total{port=\"%u\",kind=\"%s\"} %llu\n",
			    s->signals[i].port, stats_signal_names[errors[k]],
			    (unsigned long long)s->signals[i].val.counter[errors[k]]);
}

/* --- adaptive controllers -------------------------------------------------- */

static void adaptive_labels(struct render *r, const struct metrics_adaptive *a)
{
	char kind[METRICS_LIMIT_KIND_LEN + 1];

	memcpy(kind, a->kind, METRICS_LIMIT_KIND_LEN);
	kind[METRICS_LIMIT_KIND_LEN] = '\0';
	out(r, "{port=\"%u\",limit=\"", a->port);
	esc(r, kind);
	out(r, "\",id=\"%u\"}", a->rule_id);
}

static void render_adaptive(struct render *r, const struct metrics_extra *x)
{
	static const struct {
		const char *name, *type, *help;
		size_t off;
	} g[] = {
		{ "sluice_adaptive_limit", "gauge",
		  "The limit the controller set (per second), or would set in shadow mode.",
		  offsetof(struct metrics_adaptive, limit) },
		{ "sluice_adaptive_limit_min", "gauge", "The controller's lower bound.",
		  offsetof(struct metrics_adaptive, min) },
		{ "sluice_adaptive_limit_max", "gauge", "The controller's upper bound.",
		  offsetof(struct metrics_adaptive, max) },
		{ "sluice_adaptive_latency_seconds", "gauge",
		  "The recent backend latency the controller acted on (NaN: no data in the window).",
		  offsetof(struct metrics_adaptive, latency_s) },
		{ "sluice_adaptive_baseline_seconds", "gauge",
		  "The controller's long-window baseline latency (NaN: none yet).",
		  offsetof(struct metrics_adaptive, baseline_s) },
		{ "sluice_adaptive_error_ratio", "gauge",
		  "Backend errors per response in the controller's window (NaN: no responses).",
		  offsetof(struct metrics_adaptive, error_ratio) },
	};
	size_t n = x ? x->n_adaptive : 0, i, k;

	for (k = 0; k < NELEM(g); k++) {
		family(r, g[k].name, g[k].type, g[k].help);
		for (i = 0; i < n; i++) {
			out(r, "%s", g[k].name);
			adaptive_labels(r, &x->adaptive[i]);
			fval(r, *(const double *)((const char *)&x->adaptive[i] + g[k].off));
		}
	}
	family(r, "sluice_adaptive_shadow", "gauge",
	       "1 if the controller runs in shadow mode (computes the limit, never writes it).");
	for (i = 0; i < n; i++) {
		out(r, "sluice_adaptive_shadow");
		adaptive_labels(r, &x->adaptive[i]);
		out(r, " %d\n", x->adaptive[i].shadow ? 1 : 0);
	}
	family(r, "sluice_adaptive_limit_changes_total", "counter",
	       "Times the controller changed the limit.");
	for (i = 0; i < n; i++) {
		out(r, "sluice_adaptive_limit_changes_total");
		adaptive_labels(r, &x->adaptive[i]);
		out(r, " %llu\n", (unsigned long long)x->adaptive[i].changes);
	}
}

/* --- global rules (fleet leases) and the store ------------------------------ */

static void fleet_labels(struct render *r, const struct sluice_rule *rule)
{
	char name[SLUICE_NAME_LEN + 1];

	memcpy(name, rule->name, SLUICE_NAME_LEN);
	name[SLUICE_NAME_LEN] = '\0';
	out(r, "{rule=\"");
	esc(r, name);
	out(r, "\",id=\"%u\"", rule->id);
}

/* One family with a sample per live global rule and limited kind: the
 * fleet-wide limit, or (lease) what this gateway enforces of it. */
static void fleet_kinds(struct render *r, const char *name, const char *help,
			const struct sluice_fleet_rule *f, const struct sluice_rule *rules,
			const int *live, int lease)
{
	__u32 slot;
	int k;

	family(r, name, "gauge", help);
	for (slot = 0; slot < SLUICE_MAX_RULES; slot++)
		for (k = 0; live[slot] && k < SLUICE_FLEET_KINDS; k++)
			if (f[slot].global[k]) {
				out(r, "%s", name);
				fleet_labels(r, &rules[slot]);
				out(r, ",kind=\"%s\"} %llu\n", lease_kind_name((enum sluice_fleet_kind)k),
				    (unsigned long long)(lease ? f[slot].lease[k] : f[slot].global[k]));
			}
}

static void render_fleet(struct render *r, const struct sluice_maps *m,
			 const struct metrics_extra *x)
{
	struct sluice_fleet_rule f[SLUICE_MAX_RULES];
	struct sluice_rule rules[SLUICE_MAX_RULES];
	int live[SLUICE_MAX_RULES] = { 0 }, any = 0;
	__u64 now = 0;
	__u32 slot;

	if (x && x->store) {
		family(r, "sluice_store_up", "gauge",
		       "1 while the store (Redis) is connected and ready, 0 while down or connecting.");
		out(r, "sluice_store_up %d\n", x->store == 1 + 2 /* STORE_UP */);
	}
	if (m->fleet < 0)
		return;
	for (slot = 0; slot < SLUICE_MAX_RULES; slot++) {
		if (bpf_map_lookup_elem(m->fleet, &slot, &f[slot]) ||
		    bpf_map_lookup_elem(m->rules, &slot, &rules[slot]))
			continue;
		if ((rules[slot].flags & SLUICE_RULE_IN_USE) && (rules[slot].flags & SLUICE_RULE_GLOBAL) &&
		    f[slot].rule_id == rules[slot].id)
			live[slot] = any = 1;
	}
	if (!any)
		return;
	now = monotonic_ns();
	fleet_kinds(r, "sluice_global_limit",
		    "A global rule's limit for the whole fleet, by kind (pps, bps, conn_rate, conns).",
		    f, rules, live, 0);
	fleet_kinds(r, "sluice_global_lease",
		    "What this gateway enforces of a global rule now: its lease, or its safe share.",
		    f, rules, live, 1);
	family(r, "sluice_global_lease_expiry_seconds", "gauge",
	       "Seconds until the lease expires (0: no live lease; the safe share applies).");
	family(r, "sluice_global_leased", "gauge",
	       "1 while a live lease from the store is enforced, 0 on the safe share or at start.");
	family(r, "sluice_global_gateways", "gauge",
	       "Gateways holding a live lease of the rule at the last answer.");
	family(r, "sluice_global_renewals_total", "counter", "Leases granted by the store.");
	family(r, "sluice_global_renewal_failures_total", "counter",
	       "Renewals that got no lease (store down, timeout, error).");
	for (slot = 0; slot < SLUICE_MAX_RULES; slot++) {
		const struct sluice_fleet_rule *e = &f[slot];
		int leased = e->source == SLUICE_LEASE_GRANTED && e->expires_ns > now;

		if (!live[slot])
			continue;
		out(r, "sluice_global_lease_expiry_seconds");
		fleet_labels(r, &rules[slot]);
		out(r, "} %.3f\n", leased ? (double)(e->expires_ns - now) / 1e9 : 0.0);
		out(r, "sluice_global_leased");
		fleet_labels(r, &rules[slot]);
		out(r, "} %d\n", leased);
		out(r, "sluice_global_gateways");
		fleet_labels(r, &rules[slot]);
		out(r, "} %u\n", e->gateways);
		out(r, "sluice_global_renewals_total");
		fleet_labels(r, &rules[slot]);
		out(r, "} %llu\n", (unsigned long long)e->renewals);
		out(r, "sluice_global_renewal_failures_total");
		fleet_labels(r, &rules[slot]);
		out(r, "} %llu\n", (unsigned long long)e->failures);
	}
}

/* --- top talkers ----------------------------------------------------------- */

static int talker_cmp(const void *a, const void *b)
{
	const struct bucket_row *x = a, *y = b;
	__u64 tx = x->val.passed_pkts + x->val.dropped_pkts;
	__u64 ty = y->val.passed_pkts + y->val.dropped_pkts;

	if (tx != ty)
		return tx < ty ? 1 : -1;
	return memcmp(&x->key, &y->key, sizeof(x->key)); /* a stable order between scrapes */
}

static void source_label(struct render *r, const struct sluice_bucket_key *k)
{
	char buf[PREFIX_STRLEN];
	struct prefix p = { .family = k->family, .len = k->prefix_len };

	if (k->family == SLUICE_AF_NONE) {
		out(r, "%s", k->prefix_len == SLUICE_OVERFLOW_PREFIX ? "overflow" : "rule");
		return;
	}
	memcpy(p.addr, k->addr, sizeof(p.addr));
	esc(r, prefix_str(&p, buf, sizeof(buf)));
}

static void talker_labels(struct render *r, const struct snapshot *s, const struct bucket_row *t)
{
	const struct sluice_rule *ru = rule_by_id(s, t->key.rule_id);

	out(r, "{source=\"");
	source_label(r, &t->key);
	out(r, "\",");
	if (ru)
		rule_labels(r, ru);
	else /* deleted since: its buckets age out of the LRU */
		out(r, "rule=\"%u\",id=\"%u\"", t->key.rule_id, t->key.rule_id);
}

static void render_top(struct render *r, struct snapshot *s, const struct metrics_extra *x)
{
	size_t n = x && x->top_n ? x->top_n : METRICS_TOP_DEFAULT, i;

	if (n > METRICS_TOP_MAX)
		n = METRICS_TOP_MAX;
	if (n > s->nbuckets)
		n = s->nbuckets;
	if (s->nbuckets) /* else buckets may be NULL */
		qsort(s->buckets, s->nbuckets, sizeof(*s->buckets), talker_cmp);
	family(r, "sluice_top_source_packets_total", "counter",
	       "Packets of the heaviest sources (by packets, per rule) by verdict; a source that leaves the top N loses its series. source is the masked prefix, or rule (a rule-wide bucket) or overflow (new sources the insert limiter refused).");
	for (i = 0; i < n; i++) {
		out(r, "sluice_top_source_packets_total");
		talker_labels(r, s, &s->buckets[i]);
		out(r, ",verdict=\"passed\"} %llu\n", (unsigned long long)s->buckets[i].val.passed_pkts);
		out(r, "sluice_top_source_packets_total");
		talker_labels(r, s, &s->buckets[i]);
		out(r, ",verdict=\"dropped\"} %llu\n",
		    (unsigned long long)s->buckets[i].val.dropped_pkts);
	}
	family(r, "sluice_top_source_bytes_total", "counter",
	       "Bytes of the same heaviest sources, by verdict.");
	for (i = 0; i < n; i++) {
		out(r, "sluice_top_source_bytes_total");
		talker_labels(r, s, &s->buckets[i]);
		out(r, ",verdict=\"passed\"} %llu\n",
		    (unsigned long long)s->buckets[i].val.passed_bytes);
		out(r, "sluice_top_source_bytes_total");
		talker_labels(r, s, &s->buckets[i]);
		out(r, ",verdict=\"dropped\"} %llu\n",
		    (unsigned long long)s->buckets[i].val.dropped_bytes);
	}
}

int metrics_render(const struct sluice_maps *m, const struct metrics_extra *x,
		   struct buf *b)
{
	struct snapshot *s = calloc(1, sizeof(*s));
	struct render r = { .b = b };

	if (!s)
		return -ENOMEM;
	r.err = take_snapshot(m, s);
	if (!r.err) {
		render_counters(&r, s);
		render_rules(&r, s);
		render_signals(&r, s);
		render_adaptive(&r, x);
		render_fleet(&r, m, x);
		render_top(&r, s, x);
	}
	free_snapshot(s);
	free(s);
	return r.err;
}
