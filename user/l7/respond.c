// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * respond.c - the responses sluice-l7 writes itself, and the rate-limit
 * headers that go on every response to an identified caller, its own and
 * the backends' alike:
 *
 *   x-ratelimit-limit-requests / -remaining-requests / -reset-requests
 *   x-ratelimit-limit-tokens   / -remaining-tokens   / -reset-tokens
 *
 * Errors carry an OpenAI-style body, {"error":{"message","type","param",
 * "code"}}, and 429 and 503 a Retry-After in whole seconds computed from the
 * bucket that refused, and retry-after-ms, the same in milliseconds; a
 * refusal that waiting cannot cure (respond_final) says x-should-retry:
 * false instead. Each carries an x-request-id: the client's, if it sent a
 * safe one, else ours.
 */
#include <stdio.h>
#include <string.h>
#include "l7.h"
#include "http_status.h"
#include "log.h"

int l7_header_put(struct buf *b, const struct http_header *h)
{
	size_t n = h->name.n + h->value.n + 4;
	int err = buf_reserve(b, n);
	char *p;

	if (err)
		return err;
	p = b->p + b->len;
	memcpy(p, h->name.p, h->name.n);
	p += h->name.n;
	*p++ = ':';
	*p++ = ' ';
	memcpy(p, h->value.p, h->value.n);
	p += h->value.n;
	*p++ = '\r';
	*p = '\n';
	b->len += n;
	return 0;
}

/* The three headers of one limit ("requests" or "tokens"); none when the
 * limit is not set. */
static int limit_headers(struct buf *out, const char *what, uint64_t limit, uint64_t remaining,
			 uint64_t reset_ns)
{
	char reset[32];

	if (!limit)
		return 0;
	lim_fmt_duration(reset_ns, reset, sizeof(reset));
	return buf_str(out, "x-ratelimit-limit-") | buf_str(out, what) | buf_str(out, ": ") |
	       buf_u64(out, limit) | buf_str(out, "\r\nx-ratelimit-remaining-") |
	       buf_str(out, what) | buf_str(out, ": ") | buf_u64(out, remaining) |
	       buf_str(out, "\r\nx-ratelimit-reset-") | buf_str(out, what) |
	       buf_str(out, ": ") | buf_str(out, reset) | buf_str(out, "\r\n");
}

int respond_ratelimit_headers(struct client *c, struct buf *out)
{
	struct lim_view v;

	if (!c->caller)
		return 0;
	if (c->fview_ok)
		v = c->fview;   /* the store's shared buckets */
	else
		limiter_view(c->l7->lim, c->caller, loop_now(c->l7->loop), &v);
	return limit_headers(out, "requests", v.limit_requests, v.remaining_requests,
			     v.reset_requests_ns) |
	       limit_headers(out, "tokens", v.limit_tokens, v.remaining_tokens,
			     v.reset_tokens_ns);
}

/* A JSON string's content: quotes, backslashes and control characters
 * escaped (messages can quote a client's input). */
static int json_escape(struct buf *b, const char *s)
{
	int err = 0;

	for (; *s && !err; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			err = buf_printf(b, "\\%c", ch);
		else if (ch < 0x20)
			err = buf_printf(b, "\\u%04x", ch);
		else
			err = buf_append(b, s, 1);
	}
	return err;
}

/* final: the request can never succeed as sent (x-should-retry: false, the
 * header OpenAI's SDKs obey before any status rule), so no Retry-After. */
static void respond(struct client *c, int status, const char *type, const char *code,
		    const char *message, uint64_t retry_ns, int final)
{
	struct l7 *l = c->l7;
	char stack[1024];
	struct buf body = { .p = stack, .cap = sizeof(stack), .max = sizeof(stack) };
	int err = 0;

	err |= buf_printf(&body, "{\"error\":{\"message\":\"");
	err |= json_escape(&body, message);
	err |= buf_printf(&body, "\",\"type\":\"%s\",\"param\":null,\"code\":", type);
	err |= code ? buf_printf(&body, "\"%s\"}}\n", code) : buf_printf(&body, "null}}\n");

	/* A backend's failure as the client sees it; not 503, the load shed
	 * here, which must not make the adaptive controller cut further. */
	if ((status == 502 || status == 504) && l->kern)
		l7_kernel_count(l->kern, l->cfg.signals_port, SLUICE_SIG_HTTP_5XX);
	/* Our own 5xx after the request was charged: it never got an answer
	 * from a backend, so the charge goes back (before the x-ratelimit-*
	 * headers below, which then show it). */
	if (status >= 500 && c->admitted)
		admit_unserved(c);
	if (c->minor == 0 && c->keep_alive == 0)
		c->closing = 1;
	err |= buf_printf(&c->out, "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
			    "Content-Length: %zu\r\n", status, http_status_reason(status),
			    buf_used(&body));
	if (final)
		err |= buf_printf(&c->out, "x-should-retry: false\r\n");
	else if (retry_ns && (status == 429 || status == 503)) {
		/* Exact, in ms (at least 1): ceil(ms / 1000) is Retry-After. */
		uint64_t ms = retry_ns / 1000000ULL + (retry_ns % 1000000ULL != 0);

		err |= buf_printf(&c->out, "Retry-After: %u\r\nretry-after-ms: %llu\r\n",
				  lim_retry_after_s(retry_ns), (unsigned long long)(ms ? ms : 1));
	}
	client_request_id(c);
	err |= buf_printf(&c->out, "x-request-id: %s\r\n", c->req_id);
	err |= respond_ratelimit_headers(c, &c->out);
	if (c->closing || !c->keep_alive)
		err |= buf_printf(&c->out, "Connection: close\r\n");
	else if (c->minor == 0)
		err |= buf_printf(&c->out, "Connection: keep-alive\r\n");
	err |= buf_printf(&c->out, "\r\n");
	if (!c->is_head)
		err |= buf_append(&c->out, buf_data(&body), buf_used(&body));
	if (err) {
		pr_err("client %s: no memory for a %d response: closing", c->addr_str, status);
		client_close(c);
		return;
	}
	l->st.responses[c->tier][status / 100]++;
	client_request_done(c);
}

void respond_error(struct client *c, int status, const char *type, const char *code,
		   const char *message, uint64_t retry_ns)
{
	respond(c, status, type, code, message, retry_ns, 0);
}

void respond_final(struct client *c, int status, const char *type, const char *code,
		   const char *message)
{
	respond(c, status, type, code, message, 0, 1);
}
