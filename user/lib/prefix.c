// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "prefix.h"

int prefix_max_len(__u8 family)
{
	return family == SLUICE_AF_INET ? 32 : 128;
}

static int host_bits_set(const struct prefix *p)
{
	int bits = prefix_max_len(p->family);
	int i;

	for (i = p->len; i < bits; i++)
		if (p->addr[i / 8] & (0x80 >> (i % 8)))
			return 1;
	return 0;
}

int prefix_parse(const char *s, struct prefix *out, struct errbuf *e)
{
	char addr[INET6_ADDRSTRLEN + 1];
	const char *slash = strchr(s, '/');
	size_t alen = slash ? (size_t)(slash - s) : strlen(s);
	char *end;
	long len;

	memset(out, 0, sizeof(*out));
	if (alen == 0 || alen >= sizeof(addr))
		return errf(e, -EINVAL, "bad prefix '%s': expected ADDRESS[/LEN]", s);
	memcpy(addr, s, alen);
	addr[alen] = '\0';

	if (inet_pton(AF_INET, addr, out->addr) == 1)
		out->family = SLUICE_AF_INET;
	else if (inet_pton(AF_INET6, addr, out->addr) == 1)
		out->family = SLUICE_AF_INET6;
	else
		return errf(e, -EINVAL, "bad prefix '%s': '%s' is not an IPv4 or IPv6 address",
			    s, addr);

	len = prefix_max_len(out->family);
	if (slash) {
		errno = 0;
		len = strtol(slash + 1, &end, 10);
		if (errno || end == slash + 1 || *end || len < 0 ||
		    len > prefix_max_len(out->family))
			return errf(e, -EINVAL, "bad prefix '%s': length must be 0-%d", s,
				    prefix_max_len(out->family));
	}
	out->len = (__u8)len;
	if (host_bits_set(out)) {
		char buf[PREFIX_STRLEN];
		struct prefix net = *out;
		int i;

		for (i = net.len; i < prefix_max_len(net.family); i++)
			net.addr[i / 8] &= ~(0x80 >> (i % 8));
		return errf(e, -EINVAL, "bad prefix '%s': host bits set (did you mean %s?)", s,
			    prefix_str(&net, buf, sizeof(buf)));
	}
	return 0;
}

const char *prefix_str(const struct prefix *p, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN];

	if (!inet_ntop(p->family == SLUICE_AF_INET ? AF_INET : AF_INET6, p->addr, a, sizeof(a)))
		snprintf(a, sizeof(a), "?");
	snprintf(buf, len, "%s/%u", a, p->len);
	return buf;
}

int prefix_equal(const struct prefix *a, const struct prefix *b)
{
	return a->family == b->family && a->len == b->len &&
	       !memcmp(a->addr, b->addr, sizeof(a->addr));
}

int prefix_contains(const struct prefix *outer, const struct prefix *inner)
{
	int i;

	if (outer->family != inner->family || outer->len > inner->len)
		return 0;
	for (i = 0; i < outer->len; i++) {
		__u8 bit = 0x80 >> (i % 8);

		if ((outer->addr[i / 8] & bit) != (inner->addr[i / 8] & bit))
			return 0;
	}
	return 1;
}

void prefix_to_lpm(const struct prefix *p, __u8 gen, struct sluice_lpm_key *k)
{
	memset(k, 0, sizeof(*k));
	k->prefixlen = SLUICE_LPM_TAG_BITS + p->len;
	k->data[0] = gen;
	k->data[1] = p->family;
	memcpy(&k->data[2], p->addr, 16);
}

void prefix_from_lpm(const struct sluice_lpm_key *k, struct prefix *p)
{
	memset(p, 0, sizeof(*p));
	p->family = k->data[1];
	p->len = (__u8)(k->prefixlen - SLUICE_LPM_TAG_BITS);
	memcpy(p->addr, &k->data[2], 16);
}

void prefix_mask_words(unsigned int len, __u32 *words, unsigned int nwords)
{
	unsigned int i;

	for (i = 0; i < nwords; i++) {
		unsigned int bits = len > 32 * i ? len - 32 * i : 0;

		if (bits >= 32)
			words[i] = 0xFFFFFFFFu;
		else if (bits == 0)
			words[i] = 0;
		else
			words[i] = htonl(0xFFFFFFFFu << (32 - bits));
	}
}
