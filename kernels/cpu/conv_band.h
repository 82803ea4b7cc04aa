/* The banded SIMD convolution that conv2d.c and conv3d.c share (their avx2 and avx512 versions):
 * a 2-D convolution summed over kt time taps, stride 1, k 1 or 3. A 2-D conv is kt = 1.
 *
 * Every output pixel starts at its bias (0 if NULL) and takes one fused multiply-add per tap, in
 * (input channel, time tap, kernel row, kernel column) order: a tap outside the input buffers reads
 * 0, a NULL time tap is skipped. So a pixel's bits depend only on which taps it has, not on the
 * vector lane, strip, band or thread that computes it, nor on the instruction set. */
#ifndef VS_KERNELS_CPU_CONV_BAND_H
#define VS_KERNELS_CPU_CONV_BAND_H

#include <stddef.h>

enum { VS_CONV_BAND_MAX_KT = 3 };

struct vs_conv_band {
    const float *const *in; /* kt buffers [cin][in_h][in_w], oldest first; NULL (a zero frame,
                               skipped) only before the first non-NULL one; in[kt - 1] not NULL */
    int kt;                 /* 1 .. VS_CONV_BAND_MAX_KT */
    const float *weight;    /* [cout][cin][kt][k][k] */
    const float *bias;      /* [cout], or NULL */
    float *out;             /* [cout][oh][ow] */
    int cin, cout, k, in_h, in_w, oh, ow;
    int top, left;          /* buffer row and column of output pixel (0, 0)'s tap (0, 0); for
                               k = 1 every tap must lie in the buffers (they are read in place) */
};

/* Computes the convolution with the avx2 (AVX2 + FMA) or avx512 (AVX-512F) kernel: the caller
 * checks that the CPU has it (isa.h). */
void vs_conv_band_avx2(const struct vs_conv_band *j);
void vs_conv_band_avx512(const struct vs_conv_band *j);

#endif
