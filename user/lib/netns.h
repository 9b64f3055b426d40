/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* netns.h - step into a network namespace known only by its inode number
 * (as link pins record it), and back. */
#ifndef SLUICE_NETNS_H
#define SLUICE_NETNS_H

/* Enters the namespace with this inode, found among the named ones under
 * /run/netns. Returns a fd to return with (netns_leave), or -errno
 * (-ENOENT: not a named namespace). */
int netns_enter(unsigned long inode);
void netns_leave(int saved_fd);

#endif
