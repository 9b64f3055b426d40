// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The one buffer (user/lib/buf.c): appends grow it up to its ceiling and no
 * further, a refused append changes nothing and is remembered in err,
 * consuming and compacting keep the data, printf formats past its first
 * guess, and the C-string view is terminated without counting the NUL.
 */
#include <errno.h>
#include <string.h>
#include "buf.h"
#include "harness.h"

TEST(buf_append_consume_compact)
{
	struct buf b = { 0 };
	char big[10000];
	size_t i;

	CHECK_EQ(buf_used(&b), 0, "a zeroed buf is empty");
	CHECK_EQ(buf_str(&b, "hello "), 0, "str");
	CHECK_EQ(buf_u64(&b, 18446744073709551615ULL), 0, "u64");
	CHECK_EQ(buf_u64(&b, 0), 0, "u64 0");
	CHECK(buf_used(&b) == 27 && !memcmp(buf_data(&b), "hello 184467440737095516150", 27),
	      "contents '%.*s'", (int)buf_used(&b), buf_data(&b));
	buf_consume(&b, 6);
	CHECK(buf_used(&b) == 21 && b.off == 6, "consumed: off %zu", b.off);
	buf_compact(&b);
	CHECK(b.off == 0 && buf_used(&b) == 21 && !memcmp(b.p, "184467440737095516150", 21),
	      "compacted");
	buf_consume(&b, 21);
	CHECK(b.off == 0 && b.len == 0, "consumed to the end: rewound");
	for (i = 0; i < sizeof(big); i++)
		big[i] = (char)('a' + i % 26);
	CHECK_EQ(buf_append(&b, big, sizeof(big)), 0, "grows past its first size");
	CHECK(buf_used(&b) == sizeof(big) && !memcmp(buf_data(&b), big, sizeof(big)), "big");
	buf_free(&b);
	CHECK(!b.p && !b.len && !b.cap, "freed");
}

TEST(buf_ceiling_and_err)
{
	struct buf b;

	buf_init(&b, 16);
	CHECK_EQ(buf_append(&b, "0123456789", 10), 0, "fits");
	CHECK_EQ(buf_append(&b, "0123456789", 10), (unsigned long long)-E2BIG, "past max");
	CHECK(b.len == 10 && b.err == -E2BIG, "a refused append changes nothing: len %zu err %d",
	      b.len, b.err);
	CHECK_EQ(buf_append(&b, "abcdef", 6), 0, "what still fits is taken (err stays)");
	CHECK(b.len == 16 && b.cap <= 16 && b.err == -E2BIG, "at the ceiling: len %zu cap %zu",
	      b.len, b.cap);
	buf_consume(&b, 8);
	CHECK_EQ(buf_append(&b, "XYZ", 3), 0, "room made by moving the data to the front");
	CHECK(b.off == 0 && buf_used(&b) == 11 && !memcmp(buf_data(&b), "89abcdefXYZ", 11),
	      "moved '%.*s'", (int)buf_used(&b), buf_data(&b));
	buf_reset(&b);
	CHECK(!b.err && !buf_used(&b) && b.max == 16, "reset keeps the ceiling");
	buf_free(&b);
}

TEST(buf_printf_and_cstr)
{
	char stack[8];
	struct buf s = { .p = stack, .cap = sizeof(stack), .max = sizeof(stack) };
	struct buf b = { 0 };
	char want[600];
	int i;

	CHECK_EQ(buf_printf(&b, "%d-%s", 42, "x"), 0, "printf into nothing");
	CHECK(buf_cstr(&b) && !strcmp(buf_cstr(&b), "42-x") && b.len == 4, "cstr '%s'",
	      buf_cstr(&b) ? buf_cstr(&b) : "(null)");
	for (i = 0; i < 599; i++)
		want[i] = (char)('A' + i % 26);
	want[599] = '\0';
	buf_reset(&b);
	CHECK_EQ(buf_printf(&b, "%s", want), 0, "printf past the first guess");
	CHECK(b.len == 599 && !strcmp(buf_cstr(&b), want), "long printf");
	buf_free(&b);

	/* Caller memory: bounded by its size, never grown. */
	CHECK_EQ(buf_printf(&s, "%s", "1234567"), 0, "fits with its NUL");
	CHECK_EQ(buf_printf(&s, "%s", "8"), (unsigned long long)-E2BIG, "full");
	CHECK(s.p == stack && s.len == 7 && !memcmp(stack, "1234567", 7), "stack buffer kept");

	/* A ceiling that the data fills exactly still has a C string. */
	buf_init(&b, 4);
	CHECK_EQ(buf_append(&b, "abcd", 4), 0, "exactly max");
	CHECK(buf_cstr(&b) && !strcmp(buf_cstr(&b), "abcd") && b.len == 4, "cstr at the ceiling");
	buf_free(&b);
}
