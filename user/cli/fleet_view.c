// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* fleet_view.c - how the CLI shows a global rule's lease (rule list, stats,
 * status): the sluice_fleet map that sluiced writes. */
#include <stdio.h>
#include <bpf/bpf.h>
#include "cli.h"
#include "json.h"
#include "lease.h"

/* A global rule's "global" object: the fleet's limits, this gateway's
 * lease, its expiry and the store's health; null without a lease. */
void cli_fleet_json(struct json *j, const struct sluice_maps *m, __u32 slot, __u32 id, __u64 now)
{
	struct sluice_fleet_rule f;
	int k;

	if (m->fleet < 0 || bpf_map_lookup_elem(m->fleet, &slot, &f) || f.rule_id != id) {
		json_null(j, "global");
		return;
	}
	json_obj_begin(j, "global");
	json_obj_begin(j, "limit");
	for (k = 0; k < SLUICE_FLEET_KINDS; k++)
		if (f.global[k])
			json_u64(j, lease_kind_name((enum sluice_fleet_kind)k), f.global[k]);
	json_obj_end(j);
	json_obj_begin(j, "lease");
	for (k = 0; k < SLUICE_FLEET_KINDS; k++)
		if (f.global[k])
			json_u64(j, lease_kind_name((enum sluice_fleet_kind)k), f.lease[k]);
	json_obj_end(j);
	json_str(j, "source", lease_source_name((enum sluice_fleet_source)f.source));
	if (f.source == SLUICE_LEASE_GRANTED && f.expires_ns > now)
		json_u64(j, "expires_in_ms", (f.expires_ns - now) / 1000000ULL);
	else
		json_null(j, "expires_in_ms");
	json_u64(j, "gateways", f.gateways);
	json_str(j, "store", lease_store_state_name(f.store_state));
	json_u64(j, "renewals", f.renewals);
	json_u64(j, "failures", f.failures);
	json_obj_end(j);
}

int cli_fleet_line(const struct sluice_maps *m, __u32 slot, __u32 id, __u64 now, char *buf,
		   size_t len)
{
	struct sluice_fleet_rule f;

	if (m->fleet < 0 || bpf_map_lookup_elem(m->fleet, &slot, &f) || f.rule_id != id) {
		snprintf(buf, len, "no lease (sluiced with a store leases it; until then the "
			 "limits above are enforced here alone)");
		return -1;
	}
	lease_fleet_line(&f, now, buf, len);
	return 0;
}
