/* The register-blocked conv3d micro-kernel, written once and included by conv3d.c once per
 * instruction set, after simd_avx512.h or simd_avx2.h (the vector macros).
 * A strip is OB output channels x nv vectors of one output row; its OB * nv accumulators stay in
 * registers over every (input channel, dt, ky, kx) tap. Each lane gets exactly the sequence of
 * conv_generic (conv3d.c): bias, then one FMA per tap, a NULL frame or a row outside the frame
 * skipped for the whole strip, a column outside the frame reading 0 (masked lane). */

/* Strip at output column x0; k, nv and masked are constants after inlining. masks[kx][v]: the
 * lanes of vector v whose tap kx lies in the input window. */
static inline __attribute__((always_inline, target(SIMD_TARGET))) void
SIMD(strip)(const struct strip *s, const MASK (*masks)[NV], int x0, int k, int nv, bool masked)
{
    VEC acc[OB][NV];
#pragma GCC unroll 8
    for (int j = 0; j < OB; j++)
#pragma GCC unroll 8
        for (int v = 0; v < nv; v++)
            acc[j][v] = V_BCAST(&s->bias[j]);
    const int kk = k * k, taps = s->kt * kk;
    const float *wp = s->w;
    for (int i = 0; i < s->cin; i++, wp += (size_t)taps * OB) {
        const size_t plane = (size_t)i * s->iplane + (size_t)x0;
        for (int dt = 0; dt < s->kt; dt++) {
            if (!s->in[dt])
                continue;
#pragma GCC unroll 3
            for (int ky = 0; ky < k; ky++) {
                if (!s->row_ok[ky])
                    continue;
                const float *row = s->in[dt] + plane + s->row[ky];
                const float *w = wp + (size_t)(dt * kk + ky * k) * OB;
#pragma GCC unroll 3
                for (int kx = 0; kx < k; kx++, w += OB) {
                    VEC x[NV];
#pragma GCC unroll 8
                    for (int v = 0; v < nv; v++)
                        x[v] = masked ? V_MLOAD(masks[kx][v], row + kx + v * VL)
                                      : V_LOAD(row + kx + v * VL);
#pragma GCC unroll 8
                    for (int j = 0; j < OB; j++) {
                        VEC wv = V_BCAST(w + j);
#pragma GCC unroll 8
                        for (int v = 0; v < nv; v++)
                            acc[j][v] = V_FMA(wv, x[v], acc[j][v]);
                    }
                }
            }
        }
    }
    float *o = s->out + x0;
    for (int j = 0; j < s->nb; j++, o += s->oplane)
#pragma GCC unroll 8
        for (int v = 0; v < nv; v++) {
            int left = s->ow - x0 - v * VL;
            V_PUT(o + v * VL, left >= VL, M_LANES(0, left), acc[j][v]);
        }
}

/* One output row of a block: strips whose vectors are all inside the row and whose taps all lie
 * in the input window load unmasked; the others mask every load. */
static __attribute__((target(SIMD_TARGET))) void SIMD(row)(const struct strip *s)
{
    const int k = s->k, ow = s->ow;
    for (int x0 = 0; x0 < ow; x0 += NV * VL) {
        const int first = s->first + x0; /* window column of lane 0's tap kx = 0 */
        if (x0 + NV * VL <= ow && first >= 0 && first + NV * VL - 1 + k - 1 < s->iw) {
            if (k == 3)
                SIMD(strip)(s, NULL, x0, 3, NV, false);
            else
                SIMD(strip)(s, NULL, x0, 1, NV, false);
            continue;
        }
        MASK masks[3][NV];
        for (int kx = 0; kx < k; kx++)
            for (int v = 0; v < NV; v++) {
                int c = first + kx + v * VL;
                masks[kx][v] = M_LANES(-c, s->iw - c);
            }
        const int left = ow - x0, nv = left >= NV * VL ? NV : (left + VL - 1) / VL;
        switch (nv * 4 + k) {
#define SIMD_CASE(n)                                                                               \
    case n * 4 + 1:                                                                                \
        SIMD(strip)(s, (const MASK(*)[NV])masks, x0, 1, n < NV ? n : NV, true);                    \
        break;                                                                                     \
    case n * 4 + 3:                                                                                \
        SIMD(strip)(s, (const MASK(*)[NV])masks, x0, 3, n < NV ? n : NV, true);                    \
        break;
            SIMD_CASE(1)
            SIMD_CASE(2)
            SIMD_CASE(3)
            SIMD_CASE(4)
#undef SIMD_CASE
        }
    }
}

/* The items of vs_parallel_for (item_place) */
static void SIMD(range)(void *ctx, size_t begin, size_t end)
{
    const struct conv_job *j = ctx;
    for (size_t item = begin; item < end; item++) {
        struct strip s;
        int yo, o0;
        item_place(j, item, &yo, &o0);
        strip_setup(&s, j, o0, yo);
        SIMD(row)(&s);
    }
}
