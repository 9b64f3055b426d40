/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * config.h - sluiced's configuration file: the policy lines `sluice -f`
 * accepts (rule/allow/deny/set), and the daemon's own statements:
 *
 *   interface DEV [mode native|generic|auto] [no-tc]
 *   metrics ADDR:PORT [allow-any] | metrics off
 *   state-size N      flow-size N      insert-rate N
 *   adaptive ...      (the words after it go to the adaptive controller)
 *   top-talkers N
 *   store redis ADDR:PORT|unix:PATH [password-file FILE] [prefix WORD]
 *                [instance NAME] [timeout DURATION]   (store.h)
 *
 * The file is a declaration, not a script: the policy lines build the
 * wanted policy from nothing, and config_policy_apply() turns a loaded
 * (pinned) policy into it by changing only what differs, so rules that did
 * not change keep their ids and their per-source state.
 */
#ifndef SLUICE_CONFIG_H
#define SLUICE_CONFIG_H

#include <net/if.h>
#include "loader.h"
#include "log.h"
#include "policy.h"
#include "store.h"

#define CONFIG_MAX_IFACES   32
#define CONFIG_MAX_ADAPTIVE 32
#define CONFIG_METRICS_DEFAULT "127.0.0.1:9464"
#define CONFIG_TOP_TALKERS_DEFAULT 10
#define CONFIG_TOP_TALKERS_MAX 1000

/* Errors name the file and the line: "FILE:LINE: reason". */
#define CONFIG_ERR_LEN (ERRBUF_LEN + 600)
struct config_err {
	char msg[CONFIG_ERR_LEN];
};

struct config_iface {
	char name[IF_NAMESIZE];
	enum attach_mode mode;
	int no_tc;
	unsigned int line;
};

/* One `adaptive` statement: its words after "adaptive", kept as written
 * (the daemon hands them to adaptive_parse()), and its line for messages. */
struct config_adaptive {
	char *text;          /* the words, NUL-separated */
	int argc;
	char *argv[64];
	unsigned int line;
};

struct config {
	char path[512];
	struct config_iface ifaces[CONFIG_MAX_IFACES];
	int n_ifaces;
	int metrics_on;
	char metrics_addr[80];  /* "127.0.0.1:9464", "[::1]:9464" */
	int metrics_allow_any;
	__u64 state_size, flow_size, insert_rate; /* 0 = default / as pinned */
	__u32 top_talkers;
	struct config_adaptive adaptive[CONFIG_MAX_ADAPTIVE];
	int n_adaptive;
	struct store_config store; /* `store redis ...`: global rules' leases */
	struct policy want;     /* the policy lines, applied to an empty policy */
	unsigned int policy_lines;
};

/* Parse FILE into c (heap: struct policy is large). On error c is freed and
 * the error names FILE:LINE. */
int config_load(struct config *c, const char *path, struct config_err *e);
void config_free(struct config *c);

/* What config_policy_apply changed, for the log. */
struct config_delta {
	unsigned int rules_kept, rules_added, rules_deleted;
	unsigned int allow_added, allow_deleted, deny_added, deny_deleted;
	int settings;
};

/* Limits of a pinned rule that an adaptive controller owns: a rule that
 * differs from the file only in them is unchanged. */
#define CONFIG_OWN_PPS       (1u << 0) /* pps, burst and their compiled form */
#define CONFIG_OWN_CONN_RATE (1u << 1) /* conn-rate, conn-burst, compiled */
#define CONFIG_OWN_BPS       (1u << 2) /* bps, bburst, compiled (fleet leases) */
#define CONFIG_OWN_CONNS     (1u << 3) /* conns (fleet leases) */

/* Change `cur` (loaded with policy_load) into c->want: rules equal in match
 * and limits are kept (same id, same state); others are deleted and added.
 * The allow list becomes the file's; static deny entries too, while bans a
 * rule issued stay until they expire. owned (per slot of cur, or NULL):
 * CONFIG_OWN_*. Commit with policy_commit. */
int config_policy_apply(struct policy *cur, const struct config *c, const unsigned int *owned,
			struct config_delta *d, struct errbuf *e);
int config_delta_empty(const struct config_delta *d);

int config_iface_equal(const struct config_iface *a, const struct config_iface *b);
const char *config_mode_name(enum attach_mode m);

#endif
