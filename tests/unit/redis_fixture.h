/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * redis_fixture.h - a real, private Redis for the unit tests.
 *
 * The first call starts one redis-server for this test process: in a fresh
 * mkdtemp directory, listening only on a unix socket there (unixsocketperm
 * 700, port 0), no persistence (save "", appendonly no), its output in
 * redis.log beside it. It is stopped, and the directory removed, when the
 * process exits. A process killed by a signal has no exit: its server
 * still gets SIGTERM (PR_SET_PDEATHSIG), but the directory stays.
 *
 * There is no skipping: when redis-server is missing or does not answer,
 * these return NULL / an error and test_redis_error() says why, for the
 * test to fail with.
 */
#ifndef SLUICE_TEST_REDIS_FIXTURE_H
#define SLUICE_TEST_REDIS_FIXTURE_H

#include <hiredis/hiredis.h>

/* The server's socket path, starting it on first use; NULL if it cannot be
 * started (waits at most 5 s for it to answer PING). */
const char *test_redis_socket(void);
/* Stops the server and starts it again, empty, on the same socket (a store
 * restart). Connections made before are dead: connect again. 0 or -errno. */
int test_redis_restart(void);
/* A new connection (commands time out after 5 s), or NULL. redisFree it. */
redisContext *test_redis_connect(void);
/* Why the last of the above failed. */
const char *test_redis_error(void);

#endif
