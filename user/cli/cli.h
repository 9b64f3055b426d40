/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* cli.h - what the `sluice` subcommands share. Each cmd_* takes the words
 * after its own name and returns an exit code. */
#ifndef SLUICE_CLI_H
#define SLUICE_CLI_H

#include "maps.h"

#define EXIT_USAGE 2

struct cli {
	int json;
};
extern struct cli cli;

int need_root(const char *what);
/* --json anywhere in argv: strip it and set cli.json. */
int take_json_flag(int *argc, char **argv);
int has_help_flag(int argc, char **argv);

/* The commands whose options are a table (opts.h): main's usage lists them
 * from these. */
struct cli_cmd;
extern const struct cli_cmd attach_cmd, detach_cmd, status_cmd, unload_cmd, stats_cmd, top_cmd,
	conns_cmd, signals_cmd;

int cmd_attach(int argc, char **argv);
int cmd_detach(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_unload(int argc, char **argv);
int cmd_rule(int argc, char **argv);
int cmd_allow(int argc, char **argv);
int cmd_deny(int argc, char **argv);
int cmd_file(const char *path);
int cmd_stats(int argc, char **argv);
int cmd_top(int argc, char **argv);
int cmd_set(int argc, char **argv);
int cmd_conns(int argc, char **argv);
int cmd_signals(int argc, char **argv);

/* fleet_view.c: a global rule's lease from the sluice_fleet map. */
struct json;
struct sluice_maps;
/* The "global" member: an object, or null without a lease. */
void cli_fleet_json(struct json *j, const struct sluice_maps *m, __u32 slot, __u32 id, __u64 now);
/* One line of text; -1 (and a line saying so) without a lease. */
int cli_fleet_line(const struct sluice_maps *m, __u32 slot, __u32 id, __u64 now, char *buf,
		   size_t len);

#endif
