/* Eviction entry points (evict.h): explicit demote/promote, stage and tag rules, the pressure
 * step of the allocation slow path, and the trace events.
 *
 * Invariants: every move runs under arena.mu with the arena's context current (run_locked or
 * the slow path); the policy and names set by vs_evict_configure are read once per call.
 */
#include <stdlib.h>

#include "allocator/internal.h"
#include "allocator/trace.h"
#include "policy/policy.h"

static _Atomic(const struct vs_policy *) cfg_policy;
static _Atomic(struct vs_names *) cfg_names;

void vs_evict_configure(const struct vs_policy *policy, struct vs_names *names)
{
    atomic_store(&cfg_policy, policy);
    atomic_store(&cfg_names, names);
}

struct vs_names *vs_evict_names(void)
{
    return atomic_load(&cfg_names);
}

const struct vs_policy *vs_evict_policy(void)
{
    return atomic_load(&cfg_policy);
}

/* --- selections ------------------------------------------------------------------------------- */

static bool by_name(const struct vs_block_info *info, void *ctx)
{
    uint32_t name = *(const uint32_t *)ctx;
    return info->stage == name || info->tag == name;
}

static bool in_list(const struct vs_block_info *info, void *ctx)
{
    const struct vs_name_list *l = ctx;
    for (size_t i = 0; i < l->n; i++)
        if (info->stage == l->ids[i] || info->tag == l->ids[i])
            return true;
    return false;
}

struct victims {
    const struct vs_policy *pol;
    uint32_t current;
};

static bool is_victim(const struct vs_block_info *info, void *ctx)
{
    const struct victims *v = ctx;
    return vs_policy_is_victim(v->pol, v->current, info->stage, info->tag);
}

/* --- moving ----------------------------------------------------------------------------------- */

/* Device free memory plus the arena's free granules: what a request can get. */
static size_t free_bytes(struct vs_arena *a)
{
    size_t dev_free = 0, total = 0;
    if (a->drv->cuMemGetInfo_v2(&dev_free, &total) != CUDA_SUCCESS)
        dev_free = 0;
    return dev_free + vs_granules_free_bytes(a);
}

/* Device memory in use, by this process or another: what the watermark limits. */
static size_t in_use(struct vs_arena *a)
{
    size_t fb = free_bytes(a);
    return fb < a->total ? a->total - fb : 0;
}

static size_t granules_for(const struct vs_arena *a, size_t bytes)
{
    return (bytes + a->gran - 1) >> a->gran_shift;
}

/* Makes every freed block reusable: a move waits for the device anyway. */
static void reclaim_all(struct vs_arena *a)
{
    vs_reclaim(a, VS_RECLAIM_SYNC);
    vs_small_release_empty_pages(a, true);
}

/* Moves at most `limit` granules of the selection, oldest stage first (arena.mu held, context
 * current). A promote stops with CUDA_ERROR_OUT_OF_MEMORY where device memory runs out. */
static CUresult run(struct vs_arena *a, const struct vs_selection *sel, bool to_host,
                    size_t limit, const char *api, size_t *moved)
{
    *moved = 0;
    if (!vs_evict_probe(a))
        return CUDA_ERROR_NOT_SUPPORTED;
    vs_granules_sweep_host(a);
    struct vs_move *mv;
    size_t n;
    CUresult err = vs_select_slots(a, sel, to_host, &mv, &n);
    if (err != CUDA_SUCCESS)
        return err;
    if (n > limit)
        n = limit;
    if (n && !to_host)
        reclaim_all(a);
    CUresult short_of_memory = CUDA_SUCCESS;
    size_t room = to_host ? SIZE_MAX : free_bytes(a) >> a->gran_shift;
    if (n > room) {
        n = room;
        short_of_memory = CUDA_ERROR_OUT_OF_MEMORY;
    }
    if (n)
        err = vs_evict_move(a, mv, n, to_host, sel, moved);
    vs_evict_trace(a, mv, *moved >> a->gran_shift, to_host, sel, api);
    free(mv);
    return err != CUDA_SUCCESS ? err : short_of_memory;
}

static CUresult run_locked(struct vs_arena *a, const struct vs_selection *sel, bool to_host,
                           const char *api, size_t *moved)
{
    size_t m = 0;
    pthread_mutex_lock(&a->mu);
    CUcontext saved;
    bool sw = vs_ctx_enter(a, &saved);
    size_t free_before = vs_granules_free_bytes(a);
    CUresult err = run(a, sel, to_host, SIZE_MAX, api, &m);
    /* A requested demote gives the device granules it freed (the most recently cached) back to
     * the driver, for another process; the free granules held before stay, up to the cache
     * limit. Host memory kept for the next demote stays too. */
    if (to_host)
        vs_granules_trim_device(a, free_before < a->opt.cache_max ? free_before
                                                                    : a->opt.cache_max);
    vs_ctx_leave(a, sw, saved);
    pthread_mutex_unlock(&a->mu);
    if (moved)
        *moved = m;
    return err;
}

CUresult vs_arena_demote_if(struct vs_arena *a, vs_block_pred pred, void *ctx, size_t *moved)
{
    if (!a || !pred)
        return CUDA_ERROR_INVALID_VALUE;
    struct vs_selection sel = {pred, ctx, 0};
    return run_locked(a, &sel, true, "vramshim_demote", moved);
}

CUresult vs_arena_promote_if(struct vs_arena *a, vs_block_pred pred, void *ctx, size_t *moved)
{
    if (!a || !pred)
        return CUDA_ERROR_INVALID_VALUE;
    struct vs_selection sel = {pred, ctx, 0};
    return run_locked(a, &sel, false, "vramshim_promote", moved);
}

CUresult vs_arena_demote(struct vs_arena *a, uint32_t name, size_t *moved)
{
    return name ? vs_arena_demote_if(a, by_name, &name, moved) : CUDA_ERROR_INVALID_VALUE;
}

CUresult vs_arena_promote(struct vs_arena *a, uint32_t name, size_t *moved)
{
    return name ? vs_arena_promote_if(a, by_name, &name, moved) : CUDA_ERROR_INVALID_VALUE;
}

/* --- rules ------------------------------------------------------------------------------------ */

/* Demotes victims of `rule` until `target` bytes are free (arena.mu held, context current).
 * Granules promoted in the current stage stay. */
static CUresult demote_until(struct vs_arena *a, const struct vs_policy *pol, uint32_t rule,
                             size_t target, const char *api, size_t *moved)
{
    *moved = 0;
    size_t have = free_bytes(a);
    if (have >= target)
        return CUDA_SUCCESS;
    struct victims v = {pol, rule};
    struct vs_selection sel = {is_victim, &v, vs_arenas_stage()};
    CUresult err = run(a, &sel, true, granules_for(a, target - have), api, moved);
    if (err == CUDA_SUCCESS && have + *moved < target)
        err = CUDA_ERROR_OUT_OF_MEMORY;
    return err;
}

CUresult vs_arena_make_headroom(struct vs_arena *a, uint32_t rule_name, size_t bytes,
                                size_t *freed)
{
    const struct vs_policy *pol = atomic_load(&cfg_policy);
    size_t m = 0;
    pthread_mutex_lock(&a->mu);
    CUcontext saved;
    bool sw = vs_ctx_enter(a, &saved);
    CUresult err = CUDA_SUCCESS;
    if (free_bytes(a) < bytes)
        reclaim_all(a);
    if (free_bytes(a) < bytes)
        err = pol && vs_policy_eviction(pol)
                  ? demote_until(a, pol, rule_name, bytes, "headroom", &m)
                  : CUDA_ERROR_OUT_OF_MEMORY;
    vs_granules_trim(a, a->opt.cache_max);
    vs_ctx_leave(a, sw, saved);
    pthread_mutex_unlock(&a->mu);
    if (freed)
        *freed = m;
    return err;
}

size_t vs_arena_headroom_short(struct vs_arena *a, size_t bytes, int *ordinal)
{
    pthread_mutex_lock(&a->mu);
    CUcontext saved;
    bool sw = vs_ctx_enter(a, &saved);
    size_t have = free_bytes(a);
    vs_ctx_leave(a, sw, saved);
    pthread_mutex_unlock(&a->mu);
    *ordinal = a->ordinal;
    return have < bytes ? bytes - have : 0;
}

/* Granules a selection could move now (arena.mu held); 0 when listing them fails. */
static size_t candidates(struct vs_arena *a, const struct vs_selection *sel, bool to_host)
{
    struct vs_move *mv;
    size_t n;
    if (vs_select_slots(a, sel, to_host, &mv, &n) != CUDA_SUCCESS)
        return 0;
    free(mv);
    return n;
}

/* The prefetch step of `rule` (evict.h "Prefetch"; arena.mu held, context current). Memory in
 * use after it is at most the watermark: it promotes P granules of the prefetch names and first
 * demotes D granules of the rule's victims, the least D for which in use - D + P <= watermark,
 * and the largest P the victims allow. Demote and promote happen under one hold of arena.mu, so
 * no allocation takes the room in between. */
static CUresult prefetch(struct vs_arena *a, const struct vs_policy *pol,
                         const struct vs_policy_rule *rule)
{
    struct vs_name_list list = rule->prefetch;
    struct vs_selection promote_sel = {in_list, &list, 0};
    struct victims v = {pol, rule->name};
    struct vs_selection victim_sel = {is_victim, &v, vs_arenas_stage()};
    size_t wanted = vs_evict_probe(a) ? candidates(a, &promote_sel, false) : 0;
    if (wanted) {
        /* Freed blocks are not in use: they count as room, and need not come back. */
        reclaim_all(a);
        wanted = candidates(a, &promote_sel, false);
    }
    size_t used = in_use(a);
    size_t allowed = (size_t)(vs_policy_watermark(pol) * (double)a->total);
    /* Room under the watermark: allowed - used, which victims' granules add to. */
    size_t under = allowed > used ? allowed - used : 0, over = used > allowed ? used - allowed : 0;
    size_t victims = wanted > (under >> a->gran_shift) ? candidates(a, &victim_sel, true) : 0;
    size_t reach = under + (victims << a->gran_shift);
    size_t promote = reach > over ? (reach - over) >> a->gran_shift : 0;
    if (promote > wanted)
        promote = wanted;
    size_t need = promote << a->gran_shift;
    CUresult err = CUDA_SUCCESS;
    if (promote && need + over > under) {
        size_t m;
        err = run(a, &victim_sel, true, granules_for(a, need + over - under), "prefetch", &m);
        /* A failed demote leaves less room: promote only what the watermark still allows. */
        used = in_use(a);
        size_t room = allowed > used ? (allowed - used) >> a->gran_shift : 0;
        if (promote > room)
            promote = room;
    }
    size_t m;
    CUresult e = run(a, &promote_sel, false, promote, "prefetch", &m);
    vs_granules_trim(a, a->opt.cache_max); /* the cache limit holds for what the demote freed */
    if (err == CUDA_SUCCESS && e != CUDA_ERROR_OUT_OF_MEMORY)
        err = e; /* prefetch brings back what fits; the rest stays demoted */
    return err;
}

CUresult vs_arena_apply_rule(struct vs_arena *a, uint32_t name)
{
    const struct vs_policy *pol = atomic_load(&cfg_policy);
    const struct vs_policy_rule *rule = pol ? vs_policy_rule_of(pol, name) : NULL;
    if (!rule || !vs_policy_eviction(pol) || (!rule->prefetch.n && !rule->has_headroom))
        return CUDA_SUCCESS;
    CUresult err = CUDA_SUCCESS;
    if (rule->prefetch.n) {
        pthread_mutex_lock(&a->mu);
        CUcontext saved;
        bool sw = vs_ctx_enter(a, &saved);
        err = prefetch(a, pol, rule);
        vs_ctx_leave(a, sw, saved);
        pthread_mutex_unlock(&a->mu);
    }
    if (rule->has_headroom) {
        CUresult e = vs_arena_make_headroom(a, name, (size_t)rule->headroom, NULL);
        if (err == CUDA_SUCCESS)
            err = e;
    }
    return err;
}

CUresult vs_arena_stage_begin(struct vs_arena *a, uint32_t stage)
{
    vs_arena_set_stage(a, stage);
    return vs_arena_apply_rule(a, stage);
}

bool vs_evict_pressure(struct vs_arena *a, size_t need)
{
    const struct vs_policy *pol = atomic_load(&cfg_policy);
    uint32_t current = vs_arenas_stage();
    if (!pol || !vs_policy_eviction(pol) || !vs_policy_rule_of(pol, current))
        return false;
    /* Down to the watermark, so the next requests do not each demote again; at least what the
     * failing request needs. */
    size_t want = (size_t)((1.0 - vs_policy_watermark(pol)) * (double)a->total);
    size_t need_rounded = granules_for(a, need) << a->gran_shift;
    size_t moved;
    demote_until(a, pol, current, need_rounded > want ? need_rounded : want, "pressure",
                 &moved);
    return moved > 0;
}

/* --- trace ------------------------------------------------------------------------------------ */

/* One trace event per block and call, whose size is the bytes of that block the call moved: a
 * block demoted granule by granule over several calls adds up to its size, not a multiple. */
struct emit {
    struct vs_arena *a;
    const struct vs_selection *sel;
    const struct vs_names *names;
    enum vs_trace_ev ev;
    const char *api;
    CUdeviceptr lo, hi;          /* the moved granule being walked */
    struct vs_block_info block;  /* the block being summed; base 0: none */
    size_t moved;
};

static void emit_flush(struct emit *e)
{
    if (!e->block.base)
        return;
    struct vs_trace_event ev = {
        .ev = e->ev,
        .api = e->api,
        .ptr = e->block.base,
        .size = e->moved,
        .dev = e->a->ordinal,
        .stage = e->names ? vs_names_str(e->names, e->block.stage) : NULL,
        .tag = e->names ? vs_names_str(e->names, e->block.tag) : NULL,
    };
    vs_trace_emit(&ev);
    e->block.base = 0;
    e->moved = 0;
}

static void emit_block(const struct vs_block_info *info, void *ctx)
{
    struct emit *e = ctx;
    if (!e->sel->pred(info, e->sel->ctx))
        return;
    if (info->base != e->block.base) {
        emit_flush(e);
        e->block = *info;
    }
    CUdeviceptr lo = info->base > e->lo ? info->base : e->lo;
    CUdeviceptr end = info->base + info->size;
    CUdeviceptr hi = end < e->hi ? end : e->hi;
    if (hi > lo)
        e->moved += hi - lo;
}

void vs_evict_trace(struct vs_arena *a, const struct vs_move *mv, size_t n, bool to_host,
                    const struct vs_selection *sel, const char *api)
{
    if (!n || !vs_trace_enabled())
        return;
    struct emit e = {.a = a, .sel = sel, .names = vs_evict_names(),
                     .ev = to_host ? VS_EV_DEMOTE : VS_EV_PROMOTE, .api = api};
    /* Address order, so a block spanning several moved granules is one event. */
    struct vs_move *sorted = malloc(n * sizeof *sorted);
    if (!sorted)
        return;
    for (size_t k = 0; k < n; k++)
        sorted[k] = (struct vs_move){mv[k].r, mv[k].slot, 0};
    vs_moves_sort(sorted, n);
    for (size_t k = 0; k < n; k++) {
        e.lo = sorted[k].r->base + sorted[k].slot * a->gran;
        e.hi = e.lo + a->gran;
        vs_slot_each_live(a, sorted[k].r, sorted[k].slot, emit_block, &e);
    }
    emit_flush(&e);
    free(sorted);
}
