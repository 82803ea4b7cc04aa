/* Which granules an eviction moves (evict.h "Unit"), and the order of stages.
 *
 * Invariants (arena.mu held): a demote candidate is a device slot overlapped by at least one
 * live block, every live block overlapping it selected (pending and idle parts of large blocks
 * move with it: they are handed out only under arena.mu, which the move holds, and a pending
 * block becoming idle there leaves the slot to vs_granules_sweep_host); a small-object segment
 * holding free objects is a candidate only where vs_evict_barrier works (else only when every
 * object in it is live: segment_full); a promote candidate is a
 * host slot a selected live block overlaps. Candidates are ordered by the age of the oldest stage
 * among their selected blocks, then by address.
 */
#include <linux/membarrier.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "allocator/internal.h"

static pthread_once_t barrier_once = PTHREAD_ONCE_INIT;
static atomic_bool barrier_ok;

static void barrier_register(void)
{
    atomic_store(&barrier_ok,
                 syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0);
}

bool vs_evict_barrier_works(void)
{
    pthread_once(&barrier_once, barrier_register);
    return atomic_load(&barrier_ok);
}

bool vs_evict_barrier(void)
{
    if (!vs_evict_barrier_works())
        return false;
    if (syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) == 0)
        return true;
    atomic_store(&barrier_ok, false); /* e.g. in a forked child: its registration is gone */
    return false;
}

void vs_slot_each_live(struct vs_arena *a, struct vs_reservation *r, size_t i,
                       void (*fn)(const struct vs_block_info *info, void *ctx), void *ctx)
{
    CUdeviceptr end = r->base + (i + 1) * a->gran;
    for (struct vs_block *b = r->slots[i].first; b && b->start < end; b = b->next) {
        if (b->state == VS_LIVE && b->req) {
            struct vs_block_info info = {b->start, b->req, b->stage, b->tag, b->stream};
            fn(&info, ctx);
            continue;
        }
        if (b->state != VS_PAGE)
            continue;
        /* A segment is exactly this slot; its pages are listed in the slot's page table. */
        _Atomic(struct vs_page *) *pages = atomic_load(&r->slots[i].pages);
        struct vs_page *last = NULL;
        for (size_t u = 0; pages && u < a->gran / VS_PAGE_MIN; u++) {
            struct vs_page *pg = atomic_load(&pages[u]);
            if (!pg || pg == last)
                continue;
            last = pg;
            for (unsigned j = 0; j < pg->nobj; j++) {
                struct vs_small_meta *m = &pg->meta[j];
                size_t req = atomic_load(&m->req); /* seq_cst: see claim() in evict_move.c */
                if (!req)
                    continue;
                struct vs_block_info info = {pg->base + j * pg->objsize, req, m->stage, m->tag,
                                             m->stream};
                fn(&info, ctx);
            }
        }
    }
}

/* Whether every object of every page in segment slot i is live. A free or pending object could
 * be handed out without arena.mu (class lists, stream lists, thread caches) and written while
 * its granule is being copied; without vs_evict_barrier nothing stops that, so only full
 * segments move. */
static bool segment_full(const struct vs_arena *a, const struct vs_reservation *r, size_t i)
{
    _Atomic(struct vs_page *) *pages = atomic_load(&r->slots[i].pages);
    for (size_t u = 0; pages && u < a->gran / VS_PAGE_MIN; u++) {
        struct vs_page *pg = atomic_load(&pages[u]);
        if (!pg || (u && pg == atomic_load(&pages[u - 1])))
            continue;
        for (unsigned j = 0; j < pg->nobj; j++)
            if (!atomic_load(&pg->meta[j].req)) /* seq_cst: see claim() in evict_move.c */
                return false;
    }
    return true;
}

struct scan {
    struct vs_arena *a;
    const struct vs_selection *sel;
    size_t live, selected;
    uint32_t age;
};

static void count(const struct vs_block_info *info, void *ctx)
{
    struct scan *sc = ctx;
    sc->live++;
    if (!sc->sel->pred(info, sc->sel->ctx))
        return;
    sc->selected++;
    uint32_t age = vs_stage_age(sc->a, info->stage);
    if (age < sc->age)
        sc->age = age;
}

static int by_age_then_address(const void *x, const void *y)
{
    const struct vs_move *p = x, *q = y;
    if (p->key != q->key)
        return p->key < q->key ? -1 : 1;
    if (p->r->base != q->r->base)
        return p->r->base < q->r->base ? -1 : 1;
    return (p->slot > q->slot) - (p->slot < q->slot);
}

bool vs_slot_candidate(struct vs_arena *a, struct vs_reservation *r, size_t i,
                       const struct vs_selection *sel, bool to_host, uint32_t *age)
{
    const struct vs_slot *s = &r->slots[i];
    if (!s->h || !s->busy || s->host == to_host)
        return false;
    if (to_host && sel->skip_promoted_in && s->promoted_in == sel->skip_promoted_in)
        return false;
    if (to_host && s->first && s->first->state == VS_PAGE && !vs_evict_barrier_works() &&
        !segment_full(a, r, i))
        return false;
    struct scan sc = {a, sel, 0, 0, UINT32_MAX};
    vs_slot_each_live(a, r, i, count, &sc);
    *age = sc.age;
    return sc.selected && (!to_host || sc.selected == sc.live);
}

CUresult vs_select_slots(struct vs_arena *a, const struct vs_selection *sel, bool to_host,
                         struct vs_move **out, size_t *n)
{
    struct vs_move *mv = NULL;
    size_t cap = 0;
    *n = 0;
    for (struct vs_reservation *r = a->res; r; r = r->next)
        for (size_t i = 0; i < r->nslots; i++) {
            uint32_t age;
            if (!vs_slot_candidate(a, r, i, sel, to_host, &age))
                continue;
            if (*n == cap) {
                cap = cap ? 2 * cap : 64;
                struct vs_move *bigger = realloc(mv, cap * sizeof *mv);
                if (!bigger) {
                    free(mv);
                    vs_log(VS_LOG_WARN, "evict: out of host memory listing granules to move");
                    return CUDA_ERROR_OUT_OF_MEMORY;
                }
                mv = bigger;
            }
            mv[(*n)++] = (struct vs_move){r, i, age};
        }
    vs_moves_sort(mv, *n);
    *out = mv;
    return CUDA_SUCCESS;
}

void vs_moves_sort(struct vs_move *mv, size_t n)
{
    if (n > 1)
        qsort(mv, n, sizeof *mv, by_age_then_address);
}

uint32_t vs_stage_age(const struct vs_arena *a, uint32_t stage)
{
    if (!stage)
        return 0;
    for (size_t i = 0; i < a->stage_order.n; i++)
        if (a->stage_order.v[i] == stage)
            return (uint32_t)i + 1;
    return UINT32_MAX - 1; /* never current here: younger than every stage that was */
}

void vs_stage_seen(struct vs_arena *a, uint32_t stage)
{
    if (stage && vs_stage_age(a, stage) == UINT32_MAX - 1 &&
        vs_vec_push(&a->stage_order, stage) != 0)
        vs_log(VS_LOG_WARN,
               "evict: out of host memory recording stage order; stage %u counts as newest", stage);
}
