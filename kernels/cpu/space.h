/* Channels to space (and time): the shortcut of Wan 2.2's residual up blocks (diffusers'
 * DupUp3D: repeat_interleave over channels, then channel slots spread over a factor_t x f x f
 * block of time and space) and the unpatchify at the end of its decoder, as one gather.
 *
 * For an output pixel at frame coordinates (Y, X) of channel c, the slot is
 *   s = c * group + phase + (Y % f) * ystride + (X % f) * xstride
 * and the value comes from source channel s / repeats at pixel (Y / f, X / f):
 *   DupUp3D (out_ch, in_ch, factor_t, f): group = factor_t * f * f, phase = i * f * f for
 *     time sub-frame i, ystride = f, xstride = 1, repeats = out_ch * group / in_ch;
 *   unpatchify (patch p): f = p, group = p * p, phase 0, ystride 1, xstride p, repeats 1
 *     (diffusers' "(c r q) f h w -> c f (h q) (w r)").
 * Both windows are on their own frames (dst at the output resolution, src at 1/f of it) and src
 * must hold every source pixel dst's window reads, so tiles gather independently (exact). */
#ifndef VS_KERNELS_CPU_SPACE_H
#define VS_KERNELS_CPU_SPACE_H

#include <stdbool.h>

#include "kernels/cpu/conv3d.h"

#ifdef __cplusplus
extern "C" {
#endif

struct vs_to_space {
    int c;                /* output channels */
    int f;                /* spatial factor */
    int group, phase, ystride, xstride, repeats;
    bool add;             /* dst += gathered value (the shortcut), else dst = value */
};

/* The source window a dst window reads: rows [Y0 / f, (Y1 - 1) / f], clipped. */
struct vs_window vs_to_space_src(const struct vs_window *dst, int f);

/* dst [c][dwin.h][dwin.w], src [channels][swin.h][swin.w]; swin covers vs_to_space_src(dwin). */
void vs_to_space(float *dst, const struct vs_window *dwin, const float *src,
                 const struct vs_window *swin, const struct vs_to_space *g);

#ifdef __cplusplus
}
#endif

#endif
