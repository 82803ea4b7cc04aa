/* Replaying a trace's allocations and frees on simcuda, through the arena or straight to the
 * simulated driver (pass-through), to see whether it fits a device of a given size and how
 * much physical memory it takes.
 *
 * Each replay runs in a forked child that sets SIMCUDA_VRAM and then loads simcuda, so the two
 * runs start from the same empty device and share nothing. Every trace stream becomes a stream
 * of its own (0 stays the legacy stream); trace pointers map to the pointers the replay got.
 * Before an allocation that follows frees, the replay lets the device finish the work queued so
 * far: it models a GPU that keeps up with the program, which makes every run give the same
 * answer. The replay stops at the first event that fails.
 */
#ifndef VS_TRACE_REPLAY_H
#define VS_TRACE_REPLAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tools/trace/tracefile.h"

enum vs_replay_mode { VS_REPLAY_ARENA, VS_REPLAY_PASSTHROUGH };

/* Device sizes a replay simulates: simcuda needs 2 MiB (one granule); the arena keeps host
 * bookkeeping per granule of twice the device, so 1 TiB (above any GPU made) bounds it. */
#define VS_REPLAY_VRAM_MIN (2ull << 20)
#define VS_REPLAY_VRAM_MAX (1ull << 40)

struct vs_replay_result {
    bool ran;                     /* false: the replay could not start; message says why */
    bool fits;                    /* every event succeeded */
    size_t failed;                /* when !fits: index in trace->events of the failing event */
    char error[48];               /* its CUresult, by name */
    uint64_t peak_live_bytes;     /* largest sum of live requested sizes */
    uint64_t peak_physical_bytes; /* largest simcuda_physical_in_use(0) seen after an alloc */
    uint64_t demoted_bytes, promoted_bytes; /* moved by the policy's eviction (arena only) */
    uint64_t peak_host_bytes;     /* largest host memory holding demoted granules */
    char message[1024];           /* setup failure, or the allocator's log line(s) at the failure */
};

const char *vs_replay_mode_name(enum vs_replay_mode mode);

struct vs_policy;
struct vs_names;

/* The policy the arena replay follows (NULL: none), with the registry its names are in (NULL:
 * no stages or tags at all); trace is the one replayed (its call sites meet the policy's match
 * patterns). Set before vs_replay_run; the three must outlive it. Each allocation then runs in
 * the stage and gets the tag the shim would give it: the policy's match on the call site's
 * frames, else the stage and tag recorded in the trace; with a policy, a new stage runs its rule
 * (prefetch, headroom), a tag with a rule runs it, and allocations that do not fit demote the
 * current stage's victims first. Without one, stages and tags only name memory (the arena's
 * out-of-memory hint uses them). */
void vs_replay_set_policy(const struct vs_policy *policy, struct vs_names *names,
                          const struct vs_tracefile *trace);

/* Replays trace on a simulated device of `vram` bytes. Progress lines go to stderr for long
 * traces when `progress` is set. Always fills *out. */
void vs_replay_run(const struct vs_tracefile *trace, enum vs_replay_mode mode, uint64_t vram,
                   bool progress, struct vs_replay_result *out);

/* peak live / peak physical, 0 when nothing was allocated. */
double vs_replay_utilisation(const struct vs_replay_result *r);

#endif
