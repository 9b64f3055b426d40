// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "harness.h"
#include "log.h"

#define MAX_TESTS 512

static struct {
	const char *name;
	test_fn fn;
	const char *group;
} tests[MAX_TESTS];
static int ntests;
static int cur_checks, cur_failed;
static char cur_why[512];

void harness_register(const char *name, test_fn fn, const char *group)
{
	if (ntests < MAX_TESTS) {
		tests[ntests].name = name;
		tests[ntests].fn = fn;
		tests[ntests].group = group;
		ntests++;
	}
}

int check_report(int cond, const char *file, int line, const char *expr, const char *fmt, ...)
{
	va_list ap;
	char msg[256];

	cur_checks++;
	if (cond)
		return 1;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (!cur_failed)
		snprintf(cur_why, sizeof(cur_why), "%s:%d: %s (%s)", file, line, msg, expr);
	fprintf(stderr, "  check failed: %s:%d: %s (%s)\n", file, line, msg, expr);
	cur_failed++;
	return 0;
}

int harness_check_eq(unsigned long long a, unsigned long long b, const char *file, int line,
		     const char *expr, const char *what)
{
	return check_report(a == b, file, line, expr, "%s: got %llu, want %llu", what, a, b);
}

static const char usage[] =
	"Usage: unit-tests [--group pure|bpf] [SUBSTRING]\n"
	"Runs the tests whose name contains SUBSTRING (default all), of one group\n"
	"(default both): pure needs no root, bpf loads BPF programs (see harness.h).\n";

int main(int argc, char **argv)
{
	const char *group = NULL, *filter = NULL;
	int i, failed = 0, ran = 0;

	log_init("unit-tests", LOG_ERR);
	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--group") && i + 1 < argc &&
		    (!strcmp(argv[i + 1], "pure") || !strcmp(argv[i + 1], "bpf"))) {
			group = argv[++i];
		} else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			fputs(usage, stdout);
			return 0;
		} else if (argv[i][0] != '-' && !filter) {
			filter = argv[i];
		} else {
			fputs(usage, stderr);
			return 2;
		}
	}
	for (i = 0; i < ntests; i++) {
		if ((filter && !strstr(tests[i].name, filter)) ||
		    (group && strcmp(tests[i].group, group)))
			continue;
		cur_checks = cur_failed = 0;
		cur_why[0] = '\0';
		tests[i].fn();
		ran++;
		if (!cur_checks) {
			printf("not ok %s: made no checks\n", tests[i].name);
			failed++;
		} else if (cur_failed) {
			printf("not ok %s: %s\n", tests[i].name, cur_why);
			failed++;
		} else {
			printf("ok %s (%d checks)\n", tests[i].name, cur_checks);
		}
		fflush(stdout);
	}
	printf("# unit%s%s: %d run, %d failed\n", group ? " " : "", group ? group : "", ran,
	       failed);
	return failed ? 1 : 0;
}
