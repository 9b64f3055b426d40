// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * sluice_xdp.bpf.c - the XDP fast path (client to server).
 *
 * Verdict order: deny list and timed bans (drop), allow list (pass, no rules),
 * then every matching rule; the packet passes only if all of them admit it.
 * Rules are found without scanning: userspace compiles them into a source
 * LPM trie, a port array and a protocol array whose values are bitmasks of
 * rule slots (docs/design.md, "Classifier"). A TCP packet that passes feeds
 * the flow table (bpf/flow.h); a SYN that opens a connection is first
 * checked against the matching rules' conn-rate and conns limits.
 *
 * The object also carries the flow sweeper: sluice_gc_arm starts its timer,
 * sluice_sweep runs one pass (tests, on their clock).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "defs.h"
#include "sluice.h"
#include "parsing.h"
#include "gcra.h"
#include "maps.h"
#include "clock.h"
#include "keys.h"
#include "flow.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* 0 on an interface attached without its TC egress program (--no-tc): the
 * server's packets are not seen there, so flows are not tracked and conns
 * limits do not apply; conn-rate still does, per SYN. */
const volatile __u32 sluice_track_flows = 1;

/* A source is banned after this many drops by one rule within a window. */
#define STRIKE_WINDOW_NS NSEC_PER_SEC

static __always_inline void lpm_key_fill(struct sluice_lpm_key *k, __u8 gen,
					 const struct pkt *p)
{
	k->data[0] = gen;
	k->data[1] = p->family;
	__builtin_memcpy(&k->data[2], p->saddr, 16);
	k->prefixlen = SLUICE_LPM_TAG_BITS + (p->family == SLUICE_AF_INET ? 32 : 128);
}

/* At most one deny entry per prefix length covers an address (/0 to /128),
 * so a walk this long gets past every expired entry in front of a live one. */
#define DENY_MAX_WALK 129

/* Deny list: a static entry or an unexpired ban drops. An expired entry is
 * deleted and the lookup repeated, so no number of expired longer prefixes
 * (a /32 ban and a /24 ban, say) can shadow a shorter static prefix behind
 * them. Returns the drop counter, or -1 to go on. */
__noinline int check_deny(const struct pkt *p)
{
	struct sluice_lpm_key k = {};
	struct sluice_deny_val *d;
	int i;

	if (!p)
		return -1;
	lpm_key_fill(&k, 0, p);
	/* A bounded loop, not unrolled: almost every packet leaves it in the
	 * first iteration. */
	for (i = 0; i < DENY_MAX_WALK; i++) {
		d = bpf_map_lookup_elem(&sluice_deny, &k);
		if (!d)
			return -1;
		if (!d->expires_ns || now_coarse_ns() < d->expires_ns)
			return d->kind == SLUICE_DENY_BAN ? SLUICE_CNT_DROP_BAN
							  : SLUICE_CNT_DROP_DENY;
		/* Expired: remove the longest-prefix entry we hit. Its key is
		 * not returned by the lookup, so rebuild it from the entry's
		 * prefix length, which userspace and ban() both store. */
		{
			struct sluice_lpm_key ek = k;
			__u32 plen = d->prefix_len;

			if (plen > 128)
				return -1;
			ek.prefixlen = SLUICE_LPM_TAG_BITS + plen;
			bpf_map_delete_elem(&sluice_deny, &ek);
		}
	}
	return -1;
}

/* The deny list's answer for a packet whose list key is k: the drop
 * counter, or -1 to go on. The common cases, no entry or a live one, are
 * answered here, inline; only an expired entry calls check_deny's walk.
 * That saves a BPF-to-BPF call and a second key on every packet (~3 ns). */
static __always_inline int deny_verdict(const struct sluice_lpm_key *k, const struct pkt *p)
{
	struct sluice_deny_val *d = bpf_map_lookup_elem(&sluice_deny, k);

	if (!d)
		return -1;
	if (!d->expires_ns || now_coarse_ns() < d->expires_ns)
		return d->kind == SLUICE_DENY_BAN ? SLUICE_CNT_DROP_BAN : SLUICE_CNT_DROP_DENY;
	return check_deny(p);
}

/* Rules whose every dimension matches. k is the packet's list key, whose
 * tag byte becomes the generation's (one key on the stack, not two). */
static __always_inline __u64 classify(const struct pkt *p, struct sluice_lpm_key *k)
{
	struct sluice_config *cfg;
	__u64 *src, *port, *proto;
	__u32 zero = 0, gen, idx;
	__u64 mask, any;

	cfg = bpf_map_lookup_elem(&sluice_cfg, &zero);
	if (!cfg)
		return 0;
	gen = cfg->active_gen & 1;

	idx = gen * SLUICE_PORTS + p->dport;
	port = bpf_map_lookup_elem(&sluice_ports, &idx);
	if (!port || !*port)
		return 0;
	idx = gen * SLUICE_PROTO_CLASSES + p->proto;
	proto = bpf_map_lookup_elem(&sluice_protos, &idx);
	if (!proto)
		return 0;
	mask = *port & *proto;
	if (!mask)
		return 0;

	any = cfg->any_src_mask[gen];
	if (!(mask & ~any))
		return mask; /* no candidate has a source prefix: skip the trie */
	k->data[0] = gen;
	src = bpf_map_lookup_elem(&sluice_srcs, k);
	return mask & (any | (src ? *src : 0));
}

/* Index of the lowest set bit; BPF has no count-trailing-zeros. */
static __always_inline __u32 lowest_bit(__u64 m)
{
	__u64 b = m & -m;
	__u32 n = 0;

	if (b & 0xFFFFFFFF00000000ULL) n += 32;
	if (b & 0xFFFF0000FFFF0000ULL) n += 16;
	if (b & 0xFF00FF00FF00FF00ULL) n += 8;
	if (b & 0xF0F0F0F0F0F0F0F0ULL) n += 4;
	if (b & 0xCCCCCCCCCCCCCCCCULL) n += 2;
	if (b & 0xAAAAAAAAAAAAAAAAULL) n += 1;
	return n;
}

static __always_inline int insert_allowed(__u64 now)
{
	struct sluice_pressure *pr;
	struct sluice_config *cfg;
	__u32 zero = 0;

	cfg = bpf_map_lookup_elem(&sluice_cfg, &zero);
	pr = bpf_map_lookup_elem(&sluice_pressure, &zero);
	if (!cfg || !pr)
		return 0;
	if (!cfg->insert_interval_fp)
		return 1;
	return gcra_admit(&pr->insert_tat, now, gcra_cost(cfg->insert_interval_fp, 1),
			  cfg->insert_tolerance_ns) == GCRA_ADMIT;
}

/* Creates the bucket of key, unless the state-insert limiter refuses this
 * source an entry of its own: then key becomes the rule's overflow bucket's
 * (created if absent). Out of line: only a new source pays for zeroing and
 * filling the new entry, not every packet (~2 ns). */
static __noinline int bucket_insert(const struct sluice_rule *r, struct sluice_bucket_key *key,
				    __u64 now)
{
	struct sluice_bucket init = {};

	if ((r->flags & SLUICE_RULE_KEY_SRC) && !insert_allowed(now)) {
		count(SLUICE_CNT_STATE_THROTTLED);
		__builtin_memset(key, 0, sizeof(*key));
		key->rule_id = r->id;
		key->prefix_len = SLUICE_OVERFLOW_PREFIX;
		if (bpf_map_lookup_elem(&sluice_buckets, key))
			return 0;
	}
	init.pkt_tat = now;
	init.byte_tat = now;
	init.created_ns = now;
	init.last_seen_ns = now;
	init.strike_window_ns = now;
	if (bpf_map_update_elem(&sluice_buckets, key, &init, BPF_NOEXIST) == 0)
		count(SLUICE_CNT_STATE_INSERT);
	return 0;
}

/* The bucket for this rule and packet, created if absent. A new source only
 * gets its own entry while the state-insert limiter admits it; otherwise it
 * shares the rule's overflow bucket, so a spoofed flood cannot churn the LRU
 * (and evict legitimate sources' state) faster than the operator's budget. */
static __always_inline struct sluice_bucket *get_bucket(const struct sluice_rule *r,
							 const struct pkt *p, __u64 now,
							 struct sluice_bucket_key *key)
{
	struct sluice_bucket *b;

	limit_key_fill(r, p->family, p->saddr, key);
	b = bpf_map_lookup_elem(&sluice_buckets, key);
	if (b)
		return b;
	bucket_insert(r, key, now);
	/* On EEXIST another CPU created it first: use theirs. */
	return bpf_map_lookup_elem(&sluice_buckets, key);
}

/* Escalation: a source that is dropped `ban_strikes` times within one second
 * goes on the deny list for ban_secs. The window reset is a plain store that
 * two CPUs may race on; the cost is a window that starts a few packets late. */
static __always_inline void maybe_ban(const struct sluice_rule *r, struct sluice_bucket *b,
				      const struct sluice_bucket_key *key, __u64 now)
{
	struct sluice_deny_val ban = {};
	struct sluice_lpm_key k = {};
	__u64 strikes;

	if (!r->ban_secs || key->family == SLUICE_AF_NONE)
		return;
	if (now - READ_ONCE(b->strike_window_ns) > STRIKE_WINDOW_NS) {
		WRITE_ONCE(b->strike_window_ns, now);
		WRITE_ONCE(b->strikes, 0);
	}
	strikes = __sync_fetch_and_add(&b->strikes, 1) + 1;
	if (strikes != r->ban_strikes)
		return;

	k.prefixlen = SLUICE_LPM_TAG_BITS + key->prefix_len;
	k.data[1] = key->family;
	__builtin_memcpy(&k.data[2], key->addr, 16);
	ban.expires_ns = now + (__u64)r->ban_secs * NSEC_PER_SEC;
	ban.created_ns = now;
	ban.kind = SLUICE_DENY_BAN;
	ban.rule_id = r->id;
	ban.prefix_len = key->prefix_len;
	if (bpf_map_update_elem(&sluice_deny, &k, &ban, BPF_ANY) == 0)
		count(SLUICE_CNT_BANS);
}

/* What the rule walk carries from rule to rule. Only scalars, so the
 * global function that applies one rule can take it. */
struct rule_walk {
	__u64 now;
	__u64 mask;       /* slots still to apply */
	__u32 drop_reason; /* first drop counter, or SLUICE_CNT_MAX */
	__u32 new_conn;   /* a SYN that opens a connection */
	__u32 conns_full; /* a conns count found no room */
	__u32 pad;
	struct conn_charges charges; /* counts this SYN took so far */
};

/* bpf_loop's context: the walk and the packet it is about. */
struct walk_ctx {
	struct rule_walk w;
	const struct pkt *p;
};

/* A new connection against one rule's conns limit. Returns a drop counter,
 * or SLUICE_CNT_MAX to go on. */
static __always_inline __u32 charge_conns(const struct sluice_rule *r, __u32 slot,
					  struct rule_walk *w, const struct pkt *p)
{
	struct conn_charges *ch = &w->charges;
	struct sluice_bucket_key key = {};
	__u32 n = ch->n;
	int res;

	/* Past SLUICE_FLOW_CONN_RULES conns rules a connection is not
	 * counted again (docs/design.md). */
	if (n >= SLUICE_FLOW_CONN_RULES)
		return SLUICE_CNT_MAX;
	limit_key_fill(r, p->family, p->saddr, &key);
	res = conns_reserve(&key, r->conns, !(r->flags & SLUICE_RULE_ACTION_COUNT), w->now);
	if (res & CONN_NO_ROOM) {
		w->conns_full = 1;
		return SLUICE_CNT_MAX;
	}
	if (res & CONN_CHARGED) {
		ch->id[n] = r->id;
		ch->slot[n] = slot;
		ch->n = n + 1;
	}
	return res & CONN_OVER ? SLUICE_CNT_DROP_CONNS : SLUICE_CNT_MAX;
}

/* Applies the rule in one slot. A global function: the verifier checks its
 * many paths once, not once per rule the walk might visit. */
__noinline int apply_rule(struct rule_walk *w, const struct pkt *p, __u32 slot)
{
	struct sluice_bucket_key key = {};
	struct sluice_rule_stats *st;
	const struct sluice_rule *r;
	struct sluice_bucket *b = NULL;
	enum gcra_verdict v;
	__u32 reason = SLUICE_CNT_MAX;
	__u64 pkt_cost = 0, byte_cost = 0;
	__u32 conn_limits;

	if (!w || !p)
		return 0;
	r = bpf_map_lookup_elem(&sluice_rules, &slot);
	st = bpf_map_lookup_elem(&sluice_rstats, &slot);
	if (!r || !st || !(r->flags & SLUICE_RULE_IN_USE))
		return 0;
	conn_limits = w->new_conn ? r->flags & (SLUICE_RULE_HAS_CONN_RATE | SLUICE_RULE_HAS_CONNS) : 0;
	/* A rule of connection limits only has no bucket to charge for the
	 * other packets of a connection. */
	if ((r->flags & (SLUICE_RULE_HAS_PPS | SLUICE_RULE_HAS_BPS)) ||
	    (conn_limits & SLUICE_RULE_HAS_CONN_RATE)) {
		b = get_bucket(r, p, w->now, &key);
		if (!b)
			return 0; /* the LRU could not give us an entry: fail open */
	}

	if (b && (r->flags & SLUICE_RULE_HAS_PPS)) {
		pkt_cost = gcra_cost(r->pkt_interval_fp, 1);
		v = gcra_admit(&b->pkt_tat, w->now, pkt_cost, r->pkt_tolerance_ns);
		if (v == GCRA_CONTENDED)
			count(SLUICE_CNT_CAS_EXHAUSTED);
		if (v != GCRA_ADMIT) {
			reason = SLUICE_CNT_DROP_RATE;
			pkt_cost = 0;
		}
	}
	if (b && reason == SLUICE_CNT_MAX && (r->flags & SLUICE_RULE_HAS_BPS)) {
		byte_cost = gcra_cost(r->byte_interval_fp, p->len);
		v = gcra_admit(&b->byte_tat, w->now, byte_cost, r->byte_tolerance_ns);
		if (v == GCRA_CONTENDED)
			count(SLUICE_CNT_CAS_EXHAUSTED);
		if (v != GCRA_ADMIT) {
			reason = SLUICE_CNT_DROP_BYTES;
			byte_cost = 0;
		}
	}
	if (b && reason == SLUICE_CNT_MAX && (conn_limits & SLUICE_RULE_HAS_CONN_RATE)) {
		v = gcra_admit(&b->conn_tat, w->now, gcra_cost(r->conn_interval_fp, 1),
			       r->conn_tolerance_ns);
		if (v == GCRA_CONTENDED)
			count(SLUICE_CNT_CAS_EXHAUSTED);
		if (v != GCRA_ADMIT)
			reason = SLUICE_CNT_DROP_CONN_RATE;
	}
	if (reason == SLUICE_CNT_MAX && (conn_limits & SLUICE_RULE_HAS_CONNS) && sluice_track_flows)
		reason = charge_conns(r, slot, w, p);
	/* A later limit refused the packet: give back what the earlier ones
	 * charged, so one drop does not also spend tokens. */
	if (reason != SLUICE_CNT_MAX && b) {
		if (pkt_cost)
			gcra_refund(&b->pkt_tat, pkt_cost);
		if (byte_cost)
			gcra_refund(&b->byte_tat, byte_cost);
	}

	/* The bucket's own counters and last-seen time are statistics (top,
	 * metrics); the limit is the TATs alone. So they are plain stores,
	 * not atomics: a lock-prefixed add costs ~4 ns even on a cache line
	 * this CPU owns, and the three of them were 8 ns of the one-rule
	 * drop path. The price, when two CPUs update one source's counters
	 * at the same instant, is an increment lost (docs/design.md). The
	 * last-seen time moves once per clock tick, so it is written only
	 * then. */
	if (b && READ_ONCE(b->last_seen_ns) != w->now)
		WRITE_ONCE(b->last_seen_ns, w->now);
	if (reason == SLUICE_CNT_MAX) {
		if (b) {
			b->passed_pkts += 1;
			b->passed_bytes += p->len;
		}
		st->passed_pkts++;
		st->passed_bytes += p->len;
		return 0;
	}

	if (b) {
		b->dropped_pkts += 1;
		b->dropped_bytes += p->len;
	}
	st->dropped_pkts++;
	st->dropped_bytes += p->len;
	if (r->flags & SLUICE_RULE_ACTION_COUNT)
		return 0; /* dry run: counted above, never dropped or banned */
	if (b)
		maybe_ban(r, b, &key, w->now);
	if (w->drop_reason == SLUICE_CNT_MAX)
		w->drop_reason = reason;
	return 0;
}

/* One step of the walk: the lowest slot still to apply. */
static long walk_step(__u32 i, struct walk_ctx *c)
{
	__u32 slot;

	if (!c->w.mask)
		return 1;
	slot = lowest_bit(c->w.mask);
	c->w.mask &= c->w.mask - 1;
	apply_rule(&c->w, c->p, slot);
	return 0;
}

/* A SYN that the rules admitted becomes a tracked flow holding its counts.
 * Returns the drop counter when the flow-table policy refuses it, else
 * SLUICE_CNT_MAX. Global, so the verifier checks it once rather than after
 * every way through the rules. */
__noinline int open_flow(const struct sluice_flow_key *fk, const struct conn_charges *ch,
			 __u64 now, __u32 conns_full)
{
	struct sluice_config *cfg;
	__u32 zero = 0;
	int err = 0;

	if (!fk || !ch)
		return SLUICE_CNT_MAX;
	if (!conns_full) {
		err = flow_open(fk, ch, now);
		if (!err)
			return SLUICE_CNT_MAX;
	}
	conn_charges_release(fk, ch, now);
	if (err == -EEXIST)
		return SLUICE_CNT_MAX; /* another CPU saw its twin first */
	count(SLUICE_CNT_FLOW_FULL);
	cfg = bpf_map_lookup_elem(&sluice_cfg, &zero);
	if (cfg && cfg->flows_full == SLUICE_FULL_CLOSED)
		return SLUICE_CNT_DROP_FLOW_FULL;
	return SLUICE_CNT_MAX; /* fail open: passes untracked */
}

/* A SYN without ACK or RST: a client opening a connection. */
static __always_inline int is_syn(const struct pkt *p)
{
	return p->proto == SLUICE_PROTO_TCP && p->dport &&
	       (p->tcp_flags & (TCP_SYN | TCP_ACK | TCP_RST)) == TCP_SYN;
}

/* Everything after parsing: deny, allow, rules, then the flow table.
 * Returns the XDP verdict. A global function, so the verifier checks it
 * once rather than once for every way through the parser. */
__noinline int decide(const struct pkt *p, __u32 malformed_l4)
{
	struct sluice_flow_key fk = {};
	struct sluice_lpm_key lk = {};
	struct walk_ctx c = {};
	struct rule_walk *w = &c.w;
	int reason, track;

	if (!p)
		return XDP_PASS;
	/* The source is known even when the transport header is not, so the
	 * deny list applies to malformed packets too. One key serves both
	 * lists. */
	lpm_key_fill(&lk, 0, p);
	reason = deny_verdict(&lk, p);
	if (reason >= 0) {
		count(reason);
		return XDP_DROP;
	}
	if (malformed_l4) {
		count(SLUICE_CNT_MALFORMED);
		return XDP_PASS;
	}

	track = sluice_track_flows && p->proto == SLUICE_PROTO_TCP && p->dport;
	if (track)
		flow_key_from_client(p, &fk);
	/* A retransmitted SYN finds its flow: it is not a new connection. */
	if (is_syn(p))
		w->new_conn = !track || !bpf_map_lookup_elem(&sluice_flows, &fk);

	if (bpf_map_lookup_elem(&sluice_allow, &lk)) {
		count(SLUICE_CNT_ALLOWED);
	} else {
		w->mask = classify(p, &lk);
		if (w->mask)
			w->now = now_bucket_ns();
		c.p = p;
		w->drop_reason = SLUICE_CNT_MAX;
		/* Most packets match one rule: a direct call saves bpf_loop's
		 * two indirect calls (the rule, then the empty mask that ends
		 * the walk). */
		if (w->mask && !(w->mask & (w->mask - 1)))
			apply_rule(w, p, lowest_bit(w->mask));
		else if (w->mask)
			bpf_loop(SLUICE_MAX_RULES, walk_step, &c, 0);
		if (w->drop_reason != SLUICE_CNT_MAX) {
			/* Only a SYN under conns rules holds counts: don't
			 * pay a call for nothing on every other drop (~3 ns). */
			if (w->charges.n)
				conn_charges_release(&fk, &w->charges, w->now);
			count(w->drop_reason);
			return XDP_DROP;
		}
	}

	if (!track)
		return XDP_PASS;
	if (w->new_conn) {
		/* The precise clock: the flow's creation starts its connect
		 * latency, which the TC program ends on the same clock. */
		reason = open_flow(&fk, &w->charges, now_ns(), w->conns_full);
		if (reason != SLUICE_CNT_MAX) {
			count(reason);
			return XDP_DROP;
		}
		return XDP_PASS;
	}
	flow_from_client(&fk, p);
	return XDP_PASS;
}

SEC("xdp")
int sluice_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct pkt p = {};
	enum parse_result pr;

	count(SLUICE_CNT_PACKETS);
	pr = parse_packet(data, data_end, &p);
	if (pr == PARSE_NON_IP) {
		count(SLUICE_CNT_NON_IP);
		return XDP_PASS;
	}
	if (pr == PARSE_MALFORMED_L2) {
		count(SLUICE_CNT_MALFORMED);
		return XDP_PASS;
	}
	return decide(&p, pr == PARSE_MALFORMED_L4);
}

/* The sweeper's timer: started (or taken over) by sluice_gc_arm, which the
 * loader runs once with BPF_PROG_TEST_RUN after every load, so the newest
 * program's sweeper is the one that runs. Never attached. */
static int gc_fire(void *map, __u32 *key, struct sluice_gc_slot *slot)
{
	flow_sweep(now_ns());
	bpf_timer_start(&slot->timer, FLOW_SWEEP_INTERVAL_NS, 0);
	return 0;
}

SEC("xdp")
int sluice_gc_arm(struct xdp_md *ctx)
{
	struct sluice_gc_slot *slot;
	__u32 zero = 0;
	long err;

	slot = bpf_map_lookup_elem(&sluice_gc, &zero);
	if (!slot)
		return XDP_ABORTED;
	err = bpf_timer_init(&slot->timer, &sluice_gc, 1 /* CLOCK_MONOTONIC */);
	if (err && err != -EBUSY)
		return XDP_ABORTED;
	if (bpf_timer_set_callback(&slot->timer, gc_fire))
		return XDP_ABORTED;
	if (bpf_timer_start(&slot->timer, FLOW_SWEEP_INTERVAL_NS, 0))
		return XDP_ABORTED;
	return XDP_PASS;
}

/* One sweep now, on the program's clock (the test clock in tests). */
SEC("xdp")
int sluice_sweep(struct xdp_md *ctx)
{
	flow_sweep(now_ns());
	return XDP_PASS;
}
