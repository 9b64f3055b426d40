// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <errno.h>
#include <string.h>
#include "directive.h"
#include "parse.h"

int directive_find(const struct directive_table *t, const char *name)
{
	size_t i;

	for (i = 0; i < t->n; i++)
		if (!strcmp(t->d[i].name, name))
			return (int)i;
	return -1;
}

/* Edit distance of a and b, capped at 3 (only "close" matters here). */
static unsigned int distance(const char *a, const char *b)
{
	unsigned int row[DIRECTIVE_NAME_MAX + 1], i, j;
	size_t la = strlen(a), lb = strlen(b);

	if (la > DIRECTIVE_NAME_MAX || lb > DIRECTIVE_NAME_MAX)
		return 3;
	for (j = 0; j <= lb; j++)
		row[j] = j;
	for (i = 1; i <= la; i++) {
		unsigned int diag = row[0], best;

		row[0] = i;
		best = row[0];
		for (j = 1; j <= lb; j++) {
			unsigned int up = row[j], v = diag + (a[i - 1] != b[j - 1]);

			if (up + 1 < v)
				v = up + 1;
			if (row[j - 1] + 1 < v)
				v = row[j - 1] + 1;
			diag = up;
			row[j] = v;
			if (v < best)
				best = v;
		}
		if (best >= 3)
			return 3;
	}
	return row[lb] < 3 ? row[lb] : 3;
}

/* "unknown directive 'x' (expected a, b or c; see F)", or, when the list
 * would not fit the message, the closest name ("did you mean 'period'?"). */
static int unknown(const struct directive_table *t, const char *name, struct errbuf *e)
{
	char list[ERRBUF_LEN];
	size_t i, len = 0, best = t->n;
	unsigned int best_d = 3;

	list[0] = '\0';
	for (i = 0; i < t->n && len < sizeof(list); i++) {
		int w = snprintf(list + len, sizeof(list) - len, "%s%s",
				 !i ? "" : i + 1 == t->n ? " or " : ", ", t->d[i].name);

		if (w < 0)
			break;
		len += (size_t)w;
	}
	if (strlen(name) + len + strlen(t->what) + 40 < ERRBUF_LEN)
		return errf(e, -EINVAL, "unknown directive '%s' (see %s: %s)", name, t->what,
			    list);
	for (i = 0; i < t->n; i++) {
		unsigned int d = distance(name, t->d[i].name);

		if (d < best_d) {
			best_d = d;
			best = i;
		}
	}
	if (best < t->n)
		return errf(e, -EINVAL, "unknown directive '%s' (did you mean '%s'? %s lists "
			    "them all)", name, t->d[best].name, t->what);
	return errf(e, -EINVAL, "unknown directive '%s' (%s lists the %zu directives)", name,
		    t->what, t->n);
}

int directive_apply(const struct directive_table *t, struct directive_seen *seen,
		    void *ctx, void *target, int n, char **w, unsigned int line,
		    struct errbuf *e)
{
	const struct directive *d;
	char *field;
	uint64_t v64 = 0;
	unsigned int u;
	__u64 v = 0;
	int i = directive_find(t, w[0]);

	if (i < 0 || i >= DIRECTIVE_MAX)
		return unknown(t, w[0], e);
	d = &t->d[i];
	if (!strcmp(w[n - 1], "\\"))
		return errf(e, -EINVAL, "%s: a line does not continue on the next ('\\'): write "
			    "it on one line", d->name);
	if (!d->repeat && seen->line[i])
		return errf(e, -EINVAL, "%s: given twice (first on line %u)", d->name,
			    seen->line[i]);
	if (!seen->line[i])
		seen->line[i] = line;
	if (d->kind == DIR_FN)
		return d->fn(ctx, n, w, line, e);
	if (n != 2)
		return errf(e, -EINVAL, "%s: expected one value, got %d", d->name, n - 1);
	field = (char *)target + d->off;
	switch (d->kind) {
	/* Stored with memcpy: the field may be declared __u64 (unsigned long
	 * long) or uint32_t, which the compiler may not alias with ours. */
	case DIR_UINT:
		if (parse_u64(w[1], d->min, d->max, 1, d->name, &v, e))
			return -EINVAL;
		u = (unsigned int)v;
		memcpy(field, &u, sizeof(u));
		return 0;
	case DIR_U64:
		if (parse_u64(w[1], d->min, d->max, 1, d->name, &v, e))
			return -EINVAL;
		break;
	case DIR_DURATION:
		if (parse_duration_ms(w[1], d->min, d->max, d->name, &v64, e))
			return -EINVAL;
		v = v64;
		break;
	case DIR_BYTES:
		if (parse_bytes(w[1], d->min, d->max, d->name, &v64, e))
			return -EINVAL;
		v = v64;
		break;
	case DIR_FN:
		return -EINVAL;
	}
	v64 = v;
	memcpy(field, &v64, sizeof(v64));
	return 0;
}
