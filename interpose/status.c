/* Status JSON (see status.h). */
#include "interpose/status.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "allocator/arenas.h"
#include "allocator/evict.h"
#include "interpose/borrow.h"
#include "interpose/init.h"
#include "interpose/ledger_pub.h"
#include "interpose/lend.h"
#include "interpose/route.h"
#include "interpose/runtime.h"
#include "interpose/stage.h"
#include "interpose/tally.h"

/* Sums over devices; the per-name tables keep the order in which names were first met. */
struct totals {
    json_t *devices;
    struct vs_usage_table stages, tags;
    json_int_t live, cached, demoted;
};

/* The key of a stage or tag id: its name, "#ID" when it has none, "" for id 0. */
static const char *name_key(uint32_t id, char buf[16])
{
    const char *name = id ? vs_names_str(vs_rt_names(), id) : "";
    if (!name)
        snprintf(buf, 16, "#%u", id);
    return name ? name : buf;
}

/* {"NAME":{"live_bytes":N,"demoted_bytes":N},...} */
static json_t *names_json(const struct vs_usage_table *t)
{
    json_t *o = json_object();
    for (size_t i = 0; o && i < t->n; i++) {
        char buf[16];
        json_t *e = json_pack("{s:I,s:I}", "live_bytes", (json_int_t)t->v[i].live_bytes,
                              "demoted_bytes", (json_int_t)t->v[i].demoted_bytes);
        if (!e || json_object_set_new(o, name_key(t->v[i].id, buf), e) != 0) {
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

static const char *eviction_name(enum vs_evict_state s)
{
    return s == VS_EVICT_ON ? "on" : s == VS_EVICT_OFF ? "off" : "unprobed";
}

/* One device's object (status.h). After a fallback the driver serves this device and nothing
 * is demoted (api.c). */
static json_t *device_json(const struct vs_arena_usage *u)
{
    bool driver = vs_route_driver_serves();
    json_t *stages = names_json(&u->stages), *tags = names_json(&u->tags), *o = NULL;
    if (stages && tags)
        o = json_pack("{s:i,s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:O,s:O,s:s}", "device",
                      u->device, "eviction", driver ? "off" : eviction_name(u->evict.state),
                      "live_bytes", (json_int_t)u->arena.live_bytes, "cached_bytes",
                      (json_int_t)u->arena.cached_bytes, "pending_bytes",
                      (json_int_t)u->arena.pending_bytes, "device_bytes",
                      (json_int_t)u->arena.physical_bytes, "host_bytes",
                      (json_int_t)u->evict.host_bytes, "demoted_bytes",
                      (json_int_t)u->demoted_bytes, "demotes", (json_int_t)u->evict.demotes,
                      "promotes", (json_int_t)u->evict.promotes, "stages", stages, "tags", tags,
                      "serving", driver ? "driver" : "arena");
    json_decref(stages);
    json_decref(tags);
    return o;
}

static void merge(struct vs_usage_table *into, const struct vs_usage_table *from)
{
    for (size_t i = 0; i < from->n; i++)
        vs_usage_add(into, from->v[i].id, from->v[i].live_bytes, from->v[i].demoted_bytes);
}

static void add_arena(struct vs_arena *a, void *ctx)
{
    struct totals *t = ctx;
    struct vs_arena_usage u;
    if (!vs_arena_usage(a, &u))
        return;
    json_t *d = device_json(&u);
    if (d) {
        t->live += (json_int_t)u.arena.live_bytes;
        t->cached += (json_int_t)u.arena.cached_bytes;
        t->demoted += (json_int_t)u.demoted_bytes;
        merge(&t->stages, &u.stages);
        merge(&t->tags, &u.tags);
        json_array_append_new(t->devices, d);
    }
    vs_arena_usage_free(&u);
}

static json_t *name_or_null(uint32_t id)
{
    const char *s = id ? vs_names_str(vs_rt_names(), id) : NULL;
    return s ? json_string(s) : json_null();
}

/* {"ledger","lent_out","lends","lent_released_bytes","lend_refusals","borrows",
 * "borrowed_bytes"}: this process as a lender and as a borrower (docs/lending.md). */
static json_t *lending_json(void)
{
    struct vs_lend_counters l;
    uint64_t borrows, borrowed;
    vs_lend_counters(&l);
    vs_borrow_counters(&borrows, &borrowed);
    return json_pack("{s:b,s:b,s:I,s:I,s:I,s:I,s:I}", "ledger", vs_ledger_pub_running(),
                     "lent_out", l.lent_out, "lends", (json_int_t)l.lends, "lent_released_bytes",
                     (json_int_t)l.released_bytes, "lend_refusals", (json_int_t)l.refused,
                     "borrows", (json_int_t)borrows, "borrowed_bytes", (json_int_t)borrowed);
}

char *vs_status_json(void)
{
    vs_init();
    struct totals t = {.devices = json_array()};
    json_t *stack = json_array();
    uint32_t ids[VS_STAGE_DEPTH];
    size_t n = vs_stage_stack(ids, VS_STAGE_DEPTH);
    for (size_t i = 0; i < n && i < VS_STAGE_DEPTH && stack; i++)
        json_array_append_new(stack, name_or_null(ids[i]));
    const struct vs_policy *p = vs_rt_policy();
    json_t *o = NULL, *stages = NULL, *tags = NULL;
    if (t.devices && stack) {
        vs_arenas_each(add_arena, &t);
        stages = t.stages.failed ? NULL : names_json(&t.stages);
        tags = t.tags.failed ? NULL : names_json(&t.tags);
    }
    if (stages && tags)
        o = json_pack("{s:i,s:s,s:o,s:o,s:O,s:I,s:I,s:I,s:O,s:O,s:O}", "pid", (int)getpid(),
                      "mode", vs_route_driver_serves() ? "fallback" : vs_mode_name(vs_cfg.mode),
                      "policy",
                      p ? json_string(vs_policy_filename(p)) : json_null(), "stage",
                      name_or_null(vs_stage_current()), "stack", stack, "live_bytes", t.live,
                      "cached_bytes", t.cached, "demoted_bytes", t.demoted, "stages", stages,
                      "tags", tags, "devices", t.devices);
    if (o)
        json_object_set_new(o, "lending", lending_json());
    json_t *calls = o ? json_object() : NULL;
    for (int f = 0; calls && f < VS_FAM_COUNT; f++)
        json_object_set_new(calls, vs_family_name((enum vs_family)f),
                            json_integer((json_int_t)vs_tally_calls((enum vs_family)f)));
    if (calls)
        json_object_set_new(o, "calls", calls);
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    json_decref(stack);
    json_decref(t.devices);
    json_decref(stages);
    json_decref(tags);
    free(t.stages.v);
    free(t.tags.v);
    return text;
}
