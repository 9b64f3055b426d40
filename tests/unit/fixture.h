/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * fixture.h - the XDP program under test: loaded unpinned with the test
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

struct fx {
	struct sluice_xdp *skel;
	struct sluice_maps m;
	int prog_fd;
	__u64 t0; /* the test clock's origin: CLOCK_MONOTONIC at open, so
		   * deny-list timeouts (which userspace stamps with the real
		   * clock) line up with the program's clock */
};

/* state_entries 0 = the default table size. Returns 0 or fails a check. */
int fx_open(struct fx *f, __u32 state_entries);
void fx_close(struct fx *f);

/* Applies command lines ("rule add dport 80 pps 10", "deny add P timeout 5")
 * in one policy transaction, as `sluice -f` would. For a single `rule add`,
 * returns the rule's slot; otherwise 0; a negative errno on failure (with
 * the error text in e if given, else a failed check). */
int fx_policy(struct fx *f, const char *const *lines, int n, char *err, size_t errlen);
int fx_cmd(struct fx *f, const char *line);
/* The rule id in a slot (after fx_cmd). */
__u32 fx_rule_id(struct fx *f, int slot);

/* The test clock, as an offset from f->t0. */
void fx_at(struct fx *f, __u64 offset_ns);
__u64 fx_now(struct fx *f);

/* Runs one frame: the XDP verdict, or a negative errno from the kernel. */
int fx_run(struct fx *f, const __u8 *frame, size_t len);
/* Builds s and runs it; -EINVAL if the spec does not build. */
int fx_send(struct fx *f, const struct pkt_spec *s);

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
