/* Segments: granules set apart for small-object pages and carved into pages in VS_PAGE_MIN
 * units, so pages of every class share granules without pinning granules that large blocks
 * could use, and one class in use costs one small page, not a granule.
 *
 * Invariants (under arena.mu): a segment is one slot-aligned PAGE block of one granule, holding
 * pages of one group (small.c); bit i of
 * `used` is set exactly when unit i belongs to a page; a page of k units starts on a multiple of
 * k units; a segment whose last page goes is given back to the large blocks at once; the slot of
 * a segment has a page table (small.c) for as long as the arena lives.
 */
#include <stdlib.h>

#include "allocator/internal.h"

struct vs_segment {
    struct vs_block *block;
    unsigned group;                    /* every page in it is of this group */
    uint64_t used;
    struct vs_segment *next;
};

static uint64_t unit_mask(unsigned k)
{
    return k >= 64 ? ~0ull : ((1ull << k) - 1);
}

/* First free run of k units in s starting on a multiple of k, or -1. */
static int find_run(const struct vs_arena *a, const struct vs_segment *s, unsigned k)
{
    unsigned units = (unsigned)(a->gran / VS_PAGE_MIN);
    for (unsigned i = 0; i + k <= units; i += k)
        if (!(s->used & (unit_mask(k) << i)))
            return (int)i;
    return -1;
}

static CUresult new_segment(struct vs_arena *a, unsigned group, bool may_create,
                            struct vs_segment **out)
{
    struct vs_segment *s = calloc(1, sizeof *s);
    if (!s) {
        vs_log(VS_LOG_WARN, "arena: out of host memory for a segment");
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    CUresult err;
    struct vs_block *b = vs_large_alloc(a, a->gran, a->gran, may_create, NULL, &err);
    if (!b) {
        free(s);
        return err;
    }
    struct vs_slot *slot = &b->res->slots[vs_slot_of(a, b->res, b->start)];
    if (!atomic_load(&slot->pages)) {
        _Atomic(struct vs_page *) *pages = calloc(a->gran / VS_PAGE_MIN, sizeof *pages);
        if (!pages) {
            vs_large_make_idle(a, b);
            free(s);
            vs_log(VS_LOG_WARN, "arena: out of host memory for a page table");
            return CUDA_ERROR_OUT_OF_MEMORY;
        }
        atomic_store_explicit(&slot->pages, pages, memory_order_release);
    }
    b->state = VS_PAGE;
    s->block = b;
    s->group = group;
    s->next = a->segments;
    a->segments = s;
    *out = s;
    return CUDA_SUCCESS;
}

CUresult vs_segment_take(struct vs_arena *a, size_t psize, unsigned group, bool may_create,
                         struct vs_segment **seg, CUdeviceptr *at)
{
    unsigned k = (unsigned)(psize / VS_PAGE_MIN);
    struct vs_segment *best = NULL;
    int best_at = -1, best_free = 65;
    /* The fullest segment that has room, so the others can empty out and go back. */
    for (struct vs_segment *s = a->segments; s; s = s->next) {
        const struct vs_block *b = s->block;
        if (s->group != group)
            continue;
        if (b->res->slots[vs_slot_of(a, b->res, b->start)].host)
            continue; /* demoted: new pages there would live in host memory */
        int i = find_run(a, s, k), free_units = 64 - __builtin_popcountll(s->used);
        if (i >= 0 && free_units < best_free) {
            best = s;
            best_at = i;
            best_free = free_units;
        }
    }
    if (!best) {
        CUresult err = new_segment(a, group, may_create, &best);
        if (err != CUDA_SUCCESS)
            return err;
        best_at = 0;
    }
    best->used |= unit_mask(k) << best_at;
    *seg = best;
    *at = best->block->start + (size_t)best_at * VS_PAGE_MIN;
    return CUDA_SUCCESS;
}

void vs_segment_give(struct vs_arena *a, struct vs_segment *seg, CUdeviceptr at, size_t psize)
{
    unsigned first = (unsigned)((at - seg->block->start) / VS_PAGE_MIN);
    seg->used &= ~(unit_mask((unsigned)(psize / VS_PAGE_MIN)) << first);
    if (seg->used)
        return;
    for (struct vs_segment **p = &a->segments; *p; p = &(*p)->next)
        if (*p == seg) {
            *p = seg->next;
            break;
        }
    vs_large_make_idle(a, seg->block);
    free(seg);
}

size_t vs_segments_free_bytes(const struct vs_arena *a)
{
    size_t units = 0, per = a->gran / VS_PAGE_MIN;
    for (const struct vs_segment *s = a->segments; s; s = s->next)
        units += per - (size_t)__builtin_popcountll(s->used);
    return units * VS_PAGE_MIN;
}

void vs_segments_free_all(struct vs_arena *a)
{
    while (a->segments) {
        struct vs_segment *next = a->segments->next;
        free(a->segments);
        a->segments = next;
    }
}
