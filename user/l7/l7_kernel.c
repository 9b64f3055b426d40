// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * l7_kernel.c - sluice-l7's signals (event batches run through
 * bpf/sluice_l7.bpf.c against the pinned sluice_signals) and bans (the
 * policy transaction `sluice deny add` uses). See l7_kernel.h.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "sluice_l7.skel.h"
#include "l7_kernel.h"
#include "log.h"
#include "maps.h"
#include "pin.h"
#include "policy.h"
#include "prefix.h"

#define NSEC 1000000000ULL
/* While inactive, how often a flush looks for the pins again: a look that
 * finds them loads the program (the verifier's work), so not every 100 ms. */
#define RETRY_NS NSEC
/* While active, how often the pin is compared with the map in use: after
 * `sluice unload` and `sluice attach` our fd holds a map nobody reads. */
#define PIN_CHECK_NS (2 * NSEC)

/* Failures are logged once per kind: an operation and an errno. */
enum fail_op { FAIL_OPEN = 0, FAIL_RUN, FAIL_OPS };
#define ERRNO_KINDS 256 /* errnos past it share the last slot */

struct l7_kernel {
	struct sluice_l7 *skel; /* NULL while inactive */
	int prog_fd;
	__u32 map_id;           /* of the pinned sluice_signals the program uses */
	unsigned int n;
	struct sluice_l7_event batch[SLUICE_L7_BATCH];
	uint64_t flushed, dropped;
	uint64_t next_retry_ns, next_check_ns;
	int warned_inactive;    /* the "signals and bans are off" warning is out */
	uint64_t (*now)(void);
	uint64_t logged[FAIL_OPS][ERRNO_KINDS / 64];
};

/* Returns 1 the first time (op, err) is seen: the caller logs then. */
static int first_failure(struct l7_kernel *k, enum fail_op op, int err)
{
	unsigned int e = err < 0 ? (unsigned int)-err : (unsigned int)err;
	uint64_t bit;

	if (e >= ERRNO_KINDS)
		e = ERRNO_KINDS - 1;
	bit = 1ULL << (e % 64);
	if (k->logged[op][e / 64] & bit)
		return 0;
	k->logged[op][e / 64] |= bit;
	return 1;
}

static void signals_path(char *buf, size_t len)
{
	snprintf(buf, len, "%s/sluice_signals", pin_root());
}

/* The id of the map pinned as sluice_signals: 0 and *id, or -errno
 * (-ENOENT: not attached). With fd_out, the open fd is handed over. */
static int pinned_signals(__u32 *id, int *fd_out)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);
	char path[512];
	int fd, err;

	signals_path(path, sizeof(path));
	fd = bpf_obj_get(path);
	if (fd < 0)
		return -errno;
	if (bpf_obj_get_info_by_fd(fd, &info, &len)) {
		err = -errno;
		close(fd);
		return err;
	}
	*id = info.id;
	if (fd_out)
		*fd_out = fd;
	else
		close(fd);
	return 0;
}

static void deactivate(struct l7_kernel *k)
{
	if (k->skel)
		sluice_l7__destroy(k->skel);
	k->skel = NULL;
	k->prog_fd = -1;
	k->map_id = 0;
}

static void warn_inactive(struct l7_kernel *k, int err)
{
	if (k->warned_inactive)
		return;
	k->warned_inactive = 1;
	if (err == -ENOENT)
		pr_warn("kernel signals and bans are off: no sluice maps pinned at %s "
			"(run 'sluice attach DEV'; sluice-l7 picks them up within a second)",
			pin_root());
	else
		pr_warn("kernel signals and bans are off: %s/sluice_signals: %s "
			"(sluice-l7 retries every second)", pin_root(), strerror(-err));
}

/* Loads the program on the pinned map. 0, or -errno and inactive. */
static int activate(struct l7_kernel *k)
{
	struct sluice_l7 *skel;
	__u32 id;
	int fd = -1, err;

	deactivate(k);
	err = pinned_signals(&id, &fd);
	if (err) {
		warn_inactive(k, err);
		return err;
	}
	skel = sluice_l7__open();
	if (!skel) {
		err = -errno;
		goto fail;
	}
	/* reuse_fd keeps a duplicate of fd: ours is closed below either way. */
	err = bpf_map__reuse_fd(skel->maps.sluice_signals, fd);
	if (!err)
		err = sluice_l7__load(skel);
	if (err) {
		sluice_l7__destroy(skel);
		goto fail;
	}
	close(fd);
	k->skel = skel;
	k->prog_fd = bpf_program__fd(skel->progs.sluice_l7_apply);
	k->map_id = id;
	k->next_check_ns = k->now() + PIN_CHECK_NS;
	if (k->warned_inactive)
		pr_info("kernel signals and bans are on: %s/sluice_signals (map id %u)",
			pin_root(), id);
	k->warned_inactive = 0;
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	if (first_failure(k, FAIL_OPEN, err))
		pr_warn("kernel signals are off: load the signals program on %s/sluice_signals: "
			"%s (run with -v for libbpf's log; retried every second)",
			pin_root(), strerror(-err));
	k->warned_inactive = 1; /* said already, in other words */
	return err;
}

static uint64_t clock_monotonic(void)
{
	return monotonic_ns();
}

int l7_kernel_open(struct l7_kernel **out)
{
	struct l7_kernel *k = calloc(1, sizeof(*k));

	*out = NULL;
	if (!k)
		return -ENOMEM;
	k->prog_fd = -1;
	k->now = clock_monotonic;
	if (activate(k))
		k->next_retry_ns = k->now() + RETRY_NS;
	*out = k;
	return 0;
}

void l7_kernel_set_clock(struct l7_kernel *k, uint64_t (*now_ns)(void))
{
	k->now = now_ns ? now_ns : clock_monotonic;
	/* Deadlines from the old clock mean nothing on the new one. */
	k->next_retry_ns = 0;
	k->next_check_ns = 0;
}

void l7_kernel_close(struct l7_kernel *k)
{
	if (!k)
		return;
	l7_kernel_flush(k);
	deactivate(k);
	free(k);
}

int l7_kernel_active(const struct l7_kernel *k)
{
	return k && k->skel != NULL;
}

static void queue(struct l7_kernel *k, __u32 port, __u16 kind, __u16 index, __u64 value)
{
	struct sluice_l7_event *ev = &k->batch[k->n++];

	ev->port = port;
	ev->kind = kind;
	ev->index = index;
	ev->value_ns = value;
	if (k->n == SLUICE_L7_BATCH)
		l7_kernel_flush(k);
}

void l7_kernel_count(struct l7_kernel *k, uint32_t port, enum sluice_signal sig)
{
	if (!k)
		return;
	if ((unsigned int)sig >= SLUICE_SIG_MAX) {
		k->dropped++; /* a caller's bug; the program would skip it too */
		return;
	}
	queue(k, port, SLUICE_L7_EV_COUNT, (__u16)sig, 0);
}

void l7_kernel_observe(struct l7_kernel *k, uint32_t port, enum sluice_hist hist, uint64_t ns)
{
	if (!k)
		return;
	if ((unsigned int)hist >= SLUICE_HISTS) {
		k->dropped++;
		return;
	}
	queue(k, port, SLUICE_L7_EV_OBSERVE, (__u16)hist, ns);
}

/* Active: is the pinned map still the one in use? Reopens if not.
 * 0: unchanged; 1: reopened on the new map; -errno: now inactive. */
static int check_pin(struct l7_kernel *k, uint64_t now)
{
	__u32 id;
	int err;

	k->next_check_ns = now + PIN_CHECK_NS;
	err = pinned_signals(&id, NULL);
	if (!err && id == k->map_id)
		return 0;
	if (!err)
		pr_info("sluice_signals was replaced (map id %u, was %u): reopening", id,
			k->map_id);
	else
		k->warned_inactive = 0; /* unloaded: say so again */
	err = activate(k);
	if (err) {
		k->next_retry_ns = now + RETRY_NS;
		return err;
	}
	return 1;
}

static int run_batch(struct l7_kernel *k)
{
	LIBBPF_OPTS(bpf_test_run_opts, t, .data_in = k->batch,
		    .data_size_in = k->n * (__u32)sizeof(k->batch[0]), .repeat = 1);
	__u64 lost0 = k->skel->bss ? k->skel->bss->sluice_l7_lost : 0, lost;

	/* An XDP test run needs at least ETH_HLEN (14) bytes: one event is 16. */
	if (bpf_prog_test_run_opts(k->prog_fd, &t))
		return -errno;
	if (t.retval != XDP_PASS)
		return -EIO;
	/* Entries refused by a full table: counted by the program. */
	lost = k->skel->bss ? k->skel->bss->sluice_l7_lost - lost0 : 0;
	if (lost > k->n)
		lost = k->n;
	k->dropped += lost;
	k->flushed += k->n - lost;
	return 0;
}

int l7_kernel_flush(struct l7_kernel *k)
{
	uint64_t now;
	int err;

	if (!k)
		return 0;
	now = k->now();
	if (!k->skel) {
		if (now >= k->next_retry_ns) {
			k->next_retry_ns = now + RETRY_NS;
			activate(k);
		}
	} else if (now >= k->next_check_ns) {
		check_pin(k, now);
	}
	if (!k->n)
		return 0;
	if (!k->skel) {
		k->dropped += k->n;
		k->n = 0;
		return -ENOENT;
	}
	err = run_batch(k);
	/* A failed run may mean the map went away: look now, and run again
	 * once on a fresh program if it did. */
	if (err && check_pin(k, now) == 1)
		err = run_batch(k);
	if (err) {
		if (first_failure(k, FAIL_RUN, err))
			pr_warn("apply %u signal events to %s/sluice_signals: %s (dropped; "
				"this failure is logged once)", k->n, pin_root(),
				err == -EIO ? "the program did not pass the batch" : strerror(-err));
		k->dropped += k->n;
	}
	k->n = 0;
	return err;
}

/* An IPv4-mapped address (::ffff:a.b.c.d) is the IPv4 host a.b.c.d. */
static void host_prefix(const uint8_t addr[16], struct prefix *p)
{
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

	memset(p, 0, sizeof(*p));
	if (!memcmp(addr, mapped, sizeof(mapped))) {
		p->family = SLUICE_AF_INET;
		p->len = 32;
		memcpy(p->addr, addr + 12, 4);
	} else {
		p->family = SLUICE_AF_INET6;
		p->len = 128;
		memcpy(p->addr, addr, 16);
	}
}

/* A live entry for the same prefix that outlasts this ban (permanent, or
 * expiring later) stays as it is: a ban never shortens a deny. */
static int outlasted(const struct policy *p, const struct prefix *pfx, __u64 expires_ns)
{
	size_t i;

	for (i = 0; i < p->deny.n; i++) {
		const struct list_entry *le = &p->deny.v[i];

		if (policy_entry_live(le) && prefix_equal(&le->pfx, pfx) &&
		    (!le->deny.expires_ns || le->deny.expires_ns >= expires_ns))
			return 1;
	}
	return 0;
}

int l7_kernel_ban(struct l7_kernel *k, const uint8_t addr[16], uint64_t ban_s)
{
	char path[512], buf[PREFIX_STRLEN];
	struct sluice_maps m;
	struct policy *p;
	struct prefix pfx;
	struct errbuf e;
	struct stat st;
	int lock, err;

	(void)k; /* bans need no state of ours: each is one transaction */
	/* Up to a year: the policy's expiry is in ns and must not wrap. */
	if (!ban_s || ban_s > 366ULL * 86400)
		return -EINVAL;
	host_prefix(addr, &pfx);
	prefix_str(&pfx, buf, sizeof(buf));
	/* Not attached: the open's warning said bans are off; no error per ban. */
	snprintf(path, sizeof(path), "%s/sluice_deny", pin_root());
	if (stat(path, &st))
		return errno == ENOENT ? -ENOENT : -errno;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	lock = pin_lock();
	if (lock < 0) {
		free(p);
		return lock;
	}
	err = maps_open_pinned(&m);
	if (err)
		goto unlock;
	err = policy_load(p, &m);
	if (err)
		goto close_maps;
	if (outlasted(p, &pfx, p->now_ns + ban_s * NSEC)) {
		pr_info("ban %s for %llu s: already denied for longer", buf,
			(unsigned long long)ban_s);
		goto free_policy;
	}
	err = policy_ban_add(p, &pfx, ban_s, SLUICE_BAN_BY_L7, &e);
	if (err)
		pr_err("ban %s: %s", buf, e.msg);
	else
		err = policy_commit(p, &m);
	if (!err)
		pr_dbg("banned %s for %llu s (XDP deny list)", buf, (unsigned long long)ban_s);
	else
		pr_err("ban %s for %llu s: %s (the address stays allowed)", buf,
		       (unsigned long long)ban_s, strerror(-err));
free_policy:
	policy_free(p);
close_maps:
	maps_close(&m);
unlock:
	pin_unlock(lock);
	free(p);
	return err;
}

uint64_t l7_kernel_flushed(const struct l7_kernel *k)
{
	return k ? k->flushed : 0;
}

uint64_t l7_kernel_dropped(const struct l7_kernel *k)
{
	return k ? k->dropped : 0;
}
