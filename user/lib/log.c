// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <bpf/libbpf.h>
#include "log.h"

static const char *log_prog = "sluice";
static enum log_level log_level = LOG_WARN;
static enum log_level libbpf_level = LOG_WARN;
static int show_levels;
static const char *const level_names[] = { "error", "warn", "info", "debug" };

static int libbpf_print(enum libbpf_print_level lvl, const char *fmt, va_list ap)
{
	/* libbpf warnings are mostly probes of optional features; show them
	 * with -v, together with its debug output at -vv. */
	if ((lvl == LIBBPF_WARN && libbpf_level < LOG_INFO) ||
	    (lvl == LIBBPF_INFO && libbpf_level < LOG_INFO) ||
	    (lvl == LIBBPF_DEBUG && libbpf_level < LOG_DEBUG))
		return 0;
	fprintf(stderr, "%s: %slibbpf: ", log_prog, show_levels ? "debug: " : "");
	return vfprintf(stderr, fmt, ap);
}

void log_init(const char *prog, enum log_level level)
{
	log_prog = prog;
	log_level = level;
	libbpf_level = level;
	libbpf_set_print(libbpf_print);
}

void log_show_levels(int on)
{
	show_levels = on;
}

void log_libbpf_level(enum log_level level)
{
	libbpf_level = level;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	if (level > log_level)
		return;
	if (show_levels)
		fprintf(stderr, "%s: %s: ", log_prog, level_names[level]);
	else
		fprintf(stderr, "%s: ", log_prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int errf(struct errbuf *e, int err, const char *fmt, ...)
{
	va_list ap;

	if (e) {
		va_start(ap, fmt);
		vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
		va_end(ap);
	}
	return err;
}
