/* The register-blocked micro-kernel of the banded convolution (conv_band.c), written once and
 * included there once per instruction set, after simd_avx512.h or simd_avx2.h (the vector macros).
 * One strip is OB output channels x NV vectors of one output row; its OB * NV accumulators stay
 * in registers over the taps of one block of input channels and all their live time taps, read
 * from the band (conv_band.c: those input rows, zero-padded, contiguous). Each lane gets exactly
 * the sequence conv_band.h states (that of conv2d.c's and conv3d.c's generic versions): bias,
 * then one FMA per tap in (ci, dt, ky, kx) order, a tap outside the buffers reading 0 from the
 * band; between channel blocks the partial sums wait in the output, which stores and reloads them
 * exactly. */

/* Taps of nci channels (weights w[j], the block's first channel at the first live time tap) on
 * the strip of cols output columns at out (channel planes oplane apart; cols <= nv * VL, the
 * lanes past it are computed and dropped); live time tap d of channel ci reads its rows from
 * src[d] + ci * ch_stride, BAND_W apart. flat: every time tap is live and the rows of the
 * (channel, tap) pairs are ch_stride apart from src[0], their weights k * k apart: nci counts
 * pairs, one loop over them (a 2-D conv's loop over channels). first: start from the bias, else
 * from the partial sums in out. mask_x: load only the cols columns (src is not a band). k, nv (<=
 * NV), flat and mask_x are constants after inlining. */
static inline __attribute__((always_inline, target(SIMD_TARGET))) void
SIMD(strip)(const struct strip_job *s, const float *const *src, size_t ch_stride,
            const float *const *w, int nci, float *out, int cols, bool first, int k, int nv,
            bool flat, bool mask_x)
{
    const int kk = k * k;
    VEC acc[OB][NV];
    MASK m[NV];
#pragma GCC unroll 8
    for (int v = 0; v < nv; v++)
        m[v] = M_LANES(0, cols - v * VL);
    const bool full = cols == nv * VL;
#pragma GCC unroll 8
    for (int j = 0; j < OB; j++) {
        const float *o = out + (j < s->nb ? j : s->nb - 1) * s->oplane; /* past nb: dropped */
#pragma GCC unroll 8
        for (int v = 0; v < nv; v++)
            acc[j][v] = first  ? V_BCAST(&s->bias[j])
                        : full ? V_LOAD(o + v * VL)
                               : V_MLOAD(m[v], o + v * VL);
    }
    for (int ci = 0; ci < nci; ci++) {
        for (int d = 0; d < (flat ? 1 : s->live); d++) {
            const float *rows = src[d] + ci * ch_stride;
            const int wt = flat ? ci * kk : (ci * s->kt + d) * kk;
#pragma GCC unroll 3
            for (int ky = 0; ky < k; ky++) {
                const float *row = rows + ky * BAND_W;
#pragma GCC unroll 3
                for (int kx = 0; kx < k; kx++) {
                    VEC x[NV];
#pragma GCC unroll 8
                    for (int v = 0; v < nv; v++)
                        x[v] = mask_x ? V_MLOAD(m[v], row + kx + v * VL)
                                      : V_LOAD(row + kx + v * VL);
#pragma GCC unroll 8
                    for (int j = 0; j < OB; j++) {
                        VEC wv = V_BCAST(w[j] + wt + ky * k + kx);
#pragma GCC unroll 8
                        for (int v = 0; v < nv; v++)
                            acc[j][v] = V_FMA(wv, x[v], acc[j][v]);
                    }
                }
            }
        }
    }
    for (int j = 0; j < s->nb; j++)
#pragma GCC unroll 8
        for (int v = 0; v < nv; v++)
            V_PUT(out + j * s->oplane + v * VL, full, m[v], acc[j][v]);
}

/* Channels ci0 .. ci0 + nci - 1 of output rows y .. y + nrows - 1, columns x0 .. x0 + ncols - 1,
 * for the block of channels at s, from src (the band, or the input itself for 1x1: live time tap
 * d's channel planes at src[d], ch_stride apart, output row r's input row at src[d] + r *
 * row_step): its strips, the rows of one column range in turn so that they share the block's
 * weights in L1. */
static __attribute__((target(SIMD_TARGET))) void
SIMD(band)(const struct strip_job *s, const float *const *src, size_t ch_stride, size_t row_step,
           int ci0, int nci, int y, int nrows, int x0, int ncols)
{
    const float *w[OB];
    for (int j = 0; j < OB; j++)
        w[j] = s->w[j] + (size_t)ci0 * s->kt * s->k * s->k;
    /* the band holds each channel's time taps in turn (SIMD(pack)); frames read in place do not */
    const bool flat = s->live == s->kt && (s->k == 3 || s->kt == 1);
    for (int x = 0; x < ncols && x0 + x < s->ow; x += NV * VL) {
        const int cols = s->ow - x0 - x < NV * VL ? s->ow - x0 - x : NV * VL;
        for (int r = 0; r < nrows; r++) {
            float *out = s->out + (size_t)(y + r) * s->ow + x0 + x;
            const float *rows[VS_CONV_BAND_MAX_KT];
            for (int d = 0; d < s->live; d++)
                rows[d] = src[d] + r * row_step + x;
            /* as few vectors as the columns need (narrow planes, the last strip of a row);
             * 3x3 reads the band's zeros past its columns, 1x1 masks them unless whole vectors */
            switch ((cols + VL - 1) / VL) {
#define SIMD_STRIP(n, k, flat, mask_x)                                                             \
    SIMD(strip)(s, rows, flat ? ch_stride / s->kt : ch_stride, w, flat ? nci * s->kt : nci, out,   \
                cols, ci0 == 0, k, n, flat, mask_x)
#define SIMD_NV(n)                                                                                 \
    case n:                                                                                        \
        if (s->k == 3 && flat)                                                                     \
            SIMD_STRIP(n, 3, true, false);                                                         \
        else if (s->k == 3)                                                                        \
            SIMD_STRIP(n, 3, false, false);                                                        \
        else if (!flat && cols % VL == 0)                                                          \
            SIMD_STRIP(n, 1, false, false);                                                        \
        else if (!flat)                                                                            \
            SIMD_STRIP(n, 1, false, true);                                                         \
        else if (cols % VL == 0)                                                                   \
            SIMD_STRIP(n, 1, true, false);                                                         \
        else                                                                                       \
            SIMD_STRIP(n, 1, true, true);                                                          \
        break;
                SIMD_NV(1)
                SIMD_NV(2)
#if NV > 2
                SIMD_NV(3)
                SIMD_NV(4)
#endif
#undef SIMD_NV
#undef SIMD_STRIP
            }
        }
    }
}

/* The band of channels ci0 .. ci0 + nci - 1 (from time tap dt0 on), output rows y .. y + nrows
 * - 1, output columns from x0: band[((ci - ci0) * live + d) * (nrows + k - 1) + r][c] is input
 * (dt0 + d, ci, y + r + top, x0 + c + left), 0 outside the buffers. */
static __attribute__((target(SIMD_TARGET))) void
SIMD(pack)(float *band, const struct vs_conv_band *j, int dt0, int ci0, int nci, int y, int nrows,
           int x0)
{
    const int width = BAND_COLS + j->k - 1, shift = x0 + j->left, ch_rows = nrows + j->k - 1;
    const int lo = -shift > 0 ? -shift : 0;
    const int end = j->in_w - shift < width ? j->in_w - shift : width; /* columns c < end exist */
    MASK m[BAND_W / VL];
    for (int v = 0; v < BAND_W / VL; v++)
        m[v] = M_LANES(lo - v * VL, end - v * VL);
    const size_t iplane = (size_t)j->in_h * j->in_w;
    for (int ci = ci0; ci < ci0 + nci; ci++)
        for (int dt = dt0; dt < j->kt; dt++)
            for (int r = 0; r < ch_rows; r++, band += BAND_W) {
                const int iy = y + r + j->top;
                const float *src = iy >= 0 && iy < j->in_h
                                       ? j->in[dt] + ci * iplane + (size_t)iy * j->in_w + shift
                                       : NULL;
#pragma GCC unroll 16
                for (int v = 0; v < BAND_W / VL; v++)
                    V_STORE(band + v * VL, src ? V_MLOAD(m[v], src + v * VL) : V_ZERO());
            }
}

/* The items of vs_parallel_for (item_place) */
static __attribute__((target(SIMD_TARGET))) void SIMD(range)(void *ctx, size_t begin, size_t end)
{
    const struct vs_conv_band *j = ctx;
    const struct item_plan p = item_plan(j);
    const int dt0 = first_live(j), live = j->kt - dt0;
    float band[BAND_FLOATS] __attribute__((aligned(64)));
    for (size_t item = begin; item < end; item++) {
        int y, nrows, x0;
        size_t blk0, nblk;
        item_place(j, &p, item, &y, &nrows, &x0, &blk0, &nblk);
        const float *src[VS_CONV_BAND_MAX_KT];
        if (j->k == 1) { /* every tap in the buffers: the strips read the input's rows */
            for (int d = 0; d < live; d++)
                src[d] = j->in[dt0 + d] + (ptrdiff_t)(y + j->top) * j->in_w + x0 + j->left;
            for (size_t b = blk0; b < blk0 + nblk; b++) {
                struct strip_job s;
                strip_setup(&s, j, dt0, (int)b * OB);
                SIMD(band)(&s, src, (size_t)j->in_h * j->in_w, j->in_w, 0, j->cin, y, nrows, x0,
                           p.cols);
            }
            continue;
        }
        const int ch_rows = nrows + 2, per_band = CB / live; /* whole channels per band */
        for (int d = 0; d < live; d++)
            src[d] = band + d * ch_rows * BAND_W;
        for (int ci0 = 0; ci0 < j->cin; ci0 += per_band) {
            const int nci = j->cin - ci0 < per_band ? j->cin - ci0 : per_band;
            SIMD(pack)(band, j, dt0, ci0, nci, y, nrows, x0);
            for (size_t b = blk0; b < blk0 + nblk; b++) {
                struct strip_job s;
                strip_setup(&s, j, dt0, (int)b * OB);
                SIMD(band)(&s, src, (size_t)live * ch_rows * BAND_W, BAND_W, ci0, nci, y, nrows,
                           x0, BAND_COLS);
            }
        }
    }
}
