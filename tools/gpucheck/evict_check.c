/* Real-GPU check of eviction without the hooks: fills the allocator's driver table from
 * libcuda.so.1 (dlopen, so simcuda serves it when LD_LIBRARY_PATH points there), and on device 0
 *  - demotes a block holding random data: the device memory goes back to the driver, the
 *    address and the contents stay (read back with cuMemcpyDtoH while demoted), a write through
 *    the driver while demoted lands, and a promote brings everything back;
 *  - times demote and promote of the block (best of 3, host memory reused from the demote before)
 *    against cuMemcpyDtoH / cuMemcpyHtoD of the same size into page-locked memory, same run
 *    (issue 17's target: at least 0.8x), and the first demote, which creates its host memory.
 * Prints one JSON object of figures on stdout. Exit status 0 when all held, 1 when something did
 * not, 3 when the driver cannot map host-NUMA memory (eviction off: the check is skipped).
 */
#include <dlfcn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "allocator/arena.h"
#include "allocator/evict.h"

#define MiB ((size_t)1 << 20)

static struct vs_driver drv;
static struct {
    CUresult (*cuMemcpyHtoD_v2)(CUdeviceptr, const void *, size_t);
    CUresult (*cuMemcpyDtoH_v2)(void *, CUdeviceptr, size_t);
    CUresult (*cuMemHostAlloc)(void **, size_t, unsigned);
    CUresult (*cuMemFreeHost)(void *);
} x;

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

static bool is_block(const struct vs_block_info *info, void *ctx)
{
    return info->base == *(const CUdeviceptr *)ctx;
}

static void fill(unsigned char *m, size_t n, uint64_t s)
{
    for (size_t i = 0; i < n; i += 8) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        memcpy(m + i, &s, n - i < 8 ? n - i : 8);
    }
}

static size_t device_free(void)
{
    size_t f = 0, t = 0;
    drv.cuMemGetInfo_v2(&f, &t);
    return f;
}

/* Best of 3 seconds of a synchronous copy of n bytes between p and buf, or -1 on failure. */
static double best_copy_seconds(bool to_host, CUdeviceptr p, unsigned char *buf, size_t n)
{
    double best = -1;
    for (int r = 0; r < 3; r++) {
        double t0 = now_s();
        CUresult err = to_host ? x.cuMemcpyDtoH_v2(buf, p, n) : x.cuMemcpyHtoD_v2(p, buf, n);
        if (err != CUDA_SUCCESS)
            return -1;
        double d = now_s() - t0;
        best = best < 0 || d < best ? d : best;
    }
    return best;
}

static CUresult round_trip(struct vs_arena *a, CUdeviceptr p, double *down, double *up)
{
    double t0 = now_s();
    CUresult err = vs_arena_demote_if(a, is_block, &p, NULL);
    double t1 = now_s();
    if (err == CUDA_SUCCESS)
        err = vs_arena_promote_if(a, is_block, &p, NULL);
    *down = t1 - t0;
    *up = now_s() - t1;
    return err;
}

int main(void)
{
    void *lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_GLOBAL);
    const char *missing = NULL;
    if (!lib || vs_driver_load(&drv, resolve, lib, &missing) != 0) {
        fprintf(stderr, "evict_check: driver table incomplete (%s)\n", missing ? missing : "?");
        return 1;
    }
    *(void **)&x.cuMemcpyHtoD_v2 = dlsym(lib, "cuMemcpyHtoD_v2");
    *(void **)&x.cuMemcpyDtoH_v2 = dlsym(lib, "cuMemcpyDtoH_v2");
    *(void **)&x.cuMemHostAlloc = dlsym(lib, "cuMemHostAlloc");
    *(void **)&x.cuMemFreeHost = dlsym(lib, "cuMemFreeHost");
    CUdevice dev;
    CUcontext ctx;
    size_t total = 0;
    if (!x.cuMemcpyHtoD_v2 || !x.cuMemcpyDtoH_v2 || !x.cuMemHostAlloc || !x.cuMemFreeHost ||
        drv.cuInit(0) || drv.cuDeviceGet(&dev, 0) || drv.cuDevicePrimaryCtxRetain(&ctx, dev) ||
        drv.cuCtxSetCurrent(ctx) || drv.cuDeviceTotalMem_v2(&total, dev)) {
        fprintf(stderr, "evict_check: cannot set up device 0\n");
        return 1;
    }
    /* 1 GiB, or an eighth of a smaller device; no cache limit, so that host memory is kept for
     * the next demote as by default (freed device granules are trimmed by hand below). */
    size_t n = total / 8 < 1024 * MiB ? total / 8 / (2 * MiB) * (2 * MiB) : 1024 * MiB;
    struct vs_arena_options opt = {.cache_max = SIZE_MAX};
    struct vs_arena *a;
    unsigned char *want, *got;
    CUdeviceptr p;
    if (vs_arena_create(&drv, dev, ctx, &opt, &a) != CUDA_SUCCESS ||
        vs_arena_alloc(a, n, &p) != CUDA_SUCCESS ||
        x.cuMemHostAlloc((void **)&want, n, 0) != CUDA_SUCCESS ||
        x.cuMemHostAlloc((void **)&got, n, 0) != CUDA_SUCCESS) {
        fprintf(stderr, "evict_check: cannot allocate %zu MiB\n", n / MiB);
        return 1;
    }
    fill(want, n, 0x2545f4914f6cdd1dull);
    if (x.cuMemcpyHtoD_v2(p, want, n) != CUDA_SUCCESS)
        return 1;

    size_t free0 = device_free(), moved = 0;
    double t0 = now_s();
    CUresult err = vs_arena_demote_if(a, is_block, &p, &moved);
    double first = now_s() - t0;
    if (err == CUDA_ERROR_NOT_SUPPORTED) {
        printf("{\"eviction\":\"off\"}\n");
        return 3;
    }
    vs_arena_trim(a, 0); /* the freed device granules go back to the driver */
    size_t freed = device_free() - free0;
    struct vs_block_info info;
    bool address_kept = vs_arena_block_info(a, p, &info) == CUDA_SUCCESS && info.base == p &&
                        vs_arena_block_demoted_bytes(a, p) == n;
    bool demoted_ok = err == CUDA_SUCCESS && moved == n &&
                      x.cuMemcpyDtoH_v2(got, p, n) == CUDA_SUCCESS && !memcmp(got, want, n);
    /* A write through the device address while demoted lands in the host backing. */
    fill(want + n / 2, MiB, 99);
    bool write_ok = x.cuMemcpyHtoD_v2(p + n / 2, want + n / 2, MiB) == CUDA_SUCCESS;
    bool promoted_ok = vs_arena_promote_if(a, is_block, &p, &moved) == CUDA_SUCCESS &&
                       vs_arena_block_demoted_bytes(a, p) == 0 &&
                       x.cuMemcpyDtoH_v2(got, p, n) == CUDA_SUCCESS && !memcmp(got, want, n);

    double down = -1, up = -1;
    for (int r = 0; r < 3; r++) {
        double d, u;
        if (round_trip(a, p, &d, &u) != CUDA_SUCCESS) {
            down = up = -1;
            break;
        }
        down = down < 0 || d < down ? d : down;
        up = up < 0 || u < up ? u : up;
    }
    double dtoh = best_copy_seconds(true, p, got, n), htod = best_copy_seconds(false, p, got, n);
    bool ok = address_kept && demoted_ok && write_ok && promoted_ok && freed + 2 * MiB >= n &&
              down > 0 && up > 0 && dtoh > 0 && htod > 0;
    printf("{\"size_mib\":%zu,\"freed_mib\":%zu,\"address_kept\":%s,\"contents_demoted\":%s,"
           "\"write_while_demoted\":%s,\"contents_promoted\":%s,\"demote_gbps\":%.2f,"
           "\"promote_gbps\":%.2f,\"dtoh_gbps\":%.2f,\"htod_gbps\":%.2f,"
           "\"demote_vs_dtoh\":%.2f,\"promote_vs_htod\":%.2f,\"first_demote_gbps\":%.2f,"
           "\"first_demote_vs_dtoh\":%.2f}\n",
           n / MiB, freed / MiB, address_kept ? "true" : "false", demoted_ok ? "true" : "false",
           write_ok ? "true" : "false", promoted_ok ? "true" : "false", n / down / 1e9,
           n / up / 1e9, n / dtoh / 1e9, n / htod / 1e9, dtoh / down, htod / up,
           n / first / 1e9, dtoh / first);
    x.cuMemFreeHost(want);
    x.cuMemFreeHost(got);
    vs_arena_destroy(a);
    return ok ? 0 : 1;
}
