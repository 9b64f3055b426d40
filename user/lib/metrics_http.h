/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * metrics_http.h - a minimal HTTP/1.1 server for Prometheus scrapes, built
 * to sit in its program's event loop (user/lib/loop.h).
 *
 * It answers GET (and HEAD) /metrics with 200 and the renderer's text, any
 * other path with 404, other methods with 405, a request that does not parse
 * with 400 and one whose head passes METRICS_HTTP_MAX_REQUEST bytes with 431.
 * Every response closes the connection. All sockets are non-blocking
 * handlers on the caller's loop, so a slow client never blocks the loop or
 * another client: it is closed after METRICS_HTTP_TIMEOUT_MS without
 * progress (a loop timer per client), and when METRICS_HTTP_MAX_CONNS are
 * open the oldest makes way for a new one.
 *
 * Usage:
 *   struct metrics_http *h;
 *   metrics_http_open(loop, "127.0.0.1:9464", 0, render, arg, &h);
 *   ... loop_run(loop) serves it ...
 *   metrics_http_close(h);
 */
#ifndef SLUICE_METRICS_HTTP_H
#define SLUICE_METRICS_HTTP_H

#include "metrics.h"

#define METRICS_HTTP_DEFAULT_ADDR "127.0.0.1:9464"
#define METRICS_HTTP_MAX_REQUEST 8192
#define METRICS_HTTP_MAX_CONNS 16
#define METRICS_HTTP_TIMEOUT_MS 10000

struct metrics_http;

/* Fills out with the response body (out is empty on entry). 0, or a
 * negative errno: the client gets 500. */
typedef int (*metrics_render_fn)(struct buf *out, void *arg);

struct loop;

/* addr_port: "127.0.0.1:9464", "[::1]:9464", "[::1]" or "127.0.0.1" (port
 * 9464), NULL = METRICS_HTTP_DEFAULT_ADDR. Numeric addresses only; port 0
 * picks a free port (see metrics_http_port). A wildcard address (0.0.0.0,
 * [::]) is refused with -EPERM unless allow_any is 1. Scrapes call
 * render(out, arg) from loop's turns. Returns 0 or a negative errno, with a
 * message that names the address. */
int metrics_http_open(struct loop *loop, const char *addr_port, int allow_any,
		      metrics_render_fn render, void *arg, struct metrics_http **out);

/* The bound port (host order). */
unsigned int metrics_http_port(const struct metrics_http *h);

/* Closes every client and the listening socket, and leaves the loop. */
void metrics_http_close(struct metrics_http *h);

#endif
