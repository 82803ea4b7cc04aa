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
 *
 * Driver calls per run of adjacent granules, not per granule: cuMemUnmap and cuMemSetAccess take
 * a range covering several whole mappings (as NVIDIA's vectorAddMMAP sample does over one
 * allocation per device), cuMemMap one per physical allocation (host: one per run; device: one
 * per granule, the arena's unit of reuse), cuMemcpyAsync one per run.
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

/* One transaction: up to VS_EVICT_BATCH granules in spans of adjacent slots, each span the
 * exact union of the old backings it replaces (single device granules, whole host allocations).
 * Every granule of the batch gets a new backing: a device granule where dev[] is set, else its
 * part of a host allocation covering the maximal run of host granules of its span (a piece).
 * Batch positions (`at`, in granules) are also offsets in the staging VA. */
struct span {
    struct vs_reservation *r;
    size_t first, n, at;
};

struct piece {
    size_t at, n;
    CUmemGenericAllocationHandle h;
    bool host, fresh; /* fresh: a host allocation created for this batch */
};

struct batch {
    struct span span[VS_EVICT_BATCH];
    struct piece piece[VS_EVICT_BATCH];
    bool dev[VS_EVICT_BATCH];
    CUmemGenericAllocationHandle hdev[VS_EVICT_BATCH]; /* as vs_granules_take returned them */
    size_t nspans, npieces, n, ndev, created;
    size_t selected; /* entries of mv it moves (the others are re-homed host granules) */
};

static CUdeviceptr span_va(const struct vs_arena *a, const struct span *sp)
{
    return sp->r->base + sp->first * a->gran;
}

static CUdeviceptr piece_va(const struct vs_arena *a, const struct span *sp,
                            const struct piece *p)
{
    return span_va(a, sp) + (p->at - sp->at) * a->gran;
}

/* Adds slots [first, first+n) of r to b, joining the last span when adjacent. */
static void add_slots(struct batch *b, struct vs_reservation *r, size_t first, size_t n)
{
    struct span *last = b->nspans ? &b->span[b->nspans - 1] : NULL;
    if (last && last->r == r && last->first + last->n == first)
        last->n += n;
    else
        b->span[b->nspans++] = (struct span){r, first, n, b->n};
    for (size_t k = b->n; k < b->n + n; k++)
        b->dev[k] = false;
    b->n += n;
}

/* The next batch from mv (n entries, in address order). A demote takes device slots; a
 * promote takes whole host allocations, moving the selected granules to the device and
 * re-homing the others in new host allocations (evict_host.c: an allocation moves whole). */
static void plan(const struct vs_move *mv, size_t n, bool to_host, struct batch *b)
{
    *b = (struct batch){0};
    size_t i = 0;
    while (i < n && b->n < VS_EVICT_BATCH) {
        struct vs_reservation *r = mv[i].r;
        size_t first = mv[i].slot, len = 1;
        if (!to_host)
            len = vs_host_extent(r, first, &first);
        if (b->n + len > VS_EVICT_BATCH)
            break; /* len <= VS_EVICT_BATCH: an empty batch always takes it */
        size_t at = b->n;
        add_slots(b, r, first, len);
        for (; i < n && mv[i].r == r && mv[i].slot < first + len; i++)
            b->dev[at + mv[i].slot - first] = !to_host;
    }
    b->selected = i;
    for (size_t s = 0; s < b->nspans; s++) {
        const struct span *sp = &b->span[s];
        for (size_t k = sp->at; k < sp->at + sp->n; k++) {
            struct piece *last = b->npieces ? &b->piece[b->npieces - 1] : NULL;
            if (!b->dev[k] && last && last->host && last->at + last->n == k && k != sp->at)
                last->n++;
            else
                b->piece[b->npieces++] = (struct piece){k, 1, 0, !b->dev[k], false};
            b->ndev += b->dev[k];
        }
    }
}

static void drop_backing(struct vs_arena *a, struct batch *b, size_t host_pieces)
{
    vs_granules_untake(a, b->hdev, b->ndev, b->created);
    for (size_t p = 0, seen = 0; p < b->npieces && seen < host_pieces; p++) {
        struct piece *pc = &b->piece[p];
        if (!pc->host)
            continue;
        seen++;
        if (pc->fresh)
            vs_host_release(a, pc->h);
        else
            vs_host_cache_put(a, pc->h, pc->n);
    }
}

/* New backing for every piece: device granules, host allocations (cached or created). */
static CUresult get_backing(struct vs_arena *a, struct batch *b)
{
    CUresult err = CUDA_SUCCESS;
    if (b->ndev)
        err = vs_granules_take(a, NULL, 0, 0, b->ndev, true, b->hdev, &b->created);
    if (err != CUDA_SUCCESS)
        return err;
    size_t host_pieces = 0;
    for (size_t p = 0, d = 0; p < b->npieces; p++) {
        struct piece *pc = &b->piece[p];
        if (!pc->host) {
            pc->h = b->hdev[d++];
            continue;
        }
        err = vs_host_get(a, pc->n, &pc->h, &pc->fresh);
        if (err != CUDA_SUCCESS) {
            drop_backing(a, b, host_pieces);
            return err;
        }
        host_pieces++;
    }
    return CUDA_SUCCESS;
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

/* Maps the old backings of sp at `at` (its own VA), without access; *done: the granules mapped from `at` on (all of them only on success). */
static CUresult map_old(struct vs_arena *a, const struct span *sp, CUdeviceptr at, size_t *done)
{
    *done = 0;
    for (size_t i = sp->first, n; i < sp->first + sp->n; i += n) {
        size_t first;
        n = sp->r->slots[i].host ? vs_host_extent(sp->r, i, &first) : 1;
        CUresult err = a->drv->cuMemMap(at + (i - sp->first) * a->gran, n * a->gran, 0,
                                        sp->r->slots[i].h, 0);
        if (err != CUDA_SUCCESS)
            return err;
        *done += n;
    }
    return CUDA_SUCCESS;
}

/* Maps the new pieces at the staging VA, at their batch positions, with one access call. *end:
 * granules mapped from the staging base, to unstage whatever happens. */
static CUresult stage(struct vs_arena *a, const struct batch *b, size_t *end)
{
    CUresult err = CUDA_SUCCESS;
    *end = 0;
    for (size_t p = 0; p < b->npieces && err == CUDA_SUCCESS; p++) {
        const struct piece *pc = &b->piece[p];
        err = a->drv->cuMemMap(a->staging + pc->at * a->gran, pc->n * a->gran, 0, pc->h, 0);
        if (err == CUDA_SUCCESS)
            *end = pc->at + pc->n;
    }
    if (err == CUDA_SUCCESS)
        err = a->drv->cuMemSetAccess(a->staging, *end * a->gran, &a->access, 1);
    return err;
}

/* Unmaps [staging, staging + end granules) in one call. */
static CUresult unstage(struct vs_arena *a, size_t end)
{
    if (!end)
        return CUDA_SUCCESS;
    CUresult err = a->drv->cuMemUnmap(a->staging, end * a->gran);
    /* The batch fails either way; one retry keeps the memory from staying mapped there. */
    if (err != CUDA_SUCCESS && a->drv->cuMemUnmap(a->staging, end * a->gran) != CUDA_SUCCESS) {
        /* Still mapped: never map there again; the next move reserves fresh VA. */
        vs_log(VS_LOG_WARN,
               "evict: cuMemUnmap of the staging area failed (error %d); abandoning it", err);
        a->staging = 0;
    }
    return err;
}

/* One copy per span from its VA to its place in the staging VA, waited for. */
static CUresult copy_spans(struct vs_arena *a, const struct batch *b)
{
    CUresult err = CUDA_SUCCESS;
    size_t queued = 0;
    for (; queued < b->nspans; queued++) {
        const struct span *sp = &b->span[queued];
        CUdeviceptr at = a->staging + sp->at * a->gran, va = span_va(a, sp);
        err = a->drv->cuMemcpyAsync(at, va, sp->n * a->gran, 0);
        if (err != CUDA_SUCCESS)
            break;
    }
    if (queued) {
        CUresult e = a->drv->cuStreamSynchronize(0);
        /* Copies still queued must not outlive the mappings they use. */
        if (e != CUDA_SUCCESS)
            a->drv->cuCtxSynchronize();
        if (err == CUDA_SUCCESS)
            err = e;
    }
    return err;
}

/* Undoes the switch of span sp, whose first `mapped` granules are mapped to new backings. */
static void unswitch(struct vs_arena *a, const struct span *sp, size_t mapped)
{
    CUresult err = CUDA_SUCCESS;
    size_t done;
    if (mapped)
        err = a->drv->cuMemUnmap(span_va(a, sp), mapped * a->gran);
    if (err == CUDA_SUCCESS)
        err = map_old(a, sp, span_va(a, sp), &done);
    if (err == CUDA_SUCCESS)
        err = a->drv->cuMemSetAccess(span_va(a, sp), sp->n * a->gran, &a->access, 1);
    if (err != CUDA_SUCCESS)
        vs_log(VS_LOG_WARN,
               "evict: cannot restore the mapping at 0x%llx (error %d); that memory may now "
               "be unmapped",
               (unsigned long long)span_va(a, sp), err);
}

/* Replaces the old backings of span s by its pieces at the same VA: one unmap, one map per
 * piece, one access call. On failure s is mapped as before (*mapped: how far it got). */
static CUresult switch_span(struct vs_arena *a, const struct batch *b, const struct span *sp,
                            size_t *p)
{
    CUresult err = a->drv->cuMemUnmap(span_va(a, sp), sp->n * a->gran);
    if (err != CUDA_SUCCESS)
        return err;
    size_t mapped = 0;
    for (; *p < b->npieces && b->piece[*p].at < sp->at + sp->n; ++*p) {
        const struct piece *pc = &b->piece[*p];
        err = a->drv->cuMemMap(piece_va(a, sp, pc), pc->n * a->gran, 0, pc->h, 0);
        if (err != CUDA_SUCCESS)
            break;
        mapped += pc->n;
    }
    if (err == CUDA_SUCCESS)
        err = a->drv->cuMemSetAccess(span_va(a, sp), sp->n * a->gran, &a->access, 1);
    if (err != CUDA_SUCCESS)
        unswitch(a, sp, mapped);
    return err;
}
/* The new backings become the slots' (the batch is done): old device granules go to the free
 * pool, old host allocations to the host cache. */
static void commit(struct vs_arena *a, const struct batch *b, bool to_host)
{
    uint32_t stage = vs_arenas_stage();
    size_t p = 0;
    for (size_t s = 0; s < b->nspans; s++) {
        const struct span *sp = &b->span[s];
        for (size_t i = sp->first, n; i < sp->first + sp->n; i += n) {
            struct vs_slot *old = &sp->r->slots[i];
            size_t first;
            n = old->host ? vs_host_extent(sp->r, i, &first) : 1;
            if (old->host)
                vs_host_cache_put(a, old->h, n);
            else
                vs_granules_untake(a, &old->h, 1, 0); /* the device granule is free now */
        }
        for (; p < b->npieces && b->piece[p].at < sp->at + sp->n; p++) {
            const struct piece *pc = &b->piece[p];
            for (size_t k = pc->at; k < pc->at + pc->n; k++) {
                struct vs_slot *sl = &sp->r->slots[sp->first + k - sp->at];
                vs_assert(atomic_load_explicit(&sl->parking, memory_order_relaxed),
                          "slot 0x%llx moved without parking",
                          (unsigned long long)(sp->r->base + (sp->first + k - sp->at) * a->gran));
                bool was_host = sl->host;
                sl->h = pc->h;
                sl->host = pc->host;
                if (was_host == pc->host)
                    continue; /* a host granule re-homed by a promote */
                if (to_host) {
                    a->host_granules++;
                    a->demotes++;
                    sl->promoted_in = 0;
                } else {
                    a->host_granules--;
                    a->promotes++;
                    sl->promoted_in = stage;
                }
            }
        }
    }
}

/* Both directions copy the contents into the new backings (mapped at the staging VA) before
 * the switch: the block's VA is only ever accessible while it maps memory holding the block's
 * contents, as a copy the program queued meanwhile may run at any moment (on the driver's
 * worker, without the arena lock). The old backing keeps the contents until the batch commits. */
static CUresult move_batch(struct vs_arena *a, struct batch *b, bool to_host)
{
    CUresult err = get_backing(a, b);
    if (err != CUDA_SUCCESS)
        return err;
    size_t end;
    err = stage(a, b, &end);
    if (err == CUDA_SUCCESS)
        err = copy_spans(a, b);
    CUresult e = unstage(a, end);
    if (err == CUDA_SUCCESS)
        err = e;
    size_t switched = 0;
    for (size_t p = 0; switched < b->nspans && err == CUDA_SUCCESS; switched++) {
        err = switch_span(a, b, &b->span[switched], &p);
        if (err != CUDA_SUCCESS)
            break;
    }
    if (err != CUDA_SUCCESS) {
        while (switched > 0) {
            const struct span *sp = &b->span[--switched];
            unswitch(a, sp, sp->n);
        }
        drop_backing(a, b, b->npieces);
        return err;
    }
    commit(a, b, to_host);
    return CUDA_SUCCESS;
}

/* Sets the slots of a demote parking, then keeps those still candidates (evict.h "Unit"). An
 * object freed after the check cannot be handed out until its slot stops parking, and one
 * handed out before it is live, so the check saw it (and its stage and tag). */
static size_t claim(struct vs_arena *a, struct vs_move *mv, size_t n,
                    const struct vs_selection *sel)
{
    /* Sequentially consistent store, then sequentially consistent loads of the objects' req
     * (evict_select.c), against the exchange of req by a free and the load of `parking` by the
     * hand-out (small.c). */
    for (size_t k = 0; k < n; k++)
        atomic_store(&mv[k].r->slots[mv[k].slot].parking, true);
    vs_evict_barrier(); /* on failure, vs_slot_candidate falls back to full segments */
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
    /* Address order makes runs of adjacent granules: one span, one copy, one host allocation. */
    for (size_t k = 0; k < n; k++)
        mv[k].key = 0;
    vs_moves_sort(mv, n);
    size_t done = 0;
    CUresult err = ensure_staging(a);
    /* Work queued on any stream before this call must see the old placement and finish
     * before a granule is unmapped; which streams touch a block is unknown to the arena. */
    if (err == CUDA_SUCCESS)
        err = a->drv->cuCtxSynchronize();
    while (done < n && err == CUDA_SUCCESS) {
        struct batch b;
        plan(mv + done, n - done, to_host, &b);
        err = move_batch(a, &b, to_host);
        if (err != CUDA_SUCCESS)
            break;
        for (size_t j = done; j < done + b.selected && !to_host; j++)
            vs_small_unpark(a, mv[j].r, mv[j].slot); /* back on the device */
        done += b.selected;
        *moved += b.selected * a->gran;
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
