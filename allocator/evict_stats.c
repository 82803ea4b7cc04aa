/* Eviction accounting (evict.h): counters, and live/demoted bytes per stage and per tag for
 * vramshim_stats_json and the control socket's status.
 *
 * Computed on demand by walking the blocks (arena.mu held), so nothing on the allocation paths
 * pays for it and the figures cannot drift from the blocks they describe.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "allocator/internal.h"
#include "policy/names.h"
#include "policy/policy.h"

void vs_arena_evict_stats(struct vs_arena *a, struct vs_evict_stats *st)
{
    pthread_mutex_lock(&a->mu);
    *st = (struct vs_evict_stats){
        .state = a->evict_state,
        .host_bytes = a->host_granules * a->gran,
        .demotes = a->demotes,
        .promotes = a->promotes,
        .demoted_total = a->demotes * a->gran,
        .promoted_total = a->promotes * a->gran,
    };
    pthread_mutex_unlock(&a->mu);
}

void vs_usage_add(struct vs_usage_table *t, uint32_t id, size_t live_bytes,
                  size_t demoted_bytes)
{
    for (size_t i = 0; i < t->n; i++)
        if (t->v[i].id == id) {
            t->v[i].live_bytes += live_bytes;
            t->v[i].demoted_bytes += demoted_bytes;
            return;
        }
    if (t->n == t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 16;
        struct vs_name_usage *v = realloc(t->v, cap * sizeof *v);
        if (!v) {
            t->failed = true;
            return;
        }
        t->v = v;
        t->cap = cap;
    }
    t->v[t->n++] = (struct vs_name_usage){id, live_bytes, demoted_bytes};
}

struct walk {
    struct vs_arena *a;
    struct vs_reservation *r;
    size_t slot;
    const struct vs_policy *policy; /* NULL: nothing is lendable */
    size_t lendable, lent;
    struct vs_usage_table stages, tags;
};

/* Bytes of [p, p+n) in host slots of r. */
static size_t host_part(const struct vs_arena *a, const struct vs_reservation *r, CUdeviceptr p,
                        size_t n)
{
    size_t bytes = 0;
    for (size_t i = vs_slot_of(a, r, p); i <= vs_slot_of(a, r, p + n - 1); i++) {
        if (!r->slots[i].host)
            continue;
        CUdeviceptr s0 = r->base + i * a->gran, s1 = s0 + a->gran;
        bytes += (p + n < s1 ? p + n : s1) - (p > s0 ? p : s0);
    }
    return bytes;
}

/* Visits each live block once: at the slot holding its first byte. */
static void tally(const struct vs_block_info *info, void *ctx)
{
    struct walk *w = ctx;
    if (vs_slot_of(w->a, w->r, info->base) != w->slot)
        return;
    size_t demoted = host_part(w->a, w->r, info->base, info->size);
    vs_usage_add(&w->stages, info->stage, info->size, demoted);
    vs_usage_add(&w->tags, info->tag, info->size, demoted);
    if (w->policy && vs_policy_lends(w->policy, info->stage, info->tag)) {
        w->lendable += info->size - demoted;
        w->lent += demoted;
    }
}

/* Tallies every live block by stage and tag (arena.mu held). */
static void usage_walk(struct vs_arena *a, struct walk *w)
{
    w->a = a;
    for (w->r = a->res; w->r; w->r = w->r->next)
        for (w->slot = 0; w->slot < w->r->nslots; w->slot++)
            if (w->r->slots[w->slot].busy)
                vs_slot_each_live(a, w->r, w->slot, tally, w);
}

bool vs_arena_usage(struct vs_arena *a, struct vs_arena_usage *u)
{
    *u = (struct vs_arena_usage){.device = a->ordinal};
    vs_arena_stats(a, &u->arena);
    vs_arena_evict_stats(a, &u->evict);
    struct walk w = {.policy = vs_evict_policy()};
    pthread_mutex_lock(&a->mu);
    usage_walk(a, &w);
    pthread_mutex_unlock(&a->mu);
    u->stages = w.stages;
    u->tags = w.tags;
    u->lendable_bytes = w.lendable;
    u->lent_bytes = w.lent;
    if (u->stages.failed || u->tags.failed) {
        vs_arena_usage_free(u);
        return false;
    }
    for (size_t i = 0; i < u->stages.n; i++)
        u->demoted_bytes += u->stages.v[i].demoted_bytes;
    return true;
}

void vs_arena_usage_free(struct vs_arena_usage *u)
{
    free(u->stages.v);
    free(u->tags.v);
    u->stages = u->tags = (struct vs_usage_table){0};
}

size_t vs_arena_block_demoted_bytes(struct vs_arena *a, CUdeviceptr dptr)
{
    struct vs_block_info info;
    uint64_t id;
    if (!vs_live_info(a, dptr, &info, &id))
        return 0;
    struct vs_reservation *r = vs_va_find(a, info.base);
    pthread_mutex_lock(&a->mu);
    size_t bytes = host_part(a, r, info.base, info.size);
    pthread_mutex_unlock(&a->mu);
    return bytes;
}

static int by_resident_desc(const void *x, const void *y)
{
    const struct vs_name_usage *a = x, *b = y;
    size_t ra = a->live_bytes - a->demoted_bytes, rb = b->live_bytes - b->demoted_bytes;
    return ra < rb ? 1 : ra > rb ? -1 : (a->id > b->id) - (a->id < b->id);
}

/* Stages named in a hint at most. */
enum { HINT_STAGES = 4 };

void vs_oom_hint(struct vs_arena *a, size_t missing)
{
    const struct vs_policy *pol = vs_evict_policy();
    const struct vs_names *names = vs_evict_names();
    uint32_t current = vs_arenas_stage();
    const struct vs_policy_rule *rule = pol ? vs_policy_rule_of(pol, current) : NULL;
    if (!current || !names || a->evict_state == VS_EVICT_OFF ||
        (pol && !vs_policy_eviction(pol)))
        return;
    struct walk w = {0};
    usage_walk(a, &w);
    /* Idle-looking: stages other than the current one, that its rule does not already evict. */
    size_t n = 0;
    for (size_t i = 0; !w.stages.failed && i < w.stages.n; i++) {
        struct vs_name_usage u = w.stages.v[i];
        bool listed = false;
        for (size_t k = 0; rule && k < rule->evict.n; k++)
            listed = listed || rule->evict.ids[k] == u.id;
        if (u.id && u.id != current && !listed && u.live_bytes > u.demoted_bytes)
            w.stages.v[n++] = u;
    }
    qsort(w.stages.v, n, sizeof *w.stages.v, by_resident_desc);
    size_t freed = 0, k = 0;
    while (k < n && k < HINT_STAGES && freed < missing) {
        freed += w.stages.v[k].live_bytes - w.stages.v[k].demoted_bytes;
        k++;
    }
    if (freed >= missing && k) {
        char list[256] = "", what[320] = "", b[32], m[32], f[32];
        for (size_t i = 0; i < k; i++) {
            const char *name = vs_names_str(names, w.stages.v[i].id);
            size_t used = strlen(list), wused = strlen(what);
            snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "", name ? name : "?");
            if (k > 1)
                snprintf(what + wused, sizeof what - wused, "%s%s (%s)", i ? ", " : "",
                         name ? name : "?",
                         vs_size_format(w.stages.v[i].live_bytes - w.stages.v[i].demoted_bytes, b,
                                        sizeof b));
            else
                snprintf(what, sizeof what, "%s", name ? name : "?");
        }
        const char *cur = vs_names_str(names, current);
        vs_log(VS_LOG_WARN,
               "hint: stage%s %s hold%s %s on the device and %s not current: a policy with "
               "`evict = %s` in [stage %s] would let vramshim demote enough of %s to host "
               "memory for the %s missing (docs/eviction.md)",
               k > 1 ? "s" : "", what, k > 1 ? "" : "s", vs_size_format(freed, f, sizeof f),
               k > 1 ? "are" : "is", list, cur ? cur : "?", k > 1 ? "them" : "it",
               vs_size_format(missing, m, sizeof m));
    }
    free(w.stages.v);
    free(w.tags.v);
}
