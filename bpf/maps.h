/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * maps.h - every map of the XDP program. All are pinned by name under
 * SLUICE_PIN_ROOT, so every attached interface (and the CLI) shares one
 * policy, and state outlives the process that loaded it.
 */
#ifndef SLUICE_BPF_MAPS_H
#define SLUICE_BPF_MAPS_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "sluice.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sluice_config);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sluice_cfg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sluice_pressure);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sluice_pressure SEC(".maps");

/* Rules by slot. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SLUICE_MAX_RULES);
	__type(key, __u32);
	__type(value, struct sluice_rule);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sluice_rules SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SLUICE_MAX_RULES);
	__type(key, __u32);
	__type(value, struct sluice_rule_stats);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sluice_rstats SEC(".maps");

/* The classifier: three lookups whose AND is the set of matching slots. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SLUICE_GENERATIONS * SLUICE_PORTS);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sluice_ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SLUICE_GENERATIONS * SLUICE_PROTO_CLASSES);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sluice_protos SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, SLUICE_GENERATIONS * SLUICE_MAX_RULES);
	__type(key, struct sluice_lpm_key);
	__type(value, __u64);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sluice_srcs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, SLUICE_MAX_LIST_ENTRIES);
	__type(key, struct sluice_lpm_key);
	__type(value, struct sluice_allow_val);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sluice_allow SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, SLUICE_MAX_LIST_ENTRIES);
	__type(key, struct sluice_lpm_key);
	__type(value, struct sluice_deny_val);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sluice_deny SEC(".maps");

/* Per-source state. Sized by the operator at first attach. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SLUICE_DEFAULT_STATE_ENTRIES);
	__type(key, struct sluice_bucket_key);
	__type(value, struct sluice_bucket);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sluice_buckets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SLUICE_CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sluice_counters SEC(".maps");

/* Connection tracking: the flows (sized by the operator at first attach),
 * the concurrent count per limit key, and the sweeper's timer. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SLUICE_DEFAULT_FLOW_ENTRIES);
	__type(key, struct sluice_flow_key);
	__type(value, struct sluice_flow);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sluice_flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SLUICE_DEFAULT_FLOW_ENTRIES);
	__type(key, struct sluice_bucket_key);
	__type(value, struct sluice_conn_count);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sluice_conns SEC(".maps");

struct sluice_gc_slot {
	struct bpf_timer timer;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sluice_gc_slot);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sluice_gc SEC(".maps");

/* Backend signals by service port. An LRU, so a port scan's one-off
 * entries make way for services that are measured all the time. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SLUICE_MAX_SERVICES);
	__type(key, __u32);
	__type(value, struct sluice_signals);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sluice_signals SEC(".maps");

/* Global rules' leases (struct sluice_fleet_rule by rule slot): written
 * and read by userspace only, pinned with the policy. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SLUICE_MAX_RULES);
	__type(key, __u32);
	__type(value, struct sluice_fleet_rule);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sluice_fleet SEC(".maps");

/* Fleet bans' origins (struct sluice_ban_origin by deny-list key): written
 * and read by userspace only, pinned with the policy. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SLUICE_MAX_LIST_ENTRIES);
	__type(key, struct sluice_lpm_key);
	__type(value, struct sluice_ban_origin);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sluice_ban_origin SEC(".maps");

#endif
