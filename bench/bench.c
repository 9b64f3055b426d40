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
#include <sys/utsname.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf.h>
#include "check.h"
#include "fixture.h"
#include "log.h"
#include "parse.h"
#include "pkt.h"
#include "sluice.h"
#include "stats.h"
#include "util.h"

#define DEFAULT_ROUNDS 7
#define DEFAULT_REPEAT 2000000
#define MAX_ROUNDS 99
#define MAX_REPEAT 100000000

/* The state table of the table-size cases: 2^21 slots, so 10^6 sources fit
 * without the LRU evicting any of them. The sources are the fixture's
 * numbered ones (fx_source): 198.18.0.0/15, then IPv6 /64s. */
#define BIG_STATE_ENTRIES (1u << 21)

/* Random-source runs: packets per case per round, each run once. */
#define COLD_PACKETS 2048

#define BENCH_DPORT 5000
#define BENCH_SRC4 "198.18.0.1" /* fx_source(0) */
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
/* The start of what each side's payload carries; the TC program reads the
 * status class of the first response segment after a request. */
#define REQUEST_TEXT "GET / HTTP/1.1\r\nHost: bench\r\n"
#define RESPONSE_TEXT "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n"

/* tests/lib reports a failed check here (check.h): printed, and counted for
 * the few fx_* calls that return no error of their own. */
static int checks_failed;

int check_report(int cond, const char *file, int line, const char *expr, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	if (cond)
		return 1;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	pr_err("%s:%d: %s (%s)", file, line, msg, expr);
	checks_failed++;
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Packets, built by tests/lib/pkt.c */

struct packet {
	unsigned char data[128];
	__u32 len;
};

#define PAYLOAD_LEN 22 /* an IPv4 UDP frame of 64 bytes */

/* Every bench frame has the IPv4 header checksum 0, zero bytes of UDP
 * payload, TCP sequence number 1 and TCP payload padded with 'x', as it
 * always had: the programs check none of it. */
static void packet_build(struct packet *p, const struct pkt_spec *s)
{
	memset(p, 0, sizeof(*p));
	p->len = (__u32)pkt_build(s, p->data, sizeof(p->data));
	if (!p->len) {
		pr_err("a bench frame does not build (%s > %s)", pkt_src(s), pkt_dst(s));
		abort();
	}
}

static void packet_udp(struct packet *p, int family, const char *src)
{
	struct pkt_spec s = {
		.family = family, .src = src, .dst = family == 6 ? BENCH_DST6 : BENCH_DST4,
		.proto = PKT_UDP, .sport = 40000, .dport = BENCH_DPORT, .payload = PAYLOAD_LEN,
		.fill = PKT_FILL(0), .no_ip_csum = 1,
	};

	packet_build(p, &s);
}

/* The connection of client port cport, as its client sends it. */
static struct pkt_spec tcp_client(__u16 cport)
{
	struct pkt_spec s = {
		.family = 4, .src = BENCH_SRC4, .dst = BENCH_DST4, .proto = PKT_TCP,
		.sport = cport, .dport = BENCH_DPORT, .seq = 1, .fill = PKT_FILL('x'),
		.no_ip_csum = 1,
	};

	return s;
}

/* A segment with the PKT_* flags and, if text is not NULL, TCP_PAYLOAD_LEN
 * bytes of payload that start with it: the client's (XDP sees them) or the
 * server's (TC sees them). */
static void packet_tcp(struct packet *p, int server, __u16 cport, __u16 flags, const char *text)
{
	struct pkt_spec c = tcp_client(cport), s = server ? pkt_reply(&c, flags) : c;

	s.tcp_flags = flags;
	s.data = text;
	s.payload = text ? TCP_PAYLOAD_LEN : 0;
	packet_build(p, &s);
}

static void packet_client(struct packet *p, __u16 cport, __u16 flags, const char *text)
{
	packet_tcp(p, 0, cport, flags, text);
}

static void packet_server(struct packet *p, __u16 cport, __u16 flags, const char *text)
{
	packet_tcp(p, 1, cport, flags, text);
}

/* A UDP packet from source number i of a filled state table (0 is
 * BENCH_SRC4, the measured one). */
static void packet_for_source(struct packet *p, __u32 i)
{
	char src[64];

	packet_udp(p, i < FX_V4_SOURCES ? 4 : 6, fx_source(i, src, sizeof(src)));
}

/* ------------------------------------------------------------------------ */
/* Programs under test, opened by tests/lib/fixture.c */

struct inst {
	const char *what;         /* for error messages */
	struct fx fx;             /* fx.skel NULL for the floor; fx.tc if loaded */
	struct sluice_rule bench; /* the rule named "bench", if any */
	int has_bench;
};

static int inst_open_floor(struct inst *in)
{
	struct fx_opts o = { .floor = 1 };
	int err;

	memset(in, 0, sizeof(*in));
	in->what = "floor";
	err = fx_open_opts(&in->fx, &o);
	if (err)
		pr_err("load build/floor.bpf.o: %s", strerror(-err));
	return err;
}

/* As `sluice attach` loads it (the kernel's clock unless test_clock, the
 * production flow table, the state-insert limiter's defaults), with the
 * TC egress program on the same maps if tc. */
static int inst_open(struct inst *in, const char *what, __u32 state_entries, int test_clock,
		     int tc)
{
	struct fx_opts o = { .state_entries = state_entries,
			     .flow_entries = SLUICE_DEFAULT_FLOW_ENTRIES, .tc = tc,
			     .real_clock = !test_clock, .attach_config = 1 };
	int err;

	memset(in, 0, sizeof(*in));
	in->what = what;
	err = fx_open_opts(&in->fx, &o);
	if (err)
		pr_err("%s: load sluice: %s", what, strerror(-err));
	return err;
}

static void inst_close(struct inst *in)
{
	fx_close(&in->fx);
}

/* Ends a policy transaction (fixture.h, fx_tx_*) on in, keeping the rule
 * named "bench". */
static int inst_commit(struct inst *in, struct fx_tx *t)
{
	if (!t->err && !fx_tx_rule(t, "bench", &in->bench))
		in->has_bench = 1;
	if (fx_tx_commit(t))
		pr_err("%s: '%s': %s", in->what, t->line, t->msg);
	return t->err;
}

/* 63 rules that the bench packet (UDP from 198.18.0.1 to port 5000) does not
 * match, a third on other ports, a third on other source prefixes (IPv4 and
 * IPv6, so the rule-source trie is not empty) and a third on another
 * protocol: each leaves some classifier dimension matching. */
static void tx_other_rules(struct fx_tx *t, int n)
{
	int i;

	for (i = 0; i < n; i++) {
		switch (i % 3) {
		case 0:
			fx_tx_cmd(t, "rule add name o%d dport %d proto udp pps 1000", i, 6000 + i);
			break;
		case 1:
			if (i % 2)
				fx_tx_cmd(t, "rule add name o%d src 198.19.%d.0/24 dport 5000 pps "
					  "1000", i, i);
			else
				fx_tx_cmd(t, "rule add name o%d src 2001:db8:%x::/48 dport 5000 pps "
					  "1000", i, i + 1);
			break;
		default:
			fx_tx_cmd(t, "rule add name o%d dport 5000 proto tcp pps 1000", i);
			break;
		}
	}
}

/* Four rules that all match the bench packet, each in its own way. */
static void tx_matching_rules(struct fx_tx *t, const char *limit)
{
	fx_tx_cmd(t, "rule add name bench dport 5000 proto udp %s", limit);
	fx_tx_cmd(t, "rule add name m1 src 198.18.0.0/15 %s", limit);
	fx_tx_cmd(t, "rule add name m2 proto udp %s", limit);
	fx_tx_cmd(t, "rule add name m3 dport 4000-6000 %s", limit);
}

/* Sources 0..n-1 under the bench rule, all far over its limit (their next
 * packet is due an hour from now), as a flood that has been going on would
 * leave them. */
static int fill_buckets(struct inst *in, __u32 n)
{
	__u64 now = monotonic_ns();
	struct sluice_bucket v = {
		.pkt_tat = now + 3600ULL * 1000000000ULL,
		.byte_tat = now + 3600ULL * 1000000000ULL,
		.created_ns = now, .last_seen_ns = now, .strike_window_ns = now,
	};
	int err = fx_fill_buckets(&in->fx, &in->bench, n, &v);

	if (err)
		pr_err("%s: fill the state table: %s", in->what, strerror(-err));
	return err;
}

/* ------------------------------------------------------------------------ */
/* Running */

static int test_run(int prog_fd, const struct packet *pkt, __u32 repeat, __u32 *retval,
		    __u32 *duration)
{
	return fx_test_run(prog_fd, pkt->data, pkt->len, repeat, retval, duration);
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

static const char *counter_name(int c)
{
	return c >= 0 && c < SLUICE_CNT_MAX && stats_counter_names[c] ? stats_counter_names[c]
								       : "?";
}

/* Every global counter, indexed by enum sluice_counter. */
static int read_counters(struct inst *in, __u64 *out)
{
	int err = fx_counters(&in->fx, out);

	if (err)
		pr_err("%s: read counters: %s", in->what, strerror(-err));
	return err;
}

static __u64 delta_of(const __u64 *before, const __u64 *after, int counter)
{
	return after[counter] - before[counter];
}

static __u64 drops_of(const __u64 *before, const __u64 *after)
{
	__u64 n = 0;
	size_t i;

	for (i = 0; i < NELEM(drop_counters); i++)
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
	return c->tc ? c->in->fx.tc_fd : c->in->fx.prog_fd;
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
		for (i = 0; i < NELEM(drop_counters); i++) {
			if (delta_of(before, after, drop_counters[i])) {
				pr_err("%s: a passing case counted %llu %s", c->name,
				       (unsigned long long)delta_of(before, after, drop_counters[i]),
				       counter_name(drop_counters[i]));
				return -EIO;
			}
		}
	}
	for (i = 0; i < NELEM(unchanged); i++) {
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
	struct pkt_spec c = tcp_client(cport);
	struct sluice_flow f;

	if (fx_handshake(&in->fx, &c)) {
		pr_err("%s: handshake of client port %u: a packet got the wrong verdict", in->what,
		       cport);
		return -EIO;
	}
	if (fx_flow(&in->fx, &c, &f) || f.state != SLUICE_FLOW_ESTABLISHED) {
		pr_err("%s: after the handshake of client port %u the connection is %s", in->what,
		       cport, errno == ENOENT ? "not tracked" : "not established");
		return -EIO;
	}
	return 0;
}

/* The bench service's signals (zero before the first handshake). */
static int read_signals(struct inst *in, struct sluice_signals *s)
{
	int failed = checks_failed;
	struct sluice_signals *got = fx_signals(&in->fx, BENCH_DPORT);

	if (checks_failed != failed) {
		pr_err("%s: read signals", in->what);
		return -EIO;
	}
	memset(s, 0, sizeof(*s));
	if (got)
		*s = *got;
	free(got);
	return 0;
}

/* Before a round on an established connection: both last-seen times at
 * zero, so that the round's first packet must write its side's (the proof
 * that the program found the connection), and for the server's data a
 * request outstanding, which the round's first segment answers. */
static int flow_prepare(const struct bench_case *c)
{
	struct pkt_spec cs = tcp_client(c->cport);
	struct sluice_flow_key k = fx_flow_key(&cs);
	struct sluice_flow f;
	int err = fx_flow(&c->in->fx, &cs, &f);

	if (err) {
		pr_err("%s: the connection is not tracked: %s", c->name, strerror(-err));
		return -EIO;
	}
	f.client_seen_ns = 0;
	f.server_seen_ns = 0;
	f.request_ns = c->tc && c->payload ? monotonic_ns() : 0;
	if (bpf_map_update_elem(c->in->fx.m.flows, &k, &f, BPF_EXIST)) {
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
	struct pkt_spec cs = tcp_client(c->cport);
	struct sluice_flow f;

	if (fx_flow(&c->in->fx, &cs, &f)) {
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
	__u64 before[SLUICE_CNT_MAX], after[SLUICE_CNT_MAX];
	struct sluice_signals sig_before, sig_after;
	__u32 ret, dur;
	int err;

	if (c->cport && ((err = flow_prepare(c)) || (err = read_signals(c->in, &sig_before))))
		return err;
	if (c->in->fx.skel && (err = read_counters(c->in, before)))
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
	if (c->in->fx.skel) {
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
			packet_client(&c->pkts[i], (__u16)(SYN_PORT_BASE + i), PKT_SYN, NULL);
			packet_client(&c->rsts[i], (__u16)(SYN_PORT_BASE + i), PKT_RST | PKT_ACK,
				      NULL);
			break;
		case COLD_ACK:
			packet_client(&c->pkts[i], CPORT_ACK, PKT_ACK, NULL);
			break;
		}
	}
	return 0;
}

/* The concurrent count that a `conns` bench rule keeps for the client, or -1
 * when the instance has no such rule. */
static long long conns_count(struct inst *in)
{
	struct sluice_bucket_key k;
	struct sluice_conn_count cc;

	if (!in->has_bench || !(in->bench.flags & SLUICE_RULE_HAS_CONNS))
		return -1;
	k = fx_source_bkey(&in->bench, 0);
	if (fx_conn_count(&in->fx, &k, &cc))
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
		err = test_run(c->in->fx.prog_fd, &pkts[i], 1, &ret, &dur);
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
	for (i = 0; i < NELEM(unchanged); i++) {
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
	__u64 before[SLUICE_CNT_MAX], after[SLUICE_CNT_MAX];
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
	if (fx_nflows(&c->in->fx)) {
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
	packet_client(&syn, SYN_PORT_BASE - 1, PKT_SYN, NULL);
	packet_client(&rst, SYN_PORT_BASE - 1, PKT_RST | PKT_ACK, NULL);
	return syn_round(c, &syn, &rst, 1, NULL, 1);
}

static int cold_round(struct cold_case *c)
{
	__u64 before[SLUICE_CNT_MAX], after[SLUICE_CNT_MAX];
	int err;

	if (c->kind == COLD_SYN) {
		err = syn_round(c, c->pkts, c->rsts, COLD_PACKETS, &c->ns[c->n], 0);
	} else if (!c->in->fx.skel) {
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
	struct inst *in;
	struct fx_tx t;
	int err, i;

	err = inst_open_floor(&insts[I_FLOOR]);
	if (err)
		return err;

#define OPEN_TC(idx, what, entries, clock, tc)                           \
	do {                                                             \
		err = inst_open(&insts[idx], what, entries, clock, tc);  \
		if (err)                                                 \
			return err;                                      \
		if (fx_tx_begin(&t, &insts[idx].fx))                     \
			return t.err;                                    \
		in = &insts[idx];                                        \
	} while (0)
#define OPEN(idx, what, entries, clock) OPEN_TC(idx, what, entries, clock, 0)
#define COMMIT()                                                         \
	do {                                                             \
		if (inst_commit(in, &t))                                 \
			return t.err;                                    \
	} while (0)

	OPEN(I_NORULES, "no rules", 0, 0);
	COMMIT();
	OPEN(I_PASS1, "1 rule pass", 0, 0);
	fx_tx_cmd(&t, PASS_RULE);
	COMMIT();
	OPEN(I_DROP1, "1 rule drop", 0, 0);
	fx_tx_cmd(&t, DROP_RULE);
	COMMIT();
	OPEN(I_PASS64, "64 rules pass", 0, 0);
	tx_other_rules(&t, 63);
	fx_tx_cmd(&t, PASS_RULE);
	COMMIT();
	OPEN(I_DROP64, "64 rules drop", 0, 0);
	tx_other_rules(&t, 63);
	fx_tx_cmd(&t, DROP_RULE);
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
	fx_tx_cmd(&t, DROP_RULE);
	COMMIT();
	OPEN(I_TABLE4, "table 1e4", BIG_STATE_ENTRIES, 0);
	fx_tx_cmd(&t, DROP_RULE);
	COMMIT();
	OPEN(I_TABLE6, "table 1e6", BIG_STATE_ENTRIES, 0);
	fx_tx_cmd(&t, DROP_RULE);
	COMMIT();
	fprintf(stderr, "sluice-bench: filling state tables (1, 10^4, 10^6 sources)\n");
	if ((err = fill_buckets(&insts[I_TABLE1], 1)) ||
	    (err = fill_buckets(&insts[I_TABLE4], 10000)) ||
	    (err = fill_buckets(&insts[I_TABLE6], 1000000)))
		return err;

	/* 1000 entries on each list, none of which the packet hits: what the
	 * two LPM lookups cost once the tries are not empty. */
	OPEN(I_LISTS, "lists", 0, 0);
	fx_tx_cmd(&t, DROP_RULE);
	for (i = 0; i < 1000; i++) {
		fx_tx_cmd(&t, "deny add 198.19.%d.%d/32", i / 125, (i % 125) * 2 + 1);
		fx_tx_cmd(&t, "allow add 198.19.%d.%d/32", 100 + i / 125, (i % 125) * 2 + 2);
	}
	COMMIT();
	OPEN(I_DENY, "deny hit", 0, 0);
	fx_tx_cmd(&t, DROP_RULE);
	fx_tx_cmd(&t, "deny add " BENCH_SRC4 "/32");
	COMMIT();
	OPEN(I_ALLOW, "allow hit", 0, 0);
	fx_tx_cmd(&t, DROP_RULE);
	fx_tx_cmd(&t, "allow add 198.18.0.0/15");
	COMMIT();
	OPEN(I_TESTCLOCK, "test clock", 0, 1);
	fx_tx_cmd(&t, DROP_RULE);
	COMMIT();

	/* TCP: established connections with the TC program beside XDP, as
	 * `sluice attach` loads them; SYN cases, whose RSTs keep the default
	 * flow table (SLUICE_DEFAULT_FLOW_ENTRIES) far from full. */
	OPEN_TC(I_FLOWS, "tcp, no rules", 0, 0, 1);
	COMMIT();
	OPEN_TC(I_FLOWRULE, "tcp, 1 rule", 0, 0, 1);
	fx_tx_cmd(&t, TCP_RULE);
	COMMIT();
	if ((err = flow_establish(&insts[I_FLOWS], CPORT_ACK)) ||
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
	fx_tx_cmd(&t, CONNS_RULE);
	COMMIT();
	OPEN(I_CONNRATE, "syn, conn-rate", 0, 0);
	fx_tx_cmd(&t, CONN_RATE_RULE);
	COMMIT();
#undef OPEN_TC
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

#define CASE4(label, idx, v, cnt)                                                  \
	do {                                                                       \
		cases[ncases] = (struct bench_case){ .name = label, .in = &insts[idx], \
						     .verdict = v, .counter = cnt };   \
		packet_udp(&cases[ncases].pkt, 4, BENCH_SRC4);                      \
		ncases++;                                                          \
	} while (0)
#define CASE6(label, idx, v, cnt)                                                  \
	do {                                                                       \
		cases[ncases] = (struct bench_case){ .name = label, .in = &insts[idx], \
						     .verdict = v, .counter = cnt };   \
		packet_udp(&cases[ncases].pkt, 6, BENCH_SRC6);                      \
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
			packet_server(&cases[ncases].pkt, port, PKT_ACK | (data ? PKT_PSH : 0), \
				      data ? RESPONSE_TEXT : NULL);                \
		else                                                               \
			packet_client(&cases[ncases].pkt, port, PKT_ACK | (data ? PKT_PSH : 0), \
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
	packet_client(&cases[ncases++].pkt, CPORT_UNTRACKED, PKT_ACK, NULL);
	/* The TC table: its floor first. */
	cases[ncases] = (struct bench_case){ .name = "floor: bare TC_ACT_OK", .in = &insts[I_FLOOR],
					     .tc = 1, .verdict = TC_ACT_OK, .counter = -1 };
	packet_server(&cases[ncases++].pkt, CPORT_TC_ACK, PKT_ACK, NULL);
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
		long have = fx_count_buckets(&insts[I_TABLE6].fx);

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
