// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * http.c - strict, incremental HTTP/1.1 parsing (RFC 9112) for sluice-l7.
 *
 * Heads: one pass over the lines (memchr for each LF), one table lookup per
 * byte. A call re-reads the head from the start (the API is stateless), so a
 * head that arrives in k pieces costs k passes over at most max_head bytes.
 * A line that is complete is checked as soon as it is in the buffer, so a
 * malformed request is refused before its head ends.
 *
 * What is accepted, and why (a proxy must not read a message differently
 * from the backend behind it; every ambiguity is refused):
 * - Line ends: CRLF, or a bare LF (RFC 9112 2.2 lets a recipient accept it
 *   in the head). A CR anywhere else is an error. Chunked framing lines
 *   take CRLF only.
 * - Request line: method SP target SP version, single spaces. The method is
 *   a token of at most HTTP_MAX_METHOD bytes; the target is origin-form
 *   ('/' then visible ASCII); the version is HTTP/1.0 or HTTP/1.1.
 * - Status line: HTTP/1.x SP 3DIGIT, then SP and a reason (possibly empty),
 *   or nothing (some servers omit the space before an empty reason).
 * - Fields: token ':' OWS value OWS. A line starting with SP or HTAB
 *   (obs-fold), a blank before the colon, or a control character in the
 *   value is an error.
 * - Content-Length: digits only, up to INT64_MAX; repeated lines must agree;
 *   a comma list ("5, 5") is refused, as nginx does.
 * - Transfer-Encoding: a list over all its lines; chunked must be last and
 *   only once; with a Content-Length, or in HTTP/1.0, it is an error (RFC
 *   9112 6.1 calls both faulty framing). A request with any coding other
 *   than chunked gets 501. A response whose codings do not end in chunked
 *   is read until close (RFC 9112 6.3), so framing.chunked is 0 there.
 */
#include <string.h>
#include "http.h"

/* Byte classes. */
#define C_TCHAR  1  /* token character (RFC 9110 5.6.2) */
#define C_FIELD  2  /* field-vchar, obs-text, SP, HTAB: allowed in a value */
#define C_TARGET 4  /* visible ASCII: allowed in a request target */
#define C_HEX    8

static const unsigned char cls[256] = {
	 0,  0,  0,  0,  0,  0,  0,  0,  0,  2,  0,  0,  0,  0,  0,  0,
	 0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,
	 2,  7,  6,  7,  7,  7,  7,  7,  6,  6,  7,  7,  6,  7,  7,  6,
	15, 15, 15, 15, 15, 15, 15, 15, 15, 15,  6,  6,  6,  6,  6,  6,
	 6, 15, 15, 15, 15, 15, 15,  7,  7,  7,  7,  7,  7,  7,  7,  7,
	 7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  6,  6,  6,  7,  7,
	 7, 15, 15, 15, 15, 15, 15,  7,  7,  7,  7,  7,  7,  7,  7,  7,
	 7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  6,  7,  6,  7,  0,
	 2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,
	 2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,
	 2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,
	 2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,
	 2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,
	 2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,
	 2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,
	 2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,
};

#define IS(c, k) (cls[(unsigned char)(c)] & (k))
#define IS_BLANK(c) ((c) == ' ' || (c) == '\t')

/* Line parse outcomes before they become a status (requests and responses
 * map them differently). */
enum {
	P_MORE = 0,
	P_BAD = -1,
	P_TOO_LARGE = -2,
	P_VERSION = -3,
};

static inline unsigned char lower(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? c | 0x20 : c;
}

/* p[0..n) equals the lower-case s[0..sn), ignoring ASCII case in p. */
static int ieq(const char *p, size_t n, const char *s, size_t sn)
{
	size_t i;

	if (n != sn)
		return 0;
	for (i = 0; i < n; i++)
		if (lower((unsigned char)p[i]) != lower((unsigned char)s[i]))
			return 0;
	return 1;
}

#define IEQ_LIT(p, n, lit) ieq((p), (n), lit, sizeof(lit) - 1)

int http_span_ieq(const struct http_span *a, const char *s)
{
	return ieq(a->p, a->n, s, strlen(s));
}

const struct http_span *http_header_get(const struct http_header *h, unsigned int n,
					const char *name)
{
	size_t sn = strlen(name);
	unsigned int i;

	for (i = 0; i < n; i++)
		if (ieq(h[i].name.p, h[i].name.n, name, sn))
			return &h[i].value;
	return NULL;
}

/*
 * Walks a comma-separated list (RFC 9110 5.6.1): returns 1 with the next
 * element (OWS trimmed, possibly empty) in *el, or 0 at the end. *pos is the
 * cursor, starting at 0.
 */
static int list_next(const struct http_span *v, size_t *pos, struct http_span *el)
{
	size_t i = *pos, s, e;

	if (i > v->n)
		return 0;
	s = i;
	while (i < v->n && v->p[i] != ',')
		i++;
	e = i;
	*pos = i + 1;
	while (s < e && IS_BLANK(v->p[s]))
		s++;
	while (e > s && IS_BLANK(v->p[e - 1]))
		e--;
	el->p = v->p + s;
	el->n = e - s;
	return 1;
}

/* What the fields of a head say about its framing, gathered as they are read. */
struct fields {
	struct http_header *h;
	unsigned int n;
	int64_t content_length;  /* -1: none */
	int te_seen;             /* a Transfer-Encoding line */
	int te_codings;          /* non-empty elements over all its lines */
	int te_chunked;          /* how many of them are "chunked" */
	int te_chunked_last;     /* the last one is */
	int conn_close, conn_keep_alive, conn_upgrade;
	int hosts;
	int expect_continue;
};

static void fields_init(struct fields *f, struct http_header *h)
{
	memset(f, 0, sizeof(*f));
	f->h = h;
	f->content_length = -1;
}

static int field_content_length(struct fields *f, const struct http_span *v)
{
	int64_t x = 0;
	size_t i;

	if (!v->n)
		return P_BAD;
	for (i = 0; i < v->n; i++) {
		unsigned char c = (unsigned char)v->p[i];

		if (c < '0' || c > '9')
			return P_BAD;  /* sign, blank, comma, anything */
		if (x > (INT64_MAX - (c - '0')) / 10)
			return P_BAD;
		x = x * 10 + (c - '0');
	}
	if (f->content_length >= 0 && f->content_length != x)
		return P_BAD;
	f->content_length = x;
	return 0;
}

static int field_transfer_encoding(struct fields *f, const struct http_span *v)
{
	struct http_span el;
	size_t pos = 0, i;

	f->te_seen = 1;
	while (list_next(v, &pos, &el)) {
		if (!el.n)
			continue;  /* RFC 9110 5.6.1: empty elements are ignored */
		for (i = 0; i < el.n; i++)
			if (!IS(el.p[i], C_TCHAR))
				return P_BAD;  /* parameters: chunked takes none */
		f->te_codings++;
		f->te_chunked_last = IEQ_LIT(el.p, el.n, "chunked");
		f->te_chunked += f->te_chunked_last;
	}
	return 0;
}

static void field_connection(struct fields *f, const struct http_span *v)
{
	struct http_span el;
	size_t pos = 0;

	while (list_next(v, &pos, &el)) {
		if (IEQ_LIT(el.p, el.n, "close"))
			f->conn_close = 1;
		else if (IEQ_LIT(el.p, el.n, "keep-alive"))
			f->conn_keep_alive = 1;
		else if (IEQ_LIT(el.p, el.n, "upgrade"))
			f->conn_upgrade = 1;
	}
}

static int field_host(struct fields *f, const struct http_span *v)
{
	size_t i;

	f->hosts++;
	/* uri-host [":" port]: no blanks, no path, query, fragment or userinfo
	 * (a backend that split them differently would see another host). */
	for (i = 0; i < v->n; i++) {
		unsigned char c = (unsigned char)v->p[i];

		if (!IS(c, C_TARGET) || c == '/' || c == '\\' || c == '?' || c == '#' || c == '@')
			return P_BAD;
	}
	return 0;
}

/* The fields that frame the message, picked by length first: most names
 * are none of them and cost one switch. */
static int field_framing(struct fields *f, const struct http_span *name,
			 const struct http_span *v)
{
	switch (name->n) {
	case 4:
		if (IEQ_LIT(name->p, name->n, "host"))
			return field_host(f, v);
		break;
	case 6:
		if (IEQ_LIT(name->p, name->n, "expect") && IEQ_LIT(v->p, v->n, "100-continue"))
			f->expect_continue = 1;
		break;
	case 10:
		if (IEQ_LIT(name->p, name->n, "connection"))
			field_connection(f, v);
		break;
	case 14:
		if (IEQ_LIT(name->p, name->n, "content-length"))
			return field_content_length(f, v);
		break;
	case 17:
		if (IEQ_LIT(name->p, name->n, "transfer-encoding"))
			return field_transfer_encoding(f, v);
		break;
	}
	return 0;
}

#define ONES 0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL

/*
 * The offset of the first byte of s[0..n) that a field value may not hold
 * (a control other than HTAB, or DEL), or n. Values are most of a head, so
 * eight bytes are tested at once: a word with no byte below 0x20 and none
 * equal to 0x7f is fine (the zero-byte test has no false negatives); one
 * that might hold either, HTAB included, is looked at byte by byte.
 */
static size_t value_scan(const char *s, size_t n)
{
	size_t i = 0, stop;

	while (i < n) {
		if (n - i >= 8) {
			uint64_t x, y;

			memcpy(&x, s + i, 8);
			y = x ^ (ONES * 0x7f);
			if (!((((x - ONES * 0x20) & ~x) | ((y - ONES) & ~y)) & HIGHS)) {
				i += 8;
				continue;
			}
			stop = i + 8;
		} else {
			stop = n;
		}
		for (; i < stop; i++)
			if (!IS(s[i], C_FIELD))
				return i;
	}
	return n;
}

/* One field line s[0..n), line end already stripped. */
static int parse_field(const char *s, size_t n, struct fields *f)
{
	struct http_header *h;
	size_t i = 0, vs, ve;

	while (i < n && IS(s[i], C_TCHAR))
		i++;
	/* An empty name is obs-fold or whitespace before the first field; a
	 * non-token byte before ':' is a blank before the colon, or worse. */
	if (i == 0 || i == n || s[i] != ':')
		return P_BAD;
	if (f->n == HTTP_MAX_HEADERS)
		return P_TOO_LARGE;
	vs = i + 1;
	while (vs < n && IS_BLANK(s[vs]))
		vs++;
	if (value_scan(s + vs, n - vs) != n - vs)
		return P_BAD;  /* control character, bare CR */
	ve = n;
	while (ve > vs && IS_BLANK(s[ve - 1]))
		ve--;
	h = &f->h[f->n++];
	h->name.p = s;
	h->name.n = i;
	h->value.p = s + vs;
	h->value.n = ve - vs;
	return field_framing(f, &h->name, &h->value);
}

/*
 * The line starting at pos: returns the offset just past its LF, or 0 when
 * there is no LF before end. *le is the end of its content (a CR before the
 * LF stripped).
 */
static size_t next_line(const char *buf, size_t pos, size_t end, size_t *le)
{
	const char *lf = memchr(buf + pos, '\n', end - pos);
	size_t e;

	if (!lf)
		return 0;
	e = (size_t)(lf - buf);
	*le = e > pos && buf[e - 1] == '\r' ? e - 1 : e;
	return e + 1;
}

/* Field lines from pos up to the blank line: the head's length, P_MORE, or
 * an error. */
static long parse_fields(const char *buf, size_t pos, size_t end, struct fields *f)
{
	for (;;) {
		size_t le, next = next_line(buf, pos, end, &le);
		int r;

		if (!next)
			return P_MORE;
		if (le == pos)
			return (long)next;
		r = parse_field(buf + pos, le - pos, f);
		if (r)
			return r;
		pos = next;
	}
}

/* "HTTP/1.x" at s: the minor version, P_VERSION for another well-formed
 * version, P_BAD for anything else. */
static int parse_version(const char *s)
{
	if (memcmp(s, "HTTP/", 5) || s[5] < '0' || s[5] > '9' || s[6] != '.' || s[7] < '0' ||
	    s[7] > '9')
		return P_BAD;
	if (s[5] != '1' || s[7] > '1')
		return P_VERSION;
	return s[7] - '0';
}

static int keep_alive(int minor, const struct fields *f)
{
	if (f->conn_close)
		return 0;
	return minor >= 1 || f->conn_keep_alive;
}

static int parse_request_line(const char *s, size_t n, struct http_request *req)
{
	size_t i = 0, t;
	int v;

	while (i < n && IS(s[i], C_TCHAR))
		i++;
	if (i == 0 || i > HTTP_MAX_METHOD || i == n || s[i] != ' ')
		return P_BAD;
	req->method.p = s;
	req->method.n = i;
	t = ++i;
	while (i < n && IS(s[i], C_TARGET))
		i++;
	if (i == t || s[t] != '/' || i == n || s[i] != ' ')
		return P_BAD;  /* origin-form only: no absolute-form, no '*' */
	req->target.p = s + t;
	req->target.n = i - t;
	i++;
	if (n - i != 8)
		return P_BAD;
	v = parse_version(s + i);
	if (v < 0)
		return v;
	req->minor = v;
	return 0;
}

static long request_status(long r)
{
	switch (r) {
	case P_TOO_LARGE:
		return -431;
	case P_VERSION:
		return -505;
	default:
		return -400;
	}
}

long http_parse_request(const char *buf, size_t len, size_t max_head, uint64_t max_body,
			struct http_request *req)
{
	size_t end = len < max_head ? len : max_head;
	size_t pos = 0, le, next;
	struct fields f;
	long r;

	req->n_headers = 0;
	req->head_len = 0;
	/* RFC 9112 2.2: empty lines before the request line are skipped. */
	while (pos < end) {
		if (buf[pos] == '\n') {
			pos++;
		} else if (buf[pos] == '\r' && pos + 1 < end) {
			if (buf[pos + 1] != '\n')
				return -400;
			pos += 2;
		} else {
			break;
		}
	}
	next = next_line(buf, pos, end, &le);
	if (!next)
		goto more;
	r = parse_request_line(buf + pos, le - pos, req);
	if (r)
		return request_status(r);
	fields_init(&f, req->headers);
	r = parse_fields(buf, next, end, &f);
	req->n_headers = f.n;
	if (r == P_MORE)
		goto more;
	if (r < 0)
		return request_status(r);

	if (f.te_seen) {
		if (f.content_length >= 0 || req->minor == 0 || !f.te_codings ||
		    f.te_chunked > 1 || (f.te_chunked && !f.te_chunked_last))
			return -400;
		if (f.te_codings != f.te_chunked)
			return -501;
	}
	if (f.hosts > 1 || (req->minor == 1 && !f.hosts))
		return -400;
	if (f.content_length >= 0 && (uint64_t)f.content_length > max_body)
		return -413;
	req->framing.content_length = f.content_length;
	req->framing.chunked = f.te_seen;
	req->framing.keep_alive = keep_alive(req->minor, &f);
	req->framing.upgrade = f.conn_upgrade;
	req->expect_continue = f.expect_continue;
	req->head_len = (size_t)r;
	return r;
more:
	return len >= max_head ? -431 : 0;
}

long http_parse_response(const char *buf, size_t len, size_t max_head,
			 struct http_response *resp)
{
	size_t end = len < max_head ? len : max_head;
	size_t le, next, n, i;
	struct fields f;
	long r;
	int v;

	resp->n_headers = 0;
	resp->head_len = 0;
	next = next_line(buf, 0, end, &le);
	if (!next)
		goto more;
	/* HTTP/1.x SP 3DIGIT [SP reason] */
	if (le < 12 || buf[8] != ' ')
		return -502;
	v = parse_version(buf);
	if (v < 0)
		return -502;
	resp->minor = v;
	for (i = 9, resp->status = 0; i < 12; i++) {
		if (buf[i] < '0' || buf[i] > '9')
			return -502;
		resp->status = resp->status * 10 + (buf[i] - '0');
	}
	if (resp->status < 100 || resp->status > 599)
		return -502;
	n = le;
	if (n > 12 && buf[12] != ' ')
		return -502;
	for (i = 13; i < n; i++)
		if (!IS(buf[i], C_FIELD))
			return -502;
	fields_init(&f, resp->headers);
	r = parse_fields(buf, next, end, &f);
	resp->n_headers = f.n;
	if (r == P_MORE)
		goto more;
	if (r < 0)
		return -502;

	resp->framing.chunked = 0;
	if (f.te_seen) {
		if (f.content_length >= 0 || resp->minor == 0 || !f.te_codings ||
		    f.te_chunked > 1 || (f.te_chunked && !f.te_chunked_last))
			return -502;
		resp->framing.chunked = f.te_chunked_last;
	}
	resp->framing.content_length = f.content_length;
	resp->framing.keep_alive = keep_alive(resp->minor, &f);
	resp->framing.upgrade = f.conn_upgrade;
	resp->head_len = (size_t)r;
	return r;
more:
	return len >= max_head ? -502 : 0;
}

enum http_body http_request_body(const struct http_request *req)
{
	if (req->framing.chunked)
		return HTTP_BODY_CHUNKED;
	if (req->framing.content_length >= 0)
		return HTTP_BODY_LENGTH;
	return HTTP_BODY_NONE;
}

enum http_body http_response_body(const struct http_response *resp, int request_method_head)
{
	if (request_method_head || resp->status < 200 || resp->status == 204 ||
	    resp->status == 304)
		return HTTP_BODY_NONE;
	if (resp->framing.chunked)
		return HTTP_BODY_CHUNKED;
	if (resp->framing.content_length >= 0)
		return HTTP_BODY_LENGTH;
	return HTTP_BODY_UNTIL_CLOSE;
}

int http_is_hop_by_hop(const struct http_span *name, const struct http_header *h,
		       unsigned int n)
{
	static const char *const fixed[] = {
		"connection", "keep-alive", "proxy-connection", "te", "trailer",
		"transfer-encoding", "upgrade", "proxy-authenticate", "proxy-authorization",
	};
	unsigned int i;

	for (i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		if (http_span_ieq(name, fixed[i]))
			return 1;
	/* A client must not get a framing field stripped by naming it in
	 * Connection: the backend would then read the body as the next
	 * request. */
	if (IEQ_LIT(name->p, name->n, "content-length") || IEQ_LIT(name->p, name->n, "host"))
		return 0;
	for (i = 0; i < n; i++) {
		struct http_span el;
		size_t pos = 0;

		if (!IEQ_LIT(h[i].name.p, h[i].name.n, "connection"))
			continue;
		while (list_next(&h[i].value, &pos, &el))
			if (el.n && ieq(el.p, el.n, name->p, name->n))
				return 1;
	}
	return 0;
}

/* Chunked decoder states; a negative state is the error it stopped on. */
enum {
	CH_SIZE_START,     /* the first hex digit of a chunk-size */
	CH_SIZE,           /* more digits, or what follows them */
	CH_SIZE_BWS,       /* blanks after the size: ';' or CR next */
	CH_EXT,            /* chunk extensions, up to CR */
	CH_SIZE_LF,
	CH_DATA,
	CH_DATA_CR,
	CH_DATA_LF,
	CH_TRAILER_START,  /* a trailer field, or the final CRLF */
	CH_TRAILER_NAME,
	CH_TRAILER_VALUE,
	CH_TRAILER_LF,
	CH_END_LF,
	CH_DONE,
};

#define CH_MAX_SIZE (1ULL << 48)
#define CH_MAX_LINE 4096

void http_chunked_init(struct http_chunked *c, uint64_t max_total)
{
	memset(c, 0, sizeof(*c));
	c->state = CH_SIZE_START;
	c->max_total = max_total;
}

long http_chunked_feed(struct http_chunked *c, const char *buf, size_t len,
		       http_data_fn on_data, void *arg)
{
	size_t i = 0;

	if (c->state < 0)
		return c->state;
	if (c->done)
		return 0;
	while (i < len) {
		unsigned char ch = (unsigned char)buf[i];

		if (c->state == CH_DATA) {
			size_t n = len - i;

			if (n > c->remaining)
				n = (size_t)c->remaining;
			if (on_data)
				on_data(buf + i, n, arg);
			c->remaining -= n;
			c->total += n;
			i += n;
			if (!c->remaining)
				c->state = CH_DATA_CR;
			continue;
		}
		i++;
		/* Size and trailer lines are bounded (CRLF not counted): an
		 * endless extension must not hold a connection. */
		if (ch != '\r' && ch != '\n' && ++c->line_len > CH_MAX_LINE)
			goto bad;
		switch (c->state) {
		case CH_SIZE_START:
		case CH_SIZE:
			if (IS(ch, C_HEX)) {
				c->remaining = c->remaining * 16 +
					       (ch <= '9' ? ch - '0' : lower(ch) - 'a' + 10);
				if (c->remaining > CH_MAX_SIZE)
					goto bad;
				c->state = CH_SIZE;
				break;
			}
			if (c->state == CH_SIZE_START)
				goto bad;
			if (ch == '\r')
				c->state = CH_SIZE_LF;
			else if (IS_BLANK(ch))
				c->state = CH_SIZE_BWS;
			else if (ch == ';')
				c->state = CH_EXT;
			else
				goto bad;
			break;
		case CH_SIZE_BWS:
			if (ch == '\r')
				c->state = CH_SIZE_LF;
			else if (ch == ';')
				c->state = CH_EXT;
			else if (!IS_BLANK(ch))
				goto bad;
			break;
		case CH_EXT:
			if (ch == '\r')
				c->state = CH_SIZE_LF;
			else if (!IS(ch, C_FIELD))
				goto bad;  /* a bare LF or other control */
			break;
		case CH_SIZE_LF:
			if (ch != '\n')
				goto bad;
			c->line_len = 0;
			if (!c->remaining) {
				c->state = CH_TRAILER_START;
				break;
			}
			if (c->max_total && c->remaining > c->max_total - c->total) {
				c->state = -413;
				return -413;
			}
			c->state = CH_DATA;
			break;
		case CH_DATA_CR:
			if (ch != '\r')
				goto bad;
			c->state = CH_DATA_LF;
			break;
		case CH_DATA_LF:
			if (ch != '\n')
				goto bad;
			c->state = CH_SIZE_START;
			break;
		case CH_TRAILER_START:
			if (ch == '\r')
				c->state = CH_END_LF;
			else if (IS(ch, C_TCHAR))
				c->state = CH_TRAILER_NAME;
			else
				goto bad;  /* obs-fold, a bare LF */
			break;
		case CH_TRAILER_NAME:
			if (ch == ':')
				c->state = CH_TRAILER_VALUE;
			else if (!IS(ch, C_TCHAR))
				goto bad;
			break;
		case CH_TRAILER_VALUE:
			if (ch == '\r')
				c->state = CH_TRAILER_LF;
			else if (!IS(ch, C_FIELD))
				goto bad;
			break;
		case CH_TRAILER_LF:
			if (ch != '\n')
				goto bad;
			c->line_len = 0;
			c->state = CH_TRAILER_START;
			break;
		case CH_END_LF:
			if (ch != '\n')
				goto bad;
			c->state = CH_DONE;
			c->done = 1;
			return (long)i;
		default:
			goto bad;
		}
	}
	return (long)len;
bad:
	c->state = -400;
	return -400;
}
