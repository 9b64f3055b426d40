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
LDLIBS     := -lbpf -lelf -lz -lmnl

BPF_PROGS  := sluice_xdp sluice_tc floor
BPF_OBJS   := $(BPF_PROGS:%=$(BUILD)/%.bpf.o)
SKELS      := $(BPF_PROGS:%=$(BUILD)/%.skel.h)

LIB_SRCS   := $(wildcard user/lib/*.c)
CLI_SRCS   := $(wildcard user/cli/*.c)
DAEMON_SRCS := $(wildcard user/daemon/*.c)
UNIT_SRCS  := $(wildcard tests/unit/*.c)
BENCH_SRCS := tools/bench.c

# $(call objs,DIR,SRCS)
objs = $(patsubst %.c,$(1)/%.o,$(2))

LIB_OBJS       := $(call objs,$(BUILD),$(LIB_SRCS))
LIB_OBJS_SAN   := $(call objs,$(BUILD)/san,$(LIB_SRCS))

SLUICE         := $(BUILD)/sluice
SLUICE_SAN     := $(BUILD)/san/sluice
SLUICED        := $(BUILD)/sluiced
SLUICED_SAN    := $(BUILD)/san/sluiced
UNIT           := $(BUILD)/unit-tests
UNIT_SAN       := $(BUILD)/san/unit-tests
BENCH          := $(BUILD)/sluice-bench

.PHONY: all help deps demo test test-unit test-cli test-e2e bench clean vmlinux

all: $(SLUICE) $(SLUICED) $(UNIT) $(BENCH)  ## build everything (default)

help:  ## list the targets
	@echo "sluice make targets:"
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*##/\t/' | sort | \
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

# --- userspace -------------------------------------------------------------
# Every user object may include a skeleton, so skeletons come first.
$(BUILD)/%.o: %.c $(SKELS)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(USER_CFLAGS) -c $< -o $@

$(BUILD)/san/%.o: %.c $(SKELS)
	$(call msg,CC-SAN,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(USER_CFLAGS) $(SAN_FLAGS) -c $< -o $@

$(SLUICE): $(call objs,$(BUILD),$(CLI_SRCS)) $(LIB_OBJS)
	$(call msg,LD,$@)
	$(Q)$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(SLUICE_SAN): $(call objs,$(BUILD)/san,$(CLI_SRCS)) $(LIB_OBJS_SAN)
	$(call msg,LD-SAN,$@)
	$(Q)$(CC) $(CFLAGS) $(SAN_FLAGS) -o $@ $^ $(LDLIBS)

$(SLUICED): $(call objs,$(BUILD),$(DAEMON_SRCS)) $(LIB_OBJS)
	$(call msg,LD,$@)
	$(Q)$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(SLUICED_SAN): $(call objs,$(BUILD)/san,$(DAEMON_SRCS)) $(LIB_OBJS_SAN)
	$(call msg,LD-SAN,$@)
	$(Q)$(CC) $(CFLAGS) $(SAN_FLAGS) -o $@ $^ $(LDLIBS)

$(UNIT): $(call objs,$(BUILD),$(UNIT_SRCS)) $(LIB_OBJS)
	$(call msg,LD,$@)
	$(Q)$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(UNIT_SAN): $(call objs,$(BUILD)/san,$(UNIT_SRCS)) $(LIB_OBJS_SAN)
	$(call msg,LD-SAN,$@)
	$(Q)$(CC) $(CFLAGS) $(SAN_FLAGS) -o $@ $^ $(LDLIBS)

$(BENCH): $(call objs,$(BUILD),$(BENCH_SRCS)) $(LIB_OBJS)
	$(call msg,LD,$@)
	$(Q)$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD):
	$(Q)mkdir -p $@

# --- running ---------------------------------------------------------------
test: deps  ## run every test suite (needs root); ends with "N passed, N failed"
	$(Q)$(MAKE) --no-print-directory all $(SLUICE_SAN) $(SLUICED_SAN) $(UNIT_SAN)
	$(Q)tests/run.sh $(BUILD)

demo: deps  ## flood a namespace backend and show sluice stopping it (needs root)
	$(Q)$(MAKE) --no-print-directory $(SLUICE)
	$(Q)tools/demo.sh $(BUILD)

bench: deps  ## ns per packet against bare XDP and TC floors, see docs/benchmarks.md
	$(Q)$(MAKE) --no-print-directory $(BENCH)
	$(Q)$(BENCH)

clean:  ## remove build/
	$(Q)rm -rf $(BUILD)

-include $(wildcard $(BUILD)/*.d $(BUILD)/*/*.d $(BUILD)/*/*/*.d $(BUILD)/*/*/*/*.d)
