/* Per-thread cache of small objects the thread freed on one stream: the cached pair
 * (free_async then alloc_async of a small size on the same stream by the same thread) touches no
 * lock at all.
 *
 * Invariants:
 *  - the cache is bound to one (arena, generation, stream); its objects are pending on that
 *    stream exactly as if they were in the stream's lists (stream order makes them reusable by
 *    that stream, and only by it);
 *  - it is reached by the stream's handle (`handle`, the last one a look-up of st was made with,
 *    and st's key then): the cached pair makes no stream look-up; a retired st (key 0) or another
 *    handle takes the look-up (vs_stream_get) first;
 *  - its objects are all of one group (small.c), `group`, and serve only requests of that group;
 *    a free of another group's object while it holds objects goes to the stream's lists;
 *  - at most VS_TCACHE_DEPTH objects per class and VS_TCACHE_BYTES in all, so memory other
 *    threads cannot reclaim stays bounded per thread;
 *  - binding to another stream or arena, overflow, vs_arena_stream_destroyed and thread exit
 *    move the objects to the bound stream's lists (under its lock), where the usual event
 *    machinery covers them; a cache whose arena is gone is dropped without touching it;
 *  - credit: bytes the thread freed in the bound arena that arena.live still counts, at most
 *    VS_TCACHE_CREDIT; the thread's next allocations there are paid from it, so the cached pair
 *    touches no shared counter. Only the owning thread writes it; it is given back to arena.live
 *    when the cache binds to another arena or its thread exits. The arena's `tcaches` list
 *    (under reg_mu, a leaf lock) holds the caches bound to it, so readers can subtract it.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "allocator/internal.h"

#define VS_TCACHE_DEPTH 16
#define VS_TCACHE_BYTES (256u << 10)
#define VS_TCACHE_CREDIT (256u << 10)

struct vs_tcache {
    struct vs_arena *a;
    uint64_t gen;
    struct vs_stream *st;
    CUstream handle;
    uintptr_t key; /* st's key when reached by handle; never 0 */
    size_t bytes;
    unsigned group;
    uint64_t allocs, frees;
    _Atomic size_t credit; /* by the fields above: the cached pair reads them all */
    uint8_t n[VS_NCLASSES];
    struct {
        CUdeviceptr obj;
        struct vs_page *page; /* obj's page: no look-up to hand out */
    } cached[VS_NCLASSES][VS_TCACHE_DEPTH];
    struct vs_tcache *next; /* in a->tcaches */
};

/* On the heap behind one initial-exec pointer: no __tls_get_addr call in the shim's cached pair,
 * and only 8 bytes of static TLS (bench_interpose says what that asks of a dlopen). */
static _Thread_local struct vs_tcache *tc __attribute__((tls_model("initial-exec")));
static pthread_key_t exit_key;
static pthread_once_t exit_once = PTHREAD_ONCE_INIT;

/* Arenas alive now, so a thread exiting after its arena was destroyed leaves it alone. */
static pthread_mutex_t alive_mu = PTHREAD_MUTEX_INITIALIZER;
static struct vs_vec alive;
static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;

static bool bound_to(const struct vs_arena *a)
{
    return tc && tc->a == a && tc->gen == a->gen;
}

/* Bound to a and to the stream that handle s names now (the cached pair's only check). */
static inline bool bound_to_handle(const struct vs_arena *a, CUstream s)
{
    return bound_to(a) && tc->handle == s &&
           atomic_load_explicit(&tc->st->key, memory_order_relaxed) == tc->key;
}

/* When bound_to_handle(a, s) is false: whether the bound stream is the one handle s names now
 * (a look-up), remembering s when it is. */
static __attribute__((cold)) bool reached_by(struct vs_arena *a, CUstream s)
{
    struct vs_stream *st = vs_stream_get(a, s);
    uintptr_t key = st ? atomic_load_explicit(&st->key, memory_order_relaxed) : 0;
    if (!key || !bound_to(a) || tc->st != st)
        return false;
    tc->handle = s;
    tc->key = key;
    return true;
}

void vs_tcache_arena_born(struct vs_arena *a)
{
    pthread_mutex_lock(&alive_mu);
    if (vs_vec_push(&alive, (uintptr_t)a) != 0)
        a->no_tcache = true;
    pthread_mutex_unlock(&alive_mu);
}

void vs_tcache_arena_dies(struct vs_arena *a)
{
    pthread_mutex_lock(&alive_mu);
    for (size_t i = 0; i < alive.n; i++)
        if (alive.v[i] == (uintptr_t)a) {
            alive.v[i] = alive.v[--alive.n];
            break;
        }
    if (!alive.n)
        vs_vec_free(&alive);
    pthread_mutex_unlock(&alive_mu);
}

/* Moves every cached object of class `cls` (or all classes for cls < 0) to the bound stream. */
static void flush(int cls)
{
    struct vs_stream *st = tc->st;
    pthread_mutex_lock(&st->mu);
    for (unsigned c = cls < 0 ? 0 : (unsigned)cls; c < VS_NCLASSES; c++) {
        size_t csize = vs_small_class_size(c);
        while (tc->n[c]) {
            if (!vs_stream_list(st, (int)vs_bucket(c, tc->group), tc->cached[c][tc->n[c] - 1].obj,
                                csize))
                vs_log(VS_LOG_WARN,
                       "arena: out of host memory; a freed block is lost to the arena");
            tc->n[c]--;
            tc->bytes -= csize;
        }
        if (cls >= 0)
            break;
    }
    bool record = vs_stream_count(st, tc->allocs, tc->frees);
    tc->allocs = tc->frees = 0;
    pthread_mutex_unlock(&st->mu);
    if (record)
        vs_stream_record(tc->a, st);
}

/* The bound arena may be gone: its objects are touched only while it is on the alive list.
 * Unbinds: flushes the objects, gives the credit back and leaves the arena's list. */
static void unbind(void)
{
    pthread_mutex_lock(&alive_mu);
    bool live = false;
    for (size_t i = 0; i < alive.n && !live; i++)
        live = alive.v[i] == (uintptr_t)tc->a && tc->a->gen == tc->gen;
    if (live) {
        flush(-1);
        pthread_mutex_lock(&reg_mu);
        struct vs_tcache **pp = &tc->a->tcaches;
        while (*pp != tc)
            pp = &(*pp)->next;
        *pp = tc->next;
        atomic_fetch_sub(&tc->a->live, atomic_load_explicit(&tc->credit, memory_order_relaxed));
        pthread_mutex_unlock(&reg_mu);
    }
    pthread_mutex_unlock(&alive_mu);
    atomic_store_explicit(&tc->credit, 0, memory_order_relaxed);
    tc->a = NULL;
}

static void on_thread_exit(void *unused)
{
    (void)unused;
    if (tc->a)
        unbind();
    free(tc);
    tc = NULL;
}

static void make_key(void)
{
    if (pthread_key_create(&exit_key, on_thread_exit) != 0)
        exit_key = (pthread_key_t)-1;
}

/* Binds the cache to a and the stream handle s names, flushing what it held for another live
 * binding. */
static __attribute__((cold)) bool bind(struct vs_arena *a, CUstream s)
{
    if (reached_by(a, s))
        return true;
    if (a->no_tcache)
        return false;
    struct vs_stream *st = vs_stream_get(a, s);
    uintptr_t key = st ? atomic_load_explicit(&st->key, memory_order_relaxed) : 0;
    if (!key)
        return false;
    if (bound_to(a)) {
        flush(-1);
        tc->st = st;
        tc->handle = s;
        tc->key = key;
        return true;
    }
    if (tc && tc->a)
        unbind(); /* bound to another arena, which may be gone */
    if (!tc) {
        pthread_once(&exit_once, make_key);
        struct vs_tcache *t = exit_key == (pthread_key_t)-1 ? NULL : calloc(1, sizeof *t);
        if (!t || pthread_setspecific(exit_key, t) != 0) {
            free(t);
            return false;
        }
        tc = t;
    }
    memset(tc->n, 0, sizeof tc->n);
    tc->bytes = 0;
    tc->allocs = tc->frees = 0;
    tc->a = a;
    tc->gen = a->gen;
    tc->st = st;
    tc->handle = s;
    tc->key = key;
    pthread_mutex_lock(&reg_mu);
    tc->next = a->tcaches;
    a->tcaches = tc;
    pthread_mutex_unlock(&reg_mu);
    return true;
}

/* The thread's credit (tc bound): keeps `req` freed bytes or pays for `req` allocated ones; returns
 * the part it could not keep or pay. */
static size_t keep_credit(size_t req)
{
    size_t c = atomic_load_explicit(&tc->credit, memory_order_relaxed);
    size_t keep = req < VS_TCACHE_CREDIT - c ? req : VS_TCACHE_CREDIT - c;
    atomic_store_explicit(&tc->credit, c + keep, memory_order_relaxed);
    return req - keep;
}

static size_t use_credit(size_t req)
{
    size_t c = atomic_load_explicit(&tc->credit, memory_order_relaxed);
    size_t use = req < c ? req : c;
    atomic_store_explicit(&tc->credit, c - use, memory_order_relaxed);
    return req - use;
}

/* Caches the object p of page pg (class cls, of the cache's group; room checked). */
static inline void push(unsigned cls, struct vs_page *pg, CUdeviceptr p)
{
    tc->cached[cls][tc->n[cls]].page = pg;
    tc->cached[cls][tc->n[cls]++].obj = p;
    tc->bytes += pg->objsize;
    tc->frees++;
}

bool vs_tcache_cache(struct vs_arena *a, CUstream s, struct vs_page *pg, CUdeviceptr p, size_t req)
{
    unsigned cls = vs_bucket_class(pg->bucket);
    if (!bound_to_handle(a, s) || vs_bucket_group(pg->bucket) != tc->group ||
        tc->n[cls] == VS_TCACHE_DEPTH || tc->bytes + pg->objsize > VS_TCACHE_BYTES ||
        atomic_load_explicit(&tc->credit, memory_order_relaxed) + req > VS_TCACHE_CREDIT)
        return false;
    push(cls, pg, p);
    keep_credit(req);
    return true;
}

bool vs_tcache_free(struct vs_arena *a, CUstream s, struct vs_page *pg, CUdeviceptr p, size_t req)
{
    if (!bound_to_handle(a, s) && !bind(a, s))
        return false;
    unsigned cls = vs_bucket_class(pg->bucket), group = vs_bucket_group(pg->bucket);
    if (group != tc->group) {
        if (tc->bytes)
            return false;
        tc->group = group;
    }
    size_t csize = pg->objsize;
    if (tc->n[cls] == VS_TCACHE_DEPTH || tc->bytes + csize > VS_TCACHE_BYTES) {
        if (!tc->n[cls])
            return false; /* this class alone would exceed the byte bound */
        flush((int)cls);
        if (tc->bytes + csize > VS_TCACHE_BYTES)
            return false;
    }
    push(cls, pg, p);
    if ((req = keep_credit(req)))
        vs_account_sub(a, req);
    return true;
}

/* Takes the last cached object of class cls out of the cache. */
static inline void pop(unsigned cls, struct vs_page **pg, CUdeviceptr *obj)
{
    *pg = tc->cached[cls][--tc->n[cls]].page;
    *obj = tc->cached[cls][tc->n[cls]].obj;
    tc->bytes -= (*pg)->objsize;
    tc->allocs++;
}

bool vs_tcache_take(struct vs_arena *a, CUstream s, unsigned cls, unsigned group, size_t req,
                    uint32_t tag, CUdeviceptr *p)
{
    if (!bound_to_handle(a, s) || group != tc->group || !tc->n[cls] ||
        atomic_load_explicit(&tc->credit, memory_order_relaxed) < req)
        return false;
    struct vs_page *pg = tc->cached[cls][tc->n[cls] - 1].page;
    CUdeviceptr obj = tc->cached[cls][tc->n[cls] - 1].obj;
    struct vs_small_meta *m = &pg->meta[vs_small_containing(pg, obj)];
    /* Live already (an invariant broken) or parking: vs_tcache_alloc says or parks it. */
    if (atomic_load_explicit(&m->req, memory_order_relaxed) ||
        !vs_small_try_hand_out(pg, m, req, s, tag))
        return false;
    pop(cls, &pg, &obj);
    use_credit(req);
    *p = obj;
    return true;
}

bool vs_tcache_alloc(struct vs_arena *a, CUstream s, unsigned cls, unsigned group, size_t req,
                     uint32_t tag, CUdeviceptr *p)
{
    if (!(bound_to_handle(a, s) || reached_by(a, s)) || group != tc->group)
        return false;
    while (tc->n[cls]) {
        struct vs_page *pg;
        CUdeviceptr obj;
        pop(cls, &pg, &obj);
        if (vs_small_hand_out(a, pg, obj, req, s, tc->st, tag)) { /* else parked: take another */
            if ((req = use_credit(req)))
                vs_account_add(a, req);
            *p = obj;
            return true;
        }
    }
    return false;
}

void vs_tcache_flush(struct vs_arena *a, struct vs_stream *st)
{
    if (bound_to(a) && tc->st == st)
        flush(-1);
}

size_t vs_tcache_keep_credit(struct vs_arena *a, size_t req)
{
    return bound_to(a) ? keep_credit(req) : req;
}

size_t vs_tcache_use_credit(struct vs_arena *a, size_t req)
{
    return bound_to(a) ? use_credit(req) : req;
}

size_t vs_tcache_credits(struct vs_arena *a)
{
    size_t sum = 0;
    pthread_mutex_lock(&reg_mu);
    for (struct vs_tcache *t = a->tcaches; t; t = t->next)
        sum += atomic_load_explicit(&t->credit, memory_order_relaxed);
    pthread_mutex_unlock(&reg_mu);
    return sum;
}
