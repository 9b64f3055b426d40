/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* Constants that vmlinux.h does not carry (they are #defines in UAPI headers).
 * Defined once, here. */
#ifndef SLUICE_BPF_DEFS_H
#define SLUICE_BPF_DEFS_H

#define ETH_P_IP	0x0800
#define ETH_P_IPV6	0x86DD
#define ETH_P_8021Q	0x8100
#define ETH_P_8021AD	0x88A8

#define IPPROTO_HOPOPTS	0
#define IPPROTO_ICMP	1
#define IPPROTO_TCP	6
#define IPPROTO_UDP	17
#define IPPROTO_ROUTING	43
#define IPPROTO_FRAGMENT 44
#define IPPROTO_AH	51
#define IPPROTO_ICMPV6	58
#define IPPROTO_NONE	59
#define IPPROTO_DSTOPTS	60

#define IP_MF		0x2000
#define IP_OFFSET	0x1FFF

#define NSEC_PER_SEC	1000000000ULL

/* errno values helpers return (negated). */
#define E2BIG		7
#define EBUSY		16
#define EEXIST		17

#ifndef READ_ONCE
#define READ_ONCE(x) (*(volatile typeof(x) *)&(x))
#endif
#ifndef WRITE_ONCE
#define WRITE_ONCE(x, v) (*(volatile typeof(x) *)&(x) = (v))
#endif

#endif
