/* Arena replay: every event goes through the defragmenting arena (allocator/arena.h) built on
 * simcuda's driver table, as the shim would serve it, with the policy's stages, tags and
 * eviction when one is set (vs_replay_set_policy). The arena's options come from the
 * environment (VRAMSHIM_CACHE_MAX). */
#include <stdio.h>
#include <string.h>

#include "allocator/arena.h"
#include "allocator/evict.h"
#include "allocator/log.h"
#include "policy/policy.h"
#include "tools/trace/replay.h"
#include "tools/trace/replay_backend.h"

/* What vs_replay_set_policy gave; read in the replay child. */
static struct {
    const struct vs_policy *policy;
    struct vs_names *names;
    const struct vs_tracefile *trace;
    uint32_t stage;   /* the current stage of the replay (0: none) */
} vs_ar_policy;

void vs_replay_set_policy(const struct vs_policy *policy, struct vs_names *names,
                          const struct vs_tracefile *trace)
{
    vs_ar_policy.policy = policy;
    vs_ar_policy.names = names;
    vs_ar_policy.trace = trace;
    vs_ar_policy.stage = 0;
}

/* The stage and tag the shim would give ev: the policy's match on its call site, else what the
 * trace recorded (names the policy does not know are registered: they can still be victims of
 * no rule, and keep their own accounting). */
static void vs_ar_names(const struct vs_tracefile_event *ev, uint32_t *stage, uint32_t *tag)
{
    struct vs_policy_match m = {0};
    size_t n = 0;
    const char *const *frames =
        ev->site ? vs_tracefile_site_frames(vs_ar_policy.trace, ev->site, &n) : NULL;
    if (frames && vs_ar_policy.policy && vs_policy_has_matches(vs_ar_policy.policy))
        vs_policy_match_frames(vs_ar_policy.policy, frames, n, &m);
    *stage = m.stage ? m.stage
                     : ev->stage ? vs_names_intern(vs_ar_policy.names, ev->stage) : 0;
    *tag = m.tag ? m.tag : ev->tag ? vs_names_intern(vs_ar_policy.names, ev->tag) : 0;
}

/* The arena logs through the logger's sink, process-wide; the replay child has one arena. The
 * last line goes into the report (with the failure it explains), not to stderr, so it is said
 * once; a hint line stays with the out-of-memory line before it. */
static char vs_arena_log_line[1024];
static struct vs_simcuda *vs_arena_sim;

static void vs_arena_log_sink(const char *line)
{
    static const char hint[] = "vramshim: hint:";
    size_t n = strncmp(line, hint, sizeof hint - 1) ? 0 : strlen(vs_arena_log_line);
    snprintf(vs_arena_log_line + n, sizeof vs_arena_log_line - n, "%s%s", n ? "\n" : "", line);
}

static int vs_ar_open(struct vs_simcuda *sim, void **state, char *err, size_t errlen)
{
    struct vs_arena_options opt;
    vs_arena_options_from_env(&opt);
    vs_log_set_sink(vs_arena_log_sink);
    vs_evict_configure(vs_ar_policy.policy, vs_ar_policy.names);
    struct vs_arena *a;
    CUresult r = vs_arena_create(&sim->drv, sim->dev, sim->ctx, &opt, &a);
    if (r != CUDA_SUCCESS) {
        char name[64];
        snprintf(err, errlen, "creating the arena failed: %s%s%s",
                 vs_simcuda_error_name(sim, r, name, sizeof name),
                 vs_arena_log_line[0] ? ": " : "", vs_arena_log_line);
        return -1;
    }
    vs_arena_sim = sim;
    *state = a;
    return 0;
}

static CUresult vs_ar_alloc(void *state, const struct vs_tracefile_event *ev, CUstream s,
                            CUdeviceptr *p)
{
    uint32_t stage = 0, tag = 0;
    if (vs_ar_policy.names) {
        vs_ar_names(ev, &stage, &tag);
        /* a stage change runs the new stage's rule; running out of room there is not an error */
        if (stage && stage != vs_ar_policy.stage) {
            vs_ar_policy.stage = stage;
            vs_arena_stage_begin(state, stage);
        }
    }
    /* tagged as the shim tags it: by the allocation itself */
    struct vs_arena_alloc_req rq = {.size = ev->size, .async = ev->async, .stream = s, .tag = tag};
    CUresult r = vs_arena_alloc_req(state, &rq, p, NULL);
    if (r == CUDA_SUCCESS && tag && vs_ar_policy.policy) {
        const struct vs_policy_rule *rule = vs_policy_rule_of(vs_ar_policy.policy, tag);
        if (rule && (rule->has_headroom || rule->prefetch.n))
            vs_arena_apply_rule(state, tag);
    }
    return r;
}

static CUresult vs_ar_free(void *state, const struct vs_tracefile_event *ev, CUstream s,
                           CUdeviceptr p)
{
    return ev->async ? vs_arena_free_async(state, p, s) : vs_arena_free(state, p);
}

/* The device went idle, as after the cuCtxSynchronize the shim would report to the arena. */
static void vs_ar_settle(void *state)
{
    vs_arena_sim->drv.cuCtxSynchronize();
    vs_arena_device_synchronized(state);
}

static const char *vs_ar_last_log(void *state)
{
    (void)state;
    return vs_arena_log_line;
}

static void vs_ar_moves(void *state, uint64_t *demoted, uint64_t *promoted, uint64_t *host)
{
    struct vs_evict_stats st;
    vs_arena_evict_stats(state, &st);
    *demoted = st.demoted_total;
    *promoted = st.promoted_total;
    *host = st.host_bytes;
}

const struct vs_replay_backend vs_replay_arena_backend = {
    vs_ar_open, vs_ar_alloc, vs_ar_free, vs_ar_settle, vs_ar_last_log, vs_ar_moves,
};
