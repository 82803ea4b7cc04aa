# vramshim build. GNU make only. Everything lands in $(BUILD) (default build/).
#
# Components are found by directory, so adding a file needs no edit here:
#   tools/simcuda/*.c                 -> $(BUILD)/sim/libcuda.so.1   (simulated driver)
#   interpose/ allocator/ policy/     -> $(BUILD)/libvramshim.so     (the preloaded shim)
#   kernels/*.c kernels/cpu/*.c       -> $(BUILD)/libvs_kernels.a    (decoder, C reference)
#   kernels/cuda/*.cu                 -> $(BUILD)/libvs_kernels_cuda.a (nvcc, fat binary)
#   tools/cli/ tools/trace/ tools/workloads/ -> $(BUILD)/vramshim (CLI)
#   tests/test_*.c                    -> $(BUILD)/tests/test_*       (one criterion binary each)
#   tests/progs/*.c                   -> $(BUILD)/tests/progs/*      (programs the tests run)
#   tools/gpucheck/*.c                -> $(BUILD)/gpucheck/*         (real-GPU check programs)
#   bench/*.c                         -> $(BUILD)/bench/*            (run by `make bench`)
#   tools/demo/*.c + tools/demo/lib/  -> $(BUILD)/demo/*             (`vramshim demo` programs)
#
# Test binaries link by prefix: test_sim_* only simcuda, test_kernels_* only the decoder,
# every other test the allocator, policy and decoder archives plus simcuda.

BUILD     ?= build
CC        ?= gcc
CUDA_HOME ?= $(shell tools/find-cuda.sh 2>/dev/null)
ifeq ($(CUDA_HOME),)
  ifeq ($(filter clean deps,$(MAKECMDGOALS)),)
    $(error CUDA toolkit not found (looked at $$CUDA_HOME, /usr/local/cuda, nvcc on PATH); install it or set CUDA_HOME)
  endif
endif
NVCC      := $(CUDA_HOME)/bin/nvcc
SANITIZE  ?=
NPROC     := $(shell nproc 2>/dev/null || echo 2)

# Every binary also looks in $ORIGIN/lib so the GPU bundle is self-contained.
RPATH_BUNDLE := -Wl,-rpath,'$$ORIGIN/lib'

CPPFLAGS  += -D_GNU_SOURCE -Iinclude -I. -isystem $(CUDA_HOME)/include \
             -DVS_VERSION='"$(VERSION)"'
CFLAGS    ?= -O2 -g
# GCC 12's -O2 cost model rejects loops whose trip counts need an epilogue; the dynamic model
# vectorises the decoder's conv and attention loops (about 2x). No reduction is reordered.
CFLAGS    += -std=c11 -Wall -Wextra -Werror -fPIC -pthread -MMD -MP -fvect-cost-model=dynamic $(SANITIZE)
LDFLAGS   += -pthread $(SANITIZE) $(RPATH_BUNDLE)
VERSION   := $(shell cat VERSION 2>/dev/null || echo 0.0.0)

CUDA_ARCHS := 80 86 89 90 120
NVCCFLAGS  := -std=c++17 -O3 -Xcompiler -fPIC,-Wall,-Wextra,-Werror --Werror all-warnings \
              -Iinclude -I. $(foreach a,$(CUDA_ARCHS),-gencode arch=compute_$(a),code=sm_$(a)) \
              -gencode arch=compute_120,code=compute_120

src = $(sort $(wildcard $(addsuffix /*.c,$(1))))
obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))

SIM_SRCS      := $(call src,tools/simcuda)
SHIM_SRCS     := $(call src,interpose)
ALLOC_SRCS    := $(call src,allocator)
POLICY_SRCS   := $(call src,policy)
KERNEL_SRCS   := $(call src,kernels kernels/cpu)
CUDA_SRCS     := $(sort $(wildcard kernels/cuda/*.cu))
CLI_SRCS      := $(call src,tools/cli tools/trace tools/workloads)
TEST_SRCS     := $(sort $(wildcard tests/test_*.c))
PROG_SRCS     := $(sort $(wildcard tests/progs/*.c))
GPUCHECK_SRCS := $(sort $(wildcard tools/gpucheck/*.c))
BENCH_SRCS    := $(sort $(wildcard bench/*.c))
DEMO_SRCS     := $(sort $(wildcard tools/demo/*.c))
DEMO_LIB_SRCS := $(call src,tools/demo/lib)

SIM_LIB     := $(BUILD)/sim/libcuda.so.1
SHIM_LIB    := $(BUILD)/libvramshim.so
ALLOC_A     := $(BUILD)/libvs_alloc.a
POLICY_A    := $(BUILD)/libvs_policy.a
KERNELS_A   := $(BUILD)/libvs_kernels.a
KCUDA_A     := $(BUILD)/libvs_kernels_cuda.a
CLI         := $(BUILD)/vramshim
TESTS       := $(patsubst tests/%.c,$(BUILD)/tests/%,$(TEST_SRCS))
PROGS       := $(patsubst tests/progs/%.c,$(BUILD)/tests/progs/%,$(PROG_SRCS))
GPUCHECKS   := $(patsubst tools/gpucheck/%.c,$(BUILD)/gpucheck/%,$(GPUCHECK_SRCS))
BENCHES     := $(patsubst bench/%.c,$(BUILD)/bench/%,$(BENCH_SRCS))
DEMOS       := $(patsubst tools/demo/%.c,$(BUILD)/demo/%,$(DEMO_SRCS))
PY_DEMOS    := $(patsubst tools/demo/%,$(BUILD)/demo/%,$(wildcard tools/demo/*.py))

SYS_LIBS    := -ldl -lm -lunwind -linih -ljansson -lspng

.PHONY: soak soak-run tsan tsan-run
.PHONY: all sim shim cli kernels cuda tests progs gpuchecks benches demos test asan valgrind bench demo \
        deps clean gpu-bundle gpu-check
.DEFAULT_GOAL := all
# Keep intermediate objects so incremental builds do not recompile them.
.SECONDARY:

all: sim shim cli kernels cuda tests progs gpuchecks benches demos
sim: $(SIM_LIB)
shim: $(SHIM_LIB)
cli: $(CLI)
kernels: $(KERNELS_A)
cuda: $(KCUDA_A)
tests: $(TESTS)
progs: $(PROGS)
gpuchecks: $(GPUCHECKS)
benches: $(BENCHES)
demos: $(DEMOS) $(PY_DEMOS)

# --- dependencies -------------------------------------------------------------------------
# Stamp so `make test`/`make demo` install packages only when something is missing.
DEPS_STAMP := $(BUILD)/.deps-ok
deps:
	@tools/deps.sh
$(DEPS_STAMP): tools/deps.sh
	@tools/deps.sh
	@mkdir -p $(@D) && touch $@

# --- compilation ----------------------------------------------------------------------------
$(BUILD)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

$(BUILD)/obj/%.o: %.cu
	@mkdir -p $(@D)
	$(NVCC) $(NVCCFLAGS) -MMD -MP -c $< -o $@

# simcuda includes nothing of the project and binds its own symbols internally (-Bsymbolic),
# so a preloaded shim sees only the calls the program made.
$(SIM_LIB): $(call obj,$(SIM_SRCS))
	@mkdir -p $(@D)
	$(CC) -shared -Wl,-soname,libcuda.so.1 -Wl,-Bsymbolic -Wl,--no-undefined $(LDFLAGS) $^ -o $@ -lm
	@ln -sf libcuda.so.1 $(@D)/libcuda.so

$(ALLOC_A): $(call obj,$(ALLOC_SRCS))
	@mkdir -p $(@D) && rm -f $@ && ar rcs $@ $^
$(POLICY_A): $(call obj,$(POLICY_SRCS))
	@mkdir -p $(@D) && rm -f $@ && ar rcs $@ $^
$(KERNELS_A): $(call obj,$(KERNEL_SRCS))
	@mkdir -p $(@D) && rm -f $@ && ar rcs $@ $^
$(KCUDA_A): $(patsubst %.cu,$(BUILD)/obj/%.o,$(CUDA_SRCS))
	@mkdir -p $(@D) && rm -f $@ && ar rcs $@ $^

# Only the cu*/cuda* hooks, dlsym and vramshim_* are exported (interpose/exports.map).
# nodelete: a dlclose must not unload the shim while its trace writer thread runs.
$(SHIM_LIB): $(call obj,$(SHIM_SRCS)) $(ALLOC_A) $(POLICY_A) interpose/exports.map
	$(CC) -shared -Wl,--version-script=interpose/exports.map -Wl,-z,nodelete $(LDFLAGS) \
	  $(call obj,$(SHIM_SRCS)) $(ALLOC_A) $(POLICY_A) -o $@ $(SYS_LIBS)

$(CLI): $(call obj,$(CLI_SRCS)) $(ALLOC_A) $(POLICY_A) $(KERNELS_A)
	$(CC) $(LDFLAGS) $(call obj,$(CLI_SRCS)) $(ALLOC_A) $(POLICY_A) $(KERNELS_A) -o $@ $(SYS_LIBS)

# --- tests ------------------------------------------------------------------------------------
test_deps = $(if $(filter test_sim_%,$(1)),$(SIM_LIB),$(if $(filter test_kernels_%,$(1)),$(KERNELS_A),$(ALLOC_A) $(POLICY_A) $(KERNELS_A) $(SIM_LIB)))

TEST_CPPFLAGS = -DVS_BUILD_DIR='"$(abspath $(BUILD))"' -DVS_SOURCE_DIR='"$(CURDIR)"'

$(BUILD)/obj/tests/%.o: CPPFLAGS += $(TEST_CPPFLAGS)
$(BUILD)/obj/tests/progs/%.o: CPPFLAGS += $(TEST_CPPFLAGS)
$(BUILD)/obj/bench/%.o: CPPFLAGS += $(TEST_CPPFLAGS)

.SECONDEXPANSION:
$(BUILD)/tests/test_%: $(BUILD)/obj/tests/test_%.o $$(call test_deps,test_$$*)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -Wl,-rpath,$(abspath $(BUILD))/sim $^ -o $@ -lcriterion $(SYS_LIBS)

# Programs named *_linked link libcuda.so.1 directly (found at run time via LD_LIBRARY_PATH);
# the others reach the driver only through dlopen, as cudart does.
# (The pattern sits in a variable: a literal % in a pattern rule's prerequisites is the stem.)
LINKED_PROG := %_linked
$(BUILD)/tests/progs/%: $(BUILD)/obj/tests/progs/%.o $$(if $$(filter $$(LINKED_PROG),$$*),$(SIM_LIB))
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) $^ -o $@ -ldl -lm

# Benchmarks link every layer and simcuda; mimalloc is the baseline some of them compare with.
$(BUILD)/bench/%: $(BUILD)/obj/bench/%.o $(ALLOC_A) $(POLICY_A) $(KERNELS_A) $(SIM_LIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -Wl,-rpath,$(abspath $(BUILD))/sim $^ -o $@ -lmimalloc $(SYS_LIBS)

$(BUILD)/gpucheck/%: $(BUILD)/obj/tools/gpucheck/%.o
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) $^ -o $@ -ldl -lm

# Check programs named arena_* and evict_* drive the allocator (and its policy rules) on the
# real driver, so they link them.
define alloc_check_rule
$(BUILD)/gpucheck/$(1)_%: $(BUILD)/obj/tools/gpucheck/$(1)_%.o $(ALLOC_A) $(POLICY_A)
	@mkdir -p $$(@D)
	$$(CC) $$(LDFLAGS) $$^ -o $$@ $$(SYS_LIBS)
endef
$(foreach p,arena evict,$(eval $(call alloc_check_rule,$(p))))

# Demo programs: the shim's policies match their phase functions in call stacks, so the symbols
# are exported (-rdynamic) and no phase ends in a tail call that would drop its frame.
$(BUILD)/obj/tools/demo/%.o: CFLAGS += -fno-optimize-sibling-calls
# Python demo generators run from beside the C ones (they start with a python3 shebang).
$(BUILD)/demo/%.py: tools/demo/%.py
	@mkdir -p $(@D)
	install -m 755 $< $@

$(BUILD)/demo/%: $(BUILD)/obj/tools/demo/%.o $(call obj,$(DEMO_LIB_SRCS))
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -rdynamic $^ -o $@ -ldl -lm

test: $(DEPS_STAMP)
	@$(MAKE) --no-print-directory -j$(NPROC) all
	@tests/run.sh $(BUILD) $(T)

# Sanitizer and valgrind variants build into their own folders so objects never mix.
# TSan resolves its interceptors through the shim's dlsym before it has initialised; a function
# entry hook there crashed every TSan program the shim was preloaded into (interpose/realdl.h).
ifneq ($(findstring thread,$(SANITIZE)),)
$(patsubst %,$(BUILD)/obj/interpose/%.o,dlsym realdl hooktab): CFLAGS += --param=tsan-instrument-func-entry-exit=0
endif
ASAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined -DVS_CHECKED
# What the tests run, without the nvcc kernels and benchmarks (no test uses them; nvcc is not
# sanitized anyway). (-O1 would compile faster but GCC then warns differently: kept at -O2.)
ASAN_TARGETS := sim shim cli kernels tests progs gpuchecks demos
asan: $(DEPS_STAMP)
	@$(MAKE) --no-print-directory BUILD=build-asan SANITIZE="$(ASAN_FLAGS)" -j$(NPROC) $(ASAN_TARGETS)
	@tests/run.sh build-asan $(T)

# Soak (docs/reliability.md): tests/soak/*.c, plain programs, under ASan with invariants fatal.
# Not part of `make test`: SOAK_SECONDS (default 600) of threads, SOAK_CYCLES demote/promote
# cycles, a fault at every driver call position. CI runs a short one (SOAK_SECONDS=30).
SOAK_SECONDS ?= 600
SOAK_CYCLES  ?= 10000
SOAKS := $(patsubst tests/soak/%.c,$(BUILD)/soak/%,$(sort $(wildcard tests/soak/*.c)))
tests: $(SOAKS)
$(BUILD)/soak/%: $(BUILD)/obj/tests/soak/%.o $(ALLOC_A) $(POLICY_A) $(SIM_LIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -Wl,-rpath,$(abspath $(BUILD))/sim $^ -o $@ $(SYS_LIBS)
soak-run: $(SOAKS)
	@for s in $(SOAKS); do echo "== $$s (SOAK_SECONDS=$(SOAK_SECONDS) SOAK_CYCLES=$(SOAK_CYCLES))"; \
	  ASAN_OPTIONS=quarantine_size_mb=8:detect_leaks=1 SOAK_SECONDS=$(SOAK_SECONDS) \
	  SOAK_CYCLES=$(SOAK_CYCLES) $$s || exit 1; done
soak: $(DEPS_STAMP)
	@$(MAKE) --no-print-directory BUILD=build-asan SANITIZE="$(ASAN_FLAGS)" -j$(NPROC) soak-run

# ThreadSanitizer (docs/reliability.md): simcuda, the shim, the allocator, the threaded tests
# (against tests/tsan/criterion/criterion.h: criterion cannot start under TSan), the threaded
# programs with the TSan shim preloaded, and a short soak; run by tests/tsan.sh.
TSAN_TESTS := $(patsubst %,$(BUILD)/tsan-tests/test_%,arena_threads evict_threads arena_streams)
$(BUILD)/tsan-tests/test_%: tests/test_%.c $(ALLOC_A) $(POLICY_A) $(KERNELS_A) $(SIM_LIB)
	@mkdir -p $(@D)
	$(CC) -Itests/tsan $(CPPFLAGS) $(TEST_CPPFLAGS) $(CFLAGS) $(LDFLAGS) \
	  -Wl,-rpath,$(abspath $(BUILD))/sim $< $(ALLOC_A) $(POLICY_A) $(KERNELS_A) $(SIM_LIB) -o $@ $(SYS_LIBS)
tsan-run: $(SIM_LIB) $(SHIM_LIB) $(SOAKS) $(PROGS) $(TSAN_TESTS)
	@tests/tsan.sh $(BUILD)
tsan: $(DEPS_STAMP)
	@$(MAKE) --no-print-directory BUILD=build-tsan SANITIZE="-fsanitize=thread -DVS_CHECKED" -j$(NPROC) tsan-run

valgrind: $(DEPS_STAMP)
	@$(MAKE) --no-print-directory -j$(NPROC) all
	@VS_TEST_WRAPPER=valgrind tests/run.sh $(BUILD) $(T)

bench: $(DEPS_STAMP)
	@$(MAKE) --no-print-directory -j$(NPROC) all
	@bench/run.sh $(BUILD)

demo: $(DEPS_STAMP)
	@$(MAKE) --no-print-directory -j$(NPROC) all
	@$(CLI) demo

# --- real-GPU bundle ------------------------------------------------------------------------
gpu-bundle: all
	@tools/gpu-bundle.sh $(BUILD) $(BUILD)/gpu-bundle

gpu-check: gpu-bundle
	@if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then \
	  $(BUILD)/gpu-bundle/run.sh $(BUILD)/gpu-report; \
	else echo "gpu-check: no NVIDIA GPU present (nvidia-smi sees none); nothing to check"; fi

clean:
	rm -rf build build-asan build-tsan

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

# The version string is compiled in.
$(BUILD)/obj/tools/cli/main.o $(BUILD)/obj/interpose/version.o: VERSION
