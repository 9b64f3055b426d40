/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* opts.h - a command's options, declared once in a table that both the
 * parser and the --help text read: an option cannot be accepted and left out
 * of the help, or documented and not accepted. (Model: xdp-tools
 * lib/util/params.h, struct prog_option.) */
#ifndef SLUICE_CLI_OPTS_H
#define SLUICE_CLI_OPTS_H

#include <stddef.h>
#include <stdio.h>
#include <linux/types.h>

enum cli_opt_kind {
	CLI_FLAG, /* --once: sets an int to 1 */
	CLI_U64,  /* --count N: a __u64 in [min, max], k/m/g suffixes if suffix */
	CLI_ENUM, /* --mode native|generic|auto: an int, the chosen word's value */
};

struct cli_choice {
	const char *name;
	int value;
};

struct cli_opt {
	const char *name;  /* without its dashes: "state-size"; NULL ends the table */
	char short_name;   /* 'j' for -j, or 0 */
	enum cli_opt_kind kind;
	size_t off;        /* offsetof() its value in the command's option struct */
	const char *arg;   /* what the value is called in the help: "N", "MS" */
	const char *help;  /* wrapped to fit the help's column; '\n' breaks a line */
	/* CLI_U64: the bounds and the name parse_u64() gives in its messages */
	__u64 min, max;
	int suffixes;
	const char *what;
	/* CLI_ENUM: the words, ended by { NULL } (their names are the help's arg) */
	const struct cli_choice *choices;
};

struct cli_cmd {
	const char *name;        /* "attach" */
	const char *args;        /* the positional words in the usage: "DEV", or NULL */
	int min_args, max_args;  /* how many there may be */
	const char *about;       /* the paragraphs between the usage and the options */
	const struct cli_opt *opts;
};

/* cli_parse() returns the count of positional words, or one of these. */
#define CLI_HELP (-1) /* --help: the usage is on stdout; exit 0 */
#define CLI_BAD (-2)  /* a usage error, said on stderr; exit EXIT_USAGE */

/* Reads argv (the words after the command's name) into cfg, the command's
 * option struct with its defaults set, and points args[] at the positional
 * words (room for c->max_args). Options and positional words may come in any
 * order; -h, --help anywhere (or "help" first) prints the usage instead. */
int cli_parse(const struct cli_cmd *c, int argc, char **argv, void *cfg, char **args);

/* "attach DEV [--mode native|generic|auto] [--no-tc] ...", printed from
 * column indent and wrapped to fit 80 columns, the continuation lines lined
 * up after the positional words; no newline at the end. Returns the column
 * where it ends. */
int cli_synopsis(const struct cli_cmd *c, FILE *f, int indent);
/* The whole --help text: usage, about, one entry per option. */
void cli_usage(const struct cli_cmd *c, FILE *f);

#endif
