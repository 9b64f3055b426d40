// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * store_config.c - the `store` directive, shared by sluiced.conf and
 * sluice-l7's file, and the password file.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include "log.h"
#include "parse.h"
#include "store.h"

#define STORE_MAX_TIMEOUT_MS 10000

static int word_ok(const char *s)
{
	if (!*s)
		return 0;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr("-_.", *s))
			return 0;
	return 1;
}

/* ADDR:PORT (IPv6 in brackets) or unix:PATH. A host name is refused: the
 * store is named by address so a DNS outage cannot take the limits with it. */
static int parse_addr(const char *a, struct store_config *c, struct errbuf *e)
{
	unsigned char buf[sizeof(struct in6_addr)];
	const char *colon;
	char host[STORE_ADDR_LEN];
	__u64 port;
	size_t hl;

	if (strlen(a) >= sizeof(c->addr))
		return errf(e, -ENAMETOOLONG, "store: address '%.40s...' is too long", a);
	snprintf(c->addr, sizeof(c->addr), "%s", a);
	if (!strncmp(a, "unix:", 5)) {
		if (a[5] != '/')
			return errf(e, -EINVAL, "store: unix socket '%s': give an absolute path "
				    "(unix:/run/redis/redis.sock)", a + 5);
		snprintf(c->path, sizeof(c->path), "%s", a + 5);
		return 0;
	}
	if (a[0] == '[') {
		const char *rb = strchr(a, ']');

		if (!rb || rb[1] != ':')
			return errf(e, -EINVAL, "store: address '%s': an IPv6 address goes in "
				    "brackets with a port: [::1]:6379", a);
		hl = (size_t)(rb - a - 1);
		colon = rb + 1;
		memcpy(host, a + 1, hl);
	} else {
		colon = strrchr(a, ':');
		if (!colon)
			return errf(e, -EINVAL, "store: address '%s': expected ADDR:PORT or "
				    "unix:PATH (127.0.0.1:6379)", a);
		hl = (size_t)(colon - a);
		memcpy(host, a, hl);
	}
	host[hl] = '\0';
	if (inet_pton(AF_INET, host, buf) != 1 && inet_pton(AF_INET6, host, buf) != 1)
		return errf(e, -EINVAL, "store: address '%s': '%s' is not a numeric IPv4 or IPv6 "
			    "address", a, host);
	if (parse_u64(colon + 1, 1, 65535, 0, "store port", &port, e))
		return -EINVAL;
	snprintf(c->host, sizeof(c->host), "%s", host);
	c->port = (unsigned int)port;
	return 0;
}

int store_config_parse(int n, char **w, struct store_config *c, struct errbuf *e)
{
	int i;

	memset(c, 0, sizeof(*c));
	if (n < 3 || strcmp(w[1], "redis"))
		return errf(e, -EINVAL, "store: expected 'store redis ADDR:PORT|unix:PATH "
			    "[password-file FILE] [prefix WORD] [instance NAME] [timeout DURATION]'");
	if (parse_addr(w[2], c, e))
		return -EINVAL;
	snprintf(c->prefix, sizeof(c->prefix), "%s", STORE_DEFAULT_PREFIX);
	c->timeout_ms = STORE_DEFAULT_TIMEOUT_MS;
	for (i = 3; i < n; i += 2) {
		const char *k = w[i], *v = i + 1 < n ? w[i + 1] : NULL;

		if (!v)
			return errf(e, -EINVAL, "store: '%s' needs a value", k);
		if (!strcmp(k, "password-file")) {
			if (v[0] != '/')
				return errf(e, -EINVAL, "store: password-file '%s': give an absolute "
					    "path", v);
			if (strlen(v) >= sizeof(c->password_file))
				return errf(e, -ENAMETOOLONG, "store: password-file: path too long");
			snprintf(c->password_file, sizeof(c->password_file), "%s", v);
		} else if (!strcmp(k, "prefix")) {
			if (!word_ok(v) || strlen(v) >= sizeof(c->prefix))
				return errf(e, -EINVAL, "store: prefix '%s': letters, digits, '-', '_' "
					    "and '.', at most %zu", v, sizeof(c->prefix) - 1);
			snprintf(c->prefix, sizeof(c->prefix), "%s", v);
		} else if (!strcmp(k, "instance")) {
			if (!word_ok(v) || strlen(v) >= sizeof(c->instance))
				return errf(e, -EINVAL, "store: instance '%s': letters, digits, '-', "
					    "'_' and '.', at most %zu", v, sizeof(c->instance) - 1);
			snprintf(c->instance, sizeof(c->instance), "%s", v);
		} else if (!strcmp(k, "timeout")) {
			if (parse_duration_ms(v, 1, STORE_MAX_TIMEOUT_MS, "store timeout",
					      &c->timeout_ms, e))
				return -EINVAL;
		} else {
			return errf(e, -EINVAL, "store: unknown option '%s' (expected password-file, "
				    "prefix, instance or timeout)", k);
		}
	}
	c->on = 1;
	return 0;
}

int store_config_equal(const struct store_config *a, const struct store_config *b)
{
	return a->on == b->on && !strcmp(a->addr, b->addr) &&
	       !strcmp(a->password_file, b->password_file) && !strcmp(a->prefix, b->prefix) &&
	       !strcmp(a->instance, b->instance) && a->timeout_ms == b->timeout_ms;
}

int store_password_read(const char *path, char *buf, size_t len, struct errbuf *e)
{
	struct stat st;
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return errf(e, -errno, "store: password-file %s: %s", path, strerror(errno));
	if (fstat(fd, &st)) {
		int err = -errno;

		close(fd);
		return errf(e, err, "store: password-file %s: %s", path, strerror(-err));
	}
	if (st.st_mode & 077)
		pr_warn("store: password-file %s is readable by others than its owner (mode %03o); "
			"chmod 600 it", path, (unsigned int)(st.st_mode & 0777));
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return errf(e, -errno, "store: password-file %s: %s", path, strerror(errno));
	buf[n] = '\0';
	if ((size_t)n == len - 1 && !strpbrk(buf, "\r\n"))
		return errf(e, -E2BIG, "store: password-file %s: the password is longer than %zu "
			    "bytes", path, len - 2);
	buf[strcspn(buf, "\r\n")] = '\0';
	if (!buf[0])
		return errf(e, -EINVAL, "store: password-file %s is empty", path);
	return 0;
}

void store_default_instance(char *buf, size_t len, const char *suffix)
{
	char host[STORE_WORD_LEN] = "";

	if (gethostname(host, sizeof(host) - 1))
		snprintf(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = '\0';
	if (suffix)
		snprintf(buf, len, "%.40s:%s", host, suffix);
	else
		snprintf(buf, len, "%s", host);
}
