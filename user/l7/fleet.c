// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * fleet.c - sluice-l7 with a store: every rpm, tpm and concurrency limit is
 * the fleet's (docs/fleet.md "sluice-l7 with a store").
 *
 * The decisions are the scripts' (user/lib/lua/l7_*.lua); this file builds
 * their keys and arguments and sends them on the store's one connection.
 * admit.c owns the flow: a request's take and slot acquire are the
 * client's (c->sreq, cancelled when it goes); settles, renewals and releases
 * need no answer and belong to the l7 itself, which outlives the store.
 *
 * When the store is not up, or a request's call fails, admit.c decides with
 * the local limiter, whose limits are the config's divided by the instances
 * counted at the last l7_hello (fleet_share_apply): never unlimited, never
 * zero.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <hiredis/hiredis.h>
#include <openssl/evp.h>
#include "l7.h"
#include "log.h"
#include "scripts.h"

#define KEY_MAX 320
#define container_of(p, type, member) ((type *)((char *)(p) - offsetof(type, member)))

static uint64_t realtime_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int fleet_usable(const struct l7 *l)
{
	return l->store && store_state(l->store) == STORE_UP;
}

/* One line per change between deciding through the store and locally. */
static void fleet_log_mode(struct l7 *l)
{
	int up = fleet_usable(l);

	if (up == l->fleet_up)
		return;
	l->fleet_up = up;
	l->st.fleet_state_changes++;
	if (up)
		pr_info("limits: fleet-wide through the store at %s (its buckets are "
			"authoritative)", store_addr(l->store));
	else
		pr_warn("limits: local until the store at %s is back: each limit divided by %u "
			"live instance(s)", store_addr(l->store), l->fleet_live);
}

static void on_store_state(void *arg, enum store_state s)
{
	(void)s;
	fleet_log_mode(arg);
}

static void share_limit(struct l7_limit *x, unsigned int n)
{
	if (!x->rate || n <= 1)
		return;
	x->rate = x->rate / n ? x->rate / n : 1;
	x->burst = x->burst / n ? x->burst / n : 1;
}

static void share_count(unsigned int *x, unsigned int n)
{
	if (*x && n > 1)
		*x = *x / n ? *x / n : 1;
}

void fleet_share_apply(struct l7 *l)
{
	struct l7_config share = l->cfg;   /* shallow: the limiter reads tiers only */
	unsigned int n = l->fleet_live ? l->fleet_live : 1;

	if (!l->store)
		return;
	for (unsigned int t = 0; t < share.n_tiers; t++) {
		struct l7_tier *tr = &share.tiers[t];

		share_limit(&tr->rpm, n);
		share_limit(&tr->tpm, n);
		share_limit(&tr->tier_rpm, n);
		share_limit(&tr->tier_tpm, n);
		share_count(&tr->concurrency, n);
		share_count(&tr->tier_concurrency, n);
	}
	limiter_reconfigure(l->lim, &share);
}

static void hello_done(void *arg, int err, const struct redisReply *r)
{
	struct l7 *l = arg;
	unsigned int n;

	l->hello_pending = 0;
	if (err || !r || r->type != REDIS_REPLY_INTEGER || r->integer < 1)
		return; /* the store logs its own failures; the last count stays */
	n = r->integer > 100000 ? 100000 : (unsigned int)r->integer;
	if (n == l->fleet_live)
		return;
	pr_info("store: %u live sluice-l7 instance(s) (was %u): a store outage leaves each "
		"1/%u of every limit", n, l->fleet_live, n);
	l->fleet_live = n;
	fleet_share_apply(l);
}

static void send_hello(struct l7 *l)
{
	char key[KEY_MAX], stale[24];
	const char *keys[1] = { key }, *args[2] = { store_instance(l->store), stale };

	if (store_l7_key(key, sizeof(key), store_prefix(l->store), NULL, L7_KEY_INSTANCES,
			 NULL) < 0)
		return;
	snprintf(stale, sizeof(stale), "%u", FLEET_STALE_MS);
	l->hello_pending = 1;
	store_eval(l->store, SCRIPT_L7_HELLO, 1, keys, 2, args, hello_done, l);
}

/* Keys of a client's caller and tier; id NULL: the caller's hash. */
static int client_key(const struct client *c, enum store_l7_key kind, char *buf, size_t len)
{
	const struct l7 *l = c->l7;
	const char *id = kind == L7_KEY_RESERVATION ? c->rid : c->hid;

	return store_l7_key(buf, len, store_prefix(l->store), tier_name(l, c->tier), kind, id) < 0
		       ? -EINVAL
		       : 0;
}

static void renew_done(void *arg, int err, const struct redisReply *r)
{
	struct l7 *l = arg;

	(void)r;
	if (err)
		l->st.fleet_renew_fail++;
}

/* Every running request's slot gets a new deadline: one l7_slot_renew per
 * request, pipelined. */
static void renew_all(struct l7 *l)
{
	char ttl[24], k1[KEY_MAX], k2[KEY_MAX];

	snprintf(ttl, sizeof(ttl), "%u", FLEET_SLOT_TTL_MS);
	for (struct client *c = l->clients; c; c = c->next) {
		const char *keys[2] = { k1, k2 }, *args[2] = { ttl, c->rid };

		if (!c->fleet_slot)
			continue;
		if (client_key(c, L7_KEY_CALLER_SLOTS, k1, sizeof(k1)) ||
		    client_key(c, L7_KEY_TIER_SLOTS, k2, sizeof(k2)))
			continue;
		store_eval(l->store, SCRIPT_L7_SLOT_RENEW, 2, keys, 2, args, renew_done, l);
	}
}

static void fleet_tick(struct loop_timer *t)
{
	struct l7 *l = container_of(t, struct l7, fleet_timer);
	uint64_t now = loop_now(l->loop);

	loop_timer_at(l->loop, t, now + FLEET_RETRY_NS);
	fleet_log_mode(l);
	if (!fleet_usable(l))
		return;
	if (now >= l->fleet_next_hello_ns && !l->hello_pending) {
		l->fleet_next_hello_ns = now + FLEET_HELLO_MS * 1000000ULL;
		send_hello(l);
	}
	if (now >= l->fleet_next_renew_ns) {
		l->fleet_next_renew_ns = now + FLEET_RENEW_MS * 1000000ULL;
		renew_all(l);
	}
	/* Other instances free slots too: the queued ask again. */
	if (wq_first(&l->wq))
		admit_dispatch_queue(l);
}

int fleet_open(struct l7 *l)
{
	int err;

	l->fleet_live = 1;
	if (!l->cfg.store.on)
		return 0;
	l->rid_epoch_ms = realtime_ms();
	err = store_open(l->loop, &l->cfg.store, store_scripts, SCRIPT_MAX, on_store_state, l,
			 &l->store);
	if (err) {
		pr_err("store %s: %s (check the store line of the config)", l->cfg.store.addr,
		       strerror(-err));
		return err;
	}
	loop_timer_init(&l->fleet_timer, fleet_tick);
	pr_info("store %s: instance %s; limits are local until it is up", l->cfg.store.addr,
		store_instance(l->store));
	l->fleet_up = 0;
	fleet_share_apply(l);
	return loop_timer_after(l->loop, &l->fleet_timer, FLEET_RETRY_NS);
}

void fleet_close(struct l7 *l)
{
	if (!l->store)
		return;
	loop_timer_stop(l->loop, &l->fleet_timer);
	store_close(l->store);
	l->store = NULL;
}

/* The caller's id hashed (SHA-256, 128 bits in hex): the same on every
 * instance, and no key material in a key name. The request id: instance,
 * this run's start, a counter. */
void fleet_ids(struct client *c, const char *id, size_t len)
{
	struct l7 *l = c->l7;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	if (!l->store)
		return;
	if (!EVP_Digest(id, len, md, &mdlen, EVP_sha256(), NULL) || mdlen < 16)
		memset(md, 0, sizeof(md));
	for (int i = 0; i < 16; i++)
		snprintf(c->hid + 2 * i, 3, "%02x", md[i]);
	snprintf(c->rid, sizeof(c->rid), "%s/%llx/%llu", store_instance(l->store),
		 (unsigned long long)l->rid_epoch_ms, (unsigned long long)++l->rid_seq);
}

int fleet_needs_slot(const struct client *c)
{
	const struct l7_tier *t = &c->l7->cfg.tiers[c->tier];

	return c->fleet_rated && !c->fleet_slot_local && !t->shadow &&
	       (t->concurrency || t->tier_concurrency);
}

static void limits_args(const struct client *c, char a[][24])
{
	const struct l7_tier *t = &c->l7->cfg.tiers[c->tier];
	const struct l7_limit *lim[4] = { &t->rpm, &t->tpm, &t->tier_rpm, &t->tier_tpm };

	snprintf(a[0], 24, "%llu", (unsigned long long)store_born_ms(c->l7->store));
	snprintf(a[1], 24, "%llu", (unsigned long long)c->l7->cfg.period_ms);
	for (int i = 0; i < 4; i++) {
		snprintf(a[2 + 2 * i], 24, "%llu", (unsigned long long)lim[i]->rate);
		snprintf(a[3 + 2 * i], 24, "%llu", (unsigned long long)lim[i]->burst);
	}
}

int fleet_send_take(struct client *c, store_cb cb)
{
	struct l7 *l = c->l7;
	char k[3][KEY_MAX], a[L7_TAKE_ARGC][24];
	const char *keys[3] = { k[0], k[1], k[2] }, *args[L7_TAKE_ARGC];
	uint64_t tokens = lim_tokens_by_kind(l->cfg.tiers[c->tier].tpm_kind, c->est.input,
					     c->est.output);

	limits_args(c, a);
	snprintf(a[10], 24, "1");
	snprintf(a[11], 24, "%llu", (unsigned long long)tokens);
	snprintf(a[12], 24, "%u", FLEET_RESERVATION_MS);
	for (int i = 0; i < L7_TAKE_ARGC; i++)
		args[i] = a[i];
	if (client_key(c, L7_KEY_CALLER, k[0], KEY_MAX) || client_key(c, L7_KEY_TIER, k[1], KEY_MAX) ||
	    client_key(c, L7_KEY_RESERVATION, k[2], KEY_MAX))
		return -EINVAL;
	c->sreq_kind = SCRIPT_L7_TAKE;
	c->sreq = store_eval(l->store, SCRIPT_L7_TAKE, 3, keys, L7_TAKE_ARGC, args, cb, c);
	return 0;
}

int fleet_send_acquire(struct client *c, store_cb cb)
{
	struct l7 *l = c->l7;
	const struct l7_tier *t = &l->cfg.tiers[c->tier];
	char k1[KEY_MAX], k2[KEY_MAX], ttl[24], cl[24], tl[24];
	const char *keys[2] = { k1, k2 }, *args[4] = { c->rid, ttl, cl, tl };

	snprintf(ttl, sizeof(ttl), "%u", FLEET_SLOT_TTL_MS);
	snprintf(cl, sizeof(cl), "%u", t->concurrency);
	snprintf(tl, sizeof(tl), "%u", t->tier_concurrency);
	if (client_key(c, L7_KEY_CALLER_SLOTS, k1, sizeof(k1)) ||
	    client_key(c, L7_KEY_TIER_SLOTS, k2, sizeof(k2)))
		return -EINVAL;
	c->sreq_kind = SCRIPT_L7_SLOT_ACQUIRE;
	c->sreq = store_eval(l->store, SCRIPT_L7_SLOT_ACQUIRE, 2, keys, 4, args, cb, c);
	return 0;
}

static void settle_done(void *arg, int err, const struct redisReply *r)
{
	struct l7 *l = arg;

	(void)r;
	if (!err)
		l->st.fleet_settles++;
}

static void send_settle(struct client *c, uint64_t actual, int refund_request)
{
	struct l7 *l = c->l7;
	char k[3][KEY_MAX], a[L7_SETTLE_ARGC][24];
	const char *keys[3] = { k[0], k[1], k[2] }, *args[L7_SETTLE_ARGC];

	if (!l->store)
		return;
	limits_args(c, a);
	snprintf(a[10], 24, "%llu", (unsigned long long)actual);
	snprintf(a[11], 24, "%d", refund_request ? 1 : 0);
	for (int i = 0; i < L7_SETTLE_ARGC; i++)
		args[i] = a[i];
	if (client_key(c, L7_KEY_CALLER, k[0], KEY_MAX) || client_key(c, L7_KEY_TIER, k[1], KEY_MAX) ||
	    client_key(c, L7_KEY_RESERVATION, k[2], KEY_MAX))
		return;
	store_eval(l->store, SCRIPT_L7_SETTLE, 3, keys, L7_SETTLE_ARGC, args, settle_done, l);
}

/* Exactly once per request: the flag goes with the first settle, and the
 * script applies a reservation once however often it is asked. */
void fleet_settle(struct client *c, uint64_t actual, int refund_request)
{
	if (!c->fleet_take)
		return;
	c->fleet_take = 0;
	send_settle(c, actual, refund_request);
}

static void send_release(struct client *c)
{
	struct l7 *l = c->l7;
	char k1[KEY_MAX], k2[KEY_MAX];
	const char *keys[2] = { k1, k2 }, *args[1] = { c->rid };

	if (!l->store || client_key(c, L7_KEY_CALLER_SLOTS, k1, sizeof(k1)) ||
	    client_key(c, L7_KEY_TIER_SLOTS, k2, sizeof(k2)))
		return;
	store_eval(l->store, SCRIPT_L7_SLOT_RELEASE, 2, keys, 1, args, renew_done, l);
}

void fleet_release_slot(struct client *c)
{
	if (!c->fleet_slot)
		return;
	c->fleet_slot = 0;
	send_release(c);
}

void fleet_drop(struct client *c)
{
	if (!c->sreq)
		return;
	store_cancel(c->sreq);
	c->sreq = NULL;
	/* It may have run already: undo it. The same connection keeps the
	 * order, so the undo runs after it. */
	if (c->sreq_kind == SCRIPT_L7_TAKE)
		send_settle(c, 0, 1);
	else
		send_release(c);
}
