/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* rate.h - user rates to the fixed-point GCRA parameters of bpf/gcra.h.
 * Done once here so the fast path only multiplies. */
#ifndef SLUICE_RATE_H
#define SLUICE_RATE_H

#include <linux/types.h>

#define RATE_MAX_PPS 1000000000ULL          /* 1 ns per packet */
#define RATE_MAX_BPS 1000000000000ULL       /* 1 Tbit/s */

/* ns per unit << SLUICE_FP_SHIFT for `per_sec` units per second. */
__u64 rate_interval_fp(__u64 per_sec);
/* burst units of interval, in ns. */
__u64 rate_tolerance_ns(__u64 interval_fp, __u64 burst);

/* ns per byte << SLUICE_FP_SHIFT for a rate in bits per second. */
__u64 rate_byte_interval_fp(__u64 bps);

#endif
