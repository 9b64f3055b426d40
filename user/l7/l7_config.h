/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * l7_config.h - sluice-l7's configuration: where it listens, the backends,
 * the tiers and their limits, the API keys, the timeouts and sizes. Read
 * from a command file in the grammar of sluice's other files (one directive
 * per line, '#' comments; docs/l7-config.md lists every directive), validated
 * as a whole; errors name FILE:LINE and the running configuration stays.
 *
 * Rates are "per period", the period being a minute unless `period` says
 * otherwise (the tests shorten it to run a minute's worth of traffic fast).
 */
#ifndef SLUICE_L7_CONFIG_H
#define SLUICE_L7_CONFIG_H

#include <stdint.h>
#include <stdio.h>
#include "log.h"
#include "store.h"
#include "url.h"

#define L7_MAX_TIERS 16
#define L7_MAX_BACKENDS 16
#define L7_MAX_KEYS 4096
#define L7_NAME_LEN 32
#define L7_KEY_LEN 128          /* an API key, as sent */
#define L7_ADDR_LEN 64          /* "127.0.0.1:8080", "[::1]:8080" */
#define L7_URL_LEN 280          /* "https://" + a 253-character name + ":65535" */
#define L7_PATH_LEN 256         /* tls-ca, api-key-file */
#define L7_BACKEND_HEADERS 8    /* `header NAME VALUE` words per backend */
#define L7_HDR_NAME_LEN 64
#define L7_HDR_VALUE_LEN 256
#define L7_SECRET_LEN 512       /* an upstream API key, from api-key-file */
#define L7_RESOLVE_EVERY_MS 30000ULL

enum l7_tpm_kind {
	L7_TPM_TOTAL = 0,        /* input + output */
	L7_TPM_INPUT,
	L7_TPM_OUTPUT,
};

/* One limit: `rate` units per period, at most `burst` at once. rate 0 =
 * unlimited. burst 0 in the file means the default: the rate, i.e. a whole
 * period's allowance may come at once (what OpenAI's limits allow, and
 * what makes x-ratelimit-limit, the burst, the rate); the loaded config
 * holds that value, so burst is 0 exactly when rate is. */
struct l7_limit {
	uint64_t rate;
	uint64_t burst;
};

struct l7_tier {
	char name[L7_NAME_LEN];
	unsigned int priority;       /* higher is served first from the queue */
	/* per key */
	struct l7_limit rpm, tpm;
	unsigned int concurrency;    /* 0 = unlimited */
	/* the whole tier, every key together */
	struct l7_limit tier_rpm, tier_tpm;
	unsigned int tier_concurrency;
	enum l7_tpm_kind tpm_kind;
	int shadow;                  /* count and log rejections, reject nothing */
};

struct l7_key {
	char key[L7_KEY_LEN];
	unsigned int tier;           /* index into tiers */
};

struct l7_header_set {
	char name[L7_HDR_NAME_LEN];       /* lowercased */
	char value[L7_HDR_VALUE_LEN];
};

/* `backend URL [options]` (docs/l7-config.md). */
struct l7_backend {
	char name[L7_URL_LEN];            /* as metrics and logs name it: ADDR:PORT as written
	                                     for the older form, else the canonical URL */
	struct backend_url url;
	int plain_addr;                   /* written as ADDR:PORT: Host passes through */
	char tls_ca[L7_PATH_LEN];         /* "" = the system store */
	int tls_verify;                   /* `tls-verify off` = 0 */
	struct l7_header_set headers[L7_BACKEND_HEADERS];
	unsigned int n_headers;
	char api_key[L7_SECRET_LEN];      /* from api-key-file; "" = the caller's passes */
	char api_key_file[L7_PATH_LEN];
	char api_key_header[L7_HDR_NAME_LEN];  /* "" = Authorization: Bearer KEY; lowercased */
	uint64_t resolve_every_ms;        /* a host name's addresses, looked up again */
};

struct l7_config {
	char listen[L7_ADDR_LEN];                /* default 127.0.0.1:8080 */
	int listen_any;                          /* `listen ... public`: allow a wildcard */
	struct l7_backend backends[L7_MAX_BACKENDS];
	unsigned int n_backends;
	char metrics[L7_ADDR_LEN];               /* default 127.0.0.1:9465; "" = off */
	int metrics_any;                         /* `metrics ... public`: allow a wildcard */
	uint64_t period_ms;                      /* default 60000 */

	char key_header[L7_NAME_LEN];            /* "" = Authorization: Bearer (default) */
	int refuse_unknown;                      /* unknown keys: 401 instead of default tier */
	unsigned int default_tier;               /* keyless and unknown callers */
	int default_tier_set;
	struct l7_tier tiers[L7_MAX_TIERS];
	unsigned int n_tiers;
	struct l7_key *keys;                     /* L7_MAX_KEYS, owned; sorted by key */
	unsigned int n_keys;

	unsigned int queue_size;                 /* default 256 */
	uint64_t queue_timeout_ms;               /* default 5000 */
	unsigned int backend_concurrency;        /* in flight to all backends; 0 = no limit */
	uint64_t default_max_tokens;             /* default 256 */
	uint64_t max_output_tokens;              /* cap on a reservation; default 32768 */

	uint64_t max_header_bytes;               /* default 16384 (431 past it) */
	uint64_t max_body_bytes;                 /* default 1 MiB (413 past it) */
	uint64_t header_timeout_ms;              /* default 10000 (408) */
	uint64_t body_timeout_ms;                /* default 30000 (408) */
	uint64_t idle_timeout_ms;                /* keep-alive idle, default 60000 */
	uint64_t connect_timeout_ms;             /* to a backend, default 2000 (502) */
	uint64_t backend_timeout_ms;             /* to the first response byte, default 60000 (504) */
	uint64_t backend_down_ms;                /* a failed backend rests, default 5000 */
	unsigned int backend_fails;              /* failures in a row that take it out, default 3 */
	unsigned int max_clients;                /* client connections, default 4096 */

	/* Escalation to the XDP deny list: a client address answered
	 * `deny_after` 429s within `deny_window_ms` is banned for `deny_ban_s`.
	 * deny_after 0 = never. */
	unsigned int deny_after;
	uint64_t deny_window_ms;                 /* default 10000 */
	uint64_t deny_ban_s;                     /* default 60 */
	/* Port the signals are written under; `signals-port 0` (the default) =
	 * the first backend's, filled in by l7_config_load. */
	unsigned int signals_port;
	int kernel;                              /* `kernel off`: no maps at all */
	/* `store redis ...`: every limit fleet-wide (docs/fleet.md); store.on
	 * 0 = none. instance defaults to hostname:PORT of the listener. */
	struct store_config store;
};

void l7_config_defaults(struct l7_config *c);
/* Reads and validates path into c (which it initialises: load into a fresh
 * struct to keep the running one). 0, or a negative errno with
 * "FILE:LINE: reason" in e and nothing to free. Warns (pr_warn) when the file
 * holds keys and is readable by group or others. */
int l7_config_load(const char *path, struct l7_config *c, struct errbuf *e);
void l7_config_free(struct l7_config *c);
/* Each tier's buckets as loaded (rate, period, capacity), the
 * x-ratelimit-limit-* values its callers will see (a fresh key's remaining
 * equals them), and the size above which a request is refused as too large:
 * for `sluice-l7 --check`. */
void l7_config_describe(const struct l7_config *c, FILE *f);
/* A warning (pr_warn) for each https backend with tls-verify off: said by
 * --check and at every reload (lib/tls.c says it when the context is made). */
void l7_config_warn_insecure(const struct l7_config *c);
/* The tier of an API key, or -1 if the key is not configured. */
int l7_config_key_tier(const struct l7_config *c, const char *key, size_t len);

#endif
