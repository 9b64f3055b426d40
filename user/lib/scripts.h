/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * scripts.h - the Lua scripts the store runs on Redis, embedded.
 *
 * Each script is a file user/lib/lua/NAME.lua; the Makefile turns it into
 * $(BUILD)/lua/NAME.lua.h (`#define LUA_NAME "..."`), and scripts.c
 * puts them in one table indexed by enum store_script_id. The comment at
 * the top of each script is its contract (KEYS, ARGV, reply); docs/fleet.md
 * has the key layout.
 *
 * To add a script: write user/lib/lua/NAME.lua, add X(SCRIPT_NAME, NAME)
 * to STORE_SCRIPTS below, and in scripts.c `#include "lua/NAME.lua.h"` and
 * its prelude (PRELUDE_NAME: "", or a shared file's LUA_ macro).
 *
 * Code that scripts share is a prelude file that scripts.c puts in front of
 * each of them: l7_bucket.lua (the token bucket: l7_take, l7_settle),
 * l7_slots.lua (slot expiry: l7_slot_acquire, l7_slot_renew), bans.lua
 * (ban expiry: ban_publish, ban_sync).
 */
#ifndef SLUICE_SCRIPTS_H
#define SLUICE_SCRIPTS_H

#include <stddef.h>
#include "store.h"

#define STORE_SCRIPTS(X)                          \
	X(SCRIPT_L7_TAKE, l7_take)                \
	X(SCRIPT_L7_SETTLE, l7_settle)            \
	X(SCRIPT_L7_SLOT_ACQUIRE, l7_slot_acquire) \
	X(SCRIPT_L7_SLOT_RENEW, l7_slot_renew)    \
	X(SCRIPT_L7_SLOT_RELEASE, l7_slot_release) \
	X(SCRIPT_L7_HELLO, l7_hello)              \
	X(SCRIPT_LEASE, lease)                    \
	X(SCRIPT_BAN_PUBLISH, ban_publish)        \
	X(SCRIPT_BAN_SYNC, ban_sync)

enum store_script_id {
#define STORE_SCRIPT_ENUM(id, name) id,
	STORE_SCRIPTS(STORE_SCRIPT_ENUM)
#undef STORE_SCRIPT_ENUM
	SCRIPT_MAX
};

/* Each script's name (its file's, without .lua) and body, for store_open(). */
extern const struct store_script store_scripts[SCRIPT_MAX];
/* Each script's prelude: the first part of its body ("" for none). */
extern const char *const store_script_preludes[SCRIPT_MAX];

/*
 * sluice-l7's keys (docs/fleet.md "Keys and scripts"). Every key of a tier
 * carries the hash tag {t:TIER}, so the keys one script touches are in one
 * Redis Cluster slot.
 */
enum store_l7_key {
	L7_KEY_CALLER,           /* P:{t:T}:c:ID    HASH, the caller's rpm and tpm buckets */
	L7_KEY_TIER,             /* P:{t:T}:tier    HASH, the tier's rpm and tpm buckets */
	L7_KEY_RESERVATION,      /* P:{t:T}:r:RID   STRING, tokens charged, PX */
	L7_KEY_CALLER_SLOTS,     /* P:{t:T}:cs:ID   ZSET rid -> deadline ms */
	L7_KEY_TIER_SLOTS,       /* P:{t:T}:ts      ZSET rid -> deadline ms */
	L7_KEY_INSTANCES,        /* P:{l7}:instances ZSET name -> last seen ms */
};

/*
 * Writes the key of `kind` into buf: prefix P ("sluice" when NULL or ""),
 * tier T, and id (the caller's ID, a hash of its API key and never the key
 * itself, for CALLER and CALLER_SLOTS; the request id for RESERVATION;
 * ignored otherwise, as tier is for INSTANCES). Returns the key's length,
 * -EINVAL when a needed part is missing or tier holds '{' or '}' (which
 * would move the hash tag), -ENAMETOOLONG when it does not fit.
 */
int store_l7_key(char *buf, size_t len, const char *prefix, const char *tier,
		 enum store_l7_key kind, const char *id);

/* The reply of l7_take.lua: an array of these integers, in this order. */
enum l7_take_reply {
	L7_TAKE_ADMITTED,            /* 1 or 0 */
	L7_TAKE_REASON,              /* enum lim_reason: 0 ok, 1 rpm, 2 tpm, 3 tier rpm, 4 tier tpm */
	L7_TAKE_RETRY_MS,
	L7_TAKE_RPM_REMAINING,       /* the caller's buckets, after the take */
	L7_TAKE_RPM_RESET_MS,
	L7_TAKE_TPM_REMAINING,
	L7_TAKE_TPM_RESET_MS,
	L7_TAKE_TIER_RPM_REMAINING,  /* the tier's */
	L7_TAKE_TIER_RPM_RESET_MS,
	L7_TAKE_TIER_TPM_REMAINING,
	L7_TAKE_TIER_TPM_RESET_MS,
	L7_TAKE_REPLY_LEN,
};

/*
 * Bans everywhere (docs/fleet.md "Bans everywhere"): the four keys both
 * ban scripts take, in this order, all with the hash tag {bans}.
 */
enum store_ban_key {
	BAN_KEY_EXP,   /* P:{bans}:exp   ZSET prefix -> expiry (server ms) */
	BAN_KEY_SEQ,   /* P:{bans}:seq   ZSET prefix -> sequence */
	BAN_KEY_FROM,  /* P:{bans}:from  HASH prefix -> "BY\tWHERE" */
	BAN_KEY_LAST,  /* P:{bans}:last  STRING the last sequence */
	BAN_KEYS,
};
#define STORE_BAN_KEY_LEN (STORE_WORD_LEN + 16)
/* The ban keys under prefix ("sluice" when NULL or ""). 0 or -ENAMETOOLONG. */
int store_ban_keys(char keys[BAN_KEYS][STORE_BAN_KEY_LEN], const char *prefix);

/* ban_publish.lua's reply: {changed, seq, remaining_ms}; ban_sync.lua's:
 * {now_ms, next_seq, more} then BAN_SYNC_FIELDS per ban (prefix, seq,
 * remaining_ms, by, where). */
#define BAN_PUBLISH_ARGC 4
#define BAN_SYNC_ARGC 2
#define BAN_SYNC_HEAD 3
#define BAN_SYNC_FIELDS 5
#define BAN_SYNC_MAX 1000

/* ARGV counts (l7_slot_renew takes 1 + any number of rids). */
#define L7_TAKE_ARGC 13
#define L7_SETTLE_ARGC 12
#define L7_SLOT_ACQUIRE_ARGC 4
#define L7_SLOT_RELEASE_ARGC 1
#define L7_HELLO_ARGC 2

#endif
