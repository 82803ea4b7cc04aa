/* Eight threads allocating and freeing concurrently, each on its own stream or synchronously,
 * with every live block's contents checked before its free: no block is ever handed to two
 * owners, and the accounting ends at zero.
 */
#include <pthread.h>

#include "arena_fixture.h"

#define THREADS 8
#define ROUNDS 1500
#define KEEP 24

static struct vs_arena *arena;

static size_t pick_size(unsigned *rng)
{
    *rng = *rng * 1103515245u + 12345u;
    unsigned r = *rng >> 8;
    switch (r % 8) {
    case 0: return 1 + r % 512;
    case 1: return 512 + r % 4096;
    case 2: return 4096 + r % 65536;
    case 3: return 65536 + r % (256 << 10);
    case 4: return (256 << 10) + r % (2 * MiB);   /* large, sub-granule */
    case 5: return 2 * MiB + r % (3 * MiB);        /* large, several granules */
    default: return 32 + r % 2048;
    }
}

static void *worker(void *arg)
{
    unsigned id = (unsigned)(uintptr_t)arg, rng = id * 7919u + 1;
    cuCtxSetCurrent(fx_ctx);
    CUstream s;
    if (cuStreamCreate(&s, CU_STREAM_NON_BLOCKING) != CUDA_SUCCESS)
        return "stream";
    CUdeviceptr ptr[KEEP] = {0};
    size_t len[KEEP] = {0};
    unsigned seed[KEEP] = {0};
    for (unsigned round = 0; round < ROUNDS; round++) {
        unsigned k = round % KEEP;
        bool async = (round / KEEP + id) % 2;
        if (ptr[k]) {
            if (!fx_check(ptr[k], len[k], seed[k]))
                return "a live block was overwritten";
            CUresult r =
                async ? vs_arena_free_async(arena, ptr[k], s) : vs_arena_free(arena, ptr[k]);
            if (r != CUDA_SUCCESS)
                return "free failed";
        }
        len[k] = pick_size(&rng);
        seed[k] = id * 100000 + round;
        CUresult r = async ? vs_arena_alloc_async(arena, len[k], s, &ptr[k])
                           : vs_arena_alloc(arena, len[k], &ptr[k]);
        if (r != CUDA_SUCCESS)
            return "alloc failed";
        fx_fill(ptr[k], len[k], seed[k]);
    }
    for (unsigned k = 0; k < KEEP; k++) {
        if (!fx_check(ptr[k], len[k], seed[k]))
            return "a live block was overwritten";
        if (vs_arena_free_async(arena, ptr[k], s) != CUDA_SUCCESS)
            return "free failed";
    }
    cuStreamSynchronize(s);
    return NULL;
}

Test(arena_threads, eight_threads_alloc_free_with_content_checks, .timeout = 60)
{
    arena_fixture_start(2048 * MiB);
    arena = arena_new(SIZE_MAX);
    pthread_t th[THREADS];
    for (unsigned i = 0; i < THREADS; i++)
        pthread_create(&th[i], NULL, worker, (void *)(uintptr_t)i);
    for (unsigned i = 0; i < THREADS; i++) {
        void *res;
        pthread_join(th[i], &res);
        cr_assert_null(res, "thread %u: %s", i, (const char *)res);
    }
    fx_validate(arena, "the threads");
    vs_arena_device_synchronized(arena);
    fx_validate(arena, "a device synchronisation");
    struct vs_arena_stats st;
    vs_arena_stats(arena, &st);
    cr_assert_eq(st.live_bytes, 0);
    cr_assert_eq(st.allocs, THREADS * (ROUNDS));
    cr_assert_eq(st.frees, THREADS * (ROUNDS));
    cr_assert_eq(fx_log_n, 0, "%s", fx_log[0]);
    fx_destroy(arena);
    cr_assert_eq(simcuda_physical_in_use(0), 0);
}

/* A thread's cache keeps the bytes it frees as credit for its next allocations (no shared
 * counter on the cached pair): the live bytes others read stay exact while it holds credit, it
 * gives the credit back when it binds to another arena or exits, and an arena destroyed under
 * it is left alone. */
static pthread_barrier_t step;
static struct vs_arena *other;

static void *credit_worker(void *arg)
{
    (void)arg;
    cuCtxSetCurrent(fx_ctx);
    CUstream s;
    CUdeviceptr p[3];
    if (cuStreamCreate(&s, CU_STREAM_NON_BLOCKING) != CUDA_SUCCESS)
        return "stream";
    for (int i = 0; i < 3; i++)
        if (vs_arena_alloc_async(arena, 1000 + i, s, &p[i]) != CUDA_SUCCESS)
            return "alloc";
    if (vs_arena_free_async(arena, p[0], s) || vs_arena_free_async(arena, p[1], s))
        return "free";
    pthread_barrier_wait(&step); /* 1: main reads live with 2001 bytes of credit held here */
    pthread_barrier_wait(&step);
    if (vs_arena_alloc_async(arena, 300, s, &p[0]) != CUDA_SUCCESS) /* paid from the credit */
        return "alloc";
    pthread_barrier_wait(&step); /* 2: main reads live again */
    pthread_barrier_wait(&step);
    CUdeviceptr q;
    if (vs_arena_alloc_async(other, 700, s, &q) || vs_arena_free_async(other, q, s))
        return "other arena";
    pthread_barrier_wait(&step); /* 3: bound to `other` now, with credit there */
    pthread_barrier_wait(&step); /* main destroys `other` */
    if (vs_arena_free_async(arena, p[0], s) || vs_arena_free_async(arena, p[2], s))
        return "free";
    cuStreamSynchronize(s);
    return NULL;
}

static size_t live_of(struct vs_arena *a)
{
    struct vs_arena_stats st;
    vs_arena_stats(a, &st);
    return st.live_bytes;
}

Test(arena_threads, live_bytes_exact_while_a_thread_holds_credit, .timeout = 60)
{
    arena_fixture_start(1024 * MiB);
    arena = arena_new(SIZE_MAX);
    other = arena_new(SIZE_MAX);
    pthread_barrier_init(&step, NULL, 2);
    pthread_t th;
    pthread_create(&th, NULL, credit_worker, NULL);
    pthread_barrier_wait(&step);
    cr_assert_eq(live_of(arena), 1002);
    fx_validate(arena, "two frees");
    pthread_barrier_wait(&step);
    pthread_barrier_wait(&step);
    cr_assert_eq(live_of(arena), 1302);
    fx_validate(arena, "an allocation paid from credit");
    pthread_barrier_wait(&step);
    pthread_barrier_wait(&step);
    cr_assert_eq(live_of(arena), 1302, "binding to another arena keeps this one's count");
    cr_assert_eq(live_of(other), 0);
    fx_destroy(other);
    pthread_barrier_wait(&step);
    void *res;
    pthread_join(th, &res);
    cr_assert_null(res, "%s", (const char *)res);
    cr_assert_eq(live_of(arena), 0);
    fx_validate(arena, "the thread's exit");
    struct vs_arena_stats st;
    vs_arena_stats(arena, &st);
    cr_assert_geq(st.peak_live_bytes, 3003);
    pthread_barrier_destroy(&step);
    fx_destroy(arena);
    cr_assert_eq(fx_log_n, 0, "%s", fx_log[0]);
}
