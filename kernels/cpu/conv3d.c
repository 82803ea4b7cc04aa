/* Causal 3D convolution over windows (see conv3d.h for the invariants and the exact sums).
 * Versions (harness: bench/bench_conv3d.c; tests: test_kernels_wan_layers.c):
 *  - generic: scalar, one fmaf per tap in (input channel, dt, ky, kx) order: the exact results
 *             every fast version reproduces bit for bit; fallback on old CPUs.
 *  - avx2:    the banded convolution (conv_band.c, shared with conv2d.c: bands of input channels
 *             x live time taps x rows x padded columns on the stack) with 8-float vectors, 6
 *             output channels x 2 vectors per strip.
 *  - avx512:  the same with 16-float vectors, 6 output channels x 4 vectors per strip.
 *    (Before them, avx2 and avx512 strips read the input planes in place, masked at the borders,
 *    over all taps: 1.3x to 1.5x slower on Wan 2.1's 3x3x3 layers.)
 * vs_conv3d_frame runs the best version the CPU has; all give identical bits, so results depend
 * neither on the machine nor on the window a pixel is computed in. */
#include "kernels/cpu/conv3d.h"

#include <math.h>

#include "kernels/cpu/conv_band.h"
#include "kernels/cpu/isa.h"
#include "kernels/cpu/parallel.h"

_Static_assert((int)VS_CONV3D_MAX_KT <= (int)VS_CONV_BAND_MAX_KT,
               "the banded convolution takes every kt");

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
                    for (int ky = 0; ky < k; ky++)
                        for (int kx = 0; kx < k; kx++) {
                            const int iy = wout->y0 + yo + ky - r, ix = wout->x0 + xo + kx - r;
                            float v = iy >= 0 && iy < win->H && ix >= 0 && ix < win->W
                                          ? j->in[dt][(size_t)i * iplane +
                                                      (size_t)(iy - win->y0) * win->w + ix -
                                                      win->x0]
                                          : 0.0f;
                            acc = fmaf(w[(dt * k + ky) * k + kx], v, acc);
                        }
                }
            }
            out[xo] = acc;
        }
    }
}

static const struct {
    const char *name;
    void (*band)(const struct vs_conv_band *); /* NULL: generic */
    enum vs_isa isa;
} g_impls[VS_CONV3D_IMPLS] = {
    [VS_CONV3D_GENERIC] = {"generic", NULL, VS_ISA_NONE},
    [VS_CONV3D_AVX2] = {"avx2", vs_conv_band_avx2, VS_ISA_AVX2},
    [VS_CONV3D_AVX512] = {"avx512", vs_conv_band_avx512, VS_ISA_AVX512},
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
    if (!g_impls[impl].band) {
        struct conv_job job = {c, in, win, wout, out};
        vs_parallel_for((size_t)c->out_ch * wout->h, conv_generic, &job);
        return;
    }
    /* a tap outside the frame is outside the window (vs_window_covers): both read 0 */
    const int r = (c->k - 1) / 2;
    g_impls[impl].band(&(const struct vs_conv_band){
        in, c->kt, c->weight, c->bias, out, c->in_ch, c->out_ch, c->k, win->h, win->w, wout->h,
        wout->w, wout->y0 - r - win->y0, wout->x0 - r - win->x0});
}

void vs_conv3d_frame(const struct vs_conv3d *c, const float *const *in, const struct vs_window *win,
                     float *out, const struct vs_window *wout)
{
    vs_conv3d_frame_impl(vs_conv3d_best(), c, in, win, out, wout);
}
