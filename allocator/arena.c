/* Public entry points of the arena: creation, the allocation families and frees.
 *
 * Paths, cheapest first:
 *  - async alloc on S: an object of the size class freed on S (stream order makes it safe);
 *  - any alloc: an idle object of the class (one class lock);
 *  - slow path (arena.mu): reclaim by pressure level, new page or large block, OOM report.
 * Invariants: a pointer handed out is a live block until freed; a block freed is never handed
 * out again until it is safe for the receiving stream (streams.c); live accounting changes
 * exactly once per successful alloc and free.
 */
#include <stdlib.h>
#include <string.h>

#include "allocator/internal.h"

static _Atomic uint64_t arena_gens;

static size_t round_up(size_t n, size_t to)
{
    return (n + to - 1) / to * to;
}

CUresult vs_arena_create(const struct vs_driver *drv, CUdevice dev, CUcontext ctx,
                         const struct vs_arena_options *opt, struct vs_arena **out)
{
    if (!drv || !opt || !out)
        return CUDA_ERROR_INVALID_VALUE;
#define VS_NEED(name, type, arena)                                                    \
    if (arena == 1 && !drv->name) {                                                   \
        vs_log(VS_LOG_WARN, "arena: the driver lacks " #name "; serving memory from the driver"); \
        return CUDA_ERROR_NOT_SUPPORTED;                                              \
    }
    VS_DRIVER_FUNCS(VS_NEED)
#undef VS_NEED
    struct vs_arena *a = aligned_alloc(64, round_up(sizeof *a, 64));
    if (!a)
        return CUDA_ERROR_OUT_OF_MEMORY;
    memset(a, 0, sizeof *a);
    a->drv = drv;
    a->gen = atomic_fetch_add(&arena_gens, 1) + 1;
    a->dev = dev;
    a->ordinal = (int)dev;
    a->ctx = ctx;
    a->opt = *opt;
    a->prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
    a->prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    a->prop.location.id = (int)dev;
    a->access.location = a->prop.location;
    a->access.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
    pthread_mutex_init(&a->mu, NULL);
    pthread_mutex_init(&a->streams_mu, NULL);
    pthread_mutex_init(&a->sync_mu, NULL);
    pthread_mutex_init(&a->ev_mu, NULL);
    pthread_mutex_init(&a->park_mu, NULL);
    pthread_mutex_init(&a->group_mu, NULL);
    a->ngroups = 1;
    for (unsigned c = 0; c < VS_NBUCKETS; c++)
        pthread_mutex_init(&a->classes[c].mu, NULL);

    CUcontext saved;
    bool sw = vs_ctx_enter(a, &saved);
    CUresult err = drv->cuMemGetAllocationGranularity(&a->gran, &a->prop,
                                                      CU_MEM_ALLOC_GRANULARITY_MINIMUM);
    if (err == CUDA_SUCCESS)
        err = drv->cuDeviceTotalMem_v2(&a->total, dev);
    /* Pages hold the largest class; offsets inside a page stay below 2^21 (vs_small_index). */
    if (err == CUDA_SUCCESS &&
        (a->gran < VS_SMALL_MAX || a->gran > ((size_t)2 << 20) || (a->gran & (a->gran - 1))))
        err = CUDA_ERROR_NOT_SUPPORTED;
    a->gran_shift = err == CUDA_SUCCESS ? (unsigned)__builtin_ctzll(a->gran) : 0;
    if (err == CUDA_SUCCESS) {
        pthread_mutex_lock(&a->mu);
        err = vs_va_grow(a, a->gran);
        pthread_mutex_unlock(&a->mu);
    }
    vs_ctx_leave(a, sw, saved);
    if (err != CUDA_SUCCESS) {
        vs_log(VS_LOG_WARN,
               "arena: cannot set up device %d (error %d); serving memory from the driver",
               a->ordinal, err);
        vs_arena_destroy(a);
        return err;
    }
    vs_tcache_arena_born(a);
    *out = a;
    return CUDA_SUCCESS;
}

void vs_arena_destroy(struct vs_arena *a)
{
    if (!a)
        return;
    vs_tcache_arena_dies(a);
    CUcontext saved;
    bool sw = vs_ctx_enter(a, &saved);
    if (a->res)
        a->drv->cuCtxSynchronize();
    vs_streams_destroy(a);
    vs_granules_release_all(a);
    vs_evict_release(a);
    vs_va_release_all(a);
    vs_segments_free_all(a);
    vs_ctx_leave(a, sw, saved);
    for (unsigned c = 0; c < VS_NBUCKETS; c++) {
        vs_vec_free(&a->classes[c].idle);
        pthread_mutex_destroy(&a->classes[c].mu);
    }
    vs_vec_free(&a->cached);
    vs_vec_free(&a->sync_small);
    vs_vec_free(&a->sync_large);
    vs_vec_free(&a->stage_order);
    vs_vec_free(&a->parked);
    pthread_mutex_destroy(&a->mu);
    pthread_mutex_destroy(&a->streams_mu);
    pthread_mutex_destroy(&a->sync_mu);
    pthread_mutex_destroy(&a->ev_mu);
    pthread_mutex_destroy(&a->park_mu);
    pthread_mutex_destroy(&a->group_mu);
    free(a);
}

/* --- slow path: the pressure ladder ------------------------------------------------------------ */

struct request {
    size_t size;              /* rounded */
    int bucket;               /* small: size class and group (vs_bucket); -1: large */
    struct vs_stream *st;     /* stream of an async request, or NULL */
    size_t req;               /* what the application asked for */
    CUstream s;               /* stream of an async request, or 0 */
    uint32_t tag;
    struct vs_block *block;   /* large: the result */
};

/* Makes b the request's live block (arena.mu held). In the same critical section as b leaves
 * the idle or pending blocks: a move (which holds arena.mu) must never see b live with another
 * owner's metadata, or not live at all (req 0): it would move b's granules as if b were not
 * there or were selected, and b's new owner would write it in host memory. */
static void make_live(struct vs_arena *a, const struct request *rq, struct vs_block *b)
{
    a->large_allocs++;
    b->state = VS_LIVE;
    b->req = rq->req;
    b->stage = vs_arenas_stage();
    b->tag = rq->tag;
    b->stream = rq->s;
    b->id = vs_new_id();
}

/* One attempt (arena.mu held): a small request succeeds once its class has an idle object. */
static CUresult attempt(struct vs_arena *a, struct request *rq, bool may_create)
{
    if (rq->bucket < 0) {
        CUresult err;
        rq->block = vs_large_alloc(a, rq->size, 0, may_create, rq->st, &err);
        if (!rq->block)
            return err;
        make_live(a, rq, rq->block);
        return CUDA_SUCCESS;
    }
    struct vs_class *c = &a->classes[rq->bucket];
    pthread_mutex_lock(&c->mu);
    size_t n = c->idle.n;
    pthread_mutex_unlock(&c->mu);
    return n ? CUDA_SUCCESS : vs_small_refill(a, (unsigned)rq->bucket, may_create);
}

static size_t sync_bytes(struct vs_arena *a)
{
    pthread_mutex_lock(&a->sync_mu);
    size_t n = a->sync_bytes;
    pthread_mutex_unlock(&a->sync_mu);
    return n;
}

/* Reuse before growth: completed frees, then frees on other streams that an event just recorded
 * may cover, then (only when synchronously freed memory could serve it) a device sync; then new
 * granules; then, out of memory, wait for every freed block and give empty pages back to the
 * large blocks; then demote what the current stage's policy allows (evict.h); then report. */
static CUresult slow_path(struct vs_arena *a, struct request *rq)
{
    pthread_mutex_lock(&a->mu);
    CUcontext saved;
    bool sw = vs_ctx_enter(a, &saved);
    if (a->host_idle)
        vs_granules_sweep_host(a);
    vs_reclaim(a, VS_RECLAIM_POLL);
    CUresult err = attempt(a, rq, false);
    if (err == CUDA_ERROR_OUT_OF_MEMORY && vs_pending_total(a)) {
        vs_reclaim(a, VS_RECLAIM_RECORD);
        err = attempt(a, rq, false);
    }
    if (err == CUDA_ERROR_OUT_OF_MEMORY && sync_bytes(a) >= rq->size &&
        vs_reclaim(a, VS_RECLAIM_SYNC))
        err = attempt(a, rq, false);
    if (err == CUDA_ERROR_OUT_OF_MEMORY && vs_small_release_empty_pages(a, false))
        err = attempt(a, rq, false);
    if (err == CUDA_ERROR_OUT_OF_MEMORY)
        err = attempt(a, rq, true);
    if (err == CUDA_ERROR_OUT_OF_MEMORY) {
        vs_reclaim(a, VS_RECLAIM_RECORD);
        vs_reclaim(a, VS_RECLAIM_SYNC);
        vs_small_release_empty_pages(a, true);
        err = attempt(a, rq, true);
    }
    if (err == CUDA_ERROR_OUT_OF_MEMORY && vs_evict_pressure(a, rq->size))
        err = attempt(a, rq, true);
    if (err == CUDA_ERROR_OUT_OF_MEMORY) {
        atomic_fetch_add(&a->ooms, 1);
        vs_oom_report(a, rq->req);
    }
    vs_ctx_leave(a, sw, saved);
    pthread_mutex_unlock(&a->mu);
    return err;
}

/* --- allocation ------------------------------------------------------------------------------- */

static bool pop_idle(struct vs_class *c, CUdeviceptr *p)
{
    pthread_mutex_lock(&c->mu);
    bool got = c->idle.n > 0;
    if (got) {
        *p = c->idle.v[--c->idle.n];
        c->allocs++;
    }
    pthread_mutex_unlock(&c->mu);
    return got;
}

/* A free object of the class: one reusable on st first (st: NULL for any stream); *origin gets
 * the stream it was reusable on (NULL: any). The thread cache was tried before. */
static CUresult take_small(struct vs_arena *a, struct request *rq, CUdeviceptr *p,
                           struct vs_stream **origin)
{
    struct vs_stream *st = rq->st;
    *origin = st;
    if (st && vs_stream_take_small(st, (unsigned)rq->bucket, p))
        return CUDA_SUCCESS;
    *origin = NULL;
    while (!pop_idle(&a->classes[rq->bucket], p)) {
        CUresult err = slow_path(a, rq);
        if (err != CUDA_SUCCESS)
            return err;
    }
    return CUDA_SUCCESS;
}

static CUresult alloc_small(struct vs_arena *a, struct request *rq, CUdeviceptr *dptr)
{
    CUdeviceptr p;
    struct vs_stream *origin;
    do {
        CUresult err = take_small(a, rq, &p, &origin);
        if (err != CUDA_SUCCESS)
            return err;
    } while (!vs_small_hand_out(a, vs_small_page_of(a, p), p, rq->req, rq->s, origin,
                                rq->tag)); /* parked: in a moving or host slot */
    *dptr = p;
    return CUDA_SUCCESS;
}

static CUresult alloc_large(struct vs_arena *a, struct request *rq, CUdeviceptr *dptr)
{
    struct vs_block *b = NULL;
    if (rq->st) {
        pthread_mutex_lock(&a->mu);
        b = vs_stream_take_large(a, rq->st, rq->size);
        if (b)
            make_live(a, rq, b);
        pthread_mutex_unlock(&a->mu);
    }
    if (!b) {
        CUresult err = slow_path(a, rq);
        if (err != CUDA_SUCCESS)
            return err;
        b = rq->block;
    }
    *dptr = b->start;
    return CUDA_SUCCESS;
}

/* Every request but the cached pair's. Out of line: the cached pair saves no registers for it. */
static __attribute__((noinline)) CUresult alloc_listed(struct vs_arena *a, size_t size, bool async,
                                                       CUstream s, uint32_t tag, int cls,
                                                       CUdeviceptr *dptr)
{
    unsigned group = cls < 0 ? 0 : vs_small_group(a, vs_arenas_stage(), tag);
    if (async && cls >= 0 && vs_tcache_alloc(a, s, (unsigned)cls, group, size, tag, dptr))
        return CUDA_SUCCESS; /* accounted there */
    int bucket = cls < 0 ? -1 : (int)vs_bucket((unsigned)cls, group);
    struct request rq = {
        .size = round_up(size, VS_ALIGN),
        .bucket = bucket,
        .st = async ? vs_stream_get(a, s) : NULL,
        .req = size,
        .s = async ? s : 0,
        .tag = tag};
    CUresult err = rq.bucket >= 0 ? alloc_small(a, &rq, dptr) : alloc_large(a, &rq, dptr);
    if (err == CUDA_SUCCESS)
        vs_account_alloc(a, size);
    return err;
}

/* The cached pair's path calls nothing (every way out of it is a tail call), so it saves no
 * registers for the general path's calls (docs/arena.md). */
static inline __attribute__((always_inline)) CUresult alloc_common(struct vs_arena *a, size_t size,
                                                                   bool async, CUstream s,
                                                                   uint32_t tag, CUdeviceptr *dptr)
{
    if (!a || !dptr || !size || size > SIZE_MAX / 2)
        return CUDA_ERROR_INVALID_VALUE;
    int cls = vs_small_class(size);
    int group = cls < 0 ? -1 : vs_small_group_known(a, vs_arenas_stage(), tag);
    if (async && group >= 0 &&
        vs_tcache_take(a, s, (unsigned)cls, (unsigned)group, size, tag, dptr))
        return CUDA_SUCCESS; /* accounted there */
    return alloc_listed(a, size, async, s, tag, cls, dptr);
}

CUresult vs_arena_alloc(struct vs_arena *a, size_t size, CUdeviceptr *dptr)
{
    return alloc_common(a, size, false, 0, 0, dptr);
}

CUresult vs_arena_alloc_async(struct vs_arena *a, size_t size, CUstream stream, CUdeviceptr *dptr)
{
    return alloc_common(a, size, true, stream, 0, dptr);
}

CUresult vs_arena_alloc_pitch(struct vs_arena *a, size_t width, size_t height, unsigned elem,
                              CUdeviceptr *dptr, size_t *pitch)
{
    struct vs_arena_alloc_req rq = {.size = width, .height = height, .elem = elem};
    return pitch ? vs_arena_alloc_req(a, &rq, dptr, pitch) : CUDA_ERROR_INVALID_VALUE;
}

CUresult vs_arena_alloc_req(struct vs_arena *a, const struct vs_arena_alloc_req *rq,
                            CUdeviceptr *dptr, size_t *pitch)
{
    if (!pitch)
        return alloc_common(a, rq->size, rq->async, rq->stream, rq->tag, dptr);
    if (!rq->size || !rq->height || (rq->elem != 4 && rq->elem != 8 && rq->elem != 16))
        return CUDA_ERROR_INVALID_VALUE;
    size_t p = round_up(rq->size, VS_ALIGN);
    if (rq->height > SIZE_MAX / p)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult err = alloc_common(a, p * rq->height, false, 0, rq->tag, dptr);
    if (err == CUDA_SUCCESS)
        *pitch = p;
    return err;
}

/* --- free ------------------------------------------------------------------------------------- */

static CUresult bad_free(struct vs_arena *a, CUdeviceptr p)
{
    if (!atomic_flag_test_and_set(&a->bad_free_logged))
        vs_log(VS_LOG_WARN,
               "free of 0x%llx, which is not a live allocation of device %d "
               "(CUDA_ERROR_INVALID_VALUE; further ones are not logged)",
               (unsigned long long)p, a->ordinal);
    return CUDA_ERROR_INVALID_VALUE;
}

/* Over the cache limit, make what can be made idle idle and give granules back. */
static void trim_to_cache_limit(struct vs_arena *a)
{
    size_t limit = a->opt.cache_max;
    pthread_mutex_lock(&a->mu);
    if (vs_pending_total(a) + vs_granules_free_bytes(a) > limit) {
        vs_reclaim(a, VS_RECLAIM_RECORD);
        if (sync_bytes(a) && vs_pending_total(a) + vs_granules_free_bytes(a) > limit)
            vs_reclaim(a, VS_RECLAIM_SYNC);
        vs_small_release_empty_pages(a, true);
        vs_granules_trim(a, limit);
    }
    pthread_mutex_unlock(&a->mu);
}

/* Checked inline: every free makes the check, and there is usually no limit. */
static inline void enforce_cache_limit(struct vs_arena *a)
{
    if (a->opt.cache_max != SIZE_MAX)
        trim_to_cache_limit(a);
}

/* Queues a freed block (small: its address, large: the block) on st, or on the sync list. */
static void queue_freed(struct vs_arena *a, struct vs_stream *st, int bucket, uintptr_t item,
                        size_t bytes)
{
    if (st && vs_stream_put(a, st, bucket, item, bytes))
        return;
    pthread_mutex_lock(&a->sync_mu);
    if (vs_vec_push(bucket >= 0 ? &a->sync_small : &a->sync_large, item) == 0) {
        a->sync_bytes += bytes;
        a->sync_frees++;
        atomic_fetch_add_explicit(&a->pending, bytes, memory_order_relaxed);
    } else
        vs_log(VS_LOG_WARN, "arena: out of host memory; a freed block is lost to the arena");
    pthread_mutex_unlock(&a->sync_mu);
}

/* A free of p, not a small object. Out of line: the cached pair saves no registers for it. */
static __attribute__((noinline)) CUresult free_large(struct vs_arena *a, CUdeviceptr p, bool async,
                                                     CUstream s, size_t *bytes)
{
    if (!vs_va_find(a, p))
        return bad_free(a, p);
    struct vs_stream *st = async ? vs_stream_get(a, s) : NULL;
    pthread_mutex_lock(&a->mu);
    struct vs_block *b = vs_large_find(a, p);
    bool live = b && b->state == VS_LIVE && b->start == p;
    if (live) {
        b->state = VS_PENDING;
        vs_account_free(a, b->req);
        *bytes = b->req;
        queue_freed(a, st, -1, (uintptr_t)b, b->size);
    }
    pthread_mutex_unlock(&a->mu);
    if (!live)
        return bad_free(a, p);
    enforce_cache_limit(a);
    return CUDA_SUCCESS;
}

/* The small object p of page pg (req bytes) was just made not live: caches or lists it. */
static __attribute__((noinline)) CUresult free_small(struct vs_arena *a, struct vs_page *pg,
                                                     CUdeviceptr p, size_t req, bool async,
                                                     CUstream s)
{
    if (!async || !vs_tcache_free(a, s, pg, p, req)) {
        vs_account_free(a, req);
        queue_freed(a, async ? vs_stream_get(a, s) : NULL, (int)pg->bucket, p, pg->objsize);
    }
    enforce_cache_limit(a);
    return CUDA_SUCCESS;
}

/* As alloc_common: the cached pair's path calls nothing. */
static inline __attribute__((always_inline)) CUresult free_common(struct vs_arena *a, CUdeviceptr p,
                                                                  bool async, CUstream s,
                                                                  size_t *bytes)
{
    *bytes = 0;
    if (!a)
        return CUDA_ERROR_INVALID_VALUE;
    struct vs_page *pg = vs_small_page_of(a, p);
    if (!pg)
        return free_large(a, p, async, s, bytes);
    long idx = vs_small_index(pg, p);
    if (idx < 0)
        return bad_free(a, p);
    size_t req = atomic_exchange(&pg->meta[idx].req, 0);
    if (!req)
        return bad_free(a, p);
    *bytes = req;
    if (!async || a->opt.cache_max != SIZE_MAX || !vs_tcache_cache(a, s, pg, p, req))
        return free_small(a, pg, p, req, async, s);
    return CUDA_SUCCESS;
}

CUresult vs_arena_free(struct vs_arena *a, CUdeviceptr dptr)
{
    size_t bytes;
    return free_common(a, dptr, false, 0, &bytes);
}

CUresult vs_arena_free_async(struct vs_arena *a, CUdeviceptr dptr, CUstream stream)
{
    size_t bytes;
    return free_common(a, dptr, true, stream, &bytes);
}

CUresult vs_arena_free_req(struct vs_arena *a, CUdeviceptr dptr, bool async, CUstream stream,
                           size_t *bytes)
{
    return free_common(a, dptr, async, stream, bytes);
}

/* --- events from the application --------------------------------------------------------------- */

void vs_arena_device_synchronized(struct vs_arena *a)
{
    pthread_mutex_lock(&a->mu);
    vs_streams_all_idle(a);
    pthread_mutex_unlock(&a->mu);
    enforce_cache_limit(a);
}

void vs_arena_stream_destroyed(struct vs_arena *a, CUstream stream)
{
    struct vs_stream *st = vs_stream_get(a, stream);
    if (!st || st->per_thread)
        return;
    vs_tcache_flush(a, st);
    vs_stream_record(a, st);
    vs_stream_retire(a, st);
}

void vs_arena_trim(struct vs_arena *a, size_t keep)
{
    pthread_mutex_lock(&a->mu);
    vs_reclaim(a, VS_RECLAIM_POLL);
    vs_small_release_empty_pages(a, true);
    vs_granules_trim(a, keep);
    pthread_mutex_unlock(&a->mu);
}
