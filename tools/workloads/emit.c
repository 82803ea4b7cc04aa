/* Trace emitter (see emit.h). The clock follows a simple device model so timestamps look like
 * a real run: 100 TFLOP/s for math, 1.5 TB/s for memory traffic, 25 GB/s for weight uploads,
 * a few microseconds per call. */
#include "tools/workloads/emit.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define VS_FLOPS_PER_NS 100000u
#define VS_BYTES_PER_NS 1500u
#define VS_UPLOAD_BYTES_PER_NS 25u
#define VS_CALL_NS 2000u
#define VS_KERNEL_NS 5000u
#define VS_PTR_BASE 0x7f0000000000ull
#define VS_PTR_ALIGN 512u  /* what cudaMallocAsync pools hand out */

void vs_emit_begin(struct vs_emit *e, FILE *out, const char *workload, uint64_t device_total,
                   unsigned elt_bytes)
{
    memset(e, 0, sizeof *e);
    e->out = out;
    e->next_ptr = VS_PTR_BASE;
    e->compute_stream = 0;               /* PyTorch's default stream */
    e->load_stream = 0x5a0000001000ull;  /* a side stream for uploads, as ComfyUI uses */
    e->elt_bytes = elt_bytes;
    e->phase = VS_PHASE_RUNNING;
    fprintf(out, "{\"vramshim_trace\":1,\"pid\":0,\"devices\":[{\"ordinal\":0,\"total\":%" PRIu64
                 "}],\"workload\":\"%s\"}\n",
            device_total, workload);
}

int vs_emit_end(struct vs_emit *e)
{
    free(e->tensors);
    e->tensors = NULL;
    if (fflush(e->out) || ferror(e->out))
        e->failed = true;
    return e->failed ? -1 : 0;
}

static void vs_emit_json_str(FILE *out, const char *key, const char *s)
{
    if (s)
        fprintf(out, ",\"%s\":\"%s\"", key, s);
    else
        fprintf(out, ",\"%s\":null", key);
}

void vs_emit_stage(struct vs_emit *e, const char *stage)
{
    e->stage = stage;
    fprintf(e->out, "{\"t\":%" PRIu64 ",\"ev\":\"stage\"", e->t_ns);
    vs_emit_json_str(e->out, "stage", stage);
    fputs("}\n", e->out);
}

void vs_emit_set_phase(struct vs_emit *e, enum vs_emit_phase phase, const char *param_tag)
{
    e->phase = phase;
    e->param_tag = param_tag;
}

static void vs_emit_event(struct vs_emit *e, const char *ev, const char *api,
                          const struct vs_emit_tensor *t, const char *name)
{
    e->t_ns += VS_CALL_NS;
    fprintf(e->out,
            "{\"t\":%" PRIu64 ",\"ev\":\"%s\",\"api\":\"%s\",\"ptr\":\"0x%" PRIx64
            "\",\"size\":%" PRIu64 ",\"stream\":\"0x%" PRIx64 "\",\"dev\":0",
            e->t_ns, ev, api, t->ptr, t->size, t->stream);
    vs_emit_json_str(e->out, "stage", e->stage);
    vs_emit_json_str(e->out, "tag", t->tag);
    fputs(",\"site\":0", e->out); /* no call site (docs/tracing.md) */
    if (name)
        vs_emit_json_str(e->out, "name", name);
    fputs("}\n", e->out);
}

static vs_tensor vs_emit_new(struct vs_emit *e, uint64_t bytes, uint64_t stream, const char *tag,
                             const char *name)
{
    if (e->n_tensors == e->cap_tensors) {
        size_t cap = e->cap_tensors ? 2 * e->cap_tensors : 256;
        struct vs_emit_tensor *grown = realloc(e->tensors, cap * sizeof *grown);
        if (!grown) {
            e->failed = true;
            return VS_NO_TENSOR;
        }
        e->tensors = grown;
        e->cap_tensors = cap;
    }
    struct vs_emit_tensor *t = &e->tensors[e->n_tensors];
    *t = (struct vs_emit_tensor){.ptr = e->next_ptr, .size = bytes, .stream = stream,
                                 .refs = 1, .tag = tag};
    e->next_ptr += (bytes + VS_PTR_ALIGN - 1) / VS_PTR_ALIGN * VS_PTR_ALIGN;
    e->live_bytes += bytes;
    if (e->live_bytes > e->peak_live_bytes)
        e->peak_live_bytes = e->live_bytes;
    vs_emit_event(e, "alloc", "cuMemAllocAsync", t, name);
    return e->n_tensors++;
}

vs_tensor vs_emit_alloc(struct vs_emit *e, uint64_t bytes, const char *tag, const char *name)
{
    if (e->phase != VS_PHASE_RUNNING)
        return VS_NO_TENSOR;
    if (!tag)
        tag = e->next_tag;
    e->next_tag = NULL;
    return vs_emit_new(e, bytes, e->compute_stream, tag, name);
}

void vs_emit_tag_next(struct vs_emit *e, const char *tag)
{
    e->next_tag = tag;
}

void vs_emit_param(struct vs_emit *e, const char *module, const char *what, uint64_t count)
{
    if (e->phase != VS_PHASE_LOADING)
        return;
    char name[256];
    snprintf(name, sizeof name, "%s.%s", module, what);
    uint64_t bytes = count * e->elt_bytes;
    vs_emit_new(e, bytes, e->load_stream, e->param_tag, name);
    e->t_ns += bytes / VS_UPLOAD_BYTES_PER_NS;
}

vs_tensor vs_emit_ref(struct vs_emit *e, vs_tensor t)
{
    if (t != VS_NO_TENSOR)
        e->tensors[t].refs++;
    return t;
}

void vs_emit_unref(struct vs_emit *e, vs_tensor t)
{
    if (t == VS_NO_TENSOR)
        return;
    struct vs_emit_tensor *x = &e->tensors[t];
    if (--x->refs)
        return;
    e->live_bytes -= x->size;
    vs_emit_event(e, "free", "cuMemFreeAsync", x, NULL);
}

void vs_emit_free_tagged(struct vs_emit *e, const char *tag)
{
    for (size_t i = 0; i < e->n_tensors; i++)
        if (e->tensors[i].refs && e->tensors[i].tag && !strcmp(e->tensors[i].tag, tag)) {
            e->tensors[i].refs = 1; /* offloading drops the device copy whoever holds it */
            vs_emit_unref(e, i);
        }
}

void vs_emit_work(struct vs_emit *e, uint64_t flops, uint64_t bytes)
{
    if (e->phase == VS_PHASE_RUNNING)
        e->t_ns += VS_KERNEL_NS + flops / VS_FLOPS_PER_NS + bytes / VS_BYTES_PER_NS;
}
