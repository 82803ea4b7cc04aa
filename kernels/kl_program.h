/* The AutoencoderKL decoder as a flat list of operations on one activation, which the executor
 * runs over one full-frame tile (monolithic) or over many tiles (exact/blend).
 *
 * Ops act on a tile's current tensor `cur` and, inside a ResNet, a saved copy of its input:
 *   CONV (1x1/3x3), NORM (GroupNorm, optionally + SiLU: a statistics synchronisation point),
 *   SAVE (copy cur for the residual), RESIDUAL (cur += shortcut(saved)), UPSAMPLE (nearest x2),
 *   ATTN (the mid block's global attention, GroupNorm and residual included: full frame only).
 * ops[0 .. cut) is the low-resolution part run full-frame (post_quant_conv, conv_in, mid block);
 * ops[cut .. n) is the tiled part. `halo` is the receptive-field radius of the tiled part in
 * pixels at the cut's resolution: an interior tile edge needs that much neighbour data for its
 * owned pixels to be exact (3x3 conv: +1; nearest x2 going backwards: ceil(r / 2)). */
#ifndef VS_KERNELS_KL_PROGRAM_H
#define VS_KERNELS_KL_PROGRAM_H

#include "kernels/kl_decoder.h"

enum vs_op_kind { VS_OP_CONV, VS_OP_NORM, VS_OP_SAVE, VS_OP_RESIDUAL, VS_OP_UPSAMPLE, VS_OP_ATTN };

struct vs_op {
    enum vs_op_kind kind;
    const struct vs_kl_conv *conv; /* CONV; RESIDUAL's shortcut (NULL: identity) */
    const struct vs_kl_norm *norm; /* NORM */
    int silu;                      /* NORM */
};

struct vs_program {
    const struct vs_kl_decoder *d;
    struct vs_op *ops;
    int n, cut;
    int halo;
    int norms_tiled; /* NORM ops in the tiled part: synchronisation points */
};

int vs_program_build(struct vs_program *p, const struct vs_kl_decoder *d, struct vs_err *err);
void vs_program_free(struct vs_program *p);

#endif
