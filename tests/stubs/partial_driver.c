/* A library that exports a few driver entry points and lacks the rest, as an old or unrelated
 * libcuda would: VRAMSHIM_REAL_LIBCUDA naming it must not crash the program. Never called. */
#include <cuda.h>

CUresult cuInit(unsigned flags)
{
    (void)flags;
    return CUDA_ERROR_NO_DEVICE;
}

CUresult cuDeviceGetCount(int *count)
{
    *count = 0;
    return CUDA_SUCCESS;
}

CUresult cuMemAlloc_v2(CUdeviceptr *p, size_t n)
{
    (void)p;
    (void)n;
    return CUDA_ERROR_NO_DEVICE;
}
