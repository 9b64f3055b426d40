// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* url.c - backend URLs; see url.h. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include "url.h"

/* A DNS name: labels of letters, digits, '-' and '_' (seen in service
 * names), 1-63 characters, not starting or ending with '-'. */
static const char *name_problem(const char *h)
{
	size_t label = 0;
	const char *p;

	if (strlen(h) > 253)
		return "longer than 253 characters";
	for (p = h; ; p++) {
		if (*p == '.' || !*p) {
			if (!label)
				return "has an empty label";
			if (p[-1] == '-')
				return "has a label ending in '-'";
			if (!*p)
				return NULL;
			label = 0;
			continue;
		}
		if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_')
			return "has a character other than letters, digits, '-', '_' and '.'";
		if (!label && *p == '-')
			return "has a label starting with '-'";
		if (++label > 63)
			return "has a label longer than 63 characters";
	}
}

static int parse_port(const char *s, const char *p, size_t n, unsigned int *out, struct errbuf *e)
{
	unsigned long v = 0;
	size_t i;

	if (!n)
		return errf(e, -EINVAL, "backend '%s': empty port after ':'", s);
	for (i = 0; i < n; i++) {
		if (!isdigit((unsigned char)p[i]))
			return errf(e, -EINVAL, "backend '%s': bad port '%.*s' (a number from 1 to "
				    "65535)", s, (int)n, p);
		v = v * 10 + (unsigned long)(p[i] - '0');
		if (v > 65535)
			break;
	}
	if (!v || v > 65535)
		return errf(e, -EINVAL, "backend '%s': port '%.*s' out of range (1 to 65535)", s,
			    (int)n, p);
	*out = (unsigned int)v;
	return 0;
}

/* HOST[:PORT] in [a, a + n); numeric: only addresses (the ADDR:PORT form). */
static int parse_authority(const char *s, const char *a, size_t n, int numeric,
			   struct backend_url *u, struct errbuf *e)
{
	const char *h = a, *colon;
	size_t hl;
	unsigned char bin[16];

	if (!n)
		return errf(e, -EINVAL, "backend '%s': no host", s);
	if (memchr(a, '@', n))
		return errf(e, -EINVAL, "backend '%s': user:password@ in the URL is not supported "
			    "(send credentials as a header)", s);
	if (a[0] == '[') {
		const char *end = memchr(a, ']', n);

		if (!end)
			return errf(e, -EINVAL, "backend '%s': '[' without ']' around the IPv6 "
				    "address", s);
		h = a + 1;
		hl = (size_t)(end - h);
		colon = end + 1 < a + n ? end + 1 : NULL;
		if (colon && *colon != ':')
			return errf(e, -EINVAL, "backend '%s': unexpected '%c' after ']'", s,
				    *colon);
		u->kind = URL_HOST_IPV6;
	} else {
		colon = memchr(a, ':', n);
		hl = colon ? (size_t)(colon - a) : n;
		if (colon && memchr(colon + 1, ':', (size_t)(a + n - colon - 1)))
			return errf(e, -EINVAL, "backend '%s': an IPv6 address goes in brackets: "
				    "http://[::1]:8000", s);
		u->kind = URL_HOST_NAME;
	}
	if (!hl)
		return errf(e, -EINVAL, "backend '%s': empty host", s);
	if (hl >= sizeof(u->host))
		return errf(e, -EINVAL, "backend '%s': host longer than %zu characters", s,
			    sizeof(u->host) - 1);
	memcpy(u->host, h, hl);
	u->host[hl] = 0;
	if (u->kind == URL_HOST_IPV6) {
		if (inet_pton(AF_INET6, u->host, bin) != 1)
			return errf(e, -EINVAL, "backend '%s': '%s' is not an IPv6 address", s,
				    u->host);
	} else if (strspn(u->host, "0123456789.") == hl) {
		if (inet_pton(AF_INET, u->host, bin) != 1)
			return errf(e, -EINVAL, "backend '%s': '%s' is not an IPv4 address", s,
				    u->host);
		u->kind = URL_HOST_IPV4;
	} else if (numeric) {
		return errf(e, -EINVAL, "backend '%s': '%.64s' is not an address (a name needs a "
			    "URL: http://%.64s%.8s)", s, u->host, u->host, colon ? colon : "");
	} else {
		const char *why;

		if (u->host[hl - 1] == '.' && hl > 1)
			u->host[--hl] = 0;  /* the root's dot: not part of SNI */
		for (size_t i = 0; i < hl; i++)
			u->host[i] = (char)tolower((unsigned char)u->host[i]);
		why = name_problem(u->host);
		if (why)
			return errf(e, -EINVAL, "backend '%s': the host name %s", s, why);
	}
	if (colon)
		return parse_port(s, colon + 1, (size_t)(a + n - colon - 1), &u->port, e);
	if (numeric)
		return errf(e, -EINVAL, "backend '%s': no port (ADDR:PORT, or a URL: http://%s)",
			    s, s);
	return 0;
}

int url_parse(const char *in, struct backend_url *u, struct errbuf *e)
{
	const char *sep = strstr(in, "://"), *a, *end;
	char s[84];  /* the input as messages show it: a long one cut, so the reason fits */

	snprintf(s, sizeof(s), "%s", in);
	if (strlen(in) >= sizeof(s))
		strcpy(s + sizeof(s) - 4, "...");
	memset(u, 0, sizeof(*u));
	if (!sep)
		return parse_authority(s, in, strlen(in), 1, u, e);
	if ((size_t)(sep - in) == 5 && !strncasecmp(in, "https", 5)) {
		u->tls = 1;
		u->port = 443;
	} else if ((size_t)(sep - in) == 4 && !strncasecmp(in, "http", 4)) {
		u->port = 80;
	} else {
		return errf(e, -EINVAL, "backend '%s': unknown scheme '%.*s' (use http:// or "
			    "https://)", s, (int)(sep - in) > 16 ? 16 : (int)(sep - in), in);
	}
	a = sep + 3;
	end = a + strcspn(a, "/?#");
	if (*end == '?' || *end == '#')
		return errf(e, -EINVAL, "backend '%s': a query or fragment is not supported", s);
	if (*end == '/' && end[1])
		return errf(e, -EINVAL, "backend '%s': a path ('%.40s') is not supported: the "
			    "client's path is sent to the backend as it is", s, end);
	return parse_authority(s, a, (size_t)(end - a), 0, u, e);
}

const char *url_str(const struct backend_url *u, char *buf, size_t len)
{
	int v6 = u->kind == URL_HOST_IPV6;

	snprintf(buf, len, "%s://%s%s%s:%u", u->tls ? "https" : "http", v6 ? "[" : "", u->host,
		 v6 ? "]" : "", u->port);
	return buf;
}
