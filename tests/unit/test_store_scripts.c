// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The store's Lua scripts (user/lib/lua) on a real Redis (redis_fixture):
 * rate admission all or none, the bucket arithmetic against limiter.c's,
 * refill on the server's clock, buckets that start from the store's birth,
 * reservations settled exactly once, concurrency slots that expire, renew
 * and release, live instances, a TTL on every key, and bad arguments that
 * write nothing.
 *
 * Exact arithmetic without a test clock: a bucket whose time lies in the
 * future refills nothing (limiter.c's rule: a clock behind at refills
 * nothing), so a test that writes a bucket "frozen" an hour ahead gets
 * results that do not depend on when the script runs. Refill itself is
 * checked on real time with small periods and short sleeps, and against
 * limiter.c with the elapsed time set by back-dating a bucket's time and
 * bracketing the script between two reads of the server's clock.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "harness.h"
#include "limiter.h"
#include "redis_fixture.h"
#include "scripts.h"

#define MS_NS 1000000ULL
#define TIER "t1"
#define FROZEN_MS 3600000ULL     /* a frozen bucket's time: an hour ahead */

/* --- connection and script calls ------------------------------------------- */

static int via_sha;                       /* EVALSHA (after SCRIPT LOAD) or EVAL */
static char shas[SCRIPT_MAX][41];

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* A connection to an empty store, or NULL (and a failed check). */
static redisContext *db_fresh(void)
{
	redisContext *c = test_redis_connect();
	redisReply *r;

	if (!CHECK(c, "%s", test_redis_error()))
		return NULL;
	r = redisCommand(c, "FLUSHALL");
	CHECK(r && r->type == REDIS_REPLY_STATUS, "FLUSHALL: %s", r ? r->str : c->errstr);
	if (r)
		freeReplyObject(r);
	return c;
}

static int load_sha(redisContext *c, enum store_script_id id)
{
	redisReply *r;
	int ok;

	if (shas[id][0])
		return 1;
	r = redisCommand(c, "SCRIPT LOAD %s", store_scripts[id].body);
	ok = CHECK(r && r->type == REDIS_REPLY_STRING && r->len == 40, "SCRIPT LOAD %s: %s",
		   store_scripts[id].name, r && r->str ? r->str : "no reply");
	if (ok)
		memcpy(shas[id], r->str, 41);
	if (r)
		freeReplyObject(r);
	return ok;
}

/* EVAL or EVALSHA of a script with string keys and arguments. */
static redisReply *script(redisContext *c, enum store_script_id id, int nkeys,
			  const char *const *keys, int nargs, const char *const *args)
{
	const char *argv[64];
	char nk[16];
	int n = 0;

	if (nkeys + nargs + 3 > (int)NELEM(argv))
		return NULL;
	if (via_sha) {
		if (!load_sha(c, id))
			return NULL;
		argv[n++] = "EVALSHA";
		argv[n++] = shas[id];
	} else {
		argv[n++] = "EVAL";
		argv[n++] = store_scripts[id].body;
	}
	snprintf(nk, sizeof(nk), "%d", nkeys);
	argv[n++] = nk;
	for (int i = 0; i < nkeys; i++)
		argv[n++] = keys[i];
	for (int i = 0; i < nargs; i++)
		argv[n++] = args[i];
	return redisCommandArgv(c, n, argv, NULL);
}

static const char *reply_why(redisContext *c, redisReply *r)
{
	if (!r)
		return c->errstr;
	if (r->type == REDIS_REPLY_ERROR)
		return r->str;
	return "unexpected reply type";
}

/* A script whose reply is one integer: it, or -1000 (and a failed check). */
static long long script_int(redisContext *c, enum store_script_id id, int nkeys,
			    const char *const *keys, int nargs, const char *const *args)
{
	redisReply *r = script(c, id, nkeys, keys, nargs, args);
	long long v = -1000;

	if (CHECK(r && r->type == REDIS_REPLY_INTEGER, "%s: %s", store_scripts[id].name,
		  reply_why(c, r)))
		v = r->integer;
	if (r)
		freeReplyObject(r);
	return v;
}

/* A script whose reply is an array of integers: their count, or -1. */
static int script_ints(redisContext *c, enum store_script_id id, int nkeys,
		       const char *const *keys, int nargs, const char *const *args,
		       long long *out, int max)
{
	redisReply *r = script(c, id, nkeys, keys, nargs, args);
	int n = -1;

	if (CHECK(r && r->type == REDIS_REPLY_ARRAY && (int)r->elements <= max, "%s: %s",
		  store_scripts[id].name, reply_why(c, r))) {
		n = (int)r->elements;
		for (int i = 0; i < n; i++) {
			if (!CHECK(r->element[i]->type == REDIS_REPLY_INTEGER,
				   "%s: element %d not an integer", store_scripts[id].name, i)) {
				n = -1;
				break;
			}
			out[i] = r->element[i]->integer;
		}
	}
	if (r)
		freeReplyObject(r);
	return n;
}

/* The key of `kind` in tier TIER (a few live at once: a ring of buffers). */
static const char *K(enum store_l7_key kind, const char *id)
{
	static char buf[16][160];
	static unsigned int next;
	char *b = buf[next++ % NELEM(buf)];

	if (store_l7_key(b, sizeof(buf[0]), "sluice", TIER, kind, id) < 0)
		snprintf(b, sizeof(buf[0]), "bad-key");
	return b;
}

/* --- plain Redis commands ---------------------------------------------------- */

static uint64_t server_ms(redisContext *c)
{
	redisReply *r = redisCommand(c, "TIME");
	uint64_t ms = 0;

	if (CHECK(r && r->type == REDIS_REPLY_ARRAY && r->elements == 2, "TIME"))
		ms = strtoull(r->element[0]->str, NULL, 10) * 1000 +
		     strtoull(r->element[1]->str, NULL, 10) / 1000;
	if (r)
		freeReplyObject(r);
	return ms;
}

static long long cmd_int(redisContext *c, const char *what, const char *fmt, const char *arg)
{
	redisReply *r = redisCommand(c, fmt, arg);
	long long v = -1000;

	if (CHECK(r && r->type == REDIS_REPLY_INTEGER, "%s: %s", what, reply_why(c, r)))
		v = r->integer;
	if (r)
		freeReplyObject(r);
	return v;
}

static long long dbsize(redisContext *c)
{
	redisReply *r = redisCommand(c, "DBSIZE");
	long long v = -1;

	if (CHECK(r && r->type == REDIS_REPLY_INTEGER, "DBSIZE"))
		v = r->integer;
	if (r)
		freeReplyObject(r);
	return v;
}

/* A GET as an integer; -1 when the key is missing. */
static long long get_int(redisContext *c, const char *key)
{
	redisReply *r = redisCommand(c, "GET %s", key);
	long long v = -2;

	if (CHECK(r && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_NIL), "GET %s",
		  key))
		v = r->type == REDIS_REPLY_NIL ? -1 : strtoll(r->str, NULL, 10);
	if (r)
		freeReplyObject(r);
	return v;
}

/* A bucket's fields ("rpm" or "tpm" in a bucket HASH). 1 when present. */
static int bucket_get(redisContext *c, const char *key, const char *which, double *level,
		      uint64_t *at)
{
	redisReply *r = redisCommand(c, "HMGET %s %s_level %s_ms", key, which, which);
	int ok = 0;

	if (CHECK(r && r->type == REDIS_REPLY_ARRAY && r->elements == 2, "HMGET %s", key) &&
	    r->element[0]->type == REDIS_REPLY_STRING && r->element[1]->type == REDIS_REPLY_STRING) {
		*level = strtod(r->element[0]->str, NULL);
		*at = strtoull(r->element[1]->str, NULL, 10);
		ok = 1;
	}
	if (r)
		freeReplyObject(r);
	return ok;
}

/* Writes a bucket's fields as the scripts do; the key keeps (or gets) a TTL. */
static void bucket_set(redisContext *c, const char *key, const char *which, double level,
		       uint64_t at)
{
	char lv[64], ms[32], f1[16], f2[16];
	redisReply *r;

	snprintf(lv, sizeof(lv), "%.17g", level);
	snprintf(ms, sizeof(ms), "%llu", (unsigned long long)at);
	snprintf(f1, sizeof(f1), "%s_level", which);
	snprintf(f2, sizeof(f2), "%s_ms", which);
	r = redisCommand(c, "HSET %s %s %s %s %s", key, f1, lv, f2, ms);
	CHECK(r && r->type == REDIS_REPLY_INTEGER, "HSET %s", key);
	if (r)
		freeReplyObject(r);
	r = redisCommand(c, "PEXPIRE %s 600000", key);
	if (r)
		freeReplyObject(r);
}

/* Every key in the store has a TTL (or vanished between SCAN and PTTL). */
static void check_ttls(redisContext *c, const char *when)
{
	char cursor[32] = "0";
	int keys = 0;

	do {
		redisReply *r = redisCommand(c, "SCAN %s COUNT 1000", cursor);

		if (!CHECK(r && r->type == REDIS_REPLY_ARRAY && r->elements == 2, "SCAN")) {
			if (r)
				freeReplyObject(r);
			return;
		}
		snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
		for (size_t i = 0; i < r->element[1]->elements; i++) {
			const char *k = r->element[1]->element[i]->str;
			long long pttl = cmd_int(c, "PTTL", "PTTL %s", k);

			CHECK(pttl > 0 || pttl == -2, "%s: key %s has no TTL (PTTL %lld)", when, k,
			      pttl);
			keys++;
		}
		freeReplyObject(r);
	} while (strcmp(cursor, "0"));
	CHECK(keys >= 0, "scanned");
}

/* --- l7_take and l7_settle arguments ------------------------------------------ */

/* The four buckets in the scripts' order (and their reasons' rank). */
enum { B_RPM, B_TPM, B_TIER_RPM, B_TIER_TPM };
static const char *const bucket_field[4] = { "rpm", "tpm", "rpm", "tpm" };

struct lims {
	uint64_t rate[4], burst[4];
};

struct take_in {
	uint64_t born, period;
	struct lims l;
	int req;
	uint64_t tok, res_ttl;
};

static void fmt_u64(char *buf, uint64_t v)
{
	snprintf(buf, 24, "%llu", (unsigned long long)v);
}

/* born, period and the 8 limit numbers: ARGV 1..10 of take and settle */
static void common_args(char s[][24], const char **a, uint64_t born, uint64_t period,
			const struct lims *l)
{
	fmt_u64(s[0], born);
	fmt_u64(s[1], period);
	for (int i = 0; i < 4; i++) {
		fmt_u64(s[2 + 2 * i], l->rate[i]);
		fmt_u64(s[3 + 2 * i], l->burst[i]);
	}
	for (int i = 0; i < 10; i++)
		a[i] = s[i];
}

/* l7_take for caller id and request rid; out gets L7_TAKE_REPLY_LEN values. */
static int take(redisContext *c, const char *id, const char *rid, const struct take_in *in,
		long long *out)
{
	const char *keys[3] = { K(L7_KEY_CALLER, id), K(L7_KEY_TIER, NULL),
				K(L7_KEY_RESERVATION, rid) };
	char s[L7_TAKE_ARGC][24];
	const char *a[L7_TAKE_ARGC];

	common_args(s, a, in->born, in->period, &in->l);
	fmt_u64(s[10], (uint64_t)in->req);
	fmt_u64(s[11], in->tok);
	fmt_u64(s[12], in->res_ttl);
	for (int i = 10; i < L7_TAKE_ARGC; i++)
		a[i] = s[i];
	if (script_ints(c, SCRIPT_L7_TAKE, 3, keys, L7_TAKE_ARGC, a, out, L7_TAKE_REPLY_LEN) !=
	    L7_TAKE_REPLY_LEN) {
		CHECK(0, "l7_take: not %d integers", L7_TAKE_REPLY_LEN);
		return -1;
	}
	return 0;
}

static long long settle(redisContext *c, const char *id, const char *rid, uint64_t born,
			uint64_t period, const struct lims *l, uint64_t actual, int refund)
{
	const char *keys[3] = { K(L7_KEY_CALLER, id), K(L7_KEY_TIER, NULL),
				K(L7_KEY_RESERVATION, rid) };
	char s[L7_SETTLE_ARGC][24];
	const char *a[L7_SETTLE_ARGC];

	common_args(s, a, born, period, l);
	fmt_u64(s[10], actual);
	fmt_u64(s[11], (uint64_t)refund);
	a[10] = s[10];
	a[11] = s[11];
	return script_int(c, SCRIPT_L7_SETTLE, 3, keys, L7_SETTLE_ARGC, a);
}

static const char *bucket_key(int b, const char *id)
{
	return b < B_TIER_RPM ? K(L7_KEY_CALLER, id) : K(L7_KEY_TIER, NULL);
}

/* --- the table ------------------------------------------------------------------- */

/* A prelude's "local function NAME" that the script after it defines again:
 * the copy the prelude was made to remove. */
static const char *redefined(const char *prelude, const char *rest)
{
	static char fn[96];
	const char *p = prelude;

	while ((p = strstr(p, "local function ")) != NULL) {
		size_t n = strcspn(p, "(");

		p += n;
		if (n >= sizeof(fn))
			continue;
		memcpy(fn, p - n, n);
		fn[n] = '\0';
		if (strstr(rest, fn))
			return fn;
	}
	return NULL;
}

TEST(store_scripts_table)
{
	static const struct {
		enum store_script_id id;
		const char *file;               /* the prelude in front of it */
	} shared[] = {
		{ SCRIPT_L7_TAKE, "l7_bucket" },
		{ SCRIPT_L7_SETTLE, "l7_bucket" },
		{ SCRIPT_L7_SLOT_ACQUIRE, "l7_slots" },
		{ SCRIPT_L7_SLOT_RENEW, "l7_slots" },
		{ SCRIPT_BAN_PUBLISH, "bans" },
		{ SCRIPT_BAN_SYNC, "bans" },
	};
	redisContext *c;

	for (int i = 0; i < SCRIPT_MAX; i++) {
		const char *body = store_scripts[i].body, *prelude = store_script_preludes[i];
		const char *want = "", *dup;
		char head[64];

		if (!CHECK(store_scripts[i].name && body && prelude, "script %d missing", i))
			continue;
		for (size_t k = 0; k < NELEM(shared); k++)
			if (shared[k].id == (enum store_script_id)i)
				want = shared[k].file;
		/* the shared file first, then the script's own, which has no
		 * copy of what the prelude defines */
		if (*want) {
			snprintf(head, sizeof(head), "-- %s.lua ", want);
			CHECK(!strncmp(prelude, head, strlen(head)), "%s's prelude is %s.lua",
			      store_scripts[i].name, want);
			if (!CHECK(!strncmp(body, prelude, strlen(prelude)),
				   "%s starts with its prelude", store_scripts[i].name))
				continue;
			body += strlen(prelude);
			dup = redefined(prelude, body);
			CHECK(!dup, "%s defines %s again", store_scripts[i].name, dup ? dup : "");
		} else {
			CHECK(!*prelude, "%s has no prelude", store_scripts[i].name);
		}
		snprintf(head, sizeof(head), "-- %s.lua ", store_scripts[i].name);
		CHECK(!strncmp(body, head, strlen(head)),
		      "script %d (%s) is its file", i, store_scripts[i].name);
		for (int j = 0; j < i; j++)
			CHECK(strcmp(store_scripts[i].name, store_scripts[j].name),
			      "name %s twice", store_scripts[i].name);
	}
	CHECK(!strcmp(store_scripts[SCRIPT_L7_HELLO].name, "l7_hello"), "enum order");

	/* every script compiles on the server */
	c = db_fresh();
	if (!c)
		return;
	memset(shas, 0, sizeof(shas));
	for (int i = 0; i < SCRIPT_MAX; i++)
		load_sha(c, (enum store_script_id)i);
	redisFree(c);
}

TEST(store_l7_key_layout)
{
	char buf[64];

	CHECK(store_l7_key(buf, sizeof(buf), NULL, "gold", L7_KEY_CALLER, "ab12") > 0 &&
	      !strcmp(buf, "sluice:{t:gold}:c:ab12"), "caller: %s", buf);
	CHECK(store_l7_key(buf, sizeof(buf), "p", "gold", L7_KEY_TIER, NULL) > 0 &&
	      !strcmp(buf, "p:{t:gold}:tier"), "tier: %s", buf);
	CHECK(store_l7_key(buf, sizeof(buf), "", "gold", L7_KEY_RESERVATION, "r9") > 0 &&
	      !strcmp(buf, "sluice:{t:gold}:r:r9"), "reservation: %s", buf);
	CHECK(store_l7_key(buf, sizeof(buf), NULL, "gold", L7_KEY_CALLER_SLOTS, "ab12") > 0 &&
	      !strcmp(buf, "sluice:{t:gold}:cs:ab12"), "caller slots: %s", buf);
	CHECK(store_l7_key(buf, sizeof(buf), NULL, "gold", L7_KEY_TIER_SLOTS, NULL) > 0 &&
	      !strcmp(buf, "sluice:{t:gold}:ts"), "tier slots: %s", buf);
	CHECK_EQ(store_l7_key(buf, sizeof(buf), NULL, NULL, L7_KEY_INSTANCES, NULL),
		 strlen("sluice:{l7}:instances"), "instances: length");
	CHECK(!strcmp(buf, "sluice:{l7}:instances"), "instances: %s", buf);
	CHECK_EQ(store_l7_key(buf, sizeof(buf), NULL, "a}b", L7_KEY_TIER, NULL), -EINVAL,
		 "a brace in the tier would move the hash tag");
	CHECK_EQ(store_l7_key(buf, sizeof(buf), NULL, "gold", L7_KEY_CALLER, ""), -EINVAL,
		 "a caller key needs an id");
	CHECK_EQ(store_l7_key(buf, 10, NULL, "gold", L7_KEY_TIER, NULL), -ENAMETOOLONG,
		 "too small a buffer");
}

/* --- l7_take on frozen buckets: exact arithmetic -------------------------------- */

#define MISSING NAN

struct take_row {
	const char *name;
	struct lims l;
	double level[4];                 /* frozen start levels (limited buckets) */
	int req;
	uint64_t tok;
	long long want[L7_TAKE_REPLY_LEN];
	double after[4];                 /* levels after */
};

/* period 60 s throughout. Caller rpm 60 (1 a second), burst 10; caller tpm
 * 6000 (100 a second, 10 ms a token), burst 1000; tier rpm 600 (100 ms a
 * request), burst 100; tier tpm 60000 (1 ms a token), burst 10000. */
#define L_ALL { { 60, 6000, 600, 60000 }, { 10, 1000, 100, 10000 } }
#define L_TPM { { 0, 6000, 0, 0 }, { 0, 1000, 0, 0 } }

static const struct take_row take_rows[] = {
	{ "admit from full buckets", L_ALL, { 10, 1000, 100, 10000 }, 1, 300,
	  { 1, 0, 0, 9, 1000, 700, 3000, 99, 100, 9700, 300 }, { 9, 700, 99, 9700 } },
	{ "the tier's tpm refuses: nothing taken anywhere", L_ALL, { 10, 1000, 100, 200 }, 1, 300,
	  { 0, 4, 100, 10, 0, 1000, 0, 100, 0, 200, 9800 }, { 10, 1000, 100, 200 } },
	{ "two refuse: the first reason, the longest wait", L_ALL, { 0, 1000, 0.5, 10000 }, 1, 300,
	  { 0, 1, 1000, 0, 10000, 1000, 0, 0, 9950, 10000, 0 }, { 0, 1000, 0.5, 10000 } },
	{ "caller tpm refuses", L_ALL, { 10, 299, 100, 10000 }, 1, 300,
	  { 0, 2, 10, 10, 0, 299, 7010, 100, 0, 10000, 0 }, { 10, 299, 100, 10000 } },
	{ "bigger than the burst, not full: waits for full", L_TPM, { 0, 999.5, 0, 0 }, 1, 1500,
	  { 0, 2, 5, 0, 0, 999, 5, 0, 0, 0, 0 }, { 0, 999.5, 0, 0 } },
	{ "bigger than the burst, full: passes into debt", L_TPM, { 0, 1000, 0, 0 }, 1, 1500,
	  { 1, 0, 0, 0, 0, 0, 15000, 0, 0, 0, 0 }, { 0, -500, 0, 0 } },
	{ "in debt: waits out the debt", L_TPM, { 0, -500, 0, 0 }, 1, 1,
	  { 0, 2, 5010, 0, 0, 0, 15000, 0, 0, 0, 0 }, { 0, -500, 0, 0 } },
	{ "no tokens: no tpm draw, even in debt", L_ALL, { 5, -500, 100, -1 }, 1, 0,
	  { 1, 0, 0, 4, 6000, 0, 15000, 99, 100, 0, 10001 }, { 4, -500, 99, -1 } },
	{ "no request: no rpm draw", L_ALL, { 0, 1000, 0, 10000 }, 0, 10,
	  { 1, 0, 0, 0, 10000, 990, 100, 0, 10000, 9990, 10 }, { 0, 990, 0, 9990 } },
	{ "unlimited everywhere", { { 0 }, { 0 } }, { 0, 0, 0, 0 }, 1, 1000,
	  { 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 }, { 0, 0, 0, 0 } },
	{ "burst 0 is the rate", { { 600, 5, 0, 0 }, { 0, 0, 0, 0 } },
	  { 60, 1, 0, 0 }, 1, 1, { 1, 0, 0, 59, 54100, 0, 60000, 0, 0, 0, 0 }, { 59, 0, 0, 0 } },
	{ "a hair under a unit is the unit", { { 60, 0, 0, 0 }, { 10, 0, 0, 0 } },
	  { 0.9999999999, 0, 0, 0 }, 1, 0, { 1, 0, 0, 0, 10001, 0, 0, 0, 0, 0, 0 },
	  { 0.9999999999 - 1, 0, 0, 0 } },
	{ "a level over a lowered burst is cut to it", { { 60, 0, 0, 0 }, { 10, 0, 0, 0 } },
	  { 50, 0, 0, 0 }, 1, 0, { 1, 0, 0, 9, 1000, 0, 0, 0, 0, 0, 0 }, { 9, 0, 0, 0 } },
};

static void run_take_rows(void)
{
	redisContext *c = db_fresh();
	uint64_t frozen;

	if (!c)
		return;
	frozen = server_ms(c) + FROZEN_MS;
	for (size_t r = 0; r < NELEM(take_rows); r++) {
		const struct take_row *row = &take_rows[r];
		struct take_in in = { .born = 0, .period = 60000, .l = row->l, .req = row->req,
				      .tok = row->tok, .res_ttl = 30000 };
		char caller[32], rid[32];
		long long out[L7_TAKE_REPLY_LEN];

		snprintf(caller, sizeof(caller), "row%zu", r);
		snprintf(rid, sizeof(rid), "req%zu", r);
		for (int b = 0; b < 4; b++)
			if (row->l.rate[b])
				bucket_set(c, bucket_key(b, caller), bucket_field[b], row->level[b],
					   frozen);
		if (take(c, caller, rid, &in, out))
			break;
		for (int i = 0; i < L7_TAKE_REPLY_LEN; i++)
			CHECK(out[i] == row->want[i], "%s (%s): reply[%d] = %lld, want %lld",
			      row->name, via_sha ? "evalsha" : "eval", i, out[i], row->want[i]);
		for (int b = 0; b < 4; b++) {
			double level;
			uint64_t at;

			if (!row->l.rate[b])
				continue;
			if (CHECK(bucket_get(c, bucket_key(b, caller), bucket_field[b], &level, &at),
				  "%s: bucket %d is there", row->name, b)) {
				CHECK(level == row->after[b], "%s: bucket %d level %.17g, want %.17g",
				      row->name, b, level, row->after[b]);
				CHECK(at == frozen, "%s: bucket %d time moved", row->name, b);
			}
		}
		/* a written bucket key lives until its buckets would be full, and
		 * the slack after that, so an expired key is a full bucket */
		for (int k = 0; k < 2 && row->want[0]; k++) {
			long long full = 0, pttl;
			int limited = 0;

			for (int b = 2 * k; b < 2 * k + 2; b++) {
				limited |= row->l.rate[b] != 0;
				if (row->want[4 + 2 * b] > full)
					full = row->want[4 + 2 * b];
			}
			if (!limited)
				continue;
			pttl = cmd_int(c, "PTTL", "PTTL %s", bucket_key(2 * k, caller));
			CHECK(pttl > full && pttl <= full + 1000, "%s: key %d expires in %lld ms, "
			      "full in %lld", row->name, k, pttl, full);
		}
		/* the reservation: the token cost, with a TTL, only when admitted */
		CHECK(get_int(c, K(L7_KEY_RESERVATION, rid)) == (row->want[0] ? (long long)row->tok
									      : -1),
		      "%s: reservation", row->name);
		check_ttls(c, row->name);
		/* the tier bucket is shared by the rows: start it afresh */
		cmd_int(c, "DEL", "DEL %s", K(L7_KEY_TIER, NULL));
	}
	redisFree(c);
}

TEST(store_take_table_eval)
{
	via_sha = 0;
	run_take_rows();
}

TEST(store_take_table_evalsha)
{
	via_sha = 1;
	run_take_rows();
	via_sha = 0;
}

/* --- l7_take on real time ----------------------------------------------------------- */

static const struct lims one_rpm_tier_rpm = { { 60, 0, 60, 0 }, { 5, 0, 1, 0 } };

TEST(store_take_all_or_none)
{
	struct take_in in = { .born = 0, .period = 60000, .l = one_rpm_tier_rpm, .req = 1,
			      .tok = 0, .res_ttl = 30000 };
	redisContext *c = db_fresh();
	long long out[L7_TAKE_REPLY_LEN];
	double level;
	uint64_t at;

	if (!c)
		return;
	if (!take(c, "alice", "a1", &in, out))
		CHECK(out[L7_TAKE_ADMITTED] == 1 && out[L7_TAKE_RPM_REMAINING] == 4 &&
		      out[L7_TAKE_TIER_RPM_REMAINING] == 0,
		      "alice admitted from full buckets (%lld, %lld left)", out[3], out[7]);
	/* the tier's one request is spent: bob is refused and charged nothing */
	if (!take(c, "bob", "b1", &in, out)) {
		CHECK(out[L7_TAKE_ADMITTED] == 0 && out[L7_TAKE_REASON] == LIM_TIER_RPM,
		      "bob refused by the tier (reason %lld)", out[L7_TAKE_REASON]);
		CHECK(out[L7_TAKE_RETRY_MS] > 500 && out[L7_TAKE_RETRY_MS] <= 1000,
		      "bob waits the tier's next request, a second: %lld", out[L7_TAKE_RETRY_MS]);
		CHECK_EQ(out[L7_TAKE_RPM_REMAINING], 5, "bob's own bucket shows full");
	}
	CHECK_EQ(cmd_int(c, "EXISTS", "EXISTS %s", K(L7_KEY_CALLER, "bob")), 0,
		 "bob's bucket was not written");
	CHECK_EQ(get_int(c, K(L7_KEY_RESERVATION, "b1")), (unsigned long long)-1,
		 "no reservation for bob");
	if (CHECK(bucket_get(c, K(L7_KEY_CALLER, "alice"), "rpm", &level, &at), "alice's bucket"))
		CHECK(level == 4, "alice charged once: %.17g", level);
	/* alice again: her own bucket admits, the tier does not */
	if (!take(c, "alice", "a2", &in, out))
		CHECK(out[L7_TAKE_ADMITTED] == 0 && out[L7_TAKE_REASON] == LIM_TIER_RPM,
		      "alice refused by the tier (reason %lld)", out[L7_TAKE_REASON]);
	if (CHECK(bucket_get(c, K(L7_KEY_CALLER, "alice"), "rpm", &level, &at), "alice's bucket"))
		CHECK(level == 4, "a refusal leaves alice's bucket: %.17g", level);
	check_ttls(c, "all or none");
	redisFree(c);
}

TEST(store_take_refill_real_time)
{
	/* 100 per second: one unit every 10 ms; burst 5 */
	struct take_in in = { .born = 0, .period = 1000, .l = { { 100 }, { 5 } }, .req = 1,
			      .res_ttl = 30000 };
	redisContext *c = db_fresh();
	long long out[L7_TAKE_REPLY_LEN];
	uint64_t t_drain, t0, t1;
	double l_drain;
	int admitted = 0, lo, hi;
	char rid[32];

	if (!c)
		return;
	for (int i = 0; i < 5; i++) {
		snprintf(rid, sizeof(rid), "d%d", i);
		if (take(c, "alice", rid, &in, out))
			goto out;
		admitted += (int)out[L7_TAKE_ADMITTED];
		if (i == 0) {
			CHECK_EQ(out[L7_TAKE_RPM_REMAINING], 4, "remaining after one take");
			CHECK_EQ(out[L7_TAKE_RPM_RESET_MS], 10, "full again one unit later");
		}
	}
	CHECK_EQ(admitted, 5, "the burst passes at once");
	if (take(c, "alice", "d5", &in, out))
		goto out;
	if (out[L7_TAKE_ADMITTED] == 0)
		CHECK(out[L7_TAKE_REASON] == LIM_RPM && out[L7_TAKE_RETRY_MS] >= 1 &&
		      out[L7_TAKE_RETRY_MS] <= 10,
		      "the 6th waits at most a unit's 10 ms: %lld", out[L7_TAKE_RETRY_MS]);
	if (!CHECK(bucket_get(c, K(L7_KEY_CALLER, "alice"), "rpm", &l_drain, &t_drain), "bucket"))
		goto out;

	sleep_ms(35);
	t0 = server_ms(c);
	admitted = 0;
	for (int i = 0; i < 20; i++) {
		snprintf(rid, sizeof(rid), "r%d", i);
		if (take(c, "alice", rid, &in, out))
			goto out;
		if (!out[L7_TAKE_ADMITTED])
			break;
		admitted++;
	}
	t1 = server_ms(c);
	/* what refilled by the first take, less the unit the refusal lacked;
	 * at most what refilled by the last */
	lo = (int)ceil(l_drain + (double)(t0 - t_drain) / 10 - 1);
	hi = (int)floor(l_drain + (double)(t1 - t_drain) / 10 + 1e-9);
	CHECK(admitted >= 3 && admitted >= lo && admitted <= hi,
	      "after 35 ms: %d admitted, want 3+ and %d..%d", admitted, lo, hi);
	check_ttls(c, "refill");
out:
	redisFree(c);
}

TEST(store_take_missing_bucket_starts_from_born)
{
	/* 10 per 10 s: a unit a second, so a slow test run moves nothing
	 * below; burst 5 */
	struct take_in in = { .period = 10000, .l = { { 10 }, { 5 } }, .req = 1,
			      .res_ttl = 30000 };
	redisContext *c = db_fresh();
	long long out[L7_TAKE_REPLY_LEN];
	uint64_t now;

	if (!c)
		return;
	now = server_ms(c);

	/* an old store: a missing bucket is a full one */
	in.born = now - 3600000;
	if (!take(c, "old", "o1", &in, out))
		CHECK(out[L7_TAKE_ADMITTED] == 1 && out[L7_TAKE_RPM_REMAINING] == 4,
		      "old born: full (%lld left)", out[L7_TAKE_RPM_REMAINING]);

	/* born 2.5 s ago: 2.5 units so far */
	in.born = now - 2500;
	for (int i = 0; i < 3; i++) {
		char rid[16];

		snprintf(rid, sizeof(rid), "m%d", i);
		if (take(c, "ramp", rid, &in, out))
			break;
		if (i < 2)
			CHECK(out[L7_TAKE_ADMITTED] == 1, "ramp: take %d admitted", i);
		else
			CHECK(out[L7_TAKE_ADMITTED] == 0 && out[L7_TAKE_RETRY_MS] <= 500,
			      "ramp: the third waits for the half unit left: %lld ms",
			      out[L7_TAKE_RETRY_MS]);
	}

	/* a store born now: empty */
	in.born = now;
	if (!take(c, "fresh", "f1", &in, out)) {
		CHECK(out[L7_TAKE_ADMITTED] == 0 && out[L7_TAKE_REASON] == LIM_RPM,
		      "fresh born: empty, refused");
		CHECK(out[L7_TAKE_RETRY_MS] >= 500 && out[L7_TAKE_RETRY_MS] <= 1000,
		      "fresh born: a unit in about a second: %lld", out[L7_TAKE_RETRY_MS]);
		CHECK(out[L7_TAKE_RPM_RESET_MS] > 4500 && out[L7_TAKE_RPM_RESET_MS] <= 5000,
		      "fresh born: full in about 5 s: %lld", out[L7_TAKE_RPM_RESET_MS]);
		CHECK_EQ(out[L7_TAKE_RPM_REMAINING], 0, "fresh born: nothing left");
	}

	/* a born in the future (a clock step) counts as now: empty */
	in.born = now + 60000;
	if (!take(c, "future", "u1", &in, out))
		CHECK(out[L7_TAKE_ADMITTED] == 0 && out[L7_TAKE_RETRY_MS] == 1000,
		      "future born: empty (%lld ms)", out[L7_TAKE_RETRY_MS]);

	/* and it ramps: a unit per 100 ms, a unit after 110 ms */
	in.period = 1000;
	in.born = server_ms(c);
	if (!take(c, "fast", "s1", &in, out))
		CHECK(out[L7_TAKE_ADMITTED] == 0, "fast fresh born: empty, refused");
	sleep_ms(110);
	if (!take(c, "fast", "s2", &in, out))
		CHECK(out[L7_TAKE_ADMITTED] == 1, "fast fresh born: a unit after 110 ms");
	check_ttls(c, "born");
	redisFree(c);
}

TEST(store_restart_starts_empty)
{
	struct take_in in = { .born = 0, .period = 1000, .l = { { 10 }, { 5 } }, .req = 1,
			      .res_ttl = 30000 };
	redisContext *c = db_fresh();
	long long out[L7_TAKE_REPLY_LEN];
	char sha[41];
	redisReply *r;

	if (!c)
		return;
	via_sha = 1;
	memset(shas, 0, sizeof(shas));
	if (!take(c, "alice", "x1", &in, out))
		CHECK_EQ(out[L7_TAKE_ADMITTED], 1, "before: admitted");
	via_sha = 0;
	memcpy(sha, shas[SCRIPT_L7_TAKE], sizeof(sha));
	CHECK(dbsize(c) > 0, "before: keys");
	redisFree(c);

	if (!CHECK(test_redis_restart() == 0, "restart: %s", test_redis_error()))
		return;
	memset(shas, 0, sizeof(shas));
	c = test_redis_connect();
	if (!CHECK(c, "%s", test_redis_error()))
		return;
	CHECK_EQ(dbsize(c), 0, "after: the store is empty");
	r = redisCommand(c, "EVALSHA %s 0", sha);
	CHECK(r && r->type == REDIS_REPLY_ERROR && !strncmp(r->str, "NOSCRIPT", 8),
	      "after: the scripts are gone (NOSCRIPT): %s", reply_why(c, r));
	if (r)
		freeReplyObject(r);
	/* the client's born is the new store's: buckets start empty, no burst */
	in.born = server_ms(c);
	if (!take(c, "alice", "x2", &in, out))
		CHECK(out[L7_TAKE_ADMITTED] == 0 && out[L7_TAKE_RPM_REMAINING] == 0,
		      "after: empty buckets, refused");
	redisFree(c);
}

/* --- l7_settle ------------------------------------------------------------------------- */

static void check_levels(redisContext *c, const char *id, const double want[4], const char *when)
{
	for (int b = 0; b < 4; b++) {
		double level;
		uint64_t at;

		if (CHECK(bucket_get(c, bucket_key(b, id), bucket_field[b], &level, &at),
			  "%s: bucket %d", when, b))
			CHECK(level == want[b], "%s: bucket %d at %.17g, want %.17g", when, b, level,
			      want[b]);
	}
}

static void freeze_all(redisContext *c, const char *id, const double level[4], uint64_t frozen)
{
	for (int b = 0; b < 4; b++)
		bucket_set(c, bucket_key(b, id), bucket_field[b], level[b], frozen);
}

TEST(store_settle_exactly_once)
{
	static const double full[4] = { 10, 1000, 100, 10000 };
	struct take_in in = { .born = 0, .period = 60000, .l = L_ALL, .req = 1, .tok = 300,
			      .res_ttl = 30000 };
	redisContext *c = db_fresh();
	long long out[L7_TAKE_REPLY_LEN];

	if (!c)
		return;
	freeze_all(c, "alice", full, server_ms(c) + FROZEN_MS);
	if (take(c, "alice", "s1", &in, out) || !CHECK_EQ(out[0], 1, "take s1"))
		goto out;
	check_levels(c, "alice", (const double[4]){ 9, 700, 99, 9700 }, "after take");

	/* used 100 of the 300 estimated: 200 back to both tpm buckets */
	CHECK_EQ(settle(c, "alice", "s1", 0, 60000, &in.l, 100, 0), 1, "settled");
	check_levels(c, "alice", (const double[4]){ 9, 900, 99, 9900 }, "after reconcile");
	CHECK_EQ(get_int(c, K(L7_KEY_RESERVATION, "s1")), (unsigned long long)-1,
		 "the reservation is gone");
	/* a second reconcile (or a cancel) of the same request changes nothing */
	CHECK_EQ(settle(c, "alice", "s1", 0, 60000, &in.l, 0, 1), 0, "settled before");
	check_levels(c, "alice", (const double[4]){ 9, 900, 99, 9900 }, "after the second settle");

	/* used 500 of 300: 200 more charged */
	if (take(c, "alice", "s2", &in, out) || !CHECK_EQ(out[0], 1, "take s2"))
		goto out;
	CHECK_EQ(settle(c, "alice", "s2", 0, 60000, &in.l, 500, 0), 1, "settled s2");
	check_levels(c, "alice", (const double[4]){ 8, 400, 98, 9400 }, "after an extra charge");
	check_ttls(c, "settle");
out:
	redisFree(c);
}

TEST(store_settle_cancel_refunds)
{
	static const double full[4] = { 10, 1000, 100, 10000 };
	struct take_in in = { .born = 0, .period = 60000, .l = L_ALL, .req = 1, .tok = 300,
			      .res_ttl = 30000 };
	redisContext *c = db_fresh();
	long long out[L7_TAKE_REPLY_LEN];
	uint64_t frozen;

	if (!c)
		return;
	frozen = server_ms(c) + FROZEN_MS;
	freeze_all(c, "alice", full, frozen);
	if (take(c, "alice", "c1", &in, out) || !CHECK_EQ(out[0], 1, "take c1"))
		goto out;
	CHECK_EQ(settle(c, "alice", "c1", 0, 60000, &in.l, 0, 1), 1, "cancelled");
	check_levels(c, "alice", full, "a cancel gives back the request and its tokens");

	/* refunds stop at the burst */
	if (take(c, "alice", "c2", &in, out) || !CHECK_EQ(out[0], 1, "take c2"))
		goto out;
	freeze_all(c, "alice", (const double[4]){ 10, 900, 100, 9950 }, frozen);
	CHECK_EQ(settle(c, "alice", "c2", 0, 60000, &in.l, 0, 1), 1, "cancelled c2");
	check_levels(c, "alice", full, "never above the burst");
	check_ttls(c, "cancel");

	/* a settle whose bucket keys expired meanwhile writes them with a TTL */
	in.res_ttl = 60000;
	if (take(c, "bob", "c3", &in, out) || !CHECK_EQ(out[0], 1, "take c3"))
		goto out;
	cmd_int(c, "DEL", "DEL %s", K(L7_KEY_CALLER, "bob"));
	cmd_int(c, "DEL", "DEL %s", K(L7_KEY_TIER, NULL));
	CHECK_EQ(settle(c, "bob", "c3", 0, 60000, &in.l, 0, 1), 1, "cancelled c3");
	CHECK(cmd_int(c, "PTTL", "PTTL %s", K(L7_KEY_CALLER, "bob")) > 0, "bob's bucket expires");
	CHECK(cmd_int(c, "PTTL", "PTTL %s", K(L7_KEY_TIER, NULL)) > 0, "the tier's bucket expires");
	check_ttls(c, "settle on expired buckets");
out:
	redisFree(c);
}

TEST(store_settle_after_expiry)
{
	static const double some[4] = { 5, 500, 50, 5000 };
	struct take_in in = { .born = 0, .period = 60000, .l = L_ALL, .req = 1, .tok = 300,
			      .res_ttl = 20 };
	redisContext *c = db_fresh();
	long long out[L7_TAKE_REPLY_LEN];

	if (!c)
		return;
	freeze_all(c, "alice", some, server_ms(c) + FROZEN_MS);
	if (take(c, "alice", "e1", &in, out) || !CHECK_EQ(out[0], 1, "take e1"))
		goto out;
	sleep_ms(40);
	/* the instance died with the request: the estimate stands */
	CHECK_EQ(settle(c, "alice", "e1", 0, 60000, &in.l, 0, 1), 0, "expired: nothing to settle");
	check_levels(c, "alice", (const double[4]){ 4, 200, 49, 4700 }, "the estimate stands");
	check_ttls(c, "expired reservation");
out:
	redisFree(c);
}

/* --- concurrency slots ------------------------------------------------------------------ */

/* l7_slot_acquire: the reply's length, the reply in out[3]. */
static int acquire(redisContext *c, const char *id, const char *rid, uint64_t ttl,
		   uint64_t caller_limit, uint64_t tier_limit, long long out[3])
{
	const char *keys[2] = { K(L7_KEY_CALLER_SLOTS, id), K(L7_KEY_TIER_SLOTS, NULL) };
	char s[3][24];
	const char *a[4] = { rid, s[0], s[1], s[2] };

	fmt_u64(s[0], ttl);
	fmt_u64(s[1], caller_limit);
	fmt_u64(s[2], tier_limit);
	out[0] = out[1] = out[2] = -1;
	return script_ints(c, SCRIPT_L7_SLOT_ACQUIRE, 2, keys, 4, a, out, 3);
}

static long long renew(redisContext *c, const char *id, uint64_t ttl, int n, const char **rids)
{
	const char *keys[2] = { K(L7_KEY_CALLER_SLOTS, id), K(L7_KEY_TIER_SLOTS, NULL) };
	const char *a[16];
	char s[24];

	fmt_u64(s, ttl);
	a[0] = s;
	for (int i = 0; i < n && i < 15; i++)
		a[1 + i] = rids[i];
	return script_int(c, SCRIPT_L7_SLOT_RENEW, 2, keys, 1 + n, a);
}

static long long release(redisContext *c, const char *id, const char *rid)
{
	const char *keys[2] = { K(L7_KEY_CALLER_SLOTS, id), K(L7_KEY_TIER_SLOTS, NULL) };

	return script_int(c, SCRIPT_L7_SLOT_RELEASE, 2, keys, 1, &rid);
}

TEST(store_slots_limits)
{
	static const struct {
		const char *caller, *rid;
		uint64_t caller_limit, tier_limit;
		int n;
		long long want[3];
	} rows[] = {
		{ "alice", "r1", 2, 3, 3, { 1, 1, 1 } },
		{ "alice", "r2", 2, 3, 3, { 1, 2, 2 } },
		{ "alice", "r3", 2, 3, 3, { 0, 1, 2 } },     /* alice's 2 are in use */
		{ "bob", "r4", 2, 3, 3, { 1, 1, 3 } },
		{ "bob", "r5", 2, 3, 3, { 0, 2, 3 } },       /* the tier's 3 are */
		{ "alice", "r1", 2, 3, 3, { 1, 2, 3 } },     /* again: the same slot */
		{ "carol", "r6", 0, 0, 3, { 1, 1, 4 } },     /* no limits */
		{ "carol", "r7", 5, 4, 3, { 0, 2, 4 } },
		{ "alice", "r8", 1, 0, 3, { 0, 1, 2 } },
	};
	redisContext *c = db_fresh();
	long long out[3];

	if (!c)
		return;
	for (size_t r = 0; r < NELEM(rows); r++) {
		int n = acquire(c, rows[r].caller, rows[r].rid, 10000, rows[r].caller_limit,
				rows[r].tier_limit, out);

		CHECK(n == rows[r].n && out[0] == rows[r].want[0] && out[1] == rows[r].want[1] &&
		      out[2] == rows[r].want[2],
		      "row %zu (%s %s): got %d {%lld, %lld, %lld}", r, rows[r].caller,
		      rows[r].rid, n, out[0], out[1], out[2]);
		check_ttls(c, "slots");
	}
	CHECK_EQ(cmd_int(c, "ZCARD", "ZCARD %s", K(L7_KEY_TIER_SLOTS, NULL)), 4,
		 "refusals took nothing");
	redisFree(c);
}

TEST(store_slot_expires_renews_releases)
{
	const char *held[2] = { "n1", "ghost" };
	redisContext *c = db_fresh();
	long long out[3];

	if (!c)
		return;
	/* a slot not renewed frees itself at its deadline */
	CHECK(acquire(c, "alice", "e1", 100, 1, 0, out) == 3 && out[0] == 1, "e1 acquired");
	CHECK(acquire(c, "alice", "e2", 100, 1, 0, out) == 3 && out[0] == 0 && out[1] == 1,
	      "e2 waits for e1");
	sleep_ms(150);
	CHECK(acquire(c, "alice", "e2", 100, 1, 0, out) == 3 && out[0] == 1 && out[1] == 1 &&
	      out[2] == 1, "e1 expired: e2 has the only slot, in the tier too");
	sleep_ms(150);

	/* renewed, it outlives its first deadline */
	CHECK(acquire(c, "alice", "n1", 300, 1, 0, out) == 3 && out[0] == 1, "n1 acquired");
	sleep_ms(150);
	CHECK_EQ(renew(c, "alice", 300, 2, held), 1, "n1 renewed, the ghost not");
	check_ttls(c, "renew");
	sleep_ms(250);  /* past the first deadline (300), before the new one (450) */
	CHECK(acquire(c, "alice", "n2", 300, 1, 0, out) == 3 && out[0] == 0 && out[1] == 1,
	      "n1 still holds the slot after its first deadline");
	sleep_ms(300);
	CHECK_EQ(renew(c, "alice", 300, 1, held), 0, "an expired slot is not brought back");
	CHECK(acquire(c, "alice", "n2", 300, 1, 0, out) == 3 && out[0] == 1, "then n2 gets it");

	/* released: free at once, once */
	CHECK_EQ(release(c, "alice", "n2"), 2, "n2 released from both sets");
	CHECK_EQ(release(c, "alice", "n2"), 0, "a second release removes nothing");
	CHECK(acquire(c, "alice", "l1", 100, 1, 1, out) == 3 && out[0] == 1 && out[1] == 1 &&
	      out[2] == 1, "l1 has the freed slot");
	check_ttls(c, "release");
	redisFree(c);
}

TEST(store_hello_counts_live_instances)
{
	const char *key = K(L7_KEY_INSTANCES, NULL);
	redisContext *c = db_fresh();

	if (!c)
		return;
#define HELLO(name, stale) \
	script_int(c, SCRIPT_L7_HELLO, 1, &key, 2, (const char *[]){ name, stale })
	CHECK_EQ(HELLO("gw1", "10000"), 1, "one instance");
	CHECK_EQ(HELLO("gw2", "10000"), 2, "two");
	CHECK_EQ(HELLO("gw1", "10000"), 2, "gw1 again: still two");
	check_ttls(c, "hello");
	CHECK(cmd_int(c, "PTTL", "PTTL %s", key) <= 10001, "kept as long as an instance lives");
	sleep_ms(50);
	CHECK_EQ(HELLO("gw3", "30"), 1, "gw1 and gw2 went quiet 50 ms ago: only gw3 with 30 ms");
	CHECK_EQ(cmd_int(c, "ZCARD", "ZCARD %s", key), 1, "the stale ones are gone");
	sleep_ms(50);
	CHECK_EQ(cmd_int(c, "EXISTS", "EXISTS %s", key), 0, "nobody said hello: the set expired");
#undef HELLO
	redisFree(c);
}

/* --- bad arguments ------------------------------------------------------------------------ */

/* Every key's serialized value (DUMP), to see that nothing changed. */
struct snapshot {
	int n;
	char key[32][160];
	char *val[32];
	size_t len[32];
};

static void snap_take(redisContext *c, struct snapshot *s)
{
	redisReply *r = redisCommand(c, "KEYS *");

	memset(s, 0, sizeof(*s));
	if (!CHECK(r && r->type == REDIS_REPLY_ARRAY && r->elements <= NELEM(s->key), "KEYS")) {
		if (r)
			freeReplyObject(r);
		return;
	}
	for (size_t i = 0; i < r->elements; i++) {
		redisReply *d = redisCommand(c, "DUMP %s", r->element[i]->str);

		snprintf(s->key[s->n], sizeof(s->key[0]), "%s", r->element[i]->str);
		if (d && d->type == REDIS_REPLY_STRING) {
			s->val[s->n] = malloc(d->len);
			if (s->val[s->n])
				memcpy(s->val[s->n], d->str, d->len);
			s->len[s->n] = d->len;
		}
		if (d)
			freeReplyObject(d);
		s->n++;
	}
	freeReplyObject(r);
}

static void snap_free(struct snapshot *s)
{
	for (int i = 0; i < s->n; i++)
		free(s->val[i]);
	s->n = 0;
}

static int snap_same(const struct snapshot *a, const struct snapshot *b)
{
	if (a->n != b->n)
		return 0;
	for (int i = 0; i < a->n; i++) {
		int found = 0;

		for (int j = 0; j < b->n && !found; j++)
			found = !strcmp(a->key[i], b->key[j]) && a->len[i] == b->len[j] &&
				a->val[i] && b->val[j] && !memcmp(a->val[i], b->val[j], a->len[i]);
		if (!found)
			return 0;
	}
	return 1;
}

TEST(store_bad_arguments_write_nothing)
{
	/* valid calls; each row changes one argument (idx, 1-based ARGV) or the
	 * number of arguments or keys */
	static const char *const take_args[] = { "0", "60000", "60", "10", "6000", "1000", "600",
						 "100", "60000", "10000", "1", "300", "30000" };
	static const char *const settle_args[] = { "0", "60000", "60", "10", "6000", "1000", "600",
						   "100", "60000", "10000", "100", "0" };
	static const char *const acquire_args[] = { "r1", "10000", "2", "3" };
	static const char *const renew_args[] = { "10000", "r1" };
	static const char *const release_args[] = { "r1" };
	static const char *const hello_args[] = { "gw1", "10000" };
	static const struct {
		enum store_script_id id;
		int idx;
		const char *val;
		int dargs, dkeys;
	} rows[] = {
		{ SCRIPT_L7_TAKE, 3, "abc", 0, 0 }, { SCRIPT_L7_TAKE, 4, "-1", 0, 0 },
		{ SCRIPT_L7_TAKE, 12, "1.5", 0, 0 }, { SCRIPT_L7_TAKE, 5, "nan", 0, 0 },
		{ SCRIPT_L7_TAKE, 6, "inf", 0, 0 }, { SCRIPT_L7_TAKE, 9, "1e3", 0, 0 },
		{ SCRIPT_L7_TAKE, 1, "", 0, 0 }, { SCRIPT_L7_TAKE, 7, " 5", 0, 0 },
		{ SCRIPT_L7_TAKE, 8, "0x10", 0, 0 }, { SCRIPT_L7_TAKE, 10, "99999999999999999", 0, 0 },
		{ SCRIPT_L7_TAKE, 2, "0", 0, 0 }, { SCRIPT_L7_TAKE, 11, "2", 0, 0 },
		{ SCRIPT_L7_TAKE, 13, "0", 0, 0 }, { SCRIPT_L7_TAKE, 0, NULL, -1, 0 },
		{ SCRIPT_L7_TAKE, 0, NULL, 0, -1 },
		{ SCRIPT_L7_SETTLE, 11, "x", 0, 0 }, { SCRIPT_L7_SETTLE, 12, "2", 0, 0 },
		{ SCRIPT_L7_SETTLE, 2, "0", 0, 0 }, { SCRIPT_L7_SETTLE, 3, "-60", 0, 0 },
		{ SCRIPT_L7_SETTLE, 0, NULL, -1, 0 },
		{ SCRIPT_L7_SLOT_ACQUIRE, 1, "", 0, 0 }, { SCRIPT_L7_SLOT_ACQUIRE, 2, "0", 0, 0 },
		{ SCRIPT_L7_SLOT_ACQUIRE, 3, "-1", 0, 0 }, { SCRIPT_L7_SLOT_ACQUIRE, 4, "many", 0, 0 },
		{ SCRIPT_L7_SLOT_ACQUIRE, 0, NULL, -1, 0 },
		{ SCRIPT_L7_SLOT_RENEW, 1, "abc", 0, 0 }, { SCRIPT_L7_SLOT_RENEW, 1, "0", 0, 0 },
		{ SCRIPT_L7_SLOT_RENEW, 2, "", 0, 0 }, { SCRIPT_L7_SLOT_RENEW, 0, NULL, -1, 0 },
		{ SCRIPT_L7_SLOT_RELEASE, 1, "", 0, 0 }, { SCRIPT_L7_SLOT_RELEASE, 0, NULL, 0, -1 },
		{ SCRIPT_L7_HELLO, 2, "0", 0, 0 }, { SCRIPT_L7_HELLO, 2, "-5", 0, 0 }, { SCRIPT_L7_HELLO, 1, "", 0, 0 },
		{ SCRIPT_L7_HELLO, 0, NULL, -1, 0 },
	};
	struct take_in in = { .born = 0, .period = 60000, .l = L_ALL, .req = 1, .tok = 300,
			      .res_ttl = 30000 };
	const char *bucket_keys[3] = { K(L7_KEY_CALLER, "alice"), K(L7_KEY_TIER, NULL),
				       K(L7_KEY_RESERVATION, "r1") };
	const char *slot_keys[2] = { K(L7_KEY_CALLER_SLOTS, "alice"), K(L7_KEY_TIER_SLOTS, NULL) };
	const char *inst_key[1] = { K(L7_KEY_INSTANCES, NULL) };
	redisContext *c = db_fresh();
	struct snapshot before, after;
	long long out[L7_TAKE_REPLY_LEN];

	if (!c)
		return;
	/* some state to leave alone: buckets, a reservation, slots, instances */
	take(c, "alice", "r1", &in, out);
	acquire(c, "alice", "r1", 10000, 2, 3, out);
	script_int(c, SCRIPT_L7_HELLO, 1, inst_key, 2, hello_args);
	snap_take(c, &before);
	CHECK_EQ(before.n, 6, "keys to leave alone");

	for (size_t r = 0; r < NELEM(rows); r++) {
		const char *const *base;
		const char *const *keys;
		const char *args[16];
		int nargs, nkeys;
		redisReply *rep;
		char want[64];

		switch (rows[r].id) {
		case SCRIPT_L7_TAKE:
			base = take_args, nargs = NELEM(take_args), keys = bucket_keys, nkeys = 3;
			break;
		case SCRIPT_L7_SETTLE:
			base = settle_args, nargs = NELEM(settle_args), keys = bucket_keys, nkeys = 3;
			break;
		case SCRIPT_L7_SLOT_ACQUIRE:
			base = acquire_args, nargs = NELEM(acquire_args), keys = slot_keys, nkeys = 2;
			break;
		case SCRIPT_L7_SLOT_RENEW:
			base = renew_args, nargs = NELEM(renew_args), keys = slot_keys, nkeys = 2;
			break;
		case SCRIPT_L7_SLOT_RELEASE:
			base = release_args, nargs = NELEM(release_args), keys = slot_keys, nkeys = 2;
			break;
		default:
			base = hello_args, nargs = NELEM(hello_args), keys = inst_key, nkeys = 1;
			break;
		}
		for (int i = 0; i < nargs; i++)
			args[i] = base[i];
		if (rows[r].idx)
			args[rows[r].idx - 1] = rows[r].val;
		nargs += rows[r].dargs;
		nkeys += rows[r].dkeys;
		rep = script(c, rows[r].id, nkeys, keys, nargs, args);
		snprintf(want, sizeof(want), "ERR sluice %s: ", store_scripts[rows[r].id].name);
		CHECK(rep && rep->type == REDIS_REPLY_ERROR && strstr(rep->str, want),
		      "row %zu (%s): an error reply: %s", r, store_scripts[rows[r].id].name,
		      rep && rep->str ? rep->str : c->errstr);
		if (rows[r].idx && rep && rep->type == REDIS_REPLY_ERROR) {
			snprintf(want, sizeof(want), "ARGV[%d]", rows[r].idx);
			CHECK(strstr(rep->str, want), "row %zu: the message names %s: %s", r, want,
			      rep->str);
		}
		if (rep)
			freeReplyObject(rep);
		snap_take(c, &after);
		CHECK(snap_same(&before, &after), "row %zu (%s): nothing written", r,
		      store_scripts[rows[r].id].name);
		snap_free(&after);
	}
	snap_free(&before);
	redisFree(c);
}

/* The largest numbers the scripts take: replies stay integers, keys keep a TTL. */
TEST(store_extreme_arguments)
{
	const uint64_t big = 9007199254740992ULL;     /* 2^53 */
	struct take_in in = { .born = 0, .period = big,
			      .l = { { 1, 1, big, big }, { big, big, 0, big } }, .req = 0,
			      .tok = 0, .res_ttl = big };
	const char *inst = K(L7_KEY_INSTANCES, NULL);
	redisContext *c = db_fresh();
	long long out[L7_TAKE_REPLY_LEN];
	char bigs[24];

	if (!c)
		return;
	fmt_u64(bigs, big);
	if (!take(c, "max", "x1", &in, out)) {
		CHECK_EQ(out[L7_TAKE_ADMITTED], 1, "nothing drawn: admitted");
		for (int i = 0; i < L7_TAKE_REPLY_LEN; i++)
			CHECK(out[i] >= 0 && (uint64_t)out[i] <= big, "reply[%d] = %lld", i, out[i]);
	}
	check_ttls(c, "take");
	in.req = 1;
	in.tok = big;
	if (!take(c, "max", "x2", &in, out))
		CHECK(out[L7_TAKE_ADMITTED] == 0 && (uint64_t)out[L7_TAKE_RETRY_MS] == big,
		      "a wait beyond 2^53 ms reads 2^53: %lld", out[L7_TAKE_RETRY_MS]);
	CHECK_EQ(settle(c, "max", "x1", 0, big, &in.l, big, 1), 1, "settled");
	check_ttls(c, "settle");
	if (CHECK_EQ(acquire(c, "max", "x1", big, big, big, out), 3, "slot acquired"))
		CHECK_EQ(out[0], 1, "admitted");
	CHECK_EQ(renew(c, "max", big, 1, (const char *[]){ "x1" }), 1, "renewed");
	check_ttls(c, "slots");
	CHECK_EQ(script_int(c, SCRIPT_L7_HELLO, 1, &inst, 2, (const char *[]){ "gw", bigs }), 1,
		 "hello");
	check_ttls(c, "hello");
	redisFree(c);
}

/* --- the same arithmetic as limiter.c ------------------------------------------------------- */

static uint64_t rnd_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return rnd_state;
}

static uint64_t ms_ceil(uint64_t ns)
{
	return ns / MS_NS + (ns % MS_NS != 0);
}

/* ms from the script against ns from limiter.c: ceil of the same quotient,
 * in ms rather than ns. Only where the quotient is a whole number of ms can
 * the rounding of a double product tip the two ceilings one ms apart. */
static int ms_near(long long ms, uint64_t ns)
{
	long long want = (long long)ms_ceil(ns);
	uint64_t frac = ns % MS_NS;

	if (ms == want)
		return 1;
	return (frac <= 16 || frac >= MS_NS - 16) && ms >= want - 1 && ms <= want + 1;
}

/*
 * Random sequences on one bucket (one of the four, the others unlimited) of
 * takes and settles, each after a random elapsed time: the script's reply
 * and the level it stores against limiter.c's bucket functions on the same
 * level, time and now. The elapsed time is set by back-dating the bucket's
 * time to the server's clock; the script's now is one of the ms between two
 * reads of the clock around it, and one of them must match.
 */
TEST(store_scripts_agree_with_limiter)
{
	redisContext *c = db_fresh();
	int steps = 0, mismatches = 0, admitted = 0, refused = 0, settled = 0;

	if (!c)
		return;
	for (int seq = 0; seq < 300 && mismatches < 5; seq++) {
		int which = (int)(rnd() % 4), tpm = which % 2;
		struct l7_limit lim = { .rate = 1 + rnd() % 1000, .burst = rnd() % 3 ? 1 + rnd() % 200
										    : 0 };
		uint64_t period = 100 + rnd() % 60000, burst;
		struct lims l = { { 0 }, { 0 } };
		char key[160];
		double level;

		snprintf(key, sizeof(key), "%s", bucket_key(which, "rand"));
		burst = lim.burst ? lim.burst : lim.rate;   /* burst 0 = the rate */
		l.rate[which] = lim.rate;
		l.burst[which] = lim.burst;
		level = (double)(rnd() % (4 * burst * 1000 + 1)) / 1000.0 - 2.0 * (double)burst;
		if (rnd() % 4 == 0)
			level = (double)burst;
		level *= 1 + (double)(rnd() % 1000) / 1e7;  /* digits beyond a round number */
		cmd_int(c, "DEL", "DEL %s", key);

		for (int step = 0; step < 6 && mismatches < 5; step++, steps++) {
			int settle_op = rnd() % 3 == 0;
			uint64_t cost = tpm ? rnd() % (2 * burst + 1) : rnd() % 4 != 0;
			uint64_t charged = rnd() % (2 * burst + 1), actual = rnd() % (2 * burst + 1);
			int refund = (int)(rnd() % 2);
			/* mostly a few units' refill, sometimes a long idle, sometimes
			 * a bucket time ahead of the clock */
			uint64_t unit_ms = period / lim.rate + 1;
			long long elapsed = rnd() % 4 == 0 ? (long long)(rnd() % (2 * period))
				: rnd() % 8 == 0 ? -(long long)(rnd() % 200)
				: (long long)(rnd() % (3 * unit_ms));
			uint64_t t0, t1, at, stored_at = 0;
			long long out[L7_TAKE_REPLY_LEN] = { 0 }, got_settle = -1;
			double stored = 0;
			int have_stored, matched = 0;

			t0 = server_ms(c);
			at = (uint64_t)((long long)t0 - elapsed);
			bucket_set(c, key, bucket_field[which], level, at);
			if (settle_op) {
				char v[24];

				fmt_u64(v, charged);
				redisReply *r = redisCommand(c, "SET %s %s PX 60000",
							     K(L7_KEY_RESERVATION, "rr"), v);
				if (r)
					freeReplyObject(r);
				got_settle = settle(c, "rand", "rr", 0, period, &l, actual, refund);
			} else {
				struct take_in in = { .born = 0, .period = period, .l = l,
						      .req = tpm ? 1 : (int)cost, .tok = tpm ? cost : 0,
						      .res_ttl = 60000 };

				if (take(c, "rand", "rt", &in, out))
					return (void)redisFree(c);
			}
			t1 = server_ms(c);
			have_stored = bucket_get(c, key, bucket_field[which], &stored, &stored_at);

			for (uint64_t now = t0; now <= t1 && now <= t0 + 5000 && !matched; now++) {
				struct bucket b = { .level = level, .at_ns = at * MS_NS };
				uint64_t pns = period * MS_NS, nns = now * MS_NS, wait = 0;
				int ok = 1;

				if (settle_op) {
					double delta = tpm ? (double)charged - (double)actual
							   : (refund ? 1 : 0);

					bucket_adjust(&b, &lim, pns, nns, delta);
					ok = got_settle == 1;
				} else {
					if (cost)
						wait = bucket_take(&b, &lim, pns, nns, (double)cost);
					else
						bucket_adjust(&b, &lim, pns, nns, 0);
					ok = out[L7_TAKE_ADMITTED] == (wait == 0) &&
					     out[L7_TAKE_REASON] == (wait ? which + 1 : 0) &&
					     ms_near(out[L7_TAKE_RETRY_MS], wait) &&
					     (uint64_t)out[3 + 2 * which] ==
						     bucket_remaining(&b, &lim, pns, nns) &&
					     ms_near(out[4 + 2 * which],
						     bucket_reset_ns(&b, &lim, pns, nns));
				}
				/* a refusal writes nothing; otherwise the very same double */
				if (!settle_op && wait)
					ok = ok && have_stored && stored == level && stored_at == at;
				else
					ok = ok && have_stored && stored == b.level &&
					     stored_at * MS_NS == b.at_ns;
				matched = ok;
			}
			if (settle_op)
				settled++;
			else if (out[L7_TAKE_ADMITTED])
				admitted++;
			else
				refused++;
			if (!matched) {
				mismatches++;
				CHECK(0, "seq %d step %d: %s on bucket %d (rate %llu burst %llu period "
				      "%llu) level %.17g elapsed %lld cost %llu charged %llu actual %llu "
				      "refund %d: script stored %.17g, reply %lld %lld %lld %lld %lld",
				      seq, step, settle_op ? "settle" : "take", which,
				      (unsigned long long)lim.rate, (unsigned long long)lim.burst,
				      (unsigned long long)period, level, elapsed,
				      (unsigned long long)cost, (unsigned long long)charged,
				      (unsigned long long)actual, refund, stored,
				      settle_op ? got_settle : out[0], out[1], out[2],
				      out[3 + 2 * which], out[4 + 2 * which]);
			}
			/* go on from what the script left */
			if (have_stored)
				level = stored;
		}
	}
	CHECK(steps >= 1500 || mismatches, "ran %d steps", steps);
	CHECK(admitted > 200 && refused > 200 && settled > 200,
	      "a mix: %d admitted, %d refused, %d settled", admitted, refused, settled);
	CHECK_EQ(mismatches, 0, "steps where the script and limiter.c disagree");
	redisFree(c);
}
