/* Token-major linear layer: y[n][cout] = b[cout] + sum_ci w[cout][ci] * x[n][ci] (a 1x1 conv
 * applied to tokens, used by the attention block's q/k/v/out projections). b may be NULL. */
#ifndef VS_KERNELS_CPU_LINEAR_H
#define VS_KERNELS_CPU_LINEAR_H

#include <stddef.h>

void vs_linear(const float *x, const float *w, const float *b, float *y, size_t n, int cin,
               int cout);

#endif
