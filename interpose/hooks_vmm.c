/* Hooks of the application's own virtual memory management (PyTorch expandable segments,
 * ggml's VMM pool): cuMemCreate, cuMemRelease, cuMemMap, cuMemUnmap. Always forwarded; the shim
 * only accounts physical handles (create/release) and traces every successful call.
 */
#include "interpose/tally.h"
#include "interpose/init.h"
#include "interpose/record.h"

CUresult vs_hook_cuMemCreate(CUmemGenericAllocationHandle *handle, size_t size,
                             const CUmemAllocationProp *prop, unsigned long long flags)
{
    if (!vs_init())
        return CUDA_ERROR_NOT_INITIALIZED;
    vs_tally_call(VS_FAM_VMM_CREATE);
    CUresult r = VS_FORWARD(cuMemCreate, handle, size, prop, flags);
    if (r == CUDA_SUCCESS && handle) {
        vs_tally_create(*handle, size);
        int dev =
            prop && prop->location.type == CU_MEM_LOCATION_TYPE_DEVICE ? prop->location.id : -1;
        vs_record(VS_HOOK_cuMemCreate, VS_EV_CREATE, 0, size, NULL, *handle, 0, dev);
    } else if (r == CUDA_ERROR_OUT_OF_MEMORY) {
        vs_record(VS_HOOK_cuMemCreate, VS_EV_OOM, 0, size, NULL, 0, 0, VS_DEV_CURRENT);
    }
    return r;
}

CUresult vs_hook_cuMemRelease(CUmemGenericAllocationHandle handle)
{
    if (!vs_init())
        return CUDA_ERROR_NOT_INITIALIZED;
    vs_tally_call(VS_FAM_VMM_RELEASE);
    CUresult r = VS_FORWARD(cuMemRelease, handle);
    uint64_t size = 0;
    if (r == CUDA_SUCCESS) {
        vs_tally_release(handle, &size);
        vs_record(VS_HOOK_cuMemRelease, VS_EV_RELEASE, 0, size, NULL, handle, 0, VS_DEV_CURRENT);
    }
    return r;
}

CUresult vs_hook_cuMemMap(CUdeviceptr ptr, size_t size, size_t offset,
                          CUmemGenericAllocationHandle handle, unsigned long long flags)
{
    if (!vs_init())
        return CUDA_ERROR_NOT_INITIALIZED;
    vs_tally_call(VS_FAM_VMM_MAP);
    CUresult r = VS_FORWARD(cuMemMap, ptr, size, offset, handle, flags);
    if (r == CUDA_SUCCESS)
        vs_record(VS_HOOK_cuMemMap, VS_EV_MAP, ptr, size, NULL, handle, offset, VS_DEV_CURRENT);
    return r;
}

CUresult vs_hook_cuMemUnmap(CUdeviceptr ptr, size_t size)
{
    if (!vs_init())
        return CUDA_ERROR_NOT_INITIALIZED;
    vs_tally_call(VS_FAM_VMM_UNMAP);
    CUresult r = VS_FORWARD(cuMemUnmap, ptr, size);
    if (r == CUDA_SUCCESS)
        vs_record(VS_HOOK_cuMemUnmap, VS_EV_UNMAP, ptr, size, NULL, 0, 0, VS_DEV_CURRENT);
    return r;
}

VS_EXPORT_HOOK(cuMemCreate);
VS_EXPORT_HOOK(cuMemRelease);
VS_EXPORT_HOOK(cuMemMap);
VS_EXPORT_HOOK(cuMemUnmap);
