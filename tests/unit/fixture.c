// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "sluice_xdp.skel.h"
#include "command.h"
#include "fixture.h"
#include "harness.h"
#include "loader.h"
#include "parse.h"
#include "policy.h"
#include "prefix.h"
#include "stats.h"

int fx_open(struct fx *f, __u32 state_entries)
{
	struct load_opts o = { .pin = 0, .test_clock = 1, .state_entries = state_entries };
	int err;

	memset(f, 0, sizeof(*f));
	f->prog_fd = -1;
	err = loader_open(&f->skel, &o);
	if (!CHECK(err == 0, "loader_open: %s", strerror(-err)))
		return err ? err : -EINVAL;
	if (!CHECK(f->skel->bss != NULL, "skeleton has no mmapped .bss")) {
		fx_close(f);
		return -EINVAL;
	}
	maps_from_skel(&f->m, f->skel);
	f->prog_fd = bpf_program__fd(f->skel->progs.sluice_xdp);
	f->t0 = monotonic_ns();
	fx_at(f, 0);
	return 0;
}

void fx_close(struct fx *f)
{
	if (f->skel)
		sluice_xdp__destroy(f->skel);
	f->skel = NULL;
}

int fx_policy(struct fx *f, const char *const *lines, int n, char *errout, size_t errlen)
{
	struct command_result res;
	struct errbuf e = { { 0 } };
	struct policy *p;
	int i, err, slot = 0;

	p = calloc(1, sizeof(*p));
	if (!CHECK(p != NULL, "out of memory"))
		return -ENOMEM;
	err = policy_load(p, &f->m);
	if (!CHECK(err == 0, "policy_load: %s", strerror(-err))) {
		free(p);
		return err;
	}
	for (i = 0; i < n; i++) {
		char line[512], *words[COMMAND_MAX_WORDS];
		int nw;

		snprintf(line, sizeof(line), "%s", lines[i]);
		nw = split_words(line, words, COMMAND_MAX_WORDS);
		err = nw < 0 ? nw : command_apply(p, nw, words, &res, &e);
		if (err)
			goto out;
		if (n == 1 && res.added_rule) {
			for (slot = 0; slot < SLUICE_MAX_RULES; slot++)
				if (p->rules[slot].id == res.rule_id && policy_rule_live(p, slot))
					break;
		}
	}
	err = policy_commit(p, &f->m);
	if (err)
		snprintf(e.msg, sizeof(e.msg), "policy_commit: %s", strerror(-err));
out:
	policy_free(p);
	free(p);
	if (err) {
		if (errout)
			snprintf(errout, errlen, "%s", e.msg);
		else
			CHECK(0, "'%s': %s", lines[i < n ? i : n - 1], e.msg);
		return err;
	}
	return slot;
}

int fx_cmd(struct fx *f, const char *line)
{
	return fx_policy(f, &line, 1, NULL, 0);
}

__u32 fx_rule_id(struct fx *f, int slot)
{
	struct sluice_rule r = {};
	__u32 k = (__u32)slot;

	if (bpf_map_lookup_elem(f->m.rules, &k, &r))
		return 0;
	return r.id;
}

void fx_at(struct fx *f, __u64 offset_ns)
{
	f->skel->bss->sluice_test_now = f->t0 + offset_ns;
}

__u64 fx_now(struct fx *f)
{
	return f->skel->bss->sluice_test_now;
}

int fx_run(struct fx *f, const __u8 *frame, size_t len)
{
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = frame, .data_size_in = (__u32)len,
		    .repeat = 1);

	if (bpf_prog_test_run_opts(f->prog_fd, &o))
		return -errno;
	return (int)o.retval;
}

int fx_send(struct fx *f, const struct pkt_spec *s)
{
	__u8 buf[PKT_MAX];
	size_t n = pkt_build(s, buf, sizeof(buf));

	if (!n)
		return -EINVAL;
	return fx_run(f, buf, n);
}

__u64 fx_counter(struct fx *f, enum sluice_counter c)
{
	__u64 v = 0;
	int err = maps_percpu_sum(f->m.counters, (__u32)c, &v, 1);

	CHECK(err == 0, "read counter %d: %s", (int)c, strerror(-err));
	return v;
}

void fx_counters(struct fx *f, __u64 out[SLUICE_CNT_MAX])
{
	int err = stats_counters(&f->m, out);

	CHECK(err == 0, "read counters: %s", strerror(-err));
}

struct sluice_rule_stats fx_rstats(struct fx *f, int slot)
{
	struct sluice_rule_stats s = {};
	int err = stats_rule(&f->m, (__u32)slot, &s);

	CHECK(err == 0, "read rule stats of slot %d: %s", slot, strerror(-err));
	return s;
}

int fx_bucket(struct fx *f, const struct sluice_bucket_key *k, struct sluice_bucket *out)
{
	if (bpf_map_lookup_elem(f->m.buckets, k, out))
		return -errno;
	return 0;
}

struct sluice_bucket_key fx_bkey(__u32 id, const char *addr, __u8 plen)
{
	struct sluice_bucket_key k = { .rule_id = id, .prefix_len = plen };

	if (inet_pton(AF_INET, addr, k.addr) == 1)
		k.family = SLUICE_AF_INET;
	else if (inet_pton(AF_INET6, addr, k.addr) == 1)
		k.family = SLUICE_AF_INET6;
	return k;
}

size_t fx_nbuckets(struct fx *f)
{
	struct bucket_row *rows = NULL;
	size_t n = 0;
	int err = stats_buckets(&f->m, &rows, &n);

	CHECK(err == 0, "read buckets: %s", strerror(-err));
	free(rows);
	return n;
}

static int deny_key(const char *prefix, struct sluice_lpm_key *k)
{
	struct errbuf e;
	struct prefix p;

	if (!CHECK(prefix_parse(prefix, &p, &e) == 0, "bad test prefix %s: %s", prefix, e.msg))
		return -EINVAL;
	prefix_to_lpm(&p, 0, k);
	return 0;
}

int fx_deny_get(struct fx *f, const char *prefix, struct sluice_deny_val *out)
{
	struct sluice_lpm_key k;

	if (deny_key(prefix, &k))
		return -EINVAL;
	/* An LPM lookup finds the longest match, not the exact entry: walk
	 * the keys to tell "this entry" from "an entry that covers it". */
	{
		struct sluice_lpm_key cur, next;
		void *prev = NULL;

		while (!bpf_map_get_next_key(f->m.deny, prev, &next)) {
			if (!memcmp(&next, &k, sizeof(k)))
				return bpf_map_lookup_elem(f->m.deny, &next, out) ? -errno : 0;
			cur = next;
			prev = &cur;
		}
	}
	return -ENOENT;
}

int fx_deny_put(struct fx *f, const char *prefix, const struct sluice_deny_val *v)
{
	struct sluice_lpm_key k;

	if (deny_key(prefix, &k))
		return -EINVAL;
	if (bpf_map_update_elem(f->m.deny, &k, v, BPF_ANY))
		return -errno;
	return 0;
}
