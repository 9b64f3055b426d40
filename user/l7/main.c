// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * sluice-l7 - the HTTP helper of sluice: token-level policy for LLM and API
 * backends. See usage() and docs/l7.md.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "l7.h"
#include "log.h"
#include "version.h"

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: sluice-l7 -c FILE [-v] [--check]\n"
		"\n"
		"An HTTP/1.1 reverse proxy that enforces per-API-key and per-tier limits in\n"
		"front of LLM and API backends: requests per minute, tokens per minute\n"
		"(estimated from the request, reconciled from the response's usage), and\n"
		"concurrent requests, with a priority queue for the tiers. Rejections are\n"
		"429 with Retry-After and x-ratelimit-* headers and an OpenAI-style error\n"
		"body. It writes its measurements into sluice's kernel signal maps and puts\n"
		"client addresses that keep getting 429s on the XDP deny list.\n"
		"\n"
		"Options:\n"
		"  -c, --config FILE  the configuration (docs/l7-config.md); it names API\n"
		"                     keys, so keep it mode 600\n"
		"      --check        read and validate FILE, print a summary and each\n"
		"                     tier's buckets (rate, capacity: what the\n"
		"                     x-ratelimit-limit-* headers will say), and exit\n"
		"  -v, --verbose      debug messages (each connection's errors)\n"
		"  -h, --help         this text\n"
		"      --version      print the version and exit\n"
		"\n"
		"Signals: SIGHUP reloads FILE (tiers, keys, limits, timeouts; the listen,\n"
		"metrics and backend addresses need a restart); SIGINT and SIGTERM stop\n"
		"after the requests in progress finish (10 s at most; a second signal\n"
		"stops at once).\n"
		"\n"
		"Exit status: 0 on a clean stop, 1 on a runtime error, 2 on bad usage or\n"
		"a bad configuration.\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check", no_argument, NULL, 'C' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *path = NULL;
	struct l7_config cfg;
	struct errbuf e = { "" };
	static struct l7 l7;
	int check = 0, verbose = 0, opt, err;

	if (version_flag("sluice-l7", argc, argv))
		return 0;

	while ((opt = getopt_long(argc, argv, "c:vh", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			path = optarg;
			break;
		case 'C':
			check = 1;
			break;
		case 'v':
			verbose = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			/* getopt named the option; the full text is one flag away */
			fprintf(stderr, "sluice-l7: see sluice-l7 --help\n");
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "sluice-l7: unexpected argument '%s' (see --help)\n", argv[optind]);
		return 2;
	}
	if (!path) {
		fprintf(stderr, "sluice-l7: no configuration: give one with -c FILE (see --help)\n");
		return 2;
	}
	log_init("sluice-l7", verbose ? LOG_DEBUG : LOG_INFO);
	log_show_levels(1);
	log_libbpf_level(verbose ? LOG_DEBUG : LOG_WARN);

	err = l7_config_load(path, &cfg, &e);
	if (err) {
		pr_err("%s", e.msg);
		return 2;
	}
	if (check) {
		printf("%s: ok: listen %s, %u backend(s), %u tier(s), %u key(s)\n", path, cfg.listen,
		       cfg.n_backends, cfg.n_tiers, cfg.n_keys);
		l7_config_describe(&cfg, stdout);
		l7_config_warn_insecure(&cfg);
		l7_config_free(&cfg);
		return 0;
	}
	if (signal(SIGPIPE, SIG_IGN) == SIG_ERR) {
		pr_err("ignore SIGPIPE: %s", strerror(errno));
		return 1;
	}
	err = l7_open(&l7, path, &cfg);
	if (!err)
		err = l7_run(&l7);
	l7_close(&l7);
	if (!err)
		pr_info("stopped");   /* the last line: all that follows is exit(3) */
	return err ? 1 : 0;
}
