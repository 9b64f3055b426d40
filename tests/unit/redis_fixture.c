// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * redis_fixture.c - one redis-server per test process (see redis_fixture.h).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "redis_fixture.h"

#define START_TIMEOUT_MS 5000
#define STOP_TIMEOUT_MS 5000
#define CMD_TIMEOUT_S 5

static struct {
	char dir[64];            /* "" until made */
	char sock[128], conf[128], log[128];
	pid_t pid;               /* 0 when not running */
	int cleanup_set;
	char err[512];
} R;

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* The last line redis-server wrote, to say why it went away. */
static void log_tail(char *buf, size_t len)
{
	char line[256];
	FILE *f = fopen(R.log, "r");

	snprintf(buf, len, "(empty log)");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		if (line[0])
			snprintf(buf, len, "%s", line);
	}
	fclose(f);
}

static int write_conf(void)
{
	FILE *f = fopen(R.conf, "w");

	if (!f)
		return -errno;
	fprintf(f,
		"port 0\n"
		"unixsocket %s\n"
		"unixsocketperm 700\n"
		"save \"\"\n"
		"appendonly no\n"
		"daemonize no\n"
		"dir %s\n"
		"logfile \"\"\n",
		R.sock, R.dir);
	if (fclose(f))
		return -errno;
	return 0;
}

/* 1 when the server answers PING, 0 not yet. */
static int pings(void)
{
	struct timeval tv = { 0, 200000 };
	redisContext *c = redisConnectUnixWithTimeout(R.sock, tv);
	redisReply *r;
	int ok = 0;

	if (!c)
		return 0;
	if (!c->err) {
		redisSetTimeout(c, tv);
		r = redisCommand(c, "PING");
		ok = r && r->type == REDIS_REPLY_STATUS && !strcmp(r->str, "PONG");
		if (r)
			freeReplyObject(r);
	}
	redisFree(c);
	return ok;
}

static void stop(void)
{
	int status;

	if (!R.pid)
		return;
	kill(R.pid, SIGTERM);
	for (int waited = 0; waited < STOP_TIMEOUT_MS; waited += 10) {
		if (waitpid(R.pid, &status, WNOHANG) == R.pid) {
			R.pid = 0;
			return;
		}
		sleep_ms(10);
	}
	kill(R.pid, SIGKILL);
	waitpid(R.pid, &status, 0);
	R.pid = 0;
}

static void cleanup(void)
{
	DIR *d;
	struct dirent *e;

	stop();
	if (!R.dir[0])
		return;
	d = opendir(R.dir);
	if (d) {
		while ((e = readdir(d)))
			if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
				unlinkat(dirfd(d), e->d_name, 0);
		closedir(d);
	}
	rmdir(R.dir);
	R.dir[0] = '\0';
}

static void child(int errfd, pid_t parent)
{
	int err, fd;

	/* if the test process dies without its atexit, so does the server */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != parent)
		_exit(127);
	fd = open(R.log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd >= 0) {
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
	}
	fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (fd >= 0)
		dup2(fd, STDIN_FILENO);
	/* none of the test's descriptors (maps, sockets) live on in the server */
	for (fd = 3; fd < 1024; fd++)
		if (fd != errfd)
			close(fd);
	execlp("redis-server", "redis-server", R.conf, (char *)NULL);
	err = errno;
	if (write(errfd, &err, sizeof(err)) < 0)
		_exit(127);
	_exit(127);
}

static int start(void)
{
	int pfd[2], err = 0, status;
	pid_t parent = getpid(), pid;
	ssize_t n;
	char tail[256];

	if (!R.dir[0]) {
		char tmpl[] = "/tmp/sluice-redis-XXXXXX";

		if (!mkdtemp(tmpl)) {
			err = -errno;
			snprintf(R.err, sizeof(R.err), "redis fixture: mkdtemp: %s", strerror(errno));
			return err;
		}
		snprintf(R.dir, sizeof(R.dir), "%s", tmpl);
		snprintf(R.sock, sizeof(R.sock), "%s/redis.sock", R.dir);
		snprintf(R.conf, sizeof(R.conf), "%s/redis.conf", R.dir);
		snprintf(R.log, sizeof(R.log), "%s/redis.log", R.dir);
		if (!R.cleanup_set) {
			atexit(cleanup);
			R.cleanup_set = 1;
		}
		err = write_conf();
		if (err) {
			snprintf(R.err, sizeof(R.err), "redis fixture: write %s: %s", R.conf,
				 strerror(-err));
			return err;
		}
	}
	if (pipe2(pfd, O_CLOEXEC)) {
		err = -errno;
		snprintf(R.err, sizeof(R.err), "redis fixture: pipe: %s", strerror(errno));
		return err;
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		err = -errno;
		snprintf(R.err, sizeof(R.err), "redis fixture: fork: %s", strerror(errno));
		close(pfd[0]);
		close(pfd[1]);
		return err;
	}
	if (pid == 0)
		child(pfd[1], parent);
	close(pfd[1]);
	/* the exec closes the pipe; a failed exec sends its errno first */
	do
		n = read(pfd[0], &err, sizeof(err));
	while (n < 0 && errno == EINTR);
	close(pfd[0]);
	if (n == sizeof(err)) {
		waitpid(pid, &status, 0);
		snprintf(R.err, sizeof(R.err),
			 "redis fixture: cannot run redis-server: %s (these tests need a real "
			 "Redis: apt-get install redis-server, or make deps)", strerror(err));
		return -err;
	}
	R.pid = pid;
	for (int waited = 0; waited < START_TIMEOUT_MS; waited += 10) {
		if (waitpid(pid, &status, WNOHANG) == pid) {
			R.pid = 0;
			log_tail(tail, sizeof(tail));
			snprintf(R.err, sizeof(R.err), "redis fixture: redis-server exited (status "
				 "%d) before answering: %s", status, tail);
			return -ECHILD;
		}
		if (pings())
			return 0;
		sleep_ms(10);
	}
	stop();
	log_tail(tail, sizeof(tail));
	snprintf(R.err, sizeof(R.err), "redis fixture: redis-server did not answer PING on %s "
		 "within %d ms: %s", R.sock, START_TIMEOUT_MS, tail);
	return -ETIMEDOUT;
}

const char *test_redis_socket(void)
{
	static int failed;

	if (R.pid)
		return R.sock;
	if (failed)
		return NULL;
	if (start()) {
		fprintf(stderr, "%s\n", R.err);
		failed = 1;
		return NULL;
	}
	return R.sock;
}

int test_redis_restart(void)
{
	int err;

	if (!test_redis_socket())
		return -ENOTCONN;
	stop();
	err = start();
	if (err)
		fprintf(stderr, "%s\n", R.err);
	return err;
}

redisContext *test_redis_connect(void)
{
	struct timeval tv = { CMD_TIMEOUT_S, 0 };
	const char *sock = test_redis_socket();
	redisContext *c;

	if (!sock)
		return NULL;
	c = redisConnectUnixWithTimeout(sock, tv);
	if (!c || c->err) {
		snprintf(R.err, sizeof(R.err), "redis fixture: connect %s: %s", sock,
			 c ? c->errstr : "out of memory");
		if (c)
			redisFree(c);
		return NULL;
	}
	redisSetTimeout(c, tv);
	return c;
}

const char *test_redis_error(void)
{
	return R.err[0] ? R.err : "redis fixture: no error";
}
