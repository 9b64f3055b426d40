/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * l7_kernel.h - sluice-l7's two ties to the kernel side, both through the
 * maps that `sluice attach` pinned under SLUICE_PIN_ROOT:
 *
 * Signals: what sluice-l7 measures (time to first byte, total time, time per
 * output token, requests, responses, status classes, its 429s) goes into
 * sluice_signals under the backend's port, the entries the TC program fills
 * and the daemon's adaptive controller reads. The kernel updates those
 * entries with atomic adds, which a map update from userspace cannot do;
 * so events are queued here and flushed in batches through a small BPF
 * program (bpf/sluice_l7.bpf.c) run with BPF_PROG_TEST_RUN, which applies
 * them with the same atomics. No update is lost to a race with the TC side.
 *
 * Bans: a client address that keeps getting 429s goes on the XDP deny list
 * with a timeout, through the same policy transaction `sluice deny add`
 * uses (under the pin directory's lock).
 *
 * Without pinned maps (sluice not attached) both are off, with one warning;
 * l7_kernel_open retries on every flush, so attaching later turns them on.
 */
#ifndef SLUICE_L7_KERNEL_H
#define SLUICE_L7_KERNEL_H

#include <stdint.h>
#include "sluice.h"

struct l7_kernel;

/* Never fails for a missing attachment (see above); -ENOMEM only. */
int l7_kernel_open(struct l7_kernel **out);
void l7_kernel_close(struct l7_kernel *k);  /* flushes first */
int l7_kernel_active(const struct l7_kernel *k);  /* signals map found */

/* Queue one event for port; flushed when the batch fills, or by
 * l7_kernel_flush (the proxy calls it every 100 ms). */
void l7_kernel_count(struct l7_kernel *k, uint32_t port, enum sluice_signal sig);
void l7_kernel_observe(struct l7_kernel *k, uint32_t port, enum sluice_hist hist, uint64_t ns);
/* 0, or a negative errno (logged once per kind of failure). */
int l7_kernel_flush(struct l7_kernel *k);

/* Puts addr (16 bytes; IPv4-mapped IPv6 for IPv4) on the deny list for
 * ban_s seconds. 0, -ENOENT when sluice is not attached, or an errno. */
int l7_kernel_ban(struct l7_kernel *k, const uint8_t addr[16], uint64_t ban_s);

/* Events flushed, and dropped (no map, or a failed run), for the metrics. */
uint64_t l7_kernel_flushed(const struct l7_kernel *k);
uint64_t l7_kernel_dropped(const struct l7_kernel *k);

/* Tests: the clock (ns) behind the 1 s retry while inactive and the check
 * that the pin still holds the map in use; NULL restores CLOCK_MONOTONIC. */
void l7_kernel_set_clock(struct l7_kernel *k, uint64_t (*now_ns)(void));

#endif
