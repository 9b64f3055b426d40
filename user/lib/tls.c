// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * tls.c - OpenSSL contexts and non-blocking connections. See tls.h for the
 * contract.
 *
 * Every entry point that calls into OpenSSL starts with ERR_clear_error()
 * and, when it fails, empties the queue into the connection's error text
 * (err_take), so the thread-global queue never carries an error from one
 * connection into another.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include "tls.h"

#define TLS_HOST_LEN 256

/* ALPN: length-prefixed protocol names. Only HTTP/1.1: the proxy speaks it. */
static const unsigned char alpn_http11[] = "\x08http/1.1";

struct tls_ctx {
	SSL_CTX *ssl_ctx;
	int server;
	int insecure;
	/* Client: the last session the backend gave us, for the next connect,
	 * and the host it was made with (a session is only offered to it). */
	SSL_SESSION *sess;
	char sess_host[TLS_HOST_LEN];
	struct tls_stats stats;
};

struct tls_conn {
	struct tls_ctx *ctx;
	SSL *ssl;
	int done;           /* the handshake completed */
	int fatal;          /* SSL_ERROR_SSL / SYSCALL seen: no close_notify then */
	int shut;           /* close_notify sent (or tried) */
	char host[TLS_HOST_LEN];
	char alpn[32];      /* the protocol agreed, "" if none */
	char err[TLS_ERR_LEN];
};

/* --- errors ------------------------------------------------------------------ */

/* Appends OpenSSL's queued errors to s ("; " between them) and empties the
 * queue. Returns whether there was any. */
static int err_take(char *s, size_t len)
{
	unsigned long code;
	int any = 0;

	while ((code = ERR_get_error()) != 0) {
		size_t used = strlen(s);
		const char *reason = ERR_reason_error_string(code);
		char tmp[160];

		if (!reason) {
			ERR_error_string_n(code, tmp, sizeof(tmp));
			reason = tmp;
		}
		/* Keep the first few; the rest are the same failure seen by callers. */
		if (used + 4 < len)
			snprintf(s + used, len - used, "%s%s", used ? "; " : "", reason);
		any = 1;
	}
	return any;
}

static int ctx_errf(struct errbuf *e, int err, const char *what)
{
	char detail[200] = "";

	if (!err_take(detail, sizeof(detail)))
		snprintf(detail, sizeof(detail), "unknown OpenSSL error");
	return errf(e, err, "%s: %s", what, detail);
}

/* What to do about a verification failure, in the operator's words. */
static const char *verify_hint(long v)
{
	switch (v) {
	case X509_V_ERR_CERT_HAS_EXPIRED:
		return "the backend must renew its certificate";
	case X509_V_ERR_CERT_NOT_YET_VALID:
		return "check this host's clock and the certificate's dates";
	case X509_V_ERR_HOSTNAME_MISMATCH:
	case X509_V_ERR_IP_ADDRESS_MISMATCH:
		return "the certificate is for another name: use the name it was issued for";
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
	case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
	case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
		return "not signed by a trusted CA: give the CA that signed it with tls-ca FILE";
	default:
		return NULL;
	}
}

/* Records why c failed after SSL_get_error said `code`; errno_saved is
 * errno right after the failing call. */
static void conn_fail(struct tls_conn *c, int code, int errno_saved, const char *op)
{
	char detail[200] = "";
	long v;

	c->fatal = 1;
	if (!c->done && !c->ctx->server && !c->ctx->insecure &&
	    (v = SSL_get_verify_result(c->ssl)) != X509_V_OK) {
		const char *hint = verify_hint(v);

		ERR_clear_error();
		snprintf(c->err, sizeof(c->err), "certificate verify failed: %s%s%s",
			 X509_verify_cert_error_string(v), hint ? " (" : "", hint ? hint : "");
		if (hint)
			strncat(c->err, ")", sizeof(c->err) - strlen(c->err) - 1);
		return;
	}
	if (code == SSL_ERROR_SYSCALL && !err_take(detail, sizeof(detail)))
		snprintf(detail, sizeof(detail), "%s", errno_saved ? strerror(errno_saved) :
			 "the peer closed the connection");
	else if (!detail[0] && !err_take(detail, sizeof(detail)))
		snprintf(detail, sizeof(detail), "OpenSSL error %d", code);
	snprintf(c->err, sizeof(c->err), "%s: %s", op, detail);
}

/* --- contexts ------------------------------------------------------------------ */

/* The client's session cache: OpenSSL hands us every new session (TLS 1.3
 * tickets arrive after the handshake, with the first read); we keep the
 * last one, for the next connection to the same host. */
static int on_new_session(SSL *ssl, SSL_SESSION *sess)
{
	struct tls_ctx *ctx = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
	struct tls_conn *c = SSL_get_app_data(ssl);

	if (!ctx || !c || !SSL_SESSION_is_resumable(sess))
		return 0;
	if (ctx->sess)
		SSL_SESSION_free(ctx->sess);
	ctx->sess = sess;  /* returning 1 hands us the reference */
	snprintf(ctx->sess_host, sizeof(ctx->sess_host), "%s", c->host);
	return 1;
}

static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
		       const unsigned char *in, unsigned int inlen, void *arg)
{
	unsigned char *o;

	(void)ssl;
	(void)arg;
	if (SSL_select_next_proto(&o, outlen, alpn_http11, sizeof(alpn_http11) - 1, in, inlen) !=
	    OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_NOACK;  /* no ALPN agreed: HTTP/1.1 anyway */
	*out = o;
	return SSL_TLSEXT_ERR_OK;
}

static int ctx_base(int server, struct tls_ctx **out, struct errbuf *e)
{
	struct tls_ctx *ctx;

	*out = NULL;
	ERR_clear_error();
	ctx = calloc(1, sizeof(*ctx));
	if (!ctx)
		return errf(e, -ENOMEM, "TLS context: out of memory");
	ctx->server = server;
	ctx->ssl_ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
	if (!ctx->ssl_ctx) {
		free(ctx);
		return ctx_errf(e, -ENOMEM, "TLS context");
	}
	SSL_CTX_set_app_data(ctx->ssl_ctx, ctx);
	if (!SSL_CTX_set_min_proto_version(ctx->ssl_ctx, TLS1_2_VERSION)) {
		tls_ctx_free(ctx);
		return ctx_errf(e, -EINVAL, "TLS context: set TLS 1.2 as the minimum");
	}
	/* Partial writes and a buffer that may move between retries: the
	 * caller's output buffer (buf.h) compacts. No renegotiation. A peer
	 * that closes without close_notify reads as EOF (see tls.h). */
	SSL_CTX_set_mode(ctx->ssl_ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
			 SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_options(ctx->ssl_ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF);
	*out = ctx;
	return 0;
}

int tls_client_ctx_new(const struct tls_client_opts *o, struct tls_ctx **out, struct errbuf *e)
{
	const char *name = o->backend ? o->backend : "backend";
	struct tls_ctx *ctx;
	int err = ctx_base(0, &ctx, e);

	*out = NULL;
	if (err)
		return err;
	/* SSL_CTX_set_alpn_protos returns 0 on success. */
	if (SSL_CTX_set_alpn_protos(ctx->ssl_ctx, alpn_http11, sizeof(alpn_http11) - 1)) {
		err = ctx_errf(e, -ENOMEM, "TLS context: ALPN");
		goto fail;
	}
	SSL_CTX_set_session_cache_mode(ctx->ssl_ctx, SSL_SESS_CACHE_CLIENT |
				       SSL_SESS_CACHE_NO_INTERNAL_STORE);
	SSL_CTX_sess_set_new_cb(ctx->ssl_ctx, on_new_session);
	if (o->insecure) {
		ctx->insecure = 1;
		SSL_CTX_set_verify(ctx->ssl_ctx, SSL_VERIFY_NONE, NULL);
		pr_warn("backend %s: TLS verification is OFF (tls-verify off): its certificate and "
			"name are not checked, so anyone on the path can read and change this "
			"traffic, API keys included; use tls-ca FILE for a private CA instead",
			name);
		*out = ctx;
		return 0;
	}
	SSL_CTX_set_verify(ctx->ssl_ctx, SSL_VERIFY_PEER, NULL);
	if (o->ca_file) {
		FILE *f = fopen(o->ca_file, "r");

		if (!f) {
			err = errf(e, -errno, "backend %s: tls-ca %s: %s", name, o->ca_file,
				   strerror(errno));
			goto fail;
		}
		fclose(f);
		if (SSL_CTX_load_verify_locations(ctx->ssl_ctx, o->ca_file, NULL) != 1) {
			char what[300];

			snprintf(what, sizeof(what), "backend %s: tls-ca %s: no CA certificate "
				 "loaded (expected PEM certificates)", name, o->ca_file);
			err = ctx_errf(e, -EINVAL, what);
			goto fail;
		}
	} else if (SSL_CTX_set_default_verify_paths(ctx->ssl_ctx) != 1) {
		err = ctx_errf(e, -EINVAL, "TLS context: the system CA store (install "
			       "ca-certificates, or give tls-ca FILE)");
		goto fail;
	}
	*out = ctx;
	return 0;
fail:
	tls_ctx_free(ctx);
	return err;
}

int tls_server_ctx_new(const char *cert_file, const char *key_file, struct tls_ctx **out,
		       struct errbuf *e)
{
	static const unsigned char sid_ctx[] = "sluice";
	struct tls_ctx *ctx;
	char what[300];
	int err = ctx_base(1, &ctx, e);

	*out = NULL;
	if (err)
		return err;
	if (SSL_CTX_use_certificate_chain_file(ctx->ssl_ctx, cert_file) != 1) {
		snprintf(what, sizeof(what), "TLS certificate %s (a PEM chain, leaf first)",
			 cert_file);
		err = ctx_errf(e, -EINVAL, what);
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx->ssl_ctx, key_file, SSL_FILETYPE_PEM) != 1) {
		snprintf(what, sizeof(what), "TLS key %s: not a PEM private key, or not the key "
			 "of %s", key_file, cert_file);
		err = ctx_errf(e, -EINVAL, what);
		goto fail;
	}
	if (SSL_CTX_check_private_key(ctx->ssl_ctx) != 1) {
		snprintf(what, sizeof(what), "TLS key %s does not match certificate %s", key_file,
			 cert_file);
		err = ctx_errf(e, -EINVAL, what);
		goto fail;
	}
	SSL_CTX_set_session_id_context(ctx->ssl_ctx, sid_ctx, sizeof(sid_ctx) - 1);
	SSL_CTX_set_alpn_select_cb(ctx->ssl_ctx, alpn_select, NULL);
	*out = ctx;
	return 0;
fail:
	tls_ctx_free(ctx);
	return err;
}

void tls_ctx_free(struct tls_ctx *ctx)
{
	if (!ctx)
		return;
	if (ctx->sess)
		SSL_SESSION_free(ctx->sess);
	SSL_CTX_free(ctx->ssl_ctx);
	free(ctx);
	ERR_clear_error();
}

void tls_ctx_stats(const struct tls_ctx *ctx, struct tls_stats *out)
{
	*out = ctx->stats;
}

/* --- connections ------------------------------------------------------------- */

static int is_ip_literal(const char *host)
{
	unsigned char a[16];

	return inet_pton(AF_INET, host, a) == 1 || inet_pton(AF_INET6, host, a) == 1;
}

struct tls_conn *tls_conn_new(struct tls_ctx *ctx, int fd, const char *host, struct errbuf *e)
{
	struct tls_conn *c;

	ERR_clear_error();
	if (!ctx->server && (!host || !*host || strlen(host) >= TLS_HOST_LEN)) {
		errf(e, -EINVAL, "TLS connection: a host name or address is needed to verify the "
		     "backend");
		return NULL;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		errf(e, -ENOMEM, "TLS connection: out of memory");
		return NULL;
	}
	c->ctx = ctx;
	if (host)
		snprintf(c->host, sizeof(c->host), "%s", host);
	c->ssl = SSL_new(ctx->ssl_ctx);
	if (!c->ssl) {
		ctx_errf(e, -ENOMEM, "TLS connection");
		free(c);
		return NULL;
	}
	SSL_set_app_data(c->ssl, c);
	if (!SSL_set_fd(c->ssl, fd)) {
		ctx_errf(e, -ENOMEM, "TLS connection: attach the socket");
		goto fail;
	}
	if (ctx->server) {
		SSL_set_accept_state(c->ssl);
		return c;
	}
	SSL_set_connect_state(c->ssl);
	if (is_ip_literal(host)) {
		/* RFC 6066: no SNI for addresses; the certificate must name the IP. */
		if (!ctx->insecure &&
		    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), host) != 1) {
			ctx_errf(e, -EINVAL, "TLS connection: verify the address");
			goto fail;
		}
	} else {
		if (SSL_set_tlsext_host_name(c->ssl, host) != 1) {
			ctx_errf(e, -EINVAL, "TLS connection: SNI host name");
			goto fail;
		}
		if (!ctx->insecure) {
			SSL_set_hostflags(c->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
			if (SSL_set1_host(c->ssl, host) != 1) {
				ctx_errf(e, -EINVAL, "TLS connection: verify the host name");
				goto fail;
			}
		}
	}
	if (ctx->sess && !strcmp(ctx->sess_host, c->host) &&
	    SSL_set_session(c->ssl, ctx->sess) != 1)
		ERR_clear_error(); /* no resumption then: a full handshake */
	return c;
fail:
	SSL_free(c->ssl);
	free(c);
	return NULL;
}

int tls_handshake(struct tls_conn *c)
{
	int rc, code, saved;

	if (c->done)
		return TLS_OK;
	if (c->fatal)
		return TLS_ERR;
	ERR_clear_error();
	rc = SSL_do_handshake(c->ssl);
	saved = errno;
	if (rc == 1) {
		const unsigned char *p;
		unsigned int n;

		c->done = 1;
		c->ctx->stats.handshakes++;
		SSL_get0_alpn_selected(c->ssl, &p, &n);
		if (p && n < sizeof(c->alpn)) {
			memcpy(c->alpn, p, n);
			c->alpn[n] = 0;
		}
		if (SSL_session_reused(c->ssl))
			c->ctx->stats.resumed++;
		return TLS_OK;
	}
	code = SSL_get_error(c->ssl, rc);
	if (code == SSL_ERROR_WANT_READ)
		return TLS_WANT_READ;
	if (code == SSL_ERROR_WANT_WRITE)
		return TLS_WANT_WRITE;
	c->ctx->stats.failed++;
	conn_fail(c, code, saved, "TLS handshake");
	return TLS_ERR;
}

ssize_t tls_read(struct tls_conn *c, void *buf, size_t len)
{
	int n, code, saved;

	if (c->fatal)
		return TLS_ERR;
	if (!len) {
		snprintf(c->err, sizeof(c->err), "TLS read: no room to read into (a caller bug)");
		return TLS_ERR;
	}
	ERR_clear_error();
	n = SSL_read(c->ssl, buf, len > INT_MAX ? INT_MAX : (int)len);
	saved = errno;
	if (n > 0)
		return n;
	code = SSL_get_error(c->ssl, n);
	switch (code) {
	case SSL_ERROR_WANT_READ:
		return TLS_WANT_READ;
	case SSL_ERROR_WANT_WRITE:
		return TLS_WANT_WRITE;
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	case SSL_ERROR_SYSCALL:
		if (!saved && !ERR_peek_error())
			return 0;  /* EOF without close_notify (tls.h) */
		/* fallthrough */
	default:
		conn_fail(c, code, saved, "TLS read");
		return TLS_ERR;
	}
}

size_t tls_pending(const struct tls_conn *c)
{
	int n = SSL_pending(c->ssl);

	return n > 0 ? (size_t)n : 0;
}

ssize_t tls_write(struct tls_conn *c, const void *buf, size_t len)
{
	int n, code, saved;

	if (c->fatal)
		return TLS_ERR;
	if (!len) {
		snprintf(c->err, sizeof(c->err), "TLS write: nothing to write (a caller bug)");
		return TLS_ERR;
	}
	ERR_clear_error();
	n = SSL_write(c->ssl, buf, len > INT_MAX ? INT_MAX : (int)len);
	saved = errno;
	if (n > 0)
		return n;
	code = SSL_get_error(c->ssl, n);
	if (code == SSL_ERROR_WANT_READ)
		return TLS_WANT_READ;
	if (code == SSL_ERROR_WANT_WRITE)
		return TLS_WANT_WRITE;
	conn_fail(c, code, saved, "TLS write");
	return TLS_ERR;
}

void tls_shutdown(struct tls_conn *c)
{
	if (c->shut)
		return;
	c->shut = 1;
	ERR_clear_error();
	/* One SSL_shutdown: queues close_notify and writes it if the socket
	 * takes it now. Never after a fatal error (OpenSSL forbids it), and
	 * never waiting for the peer's. */
	if (c->done && !c->fatal)
		SSL_shutdown(c->ssl);
	ERR_clear_error();
}

void tls_close(struct tls_conn *c)
{
	if (!c)
		return;
	tls_shutdown(c);
	SSL_free(c->ssl);
	ERR_clear_error();
	free(c);
}

const char *tls_error(const struct tls_conn *c)
{
	return c->err;
}

int tls_resumed(const struct tls_conn *c)
{
	return c->done && SSL_session_reused(c->ssl);
}

const char *tls_alpn(const struct tls_conn *c)
{
	return c->alpn;
}

const char *tls_sni(const struct tls_conn *c)
{
	const char *n = SSL_get_servername(c->ssl, TLSEXT_NAMETYPE_host_name);

	return n ? n : "";
}
