/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* sluiced.h - what the daemon's parts share: the loaded programs, the
 * configured interfaces and their attachments, the event loop. */
#ifndef SLUICED_H
#define SLUICED_H

#include <net/if.h>
#include "config.h"
#include "loop.h"
#include "maps.h"

struct sluice_xdp;
struct sluice_tc;

/* One configured interface and where it is attached now. */
struct iface {
	struct config_iface cfg;
	int ifindex;      /* attached device, 0 = not attached (absent) */
	int renamed;      /* the attached device has another name now */
	enum attach_mode mode_used;
};

struct daemon {
	struct config *cfg;            /* the running configuration */
	struct iface ifaces[CONFIG_MAX_IFACES];
	int n_ifaces;
	/* The programs, loaded once with the pinned maps: XDP with and without
	 * a TC partner (a rodata switch), and TC egress. Kept for re-attaching. */
	struct sluice_xdp *xdp, *xdp_no_tc;
	struct sluice_tc *tc;
	struct sluice_maps maps;       /* the XDP object's fds (not owned) */
	__u32 state_entries, flow_entries;
	/* The one event loop: the signalfd, rtnetlink, the controllers' timers,
	 * the metrics endpoint. Other parts (a store client) plug in here. */
	struct loop *loop;
	struct loop_io sig_io;         /* the signalfd */
	struct loop_io nl_io;          /* the rtnetlink socket */
	int sigfd, nlfd;
	void *rtnl;                    /* struct mnl_socket */
	int detach_on_exit;
};

/* iface.c */
int programs_load(struct daemon *d);
void programs_free(struct daemon *d);
/* Attach, or adopt an existing attachment (the program swapped in place). */
int iface_up(struct daemon *d, struct iface *i);
/* Detach it: on --detach-on-exit and when a reload drops it. */
void iface_down(struct daemon *d, struct iface *i);
/* The configured interface named name, or NULL. */
struct iface *iface_by_name(struct daemon *d, const char *name);
struct iface *iface_by_index(struct daemon *d, int ifindex);
/* Drop the pins of links whose device is gone, and detach (logged) pins in
 * this namespace for interfaces the config does not name. */
void links_tidy(struct daemon *d);
/* A link pin (ifindex's), removed if its device is gone. */
void link_pin_forget(int ifindex);

/* rtnl.c: the RTMGRP_LINK listener, a handler on d->loop. */
int rtnl_open(struct daemon *d);
void rtnl_close(struct daemon *d);

/* ctl.c: the adaptive controllers (a loop timer each) and the metrics
 * endpoint, on d->loop. */
int ctl_check(const struct config *c, struct config_err *e);
int ctl_apply(struct daemon *d, const struct config *old, const struct config *c);
void ctl_stop(struct daemon *d);
/* CONFIG_OWN_* per rule slot, for config_policy_apply. */
void ctl_owned(unsigned int *owned);

/* fleet.c: global rules' leases through the store (docs/fleet.md). */
int fleet_check(const struct config *c, struct config_err *e);
/* After a policy commit: (re)opens the store when its line changed, binds
 * the global rules to their pinned slots and writes their limits now. */
int fleet_apply(struct daemon *d, const struct config *c, const struct policy *cur);
/* The limits the leases own (c: the configuration being applied). */
void fleet_owned(const struct config *c, unsigned int *owned);
/* The store's state for the metrics: -1 without a store, else enum store_state. */
int fleet_store_state(void);
void fleet_stop(struct daemon *d);

#endif
