/* What replay.c drives: an allocator under test, opened in the replay child on a loaded
 * simcuda. One implementation per replay mode (replay_arena.c, replay_passthrough.c). */
#ifndef VS_TRACE_REPLAY_BACKEND_H
#define VS_TRACE_REPLAY_BACKEND_H

#include "tools/trace/simcuda_load.h"
#include "tools/trace/tracefile.h"

struct vs_replay_backend {
    /* Returns 0, or -1 with a message in err. *state is passed to the other calls. */
    int (*open)(struct vs_simcuda *sim, void **state, char *err, size_t errlen);
    CUresult (*alloc)(void *state, const struct vs_tracefile_event *ev, CUstream s,
                      CUdeviceptr *p);
    CUresult (*free)(void *state, const struct vs_tracefile_event *ev, CUstream s,
                     CUdeviceptr p);
    /* Called before an allocation that follows frees: waits until the device has run all work
     * queued so far, so the replay models a device that keeps up with the program and gives
     * the same answer on every run. */
    void (*settle)(void *state);
    /* The allocator's last log line (e.g. its out-of-memory report), "" when none. */
    const char *(*last_log)(void *state);
    /* Bytes demoted and promoted so far and host bytes held now; NULL: the backend never moves
     * memory to the host. */
    void (*moves)(void *state, uint64_t *demoted, uint64_t *promoted, uint64_t *host);
};

extern const struct vs_replay_backend vs_replay_arena_backend;
extern const struct vs_replay_backend vs_replay_passthrough_backend;

#endif
