/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * directive.h - the reader of sluiced's and sluice-l7's configuration files:
 * each file's directives are a table, and one function applies a line to it.
 *
 * A directive either stores one value at an offset of the file's target
 * struct (a number, a duration, a byte size: checked against [min, max]), or
 * calls its own function with the line's words. The reader refuses, with the
 * same words for both files, an unknown name (listing the known ones, or
 * naming the closest when they are too many to list), a once-only directive
 * given twice (naming the first line), a line that tries to continue on the
 * next ('\'), and a value directive without exactly one
 * value.
 */
#ifndef SLUICE_DIRECTIVE_H
#define SLUICE_DIRECTIVE_H

#include <stddef.h>
#include <stdint.h>
#include "log.h"

enum directive_kind {
	DIR_FN = 0,     /* fn(ctx, n, words, line, e) */
	DIR_UINT,       /* unsigned int: decimal, k/m/g multiply by 1000^n */
	DIR_U64,        /* uint64_t, the same */
	DIR_DURATION,   /* uint64_t milliseconds: 100ms, 5s, 2m, 1h */
	DIR_BYTES,      /* uint64_t bytes: k/m/g (1000^n), Ki/Mi/Gi (1024^n) */
};

struct directive {
	const char *name;
	enum directive_kind kind;
	int (*fn)(void *ctx, int n, char **w, unsigned int line, struct errbuf *e);
	size_t off;             /* value kinds: where in the target struct */
	uint64_t min, max;      /* value kinds: the accepted range */
	int repeat;             /* may appear on several lines */
};

struct directive_table {
	const struct directive *d;
	size_t n;
	const char *what;       /* "sluiced.conf(5)": named in the unknown-name error */
};

#define DIRECTIVE_MAX 64
#define DIRECTIVE_NAME_MAX 31     /* longer names are never "close" to one */

/* Per file being read: the first line of each directive, by index. */
struct directive_seen {
	unsigned int line[DIRECTIVE_MAX];
};

/* The index of name in t, or -1. */
int directive_find(const struct directive_table *t, const char *name);

/* Applies the line w[0..n) (n >= 1) at line number `line`: ctx goes to a
 * DIR_FN directive's function, target is the struct value kinds write to.
 * 0, or a negative errno with the reason in e. */
int directive_apply(const struct directive_table *t, struct directive_seen *seen,
		    void *ctx, void *target, int n, char **w, unsigned int line,
		    struct errbuf *e);

#endif
