/* exp and SiLU (x * sigmoid(x) = x / (1 + exp(-x))) over float arrays, fp32, in place.
 *
 * exp is the decoder's own, not libm's: range reduction x = n ln2 + r (|r| <= ln2 / 2, two FMAs),
 * a degree-7 polynomial in r (Horner, FMAs), scaling by 2^n in two exact steps; within 2 ulp of
 * exp over the float range, 0 below -104, inf above 88.8, NaN for NaN. Every version below
 * computes exactly these operations per element, so they give identical bits (and tile, thread
 * and vector position never change a value). CUDA twin of SiLU: kernels/cuda/silu.cu. */
#ifndef VS_KERNELS_CPU_SILU_H
#define VS_KERNELS_CPU_SILU_H

#include <stdbool.h>
#include <stddef.h>

/* One element, the generic version (for scalars, e.g. attention's rescaling factor). */
float vs_expf(float x);

void vs_exp(float *x, size_t n);
void vs_silu(float *x, size_t n);

/* The versions (silu.c says what each is), the fastest last. */
enum vs_silu_impl { VS_SILU_GENERIC, VS_SILU_AVX2, VS_SILU_AVX512, VS_SILU_IMPLS };

const char *vs_silu_impl_name(enum vs_silu_impl impl);
bool vs_silu_impl_supported(enum vs_silu_impl impl);
/* vs_exp (silu false) or vs_silu (silu true) with version impl, supported by this CPU. */
void vs_silu_run(enum vs_silu_impl impl, float *x, size_t n, bool silu);

#endif
