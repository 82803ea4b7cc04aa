/* Hooks of the allocation families: cuMemAlloc_v2, cuMemAllocPitch_v2, cuMemFree_v2 and the
 * stream-ordered cuMemAllocAsync / cuMemAllocFromPoolAsync / cuMemFreeAsync with their _ptsz
 * forms. Each records the call, lets route.c serve or forward it, and accounts/traces the result.
 * The tally remembers the sizes of the driver's blocks only: an arena knows its blocks' sizes
 * and tags, and gives the size back with the free.
 *
 * Invariant: a free of a pointer allocated through the hooks is traced before it is forwarded,
 * so another thread that receives the same address from the arena or the driver right after is
 * always traced after the free. Null output pointers go to the driver untouched (its error).
 */
#include "interpose/alloc_stage.h"
#include "interpose/tally.h"
#include "interpose/borrow.h"
#include "interpose/init.h"
#include "allocator/log.h"
#include "interpose/record.h"
#include "interpose/route.h"

/* Traces an allocation or its OOM with the stage and tag it was made in. */
static void record_alloc(const struct vs_alloc_call *c, enum vs_trace_ev ev, uint64_t ptr,
                         uint64_t size, const struct vs_alloc_stage *st)
{
    if (!vs_trace_enabled())
        return;
    struct vs_trace_event e = {
        .ev = ev,
        .api = vs_hook_name(c->hook),
        .ptr = ptr,
        .size = size,
        .stream = (uint64_t)(uintptr_t)c->stream,
        .dev = VS_DEV_CURRENT,
        .stage = vs_alloc_stage_name(st),
        .tag = vs_alloc_tag_name(st),
    };
    vs_record_slow_at(&e, st->site);
}

static CUresult hooked_alloc(const struct vs_alloc_call *c)
{
    if (!vs_init())
        return CUDA_ERROR_NOT_INITIALIZED;
    vs_tally_call(c->family);
    struct vs_alloc_stage st;
    vs_alloc_stage_before(&st);
    bool by_arena;
    CUresult r = vs_route_alloc(c, st.tag, &by_arena);
    bool pitched = c->hook == VS_HOOK_cuMemAllocPitch_v2;
    uint64_t want = pitched ? (uint64_t)c->width * c->height : c->bytes;
    /* Peers on the GPU may lend (borrow.h): one retry when they released something. */
    if (r == CUDA_ERROR_OUT_OF_MEMORY && vs_borrow(want)) {
        r = vs_route_alloc(c, st.tag, &by_arena);
        if (r == CUDA_ERROR_OUT_OF_MEMORY)
            vs_log(VS_LOG_ERROR, "borrow: still out of memory for %llu bytes after the retry",
                   (unsigned long long)want);
    }
    if (r == CUDA_SUCCESS && c->dptr) {
        uint64_t size = pitched && c->pitch ? (uint64_t)*c->pitch * c->height : want;
        if (by_arena)
            vs_tally_arena_alloc(size);
        else
            vs_tally_alloc(*c->dptr, size);
        vs_alloc_stage_after(&st, by_arena);
        record_alloc(c, VS_EV_ALLOC, *c->dptr, size, &st);
    } else if (r == CUDA_ERROR_OUT_OF_MEMORY) {
        record_alloc(c, VS_EV_OOM, 0, want, &st);
    }
    return r;
}

static CUresult hooked_free(enum vs_hook_id hook, enum vs_family family, CUdeviceptr ptr,
                            CUstream stream)
{
    if (!vs_init())
        return CUDA_ERROR_NOT_INITIALIZED;
    vs_tally_call(family);
    struct vs_arena *a = vs_route_owner(ptr);
    uint64_t size = 0;
    /* An arena block's size is asked for only for the trace. */
    bool known = a ? vs_trace_enabled() && vs_route_block_size(a, ptr, &size)
                   : vs_tally_free(ptr, &size);
    if (known)
        vs_record(hook, VS_EV_FREE, ptr, size, stream, 0, 0, VS_DEV_CURRENT);
    size_t freed;
    CUresult r = vs_route_free(a, hook, ptr, stream, &freed);
    if (freed)
        vs_tally_arena_free(freed);
    if (r == CUDA_SUCCESS && !known && ptr) {
        vs_record(hook, VS_EV_FREE, ptr, 0, stream, 0, 0, VS_DEV_CURRENT);
    } else if (r != CUDA_SUCCESS && known) {
        if (!a)
            vs_tally_alloc(ptr, size);
        vs_log(VS_LOG_DEBUG, "%s(0x%llx) failed (error %d) after its free was traced",
               vs_hook_name(hook), (unsigned long long)ptr, (int)r);
    }
    return r;
}

CUresult vs_hook_cuMemAlloc_v2(CUdeviceptr *dptr, size_t bytesize)
{
    return hooked_alloc(&(struct vs_alloc_call){
        .hook = VS_HOOK_cuMemAlloc_v2, .family = VS_FAM_ALLOC, .dptr = dptr, .bytes = bytesize});
}

CUresult vs_hook_cuMemAllocPitch_v2(CUdeviceptr *dptr, size_t *pPitch, size_t WidthInBytes,
                                    size_t Height, unsigned int ElementSizeBytes)
{
    return hooked_alloc(&(struct vs_alloc_call){.hook = VS_HOOK_cuMemAllocPitch_v2,
                                                .family = VS_FAM_ALLOC,
                                                .dptr = dptr,
                                                .pitch = pPitch,
                                                .width = WidthInBytes,
                                                .height = Height,
                                                .elem = ElementSizeBytes});
}

/* The stream-ordered forms differ only in hook id and pool (read by the *FromPoolAsync forms). */
static CUresult hooked_alloc_async(enum vs_hook_id hook, CUdeviceptr *dptr, size_t bytesize,
                                   CUmemoryPool pool, CUstream hStream)
{
    return hooked_alloc(&(struct vs_alloc_call){.hook = hook,
                                                .family = VS_FAM_ALLOC_ASYNC,
                                                .dptr = dptr,
                                                .bytes = bytesize,
                                                .pool = pool,
                                                .stream = hStream});
}

CUresult vs_hook_cuMemAllocAsync(CUdeviceptr *dptr, size_t bytesize, CUstream hStream)
{
    return hooked_alloc_async(VS_HOOK_cuMemAllocAsync, dptr, bytesize, NULL, hStream);
}

CUresult vs_hook_cuMemAllocAsync_ptsz(CUdeviceptr *dptr, size_t bytesize, CUstream hStream)
{
    return hooked_alloc_async(VS_HOOK_cuMemAllocAsync_ptsz, dptr, bytesize, NULL, hStream);
}

CUresult vs_hook_cuMemAllocFromPoolAsync(CUdeviceptr *dptr, size_t bytesize, CUmemoryPool pool,
                                         CUstream hStream)
{
    return hooked_alloc_async(VS_HOOK_cuMemAllocFromPoolAsync, dptr, bytesize, pool, hStream);
}

CUresult vs_hook_cuMemAllocFromPoolAsync_ptsz(CUdeviceptr *dptr, size_t bytesize, CUmemoryPool pool,
                                              CUstream hStream)
{
    return hooked_alloc_async(VS_HOOK_cuMemAllocFromPoolAsync_ptsz, dptr, bytesize, pool,
                              hStream);
}

CUresult vs_hook_cuMemFree_v2(CUdeviceptr dptr)
{
    return hooked_free(VS_HOOK_cuMemFree_v2, VS_FAM_FREE, dptr, NULL);
}

CUresult vs_hook_cuMemFreeAsync(CUdeviceptr dptr, CUstream hStream)
{
    return hooked_free(VS_HOOK_cuMemFreeAsync, VS_FAM_FREE_ASYNC, dptr, hStream);
}

CUresult vs_hook_cuMemFreeAsync_ptsz(CUdeviceptr dptr, CUstream hStream)
{
    return hooked_free(VS_HOOK_cuMemFreeAsync_ptsz, VS_FAM_FREE_ASYNC, dptr, hStream);
}

VS_EXPORT_HOOK(cuMemAlloc_v2);
VS_EXPORT_HOOK(cuMemAllocPitch_v2);
VS_EXPORT_HOOK(cuMemAllocAsync);
VS_EXPORT_HOOK(cuMemAllocAsync_ptsz);
VS_EXPORT_HOOK(cuMemAllocFromPoolAsync);
VS_EXPORT_HOOK(cuMemAllocFromPoolAsync_ptsz);
VS_EXPORT_HOOK(cuMemFree_v2);
VS_EXPORT_HOOK(cuMemFreeAsync);
VS_EXPORT_HOOK(cuMemFreeAsync_ptsz);
