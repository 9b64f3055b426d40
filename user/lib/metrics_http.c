// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * metrics_http.c - the scrape endpoint: one listening socket and at most
 * METRICS_HTTP_MAX_CONNS clients, each a handler on the caller's event loop
 * (user/lib/loop.h), with a loop timer per client for its timeout.
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
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>
#include "http_status.h"
#include "log.h"
#include "loop.h"
#include "metrics_http.h"
#include "sockaddr.h"

#define DEFAULT_PORT 9464
#define DRAIN_MAX (64u << 10) /* bytes discarded after the response, at most */

enum conn_state { CONN_FREE = 0, CONN_READING, CONN_WRITING, CONN_DRAINING };

struct conn {
	struct metrics_http *h;
	struct loop_io io;      /* io.fd is the socket */
	struct loop_timer timer; /* METRICS_HTTP_TIMEOUT_MS after the last progress */
	enum conn_state state;
	__u64 last_ns;          /* last progress: timeouts count from here */
	char req[METRICS_HTTP_MAX_REQUEST + 1];
	size_t rlen;
	char hdr[512];
	size_t hlen;
	struct buf body;
	size_t blen;            /* body bytes to send (0 for HEAD) */
	size_t sent;            /* of hdr + body */
	size_t drained;
};

struct metrics_http {
	struct loop *loop;
	struct loop_io lio;     /* the listening socket */
	int lfd;
	unsigned int port;
	metrics_render_fn render;
	void *arg;
	size_t nconns;
	struct conn conns[METRICS_HTTP_MAX_CONNS];
};

#define TIMEOUT_NS ((__u64)METRICS_HTTP_TIMEOUT_MS * 1000000ULL)

static void on_accept(struct loop_io *io, uint32_t events);

int metrics_http_open(struct loop *loop, const char *addr_port, int allow_any,
		      metrics_render_fn render, void *arg, struct metrics_http **out)
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
	h->loop = loop;
	h->render = render;
	h->arg = arg;
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
	err = loop_io_add(loop, &h->lio, h->lfd, EPOLLIN, on_accept);
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

unsigned int metrics_http_port(const struct metrics_http *h)
{
	return h->port;
}

/* --- connections ----------------------------------------------------------- */

/* Progress: the timeout counts from now. */
static void conn_progress(struct conn *c)
{
	c->last_ns = loop_now(c->h->loop);
	loop_timer_at(c->h->loop, &c->timer, c->last_ns + TIMEOUT_NS);
}

static void conn_close(struct metrics_http *h, struct conn *c)
{
	if (c->state == CONN_FREE)
		return;
	loop_io_del(h->loop, &c->io);
	loop_timer_stop(h->loop, &c->timer);
	close(c->io.fd);
	buf_free(&c->body);
	c->io.fd = -1;
	c->state = CONN_FREE;
	h->nconns--;
}

static void on_conn(struct loop_io *io, uint32_t events);
static void on_timeout(struct loop_timer *t);

static void on_accept(struct loop_io *io, uint32_t events)
{
	struct metrics_http *h = container_of(io, struct metrics_http, lio);
	int i;

	(void)events;
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
		buf_init(&c->body, METRICS_MAX_BYTES);
		c->h = h;
		loop_timer_init(&c->timer, on_timeout);
		c->io.fd = fd;
		c->state = CONN_READING;
		h->nconns++;
		conn_progress(c);
		if (loop_io_add(h->loop, &c->io, fd, EPOLLIN, on_conn))
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

static void respond(struct metrics_http *h, struct conn *c, int code, int is_head)
{
	static const char ctype_metrics[] = "text/plain; version=0.0.4; charset=utf-8";
	static const char ctype_text[] = "text/plain; charset=utf-8";
	int n;

	buf_reset(&c->body);
	if (code == 200) {
		int err = h->render(&c->body, h->arg);

		if (err) {
			pr_err("metrics: rendering for a scrape failed: %s", strerror(-err));
			code = 500;
			buf_reset(&c->body);
		}
	}
	if (code != 200) {
		buf_printf(&c->body, "%d %s%s\n", code, http_status_reason(code),
			      code == 404 ? " (the metrics are at /metrics)" : "");
		if (c->body.err)
			buf_reset(&c->body);
	}
	n = snprintf(c->hdr, sizeof(c->hdr),
		     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%sConnection: close\r\n\r\n",
		     code, http_status_reason(code), code == 200 ? ctype_metrics : ctype_text, buf_used(&c->body),
		     code == 405 ? "Allow: GET, HEAD\r\n" : "");
	c->hlen = (size_t)n;
	c->blen = is_head ? 0 : buf_used(&c->body);
	c->sent = 0;
	c->state = CONN_WRITING;
	if (loop_io_mod(h->loop, &c->io, EPOLLOUT))
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

			iov[n].iov_base = buf_data(&c->body) + off;
			iov[n++].iov_len = c->blen - off;
		}
		w = writev(c->io.fd, iov, n);
		if (w < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
				return;
			conn_close(h, c);
			return;
		}
		c->sent += (size_t)w;
		conn_progress(c);
	}
	/* All sent: no more from us; read (and discard) until the client
	 * closes, so our close cannot reset a response still in flight. */
	shutdown(c->io.fd, SHUT_WR);
	buf_free(&c->body);
	c->state = CONN_DRAINING;
	if (loop_io_mod(h->loop, &c->io, EPOLLIN))
		conn_close(h, c);
}

static void conn_read(struct metrics_http *h, struct conn *c)
{
	for (;;) {
		char sink[4096];
		char *end;
		ssize_t r;
		int is_head, code;

		if (c->state == CONN_DRAINING) {
			r = read(c->io.fd, sink, sizeof(sink));
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
		r = read(c->io.fd, c->req + c->rlen, METRICS_HTTP_MAX_REQUEST - c->rlen);
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			return;
		if (r <= 0) { /* closed before a whole request, or an error */
			conn_close(h, c);
			return;
		}
		c->rlen += (size_t)r;
		conn_progress(c);
		end = head_end(c->req, c->rlen);
		if (end)
			code = parse_request(c, (size_t)(end - c->req), &is_head);
		else if (c->rlen == METRICS_HTTP_MAX_REQUEST)
			code = 431, is_head = 0;
		else
			continue;
		respond(h, c, code, is_head);
		if (c->state == CONN_WRITING)
			conn_write(h, c);
		return;
	}
}

static void on_timeout(struct loop_timer *t)
{
	struct conn *c = container_of(t, struct conn, timer);

	conn_close(c->h, c);
}

static void on_conn(struct loop_io *io, uint32_t events)
{
	struct conn *c = container_of(io, struct conn, io);

	(void)events;
	if (c->state == CONN_WRITING)
		conn_write(c->h, c);
	else
		conn_read(c->h, c);
}

void metrics_http_close(struct metrics_http *h)
{
	size_t k;

	if (!h)
		return;
	for (k = 0; k < METRICS_HTTP_MAX_CONNS; k++)
		conn_close(h, &h->conns[k]);
	if (h->lfd >= 0) {
		loop_io_del(h->loop, &h->lio);
		close(h->lfd);
	}
	free(h);
}
