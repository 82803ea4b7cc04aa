/* The process's arenas, one per device, created on first use: what the hooks call to find the
 * arena of the current context or of a pointer.
 */
#ifndef VS_ALLOCATOR_ARENAS_H
#define VS_ALLOCATOR_ARENAS_H

#include "allocator/arena.h"

/* Sets the driver table and options every arena will use (call once, before the others).
 * `drv` must stay valid for the life of the process. */
void vs_arenas_setup(const struct vs_driver *drv, const struct vs_arena_options *opt);

/* The arena of the current context's device, created on first use with that context.
 * CUDA_ERROR_INVALID_CONTEXT without a current context; other errors from creation. */
CUresult vs_arenas_current(struct vs_arena **out);

/* The arena whose VA contains dptr, or NULL (the hook then passes the call to the driver). */
struct vs_arena *vs_arenas_owner(CUdeviceptr dptr);

/* Destroys every arena (process exit, tests). */
void vs_arenas_teardown(void);

#endif
