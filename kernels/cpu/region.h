/* Moving CHW data between buffers of different geometry (tile buffers with halos, crops of a
 * full frame), the residual add, and the channel-major <-> token-major transpose. Offsets
 * (y0, x0) locate the destination's (or the smaller operand's) origin inside the source. */
#ifndef VS_KERNELS_CPU_REGION_H
#define VS_KERNELS_CPU_REGION_H

#include <stdbool.h>
#include <stddef.h>

/* dst[c][dh][dw] = src[c][y0 + y][x0 + x] for a src of sh x sw planes. */
void vs_crop(const float *src, int c, int sh, int sw, int y0, int x0, float *dst, int dh, int dw);
/* dst[c][y][x] += src[c][y0 + y][x0 + x] (residual add of a larger-or-equal src). */
void vs_add_crop(float *dst, int c, int dh, int dw, const float *src, int sh, int sw, int y0,
                 int x0);
/* dst[c][y0 + y][x0 + x] = src[c][sy0 + y][sx0 + x] for y < h, x < w (dst: dh x dw planes,
 * src: sh x sw), clamped to [-1, 1] when clamp (NaN passes through). */
void vs_paste(float *dst, int c, int dh, int dw, int y0, int x0, const float *src, int sh, int sw,
              int sy0, int sx0, int h, int w, bool clamp);
/* Blend accumulation (tile_exec.c's blend mode): out[c][y0 + y][x0 + x] += wy[y] * wx[x] *
 * src[c][y][x] and wsum[y0 + y][x0 + x] += wy[y] * wx[x] (out: c x H x W, src: c x h x w). */
void vs_blend_acc(float *out, float *wsum, int c, int H, int W, int y0, int x0, const float *src,
                  int h, int w, const float *wy, const float *wx);
/* out[c][i] /= wsum[i] for i < hw. */
void vs_blend_div(float *out, const float *wsum, int c, size_t hw);
/* out[cols][rows] = in[rows][cols]^T. */
void vs_transpose(const float *in, float *out, size_t rows, size_t cols);

#endif
