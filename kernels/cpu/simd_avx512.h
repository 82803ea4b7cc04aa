/* The AVX-512 instruction set for the kernels written once over vector macros (conv_band_simd.h,
 * silu_simd.h): the includer includes this, then the kernel, then simd_undef.h.
 *   SIMD(name)   the name with the instruction set's suffix; SIMD_TARGET the GCC target string
 *   VEC, VEC_I, MASK  float vector, int32 vector, lane mask; VL lanes per vector
 *   NV           vectors per convolution strip: 6 x NV accumulators, NV inputs and a weight fill
 *                29 of the 32 registers
 *   V_LOAD(p), V_MLOAD(m, p) (masked lanes read as 0, no access), V_ZERO(), V_BCAST(p) (*p in
 *   every lane), V_SET1(f), V_STORE(p, v), V_MSTORE(p, m, v), V_PUT(p, full, m, v) (all lanes
 *   if full, else those of m), M_LANES(lo, hi) (lanes l with lo <= l < hi; any lo, hi)
 *   V_ADD, V_MUL, V_DIV, V_FMA(a, b, c) (a * b + c, one rounding), V_FNMA(a, b, c) (-a * b + c),
 *   V_NEG (flips the sign bit), V_RINT (to nearest even)
 *   V_GT, V_LT, V_ISNAN: lane conditions for V_SEL(cond, a, b) (a where cond, else b)
 *   VI_SET1, VI_ADD, VI_SUB, VI_SRAI, VI_SLLI; VI_CVT (float to int, to nearest); VI_AS_VEC (bits)
 */
#include <immintrin.h>
#include <stdint.h>

#define SIMD(name) name##_avx512
#define SIMD_TARGET "avx512f"
#define VEC __m512
#define VEC_I __m512i
#define MASK __mmask16
#define VL 16
#define NV 4
#define V_LOAD(p) _mm512_loadu_ps(p)
#define V_MLOAD(m, p) _mm512_maskz_loadu_ps(m, p)
#define V_ZERO() _mm512_setzero_ps()
#define V_BCAST(p) _mm512_set1_ps(*(p))
#define V_SET1(f) _mm512_set1_ps(f)
#define V_STORE(p, v) _mm512_storeu_ps(p, v)
#define V_MSTORE(p, m, v) _mm512_mask_storeu_ps(p, m, v)
#define M_LANES(lo, hi) lanes16(lo, hi)
#define V_ADD(a, b) _mm512_add_ps(a, b)
#define V_MUL(a, b) _mm512_mul_ps(a, b)
#define V_DIV(a, b) _mm512_div_ps(a, b)
#define V_FMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define V_FNMA(a, b, c) _mm512_fnmadd_ps(a, b, c)
#define V_NEG(a)                                                                                   \
    _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(a), _mm512_set1_epi32(INT32_MIN)))
#define V_RINT(a) _mm512_roundscale_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define V_GT(a, b) _mm512_cmp_ps_mask(a, b, _CMP_GT_OQ)
#define V_LT(a, b) _mm512_cmp_ps_mask(a, b, _CMP_LT_OQ)
#define V_ISNAN(a) _mm512_cmp_ps_mask(a, a, _CMP_UNORD_Q)
#define V_SEL(m, a, b) _mm512_mask_blend_ps(m, b, a)
#define VI_SET1(i) _mm512_set1_epi32(i)
#define VI_ADD(a, b) _mm512_add_epi32(a, b)
#define VI_SUB(a, b) _mm512_sub_epi32(a, b)
#define VI_SRAI(a, n) _mm512_srai_epi32(a, n)
#define VI_SLLI(a, n) _mm512_slli_epi32(a, n)
#define VI_CVT(a) _mm512_cvtps_epi32(a)
#define VI_AS_VEC(a) _mm512_castsi512_ps(a)
#define V_PUT(p, full, m, v) ((full) ? V_STORE(p, v) : V_MSTORE(p, m, v))

#ifndef VS_SIMD_LANES16
#define VS_SIMD_LANES16
static inline __mmask16 lanes16(int lo, int hi)
{
    lo = lo < 0 ? 0 : lo > 16 ? 16 : lo;
    hi = hi < lo ? lo : hi > 16 ? 16 : hi;
    return (__mmask16)(((1u << hi) - 1) & ~((1u << lo) - 1));
}
#endif
