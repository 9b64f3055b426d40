// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* sockaddr.c - see sockaddr.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/types.h>
#include "sockaddr.h"

int sockaddr_parse(const char *s, unsigned int default_port, struct sockaddr_storage *ss,
		   socklen_t *len, int *any)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *port = NULL, *h = s, *end;
	unsigned long p = default_port;
	size_t hl;

	if (s[0] == '[') {
		end = strchr(s, ']');
		if (!end)
			return -EINVAL;
		h = s + 1;
		hl = (size_t)(end - h);
		if (end[1] == ':')
			port = end + 2;
		else if (end[1])
			return -EINVAL;
	} else {
		end = strchr(s, ':');
		if (end && strchr(end + 1, ':'))
			return -EINVAL; /* IPv6 needs brackets: [::1]:9464 */
		hl = end ? (size_t)(end - s) : strlen(s);
		if (end)
			port = end + 1;
	}
	if (!hl || hl >= sizeof(host))
		return -EINVAL;
	memcpy(host, h, hl);
	host[hl] = '\0';
	if (!port && !default_port)
		return -EINVAL;
	if (port) {
		char *e;

		if (!*port || *port == '-' || *port == '+')
			return -EINVAL;
		errno = 0;
		p = strtoul(port, &e, 10);
		if (errno || *e || p > 65535)
			return -EINVAL;
	}
	memset(ss, 0, sizeof(*ss));
	if (s[0] != '[') {
		struct sockaddr_in *in = (struct sockaddr_in *)ss;

		if (inet_pton(AF_INET, host, &in->sin_addr) != 1)
			return -EINVAL;
		in->sin_family = AF_INET;
		in->sin_port = htons((unsigned short)p);
		*any = in->sin_addr.s_addr == htonl(INADDR_ANY);
		*len = sizeof(*in);
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
		static const __u8 mapped_any[16] = { [10] = 0xff, [11] = 0xff };

		if (inet_pton(AF_INET6, host, &in6->sin6_addr) != 1)
			return -EINVAL;
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((unsigned short)p);
		*any = !memcmp(&in6->sin6_addr, &in6addr_any, 16) ||
		       !memcmp(&in6->sin6_addr, mapped_any, 16);
		*len = sizeof(*in6);
	}
	return 0;
}

const char *sockaddr_str(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN];

	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;

		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		snprintf(buf, len, "[%s]:%u", host, ntohs(in6->sin6_port));
	} else {
		const struct sockaddr_in *in = (const struct sockaddr_in *)ss;

		inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
		snprintf(buf, len, "%s:%u", host, ntohs(in->sin_port));
	}
	return buf;
}
