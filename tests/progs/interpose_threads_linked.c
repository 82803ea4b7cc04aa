/* 8 threads allocate and free concurrently (cuMemAlloc_v2/cuMemFree_v2 and, on their own
 * streams, cuMemAllocAsync/cuMemFreeAsync) for VS_SECONDS seconds (default 2), keeping a few
 * allocations alive at a time. Prints the number of calls made per entry point.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "interpose_prog.h"

#define THREADS 8
#define LIVE 4

static CUcontext ctx;
static double seconds = 2.0;
static atomic_ulong n_alloc, n_free, n_alloc_async, n_free_async;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void *worker(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg;
    CK(cuCtxSetCurrent(ctx));
    CUstream s;
    CK(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
    CUdeviceptr live[LIVE] = {0};
    int is_async[LIVE] = {0};
    double end = now() + seconds;
    while (now() < end) {
        unsigned i = (seed = seed * 1103515245u + 12345u) >> 16 & (LIVE - 1);
        if (live[i]) {
            if (is_async[i]) {
                CK(cuMemFreeAsync(live[i], s));
                atomic_fetch_add(&n_free_async, 1);
            } else {
                CK(cuMemFree(live[i]));
                atomic_fetch_add(&n_free, 1);
            }
            live[i] = 0;
        } else {
            size_t size = 4096u << (seed >> 8 & 7);
            is_async[i] = seed >> 12 & 1;
            if (is_async[i]) {
                CK(cuMemAllocAsync(&live[i], size, s));
                atomic_fetch_add(&n_alloc_async, 1);
            } else {
                CK(cuMemAlloc(&live[i], size));
                atomic_fetch_add(&n_alloc, 1);
            }
        }
    }
    for (unsigned i = 0; i < LIVE; i++) {
        if (!live[i])
            continue;
        CK(is_async[i] ? cuMemFreeAsync(live[i], s) : cuMemFree(live[i]));
        atomic_fetch_add(is_async[i] ? &n_free_async : &n_free, 1);
    }
    CK(cuStreamSynchronize(s));
    CK(cuStreamDestroy(s));
    return NULL;
}

int main(void)
{
    const char *env = getenv("VS_SECONDS");
    if (env)
        seconds = atof(env);
    CUdevice dev;
    CK(cuInit(0));
    CK(cuDeviceGet(&dev, 0));
    CK(cuDevicePrimaryCtxRetain(&ctx, dev));
    pthread_t t[THREADS];
    for (uintptr_t i = 0; i < THREADS; i++)
        if (pthread_create(&t[i], NULL, worker, (void *)(i * 7919 + 1)) != 0)
            return 1;
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    const char *names[] = {"cuMemAlloc_v2", "cuMemFree_v2", "cuMemAllocAsync", "cuMemFreeAsync"};
    atomic_ulong *counts[] = {&n_alloc, &n_free, &n_alloc_async, &n_free_async};
    for (int i = 0; i < 4; i++) {
        called_tab[i].name = names[i];
        called_tab[i].n = atomic_load(counts[i]);
    }
    print_calls(RTLD_DEFAULT);
    return 0;
}
