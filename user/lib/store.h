/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * store.h - the shared store (Redis) that makes limits fleet-wide: one
 * connection per process, hiredis's async API on the program's event loop,
 * every decision one server-side script run with EVALSHA (loaded at
 * connect, sent again as EVAL on NOSCRIPT).
 *
 * The same directive in sluiced.conf and in sluice-l7's file:
 *
 *   store redis ADDR:PORT|unix:PATH [password-file FILE] [prefix WORD]
 *                [instance NAME] [timeout DURATION]
 *
 * Health is a state machine with one log line per change: down (no
 * connection; reconnecting with backoff), connecting (connected, running
 * the handshake: AUTH, the epoch, the scripts), up. A request slower than
 * `timeout`, a reply of the wrong type or a script error take the
 * connection down; callers then use their fallback, never unlimited and
 * never zero.
 *
 * The epoch: on every connect the client reads (creating it if absent) the
 * key PREFIX:epoch, the server time in ms when this store's state began.
 * A store that restarted empty has a new epoch, and the scripts start a
 * missing bucket from it (empty, then refilling) instead of full.
 */
#ifndef SLUICE_STORE_H
#define SLUICE_STORE_H

#include <stddef.h>
#include <stdint.h>
#include "log.h"

struct loop;
struct redisReply;

#define STORE_ADDR_LEN 108
#define STORE_WORD_LEN 64
#define STORE_DEFAULT_PREFIX "sluice"
#define STORE_DEFAULT_TIMEOUT_MS 50
#define STORE_MAX_ARGS 32
#define STORE_MAX_PENDING 4096        /* requests in flight; more fail at once */

struct store_config {
	int on;
	char addr[STORE_ADDR_LEN];        /* as written: "10.0.0.5:6379", "unix:/run/redis.sock" */
	char host[STORE_ADDR_LEN];        /* numeric address, or "" for unix */
	unsigned int port;
	char path[STORE_ADDR_LEN];        /* unix socket path, or "" */
	char password_file[256];          /* "" = no AUTH */
	char prefix[STORE_WORD_LEN];
	char instance[STORE_WORD_LEN];    /* "" = the caller's default */
	uint64_t timeout_ms;
	unsigned int line;                /* where it was written, for messages */
};

/* Parses the words of a `store` line (w[0] is "store"). */
int store_config_parse(int n, char **w, struct store_config *c, struct errbuf *e);
int store_config_equal(const struct store_config *a, const struct store_config *b);
/* Reads the password (first line, at most 512 bytes) into buf; warns once
 * when the file is readable by others than its owner. Never logs it. */
int store_password_read(const char *path, char *buf, size_t len, struct errbuf *e);
/* hostname, or hostname:suffix when suffix is not NULL. */
void store_default_instance(char *buf, size_t len, const char *suffix);

enum store_state { STORE_DOWN = 0, STORE_CONNECTING, STORE_UP };
const char *store_state_name(enum store_state s);

/* A script the store loads at connect: its name (for messages) and body. */
struct store_script {
	const char *name;
	const char *body;
};

/* What a request ends with: 0 and a reply, or no reply and
 *   -ENOTCONN   the store is not up (or went down before the reply)
 *   -ETIMEDOUT  no reply within `timeout`
 *   -EPROTO     an error reply (a script error), or NULL where one was due
 *   -ENOSPC     too many requests in flight
 * A request ends exactly once, unless cancelled first. Failures are
 * delivered from the loop (posted), never from inside store_eval. */
typedef void (*store_cb)(void *arg, int err, const struct redisReply *r);

struct store_req;
struct store;

struct store_stats {
	uint64_t requests, replies, errors, timeouts, not_connected, noscript;
	uint64_t connects, disconnects;
	uint64_t last_rtt_us;
	uint64_t state_since_ns;          /* CLOCK_MONOTONIC */
};

/* Connects in the background (the state starts at down, then moves on);
 * on_state (may be NULL) is told every change. The scripts' array must
 * outlive the store. */
int store_open(struct loop *l, const struct store_config *c, const struct store_script *scripts,
	       size_t n_scripts, void (*on_state)(void *arg, enum store_state s), void *arg,
	       struct store **out);
/* Every request still pending ends with -ENOTCONN (posted; the callbacks
 * run only if the loop runs again), then the connection closes. */
void store_close(struct store *s);

enum store_state store_state(const struct store *s);
const struct store_stats *store_stats(const struct store *s);
/* The epoch's birth (server ms), valid once up. */
uint64_t store_born_ms(const struct store *s);
const char *store_prefix(const struct store *s);
const char *store_instance(const struct store *s);
const char *store_addr(const struct store *s);
/* The last failure, for status lines ("" when none). */
const char *store_last_error(const struct store *s);

/* Runs scripts[script] with keys and args (strings; lengths from strlen).
 * Returns the request (to cancel), or NULL when it failed at once; then cb
 * is still called, posted, with the reason. */
struct store_req *store_eval(struct store *s, unsigned int script, int n_keys,
			     const char *const *keys, int n_args, const char *const *args,
			     store_cb cb, void *arg);
/* The owner no longer wants the answer: cb is not called. */
void store_cancel(struct store_req *r);

/* Helpers to read a script's integer-array reply: -EPROTO unless r is an
 * array of at least n integers. */
int store_reply_ints(const struct redisReply *r, long long *out, size_t n);

#endif
