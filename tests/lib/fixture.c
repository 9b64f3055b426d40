// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "floor.skel.h"
#include "sluice_xdp.skel.h"
#include "sluice_tc.skel.h"
#include "check.h"
#include "command.h"
#include "fixture.h"
#include "loader.h"
#include "parse.h"
#include "policy.h"
#include "prefix.h"
#include "stats.h"
#include "util.h"

int fx_open(struct fx *f, __u32 state_entries)
{
	struct fx_opts o = { .state_entries = state_entries };

	return fx_open_opts(f, &o);
}

int fx_open_opts(struct fx *f, const struct fx_opts *fo)
{
	/* Preallocating a production-sized flow table costs the kernel most
	 * of a fixture's open; no unit test needs more than a few thousand
	 * flows unless it asks. */
	struct load_opts o = { .pin = 0, .test_clock = !fo->real_clock,
			       .state_entries = fo->state_entries,
			       .flow_entries = fo->flow_entries ? fo->flow_entries
								: FX_DEFAULT_FLOW_ENTRIES,
			       .no_tc = fo->no_tc, .test_clock_slack_ns = fo->tick_ns };
	int err;

	memset(f, 0, sizeof(*f));
	f->prog_fd = -1;
	f->tc_fd = -1;
	if (fo->floor) {
		f->floor = floor__open_and_load();
		if (!CHECK(f->floor != NULL, "load floor.bpf.o: %s", strerror(errno)))
			return -EINVAL;
		f->prog_fd = bpf_program__fd(f->floor->progs.floor_drop);
		f->tc_fd = bpf_program__fd(f->floor->progs.floor_tc);
		return 0;
	}
	err = loader_open(&f->skel, &o);
	if (!CHECK(err == 0, "loader_open: %s", strerror(-err)))
		return err ? err : -EINVAL;
	if (!CHECK(f->skel->bss != NULL, "skeleton has no mmapped .bss")) {
		fx_close(f);
		return -EINVAL;
	}
	if (fo->tc) {
		err = loader_open_tc(&f->tc, f->skel, &o);
		if (!CHECK(err == 0, "loader_open_tc: %s", strerror(-err)) ||
		    !CHECK(f->tc->bss != NULL, "TC skeleton has no mmapped .bss")) {
			fx_close(f);
			return err ? err : -EINVAL;
		}
		f->tc_fd = bpf_program__fd(f->tc->progs.sluice_tc_egress);
	}
	maps_from_skel(&f->m, f->skel);
	f->prog_fd = bpf_program__fd(f->skel->progs.sluice_xdp);
	if (fo->attach_config) {
		err = loader_init_config(f->m.cfg, fo->state_entries ? fo->state_entries
								     : SLUICE_DEFAULT_STATE_ENTRIES, 0);
		if (!CHECK(err == 0, "initialise config: %s", strerror(-err))) {
			fx_close(f);
			return err;
		}
	}
	f->t0 = monotonic_ns();
	if (!fo->real_clock)
		fx_at(f, 0);
	return 0;
}

void fx_close(struct fx *f)
{
	if (f->tc)
		sluice_tc__destroy(f->tc);
	f->tc = NULL;
	if (f->skel)
		sluice_xdp__destroy(f->skel);
	f->skel = NULL;
	if (f->floor)
		floor__destroy(f->floor);
	f->floor = NULL;
}

int fx_tx_begin(struct fx_tx *t, struct fx *f)
{
	memset(t, 0, sizeof(*t));
	t->f = f;
	t->p = calloc(1, sizeof(*t->p));
	if (!CHECK(t->p != NULL, "out of memory"))
		return t->err = -ENOMEM;
	t->err = policy_load(t->p, &f->m);
	if (!CHECK(t->err == 0, "policy_load: %s", strerror(-t->err))) {
		free(t->p);
		t->p = NULL;
	}
	return t->err;
}

void fx_tx_cmd(struct fx_tx *t, const char *fmt, ...)
{
	char line[sizeof(t->line)], *words[COMMAND_MAX_WORDS];
	struct command_result res = { 0 };
	struct errbuf e = { { 0 } };
	va_list ap;
	int nw;

	if (t->err)
		return;
	va_start(ap, fmt);
	vsnprintf(t->line, sizeof(t->line), fmt, ap);
	va_end(ap);
	memcpy(line, t->line, sizeof(line));
	nw = split_words(line, words, COMMAND_MAX_WORDS);
	t->err = nw < 0 ? nw : command_apply(t->p, nw, words, &res, &e);
	if (t->err)
		snprintf(t->msg, sizeof(t->msg), "%s", e.msg[0] ? e.msg : strerror(-t->err));
	else if (res.added_rule)
		t->added_rule_id = res.rule_id;
}

int fx_tx_rule(struct fx_tx *t, const char *name, struct sluice_rule *out)
{
	int slot = t->p ? policy_rule_find(t->p, name) : -1;

	if (slot < 0)
		return -ENOENT;
	*out = t->p->rules[slot];
	return 0;
}

int fx_tx_commit(struct fx_tx *t)
{
	if (!t->p)
		return t->err;
	if (!t->err) {
		t->err = policy_commit(t->p, &t->f->m);
		if (t->err)
			snprintf(t->msg, sizeof(t->msg), "policy_commit: %s", strerror(-t->err));
	}
	policy_free(t->p);
	free(t->p);
	t->p = NULL;
	return t->err;
}

int fx_policy(struct fx *f, const char *const *lines, int n, char *errout, size_t errlen)
{
	struct fx_tx t;
	int i, err, slot = 0;

	if (fx_tx_begin(&t, f))
		return t.err;
	for (i = 0; i < n && !t.err; i++) {
		t.added_rule_id = 0;
		fx_tx_cmd(&t, "%s", lines[i]);
		if (n == 1 && t.added_rule_id) {
			for (slot = 0; slot < SLUICE_MAX_RULES; slot++)
				if (t.p->rules[slot].id == t.added_rule_id &&
				    policy_rule_live(t.p, slot))
					break;
		}
	}
	err = fx_tx_commit(&t);
	if (err) {
		if (errout)
			snprintf(errout, errlen, "%s", t.msg);
		else
			CHECK(0, "'%s': %s", t.line, t.msg);
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
	/* Each object has its own .bss, so each its own clock. */
	f->skel->bss->sluice_test_now = f->t0 + offset_ns;
	if (f->tc)
		f->tc->bss->sluice_test_now = f->t0 + offset_ns;
}

__u64 fx_now(struct fx *f)
{
	return f->skel->bss->sluice_test_now;
}

int fx_test_run(int prog_fd, const void *frame, size_t len, __u32 repeat, __u32 *retval,
		__u32 *duration)
{
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = frame, .data_size_in = (__u32)len,
		    .repeat = repeat);

	if (bpf_prog_test_run_opts(prog_fd, &o))
		return -errno;
	if (retval)
		*retval = o.retval;
	if (duration)
		*duration = o.duration;
	return 0;
}

int fx_run(struct fx *f, const __u8 *frame, size_t len)
{
	__u32 ret = 0;
	int err = fx_test_run(f->prog_fd, frame, len, 1, &ret, NULL);

	return err ? err : (int)ret;
}

int fx_send(struct fx *f, const struct pkt_spec *s)
{
	__u8 buf[PKT_MAX];
	size_t n = pkt_build(s, buf, sizeof(buf));

	if (!n)
		return -EINVAL;
	return fx_run(f, buf, n);
}

int fx_run_tc(struct fx *f, const __u8 *frame, size_t len)
{
	__u32 ret = 0;
	int err;

	if (!CHECK(f->tc_fd >= 0, "no TC program (open with fx_opts.tc)"))
		return -ENOENT;
	err = fx_test_run(f->tc_fd, frame, len, 1, &ret, NULL);
	return err ? err : (int)ret;
}

int fx_send_tc(struct fx *f, const struct pkt_spec *s)
{
	__u8 buf[PKT_MAX];
	size_t n = pkt_build(s, buf, sizeof(buf));

	if (!n)
		return -EINVAL;
	return fx_run_tc(f, buf, n);
}

int fx_client(struct fx *f, const struct pkt_spec *c, __u16 flags, const char *data)
{
	struct pkt_spec s = *c;

	s.tcp_flags = flags;
	s.data = data;
	s.payload = 0;
	return fx_send(f, &s);
}

int fx_server(struct fx *f, const struct pkt_spec *c, __u16 flags, const char *data)
{
	struct pkt_spec s = pkt_reply(c, flags);

	s.data = data;
	return fx_send_tc(f, &s);
}

int fx_handshake(struct fx *f, const struct pkt_spec *c)
{
	int v1 = fx_client(f, c, PKT_SYN, NULL);
	int v2 = fx_server(f, c, PKT_SYN | PKT_ACK, NULL);
	int v3 = fx_client(f, c, PKT_ACK, NULL);

	if (!CHECK(v1 == XDP_PASS_V && v2 == TC_ACT_OK_V && v3 == XDP_PASS_V,
		   "handshake %s:%u > %s:%u: SYN %d, SYN-ACK %d, ACK %d", pkt_src(c), c->sport,
		   pkt_dst(c), c->dport, v1, v2, v3))
		return -1;
	return 0;
}

int fx_sweep(struct fx *f)
{
	__u8 frame[64] = { 0 };
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = frame, .data_size_in = sizeof(frame),
		    .repeat = 1);
	int err = bpf_prog_test_run_opts(bpf_program__fd(f->skel->progs.sluice_sweep), &o);

	if (!CHECK(err == 0 && o.retval == XDP_PASS_V, "sweep: %s, retval %u",
		   err ? strerror(errno) : "ran", o.retval))
		return -EIO;
	return 0;
}

static int cfg_update(struct fx *f, const struct sluice_config *want, int timeouts)
{
	struct sluice_config c;
	__u32 zero = 0;

	if (!CHECK(bpf_map_lookup_elem(f->m.cfg, &zero, &c) == 0, "read config: %s",
		   strerror(errno)))
		return -EIO;
	if (timeouts) {
		c.syn_timeout_ns = want->syn_timeout_ns;
		c.fin_timeout_ns = want->fin_timeout_ns;
		c.idle_timeout_ns = want->idle_timeout_ns;
	} else {
		c.flows_full = want->flows_full;
	}
	if (!CHECK(bpf_map_update_elem(f->m.cfg, &zero, &c, BPF_ANY) == 0, "write config: %s",
		   strerror(errno)))
		return -EIO;
	return 0;
}

int fx_timeouts(struct fx *f, __u64 syn_ns, __u64 fin_ns, __u64 idle_ns)
{
	struct sluice_config c = { .syn_timeout_ns = syn_ns, .fin_timeout_ns = fin_ns,
				   .idle_timeout_ns = idle_ns };

	return cfg_update(f, &c, 1);
}

int fx_flows_full(struct fx *f, __u32 policy)
{
	struct sluice_config c = { .flows_full = policy };

	return cfg_update(f, &c, 0);
}

struct sluice_flow_key fx_flow_key(const struct pkt_spec *s)
{
	struct sluice_flow_key k = { .client_port = s->sport, .server_port = s->dport };
	int af = s->family == 6 ? AF_INET6 : AF_INET;

	k.family = s->family == 6 ? SLUICE_AF_INET6 : SLUICE_AF_INET;
	CHECK(inet_pton(af, pkt_src(s), k.client) == 1 && inet_pton(af, pkt_dst(s), k.server) == 1,
	      "flow key: bad test address %s or %s", pkt_src(s), pkt_dst(s));
	return k;
}

int fx_flow(struct fx *f, const struct pkt_spec *s, struct sluice_flow *out)
{
	struct sluice_flow_key k = fx_flow_key(s);

	if (bpf_map_lookup_elem(f->m.flows, &k, out))
		return -errno;
	return 0;
}

/* Entries of a hash map, by walking its keys. */
static size_t map_count(int fd, size_t key_size, const char *what)
{
	__u8 cur[64], next[64];
	size_t n = 0;
	int err;

	if (!CHECK(key_size <= sizeof(cur), "%s: key too big", what))
		return 0;
	for (err = bpf_map_get_next_key(fd, NULL, next); !err;
	     err = bpf_map_get_next_key(fd, cur, next)) {
		memcpy(cur, next, key_size);
		n++;
	}
	CHECK(errno == ENOENT, "walk %s: %s", what, strerror(errno));
	return n;
}

size_t fx_nflows(struct fx *f)
{
	return map_count(f->m.flows, sizeof(struct sluice_flow_key), "flows");
}

int fx_conn_count(struct fx *f, const struct sluice_bucket_key *k, struct sluice_conn_count *out)
{
	if (bpf_map_lookup_elem(f->m.conns, k, out))
		return -errno;
	return 0;
}

size_t fx_nconns(struct fx *f)
{
	return map_count(f->m.conns, sizeof(struct sluice_bucket_key), "conns");
}

static int clear_hash(int fd, size_t key_size, const char *what)
{
	__u8 k[64];

	if (!CHECK(key_size <= sizeof(k), "%s: key too big", what))
		return -EINVAL;
	while (!bpf_map_get_next_key(fd, NULL, k))
		if (!CHECK(bpf_map_delete_elem(fd, k) == 0, "clear %s: %s", what, strerror(errno)))
			return -EIO;
	return 0;
}

int fx_clear_flows(struct fx *f)
{
	if (clear_hash(f->m.flows, sizeof(struct sluice_flow_key), "flows") ||
	    clear_hash(f->m.conns, sizeof(struct sluice_bucket_key), "conns"))
		return -EIO;
	return 0;
}

struct sluice_signals *fx_signals(struct fx *f, __u16 port)
{
	struct sluice_signals *s = calloc(1, sizeof(*s));
	__u32 k = port;

	if (!CHECK(s != NULL, "out of memory"))
		return NULL;
	if (bpf_map_lookup_elem(f->m.signals, &k, s)) {
		CHECK(errno == ENOENT, "read signals of port %u: %s", port, strerror(errno));
		free(s);
		return NULL;
	}
	return s;
}

__u64 fx_signal(struct fx *f, __u16 port, enum sluice_signal sig)
{
	struct sluice_signals *s = fx_signals(f, port);
	__u64 v = s ? s->counter[sig] : 0;

	free(s);
	return v;
}

__u64 fx_counter(struct fx *f, enum sluice_counter c)
{
	__u64 v = 0;
	int err = maps_percpu_sum(f->m.counters, (__u32)c, &v, 1);

	CHECK(err == 0, "read counter %d: %s", (int)c, strerror(-err));
	return v;
}

int fx_counters(struct fx *f, __u64 out[SLUICE_CNT_MAX])
{
	int err = stats_counters(&f->m, out);

	CHECK(err == 0, "read counters: %s", strerror(-err));
	return err;
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

/* Source i of the numbered population (fixture.h): family and address. */
static int source_addr(__u32 i, __u8 addr[16])
{
	struct in_addr a;

	memset(addr, 0, 16);
	if (i < FX_V4_SOURCES) {
		inet_pton(AF_INET, "198.18.0.1", &a);
		a.s_addr = htonl(ntohl(a.s_addr) + i);
		memcpy(addr, &a, 4);
		return AF_INET;
	}
	i -= FX_V4_SOURCES;
	inet_pton(AF_INET6, "2001:db8::1", addr);
	addr[4] = (__u8)(i >> 24);
	addr[5] = (__u8)(i >> 16);
	addr[6] = (__u8)(i >> 8);
	addr[7] = (__u8)i;
	return AF_INET6;
}

const char *fx_source(__u32 i, char *buf, size_t len)
{
	__u8 a[16];
	int af = source_addr(i, a);

	return inet_ntop(af, a, buf, (socklen_t)len);
}

struct sluice_bucket_key fx_source_bkey(const struct sluice_rule *r, __u32 i)
{
	struct sluice_bucket_key k;
	__u32 w[4];
	int j;

	memset(&k, 0, sizeof(k));
	k.rule_id = r->id;
	if (source_addr(i, (__u8 *)w) == AF_INET) {
		w[0] &= r->key_mask4;
		k.family = SLUICE_AF_INET;
		k.prefix_len = r->mask4;
		memcpy(k.addr, w, 4);
	} else {
		for (j = 0; j < 4; j++)
			w[j] &= r->key_mask6[j];
		k.family = SLUICE_AF_INET6;
		k.prefix_len = r->mask6;
		memcpy(k.addr, w, 16);
	}
	return k;
}

long fx_count_buckets(struct fx *f)
{
	__u32 batch_count = 8192, in_batch = 0, out_batch = 0;
	struct sluice_bucket_key *keys;
	struct sluice_bucket *vals;
	long total = 0;
	int first = 1, err;

	keys = calloc(batch_count, sizeof(*keys));
	vals = calloc(batch_count, sizeof(*vals));
	if (!CHECK(keys && vals, "out of memory")) {
		total = -ENOMEM;
		goto out;
	}
	for (;;) {
		__u32 n = batch_count;

		err = bpf_map_lookup_batch(f->m.buckets, first ? NULL : &in_batch, &out_batch, keys,
					   vals, &n, NULL);
		if (err && !CHECK(errno == ENOENT, "read the state table: %s", strerror(errno))) {
			total = -errno;
			goto out;
		}
		total += n;
		if (err)
			break; /* ENOENT: that was the last batch */
		in_batch = out_batch;
		first = 0;
	}
out:
	free(keys);
	free(vals);
	return total;
}

#define FILL_BATCH 65536

int fx_fill_buckets(struct fx *f, const struct sluice_rule *r, __u32 n,
		    const struct sluice_bucket *v)
{
	LIBBPF_OPTS(bpf_map_batch_opts, bo, .elem_flags = BPF_ANY);
	struct sluice_bucket_key *keys;
	struct sluice_bucket *vals;
	__u32 done = 0, i;
	long have;
	int err = 0;

	keys = calloc(FILL_BATCH, sizeof(*keys));
	vals = calloc(FILL_BATCH, sizeof(*vals));
	if (!CHECK(keys && vals, "out of memory")) {
		err = -ENOMEM;
		goto out;
	}
	for (i = 0; i < FILL_BATCH; i++)
		vals[i] = *v;
	while (done < n) {
		__u32 chunk = n - done < FILL_BATCH ? n - done : FILL_BATCH;

		for (i = 0; i < chunk; i++)
			keys[i] = fx_source_bkey(r, done + i);
		if (bpf_map_update_batch(f->m.buckets, keys, vals, &chunk, &bo)) {
			err = -errno;
			CHECK(0, "fill the state table at %u: %s", done, strerror(-err));
			goto out;
		}
		done += chunk;
	}
	have = fx_count_buckets(f);
	if (!CHECK(have == (long)n, "the state table holds %ld entries after filling %u "
		   "(evictions?)", have, n))
		err = have < 0 ? (int)have : -EIO;
out:
	free(keys);
	free(vals);
	return err;
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
