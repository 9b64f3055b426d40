// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * admit.c - what happens to a complete request before it reaches a backend:
 * who is calling (API key or address, and the tier), how many tokens it may
 * cost, the rate limits (429 at once), then a slot: the caller's and tier's
 * concurrency and the backends' capacity, waiting in the priority queue for
 * at most queue-timeout. Shadow tiers go through the same checks, and their
 * would-be rejections are counted and logged instead of answered.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <hiredis/hiredis.h>
#include "l7.h"
#include "log.h"
#include "scripts.h"

#define container_of(p, type, member) ((type *)((char *)(p) - offsetof(type, member)))

const char *tier_name(const struct l7 *l, unsigned int tier)
{
	return tier < l->cfg.n_tiers ? l->cfg.tiers[tier].name : "none";
}

static const struct l7_tier *tier_of(const struct client *c)
{
	return &c->l7->cfg.tiers[c->tier];
}

static int backends_saturated(const struct l7 *l)
{
	return l->cfg.backend_concurrency && l->backend_inflight >= l->cfg.backend_concurrency;
}

/* A client address answered with too many 429s goes on the XDP deny list. */
static void strike(struct client *c)
{
	struct l7 *l = c->l7;
	int err;

	if (!l->cfg.deny_after || !l->kern)
		return;
	if (!limiter_strike(l->lim, c->addr, l->cfg.deny_after, l->cfg.deny_window_ms * 1000000ULL,
			    loop_now(l->loop)))
		return;
	err = l7_kernel_ban(l->kern, c->addr, l->cfg.deny_ban_s);
	if (err) {
		pr_warn("ban %s: %s", c->addr_str, strerror(-err));
		return;
	}
	l->st.bans++;
	pr_info("ban %s for %llu s on the XDP deny list: %u answers of 429 within %llu ms",
		c->addr_str,
		(unsigned long long)l->cfg.deny_ban_s, l->cfg.deny_after,
		(unsigned long long)l->cfg.deny_window_ms);
}

static void reject_429(struct client *c, enum lim_reason why, uint64_t retry_ns, const char *msg,
		       enum l7_outcome out)
{
	struct l7 *l = c->l7;
	char text[256];

	l->st.limited[c->tier][why]++;
	l->st.outcomes[c->tier][out]++;
	if (l->kern)
		l7_kernel_count(l->kern, l->cfg.signals_port, SLUICE_SIG_L7_429);
	snprintf(text, sizeof(text), "%s (limit: %s of tier %s). Retry after the time in "
		 "the Retry-After header.", msg, lim_reason_name(why), tier_name(l, c->tier));
	respond_error(c, 429, why == LIM_TPM || why == LIM_TIER_TPM ? "tokens" : "requests",
		      "rate_limit_exceeded", text, retry_ns ? retry_ns : 1000000000ULL);
	strike(c);
}

/* The request gives up before it started: its rate charge goes back (to
 * the store when the store charged it: l7_settle with a refund). */
static void cancel_charge(struct client *c)
{
	if (c->admitted && !c->shadow_pass) {
		if (c->fleet_rated)
			fleet_settle(c, 0, 1);
		else
			limiter_cancel(c->l7->lim, &c->ticket, loop_now(c->l7->loop));
	}
	c->admitted = 0;
}

/* v's remaining after a refund of n units: never above the limit, and a
 * full bucket has nothing to wait for. */
static void view_refund(uint64_t limit, uint64_t *remaining, uint64_t *reset_ns, uint64_t n)
{
	*remaining = *remaining + n < limit ? *remaining + n : limit;
	if (*remaining == limit)
		*reset_ns = 0;
}

void admit_unserved(struct client *c)
{
	struct lim_view *v = &c->fview;

	if (!c->admitted)
		return;
	/* a shadow pass was never charged: nothing to give back */
	if (!c->shadow_pass) {
		c->l7->st.unserved_refunds[c->tier]++;
		/* The store's refund is on its way (l7_settle, on the take's
		 * connection, so after it): the headers show the buckets as it
		 * leaves them, as the local limiter's view would. */
		if (c->fleet_take && c->fview_ok) {
			view_refund(v->limit_requests, &v->remaining_requests,
				    &v->reset_requests_ns, 1);
			view_refund(v->limit_tokens, &v->remaining_tokens, &v->reset_tokens_ns,
				    lim_tokens_by_kind(tier_of(c)->tpm_kind, c->est.input,
						       c->est.output));
		}
	}
	cancel_charge(c);
}

/* A wait that cannot be: the queue is full, or the timeout passed. 503 when
 * it waited for the backends, 429 when for its own or its tier's
 * concurrency; either way its rate charge goes back. */
static void refuse_wait(struct client *c, enum l7_outcome out)
{
	int full = out == OUT_QUEUE_FULL;

	fleet_drop(c);
	fleet_release_slot(c);
	cancel_charge(c);
	if (c->wait_backend && prov_refuse(c, out))
		return;   /* 429: the backends' own limits, with their wait */
	if (c->wait_backend) {
		c->l7->st.outcomes[c->tier][out]++;
		respond_error(c, 503, "server_error", "overloaded",
			      full ? "The backends are saturated and the wait queue is full."
				   : "The backends stayed saturated for the whole queue timeout.",
			      1000000000ULL);
	} else {
		reject_429(c, c->wait_reason, 1000000000ULL,
			   full ? "Too many concurrent requests, and the wait queue is full"
				: "Too many concurrent requests for the whole queue timeout",
			   out);
	}
}

static void start(struct client *c)
{
	struct l7 *l = c->l7;

	c->holds_slot = 1;
	l->backend_inflight++;
	c->state = CL_UPSTREAM;
	upstream_start(c);
}

static void acquire_done(void *arg, int err, const struct redisReply *r);

/* Concurrency and backend capacity: 1 when the request may go now. With a
 * store, a request the store rated asks it for a fleet slot (l7_slot_acquire):
 * 0 here, and acquire_done goes on. */
static int try_slot(struct client *c, enum lim_reason *why)
{
	struct l7 *l = c->l7;

	*why = LIM_OK;
	if (!c->ticket.started && !c->shadow_pass && !c->fleet_slot && fleet_needs_slot(c)) {
		if (fleet_usable(l) && (c->sreq || !fleet_send_acquire(c, acquire_done))) {
			*why = c->wait_reason != LIM_OK ? c->wait_reason : LIM_CONCURRENCY;
			return 0;
		}
		c->fleet_slot_local = 1;
		l->st.fleet_local[c->tier]++;
	}
	if (!c->ticket.started && !c->shadow_pass && !c->fleet_slot) {
		enum lim_reason r = limiter_start(l->lim, &c->ticket);

		if (r != LIM_OK) {
			if (!tier_of(c)->shadow) {
				*why = r;
				return 0;
			}
			/* counted once, when it would have waited */
			if (!c->wait_backend && c->state != CL_QUEUED) {
				l->st.shadow[c->tier][r]++;
				pr_info("shadow: %s key %s tier %s would wait: %s", c->addr_str,
					c->key_len > 0 ? "set" : "none", tier_name(l, c->tier),
					lim_reason_name(r));
			}
		}
	}
	if (backends_saturated(l))
		return 0;
	return prov_admit(c);   /* a backend whose own limits let it go now */
}

/*
 * A request whose estimated tokens (input plus max_tokens, by the tier's
 * tpm kind) exceed what the key's or the tier's tpm bucket can ever hold is
 * refused for good, as OpenAI does: admitted, it would put the bucket
 * minutes in debt and every other request of the key would wait that out.
 * Not charged, not queued; 429 request_too_large with x-should-retry:
 * false. The config's bursts decide, not the local share a store outage
 * leaves (fleet_share_apply), so the answer is the same on every instance.
 * A shadow tier logs it and lets it through. Returns 1 when it answered.
 */
static int too_large(struct client *c)
{
	struct l7 *l = c->l7;
	const struct l7_tier *t = tier_of(c);
	uint64_t tokens, cap;
	const char *which;
	char text[320];

	if (c->api == TOKENS_API_NONE)
		return 0;
	tokens = lim_tokens_by_kind(t->tpm_kind, c->est.input, c->est.output);
	if (t->tpm.rate && tokens > t->tpm.burst) {
		cap = t->tpm.burst;
		which = "tpm";
	} else if (t->tier_tpm.rate && tokens > t->tier_tpm.burst) {
		cap = t->tier_tpm.burst;
		which = "tier_tpm";
	} else {
		return 0;
	}
	if (t->shadow) {
		pr_info("shadow: %s tier %s would get 429 request_too_large: %llu tokens over "
			"the %s limit of %llu", c->addr_str, tier_name(l, c->tier),
			(unsigned long long)tokens, which, (unsigned long long)cap);
		return 0;
	}
	l->st.outcomes[c->tier][OUT_TOO_LARGE]++;
	snprintf(text, sizeof(text), "Request too large: it needs an estimated %llu tokens "
		 "(the prompt plus max_tokens), more than the %llu that the %s limit of tier %s "
		 "can ever grant at once. Send a shorter prompt or a smaller max_tokens.",
		 (unsigned long long)tokens, (unsigned long long)cap, which, tier_name(l, c->tier));
	respond_final(c, 429, "tokens", "request_too_large", text);
	return 1;
}

static void local_take(struct client *c);
static void take_done(void *arg, int err, const struct redisReply *r);
static void rated(struct client *c, enum lim_reason why, uint64_t retry);

void admit_request(struct client *c)
{
	struct l7 *l = c->l7;
	const struct l7_config *cfg = &l->cfg;
	char id[L7_KEY_LEN + 8], err[160];
	int tier, n;

	/* Who. */
	if (c->key_len < 0) {
		c->l7->st.bad_requests[400]++;
		c->l7->st.outcomes[0][OUT_BAD_REQUEST]++;
		respond_error(c, 400, "invalid_request_error", "invalid_api_key",
			      "The API key is longer than this server accepts.", 0);
		return;
	}
	if (c->key_len > 0) {
		tier = l7_config_key_tier(cfg, c->key, (size_t)c->key_len);
		if (tier < 0 && cfg->refuse_unknown) {
			l->st.outcomes[cfg->default_tier][OUT_UNAUTHORIZED]++;
			respond_error(c, 401, "invalid_request_error", "invalid_api_key",
				      "Incorrect API key provided.", 0);
			return;
		}
		memcpy(id, "key:", 4);
		memcpy(id + 4, c->key, (size_t)c->key_len + 1);
		n = 4 + c->key_len;
	} else {
		tier = -1;
		n = snprintf(id, sizeof(id), "addr:%s", c->addr_str);
	}
	c->tier = tier >= 0 ? (unsigned int)tier : cfg->default_tier;

	/* What it may cost. */
	if (c->api != TOKENS_API_NONE && !strcmp(c->method, "POST")) {
		if (tokens_estimate(c->api, buf_data(&c->body), buf_used(&c->body),
				    cfg->default_max_tokens, cfg->max_output_tokens, &c->est, err,
				    sizeof(err))) {
			l->st.bad_requests[400]++;
			l->st.outcomes[c->tier][OUT_BAD_REQUEST]++;
			respond_error(c, 400, "invalid_request_error", NULL, err, 0);
			return;
		}
	} else {
		c->api = TOKENS_API_NONE;
	}

	c->caller = limiter_get(l->lim, id, (size_t)n, c->tier, loop_now(l->loop));
	if (!c->caller) {
		l->st.outcomes[c->tier][OUT_OVERLOAD]++;
		respond_error(c, 503, "server_error", "overloaded",
			      "Too many distinct callers right now.", 1000000000ULL);
		return;
	}
	if (too_large(c))
		return;

	/* The rates: all or nothing, by the store when it is up. */
	if (fleet_usable(l)) {
		fleet_ids(c, id, (size_t)n);
		if (!fleet_send_take(c, take_done)) {
			c->state = CL_STORE;
			return;
		}
	}
	local_take(c);
}

/* The rates decided here: the config's limits, or without the store its
 * share of them (fleet_share_apply). */
static void local_take(struct client *c)
{
	struct l7 *l = c->l7;
	enum lim_reason why;
	uint64_t retry = 0;

	if (l->store)
		l->st.fleet_local[c->tier]++;
	why = limiter_take(l->lim, c->caller, c->est.input, c->est.output, loop_now(l->loop), &c->ticket,
			   &retry);
	rated(c, why, retry);
}

/* l7_take's answer: the decision, and the x-ratelimit-* values from the
 * shared buckets. A failed call decides locally. */
static void take_done(void *arg, int err, const struct redisReply *r)
{
	struct client *c = arg;
	struct l7 *l = c->l7;
	const struct l7_tier *t = &l->cfg.tiers[c->tier];
	long long v[L7_TAKE_REPLY_LEN];
	enum lim_reason why;

	c->sreq = NULL;
	c->state = CL_HEAD;
	if (!err)
		err = store_reply_ints(r, v, L7_TAKE_REPLY_LEN);
	if (!err && (v[L7_TAKE_REASON] < 0 || v[L7_TAKE_REASON] > LIM_TIER_TPM))
		err = -EPROTO;
	if (err) {
		local_take(c);
		return;
	}
	l->st.fleet_decided[c->tier]++;
	c->fleet_rated = 1;
	c->fleet_take = v[L7_TAKE_ADMITTED] == 1;
	memset(&c->ticket, 0, sizeof(c->ticket));
	c->ticket.caller = c->caller;
	c->ticket.est_input = c->est.input;
	c->ticket.est_output = c->est.output;
	/* the caller's limit where it has one, else the tier's, as its bucket's
	 * capacity (the burst: limiter_view) */
	c->fview.limit_requests = t->rpm.rate ? t->rpm.burst : t->tier_rpm.burst;
	c->fview.remaining_requests = (uint64_t)(t->rpm.rate ? v[L7_TAKE_RPM_REMAINING]
							      : v[L7_TAKE_TIER_RPM_REMAINING]);
	c->fview.reset_requests_ns = (uint64_t)(t->rpm.rate ? v[L7_TAKE_RPM_RESET_MS]
							     : v[L7_TAKE_TIER_RPM_RESET_MS]) * 1000000ULL;
	c->fview.limit_tokens = t->tpm.rate ? t->tpm.burst : t->tier_tpm.burst;
	c->fview.remaining_tokens = (uint64_t)(t->tpm.rate ? v[L7_TAKE_TPM_REMAINING]
							    : v[L7_TAKE_TIER_TPM_REMAINING]);
	c->fview.reset_tokens_ns = (uint64_t)(t->tpm.rate ? v[L7_TAKE_TPM_RESET_MS]
							   : v[L7_TAKE_TIER_TPM_RESET_MS]) * 1000000ULL;
	c->fview_ok = 1;
	why = v[L7_TAKE_ADMITTED] == 1 ? LIM_OK : (enum lim_reason)v[L7_TAKE_REASON];
	if (why == LIM_OK && v[L7_TAKE_ADMITTED] != 1)
		why = LIM_RPM;
	rated(c, why, (uint64_t)(v[L7_TAKE_RETRY_MS] > 0 ? v[L7_TAKE_RETRY_MS] : 0) * 1000000ULL);
}

/* Waits in the queue for a slot, or is refused when it is full. */
static void enqueue(struct client *c, enum lim_reason why)
{
	struct l7 *l = c->l7;

	c->wait_backend = why == LIM_OK;
	c->wait_reason = why;
	if (!c->wait_until_ns)
		c->wait_until_ns = loop_now(l->loop) + l->cfg.queue_timeout_ms * 1000000ULL;
	if (c->wait_backend && prov_too_late(c, c->wait_until_ns)) {
		refuse_wait(c, OUT_QUEUE_TIMEOUT);
		return;
	}
	if (wq_push(&l->wq, &c->wq, l->cfg.tiers[c->tier].priority, c->wait_until_ns)) {
		refuse_wait(c, OUT_QUEUE_FULL);
		return;
	}
	l->st.queued_total++;
	c->state = CL_QUEUED;
}

void admit_requeue(struct client *c)
{
	if (c->holds_slot) {
		c->holds_slot = 0;
		c->l7->backend_inflight--;
		l7_dispatch_later(c->l7);
	}
	enqueue(c, LIM_OK);   /* its rate charge and concurrency ticket stay */
}

/* A slot came (or the store failed the ask: local slots), or not. */
static void acquire_done(void *arg, int err, const struct redisReply *r)
{
	struct client *c = arg;
	struct l7 *l = c->l7;
	long long v[3];
	enum lim_reason why;

	c->sreq = NULL;
	if (!err)
		err = store_reply_ints(r, v, 3);
	if (err) {
		c->fleet_slot_local = 1;
		l->st.fleet_local[c->tier]++;
	} else if (v[0] == 1) {
		c->fleet_slot = 1;
	} else {
		/* the store said no: ask again at the next tick or freed slot */
		c->wait_reason = v[1] == 2 ? LIM_TIER_CONCURRENCY : LIM_CONCURRENCY;
		if (c->state == CL_STORE)
			enqueue(c, c->wait_reason);
		return;
	}
	if (try_slot(c, &why)) {
		wq_remove(&l->wq, &c->wq);
		start(c);
		return;
	}
	if (c->state == CL_STORE && !c->sreq)
		enqueue(c, why);
}

/* The rate decision is made: 429 (or a shadow pass), then a slot. */
static void rated(struct client *c, enum lim_reason why, uint64_t retry)
{
	struct l7 *l = c->l7;

	if (why != LIM_OK) {
		if (!tier_of(c)->shadow) {
			reject_429(c, why, retry, "Rate limit reached", OUT_LIMITED);
			return;
		}
		/* Passed without a charge or a slot, as if it had been
		 * refused: the buckets then follow what enforcement would
		 * admit, and the count is what it would refuse. */
		l->st.shadow[c->tier][why]++;
		pr_info("shadow: %s tier %s would get 429: %s", c->addr_str, tier_name(l, c->tier),
			lim_reason_name(why));
		memset(&c->ticket, 0, sizeof(c->ticket));
		c->shadow_pass = 1;
	}
	c->admitted = 1;
	l->st.estimated_in[c->tier] += c->est.input;
	l->st.estimated_out[c->tier] += c->est.output;

	/* A slot, now, from the store, or from the queue. */
	if (try_slot(c, &why)) {
		start(c);
		return;
	}
	if (c->sreq) {
		c->state = CL_STORE;
		return;
	}
	enqueue(c, why);
}

/* Starts the waiters that can go, in priority order. Not reentrant: a start
 * that ends at once (a backend refused) frees a slot and asks again, which
 * the running pass picks up by starting over. */
void admit_dispatch_queue(struct l7 *l)
{
	static int running, again;

	if (running) {
		again = 1;
		return;
	}
	running = 1;
	do {
		struct wq_entry *e = wq_first(&l->wq);

		again = 0;
		while (e && !backends_saturated(l)) {
			struct wq_entry *next = wq_next(&l->wq, e);
			struct client *c = container_of(e, struct client, wq);
			enum lim_reason why;

			if (try_slot(c, &why)) {
				wq_remove(&l->wq, e);
				start(c);
			}
			e = next;
		}
	} while (again);
	running = 0;
}

void admit_expire(struct l7 *l)
{
	struct wq_entry *e;

	while ((e = wq_expired(&l->wq, loop_now(l->loop)))) {
		struct client *c = container_of(e, struct client, wq);

		wq_remove(&l->wq, e);
		refuse_wait(c, OUT_QUEUE_TIMEOUT);
	}
}

void admit_reconcile(struct client *c, int status, const struct tokens_usage *u,
		     uint64_t fallback_out)
{
	struct l7 *l = c->l7;
	uint64_t in = c->est.input, out = fallback_out;

	if (c->api == TOKENS_API_NONE || !c->admitted || c->shadow_pass)
		return;
	/* A backend's error answer served no completion: it costs its request
	 * (the rpm charge stays) and only the tokens it says it used. */
	if (status / 100 != 2)
		in = out = 0;
	if (u && u->found) {
		in = u->prompt;
		out = u->completion;
		l->st.reconciled[c->tier]++;
	}
	if (c->fleet_rated)
		fleet_settle(c, lim_tokens_by_kind(l->cfg.tiers[c->tier].tpm_kind, in, out), 0);
	else
		limiter_reconcile(l->lim, &c->ticket, in, out, loop_now(l->loop));
	l->st.tokens_in[c->tier] += in;
	l->st.tokens_out[c->tier] += out;
}

void admit_release(struct client *c)
{
	struct l7 *l = c->l7;
	int freed = 0;

	fleet_drop(c);
	if (c->state == CL_QUEUED || c->state == CL_STORE || c->wq.queued) {
		wq_remove(&l->wq, &c->wq);
		cancel_charge(c);
		c->state = CL_HEAD;
	}
	if (c->fleet_slot) {
		fleet_release_slot(c);
		freed = 1;
	}
	/* Not reconciled (no usage to count, or the backend failed): the
	 * estimate stands, and the reservation goes now rather than at its
	 * expiry. */
	if (c->fleet_take)
		fleet_settle(c, lim_tokens_by_kind(l->cfg.tiers[c->tier].tpm_kind, c->est.input,
						   c->est.output), 0);
	if (c->ticket.started) {
		limiter_finish(l->lim, &c->ticket);
		freed = 1;
	}
	if (c->holds_slot) {
		c->holds_slot = 0;
		l->backend_inflight--;
		freed = 1;
	}
	if (c->caller) {
		limiter_put(l->lim, c->caller);
		c->caller = NULL;
	}
	memset(&c->ticket, 0, sizeof(c->ticket));
	c->admitted = 0;
	c->shadow_pass = 0;
	c->fleet_rated = c->fleet_slot_local = c->fview_ok = 0;
	c->wait_reason = LIM_OK;
	if (freed)
		l7_dispatch_later(l);   /* posted: not on this client's stack */
}
