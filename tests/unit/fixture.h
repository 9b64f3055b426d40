/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * fixture.h - the programs under test: XDP (client to server) and TC egress
 * (server to client) sharing one set of maps, loaded unpinned with the test
 * clock, policy applied through the same commands the CLI takes, frames run
 * with BPF_PROG_TEST_RUN, and the maps read back with the stats helpers.
 *
 * Every helper that can fail reports through CHECK, so a test only checks
 * what it is about.
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

struct fx {
	struct sluice_xdp *skel;
	struct sluice_tc *tc; /* NULL unless opened with fx_opts.tc */
	struct sluice_maps m;
	int prog_fd;
	int tc_fd;
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
};
int fx_open_opts(struct fx *f, const struct fx_opts *o);
void fx_close(struct fx *f);

/* Applies command lines ("rule add dport 80 pps 10", "deny add P timeout 5")
 * in one policy transaction, as `sluice -f` would. For a single `rule add`,
 * returns the rule's slot; otherwise 0; a negative errno on failure (with
 * the error text in e if given, else a failed check). */
int fx_policy(struct fx *f, const char *const *lines, int n, char *err, size_t errlen);
int fx_cmd(struct fx *f, const char *line);
/* The rule id in a slot (after fx_cmd). */
__u32 fx_rule_id(struct fx *f, int slot);

/* The test clock (both programs'), as an offset from f->t0. */
void fx_at(struct fx *f, __u64 offset_ns);
__u64 fx_now(struct fx *f);

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
void fx_counters(struct fx *f, __u64 out[SLUICE_CNT_MAX]);
struct sluice_rule_stats fx_rstats(struct fx *f, int slot);

/* 0 and *out, or -ENOENT. */
int fx_bucket(struct fx *f, const struct sluice_bucket_key *k, struct sluice_bucket *out);
/* Bucket key of rule `id` for a source address (v4 or v6 text, already
 * masked by the caller) with prefix length plen. */
struct sluice_bucket_key fx_bkey(__u32 id, const char *addr, __u8 plen);
size_t fx_nbuckets(struct fx *f);

/* Deny list entry for a prefix ("198.18.0.0/24"): 0 and *out, or -ENOENT. */
int fx_deny_get(struct fx *f, const char *prefix, struct sluice_deny_val *out);
int fx_deny_put(struct fx *f, const char *prefix, const struct sluice_deny_val *v);

#endif
