/* Stages and tags on the allocation path (see alloc_stage.h). */
#include "interpose/alloc_stage.h"

#include "allocator/arenas.h"
#include "interpose/borrow.h"
#include "interpose/runtime.h"
#include "interpose/stage.h"

void vs_alloc_stage_before(struct vs_alloc_stage *s)
{
    s->site = NULL;
    s->tag = 0;
    if (vs_rt_matches_sites()) {
        s->site = vs_site_capture_caller();
        uint32_t stage;
        vs_rt_match_site(s->site, &stage, &s->tag);
        vs_stage_begin_site(stage, s->site);
    }
    s->stage = vs_stage_current();
}

void vs_alloc_stage_after(const struct vs_alloc_stage *s, bool by_arena)
{
    if (!s->tag || !by_arena)
        return;
    const struct vs_policy_rule *r = vs_policy_rule_of(vs_rt_policy(), s->tag);
    if (r && (r->has_headroom || r->prefetch.n) &&
        vs_arenas_apply_rule(s->tag) == CUDA_ERROR_OUT_OF_MEMORY)
        vs_borrow_headroom(s->tag); /* the headroom is unmet */
}

static const char *name_of(uint32_t id)
{
    const char *s = id ? vs_names_str(vs_rt_names(), id) : NULL;
    return s ? s : "";
}

const char *vs_alloc_stage_name(const struct vs_alloc_stage *s)
{
    return name_of(s->stage);
}

const char *vs_alloc_tag_name(const struct vs_alloc_stage *s)
{
    return name_of(s->tag);
}
