/* Lending (see lend.h).
 *
 * Invariants: `lent_at_ms` (0: nothing lent out) and `next_try_ms` are read and written under
 * `mu` only; a lend or a promotion runs whole under it. `lent_out` mirrors lent_at_ms != 0 for the
 * allocation path's lock-free check.
 */
#include "interpose/lend.h"

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "allocator/arenas.h"
#include "allocator/evict.h"
#include "allocator/log.h"
#include "interpose/borrow.h"
#include "interpose/init.h"
#include "interpose/ledger_pub.h"
#include "interpose/route.h"
#include "policy/policy.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static uint64_t lent_at_ms, next_try_ms;
static atomic_bool lent_out, serving;
static struct vs_lend_counters counters; /* under mu, but lent_out (the atomic above) */

static uint64_t now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

static bool lendable(const struct vs_block_info *info, void *ctx)
{
    return vs_policy_lends(ctx, info->stage, info->tag);
}

struct move {
    bool demote;
    size_t moved, released;
    CUresult first_error;
    bool deferred; /* a promote waits for room for all its arena's lent bytes */
};

/* a's lent bytes in host memory (0 also when its usage cannot be had), and whether the device
 * has room for all of them: a promote takes them back whole, never the bits of room a borrower
 * still works in. */
static size_t lent_bytes(struct vs_arena *a, bool *room)
{
    struct vs_arena_usage u;
    size_t free_b = 0, total = 0;
    if (!vs_arena_usage(a, &u))
        return 0;
    size_t lent = u.lent_bytes;
    vs_arena_usage_free(&u);
    *room = vs_arena_mem_get_info(a, &free_b, &total) == CUDA_SUCCESS && free_b >= lent;
    return lent;
}

static void move_arena(struct vs_arena *a, void *ctx)
{
    struct move *m = ctx;
    bool room = false;
    if (!m->demote && (!lent_bytes(a, &room) || !room)) {
        m->deferred |= !room;
        return;
    }
    size_t moved = 0, before = vs_arena_reserved(a);
    void *pol = (void *)vs_evict_policy();
    CUresult r = m->demote ? vs_arena_demote_if(a, lendable, pol, &moved)
                           : vs_arena_promote_if(a, lendable, pol, &moved);
    size_t after = vs_arena_reserved(a);
    m->moved += moved;
    m->released += before > after ? before - after : 0;
    if (r != CUDA_SUCCESS && m->first_error == CUDA_SUCCESS)
        m->first_error = r;
}

void vs_lend_counters(struct vs_lend_counters *out)
{
    pthread_mutex_lock(&mu);
    *out = counters;
    pthread_mutex_unlock(&mu);
    out->lent_out = atomic_load_explicit(&lent_out, memory_order_relaxed);
}

static void refuse(struct vs_lend_result *out, const char *why)
{
    out->reason = why;
    pthread_mutex_lock(&mu);
    counters.refused++;
    pthread_mutex_unlock(&mu);
}

void vs_lend(uint64_t bytes, int peer_pid, struct vs_lend_result *out)
{
    *out = (struct vs_lend_result){0};
    const struct vs_policy *p = vs_evict_policy();
    uint64_t idle_ms;
    if (!bytes)
        return refuse(out, "nothing was asked");
    if (!p || !vs_policy_lend_rules(p)->lend.n)
        return refuse(out, "its policy lends nothing");
    if (vs_cfg.mode != VS_MODE_ARENA || vs_route_driver_serves())
        return refuse(out, "no arena serves its allocations (pass-through or fallback)");
    if (!vs_ledger_pub_idle(&idle_ms))
        return refuse(out, "the ledger is off (VRAMSHIM_LEDGER=0), so it cannot tell whether it "
                           "is idle");
    if (idle_ms < vs_policy_lend_rules(p)->idle_after_ms)
        return refuse(out, "it is busy (active within its idle_after)");
    if (vs_borrow_active())
        return refuse(out, "it is borrowing memory itself");
    struct move m = {.demote = true};
    pthread_mutex_lock(&mu);
    atomic_store_explicit(&serving, true, memory_order_relaxed);
    vs_arenas_each(move_arena, &m);
    if (m.moved) {
        counters.lends++;
        counters.released_bytes += m.released;
        lent_at_ms = now_ms();
        next_try_ms = lent_at_ms + VS_LEND_HOLD_MS;
        atomic_store_explicit(&lent_out, true, memory_order_release);
    }
    atomic_store_explicit(&serving, false, memory_order_relaxed);
    pthread_mutex_unlock(&mu);
    if (m.first_error != CUDA_SUCCESS)
        vs_log(VS_LOG_WARN, "lend: demote stopped early (driver error %d)", (int)m.first_error);
    vs_log(VS_LOG_WARN,
           "lend: pid %d asked for %llu bytes: demoted %zu, released %zu to the driver", peer_pid,
           (unsigned long long)bytes, m.moved, m.released);
    out->demoted = m.moved;
    out->released = m.released;
}

bool vs_lend_serving(void)
{
    return atomic_load_explicit(&serving, memory_order_relaxed);
}

void vs_lend_on_use(void)
{
    if (!atomic_load_explicit(&lent_out, memory_order_relaxed))
        return;
    pthread_mutex_lock(&mu);
    uint64_t now = now_ms();
    if (lent_at_ms && now >= next_try_ms) {
        struct move m = {.demote = false};
        vs_arenas_each(move_arena, &m);
        /* Out of device memory: the rest waits for a later allocation. */
        next_try_ms = now + VS_LEND_RETRY_MS;
        if (m.first_error == CUDA_SUCCESS && !m.deferred) {
            lent_at_ms = 0;
            atomic_store_explicit(&lent_out, false, memory_order_relaxed);
        }
        if (m.moved)
            vs_log(VS_LOG_INFO, "lend: in use again, promoted %zu lent bytes back%s", m.moved,
                   lent_at_ms ? " (the rest when the device has room)" : "");
    }
    pthread_mutex_unlock(&mu);
}
