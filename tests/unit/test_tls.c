// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * TLS against a real server on loopback: a thread running tls.c's server
 * context over a blocking socket, with certificates from
 * tests/lib/tls_ca.sh. The client side is the one sluice-l7 uses: a
 * non-blocking socket driven by poll through TLS_WANT_READ/WANT_WRITE.
 * Verified; wrong name, expired, untrusted CA and the system store refused
 * with the reason; the opt-out connects anyway; the second connection
 * resumes the first one's session; a failure leaves nothing in OpenSSL's
 * error queue for the next connection.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <openssl/err.h>
#include "harness.h"
#include "loop.h"
#include "tls.h"

#define GREETING "hello from the test server\n"

/* --- certificates: made once, removed at exit ----------------------------------- */

static char ca_dir[64];
static int ca_state; /* 0 not tried, 1 made, -1 failed */

static void ca_cleanup(void)
{
	char cmd[128];

	if (ca_state == 1) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", ca_dir);
		if (system(cmd))
			fprintf(stderr, "test_tls: could not remove %s\n", ca_dir);
	}
}

/* The directory with ca.pem, server.pem, ..., or NULL. */
static const char *certs(void)
{
	const char *build = getenv("SLUICE_BUILD");
	char script[512], cmd[700];

	if (ca_state)
		return ca_state > 0 ? ca_dir : NULL;
	ca_state = -1;
	snprintf(script, sizeof(script), "%s/../tests/lib/tls_ca.sh", build ? build : ".");
	if (access(script, R_OK))
		snprintf(script, sizeof(script), "tests/lib/tls_ca.sh");
	if (access(script, R_OK)) {
		fprintf(stderr, "test_tls: tests/lib/tls_ca.sh not found (run from the source tree, "
			"or set SLUICE_BUILD to a build directory inside it)\n");
		return NULL;
	}
	strcpy(ca_dir, "/tmp/sluice-tls.XXXXXX");
	if (!mkdtemp(ca_dir)) {
		fprintf(stderr, "test_tls: mkdtemp: %s\n", strerror(errno));
		return NULL;
	}
	ca_state = 1;
	atexit(ca_cleanup);
	snprintf(cmd, sizeof(cmd), "sh '%s' '%s'", script, ca_dir);
	if (system(cmd)) {
		fprintf(stderr, "test_tls: %s failed\n", cmd);
		ca_cleanup();
		ca_state = -1;
		return NULL;
	}
	return ca_dir;
}

static const char *cert_path(const char *name, const char *ext)
{
	static char p[4][160];
	static int i;

	i = (i + 1) % 4;
	snprintf(p[i], sizeof(p[i]), "%s/%s.%s", ca_dir, name, ext);
	return p[i];
}

/* --- the server: a thread, one connection at a time ------------------------------- */

struct srv {
	int lfd, family;
	unsigned int port;
	struct tls_ctx *ctx;
	pthread_t th;
	size_t bulk;             /* bytes sent after the greeting */
	char sni[8][64];         /* what each connection sent as SNI */
	int n_sni;
	int handshakes_ok, handshakes_failed;
};

static void *srv_main(void *arg)
{
	struct srv *s = arg;

	for (;;) {
		struct timeval tv = { .tv_sec = 5 };
		struct errbuf e;
		struct tls_conn *c;
		char sink[256];
		int fd = accept(s->lfd, NULL, NULL);

		if (fd < 0)
			break; /* shutdown(lfd) */
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		c = tls_conn_new(s->ctx, fd, NULL, &e);
		if (c && tls_handshake(c) == TLS_OK) {
			if (s->n_sni < 8)
				snprintf(s->sni[s->n_sni++], sizeof(s->sni[0]), "%s", tls_sni(c));
			s->handshakes_ok++;
			ssize_t w = tls_write(c, GREETING, strlen(GREETING));

			for (size_t sent = 0; w > 0 && sent < s->bulk; sent += (size_t)w) {
				char chunk[16384];
				size_t n = s->bulk - sent < sizeof(chunk) ? s->bulk - sent :
					   sizeof(chunk);

				memset(chunk, 'x', n);
				w = tls_write(c, chunk, n);
			}
			while (w > 0 && tls_read(c, sink, sizeof(sink)) > 0)
				; /* until the client closes */
		} else {
			s->handshakes_failed++;
		}
		tls_close(c);
		close(fd);
	}
	return NULL;
}

static int srv_start(struct srv *s, const char *cert, int family)
{
	struct sockaddr_storage ss = { .ss_family = (sa_family_t)family };
	socklen_t sl = family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
	struct errbuf e = { "" };
	size_t bulk = s->bulk; /* the caller's, set before the thread starts */

	memset(s, 0, sizeof(*s));
	s->bulk = bulk;
	s->family = family;
	if (tls_server_ctx_new(cert_path(cert, "pem"), cert_path(cert, "key"), &s->ctx, &e)) {
		fprintf(stderr, "test_tls: server context: %s\n", e.msg);
		return -1;
	}
	if (family == AF_INET)
		((struct sockaddr_in *)&ss)->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	else
		((struct sockaddr_in6 *)&ss)->sin6_addr = in6addr_loopback;
	s->lfd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s->lfd < 0 || bind(s->lfd, (struct sockaddr *)&ss, sl) || listen(s->lfd, 8) ||
	    getsockname(s->lfd, (struct sockaddr *)&ss, &sl)) {
		fprintf(stderr, "test_tls: listen on loopback (family %d): %s\n", family,
			strerror(errno));
		if (s->lfd >= 0)
			close(s->lfd);
		tls_ctx_free(s->ctx);
		return -1;
	}
	s->port = ntohs(family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port :
			((struct sockaddr_in6 *)&ss)->sin6_port);
	if (pthread_create(&s->th, NULL, srv_main, s)) {
		close(s->lfd);
		tls_ctx_free(s->ctx);
		return -1;
	}
	return 0;
}

static void srv_stop(struct srv *s)
{
	shutdown(s->lfd, SHUT_RDWR); /* wakes accept */
	pthread_join(s->th, NULL);
	close(s->lfd);
	tls_ctx_free(s->ctx);
}

/* --- the client: non-blocking, driven through WANT_READ / WANT_WRITE ------------- */

struct outcome {
	int ok;                  /* handshake done and the greeting read */
	int resumed;
	char err[TLS_ERR_LEN];
	char alpn[32];
};

/* Waits for what rc asked for; 0 on time. */
static int wait_for(int fd, ssize_t rc)
{
	struct pollfd p = { .fd = fd, .events = rc == TLS_WANT_WRITE ? POLLOUT : POLLIN };

	return poll(&p, 1, 5000) == 1 ? 0 : -1;
}

static struct outcome client(struct tls_ctx *ctx, const struct srv *s, const char *host)
{
	struct sockaddr_storage ss = { .ss_family = (sa_family_t)s->family };
	socklen_t sl = s->family == AF_INET ? sizeof(struct sockaddr_in) :
		       sizeof(struct sockaddr_in6);
	struct outcome o = { 0 };
	struct errbuf e = { "" };
	struct tls_conn *c;
	char got[128];
	size_t n = 0;
	ssize_t rc;
	int fd;

	if (s->family == AF_INET) {
		((struct sockaddr_in *)&ss)->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)s->port);
	} else {
		((struct sockaddr_in6 *)&ss)->sin6_addr = in6addr_loopback;
		((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)s->port);
	}
	fd = socket(s->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || (connect(fd, (struct sockaddr *)&ss, sl) && errno != EINPROGRESS)) {
		snprintf(o.err, sizeof(o.err), "connect: %s", strerror(errno));
		if (fd >= 0)
			close(fd);
		return o;
	}
	c = tls_conn_new(ctx, fd, host, &e);
	if (!c) {
		snprintf(o.err, sizeof(o.err), "tls_conn_new: %s", e.msg);
		close(fd);
		return o;
	}
	/* the handshake starts while the TCP connect may still be in progress */
	while ((rc = tls_handshake(c)) == TLS_WANT_READ || rc == TLS_WANT_WRITE)
		if (wait_for(fd, rc)) {
			snprintf(o.err, sizeof(o.err), "handshake: timed out");
			goto out;
		}
	if (rc != TLS_OK) {
		snprintf(o.err, sizeof(o.err), "%s", tls_error(c));
		goto out;
	}
	snprintf(o.alpn, sizeof(o.alpn), "%s", tls_alpn(c));
	o.resumed = tls_resumed(c);
	/* read in small pieces, draining what OpenSSL holds (tls_pending) */
	while (n < strlen(GREETING)) {
		rc = tls_read(c, got + n, 5);
		if (rc > 0) {
			n += (size_t)rc;
			continue;
		}
		if ((rc == TLS_WANT_READ || rc == TLS_WANT_WRITE) && !wait_for(fd, rc))
			continue;
		snprintf(o.err, sizeof(o.err), "read: %s", rc == 0 ? "EOF" : tls_error(c));
		goto out;
	}
	o.ok = !memcmp(got, GREETING, n);
	if (!o.ok)
		snprintf(o.err, sizeof(o.err), "read '%.*s'", (int)n, got);
out:
	tls_close(c);
	close(fd);
	return o;
}

static struct tls_ctx *client_ctx(const char *ca, int insecure)
{
	struct tls_client_opts o = { .backend = "https://localhost:test", .insecure = insecure };
	struct errbuf e = { "" };
	struct tls_ctx *ctx;

	if (ca)
		o.ca_file = cert_path(ca, "pem");
	if (tls_client_ctx_new(&o, &ctx, &e)) {
		fprintf(stderr, "test_tls: client context: %s\n", e.msg);
		return NULL;
	}
	return ctx;
}

/* --- the cases ----------------------------------------------------------------- */

TEST(tls_verified_name_and_addresses)
{
	struct tls_ctx *ctx;
	struct outcome o;
	struct tls_stats st;
	struct srv s = { 0 }, s6 = { 0 };

	signal(SIGPIPE, SIG_IGN);
	if (!CHECK(certs() != NULL, "tls_ca.sh made the certificates"))
		return;
	if (!CHECK(srv_start(&s, "server", AF_INET) == 0, "server on 127.0.0.1"))
		return;
	ctx = client_ctx("ca", 0);
	if (CHECK(ctx != NULL, "client context")) {
		o = client(ctx, &s, "localhost");
		CHECK(o.ok, "localhost verified: %s", o.err);
		CHECK(!strcmp(o.alpn, "http/1.1"), "ALPN http/1.1, got '%s'", o.alpn);
		o = client(ctx, &s, "LOCALHOST");
		CHECK(o.ok, "names compare case-insensitively: %s", o.err);
		o = client(ctx, &s, "127.0.0.1");
		CHECK(o.ok, "127.0.0.1 verified against the IP entry: %s", o.err);
		tls_ctx_stats(ctx, &st);
		CHECK(st.handshakes == 3 && st.failed == 0, "stats: %llu done, %llu failed",
		      (unsigned long long)st.handshakes, (unsigned long long)st.failed);
		/* IPv6 loopback, where the host has it */
		if (srv_start(&s6, "server", AF_INET6) == 0) {
			o = client(ctx, &s6, "::1");
			CHECK(o.ok, "::1 verified: %s", o.err);
			srv_stop(&s6);
		}
	}
	srv_stop(&s);
	CHECK(s.handshakes_ok >= 3, "the server completed %d handshakes", s.handshakes_ok);
	CHECK(!strcmp(s.sni[0], "localhost") && !strcmp(s.sni[1], "LOCALHOST") && !s.sni[2][0],
	      "SNI for names, none for 127.0.0.1: '%s' '%s' '%s'", s.sni[0], s.sni[1], s.sni[2]);
	tls_ctx_free(ctx);
}

struct refusal {
	const char *cert;     /* the server's */
	const char *ca;       /* the client's tls-ca, NULL: the system store */
	const char *host;
	const char *reason;   /* tls_error must contain it */
};

static const struct refusal refusals[] = {
	{ "wrong", "ca", "localhost", "certificate verify failed: hostname mismatch" },
	{ "wrong", "ca", "127.0.0.1", "certificate verify failed: IP address mismatch" },
	{ "server", "ca", "wrong.example", "hostname mismatch" },
	{ "server", "ca", "127.0.0.2", "IP address mismatch" },
	{ "expired", "ca", "localhost", "certificate verify failed: certificate has expired" },
	{ "untrusted", "ca", "localhost", "unable to get local issuer certificate" },
	/* the test CA is in no system store */
	{ "server", NULL, "localhost", "unable to get local issuer certificate" },
};

TEST(tls_refused_with_the_reason)
{
	signal(SIGPIPE, SIG_IGN);
	if (!CHECK(certs() != NULL, "tls_ca.sh made the certificates"))
		return;
	for (size_t i = 0; i < sizeof(refusals) / sizeof(refusals[0]); i++) {
		const struct refusal *r = &refusals[i];
		struct tls_ctx *ctx = client_ctx(r->ca, 0);
		struct tls_stats st;
		struct outcome o;
		struct srv s = { 0 };

		if (!CHECK(ctx != NULL, "client context"))
			continue;
		if (!CHECK(srv_start(&s, r->cert, AF_INET) == 0, "server with %s.pem", r->cert)) {
			tls_ctx_free(ctx);
			continue;
		}
		o = client(ctx, &s, r->host);
		CHECK(!o.ok, "%s.pem as %s: refused", r->cert, r->host);
		CHECK(strstr(o.err, r->reason) != NULL, "%s.pem as %s: reason '%s', want '%s'",
		      r->cert, r->host, o.err, r->reason);
		CHECK(ERR_peek_error() == 0, "%s.pem: OpenSSL's error queue left empty", r->cert);
		tls_ctx_stats(ctx, &st);
		CHECK(st.failed == 1 && st.handshakes == 0, "%s.pem: counted as failed", r->cert);
		srv_stop(&s);
		CHECK_EQ(s.handshakes_ok, 0, "the server saw no completed handshake");
		tls_ctx_free(ctx);
	}
}

/* Makes an insecure context with stderr captured: the warning it logs. */
static void insecure_warning(char *out, size_t len)
{
	char path[] = "/tmp/sluice-tls-log.XXXXXX";
	int fd = mkstemp(path), saved = dup(2);
	struct tls_ctx *ctx;
	ssize_t n = 0;

	out[0] = 0;
	if (fd < 0 || saved < 0)
		return;
	fflush(stderr);
	dup2(fd, 2);
	log_init("unit-tests", LOG_WARN);
	ctx = client_ctx(NULL, 1);
	log_init("unit-tests", LOG_ERR);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	if (lseek(fd, 0, SEEK_SET) == 0)
		n = read(fd, out, len - 1);
	out[n > 0 ? n : 0] = 0;
	close(fd);
	unlink(path);
	tls_ctx_free(ctx);
}

TEST(tls_insecure_connects_to_anything)
{
	static const char *const bad[] = { "wrong", "expired", "untrusted" };
	char warning[1024];

	signal(SIGPIPE, SIG_IGN);
	if (!CHECK(certs() != NULL, "tls_ca.sh made the certificates"))
		return;
	insecure_warning(warning, sizeof(warning));
	CHECK(strstr(warning, "https://localhost:test") &&
	      strstr(warning, "verification is OFF"),
	      "the opt-out warns, naming the backend: '%s'", warning);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct tls_ctx *ctx = client_ctx(NULL, 1);
		struct outcome o;
		struct srv s = { 0 };

		if (!CHECK(ctx != NULL, "insecure client context"))
			continue;
		if (CHECK(srv_start(&s, bad[i], AF_INET) == 0, "server with %s.pem", bad[i])) {
			o = client(ctx, &s, "localhost");
			CHECK(o.ok, "%s.pem accepted with verification off: %s", bad[i], o.err);
			srv_stop(&s);
		}
		tls_ctx_free(ctx);
	}
}

TEST(tls_session_resumed_on_the_next_connect)
{
	struct tls_ctx *ctx, *other;
	struct tls_stats st;
	struct outcome o1, o2, o3, o4;
	struct srv s = { 0 };

	signal(SIGPIPE, SIG_IGN);
	if (!CHECK(certs() != NULL, "tls_ca.sh made the certificates"))
		return;
	if (!CHECK(srv_start(&s, "server", AF_INET) == 0, "server"))
		return;
	ctx = client_ctx("ca", 0);
	other = client_ctx("ca", 0);
	if (CHECK(ctx && other, "client contexts")) {
		o1 = client(ctx, &s, "localhost");
		o2 = client(ctx, &s, "localhost");
		o3 = client(ctx, &s, "localhost");
		CHECK(o1.ok && o2.ok && o3.ok, "three connects: %s / %s / %s", o1.err, o2.err, o3.err);
		CHECK(!o1.resumed, "the first is a full handshake");
		CHECK(o2.resumed && o3.resumed, "the next ones resume (%d, %d)", o2.resumed,
		      o3.resumed);
		tls_ctx_stats(ctx, &st);
		CHECK(st.handshakes == 3 && st.resumed == 2, "stats: %llu handshakes, %llu resumed",
		      (unsigned long long)st.handshakes, (unsigned long long)st.resumed);
		/* a session is offered to its own host only */
		o4 = client(ctx, &s, "127.0.0.1");
		CHECK(o4.ok && !o4.resumed, "another host name: a full handshake (%s)", o4.err);
		/* and kept per context: another backend starts afresh */
		o4 = client(other, &s, "localhost");
		CHECK(o4.ok && !o4.resumed, "another context: a full handshake (%s)", o4.err);
	}
	srv_stop(&s);
	tls_ctx_free(ctx);
	tls_ctx_free(other);
}

TEST(tls_context_errors)
{
	struct tls_client_opts o = { .backend = "https://x", .ca_file = "/nonexistent/ca.pem" };
	struct tls_ctx *ctx = NULL;
	struct errbuf e = { "" };

	if (!CHECK(certs() != NULL, "tls_ca.sh made the certificates"))
		return;
	CHECK(tls_client_ctx_new(&o, &ctx, &e) < 0 && !ctx, "a missing tls-ca is refused");
	CHECK(strstr(e.msg, "/nonexistent/ca.pem") && strstr(e.msg, "No such file"),
	      "and named: '%s'", e.msg);
	o.ca_file = cert_path("server", "key"); /* a key, not certificates */
	CHECK(tls_client_ctx_new(&o, &ctx, &e) < 0 && strstr(e.msg, "no CA certificate"),
	      "a file without certificates is refused: '%s'", e.msg);
	CHECK(tls_server_ctx_new(cert_path("server", "pem"), cert_path("wrong", "key"), &ctx,
				 &e) < 0 && strstr(e.msg, "not the key of"),
	      "a key of another certificate is refused: '%s'", e.msg);
	CHECK(tls_server_ctx_new("/nonexistent.pem", cert_path("server", "key"), &ctx, &e) < 0 &&
	      strstr(e.msg, "/nonexistent.pem"), "a missing certificate is named: '%s'", e.msg);
	CHECK(ERR_peek_error() == 0, "OpenSSL's error queue left empty");
}

/* The way sluice-l7 will drive it: the event loop, edge-triggered, reads
 * far smaller than a TLS record. Each event reads until TLS_WANT_READ;
 * stopping earlier would strand decrypted bytes inside OpenSSL
 * (tls_pending), which no further epoll event would announce. */
struct loop_client {
	struct loop *l;
	struct loop_io io;
	struct tls_conn *c;
	int done_hs, failed, eof, max_pending_seen;
	size_t got, want, events;
	char err[TLS_ERR_LEN];
};

static void loop_client_cb(struct loop_io *io, uint32_t ev)
{
	struct loop_client *lc = container_of(io, struct loop_client, io);
	char buf[1000];
	ssize_t rc;

	(void)ev;
	lc->events++;
	if (!lc->done_hs) {
		rc = tls_handshake(lc->c);
		if (rc == TLS_WANT_READ || rc == TLS_WANT_WRITE) {
			loop_io_mod(lc->l, io, EPOLLET | (rc == TLS_WANT_READ ? EPOLLIN : EPOLLOUT));
			return;
		}
		if (rc != TLS_OK) {
			snprintf(lc->err, sizeof(lc->err), "%s", tls_error(lc->c));
			lc->failed = 1;
			loop_stop(lc->l);
			return;
		}
		lc->done_hs = 1;
		loop_io_mod(lc->l, io, EPOLLET | EPOLLIN);
	}
	for (;;) {
		rc = tls_read(lc->c, buf, sizeof(buf));
		if (rc > 0) {
			lc->got += (size_t)rc;
			if ((int)tls_pending(lc->c) > lc->max_pending_seen)
				lc->max_pending_seen = (int)tls_pending(lc->c);
			continue;
		}
		if (rc == TLS_WANT_READ)
			break;
		if (rc == TLS_WANT_WRITE) {
			loop_io_mod(lc->l, io, EPOLLET | EPOLLIN | EPOLLOUT);
			break;
		}
		if (rc == 0)
			lc->eof = 1;
		else {
			snprintf(lc->err, sizeof(lc->err), "%s", tls_error(lc->c));
			lc->failed = 1;
		}
		loop_stop(lc->l);
		return;
	}
	if (lc->got >= lc->want)
		loop_stop(lc->l);
}

TEST(tls_on_the_loop_edge_triggered)
{
	struct loop_client lc = { 0 };
	struct sockaddr_in sa = { .sin_family = AF_INET };
	struct tls_ctx *ctx;
	struct errbuf e = { "" };
	uint64_t end;
	struct srv s = { 0 };
	int fd;

	signal(SIGPIPE, SIG_IGN);
	if (!CHECK(certs() != NULL, "tls_ca.sh made the certificates"))
		return;
	s.bulk = 1 << 20;
	if (!CHECK(srv_start(&s, "server", AF_INET) == 0, "server"))
		return;
	ctx = client_ctx("ca", 0);
	if (!CHECK(ctx != NULL && loop_new(&lc.l) == 0, "client context and loop"))
		goto out;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port = htons((uint16_t)s.port);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (!CHECK(fd >= 0 && (!connect(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
			       errno == EINPROGRESS), "connect: %s", strerror(errno)))
		goto out_loop;
	lc.c = tls_conn_new(ctx, fd, "localhost", &e);
	lc.want = strlen(GREETING) + s.bulk;
	if (!CHECK(lc.c != NULL, "tls_conn_new: %s", e.msg))
		goto out_fd;
	/* writable once connected: the first handshake step runs from the loop */
	CHECK(loop_io_add(lc.l, &lc.io, fd, EPOLLOUT | EPOLLET, loop_client_cb) == 0, "add");
	end = loop_clock() + 10000000000ULL;
	while (!loop_stopped(lc.l) && loop_clock() < end)
		loop_run_once(lc.l, 100);
	CHECK(!lc.failed, "no failure: %s", lc.err);
	CHECK(lc.got == lc.want, "every byte through 1000-byte reads: %zu of %zu", lc.got,
	      lc.want);
	CHECK(lc.max_pending_seen > 0, "OpenSSL did hold decrypted bytes (tls_pending %d)",
	      lc.max_pending_seen);
	loop_io_del(lc.l, &lc.io);
	tls_close(lc.c);
out_fd:
	close(fd);
out_loop:
	loop_free(lc.l);
out:
	srv_stop(&s);
	tls_ctx_free(ctx);
}

/* A connect that fails shows as the handshake's error, as tls.h says. */
TEST(tls_handshake_over_a_refused_connect)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sa);
	struct tls_ctx *ctx;
	struct tls_conn *c;
	struct errbuf e = { "" };
	ssize_t rc;
	int fd, tmp;

	signal(SIGPIPE, SIG_IGN);
	if (!CHECK(certs() != NULL, "tls_ca.sh made the certificates"))
		return;
	/* a loopback port that nobody listens on: bound, then closed */
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	tmp = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (!CHECK(tmp >= 0 && !bind(tmp, (struct sockaddr *)&sa, sizeof(sa)) &&
		   !getsockname(tmp, (struct sockaddr *)&sa, &sl), "a free port"))
		return;
	close(tmp);
	ctx = client_ctx("ca", 0);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (!CHECK(ctx && fd >= 0, "context and socket"))
		goto out;
	CHECK(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) && (errno == EINPROGRESS ||
	      errno == ECONNREFUSED), "connect: %s", strerror(errno));
	c = tls_conn_new(ctx, fd, "localhost", &e);
	if (CHECK(c != NULL, "tls_conn_new: %s", e.msg)) {
		while ((rc = tls_handshake(c)) == TLS_WANT_READ || rc == TLS_WANT_WRITE)
			if (wait_for(fd, rc))
				break;
		CHECK(rc == TLS_ERR && strstr(tls_error(c), "Connection refused"),
		      "TLS_ERR with the reason: %zd '%s'", rc, tls_error(c));
		CHECK(ERR_peek_error() == 0, "OpenSSL's error queue left empty");
		tls_close(c);
	}
out:
	if (fd >= 0)
		close(fd);
	tls_ctx_free(ctx);
}
