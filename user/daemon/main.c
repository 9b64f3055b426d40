// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * sluiced - the sluice daemon: attaches to the configured interfaces (or
 * adopts what is attached), applies the config's policy as one transaction
 * of differences, follows the interfaces through rtnetlink, runs the
 * adaptive controllers, and on SIGHUP reloads. Exit leaves enforcement in
 * place (fail-static). One event loop (user/lib/loop.h, d->loop): the
 * signalfd, rtnetlink, the controllers' timers and the metrics endpoint; it
 * sleeps until one of them has something.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include "command.h"
#include "config.h"
#include "loader.h"
#include "log.h"
#include "pin.h"
#include "policy.h"
#include "sluiced.h"
#include "version.h"

#define EXIT_USAGE 2

static const char usage[] =
"Usage: sluiced -c FILE [-f] [--detach-on-exit] [-v]\n"
"       sluiced --check -c FILE\n"
"\n"
"The sluice daemon: attach to the interfaces FILE names (or adopt a running\n"
"attachment, keeping every bucket, flow, counter and ban), apply FILE's policy\n"
"as one transaction of differences, and follow the interfaces as they come\n"
"and go. SIGHUP reloads FILE; a bad file changes nothing. On exit, enforcement\n"
"stays in place with the last limits.\n"
"\n"
"  -c FILE           the configuration (see docs/operations.md)\n"
"  -f                stay in the foreground (under systemd)\n"
"  --detach-on-exit  detach from every interface on SIGTERM/SIGINT\n"
"  --check           parse FILE, print OK or FILE:LINE: reason, and exit\n"
"  -v                debug messages and libbpf's (-vv: libbpf's debug too)\n"
"  -h, --help        this text\n"
"  --version         print the version and exit\n";

static int need_root(void)
{
	if (geteuid() == 0)
		return 0;
	pr_err("must be run as root (the pinned maps under /sys/fs/bpf are root-only)");
	return -EPERM;
}

static void log_delta(const char *what, const struct config_delta *dl, const struct policy *p)
{
	int i, live = 0;

	for (i = 0; i < SLUICE_MAX_RULES; i++)
		live += policy_rule_live(p, i);
	if (config_delta_empty(dl)) {
		pr_info("%s: policy unchanged (%d rule(s))", what, live);
		return;
	}
	pr_info("%s: policy applied: %d rule(s); %u kept, %u added, %u deleted; allow +%u -%u; "
		"deny +%u -%u%s", what, live, dl->rules_kept, dl->rules_added, dl->rules_deleted,
		dl->allow_added, dl->allow_deleted, dl->deny_added, dl->deny_deleted,
		dl->settings ? "; settings changed" : "");
}

/* The config's policy, as one locked transaction of differences. */
static int apply_policy(struct daemon *d, const struct config *c, const char *what)
{
	unsigned int owned[SLUICE_MAX_RULES] = { 0 };
	struct config_delta dl;
	struct errbuf e;
	struct policy *cur;
	int lock, err, committed = 0;

	cur = calloc(1, sizeof(*cur));
	if (!cur)
		return -ENOMEM;
	lock = pin_lock();
	if (lock < 0) {
		free(cur);
		return lock;
	}
	err = loader_init_config(d->maps.cfg, d->state_entries, c->insert_rate);
	if (err) {
		pr_err("%s: initialise the config map: %s", what, strerror(-err));
		goto out;
	}
	err = policy_load(cur, &d->maps);
	if (err)
		goto out;
	ctl_owned(owned);
	fleet_owned(c, owned);
	err = config_policy_apply(cur, c, owned, &dl, &e);
	if (err) {
		pr_err("%s: %s: %s (nothing was changed)", what, c->path, e.msg);
		goto out_free;
	}
	err = policy_commit(cur, &d->maps);
	if (err) {
		pr_err("%s: writing the policy failed (see above)", what);
	} else {
		log_delta(what, &dl, cur);
		committed = 1;
	}
out_free:
	policy_free(cur);
out:
	pin_unlock(lock);
	/* the global rules as committed (it takes the lock to write them) */
	if (committed)
		fleet_apply(d, c, cur);
	free(cur);
	return err;
}

static void ifaces_from_config(struct daemon *d, const struct config *c)
{
	int i;

	memset(d->ifaces, 0, sizeof(d->ifaces));
	d->n_ifaces = c->n_ifaces;
	for (i = 0; i < c->n_ifaces; i++)
		d->ifaces[i].cfg = c->ifaces[i];
}

static int start(struct daemon *d)
{
	int i, err, up = 0;

	err = rtnl_open(d); /* first: no link event between attach and listening is lost */
	if (!err)
		err = pin_dir_create();
	if (!err)
		err = programs_load(d);
	if (err)
		return err;
	/* Controllers first: bound to the pinned rules, the limits they drive
	 * are theirs, and a restart does not take them for a changed rule. */
	ctl_apply(d, NULL, d->cfg);
	err = apply_policy(d, d->cfg, "start");
	if (err)
		return err;
	ctl_apply(d, d->cfg, d->cfg); /* bind again, to the rules as committed */
	ifaces_from_config(d, d->cfg);
	links_tidy(d);
	for (i = 0; i < d->n_ifaces; i++) {
		err = iface_up(d, &d->ifaces[i]);
		if (!err)
			up++;
		else if (err != -ENODEV)
			return err;
	}
	pr_info("running: attached to %d of %d interface(s), pins under %s; SIGHUP reloads %s",
		up, d->n_ifaces, pin_root(), d->cfg->path);
	return 0;
}

static void reload(struct daemon *d)
{
	struct config *old = d->cfg, *c = malloc(sizeof(*c));
	struct iface next[CONFIG_MAX_IFACES];
	struct config_err ce;
	int i, j, n;

	if (!c) {
		pr_err("reload: out of memory; keeping the running configuration");
		return;
	}
	pr_info("reload: reading %s", old->path);
	if (config_load(c, old->path, &ce) || ctl_check(c, &ce) || fleet_check(c, &ce)) {
		config_free(c);
		free(c);
		pr_err("reload: %s (nothing was changed)", ce.msg);
		return;
	}
	d->cfg = c;
	if (programs_load(d) || apply_policy(d, c, "reload")) {
		d->cfg = old;
		config_free(c);
		free(c);
		pr_err("reload: the running configuration stays");
		return;
	}
	/* Interfaces: keep what is unchanged, detach what went, attach what came. */
	memset(next, 0, sizeof(next));
	for (i = 0; i < c->n_ifaces; i++) {
		next[i].cfg = c->ifaces[i];
		for (j = 0; j < d->n_ifaces; j++) {
			if (strcmp(d->ifaces[j].cfg.name, c->ifaces[i].name))
				continue;
			next[i].ifindex = d->ifaces[j].ifindex;
			next[i].renamed = d->ifaces[j].renamed;
			next[i].mode_used = d->ifaces[j].mode_used;
			if (config_iface_equal(&d->ifaces[j].cfg, &c->ifaces[i]))
				next[i].cfg.line = 0; /* unchanged: no action */
			d->ifaces[j].cfg.name[0] = '\0'; /* taken over */
			break;
		}
		if (j == d->n_ifaces)
			next[i].ifindex = -1; /* new */
	}
	for (j = 0; j < d->n_ifaces; j++) {
		if (!d->ifaces[j].cfg.name[0])
			continue;
		pr_info("reload: %s is no longer in the config", d->ifaces[j].cfg.name);
		iface_down(d, &d->ifaces[j]);
	}
	n = c->n_ifaces;
	memcpy(d->ifaces, next, sizeof(next));
	d->n_ifaces = n;
	for (i = 0; i < n; i++) {
		struct iface *f = &d->ifaces[i];

		if (f->ifindex == -1) {
			f->ifindex = 0;
			pr_info("reload: %s added", f->cfg.name);
			iface_up(d, f);
		} else if (f->cfg.line) {
			f->cfg.line = c->ifaces[i].line;
			pr_info("reload: %s changed (mode %s%s)", f->cfg.name,
				config_mode_name(f->cfg.mode), f->cfg.no_tc ? ", no-tc" : "");
			iface_up(d, f);
		} else {
			f->cfg.line = c->ifaces[i].line;
		}
	}
	ctl_apply(d, old, c);
	config_free(old);
	free(old);
	pr_info("reload: done");
}

static int daemonize(void)
{
	pid_t pid = fork();
	int fd;

	if (pid < 0)
		return -errno;
	if (pid > 0)
		_exit(0);
	if (setsid() < 0)
		return -errno;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid > 0)
		_exit(0);
	if (chdir("/"))
		return -errno;
	fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (fd >= 0) {
		dup2(fd, STDIN_FILENO);
		dup2(fd, STDOUT_FILENO);
		close(fd);
	}
	return 0;
}

/* SIGHUP reloads; SIGTERM and SIGINT end the loop. */
static void on_signal(struct loop_io *io, uint32_t events)
{
	struct daemon *d = container_of(io, struct daemon, sig_io);
	struct signalfd_siginfo si;

	(void)events;
	while (read(d->sigfd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGHUP) {
			pr_info("SIGHUP: reloading");
			reload(d);
		} else {
			pr_info("%s: exiting", strsignal((int)si.ssi_signo));
			loop_stop(d->loop);
			return;
		}
	}
}

int main(int argc, char **argv)
{
	struct daemon d = { .sigfd = -1, .nlfd = -1 };
	const char *file = NULL;
	int foreground = 0, check = 0, verbose = 0, a, err;
	struct config_err ce;
	sigset_t mask;

	if (version_flag("sluiced", argc, argv))
		return 0;

	for (a = 1; a < argc; a++) {
		if (!strcmp(argv[a], "-c") && a + 1 < argc)
			file = argv[++a];
		else if (!strcmp(argv[a], "-f"))
			foreground = 1;
		else if (!strcmp(argv[a], "--detach-on-exit"))
			d.detach_on_exit = 1;
		else if (!strcmp(argv[a], "--check"))
			check = 1;
		else if (!strcmp(argv[a], "-v"))
			verbose = 1;
		else if (!strcmp(argv[a], "-vv"))
			verbose = 2;
		else if (!strcmp(argv[a], "-h") || !strcmp(argv[a], "--help")) {
			fputs(usage, stdout);
			return 0;
		} else {
			fprintf(stderr, "sluiced: unknown or incomplete option '%s' (see sluiced "
				"--help)\n", argv[a]);
			return EXIT_USAGE;
		}
	}
	log_init("sluiced", verbose ? LOG_DEBUG : LOG_INFO);
	log_show_levels(1);
	log_libbpf_level(verbose == 2 ? LOG_DEBUG : verbose ? LOG_INFO : LOG_WARN);
	if (!file) {
		pr_err("missing -c FILE (see sluiced --help)");
		return EXIT_USAGE;
	}
	d.cfg = malloc(sizeof(*d.cfg));
	if (!d.cfg)
		return 1;
	if (config_load(d.cfg, file, &ce) || ctl_check(d.cfg, &ce) || fleet_check(d.cfg, &ce)) {
		if (check)
			printf("%s\n", ce.msg);
		else
			pr_err("%s (nothing was changed)", ce.msg);
		config_free(d.cfg);
		free(d.cfg);
		return 1;
	}
	if (check) {
		printf("OK\n");
		config_free(d.cfg);
		free(d.cfg);
		return 0;
	}
	if (need_root()) {
		config_free(d.cfg);
		free(d.cfg);
		return 1;
	}

	sigemptyset(&mask);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	err = loop_new(&d.loop);
	if (!err) {
		d.sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
		err = d.sigfd < 0 ? -errno
				  : loop_io_add(d.loop, &d.sig_io, d.sigfd, EPOLLIN, on_signal);
	}
	if (!err)
		err = start(&d);
	if (!err && !foreground)
		err = daemonize();
	if (!err) {
		err = loop_run(d.loop);
		if (err)
			pr_err("event loop: %s", strerror(-err));
	} else {
		pr_err("start failed: %s", strerror(-err));
	}

	if (d.detach_on_exit && !err) {
		for (a = 0; a < d.n_ifaces; a++)
			iface_down(&d, &d.ifaces[a]);
		pr_info("detached from every interface (--detach-on-exit); the policy stays "
			"pinned");
	} else if (!err) {
		pr_info("enforcement stays in place with the last limits (fail-static)");
	}
	ctl_stop(&d);
	fleet_stop(&d);
	rtnl_close(&d);
	programs_free(&d);
	config_free(d.cfg);
	free(d.cfg);
	if (d.sigfd >= 0) {
		loop_io_del(d.loop, &d.sig_io);
		close(d.sigfd);
	}
	loop_free(d.loop);
	return err ? 1 : 0;
}
