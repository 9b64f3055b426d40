/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* parse.h - numbers and words from the command line and command files. */
#ifndef SLUICE_PARSE_H
#define SLUICE_PARSE_H

#include <stdint.h>
#include <stdio.h>
#include <linux/types.h>
#include "log.h"

/* Decimal in [min, max]; with `suffixes`, k/m/g multiply by 1000^n. */
int parse_u64(const char *s, __u64 min, __u64 max, int suffixes, const char *what,
	      __u64 *out, struct errbuf *e);
/* Splits a line in place at blanks, stopping at '#'. Returns the word count
 * or -E2BIG past max_words. */
int split_words(char *line, char **words, int max_words);

/* Command files (`sluice -f`, sluiced's config): one command per line, at
 * most PARSE_MAX_LINE characters and PARSE_MAX_WORDS words, '#' comments.
 * Calls fn with the words of every non-empty line; stops at the first error
 * (fn's, an overlong line, or a read error) and returns it, with *lineno the
 * line it is about and the reason in e. */
#define PARSE_MAX_LINE 4095
#define PARSE_MAX_WORDS 64
typedef int (*parse_line_fn)(int n, char **words, unsigned int lineno, void *arg,
			     struct errbuf *e);
int parse_lines(FILE *f, parse_line_fn fn, void *arg, unsigned int *lineno, struct errbuf *e);

/* A whole number with a unit, ms, s, m or h, in [min_ms, max_ms]. A bare
 * number is refused: is "30" seconds or milliseconds? The file should say. */
int parse_duration_ms(const char *s, uint64_t min_ms, uint64_t max_ms, const char *what,
		      uint64_t *out, struct errbuf *e);
/* A byte size in [min, max]: k, m, g are 1000^n, Ki, Mi, Gi 1024^n. */
int parse_bytes(const char *s, uint64_t min, uint64_t max, const char *what,
		uint64_t *out, struct errbuf *e);
/* "100ms", "5s", "2m", "1h": the largest unit that divides it. */
const char *fmt_duration_ms(uint64_t ms, char *buf, size_t len);

#endif
