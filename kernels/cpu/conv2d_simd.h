/* The register-blocked conv2d micro-kernel, written once and included by conv2d.c once per
 * instruction set, after simd_avx512.h or simd_avx2.h (the vector macros).
 * One strip is OB output channels x NV vectors of one output row; its OB * NV accumulators stay
 * in registers over the taps of one block of input channels, read from the band (conv2d.c: those
 * channels' input rows, zero-padded, contiguous). Each lane gets exactly the scalar kernel's
 * sequence (conv2d.c, conv_generic): bias, then one FMA per tap in (ci, ky, kx) order, a padding
 * tap reading 0 from the band; between channel blocks the partial sums wait in the output, which
 * stores and reloads them exactly. */

/* Taps of nci channels (weights w[j], the block's first channel; input rows from src: channel ci's
 * at src + ci * ch_stride, BAND_W apart) on the strip of cols output columns at out (channel planes
 * oplane apart; cols <= NV * VL, the lanes past it are computed and dropped); first: start from the
 * bias, else from the partial sums in out. mask_x: load only the cols columns (src is not a band).
 * k and mask_x are constants after inlining. */
static inline __attribute__((always_inline, target(SIMD_TARGET))) void
SIMD(strip)(const struct strip_job *s, const float *src, size_t ch_stride, const float *const *w,
            int nci, float *out, int cols, bool first, int k, bool mask_x)
{
    const int kk = k * k;
    VEC acc[OB][NV];
    MASK m[NV];
#pragma GCC unroll 8
    for (int v = 0; v < NV; v++)
        m[v] = M_LANES(0, cols - v * VL);
    const bool full = cols == NV * VL;
#pragma GCC unroll 8
    for (int j = 0; j < OB; j++) {
        const float *o = out + (j < s->nb ? j : s->nb - 1) * s->oplane; /* past nb: dropped */
#pragma GCC unroll 8
        for (int v = 0; v < NV; v++)
            acc[j][v] = first  ? V_BCAST(&s->bias[j])
                        : full ? V_LOAD(o + v * VL)
                               : V_MLOAD(m[v], o + v * VL);
    }
    for (int ci = 0; ci < nci; ci++) {
#pragma GCC unroll 3
        for (int ky = 0; ky < k; ky++) {
            const float *row = src + ci * ch_stride + ky * BAND_W;
#pragma GCC unroll 3
            for (int kx = 0; kx < k; kx++) {
                VEC x[NV];
#pragma GCC unroll 8
                for (int v = 0; v < NV; v++)
                    x[v] = mask_x ? V_MLOAD(m[v], row + kx + v * VL) : V_LOAD(row + kx + v * VL);
#pragma GCC unroll 8
                for (int j = 0; j < OB; j++) {
                    VEC wv = V_BCAST(w[j] + ci * kk + ky * k + kx);
#pragma GCC unroll 8
                    for (int v = 0; v < NV; v++)
                        acc[j][v] = V_FMA(wv, x[v], acc[j][v]);
                }
            }
        }
    }
    for (int j = 0; j < s->nb; j++)
#pragma GCC unroll 8
        for (int v = 0; v < NV; v++)
            V_PUT(out + j * s->oplane + v * VL, full, m[v], acc[j][v]);
}

/* Channels ci0 .. ci0 + nci - 1 of output rows y .. y + nrows - 1, columns x0 .. x0 + ncols - 1,
 * for the block of channels at s, from src (the band, or the input itself for 1x1: channel
 * planes ch_stride apart, output row r's input row at src + r * row_step): its strips, the rows of
 * one column range in turn so that they share the block's weights in L1. */
static __attribute__((target(SIMD_TARGET))) void
SIMD(band)(const struct strip_job *s, const float *src, size_t ch_stride, size_t row_step, int ci0,
           int nci, int y, int nrows, int x0, int ncols)
{
    const float *w[OB];
    for (int j = 0; j < OB; j++)
        w[j] = s->w[j] + (size_t)ci0 * s->k * s->k;
    for (int x = 0; x < ncols && x0 + x < s->ow; x += NV * VL) {
        const int cols = s->ow - x0 - x < NV * VL ? s->ow - x0 - x : NV * VL;
        for (int r = 0; r < nrows; r++) {
            float *out = s->out + (size_t)(y + r) * s->ow + x0 + x;
            const float *rows = src + r * row_step + x;
            if (s->k == 3)
                SIMD(strip)(s, rows, ch_stride, w, nci, out, cols, ci0 == 0, 3, false);
            else if (cols == NV * VL)
                SIMD(strip)(s, rows, ch_stride, w, nci, out, cols, ci0 == 0, 1, false);
            else
                SIMD(strip)(s, rows, ch_stride, w, nci, out, cols, ci0 == 0, 1, true);
        }
    }
}

/* The band of channels ci0 .. ci0 + nci - 1, output rows y .. y + nrows - 1, output columns from
 * x0: band[(ci - ci0) * (nrows + k - 1) + r][c] is input (ci, y + r - pad_top, x0 + c - pad_left),
 * 0 outside the buffer. */
static __attribute__((target(SIMD_TARGET))) void
SIMD(pack)(float *band, const struct conv_job *j, int ci0, int nci, int y, int nrows, int x0)
{
    const struct vs_conv2d_geom *g = j->g;
    const int width = BAND_COLS + g->k - 1, shift = x0 - g->pad_left, ch_rows = nrows + g->k - 1;
    const int lo = -shift > 0 ? -shift : 0;
    const int end = g->in_w - shift < width ? g->in_w - shift : width; /* columns c < end exist */
    MASK m[BAND_W / VL];
    for (int v = 0; v < BAND_W / VL; v++)
        m[v] = M_LANES(lo - v * VL, end - v * VL);
    const float *rows[ROWS + 2];
    for (int r = 0; r < ch_rows; r++) {
        const int iy = y + r - g->pad_top;
        rows[r] = iy >= 0 && iy < g->in_h ? j->in + (size_t)iy * g->in_w + shift : NULL;
    }
    const size_t iplane = (size_t)g->in_h * g->in_w;
    for (int ci = ci0; ci < ci0 + nci; ci++)
        for (int r = 0; r < ch_rows; r++, band += BAND_W) {
            const float *src = rows[r] ? rows[r] + ci * iplane : NULL;
#pragma GCC unroll 16
            for (int v = 0; v < BAND_W / VL; v++)
                V_STORE(band + v * VL, src ? V_MLOAD(m[v], src + v * VL) : V_ZERO());
        }
}

/* The items of vs_parallel_for (item_place) */
static __attribute__((target(SIMD_TARGET))) void SIMD(range)(void *ctx, size_t begin, size_t end)
{
    const struct conv_job *j = ctx;
    const struct item_plan p = item_plan(j);
    float band[BAND_FLOATS] __attribute__((aligned(64)));
    for (size_t item = begin; item < end; item++) {
        int y, nrows, x0;
        size_t blk0, nblk;
        item_place(j, &p, item, &y, &nrows, &x0, &blk0, &nblk);
        if (j->g->k == 1) { /* no padding, no shift: the strips read the input's rows */
            const float *src = j->in + (size_t)y * j->g->in_w + x0;
            for (size_t b = blk0; b < blk0 + nblk; b++) {
                struct strip_job s;
                strip_setup(&s, j, (int)b * OB);
                SIMD(band)(&s, src, (size_t)j->g->in_h * j->g->in_w, j->g->in_w, 0, j->g->cin, y,
                           nrows, x0, p.cols);
            }
            continue;
        }
        for (int ci0 = 0; ci0 < j->g->cin; ci0 += CB) {
            const int nci = j->g->cin - ci0 < CB ? j->g->cin - ci0 : CB;
            SIMD(pack)(band, j, ci0, nci, y, nrows, x0);
            for (size_t b = blk0; b < blk0 + nblk; b++) {
                struct strip_job s;
                strip_setup(&s, j, (int)b * OB);
                SIMD(band)(&s, band, (size_t)(nrows + 2) * BAND_W, BAND_W, ci0, nci, y, nrows, x0,
                           BAND_COLS);
            }
        }
    }
}
