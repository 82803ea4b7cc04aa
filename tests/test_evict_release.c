/* Where the device memory a demote frees goes (issue 15, item 2): a requested demote
 * (vs_arena_demote, behind vramshim_demote, `vramshim ctl PID demote` and a peer's request)
 * gives the granules it freed back to the driver, so another process can have them; a demote
 * for this process's own needs (pressure, headroom, prefetch) keeps them cached for its next
 * allocation. A later promote takes fresh granules and restores the data at the same address. */
#include "evict_fixture.h"

static struct vs_arena *a;

static size_t cached_bytes(void)
{
    struct vs_arena_stats st;
    vs_arena_stats(a, &st);
    return st.cached_bytes;
}

/* Stage w: one 5 MiB block (granules 0-2); stage "other": a 3 MiB block right after it, which
 * shares granule 2, then a 2 MiB block freed at once, so that one free granule is cached before
 * the demote. */
struct layout {
    struct ef_block w, other, gone;
};

static void set_up(struct layout *l, size_t cache_max)
{
    arena_fixture_start(256 * MiB);
    a = arena_new(cache_max);
    uint64_t seed = 5;
    vs_arena_set_stage(a, ef_name("w"));
    ef_alloc(a, &l->w, 5 * MiB, &seed);
    vs_arena_set_stage(a, ef_name("other"));
    ef_alloc(a, &l->other, 3 * MiB, &seed);
    cr_assert_eq(l->other.p, l->w.p + 5 * MiB, "the blocks are not adjacent");
    ef_alloc(a, &l->gone, 2 * MiB, &seed);
    ef_free(a, &l->gone);
    cr_assert_eq(cuCtxSynchronize(), CUDA_SUCCESS);
    vs_arena_device_synchronized(a);
    /* Probes eviction (its trial host allocation is made and released) with nothing to move. */
    cr_assert_eq(vs_arena_demote(a, ef_name("nothing"), NULL), CUDA_SUCCESS);
}

static void tear_down(struct layout *l)
{
    cr_assert(ef_intact(&l->w), "the demoted block changed");
    cr_assert(ef_intact(&l->other), "the other stage's block changed");
    ef_free(a, &l->w);
    ef_free(a, &l->other);
    fx_destroy(a);
}

Test(evict_release, a_requested_demote_gives_the_freed_granules_to_the_driver)
{
    struct layout l;
    set_up(&l, SIZE_MAX);
    size_t phys = simcuda_physical_in_use(0), cached = cached_bytes();
    cr_assert_eq(cached, 2 * MiB, "the freed block's granule is not cached");
    size_t moved = 0;
    cr_assert_eq(vs_arena_demote(a, ef_name("w"), &moved), CUDA_SUCCESS);
    /* Granules 0 and 1 move; granule 2 stays, the other stage's block uses it. */
    cr_assert_eq(moved, 4 * MiB);
    cr_assert_eq(vs_arena_block_demoted_bytes(a, l.w.p), 4 * MiB);
    /* The driver has exactly the moved granules back; the granule free before stays cached. */
    cr_assert_eq(simcuda_physical_in_use(0), phys - moved, "device bytes %zu, expected %zu",
                 simcuda_physical_in_use(0), phys - moved);
    cr_assert_eq(cached_bytes(), cached);
    cr_assert(ef_intact(&l.w), "contents changed by the demote");

    /* The promote takes the cached granule and creates a fresh one, at the same address. */
    unsigned long created = simcuda_call_count("cuMemCreate");
    CUdeviceptr p = l.w.p;
    cr_assert_eq(vs_arena_promote(a, ef_name("w"), &moved), CUDA_SUCCESS);
    cr_assert_eq(moved, 4 * MiB);
    cr_assert_eq(simcuda_call_count("cuMemCreate") - created, 1, "no fresh granule created");
    cr_assert_eq(vs_arena_block_demoted_bytes(a, p), 0);
    cr_assert_eq(simcuda_physical_in_use(0), phys - cached);
    cr_assert_eq(cached_bytes(), 0);
    tear_down(&l);
}

/* The cache limit still holds for what was cached before: with VRAMSHIM_CACHE_MAX 0 it goes
 * too. */
Test(evict_release, a_requested_demote_respects_the_cache_limit_for_the_rest)
{
    struct layout l;
    set_up(&l, 0);
    size_t phys = simcuda_physical_in_use(0);
    size_t moved = 0;
    cr_assert_eq(vs_arena_demote(a, ef_name("w"), &moved), CUDA_SUCCESS);
    cr_assert_eq(moved, 4 * MiB);
    cr_assert_eq(cached_bytes(), 0);
    cr_assert_leq(simcuda_physical_in_use(0), phys - moved);
    tear_down(&l);
}

/* A headroom demote (the stage rule, like pressure: for this process's own next allocation)
 * keeps what it freed cached, and the device bytes do not drop. */
Test(evict_release, a_headroom_demote_keeps_the_freed_granules_cached)
{
    arena_fixture_start(64 * MiB);
    ef_policy("[stage load]\nmatch = *load*\n[stage decode]\nmatch = *decode*\n"
              "evict = load\n");
    a = arena_new(SIZE_MAX);
    vs_arena_set_stage(a, ef_name("load"));
    uint64_t seed = 9;
    struct ef_block wt;
    ef_alloc(a, &wt, 48 * MiB, &seed);
    vs_arena_set_stage(a, ef_name("decode"));
    size_t phys = simcuda_physical_in_use(0), cached = cached_bytes();
    size_t freed = 0;
    cr_assert_eq(vs_arena_make_headroom(a, ef_name("decode"), 32 * MiB, &freed), CUDA_SUCCESS);
    cr_assert_gt(freed, 0, "nothing demoted");
    cr_assert_eq(simcuda_physical_in_use(0), phys, "the headroom demote released device memory");
    cr_assert_eq(cached_bytes(), cached + freed);
    cr_assert(ef_intact(&wt));
    ef_free(a, &wt);
    fx_destroy(a);
}

/* The driver refuses the release: the granules stay cached (one line), nothing is lost, and a
 * later trim gives them back. */
Test(evict_release, a_refused_release_keeps_the_granules_cached)
{
    struct layout l;
    set_up(&l, SIZE_MAX);
    size_t phys = simcuda_physical_in_use(0), cached = cached_bytes();
    cr_assert_eq(simcuda_fail_call("cuMemRelease", 1, CUDA_ERROR_UNKNOWN), 0);
    size_t moved = 0;
    cr_assert_eq(vs_arena_demote(a, ef_name("w"), &moved), CUDA_SUCCESS);
    cr_assert_eq(moved, 4 * MiB);
    cr_assert_eq(fx_log_count("cuMemRelease of a free granule failed"), 1, "%s",
                 fx_log_n ? fx_log[fx_log_n - 1] : "no line");
    /* The release stops at the refusal: the freed granules all stay cached. */
    cr_assert_eq(cached_bytes(), cached + moved);
    cr_assert_eq(simcuda_physical_in_use(0), phys);
    cr_assert(ef_intact(&l.w), "contents changed by the demote");
    fx_validate(a, "the refused release");
    vs_arena_trim(a, 0);
    cr_assert_eq(cached_bytes(), 0);
    cr_assert_eq(simcuda_physical_in_use(0), phys - moved - cached);
    cr_assert_eq(vs_arena_promote(a, ef_name("w"), &moved), CUDA_SUCCESS);
    cr_assert_eq(moved, 4 * MiB);
    tear_down(&l);
}
