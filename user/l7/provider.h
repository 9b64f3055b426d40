/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * provider.h - what a backend (an LLM provider's API) says about its own
 * limits, learned from its responses, per backend: a cooldown after its 429
 * (or a 503 with Retry-After), and request and token budgets from its
 * x-ratelimit-limit/-remaining/-reset-* headers. Pure logic on a clock the
 * caller passes (CLOCK_MONOTONIC ns; the wall clock only to read an
 * HTTP-date Retry-After), no I/O, so the tests drive it (test_provider.c).
 *
 * Integration (phase 2; these files are not touched by phase 1):
 * - l7.h: struct backend gets `struct provider prov` (provider_init in
 *   backends_init, kept across a reload), struct upstream
 *   `struct provider_ticket prov_ticket`.
 * - upstream.c, when a request is handed to a backend connection
 *   (upstream_start, after backend_pick): provider_sent(&be->prov, now,
 *   c->est.input + c->est.output, &u->prov_ticket).
 * - upstream.c up_head(), once the head is parsed (status >= 200):
 *   provider_resp_parse(&r, &u->resp, time(NULL)); ev = provider_done(&be->prov,
 *   now, &u->prov_ticket, &r); log "backend X: 429, cooling down N ms" when
 *   ev & PROVIDER_EV_COOLDOWN. up_fail() with no head: provider_done(.., NULL)
 *   (the ticket must always be closed, or inflight stays counted). A 429
 *   (or 503 + Retry-After) is not relayed while the client has nothing of
 *   the response: the provider did no work, so the request goes back to
 *   backend_pick/the queue, as a stale pooled connection is retried today.
 * - backend.c backend_pick(l, est_tokens, &retry_ns): skip a backend whose
 *   provider_can_send() says no (count it once per request with
 *   provider_held()), as it skips one that is down; -1 with retry_ns = the
 *   earliest provider_ready_at()/down_until over all backends.
 * - admit.c: a request that finds no backend ready waits in the queue (its
 *   priority, its queue-timeout) like one waiting for a slot, woken at
 *   provider_earliest() (a loop timer at that time, as well as on slot
 *   frees); expiry answers as today.
 * - The final 429 (earliest - now > what is left of its queue timeout, or no
 *   backend ever can): respond_error(c, 429, "requests" or "tokens",
 *   "rate_limit_exceeded", "The backend's rate limit ...", earliest - now), so
 *   Retry-After and retry-after-ms are the provider's own wait.
 * - l7_metrics.c, per backend (label backend="ADDR"): counters
 *   sluice_l7_backend_429_total (st.seen_429), _cooldowns_total,
 *   _held_back_total; gauges sluice_l7_backend_remaining{kind=requests|tokens}
 *   (provider_remaining(), -1 unknown) and _cooldown_seconds
 *   (provider_cooldown_left()).
 * Known gap: backends that are keys of one provider account each see the
 * others' spending only through their reports; they stay under the account's
 * limit but meet 429s (the cooldowns then pace them). Per-account grouping
 * is left for later.
 */
#ifndef SLUICE_L7_PROVIDER_H
#define SLUICE_L7_PROVIDER_H

#include <stddef.h>
#include <stdint.h>
#include "http.h"

#define PROVIDER_NS_PER_S 1000000000ULL
/* A wait (Retry-After, a reset) longer than this is not believed: ignored. */
#define PROVIDER_WAIT_MAX_NS (86400ULL * PROVIDER_NS_PER_S)
/* A 429 without a usable Retry-After: 1 s, doubled per such 429 in a row
 * (counting only requests sent after the last cooldown began), up to 32 s. */
#define PROVIDER_BACKOFF_NS PROVIDER_NS_PER_S
#define PROVIDER_BACKOFF_MAX_NS (32ULL * PROVIDER_NS_PER_S)
/* Every 429 cools at least this long ("retry-after: 0" included). */
#define PROVIDER_COOLDOWN_MIN_NS 10000000ULL
/* A remaining-* without a usable reset-* holds for this long. */
#define PROVIDER_RESET_DEFAULT_NS PROVIDER_NS_PER_S
/* Counts and limits past this are not believed. */
#define PROVIDER_COUNT_MAX 1000000000000000ULL

enum provider_kind { PROV_REQUESTS = 0, PROV_TOKENS, PROV_KINDS };

/* One response's provider headers, parsed. has_* is 1 for a value that
 * parsed; a bad value is as if absent (and counted in bad). */
struct provider_resp {
	int status;
	int has_retry;                     /* retry-after-ms wins over retry-after */
	int retry_ms_seen;                 /* (a valid retry-after-ms was seen) */
	uint64_t retry_ns;
	int has_limit[PROV_KINDS], has_remaining[PROV_KINDS], has_reset[PROV_KINDS];
	uint64_t limit[PROV_KINDS], remaining[PROV_KINDS];
	uint64_t reset_ns[PROV_KINDS];     /* from the response: until full again */
	unsigned int bad;                  /* recognised headers with unusable values */
};

void provider_resp_init(struct provider_resp *r, int status);
/* Feeds one header (name case-insensitive, value trimmed of blanks).
 * wall_s: the wall clock (seconds since the epoch), for an HTTP-date
 * Retry-After. Returns 1 when used, 0 when not a provider header, -1 when
 * one with a value that is not believed (ignored). */
int provider_resp_header(struct provider_resp *r, const char *name, size_t name_len,
			 const char *value, size_t value_len, int64_t wall_s);
/* All of a parsed response head. */
void provider_resp_parse(struct provider_resp *r, const struct http_response *resp,
			 int64_t wall_s);

/* The value parsers, for the tests and for the mock. 0 when good. */
/* OpenAI's reset durations ("1s", "6m0s", "20ms", "1h2m3.5s"; units h m s
 * ms us ns, largest first, each once) or plain (decimal) seconds. */
int provider_parse_duration(const char *s, size_t n, uint64_t *ns);
/* Retry-After: delta-seconds (a decimal fraction accepted) or an IMF-fixdate
 * HTTP-date ("Sun, 06 Nov 1994 08:49:37 GMT"; a date past is a wait of 0). */
int provider_parse_retry_after(const char *s, size_t n, int64_t wall_s, uint64_t *ns);
/* A count: digits only, at most PROVIDER_COUNT_MAX. */
int provider_parse_count(const char *s, size_t n, uint64_t *v);

/* A learned budget of one kind: a token bucket whose level is the
 * provider's last remaining minus what was sent after that request, and
 * whose refill is (limit - remaining) / reset when the limit is known.
 * Without a limit (or a rate) the level holds until the reset, then the
 * budget is forgotten (no cap until the next report). */
struct provider_budget {
	int known;
	double level;                      /* units at at_ns; may be negative */
	uint64_t at_ns;
	uint64_t limit;                    /* 0: not known */
	double rate;                       /* units per ns; 0: not known */
	uint64_t reset_at_ns;              /* the report's reset (step model) */
	uint64_t seq;                      /* the reporting request's send order */
};

struct provider_stats {
	uint64_t sent, responses;
	uint64_t seen_429, seen_503_retry; /* the backend's answers */
	uint64_t cooldowns;                /* cooldowns entered (not while one ran) */
	uint64_t held_back;                /* requests a budget or cooldown kept off it */
	uint64_t reports;                  /* responses with a remaining-* header used */
	uint64_t bad_headers;              /* provider headers with values not believed */
};

struct provider {
	uint64_t cooldown_until_ns, cooldown_from_ns;
	unsigned int backoff;              /* 429s in a row without Retry-After */
	struct provider_budget b[PROV_KINDS];
	uint64_t seq;                      /* requests sent */
	uint64_t sent_units[PROV_KINDS];   /* units sent, cumulative */
	unsigned int inflight;
	struct provider_stats st;
};

/* What provider_sent gives a request, and provider_done takes back. */
struct provider_ticket {
	uint64_t seq;                      /* 0: none (done is a no-op) */
	uint64_t cum[PROV_KINDS];          /* sent_units after this request */
	uint64_t tokens, sent_ns;
};

/* Bits of provider_done's answer, for the caller's log lines. */
#define PROVIDER_EV_COOLDOWN 1u        /* a cooldown began (not one that ran) */
#define PROVIDER_EV_LEARNED 2u         /* a budget was learned or updated */
#define PROVIDER_EV_429 4u

void provider_init(struct provider *p);
/* 1: a request estimated at est_tokens may go now. 0: not before
 * now + *wait_ns (a cooldown, or a budget that refills by then; a budget
 * that only a reset can restore, the reset). Changes nothing. A request
 * bigger than a known limit passes once the budget is full. */
int provider_can_send(const struct provider *p, uint64_t now, uint64_t est_tokens,
		      uint64_t *wait_ns);
/* The earliest time (>= now) provider_can_send would say yes. */
uint64_t provider_ready_at(const struct provider *p, uint64_t now, uint64_t est_tokens);
/* Over n backends (NULL entries skipped): the earliest ready time, and its
 * index in *which (-1 when n is 0). */
uint64_t provider_earliest(struct provider *const *ps, unsigned int n, uint64_t now,
			   uint64_t est_tokens, int *which);
/* A request was kept off this backend by it (count once per request). */
void provider_held(struct provider *p);
/* A request is sent: charged one request and est_tokens against the
 * budgets; t is its ticket for provider_done. */
void provider_sent(struct provider *p, uint64_t now, uint64_t est_tokens,
		   struct provider_ticket *t);
/* Its response head arrived (r), or it ended without one (r NULL: nothing
 * is learned; its units stay charged, as the provider may have counted
 * them). A report replaces a budget when its request was sent after the
 * one that made the budget: level = remaining - units sent after it. */
unsigned int provider_done(struct provider *p, uint64_t now, struct provider_ticket *t,
			   const struct provider_resp *r);
/* Units the learned budget allows now (the level, 0 when negative), or -1
 * when nothing is known (no cap). For the metrics. */
int64_t provider_remaining(const struct provider *p, uint64_t now, enum provider_kind k);
/* ns left of a cooldown, 0 when none. */
uint64_t provider_cooldown_left(const struct provider *p, uint64_t now);

#endif
