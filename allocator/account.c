/* Byte accounting: live (requested) bytes and their peak, physical bytes and their peak, and the
 * statistics and cuMemGetInfo answer built from them.
 *
 * Invariants: live is the sum of requested sizes of live blocks plus the thread caches' credit
 * (at most VS_TCACHE_CREDIT per thread, so peak_live may exceed the true peak by that much per
 * thread: threads do not share an atomic counter on the cached path); peak_live >= live at all
 * times; physical is granules * granule size (under arena.mu), peak_physical its maximum.
 */
#include "allocator/internal.h"
#include "allocator/vs_assert.h"

void vs_account_add(struct vs_arena *a, size_t req)
{
    size_t live = atomic_fetch_add_explicit(&a->live, req, memory_order_relaxed) + req;
    size_t peak = atomic_load_explicit(&a->peak_live, memory_order_relaxed);
    while (live > peak && !atomic_compare_exchange_weak_explicit(
                              &a->peak_live, &peak, live, memory_order_relaxed,
                              memory_order_relaxed))
        ;
}

void vs_account_sub(struct vs_arena *a, size_t req)
{
    size_t live = atomic_fetch_sub_explicit(&a->live, req, memory_order_relaxed);
    vs_assert(live >= req, "live bytes %zu below a freed block's %zu", live, req);
}

size_t vs_live_bytes(struct vs_arena *a)
{
    size_t credits = vs_tcache_credits(a);
    return atomic_load(&a->live) - credits;
}

void vs_account_physical(struct vs_arena *a)
{
    size_t phys = a->granules * a->gran;
    if (phys > a->peak_physical)
        a->peak_physical = phys;
}

size_t vs_arena_reserved(const struct vs_arena *a)
{
    return atomic_load_explicit(&a->granules, memory_order_relaxed) * a->gran;
}

void vs_arena_stats(struct vs_arena *a, struct vs_arena_stats *st)
{
    uint64_t allocs = 0, frees = 0;
    for (unsigned c = 0; c < VS_NBUCKETS; c++) {
        pthread_mutex_lock(&a->classes[c].mu);
        allocs += a->classes[c].allocs;
        pthread_mutex_unlock(&a->classes[c].mu);
    }
    pthread_mutex_lock(&a->streams_mu);
    struct vs_stream *list = a->streams;
    pthread_mutex_unlock(&a->streams_mu);
    for (struct vs_stream *s = list; s; s = s->next) {
        pthread_mutex_lock(&s->mu);
        allocs += s->allocs;
        frees += s->frees;
        pthread_mutex_unlock(&s->mu);
    }
    pthread_mutex_lock(&a->sync_mu);
    frees += a->sync_frees;
    pthread_mutex_unlock(&a->sync_mu);
    size_t pending = vs_pending_total(a);
    size_t live = vs_live_bytes(a);
    pthread_mutex_lock(&a->mu);
    size_t va = 0;
    for (struct vs_reservation *r = a->res; r; r = r->next)
        va += r->size;
    *st = (struct vs_arena_stats){
        .live_bytes = live,
        .physical_bytes = a->granules * a->gran,
        .cached_bytes = vs_granules_free_bytes(a),
        .pending_bytes = pending,
        .peak_live_bytes = atomic_load(&a->peak_live),
        .peak_physical_bytes = a->peak_physical,
        .reserved_va_bytes = va,
        .allocs = allocs + a->large_allocs,
        .frees = frees,
        .ooms = atomic_load(&a->ooms),
        .syncs = atomic_load(&a->syncs),
    };
    pthread_mutex_unlock(&a->mu);
}

CUresult vs_arena_mem_get_info(struct vs_arena *a, size_t *free_bytes, size_t *total_bytes)
{
    if (!free_bytes || !total_bytes)
        return CUDA_ERROR_INVALID_VALUE;
    CUcontext saved;
    bool sw = vs_ctx_enter(a, &saved);
    CUresult err = a->drv->cuMemGetInfo_v2(free_bytes, total_bytes);
    vs_ctx_leave(a, sw, saved);
    if (err != CUDA_SUCCESS)
        return err;
    pthread_mutex_lock(&a->mu);
    *free_bytes += vs_granules_free_bytes(a);
    pthread_mutex_unlock(&a->mu);
    return CUDA_SUCCESS;
}
