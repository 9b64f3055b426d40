// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The store client against a real redis-server (redis_fixture): it comes
 * up and runs scripts by EVALSHA; a server that lost its scripts (NOSCRIPT)
 * still answers; a server that stops answering is a timeout and the client
 * reconnects; a restarted (empty) server gives a new epoch; a wrong
 * password and an unreachable server leave it down, with every request
 * ended once and from the loop.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <hiredis/hiredis.h>
#include "harness.h"
#include "loop.h"
#include "redis_fixture.h"
#include "scripts.h"
#include "store.h"

struct result {
	int done, calls, err;
	long long live;
};

static void on_hello(void *arg, int err, const struct redisReply *r)
{
	struct result *res = arg;

	res->calls++;
	res->done = 1;
	res->err = err;
	if (!err && r && r->type == REDIS_REPLY_INTEGER)
		res->live = r->integer;
}

/* Runs the loop until *flag or ms pass; 1 if the flag came. */
static int run_until(struct loop *l, const int *flag, int ms)
{
	uint64_t end = loop_clock() + (uint64_t)ms * 1000000ULL;

	while (!*flag && loop_clock() < end)
		loop_run_once(l, 10);
	return *flag;
}

static int up_flag(struct store *s, int *flag)
{
	*flag = store_state(s) == STORE_UP;
	return *flag;
}

static int wait_state(struct loop *l, struct store *s, enum store_state want, int ms)
{
	uint64_t end = loop_clock() + (uint64_t)ms * 1000000ULL;

	while (store_state(s) != want && loop_clock() < end)
		loop_run_once(l, 10);
	return store_state(s) == want;
}

static struct store_req *hello(struct store *s, struct result *res)
{
	const char *keys[] = { "sluice:{l7}:instances" };
	const char *args[] = { "test-a", "10000" };

	memset(res, 0, sizeof(*res));
	return store_eval(s, SCRIPT_L7_HELLO, 1, keys, 2, args, on_hello, res);
}

static int open_store(struct loop *l, const char *extra, struct store **s)
{
	char sock[160], line[512], *w[16];
	struct store_config c;
	struct errbuf e;
	int n = 0;
	const char *path = test_redis_socket();

	if (!CHECK(path != NULL, "redis: %s", test_redis_error()))
		return -1;
	snprintf(sock, sizeof(sock), "unix:%s", path);
	snprintf(line, sizeof(line), "store redis %s timeout 50ms %s", sock, extra ? extra : "");
	for (char *t = strtok(line, " "); t && n < 16; t = strtok(NULL, " "))
		w[n++] = t;
	if (!CHECK(store_config_parse(n, w, &c, &e) == 0, "parse: %s", e.msg))
		return -1;
	if (!CHECK(store_open(l, &c, store_scripts, SCRIPT_MAX, NULL, NULL, s) == 0, "store_open"))
		return -1;
	return 0;
}

TEST(store_up_evalsha_noscript_timeout_restart)
{
	struct loop *l;
	struct store *s;
	struct result res;
	redisContext *rc;
	redisReply *rep;
	uint64_t born;
	int flag = 0;

	if (!CHECK(loop_new(&l) == 0, "loop"))
		return;
	if (open_store(l, NULL, &s)) {
		loop_free(l);
		return;
	}
	CHECK(wait_state(l, s, STORE_UP, 3000), "up within 3 s (state %s, %s)",
	      store_state_name(store_state(s)), store_last_error(s));
	born = store_born_ms(s);
	CHECK(born > 1600000000000ULL, "the epoch is server ms: %llu", (unsigned long long)born);

	hello(s, &res);
	CHECK(run_until(l, &res.done, 2000) && res.err == 0 && res.live == 1,
	      "a script by EVALSHA: err %d live %lld", res.err, res.live);
	CHECK_EQ(store_stats(s)->noscript, 0, "no NOSCRIPT yet");

	/* the server forgets its scripts: the request still succeeds (EVAL) */
	rc = test_redis_connect();
	if (!CHECK(rc != NULL, "sync connection: %s", test_redis_error()))
		goto out;
	rep = redisCommand(rc, "SCRIPT FLUSH");
	freeReplyObject(rep);
	hello(s, &res);
	CHECK(run_until(l, &res.done, 2000) && res.err == 0 && res.live == 1,
	      "after SCRIPT FLUSH: err %d", res.err);
	CHECK_EQ(store_stats(s)->noscript, 1, "one NOSCRIPT, answered by EVAL");

	/* a server that does not answer within the timeout: -ETIMEDOUT, down,
	 * then back by itself */
	rep = redisCommand(rc, "CLIENT PAUSE 400 ALL");
	freeReplyObject(rep);
	redisFree(rc);
	hello(s, &res);
	CHECK(run_until(l, &res.done, 2000) && res.err == -ETIMEDOUT, "paused server: err %d",
	      res.err);
	CHECK_EQ(res.calls, 1, "ended once");
	CHECK(store_state(s) != STORE_UP, "down after a timeout");
	CHECK(strstr(store_last_error(s), "no reply within 50ms") != NULL, "reason: %s",
	      store_last_error(s));
	hello(s, &res);
	CHECK(run_until(l, &res.done, 100) && res.err == -ENOTCONN,
	      "while down: -ENOTCONN at once (err %d)", res.err);
	CHECK(wait_state(l, s, STORE_UP, 5000), "up again after the pause (%s)",
	      store_last_error(s));
	CHECK_EQ(store_born_ms(s), born, "same server: same epoch");

	/* restarted empty: a new epoch, scripts loaded again */
	if (!CHECK(test_redis_restart() == 0, "restart: %s", test_redis_error()))
		goto out;
	flag = 0;
	{
		uint64_t end = loop_clock() + 5000 * 1000000ULL;

		/* it notices the restart, then comes back */
		while (loop_clock() < end && !(store_born_ms(s) != born && up_flag(s, &flag)))
			loop_run_once(l, 10);
	}
	CHECK(flag && store_born_ms(s) > born, "a restarted store has a new epoch (%llu, was %llu)",
	      (unsigned long long)store_born_ms(s), (unsigned long long)born);
	hello(s, &res);
	CHECK(run_until(l, &res.done, 2000) && res.err == 0 && res.live == 1,
	      "scripts after the restart: err %d", res.err);
out:
	store_close(s);
	loop_free(l);
}

TEST(store_wrong_password_and_unreachable)
{
	char dir[] = "/tmp/sluice-store-test.XXXXXX", file[96], extra[160];
	struct loop *l;
	struct store *s;
	struct result res;
	struct store_config c;
	struct errbuf e;
	char *w[] = { "store", "redis", "unix:/nonexistent/redis.sock", "timeout", "20ms" };
	FILE *f;

	if (!CHECK(loop_new(&l) == 0 && mkdtemp(dir) != NULL, "setup"))
		return;
	snprintf(file, sizeof(file), "%s/pw", dir);
	f = fopen(file, "w");
	if (!CHECK(f != NULL, "password file"))
		goto out_dir;
	fputs("not-the-password\n", f);
	fclose(f);
	chmod(file, 0600);
	snprintf(extra, sizeof(extra), "password-file %s", file);
	if (open_store(l, extra, &s))
		goto out_dir;
	run_until(l, &(int){ 0 }, 500);
	CHECK(store_state(s) != STORE_UP, "a refused AUTH is not up");
	CHECK(strstr(store_last_error(s), "authentication refused") != NULL,
	      "says why: %s", store_last_error(s));
	CHECK(strstr(store_last_error(s), "not-the-password") == NULL, "never the password");
	hello(s, &res);
	CHECK(run_until(l, &res.done, 200) && res.err == -ENOTCONN, "requests fail: %d", res.err);
	store_close(s);

	if (!CHECK(store_config_parse(5, w, &c, &e) == 0, "parse: %s", e.msg))
		goto out_dir;
	if (!CHECK(store_open(l, &c, store_scripts, SCRIPT_MAX, NULL, NULL, &s) == 0, "open"))
		goto out_dir;
	hello(s, &res);
	CHECK(run_until(l, &res.done, 200) && res.err == -ENOTCONN && res.calls == 1,
	      "unreachable: -ENOTCONN once (%d, %d calls)", res.err, res.calls);
	run_until(l, &(int){ 0 }, 300);
	CHECK(store_state(s) == STORE_DOWN && store_last_error(s)[0], "down: %s",
	      store_last_error(s));
	/* a request cancelled before its answer is never called back; one
	 * not cancelled ends (with -ENOTCONN) even when the store closes */
	{
		struct result kept, gone;

		hello(s, &kept);
		store_cancel(hello(s, &gone));
		store_close(s);
		CHECK_EQ(gone.calls, 0, "cancelled: no callback");
		CHECK(kept.calls == 1 && kept.err == -ENOTCONN, "kept: %d calls, err %d",
		      kept.calls, kept.err);
	}
out_dir:
	unlink(file);
	rmdir(dir);
	loop_free(l);
}

TEST(store_directive_errors)
{
	static const struct {
		const char *line, *want;
	} rows[] = {
		{ "store redis", "expected 'store redis" },
		{ "store memcached 127.0.0.1:11211", "expected 'store redis" },
		{ "store redis localhost:6379", "not a numeric" },
		{ "store redis 127.0.0.1", "expected ADDR:PORT" },
		{ "store redis 127.0.0.1:0", "store port" },
		{ "store redis unix:relative.sock", "absolute path" },
		{ "store redis [::1:6379", "brackets" },
		{ "store redis 127.0.0.1:6379 prefix a{b}", "prefix" },
		{ "store redis 127.0.0.1:6379 timeout 5", "unit" },
		{ "store redis 127.0.0.1:6379 timeout 1h", "at most" },
		{ "store redis 127.0.0.1:6379 password-file pw", "absolute" },
		{ "store redis 127.0.0.1:6379 frob 1", "unknown option 'frob'" },
		{ "store redis 127.0.0.1:6379 prefix", "needs a value" },
		{ "store redis [::1]:6379 prefix p1 instance gw-1 timeout 20ms", NULL },
	};
	struct store_config c;
	struct errbuf e;

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char buf[160], *w[16];
		int n = 0, err;

		snprintf(buf, sizeof(buf), "%s", rows[i].line);
		for (char *t = strtok(buf, " "); t && n < 16; t = strtok(NULL, " "))
			w[n++] = t;
		e.msg[0] = '\0';
		err = store_config_parse(n, w, &c, &e);
		if (rows[i].want)
			CHECK(err && strstr(e.msg, rows[i].want), "'%s': %s", rows[i].line, e.msg);
		else
			CHECK(!err && c.on && c.port == 6379 && !strcmp(c.host, "::1") &&
			      !strcmp(c.prefix, "p1") && !strcmp(c.instance, "gw-1") &&
			      c.timeout_ms == 20, "'%s': %s", rows[i].line, e.msg);
	}
}
