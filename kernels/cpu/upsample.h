/* Nearest-neighbour x2 upsampling of CHW planes: out[c][y][x] = in[c][y/2][x/2]. A tile buffer
 * covering rows a..b maps to rows 2a..2b+1, so tiles upsample independently. */
#ifndef VS_KERNELS_CPU_UPSAMPLE_H
#define VS_KERNELS_CPU_UPSAMPLE_H

void vs_upsample_nearest2x(const float *in, float *out, int c, int h, int w);

#endif
