/* Transactional VMM: a cuMemCreate, cuMemMap or cuMemSetAccess failing at any step of an
 * allocation undoes exactly what that allocation did, leaves live blocks intact, and the arena
 * keeps working.
 */
#include "arena_fixture.h"

#define GRANULES 8 /* a 16 MiB request maps 8 granules */

struct counts {
    unsigned long create, release, map, unmap, access;
};

static struct counts counts_now(void)
{
    return (struct counts){simcuda_call_count("cuMemCreate"), simcuda_call_count("cuMemRelease"),
                           simcuda_call_count("cuMemMap"), simcuda_call_count("cuMemUnmap"),
                           simcuda_call_count("cuMemSetAccess")};
}

/* Fails the nth call of `step` during a 16 MiB allocation next to a live block, and checks the
 * arena released what it created, unmapped what it mapped, and recovers. */
static void fail_at(const char *step, unsigned long nth, bool with_cached_granules)
{
    arena_fixture_start(256 * MiB);
    struct vs_arena *a = arena_new(SIZE_MAX);
    CUdeviceptr live, p;
    cr_assert_eq(vs_arena_alloc(a, 3 * MiB, &live), CUDA_SUCCESS);
    fx_fill(live, 3 * MiB, 7);
    if (with_cached_granules) { /* some of the request comes from free granules */
        CUdeviceptr tmp;
        cr_assert_eq(vs_arena_alloc(a, 6 * MiB, &tmp), CUDA_SUCCESS);
        vs_arena_free(a, tmp);
        vs_arena_device_synchronized(a);
    }
    size_t phys_before = simcuda_physical_in_use(0);
    simcuda_reset_call_counts();
    cr_assert_eq(simcuda_fail_call(step, nth, CUDA_ERROR_UNKNOWN), 0);
    cr_assert_eq(vs_arena_alloc(a, 16 * MiB, &p), CUDA_ERROR_UNKNOWN, "%s:%lu", step, nth);
    struct counts c = counts_now();

    cr_assert_eq(simcuda_physical_in_use(0), phys_before, "%s:%lu leaked physical memory", step,
                 nth);
    cr_assert_eq(c.create - (strcmp(step, "cuMemCreate") == 0), c.release,
                 "%s:%lu: %lu created, %lu released", step, nth, c.create, c.release);
    unsigned long mapped = c.map - (strcmp(step, "cuMemMap") == 0);
    cr_assert_eq(mapped, c.unmap, "%s:%lu: %lu mapped, %lu unmapped", step, nth, mapped,
                 c.unmap);
    cr_assert(fx_check(live, 3 * MiB, 7), "%s:%lu corrupted a live block", step, nth);

    cr_assert_eq(vs_arena_alloc(a, 16 * MiB, &p), CUDA_SUCCESS, "no recovery after %s:%lu", step,
                 nth);
    memset((void *)(uintptr_t)p, 0x11, 16 * MiB);
    cr_assert(fx_check(live, 3 * MiB, 7));
    fx_destroy(a);
    cr_assert_eq(simcuda_physical_in_use(0), 0);
}

Test(arena_rollback, every_create_step)
{
    for (unsigned long n = 1; n <= GRANULES; n++)
        fail_at("cuMemCreate", n, false);
}

Test(arena_rollback, every_map_step)
{
    for (unsigned long n = 1; n <= GRANULES; n++)
        fail_at("cuMemMap", n, false);
}

Test(arena_rollback, every_set_access_step)
{
    for (unsigned long n = 1; n <= GRANULES; n++)
        fail_at("cuMemSetAccess", n, false);
}

Test(arena_rollback, steps_with_granules_from_the_cache)
{
    for (unsigned long n = 1; n <= 5; n++) {
        fail_at("cuMemCreate", n, true);
        fail_at("cuMemMap", n, true);
        fail_at("cuMemSetAccess", n, true);
    }
}

/* A transient out-of-memory failure is retried after reclaiming, so the request succeeds. */
Test(arena_rollback, transient_oom_is_retried)
{
    arena_fixture_start(256 * MiB);
    struct vs_arena *a = arena_new(SIZE_MAX);
    CUdeviceptr p;
    cr_assert_eq(simcuda_fail_call("cuMemMap", 3, CUDA_ERROR_OUT_OF_MEMORY), 0);
    cr_assert_eq(vs_arena_alloc(a, 16 * MiB, &p), CUDA_SUCCESS);
    cr_assert_eq(simcuda_physical_in_use(0), 16 * MiB);
    fx_destroy(a);
}

/* The environment form of fault injection, as a user would run it. */
Test(arena_rollback, simcuda_fail_env)
{
    setenv("SIMCUDA_FAIL", "cuMemSetAccess:2:CUDA_ERROR_INVALID_VALUE", 1);
    arena_fixture_start(256 * MiB);
    struct vs_arena *a = arena_new(SIZE_MAX);
    CUdeviceptr p;
    cr_assert_eq(vs_arena_alloc(a, 8 * MiB, &p), CUDA_ERROR_INVALID_VALUE);
    cr_assert_eq(simcuda_physical_in_use(0), 0);
    cr_assert_eq(vs_arena_alloc(a, 8 * MiB, &p), CUDA_SUCCESS);
    fx_destroy(a);
}
