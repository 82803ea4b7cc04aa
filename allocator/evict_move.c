/* Moving granules between device and host memory under the same addresses (evict.h): the
 * capability probe, the staging VA and the transactional batch move.
 *
 * Invariants (arena.mu held, the arena's context current):
 *  - a moved slot keeps its VA; between two calls it is mapped to exactly one handle, device
 *    (slot.host false, counted in a->granules) or host (slot.host true, in a->host_granules);
 *  - a batch either commits every slot it was given or leaves every slot mapped to the handle
 *    it had, with the handles it made released and the device granules it took back in the
 *    cache (or released, when it created them);
 *  - the staging VA is unmapped between batches (abandoned for fresh VA if an unmap fails).
 */
#include <stdlib.h>

#include "allocator/internal.h"
#include "allocator/vs_assert.h"

bool vs_evict_probe(struct vs_arena *a)
{
    if (a->evict_state != VS_EVICT_UNPROBED)
        return a->evict_state == VS_EVICT_ON;
    int numa = -1;
    CUresult err =
        a->drv->cuDeviceGetAttribute(&numa, CU_DEVICE_ATTRIBUTE_HOST_NUMA_ID, a->dev);
    /* A device without NUMA affinity reports -1: node 0 is then the host memory. */
    a->host_prop = (CUmemAllocationProp){
        .type = CU_MEM_ALLOCATION_TYPE_PINNED,
        .location = {.type = CU_MEM_LOCATION_TYPE_HOST_NUMA, .id = numa >= 0 ? numa : 0}};
    size_t g = 0;
    if (err == CUDA_SUCCESS)
        err = a->drv->cuMemGetAllocationGranularity(&g, &a->host_prop,
                                                    CU_MEM_ALLOC_GRANULARITY_MINIMUM);
    if (err == CUDA_SUCCESS && (!g || a->gran % g))
        err = CUDA_ERROR_NOT_SUPPORTED;
    CUmemGenericAllocationHandle h;
    if (err == CUDA_SUCCESS)
        err = a->drv->cuMemCreate(&h, a->gran, &a->host_prop, 0);
    if (err == CUDA_SUCCESS)
        a->drv->cuMemRelease(h);
    a->evict_state = err == CUDA_SUCCESS ? VS_EVICT_ON : VS_EVICT_OFF;
    if (err != CUDA_SUCCESS)
        vs_log(VS_LOG_WARN,
               "eviction off on device %d: the driver cannot map host-NUMA memory (error %d); "
               "nothing will be demoted",
               a->ordinal, err);
    return err == CUDA_SUCCESS;
}

static CUresult map_rw(struct vs_arena *a, CUdeviceptr va, CUmemGenericAllocationHandle h)
{
    CUresult err = a->drv->cuMemMap(va, a->gran, 0, h, 0);
    if (err != CUDA_SUCCESS)
        return err;
    err = a->drv->cuMemSetAccess(va, a->gran, &a->access, 1);
    if (err != CUDA_SUCCESS)
        a->drv->cuMemUnmap(va, a->gran);
    return err;
}

/* Replaces the mapping at va: `from` by `to`; on failure va is mapped to `from` again. */
static CUresult remap(struct vs_arena *a, CUdeviceptr va, CUmemGenericAllocationHandle from,
                      CUmemGenericAllocationHandle to)
{
    CUresult err = a->drv->cuMemUnmap(va, a->gran);
    if (err != CUDA_SUCCESS)
        return err;
    err = map_rw(a, va, to);
    if (err != CUDA_SUCCESS && map_rw(a, va, from) != CUDA_SUCCESS)
        vs_log(VS_LOG_WARN,
               "evict: cannot restore the mapping at 0x%llx; that memory is now unmapped",
               (unsigned long long)va);
    return err;
}

static CUdeviceptr va_of(const struct vs_arena *a, const struct vs_move *m)
{
    return m->r->base + m->slot * a->gran;
}

/* New backing for n slots: host granules (demote) or device granules (promote). */
static CUresult get_backing(struct vs_arena *a, bool to_host, size_t n,
                            CUmemGenericAllocationHandle *h, size_t *created)
{
    if (!to_host)
        return vs_granules_take(a, NULL, 0, 0, n, true, h, created);
    for (size_t k = 0; k < n; k++) {
        CUresult err = a->drv->cuMemCreate(&h[k], a->gran, &a->host_prop, 0);
        if (err != CUDA_SUCCESS) {
            while (k > 0)
                vs_host_release(a, h[--k]);
            return err;
        }
    }
    *created = n;
    return CUDA_SUCCESS;
}

static void drop_backing(struct vs_arena *a, bool to_host, const CUmemGenericAllocationHandle *h,
                         size_t n, size_t created)
{
    if (!to_host) {
        vs_granules_untake(a, h, n, created);
        return;
    }
    for (size_t k = 0; k < n; k++)
        vs_host_release(a, h[k]);
}

static CUresult ensure_staging(struct vs_arena *a)
{
    if (a->staging)
        return CUDA_SUCCESS;
    CUresult err =
        a->drv->cuMemAddressReserve(&a->staging, VS_EVICT_BATCH * a->gran, a->gran, 0, 0);
    if (err != CUDA_SUCCESS)
        a->staging = 0;
    return err;
}

/* Copies each slot's contents into its new backing, mapped at the staging VA meanwhile. */
static CUresult copy_out(struct vs_arena *a, const struct vs_move *mv, size_t n,
                         const CUmemGenericAllocationHandle *h)
{
    CUdeviceptr staging = a->staging;
    size_t staged = 0;
    CUresult err = CUDA_SUCCESS;
    while (staged < n && (err = map_rw(a, staging + staged * a->gran, h[staged])) == CUDA_SUCCESS)
        staged++;
    size_t queued = 0;
    while (queued < n && err == CUDA_SUCCESS &&
           (err = a->drv->cuMemcpyAsync(staging + queued * a->gran, va_of(a, &mv[queued]),
                                        a->gran, 0)) == CUDA_SUCCESS)
        queued++;
    if (queued) {
        CUresult e = a->drv->cuStreamSynchronize(0);
        /* Copies still queued must not outlive the staging mappings they write. */
        if (e != CUDA_SUCCESS)
            a->drv->cuCtxSynchronize();
        if (err == CUDA_SUCCESS)
            err = e;
    }
    for (size_t k = 0; k < staged; k++) {
        CUresult e = a->drv->cuMemUnmap(staging + k * a->gran, a->gran);
        /* The batch fails either way; one retry keeps the handle from staying mapped there. */
        if (e != CUDA_SUCCESS && a->staging &&
            a->drv->cuMemUnmap(staging + k * a->gran, a->gran) != CUDA_SUCCESS) {
            /* Still mapped: never map there again; the next move reserves fresh VA. */
            vs_log(VS_LOG_WARN,
                   "evict: cuMemUnmap of the staging area failed (error %d); abandoning it", e);
            a->staging = 0;
        }
        if (err == CUDA_SUCCESS)
            err = e;
    }
    return err;
}

static CUresult move_batch(struct vs_arena *a, const struct vs_move *mv, size_t n, bool to_host)
{
    CUmemGenericAllocationHandle h[VS_EVICT_BATCH];
    size_t created = 0;
    CUresult err = get_backing(a, to_host, n, h, &created);
    if (err != CUDA_SUCCESS)
        return err;
    err = copy_out(a, mv, n, h);
    size_t switched = 0;
    for (; switched < n && err == CUDA_SUCCESS; switched++) {
        err = remap(a, va_of(a, &mv[switched]), mv[switched].r->slots[mv[switched].slot].h,
                    h[switched]);
        if (err != CUDA_SUCCESS)
            break;
    }
    if (err != CUDA_SUCCESS) {
        while (switched > 0) {
            const struct vs_move *m = &mv[--switched];
            remap(a, va_of(a, m), h[switched], m->r->slots[m->slot].h);
        }
        drop_backing(a, to_host, h, n, created);
        return err;
    }
    uint32_t stage = vs_arenas_stage();
    for (size_t k = 0; k < n; k++) {
        struct vs_slot *s = &mv[k].r->slots[mv[k].slot];
        CUmemGenericAllocationHandle old = s->h;
        vs_assert(atomic_load_explicit(&s->parking, memory_order_relaxed),
                  "slot 0x%llx moved without parking", (unsigned long long)va_of(a, &mv[k]));
        s->h = h[k];
        s->host = to_host;
        if (to_host) {
            vs_granules_untake(a, &old, 1, 0); /* the device granule is free now */
            a->host_granules++;
            a->demotes++;
            s->promoted_in = 0;
        } else {
            vs_host_release(a, old);
            a->host_granules--;
            a->promotes++;
            s->promoted_in = stage;
        }
    }
    return CUDA_SUCCESS;
}

/* Sets the slots of a demote parking, then keeps those still candidates (evict.h "Unit"). An
 * object freed after the check cannot be handed out until its slot stops parking, and one
 * handed out before it is live, so the check saw it (and its stage and tag). */
static size_t claim(struct vs_arena *a, struct vs_move *mv, size_t n, const struct vs_selection *sel)
{
    /* Sequentially consistent store, then sequentially consistent loads of the objects' req
     * (evict_select.c), against the exchange of req by a free and the load of `parking` by the
     * hand-out (small.c). */
    for (size_t k = 0; k < n; k++)
        atomic_store(&mv[k].r->slots[mv[k].slot].parking, true);
    size_t kept = 0;
    for (size_t k = 0; k < n; k++) {
        uint32_t age;
        if (vs_slot_candidate(a, mv[k].r, mv[k].slot, sel, true, &age))
            mv[kept++] = mv[k];
        else
            vs_small_unpark(a, mv[k].r, mv[k].slot);
    }
    return kept;
}

CUresult vs_evict_move(struct vs_arena *a, struct vs_move *mv, size_t n, bool to_host,
                       const struct vs_selection *sel, size_t *moved)
{
    *moved = 0;
    if (to_host)
        n = claim(a, mv, n, sel);
    size_t done = 0;
    CUresult err = ensure_staging(a);
    /* Work queued on any stream before this call must see the old placement and finish
     * before a granule is unmapped; which streams touch a block is unknown to the arena. */
    if (err == CUDA_SUCCESS)
        err = a->drv->cuCtxSynchronize();
    while (done < n && err == CUDA_SUCCESS) {
        size_t k = n - done < VS_EVICT_BATCH ? n - done : VS_EVICT_BATCH;
        err = move_batch(a, mv + done, k, to_host);
        if (err != CUDA_SUCCESS)
            break;
        for (size_t j = done; j < done + k && !to_host; j++)
            vs_small_unpark(a, mv[j].r, mv[j].slot); /* back on the device */
        done += k;
        *moved += k * a->gran;
    }
    for (size_t j = done; j < n && to_host; j++)
        vs_small_unpark(a, mv[j].r, mv[j].slot); /* stays on the device */
    if (err != CUDA_SUCCESS)
        vs_log(VS_LOG_WARN,
               "evict: %s stopped after %zu bytes on device %d (error %d); the rest stays %s",
               to_host ? "demote" : "promote", *moved, a->ordinal, err,
               to_host ? "on the device" : "in host memory");
    return err;
}

void vs_evict_release(struct vs_arena *a)
{
    if (a->staging)
        a->drv->cuMemAddressFree(a->staging, VS_EVICT_BATCH * a->gran);
    a->staging = 0;
}
