// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * fleet.c - global rules: this gateway's leases of the fleet's limits.
 *
 * Every LEASE_RENEW_MS, for each global rule: read its counters (the want),
 * ask the store for a lease (lease.lua, one EVALSHA per rule, pipelined on
 * the one connection), and write what to enforce into the pinned rule: the
 * lease while it lives, then the safe share. The XDP program needs no
 * change: it enforces whatever limit the rule holds. The leases' state goes
 * to the sluice_fleet map, where the CLI and the metrics read it.
 *
 * With the store comes bans everywhere (user/lib/bansync.c): this
 * gateway's bans published, the fleet's applied here.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/bpf.h>
#include <hiredis/hiredis.h>
#include "bansync.h"
#include "lease.h"
#include "log.h"
#include "loop.h"
#include "maps.h"
#include "pin.h"
#include "scripts.h"
#include "sluiced.h"
#include "store.h"

struct fleet_lease {
	struct lease l;
	struct fleet *f;
	struct store_req *req;           /* a renewal in flight */
	uint64_t sent_ns;
	uint64_t written[SLUICE_FLEET_KINDS]; /* last written to the rule */
	int live;
};

struct fleet {
	struct daemon *d;
	struct store *store;
	struct bansync *bans;            /* with the store: bans everywhere */
	struct store_config scfg;
	struct fleet_lease leases[SLUICE_MAX_RULES];
	struct loop_timer tick;
	int n;
};

static struct fleet fleet;

static uint32_t store_state_now(const struct fleet *f)
{
	return f->store ? (uint32_t)store_state(f->store) : 0;
}

static void sample(struct fleet *f, struct fleet_lease *fl, uint64_t now)
{
	const struct sluice_maps *m = &f->d->maps;
	struct sluice_rule_stats rs;
	struct lease_sample s = { 0 };
	struct sluice_bucket_key key = { .rule_id = fl->l.rule_id };
	struct sluice_conn_count cc;

	if (!maps_percpu_sum(m->rstats, fl->l.slot, (__u64 *)&rs, sizeof(rs) / sizeof(__u64))) {
		s.pkts = rs.passed_pkts + rs.dropped_pkts;
		s.bytes = rs.passed_bytes + rs.dropped_bytes;
	}
	if (!bpf_map_lookup_elem(m->conns, &key, &cc)) {
		s.conns_opened = cc.opened + cc.refused;
		s.conns_open = cc.count & ~SLUICE_CONN_DEAD;
	}
	lease_sample(&fl->l, &s, now);
}

/* Writes what to enforce now into the rule and the fleet map. */
static void enforce(struct fleet *f, struct fleet_lease *fl, uint64_t now)
{
	const struct sluice_maps *m = &f->d->maps;
	uint64_t e[SLUICE_FLEET_KINDS];
	struct sluice_fleet_rule fr;
	struct sluice_rule r;
	__u32 slot = fl->l.slot;
	int lock;

	lease_enforce(&fl->l, now, e);
	lease_describe(&fl->l, e, store_state_now(f), &fr);
	if (m->fleet >= 0 && bpf_map_update_elem(m->fleet, &slot, &fr, BPF_ANY))
		pr_warn("global rule %s: write the fleet map: %s", fl->l.name, strerror(errno));
	if (!memcmp(e, fl->written, sizeof(e)))
		return;
	lock = pin_lock();
	if (lock < 0)
		return;
	if (bpf_map_lookup_elem(m->rules, &slot, &r) || !(r.flags & SLUICE_RULE_IN_USE) ||
	    r.id != fl->l.rule_id || !(r.flags & SLUICE_RULE_GLOBAL)) {
		pin_unlock(lock);
		fl->live = 0; /* the rule went (sluice rule del): a reload binds again */
		return;
	}
	lease_write_rule(&fl->l, e, &r);
	/* One update of the slot, as the adaptive controllers do: a packet
	 * sees the old limits or the new ones (docs/design.md). */
	if (bpf_map_update_elem(m->rules, &slot, &r, BPF_EXIST))
		pr_warn("global rule %s: write the lease: %s", fl->l.name, strerror(errno));
	else
		memcpy(fl->written, e, sizeof(e));
	pin_unlock(lock);
}

static void lease_reply(void *arg, int err, const struct redisReply *rep)
{
	struct fleet_lease *fl = arg;
	struct fleet *f = fl->f;
	long long v[2 + SLUICE_FLEET_KINDS];
	uint64_t grant[SLUICE_FLEET_KINDS];
	int k;

	fl->req = NULL;
	if (!err)
		err = store_reply_ints(rep, v, 2 + SLUICE_FLEET_KINDS);
	if (err) {
		lease_failed(&fl->l);
		pr_dbg("global rule %s: renewal failed: %s", fl->l.name, strerror(-err));
		return; /* the tick enforces the old lease, then the safe share */
	}
	for (k = 0; k < SLUICE_FLEET_KINDS; k++)
		grant[k] = v[2 + k] > 0 ? (uint64_t)v[2 + k] : 0;
	if (v[0] < 1 || v[1] < 1) {
		lease_failed(&fl->l);
		return;
	}
	lease_granted(&fl->l, grant, (unsigned int)v[0], (uint64_t)v[1], fl->sent_ns);
	enforce(f, fl, loop_now(f->d->loop));
}

static void renew(struct fleet *f, struct fleet_lease *fl, uint64_t now)
{
	char key[STORE_WORD_LEN * 2 + SLUICE_NAME_LEN + 16];
	char nums[4 + 3 * SLUICE_FLEET_KINDS][24];
	const char *args[4 + 3 * SLUICE_FLEET_KINDS], *keys[1] = { key };
	uint64_t e[SLUICE_FLEET_KINDS];
	int k, n = 0;

	if (fl->req)
		return; /* the last one has not come back: its timeout will say */
	lease_enforce(&fl->l, now, e);
	snprintf(key, sizeof(key), "%s:{rule:%s}:alloc", store_prefix(f->store), fl->l.name);
	snprintf(nums[n], sizeof(nums[n]), "%llu", (unsigned long long)store_born_ms(f->store));
	args[n] = nums[n];
	n++;
	args[n++] = store_instance(f->store);
	snprintf(nums[n], sizeof(nums[n]), "%u", LEASE_MS);
	args[n] = nums[n];
	n++;
	snprintf(nums[n], sizeof(nums[n]), "%d", SLUICE_FLEET_KINDS);
	args[n] = nums[n];
	n++;
	for (k = 0; k < SLUICE_FLEET_KINDS; k++) {
		snprintf(nums[n], sizeof(nums[n]), "%llu", (unsigned long long)fl->l.global[k]);
		args[n] = nums[n];
		n++;
		snprintf(nums[n], sizeof(nums[n]), "%llu", (unsigned long long)fl->l.want[k]);
		args[n] = nums[n];
		n++;
		snprintf(nums[n], sizeof(nums[n]), "%llu", (unsigned long long)e[k]);
		args[n] = nums[n];
		n++;
	}
	fl->sent_ns = loop_clock();
	fl->req = store_eval(f->store, SCRIPT_LEASE, 1, keys, n, args, lease_reply, fl);
}

static void tick_cb(struct loop_timer *t)
{
	struct fleet *f = container_of(t, struct fleet, tick);
	uint64_t now = loop_clock();
	int i;

	for (i = 0; i < f->n; i++) {
		struct fleet_lease *fl = &f->leases[i];

		if (!fl->live)
			continue;
		sample(f, fl, now);
		if (f->store && store_state(f->store) == STORE_UP)
			renew(f, fl, now);
		else
			lease_failed(&fl->l);
		enforce(f, fl, now);
	}
	/* a fixed period from the due time: renewals do not drift */
	loop_timer_at(f->d->loop, t, t->when_ns + LEASE_RENEW_MS * 1000000ULL);
}

/* The store just came up: ask at once instead of at the next tick. */
static void on_store_state(void *arg, enum store_state s)
{
	struct fleet *f = arg;
	uint64_t now = loop_clock();
	int i;

	for (i = 0; i < f->n; i++)
		if (f->leases[i].live) {
			if (s == STORE_UP)
				renew(f, &f->leases[i], now);
			else
				enforce(f, &f->leases[i], now); /* the store state shows */
		}
}

static void store_stop(struct fleet *f)
{
	int i;

	for (i = 0; i < f->n; i++) {
		store_cancel(f->leases[i].req);
		f->leases[i].req = NULL;
	}
	bansync_close(f->bans);
	f->bans = NULL;
	store_close(f->store);
	f->store = NULL;
}

int fleet_check(const struct config *c, struct config_err *ce)
{
	int i, globals = 0;

	for (i = 0; i < SLUICE_MAX_RULES; i++)
		if (policy_rule_live(&c->want, i) && (c->want.rules[i].flags & SLUICE_RULE_GLOBAL))
			globals++;
	if (globals && !c->store.on)
		pr_warn("%s: %d global rule(s) but no 'store' line: each enforces its totals on "
			"this gateway alone", c->path, globals);
	(void)ce;
	return 0;
}

/* The pinned slot of the global rule named name, or -1. */
static int pinned_slot(const struct policy *cur, const char *name)
{
	int s;

	for (s = 0; s < SLUICE_MAX_RULES; s++)
		if (policy_rule_live(cur, s) && (cur->rules[s].flags & SLUICE_RULE_GLOBAL) &&
		    !strncmp(cur->rules[s].name, name, SLUICE_NAME_LEN))
			return s;
	return -1;
}

int fleet_apply(struct daemon *d, const struct config *c, const struct policy *cur)
{
	struct fleet *f = &fleet;
	struct fleet_lease next[SLUICE_MAX_RULES];
	uint64_t now = loop_clock();
	int i, j, n = 0, err;

	f->d = d;
	if (!c->store.on || !f->store || !store_config_equal(&c->store, &f->scfg)) {
		if (f->store) {
			pr_info("store: closing %s (the configuration changed)", f->scfg.addr);
			store_stop(f);
		}
		if (c->store.on) {
			f->scfg = c->store;
			err = store_open(d->loop, &c->store, store_scripts, SCRIPT_MAX, on_store_state,
					 f, &f->store);
			if (err)
				pr_err("%s:%u: store: %s; global rules use their safe share and "
				       "bans stay local", c->path, c->store.line, strerror(-err));
			else if ((err = bansync_open(d->loop, f->store, &d->maps, &f->bans)))
				pr_err("%s:%u: store: bans everywhere: %s; bans stay local (check "
				       "the prefix's length)", c->path, c->store.line, strerror(-err));
		}
	}
	/* The global rules of the file, bound to their pinned slots; an
	 * unchanged rule keeps its lease and its counters. */
	memset(next, 0, sizeof(next));
	for (i = 0; c->store.on && i < SLUICE_MAX_RULES; i++) {
		const struct sluice_rule *w = &c->want.rules[i];
		struct fleet_lease *fl = &next[n];
		struct sluice_fleet_rule fr;
		int slot;

		if (!policy_rule_live(&c->want, i) || !(w->flags & SLUICE_RULE_GLOBAL))
			continue;
		slot = pinned_slot(cur, w->name);
		if (slot < 0)
			continue;
		for (j = 0; j < f->n; j++)
			if (f->leases[j].live && f->leases[j].l.rule_id == cur->rules[slot].id)
				break;
		if (j < f->n) {
			*fl = f->leases[j];
			store_cancel(fl->req); /* its reply would land in the old array */
			fl->req = NULL;
			lease_update_limits(&fl->l, w);
		} else {
			struct sluice_rule g = *w;

			g.id = cur->rules[slot].id;
			lease_init(&fl->l, &g, (uint32_t)slot);
			__u32 s32 = (__u32)slot;
			if (d->maps.fleet >= 0 && !bpf_map_lookup_elem(d->maps.fleet, &s32, &fr))
				lease_adopt(&fl->l, &fr);
			pr_info("global rule %s: %llu pps, %llu bps, %llu conn/s, %llu conns for the "
				"fleet", w->name, (unsigned long long)w->pps,
				(unsigned long long)w->bps, (unsigned long long)w->conn_rate,
				(unsigned long long)w->conns);
		}
		fl->l.slot = (uint32_t)slot;
		memset(fl->written, 0xff, sizeof(fl->written)); /* write at once */
		fl->live = 1;
		n++;
	}
	for (j = 0; j < f->n; j++)
		store_cancel(f->leases[j].req);
	memcpy(f->leases, next, sizeof(next));
	f->n = n;
	for (i = 0; i < n; i++) {
		f->leases[i].f = f;
		sample(f, &f->leases[i], now);
		enforce(f, &f->leases[i], now);
		if (f->store && store_state(f->store) == STORE_UP)
			renew(f, &f->leases[i], now);
	}
	if (!loop_timer_armed(&f->tick)) {
		loop_timer_init(&f->tick, tick_cb);
		loop_timer_at(d->loop, &f->tick, now + LEASE_RENEW_MS * 1000000ULL);
	}
	return 0;
}

void fleet_owned(const struct config *c, unsigned int *owned)
{
	int i;

	if (!c->store.on)
		return; /* without a store the file's limits apply again */
	for (i = 0; i < fleet.n; i++)
		if (fleet.leases[i].live && fleet.leases[i].l.slot < SLUICE_MAX_RULES)
			owned[fleet.leases[i].l.slot] |= CONFIG_OWN_PPS | CONFIG_OWN_BPS |
							  CONFIG_OWN_CONN_RATE | CONFIG_OWN_CONNS;
}

int fleet_store_state(void)
{
	return fleet.store ? (int)store_state(fleet.store) : -1;
}

void fleet_stop(struct daemon *d)
{
	struct fleet *f = &fleet;

	if (f->d)
		loop_timer_stop(d->loop, &f->tick);
	if (f->store)
		store_stop(f);
	f->n = 0;
}
