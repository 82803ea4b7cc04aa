/* A part of the Wan decoder: consecutive stages [first, last) run over fixed windows, frame by
 * frame, as a push pipeline. The full-frame part (post_quant_conv .. mid block) is one part;
 * each spatial tile of the rest is another.
 *
 * Invariants:
 * - win[i - first] is stage i's input window, win[last - first] the part's output window; they
 *   come from plan_wan.c and each covers the next one's halo.
 * - All caches and output frames of the part are one vs_mem block, scratch another; both live
 *   from open to close, so a part carries its caches across every push of a video.
 * - A pushed frame flows through all stages before push returns (a temporal resample's two
 *   frames one after the other); each frame leaving the last stage goes to `emit`, in order.
 * - With a dry vs_mem, open only accounts for the memory (nothing may be pushed).
 */
#ifndef VS_KERNELS_WAN_PART_H
#define VS_KERNELS_WAN_PART_H

#include "kernels/error.h"
#include "kernels/mem.h"
#include "kernels/wan_stage.h"

typedef void (*vs_wan_emit_fn)(void *ctx, const float *frame, const struct vs_window *win);

struct vs_wan_part {
    const struct vs_wan_model *m;
    int first, last;
    struct vs_wan_stage_state *st; /* last - first entries */
    struct vs_mem *mem;
    float *block, *scratch;
    vs_wan_emit_fn emit;
    void *emit_ctx;
};

int vs_wan_part_open(struct vs_wan_part *p, const struct vs_wan_model *m, int first, int last,
                     const struct vs_window *win, struct vs_mem *mem, vs_wan_emit_fn emit,
                     void *emit_ctx, struct vs_err *err);
/* frame: [stages[first].in_ch][win[0].h][win[0].w]. */
void vs_wan_part_push(struct vs_wan_part *p, const float *frame);
void vs_wan_part_close(struct vs_wan_part *p);

#endif
