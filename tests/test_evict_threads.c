/* Eviction under concurrency: threads allocating (small and large, stream-ordered and not) push
 * the device into pressure demotes while another thread changes stages and promotes the victims
 * back: no lost byte, no crash, and both directions really ran. (Nobody touches the victims
 * meanwhile: they are idle by definition; allocations may fail while they are all promoted.) */
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "evict_fixture.h"

#define WORKERS 3
#define VS_SMALL_MAX_TEST (256u << 10)
#define NW 6

static struct vs_arena *a;
static atomic_bool stop;
static atomic_int successes;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void *worker(void *arg)
{
    uint64_t seed = (uintptr_t)arg * 7919 + 1;
    cuCtxSetCurrent(fx_ctx);
    CUstream s;
    if (cuStreamCreate(&s, CU_STREAM_NON_BLOCKING) != CUDA_SUCCESS)
        return NULL;
    while (!atomic_load(&stop)) {
        /* 24 MiB does not fit next to the weights without demoting some. */
        size_t n = ef_rand(&seed) % 4 == 0 ? 24 * MiB : 512 + ef_rand(&seed) % (300 << 10);
        bool async = ef_rand(&seed) % 2;
        CUdeviceptr p;
        CUresult err = async ? vs_arena_alloc_async(a, n, s, &p) : vs_arena_alloc(a, n, &p);
        if (err != CUDA_SUCCESS)
            continue;
        memset((void *)(uintptr_t)p, 0xee, n < 4096 ? n : 4096);
        if ((async ? vs_arena_free_async(a, p, s) : vs_arena_free(a, p)) == CUDA_SUCCESS &&
            n > VS_SMALL_MAX_TEST)
            atomic_fetch_add(&successes, 1);
    }
    cuStreamSynchronize(s);
    vs_arena_stream_destroyed(a, s);
    cuStreamDestroy(s);
    return NULL;
}

Test(evict_threads, pressure_demotes_while_another_thread_promotes)
{
    arena_fixture_start(192 * MiB);
    /* Two working stages: what a promote brings back in one may be demoted again in the other. */
    ef_policy("[stage load]\nmatch = *load*\n[stage work]\nmatch = *work*\nevict = load\n"
              "[stage work2]\nmatch = *work2*\nevict = load\n");
    a = arena_new(SIZE_MAX);
    uint32_t load = ef_name("load");
    vs_arena_set_stage(a, load);
    uint64_t seed = 99;
    struct ef_block w[NW];
    for (int i = 0; i < NW; i++)
        ef_alloc(a, &w[i], 20 * MiB + 4096 * (size_t)i, &seed);
    cr_assert_eq(vs_arena_stage_begin(a, ef_name("work")), CUDA_SUCCESS);

    pthread_t t[WORKERS];
    for (uintptr_t i = 0; i < WORKERS; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, worker, (void *)i), 0);
    double end = now_s() + 1.5;
    for (int round = 0; now_s() < end; round++) {
        cr_assert_eq(vs_arena_stage_begin(a, ef_name(round % 2 ? "work" : "work2")),
                     CUDA_SUCCESS);
        CUresult err = vs_arena_promote(a, load, NULL);
        cr_assert(err == CUDA_SUCCESS || err == CUDA_ERROR_OUT_OF_MEMORY, "promote: %d", err);
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
    }
    atomic_store(&stop, true);
    for (int i = 0; i < WORKERS; i++)
        pthread_join(t[i], NULL);
    struct vs_evict_stats st;
    vs_arena_evict_stats(a, &st);
    cr_assert_gt(st.demotes, 0, "the workers never needed a demote");
    cr_assert_gt(st.promotes, 0);
    cr_assert_gt(atomic_load(&successes), 0, "no large allocation succeeded");
    cr_assert_eq(vs_arena_promote(a, load, NULL), CUDA_SUCCESS);
    for (int i = 0; i < NW; i++)
        cr_assert(ef_intact(&w[i]), "weight %d changed", i);
    ef_forget(w, NW);
    vs_arena_destroy(a);
}
