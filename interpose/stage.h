/* The process's stage stack (include/vramshim.h explains the semantics users see).
 *
 * Invariants: one stack per process, guarded by one mutex that is also held while its top is
 * made the current stage (vs_arenas_stage_begin: the allocator keeps the current stage, which
 * every allocation reads, and runs the rules: prefetch, headroom), so the current stage is
 * always the stack's top, set in the order changes happened. Nothing here is
 * called with an arena lock held (hooks match call sites before they allocate), so taking arena
 * locks under the stage mutex cannot deadlock. Call sites for the trace are captured before
 * the mutex is taken (reading Python frames may wait for the GIL). vs_stage_current() is one
 * atomic load.
 */
#ifndef VS_INTERPOSE_STAGE_H
#define VS_INTERPOSE_STAGE_H

#include <stddef.h>
#include <stdint.h>

#include "allocator/trace.h"

#define VS_STAGE_DEPTH 64

/* Who began a stage: the API and ctl nest; a call-site stage replaces a call-site stage on top. */
enum vs_stage_source { VS_STAGE_API, VS_STAGE_CTL, VS_STAGE_SITE };

/* Begin / end by name (API, ctl). Return VRAMSHIM_* codes (include/vramshim.h). */
int vs_stage_begin(const char *name, enum vs_stage_source src);
int vs_stage_end(const char *name, enum vs_stage_source src);

/* A call-site match of stage id `stage` at `site` (the allocation's site, for the trace): no
 * change when it is already current. */
void vs_stage_begin_site(uint32_t stage, struct vs_site *site);

/* Id of the current stage, 0 when none (vs_arenas_stage). */
uint32_t vs_stage_current(void);

/* Copies the stack, outermost first, into out[0..max); returns its depth. */
size_t vs_stage_stack(uint32_t *out, size_t max);

#endif
