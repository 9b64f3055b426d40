// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * bench.c - `make bench`: what sluice costs per packet, next to the cheapest
 * XDP program there is (bpf/floor.bpf.c, a bare XDP_DROP), measured in the
 * same run.
 *
 * Each case is one loaded program with its own maps, one crafted packet and
 * the verdict the case claims. BPF_PROG_TEST_RUN runs the program `repeat`
 * times in the kernel on that packet and reports the mean ns per run, so the
 * number is the program's cost without a driver, a NIC or a syscall per
 * packet. Rounds are interleaved (round 1 of every case, then round 2, ...),
 * so a noisy neighbour that slows one stretch of the run spreads over all
 * cases instead of landing on one; the table shows the median of the rounds.
 * Before a case is timed its verdict is checked, and after every timed run
 * the program's own counters must show that every packet took the path the
 * case claims: a benchmark of the wrong path is worse than none.
 *
 * A second table runs each packet once (repeat 1). Its first rows draw a
 * different source every run from a state table of 1, 10^4 or 10^6 sources:
 * with one packet repeated, the source's bucket stays in cache and the
 * table's size cannot show; here it can. Its other rows are TCP SYNs that
 * each open a connection, which needs a new 4-tuple every run: a round sends
 * COLD_PACKETS SYNs from as many client ports, and then, untimed, the RSTs
 * that close them, so every round starts from the same empty flow table.
 *
 * The TCP cases of the first table run on a connection that the setup opens
 * through the programs' own handshake (SYN at XDP, SYN-ACK at TC, ACK at
 * XDP). A third table times the TC egress program on the server's packets
 * of such a connection, next to a bare TC_ACT_OK (floor_tc) measured the
 * same way. docs/benchmarks.md reads the results.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/utsname.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/pkt_cls.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "floor.skel.h"
#include "sluice_xdp.skel.h"
#include "sluice_tc.skel.h"
#include "command.h"
#include "loader.h"
#include "log.h"
#include "maps.h"
#include "parse.h"
#include "policy.h"
#include "sluice.h"
#include "stats.h"

#define DEFAULT_ROUNDS 7
#define DEFAULT_REPEAT 2000000
#define MAX_ROUNDS 99
#define MAX_REPEAT 100000000

/* The state table of the table-size cases: 2^21 slots, so 10^6 sources fit
 * without the LRU evicting any of them. */
#define BIG_STATE_ENTRIES (1u << 21)
#define FILL_BATCH 65536
/* 198.18.0.0/15 holds 131070 usable host addresses; sources past them are
 * IPv6 /64s from 2001:db8::/32. Keys are the same size either way. */
#define V4_SOURCES 131070u

/* Random-source runs: packets per case per round, each run once. */
#define COLD_PACKETS 2048

#define BENCH_DPORT 5000
#define BENCH_SRC4 "198.18.0.1"
#define BENCH_DST4 "198.19.0.1"
#define BENCH_SRC6 "2001:db8::1"
#define BENCH_DST6 "2001:db8:ffff::1"

#define PASS_RULE "rule add name bench dport 5000 proto udp pps 1g"
#define DROP_RULE "rule add name bench dport 5000 proto udp pps 1 burst 1"

/* TCP: the client is BENCH_SRC4, the service BENCH_DST4:BENCH_DPORT. Each
 * established-flow case has a connection of its own (its client port), so
 * one case's checks do not see another's packets. */
#define TCP_RULE "rule add name bench dport 5000 proto tcp pps 1g"
#define CONNS_RULE "rule add name bench dport 5000 proto tcp conns 100000"
#define CONN_RATE_RULE "rule add name bench dport 5000 proto tcp conn-rate 100000000"
#define CPORT_ACK 41001
#define CPORT_DATA 41002
#define CPORT_TC_ACK 41003
#define CPORT_TC_DATA 41004
#define CPORT_UNTRACKED 41999 /* no connection: the flow lookup misses */
/* SYN cases: client ports SYN_PORT_BASE + 0..COLD_PACKETS-1, and one below
 * them for the warm-up connection. */
#define SYN_PORT_BASE 10001
#define TCP_PAYLOAD_LEN 64
/* Byte 13 of the TCP header, as bpf/parsing.h reads it. */
#define TH_SYN 0x02
#define TH_RST 0x04
#define TH_PSH 0x08
#define TH_ACK 0x10
/* The start of what each side's payload carries; the TC program reads the
 * status class of the first response segment after a request. */
#define REQUEST_TEXT "GET / HTTP/1.1\r\nHost: bench\r\n"
#define RESPONSE_TEXT "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n"

/* ------------------------------------------------------------------------ */
/* Packets */

struct packet {
	unsigned char data[128];
	__u32 len;
};

#define PAYLOAD_LEN 22 /* an IPv4 UDP frame of 64 bytes */

static void packet_udp4(struct packet *p, __u32 saddr_be, __u16 dport)
{
	struct ethhdr eth = { .h_dest = { 2, 0, 0, 0, 0, 2 }, .h_source = { 2, 0, 0, 0, 0, 1 } };
	struct iphdr ip = {};
	struct udphdr udp = {};
	size_t off = 0;

	memset(p, 0, sizeof(*p));
	eth.h_proto = htons(ETH_P_IP);
	ip.version = 4;
	ip.ihl = 5;
	ip.tot_len = htons(sizeof(ip) + sizeof(udp) + PAYLOAD_LEN);
	ip.ttl = 64;
	ip.protocol = IPPROTO_UDP;
	ip.saddr = saddr_be;
	inet_pton(AF_INET, BENCH_DST4, &ip.daddr);
	udp.source = htons(40000);
	udp.dest = htons(dport);
	udp.len = htons(sizeof(udp) + PAYLOAD_LEN);

	memcpy(p->data + off, &eth, sizeof(eth));
	off += sizeof(eth);
	memcpy(p->data + off, &ip, sizeof(ip));
	off += sizeof(ip);
	memcpy(p->data + off, &udp, sizeof(udp));
	off += sizeof(udp);
	p->len = (__u32)(off + PAYLOAD_LEN);
}

static void packet_udp6(struct packet *p, const struct in6_addr *saddr, __u16 dport)
{
	struct ethhdr eth = { .h_dest = { 2, 0, 0, 0, 0, 2 }, .h_source = { 2, 0, 0, 0, 0, 1 } };
	struct ipv6hdr ip6 = {};
	struct udphdr udp = {};
	size_t off = 0;

	memset(p, 0, sizeof(*p));
	eth.h_proto = htons(ETH_P_IPV6);
	ip6.version = 6;
	ip6.payload_len = htons(sizeof(udp) + PAYLOAD_LEN);
	ip6.nexthdr = IPPROTO_UDP;
	ip6.hop_limit = 64;
	memcpy(&ip6.saddr, saddr, sizeof(*saddr));
	inet_pton(AF_INET6, BENCH_DST6, &ip6.daddr);
	udp.source = htons(40000);
	udp.dest = htons(dport);
	udp.len = htons(sizeof(udp) + PAYLOAD_LEN);

	memcpy(p->data + off, &eth, sizeof(eth));
	off += sizeof(eth);
	memcpy(p->data + off, &ip6, sizeof(ip6));
	off += sizeof(ip6);
	memcpy(p->data + off, &udp, sizeof(udp));
	off += sizeof(udp);
	p->len = (__u32)(off + PAYLOAD_LEN);
}

/* A TCP segment from src:sport to dst:dport with the TH_* flags and, if
 * text is not NULL, TCP_PAYLOAD_LEN bytes of payload that start with it. */
static void packet_tcp4(struct packet *p, __u32 saddr_be, __u32 daddr_be, __u16 sport,
			__u16 dport, __u8 flags, const char *text)
{
	struct ethhdr eth = { .h_dest = { 2, 0, 0, 0, 0, 2 }, .h_source = { 2, 0, 0, 0, 0, 1 } };
	__u32 plen = text ? TCP_PAYLOAD_LEN : 0;
	struct iphdr ip = {};
	struct tcphdr th = {};
	size_t off = 0;

	_Static_assert(sizeof(eth) + sizeof(ip) + sizeof(th) + TCP_PAYLOAD_LEN <=
		       sizeof(p->data), "TCP_PAYLOAD_LEN does not fit struct packet");
	memset(p, 0, sizeof(*p));
	eth.h_proto = htons(ETH_P_IP);
	ip.version = 4;
	ip.ihl = 5;
	ip.tot_len = htons((__u16)(sizeof(ip) + sizeof(th) + plen));
	ip.ttl = 64;
	ip.protocol = IPPROTO_TCP;
	ip.saddr = saddr_be;
	ip.daddr = daddr_be;
	th.source = htons(sport);
	th.dest = htons(dport);
	th.seq = htonl(1);
	th.doff = sizeof(th) / 4;
	th.window = htons(65535);
	((unsigned char *)&th)[13] = flags;

	memcpy(p->data + off, &eth, sizeof(eth));
	off += sizeof(eth);
	memcpy(p->data + off, &ip, sizeof(ip));
	off += sizeof(ip);
	memcpy(p->data + off, &th, sizeof(th));
	off += sizeof(th);
	if (text) {
		memset(p->data + off, 'x', plen);
		memcpy(p->data + off, text, strlen(text));
	}
	p->len = (__u32)(off + plen);
}

static __u32 addr4(const char *s)
{
	struct in_addr a;

	inet_pton(AF_INET, s, &a);
	return a.s_addr;
}

/* The client's packets (XDP sees them) and the server's (TC sees them). */
static void packet_client(struct packet *p, __u16 cport, __u8 flags, const char *text)
{
	packet_tcp4(p, addr4(BENCH_SRC4), addr4(BENCH_DST4), cport, BENCH_DPORT, flags, text);
}

static void packet_server(struct packet *p, __u16 cport, __u8 flags, const char *text)
{
	packet_tcp4(p, addr4(BENCH_DST4), addr4(BENCH_SRC4), BENCH_DPORT, cport, flags, text);
}

/* The flow key sluice builds for client port cport (include/sluice.h). */
static void flow_key_for(__u16 cport, struct sluice_flow_key *k)
{
	__u32 c = addr4(BENCH_SRC4), s = addr4(BENCH_DST4);

	memset(k, 0, sizeof(*k));
	memcpy(k->client, &c, 4);
	memcpy(k->server, &s, 4);
	k->client_port = cport;
	k->server_port = BENCH_DPORT;
	k->family = SLUICE_AF_INET;
}

/* Source number i of a filled state table (0 is BENCH_SRC4, the measured
 * one). The packet's address and its bucket key must agree. */
static int source_is_v4(__u32 i)
{
	return i < V4_SOURCES;
}

static __u32 source_v4(__u32 i)
{
	struct in_addr a;

	inet_pton(AF_INET, BENCH_SRC4, &a);
	return htonl(ntohl(a.s_addr) + i);
}

static void source_v6(__u32 i, struct in6_addr *a)
{
	__u32 j = i - V4_SOURCES;

	/* 2001:db8:HHHH:LLLL::1, one /64 each */
	inet_pton(AF_INET6, "2001:db8::1", a);
	a->s6_addr[4] = (unsigned char)(j >> 24);
	a->s6_addr[5] = (unsigned char)(j >> 16);
	a->s6_addr[6] = (unsigned char)(j >> 8);
	a->s6_addr[7] = (unsigned char)j;
}

static void packet_for_source(struct packet *p, __u32 i)
{
	struct in6_addr a;

	if (source_is_v4(i)) {
		packet_udp4(p, source_v4(i), BENCH_DPORT);
		return;
	}
	source_v6(i, &a);
	packet_udp6(p, &a, BENCH_DPORT);
}

/* ------------------------------------------------------------------------ */
/* Programs under test */

struct inst {
	const char *what;         /* for error messages */
	struct sluice_xdp *skel;  /* NULL for the floor */
	struct floor *floor;
	struct sluice_tc *tc;     /* the TC egress program on skel's maps, if loaded */
	int prog_fd;              /* XDP: sluice_xdp or floor_drop */
	int tc_prog_fd;           /* TC: sluice_tc_egress or floor_tc */
	struct sluice_maps maps;
	struct sluice_rule bench; /* the rule named "bench", if any */
	int has_bench;
	__u32 state_entries;
};

static int inst_open_floor(struct inst *in)
{
	int err;

	memset(in, 0, sizeof(*in));
	in->what = "floor";
	in->floor = floor__open_and_load();
	if (!in->floor) {
		err = -errno;
		pr_err("load build/floor.bpf.o: %s", strerror(-err));
		return err;
	}
	in->prog_fd = bpf_program__fd(in->floor->progs.floor_drop);
	in->tc_prog_fd = bpf_program__fd(in->floor->progs.floor_tc);
	return 0;
}

static int inst_open(struct inst *in, const char *what, __u32 state_entries, int test_clock)
{
	struct load_opts lo = { .pin = 0, .state_entries = state_entries, .test_clock = test_clock };
	int err;

	memset(in, 0, sizeof(*in));
	in->what = what;
	in->state_entries = state_entries ? state_entries : SLUICE_DEFAULT_STATE_ENTRIES;
	err = loader_open(&in->skel, &lo);
	if (err) {
		pr_err("%s: load sluice: %s", what, strerror(-err));
		return err;
	}
	maps_from_skel(&in->maps, in->skel);
	in->prog_fd = bpf_program__fd(in->skel->progs.sluice_xdp);
	/* As `sluice attach` does: the state-insert limiter's defaults. */
	err = loader_init_config(in->maps.cfg, in->state_entries, 0);
	if (err)
		pr_err("%s: initialise config: %s", what, strerror(-err));
	if (test_clock && in->skel->bss)
		in->skel->bss->sluice_test_now = monotonic_ns();
	return err;
}

/* The TC egress program on the instance's maps, as `sluice attach` loads it. */
static int inst_open_tc(struct inst *in)
{
	struct load_opts lo = { .pin = 0 };
	int err;

	err = loader_open_tc(&in->tc, in->skel, &lo);
	if (err) {
		pr_err("%s: load the TC program: %s", in->what, strerror(-err));
		return err;
	}
	in->tc_prog_fd = bpf_program__fd(in->tc->progs.sluice_tc_egress);
	return 0;
}

static void inst_close(struct inst *in)
{
	if (in->tc)
		sluice_tc__destroy(in->tc);
	in->tc = NULL;
	if (in->skel)
		sluice_xdp__destroy(in->skel);
	if (in->floor)
		floor__destroy(in->floor);
	in->skel = NULL;
	in->floor = NULL;
}

/* A policy transaction on one instance, fed with the CLI's own grammar. */
struct tx {
	struct inst *in;
	struct policy p;
	int err;
};

static int tx_begin(struct tx *t, struct inst *in)
{
	t->in = in;
	t->err = policy_load(&t->p, &in->maps);
	if (t->err)
		pr_err("%s: load policy: %s", in->what, strerror(-t->err));
	return t->err;
}

/* Splits a printf-formatted command into words and applies it. The first
 * error sticks, so a setup can issue many commands and check once. */
__attribute__((format(printf, 2, 3)))
static void tx_cmd(struct tx *t, const char *fmt, ...)
{
	char line[256], *words[COMMAND_MAX_WORDS];
	struct command_result res;
	struct errbuf e = { "" };
	va_list ap;
	int n;

	if (t->err)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	n = split_words(line, words, COMMAND_MAX_WORDS);
	if (n < 0) {
		t->err = n;
	} else {
		t->err = command_apply(&t->p, n, words, &res, &e);
	}
	if (t->err) {
		va_start(ap, fmt);
		vsnprintf(line, sizeof(line), fmt, ap);
		va_end(ap);
		pr_err("%s: '%s': %s", t->in->what, line, e.msg[0] ? e.msg : strerror(-t->err));
	}
}

static int tx_commit(struct tx *t)
{
	int slot;

	if (!t->err) {
		slot = policy_rule_find(&t->p, "bench");
		if (slot >= 0) {
			t->in->bench = t->p.rules[slot];
			t->in->has_bench = 1;
		}
		t->err = policy_commit(&t->p, &t->in->maps);
		if (t->err)
			pr_err("%s: commit policy: %s", t->in->what, strerror(-t->err));
	}
	policy_free(&t->p);
	return t->err;
}

/* 63 rules that the bench packet (UDP from 198.18.0.1 to port 5000) does not
 * match, a third on other ports, a third on other source prefixes (IPv4 and
 * IPv6, so the rule-source trie is not empty) and a third on another
 * protocol: each leaves some classifier dimension matching. */
static void tx_other_rules(struct tx *t, int n)
{
	int i;

	for (i = 0; i < n; i++) {
		switch (i % 3) {
		case 0:
			tx_cmd(t, "rule add name o%d dport %d proto udp pps 1000", i, 6000 + i);
			break;
		case 1:
			if (i % 2)
				tx_cmd(t, "rule add name o%d src 198.19.%d.0/24 dport 5000 pps 1000",
				       i, i);
			else
				tx_cmd(t, "rule add name o%d src 2001:db8:%x::/48 dport 5000 pps 1000",
				       i, i + 1);
			break;
		default:
			tx_cmd(t, "rule add name o%d dport 5000 proto tcp pps 1000", i);
			break;
		}
	}
}

/* Four rules that all match the bench packet, each in its own way. */
static void tx_matching_rules(struct tx *t, const char *limit)
{
	tx_cmd(t, "rule add name bench dport 5000 proto udp %s", limit);
	tx_cmd(t, "rule add name m1 src 198.18.0.0/15 %s", limit);
	tx_cmd(t, "rule add name m2 proto udp %s", limit);
	tx_cmd(t, "rule add name m3 dport 4000-6000 %s", limit);
}

/* The bucket key that sluice_xdp builds for source i under the bench rule. */
static void bucket_key_for_source(const struct sluice_rule *r, __u32 i,
				  struct sluice_bucket_key *k)
{
	memset(k, 0, sizeof(*k));
	k->rule_id = r->id;
	if (source_is_v4(i)) {
		__u32 a = source_v4(i) & r->key_mask4;

		k->family = SLUICE_AF_INET;
		k->prefix_len = r->mask4;
		memcpy(k->addr, &a, 4);
	} else {
		struct in6_addr a6;
		__u32 w[4];
		int j;

		source_v6(i, &a6);
		memcpy(w, &a6, 16);
		for (j = 0; j < 4; j++)
			w[j] &= r->key_mask6[j];
		k->family = SLUICE_AF_INET6;
		k->prefix_len = r->mask6;
		memcpy(k->addr, w, 16);
	}
}

/* Entries in the state table, read in batches. */
static long count_buckets(int fd)
{
	__u32 batch_count = 8192, in_batch = 0, out_batch = 0;
	struct sluice_bucket_key *keys;
	struct sluice_bucket *vals;
	long total = 0;
	int first = 1, err;

	keys = calloc(batch_count, sizeof(*keys));
	vals = calloc(batch_count, sizeof(*vals));
	if (!keys || !vals) {
		total = -ENOMEM;
		goto out;
	}
	for (;;) {
		__u32 n = batch_count;

		err = bpf_map_lookup_batch(fd, first ? NULL : &in_batch, &out_batch, keys, vals,
					   &n, NULL);
		if (err && errno != ENOENT) {
			total = -errno;
			goto out;
		}
		total += n;
		if (err)
			break; /* ENOENT: that was the last batch */
		in_batch = out_batch;
		first = 0;
	}
out:
	free(keys);
	free(vals);
	return total;
}

/* Sources 0..n-1, all far over the bench rule's limit (their next packet
 * is due an hour from now), as a flood that has been going on would leave
 * them. */
static int fill_buckets(struct inst *in, __u32 n)
{
	LIBBPF_OPTS(bpf_map_batch_opts, bo, .elem_flags = BPF_ANY);
	struct sluice_bucket_key *keys;
	struct sluice_bucket *vals;
	__u64 now = monotonic_ns();
	__u32 done = 0, i;
	long have;
	int err = 0;

	keys = calloc(FILL_BATCH, sizeof(*keys));
	vals = calloc(FILL_BATCH, sizeof(*vals));
	if (!keys || !vals) {
		err = -ENOMEM;
		goto out;
	}
	for (i = 0; i < FILL_BATCH; i++) {
		vals[i].pkt_tat = vals[i].byte_tat = now + 3600ULL * 1000000000ULL;
		vals[i].created_ns = vals[i].last_seen_ns = vals[i].strike_window_ns = now;
	}
	while (done < n) {
		__u32 chunk = n - done < FILL_BATCH ? n - done : FILL_BATCH;

		for (i = 0; i < chunk; i++)
			bucket_key_for_source(&in->bench, done + i, &keys[i]);
		if (bpf_map_update_batch(in->maps.buckets, keys, vals, &chunk, &bo)) {
			err = -errno;
			pr_err("%s: fill state table at %u: %s", in->what, done, strerror(-err));
			goto out;
		}
		done += chunk;
	}
	have = count_buckets(in->maps.buckets);
	if (have != (long)n) {
		pr_err("%s: state table holds %ld entries after filling %u (evictions?)",
		       in->what, have, n);
		err = have < 0 ? (int)have : -EIO;
	}
out:
	free(keys);
	free(vals);
	return err;
}

/* ------------------------------------------------------------------------ */
/* Running */

static int test_run(int prog_fd, const struct packet *pkt, __u32 repeat, __u32 *retval,
		    __u32 *duration)
{
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = pkt->data, .data_size_in = pkt->len,
		    .repeat = repeat);

	if (bpf_prog_test_run_opts(prog_fd, &o))
		return -errno;
	*retval = o.retval;
	*duration = o.duration;
	return 0;
}

static const char *verdict_name(int tc, __u32 v)
{
	if (tc)
		return v == TC_ACT_OK ? "TC_ACT_OK" : v == TC_ACT_SHOT ? "TC_ACT_SHOT" : "TC_ACT_?";
	switch (v) {
	case XDP_ABORTED: return "XDP_ABORTED";
	case XDP_DROP: return "XDP_DROP";
	case XDP_PASS: return "XDP_PASS";
	case XDP_TX: return "XDP_TX";
	case XDP_REDIRECT: return "XDP_REDIRECT";
	default: return "XDP_?";
	}
}

/* The counters a timed run is checked against. */
static const int drop_counters[] = {
	SLUICE_CNT_DROP_DENY, SLUICE_CNT_DROP_BAN, SLUICE_CNT_DROP_RATE, SLUICE_CNT_DROP_BYTES,
	SLUICE_CNT_DROP_CONN_RATE, SLUICE_CNT_DROP_CONNS, SLUICE_CNT_DROP_FLOW_FULL,
};
/* What a run of the first table must never move: each case's state (bucket,
 * connection) exists before it is timed, and its packet is well formed. */
static const int unchanged[] = {
	SLUICE_CNT_STATE_INSERT, SLUICE_CNT_STATE_THROTTLED, SLUICE_CNT_CAS_EXHAUSTED,
	SLUICE_CNT_MALFORMED, SLUICE_CNT_FLOW_INSERT, SLUICE_CNT_FLOW_FULL,
	SLUICE_CNT_FLOW_CLOSED, SLUICE_CNT_FLOW_RESET,
};
static const int watched[] = {
	SLUICE_CNT_PACKETS, SLUICE_CNT_DROP_DENY, SLUICE_CNT_DROP_BAN, SLUICE_CNT_DROP_RATE,
	SLUICE_CNT_DROP_BYTES, SLUICE_CNT_DROP_CONN_RATE, SLUICE_CNT_DROP_CONNS,
	SLUICE_CNT_DROP_FLOW_FULL, SLUICE_CNT_ALLOWED, SLUICE_CNT_STATE_INSERT,
	SLUICE_CNT_STATE_THROTTLED, SLUICE_CNT_CAS_EXHAUSTED, SLUICE_CNT_MALFORMED,
	SLUICE_CNT_FLOW_INSERT, SLUICE_CNT_FLOW_FULL, SLUICE_CNT_FLOW_CLOSED,
	SLUICE_CNT_FLOW_RESET,
};
#define N_WATCHED (sizeof(watched) / sizeof(watched[0]))
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static const char *counter_name(int c)
{
	return c >= 0 && c < SLUICE_CNT_MAX && stats_counter_names[c] ? stats_counter_names[c]
								       : "?";
}

static int read_counters(const struct inst *in, __u64 *out)
{
	size_t i;
	int err;

	for (i = 0; i < N_WATCHED; i++) {
		err = maps_percpu_sum(in->maps.counters, (__u32)watched[i], &out[i], 1);
		if (err) {
			pr_err("%s: read counters: %s", in->what, strerror(-err));
			return err;
		}
	}
	return 0;
}

static __u64 delta_of(const __u64 *before, const __u64 *after, int counter)
{
	size_t i;

	for (i = 0; i < N_WATCHED; i++)
		if (watched[i] == counter)
			return after[i] - before[i];
	return 0;
}

static __u64 drops_of(const __u64 *before, const __u64 *after)
{
	__u64 n = 0;
	size_t i;

	for (i = 0; i < ARRAY_LEN(drop_counters); i++)
		n += delta_of(before, after, drop_counters[i]);
	return n;
}

struct bench_case {
	const char *name;
	struct inst *in;
	struct packet pkt;
	int tc;          /* times the instance's TC program, else its XDP one */
	__u16 cport;     /* runs on the established connection of this client port, or 0 */
	int payload;     /* the segment carries data */
	__u32 verdict;   /* XDP_DROP or XDP_PASS; TC_ACT_OK for TC */
	int counter;     /* the counter every packet must add to, or -1 */
	__u32 ns[MAX_ROUNDS];
	double median;
	__u32 min, max;
};

static int case_prog_fd(const struct bench_case *c)
{
	return c->tc ? c->in->tc_prog_fd : c->in->prog_fd;
}

/* Checks that a run of `repeat` packets did what the case claims: every
 * packet counted (by the XDP program; a TC case runs none of them), by the
 * case's counter if it has one, no drop when it passes, and no new state (the
 * source's bucket and the case's connection existed before the run). A
 * rate drop lets through at most one packet per second of the run plus the
 * burst of one. */
static int check_counters(const struct bench_case *c, const __u64 *before, const __u64 *after,
			  __u64 repeat, __u64 run_ns)
{
	__u64 slack = c->counter == SLUICE_CNT_DROP_RATE ? 2 + run_ns / 1000000000ULL : 0;
	__u64 packets = c->tc ? 0 : repeat;
	size_t i;

	if (delta_of(before, after, SLUICE_CNT_PACKETS) != packets) {
		pr_err("%s: the XDP program counted %llu packets in a run of %llu", c->name,
		       (unsigned long long)delta_of(before, after, SLUICE_CNT_PACKETS),
		       (unsigned long long)packets);
		return -EIO;
	}
	if (c->counter >= 0 && delta_of(before, after, c->counter) + slack < repeat) {
		pr_err("%s: %s counted %llu of %llu packets", c->name, counter_name(c->counter),
		       (unsigned long long)delta_of(before, after, c->counter),
		       (unsigned long long)repeat);
		return -EIO;
	}
	if (c->tc || c->verdict == XDP_PASS) {
		for (i = 0; i < ARRAY_LEN(drop_counters); i++) {
			if (delta_of(before, after, drop_counters[i])) {
				pr_err("%s: a passing case counted %llu %s", c->name,
				       (unsigned long long)delta_of(before, after, drop_counters[i]),
				       counter_name(drop_counters[i]));
				return -EIO;
			}
		}
	}
	for (i = 0; i < ARRAY_LEN(unchanged); i++) {
		if (delta_of(before, after, unchanged[i])) {
			pr_err("%s: the timed run counted %llu %s (it must not)", c->name,
			       (unsigned long long)delta_of(before, after, unchanged[i]),
			       counter_name(unchanged[i]));
			return -EIO;
		}
	}
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Connections */

/* Opens the connection of client port cport through the programs, as a
 * real handshake would: SYN at XDP, SYN-ACK at TC, ACK at XDP. */
static int flow_establish(struct inst *in, __u16 cport)
{
	struct sluice_flow_key k;
	struct sluice_flow f;
	struct packet syn, synack, ack;
	__u32 ret, dur;
	int err;

	packet_client(&syn, cport, TH_SYN, NULL);
	packet_server(&synack, cport, TH_SYN | TH_ACK, NULL);
	packet_client(&ack, cport, TH_ACK, NULL);
	if ((err = test_run(in->prog_fd, &syn, 1, &ret, &dur)) || ret != XDP_PASS ||
	    (err = test_run(in->tc_prog_fd, &synack, 1, &ret, &dur)) || ret != TC_ACT_OK ||
	    (err = test_run(in->prog_fd, &ack, 1, &ret, &dur)) || ret != XDP_PASS) {
		pr_err("%s: handshake of client port %u: %s", in->what, cport,
		       err ? strerror(-err) : "a packet got the wrong verdict");
		return err ? err : -EIO;
	}
	flow_key_for(cport, &k);
	if (bpf_map_lookup_elem(in->maps.flows, &k, &f) || f.state != SLUICE_FLOW_ESTABLISHED) {
		pr_err("%s: after the handshake of client port %u the connection is %s", in->what,
		       cport, errno == ENOENT ? "not tracked" : "not established");
		return -EIO;
	}
	return 0;
}

/* The bench service's signals (zero before the first handshake). */
static int read_signals(const struct inst *in, struct sluice_signals *s)
{
	__u32 port = BENCH_DPORT;

	memset(s, 0, sizeof(*s));
	if (bpf_map_lookup_elem(in->maps.signals, &port, s) && errno != ENOENT) {
		pr_err("%s: read signals: %s", in->what, strerror(errno));
		return -errno;
	}
	return 0;
}

/* Before a round on an established connection: both last-seen times at
 * zero, so that the round's first packet must write its side's (the proof
 * that the program found the connection), and for the server's data a
 * request outstanding, which the round's first segment answers. */
static int flow_prepare(const struct bench_case *c)
{
	struct sluice_flow_key k;
	struct sluice_flow f;

	flow_key_for(c->cport, &k);
	if (bpf_map_lookup_elem(c->in->maps.flows, &k, &f)) {
		pr_err("%s: the connection is not tracked: %s", c->name, strerror(errno));
		return -EIO;
	}
	f.client_seen_ns = 0;
	f.server_seen_ns = 0;
	f.request_ns = c->tc && c->payload ? monotonic_ns() : 0;
	if (bpf_map_update_elem(c->in->maps.flows, &k, &f, BPF_EXIST)) {
		pr_err("%s: reset the connection: %s", c->name, strerror(errno));
		return -EIO;
	}
	return 0;
}

/* After it: still established, found (its side's last-seen time written),
 * and a data segment started one request (client) or answered it with one
 * 2xx response (server): the rest of the run were later segments of it. */
static int flow_check(const struct bench_case *c, const struct sluice_signals *before,
		      const struct sluice_signals *after)
{
	const __u64 *b = before->counter, *a = after->counter;
	__u64 req = a[SLUICE_SIG_REQUESTS] - b[SLUICE_SIG_REQUESTS];
	__u64 resp = a[SLUICE_SIG_RESPONSES] - b[SLUICE_SIG_RESPONSES];
	__u64 ok = a[SLUICE_SIG_HTTP_2XX] - b[SLUICE_SIG_HTTP_2XX];
	__u64 want_req = !c->tc && c->payload, want_resp = c->tc && c->payload;
	struct sluice_flow_key k;
	struct sluice_flow f;

	flow_key_for(c->cport, &k);
	if (bpf_map_lookup_elem(c->in->maps.flows, &k, &f)) {
		pr_err("%s: the run ended the connection", c->name);
		return -EIO;
	}
	if (f.state != SLUICE_FLOW_ESTABLISHED) {
		pr_err("%s: the connection is in state %u after the run", c->name, f.state);
		return -EIO;
	}
	if (!(c->tc ? f.server_seen_ns : f.client_seen_ns)) {
		pr_err("%s: the program did not update the connection", c->name);
		return -EIO;
	}
	if (req != want_req || resp != want_resp || ok != want_resp ||
	    (want_req && !f.request_ns) || (want_resp && f.request_ns)) {
		pr_err("%s: the run counted %llu requests, %llu responses, %llu 2xx "
		       "(expected %llu, %llu, %llu)", c->name, (unsigned long long)req,
		       (unsigned long long)resp, (unsigned long long)ok,
		       (unsigned long long)want_req, (unsigned long long)want_resp,
		       (unsigned long long)want_resp);
		return -EIO;
	}
	return 0;
}

/* Warm up (the first packet of a drop case creates its bucket and is
 * admitted), then the verdict must be the one the case claims. */
static int case_verify(const struct bench_case *c)
{
	__u32 ret = 0, dur, i;
	int err;

	for (i = 0; i < 3; i++) {
		err = test_run(case_prog_fd(c), &c->pkt, 1, &ret, &dur);
		if (err) {
			pr_err("%s: BPF_PROG_TEST_RUN: %s", c->name, strerror(-err));
			return err;
		}
	}
	if (ret != c->verdict) {
		pr_err("%s: verdict %s, but the case is about %s: the setup is wrong, "
		       "not timing it", c->name, verdict_name(c->tc, ret),
		       verdict_name(c->tc, c->verdict));
		return -EIO;
	}
	return 0;
}

static int case_measure(struct bench_case *c, int round, __u32 repeat)
{
	__u64 before[N_WATCHED], after[N_WATCHED];
	struct sluice_signals sig_before, sig_after;
	__u32 ret, dur;
	int err;

	if (c->cport && ((err = flow_prepare(c)) || (err = read_signals(c->in, &sig_before))))
		return err;
	if (c->in->skel && (err = read_counters(c->in, before)))
		return err;
	err = test_run(case_prog_fd(c), &c->pkt, repeat, &ret, &dur);
	if (err) {
		pr_err("%s: BPF_PROG_TEST_RUN: %s", c->name, strerror(-err));
		return err;
	}
	if (ret != c->verdict) {
		pr_err("%s: round %d ended with %s, expected %s", c->name, round + 1,
		       verdict_name(c->tc, ret), verdict_name(c->tc, c->verdict));
		return -EIO;
	}
	if (c->in->skel) {
		err = read_counters(c->in, after);
		if (!err)
			err = check_counters(c, before, after, repeat, (__u64)dur * repeat);
		if (err)
			return err;
	}
	if (c->cport && ((err = read_signals(c->in, &sig_after)) ||
			 (err = flow_check(c, &sig_before, &sig_after))))
		return err;
	c->ns[round] = dur;
	return 0;
}

static int cmp_u32(const void *a, const void *b)
{
	__u32 x = *(const __u32 *)a, y = *(const __u32 *)b;

	return x < y ? -1 : x > y;
}

static double median_u32(const __u32 *v, size_t n, __u32 *min, __u32 *max, __u32 *p90)
{
	__u32 *s = malloc(n * sizeof(*s));
	double m;

	if (!s)
		return -1;
	memcpy(s, v, n * sizeof(*s));
	qsort(s, n, sizeof(*s), cmp_u32);
	m = n % 2 ? s[n / 2] : (s[n / 2 - 1] + (double)s[n / 2]) / 2;
	if (min)
		*min = s[0];
	if (max)
		*max = s[n - 1];
	if (p90)
		*p90 = s[(n * 9) / 10 < n ? (n * 9) / 10 : n - 1];
	free(s);
	return m;
}

/* One run per packet (see the top of the file). */
enum cold_kind {
	COLD_SOURCES, /* UDP, each from a random one of `sources` sources in the table */
	COLD_SYN,     /* TCP SYNs from a new client port each, closed after the round */
	COLD_ACK,     /* the ACK of the established connection CPORT_ACK, every run */
};

struct cold_case {
	const char *name;
	struct inst *in;
	enum cold_kind kind;
	__u32 sources;   /* COLD_SOURCES: draw each packet's source from 0..sources-1 */
	__u32 verdict;
	struct packet *pkts;
	struct packet *rsts; /* COLD_SYN: the client RSTs that close the round's connections */
	__u32 *ns;       /* COLD_PACKETS per round */
	size_t n;
	double median;
	__u32 p90;
};

static __u64 rng_state = 0x9E3779B97F4A7C15ULL;

static __u32 rng_below(__u32 bound)
{
	/* xorshift64*: reproducible, and good enough to scatter lookups */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return (__u32)(((rng_state * 0x2545F4914F6CDD1DULL) >> 32) % bound);
}

static int cold_prepare(struct cold_case *c, int rounds)
{
	__u32 i;

	c->pkts = calloc(COLD_PACKETS, sizeof(*c->pkts));
	c->rsts = c->kind == COLD_SYN ? calloc(COLD_PACKETS, sizeof(*c->rsts)) : NULL;
	c->ns = calloc((size_t)COLD_PACKETS * (size_t)rounds, sizeof(*c->ns));
	if (!c->pkts || !c->ns || (c->kind == COLD_SYN && !c->rsts))
		return -ENOMEM;
	for (i = 0; i < COLD_PACKETS; i++) {
		switch (c->kind) {
		case COLD_SOURCES:
			packet_for_source(&c->pkts[i],
					  c->sources > 1 ? rng_below(c->sources) : 0);
			break;
		case COLD_SYN:
			packet_client(&c->pkts[i], (__u16)(SYN_PORT_BASE + i), TH_SYN, NULL);
			packet_client(&c->rsts[i], (__u16)(SYN_PORT_BASE + i), TH_RST | TH_ACK,
				      NULL);
			break;
		case COLD_ACK:
			packet_client(&c->pkts[i], CPORT_ACK, TH_ACK, NULL);
			break;
		}
	}
	return 0;
}

/* The concurrent count that a `conns` bench rule keeps for the client, or -1
 * when the instance has no such rule. */
static long long conns_count(const struct inst *in)
{
	struct sluice_bucket_key k;
	struct sluice_conn_count cc;

	if (!in->has_bench || !(in->bench.flags & SLUICE_RULE_HAS_CONNS))
		return -1;
	bucket_key_for_source(&in->bench, 0, &k);
	if (bpf_map_lookup_elem(in->maps.conns, &k, &cc))
		return 0;
	return (long long)cc.count;
}

/* Runs n packets once each; ns (if not NULL) receives each run's time. */
static int cold_run(const struct cold_case *c, const struct packet *pkts, __u32 n,
		    __u32 verdict, __u32 *ns)
{
	__u32 i, ret, dur;
	int err;

	for (i = 0; i < n; i++) {
		err = test_run(c->in->prog_fd, &pkts[i], 1, &ret, &dur);
		if (err) {
			pr_err("%s: BPF_PROG_TEST_RUN: %s", c->name, strerror(-err));
			return err;
		}
		if (ret != verdict) {
			pr_err("%s: packet %u got %s, expected %s", c->name, i,
			       verdict_name(0, ret), verdict_name(0, verdict));
			return -EIO;
		}
		if (ns)
			ns[i] = dur;
	}
	return 0;
}

/* What n packets of a round must have counted: every one seen, dropped
 * (a drop case) or not, a connection opened by every SYN and by nothing
 * else, none closed but by the RSTs, no state created (but in the warm-up,
 * whose SYN creates a conn-rate rule's bucket for the client). */
static int cold_check(const struct cold_case *c, const __u64 *before, const __u64 *after,
		      __u64 n, __u64 opened, __u64 reset, int warmup)
{
	__u64 drops = c->verdict == XDP_DROP ? n : 0;
	size_t i;

	if (delta_of(before, after, SLUICE_CNT_PACKETS) != n ||
	    drops_of(before, after) != drops ||
	    delta_of(before, after, SLUICE_CNT_FLOW_INSERT) != opened ||
	    delta_of(before, after, SLUICE_CNT_FLOW_RESET) != reset) {
		pr_err("%s: %llu packets counted %llu packets, %llu drops, %llu %s, %llu %s "
		       "(expected %llu, %llu, %llu, %llu)", c->name, (unsigned long long)n,
		       (unsigned long long)delta_of(before, after, SLUICE_CNT_PACKETS),
		       (unsigned long long)drops_of(before, after),
		       (unsigned long long)delta_of(before, after, SLUICE_CNT_FLOW_INSERT),
		       counter_name(SLUICE_CNT_FLOW_INSERT),
		       (unsigned long long)delta_of(before, after, SLUICE_CNT_FLOW_RESET),
		       counter_name(SLUICE_CNT_FLOW_RESET), (unsigned long long)n,
		       (unsigned long long)drops, (unsigned long long)opened,
		       (unsigned long long)reset);
		return -EIO;
	}
	for (i = 0; i < ARRAY_LEN(unchanged); i++) {
		int k = unchanged[i];

		if (k == SLUICE_CNT_FLOW_INSERT || k == SLUICE_CNT_FLOW_RESET ||
		    (warmup && k == SLUICE_CNT_STATE_INSERT))
			continue;
		if (delta_of(before, after, k)) {
			pr_err("%s: the round counted %llu %s (it must not)", c->name,
			       (unsigned long long)delta_of(before, after, k), counter_name(k));
			return -EIO;
		}
	}
	return 0;
}

/* A SYN case: n SYNs from the client ports in pkts, then their RSTs. The
 * SYNs must open n connections (and take n slots of a conns count), the
 * RSTs close them all and give the slots back, leaving the flow table
 * empty for the next round. ns, if not NULL, receives the SYNs' times. */
static int syn_round(const struct cold_case *c, const struct packet *syns,
		     const struct packet *rsts, __u32 n, __u32 *ns, int warmup)
{
	__u64 before[N_WATCHED], after[N_WATCHED];
	struct sluice_flow_key k;
	long long held;
	int err;

	if ((err = read_counters(c->in, before)) ||
	    (err = cold_run(c, syns, n, XDP_PASS, ns)) ||
	    (err = read_counters(c->in, after)) ||
	    (err = cold_check(c, before, after, n, n, 0, warmup)))
		return err;
	held = conns_count(c->in);
	if (held >= 0 && held != (long long)n) {
		pr_err("%s: %u connections hold %lld slots of the conns count", c->name, n, held);
		return -EIO;
	}
	if ((err = read_counters(c->in, before)) ||
	    (err = cold_run(c, rsts, n, XDP_PASS, NULL)) ||
	    (err = read_counters(c->in, after)) ||
	    (err = cold_check(c, before, after, n, 0, n, 0)))
		return err;
	held = conns_count(c->in);
	if (held > 0) {
		pr_err("%s: the conns count holds %lld after every connection closed", c->name,
		       held);
		return -EIO;
	}
	if (!bpf_map_get_next_key(c->in->maps.flows, NULL, &k)) {
		pr_err("%s: connections left in the flow table after the RSTs", c->name);
		return -EIO;
	}
	return 0;
}

/* Before timing: one connection opened and closed (it creates the
 * client's conns count or bucket, which every later SYN finds). */
static int cold_verify(const struct cold_case *c)
{
	struct packet syn, rst;

	if (c->kind != COLD_SYN)
		return 0;
	packet_client(&syn, SYN_PORT_BASE - 1, TH_SYN, NULL);
	packet_client(&rst, SYN_PORT_BASE - 1, TH_RST | TH_ACK, NULL);
	return syn_round(c, &syn, &rst, 1, NULL, 1);
}

static int cold_round(struct cold_case *c)
{
	__u64 before[N_WATCHED], after[N_WATCHED];
	int err;

	if (c->kind == COLD_SYN) {
		err = syn_round(c, c->pkts, c->rsts, COLD_PACKETS, &c->ns[c->n], 0);
	} else if (!c->in->skel) {
		err = cold_run(c, c->pkts, COLD_PACKETS, c->verdict, &c->ns[c->n]);
	} else {
		if ((err = read_counters(c->in, before)) ||
		    (err = cold_run(c, c->pkts, COLD_PACKETS, c->verdict, &c->ns[c->n])) ||
		    (err = read_counters(c->in, after)))
			return err;
		err = cold_check(c, before, after, COLD_PACKETS, 0, 0, 0);
	}
	if (!err)
		c->n += COLD_PACKETS;
	return err;
}

static void cold_free(struct cold_case *c)
{
	free(c->pkts);
	free(c->rsts);
	free(c->ns);
}

/* ------------------------------------------------------------------------ */
/* Output */

struct machine {
	char kernel[128];
	char cpu[128];
	long ncpu;
	char date[64];
	char command[512];
};

static void machine_describe(struct machine *m, int argc, char **argv)
{
	struct utsname u;
	char line[512];
	time_t t = time(NULL);
	FILE *f;
	size_t off = 0;
	int i;

	snprintf(m->kernel, sizeof(m->kernel), "%s", uname(&u) ? "?" : u.release);
	snprintf(m->cpu, sizeof(m->cpu), "?");
	f = fopen("/proc/cpuinfo", "r");
	if (f) {
		while (fgets(line, sizeof(line), f)) {
			char *colon = strchr(line, ':');

			if (strncmp(line, "model name", 10) || !colon)
				continue;
			colon++;
			while (*colon == ' ' || *colon == '\t')
				colon++;
			colon[strcspn(colon, "\n")] = '\0';
			snprintf(m->cpu, sizeof(m->cpu), "%s", colon);
			break;
		}
		fclose(f);
	}
	m->ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	strftime(m->date, sizeof(m->date), "%Y-%m-%d %H:%M:%S UTC", gmtime(&t));
	m->command[0] = '\0';
	for (i = 0; i < argc && off < sizeof(m->command); i++)
		off += (size_t)snprintf(m->command + off, sizeof(m->command) - off, "%s%s",
					i ? " " : "", argv[i]);
}

static const char *short_verdict(int tc, __u32 v)
{
	if (tc)
		return v == TC_ACT_OK ? "ok" : "?";
	return v == XDP_DROP ? "drop" : v == XDP_PASS ? "pass" : "?";
}

/* The XDP table (tc 0) or the TC one: ratios to the table's first row, its
 * floor. */
static void print_repeat_table(const struct bench_case *cases, size_t ncases, int tc,
			       int markdown)
{
	const struct bench_case *floor = NULL;
	size_t i;

	if (markdown) {
		printf("| case | verdict | median ns/pkt | min | max | x floor | ns over floor |\n");
		printf("|---|---|---:|---:|---:|---:|---:|\n");
	} else {
		printf("%-52s %-7s %8s %6s %6s %8s %8s\n", "case", "verdict", "median", "min",
		       "max", "x floor", "+floor");
	}
	for (i = 0; i < ncases; i++) {
		const struct bench_case *c = &cases[i];

		if (c->tc != tc)
			continue;
		if (!floor)
			floor = c;
		printf(markdown ? "| %s | %s | %.1f | %u | %u | %.2f | %.1f |\n"
				: "%-52s %-7s %8.1f %6u %6u %8.2f %8.1f\n",
		       c->name, short_verdict(tc, c->verdict), c->median, c->min, c->max,
		       c->median / floor->median, c->median - floor->median);
	}
}

static void print_tables(const struct machine *m, const struct bench_case *cases, size_t ncases,
			 const struct cold_case *cold, size_t ncold, int rounds, __u32 repeat,
			 int markdown)
{
	double cold_floor = ncold ? cold[0].median : 0;
	size_t i;

	if (markdown) {
		printf("- command: `%s`\n", m->command);
		printf("- machine: Linux %s, %s, %ld CPUs\n", m->kernel, m->cpu, m->ncpu);
		printf("- date: %s\n", m->date);
		printf("- method: BPF_PROG_TEST_RUN, repeat %u per round, median of %d rounds\n\n",
		       repeat, rounds);
	} else {
		printf("sluice-bench: ns per packet, BPF_PROG_TEST_RUN\n");
		printf("  command  %s\n", m->command);
		printf("  machine  Linux %s, %s, %ld CPUs\n", m->kernel, m->cpu, m->ncpu);
		printf("  date     %s\n", m->date);
		printf("  method   repeat %u per round, median of %d rounds (interleaved)\n\n",
		       repeat, rounds);
	}
	print_repeat_table(cases, ncases, 0, markdown);

	if (ncold) {
		if (markdown) {
			printf("\nOne run per packet (repeat 1), %d packets per case per round, %d "
			       "rounds; ns include the test-run timer.\n\n", COLD_PACKETS, rounds);
			printf("| case | verdict | median ns | p90 ns | x floor | ns over floor |\n");
			printf("|---|---|---:|---:|---:|---:|\n");
		} else {
			printf("\nOne run per packet (repeat 1), %d packets x %d rounds\n",
			       COLD_PACKETS, rounds);
			printf("%-52s %-7s %8s %6s %8s %8s\n", "case", "verdict", "median", "p90",
			       "x floor", "+floor");
		}
		for (i = 0; i < ncold; i++)
			printf(markdown ? "| %s | %s | %.1f | %u | %.2f | %.1f |\n"
					: "%-52s %-7s %8.1f %6u %8.2f %8.1f\n",
			       cold[i].name, short_verdict(0, cold[i].verdict), cold[i].median,
			       cold[i].p90, cold[i].median / cold_floor, cold[i].median - cold_floor);
	}

	if (markdown)
		printf("\nTC egress (SCHED_CLS on the Ethernet frame), repeat %u per round, median "
		       "of %d rounds.\n\n", repeat, rounds);
	else
		printf("\nTC egress, repeat %u per round, median of %d rounds\n", repeat, rounds);
	print_repeat_table(cases, ncases, 1, markdown);
}

/* ------------------------------------------------------------------------ */
/* The cases */

enum {
	I_FLOOR, I_NORULES, I_PASS1, I_DROP1, I_PASS64, I_DROP64, I_PASS64X4, I_DROP64X4,
	I_TABLE1, I_TABLE4, I_TABLE6, I_LISTS, I_DENY, I_ALLOW, I_TESTCLOCK,
	I_FLOWS, I_FLOWRULE, I_SYN, I_SYNCLOCK, I_CONNS, I_CONNRATE, N_INST,
};

static int setup_instances(struct inst *insts)
{
	struct tx t;
	int err, i;

	err = inst_open_floor(&insts[I_FLOOR]);
	if (err)
		return err;

#define OPEN(idx, what, entries, clock)                                  \
	do {                                                             \
		err = inst_open(&insts[idx], what, entries, clock);      \
		if (err)                                                 \
			return err;                                      \
		if (tx_begin(&t, &insts[idx]))                           \
			return t.err;                                    \
	} while (0)
#define COMMIT()                                                         \
	do {                                                             \
		if (tx_commit(&t))                                       \
			return t.err;                                    \
	} while (0)

	OPEN(I_NORULES, "no rules", 0, 0);
	COMMIT();
	OPEN(I_PASS1, "1 rule pass", 0, 0);
	tx_cmd(&t, PASS_RULE);
	COMMIT();
	OPEN(I_DROP1, "1 rule drop", 0, 0);
	tx_cmd(&t, DROP_RULE);
	COMMIT();
	OPEN(I_PASS64, "64 rules pass", 0, 0);
	tx_other_rules(&t, 63);
	tx_cmd(&t, PASS_RULE);
	COMMIT();
	OPEN(I_DROP64, "64 rules drop", 0, 0);
	tx_other_rules(&t, 63);
	tx_cmd(&t, DROP_RULE);
	COMMIT();
	OPEN(I_PASS64X4, "64 rules, 4 match, pass", 0, 0);
	tx_other_rules(&t, 60);
	tx_matching_rules(&t, "pps 1g");
	COMMIT();
	OPEN(I_DROP64X4, "64 rules, 4 match, drop", 0, 0);
	tx_other_rules(&t, 60);
	tx_matching_rules(&t, "pps 1 burst 1");
	COMMIT();

	OPEN(I_TABLE1, "table 1", BIG_STATE_ENTRIES, 0);
	tx_cmd(&t, DROP_RULE);
	COMMIT();
	OPEN(I_TABLE4, "table 1e4", BIG_STATE_ENTRIES, 0);
	tx_cmd(&t, DROP_RULE);
	COMMIT();
	OPEN(I_TABLE6, "table 1e6", BIG_STATE_ENTRIES, 0);
	tx_cmd(&t, DROP_RULE);
	COMMIT();
	fprintf(stderr, "sluice-bench: filling state tables (1, 10^4, 10^6 sources)\n");
	if ((err = fill_buckets(&insts[I_TABLE1], 1)) ||
	    (err = fill_buckets(&insts[I_TABLE4], 10000)) ||
	    (err = fill_buckets(&insts[I_TABLE6], 1000000)))
		return err;

	/* 1000 entries on each list, none of which the packet hits: what the
	 * two LPM lookups cost once the tries are not empty. */
	OPEN(I_LISTS, "lists", 0, 0);
	tx_cmd(&t, DROP_RULE);
	for (i = 0; i < 1000; i++) {
		tx_cmd(&t, "deny add 198.19.%d.%d/32", i / 125, (i % 125) * 2 + 1);
		tx_cmd(&t, "allow add 198.19.%d.%d/32", 100 + i / 125, (i % 125) * 2 + 2);
	}
	COMMIT();
	OPEN(I_DENY, "deny hit", 0, 0);
	tx_cmd(&t, DROP_RULE);
	tx_cmd(&t, "deny add " BENCH_SRC4 "/32");
	COMMIT();
	OPEN(I_ALLOW, "allow hit", 0, 0);
	tx_cmd(&t, DROP_RULE);
	tx_cmd(&t, "allow add 198.18.0.0/15");
	COMMIT();
	OPEN(I_TESTCLOCK, "test clock", 0, 1);
	tx_cmd(&t, DROP_RULE);
	COMMIT();

	/* TCP: established connections with the TC program beside XDP, as
	 * `sluice attach` loads them; SYN cases, whose RSTs keep the default
	 * flow table (SLUICE_DEFAULT_FLOW_ENTRIES) far from full. */
	OPEN(I_FLOWS, "tcp, no rules", 0, 0);
	COMMIT();
	OPEN(I_FLOWRULE, "tcp, 1 rule", 0, 0);
	tx_cmd(&t, TCP_RULE);
	COMMIT();
	if ((err = inst_open_tc(&insts[I_FLOWS])) || (err = inst_open_tc(&insts[I_FLOWRULE])) ||
	    (err = flow_establish(&insts[I_FLOWS], CPORT_ACK)) ||
	    (err = flow_establish(&insts[I_FLOWS], CPORT_DATA)) ||
	    (err = flow_establish(&insts[I_FLOWS], CPORT_TC_ACK)) ||
	    (err = flow_establish(&insts[I_FLOWS], CPORT_TC_DATA)) ||
	    (err = flow_establish(&insts[I_FLOWRULE], CPORT_ACK)))
		return err;
	OPEN(I_SYN, "syn, no rules", 0, 0);
	COMMIT();
	OPEN(I_SYNCLOCK, "syn, test clock", 0, 1);
	COMMIT();
	OPEN(I_CONNS, "syn, conns", 0, 0);
	tx_cmd(&t, CONNS_RULE);
	COMMIT();
	OPEN(I_CONNRATE, "syn, conn-rate", 0, 0);
	tx_cmd(&t, CONN_RATE_RULE);
	COMMIT();
#undef OPEN
#undef COMMIT
	return 0;
}

static const char usage[] =
"Usage: sluice-bench [--rounds N] [--repeat N] [--markdown] [--only TEXT]\n"
"\n"
"Measures sluice's XDP and TC egress programs per packet with BPF_PROG_TEST_RUN,\n"
"next to a bare XDP_DROP and a bare TC_ACT_OK (the floors) measured in the same\n"
"run. Needs root.\n"
"\n"
"  --rounds N   rounds per case, the median is reported (default 7)\n"
"  --repeat N   runs per round, averaged by the kernel (default 2000000)\n"
"  --markdown   print the tables in Markdown (docs/benchmarks.md)\n"
"  --only TEXT  time only the cases whose name contains TEXT (and the floors)\n"
"  -h, --help   this text\n";

int main(int argc, char **argv)
{
	struct inst insts[N_INST];
	struct bench_case cases[32];
	struct cold_case cold[12];
	struct machine mach;
	struct in6_addr src6;
	struct in_addr src4;
	size_t ncases = 0, ncold = 0, i;
	__u64 rounds = DEFAULT_ROUNDS, repeat = DEFAULT_REPEAT;
	struct errbuf e = { "" };
	int markdown = 0, err = 0, r, a;
	const char *only = NULL;

	log_init("sluice-bench", LOG_WARN);
	for (a = 1; a < argc; a++) {
		if (!strcmp(argv[a], "--markdown")) {
			markdown = 1;
		} else if (!strcmp(argv[a], "--only") && a + 1 < argc) {
			only = argv[++a];
		} else if (!strcmp(argv[a], "-h") || !strcmp(argv[a], "--help")) {
			fputs(usage, stdout);
			return 0;
		} else if ((!strcmp(argv[a], "--rounds") || !strcmp(argv[a], "--repeat")) &&
			   a + 1 < argc) {
			int is_rounds = !strcmp(argv[a], "--rounds");

			if (parse_u64(argv[a + 1], 1, is_rounds ? MAX_ROUNDS : MAX_REPEAT, 1,
				      is_rounds ? "rounds" : "repeat", is_rounds ? &rounds : &repeat,
				      &e)) {
				pr_err("%s", e.msg);
				return 2;
			}
			a++;
		} else {
			pr_err("unknown or incomplete option '%s'", argv[a]);
			fputs(usage, stderr);
			return 2;
		}
	}
	if (geteuid() != 0) {
		pr_err("must be run as root: loading XDP programs and BPF_PROG_TEST_RUN need "
		       "CAP_BPF and CAP_NET_ADMIN (try: sudo make bench)");
		return 1;
	}
	machine_describe(&mach, argc, argv);

	memset(insts, 0, sizeof(insts));
	memset(cases, 0, sizeof(cases));
	memset(cold, 0, sizeof(cold));
	fprintf(stderr, "sluice-bench: loading %d programs\n", N_INST);
	err = setup_instances(insts);
	if (err)
		goto out;

	inet_pton(AF_INET, BENCH_SRC4, &src4);
	inet_pton(AF_INET6, BENCH_SRC6, &src6);
#define CASE4(label, idx, v, cnt)                                                  \
	do {                                                                       \
		cases[ncases] = (struct bench_case){ .name = label, .in = &insts[idx], \
						     .verdict = v, .counter = cnt };   \
		packet_udp4(&cases[ncases].pkt, src4.s_addr, BENCH_DPORT);          \
		ncases++;                                                          \
	} while (0)
#define CASE6(label, idx, v, cnt)                                                  \
	do {                                                                       \
		cases[ncases] = (struct bench_case){ .name = label, .in = &insts[idx], \
						     .verdict = v, .counter = cnt };   \
		packet_udp6(&cases[ncases].pkt, &src6, BENCH_DPORT);                \
		ncases++;                                                          \
	} while (0)
	CASE4("floor: bare XDP_DROP", I_FLOOR, XDP_DROP, -1);
	CASE4("no rules", I_NORULES, XDP_PASS, -1);
	CASE4("1 rule, pass (pps 1g)", I_PASS1, XDP_PASS, -1);
	CASE4("1 rule, drop (pps 1 burst 1)", I_DROP1, XDP_DROP, SLUICE_CNT_DROP_RATE);
	CASE4("64 rules (63 miss), pass", I_PASS64, XDP_PASS, -1);
	CASE4("64 rules (63 miss), drop", I_DROP64, XDP_DROP, SLUICE_CNT_DROP_RATE);
	CASE4("64 rules (4 match), pass", I_PASS64X4, XDP_PASS, -1);
	CASE4("64 rules (4 match), drop", I_DROP64X4, XDP_DROP, SLUICE_CNT_DROP_RATE);
	CASE4("drop, 1 source in table (2^21 slots)", I_TABLE1, XDP_DROP, SLUICE_CNT_DROP_RATE);
	CASE4("drop, 10^4 sources in table", I_TABLE4, XDP_DROP, SLUICE_CNT_DROP_RATE);
	CASE4("drop, 10^6 sources in table", I_TABLE6, XDP_DROP, SLUICE_CNT_DROP_RATE);
	CASE6("IPv6, 1 rule, pass", I_PASS1, XDP_PASS, -1);
	CASE6("IPv6, 1 rule, drop", I_DROP1, XDP_DROP, SLUICE_CNT_DROP_RATE);
	CASE4("deny list hit", I_DENY, XDP_DROP, SLUICE_CNT_DROP_DENY);
	CASE4("allow list hit (drop rule behind it)", I_ALLOW, XDP_PASS, SLUICE_CNT_ALLOWED);
	CASE4("1 rule, drop, 1000 deny + 1000 allow (miss)", I_LISTS, XDP_DROP,
	      SLUICE_CNT_DROP_RATE);
	CASE4("1 rule, drop, test clock (no clock helper)", I_TESTCLOCK, XDP_DROP,
	      SLUICE_CNT_DROP_RATE);
#define CASE_TCP(label, idx, is_tc, port, data, v)                                  \
	do {                                                                       \
		cases[ncases] = (struct bench_case){ .name = label, .in = &insts[idx], \
						     .tc = is_tc, .cport = port,       \
						     .payload = data, .verdict = v,    \
						     .counter = -1 };                  \
		if (is_tc)                                                         \
			packet_server(&cases[ncases].pkt, port, TH_ACK | (data ? TH_PSH : 0), \
				      data ? RESPONSE_TEXT : NULL);                \
		else                                                               \
			packet_client(&cases[ncases].pkt, port, TH_ACK | (data ? TH_PSH : 0), \
				      data ? REQUEST_TEXT : NULL);                 \
		ncases++;                                                          \
	} while (0)
	CASE_TCP("TCP ACK, established connection, no rules", I_FLOWS, 0, CPORT_ACK, 0,
		 XDP_PASS);
	CASE_TCP("TCP ACK + 64 B data, established, no rules", I_FLOWS, 0, CPORT_DATA, 1,
		 XDP_PASS);
	CASE_TCP("TCP ACK, established, 1 rule pass (tcp pps 1g)", I_FLOWRULE, 0, CPORT_ACK, 0,
		 XDP_PASS);
	cases[ncases] = (struct bench_case){ .name = "TCP ACK, untracked (flow lookup misses)",
					     .in = &insts[I_FLOWS], .verdict = XDP_PASS,
					     .counter = -1 };
	packet_client(&cases[ncases++].pkt, CPORT_UNTRACKED, TH_ACK, NULL);
	/* The TC table: its floor first. */
	cases[ncases] = (struct bench_case){ .name = "floor: bare TC_ACT_OK", .in = &insts[I_FLOOR],
					     .tc = 1, .verdict = TC_ACT_OK, .counter = -1 };
	packet_server(&cases[ncases++].pkt, CPORT_TC_ACK, TH_ACK, NULL);
	CASE_TCP("server ACK, established connection", I_FLOWS, 1, CPORT_TC_ACK, 0, TC_ACT_OK);
	CASE_TCP("server ACK + 64 B data, established connection", I_FLOWS, 1, CPORT_TC_DATA, 1,
		 TC_ACT_OK);
#undef CASE4
#undef CASE6
#undef CASE_TCP

	cold[ncold++] = (struct cold_case){ .name = "floor: bare XDP_DROP",
					    .in = &insts[I_FLOOR], .sources = 1,
					    .verdict = XDP_DROP };
	cold[ncold++] = (struct cold_case){ .name = "drop, 1 source (same every run)",
					    .in = &insts[I_TABLE1], .sources = 1,
					    .verdict = XDP_DROP };
	cold[ncold++] = (struct cold_case){ .name = "drop, random of 10^4 sources",
					    .in = &insts[I_TABLE4], .sources = 10000,
					    .verdict = XDP_DROP };
	cold[ncold++] = (struct cold_case){ .name = "drop, random of 10^6 sources",
					    .in = &insts[I_TABLE6], .sources = 1000000,
					    .verdict = XDP_DROP };
	cold[ncold++] = (struct cold_case){ .name = "TCP ACK, established (same every run)",
					    .in = &insts[I_FLOWS], .kind = COLD_ACK,
					    .verdict = XDP_PASS };
	cold[ncold++] = (struct cold_case){ .name = "SYN opens a connection, no rules",
					    .in = &insts[I_SYN], .kind = COLD_SYN,
					    .verdict = XDP_PASS };
	cold[ncold++] = (struct cold_case){ .name = "SYN opens a connection, no rules, test clock",
					    .in = &insts[I_SYNCLOCK], .kind = COLD_SYN,
					    .verdict = XDP_PASS };
	cold[ncold++] = (struct cold_case){ .name = "SYN opens a connection, conns rule (admitted)",
					    .in = &insts[I_CONNS], .kind = COLD_SYN,
					    .verdict = XDP_PASS };
	cold[ncold++] = (struct cold_case){ .name = "SYN opens a connection, conn-rate rule "
						    "(admitted)",
					    .in = &insts[I_CONNRATE], .kind = COLD_SYN,
					    .verdict = XDP_PASS };
	if (only) {
		size_t kept = 0;

		for (i = 0; i < ncases; i++)
			if (!strncmp(cases[i].name, "floor:", 6) || strstr(cases[i].name, only))
				cases[kept++] = cases[i];
		ncases = kept;
		for (i = kept = 0; i < ncold; i++)
			if (!strncmp(cold[i].name, "floor:", 6) || strstr(cold[i].name, only))
				cold[kept++] = cold[i];
		ncold = kept;
	}
	for (i = 0; i < ncold; i++) {
		err = cold_prepare(&cold[i], (int)rounds);
		if (err) {
			pr_err("out of memory");
			goto out;
		}
		err = cold_verify(&cold[i]);
		if (err)
			goto out;
	}

	for (i = 0; i < ncases; i++) {
		err = case_verify(&cases[i]);
		if (err)
			goto out;
	}

	for (r = 0; r < (int)rounds; r++) {
		if (isatty(STDERR_FILENO))
			fprintf(stderr, "\rsluice-bench: round %d/%d", r + 1, (int)rounds);
		for (i = 0; i < ncases; i++) {
			err = case_measure(&cases[i], r, (__u32)repeat);
			if (err)
				goto out;
		}
		for (i = 0; i < ncold; i++) {
			err = cold_round(&cold[i]);
			if (err)
				goto out;
		}
	}
	if (isatty(STDERR_FILENO))
		fputc('\n', stderr);

	/* The 10^6 table must still hold every source: nothing was evicted. */
	{
		long have = count_buckets(insts[I_TABLE6].maps.buckets);

		if (have != 1000000) {
			pr_err("drop, 10^6 sources: the table holds %ld entries after the run", have);
			err = -EIO;
			goto out;
		}
	}

	for (i = 0; i < ncases; i++)
		cases[i].median = median_u32(cases[i].ns, (size_t)rounds, &cases[i].min,
					     &cases[i].max, NULL);
	for (i = 0; i < ncold; i++)
		cold[i].median = median_u32(cold[i].ns, cold[i].n, NULL, NULL, &cold[i].p90);
	print_tables(&mach, cases, ncases, cold, ncold, (int)rounds, (__u32)repeat, markdown);

out:
	for (i = 0; i < ncold; i++)
		cold_free(&cold[i]);
	for (i = 0; i < N_INST; i++)
		inst_close(&insts[i]);
	return err ? 1 : 0;
}
