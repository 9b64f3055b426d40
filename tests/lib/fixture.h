/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * fixture.h - the programs under test: XDP (client to server) and TC egress
 * (server to client) sharing one set of maps, loaded unpinned with the test
 * clock, policy applied through the same commands the CLI takes, frames run
 * with BPF_PROG_TEST_RUN, and the maps read back with the stats helpers.
 *
 * Every helper that can fail reports through CHECK (check.h), so a test
 * only checks what it is about. The unit tests (tests/unit/) and
 * sluice-bench (bench/bench.c) both use it.
 */
#ifndef SLUICE_TEST_FIXTURE_H
#define SLUICE_TEST_FIXTURE_H

#include <stddef.h>
#include "sluice.h"
#include "maps.h"
#include "pkt.h"

#define XDP_DROP_V 1
#define XDP_PASS_V 2
#define TC_ACT_OK_V 0

struct floor;
struct policy;

struct fx {
	struct sluice_xdp *skel; /* NULL for the floor */
	struct floor *floor;  /* NULL unless opened with fx_opts.floor */
	struct sluice_tc *tc; /* NULL unless opened with fx_opts.tc */
	struct sluice_maps m;
	int prog_fd;          /* XDP: sluice_xdp, or floor_drop */
	int tc_fd;            /* TC egress: sluice_tc_egress, or floor_tc */
	__u64 t0; /* the test clock's origin: CLOCK_MONOTONIC at open, so
		   * deny-list timeouts (which userspace stamps with the real
		   * clock) line up with the program's clock */
};

/* state_entries 0 = the default table size. Returns 0 or fails a check. */
int fx_open(struct fx *f, __u32 state_entries);
#define FX_DEFAULT_FLOW_ENTRIES 8192

struct fx_opts {
	__u32 state_entries; /* 0 = the default size */
	__u32 flow_entries;  /* 0 = FX_DEFAULT_FLOW_ENTRIES */
	int tc;              /* load TC egress too (its verification takes a
			      * second, so only tests of the server side do) */
	int no_tc;           /* XDP as attached with --no-tc: tracks no flows */
	__u64 tick_ns;       /* the test clock stands for a coarse clock of this
			      * tick (the buckets' slack); 0: a precise one */
	int real_clock;      /* the kernel's clock, as attached (fx_at has no effect) */
	int attach_config;   /* write the config `sluice attach` writes (the
			      * state-insert limiter's defaults) */
	int floor;           /* instead of sluice: bpf/floor.bpf.c, a bare XDP_DROP
			      * and TC_ACT_OK (no maps: only fx_test_run applies) */
};
int fx_open_opts(struct fx *f, const struct fx_opts *o);
void fx_close(struct fx *f);

/* Applies command lines ("rule add dport 80 pps 10", "deny add P timeout 5")
 * in one policy transaction, as `sluice -f` would. For a single `rule add`,
 * returns the rule's slot; otherwise 0; a negative errno on failure (with
 * the error text in e if given, else a failed check). */
int fx_policy(struct fx *f, const char *const *lines, int n, char *err, size_t errlen);
int fx_cmd(struct fx *f, const char *line);

/* The same transaction a command at a time, printf-style: the first error
 * sticks (later commands are skipped) and fx_tx_commit returns it; t->line
 * and t->msg say which command failed and why. Nothing is CHECKed but the
 * policy's load in fx_tx_begin. */
struct fx_tx {
	struct fx *f;
	struct policy *p;
	int err;
	__u32 added_rule_id; /* of the last command that added a rule */
	char line[512];
	char msg[256];
};
int fx_tx_begin(struct fx_tx *t, struct fx *f);
void fx_tx_cmd(struct fx_tx *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Rule `name` as the transaction has it (its id and masks, before the
 * commit too): 0 and *out, or -ENOENT. */
int fx_tx_rule(struct fx_tx *t, const char *name, struct sluice_rule *out);
/* Commits unless a command failed, and ends the transaction. */
int fx_tx_commit(struct fx_tx *t);
/* The rule id in a slot (after fx_cmd). */
__u32 fx_rule_id(struct fx *f, int slot);

/* The test clock (both programs'), as an offset from f->t0. */
void fx_at(struct fx *f, __u64 offset_ns);
__u64 fx_now(struct fx *f);

/* BPF_PROG_TEST_RUN of any program on one frame, `repeat` times: 0 (with
 * the last verdict and the mean ns per run), or a negative errno. */
int fx_test_run(int prog_fd, const void *frame, size_t len, __u32 repeat, __u32 *retval,
		__u32 *duration);
/* Runs one frame: the XDP verdict, or a negative errno from the kernel. */
int fx_run(struct fx *f, const __u8 *frame, size_t len);
/* Builds s and runs it; -EINVAL if the spec does not build. */
int fx_send(struct fx *f, const struct pkt_spec *s);
/* The same through TC egress (a server's packet): TC_ACT_OK_V or -errno. */
int fx_run_tc(struct fx *f, const __u8 *frame, size_t len);
int fx_send_tc(struct fx *f, const struct pkt_spec *s);
/* One segment of the connection whose client sends c: from the client
 * through XDP (its verdict), or the server's reply through TC. `data` is
 * the payload (NULL: none). */
int fx_client(struct fx *f, const struct pkt_spec *c, __u16 flags, const char *data);
int fx_server(struct fx *f, const struct pkt_spec *c, __u16 flags, const char *data);
/* SYN, SYN-ACK, ACK; checks that the SYN and ACK pass. 0 or -1. */
int fx_handshake(struct fx *f, const struct pkt_spec *c);
/* One pass of the flow sweeper at the test clock's now. 0 or a failed check. */
int fx_sweep(struct fx *f);

/* Connection tracking settings (sluice_config): timeouts in ns, 0 = the
 * default; the flow-table-full policy (enum sluice_full_policy). */
int fx_timeouts(struct fx *f, __u64 syn_ns, __u64 fin_ns, __u64 idle_ns);
int fx_flows_full(struct fx *f, __u32 policy);

/* The flow of the connection whose client sends s: 0 and *out, or -ENOENT. */
struct sluice_flow_key fx_flow_key(const struct pkt_spec *s);
int fx_flow(struct fx *f, const struct pkt_spec *s, struct sluice_flow *out);
size_t fx_nflows(struct fx *f);
/* A conns count by its key: 0 and *out, or -ENOENT. */
int fx_conn_count(struct fx *f, const struct sluice_bucket_key *k, struct sluice_conn_count *out);
size_t fx_nconns(struct fx *f);
/* Empties the flow and count tables (between the rows of a table). */
int fx_clear_flows(struct fx *f);

/* A service's signals (malloc'd: 6 KiB), or NULL if it has no entry. */
struct sluice_signals *fx_signals(struct fx *f, __u16 port);
/* One counter of a service, 0 if it has no entry. */
__u64 fx_signal(struct fx *f, __u16 port, enum sluice_signal sig);

__u64 fx_counter(struct fx *f, enum sluice_counter c);
/* Every global counter: 0, or a negative errno (and a failed check). */
int fx_counters(struct fx *f, __u64 out[SLUICE_CNT_MAX]);
struct sluice_rule_stats fx_rstats(struct fx *f, int slot);

/* 0 and *out, or -ENOENT. */
int fx_bucket(struct fx *f, const struct sluice_bucket_key *k, struct sluice_bucket *out);
/* Bucket key of rule `id` for a source address (v4 or v6 text, already
 * masked by the caller) with prefix length plen. */
struct sluice_bucket_key fx_bkey(__u32 id, const char *addr, __u8 plen);
size_t fx_nbuckets(struct fx *f);

/* A large population of sources, numbered: source 0 is 198.18.0.1, the
 * next FX_V4_SOURCES - 1 count up from it through 198.18.0.0/15; the rest
 * are IPv6 /64s, 2001:db8:HHHH:LLLL::1 (HHHHLLLL = i - FX_V4_SOURCES).
 * Bucket keys are the same size either way. */
#define FX_V4_SOURCES 131070u
/* Source i as text (buf of INET6_ADDRSTRLEN), for a pkt_spec's src. */
const char *fx_source(__u32 i, char *buf, size_t len);
/* The bucket key that sluice_xdp builds for source i under rule r. */
struct sluice_bucket_key fx_source_bkey(const struct sluice_rule *r, __u32 i);
/* Puts sources 0..n-1 into the state table under rule r, each with bucket
 * v, in batches, and checks that the table then holds exactly n entries
 * (nothing evicted). 0 or a negative errno (and a failed check). */
int fx_fill_buckets(struct fx *f, const struct sluice_rule *r, __u32 n,
		    const struct sluice_bucket *v);
/* Entries in the state table, read in batches (fast for millions), or a
 * negative errno. */
long fx_count_buckets(struct fx *f);

/* Deny list entry for a prefix ("198.18.0.0/24"): 0 and *out, or -ENOENT. */
int fx_deny_get(struct fx *f, const char *prefix, struct sluice_deny_val *out);
int fx_deny_put(struct fx *f, const char *prefix, const struct sluice_deny_val *v);

#endif
