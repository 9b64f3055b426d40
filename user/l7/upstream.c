// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * upstream.c - one request at a backend: connect (or take a pooled
 * connection), send the request, read the response head, and stream the
 * body to the client as it comes, chunk by chunk, never holding more than
 * the client's output ceiling: when the client does not keep up, reading
 * from the backend pauses.
 *
 * On the way it measures the request for the kernel's signal maps (time to
 * first byte, total time, time per output token, status class) and finds
 * the backend's token count: the `usage` of a JSON body (from a bounded
 * copy) or of a stream's final event.
 *
 * An https backend's connection does its TLS handshake on the loop between
 * the connect and the request (UP_HANDSHAKE), and keeps its session when it
 * is pooled; the byte I/O goes through up_io_recv / up_io_send, which speak
 * TLS or plain TCP.
 *
 * Failures: a pooled connection that the backend had already closed is
 * retried once on a new one; a refused connect or a failed handshake goes
 * to the next address or backend; other failures count against the
 * address's health and answer 502 (connect, TLS, reset, malformed) or 504
 * (no response in time) while nothing has been sent to the client, and
 * close the client's connection when part of the response has (so it sees
 * a truncated body, not a complete wrong one).
 *
 * This file owns an upstream's life: up_connect makes it, and only this
 * file closes it (up_close, and upstream_close / upstream_abort for the
 * pool and the client) and frees it (upstream_reap, from the loop's reap
 * post). backend.c's pool only links idle ones. A finished or failed
 * request is handed back with client_request_done or respond_error, which
 * post the client's next step rather than run it here.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>
#include "l7.h"
#include "http_status.h"
#include "log.h"

#define READ_CHUNK (64u << 10)
#define OUT_HIGH (256u << 10)
#define CAPTURE_MAX (1u << 20)   /* a JSON body is scanned for usage up to this */
#define HEAD_MAX (64u << 10)     /* a backend's response head */

static void up_unlink(struct upstream *u)
{
	struct l7 *l = u->l7;

	if (u->prev)
		u->prev->next = u->next;
	else if (l->busy == u)
		l->busy = u->next;
	if (u->next)
		u->next->prev = u->prev;
	u->prev = u->next = NULL;
}

/* Off the loop and onto the dead list: freed by upstream_reap once the
 * handler that closed it has returned. */
static void up_close(struct upstream *u)
{
	struct l7 *l = u->l7;

	if (u->dead)
		return;
	up_unlink(u);
	prov_closed(u);   /* a request without its response head: the ticket ends */
	loop_io_del(l->loop, &u->io);
	loop_timer_stop(l->loop, &u->timer);
	tls_close(u->tls);   /* a close_notify if it goes at once; the fd stays ours */
	u->tls = NULL;
	if (close(u->io.fd))
		pr_warn("close backend connection: %s", strerror(errno));
	u->dead = 1;
	l->n_upstreams--;
	u->dead_next = l->dead_upstreams;
	l->dead_upstreams = u;
	l7_reap_later(l);
}

void upstream_close(struct upstream *u)
{
	if (u->state == UP_IDLE)
		backend_idle_drop(u->l7, u);
	up_close(u);
}

void upstream_reap(struct l7 *l)
{
	while (l->dead_upstreams) {
		struct upstream *u = l->dead_upstreams;

		l->dead_upstreams = u->dead_next;
		buf_free(&u->req);
		buf_free(&u->in);
		buf_free(&u->capture);
		sse_scan_free(&u->sse);
		upstream_inflate_end(u);
		free(u);
	}
}

static void up_timer(struct loop_timer *t);

static struct upstream *up_connect(struct l7 *l, unsigned int b, unsigned int a)
{
	struct backend *be = &l->backends[b];
	struct backend_addr *ad = &be->addrs[a];
	struct upstream *u;
	int one = 1;

	u = calloc(1, sizeof(*u));
	if (!u)
		return NULL;
	u->l7 = l;
	u->backend = b;
	u->addr = a;
	u->gen = be->gen;
	loop_timer_init(&u->timer, up_timer);
	u->io.fd = socket(ad->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (u->io.fd < 0) {
		pr_warn("backend %s: socket: %s", be->name, strerror(errno));
		free(u);
		return NULL;
	}
	setsockopt(u->io.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(u->io.fd, (struct sockaddr *)&ad->sa, ad->len) && errno != EINPROGRESS) {
		pr_warn("backend %s (%s): connect: %s", be->name, ad->str, strerror(errno));
		close(u->io.fd);
		free(u);
		return NULL;
	}
	u->state = UP_CONNECTING;
	if (l7_io_add(l, &u->io, u->io.fd, upstream_event)) {
		pr_err("epoll: add backend connection: %s", strerror(errno));
		close(u->io.fd);
		free(u);
		return NULL;
	}
	l->n_upstreams++;
	return u;
}

static void up_reset_request(struct upstream *u)
{
	u->req.off = u->req.len = 0;
	u->in.off = u->in.len = 0;
	u->capture.off = u->capture.len = 0;
	u->got_bytes = 0;
	u->paused = 0;
	u->remaining = 0;
	u->usage_json = u->usage_sse = 0;
	u->dechunk = 0;
	u->head_sent = 0;
	u->capture_overflow = 0;
	u->t_first = 0;
	sse_scan_free(&u->sse);
	upstream_inflate_end(u);
}

void upstream_inflate_end(struct upstream *u)
{
	if (!u->zin)
		return;
	inflateEnd(u->zin);
	free(u->zin);
	u->zin = NULL;
	u->zin_out = 0;
}

/* The client's request, as the backend gets it. */
static int build_request(struct upstream *u, struct client *c)
{
	int err = 0;

	if (backend_request_head(u->l7, u->backend, &c->fwd, &u->req))
		return -ENOMEM;
	if (buf_used(&c->body) || c->body_kind != HTTP_BODY_NONE)
		err |= buf_str(&u->req, "Content-Length: ") |
		       buf_u64(&u->req, buf_used(&c->body)) | buf_str(&u->req, "\r\n");
	err |= buf_str(&u->req, "\r\n");
	/* No body: its buffer may be unallocated, and memcpy from NULL is UB
	 * even for 0 bytes. */
	if (buf_used(&c->body))
		err |= buf_append(&u->req, buf_data(&c->body), buf_used(&c->body));
	return err ? -ENOMEM : 0;
}

static void up_send(struct upstream *u);
static void up_read(struct upstream *u);

void upstream_start(struct client *c)
{
	struct l7 *l = c->l7;
	uint64_t retry = 0;
	struct upstream *u;
	unsigned int a = 0;
	int b;

	/* An address that refuses at once costs a try; the next one gets it. */
	for (;;) {
		b = backend_pick(l, c, &a, &retry);
		if (b < 0) {
			l->st.outcomes[c->tier][OUT_OVERLOAD]++;
			respond_error(c, 503, "server_error", "backend_unavailable",
				      "Every backend is failing; retry later.", retry);
			return;
		}
		u = c->retried ? NULL : backend_idle_take(l, (unsigned int)b, a);
		if (u) {
			u->reused = 1;
			break;
		}
		u = up_connect(l, (unsigned int)b, a);
		if (u) {
			u->reused = 0;
			break;
		}
		backend_failed(l, (unsigned int)b, a, l->backends[b].gen);
		l->st.upstream_errors[UPERR_CONNECT]++;
		/* Each address once: retrying the one that just refused is no use. */
		if (++c->retried >= backend_tries(l)) {
			l->st.outcomes[c->tier][OUT_UPSTREAM_ERR]++;
			respond_error(c, 502, "server_error", "backend_error",
				      "No backend could be reached.", 0);
			return;
		}
	}
	up_reset_request(u);
	u->req.max = 0;
	u->in.max = HEAD_MAX + READ_CHUNK;
	u->capture.max = CAPTURE_MAX;
	if (build_request(u, c)) {
		up_close(u);
		l->st.outcomes[c->tier][OUT_OVERLOAD]++;
		respond_error(c, 503, "server_error", "overloaded", "Out of memory.", 1000000000ULL);
		return;
	}
	u->cl = c;
	c->up = u;
	u->next = l->busy;
	if (l->busy)
		l->busy->prev = u;
	u->prev = NULL;
	l->busy = u;
	l->backends[b].requests_total++;
	prov_sent(u, c);
	upstream_deadline(u, loop_now(l->loop) + l->cfg.connect_timeout_ms * 1000000ULL);
	if (l->kern)
		l7_kernel_count(l->kern, l->cfg.signals_port, SLUICE_SIG_REQUESTS);
	if (u->state == UP_IDLE) {
		u->state = UP_SENDING;
		up_send(u);
	}
}

/* The request failed at the backend. */
static void up_fail(struct upstream *u, int kind, const char *what)
{
	struct l7 *l = u->l7;
	struct client *c = u->cl;
	/* Safe to send again when nothing reached a backend's application: a
	 * refused connect (to the next backend), or a pooled connection the
	 * backend had closed (once). */
	int stale = u->reused && !u->got_bytes && kind == UPERR_RESET;
	int retry = c && ((stale && !c->retried) ||
			  ((kind == UPERR_CONNECT || kind == UPERR_TLS) &&
			   c->retried + 1 < backend_tries(l)));

	if (!stale) {
		const struct backend *be = &l->backends[u->backend];

		l->st.upstream_errors[kind]++;
		pr_warn("backend %s (%s): %s", be->name,
			u->gen == be->gen ? be->addrs[u->addr].str : "an older address", what);
		backend_failed(l, u->backend, u->addr, u->gen);
	}
	u->cl = NULL;
	up_close(u);
	if (!c)
		return;
	c->up = NULL;
	if (retry) {
		l->st.retries++;
		c->retried++;
		upstream_start(c);
		return;
	}
	l->st.outcomes[c->tier][OUT_UPSTREAM_ERR]++;
	if (u->head_sent) {
		/* Part of the response is out: the client must see it cut. */
		client_close(c);
		return;
	}
	if (kind == UPERR_TIMEOUT)
		respond_error(c, 504, "server_error", "backend_timeout",
			      "The backend did not answer in time.", 0);
	else
		respond_error(c, 502, "server_error", "backend_error", what, 0);
}

/* Results of up_io_send / up_io_recv besides a count (and 0, the end). */
#define IO_AGAIN (-1)     /* wait for the next event (plain: EAGAIN; TLS: WANT_*) */
#define IO_ERR (-2)       /* broken: *why says how */

/* Bytes to the backend, through TLS on https. */
static ssize_t up_io_send(struct upstream *u, const char **why)
{
	ssize_t n;

	if (u->tls) {
		n = tls_write(u->tls, buf_data(&u->req), buf_used(&u->req));
		if (n == TLS_WANT_READ || n == TLS_WANT_WRITE)
			return IO_AGAIN;   /* any event calls up_send again (upstream_event) */
		if (n < 0)
			*why = tls_error(u->tls);
		return n < 0 ? IO_ERR : n;
	}
	do
		n = send(u->io.fd, buf_data(&u->req), buf_used(&u->req), MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return IO_AGAIN;
	if (n < 0)
		*why = strerror(errno);
	return n < 0 ? IO_ERR : n;
}

/* Bytes from the backend into u->in's free space. Plain TCP: a short read
 * emptied the socket (as for clients, client.c), so readable is cleared.
 * TLS: OpenSSL hands out a record at a time, so only TLS_WANT_READ says
 * the socket is empty; TLS_WANT_WRITE keeps readable set, and the next
 * event (EPOLLOUT) calls up_read again. */
static ssize_t up_io_recv(struct upstream *u, const char **why)
{
	size_t room = u->in.cap - u->in.len;
	ssize_t n;

	if (u->tls) {
		n = tls_read(u->tls, u->in.p + u->in.len, room);
		if (n == TLS_WANT_READ)
			u->readable = 0;
		if (n == TLS_WANT_READ || n == TLS_WANT_WRITE)
			return IO_AGAIN;
		if (n < 0)
			*why = tls_error(u->tls);
		return n < 0 ? IO_ERR : n;
	}
	do
		n = recv(u->io.fd, u->in.p + u->in.len, room, 0);
	while (n < 0 && errno == EINTR);
	if (n > 0 && (size_t)n < room && !u->rdhup)
		u->readable = 0;
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
		u->readable = 0;
		return IO_AGAIN;
	}
	if (n <= 0)
		u->readable = 0;
	if (n < 0)
		*why = strerror(errno);
	return n < 0 ? IO_ERR : n;
}

static void up_send(struct upstream *u)
{
	struct l7 *l = u->l7;
	const char *why = "";

	while (buf_used(&u->req)) {
		ssize_t n = up_io_send(u, &why);

		if (n > 0) {
			buf_consume(&u->req, (size_t)n);
			continue;
		}
		if (n == IO_AGAIN)
			return; /* the next edge goes on */
		{
			char what[TLS_ERR_LEN + 64];

			snprintf(what, sizeof(what), "the connection broke while sending the "
				 "request: %s", why);
			up_fail(u, UPERR_RESET, what);
		}
		return;
	}
	u->state = UP_HEAD;
	u->t_sent = loop_now(l->loop);
	upstream_deadline(u, loop_now(l->loop) + l->cfg.backend_timeout_ms * 1000000ULL);
	/* The response comes with the next input edge (a pooled connection
	 * had none pending: input while idle closes it). */
	if (u->readable)
		up_read(u);
}

/* The response is complete: account, pool the connection, and let the
 * client go on with its next request. */
static void up_finish(struct upstream *u)
{
	struct l7 *l = u->l7;
	struct client *c = u->cl;
	struct tokens_usage usage = { 0 };
	uint64_t fallback = 0, tokens = 0;

	if (u->usage_json && !u->capture_overflow)
		tokens_usage_json(buf_data(&u->capture), buf_used(&u->capture), &usage);
	else if (u->usage_sse) {
		usage = u->sse.usage;
		fallback = u->sse.events;
	}
	if (c) {
		if (!usage.found && !u->usage_sse)
			fallback = c->est.output;
		admit_reconcile(c, u->resp.status, &usage, fallback);
		tokens = usage.found ? usage.completion : fallback;
	}
	if (l->kern) {
		uint32_t port = l->cfg.signals_port;
		uint64_t total = loop_now(l->loop) - u->t_sent;

		l7_kernel_observe(l->kern, port, SLUICE_HIST_TOTAL, total);
		if (tokens > 1 && u->usage_sse && u->t_first)
			l7_kernel_observe(l->kern, port, SLUICE_HIST_PER_TOKEN,
					  (loop_now(l->loop) - u->t_first) / (tokens - 1));
		else if (tokens)
			l7_kernel_observe(l->kern, port, SLUICE_HIST_PER_TOKEN, total / tokens);
	}
	backend_ok(l, u->backend, u->addr, u->gen);
	u->cl = NULL;
	up_unlink(u);
	if (u->keep_alive && !buf_used(&u->in)) {
		up_reset_request(u);
		if (backend_idle_put(l, u))
			up_close(u);
	} else {
		up_close(u);
	}
	if (c) {
		c->up = NULL;
		client_request_done(c);
	}
}

static void capture_plain(struct upstream *u, const char *d, size_t n)
{
	if (u->usage_json && !u->capture_overflow &&
	    buf_append(&u->capture, d, n))
		u->capture_overflow = 1;
	if (u->usage_sse)
		sse_scan_feed(&u->sse, d, n);
}

/* The payload as it goes to the client, unchanged; usage is looked for in
 * it, inflated first when it is compressed (a 16 KiB window at a time: the
 * memory is zlib's state and this stack buffer). A body zlib cannot read
 * is not scanned: the request is charged its estimate. */
static void capture(struct upstream *u, const char *d, size_t n)
{
	z_stream *z = u->zin;
	unsigned char out[16384];

	if (!z) {
		capture_plain(u, d, n);
		return;
	}
	if (!u->usage_json && !u->usage_sse)
		return;
	z->next_in = (Bytef *)d;
	z->avail_in = (uInt)n;
	for (;;) {
		int r;
		size_t got;

		z->next_out = out;
		z->avail_out = sizeof(out);
		r = inflate(z, Z_NO_FLUSH);
		got = sizeof(out) - z->avail_out;
		u->zin_out += got;
		if (got)
			capture_plain(u, (const char *)out, got);
		if (r == Z_STREAM_END)
			return;  /* and again for any bytes after the end: not usage */
		if ((r != Z_OK && r != Z_BUF_ERROR) || u->zin_out > L7_INFLATE_MAX ||
		    (u->usage_json && u->capture_overflow)) {
			pr_dbg("backend %s: compressed response: %s: usage not counted",
			       u->l7->backends[u->backend].name,
			       r != Z_OK && r != Z_BUF_ERROR ? "not readable" : "too large");
			upstream_inflate_end(u);
			u->usage_json = u->usage_sse = 0;
			return;
		}
		if (!z->avail_in && z->avail_out)
			return;
		if (r == Z_BUF_ERROR && !got)
			return;
	}
}

static void on_payload(const char *d, size_t n, void *arg)
{
	struct upstream *u = arg;

	capture(u, d, n);
	if (u->dechunk && u->cl)
		buf_append(&u->cl->out, d, n);
}

/* Body bytes: to the client as they are (or de-chunked for HTTP/1.0), and
 * through the usage scanners. Returns 1 when the body is complete. */
static int up_body(struct upstream *u, const char *d, size_t n, size_t *used)
{
	struct client *c = u->cl;

	*used = n;
	switch (u->body_kind) {
	case HTTP_BODY_LENGTH:
		if (n > u->remaining)
			n = *used = (size_t)u->remaining;
		capture(u, d, n);
		u->remaining -= n;
		if (c && !c->is_head)
			buf_append(&c->out, d, n);
		return u->remaining == 0;
	case HTTP_BODY_CHUNKED: {
		long r = http_chunked_feed(&u->chunked, d, n, on_payload, u);

		if (r < 0)
			return -1;
		*used = (size_t)r;
		if (c && !u->dechunk)
			buf_append(&c->out, d, (size_t)r);
		return u->chunked.done;
	}
	case HTTP_BODY_UNTIL_CLOSE:
		capture(u, d, n);
		if (c)
			buf_append(&c->out, d, n);
		return 0;
	default:
		*used = 0;
		return 1;
	}
}

/* The client's response head: the backend's status and headers without
 * the hop-by-hop ones, the framing the client gets, and the rate-limit
 * headers. */
static int client_head(struct upstream *u, struct client *c)
{
	const struct http_response *r = &u->resp;
	struct buf *o = &c->out;
	int err = 0;

	err |= buf_str(o, "HTTP/1.1 ") | buf_u64(o, (uint64_t)r->status) | buf_str(o, " ") |
	       buf_str(o, http_status_reason(r->status)) | buf_str(o, "\r\n");
	for (unsigned int i = 0; i < r->n_headers; i++) {
		const struct http_header *h = &r->headers[i];

		/* The body is passed as framed, codings and all (gzip, chunked),
		 * except to an HTTP/1.0 client, which gets the payload. */
		if (http_span_ieq(&h->name, "transfer-encoding")) {
			if (!u->dechunk)
				err |= buf_printf(o, "Transfer-Encoding: %.*s\r\n", (int)h->value.n,
						    h->value.p);
			continue;
		}
		if (http_is_hop_by_hop(&h->name, r->headers, r->n_headers) ||
		    !strncasecmp(h->name.p, "x-ratelimit-", 12 < h->name.n ? 12 : h->name.n))
			continue;
		if (u->dechunk && http_span_ieq(&h->name, "content-length"))
			continue;
		err |= l7_header_put(o, h);
	}
	err |= respond_ratelimit_headers(c, o);
	if (!c->keep_alive)
		err |= buf_str(o, "Connection: close\r\n");
	else if (c->minor == 0)
		err |= buf_str(o, "Connection: keep-alive\r\n");
	err |= buf_str(o, "\r\n");
	return err;
}

static int has_type(const struct http_response *r, const char *type)
{
	const struct http_span *v = http_header_get(r->headers, r->n_headers, "content-type");

	return v && v->n >= strlen(type) && !strncasecmp(v->p, type, strlen(type));
}

/* A Content-Encoding of gzip or deflate: the usage scan reads the body
 * through zlib (either framing, detected). Any other coding but identity
 * cannot be read: no scan, the estimate is charged. */
static void up_encoding(struct upstream *u)
{
	const struct http_span *v = http_header_get(u->resp.headers, u->resp.n_headers,
						    "content-encoding");
	z_stream *z;

	if (!v || !v->n || http_span_ieq(v, "identity"))
		return;
	if (!http_span_ieq(v, "gzip") && !http_span_ieq(v, "x-gzip") &&
	    !http_span_ieq(v, "deflate")) {
		u->usage_json = u->usage_sse = 0;
		return;
	}
	z = calloc(1, sizeof(*z));
	if (!z || inflateInit2(z, 15 + 32) != Z_OK) {  /* +32: zlib or gzip header */
		free(z);
		u->usage_json = u->usage_sse = 0;
		return;
	}
	u->zin = z;
	u->zin_out = 0;
}

/* A complete response head in u->in. Returns 0, or -1 when u is gone. */
static int up_head(struct upstream *u, long head_len)
{
	struct l7 *l = u->l7;
	struct client *c = u->cl;
	int status = u->resp.status;

	if (status >= 100 && status < 200) {
		/* Interim (100 Continue): the client had its own already. */
		buf_consume(&u->in, (size_t)head_len);
		return 0;
	}
	u->t_first = loop_now(l->loop);
	u->body_kind = http_response_body(&u->resp, c && c->is_head);
	u->keep_alive = u->resp.framing.keep_alive && u->body_kind != HTTP_BODY_UNTIL_CLOSE;
	u->remaining = u->body_kind == HTTP_BODY_LENGTH ? (uint64_t)u->resp.framing.content_length
							: 0;
	if (u->body_kind == HTTP_BODY_CHUNKED)
		http_chunked_init(&u->chunked, 0);
	c = prov_response(u);   /* a 429 of the backend's own limit: c is queued again */
	/* Usage from any JSON answer (an error's too: it is charged only what
	 * it reports, admit_reconcile), from a 2xx's stream. */
	if (c && c->api != TOKENS_API_NONE) {
		if (status / 100 == 2 && has_type(&u->resp, "text/event-stream"))
			u->usage_sse = !sse_scan_init(&u->sse);
		else if (has_type(&u->resp, "application/json"))
			u->usage_json = 1;
		if (u->usage_json || u->usage_sse)
			up_encoding(u);
	}
	if (l->kern) {
		uint32_t port = l->cfg.signals_port;

		l7_kernel_count(l->kern, port, SLUICE_SIG_RESPONSES);
		l7_kernel_observe(l->kern, port, SLUICE_HIST_RESPONSE, loop_now(l->loop) - u->t_sent);
		if (status >= 100 && status < 600)
			l7_kernel_count(l->kern, port, SLUICE_SIG_HTTP_1XX + status / 100 - 1);
	}
	if (c) {
		l->st.responses[c->tier][status / 100]++;
		l->st.outcomes[c->tier][OUT_PROXIED]++;
		if (c->minor == 0 && u->body_kind == HTTP_BODY_CHUNKED) {
			/* HTTP/1.0 has no chunked coding: the payload, then close. */
			u->dechunk = 1;
			c->keep_alive = 0;
		}
		if (u->body_kind == HTTP_BODY_UNTIL_CLOSE)
			c->keep_alive = 0;
		if (client_head(u, c)) {
			up_fail(u, UPERR_MALFORMED, "no memory for the response head");
			return -1;
		}
		u->head_sent = 1;
	}
	buf_consume(&u->in, (size_t)head_len);
	u->state = UP_BODY;
	upstream_deadline(u, loop_now(l->loop) + l->cfg.backend_timeout_ms * 1000000ULL);
	return 0;
}

/* Handles what u->in holds. Returns -1 when u is gone. */
static int up_process(struct upstream *u)
{
	struct l7 *l = u->l7;

	while (!u->dead) {
		if (u->state == UP_HEAD) {
			long r;

			if (!buf_used(&u->in))
				return 0;
			r = http_parse_response(buf_data(&u->in), buf_used(&u->in), HEAD_MAX,
						&u->resp);
			if (r == 0)
				return 0;
			if (r < 0) {
				up_fail(u, UPERR_MALFORMED, "malformed response head");
				return -1;
			}
			if (up_head(u, r))
				return -1;
			continue;
		}
		if (u->state == UP_BODY) {
			size_t used;
			int done = 0;

			if (buf_used(&u->in) || u->body_kind == HTTP_BODY_NONE) {
				done = up_body(u, buf_data(&u->in), buf_used(&u->in), &used);
				if (done < 0) {
					up_fail(u, UPERR_MALFORMED, "malformed chunked body");
					return -1;
				}
				buf_consume(&u->in, used);
			}
			if (u->cl)
				client_flush(u->cl);
			if (u->dead)
				return -1;   /* the client went away and took us along */
			if (done) {
				up_finish(u);
				return -1;
			}
			if (u->cl && buf_used(&u->cl->out) >= OUT_HIGH) {
				/* Reading resumes when the client drains; a client
				 * that does not within idle-timeout is closed. */
				u->paused = 1;
				client_deadline(u->cl, loop_now(l->loop) + l->cfg.idle_timeout_ms * 1000000ULL);
			}
			return 0;
		}
		return 0;
	}
	return -1;
}

static void up_read(struct upstream *u)
{
	struct l7 *l = u->l7;

	/* Paused with decrypted bytes inside OpenSSL: readable stays set (only
	 * TLS_WANT_READ clears it), so upstream_resume reads them. */
	while (u->readable && !u->dead && !u->paused) {
		const char *why = "";
		ssize_t n;

		if (buf_reserve(&u->in, READ_CHUNK)) {
			up_fail(u, UPERR_MALFORMED, "response head too large");
			return;
		}
		n = up_io_recv(u, &why);
		if (n > 0) {
			u->in.len += (size_t)n;
			u->got_bytes = 1;
			upstream_deadline(u, loop_now(l->loop) + l->cfg.backend_timeout_ms * 1000000ULL);
			if (up_process(u))
				return;
			continue;
		}
		if (n == IO_AGAIN)
			return;
		if (n == 0 && u->state == UP_BODY && u->body_kind == HTTP_BODY_UNTIL_CLOSE) {
			u->keep_alive = 0;
			up_finish(u);
			return;
		}
		up_fail(u, UPERR_RESET, n < 0 ? why
				: u->state == UP_BODY ? "closed in the middle of the response body"
						      : "closed before answering");
		return;
	}
}

/* The handshake, on every event until it is done (any event may be the
 * one it waits for; a call too early only asks again). Its failure is the
 * address's, like a refused connect: the request goes to the next one. */
static void up_handshake(struct upstream *u)
{
	int r = tls_handshake(u->tls);
	char what[TLS_ERR_LEN + 32];

	if (r == TLS_WANT_READ || r == TLS_WANT_WRITE)
		return;
	if (r != TLS_OK) {
		snprintf(what, sizeof(what), "TLS: %s", tls_error(u->tls));
		up_fail(u, UPERR_TLS, what);
		return;
	}
	u->state = UP_SENDING;
	up_send(u);
}

/* The TCP connection is up: TLS over it, SNI and verification for the
 * URL's host. */
static void up_tls_start(struct upstream *u)
{
	struct l7 *l = u->l7;
	struct errbuf e = { "" };
	char what[sizeof(e.msg) + 8];

	u->tls = tls_conn_new(l->backends[u->backend].tls, u->io.fd,
			      l->cfg.backends[u->backend].url.host, &e);
	if (!u->tls) {
		snprintf(what, sizeof(what), "TLS: %s", e.msg);
		up_fail(u, UPERR_TLS, what);
		return;
	}
	u->state = UP_HANDSHAKE;
	up_handshake(u);
}

void upstream_event(struct loop_io *io, uint32_t ev)
{
	struct upstream *u = container_of(io, struct upstream, io);
	struct l7 *l = u->l7;

	if (u->dead)
		return;
	if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		u->readable = 1;
	if (ev & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		u->rdhup = 1;
	if (u->state == UP_IDLE) {
		/* A pooled connection has nothing to say: input is a close or
		 * junk. (Its EPOLLOUT edges are no news.) */
		if (u->readable)
			upstream_close(u);
		return;
	}
	if (u->state == UP_CONNECTING) {
		int err = 0;
		socklen_t len = sizeof(err);

		if (getsockopt(u->io.fd, SOL_SOCKET, SO_ERROR, &err, &len) || err) {
			char what[128];

			snprintf(what, sizeof(what), "connect: %s", strerror(err ? err : errno));
			up_fail(u, UPERR_CONNECT, what);
			return;
		}
		if (l->backends[u->backend].tls) {
			up_tls_start(u);
			return;
		}
		u->state = UP_SENDING;
	}
	if (u->state == UP_HANDSHAKE) {
		up_handshake(u);
		return;
	}
	if (u->state == UP_SENDING) {
		/* TLS may wait for input to write (TLS_WANT_READ): any event. */
		if (u->tls || (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			up_send(u);
		return;
	}
	up_read(u);
}

void upstream_resume(struct upstream *u)
{
	if (!u->paused || u->dead)
		return;
	u->paused = 0;
	/* Bytes already read may complete the response; then what waits in
	 * the socket. */
	if (!up_process(u))
		up_read(u);
}

void upstream_abort(struct upstream *u)
{
	u->cl = NULL;
	up_close(u);
}

/* At the deadline: the connect or the response timed out. A paused
 * upstream waits on its client, not the backend: it is looked at again
 * every L7_TICK_NS until it resumes or the deadline moves. */
static void up_timer(struct loop_timer *t)
{
	struct upstream *u = container_of(t, struct upstream, timer);

	if (u->dead)
		return;
	if (u->paused) {
		loop_timer_at(u->l7->loop, &u->timer, loop_now(u->l7->loop) + L7_TICK_NS);
		return;
	}
	if (u->state == UP_CONNECTING)
		up_fail(u, UPERR_CONNECT, "connect timed out");
	else if (u->state == UP_HANDSHAKE)
		up_fail(u, UPERR_TLS, "TLS handshake timed out (connect-timeout)");
	else
		up_fail(u, UPERR_TIMEOUT, u->state == UP_BODY ?
			"no response bytes within backend-timeout" :
			"no response within backend-timeout");
}

void upstream_deadline(struct upstream *u, uint64_t when_ns)
{
	u->deadline_ns = when_ns;
	if (when_ns)
		loop_timer_at(u->l7->loop, &u->timer, when_ns);
	else
		loop_timer_stop(u->l7->loop, &u->timer);
}
