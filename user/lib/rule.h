/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* rule.h - the `rule add` grammar, to and from struct sluice_rule. */
#ifndef SLUICE_RULE_H
#define SLUICE_RULE_H

#include <stdio.h>
#include "sluice.h"
#include "log.h"

#define RULE_MIN_BBURST 1518 /* one full-size Ethernet frame with a VLAN tag */
#define RULE_DEFAULT_MASK4 32
#define RULE_DEFAULT_MASK6 64 /* one host usually owns a whole /64 */
#define RULE_MAX_BAN_SECS (365U * 86400U)
#define RULE_MAX_CONN_RATE 100000000ULL /* new connections per second */
#define RULE_MAX_CONNS (1ULL << 32)     /* concurrent connections */

/* Parses the words after `rule add` and compiles the fast-path fields. */
int rule_parse(int argc, char **argv, struct sluice_rule *r, struct errbuf *e);
const char *rule_proto_name(__u8 proto);
/* The fast-path fields and flags from the limits in user units (after a
 * limit changed: an adaptive controller, a fleet lease). */
void rule_compile(struct sluice_rule *r);
/* "src 198.18.0.0/15 dport 80 proto tcp pps 100 ..." as `rule add` takes it. */
void rule_describe(const struct sluice_rule *r, char *buf, size_t len);

#endif
