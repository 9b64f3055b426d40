// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * scripts.c - the table of embedded Lua scripts (see scripts.h), and the
 * names of sluice-l7's keys.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "scripts.h"

/* generated from user/lib/lua/NAME.lua by the Makefile: LUA_NAME */
#include "lua/l7_bucket.lua.h"
#include "lua/l7_slots.lua.h"
#include "lua/bans.lua.h"
#include "lua/l7_take.lua.h"
#include "lua/l7_settle.lua.h"
#include "lua/l7_slot_acquire.lua.h"
#include "lua/l7_slot_renew.lua.h"
#include "lua/l7_slot_release.lua.h"
#include "lua/l7_hello.lua.h"
#include "lua/lease.lua.h"
#include "lua/ban_publish.lua.h"
#include "lua/ban_sync.lua.h"

/* Scripts that share code run one copy of it: a prelude file in front of
 * each, joined at compile time (string literal concatenation), so each is
 * still one body for SCRIPT LOAD and EVALSHA. PRELUDE_NAME: "" or a shared
 * file's LUA_ macro. */
#define PRELUDE_l7_take LUA_l7_bucket
#define PRELUDE_l7_settle LUA_l7_bucket
#define PRELUDE_l7_slot_acquire LUA_l7_slots
#define PRELUDE_l7_slot_renew LUA_l7_slots
#define PRELUDE_l7_slot_release ""
#define PRELUDE_l7_hello ""
#define PRELUDE_lease ""
#define PRELUDE_ban_publish LUA_bans
#define PRELUDE_ban_sync LUA_bans

const struct store_script store_scripts[SCRIPT_MAX] = {
#define STORE_SCRIPT_ENTRY(id, name) [id] = { #name, PRELUDE_##name LUA_##name },
	STORE_SCRIPTS(STORE_SCRIPT_ENTRY)
#undef STORE_SCRIPT_ENTRY
};

const char *const store_script_preludes[SCRIPT_MAX] = {
#define STORE_SCRIPT_PRELUDE(id, name) [id] = PRELUDE_##name,
	STORE_SCRIPTS(STORE_SCRIPT_PRELUDE)
#undef STORE_SCRIPT_PRELUDE
};

int store_l7_key(char *buf, size_t len, const char *prefix, const char *tier,
		 enum store_l7_key kind, const char *id)
{
	int n;

	if (!prefix || !*prefix)
		prefix = "sluice";
	if (kind != L7_KEY_INSTANCES && (!tier || !*tier || strpbrk(tier, "{}")))
		return -EINVAL;
	if ((kind == L7_KEY_CALLER || kind == L7_KEY_CALLER_SLOTS ||
	     kind == L7_KEY_RESERVATION) && (!id || !*id))
		return -EINVAL;
	switch (kind) {
	case L7_KEY_CALLER:
		n = snprintf(buf, len, "%s:{t:%s}:c:%s", prefix, tier, id);
		break;
	case L7_KEY_TIER:
		n = snprintf(buf, len, "%s:{t:%s}:tier", prefix, tier);
		break;
	case L7_KEY_RESERVATION:
		n = snprintf(buf, len, "%s:{t:%s}:r:%s", prefix, tier, id);
		break;
	case L7_KEY_CALLER_SLOTS:
		n = snprintf(buf, len, "%s:{t:%s}:cs:%s", prefix, tier, id);
		break;
	case L7_KEY_TIER_SLOTS:
		n = snprintf(buf, len, "%s:{t:%s}:ts", prefix, tier);
		break;
	case L7_KEY_INSTANCES:
		n = snprintf(buf, len, "%s:{l7}:instances", prefix);
		break;
	default:
		return -EINVAL;
	}
	if (n < 0)
		return -EINVAL;
	if ((size_t)n >= len)
		return -ENAMETOOLONG;
	return n;
}

int store_ban_keys(char keys[BAN_KEYS][STORE_BAN_KEY_LEN], const char *prefix)
{
	static const char *const suffix[BAN_KEYS] = { "exp", "seq", "from", "last" };
	int i, n;

	if (!prefix || !*prefix)
		prefix = "sluice";
	for (i = 0; i < BAN_KEYS; i++) {
		n = snprintf(keys[i], STORE_BAN_KEY_LEN, "%s:{bans}:%s", prefix, suffix[i]);
		if (n < 0 || n >= STORE_BAN_KEY_LEN)
			return -ENAMETOOLONG;
	}
	return 0;
}
