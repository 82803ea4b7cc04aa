/* The instruction sets of the kernels' SIMD versions (simd_avx512.h, simd_avx2.h). */
#ifndef VS_KERNELS_CPU_ISA_H
#define VS_KERNELS_CPU_ISA_H

#include <stdbool.h>

enum vs_isa { VS_ISA_NONE /* plain C */, VS_ISA_AVX2 /* with FMA */, VS_ISA_AVX512 };

/* Whether this CPU runs code built for isa. */
bool vs_isa_supported(enum vs_isa isa);

#endif
