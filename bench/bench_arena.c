/* Cost of an arena alloc+free pair on the cached path, against mimalloc doing the same sizes in
 * the same run, single-threaded and with 8 threads, each on its own stream (as data loaders and
 * offload threads do) and, for the arena, all on one shared stream (as threads of one PyTorch
 * stream do).
 *
 * Two size mixes (see mix_wide, mix_tiny). Prints ns per pair and the ratios the issue sets as targets: arena <= 3x mimalloc
 * single-threaded, and 8-thread cost per pair <= 2x the single-threaded cost (CPU time per pair,
 * so the figure means the same on a machine with fewer cores than threads). Also prints, for
 * reference, the synchronous pair and simcuda's own cuMemAllocAsync/cuMemFreeAsync pair.
 * Exit status 0 unless something failed to run; missed targets are printed as MISSED.
 */
#include <dlfcn.h>
#include <mimalloc.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "allocator/arena.h"

#define THREADS 8
#define PAIRS 400000
/* Two size mixes: tensors of a small model (64 B to 250 KB), and tiny ones (64 B to 4 KB) where
 * a host allocator is at its fastest. */
static const size_t mix_wide[] = {64,    200,   512,   1000,   2048,   4000,   8192,   12000,
                                  16384, 30000, 65536, 100000, 131072, 200000, 250000, 777};
static const size_t mix_tiny[] = {64,  96,  128, 200,  256,  384,  512,  640,
                                  777, 1000, 1500, 2048, 2600, 3000, 3500, 4000};
#define NSIZES 16
static const size_t *sizes;

static struct vs_driver drv;
static struct vs_arena *arena;
static CUcontext ctx;

enum kind { ARENA_ASYNC, ARENA_SYNC, MIMALLOC, DRIVER_ASYNC };
static const char *kind_name[] = {"arena (stream-ordered)", "arena (synchronous)", "mimalloc",
                                  "simcuda cuMemAllocAsync"};

static double now_ns(clockid_t clk)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

/* One allocation of n bytes (NULL/0 on failure). */
static uintptr_t alloc_one(enum kind kind, CUstream s, size_t n)
{
    CUdeviceptr p = 0;
    void *m;
    switch (kind) {
    case ARENA_ASYNC:
        return vs_arena_alloc_async(arena, n, s, &p) ? 0 : p;
    case ARENA_SYNC:
        return vs_arena_alloc(arena, n, &p) ? 0 : p;
    case MIMALLOC:
        m = mi_malloc(n);
        if (m)
            *(volatile char *)m = 1;
        return (uintptr_t)m;
    case DRIVER_ASYNC:
        return cuMemAllocAsync(&p, n, s) ? 0 : p;
    }
    return 0;
}

static bool free_one(enum kind kind, CUstream s, uintptr_t p)
{
    switch (kind) {
    case ARENA_ASYNC:
        return vs_arena_free_async(arena, p, s) == CUDA_SUCCESS;
    case ARENA_SYNC:
        return vs_arena_free(arena, p) == CUDA_SUCCESS;
    case MIMALLOC:
        mi_free((void *)p);
        return true;
    case DRIVER_ASYNC:
        return cuMemFreeAsync(p, s) == CUDA_SUCCESS;
    }
    return false;
}

/* Runs `pairs` alloc+free pairs of `kind` with WINDOW blocks kept live (each step frees the
 * oldest and allocates a new one), so neither allocator sees its pages empty out on every free.
 * Returns thread CPU ns per pair, or -1 on failure. */
#define WINDOW 64
static double run_pairs(enum kind kind, CUstream s, long pairs)
{
    uintptr_t ring[WINDOW] = {0};
    double t0 = now_ns(CLOCK_THREAD_CPUTIME_ID);
    for (long i = 0; i < pairs; i++) {
        uintptr_t *slot = &ring[i % WINDOW];
        if (*slot && !free_one(kind, s, *slot))
            return -1;
        if (!(*slot = alloc_one(kind, s, sizes[i % NSIZES])))
            return -1;
    }
    double ns = (now_ns(CLOCK_THREAD_CPUTIME_ID) - t0) / pairs;
    for (int i = 0; i < WINDOW; i++)
        if (ring[i] && !free_one(kind, s, ring[i]))
            return -1;
    return ns;
}

struct job {
    enum kind kind;
    long pairs;
    CUstream shared; /* NULL: the thread makes a stream of its own */
    double ns;
};

static void *thread_main(void *arg)
{
    struct job *j = arg;
    CUstream s = j->shared;
    drv.cuCtxSetCurrent(ctx);
    if (j->kind != MIMALLOC && !s && cuStreamCreate(&s, CU_STREAM_NON_BLOCKING) != CUDA_SUCCESS) {
        j->ns = -1;
        return NULL;
    }
    run_pairs(j->kind, s, j->pairs / 10); /* warm the caches */
    j->ns = run_pairs(j->kind, s, j->pairs);
    if (s)
        drv.cuStreamSynchronize(s);
    return NULL;
}

/* Mean CPU ns per pair over `threads` threads running at once (best of 3 runs), on `shared` or
 * on a stream per thread (NULL). */
static double measure(enum kind kind, int threads, long pairs, CUstream shared)
{
    double best = -1;
    for (int rep = 0; rep < 3; rep++) {
        struct job jobs[THREADS];
        pthread_t th[THREADS];
        for (int i = 0; i < threads; i++) {
            jobs[i] = (struct job){kind, pairs, shared, 0};
            pthread_create(&th[i], NULL, thread_main, &jobs[i]);
        }
        double sum = 0;
        for (int i = 0; i < threads; i++) {
            pthread_join(th[i], NULL);
            if (jobs[i].ns < 0)
                return -1;
            sum += jobs[i].ns;
        }
        if (best < 0 || sum / threads < best)
            best = sum / threads;
    }
    return best;
}

static void *resolve(const char *name, void *h)
{
    return dlsym(h, name);
}

int main(void)
{
    void *h = dlopen(VS_BUILD_DIR "/sim/libcuda.so.1", RTLD_NOW);
    const char *missing = NULL;
    CUdevice dev;
    if (!h || vs_driver_load(&drv, resolve, h, &missing) != 0) {
        fprintf(stderr, "bench_arena: cannot load simcuda (%s)\n", h ? missing : dlerror());
        return 1;
    }
    struct vs_arena_options opt;
    vs_arena_options_from_env(&opt);
    if (drv.cuInit(0) || drv.cuDeviceGet(&dev, 0) || drv.cuDevicePrimaryCtxRetain(&ctx, dev) ||
        drv.cuCtxSetCurrent(ctx) || vs_arena_create(&drv, dev, ctx, &opt, &arena)) {
        fprintf(stderr, "bench_arena: cannot set up simcuda and the arena\n");
        return 1;
    }

    CUstream shared;
    if (cuStreamCreate(&shared, CU_STREAM_NON_BLOCKING) != CUDA_SUCCESS) {
        fprintf(stderr, "bench_arena: cannot create a stream\n");
        return 1;
    }
    const struct { const char *name; const size_t *sizes; } mixes[] = {
        {"64 B to 250 KB", mix_wide}, {"64 B to 4 KB", mix_tiny}};
    for (int m = 0; m < 2; m++) {
        sizes = mixes[m].sizes;
        printf("alloc+free pair, %d sizes from %s, CPU ns per pair (best of 3)\n", NSIZES,
               mixes[m].name);
        double one[4], eight[4];
        for (int k = 0; k < 4; k++) {
            long pairs = k == DRIVER_ASYNC ? PAIRS / 20 : k == ARENA_SYNC ? PAIRS / 4 : PAIRS;
            one[k] = measure((enum kind)k, 1, pairs, NULL);
            eight[k] = measure((enum kind)k, THREADS, pairs / 2, NULL);
            if (one[k] < 0 || eight[k] < 0) {
                fprintf(stderr, "bench_arena: %s failed\n", kind_name[k]);
                return 1;
            }
            printf("  %-26s 1 thread %8.1f ns   %d threads %8.1f ns   (x%.2f)\n", kind_name[k],
                   one[k], THREADS, eight[k], eight[k] / one[k]);
        }
        double one_stream = measure(ARENA_ASYNC, THREADS, PAIRS / 2, shared);
        if (one_stream < 0) {
            fprintf(stderr, "bench_arena: %s on one stream failed\n", kind_name[ARENA_ASYNC]);
            return 1;
        }
        printf("  %-26s %d threads on one stream %8.1f ns   (x%.2f)\n", kind_name[ARENA_ASYNC],
               THREADS, one_stream, one_stream / one[ARENA_ASYNC]);
        double r1 = one[ARENA_ASYNC] / one[MIMALLOC];
        double r8 = eight[ARENA_ASYNC] / one[ARENA_ASYNC];
        double r8s = one_stream / one[ARENA_ASYNC];
        printf("  arena / mimalloc, 1 thread:    %.2fx  (target <= 3x: %s)\n", r1,
               r1 <= 3.0 ? "met" : "MISSED");
        printf("  arena 8 threads / 1 thread:    %.2fx  (a stream per thread; target <= 2x: %s)\n",
               r8, r8 <= 2.0 ? "met" : "MISSED");
        printf("  arena 8 threads / 1 thread:    %.2fx  (one shared stream; target <= 2x: %s)\n",
               r8s, r8s <= 2.0 ? "met" : "MISSED");
        printf("  arena / mimalloc, 8 threads:   %.2fx\n", eight[ARENA_ASYNC] / eight[MIMALLOC]);
        printf("  arena / simcuda async pool:    %.2fx\n", one[ARENA_ASYNC] / one[DRIVER_ASYNC]);
    }
    cuStreamSynchronize(shared);
    vs_arena_destroy(arena);
    cuStreamDestroy(shared);
    return 0;
}
