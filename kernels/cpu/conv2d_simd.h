/* The register-blocked conv2d micro-kernel, written once and included by conv2d.c once per
 * instruction set. The includer defines:
 *   SIMD(name)   the name with the instruction set's suffix
 *   SIMD_TARGET  the GCC target string ("avx512f", "avx2,fma")
 *   VEC, MASK    the vector and lane-mask types; VL lanes per vector; NV vectors per strip
 *   V_LOAD(p), V_MLOAD(m, p) (masked lanes read as 0, no access), V_BCAST(p), V_FMA(a, b, c)
 *   (a * b + c, one rounding), V_STORE(p, v), V_MSTORE(p, m, v), M_LANES(lo, hi) (lanes l with
 *   lo <= l < hi; any lo, hi).
 * One strip is OB output channels x nv vectors of one output row; its OB * nv accumulators stay
 * in registers over every (ci, ky, kx) tap. Each lane gets exactly the scalar kernel's sequence
 * (conv2d.c, conv_generic): bias, then one FMA per tap in (ci, ky, kx) order, a tap outside the
 * buffer reading 0 (masked lane) rather than being skipped. */

/* Strip at output column x0 of row y: rows[ky] is the input row of tap row ky (any valid row
 * when the tap row is padding, whose masks are then empty). k, nv and mode are constants after
 * inlining. */
static inline __attribute__((always_inline, target(SIMD_TARGET))) void
SIMD(strip)(const struct strip_job *s, const float *const *rows, const MASK (*masks)[3][NV], int x0,
            int y, int k, int nv, int mode)
{
    const int kk = k * k, base = x0 - s->g->pad_left;
    const size_t iplane = (size_t)s->g->in_h * s->g->in_w;
    VEC acc[OB][NV];
#pragma GCC unroll 8
    for (int j = 0; j < OB; j++)
#pragma GCC unroll 8
        for (int v = 0; v < nv; v++)
            acc[j][v] = V_BCAST(&s->bias[j]);
    const float *w[OB];
    for (int j = 0; j < OB; j++)
        w[j] = s->w[j];
    for (int ci = 0; ci < s->g->cin; ci++) {
        const size_t off = (size_t)ci * iplane;
#pragma GCC unroll 3
        for (int ky = 0; ky < k; ky++) {
            const float *row = rows[ky] + off + base;
#pragma GCC unroll 3
            for (int kx = 0; kx < k; kx++) {
                VEC x[NV];
#pragma GCC unroll 8
                for (int v = 0; v < nv; v++)
                    x[v] = mode == ALL_MASKED ? V_MLOAD(masks[ky][kx][v], row + kx + v * VL)
                           : mode == EDGE_VECTORS && (v == 0 || v == nv - 1)
                               ? V_MLOAD(masks[0][kx][v], row + kx + v * VL)
                               : V_LOAD(row + kx + v * VL);
#pragma GCC unroll 8
                for (int j = 0; j < OB; j++) {
                    VEC wv = V_BCAST(w[j] + ky * k + kx);
#pragma GCC unroll 8
                    for (int v = 0; v < nv; v++)
                        acc[j][v] = V_FMA(wv, x[v], acc[j][v]);
                }
            }
        }
#pragma GCC unroll 8
        for (int j = 0; j < OB; j++)
            w[j] += kk;
    }
    const size_t oplane = (size_t)s->oh * s->ow;
    float *o = s->out + (size_t)y * s->ow + x0;
    for (int j = 0; j < s->nb; j++, o += oplane)
#pragma GCC unroll 8
        for (int v = 0; v < nv; v++) {
            int left = s->ow - x0 - v * VL;
            if (left >= VL)
                V_STORE(o + v * VL, acc[j][v]);
            else
                V_MSTORE(o + v * VL, M_LANES(0, left), acc[j][v]);
        }
}

/* Interior strips (all NV vectors inside the output, every tap inside the buffer) run unmasked;
 * strips at the left or right edge of a row whose tap rows are all inside mask their first and
 * last vectors; the others (rows next to a padding row, or narrow buffers) mask every load. */
static __attribute__((target(SIMD_TARGET))) void SIMD(row)(const struct strip_job *s, int y, int k)
{
    const struct vs_conv2d_geom *g = s->g;
    const float *rows[3] = {s->in, s->in, s->in};
    bool row_ok[3] = {false, false, false};
    for (int ky = 0; ky < k; ky++) {
        int iy = y + ky - g->pad_top;
        row_ok[ky] = iy >= 0 && iy < g->in_h;
        rows[ky] = s->in + (size_t)(row_ok[ky] ? iy : 0) * g->in_w;
    }
    const bool rows_inside = row_ok[0] && (k == 1 || (row_ok[1] && row_ok[2]));
    for (int x0 = 0; x0 < s->ow; x0 += NV * VL) {
        const int first = x0 - g->pad_left; /* input column of lane 0's first tap */
        const bool inside = rows_inside && x0 + NV * VL <= s->ow && first >= 0 &&
                            first + NV * VL - 1 + k - 1 < g->in_w;
        if (inside) {
            if (k == 3)
                SIMD(strip)(s, rows, NULL, x0, y, 3, NV, UNMASKED);
            else
                SIMD(strip)(s, rows, NULL, x0, y, 1, NV, UNMASKED);
            continue;
        }
        MASK masks[3][3][NV];
        const int left = s->ow - x0, nv = left >= NV * VL ? NV : (left + VL - 1) / VL;
        for (int ky = 0; ky < k; ky++)
            for (int kx = 0; kx < k; kx++)
                for (int v = 0; v < NV; v++) {
                    int c = first + kx + v * VL; /* input column of lane 0 */
                    masks[ky][kx][v] = row_ok[ky] ? M_LANES(-c, g->in_w - c) : M_LANES(0, 0);
                }
        /* the middle vectors' taps, columns first + VL .. first + (nv - 1) * VL - 1 + k - 1 */
        const bool edges = rows_inside && first + VL >= 0 && first + (nv - 1) * VL + k - 2 < g->in_w;
        switch ((nv * 4 + k) * 2 + edges) {
#define SIMD_CASE(n)                                                                               \
    case (n * 4 + 1) * 2:                                                                          \
        SIMD(strip)(s, rows, masks, x0, y, 1, n < NV ? n : NV, ALL_MASKED);                        \
        break;                                                                                     \
    case (n * 4 + 3) * 2:                                                                          \
        SIMD(strip)(s, rows, masks, x0, y, 3, n < NV ? n : NV, ALL_MASKED);                        \
        break;                                                                                     \
    case (n * 4 + 1) * 2 + 1:                                                                      \
        SIMD(strip)(s, rows, masks, x0, y, 1, n < NV ? n : NV, EDGE_VECTORS);                      \
        break;                                                                                     \
    case (n * 4 + 3) * 2 + 1:                                                                      \
        SIMD(strip)(s, rows, masks, x0, y, 3, n < NV ? n : NV, EDGE_VECTORS);                      \
        break;
            SIMD_CASE(1)
            SIMD_CASE(2)
            SIMD_CASE(3)
            SIMD_CASE(4)
#undef SIMD_CASE
        }
    }
}
