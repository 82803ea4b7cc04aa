/* simcuda cuMemAlloc family: each allocation reserves its own VA, creates one physical handle of
 * the granule-rounded size on the context's device and maps it read-write.
 *
 * Invariants:
 * - An allocation's reservation is owned by it (VS_SIM_OWNER_ALLOC): cuMemMap/cuMemUnmap/
 *   cuMemAddressFree on it are refused, and pointer lookups find the allocation through it.
 * - The mapping holds the only reference on the physical handle, so unmapping frees it.
 * - cuMemFree_v2 waits for all work of the allocation's context first, as cudaFree does.
 */
#include "sim.h"

#include <limits.h>
#include <stdlib.h>

static size_t round_up(size_t n, size_t to)
{
    return (n + to - 1) / to * to;
}

CUresult vs_sim_alloc_create(struct vs_sim_ctx *ctx, size_t size, struct vs_sim_alloc **out)
{
    if (size == 0 || size > SIZE_MAX - VS_SIM_GRANULE)
        return CUDA_ERROR_INVALID_VALUE;
    size_t span = round_up(size, VS_SIM_GRANULE);
    struct vs_sim_alloc *a = calloc(1, sizeof *a);
    if (!a)
        return CUDA_ERROR_OUT_OF_MEMORY;
    CUmemAllocationProp prop = {.type = CU_MEM_ALLOCATION_TYPE_PINNED,
                                .location = {CU_MEM_LOCATION_TYPE_DEVICE, ctx->device->ordinal}};
    CUmemAccessDesc access = {prop.location, CU_MEM_ACCESS_FLAGS_PROT_READWRITE};
    struct vs_sim_phys *phys = NULL;
    CUresult rc = vs_sim_phys_create(&prop, span, &phys);
    if (rc == CUDA_SUCCESS)
        rc = vs_sim_va_reserve(span, 0, 0, VS_SIM_OWNER_ALLOC, &a->reservation);
    if (rc == CUDA_SUCCESS)
        rc = vs_sim_va_map(a->reservation->range.base, span, 0, phys, &a->mapping);
    if (rc == CUDA_SUCCESS)
        rc = vs_sim_va_set_access(a->reservation->range.base, span, &access, 1);
    if (phys)
        vs_sim_phys_release(phys); /* the mapping keeps it alive */
    if (rc != CUDA_SUCCESS) {
        if (a->mapping)
            vs_sim_va_unmap_range(a->reservation->range.base, span);
        if (a->reservation)
            vs_sim_va_free(a->reservation);
        free(a);
        return rc;
    }
    a->reservation->alloc = a;
    a->ctx = ctx;
    a->size = size;
    a->span = span;
    *out = a;
    return CUDA_SUCCESS;
}

void vs_sim_alloc_destroy(struct vs_sim_alloc *a)
{
    vs_sim_va_unmap_range(a->reservation->range.base, a->span);
    vs_sim_va_free(a->reservation);
    free(a);
}

struct vs_sim_alloc *vs_sim_alloc_find(uintptr_t addr)
{
    struct vs_sim_reservation *res = vs_sim_reservation_find(addr);
    return res && res->owner == VS_SIM_OWNER_ALLOC ? res->alloc : NULL;
}

uintptr_t vs_sim_alloc_base(const struct vs_sim_alloc *a)
{
    return a->reservation->range.base;
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
    pthread_mutex_lock(&vs_sim_mem_lock);
    struct vs_sim_alloc *a;
    rc = vs_sim_alloc_create(ctx, bytesize, &a);
    if (rc == CUDA_SUCCESS)
        *dptr = (CUdeviceptr)vs_sim_alloc_base(a);
    pthread_mutex_unlock(&vs_sim_mem_lock);
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
    pthread_mutex_lock(&vs_sim_mem_lock);
    struct vs_sim_alloc *a;
    rc = vs_sim_alloc_create(ctx, pitch * Height, &a);
    if (rc == CUDA_SUCCESS) {
        *dptr = (CUdeviceptr)vs_sim_alloc_base(a);
        *pPitch = pitch;
    }
    pthread_mutex_unlock(&vs_sim_mem_lock);
    return rc;
}

/* Looks up a live allocation by its base (cached pool blocks are not live). */
static struct vs_sim_alloc *live_at(uintptr_t base)
{
    struct vs_sim_alloc *a = vs_sim_alloc_find(base);
    return a && vs_sim_alloc_base(a) == base && !a->cached ? a : NULL;
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
            vs_sim_alloc_destroy(a);
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
    *free_bytes = vs_sim_backing_free(d->backing, __atomic_load_n(&d->taken, __ATOMIC_RELAXED));
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
        if (a->cached || ptr - vs_sim_alloc_base(a) >= a->size)
            return CUDA_ERROR_NOT_FOUND;
        *base = vs_sim_alloc_base(a);
        *size = a->size;
        return CUDA_SUCCESS;
    }
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
