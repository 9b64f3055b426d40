// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* lease.c - a gateway's side of a global rule; see lease.h. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "lease.h"
#include "rule.h"

const char *lease_kind_name(enum sluice_fleet_kind k)
{
	switch (k) {
	case SLUICE_FLEET_PPS: return "pps";
	case SLUICE_FLEET_BPS: return "bps";
	case SLUICE_FLEET_CONN_RATE: return "conn_rate";
	case SLUICE_FLEET_CONNS: return "conns";
	case SLUICE_FLEET_KINDS: break;
	}
	return "?";
}

const char *lease_source_name(enum sluice_fleet_source s)
{
	switch (s) {
	case SLUICE_LEASE_NONE: return "starting";
	case SLUICE_LEASE_GRANTED: return "leased";
	case SLUICE_LEASE_SAFE: return "safe-share";
	}
	return "?";
}

static void limits_of(const struct sluice_rule *r, uint64_t *g, uint64_t *b)
{
	g[SLUICE_FLEET_PPS] = r->pps;
	b[SLUICE_FLEET_PPS] = r->burst;
	g[SLUICE_FLEET_BPS] = r->bps;
	b[SLUICE_FLEET_BPS] = r->bburst;
	g[SLUICE_FLEET_CONN_RATE] = r->conn_rate;
	b[SLUICE_FLEET_CONN_RATE] = r->conn_burst;
	g[SLUICE_FLEET_CONNS] = r->conns;
	b[SLUICE_FLEET_CONNS] = 0;
}

void lease_init(struct lease *l, const struct sluice_rule *r, uint32_t slot)
{
	memset(l, 0, sizeof(*l));
	memcpy(l->name, r->name, sizeof(l->name));
	l->slot = slot;
	l->rule_id = r->id;
	l->gateways = 1;
	limits_of(r, l->global, l->gburst);
}

int lease_update_limits(struct lease *l, const struct sluice_rule *r)
{
	uint64_t g[SLUICE_FLEET_KINDS], b[SLUICE_FLEET_KINDS];

	limits_of(r, g, b);
	if (!memcmp(g, l->global, sizeof(g)) && !memcmp(b, l->gburst, sizeof(b)))
		return 0;
	memcpy(l->global, g, sizeof(g));
	memcpy(l->gburst, b, sizeof(b));
	return 1;
}

static uint64_t want_of(double rate)
{
	double w = ceil(rate * LEASE_WANT_HEADROOM);

	return w < 1 ? 1 : w > 9e15 ? (uint64_t)9e15 : (uint64_t)w;
}

void lease_sample(struct lease *l, const struct lease_sample *s, uint64_t now)
{
	double dt;

	l->want[SLUICE_FLEET_CONNS] = l->global[SLUICE_FLEET_CONNS] ?
				      want_of((double)s->conns_open) : 0;
	if (!l->sampled || now <= l->last_ns || s->pkts < l->last_pkts) {
		/* the first sample (or a recreated rule): no rate yet */
		l->sampled = 1;
		l->last_ns = now;
		l->last_pkts = s->pkts;
		l->last_bytes = s->bytes;
		l->last_conns_opened = s->conns_opened;
		return;
	}
	dt = (double)(now - l->last_ns) / 1e9;
	if (l->global[SLUICE_FLEET_PPS])
		l->want[SLUICE_FLEET_PPS] = want_of((double)(s->pkts - l->last_pkts) / dt);
	if (l->global[SLUICE_FLEET_BPS])
		l->want[SLUICE_FLEET_BPS] = want_of((double)(s->bytes - l->last_bytes) * 8 / dt);
	if (l->global[SLUICE_FLEET_CONN_RATE] && s->conns_opened >= l->last_conns_opened)
		l->want[SLUICE_FLEET_CONN_RATE] =
			want_of((double)(s->conns_opened - l->last_conns_opened) / dt);
	l->last_ns = now;
	l->last_pkts = s->pkts;
	l->last_bytes = s->bytes;
	l->last_conns_opened = s->conns_opened;
}

void lease_granted(struct lease *l, const uint64_t *grant, unsigned int gateways,
		   uint64_t lease_ms, uint64_t sent_ns)
{
	memcpy(l->lease, grant, sizeof(l->lease));
	l->gateways = gateways ? gateways : 1;
	/* from the send: never later than the store's own expiry */
	l->expires_ns = sent_ns + lease_ms * 1000000ULL;
	l->renewed_ns = sent_ns;
	l->source = SLUICE_LEASE_GRANTED;
	l->renewals++;
}

void lease_failed(struct lease *l)
{
	l->failures++;
}

void lease_enforce(struct lease *l, uint64_t now, uint64_t *out)
{
	int k;

	if (l->source == SLUICE_LEASE_GRANTED && now >= l->expires_ns)
		l->source = SLUICE_LEASE_SAFE;
	for (k = 0; k < SLUICE_FLEET_KINDS; k++) {
		uint64_t v;

		if (!l->global[k]) {
			out[k] = 0;
			continue;
		}
		if (l->source == SLUICE_LEASE_GRANTED)
			v = l->lease[k];
		else /* the safe share (and the start: gateways is 1 until told) */
			v = l->global[k] / (l->gateways ? l->gateways : 1);
		out[k] = v ? v : 1; /* never zero: a floor of one */
	}
}

static uint64_t burst_share(uint64_t b, uint64_t v, uint64_t g, uint64_t min)
{
	double s = g ? (double)b * (double)v / (double)g : (double)b;
	uint64_t r = (uint64_t)s;

	return r < min ? min : r;
}

void lease_write_rule(const struct lease *l, const uint64_t *e, struct sluice_rule *r)
{
	if (l->global[SLUICE_FLEET_PPS]) {
		r->pps = e[SLUICE_FLEET_PPS];
		r->burst = burst_share(l->gburst[SLUICE_FLEET_PPS], r->pps, l->global[SLUICE_FLEET_PPS], 1);
	}
	if (l->global[SLUICE_FLEET_BPS]) {
		r->bps = e[SLUICE_FLEET_BPS] < 8 ? 8 : e[SLUICE_FLEET_BPS];
		r->bburst = burst_share(l->gburst[SLUICE_FLEET_BPS], r->bps, l->global[SLUICE_FLEET_BPS],
					RULE_MIN_BBURST);
	}
	if (l->global[SLUICE_FLEET_CONN_RATE]) {
		r->conn_rate = e[SLUICE_FLEET_CONN_RATE];
		r->conn_burst = burst_share(l->gburst[SLUICE_FLEET_CONN_RATE], r->conn_rate,
					    l->global[SLUICE_FLEET_CONN_RATE], 1);
	}
	if (l->global[SLUICE_FLEET_CONNS])
		r->conns = e[SLUICE_FLEET_CONNS];
	rule_compile(r);
}

void lease_describe(const struct lease *l, const uint64_t *e, uint32_t store_state,
		    struct sluice_fleet_rule *f)
{
	memset(f, 0, sizeof(*f));
	f->rule_id = l->rule_id;
	f->source = l->source;
	f->store_state = store_state;
	f->gateways = l->gateways;
	memcpy(f->global, l->global, sizeof(f->global));
	memcpy(f->gburst, l->gburst, sizeof(f->gburst));
	memcpy(f->lease, e, sizeof(f->lease));
	memcpy(f->want, l->want, sizeof(f->want));
	f->expires_ns = l->source == SLUICE_LEASE_GRANTED ? l->expires_ns : 0;
	f->renewed_ns = l->renewed_ns;
	f->renewals = l->renewals;
	f->failures = l->failures;
}

void lease_adopt(struct lease *l, const struct sluice_fleet_rule *f)
{
	if (f->rule_id != l->rule_id)
		return;
	l->gateways = f->gateways ? f->gateways : 1;
	if (f->source == SLUICE_LEASE_GRANTED && f->expires_ns) {
		memcpy(l->lease, f->lease, sizeof(l->lease));
		l->expires_ns = f->expires_ns;
		l->renewed_ns = f->renewed_ns;
		l->source = SLUICE_LEASE_GRANTED;
	}
	l->renewals = f->renewals;
	l->failures = f->failures;
}

const char *lease_store_state_name(uint32_t s)
{
	return s == 2 ? "up" : s == 1 ? "connecting" : "down";
}

void lease_fleet_line(const struct sluice_fleet_rule *f, uint64_t now, char *buf, size_t len)
{
	size_t off = 0;
	int k, n;

#define ADD(...) do { n = snprintf(buf + off, len - off, __VA_ARGS__); \
		      if (n > 0) off += (size_t)n < len - off ? (size_t)n : len - off - 1; } while (0)
	buf[0] = '\0';
	for (k = 0; k < SLUICE_FLEET_KINDS; k++)
		if (f->global[k])
			ADD("%s %llu lease %llu, ", lease_kind_name((enum sluice_fleet_kind)k),
			    (unsigned long long)f->global[k], (unsigned long long)f->lease[k]);
	ADD("%s", lease_source_name((enum sluice_fleet_source)f->source));
	if (f->source == SLUICE_LEASE_GRANTED && f->expires_ns > now)
		ADD(", expires in %.1fs", (double)(f->expires_ns - now) / 1e9);
	ADD(", %u gateway(s), store %s", f->gateways, lease_store_state_name(f->store_state));
#undef ADD
}
