// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * l7_config.c - sluice-l7's config file: see l7_config.h and
 * docs/l7-config.md. Each line is checked as it is read (its errors name
 * it); what spans lines (keys naming tiers defined later, the default tier,
 * duplicates, at least one backend and one tier) is checked once the whole
 * file is read, and still names the line at fault.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "directive.h"
#include "l7_config.h"
#include "parse.h"

#define MS_PER_S 1000ULL
#define MS_PER_DAY (86400ULL * MS_PER_S)
#define MAX_RATE 1000000000000000ULL  /* 10^15 units per period */
#define MAX_COUNT 1000000ULL          /* queue slots, clients, concurrency */
#define MAX_TOKENS 1000000000ULL
#define MAX_PRIORITY 15               /* the wait queue has 16 levels */
#define MIN_PERIOD_MS 100ULL

/* A key as read, before its tier is known (tiers may come later). */
struct pending_key {
	char key[L7_KEY_LEN];
	char tier[L7_NAME_LEN];
	unsigned int line;
};

/* A backend or listen address in comparable form. */
struct addr {
	unsigned char ip[16];    /* IPv4 as ::ffff:a.b.c.d */
	unsigned int port;
};

struct l7_parse {
	struct l7_config *c;
	struct pending_key *keys;              /* L7_MAX_KEYS */
	unsigned int n_keys;
	struct directive_seen seen;            /* line of a once-only directive, by index */
	unsigned int tier_line[L7_MAX_TIERS];
	struct addr backend[L7_MAX_BACKENDS];
	int backend_numeric[L7_MAX_BACKENDS];  /* the host is an address: backend[] holds it */
	unsigned int backend_line[L7_MAX_BACKENDS];
	struct addr listen, metrics;
	char default_tier[L7_NAME_LEN];
};

void l7_config_defaults(struct l7_config *c)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->listen, sizeof(c->listen), "127.0.0.1:8080");
	snprintf(c->metrics, sizeof(c->metrics), "127.0.0.1:9465");
	c->period_ms = 60000;
	c->queue_size = 256;
	c->queue_timeout_ms = 5000;
	c->default_max_tokens = 256;
	c->max_output_tokens = 32768;
	c->max_header_bytes = 16384;
	c->max_body_bytes = 1024 * 1024;
	c->header_timeout_ms = 10000;
	c->body_timeout_ms = 30000;
	c->idle_timeout_ms = 60000;
	c->connect_timeout_ms = 2000;
	c->backend_timeout_ms = 60000;
	c->backend_down_ms = 5000;
	c->backend_fails = 3;
	c->max_clients = 4096;
	c->deny_window_ms = 10000;
	c->deny_ban_s = 60;
	c->kernel = 1;
}

void l7_config_free(struct l7_config *c)
{
	free(c->keys);
	c->keys = NULL;
	c->n_keys = 0;
}

/* "IPv4:PORT" or "[IPv6]:PORT", numeric, port 1..65535. */
static int parse_addr(const char *what, const char *s, struct addr *a, int *wildcard,
		      struct errbuf *e)
{
	static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	char host[INET6_ADDRSTRLEN + 1];
	const char *colon = strrchr(s, ':'), *h = s;
	size_t hl;
	__u64 port;

	if (strlen(s) >= L7_ADDR_LEN)
		return errf(e, -EINVAL, "%s: address '%.20s...' is longer than %d characters",
			    what, s, L7_ADDR_LEN - 1);
	if (!colon || colon == s)
		return errf(e, -EINVAL, "%s: bad address '%s' (expected ADDR:PORT, e.g. "
			    "127.0.0.1:8080 or [::1]:8080)", what, s);
	hl = (size_t)(colon - s);
	if (s[0] == '[') {
		if (hl < 3 || s[hl - 1] != ']')
			return errf(e, -EINVAL, "%s: bad address '%s' (an IPv6 address goes in "
				    "brackets: [::1]:8080)", what, s);
		h++;
		hl -= 2;
	}
	if (hl >= sizeof(host))
		return errf(e, -EINVAL, "%s: bad address '%s'", what, s);
	memcpy(host, h, hl);
	host[hl] = '\0';
	memset(a, 0, sizeof(*a));
	if (s[0] != '[' && inet_pton(AF_INET, host, a->ip + 12) == 1)
		memcpy(a->ip, mapped, sizeof(mapped));
	else if (s[0] != '[' || inet_pton(AF_INET6, host, a->ip) != 1)
		return errf(e, -EINVAL, "%s: bad address '%s' (a numeric IPv4 address, or an "
			    "IPv6 one in brackets; no host names)", what, s);
	if (parse_u64(colon + 1, 1, 65535, 0, "port", &port, e))
		return errf(e, -EINVAL, "%s: bad port in '%s' (expected 1 to 65535)", what, s);
	a->port = (unsigned int)port;
	/* 0.0.0.0, [::] and [::ffff:0.0.0.0] all mean every address. */
	*wildcard = !memcmp(a->ip + 12, "\0\0\0\0", 4) &&
		    (!memcmp(a->ip, mapped, 12) || !memcmp(a->ip, "\0\0\0\0\0\0\0\0\0\0\0\0", 12));
	return 0;
}

static int same_addr(const struct addr *a, const struct addr *b)
{
	return a->port == b->port && !memcmp(a->ip, b->ip, sizeof(a->ip));
}

static int is_public_word(const char *w)
{
	/* "allow-any" as sluiced.conf spells it for its metrics. */
	return !strcmp(w, "public") || !strcmp(w, "allow-any");
}

/* Names: tiers appear in metrics labels and logs. */
static int check_name(const char *what, const char *s, struct errbuf *e)
{
	const char *p;

	if (strlen(s) >= L7_NAME_LEN)
		return errf(e, -EINVAL, "%s: name '%.20s...' is longer than %d characters", what,
			    s, L7_NAME_LEN - 1);
	for (p = s; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_' && *p != '.')
			return errf(e, -EINVAL, "%s: bad name '%s' (letters, digits, '-', '_' "
				    "and '.' only)", what, s);
	return 0;
}

/* What an error may show of a key: it is a secret, and logs travel. At
 * most a third of it, 4 characters, and only up to a byte that is not
 * printable. */
static const char *key_hint(const char *key, char *buf, size_t len)
{
	size_t n = strlen(key), show = n / 3 < 4 ? n / 3 : 4, i;

	for (i = 0; i < show; i++)
		if (key[i] < 0x21 || key[i] > 0x7e)
			show = i;

	snprintf(buf, len, "%.*s...", (int)show, key);
	return buf;
}

static int do_listen(void *ctx, int n, char **w, unsigned int line, struct errbuf *e)
{
	struct l7_parse *p = ctx;
	int wild;

	(void)line;
	if (n < 2 || n > 3 || (n == 3 && !is_public_word(w[2])))
		return errf(e, -EINVAL, "listen: expected ADDR:PORT [public]");
	if (parse_addr("listen", w[1], &p->listen, &wild, e))
		return -EINVAL;
	if (wild && n != 3)
		return errf(e, -EINVAL, "listen: %s accepts connections on every interface; add "
			    "'public' if that is meant", w[1]);
	snprintf(p->c->listen, sizeof(p->c->listen), "%s", w[1]);
	p->c->listen_any = n == 3;
	return 0;
}

static int do_metrics(void *ctx, int n, char **w, unsigned int line, struct errbuf *e)
{
	struct l7_parse *p = ctx;
	int wild;

	(void)line;
	if (n == 2 && !strcmp(w[1], "off")) {
		p->c->metrics[0] = '\0';
		p->c->metrics_any = 0;
		memset(&p->metrics, 0, sizeof(p->metrics));
		return 0;
	}
	if (n < 2 || n > 3 || (n == 3 && !is_public_word(w[2])))
		return errf(e, -EINVAL, "metrics: expected ADDR:PORT [public], or off");
	if (parse_addr("metrics", w[1], &p->metrics, &wild, e))
		return -EINVAL;
	if (wild && n != 3)
		return errf(e, -EINVAL, "metrics: %s serves the metrics on every interface; add "
			    "'public' if that is meant", w[1]);
	snprintf(p->c->metrics, sizeof(p->c->metrics), "%s", w[1]);
	p->c->metrics_any = n == 3;
	return 0;
}

/* A numeric host in comparable form (for duplicates and the listen check);
 * 0 for a name, which is compared as written. */
static int url_numeric(const struct backend_url *u, struct addr *a, int *wildcard)
{
	char s[L7_ADDR_LEN];
	struct errbuf e;

	if (u->kind == URL_HOST_NAME)
		return 0;
	snprintf(s, sizeof(s), u->kind == URL_HOST_IPV6 ? "[%s]:%u" : "%s:%u", u->host, u->port);
	return !parse_addr("backend", s, a, wildcard, &e);
}

/* An HTTP header name (RFC 9110 token), lowercased in place. */
static int header_name(const char *what, char *s, struct errbuf *e)
{
	if (!*s || strlen(s) >= L7_HDR_NAME_LEN)
		return errf(e, -EINVAL, "%s: header name '%.20s' is empty or longer than %d "
			    "characters", what, s, L7_HDR_NAME_LEN - 1);
	for (char *q = s; *q; q++) {
		if (!isalnum((unsigned char)*q) && !strchr("!#$%&'*+-.^_`|~", *q))
			return errf(e, -EINVAL, "%s: '%s' is not a header name", what, s);
		*q = (char)tolower((unsigned char)*q);
	}
	return 0;
}

/* Visible ASCII only: a value goes into a request head as it is. */
static int printable(const char *s)
{
	for (; *s; s++)
		if (*s < 0x21 || *s > 0x7e)
			return 0;
	return 1;
}

/* The upstream API key, read once per load: a secret, so neither the key
 * nor any part of it is ever put in a message. */
static int read_api_key(struct l7_backend *b, const char *path, struct errbuf *e)
{
	char buf[L7_SECRET_LEN + 2];
	struct stat st;
	size_t n;
	FILE *f;

	if (strlen(path) >= L7_PATH_LEN)
		return errf(e, -EINVAL, "api-key-file: path longer than %d characters",
			    L7_PATH_LEN - 1);
	f = fopen(path, "r");
	if (!f)
		return errf(e, -errno, "api-key-file %s: %s", path, strerror(errno));
	if (fstat(fileno(f), &st) || !S_ISREG(st.st_mode)) {
		fclose(f);
		return errf(e, -EINVAL, "api-key-file %s: not a regular file", path);
	}
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ' ||
		     buf[n - 1] == '\t'))
		buf[--n] = '\0';
	if (!n)
		return errf(e, -EINVAL, "api-key-file %s: empty", path);
	if (n >= L7_SECRET_LEN)
		return errf(e, -EINVAL, "api-key-file %s: longer than %d characters", path,
			    L7_SECRET_LEN - 1);
	if (!printable(buf))
		return errf(e, -EINVAL, "api-key-file %s: the key must be one line of visible "
			    "characters (no blanks inside)", path);
	if (st.st_mode & S_IROTH)
		pr_warn("api-key-file %s: readable by others (mode %03o): chmod 600 %s", path,
			(unsigned int)(st.st_mode & 0777), path);
	memcpy(b->api_key, buf, n + 1);
	snprintf(b->api_key_file, sizeof(b->api_key_file), "%s", path);
	return 0;
}

/* The options after a backend's URL, each a word and its values. */
static int backend_options(struct l7_backend *b, int n, char **w, struct errbuf *e)
{
	int i, verify_set = 0;

	for (i = 2; i < n; i++) {
		const char *o = w[i];
		int left = n - i - 1;

		if (!strcmp(o, "tls-ca") && left >= 1) {
			FILE *f;

			if (!b->url.tls)
				return errf(e, -EINVAL, "backend %s: tls-ca is for https:// backends",
					    b->name);
			if (strlen(w[++i]) >= L7_PATH_LEN)
				return errf(e, -EINVAL, "tls-ca: path longer than %d characters",
					    L7_PATH_LEN - 1);
			f = fopen(w[i], "r");
			if (!f)
				return errf(e, -errno, "tls-ca %s: %s", w[i], strerror(errno));
			fclose(f);
			snprintf(b->tls_ca, sizeof(b->tls_ca), "%s", w[i]);
		} else if (!strcmp(o, "tls-verify") && left >= 1) {
			i++;
			if (!b->url.tls)
				return errf(e, -EINVAL, "backend %s: tls-verify is for https:// "
					    "backends", b->name);
			if (strcmp(w[i], "on") && strcmp(w[i], "off"))
				return errf(e, -EINVAL, "tls-verify: expected on or off, not '%s'",
					    w[i]);
			b->tls_verify = !strcmp(w[i], "on");
			verify_set = 1;
		} else if (!strcmp(o, "header") && left >= 2) {
			struct l7_header_set *h;

			if (b->n_headers == L7_BACKEND_HEADERS)
				return errf(e, -ENOSPC, "header: more than %d per backend",
					    L7_BACKEND_HEADERS);
			h = &b->headers[b->n_headers];
			if (header_name("header", w[i + 1], e))
				return -EINVAL;
			snprintf(h->name, sizeof(h->name), "%s", w[i + 1]);
			/* Framing and routing are sluice-l7's to set. */
			if (!strcmp(h->name, "host") || !strcmp(h->name, "content-length") ||
			    !strcmp(h->name, "transfer-encoding") || !strcmp(h->name, "connection"))
				return errf(e, -EINVAL, "header: %s is set by sluice-l7, not by the "
					    "file", h->name);
			if (strlen(w[i + 2]) >= L7_HDR_VALUE_LEN || !printable(w[i + 2]))
				return errf(e, -EINVAL, "header %s: the value must be one word of "
					    "visible characters, at most %d", h->name,
					    L7_HDR_VALUE_LEN - 1);
			snprintf(h->value, sizeof(h->value), "%s", w[i + 2]);
			b->n_headers++;
			i += 2;
		} else if (!strcmp(o, "api-key-file") && left >= 1) {
			if (b->api_key[0])
				return errf(e, -EINVAL, "api-key-file: given twice");
			if (read_api_key(b, w[++i], e))
				return -EINVAL;
		} else if (!strcmp(o, "api-key-header") && left >= 1) {
			if (header_name("api-key-header", w[++i], e))
				return -EINVAL;
			snprintf(b->api_key_header, sizeof(b->api_key_header), "%s", w[i]);
			if (!strcmp(b->api_key_header, "authorization"))
				b->api_key_header[0] = '\0';   /* the default, as Bearer */
		} else if (!strcmp(o, "resolve-every") && left >= 1) {
			if (parse_duration_ms(w[++i], 1000, MS_PER_DAY, "resolve-every",
					      &b->resolve_every_ms, e))
				return -EINVAL;
		} else if (!strcmp(o, "tls-ca") || !strcmp(o, "tls-verify") ||
			   !strcmp(o, "header") || !strcmp(o, "api-key-file") ||
			   !strcmp(o, "api-key-header") || !strcmp(o, "resolve-every")) {
			return errf(e, -EINVAL, "backend %s: %s: missing value%s", b->name, o,
				    !strcmp(o, "header") ? "s (header NAME VALUE)" : "");
		} else {
			return errf(e, -EINVAL, "backend %s: unknown option '%s' (tls-ca, "
				    "tls-verify, header, api-key-file, api-key-header, "
				    "resolve-every)", b->name, o);
		}
	}
	if (b->tls_ca[0] && verify_set && !b->tls_verify)
		return errf(e, -EINVAL, "backend %s: tls-ca and tls-verify off contradict each "
			    "other (tls-ca is what verification trusts)", b->name);
	if (b->api_key_header[0] && !b->api_key[0])
		return errf(e, -EINVAL, "backend %s: api-key-header needs api-key-file", b->name);
	for (unsigned int h = 0; b->api_key[0] && h < b->n_headers; h++)
		if (!strcmp(b->headers[h].name, b->api_key_header[0] ? b->api_key_header :
			    "authorization"))
			return errf(e, -EINVAL, "backend %s: header %s would be sent besides the "
				    "api-key-file's key (drop one)", b->name, b->headers[h].name);
	return 0;
}

static int do_backend(void *ctx, int n, char **w, unsigned int line, struct errbuf *e)
{
	struct l7_parse *p = ctx;
	struct l7_config *c = p->c;
	struct l7_backend *b;
	struct addr a;
	unsigned int i;
	int wild = 0, numeric;

	if (n < 2)
		return errf(e, -EINVAL, "backend: expected a URL (https://api.example.com) or "
			    "ADDR:PORT, then options");
	if (c->n_backends == L7_MAX_BACKENDS)
		return errf(e, -ENOSPC, "backend: more than %d backends", L7_MAX_BACKENDS);
	b = &c->backends[c->n_backends];
	memset(b, 0, sizeof(*b));
	if (url_parse(w[1], &b->url, e))
		return -EINVAL;
	b->plain_addr = !strstr(w[1], "://");
	if (b->plain_addr)
		snprintf(b->name, sizeof(b->name), "%s", w[1]);
	else
		url_str(&b->url, b->name, sizeof(b->name));
	b->tls_verify = 1;
	b->resolve_every_ms = L7_RESOLVE_EVERY_MS;
	numeric = url_numeric(&b->url, &a, &wild);
	if (wild)
		return errf(e, -EINVAL, "backend: %s is a wildcard, not an address to connect "
			    "to", w[1]);
	for (i = 0; i < c->n_backends; i++)
		if (numeric ? p->backend_numeric[i] && same_addr(&p->backend[i], &a)
			    : !strcmp(c->backends[i].name, b->name))
			return errf(e, -EEXIST, "backend %s: already given on line %u", w[1],
				    p->backend_line[i]);
	if (backend_options(b, n, w, e))
		return -EINVAL;
	p->backend[c->n_backends] = numeric ? a : (struct addr){ .port = b->url.port };
	p->backend_numeric[c->n_backends] = numeric;
	p->backend_line[c->n_backends] = line;
	c->n_backends++;
	return 0;
}

static int do_key_header(void *ctx, int n, char **w, unsigned int line, struct errbuf *e)
{
	struct l7_parse *p = ctx;
	char *s, *q;

	(void)line;
	if (n != 2)
		return errf(e, -EINVAL, "key-header: expected a header NAME (e.g. x-api-key)");
	s = w[1];
	if (strlen(s) >= L7_NAME_LEN)
		return errf(e, -EINVAL, "key-header: '%.20s...' is longer than %d characters", s,
			    L7_NAME_LEN - 1);
	for (q = s; *q; q++) {
		/* An HTTP token (RFC 9110 tchar). */
		if (!isalnum((unsigned char)*q) && !strchr("!#$%&'*+-.^_`|~", *q))
			return errf(e, -EINVAL, "key-header: '%s' is not a header name", s);
		*q = (char)tolower((unsigned char)*q);
	}
	if (!strcmp(s, "authorization"))
		return errf(e, -EINVAL, "key-header: 'Authorization: Bearer KEY' is the default; "
			    "remove the line");
	snprintf(p->c->key_header, sizeof(p->c->key_header), "%s", s);
	return 0;
}

static int do_unknown_keys(void *ctx, int n, char **w, unsigned int line, struct errbuf *e)
{
	struct l7_parse *p = ctx;

	(void)line;
	if (n == 2 && !strcmp(w[1], "default"))
		p->c->refuse_unknown = 0;
	else if (n == 2 && !strcmp(w[1], "refuse"))
		p->c->refuse_unknown = 1;
	else
		return errf(e, -EINVAL, "unknown-keys: expected default or refuse");
	return 0;
}

static int do_default_tier(void *ctx, int n, char **w, unsigned int line, struct errbuf *e)
{
	struct l7_parse *p = ctx;

	(void)line;
	if (n != 2)
		return errf(e, -EINVAL, "default-tier: expected a tier NAME");
	if (check_name("default-tier", w[1], e))
		return -EINVAL;
	snprintf(p->default_tier, sizeof(p->default_tier), "%s", w[1]);
	return 0;
}

static int do_kernel(void *ctx, int n, char **w, unsigned int line, struct errbuf *e)
{
	struct l7_parse *p = ctx;

	(void)line;
	if (n == 2 && !strcmp(w[1], "on"))
		p->c->kernel = 1;
	else if (n == 2 && !strcmp(w[1], "off"))
		p->c->kernel = 0;
	else
		return errf(e, -EINVAL, "kernel: expected on or off");
	return 0;
}

static int do_store(void *ctx, int n, char **w, unsigned int line, struct errbuf *e)
{
	struct l7_parse *p = ctx;

	(void)line;
	return store_config_parse(n, w, &p->c->store, e);
}

static int do_deny_after(void *ctx, int n, char **w, unsigned int line, struct errbuf *e)
{
	struct l7_parse *p = ctx;
	struct l7_config *c = p->c;
	uint64_t ban_ms = c->deny_ban_s * MS_PER_S;
	int i, got_within = 0, got_ban = 0;
	__u64 v;

	(void)line;
	if (n == 2 && !strcmp(w[1], "off")) {
		c->deny_after = 0;
		return 0;
	}
	if (n < 2)
		return errf(e, -EINVAL, "deny-after: expected N [within DURATION] [ban DURATION], "
			    "or off");
	if (parse_u64(w[1], 1, MAX_COUNT, 1, "deny-after count", &v, e))
		return -EINVAL;
	for (i = 2; i < n; i++) {
		if (!strcmp(w[i], "within") && i + 1 < n && !got_within) {
			if (parse_duration_ms(w[++i], 1, MS_PER_DAY, "deny-after window",
					   &c->deny_window_ms, e))
				return -EINVAL;
			got_within = 1;
		} else if (!strcmp(w[i], "ban") && i + 1 < n && !got_ban) {
			if (parse_duration_ms(w[++i], MS_PER_S, 30 * MS_PER_DAY, "deny-after ban",
					   &ban_ms, e))
				return -EINVAL;
			/* XDP deny entries time out in whole seconds. */
			if (ban_ms % MS_PER_S)
				return errf(e, -EINVAL, "bad deny-after ban '%s': whole seconds "
					    "only", w[i]);
			got_ban = 1;
		} else if ((!strcmp(w[i], "within") && got_within) ||
			   (!strcmp(w[i], "ban") && got_ban)) {
			return errf(e, -EINVAL, "deny-after: '%s' given twice", w[i]);
		} else {
			return errf(e, -EINVAL, "deny-after: unexpected '%s' (expected N [within "
				    "DURATION] [ban DURATION], or off)", w[i]);
		}
	}
	c->deny_after = (unsigned int)v;
	c->deny_ban_s = ban_ms / MS_PER_S;
	return 0;
}

/* Options of a tier line, by where they go in struct l7_tier. */
enum topt_kind { T_RATE, T_BURST, T_UINT, T_KIND, T_FLAG };
static const struct tier_opt {
	const char *name;
	enum topt_kind kind;
	size_t off;
	uint64_t max;
} tier_opts[] = {
	{ "priority", T_UINT, offsetof(struct l7_tier, priority), MAX_PRIORITY },
	{ "rpm", T_RATE, offsetof(struct l7_tier, rpm.rate), MAX_RATE },
	{ "rpm-burst", T_BURST, offsetof(struct l7_tier, rpm.burst), MAX_RATE },
	{ "tpm", T_RATE, offsetof(struct l7_tier, tpm.rate), MAX_RATE },
	{ "tpm-burst", T_BURST, offsetof(struct l7_tier, tpm.burst), MAX_RATE },
	{ "tpm-kind", T_KIND, offsetof(struct l7_tier, tpm_kind), 0 },
	{ "concurrency", T_UINT, offsetof(struct l7_tier, concurrency), MAX_COUNT },
	{ "tier-rpm", T_RATE, offsetof(struct l7_tier, tier_rpm.rate), MAX_RATE },
	{ "tier-rpm-burst", T_BURST, offsetof(struct l7_tier, tier_rpm.burst), MAX_RATE },
	{ "tier-tpm", T_RATE, offsetof(struct l7_tier, tier_tpm.rate), MAX_RATE },
	{ "tier-tpm-burst", T_BURST, offsetof(struct l7_tier, tier_tpm.burst), MAX_RATE },
	{ "tier-concurrency", T_UINT, offsetof(struct l7_tier, tier_concurrency), MAX_COUNT },
	{ "shadow", T_FLAG, offsetof(struct l7_tier, shadow), 0 },
};
#define N_TIER_OPTS (sizeof(tier_opts) / sizeof(tier_opts[0]))
_Static_assert(N_TIER_OPTS <= 32, "do_tier keeps the options given in a 32-bit mask");

/* burst 0 = the rate: a bucket holds one period's allowance, so a fresh
 * key's x-ratelimit-remaining equals its x-ratelimit-limit (both the
 * burst, as OpenAI's headers read). Filled in here so the limiter and the
 * store's scripts see the real burst. A burst without a rate limits nothing. */
static int tier_burst(const char *tier, const char *what, struct l7_limit *l, struct errbuf *e)
{
	if (!l->rate && l->burst)
		return errf(e, -EINVAL, "tier %s: %s-burst without %s (a burst only shapes a "
			    "rate)", tier, what, what);
	if (l->rate && !l->burst)
		l->burst = l->rate;
	return 0;
}

static int do_tier(void *ctx, int n, char **w, unsigned int line, struct errbuf *e)
{
	struct l7_parse *p = ctx;
	struct l7_config *c = p->c;
	unsigned int given = 0, i;
	struct l7_tier t;
	int a;

	if (n < 2)
		return errf(e, -EINVAL, "tier: missing NAME (tier NAME [priority N] [rpm N] "
			    "[tpm N] ...)");
	if (check_name("tier", w[1], e))
		return -EINVAL;
	for (i = 0; i < c->n_tiers; i++)
		if (!strcmp(c->tiers[i].name, w[1]))
			return errf(e, -EEXIST, "tier %s: already defined on line %u", w[1],
				    p->tier_line[i]);
	if (c->n_tiers == L7_MAX_TIERS)
		return errf(e, -ENOSPC, "tier %s: more than %d tiers", w[1], L7_MAX_TIERS);
	memset(&t, 0, sizeof(t));
	snprintf(t.name, sizeof(t.name), "%s", w[1]);
	t.tpm_kind = L7_TPM_TOTAL;
	for (a = 2; a < n; a++) {
		const struct tier_opt *o = NULL;
		char *field;
		__u64 v;

		for (i = 0; i < N_TIER_OPTS; i++)
			if (!strcmp(w[a], tier_opts[i].name))
				o = &tier_opts[i];
		if (!o)
			return errf(e, -EINVAL, "tier %s: unexpected '%s' (expected priority, rpm, "
				    "rpm-burst, tpm, tpm-burst, tpm-kind, concurrency, tier-rpm, "
				    "tier-rpm-burst, tier-tpm, tier-tpm-burst, tier-concurrency, "
				    "shadow)", t.name, w[a]);
		i = (unsigned int)(o - tier_opts);
		if (given & (1U << i))
			return errf(e, -EINVAL, "tier %s: %s given twice", t.name, o->name);
		given |= 1U << i;
		field = (char *)&t + o->off;
		if (o->kind == T_FLAG) {
			*(int *)field = 1;
			continue;
		}
		if (a + 1 == n)
			return errf(e, -EINVAL, "tier %s: %s needs a value", t.name, o->name);
		a++;
		if (o->kind == T_KIND) {
			enum l7_tpm_kind *k = (enum l7_tpm_kind *)field;

			if (!strcmp(w[a], "total"))
				*k = L7_TPM_TOTAL;
			else if (!strcmp(w[a], "input"))
				*k = L7_TPM_INPUT;
			else if (!strcmp(w[a], "output"))
				*k = L7_TPM_OUTPUT;
			else
				return errf(e, -EINVAL, "tier %s: bad tpm-kind '%s': expected "
					    "total, input or output", t.name, w[a]);
			continue;
		}
		if (parse_u64(w[a], 0, o->max, 1, o->name, &v, e)) {
			struct errbuf why = *e;

			return errf(e, -EINVAL, "tier %s: %s", t.name, why.msg);
		}
		if (o->kind == T_UINT)
			*(unsigned int *)field = (unsigned int)v;
		else
			*(uint64_t *)field = v;
	}
	if (tier_burst(t.name, "rpm", &t.rpm, e) || tier_burst(t.name, "tpm", &t.tpm, e) ||
	    tier_burst(t.name, "tier-rpm", &t.tier_rpm, e) ||
	    tier_burst(t.name, "tier-tpm", &t.tier_tpm, e))
		return -EINVAL;
	p->tier_line[c->n_tiers] = line;
	c->tiers[c->n_tiers++] = t;
	return 0;
}

static int do_key(void *ctx, int n, char **w, unsigned int line, struct errbuf *e)
{
	struct l7_parse *p = ctx;
	struct pending_key *k;
	char hint[16];
	const char *q;

	if (n != 4 || strcmp(w[2], "tier"))
		return errf(e, -EINVAL, "key: expected KEY tier NAME");
	if (strlen(w[1]) >= L7_KEY_LEN)
		return errf(e, -EINVAL, "key %s: longer than %d characters",
			    key_hint(w[1], hint, sizeof(hint)), L7_KEY_LEN - 1);
	/* Blanks cannot reach here (they split words); control bytes and
	 * non-ASCII can, and no client could send them in a header. */
	for (q = w[1]; *q; q++)
		if (*q < 0x21 || *q > 0x7e)
			return errf(e, -EINVAL, "key %s: byte 0x%02x at offset %zu: keys are "
				    "printable ASCII", key_hint(w[1], hint, sizeof(hint)),
				    (unsigned char)*q, (size_t)(q - w[1]));
	if (check_name("key: tier", w[3], e))
		return -EINVAL;
	if (p->n_keys == L7_MAX_KEYS)
		return errf(e, -ENOSPC, "key: more than %d keys", L7_MAX_KEYS);
	k = &p->keys[p->n_keys++];
	snprintf(k->key, sizeof(k->key), "%s", w[1]);
	snprintf(k->tier, sizeof(k->tier), "%s", w[3]);
	k->line = line;
	return 0;
}

/* The directives: a function for those with their own syntax, else one
 * value stored at its place in struct l7_config (lib/directive.c). */
static const struct directive directives[] = {
	{ "listen", DIR_FN, do_listen, 0, 0, 0, 0 },
	{ "backend", DIR_FN, do_backend, 0, 0, 0, 1 },
	{ "metrics", DIR_FN, do_metrics, 0, 0, 0, 0 },
	{ "period", DIR_DURATION, NULL, offsetof(struct l7_config, period_ms), MIN_PERIOD_MS,
	  MS_PER_DAY, 0 },
	{ "key-header", DIR_FN, do_key_header, 0, 0, 0, 0 },
	{ "unknown-keys", DIR_FN, do_unknown_keys, 0, 0, 0, 0 },
	{ "default-tier", DIR_FN, do_default_tier, 0, 0, 0, 0 },
	{ "tier", DIR_FN, do_tier, 0, 0, 0, 1 },
	{ "key", DIR_FN, do_key, 0, 0, 0, 1 },
	{ "queue-size", DIR_UINT, NULL, offsetof(struct l7_config, queue_size), 0, MAX_COUNT, 0 },
	{ "queue-timeout", DIR_DURATION, NULL, offsetof(struct l7_config, queue_timeout_ms), 0,
	  MS_PER_DAY, 0 },
	{ "backend-concurrency", DIR_UINT, NULL, offsetof(struct l7_config, backend_concurrency),
	  0, MAX_COUNT, 0 },
	{ "default-max-tokens", DIR_U64, NULL, offsetof(struct l7_config, default_max_tokens), 0,
	  MAX_TOKENS, 0 },
	{ "max-output-tokens", DIR_U64, NULL, offsetof(struct l7_config, max_output_tokens), 1,
	  MAX_TOKENS, 0 },
	{ "max-header-bytes", DIR_BYTES, NULL, offsetof(struct l7_config, max_header_bytes),
	  1024, 1ULL << 20, 0 },
	{ "max-body-bytes", DIR_BYTES, NULL, offsetof(struct l7_config, max_body_bytes), 1024,
	  1ULL << 30, 0 },
	{ "header-timeout", DIR_DURATION, NULL, offsetof(struct l7_config, header_timeout_ms), 1,
	  MS_PER_DAY, 0 },
	{ "body-timeout", DIR_DURATION, NULL, offsetof(struct l7_config, body_timeout_ms), 1,
	  MS_PER_DAY, 0 },
	{ "idle-timeout", DIR_DURATION, NULL, offsetof(struct l7_config, idle_timeout_ms), 1,
	  MS_PER_DAY, 0 },
	{ "connect-timeout", DIR_DURATION, NULL, offsetof(struct l7_config, connect_timeout_ms), 1,
	  MS_PER_DAY, 0 },
	{ "backend-timeout", DIR_DURATION, NULL, offsetof(struct l7_config, backend_timeout_ms), 1,
	  MS_PER_DAY, 0 },
	{ "backend-down", DIR_DURATION, NULL, offsetof(struct l7_config, backend_down_ms), 1,
	  MS_PER_DAY, 0 },
	{ "backend-fails", DIR_UINT, NULL, offsetof(struct l7_config, backend_fails), 1, 1000, 0 },
	{ "max-clients", DIR_UINT, NULL, offsetof(struct l7_config, max_clients), 1, MAX_COUNT, 0 },
	{ "deny-after", DIR_FN, do_deny_after, 0, 0, 0, 0 },
	{ "signals-port", DIR_UINT, NULL, offsetof(struct l7_config, signals_port), 0, 65535, 0 },
	{ "kernel", DIR_FN, do_kernel, 0, 0, 0, 0 },
	{ "store", DIR_FN, do_store, 0, 0, 0, 0 },
};
static const struct directive_table l7_directives = {
	directives, sizeof(directives) / sizeof(directives[0]), "sluice-l7.conf(5)"
};
_Static_assert(sizeof(directives) / sizeof(directives[0]) <= DIRECTIVE_MAX,
	       "struct directive_seen has a slot per directive");

/* The line of a once-only directive, 0 if not given. */
static unsigned int seen_line(const struct l7_parse *p, const char *name)
{
	return p->seen.line[directive_find(&l7_directives, name)];
}

/* parse_lines' callback. */
static int l7_line(int n, char **w, unsigned int lineno, void *arg, struct errbuf *e)
{
	struct l7_parse *p = arg;

	return directive_apply(&l7_directives, &p->seen, p, p->c, n, w, lineno, e);
}

static int key_cmp_len(const char *a, const char *b, size_t blen)
{
	size_t alen = strlen(a);
	int r = memcmp(a, b, alen < blen ? alen : blen);

	if (r)
		return r;
	return alen < blen ? -1 : alen > blen;
}

/* By key, then by line so the second of two equal keys comes second. */
static int pending_cmp(const void *a, const void *b)
{
	const struct pending_key *x = a, *y = b;
	int r = strcmp(x->key, y->key);

	if (r)
		return r;
	return x->line < y->line ? -1 : x->line > y->line;
}

static int tier_index(const struct l7_config *c, const char *name)
{
	unsigned int i;

	for (i = 0; i < c->n_tiers; i++)
		if (!strcmp(c->tiers[i].name, name))
			return (int)i;
	return -1;
}

/* What spans lines. Returns 0, or an error with *line the line at fault
 * (0: the file as a whole). */
static int validate(struct l7_parse *p, unsigned int *line, struct errbuf *e)
{
	struct l7_config *c = p->c;
	unsigned int i, dup = 0;
	char hint[16];
	int t;

	*line = 0;
	if (!c->n_backends)
		return errf(e, -EINVAL, "no 'backend URL' line: nothing to forward to");
	if (!c->n_tiers)
		return errf(e, -EINVAL, "no 'tier NAME ...' line: every caller needs a tier (a "
			    "tier with no limits is 'tier free')");
	for (i = 0; i < c->n_backends; i++) {
		if (p->backend_numeric[i] && same_addr(&p->backend[i], &p->listen)) {
			*line = p->backend_line[i];
			return errf(e, -EINVAL, "backend %s: is the listen address (requests would "
				    "loop)", c->backends[i].name);
		}
	}
	if (c->metrics[0] && same_addr(&p->metrics, &p->listen)) {
		*line = seen_line(p, "metrics");
		return errf(e, -EINVAL, "metrics: %s is also the listen address", c->metrics);
	}
	if (p->default_tier[0]) {
		t = tier_index(c, p->default_tier);
		if (t < 0) {
			*line = seen_line(p, "default-tier");
			return errf(e, -EINVAL, "default-tier: no tier named '%s'", p->default_tier);
		}
		c->default_tier = (unsigned int)t;
		c->default_tier_set = 1;
	} else {
		c->default_tier = 0;
	}
	if (c->default_max_tokens > c->max_output_tokens) {
		*line = seen_line(p, "default-max-tokens") ? seen_line(p, "default-max-tokens") :
			seen_line(p, "max-output-tokens");
		return errf(e, -EINVAL, "default-max-tokens %llu is more than max-output-tokens "
			    "%llu", (unsigned long long)c->default_max_tokens,
			    (unsigned long long)c->max_output_tokens);
	}
	/* In file order, so the first bad key line is the one named. */
	for (i = 0; i < p->n_keys; i++) {
		if (tier_index(c, p->keys[i].tier) < 0) {
			*line = p->keys[i].line;
			return errf(e, -EINVAL, "key %s: no tier named '%s'",
				    key_hint(p->keys[i].key, hint, sizeof(hint)), p->keys[i].tier);
		}
	}
	qsort(p->keys, p->n_keys, sizeof(p->keys[0]), pending_cmp);
	for (i = 1; i < p->n_keys; i++)
		if (!strcmp(p->keys[i - 1].key, p->keys[i].key) &&
		    (!dup || p->keys[i].line < p->keys[dup].line))
			dup = i;
	if (dup) {
		*line = p->keys[dup].line;
		return errf(e, -EEXIST, "key %s: already given on line %u",
			    key_hint(p->keys[dup].key, hint, sizeof(hint)), p->keys[dup - 1].line);
	}
	c->keys = calloc(L7_MAX_KEYS, sizeof(*c->keys));
	if (!c->keys)
		return errf(e, -ENOMEM, "out of memory for %d keys", L7_MAX_KEYS);
	for (i = 0; i < p->n_keys; i++) {
		memcpy(c->keys[i].key, p->keys[i].key, sizeof(c->keys[i].key));
		c->keys[i].tier = (unsigned int)tier_index(c, p->keys[i].tier);
	}
	c->n_keys = p->n_keys;
	if (!c->signals_port)
		c->signals_port = c->backends[0].url.port;
	if (c->store.on && !c->store.instance[0]) {
		char port[8];

		snprintf(port, sizeof(port), "%u", p->listen.port);
		store_default_instance(c->store.instance, sizeof(c->store.instance), port);
	}
	return 0;
}

/* The file holds API keys: say so when others can read it. */
static void warn_if_exposed(const char *path, const struct stat *st)
{
	const char *who;

	if (!(st->st_mode & (S_IRGRP | S_IROTH)))
		return;
	who = (st->st_mode & S_IRGRP) && (st->st_mode & S_IROTH) ? "group and others" :
	      st->st_mode & S_IRGRP ? "group" : "others";
	pr_warn("%s: holds API keys and is readable by %s (mode %03o): chmod 600 %s", path, who,
		(unsigned int)(st->st_mode & 0777), path);
}

int l7_config_load(const char *path, struct l7_config *c, struct errbuf *e)
{
	struct l7_parse *p;
	unsigned int line = 0;
	struct errbuf why;
	struct stat st;
	FILE *f;
	int err, wild;

	l7_config_defaults(c);
	f = fopen(path, "r");
	if (!f) {
		err = -errno;
		return errf(e, err, "%s: %s", path, strerror(-err));
	}
	if (fstat(fileno(f), &st)) {
		err = -errno;
		fclose(f);
		return errf(e, err, "%s: stat: %s", path, strerror(-err));
	}
	if (S_ISDIR(st.st_mode)) {
		fclose(f);
		return errf(e, -EISDIR, "%s: is a directory, not a config file", path);
	}
	p = calloc(1, sizeof(*p));
	if (p)
		p->keys = calloc(L7_MAX_KEYS, sizeof(*p->keys));
	if (!p || !p->keys) {
		free(p);
		fclose(f);
		return errf(e, -ENOMEM, "%s: out of memory", path);
	}
	p->c = c;
	/* The defaults are valid; parsed so validate() can compare them. */
	if (parse_addr("listen", c->listen, &p->listen, &wild, &why) ||
	    parse_addr("metrics", c->metrics, &p->metrics, &wild, &why))
		abort();
	err = parse_lines(f, l7_line, p, &line, &why);
	fclose(f);
	if (!err)
		err = validate(p, &line, &why);
	if (!err && p->n_keys)
		warn_if_exposed(path, &st);
	free(p->keys);
	free(p);
	if (err) {
		l7_config_free(c);
		if (line)
			return errf(e, err, "%s:%u: %s", path, line, why.msg);
		return errf(e, err, "%s: %s", path, why.msg);
	}
	return 0;
}

int l7_config_key_tier(const struct l7_config *c, const char *key, size_t len)
{
	size_t lo = 0, hi = c->n_keys;

	if (!c->keys || !len || len >= L7_KEY_LEN)
		return -1;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int r = key_cmp_len(c->keys[mid].key, key, len);

		if (!r)
			return (int)c->keys[mid].tier;
		if (r < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

/* --- describe ------------------------------------------------------------- */

static void fmt_period(uint64_t ms, char *buf, size_t len)
{
	if (ms && ms % 60000 == 0)
		snprintf(buf, len, "%llum", (unsigned long long)(ms / 60000));
	else if (ms && ms % 1000 == 0)
		snprintf(buf, len, "%llus", (unsigned long long)(ms / 1000));
	else
		snprintf(buf, len, "%llums", (unsigned long long)ms);
}

static void describe_limit(FILE *f, const char *what, const struct l7_limit *l,
			   const char *period)
{
	if (!l->rate)
		fprintf(f, "  %-9s unlimited\n", what);
	else
		fprintf(f, "  %-9s %llu per %s, bucket capacity (burst) %llu\n", what,
			(unsigned long long)l->rate, period, (unsigned long long)l->burst);
}

/* The caller's limit where it has one, else the tier's: what limiter_view
 * and the store's take report in x-ratelimit-limit-*. 0 = no header. */
static uint64_t header_limit(const struct l7_limit *own, const struct l7_limit *tier)
{
	return own->rate ? own->burst : tier->rate ? tier->burst : 0;
}

void l7_config_describe(const struct l7_config *c, FILE *f)
{
	static const char *const kinds[] = { "input + output", "input", "output" };
	char period[32];

	fmt_period(c->period_ms, period, sizeof(period));
	for (unsigned int i = 0; i < c->n_tiers; i++) {
		const struct l7_tier *t = &c->tiers[i];
		uint64_t lr = header_limit(&t->rpm, &t->tier_rpm);
		uint64_t lt = header_limit(&t->tpm, &t->tier_tpm), big = 0;

		fprintf(f, "tier %s%s: priority %u%s\n", t->name,
			i == c->default_tier ? " (default)" : "", t->priority,
			t->shadow ? ", shadow (counts, refuses nothing)" : "");
		describe_limit(f, "rpm", &t->rpm, period);
		describe_limit(f, "tpm", &t->tpm, period);
		describe_limit(f, "tier-rpm", &t->tier_rpm, period);
		describe_limit(f, "tier-tpm", &t->tier_tpm, period);
		if (t->tpm.rate || t->tier_tpm.rate)
			fprintf(f, "  %-9s %s\n", "tpm-kind", kinds[t->tpm_kind <= L7_TPM_OUTPUT ?
								  t->tpm_kind : 0]);
		if (t->concurrency)
			fprintf(f, "  %-9s %u in flight per key\n", "conc", t->concurrency);
		if (t->tier_concurrency)
			fprintf(f, "  %-9s %u in flight in the tier\n", "tier-conc",
				t->tier_concurrency);
		/* a fresh key's remaining equals these */
		if (lr)
			fprintf(f, "  headers   x-ratelimit-limit-requests %llu\n",
				(unsigned long long)lr);
		if (lt)
			fprintf(f, "  headers   x-ratelimit-limit-tokens %llu\n",
				(unsigned long long)lt);
		if (t->tpm.rate)
			big = t->tpm.burst;
		if (t->tier_tpm.rate && (!big || t->tier_tpm.burst < big))
			big = t->tier_tpm.burst;
		if (big)
			fprintf(f, "  too large above %llu tokens (estimated): 429 request_too_large\n",
				(unsigned long long)big);
	}
}

void l7_config_warn_insecure(const struct l7_config *c)
{
	for (unsigned int i = 0; i < c->n_backends; i++)
		if (c->backends[i].url.tls && !c->backends[i].tls_verify)
			pr_warn("backend %s: TLS verification is OFF (tls-verify off): its "
				"certificate and name are not checked, so anyone on the path can "
				"read and change this traffic, API keys included; use tls-ca FILE "
				"for a private CA instead", c->backends[i].name);
}
