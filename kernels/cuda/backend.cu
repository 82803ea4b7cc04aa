// The CUDA backend table (see backend.h): each entry calls the CUDA twin of a CPU layer on the
// thread's current stream and records the first failure. Host code only; not in the emulation.
#ifndef VS_CUDA_EMU
#include "kernels/cuda/common.cuh"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda/backend.h"
#include "kernels/cuda_libs.h"

// Blend ramps are copied next to the norm statistics: room for tiles up to this many pixels a side.
enum { MAX_RAMP = 16384, SCRATCH_FLOATS = 3 * VS_GN_MAX_GROUPS + 2 * MAX_RAMP };

struct state {
    const struct vs_cuda_ctx *ctx;
    float *scratch; // device, SCRATCH_FLOATS
    char failed[256];
};
static thread_local struct state S;

static void note(int rc, const char *layer)
{
    if (rc && !S.failed[0])
        snprintf(S.failed, sizeof S.failed, "CUDA backend: %s failed (%s)", layer,
                 cudaGetErrorString(cudaGetLastError()));
}

static cudaStream_t stream()
{
    return S.ctx->stream;
}

static void *dev_alloc(void *, size_t bytes)
{
    void *p = NULL;
    return cudaMallocAsync(&p, bytes, stream()) == cudaSuccess ? p : NULL;
}

static void dev_free(void *, void *p)
{
    note(cudaFreeAsync(p, stream()) != cudaSuccess, "cudaFreeAsync");
}

static void *pinned_alloc(void *, size_t bytes)
{
    void *p = NULL;
    return cudaMallocHost(&p, bytes) == cudaSuccess ? p : NULL;
}

static void pinned_free(void *, void *p)
{
    note(cudaFreeHost(p) != cudaSuccess, "cudaFreeHost");
}

// Both directions synchronise: vs_mem frees the source right after the move.
static int move(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind)
{
    return cudaMemcpyAsync(dst, src, bytes, kind, stream()) != cudaSuccess ||
                   cudaStreamSynchronize(stream()) != cudaSuccess
               ? -1
               : 0;
}

static int to_host(void *dst, const void *src, size_t bytes)
{
    return move(dst, src, bytes, cudaMemcpyDeviceToHost);
}

static int from_host(void *dst, const void *src, size_t bytes)
{
    return move(dst, src, bytes, cudaMemcpyHostToDevice);
}

static void copy(void *dst, const void *src, size_t bytes)
{
    note(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, stream()) != cudaSuccess, "copy");
}

static void zero(void *dst, size_t bytes)
{
    note(cudaMemsetAsync(dst, 0, bytes, stream()) != cudaSuccess, "memset");
}

static void cast(void *dst, enum vs_dtype to, const void *src, enum vs_dtype from, size_t n)
{
    note(vs_cuda_cast(dst, to, src, from, n, stream()), "cast");
}

static void conv2d(const float *in, float *out, const float *w, const float *b,
                   const struct vs_conv2d_geom *g)
{
    note(vs_cuda_conv2d(in, out, w, b, g, S.ctx), "conv2d (cuDNN)");
}

// c->packed holds the per-tap weights (vs_cuda_wan_to_device).
static void conv3d_frame(const struct vs_conv3d *c, const float *const *in,
                         const struct vs_window *win, float *out, const struct vs_window *wout)
{
    note(vs_cuda_conv3d_frame(c, c->packed, in, win, out, wout, S.ctx), "conv3d (cuDNN)");
}

static void gn_cell_stats(const float *x, int c, size_t plane, struct vs_window r, int ch, int cw,
                          int groups, struct vs_gn_cell *cells, size_t row_stride)
{
    note(vs_cuda_gn_cell_stats(x, c, plane, r, ch, cw, groups, cells, row_stride, stream()),
         "GroupNorm cell statistics");
}

static void gn_stats(const float *x, int c, size_t plane, struct vs_window r, int groups,
                     struct vs_gn_stats *st)
{
    note(vs_cuda_gn_region_stats(x, c, plane, r, groups, st, S.scratch, stream()),
         "GroupNorm statistics");
}

static void gn_apply(float *x, int c, size_t plane, int groups, const float *mean,
                     const float *rstd, const float *gamma, const float *beta, int silu)
{
    note(vs_cuda_gn_apply(x, c, plane, groups, mean, rstd, gamma, beta, silu, S.scratch,
                          stream()),
         "GroupNorm apply");
}

static void rmsnorm(const float *in, float *out, int c, size_t n, const float *gamma, bool silu)
{
    note(vs_cuda_rmsnorm(in, out, c, n, gamma, silu, stream()), "RMS norm");
}

static void upsample2x(const float *in, float *out, int c, int h, int w)
{
    note(vs_cuda_upsample2x(in, out, c, h, w, stream()), "upsample");
}

static void to_space(float *dst, const struct vs_window *dwin, const float *src,
                     const struct vs_window *swin, const struct vs_to_space *g)
{
    note(vs_cuda_to_space(dst, dwin, src, swin, g, stream()), "channels to space");
}

static void linear(const float *x, const float *w, const float *b, float *y, size_t n, int cin,
                   int cout)
{
    note(vs_cuda_linear(x, w, b, y, n, cin, cout, S.ctx), "linear (cuBLAS)");
}

static int attention(const float *q, const float *k, const float *v, float *out, size_t n, int d,
                     float scale)
{
    int rc = vs_cuda_attention(q, k, v, out, n, d, scale, S.ctx);
    note(rc, "attention (cuBLAS)");
    return rc;
}

static void crop(const float *src, int c, int sh, int sw, int y0, int x0, float *dst, int dh,
                 int dw)
{
    note(vs_cuda_crop(src, c, sh, sw, y0, x0, dst, dh, dw, stream()), "crop");
}

static void add_crop(float *dst, int c, int dh, int dw, const float *src, int sh, int sw, int y0,
                     int x0)
{
    note(vs_cuda_add_crop(dst, c, dh, dw, src, sh, sw, y0, x0, stream()), "residual add");
}

static void transpose(const float *in, float *out, size_t rows, size_t cols)
{
    note(vs_cuda_transpose(in, out, rows, cols, stream()), "transpose");
}

static void paste(float *dst, int c, int dh, int dw, int y0, int x0, const float *src, int sh,
                  int sw, int sy0, int sx0, int h, int w, bool clamp)
{
    note(vs_cuda_paste(dst, c, dh, dw, y0, x0, src, sh, sw, sy0, sx0, h, w, clamp, stream()),
         "paste");
}

static void blend_acc(float *out, float *wsum, int c, int H, int W, int y0, int x0,
                      const float *src, int h, int w, const float *wy, const float *wx)
{
    if (h > MAX_RAMP || w > MAX_RAMP) {
        note(-1, "blend (tile larger than 16384 px)");
        return;
    }
    float *dy = S.scratch + 3 * VS_GN_MAX_GROUPS, *dx = dy + MAX_RAMP;
    note(cudaMemcpyAsync(dy, wy, (size_t)h * sizeof(float), cudaMemcpyHostToDevice, stream()) ||
             cudaMemcpyAsync(dx, wx, (size_t)w * sizeof(float), cudaMemcpyHostToDevice,
                             stream()) ||
             vs_cuda_blend_acc(out, wsum, c, H, W, y0, x0, src, h, w, dy, dx, stream()),
         "blend");
}

static void blend_div(float *out, const float *wsum, int c, size_t hw)
{
    note(vs_cuda_blend_div(out, wsum, c, hw, stream()), "blend division");
}

static struct vs_backend make_backend()
{
    struct vs_backend b;
    memset(&b, 0, sizeof b);
    b.name = "cuda";
    b.host_memory = false;
    b.allocator = {dev_alloc, dev_free, NULL};
    b.park_allocator = {pinned_alloc, pinned_free, NULL};
    b.to_host = to_host;
    b.from_host = from_host;
    b.copy = copy;
    b.zero = zero;
    b.cast = cast;
    b.conv2d = conv2d;
    b.conv3d_frame = conv3d_frame;
    b.gn_cell_stats = gn_cell_stats;
    b.gn_region_stats = gn_stats;
    b.gn_apply = gn_apply;
    b.rmsnorm = rmsnorm;
    b.upsample2x = upsample2x;
    b.to_space = to_space;
    b.linear = linear;
    b.attention = attention;
    b.crop = crop;
    b.add_crop = add_crop;
    b.transpose = transpose;
    b.paste = paste;
    b.blend_acc = blend_acc;
    b.blend_div = blend_div;
    return b;
}

extern "C" const struct vs_backend vs_cuda_backend = make_backend();

extern "C" int vs_cuda_backend_begin(const struct vs_cuda_ctx *ctx, char *why, size_t why_len)
{
    S.ctx = ctx;
    S.failed[0] = 0;
    if (cudaMalloc((void **)&S.scratch, SCRATCH_FLOATS * sizeof(float)) != cudaSuccess) {
        snprintf(why, why_len, "CUDA backend: cannot allocate %zu bytes of scratch",
                 SCRATCH_FLOATS * sizeof(float));
        S.scratch = NULL;
        return -1;
    }
    return 0;
}

extern "C" int vs_cuda_backend_end(char *msg, size_t msg_len)
{
    note(cudaStreamSynchronize(stream()) != cudaSuccess, "the decode's stream");
    cudaFree(S.scratch);
    S.scratch = NULL;
    S.ctx = NULL;
    if (!S.failed[0])
        return 0;
    snprintf(msg, msg_len, "%s", S.failed);
    return -1;
}

// --- device copies of the weights ----------------------------------------------------------

static const float *upload(const float *host, size_t n, int *rc)
{
    float *d = NULL;
    if (!host || *rc)
        return NULL;
    if (cudaMalloc((void **)&d, n * sizeof(float)) != cudaSuccess ||
        cudaMemcpy(d, host, n * sizeof(float), cudaMemcpyHostToDevice) != cudaSuccess) {
        cudaFree(d);
        *rc = -1;
        return NULL;
    }
    return d;
}

// Visits every weight pointer of an AutoencoderKL decoder with its length.
template <class F> static void kl_walk(struct vs_kl_decoder *d, F fn)
{
    auto conv = [&](struct vs_kl_conv *c) {
        fn(&c->w, (size_t)c->cout * c->cin * c->k * c->k);
        fn(&c->b, (size_t)c->cout);
    };
    auto norm = [&](struct vs_kl_norm *n) {
        fn(&n->gamma, (size_t)n->c);
        fn(&n->beta, (size_t)n->c);
    };
    auto resnet = [&](struct vs_kl_resnet *r) {
        norm(&r->norm1), norm(&r->norm2), conv(&r->conv1), conv(&r->conv2), conv(&r->shortcut);
    };
    conv(&d->post_quant), conv(&d->conv_in), resnet(&d->mid[0]), resnet(&d->mid[1]);
    norm(&d->attn.norm), conv(&d->attn.q), conv(&d->attn.k), conv(&d->attn.v), conv(&d->attn.out);
    for (int i = 0; i < d->nup; i++) {
        for (int j = 0; j < d->up[i].nres; j++)
            resnet(&d->up[i].res[j]);
        conv(&d->up[i].upconv);
    }
    norm(&d->norm_out), conv(&d->conv_out);
}

extern "C" int vs_cuda_kl_to_device(struct vs_kl_decoder *dev, const struct vs_kl_decoder *host)
{
    *dev = *host;
    dev->up = (struct vs_kl_up *)malloc((size_t)host->nup * sizeof *dev->up);
    if (!dev->up)
        return -1;
    int rc = 0;
    memcpy(dev->up, host->up, (size_t)host->nup * sizeof *dev->up);
    for (int i = 0; i < host->nup; i++) {
        dev->up[i].res = rc ? NULL : (struct vs_kl_resnet *)malloc((size_t)host->up[i].nres *
                                                                  sizeof *dev->up[i].res);
        if (!dev->up[i].res) { // this block and the ones after it keep no ResNets
            dev->up[i].nres = 0;
            rc = -1;
            continue;
        }
        memcpy(dev->up[i].res, host->up[i].res, (size_t)host->up[i].nres * sizeof *dev->up[i].res);
    }
    // every pointer still holds the host address: upload it, or clear it after a failure
    kl_walk(dev, [&](float **p, size_t n) { *p = (float *)upload(*p, n, &rc); });
    if (rc)
        vs_cuda_kl_free_device(dev);
    return rc;
}

extern "C" void vs_cuda_kl_free_device(struct vs_kl_decoder *dev)
{
    kl_walk(dev, [](float **p, size_t) { cudaFree(*p); *p = NULL; });
    for (int i = 0; dev->up && i < dev->nup; i++)
        free(dev->up[i].res);
    free(dev->up);
    memset(dev, 0, sizeof *dev);
}

// The per-tap layout [kt][out][in][k][k] of a [out][in][kt][k][k] weight.
static float *tap_layout(const struct vs_conv3d *c)
{
    const size_t kk = (size_t)c->k * c->k;
    float *t = (float *)malloc((size_t)c->kt * c->out_ch * c->in_ch * kk * sizeof *t);
    if (!t)
        return NULL;
    for (int dt = 0; dt < c->kt; dt++)
        for (size_t oi = 0; oi < (size_t)c->out_ch * c->in_ch; oi++)
            memcpy(t + ((size_t)dt * c->out_ch * c->in_ch + oi) * kk,
                   c->weight + (oi * c->kt + dt) * kk, kk * sizeof *t);
    return t;
}

template <class F> static void wan_walk(struct vs_wan_model *m, F fn)
{
    for (int i = 0; i < m->n_stages; i++) {
        struct vs_wan_stage *s = &m->stages[i];
        const int g2 = s->kind == VS_WAN_RES ? s->out_ch : 0;
        fn(&s->gamma, s->gamma ? (size_t)s->in_ch : 0, (const struct vs_conv3d *)NULL);
        fn(&s->gamma2, s->gamma2 ? (size_t)g2 : 0, (const struct vs_conv3d *)NULL);
        struct vs_conv3d *convs[3] = {&s->conv, &s->conv2, &s->shortcut};
        for (struct vs_conv3d *c : convs) {
            if (!c->weight)
                continue;
            const size_t n = (size_t)c->out_ch * c->in_ch * c->kt * c->k * c->k;
            fn(&c->bias, (size_t)c->out_ch, (const struct vs_conv3d *)NULL);
            fn(&c->packed, n, c); // from the host weight, in the per-tap layout
            fn(&c->weight, n, (const struct vs_conv3d *)NULL);
        }
    }
}

extern "C" int vs_cuda_wan_to_device(struct vs_wan_model **dev, const struct vs_wan_model *host)
{
    struct vs_wan_model *m = (struct vs_wan_model *)calloc(1, sizeof *m);
    *dev = NULL;
    if (!m)
        return -1;
    *m = *host;
    m->owned = NULL;
    m->n_owned = 0;
    m->stages = (struct vs_wan_stage *)malloc((size_t)host->n_stages * sizeof *m->stages);
    if (!m->stages) {
        free(m);
        return -1;
    }
    memcpy(m->stages, host->stages, (size_t)host->n_stages * sizeof *m->stages);
    int rc = 0;
    wan_walk(m, [&](const float **p, size_t n, const struct vs_conv3d *taps) {
        if (!taps) {
            *p = upload(*p, n, &rc);
            return;
        }
        float *t = tap_layout(taps);
        rc |= !t;
        *p = upload(t, n, &rc);
        free(t);
    });
    if (rc) {
        vs_cuda_wan_free_device(m);
        return -1;
    }
    *dev = m;
    return 0;
}

extern "C" void vs_cuda_wan_free_device(struct vs_wan_model *dev)
{
    if (!dev)
        return;
    wan_walk(dev, [](const float **p, size_t, const struct vs_conv3d *) {
        cudaFree((void *)*p);
        *p = NULL;
    });
    free(dev->stages);
    free(dev);
}
#endif
