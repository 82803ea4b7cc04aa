/* See dots.h for the order every version keeps. */
#include "kernels/cpu/dots.h"

#include <immintrin.h>
#include <math.h>

#include "kernels/cpu/isa.h"

/* The pairwise lane sum of dots.h: l + 8, then + 4, + 2, + 1. */
static float lane_sum(float p[16])
{
    for (int w = 8; w >= 1; w /= 2)
        for (int l = 0; l < w; l++)
            p[l] = p[l] + p[l + w];
    return p[0];
}

static float dot_generic(const float *a, const float *b, int d)
{
    float p[16] = {0};
    for (int q = 0; q < d; q += 16)
        for (int l = 0; l < 16; l++)
            p[l] = q + l < d ? fmaf(a[q + l], b[q + l], p[l]) : fmaf(0.0f, 0.0f, p[l]);
    return lane_sum(p);
}

static void dots_generic(const float *a, size_t lda, size_t m, const float *b, size_t ldb,
                         size_t n, int d, float *c, size_t ldc)
{
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < n; j++)
            c[i * ldc + j] = dot_generic(a + i * lda, b + j * ldb, d);
}

enum { RB = 4 }; /* rows of a and of b per register block */

/* ra rows of a against rb rows of b (ra, rb <= RB; constants after inlining). */
static inline __attribute__((always_inline, target("avx512f"))) void
block_avx512(const float *a, size_t lda, int ra, const float *b, size_t ldb, int rb, int d,
             float *c, size_t ldc)
{
    __m512 acc[RB][RB];
#pragma GCC unroll 4
    for (int i = 0; i < ra; i++)
#pragma GCC unroll 4
        for (int j = 0; j < rb; j++)
            acc[i][j] = _mm512_setzero_ps();
    for (int q = 0; q < d; q += 16) {
        const __mmask16 m = d - q >= 16 ? 0xffff : (__mmask16)((1u << (d - q)) - 1);
        __m512 x[RB], y[RB];
#pragma GCC unroll 4
        for (int i = 0; i < ra; i++)
            x[i] = _mm512_maskz_loadu_ps(m, a + i * lda + q);
#pragma GCC unroll 4
        for (int j = 0; j < rb; j++)
            y[j] = _mm512_maskz_loadu_ps(m, b + j * ldb + q);
#pragma GCC unroll 4
        for (int i = 0; i < ra; i++)
#pragma GCC unroll 4
            for (int j = 0; j < rb; j++)
                acc[i][j] = _mm512_fmadd_ps(x[i], y[j], acc[i][j]);
    }
#pragma GCC unroll 4
    for (int i = 0; i < ra; i++)
#pragma GCC unroll 4
        for (int j = 0; j < rb; j++) {
            __m256 s8 = _mm256_add_ps(
                _mm512_castps512_ps256(acc[i][j]),
                _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(acc[i][j]), 1)));
            __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
            __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
            __m128 s1 = _mm_add_ss(s2, _mm_shuffle_ps(s2, s2, 1));
            c[i * ldc + j] = _mm_cvtss_f32(s1);
        }
}

static __attribute__((target("avx512f"))) void
dots_avx512(const float *a, size_t lda, size_t m, const float *b, size_t ldb, size_t n, int d,
            float *c, size_t ldc)
{
    for (size_t i = 0; i < m; i += RB) {
        const int ra = m - i < RB ? (int)(m - i) : RB;
        for (size_t j = 0; j < n; j += RB) {
            const int rb = n - j < RB ? (int)(n - j) : RB;
            const float *ai = a + i * lda, *bj = b + j * ldb;
            float *cij = c + i * ldc + j;
            if (ra == RB && rb == RB)
                block_avx512(ai, lda, RB, bj, ldb, RB, d, cij, ldc);
            else
                for (int r = 0; r < ra; r++) /* edges: one row of a at a time */
                    switch (rb) {
                    case 1:
                        block_avx512(ai + r * lda, lda, 1, bj, ldb, 1, d, cij + r * ldc, ldc);
                        break;
                    case 2:
                        block_avx512(ai + r * lda, lda, 1, bj, ldb, 2, d, cij + r * ldc, ldc);
                        break;
                    case 3:
                        block_avx512(ai + r * lda, lda, 1, bj, ldb, 3, d, cij + r * ldc, ldc);
                        break;
                    default:
                        block_avx512(ai + r * lda, lda, 1, bj, ldb, 4, d, cij + r * ldc, ldc);
                        break;
                    }
        }
    }
}

bool vs_dots_impl_supported(enum vs_dots_impl impl)
{
    return vs_isa_supported(impl == VS_DOTS_AVX512 ? VS_ISA_AVX512 : VS_ISA_NONE);
}

void vs_dots_impl(enum vs_dots_impl impl, const float *a, size_t lda, size_t m, const float *b,
                  size_t ldb, size_t n, int d, float *c, size_t ldc)
{
    if (impl == VS_DOTS_AVX512)
        dots_avx512(a, lda, m, b, ldb, n, d, c, ldc);
    else
        dots_generic(a, lda, m, b, ldb, n, d, c, ldc);
}

void vs_dots(const float *a, size_t lda, size_t m, const float *b, size_t ldb, size_t n, int d,
             float *c, size_t ldc)
{
    vs_dots_impl(vs_dots_impl_supported(VS_DOTS_AVX512) ? VS_DOTS_AVX512 : VS_DOTS_GENERIC, a, lda,
                 m, b, ldb, n, d, c, ldc);
}
