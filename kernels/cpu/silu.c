/* exp and SiLU over arrays (see silu.h for the exact operations). Versions:
 *  - generic: scalar, the reference sequence of operations; fallback on old CPUs.
 *  - avx2:    8 floats per step (AVX2 + FMA), the tail in a masked step.
 *  - avx512:  16 floats per step, the tail in a masked step.
 * vs_exp and vs_silu run the best version the CPU has; all give identical bits. */
#include "kernels/cpu/silu.h"

#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

/* Below LO exp rounds to 0; above HI it overflows (the clamp keeps n in range). */
#define LO -104.0f
#define HI 88.8f
#define LOG2E 1.44269504f
#define LN2_HI 0.693145752f  /* ln 2 to 16 bits: n * LN2_HI is exact */
#define LN2_LO 1.42860677e-6f /* ln 2 - LN2_HI */
/* 1/k!, k = 7 .. 2 */
#define C7 1.98412698e-4f
#define C6 1.38888889e-3f
#define C5 8.33333333e-3f
#define C4 4.16666667e-2f
#define C3 1.66666667e-1f
#define C2 0.5f

static float pow2i(int e) /* 2^e, -126 <= e <= 127 */
{
    uint32_t bits = (uint32_t)(e + 127) << 23;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

float vs_expf(float x)
{
    if (isnan(x))
        return x + x;
    float c = x > HI ? HI : x;
    c = c < LO ? LO : c;
    float n = rintf(c * LOG2E);
    float r = fmaf(-n, LN2_HI, c);
    r = fmaf(-n, LN2_LO, r);
    float p = fmaf(C7, r, C6);
    p = fmaf(p, r, C5);
    p = fmaf(p, r, C4);
    p = fmaf(p, r, C3);
    p = fmaf(p, r, C2);
    p = fmaf(p, r, 1.0f);
    p = fmaf(p, r, 1.0f);
    int ni = (int)n, n1 = ni >> 1; /* two steps: 2^n alone may not be a normal float */
    p = p * pow2i(ni - n1) * pow2i(n1);
    return x < LO ? 0.0f : p;
}

static void run_generic(float *x, size_t n, bool silu)
{
    for (size_t i = 0; i < n; i++)
        x[i] = silu ? x[i] / (1.0f + vs_expf(-x[i])) : vs_expf(x[i]);
}

/* vs_expf lane by lane: the same operations in the same order (FNMA(a, b, c) = fma(-a, b, c)). */
#define VEXP(name, T, I, TARGET, SET1, SET1I, MUL, ADD, FMA, FNMA, GT, LT, SEL, ISNAN, RINT, CVT,  \
             SRAI, SUBI, ADDI, SLLI, CASTI)                                                         \
    static inline __attribute__((always_inline, target(TARGET))) T name(T x)                      \
    {                                                                                              \
        T c = SEL(GT(x, SET1(HI)), SET1(HI), x);                                                   \
        c = SEL(LT(c, SET1(LO)), SET1(LO), c);                                                     \
        T n = RINT(MUL(c, SET1(LOG2E)));                                                           \
        T r = FNMA(n, SET1(LN2_HI), c);                                                            \
        r = FNMA(n, SET1(LN2_LO), r);                                                              \
        T p = FMA(SET1(C7), r, SET1(C6));                                                          \
        p = FMA(p, r, SET1(C5));                                                                   \
        p = FMA(p, r, SET1(C4));                                                                   \
        p = FMA(p, r, SET1(C3));                                                                   \
        p = FMA(p, r, SET1(C2));                                                                   \
        p = FMA(p, r, SET1(1.0f));                                                                 \
        p = FMA(p, r, SET1(1.0f));                                                                 \
        I ni = CVT(n), n1 = SRAI(ni, 1);                                                           \
        T s2 = CASTI(SLLI(ADDI(SUBI(ni, n1), SET1I(127)), 23));                                    \
        T s1 = CASTI(SLLI(ADDI(n1, SET1I(127)), 23));                                              \
        p = MUL(MUL(p, s2), s1);                                                                   \
        p = SEL(LT(x, SET1(LO)), SET1(0.0f), p);                                                   \
        return SEL(ISNAN(x), ADD(x, x), p);                                                        \
    }

/* AVX-512: masks select */
#define M512_GT(a, b) _mm512_cmp_ps_mask(a, b, _CMP_GT_OQ)
#define M512_LT(a, b) _mm512_cmp_ps_mask(a, b, _CMP_LT_OQ)
#define M512_SEL(m, a, b) _mm512_mask_blend_ps(m, b, a)
#define M512_ISNAN(a) _mm512_cmp_ps_mask(a, a, _CMP_UNORD_Q)
#define M512_RINT(a) _mm512_roundscale_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
VEXP(exp16, __m512, __m512i, "avx512f", _mm512_set1_ps, _mm512_set1_epi32, _mm512_mul_ps,
     _mm512_add_ps, _mm512_fmadd_ps, _mm512_fnmadd_ps, M512_GT, M512_LT, M512_SEL,
     M512_ISNAN, M512_RINT, _mm512_cvtps_epi32, _mm512_srai_epi32, _mm512_sub_epi32,
     _mm512_add_epi32, _mm512_slli_epi32, _mm512_castsi512_ps)

/* AVX2: all-ones lanes select */
#define M256_GT(a, b) _mm256_cmp_ps(a, b, _CMP_GT_OQ)
#define M256_LT(a, b) _mm256_cmp_ps(a, b, _CMP_LT_OQ)
#define M256_SEL(m, a, b) _mm256_blendv_ps(b, a, m)
#define M256_ISNAN(a) _mm256_cmp_ps(a, a, _CMP_UNORD_Q)
#define M256_RINT(a) _mm256_round_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
VEXP(exp8, __m256, __m256i, "avx2,fma", _mm256_set1_ps, _mm256_set1_epi32, _mm256_mul_ps,
     _mm256_add_ps, _mm256_fmadd_ps, _mm256_fnmadd_ps, M256_GT, M256_LT, M256_SEL,
     M256_ISNAN, M256_RINT, _mm256_cvtps_epi32, _mm256_srai_epi32, _mm256_sub_epi32,
     _mm256_add_epi32, _mm256_slli_epi32, _mm256_castsi256_ps)

/* A run over x: whole vectors, then the tail in one masked vector (lanes past n neither read
 * nor written). SiLU's -x flips the sign bit, as the scalar negation. */
#define VRUN(name, EXP, T, M, TARGET, VL, SET1, ADD, DIV, NEG, LOAD, STORE, TAIL, MLOAD, MSTORE)   \
    static __attribute__((target(TARGET))) T name##_step(T x, bool silu)                          \
    {                                                                                              \
        return silu ? DIV(x, ADD(SET1(1.0f), EXP(NEG(x)))) : EXP(x);                               \
    }                                                                                              \
    static __attribute__((target(TARGET))) void name(float *x, size_t n, bool silu)               \
    {                                                                                              \
        size_t i = 0;                                                                              \
        for (; i + VL <= n; i += VL)                                                               \
            STORE(x + i, name##_step(LOAD(x + i), silu));                                          \
        if (i < n) {                                                                               \
            M m = TAIL((int)(n - i));                                                              \
            MSTORE(x + i, m, name##_step(MLOAD(m, x + i), silu));                                  \
        }                                                                                          \
    }

#define M512_NEG(a)                                                                                \
    _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(a), _mm512_set1_epi32(INT32_MIN)))
#define M512_TAIL(k) ((__mmask16)((1u << (k)) - 1))
VRUN(run_avx512, exp16, __m512, __mmask16, "avx512f", 16, _mm512_set1_ps, _mm512_add_ps,
     _mm512_div_ps, M512_NEG, _mm512_loadu_ps, _mm512_storeu_ps, M512_TAIL, _mm512_maskz_loadu_ps,
     _mm512_mask_storeu_ps)

#define M256_NEG(a) _mm256_xor_ps(a, _mm256_set1_ps(-0.0f))
#define M256_TAIL(k)                                                                               \
    _mm256_cmpgt_epi32(_mm256_set1_epi32(k), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))
#define M256_MLOAD(m, p) _mm256_maskload_ps(p, m)
VRUN(run_avx2, exp8, __m256, __m256i, "avx2,fma", 8, _mm256_set1_ps, _mm256_add_ps, _mm256_div_ps,
     M256_NEG, _mm256_loadu_ps, _mm256_storeu_ps, M256_TAIL, M256_MLOAD, _mm256_maskstore_ps)

static const struct {
    const char *name;
    void (*fn)(float *x, size_t n, bool silu);
} g_impls[VS_SILU_IMPLS] = {
    [VS_SILU_GENERIC] = {"generic", run_generic},
    [VS_SILU_AVX2] = {"avx2", run_avx2},
    [VS_SILU_AVX512] = {"avx512", run_avx512},
};

const char *vs_silu_impl_name(enum vs_silu_impl impl)
{
    return g_impls[impl].name;
}

bool vs_silu_impl_supported(enum vs_silu_impl impl)
{
    switch (impl) {
    case VS_SILU_AVX512:
        return __builtin_cpu_supports("avx512f");
    case VS_SILU_AVX2:
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    default:
        return true;
    }
}

static enum vs_silu_impl best(void)
{
    return vs_silu_impl_supported(VS_SILU_AVX512) ? VS_SILU_AVX512
           : vs_silu_impl_supported(VS_SILU_AVX2) ? VS_SILU_AVX2
                                                  : VS_SILU_GENERIC;
}

void vs_silu_run(enum vs_silu_impl impl, float *x, size_t n, bool silu)
{
    g_impls[impl].fn(x, n, silu);
}

void vs_exp(float *x, size_t n)
{
    vs_silu_run(best(), x, n, false);
}

void vs_silu(float *x, size_t n)
{
    vs_silu_run(best(), x, n, true);
}
