/* simcuda cuMemAlloc family: capacity, granule rounding, memory held by other processes, info. */
#include "test_sim_common.h"

#include <string.h>

static void vram_12g(void)
{
    setenv("SIMCUDA_VRAM", "12GiB", 1);
}

static void vram_64m_taken_16m(void)
{
    setenv("SIMCUDA_VRAM", "64MiB", 1);
    setenv("SIMCUDA_VRAM_TAKEN", "16MiB", 1);
}

Test(sim_memory, total_and_free_follow_simcuda_vram, .init = vram_12g)
{
    sim_start();
    size_t free_b, total_b, dev_total;
    CU_OK(cuMemGetInfo_v2(&free_b, &total_b));
    CU_OK(cuDeviceTotalMem_v2(&dev_total, 0));
    cr_assert_eq(total_b, 12 * GiB);
    cr_assert_eq(dev_total, 12 * GiB);
    cr_assert_eq(free_b, 12 * GiB);
    CUdeviceptr p;
    CU_OK(cuMemAlloc_v2(&p, 3 * MiB)); /* rounds to two granules */
    CU_OK(cuMemGetInfo_v2(&free_b, &total_b));
    cr_assert_eq(free_b, 12 * GiB - 2 * GRANULE);
    cr_assert_eq(simcuda_physical_in_use(0), 2 * GRANULE);
    CU_OK(cuMemFree_v2(p));
    CU_OK(cuMemGetInfo_v2(&free_b, &total_b));
    cr_assert_eq(free_b, 12 * GiB);
    cr_assert_eq(simcuda_physical_in_use(0), 0);
}

Test(sim_memory, out_of_memory_counts_granules_and_taken, .init = vram_64m_taken_16m)
{
    sim_start();
    size_t free_b, total_b;
    CU_OK(cuMemGetInfo_v2(&free_b, &total_b));
    cr_assert_eq(total_b, 64 * MiB);
    cr_assert_eq(free_b, 48 * MiB);
    /* 24 allocations of 1 MiB (too large to share a page) use 24 granules = 48 MiB: exactly the
     * capacity left. */
    CUdeviceptr p[24], extra;
    for (int i = 0; i < 24; i++)
        CU_OK(cuMemAlloc_v2(&p[i], MiB));
    cr_assert_eq(cuMemAlloc_v2(&extra, 1), CUDA_ERROR_OUT_OF_MEMORY);
    CU_OK(cuMemFree_v2(p[0]));
    CU_OK(cuMemAlloc_v2(&extra, GRANULE));
    cr_assert_eq(cuMemAlloc_v2(&p[0], MiB), CUDA_ERROR_OUT_OF_MEMORY);
    /* Another process giving memory back makes room. */
    cr_assert_eq(simcuda_set_vram_taken(0, 0), 0);
    CU_OK(cuMemAlloc_v2(&p[0], MiB));
    CU_OK(cuMemGetInfo_v2(&free_b, &total_b));
    cr_assert_eq(free_b, 64 * MiB - 25 * GRANULE);
}

Test(sim_memory, one_allocation_larger_than_free_fails, .init = vram_64m_taken_16m)
{
    sim_start();
    CUdeviceptr p;
    cr_assert_eq(cuMemAlloc_v2(&p, 48 * MiB + 1), CUDA_ERROR_OUT_OF_MEMORY);
    CU_OK(cuMemAlloc_v2(&p, 48 * MiB));
    cr_assert_eq(simcuda_physical_in_use(0), 48 * MiB);
}

Test(sim_memory, device_pointer_is_host_addressable)
{
    sim_start();
    CUdeviceptr p;
    CU_OK(cuMemAlloc_v2(&p, 4096));
    memset((void *)p, 0x5a, 4096);
    unsigned char back[4096];
    CU_OK(cuMemcpyDtoH_v2(back, p, sizeof back));
    for (size_t i = 0; i < sizeof back; i++)
        cr_assert_eq(back[i], 0x5a);
    CU_OK(cuMemFree_v2(p));
}

Test(sim_memory, address_range_is_the_allocation_as_requested)
{
    sim_start();
    CUdeviceptr p, base;
    size_t size;
    CU_OK(cuMemAlloc_v2(&p, 1000));
    CU_OK(cuMemGetAddressRange_v2(&base, &size, p + 999));
    cr_assert_eq(base, p);
    cr_assert_eq(size, 1000);
    cr_assert_eq(cuMemGetAddressRange_v2(&base, &size, p + 1000), CUDA_ERROR_NOT_FOUND);
    int host;
    cr_assert_eq(cuMemGetAddressRange_v2(&base, &size, (CUdeviceptr)&host), CUDA_ERROR_NOT_FOUND);
}

Test(sim_memory, pitch_is_512_byte_aligned)
{
    sim_start();
    CUdeviceptr p;
    size_t pitch;
    CU_OK(cuMemAllocPitch_v2(&p, &pitch, 1000, 3, 4));
    cr_assert_eq(pitch, 1024);
    CUdeviceptr base;
    size_t size;
    CU_OK(cuMemGetAddressRange_v2(&base, &size, p));
    cr_assert_eq(size, 3 * 1024);
    cr_assert_eq(cuMemAllocPitch_v2(&p, &pitch, 1000, 3, 3), CUDA_ERROR_INVALID_VALUE);
}

Test(sim_memory, free_of_unknown_or_interior_pointer_is_invalid_value)
{
    sim_start();
    CUdeviceptr p;
    CU_OK(cuMemAlloc_v2(&p, 4096));
    cr_assert_eq(cuMemFree_v2(p + 16), CUDA_ERROR_INVALID_VALUE);
    int host;
    cr_assert_eq(cuMemFree_v2((CUdeviceptr)&host), CUDA_ERROR_INVALID_VALUE);
    cr_assert_eq(cuMemFree_v2(0), CUDA_ERROR_INVALID_VALUE);
    CU_OK(cuMemFree_v2(p));
    cr_assert_eq(cuMemFree_v2(p), CUDA_ERROR_INVALID_VALUE);
}

Test(sim_memory, get_info_with_null_is_invalid_value)
{
    sim_start();
    size_t v;
    cr_assert_eq(cuMemGetInfo_v2(NULL, &v), CUDA_ERROR_INVALID_VALUE);
    cr_assert_eq(cuMemGetInfo_v2(&v, NULL), CUDA_ERROR_INVALID_VALUE);
}

Test(sim_memory, allocation_needs_a_current_context)
{
    CU_OK(cuInit(0));
    CUdeviceptr p;
    size_t f, t;
    cr_assert_eq(cuMemAlloc_v2(&p, 1), CUDA_ERROR_INVALID_CONTEXT);
    cr_assert_eq(cuMemGetInfo_v2(&f, &t), CUDA_ERROR_INVALID_CONTEXT);
}

Test(sim_memory, zero_byte_allocation_is_invalid_value)
{
    sim_start();
    CUdeviceptr p;
    cr_assert_eq(cuMemAlloc_v2(&p, 0), CUDA_ERROR_INVALID_VALUE);
    cr_assert_eq(cuMemAlloc_v2(NULL, 1), CUDA_ERROR_INVALID_VALUE);
}
