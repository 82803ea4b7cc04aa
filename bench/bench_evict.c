/* Demote and promote throughput on simcuda against a plain memcpy of the same size in the same
 * run. A demote/promote is a device synchronisation, per-granule map/unmap calls and a copy, so
 * the ratio says what the bookkeeping costs on top of moving the bytes (on simcuda device and host
 * memory are both host RAM; on a GPU the copy runs at host-link speed, see
 * tools/gpucheck/checks/40-evict.sh). Prints throughput and ratios; exit status 0 unless
 * something failed to run.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "allocator/arena.h"
#include "allocator/evict.h"

#define MiB ((size_t)1 << 20)
#define REPS 5

static struct vs_driver drv;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void *resolve(const char *name, void *handle)
{
    return dlsym(handle, name);
}

static int cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

static double median(double *v)
{
    qsort(v, REPS, sizeof *v, cmp_double);
    return v[REPS / 2];
}

static bool is_block(const struct vs_block_info *info, void *ctx)
{
    return info->base == *(const CUdeviceptr *)ctx;
}

/* Median seconds of a memcpy of n bytes between two touched buffers. */
static double memcpy_seconds(size_t n)
{
    char *src = malloc(n), *dst = malloc(n);
    if (!src || !dst)
        return -1;
    memset(src, 0x3c, n);
    memset(dst, 0, n);
    double t[REPS];
    for (int r = 0; r < REPS; r++) {
        double t0 = now_s();
        memcpy(dst, src, n);
        t[r] = now_s() - t0;
        src[r] ^= dst[n - 1 - r]; /* keeps the copy observable */
    }
    free(src);
    free(dst);
    return median(t);
}

static int bench_size(struct vs_arena *a, size_t n)
{
    CUdeviceptr p;
    if (vs_arena_alloc(a, n, &p) != CUDA_SUCCESS)
        return -1;
    memset((void *)(uintptr_t)p, 0x5a, n); /* simcuda copies unwritten pages for free */
    double down[REPS], up[REPS];
    for (int r = 0; r < REPS; r++) {
        size_t moved = 0;
        double t0 = now_s();
        if (vs_arena_demote_if(a, is_block, &p, &moved) != CUDA_SUCCESS || moved < n)
            return -1;
        double t1 = now_s();
        if (vs_arena_promote_if(a, is_block, &p, &moved) != CUDA_SUCCESS || moved < n)
            return -1;
        down[r] = t1 - t0;
        up[r] = now_s() - t1;
    }
    double base = memcpy_seconds(n), d = median(down), u = median(up);
    if (base <= 0)
        return -1;
    printf("%8zu MiB  demote %7.2f GB/s  promote %7.2f GB/s  memcpy %7.2f GB/s  "
           "demote/memcpy %.2fx  promote/memcpy %.2fx\n",
           n / MiB, n / d / 1e9, n / u / 1e9, n / base / 1e9, base / d, base / u);
    return vs_arena_free(a, p) == CUDA_SUCCESS ? 0 : -1;
}

int main(void)
{
    setenv("SIMCUDA_VRAM", "1GiB", 0);
    CUdevice dev;
    CUcontext ctx;
    if (cuInit(0) || cuDeviceGet(&dev, 0) || cuDevicePrimaryCtxRetain(&ctx, dev) ||
        cuCtxSetCurrent(ctx)) {
        fprintf(stderr, "bench_evict: no simcuda device\n");
        return 1;
    }
    void *h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD);
    const char *missing = NULL;
    if (!h || vs_driver_load(&drv, resolve, h, &missing) != 0) {
        fprintf(stderr, "bench_evict: driver table incomplete (%s)\n", missing ? missing : "?");
        return 1;
    }
    struct vs_arena_options opt = {.cache_max = SIZE_MAX};
    struct vs_arena *a;
    if (vs_arena_create(&drv, dev, ctx, &opt, &a) != CUDA_SUCCESS)
        return 1;
    printf("demote/promote of one block vs memcpy of the same size (median of %d; ratio > 1: "
           "faster than memcpy)\n",
           REPS);
    static const size_t sizes[] = {8 * MiB, 64 * MiB, 256 * MiB};
    int rc = 0;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0] && rc == 0; i++)
        rc = bench_size(a, sizes[i]);
    vs_arena_destroy(a);
    if (rc)
        fprintf(stderr, "bench_evict: a demote or promote failed\n");
    return rc ? 1 : 0;
}
