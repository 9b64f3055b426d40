/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* version.h - the build's version, one string for every binary. The Makefile
 * compiles version.c with -DSLUICE_VERSION (git describe, else VERSION, else
 * debian/changelog). */
#ifndef SLUICE_VERSION_H
#define SLUICE_VERSION_H

extern const char sluice_version[];

/* If argv[1] is --version: print "PROG VERSION" on stdout and return 1. */
int version_flag(const char *prog, int argc, char **argv);

#endif
