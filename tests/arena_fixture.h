/* Shared set-up of the arena tests: simcuda with a chosen capacity, the driver table filled from
 * it by dlopen + dlsym (as the shim fills it from the real driver), an arena on device 0, and a
 * log sink that keeps the arena's lines for assertions.
 *
 * Each criterion test runs in its own process, so SIMCUDA_* variables set by arena_fixture_start
 * take effect at that process's cuInit.
 */
#ifndef ARENA_FIXTURE_H
#define ARENA_FIXTURE_H

#include <criterion/criterion.h>
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "allocator/arena.h"
#include "allocator/log.h"
#include "tools/simcuda/simcuda.h"

#define MiB ((size_t)1 << 20)

static struct vs_driver fx_drv;
static CUcontext fx_ctx;
static CUdevice fx_dev;
static char fx_log[64][512];
static int fx_log_n;

static void fx_sink(const char *line)
{
    if (fx_log_n < 64)
        snprintf(fx_log[fx_log_n++], sizeof fx_log[0], "%s", line);
}

/* Number of captured log lines containing `needle`. */
static inline int fx_log_count(const char *needle)
{
    int n = 0;
    for (int i = 0; i < fx_log_n; i++)
        n += strstr(fx_log[i], needle) != NULL;
    return n;
}

static void *fx_resolve(const char *name, void *handle)
{
    return dlsym(handle, name);
}

/* Starts simcuda with `vram` bytes on device 0 (0: its default) and loads the driver table. */
static inline void arena_fixture_start(size_t vram)
{
    if (vram) {
        char v[32];
        snprintf(v, sizeof v, "%zu", vram);
        setenv("SIMCUDA_VRAM", v, 1);
    }
    cr_assert_eq(cuInit(0), CUDA_SUCCESS);
    cr_assert_eq(cuDeviceGet(&fx_dev, 0), CUDA_SUCCESS);
    cr_assert_eq(cuDevicePrimaryCtxRetain(&fx_ctx, fx_dev), CUDA_SUCCESS);
    cr_assert_eq(cuCtxSetCurrent(fx_ctx), CUDA_SUCCESS);
    void *h = dlopen(VS_BUILD_DIR "/sim/libcuda.so.1", RTLD_NOW | RTLD_NOLOAD);
    cr_assert_not_null(h, "simcuda not loaded: %s", dlerror());
    const char *missing = NULL;
    cr_assert_eq(vs_driver_load(&fx_drv, fx_resolve, h, &missing), 0, "simcuda lacks %s",
                 missing ? missing : "?");
    vs_log_set_sink(fx_sink);
}

static inline struct vs_arena *arena_new(size_t cache_max)
{
    struct vs_arena_options opt = {.cache_max = cache_max, .va_chunk = 0};
    struct vs_arena *a = NULL;
    cr_assert_eq(vs_arena_create(&fx_drv, fx_dev, fx_ctx, &opt, &a), CUDA_SUCCESS);
    return a;
}

/* Fails the test when one of the arena's internal invariants is broken (vs_arena_validate);
 * call between phases, with no thread allocating or freeing. */
#define fx_validate(a, phase)                                                        \
    do {                                                                             \
        char fx_why_[512];                                                           \
        const char *fx_bad_ = vs_arena_validate((a), fx_why_, sizeof fx_why_);        \
        cr_assert_null(fx_bad_, "arena invariant broken after %s: %s", (phase), fx_bad_); \
    } while (0)

/* Validates the arena one last time, then destroys it. */
static inline void fx_destroy(struct vs_arena *a)
{
    fx_validate(a, "the test");
    vs_arena_destroy(a);
}

static inline CUstream fx_stream(void)
{
    CUstream s;
    cr_assert_eq(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING), CUDA_SUCCESS);
    return s;
}

/* Fills [p, p+n) with a byte pattern derived from seed (the CPU can write simcuda memory). */
static inline void fx_fill(CUdeviceptr p, size_t n, unsigned seed)
{
    unsigned char *m = (unsigned char *)(uintptr_t)p;
    for (size_t i = 0; i < n; i += 4096)
        m[i] = (unsigned char)(seed * 131 + i / 4096);
    m[n - 1] = (unsigned char)(seed ^ 0x5a);
}

static inline bool fx_check(CUdeviceptr p, size_t n, unsigned seed)
{
    const unsigned char *m = (const unsigned char *)(uintptr_t)p;
    for (size_t i = 0; i < n; i += 4096)
        if (m[i] != (unsigned char)(seed * 131 + i / 4096) && !(i == n - 1))
            return false;
    return m[n - 1] == (unsigned char)(seed ^ 0x5a);
}

#endif
