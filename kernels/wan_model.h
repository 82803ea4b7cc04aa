/* Wan 2.1 and 2.2 decoder internals: the layer list ("stages") shared by the loader, the planner
 * and the executor.
 *
 * Invariants:
 * - stages[] is the decoder in execution order: post_quant_conv, conv_in, mid ResNet, mid
 *   attention, mid ResNet, the up blocks' ResNets and resamplers, head (Wan 2.2: then UNPATCH).
 *   Each stage consumes one frame and emits one (a resample with time_conv emits two, except for
 *   its first frame).
 * - stages[i].out_ch == stages[i+1].in_ch; the spatial scale grows by vs_wan_stage_upscale at
 *   each stage (2 at a RESAMPLE, the patch size at UNPATCH).
 * - Wan 2.2's residual up blocks: the block's resample has skip = index of the block's first
 *   stage, whose input (one frame at half the resolution) goes through DupUp3D and is added to
 *   each frame the resample emits; skip >= cut, so the source is in the same part.
 * - Stages before `cut` (which include the attention, global per frame) run on whole frames;
 *   stages from `cut` on are local (convs, per-pixel norms, nearest upsampling) and run in tiles.
 *   No stage before `cut` changes the frame count.
 * - Weight pointers point into `owned` buffers, freed with the model.
 */
#ifndef VS_KERNELS_WAN_MODEL_H
#define VS_KERNELS_WAN_MODEL_H

#include <stdbool.h>
#include <stddef.h>

#include "kernels/cpu/conv3d.h"

enum vs_wan_kind {
    VS_WAN_CONV,     /* causal conv3d (post_quant_conv 1x1x1, conv_in 3x3x3) */
    VS_WAN_RES,      /* RMS, SiLU, conv1, RMS, SiLU, conv2, + shortcut (1x1x1 conv or identity) */
    VS_WAN_ATTN,     /* per frame: RMS, to_qkv, single-head attention over pixels, proj, + x */
    VS_WAN_RESAMPLE, /* [time_conv, frames x2], nearest x2, conv2d 3x3 */
    VS_WAN_HEAD,     /* RMS, SiLU, conv_out */
    VS_WAN_UNPATCH,  /* Wan 2.2: [3 * p * p][h][w] -> [3][p * h][p * w] (diffusers' unpatchify) */
};

struct vs_wan_stage {
    enum vs_wan_kind kind;
    char name[64];          /* diffusers module name, for messages */
    int in_ch, out_ch;
    const float *gamma;     /* RES: norm1; ATTN: norm; HEAD: norm_out */
    const float *gamma2;    /* RES: norm2 */
    struct vs_conv3d conv;  /* CONV, HEAD: the conv; RES: conv1; ATTN: to_qkv;
                               RESAMPLE: the 2-D conv (kt 1) */
    struct vs_conv3d conv2; /* RES: conv2; ATTN: proj; RESAMPLE: time_conv when temporal */
    struct vs_conv3d shortcut; /* RES with in_ch != out_ch */
    bool has_shortcut, temporal;
    int skip;               /* RESAMPLE: first stage of its residual up block, or -1 */
    int skip_repeats;       /* DupUp3D's repeats: out_ch * factor_t * 4 / the source's in_ch */
    int patch;              /* UNPATCH: p */
};

struct vs_wan_model {
    int version;            /* 21 or 22 (residual up blocks) */
    int z_dim;
    int n_stages, cut;
    struct vs_wan_stage *stages;
    float **owned;
    int n_owned;
};

/* Spatial radius of a local stage at its output resolution (RESAMPLE: after upsampling). */
int vs_wan_stage_radius(const struct vs_wan_stage *s);
/* Factor by which the stage grows the frame's height and width (1, 2 or the patch size). */
int vs_wan_stage_upscale(const struct vs_wan_stage *s);

#endif
