/* Demote and promote throughput on simcuda against a plain memcpy of the same size and against
 * simcuda's own device-to-device cuMemcpy of the same size, in the same run, with the driver calls
 * each makes per GiB moved. A demote/promote is a device synchronisation, a few map/unmap calls
 * per run of adjacent granules and a copy, so the ratios say what the bookkeeping costs on top of
 * moving the bytes (on simcuda device and host memory are both host RAM, and its copies go
 * through the kernel twice: the copy ratio is the one bookkeeping alone decides; on a GPU the
 * copy runs at host-link speed, see tools/gpucheck/checks/40-evict.sh). Prints throughput and
 * ratios, and whether demote and promote reach the target of 0.5x memcpy; times are CPU
 * time of the process (see now_s). Exit status 0 unless something failed to run.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "allocator/arena.h"
#include "allocator/evict.h"
#include "tools/simcuda/simcuda.h"

#define MiB ((size_t)1 << 20)
#define REPS 5

static struct vs_driver drv;

/* CPU seconds of the whole process (simcuda runs copies on its stream threads): on a shared,
 * loaded machine wall time mostly measures the scheduler. */
static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
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

/* Median seconds of simcuda's cuMemcpyDtoD of n bytes between two written blocks of the arena. */
static double device_copy_seconds(struct vs_arena *a, CUdeviceptr src, size_t n)
{
    CUdeviceptr dst;
    if (vs_arena_alloc(a, n, &dst) != CUDA_SUCCESS)
        return -1;
    memset((void *)(uintptr_t)dst, 0, n);
    double t[REPS];
    bool ok = true;
    for (int r = 0; r < REPS && ok; r++) {
        double t0 = now_s();
        ok = cuMemcpyDtoD_v2(dst, src, n) == CUDA_SUCCESS;
        t[r] = now_s() - t0;
    }
    double s = ok ? median(t) : -1;
    return vs_arena_free(a, dst) == CUDA_SUCCESS ? s : -1;
}

struct figures {
    double down, up, memcpy, copy;
    double down_calls, up_calls; /* driver calls per GiB moved */
};

static int bench_size(struct vs_arena *a, size_t n, struct figures *f)
{
    CUdeviceptr p;
    if (vs_arena_alloc(a, n, &p) != CUDA_SUCCESS)
        return -1;
    memset((void *)(uintptr_t)p, 0x5a, n); /* simcuda copies unwritten pages for free */
    double down[REPS], up[REPS];
    unsigned long down_calls = 0, up_calls = 0;
    for (int r = 0; r < REPS; r++) {
        size_t moved = 0;
        unsigned long c0 = simcuda_call_total();
        double t0 = now_s();
        if (vs_arena_demote_if(a, is_block, &p, &moved) != CUDA_SUCCESS || moved < n)
            return -1;
        double t1 = now_s();
        unsigned long c1 = simcuda_call_total();
        if (vs_arena_promote_if(a, is_block, &p, &moved) != CUDA_SUCCESS || moved < n)
            return -1;
        down[r] = t1 - t0;
        up[r] = now_s() - t1;
        down_calls += c1 - c0;
        up_calls += simcuda_call_total() - c1;
    }
    double gib = (double)REPS * (double)n / (double)(1 << 30);
    *f = (struct figures){median(down), median(up), memcpy_seconds(n),
                          device_copy_seconds(a, p, n), down_calls / gib, up_calls / gib};
    if (f->memcpy <= 0 || f->copy <= 0)
        return -1;
    printf("%8zu MiB  demote %6.2f GB/s %6.0f calls/GiB  promote %6.2f GB/s %6.0f calls/GiB  "
           "memcpy %6.2f GB/s  simcuda DtoD %6.2f GB/s\n"
           "              demote/memcpy %.2fx  promote/memcpy %.2fx  "
           "demote/DtoD %.2fx  promote/DtoD %.2fx\n",
           n / MiB, n / f->down / 1e9, f->down_calls, n / f->up / 1e9, f->up_calls,
           n / f->memcpy / 1e9, n / f->copy / 1e9, f->memcpy / f->down, f->memcpy / f->up,
           f->copy / f->down, f->copy / f->up);
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
    printf("demote/promote of one block vs memcpy and vs simcuda's cuMemcpyDtoD of the same size "
           "(GB per CPU second, median of %d; ratio > 1: faster than the baseline)\n",
           REPS);
    static const size_t sizes[] = {8 * MiB, 64 * MiB, 256 * MiB};
    int rc = 0;
    double worst = -1;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0] && rc == 0; i++) {
        struct figures f;
        rc = bench_size(a, sizes[i], &f);
        double r = f.memcpy / (f.down > f.up ? f.down : f.up);
        if (rc == 0 && sizes[i] >= 64 * MiB && (worst < 0 || r < worst))
            worst = r;
    }
    if (rc == 0)
        printf("  slower of demote and promote / memcpy, 64 MiB and up: %.2fx  (target >= 0.5x: "
               "%s)\n",
               worst, worst >= 0.5 ? "met" : "MISSED");
    vs_arena_destroy(a);
    if (rc)
        fprintf(stderr, "bench_evict: a demote or promote failed\n");
    return rc ? 1 : 0;
}
