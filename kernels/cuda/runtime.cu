// The CUDA runtime as linked into the program (kernels/cuda_libs.h, struct vs_cuda_runtime):
// the device count with the precise reason when there is none, the pointer query, and copies.
// libvramshim_vae.so links NVIDIA's static runtime (docs/decoder.md, "Linking the CUDA
// runtime"), which loads the driver (libcuda.so.1) itself on the first call, so none of this
// needs a driver to load. Host code only; not in the emulation.
#ifndef VS_CUDA_EMU
#include "kernels/cuda/common.cuh"

#include <dlfcn.h>
#include <stdio.h>

#include "kernels/cuda_libs.h"

static int device_count(int *n, char *why, size_t len)
{
    *n = 0;
    const cudaError_t rc = cudaGetDeviceCount(n);
    if (rc == cudaSuccess && *n > 0)
        return 0;
    *n = 0;
    // whether the driver can be loaded at all (the runtime unloads it again after a failure)
    void *drv = dlopen("libcuda.so.1", RTLD_LAZY | RTLD_LOCAL);
    if (drv)
        dlclose(drv);
    if (rc == cudaSuccess || rc == cudaErrorNoDevice)
        snprintf(why, len, "the CUDA driver (libcuda.so.1) sees no GPU");
    else if (!drv)
        snprintf(why, len, "the CUDA driver libcuda.so.1 is not installed or not on the "
                 "loader's path (cudaGetDeviceCount: %s)", cudaGetErrorName(rc));
    else if (rc == cudaErrorInsufficientDriver)
        snprintf(why, len, "the CUDA driver (libcuda.so.1) is older than the CUDA %d.%d runtime "
                 "this library was built with", CUDART_VERSION / 1000, CUDART_VERSION % 1000 / 10);
    else
        snprintf(why, len, "the CUDA driver libcuda.so.1 loads but cudaGetDeviceCount fails: %s "
                 "(%s)", cudaGetErrorName(rc), cudaGetErrorString(rc));
    cudaGetLastError(); // not sticky: clear it for the caller's next check
    return -1;
}

static bool is_device(const void *p)
{
    cudaPointerAttributes a;
    if (cudaPointerGetAttributes(&a, p) != cudaSuccess) {
        cudaGetLastError();
        return false;
    }
    return a.type == cudaMemoryTypeDevice || a.type == cudaMemoryTypeManaged;
}

extern "C" const struct vs_cuda_runtime vs_cuda_linked_runtime = {
    "the CUDA runtime linked into this program", device_count, is_device};

extern "C" int vs_cuda_copy_sync(void *dst, const void *src, size_t bytes, cudaStream_t stream)
{
    if (cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, stream) != cudaSuccess ||
        cudaStreamSynchronize(stream) != cudaSuccess)
        return -1;
    return 0;
}

extern "C" int vs_cuda_stream_sync(cudaStream_t stream)
{
    return cudaStreamSynchronize(stream) == cudaSuccess ? 0 : -1;
}

extern "C" const char *vs_cuda_last_error(void)
{
    return cudaGetErrorString(cudaGetLastError());
}
#endif
