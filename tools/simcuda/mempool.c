/* simcuda memory pools: the default pool per device, cuMemPoolCreate pools, stream-ordered
 * cuMemAllocAsync / cuMemFreeAsync and the pool attributes.
 *
 * Allocation model: a pool reserves physical memory in chunks (chunk.c) and carves its blocks out
 * of them, 512-byte aligned, best fit, so small allocations share memory and freed space coalesces
 * with free neighbours. A request no free gap can hold maps a new chunk of its size rounded up to
 * the 2 MiB granule, whose remainder serves later requests. Empty chunks stay reserved (cached)
 * until trimmed. This follows what is observable of the driver: reserved memory grows in 2 MiB
 * steps, small allocations do not cost 2 MiB each, and pools fragment.
 *
 * Invariants (all pool fields guarded by vs_sim_mem_lock):
 * - reserved (RESERVED_MEM_*) = sum of the pool's chunk sizes; used (USED_MEM_*) = sum of the
 *   spans (512-byte-rounded sizes) of live blocks. Reserved memory counts as device memory in use.
 * - cuMemFreeAsync keeps the block in place, tagged with the freeing stream (pool->cached list):
 *   only that stream may reuse it until the free is reached in stream order; then the block is
 *   removed and its space becomes free for every stream. A free without a stream (cuMemFree_v2)
 *   removes it at once.
 * - Trimming (release threshold at synchronisation, cuMemPoolTrimTo, maxSize, or before reporting
 *   out of memory) releases only chunks without blocks.
 * - Pools are never freed (a destroyed one is marked), so a stale handle is answered, not crashed.
 */
#include "sim.h"

#include <stdlib.h>
#include <string.h>

static struct vs_sim_pool *pools;
static unsigned long long next_ticket = 1;

static struct vs_sim_pool *pool_new(struct vs_sim_device *dev, const CUmemPoolProps *props)
{
    struct vs_sim_pool *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->device = dev;
    p->props = *props;
    p->reuse_follow_event = p->reuse_opportunistic = p->reuse_internal = 1;
    p->heap.keep_empty = true;
    pthread_mutex_lock(&vs_sim_mem_lock);
    p->next = pools;
    pools = p;
    pthread_mutex_unlock(&vs_sim_mem_lock);
    return p;
}

struct vs_sim_pool *vs_sim_pool_create_default(struct vs_sim_device *dev)
{
    CUmemPoolProps props = {.allocType = CU_MEM_ALLOCATION_TYPE_PINNED,
                            .location = {CU_MEM_LOCATION_TYPE_DEVICE, dev->ordinal}};
    struct vs_sim_pool *p = pool_new(dev, &props);
    if (p)
        p->is_default = true;
    return p;
}

static struct vs_sim_pool *pool_lookup(CUmemoryPool handle)
{
    for (struct vs_sim_pool *p = pools; p; p = p->next)
        if (p == (struct vs_sim_pool *)handle)
            return p->destroyed ? NULL : p;
    return NULL;
}

static void cache_unlink(struct vs_sim_alloc *a)
{
    if (a->pool_prev)
        a->pool_prev->pool_next = a->pool_next;
    else
        a->pool->cached = a->pool_next;
    if (a->pool_next)
        a->pool_next->pool_prev = a->pool_prev;
    a->pool_next = a->pool_prev = NULL;
    a->cached = false;
}

/* Puts a freed block on its pool's list of pending frees, tagged with the freeing stream. */
static void tag_pending(struct vs_sim_alloc *a, unsigned long long stream_id,
                        unsigned long long ticket)
{
    struct vs_sim_pool *p = a->pool;
    a->cached = true;
    a->free_stream = stream_id;
    a->free_ticket = ticket;
    a->pool_prev = NULL;
    a->pool_next = p->cached;
    if (p->cached)
        p->cached->pool_prev = a;
    p->cached = a;
}

void vs_sim_pool_give_back(struct vs_sim_alloc *a, unsigned long long stream_id)
{
    a->pool->used -= a->range.size;
    if (stream_id)
        tag_pending(a, stream_id, next_ticket++);
    else
        vs_sim_block_free(a);
}

static void trim(struct vs_sim_pool *p, size_t keep)
{
    vs_sim_heap_trim(&p->heap, keep);
}

void vs_sim_pools_fork_child(void)
{
    for (struct vs_sim_pool *p = pools; p; p = p->next) {
        while (p->cached) {
            struct vs_sim_alloc *a = p->cached;
            cache_unlink(a);
            vs_sim_block_free(a);
        }
        vs_sim_heap_fork_child(&p->heap);
    }
}

void vs_sim_pools_trim_to_threshold(void)
{
    pthread_mutex_lock(&vs_sim_mem_lock);
    for (struct vs_sim_pool *p = pools; p; p = p->next)
        trim(p, p->release_threshold > SIZE_MAX ? SIZE_MAX : (size_t)p->release_threshold);
    pthread_mutex_unlock(&vs_sim_mem_lock);
}

/* Whether a new chunk of size fits the pool's maxSize, trimming empty chunks to make room. */
static bool fits_max_size(struct vs_sim_pool *p, size_t size)
{
    size_t max = p->props.maxSize;
    if (!max || p->heap.reserved + size <= max)
        return true;
    trim(p, max > size ? max - size : 0);
    return p->heap.reserved + size <= max;
}

/* Maps a new chunk for span; cached memory is given back before reporting out of memory, as the
 * driver does. */
static CUresult grow(struct vs_sim_pool *p, size_t span, struct vs_sim_alloc **out)
{
    size_t size = (span + VS_SIM_GRANULE - 1) / VS_SIM_GRANULE * VS_SIM_GRANULE;
    if (!fits_max_size(p, size))
        return CUDA_ERROR_OUT_OF_MEMORY;
    CUresult rc = vs_sim_heap_grow(&p->heap, p->device, span, true, out);
    if (rc == CUDA_ERROR_OUT_OF_MEMORY) {
        size_t before = p->heap.reserved;
        trim(p, 0);
        if (p->heap.reserved < before)
            rc = vs_sim_heap_grow(&p->heap, p->device, span, true, out);
    }
    if (rc == CUDA_SUCCESS && p->heap.reserved > p->reserved_high)
        p->reserved_high = p->heap.reserved;
    return rc;
}

/* The tightest block whose free by stream_id is pending, or NULL: that stream may reuse it at
 * once, its own work being ordered after the free. A larger block is split and the rest stays
 * pending under the same free. Blocks of chunks that serve no new blocks (mapped before a fork)
 * are not reused. */
static struct vs_sim_alloc *reuse(struct vs_sim_pool *p, size_t span, unsigned long long stream_id)
{
    struct vs_sim_alloc *best = NULL;
    for (struct vs_sim_alloc *a = p->cached; a; a = a->pool_next)
        if (a->free_stream == stream_id && a->chunk->shared && a->range.size >= span &&
            (!best || a->range.size < best->range.size))
            best = a;
    if (!best)
        return NULL;
    cache_unlink(best);
    if (best->range.size > span) {
        struct vs_sim_alloc *rest = vs_sim_block_split(best, span);
        if (rest) {
            rest->pool = p;
            tag_pending(rest, stream_id, best->free_ticket);
        }
    }
    return best;
}

static CUresult pool_alloc(struct vs_sim_pool *p, struct vs_sim_stream *s, size_t size,
                           CUdeviceptr *dptr)
{
    if (!dptr || size == 0 || size > SIZE_MAX - VS_SIM_GRANULE)
        return CUDA_ERROR_INVALID_VALUE;
    size_t span = (size + VS_SIM_BLOCK_ALIGN - 1) / VS_SIM_BLOCK_ALIGN * VS_SIM_BLOCK_ALIGN;
    pthread_mutex_lock(&vs_sim_mem_lock);
    CUresult rc = CUDA_SUCCESS;
    struct vs_sim_alloc *a = reuse(p, span, s->id);
    if (!a && !(a = vs_sim_heap_fit(&p->heap, span)))
        rc = grow(p, span, &a);
    if (rc == CUDA_SUCCESS) {
        a->pool = p;
        a->ctx = p->device == s->ctx->device ? s->ctx : p->device->primary;
        a->size = size;
        a->free_stream = 0;
        if ((p->used += a->range.size) > p->used_high)
            p->used_high = p->used;
        *dptr = (CUdeviceptr)a->range.base;
    }
    pthread_mutex_unlock(&vs_sim_mem_lock);
    return rc;
}

static CUresult alloc_async(CUdeviceptr *dptr, size_t size, CUmemoryPool handle, bool from_pool,
                            CUstream stream, bool per_thread)
{
    struct vs_sim_stream *s;
    CUresult rc = vs_sim_stream_get(stream, per_thread, &s);
    if (rc != CUDA_SUCCESS)
        return rc;
    pthread_mutex_lock(&vs_sim_mem_lock);
    struct vs_sim_pool *p = from_pool ? pool_lookup(handle) : s->ctx->device->current_pool;
    pthread_mutex_unlock(&vs_sim_mem_lock);
    rc = p ? pool_alloc(p, s, size, dptr) : CUDA_ERROR_INVALID_VALUE;
    vs_sim_stream_put(s);
    return rc;
}

CUresult CUDAAPI cuMemAllocAsync(CUdeviceptr *dptr, size_t bytesize, CUstream hStream)
{
    VS_SIM_ENTER("cuMemAllocAsync");
    return alloc_async(dptr, bytesize, NULL, false, hStream, false);
}

CUresult CUDAAPI cuMemAllocAsync_ptsz(CUdeviceptr *dptr, size_t bytesize, CUstream hStream)
{
    VS_SIM_ENTER("cuMemAllocAsync_ptsz");
    return alloc_async(dptr, bytesize, NULL, false, hStream, true);
}

CUresult CUDAAPI cuMemAllocFromPoolAsync(CUdeviceptr *dptr, size_t bytesize, CUmemoryPool pool,
                                         CUstream hStream)
{
    VS_SIM_ENTER("cuMemAllocFromPoolAsync");
    return alloc_async(dptr, bytesize, pool, true, hStream, false);
}

CUresult CUDAAPI cuMemAllocFromPoolAsync_ptsz(CUdeviceptr *dptr, size_t bytesize, CUmemoryPool pool,
                                              CUstream hStream)
{
    VS_SIM_ENTER("cuMemAllocFromPoolAsync_ptsz");
    return alloc_async(dptr, bytesize, pool, true, hStream, true);
}

/* The free reached in stream order: the space of a pool free's blocks (a reused block may have
 * been split) becomes free for every stream; a cuMemAlloc block, looked up again by address as
 * another thread may have freed it meanwhile, is freed. */
struct pending_free {
    uintptr_t base;            /* cuMemAlloc block */
    struct vs_sim_pool *pool;  /* pool free: its pool (never freed) and ticket */
    unsigned long long ticket;
};

static void run_free(struct vs_sim_op *op)
{
    const struct pending_free *f = op->payload;
    pthread_mutex_lock(&vs_sim_mem_lock);
    if (f->pool) {
        for (struct vs_sim_alloc *a = f->pool->cached, *next; a; a = next) {
            next = a->pool_next;
            if (a->free_ticket == f->ticket) {
                cache_unlink(a);
                vs_sim_block_free(a);
            }
        }
    } else {
        struct vs_sim_alloc *a = vs_sim_alloc_find(f->base);
        if (a && a->range.base == f->base && !a->pool && a->free_ticket == ~0ULL)
            vs_sim_block_free(a);
    }
    pthread_mutex_unlock(&vs_sim_mem_lock);
}

static CUresult free_async(CUdeviceptr dptr, CUstream stream, bool per_thread)
{
    struct vs_sim_stream *s;
    CUresult rc = vs_sim_stream_get(stream, per_thread, &s);
    if (rc != CUDA_SUCCESS)
        return rc;
    struct vs_sim_op *op = vs_sim_op_new(run_free, NULL, sizeof(struct pending_free));
    if (!op) {
        vs_sim_stream_put(s);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    struct pending_free *f = op->payload;
    f->base = (uintptr_t)dptr;
    pthread_mutex_lock(&vs_sim_mem_lock);
    struct vs_sim_alloc *a = vs_sim_alloc_find(f->base);
    if (!a || a->cached || a->range.base != f->base || a->free_ticket == ~0ULL) {
        rc = CUDA_ERROR_INVALID_VALUE;
    } else if (a->pool) {
        vs_sim_pool_give_back(a, s->id);
        f->pool = a->pool;
        f->ticket = a->free_ticket;
    } else {
        a->free_ticket = ~0ULL; /* queued for destruction: a second free is invalid */
    }
    pthread_mutex_unlock(&vs_sim_mem_lock);
    if (rc == CUDA_SUCCESS)
        vs_sim_stream_submit(s, op, false);
    else
        vs_sim_op_release(op);
    vs_sim_stream_put(s);
    return rc;
}

CUresult CUDAAPI cuMemFreeAsync(CUdeviceptr dptr, CUstream hStream)
{
    VS_SIM_ENTER("cuMemFreeAsync");
    return free_async(dptr, hStream, false);
}

CUresult CUDAAPI cuMemFreeAsync_ptsz(CUdeviceptr dptr, CUstream hStream)
{
    VS_SIM_ENTER("cuMemFreeAsync_ptsz");
    return free_async(dptr, hStream, true);
}

/* ---- pool objects and attributes ------------------------------------------------------------- */

CUresult CUDAAPI cuMemPoolCreate(CUmemoryPool *pool, const CUmemPoolProps *props)
{
    VS_SIM_ENTER("cuMemPoolCreate");
    VS_SIM_REQUIRE_INIT();
    if (!pool || !props || props->allocType != CU_MEM_ALLOCATION_TYPE_PINNED ||
        props->location.type != CU_MEM_LOCATION_TYPE_DEVICE)
        return CUDA_ERROR_INVALID_VALUE;
    if (props->handleTypes & ~(CUmemAllocationHandleType)CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR)
        return CUDA_ERROR_NOT_SUPPORTED;
    struct vs_sim_device *d = vs_sim_device(props->location.id);
    if (!d)
        return CUDA_ERROR_INVALID_DEVICE;
    struct vs_sim_pool *p = pool_new(d, props);
    if (!p)
        return CUDA_ERROR_OUT_OF_MEMORY;
    *pool = (CUmemoryPool)p;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuMemPoolDestroy(CUmemoryPool pool)
{
    VS_SIM_ENTER("cuMemPoolDestroy");
    VS_SIM_REQUIRE_INIT();
    pthread_mutex_lock(&vs_sim_mem_lock);
    struct vs_sim_pool *p = pool_lookup(pool);
    CUresult rc = p && !p->is_default ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
    if (rc == CUDA_SUCCESS) {
        trim(p, 0);
        p->destroyed = true;
        if (p->device->current_pool == p)
            p->device->current_pool = p->device->default_pool;
    }
    pthread_mutex_unlock(&vs_sim_mem_lock);
    return rc;
}

CUresult CUDAAPI cuMemPoolTrimTo(CUmemoryPool pool, size_t minBytesToKeep)
{
    VS_SIM_ENTER("cuMemPoolTrimTo");
    VS_SIM_REQUIRE_INIT();
    pthread_mutex_lock(&vs_sim_mem_lock);
    struct vs_sim_pool *p = pool_lookup(pool);
    if (p)
        trim(p, minBytesToKeep);
    pthread_mutex_unlock(&vs_sim_mem_lock);
    return p ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

static CUresult pool_attribute(struct vs_sim_pool *p, CUmemPool_attribute attr, void *value,
                               bool set)
{
    int *flag = NULL;
    size_t *stat = NULL;
    switch (attr) {
    case CU_MEMPOOL_ATTR_REUSE_FOLLOW_EVENT_DEPENDENCIES: flag = &p->reuse_follow_event; break;
    case CU_MEMPOOL_ATTR_REUSE_ALLOW_OPPORTUNISTIC: flag = &p->reuse_opportunistic; break;
    case CU_MEMPOOL_ATTR_REUSE_ALLOW_INTERNAL_DEPENDENCIES: flag = &p->reuse_internal; break;
    case CU_MEMPOOL_ATTR_RELEASE_THRESHOLD:
        if (set)
            p->release_threshold = *(cuuint64_t *)value;
        else
            *(cuuint64_t *)value = p->release_threshold;
        return CUDA_SUCCESS;
    case CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT: stat = &p->heap.reserved; break;
    case CU_MEMPOOL_ATTR_USED_MEM_CURRENT: stat = &p->used; break;
    case CU_MEMPOOL_ATTR_RESERVED_MEM_HIGH:
    case CU_MEMPOOL_ATTR_USED_MEM_HIGH: {
        bool reserved = attr == CU_MEMPOOL_ATTR_RESERVED_MEM_HIGH;
        size_t *high = reserved ? &p->reserved_high : &p->used_high;
        if (!set) {
            *(cuuint64_t *)value = *high;
            return CUDA_SUCCESS;
        }
        if (*(cuuint64_t *)value != 0) /* may only be reset */
            return CUDA_ERROR_INVALID_VALUE;
        *high = reserved ? p->heap.reserved : p->used;
        return CUDA_SUCCESS;
    }
    default:
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (flag) {
        if (set)
            *flag = *(int *)value != 0;
        else
            *(int *)value = *flag;
        return CUDA_SUCCESS;
    }
    if (set)
        return CUDA_ERROR_INVALID_VALUE; /* current figures are read-only */
    *(cuuint64_t *)value = *stat;
    return CUDA_SUCCESS;
}

static CUresult attribute(CUmemoryPool pool, CUmemPool_attribute attr, void *value, bool set)
{
    VS_SIM_REQUIRE_INIT();
    if (!value)
        return CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&vs_sim_mem_lock);
    struct vs_sim_pool *p = pool_lookup(pool);
    CUresult rc = p ? pool_attribute(p, attr, value, set) : CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_unlock(&vs_sim_mem_lock);
    return rc;
}

CUresult CUDAAPI cuMemPoolSetAttribute(CUmemoryPool pool, CUmemPool_attribute attr, void *value)
{
    VS_SIM_ENTER("cuMemPoolSetAttribute");
    return attribute(pool, attr, value, true);
}

CUresult CUDAAPI cuMemPoolGetAttribute(CUmemoryPool pool, CUmemPool_attribute attr, void *value)
{
    VS_SIM_ENTER("cuMemPoolGetAttribute");
    return attribute(pool, attr, value, false);
}

CUresult CUDAAPI cuMemPoolSetAccess(CUmemoryPool pool, const CUmemAccessDesc *map, size_t count)
{
    VS_SIM_ENTER("cuMemPoolSetAccess");
    VS_SIM_REQUIRE_INIT();
    if (!map && count)
        return CUDA_ERROR_INVALID_VALUE;
    for (size_t i = 0; i < count; i++)
        if (map[i].location.type != CU_MEM_LOCATION_TYPE_DEVICE ||
            !vs_sim_device(map[i].location.id))
            return CUDA_ERROR_INVALID_DEVICE;
    pthread_mutex_lock(&vs_sim_mem_lock);
    struct vs_sim_pool *p = pool_lookup(pool);
    pthread_mutex_unlock(&vs_sim_mem_lock);
    return p ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

CUresult CUDAAPI cuMemPoolGetAccess(CUmemAccess_flags *flags, CUmemoryPool pool,
                                    CUmemLocation *location)
{
    VS_SIM_ENTER("cuMemPoolGetAccess");
    VS_SIM_REQUIRE_INIT();
    if (!flags || !location)
        return CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&vs_sim_mem_lock);
    struct vs_sim_pool *p = pool_lookup(pool);
    if (p)
        *flags = location->type == CU_MEM_LOCATION_TYPE_DEVICE && location->id == p->device->ordinal
                     ? CU_MEM_ACCESS_FLAGS_PROT_READWRITE
                     : CU_MEM_ACCESS_FLAGS_PROT_NONE;
    pthread_mutex_unlock(&vs_sim_mem_lock);
    return p ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

CUresult CUDAAPI cuDeviceGetDefaultMemPool(CUmemoryPool *pool_out, CUdevice dev)
{
    VS_SIM_ENTER("cuDeviceGetDefaultMemPool");
    VS_SIM_REQUIRE_INIT();
    if (!pool_out)
        return CUDA_ERROR_INVALID_VALUE;
    struct vs_sim_device *d = vs_sim_device(dev);
    if (!d)
        return CUDA_ERROR_INVALID_DEVICE;
    *pool_out = (CUmemoryPool)d->default_pool;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuDeviceGetMemPool(CUmemoryPool *pool, CUdevice dev)
{
    VS_SIM_ENTER("cuDeviceGetMemPool");
    VS_SIM_REQUIRE_INIT();
    if (!pool)
        return CUDA_ERROR_INVALID_VALUE;
    struct vs_sim_device *d = vs_sim_device(dev);
    if (!d)
        return CUDA_ERROR_INVALID_DEVICE;
    pthread_mutex_lock(&vs_sim_mem_lock);
    *pool = (CUmemoryPool)d->current_pool;
    pthread_mutex_unlock(&vs_sim_mem_lock);
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuDeviceSetMemPool(CUdevice dev, CUmemoryPool pool)
{
    VS_SIM_ENTER("cuDeviceSetMemPool");
    VS_SIM_DEVICE_ENTRY(dev, d);
    pthread_mutex_lock(&vs_sim_mem_lock);
    struct vs_sim_pool *p = pool_lookup(pool);
    bool ok = p && p->device == d;
    if (ok)
        d->current_pool = p;
    pthread_mutex_unlock(&vs_sim_mem_lock);
    return ok ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}
