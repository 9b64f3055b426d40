// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "parse.h"
#include "prefix.h"
#include "rate.h"
#include "rule.h"

const char *rule_proto_name(__u8 proto)
{
	switch (proto) {
	case SLUICE_PROTO_TCP: return "tcp";
	case SLUICE_PROTO_UDP: return "udp";
	case SLUICE_PROTO_ICMP: return "icmp";
	case SLUICE_PROTO_ANY: return "any";
	default: return "other";
	}
}

static int parse_name(const char *s, char *out, struct errbuf *e)
{
	size_t n = strlen(s), i;
	int digits_only = 1;

	if (!n || n >= SLUICE_NAME_LEN)
		return errf(e, -EINVAL, "bad name '%s': 1 to %d characters", s, SLUICE_NAME_LEN - 1);
	for (i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_' || c == '.'))
			return errf(e, -EINVAL, "bad name '%s': use letters, digits, '-', '_', '.'", s);
		if (c < '0' || c > '9')
			digits_only = 0;
	}
	if (digits_only)
		return errf(e, -EINVAL, "bad name '%s': a name cannot be all digits (it would read as an id)", s);
	memcpy(out, s, n + 1);
	return 0;
}

static int parse_ports(const char *s, struct sluice_rule *r, struct errbuf *e)
{
	char buf[32], *dash;
	__u64 lo, hi;
	int err;

	if (strlen(s) >= sizeof(buf))
		return errf(e, -EINVAL, "bad dport '%s': expected PORT or LO-HI", s);
	strcpy(buf, s);
	dash = strchr(buf, '-');
	if (dash)
		*dash = '\0';
	err = parse_u64(buf, 1, 65535, 0, "dport", &lo, e);
	hi = lo;
	if (!err && dash)
		err = parse_u64(dash + 1, 1, 65535, 0, "dport", &hi, e);
	if (err) /* name the whole argument, not the half that failed */
		return errf(e, err, "bad dport '%s': expected PORT or LO-HI, ports 1-65535", s);
	if (dash) {
		if (hi < lo)
			return errf(e, -EINVAL, "bad dport '%s': range ends before it starts", s);
	}
	r->dport_lo = (__u16)lo;
	r->dport_hi = (__u16)hi;
	return 0;
}

static int parse_proto(const char *s, __u8 *out, struct errbuf *e)
{
	if (!strcmp(s, "tcp"))
		*out = SLUICE_PROTO_TCP;
	else if (!strcmp(s, "udp"))
		*out = SLUICE_PROTO_UDP;
	else if (!strcmp(s, "icmp"))
		*out = SLUICE_PROTO_ICMP;
	else if (!strcmp(s, "any"))
		*out = SLUICE_PROTO_ANY;
	else
		return errf(e, -EINVAL, "bad proto '%s': expected tcp, udp, icmp or any", s);
	return 0;
}

enum { K_NAME, K_SRC, K_DPORT, K_PROTO, K_PPS, K_BURST, K_BPS, K_BBURST, K_KEY, K_MASK4,
       K_MASK6, K_ACTION, K_BAN, K_CONN_RATE, K_CONN_BURST, K_CONNS, K_COUNT };
static const char *const keywords[K_COUNT] = {
	"name", "src", "dport", "proto", "pps", "burst", "bps", "bburst", "key", "mask4",
	"mask6", "action", "ban", "conn-rate", "conn-burst", "conns",
};

void rule_compile(struct sluice_rule *r)
{
	__u64 strikes;

	if (r->pps) {
		r->flags |= SLUICE_RULE_HAS_PPS;
		r->pkt_interval_fp = rate_interval_fp(r->pps);
		r->pkt_tolerance_ns = rate_tolerance_ns(r->pkt_interval_fp, r->burst);
	}
	if (r->conn_rate) {
		r->flags |= SLUICE_RULE_HAS_CONN_RATE;
		r->conn_interval_fp = rate_interval_fp(r->conn_rate);
		r->conn_tolerance_ns = rate_tolerance_ns(r->conn_interval_fp, r->conn_burst);
	}
	if (r->conns)
		r->flags |= SLUICE_RULE_HAS_CONNS;
	if (r->bps) {
		r->flags |= SLUICE_RULE_HAS_BPS;
		r->byte_interval_fp = rate_byte_interval_fp(r->bps);
		r->byte_tolerance_ns = rate_tolerance_ns(r->byte_interval_fp, r->bburst);
	}
	prefix_mask_words(r->mask4, &r->key_mask4, 1);
	prefix_mask_words(r->mask6, r->key_mask6, 4);
	/* "Keeps exceeding": a burst's worth of drops within one second (the
	 * packet burst, else the connection burst, else the conns limit). */
	strikes = r->pps ? r->burst : r->conn_rate ? r->conn_burst : r->conns ? r->conns : 1;
	r->ban_strikes = (__u32)(strikes > 0xFFFFFFFFu ? 0xFFFFFFFFu : strikes);
}

int rule_parse(int argc, char **argv, struct sluice_rule *r, struct errbuf *e)
{
	int seen[K_COUNT] = { 0 };
	int global = 0;
	__u64 v;
	int i, k, err;

	memset(r, 0, sizeof(*r));
	r->proto = SLUICE_PROTO_ANY;
	r->flags = SLUICE_RULE_KEY_SRC;
	r->mask4 = RULE_DEFAULT_MASK4;
	r->mask6 = RULE_DEFAULT_MASK6;

	for (i = 0; i < argc; i += 2) {
		const char *word = argv[i], *arg;

		if (!strcmp(word, "global")) { /* a flag: no value */
			if (global)
				return errf(e, -EINVAL, "rule add: 'global' given twice");
			global = 1;
			i--;
			continue;
		}
		for (k = 0; k < K_COUNT; k++)
			if (!strcmp(word, keywords[k]))
				break;
		if (k == K_COUNT)
			return errf(e, -EINVAL, "rule add: unknown word '%s' (see sluice rule --help)", word);
		if (seen[k])
			return errf(e, -EINVAL, "rule add: '%s' given twice", word);
		seen[k] = 1;
		if (i + 1 >= argc)
			return errf(e, -EINVAL, "rule add: '%s' needs a value", word);
		arg = argv[i + 1];

		switch (k) {
		case K_NAME:
			err = parse_name(arg, r->name, e);
			break;
		case K_SRC: {
			struct prefix p;

			err = prefix_parse(arg, &p, e);
			if (!err) {
				r->src_family = p.family;
				r->src_len = p.len;
				memcpy(r->src, p.addr, 16);
			}
			break;
		}
		case K_DPORT:
			err = parse_ports(arg, r, e);
			break;
		case K_PROTO:
			err = parse_proto(arg, &r->proto, e);
			break;
		case K_PPS:
			err = parse_u64(arg, 1, RATE_MAX_PPS, 1, "pps", &r->pps, e);
			break;
		case K_BURST:
			err = parse_u64(arg, 1, RATE_MAX_PPS, 1, "burst", &r->burst, e);
			break;
		case K_BPS:
			err = parse_u64(arg, 8, RATE_MAX_BPS, 1, "bps", &r->bps, e);
			break;
		case K_BBURST:
			err = parse_u64(arg, RULE_MIN_BBURST, RATE_MAX_BPS / 8, 1, "bburst", &r->bburst, e);
			break;
		case K_KEY:
			if (!strcmp(arg, "src"))
				r->flags |= SLUICE_RULE_KEY_SRC;
			else if (!strcmp(arg, "rule"))
				r->flags &= ~SLUICE_RULE_KEY_SRC;
			else
				return errf(e, -EINVAL, "bad key '%s': expected src or rule", arg);
			err = 0;
			break;
		case K_MASK4:
			err = parse_u64(arg, 1, 32, 0, "mask4", &v, e);
			r->mask4 = (__u8)v;
			break;
		case K_MASK6:
			err = parse_u64(arg, 1, 128, 0, "mask6", &v, e);
			r->mask6 = (__u8)v;
			break;
		case K_ACTION:
			if (!strcmp(arg, "drop"))
				r->flags &= ~SLUICE_RULE_ACTION_COUNT;
			else if (!strcmp(arg, "count"))
				r->flags |= SLUICE_RULE_ACTION_COUNT;
			else
				return errf(e, -EINVAL, "bad action '%s': expected drop or count", arg);
			err = 0;
			break;
		case K_BAN:
			err = parse_u64(arg, 1, RULE_MAX_BAN_SECS, 0, "ban", &v, e);
			r->ban_secs = (__u32)v;
			break;
		case K_CONN_RATE:
			err = parse_u64(arg, 1, RULE_MAX_CONN_RATE, 1, "conn-rate", &r->conn_rate, e);
			break;
		case K_CONN_BURST:
			err = parse_u64(arg, 1, RULE_MAX_CONN_RATE, 1, "conn-burst", &r->conn_burst, e);
			break;
		case K_CONNS:
			err = parse_u64(arg, 1, RULE_MAX_CONNS, 1, "conns", &r->conns, e);
			break;
		default:
			err = -EINVAL;
		}
		if (err)
			return err;
	}

	if (!seen[K_PPS] && !seen[K_BPS] && !seen[K_CONN_RATE] && !seen[K_CONNS])
		return errf(e, -EINVAL, "rule add: a limit is required: pps, bps, conn-rate or conns");
	if (seen[K_BURST] && !seen[K_PPS])
		return errf(e, -EINVAL, "rule add: 'burst' needs 'pps'");
	if (!seen[K_BURST])
		r->burst = r->pps; /* one second's worth */
	if (seen[K_CONN_BURST] && !seen[K_CONN_RATE])
		return errf(e, -EINVAL, "rule add: 'conn-burst' needs 'conn-rate'");
	if (!seen[K_CONN_BURST])
		r->conn_burst = r->conn_rate;
	if ((seen[K_CONN_RATE] || seen[K_CONNS]) && r->proto != SLUICE_PROTO_TCP &&
	    r->proto != SLUICE_PROTO_ANY)
		return errf(e, -EINVAL, "rule add: conn-rate and conns limit TCP connections: "
			    "they need proto tcp or any");
	if (seen[K_BBURST] && !seen[K_BPS])
		return errf(e, -EINVAL, "rule add: 'bburst' needs 'bps'");
	if (seen[K_BPS] && !seen[K_BBURST])
		r->bburst = r->bps / 8 < RULE_MIN_BBURST ? RULE_MIN_BBURST : r->bps / 8;
	if (!(r->flags & SLUICE_RULE_KEY_SRC)) {
		if (seen[K_MASK4] || seen[K_MASK6])
			return errf(e, -EINVAL, "rule add: mask4/mask6 need 'key src'");
		if (seen[K_BAN])
			return errf(e, -EINVAL, "rule add: 'ban' needs 'key src' (a rule-wide bucket has no source to ban)");
	}
	if (seen[K_BAN] && (r->flags & SLUICE_RULE_ACTION_COUNT))
		return errf(e, -EINVAL, "rule add: 'ban' cannot go with 'action count' (a dry run bans nobody)");
	if (r->dport_lo && r->proto != SLUICE_PROTO_TCP && r->proto != SLUICE_PROTO_UDP &&
	    r->proto != SLUICE_PROTO_ANY)
		return errf(e, -EINVAL, "rule add: 'dport' needs proto tcp, udp or any");
	if (global) {
		if (!r->name[0])
			return errf(e, -EINVAL, "rule add: 'global' needs a 'name' (gateways share a "
				    "global rule by its name)");
		if (r->flags & SLUICE_RULE_KEY_SRC)
			return errf(e, -EINVAL, "rule add: 'global' needs 'key rule' (the fleet "
				    "shares one budget; per-source limits are local)");
		r->flags |= SLUICE_RULE_GLOBAL;
	}
	rule_compile(r);
	return 0;
}

void rule_describe(const struct sluice_rule *r, char *buf, size_t len)
{
	size_t off = 0;
	char pfx[PREFIX_STRLEN];

#define ADD(...) do { int n_ = snprintf(buf + off, len - off, __VA_ARGS__); \
		      if (n_ > 0) off += (size_t)n_ < len - off ? (size_t)n_ : len - off - 1; } while (0)
	buf[0] = '\0';
	if (r->src_family) {
		struct prefix p = { .family = r->src_family, .len = r->src_len };

		memcpy(p.addr, r->src, 16);
		ADD("src %s ", prefix_str(&p, pfx, sizeof(pfx)));
	}
	if (r->dport_lo == r->dport_hi && r->dport_lo)
		ADD("dport %u ", r->dport_lo);
	else if (r->dport_lo)
		ADD("dport %u-%u ", r->dport_lo, r->dport_hi);
	if (r->proto != SLUICE_PROTO_ANY)
		ADD("proto %s ", rule_proto_name(r->proto));
	if (r->pps)
		ADD("pps %llu burst %llu ", (unsigned long long)r->pps, (unsigned long long)r->burst);
	if (r->conn_rate)
		ADD("conn-rate %llu conn-burst %llu ", (unsigned long long)r->conn_rate,
		    (unsigned long long)r->conn_burst);
	if (r->conns)
		ADD("conns %llu ", (unsigned long long)r->conns);
	if (r->bps)
		ADD("bps %llu bburst %llu ", (unsigned long long)r->bps, (unsigned long long)r->bburst);
	if (r->flags & SLUICE_RULE_KEY_SRC)
		ADD("key src mask4 %u mask6 %u ", r->mask4, r->mask6);
	else
		ADD("key rule ");
	ADD("action %s", r->flags & SLUICE_RULE_ACTION_COUNT ? "count" : "drop");
	if (r->ban_secs)
		ADD(" ban %u", r->ban_secs);
	if (r->flags & SLUICE_RULE_GLOBAL)
		ADD(" global");
#undef ADD
}
