/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* command.h - the policy-changing commands (rule add|del, allow add|del,
 * deny add|del), applied to a policy transaction. The CLI runs one; `sluice
 * -f` and the daemon's config run many in one transaction. */
#ifndef SLUICE_COMMAND_H
#define SLUICE_COMMAND_H

#include "log.h"
#include "policy.h"

#define COMMAND_MAX_WORDS 64

struct command_result {
	__u32 rule_id; /* set by `rule add` */
	int added_rule;
};

/* Is argv[0..1] a policy-changing command? */
int command_is_policy(int argc, char **argv);
int command_apply(struct policy *p, int argc, char **argv, struct command_result *res,
		  struct errbuf *e);

#endif
