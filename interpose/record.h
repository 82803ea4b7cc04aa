/* Trace records of hooked calls: the event plus the device it happened on. */
#ifndef VS_INTERPOSE_RECORD_H
#define VS_INTERPOSE_RECORD_H

#include "allocator/trace.h"
#include "interpose/hooks.h"

/* dev value meaning "the current context's device" (looked up only when tracing). */
#define VS_DEV_CURRENT (-2)

void vs_record_slow(struct vs_trace_event *e);
/* Same with a call site the caller captured already (NULL: the trace captures its own). */
void vs_record_slow_at(struct vs_trace_event *e, struct vs_site *site);

/* Traces an event of hook `id` when tracing is on (a load and a branch otherwise). */
static inline void vs_record(enum vs_hook_id id, enum vs_trace_ev ev, uint64_t ptr, uint64_t size,
                             CUstream stream, uint64_t handle, uint64_t offset, int dev)
{
    if (!vs_trace_enabled())
        return;
    struct vs_trace_event e = {
        .ev = ev,
        .api = vs_hook_name(id),
        .ptr = ptr,
        .size = size,
        .stream = (uint64_t)(uintptr_t)stream,
        .handle = handle,
        .offset = offset,
        .dev = dev,
    };
    vs_record_slow(&e);
}

#endif
