// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * store.c - the Redis client: hiredis's async API on the project's loop.
 *
 * The adapter (hiredis's ev hooks) keeps one loop_io for the socket, level
 * triggered as hiredis expects. Requests are kept in send order, which is
 * reply order on one connection, so the oldest is the first to time out:
 * one timer, at the oldest request's deadline. A timeout, an error reply
 * of the handshake or a reply of the wrong shape takes the connection down;
 * every pending request then ends with the reason, posted to the loop so a
 * callback never runs inside store_eval or inside hiredis's own teardown.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include "log.h"
#include "loop.h"
#include "parse.h"
#include "store.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 2000
#define HANDSHAKE_MIN_MS 500      /* connect + AUTH + epoch + SCRIPT LOADs */
#define EPOCH_TTL_MS (30ULL * 86400 * 1000)
#define ARGS_MAX_BYTES 8192
#define PASSWORD_MAX 512

/* Server time in ms, and the epoch: created if absent, its TTL renewed. */
static const char epoch_lua[] =
	"local t = redis.call('TIME')\n"
	"local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
	"redis.call('SET', KEYS[1], now, 'NX')\n"
	"redis.call('PEXPIRE', KEYS[1], ARGV[1])\n"
	"return {tonumber(redis.call('GET', KEYS[1])), now}\n";

enum req_kind { REQ_USER = 0, REQ_AUTH, REQ_EPOCH, REQ_LOAD };

struct store_req {
	struct store *s;
	struct store_req *prev, *next;   /* pending, in send order */
	struct store_req *done_next;     /* failed, waiting for the post */
	enum req_kind kind;
	unsigned int script;             /* REQ_USER, REQ_LOAD */
	store_cb cb;                     /* NULL: cancelled */
	void *arg;
	int err;
	int pending;                     /* hiredis holds it */
	int retried;                     /* sent again as EVAL after NOSCRIPT */
	uint64_t sent_ns, deadline_ns;
	int argc;                        /* EVAL/EVALSHA's words after the script */
	const char *argv[STORE_MAX_ARGS + 1];
	size_t argvlen[STORE_MAX_ARGS + 1];
	char data[];                     /* the words' bytes */
};

struct store {
	struct loop *loop;
	struct store_config cfg;
	char password[PASSWORD_MAX];
	const struct store_script *scripts;
	size_t n_scripts;
	char (*sha)[41];                 /* per script, from SCRIPT LOAD */
	void (*on_state)(void *, enum store_state);
	void *state_arg;

	redisAsyncContext *ac;
	struct loop_io io;
	uint32_t want;                   /* EPOLLIN/EPOLLOUT hiredis asked for */
	enum store_state state;
	int handshake_left;
	int fail_err;                    /* why the connection is being freed */
	char last_error[160];
	char logged_error[160];          /* the last "down" reason logged */

	struct store_req *head, *tail;   /* pending */
	unsigned int n_pending;
	struct store_req *done;          /* failed requests to deliver */
	struct loop_post deliver;
	struct loop_timer timeout, reconnect;
	unsigned int backoff_ms;
	uint64_t born_ms;
	struct store_stats st;
	char epoch_key[STORE_WORD_LEN + 8];
	char timeout_s[24];
};

static void connect_start(struct store *s);
static void conn_fail(struct store *s, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

const char *store_state_name(enum store_state st)
{
	switch (st) {
	case STORE_DOWN: return "down";
	case STORE_CONNECTING: return "connecting";
	case STORE_UP: return "up";
	}
	return "?";
}

enum store_state store_state(const struct store *s) { return s->state; }
const struct store_stats *store_stats(const struct store *s) { return &s->st; }
uint64_t store_born_ms(const struct store *s) { return s->born_ms; }
const char *store_prefix(const struct store *s) { return s->cfg.prefix; }
const char *store_instance(const struct store *s) { return s->cfg.instance; }
const char *store_addr(const struct store *s) { return s->cfg.addr; }
const char *store_last_error(const struct store *s) { return s->last_error; }

static void set_state(struct store *s, enum store_state st)
{
	if (s->state == st)
		return;
	s->state = st;
	s->st.state_since_ns = loop_clock();
	if (st == STORE_UP) {
		pr_info("store redis %s: up (prefix %s, instance %s, epoch %llu, %zu script(s))",
			s->cfg.addr, s->cfg.prefix, s->cfg.instance,
			(unsigned long long)s->born_ms, s->n_scripts);
		s->last_error[0] = '\0';
		s->logged_error[0] = '\0';
	}
	if (s->on_state)
		s->on_state(s->state_arg, st);
}

/* --- the hiredis adapter ---------------------------------------------------- */

static void io_cb(struct loop_io *io, uint32_t ev)
{
	struct store *s = container_of(io, struct store, io);

	/* Either handler may free the context (an error, a timeout). */
	if (s->ac && (ev & (EPOLLIN | EPOLLERR | EPOLLHUP)))
		redisAsyncHandleRead(s->ac);
	if (s->ac && (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
		redisAsyncHandleWrite(s->ac);
}

static void ev_update(struct store *s, uint32_t want)
{
	int err;

	if (want == s->want && s->io.registered)
		return;
	s->want = want;
	if (!s->io.registered)
		err = loop_io_add(s->loop, &s->io, s->ac->c.fd, want, io_cb);
	else
		err = loop_io_mod(s->loop, &s->io, want);
	if (err)
		pr_err("store redis %s: epoll: %s", s->cfg.addr, strerror(-err));
}

static void ev_add_read(void *p) { struct store *s = p; ev_update(s, s->want | EPOLLIN); }
static void ev_del_read(void *p) { struct store *s = p; ev_update(s, s->want & ~EPOLLIN); }
static void ev_add_write(void *p) { struct store *s = p; ev_update(s, s->want | EPOLLOUT); }
static void ev_del_write(void *p) { struct store *s = p; ev_update(s, s->want & ~EPOLLOUT); }

static void ev_cleanup(void *p)
{
	struct store *s = p;

	loop_io_del(s->loop, &s->io);
	s->want = 0;
}

/* --- requests ------------------------------------------------------------------ */

static void pending_unlink(struct store *s, struct store_req *r)
{
	if (r->prev)
		r->prev->next = r->next;
	else
		s->head = r->next;
	if (r->next)
		r->next->prev = r->prev;
	else
		s->tail = r->prev;
	r->prev = r->next = NULL;
	s->n_pending--;
}

static void timeout_rearm(struct store *s)
{
	if (s->head)
		loop_timer_at(s->loop, &s->timeout, s->head->deadline_ns);
	else
		loop_timer_stop(s->loop, &s->timeout);
}

static void deliver_cb(struct loop_post *p)
{
	struct store *s = container_of(p, struct store, deliver);
	struct store_req *r;

	while ((r = s->done)) {
		s->done = r->done_next;
		if (r->cb)
			r->cb(r->arg, r->err, NULL);
		free(r);
	}
}

/* Ends r with err, from the loop. */
static void fail_later(struct store *s, struct store_req *r, int err)
{
	r->err = err;
	r->done_next = s->done;
	s->done = r;
	if (err == -ETIMEDOUT)
		s->st.timeouts++;
	else if (err == -ENOTCONN)
		s->st.not_connected++;
	else
		s->st.errors++;
	loop_post(s->loop, &s->deliver);
}

static void reply_cb(redisAsyncContext *ac, void *reply, void *privdata);

static int send_req(struct store *s, struct store_req *r, int as_eval)
{
	const char *argv[STORE_MAX_ARGS + 3];
	size_t lens[STORE_MAX_ARGS + 3];
	int argc = 0, i;

	switch (r->kind) {
	case REQ_AUTH:
		argv[argc] = "AUTH";
		lens[argc++] = 4;
		argv[argc] = s->password;
		lens[argc++] = strlen(s->password);
		break;
	case REQ_LOAD:
		argv[argc] = "SCRIPT";
		lens[argc++] = 6;
		argv[argc] = "LOAD";
		lens[argc++] = 4;
		argv[argc] = s->scripts[r->script].body;
		lens[argc++] = strlen(s->scripts[r->script].body);
		break;
	case REQ_EPOCH:
	case REQ_USER:
		if (r->kind == REQ_EPOCH) {
			argv[argc] = "EVAL";
			lens[argc++] = 4;
			argv[argc] = epoch_lua;
			lens[argc++] = sizeof(epoch_lua) - 1;
		} else if (as_eval || !s->sha[r->script][0]) {
			argv[argc] = "EVAL";
			lens[argc++] = 4;
			argv[argc] = s->scripts[r->script].body;
			lens[argc++] = strlen(s->scripts[r->script].body);
		} else {
			argv[argc] = "EVALSHA";
			lens[argc++] = 7;
			argv[argc] = s->sha[r->script];
			lens[argc++] = 40;
		}
		for (i = 0; i < r->argc; i++) {
			argv[argc] = r->argv[i];
			lens[argc++] = r->argvlen[i];
		}
		break;
	}
	if (redisAsyncCommandArgv(s->ac, reply_cb, r, argc, argv, lens) != REDIS_OK)
		return -ENOTCONN;
	r->pending = 1;
	r->sent_ns = loop_clock();
	if (!r->deadline_ns)
		r->deadline_ns = r->sent_ns + (r->kind == REQ_USER ? s->cfg.timeout_ms :
					       (s->cfg.timeout_ms > HANDSHAKE_MIN_MS ?
						s->cfg.timeout_ms : HANDSHAKE_MIN_MS)) * 1000000ULL;
	if (!r->prev && s->head != r) {
		r->prev = s->tail;
		if (s->tail)
			s->tail->next = r;
		else
			s->head = r;
		s->tail = r;
		s->n_pending++;
	}
	if (s->head == r)
		timeout_rearm(s);
	return 0;
}

static struct store_req *req_new(struct store *s, enum req_kind kind, unsigned int script,
				 int argc, const char *const *argv, store_cb cb, void *arg)
{
	size_t total = 0, lens[STORE_MAX_ARGS + 1];
	struct store_req *r;
	char *p;
	int i;

	if (argc > STORE_MAX_ARGS + 1)
		return NULL;
	for (i = 0; i < argc; i++) {
		lens[i] = strlen(argv[i]);
		total += lens[i] + 1;
	}
	if (total > ARGS_MAX_BYTES)
		return NULL;
	r = calloc(1, sizeof(*r) + total);
	if (!r)
		return NULL;
	r->s = s;
	r->kind = kind;
	r->script = script;
	r->cb = cb;
	r->arg = arg;
	for (p = r->data, i = 0; i < argc; i++) {
		memcpy(p, argv[i], lens[i] + 1);
		r->argv[i] = p;
		r->argvlen[i] = lens[i];
		p += lens[i] + 1;
	}
	r->argc = argc;
	return r;
}

static void handshake_step_done(struct store *s)
{
	if (--s->handshake_left == 0) {
		s->backoff_ms = BACKOFF_MIN_MS;
		set_state(s, STORE_UP);
	}
}

/* A handshake reply: 0, or the reason to take the connection down. */
static int handshake_reply(struct store *s, struct store_req *r, redisReply *rep)
{
	switch (r->kind) {
	case REQ_AUTH:
		if (rep->type == REDIS_REPLY_ERROR) {
			conn_fail(s, -EACCES, "authentication refused (check password-file %s)",
				  s->cfg.password_file);
			return -EACCES;
		}
		break;
	case REQ_EPOCH: {
		long long v[2];

		if (rep->type == REDIS_REPLY_ERROR) {
			conn_fail(s, -EPROTO, "reading the epoch: %.80s%s", rep->str,
				  strstr(rep->str, "NOAUTH") ? " (the server wants a password: "
				  "add password-file)" : "");
			return -EPROTO;
		}
		if (store_reply_ints(rep, v, 2) || v[0] <= 0) {
			conn_fail(s, -EPROTO, "reading the epoch: a reply of the wrong type");
			return -EPROTO;
		}
		if (s->born_ms && (uint64_t)v[0] != s->born_ms)
			pr_warn("store redis %s: a new epoch (%lld, was %llu): the store lost its "
				"state; buckets start empty", s->cfg.addr, v[0],
				(unsigned long long)s->born_ms);
		s->born_ms = (uint64_t)v[0];
		break;
	}
	case REQ_LOAD:
		if (rep->type != REDIS_REPLY_STRING || rep->len != 40) {
			conn_fail(s, -EPROTO, "loading script %s: %.100s", s->scripts[r->script].name,
				  rep->type == REDIS_REPLY_ERROR ? rep->str : "a reply of the wrong type");
			return -EPROTO;
		}
		memcpy(s->sha[r->script], rep->str, 40);
		s->sha[r->script][40] = '\0';
		break;
	case REQ_USER:
		break;
	}
	handshake_step_done(s);
	return 0;
}

static void reply_cb(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct store_req *r = privdata;
	struct store *s = r->s;
	redisReply *rep = reply;

	(void)ac;
	r->pending = 0;
	if (r->prev || s->head == r) {
		int was_head = s->head == r;

		pending_unlink(s, r);
		if (was_head)
			timeout_rearm(s);
	}
	if (!rep) { /* the connection is going: s->fail_err says why */
		fail_later(s, r, s->fail_err ? s->fail_err : -ENOTCONN);
		return;
	}
	s->st.replies++;
	s->st.last_rtt_us = (loop_clock() - r->sent_ns) / 1000;
	if (r->kind != REQ_USER) {
		handshake_reply(s, r, rep);
		free(r);
		return;
	}
	if (rep->type == REDIS_REPLY_ERROR && !strncmp(rep->str, "NOSCRIPT", 8) && !r->retried &&
	    s->ac) {
		/* The server lost the script (a restart, SCRIPT FLUSH): EVAL
		 * sends the body, which caches it again. */
		s->st.noscript++;
		r->retried = 1;
		r->deadline_ns = 0;
		if (!send_req(s, r, 1))
			return;
		fail_later(s, r, -ENOTCONN);
		return;
	}
	if (rep->type == REDIS_REPLY_ERROR) {
		s->st.errors++;
		snprintf(s->last_error, sizeof(s->last_error), "script %s: %.120s",
			 s->scripts[r->script].name, rep->str);
		if (r->cb)
			r->cb(r->arg, -EPROTO, rep);
		free(r);
		return;
	}
	if (r->cb)
		r->cb(r->arg, 0, rep);
	free(r);
}

/* --- connection ------------------------------------------------------------------ */

static void on_connect(const redisAsyncContext *ac, int status)
{
	struct store *s = ac->data;
	struct store_req *r;
	size_t i;
	char ttl[24];
	const char *argv[3];

	if (status != REDIS_OK) {
		/* hiredis frees the context after this returns */
		s->ac = NULL;
		conn_fail(s, -ECONNREFUSED, "connect: %s", ac->errstr);
		return;
	}
	s->st.connects++;
	set_state(s, STORE_CONNECTING);
	s->handshake_left = 0;
	if (s->password[0]) {
		r = req_new(s, REQ_AUTH, 0, 0, NULL, NULL, NULL);
		if (!r || send_req(s, r, 0))
			goto fail;
		s->handshake_left++;
	}
	snprintf(ttl, sizeof(ttl), "%llu", EPOCH_TTL_MS);
	argv[0] = "1";
	argv[1] = s->epoch_key;
	argv[2] = ttl;
	r = req_new(s, REQ_EPOCH, 0, 3, argv, NULL, NULL);
	if (!r || send_req(s, r, 0))
		goto fail;
	s->handshake_left++;
	for (i = 0; i < s->n_scripts; i++) {
		r = req_new(s, REQ_LOAD, (unsigned int)i, 0, NULL, NULL, NULL);
		if (!r || send_req(s, r, 0))
			goto fail;
		s->handshake_left++;
	}
	return;
fail:
	free(r);
	conn_fail(s, -ENOMEM, "handshake: out of memory");
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
	struct store *s = ac->data;

	(void)status;
	if (s->ac != ac)
		return; /* we freed it ourselves: conn_fail has done the rest */
	s->ac = NULL;
	s->st.disconnects++;
	conn_fail(s, -ENOTCONN, "the connection closed: %s",
		  ac->errstr[0] ? ac->errstr : "closed by the server");
}

static void reconnect_cb(struct loop_timer *t)
{
	connect_start(container_of(t, struct store, reconnect));
}

/* The connection is unusable: free it (pending requests end with err),
 * log the change of state once, and retry with backoff. */
static void conn_fail(struct store *s, int err, const char *fmt, ...)
{
	redisAsyncContext *ac = s->ac;
	char why[160];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	snprintf(s->last_error, sizeof(s->last_error), "%s", why);
	if (ac) {
		s->ac = NULL;
		s->fail_err = err;
		/* Inside a hiredis callback the free is deferred until it returns,
		 * which is safe: every request still ends once. */
		redisAsyncFree(ac);
	}
	ev_cleanup(s);
	loop_timer_stop(s->loop, &s->timeout);
	/* One line per change: leaving up, or a new reason while down (a wrong
	 * password retried every 5 s is said once). */
	if (s->state == STORE_UP || strcmp(why, s->logged_error))
		pr_warn("store redis %s: down: %s; retrying with backoff, limits on their fallback",
			s->cfg.addr, why);
	else
		pr_dbg("store redis %s: still down: %s", s->cfg.addr, why);
	snprintf(s->logged_error, sizeof(s->logged_error), "%s", why);
	set_state(s, STORE_DOWN);
	if (!loop_timer_armed(&s->reconnect)) {
		/* jitter: a fleet that lost its store does not come back in step */
		uint64_t ms = s->backoff_ms + (uint64_t)(rand() % (int)(s->backoff_ms / 4 + 1));

		loop_timer_after(s->loop, &s->reconnect, ms * 1000000ULL);
		s->backoff_ms = s->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : s->backoff_ms * 2;
	}
}

static void timeout_cb(struct loop_timer *t)
{
	struct store *s = container_of(t, struct store, timeout);

	if (s->ac && s->state == STORE_DOWN) {
		conn_fail(s, -ETIMEDOUT, "connect: no answer within %s",
			  s->cfg.timeout_ms > HANDSHAKE_MIN_MS ? s->timeout_s : "500ms");
		return;
	}
	if (!s->head || s->head->deadline_ns > loop_clock()) {
		timeout_rearm(s);
		return;
	}
	conn_fail(s, -ETIMEDOUT, "no reply within %s", s->timeout_s);
}

static void connect_start(struct store *s)
{
	redisAsyncContext *ac;

	if (s->ac)
		return;
	if (s->cfg.path[0])
		ac = redisAsyncConnectUnix(s->cfg.path);
	else
		ac = redisAsyncConnect(s->cfg.host, (int)s->cfg.port);
	if (!ac) {
		conn_fail(s, -ENOMEM, "connect: out of memory");
		return;
	}
	if (ac->err) {
		char why[128];

		snprintf(why, sizeof(why), "%s", ac->errstr);
		redisAsyncFree(ac);
		conn_fail(s, -ECONNREFUSED, "connect: %s", why);
		return;
	}
	ac->data = s;
	ac->ev.data = s;
	ac->ev.addRead = ev_add_read;
	ac->ev.delRead = ev_del_read;
	ac->ev.addWrite = ev_add_write;
	ac->ev.delWrite = ev_del_write;
	ac->ev.cleanup = ev_cleanup;
	s->ac = ac;
	s->want = 0;
	redisAsyncSetConnectCallback(ac, on_connect);
	redisAsyncSetDisconnectCallback(ac, on_disconnect);
	/* the connect completes on the first writable event */
	ev_update(s, EPOLLOUT);
	/* a connect that hangs is a timeout too (timeout_cb) */
	s->fail_err = 0;
	loop_timer_after(s->loop, &s->timeout,
			 (s->cfg.timeout_ms > HANDSHAKE_MIN_MS ? s->cfg.timeout_ms : HANDSHAKE_MIN_MS) *
			 1000000ULL);
}

int store_open(struct loop *l, const struct store_config *c, const struct store_script *scripts,
	       size_t n_scripts, void (*on_state)(void *, enum store_state), void *arg,
	       struct store **out)
{
	struct store *s;
	struct errbuf e;
	int err;

	*out = NULL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->sha = calloc(n_scripts ? n_scripts : 1, sizeof(*s->sha));
	if (!s->sha) {
		free(s);
		return -ENOMEM;
	}
	s->loop = l;
	s->cfg = *c;
	s->scripts = scripts;
	s->n_scripts = n_scripts;
	s->on_state = on_state;
	s->state_arg = arg;
	s->state = STORE_DOWN;
	s->st.state_since_ns = loop_clock();
	s->backoff_ms = BACKOFF_MIN_MS;
	if (!s->cfg.instance[0])
		store_default_instance(s->cfg.instance, sizeof(s->cfg.instance), NULL);
	snprintf(s->epoch_key, sizeof(s->epoch_key), "%s:epoch", s->cfg.prefix);
	fmt_duration_ms(s->cfg.timeout_ms, s->timeout_s, sizeof(s->timeout_s));
	if (c->password_file[0]) {
		err = store_password_read(c->password_file, s->password, sizeof(s->password), &e);
		if (err) {
			pr_err("%s", e.msg);
			free(s->sha);
			free(s);
			return err;
		}
	}
	loop_post_init(&s->deliver, deliver_cb);
	loop_timer_init(&s->timeout, timeout_cb);
	loop_timer_init(&s->reconnect, reconnect_cb);
	pr_info("store redis %s: connecting (prefix %s, instance %s, timeout %s)", c->addr,
		s->cfg.prefix, s->cfg.instance, s->timeout_s);
	connect_start(s);
	*out = s;
	return 0;
}

void store_close(struct store *s)
{
	if (!s)
		return;
	s->on_state = NULL;
	if (s->ac) {
		redisAsyncContext *ac = s->ac;

		s->ac = NULL;
		s->fail_err = -ENOTCONN;
		redisAsyncFree(ac);
	}
	ev_cleanup(s);
	loop_timer_stop(s->loop, &s->timeout);
	loop_timer_stop(s->loop, &s->reconnect);
	loop_post_cancel(s->loop, &s->deliver);
	/* requests failed by the free: their owners are told now, since no
	 * loop turn will come for this store */
	deliver_cb(&s->deliver);
	memset(s->password, 0, sizeof(s->password));
	free(s->sha);
	free(s);
}

struct store_req *store_eval(struct store *s, unsigned int script, int n_keys,
			     const char *const *keys, int n_args, const char *const *args,
			     store_cb cb, void *arg)
{
	const char *argv[STORE_MAX_ARGS + 1];
	char nk[12];
	struct store_req *r;
	int i, argc = 0;

	s->st.requests++;
	if (n_keys < 0 || n_args < 0 || n_keys + n_args > STORE_MAX_ARGS || script >= s->n_scripts) {
		r = req_new(s, REQ_USER, script, 0, NULL, cb, arg);
		if (!r)
			return NULL;
		fail_later(s, r, -EINVAL);
		return r;
	}
	snprintf(nk, sizeof(nk), "%d", n_keys);
	argv[argc++] = nk;
	for (i = 0; i < n_keys; i++)
		argv[argc++] = keys[i];
	for (i = 0; i < n_args; i++)
		argv[argc++] = args[i];
	r = req_new(s, REQ_USER, script, argc, argv, cb, arg);
	if (!r) {
		r = req_new(s, REQ_USER, script, 0, NULL, cb, arg);
		if (!r)
			return NULL;
		fail_later(s, r, -E2BIG);
		return r;
	}
	if (s->state != STORE_UP || !s->ac) {
		fail_later(s, r, -ENOTCONN);
		return r;
	}
	if (s->n_pending >= STORE_MAX_PENDING) {
		fail_later(s, r, -ENOSPC);
		return r;
	}
	if (send_req(s, r, 0)) {
		fail_later(s, r, -ENOTCONN);
		return r;
	}
	return r;
}

void store_cancel(struct store_req *r)
{
	if (r)
		r->cb = NULL;
}

int store_reply_ints(const struct redisReply *r, long long *out, size_t n)
{
	size_t i;

	if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < n)
		return -EPROTO;
	for (i = 0; i < n; i++) {
		const redisReply *e = r->element[i];

		if (e->type != REDIS_REPLY_INTEGER)
			return -EPROTO;
		out[i] = e->integer;
	}
	return 0;
}
