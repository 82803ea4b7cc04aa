// Storage dtype conversions: the CUDA twin of kernels/cpu/cast.c, with the same bit-level
// rounding (nearest even, NaN kept, overflow to infinity), so both give identical bits.
#include "kernels/cuda/common.cuh"

#include <stdint.h>

__device__ static float from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

__device__ static uint32_t to_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

__device__ static float load(const void *src, int dt, size_t i)
{
    if (dt == VS_DT_F32)
        return ((const float *)src)[i];
    const uint16_t h = ((const uint16_t *)src)[i];
    if (dt == VS_DT_BF16)
        return from_bits((uint32_t)h << 16);
    const uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff;
    if (exp == 0x1f)
        return from_bits(sign | 0x7f800000u | (man << 13));
    if (exp)
        return from_bits(sign | ((exp + 112) << 23) | (man << 13));
    // subnormal half: man * 2^-24, exact in fp32
    const float v = (float)man * 5.9604644775390625e-8f;
    return sign ? -v : v;
}

__device__ static uint16_t to_f16(float f)
{
    const uint32_t u = to_bits(f), sign = u >> 16 & 0x8000, a = u & 0x7fffffffu;
    if (a > 0x7f800000u)
        return (uint16_t)(sign | 0x7e00);
    if (a >= 0x477ff000u)
        return (uint16_t)(sign | 0x7c00);
    if (a >= 0x38800000u) {
        const uint32_t r = a - 0x38000000u;
        return (uint16_t)(sign | (r + 0xfffu + (r >> 13 & 1)) >> 13);
    }
    if (a < 0x33000000u)
        return (uint16_t)sign;
    const uint32_t man = (a & 0x7fffff) | 0x800000, shift = 126 - (a >> 23);
    uint32_t half = man >> shift;
    const uint32_t rem = man & ((1u << shift) - 1), mid = 1u << (shift - 1);
    half += rem > mid || (rem == mid && (half & 1));
    return (uint16_t)(sign | half);
}

__device__ static uint16_t to_bf16(float f)
{
    const uint32_t u = to_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)(u >> 16 | 0x40);
    return (uint16_t)((u + 0x7fffu + (u >> 16 & 1)) >> 16);
}

// v1: grid-stride, one value per thread per step.
__global__ static void cast_kernel(void *dst, int to, const void *src, int from, size_t n)
{
    const size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        const float v = load(src, from, i);
        if (to == VS_DT_F32)
            ((float *)dst)[i] = v;
        else
            ((uint16_t *)dst)[i] = to == VS_DT_F16 ? to_f16(v) : to_bf16(v);
    }
}

extern "C" int vs_cuda_cast(void *dst, enum vs_dtype to, const void *src, enum vs_dtype from,
                            size_t n, cudaStream_t stream)
{
    if (to == VS_DT_OTHER || from == VS_DT_OTHER)
        return -1;
    if (n == 0)
        return 0;
    VS_LAUNCH(cast_kernel, vs_cuda_blocks(n), VS_CUDA_THREADS, 0, stream, dst, (int)to, src,
              (int)from, n);
    return vs_cuda_launched();
}
