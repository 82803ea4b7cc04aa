/* Large blocks: VA-contiguous ranges of a reservation, backed by whichever granules are free.
 *
 * Invariants (under arena.mu):
 *  - the blocks of a reservation tile it exactly, in address order (prev/next), and no two IDLE
 *    blocks are neighbours (they merge);
 *  - every IDLE block is in exactly one free-list bin, floor(log2(size)); no other block is;
 *  - slot.first is the block containing the slot's first byte;
 *  - slot.busy counts the non-IDLE blocks overlapping the slot (granule.c keeps those mapped).
 *
 * Placement: among free runs that can hold the request (at their start, or at their first slot
 * boundary), take the one needing the fewest granules to be mapped, then the smallest; never
 * one overlapping a host (demoted) granule (more VA is reserved instead). A run is
 * an IDLE block, or for a request ordered on stream S also IDLE blocks next to blocks freed on S
 * and still listed there (stream order makes those safe for S).
 * Missing granules come from the cache, from free mapped slots elsewhere (stitching) or from the
 * driver, so a request fits whenever the free granules plus device memory cover it.
 */
#include <stdlib.h>

#include "allocator/internal.h"
#include "allocator/vs_assert.h"

static int bin_of(size_t size)
{
    return 63 - __builtin_clzll((unsigned long long)size);
}

void vs_free_index_insert(struct vs_arena *a, struct vs_block *b)
{
    vs_assert(b->size && b->size % VS_ALIGN == 0, "idle block of %zu bytes", b->size);
    b->state = VS_IDLE;
    b->bin = bin_of(b->size);
    b->fprev = NULL;
    b->fnext = a->bins[b->bin];
    if (b->fnext)
        b->fnext->fprev = b;
    a->bins[b->bin] = b;
}

static void free_index_remove(struct vs_arena *a, struct vs_block *b)
{
    if (b->fprev)
        b->fprev->fnext = b->fnext;
    else
        a->bins[b->bin] = b->fnext;
    if (b->fnext)
        b->fnext->fprev = b->fprev;
    b->fprev = b->fnext = NULL;
}

/* Points slot.first at b for every slot whose first byte lies in b. */
static void claim_slots(struct vs_arena *a, struct vs_block *b)
{
    struct vs_reservation *r = b->res;
    size_t lo = (b->start - r->base + a->gran - 1) / a->gran;
    size_t hi = (b->start + b->size - 1 - r->base) / a->gran;
    for (size_t i = lo; i <= hi && i < r->nslots; i++)
        r->slots[i].first = b;
}

void vs_large_init_reservation(struct vs_arena *a, struct vs_reservation *r,
                               struct vs_block *whole)
{
    whole->start = r->base;
    whole->size = r->size;
    whole->res = r;
    claim_slots(a, whole);
    vs_free_index_insert(a, whole);
}

/* Cuts b at offset off; returns the upper part, a new block in no list (NULL: no host memory). */
static struct vs_block *split(struct vs_arena *a, struct vs_block *b, size_t off)
{
    struct vs_block *nb = calloc(1, sizeof *nb);
    if (!nb)
        return NULL;
    nb->start = b->start + off;
    nb->size = b->size - off;
    nb->res = b->res;
    nb->prev = b;
    nb->next = b->next;
    if (b->next)
        b->next->prev = nb;
    b->next = nb;
    b->size = off;
    claim_slots(a, nb);
    return nb;
}

/* Absorbs b->next into b (both in no list). */
static void absorb_next(struct vs_arena *a, struct vs_block *b)
{
    struct vs_block *n = b->next;
    b->size += n->size;
    b->next = n->next;
    if (n->next)
        n->next->prev = b;
    free(n);
    claim_slots(a, b);
}

void vs_large_make_idle(struct vs_arena *a, struct vs_block *b)
{
    vs_granules_busy(a, b->res, b->start, b->size, -1);
    b->req = 0;
    if (b->next && b->next->state == VS_IDLE) {
        free_index_remove(a, b->next);
        absorb_next(a, b);
    }
    if (b->prev && b->prev->state == VS_IDLE) {
        struct vs_block *p = b->prev;
        free_index_remove(a, p);
        absorb_next(a, p);
        b = p;
    }
    vs_free_index_insert(a, b);
}

/* What placing a block on [p, p+size) costs: granules to map; SIZE_MAX where a granule is in
 * host memory (demoted): a new block never goes there, as a promote moving that granule (or
 * its host allocation) while the block's owner writes it would lose the writes. */
static size_t placement_cost(const struct vs_arena *a, const struct vs_reservation *r,
                             CUdeviceptr p, size_t size)
{
    size_t n = 0;
    for (size_t i = vs_slot_of(a, r, p), hi = vs_slot_of(a, r, p + size - 1); i <= hi; i++) {
        if (r->slots[i].host)
            return SIZE_MAX;
        n += r->slots[i].h == 0;
    }
    return n;
}

bool vs_large_in_host(const struct vs_arena *a, const struct vs_block *b)
{
    return placement_cost(a, b->res, b->start, b->size) == SIZE_MAX;
}

struct placement {
    struct vs_block *b;   /* first block of the free run */
    CUdeviceptr lo, hi;   /* the run */
    CUdeviceptr at;
    size_t cost;
};

static void consider(const struct vs_arena *a, struct placement *best, struct vs_block *b,
                     CUdeviceptr lo, CUdeviceptr hi, CUdeviceptr at, size_t size)
{
    if (at < lo || at + size > hi)
        return;
    size_t cost = placement_cost(a, b->res, at, size);
    if (cost == SIZE_MAX)
        return;
    if (!best->b || cost < best->cost ||
        (cost == best->cost && hi - lo < best->hi - best->lo))
        *best = (struct placement){b, lo, hi, at, cost};
}

/* Candidates: the run's start, and its first boundary of `align` (or, without one, of a slot:
 * where a block needs the fewest granules). */
static void consider_run(const struct vs_arena *a, struct placement *best, struct vs_block *b,
                         CUdeviceptr lo, CUdeviceptr hi, size_t size, size_t align)
{
    size_t step = align ? align : a->gran;
    CUdeviceptr up = b->res->base + (lo - b->res->base + step - 1) / step * step;
    if (!align)
        consider(a, best, b, lo, hi, lo, size);
    consider(a, best, b, lo, hi, up, size);
}

static struct placement place(const struct vs_arena *a, size_t size, size_t align)
{
    struct placement best = {0};
    for (int bin = bin_of(size); bin < 64; bin++)
        for (struct vs_block *b = a->bins[bin]; b; b = b->fnext) {
            if (b->size < size)
                continue;
            consider_run(a, &best, b, b->start, b->start + b->size, size, align);
            if (best.b && best.cost == 0 && best.b->size == size)
                return best;
        }
    return best;
}

/* A request ordered on st may use blocks freed on st (listed, or in a group whose event has not
 * completed yet), with the IDLE blocks around them: runs of such neighbours (st->mu held). */
static bool usable(const struct vs_block *b, const struct vs_stream *st)
{
    return b->state == VS_IDLE || (b->state == VS_PENDING && b->owner == st);
}

struct on_stream {
    const struct vs_arena *a;
    const struct vs_stream *st;
    struct placement best;
    size_t size;
};

/* The run of blocks usable on the stream around a block pending on it. */
static void consider_pending(struct vs_block *b, void *ctx)
{
    struct on_stream *os = ctx;
    struct vs_block *first = b, *last = b;
    while (first->prev && usable(first->prev, os->st))
        first = first->prev;
    while (last->next && usable(last->next, os->st))
        last = last->next;
    consider_run(os->a, &os->best, first, first->start, last->start + last->size, os->size, 0);
}

static struct placement place_on_stream(const struct vs_arena *a, struct vs_stream *st,
                                        size_t size)
{
    struct on_stream os = {a, st, {0}, size};
    vs_stream_each_large(st, consider_pending, &os);
    return os.best;
}

/* Takes b out of whatever lists it is in, as if idle (st->mu held for PENDING blocks). */
static void detach(struct vs_arena *a, struct vs_stream *st, struct vs_block *b)
{
    if (b->state == VS_IDLE) {
        free_index_remove(a, b);
        return;
    }
    vs_stream_unlist_large(a, st, b);
    vs_granules_busy(a, b->res, b->start, b->size, -1);
}

/* Gives a piece cut from a run back the state its block had. */
static void restore(struct vs_arena *a, struct vs_stream *st, struct vs_block *b,
                    enum vs_block_state state)
{
    if (state == VS_PENDING && vs_stream_list(st, -1, (uintptr_t)b, b->size)) {
        b->state = VS_PENDING;
        vs_granules_busy(a, b->res, b->start, b->size, +1);
    } else if (state == VS_PENDING) {
        /* No host memory to list it: it must not become idle early, so it joins the block. */
        vs_log(VS_LOG_WARN, "arena: out of host memory; a freed block stays allocated");
        b->state = VS_LIVE;
        b->req = 0;
        vs_granules_busy(a, b->res, b->start, b->size, +1);
    } else {
        vs_free_index_insert(a, b);
    }
}

/* Carves [at, at+size) out of the run starting at `first`: the blocks it overlaps merge into the
 * new block; the head and tail left over keep their states. */
static struct vs_block *carve_run(struct vs_arena *a, struct vs_stream *st,
                                  struct vs_block *first, CUdeviceptr at, size_t size)
{
    struct vs_block *f = first;
    while (f->start + f->size <= at)
        f = f->next;
    struct vs_block *l = f;
    while (l->start + l->size < at + size)
        l = l->next;
    enum vs_block_state fs = f->state, ls = l->state;
    CUdeviceptr end = l->start + l->size;
    for (struct vs_block *x = f;; x = x->next) {
        detach(a, st, x);
        if (x == l)
            break;
    }
    while (f->start + f->size < end)
        absorb_next(a, f);
    if (at > f->start) {
        struct vs_block *nb = split(a, f, at - f->start);
        if (!nb) {
            /* Keep it whole: still ordered on st (stricter than idle for its idle parts). */
            restore(a, st, f, st ? VS_PENDING : VS_IDLE);
            return NULL;
        }
        restore(a, st, f, fs);
        f = nb;
    }
    if (f->size > size) {
        struct vs_block *tail = split(a, f, size);
        if (tail)
            restore(a, st, tail, ls);
    }
    return f;
}

struct vs_block *vs_large_alloc(struct vs_arena *a, size_t size, size_t align,
                                bool may_create, struct vs_stream *st, CUresult *err)
{
    struct placement pl = place(a, size, align);
    bool on_stream = false;
    if (st && !align && (!pl.b || pl.cost > 0)) {
        pthread_mutex_lock(&st->mu);
        struct placement sp = place_on_stream(a, st, size);
        on_stream = sp.b && (!pl.b || sp.cost < pl.cost);
        if (on_stream)
            pl = sp;
        else
            pthread_mutex_unlock(&st->mu);
    }
    if (!pl.b) {
        *err = vs_va_grow(a, size);
        if (*err != CUDA_SUCCESS)
            return NULL;
        pl = place(a, size, align);
    }
    struct vs_reservation *r = pl.b->res;
    size_t lo = vs_slot_of(a, r, pl.at);
    *err = vs_granules_back(a, r, lo, vs_slot_of(a, r, pl.at + size - 1) - lo + 1,
                            may_create);
    struct vs_block *b = NULL;
    if (*err == CUDA_SUCCESS) {
        b = on_stream ? carve_run(a, st, pl.b, pl.at, size)
                      : carve_run(a, NULL, pl.b, pl.at, size);
        if (!b) {
            vs_log(VS_LOG_WARN, "arena: out of host memory for block metadata");
            *err = CUDA_ERROR_OUT_OF_MEMORY;
        }
    }
    if (on_stream)
        pthread_mutex_unlock(&st->mu);
    if (!b)
        return NULL;
    b->state = VS_LIVE;
    vs_granules_busy(a, r, b->start, b->size, +1);
    return b;
}

struct vs_block *vs_large_find(const struct vs_arena *a, CUdeviceptr p)
{
    struct vs_reservation *r = vs_va_find(a, p);
    if (!r)
        return NULL;
    struct vs_block *b = r->slots[vs_slot_of(a, r, p)].first;
    while (b && b->start + b->size <= p)
        b = b->next;
    return b;
}

size_t vs_large_partial_idle_bytes(const struct vs_arena *a)
{
    size_t bytes = 0;
    for (int bin = 0; bin < 64; bin++)
        for (struct vs_block *b = a->bins[bin]; b; b = b->fnext) {
            struct vs_reservation *r = b->res;
            CUdeviceptr end = b->start + b->size;
            for (size_t i = vs_slot_of(a, r, b->start); i <= vs_slot_of(a, r, end - 1); i++) {
                if (!r->slots[i].h || !r->slots[i].busy)
                    continue;
                CUdeviceptr s0 = r->base + i * a->gran, s1 = s0 + a->gran;
                bytes += (end < s1 ? end : s1) - (b->start > s0 ? b->start : s0);
            }
        }
    return bytes;
}
