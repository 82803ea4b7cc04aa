/* Stream order: work queued before a demote or promote, on any stream, runs against the old
 * placement and finishes before the granules move; the call waits for it. */
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "evict_fixture.h"

struct call {
    struct vs_arena *a;
    uint32_t name;
    bool promote;
    CUresult err;
    atomic_bool done;
};

static void *run_call(void *arg)
{
    struct call *c = arg;
    cuCtxSetCurrent(fx_ctx);
    c->err = c->promote ? vs_arena_promote(c->a, c->name, NULL)
                        : vs_arena_demote(c->a, c->name, NULL);
    atomic_store(&c->done, true);
    return NULL;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* A memset queued on a held stream before the call must land before the copy, i.e. the call
 * waits until the stream runs, and the data then lives in the new backing. */
static void queued_work_is_ordered_before(bool promote)
{
    arena_fixture_start(128 * MiB);
    struct vs_arena *a = arena_new(SIZE_MAX);
    uint32_t w = ef_name("w");
    vs_arena_set_stage(a, w);
    uint64_t seed = 3;
    struct ef_block b;
    ef_alloc(a, &b, 4 * MiB, &seed);
    if (promote)
        cr_assert_eq(vs_arena_demote(a, w, NULL), CUDA_SUCCESS);

    CUstream s = fx_stream();
    cr_assert_eq(simcuda_hold_stream(s), 0);
    cr_assert_eq(cuMemsetD8Async(b.p + MiB, 0xab, 2 * MiB, s), CUDA_SUCCESS);
    struct call c = {.a = a, .name = w, .promote = promote};
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, run_call, &c), 0);
    sleep_ms(150);
    cr_assert_not(atomic_load(&c.done), "the %s did not wait for queued work",
                  promote ? "promote" : "demote");
    cr_assert_eq(simcuda_release_stream(s), 0);
    pthread_join(t, NULL);
    cr_assert_eq(c.err, CUDA_SUCCESS);
    cr_assert_eq(vs_arena_block_demoted_bytes(a, b.p), promote ? 0 : 4 * MiB);
    memset(b.want + MiB, 0xab, 2 * MiB);
    cr_assert(ef_intact(&b), "the queued memset was lost or landed in the old backing");
    cr_assert_eq(cuStreamDestroy(s), CUDA_SUCCESS);
    ef_forget(&b, 1);
    fx_destroy(a);
}

Test(evict_order, demote_waits_for_work_queued_before_it)
{
    queued_work_is_ordered_before(false);
}

Test(evict_order, promote_waits_for_work_queued_before_it)
{
    queued_work_is_ordered_before(true);
}
