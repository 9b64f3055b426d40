// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <errno.h>
#include <time.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>
#include "sluice_xdp.skel.h"
#include "sluice_tc.skel.h"
#include "log.h"
#include "loader.h"
#include "pin.h"
#include "rate.h"
#include "sluice.h"
#include "tc_filters.h"

/* Our TC filter: one fixed handle and priority, so attach can replace it
 * and detach find it without owning the qdisc's other filters. */
#define TC_HANDLE 0x5c1
#define TC_PRIORITY 0xc1

__u32 loader_pinned_state_entries(void)
{
	return loader_pinned_entries("sluice_buckets");
}

__u32 loader_pinned_entries(const char *map_name)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);
	char path[256];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", pin_root(), map_name);
	fd = bpf_obj_get(path);
	if (fd < 0)
		return 0;
	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		info.max_entries = 0;
	close(fd);
	return info.max_entries;
}

/* The tick of the kernel's coarse clock, which the token buckets read
 * (bpf/clock.h): its resolution is the tick (TICK_NSEC). 10 ms, the
 * longest tick (HZ=100), if the kernel will not say. */
static __u64 coarse_clock_tick_ns(void)
{
	struct timespec res;

	if (clock_getres(CLOCK_MONOTONIC_COARSE, &res) || res.tv_sec ||
	    res.tv_nsec <= 0)
		return 10000000;
	return (__u64)res.tv_nsec;
}

int loader_open(struct sluice_xdp **out, const struct load_opts *o)
{
	LIBBPF_OPTS(bpf_object_open_opts, oo, .pin_root_path = pin_root());
	struct sluice_xdp *skel;
	struct bpf_map *map;
	int err;

	skel = sluice_xdp__open_opts(&oo);
	if (!skel) {
		err = -errno;
		pr_err("open BPF object: %s", strerror(-err));
		return err;
	}
	if (!o->pin) {
		bpf_object__for_each_map(map, skel->obj)
			bpf_map__set_pin_path(map, NULL);
	}
	if (o->state_entries)
		bpf_map__set_max_entries(skel->maps.sluice_buckets, o->state_entries);
	if (o->flow_entries) {
		/* A count entry exists only while a flow holds it (or briefly
		 * after), so the count table needs no more room than flows. */
		bpf_map__set_max_entries(skel->maps.sluice_flows, o->flow_entries);
		bpf_map__set_max_entries(skel->maps.sluice_conns, o->flow_entries);
	}
	skel->rodata->sluice_use_test_clock = o->test_clock ? 1 : 0;
	skel->rodata->sluice_clock_slack_ns = o->test_clock ? o->test_clock_slack_ns
							    : coarse_clock_tick_ns();
	skel->rodata->sluice_track_flows = o->no_tc ? 0 : 1;

	err = sluice_xdp__load(skel);
	if (err) {
		pr_err("load XDP program: %s (run with -v for the verifier log)", strerror(-err));
		sluice_xdp__destroy(skel);
		return err;
	}
	*out = skel;
	return 0;
}

int loader_open_tc(struct sluice_tc **out, struct sluice_xdp *xdp, const struct load_opts *o)
{
	struct sluice_tc *skel;
	struct bpf_map *map;
	int err;

	skel = sluice_tc__open();
	if (!skel) {
		err = -errno;
		pr_err("open TC BPF object: %s", strerror(-err));
		return err;
	}
	/* One set of maps: the XDP object's, pinned or not. */
	bpf_object__for_each_map(map, skel->obj) {
		struct bpf_map *twin;

		bpf_map__set_pin_path(map, NULL);
		if (bpf_map__is_internal(map))
			continue; /* its own .rodata/.bss */
		twin = bpf_object__find_map_by_name(xdp->obj, bpf_map__name(map));
		if (!twin) {
			pr_err("TC object: map %s has no twin in the XDP object (build mismatch)",
			       bpf_map__name(map));
			sluice_tc__destroy(skel);
			return -ENOENT;
		}
		err = bpf_map__reuse_fd(map, bpf_map__fd(twin));
		if (err) {
			pr_err("TC object: share map %s: %s", bpf_map__name(map), strerror(-err));
			sluice_tc__destroy(skel);
			return err;
		}
	}
	skel->rodata->sluice_use_test_clock = o->test_clock ? 1 : 0;
	err = sluice_tc__load(skel);
	if (err) {
		pr_err("load TC program: %s (run with -v for the verifier log)", strerror(-err));
		sluice_tc__destroy(skel);
		return err;
	}
	*out = skel;
	return 0;
}

int loader_arm_sweeper(struct sluice_xdp *xdp)
{
	unsigned char frame[64] = { 0 };
	LIBBPF_OPTS(bpf_test_run_opts, t, .data_in = frame, .data_size_in = sizeof(frame),
		    .repeat = 1);
	int err;

	err = bpf_prog_test_run_opts(bpf_program__fd(xdp->progs.sluice_gc_arm), &t);
	if (err) {
		err = -errno;
		pr_err("start the flow sweeper: %s", strerror(-err));
		return err;
	}
	if (t.retval != XDP_PASS) {
		pr_err("start the flow sweeper: its timer could not be armed");
		return -EIO;
	}
	return 0;
}

int loader_init_config(int cfg_fd, __u32 state_entries, __u64 insert_rate)
{
	struct sluice_config cfg = {};
	__u32 zero = 0;

	if (bpf_map_lookup_elem(cfg_fd, &zero, &cfg))
		return -errno;
	if (cfg.next_rule_id && !insert_rate)
		return 0; /* already initialised: keep the running policy */
	if (!cfg.next_rule_id) {
		cfg.next_rule_id = 1;
		cfg.syn_timeout_ns = SLUICE_DEFAULT_SYN_TIMEOUT_S * 1000000000ULL;
		cfg.fin_timeout_ns = SLUICE_DEFAULT_FIN_TIMEOUT_S * 1000000000ULL;
		cfg.idle_timeout_ns = SLUICE_DEFAULT_IDLE_TIMEOUT_S * 1000000000ULL;
		cfg.flows_full = SLUICE_FULL_OPEN;
	}
	if (!insert_rate)
		insert_rate = state_entries / 10 ? state_entries / 10 : 1;
	cfg.insert_interval_fp = rate_interval_fp(insert_rate);
	/* Burst: a hundredth of the table, so a reconnect storm of real
	 * clients still gets entries of their own. */
	cfg.insert_tolerance_ns = rate_tolerance_ns(cfg.insert_interval_fp,
						    state_entries / 100 ? state_entries / 100 : 1);
	if (bpf_map_update_elem(cfg_fd, &zero, &cfg, BPF_ANY))
		return -errno;
	return 0;
}

static int link_create(int prog_fd, int ifindex, __u32 flags)
{
	LIBBPF_OPTS(bpf_link_create_opts, lo, .flags = flags);
	int fd = bpf_link_create(prog_fd, ifindex, BPF_XDP, &lo);

	return fd < 0 ? -errno : fd;
}

static const char *mode_name(enum attach_mode m)
{
	return m == MODE_NATIVE ? "native" : m == MODE_GENERIC ? "generic" : "auto";
}

int loader_attach(struct sluice_xdp *skel, int ifindex, const char *dev,
		  enum attach_mode mode, enum attach_mode *mode_used)
{
	int prog_fd = bpf_program__fd(skel->progs.sluice_xdp);
	char path[256];
	int fd, err;

	pin_link_path(ifindex, path, sizeof(path));
	fd = bpf_obj_get(path);
	if (fd >= 0) {
		struct bpf_link_info info = {};
		__u32 len = sizeof(info);

		err = bpf_obj_get_info_by_fd(fd, &info, &len);
		close(fd);
		/* A link whose interface was deleted is defunct (ifindex 0); a
		 * new interface that got the same index may be attached. */
		if (err || info.xdp.ifindex) {
			pr_err("attach %s: sluice is already attached (sluice detach %s first)",
			       dev, dev);
			return -EEXIST;
		}
		pr_info("attach %s: removing the stale link of a deleted interface", dev);
		if (unlink(path)) {
			err = -errno;
			pr_err("attach %s: remove stale %s: %s", dev, path, strerror(-err));
			return err;
		}
	}

	if (mode == MODE_GENERIC) {
		fd = link_create(prog_fd, ifindex, XDP_FLAGS_SKB_MODE);
		*mode_used = MODE_GENERIC;
	} else {
		fd = link_create(prog_fd, ifindex, XDP_FLAGS_DRV_MODE);
		*mode_used = MODE_NATIVE;
		if (fd == -EOPNOTSUPP && mode == MODE_AUTO) {
			pr_info("attach %s: native XDP not supported, using generic", dev);
			fd = link_create(prog_fd, ifindex, XDP_FLAGS_SKB_MODE);
			*mode_used = MODE_GENERIC;
		}
	}
	if (fd < 0) {
		err = fd;
		if (err == -EOPNOTSUPP)
			pr_err("attach %s: XDP %s mode not supported by driver (use --mode generic)",
			       dev, mode_name(*mode_used));
		else if (err == -EBUSY || err == -EEXIST)
			pr_err("attach %s: another XDP program is attached "
			       "(remove it first: ip link set dev %s xdp off)", dev, dev);
		else
			pr_err("attach %s: %s", dev, strerror(-err));
		return err;
	}
	if (bpf_obj_pin(fd, path)) {
		err = -errno;
		pr_err("attach %s: pin link at %s: %s", dev, path, strerror(-err));
		bpf_link_detach(fd);
		close(fd);
		return err;
	}
	close(fd); /* the pin keeps the link, and the program, alive */
	return 0;
}

int loader_detach(int ifindex, const char *dev)
{
	char path[256];
	int fd, err = 0;

	pin_link_path(ifindex, path, sizeof(path));
	fd = bpf_obj_get(path);
	if (fd < 0) {
		err = -errno;
		if (err == -ENOENT)
			pr_err("detach %s: sluice is not attached to %s", dev, dev);
		else
			pr_err("detach %s: open %s: %s", dev, path, strerror(-err));
		return err;
	}
	if (bpf_link_detach(fd)) {
		err = -errno;
		pr_err("detach %s: %s", dev, strerror(-err));
	}
	close(fd);
	if (unlink(path) && !err) {
		err = -errno;
		pr_err("detach %s: remove %s: %s", dev, path, strerror(-err));
	}
	return err;
}

enum link_state loader_link_state(int ifindex, __u32 *prog_id)
{
	struct bpf_link_info info = {};
	__u32 len = sizeof(info);
	char path[256];
	int fd, err;

	pin_link_path(ifindex, path, sizeof(path));
	fd = bpf_obj_get(path);
	if (fd < 0)
		return LINK_NONE;
	err = bpf_obj_get_info_by_fd(fd, &info, &len);
	close(fd);
	if (err || !info.xdp.ifindex)
		return LINK_DEFUNCT;
	if (prog_id)
		*prog_id = info.prog_id;
	return LINK_LIVE;
}

int loader_update_link(struct sluice_xdp *skel, int ifindex, const char *dev)
{
	struct bpf_link *link;
	char path[256];
	int err;

	pin_link_path(ifindex, path, sizeof(path));
	link = bpf_link__open(path);
	if (!link) {
		err = -errno;
		pr_err("update %s: open link %s: %s", dev, path, strerror(-err));
		return err;
	}
	err = bpf_link__update_program(link, skel->progs.sluice_xdp);
	if (err)
		pr_err("update %s: replace the XDP program in place: %s", dev, strerror(-err));
	bpf_link__disconnect(link); /* the pin keeps it attached */
	bpf_link__destroy(link);
	return err;
}

static void tc_hook_init(struct bpf_tc_hook *h, int ifindex)
{
	memset(h, 0, sizeof(*h));
	h->sz = sizeof(*h);
	h->ifindex = ifindex;
	h->attach_point = BPF_TC_EGRESS;
}

int loader_attach_tc(struct sluice_tc *tc, int ifindex, const char *dev)
{
	LIBBPF_OPTS(bpf_tc_opts, o, .handle = TC_HANDLE, .priority = TC_PRIORITY,
		    .flags = BPF_TC_F_REPLACE);
	struct bpf_tc_hook h;
	int err;

	tc_hook_init(&h, ifindex);
	err = bpf_tc_hook_create(&h); /* the clsact qdisc */
	if (err && err != -EEXIST) {
		pr_err("attach %s: create clsact qdisc: %s", dev, strerror(-err));
		return err;
	}
	o.prog_fd = bpf_program__fd(tc->progs.sluice_tc_egress);
	err = bpf_tc_attach(&h, &o);
	if (err) {
		pr_err("attach %s: TC egress filter: %s", dev, strerror(-err));
		return err;
	}
	return 0;
}

int loader_detach_tc(int ifindex, const char *dev)
{
	LIBBPF_OPTS(bpf_tc_opts, o, .handle = TC_HANDLE, .priority = TC_PRIORITY);
	struct bpf_tc_hook h;
	int err;

	tc_hook_init(&h, ifindex);
	err = bpf_tc_detach(&h, &o);
	if (err == -ENOENT || err == -EINVAL)
		return 0; /* not there: attached with --no-tc, or removed by hand */
	if (err) {
		pr_err("detach %s: TC egress filter: %s", dev, strerror(-err));
		return err;
	}
	/* Leave the interface as we found it: the clsact qdisc goes too,
	 * unless somebody else's filters still hang on it. */
	if (tc_clsact_filters(ifindex) == 0) {
		h.attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS;
		err = bpf_tc_hook_destroy(&h);
		if (err && err != -ENOENT && err != -EINVAL)
			pr_info("detach %s: remove the empty clsact qdisc: %s", dev, strerror(-err));
	}
	return 0;
}

__u32 loader_tc_prog_id(int ifindex)
{
	LIBBPF_OPTS(bpf_tc_opts, o, .handle = TC_HANDLE, .priority = TC_PRIORITY);
	struct bpf_tc_hook h;

	tc_hook_init(&h, ifindex);
	if (bpf_tc_query(&h, &o))
		return 0;
	return o.prog_id;
}
