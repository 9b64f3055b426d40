// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* buf.c - the growable byte buffer; see buf.h. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "buf.h"

#define BUF_MIN 4096

void buf_init(struct buf *b, size_t max)
{
	memset(b, 0, sizeof(*b));
	b->max = max;
}

static int fail(struct buf *b, int err)
{
	if (!b->err)
		b->err = err;
	return err;
}

int buf_reserve(struct buf *b, size_t n)
{
	size_t need, cap;
	char *p;

	if (b->len + n <= b->cap)
		return 0;
	if (b->off) {
		buf_compact(b);
		if (b->len + n <= b->cap)
			return 0;
	}
	need = b->len + n;
	if (need < n || (b->max && need > b->max))
		return fail(b, -E2BIG);
	cap = b->cap ? b->cap : BUF_MIN;
	while (cap < need)
		cap *= 2;
	if (b->max && cap > b->max)
		cap = b->max;
	p = realloc(b->p, cap);
	if (!p)
		return fail(b, -ENOMEM);
	b->p = p;
	b->cap = cap;
	return 0;
}

int buf_append(struct buf *b, const void *d, size_t n)
{
	int err = buf_reserve(b, n);

	if (err)
		return err;
	if (n)
		memcpy(b->p + b->len, d, n);
	b->len += n;
	return 0;
}

int buf_str(struct buf *b, const char *s)
{
	return buf_append(b, s, strlen(s));
}

/* Formats in place when the room there is enough (the usual case), else
 * makes room for the exact length and formats again. The NUL vsnprintf
 * writes needs a byte of room but is not data. */
int buf_printf(struct buf *b, const char *fmt, ...)
{
	size_t room = b->cap - b->len;
	va_list ap;
	int n, err;

	va_start(ap, fmt);
	n = vsnprintf(room ? b->p + b->len : NULL, room, fmt, ap);
	va_end(ap);
	if (n < 0)
		return fail(b, -EINVAL);
	if ((size_t)n < room) {
		b->len += (size_t)n;
		return 0;
	}
	err = buf_reserve(b, (size_t)n + 1);
	if (err)
		return err;
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

int buf_u64(struct buf *b, uint64_t v)
{
	char d[20], *p = d + sizeof(d);

	do {
		*--p = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	return buf_append(b, p, (size_t)(d + sizeof(d) - p));
}

void buf_consume(struct buf *b, size_t n)
{
	b->off += n;
	if (b->off >= b->len)
		b->off = b->len = 0;
}

void buf_compact(struct buf *b)
{
	if (!b->off)
		return;
	memmove(b->p, b->p + b->off, b->len - b->off);
	b->len -= b->off;
	b->off = 0;
}

void buf_reset(struct buf *b)
{
	b->off = b->len = 0;
	b->err = 0;
}

void buf_free(struct buf *b)
{
	free(b->p);
	b->p = NULL;
	b->off = b->len = b->cap = 0;
	b->err = 0;
}

const char *buf_cstr(struct buf *b)
{
	if (b->len == b->cap) {
		/* One byte past the ceiling for the NUL, which is not data. */
		size_t max = b->max;
		int err;

		if (max)
			b->max = max + 1;
		err = buf_reserve(b, 1);
		b->max = max;
		if (err)
			return NULL;
	}
	b->p[b->len] = '\0';
	return buf_data(b);
}
