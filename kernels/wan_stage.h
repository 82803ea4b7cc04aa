/* One Wan decoder stage stepped frame by frame over fixed windows (a tile or the whole frame).
 *
 * Invariants:
 * - in, mid, out are the stage's windows: input (at the input resolution), the RES block's conv1
 *   output, and output; out is what the next stage reads, in what this stage must supply. Every
 *   conv's input window covers its output window's halo (planned by plan_wan.c).
 * - The caches hold each causal conv's last input frames for this window and live as long as
 *   the video: frame f of a stage always sees frames f-1, f-2 of the same stage.
 * - A temporal resample's first frame skips time_conv and does not enter its cache (diffusers'
 *   first-chunk behaviour); later frames go through time_conv, whose cache starts from zeros.
 * - Scratch is dead when a step returns, so stages of one part share it.
 * - `input` is the frame the last step consumed; it stays valid while the frames that step
 *   emitted flow down the part, which is when a residual up block's resample reads its source
 *   stage's input through `skip` (bound by the part).
 */
#ifndef VS_KERNELS_WAN_STAGE_H
#define VS_KERNELS_WAN_STAGE_H

#include "kernels/backend.h"
#include "kernels/cpu/conv3d_cache.h"
#include "kernels/wan_model.h"

struct vs_wan_stage_state {
    struct vs_window in, mid, out;
    struct vs_conv3d_cache cache1; /* CONV, HEAD: the conv; RES: conv1 */
    struct vs_conv3d_cache cache2; /* RES: conv2; RESAMPLE: time_conv */
    float *frames[2];              /* output frames of the last step, [out_ch][out.h][out.w] */
    long frames_in;
    const float *input;            /* [in_ch][in.h][in.w]: the last step's input frame */
    const struct vs_wan_stage_state *skip; /* RESAMPLE with skip >= 0: the source's state */
};

/* True when the stage's windows lie in their frames (vs_window_valid) and every conv of the stage
 * finds its halo in its input window (the planner's job). */
bool vs_wan_stage_windows_ok(const struct vs_wan_stage *s, const struct vs_wan_stage_state *st);

/* Floats of cache storage (cache1 then cache2) and of output frames. */
size_t vs_wan_stage_cache_floats(const struct vs_wan_stage *s, const struct vs_wan_stage_state *st);
size_t vs_wan_stage_out_floats(const struct vs_wan_stage *s, const struct vs_wan_stage_state *st);
size_t vs_wan_stage_scratch_floats(const struct vs_wan_stage *s,
                                   const struct vs_wan_stage_state *st);

/* Binds caches and output frames to storage of cache_floats + out_floats floats. */
void vs_wan_stage_bind(const struct vs_wan_stage *s, struct vs_wan_stage_state *st, float *storage);

/* Consumes one input frame ([in_ch][in.h][in.w]); returns the number of frames it put in
 * st->frames (1 or 2), computing with be. The loader guarantees the attention's head dim is
 * supported. */
int vs_wan_stage_step(const struct vs_backend *be, const struct vs_wan_stage *s,
                      struct vs_wan_stage_state *st, const float *in, float *scratch);

#endif
