/* The trace emitter every workload generator writes through: it owns the clock, the fake device
 * addresses, the tensors' reference counts and the JSON Lines output (docs/tracing.md).
 *
 * A generator describes a model's forward pass once; the emitter runs it in two phases:
 * - loading: only parameters are allocated (on the load stream, tagged with the model), so
 *   weights come first, in module order, as `model.to("cuda")` would do;
 * - running: only activations are allocated (on the compute stream, untagged unless the
 *   generator tags them) and freed when their last holder drops them.
 * Calls that do not belong to the current phase do nothing and return VS_NO_TENSOR, so the same
 * forward code serves both phases.
 *
 * Invariants: output is a pure function of the calls made (no time, no randomness); addresses
 * are never reused, so a pointer names one allocation; a tensor is freed exactly once, when
 * its reference count reaches zero.
 */
#ifndef VS_WORKLOADS_EMIT_H
#define VS_WORKLOADS_EMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef size_t vs_tensor;
#define VS_NO_TENSOR ((vs_tensor)-1)

enum vs_emit_phase { VS_PHASE_LOADING, VS_PHASE_RUNNING };

struct vs_emit_tensor {
    uint64_t ptr, size, stream;
    unsigned refs;
    const char *tag;
};

struct vs_emit {
    FILE *out;
    enum vs_emit_phase phase;
    uint64_t t_ns;
    uint64_t next_ptr;
    uint64_t compute_stream, load_stream;
    unsigned elt_bytes;        /* activation and weight element size (2: fp16, 4: fp32) */
    const char *stage;
    const char *param_tag;     /* tag of parameters: the model's name */
    const char *next_tag;      /* tag of the next activation, then cleared */
    struct vs_emit_tensor *tensors;
    size_t n_tensors, cap_tensors;
    uint64_t live_bytes, peak_live_bytes;
    bool failed;               /* out of memory or a write error; reported by vs_emit_end */
};

/* Starts a trace: writes the header naming the workload and the device size it targets. */
void vs_emit_begin(struct vs_emit *e, FILE *out, const char *workload, uint64_t device_total,
                   unsigned elt_bytes);

/* Finishes the trace. Returns 0, or -1 when writing failed. Live tensors stay live. */
int vs_emit_end(struct vs_emit *e);

/* Writes a stage event; later allocations carry this stage. */
void vs_emit_stage(struct vs_emit *e, const char *stage);

void vs_emit_set_phase(struct vs_emit *e, enum vs_emit_phase phase, const char *param_tag);

/* Allocates an activation of `bytes` (running phase only) with one reference. tag may be NULL. */
vs_tensor vs_emit_alloc(struct vs_emit *e, uint64_t bytes, const char *tag, const char *name);

/* Tags the next activation allocated (e.g. "io" for a result the program keeps). */
void vs_emit_tag_next(struct vs_emit *e, const char *tag);

/* Allocates a parameter of `count` elements (loading phase only), named "MODULE.what". */
void vs_emit_param(struct vs_emit *e, const char *module, const char *what, uint64_t count);

/* Frees every live tensor tagged `tag` (a model offloaded to the CPU). */
void vs_emit_free_tagged(struct vs_emit *e, const char *tag);

/* Adds a holder to t and returns it (h = x in Python). */
vs_tensor vs_emit_ref(struct vs_emit *e, vs_tensor t);

/* Drops a holder; the last one frees the tensor. VS_NO_TENSOR is ignored. */
void vs_emit_unref(struct vs_emit *e, vs_tensor t);

/* Advances the clock by the time a kernel doing `flops` and moving `bytes` would take. */
void vs_emit_work(struct vs_emit *e, uint64_t flops, uint64_t bytes);

#endif
