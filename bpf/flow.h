/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * flow.h - TCP connection tracking across XDP ingress (the client's packets)
 * and TC egress (the server's), the concurrent connection counts that
 * `conns` limits read, and the sweeper that expires silent connections.
 *
 * States (enum sluice_flow_state):
 *
 *   client SYN ------------> SYN_SENT --server SYN-ACK--> SYN_RECV
 *   SYN_RECV --client ACK--> ESTABLISHED
 *   any --FIN from one side--> CLOSING --FIN from the other--> (deleted)
 *   any --RST from either side--> (deleted)
 *   SYN_SENT, SYN_RECV older than syn_timeout -----------> (deleted)
 *   CLOSING silent for fin_timeout, ESTABLISHED for idle_timeout -> (deleted)
 *
 * Counts never leak: a flow carries the count keys it charged, and whoever
 * deletes it releases them. Two parties may try to end one flow at once
 * (a RST at XDP, a FIN at TC, the sweeper); each first moves the state to
 * DEAD by compare-and-swap, and only the one that succeeds deletes the entry
 * and releases the counts. Every other state change is a CAS too, so nothing
 * brings a DEAD flow back.
 */
#ifndef SLUICE_BPF_FLOW_H
#define SLUICE_BPF_FLOW_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "defs.h"
#include "sluice.h"
#include "maps.h"
#include "clock.h"
#include "keys.h"
#include "parsing.h"
#include "signals.h"

/* Silence shorter than this does not rewrite a flow's last-seen time, so an
 * established flow's packets do not all dirty its cache line. */
#define FLOW_SEEN_GRANULARITY_NS (100 * 1000 * 1000ULL)
#define FLOW_SWEEP_INTERVAL_NS NSEC_PER_SEC
/* A count entry at zero for this long is reclaimed by the sweeper. */
#define CONN_COUNT_IDLE_NS NSEC_PER_SEC
#define FLOW_CAS_RETRIES 4

/* The flow a client packet belongs to. */
static __always_inline void flow_key_from_client(const struct pkt *p, struct sluice_flow_key *k)
{
	__builtin_memcpy(k->client, p->saddr, 16);
	__builtin_memcpy(k->server, p->daddr, 16);
	k->client_port = p->sport;
	k->server_port = p->dport;
	k->family = p->family;
}

/* The flow a server packet belongs to: the same key, seen from the other end. */
static __always_inline void flow_key_from_server(const struct pkt *p, struct sluice_flow_key *k)
{
	__builtin_memcpy(k->client, p->daddr, 16);
	__builtin_memcpy(k->server, p->saddr, 16);
	k->client_port = p->dport;
	k->server_port = p->sport;
	k->family = p->family;
}

/* ------------------------------------------------------------------------
 * Concurrent connection counts. */

enum conn_charge {
	CONN_CHARGED = 1, /* the count went up: release it later */
	CONN_OVER = 2,    /* the limit was reached */
	CONN_NO_ROOM = 4, /* no count entry could be had */
};

static __noinline __attribute__((unused)) int conns_reserve(const struct sluice_bucket_key *key, __u64 limit,
					 int enforce, __u64 now)
{
	struct sluice_conn_count init = {}, *c;
	int i;

	c = bpf_map_lookup_elem(&sluice_conns, key);
	if (!c) {
		init.changed_ns = now;
		bpf_map_update_elem(&sluice_conns, key, &init, BPF_NOEXIST);
		c = bpf_map_lookup_elem(&sluice_conns, key);
		if (!c)
			return CONN_NO_ROOM;
	}
#pragma unroll
	for (i = 0; i < FLOW_CAS_RETRIES; i++) {
		__u64 old = READ_ONCE(c->count);
		int over = old >= limit;

		/* Being reclaimed (it sat at zero): the sweeper deletes it
		 * next, and the source's next SYN gets a fresh one. */
		if (old & SLUICE_CONN_DEAD)
			return CONN_NO_ROOM;
		if (over)
			__sync_fetch_and_add(&c->refused, 1);
		if (over && enforce)
			return CONN_OVER;
		if (__sync_val_compare_and_swap(&c->count, old, old + 1) == old) {
			__sync_fetch_and_add(&c->opened, 1);
			WRITE_ONCE(c->changed_ns, now);
			return CONN_CHARGED | (over ? CONN_OVER : 0);
		}
	}
	return CONN_NO_ROOM;
}

/* Only a holder releases, so the count is above zero here: a plain atomic
 * subtract, which cannot fail the way a CAS loop can. */
static __always_inline void conns_release(const struct sluice_bucket_key *key, __u64 now)
{
	struct sluice_conn_count *c = bpf_map_lookup_elem(&sluice_conns, key);

	if (!c)
		return; /* the rule was deleted, and its counts with it */
	__sync_fetch_and_sub(&c->count, 1);
	WRITE_ONCE(c->changed_ns, now);
}

/* The count keys a connection holds: the rules (id and slot) whose conns
 * count it took. The key itself is found again from the rule and the
 * client's address. Only scalars, so global functions can take it. */
struct conn_charges {
	__u32 n;
	__u32 id[SLUICE_FLOW_CONN_RULES];
	__u8 slot[SLUICE_FLOW_CONN_RULES];
};

/* Releases the counts a connection held (when it ends, or when a later
 * check refused its SYN). A global function: the verifier checks it once,
 * not once per path that reaches it. */
__noinline int conn_charges_release(const struct sluice_flow_key *fk,
				    const struct conn_charges *ch, __u64 now)
{
	int i;

	if (!fk || !ch)
		return 0;
	for (i = 0; i < SLUICE_FLOW_CONN_RULES; i++) {
		struct sluice_bucket_key key = {};
		const struct sluice_rule *r;
		__u32 slot = ch->slot[i];

		if (!ch->id[i])
			continue;
		r = bpf_map_lookup_elem(&sluice_rules, &slot);
		if (!r || r->id != ch->id[i])
			continue; /* deleted: its counts went with it */
		limit_key_fill(r, fk->family, (const __u32 *)fk->client, &key);
		conns_release(&key, now);
	}
	return 0;
}

/* ------------------------------------------------------------------------
 * Flows. */

/* Ends a flow: claims it (state -> DEAD), deletes it, releases its counts
 * and counts why. Returns 1 if this caller ended it. */
static __noinline int flow_end(const struct sluice_flow_key *key, struct sluice_flow *f,
				    __u32 why, __u64 now)
{
	struct sluice_flow_key k = *key;
	struct conn_charges ch = {};
	int i, claimed = 0;

#pragma unroll
	for (i = 0; i < FLOW_CAS_RETRIES; i++) {
		__u32 st = READ_ONCE(f->state);

		if (st == SLUICE_FLOW_DEAD)
			return 0;
		if (__sync_val_compare_and_swap(&f->state, st, SLUICE_FLOW_DEAD) == st) {
			claimed = 1;
			break;
		}
	}
	if (!claimed)
		return 0; /* the sweeper will find it */
	/* Copy before deleting: a deleted element's memory is reused. */
	__builtin_memcpy(ch.id, f->charged_id, sizeof(ch.id));
	__builtin_memcpy(ch.slot, f->charged_slot, sizeof(ch.slot));
	bpf_map_delete_elem(&sluice_flows, &k);
	conn_charges_release(&k, &ch, now);
	count(why);
	return 1;
}

/* Moves a live flow to `to` unless it is DEAD or already past it. */
static __always_inline void flow_advance(struct sluice_flow *f, __u32 from, __u32 to)
{
	__sync_val_compare_and_swap(&f->state, from, to);
}

static __always_inline void flow_touch(__u64 *seen, __u64 now)
{
	if (now - READ_ONCE(*seen) > FLOW_SEEN_GRANULARITY_NS)
		WRITE_ONCE(*seen, now);
}

/* A new connection: the flow holds the charges from here on. Returns 0,
 * -EEXIST if another CPU tracked it first, or -E2BIG (any other failure
 * too) when there is no room. */
static __always_inline int flow_open(const struct sluice_flow_key *key,
				     const struct conn_charges *ch, __u64 now)
{
	struct sluice_flow f = {};
	int err;

	f.created_ns = now;
	f.client_seen_ns = now;
	f.server_seen_ns = now;
	f.state = SLUICE_FLOW_SYN_SENT;
	__builtin_memcpy(f.charged_id, ch->id, sizeof(f.charged_id));
	__builtin_memcpy(f.charged_slot, ch->slot, sizeof(f.charged_slot));
	err = bpf_map_update_elem(&sluice_flows, key, &f, BPF_NOEXIST);
	if (err == -EEXIST)
		return err;
	if (err)
		return -E2BIG;
	count(SLUICE_CNT_FLOW_INSERT);
	return 0;
}

/* A packet from the client on a tracked flow (not a new SYN). Global, as
 * conn_charges_release. */
__noinline int flow_from_client(const struct sluice_flow_key *key, const struct pkt *p)
{
	struct sluice_flow *f;
	__u64 now = now_coarse_ns();
	__u32 st;

	if (!key || !p)
		return 0;
	f = bpf_map_lookup_elem(&sluice_flows, key);
	if (!f)
		return 0; /* not tracked: opened before sluice, or table full */
	st = READ_ONCE(f->state);
	if (st == SLUICE_FLOW_DEAD)
		return 0;
	if (p->tcp_flags & TCP_RST) {
		flow_end(key, f, SLUICE_CNT_FLOW_RESET, now);
		return 0;
	}
	if ((p->tcp_flags & TCP_ACK) && st == SLUICE_FLOW_SYN_RECV)
		flow_advance(f, SLUICE_FLOW_SYN_RECV, SLUICE_FLOW_ESTABLISHED);
	/* A request starts with the first payload after the server answered
	 * the last one; more segments of the same request change nothing. */
	if (p->payload_len && !READ_ONCE(f->request_ns)) {
		__u64 t = now_ns();

		if (__sync_val_compare_and_swap(&f->request_ns, 0, t) == 0)
			signals_add(signals_get(key->server_port, 0), SLUICE_SIG_REQUESTS);
	}
	if (p->tcp_flags & TCP_FIN) {
		__u32 fin = __sync_fetch_and_or(&f->fin, SLUICE_FIN_CLIENT) | SLUICE_FIN_CLIENT;

		if (fin == (SLUICE_FIN_CLIENT | SLUICE_FIN_SERVER)) {
			flow_end(key, f, SLUICE_CNT_FLOW_CLOSED, now);
			return 0;
		}
		flow_advance(f, READ_ONCE(f->state), SLUICE_FLOW_CLOSING);
	}
	flow_touch(&f->client_seen_ns, now);
	return 0;
}

/* What a server packet told the TC program. */
enum server_event {
	SERVER_FIRST_RESPONSE = 1, /* first payload after a request: read its status */
};

/* A packet from the server. Returns SERVER_* events for the caller.
 * Global, as conn_charges_release. */
__noinline int flow_from_server(const struct sluice_flow_key *key, const struct pkt *p)
{
	struct sluice_flow *f;
	__u64 now = now_coarse_ns();
	int events = 0;
	__u32 st;

	if (!key || !p)
		return 0;
	f = bpf_map_lookup_elem(&sluice_flows, key);
	if (!f)
		return 0;
	st = READ_ONCE(f->state);
	if (st == SLUICE_FLOW_DEAD)
		return 0;
	if (p->tcp_flags & TCP_RST) {
		signals_add(signals_get(key->server_port, 1), SLUICE_SIG_SERVER_RST);
		flow_end(key, f, SLUICE_CNT_FLOW_RESET, now);
		return 0;
	}
	if ((p->tcp_flags & (TCP_SYN | TCP_ACK)) == (TCP_SYN | TCP_ACK)) {
		/* Only the first SYN-ACK measures: a retransmitted one finds
		 * the state moved on. */
		if (__sync_val_compare_and_swap(&f->state, SLUICE_FLOW_SYN_SENT,
						SLUICE_FLOW_SYN_RECV) == SLUICE_FLOW_SYN_SENT) {
			struct sluice_signals *s = signals_get(key->server_port, 1);
			__u64 t = now_ns();

			signals_add(s, SLUICE_SIG_CONNECTIONS);
			signals_observe(s, SLUICE_HIST_CONNECT, t - f->created_ns);
		}
	}
	if (p->payload_len) {
		__u64 req = READ_ONCE(f->request_ns);

		if (req && __sync_val_compare_and_swap(&f->request_ns, req, 0) == req) {
			struct sluice_signals *s = signals_get(key->server_port, 1);

			signals_add(s, SLUICE_SIG_RESPONSES);
			signals_observe(s, SLUICE_HIST_RESPONSE, now_ns() - req);
			events |= SERVER_FIRST_RESPONSE;
		}
	}
	if (p->tcp_flags & TCP_FIN) {
		__u32 fin = __sync_fetch_and_or(&f->fin, SLUICE_FIN_SERVER) | SLUICE_FIN_SERVER;

		if (fin == (SLUICE_FIN_CLIENT | SLUICE_FIN_SERVER)) {
			flow_end(key, f, SLUICE_CNT_FLOW_CLOSED, now);
			return events;
		}
		flow_advance(f, READ_ONCE(f->state), SLUICE_FLOW_CLOSING);
	}
	flow_touch(&f->server_seen_ns, now);
	return events;
}

/* ------------------------------------------------------------------------
 * The sweeper: expires flows and reclaims idle count entries. A bpf_timer
 * runs it every FLOW_SWEEP_INTERVAL_NS in the kernel, so timeouts hold
 * whether or not any daemon runs; tests run it directly on their clock. */

struct sweep_ctx {
	__u64 now;
	__u64 syn_timeout, fin_timeout, idle_timeout;
};

static long sweep_flow(struct bpf_map *map, struct sluice_flow_key *key, struct sluice_flow *f,
		       struct sweep_ctx *c)
{
	__u32 st = READ_ONCE(f->state);
	__u64 seen = READ_ONCE(f->client_seen_ns), sseen = READ_ONCE(f->server_seen_ns);

	if (sseen > seen)
		seen = sseen;
	switch (st) {
	case SLUICE_FLOW_SYN_SENT:
	case SLUICE_FLOW_SYN_RECV:
		if (c->now < f->created_ns || c->now - f->created_ns <= c->syn_timeout)
			return 0;
		if (flow_end(key, f, SLUICE_CNT_FLOW_EXPIRED_HALF_OPEN, c->now) &&
		    st == SLUICE_FLOW_SYN_SENT)
			signals_add(signals_get(key->server_port, 0), SLUICE_SIG_SYN_TIMEOUT);
		return 0;
	case SLUICE_FLOW_CLOSING:
		if (c->now > seen && c->now - seen > c->fin_timeout)
			flow_end(key, f, SLUICE_CNT_FLOW_EXPIRED_IDLE, c->now);
		return 0;
	case SLUICE_FLOW_ESTABLISHED:
		if (c->now > seen && c->now - seen > c->idle_timeout)
			flow_end(key, f, SLUICE_CNT_FLOW_EXPIRED_IDLE, c->now);
		return 0;
	default:
		return 0;
	}
}

/* A count at zero that nobody touched for a while: mark it DEAD (so no SYN
 * charges it meanwhile), then delete it. */
static long sweep_count(struct bpf_map *map, struct sluice_bucket_key *key,
			struct sluice_conn_count *cc, struct sweep_ctx *c)
{
	struct sluice_bucket_key k = *key;

	if (READ_ONCE(cc->count) != 0 || c->now - READ_ONCE(cc->changed_ns) < CONN_COUNT_IDLE_NS)
		return 0;
	if (__sync_val_compare_and_swap(&cc->count, 0, SLUICE_CONN_DEAD) != 0)
		return 0;
	bpf_map_delete_elem(&sluice_conns, &k);
	return 0;
}

static __always_inline void flow_sweep(__u64 now)
{
	struct sweep_ctx c = { .now = now };
	struct sluice_config *cfg;
	__u32 zero = 0;

	cfg = bpf_map_lookup_elem(&sluice_cfg, &zero);
	if (!cfg)
		return;
	/* Zero means "not configured": the defaults, never "expire at once". */
	c.syn_timeout = cfg->syn_timeout_ns ?: SLUICE_DEFAULT_SYN_TIMEOUT_S * NSEC_PER_SEC;
	c.fin_timeout = cfg->fin_timeout_ns ?: SLUICE_DEFAULT_FIN_TIMEOUT_S * NSEC_PER_SEC;
	c.idle_timeout = cfg->idle_timeout_ns ?: SLUICE_DEFAULT_IDLE_TIMEOUT_S * NSEC_PER_SEC;
	bpf_for_each_map_elem(&sluice_flows, sweep_flow, &c, 0);
	bpf_for_each_map_elem(&sluice_conns, sweep_count, &c, 0);
	count(SLUICE_CNT_SWEEPS);
}

#endif
