/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * sluice.h - the one header that the BPF programs and userspace both compile.
 *
 * Every map key and value lives here, with explicit padding and fixed-width
 * fields, so that a struct means the same bytes on both sides. No pointers, no
 * bool. docs/design.md describes how the maps fit together.
 */
#ifndef SLUICE_H
#define SLUICE_H

#ifdef __BPF__
/* vmlinux.h already provides __u8 ... __u64 */
#else
#include <linux/types.h>
#endif

/* Where everything is pinned. One policy per host. */
#define SLUICE_PIN_ROOT "/sys/fs/bpf/sluice"
#define SLUICE_LINK_DIR SLUICE_PIN_ROOT "/links"

/* Rules: a packet's candidate rules are a bitmask, so the classifier's cost
 * does not depend on how many rules exist, only on how many match. */
#define SLUICE_MAX_RULES 64
#define SLUICE_NAME_LEN 32

/* The classifier is double-buffered: userspace compiles the rules into
 * generation !active and then flips config.active_gen, so a packet never sees
 * a half-written rule set. */
#define SLUICE_GENERATIONS 2
#define SLUICE_PORTS 65536 /* index 0 = "packet has no port" */

/* Default size of the per-source state table (operator-settable at attach). */
#define SLUICE_DEFAULT_STATE_ENTRIES 65536
#define SLUICE_MAX_LIST_ENTRIES 16384 /* allow and deny lists */

/* Fixed point: intervals are nanoseconds << SLUICE_FP_SHIFT, so a rate of
 * 3 Mpps (333.33 ns) keeps its fraction. */
#define SLUICE_FP_SHIFT 16

/* Family tags as used in the LPM keys and bucket keys. */
enum sluice_family {
	SLUICE_AF_NONE = 0,
	SLUICE_AF_INET = 4,
	SLUICE_AF_INET6 = 6,
};

/* Protocol classes a rule can match on (index into the proto map). */
enum sluice_proto {
	SLUICE_PROTO_OTHER = 0,
	SLUICE_PROTO_TCP = 1,
	SLUICE_PROTO_UDP = 2,
	SLUICE_PROTO_ICMP = 3, /* ICMP and ICMPv6 */
	SLUICE_PROTO_CLASSES = 4,
};

/* Global counters, indexed by this enum (per-CPU array). The first five are
 * the drop reasons that metrics name; "malformed" packets are passed to the
 * kernel, not dropped, but are counted with them because they are what an
 * operator looks for next to drops. */
enum sluice_counter {
	SLUICE_CNT_DROP_DENY = 0,   /* on the static deny list */
	SLUICE_CNT_DROP_BAN,        /* on the deny list through a timed ban */
	SLUICE_CNT_DROP_RATE,       /* over a packets-per-second limit */
	SLUICE_CNT_DROP_BYTES,      /* over a bits-per-second limit */
	SLUICE_CNT_MALFORMED,       /* could not be parsed; passed */
	SLUICE_CNT_PACKETS,         /* every packet the program saw */
	SLUICE_CNT_NON_IP,          /* passed without inspection */
	SLUICE_CNT_ALLOWED,         /* passed by the allow list */
	SLUICE_CNT_STATE_INSERT,    /* per-source state entries created */
	SLUICE_CNT_STATE_THROTTLED, /* new sources refused state (table pressure) */
	SLUICE_CNT_BANS,            /* bans issued by escalation */
	SLUICE_CNT_CAS_EXHAUSTED,   /* token-bucket updates that lost every retry */
	SLUICE_CNT_MAX,
};

/* Key of the allow, deny and rule-source LPM tries. data[0] is the classifier
 * generation (0 in allow/deny), data[1] the family; the address follows, IPv4
 * in the first four bytes. prefixlen counts the two tag bytes too. */
struct sluice_lpm_key {
	__u32 prefixlen;
	__u8 data[18];
	__u8 pad[2];
};
#define SLUICE_LPM_TAG_BITS 16

/* Deny list entry. */
enum sluice_deny_kind {
	SLUICE_DENY_STATIC = 0, /* added by the operator */
	SLUICE_DENY_BAN = 1,    /* added by a rule's escalation */
};

struct sluice_deny_val {
	__u64 expires_ns; /* CLOCK_MONOTONIC; 0 = never */
	__u64 created_ns;
	__u32 kind;       /* enum sluice_deny_kind */
	__u32 rule_id;    /* for bans: the rule that issued it */
	__u32 prefix_len; /* of the address, without the tag bytes: lets the */
	__u32 pad;        /* XDP program delete an expired entry it found */
};

struct sluice_allow_val {
	__u64 created_ns;
};

/* Rule flags. */
#define SLUICE_RULE_IN_USE      (1u << 0)
#define SLUICE_RULE_KEY_SRC     (1u << 1) /* else one bucket for the rule */
#define SLUICE_RULE_ACTION_COUNT (1u << 2) /* dry run: count, never drop */
#define SLUICE_RULE_HAS_BPS     (1u << 3)

/* One rule, stored in the rules array at its slot. The match fields are for
 * userspace (the classifier maps encode them for the fast path); the limit
 * fields are what the XDP program reads. */
struct sluice_rule {
	__u32 id;       /* user-visible, never reused */
	__u32 flags;    /* SLUICE_RULE_* */
	char name[SLUICE_NAME_LEN];

	/* match */
	__u8 src[16];
	__u8 src_family; /* SLUICE_AF_NONE = any source */
	__u8 src_len;
	__u8 proto;      /* enum sluice_proto; 0xff = any */
	__u8 mask4;      /* per-source key prefix lengths */
	__u8 mask6;
	__u8 pad0[3];
	__u32 key_mask4;    /* the same as network-order masks, so the fast */
	__u32 key_mask6[4]; /* path does not build them per packet */
	__u16 dport_lo;  /* 0 = any port */
	__u16 dport_hi;

	/* limits (user units, kept for display) */
	__u64 pps;
	__u64 burst;     /* packets */
	__u64 bps;       /* bits per second, 0 = none */
	__u64 bburst;    /* bytes */
	__u32 ban_secs;  /* 0 = no escalation */
	__u32 ban_strikes; /* drops within one second that trigger a ban */

	/* limits compiled for the fast path (GCRA, see bpf/gcra.h) */
	__u64 pkt_interval_fp;  /* ns per packet << SLUICE_FP_SHIFT */
	__u64 pkt_tolerance_ns; /* burst * interval */
	__u64 byte_interval_fp; /* ns per byte << SLUICE_FP_SHIFT */
	__u64 byte_tolerance_ns;
};
#define SLUICE_PROTO_ANY 0xff

/* Per-rule counters (per-CPU array, indexed by slot). For a "count" rule,
 * dropped_* counts what would have been dropped. */
struct sluice_rule_stats {
	__u64 passed_pkts;
	__u64 passed_bytes;
	__u64 dropped_pkts;
	__u64 dropped_bytes;
};

/* Per-source (or per-rule) token bucket state: LRU hash. */
struct sluice_bucket_key {
	__u32 rule_id;   /* the rule's id, not its slot, so a reused slot starts clean */
	__u8 family;     /* SLUICE_AF_NONE for a rule-wide bucket */
	__u8 prefix_len; /* the mask applied to addr */
	__u8 pad[2];
	__u8 addr[16];
};

/* prefix_len of a rule's overflow bucket, shared by new sources that the
 * state-insert limiter refused an entry of their own. */
#define SLUICE_OVERFLOW_PREFIX 0xff

/* Shared by every CPU that sees this source: the two TATs are updated with
 * compare-and-swap, the counters with atomic adds (see docs/design.md). */
struct sluice_bucket {
	__u64 pkt_tat;   /* GCRA theoretical arrival time, ns */
	__u64 byte_tat;
	__u64 passed_pkts;
	__u64 passed_bytes;
	__u64 dropped_pkts;
	__u64 dropped_bytes;
	__u64 created_ns;
	__u64 last_seen_ns;
	__u64 strike_window_ns; /* start of the current 1 s escalation window */
	__u64 strikes;          /* drops within that window */
};

/* Single-entry array with global settings; both sides write distinct fields. */
struct sluice_config {
	__u32 active_gen;       /* which classifier generation packets use */
	__u32 pad0;
	__u64 any_src_mask[SLUICE_GENERATIONS]; /* rules with no source prefix */
	/* New per-source state entries are themselves rate limited (GCRA), so a
	 * flood of spoofed sources cannot churn the LRU faster than this. */
	__u64 insert_interval_fp; /* 0 = unlimited */
	__u64 insert_tolerance_ns;
	__u64 next_rule_id;     /* userspace only, under the lock */
	__u64 state_deleted;    /* buckets userspace removed (rule del), so that
				 * evictions = inserts - deleted - live entries */
};

/* Written by the XDP program only (userspace rewrites sluice_config as a
 * whole, which must not clobber this). */
struct sluice_pressure {
	__u64 insert_tat;       /* GCRA state of the state-insert limiter */
};

#endif /* SLUICE_H */
