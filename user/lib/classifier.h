/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * classifier.h - compile rules into the three lookups the XDP program ANDs:
 * a bitmask per destination port, per protocol class, and per source prefix
 * (longest match; each prefix's mask holds every rule whose prefix contains
 * it), plus the mask of rules that match any source.
 */
#ifndef SLUICE_CLASSIFIER_H
#define SLUICE_CLASSIFIER_H

#include "sluice.h"
#include "prefix.h"

struct src_entry {
	struct prefix pfx;
	__u64 mask;
};

struct classifier {
	__u64 ports[SLUICE_PORTS];
	__u64 protos[SLUICE_PROTO_CLASSES];
	struct src_entry srcs[SLUICE_MAX_RULES];
	unsigned int nsrcs;
	__u64 any_src;
};

/* live[slot] says which slots take part. */
void classifier_compile(struct classifier *c, const struct sluice_rule *rules,
			const int *live);
/* Write generation gen of the classifier maps. */
int classifier_write(const struct classifier *c, int gen, int ports_fd, int protos_fd,
		     int srcs_fd);

#endif
