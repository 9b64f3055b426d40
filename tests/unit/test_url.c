// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Backend URLs: one row per case, what parses to what, and that every
 * refusal says why.
 */
#include <errno.h>
#include <string.h>
#include "harness.h"
#include "url.h"

struct url_row {
	const char *in;
	int ok;
	int tls;
	const char *host;         /* ok: the host kept; refused: a word the reason must hold */
	enum url_host_kind kind;
	unsigned int port;
	const char *canon;        /* url_str */
};

static const struct url_row url_rows[] = {
	{ "http://api.example.com", 1, 0, "api.example.com", URL_HOST_NAME, 80,
	  "http://api.example.com:80" },
	{ "https://api.example.com", 1, 1, "api.example.com", URL_HOST_NAME, 443,
	  "https://api.example.com:443" },
	{ "https://api.example.com/", 1, 1, "api.example.com", URL_HOST_NAME, 443, NULL },
	{ "https://API.Example.COM:8443/", 1, 1, "api.example.com", URL_HOST_NAME, 8443,
	  "https://api.example.com:8443" },
	{ "HTTPS://localhost.:1", 1, 1, "localhost", URL_HOST_NAME, 1, NULL },
	{ "http://10.0.0.5:8000", 1, 0, "10.0.0.5", URL_HOST_IPV4, 8000, NULL },
	{ "https://[::1]", 1, 1, "::1", URL_HOST_IPV6, 443, "https://[::1]:443" },
	{ "http://[2001:db8::5]:65535/", 1, 0, "2001:db8::5", URL_HOST_IPV6, 65535, NULL },
	{ "http://my_svc.internal:80", 1, 0, "my_svc.internal", URL_HOST_NAME, 80, NULL },
	/* the older form: plain HTTP to a numeric address */
	{ "127.0.0.1:9000", 1, 0, "127.0.0.1", URL_HOST_IPV4, 9000, "http://127.0.0.1:9000" },
	{ "[::1]:9000", 1, 0, "::1", URL_HOST_IPV6, 9000, "http://[::1]:9000" },
	/* refused */
	{ "ftp://example.com", 0, 0, "unknown scheme 'ftp'", 0, 0, NULL },
	{ "://example.com", 0, 0, "unknown scheme", 0, 0, NULL },
	{ "https://user:pw@example.com", 0, 0, "user:password@", 0, 0, NULL },
	{ "https://example.com/v1", 0, 0, "path ('/v1')", 0, 0, NULL },
	{ "https://example.com//", 0, 0, "path", 0, 0, NULL },
	{ "https://example.com?x=1", 0, 0, "query", 0, 0, NULL },
	{ "https://example.com#top", 0, 0, "fragment", 0, 0, NULL },
	{ "https://example.com:0", 0, 0, "out of range", 0, 0, NULL },
	{ "https://example.com:65536", 0, 0, "out of range", 0, 0, NULL },
	{ "https://example.com:99999999999999999999", 0, 0, "out of range", 0, 0, NULL },
	{ "https://example.com:", 0, 0, "empty port", 0, 0, NULL },
	{ "https://example.com:-1", 0, 0, "bad port", 0, 0, NULL },
	{ "https://example.com:8o", 0, 0, "bad port", 0, 0, NULL },
	{ "https://", 0, 0, "no host", 0, 0, NULL },
	{ "https://:443", 0, 0, "empty host", 0, 0, NULL },
	{ "https://[::1", 0, 0, "without ']'", 0, 0, NULL },
	{ "https://[::1]x", 0, 0, "after ']'", 0, 0, NULL },
	{ "https://[nope]:1", 0, 0, "not an IPv6", 0, 0, NULL },
	{ "https://::1:443", 0, 0, "brackets", 0, 0, NULL },
	{ "http://300.1.2.3", 0, 0, "not an IPv4", 0, 0, NULL },
	{ "http://exa mple.com", 0, 0, "character", 0, 0, NULL },
	{ "http://a..b", 0, 0, "empty label", 0, 0, NULL },
	{ "http://-a.example", 0, 0, "starting with '-'", 0, 0, NULL },
	{ "http://a-.example", 0, 0, "ending in '-'", 0, 0, NULL },
	{ "http://aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.example", 0, 0,
	  "longer than 63", 0, 0, NULL },
	{ "localhost:9000", 0, 0, "needs a URL: http://localhost:9000", 0, 0, NULL },
	{ "127.0.0.1", 0, 0, "no port", 0, 0, NULL },
	{ "", 0, 0, "no host", 0, 0, NULL },
};

TEST(url_parse_rows)
{
	for (size_t i = 0; i < sizeof(url_rows) / sizeof(url_rows[0]); i++) {
		const struct url_row *r = &url_rows[i];
		struct backend_url u;
		struct errbuf e = { "" };
		char canon[300];
		int rc = url_parse(r->in, &u, &e);

		if (!r->ok) {
			CHECK(rc == -EINVAL, "'%s' parsed, want refused", r->in);
			CHECK(strstr(e.msg, r->host) && strstr(e.msg, r->in),
			      "'%s': reason '%s' should name the input and say '%s'", r->in, e.msg,
			      r->host);
			continue;
		}
		if (!CHECK(rc == 0, "'%s' refused: %s", r->in, e.msg))
			continue;
		CHECK(u.tls == r->tls && u.port == r->port && u.kind == r->kind &&
		      !strcmp(u.host, r->host), "'%s': tls %d host '%s' kind %d port %u", r->in,
		      u.tls, u.host, (int)u.kind, u.port);
		if (r->canon)
			CHECK(!strcmp(url_str(&u, canon, sizeof(canon)), r->canon),
			      "'%s' prints as '%s', want '%s'", r->in, canon, r->canon);
	}
}

TEST(url_long_name)
{
	char s[400] = "https://", label[64];
	struct backend_url u;
	struct errbuf e = { "" };

	memset(label, 'a', 60);
	label[60] = 0;
	/* 4 labels of 60 + dots = 243 characters: fine; a fifth passes 253 */
	for (int i = 0; i < 4; i++) {
		strcat(s, label);
		strcat(s, ".");
	}
	strcat(s, "com");
	CHECK(url_parse(s, &u, &e) == 0, "a 243-character name: %s", e.msg);
	strcat(s, ".");
	strcat(s, label);
	CHECK(url_parse(s, &u, &e) == -EINVAL && strstr(e.msg, "longer than"),
	      "a 304-character name refused: %s", e.msg);
}
