/* simcuda cuGetProcAddress: resolves (name, cudaVersion, flags) to the exact exported symbol the
 * driver would return, using the versions of cudaTypedefs.h (PFN_<name>_v<version>[_ptds|_ptsz]).
 *
 * Invariants:
 * - Every entry's pointer is the library's own definition of that exact symbol, so it equals
 *   dlsym(handle, symbol) and dladdr() maps it back to that name.
 * - A name resolves to its newest entry with version <= cudaVersion; with
 *   CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM its per-thread entry is preferred when one
 *   qualifies. Versions simcuda does not implement are listed with a NULL pointer, so a caller
 *   asking for them gets CUDA_ERROR_NOT_FOUND, never an older symbol with another signature.
 */
#include "sim.h"

#include <string.h>

struct proc {
    const char *name;
    int version;
    bool per_thread;
    const char *symbol;
    void *fn;
};

#define P(name, ver, sym) {#name, ver, false, #sym, (void *)sym}
#define T(name, ver, sym) {#name, ver, true, #sym, (void *)sym}
#define N(name, ver) {#name, ver, false, NULL, NULL}
/* Sync copy/memset forms: legacy symbol from 3020, per-thread (_ptds) from 7000. */
#define SYNC_V2(name) N(name, 2000), P(name, 3020, name##_v2), T(name, 7000, name##_v2_ptds)
#define ASYNC_V2(name, first)                                                                      \
    N(name, first), P(name, 3020, name##_v2), T(name, 7000, name##_v2_ptsz)
#define ASYNC_3020(name) P(name, 3020, name), T(name, 7000, name##_ptsz)
#define PAIR(name, ver, ptver) P(name, ver, name), T(name, ptver, name##_ptsz)

static const struct proc procs[] = {
    P(cuInit, 2000, cuInit),
    P(cuDriverGetVersion, 2020, cuDriverGetVersion),
    P(cuGetProcAddress, 11030, cuGetProcAddress),
    P(cuGetProcAddress, 12000, cuGetProcAddress_v2),
    P(cuGetExportTable, 3000, cuGetExportTable),
    P(cuGetErrorName, 6000, cuGetErrorName),
    P(cuGetErrorString, 6000, cuGetErrorString),
    /* devices */
    P(cuDeviceGet, 2000, cuDeviceGet),
    P(cuDeviceGetCount, 2000, cuDeviceGetCount),
    P(cuDeviceGetName, 2000, cuDeviceGetName),
    P(cuDeviceTotalMem, 2000, cuDeviceTotalMem),
    P(cuDeviceTotalMem, 3020, cuDeviceTotalMem_v2),
    P(cuDeviceGetAttribute, 2000, cuDeviceGetAttribute),
    P(cuDeviceComputeCapability, 2000, cuDeviceComputeCapability),
    P(cuDeviceGetUuid, 9020, cuDeviceGetUuid),
    P(cuDeviceGetUuid, 11040, cuDeviceGetUuid_v2),
    P(cuDeviceGetPCIBusId, 4010, cuDeviceGetPCIBusId),
    P(cuDeviceCanAccessPeer, 4000, cuDeviceCanAccessPeer),
    P(cuDeviceGetDefaultMemPool, 11020, cuDeviceGetDefaultMemPool),
    P(cuDeviceGetMemPool, 11020, cuDeviceGetMemPool),
    P(cuDeviceSetMemPool, 11020, cuDeviceSetMemPool),
    /* contexts */
    P(cuDevicePrimaryCtxRetain, 7000, cuDevicePrimaryCtxRetain),
    P(cuDevicePrimaryCtxRelease, 7000, cuDevicePrimaryCtxRelease),
    P(cuDevicePrimaryCtxRelease, 11000, cuDevicePrimaryCtxRelease_v2),
    P(cuDevicePrimaryCtxReset, 7000, cuDevicePrimaryCtxReset),
    P(cuDevicePrimaryCtxReset, 11000, cuDevicePrimaryCtxReset_v2),
    P(cuDevicePrimaryCtxSetFlags, 7000, cuDevicePrimaryCtxSetFlags),
    P(cuDevicePrimaryCtxSetFlags, 11000, cuDevicePrimaryCtxSetFlags_v2),
    P(cuDevicePrimaryCtxGetState, 7000, cuDevicePrimaryCtxGetState),
    N(cuCtxCreate, 2000),
    P(cuCtxCreate, 3020, cuCtxCreate_v2),
    N(cuCtxCreate, 11040),
    P(cuCtxCreate, 12050, cuCtxCreate_v4),
    N(cuCtxDestroy, 2000),
    P(cuCtxDestroy, 4000, cuCtxDestroy_v2),
    P(cuCtxGetCurrent, 4000, cuCtxGetCurrent),
    P(cuCtxSetCurrent, 4000, cuCtxSetCurrent),
    N(cuCtxPushCurrent, 2000),
    P(cuCtxPushCurrent, 4000, cuCtxPushCurrent_v2),
    N(cuCtxPopCurrent, 2000),
    P(cuCtxPopCurrent, 4000, cuCtxPopCurrent_v2),
    P(cuCtxGetDevice, 2000, cuCtxGetDevice),
    P(cuCtxGetDevice, 13000, cuCtxGetDevice_v2),
    P(cuCtxSynchronize, 2000, cuCtxSynchronize),
    P(cuCtxSynchronize, 13000, cuCtxSynchronize_v2),
    P(cuCtxGetFlags, 7000, cuCtxGetFlags),
    P(cuCtxGetApiVersion, 3020, cuCtxGetApiVersion),
    P(cuCtxGetId, 12000, cuCtxGetId),
    P(cuCtxGetStreamPriorityRange, 5050, cuCtxGetStreamPriorityRange),
    /* allocation */
    P(cuMemAlloc, 2000, cuMemAlloc),
    P(cuMemAlloc, 3020, cuMemAlloc_v2),
    N(cuMemAllocPitch, 2000),
    P(cuMemAllocPitch, 3020, cuMemAllocPitch_v2),
    P(cuMemFree, 2000, cuMemFree),
    P(cuMemFree, 3020, cuMemFree_v2),
    P(cuMemGetInfo, 2000, cuMemGetInfo),
    P(cuMemGetInfo, 3020, cuMemGetInfo_v2),
    N(cuMemGetAddressRange, 2000),
    P(cuMemGetAddressRange, 3020, cuMemGetAddressRange_v2),
    P(cuPointerGetAttribute, 4000, cuPointerGetAttribute),
    P(cuPointerGetAttributes, 7000, cuPointerGetAttributes),
    PAIR(cuMemAllocAsync, 11020, 11020),
    PAIR(cuMemFreeAsync, 11020, 11020),
    PAIR(cuMemAllocFromPoolAsync, 11020, 11020),
    P(cuMemAllocHost, 2000, cuMemAllocHost),
    P(cuMemAllocHost, 3020, cuMemAllocHost_v2),
    P(cuMemHostAlloc, 2020, cuMemHostAlloc),
    P(cuMemFreeHost, 2000, cuMemFreeHost),
    P(cuMemHostRegister, 4000, cuMemHostRegister),
    P(cuMemHostRegister, 6050, cuMemHostRegister_v2),
    P(cuMemHostUnregister, 4000, cuMemHostUnregister),
    N(cuMemHostGetDevicePointer, 2020),
    P(cuMemHostGetDevicePointer, 3020, cuMemHostGetDevicePointer_v2),
    P(cuMemHostGetFlags, 2030, cuMemHostGetFlags),
    P(cuMemPoolCreate, 11020, cuMemPoolCreate),
    P(cuMemPoolDestroy, 11020, cuMemPoolDestroy),
    P(cuMemPoolTrimTo, 11020, cuMemPoolTrimTo),
    P(cuMemPoolSetAttribute, 11020, cuMemPoolSetAttribute),
    P(cuMemPoolGetAttribute, 11020, cuMemPoolGetAttribute),
    P(cuMemPoolSetAccess, 11020, cuMemPoolSetAccess),
    P(cuMemPoolGetAccess, 11020, cuMemPoolGetAccess),
    /* virtual memory management */
    P(cuMemAddressReserve, 10020, cuMemAddressReserve),
    P(cuMemAddressFree, 10020, cuMemAddressFree),
    P(cuMemCreate, 10020, cuMemCreate),
    P(cuMemRelease, 10020, cuMemRelease),
    P(cuMemMap, 10020, cuMemMap),
    P(cuMemUnmap, 10020, cuMemUnmap),
    P(cuMemSetAccess, 10020, cuMemSetAccess),
    P(cuMemGetAccess, 10020, cuMemGetAccess),
    P(cuMemGetAllocationGranularity, 10020, cuMemGetAllocationGranularity),
    P(cuMemGetAllocationPropertiesFromHandle, 10020, cuMemGetAllocationPropertiesFromHandle),
    P(cuMemRetainAllocationHandle, 11000, cuMemRetainAllocationHandle),
    /* copies and memsets */
    P(cuMemcpy, 4000, cuMemcpy),
    T(cuMemcpy, 7000, cuMemcpy_ptds),
    PAIR(cuMemcpyAsync, 4000, 7000),
    SYNC_V2(cuMemcpyHtoD),
    SYNC_V2(cuMemcpyDtoH),
    SYNC_V2(cuMemcpyDtoD),
    ASYNC_V2(cuMemcpyHtoDAsync, 2000),
    ASYNC_V2(cuMemcpyDtoHAsync, 2000),
    ASYNC_V2(cuMemcpyDtoDAsync, 3000),
    SYNC_V2(cuMemcpy2D),
    SYNC_V2(cuMemcpy2DUnaligned),
    ASYNC_V2(cuMemcpy2DAsync, 2000),
    P(cuMemcpyPeer, 4000, cuMemcpyPeer),
    T(cuMemcpyPeer, 7000, cuMemcpyPeer_ptds),
    PAIR(cuMemcpyPeerAsync, 4000, 7000),
    SYNC_V2(cuMemsetD8),
    SYNC_V2(cuMemsetD16),
    SYNC_V2(cuMemsetD32),
    SYNC_V2(cuMemsetD2D8),
    SYNC_V2(cuMemsetD2D16),
    SYNC_V2(cuMemsetD2D32),
    ASYNC_3020(cuMemsetD8Async),
    ASYNC_3020(cuMemsetD16Async),
    ASYNC_3020(cuMemsetD32Async),
    ASYNC_3020(cuMemsetD2D8Async),
    ASYNC_3020(cuMemsetD2D16Async),
    ASYNC_3020(cuMemsetD2D32Async),
    /* streams and events */
    P(cuStreamCreate, 2000, cuStreamCreate),
    P(cuStreamCreateWithPriority, 5050, cuStreamCreateWithPriority),
    P(cuStreamDestroy, 2000, cuStreamDestroy),
    P(cuStreamDestroy, 4000, cuStreamDestroy_v2),
    PAIR(cuStreamSynchronize, 2000, 7000),
    PAIR(cuStreamQuery, 2000, 7000),
    PAIR(cuStreamWaitEvent, 3020, 7000),
    PAIR(cuStreamGetFlags, 5050, 7000),
    PAIR(cuStreamGetPriority, 5050, 7000),
    PAIR(cuStreamGetCtx, 9020, 9020),
    N(cuStreamGetCtx, 12050),
    PAIR(cuStreamGetId, 12000, 12000),
    PAIR(cuStreamGetDevice, 12080, 12080),
    PAIR(cuLaunchHostFunc, 10000, 10000),
    PAIR(cuStreamAddCallback, 5000, 7000),
    PAIR(cuStreamIsCapturing, 10000, 10000),
    P(cuThreadExchangeStreamCaptureMode, 10010, cuThreadExchangeStreamCaptureMode),
    P(cuEventCreate, 2000, cuEventCreate),
    PAIR(cuEventRecord, 2000, 7000),
    PAIR(cuEventRecordWithFlags, 11010, 11010),
    P(cuEventQuery, 2000, cuEventQuery),
    P(cuEventSynchronize, 2000, cuEventSynchronize),
    P(cuEventDestroy, 2000, cuEventDestroy),
    P(cuEventDestroy, 4000, cuEventDestroy_v2),
    P(cuEventElapsedTime, 2000, cuEventElapsedTime),
    P(cuEventElapsedTime, 12080, cuEventElapsedTime_v2),
};

static CUresult resolve(const char *symbol, void **pfn, int cudaVersion, cuuint64_t flags,
                        CUdriverProcAddressQueryResult *status)
{
    CUdriverProcAddressQueryResult found = CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
    const struct proc *best = NULL, *best_pt = NULL;
    if (!symbol || !pfn ||
        (flags & ~(cuuint64_t)(CU_GET_PROC_ADDRESS_LEGACY_STREAM |
                               CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM)))
        return CUDA_ERROR_INVALID_VALUE;
    *pfn = NULL;
    for (size_t i = 0; i < sizeof procs / sizeof procs[0]; i++) {
        const struct proc *p = &procs[i];
        if (strcmp(p->name, symbol) != 0)
            continue;
        if (found == CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND)
            found = CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT;
        if (p->version > cudaVersion)
            continue;
        const struct proc **slot = p->per_thread ? &best_pt : &best;
        if (!*slot || p->version >= (*slot)->version)
            *slot = p;
    }
    if (best_pt && (flags & CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM))
        best = best_pt;
    if (best && !best->fn) {
        vs_sim_log(VS_SIM_LOG_INFO, "cuGetProcAddress(%s, %d): that version is not implemented",
                   symbol, cudaVersion);
        best = NULL;
        found = CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
    }
    if (best) {
        *pfn = best->fn;
        found = CU_GET_PROC_ADDRESS_SUCCESS;
        vs_sim_log(VS_SIM_LOG_DEBUG, "cuGetProcAddress(%s, %d, %llu) -> %s", symbol, cudaVersion,
                   (unsigned long long)flags, best->symbol);
    } else if (found == CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND) {
        vs_sim_log(VS_SIM_LOG_DEBUG, "cuGetProcAddress(%s): not provided", symbol);
    }
    if (status)
        *status = found;
    return best ? CUDA_SUCCESS : CUDA_ERROR_NOT_FOUND;
}

CUresult CUDAAPI cuGetProcAddress(const char *symbol, void **pfn, int cudaVersion, cuuint64_t flags)
{
    VS_SIM_ENTER("cuGetProcAddress");
    return resolve(symbol, pfn, cudaVersion, flags, NULL);
}

CUresult CUDAAPI cuGetProcAddress_v2(const char *symbol, void **pfn, int cudaVersion,
                                     cuuint64_t flags, CUdriverProcAddressQueryResult *symbolStatus)
{
    VS_SIM_ENTER("cuGetProcAddress_v2");
    return resolve(symbol, pfn, cudaVersion, flags, symbolStatus);
}

/* Private driver tables are not simulated; answering without touching anything keeps cudart's
 * probing side-effect free (no initialisation). */
CUresult CUDAAPI cuGetExportTable(const void **ppExportTable, const CUuuid *pExportTableId)
{
    VS_SIM_ENTER("cuGetExportTable");
    (void)ppExportTable;
    (void)pExportTableId;
    return CUDA_ERROR_NOT_SUPPORTED;
}
