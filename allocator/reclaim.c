/* Memory pressure: making freed blocks reusable sooner, at rising cost, and the one-line report
 * when even that is not enough.
 *
 * Invariant: only VS_RECLAIM_SYNC waits for the device, and the allocation paths use it only when
 * the alternative is growing physical memory past synchronously freed blocks or failing.
 */
#include "allocator/internal.h"

bool vs_reclaim(struct vs_arena *a, enum vs_reclaim_level level)
{
    switch (level) {
    case VS_RECLAIM_POLL:
        return vs_streams_poll(a, false) > 0;
    case VS_RECLAIM_RECORD:
        return vs_streams_poll(a, true) > 0;
    case VS_RECLAIM_SYNC:
        if (!vs_pending_total(a))
            return false;
        CUcontext saved;
        bool sw = vs_ctx_enter(a, &saved);
        CUresult err = a->drv->cuCtxSynchronize();
        vs_ctx_leave(a, sw, saved);
        if (err != CUDA_SUCCESS) {
            vs_log(VS_LOG_WARN,
                   "arena: cuCtxSynchronize failed (error %d); freed blocks stay unusable", err);
            return false;
        }
        atomic_fetch_add(&a->syncs, 1);
        vs_streams_all_idle(a);
        return true;
    }
    return false;
}

/* Idle bytes inside segments: free objects of pages and units no page uses. */
static size_t small_idle_bytes(struct vs_arena *a)
{
    size_t bytes = vs_segments_free_bytes(a);
    for (unsigned c = 0; c < VS_NBUCKETS; c++) {
        pthread_mutex_lock(&a->classes[c].mu);
        bytes += a->classes[c].idle.n * vs_small_class_size(vs_bucket_class(c));
        pthread_mutex_unlock(&a->classes[c].mu);
    }
    return bytes;
}

void vs_oom_report(struct vs_arena *a, size_t requested)
{
    size_t dev_free = 0, total = 0;
    CUcontext saved;
    bool sw = vs_ctx_enter(a, &saved);
    if (a->drv->cuMemGetInfo_v2(&dev_free, &total) != CUDA_SUCCESS)
        dev_free = 0;
    vs_ctx_leave(a, sw, saved);
    /* Stitching lets one block use every free granule, so the largest block that could still be
     * built is device free + free granules; what fragmentation loses is the free space inside
     * granules that also hold live data. */
    size_t cached = vs_granules_free_bytes(a);
    size_t run = dev_free + cached;
    size_t total_free = run + vs_large_partial_idle_bytes(a) + small_idle_bytes(a);
    double frag = total_free ? 100.0 * (1.0 - (double)run / (double)total_free) : 0.0;
    char rq[32], lv[32], rs[32], ca[32], dm[32], pe[32], df[32], lr[32];
    vs_log(VS_LOG_WARN,
           "out of memory on device %d: requested %s, live %s, reserved %s, cached %s, "
           "demoted %s, pending %s, device free %s, largest free run %s, fragmentation %.1f%%",
           a->ordinal, vs_size_format(requested, rq, sizeof rq),
           vs_size_format(vs_live_bytes(a), lv, sizeof lv),
           vs_size_format(a->granules * a->gran, rs, sizeof rs),
           vs_size_format(cached, ca, sizeof ca),
           vs_size_format(a->host_granules * a->gran, dm, sizeof dm),
           vs_size_format(vs_pending_total(a), pe, sizeof pe),
           vs_size_format(dev_free, df, sizeof df), vs_size_format(run, lr, sizeof lr), frag);
    if (requested > run)
        vs_oom_hint(a, requested - run);
}
