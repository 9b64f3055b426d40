// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* opts.c - the option tables' parser and help text (see opts.h). */
#include <stdio.h>
#include <string.h>
#include "cli.h"
#include "log.h"
#include "opts.h"
#include "parse.h"

#define HELP_WIDTH 80
/* An option whose "--name ARG" is wider than this has its help on the next line. */
#define LABEL_MAX 18

static const struct cli_opt *find_long(const struct cli_opt *o, const char *name)
{
	for (; o->name; o++)
		if (!strcmp(name, o->name))
			return o;
	return NULL;
}

static const struct cli_opt *find_short(const struct cli_opt *o, char c)
{
	for (; o->name; o++)
		if (o->short_name && o->short_name == c)
			return o;
	return NULL;
}

/* "native|generic|auto" (sep "|"), or "native, generic or auto" (sep ", ",
 * last " or ") into buf. */
static const char *choice_list(const struct cli_choice *ch, const char *sep, const char *last,
			       char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = 0;
	for (; ch->name && n < len; ch++)
		n += (size_t)snprintf(buf + n, len - n, "%s%s", !n ? "" : ch[1].name ? sep : last,
				      ch->name);
	return buf;
}

/* The value's name in the usage: the choices of an enum, else the arg. */
static const char *arg_name(const struct cli_opt *o, char *buf, size_t len)
{
	if (o->kind == CLI_ENUM)
		return choice_list(o->choices, "|", "|", buf, len);
	if (o->kind == CLI_FLAG)
		return NULL;
	return o->arg ? o->arg : "VALUE";
}

static int set_value(const struct cli_cmd *c, const struct cli_opt *o, const char *val,
		     void *cfg)
{
	char *dst = (char *)cfg + o->off;
	const struct cli_choice *ch;
	struct errbuf e;
	char words[256];

	switch (o->kind) {
	case CLI_FLAG:
		*(int *)(void *)dst = 1;
		return 0;
	case CLI_U64:
		if (parse_u64(val, o->min, o->max, o->suffixes, o->what ? o->what : o->name,
			      (__u64 *)(void *)dst, &e)) {
			pr_err("%s: %s", c->name, e.msg);
			return -1;
		}
		return 0;
	case CLI_ENUM:
		for (ch = o->choices; ch->name; ch++) {
			if (!strcmp(val, ch->name)) {
				*(int *)(void *)dst = ch->value;
				return 0;
			}
		}
		pr_err("%s: bad %s '%s': expected %s", c->name, o->what ? o->what : o->name, val,
		       choice_list(o->choices, ", ", " or ", words, sizeof(words)));
		return -1;
	}
	return -1;
}

int cli_parse(const struct cli_cmd *c, int argc, char **argv, void *cfg, char **args)
{
	int i, n = 0;

	if (has_help_flag(argc, argv)) {
		cli_usage(c, stdout);
		return CLI_HELP;
	}
	for (i = 0; i < argc; i++) {
		const char *w = argv[i];
		const struct cli_opt *o = NULL;

		if (w[0] == '-' && w[1] == '-')
			o = find_long(c->opts, w + 2);
		else if (w[0] == '-' && w[1] && !w[2])
			o = find_short(c->opts, w[1]);
		else if (n < c->max_args) {
			args[n++] = argv[i];
			continue;
		} else {
			if (c->max_args == 1)
				pr_err("%s: unexpected '%s' (one %s per command; see sluice %s --help)",
				       c->name, w, c->args, c->name);
			else if (c->max_args)
				pr_err("%s: unexpected '%s' (at most %d %s; see sluice %s --help)",
				       c->name, w, c->max_args, c->args, c->name);
			else
				pr_err("%s: unexpected '%s' (it takes no arguments; see sluice %s "
				       "--help)", c->name, w, c->name);
			return CLI_BAD;
		}
		if (!o) {
			pr_err("%s: unknown option '%s' (see sluice %s --help)", c->name, w, c->name);
			return CLI_BAD;
		}
		if (o->kind != CLI_FLAG && i + 1 >= argc) {
			char buf[256];

			pr_err("%s: %s needs a value: %s %s (see sluice %s --help)", c->name, w, w,
			       arg_name(o, buf, sizeof(buf)), c->name);
			return CLI_BAD;
		}
		if (set_value(c, o, o->kind == CLI_FLAG ? NULL : argv[++i], cfg))
			return CLI_BAD;
	}
	if (n < c->min_args) {
		pr_err("%s: missing %s (see sluice %s --help)", c->name, c->args, c->name);
		return CLI_BAD;
	}
	return n;
}

int cli_synopsis(const struct cli_cmd *c, FILE *f, int indent)
{
	const struct cli_opt *o;
	int col = indent, cont;

	col += fprintf(f, "%s", c->name);
	if (c->args)
		col += fprintf(f, " %s", c->args);
	cont = col + 1;
	for (o = c->opts; o->name; o++) {
		char item[300], buf[256];
		const char *a = arg_name(o, buf, sizeof(buf));
		int len = snprintf(item, sizeof(item), "[--%s%s%s]", o->name, a ? " " : "",
				   a ? a : "");

		if (col + 1 + len > HELP_WIDTH)
			col = fprintf(f, "\n%*s%s", cont, "", item) - 1;
		else
			col += fprintf(f, " %s", item);
	}
	return col;
}

/* Prints text from column col (where the cursor is), its words wrapped to
 * HELP_WIDTH, every further line indented to column indent; a '\n' in text
 * also starts a line. */
static void wrap(FILE *f, const char *text, int col, int indent)
{
	const char *p = text;
	int first = 1;

	while (*p) {
		size_t len = strcspn(p, " \n");

		if (!first && col + 1 + (int)len > HELP_WIDTH) {
			col = fprintf(f, "\n%*s", indent, "") - 1;
			first = 1;
		}
		col += fprintf(f, "%s%.*s", first ? "" : " ", (int)len, p);
		first = 0;
		p += len;
		if (*p == '\n' && p[1]) {
			col = fprintf(f, "\n%*s", indent, "") - 1;
			first = 1;
		}
		if (*p)
			p++;
	}
	fputc('\n', f);
}

/* "-j, --json" or "--count N" into buf; returns its length. */
static int label(const struct cli_opt *o, char *buf, size_t len)
{
	char args[256], shrt[8] = "";
	const char *a = arg_name(o, args, sizeof(args));

	if (o->short_name)
		snprintf(shrt, sizeof(shrt), "-%c, ", o->short_name);
	return snprintf(buf, len, "%s--%s%s%s", shrt, o->name, a ? " " : "", a ? a : "");
}

void cli_usage(const struct cli_cmd *c, FILE *f)
{
	const struct cli_opt *o;
	int width = 0;

	fputs("Usage: sluice ", f);
	cli_synopsis(c, f, (int)strlen("Usage: sluice "));
	fputc('\n', f);
	if (c->about)
		fprintf(f, "\n%s", c->about);
	if (!c->opts->name)
		return;
	for (o = c->opts; o->name; o++) {
		char buf[300];
		int len = label(o, buf, sizeof(buf));

		if (len <= LABEL_MAX && len > width)
			width = len;
	}
	fputc('\n', f);
	for (o = c->opts; o->name; o++) {
		char buf[300];
		int len = label(o, buf, sizeof(buf));

		/* "  LABEL  help...", the help in a column of its own */
		fprintf(f, "  %s", buf);
		if (len > width)
			fprintf(f, "\n%*s", width + 4, "");
		else
			fprintf(f, "%*s", width - len + 2, "");
		wrap(f, o->help, width + 4, width + 4);
	}
}
