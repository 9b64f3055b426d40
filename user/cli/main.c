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
#include "version.h"

struct cli cli;

static const char usage[] =
"Usage: sluice [-v] COMMAND [ARGS]\n"
"       sluice [-v] -f FILE\n"
"\n"
"Attach an XDP rate limiter to interfaces and tune it. Everything is kept in\n"
"maps pinned under " "/sys/fs/bpf/sluice" "; one policy serves every attached\n"
"interface, and it outlives this command.\n"
"\n"
"Commands:\n"
"  attach DEV [--mode native|generic|auto] [--no-tc] [--state-size N]\n"
"             [--insert-rate N] [--flow-size N]\n"
"  detach DEV\n"
"  status [--json]\n"
"  rule add [name NAME] [src PREFIX] [dport PORT|LO-HI] [proto tcp|udp|icmp|any]\n"
"           [pps N [burst N]] [bps N[k|m|g]] [bburst BYTES]\n"
"           [conn-rate N [conn-burst N]] [conns N]\n"
"           [key src|rule] [mask4 LEN] [mask6 LEN] [action drop|count] [ban SECONDS]\n"
"  rule del ID|NAME\n"
"  rule list [--json]\n"
"  allow add|del PREFIX        allow list [--json]\n"
"  deny add PREFIX [timeout SECONDS]\n"
"  deny del PREFIX             deny list [--json]\n"
"  set [syn-timeout S] [fin-timeout S] [idle-timeout S] [flows-full open|closed]\n"
"  stats [--json]\n"
"  top [--count N] [--once] [--json]\n"
"  conns [--count N] [--interval MS] [--json]\n"
"                              keys with the most concurrent connections\n"
"  signals [--interval MS] [--json]\n"
"                              backend latency and errors per service port\n"
"  unload                      detach everywhere and remove all pinned state\n"
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

static const struct {
	const char *name;
	int (*fn)(int argc, char **argv);
} commands[] = {
	{ "attach", cmd_attach },
	{ "detach", cmd_detach },
	{ "status", cmd_status },
	{ "rule", cmd_rule },
	{ "allow", cmd_allow },
	{ "deny", cmd_deny },
	{ "stats", cmd_stats },
	{ "top", cmd_top },
	{ "set", cmd_set },
	{ "conns", cmd_conns },
	{ "signals", cmd_signals },
	{ "unload", cmd_unload },
};

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
			fputs(usage, stdout);
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
		fputs(usage, stderr);
		return EXIT_USAGE;
	}
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(argv[a], commands[i].name))
			return commands[i].fn(argc - a - 1, argv + a + 1);
	pr_err("unknown command '%s' (see sluice --help)", argv[a]);
	return EXIT_USAGE;
}
