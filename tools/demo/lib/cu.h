/* The CUDA driver as the demo generators reach it: the way cudart does, by dlopen("libcuda.so.1")
 * and cuGetProcAddress_v2, so a preloaded shim sees exactly what it sees under PyTorch.
 *
 * Invariant: after vs_demo_cu_open() returned 0 every pointer in the table is set (but
 * physical_in_use, simcuda's only) and device 0's primary context is current on the calling
 * thread.
 */
#ifndef VS_DEMO_CU_H
#define VS_DEMO_CU_H

#include <stddef.h>

#include <cudaTypedefs.h>

struct vs_demo_cu {
    PFN_cuMemGetInfo_v3020 mem_get_info;
    PFN_cuMemAlloc_v3020 mem_alloc;           /* cuMemAlloc_v2: PyTorch's caching allocator */
    PFN_cuMemFree_v3020 mem_free;
    PFN_cuMemAllocAsync_v11020 mem_alloc_async; /* backend:cudaMallocAsync */
    PFN_cuMemFreeAsync_v11020 mem_free_async;
    PFN_cuStreamCreate_v2000 stream_create;
    PFN_cuStreamSynchronize_v2000 stream_synchronize;
    PFN_cuMemcpyHtoDAsync_v3020 memcpy_htod_async;
    PFN_cuMemcpyDtoHAsync_v3020 memcpy_dtoh_async;
    PFN_cuMemcpyDtoDAsync_v3020 memcpy_dtod_async;
    PFN_cuMemsetD32Async_v3020 memset_d32_async;
    PFN_cuGetErrorName_v6000 get_error_name;
    /* simcuda_physical_in_use: the device bytes this process holds, which a real driver cannot
     * tell (cuMemGetInfo counts every process's); NULL on a real driver. */
    size_t (*physical_in_use)(int device);
};

/* Loads the driver, initialises it and makes device 0's primary context current. Returns 0, or
 * -1 with a message naming the failing step in err. */
int vs_demo_cu_open(struct vs_demo_cu *cu, char *err, size_t errlen);

/* "CUDA_ERROR_OUT_OF_MEMORY" for r (a number when the driver cannot name it). */
const char *vs_demo_cu_error(const struct vs_demo_cu *cu, CUresult r, char *buf, size_t len);

#endif
