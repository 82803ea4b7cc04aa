/* Call-site matching: which stage and tag rule a frame, or a chain of frames, selects.
 *
 * A frame's answer (the first rule of each kind, in file order, with a pattern matching any of
 * the frame's names, see frame.h) depends only on the frame string, so it is cached in the
 * policy's lock-free string table, packed as (tag rule + 1) << 32 | (stage rule + 1), 0 for
 * none. When the cache is full, answers are computed each time. */
#include <stdint.h>
#include <string.h>

#include "policy/frame.h"
#include "policy/internal.h"

#define VS_NO_RULE SIZE_MAX

struct vs_frame_scan {
    const struct vs_policy *p;
    size_t best[2]; /* by enum vs_rule_kind: index of the earliest matching rule */
};

static bool scan_name(void *ctx, const char *name, size_t len)
{
    struct vs_frame_scan *f = ctx;
    for (size_t i = 0; i < f->p->n_rules; i++) {
        const struct vs_rule *r = &f->p->rules[i];
        if (i >= f->best[r->pub.kind])
            continue;
        for (size_t j = 0; j < r->pub.n_match; j++)
            if (vs_pattern_match(&r->pats[j], name, len)) {
                f->best[r->pub.kind] = i;
                break;
            }
    }
    return false; /* later names may still match an earlier rule */
}

static uint64_t pack(const struct vs_frame_scan *f)
{
    uint64_t st = f->best[VS_RULE_STAGE] == VS_NO_RULE ? 0 : f->best[VS_RULE_STAGE] + 1;
    uint64_t tg = f->best[VS_RULE_TAG] == VS_NO_RULE ? 0 : f->best[VS_RULE_TAG] + 1;
    return tg << 32 | st;
}

static const struct vs_policy_rule *unpack(const struct vs_policy *p, uint64_t v,
                                           enum vs_rule_kind kind)
{
    uint32_t idx = kind == VS_RULE_STAGE ? (uint32_t)v : (uint32_t)(v >> 32);
    return idx ? &p->rules[idx - 1].pub : NULL;
}

static uint64_t frame_answer(const struct vs_policy *p, const char *frame)
{
    if (!p->has_matches || !frame)
        return 0;
    size_t len = strlen(frame);
    /* The cache is logically const: it only remembers answers. */
    struct vs_strtab *cache = (struct vs_strtab *)&p->cache;
    const struct vs_strtab_entry *e = vs_strtab_find(cache, frame, len, NULL);
    if (e)
        return e->value;
    struct vs_frame_scan f = {p, {VS_NO_RULE, VS_NO_RULE}};
    vs_frame_names(frame, scan_name, &f);
    uint64_t v = pack(&f);
    vs_strtab_insert(cache, frame, len, v, NULL);
    return v;
}

const struct vs_policy_rule *vs_policy_match_frame(const struct vs_policy *p, const char *frame,
                                                   enum vs_rule_kind kind)
{
    return unpack(p, frame_answer(p, frame), kind);
}

void vs_policy_match_frames(const struct vs_policy *p, const char *const *frames, size_t n,
                            struct vs_policy_match *out)
{
    *out = (struct vs_policy_match){0, 0, -1, -1};
    for (size_t i = 0; i < n && (out->stage_frame < 0 || out->tag_frame < 0); i++) {
        uint64_t v = frame_answer(p, frames[i]);
        const struct vs_policy_rule *st = unpack(p, v, VS_RULE_STAGE);
        const struct vs_policy_rule *tg = unpack(p, v, VS_RULE_TAG);
        if (st && out->stage_frame < 0) {
            out->stage = st->name;
            out->stage_frame = (int)i;
        }
        if (tg && out->tag_frame < 0) {
            out->tag = tg->name;
            out->tag_frame = (int)i;
        }
    }
}

const struct vs_policy_rule *vs_policy_match_function(const struct vs_policy *p,
                                                      const char *module, const char *qualname,
                                                      enum vs_rule_kind kind)
{
    if (!qualname || !p->has_matches)
        return NULL;
    struct vs_frame_scan f = {p, {VS_NO_RULE, VS_NO_RULE}};
    vs_function_names(module ? module : "", module ? strlen(module) : 0, qualname,
                      strlen(qualname), scan_name, &f);
    return unpack(p, pack(&f), kind);
}

struct vs_one_pattern {
    const struct vs_pattern *pat;
};

static bool scan_one(void *ctx, const char *name, size_t len)
{
    const struct vs_one_pattern *o = ctx;
    return vs_pattern_match(o->pat, name, len);
}

bool vs_policy_pattern_matches_frame(const struct vs_policy *p, size_t rule, size_t pattern,
                                     const char *frame)
{
    if (rule >= p->n_rules || pattern >= p->rules[rule].pub.n_match || !frame)
        return false;
    struct vs_one_pattern o = {&p->rules[rule].pats[pattern]};
    return vs_frame_names(frame, scan_one, &o);
}
