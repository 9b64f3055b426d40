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
} tests[MAX_TESTS];
static int ntests;
static int cur_checks, cur_failed;
static char cur_why[512];

void harness_register(const char *name, test_fn fn)
{
	if (ntests < MAX_TESTS) {
		tests[ntests].name = name;
		tests[ntests].fn = fn;
		ntests++;
	}
}

int harness_check(int cond, const char *file, int line, const char *expr, const char *fmt, ...)
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
	return harness_check(a == b, file, line, expr, "%s: got %llu, want %llu", what, a, b);
}

/* Usage: unit-tests [SUBSTRING]: run the tests whose name contains it. */
int main(int argc, char **argv)
{
	int i, failed = 0, ran = 0;

	log_init("unit-tests", LOG_ERR);
	for (i = 0; i < ntests; i++) {
		if (argc > 1 && !strstr(tests[i].name, argv[1]))
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
	printf("# unit: %d run, %d failed\n", ran, failed);
	return failed ? 1 : 0;
}
