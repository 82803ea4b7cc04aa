/* The AVX2 + FMA instruction set for the kernels written once over vector macros: the same
 * macros as simd_avx512.h (see there), with 8-float vectors; lane conditions and masks are
 * vectors of all-ones lanes. NV 2: 6 x 2 accumulators, 2 inputs and a weight fill 15 of the 16
 * registers. */
#include <immintrin.h>

#define SIMD(name) name##_avx2
#define SIMD_TARGET "avx2,fma"
#define VEC __m256
#define VEC_I __m256i
#define MASK __m256i
#define VL 8
#define NV 2
#define V_LOAD(p) _mm256_loadu_ps(p)
#define V_MLOAD(m, p) _mm256_maskload_ps(p, m)
#define V_ZERO() _mm256_setzero_ps()
#define V_BCAST(p) _mm256_broadcast_ss(p)
#define V_SET1(f) _mm256_set1_ps(f)
#define V_STORE(p, v) _mm256_storeu_ps(p, v)
#define V_MSTORE(p, m, v) _mm256_maskstore_ps(p, m, v)
#define M_LANES(lo, hi) lanes8(lo, hi)
#define V_ADD(a, b) _mm256_add_ps(a, b)
#define V_MUL(a, b) _mm256_mul_ps(a, b)
#define V_DIV(a, b) _mm256_div_ps(a, b)
#define V_FMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define V_FNMA(a, b, c) _mm256_fnmadd_ps(a, b, c)
#define V_NEG(a) _mm256_xor_ps(a, _mm256_set1_ps(-0.0f))
#define V_RINT(a) _mm256_round_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define V_GT(a, b) _mm256_cmp_ps(a, b, _CMP_GT_OQ)
#define V_LT(a, b) _mm256_cmp_ps(a, b, _CMP_LT_OQ)
#define V_ISNAN(a) _mm256_cmp_ps(a, a, _CMP_UNORD_Q)
#define V_SEL(m, a, b) _mm256_blendv_ps(b, a, m)
#define VI_SET1(i) _mm256_set1_epi32(i)
#define VI_ADD(a, b) _mm256_add_epi32(a, b)
#define VI_SUB(a, b) _mm256_sub_epi32(a, b)
#define VI_SRAI(a, n) _mm256_srai_epi32(a, n)
#define VI_SLLI(a, n) _mm256_slli_epi32(a, n)
#define VI_CVT(a) _mm256_cvtps_epi32(a)
#define VI_AS_VEC(a) _mm256_castsi256_ps(a)
#define V_PUT(p, full, m, v) ((full) ? V_STORE(p, v) : V_MSTORE(p, m, v))

#ifndef VS_SIMD_LANES8
#define VS_SIMD_LANES8
static inline __attribute__((target("avx2"))) __m256i lanes8(int lo, int hi)
{
    const __m256i l = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    lo = lo < -1 ? -1 : lo > 8 ? 8 : lo;
    hi = hi < 0 ? 0 : hi > 8 ? 8 : hi;
    return _mm256_and_si256(_mm256_cmpgt_epi32(l, _mm256_set1_epi32(lo - 1)),
                            _mm256_cmpgt_epi32(_mm256_set1_epi32(hi), l));
}
#endif
