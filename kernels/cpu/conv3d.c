/* Causal 3D convolution over windows (see conv3d.h for the invariants and the exact sums).
 * Versions (harness: bench/bench_conv3d.c; tests: test_kernels_wan_layers.c):
 *  - generic: scalar, one fmaf per tap in (input channel, dt, ky, kx) order: the exact results
 *             every fast version reproduces bit for bit; fallback on old CPUs.
 *  - avx2:    conv3d_simd.h with 8-float vectors, 6 output channels x 2 vectors per strip.
 *  - avx512:  conv3d_simd.h with 16-float vectors, 6 output channels x 4 vectors per strip.
 * vs_conv3d_frame runs the best version the CPU has; all give identical bits, so results depend
 * neither on the machine nor on the window a pixel is computed in. */
#include "kernels/cpu/conv3d.h"

#include <immintrin.h>
#include <math.h>

#include "kernels/cpu/isa.h"
#include "kernels/cpu/parallel.h"

/* OB: output channels per strip (the packed weights' block). Below PARALLEL_MIN multiply-adds,
 * starting threads costs more than it saves. */
enum { OB = 6, PARALLEL_MIN = 1 << 20 };

struct vs_window vs_window_grow(const struct vs_window *w, int r)
{
    struct vs_window g = *w;
    int y1 = w->y0 + w->h + r > w->H ? w->H : w->y0 + w->h + r;
    int x1 = w->x0 + w->w + r > w->W ? w->W : w->x0 + w->w + r;
    g.y0 = w->y0 - r < 0 ? 0 : w->y0 - r;
    g.x0 = w->x0 - r < 0 ? 0 : w->x0 - r;
    g.h = y1 - g.y0;
    g.w = x1 - g.x0;
    return g;
}

bool vs_window_covers(const struct vs_window *in, const struct vs_window *out, int radius)
{
    struct vs_window need = vs_window_grow(out, radius);
    return in->H == out->H && in->W == out->W && in->y0 <= need.y0 && in->x0 <= need.x0 &&
           in->y0 + in->h >= need.y0 + need.h && in->x0 + in->w >= need.x0 + need.w;
}

size_t vs_conv3d_packed_floats(const struct vs_conv3d *c)
{
    size_t blocks = (size_t)(c->out_ch + OB - 1) / OB;
    return blocks * c->in_ch * c->kt * c->k * c->k * OB;
}

/* [block][in_ch][kt][k][k][OB], channels past out_ch zero. */
void vs_conv3d_pack(const struct vs_conv3d *c, float *packed)
{
    const size_t taps = (size_t)c->kt * c->k * c->k;
    for (int o0 = 0; o0 < c->out_ch; o0 += OB)
        for (int i = 0; i < c->in_ch; i++)
            for (size_t t = 0; t < taps; t++)
                for (int j = 0; j < OB; j++)
                    *packed++ = o0 + j < c->out_ch
                                    ? c->weight[((size_t)(o0 + j) * c->in_ch + i) * taps + t]
                                    : 0.0f;
}

struct conv_job {
    const struct vs_conv3d *c;
    const float *const *in;
    const struct vs_window *win, *wout;
    float *out;
};

/* ---- generic: one task per output row of one channel ---- */

static void conv_generic(void *ctx, size_t begin, size_t end)
{
    const struct conv_job *j = ctx;
    const struct vs_conv3d *c = j->c;
    const struct vs_window *win = j->win, *wout = j->wout;
    const int k = c->k, r = (k - 1) / 2, taps = c->kt * k * k;
    const size_t iplane = vs_window_area(win), oplane = vs_window_area(wout);
    for (size_t item = begin; item < end; item++) {
        const int o = (int)(item / (size_t)wout->h), yo = (int)(item % (size_t)wout->h);
        float *out = j->out + (size_t)o * oplane + (size_t)yo * wout->w;
        for (int xo = 0; xo < wout->w; xo++) {
            float acc = c->bias[o];
            for (int i = 0; i < c->in_ch; i++) {
                const float *w = c->weight + ((size_t)o * c->in_ch + i) * taps;
                for (int dt = 0; dt < c->kt; dt++) {
                    if (!j->in[dt])
                        continue;
                    for (int ky = 0; ky < k; ky++) {
                        const int iy = wout->y0 + yo + ky - r;
                        if (iy < 0 || iy >= win->H)
                            continue;
                        const float *row = j->in[dt] + (size_t)i * iplane +
                                           (size_t)(iy - win->y0) * win->w;
                        for (int kx = 0; kx < k; kx++) {
                            const int ix = wout->x0 + xo + kx - r;
                            float v = ix >= 0 && ix < win->W ? row[ix - win->x0] : 0.0f;
                            acc = fmaf(w[(dt * k + ky) * k + kx], v, acc);
                        }
                    }
                }
            }
            out[xo] = acc;
        }
    }
}

/* ---- SIMD versions: one task per (output row, block of OB output channels) ---- */

struct strip {
    const float *const *in; /* the kt frames (NULL: zero frame) */
    int kt, k, cin;
    size_t iplane;
    int iw;               /* input window width */
    int first;            /* window column of output column 0's tap kx = 0 */
    bool row_ok[3];       /* tap row ky inside the frame */
    ptrdiff_t row[3];     /* offset of tap row ky's element at column `first` in a plane */
    const float *w;       /* the block's packed weights */
    float bias[OB];
    float *out;           /* the block's first channel at this row */
    size_t oplane;
    int nb, ow;
};

static void strip_setup(struct strip *s, const struct conv_job *j, int o0, int yo)
{
    const struct vs_conv3d *c = j->c;
    const struct vs_window *win = j->win, *wout = j->wout;
    const int r = (c->k - 1) / 2;
    s->in = j->in;
    s->kt = c->kt;
    s->k = c->k;
    s->cin = c->in_ch;
    s->iplane = vs_window_area(win);
    s->iw = win->w;
    s->first = wout->x0 - r - win->x0;
    for (int ky = 0; ky < 3; ky++) {
        const int iy = wout->y0 + yo + ky - r;
        s->row_ok[ky] = ky < c->k && iy >= 0 && iy < win->H;
        s->row[ky] = s->row_ok[ky] ? (ptrdiff_t)(iy - win->y0) * win->w + s->first : 0;
    }
    s->w = c->packed + (size_t)(o0 / OB) * c->in_ch * c->kt * c->k * c->k * OB;
    s->nb = c->out_ch - o0 < OB ? c->out_ch - o0 : OB;
    for (int b = 0; b < OB; b++)
        s->bias[b] = b < s->nb ? c->bias[o0 + b] : 0.0f;
    s->oplane = vs_window_area(wout);
    s->out = j->out + (size_t)o0 * s->oplane + (size_t)yo * wout->w;
    s->ow = wout->w;
}

/* Items walk groups of channel blocks whose weights fit in L2 (GROUP_BYTES): all rows of a group,
 * the group's blocks for each row, so weights come from L2 while rows stream, and the input rows
 * of one output row serve the whole group. */
enum { GROUP_BYTES = 512 << 10 };

static void item_place(const struct conv_job *j, size_t item, int *yo, int *o0)
{
    const struct vs_conv3d *c = j->c;
    const size_t blocks = (size_t)(c->out_ch + OB - 1) / OB, h = (size_t)j->wout->h;
    const size_t per = (size_t)OB * c->in_ch * c->kt * c->k * c->k * sizeof(float);
    const size_t group = per >= GROUP_BYTES ? 1 : GROUP_BYTES / per;
    const size_t first = item / (group * h) * group;
    const size_t n = blocks - first < group ? blocks - first : group, rest = item - first * h;
    *yo = (int)(rest / n);
    *o0 = (int)(first + rest % n) * OB;
}

#include "kernels/cpu/simd_avx512.h"
#include "kernels/cpu/conv3d_simd.h"
#include "kernels/cpu/simd_undef.h"

#include "kernels/cpu/simd_avx2.h"
#include "kernels/cpu/conv3d_simd.h"
#include "kernels/cpu/simd_undef.h"

static const struct {
    const char *name;
    vs_range_fn fn;
    bool per_block; /* items are (row, channel block) rather than (channel, row) */
    enum vs_isa isa;
} g_impls[VS_CONV3D_IMPLS] = {
    [VS_CONV3D_GENERIC] = {"generic", conv_generic, false, VS_ISA_NONE},
    [VS_CONV3D_AVX2] = {"avx2", range_avx2, true, VS_ISA_AVX2},
    [VS_CONV3D_AVX512] = {"avx512", range_avx512, true, VS_ISA_AVX512},
};

const char *vs_conv3d_impl_name(enum vs_conv3d_impl impl)
{
    return g_impls[impl].name;
}

bool vs_conv3d_impl_supported(enum vs_conv3d_impl impl)
{
    return vs_isa_supported(g_impls[impl].isa);
}

enum vs_conv3d_impl vs_conv3d_best(void)
{
    int v = VS_CONV3D_IMPLS - 1; /* the last version this CPU runs (generic: any CPU) */
    while (!vs_conv3d_impl_supported(v))
        v--;
    return v;
}

void vs_conv3d_frame_impl(enum vs_conv3d_impl impl, const struct vs_conv3d *c,
                          const float *const *in, const struct vs_window *win, float *out,
                          const struct vs_window *wout)
{
    if (wout->h <= 0 || wout->w <= 0 || c->out_ch <= 0)
        return;
    struct conv_job job = {c, in, win, wout, out};
    size_t rows = g_impls[impl].per_block ? (size_t)(c->out_ch + OB - 1) / OB : (size_t)c->out_ch;
    size_t items = rows * (size_t)wout->h;
    size_t macs = (size_t)c->out_ch * c->in_ch * c->kt * c->k * c->k * vs_window_area(wout);
    if (macs < PARALLEL_MIN)
        g_impls[impl].fn(&job, 0, items);
    else
        vs_parallel_for(items, g_impls[impl].fn, &job);
}

void vs_conv3d_frame(const struct vs_conv3d *c, const float *const *in, const struct vs_window *win,
                     float *out, const struct vs_window *wout)
{
    vs_conv3d_frame_impl(vs_conv3d_best(), c, in, win, out, wout);
}
