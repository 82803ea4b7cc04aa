/* Push pipeline over a run of Wan stages (see wan_part.h). */
#include "kernels/wan_part.h"

#include <stdlib.h>
#include <string.h>

int vs_wan_part_open(struct vs_wan_part *p, const struct vs_wan_model *m, int first, int last,
                     const struct vs_window *win, struct vs_mem *mem, vs_wan_emit_fn emit,
                     void *emit_ctx, struct vs_err *err)
{
    memset(p, 0, sizeof *p);
    p->m = m;
    p->first = first;
    p->last = last;
    p->mem = mem;
    p->emit = emit;
    p->emit_ctx = emit_ctx;
    p->st = calloc((size_t)(last - first), sizeof *p->st);
    if (!p->st)
        return vs_err_set(err, "out of host memory for the Wan decoder's layer state");
    size_t block = 0, scratch = 0;
    for (int i = first; i < last; i++) {
        const struct vs_wan_stage *s = &m->stages[i];
        struct vs_wan_stage_state *st = &p->st[i - first];
        st->in = win[i - first];
        st->out = win[i - first + 1];
        /* conv1's output: the halo conv2 needs around the block's output. */
        st->mid = vs_window_grow(&st->out, (s->conv2.k - 1) / 2);
        /* A residual up block's shortcut source runs in the same part (skip >= cut). */
        st->skip = s->skip >= first ? &p->st[s->skip - first] : NULL;
        if (!vs_wan_stage_windows_ok(s, st)) {
            vs_wan_part_close(p);
            return vs_err_set(err, "Wan decoder: the window planned for %s misses part of its "
                                   "halo (planner error)", s->name);
        }
        block += vs_wan_stage_cache_floats(s, st) + vs_wan_stage_out_floats(s, st);
        size_t sc = vs_wan_stage_scratch_floats(s, st);
        scratch = sc > scratch ? sc : scratch;
    }
    p->block = vs_mem_floats(mem, block, VS_POOL_WORK);
    p->scratch = vs_mem_floats(mem, scratch, VS_POOL_WORK);
    if (!p->block || !p->scratch) {
        vs_wan_part_close(p);
        return vs_err_set(err, "out of host memory for the Wan decoder's caches (%zu MiB)",
                          (block + scratch) * sizeof(float) >> 20);
    }
    if (!mem->dry) {
        float *at = p->block;
        for (int i = first; i < last; i++) {
            const struct vs_wan_stage *s = &m->stages[i];
            struct vs_wan_stage_state *st = &p->st[i - first];
            vs_wan_stage_bind(s, st, at);
            at += vs_wan_stage_cache_floats(s, st) + vs_wan_stage_out_floats(s, st);
        }
    }
    return 0;
}

static void push_from(struct vs_wan_part *p, int i, const float *frame)
{
    if (i == p->last) {
        p->emit(p->emit_ctx, frame, &p->st[i - 1 - p->first].out);
        return;
    }
    struct vs_wan_stage_state *st = &p->st[i - p->first];
    int n = vs_wan_stage_step(p->mem->be, &p->m->stages[i], st, frame, p->scratch);
    for (int j = 0; j < n; j++)
        push_from(p, i + 1, st->frames[j]);
}

void vs_wan_part_push(struct vs_wan_part *p, const float *frame)
{
    push_from(p, p->first, frame);
}

void vs_wan_part_close(struct vs_wan_part *p)
{
    if (p->mem) {
        vs_mem_free(p->mem, p->block);
        vs_mem_free(p->mem, p->scratch);
    }
    free(p->st);
    memset(p, 0, sizeof *p);
}
