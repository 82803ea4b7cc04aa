/* Serve-or-forward decisions per family (see route.h for the invariants).
 *
 * `serve` is the process-wide decision for new allocations: UNPROBED until the first allocation
 * after cuInit probes every device for virtual memory management, then ARENA, or DRIVER for good
 * (passthrough mode, fallback, forked child). Frees and pointer queries never look at it: they
 * route by owner, checked only once some arena exists (`arena_made`), so passthrough mode pays
 * nothing for it.
 */
#include "interpose/route.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>

#include "allocator/arenas.h"
#include "interpose/init.h"
#include "interpose/lend.h"
#include "allocator/log.h"

enum vs_serve { VS_SERVE_UNPROBED, VS_SERVE_ARENA, VS_SERVE_DRIVER };

static _Atomic int serve = VS_SERVE_DRIVER;
static atomic_bool arena_made;
static bool forked_child; /* written only in the single-threaded child, before any hook runs */
static pthread_mutex_t probe_mu = PTHREAD_MUTEX_INITIALIZER;

void vs_route_setup(void)
{
    if (vs_cfg.mode != VS_MODE_ARENA)
        return;
    struct vs_arena_options opt;
    vs_arena_options_from_env(&opt);
    vs_arenas_setup(&vs_drv, &opt);
    atomic_store(&serve, VS_SERVE_UNPROBED);
}

void vs_route_fork_child(void)
{
    forked_child = true;
    atomic_store(&serve, VS_SERVE_DRIVER);
}

bool vs_route_driver_serves(void)
{
    return vs_cfg.mode == VS_MODE_ARENA && atomic_load(&serve) == VS_SERVE_DRIVER;
}

/* New allocations go to the driver from now on; one line says why unless the allocator already
 * did (`logged`). */
static void fall_back(const char *why, int dev, CUresult err, bool logged)
{
    if (atomic_exchange(&serve, VS_SERVE_DRIVER) == VS_SERVE_DRIVER || logged)
        return;
    vs_log(VS_LOG_WARN,
           "arena unavailable: %s (device %d, error %d); serving memory from the driver", why,
           dev, (int)err);
}

/* Every device must support virtual memory management for the arena to serve. False while the
 * driver is not initialised (the call is forwarded and gets the driver's answer). */
static bool probe_devices(void)
{
    pthread_mutex_lock(&probe_mu);
    int count = 0;
    CUresult err = atomic_load(&serve) == VS_SERVE_UNPROBED ? vs_drv.cuDeviceGetCount(&count)
                                                             : CUDA_SUCCESS;
    for (int dev = 0; err == CUDA_SUCCESS && dev < count; dev++) {
        int vmm = 0;
        CUresult e = vs_drv.cuDeviceGetAttribute(
            &vmm, CU_DEVICE_ATTRIBUTE_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED, dev);
        if (e != CUDA_SUCCESS || !vmm) {
            fall_back(e != CUDA_SUCCESS ? "cannot query virtual memory management support"
                                        : "no virtual memory management support",
                      dev, e != CUDA_SUCCESS ? e : CUDA_ERROR_NOT_SUPPORTED, false);
            break;
        }
    }
    int expected = VS_SERVE_UNPROBED;
    if (err == CUDA_SUCCESS)
        atomic_compare_exchange_strong(&serve, &expected, VS_SERVE_ARENA);
    pthread_mutex_unlock(&probe_mu);
    return atomic_load(&serve) == VS_SERVE_ARENA;
}

/* The arena that serves a new allocation, or NULL to forward it. */
static struct vs_arena *serving_arena(void)
{
    int s = atomic_load_explicit(&serve, memory_order_relaxed);
    if (s == VS_SERVE_DRIVER || (s == VS_SERVE_UNPROBED && !probe_devices()))
        return NULL;
    unsigned seen = vs_log_thread_lines(); /* whether the arena says why it failed */
    struct vs_arena *a;
    CUresult err = vs_arenas_current(&a);
    if (err == CUDA_SUCCESS) {
        if (!atomic_load_explicit(&arena_made, memory_order_relaxed))
            atomic_store(&arena_made, true);
        return a;
    }
    /* No current context or driver: the driver gives the program its own error. */
    if (err != CUDA_ERROR_INVALID_CONTEXT && err != CUDA_ERROR_NOT_INITIALIZED &&
        err != CUDA_ERROR_DEINITIALIZED && err != CUDA_ERROR_CONTEXT_IS_DESTROYED) {
        CUdevice dev = -1;
        vs_drv.cuCtxGetDevice(&dev);
        fall_back("cannot set up the arena", dev, err, vs_log_thread_lines() != seen);
    }
    return NULL;
}

/* After a fallback the driver serves every new allocation: memory the arena frees goes back to
 * it at once instead of staying cached where only the arena could use it. */
static void after_arena_free(struct vs_arena *a)
{
    if (atomic_load_explicit(&serve, memory_order_relaxed) == VS_SERVE_DRIVER)
        vs_arena_trim(a, 0);
}

struct vs_arena *vs_route_owner(CUdeviceptr ptr)
{
    if (!ptr || !atomic_load_explicit(&arena_made, memory_order_relaxed))
        return NULL;
    return vs_arenas_owner(ptr);
}

/* The arena of the current context's device for notifications, once arena mode has served from
 * any (after a fallback too: its blocks still wait for these); never in a forked child. */
static struct vs_arena *notified_arena(void)
{
    struct vs_arena *a;
    if (forked_child || !atomic_load_explicit(&arena_made, memory_order_relaxed) ||
        vs_arenas_current(&a) != CUDA_SUCCESS)
        return NULL;
    return a;
}

void vs_route_device_synchronized(void)
{
    struct vs_arena *a = notified_arena();
    if (a) {
        vs_arena_device_synchronized(a);
        after_arena_free(a);
    }
}

void vs_route_stream_destroyed(CUstream s)
{
    struct vs_arena *a = s ? notified_arena() : NULL;
    if (a)
        vs_arena_stream_destroyed(a, s);
}

/* The stream as the driver reads it: 0 passed to a _ptsz entry point is the per-thread stream. */
static CUstream driver_stream(enum vs_hook_id hook, CUstream s)
{
    bool ptsz = hook == VS_HOOK_cuMemAllocAsync_ptsz ||
                hook == VS_HOOK_cuMemAllocFromPoolAsync_ptsz || hook == VS_HOOK_cuMemFreeAsync_ptsz;
    return ptsz && !s ? CU_STREAM_PER_THREAD : s;
}

static CUresult forward_alloc(const struct vs_alloc_call *c)
{
    switch (c->hook) {
    case VS_HOOK_cuMemAllocPitch_v2:
        return VS_FORWARD(cuMemAllocPitch_v2, c->dptr, c->pitch, c->width, c->height, c->elem);
    case VS_HOOK_cuMemAllocAsync:
        return VS_FORWARD(cuMemAllocAsync, c->dptr, c->bytes, c->stream);
    case VS_HOOK_cuMemAllocAsync_ptsz:
        return VS_FORWARD(cuMemAllocAsync_ptsz, c->dptr, c->bytes, c->stream);
    case VS_HOOK_cuMemAllocFromPoolAsync:
        return VS_FORWARD(cuMemAllocFromPoolAsync, c->dptr, c->bytes, c->pool, c->stream);
    case VS_HOOK_cuMemAllocFromPoolAsync_ptsz:
        return VS_FORWARD(cuMemAllocFromPoolAsync_ptsz, c->dptr, c->bytes, c->pool, c->stream);
    default:
        return VS_FORWARD(cuMemAlloc_v2, c->dptr, c->bytes);
    }
}

/* Pools the application created stay with the driver; only the device's default pool is the
 * arena's to serve. */
static bool is_default_pool(CUmemoryPool pool)
{
    CUdevice dev;
    CUmemoryPool def;
    return vs_drv.cuDeviceGetDefaultMemPool && vs_drv.cuCtxGetDevice(&dev) == CUDA_SUCCESS &&
           vs_drv.cuDeviceGetDefaultMemPool(&def, dev) == CUDA_SUCCESS && def == pool;
}

/* A stream-ordered allocation on a stream being captured into a CUDA graph must become the
 * graph's own allocation node: only the driver can do that. (The legacy stream is never
 * captured; asking costs a driver call, so it is skipped.) */
static bool capturing(CUstream s)
{
    CUstreamCaptureStatus st = CU_STREAM_CAPTURE_STATUS_NONE;
    return s && s != CU_STREAM_LEGACY && vs_drv.cuStreamIsCapturing &&
           vs_drv.cuStreamIsCapturing(s, &st) == CUDA_SUCCESS &&
           st != CU_STREAM_CAPTURE_STATUS_NONE;
}

static CUresult arena_alloc(struct vs_arena *a, const struct vs_alloc_call *c, uint32_t tag)
{
    bool pitched = c->hook == VS_HOOK_cuMemAllocPitch_v2;
    struct vs_arena_alloc_req rq = {
        .size = pitched ? c->width : c->bytes,
        .height = c->height,
        .elem = c->elem,
        .async = c->family == VS_FAM_ALLOC_ASYNC,
        .stream = driver_stream(c->hook, c->stream),
        .tag = tag,
    };
    return vs_arena_alloc_req(a, &rq, c->dptr, pitched ? c->pitch : NULL);
}

CUresult vs_route_alloc(const struct vs_alloc_call *c, uint32_t tag, bool *by_arena)
{
    *by_arena = false;
    /* Nothing to ask the driver about pools or capture when it serves every allocation anyway
     * (passthrough mode, after a fallback, in a forked child). */
    if (atomic_load_explicit(&serve, memory_order_relaxed) == VS_SERVE_DRIVER)
        return forward_alloc(c);
    bool from_pool = c->hook == VS_HOOK_cuMemAllocFromPoolAsync ||
                     c->hook == VS_HOOK_cuMemAllocFromPoolAsync_ptsz;
    bool pitched = c->hook == VS_HOOK_cuMemAllocPitch_v2;
    bool async = c->family == VS_FAM_ALLOC_ASYNC;
    if (!c->dptr || (pitched && !c->pitch) || (from_pool && !is_default_pool(c->pool)) ||
        (async && capturing(driver_stream(c->hook, c->stream))))
        return forward_alloc(c);
    struct vs_arena *a = serving_arena();
    if (!a)
        return forward_alloc(c);
    /* Lent memory comes back before an allocation the arena serves: never one being captured
     * into a graph, whose stream must not see the promote's device synchronisation. */
    vs_lend_on_use();
    CUresult r = arena_alloc(a, c, tag);
    *by_arena = r == CUDA_SUCCESS;
    if (r == CUDA_SUCCESS || r == CUDA_ERROR_OUT_OF_MEMORY || r == CUDA_ERROR_INVALID_VALUE)
        return r;
    CUdevice dev = -1;
    vs_drv.cuCtxGetDevice(&dev);
    char why[96];
    snprintf(why, sizeof why, "%s failed in the arena", vs_hook_name(c->hook));
    fall_back(why, dev, r, false);
    after_arena_free(a);
    return forward_alloc(c);
}

bool vs_route_block_size(struct vs_arena *a, CUdeviceptr ptr, uint64_t *size)
{
    struct vs_block_info info;
    if (forked_child || vs_arena_block_info(a, ptr, &info) != CUDA_SUCCESS || info.base != ptr)
        return false;
    *size = info.size;
    return true;
}

CUresult vs_route_free(struct vs_arena *a, enum vs_hook_id hook, CUdeviceptr ptr, CUstream stream,
                       size_t *arena_bytes)
{
    *arena_bytes = 0;
    if (a && forked_child)
        return CUDA_SUCCESS;
    bool async = hook == VS_HOOK_cuMemFreeAsync || hook == VS_HOOK_cuMemFreeAsync_ptsz;
    if (!a) {
        if (!async)
            return VS_FORWARD(cuMemFree_v2, ptr);
        return hook == VS_HOOK_cuMemFreeAsync ? VS_FORWARD(cuMemFreeAsync, ptr, stream)
                                              : VS_FORWARD(cuMemFreeAsync_ptsz, ptr, stream);
    }
    CUresult r = vs_arena_free_req(a, ptr, async, driver_stream(hook, stream), arena_bytes);
    after_arena_free(a);
    return r;
}

CUresult vs_route_mem_get_info(size_t *free_bytes, size_t *total_bytes)
{
    struct vs_arena *a = free_bytes && total_bytes ? serving_arena() : NULL;
    return a ? vs_arena_mem_get_info(a, free_bytes, total_bytes)
             : VS_FORWARD(cuMemGetInfo_v2, free_bytes, total_bytes);
}

/* The arena answering a pointer query, or NULL for the driver (also in a forked child). */
static struct vs_arena *query_owner(CUdeviceptr ptr)
{
    return forked_child ? NULL : vs_route_owner(ptr);
}

CUresult vs_route_address_range(CUdeviceptr *base, size_t *size, CUdeviceptr ptr)
{
    struct vs_arena *a = query_owner(ptr);
    return a ? vs_arena_address_range(a, ptr, base, size)
             : VS_FORWARD(cuMemGetAddressRange_v2, base, size, ptr);
}

CUresult vs_route_pointer_attribute(void *data, CUpointer_attribute attr, CUdeviceptr ptr)
{
    struct vs_arena *a = data ? query_owner(ptr) : NULL;
    return a ? vs_arena_pointer_attribute(a, attr, ptr, data)
             : VS_FORWARD(cuPointerGetAttribute, data, attr, ptr);
}

CUresult vs_route_pointer_attributes(unsigned n, CUpointer_attribute *attrs, void **data,
                                     CUdeviceptr ptr)
{
    struct vs_arena *a = attrs && data ? query_owner(ptr) : NULL;
    return a ? vs_arena_pointer_attributes(a, n, attrs, data, ptr)
             : VS_FORWARD(cuPointerGetAttributes, n, attrs, data, ptr);
}
