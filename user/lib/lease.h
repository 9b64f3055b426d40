/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * lease.h - a gateway's side of a global rule, without I/O: what it asks
 * the store for (its want, from its own counters), what it enforces (the
 * lease while it lives, then a safe share), and the limits it writes into
 * the rule. Time is a parameter (CLOCK_MONOTONIC ns), so tests drive it.
 *
 *   want   = ceil(LEASE_WANT_HEADROOM (1.05) x the offered rate over the last interval)
 *            (passed + dropped: what the gateway would admit if it could),
 *            at least 1; for conns, the connections open now
 *   enforce = the lease until it expires (granted at the time the request
 *            was sent + the lease length, so never later than the store's
 *            own expiry), then G / the gateways last seen alive
 *            (the safe share: the sum over a fleet that lost its store is
 *            G), never 0
 *   burst  = the global burst x lease / G (the bursts sum to at most B)
 */
#ifndef SLUICE_LEASE_H
#define SLUICE_LEASE_H

#include <stdint.h>
#include "sluice.h"

#define LEASE_RENEW_MS 1000
#define LEASE_MS (3 * LEASE_RENEW_MS)
#define LEASE_WANT_HEADROOM 1.05

struct lease {
	char name[SLUICE_NAME_LEN];
	uint32_t slot, rule_id;                 /* the pinned rule it drives */
	uint64_t global[SLUICE_FLEET_KINDS];    /* G per kind, 0 = not limited */
	uint64_t gburst[SLUICE_FLEET_KINDS];    /* B (pps: packets, bps: bytes, conn-rate) */
	uint64_t want[SLUICE_FLEET_KINDS];
	uint64_t lease[SLUICE_FLEET_KINDS];     /* the last grant */
	uint64_t expires_ns;
	uint64_t renewed_ns;
	unsigned int gateways;                  /* live at the last answer, >= 1 */
	enum sluice_fleet_source source;
	uint64_t renewals, failures;
	/* demand sampling */
	uint64_t last_pkts, last_bytes, last_conns_opened, last_ns;
	int sampled;
};

/* Counters of the rule since it was created. */
struct lease_sample {
	uint64_t pkts, bytes;           /* passed + dropped */
	uint64_t conns_opened;          /* connections admitted + refused */
	uint64_t conns_open;            /* open now */
};

/* A new lease from a global rule's limits (user units). */
void lease_init(struct lease *l, const struct sluice_rule *r, uint32_t slot);
/* The same rule with (maybe) other global limits after a reload: keeps the
 * lease and its state; 1 if a limit changed. */
int lease_update_limits(struct lease *l, const struct sluice_rule *r);
/* Updates the wants from the counters at now. */
void lease_sample(struct lease *l, const struct lease_sample *s, uint64_t now);
/* The store's answer to a request sent at sent_ns. */
void lease_granted(struct lease *l, const uint64_t *grant, unsigned int gateways,
		   uint64_t lease_ms, uint64_t sent_ns);
void lease_failed(struct lease *l);
/* What to enforce now, per kind (0 for kinds without a global limit). */
void lease_enforce(struct lease *l, uint64_t now, uint64_t *out);
/* Writes the enforced limits into r's limit fields and recompiles it. */
void lease_write_rule(const struct lease *l, const uint64_t *enforce, struct sluice_rule *r);
/* The fleet map's entry. */
void lease_describe(const struct lease *l, const uint64_t *enforce, uint32_t store_state,
		    struct sluice_fleet_rule *f);
/* Takes up a lease that a previous sluiced left in the fleet map (a
 * restart keeps the lease it had until it expires). */
void lease_adopt(struct lease *l, const struct sluice_fleet_rule *f);

const char *lease_kind_name(enum sluice_fleet_kind k);   /* "pps", "bps", ... */
/* "pps 30000 lease 12000 [...], leased, expires in 2.4s, 3 gateway(s), store up"
 * for the CLI; now is CLOCK_MONOTONIC. */
void lease_fleet_line(const struct sluice_fleet_rule *f, uint64_t now, char *buf, size_t len);
const char *lease_store_state_name(uint32_t s);
const char *lease_source_name(enum sluice_fleet_source s);

#endif
