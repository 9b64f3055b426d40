/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * check.h - CHECK(cond, "fmt", ...), the one way tests/lib reports a failed
 * expectation. Whoever links tests/lib defines check_report: the unit-test
 * runner counts checks and fails the test (tests/unit/harness.c);
 * sluice-bench prints the failure and carries on to its own error path
 * (bench/bench.c), since every fx_* call that can fail also returns an error.
 */
#ifndef SLUICE_TEST_CHECK_H
#define SLUICE_TEST_CHECK_H

/* Returns cond, so a caller can stop early: if (!CHECK(...)) return; */
int check_report(int cond, const char *file, int line, const char *expr, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

#define CHECK(cond, ...) check_report(!!(cond), __FILE__, __LINE__, #cond, __VA_ARGS__)

#endif
