// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * backend.c - the backends: round robin over those that are up and, within
 * one, over its addresses (every address of its name, backend_addr.c);
 * passive health per address (an address that fails `backend-fails` times
 * in a row rests for `backend-down`, then gets traffic again; one more
 * failure sends it back), and a pool of idle keep-alive connections per
 * address.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>
#include "l7.h"
#include "log.h"

int backends_init(struct l7 *l)
{
	l->n_backends = l->cfg.n_backends;
	for (unsigned int i = 0; i < l->n_backends; i++) {
		struct backend *b = &l->backends[i];
		int err;

		memset(b, 0, sizeof(*b));
		b->l7 = l;
		b->index = i;
		memcpy(b->name, l->cfg.backends[i].name, sizeof(b->name));
		err = backend_addrs_init(l, b);
		if (err)
			return err;
	}
	prov_init(l);
	return 0;
}

/* An address of be that is up (round robin), or -1 with the soonest time
 * one comes back in *soonest (unchanged when be has no address yet). */
static int addr_pick(struct l7 *l, struct backend *be, uint64_t *soonest)
{
	uint64_t now = loop_now(l->loop);

	for (unsigned int i = 0; i < be->n_addrs; i++) {
		unsigned int a = (be->rr + i) % be->n_addrs;
		struct backend_addr *ad = &be->addrs[a];

		if (ad->down_until_ns <= now) {
			be->rr = a + 1;
			return (int)a;
		}
		if (ad->down_until_ns < *soonest)
			*soonest = ad->down_until_ns;
	}
	return -1;
}

int backend_pick(struct l7 *l, struct client *c, unsigned int *addr, uint64_t *retry_ns)
{
	uint64_t now = loop_now(l->loop), soonest = UINT64_MAX;

	for (unsigned int i = 0; i < l->n_backends; i++) {
		unsigned int b = (l->rr + i) % l->n_backends;
		uint64_t at = prov_ready_at(l, b, c);   /* its own limits (provider_glue.c) */
		int a;

		if (at > now) {
			if (at < soonest)
				soonest = at;
			continue;
		}
		a = addr_pick(l, &l->backends[b], &soonest);
		if (a >= 0) {
			l->rr = b + 1;
			*addr = (unsigned int)a;
			return (int)b;
		}
	}
	/* No address at all (names not resolved yet): look again in a second. */
	*retry_ns = soonest == UINT64_MAX ? 1000000000ULL : soonest - now;
	return -1;
}

int backend_up(const struct l7 *l, const struct backend *be)
{
	uint64_t now = loop_now(l->loop);

	for (unsigned int a = 0; a < be->n_addrs; a++)
		if (be->addrs[a].down_until_ns <= now)
			return 1;
	return 0;
}

unsigned int backend_tries(const struct l7 *l)
{
	unsigned int n = 0;

	for (unsigned int i = 0; i < l->n_backends; i++)
		n += l->backends[i].n_addrs;
	return n ? n : 1;
}

void backend_failed(struct l7 *l, unsigned int b, unsigned int addr, uint64_t gen)
{
	struct backend *be = &l->backends[b];
	struct backend_addr *ad = &be->addrs[addr];

	be->failures_total++;
	if (gen != be->gen)
		return;   /* an address of an older resolution */
	if (++ad->fails < l->cfg.backend_fails)
		return;
	if (ad->down_until_ns <= loop_now(l->loop))
		pr_warn("backend %s (%s): %u failures in a row: out of rotation for %llu ms",
			be->name, ad->str, ad->fails, (unsigned long long)l->cfg.backend_down_ms);
	ad->down_until_ns = loop_now(l->loop) + l->cfg.backend_down_ms * 1000000ULL;
}

void backend_ok(struct l7 *l, unsigned int b, unsigned int addr, uint64_t gen)
{
	struct backend *be = &l->backends[b];
	struct backend_addr *ad = &be->addrs[addr];

	if (gen != be->gen)
		return;
	if (ad->fails >= l->cfg.backend_fails)
		pr_info("backend %s (%s): answering again", be->name, ad->str);
	ad->fails = 0;
}

struct upstream *backend_idle_take(struct l7 *l, unsigned int b, unsigned int addr)
{
	struct upstream *u = l->backends[b].addrs[addr].idle;

	if (!u)
		return NULL;
	backend_idle_drop(l, u);
	return u;
}

int backend_idle_put(struct l7 *l, struct upstream *u)
{
	struct backend *be = &l->backends[u->backend];
	struct backend_addr *ad = &be->addrs[u->addr];

	if (u->gen != be->gen)
		return -ESTALE;   /* its address may be gone: not worth keeping */
	if (ad->n_idle >= L7_POOL_MAX)
		return -ENOSPC;
	u->state = UP_IDLE;
	upstream_deadline(u, 0);
	u->readable = 0;
	u->prev = NULL;
	u->next = ad->idle;
	if (ad->idle)
		ad->idle->prev = u;
	ad->idle = u;
	ad->n_idle++;
	return 0;
}

void backend_idle_drop(struct l7 *l, struct upstream *u)
{
	struct backend_addr *ad = &l->backends[u->backend].addrs[u->addr];

	if (u->prev)
		u->prev->next = u->next;
	else if (ad->idle == u)
		ad->idle = u->next;
	else
		return; /* not pooled */
	if (u->next)
		u->next->prev = u->prev;
	u->prev = u->next = NULL;
	ad->n_idle--;
}

void backends_close(struct l7 *l)
{
	/* Connections first: their TLS sessions belong to the contexts. */
	while (l->busy) {
		struct upstream *u = l->busy;

		if (u->cl)
			u->cl->up = NULL;
		upstream_abort(u);
	}
	for (unsigned int i = 0; i < l->n_backends; i++) {
		struct backend *be = &l->backends[i];

		for (unsigned int a = 0; a < be->n_addrs; a++)
			while (be->addrs[a].idle)
				upstream_close(be->addrs[a].idle);   /* freed by upstream.c's reap */
	}
	prov_close(l);
	for (unsigned int i = 0; i < l->n_backends; i++)
		backend_addrs_close(l, &l->backends[i]);
	resolver_free(l->resolver);
	l->resolver = NULL;
}
