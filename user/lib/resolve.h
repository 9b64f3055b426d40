/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * resolve.h - host names to addresses without blocking the event loop.
 *
 * getaddrinfo(3) blocks (DNS timeouts are seconds), so one worker thread
 * runs it, one request at a time, and the answers come back on the loop:
 * the worker puts a finished request on a locked queue and writes to an
 * eventfd that the loop watches; the loop's handler takes the queue and
 * calls each request's callback, on the loop's thread, from its own turn
 * (never from inside resolve_start or resolve_cancel).
 *
 * Threading rule: the worker touches nothing but the request it took off
 * the queue (its name and port in, its answer out) and the two queues,
 * under the resolver's mutex. Everything else, the callback included, is
 * the loop thread's. So a resolver is used from its loop's thread only.
 *
 *   resolver_new(loop, 64, &r, &e);
 *   req = resolve_start(r, "api.example.com", 443, on_addrs, backend, &e);
 *   ... on_addrs(backend, &res) runs later, once: res->err == 0 with
 *       res->n addresses (IPv4 and IPv6, in getaddrinfo's order), or
 *       res->err < 0 with res->msg ("resolve api.example.com: Name or
 *       service not known").
 *   resolve_cancel(r, req) before that: the callback will never run. An
 *   owner that goes away cancels its requests first.
 *   resolver_free(r): cancels every request and joins the worker (waiting
 *       for a getaddrinfo in progress, bounded by resolv.conf's timeouts).
 *
 * Names under the special-use TLD .invalid (RFC 6761) fail at once, with no
 * query. A numeric address is answered by getaddrinfo itself, without DNS.
 */
#ifndef SLUICE_RESOLVE_H
#define SLUICE_RESOLVE_H

#include <stddef.h>
#include <sys/socket.h>
#include "log.h"

struct loop;
struct resolver;
struct resolve_req;

#define RESOLVE_MAX_ADDRS 16        /* more addresses than this are dropped */
#define RESOLVE_HOST_LEN 256

struct resolve_result {
	int err;                                  /* 0, or -ENOENT (no such name), -EAGAIN
	                                             (DNS did not answer: try again), -EIO, ... */
	const char *msg;                          /* "" when err == 0 */
	const char *host;                         /* the name asked for */
	size_t n;                                 /* addresses in addrs, >= 1 when err == 0 */
	const struct sockaddr_storage *addrs;     /* each with the port set */
	const socklen_t *lens;
};

/* The result and its arrays live only for the duration of the call. */
typedef void (*resolve_cb)(void *arg, const struct resolve_result *res);

/* A resolver on loop l with at most max_pending requests outstanding
 * (queued, running, or answered and not yet delivered). Starts the
 * worker. 0, or a negative errno with the reason in e. */
int resolver_new(struct loop *l, unsigned int max_pending, struct resolver **out,
		 struct errbuf *e);
/* Cancels every outstanding request (none calls back), joins the worker,
 * frees. NULL is a no-op. */
void resolver_free(struct resolver *r);

/*
 * Asks for every TCP address of host (a name, or an IPv4/IPv6 literal
 * without brackets) with port set in each. Returns the request, a handle
 * valid until its callback has run or it is cancelled; or NULL with the
 * reason in e: -EAGAIN at max_pending outstanding, -EINVAL for an empty or
 * overlong host, -ENOMEM.
 */
struct resolve_req *resolve_start(struct resolver *r, const char *host, unsigned int port,
				  resolve_cb cb, void *arg, struct errbuf *e);
/* The callback will not run. req must be outstanding (not yet called
 * back, not cancelled before); it is invalid once this returns. */
void resolve_cancel(struct resolver *r, struct resolve_req *req);

/* Requests outstanding, for tests and metrics. */
unsigned int resolver_pending(const struct resolver *r);

#endif
