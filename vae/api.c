/* libvramshim_vae.so: the public C API (include/vramshim_vae.h) over the decoder in kernels/.
 * One executor, two backends: host decodes run on the CPU backend, device decodes on the CUDA
 * backend (kernels/cuda/backend.h) with device copies of the weights made at the first one.
 * Latents are unscaled on the host (they are small); see docs/decoder.md. */
#include "vramshim_vae.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/size.h"
#include "kernels/backend.h"
#include "kernels/cpu/cast.h"
#include "kernels/cuda/backend.h"
#include "kernels/kl_decoder.h"
#include "kernels/kl_program.h"
#include "kernels/plan.h"
#include "kernels/st_memory.h"
#include "kernels/wan.h"
#include "kernels/weights.h"
#include "kernels/cuda_libs.h"

#define EXPORT __attribute__((visibility("default")))

struct vramshim_vae {
    char label[256];
    int wan;
    struct vs_kl_decoder kl;
    struct vs_program prog;
    struct vs_wan_model *wm;
    /* the CUDA backend's state, made at the first GPU decode */
    bool on_device;            /* dkl/dprog or dwm hold device copies of the weights */
    struct vs_kl_decoder dkl;
    struct vs_program dprog;
    struct vs_wan_model *dwm;
    bool cuda_ready;           /* cuda holds cuDNN and cuBLAS handles */
    struct vs_cuda_ctx cuda;
};

static int report(int rc, const struct vs_err *err, char *msg, size_t len)
{
    if (msg && len)
        snprintf(msg, len, "%s", err->msg);
    return rc;
}

static enum vs_dtype dtype_of(vramshim_vae_dtype d)
{
    return d == VRAMSHIM_VAE_F16 ? VS_DT_F16 : d == VRAMSHIM_VAE_BF16 ? VS_DT_BF16 : VS_DT_F32;
}

static size_t dtype_size(vramshim_vae_dtype d)
{
    return d == VRAMSHIM_VAE_F32 ? 4 : 2;
}

static int valid_dtype(vramshim_vae_dtype d)
{
    return d == VRAMSHIM_VAE_F32 || d == VRAMSHIM_VAE_F16 || d == VRAMSHIM_VAE_BF16;
}

/* The one line a process gets when its GPU calls will be refused (at the first look). */
static pthread_once_t said = PTHREAD_ONCE_INIT;
static void say_once(void)
{
    const struct vs_cuda_libs *l = vs_cuda_libs();
    if (!l->gpu_usable)
        fprintf(stderr, "vramshim_vae: %s; device memory is refused, the CPU backend works\n",
                l->why);
}

static bool is_device(const void *p)
{
    pthread_once(&said, say_once);
    return vs_cuda_is_device_pointer(p);
}

/* The refusal of GPU work: why no GPU is usable. */
static int no_gpu(const char *what, struct vs_err *err)
{
    return vs_err_set(err, "%s needs the GPU but none is usable: %s", what, vs_cuda_libs()->why);
}

/* A caller's device buffer of n bytes, copied to host memory in the order of stream (NULL:
 * out of memory or the copy failed, err says which). */
static void *device_to_host(const void *src, size_t bytes, void *stream, const char *what,
                            struct vs_err *err)
{
    void *h = malloc(bytes ? bytes : 1);
    if (!h)
        vs_err_set(err, "out of host memory for a copy of %s (%zu bytes)", what, bytes);
    else if (vs_cuda_copy_sync(h, src, bytes, stream)) {
        vs_err_set(err, "copying %s (%zu bytes) from the device failed: %s", what, bytes,
                   vs_cuda_last_error());
        free(h);
        h = NULL;
    }
    return h;
}

/* Bytes of a described tensor, or 0 with err set when its shape is not a valid size. */
static size_t tensor_bytes(const vramshim_vae_tensor *t, const char *what, struct vs_err *err)
{
    size_t n = dtype_size(t->dtype);
    if (t->ndim < 0 || t->ndim > 8) {
        vs_err_set(err, "%s: ndim %d is outside 0..8", what, t->ndim);
        return 0;
    }
    for (int i = 0; i < t->ndim; i++)
        if (t->shape[i] < 0 || t->shape[i] > ((int64_t)1 << 40) ||
            __builtin_mul_overflow(n, (size_t)t->shape[i], &n) || n > ((size_t)1 << 40)) {
            vs_err_set(err, "%s: shape[%d] = %lld makes it larger than 1 TiB or is negative",
                       what, i, (long long)t->shape[i]);
            return 0;
        }
    return n;
}

/* Wan: a 3-D conv_in (5-D weight) or the original Wan name of conv_in. */
static int looks_like_wan(struct vs_weights *w)
{
    static const char *const markers[] = {"decoder.conv_in.weight", "decoder.conv1.weight"};
    struct vs_err ignored;
    if (vs_weights_detect_prefix(w, markers, 2, &ignored))
        return 0;
    const struct vs_st_tensor *t = vs_weights_peek(w, markers[0]);
    return !t || t->ndim == 5;
}

/* Takes over w (closed on return). */
static int open_weights(struct vs_weights *w, const char *label, vramshim_vae_arch arch,
                        vramshim_vae **out, char *msg, size_t len)
{
    struct vs_err err = {""};
    int rc = VRAMSHIM_VAE_ERR_WEIGHTS;
    vramshim_vae *v = calloc(1, sizeof *v);
    if (!v) {
        vs_weights_close(w);
        vs_err_set(&err, "out of host memory opening %s", label);
        return report(VRAMSHIM_VAE_ERR_OOM, &err, msg, len);
    }
    snprintf(v->label, sizeof v->label, "%s", label);
    v->wan = arch == VRAMSHIM_VAE_ARCH_WAN21 || arch == VRAMSHIM_VAE_ARCH_WAN22 ||
             (arch == VRAMSHIM_VAE_ARCH_AUTO && looks_like_wan(w));
    const int wan_version = arch == VRAMSHIM_VAE_ARCH_WAN22 ? 22
                            : arch == VRAMSHIM_VAE_ARCH_WAN21 ? 21 : 0;
    if (v->wan ? vs_wan_load_weights(w, &v->wm, &err) ||
                     vs_wan_check_version(v->wm, wan_version, label, &err)
               : vs_kl_load_weights(&v->kl, w, (enum vs_arch)arch, &err) ||
                     vs_program_build(&v->prog, &v->kl, &err))
        goto fail;
    vs_weights_close(w);
    *out = v;
    return VRAMSHIM_VAE_OK;
fail:
    vs_weights_close(w);
    vramshim_vae_close(v);
    return report(rc, &err, msg, len);
}

static int check_arch(vramshim_vae_arch arch, struct vs_err *err)
{
    if ((int)arch < VRAMSHIM_VAE_ARCH_AUTO || arch > VRAMSHIM_VAE_ARCH_WAN22)
        return vs_err_set(err, "arch %d is not a vramshim_vae_arch", (int)arch);
    return 0;
}

EXPORT int vramshim_vae_open_file(const char *path, vramshim_vae_arch arch, vramshim_vae **vae,
                                  char *msg, size_t msg_len)
{
    struct vs_err err = {""};
    struct vs_weights w;
    if (!vae || !path) {
        vs_err_set(&err, "vramshim_vae_open_file: %s is NULL", vae ? "path" : "vae");
        return report(VRAMSHIM_VAE_ERR_ARG, &err, msg, msg_len);
    }
    *vae = NULL;
    if (check_arch(arch, &err))
        return report(VRAMSHIM_VAE_ERR_ARG, &err, msg, msg_len);
    if (vs_weights_open(&w, path, &err))
        return report(VRAMSHIM_VAE_ERR_WEIGHTS, &err, msg, msg_len);
    return open_weights(&w, path, arch, vae, msg, msg_len);
}

EXPORT int vramshim_vae_open_tensors(const vramshim_vae_tensor *tensors, size_t n,
                                     const char *config_json, vramshim_vae_arch arch,
                                     vramshim_vae **vae, char *msg, size_t msg_len)
{
    static const char label[] = "caller tensors";
    struct vs_err err = {""};
    if (!vae || (!tensors && n)) {
        vs_err_set(&err, "vramshim_vae_open_tensors: %s is NULL", vae ? "tensors" : "vae");
        return report(VRAMSHIM_VAE_ERR_ARG, &err, msg, msg_len);
    }
    *vae = NULL;
    if (check_arch(arch, &err))
        return report(VRAMSHIM_VAE_ERR_ARG, &err, msg, msg_len);
    struct vs_st_mem_tensor *ts = calloc(n + 1, sizeof *ts);
    if (!ts) {
        vs_err_set(&err, "out of host memory for %zu tensor descriptions", n);
        return report(VRAMSHIM_VAE_ERR_OOM, &err, msg, msg_len);
    }
    /* device tensors are read through host copies (staged[i]), freed once the weights are
     * converted */
    void **staged = calloc(n + 1, sizeof *staged);
    int rc = staged ? VRAMSHIM_VAE_OK : VRAMSHIM_VAE_ERR_OOM;
    if (!staged)
        vs_err_set(&err, "out of host memory for %zu tensor descriptions", n);
    for (size_t i = 0; i < n && !rc; i++) {
        const vramshim_vae_tensor *t = &tensors[i];
        char what[300];
        size_t bytes;
        snprintf(what, sizeof what, "tensor '%s'", t->name ? t->name : "(unnamed)");
        if (!valid_dtype(t->dtype))
            rc = vs_err_set(&err, "%s: %s has dtype %d, not a vramshim_vae_dtype (F32, F16, BF16)",
                            label, what, (int)t->dtype) ? VRAMSHIM_VAE_ERR_WEIGHTS : 0;
        else if (is_device(t->data)) {
            if (!vs_cuda_libs()->gpu_usable)
                rc = no_gpu(what, &err) ? VRAMSHIM_VAE_ERR_NO_GPU : 0;
            else if (!(bytes = tensor_bytes(t, what, &err)))
                rc = VRAMSHIM_VAE_ERR_WEIGHTS;
            else if (!(staged[i] = device_to_host(t->data, bytes, NULL, what, &err)))
                rc = VRAMSHIM_VAE_ERR_CUDA;
        }
        ts[i] = (struct vs_st_mem_tensor){t->name, staged && staged[i] ? staged[i] : t->data,
                                          dtype_of(t->dtype), t->ndim, t->shape};
    }
    struct vs_st_file f;
    struct vs_weights w;
    if (!rc && vs_st_from_memory(&f, label, ts, n, config_json, &err))
        rc = VRAMSHIM_VAE_ERR_WEIGHTS;
    else if (!rc && vs_weights_adopt(&w, &f, &err))
        rc = VRAMSHIM_VAE_ERR_OOM;
    if (!rc)
        rc = open_weights(&w, label, arch, vae, msg, msg_len);
    else
        report(rc, &err, msg, msg_len);
    for (size_t i = 0; staged && i < n; i++)
        free(staged[i]);
    free(staged);
    free(ts);
    return rc;
}

EXPORT void vramshim_vae_close(vramshim_vae *vae)
{
    if (!vae)
        return;
    if (vae->on_device && vae->wan)
        vs_cuda_wan_free_device(vae->dwm);
    else if (vae->on_device) {
        vs_program_free(&vae->dprog);
        vs_cuda_kl_free_device(&vae->dkl);
    }
    if (vae->cuda_ready)
        vs_cuda_ctx_free(&vae->cuda);
    if (vae->wan)
        vs_wan_free(vae->wm);
    else {
        vs_program_free(&vae->prog);
        vs_kl_free(&vae->kl);
    }
    free(vae);
}

/* The decode's geometry, checked against the decoder. */
struct shape {
    int n, c, t, h, w;   /* t: latent frames (Wan), else 1 */
    int H, W, T_out;
    size_t in_numel, out_numel; /* whole batch */
};

static int check_shape(const vramshim_vae *v, const vramshim_vae_decode_args *a, struct shape *s,
                       const char *fn, struct vs_err *err)
{
    if (!v || !a)
        return vs_err_set(err, "%s: %s is NULL", fn, v ? "args" : "vae");
    const int want = v->wan ? 5 : 4;
    if (a->ndim != want)
        return vs_err_set(err, "latents: %d dimensions given; this %s decoder takes %s", a->ndim,
                          v->wan ? "Wan 2.1" : "AutoencoderKL", v->wan ? "NCTHW (5)" : "NCHW (4)");
    for (int i = 0; i < want; i++)
        if (a->shape[i] < 1 || a->shape[i] > (1 << 20))
            return vs_err_set(err, "latents: shape[%d] = %lld is outside 1..%d", i,
                              (long long)a->shape[i], 1 << 20);
    s->n = (int)a->shape[0];
    s->c = (int)a->shape[1];
    s->t = v->wan ? (int)a->shape[2] : 1;
    s->h = (int)a->shape[want - 2];
    s->w = (int)a->shape[want - 1];
    int channels = v->wan ? vs_wan_latent_channels(v->wm) : v->kl.latent_channels;
    if (s->c != channels)
        return vs_err_set(err, "latents: %d channels but the decoder (%s) takes %d", s->c,
                          v->label, channels);
    if (v->wan && s->n != 1)
        return vs_err_set(err, "latents: batch of %d videos; decode one video at a time", s->n);
    if ((int)a->mode < VRAMSHIM_VAE_EXACT || a->mode > VRAMSHIM_VAE_MONOLITHIC)
        return vs_err_set(err, "mode %d is not a vramshim_vae_mode", (int)a->mode);
    if (v->wan && a->mode == VRAMSHIM_VAE_BLEND)
        return vs_err_set(err, "mode blend: Wan 2.1 has no GroupNorm, so every tiling is exact "
                               "and there is nothing to blend; use exact");
    if (a->tile_px < 0)
        return vs_err_set(err, "tile_px %d is negative", a->tile_px);
    int S = v->wan ? vs_wan_spatial_scale(v->wm) : v->kl.upscale;
    s->H = s->h * S;
    s->W = s->w * S;
    s->T_out = v->wan ? vs_wan_out_frames(v->wm, s->t) : 1;
    s->in_numel = (size_t)s->n * s->c * s->t * s->h * s->w;
    s->out_numel = (size_t)s->n * 3 * s->T_out * s->H * s->W;
    return 0;
}

static struct vs_wan_opts wan_opts(const vramshim_vae_decode_args *a,
                                   const struct vs_allocator *alloc)
{
    /* monolithic: one tile over the whole frame (no tile, no budget) */
    int mono = a->mode == VRAMSHIM_VAE_MONOLITHIC;
    return (struct vs_wan_opts){mono ? 0 : a->tile_px, mono ? 0 : a->budget, NULL, NULL, alloc,
                                NULL};
}

/* A plan for the decode, or ERR_BUDGET naming the smallest budget that works. kl_plan receives
 * the AutoencoderKL plan (freed by the caller) when not NULL. */
static int make_plan(vramshim_vae *v, const vramshim_vae_decode_args *a, const struct shape *s,
                     vramshim_vae_plan *out, struct vs_plan *kl_plan, struct vs_err *err)
{
    memset(out, 0, sizeof *out);
    out->mode = a->mode;
    char need[32];
    if (v->wan) {
        struct vs_wan_opts o = wan_opts(a, NULL);
        struct vs_wan_plan p;
        if (vs_wan_plan(v->wm, s->t, s->h, s->w, &o, &p, err)) {
            if (!o.budget || o.tile)
                return VRAMSHIM_VAE_ERR_ARG;
            struct vs_wan_opts smallest = {.tile = vs_wan_spatial_scale(v->wm)};
            struct vs_err ignored;
            if (!vs_wan_plan(v->wm, s->t, s->h, s->w, &smallest, &p, &ignored))
                vs_err_set(err, "budget %zu bytes is too small for this Wan decode: the smallest "
                           "plan (%d px tiles) needs %s (%zu bytes)", a->budget, smallest.tile,
                           vs_size_format(p.predicted_peak, need, sizeof need), p.predicted_peak);
            return VRAMSHIM_VAE_ERR_BUDGET;
        }
        *out = (vramshim_vae_plan){.mode = a->mode, .tiles_y = p.tiles_y, .tiles_x = p.tiles_x,
                                   .tile_h = p.tile_h, .tile_w = p.tile_w,
                                   .halo_px = p.halo * vs_wan_spatial_scale(v->wm),
                                   .predicted_peak = p.predicted_peak};
        vs_wan_plan_describe(&p, v->wm, s->t, out->description, sizeof out->description);
        return VRAMSHIM_VAE_OK;
    }
    const int S = v->kl.upscale, tile = a->tile_px ? (a->tile_px + S - 1) / S : 0;
    struct vs_plan p;
    if (vs_plan_make(&p, &v->prog, s->h, s->w, (enum vs_decode_mode)a->mode, tile, a->budget,
                     err)) {
        if (!a->budget || tile)
            return VRAMSHIM_VAE_ERR_ARG;
        struct vs_plan smallest;
        struct vs_err ignored;
        enum vs_decode_mode m =
            a->mode == VRAMSHIM_VAE_MONOLITHIC ? VS_DECODE_EXACT : (enum vs_decode_mode)a->mode;
        if (!vs_plan_make(&smallest, &v->prog, s->h, s->w, m, 1, 0, &ignored)) {
            size_t len = strlen(err->msg);
            snprintf(err->msg + len, sizeof err->msg - len,
                     "; the smallest budget that works is %s (%zu bytes, %s mode, 1 latent px "
                     "tiles)", vs_size_format(smallest.predicted_work, need, sizeof need),
                     smallest.predicted_work, vs_decode_mode_name(m));
            vs_plan_free(&smallest);
        }
        return VRAMSHIM_VAE_ERR_BUDGET;
    }
    int tiled = p.mode != VS_DECODE_MONOLITHIC;
    *out = (vramshim_vae_plan){.mode = a->mode, .tiles_y = tiled ? p.tiling.nty : 1,
                               .tiles_x = tiled ? p.tiling.ntx : 1,
                               .tile_h = (tiled ? p.tile : s->h) * S,
                               .tile_w = (tiled ? p.tile : s->w) * S,
                               .halo_px = tiled ? p.tiling.margin * S : 0,
                               .predicted_peak = p.predicted_work,
                               .predicted_parked = p.predicted_park};
    vs_plan_describe(&p, &v->prog, out->description, sizeof out->description);
    if (kl_plan)
        *kl_plan = p;
    else
        vs_plan_free(&p);
    return VRAMSHIM_VAE_OK;
}

EXPORT int vramshim_vae_plan_decode(vramshim_vae *vae, const vramshim_vae_decode_args *args,
                                    vramshim_vae_plan *plan, char *msg, size_t msg_len)
{
    struct vs_err err = {""};
    struct shape s;
    vramshim_vae_plan local;
    if (check_shape(vae, args, &s, "vramshim_vae_plan_decode", &err))
        return report(VRAMSHIM_VAE_ERR_ARG, &err, msg, msg_len);
    int rc = make_plan(vae, args, &s, plan ? plan : &local, NULL, &err);
    return report(rc, &err, msg, msg_len);
}

/* Working memory from the caller's allocator (or the backend's), with failures noted so that
 * an out-of-memory decode reports VRAMSHIM_VAE_ERR_OOM. */
struct alloc_ctx {
    const vramshim_vae_allocator *user;
    const struct vs_backend *be;
    void *stream;
    int failed;
};

static void *ctx_alloc(void *c, size_t bytes)
{
    struct alloc_ctx *a = c;
    void *p = a->user ? a->user->alloc(a->user->ctx, bytes, a->stream)
                      : a->be->allocator.alloc(a->be->allocator.ctx, bytes);
    a->failed |= !p;
    return p;
}

static void ctx_free(void *c, void *p)
{
    struct alloc_ctx *a = c;
    if (a->user)
        a->user->free(a->user->ctx, p, a->stream);
    else
        a->be->allocator.free(a->be->allocator.ctx, p);
}

/* Where a decode runs and where its buffers are. */
struct where {
    bool gpu, lat_dev, out_dev;
};

/* n fp32 values at src (host memory) into args->out at element offset off, as out_dtype. */
static int deliver(const vramshim_vae_decode_args *a, const struct where *wh, size_t off,
                   const float *src, size_t n, struct vs_err *err)
{
    const size_t es = dtype_size(a->out_dtype);
    char *dst = (char *)a->out + off * es;
    if (!wh->out_dev) {
        vs_cast(dst, dtype_of(a->out_dtype), src, VS_DT_F32, n);
        return 0;
    }
    void *tmp = a->out_dtype == VRAMSHIM_VAE_F32 ? (void *)src : malloc(n * es);
    if (!tmp)
        return vs_err_set(err, "out of host memory for %zu decoded values", n);
    if (tmp != src)
        vs_cast(tmp, dtype_of(a->out_dtype), src, VS_DT_F32, n);
    int rc = vs_cuda_copy_sync(dst, tmp, n * es, a->stream);
    if (tmp != src)
        free(tmp);
    return rc ? vs_err_set(err, "copying the decoded output to the device failed: %s",
                           vs_cuda_last_error())
              : 0;
}

static int decode_kl(vramshim_vae *v, const vramshim_vae_decode_args *a, const struct shape *s,
                     const struct where *wh, const struct vs_plan *plan, float *lat,
                     struct vs_mem *mem, struct vs_err *err)
{
    const size_t in1 = (size_t)s->c * s->h * s->w, out1 = (size_t)3 * s->H * s->W;
    for (int b = 0; b < s->n; b++) {
        float *img; /* host memory on both backends: the output image is parked; on the GPU
                       the last pastes into it may still be running */
        if (vs_plan_run(plan, wh->gpu ? &v->dprog : &v->prog, lat + b * in1, &img, mem, NULL,
                        err))
            return -1;
        int rc = wh->gpu && vs_cuda_stream_sync(a->stream)
                     ? vs_err_set(err, "the decode's stream failed: %s", vs_cuda_last_error())
                     : deliver(a, wh, b * out1, img, out1, err);
        vs_mem_free(mem, img);
        if (rc)
            return -1;
    }
    return 0;
}

static int decode_wan(vramshim_vae *v, const vramshim_vae_decode_args *a, const struct shape *s,
                      const struct where *wh, float *lat, const struct vs_allocator *alloc,
                      size_t *peak, struct vs_err *err)
{
    struct vs_wan_opts o = wan_opts(a, alloc);
    o.backend = wh->gpu ? &vs_cuda_backend : NULL;
    /* the decoder writes fp32 into the backend's memory: straight into out when it is that */
    const bool direct = a->out_dtype == VRAMSHIM_VAE_F32 && wh->gpu == wh->out_dev;
    float *out = direct ? a->out
                 : wh->gpu ? alloc->alloc(alloc->ctx, s->out_numel * sizeof *out)
                           : malloc(s->out_numel * sizeof *out);
    if (!out)
        return vs_err_set(err, "out of %s memory for %zu decoded values",
                          wh->gpu ? "device" : "host", s->out_numel);
    struct vs_wan_stats st;
    float *host = NULL;
    int rc = vs_wan_decode(wh->gpu ? v->dwm : v->wm, lat, s->t, s->h, s->w, &o, out, &st, err);
    if (!rc && !direct && wh->gpu) { /* device fp32 -> host -> out */
        if (!(host = malloc(s->out_numel * sizeof *host)))
            rc = vs_err_set(err, "out of host memory for %zu decoded values", s->out_numel);
        else if (vs_cuda_copy_sync(host, out, s->out_numel * sizeof *host, a->stream))
            rc = vs_err_set(err, "copying the decoded video from the device failed: %s",
                            vs_cuda_last_error());
    }
    if (!rc && !direct)
        rc = deliver(a, wh, 0, host ? host : out, s->out_numel, err);
    free(host);
    if (!direct)
        wh->gpu ? alloc->free(alloc->ctx, out) : free(out);
    *peak = rc ? 0 : st.measured_peak;
    return rc;
}

/* cuDNN/cuBLAS workspace of a GPU decode: an eighth of the budget within [1, 256] MiB (all of
 * the cap without a budget); the plan gets the rest of the budget. */
static size_t gpu_workspace(size_t budget)
{
    const size_t lo = (size_t)1 << 20, hi = (size_t)256 << 20;
    if (!budget)
        return hi;
    return budget / 8 < lo ? lo : budget / 8 > hi ? hi : budget / 8;
}

/* The CUDA backend's handles on the decode's stream and the device copies of the weights,
 * made once per handle. */
static int gpu_prepare(vramshim_vae *v, void *stream, struct vs_err *err)
{
    char why[512];
    if (!vs_cuda_libs()->gpu_usable)
        return no_gpu("the decode", err), VRAMSHIM_VAE_ERR_NO_GPU;
    if (!v->cuda_ready) {
        if (vs_cuda_ctx_init(&v->cuda, stream, NULL, 0, why, sizeof why))
            return vs_err_set(err, "CUDA backend: %s", why), VRAMSHIM_VAE_ERR_NO_GPU;
        v->cuda_ready = true;
    }
    if (vs_cuda_ctx_bind(&v->cuda, stream, NULL, 0))
        return vs_err_set(err, "CUDA backend: cannot bind cuDNN/cuBLAS to the caller's stream"),
               VRAMSHIM_VAE_ERR_CUDA;
    if (!v->on_device) {
        int rc = v->wan ? vs_cuda_wan_to_device(&v->dwm, v->wm)
                        : vs_cuda_kl_to_device(&v->dkl, &v->kl);
        if (!rc && !v->wan && vs_program_build(&v->dprog, &v->dkl, err)) {
            vs_cuda_kl_free_device(&v->dkl);
            return VRAMSHIM_VAE_ERR_OOM;
        }
        if (rc)
            return vs_err_set(err, "out of device memory for the weights of %s (fp32 copies)",
                              v->label), VRAMSHIM_VAE_ERR_OOM;
        v->on_device = true;
    }
    return VRAMSHIM_VAE_OK;
}

/* Runs the decode on its backend: lat is the fp32, unscaled latents in host memory. */
static int run_decode(vramshim_vae *v, const vramshim_vae_decode_args *a, const struct shape *s,
                      const struct where *wh, const struct vs_plan *kl_plan, float *lat,
                      size_t *peak, struct vs_err *err)
{
    const struct vs_backend *be = wh->gpu ? &vs_cuda_backend : &vs_cpu_backend;
    struct alloc_ctx actx = {a->allocator, be, a->stream, 0};
    struct vs_allocator alloc = {ctx_alloc, ctx_free, &actx};
    struct vs_mem mem;
    char why[320];
    float *dlat = NULL;
    void *ws = NULL;
    int rc;
    if (wh->gpu && (rc = gpu_prepare(v, a->stream, err)))
        return rc;
    if (wh->gpu && vs_cuda_backend_begin(&v->cuda, why, sizeof why))
        return vs_err_set(err, "%s", why), VRAMSHIM_VAE_ERR_OOM;
    if (wh->gpu) {
        const size_t ws_bytes = gpu_workspace(a->budget);
        if (!(ws = alloc.alloc(alloc.ctx, ws_bytes)) ||
            !(dlat = alloc.alloc(alloc.ctx, s->in_numel * sizeof *dlat)))
            rc = vs_err_set(err, "out of device memory for the %s (%zu bytes)",
                            ws ? "latents" : "cuDNN/cuBLAS workspace",
                            ws ? s->in_numel * sizeof *dlat : ws_bytes);
        else if (vs_cuda_copy_sync(dlat, lat, s->in_numel * sizeof *dlat, a->stream))
            rc = vs_err_set(err, "copying the latents to the device failed: %s",
                            vs_cuda_last_error());
        else if (vs_cuda_ctx_bind(&v->cuda, a->stream, ws, ws_bytes))
            rc = vs_err_set(err, "CUDA backend: cannot hand cuDNN/cuBLAS their workspace");
    } else
        rc = 0;
    if (!rc && v->wan)
        rc = decode_wan(v, a, s, wh, wh->gpu ? dlat : lat, &alloc, peak, err);
    else if (!rc) {
        vs_mem_init_on(&mem, 0, be, &alloc);
        rc = decode_kl(v, a, s, wh, kl_plan, wh->gpu ? dlat : lat, &mem, err);
        *peak = rc ? 0 : mem.peak[VS_POOL_WORK];
    }
    if (dlat)
        alloc.free(alloc.ctx, dlat);
    if (ws)
        alloc.free(alloc.ctx, ws);
    if (wh->gpu) {
        char failed[320];
        if (vs_cuda_backend_end(failed, sizeof failed) && !rc)
            return vs_err_set(err, "%s", failed), VRAMSHIM_VAE_ERR_CUDA;
        vs_cuda_ctx_bind(&v->cuda, a->stream, NULL, 0);
    }
    if (rc < 0 && rc != -1) /* a status code already */
        return rc;
    if (rc)
        return actx.failed || strstr(err->msg, "out of") ? VRAMSHIM_VAE_ERR_OOM
               : wh->gpu                                 ? VRAMSHIM_VAE_ERR_CUDA
                                                         : VRAMSHIM_VAE_ERR_ARG;
    return VRAMSHIM_VAE_OK;
}

/* Which backend a decode runs on, from args->device and the pointers. */
static int choose(const vramshim_vae_decode_args *a, struct where *wh, struct vs_err *err)
{
    wh->lat_dev = is_device(a->latents);
    wh->out_dev = is_device(a->out);
    if ((int)a->device < VRAMSHIM_VAE_DEVICE_AUTO || a->device > VRAMSHIM_VAE_DEVICE_CUDA)
        return vs_err_set(err, "device %d is not a vramshim_vae_device", (int)a->device),
               VRAMSHIM_VAE_ERR_ARG;
    if (a->device == VRAMSHIM_VAE_DEVICE_CPU && (wh->lat_dev || wh->out_dev))
        return vs_err_set(err, "device CPU: %s is device memory",
                          wh->lat_dev ? "latents" : "out"), VRAMSHIM_VAE_ERR_ARG;
    wh->gpu = a->device == VRAMSHIM_VAE_DEVICE_CUDA || wh->lat_dev || wh->out_dev;
    if (wh->gpu && !vs_cuda_libs()->gpu_usable)
        return no_gpu(a->device == VRAMSHIM_VAE_DEVICE_CUDA ? "device CUDA"
                      : wh->lat_dev ? "latents (device memory)" : "out (device memory)", err),
               VRAMSHIM_VAE_ERR_NO_GPU;
    return VRAMSHIM_VAE_OK;
}

/* The caller's latents as fp32 in host memory, unscaled when args->scaled (they are small:
 * this is where both backends start). */
static float *host_latents(vramshim_vae *v, const vramshim_vae_decode_args *a,
                           const struct shape *s, const struct where *wh, struct vs_err *err)
{
    const size_t bytes = s->in_numel * dtype_size(a->latents_dtype);
    void *src = wh->lat_dev ? device_to_host(a->latents, bytes, a->stream, "the latents", err)
                            : (void *)a->latents;
    float *lat = src ? malloc(s->in_numel * sizeof *lat) : NULL;
    if (src && !lat)
        vs_err_set(err, "out of host memory for %zu latent values", s->in_numel);
    if (lat)
        vs_cast(lat, VS_DT_F32, src, dtype_of(a->latents_dtype), s->in_numel);
    if (src != a->latents)
        free(src);
    if (!lat || !a->scaled)
        return lat;
    if (v->wan ? vs_wan_unscale(v->wm, lat, s->t, s->h, s->w, err)
               : v->kl.arch == VS_ARCH_AUTO && !v->kl.scaling_from_config
                     ? vs_err_set(err, "scaled latents: %d latent channels fit %s, whose latent "
                                  "scaling differs: open with the arch, pass a config, or pass "
                                  "unscaled latents", s->c, s->c == 4 ? "SD 1.x/2.x and SDXL"
                                                                      : "SD3 and Flux.1")
                     : 0) {
        free(lat);
        return NULL;
    }
    if (!v->wan)
        for (size_t i = 0; i < s->in_numel; i++)
            lat[i] = lat[i] / v->kl.scaling_factor + v->kl.shift_factor;
    return lat;
}

EXPORT int vramshim_vae_decode(vramshim_vae *vae, const vramshim_vae_decode_args *args,
                               vramshim_vae_plan *plan, char *msg, size_t msg_len)
{
    struct vs_err err = {""};
    struct shape s;
    struct where wh;
    vramshim_vae_plan local;
    if (!plan)
        plan = &local;
    if (check_shape(vae, args, &s, "vramshim_vae_decode", &err))
        return report(VRAMSHIM_VAE_ERR_ARG, &err, msg, msg_len);
    if (!args->latents || !args->out || !valid_dtype(args->latents_dtype) ||
        !valid_dtype(args->out_dtype)) {
        vs_err_set(&err, "vramshim_vae_decode: %s", !args->latents ? "latents is NULL"
                   : !args->out ? "out is NULL" : "latents_dtype or out_dtype is not F32/F16/BF16");
        return report(VRAMSHIM_VAE_ERR_ARG, &err, msg, msg_len);
    }
    int rc = choose(args, &wh, &err);
    if (rc)
        return report(rc, &err, msg, msg_len);
    /* on the GPU the workspace comes out of the budget */
    vramshim_vae_decode_args pa = *args;
    if (wh.gpu && pa.budget)
        pa.budget = pa.budget > gpu_workspace(pa.budget) ? pa.budget - gpu_workspace(pa.budget)
                                                         : 1;
    struct vs_plan kl_plan = {0};
    rc = make_plan(vae, &pa, &s, plan, vae->wan ? NULL : &kl_plan, &err);
    if (rc)
        return report(rc, &err, msg, msg_len);
    float *lat = host_latents(vae, args, &s, &wh, &err);
    if (!lat)
        rc = strstr(err.msg, "memory") ? VRAMSHIM_VAE_ERR_OOM
             : wh.lat_dev ? VRAMSHIM_VAE_ERR_CUDA : VRAMSHIM_VAE_ERR_ARG;
    else
        rc = run_decode(vae, &pa, &s, &wh, &kl_plan, lat, &plan->measured_peak, &err);
    free(lat);
    vs_plan_free(&kl_plan);
    return report(rc, &err, msg, msg_len);
}

EXPORT int vramshim_vae_gpu_status(char *msg, size_t msg_len)
{
    struct vs_err err = {""};
    const struct vs_cuda_libs *l = vs_cuda_libs();
    if (!l->gpu_usable) {
        vs_err_set(&err, "no usable GPU: %s", l->why);
        return report(VRAMSHIM_VAE_ERR_NO_GPU, &err, msg, msg_len);
    }
    vs_err_set(&err, "%d GPU(s); %s; cuDNN %s; cuBLAS %s", l->devices,
               vs_cuda_linked_runtime.label, l->cudnn_from, l->cublas_from);
    return report(VRAMSHIM_VAE_OK, &err, msg, msg_len);
}
