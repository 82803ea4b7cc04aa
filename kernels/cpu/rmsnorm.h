/* RMS norm over channels, per pixel (Wan 2.1's RMS_norm, fp32 reference).
 *
 * y[c][p] = x[c][p] / max(||x[.][p]||_2, 1e-12) * sqrt(C) * gamma[c], i.e. torch's
 * F.normalize(x, dim=channels) * C**0.5 * gamma with its eps. Each pixel is independent, so a
 * tile computes exactly the values of the whole frame and needs no halo.
 */
#ifndef VS_KERNELS_CPU_RMSNORM_H
#define VS_KERNELS_CPU_RMSNORM_H

#include <stdbool.h>
#include <stddef.h>

/* in and out are [c][n] (n pixels); they may be the same buffer. With silu, SiLU follows the
 * norm (the pairing every Wan block uses). */
void vs_rmsnorm(const float *in, float *out, int c, size_t n, const float *gamma, bool silu);

#endif
