/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * harness.h - a minimal test runner that counts checks.
 *
 * TEST(name) { ... CHECK(cond, "fmt", ...); ... }
 * A test that makes no check fails: an assertion that cannot run is a test
 * that tests nothing. Output follows tests/run.sh: "ok NAME" / "not ok NAME: why".
 */
#ifndef SLUICE_TEST_HARNESS_H
#define SLUICE_TEST_HARNESS_H

#include <stdio.h>
#include "util.h"  /* NELEM, monotonic_ns */

typedef void (*test_fn)(void);
void harness_register(const char *name, test_fn fn);
/* Returns cond, so a test can stop early: if (!CHECK(...)) return; */
int harness_check(int cond, const char *file, int line, const char *expr, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

#define TEST(name)                                                          \
	static void name(void);                                             \
	__attribute__((constructor)) static void reg_##name(void)           \
	{                                                                   \
		harness_register(#name, name);                              \
	}                                                                   \
	static void name(void)

#define CHECK(cond, ...) harness_check(!!(cond), __FILE__, __LINE__, #cond, __VA_ARGS__)
/* a and b are evaluated once each, so CHECK_EQ(f(), 3, ...) calls f once. */
int harness_check_eq(unsigned long long a, unsigned long long b, const char *file, int line,
		     const char *expr, const char *what);
#define CHECK_EQ(a, b, what)                                                            \
	harness_check_eq((unsigned long long)(a), (unsigned long long)(b), __FILE__, __LINE__, \
			 #a " == " #b, what)

#endif
