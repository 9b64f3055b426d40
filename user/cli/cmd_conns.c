// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* conns and signals: what connection tracking sees, read from the maps
 * twice, an interval apart, for the rates. Read-only, no lock. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "cli.h"
#include "hist.h"
#include "json.h"
#include "log.h"
#include "opts.h"
#include "parse.h"
#include "policy.h"
#include "prefix.h"
#include "stats.h"

#define DEFAULT_INTERVAL_MS 1000
#define MAX_INTERVAL_MS 3600000

/* conns and signals: --count (conns only), --interval, --json. */
struct watch_opts {
	__u64 count, interval;
	int json;
};

static const struct cli_opt conns_options[] = {
	{ .name = "count", .kind = CLI_U64, .off = offsetof(struct watch_opts, count),
	  .arg = "N", .min = 1, .max = 100000, .help = "keys to show (default 20)" },
	{ .name = "interval", .kind = CLI_U64, .off = offsetof(struct watch_opts, interval),
	  .arg = "MS", .min = 0, .max = MAX_INTERVAL_MS,
	  .help = "sample the counts this far apart for the rates (default 1000); "
		  "0 reads once: no rates ('-', and 0 in JSON)" },
	{ .name = "json", .short_name = 'j', .kind = CLI_FLAG,
	  .off = offsetof(struct watch_opts, json),
	  .help = "{\"interval_ms\", \"flows\": {\"entries\", \"max\"}, \"keys\": [{\"rule_id\", "
		  "\"rule\", \"key\", \"conns\", \"opened\", \"refused\", \"conn_rate\"}]}" },
	{ .name = NULL },
};

const struct cli_cmd conns_cmd = {
	"conns", NULL, 0, 0,
	"The limit keys holding the most concurrent TCP connections, most first: for\n"
	"each, the rule it belongs to, the key (the source prefix masked as the rule's\n"
	"mask4/mask6 say, or 'rule' for a rule-wide key), the connections it holds\n"
	"now, the new connections per second it admitted over the interval, and the\n"
	"totals it admitted and refused since it was created. A key exists for every\n"
	"source that opened a connection under a rule with a 'conns' limit, until it\n"
	"has held none for a while. The first line shows how full the flow table is.\n",
	conns_options,
};

static const struct cli_opt signals_options[] = {
	{ .name = "interval", .kind = CLI_U64, .off = offsetof(struct watch_opts, interval),
	  .arg = "MS", .min = 0, .max = MAX_INTERVAL_MS,
	  .help = "sample the counters this far apart for the rates (default 1000); "
		  "0 reads once: no rates (0 in JSON)" },
	{ .name = "json", .short_name = 'j', .kind = CLI_FLAG,
	  .off = offsetof(struct watch_opts, json),
	  .help = "{\"interval_ms\", \"services\": [{\"port\", \"connect\", \"response\", "
		  "\"total\", \"per_token\", \"conns_per_s\", \"requests_per_s\", "
		  "\"counters\": {...}}]}; each latency is {\"count\", \"mean_ms\", "
		  "\"p50_ms\", \"p90_ms\", \"p99_ms\"}, null percentiles for count 0" },
	{ .name = NULL },
};

const struct cli_cmd signals_cmd = {
	"signals", NULL, 0, 0,
	"How the backends behind each service port are doing, measured passively from\n"
	"the traffic (needs the TC egress program: not on interfaces attached with\n"
	"--no-tc). Per port:\n"
	"\n"
	"  connect    client SYN to server SYN-ACK\n"
	"  response   start of a request to the first byte of its response\n"
	"  total      start of a request to the end of its response (sluice-l7)\n"
	"  per_token  time per output token (sluice-l7)\n"
	"\n"
	"each as a count and the mean, p50, p90 and p99 in milliseconds since the\n"
	"port was first seen (percentiles within 9.4%, typically far better; none\n"
	"when nothing was measured); connections and requests per second over the\n"
	"interval; and the counters: server RSTs, ICMP unreachables sent back, SYNs\n"
	"that got no SYN-ACK, and the status classes of plaintext HTTP/1.x responses.\n",
	signals_options,
};

static int open_ro(const char *what, struct sluice_maps *m, struct policy *p)
{
	if (need_root(what))
		return -1;
	if (maps_open_pinned(m))
		return -1;
	if (p && policy_load(p, m)) {
		maps_close(m);
		return -1;
	}
	return 0;
}

/* Sleeps the interval; returns the seconds that really passed. */
static double wait_interval(__u64 ms)
{
	struct timespec ts = { .tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000L };
	__u64 t0 = monotonic_ns();

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
	return (double)(monotonic_ns() - t0) / 1e9;
}

/* --- conns ---------------------------------------------------------------- */

struct conn_key_row {
	struct conn_row r;
	double rate;
};

static int key_cmp(const void *a, const void *b)
{
	return memcmp(&((const struct conn_row *)a)->key, &((const struct conn_row *)b)->key,
		      sizeof(struct sluice_bucket_key));
}

static int conns_rank_cmp(const void *a, const void *b)
{
	const struct conn_key_row *x = a, *y = b;

	if (x->r.val.count != y->r.val.count)
		return x->r.val.count < y->r.val.count ? 1 : -1;
	if (x->rate != y->rate)
		return x->rate < y->rate ? 1 : -1;
	if (x->r.val.opened != y->r.val.opened)
		return x->r.val.opened < y->r.val.opened ? 1 : -1;
	return key_cmp(&x->r, &y->r);
}

static void print_conns(const struct policy *p, const struct conn_key_row *k, size_t n,
			__u64 entries, __u32 max, __u64 interval)
{
	char key[PREFIX_STRLEN];
	size_t i;

	if (cli.json) {
		struct json j;

		json_init(&j, stdout);
		json_obj_begin(&j, NULL);
		json_u64(&j, "interval_ms", interval);
		json_obj_begin(&j, "flows");
		json_u64(&j, "entries", entries);
		json_u64(&j, "max", max);
		json_obj_end(&j);
		json_arr_begin(&j, "keys");
		for (i = 0; i < n; i++) {
			json_obj_begin(&j, NULL);
			json_u64(&j, "rule_id", k[i].r.key.rule_id);
			json_str(&j, "rule", policy_rule_name(p, k[i].r.key.rule_id));
			json_str(&j, "key", stats_key_str(&k[i].r.key, key, sizeof(key)));
			json_u64(&j, "conns", k[i].r.val.count);
			json_u64(&j, "opened", k[i].r.val.opened);
			json_u64(&j, "refused", k[i].r.val.refused);
			json_f64(&j, "conn_rate", k[i].rate);
			json_obj_end(&j);
		}
		json_arr_end(&j);
		json_obj_end(&j);
		json_end(&j);
		return;
	}
	printf("flow table: %llu of %u entries\n", (unsigned long long)entries, max);
	printf("%-5s %-16s %-44s %8s %10s %12s %12s\n", "RULE", "NAME", "KEY", "CONNS", "NEW/s",
	       "OPENED", "REFUSED");
	for (i = 0; i < n; i++) {
		const char *name = policy_rule_name(p, k[i].r.key.rule_id);
		char rate[32];

		if (interval)
			snprintf(rate, sizeof(rate), "%.1f", k[i].rate);
		else
			snprintf(rate, sizeof(rate), "-");
		printf("%-5u %-16s %-44s %8llu %10s %12llu %12llu\n", k[i].r.key.rule_id,
		       name[0] ? name : "-", stats_key_str(&k[i].r.key, key, sizeof(key)),
		       (unsigned long long)k[i].r.val.count, rate,
		       (unsigned long long)k[i].r.val.opened, (unsigned long long)k[i].r.val.refused);
	}
}

int cmd_conns(int argc, char **argv)
{
	struct conn_row *before = NULL, *now = NULL;
	struct conn_key_row *keys = NULL;
	size_t nbefore = 0, nnow = 0, i;
	struct watch_opts o = { .count = 20, .interval = DEFAULT_INTERVAL_MS };
	__u64 count, interval, entries = 0;
	__u32 max = 0;
	struct sluice_maps m;
	struct policy p;
	double secs = 0;
	int err;

	err = cli_parse(&conns_cmd, argc, argv, &o, NULL);
	if (err < 0)
		return err == CLI_HELP ? 0 : EXIT_USAGE;
	cli.json = o.json;
	count = o.count;
	interval = o.interval;
	if (open_ro("conns", &m, &p))
		return 1;
	err = 0;
	if (interval) {
		err = stats_conns(&m, &before, &nbefore);
		if (!err) {
			qsort(before, nbefore, sizeof(*before), key_cmp);
			secs = wait_interval(interval);
		}
	}
	if (!err)
		err = stats_conns(&m, &now, &nnow);
	if (!err)
		err = stats_map_fill(m.flows, &entries, &max);
	if (!err) {
		keys = calloc(nnow ? nnow : 1, sizeof(*keys));
		if (!keys)
			err = -ENOMEM;
	}
	if (err) {
		pr_err("conns: reading the connection counts failed: %s", strerror(-err));
		goto out;
	}
	for (i = 0; i < nnow; i++) {
		keys[i].r = now[i];
		if (interval) {
			const struct conn_row *old = bsearch(&now[i], before, nbefore,
							     sizeof(*before), key_cmp);
			__u64 d = now[i].val.opened;

			/* A key created within the interval, or reclaimed
			 * and created again, opened all it shows since. */
			if (old && old->val.opened <= d)
				d -= old->val.opened;
			keys[i].rate = secs > 0 ? (double)d / secs : 0;
		}
	}
	qsort(keys, nnow, sizeof(*keys), conns_rank_cmp);
	print_conns(&p, keys, nnow < count ? nnow : count, entries, max, interval);
out:
	free(keys);
	free(before);
	free(now);
	policy_free(&p);
	maps_close(&m);
	return err ? 1 : 0;
}

/* --- signals -------------------------------------------------------------- */

static void json_latency(struct json *j, const char *key, const struct sluice_hist_data *h)
{
	struct hist_summary s;

	hist_summarize(h, &s);
	json_obj_begin(j, key);
	json_u64(j, "count", s.count);
	if (s.count) {
		json_f64(j, "mean_ms", s.mean_ms);
		json_f64(j, "p50_ms", s.p50_ms);
		json_f64(j, "p90_ms", s.p90_ms);
		json_f64(j, "p99_ms", s.p99_ms);
	} else {
		json_null(j, "mean_ms");
		json_null(j, "p50_ms");
		json_null(j, "p90_ms");
		json_null(j, "p99_ms");
	}
	json_obj_end(j);
}

static void text_latency(const char *name, const struct sluice_hist_data *h)
{
	struct hist_summary s;

	hist_summarize(h, &s);
	if (!s.count) {
		printf("  %-10s %10s\n", name, "-");
		return;
	}
	printf("  %-10s %10llu %10.3f %10.3f %10.3f %10.3f\n", name, (unsigned long long)s.count,
	       s.mean_ms, s.p50_ms, s.p90_ms, s.p99_ms);
}

static __u64 delta(__u64 now, __u64 then)
{
	return now >= then ? now - then : now; /* recreated: all of it is new */
}

static void print_signals(const struct signal_row *now, size_t n,
			  const struct signal_row *before, size_t nbefore, double secs,
			  __u64 interval)
{
	struct json j;
	size_t i, b = 0;
	int c, h;

	if (cli.json) {
		json_init(&j, stdout);
		json_obj_begin(&j, NULL);
		json_u64(&j, "interval_ms", interval);
		json_arr_begin(&j, "services");
	}
	for (i = 0; i < n; i++) {
		const struct sluice_signals *v = &now[i].val;
		__u64 dconn = 0, dreq = 0;
		double conns_s = 0, req_s = 0;

		/* Both snapshots are in port order. */
		while (b < nbefore && before[b].port < now[i].port)
			b++;
		if (interval) {
			const struct sluice_signals *o = b < nbefore && before[b].port == now[i].port
							 ? &before[b].val : NULL;

			dconn = delta(v->counter[SLUICE_SIG_CONNECTIONS],
				      o ? o->counter[SLUICE_SIG_CONNECTIONS] : 0);
			dreq = delta(v->counter[SLUICE_SIG_REQUESTS],
				     o ? o->counter[SLUICE_SIG_REQUESTS] : 0);
			if (secs > 0) {
				conns_s = (double)dconn / secs;
				req_s = (double)dreq / secs;
			}
		}
		if (cli.json) {
			json_obj_begin(&j, NULL);
			json_u64(&j, "port", now[i].port);
			for (h = 0; h < SLUICE_HISTS; h++)
				json_latency(&j, stats_hist_names[h], &v->hist[h]);
			json_f64(&j, "conns_per_s", conns_s);
			json_f64(&j, "requests_per_s", req_s);
			json_obj_begin(&j, "counters");
			for (c = 0; c < SLUICE_SIG_MAX; c++)
				json_u64(&j, stats_signal_names[c], v->counter[c]);
			json_obj_end(&j);
			json_obj_end(&j);
			continue;
		}
		printf("%sport %u", i ? "\n" : "", now[i].port);
		if (interval)
			printf(": %.1f connections/s, %.1f requests/s", conns_s, req_s);
		printf("\n  %-10s %10s %10s %10s %10s %10s\n", "LATENCY", "COUNT", "MEAN_MS",
		       "P50_MS", "P90_MS", "P99_MS");
		for (h = 0; h < SLUICE_HISTS; h++)
			text_latency(stats_hist_names[h], &v->hist[h]);
		printf("  connections %llu, requests %llu, responses %llu\n",
		       (unsigned long long)v->counter[SLUICE_SIG_CONNECTIONS],
		       (unsigned long long)v->counter[SLUICE_SIG_REQUESTS],
		       (unsigned long long)v->counter[SLUICE_SIG_RESPONSES]);
		printf("  errors: server_rst %llu, icmp_unreach %llu, syn_timeout %llu, l7_429 %llu\n",
		       (unsigned long long)v->counter[SLUICE_SIG_SERVER_RST],
		       (unsigned long long)v->counter[SLUICE_SIG_ICMP_UNREACH],
		       (unsigned long long)v->counter[SLUICE_SIG_SYN_TIMEOUT],
		       (unsigned long long)v->counter[SLUICE_SIG_L7_429]);
		printf("  http: 1xx %llu, 2xx %llu, 3xx %llu, 4xx %llu, 5xx %llu\n",
		       (unsigned long long)v->counter[SLUICE_SIG_HTTP_1XX],
		       (unsigned long long)v->counter[SLUICE_SIG_HTTP_2XX],
		       (unsigned long long)v->counter[SLUICE_SIG_HTTP_3XX],
		       (unsigned long long)v->counter[SLUICE_SIG_HTTP_4XX],
		       (unsigned long long)v->counter[SLUICE_SIG_HTTP_5XX]);
	}
	if (cli.json) {
		json_arr_end(&j);
		json_obj_end(&j);
		json_end(&j);
	} else if (!n) {
		printf("no service seen yet (signals need TC egress: see sluice status)\n");
	}
}

int cmd_signals(int argc, char **argv)
{
	struct signal_row *before = NULL, *now = NULL;
	size_t nbefore = 0, nnow = 0;
	struct watch_opts o = { .interval = DEFAULT_INTERVAL_MS };
	__u64 interval;
	struct sluice_maps m;
	double secs = 0;
	int err;

	err = cli_parse(&signals_cmd, argc, argv, &o, NULL);
	if (err < 0)
		return err == CLI_HELP ? 0 : EXIT_USAGE;
	cli.json = o.json;
	interval = o.interval;
	err = 0;
	if (open_ro("signals", &m, NULL))
		return 1;
	if (interval) {
		err = stats_signals(&m, &before, &nbefore);
		if (!err)
			secs = wait_interval(interval);
	}
	if (!err)
		err = stats_signals(&m, &now, &nnow);
	if (err)
		pr_err("signals: reading the signals map failed: %s", strerror(-err));
	else
		print_signals(now, nnow, before, nbefore, secs, interval);
	free(before);
	free(now);
	maps_close(&m);
	return err ? 1 : 0;
}
