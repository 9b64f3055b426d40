// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * l7_metrics.c - sluice-l7's Prometheus exposition, served on its own
 * loopback endpoint by the same scrape server as the daemon's
 * (metrics_http.c). docs/metrics.md lists the families.
 */
#include <errno.h>
#include <stdio.h>
#include "l7.h"

static const char *const outcome_names[OUT_MAX] = {
	[OUT_PROXIED] = "proxied",          [OUT_LIMITED] = "limited",
	[OUT_QUEUE_FULL] = "queue_full",    [OUT_QUEUE_TIMEOUT] = "queue_timeout",
	[OUT_OVERLOAD] = "overload",        [OUT_BAD_REQUEST] = "bad_request",
	[OUT_UPSTREAM_ERR] = "upstream_error", [OUT_UNAUTHORIZED] = "unauthorized",
	[OUT_TOO_LARGE] = "too_large",
};

static const char *const uperr_names[UPERR_MAX] = { "connect", "reset", "timeout", "malformed",
						     "tls" };

static int family(struct buf *o, const char *name, const char *type, const char *help)
{
	return buf_printf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static int tier_label(struct buf *o, const struct l7 *l, unsigned int t)
{
	int err = buf_printf(o, "tier=\"");

	err |= metrics_label_escape(o, l->cfg.tiers[t].name);
	err |= buf_printf(o, "\"");
	return err;
}

/* With a store: its health and what was decided where (docs/fleet.md). */
static int store_metrics(struct buf *o, const struct l7 *l)
{
	const struct store_stats *ss = store_stats(l->store);
	const struct l7_stats *st = &l->st;
	int err = 0;

	err |= family(o, "sluice_store_up", "gauge",
		      "1 when the store is up (limits fleet-wide), 0 when the limits are local.");
	err |= buf_printf(o, "sluice_store_up %d\n", store_state(l->store) == STORE_UP);
	err |= family(o, "sluice_store_requests_total", "counter",
		      "Script calls sent to the store.");
	err |= buf_printf(o, "sluice_store_requests_total %llu\n",
			  (unsigned long long)ss->requests);
	err |= family(o, "sluice_store_failures_total", "counter",
		      "Store calls that failed, by kind (error: an error reply or the wrong type; "
		      "timeout; not_connected).");
	err |= buf_printf(o, "sluice_store_failures_total{kind=\"error\"} %llu\n",
			  (unsigned long long)ss->errors);
	err |= buf_printf(o, "sluice_store_failures_total{kind=\"timeout\"} %llu\n",
			  (unsigned long long)ss->timeouts);
	err |= buf_printf(o, "sluice_store_failures_total{kind=\"not_connected\"} %llu\n",
			  (unsigned long long)ss->not_connected);
	err |= family(o, "sluice_store_connects_total", "counter",
		      "Connections to the store made (the handshake done or not).");
	err |= buf_printf(o, "sluice_store_connects_total %llu\n", (unsigned long long)ss->connects);
	err |= family(o, "sluice_store_rtt_seconds", "gauge",
		      "The last reply's round trip.");
	err |= buf_printf(o, "sluice_store_rtt_seconds %.6f\n", (double)ss->last_rtt_us / 1e6);
	err |= family(o, "sluice_l7_store_instances", "gauge",
		      "Live sluice-l7 instances at the last l7_hello (the local share divides "
		      "by it).");
	err |= buf_printf(o, "sluice_l7_store_instances %u\n", l->fleet_live);
	err |= family(o, "sluice_l7_store_decisions_total", "counter",
		      "Rate and slot decisions by where they were made: store, or local (the "
		      "store was not up or the call failed).");
	for (unsigned int t = 0; t < l->cfg.n_tiers; t++) {
		err |= buf_printf(o, "sluice_l7_store_decisions_total{");
		err |= tier_label(o, l, t);
		err |= buf_printf(o, ",where=\"store\"} %llu\n",
				  (unsigned long long)st->fleet_decided[t]);
		err |= buf_printf(o, "sluice_l7_store_decisions_total{");
		err |= tier_label(o, l, t);
		err |= buf_printf(o, ",where=\"local\"} %llu\n",
				  (unsigned long long)st->fleet_local[t]);
	}
	err |= family(o, "sluice_l7_store_settles_total", "counter",
		      "l7_settle calls answered (reconciles and refunds).");
	err |= buf_printf(o, "sluice_l7_store_settles_total %llu\n",
			  (unsigned long long)st->fleet_settles);
	err |= family(o, "sluice_l7_store_renew_failures_total", "counter",
		      "Slot renewals and releases that failed (the slot then ends at its deadline).");
	err |= buf_printf(o, "sluice_l7_store_renew_failures_total %llu\n",
			  (unsigned long long)st->fleet_renew_fail);
	return err;
}

/* Addresses, resolutions and TLS handshakes, per backend. */
static int backend_addr_metrics(struct buf *o, const struct l7 *l)
{
	int err = 0;

	err |= family(o, "sluice_l7_backend_addresses", "gauge",
		      "Addresses in use for the backend (every address of its name).");
	for (unsigned int b = 0; b < l->n_backends; b++)
		err |= buf_printf(o, "sluice_l7_backend_addresses{backend=\"%s\"} %u\n",
				  l->backends[b].name, l->backends[b].n_addrs);
	err |= family(o, "sluice_l7_backend_resolutions_total", "counter",
		      "Lookups of a backend's host name, by result (a failed one keeps the "
		      "addresses).");
	for (unsigned int b = 0; b < l->n_backends; b++) {
		const struct backend *be = &l->backends[b];

		if (l->cfg.backends[b].url.kind != URL_HOST_NAME)
			continue;
		err |= buf_printf(o, "sluice_l7_backend_resolutions_total{backend=\"%s\","
				  "result=\"ok\"} %llu\n", be->name,
				  (unsigned long long)be->resolutions_ok);
		err |= buf_printf(o, "sluice_l7_backend_resolutions_total{backend=\"%s\","
				  "result=\"failed\"} %llu\n", be->name,
				  (unsigned long long)be->resolutions_failed);
	}
	err |= family(o, "sluice_l7_tls_handshakes_total", "counter",
		      "TLS handshakes with https backends: ok (full), resumed (a session "
		      "reused), failed.");
	for (unsigned int b = 0; b < l->n_backends; b++) {
		const struct backend *be = &l->backends[b];
		struct tls_stats ts;

		if (!be->tls)
			continue;
		tls_ctx_stats(be->tls, &ts);
		err |= buf_printf(o, "sluice_l7_tls_handshakes_total{backend=\"%s\",result=\"ok\"} "
				  "%llu\n", be->name, (unsigned long long)(ts.handshakes - ts.resumed));
		err |= buf_printf(o, "sluice_l7_tls_handshakes_total{backend=\"%s\","
				  "result=\"resumed\"} %llu\n", be->name,
				  (unsigned long long)ts.resumed);
		err |= buf_printf(o, "sluice_l7_tls_handshakes_total{backend=\"%s\","
				  "result=\"failed\"} %llu\n", be->name, (unsigned long long)ts.failed);
	}
	return err;
}

int l7_metrics_render(struct buf *o, void *arg)
{
	const struct l7 *l = arg;
	const struct l7_stats *st = &l->st;
	unsigned int nt = l->cfg.n_tiers;
	int err = 0;

	err |= family(o, "sluice_l7_requests_total", "counter",
		      "Requests by tier and outcome (proxied, limited, queue_full, queue_timeout, "
		      "overload, bad_request, upstream_error, unauthorized, too_large).");
	for (unsigned int t = 0; t < nt; t++)
		for (int k = 0; k < OUT_MAX; k++) {
			err |= buf_printf(o, "sluice_l7_requests_total{");
			err |= tier_label(o, l, t);
			err |= buf_printf(o, ",outcome=\"%s\"} %llu\n", outcome_names[k],
					     (unsigned long long)st->outcomes[t][k]);
		}

	err |= family(o, "sluice_l7_responses_total", "counter",
		      "Responses sent to clients by tier and status class, the backends' and "
		      "sluice-l7's own.");
	for (unsigned int t = 0; t < nt; t++)
		for (int k = 1; k <= 5; k++) {
			err |= buf_printf(o, "sluice_l7_responses_total{");
			err |= tier_label(o, l, t);
			err |= buf_printf(o, ",class=\"%dxx\"} %llu\n", k,
					     (unsigned long long)st->responses[t][k]);
		}

	err |= family(o, "sluice_l7_rejections_total", "counter",
		      "429 answers by tier and the limit that refused.");
	err |= family(o, "sluice_l7_shadow_rejections_total", "counter",
		      "Requests of shadow tiers that a limit would have refused or queued.");
	for (int which = 0; which < 2; which++)
		for (unsigned int t = 0; t < nt; t++)
			for (int r = 1; r < LIM_REASONS; r++) {
				err |= buf_printf(o, "%s{", which ? "sluice_l7_shadow_rejections_total"
								     : "sluice_l7_rejections_total");
				err |= tier_label(o, l, t);
				err |= buf_printf(o, ",limit=\"%s\"} %llu\n",
						     lim_reason_name((enum lim_reason)r),
						     (unsigned long long)(which ? st->shadow[t][r]
										: st->limited[t][r]));
			}

	err |= family(o, "sluice_l7_tokens_total", "counter",
		      "LLM tokens by tier and direction: the backends' usage counts where they "
		      "gave one, the estimate where not.");
	err |= family(o, "sluice_l7_tokens_estimated_total", "counter",
		      "LLM tokens estimated at admission (output: the reservation).");
	for (unsigned int t = 0; t < nt; t++) {
		err |= buf_printf(o, "sluice_l7_tokens_total{");
		err |= tier_label(o, l, t);
		err |= buf_printf(o, ",direction=\"input\"} %llu\n",
				     (unsigned long long)st->tokens_in[t]);
		err |= buf_printf(o, "sluice_l7_tokens_total{");
		err |= tier_label(o, l, t);
		err |= buf_printf(o, ",direction=\"output\"} %llu\n",
				     (unsigned long long)st->tokens_out[t]);
		err |= buf_printf(o, "sluice_l7_tokens_estimated_total{");
		err |= tier_label(o, l, t);
		err |= buf_printf(o, ",direction=\"input\"} %llu\n",
				     (unsigned long long)st->estimated_in[t]);
		err |= buf_printf(o, "sluice_l7_tokens_estimated_total{");
		err |= tier_label(o, l, t);
		err |= buf_printf(o, ",direction=\"output\"} %llu\n",
				     (unsigned long long)st->estimated_out[t]);
	}
	err |= family(o, "sluice_l7_usage_reconciled_total", "counter",
		      "LLM responses whose usage count replaced the estimate.");
	for (unsigned int t = 0; t < nt; t++) {
		err |= buf_printf(o, "sluice_l7_usage_reconciled_total{");
		err |= tier_label(o, l, t);
		err |= buf_printf(o, "} %llu\n", (unsigned long long)st->reconciled[t]);
	}

	err |= family(o, "sluice_l7_unserved_refunds_total", "counter",
		      "Admitted requests answered with sluice-l7's own 5xx (no backend, a failed "
		      "connect or exchange, overload): their request and token charges refunded.");
	for (unsigned int t = 0; t < nt; t++) {
		err |= buf_printf(o, "sluice_l7_unserved_refunds_total{");
		err |= tier_label(o, l, t);
		err |= buf_printf(o, "} %llu\n", (unsigned long long)st->unserved_refunds[t]);
	}

	err |= family(o, "sluice_l7_tier_in_flight", "gauge", "Requests at a backend, by tier.");
	for (unsigned int t = 0; t < nt; t++) {
		const struct lim_state *s = limiter_tier_state(l->lim, t);

		err |= buf_printf(o, "sluice_l7_tier_in_flight{");
		err |= tier_label(o, l, t);
		err |= buf_printf(o, "} %u\n", s ? s->inflight : 0);
	}
	err |= family(o, "sluice_l7_queue_length", "gauge", "Requests waiting for a slot.");
	err |= buf_printf(o, "sluice_l7_queue_length %u\n", l->wq.len);
	err |= family(o, "sluice_l7_queued_total", "counter", "Requests that had to wait.");
	err |= buf_printf(o, "sluice_l7_queued_total %llu\n",
			     (unsigned long long)st->queued_total);
	err |= family(o, "sluice_l7_backend_in_flight", "gauge",
		      "Requests at the backends, all tiers.");
	err |= buf_printf(o, "sluice_l7_backend_in_flight %u\n", l->backend_inflight);
	err |= family(o, "sluice_l7_callers", "gauge", "Callers (keys and addresses) tracked.");
	err |= buf_printf(o, "sluice_l7_callers %u\n", limiter_n_callers(l->lim));
	err |= family(o, "sluice_l7_client_connections", "gauge", "Open client connections.");
	err |= buf_printf(o, "sluice_l7_client_connections %u\n", l->n_clients);
	err |= family(o, "sluice_l7_client_connections_refused_total", "counter",
		      "Connections closed at once because max-clients were open.");
	err |= buf_printf(o, "sluice_l7_client_connections_refused_total %llu\n",
			     (unsigned long long)st->refused_conns);

	err |= family(o, "sluice_l7_bad_requests_total", "counter",
		      "Requests refused as malformed, too large or too slow, by status.");
	for (int s = 400; s < 600; s++)
		if (st->bad_requests[s])
			err |= buf_printf(o, "sluice_l7_bad_requests_total{code=\"%d\"} %llu\n", s,
					     (unsigned long long)st->bad_requests[s]);

	err |= family(o, "sluice_l7_backend_up", "gauge",
		      "1 when the backend is in rotation, 0 while it rests after failures.");
	err |= family(o, "sluice_l7_backend_requests_total", "counter", "Requests sent, by backend.");
	err |= family(o, "sluice_l7_backend_failures_total", "counter",
		      "Connect failures, resets, timeouts and malformed responses, by backend.");
	for (unsigned int b = 0; b < l->n_backends; b++) {
		const struct backend *be = &l->backends[b];
		int up = 0;

		for (unsigned int a = 0; a < be->n_addrs; a++)
			up |= be->addrs[a].down_until_ns <= loop_now(l->loop);
		err |= buf_printf(o, "sluice_l7_backend_up{backend=\"%s\"} %d\n", be->name, up);
		err |= buf_printf(o, "sluice_l7_backend_requests_total{backend=\"%s\"} %llu\n",
				     be->name, (unsigned long long)be->requests_total);
		err |= buf_printf(o, "sluice_l7_backend_failures_total{backend=\"%s\"} %llu\n",
				     be->name, (unsigned long long)be->failures_total);
	}
	err |= backend_addr_metrics(o, l);
	err |= prov_metrics(o, l);
	err |= family(o, "sluice_l7_upstream_errors_total", "counter",
		      "Failed backend exchanges by kind.");
	for (int k = 0; k < UPERR_MAX; k++)
		err |= buf_printf(o, "sluice_l7_upstream_errors_total{kind=\"%s\"} %llu\n",
				     uperr_names[k], (unsigned long long)st->upstream_errors[k]);
	err |= family(o, "sluice_l7_retries_total", "counter",
		      "Requests resent on a new connection after a pooled one was found closed.");
	err |= buf_printf(o, "sluice_l7_retries_total %llu\n", (unsigned long long)st->retries);
	err |= family(o, "sluice_l7_bans_total", "counter",
		      "Client addresses put on the XDP deny list for repeated 429s.");
	err |= buf_printf(o, "sluice_l7_bans_total %llu\n", (unsigned long long)st->bans);
	err |= family(o, "sluice_l7_signal_events_total", "counter",
		      "Measurements written to the kernel's signal maps, and dropped (no maps).");
	err |= buf_printf(o, "sluice_l7_signal_events_total{result=\"written\"} %llu\n",
			     (unsigned long long)(l->kern ? l7_kernel_flushed(l->kern) : 0));
	err |= buf_printf(o, "sluice_l7_signal_events_total{result=\"dropped\"} %llu\n",
			     (unsigned long long)(l->kern ? l7_kernel_dropped(l->kern) : 0));
	if (l->store)
		err |= store_metrics(o, l);
	return err ? -E2BIG : 0;
}
