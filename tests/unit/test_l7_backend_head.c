// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * test_l7_backend_head.c - the request head a backend gets
 * (backend_request_head, user/l7/backend_addr.c): Host of its URL, its
 * `header` lines in place of the caller's, and its API key in place of the
 * caller's sluice key, however the caller sent it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "harness.h"
#include "l7.h"

#define FWD "POST /v1/chat/completions HTTP/1.1\r\n" \
	    "Host: gateway.local:8080\r\n" \
	    "Authorization: Bearer sk-sluice-caller\r\n" \
	    "X-Api-Key: sk-sluice-other\r\n" \
	    "X-Tenant: caller-says\r\n" \
	    "Content-Type: application/json\r\n" \
	    "X-Forwarded-For: 10.0.0.1\r\n"

/* l7 with one backend from a config line's worth of settings; out gets the
 * head for fwd. */
static char *head_for(struct l7 *l, const char *fwd, char *out, size_t len)
{
	struct buf in = { 0 }, o = { 0 };
	int err;

	buf_append(&in, fwd, strlen(fwd));
	err = backend_request_head(l, 0, &in, &o);
	snprintf(out, len, "%.*s", err ? 0 : (int)buf_used(&o), buf_data(&o));
	buf_free(&in);
	buf_free(&o);
	return err ? NULL : out;
}

static struct l7 *l7_with(const char *url)
{
	struct l7 *l = calloc(1, sizeof(*l));
	struct errbuf e;

	if (!l)
		return NULL;
	l->cfg.n_backends = 1;
	if (url_parse(url, &l->cfg.backends[0].url, &e)) {
		free(l);
		return NULL;
	}
	l->cfg.backends[0].plain_addr = !strstr(url, "://");
	l->cfg.backends[0].tls_verify = 1;
	return l;
}

TEST(l7_backend_head_plain_addr_unchanged)
{
	struct l7 *l = l7_with("127.0.0.1:9000");
	char out[1024];

	if (!CHECK(l, "set up"))
		return;
	CHECK(head_for(l, FWD, out, sizeof(out)) && !strcmp(out, FWD),
	      "ADDR:PORT without options: the head as the client sent it, got '%s'", out);
	free(l);
}

TEST(l7_backend_head_url_host_headers_key)
{
	struct l7 *l = l7_with("https://api.example.com");
	struct l7_backend *b;
	char out[1024];

	if (!CHECK(l, "set up"))
		return;
	b = &l->cfg.backends[0];
	snprintf(b->headers[0].name, sizeof(b->headers[0].name), "x-tenant");
	snprintf(b->headers[0].value, sizeof(b->headers[0].value), "t-1");
	b->n_headers = 1;
	snprintf(b->api_key, sizeof(b->api_key), "sk-provider");
	snprintf(l->cfg.key_header, sizeof(l->cfg.key_header), "x-api-key");
	if (!CHECK(head_for(l, FWD, out, sizeof(out)), "no head"))
		goto out;
	CHECK(!strncmp(out, "POST /v1/chat/completions HTTP/1.1\r\n", 36), "request line: '%s'",
	      out);
	CHECK(strstr(out, "\r\nHost: api.example.com\r\n") && !strstr(out, "gateway.local"),
	      "Host is the URL's (default port left out): '%s'", out);
	CHECK(!strstr(out, "sk-sluice-caller") && !strstr(out, "sk-sluice-other"),
	      "no sluice key of the caller's reaches the backend: '%s'", out);
	CHECK(strstr(out, "\r\nAuthorization: Bearer sk-provider\r\n"), "the provider key: '%s'",
	      out);
	CHECK(strstr(out, "\r\nx-tenant: t-1\r\n") && !strstr(out, "caller-says"),
	      "the backend's header replaces the caller's: '%s'", out);
	CHECK(strstr(out, "Content-Type: application/json\r\n") &&
	      strstr(out, "X-Forwarded-For: 10.0.0.1\r\n"), "the others pass: '%s'", out);

	/* api-key-header: the key goes there, and Authorization still goes. */
	snprintf(b->api_key_header, sizeof(b->api_key_header), "x-goog-api-key");
	l->cfg.key_header[0] = '\0';
	if (CHECK(head_for(l, FWD, out, sizeof(out)), "no head")) {
		CHECK(strstr(out, "\r\nx-goog-api-key: sk-provider\r\n") &&
		      !strstr(out, "Authorization") && !strstr(out, "sk-sluice-caller"),
		      "api-key-header: '%s'", out);
		CHECK(strstr(out, "sk-sluice-other"), "a header that is not the key passes: '%s'",
		      out);
	}
out:
	free(l);
}

TEST(l7_backend_head_ports_and_ipv6)
{
	struct l7 *l = l7_with("http://[::1]:8000");
	char out[1024];

	if (!CHECK(l, "set up"))
		return;
	CHECK(head_for(l, FWD, out, sizeof(out)) && strstr(out, "\r\nHost: [::1]:8000\r\n") &&
	      strstr(out, "sk-sluice-caller"),
	      "IPv6 Host in brackets with its port; without api-key-file the caller's "
	      "Authorization passes: '%s'", out);
	free(l);
	l = l7_with("https://api.example.com:8443");
	if (!CHECK(l, "set up"))
		return;
	CHECK(head_for(l, FWD, out, sizeof(out)) && strstr(out, "\r\nHost: api.example.com:8443\r\n"),
	      "a port other than the scheme's: '%s'", out);
	free(l);
}
