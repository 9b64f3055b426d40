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

/* Global counters, indexed by this enum (per-CPU array). Which of them count
 * dropped packets is SLUICE_DROP_REASONS below, not their order. */
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
	/* Connection tracking (bpf/flow.h). */
	SLUICE_CNT_DROP_CONN_RATE,  /* SYN over a conn-rate limit */
	SLUICE_CNT_DROP_CONNS,      /* SYN over a conns (concurrent) limit */
	SLUICE_CNT_DROP_FLOW_FULL,  /* SYN refused: flow table full, fail closed */
	SLUICE_CNT_FLOW_INSERT,     /* connections tracked */
	SLUICE_CNT_FLOW_FULL,       /* SYNs that found the flow or count table full */
	SLUICE_CNT_FLOW_CLOSED,     /* ended by FIN both ways */
	SLUICE_CNT_FLOW_RESET,      /* ended by RST from either side */
	SLUICE_CNT_FLOW_EXPIRED_HALF_OPEN, /* handshake never completed */
	SLUICE_CNT_FLOW_EXPIRED_IDLE,      /* established or closing, then silent */
	SLUICE_CNT_SWEEPS,          /* runs of the flow table sweeper */
	SLUICE_CNT_SIGNALS_FULL,    /* ports not measured: the signals table is full */
	SLUICE_CNT_MAX,
};

/* The drop reasons: each counter of a dropped packet, its name (the CLI's
 * drops, the JSON keys, the metrics' reason label) and what it means. The one
 * list the CLI (cmd_stats.c), the metrics (metrics.c) and docs/metrics.md
 * follow; tests/cli/happy.sh checks the docs against it. A malformed packet
 * is not here: it is passed to the kernel, not dropped. */
#define SLUICE_DROP_REASONS(X)                                                        \
	X(SLUICE_CNT_DROP_DENY, "deny", "on the static deny list")                    \
	X(SLUICE_CNT_DROP_BAN, "ban", "on the deny list through a timed ban")          \
	X(SLUICE_CNT_DROP_RATE, "rate", "over a packets-per-second limit")            \
	X(SLUICE_CNT_DROP_BYTES, "bytes", "over a bits-per-second limit")             \
	X(SLUICE_CNT_DROP_CONN_RATE, "conn_rate", "a SYN over a conn-rate limit")    \
	X(SLUICE_CNT_DROP_CONNS, "conns", "a SYN over a concurrent-connections limit") \
	X(SLUICE_CNT_DROP_FLOW_FULL, "flow_full",                                     \
	  "a SYN refused: the flow table was full under flows-full closed")

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

/* rule_id of a ban that sluice-l7 issued (client answered too many 429s). */
#define SLUICE_BAN_BY_L7 0xffffffffu
/* rule_id of a ban another gateway decided, applied here from the store
 * (sluiced's bansync; who and where in sluice_ban_origin). */
#define SLUICE_BAN_BY_FLEET 0xfffffffeu

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
#define SLUICE_RULE_HAS_PPS     (1u << 4)
#define SLUICE_RULE_HAS_CONN_RATE (1u << 5) /* new TCP connections per second */
#define SLUICE_RULE_HAS_CONNS   (1u << 6)   /* concurrent TCP connections */
#define SLUICE_RULE_GLOBAL      (1u << 7)   /* limits shared by a fleet (sluiced leases) */

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

	/* connection limits (TCP; see bpf/flow.h) */
	__u64 conn_rate;  /* new connections per second, 0 = none */
	__u64 conn_burst;
	__u64 conns;      /* concurrent connections, 0 = none */
	__u64 conn_interval_fp;
	__u64 conn_tolerance_ns;
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
	__u64 conn_tat;         /* GCRA of the rule's conn-rate limit */
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
	/* Connection tracking. A flow whose handshake has not completed
	 * expires after syn_timeout; one that saw a FIN from one side only,
	 * after fin_timeout of silence; an established one after
	 * idle_timeout of silence. */
	__u64 syn_timeout_ns;
	__u64 fin_timeout_ns;
	__u64 idle_timeout_ns;
	__u32 flows_full;       /* enum sluice_full_policy */
	__u32 pad1;
};

/* What a SYN gets when the flow table (or the connection count table) has
 * no room for it. */
enum sluice_full_policy {
	SLUICE_FULL_OPEN = 0,   /* pass it, untracked and uncounted */
	SLUICE_FULL_CLOSED = 1, /* drop it (drop reason flow_full) */
};

#define SLUICE_DEFAULT_SYN_TIMEOUT_S  5
#define SLUICE_DEFAULT_FIN_TIMEOUT_S  30
#define SLUICE_DEFAULT_IDLE_TIMEOUT_S 600

/* Written by the XDP program only (userspace rewrites sluice_config as a
 * whole, which must not clobber this). */
struct sluice_pressure {
	__u64 insert_tat;       /* GCRA state of the state-insert limiter */
};

/* ------------------------------------------------------------------------
 * Connection tracking (bpf/flow.h). XDP sees the client's packets on
 * ingress, the TC program the server's on egress of the same interface.
 */
#define SLUICE_DEFAULT_FLOW_ENTRIES 65536
/* A connection holds a slot in the concurrent count of at most this many
 * `conns` rules (the lowest-numbered slots that match it). */
#define SLUICE_FLOW_CONN_RULES 4

enum sluice_flow_state {
	SLUICE_FLOW_SYN_SENT = 1,   /* client SYN seen at ingress */
	SLUICE_FLOW_SYN_RECV = 2,   /* server SYN-ACK seen at egress */
	SLUICE_FLOW_ESTABLISHED = 3,/* client ACKed the SYN-ACK */
	SLUICE_FLOW_CLOSING = 4,    /* a FIN from one side (fin says which) */
	SLUICE_FLOW_DEAD = 5,       /* claimed by whoever deletes it */
};
#define SLUICE_FIN_CLIENT 1
#define SLUICE_FIN_SERVER 2

/* The connection as the client opened it. Ports in host order. */
struct sluice_flow_key {
	__u8 client[16];  /* IPv4 in the first four bytes */
	__u8 server[16];
	__u16 client_port;
	__u16 server_port;
	__u8 family;
	__u8 pad[3];
};

struct sluice_flow {
	__u64 created_ns;     /* the first SYN: connect latency starts here */
	__u64 client_seen_ns; /* last packet from the client (coarse clock) */
	__u64 server_seen_ns; /* last packet from the server (coarse clock) */
	__u64 request_ns;     /* start of the unanswered request, 0 = none */
	__u32 state;          /* enum sluice_flow_state, changed by CAS */
	__u32 fin;            /* SLUICE_FIN_* bits */
	/* The conns counts this connection holds: rule id and slot. */
	__u32 charged_id[SLUICE_FLOW_CONN_RULES];
	__u8 charged_slot[SLUICE_FLOW_CONN_RULES];
	__u32 pad;
};

/* Concurrent connections per limit key (a bucket key: rule id and masked
 * source, or the rule). Not an LRU: a count must never be evicted while its
 * connections live; the sweeper reclaims entries that sat at zero. */
#define SLUICE_CONN_DEAD (1ULL << 63) /* count: being reclaimed */
struct sluice_conn_count {
	__u64 count;   /* live connections holding this key */
	__u64 opened;  /* connections admitted under this key, ever */
	__u64 refused; /* SYNs refused by this key's conns limit */
	__u64 changed_ns;
};

/* ------------------------------------------------------------------------
 * Backend signals, per service (TCP destination port). The TC program and
 * sluice-l7 write them; sluice signals and the daemon read them.
 *
 * Latencies are log-linear histograms in microseconds: values below
 * 2^SUB_BITS us have a bucket each; above, every power of two is split into
 * 2^SUB_BITS buckets, so a bucket spans at most 1/8 of its lower bound and
 * its midpoint is within 6.25% of any value in it.
 */
#define SLUICE_MAX_SERVICES 256
#define SLUICE_HIST_SUB_BITS 3
#define SLUICE_HIST_BUCKETS 192  /* up to 2^26 us (67 s); the last bucket holds the rest */

enum sluice_hist {
	SLUICE_HIST_CONNECT = 0,  /* client SYN to server SYN-ACK */
	SLUICE_HIST_RESPONSE,     /* request start to first response byte */
	SLUICE_HIST_TOTAL,        /* request start to end of response (sluice-l7) */
	SLUICE_HIST_PER_TOKEN,    /* time per output token (sluice-l7) */
	SLUICE_HISTS,
};

enum sluice_signal {
	SLUICE_SIG_CONNECTIONS = 0, /* handshakes answered (SYN-ACK seen) */
	SLUICE_SIG_REQUESTS,        /* requests started */
	SLUICE_SIG_RESPONSES,       /* first response bytes seen */
	SLUICE_SIG_SERVER_RST,      /* RSTs sent by the server */
	SLUICE_SIG_ICMP_UNREACH,    /* ICMP(v6) unreachable sent back */
	SLUICE_SIG_SYN_TIMEOUT,     /* SYNs that got no SYN-ACK */
	SLUICE_SIG_HTTP_1XX,        /* HTTP/1.x status classes of responses */
	SLUICE_SIG_HTTP_2XX,
	SLUICE_SIG_HTTP_3XX,
	SLUICE_SIG_HTTP_4XX,
	SLUICE_SIG_HTTP_5XX,
	SLUICE_SIG_L7_429,          /* requests sluice-l7 answered 429 */
	SLUICE_SIG_MAX,
};

struct sluice_hist_data {
	__u64 count;
	__u64 sum_us;
	__u64 bucket[SLUICE_HIST_BUCKETS];
};

/* Key: the service's port (host order), as a __u32. Shared by every CPU:
 * updated with atomic adds, once per connection or request, not per packet. */
struct sluice_signals {
	__u64 counter[SLUICE_SIG_MAX];
	struct sluice_hist_data hist[SLUICE_HISTS];
};

/* sluice-l7's measurements, sent to bpf/sluice_l7.bpf.c in batches (as the
 * data of a BPF_PROG_TEST_RUN), which applies them to sluice_signals with
 * the same atomic adds the TC program uses. */
enum sluice_l7_event_kind {
	SLUICE_L7_EV_COUNT = 0,   /* counter[index] += 1 */
	SLUICE_L7_EV_OBSERVE = 1, /* hist[index] observes value_ns */
};

struct sluice_l7_event {
	__u32 port;       /* the service, host order */
	__u16 kind;       /* enum sluice_l7_event_kind */
	__u16 index;      /* enum sluice_signal or enum sluice_hist */
	__u64 value_ns;
};
#define SLUICE_L7_BATCH 128   /* events per run: 2 KiB, within a test-run frame */

/* Bucket of a latency in microseconds (both sides use this). */
static inline __u32 sluice_hist_bucket(__u64 us)
{
	__u32 msb = 0;
	__u64 v = us;

	if (us < (1u << SLUICE_HIST_SUB_BITS))
		return (__u32)us;
	if (v >> 32) { msb += 32; v >>= 32; }
	if (v >> 16) { msb += 16; v >>= 16; }
	if (v >> 8) { msb += 8; v >>= 8; }
	if (v >> 4) { msb += 4; v >>= 4; }
	if (v >> 2) { msb += 2; v >>= 2; }
	if (v >> 1) { msb += 1; }
	{
		__u32 b = ((msb - SLUICE_HIST_SUB_BITS + 1) << SLUICE_HIST_SUB_BITS) +
			  (__u32)((us >> (msb - SLUICE_HIST_SUB_BITS)) &
				  ((1u << SLUICE_HIST_SUB_BITS) - 1));

		return b < SLUICE_HIST_BUCKETS ? b : SLUICE_HIST_BUCKETS - 1;
	}
}

/* ------------------------------------------------------------------------
 * Fleet-wide (global) rules: a rule marked global holds this gateway's
 * lease in its limit fields; the global limits and the lease's state are
 * here, by rule slot, written by sluiced and read by the CLI and the
 * metrics. The XDP program never reads this map.
 */
enum sluice_fleet_kind {
	SLUICE_FLEET_PPS = 0,
	SLUICE_FLEET_BPS,
	SLUICE_FLEET_CONN_RATE,
	SLUICE_FLEET_CONNS,
	SLUICE_FLEET_KINDS,
};

enum sluice_fleet_source {
	SLUICE_LEASE_NONE = 0,     /* no answer yet: the start share */
	SLUICE_LEASE_GRANTED = 1,  /* a live lease from the store */
	SLUICE_LEASE_SAFE = 2,     /* the lease expired without renewal: G / gateways */
};

struct sluice_fleet_rule {
	__u32 rule_id;             /* the rule this describes; 0 = unused slot */
	__u32 source;              /* enum sluice_fleet_source */
	__u32 store_state;         /* 0 down, 1 connecting, 2 up (sluiced's store) */
	__u32 gateways;            /* live gateways at the last answer */
	__u64 global[SLUICE_FLEET_KINDS];  /* the fleet's limits; 0 = none */
	__u64 gburst[SLUICE_FLEET_KINDS];  /* the fleet's bursts (pps, bps in bytes, conn-rate) */
	__u64 lease[SLUICE_FLEET_KINDS];   /* enforced here now */
	__u64 want[SLUICE_FLEET_KINDS];    /* asked for at the last renewal */
	__u64 expires_ns;          /* CLOCK_MONOTONIC end of the lease */
	__u64 renewed_ns;          /* last answer */
	__u64 renewals, failures;
};

/* Where a fleet ban (rule_id SLUICE_BAN_BY_FLEET) came from, keyed like
 * the deny list: written by sluiced, read by the CLI. The XDP program never
 * reads this map. expires_ns is the deny entry's it describes: an origin
 * whose entry has another expiry (replaced, gone) is stale. */
#define SLUICE_BAN_ORIGIN_LEN 64
struct sluice_ban_origin {
	__u64 expires_ns;                 /* CLOCK_MONOTONIC, as the deny entry's */
	char by[SLUICE_BAN_ORIGIN_LEN];    /* "rule:NAME", "sluice-l7" */
	char where[SLUICE_BAN_ORIGIN_LEN]; /* the publishing gateway's instance name */
};

#endif /* SLUICE_H */
