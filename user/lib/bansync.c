// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * bansync.c - bans everywhere: publish this gateway's bans to the store,
 * apply the fleet's to this gateway's deny list. See bansync.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/bpf.h>
#include <hiredis/hiredis.h>
#include "bansync.h"
#include "log.h"
#include "loop.h"
#include "pin.h"
#include "prefix.h"
#include "scripts.h"
#include "store.h"
#include "util.h"

#define MS 1000000ULL
/* A synced ban whose expiry is within this of an entry already here is
 * that entry (the same ban seen again after a reconnect): not rewritten. */
#define SAME_BAN_NS (100 * MS)
/* Stale origins (their fleet ban expired or was replaced) are swept every
 * this many periods. */
#define SWEEP_PERIODS 4

/* A ban decided here, as the last scan found it. */
struct local_ban {
	struct sluice_lpm_key key;
	__u64 created_ns, expires_ns;
	__u32 rule_id;
	int published;
};

struct bansync_pub {
	struct bansync *b;
	struct store_req *req; /* NULL: free */
};

struct bansync {
	struct loop *loop;
	struct store *store;
	const struct sluice_maps *m;
	struct loop_timer tick;
	struct local_ban *known;      /* sorted by key */
	size_t n_known;
	struct store_req *sync_req;
	struct bansync_pub pubs[BANSYNC_PUBLISH_MAX];
	uint64_t since, connects, born;
	int republish;                /* publish every live local ban again */
	unsigned int periods;
	char keys[BAN_KEYS][STORE_BAN_KEY_LEN];
	const char *keyp[BAN_KEYS];
	struct bansync_stats st;
};

static int key_cmp(const void *a, const void *b)
{
	return memcmp(&((const struct local_ban *)a)->key, &((const struct local_ban *)b)->key,
		      sizeof(struct sluice_lpm_key));
}

static void pub_reply(void *arg, int err, const struct redisReply *r)
{
	struct bansync_pub *p = arg;
	struct bansync *b = p->b;
	long long v[3];

	p->req = NULL;
	if (!err)
		err = store_reply_ints(r, v, 3);
	if (err) {
		b->st.failures++;
		b->republish = 1; /* the next period tells the store everything again */
		pr_dbg("bans: publish failed: %s", strerror(-err));
		return;
	}
	if (v[0] == 1)
		b->st.published++;
}

/* "rule:NAME" (or "rule:ID" for an unnamed rule), "sluice-l7". */
static void ban_by(const struct bansync *b, __u32 rule_id, char *buf, size_t len)
{
	struct sluice_rule r;
	__u32 slot;

	if (rule_id == SLUICE_BAN_BY_L7) {
		snprintf(buf, len, "sluice-l7");
		return;
	}
	for (slot = 0; slot < SLUICE_MAX_RULES; slot++)
		if (!bpf_map_lookup_elem(b->m->rules, &slot, &r) && (r.flags & SLUICE_RULE_IN_USE) &&
		    r.id == rule_id && r.name[0]) {
			snprintf(buf, len, "rule:%.*s", SLUICE_NAME_LEN, r.name);
			return;
		}
	snprintf(buf, len, "rule:%u", rule_id);
}

static void publish(struct bansync *b, struct local_ban *lb, uint64_t now)
{
	char member[PREFIX_STRLEN], ttl[24], by[SLUICE_BAN_ORIGIN_LEN];
	const char *args[BAN_PUBLISH_ARGC] = { member, ttl, by, store_instance(b->store) };
	struct bansync_pub *p = NULL;
	struct prefix pfx;
	int i;

	for (i = 0; i < BANSYNC_PUBLISH_MAX && !p; i++)
		if (!b->pubs[i].req)
			p = &b->pubs[i];
	if (!p)
		return; /* enough in flight: the next period */
	prefix_from_lpm(&lb->key, &pfx);
	prefix_str(&pfx, member, sizeof(member));
	snprintf(ttl, sizeof(ttl), "%llu", (unsigned long long)((lb->expires_ns - now) / MS));
	ban_by(b, lb->rule_id, by, sizeof(by));
	p->b = b;
	p->req = store_eval(b->store, SCRIPT_BAN_PUBLISH, BAN_KEYS, b->keyp, BAN_PUBLISH_ARGC,
			    args, pub_reply, p);
	lb->published = 1; /* a failure sets republish */
	pr_dbg("bans: publishing %s for %s ms (by %s)", member, ttl, by);
}

/* Reads the deny list (bounded by its size) for the live bans decided
 * here, and publishes those the store has not been told of. */
static void scan(struct bansync *b, uint64_t now)
{
	struct sluice_lpm_key k, next;
	struct local_ban *found = NULL, *old;
	size_t n = 0, cap = 0, i, visited = 0;
	unsigned int sent = 0;
	void *prev = NULL;

	while (visited++ < 2 * SLUICE_MAX_LIST_ENTRIES &&
	       !bpf_map_get_next_key(b->m->deny, prev, &next)) {
		struct sluice_deny_val v;

		if (!bpf_map_lookup_elem(b->m->deny, &next, &v) && v.kind == SLUICE_DENY_BAN &&
		    v.rule_id != SLUICE_BAN_BY_FLEET && v.expires_ns > now + MS) {
			if (array_grow(&found, &cap, n + 1, sizeof(*found), 64))
				break; /* the rest next period */
			memset(&found[n], 0, sizeof(found[n]));
			found[n].key = next;
			found[n].created_ns = v.created_ns;
			found[n].expires_ns = v.expires_ns;
			found[n].rule_id = v.rule_id;
			n++;
		}
		k = next;
		prev = &k;
	}
	if (n)
		qsort(found, n, sizeof(*found), key_cmp);
	for (i = 0; i < n && !b->republish; i++) {
		old = b->n_known ? bsearch(&found[i], b->known, b->n_known, sizeof(*old), key_cmp)
				 : NULL;
		if (old && old->created_ns == found[i].created_ns &&
		    old->expires_ns == found[i].expires_ns)
			found[i].published = old->published;
	}
	b->republish = 0;
	free(b->known);
	b->known = found;
	b->n_known = n;
	for (i = 0; i < n && sent < BANSYNC_PUBLISH_MAX; i++)
		if (!found[i].published) {
			publish(b, &found[i], now);
			sent++;
		}
}

static const char *reply_str(const redisReply *r)
{
	return r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS ? r->str : NULL;
}

static void do_sync(struct bansync *b);

/* Writes one fleet ban; 1 when written, 0 when an entry here covers it. */
static int apply(struct bansync *b, const char *member, uint64_t expires, const char *by,
		 const char *where, uint64_t now)
{
	struct sluice_deny_val cur, v = { 0 };
	struct sluice_ban_origin o = { 0 };
	struct sluice_lpm_key k;
	struct prefix pfx;
	struct errbuf e;

	if (prefix_parse(member, &pfx, &e)) {
		pr_warn("bans: the store holds a ban of '%s': %s (ignored; another sluice "
			"version, or a foreign writer under prefix %s?)", member, e.msg,
			store_prefix(b->store));
		return 0;
	}
	prefix_to_lpm(&pfx, 0, &k);
	if (!bpf_map_lookup_elem(b->m->deny, &k, &cur) &&
	    (!cur.expires_ns || (cur.expires_ns > now && cur.expires_ns + SAME_BAN_NS >= expires)))
		return 0; /* a permanent deny, or a ban that lasts as long: never shortened */
	v.expires_ns = expires;
	v.created_ns = now;
	v.kind = SLUICE_DENY_BAN;
	v.rule_id = SLUICE_BAN_BY_FLEET;
	v.prefix_len = pfx.len;
	if (bpf_map_update_elem(b->m->deny, &k, &v, BPF_ANY)) {
		pr_warn("bans: write %s into the deny list: %s%s", member, strerror(errno),
			errno == ENOSPC || errno == E2BIG ? " (the list is full: delete entries)"
							  : "");
		return 0;
	}
	if (b->m->ban_origin >= 0) {
		o.expires_ns = expires;
		snprintf(o.by, sizeof(o.by), "%s", by);
		snprintf(o.where, sizeof(o.where), "%s", where);
		if (bpf_map_update_elem(b->m->ban_origin, &k, &o, BPF_ANY))
			pr_dbg("bans: record the origin of %s: %s", member, strerror(errno));
	}
	return 1;
}

static void sync_reply(void *arg, int err, const struct redisReply *r)
{
	struct bansync *b = arg;
	const char *me = store_instance(b->store);
	unsigned int applied = 0;
	char last[PREFIX_STRLEN + 2 * SLUICE_BAN_ORIGIN_LEN + 16] = "";
	uint64_t now = loop_clock();
	size_t i, n;
	int lock, more;

	b->sync_req = NULL;
	if (!err && (r->type != REDIS_REPLY_ARRAY || r->elements < BAN_SYNC_HEAD ||
		     (r->elements - BAN_SYNC_HEAD) % BAN_SYNC_FIELDS))
		err = -EPROTO;
	for (i = 0; !err && i < BAN_SYNC_HEAD; i++)
		if (r->element[i]->type != REDIS_REPLY_INTEGER || r->element[i]->integer < 0)
			err = -EPROTO;
	if (err) {
		b->st.failures++;
		pr_dbg("bans: sync failed: %s", strerror(-err));
		return;
	}
	n = (r->elements - BAN_SYNC_HEAD) / BAN_SYNC_FIELDS;
	lock = n ? pin_lock() : 0;
	if (lock < 0) {
		b->st.failures++;
		return; /* the same bans next period */
	}
	for (i = 0; i < n; i++) {
		struct redisReply *const *f = r->element + BAN_SYNC_HEAD + i * BAN_SYNC_FIELDS;
		const char *member = reply_str(f[0]), *by = reply_str(f[3]), *where = reply_str(f[4]);

		if (!member || !by || !where || f[2]->type != REDIS_REPLY_INTEGER ||
		    f[2]->integer <= 0)
			continue;
		if (!strcmp(where, me))
			continue; /* decided here: the deny list has it */
		if (apply(b, member, now + (uint64_t)f[2]->integer * MS, by, where, now)) {
			applied++;
			snprintf(last, sizeof(last), "%s for %lld s, by %s at %s", member,
				 (f[2]->integer + 999) / 1000, by, where);
		} else {
			b->st.skipped++;
		}
	}
	if (n)
		pin_unlock(lock);
	b->st.applied += applied;
	b->st.syncs++;
	if (applied == 1)
		pr_info("bans: from the fleet: %s", last);
	else if (applied)
		pr_info("bans: %u from the fleet (the last: %s)", applied, last);
	b->since = (uint64_t)r->element[1]->integer;
	b->st.last_seq = b->since;
	more = r->element[2]->integer != 0;
	if (more)
		do_sync(b); /* the next page at once */
}

static void do_sync(struct bansync *b)
{
	char since[24], max_n[16];
	const char *args[BAN_SYNC_ARGC] = { since, max_n };

	if (b->sync_req)
		return;
	snprintf(since, sizeof(since), "%llu", (unsigned long long)b->since);
	snprintf(max_n, sizeof(max_n), "%d", BANSYNC_SYNC_MAX);
	b->sync_req = store_eval(b->store, SCRIPT_BAN_SYNC, BAN_KEYS, b->keyp, BAN_SYNC_ARGC, args,
				 sync_reply, b);
}

/* Origins whose fleet ban is gone, expired or replaced (bounded). */
static void sweep_origins(struct bansync *b, uint64_t now)
{
	struct sluice_lpm_key k, next, doomed[256];
	struct sluice_ban_origin o;
	struct sluice_deny_val v;
	size_t n = 0, visited = 0, i;
	void *prev = NULL;

	if (b->m->ban_origin < 0)
		return;
	while (n < sizeof(doomed) / sizeof(doomed[0]) && visited++ < 2 * SLUICE_MAX_LIST_ENTRIES &&
	       !bpf_map_get_next_key(b->m->ban_origin, prev, &next)) {
		if (!bpf_map_lookup_elem(b->m->ban_origin, &next, &o) &&
		    (bpf_map_lookup_elem(b->m->deny, &next, &v) || v.rule_id != SLUICE_BAN_BY_FLEET ||
		     v.expires_ns != o.expires_ns || v.expires_ns <= now))
			doomed[n++] = next;
		k = next;
		prev = &k;
	}
	for (i = 0; i < n; i++)
		bpf_map_delete_elem(b->m->ban_origin, &doomed[i]);
}

static void tick_cb(struct loop_timer *t)
{
	struct bansync *b = container_of(t, struct bansync, tick);
	uint64_t now = loop_clock();
	const struct store_stats *ss = store_stats(b->store);

	if (++b->periods % SWEEP_PERIODS == 0)
		sweep_origins(b, now);
	if (store_state(b->store) == STORE_UP) {
		/* A new connection, or a store that restarted empty: it may
		 * have lost what we told it, and we what it told us. */
		if (ss->connects != b->connects || store_born_ms(b->store) != b->born) {
			b->connects = ss->connects;
			b->born = store_born_ms(b->store);
			b->since = 0;
			b->republish = 1;
		}
		scan(b, now);
		do_sync(b);
	}
	loop_timer_at(b->loop, t, t->when_ns + BANSYNC_PERIOD_MS * MS);
}

int bansync_open(struct loop *l, struct store *s, const struct sluice_maps *m,
		 struct bansync **out)
{
	struct bansync *b = calloc(1, sizeof(*b));
	int i, err;

	*out = NULL;
	if (!b)
		return -ENOMEM;
	b->loop = l;
	b->store = s;
	b->m = m;
	err = store_ban_keys(b->keys, store_prefix(s));
	if (err) {
		free(b);
		return err;
	}
	for (i = 0; i < BAN_KEYS; i++)
		b->keyp[i] = b->keys[i];
	b->republish = 1;
	loop_timer_init(&b->tick, tick_cb);
	loop_timer_at(l, &b->tick, loop_clock() + BANSYNC_PERIOD_MS * MS);
	*out = b;
	return 0;
}

void bansync_close(struct bansync *b)
{
	int i;

	if (!b)
		return;
	loop_timer_stop(b->loop, &b->tick);
	store_cancel(b->sync_req);
	for (i = 0; i < BANSYNC_PUBLISH_MAX; i++)
		store_cancel(b->pubs[i].req);
	free(b->known);
	free(b);
}

const struct bansync_stats *bansync_stats(const struct bansync *b)
{
	return &b->st;
}
