/* Host allocations of demoted memory (evict.h): their extents in the slots, the cache that keeps
 * them for the next demote, and their release.
 *
 * Invariants (arena.mu held):
 *  - a host allocation of n granules (1 <= n <= VS_EVICT_BATCH) is mapped as one piece at n
 *    adjacent slots of one reservation, each with host set and the same handle h; handles are
 *    unique, so its extent is the run of adjacent host slots holding h. The driver maps a
 *    physical allocation only whole (cuMemMap's offset must be 0) and unmaps only whole
 *    mappings, so the allocation is unmapped, moved and released as one piece, never a part of
 *    it: a promote that takes back some of its granules re-homes the others (evict_move.c), and
 *    the sweep releases it once every one of its slots is idle.
 *  - a->host_cache holds unmapped host allocations as (handle, granules) pairs, host_cached
 *    granules in all, at most host_cache_cap(a) bytes: min(VS_HOST_CACHE_MAX,
 *    VRAMSHIM_CACHE_MAX). A demote takes one of exactly the size it needs before creating one,
 *    so memory moved back and forth does not pay the driver's allocation (and pinning) again.
 */
#include "allocator/internal.h"

size_t vs_host_extent(const struct vs_reservation *r, size_t i, size_t *first)
{
    CUmemGenericAllocationHandle h = r->slots[i].h;
    size_t lo = i, hi = i + 1;
    while (lo > 0 && r->slots[lo - 1].host && r->slots[lo - 1].h == h)
        lo--;
    while (hi < r->nslots && r->slots[hi].host && r->slots[hi].h == h)
        hi++;
    *first = lo;
    return hi - lo;
}

void vs_host_release(struct vs_arena *a, CUmemGenericAllocationHandle h)
{
    CUresult err = a->drv->cuMemRelease(h);
    if (err == CUDA_SUCCESS)
        return;
    vs_log(VS_LOG_WARN, "evict: cuMemRelease of a host granule failed (error %d); retrying later",
           err);
    if (vs_vec_push(&a->host_refused, (uintptr_t)h) != 0)
        vs_log(VS_LOG_WARN, "evict: out of host memory; a host granule is lost");
}

static size_t host_cache_cap(const struct vs_arena *a)
{
    return a->opt.cache_max < VS_HOST_CACHE_MAX ? a->opt.cache_max : VS_HOST_CACHE_MAX;
}

void vs_host_cache_put(struct vs_arena *a, CUmemGenericAllocationHandle h, size_t n)
{
    if ((a->host_cached + n) * a->gran > host_cache_cap(a) ||
        vs_vec_push2(&a->host_cache, (uintptr_t)h, n) != 0) {
        vs_host_release(a, h);
        return;
    }
    a->host_cached += n;
}

CUresult vs_host_get(struct vs_arena *a, size_t n, CUmemGenericAllocationHandle *h, bool *fresh)
{
    for (size_t k = a->host_cache.n; k >= 2; k -= 2)
        if (a->host_cache.v[k - 1] == n) {
            *h = (CUmemGenericAllocationHandle)a->host_cache.v[k - 2];
            a->host_cache.v[k - 2] = a->host_cache.v[a->host_cache.n - 2];
            a->host_cache.v[k - 1] = a->host_cache.v[a->host_cache.n - 1];
            a->host_cache.n -= 2;
            a->host_cached -= n;
            *fresh = false;
            return CUDA_SUCCESS;
        }
    *fresh = true;
    return a->drv->cuMemCreate(h, n * a->gran, &a->host_prop, 0);
}

void vs_host_cache_trim(struct vs_arena *a, size_t keep)
{
    while (a->host_cache.n && a->host_cached * a->gran > keep) {
        a->host_cache.n -= 2;
        a->host_cached -= a->host_cache.v[a->host_cache.n + 1];
        vs_host_release(a, (CUmemGenericAllocationHandle)a->host_cache.v[a->host_cache.n]);
    }
}

/* Unmaps the host allocation at slots [i, i+n) of r and forgets it; false when the driver
 * refuses the unmap (nothing changed). */
static bool unmap_host(struct vs_arena *a, struct vs_reservation *r, size_t i, size_t n)
{
    CUresult err = a->drv->cuMemUnmap(r->base + i * a->gran, n * a->gran);
    if (err != CUDA_SUCCESS) {
        vs_log(VS_LOG_WARN, "arena: cuMemUnmap of an idle host allocation failed (error %d)", err);
        return false;
    }
    for (size_t j = i; j < i + n; j++) {
        struct vs_slot *s = &r->slots[j];
        a->host_idle -= !s->busy;
        s->h = 0;
        s->host = false;
        atomic_store(&s->parking, false); /* no page left: nothing parked here */
    }
    a->host_granules -= n;
    return true;
}

void vs_granules_sweep_host(struct vs_arena *a)
{
    size_t refused = a->host_refused.n;
    a->host_refused.n = 0; /* a handle refused again is pushed back */
    for (size_t k = 0; k < refused; k++)
        vs_host_release(a, (CUmemGenericAllocationHandle)a->host_refused.v[k]);
    for (struct vs_reservation *r = a->res; r && a->host_idle; r = r->next)
        for (size_t i = 0, n; i < r->nslots && a->host_idle; i += n) {
            n = 1;
            if (!r->slots[i].host)
                continue;
            size_t first;
            n = vs_host_extent(r, i, &first); /* first == i: extents are walked whole */
            bool idle = true;
            for (size_t j = i; j < i + n && idle; j++)
                idle = !r->slots[j].busy;
            CUmemGenericAllocationHandle h = r->slots[i].h;
            if (!idle)
                continue;
            if (!unmap_host(a, r, i, n))
                return;
            vs_host_cache_put(a, h, n);
        }
}

/* At destruction a refused release cannot be retried: the handle is let go. */
void vs_host_release_all(struct vs_arena *a)
{
    for (struct vs_reservation *r = a->res; r; r = r->next)
        for (size_t i = 0, n; i < r->nslots; i += n) {
            n = 1;
            if (!r->slots[i].host)
                continue;
            size_t first;
            n = vs_host_extent(r, i, &first);
            CUmemGenericAllocationHandle h = r->slots[i].h;
            a->drv->cuMemUnmap(r->base + i * a->gran, n * a->gran);
            a->drv->cuMemRelease(h);
            for (size_t j = i; j < i + n; j++) {
                r->slots[j].h = 0;
                r->slots[j].host = false;
            }
            a->host_granules -= n;
        }
    vs_host_cache_trim(a, 0);
    for (size_t k = 0; k < a->host_refused.n; k++)
        a->drv->cuMemRelease((CUmemGenericAllocationHandle)a->host_refused.v[k]);
    vs_vec_free(&a->host_refused);
    vs_vec_free(&a->host_cache);
    a->host_idle = 0;
}
