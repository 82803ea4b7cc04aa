/* The public C API (include/vramshim.h): argument checks and return codes around stage.c,
 * the arenas and the policy.
 *
 * Invariants: every entry point first runs the lazy initialisation (vs_init: settings, trace,
 * policy, control socket), so it works before the first CUDA call; nothing here dereferences a
 * device pointer; name arguments are read at most VS_NAME_MAX + 1 bytes far.
 */
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "allocator/arenas.h"
#include "interpose/api.h"
#include "interpose/init.h"
#include "allocator/log.h"
#include "interpose/route.h"
#include "interpose/runtime.h"
#include "interpose/stage.h"
#include "interpose/status.h"
#include "vramshim.h"

#define VS_API __attribute__((visibility("default")))

static void api_init(void)
{
    vs_init();
    vs_rt_init();
}

/* Copies text into buf[0..n) like snprintf; returns strlen(text) (INT_MAX at most). */
static int copy_out(const char *text, char *buf, size_t n)
{
    size_t len = strlen(text);
    if (n) {
        size_t k = len < n - 1 ? len : n - 1;
        memcpy(buf, text, k);
        buf[k] = '\0';
    }
    return len > INT_MAX ? INT_MAX : (int)len;
}

VS_API int vramshim_stage_begin(const char *name)
{
    api_init();
    return vs_stage_begin(name, VS_STAGE_API);
}

VS_API int vramshim_stage_end(const char *name)
{
    api_init();
    return vs_stage_end(name, VS_STAGE_API);
}

VS_API int vramshim_tag(CUdeviceptr p, const char *tag)
{
    api_init();
    if (!tag || !vs_name_valid(tag, strnlen(tag, VS_NAME_MAX + 1)))
        return VRAMSHIM_EINVAL;
    struct vs_arena *a = vs_arenas_owner(p);
    if (!a || !vs_arena_is_block(a, p))
        return VRAMSHIM_ENOTFOUND;
    struct vs_names *names = vs_rt_names();
    uint32_t id = names ? vs_names_intern(names, tag) : 0;
    if (!id) {
        vs_log(VS_LOG_ERROR, "stage registry full or unavailable; tag %s not set", tag);
        return VRAMSHIM_EFAIL;
    }
    /* The block may have been freed since the check: the arena says so. */
    return vs_arena_set_tag(a, p, id) == CUDA_SUCCESS ? VRAMSHIM_OK : VRAMSHIM_ENOTFOUND;
}

int vs_api_move(const char *name, bool demote, size_t *moved_out)
{
    api_init();
    if (!name || !vs_name_valid(name, strnlen(name, VS_NAME_MAX + 1)))
        return VRAMSHIM_EINVAL;
    struct vs_names *names = vs_rt_names();
    uint32_t id = names ? vs_names_find(names, name) : 0;
    if (!id)
        return VRAMSHIM_ENOTFOUND;
    if (vs_cfg.mode != VS_MODE_ARENA || vs_route_driver_serves())
        return VRAMSHIM_EUNSUPPORTED;
    size_t moved = 0;
    CUresult r = demote ? vs_arenas_demote(id, &moved) : vs_arenas_promote(id, &moved);
    if (r == CUDA_ERROR_NOT_SUPPORTED && !moved)
        return VRAMSHIM_EUNSUPPORTED;
    if (r != CUDA_SUCCESS && !moved) {
        vs_log(VS_LOG_WARN, "%s %s: driver error %d", demote ? "demote" : "promote", name, (int)r);
        return VRAMSHIM_EFAIL;
    }
    if (moved_out)
        *moved_out = moved;
    return VRAMSHIM_OK;
}

VS_API int vramshim_demote(const char *stage_or_tag)
{
    return vs_api_move(stage_or_tag, true, NULL);
}

VS_API int vramshim_promote(const char *stage_or_tag)
{
    return vs_api_move(stage_or_tag, false, NULL);
}

VS_API int vramshim_stats_json(char *buf, size_t n)
{
    api_init();
    if (!buf && n)
        return VRAMSHIM_EINVAL;
    char *text = vs_status_json();
    if (!text)
        return VRAMSHIM_EFAIL;
    int len = copy_out(text, buf, n);
    free(text);
    return len;
}

VS_API int vramshim_policy_match_function(const char *module, const char *qualname,
                                          char *stage_buf, size_t n)
{
    api_init();
    if (!qualname || (!stage_buf && n))
        return VRAMSHIM_EINVAL;
    const struct vs_policy *p = vs_rt_policy();
    const struct vs_policy_rule *r =
        p ? vs_policy_match_function(p, module, qualname, VS_RULE_STAGE) : NULL;
    if (!r) {
        if (n)
            stage_buf[0] = '\0';
        return 0;
    }
    return copy_out(r->name_str, stage_buf, n);
}

VS_API int vramshim_policy_patterns_json(char *buf, size_t n)
{
    api_init();
    if (!buf && n)
        return VRAMSHIM_EINVAL;
    json_t *a = json_array();
    const struct vs_policy *p = vs_rt_policy();
    for (size_t i = 0; a && p && i < vs_policy_rule_count(p); i++) {
        const struct vs_policy_rule *r = vs_policy_rule_at(p, i);
        for (size_t k = 0; r->kind == VS_RULE_STAGE && k < r->n_match; k++)
            json_array_append_new(a, json_string(r->match[k]));
    }
    char *text = a ? json_dumps(a, JSON_COMPACT) : NULL;
    json_decref(a);
    if (!text)
        return VRAMSHIM_EFAIL;
    int len = copy_out(text, buf, n);
    free(text);
    return len;
}
