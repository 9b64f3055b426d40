// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* attach, detach, status, unload: the program's life on interfaces. */
#include <dirent.h>
#include <errno.h>
#include <stddef.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <sys/stat.h>
#include <linux/if_link.h>
#include "sluice_xdp.skel.h"
#include "sluice_tc.skel.h"
#include "cli.h"
#include "json.h"
#include "loader.h"
#include "log.h"
#include "netns.h"
#include "opts.h"
#include "parse.h"
#include "pin.h"
#include "policy.h"
#include "stats.h"

struct attach_opts {
	int mode; /* enum attach_mode */
	int no_tc;
	__u64 state_size, insert_rate, flow_size;
};

static const struct cli_choice attach_modes[] = {
	{ "native", MODE_NATIVE },
	{ "generic", MODE_GENERIC },
	{ "auto", MODE_AUTO },
	{ .name = NULL },
};

static const struct cli_opt attach_options[] = {
	{ .name = "mode", .kind = CLI_ENUM, .off = offsetof(struct attach_opts, mode),
	  .choices = attach_modes,
	  .help = "native (driver), generic (skb) or auto (native, else generic; "
		  "the default)" },
	{ .name = "no-tc", .kind = CLI_FLAG, .off = offsetof(struct attach_opts, no_tc),
	  .help = "XDP only: connections are not tracked on DEV, so conns limits "
		  "and backend signals are off there (conn-rate still applies)" },
	{ .name = "state-size", .kind = CLI_U64, .off = offsetof(struct attach_opts, state_size),
	  .arg = "N", .min = 1024, .max = 1U << 26, .suffixes = 1, .what = "state size",
	  .help = "entries in the per-source state table (default 65536); fixed "
		  "once created, 'sluice unload' to change it" },
	{ .name = "insert-rate", .kind = CLI_U64, .off = offsetof(struct attach_opts, insert_rate),
	  .arg = "N", .min = 1, .max = 1U << 30, .suffixes = 1, .what = "insert rate",
	  .help = "new per-source entries per second (default: a tenth of the "
		  "table); sources past it share their rule's overflow bucket, so "
		  "a spoofed flood cannot evict the state of real clients" },
	{ .name = "flow-size", .kind = CLI_U64, .off = offsetof(struct attach_opts, flow_size),
	  .arg = "N", .min = 1024, .max = 1U << 26, .suffixes = 1, .what = "flow size",
	  .help = "entries in the connection table (default 65536), fixed like "
		  "--state-size; what a SYN gets when it is full: 'sluice set "
		  "flows-full open|closed'" },
	{ .name = NULL },
};

const struct cli_cmd attach_cmd = {
	"attach", "DEV", 1, 1,
	"Load the XDP program and attach it to DEV through a pinned bpf_link, and the\n"
	"TC egress program that sees the servers' replies on the same interface. The\n"
	"first attach creates the maps under /sys/fs/bpf/sluice; later ones share them.\n",
	attach_options,
};

static const struct cli_opt no_options[] = { { .name = NULL } };

const struct cli_cmd detach_cmd = {
	"detach", "DEV", 1, 1,
	"Detach sluice from DEV. The policy and its state stay pinned for the other\n"
	"interfaces and the next attach; 'sluice unload' removes them.\n",
	no_options,
};

struct status_opts {
	int json;
};

static const struct cli_opt status_options[] = {
	{ .name = "json", .short_name = 'j', .kind = CLI_FLAG,
	  .off = offsetof(struct status_opts, json), .help = "the same as one JSON object" },
	{ .name = NULL },
};

const struct cli_cmd status_cmd = {
	"status", NULL, 0, 0,
	"Show the interfaces sluice is attached to, in which mode and whether with\n"
	"TC egress, how full its tables are, and the connection tracking settings\n"
	"(sluice set).\n",
	status_options,
};

const struct cli_cmd unload_cmd = {
	"unload", NULL, 0, 0,
	"Detach sluice from every interface and remove everything pinned under\n"
	"/sys/fs/bpf/sluice: rules, lists, counters and per-source state.\n",
	no_options,
};

static int dev_index(const char *what, const char *dev)
{
	int ifindex = (int)if_nametoindex(dev);

	if (!ifindex)
		pr_err("%s %s: no such interface (see ip link)", what, dev);
	return ifindex;
}

int cmd_attach(int argc, char **argv)
{
	struct attach_opts o = { .mode = MODE_AUTO };
	struct load_opts lo = { .pin = 1 };
	enum attach_mode mode, used;
	struct sluice_xdp *skel = NULL;
	struct sluice_tc *tc = NULL;
	const char *dev = NULL;
	__u64 state, insert_rate, flows;
	__u32 pinned, pinned_flows;
	char *args[1];
	int n, lock, ifindex, err;

	n = cli_parse(&attach_cmd, argc, argv, &o, args);
	if (n < 0)
		return n == CLI_HELP ? 0 : EXIT_USAGE;
	dev = args[0];
	mode = (enum attach_mode)o.mode;
	lo.no_tc = o.no_tc;
	state = o.state_size;
	insert_rate = o.insert_rate;
	flows = o.flow_size;
	if (need_root("attach"))
		return 1;
	ifindex = dev_index("attach", dev);
	if (!ifindex)
		return 1;
	if (pin_dir_create())
		return 1;
	lock = pin_lock();
	if (lock < 0)
		return 1;

	pinned = loader_pinned_state_entries();
	if (pinned && state && state != pinned) {
		pr_err("attach %s: the state table exists with %u entries; "
		       "'sluice unload' first to resize it", dev, pinned);
		err = -EEXIST;
		goto out;
	}
	pinned_flows = loader_pinned_entries("sluice_flows");
	if (pinned_flows && flows && flows != pinned_flows) {
		pr_err("attach %s: the flow table exists with %u entries; "
		       "'sluice unload' first to resize it", dev, pinned_flows);
		err = -EEXIST;
		goto out;
	}
	lo.state_entries = pinned ? pinned : state ? (__u32)state : SLUICE_DEFAULT_STATE_ENTRIES;
	lo.flow_entries = pinned_flows ? pinned_flows : flows ? (__u32)flows
							       : SLUICE_DEFAULT_FLOW_ENTRIES;
	err = loader_open(&skel, &lo);
	if (err)
		goto out;
	err = loader_init_config(bpf_map__fd(skel->maps.sluice_cfg), lo.state_entries, insert_rate);
	if (err) {
		pr_err("attach %s: initialise config: %s", dev, strerror(-err));
		goto out;
	}
	/* TC first, so the first connection XDP tracks has its replies seen. */
	if (!lo.no_tc) {
		err = loader_open_tc(&tc, skel, &lo);
		if (!err)
			err = loader_attach_tc(tc, ifindex, dev);
		if (err)
			goto out;
	}
	err = loader_attach(skel, ifindex, dev, mode, &used);
	if (err) {
		if (!lo.no_tc)
			loader_detach_tc(ifindex, dev);
		goto out;
	}
	err = loader_arm_sweeper(skel);
	if (err)
		pr_err("attach %s: attached, but idle connections will not expire "
		       "until the next attach succeeds in starting the sweeper", dev);
	printf("attached to %s (%s mode%s)\n", dev, used == MODE_NATIVE ? "native" : "generic",
	       lo.no_tc ? ", XDP only" : ", TC egress");
	if (lo.no_tc)
		printf("note: no TC egress on %s: conns limits and backend signals are off "
		       "there; conn-rate still applies\n", dev);
out:
	sluice_tc__destroy(tc);
	sluice_xdp__destroy(skel);
	pin_unlock(lock);
	return err ? 1 : 0;
}

int cmd_detach(int argc, char **argv)
{
	char *args[1];
	int n, lock, ifindex, err;

	n = cli_parse(&detach_cmd, argc, argv, NULL, args);
	if (n < 0)
		return n == CLI_HELP ? 0 : EXIT_USAGE;
	argv = args;
	if (need_root("detach"))
		return 1;
	ifindex = dev_index("detach", argv[0]);
	if (!ifindex)
		return 1;
	lock = pin_lock();
	if (lock < 0)
		return 1;
	err = loader_detach(ifindex, argv[0]);
	if (!err)
		err = loader_detach_tc(ifindex, argv[0]);
	pin_unlock(lock);
	if (!err)
		printf("detached from %s\n", argv[0]);
	return err ? 1 : 0;
}

struct attachment {
	char pin[512];
	unsigned long netns; /* inode of the link's network namespace */
	int ifindex;
	char dev[IF_NAMESIZE];
	const char *mode;
	__u32 prog_id, link_id;
	__u32 tc_prog_id; /* our TC egress filter, 0 = none (--no-tc) */
};

/* Reads the pinned links. Returns the count, at most max. */
static int list_attachments(struct attachment *out, int max)
{
	struct dirent *de;
	DIR *d = opendir(pin_link_dir());
	unsigned long my_netns = 0;
	struct stat st;
	int n = 0;

	if (!d)
		return 0;
	if (!stat("/proc/self/ns/net", &st))
		my_netns = (unsigned long)st.st_ino;
	while ((de = readdir(d)) && n < max) {
		struct bpf_link_info info = {};
		__u32 len = sizeof(info);
		LIBBPF_OPTS(bpf_xdp_query_opts, q);
		char path[512];
		int fd;

		if (strncmp(de->d_name, "xdp-", 4))
			continue;
		snprintf(path, sizeof(path), "%s/%s", pin_link_dir(), de->d_name);
		fd = bpf_obj_get(path);
		if (fd < 0)
			continue;
		if (!bpf_obj_get_info_by_fd(fd, &info, &len)) {
			struct attachment *a = &out[n++];

			snprintf(a->pin, sizeof(a->pin), "%s", path);
			a->ifindex = (int)info.xdp.ifindex;
			a->prog_id = info.prog_id;
			a->link_id = info.id;
			a->tc_prog_id = 0;
			a->netns = 0;
			sscanf(de->d_name, "xdp-%lu-", &a->netns);
			a->mode = "unknown";
			snprintf(a->dev, sizeof(a->dev), "?");
			if (!a->ifindex) {
				a->mode = "defunct"; /* its interface was deleted */
			} else if (a->netns != my_netns) {
				/* names and modes only resolve in the link's own
				 * namespace */
				a->mode = "other-netns";
			} else if (if_indextoname(info.xdp.ifindex, a->dev) &&
				   !bpf_xdp_query(a->ifindex, 0, &q))
				a->mode = q.attach_mode == XDP_ATTACHED_DRV ? "native"
					: q.attach_mode == XDP_ATTACHED_SKB ? "generic"
					: q.attach_mode == XDP_ATTACHED_HW ? "offload"
					: q.attach_mode == XDP_ATTACHED_MULTI ? "multi" : "detached";
			a->tc_prog_id = a->netns == my_netns ? loader_tc_prog_id(a->ifindex) : 0;
		}
		close(fd);
	}
	closedir(d);
	return n;
}

/* A timeout as the flow sweeper uses it: 0 in the config means its default. */
static __u64 timeout_s(__u64 ns, __u64 default_s)
{
	return ns ? ns / 1000000000ULL : default_s;
}

static const char *full_policy_name(__u32 policy)
{
	return policy == SLUICE_FULL_CLOSED ? "closed" : "open";
}

int cmd_status(int argc, char **argv)
{
	struct attachment att[64];
	struct sluice_maps m;
	struct policy p;
	__u64 cnt[SLUICE_CNT_MAX];
	struct bucket_row *rows = NULL;
	size_t nrows = 0;
	__u64 flows = 0;
	__u32 flows_max = 0;
	struct status_opts o = { 0 };
	int n, i, nrules = 0, rc;

	rc = cli_parse(&status_cmd, argc, argv, &o, NULL);
	if (rc < 0)
		return rc == CLI_HELP ? 0 : EXIT_USAGE;
	cli.json = o.json;
	if (need_root("status"))
		return 1;
	if (maps_open_pinned(&m))
		return 1;
	if (policy_load(&p, &m) || stats_counters(&m, cnt) || stats_buckets(&m, &rows, &nrows) ||
	    stats_map_fill(m.flows, &flows, &flows_max)) {
		pr_err("status: reading the pinned maps failed");
		maps_close(&m);
		return 1;
	}
	for (i = 0; i < SLUICE_MAX_RULES; i++)
		nrules += policy_rule_live(&p, i);
	n = list_attachments(att, 64);

	if (cli.json) {
		struct json j;

		json_init(&j, stdout);
		json_obj_begin(&j, NULL);
		json_str(&j, "pin_root", pin_root());
		json_arr_begin(&j, "attached");
		for (i = 0; i < n; i++) {
			json_obj_begin(&j, NULL);
			json_str(&j, "dev", att[i].dev);
			json_u64(&j, "ifindex", (__u64)att[i].ifindex);
			json_u64(&j, "netns", att[i].netns);
			json_str(&j, "mode", att[i].mode);
			json_u64(&j, "prog_id", att[i].prog_id);
			json_u64(&j, "link_id", att[i].link_id);
			json_bool(&j, "tc_egress", att[i].tc_prog_id != 0);
			json_u64(&j, "tc_prog_id", att[i].tc_prog_id);
			json_obj_end(&j);
		}
		json_arr_end(&j);
		json_u64(&j, "rules", (__u64)nrules);
		json_u64(&j, "rules_max", SLUICE_MAX_RULES);
		json_u64(&j, "state_entries", nrows);
		json_u64(&j, "state_size", loader_pinned_state_entries());
		json_obj_begin(&j, "flows");
		json_u64(&j, "entries", flows);
		json_u64(&j, "max", flows_max);
		json_u64(&j, "syn_timeout_s", timeout_s(p.cfg.syn_timeout_ns, SLUICE_DEFAULT_SYN_TIMEOUT_S));
		json_u64(&j, "fin_timeout_s", timeout_s(p.cfg.fin_timeout_ns, SLUICE_DEFAULT_FIN_TIMEOUT_S));
		json_u64(&j, "idle_timeout_s", timeout_s(p.cfg.idle_timeout_ns, SLUICE_DEFAULT_IDLE_TIMEOUT_S));
		json_str(&j, "flows_full", full_policy_name(p.cfg.flows_full));
		json_obj_end(&j);
		json_arr_begin(&j, "global_rules");
		for (i = 0; i < SLUICE_MAX_RULES; i++) {
			if (!policy_rule_live(&p, i) || !(p.rules[i].flags & SLUICE_RULE_GLOBAL))
				continue;
			json_obj_begin(&j, NULL);
			json_u64(&j, "id", p.rules[i].id);
			json_str(&j, "name", p.rules[i].name);
			cli_fleet_json(&j, &m, (__u32)i, p.rules[i].id, p.now_ns);
			json_obj_end(&j);
		}
		json_arr_end(&j);
		json_obj_end(&j);
		json_end(&j);
	} else {
		printf("pinned at %s\n", pin_root());
		if (!n)
			printf("attached: nowhere (sluice attach DEV)\n");
		for (i = 0; i < n; i++)
			printf("attached: %s (ifindex %d) mode %s prog %u link %u, %s\n",
			       att[i].dev, att[i].ifindex, att[i].mode, att[i].prog_id,
			       att[i].link_id, att[i].tc_prog_id ? "tc egress" : "no tc egress");
		printf("rules: %d of %d\n", nrules, SLUICE_MAX_RULES);
		printf("state table: %zu of %u entries\n", nrows, loader_pinned_state_entries());
		printf("flow table: %llu of %u entries; syn-timeout %llu s, fin-timeout %llu s, "
		       "idle-timeout %llu s, flows-full %s\n", (unsigned long long)flows, flows_max,
		       (unsigned long long)timeout_s(p.cfg.syn_timeout_ns, SLUICE_DEFAULT_SYN_TIMEOUT_S),
		       (unsigned long long)timeout_s(p.cfg.fin_timeout_ns, SLUICE_DEFAULT_FIN_TIMEOUT_S),
		       (unsigned long long)timeout_s(p.cfg.idle_timeout_ns, SLUICE_DEFAULT_IDLE_TIMEOUT_S),
		       full_policy_name(p.cfg.flows_full));
		for (i = 0; i < SLUICE_MAX_RULES; i++) {
			char line[512];

			if (!policy_rule_live(&p, i) || !(p.rules[i].flags & SLUICE_RULE_GLOBAL))
				continue;
			cli_fleet_line(&m, (__u32)i, p.rules[i].id, p.now_ns, line, sizeof(line));
			printf("global %s (id %u): %s\n", p.rules[i].name, p.rules[i].id, line);
		}
	}
	free(rows);
	policy_free(&p);
	maps_close(&m);
	return 0;
}

static int unlink_dir_entries(const char *dir)
{
	struct dirent *de;
	DIR *d = opendir(dir);
	char path[512];
	int err = 0;

	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.' || !strcmp(de->d_name, "links"))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (unlink(path)) {
			err = -errno;
			pr_err("unload: remove %s: %s", path, strerror(errno));
		}
	}
	closedir(d);
	return err;
}

/* The TC filter of an attachment, in whichever namespace it lives: left
 * behind, it would keep its program and every map alive. */
static void unload_tc(const struct attachment *a)
{
	char dev[IF_NAMESIZE] = "?";
	int saved = -1;

	if (!strcmp(a->mode, "other-netns")) {
		saved = netns_enter(a->netns);
		if (saved < 0) {
			pr_err("unload: ifindex %d is in network namespace %lu, which has no name "
			       "under /run/netns: remove its TC filter there "
			       "(tc filter del dev DEV egress handle 0x5c1 prio 0xc1 bpf)",
			       a->ifindex, a->netns);
			return;
		}
	}
	if (!if_indextoname((unsigned int)a->ifindex, dev))
		snprintf(dev, sizeof(dev), "ifindex %d", a->ifindex);
	loader_detach_tc(a->ifindex, dev);
	if (saved >= 0)
		netns_leave(saved);
}

int cmd_unload(int argc, char **argv)
{
	struct attachment att[64];
	int n, i, lock, err = 0;

	n = cli_parse(&unload_cmd, argc, argv, NULL, NULL);
	if (n < 0)
		return n == CLI_HELP ? 0 : EXIT_USAGE;
	if (need_root("unload"))
		return 1;
	if (access(pin_root(), F_OK)) {
		printf("nothing to unload\n");
		return 0;
	}
	lock = pin_lock();
	if (lock < 0)
		return 1;
	n = list_attachments(att, 64);
	for (i = 0; i < n; i++) {
		int fd = bpf_obj_get(att[i].pin);

		if (fd >= 0) {
			bpf_link_detach(fd);
			close(fd);
		}
		if (att[i].ifindex)
			unload_tc(&att[i]);
	}
	err |= unlink_dir_entries(pin_link_dir());
	err |= unlink_dir_entries(pin_root());
	if (rmdir(pin_link_dir()) && errno != ENOENT)
		err = -errno;
	if (rmdir(pin_root()) && errno != ENOENT)
		err = -errno;
	pin_unlock(lock);
	if (err) {
		pr_err("unload: some pins could not be removed (see above)");
		return 1;
	}
	printf("unloaded: detached from %d interface(s), removed %s\n", n, pin_root());
	return 0;
}
