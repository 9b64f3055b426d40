// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * backend_addr.c - what a backend written as a URL needs beyond an address:
 *
 * - its addresses: a numeric host has one, set at start; a host name has
 *   every address getaddrinfo gives (A and AAAA), looked up on the
 *   resolver's thread (resolve.h) so the loop never blocks, again every
 *   `resolve-every`. A lookup that fails keeps the addresses it had. A new
 *   set keeps the health and idle connections of the addresses it shares
 *   with the old one; the others' idle connections are closed, and their
 *   busy ones finish but neither report health nor go back to a pool (the
 *   backend's gen moves on).
 * - its TLS context (https): one per backend, so its session cache resumes
 *   the backend's own sessions; verified against tls-ca or the system store.
 * - the request head it gets: Host of the URL, the `header` lines, and the
 *   upstream API key in place of the caller's (whose sluice key must never
 *   reach the provider).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include "l7.h"
#include "log.h"
#include "sockaddr.h"

#define RESOLVE_PENDING_MAX 64              /* one per backend at most */
#define RESOLVE_RETRY_MS 2000ULL            /* a name with no address yet is asked again */

static void resolve_now(struct backend *be);

static const struct l7_backend *bcfg(const struct backend *be)
{
	return &be->l7->cfg.backends[be->index];
}

static void resolve_later(struct backend *be, uint64_t ms)
{
	struct l7 *l = be->l7;

	if (loop_timer_after(l->loop, &be->rtimer, ms * 1000000ULL))
		pr_err("backend %s: cannot arm the resolution timer", be->name);
}

static void on_rtimer(struct loop_timer *t)
{
	struct backend *be = container_of(t, struct backend, rtimer);

	if (!be->rreq)
		resolve_now(be);
}

static int same_sa(const struct sockaddr_storage *a, socklen_t al,
		   const struct sockaddr_storage *b, socklen_t bl)
{
	return al == bl && !memcmp(a, b, al);
}

static int find_addr(const struct backend *be, const struct sockaddr_storage *sa, socklen_t len)
{
	for (unsigned int i = 0; i < be->n_addrs; i++)
		if (same_sa(&be->addrs[i].sa, be->addrs[i].len, sa, len))
			return (int)i;
	return -1;
}

/* The new address set, in getaddrinfo's order; duplicates (a name listed
 * twice in /etc/hosts) dropped. */
static void apply_addrs(struct backend *be, const struct resolve_result *res)
{
	struct backend_addr next[RESOLVE_MAX_ADDRS];
	unsigned int n = 0, kept = 0;
	char list[RESOLVE_MAX_ADDRS * (L7_ADDR_LEN + 1)] = "";

	memset(next, 0, sizeof(next));
	for (size_t i = 0; i < res->n && n < RESOLVE_MAX_ADDRS; i++) {
		int dup = 0;

		for (unsigned int j = 0; j < n; j++)
			dup |= same_sa(&next[j].sa, next[j].len, &res->addrs[i], res->lens[i]);
		if (dup)
			continue;
		next[n].sa = res->addrs[i];
		next[n].len = res->lens[i];
		n++;
	}
	for (unsigned int j = 0; j < n; j++)
		kept += find_addr(be, &next[j].sa, next[j].len) >= 0;
	if (kept == n && n == be->n_addrs)
		return;   /* the same set */
	/* Addresses that go: their idle connections with them. */
	for (unsigned int i = 0; i < be->n_addrs; i++) {
		int stays = 0;

		for (unsigned int j = 0; j < n; j++)
			stays |= same_sa(&next[j].sa, next[j].len, &be->addrs[i].sa,
					 be->addrs[i].len);
		if (!stays)
			while (be->addrs[i].idle)
				upstream_close(be->addrs[i].idle);
	}
	for (unsigned int j = 0; j < n; j++) {
		int old = find_addr(be, &next[j].sa, next[j].len);

		if (old >= 0)
			next[j] = be->addrs[old];   /* its health and pool move along */
		else
			sockaddr_str(&next[j].sa, next[j].str, sizeof(next[j].str));
		strcat(list, " ");
		strcat(list, next[j].str);
	}
	memcpy(be->addrs, next, sizeof(next));
	be->n_addrs = n;
	be->rr = 0;
	be->gen++;
	for (unsigned int j = 0; j < n; j++)
		for (struct upstream *u = be->addrs[j].idle; u; u = u->next) {
			u->addr = j;
			u->gen = be->gen;
		}
	pr_info("backend %s: %u address(es):%s", be->name, n, list);
}

static void on_resolved(void *arg, const struct resolve_result *res)
{
	struct backend *be = arg;
	uint64_t every = bcfg(be)->resolve_every_ms;

	be->rreq = NULL;
	if (res->err) {
		be->resolutions_failed++;
		if (be->n_addrs)
			pr_warn("backend %s: %s (keeping its %u address(es))", be->name, res->msg,
				be->n_addrs);
		else
			pr_warn("backend %s: %s (no address yet: requests go to other backends, "
				"or get 503)", be->name, res->msg);
		be->resolve_failing = 1;
		resolve_later(be, be->n_addrs || every < RESOLVE_RETRY_MS ? every : RESOLVE_RETRY_MS);
		return;
	}
	be->resolutions_ok++;
	if (be->resolve_failing)
		pr_info("backend %s: resolves again", be->name);
	be->resolve_failing = 0;
	apply_addrs(be, res);
	resolve_later(be, every);
}

static void resolve_now(struct backend *be)
{
	const struct l7_backend *c = bcfg(be);
	struct errbuf e = { "" };

	be->rreq = resolve_start(be->l7->resolver, c->url.host, c->url.port, on_resolved, be, &e);
	if (be->rreq)
		return;
	be->resolutions_failed++;
	pr_warn("backend %s: resolve: %s", be->name, e.msg);
	resolve_later(be, RESOLVE_RETRY_MS);
}

int backend_addrs_init(struct l7 *l, struct backend *be)
{
	const struct l7_backend *c = bcfg(be);
	struct errbuf e = { "" };
	int err;

	loop_timer_init(&be->rtimer, on_rtimer);
	if (c->url.tls) {
		struct tls_client_opts o = {
			.backend = be->name,
			.ca_file = c->tls_ca[0] ? c->tls_ca : NULL,
			.insecure = !c->tls_verify,
		};

		err = tls_client_ctx_new(&o, &be->tls, &e);
		if (err) {
			pr_err("%s", e.msg);
			return err;
		}
	}
	if (c->url.kind != URL_HOST_NAME) {
		struct backend_addr *ad = &be->addrs[0];
		char s[L7_ADDR_LEN];
		int any;

		snprintf(s, sizeof(s), c->url.kind == URL_HOST_IPV6 ? "[%s]:%u" : "%s:%u",
			 c->url.host, c->url.port);
		if (sockaddr_parse(s, 0, &ad->sa, &ad->len, &any) || any) {
			pr_err("backend %s: not a usable address", be->name);
			return -EINVAL;
		}
		sockaddr_str(&ad->sa, ad->str, sizeof(ad->str));
		be->n_addrs = 1;
		return 0;
	}
	if (!l->resolver) {
		err = resolver_new(l->loop, RESOLVE_PENDING_MAX, &l->resolver, &e);
		if (err) {
			pr_err("resolver: %s", e.msg);
			return err;
		}
	}
	resolve_now(be);
	return 0;
}

void backend_addrs_close(struct l7 *l, struct backend *be)
{
	if (be->rreq)
		resolve_cancel(l->resolver, be->rreq);
	be->rreq = NULL;
	if (l->loop)
		loop_timer_stop(l->loop, &be->rtimer);
	tls_ctx_free(be->tls);
	be->tls = NULL;
}

/* Name of a "Name: value\r\n" line, compared without case. */
static int line_is(const char *p, size_t n, const char *name)
{
	size_t k = strlen(name);

	return n > k && p[k] == ':' && !strncasecmp(p, name, k);
}

/* A header of the client's that the backend's settings replace. */
static int replaced(const struct l7 *l, const struct l7_backend *c, const char *p, size_t n)
{
	if (!c->plain_addr && line_is(p, n, "host"))
		return 1;
	for (unsigned int i = 0; i < c->n_headers; i++)
		if (line_is(p, n, c->headers[i].name))
			return 1;
	if (!c->api_key[0])
		return 0;
	/* The caller's key, however it came: it is a sluice key. */
	return line_is(p, n, "authorization") ||
	       (l->cfg.key_header[0] && line_is(p, n, l->cfg.key_header)) ||
	       (c->api_key_header[0] && line_is(p, n, c->api_key_header));
}

int backend_request_head(const struct l7 *l, unsigned int b, const struct buf *fwd,
			 struct buf *out)
{
	const struct l7_backend *c = &l->cfg.backends[b];
	const char *p = buf_data(fwd), *end = p + buf_used(fwd), *eol;
	int err = 0;

	if (c->plain_addr && !c->n_headers && !c->api_key[0])
		return buf_append(out, p, buf_used(fwd)) ? -ENOMEM : 0;
	/* fwd is client.c's own: a request line, then "Name: value\r\n" lines. */
	eol = memmem(p, (size_t)(end - p), "\r\n", 2);
	if (!eol)
		return -EINVAL;
	err |= buf_append(out, p, (size_t)(eol + 2 - p));
	for (p = eol + 2; p < end; p = eol + 2) {
		eol = memmem(p, (size_t)(end - p), "\r\n", 2);
		if (!eol)
			return -EINVAL;
		if (!replaced(l, c, p, (size_t)(eol - p)))
			err |= buf_append(out, p, (size_t)(eol + 2 - p));
	}
	if (!c->plain_addr) {
		int dflt = c->url.port == (c->url.tls ? 443u : 80u);

		err |= buf_printf(out, c->url.kind == URL_HOST_IPV6 ? "Host: [%s]" : "Host: %s",
				  c->url.host);
		if (!dflt)
			err |= buf_printf(out, ":%u", c->url.port);
		err |= buf_str(out, "\r\n");
	}
	for (unsigned int i = 0; i < c->n_headers; i++)
		err |= buf_printf(out, "%s: %s\r\n", c->headers[i].name, c->headers[i].value);
	if (c->api_key[0]) {
		if (c->api_key_header[0])
			err |= buf_printf(out, "%s: %s\r\n", c->api_key_header, c->api_key);
		else
			err |= buf_printf(out, "Authorization: Bearer %s\r\n", c->api_key);
	}
	return err ? -ENOMEM : 0;
}
