/* Eviction under concurrency: threads allocating (small and large, stream-ordered and not) push
 * the device into pressure demotes while another thread changes stages and promotes the victims
 * back: no lost byte, no crash, and both directions really ran. (Nobody touches the victims
 * meanwhile: they are idle by definition; allocations may fail while they are all promoted.) */
#include <pthread.h>
#include <sched.h>
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
    fx_validate(a, "the threads");
    struct vs_evict_stats st;
    vs_arena_evict_stats(a, &st);
    cr_assert_gt(st.demotes, 0, "the workers never needed a demote");
    cr_assert_gt(st.promotes, 0);
    cr_assert_gt(atomic_load(&successes), 0, "no large allocation succeeded");
    cr_assert_eq(vs_arena_promote(a, load, NULL), CUDA_SUCCESS);
    fx_validate(a, "the last promote");
    for (int i = 0; i < NW; i++)
        cr_assert(ef_intact(&w[i]), "weight %d changed", i);
    ef_forget(w, NW);
    fx_destroy(a);
}

/* The race of a small object freed and handed out again while its granule moves: writer threads
 * keep replacing their 64 KiB objects (free, allocate, fill with a fresh pattern, then tag them
 * as victims) while the main thread demotes and promotes the victims. A fresh object is not a
 * victim while it is being written; its bytes must survive every move. Before the fix, a fill
 * landing between a granule's copy and its remap went to the old backing and was lost.
 * Victims are idle during a move (a read in the remap window would fault, as on a GPU), so the
 * writers check the objects they filled only between moves (moves_lock) and replace only
 * checked ones; the main thread checks the rest at the end. */
#define RACE_WRITERS 3
#define RACE_OBJS 48
#define RACE_SIZE (64u << 10)

static uint32_t race_victim;
static pthread_rwlock_t moves_lock;
static atomic_int race_lost;
static atomic_long race_replaced;

static void race_fill(CUdeviceptr p, uint64_t pattern)
{
    uint64_t *m = (uint64_t *)(uintptr_t)p;
    for (size_t i = 0; i < RACE_SIZE / 8; i++)
        m[i] = pattern + i;
}

static bool race_intact(CUdeviceptr p, uint64_t pattern)
{
    const uint64_t *m = (const uint64_t *)(uintptr_t)p;
    for (size_t i = 0; i < RACE_SIZE / 8; i++)
        if (m[i] != pattern + i)
            return false;
    return true;
}

struct race_writer {
    uintptr_t id;
    CUdeviceptr p[RACE_OBJS];
    uint64_t pattern[RACE_OBJS];
    bool unchecked[RACE_OBJS];
};

/* Checks w's objects filled since their last check, unless a move is running. */
static void race_check(struct race_writer *w)
{
    if (pthread_rwlock_tryrdlock(&moves_lock) != 0)
        return;
    for (int i = 0; i < RACE_OBJS; i++)
        if (w->unchecked[i]) {
            if (!race_intact(w->p[i], w->pattern[i]))
                atomic_fetch_add(&race_lost, 1);
            w->unchecked[i] = false;
        }
    pthread_rwlock_unlock(&moves_lock);
}

static void *race_writer(void *arg)
{
    struct race_writer *w = arg;
    uint64_t seed = w->id * 104729 + 3;
    cuCtxSetCurrent(fx_ctx);
    CUstream s;
    if (cuStreamCreate(&s, CU_STREAM_NON_BLOCKING) != CUDA_SUCCESS)
        return NULL;
    while (!atomic_load(&stop)) {
        race_check(w);
        int i = (int)(ef_rand(&seed) % RACE_OBJS), tries = 0;
        while (w->unchecked[i] && tries++ < RACE_OBJS)
            i = (i + 1) % RACE_OBJS;
        if (w->unchecked[i]) {
            sched_yield(); /* every object awaits its check */
            continue;
        }
        bool async = ef_rand(&seed) % 2;
        if ((async ? vs_arena_free_async(a, w->p[i], s) : vs_arena_free(a, w->p[i])) !=
            CUDA_SUCCESS) {
            atomic_fetch_add(&race_lost, 1000);
            break;
        }
        CUresult err = async ? vs_arena_alloc_async(a, RACE_SIZE, s, &w->p[i])
                             : vs_arena_alloc(a, RACE_SIZE, &w->p[i]);
        if (err != CUDA_SUCCESS) {
            atomic_fetch_add(&race_lost, 1000);
            break;
        }
        w->pattern[i] = ef_rand(&seed) << 20;
        race_fill(w->p[i], w->pattern[i]);
        vs_arena_set_tag(a, w->p[i], race_victim);
        w->unchecked[i] = true;
        atomic_fetch_add(&race_replaced, 1);
    }
    cuStreamSynchronize(s);
    vs_arena_stream_destroyed(a, s);
    cuStreamDestroy(s);
    return NULL;
}

Test(evict_threads, object_freed_and_rewritten_during_a_move_keeps_its_bytes)
{
    arena_fixture_start(512 * MiB);
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&moves_lock, &attr);
    a = arena_new(SIZE_MAX);
    race_victim = ef_name("victim");
    vs_arena_set_stage(a, ef_name("work"));
    static struct race_writer w[RACE_WRITERS];
    uint64_t seed = 5;
    for (uintptr_t t = 0; t < RACE_WRITERS; t++) {
        w[t].id = t;
        for (int i = 0; i < RACE_OBJS; i++) {
            cr_assert_eq(vs_arena_alloc(a, RACE_SIZE, &w[t].p[i]), CUDA_SUCCESS);
            w[t].pattern[i] = ef_rand(&seed) << 20;
            race_fill(w[t].p[i], w[t].pattern[i]);
            vs_arena_set_tag(a, w[t].p[i], race_victim);
        }
    }
    pthread_t t[RACE_WRITERS];
    for (int i = 0; i < RACE_WRITERS; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, race_writer, &w[i]), 0);
    size_t demoted = 0, promoted = 0;
    double end = now_s() + 3.0; /* before the fix: lost writes in 7 runs of 8 within 2 s */
    while (now_s() < end && atomic_load(&race_lost) == 0) {
        size_t m = 0, n = 0;
        pthread_rwlock_wrlock(&moves_lock);
        CUresult err = vs_arena_demote(a, race_victim, &m);
        pthread_rwlock_unlock(&moves_lock);
        cr_assert_eq(err, CUDA_SUCCESS);
        pthread_rwlock_wrlock(&moves_lock);
        err = vs_arena_promote(a, race_victim, &n);
        pthread_rwlock_unlock(&moves_lock);
        cr_assert_eq(err, CUDA_SUCCESS);
        demoted += m;
        promoted += n;
    }
    atomic_store(&stop, true);
    for (int i = 0; i < RACE_WRITERS; i++)
        pthread_join(t[i], NULL);
    fx_validate(a, "the writers");
    cr_assert_eq(vs_arena_promote(a, race_victim, NULL), CUDA_SUCCESS);
    fx_validate(a, "the last promote");
    for (int i = 0; i < RACE_WRITERS; i++)
        for (int j = 0; j < RACE_OBJS; j++)
            if (!race_intact(w[i].p[j], w[i].pattern[j]))
                atomic_fetch_add(&race_lost, 1);
    cr_assert_eq(atomic_load(&race_lost), 0, "%d writes lost (%ld objects replaced)",
                 atomic_load(&race_lost), atomic_load(&race_replaced));
    cr_assert_gt(demoted, 0, "nothing was demoted");
    cr_assert_gt(promoted, 0, "nothing was promoted");
    cr_assert_gt(atomic_load(&race_replaced), 0);
    fx_destroy(a);
}

/* A large block is live, with its own stage and tag, from the moment it leaves the free or
 * pending blocks: threads reuse 2 MiB blocks on their streams (each tagged as a victim before
 * its free) while the main thread demotes and promotes the victims; a block just allocated is
 * never in host memory. Before the fix, a demote between the allocation's two critical
 * sections saw the block live with its previous owner's tag, or not live, and moved it. */
#define REUSERS 3

static atomic_long reused, reused_in_host;

static void *reuser(void *arg)
{
    uint32_t victim = *(const uint32_t *)arg;
    cuCtxSetCurrent(fx_ctx);
    CUstream s;
    if (cuStreamCreate(&s, CU_STREAM_NON_BLOCKING) != CUDA_SUCCESS)
        return NULL;
    while (!atomic_load(&stop)) {
        CUdeviceptr p;
        if (vs_arena_alloc_async(a, 2 * MiB, s, &p) != CUDA_SUCCESS)
            continue;
        atomic_fetch_add(&reused, 1);
        if (vs_arena_block_demoted_bytes(a, p))
            atomic_fetch_add(&reused_in_host, 1);
        vs_arena_set_tag(a, p, victim);
        vs_arena_free_async(a, p, s);
    }
    cuStreamSynchronize(s);
    vs_arena_stream_destroyed(a, s);
    cuStreamDestroy(s);
    return NULL;
}

Test(evict_threads, a_new_large_block_is_never_in_host_memory)
{
    arena_fixture_start(256 * MiB);
    a = arena_new(SIZE_MAX);
    uint32_t victim = ef_name("victim");
    atomic_store(&stop, false);
    pthread_t t[REUSERS];
    for (int i = 0; i < REUSERS; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, reuser, &victim), 0);
    double end = now_s() + 1.0;
    while (now_s() < end) {
        CUresult err = vs_arena_demote(a, victim, NULL);
        cr_assert(err == CUDA_SUCCESS, "demote: %d", err);
        err = vs_arena_promote(a, victim, NULL);
        cr_assert(err == CUDA_SUCCESS || err == CUDA_ERROR_OUT_OF_MEMORY, "promote: %d", err);
    }
    atomic_store(&stop, true);
    for (int i = 0; i < REUSERS; i++)
        pthread_join(t[i], NULL);
    cr_assert_gt(atomic_load(&reused), 0);
    cr_assert_eq(atomic_load(&reused_in_host), 0, "%ld of %ld new blocks were in host memory",
                 atomic_load(&reused_in_host), atomic_load(&reused));
    cr_assert_eq(cuCtxSynchronize(), CUDA_SUCCESS);
    vs_arena_device_synchronized(a);
    fx_validate(a, "the reusers");
    fx_destroy(a);
}
