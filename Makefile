# sluice - kernel-assisted rate limiter.  `make help` lists the targets.
#
# Everything is built out of tree in build/: BPF objects and their skeletons,
# the user library, the binaries, and a second copy of the user side built
# with AddressSanitizer and UndefinedBehaviorSanitizer (build/san/).

.DELETE_ON_ERROR:
.SUFFIXES:
.SECONDARY:
.DEFAULT_GOAL := all

ARCH       ?= x86
BUILD      ?= build
CLANG      ?= clang
BPFTOOL    ?= bpftool
CC         ?= cc
V          ?= 0

ifeq ($(V),1)
Q :=
msg =
else
Q := @
msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
endif

BPF_CFLAGS := -g -O2 -target bpf -mcpu=v3 -D__TARGET_ARCH_$(ARCH) -Wall -Werror \
	      -I$(BUILD) -Iinclude -Ibpf -Ivmlinux/$(ARCH) -MMD -MP
CFLAGS     ?= -O2 -g
USER_CFLAGS := $(CFLAGS) -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror \
	       -Iinclude -Iuser/lib -I$(BUILD) -MMD -MP
SAN_FLAGS  := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
LDLIBS     := -lbpf -lelf -lz -lmnl -ljansson -lhiredis -lssl -lcrypto

BPF_PROGS  := sluice_xdp sluice_tc floor sluice_l7 bench_live
BPF_OBJS   := $(BPF_PROGS:%=$(BUILD)/%.bpf.o)
SKELS      := $(BPF_PROGS:%=$(BUILD)/%.skel.h)

LIB_SRCS   := $(wildcard user/lib/*.c)
# The store's Lua scripts, embedded as C strings (see user/lib/scripts.h).
LUA_SRCS   := $(wildcard user/lib/lua/*.lua)
LUA_HDRS   := $(LUA_SRCS:user/lib/lua/%.lua=$(BUILD)/lua/%.lua.h)
CLI_SRCS   := $(wildcard user/cli/*.c)
DAEMON_SRCS := $(wildcard user/daemon/*.c)
# sluice-l7: everything but main.c is also linked into the unit tests.
L7_SRCS    := $(filter-out user/l7/main.c,$(wildcard user/l7/*.c))
# tests/lib: test frames (pkt.c) and the programs under test (fixture.c), for
# the unit tests and sluice-bench. The unit tests are one binary in two
# groups, pure and bpf, chosen per file (see tests/unit/harness.h).
TESTLIB_SRCS := $(wildcard tests/lib/*.c)
UNIT_SRCS  := $(wildcard tests/unit/*.c) $(TESTLIB_SRCS) $(L7_SRCS)
MOCK_SRCS  := tests/mock-llm/mock_llm.c
FUZZ_SRCS  := tests/fuzz/fuzz_l7.c user/l7/http.c user/l7/tokens.c
BENCH_SRCS := bench/bench.c $(TESTLIB_SRCS)
BENCH_LIVE_SRCS := bench/bench_live.c

# $(call objs,DIRS,SRCS): the objects of SRCS in each of DIRS
objs = $(foreach d,$(1),$(patsubst %.c,$(d)/%.o,$(2)))

LIB_OBJS       := $(call objs,$(BUILD),$(LIB_SRCS))
LIB_OBJS_SAN   := $(call objs,$(BUILD)/san,$(LIB_SRCS))

SLUICE         := $(BUILD)/sluice
SLUICE_SAN     := $(BUILD)/san/sluice
SLUICED        := $(BUILD)/sluiced
SLUICED_SAN    := $(BUILD)/san/sluiced
SLUICE_L7      := $(BUILD)/sluice-l7
SLUICE_L7_SAN  := $(BUILD)/san/sluice-l7
MOCK_LLM       := $(BUILD)/mock-llm
FUZZ_L7        := $(BUILD)/fuzz-l7
FUZZ_SECONDS   ?= 600
UNIT           := $(BUILD)/unit-tests
UNIT_SAN       := $(BUILD)/san/unit-tests
BENCH          := $(BUILD)/sluice-bench
BENCH_LIVE     := $(BUILD)/sluice-bench-live

.PHONY: all help deps demo test test-unit test-cli test-e2e test-fuzz bench fuzz clean vmlinux

all: $(SLUICE) $(SLUICED) $(SLUICE_L7) $(MOCK_LLM) $(UNIT) $(BENCH) $(BENCH_LIVE)  ## build everything (default)

help:  ## list the targets
	@echo "sluice make targets:"
	@grep -hE '^[a-z0-9-]+:.*##' Makefile | sed 's/:.*##/\t/' | sort | \
	  awk -F'\t' '{printf "  %-12s %s\n", $$1, $$2}'
	@echo "Variables: V=1 (show commands), BUILD=DIR (output, default build)"

deps:  ## install missing Debian packages (needs root)
	$(Q)tools/deps.sh

vmlinux:  ## regenerate vmlinux/$(ARCH)/vmlinux.h from the running kernel
	$(Q)tools/gen_vmlinux_h.sh $(ARCH)

# --- BPF -----------------------------------------------------------------
$(BUILD)/%.bpf.o: bpf/%.bpf.c | $(BUILD)
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(BUILD)/%.skel.h: $(BUILD)/%.bpf.o
	$(call msg,GEN-SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name $(subst .bpf.o,,$(notdir $<)) > $@

# --- Lua scripts -------------------------------------------------------------
# NAME.lua -> `#define LUA_NAME "..." "..."`, one string literal per line of
# the script: \ and " escaped, and ? too (no trigraphs in -std=c11). A macro,
# so scripts.c can put a shared prelude in front of a script at compile time.
# The recipe is part of the output: a change to it here regenerates them.
$(BUILD)/lua/%.lua.h: user/lib/lua/%.lua Makefile
	$(call msg,GEN-LUA,$@)
	$(Q)mkdir -p $(@D)
	$(Q){ printf '/* generated from %s: do not edit */\n' '$<'; \
	  printf '#define LUA_%s \\\n' '$*'; \
	  sed -e 's/[\\"?]/\\&/g' -e 's/^/\t"/' -e 's/$$/\\n" \\/' '$<'; \
	  printf '\t""\n'; } > $@

# scripts.c includes every generated header: on a clean build they must
# exist before it compiles (later edits are also in its -MMD dependencies).
$(BUILD)/user/lib/scripts.o $(BUILD)/san/user/lib/scripts.o: $(LUA_HDRS)

# --- userspace -------------------------------------------------------------
# Include paths per part: every user object sees include/, user/lib/ and the
# generated headers in $(BUILD) (skeletons, Lua scripts); sluice-l7's objects
# and the tests that test them see user/l7/ too, and the test library's
# headers are for the tests and sluice-bench only.
l7_objs   := $(BUILD)/user/l7/%.o $(BUILD)/san/user/l7/%.o
test_objs := $(BUILD)/tests/%.o $(BUILD)/san/tests/%.o
$(l7_objs):   USER_CFLAGS += -Iuser/l7
$(test_objs): USER_CFLAGS += -Iuser/l7 -Itests/lib
$(BUILD)/bench/bench.o: USER_CFLAGS += -Itests/lib

$(BUILD)/%.o: %.c
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(USER_CFLAGS) -c $< -o $@

$(BUILD)/san/%.o: %.c
	$(call msg,CC-SAN,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(USER_CFLAGS) $(SAN_FLAGS) -c $< -o $@

# An object that includes a skeleton needs it before it compiles. -MMD
# records that after the first build; for the first, the sources are read
# here: `#include "NAME.skel.h"` in FILE.c makes both FILE.o (plain and
# sanitized) depend on $(BUILD)/NAME.skel.h, and nothing else waits for it.
USER_SRCS := $(sort $(wildcard $(LIB_SRCS) $(CLI_SRCS) $(DAEMON_SRCS) $(wildcard user/l7/*.c) \
	       $(MOCK_SRCS) $(UNIT_SRCS) $(BENCH_SRCS) $(BENCH_LIVE_SRCS)))
SKEL_USES := $(shell awk -F'"' '/^.include ".*\.skel\.h"/ { print FILENAME ":" $$2 }' \
		$(USER_SRCS))
$(foreach u,$(SKEL_USES),$(eval \
	$(call objs,$(BUILD) $(BUILD)/san,$(firstword $(subst :, ,$(u)))): \
	$(BUILD)/$(lastword $(subst :, ,$(u)))))

# Each binary, plain and sanitized, and the objects it links; one recipe
# links them all (the sanitized ones with $(SAN_FLAGS)).
$(SLUICE):         $(call objs,$(BUILD),$(CLI_SRCS)) $(LIB_OBJS)
$(SLUICE_SAN):     $(call objs,$(BUILD)/san,$(CLI_SRCS)) $(LIB_OBJS_SAN)
$(SLUICED):        $(call objs,$(BUILD),$(DAEMON_SRCS)) $(LIB_OBJS)
$(SLUICED_SAN):    $(call objs,$(BUILD)/san,$(DAEMON_SRCS)) $(LIB_OBJS_SAN)
$(SLUICE_L7):      $(call objs,$(BUILD),user/l7/main.c $(L7_SRCS)) $(LIB_OBJS)
$(SLUICE_L7_SAN):  $(call objs,$(BUILD)/san,user/l7/main.c $(L7_SRCS)) $(LIB_OBJS_SAN)
$(MOCK_LLM):       $(call objs,$(BUILD),$(MOCK_SRCS)) $(LIB_OBJS)
$(UNIT):           $(call objs,$(BUILD),$(UNIT_SRCS)) $(LIB_OBJS)
$(UNIT_SAN):       $(call objs,$(BUILD)/san,$(UNIT_SRCS)) $(LIB_OBJS_SAN)
$(BENCH):          $(call objs,$(BUILD),$(BENCH_SRCS)) $(LIB_OBJS)
$(BENCH_LIVE):     $(call objs,$(BUILD),$(BENCH_LIVE_SRCS)) $(LIB_OBJS)

BINS     := $(SLUICE) $(SLUICED) $(SLUICE_L7) $(MOCK_LLM) $(UNIT) $(BENCH) $(BENCH_LIVE)
SAN_BINS := $(SLUICE_SAN) $(SLUICED_SAN) $(SLUICE_L7_SAN) $(UNIT_SAN)

$(BINS) $(SAN_BINS):
	$(call msg,$(if $(filter $@,$(SAN_BINS)),LD-SAN,LD),$@)
	$(Q)$(CC) $(CFLAGS) $(if $(filter $@,$(SAN_BINS)),$(SAN_FLAGS)) -o $@ $^ $(LDLIBS)

# libFuzzer needs clang; the target sees only the parsers (no BPF, no I/O).
$(FUZZ_L7): $(FUZZ_SRCS) $(wildcard user/l7/*.h)
	$(call msg,FUZZ,$@)
	$(Q)$(CLANG) -g -O1 -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Iinclude -Iuser/lib \
		-Iuser/l7 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
		-o $@ $(FUZZ_SRCS) -ljansson

$(BUILD):
	$(Q)mkdir -p $@

# --- version, install, package ---------------------------------------------
# One version string for every binary, compiled into user/lib/version.o only:
# `git describe` in a git tree, else the VERSION file, else debian/changelog.
# `make VERSION=...` overrides it; a VERSION in the environment does not.
ifneq ($(origin VERSION),command line)
VERSION    := $(or $(shell [ "$$(git rev-parse --show-toplevel 2>/dev/null)" = "$(CURDIR)" ] && \
		git describe --always --dirty 2>/dev/null), \
	      $(shell cat VERSION 2>/dev/null), \
	      $(shell sed -n '1s/^[^(]*(\([^)]*\)).*/\1/p' debian/changelog 2>/dev/null), unknown)
endif
VERSION_STAMP := $(BUILD)/version.txt
# Rewritten only when the version changes, so version.o rebuilds only then.
$(shell mkdir -p $(BUILD) && { printf '%s\n' '$(VERSION)' | cmp -s - $(VERSION_STAMP) || \
	printf '%s\n' '$(VERSION)' > $(VERSION_STAMP); })
$(BUILD)/user/lib/version.o $(BUILD)/san/user/lib/version.o: $(VERSION_STAMP)
$(BUILD)/user/lib/version.o $(BUILD)/san/user/lib/version.o: \
	USER_CFLAGS += -DSLUICE_VERSION='"$(VERSION)"'

PREFIX     ?= /usr/local
SBINDIR    ?= $(PREFIX)/sbin
MANDIR     ?= $(PREFIX)/share/man
DOCDIR     ?= $(PREFIX)/share/doc/sluice
UNITDIR    ?= $(PREFIX)/lib/systemd/system
COMPLDIR   ?= $(PREFIX)/share/bash-completion/completions
CONFDIR    ?= /etc/sluice
DESTDIR    ?=
INSTALL    ?= install
MAN8       := man/sluice.8 man/sluiced.8 man/sluice-l7.8
MAN5       := man/sluiced.conf.5 man/sluice-l7.conf.5
UNITS      := dist/systemd/sluiced.service dist/systemd/sluice-l7.service
DOCS       := README.md docs/operations.md docs/l7.md docs/l7-config.md docs/fleet.md \
	      docs/metrics.md
# dist/EXAMPLE -> $(CONFDIR)/NAME with MODE: 600 for sluice-l7's (it names API keys)
CONFS      := sluiced.conf.example:sluiced.conf:0644 sluice-l7.conf.example:l7.conf:0600
DEB_DIR    := $(BUILD)/deb

.PHONY: programs install uninstall deb

programs: $(SLUICE) $(SLUICED) $(SLUICE_L7)  ## build the three installed binaries only

# The units name the binaries by path: rewritten for SBINDIR and DOCDIR.
install: programs  ## install into DESTDIR/PREFIX (/usr/local); never overwrites a file in CONFDIR (/etc/sluice)
	$(call msg,INSTALL,$(DESTDIR)$(PREFIX))
	$(Q)$(INSTALL) -d -m 0755 $(DESTDIR)$(SBINDIR)
	$(Q)$(INSTALL) -m 0755 $(SLUICE) $(SLUICED) $(SLUICE_L7) $(DESTDIR)$(SBINDIR)/
	$(Q)$(INSTALL) -d -m 0755 $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(MANDIR)/man5
	$(Q)$(INSTALL) -m 0644 $(MAN8) $(DESTDIR)$(MANDIR)/man8/
	$(Q)$(INSTALL) -m 0644 $(MAN5) $(DESTDIR)$(MANDIR)/man5/
	$(Q)$(INSTALL) -D -m 0644 dist/bash-completion/sluice $(DESTDIR)$(COMPLDIR)/sluice
	$(Q)$(INSTALL) -d -m 0755 $(DESTDIR)$(DOCDIR)
	$(Q)$(INSTALL) -m 0644 $(DOCS) $(DESTDIR)$(DOCDIR)/
	$(Q)$(INSTALL) -d -m 0755 $(DESTDIR)$(UNITDIR)
	$(Q)for u in $(UNITS); do \
		sed -e 's|/usr/local/sbin|$(SBINDIR)|g' -e 's|/usr/local/share/doc/sluice|$(DOCDIR)|g' \
		    -e 's|/etc/sluice|$(CONFDIR)|g' $$u > $(DESTDIR)$(UNITDIR)/$${u##*/}.tmp && \
		chmod 0644 $(DESTDIR)$(UNITDIR)/$${u##*/}.tmp && \
		mv $(DESTDIR)$(UNITDIR)/$${u##*/}.tmp $(DESTDIR)$(UNITDIR)/$${u##*/} || exit 1; \
	done
	$(Q)$(INSTALL) -d -m 0755 $(DESTDIR)$(CONFDIR)
	$(Q)for c in $(CONFS); do \
		x=$${c%%:*}; f=$${c#*:}; f=$${f%%:*}; m=$${c##*:}; \
		if [ -e $(DESTDIR)$(CONFDIR)/$$f ]; then \
			echo "  KEEP     $(DESTDIR)$(CONFDIR)/$$f (exists; dist/$$x is the new example)"; \
		else \
			$(INSTALL) -m $$m dist/$$x $(DESTDIR)$(CONFDIR)/$$f || exit 1; \
		fi; \
	done

# Leaves CONFDIR: the files there may hold the operator's edits (and API keys).
uninstall:  ## remove what `make install` put in DESTDIR/PREFIX, except the files in CONFDIR
	$(call msg,UNINSTALL,$(DESTDIR)$(PREFIX))
	$(Q)rm -f $(addprefix $(DESTDIR)$(SBINDIR)/,sluice sluiced sluice-l7) \
		$(addprefix $(DESTDIR)$(MANDIR)/man8/,$(notdir $(MAN8))) \
		$(addprefix $(DESTDIR)$(MANDIR)/man5/,$(notdir $(MAN5))) \
		$(DESTDIR)$(COMPLDIR)/sluice \
		$(addprefix $(DESTDIR)$(UNITDIR)/,$(notdir $(UNITS))) \
		$(addprefix $(DESTDIR)$(DOCDIR)/,$(notdir $(DOCS)))
	$(Q)rmdir $(DESTDIR)$(DOCDIR) 2>/dev/null || true
	$(Q)echo "  KEEP     $(DESTDIR)$(CONFDIR) (remove it by hand if it is no longer wanted)"

# The package is built from a copy of the tracked files (uncommitted edits
# included) in $(DEB_DIR), where the .deb and the build's files land: the
# tree itself is not touched. The copy's build is debian/rules' own: none of
# this make's variables (BUILD=...) leak into it.
deb:  ## build the Debian package (dpkg-buildpackage -us -uc -b) into build/deb/ (BUILD/deb/)
	$(Q)rm -rf $(DEB_DIR) && mkdir -p $(DEB_DIR)/src
	$(Q)if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then \
		git ls-files -z --cached --others --exclude-standard | \
			tar --null -T - --no-recursion --ignore-failed-read -cf - 2>/dev/null | \
			tar -xf - -C $(DEB_DIR)/src; \
	else \
		tar -cf - --exclude='./build' --exclude='./build-*' . | tar -xf - -C $(DEB_DIR)/src; \
	fi
	$(Q)cd $(DEB_DIR)/src && env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u BUILD -u VERSION \
		dpkg-buildpackage -us -uc -b
	$(Q)ls -1 $(DEB_DIR)/*.deb

# --- running ---------------------------------------------------------------
# Each group of suites can run alone: tests/run.sh BUILD FILTER runs the
# suites whose names contain FILTER, and fails when none ran. Without root
# only the pure unit tests and the fuzzer run (the others are named skipped).
PROGS_ALL := $(SLUICE) $(SLUICED) $(SLUICE_L7) $(MOCK_LLM) $(SLUICE_SAN) $(SLUICED_SAN) $(SLUICE_L7_SAN)

test: deps  ## run every test suite (needs root); ends with "N passed, N failed"
	$(Q)$(MAKE) --no-print-directory all $(SLUICE_SAN) $(SLUICED_SAN) $(SLUICE_L7_SAN) $(UNIT_SAN) $(FUZZ_L7)
	$(Q)tests/run.sh $(BUILD)

test-unit:  ## the unit tests, plain and sanitized (the bpf group needs root)
	$(Q)$(MAKE) --no-print-directory $(UNIT) $(UNIT_SAN)
	$(Q)tests/run.sh $(BUILD) unit

test-cli: deps  ## the CLI suites, tests/cli/ (needs root)
	$(Q)$(MAKE) --no-print-directory $(PROGS_ALL)
	$(Q)tests/run.sh $(BUILD) cli/

test-e2e: deps  ## the end-to-end suites, tests/e2e/ (needs root)
	$(Q)$(MAKE) --no-print-directory $(PROGS_ALL)
	$(Q)tests/run.sh $(BUILD) e2e/

test-fuzz:  ## the fuzzer suite: every seed once, then 30 s of libFuzzer (FUZZ_SECONDS=N to change)
	$(Q)$(MAKE) --no-print-directory $(FUZZ_L7)
	$(Q)tests/run.sh $(BUILD) fuzz

demo: deps  ## act 1: XDP stops a flood; act 2: API keys through sluice-l7, the abuser banned; act 3: three gateways share one limit through Redis (needs root)
	$(Q)$(MAKE) --no-print-directory $(SLUICE) $(SLUICED) $(SLUICE_L7) $(MOCK_LLM)
	$(Q)demo/demo.sh $(BUILD)

bench: deps  ## ns per packet against bare XDP and TC floors; a live flood against iptables hashlimit and nft meter; sluice-l7 vs direct vs nginx (wrk); sluiced's CPU with 64 global rules; see docs/benchmarks.md
	$(Q)$(MAKE) --no-print-directory $(BENCH) $(BENCH_LIVE) $(SLUICE) $(SLUICED) $(SLUICE_L7) $(MOCK_LLM)
	$(Q)$(BENCH)
	$(Q)$(BENCH_LIVE)
	$(Q)bench/bench_l7.sh $(BUILD)
	$(Q)bench/bench_fleet.sh $(BUILD)

fuzz: deps  ## fuzz sluice-l7's HTTP parser and token accounting for FUZZ_SECONDS (600)
	$(Q)$(MAKE) --no-print-directory $(FUZZ_L7)
	$(Q)mkdir -p $(BUILD)/fuzz-corpus
	$(Q)$(FUZZ_L7) -max_total_time=$(FUZZ_SECONDS) -max_len=8192 $(BUILD)/fuzz-corpus tests/fuzz/corpus

clean:  ## remove build/
	$(Q)rm -rf $(BUILD)

-include $(wildcard $(BUILD)/*.d $(BUILD)/*/*.d $(BUILD)/*/*/*.d $(BUILD)/*/*/*/*.d)
