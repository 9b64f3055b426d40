/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * http.h - an incremental, strict HTTP/1.1 message parser for sluice-l7
 * (RFC 9112). Pure functions over a caller's buffer: no allocation, no I/O,
 * so the fuzzer drives them directly (tests/fuzz/fuzz_l7.c).
 *
 * Heads are parsed whole once they are in the buffer; the returned header
 * spans point into that buffer. Bodies are framed by the caller with
 * http_body_kind(); chunked bodies are walked with struct http_chunked, which
 * validates the framing and hands out the payload bytes as it goes.
 *
 * Errors are returned as a negative HTTP status the proxy answers with:
 * -400 malformed, -431 head too large, -413 body too large (a
 * Content-Length past the caller's limit), -501 a Transfer-Encoding other
 * than chunked, -505 a version other than HTTP/1.0 or 1.1.
 */
#ifndef SLUICE_L7_HTTP_H
#define SLUICE_L7_HTTP_H

#include <stddef.h>
#include <stdint.h>

#define HTTP_MAX_HEADERS 64
#define HTTP_MAX_METHOD 16

struct http_span {
	const char *p;
	size_t n;
};

struct http_header {
	struct http_span name;   /* as sent; compare case-insensitively */
	struct http_span value;  /* leading and trailing blanks trimmed */
};

/* What both requests and responses carry, derived from the headers. */
struct http_framing {
	int64_t content_length;  /* -1: none */
	int chunked;             /* Transfer-Encoding: chunked (the last coding) */
	int keep_alive;          /* from the version and Connection */
	int upgrade;             /* Connection: upgrade (refused by the proxy) */
};

struct http_request {
	struct http_span method;
	struct http_span target;     /* origin-form: starts with '/' */
	int minor;                   /* HTTP/1.<minor>: 0 or 1 */
	struct http_header headers[HTTP_MAX_HEADERS];
	unsigned int n_headers;
	struct http_framing framing;
	int expect_continue;         /* Expect: 100-continue */
	size_t head_len;             /* bytes up to and including the blank line */
};

struct http_response {
	int status;                  /* 100..599 */
	int minor;
	struct http_header headers[HTTP_MAX_HEADERS];
	unsigned int n_headers;
	struct http_framing framing;
	size_t head_len;
};

/*
 * Parses a request head at the start of buf[0..len).
 * Returns head_len (> 0) when the head is complete, 0 when more bytes are
 * needed (and len < max_head), or a negative status:
 *   -431 the head is not complete within max_head bytes, or more than
 *        HTTP_MAX_HEADERS headers;
 *   -400 a malformed request line or header (bare CR, no colon, a space
 *        before the colon, a control character, a target that is not
 *        origin-form, both Content-Length and Transfer-Encoding, differing
 *        or non-numeric Content-Lengths, a missing Host in HTTP/1.1);
 *   -413 Content-Length above max_body;
 *   -501 Transfer-Encoding other than "chunked";
 *   -505 HTTP version other than 1.0 or 1.1.
 * Leading empty lines (CRLF) before the request line are skipped, as RFC
 * 9112 2.2 allows; they count in head_len.
 */
long http_parse_request(const char *buf, size_t len, size_t max_head, uint64_t max_body,
			struct http_request *req);

/* The same for a backend's response head (status line "HTTP/1.x NNN reason").
 * -502 stands for every malformation (the proxy answers 502). */
long http_parse_response(const char *buf, size_t len, size_t max_head,
			 struct http_response *resp);

/* The header's value by name (case-insensitive), or NULL. */
const struct http_span *http_header_get(const struct http_header *h, unsigned int n,
					const char *name);

enum http_body {
	HTTP_BODY_NONE = 0,      /* no body */
	HTTP_BODY_LENGTH,        /* framing.content_length bytes */
	HTTP_BODY_CHUNKED,       /* chunked: walk with struct http_chunked */
	HTTP_BODY_UNTIL_CLOSE,   /* responses only: until the backend closes */
};

enum http_body http_request_body(const struct http_request *req);
/* request_method_head: the request was HEAD (no body whatever the headers
 * say); 1xx, 204 and 304 have none either. */
enum http_body http_response_body(const struct http_response *resp, int request_method_head);

/* Chunked transfer coding, validated incrementally. */
struct http_chunked {
	int state;               /* internal */
	uint64_t remaining;      /* payload bytes left in the current chunk */
	uint64_t total;          /* payload bytes so far */
	uint64_t max_total;      /* 0 = no limit; else -413 past it */
	unsigned int line_len;   /* bytes of the current size/trailer line */
	int done;                /* the last chunk and the trailers are through */
};

void http_chunked_init(struct http_chunked *c, uint64_t max_total);

/* Payload bytes as they are found (data points into buf). */
typedef void (*http_data_fn)(const char *data, size_t n, void *arg);

/*
 * Consumes buf[0..len): returns how many bytes belong to the body (len, or
 * fewer when the body ends inside buf: then c->done is set and the rest is
 * the next message), or -400 on bad framing (a bad hex size, a size past
 * 2^48, a missing CRLF after the data, a chunk-extension or trailer line
 * longer than 4096 bytes), or -413 when the payload passes max_total.
 * on_data may be NULL.
 */
long http_chunked_feed(struct http_chunked *c, const char *buf, size_t len,
		       http_data_fn on_data, void *arg);

/* Is the span equal to s, ignoring ASCII case? */
int http_span_ieq(const struct http_span *a, const char *s);

/* Hop-by-hop headers a proxy must not forward (RFC 9110 7.6.1): Connection,
 * Keep-Alive, Proxy-Connection, TE, Trailer, Transfer-Encoding, Upgrade,
 * Proxy-Authenticate, Proxy-Authorization, and any named in Connection. */
int http_is_hop_by_hop(const struct http_span *name, const struct http_header *h,
		       unsigned int n);

#endif
