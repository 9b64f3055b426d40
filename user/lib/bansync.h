/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * bansync.h - bans everywhere (docs/fleet.md "Bans everywhere"): on the
 * program's event loop, every BANSYNC_PERIOD_MS,
 *
 *  1. publish: scan the pinned deny list for bans decided here (kind ban,
 *     by a rule or by sluice-l7; not the ones applied from the fleet) that
 *     the store has not been told of, and run ban_publish.lua for each
 *     (at most BANSYNC_PUBLISH_MAX per period) with its remaining time,
 *     by "rule:NAME" or "sluice-l7", where the store's instance name;
 *  2. sync: run ban_sync.lua from the last sequence seen (at most
 *     BANSYNC_SYNC_MAX bans per reply; when more follow, again at once)
 *     and write every ban another gateway decided into the deny list as
 *     kind ban, rule_id SLUICE_BAN_BY_FLEET, with the same expiry
 *     (remaining ms from the server's answer), and its origin into
 *     sluice_ban_origin. A ban never shortens an entry already there.
 *
 * A reconnect (or a new epoch: the store restarted) syncs again from 0
 * and publishes every live local ban again; a failed publish is retried
 * the next period. While the store is down, bans stay local.
 */
#ifndef SLUICE_BANSYNC_H
#define SLUICE_BANSYNC_H

#include <stdint.h>
#include "maps.h"

struct loop;
struct store;
struct bansync;

#define BANSYNC_PERIOD_MS 250
#define BANSYNC_PUBLISH_MAX 128   /* publishes per period */
#define BANSYNC_SYNC_MAX 256      /* bans per ban_sync reply */

struct bansync_stats {
	uint64_t published;       /* ban_publish runs that recorded a ban */
	uint64_t applied;         /* fleet bans written into the deny list */
	uint64_t skipped;         /* synced bans already covered here */
	uint64_t failures;        /* requests that failed (store down, timeout, error) */
	uint64_t syncs;
	uint64_t last_seq;
};

/* Starts on loop l with the store s (owned by the caller, who must close
 * the bansync first) and the pinned maps m (not owned). */
int bansync_open(struct loop *l, struct store *s, const struct sluice_maps *m,
		 struct bansync **out);
void bansync_close(struct bansync *b);
const struct bansync_stats *bansync_stats(const struct bansync *b);

#endif
