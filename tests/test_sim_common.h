/* Shared helpers for the simcuda tests (test_sim_*.c). Each criterion test runs in its own
 * process, so SIMCUDA_* variables set in a test's .init apply to that test's cuInit. */
#ifndef TEST_SIM_COMMON_H
#define TEST_SIM_COMMON_H

#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <cuda.h>
#include <stdio.h>
#include <stdlib.h>

#include "tools/simcuda/simcuda.h"

#define MiB ((size_t)1 << 20)
#define GiB ((size_t)1 << 30)
#define GRANULE (2 * MiB)

#define CU_OK(call) cr_assert_eq((call), CUDA_SUCCESS, "%s failed", #call)

/* cuInit plus the primary context of device 0 made current (what cudart does). */
static inline CUcontext sim_start(void)
{
    CUcontext ctx;
    CU_OK(cuInit(0));
    CU_OK(cuDevicePrimaryCtxRetain(&ctx, 0));
    CU_OK(cuCtxSetCurrent(ctx));
    return ctx;
}

static inline CUmemAllocationProp sim_prop(CUmemLocationType type, int id)
{
    CUmemAllocationProp prop = {.type = CU_MEM_ALLOCATION_TYPE_PINNED, .location = {type, id}};
    return prop;
}

/* A cuMemCreate handle of `size` bytes of device 0's memory. */
static inline CUmemGenericAllocationHandle sim_create(size_t size)
{
    CUmemAllocationProp prop = sim_prop(CU_MEM_LOCATION_TYPE_DEVICE, 0);
    CUmemGenericAllocationHandle h;
    CU_OK(cuMemCreate(&h, size, &prop, 0));
    return h;
}

/* Reserves `size` of VA, maps `handle` there and grants read-write access to device 0. */
static inline CUdeviceptr sim_map(CUmemGenericAllocationHandle handle, size_t size)
{
    CUdeviceptr va;
    CU_OK(cuMemAddressReserve(&va, size, 0, 0, 0));
    CU_OK(cuMemMap(va, size, 0, handle, 0));
    CUmemAccessDesc access = {{CU_MEM_LOCATION_TYPE_DEVICE, 0}, CU_MEM_ACCESS_FLAGS_PROT_READWRITE};
    CU_OK(cuMemSetAccess(va, size, &access, 1));
    return va;
}

static inline void sim_unmap(CUdeviceptr va, size_t size)
{
    CU_OK(cuMemUnmap(va, size));
    CU_OK(cuMemAddressFree(va, size));
}

#endif
