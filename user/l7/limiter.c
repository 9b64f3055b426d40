// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * limiter.c - sluice-l7's admission policy (see limiter.h for the bucket
 * rule). No I/O and no clock of its own: every function takes `now`.
 *
 * The caller table is a fixed pool of max_callers entries indexed by an
 * open-addressing hash (linear probing, load <= 1/2, backward-shift delete).
 * Ids are hashed with SipHash-2-4 under a random key from getrandom(), so a
 * client choosing its API keys cannot aim them at one probe run. When the
 * pool is full, the caller that went idle (refs 0) longest ago makes way:
 * idle callers sit on an LRU list, in the order their last reference was
 * dropped. An evicted caller's buckets are forgotten, so it comes back with
 * full buckets; this happens only when more than max_callers distinct
 * callers were seen recently, which is why the table is sized well above
 * the number of client connections.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include "limiter.h"

#define LIM_MAX_CALLERS (1u << 24)
#define STRIKE_SLOTS 4096u              /* power of two */
#define STRIKE_PROBES 16u               /* slots looked at per address */
#define NO_IDX UINT32_MAX
/* Refills are sums of fractions of a unit; a level a hair under a whole unit
 * from rounding must still count as that unit. Far below any real unit. */
#define LEVEL_EPS 1e-9

struct strike {
	uint8_t addr[16];
	uint64_t first_ns, last_ns;
	unsigned int count;
	int used;
};

struct limiter {
	/* the configuration in force, bursts resolved */
	struct l7_tier tiers[L7_MAX_TIERS];
	unsigned int n_tiers, default_tier;
	uint64_t period_ns;
	struct lim_state tier_st[L7_MAX_TIERS];

	uint64_t sip_key[2];

	struct lim_caller *pool;        /* max_callers */
	uint64_t *hash;                 /* each pool entry's id hash */
	uint32_t *slots;                /* hash index: pool index + 1, 0 empty */
	uint32_t mask;                  /* slots - 1 */
	uint32_t *free_idx;             /* stack of unused pool entries */
	uint32_t n_free;
	/* idle LRU list over pool indices; index max_callers is the sentinel */
	uint32_t *idle_prev, *idle_next;
	unsigned int max_callers, n_callers;

	struct strike strikes[STRIKE_SLOTS];
};

/* --- doubles to integers without libm ------------------------------------ */

static uint64_t ceil_u64(double x)
{
	uint64_t u;

	if (!(x > 0))
		return 0;
	if (x >= 18446744073709549568.0)
		return UINT64_MAX;
	u = (uint64_t)x;
	return (double)u < x ? u + 1 : u;
}

static uint64_t floor_u64(double x)
{
	if (!(x > 0))
		return 0;
	if (x >= 18446744073709549568.0)
		return UINT64_MAX;
	return (uint64_t)x;
}

/* --- buckets ------------------------------------------------------------- */

/* The burst a limit really has: 0 means the rate (l7_config.c's default;
 * a config built by hand, as the tests do, may leave it 0). */
static uint64_t limit_burst(const struct l7_limit *l)
{
	return l->burst ? l->burst : l->rate;
}

static void bucket_fill(struct bucket *b, uint64_t burst)
{
	b->level = (double)burst;
	b->at_ns = 0;
}

/* Brings the level to now. The refill is computed from the whole elapsed
 * time since at_ns, so many small steps add up to what one big step would
 * give (no per-step rounding). A clock behind at_ns refills nothing. */
static void bucket_refill(struct bucket *b, const struct l7_limit *l, uint64_t period_ns,
			  uint64_t now)
{
	double burst = (double)limit_burst(l);

	if (now > b->at_ns) {
		if (b->level < burst)
			b->level += (double)(now - b->at_ns) * (double)l->rate / (double)period_ns;
		b->at_ns = now;
	}
	if (b->level > burst)
		b->level = burst;
}

/* ns until cost would be admitted (0: now). Assumes a refilled bucket. */
static uint64_t bucket_wait(const struct bucket *b, const struct l7_limit *l,
			    uint64_t period_ns, double cost)
{
	double burst = (double)limit_burst(l);
	double need = cost < burst ? cost : burst;
	uint64_t ns;

	if (b->level + LEVEL_EPS >= need)
		return 0;
	ns = ceil_u64((need - b->level) * (double)period_ns / (double)l->rate);
	return ns ? ns : 1;
}

uint64_t bucket_take(struct bucket *b, const struct l7_limit *l, uint64_t period_ns,
		     uint64_t now, double cost)
{
	uint64_t wait;

	if (!l->rate || !period_ns)
		return 0;
	bucket_refill(b, l, period_ns, now);
	wait = bucket_wait(b, l, period_ns, cost);
	if (!wait)
		b->level -= cost;
	return wait;
}

void bucket_adjust(struct bucket *b, const struct l7_limit *l, uint64_t period_ns,
		   uint64_t now, double delta)
{
	double burst;

	if (!l->rate || !period_ns)
		return;
	bucket_refill(b, l, period_ns, now);
	burst = (double)limit_burst(l);
	b->level += delta;
	if (b->level > burst)
		b->level = burst;
}

/* An unlimited bucket (rate 0) has no level to show: 0 remaining, 0 reset;
 * limiter_view reports limit 0 for it so the headers are left out. */
uint64_t bucket_remaining(struct bucket *b, const struct l7_limit *l, uint64_t period_ns,
			  uint64_t now)
{
	if (!l->rate || !period_ns)
		return 0;
	bucket_refill(b, l, period_ns, now);
	return floor_u64(b->level + LEVEL_EPS);
}

uint64_t bucket_reset_ns(struct bucket *b, const struct l7_limit *l, uint64_t period_ns,
			 uint64_t now)
{
	double missing;

	if (!l->rate || !period_ns)
		return 0;
	bucket_refill(b, l, period_ns, now);
	missing = (double)limit_burst(l) - b->level;
	if (missing <= LEVEL_EPS)
		return 0;
	return ceil_u64(missing * (double)period_ns / (double)l->rate);
}

/* --- SipHash-2-4 ----------------------------------------------------------- */

#define ROTL64(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                              \
	do {                                                                  \
		v0 += v1; v1 = ROTL64(v1, 13); v1 ^= v0; v0 = ROTL64(v0, 32); \
		v2 += v3; v3 = ROTL64(v3, 16); v3 ^= v2;                      \
		v0 += v3; v3 = ROTL64(v3, 21); v3 ^= v0;                      \
		v2 += v1; v1 = ROTL64(v1, 17); v1 ^= v2; v2 = ROTL64(v2, 32); \
	} while (0)

static uint64_t load_le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static uint64_t siphash(const uint64_t key[2], const void *data, size_t len)
{
	const uint8_t *p = data;
	uint64_t v0 = 0x736f6d6570736575ULL ^ key[0];
	uint64_t v1 = 0x646f72616e646f6dULL ^ key[1];
	uint64_t v2 = 0x6c7967656e657261ULL ^ key[0];
	uint64_t v3 = 0x7465646279746573ULL ^ key[1];
	uint64_t m, b = (uint64_t)len << 56;
	size_t i, tail = len & 7;

	for (i = 0; i + 8 <= len; i += 8) {
		m = load_le64(p + i);
		v3 ^= m;
		SIPROUND;
		SIPROUND;
		v0 ^= m;
	}
	for (size_t j = 0; j < tail; j++)
		b |= (uint64_t)p[i + j] << (8 * j);
	v3 ^= b;
	SIPROUND;
	SIPROUND;
	v0 ^= b;
	v2 ^= 0xff;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}

/* --- configuration ------------------------------------------------------- */

static void resolve_limit(struct l7_limit *l)
{
	if (l->rate)
		l->burst = limit_burst(l);
}

/* Copies c's tiers with every burst resolved, so the hot path never looks
 * at a default again. */
static void load_config(struct limiter *l, const struct l7_config *c)
{
	memcpy(l->tiers, c->tiers, sizeof(l->tiers));
	for (unsigned int i = 0; i < c->n_tiers; i++) {
		resolve_limit(&l->tiers[i].rpm);
		resolve_limit(&l->tiers[i].tpm);
		resolve_limit(&l->tiers[i].tier_rpm);
		resolve_limit(&l->tiers[i].tier_tpm);
	}
	l->n_tiers = c->n_tiers;
	l->default_tier = c->default_tier < c->n_tiers ? c->default_tier : 0;
	l->period_ns = (c->period_ms ? c->period_ms : 60000) * 1000000ULL;
}

static void fresh_tier_state(struct limiter *l, unsigned int t)
{
	memset(&l->tier_st[t], 0, sizeof(l->tier_st[t]));
	bucket_fill(&l->tier_st[t].rpm, limit_burst(&l->tiers[t].tier_rpm));
	bucket_fill(&l->tier_st[t].tpm, limit_burst(&l->tiers[t].tier_tpm));
}

static int get_seed(uint64_t key[2])
{
	uint8_t buf[16];
	size_t got = 0;

	while (got < sizeof(buf)) {
		ssize_t n = getrandom(buf + got, sizeof(buf) - got, 0);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		got += (size_t)n;
	}
	key[0] = load_le64(buf);
	key[1] = load_le64(buf + 8);
	return 0;
}

int limiter_new(const struct l7_config *c, unsigned int max_callers, struct limiter **out)
{
	struct limiter *l;
	uint32_t nslots = 1;
	int err;

	*out = NULL;
	if (!c->n_tiers || c->n_tiers > L7_MAX_TIERS || !max_callers ||
	    max_callers > LIM_MAX_CALLERS)
		return -EINVAL;
	while (nslots < 2 * max_callers)
		nslots <<= 1;

	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->max_callers = max_callers;
	l->mask = nslots - 1;
	l->pool = calloc(max_callers, sizeof(*l->pool));
	l->hash = calloc(max_callers, sizeof(*l->hash));
	l->slots = calloc(nslots, sizeof(*l->slots));
	l->free_idx = calloc(max_callers, sizeof(*l->free_idx));
	l->idle_prev = calloc(max_callers + 1, sizeof(*l->idle_prev));
	l->idle_next = calloc(max_callers + 1, sizeof(*l->idle_next));
	if (!l->pool || !l->hash || !l->slots || !l->free_idx || !l->idle_prev ||
	    !l->idle_next) {
		limiter_free(l);
		return -ENOMEM;
	}
	err = get_seed(l->sip_key);
	if (err) {
		limiter_free(l);
		return err;
	}
	/* pop order 0, 1, 2, ...: the pool fills from the front */
	for (uint32_t i = 0; i < max_callers; i++)
		l->free_idx[i] = max_callers - 1 - i;
	l->n_free = max_callers;
	l->idle_prev[max_callers] = l->idle_next[max_callers] = max_callers;

	load_config(l, c);
	for (unsigned int t = 0; t < l->n_tiers; t++)
		fresh_tier_state(l, t);
	*out = l;
	return 0;
}

void limiter_free(struct limiter *l)
{
	if (!l)
		return;
	free(l->pool);
	free(l->hash);
	free(l->slots);
	free(l->free_idx);
	free(l->idle_prev);
	free(l->idle_next);
	free(l);
}

static int tier_by_name(const struct l7_tier *tiers, unsigned int n, const char *name)
{
	for (unsigned int i = 0; i < n; i++)
		if (!strncmp(tiers[i].name, name, L7_NAME_LEN))
			return (int)i;
	return -1;
}

void limiter_reconfigure(struct limiter *l, const struct l7_config *c)
{
	struct l7_tier old_tiers[L7_MAX_TIERS];
	struct lim_state old_st[L7_MAX_TIERS];
	unsigned int old_n = l->n_tiers, map[L7_MAX_TIERS];
	int gone[L7_MAX_TIERS];

	/* A validated config has tiers; an empty one would leave callers with
	 * nowhere to go, so the limits in force stay. */
	if (!c->n_tiers || c->n_tiers > L7_MAX_TIERS)
		return;
	memcpy(old_tiers, l->tiers, sizeof(old_tiers));
	memcpy(old_st, l->tier_st, sizeof(old_st));
	load_config(l, c);

	/* tier aggregates follow their name */
	for (unsigned int t = 0; t < l->n_tiers; t++) {
		int o = tier_by_name(old_tiers, old_n, l->tiers[t].name);

		if (o >= 0)
			l->tier_st[t] = old_st[o];
		else
			fresh_tier_state(l, t);
	}
	for (unsigned int o = 0; o < old_n; o++) {
		int t = tier_by_name(l->tiers, l->n_tiers, old_tiers[o].name);

		gone[o] = t < 0;
		map[o] = t < 0 ? l->default_tier : (unsigned int)t;
	}
	for (unsigned int i = 0; i < l->max_callers; i++) {
		struct lim_caller *cl = &l->pool[i];

		if (!cl->used)
			continue;
		if (cl->tier >= old_n) {
			cl->tier = l->default_tier;
			continue;
		}
		/* its requests in flight now count against the tier it moved to,
		 * so limiter_finish takes them off the right aggregate */
		if (gone[cl->tier])
			l->tier_st[map[cl->tier]].inflight += cl->st.inflight;
		cl->tier = map[cl->tier];
	}
}

/* --- the caller table ---------------------------------------------------- */

static void idle_unlink(struct limiter *l, uint32_t i)
{
	l->idle_next[l->idle_prev[i]] = l->idle_next[i];
	l->idle_prev[l->idle_next[i]] = l->idle_prev[i];
	l->idle_prev[i] = l->idle_next[i] = NO_IDX;
}

static void idle_append(struct limiter *l, uint32_t i)
{
	uint32_t s = l->max_callers;

	l->idle_prev[i] = l->idle_prev[s];
	l->idle_next[i] = s;
	l->idle_next[l->idle_prev[s]] = i;
	l->idle_prev[s] = i;
}

/* The hash slot holding pool entry i. */
static uint32_t slot_of(const struct limiter *l, uint32_t i)
{
	uint32_t s = (uint32_t)l->hash[i] & l->mask;

	while (l->slots[s] != i + 1)
		s = (s + 1) & l->mask;
	return s;
}

/* Backward-shift deletion: later members of the probe run move up into the
 * hole, so lookups never need tombstones. */
static void slot_delete(struct limiter *l, uint32_t s)
{
	uint32_t hole = s, j = s;

	l->slots[hole] = 0;
	for (;;) {
		uint32_t home;

		j = (j + 1) & l->mask;
		if (!l->slots[j])
			return;
		home = (uint32_t)l->hash[l->slots[j] - 1] & l->mask;
		/* entry j may fill the hole unless its home lies in (hole, j] */
		if (((j - home) & l->mask) >= ((j - hole) & l->mask)) {
			l->slots[hole] = l->slots[j];
			l->slots[j] = 0;
			hole = j;
		}
	}
}

static void caller_evict(struct limiter *l, uint32_t i)
{
	idle_unlink(l, i);
	slot_delete(l, slot_of(l, i));
	memset(&l->pool[i], 0, sizeof(l->pool[i]));
	l->free_idx[l->n_free++] = i;
	l->n_callers--;
}

static void caller_set_tier(struct limiter *l, struct lim_caller *c, unsigned int tier)
{
	if (c->tier == tier)
		return;
	/* its requests in flight move with it */
	if (l->tier_st[c->tier].inflight >= c->st.inflight)
		l->tier_st[c->tier].inflight -= c->st.inflight;
	else
		l->tier_st[c->tier].inflight = 0;
	l->tier_st[tier].inflight += c->st.inflight;
	c->tier = tier;
}

/* An id longer than lim_caller.id holds gets NULL (errno ENAMETOOLONG):
 * cutting it would let two long keys share one caller's limits. */
struct lim_caller *limiter_get(struct limiter *l, const char *id, size_t len,
			       unsigned int tier, uint64_t now)
{
	uint64_t h;
	uint32_t s, i;
	struct lim_caller *c;

	if (len >= sizeof(c->id)) {
		errno = ENAMETOOLONG;
		return NULL;
	}
	if (tier >= l->n_tiers)
		tier = l->default_tier;
	h = siphash(l->sip_key, id, len);
	for (s = (uint32_t)h & l->mask; l->slots[s]; s = (s + 1) & l->mask) {
		i = l->slots[s] - 1;
		c = &l->pool[i];
		if (l->hash[i] == h && !strncmp(c->id, id, len) && c->id[len] == '\0') {
			if (!c->refs)
				idle_unlink(l, i);
			c->refs++;
			c->last_ns = now;
			caller_set_tier(l, c, tier);
			return c;
		}
	}

	if (!l->n_free) {
		uint32_t lru = l->idle_next[l->max_callers];

		if (lru == l->max_callers) {
			errno = ENOSPC;
			return NULL;
		}
		caller_evict(l, lru);
		/* the deletion may have shifted entries into s's run: find the
		 * first empty slot again */
		for (s = (uint32_t)h & l->mask; l->slots[s]; s = (s + 1) & l->mask)
			;
	}
	i = l->free_idx[--l->n_free];
	c = &l->pool[i];
	memset(c, 0, sizeof(*c));
	memcpy(c->id, id, len);
	c->id[len] = '\0';
	c->tier = tier;
	c->refs = 1;
	c->last_ns = now;
	c->used = 1;
	c->st.rpm.level = (double)limit_burst(&l->tiers[tier].rpm);
	c->st.rpm.at_ns = now;
	c->st.tpm.level = (double)limit_burst(&l->tiers[tier].tpm);
	c->st.tpm.at_ns = now;
	l->hash[i] = h;
	l->slots[s] = i + 1;
	l->idle_prev[i] = l->idle_next[i] = NO_IDX;
	l->n_callers++;
	return c;
}

void limiter_put(struct limiter *l, struct lim_caller *c)
{
	if (!c || !c->refs)
		return;
	if (--c->refs == 0)
		idle_append(l, (uint32_t)(c - l->pool));
}

unsigned int limiter_n_callers(const struct limiter *l)
{
	return l->n_callers;
}

const struct lim_state *limiter_tier_state(const struct limiter *l, unsigned int tier)
{
	return tier < l->n_tiers ? &l->tier_st[tier] : NULL;
}

/* --- admission ------------------------------------------------------------ */

const char *lim_reason_name(enum lim_reason r)
{
	static const char *const names[LIM_REASONS] = {
		[LIM_OK] = "ok",
		[LIM_RPM] = "rpm",
		[LIM_TPM] = "tpm",
		[LIM_TIER_RPM] = "tier_rpm",
		[LIM_TIER_TPM] = "tier_tpm",
		[LIM_CONCURRENCY] = "concurrency",
		[LIM_TIER_CONCURRENCY] = "tier_concurrency",
	};

	return (unsigned int)r < LIM_REASONS ? names[r] : "unknown";
}

uint64_t lim_tokens_by_kind(enum l7_tpm_kind kind, uint64_t input, uint64_t output)
{
	switch (kind) {
	case L7_TPM_INPUT:
		return input;
	case L7_TPM_OUTPUT:
		return output;
	case L7_TPM_TOTAL:
	default:
		return input + output;
	}
}

static void ticket_init(struct lim_ticket *t, struct lim_caller *c, uint64_t in, uint64_t out)
{
	memset(t, 0, sizeof(*t));
	t->caller = c;
	t->est_input = in;
	t->est_output = out;
}

/* The four buckets a request draws on, in the order their reasons rank. */
struct draw {
	struct bucket *b;
	const struct l7_limit *lim;
	double cost;
	enum lim_reason why;
};

static void draws_of(struct limiter *l, struct lim_caller *c, double tokens, struct draw d[4])
{
	const struct l7_tier *t = &l->tiers[c->tier];
	struct lim_state *ts = &l->tier_st[c->tier];

	d[0] = (struct draw){ &c->st.rpm, &t->rpm, 1, LIM_RPM };
	d[1] = (struct draw){ &c->st.tpm, &t->tpm, tokens, LIM_TPM };
	d[2] = (struct draw){ &ts->rpm, &t->tier_rpm, 1, LIM_TIER_RPM };
	d[3] = (struct draw){ &ts->tpm, &t->tier_tpm, tokens, LIM_TIER_TPM };
}

enum lim_reason limiter_take(struct limiter *l, struct lim_caller *c, uint64_t est_input,
			     uint64_t est_output, uint64_t now, struct lim_ticket *t,
			     uint64_t *retry_ns)
{
	double tokens = (double)lim_tokens_by_kind(l->tiers[c->tier].tpm_kind, est_input, est_output);
	enum lim_reason why = LIM_OK;
	uint64_t retry = 0;
	struct draw d[4];

	ticket_init(t, c, est_input, est_output);
	draws_of(l, c, tokens, d);
	/* check all first, take only if all admit */
	for (int i = 0; i < 4; i++) {
		uint64_t w;

		if (!d[i].lim->rate)
			continue;
		/* a request without tokens (not an LLM call) is no tpm draw,
		 * even from a bucket in debt */
		if (d[i].cost == 0)
			continue;
		bucket_refill(d[i].b, d[i].lim, l->period_ns, now);
		w = bucket_wait(d[i].b, d[i].lim, l->period_ns, d[i].cost);
		if (!w)
			continue;
		if (why == LIM_OK)
			why = d[i].why;
		if (w > retry)
			retry = w;
	}
	if (retry_ns)
		*retry_ns = retry;
	if (why != LIM_OK)
		return why;
	for (int i = 0; i < 4; i++)
		if (d[i].lim->rate)
			d[i].b->level -= d[i].cost;
	t->tokens_charged = tokens;
	return LIM_OK;
}

enum lim_reason limiter_start(struct limiter *l, struct lim_ticket *t)
{
	struct lim_caller *c = t->caller;
	const struct l7_tier *tier = &l->tiers[c->tier];
	struct lim_state *ts = &l->tier_st[c->tier];

	if (t->started)
		return LIM_OK;
	if (tier->concurrency && c->st.inflight >= tier->concurrency)
		return LIM_CONCURRENCY;
	if (tier->tier_concurrency && ts->inflight >= tier->tier_concurrency)
		return LIM_TIER_CONCURRENCY;
	c->st.inflight++;
	ts->inflight++;
	t->started = 1;
	return LIM_OK;
}

void limiter_finish(struct limiter *l, struct lim_ticket *t)
{
	struct lim_caller *c = t->caller;
	struct lim_state *ts;

	if (!t->started || !c)
		return;
	ts = &l->tier_st[c->tier];
	if (c->st.inflight)
		c->st.inflight--;
	if (ts->inflight)
		ts->inflight--;
	t->started = 0;
}

static void adjust_tpm(struct limiter *l, struct lim_caller *c, uint64_t now, double delta)
{
	const struct l7_tier *t = &l->tiers[c->tier];

	bucket_adjust(&c->st.tpm, &t->tpm, l->period_ns, now, delta);
	bucket_adjust(&l->tier_st[c->tier].tpm, &t->tier_tpm, l->period_ns, now, delta);
}

void limiter_reconcile(struct limiter *l, struct lim_ticket *t, uint64_t input,
		       uint64_t output, uint64_t now)
{
	struct lim_caller *c = t->caller;
	double actual;

	if (!c)
		return;
	actual = (double)lim_tokens_by_kind(l->tiers[c->tier].tpm_kind, input, output);
	if (t->tokens_charged != actual)
		adjust_tpm(l, c, now, t->tokens_charged - actual);
	t->tokens_charged = actual;
}

void limiter_cancel(struct limiter *l, struct lim_ticket *t, uint64_t now)
{
	struct lim_caller *c = t->caller;
	const struct l7_tier *tier;

	if (!c)
		return;
	tier = &l->tiers[c->tier];
	bucket_adjust(&c->st.rpm, &tier->rpm, l->period_ns, now, 1);
	bucket_adjust(&l->tier_st[c->tier].rpm, &tier->tier_rpm, l->period_ns, now, 1);
	if (t->tokens_charged != 0)
		adjust_tpm(l, c, now, t->tokens_charged);
	t->tokens_charged = 0;
	/* a ticket cancelled after all is no longer in flight either */
	limiter_finish(l, t);
}

/* --- headers ---------------------------------------------------------------- */

static void view_one(struct limiter *l, struct bucket *own, const struct l7_limit *own_l,
		     struct bucket *agg, const struct l7_limit *agg_l, uint64_t now,
		     uint64_t *limit, uint64_t *remaining, uint64_t *reset)
{
	struct bucket *b = own_l->rate ? own : agg;
	const struct l7_limit *lim = own_l->rate ? own_l : agg_l;

	/* the bucket's capacity: remaining never exceeds it, and a fresh
	 * caller's remaining equals it (as in OpenAI's headers) */
	*limit = lim->rate ? limit_burst(lim) : 0;
	*remaining = bucket_remaining(b, lim, l->period_ns, now);
	*reset = bucket_reset_ns(b, lim, l->period_ns, now);
}

void limiter_view(struct limiter *l, struct lim_caller *c, uint64_t now, struct lim_view *v)
{
	const struct l7_tier *t = &l->tiers[c->tier];
	struct lim_state *ts = &l->tier_st[c->tier];

	view_one(l, &c->st.rpm, &t->rpm, &ts->rpm, &t->tier_rpm, now, &v->limit_requests,
		 &v->remaining_requests, &v->reset_requests_ns);
	view_one(l, &c->st.tpm, &t->tpm, &ts->tpm, &t->tier_tpm, now, &v->limit_tokens,
		 &v->remaining_tokens, &v->reset_tokens_ns);
}

/*
 * Rounded up, never down, so a client that waits what it is told finds
 * the bucket refilled: under a second, whole milliseconds ("12ms", and
 * "1ms" for anything shorter but not 0); under a minute, seconds with the
 * milliseconds trimmed of trailing zeros ("1.5s", "12s", "1.234s"); then
 * whole seconds as Go prints durations ("6m0s", "1h2m3s").
 */
void lim_fmt_duration(uint64_t ns, char *buf, size_t len)
{
	uint64_t ms = ns / 1000000 + (ns % 1000000 != 0);

	if (!len)
		return;
	if (ns == 0) {
		snprintf(buf, len, "0s");
	} else if (ms < 1000) {
		snprintf(buf, len, "%llums", (unsigned long long)ms);
	} else if (ms < 60000) {
		unsigned int frac = (unsigned int)(ms % 1000), digits = 3;

		while (frac && frac % 10 == 0) {
			frac /= 10;
			digits--;
		}
		if (frac)
			snprintf(buf, len, "%llu.%0*us", (unsigned long long)(ms / 1000),
				 (int)digits, frac);
		else
			snprintf(buf, len, "%llus", (unsigned long long)(ms / 1000));
	} else {
		uint64_t s = ms / 1000 + (ms % 1000 != 0);

		if (s < 3600)
			snprintf(buf, len, "%llum%llus", (unsigned long long)(s / 60),
				 (unsigned long long)(s % 60));
		else
			snprintf(buf, len, "%lluh%llum%llus", (unsigned long long)(s / 3600),
				 (unsigned long long)(s / 60 % 60), (unsigned long long)(s % 60));
	}
}

unsigned int lim_retry_after_s(uint64_t ns)
{
	uint64_t s = ns / 1000000000ULL + (ns % 1000000000ULL != 0);

	if (s < 1)
		return 1;
	return s > UINT32_MAX ? UINT32_MAX : (unsigned int)s;
}

/* --- strikes ----------------------------------------------------------------- */

/*
 * An address hashes to a run of STRIKE_PROBES slots. Its entry is found in
 * the run, or made in a free slot of the run, or else in the run's stalest
 * slot (the one struck least recently, whose window is the likeliest over). Bounding the search
 * to the run keeps a flood of addresses at a fixed cost per 429; the price
 * is that "stalest" is within the run, not the whole table.
 */
int limiter_strike(struct limiter *l, const uint8_t addr[16], unsigned int after,
		   uint64_t window_ns, uint64_t now)
{
	uint32_t home = (uint32_t)siphash(l->sip_key, addr, 16) & (STRIKE_SLOTS - 1);
	struct strike *e = NULL, *spare = NULL;

	if (!after)
		return 0;
	for (uint32_t k = 0; k < STRIKE_PROBES; k++) {
		struct strike *s = &l->strikes[(home + k) & (STRIKE_SLOTS - 1)];

		if (s->used && !memcmp(s->addr, addr, 16)) {
			e = s;
			break;
		}
		if (!spare) {
			spare = s;
			continue;
		}
		/* free beats used; else the least recently struck */
		if (spare->used && (!s->used || s->last_ns < spare->last_ns))
			spare = s;
	}
	if (e && now - e->first_ns > window_ns && now >= e->first_ns)
		e->count = 0;       /* its window is over: count afresh */
	if (!e) {
		e = spare;
		memcpy(e->addr, addr, 16);
		e->used = 1;
		e->count = 0;
	}
	if (e->count == 0)
		e->first_ns = now;
	e->last_ns = now;
	if (++e->count >= after) {
		memset(e, 0, sizeof(*e));
		return 1;
	}
	return 0;
}
