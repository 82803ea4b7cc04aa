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

/* Reserved bytes (vs_arena_reserved) of device `ordinal`'s arena: false when it has none (not
 * created yet, or served by the driver). Lock-free. */
bool vs_arenas_reserved(int ordinal, size_t *bytes);

/* --- eviction over every arena (allocator/evict.h has the per-arena forms) ------------------ */

/* The process's current stage (0: none), which every arena's allocations carry and its rules
 * follow. This is its only copy: the interposer's stage stack sets it to its top. */
uint32_t vs_arenas_stage(void);
void vs_arenas_set_stage(uint32_t stage);

/* Sets the current stage and applies its rule on every arena (vs_arena_stage_begin). Returns
 * the first error. Ending a stage is beginning the one that applies after it (0: none). */
CUresult vs_arenas_stage_begin(uint32_t stage);

/* Applies the rule of a stage or tag name on every arena (vs_arena_apply_rule). */
CUresult vs_arenas_apply_rule(uint32_t name);

/* vs_arena_demote / vs_arena_promote on every arena; *moved: the sum. Returns the first error
 * (the other arenas are still processed). */
CUresult vs_arenas_demote(uint32_t name, size_t *moved);
CUresult vs_arenas_promote(uint32_t name, size_t *moved);

/* Calls fn(arena, ctx) for every arena created so far, in device order. */
void vs_arenas_each(void (*fn)(struct vs_arena *a, void *ctx), void *ctx);

/* Destroys every arena (process exit, tests). */
void vs_arenas_teardown(void);

#endif
