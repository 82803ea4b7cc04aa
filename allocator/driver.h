/* The real CUDA driver entry points the allocator and the shim use, as one table.
 *
 * The allocator never calls cu* symbols by name: inside a preloaded process those names are the
 * shim's own hooks. Whoever owns the process's view of the driver fills this table: the
 * interposer from the real libcuda.so.1 (its only copy of the real driver: the hooks forward
 * through it too, interpose/hooks.h), tests and tools from simcuda via dlopen.
 *
 * Add an entry with X(name, PFN type, arena): arena 1 when the arena calls it (vs_arena_create
 * refuses a table without it), 0 when only the interposer or the tools do (unchecked: the shim
 * runs pass-through on a driver without it), 2 when its callers check it for NULL (what the
 * hooks forward to: a driver may lack it, vs_driver_load does not count it as missing); the
 * struct and the loader follow from the list. Entries nobody calls through the table do not
 * belong in it.
 */
#ifndef VS_ALLOCATOR_DRIVER_H
#define VS_ALLOCATOR_DRIVER_H

#include <cuda.h>
#include <cudaTypedefs.h>

/* cuda.h maps cuGetProcAddress to cuGetProcAddress_v2; the table has both entries. */
#undef cuGetProcAddress

#define VS_DRIVER_FUNCS(X)                                                          \
    X(cuInit, PFN_cuInit_v2000, 0)                                                  \
    X(cuDeviceGet, PFN_cuDeviceGet_v2000, 1)                                        \
    X(cuDeviceGetUuid, PFN_cuDeviceGetUuid_v9020, 2)                                \
    X(cuDeviceGetCount, PFN_cuDeviceGetCount_v2000, 0)                              \
    X(cuDeviceGetAttribute, PFN_cuDeviceGetAttribute_v2000, 1)                      \
    X(cuDeviceTotalMem_v2, PFN_cuDeviceTotalMem_v3020, 1)                           \
    X(cuDevicePrimaryCtxRetain, PFN_cuDevicePrimaryCtxRetain_v7000, 1)              \
    X(cuCtxGetCurrent, PFN_cuCtxGetCurrent_v4000, 1)                                \
    X(cuCtxSetCurrent, PFN_cuCtxSetCurrent_v4000, 1)                                \
    X(cuCtxGetDevice, PFN_cuCtxGetDevice_v2000, 1)                                  \
    X(cuCtxSynchronize, PFN_cuCtxSynchronize_v2000, 1)                              \
    X(cuMemAlloc_v2, PFN_cuMemAlloc_v3020, 0)                                       \
    X(cuMemFree_v2, PFN_cuMemFree_v3020, 0)                                         \
    X(cuMemGetInfo_v2, PFN_cuMemGetInfo_v3020, 1)                                   \
    X(cuMemAddressReserve, PFN_cuMemAddressReserve_v10020, 1)                       \
    X(cuMemAddressFree, PFN_cuMemAddressFree_v10020, 1)                             \
    X(cuMemCreate, PFN_cuMemCreate_v10020, 1)                                       \
    X(cuMemRelease, PFN_cuMemRelease_v10020, 1)                                     \
    X(cuMemMap, PFN_cuMemMap_v10020, 1)                                             \
    X(cuMemUnmap, PFN_cuMemUnmap_v10020, 1)                                         \
    X(cuMemSetAccess, PFN_cuMemSetAccess_v10020, 1)                                 \
    X(cuMemGetAllocationGranularity, PFN_cuMemGetAllocationGranularity_v10020, 1)   \
    X(cuMemcpyAsync, PFN_cuMemcpyAsync_v4000, 1)                                    \
    X(cuStreamSynchronize, PFN_cuStreamSynchronize_v2000, 1)                        \
    X(cuEventCreate, PFN_cuEventCreate_v2000, 1)                                    \
    X(cuEventRecord, PFN_cuEventRecord_v2000, 1)                                    \
    X(cuEventQuery, PFN_cuEventQuery_v2000, 1)                                      \
    X(cuEventDestroy_v2, PFN_cuEventDestroy_v4000, 1)                               \
    X(cuPointerGetAttribute, PFN_cuPointerGetAttribute_v4000, 1)                    \
    X(cuPointerGetAttributes, PFN_cuPointerGetAttributes_v7000, 1)                  \
    X(cuMemAllocPitch_v2, PFN_cuMemAllocPitch_v3020, 2)                             \
    X(cuMemAllocAsync, PFN_cuMemAllocAsync_v11020, 2)                               \
    X(cuMemAllocAsync_ptsz, PFN_cuMemAllocAsync_v11020_ptsz, 2)                     \
    X(cuMemAllocFromPoolAsync, PFN_cuMemAllocFromPoolAsync_v11020, 2)               \
    X(cuMemAllocFromPoolAsync_ptsz, PFN_cuMemAllocFromPoolAsync_v11020_ptsz, 2)     \
    X(cuMemFreeAsync, PFN_cuMemFreeAsync_v11020, 2)                                 \
    X(cuMemFreeAsync_ptsz, PFN_cuMemFreeAsync_v11020_ptsz, 2)                       \
    X(cuMemGetAddressRange_v2, PFN_cuMemGetAddressRange_v3020, 2)                   \
    X(cuGetProcAddress, PFN_cuGetProcAddress_v11030, 2)                             \
    X(cuGetProcAddress_v2, PFN_cuGetProcAddress_v12000, 2)                          \
    X(cuStreamDestroy_v2, PFN_cuStreamDestroy_v4000, 2)                             \
    X(cuDeviceGetDefaultMemPool, PFN_cuDeviceGetDefaultMemPool_v11020, 2)           \
    X(cuStreamIsCapturing, PFN_cuStreamIsCapturing_v10000, 2)

struct vs_driver {
#define VS_DRIVER_FIELD(name, type, arena) type name;
    VS_DRIVER_FUNCS(VS_DRIVER_FIELD)
#undef VS_DRIVER_FIELD
};

/* Looks each entry up with resolve(name, ctx). Returns 0 when all were found (but those marked
 * 2), else -1 with the first missing name in *missing; every entry that was found is filled either
 * way (missing ones are NULL), so a caller can run on a driver that lacks entries it does not
 * need. */
int vs_driver_load(struct vs_driver *drv, void *(*resolve)(const char *name, void *ctx),
                   void *ctx, const char **missing);

#endif
