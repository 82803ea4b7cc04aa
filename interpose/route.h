/* The one place per family that decides whether the shim serves a call itself or forwards it to
 * the real driver. Hooks (hooks_*.c) do the accounting and tracing around these, whoever served
 * the call, so arena mode changes only the bodies here.
 *
 * Today every family forwards: in passthrough mode by definition, in arena mode until the arena
 * is wired in (it will serve alloc/free and answer the queries for memory it owns).
 */
#ifndef VS_INTERPOSE_ROUTE_H
#define VS_INTERPOSE_ROUTE_H

#include "interpose/hooks.h"

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

CUresult vs_route_alloc(const struct vs_alloc_call *c);
CUresult vs_route_free(enum vs_hook_id hook, CUdeviceptr ptr, CUstream stream);
CUresult vs_route_mem_get_info(size_t *free_bytes, size_t *total_bytes);
CUresult vs_route_address_range(CUdeviceptr *base, size_t *size, CUdeviceptr ptr);
CUresult vs_route_pointer_attribute(void *data, CUpointer_attribute attr, CUdeviceptr ptr);
CUresult vs_route_pointer_attributes(unsigned n, CUpointer_attribute *attrs, void **data,
                                     CUdeviceptr ptr);

#endif
