/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* log.h - one logger for the CLI, the tests and libbpf's own messages.
 * Errors always print; libbpf's chatter only with -v. */
#ifndef SLUICE_LOG_H
#define SLUICE_LOG_H

enum log_level { LOG_ERR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG };

void log_init(const char *prog, enum log_level level);
/* The daemon: "prog: info: ..." (a level word on every line), and libbpf's
 * messages gated on their own level, since its default level shows info. */
void log_show_levels(int on);
void log_libbpf_level(enum log_level level);
void log_msg(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define pr_err(...)  log_msg(LOG_ERR, __VA_ARGS__)
#define pr_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define pr_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define pr_dbg(...)  log_msg(LOG_DEBUG, __VA_ARGS__)

/* Error text for functions that report to a caller (the -f parser names the
 * file and line around it). */
#define ERRBUF_LEN 256
struct errbuf {
	char msg[ERRBUF_LEN];
};
int errf(struct errbuf *e, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
