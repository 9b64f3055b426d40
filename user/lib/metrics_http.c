// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * metrics_http.c - the scrape endpoint: one listening socket, at most
 * METRICS_HTTP_MAX_CONNS clients, a timerfd for timeouts, all in one
 * internal epoll set whose fd the daemon watches.
 *
 * A connection reads its request head (bounded), gets one response, and is
 * closed. After the response is written the socket is shut down for writing
 * and drained until the client closes (or the timeout), so a client that
 * sent more than we read still gets the response instead of a reset.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include "http_status.h"
#include "log.h"
#include "metrics_http.h"
#include "sockaddr.h"

#define TAG_LISTEN 0
#define TAG_TIMER 1
#define TAG_CONN 2 /* + slot */
#define DEFAULT_PORT 9464
#define DRAIN_MAX (64u << 10) /* bytes discarded after the response, at most */

enum conn_state { CONN_FREE = 0, CONN_READING, CONN_WRITING, CONN_DRAINING };

struct conn {
	int fd;
	enum conn_state state;
	__u64 last_ns;          /* last progress: timeouts count from here */
	char req[METRICS_HTTP_MAX_REQUEST + 1];
	size_t rlen;
	char hdr[512];
	size_t hlen;
	struct strbuf body;
	size_t blen;            /* body bytes to send (0 for HEAD) */
	size_t sent;            /* of hdr + body */
	size_t drained;
};

struct metrics_http {
	int lfd, ep, tfd;
	unsigned int port;
	int timer_armed;
	size_t nconns;
	struct conn conns[METRICS_HTTP_MAX_CONNS];
};

static __u64 now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (__u64)ts.tv_sec * 1000000000ULL + (__u64)ts.tv_nsec;
}

static int ep_add(int ep, int fd, __u32 events, __u64 tag)
{
	struct epoll_event ev = { .events = events, .data.u64 = tag };

	return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) ? -errno : 0;
}

static int ep_mod(int ep, int fd, __u32 events, __u64 tag)
{
	struct epoll_event ev = { .events = events, .data.u64 = tag };

	return epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev) ? -errno : 0;
}

int metrics_http_open(const char *addr_port, int allow_any, struct metrics_http **out)
{
	const char *a = addr_port && *addr_port ? addr_port : METRICS_HTTP_DEFAULT_ADDR;
	struct sockaddr_storage ss;
	struct metrics_http *h;
	socklen_t len;
	int any = 0, one = 1, err;

	*out = NULL;
	err = sockaddr_parse(a, DEFAULT_PORT, &ss, &len, &any);
	if (err) {
		pr_err("metrics: listen address '%s': not ADDR[:PORT] with a numeric address (IPv6 in brackets: [::1]:9464)",
		       a);
		return err;
	}
	if (any && !allow_any) {
		pr_err("metrics: listen address '%s': a wildcard address exposes the metrics on every interface; refused unless configured to allow it",
		       a);
		return -EPERM;
	}
	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->lfd = h->ep = h->tfd = -1;
	h->lfd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (h->lfd < 0)
		goto fail_errno;
	setsockopt(h->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(h->lfd, (struct sockaddr *)&ss, len)) {
		err = -errno;
		pr_err("metrics: bind %s: %s", a, strerror(errno));
		goto fail;
	}
	if (listen(h->lfd, 64))
		goto fail_errno;
	len = sizeof(ss);
	if (getsockname(h->lfd, (struct sockaddr *)&ss, &len))
		goto fail_errno;
	h->port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
						: ((struct sockaddr_in6 *)&ss)->sin6_port);
	h->ep = epoll_create1(EPOLL_CLOEXEC);
	if (h->ep < 0)
		goto fail_errno;
	h->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (h->tfd < 0)
		goto fail_errno;
	err = ep_add(h->ep, h->lfd, EPOLLIN, TAG_LISTEN);
	if (!err)
		err = ep_add(h->ep, h->tfd, EPOLLIN, TAG_TIMER);
	if (err)
		goto fail_msg;
	*out = h;
	return 0;

fail_errno:
	err = -errno;
fail_msg:
	pr_err("metrics: listen on %s: %s", a, strerror(-err));
fail:
	metrics_http_close(h);
	return err;
}

int metrics_http_fd(const struct metrics_http *h)
{
	return h->ep;
}

unsigned int metrics_http_port(const struct metrics_http *h)
{
	return h->port;
}

/* --- connections ----------------------------------------------------------- */

static void arm_timer(struct metrics_http *h)
{
	/* A tick a second while clients are connected, none while idle. */
	struct itimerspec its = { 0 };
	int want = h->nconns > 0;

	if (want == h->timer_armed)
		return;
	if (want)
		its.it_value.tv_sec = its.it_interval.tv_sec = 1;
	timerfd_settime(h->tfd, 0, &its, NULL);
	h->timer_armed = want;
}

static void conn_close(struct metrics_http *h, struct conn *c)
{
	if (c->state == CONN_FREE)
		return;
	close(c->fd); /* also removes it from the epoll set */
	strbuf_free(&c->body);
	c->fd = -1;
	c->state = CONN_FREE;
	h->nconns--;
}

static void do_accept(struct metrics_http *h)
{
	int i;

	for (i = 0; i < 64; i++) {
		struct conn *c = NULL, *oldest = NULL;
		int fd = accept4(h->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		size_t k;

		if (fd < 0)
			return; /* EAGAIN, or an aborted connection: nothing to do */
		for (k = 0; k < METRICS_HTTP_MAX_CONNS; k++) {
			struct conn *x = &h->conns[k];

			if (x->state == CONN_FREE) {
				c = x;
				break;
			}
			if (!oldest || x->last_ns < oldest->last_ns)
				oldest = x;
		}
		if (!c) { /* full: the stalest client makes way */
			conn_close(h, oldest);
			c = oldest;
		}
		memset(c, 0, sizeof(*c));
		strbuf_init(&c->body, 0);
		c->fd = fd;
		c->state = CONN_READING;
		c->last_ns = now_ns();
		h->nconns++;
		if (ep_add(h->ep, fd, EPOLLIN, TAG_CONN + (__u64)(c - h->conns)))
			conn_close(h, c);
	}
}

static int is_tchar(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

/* The end of the request head ("\r\n\r\n", or bare "\n\n"), or NULL. */
static char *head_end(char *req, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		if (req[i] != '\n')
			continue;
		if (i + 1 < len && req[i + 1] == '\n')
			return req + i + 2;
		if (i + 2 < len && req[i + 1] == '\r' && req[i + 2] == '\n')
			return req + i + 3;
	}
	return NULL;
}

/* Parses the complete head in c->req: the status to answer, and whether the
 * method was HEAD. */
static int parse_request(struct conn *c, size_t head_len, int *is_head)
{
	char *p = c->req, *end = c->req + head_len, *line_end, *method, *target, *version;
	size_t mlen, tlen, vlen;

	*is_head = 0;
	if (memchr(c->req, '\0', head_len))
		return 400;
	c->req[head_len] = '\0';
	line_end = strchr(p, '\n');
	/* request-line = method SP request-target SP HTTP-version */
	method = p;
	mlen = strspn(method, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!#$%&'*+-.^_`|~");
	if (!mlen || mlen > 32 || method[mlen] != ' ')
		return 400;
	target = method + mlen + 1;
	tlen = strcspn(target, " \r\n\t");
	if (!tlen || target[tlen] != ' ')
		return 400;
	for (size_t i = 0; i < tlen; i++)
		if ((unsigned char)target[i] < 0x21 || (unsigned char)target[i] > 0x7e)
			return 400;
	version = target + tlen + 1;
	vlen = (size_t)(line_end - version);
	if (vlen && version[vlen - 1] == '\r')
		vlen--;
	if (vlen != 8 || (strncmp(version, "HTTP/1.1", 8) && strncmp(version, "HTTP/1.0", 8)))
		return 400;
	/* header-field = field-name ":" OWS field-value OWS; no obs-fold */
	for (p = line_end + 1; p < end; p = line_end + 1) {
		char *q = p;

		line_end = strchr(p, '\n');
		if (!line_end || line_end == p || (line_end == p + 1 && *p == '\r'))
			break; /* the empty line that ends the head */
		while (q < line_end && is_tchar(*q))
			q++;
		if (q == p || *q != ':')
			return 400;
		for (q++; q < line_end; q++)
			if ((unsigned char)*q < 0x20 && *q != '\t' && !(*q == '\r' && q + 1 == line_end))
				return 400;
	}
	if (!(mlen == 3 && !strncmp(method, "GET", 3)) && !(mlen == 4 && !strncmp(method, "HEAD", 4)))
		return 405;
	*is_head = mlen == 4;
	if (!(tlen == 8 || (tlen > 8 && target[8] == '?')) || strncmp(target, "/metrics", 8))
		return 404;
	return 200;
}

static void respond(struct metrics_http *h, struct conn *c, int code, int is_head,
		    metrics_render_fn render, void *arg)
{
	static const char ctype_metrics[] = "text/plain; version=0.0.4; charset=utf-8";
	static const char ctype_text[] = "text/plain; charset=utf-8";
	int n;

	strbuf_reset(&c->body);
	if (code == 200) {
		int err = render(&c->body, arg);

		if (err) {
			pr_err("metrics: rendering for a scrape failed: %s", strerror(-err));
			code = 500;
			strbuf_reset(&c->body);
		}
	}
	if (code != 200) {
		strbuf_printf(&c->body, "%d %s%s\n", code, http_status_reason(code),
			      code == 404 ? " (the metrics are at /metrics)" : "");
		if (c->body.overflow)
			strbuf_reset(&c->body);
	}
	n = snprintf(c->hdr, sizeof(c->hdr),
		     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%sConnection: close\r\n\r\n",
		     code, http_status_reason(code), code == 200 ? ctype_metrics : ctype_text, c->body.len,
		     code == 405 ? "Allow: GET, HEAD\r\n" : "");
	c->hlen = (size_t)n;
	c->blen = is_head ? 0 : c->body.len;
	c->sent = 0;
	c->state = CONN_WRITING;
	if (ep_mod(h->ep, c->fd, EPOLLOUT, TAG_CONN + (__u64)(c - h->conns)))
		conn_close(h, c);
}

static void conn_write(struct metrics_http *h, struct conn *c)
{
	while (c->sent < c->hlen + c->blen) {
		struct iovec iov[2];
		int n = 0;
		ssize_t w;

		if (c->sent < c->hlen) {
			iov[n].iov_base = c->hdr + c->sent;
			iov[n++].iov_len = c->hlen - c->sent;
		}
		if (c->blen) {
			size_t off = c->sent > c->hlen ? c->sent - c->hlen : 0;

			iov[n].iov_base = c->body.buf + off;
			iov[n++].iov_len = c->blen - off;
		}
		w = writev(c->fd, iov, n);
		if (w < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
				return;
			conn_close(h, c);
			return;
		}
		c->sent += (size_t)w;
		c->last_ns = now_ns();
	}
	/* All sent: no more from us; read (and discard) until the client
	 * closes, so our close cannot reset a response still in flight. */
	shutdown(c->fd, SHUT_WR);
	strbuf_free(&c->body);
	c->state = CONN_DRAINING;
	if (ep_mod(h->ep, c->fd, EPOLLIN, TAG_CONN + (__u64)(c - h->conns)))
		conn_close(h, c);
}

static void conn_read(struct metrics_http *h, struct conn *c, metrics_render_fn render, void *arg)
{
	for (;;) {
		char sink[4096];
		char *end;
		ssize_t r;
		int is_head, code;

		if (c->state == CONN_DRAINING) {
			r = read(c->fd, sink, sizeof(sink));
			if (r > 0) {
				c->drained += (size_t)r;
				if (c->drained <= DRAIN_MAX)
					continue;
			} else if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
				return;
			}
			conn_close(h, c);
			return;
		}
		r = read(c->fd, c->req + c->rlen, METRICS_HTTP_MAX_REQUEST - c->rlen);
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			return;
		if (r <= 0) { /* closed before a whole request, or an error */
			conn_close(h, c);
			return;
		}
		c->rlen += (size_t)r;
		c->last_ns = now_ns();
		end = head_end(c->req, c->rlen);
		if (end)
			code = parse_request(c, (size_t)(end - c->req), &is_head);
		else if (c->rlen == METRICS_HTTP_MAX_REQUEST)
			code = 431, is_head = 0;
		else
			continue;
		respond(h, c, code, is_head, render, arg);
		if (c->state == CONN_WRITING)
			conn_write(h, c);
		return;
	}
}

static void expire(struct metrics_http *h)
{
	__u64 now = now_ns(), limit = (__u64)METRICS_HTTP_TIMEOUT_MS * 1000000ULL;
	size_t k;

	for (k = 0; k < METRICS_HTTP_MAX_CONNS; k++) {
		struct conn *c = &h->conns[k];

		if (c->state != CONN_FREE && now - c->last_ns >= limit)
			conn_close(h, c);
	}
}

void metrics_http_handle(struct metrics_http *h, metrics_render_fn render, void *arg)
{
	struct epoll_event ev[METRICS_HTTP_MAX_CONNS + 2];
	int n, i;

	n = epoll_wait(h->ep, ev, (int)(sizeof(ev) / sizeof(ev[0])), 0);
	for (i = 0; i < n; i++) {
		__u64 tag = ev[i].data.u64;
		struct conn *c;

		if (tag == TAG_LISTEN) {
			do_accept(h);
			continue;
		}
		if (tag == TAG_TIMER) {
			__u64 ticks;

			if (read(h->tfd, &ticks, sizeof(ticks)) < 0) {
				/* EAGAIN: already read */
			}
			expire(h);
			continue;
		}
		c = &h->conns[tag - TAG_CONN];
		if (c->state == CONN_FREE)
			continue; /* closed earlier in this batch (evicted) */
		if (c->state == CONN_WRITING)
			conn_write(h, c);
		else
			conn_read(h, c, render, arg);
	}
	arm_timer(h);
}

void metrics_http_close(struct metrics_http *h)
{
	size_t k;

	if (!h)
		return;
	for (k = 0; k < METRICS_HTTP_MAX_CONNS; k++)
		conn_close(h, &h->conns[k]);
	if (h->lfd >= 0)
		close(h->lfd);
	if (h->tfd >= 0)
		close(h->tfd);
	if (h->ep >= 0)
		close(h->ep);
	free(h);
}
