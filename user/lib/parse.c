// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "parse.h"

int parse_u64(const char *s, __u64 min, __u64 max, int suffixes, const char *what,
	      __u64 *out, struct errbuf *e)
{
	unsigned long long v, mult = 1;
	const char *p = s;
	char *end;

	if (!s || !isdigit((unsigned char)*s))
		return errf(e, -EINVAL, "bad %s '%s': expected a number", what, s ? s : "");
	errno = 0;
	v = strtoull(p, &end, 10);
	if (errno == ERANGE)
		return errf(e, -ERANGE, "bad %s '%s': too large (max %llu)", what, s,
			    (unsigned long long)max);
	if (suffixes && *end && !end[1]) {
		switch (tolower((unsigned char)*end)) {
		case 'k': mult = 1000ULL; end++; break;
		case 'm': mult = 1000000ULL; end++; break;
		case 'g': mult = 1000000000ULL; end++; break;
		}
	}
	if (*end)
		return errf(e, -EINVAL, "bad %s '%s': expected a number%s", what, s,
			    suffixes ? " with an optional k, m or g" : "");
	if (v > max / mult || v * mult > max)
		return errf(e, -ERANGE, "bad %s '%s': too large (max %llu)", what, s,
			    (unsigned long long)max);
	v *= mult;
	if (v < min)
		return errf(e, -ERANGE, "bad %s '%s': must be at least %llu", what, s,
			    (unsigned long long)min);
	*out = v;
	return 0;
}

int split_words(char *line, char **words, int max_words)
{
	int n = 0;
	char *p = line;

	for (;;) {
		while (*p && isspace((unsigned char)*p))
			p++;
		if (!*p || *p == '#')
			break;
		if (n == max_words)
			return -E2BIG;
		words[n++] = p;
		while (*p && !isspace((unsigned char)*p))
			p++;
		if (*p)
			*p++ = '\0';
	}
	return n;
}

int parse_lines(FILE *f, parse_line_fn fn, void *arg, unsigned int *lineno, struct errbuf *e)
{
	char line[PARSE_MAX_LINE + 2]; /* the newline and the NUL */
	char *words[PARSE_MAX_WORDS];
	int err = 0;

	*lineno = 0;
	while (fgets(line, sizeof(line), f)) {
		int n;

		(*lineno)++;
		if (!strchr(line, '\n') && !feof(f))
			return errf(e, -EINVAL, "line longer than %d characters", PARSE_MAX_LINE);
		n = split_words(line, words, PARSE_MAX_WORDS);
		if (n == 0)
			continue;
		if (n < 0)
			return errf(e, -EINVAL, "more than %d words", PARSE_MAX_WORDS);
		err = fn(n, words, *lineno, arg, e);
		if (err)
			return err;
	}
	if (ferror(f))
		return errf(e, -EIO, "read error");
	return 0;
}
/* "100ms", "5s", "2m", "1h": the largest unit that divides it. */
const char *fmt_duration_ms(uint64_t ms, char *buf, size_t len)
{
	unsigned long long v = ms;

	if (v && v % (3600 * 1000ULL) == 0)
		snprintf(buf, len, "%lluh", v / (3600 * 1000ULL));
	else if (v && v % (60 * 1000ULL) == 0)
		snprintf(buf, len, "%llum", v / (60 * 1000ULL));
	else if (v && v % 1000ULL == 0)
		snprintf(buf, len, "%llus", v / 1000ULL);
	else
		snprintf(buf, len, "%llums", v);
	return buf;
}

/* A whole number with a unit: ms, s, m or h. A bare number is refused: is
 * "30" seconds or milliseconds? The file should say. */
int parse_duration_ms(const char *s, uint64_t min_ms, uint64_t max_ms, const char *what,
		      uint64_t *out, struct errbuf *e)
{
	unsigned long long v, mult;
	char lo[24], hi[24];
	char *end;

	if (!isdigit((unsigned char)*s))
		return errf(e, -EINVAL, "bad %s '%s': expected a duration such as 500ms, 6s or "
			    "1m", what, s);
	errno = 0;
	v = strtoull(s, &end, 10);
	if (!strcmp(end, "ms"))
		mult = 1;
	else if (!strcmp(end, "s"))
		mult = 1000ULL;
	else if (!strcmp(end, "m"))
		mult = 60 * 1000ULL;
	else if (!strcmp(end, "h"))
		mult = 3600 * 1000ULL;
	else if (!*end)
		return errf(e, -EINVAL, "bad %s '%s': give a unit (ms, s, m or h), e.g. %ss",
			    what, s, s);
	else
		return errf(e, -EINVAL, "bad %s '%s': expected a whole number with a unit: ms, "
			    "s, m or h (500ms, 6s, 1m)", what, s);
	if (errno == ERANGE || v > max_ms / mult)
		return errf(e, -ERANGE, "bad %s '%s': at most %s", what, s,
			    fmt_duration_ms(max_ms, hi, sizeof(hi)));
	v *= mult;
	if (v < min_ms)
		return errf(e, -ERANGE, "bad %s '%s': at least %s", what, s,
			    fmt_duration_ms(min_ms, lo, sizeof(lo)));
	*out = v;
	return 0;
}

/* Byte sizes: k, m, g are 1000^n as everywhere in sluice's files; Ki, Mi,
 * Gi are 1024^n for who wants powers of two (the defaults are 16Ki, 1Mi). */
int parse_bytes(const char *s, uint64_t min, uint64_t max, const char *what,
		uint64_t *out, struct errbuf *e)
{
	size_t n = strlen(s);
	char num[24];
	__u64 v;
	uint64_t mult = 1;

	if (n >= 3 && (s[n - 1] == 'i' || s[n - 1] == 'I')) {
		switch (tolower((unsigned char)s[n - 2])) {
		case 'k': mult = 1ULL << 10; break;
		case 'm': mult = 1ULL << 20; break;
		case 'g': mult = 1ULL << 30; break;
		default:
			return errf(e, -EINVAL, "bad %s '%s': expected a number with an optional "
				    "k, m, g (1000^n) or Ki, Mi, Gi (1024^n)", what, s);
		}
		if (n - 2 >= sizeof(num))
			return errf(e, -ERANGE, "bad %s '%s': too large (max %llu)", what, s,
				    (unsigned long long)max);
		memcpy(num, s, n - 2);
		num[n - 2] = '\0';
		if (parse_u64(num, 0, max / mult, 0, what, &v, e))
			return errf(e, -ERANGE, "bad %s '%s': expected a number, at most %llu "
				    "bytes", what, s, (unsigned long long)max);
		v *= mult;
	} else if (parse_u64(s, 0, max, 1, what, &v, e)) {
		return -EINVAL;
	}
	if (v < min)
		return errf(e, -ERANGE, "bad %s '%s': must be at least %llu bytes", what, s,
			    (unsigned long long)min);
	*out = v;
	return 0;
}
