// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "command.h"
#include "config.h"
#include "directive.h"
#include "parse.h"

/* Longest line, as `sluice -f` takes. */

const char *config_mode_name(enum attach_mode m)
{
	return m == MODE_NATIVE ? "native" : m == MODE_GENERIC ? "generic" : "auto";
}

int config_iface_equal(const struct config_iface *a, const struct config_iface *b)
{
	return !strcmp(a->name, b->name) && a->mode == b->mode && a->no_tc == b->no_tc;
}

static int parse_iface(void *ctx, int argc, char **argv, unsigned int line,
		       struct errbuf *e)
{
	struct config *c = ctx;
	struct config_iface *ifc;
	int i;

	if (argc < 2)
		return errf(e, -EINVAL, "interface: missing DEV");
	if (strlen(argv[1]) >= IF_NAMESIZE)
		return errf(e, -EINVAL, "interface: name '%s' is longer than %d characters",
			    argv[1], IF_NAMESIZE - 1);
	for (i = 0; i < c->n_ifaces; i++)
		if (!strcmp(c->ifaces[i].name, argv[1]))
			return errf(e, -EEXIST, "interface %s: already named on line %u",
				    argv[1], c->ifaces[i].line);
	if (c->n_ifaces == CONFIG_MAX_IFACES)
		return errf(e, -ENOSPC, "interface: more than %d interfaces", CONFIG_MAX_IFACES);
	ifc = &c->ifaces[c->n_ifaces];
	memset(ifc, 0, sizeof(*ifc));
	snprintf(ifc->name, sizeof(ifc->name), "%s", argv[1]);
	ifc->mode = MODE_AUTO;
	ifc->line = line;
	for (i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "no-tc")) {
			ifc->no_tc = 1;
		} else if (!strcmp(argv[i], "mode") && i + 1 < argc) {
			const char *m = argv[++i];

			if (!strcmp(m, "native"))
				ifc->mode = MODE_NATIVE;
			else if (!strcmp(m, "generic"))
				ifc->mode = MODE_GENERIC;
			else if (!strcmp(m, "auto"))
				ifc->mode = MODE_AUTO;
			else
				return errf(e, -EINVAL, "interface %s: bad mode '%s': expected "
					    "native, generic or auto", ifc->name, m);
		} else {
			return errf(e, -EINVAL, "interface %s: unexpected '%s' (expected "
				    "mode native|generic|auto, no-tc)", ifc->name, argv[i]);
		}
	}
	c->n_ifaces++;
	return 0;
}

/* ADDR:PORT with ADDR an IPv4 address or a bracketed IPv6 one. */
static int parse_metrics(void *ctx, int argc, char **argv, unsigned int line, struct errbuf *e)
{
	struct config *c = ctx;
	char host[64];
	const char *colon, *addr = argc > 1 ? argv[1] : "";
	struct in6_addr a6;
	struct in_addr a4;
	__u64 port;
	int wildcard;
	size_t hl;

	(void)line;

	if (argc == 2 && !strcmp(addr, "off")) {
		c->metrics_on = 0;
		return 0;
	}
	if (argc < 2 || argc > 3 || (argc == 3 && strcmp(argv[2], "allow-any")))
		return errf(e, -EINVAL, "metrics: expected ADDR:PORT [allow-any] or off");
	colon = strrchr(addr, ':');
	if (!colon || colon == addr)
		return errf(e, -EINVAL, "metrics: bad address '%s' (expected ADDR:PORT, e.g. "
			    "127.0.0.1:9464 or [::1]:9464)", addr);
	hl = (size_t)(colon - addr);
	if (addr[0] == '[') {
		if (hl < 3 || addr[hl - 1] != ']')
			return errf(e, -EINVAL, "metrics: bad address '%s'", addr);
		addr++;
		hl -= 2;
	}
	if (hl >= sizeof(host))
		return errf(e, -EINVAL, "metrics: bad address '%s'", argv[1]);
	memcpy(host, addr, hl);
	host[hl] = '\0';
	if (parse_u64(colon + 1, 1, 65535, 0, "metrics port", &port, e))
		return -EINVAL;
	if (inet_pton(AF_INET, host, &a4) == 1 && argv[1][0] != '[')
		wildcard = a4.s_addr == htonl(INADDR_ANY);
	else if (inet_pton(AF_INET6, host, &a6) == 1 && argv[1][0] == '[')
		wildcard = IN6_IS_ADDR_UNSPECIFIED(&a6);
	else
		return errf(e, -EINVAL, "metrics: bad address '%s' (an IPv4 address, or an IPv6 "
			    "one in brackets)", argv[1]);
	if (wildcard && argc != 3)
		return errf(e, -EINVAL, "metrics: %s listens on every interface; add "
			    "'allow-any' if that is meant", argv[1]);
	c->metrics_on = 1;
	c->metrics_allow_any = argc == 3;
	snprintf(c->metrics_addr, sizeof(c->metrics_addr), "%s", argv[1]);
	return 0;
}

static int parse_adaptive(void *ctx, int argc, char **argv, unsigned int line,
			  struct errbuf *e)
{
	struct config *c = ctx;
	struct config_adaptive *a;
	size_t len = 0;
	char *p;
	int i;

	if (argc < 2)
		return errf(e, -EINVAL, "adaptive: missing its settings (adaptive port N limit "
			    "conn-rate|pps min N max N ...)");
	if (c->n_adaptive == CONFIG_MAX_ADAPTIVE)
		return errf(e, -ENOSPC, "adaptive: more than %d controllers", CONFIG_MAX_ADAPTIVE);
	if (argc - 1 > (int)(sizeof(a->argv) / sizeof(a->argv[0])))
		return errf(e, -E2BIG, "adaptive: too many words");
	for (i = 1; i < argc; i++)
		len += strlen(argv[i]) + 1;
	a = &c->adaptive[c->n_adaptive];
	memset(a, 0, sizeof(*a));
	a->text = malloc(len);
	if (!a->text)
		return errf(e, -ENOMEM, "out of memory");
	for (p = a->text, i = 1; i < argc; i++) {
		size_t n = strlen(argv[i]) + 1;

		memcpy(p, argv[i], n);
		a->argv[a->argc++] = p;
		p += n;
	}
	a->line = line;
	c->n_adaptive++;
	return 0;
}

/* A policy line (rule, allow, deny, set): applied to the wanted policy. */
static int policy_line(void *ctx, int n, char **w, unsigned int line, struct errbuf *e)
{
	struct config *c = ctx;
	struct command_result res;

	(void)line;
	c->policy_lines++;
	return command_apply(&c->want, n, w, &res, e);
}

static int parse_store(void *ctx, int n, char **w, unsigned int line, struct errbuf *e)
{
	struct config *c = ctx;

	if (store_config_parse(n, w, &c->store, e))
		return -EINVAL;
	c->store.line = line;
	return 0;
}

/* sluiced.conf(5): docs/operations.md and man/sluiced.conf.5 describe them. */
static const struct directive directives[] = {
	{ "interface", DIR_FN, parse_iface, 0, 0, 0, 1 },
	{ "metrics", DIR_FN, parse_metrics, 0, 0, 0, 1 },
	{ "adaptive", DIR_FN, parse_adaptive, 0, 0, 0, 1 },
	{ "store", DIR_FN, parse_store, 0, 0, 0, 0 },
	{ "state-size", DIR_U64, NULL, offsetof(struct config, state_size), 1024, 1U << 26, 0 },
	{ "flow-size", DIR_U64, NULL, offsetof(struct config, flow_size), 1024, 1U << 26, 0 },
	{ "insert-rate", DIR_U64, NULL, offsetof(struct config, insert_rate), 1, 1U << 30, 0 },
	{ "top-talkers", DIR_UINT, NULL, offsetof(struct config, top_talkers), 0,
	  CONFIG_TOP_TALKERS_MAX, 0 },
	{ "rule", DIR_FN, policy_line, 0, 0, 0, 1 },
	{ "allow", DIR_FN, policy_line, 0, 0, 0, 1 },
	{ "deny", DIR_FN, policy_line, 0, 0, 0, 1 },
	{ "set", DIR_FN, policy_line, 0, 0, 0, 1 },
};
static const struct directive_table config_directives = {
	directives, sizeof(directives) / sizeof(directives[0]), "sluiced.conf(5)"
};

/* The file being read. */
struct reader {
	struct config *c;
	struct directive_seen seen;
};

static void want_init(struct policy *p)
{
	memset(p, 0, sizeof(*p));
	p->now_ns = monotonic_ns();
	p->cfg.next_rule_id = 1;
	p->cfg.syn_timeout_ns = SLUICE_DEFAULT_SYN_TIMEOUT_S * 1000000000ULL;
	p->cfg.fin_timeout_ns = SLUICE_DEFAULT_FIN_TIMEOUT_S * 1000000000ULL;
	p->cfg.idle_timeout_ns = SLUICE_DEFAULT_IDLE_TIMEOUT_S * 1000000000ULL;
	p->cfg.flows_full = SLUICE_FULL_OPEN;
}

/* parse_lines' callback. */
static int config_line(int n, char **words, unsigned int lineno, void *arg, struct errbuf *e)
{
	struct reader *r = arg;

	return directive_apply(&config_directives, &r->seen, r->c, r->c, n, words, lineno, e);
}

int config_load(struct config *c, const char *path, struct config_err *ce)
{
	struct reader r = { .c = c };
	unsigned int lineno = 0;
	struct errbuf e;
	FILE *f;
	int err = 0;

	memset(c, 0, sizeof(*c));
	snprintf(c->path, sizeof(c->path), "%s", path);
	c->metrics_on = 1;
	snprintf(c->metrics_addr, sizeof(c->metrics_addr), "%s", CONFIG_METRICS_DEFAULT);
	c->top_talkers = CONFIG_TOP_TALKERS_DEFAULT;
	want_init(&c->want);

	f = fopen(path, "r");
	if (!f) {
		err = -errno;
		snprintf(ce->msg, sizeof(ce->msg), "%s: %s", path, strerror(-err));
		return err;
	}
	err = parse_lines(f, config_line, &r, &lineno, &e);
	fclose(f);
	if (!err && !c->n_ifaces) {
		lineno = 0;
		err = errf(&e, -EINVAL, "no 'interface DEV' statement: nothing to attach to");
	}
	if (err) {
		if (lineno)
			snprintf(ce->msg, sizeof(ce->msg), "%s:%u: %s", path, lineno, e.msg);
		else
			snprintf(ce->msg, sizeof(ce->msg), "%s: %s", path, e.msg);
		config_free(c);
		return err;
	}
	return 0;
}

void config_free(struct config *c)
{
	int i;

	for (i = 0; i < c->n_adaptive; i++) {
		free(c->adaptive[i].text);
		c->adaptive[i].text = NULL;
	}
	c->n_adaptive = 0;
	policy_free(&c->want);
}

/* Same match and limits: everything but the id the policy gave it. */
static int rule_same(const struct sluice_rule *pinned, const struct sluice_rule *wanted,
		     unsigned int owned)
{
	struct sluice_rule w = *wanted;

	w.id = pinned->id;
	if (owned & CONFIG_OWN_PPS) {
		w.pps = pinned->pps;
		w.burst = pinned->burst;
		w.pkt_interval_fp = pinned->pkt_interval_fp;
		w.pkt_tolerance_ns = pinned->pkt_tolerance_ns;
	}
	if (owned & CONFIG_OWN_CONN_RATE) {
		w.conn_rate = pinned->conn_rate;
		w.conn_burst = pinned->conn_burst;
		w.conn_interval_fp = pinned->conn_interval_fp;
		w.conn_tolerance_ns = pinned->conn_tolerance_ns;
	}
	if (owned & CONFIG_OWN_BPS) {
		w.bps = pinned->bps;
		w.bburst = pinned->bburst;
		w.byte_interval_fp = pinned->byte_interval_fp;
		w.byte_tolerance_ns = pinned->byte_tolerance_ns;
	}
	if (owned & CONFIG_OWN_CONNS)
		w.conns = pinned->conns;
	/* derived from the limits above */
	if (owned)
		w.ban_strikes = pinned->ban_strikes;
	return !memcmp(&w, pinned, sizeof(w));
}

static int apply_rules(struct policy *cur, const struct policy *want, const unsigned int *owned,
		       struct config_delta *d, struct errbuf *e)
{
	int cur_kept[SLUICE_MAX_RULES] = { 0 }, want_kept[SLUICE_MAX_RULES] = { 0 };
	int w, s, err;
	char id[16];

	for (w = 0; w < SLUICE_MAX_RULES; w++) {
		if (!policy_rule_live(want, w))
			continue;
		for (s = 0; s < SLUICE_MAX_RULES; s++) {
			if (cur_kept[s] || !policy_rule_live(cur, s) ||
			    !rule_same(&cur->rules[s], &want->rules[w], owned ? owned[s] : 0))
				continue;
			cur_kept[s] = want_kept[w] = 1;
			d->rules_kept++;
			break;
		}
	}
	/* Deletions first: a changed rule keeps its name. */
	for (s = 0; s < SLUICE_MAX_RULES; s++) {
		if (cur_kept[s] || !policy_rule_live(cur, s))
			continue;
		snprintf(id, sizeof(id), "%u", cur->rules[s].id);
		err = policy_rule_del(cur, id, e);
		if (err)
			return err;
		d->rules_deleted++;
	}
	for (w = 0; w < SLUICE_MAX_RULES; w++) {
		struct sluice_rule r;

		if (want_kept[w] || !policy_rule_live(want, w))
			continue;
		r = want->rules[w];
		r.id = 0;
		r.flags &= ~SLUICE_RULE_IN_USE;
		err = policy_rule_add(cur, &r, NULL, e);
		if (err)
			return err;
		d->rules_added++;
	}
	return 0;
}

static const struct list_entry *find_live(const struct entry_list *l, const struct prefix *p)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		if (policy_entry_live(&l->v[i]) && prefix_equal(&l->v[i].pfx, p))
			return &l->v[i];
	return NULL;
}

static int apply_allow(struct policy *cur, const struct policy *want, struct config_delta *d,
		       struct errbuf *e)
{
	size_t i, n = cur->allow.n;
	int err;

	for (i = 0; i < n; i++) {
		struct prefix p = cur->allow.v[i].pfx;

		if (!policy_entry_live(&cur->allow.v[i]) || find_live(&want->allow, &p))
			continue;
		err = policy_allow_del(cur, &p, e);
		if (err)
			return err;
		d->allow_deleted++;
	}
	for (i = 0; i < want->allow.n; i++) {
		const struct list_entry *w = &want->allow.v[i];

		if (!policy_entry_live(w) || find_live(&cur->allow, &w->pfx))
			continue;
		err = policy_allow_add(cur, &w->pfx, e);
		if (err)
			return err;
		d->allow_added++;
	}
	return 0;
}

/* Static entries follow the file; bans stay until they expire. A timed
 * entry of the file that is still running keeps its expiry (a reload does
 * not extend it); a permanent one replaces a ban on the same prefix. */
static int apply_deny(struct policy *cur, const struct policy *want, struct config_delta *d,
		      struct errbuf *e)
{
	size_t i, n = cur->deny.n;
	int err;

	for (i = 0; i < n; i++) {
		const struct list_entry *c = &cur->deny.v[i];
		struct prefix p = c->pfx;

		if (!policy_entry_live(c) || c->deny.kind != SLUICE_DENY_STATIC ||
		    find_live(&want->deny, &p))
			continue;
		err = policy_deny_del(cur, &p, e);
		if (err)
			return err;
		d->deny_deleted++;
	}
	for (i = 0; i < want->deny.n; i++) {
		const struct list_entry *w = &want->deny.v[i], *c;
		__u64 timeout_s = 0;

		if (!policy_entry_live(w))
			continue;
		c = find_live(&cur->deny, &w->pfx);
		if (c && c->deny.kind == SLUICE_DENY_STATIC &&
		    !c->deny.expires_ns == !w->deny.expires_ns)
			continue;
		if (w->deny.expires_ns)
			timeout_s = (w->deny.expires_ns - want->now_ns) / 1000000000ULL;
		err = policy_deny_add(cur, &w->pfx, timeout_s ? timeout_s : (w->deny.expires_ns ? 1 : 0), e);
		if (err)
			return err;
		d->deny_added++;
	}
	return 0;
}

int config_policy_apply(struct policy *cur, const struct config *c, const unsigned int *owned,
			struct config_delta *d, struct errbuf *e)
{
	const struct sluice_config *w = &c->want.cfg;
	int err;

	memset(d, 0, sizeof(*d));
	if (cur->cfg.syn_timeout_ns != w->syn_timeout_ns ||
	    cur->cfg.fin_timeout_ns != w->fin_timeout_ns ||
	    cur->cfg.idle_timeout_ns != w->idle_timeout_ns ||
	    cur->cfg.flows_full != w->flows_full) {
		cur->cfg.syn_timeout_ns = w->syn_timeout_ns;
		cur->cfg.fin_timeout_ns = w->fin_timeout_ns;
		cur->cfg.idle_timeout_ns = w->idle_timeout_ns;
		cur->cfg.flows_full = w->flows_full;
		cur->cfg_changed = 1;
		d->settings = 1;
	}
	err = apply_rules(cur, &c->want, owned, d, e);
	if (!err)
		err = apply_allow(cur, &c->want, d, e);
	if (!err)
		err = apply_deny(cur, &c->want, d, e);
	return err;
}

int config_delta_empty(const struct config_delta *d)
{
	return !d->rules_added && !d->rules_deleted && !d->allow_added && !d->allow_deleted &&
	       !d->deny_added && !d->deny_deleted && !d->settings;
}
