/* Pages sized to demand: a class with a few live objects does not hold a granule of free ones,
 * and a class in steady use still gets pages of about 32 objects. Empty pages go back to their
 * segment before the arena takes a new granule from the driver.
 */
#include "arena_fixture.h"

/* One object of each class from 64 KiB up: each class's first page holds 4 objects, so they all
 * fit in 4 granules (one page of 32 objects each would take 11 granules). */
Test(arena_pages, a_few_large_objects_share_granules)
{
    arena_fixture_start(256 * MiB);
    struct vs_arena *a = arena_new(SIZE_MAX);
    size_t sizes = 0;
    CUdeviceptr p;
    for (size_t n = 64 << 10; n <= 256 << 10; n += 24 << 10, sizes++)
        cr_assert_eq(vs_arena_alloc(a, n, &p), CUDA_SUCCESS);
    cr_assert_geq(sizes, 9);
    cr_assert_leq(simcuda_physical_in_use(0), 4 * 2 * MiB, "%zu bytes for %zu objects",
                  simcuda_physical_in_use(0), sizes);
    fx_validate(a, "one object per class");
    fx_destroy(a);
}

/* A class in steady use: 200 objects of 64 KiB (12.5 MiB) take at most 8 granules. */
Test(arena_pages, pages_grow_with_the_class)
{
    arena_fixture_start(256 * MiB);
    struct vs_arena *a = arena_new(SIZE_MAX);
    CUdeviceptr p;
    for (int i = 0; i < 200; i++)
        cr_assert_eq(vs_arena_alloc(a, 64 << 10, &p), CUDA_SUCCESS);
    cr_assert_leq(simcuda_physical_in_use(0), 8 * 2 * MiB);
    fx_validate(a, "one class");
    fx_destroy(a);
}

/* Objects of a class no longer used do not pin their granule when another class needs one:
 * their empty pages go back first. */
Test(arena_pages, empty_pages_go_back_before_growth)
{
    arena_fixture_start(256 * MiB);
    struct vs_arena *a = arena_new(SIZE_MAX);
    CUdeviceptr obj[8], p;
    for (int i = 0; i < 8; i++)
        cr_assert_eq(vs_arena_alloc(a, 200 << 10, &obj[i]), CUDA_SUCCESS);
    size_t phys = simcuda_physical_in_use(0);
    for (int i = 0; i < 8; i++)
        cr_assert_eq(vs_arena_free(a, obj[i]), CUDA_SUCCESS);
    vs_arena_device_synchronized(a);
    for (int i = 0; i < 8; i++)
        cr_assert_eq(vs_arena_alloc(a, 100 << 10, &p), CUDA_SUCCESS);
    cr_assert_eq(simcuda_physical_in_use(0), phys, "the 200 KiB class's pages were kept");
    fx_validate(a, "after reuse");
    fx_destroy(a);
}

/* The arena maps memory in the driver's granularity (cuMemGetAllocationGranularity), whatever it
 * is: on a device of 512 KiB granules a 600 KiB block takes two of them and the first small
 * object one more, not 2 MiB each. */
Test(arena_pages, granules_are_the_drivers_granularity)
{
    setenv("SIMCUDA_GRANULE", "512KiB", 1);
    arena_fixture_start(64 * MiB);
    struct vs_arena *a = arena_new(SIZE_MAX);
    CUdeviceptr big, small;
    cr_assert_eq(vs_arena_alloc(a, 600 << 10, &big), CUDA_SUCCESS);
    cr_assert_eq(simcuda_physical_in_use(0), 1 * MiB);
    cr_assert_eq(vs_arena_alloc(a, 1000, &small), CUDA_SUCCESS);
    cr_assert_eq(simcuda_physical_in_use(0), 1 * MiB + (512 << 10));
    fx_validate(a, "512 KiB granules");
    fx_destroy(a);
}
