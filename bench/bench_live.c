// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * bench_live.c - `make bench`, second part: one live flood, the same
 * per-source limit four ways, as an operator would compare them.
 *
 * The benchmark creates two network namespaces joined by a veth pair (and
 * removes them on every way out). In the sending one, bench_gen
 * (bpf/bench_live.bpf.c) runs under BPF_PROG_TEST_RUN with
 * BPF_F_TEST_XDP_LIVE_FRAMES: each of its XDP_TX really leaves through the
 * veth, from one of BENCH_SOURCES source addresses in turn, and the receiving
 * end takes it in its NAPI poll, in softirq, on the same CPU, before the
 * test run returns. The receiving end runs one of:
 *
 *   floor      a bare XDP_DROP (bpf/floor.bpf.c)
 *   sluice     sluice's XDP program, one rule: pps LIMIT burst BURST per source
 *   hashlimit  a bare XDP_PASS, then iptables -t raw hashlimit, srcip mode
 *   meter      a bare XDP_PASS, then an nft meter in a raw-priority prerouting chain
 *
 * The time of a round is the wall time of the test run that sends its
 * frames: the generator's work plus everything the receiver did with them.
 * The generator's part is the same in every case, so a case's receive cost
 * over the floor is its ns per frame minus the floor's. Every source sends
 * far over the limit, so almost every frame is a drop. Rounds interleave
 * the cases (in a rotating order), the table shows medians. A round counts:
 * the receiver must have taken every frame (its rx_packets), and each
 * limiter's own counter must show it dropped all but about LIMIT per
 * source per second (the "passed/s per source" column).
 */
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/utsname.h>
#include <linux/if_ether.h>
#include <linux/if_link.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "bench_live.skel.h"
#include "floor.skel.h"
#include "sluice_xdp.skel.h"
#include "command.h"
#include "loader.h"
#include "log.h"
#include "maps.h"
#include "parse.h"
#include "policy.h"
#include "util.h"
#include "sluice.h"

#define DEFAULT_ROUNDS 5
#define DEFAULT_FRAMES 1000000
#define MAX_ROUNDS 25
#define MAX_FRAMES 20000000
#define WARMUP_FRAMES 65536

#define BENCH_SOURCES 64
#define BENCH_SRC_BASE "198.18.0.1" /* .1 to .64 */
#define BENCH_DST "198.19.0.2"      /* on the receiver's link, not its own: the
				     * few frames that pass are dropped by IP
				     * routing (forwarding is off), quietly */
#define BENCH_DPORT 5000
#define LIMIT_PPS 1000
#define LIMIT_BURST 5

#define DEV_TX "sbltx"
#define DEV_RX "sblrx"
#define MAC_TX "02:5b:00:00:00:01"
#define MAC_RX "02:5b:00:00:00:02"

static volatile sig_atomic_t stop;
static char ns_tx[64], ns_rx[64];
static int verbose;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

/* Runs a shell command; quiet unless -v. Returns its exit status. */
__attribute__((format(printf, 1, 2)))
static int sh(const char *fmt, ...)
{
	char cmd[1024];
	size_t n;
	va_list ap;
	int rc;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	if (verbose)
		fprintf(stderr, "+ %s\n", cmd);
	else if ((n = strlen(cmd)) + 24 < sizeof(cmd)) {
		memmove(cmd + 2, cmd, n + 1);
		memcpy(cmd, "{ ", 2);
		snprintf(cmd + n + 2, sizeof(cmd) - n - 2, "; } >/dev/null 2>&1");
	}
	rc = system(cmd);
	return rc == -1 ? -1 : WEXITSTATUS(rc);
}

/* The first unsigned number after `after` in a command's output (-1: none). */
__attribute__((format(printf, 2, 3)))
static long long sh_number(const char *after, const char *fmt, ...)
{
	char cmd[1024], line[1024];
	long long v = -1;
	va_list ap;
	FILE *f;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	f = popen(cmd, "r");
	if (!f)
		return -1;
	while (v < 0 && fgets(line, sizeof(line), f)) {
		char *p = strstr(line, after);

		if (p)
			v = strtoll(p + strlen(after), NULL, 10);
	}
	pclose(f);
	return v;
}

static void netns_remove(void)
{
	if (ns_tx[0])
		sh("ip netns del %s", ns_tx);
	if (ns_rx[0])
		sh("ip netns del %s", ns_rx);
	ns_tx[0] = ns_rx[0] = '\0';
}

/* Two namespaces and the veth pair between them; deleting the namespaces
 * deletes the pair. */
static int netns_create(void)
{
	snprintf(ns_tx, sizeof(ns_tx), "sluice-bench-tx-%d", (int)getpid());
	snprintf(ns_rx, sizeof(ns_rx), "sluice-bench-rx-%d", (int)getpid());
	/* No IPv6 on the pair: no neighbour discovery frames among the flood. */
	if (sh("ip netns add %s", ns_tx) || sh("ip netns add %s", ns_rx) ||
	    sh("ip netns exec %s sysctl -qw net.ipv6.conf.all.disable_ipv6=1 "
	       "net.ipv6.conf.default.disable_ipv6=1", ns_tx) ||
	    sh("ip netns exec %s sysctl -qw net.ipv6.conf.all.disable_ipv6=1 "
	       "net.ipv6.conf.default.disable_ipv6=1", ns_rx) ||
	    sh("ip -n %s link add name " DEV_TX " type veth peer name " DEV_RX " netns %s", ns_tx,
	       ns_rx) ||
	    sh("ip -n %s link set dev " DEV_TX " address " MAC_TX, ns_tx) ||
	    sh("ip -n %s link set dev " DEV_RX " address " MAC_RX, ns_rx) ||
	    sh("ip -n %s link set dev lo up", ns_tx) || sh("ip -n %s link set dev lo up", ns_rx) ||
	    sh("ip -n %s addr add 198.19.0.254/24 dev " DEV_TX, ns_tx) ||
	    sh("ip -n %s addr add 198.19.0.1/24 dev " DEV_RX, ns_rx) ||
	    sh("ip -n %s link set dev " DEV_TX " up", ns_tx) ||
	    sh("ip -n %s link set dev " DEV_RX " up", ns_rx)) {
		pr_err("create namespaces %s, %s and their veth pair (run with -v to see the "
		       "commands)", ns_tx, ns_rx);
		return -EIO;
	}
	return 0;
}

struct nsfds {
	int home, tx, rx;
};

static int ns_open(const char *name)
{
	char path[128];

	snprintf(path, sizeof(path), "/run/netns/%s", name);
	return open(path, O_RDONLY | O_CLOEXEC);
}

static int ns_go(int fd)
{
	if (setns(fd, CLONE_NEWNET)) {
		pr_err("setns: %s", strerror(errno));
		return -errno;
	}
	return 0;
}

/* Packets the receiving veth has taken (its XDP program saw them), read in
 * its namespace. */
static int rx_packets(const struct nsfds *ns, __u32 *out)
{
	struct ifaddrs *ifa, *i;
	int err = -ENOENT;

	if ((err = ns_go(ns->rx)))
		return err;
	err = -ENOENT;
	if (getifaddrs(&ifa) == 0) {
		for (i = ifa; i; i = i->ifa_next) {
			if (i->ifa_addr && i->ifa_addr->sa_family == AF_PACKET && i->ifa_data &&
			    !strcmp(i->ifa_name, DEV_RX)) {
				*out = ((struct rtnl_link_stats *)i->ifa_data)->rx_packets;
				err = 0;
			}
		}
		freeifaddrs(ifa);
	}
	ns_go(ns->home);
	if (err)
		pr_err("read rx_packets of " DEV_RX ": %s", strerror(-err));
	return err;
}

static int xdp_set(const struct nsfds *ns, int ifindex, int prog_fd)
{
	int err;

	if ((err = ns_go(ns->rx)))
		return err;
	err = bpf_xdp_attach(ifindex, prog_fd, XDP_FLAGS_DRV_MODE, NULL);
	ns_go(ns->home);
	if (err)
		pr_err("attach XDP to " DEV_RX ": %s", strerror(-err));
	return err;
}

/* ------------------------------------------------------------------------ */
/* The cases */

enum { C_FLOOR, C_SLUICE, C_HASHLIMIT, C_METER, N_CASES };

static const char *const case_names[N_CASES] = {
	[C_FLOOR] = "floor: bare XDP_DROP",
	[C_SLUICE] = "sluice (XDP)",
	[C_HASHLIMIT] = "iptables hashlimit (raw)",
	[C_METER] = "nft meter (prerouting, raw)",
};

struct live {
	struct nsfds ns;
	int rx_ifindex, tx_ifindex;
	struct floor *floor;
	struct bench_live *gen;
	struct sluice_xdp *sluice;
	struct sluice_maps maps;
	unsigned char frame[64];
	__u32 frame_len;
	__u64 frames;
	double ns_per_frame[N_CASES][MAX_ROUNDS];
	double passed_per_src_s[N_CASES][MAX_ROUNDS];
};

static int sluice_setup(struct live *l)
{
	struct load_opts lo = { .pin = 0, .no_tc = 1 };
	char line[] = "rule add name live dport 5000 proto udp pps 1000 burst 5";
	char *words[COMMAND_MAX_WORDS];
	struct command_result res;
	struct errbuf e = { "" };
	struct policy p;
	int err, n;

	_Static_assert(LIMIT_PPS == 1000 && LIMIT_BURST == 5 && BENCH_DPORT == 5000,
		       "the sluice rule spells the limit out");
	if ((err = loader_open(&l->sluice, &lo)))
		return err;
	maps_from_skel(&l->maps, l->sluice);
	if ((err = loader_init_config(l->maps.cfg, SLUICE_DEFAULT_STATE_ENTRIES, 0)) || (err = policy_load(&p, &l->maps)))
		return err;
	n = split_words(line, words, COMMAND_MAX_WORDS);
	err = n < 0 ? n : command_apply(&p, n, words, &res, &e);
	if (!err)
		err = policy_commit(&p, &l->maps);
	policy_free(&p);
	if (err)
		pr_err("sluice rule: %s", e.msg[0] ? e.msg : strerror(-err));
	return err;
}

static int netfilter_clear(void)
{
	/* Everything in this namespace is ours: iptables-nft keeps its tables
	 * in nftables, so flushing the ruleset removes both (and their hooks). */
	sh("ip netns exec %s iptables -t raw -F", ns_rx);
	return sh("ip netns exec %s nft flush ruleset", ns_rx) ? -EIO : 0;
}

/* Feeds a ruleset to nft in the receiver's namespace. */
__attribute__((format(printf, 1, 2)))
static int nft_apply(const char *fmt, ...)
{
	char cmd[256], rules[1024];
	va_list ap;
	FILE *f;
	int rc;

	va_start(ap, fmt);
	vsnprintf(rules, sizeof(rules), fmt, ap);
	va_end(ap);
	snprintf(cmd, sizeof(cmd), "ip netns exec %s nft -f -%s", ns_rx,
		 verbose ? "" : " >/dev/null 2>&1");
	if (verbose)
		fprintf(stderr, "+ %s <<\n%s", cmd, rules);
	f = popen(cmd, "w");
	if (!f)
		return -1;
	fputs(rules, f);
	rc = pclose(f);
	return rc == -1 ? -1 : WEXITSTATUS(rc);
}

static int case_setup(struct live *l, int c)
{
	int err;

	if ((err = netfilter_clear()))
		return err;
	switch (c) {
	case C_FLOOR:
		return xdp_set(&l->ns, l->rx_ifindex, bpf_program__fd(l->floor->progs.floor_drop));
	case C_SLUICE:
		return xdp_set(&l->ns, l->rx_ifindex, bpf_program__fd(l->sluice->progs.sluice_xdp));
	case C_HASHLIMIT:
		if ((err = xdp_set(&l->ns, l->rx_ifindex,
				   bpf_program__fd(l->gen->progs.bench_pass))))
			return err;
		if (sh("ip netns exec %s iptables -t raw -A PREROUTING -i " DEV_RX " -p udp "
		       "--dport %d -m hashlimit --hashlimit-name sluicebench --hashlimit-mode srcip "
		       "--hashlimit-above %d/sec --hashlimit-burst %d -j DROP", ns_rx, BENCH_DPORT,
		       LIMIT_PPS, LIMIT_BURST)) {
			pr_err("iptables hashlimit rule (is iptables installed? make deps)");
			return -EIO;
		}
		return 0;
	case C_METER:
		if ((err = xdp_set(&l->ns, l->rx_ifindex,
				   bpf_program__fd(l->gen->progs.bench_pass))))
			return err;
		/* `counter`: iptables counts every rule's packets, so the two
		 * netfilter cases count alike (and the round is checked). */
		if (nft_apply("table ip sluicebench {\n"
			      "  chain pre {\n"
			      "    type filter hook prerouting priority raw; policy accept;\n"
			      "    iifname \"" DEV_RX "\" udp dport %d meter persrc size 65536 "
			      "{ ip saddr limit rate over %d/second burst %d packets } counter drop\n"
			      "  }\n"
			      "}\n", BENCH_DPORT, LIMIT_PPS, LIMIT_BURST)) {
			pr_err("nft meter rule (is nftables installed? make deps)");
			return -EIO;
		}
		return 0;
	}
	return -EINVAL;
}

/* Frames the case's limiter dropped so far (the floor drops all). */
static long long case_drops(const struct live *l, int c)
{
	__u64 v = 0;

	switch (c) {
	case C_SLUICE:
		if (maps_percpu_sum(l->maps.counters, SLUICE_CNT_DROP_RATE, &v, 1))
			return -1;
		return (long long)v;
	case C_HASHLIMIT:
		/* The rule's line: "pkts bytes DROP ...", after the two header lines. */
		return sh_number("", "ip netns exec %s iptables -t raw -L PREROUTING -v -x -n "
			      "2>/dev/null | sed -n 3p", ns_rx);
	case C_METER:
		return sh_number("packets ", "ip netns exec %s nft list chain ip sluicebench pre "
			      "2>/dev/null", ns_rx);
	}
	return 0;
}

/* Sends n frames through the pair; *wall gets the test run's wall time. */
static int flood(struct live *l, __u64 n, __u64 *wall)
{
	struct xdp_md ctx = { .data = 0, .data_end = l->frame_len,
			      .ingress_ifindex = (__u32)l->tx_ifindex };
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = l->frame, .data_size_in = l->frame_len,
		    .ctx_in = &ctx, .ctx_size_in = sizeof(ctx), .repeat = (__u32)n,
		    .flags = BPF_F_TEST_XDP_LIVE_FRAMES);
	__u64 t0;
	int err;

	if ((err = ns_go(l->ns.tx)))
		return err;
	t0 = monotonic_ns();
	err = bpf_prog_test_run_opts(bpf_program__fd(l->gen->progs.bench_gen), &o);
	*wall = monotonic_ns() - t0;
	if (err)
		err = -errno;
	ns_go(l->ns.home);
	if (err)
		pr_err("live-frames test run: %s", strerror(-err));
	return err;
}

static int case_round(struct live *l, int c, int round)
{
	__u32 rx0, rx1;
	long long d0, d1;
	__u64 wall, passed;
	int err;

	if ((err = case_setup(l, c)) || (err = flood(l, WARMUP_FRAMES, &wall)))
		return err;
	d0 = case_drops(l, c);
	if ((err = rx_packets(&l->ns, &rx0)) || (err = flood(l, l->frames, &wall)) ||
	    (err = rx_packets(&l->ns, &rx1)))
		return err;
	d1 = case_drops(l, c);
	/* The sending side's own stack may add a frame or two (ARP). */
	if ((__u32)(rx1 - rx0) < (__u32)l->frames || (__u32)(rx1 - rx0) > (__u32)l->frames + 64) {
		pr_err("%s: the receiver took %u of %llu frames (the veth ring overflowed?): "
		       "not timing a case that did not see its flood", case_names[c], rx1 - rx0,
		       (unsigned long long)l->frames);
		return -EIO;
	}
	if (c != C_FLOOR && (d0 < 0 || d1 < d0)) {
		pr_err("%s: cannot read the limiter's drop counter", case_names[c]);
		return -EIO;
	}
	passed = c == C_FLOOR ? 0 : l->frames - (__u64)(d1 - d0);
	/* Far over the limit, the limiter must drop nearly all: at most a
	 * limit's worth per source per second of the round, plus a burst and
	 * a second of slack, may pass. */
	if (c != C_FLOOR &&
	    passed > (__u64)BENCH_SOURCES * (LIMIT_PPS * (wall / 1000000000ULL + 2) + LIMIT_BURST)) {
		pr_err("%s: %llu of %llu frames passed: the limit did not hold", case_names[c],
		       (unsigned long long)passed, (unsigned long long)l->frames);
		return -EIO;
	}
	l->ns_per_frame[c][round] = (double)wall / (double)l->frames;
	l->passed_per_src_s[c][round] = (double)passed / BENCH_SOURCES / ((double)wall / 1e9);
	return 0;
}

/* ------------------------------------------------------------------------ */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(const double *v, int n, double *min, double *max)
{
	double s[MAX_ROUNDS];

	memcpy(s, v, (size_t)n * sizeof(*s));
	qsort(s, (size_t)n, sizeof(*s), cmp_double);
	*min = s[0];
	*max = s[n - 1];
	return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

static int build_frame(struct live *l)
{
	struct ethhdr eth = { .h_proto = htons(ETH_P_IP) };
	struct iphdr ip = { .version = 4, .ihl = 5, .ttl = 64, .protocol = IPPROTO_UDP };
	struct udphdr udp = {};
	const unsigned int payload = 64 - sizeof(eth) - sizeof(ip) - sizeof(udp);

	if (sscanf(MAC_RX, "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx", &eth.h_dest[0], &eth.h_dest[1],
		   &eth.h_dest[2], &eth.h_dest[3], &eth.h_dest[4], &eth.h_dest[5]) != 6 ||
	    sscanf(MAC_TX, "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx", &eth.h_source[0], &eth.h_source[1],
		   &eth.h_source[2], &eth.h_source[3], &eth.h_source[4], &eth.h_source[5]) != 6)
		return -EINVAL;
	ip.tot_len = htons((__u16)(sizeof(ip) + sizeof(udp) + payload));
	inet_pton(AF_INET, BENCH_SRC_BASE, &ip.saddr);
	inet_pton(AF_INET, BENCH_DST, &ip.daddr);
	udp.source = htons(40000);
	udp.dest = htons(BENCH_DPORT);
	udp.len = htons((__u16)(sizeof(udp) + payload)); /* checksum 0: none (IPv4) */
	memset(l->frame, 0, sizeof(l->frame));
	memcpy(l->frame, &eth, sizeof(eth));
	memcpy(l->frame + sizeof(eth), &ip, sizeof(ip));
	memcpy(l->frame + sizeof(eth) + sizeof(ip), &udp, sizeof(udp));
	l->frame_len = 64; /* ip.check is written by bench_gen */
	return 0;
}

static int live_open(struct live *l)
{
	struct in_addr base;
	int err;

	if ((err = netns_create()))
		return err;
	l->ns.home = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	l->ns.tx = ns_open(ns_tx);
	l->ns.rx = ns_open(ns_rx);
	if (l->ns.home < 0 || l->ns.tx < 0 || l->ns.rx < 0) {
		pr_err("open the namespaces: %s", strerror(errno));
		return -errno;
	}
	if ((err = ns_go(l->ns.tx)))
		return err;
	l->tx_ifindex = (int)if_nametoindex(DEV_TX);
	if ((err = ns_go(l->ns.rx)))
		return err;
	l->rx_ifindex = (int)if_nametoindex(DEV_RX);
	if ((err = ns_go(l->ns.home)))
		return err;
	if (!l->tx_ifindex || !l->rx_ifindex) {
		pr_err("the veth pair has no ifindex");
		return -ENODEV;
	}

	l->floor = floor__open_and_load();
	l->gen = bench_live__open();
	if (!l->floor || !l->gen) {
		pr_err("open build/floor.bpf.o, build/bench_live.bpf.o: %s", strerror(errno));
		return -errno;
	}
	inet_pton(AF_INET, BENCH_SRC_BASE, &base);
	l->gen->rodata->bench_src_base = ntohl(base.s_addr);
	l->gen->rodata->bench_sources = BENCH_SOURCES;
	if ((err = bench_live__load(l->gen))) {
		pr_err("load the generator: %s", strerror(-err));
		return err;
	}
	if ((err = sluice_setup(l)) || (err = build_frame(l)))
		return err;
	return 0;
}

static void live_close(struct live *l)
{
	if (l->ns.rx > 0 && l->rx_ifindex && !ns_go(l->ns.rx)) {
		bpf_xdp_detach(l->rx_ifindex, XDP_FLAGS_DRV_MODE, NULL);
		ns_go(l->ns.home);
	}
	netns_remove();
	if (l->sluice)
		sluice_xdp__destroy(l->sluice);
	if (l->gen)
		bench_live__destroy(l->gen);
	if (l->floor)
		floor__destroy(l->floor);
	if (l->ns.home > 0)
		close(l->ns.home);
	if (l->ns.tx > 0)
		close(l->ns.tx);
	if (l->ns.rx > 0)
		close(l->ns.rx);
}

static void print_table(const struct live *l, int rounds, int cpu, int markdown)
{
	double med[N_CASES], mn[N_CASES], mx[N_CASES], pass[N_CASES], d0, d1;
	struct utsname u;
	char date[64], cpu_model[128] = "?", line[256];
	time_t t = time(NULL);
	FILE *f;
	int c;

	for (c = 0; c < N_CASES; c++) {
		med[c] = median(l->ns_per_frame[c], rounds, &mn[c], &mx[c]);
		pass[c] = median(l->passed_per_src_s[c], rounds, &d0, &d1);
	}
	strftime(date, sizeof(date), "%Y-%m-%d %H:%M UTC", gmtime(&t));
	f = fopen("/proc/cpuinfo", "r");
	while (f && fgets(line, sizeof(line), f)) {
		char *colon = strchr(line, ':');

		if (!strncmp(line, "model name", 10) && colon) {
			snprintf(cpu_model, sizeof(cpu_model), "%s", colon + 2);
			cpu_model[strcspn(cpu_model, "\n")] = '\0';
			break;
		}
	}
	if (f)
		fclose(f);
	if (markdown) {
		printf("- machine: Linux %s, %s, %ld CPUs; generator and receiver on CPU %d\n",
		       uname(&u) ? "?" : u.release, cpu_model, sysconf(_SC_NPROCESSORS_ONLN), cpu);
		printf("- date: %s\n", date);
		printf("- method: live frames through a veth pair, %llu frames per round from %d "
		       "sources (each far over pps %d burst %d), median of %d interleaved rounds\n\n",
		       (unsigned long long)l->frames, BENCH_SOURCES, LIMIT_PPS, LIMIT_BURST, rounds);
		printf("| receiver | median ns/frame | min | max | receive ns over floor | "
		       "x sluice's | passed/s per source |\n");
		printf("|---|---:|---:|---:|---:|---:|---:|\n");
	} else {
		printf("\nsluice-bench-live: one flood through a veth pair, %llu frames per round, "
		       "%d sources over pps %d burst %d, median of %d rounds, CPU %d\n",
		       (unsigned long long)l->frames, BENCH_SOURCES, LIMIT_PPS, LIMIT_BURST, rounds,
		       cpu);
		printf("%-30s %10s %7s %7s %12s %10s %12s\n", "receiver", "ns/frame", "min", "max",
		       "over floor", "x sluice", "passed/s/src");
	}
	for (c = 0; c < N_CASES; c++) {
		double over = med[c] - med[C_FLOOR], sl = med[C_SLUICE] - med[C_FLOOR];

		if (c != C_FLOOR && med[c] == 0)
			continue; /* not run (--only) */
		char ratio[32], passed[32];

		if (c == C_FLOOR || med[C_SLUICE] == 0 || sl <= 0)
			snprintf(ratio, sizeof(ratio), "-");
		else
			snprintf(ratio, sizeof(ratio), "%.2f", over / sl);
		if (c == C_FLOOR)
			snprintf(passed, sizeof(passed), "-");
		else
			snprintf(passed, sizeof(passed), "%.0f", pass[c]);
		printf(markdown ? "| %s | %.1f | %.1f | %.1f | %.1f | %s | %s |\n"
				: "%-30s %10.1f %7.1f %7.1f %12.1f %10s %12s\n",
		       case_names[c], med[c], mn[c], mx[c], over, ratio, passed);
	}
}

static const char usage[] =
"Usage: sluice-bench-live [--rounds N] [--frames N] [--cpu N] [--only CASE] [--markdown] [-v]\n"
"\n"
"One live flood (BPF_PROG_TEST_RUN live frames through a veth pair in two\n"
"namespaces it creates and removes) against the same per-source limit four\n"
"ways: a bare XDP_DROP floor, sluice, iptables hashlimit, an nft meter.\n"
"Needs root, iptables and nft.\n"
"\n"
"  --rounds N   interleaved rounds, the median is reported (default 5)\n"
"  --frames N   frames per round (default 1000000)\n"
"  --cpu N      the CPU that sends and receives (default: the last)\n"
"  --only CASE  the floor and one case: sluice, hashlimit or meter (profiling)\n"
"  --markdown   print the table in Markdown (docs/benchmarks.md)\n"
"  -v           show the commands run\n";

int main(int argc, char **argv)
{
	struct live *l;
	struct errbuf e = { "" };
	__u64 rounds = DEFAULT_ROUNDS, frames = DEFAULT_FRAMES, cpu;
	int markdown = 0, err = 0, a, r, i, c, only = -1;
	cpu_set_t set;

	log_init("sluice-bench-live", LOG_WARN);
	cpu = (__u64)(sysconf(_SC_NPROCESSORS_ONLN) - 1);
	for (a = 1; a < argc; a++) {
		if (!strcmp(argv[a], "--markdown")) {
			markdown = 1;
		} else if (!strcmp(argv[a], "-v")) {
			verbose = 1;
		} else if (!strcmp(argv[a], "-h") || !strcmp(argv[a], "--help")) {
			fputs(usage, stdout);
			return 0;
		} else if (!strcmp(argv[a], "--rounds") && a + 1 < argc) {
			if (parse_u64(argv[++a], 1, MAX_ROUNDS, 0, "rounds", &rounds, &e))
				goto bad;
		} else if (!strcmp(argv[a], "--frames") && a + 1 < argc) {
			if (parse_u64(argv[++a], WARMUP_FRAMES, MAX_FRAMES, 1, "frames", &frames, &e))
				goto bad;
		} else if (!strcmp(argv[a], "--only") && a + 1 < argc) {
			/* Profiling: the floor and one case (sluice, hashlimit, meter). */
			a++;
			only = !strcmp(argv[a], "sluice") ? C_SLUICE :
			       !strcmp(argv[a], "hashlimit") ? C_HASHLIMIT :
			       !strcmp(argv[a], "meter") ? C_METER : -2;
			if (only == -2) {
				pr_err("--only takes sluice, hashlimit or meter");
				return 2;
			}
		} else if (!strcmp(argv[a], "--cpu") && a + 1 < argc) {
			if (parse_u64(argv[++a], 0, CPU_SETSIZE - 1, 0, "cpu", &cpu, &e))
				goto bad;
		} else {
			pr_err("unknown or incomplete option '%s'", argv[a]);
			fputs(usage, stderr);
			return 2;
		}
	}
	if (geteuid() != 0) {
		pr_err("must be run as root: namespaces, XDP and netfilter need CAP_NET_ADMIN "
		       "and CAP_BPF (try: sudo make bench)");
		return 1;
	}
	if (sh("command -v iptables && command -v nft")) {
		pr_err("needs iptables and nft (make deps installs them)");
		return 1;
	}
	/* The generator and the receiver's softirq share this CPU: the time
	 * of a round is all the work its frames caused. */
	CPU_ZERO(&set);
	CPU_SET((int)cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set)) {
		pr_err("pin to CPU %llu: %s", (unsigned long long)cpu, strerror(errno));
		return 1;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGHUP, on_signal);

	l = calloc(1, sizeof(*l));
	if (!l)
		return 1;
	l->frames = frames;
	err = live_open(l);
	for (r = 0; !err && r < (int)rounds; r++) {
		if (isatty(STDERR_FILENO))
			fprintf(stderr, "\rsluice-bench-live: round %d/%d", r + 1, (int)rounds);
		/* A rotating order: no case always follows the same one. */
		for (i = 0; !err && i < N_CASES; i++) {
			if (stop) {
				err = -EINTR;
				break;
			}
			c = (i + r) % N_CASES;
			if (only >= 0 && c != C_FLOOR && c != only) {
				l->ns_per_frame[c][r] = 0;
				continue;
			}
			err = case_round(l, c, r);
		}
	}
	if (isatty(STDERR_FILENO))
		fputc('\n', stderr);
	if (!err)
		netfilter_clear();
	live_close(l);
	if (!err)
		print_table(l, (int)rounds, (int)cpu, markdown);
	free(l);
	return err ? 1 : 0;
bad:
	pr_err("%s", e.msg);
	return 2;
}
