// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * sluice - tune and inspect the XDP rate limiter through its pinned maps.
 * Subcommands dispatch from one table; each answers --help.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "cli.h"
#include "log.h"
#include "opts.h"
#include "util.h"
#include "version.h"

struct cli cli;

static const char usage_head[] =
"Usage: sluice [-v] COMMAND [ARGS]\n"
"       sluice [-v] -f FILE\n"
"\n"
"Attach an XDP rate limiter to interfaces and tune it. Everything is kept in\n"
"maps pinned under " "/sys/fs/bpf/sluice" "; one policy serves every attached\n"
"interface, and it outlives this command.\n"
"\n"
"Commands:\n";

static const char usage_tail[] =
"\n"
"Options:\n"
"  -f FILE     apply the rule/allow/deny/set commands in FILE, one per line\n"
"              (# starts a comment), as one transaction: the first bad line is\n"
"              named and nothing from the file is applied\n"
"  -v          verbose: show libbpf's messages (-vv: and its debug output)\n"
"  -h, --help  this text; 'sluice COMMAND --help' for a command\n"
"  --version   print the version and exit\n"
"\n"
"Exit status: 0 on success, 1 when an operation failed, 2 on a usage error.\n";

/* The commands, in the order of the usage. A command with an option table
 * (opts.h) has its usage line made from it; the policy commands' grammars
 * (user/lib/command.c, rule.c) are written out. */
static const struct {
	const char *name;
	int (*fn)(int argc, char **argv);
	const struct cli_cmd *opts;
	const char *synopsis; /* without an option table: the usage lines */
	const char *summary;  /* what it does, beside or under its usage */
} commands[] = {
	{ "attach", cmd_attach, &attach_cmd, NULL, NULL },
	{ "detach", cmd_detach, &detach_cmd, NULL, NULL },
	{ "status", cmd_status, &status_cmd, NULL, NULL },
	{ "rule", cmd_rule, NULL,
	  "  rule add [name NAME] [src PREFIX] [dport PORT|LO-HI] [proto tcp|udp|icmp|any]\n"
	  "           [pps N [burst N]] [bps N[k|m|g]] [bburst BYTES]\n"
	  "           [conn-rate N [conn-burst N]] [conns N]\n"
	  "           [key src|rule] [mask4 LEN] [mask6 LEN] [action drop|count] [ban SECONDS]\n"
	  "  rule del ID|NAME\n"
	  "  rule list [--json]\n", NULL },
	{ "allow", cmd_allow, NULL, "  allow add|del PREFIX        allow list [--json]\n", NULL },
	{ "deny", cmd_deny, NULL,
	  "  deny add PREFIX [timeout SECONDS]\n"
	  "  deny del PREFIX             deny list [--json]\n", NULL },
	{ "set", cmd_set, NULL,
	  "  set [syn-timeout S] [fin-timeout S] [idle-timeout S] [flows-full open|closed]\n",
	  NULL },
	{ "stats", cmd_stats, &stats_cmd, NULL, NULL },
	{ "top", cmd_top, &top_cmd, NULL, NULL },
	{ "conns", cmd_conns, &conns_cmd, NULL, "keys with the most concurrent connections" },
	{ "signals", cmd_signals, &signals_cmd, NULL,
	  "backend latency and errors per service port" },
	{ "unload", cmd_unload, &unload_cmd, NULL,
	  "detach everywhere and remove all pinned state" },
};

#define SUMMARY_COL 30

static void usage(FILE *f)
{
	size_t i;

	fputs(usage_head, f);
	for (i = 0; i < NELEM(commands); i++) {
		int col;

		if (!commands[i].opts) {
			fputs(commands[i].synopsis, f);
			continue;
		}
		fputs("  ", f);
		col = cli_synopsis(commands[i].opts, f, 2);
		if (commands[i].summary) {
			if (col + 2 > SUMMARY_COL)
				col = fprintf(f, "\n") - 1;
			fprintf(f, "%*s%s", SUMMARY_COL - col, "", commands[i].summary);
		}
		fputc('\n', f);
	}
	fputs(usage_tail, f);
}

int need_root(const char *what)
{
	if (geteuid() == 0)
		return 0;
	pr_err("%s: must be run as root (the pinned maps under /sys/fs/bpf/sluice are root-only)",
	       what);
	return -1;
}

int take_json_flag(int *argc, char **argv)
{
	int i, j;

	for (i = j = 0; i < *argc; i++) {
		if (!strcmp(argv[i], "--json") || !strcmp(argv[i], "-j"))
			cli.json = 1;
		else
			argv[j++] = argv[i];
	}
	*argc = j;
	return cli.json;
}

int has_help_flag(int argc, char **argv)
{
	int i;

	/* "help" is a command word only first ("sluice rule help"); later it
	 * may be a value, as in "rule add name help". */
	if (argc > 0 && !strcmp(argv[0], "help"))
		return 1;
	for (i = 0; i < argc; i++)
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
			return 1;
	return 0;
}

int main(int argc, char **argv)
{
	enum log_level level = LOG_WARN;
	const char *file = NULL;
	size_t i;
	int a = 1;

	if (version_flag("sluice", argc, argv))
		return 0;

	while (a < argc && argv[a][0] == '-') {
		if (!strcmp(argv[a], "-v")) {
			level = LOG_INFO;
		} else if (!strcmp(argv[a], "-vv")) {
			level = LOG_DEBUG;
		} else if (!strcmp(argv[a], "-h") || !strcmp(argv[a], "--help")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(argv[a], "-f")) {
			if (a + 1 >= argc) {
				log_init("sluice", level);
				pr_err("-f needs a FILE");
				return EXIT_USAGE;
			}
			file = argv[++a];
		} else {
			log_init("sluice", level);
			pr_err("unknown option '%s' (see sluice --help)", argv[a]);
			return EXIT_USAGE;
		}
		a++;
	}
	log_init("sluice", level);

	if (file) {
		if (a < argc) {
			pr_err("-f FILE takes no command after it (got '%s')", argv[a]);
			return EXIT_USAGE;
		}
		return cmd_file(file);
	}
	if (a >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	for (i = 0; i < NELEM(commands); i++)
		if (!strcmp(argv[a], commands[i].name))
			return commands[i].fn(argc - a - 1, argv + a + 1);
	pr_err("unknown command '%s' (see sluice --help)", argv[a]);
	return EXIT_USAGE;
}
