/* 2-D convolution, stride 1, kernel 1x1 or 3x3, fp32, CHW planes.
 *
 * Works on a tile buffer: each edge has its own zero padding (1 at a true image border for 3x3,
 * 0 on an interior edge whose halo rows/columns are in the buffer), so the output is
 * (in_h + pad_top + pad_bottom - k + 1) x (in_w + pad_left + pad_right - k + 1).
 * Every output pixel starts at its bias and takes one fused multiply-add per tap, over input
 * channels, then kernel rows, then kernel columns, a padding tap reading 0, whatever the tile
 * geometry, vector lane or thread: a pixel computed in a tile is bit-identical to the full frame.
 * Weights are [cout][cin][k][k], bias [cout] (may be NULL). k must be 1 (no padding) or 3.
 * Threads split output rows and blocks of output channels. */
#ifndef VS_KERNELS_CPU_CONV2D_H
#define VS_KERNELS_CPU_CONV2D_H

#include <stdbool.h>

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
/* The best version this CPU runs (vs_conv2d_best). */
void vs_conv2d(const float *in, float *out, const float *weight, const float *bias,
               const struct vs_conv2d_geom *g);

/* The versions (conv2d.c says what each is), the fastest last. REF is the previous
 * implementation (taps summed without fusing, padding skipped): close to, not bit-identical with,
 * the others, which all give the exact results stated above. */
enum vs_conv2d_impl { VS_CONV2D_REF, VS_CONV2D_GENERIC, VS_CONV2D_AVX2, VS_CONV2D_AVX512, VS_CONV2D_IMPLS };

const char *vs_conv2d_impl_name(enum vs_conv2d_impl impl);
bool vs_conv2d_impl_supported(enum vs_conv2d_impl impl);
enum vs_conv2d_impl vs_conv2d_best(void);
/* impl must be supported by this CPU. */
void vs_conv2d_impl(enum vs_conv2d_impl impl, const float *in, float *out, const float *weight,
                    const float *bias, const struct vs_conv2d_geom *g);

#ifdef __cplusplus
}
#endif

#endif
