/* Real-GPU check of the arena without the hooks: fills the allocator's driver table from
 * libcuda.so.1 (dlopen, as cudart does, so simcuda serves it when LD_LIBRARY_PATH points there),
 * creates the arena of device 0 and
 *  - round-trips data through arena blocks (a size-class object, a large block, and a block
 *    stitched from scattered free granules, with the surviving blocks checked after it);
 *  - times the stream-ordered alloc+free pair against the driver's cuMemAllocAsync /
 *    cuMemFreeAsync, and the synchronous pair against cuMemAlloc / cuMemFree, same sizes, same
 *    stream, same run; the stream-ordered pairs also for tiny sizes (64 B to 4 KB), and with 8
 *    threads, each on a stream of its own and all on one shared stream, against 1 thread (CPU
 *    time per pair, as bench/bench_arena.c: the figures of issue 17's table, on a GPU).
 * Prints one JSON object of figures on stdout; exit status 0 when everything ran and every
 * round trip matched. `--quick` times 1/100 of the pairs: for runs under compute-sanitizer,
 * where what counts is that every driver call is valid, not the timing.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "allocator/arena.h"

#define MiB ((size_t)1 << 20)
#define WINDOW 64
#define THREADS 8
static const size_t mix_wide[] = {64,    200,   512,   1000,   2048,   4000,   8192,   12000,
                                  16384, 30000, 65536, 100000, 131072, 200000, 250000, 777};
static const size_t mix_tiny[] = {64,  96,  128, 200,  256,  384,  512,  640,
                                  777, 1000, 1500, 2048, 2600, 3000, 3500, 4000};
#define NSIZES 16
static const size_t *sizes = mix_wide;
static CUcontext ctx;

static struct vs_driver drv;
static struct vs_arena *arena;
static struct {
    CUresult (*cuStreamCreate)(CUstream *, unsigned);
    CUresult (*cuStreamDestroy_v2)(CUstream);
    CUresult (*cuMemAllocAsync)(CUdeviceptr *, size_t, CUstream);
    CUresult (*cuMemFreeAsync)(CUdeviceptr, CUstream);
    CUresult (*cuMemcpyHtoD_v2)(CUdeviceptr, const void *, size_t);
    CUresult (*cuMemcpyDtoH_v2)(void *, CUdeviceptr, size_t);
} x;

enum kind { ARENA_ASYNC, DRIVER_ASYNC, ARENA_SYNC, DRIVER_SYNC };

static double now_ns(clockid_t clk)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static bool alloc_one(enum kind k, CUstream s, size_t n, CUdeviceptr *p)
{
    switch (k) {
    case ARENA_ASYNC: return vs_arena_alloc_async(arena, n, s, p) == CUDA_SUCCESS;
    case DRIVER_ASYNC: return x.cuMemAllocAsync(p, n, s) == CUDA_SUCCESS;
    case ARENA_SYNC: return vs_arena_alloc(arena, n, p) == CUDA_SUCCESS;
    case DRIVER_SYNC: return drv.cuMemAlloc_v2(p, n) == CUDA_SUCCESS;
    }
    return false;
}

static bool free_one(enum kind k, CUstream s, CUdeviceptr p)
{
    switch (k) {
    case ARENA_ASYNC: return vs_arena_free_async(arena, p, s) == CUDA_SUCCESS;
    case DRIVER_ASYNC: return x.cuMemFreeAsync(p, s) == CUDA_SUCCESS;
    case ARENA_SYNC: return vs_arena_free(arena, p) == CUDA_SUCCESS;
    case DRIVER_SYNC: return drv.cuMemFree_v2(p) == CUDA_SUCCESS;
    }
    return false;
}

/* ns per alloc+free pair on clock clk with WINDOW blocks live (best of 3), or -1 on failure. */
static double pair_ns_on(clockid_t clk, enum kind k, CUstream s, long pairs)
{
    double best = -1;
    for (int rep = 0; rep < 3; rep++) {
        CUdeviceptr ring[WINDOW] = {0};
        double t0 = now_ns(clk);
        for (long i = 0; i < pairs; i++) {
            CUdeviceptr *slot = &ring[i % WINDOW];
            if ((*slot && !free_one(k, s, *slot)) || !alloc_one(k, s, sizes[i % NSIZES], slot))
                return -1;
        }
        double ns = (now_ns(clk) - t0) / pairs;
        for (int i = 0; i < WINDOW; i++)
            if (ring[i] && !free_one(k, s, ring[i]))
                return -1;
        drv.cuStreamSynchronize(s);
        if (best < 0 || ns < best)
            best = ns;
    }
    return best;
}

static double pair_ns(enum kind k, CUstream s, long pairs)
{
    return pair_ns_on(CLOCK_MONOTONIC, k, s, pairs);
}

struct job {
    enum kind kind;
    CUstream s; /* NULL: a stream of the thread's own */
    long pairs;
    double ns;
};

static void *thread_main(void *arg)
{
    struct job *j = arg;
    j->ns = -1;
    CUstream s = j->s;
    if (drv.cuCtxSetCurrent(ctx) != CUDA_SUCCESS ||
        (!s && x.cuStreamCreate(&s, CU_STREAM_NON_BLOCKING) != CUDA_SUCCESS))
        return NULL;
    j->ns = pair_ns_on(CLOCK_THREAD_CPUTIME_ID, j->kind, s, j->pairs);
    if (!j->s) { /* pair_ns_on waited for it */
        vs_arena_stream_destroyed(arena, s);
        x.cuStreamDestroy_v2(s);
    }
    return NULL;
}

/* Mean thread CPU ns per pair of THREADS threads at once, on `shared` or a stream each (NULL);
 * -1 on failure. CPU time, so that the figure means the same with fewer cores than threads. */
static double threads_pair_ns(enum kind k, CUstream shared, long pairs)
{
    struct job jobs[THREADS];
    pthread_t th[THREADS];
    int started = 0;
    for (; started < THREADS; started++) {
        jobs[started] = (struct job){k, shared, pairs, -1};
        if (pthread_create(&th[started], NULL, thread_main, &jobs[started]) != 0)
            break;
    }
    double sum = 0;
    for (int i = 0; i < started; i++) {
        pthread_join(th[i], NULL);
        sum = sum < 0 || jobs[i].ns < 0 ? -1 : sum + jobs[i].ns;
    }
    return started == THREADS && sum > 0 ? sum / THREADS : -1;
}

static double ratio(double a, double b)
{
    return a > 0 && b > 0 ? a / b : -1.0;
}

/* Writes a pattern into [p, p+n) through the driver and reads it back. */
static bool roundtrip(CUdeviceptr p, size_t n, unsigned seed, bool write)
{
    unsigned char *buf = malloc(n), *back = malloc(n);
    bool ok = buf && back;
    for (size_t i = 0; ok && i < n; i++)
        buf[i] = (unsigned char)(seed * 31 + i * 7);
    if (ok && write)
        ok = x.cuMemcpyHtoD_v2(p, buf, n) == CUDA_SUCCESS;
    ok = ok && x.cuMemcpyDtoH_v2(back, p, n) == CUDA_SUCCESS && memcmp(buf, back, n) == 0;
    free(buf);
    free(back);
    return ok;
}

/* Scatters 3 MiB blocks, frees every other one, asks for one block larger than any free run and
 * checks it and the survivors. */
static bool stitched_roundtrip(void)
{
    enum { N = 48 };
    CUdeviceptr blk[N];
    bool ok = true;
    for (int i = 0; i < N && ok; i++)
        ok = vs_arena_alloc(arena, 3 * MiB + 4096, &blk[i]) == CUDA_SUCCESS &&
             roundtrip(blk[i], 3 * MiB + 4096, (unsigned)i, true);
    if (!ok)
        return false;
    for (int i = 0; i < N; i += 2)
        vs_arena_free(arena, blk[i]);
    drv.cuCtxSynchronize();
    vs_arena_device_synchronized(arena);
    CUdeviceptr big;
    size_t n = 40 * MiB;
    ok = vs_arena_alloc(arena, n, &big) == CUDA_SUCCESS && roundtrip(big, n, 99, true);
    for (int i = 1; ok && i < N; i += 2)
        ok = roundtrip(blk[i], 3 * MiB + 4096, (unsigned)i, false);
    if (ok)
        vs_arena_free(arena, big);
    for (int i = 1; i < N; i += 2)
        vs_arena_free(arena, blk[i]);
    return ok;
}

static void *resolve(const char *name, void *h)
{
    return dlsym(h, name);
}

int main(int argc, char **argv)
{
    if (argc > 2 || (argc == 2 && strcmp(argv[1], "--quick"))) {
        fprintf(stderr, "usage: arena_pair_cost [--quick]\n");
        return 2;
    }
    int pairs = argc == 2 ? 2000 : 200000;
    void *h = dlopen("libcuda.so.1", RTLD_NOW);
    const char *missing = NULL;
    if (!h) {
        printf("{\"error\":\"cannot load libcuda.so.1\"}\n");
        fprintf(stderr, "arena_pair_cost: %s\n", dlerror());
        return 2;
    }
    vs_driver_load(&drv, resolve, h, &missing);
    x.cuStreamCreate = resolve("cuStreamCreate", h);
    x.cuStreamDestroy_v2 = resolve("cuStreamDestroy_v2", h);
    x.cuMemAllocAsync = resolve("cuMemAllocAsync", h);
    x.cuMemFreeAsync = resolve("cuMemFreeAsync", h);
    x.cuMemcpyHtoD_v2 = resolve("cuMemcpyHtoD_v2", h);
    x.cuMemcpyDtoH_v2 = resolve("cuMemcpyDtoH_v2", h);
    CUdevice dev;
    CUstream s;
    struct vs_arena_options opt;
    vs_arena_options_from_env(&opt);
    if (missing || !x.cuStreamCreate || !x.cuStreamDestroy_v2 || !x.cuMemAllocAsync ||
        !x.cuMemFreeAsync || !x.cuMemcpyHtoD_v2 || !x.cuMemcpyDtoH_v2) {
        printf("{\"error\":\"driver lacks %s\"}\n", missing ? missing : "an entry point");
        return 2;
    }
    CUresult err = drv.cuInit(0);
    if (!err)
        err = drv.cuDeviceGet(&dev, 0);
    if (!err)
        err = drv.cuDevicePrimaryCtxRetain(&ctx, dev);
    if (!err)
        err = drv.cuCtxSetCurrent(ctx);
    if (!err)
        err = x.cuStreamCreate(&s, CU_STREAM_NON_BLOCKING);
    if (!err)
        err = vs_arena_create(&drv, dev, ctx, &opt, &arena);
    if (err) {
        printf("{\"error\":\"set-up failed with CUresult %d\"}\n", err);
        return 1;
    }

    CUdeviceptr p;
    bool small_ok = vs_arena_alloc(arena, 1000, &p) == CUDA_SUCCESS && roundtrip(p, 1000, 1, true);
    if (small_ok)
        vs_arena_free(arena, p);
    bool large_ok = vs_arena_alloc(arena, 37 * MiB + 3, &p) == CUDA_SUCCESS &&
                    roundtrip(p, 37 * MiB + 3, 2, true);
    if (large_ok)
        vs_arena_free(arena, p);
    bool stitch_ok = stitched_roundtrip();

    double arena_async = pair_ns(ARENA_ASYNC, s, pairs);
    double driver_async = pair_ns(DRIVER_ASYNC, s, pairs);
    double arena_sync = pair_ns(ARENA_SYNC, s, pairs / 10);
    double driver_sync = pair_ns(DRIVER_SYNC, s, pairs / 10);
    /* Thread scaling (CPU time: 1 thread against 8, on a stream each and on one stream). */
    double t1 = pair_ns_on(CLOCK_THREAD_CPUTIME_ID, ARENA_ASYNC, s, pairs);
    double t8 = threads_pair_ns(ARENA_ASYNC, NULL, pairs / 2);
    double t8_shared = threads_pair_ns(ARENA_ASYNC, s, pairs / 2);
    double d1 = pair_ns_on(CLOCK_THREAD_CPUTIME_ID, DRIVER_ASYNC, s, pairs);
    double d8 = threads_pair_ns(DRIVER_ASYNC, NULL, pairs / 2);
    sizes = mix_tiny;
    double tiny_arena = pair_ns(ARENA_ASYNC, s, pairs);
    double tiny_driver = pair_ns(DRIVER_ASYNC, s, pairs);
    struct vs_arena_stats st;
    vs_arena_stats(arena, &st);
    printf("{\"roundtrip_small\":%s,\"roundtrip_large\":%s,\"roundtrip_stitched\":%s,"
           "\"arena_async_pair_ns\":%.1f,\"driver_async_pair_ns\":%.1f,"
           "\"async_ratio\":%.3f,\"arena_sync_pair_ns\":%.1f,\"driver_sync_pair_ns\":%.1f,"
           "\"sync_ratio\":%.3f,\"tiny_arena_async_pair_ns\":%.1f,"
           "\"tiny_driver_async_pair_ns\":%.1f,\"tiny_async_ratio\":%.3f,"
           "\"threads\":%d,\"arena_async_cpu_ns_1t\":%.1f,\"arena_async_cpu_ns_8t\":%.1f,"
           "\"arena_async_cpu_ns_8t_one_stream\":%.1f,\"arena_8t_vs_1t\":%.3f,"
           "\"arena_8t_one_stream_vs_1t\":%.3f,\"driver_async_cpu_ns_1t\":%.1f,"
           "\"driver_async_cpu_ns_8t\":%.1f,\"driver_8t_vs_1t\":%.3f,"
           "\"arena_device_syncs\":%llu,\"arena_peak_physical_bytes\":%zu}\n",
           small_ok ? "true" : "false", large_ok ? "true" : "false",
           stitch_ok ? "true" : "false", arena_async, driver_async,
           ratio(arena_async, driver_async), arena_sync, driver_sync,
           ratio(arena_sync, driver_sync), tiny_arena, tiny_driver,
           ratio(tiny_arena, tiny_driver), THREADS, t1, t8, t8_shared, ratio(t8, t1),
           ratio(t8_shared, t1), d1, d8, ratio(d8, d1), (unsigned long long)st.syncs,
           st.peak_physical_bytes);
    vs_arena_destroy(arena);
    bool timed = arena_async > 0 && driver_async > 0 && arena_sync > 0 && driver_sync > 0 &&
                 t1 > 0 && t8 > 0 && t8_shared > 0 && d1 > 0 && d8 > 0 && tiny_arena > 0 &&
                 tiny_driver > 0;
    return small_ok && large_ok && stitch_ok && timed ? 0 : 1;
}
