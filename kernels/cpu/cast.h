/* Storage dtype conversions (F32, F16, BF16) of host arrays; narrowing rounds to nearest even,
 * NaN stays NaN, overflow becomes infinity. CUDA twin: kernels/cuda/cast.cu. */
#ifndef VS_KERNELS_CPU_CAST_H
#define VS_KERNELS_CPU_CAST_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/safetensors.h"

uint16_t vs_f32_to_f16(float f);
uint16_t vs_f32_to_bf16(float f);
float vs_bf16_to_f32(uint16_t b);
void vs_cast(void *dst, enum vs_dtype to, const void *src, enum vs_dtype from, size_t n);

#endif
