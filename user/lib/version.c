// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <stdio.h>
#include <string.h>
#include "version.h"

#ifndef SLUICE_VERSION
#define SLUICE_VERSION "unknown"
#endif

const char sluice_version[] = SLUICE_VERSION;

int version_flag(const char *prog, int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "--version"))
		return 0;
	printf("%s %s\n", prog, sluice_version);
	return 1;
}
