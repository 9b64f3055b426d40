// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#define TEST_GROUP "bpf" /* loads BPF programs or creates maps: needs root (harness.h) */
/*
 * bansync on a real Redis and real (unattached) BPF maps: two gateways,
 * each with its own deny list, rules and origin map and its own store
 * client. A ban that gateway A's rule put on A's deny list reaches B's as
 * a fleet ban (kind ban, SLUICE_BAN_BY_FLEET) with the same expiry and its
 * origin (rule:NAME at A) within a second; A's own entry stays A's; B does
 * not publish it back as its own.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <hiredis/hiredis.h>
#include "bansync.h"
#include "harness.h"
#include "loop.h"
#include "prefix.h"
#include "redis_fixture.h"
#include "scripts.h"
#include "store.h"

struct gw {
	struct sluice_maps m;
	struct store *s;
	struct bansync *b;
};

static int gw_open(struct loop *l, struct gw *g, const char *instance)
{
	LIBBPF_OPTS(bpf_map_create_opts, lpm, .map_flags = BPF_F_NO_PREALLOC);
	LIBBPF_OPTS(bpf_map_create_opts, hash, .map_flags = BPF_F_NO_PREALLOC);
	char sock[160], line[512], *w[16];
	const char *path = test_redis_socket();
	struct store_config c;
	struct errbuf e;
	int n = 0;

	memset(&g->m, 0xff, sizeof(g->m)); /* every fd -1 */
	g->m.owned = 0;
	g->m.rules = bpf_map_create(BPF_MAP_TYPE_ARRAY, NULL, sizeof(__u32),
				    sizeof(struct sluice_rule), SLUICE_MAX_RULES, NULL);
	g->m.deny = bpf_map_create(BPF_MAP_TYPE_LPM_TRIE, NULL, sizeof(struct sluice_lpm_key),
				   sizeof(struct sluice_deny_val), 1024, &lpm);
	g->m.ban_origin = bpf_map_create(BPF_MAP_TYPE_HASH, NULL, sizeof(struct sluice_lpm_key),
					 sizeof(struct sluice_ban_origin), 1024, &hash);
	if (!CHECK(g->m.rules >= 0 && g->m.deny >= 0 && g->m.ban_origin >= 0,
		   "create the maps: %s", strerror(errno)))
		return -1;
	if (!CHECK(path != NULL, "redis: %s", test_redis_error()))
		return -1;
	snprintf(sock, sizeof(sock), "unix:%s", path);
	snprintf(line, sizeof(line), "store redis %s timeout 200ms prefix bsync instance %s", sock,
		 instance);
	for (char *t = strtok(line, " "); t && n < 16; t = strtok(NULL, " "))
		w[n++] = t;
	if (!CHECK(store_config_parse(n, w, &c, &e) == 0, "parse: %s", e.msg))
		return -1;
	if (!CHECK(store_open(l, &c, store_scripts, SCRIPT_MAX, NULL, NULL, &g->s) == 0, "open"))
		return -1;
	return CHECK(bansync_open(l, g->s, &g->m, &g->b) == 0, "bansync_open") ? 0 : -1;
}

static void gw_close(struct gw *g)
{
	bansync_close(g->b);
	if (g->s)
		store_close(g->s);
	close(g->m.rules);
	close(g->m.deny);
	close(g->m.ban_origin);
}

static void key_of(const char *pfx_s, struct sluice_lpm_key *k, struct prefix *p)
{
	struct errbuf e;

	prefix_parse(pfx_s, p, &e);
	prefix_to_lpm(p, 0, k);
}

TEST(bansync_two_gateways)
{
	struct gw a = { 0 }, b = { 0 };
	struct sluice_rule r = { .id = 7, .flags = SLUICE_RULE_IN_USE, .name = "strict" };
	struct sluice_deny_val v = { 0 }, got;
	struct sluice_ban_origin o;
	struct sluice_lpm_key k;
	struct prefix p;
	struct loop *l;
	redisContext *rc;
	uint64_t t0, end;
	__u32 zero = 0;
	int found = 0;
	char dir[] = "/tmp/sluice-bansync.XXXXXX", *old = getenv("SLUICE_PIN_ROOT");
	char saved[512] = "";

	/* bansync writes under the pin directory's lock: a directory of our own */
	if (!CHECK(mkdtemp(dir) != NULL, "mkdtemp: %s", strerror(errno)))
		return;
	if (old)
		snprintf(saved, sizeof(saved), "%s", old);
	setenv("SLUICE_PIN_ROOT", dir, 1);
	if (!CHECK(loop_new(&l) == 0, "loop"))
		return;
	rc = test_redis_connect();
	if (rc) {
		freeReplyObject(redisCommand(rc, "DEL bsync:{bans}:exp bsync:{bans}:seq "
					     "bsync:{bans}:from bsync:{bans}:last"));
		redisFree(rc);
	}
	if (gw_open(l, &a, "gw-a") || gw_open(l, &b, "gw-b"))
		goto out;
	bpf_map_update_elem(a.m.rules, &zero, &r, BPF_ANY);
	key_of("198.51.100.7", &k, &p);
	t0 = loop_clock();
	v.expires_ns = t0 + 5000 * 1000000ULL;
	v.created_ns = t0;
	v.kind = SLUICE_DENY_BAN;
	v.rule_id = 7;
	v.prefix_len = p.len;
	CHECK(bpf_map_update_elem(a.m.deny, &k, &v, BPF_ANY) == 0, "ban at a");

	end = t0 + 2000 * 1000000ULL;
	while (loop_clock() < end && !found) {
		loop_run_once(l, 10);
		found = !bpf_map_lookup_elem(b.m.deny, &k, &got);
	}
	if (!CHECK(found, "b has the ban within 2 s"))
		goto out;
	printf("# bansync: a's ban on b's deny list after %llu ms\n",
	       (unsigned long long)((loop_clock() - t0) / 1000000));
	CHECK(loop_clock() - t0 < 1000 * 1000000ULL, "within a second");
	CHECK(got.kind == SLUICE_DENY_BAN && got.rule_id == SLUICE_BAN_BY_FLEET &&
	      got.prefix_len == 32, "a fleet ban: kind %u rule %u len %u", got.kind, got.rule_id,
	      got.prefix_len);
	CHECK(got.expires_ns + 100 * 1000000ULL > v.expires_ns &&
	      got.expires_ns < v.expires_ns + 100 * 1000000ULL, "the same expiry (+- 100 ms): %lld ms",
	      (long long)(got.expires_ns - v.expires_ns) / 1000000);
	CHECK(!bpf_map_lookup_elem(b.m.ban_origin, &k, &o) && !strcmp(o.by, "rule:strict") &&
	      !strcmp(o.where, "gw-a") && o.expires_ns == got.expires_ns, "its origin");
	/* a few more periods: a keeps its own, b does not publish it back */
	end = loop_clock() + 700 * 1000000ULL;
	while (loop_clock() < end)
		loop_run_once(l, 10);
	CHECK(!bpf_map_lookup_elem(a.m.deny, &k, &got) && got.rule_id == 7 &&
	      got.expires_ns == v.expires_ns, "a's entry is a's");
	CHECK(bansync_stats(a.b)->published == 1 && bansync_stats(b.b)->published == 0,
	      "published once, by a: %llu %llu", (unsigned long long)bansync_stats(a.b)->published,
	      (unsigned long long)bansync_stats(b.b)->published);
	CHECK_EQ(bansync_stats(b.b)->applied, 1, "applied once at b");
out:
	gw_close(&a);
	gw_close(&b);
	for (int i = 0; i < 20; i++)
		loop_run_once(l, 1);
	loop_free(l);
	rmdir(dir);
	if (old)
		setenv("SLUICE_PIN_ROOT", saved, 1);
	else
		unsetenv("SLUICE_PIN_ROOT");
}
