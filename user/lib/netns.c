// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include "log.h"
#include "netns.h"

#define NETNS_RUN_DIR "/run/netns"

int netns_enter(unsigned long inode)
{
	struct dirent *de;
	DIR *d = opendir(NETNS_RUN_DIR);
	int saved, target = -1, err;

	if (!d)
		return -ENOENT;
	while (target < 0 && (de = readdir(d))) {
		char path[512];
		struct stat st;
		int fd;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", NETNS_RUN_DIR, de->d_name);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		if (!fstat(fd, &st) && (unsigned long)st.st_ino == inode)
			target = fd;
		else
			close(fd);
	}
	closedir(d);
	if (target < 0)
		return -ENOENT;
	saved = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (saved < 0) {
		err = -errno;
		close(target);
		return err;
	}
	if (setns(target, CLONE_NEWNET)) {
		err = -errno;
		close(target);
		close(saved);
		return err;
	}
	close(target);
	return saved;
}

void netns_leave(int saved_fd)
{
	if (setns(saved_fd, CLONE_NEWNET))
		pr_err("return to the original network namespace: %s", strerror(errno));
	close(saved_fd);
}
