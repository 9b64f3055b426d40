/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * l7.h - sluice-l7's proxy: the structs its files share.
 *
 *   server.c    open, listen, accept, reload, drain, signals, the tick,
 *               run and close; the loop glue and the posted work of struct l7
 *   client.c    a client connection: read a head and body, flush, lingering
 *               close, its timer, its teardown
 *   admit.c     who is calling, the token estimate, limits, the wait queue
 *   respond.c   sluice-l7's own responses (errors, 429s) and the
 *               x-ratelimit-* headers every response carries
 *   upstream.c  backend connections: send the request, stream the response
 *   backend.c   the backend set: round robin, passive health, idle pool
 *   backend_addr.c  a backend's addresses (a name resolved and re-resolved on
 *               the loop), its TLS context, the headers it adds
 *   provider_glue.c  limits the backends announce (429, x-ratelimit-*)
 *   l7_metrics.c  the Prometheus exposition
 *   fleet.c     the store (docs/fleet.md): fleet-wide limits, the local
 *               share when the store fails, slot renewals, l7_hello
 *
 * One thread, one event loop (user/lib/loop.h): sockets registered once,
 * edge-triggered, every socket non-blocking.
 * A client connection carries one request at a time: pipelined requests
 * wait in its input buffer until the response before them is complete, so
 * responses go out in order.
 *
 * Who frees what. Each object has one owner, which alone frees it, and
 * always from posted work (l->reap), so no caller up the stack is left
 * holding freed memory:
 *   client    client.c: client_accept makes it; client_close (anyone may
 *             call it) takes it off the loop, cancels its post and marks it
 *             dead; client_reap frees it.
 *   upstream  upstream.c: made by upstream_start, closed only there
 *             (upstream_abort when its client goes, upstream_close for the
 *             pool), freed by upstream_reap. backend.c's pool only links
 *             idle ones.
 *
 * Completions are posted, not called. A finished request
 * (client_request_done, also from respond_error) posts c->process, and the
 * client's next pipelined request is read from there; a freed slot
 * (admit_release) posts l->dispatch, which starts the queue's waiters. So
 * no client's processing runs inside another's call stack, or recursively
 * inside its own. client_close cancels c->process; l7_close cancels both.
 * Timeouts are a timer per client and per upstream; the tick only expires
 * the wait queue, flushes the kernel's counters and ends a drain.
 */
#ifndef SLUICE_L7_H
#define SLUICE_L7_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include "http.h"
#include "l7_config.h"
#include "l7_kernel.h"
#include "buf.h"
#include "limiter.h"
#include "loop.h"
#include "metrics_http.h"
#include "provider.h"
#include "queue.h"
#include "resolve.h"
#include "tls.h"
#include "tokens.h"

/* "Name: value\r\n" (respond.c) */
int l7_header_put(struct buf *b, const struct http_header *h);

enum client_state {
	CL_HEAD = 0,      /* reading a request head */
	CL_BODY,          /* reading its body */
	CL_STORE,         /* waiting for the store's answer (l7_take, l7_slot_acquire) */
	CL_QUEUED,        /* admitted by rate, waiting for a slot */
	CL_UPSTREAM,      /* at a backend */
};

/* Why a request ended as it did: the metrics' reasons. */
enum l7_outcome {
	OUT_PROXIED = 0,
	OUT_LIMITED,      /* 429 by a rate limit */
	OUT_QUEUE_FULL,   /* 429/503: the wait queue is full */
	OUT_QUEUE_TIMEOUT,/* 429/503: waited too long */
	OUT_OVERLOAD,     /* 503: no backend, or no slot */
	OUT_BAD_REQUEST,  /* 4xx for the request itself */
	OUT_UPSTREAM_ERR, /* 502/504 */
	OUT_UNAUTHORIZED, /* 401: unknown key and unknown-keys refuse */
	OUT_TOO_LARGE,    /* 429 request_too_large: more tokens than a tpm bucket holds */
	OUT_MAX,
};

struct upstream;

#define L7_REQ_ID_MAX 64            /* a client's x-request-id longer than this is replaced */
/* A lingering close (client_linger): input is read and discarded for at
 * most this long and this much, then the socket is closed. */
#define L7_LINGER_MS 5000u
#define L7_LINGER_BYTES (64ULL << 20)

struct client {
	struct loop_io io;              /* io.fd is the socket */
	struct l7 *l7;
	struct client *prev, *next;     /* all clients: drain, fleet renewals */
	uint8_t addr[16];               /* IPv4-mapped for IPv4 */
	char addr_str[48];
	int readable;                   /* an input edge not yet read to EAGAIN */
	int rdhup;                      /* the peer's FIN was signalled: read to the end */
	enum client_state state;
	uint64_t deadline_ns;           /* of the current state; 0 = none */
	struct loop_timer timer;        /* at deadline_ns (client_deadline) */
	int deadline_idle;              /* it is the keep-alive idle one */
	int closing;                    /* close once out is written */
	int linger;                     /* ...then linger: the request may still be coming */
	int lingering;                  /* write side shut, discarding input (client_linger) */
	uint64_t linger_bytes;          /* discarded so far */
	int peer_gone;

	struct buf in, out;

	/* The request being served. Its head is parsed in `in` and copied out
	 * at once (fwd, key, method), so `in` can move on. */
	struct loop_post process;       /* the next request, after a completion */
	int held_back;                  /* stopped by a full `out`: the flush that drains it posts */
	unsigned int retried;           /* tries resent: no pooled connection after one */
	struct buf fwd;               /* request line and headers for the backend */
	char key[L7_KEY_LEN];           /* the API key, "" if none */
	int key_len;                    /* -1: longer than L7_KEY_LEN allows */
	int minor;                      /* HTTP/1.<minor> of the request */
	struct http_request req;        /* spans into `in`: valid until consumed */
	enum http_body body_kind;
	struct http_chunked chunked;
	uint64_t body_left;             /* Content-Length bytes still to read */
	struct buf body;              /* the decoded request body */
	int keep_alive, is_head;
	int dead;                       /* closed: freed by posted work */
	struct client *dead_next;
	char method[HTTP_MAX_METHOD];
	char req_id[L7_REQ_ID_MAX + 1]; /* x-request-id: the client's (safe), or ours; "" until set */
	enum tokens_api api;
	struct tokens_estimate est;
	struct lim_caller *caller;
	struct lim_ticket ticket;
	unsigned int tier;
	int admitted;                   /* rate taken */
	int shadow_pass;                /* a shadow tier's would-be 429: no charge, no slot */
	int wait_backend;               /* queued for a backend slot (not concurrency) */
	enum lim_reason wait_reason;    /* else the concurrency limit it waits for */
	int holds_slot;                 /* counted in backend_inflight */
	struct wq_entry wq;
	/* With a store (fleet.c). */
	struct store_req *sreq;         /* a take or an acquire in flight: cancelled with c */
	int sreq_kind;                  /* enum store_script_id of sreq */
	int fleet_take;                 /* rated by the store: its reservation to settle */
	int fleet_rated;                /* this request's rate was the store's decision */
	int fleet_slot;                 /* holds a fleet concurrency slot */
	int fleet_slot_local;           /* the store failed it: local slots */
	int fview_ok;                   /* fview has the store's x-ratelimit-* values */
	struct lim_view fview;
	char hid[33];                   /* the caller's hash (never the key) */
	char rid[128];                  /* the request id, unique across the fleet */
	struct upstream *up;
	uint64_t t_start;               /* head complete */
	uint64_t wait_until_ns;         /* queue deadline, from its first wait; 0: none */
	uint32_t prov_held;             /* backends a provider limit kept it off (counted) */
};

enum upstream_state {
	UP_CONNECTING = 0,
	UP_HANDSHAKE,     /* TLS, on an https backend */
	UP_SENDING,
	UP_HEAD,          /* waiting for / reading the response head */
	UP_BODY,
	UP_IDLE,          /* in the pool */
};

struct upstream {
	struct loop_io io;              /* io.fd is the socket */
	struct l7 *l7;
	struct upstream *prev, *next;   /* the pool's idle list, or the busy list */
	unsigned int backend;
	unsigned int addr;              /* index in the backend's addrs, valid while gen is its */
	uint64_t gen;
	struct tls_conn *tls;           /* https: the session on io.fd; NULL for http */
	enum upstream_state state;
	int readable;                   /* an input edge not yet read to EAGAIN */
	int rdhup;
	uint64_t deadline_ns;           /* 0 = none */
	struct loop_timer timer;        /* at deadline_ns (upstream_deadline) */
	int reused;                     /* came from the idle pool */
	int got_bytes;                  /* any response byte: no retry after that */
	struct client *cl;

	struct buf req;               /* the request as sent to the backend */
	struct buf in;                /* the response head, then body bytes */
	struct http_response resp;
	enum http_body body_kind;
	uint64_t remaining;             /* Content-Length bytes left */
	struct http_chunked chunked;
	int paused;                     /* the client is not keeping up */
	int keep_alive;
	int dechunk;                    /* HTTP/1.0 client: send the payload only */
	int head_sent;                  /* the client has the response head */
	int capture_overflow;           /* the JSON body passed CAPTURE_MAX */
	int dead;
	struct upstream *dead_next;

	/* usage: a bounded copy of a JSON body, or an SSE scan */
	int usage_json, usage_sse;
	struct buf capture;
	struct sse_scan sse;
	void *zin;                      /* a z_stream: a gzip/deflate body inflated for usage */
	uint64_t zin_out;               /* bytes it gave, at most L7_INFLATE_MAX */
	uint64_t t_sent, t_first;
	struct provider_ticket prov_ticket;   /* closed by prov_response or prov_closed */
};

/* A compressed response is inflated for its usage up to this many bytes
 * (a stream's whole length; a JSON body stops at its capture's 1 MiB). */
#define L7_INFLATE_MAX (256ULL << 20)
#define L7_TICK_NS 50000000ULL    /* the queue's expiry; a timeout that cannot act yet looks again */
#define L7_POOL_MAX 64            /* idle connections kept per backend */
#define L7_DRAIN_MS 10000u        /* a stop waits this long for requests in progress */

/* One address of a backend: its own health and idle pool, so the round
 * robin over a name's addresses reuses connections to each. */
struct backend_addr {
	struct sockaddr_storage sa;
	socklen_t len;
	char str[L7_ADDR_LEN];          /* "127.0.0.1:9000", "[::1]:9000" */
	unsigned int fails;             /* in a row */
	uint64_t down_until_ns;
	struct upstream *idle;          /* idle pool (list) */
	unsigned int n_idle;
};

struct backend {
	struct l7 *l7;
	unsigned int index;
	char name[L7_URL_LEN];          /* cfg.backends[index].name: logs and metrics */
	struct backend_addr addrs[RESOLVE_MAX_ADDRS];
	unsigned int n_addrs, rr;
	/* Bumped when the address set changes: an upstream of an older one
	 * neither reports health nor goes back to a pool. */
	uint64_t gen;
	uint64_t failures_total, requests_total;
	struct provider prov;           /* its own limits, learned (provider_glue.c) */
	struct tls_ctx *tls;            /* https: one per backend, for its session cache */
	/* A host name: looked up every resolve_every_ms on the loop. */
	struct resolve_req *rreq;
	struct loop_timer rtimer;
	uint64_t resolutions_ok, resolutions_failed;
	int resolve_failing;            /* the last one failed: log the recovery */
};
enum { UPERR_CONNECT = 0, UPERR_RESET, UPERR_TIMEOUT, UPERR_MALFORMED, UPERR_TLS, UPERR_MAX };

/* Counters for the metrics, per tier where it matters. */
struct l7_stats {
	uint64_t responses[L7_MAX_TIERS][6];          /* by class 1xx..5xx; [0] other */
	uint64_t outcomes[L7_MAX_TIERS][OUT_MAX];
	uint64_t limited[L7_MAX_TIERS][LIM_REASONS];  /* rejections by reason */
	uint64_t shadow[L7_MAX_TIERS][LIM_REASONS];   /* would have been */
	uint64_t tokens_in[L7_MAX_TIERS], tokens_out[L7_MAX_TIERS];
	uint64_t estimated_in[L7_MAX_TIERS], estimated_out[L7_MAX_TIERS];
	uint64_t reconciled[L7_MAX_TIERS];            /* requests with a usage count */
	uint64_t unserved_refunds[L7_MAX_TIERS];      /* admitted, then our own 5xx: refunded */
	uint64_t bad_requests[600];                   /* our 4xx/5xx by status */
	uint64_t upstream_errors[UPERR_MAX];          /* connect, reset, timeout, malformed, tls */
	uint64_t retries, bans, accepted, refused_conns;
	uint64_t queued_total;
	uint64_t fleet_local[L7_MAX_TIERS];           /* rate decided locally: the store failed */
	uint64_t fleet_decided[L7_MAX_TIERS];         /* rate decided by the store */
	uint64_t fleet_settles, fleet_renew_fail, fleet_state_changes;
};

struct l7 {
	struct l7_config cfg;
	struct loop *loop;
	int lfd, sfd;
	struct loop_io listen_io, signal_io;
	struct loop_timer tick;                        /* every TICK_NS: queue expiry, flush */
	struct loop_post reap;                         /* frees the dead, checks a drain */
	struct loop_post dispatch;                     /* a slot was freed: start waiters */
	struct loop_timer prov_timer;                  /* a backend's provider limit lifts */
	struct limiter *lim;
	struct wait_queue wq;
	struct backend backends[L7_MAX_BACKENDS];
	unsigned int n_backends, rr;
	struct resolver *resolver;                     /* backends by name; NULL if none */
	unsigned int backend_inflight;
	struct l7_kernel *kern;
	struct metrics_http *mh;
	struct client *clients;
	unsigned int n_clients, n_upstreams;
	struct upstream *busy;                         /* upstreams not idle */
	struct client *dead_clients;                   /* freed by l->reap */
	struct upstream *dead_upstreams;
	struct l7_stats st;
	uint64_t last_flush;
	int draining;                                  /* stopping: no new connections */
	uint64_t drain_deadline_ns;
	const char *config_path;
	/* The store (fleet.c); NULL without `store`. */
	struct store *store;
	unsigned int fleet_live;                       /* instances at the last l7_hello; 1 until known */
	int fleet_up;                                  /* the last state logged: 1 fleet, 0 local */
	uint64_t rid_epoch_ms, rid_seq;
	struct loop_timer fleet_timer;                 /* hello, renewals, retries of the queued */
	uint64_t fleet_next_hello_ns, fleet_next_renew_ns;
	int hello_pending;
	uint64_t req_id_base;                          /* random per process: x-request-id */
	uint64_t req_id_next;                          /* ids made so far */
};

/* server.c */
int l7_open(struct l7 *l, const char *config_path, const struct l7_config *c);
int l7_run(struct l7 *l);
void l7_close(struct l7 *l);
int l7_reload(struct l7 *l);
/* Registers io once, edge-triggered, for input and output. */
int l7_io_add(struct l7 *l, struct loop_io *io, int fd, void (*cb)(struct loop_io *, uint32_t));
void l7_reap_later(struct l7 *l);              /* a client or upstream died */
void l7_dispatch_later(struct l7 *l);          /* a slot was freed: admit_dispatch_queue, posted */

/* client.c */
/* A new connection (fd, non-blocking): 0, or a negative errno with fd closed. */
int client_accept(struct l7 *l, int fd, const struct sockaddr_storage *ss);
void client_flush(struct client *c);          /* write out what it can */
/* The response is complete (written to c->out): limits released, and the
 * next request posted, never run from here. */
void client_request_done(struct client *c);
void client_close(struct client *c);           /* freed later, by client_reap */
void client_reap(struct l7 *l);                /* frees the closed clients */
/* c->req_id: the client's x-request-id if it sent a safe one, else a new
 * unique one; kept for the rest of the request. */
void client_request_id(struct client *c);
/* Sets c's deadline (0: none) and arms its timer: at it, the timeout of the
 * state it is in then. */
void client_deadline(struct client *c, uint64_t when_ns);

/* admit.c */
void admit_request(struct client *c);          /* a complete request */
/* Starts the waiters that can go. Called from l->dispatch (posted by
 * admit_release) or a timer, never from inside a request's end. */
void admit_dispatch_queue(struct l7 *l);
void admit_expire(struct l7 *l);               /* queue timeouts */
void admit_release(struct client *c);          /* the request is over: limits */
/* The backend's response is complete, with HTTP status `status`: a 2xx is
 * charged its usage (else the estimate: fallback_out output tokens), any
 * other status only the usage it reports (else no tokens). */
void admit_reconcile(struct client *c, int status, const struct tokens_usage *u,
		     uint64_t fallback_out);
/* sluice-l7 answers an admitted request with its own 5xx (no backend, a
 * failed connect or exchange, overload): nothing was served, so its request
 * and its whole token reservation go back, to the store if it charged them. */
void admit_unserved(struct client *c);
/* A backend refused c (its own limit) before answering: back to the queue,
 * or refused when it cannot wait that long. */
void admit_requeue(struct client *c);
const char *tier_name(const struct l7 *l, unsigned int tier);

/* respond.c */
/* Completes the request (client_request_done), which only posts the
 * client's next step: the caller may go on using c after it returns (closed
 * at most, on no memory; freed only by the loop's reap). */
void respond_error(struct client *c, int status, const char *type, const char *code,
		   const char *message, uint64_t retry_ns);
/* As respond_error, for a refusal that no wait cures: x-should-retry:
 * false, no Retry-After. */
void respond_final(struct client *c, int status, const char *type, const char *code,
		   const char *message);
int respond_ratelimit_headers(struct client *c, struct buf *out);

/* upstream.c */
void upstream_start(struct client *c);         /* send c's request to a backend */
void upstream_event(struct loop_io *io, uint32_t events);
void upstream_resume(struct upstream *u);      /* the client drained its buffer */
void upstream_abort(struct upstream *u);       /* the client is gone */
void upstream_close(struct upstream *u);       /* one without a client (pooled): closed, reaped */
void upstream_reap(struct l7 *l);              /* frees the closed upstreams */
void upstream_deadline(struct upstream *u, uint64_t when_ns);   /* 0: none */
void upstream_inflate_end(struct upstream *u);  /* frees u->zin */

/* backend.c */
int backends_init(struct l7 *l);
/* A backend in rotation and one of its addresses (round robin over both)
 * whose provider limits let c through: the backend's index with *addr set,
 * or -1 (all down, or kept off c by their provider limits) with *retry_ns. */
int backend_pick(struct l7 *l, struct client *c, unsigned int *addr, uint64_t *retry_ns);
/* Passive health of one address; ignored for an older gen's address. */
void backend_failed(struct l7 *l, unsigned int b, unsigned int addr, uint64_t gen);
void backend_ok(struct l7 *l, unsigned int b, unsigned int addr, uint64_t gen);
/* Some address of be is not resting after failures. */
int backend_up(const struct l7 *l, const struct backend *be);
/* Addresses over all backends: how many tries a request may make. */
unsigned int backend_tries(const struct l7 *l);
struct upstream *backend_idle_take(struct l7 *l, unsigned int b, unsigned int addr);
int backend_idle_put(struct l7 *l, struct upstream *u);   /* -ENOSPC: pool full; -ESTALE */
void backend_idle_drop(struct l7 *l, struct upstream *u);
void backends_close(struct l7 *l);

/* backend_addr.c */
/* Addresses (numeric at once, names on the loop) and TLS contexts. */
int backend_addrs_init(struct l7 *l, struct backend *be);
void backend_addrs_close(struct l7 *l, struct backend *be);
/* The request head for backend b from the client's (fwd): Host for a URL,
 * the backend's headers, its API key in place of the caller's. */
int backend_request_head(const struct l7 *l, unsigned int b, const struct buf *fwd,
			 struct buf *out);

/* fleet.c */
#define FLEET_SLOT_TTL_MS 10000u       /* a slot not renewed is free after this */
#define FLEET_RENEW_MS 3000u           /* renewals of running requests' slots */
#define FLEET_HELLO_MS 1000u
#define FLEET_STALE_MS 3000u           /* an instance silent this long is not counted */
#define FLEET_RETRY_NS 50000000ULL     /* queued requests ask the store again */
#define FLEET_RESERVATION_MS 600000u   /* an unsettled reservation's estimate stands after */
int fleet_open(struct l7 *l);
void fleet_close(struct l7 *l);
int fleet_usable(const struct l7 *l);          /* the store is up */
/* The limiter's limits: the config's divided by the live instances. */
void fleet_share_apply(struct l7 *l);
void fleet_ids(struct client *c, const char *id, size_t len);   /* hid, rid */
int fleet_needs_slot(const struct client *c);
/* 0 when sent (cb then runs once, from the loop), -EINVAL when no key
 * could be built (decide locally). */
int fleet_send_take(struct client *c, store_cb cb);
int fleet_send_acquire(struct client *c, store_cb cb);
void fleet_settle(struct client *c, uint64_t actual, int refund_request);
void fleet_release_slot(struct client *c);
/* c goes: cancels its request in flight, and undoes what it may have done. */
void fleet_drop(struct client *c);

/* provider_glue.c */
void prov_init(struct l7 *l);                  /* from backends_init */
void prov_close(struct l7 *l);
/* Backend b's readiness for c's request (>= now). */
uint64_t prov_ready_at(struct l7 *l, unsigned int b, struct client *c);
/* 1: a backend may take c now (or none is held by its provider), 0: wait
 * (a timer wakes the queue then). */
int prov_admit(struct client *c);
/* 1: no backend may take c before deadline_ns. */
int prov_too_late(struct client *c, uint64_t deadline_ns);
/* A wait that ends: 1 when the backends' limits kept c off them, and it is
 * answered 429 with their wait as Retry-After; 0: not them (no answer). */
int prov_refuse(struct client *c, enum l7_outcome out);
void prov_sent(struct upstream *u, struct client *c);
void prov_closed(struct upstream *u);
/* At a response head: learns, and takes u's client off it when the backend
 * refused (it is queued again). Returns u's client after it, or NULL. */
struct client *prov_response(struct upstream *u);
int prov_metrics(struct buf *o, const struct l7 *l);

/* l7_metrics.c */
int l7_metrics_render(struct buf *out, void *arg);

#endif
