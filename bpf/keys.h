/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * keys.h - the key a rule's limits are kept under: the rule id and the
 * source masked to the rule's prefix (key src), or the rule alone (key
 * rule). Token buckets and concurrent connection counts share it.
 */
#ifndef SLUICE_BPF_KEYS_H
#define SLUICE_BPF_KEYS_H

#include "vmlinux.h"
#include "sluice.h"

/* saddr: IPv4 in word 0, network order. The key must be zeroed. */
static __always_inline void limit_key_fill(const struct sluice_rule *r, __u8 family,
					   const __u32 *saddr, struct sluice_bucket_key *key)
{
	key->rule_id = r->id;
	if (!(r->flags & SLUICE_RULE_KEY_SRC))
		return;
	key->family = family;
	if (family == SLUICE_AF_INET) {
		__u32 a = saddr[0] & r->key_mask4;

		key->prefix_len = r->mask4;
		__builtin_memcpy(key->addr, &a, 4);
	} else {
		__u32 a[4];

		a[0] = saddr[0] & r->key_mask6[0];
		a[1] = saddr[1] & r->key_mask6[1];
		a[2] = saddr[2] & r->key_mask6[2];
		a[3] = saddr[3] & r->key_mask6[3];
		key->prefix_len = r->mask6;
		__builtin_memcpy(key->addr, a, 16);
	}
}

#endif
