// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#define TEST_GROUP "bpf" /* loads BPF programs or creates maps: needs root (harness.h) */
/*
 * The TCP flow state machine (bpf/flow.h): the client's segments through
 * XDP, the server's through TC egress, one row per conversation. Each row
 * checks every XDP verdict, the flow it leaves behind (state and FIN bits,
 * or none), every global counter, and the server-RST signal of its port.
 * Then the sweeper on the test clock: each timeout, not a nanosecond early.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "fixture.h"
#include "harness.h"
#include "stats.h"

#define MS 1000000ULL
#define SEC 1000000000ULL

#define GONE 0 /* want_state: no flow left */
#define SA (PKT_SYN | PKT_ACK)
#define FA (PKT_FIN | PKT_ACK)
#define RA (PKT_RST | PKT_ACK)

/* One segment: from the client (XDP) or the server (TC). */
struct step {
	char from; /* 'c' or 's'; 0 ends the list */
	__u16 flags;
	const char *data;
};
#define C(fl) { 'c', (fl), NULL }
#define S(fl) { 's', (fl), NULL }
#define MAX_STEPS 8

/* Counter deltas. */
#define OPENED(n) [SLUICE_CNT_FLOW_INSERT] = (n)
#define CLOSED(n) [SLUICE_CNT_FLOW_CLOSED] = (n)
#define RESET(n) [SLUICE_CNT_FLOW_RESET] = (n)

struct flow_case {
	const char *name;
	struct step steps[MAX_STEPS];
	__u32 want_state; /* enum sluice_flow_state, or GONE */
	__u32 want_fin;
	__u64 cnt[SLUICE_CNT_MAX]; /* PACKETS implied: one per client segment */
	__u64 server_rst;          /* SLUICE_SIG_SERVER_RST of the port */
};

/* Steps that bring a connection to a state. */
#define TO_SYN_SENT C(PKT_SYN)
#define TO_SYN_RECV C(PKT_SYN), S(SA)
#define TO_ESTABLISHED C(PKT_SYN), S(SA), C(PKT_ACK)

static const struct flow_case transitions[] = {
	{ "client SYN: SYN_SENT", { TO_SYN_SENT }, SLUICE_FLOW_SYN_SENT, 0, { OPENED(1) }, 0 },
	{ "server SYN-ACK: SYN_RECV", { TO_SYN_RECV }, SLUICE_FLOW_SYN_RECV, 0, { OPENED(1) }, 0 },
	{ "client ACK: ESTABLISHED", { TO_ESTABLISHED }, SLUICE_FLOW_ESTABLISHED, 0,
	  { OPENED(1) }, 0 },
	{ "data both ways stays ESTABLISHED",
	  { TO_ESTABLISHED, { 'c', PKT_ACK | PKT_PSH, "GET /" }, { 's', PKT_ACK, "HTTP/1.1 200" },
	    C(PKT_ACK) },
	  SLUICE_FLOW_ESTABLISHED, 0, { OPENED(1) }, 0 },
	{ "client ACK before any SYN-ACK stays SYN_SENT", { C(PKT_SYN), C(PKT_ACK) },
	  SLUICE_FLOW_SYN_SENT, 0, { OPENED(1) }, 0 },

	/* FIN from one side, then the other. */
	{ "client FIN: CLOSING", { TO_ESTABLISHED, C(FA) }, SLUICE_FLOW_CLOSING,
	  SLUICE_FIN_CLIENT, { OPENED(1) }, 0 },
	{ "server FIN: CLOSING", { TO_ESTABLISHED, S(FA) }, SLUICE_FLOW_CLOSING,
	  SLUICE_FIN_SERVER, { OPENED(1) }, 0 },
	{ "client FIN then server FIN: closed", { TO_ESTABLISHED, C(FA), S(FA), C(PKT_ACK) },
	  GONE, 0, { OPENED(1), CLOSED(1) }, 0 },
	{ "server FIN first, then client FIN: closed", { TO_ESTABLISHED, S(FA), C(FA) }, GONE,
	  0, { OPENED(1), CLOSED(1) }, 0 },
	/* Both FINs sent before either side saw the other's; the ACKs of
	 * each other's FIN arrive after the flow is gone and create nothing. */
	{ "simultaneous close: FINs cross, late ACKs", { TO_ESTABLISHED, C(FA), S(FA), S(PKT_ACK),
	  C(PKT_ACK) }, GONE, 0, { OPENED(1), CLOSED(1) }, 0 },
	{ "a repeated client FIN stays CLOSING", { TO_ESTABLISHED, C(FA), C(FA) },
	  SLUICE_FLOW_CLOSING, SLUICE_FIN_CLIENT, { OPENED(1) }, 0 },
	{ "FIN in SYN_SENT: CLOSING", { TO_SYN_SENT, C(PKT_FIN) }, SLUICE_FLOW_CLOSING,
	  SLUICE_FIN_CLIENT, { OPENED(1) }, 0 },
	{ "FIN in SYN_RECV: CLOSING", { TO_SYN_RECV, S(FA) }, SLUICE_FLOW_CLOSING,
	  SLUICE_FIN_SERVER, { OPENED(1) }, 0 },
	{ "FIN both ways before the handshake completed: closed",
	  { TO_SYN_RECV, C(FA), S(FA) }, GONE, 0, { OPENED(1), CLOSED(1) }, 0 },
	{ "FIN with data: request counted, CLOSING",
	  { TO_ESTABLISHED, { 'c', FA | PKT_PSH, "bye" } }, SLUICE_FLOW_CLOSING,
	  SLUICE_FIN_CLIENT, { OPENED(1) }, 0 },

	/* RST from the client in every state. */
	{ "client RST in SYN_SENT", { TO_SYN_SENT, C(PKT_RST) }, GONE, 0,
	  { OPENED(1), RESET(1) }, 0 },
	{ "client RST in SYN_RECV", { TO_SYN_RECV, C(PKT_RST) }, GONE, 0,
	  { OPENED(1), RESET(1) }, 0 },
	{ "client RST in ESTABLISHED", { TO_ESTABLISHED, C(RA) }, GONE, 0,
	  { OPENED(1), RESET(1) }, 0 },
	{ "client RST in CLOSING (client FIN)", { TO_ESTABLISHED, C(FA), C(PKT_RST) }, GONE, 0,
	  { OPENED(1), RESET(1) }, 0 },
	{ "client RST in CLOSING (server FIN)", { TO_ESTABLISHED, S(FA), C(RA) }, GONE, 0,
	  { OPENED(1), RESET(1) }, 0 },
	/* RST from the server in every state. */
	{ "server RST in SYN_SENT (port closed)", { TO_SYN_SENT, S(RA) }, GONE, 0,
	  { OPENED(1), RESET(1) }, 1 },
	{ "server RST in SYN_RECV", { TO_SYN_RECV, S(PKT_RST) }, GONE, 0,
	  { OPENED(1), RESET(1) }, 1 },
	{ "server RST in ESTABLISHED", { TO_ESTABLISHED, S(RA) }, GONE, 0,
	  { OPENED(1), RESET(1) }, 1 },
	{ "server RST in CLOSING (client FIN)", { TO_ESTABLISHED, C(FA), S(PKT_RST) }, GONE, 0,
	  { OPENED(1), RESET(1) }, 1 },
	{ "server RST in CLOSING (server FIN)", { TO_ESTABLISHED, S(FA), S(RA) }, GONE, 0,
	  { OPENED(1), RESET(1) }, 1 },
	/* After a RST, the other side's RST finds nothing: one reset, and a
	 * server RST of a connection no longer tracked is not a signal. */
	{ "RSTs from both sides end it once", { TO_ESTABLISHED, C(PKT_RST), S(PKT_RST) }, GONE,
	  0, { OPENED(1), RESET(1) }, 0 },
	{ "a client RST after the server's finds nothing", { TO_ESTABLISHED, S(PKT_RST),
	  C(PKT_RST) }, GONE, 0, { OPENED(1), RESET(1) }, 1 },

	/* Retransmitted SYNs: the flow exists, so no second one. */
	{ "retransmitted SYN in SYN_SENT", { C(PKT_SYN), C(PKT_SYN), C(PKT_SYN) },
	  SLUICE_FLOW_SYN_SENT, 0, { OPENED(1) }, 0 },
	{ "retransmitted SYN in SYN_RECV", { TO_SYN_RECV, C(PKT_SYN) }, SLUICE_FLOW_SYN_RECV, 0,
	  { OPENED(1) }, 0 },
	{ "a SYN on an established tuple", { TO_ESTABLISHED, C(PKT_SYN) },
	  SLUICE_FLOW_ESTABLISHED, 0, { OPENED(1) }, 0 },
	{ "retransmitted SYN-ACK", { TO_SYN_RECV, S(SA), C(PKT_ACK) }, SLUICE_FLOW_ESTABLISHED,
	  0, { OPENED(1) }, 0 },
	/* The same tuple after a close is a new connection. */
	{ "SYN after close opens a new flow", { TO_ESTABLISHED, C(FA), S(FA), C(PKT_SYN) },
	  SLUICE_FLOW_SYN_SENT, 0, { OPENED(2), CLOSED(1) }, 0 },
	{ "SYN after reset opens a new flow", { TO_ESTABLISHED, C(PKT_RST), C(PKT_SYN) },
	  SLUICE_FLOW_SYN_SENT, 0, { OPENED(2), RESET(1) }, 0 },

	/* Packets of connections sluice never saw open: they pass and create
	 * nothing, in either direction. */
	{ "unknown: client ACK", { C(PKT_ACK) }, GONE, 0, {}, 0 },
	{ "unknown: client data", { { 'c', PKT_ACK | PKT_PSH, "GET /" } }, GONE, 0, {}, 0 },
	{ "unknown: client FIN", { C(FA) }, GONE, 0, {}, 0 },
	{ "unknown: client RST", { C(PKT_RST) }, GONE, 0, {}, 0 },
	{ "unknown: client SYN-ACK", { C(SA) }, GONE, 0, {}, 0 },
	{ "unknown: client segment without flags", { C(PKT_NO_FLAGS) }, GONE, 0, {}, 0 },
	{ "unknown: client SYN+RST", { C(PKT_SYN | PKT_RST) }, GONE, 0, {}, 0 },
	{ "unknown: server SYN-ACK", { S(SA) }, GONE, 0, {}, 0 },
	{ "unknown: server data", { { 's', PKT_ACK, "HTTP/1.1 200 OK" } }, GONE, 0, {}, 0 },
	{ "unknown: server FIN", { S(FA) }, GONE, 0, {}, 0 },
	{ "unknown: server RST", { S(PKT_RST) }, GONE, 0, {}, 0 },
	{ "unknown: a server's SYN (it connects out)", { S(PKT_SYN) }, GONE, 0, {}, 0 },
};

static void run_flow_case(struct fx *f, const struct flow_case *c, const struct pkt_spec *cl,
			  const char *fam)
{
	__u64 c0[SLUICE_CNT_MAX], c1[SLUICE_CNT_MAX], want[SLUICE_CNT_MAX], rst0;
	struct sluice_flow fl;
	int i, n = 0, err;

	fx_counters(f, c0);
	rst0 = fx_signal(f, cl->dport, SLUICE_SIG_SERVER_RST);
	for (i = 0; i < MAX_STEPS && c->steps[i].from; i++) {
		const struct step *st = &c->steps[i];

		if (st->from == 'c') {
			int v = fx_client(f, cl, st->flags, st->data);

			CHECK(v == XDP_PASS_V, "%s %s: step %d (client 0x%x): verdict %d", fam,
			      c->name, i + 1, st->flags, v);
			n++;
		} else {
			int v = fx_server(f, cl, st->flags, st->data);

			CHECK(v == TC_ACT_OK_V, "%s %s: step %d (server 0x%x): TC returned %d",
			      fam, c->name, i + 1, st->flags, v);
		}
	}
	err = fx_flow(f, cl, &fl);
	if (c->want_state == GONE) {
		CHECK(err == -ENOENT, "%s %s: a flow is left (state %u)", fam, c->name,
		      err ? 0 : fl.state);
	} else if (CHECK(err == 0, "%s %s: no flow, want state %u", fam, c->name,
			 c->want_state)) {
		CHECK(fl.state == c->want_state && fl.fin == c->want_fin,
		      "%s %s: state %u fin %u, want %u fin %u", fam, c->name, fl.state, fl.fin,
		      c->want_state, c->want_fin);
	}
	CHECK_EQ(fx_nflows(f), c->want_state == GONE ? 0 : 1, c->name);
	fx_counters(f, c1);
	memcpy(want, c->cnt, sizeof(want));
	want[SLUICE_CNT_PACKETS] = (__u64)n;
	for (i = 0; i < SLUICE_CNT_MAX; i++)
		CHECK(c1[i] - c0[i] == want[i], "%s %s: counter %s +%llu, want +%llu", fam,
		      c->name, stats_counter_names[i], (unsigned long long)(c1[i] - c0[i]),
		      (unsigned long long)want[i]);
	CHECK_EQ(fx_signal(f, cl->dport, SLUICE_SIG_SERVER_RST) - rst0, c->server_rst, c->name);
}

static int open_tc(struct fx *f)
{
	struct fx_opts o = { .tc = 1 };

	return fx_open_opts(f, &o);
}

TEST(flow_state_machine)
{
	static const struct pkt_spec clients[] = {
		{ .family = 4, .proto = PKT_TCP, .sport = 40000, .dport = 80 },
		{ .family = 6, .proto = PKT_TCP, .sport = 40000, .dport = 443 },
	};
	struct fx f;
	size_t i, j;

	if (open_tc(&f))
		return;
	for (j = 0; j < NELEM(clients); j++) {
		for (i = 0; i < NELEM(transitions); i++) {
			if (fx_clear_flows(&f))
				goto out;
			fx_at(&f, i * SEC);
			run_flow_case(&f, &transitions[i], &clients[j], j ? "v6" : "v4");
		}
	}
out:
	fx_close(&f);
}

/* Only the first SYN-ACK of a connection measures its connect latency. */
TEST(flow_syn_ack_retransmission_measures_once)
{
	struct pkt_spec c = { .family = 4, .proto = PKT_TCP, .sport = 40001, .dport = 8080 };
	struct sluice_signals *s;
	struct fx f;

	if (open_tc(&f))
		return;
	fx_at(&f, 0);
	CHECK_EQ(fx_client(&f, &c, PKT_SYN, NULL), XDP_PASS_V, "SYN");
	fx_at(&f, 2 * MS);
	CHECK_EQ(fx_server(&f, &c, SA, NULL), TC_ACT_OK_V, "SYN-ACK");
	fx_at(&f, 1002 * MS);
	CHECK_EQ(fx_client(&f, &c, PKT_SYN, NULL), XDP_PASS_V, "retransmitted SYN");
	CHECK_EQ(fx_server(&f, &c, SA, NULL), TC_ACT_OK_V, "retransmitted SYN-ACK");
	CHECK_EQ(fx_client(&f, &c, PKT_ACK, NULL), XDP_PASS_V, "ACK");
	CHECK_EQ(fx_server(&f, &c, SA, NULL), TC_ACT_OK_V, "SYN-ACK after the ACK");
	s = fx_signals(&f, 8080);
	if (CHECK(s != NULL, "no signals for port 8080")) {
		CHECK_EQ(s->counter[SLUICE_SIG_CONNECTIONS], 1, "connections");
		CHECK_EQ(s->hist[SLUICE_HIST_CONNECT].count, 1, "connect latencies");
		CHECK_EQ(s->hist[SLUICE_HIST_CONNECT].sum_us, 2000, "connect latency sum, us");
		CHECK_EQ(s->hist[SLUICE_HIST_CONNECT].bucket[sluice_hist_bucket(2000)], 1,
			 "the 2 ms bucket");
	}
	free(s);
	CHECK_EQ(fx_counter(&f, SLUICE_CNT_FLOW_INSERT), 1, "flows opened");
	fx_close(&f);
}

/* --- the sweeper -------------------------------------------------------- */

#define SYN_TO (3 * SEC)
#define FIN_TO (10 * SEC)
#define IDLE_TO (60 * SEC)

struct sweep_case {
	const char *name;
	struct step steps[MAX_STEPS]; /* at time 0 */
	__u64 touch_at;               /* then, if set, a client segment at this time */
	__u16 touch;                  /* its flags */
	__u64 alive_until;            /* a sweep here keeps the flow */
	int expiry;                   /* counter a sweep 1 ns later moves */
	__u64 syn_timeout_sig;        /* SLUICE_SIG_SYN_TIMEOUT it adds */
};

static const struct sweep_case sweep_cases[] = {
	{ "SYN_SENT after syn_timeout", { TO_SYN_SENT }, 0, 0, SYN_TO,
	  SLUICE_CNT_FLOW_EXPIRED_HALF_OPEN, 1 },
	{ "SYN_RECV after syn_timeout", { TO_SYN_RECV }, 0, 0, SYN_TO,
	  SLUICE_CNT_FLOW_EXPIRED_HALF_OPEN, 0 },
	/* Half-open expiry counts from the first SYN: retransmissions and
	 * stray ACKs do not hold a slot longer. */
	{ "SYN_SENT with a retransmitted SYN", { TO_SYN_SENT }, 2 * SEC, PKT_SYN, SYN_TO,
	  SLUICE_CNT_FLOW_EXPIRED_HALF_OPEN, 1 },
	{ "SYN_RECV with a retransmitted SYN", { TO_SYN_RECV }, 2 * SEC, PKT_SYN, SYN_TO,
	  SLUICE_CNT_FLOW_EXPIRED_HALF_OPEN, 0 },
	{ "CLOSING (client FIN) after fin_timeout", { TO_ESTABLISHED, C(FA) }, 0, 0, FIN_TO,
	  SLUICE_CNT_FLOW_EXPIRED_IDLE, 0 },
	{ "CLOSING (server FIN) after fin_timeout", { TO_ESTABLISHED, S(FA) }, 0, 0, FIN_TO,
	  SLUICE_CNT_FLOW_EXPIRED_IDLE, 0 },
	{ "CLOSING: client activity postpones", { TO_ESTABLISHED, S(FA) }, 7 * SEC, PKT_ACK,
	  7 * SEC + FIN_TO,
	  SLUICE_CNT_FLOW_EXPIRED_IDLE, 0 },
	{ "ESTABLISHED after idle_timeout (not syn or fin timeout)", { TO_ESTABLISHED }, 0, 0,
	  IDLE_TO,
	  SLUICE_CNT_FLOW_EXPIRED_IDLE, 0 },
	{ "ESTABLISHED: client activity postpones", { TO_ESTABLISHED }, 45 * SEC, PKT_ACK,
	  45 * SEC + IDLE_TO,
	  SLUICE_CNT_FLOW_EXPIRED_IDLE, 0 },
};

/* Each row on its own tuple, all in one table, with one flow on a
 * neighbouring tuple that is never swept (it keeps sending). */
TEST(flow_sweeper_timeouts)
{
	struct pkt_spec c = { .family = 4, .proto = PKT_TCP, .sport = 41000, .dport = 80 };
	struct fx f;
	size_t i;

	if (open_tc(&f))
		return;
	if (fx_timeouts(&f, SYN_TO, FIN_TO, IDLE_TO))
		goto out;
	/* Port 80 gets a signals entry, so a SYN timeout has a place to count. */
	fx_at(&f, 0);
	c.sport = 1;
	if (fx_handshake(&f, &c) || fx_client(&f, &c, PKT_RST, NULL) != XDP_PASS_V)
		goto out;
	for (i = 0; i < NELEM(sweep_cases); i++) {
		const struct sweep_case *sc = &sweep_cases[i];
		__u64 c0[SLUICE_CNT_MAX], c1[SLUICE_CNT_MAX], sig0;
		struct sluice_flow fl;
		int j;

		c.sport = (__u16)(41000 + i);
		c.family = i % 2 ? 6 : 4;
		if (fx_clear_flows(&f))
			break;
		fx_at(&f, 0);
		for (j = 0; j < MAX_STEPS && sc->steps[j].from; j++) {
			if (sc->steps[j].from == 'c')
				fx_client(&f, &c, sc->steps[j].flags, sc->steps[j].data);
			else
				fx_server(&f, &c, sc->steps[j].flags, sc->steps[j].data);
		}
		if (sc->touch_at) {
			fx_at(&f, sc->touch_at);
			CHECK_EQ(fx_client(&f, &c, sc->touch, NULL), XDP_PASS_V, sc->name);
		}
		if (!CHECK(fx_flow(&f, &c, &fl) == 0, "%s: no flow to sweep", sc->name))
			continue;
		fx_counters(&f, c0);
		sig0 = fx_signal(&f, 80, SLUICE_SIG_SYN_TIMEOUT);
		fx_at(&f, sc->alive_until);
		if (fx_sweep(&f))
			break;
		CHECK(fx_flow(&f, &c, &fl) == 0, "%s: swept at its timeout, not after it",
		      sc->name);
		fx_at(&f, sc->alive_until + 1);
		if (fx_sweep(&f))
			break;
		CHECK(fx_flow(&f, &c, &fl) == -ENOENT, "%s: alive 1 ns after its timeout",
		      sc->name);
		fx_counters(&f, c1);
		for (j = 0; j < SLUICE_CNT_MAX; j++) {
			__u64 w = j == sc->expiry ? 1 : j == SLUICE_CNT_SWEEPS ? 2 : 0;

			CHECK(c1[j] - c0[j] == w, "%s: counter %s +%llu, want +%llu", sc->name,
			      stats_counter_names[j], (unsigned long long)(c1[j] - c0[j]),
			      (unsigned long long)w);
		}
		CHECK_EQ(fx_signal(&f, 80, SLUICE_SIG_SYN_TIMEOUT) - sig0, sc->syn_timeout_sig,
			 sc->name);
	}
out:
	fx_close(&f);
}

/* Unset timeouts (0) are the defaults, never "expire at once". */
TEST(flow_sweeper_default_timeouts)
{
	struct pkt_spec c = { .family = 4, .proto = PKT_TCP, .sport = 42000, .dport = 80 };
	struct sluice_flow fl;
	struct fx f;

	if (fx_open(&f, 0))
		return;
	if (fx_timeouts(&f, 0, 0, 0))
		goto out;
	CHECK_EQ(fx_client(&f, &c, PKT_SYN, NULL), XDP_PASS_V, "SYN");
	fx_at(&f, SLUICE_DEFAULT_SYN_TIMEOUT_S * SEC);
	if (fx_sweep(&f))
		goto out;
	CHECK(fx_flow(&f, &c, &fl) == 0, "SYN_SENT swept at the default syn timeout");
	fx_at(&f, SLUICE_DEFAULT_SYN_TIMEOUT_S * SEC + 1);
	if (fx_sweep(&f))
		goto out;
	CHECK(fx_flow(&f, &c, &fl) == -ENOENT, "SYN_SENT kept past the default syn timeout");
	CHECK_EQ(fx_counter(&f, SLUICE_CNT_FLOW_EXPIRED_HALF_OPEN), 1, "half-open expiries");
out:
	fx_close(&f);
}

/* XDP attached with --no-tc sees only half of every connection: it tracks
 * nothing, and a SYN passes without opening a flow. */
TEST(flow_no_tc_tracks_nothing)
{
	struct pkt_spec c = { .family = 4, .proto = PKT_TCP, .sport = 43000, .dport = 80 };
	struct fx_opts o = { .no_tc = 1 };
	struct fx f;

	if (fx_open_opts(&f, &o))
		return;
	CHECK_EQ(fx_client(&f, &c, PKT_SYN, NULL), XDP_PASS_V, "SYN");
	CHECK_EQ(fx_client(&f, &c, PKT_ACK, NULL), XDP_PASS_V, "ACK");
	CHECK_EQ(fx_nflows(&f), 0, "flows");
	CHECK_EQ(fx_counter(&f, SLUICE_CNT_FLOW_INSERT), 0, "flows opened");
	fx_close(&f);
}
