/* The arena requires exactly the driver entry points it calls (allocator/driver.h, third column):
 * a table lacking only entries that the interposer or the tools use still gets an arena, one
 * lacking an entry the arena calls is refused with one line naming it. */
#include "arena_fixture.h"

static void create_expect(CUresult want)
{
    struct vs_arena_options opt = {.cache_max = SIZE_MAX, .va_chunk = 0};
    struct vs_arena *a = NULL;
    cr_assert_eq(vs_arena_create(&fx_drv, fx_dev, fx_ctx, &opt, &a), want);
    if (want != CUDA_SUCCESS) {
        cr_assert_null(a);
        return;
    }
    CUdeviceptr small, large;
    cr_assert_eq(vs_arena_alloc(a, 4000, &small), CUDA_SUCCESS);
    cr_assert_eq(vs_arena_alloc(a, 5 * MiB, &large), CUDA_SUCCESS);
    cr_assert_eq(vs_arena_free(a, small), CUDA_SUCCESS);
    cr_assert_eq(vs_arena_free(a, large), CUDA_SUCCESS);
    fx_destroy(a);
}

Test(arena_driver, entries_the_arena_never_calls_are_not_required)
{
    arena_fixture_start(256 * MiB);
    fx_drv.cuInit = NULL;
    fx_drv.cuDeviceGetCount = NULL;
    fx_drv.cuMemAlloc_v2 = NULL;
    fx_drv.cuMemFree_v2 = NULL;
    create_expect(CUDA_SUCCESS);
    cr_expect_eq(fx_log_count("lacks"), 0, "%s", fx_log[0]);
}

Test(arena_driver, an_entry_the_arena_calls_is_required)
{
    arena_fixture_start(256 * MiB);
    fx_drv.cuMemMap = NULL;
    create_expect(CUDA_ERROR_NOT_SUPPORTED);
    cr_expect_eq(fx_log_count("the driver lacks cuMemMap; serving memory from the driver"), 1);
}
