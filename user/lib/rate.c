// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include "rate.h"
#include "sluice.h"

#define NSEC_PER_SEC 1000000000ULL

__u64 rate_interval_fp(__u64 per_sec)
{
	if (!per_sec)
		return 0;
	return (NSEC_PER_SEC << SLUICE_FP_SHIFT) / per_sec;
}

__u64 rate_tolerance_ns(__u64 interval_fp, __u64 burst)
{
	/* 128-bit: burst can be large (bytes) and interval_fp carries 16
	 * fraction bits. */
	unsigned __int128 t = (unsigned __int128)interval_fp * burst;

	t >>= SLUICE_FP_SHIFT;
	return t > (__u64)-1 / 2 ? (__u64)-1 / 2 : (__u64)t;
}

__u64 rate_byte_interval_fp(__u64 bps)
{
	if (!bps)
		return 0;
	return ((8 * NSEC_PER_SEC) << SLUICE_FP_SHIFT) / bps;
}
