// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * sluice-l7's config file, seen from outside: each row is a file's text and
 * either the fields it must load into, or a piece of the error it must give
 * (with the line number). The text goes to a real file (mkstemp), since the
 * loader reads a path and checks its mode.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "harness.h"
#include "l7_config.h"

/* Writes text to a new temp file with mode, loads it, removes it. path
 * gets the file's name, for checking that errors start with it. */
static int load_text(const char *text, mode_t mode, struct l7_config *c, struct errbuf *e,
		     char *path, size_t path_len)
{
	char tmpl[] = "/tmp/l7cfg-test-XXXXXX";
	size_t len = strlen(text), off = 0;
	int fd, err;

	fd = mkstemp(tmpl);
	if (fd < 0) {
		CHECK(0, "mkstemp: %s", strerror(errno));
		return -errno;
	}
	while (off < len) {
		ssize_t n = write(fd, text + off, len - off);

		if (n <= 0) {
			CHECK(0, "write %s: %s", tmpl, strerror(errno));
			close(fd);
			unlink(tmpl);
			return -EIO;
		}
		off += (size_t)n;
	}
	if (fchmod(fd, mode) || close(fd)) {
		CHECK(0, "fchmod/close %s: %s", tmpl, strerror(errno));
		unlink(tmpl);
		return -EIO;
	}
	memset(e, 0, sizeof(*e));
	err = l7_config_load(tmpl, c, e);
	unlink(tmpl);
	if (path)
		snprintf(path, path_len, "%s", tmpl);
	return err;
}

/* ---- reading a field by name, so a row can say "period_ms=6000" ---- */

enum fkind { F_UINT, F_U64, F_INT, F_STR };
struct fdesc {
	const char *name;
	enum fkind kind;
	size_t off;
};

#define CF(f, k) { #f, k, offsetof(struct l7_config, f) }
static const struct fdesc config_fields[] = {
	CF(listen, F_STR), CF(listen_any, F_INT), CF(n_backends, F_UINT),
	CF(metrics, F_STR), CF(metrics_any, F_INT), CF(period_ms, F_U64),
	CF(key_header, F_STR), CF(refuse_unknown, F_INT), CF(default_tier, F_UINT),
	CF(default_tier_set, F_INT), CF(n_tiers, F_UINT), CF(n_keys, F_UINT),
	CF(queue_size, F_UINT), CF(queue_timeout_ms, F_U64), CF(backend_concurrency, F_UINT),
	CF(default_max_tokens, F_U64), CF(max_output_tokens, F_U64),
	CF(max_header_bytes, F_U64), CF(max_body_bytes, F_U64),
	CF(header_timeout_ms, F_U64), CF(body_timeout_ms, F_U64), CF(idle_timeout_ms, F_U64),
	CF(connect_timeout_ms, F_U64), CF(backend_timeout_ms, F_U64),
	CF(backend_down_ms, F_U64), CF(backend_fails, F_UINT), CF(max_clients, F_UINT),
	CF(deny_after, F_UINT), CF(deny_window_ms, F_U64), CF(deny_ban_s, F_U64),
	CF(signals_port, F_UINT), CF(kernel, F_INT),
};

#define TF(f, k) { #f, k, offsetof(struct l7_tier, f) }
static const struct fdesc tier_fields[] = {
	TF(name, F_STR), TF(priority, F_UINT), TF(rpm.rate, F_U64), TF(rpm.burst, F_U64),
	TF(tpm.rate, F_U64), TF(tpm.burst, F_U64), TF(concurrency, F_UINT),
	TF(tier_rpm.rate, F_U64), TF(tier_rpm.burst, F_U64), TF(tier_tpm.rate, F_U64),
	TF(tier_tpm.burst, F_U64), TF(tier_concurrency, F_UINT), TF(tpm_kind, F_INT),
	TF(shadow, F_INT),
};

static int format_field(const void *base, const struct fdesc *d, char *out, size_t len)
{
	const char *p = (const char *)base + d->off;

	switch (d->kind) {
	case F_UINT: return snprintf(out, len, "%u", *(const unsigned int *)p);
	case F_U64: return snprintf(out, len, "%llu", (unsigned long long)*(const uint64_t *)p);
	case F_INT: return snprintf(out, len, "%d", *(const int *)p);
	case F_STR: return snprintf(out, len, "%s", p);
	}
	return -1;
}

/* "period_ms", "t1.rpm.burst" (tier 1), "b0" (backend 0), "key:sk-x" (its
 * tier, -1 if unknown). 0, or -1 for a name the test does not know. */
static int field_value(const struct l7_config *c, const char *name, char *out, size_t len)
{
	const struct fdesc *tab = config_fields;
	size_t i, n = sizeof(config_fields) / sizeof(config_fields[0]);
	const void *base = c;
	unsigned int idx;
	int used = 0;

	if (!strncmp(name, "key:", 4)) {
		snprintf(out, len, "%d", l7_config_key_tier(c, name + 4, strlen(name + 4)));
		return 0;
	}
	if (sscanf(name, "b%u%n", &idx, &used) == 1 && !name[used]) {
		if (idx >= c->n_backends)
			return -1;
		snprintf(out, len, "%s", c->backends[idx].name);
		return 0;
	}
	if (sscanf(name, "b%u.%n", &idx, &used) == 1 && used) {
		const struct l7_backend *b;
		unsigned int h;

		if (idx >= c->n_backends)
			return -1;
		b = &c->backends[idx];
		name += used;
		if (!strcmp(name, "tls"))
			return snprintf(out, len, "%d", b->url.tls) < 0;
		if (!strcmp(name, "verify"))
			return snprintf(out, len, "%d", b->tls_verify) < 0;
		if (!strcmp(name, "plain"))
			return snprintf(out, len, "%d", b->plain_addr) < 0;
		if (!strcmp(name, "every"))
			return snprintf(out, len, "%llu", (unsigned long long)b->resolve_every_ms) < 0;
		if (!strcmp(name, "ca"))
			return snprintf(out, len, "%s", b->tls_ca) < 0;
		if (!strcmp(name, "nh"))
			return snprintf(out, len, "%u", b->n_headers) < 0;
		if (!strcmp(name, "haskey"))
			return snprintf(out, len, "%d", b->api_key[0] != 0) < 0;
		if (!strcmp(name, "key"))
			return snprintf(out, len, "%s", b->api_key) < 0;
		if (!strcmp(name, "keyhdr"))
			return snprintf(out, len, "%s", b->api_key_header) < 0;
		if (sscanf(name, "h%u", &h) == 1 && h < b->n_headers)
			return snprintf(out, len, "%s:%s", b->headers[h].name, b->headers[h].value) < 0;
		return -1;
	}
	if (sscanf(name, "t%u.%n", &idx, &used) == 1 && used) {
		if (idx >= c->n_tiers)
			return -1;
		base = &c->tiers[idx];
		name += used;
		tab = tier_fields;
		n = sizeof(tier_fields) / sizeof(tier_fields[0]);
	}
	for (i = 0; i < n; i++)
		if (!strcmp(tab[i].name, name))
			return format_field(base, &tab[i], out, len) < 0 ? -1 : 0;
	return -1;
}

/* ---- the table ---- */

/* expect: OK "field=value ..." for a file that loads, else a piece of the
 * error it gives, after "FILE". */
struct cfg_case {
	const char *name;
	const char *text;
	const char *expect;
};
#define OK "ok: "

/* The least a file needs; rows put the line under test first, so its line
 * number is 1 unless the row says otherwise. */
#define B "backend 127.0.0.1:9000\n"
#define T "tier free\n"
#define BT B T

static const struct cfg_case cfg_cases[] = {
	/* defaults: every field of the header's comments */
	{ "defaults", BT, OK
	  "listen=127.0.0.1:8080 listen_any=0 metrics=127.0.0.1:9465 metrics_any=0 "
	  "period_ms=60000 key_header= refuse_unknown=0 default_tier=0 default_tier_set=0 "
	  "queue_size=256 queue_timeout_ms=5000 backend_concurrency=0 default_max_tokens=256 "
	  "max_output_tokens=32768 max_header_bytes=16384 max_body_bytes=1048576 "
	  "header_timeout_ms=10000 body_timeout_ms=30000 idle_timeout_ms=60000 "
	  "connect_timeout_ms=2000 backend_timeout_ms=60000 backend_down_ms=5000 "
	  "backend_fails=3 max_clients=4096 deny_after=0 deny_window_ms=10000 deny_ban_s=60 "
	  "signals_port=9000 kernel=1 n_backends=1 n_tiers=1 n_keys=0 b0=127.0.0.1:9000" },
	{ "tier defaults", BT, OK
	  "t0.name=free t0.priority=0 t0.rpm.rate=0 t0.rpm.burst=0 t0.tpm.rate=0 "
	  "t0.tpm.burst=0 t0.concurrency=0 t0.tier_rpm.rate=0 t0.tier_rpm.burst=0 "
	  "t0.tier_tpm.rate=0 t0.tier_tpm.burst=0 t0.tier_concurrency=0 t0.tpm_kind=0 "
	  "t0.shadow=0" },
	{ "comments and blank lines",
	  "# a comment\n\n   \n" B "  # indented\n" T "period 6s   # trailing comment\n", OK
	  "period_ms=6000 n_tiers=1" },

	/* listen */
	{ "listen v4", "listen 127.0.0.2:18080\n" BT, OK "listen=127.0.0.2:18080 listen_any=0" },
	{ "listen v6", "listen [::1]:8080\n" BT, OK "listen=[::1]:8080" },
	{ "listen 0.0.0.0 public", "listen 0.0.0.0:8080 public\n" BT, OK
	  "listen=0.0.0.0:8080 listen_any=1" },
	{ "listen [::] public", "listen [::]:8080 public\n" BT, OK "listen_any=1" },
	{ "listen allow-any", "listen 0.0.0.0:8080 allow-any\n" BT, OK "listen_any=1" },
	{ "listen public on a plain address", "listen 10.0.0.1:80 public\n" BT, OK
	  "listen_any=1" },
	{ "listen wildcard without public", "listen 0.0.0.0:8080\n" BT,
	  ":1: listen: 0.0.0.0:8080 accepts connections on every interface; add 'public'" },
	{ "listen [::] without public", "listen [::]:8080\n" BT, ":1: listen: [::]:8080 accepts" },
	{ "listen mapped wildcard", "listen [::ffff:0.0.0.0]:80\n" BT, ":1: listen: [::ffff:" },
	{ "listen host name", "listen localhost:8080\n" BT,
	  ":1: listen: bad address 'localhost:8080' (a numeric IPv4 address" },
	{ "listen no port", "listen 127.0.0.1\n" BT, ":1: listen: bad address '127.0.0.1' "
	  "(expected ADDR:PORT" },
	{ "listen port 0", "listen 127.0.0.1:0\n" BT, ":1: listen: bad port in '127.0.0.1:0'" },
	{ "listen port 65536", "listen 127.0.0.1:65536\n" BT, ":1: listen: bad port" },
	{ "listen port not a number", "listen 127.0.0.1:http\n" BT, ":1: listen: bad port" },
	{ "listen v6 without brackets", "listen ::1:8080\n" BT, ":1: listen: bad address '::1:8080'" },
	{ "listen v4 in brackets", "listen [127.0.0.1]:80\n" BT, ":1: listen: bad address" },
	{ "listen unclosed bracket", "listen [::1:80\n" BT, ":1: listen: bad address '[::1:80' "
	  "(an IPv6 address goes in brackets" },
	{ "listen bad word", "listen 127.0.0.1:80 private\n" BT,
	  ":1: listen: expected ADDR:PORT [public]" },
	{ "listen missing", "listen\n" BT, ":1: listen: expected ADDR:PORT [public]" },
	{ "listen too long", "listen [0000:0000:0000:0000:0000:0000:0000:0001]:0000000000000000000000080\n"
	  BT, ":1: listen: address '" },
	{ "listen twice", "listen 127.0.0.1:1\n" BT "listen 127.0.0.1:2\n",
	  ":4: listen: given twice (first on line 1)" },

	/* backend */
	{ "backends", B "backend [::1]:9001\nbackend 10.1.2.3:80\n" T, OK
	  "n_backends=3 b0=127.0.0.1:9000 b1=[::1]:9001 b2=10.1.2.3:80" },
	{ "backend wildcard", "backend 0.0.0.0:9000\n" T,
	  ":1: backend: 0.0.0.0:9000 is a wildcard, not an address to connect to" },
	{ "backend duplicate", B T "backend 127.0.0.1:9000\n",
	  ":3: backend 127.0.0.1:9000: already given on line 1" },
	{ "backend duplicate v6 spelled twice", "backend [::1]:9000\nbackend [0:0::1]:9000\n" T,
	  ":2: backend [0:0::1]:9000: already given on line 1" },
	{ "backend same address other port", B "backend 127.0.0.1:9001\n" T, OK "n_backends=2" },
	{ "backend is the listen address", "listen 127.0.0.1:9000\n" BT,
	  ":2: backend 127.0.0.1:9000: is the listen address" },
	{ "backend is the default listen address", "backend 127.0.0.1:8080\n" T,
	  ":1: backend 127.0.0.1:8080: is the listen address" },
	{ "backend two addresses", "backend 127.0.0.1:1 127.0.0.1:2\n" T,
	  ":1: backend 127.0.0.1:1: unknown option '127.0.0.1:2'" },
	{ "backend name without a scheme", "backend example.com:80\n" T,
	  ":1: backend 'example.com:80': 'example.com' is not an address (a name needs a URL: "
	  "http://example.com:80)" },
	{ "no backend", T, "no 'backend URL' line: nothing to forward to" },
	/* backend URLs and their options (files: l7_config_backend_files) */
	{ "backend https default port", "backend https://API.Example.com\n" T, OK
	  "b0=https://api.example.com:443 b0.tls=1 b0.verify=1 b0.plain=0 b0.every=30000 "
	  "signals_port=443" },
	{ "backend http URL with port and slash", "backend http://10.0.0.5:8000/\n" T, OK
	  "b0=http://10.0.0.5:8000 b0.tls=0 b0.plain=0" },
	{ "backend ADDR:PORT is plain http", B T, OK "b0=127.0.0.1:9000 b0.tls=0 b0.plain=1" },
	{ "backend https IPv6", "backend https://[::1]:8443 tls-verify off\n" T, OK
	  "b0=https://[::1]:8443 b0.verify=0" },
	{ "backend options", "backend https://api.example.com header OpenAI-Organization "
	  "org-1 header x-b 2 resolve-every 5s\n" T, OK
	  "b0.nh=2 b0.h0=openai-organization:org-1 b0.h1=x-b:2 b0.every=5000 b0.haskey=0" },
	{ "backend URL duplicate", "backend https://a.example\nbackend https://A.example:443/\n"
	  T, ":2: backend https://A.example:443/: already given on line 1" },
	{ "backend URL same address as ADDR:PORT", B "backend http://127.0.0.1:9000\n" T,
	  ":2: backend http://127.0.0.1:9000: already given on line 1" },
	{ "backend URL is the listen address", "backend http://127.0.0.1:8080\n" T,
	  ":1: backend http://127.0.0.1:8080: is the listen address" },
	{ "backend scheme", "backend ftp://x.example\n" T, ":1: backend 'ftp://x.example': "
	  "unknown scheme 'ftp'" },
	{ "backend path", "backend https://x.example/v1\n" T, "a path ('/v1') is not supported" },
	{ "backend unknown option", "backend https://x.example tls-vrify off\n" T,
	  ":1: backend https://x.example:443: unknown option 'tls-vrify' (tls-ca, tls-verify, "
	  "header, api-key-file, api-key-header, resolve-every)" },
	{ "backend option without value", "backend https://x.example tls-verify\n" T,
	  ":1: backend https://x.example:443: tls-verify: missing value" },
	{ "backend header without value", "backend https://x.example header x-a\n" T,
	  "header: missing values (header NAME VALUE)" },
	{ "backend tls-verify bad", "backend https://x.example tls-verify maybe\n" T,
	  ":1: tls-verify: expected on or off, not 'maybe'" },
	{ "backend tls-verify on http", "backend http://x.example tls-verify off\n" T,
	  ":1: backend http://x.example:80: tls-verify is for https:// backends" },
	{ "backend tls-ca on http", "backend http://x.example tls-ca /etc/hostname\n" T,
	  ":1: backend http://x.example:80: tls-ca is for https:// backends" },
	{ "backend tls-ca missing file", "backend https://x.example tls-ca /nonexistent/ca.pem\n"
	  T, ":1: tls-ca /nonexistent/ca.pem: No such file or directory" },
	{ "backend header name", "backend https://x.example header x:y 1\n" T,
	  ":1: header: 'x:y' is not a header name" },
	{ "backend header host", "backend https://x.example header Host y\n" T,
	  ":1: header: host is set by sluice-l7, not by the file" },
	{ "backend header value", "backend https://x.example header x-a \x01\n" T,
	  ":1: header x-a: the value must be one word of visible characters" },
	{ "backend too many headers", "backend https://x.example header a 1 header b 1 header c "
	  "1 header d 1 header e 1 header f 1 header g 1 header h 1 header i 1\n" T,
	  ":1: header: more than 8 per backend" },
	{ "backend api-key-header alone", "backend https://x.example api-key-header x-api-key\n"
	  T, ":1: backend https://x.example:443: api-key-header needs api-key-file" },
	{ "backend api-key-file missing", "backend https://x.example api-key-file /nonexistent/k\n"
	  T, ":1: api-key-file /nonexistent/k: No such file or directory" },
	{ "backend resolve-every too short", "backend https://x.example resolve-every 10ms\n" T,
	  ":1: bad resolve-every '10ms'" },

	/* metrics */
	{ "metrics off", "metrics off\n" BT, OK "metrics= metrics_any=0" },
	{ "metrics v6", "metrics [::1]:9999\n" BT, OK "metrics=[::1]:9999 metrics_any=0" },
	{ "metrics public", "metrics 0.0.0.0:9465 public\n" BT, OK
	  "metrics=0.0.0.0:9465 metrics_any=1" },
	{ "metrics wildcard without public", "metrics [::]:9465\n" BT,
	  ":1: metrics: [::]:9465 serves the metrics on every interface; add 'public'" },
	{ "metrics missing", "metrics\n" BT, ":1: metrics: expected ADDR:PORT [public], or off" },
	{ "metrics off public", "metrics off public\n" BT, ":1: metrics: bad address 'off'" },
	{ "metrics is the listen address", "listen 127.0.0.1:9465\n" BT,
	  "metrics: 127.0.0.1:9465 is also the listen address" },
	{ "metrics moved off the listen address", "listen 127.0.0.1:9465\nmetrics 127.0.0.1:9466\n"
	  BT, OK "metrics=127.0.0.1:9466" },

	/* period and durations */
	{ "period ms", "period 500ms\n" BT, OK "period_ms=500" },
	{ "period s", "period 6s\n" BT, OK "period_ms=6000" },
	{ "period m", "period 1m\n" BT, OK "period_ms=60000" },
	{ "period h", "period 1h\n" BT, OK "period_ms=3600000" },
	{ "period minimum", "period 100ms\n" BT, OK "period_ms=100" },
	{ "period maximum", "period 24h\n" BT, OK "period_ms=86400000" },
	{ "period no unit", "period 30\n" BT, ":1: bad period '30': give a unit (ms, s, m or h), "
	  "e.g. 30s" },
	{ "period too short", "period 99ms\n" BT, ":1: bad period '99ms': at least 100ms" },
	{ "period too long", "period 1441m\n" BT, ":1: bad period '1441m': at most 24h" },
	{ "period overflow", "period 99999999999999999999999s\n" BT, ":1: bad period" },
	{ "period fraction", "period 1.5s\n" BT, ":1: bad period '1.5s': expected a whole number "
	  "with a unit" },
	{ "period unknown unit", "period 2d\n" BT, ":1: bad period '2d'" },
	{ "period negative", "period -1s\n" BT, ":1: bad period '-1s': expected a duration" },
	{ "period two values", "period 1s 2s\n" BT, ":1: period: expected one value, got 2" },
	{ "period no value", "period\n" BT, ":1: period: expected one value, got 0" },
	{ "period twice", "period 1s\nperiod 2s\n" BT, ":2: period: given twice (first on line 1)" },

	/* keys: header and unknown ones */
	{ "key-header", "key-header X-API-Key\n" BT, OK "key_header=x-api-key" },
	{ "key-header authorization", "key-header Authorization\n" BT,
	  ":1: key-header: 'Authorization: Bearer KEY' is the default" },
	{ "key-header not a token", "key-header x:key\n" BT,
	  ":1: key-header: 'x:key' is not a header name" },
	{ "key-header too long", "key-header x-a-very-long-header-name-for-a-key\n" BT,
	  ":1: key-header: 'x-a-very-long-header...' is longer than 31 characters" },
	{ "key-header missing", "key-header\n" BT, ":1: key-header: expected a header NAME" },
	{ "unknown-keys refuse", "unknown-keys refuse\n" BT, OK "refuse_unknown=1" },
	{ "unknown-keys default", "unknown-keys default\n" BT, OK "refuse_unknown=0" },
	{ "unknown-keys bad", "unknown-keys allow\n" BT,
	  ":1: unknown-keys: expected default or refuse" },

	/* tiers */
	{ "tier every option",
	  B "tier pro priority 7 rpm 60 rpm-burst 10 tpm 10000 tpm-burst 1000 tpm-kind output "
	  "concurrency 2 tier-rpm 600 tier-rpm-burst 100 tier-tpm 100k tier-tpm-burst 20k "
	  "tier-concurrency 20 shadow\n", OK
	  "t0.name=pro t0.priority=7 t0.rpm.rate=60 t0.rpm.burst=10 t0.tpm.rate=10000 "
	  "t0.tpm.burst=1000 t0.tpm_kind=2 t0.concurrency=2 t0.tier_rpm.rate=600 "
	  "t0.tier_rpm.burst=100 t0.tier_tpm.rate=100000 t0.tier_tpm.burst=20000 "
	  "t0.tier_concurrency=20 t0.shadow=1" },
	/* a full period's allowance, so x-ratelimit-limit (the burst) is the rate */
	{ "tier burst defaults to the rate", B "tier a rpm 60 tpm 100k tier-rpm 1k tier-tpm 1m\n",
	  OK "t0.rpm.burst=60 t0.tpm.burst=100000 t0.tier_rpm.burst=1000 "
	  "t0.tier_tpm.burst=1000000" },
	{ "tier burst of a rate of 1", B "tier a rpm 5 tpm 1\n", OK
	  "t0.rpm.burst=5 t0.tpm.burst=1" },
	{ "tier burst below rate", B "tier a rpm 600 rpm-burst 50\n", OK
	  "t0.rpm.rate=600 t0.rpm.burst=50" },
	{ "tier burst above rate", B "tier a rpm 10 rpm-burst 50\n", OK
	  "t0.rpm.rate=10 t0.rpm.burst=50" },
	{ "tier tpm-kind input", B "tier a tpm-kind input\n", OK "t0.tpm_kind=1" },
	{ "tier tpm-kind total", B "tier a tpm-kind total\n", OK "t0.tpm_kind=0" },
	{ "tier priority 15", B "tier a priority 15\n", OK "t0.priority=15" },
	{ "tiers in order", B "tier a\ntier b priority 1\ntier c priority 2\n", OK
	  "n_tiers=3 t0.name=a t1.name=b t2.name=c t2.priority=2 default_tier=0" },
	{ "tier name chars", B "tier Pro_1.x-y\n", OK "t0.name=Pro_1.x-y" },
	{ "tier priority 16", B "tier a priority 16\n",
	  ":2: tier a: bad priority '16': too large (max 15)" },
	{ "tier bad number", B "tier a rpm lots\n", ":2: tier a: bad rpm 'lots': expected a number" },
	{ "tier negative", B "tier a tpm -5\n", ":2: tier a: bad tpm '-5'" },
	{ "tier bad tpm-kind", B "tier a tpm-kind both\n",
	  ":2: tier a: bad tpm-kind 'both': expected total, input or output" },
	{ "tier unknown option", B "tier a rps 5\n", ":2: tier a: unexpected 'rps' (expected "
	  "priority, rpm" },
	{ "tier option twice", B "tier a rpm 5 rpm 6\n", ":2: tier a: rpm given twice" },
	{ "tier shadow twice", B "tier a shadow shadow\n", ":2: tier a: shadow given twice" },
	{ "tier missing value", B "tier a rpm\n", ":2: tier a: rpm needs a value" },
	{ "tier burst without rate", B "tier a rpm-burst 5\n",
	  ":2: tier a: rpm-burst without rpm" },
	{ "tier tier-tpm-burst without rate", B "tier a tier-tpm-burst 5\n",
	  ":2: tier a: tier-tpm-burst without tier-tpm" },
	{ "tier no name", B "tier\n", ":2: tier: missing NAME" },
	{ "tier bad name", B "tier fr/ee\n", ":2: tier: bad name 'fr/ee'" },
	{ "tier name too long", B "tier abcdefghijabcdefghijabcdefghijab\n",
	  ":2: tier: name 'abcdefghijabcdefghij...' is longer than 31 characters" },
	{ "tier duplicate", B T "tier x\ntier free rpm 5\n",
	  ":4: tier free: already defined on line 2" },
	{ "tier continuation", B "tier a rpm 5 \\\n  tpm 10\n",
	  ":2: tier: a line does not continue on the next ('\\')" },
	{ "no tier", B, "no 'tier NAME ...' line: every caller needs a tier" },

	/* default tier */
	{ "default tier is the first", B "tier a\ntier b\n", OK
	  "default_tier=0 default_tier_set=0" },
	{ "default tier defined later", "default-tier b\n" B "tier a\ntier b\n", OK
	  "default_tier=1 default_tier_set=1" },
	{ "default tier undefined", B T "default-tier gold\n",
	  ":3: default-tier: no tier named 'gold'" },
	{ "default tier bad name", "default-tier a/b\n" BT, ":1: default-tier: bad name 'a/b'" },
	{ "default tier missing", "default-tier\n" BT, ":1: default-tier: expected a tier NAME" },

	/* keys */
	{ "keys", B "tier free\ntier pro\nkey sk-abc123 tier pro\nkey sk-free tier free\n", OK
	  "n_keys=2 key:sk-abc123=1 key:sk-free=0 key:sk-abc12=-1 key:sk-abc1234=-1 "
	  "key:SK-ABC123=-1 key:nope=-1" },
	{ "key before its tier", B "key k-1 tier late\ntier free\ntier late\n", OK
	  "key:k-1=1" },
	{ "key all printable", BT "key !\"$%&'()*+,-./:;<=>?@[\\]^_`{|}~#a tier free\n", OK
	  "key:!\"$%&'()*+,-./:;<=>?@[\\]^_`{|}~#a=0" },
	{ "key undefined tier", BT "key sk-abcdefghijkl tier gold\n",
	  ":3: key sk-a...: no tier named 'gold'" },
	{ "key undefined tier is the first in the file", BT
	  "key k-bbbbbbbbbbbb tier nope2\nkey k-aaaaaaaaaaaa tier nope1\n",
	  ":3: key k-bb...: no tier named 'nope2'" },
	{ "key duplicate", BT "key sk-abcdefghijkl tier free\ntier x\n"
	  "key sk-abcdefghijkl tier x\n", ":5: key sk-a...: already given on line 3" },
	{ "key duplicate, the first repeat named", BT "key bbbbbbbbbbbb tier free\n"
	  "key aaaaaaaaaaaa tier free\nkey aaaaaaaaaaaa tier free\nkey bbbbbbbbbbbb tier free\n",
	  ":5: key aaaa...: already given on line 4" },
	{ "key wrong shape", BT "key sk-abc free\n", ":3: key: expected KEY tier NAME" },
	{ "key extra word", BT "key sk-abc tier free now\n", ":3: key: expected KEY tier NAME" },
	{ "key control byte", BT "key sk-a\x01" "bcdefghijkl tier free\n",
	  ":3: key sk-a...: byte 0x01 at offset 4: keys are printable ASCII" },
	{ "key non-ascii", BT "key sk-\xc3\xa9t\xc3\xa9xxxxxx tier free\n",
	  ":3: key sk-...: byte 0xc3 at offset 3" },
	{ "key short hint", BT "key abc tier nope\n", ":3: key a...: no tier named 'nope'" },

	/* queue and tokens */
	{ "queue", "queue-size 0\nqueue-timeout 0ms\nbackend-concurrency 64\n" BT, OK
	  "queue_size=0 queue_timeout_ms=0 backend_concurrency=64" },
	{ "queue-size k", "queue-size 2k\n" BT, OK "queue_size=2000" },
	{ "queue-size too large", "queue-size 2m\n" BT,
	  ":1: bad queue-size '2m': too large (max 1000000)" },
	{ "queue-size not a number", "queue-size many\n" BT, ":1: bad queue-size 'many'" },
	{ "queue-timeout no unit", "queue-timeout 5\n" BT, ":1: bad queue-timeout '5': give a unit" },
	{ "tokens", "default-max-tokens 0\nmax-output-tokens 1k\n" BT, OK
	  "default_max_tokens=0 max_output_tokens=1000" },
	{ "max-output-tokens 0", "max-output-tokens 0\n" BT,
	  ":1: bad max-output-tokens '0': must be at least 1" },
	{ "default over max", "default-max-tokens 1000\nmax-output-tokens 500\n" BT,
	  ":1: default-max-tokens 1000 is more than max-output-tokens 500" },
	{ "default over max, max given", "max-output-tokens 100\n" BT,
	  ":1: default-max-tokens 256 is more than max-output-tokens 100" },

	/* sizes */
	{ "sizes decimal", "max-header-bytes 16k\nmax-body-bytes 2m\n" BT, OK
	  "max_header_bytes=16000 max_body_bytes=2000000" },
	{ "sizes binary", "max-header-bytes 16Ki\nmax-body-bytes 1Mi\n" BT, OK
	  "max_header_bytes=16384 max_body_bytes=1048576" },
	{ "sizes plain and lower case", "max-header-bytes 4096\nmax-body-bytes 1gi\n" BT, OK
	  "max_header_bytes=4096 max_body_bytes=1073741824" },
	{ "header size minimum", "max-header-bytes 1023\n" BT,
	  ":1: bad max-header-bytes '1023': must be at least 1024 bytes" },
	{ "header size maximum", "max-header-bytes 2Mi\n" BT,
	  ":1: bad max-header-bytes '2Mi': expected a number, at most 1048576 bytes" },
	{ "body size maximum", "max-body-bytes 2g\n" BT,
	  ":1: bad max-body-bytes '2g': too large (max 1073741824)" },
	{ "size bad suffix", "max-body-bytes 3Xi\n" BT, ":1: bad max-body-bytes '3Xi'" },
	{ "size bare suffix", "max-body-bytes Ki\n" BT, ":1: bad max-body-bytes 'Ki'" },

	/* timeouts and backends' health */
	{ "timeouts", "header-timeout 1s\nbody-timeout 2s\nidle-timeout 3m\nconnect-timeout 250ms\n"
	  "backend-timeout 90s\nbackend-down 10s\nbackend-fails 1\nmax-clients 10k\n" BT, OK
	  "header_timeout_ms=1000 body_timeout_ms=2000 idle_timeout_ms=180000 "
	  "connect_timeout_ms=250 backend_timeout_ms=90000 backend_down_ms=10000 "
	  "backend_fails=1 max_clients=10000" },
	{ "timeout 0", "header-timeout 0ms\n" BT, ":1: bad header-timeout '0ms': at least 1ms" },
	{ "timeout no unit", "backend-timeout 60\n" BT, ":1: bad backend-timeout '60': give a unit" },
	{ "backend-fails 0", "backend-fails 0\n" BT, ":1: bad backend-fails '0': must be at least 1" },
	{ "max-clients 0", "max-clients 0\n" BT, ":1: bad max-clients '0': must be at least 1" },

	/* escalation */
	{ "deny-after", "deny-after 20 within 10s ban 60s\n" BT, OK
	  "deny_after=20 deny_window_ms=10000 deny_ban_s=60" },
	{ "deny-after other values", "deny-after 5 ban 2m within 500ms\n" BT, OK
	  "deny_after=5 deny_window_ms=500 deny_ban_s=120" },
	{ "deny-after count only", "deny-after 3\n" BT, OK
	  "deny_after=3 deny_window_ms=10000 deny_ban_s=60" },
	{ "deny-after off", "deny-after off\n" BT, OK "deny_after=0" },
	{ "deny-after 0", "deny-after 0\n" BT,
	  ":1: bad deny-after count '0': must be at least 1" },
	{ "deny-after ban fraction", "deny-after 5 ban 1500ms\n" BT,
	  ":1: bad deny-after ban '1500ms': whole seconds only" },
	{ "deny-after ban short", "deny-after 5 ban 999ms\n" BT,
	  ":1: bad deny-after ban '999ms': at least 1s" },
	{ "deny-after window no unit", "deny-after 5 within 10\n" BT,
	  ":1: bad deny-after window '10': give a unit" },
	{ "deny-after within twice", "deny-after 5 within 1s within 2s\n" BT,
	  ":1: deny-after: 'within' given twice" },
	{ "deny-after dangling", "deny-after 5 within\n" BT, ":1: deny-after: unexpected 'within'" },
	{ "deny-after junk", "deny-after 5 for 1s\n" BT, ":1: deny-after: unexpected 'for'" },
	{ "deny-after missing", "deny-after\n" BT, ":1: deny-after: expected N" },

	/* signals and kernel */
	{ "signals-port default is the first backend's", "backend [::1]:9100\n" B T, OK
	  "signals_port=9100" },
	{ "signals-port 0", "signals-port 0\n" BT, OK "signals_port=9000" },
	{ "signals-port", "signals-port 8000\n" BT, OK "signals_port=8000" },
	{ "signals-port too large", "signals-port 70000\n" BT,
	  ":1: bad signals-port '70000': too large (max 65535)" },
	{ "kernel off", "kernel off\n" BT, OK "kernel=0" },
	{ "kernel on", "kernel on\n" BT, OK "kernel=1" },
	{ "kernel bad", "kernel maybe\n" BT, ":1: kernel: expected on or off" },

	/* the file as a whole */
	{ "unknown directive", BT "frobnicate 1\n",
	  ":3: unknown directive 'frobnicate' (sluice-l7.conf(5) lists the " },
	{ "unknown directive, a typo", BT "queue-timout 1s\n",
	  ":3: unknown directive 'queue-timout' (did you mean 'queue-timeout'? "
	  "sluice-l7.conf(5) lists them all)" },
	{ "directive case matters", "Period 1s\n" BT, ":1: unknown directive 'Period'" },
	{ "empty file", "", "no 'backend URL' line" },
	{ "no newline at the end", B "tier free", OK "n_tiers=1" },
};

static void run_case(const struct cfg_case *k)
{
	char path[64], checks[1024], got[256];
	struct l7_config c;
	struct errbuf e;
	char *tok, *save = NULL;
	int err;

	err = load_text(k->text, 0600, &c, &e, path, sizeof(path));
	if (strncmp(k->expect, OK, strlen(OK))) {
		size_t pl = strlen(path);

		if (!CHECK(err < 0, "%s: loaded, want error '%s'", k->name, k->expect)) {
			l7_config_free(&c);
			return;
		}
		CHECK(!strncmp(e.msg, path, pl) && e.msg[pl] == ':',
		      "%s: error '%s' does not start with FILE:", k->name, e.msg);
		CHECK(strstr(e.msg + pl, k->expect), "%s: error '%s', want '%s'", k->name,
		      e.msg + pl, k->expect);
		CHECK(c.keys == NULL && c.n_keys == 0, "%s: keys left after an error", k->name);
		return;
	}
	if (!CHECK(err == 0, "%s: error '%s'", k->name, e.msg))
		return;
	snprintf(checks, sizeof(checks), "%s", k->expect + strlen(OK));
	for (tok = strtok_r(checks, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
		/* key:NAME=TIER: the key itself may hold '=', the value never. */
		char *eq = strrchr(tok, '=');

		if (!CHECK(eq, "%s: bad check '%s' in the test", k->name, tok))
			continue;
		*eq = '\0';
		if (!CHECK(!field_value(&c, tok, got, sizeof(got)), "%s: no field '%s'", k->name,
			   tok))
			continue;
		CHECK(!strcmp(got, eq + 1), "%s: %s is '%s', want '%s'", k->name, tok, got,
		      eq + 1);
	}
	l7_config_free(&c);
	CHECK(c.keys == NULL, "%s: l7_config_free leaves keys", k->name);
}

TEST(l7_config_table)
{
	size_t i;

	for (i = 0; i < sizeof(cfg_cases) / sizeof(cfg_cases[0]); i++)
		run_case(&cfg_cases[i]);
}

static int write_file(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "w");
	int ok = f && fputs(text, f) >= 0;

	if (f && fclose(f))
		ok = 0;
	return ok && !chmod(path, mode) ? 0 : -1;
}

/* tls-ca and api-key-file read files: the key is read at load (trailing
 * newline dropped), never shown in an error; api-key-header lowercased;
 * a bad key file refused with its reason. */
TEST(l7_config_backend_files)
{
	char dir[] = "/tmp/l7cfg-files-XXXXXX", ca[64], key[64], wkey[64], empty[64],
	     spaced[64], text[512];
	struct l7_config c;
	struct errbuf e;

	if (!CHECK(mkdtemp(dir), "mkdtemp: %s", strerror(errno)))
		return;
	snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
	snprintf(key, sizeof(key), "%s/key", dir);
	snprintf(wkey, sizeof(wkey), "%s/wkey", dir);
	snprintf(empty, sizeof(empty), "%s/empty", dir);
	snprintf(spaced, sizeof(spaced), "%s/spaced", dir);
	CHECK(!write_file(ca, "-----BEGIN CERTIFICATE-----\n", 0644) &&
	      !write_file(key, "sk-provider-secret-1\n", 0600) &&
	      !write_file(wkey, "sk-provider-secret-2", 0644) &&
	      !write_file(empty, "\n", 0600) &&
	      !write_file(spaced, "sk-a sk-b\n", 0600), "write the files");

	snprintf(text, sizeof(text), "backend https://api.example.com tls-ca %s api-key-file %s "
		 "api-key-header X-Api-Key\ntier free\n", ca, key);
	if (CHECK(!load_text(text, 0600, &c, &e, NULL, 0), "load: %s", e.msg)) {
		CHECK(!strcmp(c.backends[0].tls_ca, ca), "tls-ca '%s'", c.backends[0].tls_ca);
		CHECK(!strcmp(c.backends[0].api_key, "sk-provider-secret-1"), "the key as read");
		CHECK(!strcmp(c.backends[0].api_key_header, "x-api-key"), "api-key-header '%s'",
		      c.backends[0].api_key_header);
		l7_config_free(&c);
	}
	/* Authorization is the default header: as Bearer. */
	snprintf(text, sizeof(text), "backend https://api.example.com api-key-file %s "
		 "api-key-header Authorization\ntier free\n", wkey);
	if (CHECK(!load_text(text, 0600, &c, &e, NULL, 0), "load: %s", e.msg)) {
		CHECK(!strcmp(c.backends[0].api_key, "sk-provider-secret-2"), "the key as read");
		CHECK(!c.backends[0].api_key_header[0], "Authorization: the default");
		l7_config_free(&c);
	}
	snprintf(text, sizeof(text), "backend https://api.example.com tls-ca %s tls-verify off\n"
		 "tier free\n", ca);
	CHECK(load_text(text, 0600, &c, &e, NULL, 0) < 0 &&
	      strstr(e.msg, ":1: backend https://api.example.com:443: tls-ca and tls-verify off "
		     "contradict each other"), "tls-ca with tls-verify off: '%s'", e.msg);
	snprintf(text, sizeof(text), "backend https://api.example.com api-key-file %s\n"
		 "tier free\n", empty);
	CHECK(load_text(text, 0600, &c, &e, NULL, 0) < 0 &&
	      strstr(e.msg, ":1: api-key-file ") && strstr(e.msg, "/empty: empty"),
	      "empty key file: '%s'", e.msg);
	snprintf(text, sizeof(text), "backend https://api.example.com api-key-file %s\n"
		 "tier free\n", spaced);
	CHECK(load_text(text, 0600, &c, &e, NULL, 0) < 0 &&
	      strstr(e.msg, "the key must be one line of visible characters") &&
	      !strstr(e.msg, "sk-a"), "key with a blank: '%s' (and the key not shown)", e.msg);
	snprintf(text, sizeof(text), "backend https://api.example.com header Authorization "
		 "x api-key-file %s\ntier free\n", key);
	CHECK(load_text(text, 0600, &c, &e, NULL, 0) < 0 &&
	      strstr(e.msg, ":1: backend https://api.example.com:443: header authorization "
		     "would be sent besides the api-key-file's key"), "header and key: '%s'", e.msg);
	snprintf(text, sizeof(text), "backend https://api.example.com api-key-file %s "
		 "api-key-file %s\ntier free\n", key, wkey);
	CHECK(load_text(text, 0600, &c, &e, NULL, 0) < 0 &&
	      strstr(e.msg, ":1: api-key-file: given twice"), "two key files: '%s'", e.msg);
	unlink(ca);
	unlink(key);
	unlink(wkey);
	unlink(empty);
	unlink(spaced);
	rmdir(dir);
}

/* The loaded struct starts from l7_config_defaults: the table's "defaults"
 * row checks the numbers, this that the two agree field by field. */
TEST(l7_config_defaults_agree)
{
	struct l7_config c, d;
	struct errbuf e;
	size_t i;

	if (!CHECK(!load_text(BT, 0600, &c, &e, NULL, 0), "load: %s", e.msg))
		return;
	l7_config_defaults(&d);
	for (i = 0; i < sizeof(config_fields) / sizeof(config_fields[0]); i++) {
		const char *n = config_fields[i].name;
		char a[128], b[128];

		/* What the file sets, or load resolves. */
		if (!strcmp(n, "n_backends") || !strcmp(n, "n_tiers") ||
		    !strcmp(n, "signals_port"))
			continue;
		format_field(&c, &config_fields[i], a, sizeof(a));
		format_field(&d, &config_fields[i], b, sizeof(b));
		CHECK(!strcmp(a, b), "%s: loaded '%s', defaults '%s'", n, a, b);
	}
	CHECK(d.keys == NULL && d.n_keys == 0, "defaults hold no keys");
	l7_config_free(&c);
}

/* Appends to a growing text; aborts the test on overflow (a test bug). */
struct text {
	char *buf;
	size_t len, cap;
};

static int text_add(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int text_add(struct text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= t->cap - t->len)
		return -1;
	t->len += (size_t)n;
	return 0;
}

/* Many keys across tiers: each one finds its tier, near misses find none,
 * and the lookup uses len, not a terminating NUL. */
TEST(l7_config_key_lookup)
{
	static char buf[L7_MAX_KEYS * 48 + 1024];
	struct text t = { buf, 0, sizeof(buf) };
	unsigned int i, n = L7_MAX_KEYS, bad = 0, miss = 0;
	struct l7_config c;
	struct errbuf e;
	char k[64];
	int ok = 1;

	ok &= !text_add(&t, B "tier t0\ntier t1\ntier t2\n");
	/* Written in a scrambled order, so the loader's sort matters. */
	for (i = 0; i < n; i++) {
		unsigned int j = (i * 2654435761U) % n;

		ok &= !text_add(&t, "key key-%u-%x tier t%u\n", j, j * 7919, j % 3);
	}
	if (!CHECK(ok, "test text too long"))
		return;
	if (!CHECK(!load_text(buf, 0600, &c, &e, NULL, 0), "load %u keys: %s", n, e.msg))
		return;
	CHECK_EQ(c.n_keys, n, "keys loaded");
	for (i = 1; i < c.n_keys; i++)
		if (strcmp(c.keys[i - 1].key, c.keys[i].key) >= 0)
			bad++;
	CHECK_EQ(bad, 0, "keys out of order");
	bad = 0;
	for (i = 0; i < n; i++) {
		int len = snprintf(k, sizeof(k), "key-%u-%x", i, i * 7919);

		if (l7_config_key_tier(&c, k, (size_t)len) != (int)(i % 3))
			bad++;
		/* One byte short, one byte more, one byte changed. */
		if (l7_config_key_tier(&c, k, (size_t)len - 1) != -1)
			miss++;
		k[len] = 'x';
		if (l7_config_key_tier(&c, k, (size_t)len + 1) != -1)
			miss++;
		k[len - 1] ^= 1;
		if (l7_config_key_tier(&c, k, (size_t)len) != -1)
			miss++;
	}
	CHECK_EQ(bad, 0, "keys not found in their tier");
	CHECK_EQ(miss, 0, "near misses found");
	/* A key inside a larger buffer, as the HTTP parser hands it over. */
	snprintf(k, sizeof(k), "key-17-%xTRAILING", 17 * 7919);
	CHECK_EQ(l7_config_key_tier(&c, k, strlen(k) - 8), 17 % 3, "key by length");
	CHECK_EQ(l7_config_key_tier(&c, "", 0), (unsigned long long)-1, "empty key");
	CHECK_EQ(l7_config_key_tier(&c, c.keys[0].key, strlen(c.keys[0].key)), c.keys[0].tier,
		 "first key");
	i = c.n_keys - 1;
	CHECK_EQ(l7_config_key_tier(&c, c.keys[i].key, strlen(c.keys[i].key)), c.keys[i].tier,
		 "last key");
	CHECK_EQ(l7_config_key_tier(&c, "a", 1), (unsigned long long)-1, "before the first");
	CHECK_EQ(l7_config_key_tier(&c, "zzz", 3), (unsigned long long)-1, "after the last");
	snprintf(k, sizeof(k), "key-1-%x", 7919);
	l7_config_free(&c);
	CHECK_EQ(l7_config_key_tier(&c, k, strlen(k)), (unsigned long long)-1,
		 "lookup after free");
	l7_config_free(&c);   /* twice is harmless */
	CHECK(c.keys == NULL, "free twice");
}

/* Table limits: the maximum loads, one more is refused on its line. */
TEST(l7_config_limits)
{
	static char buf[(L7_MAX_KEYS + 2) * 48 + 1024];
	struct l7_config c;
	struct errbuf e;
	char want[64];
	unsigned int i, round;

	for (round = 0; round < 2; round++) {
		struct text t = { buf, 0, sizeof(buf) };
		unsigned int extra = round;   /* 0: the maximum, 1: one more */
		int ok = 1, err;

		for (i = 0; i < L7_MAX_BACKENDS + extra; i++)
			ok &= !text_add(&t, "backend 127.0.1.%u:9000\n", i + 1);
		for (i = 0; i < L7_MAX_TIERS; i++)
			ok &= !text_add(&t, "tier t%u\n", i);
		if (!CHECK(ok, "test text too long"))
			return;
		err = load_text(buf, 0600, &c, &e, NULL, 0);
		if (!extra) {
			CHECK(err == 0, "%d backends, %d tiers: %s", L7_MAX_BACKENDS, L7_MAX_TIERS,
			      e.msg);
			CHECK_EQ(c.n_backends, L7_MAX_BACKENDS, "backends");
			CHECK_EQ(c.n_tiers, L7_MAX_TIERS, "tiers");
			l7_config_free(&c);
		} else {
			snprintf(want, sizeof(want), ":%d: backend: more than %d backends",
				 L7_MAX_BACKENDS + 1, L7_MAX_BACKENDS);
			CHECK(err == -ENOSPC && strstr(e.msg, want), "error '%s', want '%s'",
			      e.msg, want);
		}
	}
	{
		struct text t = { buf, 0, sizeof(buf) };
		int ok = !text_add(&t, B);

		for (i = 0; i <= L7_MAX_TIERS; i++)
			ok &= !text_add(&t, "tier t%u\n", i);
		CHECK(ok, "test text too long");
		snprintf(want, sizeof(want), ":%d: tier t%d: more than %d tiers",
			 L7_MAX_TIERS + 2, L7_MAX_TIERS, L7_MAX_TIERS);
		CHECK(load_text(buf, 0600, &c, &e, NULL, 0) == -ENOSPC && strstr(e.msg, want),
		      "error '%s', want '%s'", e.msg, want);
	}
	{
		struct text t = { buf, 0, sizeof(buf) };
		int ok = !text_add(&t, BT);

		for (i = 0; i <= L7_MAX_KEYS; i++)
			ok &= !text_add(&t, "key k%u tier free\n", i);
		CHECK(ok, "test text too long");
		snprintf(want, sizeof(want), ":%d: key: more than %d keys", L7_MAX_KEYS + 3,
			 L7_MAX_KEYS);
		CHECK(load_text(buf, 0600, &c, &e, NULL, 0) == -ENOSPC && strstr(e.msg, want),
		      "error '%s', want '%s'", e.msg, want);
	}
	{
		/* The longest key loads; one character more does not. */
		char key[L7_KEY_LEN + 1], text[512];

		memset(key, 'k', sizeof(key));
		key[L7_KEY_LEN - 1] = '\0';
		snprintf(text, sizeof(text), BT "key %s tier free\n", key);
		if (CHECK(!load_text(text, 0600, &c, &e, NULL, 0), "longest key: %s", e.msg)) {
			CHECK_EQ(l7_config_key_tier(&c, key, L7_KEY_LEN - 1), 0, "longest key");
			l7_config_free(&c);
		}
		key[L7_KEY_LEN - 1] = 'k';
		key[L7_KEY_LEN] = '\0';
		snprintf(text, sizeof(text), BT "key %s tier free\n", key);
		CHECK(load_text(text, 0600, &c, &e, NULL, 0) == -EINVAL &&
		      strstr(e.msg, ":3: key kkkk...: longer than 127 characters"),
		      "overlong key: '%s'", e.msg);
		CHECK(!strstr(e.msg, key), "the error shows the whole key: '%s'", e.msg);
	}
	{
		/* parse_lines' own limit, with the line number. */
		struct text t = { buf, 0, sizeof(buf) };
		int ok = !text_add(&t, BT "# ");

		for (i = 0; i < 5000; i++)
			ok &= !text_add(&t, "x");
		ok &= !text_add(&t, "\n");
		CHECK(ok, "test text too long");
		CHECK(load_text(buf, 0600, &c, &e, NULL, 0) == -EINVAL &&
		      strstr(e.msg, ":3: line longer than"), "long line: '%s'", e.msg);
	}
}

TEST(l7_config_file_errors)
{
	struct l7_config c;
	struct errbuf e;
	char dir[] = "/tmp/l7cfg-dir-XXXXXX";

	CHECK(l7_config_load("/nonexistent/l7.conf", &c, &e) == -ENOENT &&
	      !strcmp(e.msg, "/nonexistent/l7.conf: No such file or directory"),
	      "missing file: '%s'", e.msg);
	CHECK(c.keys == NULL, "keys after a missing file");
	if (CHECK(mkdtemp(dir), "mkdtemp: %s", strerror(errno))) {
		CHECK(l7_config_load(dir, &c, &e) == -EISDIR && strstr(e.msg, "is a directory"),
		      "directory: '%s'", e.msg);
		rmdir(dir);
	}
}

/* Runs a load with stderr in a file and the log at warn level; returns
 * what was logged. */
static void load_logged(const char *text, mode_t mode, char *out, size_t len, int *err)
{
	char tmpl[] = "/tmp/l7cfg-log-XXXXXX";
	struct l7_config c;
	struct errbuf e;
	int fd, saved;
	ssize_t n;

	out[0] = '\0';
	*err = -EIO;
	fd = mkstemp(tmpl);
	if (!CHECK(fd >= 0, "mkstemp: %s", strerror(errno)))
		return;
	unlink(tmpl);
	fflush(stderr);
	saved = dup(2);
	if (!CHECK(saved >= 0 && dup2(fd, 2) == 2, "redirect stderr: %s", strerror(errno))) {
		close(fd);
		return;
	}
	log_init("unit-tests", LOG_WARN);
	*err = load_text(text, mode, &c, &e, NULL, 0);
	log_init("unit-tests", LOG_ERR);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	if (!*err)
		l7_config_free(&c);
	n = pread(fd, out, len - 1, 0);
	out[n > 0 ? n : 0] = '\0';
	close(fd);
}

TEST(l7_config_warns_on_readable_keys)
{
	static const struct {
		const char *text;
		mode_t mode;
		const char *want;    /* NULL: no warning */
	} rows[] = {
		{ BT "key sk-1 tier free\n", 0644, "readable by group and others (mode 644): chmod 600" },
		{ BT "key sk-1 tier free\n", 0640, "readable by group (mode 640): chmod 600" },
		{ BT "key sk-1 tier free\n", 0604, "readable by others (mode 604): chmod 600" },
		{ BT "key sk-1 tier free\n", 0600, NULL },
		{ BT "key sk-1 tier free\n", 0400, NULL },
		{ BT, 0644, NULL },                     /* no keys, nothing to hide */
	};
	char log[1024];
	size_t i;
	int err;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		load_logged(rows[i].text, rows[i].mode, log, sizeof(log), &err);
		CHECK(err == 0, "row %zu: load failed (%d)", i, err);
		if (rows[i].want)
			CHECK(strstr(log, rows[i].want) && strstr(log, "holds API keys"),
			      "row %zu: logged '%s', want '%s'", i, log, rows[i].want);
		else
			CHECK(!log[0], "row %zu: logged '%s', want nothing", i, log);
	}
}

/* An upstream key readable by others is warned about, by path and mode,
 * never by content; one only its owner reads is not. */
TEST(l7_config_warns_on_readable_api_key_file)
{
	char dir[] = "/tmp/l7cfg-akey-XXXXXX", key[64], text[256], log[1024];
	int err;

	if (!CHECK(mkdtemp(dir), "mkdtemp: %s", strerror(errno)))
		return;
	snprintf(key, sizeof(key), "%s/key", dir);
	CHECK(!write_file(key, "sk-provider-visible\n", 0644), "write %s", key);
	snprintf(text, sizeof(text), "backend https://api.example.com api-key-file %s\ntier t\n",
		 key);
	load_logged(text, 0600, log, sizeof(log), &err);
	CHECK(err == 0, "load failed (%d)", err);
	CHECK(strstr(log, "api-key-file ") && strstr(log, "/key: readable by others (mode 644): "
						       "chmod 600"), "logged '%s'", log);
	CHECK(!strstr(log, "sk-provider"), "the key itself is never logged: '%s'", log);
	CHECK(!chmod(key, 0600), "chmod");
	load_logged(text, 0600, log, sizeof(log), &err);
	CHECK(err == 0 && !log[0], "mode 600: logged '%s', want nothing", log);
	unlink(key);
	rmdir(dir);
}

/* `store`: the same words as sluiced's; the instance defaults to host:PORT of
 * the listener; given twice or malformed is an error naming the line. */
TEST(l7_config_store)
{
	struct l7_config c;
	struct errbuf e;
	char want[80], host[64] = "";
	int err;

	err = load_text("listen 127.0.0.1:8123\nbackend 127.0.0.1:9000\ntier t\n", 0600, &c, &e,
			NULL, 0);
	if (CHECK(err == 0, "no store: %s", e.msg)) {
		CHECK(!c.store.on, "without store, store.on is 0");
		l7_config_free(&c);
	}
	err = load_text("listen 127.0.0.1:8123\nbackend 127.0.0.1:9000\ntier t\n"
			"store redis unix:/run/r.sock prefix p1 timeout 80ms\n", 0600, &c, &e, NULL, 0);
	if (CHECK(err == 0, "store: %s", e.msg)) {
		gethostname(host, sizeof(host) - 1);
		snprintf(want, sizeof(want), "%.40s:8123", host);
		CHECK(c.store.on && !strcmp(c.store.path, "/run/r.sock"), "path %s", c.store.path);
		CHECK(!strcmp(c.store.prefix, "p1"), "prefix %s", c.store.prefix);
		CHECK_EQ(c.store.timeout_ms, 80, "timeout");
		CHECK(!strcmp(c.store.instance, want), "instance '%s', want '%s'", c.store.instance,
		      want);
		l7_config_free(&c);
	}
	err = load_text("backend 127.0.0.1:9000\ntier t\nstore redis 127.0.0.1:6379 instance gw-7\n",
			0600, &c, &e, NULL, 0);
	if (CHECK(err == 0, "store with instance: %s", e.msg)) {
		CHECK(!strcmp(c.store.instance, "gw-7"), "instance %s", c.store.instance);
		l7_config_free(&c);
	}
	err = load_text("backend 127.0.0.1:9000\ntier t\nstore redis 127.0.0.1:6379\n"
			"store redis 127.0.0.1:6380\n", 0600, &c, &e, NULL, 0);
	CHECK(err < 0 && strstr(e.msg, ":4: store: given twice"), "twice: %d '%s'", err, e.msg);
	err = load_text("backend 127.0.0.1:9000\ntier t\nstore redis\n", 0600, &c, &e, NULL, 0);
	CHECK(err < 0 && strstr(e.msg, ":3: store"), "malformed: %d '%s'", err, e.msg);
}

/* --check's description: each bucket's rate and capacity as loaded (the
 * default burst being the rate), the x-ratelimit-limit-* a fresh key sees
 * (the caller's bucket, else the tier's), and the too-large threshold (the
 * smaller tpm capacity). */
TEST(l7_config_describe_tiers)
{
	static const char text[] =
		"backend 127.0.0.1:9\nperiod 6s\n"
		"tier free rpm 60 tpm 100k\n"
		"tier pro priority 3 rpm 600 rpm-burst 50 tier-tpm 10m tier-tpm-burst 500k "
		"tpm-kind output concurrency 2\n"
		"tier open\n"
		"default-tier pro\n";
	static const char *const want[] = {
		"tier free: priority 0\n",
		"  rpm       60 per 6s, bucket capacity (burst) 60\n",
		"  tpm       100000 per 6s, bucket capacity (burst) 100000\n",
		"  headers   x-ratelimit-limit-requests 60\n",
		"  headers   x-ratelimit-limit-tokens 100000\n",
		"  too large above 100000 tokens (estimated): 429 request_too_large\n",
		"tier pro (default): priority 3\n",
		"  rpm       600 per 6s, bucket capacity (burst) 50\n",
		"  tier-tpm  10000000 per 6s, bucket capacity (burst) 500000\n",
		"  tpm-kind  output\n",
		"  conc      2 in flight per key\n",
		"  headers   x-ratelimit-limit-requests 50\n",
		"  headers   x-ratelimit-limit-tokens 500000\n",
		"  too large above 500000 tokens (estimated): 429 request_too_large\n",
		"tier open: priority 0\n  rpm       unlimited\n  tpm       unlimited\n"
		"  tier-rpm  unlimited\n  tier-tpm  unlimited\n",
	};
	struct l7_config c;
	struct errbuf e;
	char *out = NULL, *open_tier;
	size_t len = 0;
	FILE *f;

	if (!CHECK(load_text(text, 0600, &c, &e, NULL, 0) == 0, "load: %s", e.msg))
		return;
	f = open_memstream(&out, &len);
	if (!CHECK(f, "open_memstream: %s", strerror(errno))) {
		l7_config_free(&c);
		return;
	}
	l7_config_describe(&c, f);
	fclose(f);
	for (size_t i = 0; i < NELEM(want); i++)
		CHECK(strstr(out, want[i]), "the description has \"%s\":\n%s", want[i], out);
	/* a tier without limits promises no headers and refuses nothing */
	open_tier = strstr(out, "tier open");
	CHECK(open_tier && !strstr(open_tier, "headers") && !strstr(open_tier, "too large"),
	      "tier open: no headers, no size limit:\n%s", out);
	free(out);
	l7_config_free(&c);
}
