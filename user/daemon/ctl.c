// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* The adaptive controllers (a repeating timer each, on the daemon's loop)
 * and the metrics endpoint (on the same loop); the libraries are
 * user/lib/adaptive.c, metrics.c and metrics_http.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "adaptive.h"
#include "metrics.h"
#include "metrics_http.h"
#include "log.h"
#include "pin.h"
#include "sluiced.h"

struct ctl {
	struct adaptive a;
	char desc[256];
	struct daemon *d;
	struct loop_timer timer;        /* every a.cfg.tick_ms, from the previous due time */
	__u64 period_ns;
	__u64 changes;
};

static struct ctl *ctls[CONFIG_MAX_ADAPTIVE];
static int n_ctls;
static struct metrics_http *mh;

static double or_nan(double v)
{
	return v < 0 ? __builtin_nan("") : v;
}

static int render(struct buf *out, void *arg)
{
	struct metrics_adaptive ma[CONFIG_MAX_ADAPTIVE];
	struct metrics_extra x = { .adaptive = ma };
	struct daemon *d = arg;
	int i;

	x.top_n = d->cfg->top_talkers;
	x.store = fleet_store_state() + 1; /* -1 without a store: 0 */
	for (i = 0; i < n_ctls; i++) {
		const struct adaptive *a = &ctls[i]->a;

		memset(&ma[i], 0, sizeof(ma[i]));
		ma[i].port = a->cfg.port;
		ma[i].rule_id = a->rule_id;
		snprintf(ma[i].kind, sizeof(ma[i].kind), "%s",
			 a->cfg.kind == ADAPTIVE_PPS ? "pps" : "conn_rate");
		ma[i].limit = a->limit;
		ma[i].min = (double)a->cfg.min;
		ma[i].max = (double)a->cfg.max;
		ma[i].latency_s = or_nan(a->last.latency_us) / 1e6;
		ma[i].baseline_s = or_nan(a->last.baseline_us) / 1e6;
		ma[i].error_ratio = or_nan(a->last.error_ratio);
		ma[i].changes = ctls[i]->changes;
		ma[i].shadow = a->cfg.shadow;
	}
	x.n_adaptive = (size_t)n_ctls;
	return metrics_render(&d->maps, &x, out);
}

static void metrics_stop(struct daemon *d)
{
	if (!mh)
		return;
	(void)d;
	metrics_http_close(mh);
	mh = NULL;
}

static void metrics_start(struct daemon *d, const struct config *c)
{
	int err;

	if (!c->metrics_on)
		return;
	err = metrics_http_open(d->loop, c->metrics_addr, c->metrics_allow_any, render, d, &mh);
	if (err) {
		pr_err("metrics %s: %s; not serving (fix the address and reload)",
		       c->metrics_addr, strerror(-err));
		mh = NULL;
		return;
	}
	pr_info("metrics: serving http://%s/metrics", c->metrics_addr);
}

int ctl_check(const struct config *c, struct config_err *ce)
{
	struct adaptive_config ac;
	struct errbuf e;
	int i;

	for (i = 0; i < c->n_adaptive; i++) {
		const struct config_adaptive *ca = &c->adaptive[i];

		if (adaptive_parse(ca->argc, (char **)ca->argv, &ac, &e)) {
			snprintf(ce->msg, sizeof(ce->msg), "%s:%u: adaptive: %s", c->path, ca->line,
				 e.msg);
			return -EINVAL;
		}
	}
	return 0;
}

static void ctl_free(struct daemon *d, struct ctl *t)
{
	loop_timer_stop(d->loop, &t->timer);
	free(t);
}

static void ctl_tick(struct daemon *d, struct ctl *t);

/* Every period from the first due time, so the ticks do not drift; ticks
 * missed while the daemon was busy are one tick, as a timerfd's were. */
static void ctl_timer(struct loop_timer *lt)
{
	struct ctl *t = container_of(lt, struct ctl, timer);
	__u64 next = lt->when_ns + t->period_ns, now = loop_now(t->d->loop);

	if (next <= now)
		next += ((now - next) / t->period_ns + 1) * t->period_ns;
	loop_timer_at(t->d->loop, &t->timer, next);
	ctl_tick(t->d, t);
}

static struct ctl *ctl_new(struct daemon *d, const struct adaptive_config *ac)
{
	struct ctl *t = calloc(1, sizeof(*t));
	int err;

	if (!t)
		return NULL;
	adaptive_init(&t->a, ac);
	adaptive_describe(ac, t->desc, sizeof(t->desc));
	t->d = d;
	t->period_ns = (__u64)ac->tick_ms * 1000000ULL;
	if (!t->period_ns)
		t->period_ns = 1000000ULL;
	loop_timer_init(&t->timer, ctl_timer);
	err = loop_timer_after(d->loop, &t->timer, t->period_ns);
	if (err) {
		free(t);
		errno = -err;
		return NULL;
	}
	return t;
}

/* Keep a controller whose statement did not change (its state goes on);
 * start new ones, stop removed ones. Then bind all to the current rules. */
int ctl_apply(struct daemon *d, const struct config *old, const struct config *c)
{
	struct ctl *next[CONFIG_MAX_ADAPTIVE] = { NULL };
	int i, j, n = 0;

	if (!old || old->metrics_on != c->metrics_on || old->metrics_allow_any != c->metrics_allow_any ||
	    strcmp(old->metrics_addr, c->metrics_addr)) {
		if (old && mh)
			pr_info("metrics: closing http://%s/metrics", old->metrics_addr);
		metrics_stop(d);
		metrics_start(d, c);
	}
	for (i = 0; i < c->n_adaptive; i++) {
		struct adaptive_config ac;
		struct errbuf e;

		if (adaptive_parse(c->adaptive[i].argc, (char **)c->adaptive[i].argv, &ac, &e))
			continue; /* ctl_check refused it before */
		for (j = 0; j < n_ctls; j++)
			if (ctls[j] && !memcmp(&ctls[j]->a.cfg, &ac, sizeof(ac)))
				break;
		if (j < n_ctls) {
			next[n++] = ctls[j];
			ctls[j] = NULL;
			continue;
		}
		next[n] = ctl_new(d, &ac);
		if (!next[n]) {
			pr_err("%s:%u: adaptive: could not start its timer: %s", c->path,
			       c->adaptive[i].line, strerror(errno));
			continue;
		}
		pr_info("adaptive %s: started (tick %u ms%s)", next[n]->desc, ac.tick_ms,
			ac.shadow ? ", shadow" : "");
		n++;
	}
	for (j = 0; j < n_ctls; j++) {
		if (!ctls[j])
			continue;
		pr_info("adaptive %s: stopped (no longer in the config)", ctls[j]->desc);
		ctl_free(d, ctls[j]);
	}
	memcpy(ctls, next, sizeof(ctls));
	n_ctls = n;
	for (i = 0; i < n_ctls; i++) {
		struct errbuf e;

		if (adaptive_bind(&d->maps, &ctls[i]->a, &e))
			pr_warn("adaptive %s: no rule to drive: %s", ctls[i]->desc, e.msg);
	}
	return 0;
}

static void ctl_tick(struct daemon *d, struct ctl *t)
{
	struct adaptive_decision why;
	struct adaptive_input in;
	struct errbuf e;
	__u64 limit;
	int err, lock;

	if (!t->a.bound && adaptive_bind(&d->maps, &t->a, &e))
		return;
	if (adaptive_sample(&d->maps, &t->a, &in))
		return;
	limit = adaptive_tick(&t->a, &in, &why);
	t->changes += why.changed ? 1 : 0;
	if (why.changed)
		pr_info("adaptive %s: %s %llu -> %llu (%s; latency %.0f us, baseline %.0f us, "
			"gradient %.3f, error ratio %.3f)%s", t->desc,
			adaptive_kind_name(t->a.cfg.kind),
			(unsigned long long)why.old_limit, (unsigned long long)why.new_limit,
			adaptive_reason_name(why.reason),
			why.latency_us, why.baseline_us, why.gradient, why.error_ratio,
			t->a.cfg.shadow ? " [shadow]" : "");
	lock = pin_lock();
	if (lock < 0)
		return;
	err = adaptive_apply(&d->maps, &t->a, limit);
	if (err == -ESTALE && !adaptive_bind(&d->maps, &t->a, &e))
		err = adaptive_apply(&d->maps, &t->a, limit);
	pin_unlock(lock);
	if (err)
		pr_warn("adaptive %s: write the limit: %s", t->desc, strerror(-err));
}

/* The limits each bound controller owns in the pinned rules: a reload must
 * not take them for a change of the rule. */
void ctl_owned(unsigned int *owned)
{
	int i;

	for (i = 0; i < n_ctls; i++)
		if (ctls[i]->a.bound && ctls[i]->a.slot < SLUICE_MAX_RULES)
			owned[ctls[i]->a.slot] |= ctls[i]->a.cfg.kind == ADAPTIVE_PPS
						  ? CONFIG_OWN_PPS : CONFIG_OWN_CONN_RATE;
}

void ctl_stop(struct daemon *d)
{
	int i;

	metrics_stop(d);
	for (i = 0; i < n_ctls; i++)
		ctl_free(d, ctls[i]);
	n_ctls = 0;
}
