/* Status JSON (see status.h). */
#include "interpose/status.h"

#include <jansson.h>
#include <stdint.h>
#include <unistd.h>

#include "allocator/arenas.h"
#include "allocator/evict.h"
#include "interpose/init.h"
#include "interpose/route.h"
#include "interpose/runtime.h"
#include "interpose/stage.h"
#include "interpose/tally.h"

struct totals {
    json_t *devices, *stages, *tags;
    json_int_t live, cached, demoted;
};

static json_int_t int_of(json_t *obj, const char *key)
{
    return json_integer_value(json_object_get(obj, key));
}

/* Adds one device's per-name usage into the totals' object of the same kind. */
static void merge_names(json_t *into, json_t *from)
{
    const char *name;
    json_t *u;
    json_object_foreach(from, name, u) {
        json_t *t = json_object_get(into, name);
        if (!t) {
            t = json_pack("{s:I,s:I}", "live_bytes", (json_int_t)0, "demoted_bytes",
                          (json_int_t)0);
            if (!t || json_object_set_new(into, name, t))
                continue;
        }
        json_object_set_new(t, "live_bytes",
                            json_integer(int_of(t, "live_bytes") + int_of(u, "live_bytes")));
        json_object_set_new(t, "demoted_bytes",
                            json_integer(int_of(t, "demoted_bytes") + int_of(u, "demoted_bytes")));
    }
}

static void add_arena(struct vs_arena *a, void *ctx)
{
    struct totals *t = ctx;
    json_t *u = vs_arena_usage_json(a);
    if (!u)
        return;
    /* After a fallback the driver serves this device and nothing is demoted (api.c). */
    bool driver = vs_route_driver_serves();
    json_object_set_new(u, "serving", json_string(driver ? "driver" : "arena"));
    if (driver)
        json_object_set_new(u, "eviction", json_string("off"));
    t->live += int_of(u, "live_bytes");
    t->cached += int_of(u, "cached_bytes");
    t->demoted += int_of(u, "demoted_bytes");
    merge_names(t->stages, json_object_get(u, "stages"));
    merge_names(t->tags, json_object_get(u, "tags"));
    json_array_append_new(t->devices, u);
}

static json_t *name_or_null(uint32_t id)
{
    const char *s = id ? vs_names_str(vs_rt_names(), id) : NULL;
    return s ? json_string(s) : json_null();
}

char *vs_status_json(void)
{
    vs_init();
    struct totals t = {json_array(), json_object(), json_object(), 0, 0, 0};
    json_t *stack = json_array();
    uint32_t ids[VS_STAGE_DEPTH];
    size_t n = vs_stage_stack(ids, VS_STAGE_DEPTH);
    for (size_t i = 0; i < n && i < VS_STAGE_DEPTH && stack; i++)
        json_array_append_new(stack, name_or_null(ids[i]));
    const struct vs_policy *p = vs_rt_policy();
    json_t *o = NULL;
    if (t.devices && t.stages && t.tags && stack) {
        vs_arenas_each(add_arena, &t);
        o = json_pack("{s:i,s:s,s:o,s:o,s:O,s:I,s:I,s:I,s:O,s:O,s:O}", "pid", (int)getpid(),
                      "mode", vs_route_driver_serves() ? "fallback" : vs_mode_name(vs_cfg.mode),
                      "policy",
                      p ? json_string(vs_policy_filename(p)) : json_null(), "stage",
                      name_or_null(vs_stage_current()), "stack", stack, "live_bytes", t.live,
                      "cached_bytes", t.cached, "demoted_bytes", t.demoted, "stages", t.stages,
                      "tags", t.tags, "devices", t.devices);
    }
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
    json_decref(t.stages);
    json_decref(t.tags);
    return text;
}
