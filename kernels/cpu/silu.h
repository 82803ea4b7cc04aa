/* SiLU in place: x * sigmoid(x), fp32. CUDA twin: kernels/cuda/silu.cu. */
#ifndef VS_KERNELS_CPU_SILU_H
#define VS_KERNELS_CPU_SILU_H

#include <stddef.h>

void vs_silu(float *x, size_t n);

#endif
