// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "sluice_xdp.skel.h"
#include "log.h"
#include "maps.h"
#include "pin.h"

static const struct {
	const char *name;
	size_t off;
} map_table[] = {
	{ "sluice_cfg", offsetof(struct sluice_maps, cfg) },
	{ "sluice_pressure", offsetof(struct sluice_maps, pressure) },
	{ "sluice_rules", offsetof(struct sluice_maps, rules) },
	{ "sluice_rstats", offsetof(struct sluice_maps, rstats) },
	{ "sluice_ports", offsetof(struct sluice_maps, ports) },
	{ "sluice_protos", offsetof(struct sluice_maps, protos) },
	{ "sluice_srcs", offsetof(struct sluice_maps, srcs) },
	{ "sluice_allow", offsetof(struct sluice_maps, allow) },
	{ "sluice_deny", offsetof(struct sluice_maps, deny) },
	{ "sluice_buckets", offsetof(struct sluice_maps, buckets) },
	{ "sluice_counters", offsetof(struct sluice_maps, counters) },
	{ "sluice_flows", offsetof(struct sluice_maps, flows) },
	{ "sluice_conns", offsetof(struct sluice_maps, conns) },
	{ "sluice_signals", offsetof(struct sluice_maps, signals) },
	{ "sluice_fleet", offsetof(struct sluice_maps, fleet) },
	{ "sluice_ban_origin", offsetof(struct sluice_maps, ban_origin) },
};
#define N_MAPS (sizeof(map_table) / sizeof(map_table[0]))

static int *map_slot(struct sluice_maps *m, size_t i)
{
	return (int *)((char *)m + map_table[i].off);
}

int maps_open_pinned(struct sluice_maps *m)
{
	char path[256];
	size_t i;

	memset(m, 0, sizeof(*m));
	for (i = 0; i < N_MAPS; i++)
		*map_slot(m, i) = -1;
	m->owned = 1;
	for (i = 0; i < N_MAPS; i++) {
		int fd;

		snprintf(path, sizeof(path), "%s/%s", pin_root(), map_table[i].name);
		fd = bpf_obj_get(path);
		if (fd < 0 && errno == ENOENT && (!strcmp(map_table[i].name, "sluice_fleet") ||
						  !strcmp(map_table[i].name, "sluice_ban_origin")))
			continue; /* pinned by an older sluice: no global rules or fleet bans */
		if (fd < 0) {
			int err = -errno;

			if (err == -ENOENT)
				pr_err("nothing attached: no maps pinned at %s "
				       "(run 'sluice attach DEV' first)", pin_root());
			else if (err == -EPERM || err == -EACCES)
				pr_err("open %s: %s (sluice needs root)", path, strerror(-err));
			else
				pr_err("open %s: %s", path, strerror(-err));
			maps_close(m);
			return err;
		}
		*map_slot(m, i) = fd;
	}
	return 0;
}

void maps_from_skel(struct sluice_maps *m, struct sluice_xdp *skel)
{
	m->cfg = bpf_map__fd(skel->maps.sluice_cfg);
	m->pressure = bpf_map__fd(skel->maps.sluice_pressure);
	m->rules = bpf_map__fd(skel->maps.sluice_rules);
	m->rstats = bpf_map__fd(skel->maps.sluice_rstats);
	m->ports = bpf_map__fd(skel->maps.sluice_ports);
	m->protos = bpf_map__fd(skel->maps.sluice_protos);
	m->srcs = bpf_map__fd(skel->maps.sluice_srcs);
	m->allow = bpf_map__fd(skel->maps.sluice_allow);
	m->deny = bpf_map__fd(skel->maps.sluice_deny);
	m->buckets = bpf_map__fd(skel->maps.sluice_buckets);
	m->counters = bpf_map__fd(skel->maps.sluice_counters);
	m->flows = bpf_map__fd(skel->maps.sluice_flows);
	m->conns = bpf_map__fd(skel->maps.sluice_conns);
	m->signals = bpf_map__fd(skel->maps.sluice_signals);
	m->fleet = bpf_map__fd(skel->maps.sluice_fleet);
	m->ban_origin = bpf_map__fd(skel->maps.sluice_ban_origin);
	m->owned = 0;
}

void maps_close(struct sluice_maps *m)
{
	size_t i;

	if (!m->owned)
		return;
	for (i = 0; i < N_MAPS; i++) {
		int *fd = map_slot(m, i);

		if (*fd >= 0)
			close(*fd);
		*fd = -1;
	}
}

int maps_ncpus(void)
{
	static int n;

	if (!n) {
		n = libbpf_num_possible_cpus();
		if (n <= 0)
			n = 1;
	}
	return n;
}

int maps_percpu_sum(int fd, __u32 key, __u64 *out, unsigned int nfields)
{
	int ncpu = maps_ncpus(), c;
	unsigned int f;
	__u64 *vals;

	vals = calloc((size_t)ncpu * nfields, sizeof(__u64));
	if (!vals)
		return -ENOMEM;
	if (bpf_map_lookup_elem(fd, &key, vals)) {
		int err = -errno;

		free(vals);
		return err;
	}
	memset(out, 0, nfields * sizeof(__u64));
	for (c = 0; c < ncpu; c++)
		for (f = 0; f < nfields; f++)
			out[f] += vals[(size_t)c * nfields + f];
	free(vals);
	return 0;
}
