// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The HTTP/1.1 parser (user/l7/http.c): one table row per accepted or
 * refused head, every head also fed in growing prefixes (an incomplete head
 * must say "more", never succeed early or fail differently), pipelined
 * messages, and chunked bodies split at every byte position with the
 * payload rebuilt from the callbacks.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "harness.h"
#include "http.h"

#define MAX_HEAD 8192
#define MAX_BODY (1u << 20)
#define WHOLE (-1000)  /* want: the head is the whole input */

struct req_case {
	const char *name;
	const char *in;
	long want;               /* head length, WHOLE, 0 (more) or -status */
	int64_t cl;
	int chunked, keep_alive, upgrade, expect;
	enum http_body body;
	size_t len;              /* 0: strlen(in) (set it for inputs with NUL) */
};

#define H11 " HTTP/1.1\r\nHost: a\r\n"
#define OK(n, in, cl, ch, ka, up, ex, body) { n, in, WHOLE, cl, ch, ka, up, ex, body, 0 }
#define ERR(n, in, st) { n, in, st, 0, 0, 0, 0, 0, 0, 0 }

static const struct req_case req_cases[] = {
	OK("get", "GET /" H11 "\r\n", -1, 0, 1, 0, 0, HTTP_BODY_NONE),
	OK("get-query", "GET /v1/x?a=b&c=%20" H11 "\r\n", -1, 0, 1, 0, 0, HTTP_BODY_NONE),
	OK("lowercase-method", "get /" H11 "\r\n", -1, 0, 1, 0, 0, HTTP_BODY_NONE),
	OK("method-16", "ABCDEFGHIJKLMNOP /" H11 "\r\n", -1, 0, 1, 0, 0, HTTP_BODY_NONE),
	OK("http10-no-host", "GET / HTTP/1.0\r\n\r\n", -1, 0, 0, 0, 0, HTTP_BODY_NONE),
	OK("http10-keep-alive", "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", -1, 0, 1, 0,
	   0, HTTP_BODY_NONE),
	OK("http11-close", "GET /" H11 "Connection: close\r\n\r\n", -1, 0, 0, 0, 0,
	   HTTP_BODY_NONE),
	OK("close-wins", "GET /" H11 "Connection: keep-alive, close\r\n\r\n", -1, 0, 0, 0, 0,
	   HTTP_BODY_NONE),
	OK("connection-list-upgrade", "GET /" H11 "Connection: foo,  UPGRADE ,bar\r\n\r\n", -1,
	   0, 1, 1, 0, HTTP_BODY_NONE),
	OK("connection-two-lines", "GET /" H11 "Connection: x\r\nConnection: close\r\n\r\n", -1,
	   0, 0, 0, 0, HTTP_BODY_NONE),
	OK("content-length", "POST /" H11 "Content-Length: 5\r\n\r\n", 5, 0, 1, 0, 0,
	   HTTP_BODY_LENGTH),
	OK("content-length-zero", "POST /" H11 "Content-Length: 0\r\n\r\n", 0, 0, 1, 0, 0,
	   HTTP_BODY_LENGTH),
	OK("content-length-leading-zeros", "POST /" H11 "content-length: 007\r\n\r\n", 7, 0, 1,
	   0, 0, HTTP_BODY_LENGTH),
	OK("content-length-dup-agree", "POST /" H11 "Content-Length: 5\r\nContent-Length:5 \r\n\r\n",
	   5, 0, 1, 0, 0, HTTP_BODY_LENGTH),
	OK("content-length-at-max-body", "POST /" H11 "Content-Length: 1048576\r\n\r\n", MAX_BODY,
	   0, 1, 0, 0, HTTP_BODY_LENGTH),
	OK("chunked", "POST /" H11 "Transfer-Encoding: chunked\r\n\r\n", -1, 1, 1, 0, 0,
	   HTTP_BODY_CHUNKED),
	OK("chunked-case", "POST /" H11 "transfer-encoding: CHUNKED\r\n\r\n", -1, 1, 1, 0, 0,
	   HTTP_BODY_CHUNKED),
	OK("chunked-empty-elements", "POST /" H11 "Transfer-Encoding: , chunked ,\r\n\r\n", -1, 1,
	   1, 0, 0, HTTP_BODY_CHUNKED),
	OK("expect-continue", "POST /" H11 "Expect: 100-Continue\r\nContent-Length: 1\r\n\r\n", 1,
	   0, 1, 0, 1, HTTP_BODY_LENGTH),
	OK("leading-empty-lines", "\r\n\n\r\nGET /" H11 "\r\n", -1, 0, 1, 0, 0, HTTP_BODY_NONE),
	OK("bare-lf-heads", "GET / HTTP/1.1\nHost: a\nX: y\n\n", -1, 0, 1, 0, 0,
	   HTTP_BODY_NONE),
	OK("obs-text-value", "GET /" H11 "X: caf\xc3\xa9\r\n\r\n", -1, 0, 1, 0, 0,
	   HTTP_BODY_NONE),
	OK("empty-value", "GET /" H11 "X-Empty:\r\nY:   \r\n\r\n", -1, 0, 1, 0, 0,
	   HTTP_BODY_NONE),
	OK("empty-host", "GET / HTTP/1.1\r\nHost:\r\n\r\n", -1, 0, 1, 0, 0, HTTP_BODY_NONE),
	OK("host-port", "GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n", -1, 0, 1, 0, 0,
	   HTTP_BODY_NONE),

	ERR("cl-and-te", "POST /" H11 "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
	    -400),
	ERR("te-and-cl", "POST /" H11 "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
	    -400),
	ERR("obs-fold", "GET /" H11 "X: a\r\n b\r\n\r\n", -400),
	ERR("obs-fold-tab", "GET /" H11 "X: a\r\n\tb\r\n\r\n", -400),
	ERR("space-before-first-field", "GET / HTTP/1.1\r\n Host: a\r\n\r\n", -400),
	ERR("space-before-colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", -400),
	ERR("tab-before-colon", "GET /" H11 "Content-Length\t: 5\r\n\r\n", -400),
	ERR("method-bad-char", "G(T /" H11 "\r\n", -400),
	ERR("method-17", "ABCDEFGHIJKLMNOPQ /" H11 "\r\n", -400),
	ERR("method-empty", " /" H11 "\r\n", -400),
	ERR("name-bad-char", "GET /" H11 "X\"Y: z\r\n\r\n", -400),
	ERR("name-at", "GET /" H11 "X@Y: z\r\n\r\n", -400),
	ERR("name-empty", "GET /" H11 ": z\r\n\r\n", -400),
	ERR("no-colon", "GET /" H11 "Xyz\r\n\r\n", -400),
	ERR("bare-cr-value", "GET /" H11 "X: a\rb\r\n\r\n", -400),
	ERR("bare-cr-request-line", "GET /\r HTTP/1.1\r\nHost: a\r\n\r\n", -400),
	ERR("bare-cr-leading", "\rGET /" H11 "\r\n", -400),
	ERR("bare-cr-blank-line", "GET /" H11 "\r\r\n", -400),
	ERR("control-value", "GET /" H11 "X: a\x01 b\r\n\r\n", -400),
	ERR("del-value", "GET /" H11 "X: a\x7f\r\n\r\n", -400),
	{ "nul-value", "GET /" H11 "X: a\0b\r\n\r\n", -400, 0, 0, 0, 0, 0, 0,
	  sizeof("GET /" H11 "X: a\0b\r\n\r\n") - 1 },
	ERR("cl-plus", "POST /" H11 "Content-Length: +5\r\n\r\n", -400),
	ERR("cl-minus", "POST /" H11 "Content-Length: -5\r\n\r\n", -400),
	ERR("cl-inner-space", "POST /" H11 "Content-Length: 5 5\r\n\r\n", -400),
	ERR("cl-list", "POST /" H11 "Content-Length: 5, 5\r\n\r\n", -400),
	ERR("cl-hex", "POST /" H11 "Content-Length: 0x5\r\n\r\n", -400),
	ERR("cl-empty", "POST /" H11 "Content-Length:\r\n\r\n", -400),
	ERR("cl-int64-overflow", "POST /" H11 "Content-Length: 9223372036854775808\r\n\r\n", -400),
	ERR("cl-huge", "POST /" H11 "Content-Length: 99999999999999999999999\r\n\r\n", -400),
	ERR("cl-int64-max", "POST /" H11 "Content-Length: 9223372036854775807\r\n\r\n", -413),
	ERR("cl-dup-differ", "POST /" H11 "Content-Length: 5\r\nContent-Length: 6\r\n\r\n", -400),
	ERR("cl-over-max-body", "POST /" H11 "Content-Length: 1048577\r\n\r\n", -413),
	ERR("te-gzip", "POST /" H11 "Transfer-Encoding: gzip\r\n\r\n", -501),
	ERR("te-gzip-chunked", "POST /" H11 "Transfer-Encoding: gzip, chunked\r\n\r\n", -501),
	ERR("te-chunked-not-last", "POST /" H11 "Transfer-Encoding: chunked, gzip\r\n\r\n", -400),
	ERR("te-chunked-twice", "POST /" H11 "Transfer-Encoding: chunked, chunked\r\n\r\n", -400),
	ERR("te-chunked-two-lines",
	    "POST /" H11 "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", -400),
	ERR("te-empty", "POST /" H11 "Transfer-Encoding:  \r\n\r\n", -400),
	ERR("te-params", "POST /" H11 "Transfer-Encoding: chunked;q=1\r\n\r\n", -400),
	ERR("te-http10", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", -400),
	ERR("no-host", "GET / HTTP/1.1\r\nX: y\r\n\r\n", -400),
	ERR("two-hosts", "GET /" H11 "Host: b\r\n\r\n", -400),
	ERR("host-space", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", -400),
	ERR("host-path", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", -400),
	ERR("host-userinfo", "GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", -400),
	ERR("http20", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", -505),
	ERR("http12", "GET / HTTP/1.2\r\nHost: a\r\n\r\n", -505),
	ERR("http09", "GET / HTTP/0.9\r\n\r\n", -505),
	ERR("version-trailing-space", "GET / HTTP/1.1 \r\nHost: a\r\n\r\n", -400),
	ERR("version-short", "GET / HTTP/1\r\nHost: a\r\n\r\n", -400),
	ERR("version-lowercase", "GET / http/1.1\r\nHost: a\r\n\r\n", -400),
	ERR("version-missing", "GET /\r\nHost: a\r\n\r\n", -400),
	ERR("target-asterisk", "OPTIONS *" H11 "\r\n", -400),
	ERR("target-absolute", "GET http://a/" H11 "\r\n", -400),
	ERR("target-empty", "GET " H11 "\r\n", -400),
	ERR("target-obs-text", "GET /\xc3\xa9" H11 "\r\n", -400),
	ERR("double-space", "GET  /" H11 "\r\n", -400),
	ERR("tab-separator", "GET\t/" H11 "\r\n", -400),
	ERR("incomplete", "GET /" H11, 0),
	ERR("incomplete-request-line", "GET / HTT", 0),
	ERR("only-empty-lines", "\r\n\r\n", 0),
};

static size_t case_len(const char *in, size_t len)
{
	return len ? len : strlen(in);
}

static long want_of(const struct req_case *c)
{
	return c->want == WHOLE ? (long)case_len(c->in, c->len) : c->want;
}

TEST(http_request_table)
{
	struct http_request r;
	size_t i;

	for (i = 0; i < NELEM(req_cases); i++) {
		const struct req_case *c = &req_cases[i];
		long want = want_of(c);
		long got = http_parse_request(c->in, case_len(c->in, c->len), MAX_HEAD, MAX_BODY, &r);

		if (!CHECK(got == want, "%s: returned %ld, want %ld", c->name, got, want) ||
		    want <= 0)
			continue;
		CHECK(r.head_len == (size_t)want, "%s: head_len %zu", c->name, r.head_len);
		CHECK(r.framing.content_length == c->cl, "%s: content_length %lld, want %lld",
		      c->name, (long long)r.framing.content_length, (long long)c->cl);
		CHECK(r.framing.chunked == c->chunked, "%s: chunked %d", c->name, r.framing.chunked);
		CHECK(r.framing.keep_alive == c->keep_alive, "%s: keep_alive %d", c->name,
		      r.framing.keep_alive);
		CHECK(r.framing.upgrade == c->upgrade, "%s: upgrade %d", c->name, r.framing.upgrade);
		CHECK(r.expect_continue == c->expect, "%s: expect_continue %d", c->name,
		      r.expect_continue);
		CHECK(http_request_body(&r) == c->body, "%s: body kind %d, want %d", c->name,
		      http_request_body(&r), c->body);
	}
}

/* Every prefix of every row: a complete head is not found before its last
 * byte, and a refused one is refused with its own status or not yet. */
TEST(http_request_prefixes)
{
	struct http_request r;
	size_t i, k;

	for (i = 0; i < NELEM(req_cases); i++) {
		const struct req_case *c = &req_cases[i];
		size_t len = case_len(c->in, c->len);
		long want = want_of(c);
		int bad = 0;

		for (k = 0; k < len && !bad; k++) {
			long got = http_parse_request(c->in, k, MAX_HEAD, MAX_BODY, &r);

			if (want > 0)
				bad = !CHECK(got == 0, "%s: prefix %zu returned %ld, want 0", c->name, k,
					     got);
			else
				bad = !CHECK(got == 0 || got == want,
					     "%s: prefix %zu returned %ld, want 0 or %ld", c->name, k,
					     got, want);
		}
	}
}

TEST(http_request_spans)
{
	static const char in[] = "POST /v1/chat/completions?x=1 HTTP/1.1\r\n"
				 "Host: api.example\r\n"
				 "Authorization:   Bearer sk-1 \t\r\n"
				 "X-Empty:\r\n"
				 "content-LENGTH: 2\r\n\r\n{}";
	struct http_request r;
	const struct http_span *v;
	long n = http_parse_request(in, sizeof(in) - 1, MAX_HEAD, MAX_BODY, &r);

	if (!CHECK_EQ(n, sizeof(in) - 3, "head length"))
		return;
	CHECK(r.method.n == 4 && !memcmp(r.method.p, "POST", 4), "method");
	CHECK(r.target.n == 24 && !memcmp(r.target.p, "/v1/chat/completions?x=1", 24),
	      "target %.*s", (int)r.target.n, r.target.p);
	CHECK_EQ(r.minor, 1, "minor");
	CHECK_EQ(r.n_headers, 4, "header count");
	v = http_header_get(r.headers, r.n_headers, "AUTHORIZATION");
	CHECK(v && v->n == 11 && !memcmp(v->p, "Bearer sk-1", 11),
	      "value trimmed of leading and trailing blanks: %zu bytes", v ? v->n : 0);
	v = http_header_get(r.headers, r.n_headers, "x-empty");
	CHECK(v && v->n == 0, "empty value is found, with n 0");
	CHECK(http_header_get(r.headers, r.n_headers, "x-missing") == NULL, "missing header");
	CHECK(http_header_get(r.headers, r.n_headers, "Host") != NULL, "host");
	CHECK(http_span_ieq(&r.headers[3].name, "Content-Length"), "name kept as sent");
	CHECK(r.headers[3].name.p[8] == 'L', "name points into the buffer, case kept");
	CHECK(!http_span_ieq(&r.headers[3].name, "Content-Lengt"), "ieq is not a prefix match");
}

/* Every byte at every position of values of 1 to 24 bytes (the value
 * check reads eight bytes at a time): refused exactly when it is a control
 * other than HTAB, or DEL. */
TEST(http_value_bytes)
{
	char buf[128];
	struct http_request r;
	size_t vlen, pos, pre, n;
	unsigned int b, wrong = 0;

	pre = (size_t)snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nHost: a\r\nX: ");
	for (vlen = 1; vlen <= 24; vlen++) {
		for (pos = 0; pos < vlen; pos++) {
			for (b = 0; b < 256; b++) {
				int bad = (b < 0x20 && b != '\t') || b == 0x7f;
				long want, got;

				if (b == '\n')
					continue;  /* ends the line: another case */
				memset(buf + pre, 'v', vlen);
				buf[pre + pos] = (char)b;
				n = pre + vlen;
				memcpy(buf + n, "\r\n\r\n", 4);
				n += 4;
				want = bad ? -400 : (long)n;
				got = http_parse_request(buf, n, MAX_HEAD, MAX_BODY, &r);
				if (got != want && !wrong++)
					CHECK(0, "byte 0x%02x at %zu of %zu: %ld, want %ld", b, pos, vlen,
					      got, want);
			}
		}
	}
	CHECK_EQ(wrong, 0, "values judged wrongly");
}

TEST(http_request_limits)
{
	char buf[MAX_HEAD * 2];
	struct http_request r;
	size_t n;
	int i;
	long got;

	/* HTTP_MAX_HEADERS fields fit, one more is 431. */
	n = (size_t)snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nHost: a\r\n");
	for (i = 1; i < HTTP_MAX_HEADERS; i++)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "X-%d: v\r\n", i);
	n += (size_t)snprintf(buf + n, sizeof(buf) - n, "\r\n");
	got = http_parse_request(buf, n, MAX_HEAD, MAX_BODY, &r);
	CHECK_EQ(got, n, "64 headers fit");
	CHECK_EQ(r.n_headers, HTTP_MAX_HEADERS, "header count");
	n -= 2;
	n += (size_t)snprintf(buf + n, sizeof(buf) - n, "X-65: v\r\n\r\n");
	CHECK_EQ(http_parse_request(buf, n, MAX_HEAD, MAX_BODY, &r), -431, "65 headers");

	/* No blank line within max_head: 431, whether or not more is buffered. */
	memset(buf, 'a', sizeof(buf));
	memcpy(buf, "GET / HTTP/1.1\r\nHost: a\r\nX: ", 28);
	CHECK_EQ(http_parse_request(buf, 100, 100, MAX_BODY, &r), -431, "len == max_head");
	CHECK_EQ(http_parse_request(buf, sizeof(buf), 100, MAX_BODY, &r), -431, "len > max_head");
	CHECK_EQ(http_parse_request(buf, 99, 100, MAX_BODY, &r), 0, "len < max_head");

	/* A head that ends exactly at max_head fits; one byte later does not,
	 * even when its end is already buffered. */
	n = (size_t)snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nHost: a\r\n\r\nGET");
	CHECK_EQ(http_parse_request(buf, n, n - 3, MAX_BODY, &r), n - 3, "head == max_head");
	CHECK_EQ(http_parse_request(buf, n, n - 4, MAX_BODY, &r), -431, "head > max_head");
	CHECK_EQ(http_parse_request(buf, n, 0, MAX_BODY, &r), -431, "max_head 0");

	/* max_body is inclusive, and Content-Length 0 passes max_body 0. */
	n = (size_t)snprintf(buf, sizeof(buf), "POST /" H11 "Content-Length: 0\r\n\r\n");
	CHECK_EQ(http_parse_request(buf, n, MAX_HEAD, 0, &r), n, "CL 0, max_body 0");
	n = (size_t)snprintf(buf, sizeof(buf), "POST /" H11 "Content-Length: 1\r\n\r\n");
	CHECK_EQ(http_parse_request(buf, n, MAX_HEAD, 0, &r), -413, "CL 1, max_body 0");
}

/* Fed one byte more at a time, as a slow client sends it. */
TEST(http_request_byte_at_a_time)
{
	static const char in[] = "POST /v1/completions HTTP/1.1\r\nHost: x\r\n"
				 "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
	struct http_request r;
	size_t k;
	long got = 0;

	for (k = 1; k <= sizeof(in) - 1; k++) {
		got = http_parse_request(in, k, MAX_HEAD, MAX_BODY, &r);
		if (k < sizeof(in) - 1 && !CHECK(got == 0, "%zu bytes: %ld", k, got))
			return;
	}
	CHECK_EQ(got, sizeof(in) - 1, "complete");
	CHECK(r.framing.chunked && !r.framing.keep_alive, "framing of the whole head");
}

TEST(http_request_pipelined)
{
	static const char in[] = "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
				 "GET /b HTTP/1.1\r\nHost: x\r\n\r\n"
				 "GET /c HTTP/1.1\r\nHo";
	struct http_request r;
	size_t len = sizeof(in) - 1, off = 0;
	long n;

	n = http_parse_request(in, len, MAX_HEAD, MAX_BODY, &r);
	if (!CHECK(n > 0 && (size_t)n == r.head_len, "first: %ld", n))
		return;
	CHECK(r.target.n == 2 && r.target.p[1] == 'a', "first target");
	CHECK(r.head_len == (size_t)(strstr(in, "abc") - in), "head_len points at the body");
	CHECK_EQ(r.framing.content_length, 3, "first body");
	off = r.head_len + 3;
	CHECK(!memcmp(in + off, "GET /b", 6), "second starts after the body");
	n = http_parse_request(in + off, len - off, MAX_HEAD, MAX_BODY, &r);
	if (!CHECK(n > 0, "second: %ld", n))
		return;
	CHECK(r.target.n == 2 && r.target.p[1] == 'b', "second target");
	CHECK(r.target.p > in + off && r.target.p < in + off + n, "spans inside the second head");
	off += (size_t)n;
	CHECK(!memcmp(in + off, "GET /c", 6), "head_len points at the third");
	CHECK_EQ(http_parse_request(in + off, len - off, MAX_HEAD, MAX_BODY, &r), 0,
		 "third is incomplete");
}

struct resp_case {
	const char *name;
	const char *in;
	long want;
	int status;
	int64_t cl;
	int chunked, keep_alive;
	enum http_body body;       /* for a GET */
};

#define ROK(n, in, st, cl, ch, ka, body) { n, in, WHOLE, st, cl, ch, ka, body }
#define RERR(n, in) { n, in, -502, 0, 0, 0, 0, 0 }

static const struct resp_case resp_cases[] = {
	ROK("length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", 200, 5, 0, 1,
	    HTTP_BODY_LENGTH),
	ROK("chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", 200, -1, 1, 1,
	    HTTP_BODY_CHUNKED),
	ROK("until-close", "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n", 200, -1, 0, 1,
	    HTTP_BODY_UNTIL_CLOSE),
	ROK("gzip-until-close", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", 200, -1, 0,
	    1, HTTP_BODY_UNTIL_CLOSE),
	ROK("gzip-chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 200,
	    -1, 1, 1, HTTP_BODY_CHUNKED),
	ROK("204", "HTTP/1.1 204 No Content\r\n\r\n", 204, -1, 0, 1, HTTP_BODY_NONE),
	ROK("304-with-length", "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n", 304, 10,
	    0, 1, HTTP_BODY_NONE),
	ROK("100-continue", "HTTP/1.1 100 Continue\r\n\r\n", 100, -1, 0, 1, HTTP_BODY_NONE),
	ROK("101", "HTTP/1.1 101 Switching\r\nConnection: upgrade\r\n\r\n", 101, -1, 0, 1,
	    HTTP_BODY_NONE),
	ROK("no-reason", "HTTP/1.1 429\r\nContent-Length: 0\r\n\r\n", 429, 0, 0, 1,
	    HTTP_BODY_LENGTH),
	ROK("empty-reason", "HTTP/1.1 503 \r\n\r\n", 503, -1, 0, 1, HTTP_BODY_UNTIL_CLOSE),
	ROK("http10", "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n", 200, 1, 0, 0,
	    HTTP_BODY_LENGTH),
	ROK("http10-keep-alive", "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n", 200, -1, 0,
	    1, HTTP_BODY_UNTIL_CLOSE),
	ROK("close", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n", 200, 2,
	    0, 0, HTTP_BODY_LENGTH),
	ROK("bare-lf", "HTTP/1.1 200 OK\nContent-Length: 2\n\n", 200, 2, 0, 1, HTTP_BODY_LENGTH),
	ROK("599", "HTTP/1.1 599 x\r\n\r\n", 599, -1, 0, 1, HTTP_BODY_UNTIL_CLOSE),

	RERR("cl-and-te", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"),
	RERR("te-http10", "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"),
	RERR("te-chunked-twice", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n"),
	RERR("te-chunked-not-last", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"),
	RERR("cl-bad", "HTTP/1.1 200 OK\r\nContent-Length: 5x\r\n\r\n"),
	RERR("cl-differ", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 4\r\n\r\n"),
	RERR("status-letters", "HTTP/1.1 2x0 OK\r\n\r\n"),
	RERR("status-099", "HTTP/1.1 099 x\r\n\r\n"),
	RERR("status-600", "HTTP/1.1 600 x\r\n\r\n"),
	RERR("status-short", "HTTP/1.1 20\r\n\r\n"),
	RERR("status-no-space", "HTTP/1.1 200OK\r\n\r\n"),
	RERR("http20", "HTTP/2.0 200 OK\r\n\r\n"),
	RERR("version-bad", "HTTP/1.x 200 OK\r\n\r\n"),
	RERR("not-http", "ICY 200 OK\r\n\r\n"),
	RERR("reason-control", "HTTP/1.1 200 O\x01K\r\n\r\n"),
	RERR("bare-cr", "HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n"),
	RERR("obs-fold", "HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n"),
	RERR("space-before-colon", "HTTP/1.1 200 OK\r\nX : a\r\n\r\n"),
	RERR("leading-empty-line", "\r\nHTTP/1.1 200 OK\r\n\r\n"),
	{ "incomplete", "HTTP/1.1 200 OK\r\nContent-Le", 0, 0, 0, 0, 0, 0 },
};

TEST(http_response_table)
{
	struct http_response r;
	size_t i, k;

	for (i = 0; i < NELEM(resp_cases); i++) {
		const struct resp_case *c = &resp_cases[i];
		size_t len = strlen(c->in);
		long want = c->want == WHOLE ? (long)len : c->want;
		long got = http_parse_response(c->in, len, MAX_HEAD, &r);

		for (k = 0; k < len; k++) {
			long p = http_parse_response(c->in, k, MAX_HEAD, &r);

			if (!CHECK(p == 0 || (want < 0 && p == want), "%s: prefix %zu returned %ld",
				   c->name, k, p))
				break;
		}
		got = http_parse_response(c->in, len, MAX_HEAD, &r);
		if (!CHECK(got == want, "%s: returned %ld, want %ld", c->name, got, want) ||
		    want <= 0)
			continue;
		CHECK(r.head_len == len, "%s: head_len", c->name);
		CHECK(r.status == c->status, "%s: status %d", c->name, r.status);
		CHECK(r.framing.content_length == c->cl, "%s: content_length %lld", c->name,
		      (long long)r.framing.content_length);
		CHECK(r.framing.chunked == c->chunked, "%s: chunked %d", c->name, r.framing.chunked);
		CHECK(r.framing.keep_alive == c->keep_alive, "%s: keep_alive %d", c->name,
		      r.framing.keep_alive);
		CHECK(http_response_body(&r, 0) == c->body, "%s: body %d, want %d", c->name,
		      http_response_body(&r, 0), c->body);
		CHECK(http_response_body(&r, 1) == HTTP_BODY_NONE, "%s: HEAD has no body", c->name);
	}
}

TEST(http_response_limits)
{
	char buf[512];
	struct http_response r;
	size_t n;
	int i;

	n = (size_t)snprintf(buf, sizeof(buf), "HTTP/1.1 200 OK\r\n");
	for (i = 0; i <= HTTP_MAX_HEADERS; i++)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "X: %d\r\n", i % 10);
	n += (size_t)snprintf(buf + n, sizeof(buf) - n, "\r\n");
	CHECK_EQ(http_parse_response(buf, n, MAX_HEAD, &r), -502, "65 headers");
	CHECK_EQ(http_parse_response(buf, n, 100, &r), -502, "head past max_head");
	CHECK_EQ(http_parse_response(buf, 99, 100, &r), 0, "not yet at max_head");
}

TEST(http_hop_by_hop)
{
	static const char in[] = "GET / HTTP/1.1\r\nHost: a\r\nConnection: X-Drop , close\r\n"
				 "connection: Content-Length, host, x-other\r\n\r\n";
	static const struct {
		const char *name;
		int want;
	} rows[] = {
		{ "Connection", 1 }, { "keep-alive", 1 }, { "Proxy-Connection", 1 }, { "TE", 1 },
		{ "Trailer", 1 }, { "transfer-encoding", 1 }, { "Upgrade", 1 },
		{ "Proxy-Authenticate", 1 }, { "proxy-authorization", 1 }, { "x-drop", 1 },
		{ "X-Other", 1 }, { "close", 1 }, { "X-Dro", 0 }, { "Authorization", 0 },
		{ "Content-Type", 0 },
		/* named in Connection, but stripping them would reframe the message */
		{ "Content-Length", 0 }, { "Host", 0 },
	};
	struct http_request r;
	size_t i;

	if (!CHECK(http_parse_request(in, sizeof(in) - 1, MAX_HEAD, MAX_BODY, &r) > 0, "parse"))
		return;
	for (i = 0; i < NELEM(rows); i++) {
		struct http_span s = { rows[i].name, strlen(rows[i].name) };

		CHECK(http_is_hop_by_hop(&s, r.headers, r.n_headers) == rows[i].want, "%s: want %d",
		      rows[i].name, rows[i].want);
	}
}

TEST(http_body_kinds)
{
	static const struct {
		int status, head;
		int64_t cl;
		int chunked;
		enum http_body want;
	} rows[] = {
		{ 200, 0, -1, 0, HTTP_BODY_UNTIL_CLOSE }, { 200, 0, 3, 0, HTTP_BODY_LENGTH },
		{ 200, 0, -1, 1, HTTP_BODY_CHUNKED },     { 200, 1, 3, 0, HTTP_BODY_NONE },
		{ 200, 1, -1, 1, HTTP_BODY_NONE },        { 101, 0, 3, 0, HTTP_BODY_NONE },
		{ 199, 0, -1, 1, HTTP_BODY_NONE },        { 204, 0, 3, 0, HTTP_BODY_NONE },
		{ 304, 0, -1, 1, HTTP_BODY_NONE },        { 205, 0, 0, 0, HTTP_BODY_LENGTH },
		{ 500, 0, -1, 0, HTTP_BODY_UNTIL_CLOSE },
	};
	struct http_response resp;
	struct http_request req;
	size_t i;

	memset(&resp, 0, sizeof(resp));
	for (i = 0; i < NELEM(rows); i++) {
		resp.status = rows[i].status;
		resp.framing.content_length = rows[i].cl;
		resp.framing.chunked = rows[i].chunked;
		CHECK(http_response_body(&resp, rows[i].head) == rows[i].want, "row %zu", i);
	}
	memset(&req, 0, sizeof(req));
	req.framing.content_length = -1;
	CHECK_EQ(http_request_body(&req), HTTP_BODY_NONE, "request with neither");
	req.framing.content_length = 0;
	CHECK_EQ(http_request_body(&req), HTTP_BODY_LENGTH, "request CL 0");
	req.framing.content_length = -1;
	req.framing.chunked = 1;
	CHECK_EQ(http_request_body(&req), HTTP_BODY_CHUNKED, "request chunked");
}

/* Chunked bodies. */

struct sink {
	char buf[256];
	size_t n;
	unsigned int calls;
	int overflow;
};

static void sink_data(const char *data, size_t n, void *arg)
{
	struct sink *s = arg;

	s->calls++;
	if (n > sizeof(s->buf) - s->n) {
		s->overflow = 1;
		return;
	}
	memcpy(s->buf + s->n, data, n);
	s->n += n;
}

struct chunk_case {
	const char *name;
	const char *in;
	long want;             /* bytes of the body, or -status */
	const char *payload;   /* for a valid body */
	uint64_t max_total;
};

#define CK(n, in, rest, payload) { n, in rest, sizeof(in) - 1, payload, 0 }
#define CERR(n, in, st) { n, in, st, NULL, 0 }

static const struct chunk_case chunk_cases[] = {
	CK("one", "5\r\nhello\r\n0\r\n\r\n", "", "hello"),
	CK("two-hex", "5\r\nhello\r\nA\r\n0123456789\r\na\r\nabcdefghij\r\n0\r\n\r\n", "",
	   "hello0123456789abcdefghij"),
	CK("empty", "0\r\n\r\n", "", ""),
	CK("next-message", "3\r\nabc\r\n0\r\n\r\n", "GET / HTTP/1.1\r\n", "abc"),
	CK("extensions", "5;name=val\r\nhello\r\n3;a;b=\"x;y\"\r\nabc\r\n0;last\r\n\r\n", "",
	   "helloabc"),
	CK("bws-before-ext", "5 \t;a=b\r\nhello\r\n0\r\n\r\n", "", "hello"),
	CK("bws-before-crlf", "5 \r\nhello\r\n0\r\n\r\n", "", "hello"),
	CK("leading-zeros", "0005\r\nhello\r\n000\r\n\r\n", "xx", "hello"),
	CK("trailers", "2\r\nhi\r\n0\r\nX-Trailer: v\r\nY:\r\nZ: a b\t\r\n\r\n", "\r\n", "hi"),
	CK("crlf-in-data", "4\r\n\r\n\r\n\r\n0\r\n\r\n", "", "\r\n\r\n"),
	{ "at-max-total", "5\r\nhello\r\n0\r\n\r\n", 15, "hello", 5 },

	CERR("bad-hex", "x\r\n", -400),
	CERR("empty-size", "\r\n", -400),
	CERR("sign", "+5\r\nhello\r\n0\r\n\r\n", -400),
	CERR("bare-lf-size", "5\nhello\r\n0\r\n\r\n", -400),
	CERR("bare-lf-after-data", "5\r\nhello\n0\r\n\r\n", -400),
	CERR("data-too-long", "5\r\nhelloX\r\n0\r\n\r\n", -400),
	CERR("cr-without-lf", "5\r\nhello\rX", -400),
	CERR("size-past-2^48", "1000000000001\r\n", -400),
	CERR("size-overflow", "ffffffffffffffffffff\r\n", -400),
	CERR("ext-no-semicolon", "5 x\r\nhello\r\n", -400),
	CERR("ext-control", "5;a\x01\r\nhello\r\n", -400),
	CERR("ext-bare-lf", "5;a\nb\r\nhello\r\n", -400),
	CERR("trailer-obs-fold", "0\r\nA: b\r\n c\r\n\r\n", -400),
	CERR("trailer-no-colon", "0\r\nAB\r\n\r\n", -400),
	CERR("trailer-space-before-colon", "0\r\nA : b\r\n\r\n", -400),
	CERR("trailer-control", "0\r\nA: \x7f\r\n\r\n", -400),
	CERR("final-bare-lf", "0\r\n\n", -400),
	CERR("trailer-bare-lf", "0\r\nA: b\n\r\n", -400),
	{ "past-max-total", "5\r\nhello\r\n0\r\n\r\n", -413, NULL, 4 },
	{ "past-max-total-second", "3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n", -413, NULL, 5 },
};

/*
 * Feeds c->in in pieces ending at the given cut points: returns the bytes
 * consumed in total once done (0 if never done), or the first error. Checks
 * on the way that no piece consumes more than it holds, that one stops short
 * only when the body ends in it, and that nothing is consumed after that.
 */
static long feed_split(const struct chunk_case *c, const size_t *cuts, size_t ncuts,
		       struct sink *s, int *ok)
{
	struct http_chunked ch;
	size_t len = strlen(c->in), from = 0, i;
	long total = 0;

	memset(s, 0, sizeof(*s));
	http_chunked_init(&ch, c->max_total);
	*ok = 1;
	for (i = 0; i <= ncuts; i++) {
		size_t to = i < ncuts ? cuts[i] : len;
		int was_done = ch.done;
		long r = http_chunked_feed(&ch, c->in + from, to - from, sink_data, s);

		if (r < 0) {
			*ok = CHECK(http_chunked_feed(&ch, "0\r\n\r\n", 5, sink_data, s) == r,
				    "%s: an error sticks", c->name);
			return r;
		}
		if (!CHECK((size_t)r <= to - from, "%s: consumed %ld of %zu", c->name, r, to - from) ||
		    !CHECK(!was_done || r == 0, "%s: consumed %ld after done", c->name, r) ||
		    !CHECK(ch.done || (size_t)r == to - from, "%s: stopped early without done",
			   c->name)) {
			*ok = 0;
			return r;
		}
		total += r;
		from = to;
	}
	if (!CHECK(ch.total == s->n, "%s: total %llu, sink %zu", c->name,
		   (unsigned long long)ch.total, s->n))
		*ok = 0;
	return ch.done ? total : 0;
}

TEST(http_chunked_table)
{
	size_t i, k, cut[1], cuts[512];

	for (i = 0; i < NELEM(chunk_cases); i++) {
		const struct chunk_case *c = &chunk_cases[i];
		size_t len = strlen(c->in);
		struct sink s;
		int ok;
		long got;

		/* whole, then split in two at every position */
		for (k = 0; k <= len; k++) {
			cut[0] = k;
			got = feed_split(c, cut, k == len ? 0 : 1, &s, &ok);
			if (!ok || !CHECK(got == c->want, "%s: split at %zu: %ld, want %ld", c->name,
					  k, got, c->want))
				break;
			if (c->payload &&
			    !CHECK(s.n == strlen(c->payload) && !memcmp(s.buf, c->payload, s.n) &&
					   !s.overflow,
				   "%s: split at %zu: payload %.*s", c->name, k, (int)s.n, s.buf))
				break;
		}
		/* one byte at a time */
		for (k = 0; k + 1 < len && k < NELEM(cuts); k++)
			cuts[k] = k + 1;
		got = feed_split(c, cuts, k, &s, &ok);
		if (ok && CHECK(got == c->want, "%s: bytewise: %ld, want %ld", c->name, got, c->want) &&
		    c->payload)
			CHECK(s.n == strlen(c->payload) && !memcmp(s.buf, c->payload, s.n),
			      "%s: bytewise payload %.*s", c->name, (int)s.n, s.buf);
	}
}

TEST(http_chunked_state)
{
	static const char body[] = "3\r\nabc\r\n0\r\nT: 1\r\n\r\nNEXT";
	struct http_chunked c;
	struct sink s = { .n = 0 };
	char line[4100];
	long r;

	http_chunked_init(&c, 0);
	r = http_chunked_feed(&c, body, 5, NULL, NULL);
	CHECK_EQ(r, 5, "first piece, no callback");
	CHECK_EQ(c.remaining, 1, "one byte of the chunk left");
	r = http_chunked_feed(&c, body + 5, sizeof(body) - 6, sink_data, &s);
	CHECK_EQ(r, sizeof(body) - 1 - 5 - 4, "stops before NEXT");
	CHECK(c.done, "done");
	CHECK_EQ(c.total, 3, "total counts payload bytes, callback or not");
	CHECK(s.n == 1 && s.buf[0] == 'c', "only the second piece's payload went to the sink");
	CHECK_EQ(http_chunked_feed(&c, "NEXT", 4, sink_data, &s), 0, "nothing after done");

	/* A size line of 4096 bytes before its CRLF is fine, 4097 is not. */
	memset(line, 'a', sizeof(line));
	memcpy(line, "1;", 2);
	http_chunked_init(&c, 0);
	CHECK_EQ(http_chunked_feed(&c, line, 4096, NULL, NULL), 4096, "4096-byte size line");
	CHECK_EQ(http_chunked_feed(&c, "\r\nx\r\n0\r\n\r\n", 10, NULL, NULL), 10,
		 "then its CRLF, a chunk and the end");
	CHECK(c.done, "done after a long extension");
	http_chunked_init(&c, 0);
	CHECK_EQ(http_chunked_feed(&c, line, 4097, NULL, NULL), -400, "4097-byte size line");
	/* and the same bound for a trailer line */
	memset(line, 'a', sizeof(line));
	memcpy(line, "0\r\nT:", 5);
	http_chunked_init(&c, 0);
	CHECK_EQ(http_chunked_feed(&c, line, 4099, NULL, NULL), 4099, "4096-byte trailer line");
	CHECK_EQ(http_chunked_feed(&c, "a", 1, NULL, NULL), -400, "4097-byte trailer line");

	/* 2^48 exactly is a valid size. */
	http_chunked_init(&c, 0);
	CHECK_EQ(http_chunked_feed(&c, "1000000000000\r\nab", 17, NULL, NULL), 17, "size 2^48");
	CHECK_EQ(c.remaining, (1ULL << 48) - 2, "remaining");
}
