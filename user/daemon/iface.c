// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* The programs and the interfaces: load once with the pinned maps, attach to
 * each configured interface or adopt what is attached there already. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <linux/if_link.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "sluice_xdp.skel.h"
#include "sluice_tc.skel.h"
#include "loader.h"
#include "log.h"
#include "pin.h"
#include "sluiced.h"

static int needs_no_tc_variant(const struct config *c)
{
	int i;

	for (i = 0; i < c->n_ifaces; i++)
		if (c->ifaces[i].no_tc)
			return 1;
	return 0;
}

/* The table sizes: what is pinned wins; a config that asks for another size
 * is told how to get it. */
static void table_sizes(struct daemon *d)
{
	const struct config *c = d->cfg;
	__u32 st = loader_pinned_state_entries(), fl = loader_pinned_entries("sluice_flows");

	if (st && c->state_size && c->state_size != st)
		pr_warn("state-size %llu: the pinned state table has %u entries and keeps them "
			"('sluice unload' and restart to resize; that drops all state)",
			(unsigned long long)c->state_size, st);
	if (fl && c->flow_size && c->flow_size != fl)
		pr_warn("flow-size %llu: the pinned flow table has %u entries and keeps them "
			"('sluice unload' and restart to resize; that drops all state)",
			(unsigned long long)c->flow_size, fl);
	d->state_entries = st ? st : c->state_size ? (__u32)c->state_size
						   : SLUICE_DEFAULT_STATE_ENTRIES;
	d->flow_entries = fl ? fl : c->flow_size ? (__u32)c->flow_size
						 : SLUICE_DEFAULT_FLOW_ENTRIES;
}

int programs_load(struct daemon *d)
{
	struct load_opts lo = { .pin = 1 };
	int err;

	if (d->xdp && (d->xdp_no_tc || !needs_no_tc_variant(d->cfg)))
		return 0;
	table_sizes(d);
	lo.state_entries = d->state_entries;
	lo.flow_entries = d->flow_entries;
	if (!d->xdp) {
		pr_info("loading programs (state table %u, flow table %u entries, maps under %s)",
			d->state_entries, d->flow_entries, pin_root());
		err = loader_open(&d->xdp, &lo);
		if (err)
			return err;
		err = loader_open_tc(&d->tc, d->xdp, &lo);
		if (err)
			return err;
		maps_from_skel(&d->maps, d->xdp);
	}
	if (!d->xdp_no_tc && needs_no_tc_variant(d->cfg)) {
		lo.no_tc = 1;
		err = loader_open(&d->xdp_no_tc, &lo);
		if (err)
			return err;
	}
	return 0;
}

void programs_free(struct daemon *d)
{
	sluice_tc__destroy(d->tc);
	sluice_xdp__destroy(d->xdp_no_tc);
	sluice_xdp__destroy(d->xdp);
	d->tc = NULL;
	d->xdp = d->xdp_no_tc = NULL;
}

struct iface *iface_by_name(struct daemon *d, const char *name)
{
	int i;

	for (i = 0; i < d->n_ifaces; i++)
		if (!strcmp(d->ifaces[i].cfg.name, name))
			return &d->ifaces[i];
	return NULL;
}

struct iface *iface_by_index(struct daemon *d, int ifindex)
{
	int i;

	for (i = 0; i < d->n_ifaces; i++)
		if (ifindex && d->ifaces[i].ifindex == ifindex)
			return &d->ifaces[i];
	return NULL;
}

void link_pin_forget(int ifindex)
{
	char path[256];

	if (loader_link_state(ifindex, NULL) != LINK_DEFUNCT)
		return;
	pin_link_path(ifindex, path, sizeof(path));
	if (unlink(path) && errno != ENOENT)
		pr_warn("remove the stale link pin %s: %s", path, strerror(errno));
}

static enum attach_mode xdp_mode(int ifindex)
{
	LIBBPF_OPTS(bpf_xdp_query_opts, q);

	if (bpf_xdp_query(ifindex, 0, &q))
		return MODE_AUTO;
	return q.attach_mode == XDP_ATTACHED_DRV ? MODE_NATIVE
	     : q.attach_mode == XDP_ATTACHED_SKB ? MODE_GENERIC : MODE_AUTO;
}

static const char *how(const struct iface *i)
{
	return i->cfg.no_tc ? "XDP only" : "tc egress";
}

int iface_up(struct daemon *d, struct iface *i)
{
	struct sluice_xdp *xdp = i->cfg.no_tc ? d->xdp_no_tc : d->xdp;
	const char *dev = i->cfg.name;
	int ifindex = (int)if_nametoindex(dev);
	__u32 old_prog = 0, new_prog;
	enum link_state ls;
	int err, lock;

	if (!ifindex) {
		i->ifindex = 0;
		pr_warn("%s: no such interface yet; attaching when it appears", dev);
		return -ENODEV;
	}
	lock = pin_lock();
	if (lock < 0)
		return lock;
	ls = loader_link_state(ifindex, &old_prog);
	if (ls == LINK_DEFUNCT)
		link_pin_forget(ifindex); /* loader_attach would say so too */
	/* TC first, so the first connection XDP tracks has its replies seen;
	 * BPF_TC_F_REPLACE swaps a running filter's program in place. */
	if (!i->cfg.no_tc) {
		err = loader_attach_tc(d->tc, ifindex, dev);
		if (err)
			goto out;
	} else if (loader_tc_prog_id(ifindex)) {
		loader_detach_tc(ifindex, dev);
		pr_info("%s: TC egress removed (no-tc)", dev);
	}
	if (ls == LINK_LIVE) {
		struct bpf_prog_info info = {};
		__u32 len = sizeof(info);

		err = loader_update_link(xdp, ifindex, dev);
		if (err)
			goto out;
		new_prog = bpf_obj_get_info_by_fd(bpf_program__fd(xdp->progs.sluice_xdp), &info,
						   &len) ? 0 : info.id;
		i->mode_used = xdp_mode(ifindex);
		if (i->cfg.mode != MODE_AUTO && i->cfg.mode != i->mode_used)
			pr_warn("%s: attached in %s mode, the config says %s: keeping the running "
				"attachment ('sluice detach %s' and restart to change it)", dev,
				config_mode_name(i->mode_used), config_mode_name(i->cfg.mode), dev);
		pr_info("adopted %s (ifindex %d, %s, %s): program %u replaced in place by %u",
			dev, ifindex, config_mode_name(i->mode_used), how(i), old_prog, new_prog);
	} else {
		err = loader_attach(xdp, ifindex, dev, i->cfg.mode, &i->mode_used);
		if (err) {
			if (!i->cfg.no_tc)
				loader_detach_tc(ifindex, dev);
			goto out;
		}
		pr_info("attached to %s (ifindex %d, %s, %s)", dev, ifindex,
			config_mode_name(i->mode_used), how(i));
	}
	i->ifindex = ifindex;
	i->renamed = 0;
	err = loader_arm_sweeper(xdp);
	if (err)
		pr_warn("%s: attached, but the flow sweeper did not start: idle connections "
			"do not expire until it does", dev);
	err = 0;
out:
	pin_unlock(lock);
	return err;
}

void iface_down(struct daemon *d, struct iface *i)
{
	char dev[IF_NAMESIZE];
	int lock;

	(void)d;
	if (!i->ifindex)
		return;
	if (!if_indextoname((unsigned int)i->ifindex, dev))
		snprintf(dev, sizeof(dev), "%s", i->cfg.name);
	lock = pin_lock();
	if (lock < 0)
		return;
	if (!loader_detach(i->ifindex, dev) && !loader_detach_tc(i->ifindex, dev))
		pr_info("detached from %s (ifindex %d)", dev, i->ifindex);
	pin_unlock(lock);
	i->ifindex = 0;
}

void links_tidy(struct daemon *d)
{
	char path[512], dev[IF_NAMESIZE];
	unsigned long netns, my_netns = 0;
	struct dirent *de;
	struct stat st;
	int ifindex, lock;
	DIR *dir;

	if (!stat("/proc/self/ns/net", &st))
		my_netns = (unsigned long)st.st_ino;
	lock = pin_lock();
	if (lock < 0)
		return;
	dir = opendir(pin_link_dir());
	while (dir && (de = readdir(dir))) {
		if (sscanf(de->d_name, "xdp-%lu-%d", &netns, &ifindex) != 2 || netns != my_netns)
			continue;
		snprintf(path, sizeof(path), "%s/%s", pin_link_dir(), de->d_name);
		switch (loader_link_state(ifindex, NULL)) {
		case LINK_DEFUNCT:
			if (!unlink(path))
				pr_info("removed the link pin of deleted ifindex %d", ifindex);
			break;
		case LINK_LIVE:
			if (!if_indextoname((unsigned int)ifindex, dev))
				snprintf(dev, sizeof(dev), "ifindex %d", ifindex);
			if (iface_by_name(d, dev))
				break;
			pr_info("%s is attached but not in %s: detaching it", dev, d->cfg->path);
			if (!loader_detach(ifindex, dev))
				loader_detach_tc(ifindex, dev);
			break;
		default:
			break;
		}
	}
	if (dir)
		closedir(dir);
	pin_unlock(lock);
}
