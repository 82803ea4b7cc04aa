/* simcuda pointer queries for cuMemAlloc, pool and VMM memory and for host pointers. */
#include "test_sim_common.h"

Test(sim_pointer, memalloc_pointer_attributes)
{
    CUcontext ctx = sim_start();
    CUdeviceptr p;
    CU_OK(cuMemAlloc_v2(&p, 5000));
    CUcontext c;
    unsigned int type;
    CUdeviceptr dp, start;
    size_t size;
    int ordinal;
    bool managed = true, mapped = false;
    unsigned long long id1, id2;
    CU_OK(cuPointerGetAttribute(&c, CU_POINTER_ATTRIBUTE_CONTEXT, p + 10));
    cr_assert_eq(c, ctx);
    CU_OK(cuPointerGetAttribute(&type, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, p + 10));
    cr_assert_eq(type, CU_MEMORYTYPE_DEVICE);
    CU_OK(cuPointerGetAttribute(&dp, CU_POINTER_ATTRIBUTE_DEVICE_POINTER, p + 10));
    cr_assert_eq(dp, p + 10);
    CU_OK(cuPointerGetAttribute(&ordinal, CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL, p));
    cr_assert_eq(ordinal, 0);
    CU_OK(cuPointerGetAttribute(&start, CU_POINTER_ATTRIBUTE_RANGE_START_ADDR, p + 4999));
    CU_OK(cuPointerGetAttribute(&size, CU_POINTER_ATTRIBUTE_RANGE_SIZE, p + 4999));
    cr_assert_eq(start, p);
    cr_assert_eq(size, 5000);
    CU_OK(cuPointerGetAttribute(&managed, CU_POINTER_ATTRIBUTE_IS_MANAGED, p));
    cr_assert_eq(managed, false);
    CU_OK(cuPointerGetAttribute(&mapped, CU_POINTER_ATTRIBUTE_MAPPED, p));
    cr_assert_eq(mapped, true);
    CU_OK(cuPointerGetAttribute(&id1, CU_POINTER_ATTRIBUTE_BUFFER_ID, p));
    CUdeviceptr q;
    CU_OK(cuMemAlloc_v2(&q, 1));
    CU_OK(cuPointerGetAttribute(&id2, CU_POINTER_ATTRIBUTE_BUFFER_ID, q));
    cr_assert_neq(id1, id2);
    void *host;
    cr_assert_eq(cuPointerGetAttribute(&host, CU_POINTER_ATTRIBUTE_HOST_POINTER, p),
                 CUDA_ERROR_INVALID_VALUE);
    CUmemoryPool pool;
    cr_assert_eq(cuPointerGetAttribute(&pool, CU_POINTER_ATTRIBUTE_MEMPOOL_HANDLE, p),
                 CUDA_ERROR_INVALID_VALUE, "not pool memory");
}

Test(sim_pointer, vmm_range_is_the_mapping)
{
    sim_start();
    CUmemGenericAllocationHandle h = sim_create(2 * GRANULE);
    CUdeviceptr va;
    CU_OK(cuMemAddressReserve(&va, 8 * GRANULE, 0, 0, 0));
    CU_OK(cuMemMap(va + 2 * GRANULE, 2 * GRANULE, 0, h, 0));
    CUmemAccessDesc rw = {{CU_MEM_LOCATION_TYPE_DEVICE, 0}, CU_MEM_ACCESS_FLAGS_PROT_READWRITE};
    CU_OK(cuMemSetAccess(va + 2 * GRANULE, 2 * GRANULE, &rw, 1));
    CUdeviceptr start, base;
    size_t size;
    CU_OK(cuPointerGetAttribute(&start, CU_POINTER_ATTRIBUTE_RANGE_START_ADDR, va + 3 * GRANULE));
    CU_OK(cuPointerGetAttribute(&size, CU_POINTER_ATTRIBUTE_RANGE_SIZE, va + 3 * GRANULE));
    cr_assert_eq(start, va + 2 * GRANULE);
    cr_assert_eq(size, 2 * GRANULE);
    CU_OK(cuMemGetAddressRange_v2(&base, &size, va + 2 * GRANULE + 1));
    cr_assert_eq(base, va + 2 * GRANULE);
    CUDA_POINTER_ATTRIBUTE_ACCESS_FLAGS flags;
    CU_OK(cuPointerGetAttribute(&flags, CU_POINTER_ATTRIBUTE_ACCESS_FLAGS, va + 2 * GRANULE));
    cr_assert_eq(flags, CU_POINTER_ATTRIBUTE_ACCESS_FLAG_READWRITE);
    unsigned int type;
    cr_assert_eq(cuPointerGetAttribute(&type, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, va),
                 CUDA_ERROR_INVALID_VALUE, "reserved but unmapped");
}

Test(sim_pointer, host_pointers)
{
    sim_start();
    int local = 0;
    unsigned int type = 99;
    cr_assert_eq(
        cuPointerGetAttribute(&type, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, (CUdeviceptr)&local),
        CUDA_ERROR_INVALID_VALUE);
    /* The plural form answers zeroed attributes instead of an error. */
    CUcontext ctx = (CUcontext)1;
    CUpointer_attribute attrs[] = {CU_POINTER_ATTRIBUTE_MEMORY_TYPE, CU_POINTER_ATTRIBUTE_CONTEXT};
    void *data[] = {&type, &ctx};
    CU_OK(cuPointerGetAttributes(2, attrs, data, (CUdeviceptr)&local));
    cr_assert_eq(type, 0);
    cr_assert_null(ctx);
    cr_assert_eq(cuPointerGetAttribute(&type, (CUpointer_attribute)999, (CUdeviceptr)&local),
                 CUDA_ERROR_INVALID_VALUE);
}

Test(sim_pointer, plural_form_on_device_memory)
{
    CUcontext ctx = sim_start();
    CUdeviceptr p;
    CU_OK(cuMemAlloc_v2(&p, 64));
    unsigned int type = 0;
    CUcontext c = NULL;
    int ordinal = -1;
    CUpointer_attribute attrs[] = {CU_POINTER_ATTRIBUTE_MEMORY_TYPE, CU_POINTER_ATTRIBUTE_CONTEXT,
                                   CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL};
    void *data[] = {&type, &c, &ordinal};
    CU_OK(cuPointerGetAttributes(3, attrs, data, p));
    cr_assert_eq(type, CU_MEMORYTYPE_DEVICE);
    cr_assert_eq(c, ctx);
    cr_assert_eq(ordinal, 0);
}
