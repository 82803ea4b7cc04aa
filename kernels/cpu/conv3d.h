/* Causal 3D convolution of one output frame over a window of the frame (C reference).
 *
 * Windows (kernels/window.h) are rectangles of a frame at one resolution level; an activation
 * frame is stored as [C][h][w] over its window.
 *
 * Invariants:
 * - Zero padding exists only outside the frame (rows < 0 or >= H, columns < 0 or >= W). Inside
 *   the frame every pixel a kernel tap reaches must lie in the input window; callers check this
 *   with vs_window_covers(). This is what makes a tile with an exact halo produce the values of
 *   the whole frame: at a tile's interior edges the halo supplies real pixels, at the frame's
 *   edges the zero padding is the real padding.
 * - Time is causal: the kt input frames are the kt-1 previous frames and the current one, oldest
 *   first; a NULL frame is a zero frame (the zero padding in front of the first frame).
 * - Spatial kernels are square and odd (k x k, radius (k-1)/2), k <= 3 and kt <= 3: the shapes
 *   of the Wan decoder; 1x1x1 convs are pointwise.
 * - Exact sums: every output pixel starts at its bias and takes one fused multiply-add per tap,
 *   over input channels, then dt, ky, kx; a NULL frame is skipped, a tap outside the frame reads
 *   0 (as conv2d.h's padding). Which taps a pixel has depends only on its frame coordinates, so a
 *   pixel computed in any window, vector lane, thread or version (vs_conv3d_impl) is
 *   bit-identical to the whole frame's.
 */
#ifndef VS_KERNELS_CPU_CONV3D_H
#define VS_KERNELS_CPU_CONV3D_H

#include <stdbool.h>
#include <stddef.h>

#include "kernels/window.h"

#ifdef __cplusplus
extern "C" { /* also called from the CUDA sources */
#endif

enum { VS_CONV3D_MAX_KT = 3, VS_CONV3D_MAX_K = 3 };

struct vs_conv3d {
    int out_ch, in_ch, kt, k;  /* time taps, spatial kernel size (k x k) */
    const float *weight;       /* [out_ch][in_ch][kt][k][k] */
    const float *bias;         /* [out_ch] */
    const float *packed;       /* the CUDA backend's: weight in its per-tap layout on the device
                                  (kernels/cuda/backend.h); the CPU reads weight */
};

/* `w` grown by r pixels on each side, clipped to its frame: the input a conv of radius r needs. */
struct vs_window vs_window_grow(const struct vs_window *w, int r);

/* True when `in` holds every in-frame pixel within `radius` of `out` (both on the same frame). */
bool vs_window_covers(const struct vs_window *in, const struct vs_window *out, int radius);

/* out over wout = bias + sum over (in channel, dt, ky, kx) of weight * in[dt] at the tap.
 * in has c->kt entries, in[c->kt - 1] the current frame; each is [in_ch][win.h][win.w] or NULL.
 * Requires vs_window_covers(win, wout, (c->k - 1) / 2). out is [out_ch][wout.h][wout.w]. */
void vs_conv3d_frame(const struct vs_conv3d *c, const float *const *in, const struct vs_window *win,
                     float *out, const struct vs_window *wout);

/* The versions (conv3d.c says what each is), the fastest last; all give the exact sums above. */
enum vs_conv3d_impl { VS_CONV3D_GENERIC, VS_CONV3D_AVX2, VS_CONV3D_AVX512, VS_CONV3D_IMPLS };

const char *vs_conv3d_impl_name(enum vs_conv3d_impl impl);
bool vs_conv3d_impl_supported(enum vs_conv3d_impl impl);
/* The best version this CPU runs (what vs_conv3d_frame uses). */
enum vs_conv3d_impl vs_conv3d_best(void);
/* vs_conv3d_frame with version impl, which must be supported by this CPU. */
void vs_conv3d_frame_impl(enum vs_conv3d_impl impl, const struct vs_conv3d *c,
                          const float *const *in, const struct vs_window *win, float *out,
                          const struct vs_window *wout);

#ifdef __cplusplus
}
#endif

#endif
