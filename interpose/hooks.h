/* Every driver entry point the shim intercepts, by its exact exported name.
 *
 * Each entry gives the hook (an exported function of the same name in hooks_*.c or procaddr.c)
 * and the type of the real function it forwards to, the entry of the same name in the one table
 * of the real driver (vs_drv, allocator/driver.h, filled at lazy init; hooktab.c checks that
 * every hook has its entry, of that type). Routing is by pointer identity: vs_hook_for() maps a
 * pointer the real driver handed out (through dlsym or cuGetProcAddress) to the hook of exactly
 * that symbol, so `_v2`/`_ptsz` variants are never guessed from names.
 *
 * cuda.h maps `cuGetProcAddress` to `cuGetProcAddress_v2` with a macro; the driver exports both
 * names (the plain one is the 4-argument CUDA 11.3 form), so the macro is dropped here.
 */
#ifndef VS_INTERPOSE_HOOKS_H
#define VS_INTERPOSE_HOOKS_H

#include <cuda.h>
#include <cudaTypedefs.h>
#include <stdbool.h>

#include "interpose/init.h"

#undef cuGetProcAddress

/* Families, as counted in the exit summary. "sync" is cuCtxSynchronize and cuStreamDestroy_v2,
 * hooked only so the arena learns when freed memory becomes idle or a stream handle dies. */
#define VS_FAMILIES(X)              \
    X(ALLOC, "alloc")               \
    X(FREE, "free")                 \
    X(ALLOC_ASYNC, "alloc_async")   \
    X(FREE_ASYNC, "free_async")     \
    X(VMM_CREATE, "vmm_create")     \
    X(VMM_RELEASE, "vmm_release")   \
    X(VMM_MAP, "vmm_map")           \
    X(VMM_UNMAP, "vmm_unmap")       \
    X(QUERY, "query")               \
    X(PROC_ADDRESS, "proc_address") \
    X(SYNC, "sync")

enum vs_family {
#define VS_FAMILY_ENUM(id, text) VS_FAM_##id,
    VS_FAMILIES(VS_FAMILY_ENUM)
#undef VS_FAMILY_ENUM
        VS_FAM_COUNT
};

#define VS_HOOKS(X)                                                          \
    X(cuMemAlloc_v2, PFN_cuMemAlloc_v3020)                                   \
    X(cuMemAllocPitch_v2, PFN_cuMemAllocPitch_v3020)                         \
    X(cuMemFree_v2, PFN_cuMemFree_v3020)                                     \
    X(cuMemAllocAsync, PFN_cuMemAllocAsync_v11020)                           \
    X(cuMemAllocAsync_ptsz, PFN_cuMemAllocAsync_v11020_ptsz)                 \
    X(cuMemAllocFromPoolAsync, PFN_cuMemAllocFromPoolAsync_v11020)           \
    X(cuMemAllocFromPoolAsync_ptsz, PFN_cuMemAllocFromPoolAsync_v11020_ptsz) \
    X(cuMemFreeAsync, PFN_cuMemFreeAsync_v11020)                             \
    X(cuMemFreeAsync_ptsz, PFN_cuMemFreeAsync_v11020_ptsz)                   \
    X(cuMemCreate, PFN_cuMemCreate_v10020)                                   \
    X(cuMemRelease, PFN_cuMemRelease_v10020)                                 \
    X(cuMemMap, PFN_cuMemMap_v10020)                                         \
    X(cuMemUnmap, PFN_cuMemUnmap_v10020)                                     \
    X(cuMemGetInfo_v2, PFN_cuMemGetInfo_v3020)                               \
    X(cuMemGetAddressRange_v2, PFN_cuMemGetAddressRange_v3020)               \
    X(cuPointerGetAttribute, PFN_cuPointerGetAttribute_v4000)                \
    X(cuPointerGetAttributes, PFN_cuPointerGetAttributes_v7000)              \
    X(cuGetProcAddress, PFN_cuGetProcAddress_v11030)                         \
    X(cuGetProcAddress_v2, PFN_cuGetProcAddress_v12000)                      \
    X(cuCtxSynchronize, PFN_cuCtxSynchronize_v2000)                          \
    X(cuStreamDestroy_v2, PFN_cuStreamDestroy_v4000)

enum vs_hook_id {
#define VS_HOOK_ID(name, type) VS_HOOK_##name,
    VS_HOOKS(VS_HOOK_ID)
#undef VS_HOOK_ID
        VS_HOOK_COUNT
};

/* The hook of `name` is defined as vs_hook_<name> and exported under the driver's name as an
 * alias (VS_EXPORT_HOOK), so the shim refers to its hooks directly even when the shim is
 * dlopen'ed into a process whose global scope already has a driver with those names. */
#define VS_HOOK_DECL(name, type) \
    extern __typeof__(*(type)0) vs_hook_##name __attribute__((visibility("hidden")));
VS_HOOKS(VS_HOOK_DECL)
#undef VS_HOOK_DECL

#define VS_EXPORT_HOOK(name) \
    extern __typeof__(vs_hook_##name) name __attribute__((alias("vs_hook_" #name)))

/* Calls the real function, or fails as a driver that lacks it would have been unreachable. */
#define VS_FORWARD(name, ...) \
    (vs_drv.name ? vs_drv.name(__VA_ARGS__) : CUDA_ERROR_NOT_INITIALIZED)

/* The hook standing for the real function `real`; `real` itself when it is none of the hooked
 * symbols. A pointer that already is a hook stays that hook, or becomes NULL when the real
 * driver lacks its symbol (as the look-up would have failed without the shim). Needs vs_init(). */
void *vs_hook_for(void *real);

/* The exact symbol name of a hook. */
const char *vs_hook_name(enum vs_hook_id id);

/* Whether `name` is exactly one of the hooked symbols (cheap; no initialisation). */
bool vs_is_hooked_name(const char *name);

const char *vs_family_name(enum vs_family family);

#endif
