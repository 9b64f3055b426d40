/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* parse.h - numbers and words from the command line and command files. */
#ifndef SLUICE_PARSE_H
#define SLUICE_PARSE_H

#include <linux/types.h>
#include "log.h"

/* Decimal in [min, max]; with `suffixes`, k/m/g multiply by 1000^n. */
int parse_u64(const char *s, __u64 min, __u64 max, int suffixes, const char *what,
	      __u64 *out, struct errbuf *e);
/* Splits a line in place at blanks, stopping at '#'. Returns the word count
 * or -E2BIG past max_words. */
int split_words(char *line, char **words, int max_words);

#endif
