/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* sockaddr.h - numeric "ADDR:PORT" strings to socket addresses, for every
 * address sluice's programs listen on or connect to. */
#ifndef SLUICE_SOCKADDR_H
#define SLUICE_SOCKADDR_H

#include <sys/socket.h>

/*
 * "127.0.0.1:8080", "[::1]:8080", or without the port ("127.0.0.1",
 * "[::1]") when default_port is not 0. Numeric addresses only; IPv6 needs
 * the brackets. *any is set for a wildcard address (0.0.0.0, [::],
 * [::ffff:0.0.0.0]). Returns 0 or -EINVAL.
 */
int sockaddr_parse(const char *s, unsigned int default_port, struct sockaddr_storage *ss,
		   socklen_t *len, int *any);

/* "ADDR:PORT" back from a socket address ("[v6]:port" for IPv6). */
const char *sockaddr_str(const struct sockaddr_storage *ss, char *buf, size_t len);

#endif
