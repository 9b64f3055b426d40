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

#endif
