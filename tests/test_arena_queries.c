/* What the arena answers about its memory, compared with what simcuda answers for a cuMemAlloc
 * block of the same size: address ranges, pointer attributes, memory info; and bad frees.
 */
#include "allocator/arenas.h"
#include "arena_fixture.h"

static const size_t sizes[] = {1000, 300 << 10, 5 * MiB + 123};

Test(arena_queries, address_range_matches_cuMemAlloc)
{
    arena_fixture_start(256 * MiB);
    struct vs_arena *a = arena_new(SIZE_MAX);
    for (size_t i = 0; i < 3; i++) {
        size_t n = sizes[i];
        CUdeviceptr d, p, dbase, pbase;
        size_t dsize, psize;
        cr_assert_eq(cuMemAlloc(&d, n), CUDA_SUCCESS);
        cr_assert_eq(vs_arena_alloc(a, n, &p), CUDA_SUCCESS);
        cr_assert_eq(cuMemGetAddressRange(&dbase, &dsize, d + n / 2), CUDA_SUCCESS);
        cr_assert_eq(vs_arena_address_range(a, p + n / 2, &pbase, &psize), CUDA_SUCCESS);
        cr_assert_eq(pbase, p);
        cr_assert_eq(dbase, d);
        cr_assert_eq(psize, dsize, "size %zu: arena says %zu, driver %zu", n, psize, dsize);
        /* After a free: not found, as for the driver. */
        vs_arena_free(a, p);
        cuMemFree(d);
        cr_assert_eq(vs_arena_address_range(a, p, &pbase, &psize),
                     cuMemGetAddressRange(&dbase, &dsize, d));
        cr_assert_eq(vs_arena_address_range(a, p, &pbase, &psize), CUDA_ERROR_NOT_FOUND);
    }
    fx_destroy(a);
}

/* Attributes answered with the same type and value as the driver's for a cuMemAlloc block. */
Test(arena_queries, pointer_attributes_match_cuMemAlloc)
{
    static const CUpointer_attribute same[] = {
        CU_POINTER_ATTRIBUTE_CONTEXT,        CU_POINTER_ATTRIBUTE_MEMORY_TYPE,
        CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL, CU_POINTER_ATTRIBUTE_RANGE_SIZE,
        CU_POINTER_ATTRIBUTE_IS_MANAGED,     CU_POINTER_ATTRIBUTE_MAPPED,
    };
    arena_fixture_start(256 * MiB);
    struct vs_arena *a = arena_new(SIZE_MAX);
    for (size_t i = 0; i < 3; i++) {
        size_t n = sizes[i];
        CUdeviceptr d, p;
        cr_assert_eq(cuMemAlloc(&d, n), CUDA_SUCCESS);
        cr_assert_eq(vs_arena_alloc(a, n, &p), CUDA_SUCCESS);
        for (size_t k = 0; k < sizeof same / sizeof same[0]; k++) {
            unsigned long long dv = 0, pv = 0;
            CUresult dr = cuPointerGetAttribute(&dv, same[k], d + 1);
            CUresult pr = vs_arena_pointer_attribute(a, same[k], p + 1, &pv);
            cr_assert_eq(pr, dr, "attribute %d: arena %d, driver %d", same[k], pr, dr);
            cr_assert_eq(pv, dv, "attribute %d, size %zu: arena %llu, driver %llu", same[k], n,
                         pv, dv);
        }
        CUdeviceptr start = 0, dev = 0;
        cr_assert_eq(vs_arena_pointer_attribute(a, CU_POINTER_ATTRIBUTE_RANGE_START_ADDR, p + 9,
                                                &start), CUDA_SUCCESS);
        cr_assert_eq(start, p);
        cr_assert_eq(vs_arena_pointer_attribute(a, CU_POINTER_ATTRIBUTE_DEVICE_POINTER, p + 9,
                                                &dev), CUDA_SUCCESS);
        cr_assert_eq(dev, p + 9);

        /* The plural form answers the same in one call. */
        CUpointer_attribute attrs[] = {CU_POINTER_ATTRIBUTE_RANGE_START_ADDR,
                                       CU_POINTER_ATTRIBUTE_RANGE_SIZE,
                                       CU_POINTER_ATTRIBUTE_MEMORY_TYPE};
        CUdeviceptr s2 = 0;
        size_t z2 = 0;
        unsigned int t2 = 0;
        void *data[] = {&s2, &z2, &t2};
        cr_assert_eq(vs_arena_pointer_attributes(a, 3, attrs, data, p + 5), CUDA_SUCCESS);
        cr_assert_eq(s2, p);
        cr_assert_eq(z2, n);
        cr_assert_eq(t2, CU_MEMORYTYPE_DEVICE);

        /* Buffer ids are unique per allocation, like the driver's. */
        unsigned long long id1 = 0, id2 = 0;
        vs_arena_pointer_attribute(a, CU_POINTER_ATTRIBUTE_BUFFER_ID, p, &id1);
        vs_arena_free(a, p);
        cr_assert_eq(vs_arena_pointer_attribute(a, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, p, &t2),
                     CUDA_ERROR_INVALID_VALUE, "a freed block has no attributes");
        vs_arena_device_synchronized(a);
        CUdeviceptr q;
        cr_assert_eq(vs_arena_alloc(a, n, &q), CUDA_SUCCESS);
        vs_arena_pointer_attribute(a, CU_POINTER_ATTRIBUTE_BUFFER_ID, q, &id2);
        cr_assert_neq(id1, id2);
        vs_arena_free(a, q);
        cuMemFree(d);
    }
    fx_destroy(a);
}

Test(arena_queries, mem_get_info_counts_free_granules)
{
    arena_fixture_start(256 * MiB);
    struct vs_arena *a = arena_new(SIZE_MAX);
    size_t free0, total, free1, dfree, dtotal;
    cr_assert_eq(vs_arena_mem_get_info(a, &free0, &total), CUDA_SUCCESS);
    cr_assert_eq(total, 256 * MiB);
    CUdeviceptr p;
    cr_assert_eq(vs_arena_alloc(a, 40 * MiB, &p), CUDA_SUCCESS);
    cr_assert_eq(vs_arena_mem_get_info(a, &free1, &total), CUDA_SUCCESS);
    cr_assert_eq(free1, free0 - 40 * MiB);
    vs_arena_free(a, p);
    vs_arena_device_synchronized(a);
    cr_assert_eq(cuMemGetInfo(&dfree, &dtotal), CUDA_SUCCESS);
    cr_assert_eq(dfree, free0 - 40 * MiB, "the granules are still held by the arena");
    cr_assert_eq(vs_arena_mem_get_info(a, &free1, &total), CUDA_SUCCESS);
    cr_assert_eq(free1, free0, "free granules count as free");
    cr_assert_eq(vs_arena_mem_get_info(a, NULL, &total), CUDA_ERROR_INVALID_VALUE);
    fx_destroy(a);
}

Test(arena_queries, bad_frees_fail_and_log_once)
{
    arena_fixture_start(256 * MiB);
    struct vs_arena *a = arena_new(SIZE_MAX);
    CUdeviceptr small, large;
    cr_assert_eq(vs_arena_alloc(a, 1000, &small), CUDA_SUCCESS);
    cr_assert_eq(vs_arena_alloc(a, 3 * MiB, &large), CUDA_SUCCESS);
    cr_assert_eq(vs_arena_free(a, small + 512), CUDA_ERROR_INVALID_VALUE, "interior pointer");
    cr_assert_eq(vs_arena_free(a, large + 512), CUDA_ERROR_INVALID_VALUE, "interior pointer");
    cr_assert_eq(vs_arena_free(a, 0x1000), CUDA_ERROR_INVALID_VALUE, "unknown pointer");
    cr_assert_eq(vs_arena_free_async(a, large + 4 * MiB, 0), CUDA_ERROR_INVALID_VALUE,
                 "idle arena memory");
    cr_assert_eq(vs_arena_free(a, small), CUDA_SUCCESS);
    cr_assert_eq(vs_arena_free(a, small), CUDA_ERROR_INVALID_VALUE, "double free");
    cr_assert_eq(vs_arena_free(a, large), CUDA_SUCCESS);
    cr_assert_eq(vs_arena_free(a, large), CUDA_ERROR_INVALID_VALUE, "double free");
    cr_assert_eq(fx_log_n, 1, "logged once, got %d lines", fx_log_n);
    cr_assert(strstr(fx_log[0], "vramshim: free of 0x"), "%s", fx_log[0]);
    cr_assert(strstr(fx_log[0], "not a live allocation of device 0"), "%s", fx_log[0]);
    fx_destroy(a);
}

Test(arena_queries, ownership_and_block_test)
{
    arena_fixture_start(256 * MiB);
    struct vs_arena *a = arena_new(SIZE_MAX);
    CUdeviceptr p, d;
    cr_assert_eq(vs_arena_alloc(a, 5000, &p), CUDA_SUCCESS);
    cr_assert_eq(cuMemAlloc(&d, 5000), CUDA_SUCCESS);
    cr_assert(vs_arena_owns(a, p));
    cr_assert(vs_arena_owns(a, p + 1));
    cr_assert_not(vs_arena_owns(a, d), "driver memory is not the arena's");
    cr_assert(vs_arena_is_block(a, p));
    cr_assert_not(vs_arena_is_block(a, p + 512));
    vs_arena_free(a, p);
    cr_assert_not(vs_arena_is_block(a, p));
    cuMemFree(d);
    fx_destroy(a);
}

Test(arena_queries, stage_and_tag_metadata)
{
    arena_fixture_start(256 * MiB);
    struct vs_arena *a = arena_new(SIZE_MAX);
    CUstream s = fx_stream();
    vs_arena_set_stage(a, 3);
    for (size_t i = 0; i < 3; i++) {
        CUdeviceptr p;
        struct vs_block_info info;
        cr_assert_eq(vs_arena_alloc_async(a, sizes[i], s, &p), CUDA_SUCCESS);
        cr_assert_eq(vs_arena_set_tag(a, p, 7), CUDA_SUCCESS);
        cr_assert_eq(vs_arena_block_info(a, p + 10, &info), CUDA_SUCCESS);
        cr_assert_eq(info.base, p);
        cr_assert_eq(info.size, sizes[i]);
        cr_assert_eq(info.stage, 3);
        cr_assert_eq(info.tag, 7);
        cr_assert_eq(info.stream, s);
        cr_assert_eq(vs_arena_set_tag(a, p + 512, 7), CUDA_ERROR_INVALID_VALUE);
        vs_arena_free_async(a, p, s);
        cr_assert_eq(vs_arena_block_info(a, p, &info), CUDA_ERROR_NOT_FOUND);
    }
    fx_destroy(a);
}

/* The interposer's form: the tag comes with the request and is on the block when the call
 * returns; a block handed out again (same stream, at once) carries the new request's tag. */
Test(arena_queries, tag_given_with_the_allocation)
{
    arena_fixture_start(256 * MiB);
    struct vs_arena *a = arena_new(SIZE_MAX);
    CUstream s = fx_stream();
    for (size_t i = 0; i < 3; i++) {
        CUdeviceptr p, q;
        struct vs_block_info info;
        struct vs_arena_alloc_req rq = {.size = sizes[i], .async = true, .stream = s, .tag = 7};
        cr_assert_eq(vs_arena_alloc_req(a, &rq, &p, NULL), CUDA_SUCCESS);
        cr_assert_eq(vs_arena_block_info(a, p, &info), CUDA_SUCCESS);
        cr_assert_eq(info.tag, 7, "size %zu", sizes[i]);
        cr_assert_eq(info.stream, s);
        cr_assert_eq(vs_arena_free_async(a, p, s), CUDA_SUCCESS);
        rq.tag = 0;
        cr_assert_eq(vs_arena_alloc_req(a, &rq, &q, NULL), CUDA_SUCCESS);
        if (sizes[i] <= 256 << 10) /* small objects of another tag are kept apart */
            cr_assert_neq(q, p, "size %zu: reused by a request of another tag", sizes[i]);
        else
            cr_assert_eq(q, p, "size %zu: the block freed on s is reused at once", sizes[i]);
        cr_assert_eq(vs_arena_block_info(a, q, &info), CUDA_SUCCESS);
        cr_assert_eq(info.tag, 0, "size %zu: a reused block kept its old tag", sizes[i]);
        cr_assert_eq(vs_arena_free_async(a, q, s), CUDA_SUCCESS);
    }
    CUdeviceptr p;
    size_t pitch = 0;
    struct vs_arena_alloc_req rq = {.size = 100, .height = 33, .elem = 4, .tag = 9};
    cr_assert_eq(vs_arena_alloc_req(a, &rq, &p, &pitch), CUDA_SUCCESS);
    struct vs_block_info info;
    cr_assert_eq(vs_arena_block_info(a, p, &info), CUDA_SUCCESS);
    cr_assert_eq(info.tag, 9);
    cr_assert_eq(info.size, pitch * 33);
    rq.elem = 3;
    cr_assert_eq(vs_arena_alloc_req(a, &rq, &p, &pitch), CUDA_ERROR_INVALID_VALUE);
    fx_destroy(a);
}

Test(arena_queries, pitch_and_invalid_sizes)
{
    arena_fixture_start(256 * MiB);
    struct vs_arena *a = arena_new(SIZE_MAX);
    CUdeviceptr p;
    size_t pitch = 0, dpitch = 0;
    cr_assert_eq(vs_arena_alloc_pitch(a, 100, 33, 4, &p, &pitch), CUDA_SUCCESS);
    CUdeviceptr d;
    cr_assert_eq(cuMemAllocPitch(&d, &dpitch, 100, 33, 4), CUDA_SUCCESS);
    cr_assert_eq(pitch, dpitch, "arena pitch %zu, driver %zu", pitch, dpitch);
    size_t size;
    cr_assert_eq(vs_arena_address_range(a, p, NULL, &size), CUDA_SUCCESS);
    cr_assert_eq(size, pitch * 33);
    cr_assert_eq(vs_arena_alloc_pitch(a, 100, 33, 3, &p, &pitch), CUDA_ERROR_INVALID_VALUE);
    cr_assert_eq(vs_arena_alloc(a, 0, &p), CUDA_ERROR_INVALID_VALUE);
    cr_assert_eq(vs_arena_alloc_async(a, 0, 0, &p), CUDA_ERROR_INVALID_VALUE);
    cr_assert_eq(vs_arena_alloc(a, 16, NULL), CUDA_ERROR_INVALID_VALUE);
    cuMemFree(d);
    fx_destroy(a);
}

/* The process registry the hooks use: the current context's arena, created once, and the owner
 * of a pointer. */
Test(arena_queries, registry_finds_current_arena_and_owner)
{
    arena_fixture_start(256 * MiB);
    struct vs_arena_options opt = {.cache_max = SIZE_MAX};
    struct vs_arena *a, *b;
    vs_arenas_setup(&fx_drv, &opt);
    cr_assert_eq(vs_arenas_current(&a), CUDA_SUCCESS);
    cr_assert_eq(vs_arenas_current(&b), CUDA_SUCCESS);
    cr_assert_eq(a, b, "one arena per device");
    CUdeviceptr p, d;
    cr_assert_eq(vs_arena_alloc(a, 4096, &p), CUDA_SUCCESS);
    cr_assert_eq(cuMemAlloc(&d, 4096), CUDA_SUCCESS);
    cr_assert_eq(vs_arenas_owner(p), a);
    cr_assert_null(vs_arenas_owner(d), "driver memory is passed through");
    cuMemFree(d);
    cr_assert_eq(cuCtxSetCurrent(NULL), CUDA_SUCCESS);
    cr_assert_eq(vs_arenas_current(&b), CUDA_ERROR_INVALID_CONTEXT);
    vs_arenas_teardown();
    cr_assert_null(vs_arenas_owner(p));
    cr_assert_eq(cuCtxSetCurrent(fx_ctx), CUDA_SUCCESS);
    cr_assert_eq(vs_arenas_current(&b), CUDA_SUCCESS);
    cr_assert_eq(vs_arena_alloc(b, 4096, &p), CUDA_SUCCESS, "a fresh arena after teardown");
    vs_arenas_teardown();
}
