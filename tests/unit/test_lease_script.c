// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * lease.lua on a real Redis: the sum of live leases never exceeds G
 * (grants only from what others do not hold), max-min fair targets with
 * the spare split evenly, floors, shares following demand within two
 * renewals, expired gateways forgotten, learning after a fresh epoch, a
 * TTL on the key, and bad arguments refused without a write.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <hiredis/hiredis.h>
#include "harness.h"
#include "redis_fixture.h"
#include "scripts.h"

#define KEY "sluice:{rule:api}:alloc"

struct grant {
	long long n, lease_ms, g;
	int err;
	char msg[160];
};

/* One pps-only renewal: returns the grant (n live, lease, pps grant). */
static struct grant lease(redisContext *c, const char *me, long long G, long long want,
			  long long held, long long lease_ms, long long born)
{
	struct grant out = { 0 };
	char g[24], w[24], h[24], l[24], b[24];
	redisReply *r;

	snprintf(g, sizeof(g), "%lld", G);
	snprintf(w, sizeof(w), "%lld", want);
	snprintf(h, sizeof(h), "%lld", held);
	snprintf(l, sizeof(l), "%lld", lease_ms);
	snprintf(b, sizeof(b), "%lld", born);
	r = redisCommand(c, "EVAL %s 1 %s %s %s %s 1 %s %s %s", store_scripts[SCRIPT_LEASE].body,
			 KEY, b, me, l, g, w, h);
	if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 3) {
		out.err = 1;
		snprintf(out.msg, sizeof(out.msg), "%s", r && r->type == REDIS_REPLY_ERROR ? r->str
							 : "bad reply");
	} else {
		out.n = r->element[0]->integer;
		out.lease_ms = r->element[1]->integer;
		out.g = r->element[2]->integer;
	}
	freeReplyObject(r);
	return out;
}

static long long server_ms(redisContext *c)
{
	redisReply *r = redisCommand(c, "TIME");
	long long ms = 0;

	if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2)
		ms = atoll(r->element[0]->str) * 1000 + atoll(r->element[1]->str) / 1000;
	freeReplyObject(r);
	return ms;
}

static void del(redisContext *c)
{
	freeReplyObject(redisCommand(c, "DEL " KEY));
}

/* Sum of the grants recorded in the hash (field 3 of each value). */
static long long sum_recorded(redisContext *c)
{
	redisReply *r = redisCommand(c, "HVALS " KEY);
	long long sum = 0, exp, w, g;

	for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i < r->elements; i++)
		if (sscanf(r->element[i]->str, "%lld %lld %lld", &exp, &w, &g) == 3)
			sum += g;
	freeReplyObject(r);
	return sum;
}

TEST(lease_script_grants_and_fairness)
{
	redisContext *c = test_redis_connect();
	long long old = 1, G = 30000;
	struct grant a, b, x;
	redisReply *r;

	if (!CHECK(c != NULL, "redis: %s", test_redis_error()))
		return;
	del(c);
	/* alone: everything but a newcomer's reserve (G / 16 / 2) */
	a = lease(c, "gw-a", G, 100, 0, 3000, old);
	if (!CHECK(!a.err, "%s", a.msg))
		goto out;
	CHECK_EQ(a.n, 1, "one live gateway");
	CHECK_EQ(a.g, G - G / 32, "alone: G minus the reserve");
	/* a second arrives: only what a does not hold (less a's floor is
	 * already inside a's grant, less a reserve) */
	b = lease(c, "gw-b", G, 100, 0, 3000, old);
	CHECK_EQ(b.n, 2, "two live gateways");
	CHECK(b.g >= 0 && a.g + b.g <= G, "never above G: %lld + %lld", a.g, b.g);
	CHECK_EQ(sum_recorded(c), a.g + b.g, "the hash holds both grants");
	/* a renews with a small want: even split of the spare, from headroom */
	a = lease(c, "gw-a", G, 100, a.g, 3000, old);
	b = lease(c, "gw-b", G, 100, b.g, 3000, old);
	a = lease(c, "gw-a", G, 100, a.g, 3000, old);
	CHECK(a.g + b.g <= G, "sum %lld <= G", a.g + b.g);
	CHECK(a.g > G / 2 - G / 20 && b.g > G / 2 - G / 20, "even split of the spare: %lld, %lld",
	      a.g, b.g);

	/* demand moves to b: b's want 25000, a's 1000. Within two renewals
	 * each (a then b, twice) b holds its fair part and the sum stays <= G */
	for (int round = 0; round < 2; round++) {
		a = lease(c, "gw-a", G, 1000, a.g, 3000, old);
		CHECK(a.g + b.g <= G, "round %d after a: %lld + %lld", round, a.g, b.g);
		b = lease(c, "gw-b", G, 25000, b.g, 3000, old);
		CHECK(a.g + b.g <= G, "round %d after b: %lld + %lld", round, a.g, b.g);
	}
	CHECK(b.g >= 25000 && a.g >= 1000, "shares followed demand in two renewals: a %lld b %lld",
	      a.g, b.g);
	/* both want more than G: max-min fair halves, floors respected */
	for (int round = 0; round < 3; round++) {
		a = lease(c, "gw-a", G, 40000, a.g, 3000, old);
		b = lease(c, "gw-b", G, 40000, b.g, 3000, old);
		CHECK(a.g + b.g <= G, "saturated: %lld + %lld <= G", a.g, b.g);
	}
	CHECK(a.g > G / 2 - G / 16 && b.g > G / 2 - G / 16, "saturated: fair halves %lld %lld",
	      a.g, b.g);
	/* an idle third still gets at least its floor once the others renew */
	x = lease(c, "gw-c", G, 1, 0, 3000, old);
	a = lease(c, "gw-a", G, 40000, a.g, 3000, old);
	b = lease(c, "gw-b", G, 40000, b.g, 3000, old);
	x = lease(c, "gw-c", G, 1, x.g, 3000, old);
	CHECK(x.g >= G / (16 * 3), "newcomer's floor: %lld", x.g);
	CHECK(a.g + b.g + x.g <= G, "three: %lld <= G", a.g + b.g + x.g);
	CHECK_EQ(sum_recorded(c), a.g + b.g + x.g, "recorded sum");

	r = redisCommand(c, "PTTL " KEY);
	CHECK(r && r->type == REDIS_REPLY_INTEGER && r->integer > 0 && r->integer <= 9000,
	      "the key has a TTL of 3 leases: %lld", r ? r->integer : -9);
	freeReplyObject(r);
out:
	redisFree(c);
}

TEST(lease_script_expiry_learning_and_bad_input)
{
	redisContext *c = test_redis_connect();
	long long G = 10000;
	struct grant a, b;
	redisReply *r;

	if (!CHECK(c != NULL, "redis: %s", test_redis_error()))
		return;
	del(c);
	/* a holds almost everything with a short lease; once it expires, b
	 * may take it */
	a = lease(c, "gw-a", G, 20000, 0, 100, 1);
	b = lease(c, "gw-b", G, 20000, 0, 100, 1);
	CHECK(a.g + b.g <= G && b.g < G / 2, "b waits for a: %lld %lld", a.g, b.g);
	usleep(150 * 1000);
	b = lease(c, "gw-b", G, 20000, b.g, 100, 1);
	CHECK_EQ(b.n, 1, "a expired: forgotten");
	CHECK_EQ(b.g, G - G / 32, "and its share is free");

	/* learning: a store whose epoch is younger than a lease grants no
	 * more than a gateway already enforces (others may still enforce
	 * leases the store forgot) */
	del(c);
	b = lease(c, "gw-b", G, 20000, 2000, 3000, server_ms(c));
	CHECK_EQ(b.g, 2000, "learning: held, not more");
	b = lease(c, "gw-b", G, 20000, 0, 3000, server_ms(c));
	CHECK_EQ(b.g, G / 16, "learning with nothing held: the floor");

	/* bad arguments: an error, nothing written */
	del(c);
	r = redisCommand(c, "EVAL %s 1 %s 1 gw-a 3000 1 abc 10 0", store_scripts[SCRIPT_LEASE].body,
			 KEY);
	CHECK(r && r->type == REDIS_REPLY_ERROR && strstr(r->str, "G"), "non-number G: %s",
	      r && r->str ? r->str : "?");
	freeReplyObject(r);
	r = redisCommand(c, "EVAL %s 1 %s 1 gw-a 3000 2 10 10 0", store_scripts[SCRIPT_LEASE].body,
			 KEY);
	CHECK(r && r->type == REDIS_REPLY_ERROR, "wrong count: %s", r && r->str ? r->str : "?");
	freeReplyObject(r);
	r = redisCommand(c, "EXISTS " KEY);
	CHECK(r && r->type == REDIS_REPLY_INTEGER && r->integer == 0, "nothing written");
	freeReplyObject(r);
	redisFree(c);
}
