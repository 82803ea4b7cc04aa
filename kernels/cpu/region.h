/* Moving CHW data between buffers of different geometry (tile buffers with halos, crops of a
 * full frame), the residual add, and the channel-major <-> token-major transpose. Offsets
 * (y0, x0) locate the destination's (or the smaller operand's) origin inside the source. */
#ifndef VS_KERNELS_CPU_REGION_H
#define VS_KERNELS_CPU_REGION_H

#include <stddef.h>

/* dst[c][dh][dw] = src[c][y0 + y][x0 + x] for a src of sh x sw planes. */
void vs_crop(const float *src, int c, int sh, int sw, int y0, int x0, float *dst, int dh, int dw);
/* dst[c][y][x] += src[c][y0 + y][x0 + x] (residual add of a larger-or-equal src). */
void vs_add_crop(float *dst, int c, int dh, int dw, const float *src, int sh, int sw, int y0,
                 int x0);
/* out[cols][rows] = in[rows][cols]^T. */
void vs_transpose(const float *in, float *out, size_t rows, size_t cols);

#endif
