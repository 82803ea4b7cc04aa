/* Physical granules: created on demand, mapped into slots, cached when free, released to the
 * driver under pressure or above the cache limit.
 *
 * Invariants (under arena.mu):
 *  - a->granules counts every handle the arena holds: mapped into a slot or in a->cached.
 *  - a->mapped_free counts slots with a handle and busy == 0: free granules still mapped, which
 *    any request may take (unmap here, map there: stitching) since no live or pending block
 *    overlaps them.
 *  - a slot with busy > 0 is always mapped; a granule under a pending block is never unmapped,
 *    so work queued before a free never faults.
 *  - vs_granules_back either maps every slot it was asked for or leaves the physical memory
 *    held and the mappings of those slots exactly as they were.
 */
#include <stdlib.h>

#include "allocator/internal.h"

enum origin { FROM_CACHE, FROM_SLOT, CREATED };

static void release_handle(struct vs_arena *a, CUmemGenericAllocationHandle h)
{
    a->drv->cuMemRelease(h);
    a->granules--;
}

/* Unmaps slot i of r (which must be mapped and not busy) and returns its handle. */
static bool take_slot(struct vs_arena *a, struct vs_reservation *r, size_t i,
                      CUmemGenericAllocationHandle *h)
{
    CUresult err = a->drv->cuMemUnmap(r->base + i * a->gran, a->gran);
    if (err != CUDA_SUCCESS) {
        vs_alog("arena: cuMemUnmap of a free granule failed (error %d); keeping it mapped", err);
        return false;
    }
    *h = r->slots[i].h;
    r->slots[i].h = 0;
    a->mapped_free--;
    return true;
}

/* Takes up to `want` free mapped granules outside slots [skip_first, skip_first+skip_count) of
 * `skip`. Returns how many. */
static size_t steal(struct vs_arena *a, struct vs_reservation *skip, size_t skip_first,
                    size_t skip_count, CUmemGenericAllocationHandle *h, enum origin *org,
                    size_t want)
{
    size_t got = 0;
    for (struct vs_reservation *r = a->res; r && got < want && a->mapped_free; r = r->next)
        for (size_t i = 0; i < r->nslots && got < want; i++) {
            if (!r->slots[i].h || r->slots[i].busy)
                continue;
            if (r == skip && i >= skip_first && i < skip_first + skip_count)
                continue;
            if (take_slot(a, r, i, &h[got])) {
                org[got] = FROM_SLOT;
                got++;
            }
        }
    return got;
}

static bool is_ours(const CUmemGenericAllocationHandle *h, size_t n,
                    CUmemGenericAllocationHandle x)
{
    for (size_t j = 0; j < n; j++)
        if (h[j] == x)
            return true;
    return false;
}

CUresult vs_granules_back(struct vs_arena *a, struct vs_reservation *r, size_t first,
                          size_t count, bool may_create)
{
    size_t need = 0, free_inside = 0;
    for (size_t i = first; i < first + count; i++) {
        need += r->slots[i].h == 0;
        free_inside += r->slots[i].h && !r->slots[i].busy;
    }
    if (!need)
        return CUDA_SUCCESS;
    if (!may_create && need > a->cached.n + a->mapped_free - free_inside)
        return CUDA_ERROR_OUT_OF_MEMORY;

    CUmemGenericAllocationHandle *h = malloc(need * sizeof *h);
    enum origin *org = malloc(need * sizeof *org);
    if (!h || !org) {
        free(h);
        free(org);
        vs_alog("arena: out of host memory mapping %zu granules", need);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    size_t k = 0, mapped = 0;
    CUresult err = CUDA_SUCCESS;
    while (k < need && a->cached.n) {
        h[k] = (CUmemGenericAllocationHandle)a->cached.v[--a->cached.n];
        org[k++] = FROM_CACHE;
    }
    k += steal(a, r, first, count, h + k, org + k, need - k);
    for (; k < need; k++) {
        err = a->drv->cuMemCreate(&h[k], a->gran, &a->prop, 0);
        if (err != CUDA_SUCCESS)
            goto rollback;
        org[k] = CREATED;
        a->granules++;
    }
    for (size_t i = first; i < first + count; i++) {
        if (r->slots[i].h)
            continue;
        CUdeviceptr va = r->base + i * a->gran;
        err = a->drv->cuMemMap(va, a->gran, 0, h[mapped], 0);
        if (err != CUDA_SUCCESS)
            goto rollback;
        err = a->drv->cuMemSetAccess(va, a->gran, &a->access, 1);
        if (err != CUDA_SUCCESS) {
            a->drv->cuMemUnmap(va, a->gran);
            goto rollback;
        }
        r->slots[i].h = h[mapped++];
    }
    a->mapped_free += need;
    vs_account_physical(a);
    free(h);
    free(org);
    return CUDA_SUCCESS;

rollback:
    /* Undo exactly this call's work: unmap what it mapped (its first `mapped` unmapped slots),
     * release what it created; granules it took from the cache or from free slots stay held, in
     * the cache. */
    for (size_t i = first; mapped && i < first + count; i++)
        if (r->slots[i].h && is_ours(h, mapped, r->slots[i].h)) {
            a->drv->cuMemUnmap(r->base + i * a->gran, a->gran);
            r->slots[i].h = 0;
        }
    for (size_t j = 0; j < k; j++)
        if (org[j] == CREATED || vs_vec_push(&a->cached, (uintptr_t)h[j]) != 0)
            release_handle(a, h[j]);
    free(h);
    free(org);
    return err;
}

void vs_granules_busy(struct vs_arena *a, struct vs_reservation *r, CUdeviceptr start,
                      size_t size, int delta)
{
    size_t lo = vs_slot_of(a, r, start), hi = vs_slot_of(a, r, start + size - 1);
    for (size_t i = lo; i <= hi; i++) {
        struct vs_slot *s = &r->slots[i];
        if (delta > 0 && s->busy++ == 0 && s->h)
            a->mapped_free--;
        else if (delta < 0 && --s->busy == 0 && s->h)
            a->mapped_free++;
    }
}

size_t vs_granules_free_bytes(const struct vs_arena *a)
{
    return (a->cached.n + a->mapped_free) * a->gran;
}

void vs_granules_trim(struct vs_arena *a, size_t keep)
{
    while (a->cached.n && vs_granules_free_bytes(a) > keep)
        release_handle(a, (CUmemGenericAllocationHandle)a->cached.v[--a->cached.n]);
    for (struct vs_reservation *r = a->res; r && vs_granules_free_bytes(a) > keep; r = r->next)
        for (size_t i = 0; i < r->nslots && vs_granules_free_bytes(a) > keep; i++) {
            CUmemGenericAllocationHandle h;
            if (r->slots[i].h && !r->slots[i].busy && take_slot(a, r, i, &h))
                release_handle(a, h);
        }
    vs_account_physical(a);
}

void vs_granules_release_all(struct vs_arena *a)
{
    for (struct vs_reservation *r = a->res; r; r = r->next)
        for (size_t i = 0; i < r->nslots; i++)
            if (r->slots[i].h) {
                a->drv->cuMemUnmap(r->base + i * a->gran, a->gran);
                release_handle(a, r->slots[i].h);
                r->slots[i].h = 0;
            }
    while (a->cached.n)
        release_handle(a, (CUmemGenericAllocationHandle)a->cached.v[--a->cached.n]);
    a->mapped_free = 0;
}
