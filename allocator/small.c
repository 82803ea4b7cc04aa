/* Small requests (<= VS_SMALL_MAX): size classes packed into pages.
 *
 * Classes: multiples of 512 B up to 4 KiB, then 8 steps per power of two up to 256 KiB, so a
 * request wastes at most 1/8 of its size to rounding. Groups: the (stage, tag) of the request
 * (vs_small_group), so that the small objects of one stage or tag share granules only with each
 * other and a demote of that stage or tag can move them. A page holds objects of one class and
 * one group (a bucket): a power of two from VS_PAGE_MIN up to the granule (room for about 32
 * objects) carved from a segment of its group (segment.c) on a multiple of its size. An object
 * keeps the group it was allocated in when vs_arena_set_tag changes its tag. Its slot's `pages`
 * table (one entry per VS_PAGE_MIN) records it, so a pointer finds its page without locks.
 *
 * Invariants: an object is in at most one list (its class's idle list, a stream's pending list, a
 * thread cache, a group, the sync list or the parked list) and only while meta.req == 0; a page
 * is given back (its block made IDLE) only when all its objects are in the idle list, under
 * arena.mu and its class lock; an object whose slot is parking (moving or in host memory) is
 * never handed out: it waits in the parked list until the slot is on the device again.
 */
#include <stdlib.h>
#include <string.h>

#include "allocator/internal.h"
#include "allocator/vs_assert.h"

/* Pages sized to the bucket's demand: the first holds at least 4 objects, each further page of
 * the bucket twice as many as the one before, up to 32 (or the granule), so that a class with a
 * few live objects does not hold a granule of free ones. */
static size_t page_size(const struct vs_arena *a, size_t objsize, unsigned pages)
{
    size_t want = (size_t)4 << (pages < 3 ? pages : 3), p = VS_PAGE_MIN;
    while (p < want * objsize && p < a->gran)
        p <<= 1;
    return p;
}

/* Points the page table entries of pg's range at `to` (arena.mu held). */
static void set_entries(const struct vs_arena *a, struct vs_page *pg, struct vs_page *to)
{
    struct vs_reservation *r = vs_va_find(a, pg->base);
    for (size_t off = 0; off < pg->size; off += VS_PAGE_MIN)
        atomic_store_explicit(vs_small_page_entry(a, r, pg->base + off), to, memory_order_release);
}

unsigned vs_small_group_add(struct vs_arena *a, uint64_t key)
{
    pthread_mutex_lock(&a->group_mu);
    unsigned n = atomic_load_explicit(&a->ngroups, memory_order_relaxed), g = 1;
    while (g < n && a->group_key[g] != key)
        g++;
    if (g == n && n < VS_NGROUPS) {
        a->group_key[g] = key;
        atomic_store_explicit(&a->ngroups, n + 1, memory_order_release);
    }
    pthread_mutex_unlock(&a->group_mu);
    return g < VS_NGROUPS ? g : 0;
}

CUresult vs_small_refill(struct vs_arena *a, unsigned bucket, bool may_create)
{
    struct vs_class *c = &a->classes[bucket];
    size_t objsize = vs_small_class_size(vs_bucket_class(bucket)),
           psize = page_size(a, objsize, c->pages);
    unsigned nobj = (unsigned)(psize / objsize);
    size_t bytes = sizeof(struct vs_page) + nobj * sizeof(struct vs_small_meta);
    struct vs_page *pg = aligned_alloc(_Alignof(struct vs_page), bytes); /* bytes: a multiple */
    if (pg)
        memset(pg, 0, bytes);
    if (!pg) {
        vs_log(VS_LOG_WARN, "arena: out of host memory for a page of %zu-byte objects", objsize);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    struct vs_segment *seg;
    CUdeviceptr base;
    CUresult err = vs_segment_take(a, psize, vs_bucket_group(bucket), may_create, &seg, &base);
    if (err != CUDA_SUCCESS) {
        free(pg);
        return err;
    }
    struct vs_reservation *r = vs_va_find(a, base);
    *pg = (struct vs_page){.base = base, .size = psize, .segment = seg,
                           .slot = &r->slots[vs_slot_of(a, r, base)], .bucket = bucket,
                           .objsize = objsize, .nobj = nobj,
                           .inv = (((uint64_t)1 << 40) + objsize - 1) / objsize};
    /* Published before any object is listed: a pointer handed out always finds its page. */
    set_entries(a, pg, pg);
    c->pages++;
    pthread_mutex_lock(&c->mu);
    for (unsigned i = nobj; i-- > 0;)
        if (vs_vec_push(&c->idle, base + i * objsize) != 0)
            break; /* objects not listed are simply never handed out */
    pthread_mutex_unlock(&c->mu);
    return CUDA_SUCCESS;
}

static void release_page(struct vs_arena *a, struct vs_page *pg)
{
    a->classes[pg->bucket].pages--;
    set_entries(a, pg, NULL);
    vs_segment_give(a, pg->segment, pg->base, pg->size);
    free(pg);
}

static void return_parked(struct vs_arena *a, CUdeviceptr lo, CUdeviceptr hi);

/* Parked objects (of host slots: no move runs outside arena.mu) count as idle with `parked`, so
 * a demoted granule whose objects are all freed goes back even if requests met some of them. */
bool vs_small_release_empty_pages(struct vs_arena *a, bool parked)
{
    bool released = false;
    if (parked)
        return_parked(a, 0, (CUdeviceptr)-1);
    for (unsigned b = 0; b < VS_NBUCKETS; b++) {
        struct vs_class *c = &a->classes[b];
        pthread_mutex_lock(&c->mu);
        struct vs_vec empty = {0};
        for (size_t i = 0; i < c->idle.n; i++)
            vs_small_page_of(a, c->idle.v[i])->idle_count = 0;
        for (size_t i = 0; i < c->idle.n; i++) {
            struct vs_page *pg = vs_small_page_of(a, c->idle.v[i]);
            if (++pg->idle_count == pg->nobj && vs_vec_push(&empty, (uintptr_t)pg) != 0)
                pg->idle_count = 0; /* no host memory to list it: keep the page */
        }
        size_t keep = 0;
        for (size_t i = 0; i < c->idle.n; i++) {
            struct vs_page *pg = vs_small_page_of(a, c->idle.v[i]);
            if (pg->idle_count != pg->nobj)
                c->idle.v[keep++] = c->idle.v[i];
        }
        for (size_t i = 0; i < empty.n; i++)
            release_page(a, (struct vs_page *)empty.v[i]);
        released |= empty.n > 0;
        vs_vec_free(&empty);
        c->idle.n = keep;
        pthread_mutex_unlock(&c->mu);
    }
    return released;
}

/* Parks p when its slot is parking; false when the slot stopped parking meanwhile. */
static bool park(struct vs_arena *a, struct vs_slot *slot, CUdeviceptr p, struct vs_stream *origin)
{
    pthread_mutex_lock(&a->park_mu);
    bool parked = atomic_load(&slot->parking);
    if (parked && vs_vec_push2(&a->parked, p, (uintptr_t)origin) != 0)
        vs_log(VS_LOG_WARN, "arena: out of host memory; a freed block is lost to the arena");
    pthread_mutex_unlock(&a->park_mu);
    return parked;
}

bool vs_small_hand_out_parking(struct vs_arena *a, struct vs_page *pg, struct vs_small_meta *m,
                               CUdeviceptr p, size_t req, struct vs_stream *origin)
{
    for (;;) {
        if (park(a, pg->slot, p, origin))
            return false;
        atomic_store_explicit(&m->req, req, memory_order_release);
        atomic_signal_fence(memory_order_seq_cst);
        if (!atomic_load_explicit(&pg->slot->parking, memory_order_acquire))
            return true; /* acquire: as vs_small_try_hand_out */
        atomic_store_explicit(&m->req, 0, memory_order_relaxed);
    }
}

/* Returns the parked objects inside [lo, hi) where they came from: their stream's list, or the
 * class's idle list. A slot still parking parks them again at their next hand-out. */
static void return_parked(struct vs_arena *a, CUdeviceptr lo, CUdeviceptr hi)
{
    struct vs_vec back = {0};
    pthread_mutex_lock(&a->park_mu);
    size_t keep = 0;
    for (size_t k = 0; k < a->parked.n; k += 2) {
        CUdeviceptr p = a->parked.v[k];
        uintptr_t origin = a->parked.v[k + 1];
        if (p < lo || p >= hi) {
            a->parked.v[keep++] = p;
            a->parked.v[keep++] = origin;
        } else if (vs_vec_push2(&back, p, origin) != 0) {
            vs_log(VS_LOG_WARN, "arena: out of host memory; a freed block is lost to the arena");
        }
    }
    a->parked.n = keep;
    pthread_mutex_unlock(&a->park_mu);
    for (size_t k = 0; k < back.n; k += 2) {
        struct vs_stream *st = (struct vs_stream *)back.v[k + 1];
        struct vs_page *pg = vs_small_page_of(a, back.v[k]);
        if (!st) {
            vs_pending_release_small(a, back.v[k]);
            continue;
        }
        /* Reusable on its stream again, as before it was parked. */
        pthread_mutex_lock(&st->mu);
        bool listed = vs_stream_list(st, (int)pg->bucket, back.v[k], pg->objsize);
        pthread_mutex_unlock(&st->mu);
        if (!listed)
            vs_log(VS_LOG_WARN, "arena: out of host memory; a freed block is lost to the arena");
    }
    vs_vec_free(&back);
}

void vs_small_parked_synchronized(struct vs_arena *a)
{
    pthread_mutex_lock(&a->park_mu);
    for (size_t k = 1; k < a->parked.n; k += 2)
        a->parked.v[k] = (uintptr_t)NULL;
    pthread_mutex_unlock(&a->park_mu);
}

void vs_small_unpark(struct vs_arena *a, struct vs_reservation *r, size_t i)
{
    CUdeviceptr lo = r->base + i * a->gran;
    pthread_mutex_lock(&a->park_mu);
    atomic_store(&r->slots[i].parking, false);
    pthread_mutex_unlock(&a->park_mu);
    return_parked(a, lo, lo + a->gran);
}
