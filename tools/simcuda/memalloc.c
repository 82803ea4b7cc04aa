/* simcuda cuMemAlloc family: allocations carved from a per-device heap of chunks (chunk.c).
 *
 * Packing model. Public material says that cudaMalloc returns pointers aligned to at least 256
 * bytes (CUDA C++ Programming Guide, "Device Memory Accesses"; 512 on some devices, see
 * cudaDeviceProp::textureAlignment) and that two 1-byte cudaMallocs typically come back 256 or
 * 512 bytes apart, i.e. small requests share pages instead of taking a 2 MiB granule each. The
 * driver's exact threshold is not documented; SMALL_LIMIT (1 MiB) is an assumption, the same
 * boundary PyTorch's caching allocator uses between its small pool (2 MiB segments) and its
 * large one. Requests below it are carved, 512-byte aligned, best fit, from 2 MiB pages shared by
 * the device's small allocations; an empty page is released at once. Larger requests map their
 * own memory rounded up to the 2 MiB granule.
 *
 * Invariants:
 * - A chunk's reservation is owned by it (VS_SIM_OWNER_ALLOC): cuMemMap/cuMemUnmap/
 *   cuMemAddressFree on it are refused, and pointer lookups find the block through it.
 * - cuMemGetAddressRange_v2 and pointer attributes report the block's own base and requested size;
 *   free space inside a chunk is not a known pointer.
 * - cuMemFree_v2 waits for all work of the allocation's context first, as cudaFree does.
 * - One heap per device (contexts of a device share its pages); guarded by vs_sim_mem_lock.
 */
#include "sim.h"

#include <limits.h>
#include <stdlib.h>

#define SMALL_LIMIT ((size_t)1 << 20)

static struct vs_sim_heap heaps[VS_SIM_MAX_DEVICES];

/* Blocks whose cuMemFreeAsync the child dropped (free_ticket ~0) are freed now. */
void vs_sim_memalloc_fork_child(void)
{
    for (int d = 0; d < VS_SIM_MAX_DEVICES; d++) {
        for (struct vs_sim_chunk *c = heaps[d].chunks, *next; c; c = next) {
            next = c->next;
            for (size_t i = c->blocks.count; i-- > 0;) {
                struct vs_sim_alloc *a = (struct vs_sim_alloc *)c->blocks.items[i];
                if (a->free_ticket != ~0ULL)
                    continue;
                bool last = c->blocks.count == 1; /* freeing it releases the chunk */
                vs_sim_block_free(a);
                if (last)
                    break;
            }
        }
        vs_sim_heap_fork_child(&heaps[d]);
    }
}

static size_t round_up(size_t n, size_t to)
{
    return (n + to - 1) / to * to;
}

static CUresult alloc_create(struct vs_sim_ctx *ctx, size_t size, uintptr_t *base)
{
    if (size == 0 || size > SIZE_MAX - VS_SIM_GRANULE)
        return CUDA_ERROR_INVALID_VALUE;
    struct vs_sim_heap *h = &heaps[ctx->device->ordinal];
    size_t span = round_up(size, VS_SIM_BLOCK_ALIGN);
    bool small = size < SMALL_LIMIT;
    struct vs_sim_alloc *a = small ? vs_sim_heap_fit(h, span) : NULL;
    if (!a) {
        CUresult rc = vs_sim_heap_grow(h, ctx->device, span, small, &a);
        if (rc != CUDA_SUCCESS)
            return rc;
    }
    a->ctx = ctx;
    a->size = size;
    *base = a->range.base;
    return CUDA_SUCCESS;
}

/* ---- entry points ---------------------------------------------------------------------------- */

CUresult CUDAAPI cuMemAlloc_v2(CUdeviceptr *dptr, size_t bytesize)
{
    VS_SIM_ENTER("cuMemAlloc_v2");
    struct vs_sim_ctx *ctx;
    CUresult rc = vs_sim_ctx_require(&ctx);
    if (rc != CUDA_SUCCESS)
        return rc;
    if (!dptr)
        return CUDA_ERROR_INVALID_VALUE;
    uintptr_t base;
    pthread_mutex_lock(&vs_sim_mem_lock);
    rc = alloc_create(ctx, bytesize, &base);
    pthread_mutex_unlock(&vs_sim_mem_lock);
    if (rc == CUDA_SUCCESS)
        *dptr = (CUdeviceptr)base;
    return rc;
}

/* 32-bit device pointers cannot hold a simulated (host) address. */
CUresult CUDAAPI cuMemAlloc(CUdeviceptr_v1 *dptr, unsigned int bytesize)
{
    VS_SIM_ENTER("cuMemAlloc");
    (void)dptr;
    (void)bytesize;
    VS_SIM_UNSUPPORTED("cuMemAlloc (32-bit device pointers; use cuMemAlloc_v2)");
}

CUresult CUDAAPI cuMemAllocPitch_v2(CUdeviceptr *dptr, size_t *pPitch, size_t WidthInBytes,
                                    size_t Height, unsigned int ElementSizeBytes)
{
    VS_SIM_ENTER("cuMemAllocPitch_v2");
    struct vs_sim_ctx *ctx;
    CUresult rc = vs_sim_ctx_require(&ctx);
    if (rc != CUDA_SUCCESS)
        return rc;
    if (!dptr || !pPitch || !WidthInBytes || !Height ||
        (ElementSizeBytes != 4 && ElementSizeBytes != 8 && ElementSizeBytes != 16))
        return CUDA_ERROR_INVALID_VALUE;
    size_t pitch = round_up(WidthInBytes, 512);
    if (Height > SIZE_MAX / pitch)
        return CUDA_ERROR_INVALID_VALUE;
    uintptr_t base;
    pthread_mutex_lock(&vs_sim_mem_lock);
    rc = alloc_create(ctx, pitch * Height, &base);
    pthread_mutex_unlock(&vs_sim_mem_lock);
    if (rc == CUDA_SUCCESS) {
        *dptr = (CUdeviceptr)base;
        *pPitch = pitch;
    }
    return rc;
}

/* Looks up a live allocation by its base (cached pool blocks are not live). */
static struct vs_sim_alloc *live_at(uintptr_t base)
{
    struct vs_sim_alloc *a = vs_sim_alloc_find(base);
    return a && a->range.base == base && !a->cached ? a : NULL;
}

static CUresult mem_free(uintptr_t ptr)
{
    VS_SIM_REQUIRE_INIT();
    pthread_mutex_lock(&vs_sim_mem_lock);
    struct vs_sim_alloc *a = live_at(ptr);
    struct vs_sim_ctx *ctx = a ? a->ctx : NULL;
    pthread_mutex_unlock(&vs_sim_mem_lock);
    if (!a)
        return CUDA_ERROR_INVALID_VALUE;
    vs_sim_streams_drain_ctx(ctx);
    pthread_mutex_lock(&vs_sim_mem_lock);
    a = live_at(ptr); /* another thread may have freed it meanwhile */
    if (a) {
        if (a->pool)
            vs_sim_pool_give_back(a, 0);
        else
            vs_sim_block_free(a);
    }
    pthread_mutex_unlock(&vs_sim_mem_lock);
    return a ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

CUresult CUDAAPI cuMemFree_v2(CUdeviceptr dptr)
{
    VS_SIM_ENTER("cuMemFree_v2");
    return mem_free((uintptr_t)dptr);
}

CUresult CUDAAPI cuMemFree(CUdeviceptr_v1 dptr)
{
    VS_SIM_ENTER("cuMemFree");
    return mem_free((uintptr_t)dptr);
}

static CUresult get_info(size_t *free_bytes, size_t *total_bytes)
{
    struct vs_sim_ctx *ctx;
    CUresult rc = vs_sim_ctx_require(&ctx);
    if (rc != CUDA_SUCCESS)
        return rc;
    struct vs_sim_device *d = ctx->device;
    pthread_mutex_lock(&vs_sim_mem_lock);
    *free_bytes = vs_sim_device_free(d);
    pthread_mutex_unlock(&vs_sim_mem_lock);
    *total_bytes = d->total;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuMemGetInfo_v2(size_t *free, size_t *total)
{
    VS_SIM_ENTER("cuMemGetInfo_v2");
    VS_SIM_REQUIRE_INIT();
    if (!free || !total)
        return CUDA_ERROR_INVALID_VALUE;
    return get_info(free, total);
}

CUresult CUDAAPI cuMemGetInfo(unsigned int *free, unsigned int *total)
{
    VS_SIM_ENTER("cuMemGetInfo");
    VS_SIM_REQUIRE_INIT();
    if (!free || !total)
        return CUDA_ERROR_INVALID_VALUE;
    size_t f, t;
    CUresult rc = get_info(&f, &t);
    if (rc == CUDA_SUCCESS) {
        *free = f > UINT_MAX ? UINT_MAX : (unsigned int)f;
        *total = t > UINT_MAX ? UINT_MAX : (unsigned int)t;
    }
    return rc;
}

CUresult vs_sim_address_range(uintptr_t ptr, uintptr_t *base, size_t *size)
{
    struct vs_sim_alloc *a = vs_sim_alloc_find(ptr);
    if (a) {
        if (a->cached || ptr - a->range.base >= a->size)
            return CUDA_ERROR_NOT_FOUND;
        *base = a->range.base;
        *size = a->size;
        return CUDA_SUCCESS;
    }
    struct vs_sim_reservation *res = vs_sim_reservation_find(ptr);
    if (res && res->owner == VS_SIM_OWNER_ALLOC)
        return CUDA_ERROR_NOT_FOUND; /* free space of a chunk */
    struct vs_sim_mapping *m = vs_sim_mapping_find(ptr);
    if (!m)
        return CUDA_ERROR_NOT_FOUND;
    *base = m->range.base;
    *size = m->range.size;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuMemGetAddressRange_v2(CUdeviceptr *pbase, size_t *psize, CUdeviceptr dptr)
{
    VS_SIM_ENTER("cuMemGetAddressRange_v2");
    VS_SIM_REQUIRE_INIT();
    uintptr_t base;
    size_t size;
    pthread_mutex_lock(&vs_sim_mem_lock);
    CUresult rc = vs_sim_address_range((uintptr_t)dptr, &base, &size);
    pthread_mutex_unlock(&vs_sim_mem_lock);
    if (rc != CUDA_SUCCESS)
        return rc;
    if (pbase)
        *pbase = (CUdeviceptr)base;
    if (psize)
        *psize = size;
    return CUDA_SUCCESS;
}
