/* simcuda memory pools: stream-ordered allocation, caching, release threshold and attributes. */
#include "test_sim_common.h"

#include <string.h>
#include <unistd.h>

static cuuint64_t attr(CUmemoryPool pool, CUmemPool_attribute a)
{
    cuuint64_t v = 0;
    CU_OK(cuMemPoolGetAttribute(pool, a, &v));
    return v;
}

static void vram_16m(void)
{
    setenv("SIMCUDA_VRAM", "16MiB", 1);
}

Test(sim_pool, default_pool_caches_until_synchronised)
{
    sim_start();
    CUmemoryPool pool, current;
    CU_OK(cuDeviceGetDefaultMemPool(&pool, 0));
    CU_OK(cuDeviceGetMemPool(&current, 0));
    cr_assert_eq(pool, current);
    CUstream s;
    CU_OK(cuStreamCreate(&s, 0));
    CUdeviceptr p;
    CU_OK(cuMemAllocAsync(&p, 3 * MiB, s));
    cr_assert_eq(attr(pool, CU_MEMPOOL_ATTR_USED_MEM_CURRENT), 3 * MiB);
    cr_assert_eq(attr(pool, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT), 2 * GRANULE, "granule-rounded");
    CU_OK(cuMemFreeAsync(p, s));
    cr_assert_eq(attr(pool, CU_MEMPOOL_ATTR_USED_MEM_CURRENT), 0);
    cr_assert_eq(attr(pool, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT), 2 * GRANULE, "cached");
    cr_assert_eq(simcuda_physical_in_use(0), 2 * GRANULE);
    CU_OK(cuStreamSynchronize(s)); /* threshold 0: released at synchronisation */
    cr_assert_eq(attr(pool, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT), 0);
    cr_assert_eq(simcuda_physical_in_use(0), 0);
    cr_assert_eq(attr(pool, CU_MEMPOOL_ATTR_RESERVED_MEM_HIGH), 2 * GRANULE);
    cr_assert_eq(attr(pool, CU_MEMPOOL_ATTR_USED_MEM_HIGH), 3 * MiB);
}

Test(sim_pool, release_threshold_keeps_memory_for_reuse)
{
    sim_start();
    CUmemoryPool pool;
    CU_OK(cuDeviceGetDefaultMemPool(&pool, 0));
    cuuint64_t keep = UINT64_MAX;
    CU_OK(cuMemPoolSetAttribute(pool, CU_MEMPOOL_ATTR_RELEASE_THRESHOLD, &keep));
    cr_assert_eq(attr(pool, CU_MEMPOOL_ATTR_RELEASE_THRESHOLD), UINT64_MAX);
    CUdeviceptr p, q;
    CU_OK(cuMemAllocAsync(&p, GRANULE, NULL));
    memset((void *)p, 0x42, 16);
    CU_OK(cuMemFreeAsync(p, NULL));
    CU_OK(cuCtxSynchronize());
    cr_assert_eq(attr(pool, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT), GRANULE);
    CU_OK(cuMemAllocAsync(&q, 1000, NULL));
    cr_assert_eq(q, p, "the cached block is reused");
    CUdeviceptr base;
    size_t size;
    CU_OK(cuMemGetAddressRange_v2(&base, &size, q));
    cr_assert_eq(size, 1000);
    CU_OK(cuMemFreeAsync(q, NULL));
    CU_OK(cuStreamSynchronize(NULL));
    cr_assert_eq(attr(pool, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT), GRANULE, "above no threshold");
    CU_OK(cuMemPoolTrimTo(pool, 0));
    cr_assert_eq(attr(pool, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT), 0);
}

Test(sim_pool, pending_free_is_reusable_only_by_its_stream)
{
    sim_start();
    CUmemoryPool pool;
    CU_OK(cuDeviceGetDefaultMemPool(&pool, 0));
    CUstream a, b;
    CU_OK(cuStreamCreate(&a, CU_STREAM_NON_BLOCKING));
    CU_OK(cuStreamCreate(&b, CU_STREAM_NON_BLOCKING));
    CUdeviceptr p, q, r;
    CU_OK(cuMemAllocAsync(&p, GRANULE, a));
    cr_assert_eq(simcuda_hold_stream(a), 0);
    CU_OK(cuMemFreeAsync(p, a));
    CU_OK(cuMemAllocAsync(&q, GRANULE, b));
    cr_assert_neq(q, p, "b may not take memory a has not released yet");
    CU_OK(cuMemAllocAsync(&r, GRANULE, a));
    cr_assert_eq(r, p, "a reuses its own pending free");
    cr_assert_eq(simcuda_release_stream(a), 0);
    CU_OK(cuStreamSynchronize(a));
}

Test(sim_pool, cached_memory_is_given_back_before_out_of_memory, .init = vram_16m)
{
    sim_start();
    CUmemoryPool pool;
    CU_OK(cuDeviceGetDefaultMemPool(&pool, 0));
    cuuint64_t keep = UINT64_MAX;
    CU_OK(cuMemPoolSetAttribute(pool, CU_MEMPOOL_ATTR_RELEASE_THRESHOLD, &keep));
    CUdeviceptr p, q;
    CU_OK(cuMemAllocAsync(&p, 12 * MiB, NULL));
    CU_OK(cuMemFreeAsync(p, NULL));
    CU_OK(cuStreamSynchronize(NULL));
    CU_OK(cuMemAllocAsync(&q, 14 * MiB, NULL)); /* needs the cached 12 MiB back */
    cr_assert_eq(attr(pool, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT), 14 * MiB);
    cr_assert_eq(cuMemAllocAsync(&p, 4 * MiB, NULL), CUDA_ERROR_OUT_OF_MEMORY);
}

Test(sim_pool, created_pool_and_pointer_attributes)
{
    sim_start();
    CUmemPoolProps props = {.allocType = CU_MEM_ALLOCATION_TYPE_PINNED,
                            .location = {CU_MEM_LOCATION_TYPE_DEVICE, 0},
                            .maxSize = 4 * MiB};
    CUmemoryPool pool, got;
    CU_OK(cuMemPoolCreate(&pool, &props));
    CUdeviceptr p, q;
    CU_OK(cuMemAllocFromPoolAsync(&p, 3 * MiB, pool, NULL));
    cr_assert_eq(cuMemAllocFromPoolAsync(&q, GRANULE, pool, NULL), CUDA_ERROR_OUT_OF_MEMORY,
                 "a second chunk would pass maxSize");
    cuuint64_t keep = UINT64_MAX;
    CU_OK(cuMemPoolSetAttribute(pool, CU_MEMPOOL_ATTR_RELEASE_THRESHOLD, &keep));
    CU_OK(cuMemFreeAsync(p, NULL));
    CU_OK(cuStreamSynchronize(NULL));
    CU_OK(cuMemAllocFromPoolAsync(&q, 3 * MiB, pool, NULL));
    cr_assert_eq(q, p, "the cached block is reused");
    CU_OK(cuMemFreeAsync(q, NULL));
    CU_OK(cuStreamSynchronize(NULL));
    CU_OK(cuMemPoolTrimTo(pool, 0));
    /* An empty cached 2 MiB chunk stands in the way of a 4 MiB one: it is trimmed, not refused. */
    CU_OK(cuMemAllocFromPoolAsync(&q, 1, pool, NULL));
    CU_OK(cuMemFreeAsync(q, NULL));
    CU_OK(cuStreamSynchronize(NULL));
    CU_OK(cuMemAllocFromPoolAsync(&p, 3 * MiB, pool, NULL));
    cr_assert_eq(attr(pool, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT), 4 * MiB);
    CU_OK(cuPointerGetAttribute(&got, CU_POINTER_ATTRIBUTE_MEMPOOL_HANDLE, p + 5));
    cr_assert_eq(got, pool);
    CU_OK(cuDeviceSetMemPool(0, pool));
    CU_OK(cuDeviceGetMemPool(&got, 0));
    cr_assert_eq(got, pool);
    CU_OK(cuMemFree_v2(p)); /* synchronous free of pool memory is allowed */
    CU_OK(cuMemPoolDestroy(pool));
    CU_OK(cuDeviceGetMemPool(&got, 0));
    CUmemoryPool def;
    CU_OK(cuDeviceGetDefaultMemPool(&def, 0));
    cr_assert_eq(got, def, "destroying the current pool falls back to the default");
    cr_assert_eq(cuMemPoolDestroy(def), CUDA_ERROR_INVALID_VALUE);
    cr_assert_eq(cuMemPoolDestroy(pool), CUDA_ERROR_INVALID_VALUE);
    cuuint64_t v;
    cr_assert_eq(cuMemPoolGetAttribute(pool, CU_MEMPOOL_ATTR_USED_MEM_CURRENT, &v),
                 CUDA_ERROR_INVALID_VALUE);
}

Test(sim_pool, attribute_rules)
{
    sim_start();
    CUmemoryPool pool;
    CU_OK(cuDeviceGetDefaultMemPool(&pool, 0));
    cuuint64_t v = 5;
    cr_assert_eq(cuMemPoolSetAttribute(pool, CU_MEMPOOL_ATTR_USED_MEM_HIGH, &v),
                 CUDA_ERROR_INVALID_VALUE, "high watermarks can only be reset to 0");
    cr_assert_eq(cuMemPoolSetAttribute(pool, CU_MEMPOOL_ATTR_USED_MEM_CURRENT, &v),
                 CUDA_ERROR_INVALID_VALUE);
    int flag = 0;
    CU_OK(cuMemPoolSetAttribute(pool, CU_MEMPOOL_ATTR_REUSE_ALLOW_OPPORTUNISTIC, &flag));
    flag = 7;
    CU_OK(cuMemPoolGetAttribute(pool, CU_MEMPOOL_ATTR_REUSE_ALLOW_OPPORTUNISTIC, &flag));
    cr_assert_eq(flag, 0);
    cr_assert_eq(cuMemPoolGetAttribute(pool, CU_MEMPOOL_ATTR_RELEASE_THRESHOLD, NULL),
                 CUDA_ERROR_INVALID_VALUE);
}

Test(sim_pool, free_async_rejects_unknown_and_double_frees)
{
    sim_start();
    CUdeviceptr p;
    CU_OK(cuMemAllocAsync(&p, 100, NULL));
    CU_OK(cuMemFreeAsync(p, NULL));
    cr_assert_eq(cuMemFreeAsync(p, NULL), CUDA_ERROR_INVALID_VALUE);
    int host;
    cr_assert_eq(cuMemFreeAsync((CUdeviceptr)&host, NULL), CUDA_ERROR_INVALID_VALUE);
    CUdeviceptr m;
    CU_OK(cuMemAlloc_v2(&m, 100));
    CU_OK(cuMemFreeAsync(m, NULL)); /* cuMemAlloc memory freed in stream order */
    cr_assert_eq(cuMemFreeAsync(m, NULL), CUDA_ERROR_INVALID_VALUE);
    CU_OK(cuStreamSynchronize(NULL));
    cr_assert_eq(simcuda_physical_in_use(0), 0);
}

static void keep_everything(CUmemoryPool pool)
{
    cuuint64_t keep = UINT64_MAX;
    CU_OK(cuMemPoolSetAttribute(pool, CU_MEMPOOL_ATTR_RELEASE_THRESHOLD, &keep));
}

Test(sim_pool, small_allocations_are_carved_from_one_chunk)
{
    sim_start();
    CUmemoryPool pool;
    CU_OK(cuDeviceGetDefaultMemPool(&pool, 0));
    keep_everything(pool);
    enum { N = 1000 };
    static CUdeviceptr p[N];
    for (int i = 0; i < N; i++)
        CU_OK(cuMemAllocAsync(&p[i], 500, NULL));
    cr_assert_eq(attr(pool, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT), GRANULE);
    cr_assert_eq(attr(pool, CU_MEMPOOL_ATTR_USED_MEM_CURRENT), N * 512, "512-byte blocks");
    cr_assert_eq(simcuda_physical_in_use(0), GRANULE);
    for (int i = 0; i < N; i++)
        CU_OK(cuMemFreeAsync(p[i], NULL));
    CU_OK(cuStreamSynchronize(NULL));
    cr_assert_eq(attr(pool, CU_MEMPOOL_ATTR_USED_MEM_CURRENT), 0);
    cr_assert_eq(attr(pool, CU_MEMPOOL_ATTR_USED_MEM_HIGH), N * 512);
    cr_assert_eq(attr(pool, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT), GRANULE, "kept for reuse");
    CU_OK(cuMemPoolTrimTo(pool, 0));
    cr_assert_eq(attr(pool, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT), 0);
    cr_assert_eq(attr(pool, CU_MEMPOOL_ATTR_RESERVED_MEM_HIGH), GRANULE);
    cr_assert_eq(simcuda_physical_in_use(0), 0);
}

Test(sim_pool, freed_neighbours_coalesce_and_the_chunk_tail_is_used)
{
    sim_start();
    CUmemoryPool pool;
    CU_OK(cuDeviceGetDefaultMemPool(&pool, 0));
    keep_everything(pool);
    CUdeviceptr big, x, y, z, joined, tail;
    CU_OK(cuMemAllocAsync(&big, 3 * MiB, NULL)); /* a 4 MiB chunk: 1 MiB left at its end */
    CU_OK(cuMemAllocAsync(&tail, MiB, NULL));
    cr_assert_eq(tail, big + 3 * MiB, "the rest of the chunk serves the next request");
    CU_OK(cuMemAllocAsync(&x, 512 * 1024, NULL));
    CU_OK(cuMemAllocAsync(&y, 512 * 1024, NULL));
    CU_OK(cuMemAllocAsync(&z, 512 * 1024, NULL));
    cr_assert_eq(attr(pool, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT), 3 * GRANULE);
    cr_assert_eq(y, x + 512 * 1024);
    CU_OK(cuMemFreeAsync(x, NULL));
    CU_OK(cuMemFreeAsync(y, NULL));
    CU_OK(cuStreamSynchronize(NULL));
    CU_OK(cuMemAllocAsync(&joined, MiB, NULL));
    cr_assert_eq(joined, x, "x and y freed make one 1 MiB gap");
    cr_assert_eq(attr(pool, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT), 3 * GRANULE);
}

Test(sim_pool, trim_releases_only_chunks_without_blocks)
{
    sim_start();
    CUmemoryPool pool;
    CU_OK(cuDeviceGetDefaultMemPool(&pool, 0));
    keep_everything(pool);
    CUdeviceptr a, b, c;
    CU_OK(cuMemAllocAsync(&a, 4 * MiB, NULL));
    CU_OK(cuMemAllocAsync(&b, 4 * MiB, NULL));
    CU_OK(cuMemAllocAsync(&c, 100, NULL));
    cr_assert_eq(attr(pool, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT), 10 * MiB);
    CU_OK(cuMemFreeAsync(b, NULL));
    CU_OK(cuStreamSynchronize(NULL));
    CU_OK(cuMemPoolTrimTo(pool, 0));
    cr_assert_eq(attr(pool, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT), 6 * MiB, "a and c stay");
    cr_assert_eq(simcuda_physical_in_use(0), 6 * MiB);
    cr_assert_eq(attr(pool, CU_MEMPOOL_ATTR_USED_MEM_CURRENT), 4 * MiB + 512);
    CU_OK(cuMemFreeAsync(c, NULL));
    CU_OK(cuStreamSynchronize(NULL));
    CU_OK(cuMemPoolTrimTo(pool, 5 * MiB));
    cr_assert_eq(attr(pool, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT), 4 * MiB);
    CU_OK(cuMemFreeAsync(a, NULL));
}

Test(sim_pool, out_of_memory_exactly_at_capacity, .init = vram_16m)
{
    sim_start();
    CUmemoryPool pool;
    CU_OK(cuDeviceGetDefaultMemPool(&pool, 0));
    CUdeviceptr a, b, c, d;
    CU_OK(cuMemAllocAsync(&a, 14 * MiB, NULL));
    CU_OK(cuMemAllocAsync(&b, MiB, NULL)); /* maps the last granule */
    CU_OK(cuMemAllocAsync(&c, MiB, NULL)); /* fills its rest */
    cr_assert_eq(simcuda_physical_in_use(0), 16 * MiB);
    cr_assert_eq(cuMemAllocAsync(&d, 1, NULL), CUDA_ERROR_OUT_OF_MEMORY);
    CU_OK(cuMemFreeAsync(c, NULL));
    CU_OK(cuMemAllocAsync(&d, 1, NULL));
    cr_assert_eq(d, c, "the stream reuses its own pending free");
}

Test(sim_pool, a_split_pending_free_stays_private_until_it_runs)
{
    sim_start();
    CUmemoryPool pool;
    CU_OK(cuDeviceGetDefaultMemPool(&pool, 0));
    keep_everything(pool);
    CUstream a, b;
    CU_OK(cuStreamCreate(&a, CU_STREAM_NON_BLOCKING));
    CU_OK(cuStreamCreate(&b, CU_STREAM_NON_BLOCKING));
    CUdeviceptr p, r, q, rest;
    CU_OK(cuMemAllocAsync(&p, GRANULE, a));
    cr_assert_eq(simcuda_hold_stream(a), 0);
    CU_OK(cuMemFreeAsync(p, a));
    CU_OK(cuMemAllocAsync(&r, 512, a));
    cr_assert_eq(r, p, "a takes the front of its own pending free");
    CU_OK(cuMemAllocAsync(&q, MiB, b));
    cr_assert(q + MiB <= p || q >= p + GRANULE, "b may not take the rest before the free ran");
    cr_assert_eq(simcuda_release_stream(a), 0);
    CU_OK(cuStreamSynchronize(a));
    CU_OK(cuMemAllocAsync(&rest, GRANULE - 512, b));
    cr_assert_eq(rest, p + 512, "after the free ran the rest is free for every stream");
    cr_assert_eq(attr(pool, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT), 2 * GRANULE);
}
