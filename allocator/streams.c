/* When a freed block may be handed out again, and the stream lists that say so.
 *
 * - Freed on stream S (vs_arena_free_async): first in S's pending lists, reusable at once by
 *   allocations on S (stream order protects it). When VS_STREAM_BATCH blocks are listed on S, or
 *   when another stream needs memory, one event recorded on S covers the pending blocks (a group);
 *   once the event has completed (cuEventQuery, never waited on here) they are idle for everyone.
 *   Recording later than the free is safe: the event then covers more work, never less.
 * - Freed synchronously (vs_arena_free): in the sync list until a device synchronisation after
 *   the free (reclaim.c decides when; vs_arena_device_synchronized reports the application's).
 *
 * Invariants: a block is in at most one of: a stream's pending lists, one group, the sync list,
 * the idle structures; a->pending sums the rounded sizes of groups and the sync list, each
 * stream's pending_bytes those of its lists and `listed` counts them; a large block listed on S
 * or in one of S's groups is VS_PENDING with owner S (in_group: in a group). The per-thread
 * default stream of thread T is its own vs_stream, recorded on only by T.
 *
 * This file is the only one that edits a stream's lists, groups, counters and its blocks' owner
 * (the vs_stream_* functions below; others may hold st->mu around a sequence of them).
 * vs_arena_validate (validate.c) checks the invariants.
 */
#include <stdlib.h>
#include <string.h>

#include "allocator/internal.h"
#include "allocator/vs_assert.h"

static _Atomic uint64_t thread_ids;
/* Initial-exec, as the shim's other thread-locals read on every hook: no __tls_get_addr call
 * on the stream-ordered path (bench_interpose says what that asks of a dlopen). */
static _Thread_local uint64_t thread_id __attribute__((tls_model("initial-exec")));
_Thread_local struct vs_stream_last vs_stream_last __attribute__((tls_model("initial-exec")));

/* Stream handles are pointers (8-aligned) or the small constants 0, 1, 2: the per-thread key
 * (id << 3 | 2) collides with none of them. */
static uintptr_t key_of(CUstream s, bool *per_thread)
{
    *per_thread = s == CU_STREAM_PER_THREAD;
    if (!s)
        return (uintptr_t)CU_STREAM_LEGACY;
    if (!*per_thread)
        return (uintptr_t)s;
    if (!thread_id)
        thread_id = atomic_fetch_add(&thread_ids, 1) + 1;
    return (uintptr_t)(thread_id << 3 | 2);
}

static struct vs_stream *lookup(struct vs_arena *a, uintptr_t key)
{
    for (struct vs_stream *st = a->streams; st; st = st->next)
        if (atomic_load_explicit(&st->key, memory_order_relaxed) == key)
            return st;
    return NULL;
}

struct vs_stream *vs_stream_find(struct vs_arena *a, CUstream s)
{
    bool per_thread;
    uintptr_t key = key_of(s, &per_thread);
    pthread_mutex_lock(&a->streams_mu);
    struct vs_stream *st = lookup(a, key);
    if (!st) {
        st = aligned_alloc(64, (sizeof *st + 63) / 64 * 64);
        if (st) {
            memset(st, 0, sizeof *st);
            atomic_init(&st->key, key);
            st->handle = s ? s : CU_STREAM_LEGACY;
            st->per_thread = per_thread;
            st->owner = pthread_self();
            pthread_mutex_init(&st->mu, NULL);
            st->next = a->streams;
            a->streams = st;
        }
    }
    pthread_mutex_unlock(&a->streams_mu);
    if (st)
        vs_stream_last = (struct vs_stream_last){a, a->gen, s, key, st};
    return st;
}

void vs_stream_retire(struct vs_arena *a, struct vs_stream *st)
{
    /* Blocks the last record could not cover stay listed and become idle at the next device
     * synchronisation. */
    pthread_mutex_lock(&a->mu);
    atomic_store(&st->key, 0);
    pthread_mutex_unlock(&a->mu);
}

/* --- the lists -------------------------------------------------------------------------------- */

bool vs_stream_list(struct vs_stream *st, int bucket, uintptr_t item, size_t bytes)
{
    if (vs_vec_push(bucket >= 0 ? &st->small[bucket] : &st->large, item) != 0)
        return false;
    if (bucket < 0)
        ((struct vs_block *)item)->owner = st;
    st->pending_bytes += bytes;
    st->listed++;
    return true;
}

bool vs_stream_count(struct vs_stream *st, uint64_t allocs, uint64_t frees)
{
    st->allocs += allocs;
    st->frees += frees;
    return st->listed >= VS_STREAM_BATCH;
}

bool vs_stream_put(struct vs_arena *a, struct vs_stream *st, int bucket, uintptr_t item,
                   size_t bytes)
{
    pthread_mutex_lock(&st->mu);
    bool listed = vs_stream_list(st, bucket, item, bytes);
    bool record = listed && vs_stream_count(st, 0, 1);
    pthread_mutex_unlock(&st->mu);
    if (record)
        vs_stream_record(a, st);
    return listed;
}

/* Unlists `bytes` from st's counters (st->mu held). */
static void unlisted(struct vs_stream *st, size_t bytes)
{
    vs_assert(st->pending_bytes >= bytes && st->listed > 0,
              "stream pending bytes %zu (%u listed) below a listed block of %zu",
              st->pending_bytes, st->listed, bytes);
    st->pending_bytes -= bytes;
    st->listed--;
}

bool vs_stream_take_small(struct vs_stream *st, unsigned bucket, CUdeviceptr *p)
{
    pthread_mutex_lock(&st->mu);
    bool got = st->small[bucket].n > 0;
    if (got) {
        *p = st->small[bucket].v[--st->small[bucket].n];
        unlisted(st, vs_small_class_size(vs_bucket_class(bucket)));
        st->allocs++;
    }
    pthread_mutex_unlock(&st->mu);
    return got;
}

struct vs_block *vs_stream_take_large(const struct vs_arena *a, struct vs_stream *st, size_t size)
{
    struct vs_block *found = NULL;
    pthread_mutex_lock(&st->mu);
    for (size_t i = 0; i < st->large.n; i++) {
        struct vs_block *b = (struct vs_block *)st->large.v[i];
        if (b->size >= size && b->size - size <= size / 8 && !vs_large_in_host(a, b)) {
            found = b;
            b->owner = NULL;
            st->large.v[i] = st->large.v[--st->large.n];
            unlisted(st, b->size);
            break;
        }
    }
    pthread_mutex_unlock(&st->mu);
    return found;
}

static bool unlist(struct vs_vec *v, const struct vs_block *b)
{
    for (size_t i = 0; i < v->n; i++)
        if (v->v[i] == (uintptr_t)b) {
            v->v[i] = v->v[--v->n];
            return true;
        }
    return false;
}

void vs_stream_unlist_large(struct vs_arena *a, struct vs_stream *st, struct vs_block *b)
{
    vs_assert(b->state == VS_PENDING && b->owner == st, "block 0x%llx unlisted from a stream "
              "that does not own it", (unsigned long long)b->start);
    if (b->in_group) {
        for (struct vs_group *g = st->groups; g; g = g->next)
            if (unlist(&g->large, b)) {
                g->bytes -= b->size;
                atomic_fetch_sub(&a->pending, b->size);
                break;
            }
    } else if (unlist(&st->large, b)) {
        unlisted(st, b->size);
    }
    b->owner = NULL;
    b->in_group = false;
}

void vs_stream_each_large(const struct vs_stream *st, void (*fn)(struct vs_block *b, void *ctx),
                          void *ctx)
{
    for (size_t i = 0; i < st->large.n; i++)
        fn((struct vs_block *)st->large.v[i], ctx);
    for (const struct vs_group *g = st->groups; g; g = g->next)
        for (size_t i = 0; i < g->large.n; i++)
            fn((struct vs_block *)g->large.v[i], ctx);
}

/* --- events and groups ------------------------------------------------------------------------ */

CUevent vs_event_get(struct vs_arena *a)
{
    CUevent ev = NULL;
    pthread_mutex_lock(&a->ev_mu);
    if (a->events.n)
        ev = (CUevent)a->events.v[--a->events.n];
    pthread_mutex_unlock(&a->ev_mu);
    if (ev)
        return ev;
    CUcontext saved;
    bool sw = vs_ctx_enter(a, &saved);
    CUresult err = a->drv->cuEventCreate(&ev, CU_EVENT_DISABLE_TIMING);
    vs_ctx_leave(a, sw, saved);
    return err == CUDA_SUCCESS ? ev : NULL;
}

void vs_event_put(struct vs_arena *a, CUevent ev)
{
    pthread_mutex_lock(&a->ev_mu);
    int full = vs_vec_push(&a->events, (uintptr_t)ev);
    pthread_mutex_unlock(&a->ev_mu);
    if (full)
        a->drv->cuEventDestroy_v2(ev);
}

/* Moves st's pending blocks into g (which holds nothing yet) and counts them in a->pending.
 * Called with st->mu held. */
static bool take_pending(struct vs_arena *a, struct vs_stream *st, struct vs_group *g)
{
    size_t n = 0;
    for (unsigned c = 0; c < VS_NBUCKETS; c++)
        n += st->small[c].n;
    if (n) {
        g->small.v = malloc(n * sizeof *g->small.v);
        if (!g->small.v)
            return false;
        g->small.cap = n;
        for (unsigned c = 0; c < VS_NBUCKETS; c++) {
            if (!st->small[c].n)
                continue;
            memcpy(g->small.v + g->small.n, st->small[c].v, st->small[c].n * sizeof(uintptr_t));
            g->small.n += st->small[c].n;
            st->small[c].n = 0;
        }
    }
    g->large = st->large;
    st->large = (struct vs_vec){0};
    for (size_t i = 0; i < g->large.n; i++)
        ((struct vs_block *)g->large.v[i])->owner = NULL;
    g->bytes = st->pending_bytes;
    st->pending_bytes = 0;
    atomic_fetch_add(&a->pending, g->bytes);
    st->listed = 0;
    return true;
}

/* Large blocks of a group on st stay usable by requests ordered on st (large.c) until the group
 * leaves st (st->mu held). */
static void own_group(struct vs_group *g, struct vs_stream *st)
{
    for (size_t i = 0; i < g->large.n; i++) {
        struct vs_block *b = (struct vs_block *)g->large.v[i];
        b->owner = st;
        b->in_group = st != NULL;
    }
}

/* Makes every block of g idle (arena.mu held) and frees g. */
static void release_group(struct vs_arena *a, struct vs_group *g)
{
    for (size_t i = 0; i < g->small.n; i++)
        vs_pending_release_small(a, g->small.v[i]);
    for (size_t i = 0; i < g->large.n; i++)
        vs_large_make_idle(a, (struct vs_block *)g->large.v[i]);
    size_t pending = atomic_fetch_sub(&a->pending, g->bytes);
    vs_assert(pending >= g->bytes, "pending %zu below the %zu bytes released", pending, g->bytes);
    if (g->ev)
        vs_event_put(a, g->ev);
    vs_vec_free(&g->small);
    vs_vec_free(&g->large);
    free(g);
}

/* Hands g's blocks to the sync list: they become idle at the next device synchronisation. Their
 * bytes stay in a->pending (take_pending counted them) and join sync_bytes, which the release
 * at the next synchronisation subtracts; a block lost to host memory exhaustion leaves both. */
static void to_sync_list(struct vs_arena *a, struct vs_group *g)
{
    size_t lost = 0;
    pthread_mutex_lock(&a->sync_mu);
    for (size_t i = 0; i < g->small.n; i++)
        if (vs_vec_push(&a->sync_small, g->small.v[i]) != 0) {
            vs_log(VS_LOG_WARN, "arena: out of host memory; a freed block is lost to the arena");
            lost += vs_small_page_of(a, g->small.v[i])->objsize;
        }
    for (size_t i = 0; i < g->large.n; i++)
        if (vs_vec_push(&a->sync_large, g->large.v[i]) != 0) {
            vs_log(VS_LOG_WARN, "arena: out of host memory; a freed block is lost to the arena");
            lost += ((struct vs_block *)g->large.v[i])->size;
        }
    a->sync_bytes += g->bytes - lost;
    atomic_fetch_sub(&a->pending, lost);
    pthread_mutex_unlock(&a->sync_mu);
    if (g->ev)
        vs_event_put(a, g->ev);
    vs_vec_free(&g->small);
    vs_vec_free(&g->large);
    free(g);
}

void vs_stream_record(struct vs_arena *a, struct vs_stream *st)
{
    if (st->per_thread && !pthread_equal(st->owner, pthread_self()))
        return;
    struct vs_group *g = calloc(1, sizeof *g);
    if (!g)
        return;
    pthread_mutex_lock(&st->mu);
    bool empty = st->pending_bytes == 0, taken = !empty && take_pending(a, st, g);
    pthread_mutex_unlock(&st->mu);
    if (!taken) {
        free(g);
        return;
    }
    g->ev = vs_event_get(a);
    CUresult err = CUDA_ERROR_OUT_OF_MEMORY;
    if (g->ev) {
        CUcontext saved;
        bool sw = vs_ctx_enter(a, &saved);
        err = a->drv->cuEventRecord(g->ev, st->handle);
        vs_ctx_leave(a, sw, saved);
    }
    if (err != CUDA_SUCCESS) {
        to_sync_list(a, g);
        return;
    }
    pthread_mutex_lock(&st->mu);
    struct vs_group **tail = &st->groups;
    while (*tail)
        tail = &(*tail)->next;
    *tail = g;
    own_group(g, st);
    pthread_mutex_unlock(&st->mu);
}

size_t vs_streams_poll(struct vs_arena *a, bool record_all)
{
    size_t released = 0;
    pthread_mutex_lock(&a->streams_mu);
    struct vs_stream *list = a->streams;
    pthread_mutex_unlock(&a->streams_mu);
    /* Streams are only ever prepended, so the list from `list` on stays valid. */
    for (struct vs_stream *st = list; st; st = st->next) {
        if (record_all)
            vs_stream_record(a, st);
        struct vs_group *done = NULL, **dtail = &done;
        pthread_mutex_lock(&st->mu);
        while (st->groups && a->drv->cuEventQuery(st->groups->ev) == CUDA_SUCCESS) {
            own_group(st->groups, NULL);
            *dtail = st->groups;
            st->groups = st->groups->next;
            dtail = &(*dtail)->next;
            *dtail = NULL;
        }
        pthread_mutex_unlock(&st->mu);
        while (done) {
            struct vs_group *next = done->next;
            released += done->bytes;
            release_group(a, done);
            done = next;
        }
    }
    return released;
}

void vs_streams_all_idle(struct vs_arena *a)
{
    vs_small_parked_synchronized(a);
    pthread_mutex_lock(&a->streams_mu);
    struct vs_stream *list = a->streams;
    pthread_mutex_unlock(&a->streams_mu);
    for (struct vs_stream *st = list; st; st = st->next) {
        struct vs_group *now = calloc(1, sizeof *now);
        pthread_mutex_lock(&st->mu);
        struct vs_group *groups = st->groups;
        st->groups = NULL;
        for (struct vs_group *g = groups; g; g = g->next)
            own_group(g, NULL);
        if (now && !take_pending(a, st, now)) {
            free(now);
            now = NULL;
        }
        pthread_mutex_unlock(&st->mu);
        if (now)
            release_group(a, now);
        while (groups) {
            struct vs_group *next = groups->next;
            release_group(a, groups);
            groups = next;
        }
    }
    struct vs_group sync = {0};
    pthread_mutex_lock(&a->sync_mu);
    sync.small = a->sync_small;
    sync.large = a->sync_large;
    sync.bytes = a->sync_bytes;
    a->sync_small = a->sync_large = (struct vs_vec){0};
    a->sync_bytes = 0;
    pthread_mutex_unlock(&a->sync_mu);
    struct vs_group *g = malloc(sizeof *g);
    if (g) {
        *g = sync;
        release_group(a, g);
    } else {
        vs_log(VS_LOG_WARN, "arena: out of host memory; synchronously freed blocks stay unusable");
    }
}

void vs_pending_release_small(struct vs_arena *a, CUdeviceptr p)
{
    struct vs_class *c = &a->classes[vs_small_page_of(a, p)->bucket];
    pthread_mutex_lock(&c->mu);
    int lost = vs_vec_push(&c->idle, p);
    pthread_mutex_unlock(&c->mu);
    if (lost)
        vs_log(VS_LOG_WARN, "arena: out of host memory; a freed block is lost to the arena");
}

void vs_streams_destroy(struct vs_arena *a)
{
    struct vs_stream *st = a->streams;
    while (st) {
        struct vs_stream *next = st->next;
        for (unsigned c = 0; c < VS_NBUCKETS; c++)
            vs_vec_free(&st->small[c]);
        vs_vec_free(&st->large);
        for (struct vs_group *g = st->groups, *gn; g; g = gn) {
            gn = g->next;
            if (g->ev)
                a->drv->cuEventDestroy_v2(g->ev);
            vs_vec_free(&g->small);
            vs_vec_free(&g->large);
            free(g);
        }
        pthread_mutex_destroy(&st->mu);
        free(st);
        st = next;
    }
    a->streams = NULL;
    for (size_t i = 0; i < a->events.n; i++)
        a->drv->cuEventDestroy_v2((CUevent)a->events.v[i]);
    vs_vec_free(&a->events);
}

size_t vs_pending_total(struct vs_arena *a)
{
    size_t total = atomic_load(&a->pending);
    pthread_mutex_lock(&a->streams_mu);
    struct vs_stream *list = a->streams;
    pthread_mutex_unlock(&a->streams_mu);
    for (struct vs_stream *st = list; st; st = st->next) {
        pthread_mutex_lock(&st->mu);
        total += st->pending_bytes;
        pthread_mutex_unlock(&st->mu);
    }
    return total;
}
