/* Hooks of the memory queries: cuMemGetInfo_v2, cuMemGetAddressRange_v2,
 * cuPointerGetAttribute(s). Counted and routed (route.c): the arena answers for its own pointers
 * and adds its free granules to the free memory. NULL arguments go to the driver, so a bad
 * argument gets the driver's own error.
 */
#include "interpose/tally.h"
#include "interpose/init.h"
#include "interpose/route.h"

CUresult vs_hook_cuMemGetInfo_v2(size_t *free_bytes, size_t *total_bytes)
{
    if (!vs_init())
        return CUDA_ERROR_NOT_INITIALIZED;
    vs_tally_call(VS_FAM_QUERY);
    return vs_route_mem_get_info(free_bytes, total_bytes);
}

CUresult vs_hook_cuMemGetAddressRange_v2(CUdeviceptr *pbase, size_t *psize, CUdeviceptr dptr)
{
    if (!vs_init())
        return CUDA_ERROR_NOT_INITIALIZED;
    vs_tally_call(VS_FAM_QUERY);
    return vs_route_address_range(pbase, psize, dptr);
}

CUresult vs_hook_cuPointerGetAttribute(void *data, CUpointer_attribute attribute, CUdeviceptr ptr)
{
    if (!vs_init())
        return CUDA_ERROR_NOT_INITIALIZED;
    vs_tally_call(VS_FAM_QUERY);
    return vs_route_pointer_attribute(data, attribute, ptr);
}

CUresult vs_hook_cuPointerGetAttributes(unsigned int numAttributes, CUpointer_attribute *attributes,
                                        void **data, CUdeviceptr ptr)
{
    if (!vs_init())
        return CUDA_ERROR_NOT_INITIALIZED;
    vs_tally_call(VS_FAM_QUERY);
    return vs_route_pointer_attributes(numAttributes, attributes, data, ptr);
}

VS_EXPORT_HOOK(cuMemGetInfo_v2);
VS_EXPORT_HOOK(cuMemGetAddressRange_v2);
VS_EXPORT_HOOK(cuPointerGetAttribute);
VS_EXPORT_HOOK(cuPointerGetAttributes);
