// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#define TEST_GROUP "bpf" /* loads BPF programs or creates maps: needs root (harness.h) */
/*
 * Backend signals per service port (bpf/signals.h, TC egress): connect and
 * response latency into the right histogram bucket for a known delta on the
 * test clock, HTTP/1.x status classes, server RSTs, ICMP(v6) unreachables,
 * SYN timeouts; and sluice_hist_bucket() itself.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "fixture.h"
#include "harness.h"

#define US 1000ULL
#define MS 1000000ULL
#define SEC 1000000000ULL
#define SA (PKT_SYN | PKT_ACK)
#define PA (PKT_PSH | PKT_ACK)

static int open_tc(struct fx *f)
{
	struct fx_opts o = { .tc = 1 };

	return fx_open_opts(f, &o);
}

static struct pkt_spec conn(int family, __u16 sport, __u16 dport)
{
	struct pkt_spec s = { .family = family, .proto = PKT_TCP, .sport = sport, .dport = dport };

	return s;
}

/* Exactly one observation in histogram h, of us microseconds. */
static void check_one(const struct sluice_signals *s, int h, __u64 us, const char *name)
{
	__u32 b = sluice_hist_bucket(us), i;
	int other = 0;

	CHECK_EQ(s->hist[h].count, 1, name);
	CHECK_EQ(s->hist[h].sum_us, us, name);
	CHECK(s->hist[h].bucket[b] == 1, "%s: bucket %u (of %llu us) holds %llu", name, b,
	      (unsigned long long)us, (unsigned long long)s->hist[h].bucket[b]);
	for (i = 0; i < SLUICE_HIST_BUCKETS; i++)
		other += i != b && s->hist[h].bucket[i];
	CHECK(other == 0, "%s: %d other buckets hold something", name, other);
}

static const __u64 deltas_us[] = { 0, 1, 7, 8, 9, 15, 16, 100, 1000, 1234, 50000, 999999,
				   3000000, 67108863, 100000000 };

/* Client SYN at t, server SYN-ACK at t + delta. */
TEST(signals_connect_latency_bucket)
{
	struct fx f;
	size_t i;
	int fam;

	if (open_tc(&f))
		return;
	for (fam = 4; fam <= 6; fam += 2) {
		for (i = 0; i < NELEM(deltas_us); i++) {
			__u16 port = (__u16)(8000 + i + (fam == 6 ? 100 : 0));
			struct pkt_spec c = conn(fam, 50000, port);
			struct sluice_signals *s;
			char name[64];

			snprintf(name, sizeof(name), "v%d connect %llu us", fam,
				 (unsigned long long)deltas_us[i]);
			fx_at(&f, SEC);
			CHECK_EQ(fx_client(&f, &c, PKT_SYN, NULL), XDP_PASS_V, name);
			fx_at(&f, SEC + deltas_us[i] * US + 999); /* sub-us rounds down */
			CHECK_EQ(fx_server(&f, &c, SA, NULL), TC_ACT_OK_V, name);
			s = fx_signals(&f, port);
			if (!CHECK(s != NULL, "%s: no signals entry", name))
				continue;
			check_one(s, SLUICE_HIST_CONNECT, deltas_us[i], name);
			CHECK_EQ(s->counter[SLUICE_SIG_CONNECTIONS], 1, name);
			CHECK_EQ(s->hist[SLUICE_HIST_RESPONSE].count, 0, name);
			free(s);
		}
	}
	fx_close(&f);
}

/* Request: the first client payload after the last response; response:
 * the first server payload after it. More segments of either change
 * nothing; the next request measures again. */
TEST(signals_response_latency)
{
	static const struct {
		int family;
		__u64 delta_us;
	} cases[] = { { 4, 50000 }, { 4, 3 }, { 6, 50000 }, { 6, 1500000 } };
	struct fx f;
	size_t i;

	if (open_tc(&f))
		return;
	for (i = 0; i < NELEM(cases); i++) {
		__u16 port = (__u16)(9000 + i);
		struct pkt_spec c = conn(cases[i].family, 50000, port);
		struct sluice_signals *s;
		__u64 t = 10 * SEC, d = cases[i].delta_us * US;
		char name[64];

		snprintf(name, sizeof(name), "v%d response %llu us", cases[i].family,
			 (unsigned long long)cases[i].delta_us);
		fx_at(&f, t);
		if (fx_handshake(&f, &c))
			continue;
		/* Server data before any request is not a response. */
		fx_server(&f, &c, PA, "220 welcome\r\n");
		fx_at(&f, t + SEC);
		fx_client(&f, &c, PA, "GET / HTTP/1.1\r\n");
		fx_at(&f, t + SEC + d / 2);
		fx_client(&f, &c, PA, "Host: x\r\n\r\n"); /* same request */
		fx_at(&f, t + SEC + d);
		fx_server(&f, &c, PA, "HTTP/1.1 200 OK\r\n");
		fx_at(&f, t + SEC + 2 * d);
		fx_server(&f, &c, PA, "more body");
		s = fx_signals(&f, port);
		if (!CHECK(s != NULL, "%s: no signals entry", name))
			continue;
		check_one(s, SLUICE_HIST_RESPONSE, cases[i].delta_us, name);
		CHECK_EQ(s->counter[SLUICE_SIG_REQUESTS], 1, name);
		CHECK_EQ(s->counter[SLUICE_SIG_RESPONSES], 1, name);
		free(s);
		/* A second request on the same connection. */
		fx_at(&f, t + 5 * SEC);
		fx_client(&f, &c, PA, "GET /2 HTTP/1.1\r\n\r\n");
		fx_at(&f, t + 5 * SEC + 7 * MS);
		fx_server(&f, &c, PA, "HTTP/1.1 404 Not Found\r\n");
		s = fx_signals(&f, port);
		if (!CHECK(s != NULL, "%s: no signals entry", name))
			continue;
		CHECK_EQ(s->counter[SLUICE_SIG_REQUESTS], 2, name);
		CHECK_EQ(s->counter[SLUICE_SIG_RESPONSES], 2, name);
		CHECK_EQ(s->hist[SLUICE_HIST_RESPONSE].count, 2, name);
		CHECK_EQ(s->hist[SLUICE_HIST_RESPONSE].bucket[sluice_hist_bucket(7000)],
			 1 + (sluice_hist_bucket(7000) == sluice_hist_bucket(cases[i].delta_us)),
			 name);
		free(s);
	}
	fx_close(&f);
}

/* The status class of the first response segment. */
TEST(signals_http_status_classes)
{
	static const struct {
		const char *resp;
		int sig; /* -1: not counted */
	} cases[] = {
		{ "HTTP/1.1 100 Continue\r\n", SLUICE_SIG_HTTP_1XX },
		{ "HTTP/1.1 200 OK\r\n", SLUICE_SIG_HTTP_2XX },
		{ "HTTP/1.0 204 No Content\r\n", SLUICE_SIG_HTTP_2XX },
		{ "HTTP/1.1 301 Moved\r\n", SLUICE_SIG_HTTP_3XX },
		{ "HTTP/1.1 404 Not Found\r\n", SLUICE_SIG_HTTP_4XX },
		{ "HTTP/1.1 429 Too Many Requests\r\n", SLUICE_SIG_HTTP_4XX },
		{ "HTTP/1.1 503 Service Unavailable\r\n", SLUICE_SIG_HTTP_5XX },
		{ "HTTP/1.0 500 x", SLUICE_SIG_HTTP_5XX },
		{ "HTTP/1.1 600 Bogus\r\n", -1 },
		{ "HTTP/1.1 099 Bogus\r\n", -1 },
		{ "HTTP/2.0 200 OK\r\n", -1 },
		{ "HTTP/1.1  200 OK\r\n", -1 },
		{ "http/1.1 200 OK\r\n", -1 },
		{ "SSH-2.0-OpenSSH_9.6\r\n", -1 },
		{ "HTTP/1.1 5", SLUICE_SIG_HTTP_5XX }, /* exactly the 10 bytes read */
		{ "HTTP/1.1 ", -1 }, /* the digit would be in the next segment */
		{ "\x16\x03\x03\x00\x2a\x02\x00\x00\x26\x03\x03", -1 }, /* TLS */
	};
	struct fx f;
	size_t i;
	int fam;

	if (open_tc(&f))
		return;
	for (fam = 4; fam <= 6; fam += 2) {
		for (i = 0; i < NELEM(cases); i++) {
			__u16 port = (__u16)(10000 + i + (fam == 6 ? 100 : 0));
			struct pkt_spec c = conn(fam, 50000, port);
			struct sluice_signals *s;
			int j, bad = 0;

			if (fx_handshake(&f, &c))
				continue;
			fx_client(&f, &c, PA, "GET / HTTP/1.1\r\n\r\n");
			fx_server(&f, &c, PA, cases[i].resp);
			/* Later segments of the same response are not read. */
			fx_server(&f, &c, PA, "HTTP/1.1 500 in the body\r\n");
			s = fx_signals(&f, port);
			if (!CHECK(s != NULL, "v%d '%s': no signals entry", fam, cases[i].resp))
				continue;
			for (j = SLUICE_SIG_HTTP_1XX; j <= SLUICE_SIG_HTTP_5XX; j++)
				bad += s->counter[j] != (__u64)(j == cases[i].sig);
			CHECK(bad == 0, "v%d '%s': 1xx..5xx %llu %llu %llu %llu %llu", fam,
			      cases[i].resp, (unsigned long long)s->counter[SLUICE_SIG_HTTP_1XX],
			      (unsigned long long)s->counter[SLUICE_SIG_HTTP_2XX],
			      (unsigned long long)s->counter[SLUICE_SIG_HTTP_3XX],
			      (unsigned long long)s->counter[SLUICE_SIG_HTTP_4XX],
			      (unsigned long long)s->counter[SLUICE_SIG_HTTP_5XX]);
			free(s);
		}
	}
	fx_close(&f);
}

/* Server RSTs and ICMP(v6) unreachables are counted under the service's
 * port; other ICMP and other ports are not. */
TEST(signals_server_rst_and_icmp_unreachable)
{
	struct fx f;
	int fam;

	if (open_tc(&f))
		return;
	for (fam = 4; fam <= 6; fam += 2) {
		__u16 port = fam == 4 ? 11000 : 11600, other = (__u16)(port + 1);
		struct pkt_spec c = conn(fam, 50000, port), c2 = conn(fam, 50001, port);
		struct pkt_spec u = { .family = fam, .proto = PKT_UDP, .sport = 5353, .dport = port };
		int icmp = fam == 4 ? PKT_ICMP : PKT_ICMPV6;
		/* From the server host back to the client, quoting its packet. */
		struct pkt_spec unreach = { .family = fam, .src = pkt_dst(&c), .dst = pkt_src(&c),
					    .proto = (__u8)icmp, .quote = &c };
		struct pkt_spec unreach_udp = unreach, echo_reply = unreach;
		char name[32];

		unreach_udp.quote = &u;
		echo_reply.quote = NULL;
		echo_reply.icmp_type = fam == 4 ? 0 : 129;
		snprintf(name, sizeof(name), "v%d", fam);

		if (fx_handshake(&f, &c))
			continue;
		CHECK_EQ(fx_server(&f, &c, PKT_RST | PKT_ACK, NULL), TC_ACT_OK_V, name);
		CHECK_EQ(fx_signal(&f, port, SLUICE_SIG_SERVER_RST), 1, name);
		/* A port closed: the server's RST answers the SYN. */
		CHECK_EQ(fx_client(&f, &c2, PKT_SYN, NULL), XDP_PASS_V, name);
		CHECK_EQ(fx_server(&f, &c2, PKT_RST | PKT_ACK, NULL), TC_ACT_OK_V, name);
		CHECK_EQ(fx_signal(&f, port, SLUICE_SIG_SERVER_RST), 2, name);

		CHECK_EQ(fx_send_tc(&f, &unreach), TC_ACT_OK_V, name);
		CHECK_EQ(fx_signal(&f, port, SLUICE_SIG_ICMP_UNREACH), 1, name);
		CHECK_EQ(fx_send_tc(&f, &unreach_udp), TC_ACT_OK_V, name);
		CHECK_EQ(fx_signal(&f, port, SLUICE_SIG_ICMP_UNREACH), 2, name);
		CHECK_EQ(fx_send_tc(&f, &echo_reply), TC_ACT_OK_V, name);
		CHECK_EQ(fx_signal(&f, port, SLUICE_SIG_ICMP_UNREACH), 2, "an echo reply");
		CHECK_EQ(fx_signal(&f, other, SLUICE_SIG_ICMP_UNREACH), 0, "another port");
		CHECK_EQ(fx_signal(&f, other, SLUICE_SIG_SERVER_RST), 0, "another port");
		/* An unreachable arriving from the client side is not the
		 * server's: XDP passes it and counts nothing. */
		{
			struct pkt_spec in = unreach;

			in.src = pkt_src(&c);
			in.dst = pkt_dst(&c);
			CHECK_EQ(fx_send(&f, &in), XDP_PASS_V, name);
			CHECK_EQ(fx_signal(&f, port, SLUICE_SIG_ICMP_UNREACH), 2, name);
		}
	}
	fx_close(&f);
}

/* A SYN the server never answered, swept after syn_timeout, counts under
 * its port (once the port has an entry: a port nobody ever answered on
 * gets none, so a scan of closed ports creates nothing). */
TEST(signals_syn_timeout)
{
	struct fx f;
	int fam;

	if (open_tc(&f))
		return;
	if (fx_timeouts(&f, 2 * SEC, 0, 0))
		goto out;
	for (fam = 4; fam <= 6; fam += 2) {
		__u16 port = fam == 4 ? 12000 : 12600;
		struct pkt_spec live = conn(fam, 1, port), lost = conn(fam, 2, port),
				answered = conn(fam, 3, port), nobody = conn(fam, 4, 12999);
		struct sluice_signals *s;
		char name[32];

		snprintf(name, sizeof(name), "v%d", fam);
		fx_at(&f, 0);
		if (fx_handshake(&f, &live))
			continue;
		fx_client(&f, &lost, PKT_SYN, NULL);
		fx_client(&f, &answered, PKT_SYN, NULL);
		fx_server(&f, &answered, SA, NULL); /* SYN_RECV: answered, not a SYN timeout */
		fx_client(&f, &nobody, PKT_SYN, NULL);
		fx_at(&f, 2 * SEC);
		fx_sweep(&f);
		CHECK_EQ(fx_signal(&f, port, SLUICE_SIG_SYN_TIMEOUT), 0, "at the timeout");
		fx_at(&f, 2 * SEC + 1);
		fx_sweep(&f);
		CHECK_EQ(fx_signal(&f, port, SLUICE_SIG_SYN_TIMEOUT), 1, name);
		s = fx_signals(&f, 12999);
		CHECK(s == NULL, "%s: a port nobody answered has an entry", name);
		free(s);
		CHECK_EQ(fx_signal(&f, port, SLUICE_SIG_CONNECTIONS), 2, name);
		fx_clear_flows(&f);
	}
out:
	fx_close(&f);
}

/* --- sluice_hist_bucket() -------------------------------------------------- */

/* Monotone; every bucket below the last spans [lo, hi] with
 * hi - lo + 1 <= max(1, lo / 8), so any value in it is within 1/8 of lo;
 * the buckets are contiguous; everything from 2^26 us lands in the last. */
TEST(signals_hist_bucket_bounds)
{
	__u64 lo = 0, us, limit = 1ULL << 26;
	__u32 b = 0, prev = 0;
	int bad_mono = 0, bad_width = 0, bad_start = 0;

	CHECK_EQ(sluice_hist_bucket(0), 0, "bucket of 0");
	for (us = 1; us <= limit; us++) {
		b = sluice_hist_bucket(us);
		if (b < prev || b > prev + 1) {
			bad_mono++;
		} else if (b == prev + 1) {
			/* bucket prev was [lo, us - 1] */
			__u64 width = us - lo;

			if (width > (lo / 8 > 1 ? lo / 8 : 1) && prev < SLUICE_HIST_BUCKETS - 1)
				bad_width++;
			if (prev + 1 < (1u << SLUICE_HIST_SUB_BITS) && us != prev + 1)
				bad_start++;
			lo = us;
		}
		prev = b;
	}
	CHECK(bad_mono == 0, "%d values broke monotony or skipped a bucket", bad_mono);
	CHECK(bad_width == 0, "%d buckets wider than 1/8 of their lower bound", bad_width);
	CHECK(bad_start == 0, "%d small values without a bucket each", bad_start);
	CHECK_EQ(sluice_hist_bucket(limit - 1), SLUICE_HIST_BUCKETS - 1, "2^26 - 1 us");
	CHECK_EQ(lo, limit - (limit >> (SLUICE_HIST_SUB_BITS + 1)), "start of the last bucket");
	CHECK_EQ(sluice_hist_bucket(limit), SLUICE_HIST_BUCKETS - 1, "2^26 us");
	CHECK_EQ(sluice_hist_bucket(~0ULL), SLUICE_HIST_BUCKETS - 1, "2^64 - 1 us");
	CHECK_EQ(sluice_hist_bucket(1ULL << 40), SLUICE_HIST_BUCKETS - 1, "2^40 us");
	for (us = 0; us < 8; us++)
		CHECK_EQ(sluice_hist_bucket(us), us, "values below 8 have a bucket each");
	CHECK_EQ(sluice_hist_bucket(8), 8, "8 us");
	CHECK_EQ(sluice_hist_bucket(9), 9, "9 us");
	CHECK_EQ(sluice_hist_bucket(16), 16, "16 us");
	CHECK_EQ(sluice_hist_bucket(17), 16, "17 us shares 16's bucket");
	CHECK_EQ(sluice_hist_bucket(18), 17, "18 us");
}
