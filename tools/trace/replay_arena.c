/* Arena replay: every event goes through the defragmenting arena (allocator/arena.h) built on
 * simcuda's driver table, as the shim would serve it. The arena's options come from the
 * environment (VRAMSHIM_CACHE_MAX). */
#include <stdio.h>

#include "allocator/arena.h"
#include "tools/trace/replay_backend.h"

/* The arena logs through a process-wide sink; the replay child has one arena. The last line
 * goes into the report (with the failure it explains), not to stderr, so it is said once. */
static char vs_arena_log_line[512];
static struct vs_simcuda *vs_arena_sim;

static void vs_arena_log_sink(const char *line)
{
    snprintf(vs_arena_log_line, sizeof vs_arena_log_line, "%s", line);
}

static int vs_ar_open(struct vs_simcuda *sim, void **state, char *err, size_t errlen)
{
    struct vs_arena_options opt;
    vs_arena_options_from_env(&opt);
    vs_arena_set_log_sink(vs_arena_log_sink);
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
    return ev->async ? vs_arena_alloc_async(state, ev->size, s, p)
                     : vs_arena_alloc(state, ev->size, p);
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

const struct vs_replay_backend vs_replay_arena_backend = {
    vs_ar_open, vs_ar_alloc, vs_ar_free, vs_ar_settle, vs_ar_last_log,
};
