/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * buf.h - the one growable byte buffer: sockets' input and output, request
 * and response bodies, and rendered text (the metrics).
 *
 * The data lives in [off, len) of p: appends go at len, a reader consumes
 * from off, and room is made by moving the data to the front before the
 * memory grows. A ceiling `max` (0: none) bounds len - off; an append that
 * would pass it fails with -E2BIG and changes nothing.
 *
 * `err` keeps the first error an append returned (-E2BIG, -ENOMEM) until
 * buf_reset or the caller clears it, so a run of appends can be checked
 * once at its end. It does not stop later appends that fit.
 *
 * A zeroed struct buf is an empty buffer without a ceiling; nothing is
 * allocated until the first append. p may also point at caller memory
 * (a stack array) with cap = max = its size: it then never grows and is
 * never freed.
 */
#ifndef SLUICE_BUF_H
#define SLUICE_BUF_H

#include <stddef.h>
#include <stdint.h>

struct buf {
	char *p;
	size_t off, len, cap, max;
	int err;
};

/* Empty, with the ceiling max (0: none). Allocates nothing. */
void buf_init(struct buf *b, size_t max);
/* Room for n more bytes at len (after moving the data to the front, or by
 * growing): 0, -E2BIG past max, -ENOMEM. */
int buf_reserve(struct buf *b, size_t n);
int buf_append(struct buf *b, const void *d, size_t n);
int buf_str(struct buf *b, const char *s);
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int buf_u64(struct buf *b, uint64_t v);                 /* in decimal */
void buf_consume(struct buf *b, size_t n);              /* n bytes from off */
void buf_compact(struct buf *b);                        /* the data to the front */
void buf_reset(struct buf *b);                          /* empty, err cleared, memory kept */
void buf_free(struct buf *b);                           /* memory freed; max kept */
/* The data as a C string: a NUL is written after it (not counted in len),
 * growing the buffer by a byte if it must. NULL if there is no room. */
const char *buf_cstr(struct buf *b);

static inline size_t buf_used(const struct buf *b) { return b->len - b->off; }
static inline char *buf_data(const struct buf *b) { return b->p + b->off; }

#endif
