// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* rule, allow, deny, set and -f FILE: change the policy in one locked
 * transaction, and list it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "command.h"
#include <bpf/bpf.h>
#include "json.h"
#include "lease.h"
#include "log.h"
#include "parse.h"
#include "pin.h"
#include "policy.h"
#include "rule.h"
#include "stats.h"

/* Longest line -f accepts, without its newline. */

static const char rule_usage[] =
"Usage: sluice rule add [name NAME] [src PREFIX] [dport PORT|LO-HI]\n"
"                       [proto tcp|udp|icmp|any] [pps N [burst N]]\n"
"                       [bps N[k|m|g]] [bburst BYTES]\n"
"                       [conn-rate N [conn-burst N]] [conns N] [key src|rule]\n"
"                       [mask4 LEN] [mask6 LEN] [action drop|count] [ban SECONDS]\n"
"                       [global]\n"
"       sluice rule del ID|NAME\n"
"       sluice rule list [--json]\n"
"\n"
"A rule matches packets by source prefix, destination port (or range) and\n"
"protocol; each part left out matches anything. Every rule that matches a\n"
"packet applies, and the packet passes only if all of them admit it. A rule\n"
"needs at least one limit: pps, bps, conn-rate or conns.\n"
"\n"
"  pps N        packets per second (k, m, g suffixes: x1000)\n"
"  burst N      packets that may arrive at once (default: one second of pps)\n"
"  bps N        bits per second\n"
"  bburst B     bytes that may arrive at once (default: one second of bps;\n"
"               at least 1518, one full-size frame)\n"
"  conn-rate N  new TCP connections per second: a SYN over it is dropped\n"
"  conn-burst N connections that may open at once (default: one second of\n"
"               conn-rate)\n"
"  conns N      concurrent TCP connections: a SYN that would open one more is\n"
"               dropped; established connections are never cut. Counted from\n"
"               the SYN until both FINs or an RST, or until a connection expires\n"
"               (see sluice set); needs TC egress on the interface (not --no-tc)\n"
"               to see the server's side. conn-rate and conns need proto tcp\n"
"               or any, and are keyed like the other limits.\n"
"  key src      one bucket per source address, masked to mask4 (default 32)\n"
"               or mask6 (default 64) bits: the default\n"
"  key rule     one bucket for the whole rule\n"
"  action drop  drop what is over the limit (default)\n"
"  action count dry run: count what would be dropped, pass everything\n"
"  ban S        a source dropped a burst's worth of times within one second\n"
"               goes on the deny list for S seconds (needs key src)\n"
"  global       pps, bps, conn-rate and conns are totals for every gateway\n"
"               that has a global rule of this name under the same store:\n"
"               sluiced (with a 'store' line) leases this gateway a share and\n"
"               writes it into the rule (needs name and key rule; without\n"
"               sluiced and a store the rule enforces the totals here alone)\n"
"\n"
"'rule add' prints the new rule's id. Names: letters, digits, '-', '_', '.'.\n";

static const char set_usage[] =
"Usage: sluice set [syn-timeout S] [fin-timeout S] [idle-timeout S]\n"
"                  [flows-full open|closed]\n"
"\n"
"Settings of connection tracking, for every interface. Give at least one;\n"
"the others keep their values ('sluice status' shows them all). Also valid\n"
"in 'sluice -f' files.\n"
"\n"
"  syn-timeout S   a connection whose handshake has not completed this many\n"
"                  seconds after its SYN is forgotten, and frees its place in\n"
"                  any conns limit (default 5; 1 to 86400)\n"
"  fin-timeout S   one that saw a FIN from one side only, after S seconds of\n"
"                  silence (default 30; 1 to 86400)\n"
"  idle-timeout S  an established one, after S seconds of silence (default 600;\n"
"                  1 to 2592000, thirty days)\n"
"  flows-full open|closed\n"
"                  what a SYN gets when the flow table (sluice attach\n"
"                  --flow-size) or the count table is full: open passes it,\n"
"                  untracked and outside any conns limit (the default); closed\n"
"                  drops it. Either way 'sluice stats' counts it as table_full,\n"
"                  and closed also as a flow_full drop.\n";

static const char allow_usage[] =
"Usage: sluice allow add|del PREFIX\n"
"       sluice allow list [--json]\n"
"\n"
"Sources on the allow list pass without any rule applied (the deny list is\n"
"still checked first). PREFIX: 198.18.0.0/15, 2001:db8::/32, or an address.\n";

static const char deny_usage[] =
"Usage: sluice deny add PREFIX [timeout SECONDS]\n"
"       sluice deny del PREFIX\n"
"       sluice deny list [--json]\n"
"\n"
"Packets from sources on the deny list are dropped before anything else.\n"
"Timed bans that rules issue ('ban S') appear here too, and 'deny del'\n"
"lifts them. Adding a prefix that is listed already replaces its entry.\n"
"'list' shows for a ban who decided it (BY: rule:NAME, sluice-l7, or the\n"
"deciding rule at another gateway) and WHERE (local, or that gateway's\n"
"instance name: a ban sluiced applied from the fleet's store).\n";

/* One transaction: lock, load, apply every command, commit or nothing. */
struct txn {
	struct sluice_maps m;
	struct policy p;
	int lock;
};

static int txn_begin(struct txn *t)
{
	t->lock = pin_lock();
	if (t->lock < 0)
		return -1;
	if (maps_open_pinned(&t->m)) {
		pin_unlock(t->lock);
		return -1;
	}
	if (policy_load(&t->p, &t->m)) {
		maps_close(&t->m);
		pin_unlock(t->lock);
		return -1;
	}
	return 0;
}

static int txn_end(struct txn *t, int commit)
{
	int err = 0;

	if (commit)
		err = policy_commit(&t->p, &t->m);
	policy_free(&t->p);
	maps_close(&t->m);
	pin_unlock(t->lock);
	return err;
}

/* argv starts at the noun ("rule", "allow", "deny", "set"). */
static int run_policy_command(int argc, char **argv)
{
	struct command_result res;
	struct errbuf e;
	struct txn t;
	int err;

	if (need_root(argv[0]))
		return 1;
	if (txn_begin(&t))
		return 1;
	err = command_apply(&t.p, argc, argv, &res, &e);
	if (err) {
		txn_end(&t, 0);
		pr_err("%s", e.msg);
		return err == -EINVAL || err == -ERANGE ? EXIT_USAGE : 1;
	}
	if (txn_end(&t, 1))
		return 1;
	if (res.added_rule)
		printf("%u\n", res.rule_id);
	return 0;
}

static void print_rules(const struct policy *p, const struct sluice_maps *m)
{
	char desc[512];
	int slot;

	if (cli.json) {
		struct json j;

		json_init(&j, stdout);
		json_arr_begin(&j, NULL);
		for (slot = 0; slot < SLUICE_MAX_RULES; slot++) {
			const struct sluice_rule *r = &p->rules[slot];
			struct sluice_rule_stats st = {};

			if (!policy_rule_live(p, slot))
				continue;
			stats_rule(m, (__u32)slot, &st);
			rule_describe(r, desc, sizeof(desc));
			json_obj_begin(&j, NULL);
			json_u64(&j, "id", r->id);
			json_str(&j, "name", r->name);
			json_str(&j, "match", desc);
			json_str(&j, "proto", rule_proto_name(r->proto));
			json_u64(&j, "dport_lo", r->dport_lo);
			json_u64(&j, "dport_hi", r->dport_hi);
			json_u64(&j, "pps", r->pps);
			json_u64(&j, "burst", r->burst);
			json_u64(&j, "bps", r->bps);
			json_u64(&j, "bburst", r->bburst);
			json_u64(&j, "conn_rate", r->conn_rate);
			json_u64(&j, "conn_burst", r->conn_burst);
			json_u64(&j, "conns", r->conns);
			json_str(&j, "key", r->flags & SLUICE_RULE_KEY_SRC ? "src" : "rule");
			json_u64(&j, "mask4", r->mask4);
			json_u64(&j, "mask6", r->mask6);
			json_str(&j, "action", r->flags & SLUICE_RULE_ACTION_COUNT ? "count" : "drop");
			json_u64(&j, "ban", r->ban_secs);
			if (r->flags & SLUICE_RULE_GLOBAL)
				cli_fleet_json(&j, m, (__u32)slot, r->id, p->now_ns);
			else
				json_null(&j, "global");
			json_obj_end(&j);
		}
		json_arr_end(&j);
		json_end(&j);
		return;
	}
	printf("%-5s %-16s %s\n", "ID", "NAME", "RULE");
	for (slot = 0; slot < SLUICE_MAX_RULES; slot++) {
		if (!policy_rule_live(p, slot))
			continue;
		rule_describe(&p->rules[slot], desc, sizeof(desc));
		printf("%-5u %-16s %s\n", p->rules[slot].id,
		       p->rules[slot].name[0] ? p->rules[slot].name : "-", desc);
		if (p->rules[slot].flags & SLUICE_RULE_GLOBAL) {
			cli_fleet_line(m, (__u32)slot, p->rules[slot].id, p->now_ns, desc, sizeof(desc));
			printf("%-5s %-16s global: %s\n", "", "", desc);
		}
	}
}

/* Who decided a deny entry and where: "rule:NAME" (or "rule:ID"), "sluice-l7",
 * or a fleet ban's origin (sluice_ban_origin); where is "local" for a
 * decision of this gateway. A static entry has neither ("-"). */
static void deny_origin(const struct policy *p, const struct sluice_maps *m,
			const struct list_entry *le, char *by, char *where, size_t len)
{
	const struct sluice_deny_val *d = &le->deny;
	struct sluice_ban_origin o;
	struct sluice_lpm_key k;
	const char *name;

	snprintf(by, len, "-");
	snprintf(where, len, "-");
	if (d->kind != SLUICE_DENY_BAN)
		return;
	snprintf(where, len, "local");
	if (d->rule_id == SLUICE_BAN_BY_L7) {
		snprintf(by, len, "sluice-l7");
	} else if (d->rule_id == SLUICE_BAN_BY_FLEET) {
		prefix_to_lpm(&le->pfx, 0, &k);
		if (m->ban_origin >= 0 && !bpf_map_lookup_elem(m->ban_origin, &k, &o) &&
		    o.expires_ns == d->expires_ns) {
			snprintf(by, len, "%.*s", SLUICE_BAN_ORIGIN_LEN, o.by);
			snprintf(where, len, "%.*s", SLUICE_BAN_ORIGIN_LEN, o.where);
		} else {
			snprintf(by, len, "fleet");
			snprintf(where, len, "unknown");
		}
	} else {
		name = policy_rule_name(p, d->rule_id);
		if (*name)
			snprintf(by, len, "rule:%.*s", SLUICE_NAME_LEN, name);
		else
			snprintf(by, len, "rule:%u", d->rule_id);
	}
}

static void print_list(const struct policy *p, const struct sluice_maps *m, int deny)
{
	const struct entry_list *l = deny ? &p->deny : &p->allow;
	char pfx[PREFIX_STRLEN], by[SLUICE_BAN_ORIGIN_LEN + 8], where[SLUICE_BAN_ORIGIN_LEN + 8];
	size_t i;

	if (cli.json) {
		struct json j;

		json_init(&j, stdout);
		json_arr_begin(&j, NULL);
		for (i = 0; i < l->n; i++) {
			const struct list_entry *le = &l->v[i];

			if (!policy_entry_live(le))
				continue;
			json_obj_begin(&j, NULL);
			json_str(&j, "prefix", prefix_str(&le->pfx, pfx, sizeof(pfx)));
			if (deny) {
				json_str(&j, "kind", le->deny.kind == SLUICE_DENY_BAN ? "ban" : "static");
				if (le->deny.expires_ns) {
					json_u64(&j, "expires_in", (le->deny.expires_ns - p->now_ns + 999999999ULL) / 1000000000ULL);
					json_u64(&j, "expires_in_ms", (le->deny.expires_ns - p->now_ns + 999999ULL) / 1000000ULL);
				} else {
					json_null(&j, "expires_in");
				}
				if (le->deny.kind == SLUICE_DENY_BAN) {
					deny_origin(p, m, le, by, where, sizeof(by));
					json_str(&j, "by", by);
					json_str(&j, "where", where);
					if (le->deny.rule_id == SLUICE_BAN_BY_FLEET)
						json_bool(&j, "fleet", 1);
					else if (le->deny.rule_id != SLUICE_BAN_BY_L7)
						json_u64(&j, "rule_id", le->deny.rule_id);
				}
			}
			json_obj_end(&j);
		}
		json_arr_end(&j);
		json_end(&j);
		return;
	}
	if (deny)
		printf("%-44s %-7s %-10s %-20s %s\n", "PREFIX", "KIND", "EXPIRES", "BY", "WHERE");
	for (i = 0; i < l->n; i++) {
		const struct list_entry *le = &l->v[i];
		char exp[32];

		if (!policy_entry_live(le))
			continue;
		if (!deny) {
			printf("%s\n", prefix_str(&le->pfx, pfx, sizeof(pfx)));
			continue;
		}
		if (le->deny.expires_ns)
			snprintf(exp, sizeof(exp), "%llus",
				 (unsigned long long)((le->deny.expires_ns - p->now_ns + 999999999ULL) / 1000000000ULL));
		else
			snprintf(exp, sizeof(exp), "never");
		deny_origin(p, m, le, by, where, sizeof(by));
		printf("%-44s %-7s %-10s %-20s %s\n", prefix_str(&le->pfx, pfx, sizeof(pfx)),
		       le->deny.kind == SLUICE_DENY_BAN ? "ban" : "static", exp, by, where);
	}
}

/* "rule list", "allow list", "deny list": read-only, no lock. */
static int run_list(const char *noun, int argc, char **argv)
{
	struct sluice_maps m;
	struct policy p;

	if (argc) {
		pr_err("%s list: unexpected '%s' (takes only --json)", noun, argv[0]);
		return EXIT_USAGE;
	}
	if (need_root(noun))
		return 1;
	if (maps_open_pinned(&m))
		return 1;
	if (policy_load(&p, &m)) {
		maps_close(&m);
		return 1;
	}
	if (!strcmp(noun, "rule"))
		print_rules(&p, &m);
	else
		print_list(&p, &m, !strcmp(noun, "deny"));
	policy_free(&p);
	maps_close(&m);
	return 0;
}

static int noun_command(const char *noun, const char *usage, int argc, char **argv)
{
	char *words[COMMAND_MAX_WORDS + 1];
	int i;

	take_json_flag(&argc, argv);
	if (has_help_flag(argc, argv)) {
		fputs(usage, stdout);
		return 0;
	}
	if (!argc) {
		pr_err("%s: missing subcommand (see sluice %s --help)", noun, noun);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[0], "list"))
		return run_list(noun, argc - 1, argv + 1);
	if (strcmp(argv[0], "add") && strcmp(argv[0], "del")) {
		pr_err("%s: unknown subcommand '%s' (expected add, del or list)", noun, argv[0]);
		return EXIT_USAGE;
	}
	if (argc > COMMAND_MAX_WORDS) {
		pr_err("%s: too many words", noun);
		return EXIT_USAGE;
	}
	words[0] = (char *)noun;
	for (i = 0; i < argc; i++)
		words[i + 1] = argv[i];
	return run_policy_command(argc + 1, words);
}

int cmd_set(int argc, char **argv)
{
	char *words[COMMAND_MAX_WORDS + 1];
	int i;

	if (has_help_flag(argc, argv)) {
		fputs(set_usage, stdout);
		return 0;
	}
	if (argc + 1 > COMMAND_MAX_WORDS) {
		pr_err("set: too many words");
		return EXIT_USAGE;
	}
	words[0] = (char *)"set";
	for (i = 0; i < argc; i++)
		words[i + 1] = argv[i];
	return run_policy_command(argc + 1, words);
}

int cmd_rule(int argc, char **argv) { return noun_command("rule", rule_usage, argc, argv); }
int cmd_allow(int argc, char **argv) { return noun_command("allow", allow_usage, argc, argv); }
int cmd_deny(int argc, char **argv) { return noun_command("deny", deny_usage, argc, argv); }

struct file_ctx {
	struct txn *t;
	unsigned int applied;
};

/* One line of `sluice -f`: a policy command, applied to the transaction. */
static int file_line(int n, char **words, unsigned int lineno, void *arg, struct errbuf *e)
{
	struct file_ctx *fc = arg;
	struct command_result res;
	int err;

	(void)lineno;
	if (!command_is_policy(n, words))
		return errf(e, -EINVAL, "'%s%s%s' is not allowed in a file "
			    "(only rule add|del, allow add|del, deny add|del, set)",
			    words[0], n > 1 ? " " : "", n > 1 ? words[1] : "");
	err = command_apply(&fc->t->p, n, words, &res, e);
	if (!err)
		fc->applied++;
	return err;
}

int cmd_file(const char *path)
{
	unsigned int lineno = 0;
	struct file_ctx fc = { 0 };
	struct errbuf e;
	struct txn t;
	FILE *f;
	int err;

	f = fopen(path, "r");
	if (!f) {
		pr_err("-f %s: %s", path, strerror(errno));
		return 1;
	}
	if (need_root("-f") || txn_begin(&t)) {
		fclose(f);
		return 1;
	}
	fc.t = &t;
	err = parse_lines(f, file_line, &fc, &lineno, &e);
	fclose(f);
	if (err) {
		txn_end(&t, 0);
		pr_err("%s:%u: %s (nothing from the file was applied)", path, lineno, e.msg);
		return EXIT_USAGE;
	}
	if (txn_end(&t, 1))
		return 1;
	printf("applied %u command(s) from %s\n", fc.applied, path);
	return 0;
}
