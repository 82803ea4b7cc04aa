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
#   tests/progs/*.cc                  -> $(BUILD)/tests/progs/lib*.so (C++ libraries they dlopen)
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

# Every binary also looks in $ORIGIN/lib so the GPU bundle is self-contained. DT_RPATH (not
# RUNPATH) also serves the libraries' own dependencies (libunwind's liblzma, libspng's libz).
RPATH_BUNDLE := -Wl,-rpath,'$$ORIGIN/lib' -Wl,--disable-new-dtags

CPPFLAGS  += -D_GNU_SOURCE -Iinclude -I. -isystem $(CUDA_HOME)/include \
             -DVS_VERSION='"$(VERSION)"'
CFLAGS    ?= -O2 -g
# GCC 12's -O2 cost model rejects loops whose trip counts need an epilogue; the dynamic model
# vectorises the decoder's conv and attention loops (about 2x). No reduction is reordered.
# (clang, used by `make fuzz`, has no such option.)
VECT_COST := $(if $(findstring clang,$(CC)),,-fvect-cost-model=dynamic)
CFLAGS    += -std=c11 -Wall -Wextra -Werror -fPIC -pthread -MMD -MP $(VECT_COST) $(SANITIZE)
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
# C++ libraries the test programs dlopen (tests/progs/NAME.cc -> libNAME.so).
CXX_PROG_LIBS := $(patsubst tests/progs/%.cc,$(BUILD)/tests/progs/lib%.so,$(sort $(wildcard tests/progs/*.cc)))
GPUCHECKS   := $(patsubst tools/gpucheck/%.c,$(BUILD)/gpucheck/%,$(GPUCHECK_SRCS))
BENCHES     := $(patsubst bench/%.c,$(BUILD)/bench/%,$(BENCH_SRCS))
DEMOS       := $(patsubst tools/demo/%.c,$(BUILD)/demo/%,$(DEMO_SRCS))
PY_DEMOS    := $(patsubst tools/demo/%,$(BUILD)/demo/%,$(wildcard tools/demo/*.py))
FUZZERS     := $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz/%,$(sort $(wildcard tests/fuzz/fuzz_*.c)))

SYS_LIBS    := -ldl -lm -linih -ljansson -lspng
# The shim must bring nothing into its host but its hooks (docs/footprint.md): inih and jansson
# come from their static archives, libgcc's unwinder (call sites) from libgcc_eh.a instead of
# libgcc_s, all of their symbols hidden; only libc, libm and libdl stay. Debian's libjansson.a is
# PIC except its parser (load.o reads libc's stdin PC-relative, which no shared object can link):
# the shim links a copy with that symbol renamed to its own (interpose/borrow_reply.c).
JANSSON_A      := $(shell $(CC) -print-file-name=libjansson.a)
SHIM_JANSSON_A := $(BUILD)/shim-jansson/libjansson.a
SHIM_LIBS   := -static-libgcc -Wl,--exclude-libs,ALL -Wl,--as-needed \
               -Wl,-Bstatic -linih -Wl,-Bdynamic $(SHIM_JANSSON_A) -ldl -lm

.PHONY: soak soak-run tsan tsan-run
.PHONY: all sim shim cli kernels cuda tests progs gpuchecks benches demos test asan valgrind bench demo \
        deps clean gpu-bundle gpu-check fuzzers fuzz
.DEFAULT_GOAL := all
# Keep intermediate objects so incremental builds do not recompile them.
.SECONDARY:

all: sim shim cli kernels cuda tests progs gpuchecks benches demos
sim: $(SIM_LIB)
shim: $(SHIM_LIB)
cli: $(CLI)
kernels: $(KERNELS_A)
cuda: $(KCUDA_A)
tests: $(TESTS) $(FUZZERS)
progs: $(PROGS) $(CXX_PROG_LIBS)
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

# The shim and the benchmarks of its code are linked with link-time optimisation: the
# stream-ordered pair crosses files (arena, tcache, small, streams, arenas, query), and inlined
# across them it costs 13 - 26 % less (docs/arena.md). Their objects are fat (regular code as
# well), so the tests and the CLI link them as usual. Not in the sanitizer builds (they check
# behaviour, not speed, and keep per-file options such as the TSan --param below where they are
# set) nor with clang (`make fuzz`; its clang has no -ffat-lto-objects).
LTO := $(if $(SANITIZE)$(findstring clang,$(CC)),,-flto=auto)
$(call obj,$(SHIM_SRCS) $(ALLOC_SRCS) $(POLICY_SRCS)): CFLAGS += $(if $(LTO),$(LTO) -ffat-lto-objects)
# Only the cu*/cuda* hooks, dlsym and vramshim_* are exported (interpose/exports.map).
# nodelete: a dlclose must not unload the shim while its trace writer thread runs.
$(SHIM_LIB): $(call obj,$(SHIM_SRCS)) $(ALLOC_A) $(POLICY_A) interpose/exports.map $(SHIM_JANSSON_A)
	$(CC) -shared -Wl,--version-script=interpose/exports.map -Wl,-z,nodelete $(LDFLAGS) $(LTO) \
	  $(call obj,$(SHIM_SRCS)) $(ALLOC_A) $(POLICY_A) -o $@ $(SHIM_LIBS)
$(SHIM_JANSSON_A): $(JANSSON_A)
	@mkdir -p $(@D)
	objcopy --redefine-sym stdin=vs_jansson_stdin $< $@

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

$(BUILD)/tests/progs/lib%.so: tests/progs/%.cc
	@mkdir -p $(@D)
	$(CXX) -O2 -g -Wall -Wextra -Werror -fPIC -shared $(LDFLAGS) $< -o $@

# tests/stubs/*.c: small shared libraries the tests load in place of a driver.
STUBS := $(patsubst tests/stubs/%.c,$(BUILD)/tests/stubs/%.so,$(sort $(wildcard tests/stubs/*.c)))
progs: $(STUBS)
$(BUILD)/tests/stubs/%.so: $(BUILD)/obj/tests/stubs/%.o
	@mkdir -p $(@D)
	$(CC) -shared $(LDFLAGS) $^ -o $@

# Benchmarks link every layer and simcuda; mimalloc is the baseline some of them compare with.
$(BUILD)/bench/%: $(BUILD)/obj/bench/%.o $(ALLOC_A) $(POLICY_A) $(KERNELS_A) $(SIM_LIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) $(LTO) -Wl,-rpath,$(abspath $(BUILD))/sim $^ -o $@ -lmimalloc $(SYS_LIBS)

$(BUILD)/gpucheck/%: $(BUILD)/obj/tools/gpucheck/%.o
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) $^ -o $@ -ldl -lm

# The bundle's report writer reads and writes JSON.
$(BUILD)/gpucheck/report: $(BUILD)/obj/tools/gpucheck/report.o
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) $^ -o $@ -ljansson

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

# --- fuzzing ----------------------------------------------------------------------------------
# tests/fuzz/fuzz_NAME.c -> $(BUILD)/fuzz/fuzz_NAME. The normal and ASan builds give each harness
# tests/fuzz/replay.c as main, so `make test` replays the committed inputs through it;
# `make fuzz` builds them with libFuzzer (clang) into build-fuzz and runs each for FUZZ_SECONDS.
# Harnesses link every layer as one group: the CLI's objects (all but its main) and the
# interposer's go into archives of their own, so a harness pulls in only what it calls.
CLI_A        := $(BUILD)/libvs_cli.a
SHIM_A       := $(BUILD)/libvs_shim.a
FUZZ_MAIN    ?= $(BUILD)/obj/tests/fuzz/replay.o
FUZZ_SECONDS ?= 60
FUZZ_GROUP   := $(CLI_A) $(SHIM_A) $(ALLOC_A) $(POLICY_A) $(KERNELS_A)

$(CLI_A): $(call obj,$(filter-out tools/cli/main.c,$(CLI_SRCS)))
	@mkdir -p $(@D) && rm -f $@ && ar rcs $@ $^
# Without interpose/dlsym.c: the sanitizer runtimes call dlsym, and the shim's would replace
# libc's in every harness.
$(SHIM_A): $(call obj,$(filter-out interpose/dlsym.c,$(SHIM_SRCS)))
	@mkdir -p $(@D) && rm -f $@ && ar rcs $@ $^
$(BUILD)/fuzz/%: $(BUILD)/obj/tests/fuzz/%.o $(FUZZ_MAIN) $(FUZZ_GROUP)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) $(FUZZ_LDFLAGS) $< $(FUZZ_MAIN) -Wl,--start-group $(FUZZ_GROUP) -Wl,--end-group \
	  -o $@ $(SYS_LIBS)

fuzzers: $(FUZZERS)

fuzz: $(DEPS_STAMP)
	@tools/deps.sh fuzz
	@CFLAGS="-O1 -g" $(MAKE) --no-print-directory BUILD=build-fuzz CC=clang FUZZ_MAIN= \
	  FUZZ_LDFLAGS=-fsanitize=fuzzer -j$(NPROC) fuzzers \
	  SANITIZE="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
	@tests/fuzz/run.sh build-fuzz $(FUZZ_SECONDS)

test: $(DEPS_STAMP)
	@$(MAKE) --no-print-directory -j$(NPROC) all
	@tools/pyenv.sh ensure 3.11 3.12 || echo "make: no Python test environment: tests needing torch and diffusers will be skipped"
	@tests/run.sh $(BUILD) $(T)

# Sanitizer and valgrind variants build into their own folders so objects never mix.
# TSan resolves its interceptors through the shim's dlsym before it has initialised; a function
# entry hook there crashed every TSan program the shim was preloaded into (interpose/realdl.h).
ifneq ($(findstring thread,$(SANITIZE)),)
$(patsubst %,$(BUILD)/obj/interpose/%.o,dlsym realdl hooktab): CFLAGS += --param=tsan-instrument-func-entry-exit=0
# The same hook in the ifunc resolvers of target_clones functions runs before TSan's start, from
# the dynamic loader, and crashed every TSan program linking the kernels (the CLI).
$(patsubst %,$(BUILD)/obj/kernels/cpu/%.o,attention groupnorm rmsnorm): CFLAGS += --param=tsan-instrument-func-entry-exit=0
endif
ASAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined -DVS_CHECKED
# What the tests run, without the nvcc kernels and benchmarks (no test uses them; nvcc is not
# sanitized anyway). (-O1 would compile faster but GCC then warns differently: kept at -O2.)
ASAN_TARGETS := sim shim cli kernels tests progs gpuchecks demos
asan: $(DEPS_STAMP)
	@$(MAKE) --no-print-directory BUILD=build-asan SANITIZE="$(ASAN_FLAGS)" -j$(NPROC) $(ASAN_TARGETS)
	@VS_PYENV_SKIP="not run by make asan (make test runs them): Python and PyTorch are not instrumented" \
	  tests/run.sh build-asan $(T)

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
tsan-run: $(SIM_LIB) $(SHIM_LIB) $(SOAKS) $(PROGS) $(TSAN_TESTS) $(BUILD)/demo/llm_server $(CLI)
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

# Wheels for the decoder benchmark (70-decode.sh): diffusers and what it needs beyond a PyTorch
# install (numpy excluded), for one CPython (GPU_WHEELS_PY), manylinux x86-64; needs network.
GPU_WHEELS_PY ?= 3.12
.PHONY: gpu-wheels
gpu-wheels:
	rm -rf $(BUILD)/wheels && mkdir -p $(BUILD)/wheels
	pip download diffusers --only-binary=:all: --platform manylinux2014_x86_64 --implementation cp \
	  --python-version $(GPU_WHEELS_PY) -d $(BUILD)/wheels
	rm -f $(BUILD)/wheels/numpy-*.whl

# run.sh finds the GPU (nvidia-smi, else the driver) and reports "no NVIDIA GPU present" itself.
gpu-check: gpu-bundle
	@$(BUILD)/gpu-bundle/run.sh $(BUILD)/gpu-report

clean:
	rm -rf build build-asan build-tsan build-fuzz

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

# The version string is compiled in.
$(BUILD)/obj/tools/cli/main.o $(BUILD)/obj/interpose/version.o: VERSION

# --- libvramshim_vae.so: the decoder's own library (include/vramshim_vae.h) -----------------
# vae/*.c over the decoder archives, CPU and CUDA, with NVIDIA's static CUDA runtime inside
# (its symbols hidden by the version script; it dlopens libcuda.so.1 on first use), so the
# library needs no CUDA library to load; cuDNN and cuBLAS are dlopen'ed (docs/decoder.md).
VAE_SRCS := $(call src,vae)
VAE_LIB  := $(BUILD)/libvramshim_vae.so
CUDART_STATIC := $(CUDA_HOME)/lib64/libcudart_static.a
.PHONY: vae
vae: $(VAE_LIB)
all: vae
$(VAE_LIB): $(call obj,$(VAE_SRCS)) $(KCUDA_A) $(KERNELS_A) vae/exports.map
	$(CC) -shared -Wl,--version-script=vae/exports.map -Wl,--no-undefined -Wl,--exclude-libs,ALL \
	  $(LDFLAGS) $(call obj,$(VAE_SRCS)) -Wl,--start-group $(KCUDA_A) $(KERNELS_A) -Wl,--end-group \
	  $(CUDART_STATIC) -o $@ \
	  -ljansson -lm -ldl -lrt -lstdc++

# `vramshim decode --device cuda` dlopens the library beside the CLI; its test needs it built,
# and simcuda (a driver that loads but cannot serve the CUDA runtime).
$(BUILD)/tests/test_kernels_decode_cli: | $(VAE_LIB) $(SIM_LIB)

# test_vae_* link the library (by rpath) and the decoder archive (the library exports only
# the API, so its copies of the decoder do not clash).
$(BUILD)/tests/test_vae_%: $(BUILD)/obj/tests/test_vae_%.o $(VAE_LIB) $(KERNELS_A)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) $< $(KERNELS_A) -L$(BUILD) -Wl,-rpath,$(abspath $(BUILD)) -lvramshim_vae \
	  -o $@ -lcriterion $(SYS_LIBS)

# A program that sees the public header only (no -I. of the project, strict C99, C++ too) and
# links the library by rpath: proof that the header is self-contained.
VAE_HEADER_CHECK := $(BUILD)/vae/header_check
tests: $(VAE_HEADER_CHECK)
$(VAE_HEADER_CHECK): tests/vae/header_check.c include/vramshim_vae.h $(VAE_LIB)
	@mkdir -p $(@D)
	$(CC) -std=c99 -pedantic -Wall -Wextra -Werror -Iinclude $< -L$(BUILD) \
	  -Wl,-rpath,$(abspath $(BUILD)) -lvramshim_vae -o $@
	$(CXX) -x c++ -std=c++17 -Wall -Wextra -Werror -fsyntax-only -Iinclude $<

# --- the decoder's CUDA kernels on the CPU (kernels/cuda/emu/cuda_emu.h) ----------------------
# The same kernels/cuda/*.cu compiled as C++ against the emulation header, so test_cuda_emu_*
# compare every kernel with its C twin without a GPU.
KCUDA_EMU_A := $(BUILD)/libvs_kernels_cuda_emu.a
EMU_CXXFLAGS := -x c++ -std=c++17 -O2 -g -Wall -Wextra -Werror -fPIC -DVS_CUDA_EMU -D_GNU_SOURCE \
                -Iinclude -I. -MMD -MP $(SANITIZE)
$(BUILD)/emu/obj/%.o: kernels/cuda/%.cu kernels/cuda/emu/cuda_emu.h
	@mkdir -p $(@D)
	$(CXX) $(EMU_CXXFLAGS) -c $< -o $@
-include $(shell find $(BUILD)/emu -name '*.d' 2>/dev/null)
$(KCUDA_EMU_A): $(patsubst kernels/cuda/%.cu,$(BUILD)/emu/obj/%.o,$(CUDA_SRCS))
	@mkdir -p $(@D) && rm -f $@ && ar rcs $@ $^
$(BUILD)/tests/test_cuda_emu_%: $(BUILD)/obj/tests/test_cuda_emu_%.o $(KCUDA_EMU_A) $(KERNELS_A)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) $^ -o $@ -lcriterion -lstdc++ $(SYS_LIBS)

# The decoder's GPU check links the CUDA kernels (nvcc objects need the CUDA runtime; the
# bundle carries libcudart beside it, cuDNN and cuBLAS are dlopen'ed).
$(BUILD)/gpucheck/decode_check: $(BUILD)/obj/tools/gpucheck/decode_check.o $(KCUDA_A) $(KERNELS_A)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) $< -Wl,--start-group $(KCUDA_A) $(KERNELS_A) -Wl,--end-group -o $@ \
	  -L$(CUDA_HOME)/lib64 -lcudart -lstdc++ $(SYS_LIBS)

# --- make install PREFIX=DIR (default /usr/local; DESTDIR for staging) --------------------------
# PREFIX/lib/vramshim/{bin,python} keeps the layout `vramshim run` expects (the shim beside the
# CLI, python/ above it); PREFIX/bin/vramshim links to it. The decoder library, its header and
# vramshim_vae.pc go where linkers and pkg-config look.
PREFIX ?= /usr/local
INSTALL_ROOT = $(DESTDIR)$(PREFIX)
.PHONY: install
install: $(CLI) $(SHIM_LIB) $(VAE_LIB)
	install -d $(INSTALL_ROOT)/bin $(INSTALL_ROOT)/include $(INSTALL_ROOT)/lib/pkgconfig \
	  $(INSTALL_ROOT)/lib/vramshim/bin $(INSTALL_ROOT)/lib/vramshim/python/vramshim
	install -m 755 $(CLI) $(SHIM_LIB) $(INSTALL_ROOT)/lib/vramshim/bin/
	ln -sf ../lib/vramshim/bin/vramshim $(INSTALL_ROOT)/bin/vramshim
	install -m 755 $(VAE_LIB) $(INSTALL_ROOT)/lib/
	install -m 644 include/vramshim_vae.h $(INSTALL_ROOT)/include/
	install -m 644 python/sitecustomize.py $(INSTALL_ROOT)/lib/vramshim/python/
	install -m 644 python/vramshim/*.py $(INSTALL_ROOT)/lib/vramshim/python/vramshim/
	install -d $(INSTALL_ROOT)/lib/vramshim/comfyui/web
	install -m 644 integrations/comfyui/__init__.py $(INSTALL_ROOT)/lib/vramshim/comfyui/
	install -m 644 integrations/comfyui/web/vramshim.js $(INSTALL_ROOT)/lib/vramshim/comfyui/web/
	printf 'prefix=%s\nlibdir=$${prefix}/lib\nincludedir=$${prefix}/include\n\nName: vramshim_vae\nDescription: the tiled VAE decoder of vramshim\nVersion: %s\nLibs: -L$${libdir} -lvramshim_vae\nCflags: -I$${includedir}\n' \
	  '$(PREFIX)' '$(VERSION)' > $(INSTALL_ROOT)/lib/pkgconfig/vramshim_vae.pc
