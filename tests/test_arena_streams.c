/* Free safety of the arena on simcuda: a block is never handed out while work queued before its
 * free can still touch it; stream-ordered frees are reused at once on their own stream;
 * synchronous frees keep cuMemFree's promise and are not stranded.
 */
#include <pthread.h>
#include <time.h>

#include "arena_fixture.h"

static const size_t sizes[] = {4000, 3 * MiB}; /* a size-class object and a large block */

/* Writes a pattern into A, queues a read of A on held stream S, frees A (on S or
 * synchronously), allocates the same size elsewhere (on T or synchronously) and overwrites that
 * block at once. After S is released its read must still see the pattern. */
static void held_read_survives(bool free_async, bool alloc_async, size_t size)
{
    arena_fixture_start(256 * MiB);
    struct vs_arena *a = arena_new(SIZE_MAX);
    CUstream s = fx_stream(), t = fx_stream();
    CUdeviceptr A, B;
    cr_assert_eq(vs_arena_alloc_async(a, size, s, &A), CUDA_SUCCESS);
    memset((void *)(uintptr_t)A, 0xAB, size);
    unsigned char *readback = calloc(1, size);

    cr_assert_eq(simcuda_hold_stream(s), 0);
    cr_assert_eq(cuMemcpyDtoHAsync(readback, A, size, s), CUDA_SUCCESS);
    cr_assert_eq(free_async ? vs_arena_free_async(a, A, s) : vs_arena_free(a, A), CUDA_SUCCESS);

    CUresult r = alloc_async ? vs_arena_alloc_async(a, size, t, &B) : vs_arena_alloc(a, size, &B);
    cr_assert_eq(r, CUDA_SUCCESS);
    memset((void *)(uintptr_t)B, 0x00, size);

    cr_assert_eq(simcuda_release_stream(s), 0);
    cr_assert_eq(cuStreamSynchronize(s), CUDA_SUCCESS);
    for (size_t i = 0; i < size; i++)
        cr_assert_eq(readback[i], 0xAB, "byte %zu of the freed block was overwritten (size %zu)",
                     i, size);
    free(readback);
    fx_destroy(a);
}

Test(arena_streams, async_free_on_held_stream_not_reused_by_other_stream)
{
    for (size_t i = 0; i < 2; i++)
        held_read_survives(true, true, sizes[i]);
}

Test(arena_streams, async_free_on_held_stream_not_reused_by_sync_alloc)
{
    for (size_t i = 0; i < 2; i++)
        held_read_survives(true, false, sizes[i]);
}

/* A synchronous free needs the device idle before reuse. A small block is served from other
 * idle objects at once; a large one, with nothing else free, makes the arena wait for the device
 * as cuMemFree would have: a helper thread releases the held stream meanwhile. */
Test(arena_streams, sync_free_not_reused_before_device_idle)
{
    held_read_survives(false, false, sizes[0]);
    held_read_survives(false, true, sizes[0]);
}

static void *release_later(void *stream)
{
    struct timespec ts = {0, 200 * 1000 * 1000};
    nanosleep(&ts, NULL);
    simcuda_release_stream((CUstream)stream);
    return NULL;
}

Test(arena_streams, sync_free_of_large_block_waits_for_device)
{
    arena_fixture_start(256 * MiB);
    struct vs_arena *a = arena_new(SIZE_MAX);
    CUstream s = fx_stream();
    size_t size = sizes[1];
    CUdeviceptr A, B;
    cr_assert_eq(vs_arena_alloc(a, size, &A), CUDA_SUCCESS);
    memset((void *)(uintptr_t)A, 0xAB, size);
    unsigned char *readback = calloc(1, size);
    cr_assert_eq(simcuda_hold_stream(s), 0);
    cr_assert_eq(cuMemcpyDtoHAsync(readback, A, size, s), CUDA_SUCCESS);
    cr_assert_eq(vs_arena_free(a, A), CUDA_SUCCESS);
    pthread_t th;
    pthread_create(&th, NULL, release_later, s);
    cr_assert_eq(vs_arena_alloc(a, size, &B), CUDA_SUCCESS);
    memset((void *)(uintptr_t)B, 0, size);
    pthread_join(th, NULL);
    cr_assert_eq(cuStreamSynchronize(s), CUDA_SUCCESS);
    for (size_t i = 0; i < size; i++)
        cr_assert_eq(readback[i], 0xAB, "byte %zu overwritten", i);
    free(readback);
    fx_destroy(a);
}

Test(arena_streams, same_stream_reuse_is_immediate)
{
    arena_fixture_start(256 * MiB);
    struct vs_arena *a = arena_new(SIZE_MAX);
    CUstream s = fx_stream();
    cr_assert_eq(simcuda_hold_stream(s), 0); /* nothing on s completes: reuse needs no event */
    for (size_t i = 0; i < 2; i++) {
        CUdeviceptr A, B;
        cr_assert_eq(vs_arena_alloc_async(a, sizes[i], s, &A), CUDA_SUCCESS);
        cr_assert_eq(vs_arena_free_async(a, A, s), CUDA_SUCCESS);
        cr_assert_eq(vs_arena_alloc_async(a, sizes[i], s, &B), CUDA_SUCCESS);
        cr_assert_eq(B, A, "size %zu: freed block not reused on its own stream", sizes[i]);
        cr_assert_eq(vs_arena_free_async(a, B, s), CUDA_SUCCESS);
    }
    cr_assert_eq(simcuda_release_stream(s), 0);
    fx_destroy(a);
}

Test(arena_streams, other_stream_reuses_after_event_completes)
{
    arena_fixture_start(256 * MiB);
    struct vs_arena *a = arena_new(SIZE_MAX);
    CUstream s = fx_stream(), t = fx_stream();
    for (size_t i = 0; i < 2; i++) {
        enum { N = 300 };
        size_t n = i == 0 ? N : 4;
        CUdeviceptr freed[N], got[N];
        for (size_t k = 0; k < n; k++)
            cr_assert_eq(vs_arena_alloc_async(a, sizes[i], s, &freed[k]), CUDA_SUCCESS);
        for (size_t k = 0; k < n; k++)
            cr_assert_eq(vs_arena_free_async(a, freed[k], s), CUDA_SUCCESS);
        cr_assert_eq(cuStreamSynchronize(s), CUDA_SUCCESS);
        /* Only the first request may come before s has run the event it records. */
        size_t before = simcuda_physical_in_use(0);
        for (size_t k = 0; k < n; k++) {
            cr_assert_eq(vs_arena_alloc_async(a, sizes[i], t, &got[k]), CUDA_SUCCESS);
            cr_assert_eq(cuStreamSynchronize(s), CUDA_SUCCESS);
        }
        size_t growth = simcuda_physical_in_use(0) - before;
        cr_assert_leq(growth, sizes[i] < 2 * MiB ? 2 * MiB : 2 * sizes[i],
                      "size %zu: memory grew by %zu bytes although the frees had completed",
                      sizes[i], growth);
        for (size_t k = 0; k < n; k++)
            vs_arena_free_async(a, got[k], t);
    }
    fx_destroy(a);
}

Test(arena_streams, sync_free_reused_after_reported_sync)
{
    arena_fixture_start(256 * MiB);
    struct vs_arena *a = arena_new(SIZE_MAX);
    for (size_t i = 0; i < 2; i++) {
        CUdeviceptr A, B;
        cr_assert_eq(vs_arena_alloc(a, sizes[i], &A), CUDA_SUCCESS);
        cr_assert_eq(vs_arena_free(a, A), CUDA_SUCCESS);
        cr_assert_eq(cuCtxSynchronize(), CUDA_SUCCESS);
        vs_arena_device_synchronized(a);
        cr_assert_eq(vs_arena_alloc(a, sizes[i], &B), CUDA_SUCCESS);
        cr_assert_eq(B, A, "size %zu: block not reused after the device was idle", sizes[i]);
        vs_arena_free(a, B);
    }
    fx_destroy(a);
}

/* Synchronously freed memory is not stranded: with room for one block only, the second request
 * makes the arena wait for the device and reuse the first. */
Test(arena_streams, sync_free_reused_under_pressure)
{
    arena_fixture_start(64 * MiB);
    struct vs_arena *a = arena_new(SIZE_MAX);
    CUdeviceptr A, B;
    cr_assert_eq(vs_arena_alloc(a, 48 * MiB, &A), CUDA_SUCCESS);
    cr_assert_eq(vs_arena_free(a, A), CUDA_SUCCESS);
    cr_assert_eq(vs_arena_alloc(a, 48 * MiB, &B), CUDA_SUCCESS);
    struct vs_arena_stats st;
    vs_arena_stats(a, &st);
    cr_assert_eq(st.physical_bytes, 48 * MiB);
    cr_assert_geq(st.syncs, 1);
    fx_destroy(a);
}

/* Same for stream-ordered frees on another stream: pressure waits for their events. */
Test(arena_streams, async_free_reused_under_pressure_from_other_stream)
{
    arena_fixture_start(64 * MiB);
    struct vs_arena *a = arena_new(SIZE_MAX);
    CUstream s = fx_stream(), t = fx_stream();
    CUdeviceptr A, B;
    cr_assert_eq(vs_arena_alloc_async(a, 48 * MiB, s, &A), CUDA_SUCCESS);
    cr_assert_eq(vs_arena_free_async(a, A, s), CUDA_SUCCESS);
    cr_assert_eq(vs_arena_alloc_async(a, 48 * MiB, t, &B), CUDA_SUCCESS);
    cr_assert_eq(simcuda_physical_in_use(0), 48 * MiB);
    fx_destroy(a);
}

/* A destroyed stream's handle may come back for a new stream that is not ordered after the old
 * one's work: blocks freed on the old stream must not count as "same stream" for it. */
Test(arena_streams, destroyed_stream_blocks_not_reused_by_namesake)
{
    arena_fixture_start(256 * MiB);
    struct vs_arena *a = arena_new(SIZE_MAX);
    CUstream s = fx_stream();
    CUdeviceptr A, B;
    cr_assert_eq(simcuda_hold_stream(s), 0);
    cr_assert_eq(vs_arena_alloc_async(a, 4000, s, &A), CUDA_SUCCESS);
    cr_assert_eq(vs_arena_free_async(a, A, s), CUDA_SUCCESS);
    vs_arena_stream_destroyed(a, s);
    cr_assert_eq(vs_arena_alloc_async(a, 4000, s, &B), CUDA_SUCCESS);
    cr_assert_neq(B, A);
    cr_assert_eq(simcuda_release_stream(s), 0);
    fx_destroy(a);
}

/* The same when another thread freed the block: its thread cache, reached by the stream's
 * handle, must not hand the block out on the new stream either. */
struct namesake {
    struct vs_arena *a;
    CUstream s;
    pthread_barrier_t destroyed;
    CUdeviceptr freed, got;
};

static void *free_then_alloc_after_destroy(void *arg)
{
    struct namesake *n = arg;
    cuCtxSetCurrent(fx_ctx);
    if (vs_arena_alloc_async(n->a, 4000, n->s, &n->freed) != CUDA_SUCCESS ||
        vs_arena_free_async(n->a, n->freed, n->s) != CUDA_SUCCESS)
        n->freed = 0;
    pthread_barrier_wait(&n->destroyed); /* the main thread destroys the stream */
    pthread_barrier_wait(&n->destroyed);
    if (vs_arena_alloc_async(n->a, 4000, n->s, &n->got) != CUDA_SUCCESS)
        n->got = 0;
    return NULL;
}

Test(arena_streams, destroyed_stream_blocks_cached_by_another_thread_not_reused_by_namesake)
{
    arena_fixture_start(256 * MiB);
    struct namesake n = {.a = arena_new(SIZE_MAX), .s = fx_stream()};
    cr_assert_eq(simcuda_hold_stream(n.s), 0);
    pthread_barrier_init(&n.destroyed, NULL, 2);
    pthread_t th;
    pthread_create(&th, NULL, free_then_alloc_after_destroy, &n);
    pthread_barrier_wait(&n.destroyed);
    vs_arena_stream_destroyed(n.a, n.s);
    pthread_barrier_wait(&n.destroyed);
    pthread_join(th, NULL);
    pthread_barrier_destroy(&n.destroyed);
    cr_assert_neq(n.freed, 0);
    cr_assert_neq(n.got, 0);
    cr_assert_neq(n.got, n.freed,
                  "a block freed on a destroyed stream was handed out on its namesake");
    cr_assert_eq(simcuda_release_stream(n.s), 0);
    fx_destroy(n.a);
}

/* Handles 0 and CU_STREAM_LEGACY name one stream: a block freed on one is reused at once on the
 * other. */
Test(arena_streams, legacy_stream_handles_are_one_stream)
{
    arena_fixture_start(256 * MiB);
    struct vs_arena *a = arena_new(SIZE_MAX);
    CUdeviceptr A, B;
    cr_assert_eq(vs_arena_alloc_async(a, 4000, 0, &A), CUDA_SUCCESS);
    cr_assert_eq(vs_arena_free_async(a, A, 0), CUDA_SUCCESS);
    cr_assert_eq(vs_arena_alloc_async(a, 4000, CU_STREAM_LEGACY, &B), CUDA_SUCCESS);
    cr_assert_eq(B, A);
    cr_assert_eq(vs_arena_free_async(a, B, CU_STREAM_LEGACY), CUDA_SUCCESS);
    fx_destroy(a);
}

static void *alloc_on_own_per_thread_stream(void *arena)
{
    static CUdeviceptr p;
    cuCtxSetCurrent(fx_ctx);
    if (vs_arena_alloc_async(arena, 4000, CU_STREAM_PER_THREAD, &p) != CUDA_SUCCESS)
        p = 0;
    return &p;
}

Test(arena_streams, per_thread_streams_are_distinct)
{
    arena_fixture_start(256 * MiB);
    struct vs_arena *a = arena_new(SIZE_MAX);
    CUdeviceptr A, B;
    cr_assert_eq(simcuda_hold_stream(CU_STREAM_PER_THREAD), 0);
    cr_assert_eq(vs_arena_alloc_async(a, 4000, CU_STREAM_PER_THREAD, &A), CUDA_SUCCESS);
    cr_assert_eq(vs_arena_free_async(a, A, CU_STREAM_PER_THREAD), CUDA_SUCCESS);
    pthread_t th;
    void *res;
    pthread_create(&th, NULL, alloc_on_own_per_thread_stream, a);
    pthread_join(th, &res);
    CUdeviceptr other = *(CUdeviceptr *)res;
    cr_assert_neq(other, 0);
    cr_assert_neq(other, A, "another thread's per-thread stream got a block still in use");
    cr_assert_eq(vs_arena_alloc_async(a, 4000, CU_STREAM_PER_THREAD, &B), CUDA_SUCCESS);
    cr_assert_eq(B, A, "the same thread's per-thread stream reuses at once");
    cr_assert_eq(simcuda_release_stream(CU_STREAM_PER_THREAD), 0);
    fx_destroy(a);
}

/* On its own stream a freed large block is reusable at once in any shape: neighbours freed on
 * the stream merge for a larger request, and the rest serves a smaller one, with no new memory;
 * another stream still gets none of it while the stream has not run. */
Test(arena_streams, same_stream_frees_merge_and_split_without_growth)
{
    arena_fixture_start(256 * MiB);
    struct vs_arena *a = arena_new(SIZE_MAX);
    CUstream s = fx_stream(), t = fx_stream();
    CUdeviceptr A, B, C, D, E;
    cr_assert_eq(simcuda_hold_stream(s), 0);
    cr_assert_eq(vs_arena_alloc_async(a, 40 * MiB, s, &A), CUDA_SUCCESS);
    cr_assert_eq(vs_arena_alloc_async(a, 40 * MiB, s, &B), CUDA_SUCCESS);
    cr_assert_eq(B, A + 40 * MiB, "set-up expects neighbours");
    size_t phys = simcuda_physical_in_use(0);
    cr_assert_eq(vs_arena_free_async(a, A, s), CUDA_SUCCESS);
    cr_assert_eq(vs_arena_free_async(a, B, s), CUDA_SUCCESS);
    cr_assert_eq(vs_arena_alloc_async(a, 70 * MiB, s, &C), CUDA_SUCCESS);
    cr_assert(C >= A && C + 70 * MiB <= A + 80 * MiB, "merged request placed elsewhere");
    cr_assert_eq(vs_arena_alloc_async(a, 8 * MiB, s, &D), CUDA_SUCCESS);
    cr_assert(D >= A && D + 8 * MiB <= A + 80 * MiB, "the rest was not reused");
    cr_assert_eq(simcuda_physical_in_use(0), phys, "memory grew");
    cr_assert_eq(vs_arena_alloc_async(a, 8 * MiB, t, &E), CUDA_SUCCESS);
    cr_assert(E + 8 * MiB <= A || E >= A + 80 * MiB, "another stream got memory still in use");
    cr_assert_eq(simcuda_release_stream(s), 0);
    fx_destroy(a);
}

/* When the driver refuses the event that should cover a stream's freed blocks, they wait for a
 * device synchronisation instead; the pending figure must count them exactly once, so that the
 * synchronisation brings it back to zero (not left too high for good). */
Test(arena_streams, failed_event_record_keeps_pending_accounting)
{
    arena_fixture_start(256 * MiB);
    struct vs_arena *a = arena_new(SIZE_MAX);
    CUstream s = fx_stream();
    CUdeviceptr p[3];
    for (int i = 0; i < 3; i++)
        cr_assert_eq(vs_arena_alloc_async(a, 3 * MiB, s, &p[i]), CUDA_SUCCESS);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(vs_arena_free_async(a, p[i], s), CUDA_SUCCESS);
    struct vs_arena_stats st;
    vs_arena_stats(a, &st);
    cr_assert_eq(st.pending_bytes, 9 * MiB);
    cr_assert_eq(simcuda_fail_call("cuEventRecord", 1, CUDA_ERROR_LAUNCH_FAILED), 0);
    vs_arena_stream_destroyed(a, s); /* records an event for the listed blocks: refused */
    vs_arena_stats(a, &st);
    cr_assert_eq(st.pending_bytes, 9 * MiB, "blocks lost or double counted after the refusal");
    fx_validate(a, "the refused event record"); /* pending = groups + sync list */
    cr_assert_eq(cuCtxSynchronize(), CUDA_SUCCESS);
    vs_arena_device_synchronized(a);
    vs_arena_stats(a, &st);
    cr_assert_eq(st.pending_bytes, 0, "pending stays at %zu bytes after a device sync",
                 st.pending_bytes);
    size_t held = simcuda_physical_in_use(0);
    CUdeviceptr q;
    cr_assert_eq(vs_arena_alloc(a, 9 * MiB, &q), CUDA_SUCCESS);
    cr_assert_eq(simcuda_physical_in_use(0), held, "the freed blocks were not reused");
    cuStreamDestroy(s);
    fx_destroy(a);
}
