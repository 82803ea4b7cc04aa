/* Bit-level conversions: the decoder computes in fp32, so only storage is narrowed. */
#include "kernels/cpu/cast.h"

#include <string.h>

static uint32_t bits_of(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

uint16_t vs_f32_to_bf16(float f)
{
    uint32_t u = bits_of(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) /* NaN: keep it quiet */
        return (uint16_t)(u >> 16 | 0x40);
    return (uint16_t)((u + 0x7fffu + (u >> 16 & 1)) >> 16);
}

float vs_bf16_to_f32(uint16_t b)
{
    uint32_t u = (uint32_t)b << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

uint16_t vs_f32_to_f16(float f)
{
    uint32_t u = bits_of(f), sign = u >> 16 & 0x8000, a = u & 0x7fffffffu;
    if (a > 0x7f800000u)
        return (uint16_t)(sign | 0x7e00);
    if (a >= 0x477ff000u) /* rounds to 65520 or more: infinity */
        return (uint16_t)(sign | 0x7c00);
    if (a >= 0x38800000u) { /* normal half: drop 13 mantissa bits, round to nearest even */
        uint32_t r = a - 0x38000000u;
        return (uint16_t)(sign | (r + 0xfffu + (r >> 13 & 1)) >> 13);
    }
    if (a < 0x33000000u) /* below half the smallest subnormal */
        return (uint16_t)sign;
    /* subnormal half: shift the implicit-one mantissa into place with round to nearest even */
    uint32_t man = (a & 0x7fffff) | 0x800000, shift = 126 - (a >> 23);
    uint32_t half = man >> shift, rem = man & ((1u << shift) - 1), mid = 1u << (shift - 1);
    half += rem > mid || (rem == mid && (half & 1));
    return (uint16_t)(sign | half);
}

static float load(const void *src, enum vs_dtype dt, size_t i)
{
    const unsigned char *b = src;
    uint16_t h;
    switch (dt) {
    case VS_DT_F16:
        memcpy(&h, b + 2 * i, 2);
        return vs_f16_to_f32(h);
    case VS_DT_BF16:
        memcpy(&h, b + 2 * i, 2);
        return vs_bf16_to_f32(h);
    default:
        return ((const float *)src)[i];
    }
}

static void store(void *dst, enum vs_dtype dt, size_t i, float v)
{
    unsigned char *b = dst;
    uint16_t h;
    switch (dt) {
    case VS_DT_F16:
        h = vs_f32_to_f16(v);
        memcpy(b + 2 * i, &h, 2);
        return;
    case VS_DT_BF16:
        h = vs_f32_to_bf16(v);
        memcpy(b + 2 * i, &h, 2);
        return;
    default:
        ((float *)dst)[i] = v;
    }
}

void vs_cast(void *dst, enum vs_dtype to, const void *src, enum vs_dtype from, size_t n)
{
    if (to == from) {
        memmove(dst, src, n * (to == VS_DT_F32 ? 4 : 2));
        return;
    }
    for (size_t i = 0; i < n; i++)
        store(dst, to, i, load(src, from, i));
}
