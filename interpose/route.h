/* The one place per family that decides whether the shim serves a call itself or forwards it to
 * the real driver. Hooks (hooks_*.c) do the accounting and tracing around these, whoever served
 * the call, so modes change only the bodies here.
 *
 * Invariants:
 *  - Every call reaches exactly one of: the arena, or the real driver (once).
 *  - Passthrough mode forwards everything. Arena mode serves allocations of the current context's
 *    device from its arena (allocator/arenas.h) and frees/pointer queries by owner: a pointer in an
 *    arena's VA goes to that arena, any other to the driver. So blocks made before a fallback keep
 *    being freed by whoever allocated them.
 *  - Fallback: a device without virtual memory management, an arena that cannot be set up or an
 *    arena call failing with anything but OUT_OF_MEMORY / INVALID_VALUE logs one `vramshim:` line
 *    and turns new allocations into pass-through for the rest of the process.
 *  - Forked child: new allocations pass through; the parent's arena (whose locks another thread
 *    of the parent may have held at fork) is never entered: frees of its blocks succeed without
 *    doing anything (the memory belongs to the parent's context) and queries on them go to the
 *    driver.
 *  - Calls without a current context, before cuInit, or with a NULL output pointer go to the
 *    driver, so the program gets the driver's own error. So do allocations from pools the
 *    program created and stream-ordered allocations on a stream being captured into a graph.
 */
#ifndef VS_INTERPOSE_ROUTE_H
#define VS_INTERPOSE_ROUTE_H

#include "interpose/hooks.h"

struct vs_arena;

/* One allocation request, as the program made it. */
struct vs_alloc_call {
    enum vs_hook_id hook; /* which entry point the program called */
    enum vs_family family;
    CUdeviceptr *dptr;
    size_t bytes;         /* cuMemAlloc_v2, *Async, *FromPoolAsync */
    size_t *pitch;        /* cuMemAllocPitch_v2 */
    size_t width, height; /* cuMemAllocPitch_v2 */
    unsigned elem;        /* cuMemAllocPitch_v2 */
    CUmemoryPool pool;    /* *FromPoolAsync */
    CUstream stream;      /* *Async */
};

/* Chooses the mode for the process (from vs_cfg) and, in arena mode, sets the arenas up on the
 * real driver (vs_drv, filled before). Called once by lazy initialisation; makes no driver
 * call. */
void vs_route_setup(void);

/* fork handler of the child (see the invariants). */
void vs_route_fork_child(void);

/* True when arena mode serves new allocations from the driver: after a fallback (one
 * "arena unavailable" line said why) or in a forked child. Nothing can be demoted then. */
bool vs_route_driver_serves(void);

/* The program saw the current context's device go idle (cuCtxSynchronize succeeded). */
void vs_route_device_synchronized(void);
/* The program is about to destroy stream s of the current context. */
void vs_route_stream_destroyed(CUstream s);

/* Serves or forwards c. tag: the block's tag (0: none), given to the arena with the request;
 * *by_arena: true when an arena served the block (it accounts it and holds its tag). */
CUresult vs_route_alloc(const struct vs_alloc_call *c, uint32_t tag, bool *by_arena);

/* The arena whose VA holds ptr (frees and queries of ptr go to it), or NULL for the driver. */
struct vs_arena *vs_route_owner(CUdeviceptr ptr);
/* Requested bytes of the live block at base ptr of arena a (ptr's owner): false when there is
 * none, and in a forked child (the parent's arena is never entered there). */
bool vs_route_block_size(struct vs_arena *a, CUdeviceptr ptr, uint64_t *size);
/* Frees ptr; a: vs_route_owner(ptr). *arena_bytes: the requested size of the block an arena
 * freed, 0 when none did. */
CUresult vs_route_free(struct vs_arena *a, enum vs_hook_id hook, CUdeviceptr ptr,
                       CUstream stream, size_t *arena_bytes);
CUresult vs_route_mem_get_info(size_t *free_bytes, size_t *total_bytes);
CUresult vs_route_address_range(CUdeviceptr *base, size_t *size, CUdeviceptr ptr);
CUresult vs_route_pointer_attribute(void *data, CUpointer_attribute attr, CUdeviceptr ptr);
CUresult vs_route_pointer_attributes(unsigned n, CUpointer_attribute *attrs, void **data,
                                     CUdeviceptr ptr);

#endif
