/* How demote and promote use the driver (evict_move.c, evict_host.c): a run of adjacent granules
 * moves with one host allocation, one copy and one map of it; host memory is kept for the next
 * demote up to its cap and given back on trim; a host allocation moved as one piece stays until
 * none of its granules is used. */
#include "evict_fixture.h"

static const char *const steps[] = {"cuMemCreate", "cuMemMap", "cuMemUnmap", "cuMemSetAccess",
                                    "cuMemcpyAsync"};
#define NSTEPS (sizeof steps / sizeof steps[0])

struct calls {
    unsigned long n[NSTEPS];
};

static struct calls calls_now(void)
{
    struct calls c;
    for (size_t i = 0; i < NSTEPS; i++)
        c.n[i] = simcuda_call_count(steps[i]);
    return c;
}

/* Asserts the calls made since c0, in the order of steps[]. */
static void expect_calls(struct calls c0, const char *what, const unsigned long *want)
{
    struct calls c1 = calls_now();
    for (size_t i = 0; i < NSTEPS; i++)
        cr_expect_eq(c1.n[i] - c0.n[i], want[i], "%s: %lu calls of %s, not %lu", what,
                     c1.n[i] - c0.n[i], steps[i], want[i]);
}

static struct vs_arena *a;
static uint32_t w, probe;

/* Frees become idle, then a move (of nothing) sweeps host memory no block uses. */
static void sweep(void)
{
    cr_assert_eq(cuCtxSynchronize(), CUDA_SUCCESS);
    vs_arena_device_synchronized(a);
    cr_assert_eq(vs_arena_demote(a, probe, NULL), CUDA_SUCCESS);
}

/* Eviction probed (its trial allocation made) with a 2 MiB block of stage "probe" moved once. */
static void start(size_t cache_max)
{
    arena_fixture_start(256 * MiB);
    a = arena_new(cache_max);
    w = ef_name("w");
    probe = ef_name("probe");
    vs_arena_set_stage(a, probe);
    uint64_t seed = 1;
    struct ef_block b;
    ef_alloc(a, &b, 2 * MiB, &seed);
    cr_assert_eq(vs_arena_demote(a, probe, NULL), CUDA_SUCCESS);
    cr_assert_eq(vs_arena_promote(a, probe, NULL), CUDA_SUCCESS);
    cr_assert(ef_intact(&b));
    ef_free(a, &b);
    vs_arena_set_stage(a, w);
}

Test(evict_moves, a_run_of_granules_moves_with_one_host_allocation_and_one_copy)
{
    start(SIZE_MAX);
    uint64_t seed = 2;
    struct ef_block b;
    ef_alloc(a, &b, 64 * MiB, &seed); /* 32 granules */
    struct calls c0 = calls_now();
    size_t moved = 0;
    cr_assert_eq(vs_arena_demote(a, w, &moved), CUDA_SUCCESS);
    cr_assert_eq(moved, 64 * MiB);
    /* create 1; map at staging and at the block; unmap both; access both; one copy */
    expect_calls(c0, "demote", (const unsigned long[]){1, 2, 2, 2, 1});
    cr_assert_eq(vs_arena_block_demoted_bytes(a, b.p), 64 * MiB);
    cr_assert(ef_intact(&b), "contents changed by the demote");
    c0 = calls_now();
    cr_assert_eq(vs_arena_promote(a, w, &moved), CUDA_SUCCESS);
    cr_assert_eq(moved, 64 * MiB);
    /* the demote gave its 32 device granules back to the driver: 31 are created again and the
     * probe's free granule is taken from its slot (unmapped there); each device granule at
     * staging, filled by one copy before the switch, then at the block; unmap both; one copy */
    expect_calls(c0, "promote", (const unsigned long[]){31, 32 + 32, 2 + 1, 2, 1});
    cr_assert_eq(vs_arena_block_demoted_bytes(a, b.p), 0);
    cr_assert(ef_intact(&b), "contents changed by the promote");
    ef_free(a, &b);
    fx_destroy(a);
}

Test(evict_moves, host_memory_is_kept_for_the_next_demote_and_given_back_on_trim)
{
    start(SIZE_MAX);
    uint64_t seed = 3;
    struct ef_block b;
    ef_alloc(a, &b, 16 * MiB, &seed);
    for (int cycle = 0; cycle < 3; cycle++) {
        unsigned long created = simcuda_call_count("cuMemCreate");
        cr_assert_eq(vs_arena_demote(a, w, NULL), CUDA_SUCCESS);
        cr_assert_eq(simcuda_call_count("cuMemCreate") - created, cycle == 0,
                     "cycle %d: host memory not reused", cycle);
        cr_assert_eq(simcuda_host_physical_in_use(), 16 * MiB + 2 * MiB); /* + the probe's */
        cr_assert_eq(vs_arena_promote(a, w, NULL), CUDA_SUCCESS);
        cr_assert_eq(simcuda_host_physical_in_use(), 16 * MiB + 2 * MiB, "not kept");
        cr_assert(ef_intact(&b));
    }
    vs_arena_trim(a, 0);
    cr_assert_eq(simcuda_host_physical_in_use(), 0, "kept after a trim");
    ef_free(a, &b);
    fx_destroy(a);
}

/* VRAMSHIM_CACHE_MAX caps it too: with 0 nothing is kept. */
Test(evict_moves, no_host_memory_is_kept_above_the_cache_limit)
{
    start(0);
    cr_assert_eq(simcuda_host_physical_in_use(), 0);
    uint64_t seed = 4;
    struct ef_block b;
    ef_alloc(a, &b, 16 * MiB, &seed);
    cr_assert_eq(vs_arena_demote(a, w, NULL), CUDA_SUCCESS);
    cr_assert_eq(simcuda_host_physical_in_use(), 16 * MiB);
    cr_assert_eq(vs_arena_promote(a, w, NULL), CUDA_SUCCESS);
    cr_assert_eq(simcuda_host_physical_in_use(), 0);
    cr_assert(ef_intact(&b));
    ef_free(a, &b);
    fx_destroy(a);
}

/* Two blocks demoted in one run share a host allocation: freeing one keeps it (the other still
 * reads and writes it); once both are free it goes, to the host memory kept for reuse. */
Test(evict_moves, a_host_allocation_stays_while_any_of_its_granules_is_used)
{
    start(SIZE_MAX);
    vs_arena_trim(a, 0);
    uint64_t seed = 5;
    struct ef_block x, y;
    ef_alloc(a, &x, 4 * MiB, &seed);
    ef_alloc(a, &y, 4 * MiB, &seed);
    unsigned long created = simcuda_call_count("cuMemCreate");
    cr_assert_eq(vs_arena_demote(a, w, NULL), CUDA_SUCCESS);
    cr_assert_eq(simcuda_call_count("cuMemCreate") - created, 1, "not one run");
    ef_free(a, &x);
    sweep();
    cr_assert_eq(simcuda_host_physical_in_use(), 8 * MiB);
    fx_validate(a, "freeing half of a host allocation");
    cr_assert(ef_intact(&y));
    memset((void *)(uintptr_t)y.p, 0x77, y.n);
    memset(y.want, 0x77, y.n);
    ef_free(a, &y);
    sweep();
    fx_validate(a, "freeing all of a host allocation");
    struct vs_evict_stats st;
    vs_arena_evict_stats(a, &st);
    cr_assert_eq(st.host_bytes, 0, "still mapped");
    cr_assert_eq(simcuda_host_physical_in_use(), 8 * MiB, "not kept for reuse");
    vs_arena_trim(a, 0);
    cr_assert_eq(simcuda_host_physical_in_use(), 0);
    fx_destroy(a);
}

