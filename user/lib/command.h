/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* command.h - the policy-changing commands (rule add|del, allow add|del,
 * deny add|del, set), applied to a policy transaction. The CLI runs one; `sluice
 * -f` and the daemon's config run many in one transaction. */
#ifndef SLUICE_COMMAND_H
#define SLUICE_COMMAND_H

#include "log.h"
#include "policy.h"

#define COMMAND_MAX_WORDS 64

/* Bounds of `set`'s timeouts, in seconds (the lower bound is 1 s). */
#define SET_MAX_SYN_TIMEOUT_S  86400ULL        /* a day */
#define SET_MAX_FIN_TIMEOUT_S  86400ULL
#define SET_MAX_IDLE_TIMEOUT_S (30ULL * 86400) /* thirty days */

struct command_result {
	__u32 rule_id; /* set by `rule add` */
	int added_rule;
};

/* Is argv[0..1] a policy-changing command? ("set" is one on its own.) */
int command_is_policy(int argc, char **argv);
int command_apply(struct policy *p, int argc, char **argv, struct command_result *res,
		  struct errbuf *e);

#endif
