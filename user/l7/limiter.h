/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * limiter.h - sluice-l7's admission policy, without I/O: token buckets for
 * requests and tokens per period, per caller and per tier, concurrency
 * counts, reservations reconciled after the response, the values of the
 * x-ratelimit-* headers, and the 429 strikes that escalate a client address
 * to the XDP deny list. Time is a parameter (CLOCK_MONOTONIC ns), so the
 * tests drive it.
 *
 * A bucket holds at most `burst` units and refills at rate/period. A cost c
 * is admitted when the level is at least min(c, burst); the level then
 * drops by c and may go below zero. So a request larger than the burst
 * still passes once the bucket is full, and the limit is overshot by at
 * most one request's cost, never more: over any time T the admitted units
 * are at most burst + rate*T/period + one cost. (sluice-l7 refuses a
 * request whose tokens exceed a tpm burst before it gets here, admit.c:
 * such a request would leave the bucket in debt for minutes.)
 */
#ifndef SLUICE_L7_LIMITER_H
#define SLUICE_L7_LIMITER_H

#include <stddef.h>
#include <stdint.h>
#include "l7_config.h"

struct bucket {
	double level;            /* units available now; may be negative */
	uint64_t at_ns;          /* when level was computed */
};

/* Refills b to now for limit l over period_ns, then: 0 and the level taken
 * when admitted, else the ns until it would be (cost stays untaken). l->rate
 * 0 admits everything. */
uint64_t bucket_take(struct bucket *b, const struct l7_limit *l, uint64_t period_ns,
		     uint64_t now, double cost);
/* Adds (refund, delta < 0 charges) units after the fact; never above burst. */
void bucket_adjust(struct bucket *b, const struct l7_limit *l, uint64_t period_ns,
		   uint64_t now, double delta);
/* Whole units available now (0 when negative), and ns until full. */
uint64_t bucket_remaining(struct bucket *b, const struct l7_limit *l, uint64_t period_ns,
			  uint64_t now);
uint64_t bucket_reset_ns(struct bucket *b, const struct l7_limit *l, uint64_t period_ns,
			 uint64_t now);

/* The state of one caller (an API key, or a client address for keyless
 * callers), and of one tier in aggregate. */
struct lim_state {
	struct bucket rpm, tpm;
	unsigned int inflight;
};

struct lim_caller {
	char id[L7_KEY_LEN + 8];   /* "key:..." or "addr:..." */
	unsigned int tier;
	struct lim_state st;
	unsigned int refs;         /* requests holding it (queued or in flight) */
	uint64_t last_ns;          /* last use; idle callers are evicted when full */
	int used;
};

struct limiter;

/* max_callers bounds the table (config max_clients * 4 is a fair choice). */
int limiter_new(const struct l7_config *c, unsigned int max_callers, struct limiter **out);
void limiter_free(struct limiter *l);
/* After a config reload: tiers may have changed; callers keep their state,
 * callers of a tier that is gone move to the default tier. */
void limiter_reconfigure(struct limiter *l, const struct l7_config *c);

/* The caller for an id in a tier, created on first use. NULL when the table
 * is full of callers that are in use (the proxy answers 503; errno ENOSPC),
 * or the id does not fit lim_caller.id (errno ENAMETOOLONG). Takes a
 * reference: release with limiter_put. When the table is full, the caller
 * idle longest makes way, and its buckets are forgotten: it comes back full. */
struct lim_caller *limiter_get(struct limiter *l, const char *id, size_t len,
			       unsigned int tier, uint64_t now);
void limiter_put(struct limiter *l, struct lim_caller *c);

enum lim_reason {
	LIM_OK = 0,
	LIM_RPM,                 /* the caller's requests per period */
	LIM_TPM,                 /* the caller's tokens per period */
	LIM_TIER_RPM,
	LIM_TIER_TPM,
	LIM_CONCURRENCY,         /* the caller's concurrent requests */
	LIM_TIER_CONCURRENCY,
	LIM_REASONS,
};
const char *lim_reason_name(enum lim_reason r);  /* "rpm", "tier_tpm", ... */
/* The tokens a tpm bucket of this kind is charged: input, output or both. */
uint64_t lim_tokens_by_kind(enum l7_tpm_kind kind, uint64_t input, uint64_t output);

/* A request's hold on the limits, from admission to the end of its response. */
struct lim_ticket {
	struct lim_caller *caller;
	double tokens_charged;   /* what the tpm buckets were charged so far */
	uint64_t est_input, est_output;
	int started;             /* counted in inflight */
};

/*
 * Rate admission: takes one request and the estimated tokens (by the tier's
 * tpm kind) from the caller's and the tier's buckets, all or none. On
 * LIM_OK the ticket holds the charge. Otherwise nothing is taken and
 * *retry_ns is how long until every failing bucket would admit it.
 * In a shadow tier the proxy counts and logs the rejection and lets the
 * request pass uncharged, so the buckets follow what enforcement would admit.
 */
enum lim_reason limiter_take(struct limiter *l, struct lim_caller *c, uint64_t est_input,
			     uint64_t est_output, uint64_t now, struct lim_ticket *t,
			     uint64_t *retry_ns);

/* Concurrency: LIM_OK and counted in flight, or LIM_CONCURRENCY /
 * LIM_TIER_CONCURRENCY (wait in the queue and try again). */
enum lim_reason limiter_start(struct limiter *l, struct lim_ticket *t);

/* The backend's count is known: charge or refund the difference from the
 * estimate (by the tier's tpm kind). Call at most once per ticket. */
void limiter_reconcile(struct limiter *l, struct lim_ticket *t, uint64_t input,
		       uint64_t output, uint64_t now);
/* The request gave up before it started (queue timeout, client gone):
 * refunds the request and its tokens. */
void limiter_cancel(struct limiter *l, struct lim_ticket *t, uint64_t now);
/* The response is over (started tickets): no longer in flight. */
void limiter_finish(struct limiter *l, struct lim_ticket *t);

/* The x-ratelimit-* values for a caller: the caller's limits, or the
 * tier's where the caller has none. limit is the bucket's capacity (its
 * burst, by default the rate), so remaining never exceeds it and a fresh
 * caller's remaining equals it, as with OpenAI's headers. limit 0 =
 * unlimited (headers omitted). */
struct lim_view {
	uint64_t limit_requests, remaining_requests, reset_requests_ns;
	uint64_t limit_tokens, remaining_tokens, reset_tokens_ns;
};
void limiter_view(struct limiter *l, struct lim_caller *c, uint64_t now, struct lim_view *v);

/* "12ms", "1.5s", "6m0s" (the style OpenAI's reset headers use). */
void lim_fmt_duration(uint64_t ns, char *buf, size_t len);
/* Retry-After: whole seconds, rounded up, at least 1. */
unsigned int lim_retry_after_s(uint64_t ns);

/*
 * 429 strikes per client address (16 bytes, IPv4-mapped for IPv4): returns
 * 1 exactly once when the address reaches `after` strikes within window_ns,
 * after which its count starts again. A bounded table: the stalest entry
 * makes way.
 */
int limiter_strike(struct limiter *l, const uint8_t addr[16], unsigned int after,
		   uint64_t window_ns, uint64_t now);

/* For the metrics: the tier aggregates. */
const struct lim_state *limiter_tier_state(const struct limiter *l, unsigned int tier);
unsigned int limiter_n_callers(const struct limiter *l);

#endif
