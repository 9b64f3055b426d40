// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The directive reader (user/lib/directive.c) both configuration files use:
 * value kinds land at their offset with their range checked, a once-only
 * directive given twice names its first line, an unknown one lists the
 * known, a '\' continuation and a missing value are refused, and a DIR_FN
 * directive gets the context and the line.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <linux/types.h>
#include "directive.h"
#include "harness.h"

struct target {
	__u64 size;          /* declared as the kernel's type, as struct config does */
	uint32_t count;
	uint64_t wait_ms, bytes;
};

struct fn_seen {
	int calls;
	unsigned int line;
	int n;
};

static int fn_record(void *ctx, int n, char **w, unsigned int line, struct errbuf *e)
{
	struct fn_seen *s = ctx;

	(void)w;
	(void)e;
	s->calls++;
	s->line = line;
	s->n = n;
	return 0;
}

static const struct directive dirs[] = {
	{ "size", DIR_U64, NULL, offsetof(struct target, size), 1024, 1U << 26, 0 },
	{ "count", DIR_UINT, NULL, offsetof(struct target, count), 0, 1000, 0 },
	{ "wait", DIR_DURATION, NULL, offsetof(struct target, wait_ms), 1, 60000, 0 },
	{ "bytes", DIR_BYTES, NULL, offsetof(struct target, bytes), 1024, 1ULL << 30, 0 },
	{ "thing", DIR_FN, fn_record, 0, 0, 0, 1 },
};
static const struct directive_table table = { dirs, NELEM(dirs), "test.conf(5)" };

/* Applies the blank-separated line (at most 8 words). */
static int apply(struct directive_seen *seen, struct fn_seen *fs, struct target *t,
		 const char *line, unsigned int lineno, struct errbuf *e)
{
	char buf[128], *w[8], *save = NULL, *tok;
	int n = 0;

	snprintf(buf, sizeof(buf), "%s", line);
	for (tok = strtok_r(buf, " ", &save); tok && n < 8; tok = strtok_r(NULL, " ", &save))
		w[n++] = tok;
	return directive_apply(&table, seen, fs, t, n, w, lineno, e);
}

TEST(directive_values_land_at_their_offset)
{
	struct directive_seen seen = { { 0 } };
	struct fn_seen fs = { 0 };
	struct target t = { 0 };
	struct errbuf e;

	CHECK_EQ(apply(&seen, &fs, &t, "size 2k", 1, &e), 0, "size 2k");
	CHECK_EQ(t.size, 2000, "k is 1000");
	CHECK_EQ(apply(&seen, &fs, &t, "count 7", 2, &e), 0, "count");
	CHECK_EQ(t.count, 7, "count stored as 32 bits");
	CHECK_EQ(apply(&seen, &fs, &t, "wait 2s", 3, &e), 0, "wait");
	CHECK_EQ(t.wait_ms, 2000, "2s in ms");
	CHECK_EQ(apply(&seen, &fs, &t, "bytes 16Ki", 4, &e), 0, "bytes");
	CHECK_EQ(t.bytes, 16384, "Ki is 1024");
	CHECK_EQ(apply(&seen, &fs, &t, "thing a b", 5, &e), 0, "fn");
	CHECK_EQ(apply(&seen, &fs, &t, "thing c", 9, &e), 0, "a repeatable fn again");
	CHECK(fs.calls == 2 && fs.line == 9 && fs.n == 2, "fn got ctx, words and line: %d %u %d",
	      fs.calls, fs.line, fs.n);
}

TEST(directive_refusals_say_why)
{
	static const struct {
		const char *line, *want;
	} rows[] = {
		{ "size 10", "at least" },
		{ "count 1001", "count" },
		{ "wait 5", "wait" },
		{ "bytes 1Xi", "Ki, Mi, Gi" },
		{ "size", "expected one value, got 0" },
		{ "size 2k 3k", "expected one value, got 2" },
		{ "count 3 \\", "does not continue" },
		{ "nope 1", "unknown directive 'nope' (see test.conf(5): size, count, wait, bytes or thing)" },
	};
	size_t i;

	for (i = 0; i < NELEM(rows); i++) {
		struct directive_seen seen = { { 0 } };
		struct fn_seen fs = { 0 };
		struct target t = { 0 };
		struct errbuf e = { "" };

		CHECK(apply(&seen, &fs, &t, rows[i].line, 1, &e) < 0, "'%s' refused", rows[i].line);
		CHECK(strstr(e.msg, rows[i].want), "'%s': '%s' has '%s'", rows[i].line, e.msg,
		      rows[i].want);
		CHECK(!t.size && !t.count && !t.wait_ms && !t.bytes, "'%s' stored nothing",
		      rows[i].line);
	}
}

TEST(directive_once_only_names_the_first_line)
{
	struct directive_seen seen = { { 0 } };
	struct fn_seen fs = { 0 };
	struct target t = { 0 };
	struct errbuf e = { "" };

	CHECK_EQ(apply(&seen, &fs, &t, "count 3", 4, &e), 0, "first");
	CHECK(apply(&seen, &fs, &t, "count 5", 11, &e) == -EINVAL, "second refused");
	CHECK(strstr(e.msg, "count: given twice (first on line 4)"), "message: %s", e.msg);
	CHECK_EQ(t.count, 3, "the first value stays");
}
