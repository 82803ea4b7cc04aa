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
# C++ libraries the test programs dlopen (tests/progs/NAME.cc -> libNAME.so).
CXX_PROG_LIBS := $(patsubst tests/progs/%.cc,$(BUILD)/tests/progs/lib%.so,$(sort $(wildcard tests/progs/*.cc)))
GPUCHECKS   := $(patsubst tools/gpucheck/%.c,$(BUILD)/gpucheck/%,$(GPUCHECK_SRCS))
BENCHES     := $(patsubst bench/%.c,$(BUILD)/bench/%,$(BENCH_SRCS))
DEMOS       := $(patsubst tools/demo/%.c,$(BUILD)/demo/%,$(DEMO_SRCS))
PY_DEMOS    := $(patsubst tools/demo/%,$(BUILD)/demo/%,$(wildcard tools/demo/*.py))

SYS_LIBS    := -ldl -lm -linih -ljansson -lspng
# The shim must bring nothing into its host but its hooks (docs/footprint.md): inih and jansson
# come from their static archives, libgcc's unwinder (call sites) from libgcc_eh.a instead of
# libgcc_s, all of their symbols hidden; only libc, libm and libdl stay. Debian's libjansson.a is
# PIC except its parser (load.o reaches stdin directly), so the shim must not call json_load*.
SHIM_LIBS   := -static-libgcc -Wl,--exclude-libs,ALL -Wl,--as-needed \
               -Wl,-Bstatic -linih -ljansson -Wl,-Bdynamic -ldl -lm

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

# Only the cu*/cuda* hooks, dlsym and vramshim_* are exported (interpose/exports.map).
# nodelete: a dlclose must not unload the shim while its trace writer thread runs.
$(SHIM_LIB): $(call obj,$(SHIM_SRCS)) $(ALLOC_A) $(POLICY_A) interpose/exports.map
	$(CC) -shared -Wl,--version-script=interpose/exports.map -Wl,-z,nodelete $(LDFLAGS) \
	  $(call obj,$(SHIM_SRCS)) $(ALLOC_A) $(POLICY_A) -o $@ $(SHIM_LIBS)

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
	$(CC) $(LDFLAGS) -Wl,-rpath,$(abspath $(BUILD))/sim $^ -o $@ -lmimalloc $(SYS_LIBS)

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

test: $(DEPS_STAMP)
	@$(MAKE) --no-print-directory -j$(NPROC) all
	@tools/pyenv.sh ensure 3.11 3.12 || echo "make: no Python test environment: tests needing torch and diffusers will be skipped"
	@tests/run.sh $(BUILD) $(T)

# Sanitizer and valgrind variants build into their own folders so objects never mix.
asan:
	@$(MAKE) --no-print-directory BUILD=build-asan SANITIZE="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" test

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

# run.sh finds the GPU (nvidia-smi, else the driver) and reports "no NVIDIA GPU present" itself.
gpu-check: gpu-bundle
	@$(BUILD)/gpu-bundle/run.sh $(BUILD)/gpu-report

clean:
	rm -rf build build-asan

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

# The version string is compiled in.
$(BUILD)/obj/tools/cli/main.o $(BUILD)/obj/interpose/version.o: VERSION

# --- libvramshim_vae.so: the decoder's own library (include/vramshim_vae.h) -----------------
# vae/*.c over the decoder archive; it links no CUDA library (they are dlopen'ed at run time).
VAE_SRCS := $(call src,vae)
VAE_LIB  := $(BUILD)/libvramshim_vae.so
.PHONY: vae
vae: $(VAE_LIB)
all: vae
$(VAE_LIB): $(call obj,$(VAE_SRCS)) $(KERNELS_A) vae/exports.map
	$(CC) -shared -Wl,--version-script=vae/exports.map -Wl,--no-undefined $(LDFLAGS) \
	  $(call obj,$(VAE_SRCS)) $(KERNELS_A) -o $@ -ljansson -lm -ldl

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
	$(CC) $(LDFLAGS) $^ -o $@ -L$(CUDA_HOME)/lib64 -lcudart -lstdc++ $(SYS_LIBS)

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
	printf 'prefix=%s\nlibdir=$${prefix}/lib\nincludedir=$${prefix}/include\n\nName: vramshim_vae\nDescription: the tiled VAE decoder of vramshim\nVersion: %s\nLibs: -L$${libdir} -lvramshim_vae\nCflags: -I$${includedir}\n' \
	  '$(PREFIX)' '$(VERSION)' > $(INSTALL_ROOT)/lib/pkgconfig/vramshim_vae.pc
