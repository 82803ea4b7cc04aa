/* 2-D convolution, stride 1, kernel 1x1 or 3x3, fp32, CHW planes.
 *
 * Works on a tile buffer: each edge has its own zero padding (1 at a true image border for 3x3,
 * 0 on an interior edge whose halo rows/columns are in the buffer), so the output is
 * (in_h + pad_top + pad_bottom - k + 1) x (in_w + pad_left + pad_right - k + 1).
 * Every output pixel sums input channels, then kernel rows, then kernel columns in that order,
 * whatever the tile geometry: a pixel computed in a tile is bit-identical to the full frame.
 * Weights are [cout][cin][k][k], bias [cout] (may be NULL). k must be 1 (no padding) or 3.
 * Threads split output channels. */
#ifndef VS_KERNELS_CPU_CONV2D_H
#define VS_KERNELS_CPU_CONV2D_H

#ifdef __cplusplus
extern "C" { /* also called from the CUDA sources */
#endif

struct vs_conv2d_geom {
    int cin, cout, k;
    int in_h, in_w;
    int pad_top, pad_bottom, pad_left, pad_right;
};

int vs_conv2d_out_h(const struct vs_conv2d_geom *g);
int vs_conv2d_out_w(const struct vs_conv2d_geom *g);
void vs_conv2d(const float *in, float *out, const float *weight, const float *bias,
               const struct vs_conv2d_geom *g);

#ifdef __cplusplus
}
#endif

#endif
