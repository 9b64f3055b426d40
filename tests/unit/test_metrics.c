// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#define TEST_GROUP "bpf" /* loads BPF programs or creates maps: needs root (harness.h) */
/*
 * The Prometheus exposition (user/lib/metrics.c) and its endpoint
 * (user/lib/metrics_http.c): traffic with known counts run through XDP and
 * TC egress, the rendered samples checked against it, the text validated by
 * promtool (from Debian's prometheus package: missing is a failure), and the
 * endpoint scraped over real loopback sockets, including the requests it
 * must refuse and clients that stall.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "fixture.h"
#include "harness.h"
#include "hist.h"
#include "metrics.h"
#include "loop.h"
#include "metrics_http.h"

#define US 1000ULL
#define MS 1000000ULL
#define SEC 1000000000ULL
#define SA (PKT_SYN | PKT_ACK)
#define PA (PKT_PSH | PKT_ACK)

/* The value of the sample whose name and labels are exactly `series`. */
static int sample(const char *text, const char *series, double *v)
{
	size_t n = strlen(series);
	const char *p = text;

	while ((p = strstr(p, series))) {
		if ((p == text || p[-1] == '\n') && p[n] == ' ') {
			*v = strtod(p + n + 1, NULL);
			return 1;
		}
		p += n;
	}
	return 0;
}

static void check_sample(const char *text, const char *series, double want)
{
	double v = 0;

	if (!CHECK(sample(text, series, &v), "no sample %s", series))
		return;
	CHECK(v == want || (isnan(want) && isnan(v)), "%s is %.17g, want %.17g", series, v, want);
}

/* Lines of text that start with prefix. */
static int count_lines(const char *text, const char *prefix)
{
	size_t n = strlen(prefix);
	const char *p = text;
	int c = 0;

	for (; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		c += !strncmp(p, prefix, n);
	return c;
}

static char *render(struct fx *f, const struct metrics_extra *x)
{
	struct buf b;
	int err;

	buf_init(&b, METRICS_MAX_BYTES);
	err = metrics_render(&f->m, x, &b);
	if (!CHECK(err == 0, "metrics_render: %s", strerror(-err)) ||
	    !CHECK(b.len > 0 && buf_cstr(&b), "metrics_render wrote nothing")) {
		buf_free(&b);
		return NULL;
	}
	return b.p;
}

/* Every family once, HELP before TYPE, and every sample's name belongs to
 * the family declared last (with a histogram's suffixes). */
static void check_families(const char *text)
{
	char fam[128] = "", type[32] = "";
	const char *p = text;
	int families = 0, samples = 0, bad = 0;

	while (*p) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		char line[512];

		if (len >= sizeof(line))
			len = sizeof(line) - 1;
		memcpy(line, p, len);
		line[len] = '\0';
		if (!strncmp(line, "# HELP ", 7)) {
			char seen[140];

			sscanf(line + 7, "%127s", fam);
			snprintf(seen, sizeof(seen), "# HELP %s ", fam);
			bad += count_lines(text, seen) != 1;
			families++;
		} else if (!strncmp(line, "# TYPE ", 7)) {
			char name[128];

			sscanf(line + 7, "%127s %31s", name, type);
			bad += strcmp(name, fam) != 0;
		} else {
			size_t fl = strlen(fam);
			const char *rest = line + fl;

			samples++;
			if (strncmp(line, fam, fl) ||
			    !(*rest == '{' || *rest == ' ' ||
			      (!strcmp(type, "histogram") &&
			       (!strncmp(rest, "_bucket{", 8) || !strncmp(rest, "_sum", 4) ||
				!strncmp(rest, "_count", 6))))) {
				if (bad < 3)
					CHECK(0, "sample '%s' outside its family %s", line, fam);
				bad++;
			}
			if (!strcmp(type, "counter"))
				bad += strlen(fam) < 6 || strcmp(fam + strlen(fam) - 6, "_total");
		}
		p += nl ? (size_t)(nl - p) + 1 : len;
	}
	CHECK(families > 30, "only %d families", families);
	CHECK(samples > families, "%d samples for %d families", samples, families);
	CHECK_EQ(bad, 0, "families declared once, samples inside them, counters named _total");
}

/* promtool check metrics on text: 0 and no complaint. */
static void check_promtool(const char *text, const char *what)
{
	char path[] = "/tmp/sluice-metrics-XXXXXX", cmd[256], out[4096] = "";
	size_t len = strlen(text), n = 0;
	int fd, rc;
	FILE *p;

	rc = system("command -v promtool >/dev/null 2>&1");
	if (!CHECK(rc == 0, "%s: promtool not found (Debian package prometheus; tools/deps.sh installs it)",
		   what))
		return;
	fd = mkstemp(path);
	if (!CHECK(fd >= 0, "mkstemp: %s", strerror(errno)))
		return;
	CHECK(write(fd, text, len) == (ssize_t)len, "%s: writing %s", what, path);
	close(fd);
	snprintf(cmd, sizeof(cmd), "promtool check metrics < %s 2>&1", path);
	p = popen(cmd, "r");
	if (CHECK(p != NULL, "popen promtool: %s", strerror(errno))) {
		size_t r;

		while (n < sizeof(out) - 1 && (r = fread(out + n, 1, sizeof(out) - 1 - n, p)) > 0)
			n += r;
		out[n] = '\0';
		rc = pclose(p);
		CHECK(WIFEXITED(rc) && WEXITSTATUS(rc) == 0,
		      "%s: promtool check metrics exited %d: %s", what, WEXITSTATUS(rc), out);
		CHECK(n == 0, "%s: promtool check metrics complains: %s", what, out);
	}
	unlink(path);
}

/* --- traffic with known counts -------------------------------------------- */

static size_t frame_len(const struct pkt_spec *s)
{
	__u8 buf[PKT_MAX];

	return pkt_build(s, buf, sizeof(buf));
}

struct sent {
	size_t udp_len;
	__u32 web_id, dns_id;
};

/* Rule "web" (dport 8080, 5 pps burst 5 per source) and an unnamed rule on
 * UDP 53; 8 frames from .2 (5 pass, 3 dropped), 3 from .3, 2 from a denied
 * /24, a truncated frame, an ARP frame, and one connection from .4 with a
 * 1.5 ms handshake and a 503 after 250 ms. 18 frames reach XDP. */
static int send_traffic(struct fx *f, struct sent *out)
{
	struct pkt_spec udp = { .family = 4, .proto = PKT_UDP, .sport = 1000, .dport = 8080,
				.payload = 100 };
	struct pkt_spec arp = { .ethertype = PKT_ETH_ARP, .payload = 28 };
	struct pkt_spec tcp = { .family = 4, .proto = PKT_TCP, .src = "198.18.0.4", .sport = 40000,
				.dport = 8080 };
	__u8 buf[PKT_MAX];
	size_t len;
	int slot, i;

	slot = fx_cmd(f, "rule add name web dport 8080 pps 5 burst 5");
	if (!CHECK(slot >= 0, "rule add web"))
		return -1;
	out->web_id = fx_rule_id(f, slot);
	slot = fx_cmd(f, "rule add dport 53 proto udp pps 2 burst 2");
	if (!CHECK(slot >= 0, "rule add dns"))
		return -1;
	out->dns_id = fx_rule_id(f, slot);
	if (!CHECK(fx_cmd(f, "deny add 198.18.9.0/24") >= 0, "deny add"))
		return -1;
	out->udp_len = frame_len(&udp);

	fx_at(f, 1 * SEC);
	udp.src = "198.18.0.2";
	for (i = 0; i < 8; i++)
		CHECK_EQ(fx_send(f, &udp), i < 5 ? XDP_PASS_V : XDP_DROP_V, "udp from .2");
	udp.src = "198.18.0.3";
	for (i = 0; i < 3; i++)
		CHECK_EQ(fx_send(f, &udp), XDP_PASS_V, "udp from .3");
	udp.src = "198.18.9.1";
	for (i = 0; i < 2; i++)
		CHECK_EQ(fx_send(f, &udp), XDP_DROP_V, "udp from the denied /24");
	udp.src = "198.18.0.5";
	len = pkt_build(&udp, buf, sizeof(buf));
	CHECK_EQ(fx_run(f, buf, 14 + 10), XDP_PASS_V, "a truncated IPv4 header");
	(void)len;
	CHECK_EQ(fx_send(f, &arp), XDP_PASS_V, "ARP");

	fx_at(f, 1 * SEC + 500 * MS);
	CHECK_EQ(fx_client(f, &tcp, PKT_SYN, NULL), XDP_PASS_V, "SYN");
	fx_at(f, 1 * SEC + 500 * MS + 1500 * US);
	CHECK_EQ(fx_server(f, &tcp, SA, NULL), TC_ACT_OK_V, "SYN-ACK");
	CHECK_EQ(fx_client(f, &tcp, PKT_ACK, NULL), XDP_PASS_V, "ACK");
	fx_at(f, 2 * SEC);
	CHECK_EQ(fx_client(f, &tcp, PA, "GET / HTTP/1.1\r\n\r\n"), XDP_PASS_V, "request");
	fx_at(f, 2 * SEC + 250 * MS);
	CHECK_EQ(fx_server(f, &tcp, PA, "HTTP/1.1 503 Service Unavailable\r\n\r\n"), TC_ACT_OK_V,
		 "response");
	return 0;
}

static int open_tc(struct fx *f)
{
	struct fx_opts o = { .tc = 1 };

	return fx_open_opts(f, &o);
}

TEST(metrics_values_match_traffic)
{
	struct metrics_adaptive ad = {
		.port = 8080, .kind = "pps", .limit = 120.5, .min = 10, .max = 1000,
		.latency_s = NAN, .baseline_s = 0.0125, .error_ratio = 0.25, .changes = 7,
		.shadow = 1,
	};
	struct metrics_extra x = { .top_n = 2, .adaptive = &ad, .n_adaptive = 1 };
	struct sent s;
	char series[256];
	struct fx f;
	char *t;

	if (open_tc(&f))
		return;
	if (send_traffic(&f, &s)) {
		fx_close(&f);
		return;
	}
	ad.rule_id = s.web_id;
	t = render(&f, &x);
	if (!t) {
		fx_close(&f);
		return;
	}
	check_families(t);

	check_sample(t, "sluice_packets_total", 18);
	check_sample(t, "sluice_drops_total{reason=\"rate\"}", 3);
	check_sample(t, "sluice_drops_total{reason=\"deny\"}", 2);
	check_sample(t, "sluice_drops_total{reason=\"ban\"}", 0);
	check_sample(t, "sluice_drops_total{reason=\"flow_full\"}", 0);
	check_sample(t, "sluice_malformed_packets_total", 1);
	check_sample(t, "sluice_non_ip_packets_total", 1);
	check_sample(t, "sluice_allowed_packets_total", 0);

	/* Per rule: web passed 5 + 3 UDP and the connection's 3 client segments. */
	snprintf(series, sizeof(series), "sluice_rule_packets_total{rule=\"web\",id=\"%u\",verdict=\"passed\"}", s.web_id);
	check_sample(t, series, 11);
	snprintf(series, sizeof(series), "sluice_rule_packets_total{rule=\"web\",id=\"%u\",verdict=\"dropped\"}", s.web_id);
	check_sample(t, series, 3);
	snprintf(series, sizeof(series), "sluice_rule_bytes_total{rule=\"web\",id=\"%u\",verdict=\"dropped\"}", s.web_id);
	check_sample(t, series, (double)(3 * s.udp_len));
	snprintf(series, sizeof(series), "sluice_rule_packets_total{rule=\"%u\",id=\"%u\",verdict=\"passed\"}", s.dns_id, s.dns_id);
	check_sample(t, series, 0); /* an unnamed rule is labelled by its id */
	snprintf(series, sizeof(series), "sluice_rule_limit{rule=\"web\",id=\"%u\",limit=\"pps\"}", s.web_id);
	check_sample(t, series, 5);
	snprintf(series, sizeof(series), "sluice_rule_info{rule=\"web\",id=\"%u\",action=\"drop\"}", s.web_id);
	check_sample(t, series, 1);

	/* Per-source state: .2, .3 and .4; the denied source got none. */
	check_sample(t, "sluice_state_entries", 3);
	check_sample(t, "sluice_state_inserts_total", 3);
	check_sample(t, "sluice_state_evictions_total", 0);
	check_sample(t, "sluice_state_entries_max", SLUICE_DEFAULT_STATE_ENTRIES);
	check_sample(t, "sluice_flow_entries", 1);
	check_sample(t, "sluice_flow_entries_max", FX_DEFAULT_FLOW_ENTRIES);
	check_sample(t, "sluice_flows_opened_total", 1);
	check_sample(t, "sluice_flows_ended_total{reason=\"reset\"}", 0);

	/* Connect 1500 us lies in [1408, 1536): at or below 0.001536 s, above 0.001024. */
	check_sample(t, "sluice_backend_connect_seconds_bucket{port=\"8080\",le=\"0.001024\"}", 0);
	check_sample(t, "sluice_backend_connect_seconds_bucket{port=\"8080\",le=\"0.001536\"}", 1);
	check_sample(t, "sluice_backend_connect_seconds_bucket{port=\"8080\",le=\"+Inf\"}", 1);
	check_sample(t, "sluice_backend_connect_seconds_count{port=\"8080\"}", 1);
	check_sample(t, "sluice_backend_connect_seconds_sum{port=\"8080\"}", 0.0015);
	/* Response 250 ms lies in [245760, 262144) us. */
	check_sample(t, "sluice_backend_response_seconds_bucket{port=\"8080\",le=\"0.196608\"}", 0);
	check_sample(t, "sluice_backend_response_seconds_bucket{port=\"8080\",le=\"0.262144\"}", 1);
	check_sample(t, "sluice_backend_response_seconds_bucket{port=\"8080\",le=\"33.554432\"}", 1);
	check_sample(t, "sluice_backend_response_seconds_sum{port=\"8080\"}", 0.25);
	CHECK_EQ(count_lines(t, "sluice_backend_connect_seconds_bucket{port=\"8080\""),
		 metrics_n_le + 1, "le buckets per histogram");
	CHECK_EQ(count_lines(t, "sluice_backend_request_seconds_bucket"), 0,
		 "no sluice-l7 histogram without sluice-l7 data");
	check_sample(t, "sluice_backend_connections_total{port=\"8080\"}", 1);
	check_sample(t, "sluice_backend_requests_total{port=\"8080\"}", 1);
	check_sample(t, "sluice_backend_http_responses_total{port=\"8080\",class=\"5xx\"}", 1);
	check_sample(t, "sluice_backend_http_responses_total{port=\"8080\",class=\"2xx\"}", 0);
	check_sample(t, "sluice_backend_errors_total{port=\"8080\",kind=\"http_5xx\"}", 1);
	check_sample(t, "sluice_backend_errors_total{port=\"8080\",kind=\"server_rst\"}", 0);

	/* The controller, as the daemon handed it over. */
	snprintf(series, sizeof(series), "sluice_adaptive_limit{port=\"8080\",limit=\"pps\",id=\"%u\"}", s.web_id);
	check_sample(t, series, 120.5);
	snprintf(series, sizeof(series), "sluice_adaptive_latency_seconds{port=\"8080\",limit=\"pps\",id=\"%u\"}", s.web_id);
	check_sample(t, series, NAN);
	snprintf(series, sizeof(series), "sluice_adaptive_baseline_seconds{port=\"8080\",limit=\"pps\",id=\"%u\"}", s.web_id);
	check_sample(t, series, 0.0125);
	snprintf(series, sizeof(series), "sluice_adaptive_error_ratio{port=\"8080\",limit=\"pps\",id=\"%u\"}", s.web_id);
	check_sample(t, series, 0.25);
	snprintf(series, sizeof(series), "sluice_adaptive_shadow{port=\"8080\",limit=\"pps\",id=\"%u\"}", s.web_id);
	check_sample(t, series, 1);
	snprintf(series, sizeof(series), "sluice_adaptive_limit_changes_total{port=\"8080\",limit=\"pps\",id=\"%u\"}", s.web_id);
	check_sample(t, series, 7);

	/* Top 2 by packets: .2 (8), then .3 and .4 tie at 3 and the lower
	 * key (.3) wins; .4 is left out. */
	snprintf(series, sizeof(series), "sluice_top_source_packets_total{source=\"198.18.0.2/32\",rule=\"web\",id=\"%u\",verdict=\"dropped\"}", s.web_id);
	check_sample(t, series, 3);
	snprintf(series, sizeof(series), "sluice_top_source_packets_total{source=\"198.18.0.2/32\",rule=\"web\",id=\"%u\",verdict=\"passed\"}", s.web_id);
	check_sample(t, series, 5);
	snprintf(series, sizeof(series), "sluice_top_source_packets_total{source=\"198.18.0.3/32\",rule=\"web\",id=\"%u\",verdict=\"passed\"}", s.web_id);
	check_sample(t, series, 3);
	snprintf(series, sizeof(series), "sluice_top_source_bytes_total{source=\"198.18.0.2/32\",rule=\"web\",id=\"%u\",verdict=\"dropped\"}", s.web_id);
	check_sample(t, series, (double)(3 * s.udp_len));
	CHECK_EQ(count_lines(t, "sluice_top_source_packets_total{"), 4, "2 talkers x 2 verdicts");
	CHECK(!strstr(t, "198.18.0.4/32"), "a third talker in a top 2");
	free(t);

	/* top_n 0 is the default 10: all three sources. */
	x.top_n = 0;
	t = render(&f, &x);
	if (t)
		CHECK_EQ(count_lines(t, "sluice_top_source_packets_total{"), 6, "3 talkers x 2 verdicts");
	free(t);
	fx_close(&f);
}

TEST(metrics_promtool_accepts)
{
	struct metrics_adaptive ad[2] = {
		{ .port = 8080, .kind = "conn_rate", .limit = 50, .min = 5, .max = 500,
		  .latency_s = 0.02, .baseline_s = 0.01, .error_ratio = NAN },
		{ .port = 53, .kind = "pps", .limit = 1e6, .min = 1, .max = 1e7,
		  .latency_s = NAN, .baseline_s = NAN, .error_ratio = 0, .shadow = 1 },
	};
	struct metrics_extra x = { .adaptive = ad, .n_adaptive = 2 };
	struct sent s;
	struct fx f;
	char *t;

	/* Empty maps: families without samples are still valid. */
	if (open_tc(&f))
		return;
	t = render(&f, NULL);
	if (t)
		check_promtool(t, "empty maps");
	free(t);
	if (!send_traffic(&f, &s)) {
		ad[0].rule_id = s.web_id;
		ad[1].rule_id = s.dns_id;
		t = render(&f, &x);
		if (t)
			check_promtool(t, "after traffic");
		free(t);
	}
	fx_close(&f);
}

TEST(metrics_histogram_bounds_are_bucket_edges)
{
	size_t i;
	__u32 b;

	CHECK(metrics_n_le >= 20 && metrics_n_le <= 40, "%zu bounds", metrics_n_le);
	for (i = 0; i < metrics_n_le; i++) {
		int edge = 0;

		for (b = 0; b < SLUICE_HIST_BUCKETS - 1; b++) {
			__u64 lo, hi;

			hist_bucket_bounds(b, &lo, &hi);
			edge |= hi == metrics_le_us[i];
		}
		CHECK(edge, "bound %llu us is not the end of a bucket",
		      (unsigned long long)metrics_le_us[i]);
		if (i)
			CHECK(metrics_le_us[i] > metrics_le_us[i - 1], "bounds out of order at %zu", i);
		/* The values just under and at a bound fall on either side. */
		CHECK(sluice_hist_bucket(metrics_le_us[i] - 1) < sluice_hist_bucket(metrics_le_us[i]),
		      "bound %llu us splits a bucket", (unsigned long long)metrics_le_us[i]);
	}
}

TEST(metrics_label_escaping_and_bounded_buffer)
{
	struct buf b;
	int err;

	buf_init(&b, 0);
	err = metrics_label_escape(&b, "a\"b\\c\nd");
	CHECK_EQ(err, 0, "escape");
	CHECK(buf_cstr(&b) && !strcmp(buf_cstr(&b), "a\\\"b\\\\c\\nd"), "escaped '%s'",
	      buf_cstr(&b) ? buf_cstr(&b) : "");
	buf_free(&b);

	buf_init(&b, 16);
	CHECK_EQ(buf_printf(&b, "%s", "0123456789"), 0, "fits");
	CHECK_EQ(buf_printf(&b, "%s", "0123456789"), (unsigned long long)-E2BIG, "past max");
	CHECK(b.err == -E2BIG && b.len == 10, "err %d len %zu", b.err, b.len);
	buf_reset(&b);
	CHECK(!b.err && b.len == 0, "reset");
	buf_free(&b);
}

/* --- the endpoint ------------------------------------------------------------ */

struct rctx {
	struct fx *f;
	const struct metrics_extra *x;
	int calls;
};

static int render_cb(struct buf *out, void *arg)
{
	struct rctx *r = arg;

	r->calls++;
	return metrics_render(&r->f->m, r->x, out);
}

/* The endpoint runs on this loop; the tests turn it from their one thread,
 * as the daemon's loop would. */
static struct loop *tl;

static int endpoint_open(const char *addr, int allow_any, struct rctx *r,
			 struct metrics_http **h)
{
	*h = NULL;
	if (!tl && loop_new(&tl))
		return -ENOMEM;
	return metrics_http_open(tl, addr, allow_any, render_cb, r, h);
}

/* One turn of the loop, waiting at most ms for something to do. */
static void serve(int ms)
{
	loop_run_once(tl, ms);
}

static int client_connect(struct metrics_http *h, int family)
{
	struct sockaddr_storage ss = { 0 };
	socklen_t len;
	int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	if (family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)&ss;

		in->sin_family = AF_INET;
		in->sin_port = htons((unsigned short)metrics_http_port(h));
		in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		len = sizeof(*in);
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((unsigned short)metrics_http_port(h));
		in6->sin6_addr = in6addr_loopback;
		len = sizeof(*in6);
	}
	if (connect(fd, (struct sockaddr *)&ss, len) && errno != EINPROGRESS) {
		close(fd);
		return -1;
	}
	return fd;
}

struct resp {
	int code;
	char *raw;     /* everything received */
	size_t len;
	char *body;    /* into raw */
	size_t body_len;
	long content_length;
	int eof;
};

static __u64 mono_ms(void)
{
	return monotonic_ns() / 1000000;
}

/* Sends req on fd and reads until the server closes, serving the endpoint
 * from this one thread in between (as the daemon's loop would). */
static void exchange(int fd, const char *req, size_t len, struct resp *out)
{
	__u64 deadline = mono_ms() + 5000;
	size_t sent = 0, cap = 0;
	char *cl;

	memset(out, 0, sizeof(*out));
	out->code = -1;
	out->content_length = -1;
	while (!out->eof && mono_ms() < deadline) {
		struct pollfd p[2] = {
			{ .fd = -1 },
			{ .fd = fd, .events = (short)(sent < len ? POLLOUT | POLLIN : POLLIN) },
		};

		serve(0);
		if (poll(p, 2, 5) < 0)
			break;
		if ((p[1].revents & POLLOUT) && sent < len) {
			ssize_t w = send(fd, req + sent, len - sent, MSG_NOSIGNAL);

			if (w > 0)
				sent += (size_t)w;
			else if (errno != EAGAIN)
				sent = len; /* the server stopped reading: read its answer */
		}
		if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) {
			for (;;) {
				ssize_t n;

				if (cap - out->len < 65536) {
					char *nr = realloc(out->raw, cap + 262144 + 1);

					if (!nr)
						break;
					out->raw = nr;
					cap += 262144;
				}
				n = recv(fd, out->raw + out->len, cap - out->len, 0);
				if (n > 0) {
					out->len += (size_t)n;
					continue;
				}
				if (n == 0 || (errno != EAGAIN && errno != EINTR))
					out->eof = 1;
				break;
			}
		}
	}
	if (!out->raw)
		return;
	out->raw[out->len] = '\0';
	sscanf(out->raw, "HTTP/1.1 %d ", &out->code);
	out->body = strstr(out->raw, "\r\n\r\n");
	if (out->body) {
		out->body += 4;
		out->body_len = out->len - (size_t)(out->body - out->raw);
	}
	cl = strstr(out->raw, "\r\nContent-Length: ");
	if (cl)
		out->content_length = strtol(cl + 18, NULL, 10);
}

static void scrape(struct metrics_http *h, int family, const char *req, size_t len,
		   struct rctx *r, struct resp *out)
{
	int fd = client_connect(h, family);

	memset(out, 0, sizeof(*out));
	out->code = -1;
	if (!CHECK(fd >= 0, "connect to the endpoint: %s", strerror(errno)))
		return;
	(void)r;
	exchange(fd, req, len, out);
	close(fd);
}

static void check_status(struct metrics_http *h, struct rctx *r, const char *req, int code,
			 const char *what)
{
	struct resp rs;

	scrape(h, AF_INET, req, strlen(req), r, &rs);
	CHECK(rs.code == code, "%s: status %d, want %d (%.60s)", what, rs.code, code,
	      rs.raw ? rs.raw : "nothing");
	CHECK(rs.eof, "%s: the connection stayed open", what);
	if (rs.body)
		CHECK_EQ(rs.body_len, rs.content_length, what);
	if (code == 405)
		CHECK(rs.raw && strstr(rs.raw, "\r\nAllow: GET, HEAD\r\n"), "%s: no Allow header", what);
	free(rs.raw);
}

TEST(metrics_http_scrape_over_loopback)
{
	struct metrics_extra x = { .top_n = 5 };
	struct rctx r = { .x = &x };
	struct metrics_http *h = NULL;
	struct buf direct;
	struct resp rs;
	struct sent s;
	struct fx f;
	const char *get = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: Prometheus/2.42.0\r\nAccept: text/plain;version=0.0.4\r\n\r\n";
	int err;

	if (open_tc(&f))
		return;
	r.f = &f;
	if (send_traffic(&f, &s))
		goto out;
	err = endpoint_open("127.0.0.1:0", 0, &r, &h);
	if (!CHECK(err == 0, "metrics_http_open 127.0.0.1:0: %s", strerror(-err)))
		goto out;
	CHECK(metrics_http_port(h) > 0, "no port");

	scrape(h, AF_INET, get, strlen(get), &r, &rs);
	CHECK(rs.code == 200, "GET /metrics: status %d", rs.code);
	CHECK(rs.raw && strstr(rs.raw, "\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"),
	      "content type of the 0.0.4 text format");
	CHECK(rs.body && rs.content_length == (long)rs.body_len, "Content-Length %ld, body %zu",
	      rs.content_length, rs.body_len);
	buf_init(&direct, METRICS_MAX_BYTES);
	if (CHECK(metrics_render(&f.m, &x, &direct) == 0, "direct render") && rs.body)
		CHECK(direct.p && direct.len == rs.body_len && !memcmp(direct.p, rs.body, direct.len),
		      "the scraped body differs from a direct render (%zu vs %zu bytes)", rs.body_len,
		      direct.len);
	buf_free(&direct);
	if (rs.body) {
		const char *dump = getenv("SLUICE_METRICS_DUMP"); /* to look at it */
		FILE *df = dump ? fopen(dump, "w") : NULL;

		if (df) {
			fwrite(rs.body, 1, rs.body_len, df);
			fclose(df);
		}
		check_sample(rs.body, "sluice_drops_total{reason=\"rate\"}", 3);
		check_promtool(rs.body, "scraped over HTTP");
	}
	free(rs.raw);

	/* HTTP/1.0 and a query string are fine; HEAD has the length, no body. */
	check_status(h, &r, "GET /metrics?x=1 HTTP/1.0\r\n\r\n", 200, "HTTP/1.0 with a query");
	check_status(h, &r, "GET /metrics HTTP/1.1\n\n", 200, "bare LF line ends");
	scrape(h, AF_INET, "HEAD /metrics HTTP/1.1\r\n\r\n", 26, &r, &rs);
	CHECK(rs.code == 200 && rs.body && rs.body_len == 0 && rs.content_length > 1000,
	      "HEAD: status %d, body %zu, Content-Length %ld", rs.code, rs.body_len,
	      rs.content_length);
	free(rs.raw);

	check_status(h, &r, "GET / HTTP/1.1\r\n\r\n", 404, "GET /");
	check_status(h, &r, "GET /metricsx HTTP/1.1\r\n\r\n", 404, "GET /metricsx");
	check_status(h, &r, "GET /favicon.ico HTTP/1.1\r\nHost: x\r\n\r\n", 404, "favicon");
	check_status(h, &r, "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 405, "POST");
	check_status(h, &r, "DELETE /metrics HTTP/1.1\r\n\r\n", 405, "DELETE");
	check_status(h, &r, "hello there\r\n\r\n", 400, "garbage");
	check_status(h, &r, "GET /metrics\r\n\r\n", 400, "HTTP/0.9 style");
	check_status(h, &r, "GET /metrics HTTP/2.0\r\n\r\n", 400, "HTTP/2.0");
	check_status(h, &r, "GET  /metrics HTTP/1.1\r\n\r\n", 400, "two spaces");
	check_status(h, &r, "GET /metrics HTTP/1.1\r\nno colon here\r\n\r\n", 400, "header without a colon");
	check_status(h, &r, "GET /metrics HTTP/1.1\r\n folded: x\r\n\r\n", 400, "obs-fold");
	{
		char nul[] = "GET /metrics HTTP/1.1\r\nX: a\0b\r\n\r\n";
		struct resp rn;

		scrape(h, AF_INET, nul, sizeof(nul) - 1, &r, &rn);
		CHECK(rn.code == 400, "a NUL in the head: status %d", rn.code);
		free(rn.raw);
	}
	{ /* A head past the bound: 431, and the rest of it does not reset the answer. */
		size_t n = 3 * METRICS_HTTP_MAX_REQUEST, i;
		char *big = malloc(n);

		if (CHECK(big != NULL, "malloc")) {
			i = (size_t)snprintf(big, n, "GET /metrics HTTP/1.1\r\nX-Filler: ");
			memset(big + i, 'a', n - i);
			scrape(h, AF_INET, big, n, &r, &rs);
			CHECK(rs.code == 431, "oversized request: status %d", rs.code);
			CHECK(rs.eof, "oversized request: connection not closed");
			free(rs.raw);
			free(big);
		}
	}
	r.calls = 0;
	check_status(h, &r, "GET /nothing HTTP/1.1\r\n\r\n", 404, "404 renders nothing");
	CHECK_EQ(r.calls, 0, "a 404 must not read the maps");
out:
	metrics_http_close(h);
	fx_close(&f);
}

/* A client that sends half a request and stalls, and a crowd of idle
 * connections, cannot keep a scraper waiting. */
TEST(metrics_http_slow_clients_do_not_block)
{
	struct rctx r = { 0 };
	struct metrics_http *h = NULL;
	int idle[METRICS_HTTP_MAX_CONNS], slow, err, i, closed = 0;
	const char *get = "GET /metrics HTTP/1.1\r\n\r\n";
	struct resp rs;
	struct fx f;

	if (fx_open(&f, 0))
		return;
	r.f = &f;
	err = endpoint_open("127.0.0.1:0", 0, &r, &h);
	if (!CHECK(err == 0, "metrics_http_open: %s", strerror(-err)))
		goto out;

	/* Half a request, then silence. */
	slow = client_connect(h, AF_INET);
	if (!CHECK(slow >= 0, "connect"))
		goto out;
	CHECK(send(slow, "GET /met", 8, MSG_NOSIGNAL) == 8, "send half a request");
	for (i = 0; i < 5; i++)
		serve(20);
	scrape(h, AF_INET, get, strlen(get), &r, &rs);
	CHECK(rs.code == 200, "scrape beside a stalled client: status %d", rs.code);
	free(rs.raw);
	/* The stalled client is still served when it finishes. */
	exchange(slow, "rics HTTP/1.1\r\n\r\n", 17, &rs);
	CHECK(rs.code == 200, "the slow client, finished: status %d", rs.code);
	free(rs.raw);
	close(slow);

	/* Every slot held by an idle connection: the next scraper still gets
	 * through, and the stalest idle connection is the one closed. */
	for (i = 0; i < METRICS_HTTP_MAX_CONNS; i++) {
		idle[i] = client_connect(h, AF_INET);
		CHECK(idle[i] >= 0, "idle connect %d", i);
		serve(20); /* accepted before the next: the first is the stalest */
		serve(20);
	}
	scrape(h, AF_INET, get, strlen(get), &r, &rs);
	CHECK(rs.code == 200, "scrape with every slot taken: status %d", rs.code);
	free(rs.raw);
	for (i = 0; i < METRICS_HTTP_MAX_CONNS; i++) {
		char c;

		if (idle[i] < 0)
			continue;
		if (recv(idle[i], &c, 1, 0) == 0 && i == 0)
			closed = 1;
		close(idle[i]);
	}
	CHECK(closed, "the oldest idle connection was not the one closed");
out:
	metrics_http_close(h);
	fx_close(&f);
}

TEST(metrics_http_addresses)
{
	static const struct {
		const char *addr;
		int allow_any, err;
	} cases[] = {
		{ "0.0.0.0:0", 0, -EPERM },
		{ "[::]:0", 0, -EPERM },
		{ "[::ffff:0.0.0.0]:0", 0, -EPERM },
		{ "0.0.0.0:0", 1, 0 },
		{ "[::]:0", 1, 0 },
		{ "127.0.0.1:0", 0, 0 },
		{ "::1:9464", 0, -EINVAL },
		{ "127.0.0.1:99999", 0, -EINVAL },
		{ "127.0.0.1:", 0, -EINVAL },
		{ "127.0.0.1:-1", 0, -EINVAL },
		{ "localhost:9464", 0, -EINVAL },
		{ ":9464", 0, -EINVAL },
		{ "[::1:9464", 0, -EINVAL },
		{ "[::1]x", 0, -EINVAL },
	};
	struct metrics_http *h = NULL;
	struct rctx r = { 0 };
	struct resp rs;
	struct fx f;
	size_t i;
	int err;

	for (i = 0; i < NELEM(cases); i++) {
		err = endpoint_open(cases[i].addr, cases[i].allow_any, &r, &h);
		CHECK(err == cases[i].err, "'%s' allow_any %d: %d, want %d", cases[i].addr,
		      cases[i].allow_any, err, cases[i].err);
		CHECK(err ? h == NULL : h != NULL, "'%s': handle on error", cases[i].addr);
		metrics_http_close(h);
		h = NULL;
	}
	/* The default: 127.0.0.1:9464 (unless something already holds it). */
	err = endpoint_open(NULL, 0, &r, &h);
	CHECK(err == 0 ? metrics_http_port(h) == 9464 : err == -EADDRINUSE,
	      "default address: %s", strerror(-err));
	metrics_http_close(h);
	h = NULL;

	/* IPv6 loopback, scraped for real. */
	if (fx_open(&f, 0))
		return;
	r.f = &f;
	err = endpoint_open("[::1]:0", 0, &r, &h);
	if (CHECK(err == 0, "[::1]:0: %s", strerror(-err))) {
		scrape(h, AF_INET6, "GET /metrics HTTP/1.1\r\n\r\n", 25, &r, &rs);
		CHECK(rs.code == 200, "scrape over ::1: status %d", rs.code);
		CHECK(rs.body && strstr(rs.body, "\nsluice_packets_total 0\n"), "body over ::1");
		free(rs.raw);
	}
	metrics_http_close(h);
	fx_close(&f);
}
