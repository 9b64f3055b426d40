// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>
#include <linux/magic.h>
#include "log.h"
#include "pin.h"
#include "sluice.h"

#define BPFFS "/sys/fs/bpf"

const char *pin_root(void)
{
	const char *env = getenv("SLUICE_PIN_ROOT");

	return env && env[0] == '/' ? env : SLUICE_PIN_ROOT;
}

const char *pin_link_dir(void)
{
	static char buf[512];

	snprintf(buf, sizeof(buf), "%s/links", pin_root());
	return buf;
}

int bpffs_ensure(void)
{
	struct statfs st;

	if (statfs(BPFFS, &st) == 0 && st.f_type == BPF_FS_MAGIC)
		return 0;
	if (mkdir(BPFFS, 0700) && errno != EEXIST) {
		pr_err("create %s: %s", BPFFS, strerror(errno));
		return -errno;
	}
	if (mount("bpf", BPFFS, "bpf", 0, "mode=0700")) {
		int err = -errno;

		pr_err("mount bpffs at %s: %s (are you root?)", BPFFS, strerror(-err));
		return err;
	}
	pr_info("mounted bpffs at %s", BPFFS);
	return 0;
}

static int mkdir_private(const char *path)
{
	if (mkdir(path, 0700) && errno != EEXIST) {
		int err = -errno;

		pr_err("create %s: %s", path, strerror(-err));
		return err;
	}
	return 0;
}

int pin_dir_create(void)
{
	int err = bpffs_ensure();

	if (!err)
		err = mkdir_private(pin_root());
	if (!err)
		err = mkdir_private(pin_link_dir());
	return err;
}

int pin_lock(void)
{
	int fd = open(pin_root(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0) {
		int err = -errno;

		if (err == -ENOENT)
			pr_err("nothing attached: %s does not exist (run 'sluice attach DEV' first)",
			       pin_root());
		else
			pr_err("open %s: %s", pin_root(), strerror(-err));
		return err;
	}
	/* Blocks while another sluice process writes; they are short. */
	if (flock(fd, LOCK_EX)) {
		int err = -errno;

		pr_err("lock %s: %s", pin_root(), strerror(-err));
		close(fd);
		return err;
	}
	return fd;
}

void pin_unlock(int fd)
{
	if (fd >= 0)
		close(fd); /* releases the flock */
}

void pin_link_path(int ifindex, char *buf, unsigned long len)
{
	struct stat st;

	if (stat("/proc/self/ns/net", &st))
		st.st_ino = 0;
	snprintf(buf, len, "%s/xdp-%lu-%d", pin_link_dir(), (unsigned long)st.st_ino, ifindex);
}
