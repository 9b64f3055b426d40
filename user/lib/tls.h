/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * tls.h - TLS on non-blocking sockets, with OpenSSL: the client side that
 * sluice-l7 speaks to https backends, and a server side for the test
 * backend (mock-llm --tls-cert).
 *
 * A context (struct tls_ctx) is made once per backend (client) or per
 * listener (server). It holds the settings, the trust store and, on the
 * client side, the backend's last session for resumption. A connection
 * (struct tls_conn) wraps a socket that its caller made, connected (or is
 * still connecting) and keeps owning: the wrapper never closes the fd and
 * never touches the event loop. The caller waits for the readiness that a
 * call asked for and calls again:
 *
 *   c = tls_conn_new(ctx, fd, "api.example.com", &e)
 *   tls_handshake(c): TLS_OK, or TLS_WANT_READ / TLS_WANT_WRITE: wait for
 *       EPOLLIN / EPOLLOUT and call it again; TLS_ERR: tls_error(c) says why
 *       ("certificate verify failed: certificate has expired").
 *   tls_read / tls_write: bytes, or the same TLS_WANT_* / TLS_ERR.
 *   tls_shutdown(c): a best-effort close_notify (never waits), if wanted early.
 *   tls_close(c): the same close_notify if not sent yet, then frees c.
 *   close(fd): the caller's.
 *
 * Rules for the caller:
 * - One client context per backend: its session cache keeps one session,
 *   offered only to connections for the host it was made with.
 * - The handshake may start while connect(2) is still in progress (it then
 *   asks to write); a connect that fails shows as the handshake's error
 *   ("TLS handshake: Connection refused"). Finish tls_handshake before
 *   tls_read/tls_write.
 * - A read can want to write and a write can want to read (a key update, a
 *   session ticket): wait for what the call returned, not for what you
 *   were doing. TLS_WANT_READ from tls_write means "call tls_write again
 *   once the fd is readable".
 * - Edge-triggered epoll: call tls_read until it returns TLS_WANT_READ (or
 *   0 / TLS_ERR). OpenSSL decrypts a whole record at a time, and what did
 *   not fit the caller's buffer stays inside OpenSSL (tls_pending), where
 *   epoll cannot see it: stopping while tls_pending(c) > 0 (e.g. because
 *   the input buffer is full) means that those bytes wait for the next
 *   socket event, which may never come. Drain it before waiting.
 * - After TLS_WANT_WRITE from tls_write, call it again with the same bytes
 *   (at least as many; the buffer may move, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER).
 * - A peer that closes without close_notify reads as a clean 0 (most HTTPS
 *   servers do this): the HTTP framing (Content-Length, chunked, the end
 *   of an event stream) must tell a complete answer from a cut one.
 * - The program must ignore SIGPIPE (OpenSSL writes with write(2)); sluice-l7
 *   and sluiced already do.
 * - All on one thread: a context and its connections are not thread-safe.
 *
 * OpenSSL's error queue is thread-global: every call here clears it before
 * it starts and drains it into the connection's error string when it
 * fails, so one connection's errors never show up in the next one's.
 */
#ifndef SLUICE_TLS_H
#define SLUICE_TLS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "log.h"

struct tls_ctx;
struct tls_conn;

/* Results of tls_handshake, tls_read and tls_write (besides 0 / a count). */
#define TLS_OK          0
#define TLS_WANT_READ  (-1)   /* wait for EPOLLIN, then call the same function again */
#define TLS_WANT_WRITE (-2)   /* wait for EPOLLOUT, then call the same function again */
#define TLS_ERR        (-3)   /* the connection is unusable: tls_error(c), then tls_close */

#define TLS_ERR_LEN 256

struct tls_client_opts {
	const char *backend;  /* the backend as configured, for messages ("https://api:443") */
	const char *ca_file;  /* PEM file of trusted CAs (`tls-ca FILE`); NULL: the system store */
	int insecure;         /* 1: no verification at all (`tls-verify off`); warned at creation */
};

/*
 * A client context: TLS 1.2 or newer, ALPN "http/1.1", the peer's chain
 * verified against ca_file or the system store (SSL_CTX_set_default_verify_paths),
 * and the name or address given to tls_conn_new checked against the
 * certificate. With insecure, none of that is checked, and this logs a
 * warning naming o->backend. 0, or a negative errno with the reason in e.
 */
int tls_client_ctx_new(const struct tls_client_opts *o, struct tls_ctx **out, struct errbuf *e);

/* A server context from PEM files (the chain in cert_file, leaf first). */
int tls_server_ctx_new(const char *cert_file, const char *key_file, struct tls_ctx **out,
		       struct errbuf *e);

/* Frees the context (and its cached session). Its connections must be
 * closed first. NULL is a no-op. */
void tls_ctx_free(struct tls_ctx *ctx);

/* Counters, for metrics and tests. */
struct tls_stats {
	uint64_t handshakes;  /* completed */
	uint64_t resumed;     /* of which resumed a session (SSL_session_reused) */
	uint64_t failed;      /* handshakes that ended in TLS_ERR */
};
void tls_ctx_stats(const struct tls_ctx *ctx, struct tls_stats *out);

/*
 * Wraps fd (non-blocking, owned by the caller). For a client context, host
 * is the backend's name or IP literal (IPv6 without brackets): a name is
 * sent as SNI and must match the certificate's DNS names; an IP literal
 * sends no SNI and must match an IP address entry. The context's last
 * session is offered for resumption. For a server context, host is NULL.
 * Returns NULL with the reason in e (out of memory, a host OpenSSL refuses).
 */
struct tls_conn *tls_conn_new(struct tls_ctx *ctx, int fd, const char *host, struct errbuf *e);

/* TLS_OK once the handshake is done (and then at once on every call),
 * TLS_WANT_READ, TLS_WANT_WRITE or TLS_ERR. */
int tls_handshake(struct tls_conn *c);

/* Up to len decrypted bytes: a count > 0; 0 at the end of the stream
 * (close_notify or EOF); or TLS_WANT_READ / TLS_WANT_WRITE / TLS_ERR. */
ssize_t tls_read(struct tls_conn *c, void *buf, size_t len);
/* Decrypted bytes already inside OpenSSL, readable without the socket. */
size_t tls_pending(const struct tls_conn *c);

/* Writes up to len bytes: a count > 0 (possibly less than len), or
 * TLS_WANT_READ / TLS_WANT_WRITE / TLS_ERR. len must be > 0. */
ssize_t tls_write(struct tls_conn *c, const void *buf, size_t len);

/* Sends close_notify if the socket takes it at once (never waits for the
 * peer's): before shutdown(fd, SHUT_WR) in a lingering close. Once only;
 * tls_close does it too if it was not done. */
void tls_shutdown(struct tls_conn *c);

/* Sends close_notify as tls_shutdown (unless done already, or the
 * connection failed), frees c; the fd stays open. NULL is a no-op. */
void tls_close(struct tls_conn *c);

/* Why the last call failed: "certificate verify failed: hostname mismatch",
 * "connection reset by peer", ... ("" if nothing failed). */
const char *tls_error(const struct tls_conn *c);
/* Whether the handshake resumed a session; the ALPN protocol agreed ("" if none). */
int tls_resumed(const struct tls_conn *c);
const char *tls_alpn(const struct tls_conn *c);
/* Server side: the name the client sent as SNI ("" if none: an IP literal). */
const char *tls_sni(const struct tls_conn *c);

#endif
