// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * ban_publish.lua and ban_sync.lua on a real Redis: a ban published is
 * synced with its remaining time and origin; a later expiry wins and bumps
 * the sequence, an earlier one changes nothing; sync pages by max_n and
 * resumes from next_seq; expired bans are dropped; a since_seq beyond the
 * counter (keys gone, store restarted) starts again from 0; every key has
 * a TTL; bad arguments are refused without a write.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <hiredis/hiredis.h>
#include "harness.h"
#include "redis_fixture.h"
#include "scripts.h"

static char keys[BAN_KEYS][STORE_BAN_KEY_LEN];

static void del_all(redisContext *c)
{
	for (int i = 0; i < BAN_KEYS; i++)
		freeReplyObject(redisCommand(c, "DEL %s", keys[i]));
}

static redisReply *eval(redisContext *c, unsigned int script, int argc, const char **argv)
{
	const char *a[4 + BAN_KEYS + 8];
	int n = 0, i;

	a[n++] = "EVAL";
	a[n++] = store_scripts[script].body;
	a[n++] = "4";
	for (i = 0; i < BAN_KEYS; i++)
		a[n++] = keys[i];
	for (i = 0; i < argc; i++)
		a[n++] = argv[i];
	return redisCommandArgv(c, n, a, NULL);
}

/* {changed, seq, remaining} or -1s on an error reply */
static void publish(redisContext *c, const char *pfx, const char *ttl, const char *by,
		    const char *where, long long out[3])
{
	const char *args[] = { pfx, ttl, by, where };
	redisReply *r = eval(c, SCRIPT_BAN_PUBLISH, 4, args);

	out[0] = out[1] = out[2] = -1;
	if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 3)
		for (int i = 0; i < 3; i++)
			out[i] = r->element[i]->integer;
	freeReplyObject(r);
}

static redisReply *sync_(redisContext *c, const char *since, const char *max_n)
{
	const char *args[] = { since, max_n };

	return eval(c, SCRIPT_BAN_SYNC, 2, args);
}

static int sync_ok(const redisReply *r)
{
	return r && r->type == REDIS_REPLY_ARRAY && r->elements >= BAN_SYNC_HEAD &&
	       (r->elements - BAN_SYNC_HEAD) % BAN_SYNC_FIELDS == 0;
}

static size_t sync_n(const redisReply *r)
{
	return (r->elements - BAN_SYNC_HEAD) / BAN_SYNC_FIELDS;
}

static const redisReply *field(const redisReply *r, size_t ban, int f)
{
	return r->element[BAN_SYNC_HEAD + ban * BAN_SYNC_FIELDS + (size_t)f];
}

TEST(ban_scripts_publish_and_sync)
{
	redisContext *c = test_redis_connect();
	long long p[3];
	redisReply *r;

	if (!CHECK(c != NULL, "redis: %s", test_redis_error()))
		return;
	CHECK_EQ(store_ban_keys(keys, NULL), 0, "keys");
	CHECK(!strcmp(keys[BAN_KEY_EXP], "sluice:{bans}:exp"), "key name %s", keys[BAN_KEY_EXP]);
	del_all(c);

	publish(c, "198.18.1.1/32", "60000", "rule:strict", "gw1", p);
	CHECK(p[0] == 1 && p[1] == 1 && p[2] == 60000, "first ban: %lld %lld %lld", p[0], p[1], p[2]);
	publish(c, "198.18.1.1/32", "30000", "sluice-l7", "gw2", p);
	CHECK(p[0] == 0 && p[1] == 1 && p[2] > 59000 && p[2] <= 60000,
	      "an earlier expiry changes nothing: %lld %lld %lld", p[0], p[1], p[2]);
	publish(c, "2001:db8::/64", "5000", "sluice-l7", "gw2", p);
	CHECK(p[0] == 1 && p[1] == 2, "second ban: seq %lld", p[1]);

	r = sync_(c, "0", "100");
	if (CHECK(sync_ok(r), "sync reply") && CHECK_EQ(sync_n(r), 2, "two bans")) {
		CHECK(r->element[0]->integer > 1700000000000LL, "server now %lld",
		      r->element[0]->integer);
		CHECK_EQ(r->element[1]->integer, 2, "next_seq = last");
		CHECK_EQ(r->element[2]->integer, 0, "no more");
		CHECK(!strcmp(field(r, 0, 0)->str, "198.18.1.1/32"), "prefix %s", field(r, 0, 0)->str);
		CHECK_EQ(field(r, 0, 1)->integer, 1, "seq");
		CHECK(field(r, 0, 2)->integer > 59000 && field(r, 0, 2)->integer <= 60000,
		      "remaining %lld", field(r, 0, 2)->integer);
		CHECK(!strcmp(field(r, 0, 3)->str, "rule:strict"), "by %s", field(r, 0, 3)->str);
		CHECK(!strcmp(field(r, 0, 4)->str, "gw1"), "where %s", field(r, 0, 4)->str);
		CHECK(!strcmp(field(r, 1, 0)->str, "2001:db8::/64"), "v6 prefix");
	}
	freeReplyObject(r);
	r = sync_(c, "2", "100");
	CHECK(sync_ok(r) && sync_n(r) == 0 && r->element[1]->integer == 2, "nothing newer");
	freeReplyObject(r);

	/* a later expiry wins: new seq, new origin */
	publish(c, "198.18.1.1/32", "120000", "rule:other", "gw3", p);
	CHECK(p[0] == 1 && p[1] == 3, "extended: %lld seq %lld", p[0], p[1]);
	r = sync_(c, "2", "100");
	if (CHECK(sync_ok(r) && sync_n(r) == 1, "only the extended ban")) {
		CHECK(!strcmp(field(r, 0, 3)->str, "rule:other") && !strcmp(field(r, 0, 4)->str, "gw3"),
		      "its new origin");
		CHECK(field(r, 0, 2)->integer > 119000, "its new expiry");
	}
	freeReplyObject(r);

	/* paging: max_n 1 */
	r = sync_(c, "0", "1");
	CHECK(sync_ok(r) && sync_n(r) == 1 && r->element[2]->integer == 1 &&
	      r->element[1]->integer == 2, "page 1: next_seq 2, more");
	freeReplyObject(r);
	r = sync_(c, "2", "1");
	CHECK(sync_ok(r) && sync_n(r) == 1 && field(r, 0, 1)->integer == 3, "page 2");
	freeReplyObject(r);

	/* TTLs: the sets with the latest ban, the counter a day later */
	for (int i = 0; i < BAN_KEYS; i++) {
		r = redisCommand(c, "PTTL %s", keys[i]);
		CHECK(r && r->type == REDIS_REPLY_INTEGER && r->integer > 119000 &&
		      r->integer <= (i == BAN_KEY_LAST ? 120000 + 86400000 : 120000),
		      "%s has a TTL: %lld", keys[i], r ? r->integer : -9);
		freeReplyObject(r);
	}

	/* expiry: a 100 ms ban is gone from the sync and from every key */
	publish(c, "198.18.9.9/32", "100", "rule:x", "gw1", p);
	usleep(150 * 1000);
	r = sync_(c, "0", "100");
	CHECK(sync_ok(r) && sync_n(r) == 2, "the expired ban is not synced: %zu",
	      sync_ok(r) ? sync_n(r) : 0);
	freeReplyObject(r);
	r = redisCommand(c, "HEXISTS %s 198.18.9.9/32", keys[BAN_KEY_FROM]);
	CHECK(r && r->integer == 0, "and its origin went");
	freeReplyObject(r);

	/* a since_seq beyond the counter (store restarted empty) starts at 0 */
	del_all(c);
	publish(c, "198.18.2.2/32", "60000", "sluice-l7", "gw2", p);
	r = sync_(c, "40", "100");
	CHECK(sync_ok(r) && sync_n(r) == 1 && r->element[1]->integer == 1,
	      "since beyond the counter: from 0");
	freeReplyObject(r);
	redisFree(c);
}

TEST(ban_scripts_bad_input)
{
	redisContext *c = test_redis_connect();
	static const char *bad[][4] = {
		{ "198.18.1.1/32", "0", "rule:x", "gw1" },
		{ "198.18.1.1/32", "-5", "rule:x", "gw1" },
		{ "198.18.1.1/32", "1e3", "rule:x", "gw1" },
		{ "198.18.1.1/32", "99999999999999", "rule:x", "gw1" },
		{ "", "1000", "rule:x", "gw1" },
		{ "198.18.1.1/32", "1000", "rule x", "gw1" },
		{ "198.18.1.1/32", "1000", "rule:x", "" },
		{ "198.18.1.1/32", "1000", "rule:x", "g\tw" },
	};
	redisReply *r;
	size_t i;

	if (!CHECK(c != NULL, "redis: %s", test_redis_error()))
		return;
	store_ban_keys(keys, "t");
	del_all(c);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		r = eval(c, SCRIPT_BAN_PUBLISH, 4, bad[i]);
		CHECK(r && r->type == REDIS_REPLY_ERROR && strstr(r->str, "ban_publish"),
		      "publish case %zu refused: %s", i, r && r->str ? r->str : "?");
		freeReplyObject(r);
	}
	r = eval(c, SCRIPT_BAN_PUBLISH, 3, bad[0]);
	CHECK(r && r->type == REDIS_REPLY_ERROR, "three arguments refused");
	freeReplyObject(r);
	r = sync_(c, "x", "10");
	CHECK(r && r->type == REDIS_REPLY_ERROR && strstr(r->str, "since_seq"), "bad since");
	freeReplyObject(r);
	r = sync_(c, "0", "0");
	CHECK(r && r->type == REDIS_REPLY_ERROR && strstr(r->str, "max_n"), "max_n 0");
	freeReplyObject(r);
	r = sync_(c, "0", "1001");
	CHECK(r && r->type == REDIS_REPLY_ERROR && strstr(r->str, "max_n"), "max_n 1001");
	freeReplyObject(r);
	for (i = 0; i < BAN_KEYS; i++) {
		r = redisCommand(c, "EXISTS %s", keys[i]);
		CHECK(r && r->type == REDIS_REPLY_INTEGER && r->integer == 0, "nothing written: %s",
		      keys[i]);
		freeReplyObject(r);
	}
	redisFree(c);
}
