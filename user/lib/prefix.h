/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* prefix.h - IPv4/IPv6 prefixes: parse, print, compare, and encode as the
 * LPM keys the XDP program looks up. */
#ifndef SLUICE_PREFIX_H
#define SLUICE_PREFIX_H

#include <stddef.h>
#include "sluice.h"
#include "log.h"

struct prefix {
	__u8 family; /* SLUICE_AF_INET or SLUICE_AF_INET6 */
	__u8 len;
	__u8 addr[16];
};

#define PREFIX_STRLEN 64

/* "198.18.0.0/15", "2001:db8::/32", or a bare address (a host prefix).
 * Host bits set beyond the length are an error, as with `ip route`. */
int prefix_parse(const char *s, struct prefix *out, struct errbuf *e);
const char *prefix_str(const struct prefix *p, char *buf, size_t len);
int prefix_max_len(__u8 family);
int prefix_equal(const struct prefix *a, const struct prefix *b);
/* Does outer contain inner (same family, outer no longer, same leading bits)? */
int prefix_contains(const struct prefix *outer, const struct prefix *inner);
void prefix_to_lpm(const struct prefix *p, __u8 gen, struct sluice_lpm_key *k);
void prefix_from_lpm(const struct sluice_lpm_key *k, struct prefix *p);
/* Network-order mask words for a prefix length over 1 (IPv4) or 4 words. */
void prefix_mask_words(unsigned int len, __u32 *words, unsigned int nwords);

#endif
