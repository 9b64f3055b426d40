// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The adaptive limit controller. docs/design.md, "Adaptive controller",
 * states the formula and why each constant is what it is; the comments here
 * say which line is which part of it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/bpf.h>
#include "adaptive.h"
#include "hist.h"
#include "parse.h"
#include "rate.h"
#include "rule.h"

const char *adaptive_reason_name(enum adaptive_reason r)
{
	switch (r) {
	case ADAPTIVE_HOLD: return "hold";
	case ADAPTIVE_GRADIENT_STEP: return "gradient";
	case ADAPTIVE_ERRORS: return "errors";
	case ADAPTIVE_PROBE: return "probe";
	default: return "?";
	}
}

const char *adaptive_kind_name(enum adaptive_kind k)
{
	return k == ADAPTIVE_PPS ? "pps" : "conn-rate";
}

static __u64 kind_max(enum adaptive_kind k)
{
	return k == ADAPTIVE_PPS ? RATE_MAX_PPS : RULE_MAX_CONN_RATE;
}

/* ------------------------------------------------------------------------
 * Config
 */

/* A plain decimal ("0.05", "2", "12.5"), nothing after it. */
static int parse_decimal(const char *s, double min, double max, const char *what, double *out,
			 struct errbuf *e)
{
	char *end;
	double v;

	if (!s || !((*s >= '0' && *s <= '9') || *s == '.'))
		return errf(e, -EINVAL, "adaptive: bad %s '%s': expected a number", what, s ? s : "");
	errno = 0;
	v = strtod(s, &end);
	if (errno || *end || end == s || !(v == v))
		return errf(e, -EINVAL, "adaptive: bad %s '%s': expected a number", what, s);
	if (v < min || v > max)
		return errf(e, -ERANGE, "adaptive: bad %s '%s': must be in %g to %g", what, s, min, max);
	*out = v;
	return 0;
}

static int check_name(const char *s, struct errbuf *e)
{
	size_t n = strlen(s), i;

	if (!n || n >= SLUICE_NAME_LEN)
		return errf(e, -EINVAL, "adaptive: bad rule '%s': 1 to %d characters", s,
			    SLUICE_NAME_LEN - 1);
	for (i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_' || c == '.'))
			return errf(e, -EINVAL, "adaptive: bad rule '%s': a rule name has letters, "
				    "digits, '-', '_', '.'", s);
	}
	return 0;
}

enum { W_PORT, W_LIMIT, W_MIN, W_MAX, W_TARGET, W_GRADIENT, W_ERROR_RATIO, W_TICK, W_SHADOW,
       W_RULE, W_COUNT };
static const char *const words[W_COUNT] = {
	"port", "limit", "min", "max", "target-latency", "gradient", "error-ratio", "tick",
	"shadow", "rule",
};

int adaptive_parse(int argc, char **argv, struct adaptive_config *c, struct errbuf *e)
{
	int seen[W_COUNT] = { 0 };
	__u64 v;
	double d;
	int i, w, err;

	memset(c, 0, sizeof(*c));
	c->mode = ADAPTIVE_GRADIENT;
	c->error_ratio = ADAPTIVE_DEFAULT_ERROR_RATIO;
	c->tick_ms = ADAPTIVE_DEFAULT_TICK_MS;

	for (i = 0; i < argc; i++) {
		const char *word = argv[i], *arg = NULL;

		for (w = 0; w < W_COUNT; w++)
			if (!strcmp(word, words[w]))
				break;
		if (w == W_COUNT)
			return errf(e, -EINVAL, "adaptive: unknown word '%s' (expected port, limit, "
				    "min, max, target-latency, gradient, error-ratio, tick, shadow "
				    "or rule)", word);
		if (seen[w])
			return errf(e, -EINVAL, "adaptive: '%s' given twice", word);
		seen[w] = 1;
		if (w != W_GRADIENT && w != W_SHADOW) {
			if (i + 1 >= argc)
				return errf(e, -EINVAL, "adaptive: '%s' needs a value", word);
			arg = argv[++i];
		}

		switch (w) {
		case W_PORT:
			err = parse_u64(arg, 1, 65535, 0, "port", &v, e);
			c->port = (__u16)v;
			break;
		case W_LIMIT:
			if (!strcmp(arg, "conn-rate"))
				c->kind = ADAPTIVE_CONN_RATE;
			else if (!strcmp(arg, "pps"))
				c->kind = ADAPTIVE_PPS;
			else
				return errf(e, -EINVAL, "adaptive: bad limit '%s': expected conn-rate "
					    "or pps", arg);
			err = 0;
			break;
		case W_MIN:
			err = parse_u64(arg, 1, RATE_MAX_PPS, 1, "min", &c->min, e);
			break;
		case W_MAX:
			err = parse_u64(arg, 1, RATE_MAX_PPS, 1, "max", &c->max, e);
			break;
		case W_TARGET:
			err = parse_decimal(arg, 0.001, ADAPTIVE_MAX_TARGET_MS, "target-latency", &d, e);
			c->mode = ADAPTIVE_TARGET;
			c->target_us = (__u64)(d * 1000.0 + 0.5);
			break;
		case W_GRADIENT:
			c->mode = ADAPTIVE_GRADIENT;
			err = 0;
			break;
		case W_ERROR_RATIO:
			err = parse_decimal(arg, 0, 1, "error-ratio", &c->error_ratio, e);
			if (!err && c->error_ratio <= 0)
				return errf(e, -ERANGE, "adaptive: bad error-ratio '%s': must be above "
					    "0 (and at most 1)", arg);
			break;
		case W_TICK:
			err = parse_u64(arg, ADAPTIVE_MIN_TICK_MS, ADAPTIVE_MAX_TICK_MS, 0, "tick", &v, e);
			c->tick_ms = (__u32)v;
			break;
		case W_SHADOW:
			c->shadow = 1;
			err = 0;
			break;
		case W_RULE:
			err = check_name(arg, e);
			if (!err)
				strcpy(c->rule, arg);
			break;
		default:
			err = -EINVAL;
		}
		if (err) {
			/* parse_u64 names the value, not the statement: say whose it is */
			if (strncmp(e->msg, "adaptive:", 9)) {
				char msg[ERRBUF_LEN];

				snprintf(msg, sizeof(msg), "%s", e->msg);
				errf(e, err, "adaptive: %s", msg);
			}
			return err;
		}
	}

	if (!seen[W_PORT])
		return errf(e, -EINVAL, "adaptive: 'port' is required (the service's TCP port)");
	if (!seen[W_LIMIT])
		return errf(e, -EINVAL, "adaptive: 'limit' is required: conn-rate or pps");
	if (!seen[W_MIN] || !seen[W_MAX])
		return errf(e, -EINVAL, "adaptive: 'min' and 'max' are required");
	if (seen[W_TARGET] && seen[W_GRADIENT])
		return errf(e, -EINVAL, "adaptive: 'target-latency' and 'gradient' exclude each other");
	if (c->min > c->max)
		return errf(e, -EINVAL, "adaptive: min %llu is above max %llu",
			    (unsigned long long)c->min, (unsigned long long)c->max);
	if (c->max > kind_max(c->kind))
		return errf(e, -ERANGE, "adaptive: max %llu is above the largest %s (%llu)",
			    (unsigned long long)c->max, adaptive_kind_name(c->kind),
			    (unsigned long long)kind_max(c->kind));
	if (c->mode == ADAPTIVE_TARGET && !c->target_us)
		return errf(e, -ERANGE, "adaptive: target-latency must be at least 0.001 ms");
	return 0;
}

void adaptive_describe(const struct adaptive_config *c, char *buf, size_t len)
{
	int n;

	n = snprintf(buf, len, "port %u limit %s min %llu max %llu ", c->port,
		     adaptive_kind_name(c->kind), (unsigned long long)c->min,
		     (unsigned long long)c->max);
	if (n < 0 || (size_t)n >= len)
		return;
	if (c->mode == ADAPTIVE_TARGET)
		n += snprintf(buf + n, len - (size_t)n, "target-latency %g ",
			      (double)c->target_us / 1000.0);
	else
		n += snprintf(buf + n, len - (size_t)n, "gradient ");
	if ((size_t)n >= len)
		return;
	n += snprintf(buf + n, len - (size_t)n, "error-ratio %g tick %u%s%s%s", c->error_ratio,
		      c->tick_ms, c->shadow ? " shadow" : "", c->rule[0] ? " rule " : "", c->rule);
	(void)n;
}

void adaptive_init(struct adaptive *a, const struct adaptive_config *c)
{
	memset(a, 0, sizeof(*a));
	a->cfg = *c;
	a->limit = (double)c->max; /* start open: the first overload is measured, not guessed */
	a->baseline_us = -1;
	a->last.latency_us = -1;
	a->last.error_ratio = -1;
	a->last.baseline_us = -1;
	a->last.gradient = 1;
	a->last.old_limit = a->last.new_limit = c->max;
}

/* ------------------------------------------------------------------------
 * Inputs
 */

static __u64 hist_total(const struct sluice_hist_data *h)
{
	__u64 n = 0;
	__u32 b;

	for (b = 0; b < SLUICE_HIST_BUCKETS; b++)
		n += h->bucket[b];
	return n;
}

static void no_information(struct adaptive_input *out)
{
	memset(out, 0, sizeof(*out));
	out->source = SLUICE_HIST_RESPONSE;
	out->latency_us = -1;
	out->error_ratio = -1;
}

void adaptive_window(struct adaptive *a, const struct sluice_signals *now,
		     struct adaptive_input *out)
{
	static const enum sluice_hist sources[] = { SLUICE_HIST_RESPONSE, SLUICE_HIST_CONNECT };
	__u64 c[SLUICE_SIG_MAX], outcomes, denom;
	struct sluice_hist_data d;
	int recreated = 0;
	unsigned int i;

	no_information(out);
	if (!now) { /* no entry (never answered, or evicted): start over */
		a->have_prev = 0;
		return;
	}
	if (!a->have_prev) { /* the first snapshot only opens the window */
		a->prev = *now;
		a->have_prev = 1;
		return;
	}
	for (i = 0; i < SLUICE_SIG_MAX; i++)
		if (now->counter[i] < a->prev.counter[i])
			recreated = 1;
	/* An entry evicted and recreated since the last tick: what it holds
	 * is all new (hist_sub does the same for the histograms). */
	for (i = 0; i < SLUICE_SIG_MAX; i++)
		c[i] = recreated ? now->counter[i] : now->counter[i] - a->prev.counter[i];

	for (i = 0; i < sizeof(sources) / sizeof(sources[0]); i++) {
		hist_sub(&d, &now->hist[sources[i]], &a->prev.hist[sources[i]]);
		out->samples = hist_total(&d);
		if (out->samples) {
			out->source = sources[i];
			out->latency_us = hist_quantile_us(&d, 0.5);
			out->have_latency = out->latency_us >= 0;
			break;
		}
	}
	out->requests = c[SLUICE_SIG_REQUESTS];
	out->responses = c[SLUICE_SIG_RESPONSES];
	out->connections = c[SLUICE_SIG_CONNECTIONS];
	/* sluice-l7 counts the backend's 5xx in the same http_5xx; its own
	 * 429s are sluice's answers, not the backend's errors. */
	out->errors = c[SLUICE_SIG_HTTP_5XX] + c[SLUICE_SIG_SERVER_RST] + c[SLUICE_SIG_SYN_TIMEOUT] +
		      c[SLUICE_SIG_ICMP_UNREACH];
	/* Every request or connection attempt ends in a response or in one of
	 * the failures without one; requests still queued count too. */
	outcomes = c[SLUICE_SIG_RESPONSES] + c[SLUICE_SIG_SERVER_RST] + c[SLUICE_SIG_SYN_TIMEOUT] +
		   c[SLUICE_SIG_ICMP_UNREACH];
	denom = outcomes > c[SLUICE_SIG_REQUESTS] ? outcomes : c[SLUICE_SIG_REQUESTS];
	if (denom) {
		out->have_errors = 1;
		out->error_ratio = (double)out->errors / (double)denom;
		if (out->error_ratio > 1)
			out->error_ratio = 1;
	}
	a->prev = *now;
}

int adaptive_sample(const struct sluice_maps *m, struct adaptive *a, struct adaptive_input *out)
{
	struct sluice_signals *now;
	__u32 key = a->cfg.port;
	int err = 0;

	now = malloc(sizeof(*now));
	if (!now) {
		no_information(out);
		return -ENOMEM;
	}
	if (bpf_map_lookup_elem(m->signals, &key, now)) {
		err = errno == ENOENT ? 0 : -errno;
		adaptive_window(a, NULL, out);
	} else {
		adaptive_window(a, now, out);
	}
	free(now);
	return err;
}

/* ------------------------------------------------------------------------
 * The controller
 */

static double clampd(double v, double lo, double hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

static __u32 window_ticks(const struct adaptive_config *c)
{
	__u32 n = (__u32)(ADAPTIVE_BASELINE_WINDOW_S * 1000ULL / c->tick_ms);

	return n ? n : 1;
}

static __u64 rounded(const struct adaptive *a, double v)
{
	__u64 r = (__u64)(v + 0.5);

	return r < a->cfg.min ? a->cfg.min : r > a->cfg.max ? a->cfg.max : r;
}

/* The baseline (gradient mode): the lowest p50 seen, confirmed by any
 * window close to it. One that went unconfirmed for a whole window may
 * have been outgrown (the backend became slower): returns 1 to re-probe. */
static int baseline_update(struct adaptive *a, const struct adaptive_input *in)
{
	if (a->baseline_us < 0 || in->source != a->baseline_source) {
		a->baseline_us = in->latency_us;
		a->baseline_source = in->source;
		a->baseline_age = 0;
		return 0;
	}
	if (in->latency_us < a->baseline_us) {
		a->baseline_us = in->latency_us; /* faster: believed at once */
		a->baseline_age = 0;
	} else if (in->latency_us <= a->baseline_us * ADAPTIVE_CONFIRM) {
		a->baseline_age = 0;
	} else if (++a->baseline_age >= window_ticks(&a->cfg)) {
		return 1;
	}
	return 0;
}

/* Responses clearly short of requests in a window with enough of both:
 * requests are queueing at the backend. */
static int queue_started(const struct adaptive_input *in)
{
	__u64 missing = in->requests > in->responses ? in->requests - in->responses : 0;

	/* At 15 requests a window, one response still in flight at the
	 * window's end is 7%: the absolute floor keeps that from reading as
	 * a queue. */
	return in->source == SLUICE_HIST_RESPONSE && in->requests >= ADAPTIVE_MIN_REQUESTS &&
	       (double)missing > ADAPTIVE_QUEUE_SLACK * (double)in->requests &&
	       missing >= ADAPTIVE_QUEUE_MIN_SHORT;
}

__u64 adaptive_tick(struct adaptive *a, const struct adaptive_input *in,
		    struct adaptive_decision *why)
{
	const struct adaptive_config *c = &a->cfg;
	double L = a->limit, next = L, ref = -1, g = 1;
	enum adaptive_reason reason = ADAPTIVE_GRADIENT_STEP;
	int errors_hit, latency = in->have_latency && in->latency_us >= 0;

	a->ticks++;
	errors_hit = in->have_errors && in->errors >= ADAPTIVE_MIN_ERRORS &&
		     in->error_ratio > c->error_ratio;

	if (a->probe_left && !errors_hit) {
		/* Re-probe: the first tick at the lower limit drains the queue,
		 * the last one's p50 is the new baseline (if it has one). */
		reason = ADAPTIVE_PROBE;
		if (--a->probe_left == 0) {
			if (latency) {
				a->baseline_us = in->latency_us;
				a->baseline_source = in->source;
			}
			a->baseline_age = 0;
			next = a->probe_resume;
		}
		goto out;
	}
	if (a->probe_left) { /* errors end a probe: they are handled below */
		a->probe_left = 0;
		L = a->probe_resume;
	}

	if (!latency && !errors_hit) {
		a->empty_windows++;
		reason = ADAPTIVE_HOLD; /* no information: neither up nor down */
		goto out;
	}

	if (latency) {
		/* Windows with errors over threshold are not the service's
		 * normal latency (a 503 is fast): they never set the baseline. */
		if (c->mode == ADAPTIVE_GRADIENT && !errors_hit && baseline_update(a, in)) {
			a->probes++;
			a->probe_left = ADAPTIVE_PROBE_TICKS;
			a->probe_resume = L;
			next = L * ADAPTIVE_PROBE_FRACTION;
			reason = ADAPTIVE_PROBE;
			goto out;
		}
		if (c->mode == ADAPTIVE_TARGET)
			ref = (double)c->target_us;
		else if (a->baseline_us > 0)
			ref = a->baseline_us * ADAPTIVE_TOLERANCE;
		else
			ref = in->latency_us * ADAPTIVE_TOLERANCE; /* first sample under errors */

		if (a->capacity > 0 && ++a->capacity_age > window_ticks(c))
			a->capacity = 0; /* an old measurement: forget it */

		if (in->latency_us > ref) {
			/* Over: a queue. Its drain rate is the backend's
			 * throughput (responses) over what was sent (requests),
			 * times the limit that sent it; take off what drains the
			 * excess latency within DRAIN_TICKS ticks. Never up. */
			double ratio = 1, cap, drain;

			if (in->source == SLUICE_HIST_RESPONSE && in->responses &&
			    in->requests >= ADAPTIVE_MIN_REQUESTS)
				ratio = (double)in->responses / (double)in->requests;
			cap = L * ratio;
			drain = 1 - (in->latency_us - ref) /
				    (ADAPTIVE_DRAIN_TICKS * (double)c->tick_ms * 1000.0);
			drain = clampd(drain, ADAPTIVE_MIN_CUT, 1);
			next = cap * drain;
			if (next > L)
				next = L;
			if (next < L * ADAPTIVE_MIN_CUT)
				next = L * ADAPTIVE_MIN_CUT;
			/* Responses short of requests: the backend is saturated
			 * and its throughput is a measurement of capacity. More
			 * responses than requests is a queue draining: the
			 * estimate holds only if the limit was binding, so it
			 * may cut less but is not remembered. */
			if (ratio < 1) {
				a->capacity = cap;
				a->capacity_age = 0;
			}
		} else if (queue_started(in)) {
			/* Under the reference, but the backend answered clearly
			 * fewer than it was sent: a queue has started and will
			 * show as latency in a tick or two. What it answered is
			 * its capacity; go under it so the queue drains first. */
			a->capacity = L * (double)in->responses / (double)in->requests;
			a->capacity_age = 0;
			next = a->capacity * (1 - ADAPTIVE_HEADROOM);
			if (next > L)
				next = L;
		} else {
			/* Under: raise by the gradient ref / latency, at least
			 * NEAR_RAISE, at most MAX_RAISE, and only NEAR_RAISE
			 * within NEAR_MARGIN of where latency last rose. */
			double raise = clampd(ref / in->latency_us - 1, ADAPTIVE_NEAR_RAISE,
					      ADAPTIVE_MAX_RAISE);

			/* A conn-rate limit that admitted well under itself is
			 * not what holds the load back: the load fell, and the
			 * capacity it was held under says nothing now. */
			if (a->capacity > 0 && c->kind == ADAPTIVE_CONN_RATE &&
			    (double)in->connections <
				    ADAPTIVE_BINDING * L * (double)c->tick_ms / 1000.0)
				a->capacity = 0;
			if (a->capacity > 0 && L * (1 + raise) > a->capacity * (1 - ADAPTIVE_NEAR_MARGIN) &&
			    L < a->capacity * (1 + ADAPTIVE_NEAR_MARGIN))
				raise = ADAPTIVE_NEAR_RAISE;
			next = L * (1 + raise);
			/* Far below it (a queue was just drained, or errors
			 * cut): straight back to the edge of the near zone. */
			if (a->capacity > 0 && next < a->capacity * (1 - ADAPTIVE_NEAR_MARGIN))
				next = a->capacity * (1 - ADAPTIVE_NEAR_MARGIN);
			/* Near it: no higher than HEADROOM under it. Creeping
			 * past a measured capacity only builds a queue; the
			 * measurement is renewed by the next queue, forgotten
			 * when it ages out or the load falls. */
			if (a->capacity > 0 && next > a->capacity * (1 - ADAPTIVE_HEADROOM))
				next = L > a->capacity * (1 - ADAPTIVE_HEADROOM) ? L
					: a->capacity * (1 - ADAPTIVE_HEADROOM);
		}
	}
	if (errors_hit) {
		/* Multiplicative decrease, whatever latency says. */
		double cut = L * (1 - ADAPTIVE_ERROR_CUT);

		if (!latency || next > cut)
			next = cut;
		reason = ADAPTIVE_ERRORS;
		a->error_cuts++;
		if (a->before_errors <= 0)
			a->before_errors = L;
	} else if (a->before_errors > 0 && latency && in->latency_us <= ref) {
		/* The errors stopped and latency is fine: they were the
		 * backend failing, not load, so go straight back to half the
		 * limit it had before them (as TCP returns to ssthresh), not
		 * 15% a tick from the floor. */
		if (next < a->before_errors * ADAPTIVE_ERROR_RESUME)
			next = a->before_errors * ADAPTIVE_ERROR_RESUME;
		a->before_errors = 0;
	}
out:
	next = clampd(next, (double)c->min, (double)c->max);
	if (L > 0)
		g = next / L;
	a->limit = next;
	a->last.reason = reason;
	a->last.latency_us = latency ? in->latency_us : -1;
	a->last.baseline_us = c->mode == ADAPTIVE_TARGET ? (double)c->target_us : a->baseline_us;
	a->last.gradient = g;
	a->last.error_ratio = in->have_errors ? in->error_ratio : -1;
	a->last.old_limit = a->last.new_limit; /* the previous tick's */
	a->last.new_limit = rounded(a, next);
	a->last.changed = a->last.new_limit != a->last.old_limit;
	if (why)
		*why = a->last;
	return a->last.new_limit;
}

/* ------------------------------------------------------------------------
 * Output
 */

static int has_kind(const struct sluice_rule *r, enum adaptive_kind k)
{
	return r->flags & (k == ADAPTIVE_PPS ? SLUICE_RULE_HAS_PPS : SLUICE_RULE_HAS_CONN_RATE);
}

int adaptive_bind(const struct sluice_maps *m, struct adaptive *a, struct errbuf *e)
{
	const struct adaptive_config *c = &a->cfg;
	const char *kind = adaptive_kind_name(c->kind);
	struct sluice_rule r, found = {};
	char ids[128] = "";
	size_t idlen = 0;
	int n = 0, slot = -1;
	__u32 s;

	a->bound = 0;
	for (s = 0; s < SLUICE_MAX_RULES; s++) {
		if (bpf_map_lookup_elem(m->rules, &s, &r))
			return errf(e, -errno, "adaptive port %u: read rule slot %u: %s", c->port, s,
				    strerror(errno));
		if (!(r.flags & SLUICE_RULE_IN_USE))
			continue;
		if (c->rule[0]) {
			if (strncmp(r.name, c->rule, SLUICE_NAME_LEN))
				continue;
			if (!has_kind(&r, c->kind))
				return errf(e, -EINVAL, "adaptive port %u: rule '%s' has no %s limit "
					    "to adapt", c->port, c->rule, kind);
		} else if (r.dport_lo != c->port || r.dport_hi != c->port || !has_kind(&r, c->kind)) {
			continue;
		}
		if (n++ == 0) {
			found = r;
			slot = (int)s;
		}
		if (idlen < sizeof(ids))
			idlen += (size_t)snprintf(ids + idlen, sizeof(ids) - idlen, "%s%u",
						  n > 1 ? ", " : "", r.id);
	}
	if (!n) {
		if (c->rule[0])
			return errf(e, -ENOENT, "adaptive port %u: no rule named '%s'", c->port, c->rule);
		return errf(e, -ENOENT, "adaptive port %u: no rule with dport %u and a %s limit "
			    "(add one, or name it with 'rule NAME')", c->port, c->port, kind);
	}
	if (n > 1)
		return errf(e, -ENOTUNIQ, "adaptive port %u: %d rules with dport %u and a %s limit "
			    "(ids %s): name one with 'rule NAME'", c->port, n, c->port, kind, ids);
	a->slot = (__u32)slot;
	a->rule_id = found.id;
	/* The burst as configured, in seconds of rate, kept as the rate moves. */
	if (c->kind == ADAPTIVE_PPS)
		a->burst_secs = (double)found.burst / (double)found.pps;
	else
		a->burst_secs = (double)found.conn_burst / (double)found.conn_rate;
	a->bound = 1;
	return 0;
}

int adaptive_apply(const struct sluice_maps *m, const struct adaptive *a, __u64 limit)
{
	struct sluice_rule r;
	__u64 burst, strikes, kmax = kind_max(a->cfg.kind);
	__u32 slot = a->slot;

	if (!a->bound)
		return -EINVAL;
	if (a->cfg.shadow)
		return 0;
	if (bpf_map_lookup_elem(m->rules, &slot, &r))
		return -errno;
	if (!(r.flags & SLUICE_RULE_IN_USE) || r.id != a->rule_id || !has_kind(&r, a->cfg.kind))
		return -ESTALE;
	if (limit < 1)
		limit = 1;
	if (limit > kmax)
		limit = kmax;
	burst = (__u64)((double)limit * a->burst_secs + 0.5);
	if (burst < 1)
		burst = 1;
	if (burst > kmax)
		burst = kmax;

	if (a->cfg.kind == ADAPTIVE_PPS) {
		if (r.pps == limit && r.burst == burst)
			return 0;
		r.pps = limit;
		r.burst = burst;
		r.pkt_interval_fp = rate_interval_fp(limit);
		r.pkt_tolerance_ns = rate_tolerance_ns(r.pkt_interval_fp, burst);
	} else {
		if (r.conn_rate == limit && r.conn_burst == burst)
			return 0;
		r.conn_rate = limit;
		r.conn_burst = burst;
		r.conn_interval_fp = rate_interval_fp(limit);
		r.conn_tolerance_ns = rate_tolerance_ns(r.conn_interval_fp, burst);
	}
	/* Escalation counts "a burst's worth of drops" (as rule.c compiles it). */
	strikes = r.pps ? r.burst : r.conn_rate ? r.conn_burst : r.conns ? r.conns : 1;
	r.ban_strikes = (__u32)(strikes > 0xFFFFFFFFu ? 0xFFFFFFFFu : strikes);
	/* One update of the slot: see docs/design.md for what a racing packet
	 * can read. */
	if (bpf_map_update_elem(m->rules, &slot, &r, BPF_EXIST))
		return -errno;
	return 0;
}
