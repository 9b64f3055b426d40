// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * fuzz_l7.c - libFuzzer target for what sluice-l7 reads from the network:
 * the HTTP/1.1 parser (user/l7/http.c) and the token accounting
 * (user/l7/tokens.c). Besides the sanitizers' findings, it checks the
 * parsers' own contracts and calls abort() when one breaks.
 *
 * Input layout:
 *   byte 0   the mode, byte % 5: 'A' request heads (pipelined, with their
 *            bodies), 'B' response heads, 'C' a chunked body, 'D' a token
 *            estimate and a usage body, 'E' a server-sent-event stream
 *   byte 1   bits 0-2: k, the number of piece-size bytes that follow;
 *            bits 3-7: the mode's option (HEAD request, max_total, caps)
 *   k bytes  piece sizes (b + 1), cycled: bodies and streams are fed in
 *            pieces of these sizes (k = 0: whole)
 *   rest     the payload
 * The seeds in tests/fuzz/corpus/ start "A@", "B@", ...: '@' is k = 0.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "http.h"
#include "tokens.h"

#define MAX_HEAD 1024
#define MAX_BODY 2048
#define MAX_MESSAGES 16

#define ASSERT(c)                                                                            \
	do {                                                                                 \
		if (!(c)) {                                                                  \
			fprintf(stderr, "fuzz_l7: invariant broken: %s (%s:%d)\n", #c,       \
				__FILE__, __LINE__);                                         \
			abort();                                                             \
		}                                                                            \
	} while (0)

struct pieces {
	const uint8_t *sizes;
	size_t k, next;
};

static size_t piece_len(struct pieces *p, size_t left)
{
	size_t n;

	if (!p->k)
		return left;
	n = (size_t)p->sizes[p->next++ % p->k] + 1;
	return n < left ? n : left;
}

static int in_span(const char *p, size_t n, const char *lo, const char *hi)
{
	return p >= lo && p <= hi && n <= (size_t)(hi - p);
}

/* Chunked payload as the callbacks deliver it: where it lies and a hash. */
struct sink {
	const char *lo, *hi;     /* the piece being fed */
	uint64_t bytes, hash;
};

static void sink_data(const char *data, size_t n, void *arg)
{
	struct sink *s = arg;
	size_t i;

	ASSERT(n > 0);
	ASSERT(in_span(data, n, s->lo, s->hi));
	for (i = 0; i < n; i++)
		s->hash = (s->hash ^ (uint8_t)data[i]) * 1099511628211ULL;
	s->bytes += n;
}

/*
 * Feeds buf[0..len) to a chunked decoder in pieces and once whole; both
 * must agree on the outcome, the bytes consumed and the payload. Returns the
 * body's length when it ended inside buf, 0 when it needs more, or the error.
 */
static long chunked_check(const char *buf, size_t len, uint64_t max_total, struct pieces *p)
{
	struct http_chunked c, w;
	struct sink s = { .hash = 14695981039346656037ULL };
	struct sink ws = { .hash = 14695981039346656037ULL };
	size_t off = 0;
	long r = 0, whole;

	http_chunked_init(&c, max_total);
	while (off < len) {
		size_t n = piece_len(p, len - off);
		int was_done = c.done;

		s.lo = buf + off;
		s.hi = buf + off + n;
		r = http_chunked_feed(&c, buf + off, n, sink_data, &s);
		if (r < 0) {
			ASSERT(r == -400 || r == -413);
			ASSERT(!c.done);
			/* the error sticks */
			ASSERT(http_chunked_feed(&c, "0\r\n\r\n", 5, sink_data, &s) == r);
			break;
		}
		ASSERT((size_t)r <= n);
		ASSERT(!was_done || r == 0);
		ASSERT(c.done || (size_t)r == n);
		off += (size_t)r;
		if (c.done)
			break;
	}
	ASSERT(s.bytes == c.total);
	if (max_total)
		ASSERT(c.total <= max_total);

	http_chunked_init(&w, max_total);
	ws.lo = buf;
	ws.hi = buf + len;
	whole = http_chunked_feed(&w, buf, len, sink_data, &ws);
	ASSERT(ws.bytes == w.total);
	if (r < 0) {
		ASSERT(whole == r);
		return r;
	}
	ASSERT(w.done == c.done);
	ASSERT(ws.hash == s.hash && ws.bytes == s.bytes);
	if (!c.done) {
		ASSERT(whole == (long)len);
		return 0;
	}
	ASSERT(whole == (long)off);
	ASSERT(http_chunked_feed(&w, buf, len, NULL, NULL) == 0);
	return (long)off;
}

static void check_headers(const char *head, size_t head_len, const struct http_header *h,
			  unsigned int n)
{
	unsigned int i;
	size_t j;

	ASSERT(n <= HTTP_MAX_HEADERS);
	for (i = 0; i < n; i++) {
		const struct http_span *v;

		ASSERT(h[i].name.n > 0);
		ASSERT(in_span(h[i].name.p, h[i].name.n, head, head + head_len));
		ASSERT(in_span(h[i].value.p, h[i].value.n, head, head + head_len));
		ASSERT(h[i].value.p > h[i].name.p + h[i].name.n - 1);
		for (j = 0; j < h[i].name.n; j++)
			ASSERT(h[i].name.p[j] != ':' && (uint8_t)h[i].name.p[j] > ' ');
		for (j = 0; j < h[i].value.n; j++)
			ASSERT(h[i].value.p[j] != '\r' && h[i].value.p[j] != '\n' &&
			       h[i].value.p[j] != '\0');
		if (h[i].value.n) {
			ASSERT(h[i].value.p[0] != ' ' && h[i].value.p[0] != '\t');
			ASSERT(h[i].value.p[h[i].value.n - 1] != ' ' &&
			       h[i].value.p[h[i].value.n - 1] != '\t');
		}
		ASSERT(http_span_ieq(&h[i].name, "") == 0);
		/* the first header of that name is found */
		v = NULL;
		for (j = 0; j <= i && !v; j++)
			if (h[j].name.n == h[i].name.n &&
			    !strncasecmp(h[j].name.p, h[i].name.p, h[i].name.n))
				v = &h[j].value;
		if (h[i].name.n < 64) {
			char name[64];

			memcpy(name, h[i].name.p, h[i].name.n);
			name[h[i].name.n] = '\0';
			ASSERT(http_header_get(h, n, name) == v);
		}
		(void)http_is_hop_by_hop(&h[i].name, h, n);
	}
}

static void check_framing(const struct http_framing *f)
{
	ASSERT(f->content_length >= -1);
	ASSERT(!(f->chunked && f->content_length >= 0));
	ASSERT(f->keep_alive == 0 || f->keep_alive == 1);
}

static void fuzz_requests(const char *buf, size_t len, struct pieces *p)
{
	static struct http_request r, q;
	size_t off = 0;
	int m;

	for (m = 0; m < MAX_MESSAGES && off < len; m++) {
		const char *b = buf + off;
		size_t left = len - off;
		long n = http_parse_request(b, left, MAX_HEAD, MAX_BODY, &r);

		if (n == 0) {
			ASSERT(left < MAX_HEAD);
			return;
		}
		if (n < 0) {
			ASSERT(n == -400 || n == -431 || n == -413 || n == -501 || n == -505);
			return;
		}
		ASSERT((size_t)n == r.head_len && (size_t)n <= left && n <= MAX_HEAD);
		ASSERT(b[n - 1] == '\n');
		ASSERT(r.method.n >= 1 && r.method.n <= HTTP_MAX_METHOD);
		ASSERT(in_span(r.method.p, r.method.n, b, b + n));
		ASSERT(in_span(r.target.p, r.target.n, b, b + n) && r.target.n >= 1);
		ASSERT(r.target.p[0] == '/');
		ASSERT(r.minor == 0 || r.minor == 1);
		ASSERT(r.expect_continue == 0 || r.expect_continue == 1);
		check_framing(&r.framing);
		ASSERT(r.framing.content_length <= MAX_BODY);
		ASSERT(r.minor == 1 || !r.framing.chunked);
		check_headers(b, (size_t)n, r.headers, r.n_headers);
		/* incremental: one byte short needs more; a max_head of exactly
		 * the head still fits, and bytes after the head change nothing */
		ASSERT(http_parse_request(b, (size_t)n - 1, MAX_HEAD, MAX_BODY, &q) == 0);
		ASSERT(http_parse_request(b, (size_t)n, (size_t)n, MAX_BODY, &q) == n);
		ASSERT(q.n_headers == r.n_headers && q.framing.chunked == r.framing.chunked &&
		       q.framing.content_length == r.framing.content_length);
		off += (size_t)n;

		switch (http_request_body(&r)) {
		case HTTP_BODY_NONE:
			break;
		case HTTP_BODY_LENGTH:
			ASSERT(r.framing.content_length >= 0);
			if ((uint64_t)r.framing.content_length > len - off)
				return;
			off += (size_t)r.framing.content_length;
			break;
		case HTTP_BODY_CHUNKED: {
			long c = chunked_check(buf + off, len - off, MAX_BODY, p);

			if (c <= 0)
				return;
			off += (size_t)c;
			break;
		}
		default:
			ASSERT(0);  /* requests have no until-close body */
		}
	}
}

static void fuzz_responses(const char *buf, size_t len, int head, struct pieces *p)
{
	static struct http_response r, q;
	size_t off = 0;
	int m;

	for (m = 0; m < MAX_MESSAGES && off < len; m++) {
		const char *b = buf + off;
		size_t left = len - off;
		long n = http_parse_response(b, left, MAX_HEAD, &r);
		enum http_body kind;

		if (n == 0) {
			ASSERT(left < MAX_HEAD);
			return;
		}
		if (n < 0) {
			ASSERT(n == -502);
			return;
		}
		ASSERT((size_t)n == r.head_len && (size_t)n <= left && n <= MAX_HEAD);
		ASSERT(b[n - 1] == '\n');
		ASSERT(r.status >= 100 && r.status <= 599);
		ASSERT(r.minor == 0 || r.minor == 1);
		check_framing(&r.framing);
		check_headers(b, (size_t)n, r.headers, r.n_headers);
		ASSERT(http_parse_response(b, (size_t)n - 1, MAX_HEAD, &q) == 0);
		ASSERT(http_parse_response(b, (size_t)n, (size_t)n, &q) == n);
		off += (size_t)n;

		kind = http_response_body(&r, head);
		if (head || r.status < 200 || r.status == 204 || r.status == 304)
			ASSERT(kind == HTTP_BODY_NONE);
		switch (kind) {
		case HTTP_BODY_NONE:
			break;
		case HTTP_BODY_LENGTH:
			ASSERT(r.framing.content_length >= 0);
			if ((uint64_t)r.framing.content_length > len - off)
				return;
			off += (size_t)r.framing.content_length;
			break;
		case HTTP_BODY_CHUNKED: {
			long c = chunked_check(buf + off, len - off, 0, p);

			if (c <= 0)
				return;
			off += (size_t)c;
			break;
		}
		case HTTP_BODY_UNTIL_CLOSE:
			ASSERT(r.framing.content_length < 0 && !r.framing.chunked);
			return;
		}
	}
}

/* The reason goes into a JSON error body as it is. */
static void check_reason(const char *err, size_t errlen)
{
	size_t i, n = strnlen(err, errlen);

	ASSERT(n < errlen);
	ASSERT(n > 0);
	for (i = 0; i < n; i++)
		ASSERT(err[i] >= 0x20 && err[i] < 0x7f && err[i] != '"' && err[i] != '\\');
}

/* Payload: the target up to the first LF, then the body. */
static void fuzz_tokens(const char *buf, size_t len, unsigned int opt)
{
	static const enum tokens_api apis[] = { TOKENS_API_CHAT, TOKENS_API_COMPLETIONS };
	const char *lf = memchr(buf, '\n', len);
	size_t tlen = lf ? (size_t)(lf - buf) : len;
	const char *body = lf ? lf + 1 : buf + len;
	size_t blen = len - (size_t)(body - buf);
	const char *q = memchr(buf, '?', tlen);
	enum tokens_api api = tokens_api_of(buf, tlen);
	uint64_t max_output = (opt & 1) ? 0 : 1000;
	struct tokens_estimate est;
	struct tokens_usage u;
	char err[128];
	size_t i;
	int rc;

	ASSERT(api == TOKENS_API_NONE || api == TOKENS_API_CHAT || api == TOKENS_API_COMPLETIONS);
	/* the query string is ignored */
	if (q)
		ASSERT(tokens_api_of(buf, (size_t)(q - buf)) == api);
	if (api != TOKENS_API_NONE)
		ASSERT(tlen >= 15 && buf[0] == '/');

	for (i = 0; i < sizeof(apis) / sizeof(apis[0]); i++) {
		memset(err, 'x', sizeof(err));
		rc = tokens_estimate(apis[i], body, blen, 256, max_output, &est, err, sizeof(err));
		ASSERT(rc == 0 || rc == -EINVAL || rc == -ENOMEM);
		ASSERT(est.stream == 0 || est.stream == 1);
		if (rc == -EINVAL)
			check_reason(err, sizeof(err));
		if (rc == 0) {
			ASSERT(err[0] == '\0');
			if (max_output)
				ASSERT(est.output <= max_output);
		} else {
			ASSERT(est.input == 0 && est.output == 0 && est.stream == 0);
		}
		/* a one-byte reason buffer still gets its NUL */
		err[0] = 'x';
		rc = tokens_estimate(apis[i], body, blen, 256, max_output, &est, err, 1);
		ASSERT(err[0] == '\0');
	}
	rc = tokens_estimate(TOKENS_API_NONE, body, blen, 256, max_output, &est, err, sizeof(err));
	ASSERT(rc == 0 && est.input == 0 && est.output == 0);

	rc = tokens_usage_json(body, blen, &u);
	ASSERT(rc == 0 || rc == -ENOENT || rc == -EINVAL || rc == -ENOMEM);
	ASSERT(u.found == (rc == 0));
}

/* The stream fed in pieces and whole must read the same. */
static void fuzz_sse(const char *buf, size_t len, struct pieces *p)
{
	struct sse_scan a, b;
	size_t off = 0, i, lines = 0;

	if (sse_scan_init(&a))
		return;
	if (sse_scan_init(&b)) {
		sse_scan_free(&a);
		return;
	}
	while (off < len) {
		size_t n = piece_len(p, len - off);
		uint64_t before = a.events;

		sse_scan_feed(&a, buf + off, n);
		ASSERT(a.events >= before);
		ASSERT(a.len <= SSE_MAX_LINE);
		off += n;
	}
	sse_scan_feed(&b, buf, len);
	for (i = 0; i < len; i++)
		lines += buf[i] == '\n';
	ASSERT(a.events <= lines);
	ASSERT(a.events == b.events && a.done == b.done);
	ASSERT(a.usage.found == b.usage.found && a.usage.prompt == b.usage.prompt &&
	       a.usage.completion == b.usage.completion);
	ASSERT(a.usage.found == 0 || a.usage.found == 1);
	sse_scan_free(&a);
	sse_scan_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pieces p = { 0 };
	unsigned int mode, opt;
	const char *buf;
	size_t len;

	if (size < 2)
		return 0;
	mode = data[0] % 5;
	opt = data[1] >> 3;
	p.k = data[1] & 7;
	if (size < 2 + p.k)
		return 0;
	p.sizes = data + 2;
	buf = (const char *)data + 2 + p.k;
	len = size - 2 - p.k;

	switch (mode) {
	case 0:
		fuzz_requests(buf, len, &p);
		break;
	case 1:
		fuzz_responses(buf, len, opt & 1, &p);
		break;
	case 2:
		/* max_total: none, or a multiple of 64 up to 1984 */
		chunked_check(buf, len, (uint64_t)opt * 64, &p);
		break;
	case 3:
		fuzz_tokens(buf, len, opt);
		break;
	case 4:
		fuzz_sse(buf, len, &p);
		break;
	}
	return 0;
}
