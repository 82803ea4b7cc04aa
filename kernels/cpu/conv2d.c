/* Direct convolution. Versions (harness: bench/bench_conv.c; tests: test_kernels_conv2d.c):
 *  - ref:     the previous C implementation: per output channel, the output plane receives each
 *             input channel's taps row by row (memory bound); padding taps skipped. Kept as the
 *             reference the others are measured and checked against.
 *  - generic: scalar, one fmaf per tap in (ci, ky, kx) order, padding taps reading 0: the exact
 *             results every fast version must reproduce bit for bit; fallback on old CPUs.
 *  - avx2:    the banded convolution (conv_band.c, shared with conv3d.c) with 8-float vectors,
 *             6 output channels x 2 vectors per strip.
 *  - avx512:  the same with 16-float vectors, 6 output channels x 4 vectors per strip.
 *    Both read 3x3 inputs from bands packed on the stack, 1x1 inputs in place.
 * vs_conv2d runs the best version the CPU has; generic, avx2 and avx512 give identical bits, so
 * results do not depend on the machine either. */
#include "kernels/cpu/conv2d.h"

#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "kernels/cpu/conv_band.h"
#include "kernels/cpu/isa.h"
#include "kernels/cpu/parallel.h"

int vs_conv2d_out_h(const struct vs_conv2d_geom *g)
{
    return g->in_h + g->pad_top + g->pad_bottom - g->k + 1;
}

int vs_conv2d_out_w(const struct vs_conv2d_geom *g)
{
    return g->in_w + g->pad_left + g->pad_right - g->k + 1;
}

struct conv_job {
    const float *in, *weight, *bias;
    float *out;
    const struct vs_conv2d_geom *g;
    int oh, ow;
};

/* ---- ref ---- */

/* Output column x reads input column x + kx - pad_left; at interior columns all three taps
 * exist. Edge columns skip missing taps (the zero padding). */
static void edge_taps(float *o, const float *const *rows, int nrows, const float *w, int x, int iw,
                      int pl)
{
    float acc = o[x];
    for (int r = 0; r < nrows; r++)
        for (int kx = 0; kx < 3; kx++) {
            int ix = x + kx - pl;
            if (ix >= 0 && ix < iw)
                acc += w[r * 3 + kx] * rows[r][ix];
        }
    o[x] = acc;
}

/* Adds the taps of nrows kernel rows (w: their 3 * nrows weights, rows: their input rows) to one
 * output row, in kernel-row then kernel-column order. Fusing taps in one expression keeps that
 * order (each + rounds as a separate pass would), so results equal a tap-by-tap loop. */
static void conv3_row(float *restrict o, const float *const *rows, int nrows, const float *w,
                      int ow, int iw, int pl)
{
    int lo = pl < ow ? pl : ow, hi = iw + pl - 2 < ow ? iw + pl - 2 : ow;
    if (hi < lo)
        hi = lo;
    for (int x = 0; x < lo; x++)
        edge_taps(o, rows, nrows, w, x, iw, pl);
    for (int x = hi; x < ow; x++)
        edge_taps(o, rows, nrows, w, x, iw, pl);
    if (nrows == 3) {
        const float *restrict a = rows[0] - pl, *restrict b = rows[1] - pl,
                              *restrict c = rows[2] - pl;
        for (int x = lo; x < hi; x++)
            o[x] = o[x] + w[0] * a[x] + w[1] * a[x + 1] + w[2] * a[x + 2] + w[3] * b[x] +
                   w[4] * b[x + 1] + w[5] * b[x + 2] + w[6] * c[x] + w[7] * c[x + 1] +
                   w[8] * c[x + 2];
        return;
    }
    for (int r = 0; r < nrows; r++) {
        const float *restrict a = rows[r] - pl;
        const float w0 = w[3 * r], w1 = w[3 * r + 1], w2 = w[3 * r + 2];
        for (int x = lo; x < hi; x++)
            o[x] = o[x] + w0 * a[x] + w1 * a[x + 1] + w2 * a[x + 2];
    }
}

static void conv3_plane(const struct conv_job *j, float *out, const float *in, const float *wk)
{
    const struct vs_conv2d_geom *g = j->g;
    for (int y = 0; y < j->oh; y++) {
        const float *rows[3];
        float w[9];
        int n = 0;
        for (int ky = 0; ky < 3; ky++) {
            int iy = y + ky - g->pad_top;
            if (iy < 0 || iy >= g->in_h)
                continue;
            rows[n] = in + (size_t)iy * g->in_w;
            memcpy(w + 3 * n, wk + 3 * ky, 3 * sizeof *w);
            n++;
        }
        conv3_row(out + (size_t)y * j->ow, rows, n, w, j->ow, g->in_w, g->pad_left);
    }
}

static void conv1_plane(const struct conv_job *j, float *restrict out, const float *restrict in,
                        float w)
{
    const size_t n = (size_t)j->oh * j->ow;
    for (size_t i = 0; i < n; i++)
        out[i] += w * in[i];
}

static void conv_ref(void *ctx, size_t begin, size_t end)
{
    const struct conv_job *j = ctx;
    const struct vs_conv2d_geom *g = j->g;
    const size_t iplane = (size_t)g->in_h * g->in_w, oplane = (size_t)j->oh * j->ow;
    const int kk = g->k * g->k;
    for (size_t co = begin; co < end; co++) {
        float *out = j->out + co * oplane;
        const float b = j->bias ? j->bias[co] : 0.0f;
        for (size_t i = 0; i < oplane; i++)
            out[i] = b;
        for (int ci = 0; ci < g->cin; ci++) {
            const float *in = j->in + (size_t)ci * iplane;
            const float *wk = j->weight + (co * g->cin + (size_t)ci) * kk;
            if (g->k == 3)
                conv3_plane(j, out, in, wk);
            else
                conv1_plane(j, out, in, wk[0]);
        }
    }
}

/* ---- generic: one task per output row of one channel ---- */

static void conv_generic(void *ctx, size_t begin, size_t end)
{
    const struct conv_job *j = ctx;
    const struct vs_conv2d_geom *g = j->g;
    const size_t iplane = (size_t)g->in_h * g->in_w, oplane = (size_t)j->oh * j->ow;
    const int k = g->k;
    for (size_t item = begin; item < end; item++) {
        const size_t co = item / (size_t)j->oh;
        const int y = (int)(item % (size_t)j->oh);
        float *o = j->out + co * oplane + (size_t)y * j->ow;
        for (int x = 0; x < j->ow; x++) {
            float acc = j->bias ? j->bias[co] : 0.0f;
            const float *w = j->weight + co * g->cin * k * k;
            for (int ci = 0; ci < g->cin; ci++)
                for (int ky = 0; ky < k; ky++)
                    for (int kx = 0; kx < k; kx++, w++) {
                        int iy = y + ky - g->pad_top, ix = x + kx - g->pad_left;
                        float v = iy >= 0 && iy < g->in_h && ix >= 0 && ix < g->in_w
                                      ? j->in[ci * iplane + (size_t)iy * g->in_w + ix]
                                      : 0.0f;
                        acc = fmaf(*w, v, acc);
                    }
            o[x] = acc;
        }
    }
}

static const struct {
    const char *name;
    vs_range_fn fn;                            /* scalar: items (channel[, row]) */
    void (*band)(const struct vs_conv_band *); /* SIMD: the banded convolution, one time tap */
    enum vs_isa isa;
} g_impls[VS_CONV2D_IMPLS] = {
    [VS_CONV2D_REF] = {"ref", conv_ref, NULL, VS_ISA_NONE},
    [VS_CONV2D_GENERIC] = {"generic", conv_generic, NULL, VS_ISA_NONE},
    [VS_CONV2D_AVX2] = {"avx2", NULL, vs_conv_band_avx2, VS_ISA_AVX2},
    [VS_CONV2D_AVX512] = {"avx512", NULL, vs_conv_band_avx512, VS_ISA_AVX512},
};

const char *vs_conv2d_impl_name(enum vs_conv2d_impl impl)
{
    return g_impls[impl].name;
}

bool vs_conv2d_impl_supported(enum vs_conv2d_impl impl)
{
    return vs_isa_supported(g_impls[impl].isa);
}

enum vs_conv2d_impl vs_conv2d_best(void)
{
    int v = VS_CONV2D_IMPLS - 1; /* the last version this CPU runs (generic: any CPU) */
    while (!vs_conv2d_impl_supported(v))
        v--;
    return v;
}

void vs_conv2d_impl(enum vs_conv2d_impl impl, const float *in, float *out, const float *weight,
                    const float *bias, const struct vs_conv2d_geom *g)
{
    struct conv_job j = {in, weight, bias, out, g, vs_conv2d_out_h(g), vs_conv2d_out_w(g)};
    if (j.oh <= 0 || j.ow <= 0 || g->cout <= 0)
        return;
    if (g_impls[impl].band) {
        const float *frames[1] = {in};
        g_impls[impl].band(&(const struct vs_conv_band){frames, 1, weight, bias, out, g->cin,
                                                         g->cout, g->k, g->in_h, g->in_w, j.oh,
                                                         j.ow, -g->pad_top, -g->pad_left});
        return;
    }
    vs_parallel_for(impl == VS_CONV2D_REF ? (size_t)g->cout : (size_t)j.oh * g->cout,
                    g_impls[impl].fn, &j);
}

void vs_conv2d(const float *in, float *out, const float *weight, const float *bias,
               const struct vs_conv2d_geom *g)
{
    vs_conv2d_impl(vs_conv2d_best(), in, out, weight, bias, g);
}
