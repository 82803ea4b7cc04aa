/* Serve-or-forward decisions per family (see route.h). */
#include "interpose/route.h"

CUresult vs_route_alloc(const struct vs_alloc_call *c)
{
    switch (c->hook) {
    case VS_HOOK_cuMemAllocPitch_v2:
        return VS_FORWARD(cuMemAllocPitch_v2, c->dptr, c->pitch, c->width, c->height, c->elem);
    case VS_HOOK_cuMemAllocAsync:
        return VS_FORWARD(cuMemAllocAsync, c->dptr, c->bytes, c->stream);
    case VS_HOOK_cuMemAllocAsync_ptsz:
        return VS_FORWARD(cuMemAllocAsync_ptsz, c->dptr, c->bytes, c->stream);
    case VS_HOOK_cuMemAllocFromPoolAsync:
        return VS_FORWARD(cuMemAllocFromPoolAsync, c->dptr, c->bytes, c->pool, c->stream);
    case VS_HOOK_cuMemAllocFromPoolAsync_ptsz:
        return VS_FORWARD(cuMemAllocFromPoolAsync_ptsz, c->dptr, c->bytes, c->pool, c->stream);
    default:
        return VS_FORWARD(cuMemAlloc_v2, c->dptr, c->bytes);
    }
}

CUresult vs_route_free(enum vs_hook_id hook, CUdeviceptr ptr, CUstream stream)
{
    switch (hook) {
    case VS_HOOK_cuMemFreeAsync:
        return VS_FORWARD(cuMemFreeAsync, ptr, stream);
    case VS_HOOK_cuMemFreeAsync_ptsz:
        return VS_FORWARD(cuMemFreeAsync_ptsz, ptr, stream);
    default:
        return VS_FORWARD(cuMemFree_v2, ptr);
    }
}

CUresult vs_route_mem_get_info(size_t *free_bytes, size_t *total_bytes)
{
    return VS_FORWARD(cuMemGetInfo_v2, free_bytes, total_bytes);
}

CUresult vs_route_address_range(CUdeviceptr *base, size_t *size, CUdeviceptr ptr)
{
    return VS_FORWARD(cuMemGetAddressRange_v2, base, size, ptr);
}

CUresult vs_route_pointer_attribute(void *data, CUpointer_attribute attr, CUdeviceptr ptr)
{
    return VS_FORWARD(cuPointerGetAttribute, data, attr, ptr);
}

CUresult vs_route_pointer_attributes(unsigned n, CUpointer_attribute *attrs, void **data,
                                     CUdeviceptr ptr)
{
    return VS_FORWARD(cuPointerGetAttributes, n, attrs, data, ptr);
}
