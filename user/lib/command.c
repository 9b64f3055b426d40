// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include "command.h"
#include "parse.h"
#include "rule.h"

int command_is_policy(int argc, char **argv)
{
	if (argc >= 1 && !strcmp(argv[0], "set"))
		return 1;
	if (argc < 2)
		return 0;
	if (!strcmp(argv[0], "rule"))
		return !strcmp(argv[1], "add") || !strcmp(argv[1], "del");
	if (!strcmp(argv[0], "allow") || !strcmp(argv[0], "deny"))
		return !strcmp(argv[1], "add") || !strcmp(argv[1], "del");
	return 0;
}

static int list_command(struct policy *p, int argc, char **argv, struct errbuf *e)
{
	int is_allow = !strcmp(argv[0], "allow");
	int is_add = !strcmp(argv[1], "add");
	struct prefix pfx;
	__u64 timeout = 0;
	int err;

	if (argc < 3)
		return errf(e, -EINVAL, "%s %s: missing PREFIX", argv[0], argv[1]);
	err = prefix_parse(argv[2], &pfx, e);
	if (err)
		return err;
	if (!is_allow && is_add && argc == 5 && !strcmp(argv[3], "timeout")) {
		err = parse_u64(argv[4], 1, RULE_MAX_BAN_SECS, 0, "timeout", &timeout, e);
		if (err)
			return err;
		argc = 3;
	}
	if (argc > 3)
		return errf(e, -EINVAL, "%s %s: unexpected '%s'%s", argv[0], argv[1], argv[3],
			    !is_allow && is_add ? " (expected: timeout SECONDS)" : "");
	if (is_allow)
		return is_add ? policy_allow_add(p, &pfx, e) : policy_allow_del(p, &pfx, e);
	return is_add ? policy_deny_add(p, &pfx, timeout, e) : policy_deny_del(p, &pfx, e);
}

/* set [syn-timeout S] [fin-timeout S] [idle-timeout S] [flows-full open|closed] */
static int set_command(struct policy *p, int argc, char **argv, struct errbuf *e)
{
	static const struct {
		const char *word;
		__u64 max_s;
		size_t off;
	} timeouts[] = {
		{ "syn-timeout", SET_MAX_SYN_TIMEOUT_S, offsetof(struct sluice_config, syn_timeout_ns) },
		{ "fin-timeout", SET_MAX_FIN_TIMEOUT_S, offsetof(struct sluice_config, fin_timeout_ns) },
		{ "idle-timeout", SET_MAX_IDLE_TIMEOUT_S, offsetof(struct sluice_config, idle_timeout_ns) },
	};
	struct sluice_config cfg = p->cfg; /* applied only if every word is good */
	int seen[4] = { 0 };
	size_t t;
	int i, err;

	if (argc < 2)
		return errf(e, -EINVAL, "set: nothing to set (expected syn-timeout, fin-timeout, "
			    "idle-timeout or flows-full; see sluice set --help)");
	for (i = 1; i < argc; i += 2) {
		const char *word = argv[i];

		for (t = 0; t < 4; t++)
			if (!strcmp(word, t < 3 ? timeouts[t].word : "flows-full"))
				break;
		if (t == 4)
			return errf(e, -EINVAL, "set: unknown setting '%s' (expected syn-timeout, "
				    "fin-timeout, idle-timeout or flows-full)", word);
		if (seen[t]++)
			return errf(e, -EINVAL, "set: '%s' given twice", word);
		if (i + 1 >= argc)
			return errf(e, -EINVAL, "set: '%s' needs a value", word);
		if (t == 3) {
			if (!strcmp(argv[i + 1], "open"))
				cfg.flows_full = SLUICE_FULL_OPEN;
			else if (!strcmp(argv[i + 1], "closed"))
				cfg.flows_full = SLUICE_FULL_CLOSED;
			else
				return errf(e, -EINVAL, "set: bad flows-full '%s': expected open "
					    "(pass SYNs untracked) or closed (drop them)", argv[i + 1]);
		} else {
			struct errbuf why;
			__u64 secs;

			err = parse_u64(argv[i + 1], 1, timeouts[t].max_s, 0, word, &secs, &why);
			if (err)
				return errf(e, err, "set: %s (seconds, 1 to %llu)", why.msg,
					    (unsigned long long)timeouts[t].max_s);
			*(__u64 *)((char *)&cfg + timeouts[t].off) = secs * 1000000000ULL;
		}
	}
	p->cfg = cfg;
	p->cfg_changed = 1;
	return 0;
}

int command_apply(struct policy *p, int argc, char **argv, struct command_result *res,
		  struct errbuf *e)
{
	struct sluice_rule r;
	int err;

	memset(res, 0, sizeof(*res));
	if (!command_is_policy(argc, argv))
		return errf(e, -EINVAL, "unknown command '%s%s%s'", argc ? argv[0] : "",
			    argc > 1 ? " " : "", argc > 1 ? argv[1] : "");
	if (!strcmp(argv[0], "set"))
		return set_command(p, argc, argv, e);
	if (!strcmp(argv[0], "rule")) {
		if (!strcmp(argv[1], "del")) {
			if (argc != 3)
				return errf(e, -EINVAL, "rule del: expected exactly one ID or NAME");
			return policy_rule_del(p, argv[2], e);
		}
		err = rule_parse(argc - 2, argv + 2, &r, e);
		if (err)
			return err;
		err = policy_rule_add(p, &r, &res->rule_id, e);
		if (!err)
			res->added_rule = 1;
		return err;
	}
	return list_command(p, argc, argv, e);
}
