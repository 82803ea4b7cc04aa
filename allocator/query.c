/* What the arena answers about its pointers: ownership, address ranges, pointer attributes,
 * per-block metadata (stage, tag), ids.
 *
 * Invariant: an address answers as allocated exactly when it lies inside the requested bytes of
 * a LIVE large block or a live small object; everything else in the arena's VA is "not found",
 * as freed cuMemAlloc memory is for the driver.
 */
#include <string.h>

#include "allocator/internal.h"

/* Unique for the life of the process without a shared counter: thread number in the high bits,
 * the thread's count below. */
uint64_t vs_new_id(void)
{
    static _Atomic uint64_t threads;
    /* Initial-exec: read on every allocation (see streams.c's vs_stream_last). */
    static _Thread_local uint64_t last __attribute__((tls_model("initial-exec")));
    if (!last)
        last = (atomic_fetch_add(&threads, 1) + 1) << 40;
    return ++last;
}

bool vs_live_info(struct vs_arena *a, CUdeviceptr p, struct vs_block_info *info, uint64_t *id)
{
    struct vs_page *pg = vs_small_page_of(a, p);
    if (pg) {
        size_t idx = vs_small_containing(pg, p);
        if (idx >= pg->nobj)
            return false;
        struct vs_small_meta *m = &pg->meta[idx];
        size_t req = atomic_load_explicit(&m->req, memory_order_acquire);
        CUdeviceptr base = pg->base + idx * pg->objsize;
        if (!req || p - base >= req)
            return false;
        *info = (struct vs_block_info){base, req, m->stage, m->tag, m->stream};
        *id = m->id;
        return true;
    }
    if (!vs_va_find(a, p))
        return false;
    pthread_mutex_lock(&a->mu);
    struct vs_block *b = vs_large_find(a, p);
    bool live = b && b->state == VS_LIVE && p - b->start < b->req;
    if (live) {
        *info = (struct vs_block_info){b->start, b->req, b->stage, b->tag, b->stream};
        *id = b->id;
    }
    pthread_mutex_unlock(&a->mu);
    return live;
}

bool vs_arena_owns(const struct vs_arena *a, CUdeviceptr dptr)
{
    return vs_va_find(a, dptr) != NULL;
}

bool vs_arena_is_block(struct vs_arena *a, CUdeviceptr dptr)
{
    struct vs_block_info info;
    uint64_t id;
    return vs_live_info(a, dptr, &info, &id) && info.base == dptr;
}

CUresult vs_arena_block_info(struct vs_arena *a, CUdeviceptr dptr, struct vs_block_info *info)
{
    uint64_t id;
    return vs_live_info(a, dptr, info, &id) ? CUDA_SUCCESS : CUDA_ERROR_NOT_FOUND;
}

CUresult vs_arena_address_range(struct vs_arena *a, CUdeviceptr dptr, CUdeviceptr *base,
                                size_t *size)
{
    struct vs_block_info info;
    uint64_t id;
    if (!vs_live_info(a, dptr, &info, &id))
        return CUDA_ERROR_NOT_FOUND;
    if (base)
        *base = info.base;
    if (size)
        *size = info.size;
    return CUDA_SUCCESS;
}

/* Answers attr for a live block; false when the driver's own answer is right. */
static bool answer(const struct vs_arena *a, CUpointer_attribute attr, CUdeviceptr p,
                   const struct vs_block_info *info, uint64_t id, void *data)
{
    switch (attr) {
    case CU_POINTER_ATTRIBUTE_CONTEXT:
        *(CUcontext *)data = a->ctx;
        return true;
    case CU_POINTER_ATTRIBUTE_MEMORY_TYPE:
        *(unsigned int *)data = CU_MEMORYTYPE_DEVICE;
        return true;
    case CU_POINTER_ATTRIBUTE_DEVICE_POINTER:
        *(CUdeviceptr *)data = p;
        return true;
    case CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL:
        *(int *)data = a->ordinal;
        return true;
    case CU_POINTER_ATTRIBUTE_BUFFER_ID:
    case CU_POINTER_ATTRIBUTE_MEMORY_BLOCK_ID:
        *(unsigned long long *)data = id;
        return true;
    case CU_POINTER_ATTRIBUTE_RANGE_START_ADDR:
    case CU_POINTER_ATTRIBUTE_MAPPING_BASE_ADDR:
        *(CUdeviceptr *)data = info->base;
        return true;
    case CU_POINTER_ATTRIBUTE_RANGE_SIZE:
    case CU_POINTER_ATTRIBUTE_MAPPING_SIZE:
        *(size_t *)data = info->size;
        return true;
    default:
        return false;
    }
}

CUresult vs_arena_pointer_attribute(struct vs_arena *a, CUpointer_attribute attr, CUdeviceptr dptr,
                                    void *data)
{
    struct vs_block_info info;
    uint64_t id;
    if (!data)
        return CUDA_ERROR_INVALID_VALUE;
    if (!vs_live_info(a, dptr, &info, &id))
        return CUDA_ERROR_INVALID_VALUE;
    if (answer(a, attr, dptr, &info, id, data))
        return CUDA_SUCCESS;
    return a->drv->cuPointerGetAttribute(data, attr, dptr);
}

CUresult vs_arena_pointer_attributes(struct vs_arena *a, unsigned n, CUpointer_attribute *attrs,
                                     void **data, CUdeviceptr dptr)
{
    struct vs_block_info info;
    uint64_t id;
    if (!attrs || !data)
        return CUDA_ERROR_INVALID_VALUE;
    if (!vs_live_info(a, dptr, &info, &id))
        return a->drv->cuPointerGetAttributes(n, attrs, data, dptr);
    for (unsigned i = 0; i < n; i++) {
        if (answer(a, attrs[i], dptr, &info, id, data[i]))
            continue;
        CUresult err = a->drv->cuPointerGetAttribute(data[i], attrs[i], dptr);
        if (err != CUDA_SUCCESS)
            return err;
    }
    return CUDA_SUCCESS;
}

CUresult vs_arena_set_tag(struct vs_arena *a, CUdeviceptr dptr, uint32_t tag)
{
    struct vs_page *pg = vs_small_page_of(a, dptr);
    if (pg) {
        long idx = vs_small_index(pg, dptr);
        if (idx < 0 || !atomic_load(&pg->meta[idx].req))
            return CUDA_ERROR_INVALID_VALUE;
        atomic_store_explicit(&pg->meta[idx].tag, tag, memory_order_release);
        return CUDA_SUCCESS;
    }
    if (!vs_va_find(a, dptr))
        return CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&a->mu);
    struct vs_block *b = vs_large_find(a, dptr);
    bool live = b && b->state == VS_LIVE && b->start == dptr;
    if (live)
        b->tag = tag;
    pthread_mutex_unlock(&a->mu);
    return live ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

void vs_arena_stage_seen(struct vs_arena *a, uint32_t stage)
{
    pthread_mutex_lock(&a->mu);
    vs_stage_seen(a, stage);
    pthread_mutex_unlock(&a->mu);
}

void vs_arena_set_stage(struct vs_arena *a, uint32_t stage)
{
    pthread_mutex_lock(&a->mu);
    vs_stage_seen(a, stage);
    vs_arenas_set_stage(stage);
    pthread_mutex_unlock(&a->mu);
}
