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

#include "kernels/cpu/isa.h"

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

#include "kernels/cpu/simd_avx512.h"
#include "kernels/cpu/silu_simd.h"
#include "kernels/cpu/simd_undef.h"

#include "kernels/cpu/simd_avx2.h"
#include "kernels/cpu/silu_simd.h"
#include "kernels/cpu/simd_undef.h"

static const struct {
    const char *name;
    void (*fn)(float *x, size_t n, bool silu);
    enum vs_isa isa;
} g_impls[VS_SILU_IMPLS] = {
    [VS_SILU_GENERIC] = {"generic", run_generic, VS_ISA_NONE},
    [VS_SILU_AVX2] = {"avx2", run_avx2, VS_ISA_AVX2},
    [VS_SILU_AVX512] = {"avx512", run_avx512, VS_ISA_AVX512},
};

const char *vs_silu_impl_name(enum vs_silu_impl impl)
{
    return g_impls[impl].name;
}

bool vs_silu_impl_supported(enum vs_silu_impl impl)
{
    return vs_isa_supported(g_impls[impl].isa);
}

static enum vs_silu_impl best(void)
{
    int v = VS_SILU_IMPLS - 1; /* the last version this CPU runs (generic: any CPU) */
    while (!vs_silu_impl_supported(v))
        v--;
    return v;
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
