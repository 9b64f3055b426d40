// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/bpf.h>
#include "classifier.h"
#include "log.h"

static int rule_has_src(const struct sluice_rule *r)
{
	return r->src_family != SLUICE_AF_NONE;
}

static void rule_prefix(const struct sluice_rule *r, struct prefix *p)
{
	memset(p, 0, sizeof(*p));
	p->family = r->src_family;
	p->len = r->src_len;
	memcpy(p->addr, r->src, 16);
}

void classifier_compile(struct classifier *c, const struct sluice_rule *rules, const int *live)
{
	unsigned int slot, i, port;

	memset(c, 0, sizeof(*c));
	for (slot = 0; slot < SLUICE_MAX_RULES; slot++) {
		const struct sluice_rule *r = &rules[slot];
		__u64 bit = 1ULL << slot;

		if (!live[slot])
			continue;
		/* Port 0 stands for "no port": only port-less rules match it. */
		if (!r->dport_lo) {
			for (port = 0; port < SLUICE_PORTS; port++)
				c->ports[port] |= bit;
		} else {
			for (port = r->dport_lo; port <= r->dport_hi; port++)
				c->ports[port] |= bit;
		}
		if (r->proto == SLUICE_PROTO_ANY) {
			for (i = 0; i < SLUICE_PROTO_CLASSES; i++)
				c->protos[i] |= bit;
		} else if (r->proto < SLUICE_PROTO_CLASSES) {
			c->protos[r->proto] |= bit;
		}
		if (!rule_has_src(r)) {
			c->any_src |= bit;
			continue;
		}
		{
			struct prefix p;

			rule_prefix(r, &p);
			for (i = 0; i < c->nsrcs; i++)
				if (prefix_equal(&c->srcs[i].pfx, &p))
					break;
			if (i == c->nsrcs)
				c->srcs[c->nsrcs++].pfx = p;
		}
	}

	/* The trie returns the longest prefix containing the address; every
	 * rule prefix containing that one contains the address too. */
	for (i = 0; i < c->nsrcs; i++) {
		for (slot = 0; slot < SLUICE_MAX_RULES; slot++) {
			struct prefix p;

			if (!live[slot] || !rule_has_src(&rules[slot]))
				continue;
			rule_prefix(&rules[slot], &p);
			if (prefix_contains(&p, &c->srcs[i].pfx))
				c->srcs[i].mask |= 1ULL << slot;
		}
	}
}

static int srcs_clear_gen(int fd, int gen)
{
	struct sluice_lpm_key keys[SLUICE_GENERATIONS * SLUICE_MAX_RULES];
	struct sluice_lpm_key k, next;
	unsigned int n = 0, i;
	void *prev = NULL;

	while (n < sizeof(keys) / sizeof(keys[0]) && !bpf_map_get_next_key(fd, prev, &next)) {
		if (next.data[0] == gen)
			keys[n++] = next;
		k = next;
		prev = &k;
	}
	for (i = 0; i < n; i++)
		if (bpf_map_delete_elem(fd, &keys[i]) && errno != ENOENT)
			return -errno;
	return 0;
}

int classifier_write(const struct classifier *c, int gen, int ports_fd, int protos_fd,
		     int srcs_fd)
{
	LIBBPF_OPTS(bpf_map_batch_opts, bo);
	__u32 *keys;
	__u32 count = SLUICE_PORTS, i;
	int err = 0;

	keys = malloc(SLUICE_PORTS * sizeof(*keys));
	if (!keys)
		return -ENOMEM;
	for (i = 0; i < SLUICE_PORTS; i++)
		keys[i] = gen * SLUICE_PORTS + i;
	if (bpf_map_update_batch(ports_fd, keys, c->ports, &count, &bo)) {
		err = -errno;
		pr_err("write port classifier: %s", strerror(-err));
		goto out;
	}
	for (i = 0; i < SLUICE_PROTO_CLASSES; i++) {
		__u32 k = gen * SLUICE_PROTO_CLASSES + i;

		if (bpf_map_update_elem(protos_fd, &k, &c->protos[i], BPF_ANY)) {
			err = -errno;
			pr_err("write protocol classifier: %s", strerror(-err));
			goto out;
		}
	}
	err = srcs_clear_gen(srcs_fd, gen);
	if (err) {
		pr_err("clear source classifier: %s", strerror(-err));
		goto out;
	}
	for (i = 0; i < c->nsrcs; i++) {
		struct sluice_lpm_key k;

		prefix_to_lpm(&c->srcs[i].pfx, (__u8)gen, &k);
		if (bpf_map_update_elem(srcs_fd, &k, &c->srcs[i].mask, BPF_ANY)) {
			err = -errno;
			pr_err("write source classifier: %s", strerror(-err));
			goto out;
		}
	}
out:
	free(keys);
	return err;
}
