// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* Counts filters with an RTM_GETTFILTER dump per clsact hook, as
 * `tc filter show dev DEV egress` does. libbpf has no such listing. */
#include <errno.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <libmnl/libmnl.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>
#include "tc_filters.h"

static int count_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct tcmsg *t = mnl_nlmsg_get_payload(nlh);

	/* A dump also lists each classifier instance with handle 0; only
	 * entries with a handle are filters. */
	if (nlh->nlmsg_type == RTM_NEWTFILTER && t->tcm_handle)
		(*(int *)data)++;
	return MNL_CB_OK;
}

static int count_hook(struct mnl_socket *nl, int ifindex, __u32 parent, int *count)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh;
	struct tcmsg *t;
	unsigned int seq = (unsigned int)time(NULL), portid = mnl_socket_get_portid(nl);
	ssize_t n;
	int ret;

	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = RTM_GETTFILTER;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	nlh->nlmsg_seq = seq;
	t = mnl_nlmsg_put_extra_header(nlh, sizeof(*t));
	memset(t, 0, sizeof(*t));
	t->tcm_family = AF_UNSPEC;
	t->tcm_ifindex = ifindex;
	t->tcm_parent = parent;
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	for (;;) {
		n = mnl_socket_recvfrom(nl, buf, sizeof(buf));
		if (n < 0)
			return -errno;
		ret = mnl_cb_run(buf, (size_t)n, seq, portid, count_cb, count);
		if (ret == MNL_CB_STOP)
			return 0;
		if (ret < 0)
			return errno == EINVAL || errno == ENOENT ? 0 : -errno; /* no qdisc */
	}
}

int tc_clsact_filters(int ifindex)
{
	struct mnl_socket *nl = mnl_socket_open(NETLINK_ROUTE);
	int count = 0, err;

	if (!nl)
		return -errno;
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		err = -errno;
		mnl_socket_close(nl);
		return err;
	}
	err = count_hook(nl, ifindex, TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_INGRESS), &count);
	if (!err)
		err = count_hook(nl, ifindex, TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_EGRESS), &count);
	mnl_socket_close(nl);
	return err ? err : count;
}
