/* PyTorch memory snapshots (torch.cuda.memory._record_memory_history() then
 * _dump_snapshot(), the format torch/cuda/_memory_viz.py reads) as vramshim traces.
 *
 * Each device's trace entries become events of that device: `alloc` an alloc, `free_completed`
 * (or the older `free`) a free, `oom` an oom; `free_requested`, `segment_*` and `snapshot` are
 * the caching allocator's own business and are skipped. Blocks freed in the trace without being
 * allocated in it, and blocks still allocated in `segments` that the trace never allocated,
 * were allocated before the trace's window began: they are allocated at its start. Each
 * entry's Python frames (files ending in .py) become the event's call site; C++ frames are left
 * out. Times are the entries' time_us; without them, entries are 1 us apart in order. */
#ifndef VS_TRACE_TORCH_IMPORT_H
#define VS_TRACE_TORCH_IMPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vs_torch_counts {
    size_t allocs, frees, ooms, before, sites, skipped, devices;
};

/* Reads the snapshot at in and writes the trace to out (device_total: bytes written as each
 * device's total, 0 for unknown). Returns 0, or -1 with "PATH: byte N: what" (or "PATH: what")
 * in err; out is removed then. */
int vs_torch_import(const char *in, const char *out, uint64_t device_total, bool progress,
                    struct vs_torch_counts *counts, char *err, size_t errlen);

/* The same on a snapshot in memory, writing to fp (for the fuzz target). */
int vs_torch_convert(const char *name, const unsigned char *buf, size_t len,
                     uint64_t device_total, bool progress, void *fp,
                     struct vs_torch_counts *counts, char *err, size_t errlen);

#endif
