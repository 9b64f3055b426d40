/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * policy.h - the policy as one transaction: load what the maps hold, change
 * it in memory (each change validated against the whole), then commit the
 * difference. A command file that fails on line 7 commits nothing; entries
 * the XDP program added meanwhile (bans) are kept, because only what the
 * transaction changed is written.
 */
#ifndef SLUICE_POLICY_H
#define SLUICE_POLICY_H

#include <stddef.h>
#include "sluice.h"
#include "log.h"
#include "maps.h"
#include "prefix.h"
#include "util.h"   /* monotonic_ns: the clock of the maps' timestamps */

enum entry_state { ENTRY_LOADED = 0, ENTRY_ADDED, ENTRY_DELETED };

struct list_entry {
	struct prefix pfx;
	enum entry_state state;
	struct sluice_deny_val deny; /* deny list only */
};

struct entry_list {
	struct list_entry *v;
	size_t n, cap;
};

struct policy {
	struct sluice_config cfg;
	struct sluice_rule rules[SLUICE_MAX_RULES];  /* by slot */
	enum entry_state rule_state[SLUICE_MAX_RULES];
	int rules_changed;
	int cfg_changed; /* settings (sluice set) to write with the commit */
	struct entry_list allow, deny;
	__u64 now_ns; /* CLOCK_MONOTONIC at load: the XDP program's clock */
};

int policy_load(struct policy *p, const struct sluice_maps *m);
void policy_free(struct policy *p);
int policy_commit(struct policy *p, const struct sluice_maps *m);

/* A rule as parsed (match and limits); gets its id and slot here. */
int policy_rule_add(struct policy *p, const struct sluice_rule *r, __u32 *id,
		    struct errbuf *e);
int policy_rule_del(struct policy *p, const char *id_or_name, struct errbuf *e);
/* The live rule with this id or name, or -1. */
int policy_rule_find(const struct policy *p, const char *id_or_name);
int policy_rule_live(const struct policy *p, int slot);
/* The name of the live rule with this id; "" if unnamed or gone. */
const char *policy_rule_name(const struct policy *p, __u32 id);

int policy_allow_add(struct policy *p, const struct prefix *pfx, struct errbuf *e);
int policy_allow_del(struct policy *p, const struct prefix *pfx, struct errbuf *e);
/* timeout_s 0 = permanent. Replaces an entry for the same prefix. */
int policy_deny_add(struct policy *p, const struct prefix *pfx, __u64 timeout_s,
		    struct errbuf *e);
/* A timed ban, as the XDP program issues them (kind ban: a daemon's reload
 * keeps it, drops count as `ban`); rule_id SLUICE_BAN_BY_L7 for sluice-l7. */
int policy_ban_add(struct policy *p, const struct prefix *pfx, __u64 timeout_s, __u32 rule_id,
		   struct errbuf *e);
int policy_deny_del(struct policy *p, const struct prefix *pfx, struct errbuf *e);
int policy_entry_live(const struct list_entry *le);


#endif
