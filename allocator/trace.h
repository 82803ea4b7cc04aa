/* The JSON Lines allocation trace (docs/tracing.md), written off the hot path.
 *
 * File format, one JSON object per line:
 *   {"vramshim_trace":1,"pid":P,"ppid":Q,"clock":"monotonic","t0_unix_ns":U,
 *    "devices":[{"ordinal":0,"total":BYTES},...]}                        first line
 *   {"ev":"site","site":N,"frames":["module+0xOFF symbol+0xOFF",...]}    before first use of N
 *   {"t":NS,"ev":"alloc","api":"cuMemAllocAsync_ptsz","ptr":"0x...","size":B,"stream":"0x...",
 *    "dev":D,"stage":"","tag":"","site":N}                               one per event
 * ev is alloc, free, oom, map, unmap, create, release, stage, demote or promote; map
 * and create add "handle" ("offset" for map); stage adds "action" ("begin" or "end") and names
 * the stage in "stage". Any event adds "reserved":B when its device has an arena: the physical
 * bytes the arena held (mapped + cached) when the event was recorded, what the OOM line calls
 * "reserved"; absent in pass-through and in older traces. t is CLOCK_MONOTONIC in ns; lines
 * appear in the order the events were recorded, so t never decreases. site 0 means no call site
 * (stacks off).
 *
 * Invariants: vs_trace_emit() copies the event into an in-memory queue (a short critical
 * section, never I/O); a background thread formats and writes. The queue is drained at
 * vs_trace_shutdown() and before fork; a child continues in PATH.<child pid> with its own header
 * (and its own site lines). Events emitted after shutdown are written by the emitting thread.
 * String fields (api, stage, tag) must be static or otherwise outlive the trace.
 */
#ifndef VS_ALLOCATOR_TRACE_H
#define VS_ALLOCATOR_TRACE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "allocator/driver.h"

enum vs_trace_ev {
    VS_EV_ALLOC,
    VS_EV_FREE,
    VS_EV_OOM,
    VS_EV_MAP,
    VS_EV_UNMAP,
    VS_EV_CREATE,
    VS_EV_RELEASE,
    VS_EV_STAGE,
    VS_EV_DEMOTE,  /* a block moved to host memory (allocator/evict.h); api: what asked */
    VS_EV_PROMOTE, /* and back to the device */
    VS_EV_COUNT
};

struct vs_trace_event {
    enum vs_trace_ev ev;
    const char *api;   /* the entry point as the program called it */
    uint64_t ptr;      /* device pointer (0 for create/release) */
    uint64_t size;     /* bytes (0 when unknown) */
    uint64_t stream;   /* CUstream as passed, 0 for synchronous calls */
    uint64_t handle;   /* VMM handle for map/create/release */
    uint64_t offset;   /* map offset into the handle */
    int dev;           /* device ordinal, -1 when unknown */
    const char *stage; /* NULL: "" */
    const char *tag;   /* NULL: "" */
    const char *action; /* VS_EV_STAGE: "begin" or "end" */
    /* Set by the trace itself, not by callers: the device arena's reserved bytes when
     * the event was recorded (vs_arenas_reserved), when the device has an arena. */
    bool has_reserved;
    uint64_t reserved;
};

/* Enables tracing to path. stacks: record call sites. drv: the real driver, used once for the
 * header's device list (read when the first event arrives, when the driver is initialised). */
void vs_trace_configure(const char *path, bool stacks, const struct vs_driver *drv);

/* Whether events are being recorded: one relaxed load, inline for the hooks' hot path. */
extern atomic_bool vs_trace_on;
static inline bool vs_trace_enabled(void)
{
    return atomic_load_explicit(&vs_trace_on, memory_order_relaxed);
}

/* Records an event stamped now, with the caller's call site when stacks are on. */
void vs_trace_emit(const struct vs_trace_event *e);

/* Call sites for callers that need one before their event (the policy's call-site stages).
 * vs_site_capture_caller() walks the stack once (tracing on or off; NULL when nothing could be
 * captured) and vs_trace_emit_at() records an event with that site instead of walking again. */
struct vs_site;
struct vs_site *vs_site_capture_caller(void);
void vs_trace_emit_at(const struct vs_trace_event *e, struct vs_site *site);
/* A word per site for the shim's own per-site answer (0 until set; sites live until exit). */
_Atomic uint64_t *vs_site_memo(struct vs_site *s);
/* Frames of s as policy patterns match them, innermost first: each native frame's bare symbol
 * ("" when none is known), then its Python frames ("py:FILE:LINE:QUALNAME"). Writes up to max
 * pointers into out (strings in buf, cut when buf is full); returns how many. Thread-safe. */
unsigned vs_site_match_frames(const struct vs_site *s, const char **out, unsigned max, char *buf,
                              size_t buflen);

/* Writes everything queued, stops the writer thread. Later events are written synchronously. */
void vs_trace_shutdown(void);

void vs_trace_fork_prepare(void);
void vs_trace_fork_parent(void);
void vs_trace_fork_child(void);

#endif
