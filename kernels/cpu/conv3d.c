/* Causal 3D convolution over windows (see conv3d.h for the invariants).
 *
 * Work items are (block of VS_CONV_OB output channels, output row); a row goes in segments of 8
 * pixels whose VS_CONV_OB x 8 accumulators stay in registers over all taps, so one input load
 * feeds VS_CONV_OB multiply-adds. Every output pixel sums its taps in the same order (input
 * channel, dt, ky, kx) whatever the window or segment, so a tile and the whole frame give
 * bit-identical values. */
#include "kernels/cpu/conv3d.h"

#include "kernels/cpu/parallel.h"

/* Below VS_CONV_PARALLEL_MIN multiply-adds, starting threads costs more than it saves. */
enum { VS_CONV_OB = 4, VS_CONV_PARALLEL_MIN = 1 << 20 };


/* Unaligned, aliasing 8-float vector (GCC vector extension; lowered to SSE/AVX as available). */
typedef float vs_v8 __attribute__((vector_size(32), aligned(4), may_alias));

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

/* Output channels [o0, o0+nb), row yo, columns [xs, xs+n) with n <= 8: the accumulators stay
 * in registers over every (input channel, dt, ky, kx) tap. Near the frame's left and right
 * edges the input row is first copied with its zero padding, so lanes whose tap falls outside
 * the frame add 0 and each pixel sums the same terms in the same order on every path. */
static void conv_segment(const struct vs_conv3d *c, const float *const *in,
                         const struct vs_window *win, float *out, const struct vs_window *wout,
                         int o0, int nb, int yo, int xs, int n)
{
    const int k = c->k, r = (k - 1) / 2, taps = c->kt * k * k;
    const size_t in_plane = vs_window_area(win), out_plane = vs_window_area(wout);
    const int fx = wout->x0 + xs - r; /* frame column of lane 0's first tap */
    const bool inside = n == 8 && fx >= 0 && fx + 7 + 2 * r < win->W;
    vs_v8 a0, a1, a2, a3;
    {
        float b[VS_CONV_OB];
        for (int j = 0; j < VS_CONV_OB; j++)
            b[j] = j < nb ? c->bias[o0 + j] : 0.0f;
        a0 = (vs_v8){b[0], b[0], b[0], b[0], b[0], b[0], b[0], b[0]};
        a1 = (vs_v8){b[1], b[1], b[1], b[1], b[1], b[1], b[1], b[1]};
        a2 = (vs_v8){b[2], b[2], b[2], b[2], b[2], b[2], b[2], b[2]};
        a3 = (vs_v8){b[3], b[3], b[3], b[3], b[3], b[3], b[3], b[3]};
    }
    float padded[8 + 2 * (VS_CONV3D_MAX_K / 2)];
    const float *wp = c->packed + (size_t)(o0 / VS_CONV_OB) * c->in_ch * taps * VS_CONV_OB;
    for (int i = 0; i < c->in_ch; i++, wp += (size_t)taps * VS_CONV_OB) {
        for (int dt = 0; dt < c->kt; dt++) {
            if (!in[dt])
                continue;
            for (int ky = 0; ky < k; ky++) {
                int iy = wout->y0 + yo + ky - r;
                if (iy < 0 || iy >= win->H)
                    continue;
                const float *row = in[dt] + (size_t)i * in_plane + (size_t)(iy - win->y0) * win->w;
                const float *src = row + (fx - win->x0);
                if (!inside) {
                    for (int l = 0; l < n + 2 * r; l++)
                        padded[l] = fx + l >= 0 && fx + l < win->W ? row[fx + l - win->x0] : 0.0f;
                    for (int l = n + 2 * r; l < 8 + 2 * r; l++)
                        padded[l] = 0.0f;
                    src = padded;
                }
                const float *w = wp + (size_t)(dt * k + ky) * k * VS_CONV_OB;
                for (int kx = 0; kx < k; kx++, w += VS_CONV_OB) {
                    vs_v8 v = *(const vs_v8 *)(src + kx);
                    a0 += w[0] * v;
                    a1 += w[1] * v;
                    a2 += w[2] * v;
                    a3 += w[3] * v;
                }
            }
        }
    }
    vs_v8 acc[VS_CONV_OB] = {a0, a1, a2, a3};
    for (int j = 0; j < nb; j++) {
        float *o = out + (size_t)(o0 + j) * out_plane + (size_t)yo * wout->w + xs;
        if (n == 8)
            *(vs_v8 *)o = acc[j];
        else
            for (int l = 0; l < n; l++)
                o[l] = acc[j][l];
    }
}

size_t vs_conv3d_packed_floats(const struct vs_conv3d *c)
{
    size_t blocks = (size_t)(c->out_ch + VS_CONV_OB - 1) / VS_CONV_OB;
    return blocks * c->in_ch * c->kt * c->k * c->k * VS_CONV_OB;
}

void vs_conv3d_pack(const struct vs_conv3d *c, float *packed)
{
    const size_t taps = (size_t)c->kt * c->k * c->k;
    for (int o0 = 0; o0 < c->out_ch; o0 += VS_CONV_OB)
        for (int i = 0; i < c->in_ch; i++)
            for (size_t t = 0; t < taps; t++)
                for (int j = 0; j < VS_CONV_OB; j++)
                    *packed++ = o0 + j < c->out_ch
                                    ? c->weight[((size_t)(o0 + j) * c->in_ch + i) * taps + t]
                                    : 0.0f;
}

/* One output row of output channels [o0, o0+nb). */
static void conv_row(const struct vs_conv3d *c, const float *const *in, const struct vs_window *win,
                     float *out, const struct vs_window *wout, int o0, int nb, int yo)
{
    for (int xs = 0; xs < wout->w; xs += 8)
        conv_segment(c, in, win, out, wout, o0, nb, yo, xs, wout->w - xs < 8 ? wout->w - xs : 8);
}

struct conv_job {
    const struct vs_conv3d *c;
    const float *const *in;
    const struct vs_window *win;
    float *out;
    const struct vs_window *wout;
};

/* Items are (output channel block, output row) pairs, block-major. */
static void conv_items(void *ctx, size_t begin, size_t end)
{
    const struct conv_job *j = ctx;
    for (size_t item = begin; item < end; item++) {
        int o0 = (int)(item / (size_t)j->wout->h) * VS_CONV_OB;
        int yo = (int)(item % (size_t)j->wout->h);
        int nb = j->c->out_ch - o0 < VS_CONV_OB ? j->c->out_ch - o0 : VS_CONV_OB;
        conv_row(j->c, j->in, j->win, j->out, j->wout, o0, nb, yo);
    }
}

void vs_conv3d_frame(const struct vs_conv3d *c, const float *const *in, const struct vs_window *win,
                     float *out, const struct vs_window *wout)
{
    struct conv_job job = {c, in, win, out, wout};
    size_t blocks = (size_t)(c->out_ch + VS_CONV_OB - 1) / VS_CONV_OB;
    size_t items = blocks * (size_t)wout->h;
    size_t macs = (size_t)c->out_ch * c->in_ch * c->kt * c->k * c->k * vs_window_area(wout);
    if (macs < VS_CONV_PARALLEL_MIN)
        conv_items(&job, 0, items);
    else
        vs_parallel_for(items, conv_items, &job);
}
