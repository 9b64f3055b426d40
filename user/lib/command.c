// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <errno.h>
#include <string.h>
#include "command.h"
#include "parse.h"
#include "rule.h"

int command_is_policy(int argc, char **argv)
{
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

int command_apply(struct policy *p, int argc, char **argv, struct command_result *res,
		  struct errbuf *e)
{
	struct sluice_rule r;
	int err;

	memset(res, 0, sizeof(*res));
	if (!command_is_policy(argc, argv))
		return errf(e, -EINVAL, "unknown command '%s%s%s'", argc ? argv[0] : "",
			    argc > 1 ? " " : "", argc > 1 ? argv[1] : "");
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
