/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * url.h - a backend's address as written in sluice-l7's file:
 *
 *   http://HOST[:PORT][/]     plain HTTP, port 80 by default
 *   https://HOST[:PORT][/]    HTTP over TLS, port 443 by default
 *   ADDR:PORT                 the older form: plain HTTP to a numeric
 *                             address ("10.0.0.5:8000", "[::1]:8000")
 *
 * HOST is a DNS name, an IPv4 address, or an IPv6 address in brackets. The
 * scheme and the name are case-insensitive (the name is kept lowercased).
 * Refused, each with its reason: other schemes, user:password@, a path
 * other than "/", a query or fragment, a port outside 1-65535, an empty or
 * malformed host.
 */
#ifndef SLUICE_URL_H
#define SLUICE_URL_H

#include "log.h"

#define URL_HOST_LEN 254              /* a DNS name is at most 253 characters */

enum url_host_kind { URL_HOST_NAME, URL_HOST_IPV4, URL_HOST_IPV6 };

struct backend_url {
	int tls;                          /* 1: https */
	char host[URL_HOST_LEN];          /* the name or address, IPv6 without brackets */
	enum url_host_kind kind;
	unsigned int port;
};

/* 0, or -EINVAL with the reason in e ("backend 'ftp://x': unknown scheme
 * 'ftp' (use http:// or https://)"). */
int url_parse(const char *s, struct backend_url *u, struct errbuf *e);

/* "https://api.example.com:443", "http://[::1]:8000": the canonical form,
 * with the port, for messages and metrics labels. */
const char *url_str(const struct backend_url *u, char *buf, size_t len);

#endif
