/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* maps.h - the one way to reach sluice's maps: from their pins (CLI), or
 * from a loaded skeleton (tests, bench). */
#ifndef SLUICE_MAPS_H
#define SLUICE_MAPS_H

#include "sluice.h"

struct sluice_maps {
	int cfg, pressure, rules, rstats, ports, protos, srcs, allow, deny, buckets, counters;
	int flows, conns, signals;
	int fleet;          /* global rules' leases (userspace only) */
	int ban_origin;     /* fleet bans' origins (userspace only; -1 if not pinned) */
	int owned; /* close the fds in maps_close() */
};

struct sluice_xdp; /* the generated skeleton */

/* -ENOENT (with a message) when nothing is pinned: sluice was never attached. */
int maps_open_pinned(struct sluice_maps *m);
void maps_from_skel(struct sluice_maps *m, struct sluice_xdp *skel);
void maps_close(struct sluice_maps *m);

/* Sum a per-CPU array of __u64 fields; `nfields` __u64 per value. */
int maps_percpu_sum(int fd, __u32 key, __u64 *out, unsigned int nfields);
int maps_ncpus(void);

#endif
