/* Demote and promote keep every byte and every pointer: many cycles over mixed sizes (small
 * objects sharing pages, blocks sharing granules), accesses to demoted memory through the
 * driver, and device memory actually given back. */
#include "allocator/internal.h"
#include "evict_fixture.h"

#define NSMALL 64 /* 1000-byte objects: exactly one page of their size class, full */
#define NBLK (NSMALL + 24)

static const size_t sizes[] = {1000, 3 << 10, 100 << 10, 300 << 10, 2 * MiB, (3 * MiB) + 123,
                               512, 70 << 10};
static const size_t large_sizes[] = {300 << 10, 2 * MiB, (3 * MiB) + 123, 5 * MiB};

/* The end of a test: promotes stage, checks that the n blocks at b kept every byte, destroys a. */
static void promote_and_check(struct vs_arena *a, uint32_t stage, struct ef_block *b, int n)
{
    cr_assert_eq(vs_arena_promote(a, stage, NULL), CUDA_SUCCESS);
    for (int i = 0; i < n; i++)
        cr_assert(ef_intact(&b[i]), "object %d changed", i);
    ef_forget(b, (size_t)n);
    fx_destroy(a);
}

/* A new arena whose stage "w" has allocated b[NSMALL]: one full page of 1000-byte objects. */
static struct vs_arena *full_page_in_stage_w(struct ef_block *b, uint32_t *w, uint64_t *seed)
{
    arena_fixture_start(256 * MiB);
    struct vs_arena *a = arena_new(SIZE_MAX);
    *w = ef_name("w");
    vs_arena_set_stage(a, *w);
    for (int i = 0; i < NSMALL; i++)
        ef_alloc(a, &b[i], 1000, seed);
    return a;
}

/* Small objects filling their granule, and large blocks of several sizes. */
Test(evict_contents, hundred_cycles_keep_bytes_and_pointers)
{
    arena_fixture_start(512 * MiB);
    struct vs_arena *a = arena_new(SIZE_MAX);
    uint32_t w = ef_name("weights");
    vs_arena_set_stage(a, w);
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    struct ef_block b[NBLK];
    for (int i = 0; i < NBLK; i++)
        ef_alloc(a, &b[i], i < NSMALL ? 1000 : large_sizes[ef_rand(&seed) % 4], &seed);
    vs_arena_set_stage(a, 0);

    for (int cycle = 0; cycle < 100; cycle++) {
        size_t down = 0, up = 0;
        cr_assert_eq(vs_arena_demote(a, w, &down), CUDA_SUCCESS, "cycle %d", cycle);
        cr_assert_gt(down, 0);
        for (int i = 0; i < NBLK; i++) {
            cr_assert_eq(vs_arena_block_demoted_bytes(a, b[i].p), b[i].n,
                         "cycle %d: block %d (%zu bytes) not fully demoted", cycle, i, b[i].n);
            cr_assert(ef_intact(&b[i]), "cycle %d: block %d changed by demote", cycle, i);
        }
        cr_assert_eq(vs_arena_promote(a, w, &up), CUDA_SUCCESS);
        cr_assert_eq(up, down, "cycle %d: demoted %zu, promoted %zu", cycle, down, up);
        for (int i = 0; i < NBLK; i++) {
            struct vs_block_info info;
            cr_assert_eq(vs_arena_block_info(a, b[i].p, &info), CUDA_SUCCESS);
            cr_assert_eq(info.base, b[i].p);
            cr_assert_eq(info.size, b[i].n);
            cr_assert_eq(vs_arena_block_demoted_bytes(a, b[i].p), 0);
            cr_assert(ef_intact(&b[i]), "cycle %d: block %d changed by promote", cycle, i);
        }
    }
    struct vs_evict_stats st;
    vs_arena_evict_stats(a, &st);
    cr_assert_eq(st.state, VS_EVICT_ON);
    cr_assert_eq(st.host_bytes, 0);
    cr_assert_eq(st.demotes, st.promotes);
    for (int i = 0; i < NBLK; i++)
        ef_free(a, &b[i]);
    fx_destroy(a);
    cr_assert_eq(simcuda_physical_in_use(0), 0);
}

/* A granule of small objects moves with a free object in it (a demote makes every thread pass
 * a memory barrier, so that object cannot be handed out unseen during the copy); the object,
 * reallocated while its granule is in host memory, is set aside and the request gets device
 * memory instead. */
Test(evict_contents, small_objects_move_with_a_free_object_in_their_granule)
{
    if (!vs_evict_barrier_works())
        cr_skip_test("no expedited membarrier here: only full small-object granules move");
    uint32_t w;
    uint64_t seed = 8;
    struct ef_block b[NSMALL];
    struct vs_arena *a = full_page_in_stage_w(b, &w, &seed);
    CUdeviceptr freed = b[NSMALL - 1].p;
    ef_free(a, &b[NSMALL - 1]);
    vs_arena_device_synchronized(a); /* the freed object is reusable by any request */
    size_t moved = 0;
    cr_assert_eq(vs_arena_demote(a, w, &moved), CUDA_SUCCESS);
    cr_assert_eq(moved, 2 * MiB);
    ef_alloc(a, &b[NSMALL - 1], 1000, &seed);
    cr_assert_neq(b[NSMALL - 1].p, freed, "an object of a demoted granule was handed out");
    cr_assert_eq(vs_arena_block_demoted_bytes(a, b[NSMALL - 1].p), 0);
    for (int i = 0; i < NSMALL - 1; i++)
        cr_assert_eq(vs_arena_block_demoted_bytes(a, b[i].p), 1000, "object %d", i);
    promote_and_check(a, w, b, NSMALL);
}

/* Small objects of two stages allocated interleaved, of the same sizes, never share a granule;
 * demoting one stage moves every one of its objects and none of the other's. */
Test(evict_contents, small_objects_of_a_stage_move_without_the_others)
{
    arena_fixture_start(256 * MiB);
    struct vs_arena *a = arena_new(SIZE_MAX);
    uint32_t sa = ef_name("A"), sb = ef_name("B");
    uint64_t seed = 11;
    enum { N = 40 };
    struct ef_block x[N];
    for (int i = 0; i < N; i++) {
        vs_arena_set_stage(a, i % 2 ? sb : sa);
        ef_alloc(a, &x[i], i % 4 < 2 ? 1000 : 20 << 10, &seed);
    }
    vs_arena_set_stage(a, 0);
    for (int i = 0; i < N; i++)
        for (int j = 1; j < N; j += 2)
            cr_assert(i % 2 || x[i].p / (2 * MiB) != x[j].p / (2 * MiB),
                      "objects %d (A) and %d (B) share a granule", i, j);
    size_t moved = 0;
    cr_assert_eq(vs_arena_demote(a, sa, &moved), CUDA_SUCCESS);
    cr_assert_gt(moved, 0);
    for (int i = 0; i < N; i++)
        cr_assert_eq(vs_arena_block_demoted_bytes(a, x[i].p), i % 2 ? 0 : x[i].n,
                     "object %d (stage %c)", i, i % 2 ? 'B' : 'A');
    promote_and_check(a, sa, x, N);
}

/* Groups are bounded: the first VS_NGROUPS - 1 (stage, tag) pairs get their own granules, later
 * pairs share those of (no stage, no tag). */
Test(evict_contents, stages_beyond_the_groups_share_the_common_granules)
{
    arena_fixture_start(256 * MiB);
    struct vs_arena *a = arena_new(SIZE_MAX);
    uint64_t seed = 5;
    struct ef_block x[VS_NGROUPS + 1];
    char name[16];
    for (int i = 0; i <= VS_NGROUPS; i++) {
        snprintf(name, sizeof name, "s%d", i);
        vs_arena_set_stage(a, i ? ef_name(name) : 0);
        ef_alloc(a, &x[i], 1000, &seed);
    }
    for (int i = 1; i < VS_NGROUPS; i++)
        cr_assert_neq(x[i].p / (2 * MiB), x[0].p / (2 * MiB), "stage %d", i);
    cr_assert_eq(x[VS_NGROUPS].p / (2 * MiB), x[0].p / (2 * MiB));
    ef_forget(x, VS_NGROUPS + 1);
    fx_destroy(a);
}

/* Granules shared with blocks of another stage stay on the device; the other stage's blocks are
 * never touched, and what moved frees exactly that much device memory. */
Test(evict_contents, only_whole_granules_of_the_selection_move)
{
    arena_fixture_start(512 * MiB);
    struct vs_arena *a = arena_new(SIZE_MAX);
    uint32_t sa = ef_name("A"), sb = ef_name("B");
    uint64_t seed = 42;
    struct ef_block x[24];
    for (int i = 0; i < 24; i++) {
        vs_arena_set_stage(a, i % 2 ? sb : sa); /* interleaved: they share pages and granules */
        ef_alloc(a, &x[i], sizes[i % 8], &seed);
    }
    size_t phys = simcuda_physical_in_use(0), moved = 0;
    cr_assert_eq(vs_arena_demote(a, sa, &moved), CUDA_SUCCESS);
    vs_arena_trim(a, 0);
    cr_assert_eq(simcuda_physical_in_use(0), phys - moved,
                 "device memory in use %zu, expected %zu - %zu", simcuda_physical_in_use(0), phys,
                 moved);
    for (int i = 0; i < 24; i++) {
        cr_assert(ef_intact(&x[i]), "block %d changed", i);
        if (i % 2)
            cr_assert_eq(vs_arena_block_demoted_bytes(a, x[i].p), 0, "B block %d demoted", i);
    }
    size_t a_demoted = 0;
    for (int i = 0; i < 24; i += 2)
        a_demoted += vs_arena_block_demoted_bytes(a, x[i].p);
    cr_assert_leq(a_demoted, moved);
    promote_and_check(a, sa, x, 24);
}

/* A new arena (cache limit 0: freed device granules go back to the driver) whose stage "w" has
 * allocated one 8 MiB block, big. */
static struct vs_arena *big_block_in_stage_w(struct ef_block *big, uint32_t *w, uint64_t *seed)
{
    arena_fixture_start(256 * MiB);
    struct vs_arena *a = arena_new(0);
    *w = ef_name("w");
    vs_arena_set_stage(a, *w);
    ef_alloc(a, big, 8 * MiB, seed);
    vs_arena_set_stage(a, 0);
    return a;
}

/* Memory demoted is host memory mapped at the same address: the device may keep using it
 * (copies and memsets on a stream), device memory is not used for it, and what was written
 * there is what a promote brings back. */
Test(evict_contents, driver_access_to_a_demoted_block_lands_in_host_memory)
{
    uint32_t w;
    uint64_t seed = 7;
    struct ef_block big;
    struct vs_arena *a = big_block_in_stage_w(&big, &w, &seed);
    struct ef_block src;
    ef_alloc(a, &src, 1 * MiB, &seed);
    size_t phys = simcuda_physical_in_use(0), moved;
    cr_assert_eq(vs_arena_demote(a, w, &moved), CUDA_SUCCESS);
    cr_assert_eq(moved, 8 * MiB);
    cr_assert_eq(simcuda_physical_in_use(0), phys - 8 * MiB,
                 "the device granules should have gone back (cache limit 0)");

    CUstream s = fx_stream();
    cr_assert_eq(cuMemsetD8Async(big.p, 0x77, 2 * MiB, s), CUDA_SUCCESS);
    cr_assert_eq(cuMemcpyAsync(big.p + 4 * MiB, src.p, 1 * MiB, s), CUDA_SUCCESS);
    cr_assert_eq(cuStreamSynchronize(s), CUDA_SUCCESS);
    cr_assert_eq(simcuda_physical_in_use(0), phys - 8 * MiB, "device memory used for it");
    memset(big.want, 0x77, 2 * MiB);
    memcpy(big.want + 4 * MiB, src.want, 1 * MiB);
    cr_assert(ef_intact(&big), "writes to the demoted block went elsewhere");

    cr_assert_eq(vs_arena_promote(a, w, &moved), CUDA_SUCCESS);
    cr_assert_eq(simcuda_physical_in_use(0), phys);
    cr_assert(ef_intact(&big), "promote lost what was written while demoted");
    cr_assert_eq(cuStreamDestroy(s), CUDA_SUCCESS);
    ef_forget(&big, 1);
    ef_forget(&src, 1);
    fx_destroy(a);
}

/* Freeing a demoted block gives its host memory back; the VA is reused with device memory. */
Test(evict_contents, freeing_a_demoted_block_releases_its_host_memory)
{
    arena_fixture_start(256 * MiB);
    struct vs_arena *a = arena_new(SIZE_MAX);
    uint32_t w = ef_name("w");
    vs_arena_set_stage(a, w);
    uint64_t seed = 9;
    struct ef_block b;
    ef_alloc(a, &b, 6 * MiB, &seed);
    cr_assert_eq(vs_arena_demote(a, w, NULL), CUDA_SUCCESS);
    struct vs_evict_stats st;
    vs_arena_evict_stats(a, &st);
    cr_assert_eq(st.host_bytes, 6 * MiB);
    ef_free(a, &b);
    vs_arena_device_synchronized(a);
    CUdeviceptr p;
    cr_assert_eq(vs_arena_alloc(a, 64 * MiB, &p), CUDA_SUCCESS);
    vs_arena_evict_stats(a, &st);
    cr_assert_eq(st.host_bytes, 0, "host memory of a freed block kept: %zu", st.host_bytes);
    cr_assert_eq(vs_arena_block_demoted_bytes(a, p), 0, "a new block landed in host memory");
    fx_destroy(a);
}

/* A large block freed on a stream while demoted stays in host memory: a request on that stream
 * gets device memory elsewhere, not that block (its owner would write it in host memory, where
 * a promote moving the granule under the writes loses them). */
Test(evict_contents, a_demoted_block_freed_on_a_stream_is_not_reused_by_it)
{
    arena_fixture_start(256 * MiB);
    struct vs_arena *a = arena_new(SIZE_MAX);
    uint32_t w = ef_name("w");
    CUstream s = fx_stream();
    CUdeviceptr x, y;
    cr_assert_eq(vs_arena_alloc_async(a, 4 * MiB, s, &x), CUDA_SUCCESS);
    cr_assert_eq(vs_arena_set_tag(a, x, w), CUDA_SUCCESS);
    cr_assert_eq(vs_arena_demote(a, w, NULL), CUDA_SUCCESS);
    cr_assert_eq(vs_arena_block_demoted_bytes(a, x), 4 * MiB);
    cr_assert_eq(vs_arena_free_async(a, x, s), CUDA_SUCCESS);
    cr_assert_eq(vs_arena_alloc_async(a, 4 * MiB, s, &y), CUDA_SUCCESS);
    cr_assert_eq(vs_arena_block_demoted_bytes(a, y), 0, "a new block landed in host memory");
    fx_fill(y, 4 * MiB, 3);
    cr_assert(fx_check(y, 4 * MiB, 3));
    fx_validate(a, "reuse on the stream");
    cr_assert_eq(vs_arena_free_async(a, y, s), CUDA_SUCCESS);
    cr_assert_eq(cuStreamSynchronize(s), CUDA_SUCCESS);
    cr_assert_eq(cuStreamDestroy(s), CUDA_SUCCESS);
    fx_destroy(a);
}

/* The free part of a demoted granule is never given to a new block, even when it is the only
 * free VA: more VA is reserved instead. */
Test(evict_contents, new_blocks_never_land_in_the_free_part_of_a_demoted_granule)
{
    arena_fixture_start(256 * MiB);
    struct vs_arena_options opt = {.cache_max = SIZE_MAX, .va_chunk = 4 * MiB};
    struct vs_arena *a = NULL;
    cr_assert_eq(vs_arena_create(&fx_drv, fx_dev, fx_ctx, &opt, &a), CUDA_SUCCESS);
    uint32_t w = ef_name("w");
    uint64_t seed = 11;
    /* x: first half of granule 0, z: granule 1; granule 0's other half free */
    struct ef_block x, z;
    CUdeviceptr gap, y;
    ef_alloc(a, &x, 1 * MiB, &seed);
    cr_assert_eq(vs_arena_alloc(a, 1 * MiB, &gap), CUDA_SUCCESS);
    ef_alloc(a, &z, 2 * MiB, &seed);
    cr_assert_eq(gap, x.p + 1 * MiB);
    cr_assert_eq(z.p, x.p + 2 * MiB);
    cr_assert_eq(vs_arena_free(a, gap), CUDA_SUCCESS);
    vs_arena_device_synchronized(a);
    cr_assert_eq(vs_arena_set_tag(a, x.p, w), CUDA_SUCCESS);
    cr_assert_eq(vs_arena_demote(a, w, NULL), CUDA_SUCCESS);
    cr_assert_eq(vs_arena_block_demoted_bytes(a, x.p), 1 * MiB);
    cr_assert_eq(vs_arena_alloc(a, 1 * MiB, &y), CUDA_SUCCESS);
    cr_assert_eq(vs_arena_block_demoted_bytes(a, y), 0, "a new block landed in host memory");
    fx_fill(y, 1 * MiB, 5);
    cr_assert_eq(vs_arena_promote(a, w, NULL), CUDA_SUCCESS);
    cr_assert(fx_check(y, 1 * MiB, 5));
    cr_assert(ef_intact(&x) && ef_intact(&z));
    fx_validate(a, "placement next to a demoted block");
    ef_forget(&x, 1);
    ef_forget(&z, 1);
    fx_destroy(a);
}

Test(evict_contents, bad_requests)
{
    arena_fixture_start(64 * MiB);
    struct vs_arena *a = arena_new(SIZE_MAX);
    cr_assert_eq(vs_arena_demote(a, 0, NULL), CUDA_ERROR_INVALID_VALUE);
    cr_assert_eq(vs_arena_promote(a, 0, NULL), CUDA_ERROR_INVALID_VALUE);
    cr_assert_eq(vs_arena_demote_if(a, NULL, NULL, NULL), CUDA_ERROR_INVALID_VALUE);
    size_t moved = 1;
    cr_assert_eq(vs_arena_demote(a, ef_name("nothing"), &moved), CUDA_SUCCESS);
    cr_assert_eq(moved, 0);
    fx_destroy(a);
}

/* The same for small objects: freed objects of a demoted granule are never handed out again
 * while it is in host memory (they are set aside when a request meets them), yet once all of
 * them are free the granule's host memory still goes back. */
Test(evict_contents, freeing_demoted_small_objects_releases_their_host_memory)
{
    arena_fixture_start(256 * MiB);
    struct vs_arena *a = arena_new(SIZE_MAX);
    uint32_t w = ef_name("w");
    vs_arena_set_stage(a, w);
    CUdeviceptr obj[32], p;
    size_t granules = 0; /* 64 KiB objects, in pages of their stage's granules */
    for (int i = 0; i < 32; i++) {
        cr_assert_eq(vs_arena_alloc(a, 64 << 10, &obj[i]), CUDA_SUCCESS);
        bool seen = false;
        for (int j = 0; j < i; j++)
            seen |= obj[j] / (2 * MiB) == obj[i] / (2 * MiB);
        granules += !seen;
    }
    cr_assert_eq(vs_arena_demote(a, w, NULL), CUDA_SUCCESS);
    struct vs_evict_stats st;
    vs_arena_evict_stats(a, &st);
    cr_assert_eq(st.host_bytes, granules * 2 * MiB);
    for (int i = 0; i < 32; i++)
        cr_assert_eq(vs_arena_free(a, obj[i]), CUDA_SUCCESS);
    vs_arena_device_synchronized(a);
    cr_assert_eq(vs_arena_alloc(a, 64 << 10, &p), CUDA_SUCCESS); /* meets the freed ones */
    cr_assert_eq(vs_arena_block_demoted_bytes(a, p), 0, "a new object landed in host memory");
    fx_validate(a, "an allocation that set objects aside");
    cr_assert_eq(vs_arena_free(a, p), CUDA_SUCCESS);
    vs_arena_device_synchronized(a);
    vs_arena_trim(a, SIZE_MAX); /* empty pages go back */
    cr_assert_eq(vs_arena_alloc(a, 64 * MiB, &p), CUDA_SUCCESS);
    vs_arena_evict_stats(a, &st);
    cr_assert_eq(st.host_bytes, 0, "host memory of freed objects kept: %zu", st.host_bytes);
    fx_destroy(a);
}

/* An object of a demoted granule freed on a stream and met there by a request is set aside
 * (parked) for that stream; a device synchronisation makes it idle for everyone, so nothing
 * stays pending after it, also when a trim returns the parked objects afterwards. */
Test(evict_contents, a_parked_object_of_a_stream_is_idle_after_a_device_sync)
{
    uint32_t w;
    uint64_t seed = 9;
    struct ef_block b[NSMALL];
    struct vs_arena *a = full_page_in_stage_w(b, &w, &seed);
    cr_assert_eq(vs_arena_demote(a, w, NULL), CUDA_SUCCESS);
    CUstream s = fx_stream();
    CUdeviceptr freed = b[NSMALL - 1].p;
    cr_assert_eq(vs_arena_free_async(a, freed, s), CUDA_SUCCESS);
    ef_forget(&b[NSMALL - 1], 1);
    CUdeviceptr p;
    cr_assert_eq(vs_arena_alloc_async(a, 1000, s, &p), CUDA_SUCCESS);
    cr_assert_neq(p, freed, "an object of a demoted granule was handed out");
    cr_assert_eq(vs_arena_free(a, p), CUDA_SUCCESS);
    vs_arena_device_synchronized(a);
    vs_arena_trim(a, SIZE_MAX);
    struct vs_arena_stats st;
    vs_arena_stats(a, &st);
    cr_assert_eq(st.pending_bytes, 0, "%zu bytes pending after a device sync", st.pending_bytes);
    fx_validate(a, "a device sync and a trim");
    promote_and_check(a, w, b, NSMALL - 1);
}

/* The program may read a demoted or promoted block at any moment of the move (a copy queued on
 * its stream runs on the driver's worker, without the arena lock): the block's VA must only ever
 * be accessible while it maps memory holding the block's contents. Checked each time the move
 * gives access to a range overlapping the block (cuMemSetAccess), in both directions, with cache
 * limit 0 so a promote's device granules come fresh from the driver, and with the granules a
 * demote gave back filled by someone else before the promote takes them again. */
static struct ef_block *watched;
static int watch_seen, watch_bad;
static PFN_cuMemSetAccess_v10020 real_set_access;

static CUresult watching_set_access(CUdeviceptr ptr, size_t size, const CUmemAccessDesc *desc,
                                    size_t count)
{
    CUresult err = real_set_access(ptr, size, desc, count);
    CUdeviceptr lo = ptr > watched->p ? ptr : watched->p;
    CUdeviceptr hi = ptr + size < watched->p + watched->n ? ptr + size : watched->p + watched->n;
    if (err == CUDA_SUCCESS && lo < hi) {
        watch_seen++;
        watch_bad += memcmp((const void *)(uintptr_t)lo, watched->want + (lo - watched->p),
                            hi - lo) != 0;
    }
    return err;
}

Test(evict_contents, the_address_never_maps_memory_without_the_blocks_contents)
{
    uint32_t w;
    uint64_t seed = 11;
    struct ef_block big;
    struct vs_arena *a = big_block_in_stage_w(&big, &w, &seed);
    watched = &big;
    real_set_access = fx_drv.cuMemSetAccess;
    fx_drv.cuMemSetAccess = watching_set_access;
    cr_assert_eq(vs_arena_demote(a, w, NULL), CUDA_SUCCESS);
    cr_assert_gt(watch_seen, 0, "the demote gave no access to the block's VA");
    cr_assert_eq(watch_bad, 0, "a demote made the VA accessible before it held the contents");
    /* Another user takes the device memory given back and writes over it. */
    CUdeviceptr other;
    cr_assert_eq(cuMemAlloc(&other, 8 * MiB), CUDA_SUCCESS);
    memset((void *)(uintptr_t)other, 0xa5, 8 * MiB);
    cr_assert_eq(cuMemFree(other), CUDA_SUCCESS);
    watch_seen = 0;
    cr_assert_eq(vs_arena_promote(a, w, NULL), CUDA_SUCCESS);
    cr_assert_gt(watch_seen, 0, "the promote gave no access to the block's VA");
    cr_assert_eq(watch_bad, 0, "a promote made the VA accessible before it held the contents");
    fx_drv.cuMemSetAccess = real_set_access;
    cr_assert(ef_intact(&big), "the promote lost the contents");
    ef_forget(&big, 1);
    fx_destroy(a);
}
