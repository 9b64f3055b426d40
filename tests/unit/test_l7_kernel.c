// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#define TEST_GROUP "bpf" /* loads BPF programs or creates maps: needs root (harness.h) */
/*
 * test_l7_kernel.c - sluice-l7's bridge to the kernel side against real maps
 * pinned under a temporary SLUICE_PIN_ROOT (as `sluice attach` pins them,
 * nothing attached to any interface): signal batches arrive exactly, even
 * with two writers at once; without pins everything is dropped and counted
 * until the pins appear; a replaced pin is followed; bans land on the deny
 * list as `sluice deny add PREFIX timeout N` puts them there.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "sluice_xdp.skel.h"
#include "harness.h"
#include "l7_kernel.h"
#include "loader.h"
#include "maps.h"
#include "pin.h"
#include "policy.h"
#include "prefix.h"

#define NSEC 1000000000ULL

/* A pin root of our own under /sys/fs/bpf, and the maps pinned in it. */
struct pins {
	char root[128];
	char *old_root;          /* the environment's SLUICE_PIN_ROOT, restored */
	struct sluice_xdp *skel; /* NULL until pins_load */
};

static int pins_begin(struct pins *p)
{
	const char *old = getenv("SLUICE_PIN_ROOT");

	memset(p, 0, sizeof(*p));
	p->old_root = old ? strdup(old) : NULL;
	if (!CHECK(bpffs_ensure() == 0, "bpffs at /sys/fs/bpf"))
		return -1;
	snprintf(p->root, sizeof(p->root), "/sys/fs/bpf/sluice-test-l7k-XXXXXX");
	if (!CHECK(mkdtemp(p->root) != NULL, "create a pin root: %s", strerror(errno))) {
		p->root[0] = '\0';
		return -1;
	}
	setenv("SLUICE_PIN_ROOT", p->root, 1);
	return 0;
}

/* Loads the XDP object with its maps pinned by name under the root, and
 * initialises the config, as `sluice attach` does (attaching nothing). */
static int pins_load(struct pins *p, struct sluice_xdp **out)
{
	struct load_opts o = { .pin = 1, .flow_entries = 1024, .state_entries = 1024 };
	struct sluice_xdp *skel = NULL;
	int err;

	err = pin_dir_create();
	if (!CHECK(err == 0, "create %s: %s", p->root, strerror(-err)))
		return -1;
	err = loader_open(&skel, &o);
	if (!CHECK(err == 0, "load the XDP object pinned at %s: %s", p->root, strerror(-err)))
		return -1;
	err = loader_init_config(bpf_map__fd(skel->maps.sluice_cfg), 1024, 0);
	if (!CHECK(err == 0, "init config: %s", strerror(-err))) {
		sluice_xdp__destroy(skel);
		return -1;
	}
	*out = skel;
	return 0;
}

/* Removes every pin (the maps live on while an fd holds them). */
static void pins_unpin(struct pins *p)
{
	char path[512];
	struct dirent *d;
	DIR *dir = opendir(p->root);

	if (!dir)
		return;
	while ((d = readdir(dir))) {
		if (!strcmp(d->d_name, ".") || !strcmp(d->d_name, "..") ||
		    !strcmp(d->d_name, "links"))
			continue;
		snprintf(path, sizeof(path), "%s/%s", p->root, d->d_name);
		if (unlink(path))
			fprintf(stderr, "  remove %s: %s\n", path, strerror(errno));
	}
	closedir(dir);
}

static void pins_end(struct pins *p)
{
	char path[512];

	if (p->skel)
		sluice_xdp__destroy(p->skel);
	p->skel = NULL;
	if (p->root[0]) {
		pins_unpin(p);
		snprintf(path, sizeof(path), "%s/links", p->root);
		rmdir(path);
		if (rmdir(p->root))
			fprintf(stderr, "  remove %s: %s\n", p->root, strerror(errno));
	}
	if (p->old_root)
		setenv("SLUICE_PIN_ROOT", p->old_root, 1);
	else
		unsetenv("SLUICE_PIN_ROOT");
	free(p->old_root);
}

static int read_signals(int fd, __u32 port, struct sluice_signals *s)
{
	memset(s, 0, sizeof(*s));
	if (bpf_map_lookup_elem(fd, &port, s))
		return -errno;
	return 0;
}

/* The expected state of one histogram after observing ns[0..n). */
static void hist_expect(struct sluice_hist_data *h, const __u64 *ns, int n)
{
	int i;

	memset(h, 0, sizeof(*h));
	for (i = 0; i < n; i++) {
		h->count++;
		h->sum_us += ns[i] / 1000;
		h->bucket[sluice_hist_bucket(ns[i] / 1000)]++;
	}
}

static void check_hist(const struct sluice_hist_data *got, const struct sluice_hist_data *want,
		       const char *what)
{
	int b;

	CHECK(got->count == want->count, "%s count: got %llu, want %llu", what,
	      (unsigned long long)got->count, (unsigned long long)want->count);
	CHECK(got->sum_us == want->sum_us, "%s sum_us: got %llu, want %llu", what,
	      (unsigned long long)got->sum_us, (unsigned long long)want->sum_us);
	for (b = 0; b < SLUICE_HIST_BUCKETS; b++)
		if (got->bucket[b] != want->bucket[b]) {
			CHECK(0, "%s bucket %d: got %llu, want %llu", what, b,
			      (unsigned long long)got->bucket[b],
			      (unsigned long long)want->bucket[b]);
			return;
		}
}

/* Latencies from 0 to past the last bucket, so several buckets fill. */
static const __u64 lat_ns[] = { 0, 999, 1000, 7000, 8000, 15999, 123456, 5000000,
				987654321, 70000000000ULL, 3000, 3000 };
#define N_LAT (int)(sizeof(lat_ns) / sizeof(lat_ns[0]))

TEST(l7_kernel_signals_exact)
{
	struct sluice_signals *s = calloc(1, sizeof(*s));
	struct sluice_hist_data *want = calloc(1, sizeof(*want));
	struct l7_kernel *k = NULL;
	struct pins p = { .skel = NULL };
	int fd, i;

	if (!CHECK(s && want, "out of memory") || pins_begin(&p) || pins_load(&p, &p.skel))
		goto out;
	fd = bpf_map__fd(p.skel->maps.sluice_signals);
	CHECK_EQ(l7_kernel_open(&k), 0, "l7_kernel_open");
	if (!CHECK(k && l7_kernel_active(k), "active with the maps pinned"))
		goto out;

	/* 200 requests on 8080: the first SLUICE_L7_BATCH go at once. */
	for (i = 0; i < 200; i++)
		l7_kernel_count(k, 8080, SLUICE_SIG_REQUESTS);
	CHECK_EQ(l7_kernel_flushed(k), SLUICE_L7_BATCH, "a full batch flushed at once");
	CHECK_EQ(read_signals(fd, 8080, s), 0, "port 8080 has an entry");
	CHECK_EQ(s->counter[SLUICE_SIG_REQUESTS], SLUICE_L7_BATCH, "requests after one batch");

	/* A partial batch, mixed ports and kinds, goes on the explicit flush. */
	for (i = 0; i < N_LAT; i++) {
		l7_kernel_observe(k, 8080, SLUICE_HIST_TOTAL, lat_ns[i]);
		l7_kernel_observe(k, 9090, SLUICE_HIST_PER_TOKEN, lat_ns[N_LAT - 1 - i]);
	}
	for (i = 0; i < 3; i++)
		l7_kernel_count(k, 9090, SLUICE_SIG_HTTP_5XX);
	l7_kernel_count(k, 9090, SLUICE_SIG_L7_429);
	CHECK_EQ(read_signals(fd, 9090, s), -ENOENT, "nothing on 9090 before the flush");
	CHECK_EQ(l7_kernel_flush(k), 0, "flush");
	CHECK_EQ(l7_kernel_flush(k), 0, "flush of an empty batch");
	CHECK_EQ(l7_kernel_flushed(k), 200 + 2 * N_LAT + 4, "events flushed");
	CHECK_EQ(l7_kernel_dropped(k), 0, "events dropped");

	CHECK_EQ(read_signals(fd, 8080, s), 0, "port 8080");
	CHECK_EQ(s->counter[SLUICE_SIG_REQUESTS], 200, "8080 requests");
	CHECK_EQ(s->counter[SLUICE_SIG_HTTP_5XX], 0, "8080 5xx");
	hist_expect(want, lat_ns, N_LAT);
	check_hist(&s->hist[SLUICE_HIST_TOTAL], want, "8080 total");
	CHECK_EQ(s->hist[SLUICE_HIST_PER_TOKEN].count, 0, "8080 per-token count");
	CHECK(want->bucket[SLUICE_HIST_BUCKETS - 1] == 1 && want->bucket[0] == 2,
	      "the latencies reach the first and last buckets");

	CHECK_EQ(read_signals(fd, 9090, s), 0, "port 9090");
	CHECK_EQ(s->counter[SLUICE_SIG_HTTP_5XX], 3, "9090 5xx");
	CHECK_EQ(s->counter[SLUICE_SIG_L7_429], 1, "9090 429s");
	CHECK_EQ(s->counter[SLUICE_SIG_REQUESTS], 0, "9090 requests");
	check_hist(&s->hist[SLUICE_HIST_PER_TOKEN], want, "9090 per-token");
	CHECK_EQ(s->hist[SLUICE_HIST_TOTAL].count, 0, "9090 total count");

	/* Out-of-range indexes are refused here, not sent. */
	l7_kernel_count(k, 9090, SLUICE_SIG_MAX);
	l7_kernel_observe(k, 9090, SLUICE_HISTS, 1000);
	CHECK_EQ(l7_kernel_dropped(k), 2, "bad indexes dropped");

	/* close flushes what is queued. */
	l7_kernel_count(k, 9090, SLUICE_SIG_HTTP_2XX);
	l7_kernel_close(k);
	k = NULL;
	CHECK_EQ(read_signals(fd, 9090, s), 0, "port 9090 after close");
	CHECK_EQ(s->counter[SLUICE_SIG_HTTP_2XX], 1, "close flushed the queued event");
out:
	l7_kernel_close(k);
	pins_end(&p);
	free(s);
	free(want);
}

/* Two writers on one entry at once: each its own l7_kernel (its own loaded
 * program) in its own thread, flushing many small batches. */
#define CONC_EVENTS 40000
#define CONC_PORT 7070

struct writer {
	struct l7_kernel *k;
	enum sluice_signal sig; /* each writer also counts one of its own */
	int failures;
};

static void *writer_run(void *arg)
{
	struct writer *w = arg;
	int i;

	for (i = 0; i < CONC_EVENTS; i++) {
		l7_kernel_count(w->k, CONC_PORT, SLUICE_SIG_REQUESTS);
		l7_kernel_observe(w->k, CONC_PORT, SLUICE_HIST_RESPONSE, (__u64)(i % 50) * 1000);
		l7_kernel_count(w->k, CONC_PORT, w->sig);
		if (i % 7 == 0 && l7_kernel_flush(w->k))
			w->failures++;
	}
	if (l7_kernel_flush(w->k))
		w->failures++;
	return NULL;
}

TEST(l7_kernel_concurrent_writers)
{
	struct sluice_signals *s = calloc(1, sizeof(*s));
	struct writer w[2] = { { .sig = SLUICE_SIG_HTTP_2XX }, { .sig = SLUICE_SIG_HTTP_4XX } };
	pthread_t th[2];
	__u64 sum_us = 0, in_bucket = 0;
	struct pins p = { .skel = NULL };
	int i, fd, started = 0;

	if (!CHECK(s != NULL, "out of memory") || pins_begin(&p) || pins_load(&p, &p.skel))
		goto out;
	fd = bpf_map__fd(p.skel->maps.sluice_signals);
	for (i = 0; i < 2; i++) {
		CHECK_EQ(l7_kernel_open(&w[i].k), 0, "l7_kernel_open");
		if (!CHECK(w[i].k && l7_kernel_active(w[i].k), "writer %d active", i))
			goto out;
	}
	for (i = 0; i < 2; i++) {
		if (!CHECK(pthread_create(&th[i], NULL, writer_run, &w[i]) == 0, "start writer %d",
			   i))
			break;
		started++;
	}
	for (i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	if (!CHECK_EQ(started, 2, "writers started"))
		goto out;
	for (i = 0; i < 2; i++) {
		CHECK_EQ(w[i].failures, 0, "failed flushes");
		CHECK_EQ(l7_kernel_flushed(w[i].k), 3ULL * CONC_EVENTS, "events flushed");
		CHECK_EQ(l7_kernel_dropped(w[i].k), 0, "events dropped");
	}
	for (i = 0; i < CONC_EVENTS; i++) {
		sum_us += (__u64)(i % 50);
		in_bucket += sluice_hist_bucket((__u64)(i % 50)) == sluice_hist_bucket(49);
	}
	CHECK_EQ(read_signals(fd, CONC_PORT, s), 0, "the port's entry");
	CHECK_EQ(s->counter[SLUICE_SIG_REQUESTS], 2ULL * CONC_EVENTS, "requests from both");
	CHECK_EQ(s->counter[SLUICE_SIG_HTTP_2XX], CONC_EVENTS, "writer 0's own counter");
	CHECK_EQ(s->counter[SLUICE_SIG_HTTP_4XX], CONC_EVENTS, "writer 1's own counter");
	CHECK_EQ(s->hist[SLUICE_HIST_RESPONSE].count, 2ULL * CONC_EVENTS, "observations");
	CHECK_EQ(s->hist[SLUICE_HIST_RESPONSE].sum_us, 2 * sum_us, "sum of observations");
	CHECK_EQ(s->hist[SLUICE_HIST_RESPONSE].bucket[sluice_hist_bucket(49)],
		 2 * in_bucket, "one bucket's count");
out:
	for (i = 0; i < 2; i++)
		l7_kernel_close(w[i].k);
	pins_end(&p);
	free(s);
}

/* The bridge's clock, set by the tests below. */
static __u64 fake_now;
static uint64_t fake_clock(void)
{
	return fake_now;
}

TEST(l7_kernel_inactive_then_attached)
{
	struct sluice_signals *s = calloc(1, sizeof(*s));
	struct sluice_xdp *second = NULL;
	struct l7_kernel *k = NULL;
	struct pins p = { .skel = NULL };
	int i, fd;
	__u8 v4[16] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 1 };

	if (!CHECK(s != NULL, "out of memory") || pins_begin(&p))
		goto out;
	/* Nothing pinned: open succeeds, inactive. */
	CHECK_EQ(l7_kernel_open(&k), 0, "l7_kernel_open without pins");
	if (!CHECK(k != NULL, "a handle without pins"))
		goto out;
	CHECK(!l7_kernel_active(k), "inactive without pins");
	fake_now = 1000 * NSEC;
	l7_kernel_set_clock(k, fake_clock);
	for (i = 0; i < SLUICE_L7_BATCH + 5; i++)
		l7_kernel_count(k, 8080, SLUICE_SIG_REQUESTS);
	CHECK_EQ(l7_kernel_flush(k), -ENOENT, "flush without pins");
	CHECK_EQ(l7_kernel_dropped(k), SLUICE_L7_BATCH + 5, "dropped without pins");
	CHECK_EQ(l7_kernel_flushed(k), 0, "flushed without pins");
	CHECK_EQ(l7_kernel_ban(k, v4, 10), -ENOENT, "a ban without pins");

	/* The pins appear; within the second since the last try, no retry. */
	if (pins_load(&p, &p.skel))
		goto out;
	fd = bpf_map__fd(p.skel->maps.sluice_signals);
	fake_now += NSEC / 2;
	l7_kernel_count(k, 8080, SLUICE_SIG_REQUESTS);
	CHECK_EQ(l7_kernel_flush(k), -ENOENT, "flush half a second later");
	CHECK(!l7_kernel_active(k), "no retry within a second");
	CHECK_EQ(l7_kernel_dropped(k), SLUICE_L7_BATCH + 6, "dropped before the retry");

	fake_now += NSEC;
	for (i = 0; i < 3; i++)
		l7_kernel_count(k, 8080, SLUICE_SIG_REQUESTS);
	CHECK_EQ(l7_kernel_flush(k), 0, "flush after the retry");
	CHECK(l7_kernel_active(k), "active after the retry");
	CHECK_EQ(l7_kernel_flushed(k), 3, "flushed after the retry");
	CHECK_EQ(read_signals(fd, 8080, s), 0, "port 8080");
	CHECK_EQ(s->counter[SLUICE_SIG_REQUESTS], 3, "only the events after the retry");

	/* sluice unload, then attach: new maps under the same pins. Until the
	 * next check the old map is used; after it, the new one. */
	pins_unpin(&p);
	if (pins_load(&p, &second))
		goto out;
	l7_kernel_count(k, 8080, SLUICE_SIG_REQUESTS);
	CHECK_EQ(l7_kernel_flush(k), 0, "flush before the pin check");
	CHECK_EQ(read_signals(fd, 8080, s), 0, "old map");
	CHECK_EQ(s->counter[SLUICE_SIG_REQUESTS], 4, "the old map, before the check");
	fake_now += 3 * NSEC;
	l7_kernel_count(k, 8080, SLUICE_SIG_REQUESTS);
	l7_kernel_count(k, 8080, SLUICE_SIG_REQUESTS);
	CHECK_EQ(l7_kernel_flush(k), 0, "flush after the pin check");
	CHECK(l7_kernel_active(k), "active on the new map");
	CHECK_EQ(read_signals(fd, 8080, s), 0, "old map");
	CHECK_EQ(s->counter[SLUICE_SIG_REQUESTS], 4, "the old map gets nothing more");
	CHECK_EQ(read_signals(bpf_map__fd(second->maps.sluice_signals), 8080, s), 0,
		 "new map");
	CHECK_EQ(s->counter[SLUICE_SIG_REQUESTS], 2, "the new map, after the check");

	/* Unloaded for good: inactive at the next check, drops counted. */
	pins_unpin(&p);
	fake_now += 3 * NSEC;
	l7_kernel_count(k, 8080, SLUICE_SIG_REQUESTS);
	CHECK_EQ(l7_kernel_flush(k), -ENOENT, "flush after unload");
	CHECK(!l7_kernel_active(k), "inactive after unload");
	CHECK_EQ(l7_kernel_dropped(k), SLUICE_L7_BATCH + 7, "dropped after unload");
	CHECK_EQ(l7_kernel_flushed(k), 6, "flushed in all");
out:
	l7_kernel_close(k);
	if (second)
		sluice_xdp__destroy(second);
	pins_end(&p);
	free(s);
}

static int deny_get(int fd, const char *prefix, struct sluice_deny_val *v)
{
	struct sluice_lpm_key key;
	struct prefix pfx;
	struct errbuf e;

	if (!CHECK(prefix_parse(prefix, &pfx, &e) == 0, "parse %s: %s", prefix, e.msg))
		return -EINVAL;
	prefix_to_lpm(&pfx, 0, &key);
	memset(v, 0, sizeof(*v));
	if (bpf_map_lookup_elem(fd, &key, v))
		return -errno;
	return 0;
}

static void check_ban(int fd, const char *prefix, __u32 len, __u64 ban_s, __u64 before,
		      __u64 after)
{
	struct sluice_deny_val v;

	if (!CHECK(deny_get(fd, prefix, &v) == 0, "%s on the deny list", prefix))
		return;
	/* A ban by sluice-l7: kept by sluiced's reload, counted as `ban` drops. */
	CHECK_EQ(v.kind, SLUICE_DENY_BAN, "deny kind");
	CHECK_EQ(v.rule_id, SLUICE_BAN_BY_L7, "issued by sluice-l7");
	CHECK_EQ(v.prefix_len, len, "deny prefix_len");
	CHECK(v.created_ns >= before && v.created_ns <= after,
	      "%s created within the ban call", prefix);
	CHECK_EQ(v.expires_ns - v.created_ns, ban_s * NSEC, "expiry ban_s after creation");
}

TEST(l7_kernel_bans)
{
	__u8 v4[16] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 198, 51, 100, 7 };
	__u8 v6[16], v6b[16];
	struct sluice_deny_val v;
	struct l7_kernel *k = NULL;
	struct pins p = { .skel = NULL };
	__u64 t0, t1;
	int fd;

	if (pins_begin(&p) || pins_load(&p, &p.skel))
		goto out;
	fd = bpf_map__fd(p.skel->maps.sluice_deny);
	inet_pton(AF_INET6, "2001:db8::42", v6);
	inet_pton(AF_INET6, "2001:db8::43", v6b);
	CHECK_EQ(l7_kernel_open(&k), 0, "l7_kernel_open");

	t0 = monotonic_ns();
	CHECK_EQ(l7_kernel_ban(k, v4, 60), 0, "ban an IPv4-mapped address");
	CHECK_EQ(l7_kernel_ban(k, v6, 3600), 0, "ban an IPv6 address");
	t1 = monotonic_ns();
	check_ban(fd, "198.51.100.7/32", 32, 60, t0, t1);
	check_ban(fd, "2001:db8::42/128", 128, 3600, t0, t1);
	/* An IPv4 ban is an IPv4 key, not the mapped IPv6 one. */
	CHECK_EQ(deny_get(fd, "::ffff:198.51.100.7/128", &v), -ENOENT, "no mapped IPv6 key");
	CHECK_EQ(deny_get(fd, "198.51.100.8/32", &v), -ENOENT, "only the banned address");

	/* Banned again for longer: the expiry moves out. */
	t0 = monotonic_ns();
	CHECK_EQ(l7_kernel_ban(k, v4, 120), 0, "ban again for longer");
	t1 = monotonic_ns();
	check_ban(fd, "198.51.100.7/32", 32, 120, t0, t1);

	/* A ban never shortens a deny: not a longer one, not a permanent one. */
	CHECK_EQ(l7_kernel_ban(k, v4, 5), 0, "a shorter ban");
	check_ban(fd, "198.51.100.7/32", 32, 120, t0, t1);
	{
		struct sluice_deny_val perm = { .kind = SLUICE_DENY_STATIC, .prefix_len = 128,
						.created_ns = 1 };
		struct sluice_lpm_key key;
		struct prefix pfx = { .family = SLUICE_AF_INET6, .len = 128 };

		memcpy(pfx.addr, v6b, 16);
		prefix_to_lpm(&pfx, 0, &key);
		CHECK(bpf_map_update_elem(fd, &key, &perm, BPF_ANY) == 0, "a permanent deny");
		CHECK_EQ(l7_kernel_ban(k, v6b, 30), 0, "ban a permanently denied address");
		CHECK(deny_get(fd, "2001:db8::43/128", &v) == 0 && v.expires_ns == 0 &&
		      v.created_ns == 1, "the permanent deny is untouched");
	}
	CHECK_EQ(l7_kernel_ban(k, v4, 0), -EINVAL, "a ban of 0 s");
out:
	l7_kernel_close(k);
	pins_end(&p);
}
