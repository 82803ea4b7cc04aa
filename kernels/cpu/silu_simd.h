/* exp and SiLU over vectors, written once and included by silu.c once per instruction set, after
 * simd_avx512.h or simd_avx2.h (the vector macros). */

/* vs_expf lane by lane: the same operations in the same order (V_FNMA(a, b, c) = fma(-a, b, c)). */
static inline __attribute__((always_inline, target(SIMD_TARGET))) VEC SIMD(exp)(VEC x)
{
    VEC c = V_SEL(V_GT(x, V_SET1(HI)), V_SET1(HI), x);
    c = V_SEL(V_LT(c, V_SET1(LO)), V_SET1(LO), c);
    VEC n = V_RINT(V_MUL(c, V_SET1(LOG2E)));
    VEC r = V_FNMA(n, V_SET1(LN2_HI), c);
    r = V_FNMA(n, V_SET1(LN2_LO), r);
    VEC p = V_FMA(V_SET1(C7), r, V_SET1(C6));
    p = V_FMA(p, r, V_SET1(C5));
    p = V_FMA(p, r, V_SET1(C4));
    p = V_FMA(p, r, V_SET1(C3));
    p = V_FMA(p, r, V_SET1(C2));
    p = V_FMA(p, r, V_SET1(1.0f));
    p = V_FMA(p, r, V_SET1(1.0f));
    VEC_I ni = VI_CVT(n), n1 = VI_SRAI(ni, 1);
    VEC s2 = VI_AS_VEC(VI_SLLI(VI_ADD(VI_SUB(ni, n1), VI_SET1(127)), 23));
    VEC s1 = VI_AS_VEC(VI_SLLI(VI_ADD(n1, VI_SET1(127)), 23));
    p = V_MUL(V_MUL(p, s2), s1);
    p = V_SEL(V_LT(x, V_SET1(LO)), V_SET1(0.0f), p);
    return V_SEL(V_ISNAN(x), V_ADD(x, x), p);
}

/* SiLU's -x flips the sign bit, as the scalar negation. */
static __attribute__((target(SIMD_TARGET))) VEC SIMD(step)(VEC x, bool silu)
{
    return silu ? V_DIV(x, V_ADD(V_SET1(1.0f), SIMD(exp)(V_NEG(x)))) : SIMD(exp)(x);
}

/* A run over x: whole vectors, then the tail in one masked vector (lanes past n neither read nor
 * written). */
static __attribute__((target(SIMD_TARGET))) void SIMD(run)(float *x, size_t n, bool silu)
{
    size_t i = 0;
    for (; i + VL <= n; i += VL)
        V_STORE(x + i, SIMD(step)(V_LOAD(x + i), silu));
    if (i < n) {
        MASK m = M_LANES(0, (int)(n - i));
        V_MSTORE(x + i, m, SIMD(step)(V_MLOAD(m, x + i), silu));
    }
}
