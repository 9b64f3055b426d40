/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * harness.h - a minimal test runner that counts checks.
 *
 * TEST(name) { ... CHECK(cond, "fmt", ...); ... }
 * A test that makes no check fails: an assertion that cannot run is a test
 * that tests nothing. Output follows tests/run.sh: "ok NAME" / "not ok NAME: why".
 *
 * Two groups, so a developer without root can run the first:
 *   pure  plain C (parsers, limiters, the loop, the store against a private
 *         redis-server): needs no root. The default.
 *   bpf   loads BPF programs (tests/lib/fixture.h, loader_open), creates
 *         maps, pins or namespaces: needs root.
 * A file whose tests are in the bpf group says so on its first line after
 * the licence, before any #include:
 *   #define TEST_GROUP "bpf"
 * `unit-tests --group pure` (or bpf) runs one group; tests/run.sh runs the
 * bpf group only as root.
 */
#ifndef SLUICE_TEST_HARNESS_H
#define SLUICE_TEST_HARNESS_H

#include <stdio.h>
#include "util.h"  /* NELEM, monotonic_ns */

#include "check.h" /* CHECK */

#ifndef TEST_GROUP
#define TEST_GROUP "pure"
#endif

typedef void (*test_fn)(void);
void harness_register(const char *name, test_fn fn, const char *group);

#define TEST(name)                                                          \
	static void name(void);                                             \
	__attribute__((constructor)) static void reg_##name(void)           \
	{                                                                   \
		harness_register(#name, name, TEST_GROUP);                  \
	}                                                                   \
	static void name(void)

/* a and b are evaluated once each, so CHECK_EQ(f(), 3, ...) calls f once. */
int harness_check_eq(unsigned long long a, unsigned long long b, const char *file, int line,
		     const char *expr, const char *what);
#define CHECK_EQ(a, b, what)                                                            \
	harness_check_eq((unsigned long long)(a), (unsigned long long)(b), __FILE__, __LINE__, \
			 #a " == " #b, what)

#endif
