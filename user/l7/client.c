// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * client.c - one client connection: read a request head and body within
 * their limits and timeouts, hand the request to admission, write the
 * responses back in order, keep the connection for the next request
 * (keep-alive, pipelining), and close it, lingering when the client may
 * still be sending.
 *
 * This file owns a client's life: client_accept makes it, client_close
 * (which anyone may call) takes it off the loop and marks it dead, and
 * client_reap frees it from the loop's reap post, once no caller up the
 * stack can still hold it.
 *
 * A finished request (client_request_done) does not call back into the
 * client: it posts c->process, and the next pipelined request is read from
 * that, after whoever finished the request (a backend's handler, a queue
 * pass, an error path) has returned. So one client's processing never runs
 * inside another's call stack, and never inside its own.
 */
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>
#include "l7.h"
#include "log.h"

#define READ_CHUNK (64u << 10)
#define OUT_HIGH (256u << 10)   /* stop producing for a client past this */

static void client_reset_request(struct client *c)
{
	c->fwd.off = c->fwd.len = 0;
	c->fwd.max = c->l7->cfg.max_header_bytes + 1024;
	c->body.off = c->body.len = 0;
	c->key[0] = '\0';
	c->key_len = 0;
	c->api = TOKENS_API_NONE;
	memset(&c->est, 0, sizeof(c->est));
	c->admitted = c->wait_backend = 0;
	c->retried = 0;
	c->wait_until_ns = 0;
	c->prov_held = 0;
	c->body_left = 0;
	c->is_head = 0;
	c->req_id[0] = '\0';
	client_deadline(c, 0);
}

static void client_free(struct client *c)
{
	buf_free(&c->in);
	buf_free(&c->out);
	buf_free(&c->fwd);
	buf_free(&c->body);
	free(c);
}

/* The only place a client is freed: from the loop's reap post (server.c),
 * or at the end of l7_close. */
void client_reap(struct l7 *l)
{
	while (l->dead_clients) {
		struct client *c = l->dead_clients;

		l->dead_clients = c->dead_next;
		client_free(c);
	}
}

/* Takes c off the loop: no event, timer or posted work reaches it after
 * this; its memory stays until client_reap. */
void client_close(struct client *c)
{
	struct l7 *l = c->l7;

	if (c->dead)
		return;
	if (c->up)
		upstream_abort(c->up);
	admit_release(c);
	loop_io_del(l->loop, &c->io);
	loop_timer_stop(l->loop, &c->timer);
	loop_post_cancel(l->loop, &c->process);
	if (close(c->io.fd))
		pr_warn("close client %s: %s", c->addr_str, strerror(errno));
	c->dead = 1;
	if (c->prev)
		c->prev->next = c->next;
	else
		l->clients = c->next;
	if (c->next)
		c->next->prev = c->prev;
	l->n_clients--;
	c->dead_next = l->dead_clients;
	l->dead_clients = c;
	l7_reap_later(l);
}

static void client_process(struct client *c);
static void client_process_later(struct client *c);

/* Reads and discards what a lingering client still sends: closed at its
 * end, past L7_LINGER_BYTES, or on an error. */
static void client_linger_read(struct client *c)
{
	char sink[16384];

	for (;;) {
		ssize_t n = recv(c->io.fd, sink, sizeof(sink), 0);

		if (n > 0) {
			c->linger_bytes += (uint64_t)n;
			if (c->linger_bytes > L7_LINGER_BYTES) {
				pr_dbg("client %s: still sending after %llu bytes: closing", c->addr_str,
				       (unsigned long long)c->linger_bytes);
				break;
			}
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		break; /* its end, or an error */
	}
	client_close(c);
}

/* The answer to a rejected request is out, and the client may still be
 * sending it: a close() with unread input makes the kernel reset the
 * connection, and the reset can destroy the answer before the client reads
 * it. So, as nginx's lingering close: shut down the write side (the client
 * sees the answer end), read and discard what comes for at most
 * L7_LINGER_MS and L7_LINGER_BYTES, then close. */
static void client_linger(struct client *c)
{
	if (shutdown(c->io.fd, SHUT_WR)) {
		pr_dbg("client %s: shutdown: %s", c->addr_str, strerror(errno));
		client_close(c);
		return;
	}
	c->lingering = 1;
	c->linger_bytes = 0;
	buf_consume(&c->in, buf_used(&c->in));
	client_deadline(c, loop_now(c->l7->loop) + L7_LINGER_MS * 1000000ULL);
	c->deadline_idle = 0;
	client_linger_read(c);
}

void client_flush(struct client *c)
{
	while (buf_used(&c->out)) {
		ssize_t n = send(c->io.fd, buf_data(&c->out), buf_used(&c->out), MSG_NOSIGNAL);

		if (n > 0) {
			buf_consume(&c->out, (size_t)n);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		pr_dbg("client %s: write: %s", c->addr_str, n < 0 ? strerror(errno) : "closed");
		client_close(c);
		return;
	}
	if (!buf_used(&c->out)) {
		if (c->lingering)
			return;
		if (c->closing && c->linger) {
			client_linger(c);
			return;
		}
		if (c->closing) {
			client_close(c);
			return;
		}
		if (c->up && c->up->paused)
			upstream_resume(c->up);
		/* Pipelined requests held back by a full output buffer go on
		 * from the loop, not inside whoever flushed (a backend's
		 * handler, or client_process itself). */
		if (!c->dead && c->held_back) {
			c->held_back = 0;
			client_process_later(c);
		}
	}
}

/* Head fields the rest of the request needs, copied out of `in`, and the
 * request line and headers for the backend (without the framing headers:
 * the body goes with a Content-Length of its decoded size). */
static int client_take_head(struct client *c)
{
	const struct http_request *r = &c->req;
	const struct l7_config *cfg = &c->l7->cfg;
	const struct http_span *v;
	struct http_span bearer;
	int err = 0;

	snprintf(c->method, sizeof(c->method), "%.*s", (int)r->method.n, r->method.p);
	c->is_head = http_span_ieq(&r->method, "HEAD");
	c->minor = r->minor;
	c->keep_alive = r->framing.keep_alive && !c->l7->draining;
	c->api = tokens_api_of(r->target.p, r->target.n);

	/* The API key: a configured header's value, or Authorization: Bearer. */
	c->key_len = 0;
	if (cfg->key_header[0]) {
		v = http_header_get(r->headers, r->n_headers, cfg->key_header);
	} else {
		v = http_header_get(r->headers, r->n_headers, "authorization");
		if (v && v->n > 7 && !strncasecmp(v->p, "bearer ", 7)) {
			bearer.p = v->p + 7;
			bearer.n = v->n - 7;
			while (bearer.n && *bearer.p == ' ') {
				bearer.p++;
				bearer.n--;
			}
			v = &bearer;
		} else {
			v = NULL;
		}
	}
	if (v && v->n) {
		if (v->n >= sizeof(c->key)) {
			c->key_len = -1;
		} else {
			memcpy(c->key, v->p, v->n);
			c->key[v->n] = '\0';
			c->key_len = (int)v->n;
		}
	}

	v = http_header_get(r->headers, r->n_headers, "x-request-id");
	if (v && v->n && v->n <= L7_REQ_ID_MAX) {
		size_t i;

		for (i = 0; i < v->n; i++) {
			unsigned char ch = (unsigned char)v->p[i];

			if (!(isalnum(ch) || ch == '-' || ch == '_' || ch == '.' || ch == ':'))
				break;
		}
		if (i == v->n) {
			memcpy(c->req_id, v->p, v->n);
			c->req_id[v->n] = '\0';
		}
	}
	err |= buf_append(&c->fwd, r->method.p, r->method.n);
	err |= buf_str(&c->fwd, " ");
	err |= buf_append(&c->fwd, r->target.p, r->target.n);
	err |= buf_str(&c->fwd, " HTTP/1.1\r\n");
	for (unsigned int i = 0; i < r->n_headers; i++) {
		const struct http_header *h = &r->headers[i];

		if (http_is_hop_by_hop(&h->name, r->headers, r->n_headers) ||
		    http_span_ieq(&h->name, "content-length") ||
		    http_span_ieq(&h->name, "expect") ||
		    http_span_ieq(&h->name, "x-forwarded-for"))
			continue;
		err |= l7_header_put(&c->fwd, h);
	}
	v = http_header_get(r->headers, r->n_headers, "x-forwarded-for");
	if (v)
		err |= buf_str(&c->fwd, "X-Forwarded-For: ") | buf_append(&c->fwd, v->p, v->n) |
		       buf_str(&c->fwd, ", ");
	else
		err |= buf_str(&c->fwd, "X-Forwarded-For: ");
	err |= buf_str(&c->fwd, c->addr_str) | buf_str(&c->fwd, "\r\n");
	return err ? -ENOMEM : 0;
}

static void body_append(const char *d, size_t n, void *arg)
{
	struct client *c = arg;

	/* Cannot fail: the body's ceiling is max_body_bytes, which the decoder
	 * enforces first. */
	if (buf_append(&c->body, d, n))
		c->closing = 1;
}

static const char *http_error_message(int status)
{
	switch (status) {
	case 400: return "The request is not valid HTTP/1.1.";
	case 408: return "The request was not received in time.";
	case 413: return "The request body is larger than this server accepts.";
	case 431: return "The request head is larger than this server accepts.";
	case 501: return "Transfer-Encoding other than chunked is not supported.";
	case 505: return "Only HTTP/1.0 and HTTP/1.1 are supported.";
	default: return "The request could not be processed.";
	}
}

/* A request this server will not process: the answer closes the
 * connection, since what follows in the stream cannot be trusted. */
static void client_reject(struct client *c, int status)
{
	pr_info("client %s: %d %s", c->addr_str, status, http_error_message(status));
	c->closing = 1;
	c->linger = 1;  /* the rest of the request may still be on its way */
	c->l7->st.bad_requests[status]++;
	respond_error(c, status, "invalid_request_error", NULL, http_error_message(status), 0);
}

/* Reads what the socket has (edge-triggered: until EAGAIN), as far as `in`
 * has room. 1 when bytes came, 0 when none (EAGAIN, or `in` full: then the
 * flag stays set for later), -1 when the client is gone and closed. */
static int client_read(struct client *c)
{
	int got = 0;

	while (c->readable) {
		ssize_t n;

		if (buf_reserve(&c->in, READ_CHUNK) && buf_reserve(&c->in, 1))
			return got; /* full: the parser says 431, or requests wait their turn */
		n = recv(c->io.fd, c->in.p + c->in.len, c->in.cap - c->in.len, 0);
		if (n > 0) {
			/* A short read emptied the socket: what comes later raises
			 * a new edge, so the EAGAIN read is saved (unless the peer's
			 * FIN came with this edge: it must be read to be seen). */
			if ((size_t)n < c->in.cap - c->in.len && !c->rdhup)
				c->readable = 0;
			c->in.len += (size_t)n;
			got = 1;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		c->readable = 0;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return got;
		/* End of input: what is buffered is still served (a client
		 * may send its requests and shut down its side). */
		if (n < 0)
			pr_dbg("client %s: read: %s", c->addr_str, strerror(errno));
		c->peer_gone = 1;
		if (n < 0 || (c->state == CL_HEAD && !buf_used(&c->in) && !buf_used(&c->out))) {
			client_close(c);
			return -1;
		}
		return got;
	}
	return got;
}

/* The client needs more bytes for the request it is sending: 1 when they
 * came, 0 to wait for the next edge, -1 when it is gone (closed here). */
static int client_need_more(struct client *c)
{
	int r = client_read(c);

	if (r)
		return r;
	if (c->peer_gone) {
		if (buf_used(&c->in) || c->state == CL_BODY)
			pr_info("client %s: closed in the middle of a request", c->addr_str);
		if (buf_used(&c->out)) {
			c->closing = 1;  /* the responses it has, then close */
			return 0;
		}
		client_close(c);
		return -1;
	}
	return 0;
}

/* Parses `in` and reads the socket: a head, its body, and then admission.
 * One request per call: its completion posts the next call (pipelining
 * keeps the order). Not reentrant, and need not be: nothing it calls calls
 * it back, since completions and flushes post c->process instead. */
static void client_process(struct client *c)
{
	struct l7 *l = c->l7;
	const struct l7_config *cfg = &l->cfg;

	c->held_back = 0;
	while (!c->dead && !c->closing) {
		if (buf_used(&c->out) >= OUT_HIGH) {
			c->held_back = 1;  /* client_flush posts us when it drains */
			break;
		}
		if (c->state == CL_HEAD) {
			long r;

			if (!buf_used(&c->in)) {
				if (client_need_more(c) > 0)
					continue;
				break;
			}
			if (!c->deadline_ns || c->deadline_idle) {
				client_deadline(c, loop_now(l->loop) + cfg->header_timeout_ms * 1000000ULL);
				c->deadline_idle = 0;
			}
			r = http_parse_request(buf_data(&c->in), buf_used(&c->in),
					       cfg->max_header_bytes, cfg->max_body_bytes, &c->req);
			if (r == 0) {
				if (client_need_more(c) > 0)
					continue;
				break;
			}
			if (r < 0) {
				client_reject(c, (int)-r);
				break;
			}
			c->t_start = loop_now(l->loop);
			if (c->req.framing.upgrade) {
				client_reject(c, 400);
				break;
			}
			if (client_take_head(c)) {
				client_reject(c, 431);
				break;
			}
			c->body_kind = http_request_body(&c->req);
			buf_consume(&c->in, (size_t)r);
			client_deadline(c, loop_now(l->loop) + cfg->body_timeout_ms * 1000000ULL);
			if (c->body_kind == HTTP_BODY_LENGTH) {
				c->body_left = (uint64_t)c->req.framing.content_length;
				c->state = c->body_left ? CL_BODY : CL_HEAD;
			} else if (c->body_kind == HTTP_BODY_CHUNKED) {
				http_chunked_init(&c->chunked, cfg->max_body_bytes);
				c->state = CL_BODY;
			}
			if (c->state == CL_BODY && c->req.expect_continue &&
			    !buf_used(&c->in))
				buf_printf(&c->out, "HTTP/1.1 100 Continue\r\n\r\n");
			if (c->state == CL_HEAD) {
				admit_request(c);
				break;  /* done: client_request_done posts the next */
			}
		}
		if (c->state == CL_BODY) {
			size_t avail = buf_used(&c->in);

			if (!avail) {
				if (client_need_more(c) > 0)
					continue;
				break;
			}
			if (c->body_kind == HTTP_BODY_LENGTH) {
				size_t n = avail < c->body_left ? avail : (size_t)c->body_left;

				body_append(buf_data(&c->in), n, c);
				buf_consume(&c->in, n);
				c->body_left -= n;
				if (c->body_left)
					continue;
			} else {
				long r = http_chunked_feed(&c->chunked, buf_data(&c->in), avail,
							   body_append, c);

				if (r < 0) {
					client_reject(c, (int)-r);
					break;
				}
				buf_consume(&c->in, (size_t)r);
				if (!c->chunked.done)
					continue;
			}
			if (c->closing) {
				client_reject(c, 413);
				break;
			}
			c->state = CL_HEAD;
			admit_request(c);
			break;  /* as above */
		}
		break; /* queued or at a backend: the next request waits */
	}
	if (!c->dead)
		client_flush(c);
}

/* c->process: the next request, or the close that follows a response. */
static void client_posted(struct loop_post *p)
{
	struct client *c = container_of(p, struct client, process);

	if (c->dead)
		return;   /* cannot be: client_close cancels the post */
	if (c->state == CL_HEAD || c->state == CL_BODY)
		client_process(c);
}

static void client_process_later(struct client *c)
{
	if (!c->dead)
		loop_post(c->l7->loop, &c->process);
}

void client_request_id(struct client *c)
{
	struct l7 *l = c->l7;

	if (c->req_id[0])
		return;
	snprintf(c->req_id, sizeof(c->req_id), "%016llx%08llx",
		 (unsigned long long)l->req_id_base, (unsigned long long)(++l->req_id_next & 0xffffffffULL));
}

void client_request_done(struct client *c)
{
	admit_release(c);
	client_reset_request(c);
	c->state = CL_HEAD;
	client_deadline(c, loop_now(c->l7->loop) + c->l7->cfg.idle_timeout_ms * 1000000ULL);
	c->deadline_idle = 1;
	if (!c->keep_alive)
		c->closing = 1;
	/* Not client_process(c) here: the caller (a backend's handler, a
	 * queue pass, an error path inside client_process) is still on the
	 * stack. The response goes out and the next request is read from the
	 * loop. */
	client_process_later(c);
}

static void client_event(struct loop_io *io, uint32_t ev)
{
	struct client *c = container_of(io, struct client, io);

	if (c->dead)
		return;
	if (ev & EPOLLERR) {
		client_close(c);
		return;
	}
	if (c->lingering) {
		client_linger_read(c);
		return;
	}
	if (ev & EPOLLOUT)
		client_flush(c);
	if (c->dead)
		return;
	if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP))
		c->readable = 1;
	if (ev & (EPOLLRDHUP | EPOLLHUP))
		c->rdhup = 1;
	if (c->state == CL_HEAD || c->state == CL_BODY) {
		/* A request just completed (by the flush above) goes on from
		 * its post, after the queue's waiters had the slot it freed. */
		if (!c->process.posted)
			client_process(c);
		return;
	}
	if (ev & (EPOLLRDHUP | EPOLLHUP)) {
		/* Gone while queued or at a backend: a queued request is
		 * dropped; a proxied one finishes only if the socket still
		 * takes the response. */
		c->peer_gone = 1;
		if (c->state == CL_QUEUED || c->state == CL_STORE || (ev & EPOLLHUP))
			client_close(c);
	}
}

static void addr_from_sockaddr(const struct sockaddr_storage *ss, uint8_t addr[16])
{
	memset(addr, 0, 16);
	if (ss->ss_family == AF_INET) {
		addr[10] = addr[11] = 0xff;
		memcpy(addr + 12, &((const struct sockaddr_in *)ss)->sin_addr, 4);
	} else {
		memcpy(addr, &((const struct sockaddr_in6 *)ss)->sin6_addr, 16);
	}
}

static void client_timer(struct loop_timer *t);

int client_accept(struct l7 *l, int fd, const struct sockaddr_storage *ss)
{
	struct client *c;
	char host[INET6_ADDRSTRLEN];
	int one = 1, err;

	c = calloc(1, sizeof(*c));
	if (!c) {
		close(fd);
		return -ENOMEM;
	}
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)))
		pr_dbg("TCP_NODELAY: %s", strerror(errno));
	c->l7 = l;
	loop_timer_init(&c->timer, client_timer);
	loop_post_init(&c->process, client_posted);
	addr_from_sockaddr(ss, c->addr);
	if (ss->ss_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, host, sizeof(host));
	else
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, host,
			  sizeof(host));
	snprintf(c->addr_str, sizeof(c->addr_str), "%s", host);
	c->in.max = l->cfg.max_header_bytes + READ_CHUNK;
	c->out.max = 0;
	c->body.max = l->cfg.max_body_bytes;
	client_reset_request(c);
	client_deadline(c, loop_now(l->loop) + l->cfg.idle_timeout_ms * 1000000ULL);
	c->deadline_idle = 1;
	c->readable = 1;  /* a request may have come with the handshake */
	err = l7_io_add(l, &c->io, fd, client_event);
	if (err) {
		pr_err("epoll: add client: %s", strerror(-err));
		loop_timer_stop(l->loop, &c->timer);
		close(fd);
		free(c);
		return err;
	}
	c->next = l->clients;
	if (l->clients)
		l->clients->prev = c;
	l->clients = c;
	l->n_clients++;
	l->st.accepted++;
	return 0;
}

/* Timeouts: head and body (408), idle keep-alive (closed quietly), and a
 * client that does not read its response (closed). Queued, or at a backend
 * that is not waiting on it, a client past its deadline is looked at again
 * every L7_TICK_NS, until its state allows one of those or the deadline
 * moves. */
static void client_timer(struct loop_timer *t)
{
	struct client *c = container_of(t, struct client, timer);
	struct l7 *l = c->l7;

	if (c->dead)
		return;
	if (c->lingering || (c->closing && c->linger)) {
		client_close(c);          /* lingered long enough, or the answer is stuck */
	} else if (c->state == CL_HEAD && !buf_used(&c->in)) {
		client_close(c);          /* idle keep-alive */
	} else if (c->state == CL_HEAD || c->state == CL_BODY) {
		client_reject(c, 408);
		if (!c->dead && !c->lingering)
			client_deadline(c, loop_now(l->loop) + l->cfg.idle_timeout_ms * 1000000ULL);
	} else if (c->closing ||
		   (c->state == CL_UPSTREAM && c->up && c->up->paused)) {
		/* Not reading what it asked for: the backend waits on it. */
		client_close(c);
	} else {
		loop_timer_at(l->loop, &c->timer, loop_now(l->loop) + L7_TICK_NS);
	}
}

void client_deadline(struct client *c, uint64_t when_ns)
{
	c->deadline_ns = when_ns;
	if (when_ns)
		loop_timer_at(c->l7->loop, &c->timer, when_ns);
	else
		loop_timer_stop(c->l7->loop, &c->timer);
}
