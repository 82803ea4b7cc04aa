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
 *  - host slots (demoted, evict.h) hold host memory: never counted in granules or mapped_free,
 *    never stolen or cached here; once no block overlaps one (a->host_idle counts those) its
 *    host allocation is unmapped and released by vs_granules_sweep_host (evict_host.c).
 */
#include <stdlib.h>

#include "allocator/internal.h"
#include "allocator/vs_assert.h"

/* Gives an unmapped handle back to the driver. When the driver refuses, the handle stays held,
 * in the cache, for a later trim to retry (false); only at destruction is it let go. */
static bool release_handle(struct vs_arena *a, CUmemGenericAllocationHandle h)
{
    CUresult err = a->drv->cuMemRelease(h);
    if (err == CUDA_SUCCESS) {
        a->granules--;
        return true;
    }
    vs_log(VS_LOG_WARN, "arena: cuMemRelease of a free granule failed (error %d); keeping it cached", err);
    if (vs_vec_push(&a->cached, (uintptr_t)h) != 0) {
        vs_log(VS_LOG_WARN, "arena: out of host memory; a granule is lost to the arena");
        a->granules--;
    }
    return false;
}

/* Unmaps slot i of r (which must be mapped to a device granule and not busy) and returns its
 * handle. */
static bool take_slot(struct vs_arena *a, struct vs_reservation *r, size_t i,
                      CUmemGenericAllocationHandle *h)
{
    CUresult err = a->drv->cuMemUnmap(r->base + i * a->gran, a->gran);
    if (err != CUDA_SUCCESS) {
        vs_log(VS_LOG_WARN, "arena: cuMemUnmap of a free granule failed (error %d); keeping it mapped", err);
        return false;
    }
    vs_assert(a->mapped_free > 0 && !r->slots[i].busy && !r->slots[i].host,
              "took a granule that is not free (mapped_free %zu, busy %u)", a->mapped_free,
              r->slots[i].busy);
    *h = r->slots[i].h;
    r->slots[i].h = 0;
    a->mapped_free--;
    return true;
}

static bool free_device_slot(const struct vs_slot *s)
{
    return s->h && !s->busy && !s->host;
}

/* Takes up to `want` free mapped granules outside slots [skip_first, skip_first+skip_count) of
 * `skip`. Returns how many. */
static size_t steal(struct vs_arena *a, struct vs_reservation *skip, size_t skip_first,
                    size_t skip_count, CUmemGenericAllocationHandle *h, size_t want)
{
    size_t got = 0;
    for (struct vs_reservation *r = a->res; r && got < want && a->mapped_free; r = r->next)
        for (size_t i = 0; i < r->nslots && got < want; i++) {
            if (!free_device_slot(&r->slots[i]))
                continue;
            if (r == skip && i >= skip_first && i < skip_first + skip_count)
                continue;
            if (take_slot(a, r, i, &h[got]))
                got++;
        }
    return got;
}

CUresult vs_granules_take(struct vs_arena *a, struct vs_reservation *skip, size_t first,
                          size_t count, size_t need, bool may_create,
                          CUmemGenericAllocationHandle *h, size_t *created)
{
    size_t k = 0;
    while (k < need && a->cached.n)
        h[k++] = (CUmemGenericAllocationHandle)a->cached.v[--a->cached.n];
    k += steal(a, skip, first, count, h + k, need - k);
    size_t held = k;
    CUresult err = k < need && !may_create ? CUDA_ERROR_OUT_OF_MEMORY : CUDA_SUCCESS;
    for (; k < need && err == CUDA_SUCCESS; k++) {
        err = a->drv->cuMemCreate(&h[k], a->gran, &a->prop, 0);
        if (err != CUDA_SUCCESS)
            break;
        a->granules++;
    }
    if (err != CUDA_SUCCESS) {
        /* Created ones go back to the driver, held ones to the cache. */
        while (k > held)
            release_handle(a, h[--k]);
        vs_granules_untake(a, h, held, 0);
        return err;
    }
    *created = need - held;
    vs_account_physical(a);
    return CUDA_SUCCESS;
}

void vs_granules_untake(struct vs_arena *a, const CUmemGenericAllocationHandle *h, size_t n,
                        size_t created)
{
    for (size_t j = 0; j < n; j++)
        if (j >= n - created || vs_vec_push(&a->cached, (uintptr_t)h[j]) != 0)
            release_handle(a, h[j]);
}

CUresult vs_granules_back(struct vs_arena *a, struct vs_reservation *r, size_t first,
                          size_t count, bool may_create)
{
    size_t need = 0, free_inside = 0;
    for (size_t i = first; i < first + count; i++) {
        need += r->slots[i].h == 0;
        free_inside += free_device_slot(&r->slots[i]);
    }
    if (!need)
        return CUDA_SUCCESS;
    if (!may_create && need > a->cached.n + a->mapped_free - free_inside)
        return CUDA_ERROR_OUT_OF_MEMORY;

    CUmemGenericAllocationHandle *h = malloc(need * sizeof *h);
    if (!h) {
        vs_log(VS_LOG_WARN, "arena: out of host memory mapping %zu granules", need);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    size_t created;
    CUresult err = vs_granules_take(a, r, first, count, need, may_create, h, &created);
    if (err != CUDA_SUCCESS) {
        free(h);
        return err;
    }
    size_t mapped = 0;
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
    free(h);
    return CUDA_SUCCESS;

rollback:
    /* Undo exactly this call's work: unmap what it mapped (its first `mapped` unmapped slots),
     * release what it created; granules it took from the cache or from free slots stay held, in
     * the cache. */
    for (size_t i = first, j = 0; j < mapped; i++)
        if (r->slots[i].h == h[j]) {
            a->drv->cuMemUnmap(r->base + i * a->gran, a->gran);
            r->slots[i].h = 0;
            j++;
        }
    vs_granules_untake(a, h, need, created);
    free(h);
    return err;
}

void vs_granules_busy(struct vs_arena *a, struct vs_reservation *r, CUdeviceptr start,
                      size_t size, int delta)
{
    size_t lo = vs_slot_of(a, r, start), hi = vs_slot_of(a, r, start + size - 1);
    for (size_t i = lo; i <= hi; i++) {
        struct vs_slot *s = &r->slots[i];
        size_t *idle = s->host ? &a->host_idle : &a->mapped_free;
        vs_assert(delta > 0 || s->busy > 0, "slot 0x%llx: busy count below zero",
                  (unsigned long long)(r->base + i * a->gran));
        vs_assert(delta < 0 || s->h, "slot 0x%llx: busy but unmapped",
                  (unsigned long long)(r->base + i * a->gran));
        if (delta > 0 && s->busy++ == 0 && s->h)
            (*idle)--;
        else if (delta < 0 && --s->busy == 0 && s->h) {
            (*idle)++;
            s->promoted_in = 0;
        }
    }
}

size_t vs_granules_free_bytes(const struct vs_arena *a)
{
    return (a->cached.n + a->mapped_free) * a->gran;
}

void vs_granules_trim(struct vs_arena *a, size_t keep)
{
    vs_granules_trim_device(a, keep);
    vs_host_cache_trim(a, keep);
}

void vs_granules_trim_device(struct vs_arena *a, size_t keep)
{
    bool refused = false;
    while (!refused && a->cached.n && vs_granules_free_bytes(a) > keep)
        refused = !release_handle(a, (CUmemGenericAllocationHandle)a->cached.v[--a->cached.n]);
    for (struct vs_reservation *r = a->res; !refused && r && vs_granules_free_bytes(a) > keep;
         r = r->next)
        for (size_t i = 0; !refused && i < r->nslots && vs_granules_free_bytes(a) > keep; i++) {
            CUmemGenericAllocationHandle h;
            if (free_device_slot(&r->slots[i]) && take_slot(a, r, i, &h))
                refused = !release_handle(a, h);
        }
    vs_account_physical(a);
}

/* At destruction a refused release cannot be retried: the handle is let go. */
void vs_granules_release_all(struct vs_arena *a)
{
    vs_host_release_all(a);
    for (struct vs_reservation *r = a->res; r; r = r->next)
        for (size_t i = 0; i < r->nslots; i++)
            if (r->slots[i].h) {
                a->drv->cuMemUnmap(r->base + i * a->gran, a->gran);
                a->drv->cuMemRelease(r->slots[i].h);
                a->granules--;
                r->slots[i].h = 0;
            }
    while (a->cached.n) {
        a->drv->cuMemRelease((CUmemGenericAllocationHandle)a->cached.v[--a->cached.n]);
        a->granules--;
    }
    a->mapped_free = 0;
}
