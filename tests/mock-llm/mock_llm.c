// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* mock_llm.c - an OpenAI-compatible mock LLM backend for sluice-l7's tests,
 * benchmark and demo (docs/mock-llm.md).
 *
 * One process (or --workers N processes on SO_REUSEPORT sockets) runs one
 * event loop (user/lib/loop.h) over non-blocking sockets: HTTP/1.1
 * keep-alive and pipelining (requests answered in order, one at a time per
 * connection), bounded buffers, Content-Length and chunked request bodies.
 * Latency and streaming are loop timers: nothing sleeps.
 * Counters live in a shared mapping so /stats counts every worker. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>
#include "buf.h"
#include "http_status.h"
#include "log.h"
#include "loop.h"
#include "parse.h"
#include "tls.h"
#include "version.h"

#define PROG "mock-llm"
#define HEAD_MAX (16 * 1024)           /* request line + headers */
#define BODY_MAX (1024 * 1024)         /* decoded body; more is a 413 */
#define IN_MAX (HEAD_MAX + 2 * BODY_MAX) /* room for chunked framing */
#define IN_CHUNK 4096                  /* least free space for one read */
#define OUT_HIGH (256 * 1024)          /* stop producing above this backlog */
#define OUT_MAX (8 * 1024 * 1024)      /* a client that reads nothing is dropped */
#define KEYS_MAX 1024                  /* /stats by_key entries */
#define KEY_LEN 128                    /* longer keys are counted truncated */
#define KEY_SLOTS (2 * KEYS_MAX)       /* open addressing, at most half full */
#define STATUS_MAX 600
#define TOKENS_MAX 100000
#define LATENCY_MAX_MS 600000
#define DRAIN_NS (2ULL * 1000000000ULL) /* lingering close: wait this for the peer's FIN */
#define LINE_MAX_CHUNK 1024            /* a chunk-size line longer than this is bad */

/* --- options ---------------------------------------------------------------- */

struct opts {
	struct sockaddr_storage addr;
	socklen_t addrlen;
	__u64 latency_ms, token_ms, completion_tokens, max_conns, workers, seed;
	double error_rate;
	int status;             /* 0: answer normally */
	long long close_mid;    /* -1: never */
	int verbose;
	const char *tls_cert, *tls_key;   /* --tls-cert/--tls-key: serve HTTPS */
};

static struct opts O = {
	.latency_ms = 0, .token_ms = 0, .completion_tokens = 16, .max_conns = 4096,
	.workers = 1, .seed = 1, .error_rate = 0, .status = 0, .close_mid = -1,
};

/* --- counters shared by the workers ----------------------------------------- */

struct key_count {
	char key[KEY_LEN];
	__u64 n;
};

struct stats {
	unsigned char lock;
	__u64 requests, other_requests, prompt_tokens, completion_tokens;
	__u64 in_flight, max_in_flight, keys_dropped, next_id, rng;
	__u64 by_status[STATUS_MAX];
	__u32 nkeys;
	struct key_count keys[KEY_SLOTS];
};

static struct stats *S;

/* A spin lock in the shared mapping: the critical sections are a few
 * additions, and with one worker it is never contended. */
static void stats_lock(void)
{
	while (__atomic_test_and_set(&S->lock, __ATOMIC_ACQUIRE))
		sched_yield();
}

static void stats_unlock(void)
{
	__atomic_clear(&S->lock, __ATOMIC_RELEASE);
}

static __u64 fnv1a(const char *s, size_t n)
{
	__u64 h = 1469598103934665603ULL;

	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
	return h;
}

/* Caller holds the lock. */
static void count_key(const char *key, size_t n)
{
	__u64 h;

	if (n >= KEY_LEN)
		n = KEY_LEN - 1;
	h = fnv1a(key, n);
	for (__u32 i = 0; i < KEY_SLOTS; i++) {
		struct key_count *k = &S->keys[(h + i) % KEY_SLOTS];

		if (!k->key[0]) {
			if (S->nkeys >= KEYS_MAX) {
				S->keys_dropped++;
				return;
			}
			memcpy(k->key, key, n);
			k->key[n] = 0;
			S->nkeys++;
			k->n = 1;
			return;
		}
		if (!strncmp(k->key, key, n) && k->key[n] == 0) {
			k->n++;
			return;
		}
	}
	S->keys_dropped++;
}

/* splitmix64: a seeded, reproducible sequence for --error-rate. */
static double next_uniform(void)
{
	__u64 z = (S->rng += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	z ^= z >> 31;
	return (double)(z >> 11) * 0x1.0p-53;
}

static void in_flight_add(int d)
{
	stats_lock();
	if (d > 0) {
		S->in_flight++;
		if (S->in_flight > S->max_in_flight)
			S->max_in_flight = S->in_flight;
	} else if (S->in_flight) {
		S->in_flight--;
	}
	stats_unlock();
}

/* --- buffers ----------------------------------------------------------------
 * struct buf (user/lib/buf.h): bytes [off, len) are pending; err keeps the
 * first append that failed (past max, or out of memory), and the connection
 * is dropped at the next flush. */

/* A JSON string. Bytes from headers may be anything: control characters
 * and, unless utf8 says the text is valid UTF-8, bytes >= 0x80 are
 * escaped, so the output is always valid JSON. */
static void json_str(struct buf *b, const char *s, size_t n, int utf8)
{
	static const char hex[] = "0123456789abcdef";

	buf_append(b, "\"", 1);
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		size_t j = i;

		while (j < n && (unsigned char)s[j] >= 0x20 && s[j] != '"' && s[j] != '\\' &&
		       ((unsigned char)s[j] < 0x80 || utf8))
			j++;
		if (j > i) {
			buf_append(b, s + i, j - i);
			i = j - 1;
			continue;
		}
		if (ch == '"' || ch == '\\') {
			char e[2] = { '\\', (char)ch };
			buf_append(b, e, 2);
		} else {
			char e[6] = { '\\', 'u', '0', '0', hex[ch >> 4], hex[ch & 15] };
			buf_append(b, e, 6);
		}
	}
	buf_append(b, "\"", 1);
}

/* --- connections and timers ------------------------------------------------- */

enum conn_state {
	C_READING,   /* parsing requests */
	C_WAITING,   /* an LLM answer waits for its latency */
	C_STREAMING, /* streaming tokens */
	C_DRAINING,  /* response sent, write side shut: reading until the FIN */
};

/* The LLM answer being produced on a connection. */
struct llm {
	int status, forced, chat, stream, include_usage, started, blocked;
	int gzip;               /* x-mock-gzip: 1: a JSON answer gzipped */
	__u64 id, prompt, completion, sent, t0_ns;
	long long created, close_after;
	char *model;
	char *rl;               /* x-ratelimit-* lines of --limit-*, or NULL */
};

struct conn {
	struct loop_io io;      /* io.fd is the socket */
	struct loop_timer timer; /* the answer's latency, the next token, the drain */
	enum conn_state state;
	struct buf in, out;
	int keep_alive, http10, head, peer_eof, close_after_flush, abrupt, sent_continue;
	int dead;
	struct llm llm;
	int llm_active;
	char peer[64];
	struct conn *prev, *next;
	/* --tls-cert: the TLS session over io.fd (NULL: plain HTTP) */
	struct tls_conn *tls;
	int tls_handshaking;
	__u32 tls_want;         /* EPOLLIN/EPOLLOUT a TLS call waits for, 0: none */
};

static struct loop *L;
static struct conn *conns;      /* every live connection */
static struct conn *graveyard;  /* killed, freed by the posted reap */
static struct loop_post reap;
static __u64 nconns;
static int accepting = 1;
static struct buf scratch = { .max = OUT_MAX };
static struct loop_io listen_io;
static struct tls_ctx *tls_server;  /* --tls-cert: every connection speaks TLS */

/* recv/send over TLS when it is on: -1 with errno EAGAIN when TLS waits
 * for the socket, EPROTO when it failed. c->tls_want keeps what a read
 * waits for to write, or a write to read: set_events adds it. */
static ssize_t conn_recv(struct conn *c, void *p, size_t n)
{
	ssize_t rc;

	if (!c->tls)
		return recv(c->io.fd, p, n, 0);
	rc = tls_read(c->tls, p, n);
	/* Only the crossed direction: waiting to read is set_events' own. */
	c->tls_want = rc == TLS_WANT_WRITE ? EPOLLOUT : 0;
	if (rc >= 0)
		return rc;
	errno = rc == TLS_ERR ? EPROTO : EAGAIN;
	if (rc == TLS_ERR)
		pr_info("%s: %s", c->peer, tls_error(c->tls));
	return -1;
}

static ssize_t conn_send(struct conn *c, const void *p, size_t n)
{
	ssize_t rc;

	if (!c->tls)
		return send(c->io.fd, p, n, MSG_NOSIGNAL);
	rc = tls_write(c->tls, p, n);
	c->tls_want = rc == TLS_WANT_READ ? EPOLLIN : 0;
	if (rc >= 0)
		return rc;
	errno = rc == TLS_ERR ? EPROTO : EAGAIN;
	if (rc == TLS_ERR)
		pr_info("%s: %s", c->peer, tls_error(c->tls));
	return -1;
}

static void timer_cancel(struct conn *c)
{
	loop_timer_stop(L, &c->timer);
}

static void timer_set(struct conn *c, __u64 deadline)
{
	loop_timer_at(L, &c->timer, deadline);
}

static void llm_end(struct conn *c)
{
	if (!c->llm_active)
		return;
	c->llm_active = 0;
	free(c->llm.model);
	c->llm.model = NULL;
	free(c->llm.rl);
	c->llm.rl = NULL;
	in_flight_add(-1);
}

static void conn_kill(struct conn *c)
{
	if (c->dead)
		return;
	c->dead = 1;
	timer_cancel(c);
	llm_end(c);
	loop_io_del(L, &c->io);
	tls_close(c->tls);
	c->tls = NULL;
	if (close(c->io.fd))
		pr_warn("close connection from %s: %s", c->peer, strerror(errno));
	c->io.fd = -1;
	if (c->prev)
		c->prev->next = c->next;
	else
		conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->next = graveyard;
	graveyard = c;
	nconns--;
	loop_post(L, &reap);
}

static void set_events(struct conn *c)
{
	__u32 want = 0;

	if (c->dead)
		return;
	if (c->tls_handshaking)
		want = c->tls_want;
	else if (c->state == C_DRAINING ||
	    (c->state == C_READING && !c->peer_eof && !c->close_after_flush &&
	     buf_used(&c->out) < OUT_HIGH))
		want |= EPOLLIN;
	if (buf_used(&c->out) && !c->tls_handshaking)
		want |= EPOLLOUT;
	if (c->tls && c->state != C_DRAINING)
		want |= c->tls_want; /* a TLS read that waits to write, or a write to read */
	if (loop_io_mod(L, &c->io, want)) {
		pr_err("epoll_ctl modify connection from %s: %s", c->peer, strerror(errno));
		conn_kill(c);
	}
}

/* --- HTTP responses --------------------------------------------------------- */

/* clen < 0: a chunked body (an HTTP/1.0 client gets the raw body and a
 * close instead, as it knows no chunks). */
static void resp_head(struct conn *c, int status, const char *ctype, long long clen,
		      const char *extra)
{
	struct buf *o = &c->out;

	if (clen < 0 && c->http10)
		c->keep_alive = 0;
	buf_printf(o, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n", status, http_status_reason(status), ctype);
	if (clen >= 0)
		buf_printf(o, "Content-Length: %lld\r\n", clen);
	else if (!c->http10)
		buf_str(o, "Transfer-Encoding: chunked\r\n");
	if (!c->keep_alive)
		buf_str(o, "Connection: close\r\n");
	else if (c->http10)
		buf_str(o, "Connection: keep-alive\r\n");
	if (extra)
		buf_str(o, extra);
	if (c->llm_active && c->llm.rl)
		buf_str(o, c->llm.rl);
	buf_str(o, "\r\n");
	if (!c->keep_alive)
		c->close_after_flush = 1;
}

static void send_body(struct conn *c, int status, const char *ctype, const char *body,
		      size_t len, const char *extra)
{
	resp_head(c, status, ctype, (long long)len, extra);
	if (!c->head)
		buf_append(&c->out, body, len);
}

static const char *error_type(int status)
{
	switch (status) {
	case 401: return "authentication_error";
	case 403: return "permission_error";
	case 429: return "rate_limit_error";
	default: return status >= 500 ? "server_error" : "invalid_request_error";
	}
}

/* An OpenAI-style error: {"error":{"message":...,"type":...,...}}. */
__attribute__((format(printf, 3, 4)))
static void send_error(struct conn *c, int status, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	scratch.off = scratch.len = 0;
	buf_str(&scratch, "{\"error\":{\"message\":");
	json_str(&scratch, msg, strlen(msg), 0);
	buf_printf(&scratch, ",\"type\":\"%s\",\"param\":null,\"code\":null}}\n",
		   error_type(status));
	if (scratch.err) {
		scratch.err = 0;
		conn_kill(c);
		return;
	}
	send_body(c, status, "application/json", scratch.p, scratch.len, NULL);
}

/* A request whose framing is broken (or too big) ends the connection:
 * answer, then close once the peer has stopped sending. */
static void fail_conn(struct conn *c, int status, const char *msg)
{
	pr_info("%s: %d %s", c->peer, status, msg);
	c->keep_alive = 0;
	c->head = 0;
	send_error(c, status, "%s", msg);
}

/* --- request parsing -------------------------------------------------------- */

enum {
	OV_LATENCY, OV_COMPLETION, OV_PROMPT, OV_STATUS, OV_CLOSE_MID, OV_GZIP, OV_N
};
static const char *const ov_names[OV_N] = {
	"x-mock-latency-ms", "x-mock-completion-tokens", "x-mock-prompt-tokens",
	"x-mock-status", "x-mock-close-mid-stream", "x-mock-gzip",
};

struct req {
	const char *method, *path;
	size_t mlen, plen;
	int http10, keep_alive, expect_continue, chunked;
	long long clen;
	const char *key;
	size_t key_len;
	const char *ov[OV_N];
	size_t ov_len[OV_N];
	char *body;
	size_t head_len, body_len, total;
	int err_status;
	const char *err;
};

static int tok_eq(const char *s, size_t n, const char *lit)
{
	return strlen(lit) == n && !strncasecmp(s, lit, n);
}

/* Does a comma-separated header value contain the token (case-insensitive)? */
static int has_token(const char *v, size_t n, const char *tok)
{
	size_t i = 0;

	while (i < n) {
		size_t s, e;

		while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
			i++;
		s = i;
		while (i < n && v[i] != ',')
			i++;
		e = i;
		while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
			e--;
		if (tok_eq(v + s, e - s, tok))
			return 1;
	}
	return 0;
}

static int req_error(struct req *r, int status, const char *msg)
{
	r->err_status = status;
	r->err = msg;
	return -1;
}

/* Parses the head in p[0, head_len): the request line and the headers. */
static int parse_head(char *p, size_t head_len, struct req *r)
{
	char *end = p + head_len - 2, *line = p, *nl, *sp1, *sp2, *ver;
	const char *auth = NULL, *apikey = NULL;
	size_t auth_len = 0, apikey_len = 0;
	int conn_close = 0, conn_keep = 0, have_te = 0;

	nl = memchr(line, '\n', (size_t)(end - line) + 1);
	if (!nl || nl == line || nl[-1] != '\r')
		return req_error(r, 400, "bad request line: lines must end in CRLF");
	sp1 = memchr(line, ' ', (size_t)(nl - line));
	sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(nl - sp1 - 1)) : NULL;
	if (!sp1 || !sp2 || sp1 == line || sp2 == sp1 + 1)
		return req_error(r, 400, "bad request line: expected METHOD TARGET HTTP/1.x");
	ver = sp2 + 1;
	if ((size_t)(nl - 1 - ver) != 8 || strncmp(ver, "HTTP/1.", 7) ||
	    (ver[7] != '0' && ver[7] != '1'))
		return req_error(r, 505, "only HTTP/1.0 and HTTP/1.1 are supported");
	r->http10 = ver[7] == '0';
	r->method = line;
	r->mlen = (size_t)(sp1 - line);
	r->path = sp1 + 1;
	r->plen = (size_t)(sp2 - sp1 - 1);
	/* absolute-form: http://host/path */
	if (r->plen > 7 && (!strncasecmp(r->path, "http://", 7) ||
			    !strncasecmp(r->path, "https://", 8))) {
		const char *s = memchr(r->path + 8, '/', r->plen - 8);

		if (!s)
			s = r->path + r->plen; /* "http://host": the path is "/" */
		r->plen -= (size_t)(s - r->path);
		r->path = s;
	}
	{
		const char *q = memchr(r->path, '?', r->plen);

		if (q)
			r->plen = (size_t)(q - r->path);
	}
	r->clen = -1;

	for (line = nl + 1; line < end; line = nl + 1) {
		char *colon, *v, *ve;
		size_t nlen, vlen;

		nl = memchr(line, '\n', (size_t)(end - line) + 1);
		if (!nl || nl == line || nl[-1] != '\r')
			return req_error(r, 400, "bad header: lines must end in CRLF");
		if (*line == ' ' || *line == '\t')
			return req_error(r, 400, "bad header: folded header lines are not allowed");
		colon = memchr(line, ':', (size_t)(nl - line));
		if (!colon || colon == line || colon[-1] == ' ' || colon[-1] == '\t')
			return req_error(r, 400, "bad header: expected 'Name: value'");
		nlen = (size_t)(colon - line);
		v = colon + 1;
		ve = nl - 1;
		while (v < ve && (*v == ' ' || *v == '\t'))
			v++;
		while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
			ve--;
		vlen = (size_t)(ve - v);

		if (tok_eq(line, nlen, "content-length")) {
			long long n = 0;

			if (!vlen || vlen > 18)
				return req_error(r, vlen > 18 ? 413 : 400,
						 "bad Content-Length");
			for (size_t i = 0; i < vlen; i++) {
				if (v[i] < '0' || v[i] > '9')
					return req_error(r, 400, "bad Content-Length: not a number");
				n = n * 10 + (v[i] - '0');
			}
			if (r->clen >= 0 && r->clen != n)
				return req_error(r, 400, "conflicting Content-Length headers");
			r->clen = n;
		} else if (tok_eq(line, nlen, "transfer-encoding")) {
			if (!tok_eq(v, vlen, "chunked"))
				return req_error(r, 501, "only Transfer-Encoding: chunked is supported");
			have_te = 1;
		} else if (tok_eq(line, nlen, "connection")) {
			conn_close |= has_token(v, vlen, "close");
			conn_keep |= has_token(v, vlen, "keep-alive");
		} else if (tok_eq(line, nlen, "expect")) {
			r->expect_continue = tok_eq(v, vlen, "100-continue");
		} else if (tok_eq(line, nlen, "authorization")) {
			auth = v;
			auth_len = vlen;
		} else if (tok_eq(line, nlen, "x-api-key")) {
			apikey = v;
			apikey_len = vlen;
		} else if (nlen > 7 && !strncasecmp(line, "x-mock-", 7)) {
			for (int i = 0; i < OV_N; i++)
				if (tok_eq(line, nlen, ov_names[i])) {
					r->ov[i] = v;
					r->ov_len[i] = vlen;
				}
		}
	}
	if (have_te && r->clen >= 0)
		return req_error(r, 400, "both Transfer-Encoding and Content-Length");
	r->chunked = have_te;
	if (r->clen > BODY_MAX)
		return req_error(r, 413, "request body over 1 MiB");
	r->keep_alive = r->http10 ? conn_keep && !conn_close : !conn_close;
	/* The API key as sluice-l7 sees it: a bearer token, else x-api-key. */
	if (auth && auth_len > 7 && !strncasecmp(auth, "bearer ", 7)) {
		r->key = auth + 7;
		r->key_len = auth_len - 7;
		while (r->key_len && *r->key == ' ') {
			r->key++;
			r->key_len--;
		}
	} else if (apikey && apikey_len) {
		r->key = apikey;
		r->key_len = apikey_len;
	}
	return 0;
}

/* Chunked body in p[0, n). Returns 1 when complete (*raw: its encoded
 * length with the trailers, *dlen: the decoded length), 0 when more is
 * needed, -1 with r->err set when it is malformed or too big. */
static int chunked_scan(const char *p, size_t n, size_t *raw, size_t *dlen, struct req *r)
{
	size_t i = 0, total = 0;

	for (;;) {
		const char *nl = memchr(p + i, '\n', n - i);
		size_t size = 0, j = i, digits = 0;

		if (!nl)
			return n - i > LINE_MAX_CHUNK ?
				req_error(r, 400, "bad chunk size line: too long") : 0;
		while (j < (size_t)(nl - p)) {
			char ch = p[j];
			int d = ch >= '0' && ch <= '9' ? ch - '0' :
				ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 :
				ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : -1;

			if (d < 0)
				break;
			if (size > BODY_MAX)
				return req_error(r, 413, "request body over 1 MiB");
			size = size * 16 + (size_t)d;
			digits++;
			j++;
		}
		if (!digits || (p[j] != ';' && p[j] != '\r') || nl[-1] != '\r')
			return req_error(r, 400, "bad chunk size line");
		if (size > BODY_MAX || total + size > BODY_MAX)
			return req_error(r, 413, "request body over 1 MiB");
		i = (size_t)(nl - p) + 1;
		if (!size)
			break;
		if (n - i < size + 2)
			return 0;
		if (p[i + size] != '\r' || p[i + size + 1] != '\n')
			return req_error(r, 400, "bad chunk: data not followed by CRLF");
		i += size + 2;
		total += size;
	}
	/* Trailers, ignored, up to an empty line. */
	for (;;) {
		const char *nl = memchr(p + i, '\n', n - i);

		if (!nl)
			return n - i > HEAD_MAX ? req_error(r, 431, "trailers too long") : 0;
		if (nl == p + i || nl[-1] != '\r')
			return req_error(r, 400, "bad trailer: lines must end in CRLF");
		if (nl == p + i + 1) {
			i += 2;
			break;
		}
		i = (size_t)(nl - p) + 1;
	}
	*raw = i;
	*dlen = total;
	return 1;
}

/* Decoding shortens the data, so it is done in place. */
static void chunked_decode(char *p)
{
	char *out = p;

	for (;;) {
		size_t size = strtoul(p, NULL, 16); /* validated by chunked_scan */

		p = strchr(p, '\n') + 1;
		if (!size)
			return;
		memmove(out, p, size);
		out += size;
		p += size + 2;
	}
}

/* 1: a whole request in r; 0: more input needed; -1: r->err says why. */
static int parse_request(struct conn *c, struct req *r)
{
	char *p = c->in.p + c->in.off, *hend;
	size_t n = buf_used(&c->in), lim = n < HEAD_MAX ? n : HEAD_MAX;

	memset(r, 0, sizeof(*r));
	/* Tolerate the empty lines some clients send between requests. */
	while (n >= 2 && p[0] == '\r' && p[1] == '\n') {
		c->in.off += 2;
		p += 2;
		n -= 2;
		lim = n < HEAD_MAX ? n : HEAD_MAX;
	}
	hend = lim >= 4 ? memmem(p, lim, "\r\n\r\n", 4) : NULL;
	if (!hend)
		return n >= HEAD_MAX ? req_error(r, 431, "request head over 16 KiB") : 0;
	r->head_len = (size_t)(hend - p) + 4;
	if (parse_head(p, r->head_len, r))
		return -1;
	if (r->chunked) {
		size_t raw, dlen;
		int rc = chunked_scan(p + r->head_len, n - r->head_len, &raw, &dlen, r);

		if (rc <= 0)
			return rc;
		chunked_decode(p + r->head_len);
		r->body = p + r->head_len;
		r->body_len = dlen;
		r->total = r->head_len + raw;
		return 1;
	}
	if (r->clen > 0 && n - r->head_len < (size_t)r->clen)
		return 0;
	r->body = p + r->head_len;
	r->body_len = r->clen > 0 ? (size_t)r->clen : 0;
	r->total = r->head_len + r->body_len;
	return 1;
}

/* --- the LLM endpoints ------------------------------------------------------ */

/* Characters, not bytes: UTF-8 continuation bytes do not count. */
static __u64 utf8_chars(const char *s)
{
	__u64 n = 0;

	for (; *s; s++)
		n += ((unsigned char)*s & 0xc0) != 0x80;
	return n;
}

/* Prompt characters of a chat message's content: a string, or parts with
 * "text". */
static int content_chars(json_t *content, __u64 *chars)
{
	size_t i;
	json_t *part;

	if (!content || json_is_null(content))
		return 0;
	if (json_is_string(content)) {
		*chars += utf8_chars(json_string_value(content));
		return 0;
	}
	if (!json_is_array(content))
		return -1;
	json_array_foreach(content, i, part) {
		json_t *t = json_object_get(part, "text");

		if (json_is_string(t))
			*chars += utf8_chars(json_string_value(t));
	}
	return 0;
}

/* Parses an override header's value; -1 (with a 400 sent) when bad. */
static int header_u64(struct conn *c, const struct req *r, int which, __u64 min, __u64 max,
		      long long *out)
{
	char v[32];
	struct errbuf e;
	__u64 x;

	if (!r->ov[which])
		return 0;
	if (r->ov_len[which] >= sizeof(v)) {
		send_error(c, 400, "bad %s: too long", ov_names[which]);
		return -1;
	}
	memcpy(v, r->ov[which], r->ov_len[which]);
	v[r->ov_len[which]] = 0;
	if (parse_u64(v, min, max, 0, ov_names[which], &x, &e)) {
		send_error(c, 400, "%s", e.msg);
		return -1;
	}
	*out = (long long)x;
	return 0;
}

static int status_ok(long long s)
{
	return s >= 200 && s <= 599 && s != 204 && s != 205 && s != 304;
}

/* --- provider limits (--limit-rpm, --limit-tpm) ------------------------------
 * The mock as a provider that enforces its own limits, as OpenAI does: a
 * token bucket per kind holding at most the limit, refilled continuously at
 * the limit per minute, shared by the workers (its own mapping, under the
 * stats lock). A request costs one request and prompt + completion tokens,
 * charged when it is admitted; one that does not fit is answered 429 at
 * once with retry-after, retry-after-ms and OpenAI's error body. Every LLM
 * answer carries x-ratelimit-limit/remaining/reset-requests/-tokens. */

#define PL_PERIOD_NS (60ULL * 1000000000ULL)
#define PL_LIMIT_MAX 1000000000ULL

struct plimit {
	double level[2];        /* [0] requests, [1] tokens */
	__u64 at_ns;
	__u64 limited, served_requests, served_tokens;
};

static __u64 pl_limit[2];       /* --limit-rpm, --limit-tpm; 0: none */
static struct plimit *PL;

static int plimit_on(void)
{
	return pl_limit[0] || pl_limit[1];
}

static int plimit_init(void)
{
	if (!plimit_on())
		return 0;
	PL = mmap(NULL, sizeof(*PL), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (PL == MAP_FAILED) {
		PL = NULL;
		pr_err("mmap the provider limits: %s", strerror(errno));
		return -1;
	}
	PL->level[0] = (double)pl_limit[0];
	PL->level[1] = (double)pl_limit[1];
	PL->at_ns = loop_clock();
	return 0;
}

/* Caller holds the lock. */
static void plimit_refill(__u64 now)
{
	if (now <= PL->at_ns)
		return;
	for (int k = 0; k < 2; k++) {
		PL->level[k] += (double)pl_limit[k] * (double)(now - PL->at_ns) / (double)PL_PERIOD_NS;
		if (PL->level[k] > (double)pl_limit[k])
			PL->level[k] = (double)pl_limit[k];
	}
	PL->at_ns = now;
}

/* ns until the bucket of kind k holds need (0: it does). */
static __u64 plimit_wait(int k, double need)
{
	if (!pl_limit[k] || PL->level[k] >= need)
		return 0;
	return (__u64)((need - PL->level[k]) * (double)PL_PERIOD_NS / (double)pl_limit[k]) + 1;
}

/* OpenAI's reset format: "20ms" under a second, else "1m30.5s"-like. */
static void plimit_duration(struct buf *b, __u64 ns)
{
	__u64 ms = (ns + 999999) / 1000000, s = ms / 1000, frac = ms % 1000;

	if (ms < 1000) {
		buf_printf(b, "%llums", (unsigned long long)ms);
		return;
	}
	if (s >= 3600)
		buf_printf(b, "%lluh", (unsigned long long)(s / 3600));
	if (s >= 60)
		buf_printf(b, "%llum", (unsigned long long)(s / 60 % 60));
	buf_printf(b, "%llu", (unsigned long long)(s % 60));
	if (frac) {
		char f[8];
		int n = snprintf(f, sizeof(f), ".%03llu", (unsigned long long)frac);

		while (n > 1 && f[n - 1] == '0')
			f[--n] = 0;
		buf_str(b, f);
	}
	buf_str(b, "s");
}

/* The x-ratelimit-* headers of the bucket now. Caller holds the lock. */
static void plimit_headers(struct buf *b)
{
	static const char *const kind[2] = { "requests", "tokens" };

	for (int k = 0; k < 2; k++) {
		double lv = PL->level[k];

		if (!pl_limit[k])
			continue;
		buf_printf(b, "x-ratelimit-limit-%s: %llu\r\nx-ratelimit-remaining-%s: %llu\r\n"
			   "x-ratelimit-reset-%s: ", kind[k], (unsigned long long)pl_limit[k],
			   kind[k], (unsigned long long)(lv > 0 ? lv : 0), kind[k]);
		plimit_duration(b, plimit_wait(k, (double)pl_limit[k]));
		buf_str(b, "\r\n");
	}
}

/* Admits l's request (charging it, and keeping the headers for its answer
 * in l->rl) or answers 429. Returns 0 when admitted, -1 when refused. */
static int plimit_admit(struct conn *c, struct llm *l)
{
	struct buf *b = &scratch;
	double tokens = (double)(l->prompt + l->completion), need;
	__u64 wait_r, wait_t, wait, ms;
	char msg[256];

	if (!PL)
		return 0;
	need = tokens < (double)pl_limit[1] ? tokens : (double)pl_limit[1];
	stats_lock();
	plimit_refill(loop_clock());
	wait_r = plimit_wait(0, 1);
	wait_t = plimit_wait(1, need);
	if (!wait_r && !wait_t) {
		if (pl_limit[0])
			PL->level[0] -= 1;
		if (pl_limit[1])
			PL->level[1] -= tokens;
		PL->served_requests++;
		PL->served_tokens += l->prompt + l->completion;
		b->off = b->len = 0;
		plimit_headers(b);
		stats_unlock();
		free(l->rl);
		l->rl = b->err ? NULL : strndup(b->p, b->len);
		b->err = 0;
		return 0;
	}
	PL->limited++;
	S->by_status[429]++;
	wait = wait_r > wait_t ? wait_r : wait_t;
	ms = (wait + 999999) / 1000000;
	if (wait_r >= wait_t)
		snprintf(msg, sizeof(msg), "Rate limit reached for requests per min (RPM): "
			 "Limit %llu, Requested 1. Please try again in %llums.",
			 (unsigned long long)pl_limit[0], (unsigned long long)ms);
	else
		snprintf(msg, sizeof(msg), "Rate limit reached for tokens per min (TPM): "
			 "Limit %llu, Requested %llu. Please try again in %llums.",
			 (unsigned long long)pl_limit[1], (unsigned long long)tokens,
			 (unsigned long long)ms);
	b->off = b->len = 0;
	plimit_headers(b);
	stats_unlock();
	buf_printf(b, "retry-after: %llu\r\nretry-after-ms: %llu\r\n",
		   (unsigned long long)((ms + 999) / 1000), (unsigned long long)ms);
	if (b->err) {
		b->err = 0;
		conn_kill(c);
		return -1;
	}
	{
		char *head = strndup(b->p, b->len);
		struct buf body = { .max = 4096 };

		buf_str(&body, "{\"error\":{\"message\":");
		json_str(&body, msg, strlen(msg), 0);
		buf_printf(&body, ",\"type\":\"%s\",\"param\":null,\"code\":\"rate_limit_exceeded\"}}\n",
			   wait_r >= wait_t ? "requests" : "tokens");
		if (!head || body.err)
			conn_kill(c);
		else
			send_body(c, 429, "application/json", body.p, body.len, head);
		free(head);
		buf_free(&body);
	}
	pr_info("%s: 429 %s", c->peer, msg);
	return -1;
}

static void plimit_stats(struct buf *b)
{
	if (!PL)
		return;
	buf_printf(b, ",\"limit\":{\"rpm\":%llu,\"tpm\":%llu,\"limited\":%llu,"
		   "\"served_requests\":%llu,\"served_tokens\":%llu}",
		   (unsigned long long)pl_limit[0], (unsigned long long)pl_limit[1],
		   (unsigned long long)PL->limited, (unsigned long long)PL->served_requests,
		   (unsigned long long)PL->served_tokens);
}

static void plimit_reset(void)
{
	if (PL)
		PL->limited = PL->served_requests = PL->served_tokens = 0;
}

static void llm_start(struct conn *c);
static void stream_step(struct conn *c);

static void handle_llm(struct conn *c, const struct req *r, int chat)
{
	long long latency = (long long)O.latency_ms, ctoks = -1, ptoks = -1, status = -1;
	long long close_mid = O.close_mid, gzip = 0;
	__u64 chars = 0, nmsgs = 0, completion = O.completion_tokens;
	json_error_t jerr;
	json_t *root, *v;
	const char *model = "mock-model";
	struct llm *l = &c->llm;
	int stream = 0, include_usage = 0;
	size_t i;

	stats_lock();
	S->requests++;
	if (r->key)
		count_key(r->key, r->key_len);
	stats_unlock();

	if (header_u64(c, r, OV_LATENCY, 0, LATENCY_MAX_MS, &latency) ||
	    header_u64(c, r, OV_COMPLETION, 0, TOKENS_MAX, &ctoks) ||
	    header_u64(c, r, OV_PROMPT, 0, 1000000000, &ptoks) ||
	    header_u64(c, r, OV_STATUS, 200, 599, &status) ||
	    header_u64(c, r, OV_CLOSE_MID, 0, TOKENS_MAX, &close_mid) ||
	    header_u64(c, r, OV_GZIP, 0, 1, &gzip))
		goto bad;
	if (status >= 0 && !status_ok(status)) {
		send_error(c, 400, "bad x-mock-status '%lld': 204, 205 and 304 have no body",
			   status);
		goto bad;
	}

	root = json_loadb(r->body, r->body_len, 0, &jerr);
	if (!root) {
		send_error(c, 400, "We could not parse the JSON body of your request: %s "
			   "(line %d column %d)", jerr.text, jerr.line, jerr.column);
		goto bad;
	}
	if (!json_is_object(root)) {
		send_error(c, 400, "the request body must be a JSON object");
		goto out_bad;
	}
	v = json_object_get(root, "model");
	if (v && !json_is_string(v)) {
		send_error(c, 400, "'model' must be a string");
		goto out_bad;
	}
	if (v)
		model = json_string_value(v);
	v = json_object_get(root, "stream");
	if (v && !json_is_boolean(v) && !json_is_null(v)) {
		send_error(c, 400, "'stream' must be a boolean");
		goto out_bad;
	}
	stream = json_is_true(v);
	v = json_object_get(root, "stream_options");
	if (v && json_is_object(v))
		include_usage = json_is_true(json_object_get(v, "include_usage"));
	for (int k = 0; k < 2; k++) {
		const char *name = k ? "max_completion_tokens" : "max_tokens";

		v = json_object_get(root, name);
		if (!v || json_is_null(v))
			continue;
		if (!json_is_integer(v) || json_integer_value(v) < 0) {
			send_error(c, 400, "'%s' must be an integer >= 0", name);
			goto out_bad;
		}
		if ((__u64)json_integer_value(v) < completion)
			completion = (__u64)json_integer_value(v);
	}
	if (chat) {
		json_t *msg;

		v = json_object_get(root, "messages");
		if (!json_is_array(v)) {
			send_error(c, 400, "'messages' is a required property and must be an array");
			goto out_bad;
		}
		json_array_foreach(v, i, msg) {
			if (!json_is_object(msg) ||
			    content_chars(json_object_get(msg, "content"), &chars)) {
				send_error(c, 400, "messages[%zu] must be an object whose 'content' "
					   "is a string or an array of parts", i);
				goto out_bad;
			}
			nmsgs++;
		}
	} else {
		json_t *e;

		v = json_object_get(root, "prompt");
		if (json_is_string(v)) {
			chars = utf8_chars(json_string_value(v));
		} else if (json_is_array(v)) {
			json_array_foreach(v, i, e) {
				if (json_is_string(e))
					chars += utf8_chars(json_string_value(e));
				else if (json_is_integer(e)) /* token ids: 4 chars each */
					chars += 4;
				else if (json_is_array(e))
					chars += 4 * json_array_size(e);
			}
		} else {
			send_error(c, 400, "'prompt' is a required property and must be a string "
				   "or an array");
			goto out_bad;
		}
	}

	memset(l, 0, sizeof(*l));
	l->model = strdup(model);
	if (!l->model) {
		send_error(c, 500, "out of memory");
		json_decref(root);
		return;
	}
	c->llm_active = 1;
	in_flight_add(1);
	l->chat = chat;
	l->stream = stream;
	l->include_usage = include_usage;
	l->prompt = ptoks >= 0 ? (__u64)ptoks : (chars + 3) / 4 + (chat ? 4 * nmsgs + 3 : 0);
	l->completion = ctoks >= 0 ? (__u64)ctoks : completion;
	l->close_after = close_mid;
	l->gzip = gzip == 1;
	l->created = (long long)time(NULL);
	stats_lock();
	l->id = ++S->next_id;
	l->forced = status >= 0 || O.status;
	if (status >= 0)
		l->status = (int)status;
	else if (O.status)
		l->status = O.status;
	else if (O.error_rate > 0 && next_uniform() < O.error_rate)
		l->status = 500;
	else
		l->status = 200;
	stats_unlock();
	if (l->status == 200 && plimit_admit(c, l)) {
		llm_end(c);
		json_decref(root);
		return;
	}
	pr_info("%s: %.*s %.*s key=%.*s -> %d prompt=%llu completion=%llu%s latency=%lldms",
		c->peer, (int)r->mlen, r->method, (int)r->plen, r->path,
		r->key ? (int)r->key_len : 1, r->key ? r->key : "-", l->status,
		(unsigned long long)l->prompt, (unsigned long long)l->completion,
		stream ? " stream" : "", latency);
	if (latency > 0) {
		c->state = C_WAITING;
		timer_set(c, loop_clock() + (__u64)latency * 1000000ULL);
	} else {
		llm_start(c);
	}
	json_decref(root);
	return;
out_bad:
	json_decref(root);
bad:
	stats_lock();
	S->by_status[400]++;
	stats_unlock();
}

static void response_done(struct conn *c)
{
	llm_end(c);
	timer_cancel(c);
	c->state = C_READING;
}

static void usage_json(struct buf *b, const struct llm *l)
{
	buf_printf(b, "\"usage\":{\"prompt_tokens\":%llu,\"completion_tokens\":%llu,"
		   "\"total_tokens\":%llu}", (unsigned long long)l->prompt,
		   (unsigned long long)l->sent, (unsigned long long)(l->prompt + l->sent));
}

/* "id","object","created","model" of every answer and chunk. */
static void common_json(struct buf *b, const struct llm *l, const char *object)
{
	buf_printf(b, "{\"id\":\"%s-%llu\",\"object\":\"%s\",\"created\":%lld,\"model\":",
		   l->chat ? "chatcmpl" : "cmpl", (unsigned long long)l->id, object,
		   l->created);
	json_str(b, l->model, strlen(l->model), 1);
}

/* A JSON answer with Content-Encoding: gzip (x-mock-gzip: 1). */
static void send_gzip(struct conn *c, const struct buf *b)
{
	z_stream z = { 0 };
	uLong cap = compressBound((uLong)b->len) + 64;
	unsigned char *gz = malloc(cap);

	if (!gz || deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8,
				Z_DEFAULT_STRATEGY) != Z_OK) {
		free(gz);
		conn_kill(c);
		return;
	}
	z.next_in = (unsigned char *)b->p;
	z.avail_in = (uInt)b->len;
	z.next_out = gz;
	z.avail_out = (uInt)cap;
	if (deflate(&z, Z_FINISH) != Z_STREAM_END) {
		deflateEnd(&z);
		free(gz);
		conn_kill(c);
		return;
	}
	send_body(c, 200, "application/json", (const char *)gz, z.total_out,
		  "Content-Encoding: gzip\r\n");
	deflateEnd(&z);
	free(gz);
}

static void llm_start(struct conn *c)
{
	struct llm *l = &c->llm;
	struct buf *b = &scratch;

	c->state = C_READING;
	stats_lock();
	S->by_status[l->status]++;
	if (l->status == 200 && !l->stream) {
		S->prompt_tokens += l->prompt;
		S->completion_tokens += l->completion;
	} else if (l->status == 200) {
		S->prompt_tokens += l->prompt;
	}
	stats_unlock();
	if (l->status != 200) {
		send_error(c, l->status, "mock-llm: %s (status %d)",
			   l->forced ? "forced status" : "injected error (--error-rate)",
			   l->status);
		response_done(c);
		return;
	}
	if (l->stream) {
		l->t0_ns = loop_clock();
		c->state = C_STREAMING;
		stream_step(c);
		return;
	}
	l->sent = l->completion;
	b->off = b->len = 0;
	common_json(b, l, l->chat ? "chat.completion" : "text_completion");
	buf_str(b, l->chat ? ",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
		 "\"content\":\"" : ",\"choices\":[{\"index\":0,\"text\":\"");
	for (__u64 i = 0; i < l->completion; i++)
		buf_append(b, "tok ", 4);
	buf_str(b, l->chat ? "\"},\"logprobs\":null,\"finish_reason\":\"stop\"}],"
		 : "\",\"logprobs\":null,\"finish_reason\":\"stop\"}],");
	usage_json(b, l);
	buf_str(b, "}\n");
	if (b->err) {
		b->err = 0;
		conn_kill(c);
		return;
	}
	if (l->gzip) {
		send_gzip(c, b);
		response_done(c);
		return;
	}
	send_body(c, 200, "application/json", b->p, b->len, NULL);
	response_done(c);
}

/* One SSE event in its own HTTP chunk, so it leaves at once. */
static void send_event(struct conn *c, const struct buf *ev)
{
	if (!c->http10)
		buf_printf(&c->out, "%zx\r\n", ev->len);
	buf_append(&c->out, ev->p, ev->len);
	if (!c->http10)
		buf_append(&c->out, "\r\n", 2);
}

/* Emits what is due: the head, then tokens until the next one's time, the
 * close-mid-stream point, or a full output buffer. */
static void stream_step(struct conn *c)
{
	struct llm *l = &c->llm;
	struct buf *b = &scratch;
	__u64 token_ns = O.token_ms * 1000000ULL;

	if (!l->started) {
		l->started = 1;
		resp_head(c, 200, "text/event-stream", -1, "Cache-Control: no-cache\r\n");
	}
	for (;;) {
		if (l->close_after >= 0 && l->sent == (__u64)l->close_after &&
		    l->sent < l->completion) {
			/* Abrupt: no terminating chunk, and a plain close. */
			pr_info("%s: closing mid-stream after %llu tokens", c->peer,
				(unsigned long long)l->sent);
			response_done(c);
			c->keep_alive = 0;
			c->close_after_flush = 1;
			c->abrupt = 1;
			return;
		}
		if (l->sent >= l->completion)
			break;
		if (l->sent && token_ns && loop_clock() < l->t0_ns + l->sent * token_ns) {
			timer_set(c, l->t0_ns + l->sent * token_ns);
			return;
		}
		if (buf_used(&c->out) >= OUT_HIGH) {
			l->blocked = 1; /* resumed when the client has read */
			return;
		}
		b->off = b->len = 0;
		buf_str(b, "data: ");
		common_json(b, l, l->chat ? "chat.completion.chunk" : "text_completion");
		if (l->chat)
			buf_printf(b, ",\"choices\":[{\"index\":0,\"delta\":{%s\"content\":\"tok \"},"
				   "\"logprobs\":null,\"finish_reason\":%s}]",
				   l->sent ? "" : "\"role\":\"assistant\",",
				   l->sent + 1 == l->completion ? "\"stop\"" : "null");
		else
			buf_printf(b, ",\"choices\":[{\"text\":\"tok \",\"index\":0,"
				   "\"logprobs\":null,\"finish_reason\":%s}]",
				   l->sent + 1 == l->completion ? "\"stop\"" : "null");
		buf_str(b, l->include_usage ? ",\"usage\":null}\n\n" : "}\n\n");
		send_event(c, b);
		l->sent++;
		stats_lock();
		S->completion_tokens++;
		stats_unlock();
	}
	b->off = b->len = 0;
	if (!l->completion && l->chat) {
		/* No tokens: one event still carries the role and the finish. */
		buf_str(b, "data: ");
		common_json(b, l, "chat.completion.chunk");
		buf_str(b, ",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\","
			 "\"content\":\"\"},\"logprobs\":null,\"finish_reason\":\"stop\"}]}\n\n");
		send_event(c, b);
		b->off = b->len = 0;
	}
	if (l->include_usage) {
		buf_str(b, "data: ");
		common_json(b, l, l->chat ? "chat.completion.chunk" : "text_completion");
		buf_str(b, ",\"choices\":[],");
		usage_json(b, l);
		buf_str(b, "}\n\n");
		send_event(c, b);
		b->off = b->len = 0;
	}
	buf_str(b, "data: [DONE]\n\n");
	send_event(c, b);
	if (!c->http10)
		buf_append(&c->out, "0\r\n\r\n", 5);
	if (b->err) {
		b->err = 0;
		conn_kill(c);
		return;
	}
	response_done(c);
}

/* --- the other endpoints ---------------------------------------------------- */

static void send_stats(struct conn *c)
{
	struct buf *b = &scratch;
	int first = 1;

	b->off = b->len = 0;
	stats_lock();
	buf_printf(b, "{\"requests\":%llu,\"by_key\":{", (unsigned long long)S->requests);
	for (__u32 i = 0; i < KEY_SLOTS; i++) {
		if (!S->keys[i].key[0])
			continue;
		if (!first)
			buf_append(b, ",", 1);
		first = 0;
		json_str(b, S->keys[i].key, strlen(S->keys[i].key), 0);
		buf_printf(b, ":%llu", (unsigned long long)S->keys[i].n);
	}
	buf_printf(b, "},\"prompt_tokens\":%llu,\"completion_tokens\":%llu,\"in_flight\":%llu,"
		   "\"max_in_flight\":%llu,\"keys_dropped\":%llu,\"other_requests\":%llu,"
		   "\"by_status\":{", (unsigned long long)S->prompt_tokens,
		   (unsigned long long)S->completion_tokens, (unsigned long long)S->in_flight,
		   (unsigned long long)S->max_in_flight, (unsigned long long)S->keys_dropped,
		   (unsigned long long)S->other_requests);
	first = 1;
	for (int s = 0; s < STATUS_MAX; s++) {
		if (!S->by_status[s])
			continue;
		buf_printf(b, "%s\"%d\":%llu", first ? "" : ",", s,
			   (unsigned long long)S->by_status[s]);
		first = 0;
	}
	buf_str(b, "}");
	plimit_stats(b);
	stats_unlock();
	buf_str(b, "}\n");
	if (b->err) {
		b->err = 0;
		conn_kill(c);
		return;
	}
	send_body(c, 200, "application/json", b->p, b->len, NULL);
}

/* Zeroes the counters; in_flight is what is live now, so it stays. */
static void reset_stats(void)
{
	stats_lock();
	S->requests = S->other_requests = S->prompt_tokens = S->completion_tokens = 0;
	S->keys_dropped = 0;
	S->max_in_flight = S->in_flight;
	memset(S->by_status, 0, sizeof(S->by_status));
	memset(S->keys, 0, sizeof(S->keys));
	S->nkeys = 0;
	plimit_reset();
	stats_unlock();
}

static int path_is(const struct req *r, const char *p)
{
	return r->plen == strlen(p) && !memcmp(r->path, p, r->plen);
}

static int method_is(const struct req *r, const char *m)
{
	return r->mlen == strlen(m) && !memcmp(r->method, m, r->mlen);
}

static void handle_request(struct conn *c, const struct req *r)
{
	int chat = path_is(r, "/v1/chat/completions");

	c->keep_alive = r->keep_alive;
	c->http10 = r->http10;
	c->head = method_is(r, "HEAD");
	if (chat || path_is(r, "/v1/completions")) {
		if (method_is(r, "POST")) {
			handle_llm(c, r, chat);
			return;
		}
		send_error(c, 405, "Invalid method for %.*s: use POST", (int)r->plen, r->path);
		goto other;
	}
	if (path_is(r, "/stats")) {
		if (method_is(r, "GET") || c->head)
			send_stats(c);
		else
			send_error(c, 405, "use GET /stats, or POST /stats/reset");
		return;
	}
	if (path_is(r, "/stats/reset")) {
		if (method_is(r, "POST")) {
			reset_stats();
			send_body(c, 200, "application/json", "{\"reset\":true}\n", 15, NULL);
		} else {
			send_error(c, 405, "use POST /stats/reset");
		}
		return;
	}
	if (path_is(r, "/health") || path_is(r, "/") || path_is(r, "/bench") ||
	    (r->plen > 7 && !memcmp(r->path, "/bench/", 7))) {
		send_body(c, 200, "text/plain", "ok", 2, NULL);
		goto other;
	}
	send_error(c, 404, "Invalid URL (%.*s %.*s)", (int)r->mlen, r->method, (int)r->plen,
		   r->path);
other:
	stats_lock();
	S->other_requests++;
	stats_unlock();
}

/* --- the event loop --------------------------------------------------------- */

/* Answers every complete request in the input, in order, until one has to
 * wait (latency, streaming) or the output backlog is too long. */
static void process_input(struct conn *c)
{
	while (!c->dead && c->state == C_READING && !c->close_after_flush &&
	       buf_used(&c->out) < OUT_HIGH) {
		struct req r;
		int rc = parse_request(c, &r);

		if (rc < 0) {
			fail_conn(c, r.err_status, r.err);
			c->in.off = c->in.len = 0;
			break;
		}
		if (!rc) {
			if (r.head_len && r.expect_continue && !c->sent_continue) {
				buf_str(&c->out, "HTTP/1.1 100 Continue\r\n\r\n");
				c->sent_continue = 1;
			}
			break;
		}
		handle_request(c, &r);
		c->in.off += r.total;
		c->sent_continue = 0;
	}
	if (!c->dead && c->in.off == c->in.len)
		c->in.off = c->in.len = 0;
}

static void conn_flush(struct conn *c)
{
	struct buf *o = &c->out;

	if (c->dead)
		return;
	if (o->err) {
		pr_warn("%s: output over %d bytes or out of memory: dropping the connection",
			c->peer, OUT_MAX);
		conn_kill(c);
		return;
	}
	while (buf_used(o)) {
		ssize_t n = conn_send(c, o->p + o->off, buf_used(o));

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				break;
			pr_info("%s: send: %s", c->peer, strerror(errno));
			conn_kill(c);
			return;
		}
		o->off += (size_t)n;
	}
	if (buf_used(o))
		return;
	o->off = o->len = 0;
	if (c->close_after_flush && c->state == C_READING) {
		if (c->abrupt) {
			conn_kill(c);
			return;
		}
		/* Lingering close: shut our side, read until the client's FIN
		 * so that unread input does not turn our close into a RST that
		 * destroys the answer. */
		if (c->tls)
			tls_shutdown(c->tls);
		if (shutdown(c->io.fd, SHUT_WR) && errno != ENOTCONN)
			pr_info("%s: shutdown: %s", c->peer, strerror(errno));
		c->state = C_DRAINING;
		c->close_after_flush = 0;
		timer_set(c, loop_clock() + DRAIN_NS);
	}
}

/* A buffer that grew for one big request or answer is given back once
 * empty, so idle connections stay small. */
static void buf_shrink(struct buf *b, size_t keep)
{
	if (!buf_used(b) && b->cap > keep)
		buf_free(b);
}

static void conn_read(struct conn *c);

/* After any progress: send, and resume what waited for the client to read
 * (a stream, or requests already buffered behind a long answer) for as
 * long as that makes progress; then decide what to wait for. */
static void conn_settle(struct conn *c)
{
	int progress = 1;

	while (progress) {
		progress = 0;
		conn_flush(c);
		if (c->dead)
			return;
		if (c->state == C_STREAMING && c->llm.blocked &&
		    buf_used(&c->out) < OUT_HIGH / 2) {
			c->llm.blocked = 0;
			stream_step(c); /* emits until OUT_HIGH or the end */
			progress = 1;
		} else if (c->state == C_READING && buf_used(&c->in) && !c->close_after_flush &&
			   buf_used(&c->out) < OUT_HIGH) {
			size_t before = buf_used(&c->in);

			process_input(c);
			progress = !c->dead && buf_used(&c->in) != before;
		} else if (c->tls && c->state == C_READING && tls_pending(c->tls) &&
			   !c->close_after_flush && !c->peer_eof && buf_used(&c->out) < OUT_HIGH) {
			/* Bytes OpenSSL decrypted and holds: epoll cannot see them. */
			conn_read(c);
			progress = !c->dead;
		}
	}
	conn_flush(c); /* e.g. a 100 Continue */
	if (c->dead)
		return;
	buf_shrink(&c->in, 64 * 1024);
	buf_shrink(&c->out, OUT_HIGH);
	if (c->peer_eof && c->state == C_READING && !buf_used(&c->out)) {
		conn_kill(c);
		return;
	}
	set_events(c);
}

static void conn_read(struct conn *c)
{
	struct buf *in = &c->in;
	ssize_t n;

	if (c->state == C_DRAINING) {
		char sink[16384];

		n = recv(c->io.fd, sink, sizeof(sink), 0);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
			conn_kill(c);
		return;
	}
	if (buf_reserve(in, IN_CHUNK)) {
		/* Full at IN_MAX and still no whole request. */
		in->err = 0;
		if (buf_used(in) < in->max)
			buf_reserve(in, in->max - buf_used(in));
		if (in->err || in->len == in->cap) {
			in->err = 0;
			fail_conn(c, 413, "request over the input limit");
			in->off = in->len = 0;
			return;
		}
	}
	n = conn_recv(c, in->p + in->len, in->cap - in->len);
	if (n < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return;
		pr_info("%s: recv: %s", c->peer, strerror(errno));
		conn_kill(c);
		return;
	}
	if (n == 0) {
		c->peer_eof = 1;
		return;
	}
	in->len += (size_t)n;
	process_input(c);
}

static void on_timer(struct conn *c)
{
	switch (c->state) {
	case C_WAITING:
		llm_start(c);
		break;
	case C_STREAMING:
		stream_step(c);
		break;
	case C_DRAINING:
		conn_kill(c);
		return;
	case C_READING:
		break;
	}
	if (c->dead)
		return;
	process_input(c); /* pipelined requests behind this answer */
	conn_settle(c);
}

static void set_accepting(int on)
{
	if (accepting == on)
		return;
	if (loop_io_mod(L, &listen_io, on ? EPOLLIN : 0))
		pr_err("epoll_ctl listening socket: %s", strerror(errno));
	else
		accepting = on;
}

static void peer_name(const struct sockaddr_storage *ss, char *out, size_t n)
{
	char a[INET6_ADDRSTRLEN] = "?";

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s = (const void *)ss;

		inet_ntop(AF_INET, &s->sin_addr, a, sizeof(a));
		snprintf(out, n, "%s:%u", a, ntohs(s->sin_port));
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s = (const void *)ss;

		inet_ntop(AF_INET6, &s->sin6_addr, a, sizeof(a));
		snprintf(out, n, "[%s]:%u", a, ntohs(s->sin6_port));
	} else {
		snprintf(out, n, "?");
	}
}

static void on_conn(struct loop_io *io, uint32_t events);
static void on_conn_timer(struct loop_timer *t);

static void on_accept(struct loop_io *io, uint32_t events)
{
	(void)events;
	while (nconns < O.max_conns) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		struct conn *c;
		int one = 1;
		int fd = accept4(io->fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED)
				return;
			pr_warn("accept: %s (raise ulimit -n or lower --max-conns)", strerror(errno));
			return;
		}
		/* Streamed chunks are small and must leave at once. */
		if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)))
			pr_info("setsockopt TCP_NODELAY: %s", strerror(errno));
		c = calloc(1, sizeof(*c));
		if (!c) {
			pr_warn("accept: out of memory for a connection: closing it");
			close(fd);
			return;
		}
		loop_timer_init(&c->timer, on_conn_timer);
		c->keep_alive = 1;
		c->in.max = IN_MAX;
		c->out.max = OUT_MAX;
		peer_name(&ss, c->peer, sizeof(c->peer));
		if (tls_server) {
			struct errbuf e;

			c->tls = tls_conn_new(tls_server, fd, NULL, &e);
			if (!c->tls) {
				pr_warn("%s: %s: closing it", c->peer, e.msg);
				close(fd);
				free(c);
				return;
			}
			c->tls_handshaking = 1;
		}
		if (loop_io_add(L, &c->io, fd, EPOLLIN, on_conn)) {
			pr_warn("epoll_ctl add connection from %s: %s", c->peer, strerror(errno));
			close(fd);
			free(c);
			return;
		}
		c->next = conns;
		if (conns)
			conns->prev = c;
		conns = c;
		nconns++;
	}
	/* At --max-conns: further clients wait in the listen backlog. */
	set_accepting(0);
}

static void free_graveyard(void)
{
	while (graveyard) {
		struct conn *c = graveyard;

		graveyard = c->next;
		buf_free(&c->in);
		buf_free(&c->out);
		free(c);
	}
}

static void on_reap(struct loop_post *p)
{
	(void)p;
	free_graveyard();
	if (nconns < O.max_conns)
		set_accepting(1);
}

static void on_conn(struct loop_io *io, uint32_t events)
{
	struct conn *c = container_of(io, struct conn, io);

	if (c->dead)
		return;
	if (events & (EPOLLERR | EPOLLHUP) && !(events & EPOLLIN)) {
		conn_kill(c);
		return;
	}
	if (c->tls_handshaking) {
		int rc = tls_handshake(c->tls);

		if (rc == TLS_ERR) {
			pr_info("%s: %s", c->peer, tls_error(c->tls));
			conn_kill(c);
			return;
		}
		c->tls_want = rc == TLS_WANT_READ ? EPOLLIN : rc == TLS_WANT_WRITE ? EPOLLOUT : 0;
		if (rc != TLS_OK) {
			set_events(c);
			return;
		}
		c->tls_handshaking = 0;
		events |= EPOLLIN; /* the request may have come with the handshake's end */
	}
	if (events & EPOLLIN || (c->tls && c->tls_want == EPOLLOUT && events & EPOLLOUT))
		conn_read(c);
	if (!c->dead)
		conn_settle(c);
}

static void on_conn_timer(struct loop_timer *t)
{
	on_timer(container_of(t, struct conn, timer));
}

static void on_signal(struct loop_io *io, uint32_t events)
{
	struct signalfd_siginfo si;

	(void)events;
	if (read(io->fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		pr_info("signal %u: exiting", si.ssi_signo);
		loop_stop(L);
	}
}

static int worker_run(int lfd)
{
	struct loop_io signal_io;
	int sfd, rc = 0, err;
	sigset_t mask;

	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (sfd < 0) {
		pr_err("signalfd: %s", strerror(errno));
		return 1;
	}
	err = loop_new(&L);
	if (err) {
		pr_err("event loop: %s", strerror(-err));
		close(sfd);
		return 1;
	}
	loop_post_init(&reap, on_reap);
	err = loop_io_add(L, &listen_io, lfd, EPOLLIN, on_accept);
	if (err) {
		pr_err("epoll_ctl add listening socket: %s", strerror(-err));
		rc = 1;
		goto out;
	}
	err = loop_io_add(L, &signal_io, sfd, EPOLLIN, on_signal);
	if (err) {
		pr_err("epoll_ctl add signalfd: %s", strerror(-err));
		rc = 1;
		goto out;
	}
	err = loop_run(L);
	if (err) {
		pr_err("epoll_wait: %s", strerror(-err));
		rc = 1;
	}
out:
	while (conns)
		conn_kill(conns);
	free_graveyard();
	buf_free(&scratch);
	loop_free(L);
	L = NULL;
	close(sfd);
	return rc;
}

/* --- startup ---------------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f,
"Usage: mock-llm [OPTIONS]\n"
"\n"
"An OpenAI-compatible mock LLM backend for sluice-l7's tests, benchmark and\n"
"demo. It answers POST /v1/chat/completions and POST /v1/completions with\n"
"canned tokens (\"tok \" each), as JSON or, with \"stream\": true, as\n"
"server-sent events, and counts what reached it on GET /stats.\n"
"\n"
"Options:\n"
"  --listen ADDR:PORT       address to listen on (default 127.0.0.1:9000);\n"
"                           IPv6 as [ADDR]:PORT; port 0 picks a free port\n"
"  --latency-ms N           delay before the first byte of an LLM answer (0)\n"
"  --token-ms N             delay between streamed tokens (0)\n"
"  --completion-tokens N    tokens per answer, at most the request's\n"
"                           max_tokens or max_completion_tokens (16)\n"
"  --error-rate F           fraction 0..1 of LLM requests answered 500 (0)\n"
"  --seed N                 seed of --error-rate's pseudo-random draws (1)\n"
"  --status N               answer every LLM request with status N (200..599)\n"
"  --close-mid-stream N     close a stream after N tokens, without the\n"
"                           terminating chunk\n"
"  --max-conns N            connections per worker; more wait in the listen\n"
"                           backlog (4096)\n"
"  --workers N              processes sharing the port with SO_REUSEPORT (1)\n"
"  --tls-cert FILE          serve HTTPS with this PEM certificate chain\n"
"  --tls-key FILE           and this PEM private key (both, or neither)\n"
"  --limit-rpm N            enforce N requests a minute, as a provider does:\n"
"                           429 with retry-after when over (none)\n"
"  --limit-tpm N            enforce N tokens (prompt + completion) a minute\n"
"                           (none); with either, every LLM answer carries\n"
"                           x-ratelimit-limit/remaining/reset-requests/-tokens\n"
"  -v, --verbose            log every LLM request on stderr\n"
"  -h, --help               show this help\n"
"  --version                print the version and exit\n"
"\n"
"Per-request headers override the options: x-mock-latency-ms,\n"
"x-mock-completion-tokens (ignores max_tokens), x-mock-prompt-tokens,\n"
"x-mock-status, x-mock-close-mid-stream.\n"
"\n"
"Endpoints:\n"
"  POST /v1/chat/completions, POST /v1/completions   the LLM answers\n"
"  GET /stats          {\"requests\",\"by_key\",\"prompt_tokens\",\n"
"                      \"completion_tokens\",\"in_flight\",\"max_in_flight\",...}\n"
"                      and with --limit-*: \"limit\":{\"limited\",\"served_requests\",...}\n"
"  POST /stats/reset   zero the counters\n"
"  GET /health, / and /bench...   200 \"ok\"\n"
"\n"
"Prints \"mock-llm: listening on ADDR:PORT\" on stderr when ready. SIGINT and\n"
"SIGTERM exit 0. Exit status 2 for a bad option, 1 for a failure.\n"
"See docs/mock-llm.md.\n");
}

static int parse_listen(const char *s, struct errbuf *e)
{
	char host[INET6_ADDRSTRLEN + 2];
	const char *colon = strrchr(s, ':');
	__u64 port;
	size_t hl;
	struct errbuf pe;

	if (!colon)
		return errf(e, -EINVAL, "bad --listen '%s': expected ADDR:PORT, e.g. 127.0.0.1:9000",
			    s);
	hl = (size_t)(colon - s);
	if (hl >= sizeof(host))
		return errf(e, -EINVAL, "bad --listen '%s': address too long", s);
	memcpy(host, s, hl);
	host[hl] = 0;
	if (parse_u64(colon + 1, 0, 65535, 0, "port", &port, &pe))
		return errf(e, -EINVAL, "bad --listen '%s': %s", s, pe.msg);
	memset(&O.addr, 0, sizeof(O.addr));
	if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') {
		struct sockaddr_in6 *a = (void *)&O.addr;

		host[hl - 1] = 0;
		if (inet_pton(AF_INET6, host + 1, &a->sin6_addr) != 1)
			return errf(e, -EINVAL, "bad --listen '%s': '%s' is not an IPv6 address",
				    s, host + 1);
		a->sin6_family = AF_INET6;
		a->sin6_port = htons((__u16)port);
		O.addrlen = sizeof(*a);
	} else {
		struct sockaddr_in *a = (void *)&O.addr;

		if (!strcmp(host, "localhost"))
			strcpy(host, "127.0.0.1");
		if (inet_pton(AF_INET, host, &a->sin_addr) != 1)
			return errf(e, -EINVAL, "bad --listen '%s': '%s' is not an IPv4 address "
				    "(IPv6 goes in brackets: [::1]:9000)", s, host);
		a->sin_family = AF_INET;
		a->sin_port = htons((__u16)port);
		O.addrlen = sizeof(*a);
	}
	return 0;
}

static int parse_rate(const char *s, double *out, struct errbuf *e)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (!*s || *end || errno || !(v >= 0 && v <= 1))
		return errf(e, -EINVAL, "bad --error-rate '%s': expected a fraction from 0 to 1, "
			    "e.g. 0.05", s);
	*out = v;
	return 0;
}

static int is_loopback(void)
{
	if (O.addr.ss_family == AF_INET)
		return (ntohl(((struct sockaddr_in *)&O.addr)->sin_addr.s_addr) >> 24) == 127;
	return IN6_IS_ADDR_LOOPBACK(&((struct sockaddr_in6 *)&O.addr)->sin6_addr);
}

static int port_of(const struct sockaddr_storage *ss)
{
	return ss->ss_family == AF_INET ? ntohs(((const struct sockaddr_in *)ss)->sin_port) :
		ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
}

static int open_listener(int reuseport, char *name, size_t name_len)
{
	int fd, one = 1;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	peer_name(&O.addr, name, name_len);
	fd = socket(O.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		pr_err("socket: %s", strerror(errno));
		return -1;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)))) {
		pr_err("setsockopt on the listening socket: %s", strerror(errno));
		close(fd);
		return -1;
	}
	if (bind(fd, (struct sockaddr *)&O.addr, O.addrlen)) {
		pr_err("bind %s: %s%s", name, strerror(errno),
		       errno == EADDRINUSE ? " (choose another --listen port)" :
		       errno == EADDRNOTAVAIL ? " (no interface has this address)" : "");
		close(fd);
		return -1;
	}
	if (listen(fd, 4096)) {
		pr_err("listen %s: %s", name, strerror(errno));
		close(fd);
		return -1;
	}
	/* Port 0: the workers that follow bind the port the kernel chose. */
	if (getsockname(fd, (struct sockaddr *)&ss, &sl)) {
		pr_err("getsockname %s: %s", name, strerror(errno));
		close(fd);
		return -1;
	}
	if (O.addr.ss_family == AF_INET)
		((struct sockaddr_in *)&O.addr)->sin_port = htons((__u16)port_of(&ss));
	else
		((struct sockaddr_in6 *)&O.addr)->sin6_port = htons((__u16)port_of(&ss));
	peer_name(&O.addr, name, name_len);
	return fd;
}

/* Enough descriptors for --max-conns: raise the soft limit if needed. */
static int max_conns_set;

static int check_nofile(void)
{
	struct rlimit rl;
	rlim_t need = (rlim_t)O.max_conns + 64;

	if (getrlimit(RLIMIT_NOFILE, &rl)) {
		pr_err("getrlimit RLIMIT_NOFILE: %s", strerror(errno));
		return -1;
	}
	if (rl.rlim_cur >= need)
		return 0;
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need && !max_conns_set &&
	    rl.rlim_max > 128) {
		O.max_conns = rl.rlim_max - 64;
		need = rl.rlim_max;
	} else if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need) {
		pr_err("--max-conns %llu needs %llu file descriptors but the hard limit is %llu "
		       "(lower --max-conns or raise ulimit -Hn)", (unsigned long long)O.max_conns,
		       (unsigned long long)need, (unsigned long long)rl.rlim_max);
		return -1;
	}
	rl.rlim_cur = need;
	if (setrlimit(RLIMIT_NOFILE, &rl)) {
		pr_err("setrlimit RLIMIT_NOFILE to %llu: %s (lower --max-conns)",
		       (unsigned long long)need, strerror(errno));
		return -1;
	}
	return 0;
}

/* The parent of --workers: forward SIGINT/SIGTERM, and if one worker dies,
 * stop the others and fail. */
static int supervise(pid_t *pids, __u64 n)
{
	sigset_t mask;
	int rc = 0, stopping = 0;
	__u64 alive = n;

	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGCHLD);
	while (alive) {
		siginfo_t si;
		int sig = sigwaitinfo(&mask, &si);

		if (sig < 0) {
			if (errno == EINTR)
				continue;
			pr_err("sigwaitinfo: %s", strerror(errno));
			sig = SIGTERM;
			rc = 1;
		}
		if (sig != SIGCHLD) {
			stopping = 1;
			for (__u64 i = 0; i < n; i++)
				if (pids[i] > 0)
					kill(pids[i], SIGTERM);
			continue;
		}
		for (;;) {
			int st;
			pid_t p = waitpid(-1, &st, WNOHANG);

			if (p <= 0)
				break;
			for (__u64 i = 0; i < n; i++)
				if (pids[i] == p)
					pids[i] = 0;
			alive--;
			if (!WIFEXITED(st) || WEXITSTATUS(st)) {
				if (!stopping)
					pr_err("worker %d died (%s %d): stopping the others",
					       (int)p, WIFEXITED(st) ? "exit" : "signal",
					       WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
				rc = 1;
			} else if (!stopping) {
				pr_err("worker %d exited: stopping the others", (int)p);
				rc = 1;
			}
			if (!stopping) {
				stopping = 1;
				for (__u64 i = 0; i < n; i++)
					if (pids[i] > 0)
						kill(pids[i], SIGTERM);
			}
		}
	}
	return rc;
}

int main(int argc, char **argv)
{
	enum { OPT_LISTEN = 256, OPT_LATENCY, OPT_TOKEN, OPT_COMPLETION, OPT_ERROR_RATE,
	       OPT_SEED, OPT_STATUS, OPT_CLOSE_MID, OPT_MAX_CONNS, OPT_WORKERS, OPT_TLS_CERT,
	       OPT_TLS_KEY, OPT_LIMIT_RPM, OPT_LIMIT_TPM };
	static const struct option longopts[] = {
		{ "listen", required_argument, NULL, OPT_LISTEN },
		{ "latency-ms", required_argument, NULL, OPT_LATENCY },
		{ "token-ms", required_argument, NULL, OPT_TOKEN },
		{ "completion-tokens", required_argument, NULL, OPT_COMPLETION },
		{ "error-rate", required_argument, NULL, OPT_ERROR_RATE },
		{ "seed", required_argument, NULL, OPT_SEED },
		{ "status", required_argument, NULL, OPT_STATUS },
		{ "close-mid-stream", required_argument, NULL, OPT_CLOSE_MID },
		{ "max-conns", required_argument, NULL, OPT_MAX_CONNS },
		{ "workers", required_argument, NULL, OPT_WORKERS },
		{ "tls-cert", required_argument, NULL, OPT_TLS_CERT },
		{ "tls-key", required_argument, NULL, OPT_TLS_KEY },
		{ "limit-rpm", required_argument, NULL, OPT_LIMIT_RPM },
		{ "limit-tpm", required_argument, NULL, OPT_LIMIT_TPM },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	struct errbuf e = { "" };
	char name[INET6_ADDRSTRLEN + 16];
	int opt, err = 0, *fds = NULL, rc = 0;
	pid_t *pids = NULL;
	__u64 v = 0;
	sigset_t mask;

	if (version_flag("mock-llm", argc, argv))
		return 0;

	log_init(PROG, LOG_WARN);
	if (parse_listen("127.0.0.1:9000", &e))
		return 1;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":vh", longopts, NULL)) != -1) {
		switch (opt) {
		case OPT_LISTEN:
			err = parse_listen(optarg, &e);
			break;
		case OPT_LATENCY:
			err = parse_u64(optarg, 0, LATENCY_MAX_MS, 0, "--latency-ms", &O.latency_ms, &e);
			break;
		case OPT_TOKEN:
			err = parse_u64(optarg, 0, LATENCY_MAX_MS, 0, "--token-ms", &O.token_ms, &e);
			break;
		case OPT_COMPLETION:
			err = parse_u64(optarg, 0, TOKENS_MAX, 0, "--completion-tokens",
					&O.completion_tokens, &e);
			break;
		case OPT_ERROR_RATE:
			err = parse_rate(optarg, &O.error_rate, &e);
			break;
		case OPT_SEED:
			err = parse_u64(optarg, 0, UINT64_MAX, 0, "--seed", &O.seed, &e);
			break;
		case OPT_STATUS:
			err = parse_u64(optarg, 200, 599, 0, "--status", &v, &e);
			if (!err && !status_ok((long long)v))
				err = errf(&e, -EINVAL, "bad --status '%s': 204, 205 and 304 have "
					   "no body", optarg);
			O.status = (int)v;
			break;
		case OPT_CLOSE_MID:
			err = parse_u64(optarg, 0, TOKENS_MAX, 0, "--close-mid-stream", &v, &e);
			O.close_mid = (long long)v;
			break;
		case OPT_MAX_CONNS:
			err = parse_u64(optarg, 1, 1000000, 0, "--max-conns", &O.max_conns, &e);
			max_conns_set = 1;
			break;
		case OPT_WORKERS:
			err = parse_u64(optarg, 1, 256, 0, "--workers", &O.workers, &e);
			break;
		case OPT_TLS_CERT:
			O.tls_cert = optarg;
			break;
		case OPT_TLS_KEY:
			O.tls_key = optarg;
			break;
		case OPT_LIMIT_RPM:
			err = parse_u64(optarg, 1, PL_LIMIT_MAX, 0, "--limit-rpm", &pl_limit[0], &e);
			break;
		case OPT_LIMIT_TPM:
			err = parse_u64(optarg, 1, PL_LIMIT_MAX, 0, "--limit-tpm", &pl_limit[1], &e);
			break;
		case 'v':
			O.verbose = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case ':':
			err = errf(&e, -EINVAL, "%s needs a value (see --help)", argv[optind - 1]);
			break;
		default:
			if (optopt)
				err = errf(&e, -EINVAL, "unknown option '-%c' (see --help)", optopt);
			else
				err = errf(&e, -EINVAL, "unknown option '%s' (see --help)",
					   argv[optind - 1]);
		}
		if (err) {
			pr_err("%s", e.msg);
			return 2;
		}
	}
	if (optind < argc) {
		pr_err("unexpected argument '%s' (see --help)", argv[optind]);
		return 2;
	}
	log_init(PROG, O.verbose ? LOG_INFO : LOG_WARN);
	if (!is_loopback())
		pr_warn("listening on a non-loopback address: anyone who can reach it can use it");
	if (check_nofile())
		return 1;
	if (!O.tls_cert != !O.tls_key) {
		pr_err("--tls-cert and --tls-key go together (see --help)");
		return 2;
	}
	if (O.tls_cert) {
		/* OpenSSL writes with write(2): a peer gone must not kill us. */
		if (signal(SIGPIPE, SIG_IGN) == SIG_ERR) {
			pr_err("ignore SIGPIPE: %s", strerror(errno));
			return 1;
		}
		if (tls_server_ctx_new(O.tls_cert, O.tls_key, &tls_server, &e)) {
			pr_err("%s", e.msg);
			return 1;
		}
	}

	S = mmap(NULL, sizeof(*S), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (S == MAP_FAILED) {
		pr_err("mmap the shared counters: %s", strerror(errno));
		return 1;
	}
	S->rng = O.seed;
	if (plimit_init())
		return 1;

	/* Signals arrive through a signalfd (workers) or sigwaitinfo (the
	 * parent); block them before any worker exists. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGCHLD);
	if (sigprocmask(SIG_BLOCK, &mask, NULL)) {
		pr_err("sigprocmask: %s", strerror(errno));
		return 1;
	}

	fds = calloc(O.workers, sizeof(*fds));
	pids = calloc(O.workers, sizeof(*pids));
	if (!fds || !pids) {
		pr_err("out of memory");
		rc = 1;
		goto out;
	}
	for (__u64 i = 0; i < O.workers; i++)
		fds[i] = -1;
	for (__u64 i = 0; i < O.workers; i++) {
		fds[i] = open_listener(O.workers > 1, name, sizeof(name));
		if (fds[i] < 0) {
			rc = 1;
			goto out;
		}
	}
	fprintf(stderr, PROG ": listening on %s%s\n", name, tls_server ? " (TLS)" : "");

	if (O.workers == 1) {
		rc = worker_run(fds[0]);
		goto out;
	}
	for (__u64 i = 0; i < O.workers; i++) {
		pid_t p = fork();

		if (p < 0) {
			pr_err("fork worker %llu: %s", (unsigned long long)i, strerror(errno));
			for (__u64 j = 0; j < i; j++)
				kill(pids[j], SIGTERM);
			while (wait(NULL) > 0)
				;
			rc = 1;
			goto out;
		}
		if (p == 0) {
			for (__u64 j = 0; j < O.workers; j++)
				if (j != i)
					close(fds[j]);
			rc = worker_run(fds[i]);
			close(fds[i]);
			free(fds);
			free(pids);
			munmap(S, sizeof(*S));
			_exit(rc);
		}
		pids[i] = p;
	}
	for (__u64 i = 0; i < O.workers; i++) {
		close(fds[i]);
		fds[i] = -1;
	}
	rc = supervise(pids, O.workers);
out:
	for (__u64 i = 0; fds && i < O.workers; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	free(fds);
	free(pids);
	munmap(S, sizeof(*S));
	tls_ctx_free(tls_server);
	return rc;
}
