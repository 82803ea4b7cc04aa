/* Threads are created per call: layer calls are coarse (a whole conv or norm), so creation cost
 * is negligible and no pool state outlives a decode. Falls back to the calling thread when a
 * thread cannot be created. */
#include "kernels/cpu/parallel.h"

#include <pthread.h>
#include <unistd.h>

#define MAX_THREADS 64

static int g_threads;

void vs_set_threads(int n)
{
    g_threads = n < 1 ? 0 : n > MAX_THREADS ? MAX_THREADS : n;
}

int vs_threads(void)
{
    if (g_threads)
        return g_threads;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > MAX_THREADS ? MAX_THREADS : (int)n;
}

struct chunk {
    vs_range_fn fn;
    void *ctx;
    size_t begin, end;
};

static void *run_chunk(void *arg)
{
    struct chunk *c = arg;
    c->fn(c->ctx, c->begin, c->end);
    return NULL;
}

void vs_parallel_for(size_t n, vs_range_fn fn, void *ctx)
{
    size_t t = (size_t)vs_threads();
    if (t > n)
        t = n;
    if (t <= 1) {
        if (n)
            fn(ctx, 0, n);
        return;
    }
    struct chunk chunks[MAX_THREADS];
    pthread_t tid[MAX_THREADS];
    int started[MAX_THREADS] = {0};
    for (size_t i = 0; i < t; i++) {
        chunks[i] = (struct chunk){fn, ctx, n * i / t, n * (i + 1) / t};
        if (i > 0)
            started[i] = !pthread_create(&tid[i], NULL, run_chunk, &chunks[i]);
    }
    run_chunk(&chunks[0]);
    for (size_t i = 1; i < t; i++) {
        if (started[i])
            pthread_join(tid[i], NULL);
        else
            run_chunk(&chunks[i]);
    }
}
