// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * provider_glue.c - the proxy's side of provider.h: what each backend's
 * answers teach (a cooldown after its 429, or a 503 with Retry-After;
 * request and token budgets from its x-ratelimit-* headers) decides which
 * backend a request may go to, and when.
 *
 *   admit.c    try_slot asks prov_admit: a request that no backend may
 *              take now waits in the queue (its priority, its queue
 *              timeout), woken by l->prov_timer at the earliest readiness;
 *              one whose wait outlasts its queue timeout is answered 429
 *              with the provider's wait as Retry-After (prov_refuse).
 *   backend.c  backend_pick skips a backend that may not take it now.
 *   upstream.c prov_sent when a request goes out; prov_response at its
 *              response head: a refusal (429, 503 + Retry-After) reaches no
 *              client, the request goes back to the queue (admit_requeue);
 *              prov_closed on every teardown, so a ticket never stays open
 *              and inflight never leaks.
 * The files above only call in here, each in a line or two.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "l7.h"
#include "log.h"

static uint64_t est_tokens(const struct client *c)
{
	return c ? c->est.input + c->est.output : 0;
}

/* The backend's provider readiness for c (>= now); a backend kept off this
 * request by it is counted once per request. */
static uint64_t ready_at(struct l7 *l, unsigned int b, struct client *c, uint64_t now)
{
	struct backend *be = &l->backends[b];
	uint64_t at = provider_ready_at(&be->prov, now, est_tokens(c));

	if (at > now && c && !(c->prov_held & (1u << b))) {
		c->prov_held |= 1u << b;
		provider_held(&be->prov);
	}
	return at;
}

uint64_t prov_ready_at(struct l7 *l, unsigned int b, struct client *c)
{
	return ready_at(l, b, c, loop_now(l->loop));
}

/* The earliest time any backend that is not resting after failures may
 * take c, or 0 when the provider keeps c off none of them (c goes on as
 * before: to a backend, or to the 503 of all backends failing). */
static uint64_t earliest(struct l7 *l, struct client *c, int *tokens)
{
	uint64_t now = loop_now(l->loop), best = UINT64_MAX;
	int blocked = 0;

	for (unsigned int b = 0; b < l->n_backends; b++) {
		const struct backend *be = &l->backends[b];
		uint64_t at;

		if (!backend_up(l, be))
			continue;
		at = ready_at(l, b, c, now);
		if (at <= now)
			return 0;
		blocked = 1;
		if (at < best) {
			best = at;
			/* the token budget decides when the request alone would pass sooner */
			if (tokens)
				*tokens = provider_ready_at(&be->prov, now, 0) < at;
		}
	}
	return blocked ? best : 0;
}

static void on_timer(struct loop_timer *t)
{
	admit_dispatch_queue(container_of(t, struct l7, prov_timer));
}

void prov_init(struct l7 *l)
{
	loop_timer_init(&l->prov_timer, on_timer);
	for (unsigned int b = 0; b < l->n_backends; b++)
		provider_init(&l->backends[b].prov);
}

void prov_close(struct l7 *l)
{
	loop_timer_stop(l->loop, &l->prov_timer);
}

int prov_admit(struct client *c)
{
	struct l7 *l = c->l7;
	uint64_t at = earliest(l, c, NULL);

	if (!at)
		return 1;
	/* The queue is looked at again when the first backend is ready. */
	if (!loop_timer_armed(&l->prov_timer) || l->prov_timer.when_ns > at)
		if (loop_timer_at(l->loop, &l->prov_timer, at))
			pr_warn("provider wake-up timer: no memory (the queue waits for a freed slot)");
	return 0;
}

int prov_too_late(struct client *c, uint64_t deadline_ns)
{
	uint64_t at = earliest(c->l7, c, NULL);

	return at && at > deadline_ns;
}

int prov_refuse(struct client *c, enum l7_outcome out)
{
	struct l7 *l = c->l7;
	uint64_t now = loop_now(l->loop), at;
	int tokens = 0;
	char msg[200];

	at = earliest(l, c, &tokens);
	if (!at)
		return 0;
	l->st.outcomes[c->tier][out]++;
	snprintf(msg, sizeof(msg), "The backends' rate limit (%s) leaves no room within the "
		 "queue timeout. Retry after the time in the Retry-After header.",
		 tokens ? "tokens" : "requests");
	respond_error(c, 429, tokens ? "tokens" : "requests", "rate_limit_exceeded", msg,
		      at - now);
	return 1;
}

void prov_sent(struct upstream *u, struct client *c)
{
	struct l7 *l = u->l7;

	provider_sent(&l->backends[u->backend].prov, loop_now(l->loop), est_tokens(c),
		      &u->prov_ticket);
}

void prov_closed(struct upstream *u)
{
	provider_done(&u->l7->backends[u->backend].prov, loop_now(u->l7->loop), &u->prov_ticket,
		      NULL);
}

struct client *prov_response(struct upstream *u)
{
	struct l7 *l = u->l7;
	struct backend *be = &l->backends[u->backend];
	struct client *c = u->cl;
	struct provider_resp r;
	uint64_t now = loop_now(l->loop);
	unsigned int ev;

	provider_resp_parse(&r, &u->resp, (int64_t)time(NULL));
	ev = provider_done(&be->prov, now, &u->prov_ticket, &r);
	if (ev & PROVIDER_EV_COOLDOWN)
		pr_info("backend %s: %d, cooling down %llu ms", be->name, r.status,
			(unsigned long long)(provider_cooldown_left(&be->prov, now) / 1000000ULL));
	if (!c || u->head_sent || !(r.status == 429 || (r.status == 503 && r.has_retry)))
		return c;
	/* The provider did no work: the client never sees this answer. The
	 * connection reads it to its end (and is pooled) without a client. */
	u->cl = NULL;
	c->up = NULL;
	admit_requeue(c);
	return NULL;
}

static int family(struct buf *o, const char *name, const char *type, const char *help)
{
	return buf_printf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A counter of struct provider_stats (the field at off), per backend. */
static int stat_family(struct buf *o, const struct l7 *l, const char *name, const char *help,
		       size_t off)
{
	int err = family(o, name, "counter", help);

	for (unsigned int b = 0; b < l->n_backends; b++) {
		const struct backend *be = &l->backends[b];
		uint64_t v;

		memcpy(&v, (const char *)&be->prov.st + off, sizeof(v));
		err |= buf_printf(o, "%s{backend=\"%s\"} %llu\n", name, be->name,
				  (unsigned long long)v);
	}
	return err;
}

int prov_metrics(struct buf *o, const struct l7 *l)
{
	uint64_t now = loop_now(l->loop);
	int err = 0;

	err |= stat_family(o, l, "sluice_l7_backend_429_total",
			   "429 answers from the backend (its own rate limit).",
			   offsetof(struct provider_stats, seen_429));
	err |= stat_family(o, l, "sluice_l7_backend_cooldowns_total",
			   "Cooldowns begun after the backend's 429 or 503 with Retry-After.",
			   offsetof(struct provider_stats, cooldowns));
	err |= stat_family(o, l, "sluice_l7_backend_held_back_total",
			   "Requests kept off the backend by its cooldown or learned budget.",
			   offsetof(struct provider_stats, held_back));
	err |= family(o, "sluice_l7_backend_remaining", "gauge",
		      "What the backend's learned budget allows now, by kind; -1 when unknown.");
	for (unsigned int b = 0; b < l->n_backends; b++) {
		const struct backend *be = &l->backends[b];

		err |= buf_printf(o, "sluice_l7_backend_remaining{backend=\"%s\",kind=\"requests\"} "
				  "%lld\n", be->name,
				  (long long)provider_remaining(&be->prov, now, PROV_REQUESTS));
		err |= buf_printf(o, "sluice_l7_backend_remaining{backend=\"%s\",kind=\"tokens\"} "
				  "%lld\n", be->name,
				  (long long)provider_remaining(&be->prov, now, PROV_TOKENS));
	}
	err |= family(o, "sluice_l7_backend_cooldown_seconds", "gauge",
		      "Time left of the backend's cooldown (0: none).");
	for (unsigned int b = 0; b < l->n_backends; b++) {
		const struct backend *be = &l->backends[b];

		err |= buf_printf(o, "sluice_l7_backend_cooldown_seconds{backend=\"%s\"} %.3f\n",
				  be->name, (double)provider_cooldown_left(&be->prov, now) / 1e9);
	}
	return err;
}
