/* The defragmenting arena: every device allocation of the process served from CUDA virtual
 * memory (docs/arena.md; docs/architecture.md, "Walk 1: one pointer").
 *
 * One arena per device. It reserves a large VA range (grown by further reservations), maps
 * physical granules on demand and keeps free ones cached, packs small requests into granules by
 * size class and backs large, VA-contiguous blocks with whichever granules are free (stitching),
 * so free memory is never stranded by fragmentation.
 *
 * Free safety. A freed block is never handed out while work queued before its free can touch it:
 *  - vs_arena_free_async(p, S): reusable at once by allocations on S; by other streams and
 *    synchronous allocations after an event recorded on S has completed (queried, never waited
 *    on, except under memory pressure).
 *  - vs_arena_free(p): keeps cuMemFree's promise that the memory is idle: the block is reused only
 *    after a device synchronisation that follows the free (done lazily, under pressure, or when the
 *    caller reports one with vs_arena_device_synchronized).
 *  - vs_arena_alloc returns memory idle for every stream; vs_arena_alloc_async(S) memory that is
 *    ordered on S: blocks freed on S are reused at once, others once their event has completed.
 *
 * Every driver call goes through the struct vs_driver table given at creation, never through
 * cu* symbols. All functions are thread-safe. Errors are CUresult codes the caller can return to
 * the application or fall back from; internal failures log one "vramshim:" line.
 */
#ifndef VS_ALLOCATOR_ARENA_H
#define VS_ALLOCATOR_ARENA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cuda.h>

#include "allocator/driver.h"

struct vs_arena;

struct vs_arena_options {
    /* Free granules kept cached before they go back to the driver (bytes). SIZE_MAX: no limit
     * until pressure. From VRAMSHIM_CACHE_MAX. */
    size_t cache_max;
    /* Size of each VA reservation (bytes, rounded to granules); 0: twice the device memory. */
    size_t va_chunk;
};

/* Defaults, then VRAMSHIM_CACHE_MAX (bytes, or with KiB/MiB/GiB suffix). A malformed value logs
 * one line naming the variable and keeps the default. */
void vs_arena_options_from_env(struct vs_arena_options *opt);

/* Creates the arena of device `dev`, whose allocations belong to context `ctx` (the context
 * pointer queries report). `drv` must outlive the arena. */
CUresult vs_arena_create(const struct vs_driver *drv, CUdevice dev, CUcontext ctx,
                         const struct vs_arena_options *opt, struct vs_arena **out);

/* Waits for the device, returns every granule and the VA to the driver. Blocks still live are
 * released with it. */
void vs_arena_destroy(struct vs_arena *a);

/* --- allocation families (what the hooks call) ----------------------------------------------- */

/* cuMemAlloc_v2. size 0 -> CUDA_ERROR_INVALID_VALUE. */
CUresult vs_arena_alloc(struct vs_arena *a, size_t size, CUdeviceptr *dptr);

/* cuMemAllocPitch_v2: rows padded to the driver's pitch (512 B); elem must be 4, 8 or 16. */
CUresult vs_arena_alloc_pitch(struct vs_arena *a, size_t width, size_t height, unsigned elem,
                              CUdeviceptr *dptr, size_t *pitch);

/* cuMemAllocAsync / cuMemAllocFromPoolAsync on the device's default pool. `stream` as the
 * driver reads it: 0 and CU_STREAM_LEGACY are the legacy stream, CU_STREAM_PER_THREAD the
 * calling thread's per-thread stream (the _ptsz hooks pass CU_STREAM_PER_THREAD for 0). */
CUresult vs_arena_alloc_async(struct vs_arena *a, size_t size, CUstream stream, CUdeviceptr *dptr);

/* The three above as the interposer calls them, with the block's tag: the arena sets it where it
 * hands the block out (under the lock it holds for that), so nobody has to find the block again
 * to tag it. `pitch` non-NULL: cuMemAllocPitch_v2 (size is the row width; height, elem apply;
 * never stream-ordered), NULL: cuMemAlloc_v2 or, with async, cuMemAllocAsync. */
struct vs_arena_alloc_req {
    size_t size;     /* bytes, or with pitch the width in bytes */
    size_t height;   /* with pitch: rows */
    unsigned elem;   /* with pitch: element size */
    bool async;      /* stream-ordered on `stream` */
    CUstream stream;
    uint32_t tag;    /* 0: none (vs_arena_set_tag can set one later) */
};
CUresult vs_arena_alloc_req(struct vs_arena *a, const struct vs_arena_alloc_req *rq,
                            CUdeviceptr *dptr, size_t *pitch);

/* cuMemFree_v2. A pointer that is not the base of a live block of this arena:
 * CUDA_ERROR_INVALID_VALUE, logged once per arena. */
CUresult vs_arena_free(struct vs_arena *a, CUdeviceptr dptr);

/* cuMemFreeAsync: stream-ordered free on `stream` (same stream conventions as alloc_async). */
CUresult vs_arena_free_async(struct vs_arena *a, CUdeviceptr dptr, CUstream stream);

/* Either free as the interposer calls it (async: on `stream`); *bytes gets the freed block's
 * requested size (0 on failure), so the caller need not remember it. */
CUresult vs_arena_free_req(struct vs_arena *a, CUdeviceptr dptr, bool async, CUstream stream,
                           size_t *bytes);

/* --- queries ---------------------------------------------------------------------------------- */

/* True when dptr lies inside this arena's VA (whether or not a block is live there): the hooks
 * route frees and pointer queries of such addresses to the arena. */
bool vs_arena_owns(const struct vs_arena *a, CUdeviceptr dptr);

/* True when dptr is the base address of a live block. */
bool vs_arena_is_block(struct vs_arena *a, CUdeviceptr dptr);

/* cuMemGetInfo_v2: free = device free + the arena's free granules; total from the driver. */
CUresult vs_arena_mem_get_info(struct vs_arena *a, size_t *free_bytes, size_t *total_bytes);

/* cuMemGetAddressRange_v2 for any address inside a live block: its base and requested size.
 * Addresses in the arena but in no live block: CUDA_ERROR_NOT_FOUND. base/size may be NULL. */
CUresult vs_arena_address_range(struct vs_arena *a, CUdeviceptr dptr, CUdeviceptr *base,
                                size_t *size);

/* cuPointerGetAttribute for an address in the arena: answers what the driver answers for a
 * cuMemAlloc block of that size (base, size, context, device ordinal, memory type, ids) and asks
 * the driver for attributes it answers right for arena memory (managed, mapped, access flags,
 * ...). An address in no live block: CUDA_ERROR_INVALID_VALUE, as for freed memory. */
CUresult vs_arena_pointer_attribute(struct vs_arena *a, CUpointer_attribute attr, CUdeviceptr dptr,
                                    void *data);

/* cuPointerGetAttributes, same answers; an address in no live block is answered by the driver
 * (which, like for any unknown pointer, succeeds). */
CUresult vs_arena_pointer_attributes(struct vs_arena *a, unsigned n, CUpointer_attribute *attrs,
                                     void **data, CUdeviceptr dptr);

/* --- stages, tags, stats --------------------------------------------------------------------- */

/* Allocations made after this call carry `stage` (an id the policy layer assigns; 0: none): it
 * sets the process's current stage (vs_arenas_set_stage, shared by every arena) and records it
 * in a's stage order (eviction demotes the oldest stages first). */
void vs_arena_set_stage(struct vs_arena *a, uint32_t stage);
/* Records `stage` in a's stage order without changing the current stage. */
void vs_arena_stage_seen(struct vs_arena *a, uint32_t stage);

/* Sets the tag id of the live block at base dptr. CUDA_ERROR_INVALID_VALUE when none. */
CUresult vs_arena_set_tag(struct vs_arena *a, CUdeviceptr dptr, uint32_t tag);

struct vs_block_info {
    CUdeviceptr base;
    size_t size;        /* requested bytes */
    uint32_t stage, tag;
    CUstream stream;    /* stream of an async allocation, 0 for a synchronous one */
};
/* Metadata of the live block containing dptr. CUDA_ERROR_NOT_FOUND when none. */
CUresult vs_arena_block_info(struct vs_arena *a, CUdeviceptr dptr, struct vs_block_info *info);

struct vs_arena_stats {
    size_t live_bytes;          /* requested bytes of live blocks */
    size_t physical_bytes;      /* granules the arena holds (mapped or cached) */
    size_t cached_bytes;        /* granules without live or pending data: free for any request */
    size_t pending_bytes;       /* freed blocks waiting for their streams (rounded sizes) */
    size_t peak_live_bytes;
    size_t peak_physical_bytes;
    size_t reserved_va_bytes;
    uint64_t allocs, frees, ooms, syncs; /* syncs: device synchronisations under pressure */
};
void vs_arena_stats(struct vs_arena *a, struct vs_arena_stats *st);
/* Physical bytes the arena holds (its stats' physical_bytes, the OOM line's "reserved"): one
 * relaxed load, no lock, for the trace's hot path. */
size_t vs_arena_reserved(const struct vs_arena *a);

/* The caller saw the device become idle (e.g. the application called cuCtxSynchronize):
 * blocks freed before now become reusable everywhere. */
void vs_arena_device_synchronized(struct vs_arena *a);

/* Call before the driver destroys `stream` (cuStreamDestroy hook): blocks freed on it stop being
 * reusable "on the same stream", since a new stream may get the same handle. */
void vs_arena_stream_destroyed(struct vs_arena *a, CUstream stream);

/* Returns cached granules to the driver until at most `keep` bytes stay cached. Never waits. */
void vs_arena_trim(struct vs_arena *a, size_t keep);

/* Checks the arena's internal invariants (block tiling, free lists, granule busy counts and
 * accounting, stream and sync lists and pending bytes, free and parked small objects, live
 * bytes, eviction state) and returns a description of the first one broken, written into buf,
 * or NULL when all hold. Takes the arena's locks; meant for tests between phases (with no
 * allocation or free running on the arena, live bytes may be mid-update otherwise). */
const char *vs_arena_validate(struct vs_arena *a, char *buf, size_t len);

#endif
