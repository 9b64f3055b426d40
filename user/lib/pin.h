/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* pin.h - the pin directory: bpffs mounted, root-only, and one writer at a
 * time (flock on the directory, as xdp-tools' prog_lock_acquire does). */
#ifndef SLUICE_PIN_H
#define SLUICE_PIN_H

/* SLUICE_PIN_ROOT, or the environment's SLUICE_PIN_ROOT: the tests use their
 * own root so that they never touch a production policy on the same host. */
const char *pin_root(void);
const char *pin_link_dir(void);
int bpffs_ensure(void);          /* mount bpffs at /sys/fs/bpf if it is not */
int pin_dir_create(void);        /* SLUICE_PIN_ROOT and links/, mode 0700 */
int pin_lock(void);              /* returns a lock fd, or -errno */
void pin_unlock(int fd);
/* Link pin path of an interface in this network namespace:
 * links/xdp-NETNS-IFINDEX, NETNS being the namespace's inode number, since an
 * ifindex is only unique within its namespace. */
void pin_link_path(int ifindex, char *buf, unsigned long len);

#endif
