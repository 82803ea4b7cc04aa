/* Stages and tags on the allocation path: what an allocation hook does before and after it
 * allocates.
 *
 * Before: when the policy has match rules, the call site is captured (once: the trace event
 * reuses it) and matched (once per site, cached); a matching stage begins now, so the block is
 * made in it and its stage-start rule (headroom, prefetch) runs before the allocation.
 * The matched tag goes with the request (an arena sets it as it hands the block out); after a
 * success in an arena the tag's rule is applied.
 * Without match rules the cost is one load and a branch.
 */
#ifndef VS_INTERPOSE_ALLOC_STAGE_H
#define VS_INTERPOSE_ALLOC_STAGE_H

#include <stdbool.h>
#include <stdint.h>

#include "allocator/trace.h"

struct vs_alloc_stage {
    struct vs_site *site; /* NULL when not captured (the trace captures its own) */
    uint32_t stage, tag;  /* ids when the allocation was made, 0: none */
};

void vs_alloc_stage_before(struct vs_alloc_stage *s);
/* by_arena: an arena served the block (else the driver did: the tag is only traced). */
void vs_alloc_stage_after(const struct vs_alloc_stage *s, bool by_arena);

/* Names for the allocation's trace event ("" for none; the strings live until exit). */
const char *vs_alloc_stage_name(const struct vs_alloc_stage *s);
const char *vs_alloc_tag_name(const struct vs_alloc_stage *s);

#endif
