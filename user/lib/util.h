/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* util.h - the few helpers every part of the user side needs. */
#ifndef SLUICE_UTIL_H
#define SLUICE_UTIL_H

#include <stddef.h>
#include <stdint.h>

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* CLOCK_MONOTONIC in nanoseconds: the clock of the maps' timestamps (the
 * XDP program's bpf_ktime_get_ns and its coarse clock count from the same
 * origin), the event loop's timers and every interval measured here. */
uint64_t monotonic_ns(void);

/* Grows the array *arrayp of elem-byte elements so it holds at least need of
 * them: capacity doubles, from first. *arrayp and *cap are updated only on
 * success; on -ENOMEM the array is untouched (the caller still owns it).
 * arrayp is the address of any object pointer (T **). */
int array_grow(void *arrayp, size_t *cap, size_t need, size_t elem, size_t first);

#endif
