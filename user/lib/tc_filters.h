/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* tc_filters.h - how many tc filters an interface's clsact qdisc holds, so
 * that detach removes the qdisc only when sluice's filter was its last. */
#ifndef SLUICE_TC_FILTERS_H
#define SLUICE_TC_FILTERS_H

/* Filters on the ingress and egress hooks of ifindex's clsact qdisc
 * (0 when there is no such qdisc), or a negative errno. */
int tc_clsact_filters(int ifindex);

#endif
