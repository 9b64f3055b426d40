// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* The rtnetlink listener: link events (RTMGRP_LINK) for the configured
 * interfaces. One that disappears and comes back, or is renamed back, is
 * attached again; every such event is logged. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <libmnl/libmnl.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include "log.h"
#include "sluiced.h"

static void rtnl_handle(struct loop_io *io, uint32_t events);

int rtnl_open(struct daemon *d)
{
	struct mnl_socket *nl = mnl_socket_open2(NETLINK_ROUTE, SOCK_NONBLOCK | SOCK_CLOEXEC);
	int err;

	if (!nl) {
		err = -errno;
		pr_err("rtnetlink: open: %s", strerror(-err));
		return err;
	}
	if (mnl_socket_bind(nl, RTMGRP_LINK, MNL_SOCKET_AUTOPID) < 0) {
		err = -errno;
		pr_err("rtnetlink: bind to link events: %s", strerror(-err));
		mnl_socket_close(nl);
		return err;
	}
	d->nlfd = mnl_socket_get_fd(nl);
	err = loop_io_add(d->loop, &d->nl_io, d->nlfd, EPOLLIN, rtnl_handle);
	if (err) {
		pr_err("rtnetlink: watch the socket: %s", strerror(-err));
		mnl_socket_close(nl);
		d->nlfd = -1;
		return err;
	}
	d->rtnl = nl;
	return 0;
}

void rtnl_close(struct daemon *d)
{
	if (d->rtnl) {
		loop_io_del(d->loop, &d->nl_io);
		mnl_socket_close(d->rtnl);
	}
	d->rtnl = NULL;
	d->nlfd = -1;
}

static int ifname_attr(const struct nlattr *a, void *data)
{
	if (mnl_attr_get_type(a) == IFLA_IFNAME && !mnl_attr_validate(a, MNL_TYPE_NUL_STRING))
		*(const char **)data = mnl_attr_get_str(a);
	return MNL_CB_OK;
}

static void link_gone(struct daemon *d, struct iface *i)
{
	pr_warn("%s disappeared (ifindex %d): attaching again when it returns",
		i->cfg.name, i->ifindex);
	link_pin_forget(i->ifindex); /* the link went with the device */
	i->ifindex = 0;
	i->renamed = 0;
	(void)d;
}

static void link_new(struct daemon *d, int ifindex, const char *name)
{
	struct iface *by_idx = iface_by_index(d, ifindex);
	struct iface *by_name = iface_by_name(d, name);

	if (by_idx && strcmp(by_idx->cfg.name, name)) {
		if (!by_idx->renamed)
			pr_warn("%s renamed to %s (ifindex %d): it stays attached; the config "
				"names %s", by_idx->cfg.name, name, ifindex, by_idx->cfg.name);
		by_idx->renamed = 1;
		return;
	}
	if (!by_name)
		return;
	if (by_name->ifindex == ifindex) {
		if (by_name->renamed) {
			pr_info("%s renamed back (ifindex %d): still attached", name, ifindex);
			by_name->renamed = 0;
		}
		return; /* a state change of an attached interface */
	}
	if (by_name->ifindex) {
		/* Another device took the name while ours was renamed away. */
		pr_info("%s is now ifindex %d; detaching from the renamed ifindex %d",
			name, ifindex, by_name->ifindex);
		iface_down(d, by_name);
	}
	pr_info("%s appeared (ifindex %d): attaching", name, ifindex);
	if (iface_up(d, by_name))
		pr_err("%s: attach failed (see above); retrying on its next link event", name);
}

static int link_msg(const struct nlmsghdr *nlh, void *data)
{
	struct daemon *d = data;
	const struct ifinfomsg *ifm = mnl_nlmsg_get_payload(nlh);
	const char *name = NULL;
	struct iface *i;

	if (nlh->nlmsg_type != RTM_NEWLINK && nlh->nlmsg_type != RTM_DELLINK)
		return MNL_CB_OK;
	mnl_attr_parse(nlh, sizeof(*ifm), ifname_attr, &name);
	if (nlh->nlmsg_type == RTM_DELLINK) {
		i = iface_by_index(d, ifm->ifi_index);
		if (i)
			link_gone(d, i);
		return MNL_CB_OK;
	}
	if (name)
		link_new(d, ifm->ifi_index, name);
	return MNL_CB_OK;
}

/* After a lost event (ENOBUFS): look at every configured name again. */
static void resync(struct daemon *d)
{
	int n;

	pr_warn("rtnetlink: events were lost (socket buffer full); checking every interface");
	for (n = 0; n < d->n_ifaces; n++) {
		struct iface *i = &d->ifaces[n];
		int ifindex = (int)if_nametoindex(i->cfg.name);

		if (i->ifindex && ifindex != i->ifindex) {
			char dev[IF_NAMESIZE];

			if (!if_indextoname((unsigned int)i->ifindex, dev))
				link_gone(d, i);
		}
		if (ifindex && ifindex != i->ifindex)
			link_new(d, ifindex, i->cfg.name);
	}
}

static void rtnl_handle(struct loop_io *io, uint32_t events)
{
	struct daemon *d = container_of(io, struct daemon, nl_io);
	char buf[MNL_SOCKET_BUFFER_SIZE];
	int lost = 0;

	(void)events;
	for (;;) {
		ssize_t n = mnl_socket_recvfrom(d->rtnl, buf, sizeof(buf));

		if (n < 0) {
			if (errno == ENOBUFS) {
				lost = 1;
				continue;
			}
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				pr_err("rtnetlink: receive: %s", strerror(errno));
			break;
		}
		if (mnl_cb_run(buf, (size_t)n, 0, 0, link_msg, d) < 0 && errno != ESRCH)
			pr_warn("rtnetlink: bad message: %s", strerror(errno));
	}
	if (lost)
		resync(d);
}
