// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * server.c - sluice-l7's lifecycle and its glue to the event loop: open
 * (limiter, store, backends, listener, metrics, kernel maps, signals),
 * accept, reload on SIGHUP, drain on SIGINT/SIGTERM, the tick, run and
 * close.
 *
 * struct l7's two posts are run from here (each client has its own,
 * c->process, in client.c); one struct each, so re-posting is idempotent:
 *   l->reap      frees the closed clients and upstreams (client_reap,
 *                upstream_reap: each file frees its own) once the handler
 *                that closed them has returned, then checks a drain;
 *   l->dispatch  starts the queue's waiters when a slot was freed, after
 *                the handler that freed it has returned, so one client's
 *                end never runs another's backend path on its stack.
 */
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "l7.h"
#include "log.h"
#include "sockaddr.h"

#define FLUSH_NS 100000000ULL   /* signal batches go to the kernel this often */
#define ACCEPT_BATCH 64

/* --- the loop's registrations -------------------------------------------------
 * Client and backend sockets are registered once, edge-triggered, for input
 * and output together, and never modified: no epoll_ctl per request. An edge
 * sets `readable`; reading goes on until EAGAIN clears it, or stops early
 * (a full buffer, a paused stream, a request already in progress) and
 * resumes from the flag when the obstacle goes. Output is written at once
 * and waits for the next EPOLLOUT edge only after EAGAIN.
 */
#define EP_EDGE (EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET)

int l7_io_add(struct l7 *l, struct loop_io *io, int fd, void (*cb)(struct loop_io *, uint32_t))
{
	return loop_io_add(l->loop, io, fd, EP_EDGE, cb);
}

void l7_reap_later(struct l7 *l)
{
	loop_post(l->loop, &l->reap);
}

void l7_dispatch_later(struct l7 *l)
{
	loop_post(l->loop, &l->dispatch);
}

static void on_dispatch(struct loop_post *p)
{
	admit_dispatch_queue(container_of(p, struct l7, dispatch));
}

static void on_accept(struct loop_io *io, uint32_t events)
{
	struct l7 *l = container_of(io, struct l7, listen_io);

	(void)events;
	for (int i = 0; i < ACCEPT_BATCH; i++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		int fd;

		fd = accept4(l->lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ||
			    errno == ECONNABORTED)
				return;
			/* EMFILE and friends: the backlog keeps them until a
			 * close frees a descriptor. */
			pr_warn("accept on %s: %s (raise the fd limit or lower max-clients)",
				l->cfg.listen, strerror(errno));
			return;
		}
		if (l->n_clients >= l->cfg.max_clients) {
			l->st.refused_conns++;
			close(fd);
			continue;
		}
		client_accept(l, fd, &ss);   /* closes fd when it fails */
	}
}

static void drain_check(struct l7 *l);

/* Both lists: each file frees its own objects. */
static void free_dead(struct l7 *l)
{
	client_reap(l);
	upstream_reap(l);
}

/* --- open, reload, drain, close ---------------------------------------------- */

static int listen_open(struct l7 *l)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int any, one = 1, err;

	if (sockaddr_parse(l->cfg.listen, 0, &ss, &len, &any)) {
		pr_err("listen %s: not a numeric ADDR:PORT", l->cfg.listen);
		return -EINVAL;
	}
	if (any && !l->cfg.listen_any) {
		pr_err("listen %s: a wildcard address serves every interface; name one, or add "
		       "`public` to the listen line", l->cfg.listen);
		return -EPERM;
	}
	l->lfd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (l->lfd < 0)
		return -errno;
	if (setsockopt(l->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(l->lfd, (struct sockaddr *)&ss, len) || listen(l->lfd, 1024)) {
		err = -errno;
		pr_err("listen %s: %s", l->cfg.listen, strerror(-err));
		return err;
	}
	return loop_io_add(l->loop, &l->listen_io, l->lfd, EPOLLIN, on_accept);
}

static void on_signal(struct loop_io *io, uint32_t events);
static void on_tick(struct loop_timer *t);
static void on_reap(struct loop_post *p);

int l7_open(struct l7 *l, const char *config_path, const struct l7_config *c)
{
	sigset_t mask;
	int err;

	memset(l, 0, sizeof(*l));
	l->cfg = *c;
	l->config_path = config_path;
	l->lfd = l->sfd = -1;
	loop_timer_init(&l->tick, on_tick);
	if (getrandom(&l->req_id_base, sizeof(l->req_id_base), GRND_NONBLOCK) !=
	    (ssize_t)sizeof(l->req_id_base))
		l->req_id_base = (uint64_t)time(NULL) << 20 ^ (uint64_t)getpid();
	loop_post_init(&l->reap, on_reap);
	loop_post_init(&l->dispatch, on_dispatch);
	err = loop_new(&l->loop);
	if (err) {
		pr_err("event loop: %s", strerror(-err));
		return err;
	}
	wq_init(&l->wq, c->queue_size);
	err = limiter_new(&l->cfg, c->max_clients * 4 + L7_MAX_KEYS, &l->lim);
	if (err) {
		pr_err("limiter: %s", strerror(-err));
		return err;
	}
	err = fleet_open(l);
	if (err)
		return err;
	err = backends_init(l);
	if (err)
		return err;
	err = listen_open(l);
	if (err)
		return err;
	if (l->cfg.metrics[0]) {
		err = metrics_http_open(l->loop, l->cfg.metrics, l->cfg.metrics_any,
					l7_metrics_render, l, &l->mh);
		if (err)
			return err;
	}
	if (l->cfg.kernel) {
		err = l7_kernel_open(&l->kern);
		if (err)
			return err;
	}
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &mask, NULL))
		return -errno;
	l->sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (l->sfd < 0)
		return -errno;
	err = loop_io_add(l->loop, &l->signal_io, l->sfd, EPOLLIN, on_signal);
	if (!err)
		err = loop_timer_after(l->loop, &l->tick, L7_TICK_NS);
	if (err)
		return err;
	pr_info("listening on %s, %u backend(s), %u tier(s), %u key(s)", l->cfg.listen,
		l->n_backends, l->cfg.n_tiers, l->cfg.n_keys);
	return 0;
}

/* The same backend as far as its connections go: address, TLS, lookups. */
static int backend_same(const struct l7_backend *a, const struct l7_backend *b)
{
	return !strcmp(a->name, b->name) && !strcmp(a->tls_ca, b->tls_ca) &&
	       a->tls_verify == b->tls_verify && a->resolve_every_ms == b->resolve_every_ms;
}

/* Backends keep their addresses, TLS contexts and pools: a reload takes
 * their headers and API keys (a rotated key), and nothing else; a changed
 * list waits for a restart. */
static void reload_backends(struct l7 *l, struct l7_config *c)
{
	int same = c->n_backends == l->cfg.n_backends;

	for (unsigned int i = 0; same && i < c->n_backends; i++)
		same = backend_same(&c->backends[i], &l->cfg.backends[i]);
	if (!same) {
		pr_warn("reload: the backend list or its addresses and TLS settings change only "
			"with a restart (headers and API keys do change on reload)");
		memcpy(c->backends, l->cfg.backends, sizeof(c->backends));
		c->n_backends = l->cfg.n_backends;
	}
	/* Said again at every reload: it must not be forgotten. */
	l7_config_warn_insecure(c);
}

int l7_reload(struct l7 *l)
{
	struct l7_config c;
	struct errbuf e = { "" };
	int err;

	err = l7_config_load(l->config_path, &c, &e);
	if (err) {
		pr_err("reload: %s (the running configuration stays)", e.msg);
		return err;
	}
	if (strcmp(c.listen, l->cfg.listen) || strcmp(c.metrics, l->cfg.metrics))
		pr_warn("reload: listen and metrics addresses change only with a restart");
	snprintf(c.listen, sizeof(c.listen), "%s", l->cfg.listen);
	snprintf(c.metrics, sizeof(c.metrics), "%s", l->cfg.metrics);
	reload_backends(l, &c);
	if (!store_config_equal(&c.store, &l->cfg.store))
		pr_warn("reload: the store line changes only with a restart");
	c.store = l->cfg.store;
	l7_config_free(&l->cfg);
	l->cfg = c;
	limiter_reconfigure(l->lim, &l->cfg);
	fleet_share_apply(l);
	l->wq.max = c.queue_size;
	pr_info("reloaded %s: %u tier(s), %u key(s)", l->config_path, c.n_tiers, c.n_keys);
	return 0;
}

/* A stop lets the requests in progress finish: no new connections, idle
 * ones closed, and every response from now on ends its connection. The
 * loop ends when the last client is gone, after L7_DRAIN_MS at most, or on
 * a second signal. */
static void drain_start(struct l7 *l, unsigned int signo)
{
	l->draining = 1;
	l->drain_deadline_ns = loop_now(l->loop) + L7_DRAIN_MS * 1000000ULL;
	if (l->lfd >= 0) {
		loop_io_del(l->loop, &l->listen_io);
		if (close(l->lfd))
			pr_warn("close the listening socket: %s", strerror(errno));
		l->lfd = -1;
	}
	for (struct client *c = l->clients, *next; c; c = next) {
		next = c->next;
		c->keep_alive = 0;
		if (c->state == CL_HEAD && !buf_used(&c->in) && !buf_used(&c->out))
			client_close(c);
	}
	pr_info("signal %u: stopping after the %u open connection(s) finish (at most %u s; "
		"a second signal stops at once)", signo, l->n_clients, L7_DRAIN_MS / 1000);
	l7_reap_later(l); /* no client left: stop at once */
}

/* Draining, and the last client gone or the time up: the loop ends. */
static void drain_check(struct l7 *l)
{
	if (!l->draining || loop_stopped(l->loop))
		return;
	if (l->n_clients && loop_now(l->loop) < l->drain_deadline_ns)
		return;
	if (l->n_clients)
		pr_warn("stopping with %u connection(s) still open after %u s", l->n_clients,
			L7_DRAIN_MS / 1000);
	loop_stop(l->loop);
}

static void on_signal(struct loop_io *io, uint32_t events)
{
	struct l7 *l = container_of(io, struct l7, signal_io);
	struct signalfd_siginfo si;

	(void)events;
	while (read(l->sfd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGHUP) {
			l7_reload(l);
		} else if (!l->draining) {
			drain_start(l, si.ssi_signo);
		} else {
			pr_info("signal %u again: stopping now, %u connection(s) cut", si.ssi_signo,
				l->n_clients);
			loop_stop(l->loop);
		}
	}
}

/* Every L7_TICK_NS, from the previous due time: the queue's expiry, the
 * kernel's signal batches every FLUSH_NS, and the end of a drain. (Clients
 * and upstreams have a timer each for their timeouts.) */
static void on_tick(struct loop_timer *t)
{
	struct l7 *l = container_of(t, struct l7, tick);
	uint64_t now = loop_now(l->loop), next = t->when_ns + L7_TICK_NS;

	loop_timer_at(l->loop, t, next > now ? next : now + L7_TICK_NS);
	admit_expire(l);
	if (l->kern && now - l->last_flush >= FLUSH_NS) {
		l7_kernel_flush(l->kern);
		l->last_flush = now;
	}
	drain_check(l);
}

static void on_reap(struct loop_post *p)
{
	struct l7 *l = container_of(p, struct l7, reap);

	free_dead(l);
	drain_check(l);
}

int l7_run(struct l7 *l)
{
	int err = loop_run(l->loop);

	if (err)
		pr_err("event loop: %s", strerror(-err));
	return err;
}

void l7_close(struct l7 *l)
{
	if (!l->loop) {
		l7_config_free(&l->cfg);
		return;
	}
	while (l->clients)
		client_close(l->clients);
	backends_close(l);
	fleet_close(l);
	free_dead(l);
	loop_post_cancel(l->loop, &l->reap);
	loop_post_cancel(l->loop, &l->dispatch);   /* the closes above freed slots */
	loop_timer_stop(l->loop, &l->tick);
	if (l->kern)
		l7_kernel_close(l->kern);
	if (l->mh)
		metrics_http_close(l->mh);
	if (l->lim)
		limiter_free(l->lim);
	if (l->lfd >= 0) {
		loop_io_del(l->loop, &l->listen_io);
		close(l->lfd);
	}
	if (l->sfd >= 0) {
		loop_io_del(l->loop, &l->signal_io);
		close(l->sfd);
	}
	loop_free(l->loop);
	l7_config_free(&l->cfg);
}
