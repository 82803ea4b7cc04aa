/* Arena internals shared by the allocator's files (not for other layers).
 *
 * Structure of one arena (one device):
 *  - reservations (va.c): VA chunks, each cut into granule-sized slots; a slot is mapped to one
 *    physical granule or unmapped.
 *  - blocks (large.c): every reservation is tiled, in address order, by blocks that are IDLE
 *    (free VA), LIVE (a large allocation), PENDING (freed, not yet safe to reuse) or PAGE (a
 *    segment: one granule carved into small-object pages, segment.c).
 *  - granules (granule.c): physical handles mapped into slots, plus a cache of unmapped ones.
 *  - small objects (small.c): size classes packed into PAGE blocks, kept apart by group (stage
 *    and tag); tcache.c keeps a few per thread.
 *  - streams (streams.c): blocks freed on a stream, reusable at once on that stream, and groups
 *    of them waiting for an event recorded on it.
 *
 * Locks, in the only order they nest: arena.mu -> stream.mu -> class.mu; arena.mu -> sync_mu;
 * ev_mu, streams_mu and park_mu are leaves; tcache.c's alive_mu is taken before any arena lock,
 * its reg_mu is a leaf. The cached fast paths take one stream.mu or one class.mu, or
 * none (tcache.c).
 */
#ifndef VS_ALLOCATOR_INTERNAL_H
#define VS_ALLOCATOR_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "allocator/arena.h"
#include "allocator/arenas.h"
#include "allocator/evict.h"
#include "allocator/log.h"
#include "allocator/vec.h"
#include "allocator/vs_assert.h"
#include "common/size.h"

#define VS_ALIGN 512u               /* every block starts and ends on this boundary */
#define VS_SMALL_MAX (256u << 10)   /* larger requests are VA-contiguous large blocks */
#define VS_NCLASSES 56
/* Small objects are kept apart by group (the stage and tag of their request, small.c): a page,
 * its segment and every list of free objects hold one (class, group) pair, a bucket. */
#define VS_NGROUPS 8
#define VS_NBUCKETS (VS_NCLASSES * VS_NGROUPS)
#define VS_PAGE_MIN (64u << 10)      /* smallest small-object page */
#define VS_STREAM_BATCH 64          /* blocks listed on a stream before an event covers them */
#define VS_EVICT_BATCH 32           /* granules moved per demote/promote transaction */
#define VS_HOST_CACHE_MAX ((size_t)1 << 30) /* unmapped host allocations kept for reuse */

enum vs_block_state { VS_IDLE, VS_LIVE, VS_PENDING, VS_PAGE };

struct vs_reservation;
struct vs_page;
struct vs_segment;
struct vs_stream;
struct vs_selection;

struct vs_block {
    CUdeviceptr start;
    size_t size;                       /* rounded bytes this block spans */
    struct vs_block *prev, *next;      /* address neighbours inside the reservation */
    struct vs_block *fprev, *fnext;    /* IDLE: free-list links */
    struct vs_reservation *res;
    enum vs_block_state state;
    int bin;                           /* IDLE: free-list bin */
    /* LIVE and PENDING: what the application asked for and when */
    size_t req;
    uint32_t stage, tag;
    CUstream stream;
    uint64_t id;
    /* Atomic: written under the owner stream's lock, read (as "is it mine?") by a request on
     * another stream while placing a block next to this one. */
    _Atomic(struct vs_stream *) owner; /* PENDING, freed on this stream, in its lists or one
                                        * of its groups (in_group); under its lock */
    bool in_group;
};

struct vs_slot {
    CUmemGenericAllocationHandle h;    /* 0: unmapped */
    bool host;                         /* h is host memory (demoted, evict.h) */
    uint32_t busy;                     /* non-IDLE blocks overlapping this slot */
    uint32_t promoted_in;              /* stage current when last promoted; 0 after going idle */
    /* Set (under arena.mu) while the slot is being moved or holds host memory: small objects
     * in it are parked instead of handed out (small.c), so no new owner writes them while a
     * move copies the granule. */
    atomic_bool parking;
    struct vs_block *first;            /* block containing the slot's first byte */
    /* Small-object pages in the slot, one entry per VS_PAGE_MIN of it (NULL until the slot
     * first holds a page; then kept until the arena goes). */
    _Atomic(struct vs_page *) *_Atomic pages;
};

struct vs_reservation {
    CUdeviceptr base;
    size_t size, nslots;
    struct vs_slot *slots;
    struct vs_reservation *next;
};

/* Written without a lock when the object is handed out (and the tag by vs_arena_set_tag), read
 * by eviction under arena.mu for objects it finds live, which another thread may be freeing and
 * reallocating meanwhile: hence atomics (relaxed writes; req publishes them). One cache line
 * each: the cached pair writes its object's metadata, and neighbouring objects of a page often
 * belong to other threads (false sharing: docs/arena.md, "Tests and benchmarks"). */
struct vs_small_meta {
    _Atomic size_t req;                /* 0: not live */
    _Atomic uint32_t stage, tag;
    _Atomic(CUstream) stream;
    uint64_t id;
} __attribute__((aligned(64)));

struct vs_page {
    CUdeviceptr base;
    size_t size;
    struct vs_segment *segment;
    struct vs_slot *slot;              /* the slot holding the page: pages never straddle slots */
    unsigned bucket;                   /* vs_bucket(class, group) */
    size_t objsize;
    unsigned nobj;
    uint64_t inv;                      /* ceil(2^40 / objsize): offsets divide by multiplying */
    unsigned idle_count;               /* scratch of vs_small_release_empty_pages */
    struct vs_small_meta meta[];
};

struct vs_class {
    pthread_mutex_t mu;
    struct vs_vec idle;                /* CUdeviceptr of objects reusable by anyone */
    uint64_t allocs;                   /* objects handed out from idle */
    unsigned pages;                    /* pages of this bucket (under arena.mu) */
} __attribute__((aligned(64)));

/* Blocks freed together and waiting for one event. */
struct vs_group {
    CUevent ev;
    struct vs_vec small;               /* CUdeviceptr */
    struct vs_vec large;               /* struct vs_block * */
    size_t bytes;
    struct vs_group *next;
};

struct vs_stream {
    _Atomic uintptr_t key;             /* stream handle, per-thread identity; 0: retired */
    CUstream handle;                   /* what the driver accepts from the owning thread */
    bool per_thread;
    pthread_t owner;                   /* per_thread: the only thread that may record on it */
    pthread_mutex_t mu;
    struct vs_vec small[VS_NBUCKETS];  /* freed here, no event yet: reusable on this stream */
    struct vs_vec large;               /* struct vs_block * */
    size_t pending_bytes;              /* rounded sizes of the listed blocks */
    uint64_t allocs, frees;            /* served from the lists; frees queued here */
    unsigned listed;                   /* blocks in small[] and large */
    struct vs_group *groups;           /* oldest first */
    struct vs_stream *next;            /* arena's list */
} __attribute__((aligned(64)));

struct vs_arena {
    const struct vs_driver *drv;
    uint64_t gen;                      /* unique per arena ever created */
    CUdevice dev;
    int ordinal;
    CUcontext ctx;
    struct vs_arena_options opt;
    size_t gran;                       /* a power of two */
    unsigned gran_shift;
    size_t total;                      /* device memory */
    CUmemAllocationProp prop;
    CUmemAccessDesc access;

    pthread_mutex_t mu;                /* VA, slots, blocks, granules, pages */
    struct vs_reservation *res;
    struct vs_block *bins[64];         /* IDLE blocks by floor(log2(size)) */
    struct vs_vec cached;              /* unmapped granule handles */
    size_t mapped_free;                /* mapped slots with busy == 0 */
    _Atomic size_t granules;           /* handles held (mapped + cached); written under mu,
                                        * read lock-free by the trace (vs_arena_reserved) */
    struct vs_segment *segments;       /* granules carved into small-object pages */

    struct vs_class classes[VS_NBUCKETS]; /* by bucket */
    /* Groups of small objects (small.c): group g > 0 is the (stage << 32 | tag) in group_key[g];
     * entries below ngroups are written once, under group_mu (a leaf), before ngroups. */
    uint64_t group_key[VS_NGROUPS];
    _Atomic unsigned ngroups;
    pthread_mutex_t group_mu;

    pthread_mutex_t streams_mu;
    struct vs_stream *streams;

    pthread_mutex_t sync_mu;           /* synchronously freed, waiting for a device sync */
    struct vs_vec sync_small, sync_large;
    size_t sync_bytes;
    uint64_t sync_frees;
    uint64_t large_allocs;             /* under mu */

    pthread_mutex_t ev_mu;
    struct vs_vec events;              /* idle CUevents */

    pthread_mutex_t park_mu;           /* free small objects of parking slots (small.c): pairs */
    struct vs_vec parked;              /* (object, stream it is reusable on or 0 for any) */

    /* eviction (evict*.c), under mu */
    enum vs_evict_state evict_state;
    CUmemAllocationProp host_prop;     /* host-NUMA granules */
    size_t host_granules;              /* host handles mapped in slots */
    size_t host_idle;                  /* of those, slots with busy == 0 (released lazily) */
    struct vs_vec host_refused;        /* unmapped host handles the driver refused to release */
    struct vs_vec host_cache;          /* unmapped host allocations: (handle, granules) pairs */
    size_t host_cached;                /* granules in host_cache */
    CUdeviceptr staging;               /* VS_EVICT_BATCH granules of VA for copies; 0: none */
    uint64_t demotes, promotes;        /* granules moved */
    struct vs_vec stage_order;         /* stage ids in the order they were first set */
    /* Counters touched by the cached paths live under the lock those paths already hold; only
     * live and its peak are shared atomics. live also counts the thread caches' credit (bytes
     * their threads freed, kept to cover their next allocations: tcache.c), so the true live
     * bytes are vs_live_bytes. pending counts groups and the sync list; blocks listed on
     * streams are in their pending_bytes (vs_pending_total sums both). */
    _Atomic size_t live, peak_live, pending;
    struct vs_tcache *tcaches;         /* thread caches bound to this arena (tcache.c) */
    _Atomic uint64_t ooms, syncs;
    size_t peak_physical;
    atomic_flag bad_free_logged;
    bool no_tcache;                    /* no host memory to track it: no thread caches */
};

/* ctx.c: run driver calls with the arena's context current */
bool vs_ctx_enter(struct vs_arena *a, CUcontext *saved);
void vs_ctx_leave(struct vs_arena *a, bool switched, CUcontext saved);

/* va.c (the look-ups are inline: every small alloc and free makes them) */
static inline struct vs_reservation *vs_va_find(const struct vs_arena *a, CUdeviceptr p)
{
    for (struct vs_reservation *r = __atomic_load_n(&a->res, __ATOMIC_ACQUIRE); r; r = r->next)
        if (p >= r->base && p - r->base < r->size)
            return r;
    return NULL;
}
CUresult vs_va_grow(struct vs_arena *a, size_t min_size);
void vs_va_release_all(struct vs_arena *a);
static inline size_t vs_slot_of(const struct vs_arena *a, const struct vs_reservation *r,
                                CUdeviceptr p)
{
    return (size_t)(p - r->base) >> a->gran_shift;
}

/* granule.c */
/* Maps every unmapped slot of [first, first+count); may_create false: only from free granules
 * (CUDA_ERROR_OUT_OF_MEMORY, nothing done, when they do not suffice). */
CUresult vs_granules_back(struct vs_arena *a, struct vs_reservation *r, size_t first,
                          size_t count, bool may_create);
void vs_granules_busy(struct vs_arena *a, struct vs_reservation *r, CUdeviceptr start,
                      size_t size, int delta);
size_t vs_granules_free_bytes(const struct vs_arena *a);
/* Gives free device granules (cached ones first, the most recently freed first) and host
 * memory kept for reuse back to the driver until each is at most `keep` bytes; a refused
 * release stops it (the granule stays cached, one line). _device: the device granules only. */
void vs_granules_trim(struct vs_arena *a, size_t keep);
void vs_granules_trim_device(struct vs_arena *a, size_t keep);
void vs_granules_release_all(struct vs_arena *a);

/* large.c */
/* A block of `size` bytes, starting on a multiple of `align` (a power of two up to the granule;
 * 0: VS_ALIGN). st != NULL: the request is ordered on st, so blocks freed on st and still listed
 * there may be part of it. */
struct vs_block *vs_large_alloc(struct vs_arena *a, size_t size, size_t align,
                                bool may_create, struct vs_stream *st, CUresult *err);
void vs_large_make_idle(struct vs_arena *a, struct vs_block *b);
/* Whether b overlaps a host (demoted) slot: no new block may be placed there (large.c). */
bool vs_large_in_host(const struct vs_arena *a, const struct vs_block *b);
struct vs_block *vs_large_find(const struct vs_arena *a, CUdeviceptr p);
void vs_large_init_reservation(struct vs_arena *a, struct vs_reservation *r,
                               struct vs_block *whole);
void vs_free_index_insert(struct vs_arena *a, struct vs_block *b);
size_t vs_large_partial_idle_bytes(const struct vs_arena *a);

/* small.c (the look-ups are inline: every small alloc and free makes them) */
static inline unsigned vs_bucket(unsigned cls, unsigned group)
{
    return group * VS_NCLASSES + cls;
}
static inline unsigned vs_bucket_class(unsigned bucket)
{
    return bucket % VS_NCLASSES;
}
static inline unsigned vs_bucket_group(unsigned bucket)
{
    return bucket / VS_NCLASSES;
}
unsigned vs_small_group_add(struct vs_arena *a, uint64_t key);
/* The group of a small request made in `stage` with `tag`: its own for the first
 * VS_NGROUPS - 1 pairs other than (0, 0) the arena meets; group 0 for (0, 0) and every later
 * pair. */
static inline unsigned vs_small_group(struct vs_arena *a, uint32_t stage, uint32_t tag);
/* vs_small_group when it adds no group: -1 when the pair has none yet. */
static inline int vs_small_group_known(struct vs_arena *a, uint32_t stage, uint32_t tag)
{
    uint64_t key = (uint64_t)stage << 32 | tag;
    if (!key)
        return 0;
    unsigned n = atomic_load_explicit(&a->ngroups, memory_order_acquire);
    for (unsigned g = 1; g < n; g++)
        if (a->group_key[g] == key)
            return (int)g;
    return n == VS_NGROUPS ? 0 : -1;
}
static inline unsigned vs_small_group(struct vs_arena *a, uint32_t stage, uint32_t tag)
{
    int g = vs_small_group_known(a, stage, tag);
    return g >= 0 ? (unsigned)g : vs_small_group_add(a, (uint64_t)stage << 32 | tag);
}

static inline int vs_small_class(size_t size)
{
    if (size > VS_SMALL_MAX)
        return -1;
    if (size <= 4096)
        return size ? (int)((size + 511) / 512) - 1 : 0;
    int e = 63 - __builtin_clzll((unsigned long long)(size - 1));
    size_t step = (size_t)1 << (e - 3);
    return 8 + (e - 12) * 8 + (int)((size - ((size_t)1 << e) + step - 1) / step) - 1;
}

static inline size_t vs_small_class_size(unsigned cls)
{
    if (cls < 8)
        return (cls + 1) * 512;
    unsigned j = cls - 8, e = 12 + j / 8;
    return ((size_t)1 << e) + (j % 8 + 1) * ((size_t)1 << (e - 3));
}

/* The entry of p in its slot's page table, or NULL when the slot never held a page. */
static inline _Atomic(struct vs_page *) *vs_small_page_entry(const struct vs_arena *a,
                                                             const struct vs_reservation *r,
                                                             CUdeviceptr p)
{
    _Atomic(struct vs_page *) *pages =
        atomic_load_explicit(&r->slots[vs_slot_of(a, r, p)].pages, memory_order_acquire);
    return pages ? &pages[((p - r->base) & (a->gran - 1)) / VS_PAGE_MIN] : NULL;
}

static inline struct vs_page *vs_small_page_of(const struct vs_arena *a, CUdeviceptr p)
{
    struct vs_reservation *r = vs_va_find(a, p);
    _Atomic(struct vs_page *) *e = r ? vs_small_page_entry(a, r, p) : NULL;
    return e ? atomic_load_explicit(e, memory_order_acquire) : NULL;
}

/* Index of the object containing p (p inside the page). */
static inline size_t vs_small_containing(const struct vs_page *pg, CUdeviceptr p)
{
    return (size_t)(((p - pg->base) * pg->inv) >> 40);
}

/* Index of the object starting at p in pg, or -1 when p is not an object's start. Offsets are
 * below 2^21 and sizes at most 2^18, so the 2^40 reciprocal divides exactly. */
static inline long vs_small_index(const struct vs_page *pg, CUdeviceptr p)
{
    size_t idx = vs_small_containing(pg, p);
    if (p < pg->base || idx >= pg->nobj || pg->base + idx * pg->objsize != p)
        return -1;
    return (long)idx;
}
CUresult vs_small_refill(struct vs_arena *a, unsigned bucket, bool may_create);
/* Gives pages whose objects are all idle back to their segments (arena.mu held); true when it
 * gave any. parked: parked objects first go back to their lists (and count as idle), which
 * makes them reachable again: a request that met them parks them again. */
bool vs_small_release_empty_pages(struct vs_arena *a, bool parked);
/* query.c: a new allocation id (the thread's number and its count) */
uint64_t vs_new_id(void);
/* The slot of the object at m (page pg, not live) was parking when it was made live: parks it
 * (false), or makes it live if the slot stopped parking meanwhile (true). */
bool vs_small_hand_out_parking(struct vs_arena *a, struct vs_page *pg, struct vs_small_meta *m,
                               CUdeviceptr p, size_t req, struct vs_stream *origin);
/* Makes the free object at m of page pg live for the caller, with tag `tag`, unless its slot is
 * parking: then m is left not live (false). No call: the cached pair's hand-out. */
static inline bool vs_small_try_hand_out(struct vs_page *pg, struct vs_small_meta *m, size_t req,
                                         CUstream s, uint32_t tag)
{
    /* Published by the release store of req below. */
    atomic_store_explicit(&m->stage, vs_arenas_stage(), memory_order_relaxed);
    atomic_store_explicit(&m->tag, tag, memory_order_relaxed);
    atomic_store_explicit(&m->stream, s, memory_order_relaxed);
    m->id = vs_new_id();
    /* Live first, then the check of `parking`: a move sets `parking`, runs vs_evict_barrier,
     * then reads every object's req (evict_move.c), so either it sees this object live (and
     * decides with its stage and tag) or this sees the slot parking and takes the object back.
     * The compiler fence is the light side of that asymmetric barrier. Acquire: a slot seen
     * not parking was unparked after its move (release), so the caller's writes to the object
     * follow the move's remap. */
    atomic_store_explicit(&m->req, req, memory_order_release);
    atomic_signal_fence(memory_order_seq_cst);
    if (!atomic_load_explicit(&pg->slot->parking, memory_order_acquire))
        return true;
    atomic_store_explicit(&m->req, 0, memory_order_relaxed);
    return false;
}
/* Makes the free object p of page pg live for the caller, with tag `tag`, unless its slot is
 * parking: then p is parked (to be reusable again on `origin`, NULL: anywhere, once the slot is
 * back on the device) and the caller must take another object. */
static inline bool vs_small_hand_out(struct vs_arena *a, struct vs_page *pg, CUdeviceptr p,
                                     size_t req, CUstream s, struct vs_stream *origin,
                                     uint32_t tag)
{
    struct vs_small_meta *m = &pg->meta[vs_small_containing(pg, p)];
    vs_assert(!atomic_load_explicit(&m->req, memory_order_relaxed),
              "object 0x%llx handed out while live", (unsigned long long)p);
    return vs_small_try_hand_out(pg, m, req, s, tag) ||
           vs_small_hand_out_parking(a, pg, m, p, req, origin);
}
/* The device synchronised (arena.mu held): no stream's work uses a parked object any more, so
 * each goes back to its class's idle list, not to the stream it was freed on (which would count
 * it pending again after the synchronisation). */
void vs_small_parked_synchronized(struct vs_arena *a);
/* Slot i of r stops parking (arena.mu held): its parked objects go back where they came from. */
void vs_small_unpark(struct vs_arena *a, struct vs_reservation *r, size_t i);

/* segment.c */
/* A run of psize bytes in a segment of `group` (segments hold the pages of one group). */
CUresult vs_segment_take(struct vs_arena *a, size_t psize, unsigned group, bool may_create,
                         struct vs_segment **seg, CUdeviceptr *at);
void vs_segment_give(struct vs_arena *a, struct vs_segment *seg, CUdeviceptr at, size_t psize);
size_t vs_segments_free_bytes(const struct vs_arena *a);
void vs_segments_free_all(struct vs_arena *a);

/* query.c */
bool vs_live_info(struct vs_arena *a, CUdeviceptr p, struct vs_block_info *info, uint64_t *id);

/* streams.c: the only file that edits a stream's lists (its invariants are stated there).
 * "st->mu held": the caller holds it, around a sequence of such calls; the others take it. */
/* The stream of handle s, made on first use; NULL when out of host memory. The calling thread's
 * last answer is kept by the raw handle (a thread's CU_STREAM_PER_THREAD is always its own
 * stream), so the stream-ordered pair's two look-ups are a few compares, no call. */
struct vs_stream_last {
    const struct vs_arena *a;
    uint64_t gen;
    CUstream handle;
    uintptr_t key;                     /* st's key when found: differs once st is retired */
    struct vs_stream *st;
};
extern _Thread_local struct vs_stream_last vs_stream_last
    __attribute__((tls_model("initial-exec")));
struct vs_stream *vs_stream_find(struct vs_arena *a, CUstream s);
static inline struct vs_stream *vs_stream_get(struct vs_arena *a, CUstream s)
{
    const struct vs_stream_last *l = &vs_stream_last;
    if (l->a == a && l->gen == a->gen && l->handle == s &&
        atomic_load_explicit(&l->st->key, memory_order_relaxed) == l->key)
        return l->st;
    return vs_stream_find(a, s);
}
/* The stream's handle was destroyed: no later stream with that handle matches st. */
void vs_stream_retire(struct vs_arena *a, struct vs_stream *st);
/* Lists one freed item on st (st->mu held): a small object of bucket `bucket`, or a large block
 * (bucket < 0, its address in item), which st then owns. False: no host memory; nothing listed. */
bool vs_stream_list(struct vs_stream *st, int bucket, uintptr_t item, size_t bytes);
/* Adds to st's counts of allocations served from and frees queued on its lists (st->mu held).
 * True when enough blocks are listed that an event should cover them: call vs_stream_record
 * once st->mu is released. */
bool vs_stream_count(struct vs_stream *st, uint64_t allocs, uint64_t frees);
/* A free on st: vs_stream_list, counted, then vs_stream_record at VS_STREAM_BATCH. False: not
 * listed (no host memory); the item is still the caller's. */
bool vs_stream_put(struct vs_arena *a, struct vs_stream *st, int bucket, uintptr_t item,
                   size_t bytes);
/* An object of the bucket listed on st, for a request ordered on st. */
bool vs_stream_take_small(struct vs_stream *st, unsigned bucket, CUdeviceptr *p);
/* A large block listed on st that holds `size` bytes wasting at most 1/8 and is on the device
 * (vs_large_in_host), unlisted (still VS_PENDING: the caller, holding arena.mu, makes it live);
 * NULL: none. */
struct vs_block *vs_stream_take_large(const struct vs_arena *a, struct vs_stream *st, size_t size);
/* Takes b, pending on st (listed, or in one of its groups), out of st (st->mu and arena.mu
 * held); its state is the caller's to change. */
void vs_stream_unlist_large(struct vs_arena *a, struct vs_stream *st, struct vs_block *b);
/* Calls fn for every large block pending on st, listed first, then group by group, oldest
 * first (st->mu held). */
void vs_stream_each_large(const struct vs_stream *st, void (*fn)(struct vs_block *b, void *ctx),
                          void *ctx);
void vs_stream_record(struct vs_arena *a, struct vs_stream *st);
size_t vs_streams_poll(struct vs_arena *a, bool record_all);
void vs_streams_all_idle(struct vs_arena *a);
void vs_pending_release_small(struct vs_arena *a, CUdeviceptr p);
void vs_streams_destroy(struct vs_arena *a);
size_t vs_pending_total(struct vs_arena *a);
CUevent vs_event_get(struct vs_arena *a);
void vs_event_put(struct vs_arena *a, CUevent ev);

/* tcache.c: per-thread cache of small objects freed on one stream */
void vs_tcache_arena_born(struct vs_arena *a);
void vs_tcache_arena_dies(struct vs_arena *a);
/* The cached pair, whole: vs_tcache_free caches the small object p of page pg that the caller
 * just made not live (req bytes) as freed on stream s, and accounts for it; false when it cannot
 * (the caller lists and accounts it). vs_tcache_alloc hands out (vs_small_hand_out) an object of
 * class cls and group `group` cached for stream s and accounts for it; false when it has none. */
bool vs_tcache_free(struct vs_arena *a, CUstream s, struct vs_page *pg, CUdeviceptr p, size_t req);
/* vs_tcache_free when it needs no call (no look-up, flush or accounting beyond the credit);
 * false otherwise, with nothing done. */
bool vs_tcache_cache(struct vs_arena *a, CUstream s, struct vs_page *pg, CUdeviceptr p, size_t req);
bool vs_tcache_alloc(struct vs_arena *a, CUstream s, unsigned cls, unsigned group, size_t req,
                     uint32_t tag, CUdeviceptr *p);
/* vs_tcache_alloc when it needs no call (no look-up, parking, accounting beyond the credit);
 * false otherwise, with nothing handed out. */
bool vs_tcache_take(struct vs_arena *a, CUstream s, unsigned cls, unsigned group, size_t req,
                    uint32_t tag, CUdeviceptr *p);
void vs_tcache_flush(struct vs_arena *a, struct vs_stream *st);
/* The calling thread's credit in a: keeps `req` freed bytes (returns the part it cannot keep),
 * or pays for `req` allocated bytes (returns the part it could not pay). */
size_t vs_tcache_keep_credit(struct vs_arena *a, size_t req);
size_t vs_tcache_use_credit(struct vs_arena *a, size_t req);
size_t vs_tcache_credits(struct vs_arena *a);

/* reclaim.c: pressure ladder and the out-of-memory report (arena.mu held) */
enum vs_reclaim_level {
    VS_RECLAIM_POLL,   /* groups whose events completed become idle */
    VS_RECLAIM_RECORD, /* also record events for every stream's pending blocks first */
    VS_RECLAIM_SYNC,   /* wait for the device: every freed block becomes idle */
};
bool vs_reclaim(struct vs_arena *a, enum vs_reclaim_level level);
void vs_oom_report(struct vs_arena *a, size_t requested);

/* granule.c, for eviction */
/* Takes `need` device granules: cached ones, free mapped slots (except [first, first+count) of
 * skip), then new ones when may_create; the last *created of h are new. On failure returns the
 * error with nothing taken. */
CUresult vs_granules_take(struct vs_arena *a, struct vs_reservation *skip, size_t first,
                          size_t count, size_t need, bool may_create,
                          CUmemGenericAllocationHandle *h, size_t *created);
/* Gives back n unused taken granules: the last `created` to the driver, the others to the
 * cache. */
void vs_granules_untake(struct vs_arena *a, const CUmemGenericAllocationHandle *h, size_t n,
                        size_t created);

/* evict_host.c: host allocations of demoted memory (arena.mu held) */
/* Unmaps host allocations no block overlaps any more (into the host cache), and retries the
 * releases the driver refused before. */
void vs_granules_sweep_host(struct vs_arena *a);
/* Releases an unmapped host handle; one the driver refuses is kept for the next sweep. */
void vs_host_release(struct vs_arena *a, CUmemGenericAllocationHandle h);
/* The extent of the host allocation mapped at host slot i of r: its first slot and length. */
size_t vs_host_extent(const struct vs_reservation *r, size_t i, size_t *first);
/* A host allocation of n granules: from the cache (*fresh false) or created. */
CUresult vs_host_get(struct vs_arena *a, size_t n, CUmemGenericAllocationHandle *h, bool *fresh);
/* Keeps an unmapped host allocation of n granules for reuse, or releases it over the cap. */
void vs_host_cache_put(struct vs_arena *a, CUmemGenericAllocationHandle h, size_t n);
void vs_host_cache_trim(struct vs_arena *a, size_t keep);
/* At destruction: unmaps and releases every host allocation, mapped or cached. */
void vs_host_release_all(struct vs_arena *a);

/* evict_move.c: moving granules between device and host memory (arena.mu held) */
struct vs_move {
    struct vs_reservation *r;
    size_t slot;
    uint32_t key;                      /* ordering: age of the oldest stage in the slot */
};
bool vs_evict_probe(struct vs_arena *a);
/* Moves the n slots of mv (selected by sel) in batches. A demote first sets each slot parking
 * and drops those that stopped being candidates; mv is compacted so that its first
 * *moved / gran entries are the slots moved. */
CUresult vs_evict_move(struct vs_arena *a, struct vs_move *mv, size_t n, bool to_host,
                       const struct vs_selection *sel, size_t *moved);
void vs_evict_release(struct vs_arena *a);

/* evict_select.c: which granules a selection moves (arena.mu held) */
struct vs_selection {
    vs_block_pred pred;
    void *ctx;
    uint32_t skip_promoted_in;         /* non-zero: slots promoted in this stage do not move */
};
/* Demote candidates (every block overlapping the slot selected) or promote candidates (a
 * selected block touches a host slot), ordered oldest stage first. *out: malloc'ed or NULL. */
CUresult vs_select_slots(struct vs_arena *a, const struct vs_selection *sel, bool to_host,
                         struct vs_move **out, size_t *n);
/* The heavy side of the small-object hand-out's asymmetric barrier (small.c): every thread of
 * the process runs a full memory barrier before it returns (expedited membarrier). False where
 * the kernel cannot; vs_evict_barrier_works is then false from that call on, and a small-object
 * segment moves only when every object in it is live. */
bool vs_evict_barrier(void);
bool vs_evict_barrier_works(void);
/* Whether slot i of r is a candidate now; *age: the age of its oldest selected stage. */
bool vs_slot_candidate(struct vs_arena *a, struct vs_reservation *r, size_t i,
                       const struct vs_selection *sel, bool to_host, uint32_t *age);
/* Calls fn for every live block (large block, small object) overlapping slot i of r. */
void vs_slot_each_live(struct vs_arena *a, struct vs_reservation *r, size_t i,
                       void (*fn)(const struct vs_block_info *info, void *ctx), void *ctx);
/* Sorts by key, then address. */
void vs_moves_sort(struct vs_move *mv, size_t n);
/* Position of a stage in the arena's first-set order (1-based; 0 for no stage). */
uint32_t vs_stage_age(const struct vs_arena *a, uint32_t stage);
void vs_stage_seen(struct vs_arena *a, uint32_t stage);

/* evict_stats.c: after an out-of-memory report (arena.mu held): one "hint:" line when stages other
 * than the current one hold enough device memory to cover `missing` bytes, naming them and the
 * `evict` line a policy would need. Nothing when there is no current stage or eviction is off. */
void vs_oom_hint(struct vs_arena *a, size_t missing);
/* evict.c: the pressure step of the slow path (arena.mu held, context entered). True when it
 * moved something, so the request is worth retrying. */
bool vs_evict_pressure(struct vs_arena *a, size_t need);
/* Emits one demote/promote trace event per selected block of the n moved slots (evict.c). */
void vs_evict_trace(struct vs_arena *a, const struct vs_move *mv, size_t n, bool to_host,
                    const struct vs_selection *sel, const char *api);

/* account.c */
/* Changes live (and its peak) by what the thread's credit does not cover. */
void vs_account_add(struct vs_arena *a, size_t req);
void vs_account_sub(struct vs_arena *a, size_t req);
static inline void vs_account_alloc(struct vs_arena *a, size_t req)
{
    req = vs_tcache_use_credit(a, req);
    if (req)
        vs_account_add(a, req);
}
static inline void vs_account_free(struct vs_arena *a, size_t req)
{
    req = vs_tcache_keep_credit(a, req);
    if (req)
        vs_account_sub(a, req);
}
size_t vs_live_bytes(struct vs_arena *a);
void vs_account_physical(struct vs_arena *a);

#endif
