// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * backend.c - the backends: round robin over those that are up, passive
 * health (a backend that fails `backend-fails` times in a row rests for
 * `backend-down`, then gets traffic again; one more failure sends it back),
 * and a pool of idle keep-alive connections per backend.
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
#include "sockaddr.h"

int backends_init(struct l7 *l)
{
	l->n_backends = l->cfg.n_backends;
	for (unsigned int i = 0; i < l->n_backends; i++) {
		struct backend *b = &l->backends[i];
		int any;

		memset(b, 0, sizeof(*b));
		memcpy(b->name, l->cfg.backends[i], sizeof(b->name));
		b->name[sizeof(b->name) - 1] = '\0';
		if (sockaddr_parse(b->name, 0, &b->addr, &b->addr_len, &any) || any) {
			pr_err("backend %s: not a numeric ADDR:PORT of one host", b->name);
			return -EINVAL;
		}
	}
	prov_init(l);
	return 0;
}

int backend_pick(struct l7 *l, struct client *c, uint64_t *retry_ns)
{
	uint64_t soonest = UINT64_MAX;

	for (unsigned int i = 0; i < l->n_backends; i++) {
		unsigned int b = (l->rr + i) % l->n_backends;
		struct backend *be = &l->backends[b];
		uint64_t at = prov_ready_at(l, b, c);   /* its own limits (provider_glue.c) */

		if (be->down_until_ns > at)
			at = be->down_until_ns;
		if (at <= loop_now(l->loop)) {
			l->rr = b + 1;
			return (int)b;
		}
		if (at < soonest)
			soonest = at;
	}
	*retry_ns = soonest - loop_now(l->loop);
	return -1;
}

void backend_failed(struct l7 *l, unsigned int b)
{
	struct backend *be = &l->backends[b];

	be->failures_total++;
	if (++be->fails < l->cfg.backend_fails)
		return;
	if (be->down_until_ns <= loop_now(l->loop))
		pr_warn("backend %s: %u failures in a row: out of rotation for %llu ms", be->name,
			be->fails, (unsigned long long)l->cfg.backend_down_ms);
	be->down_until_ns = loop_now(l->loop) + l->cfg.backend_down_ms * 1000000ULL;
}

void backend_ok(struct l7 *l, unsigned int b)
{
	struct backend *be = &l->backends[b];

	if (be->fails >= l->cfg.backend_fails)
		pr_info("backend %s: answering again", be->name);
	be->fails = 0;
}

struct upstream *backend_idle_take(struct l7 *l, unsigned int b)
{
	struct backend *be = &l->backends[b];
	struct upstream *u = be->idle;

	if (!u)
		return NULL;
	backend_idle_drop(l, u);
	return u;
}

int backend_idle_put(struct l7 *l, struct upstream *u)
{
	struct backend *be = &l->backends[u->backend];

	if (be->n_idle >= L7_POOL_MAX)
		return -ENOSPC;
	u->state = UP_IDLE;
	upstream_deadline(u, 0);
	u->readable = 0;
	u->prev = NULL;
	u->next = be->idle;
	if (be->idle)
		be->idle->prev = u;
	be->idle = u;
	be->n_idle++;
	return 0;
}

void backend_idle_drop(struct l7 *l, struct upstream *u)
{
	struct backend *be = &l->backends[u->backend];

	if (u->prev)
		u->prev->next = u->next;
	else if (be->idle == u)
		be->idle = u->next;
	else
		return; /* not pooled */
	if (u->next)
		u->next->prev = u->prev;
	u->prev = u->next = NULL;
	be->n_idle--;
}

void backends_close(struct l7 *l)
{
	for (unsigned int i = 0; i < l->n_backends; i++) {
		struct backend *be = &l->backends[i];

		while (be->idle)
			upstream_close(be->idle);   /* freed by upstream.c's reap */
	}
	prov_close(l);
}
