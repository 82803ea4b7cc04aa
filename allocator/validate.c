/* The arena validator (arena.h): checks, under the arena's locks, the invariants the allocator's
 * files state, and describes the first one broken.
 *
 * Free small objects in other threads' caches are invisible here, so "every free object is in
 * exactly one list" is checked as "no object is in two lists, and every listed one is free".
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "allocator/internal.h"

struct check {
    struct vs_arena *a;
    char *buf;
    size_t len;
    bool bad;
    struct vs_vec objs; /* every listed free small object, to find duplicates */
    struct vs_vec blocks; /* every listed pending large block, likewise */
};

static bool fail(struct check *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool fail(struct check *c, const char *fmt, ...)
{
    if (!c->bad) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->buf, c->len, fmt, ap);
        va_end(ap);
        c->bad = true;
    }
    return false;
}

#define X(p) ((unsigned long long)(p))

/* Block tiling, free-list membership, slot.first, busy counts and slot accounting. */
struct live_sum {
    CUdeviceptr lo, hi;
    size_t bytes;
};

/* Counts each live block once: in the slot holding its first byte. */
static void add_live(const struct vs_block_info *info, void *ctx)
{
    struct live_sum *ls = ctx;
    if (info->base >= ls->lo && info->base < ls->hi)
        ls->bytes += info->size;
}

static bool check_blocks(struct check *c, size_t *idle_blocks, size_t *live)
{
    struct vs_arena *a = c->a;
    size_t mapped_free = 0, host_idle = 0, host = 0, device = 0;
    for (struct vs_reservation *r = a->res; r; r = r->next) {
        CUdeviceptr at = r->base;
        struct vs_block *prev = NULL;
        for (struct vs_block *b = r->nslots ? r->slots[0].first : NULL; b; prev = b, b = b->next) {
            if (b->res != r || b->start != at || b->prev != prev || !b->size ||
                b->size % VS_ALIGN || b->start + b->size > r->base + r->size)
                return fail(c, "block 0x%llx+%zu does not tile reservation 0x%llx at 0x%llx",
                            X(b->start), b->size, X(r->base), X(at));
            if (b->state == VS_IDLE && prev && prev->state == VS_IDLE)
                return fail(c, "idle blocks 0x%llx and 0x%llx are neighbours (not merged)",
                            X(prev->start), X(b->start));
            if (b->state == VS_IDLE)
                ++*idle_blocks;
            at = b->start + b->size;
        }
        if (at != r->base + r->size)
            return fail(c, "blocks of reservation 0x%llx end at 0x%llx, not at its end",
                        X(r->base), X(at));
        for (size_t i = 0; i < r->nslots; i++) {
            struct vs_slot *s = &r->slots[i];
            CUdeviceptr lo = r->base + i * a->gran, hi = lo + a->gran;
            if (!s->first || s->first->start > lo || s->first->start + s->first->size <= lo)
                return fail(c, "slot 0x%llx: first is not the block containing its first byte",
                            X(lo));
            uint32_t busy = 0;
            for (struct vs_block *b = s->first; b && b->start < hi; b = b->next)
                busy += b->state != VS_IDLE;
            if (busy != s->busy)
                return fail(c, "slot 0x%llx: busy %u, but %u non-idle blocks overlap it", X(lo),
                            s->busy, busy);
            if (s->busy && !s->h)
                return fail(c, "slot 0x%llx: busy but unmapped", X(lo));
            if (s->host && !atomic_load(&s->parking))
                return fail(c, "slot 0x%llx: in host memory but not parking", X(lo));
            if (!s->host && atomic_load(&s->parking))
                return fail(c, "slot 0x%llx: parking outside a move but on the device", X(lo));
            size_t ext_first, ext = s->host ? vs_host_extent(r, i, &ext_first) : 0;
            if (ext > VS_EVICT_BATCH) /* evict_host.c: moved as one piece, in one batch */
                return fail(c, "host allocation at 0x%llx spans %zu granules, more than a batch",
                            X(lo), ext);
            host += s->h && s->host;
            device += s->h && !s->host;
            mapped_free += s->h && !s->host && !s->busy;
            host_idle += s->h && s->host && !s->busy;
            struct live_sum ls = {lo, hi, 0};
            vs_slot_each_live(a, r, i, add_live, &ls);
            *live += ls.bytes;
        }
    }
    if (mapped_free != a->mapped_free)
        return fail(c, "mapped_free is %zu, but %zu mapped device slots are free", a->mapped_free,
                    mapped_free);
    if (host_idle != a->host_idle)
        return fail(c, "host_idle is %zu, but %zu host slots are free", a->host_idle, host_idle);
    if (host != a->host_granules)
        return fail(c, "host_granules is %zu, but %zu slots hold host memory", a->host_granules,
                    host);
    if (device + a->cached.n != a->granules)
        return fail(c, "granules is %zu, but %zu are mapped and %zu cached", a->granules, device,
                    a->cached.n);
    if (host && a->evict_state != VS_EVICT_ON)
        return fail(c, "%zu host granules mapped while eviction is not on", host);
    return true;
}

static bool check_bins(struct check *c, size_t idle_blocks)
{
    size_t n = 0;
    for (int bin = 0; bin < 64; bin++) {
        struct vs_block *prev = NULL;
        for (struct vs_block *b = c->a->bins[bin]; b; prev = b, b = b->fnext, n++)
            if (b->state != VS_IDLE || b->bin != bin || b->fprev != prev ||
                63 - __builtin_clzll((unsigned long long)b->size) != bin)
                return fail(c, "free-list bin %d holds block 0x%llx+%zu (state %d, bin %d)", bin,
                            X(b->start), b->size, (int)b->state, b->bin);
    }
    if (n != idle_blocks)
        return fail(c, "%zu idle blocks, but %zu in the free lists", idle_blocks, n);
    return true;
}

/* A listed free small object: the start of an object of a page, not live; its object size. */
/* bucket >= 0: the list is that bucket's. */
static size_t small_listed(struct check *c, CUdeviceptr p, int bucket, const char *where)
{
    struct vs_page *pg = vs_small_page_of(c->a, p);
    if (!pg || vs_small_index(pg, p) < 0)
        return fail(c, "%s lists 0x%llx, which is no small object", where, X(p)), 0;
    if (bucket >= 0 && pg->bucket != (unsigned)bucket)
        return fail(c, "%s of bucket %d lists 0x%llx of bucket %u", where, bucket, X(p),
                    pg->bucket), 0;
    if (atomic_load(&pg->meta[vs_small_index(pg, p)].req))
        return fail(c, "%s lists 0x%llx, which is live", where, X(p)), 0;
    if (vs_vec_push(&c->objs, p) != 0)
        return fail(c, "out of host memory validating"), 0;
    return pg->objsize;
}

static size_t large_listed(struct check *c, struct vs_block *b, struct vs_stream *owner,
                           bool in_group, const char *where)
{
    if (b->state != VS_PENDING || b->owner != owner || b->in_group != in_group)
        return fail(c, "%s lists block 0x%llx (state %d, owner %p, in_group %d)", where,
                    X(b->start), (int)b->state, (void *)b->owner, (int)b->in_group), 0;
    if (vs_vec_push(&c->blocks, (uintptr_t)b) != 0)
        return fail(c, "out of host memory validating"), 0;
    return b->size;
}

static size_t group_bytes(struct check *c, const struct vs_group *g, struct vs_stream *owner,
                          const char *where)
{
    size_t bytes = 0;
    for (size_t i = 0; i < g->small.n; i++)
        bytes += small_listed(c, g->small.v[i], -1, where);
    for (size_t i = 0; i < g->large.n; i++)
        bytes += large_listed(c, (struct vs_block *)g->large.v[i], owner, owner != NULL, where);
    return bytes;
}

/* Whether v (sorted here) holds an entry twice: that entry, else 0. */
static uintptr_t duplicate(struct vs_vec *v)
{
    if (v->n > 1)
        qsort(v->v, v->n, sizeof *v->v, vs_uintptr_cmp);
    for (size_t i = 1; i < v->n; i++)
        if (v->v[i] == v->v[i - 1])
            return v->v[i];
    return 0;
}

/* Stream lists and groups, the sync list, and a->pending (the invariants of streams.c). */
static bool check_pending(struct check *c)
{
    struct vs_arena *a = c->a;
    size_t grouped = 0;
    pthread_mutex_lock(&a->streams_mu);
    struct vs_stream *list = a->streams;
    pthread_mutex_unlock(&a->streams_mu);
    for (struct vs_stream *st = list; st && !c->bad; st = st->next) {
        pthread_mutex_lock(&st->mu);
        size_t bytes = 0, listed = st->large.n;
        for (unsigned k = 0; k < VS_NBUCKETS; k++) {
            listed += st->small[k].n;
            for (size_t i = 0; i < st->small[k].n; i++)
                bytes += small_listed(c, st->small[k].v[i], (int)k, "a stream's list");
        }
        for (size_t i = 0; i < st->large.n; i++)
            bytes += large_listed(c, (struct vs_block *)st->large.v[i], st, false,
                                  "a stream's list");
        for (struct vs_group *g = st->groups; g; g = g->next) {
            size_t gb = group_bytes(c, g, st, "a stream's group");
            if (gb != g->bytes)
                fail(c, "a group counts %zu bytes but lists %zu", g->bytes, gb);
            grouped += g->bytes;
        }
        if (bytes != st->pending_bytes)
            fail(c, "a stream counts %zu pending bytes but lists %zu", st->pending_bytes, bytes);
        if (listed != st->listed)
            fail(c, "a stream counts %u listed blocks but lists %zu", st->listed, listed);
        pthread_mutex_unlock(&st->mu);
    }
    pthread_mutex_lock(&a->sync_mu);
    struct vs_group sync = {.small = a->sync_small, .large = a->sync_large};
    size_t sb = group_bytes(c, &sync, NULL, "the sync list");
    if (sb != a->sync_bytes)
        fail(c, "sync_bytes is %zu but the sync list holds %zu", a->sync_bytes, sb);
    size_t pending = atomic_load(&a->pending);
    if (pending != grouped + a->sync_bytes)
        fail(c, "pending is %zu, but groups hold %zu and the sync list %zu", pending, grouped,
             a->sync_bytes);
    pthread_mutex_unlock(&a->sync_mu);
    uintptr_t twice = c->bad ? 0 : duplicate(&c->blocks);
    if (twice)
        fail(c, "pending block 0x%llx is listed twice", X(((struct vs_block *)twice)->start));
    return !c->bad;
}

/* Class idle lists, parked objects, duplicates. */
static bool check_small(struct check *c)
{
    struct vs_arena *a = c->a;
    for (unsigned k = 0; k < VS_NBUCKETS && !c->bad; k++) {
        pthread_mutex_lock(&a->classes[k].mu);
        for (size_t i = 0; i < a->classes[k].idle.n; i++)
            small_listed(c, a->classes[k].idle.v[i], (int)k, "a class's idle list");
        pthread_mutex_unlock(&a->classes[k].mu);
    }
    pthread_mutex_lock(&a->park_mu);
    for (size_t i = 0; i < a->parked.n && !c->bad; i += 2) {
        CUdeviceptr p = a->parked.v[i];
        small_listed(c, p, -1, "the parked list");
        struct vs_reservation *r = vs_va_find(a, p);
        if (r && !atomic_load(&r->slots[vs_slot_of(a, r, p)].parking))
            fail(c, "0x%llx is parked but its slot is not parking", X(p));
    }
    pthread_mutex_unlock(&a->park_mu);
    if (c->bad)
        return false;
    uintptr_t twice = duplicate(&c->objs);
    if (twice)
        return fail(c, "free object 0x%llx is listed twice", X(twice));
    return true;
}

const char *vs_arena_validate(struct vs_arena *a, char *buf, size_t len)
{
    struct check c = {a, buf, len, false, {0}, {0}};
    size_t idle_blocks = 0, live = 0, counted = vs_live_bytes(a);
    pthread_mutex_lock(&a->mu);
    if (check_blocks(&c, &idle_blocks, &live) && check_bins(&c, idle_blocks) &&
        check_pending(&c) && check_small(&c) && live != counted)
        fail(&c, "live is %zu, but live blocks and objects request %zu", counted, live);
    pthread_mutex_unlock(&a->mu);
    vs_vec_free(&c.objs);
    vs_vec_free(&c.blocks);
    return c.bad ? buf : NULL;
}
