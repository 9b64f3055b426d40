/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* loader.h - load the XDP program (with pinned, shared maps) and attach it
 * to an interface through a pinned bpf_link. */
#ifndef SLUICE_LOADER_H
#define SLUICE_LOADER_H

#include <linux/types.h>

struct sluice_xdp;
struct sluice_tc;

struct load_opts {
	int pin;              /* reuse/create the maps under SLUICE_PIN_ROOT */
	__u32 state_entries;  /* per-source state table size, 0 = default */
	__u32 flow_entries;   /* flow table size, 0 = default */
	int test_clock;       /* tests: take time from bss sluice_test_now */
	__u64 test_clock_slack_ns; /* tests: the test clock stands for a coarse
				    * clock of this tick (0: a precise one) */
	int no_tc;            /* the XDP program will have no TC partner */
};

enum attach_mode { MODE_AUTO = 0, MODE_NATIVE, MODE_GENERIC };

int loader_open(struct sluice_xdp **out, const struct load_opts *o);
/* The TC egress program, sharing every map of a loaded XDP object. */
int loader_open_tc(struct sluice_tc **out, struct sluice_xdp *xdp, const struct load_opts *o);
/* Starts the flow sweeper's timer, or hands it to this program. */
int loader_arm_sweeper(struct sluice_xdp *xdp);
/* Size of a pinned map (sluice_buckets, sluice_flows), 0 if none yet. */
__u32 loader_pinned_entries(const char *map_name);
__u32 loader_pinned_state_entries(void);

/* Attach to ifindex; on success *mode_used says which mode took. */
int loader_attach(struct sluice_xdp *skel, int ifindex, const char *dev,
		  enum attach_mode mode, enum attach_mode *mode_used);
int loader_detach(int ifindex, const char *dev);
/* The pinned link of ifindex: LINK_NONE, LINK_LIVE (its program id in
 * *prog_id if not NULL) or LINK_DEFUNCT (its interface was deleted). */
enum link_state { LINK_NONE = 0, LINK_LIVE, LINK_DEFUNCT };
enum link_state loader_link_state(int ifindex, __u32 *prog_id);
/* Swap the program of ifindex's pinned link for skel's, atomically
 * (bpf_link__update_program): no packet goes unchecked. */
int loader_update_link(struct sluice_xdp *skel, int ifindex, const char *dev);
/* TC egress: attach (replacing ours if there), detach, query. */
int loader_attach_tc(struct sluice_tc *tc, int ifindex, const char *dev);
int loader_detach_tc(int ifindex, const char *dev);
/* The prog id of our TC egress filter on ifindex, 0 if none. */
__u32 loader_tc_prog_id(int ifindex);
/* Initialise sluice_config on a freshly created map set; on an existing one
 * only a non-zero insert_rate is applied. */
int loader_init_config(int cfg_fd, __u32 state_entries, __u64 insert_rate);

#endif
