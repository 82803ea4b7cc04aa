/* Never stranding memory: stitching scattered free granules into one VA-contiguous block, the
 * out-of-memory boundary and its log line, and the cache limit giving granules back.
 */
#include "arena_fixture.h"

#define VRAM (256 * MiB)

/* Fills the device with medium blocks and small objects, frees every other one, then asks for a
 * block larger than any contiguous free run, exactly as large as device free + free granules. */
Test(arena_stitch, scattered_frees_serve_one_large_block)
{
    arena_fixture_start(VRAM);
    struct vs_arena *a = arena_new(SIZE_MAX);
    enum { MAX = 4096 };
    static CUdeviceptr blk[MAX];
    static size_t len[MAX];
    size_t n = 0, used = 0;
    while (used < VRAM - 16 * MiB && n < MAX) {
        len[n] = n % 4 == 3 ? 40000 : 3 * MiB + 512 * (n % 7);
        cr_assert_eq(vs_arena_alloc(a, len[n], &blk[n]), CUDA_SUCCESS, "block %zu", n);
        fx_fill(blk[n], len[n], (unsigned)n);
        used += len[n++];
    }
    for (size_t i = 0; i < n; i += 2)
        cr_assert_eq(vs_arena_free(a, blk[i]), CUDA_SUCCESS);
    cr_assert_eq(cuCtxSynchronize(), CUDA_SUCCESS);
    vs_arena_device_synchronized(a);

    size_t free_now, total;
    cr_assert_eq(vs_arena_mem_get_info(a, &free_now, &total), CUDA_SUCCESS);
    size_t want = free_now / (2 * MiB) * (2 * MiB);
    cr_assert_gt(want, 8 * MiB, "test set-up left too little free memory");

    CUdeviceptr big;
    cr_assert_eq(vs_arena_alloc(a, want, &big), CUDA_SUCCESS,
                 "%zu bytes free (device + granules) but the request failed", want);
    memset((void *)(uintptr_t)big, 0xEE, want);
    for (size_t i = 1; i < n; i += 2)
        cr_assert(fx_check(blk[i], len[i], (unsigned)i), "surviving block %zu corrupted", i);
    cr_assert_eq(vs_arena_free(a, big), CUDA_SUCCESS);
    fx_destroy(a);
}

Test(arena_stitch, oom_exactly_at_the_boundary_with_report)
{
    arena_fixture_start(64 * MiB);
    struct vs_arena *a = arena_new(SIZE_MAX);
    CUdeviceptr keep, p;
    cr_assert_eq(vs_arena_alloc(a, 10 * MiB, &keep), CUDA_SUCCESS);
    cr_assert_eq(vs_arena_alloc(a, 54 * MiB, &p), CUDA_SUCCESS, "exactly the free memory fits");
    cr_assert_eq(vs_arena_free(a, p), CUDA_SUCCESS);
    cr_assert_eq(fx_log_n, 0);
    cr_assert_eq(vs_arena_alloc(a, 54 * MiB + 1, &p), CUDA_ERROR_OUT_OF_MEMORY);
    cr_assert_eq(fx_log_n, 1, "one log line per out-of-memory");
    const char *l = fx_log[0];
    cr_assert(strstr(l, "vramshim: out of memory on device 0: requested 54.00 MiB"), "%s", l);
    cr_assert(strstr(l, "live 10.00 MiB"), "%s", l);
    cr_assert(strstr(l, "cached 54.00 MiB"), "%s", l);
    cr_assert(strstr(l, "device free 0 B"), "%s", l);
    cr_assert(strstr(l, "largest free run 54.00 MiB"), "%s", l);
    cr_assert(strstr(l, "fragmentation 0.0%"), "%s", l);
    /* The failure changed nothing: the boundary still fits. */
    cr_assert_eq(vs_arena_alloc(a, 54 * MiB, &p), CUDA_SUCCESS);
    struct vs_arena_stats st;
    vs_arena_stats(a, &st);
    cr_assert_eq(st.ooms, 1);
    fx_destroy(a);
}

/* Memory held by another process counts: the boundary moves with it. */
Test(arena_stitch, oom_boundary_follows_other_processes)
{
    arena_fixture_start(64 * MiB);
    struct vs_arena *a = arena_new(SIZE_MAX);
    cr_assert_eq(simcuda_set_vram_taken(0, 20 * MiB), 0);
    CUdeviceptr p;
    cr_assert_eq(vs_arena_alloc(a, 44 * MiB + 1, &p), CUDA_ERROR_OUT_OF_MEMORY);
    cr_assert_eq(vs_arena_alloc(a, 44 * MiB, &p), CUDA_SUCCESS);
    fx_destroy(a);
}

/* Fragmentation inside granules shows in the report: small objects pin their pages. */
Test(arena_stitch, oom_report_shows_fragmentation)
{
    arena_fixture_start(16 * MiB);
    struct vs_arena *a = arena_new(SIZE_MAX);
    static CUdeviceptr obj[8 * 16];
    int n = 0; /* 128 KiB objects until the device is full: its 8 granules are pages */
    while (n < 8 * 16 && vs_arena_alloc(a, 128 << 10, &obj[n]) == CUDA_SUCCESS)
        n++;
    cr_assert_gt(n, 8 * 12);
    for (int i = 0; i < n; i++) /* one live object left in each granule */
        if (i && obj[i] / (2 * MiB) == obj[i - 1] / (2 * MiB))
            vs_arena_free(a, obj[i]);
    fx_log_n = 0; /* the filling ran out of memory: only the report below counts */
    CUdeviceptr p;
    cr_assert_eq(vs_arena_alloc(a, 4 * MiB, &p), CUDA_ERROR_OUT_OF_MEMORY);
    cr_assert_eq(fx_log_count("largest free run 0 B"), 1, "%s", fx_log[0]);
    cr_assert_eq(fx_log_count("fragmentation 100.0%"), 1, "%s", fx_log[0]);
    fx_destroy(a);
}

Test(arena_stitch, cache_limit_gives_granules_back)
{
    arena_fixture_start(VRAM);
    struct vs_arena *a = arena_new(8 * MiB);
    CUdeviceptr p, q;
    cr_assert_eq(vs_arena_alloc(a, 32 * MiB, &p), CUDA_SUCCESS);
    cr_assert_eq(vs_arena_alloc_async(a, 32 * MiB, CU_STREAM_LEGACY, &q), CUDA_SUCCESS);
    cr_assert_eq(simcuda_physical_in_use(0), 64 * MiB);
    cr_assert_eq(vs_arena_free(a, p), CUDA_SUCCESS);
    cr_assert_leq(simcuda_physical_in_use(0), 32 * MiB + 8 * MiB);
    cr_assert_eq(vs_arena_free_async(a, q, CU_STREAM_LEGACY), CUDA_SUCCESS);
    cr_assert_eq(cuCtxSynchronize(), CUDA_SUCCESS);
    vs_arena_trim(a, 8 * MiB);
    cr_assert_eq(simcuda_physical_in_use(0), 8 * MiB);
    fx_destroy(a);
    cr_assert_eq(simcuda_physical_in_use(0), 0, "destroy gives everything back");
}

Test(arena_stitch, unlimited_cache_keeps_granules_until_trimmed)
{
    arena_fixture_start(VRAM);
    struct vs_arena *a = arena_new(SIZE_MAX);
    CUdeviceptr p;
    cr_assert_eq(vs_arena_alloc(a, 32 * MiB, &p), CUDA_SUCCESS);
    cr_assert_eq(vs_arena_free(a, p), CUDA_SUCCESS);
    cr_assert_eq(simcuda_physical_in_use(0), 32 * MiB);
    vs_arena_trim(a, 0);
    cr_assert_eq(simcuda_physical_in_use(0), 32 * MiB, "pending until the device is idle");
    vs_arena_device_synchronized(a);
    vs_arena_trim(a, 0);
    cr_assert_eq(simcuda_physical_in_use(0), 0);
    fx_destroy(a);
}

Test(arena_stitch, cache_max_from_environment)
{
    struct vs_arena_options opt;
    setenv("VRAMSHIM_CACHE_MAX", "1.5GiB", 1);
    vs_arena_options_from_env(&opt);
    cr_assert_eq(opt.cache_max, (size_t)3 << 29);
    setenv("VRAMSHIM_CACHE_MAX", "0", 1);
    vs_arena_options_from_env(&opt);
    cr_assert_eq(opt.cache_max, 0);
    unsetenv("VRAMSHIM_CACHE_MAX");
    vs_arena_options_from_env(&opt);
    cr_assert_eq(opt.cache_max, SIZE_MAX);
    vs_log_set_sink(fx_sink);
    setenv("VRAMSHIM_CACHE_MAX", "12 parsecs", 1);
    vs_arena_options_from_env(&opt);
    cr_assert_eq(opt.cache_max, SIZE_MAX);
    cr_assert_eq(fx_log_count("VRAMSHIM_CACHE_MAX=\"12 parsecs\" is not a size"), 1);
}
