/* libvramshim_vae.so: the public C API (include/vramshim_vae.h) over the decoder in kernels/.
 * Host pointers run on the CPU backend; device pointers are refused until a CUDA backend exists
 * (the runtime is only looked for, vae/cuda_libs.c). */
#include "vramshim_vae.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/backend.h"
#include "kernels/cpu/cast.h"
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

/* The refusal for device memory: why no GPU is usable, or that no CUDA backend is built. */
static int no_gpu(const char *what, struct vs_err *err)
{
    const struct vs_cuda_libs *l = vs_cuda_libs();
    if (!l->gpu_usable)
        return vs_err_set(err, "%s is device memory but no GPU is usable: %s", what, l->why);
    return vs_err_set(err, "%s is device memory but this build of libvramshim_vae has no CUDA "
                           "backend yet (pass host memory to decode on the CPU)", what);
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
    int rc = VRAMSHIM_VAE_OK;
    for (size_t i = 0; i < n && !rc; i++) {
        const vramshim_vae_tensor *t = &tensors[i];
        char what[300];
        snprintf(what, sizeof what, "tensor '%s'", t->name ? t->name : "(unnamed)");
        if (!valid_dtype(t->dtype))
            rc = vs_err_set(&err, "%s: %s has dtype %d, not a vramshim_vae_dtype (F32, F16, BF16)",
                            label, what, (int)t->dtype) ? VRAMSHIM_VAE_ERR_WEIGHTS : 0;
        else if (is_device(t->data))
            rc = no_gpu(what, &err) ? VRAMSHIM_VAE_ERR_NO_GPU : 0;
        ts[i] = (struct vs_st_mem_tensor){t->name, t->data, dtype_of(t->dtype), t->ndim, t->shape};
    }
    struct vs_st_file f;
    if (!rc && vs_st_from_memory(&f, label, ts, n, config_json, &err))
        rc = VRAMSHIM_VAE_ERR_WEIGHTS;
    free(ts);
    if (rc)
        return report(rc, &err, msg, msg_len);
    struct vs_weights w;
    if (vs_weights_adopt(&w, &f, &err))
        return report(VRAMSHIM_VAE_ERR_OOM, &err, msg, msg_len);
    return open_weights(&w, label, arch, vae, msg, msg_len);
}

EXPORT void vramshim_vae_close(vramshim_vae *vae)
{
    if (!vae)
        return;
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
                           vs_bytes_str(p.predicted_peak, need, sizeof need), p.predicted_peak);
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
    if (vs_plan_make(&p, &v->prog, s->h, s->w, (enum vs_mode)a->mode, tile, a->budget, err)) {
        if (!a->budget || tile)
            return VRAMSHIM_VAE_ERR_ARG;
        struct vs_plan smallest;
        struct vs_err ignored;
        enum vs_mode m = a->mode == VRAMSHIM_VAE_MONOLITHIC ? VS_MODE_EXACT : (enum vs_mode)a->mode;
        if (!vs_plan_make(&smallest, &v->prog, s->h, s->w, m, 1, 0, &ignored)) {
            size_t len = strlen(err->msg);
            snprintf(err->msg + len, sizeof err->msg - len,
                     "; the smallest budget that works is %s (%zu bytes, %s mode, 1 latent px "
                     "tiles)", vs_bytes_str(smallest.predicted_work, need, sizeof need),
                     smallest.predicted_work, vs_mode_name(m));
            vs_plan_free(&smallest);
        }
        return VRAMSHIM_VAE_ERR_BUDGET;
    }
    int tiled = p.mode != VS_MODE_MONOLITHIC;
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

/* Working memory from the caller's allocator (or the CPU backend's), with failures noted so
 * that an out-of-memory decode reports VRAMSHIM_VAE_ERR_OOM. */
struct alloc_ctx {
    const vramshim_vae_allocator *user;
    void *stream;
    int failed;
};

static void *ctx_alloc(void *c, size_t bytes)
{
    struct alloc_ctx *a = c;
    void *p = a->user ? a->user->alloc(a->user->ctx, bytes, a->stream)
                      : vs_cpu_backend.allocator.alloc(NULL, bytes);
    a->failed |= !p;
    return p;
}

static void ctx_free(void *c, void *p)
{
    struct alloc_ctx *a = c;
    if (a->user)
        a->user->free(a->user->ctx, p, a->stream);
    else
        vs_cpu_backend.allocator.free(NULL, p);
}

static int decode_kl(vramshim_vae *v, const vramshim_vae_decode_args *a, const struct shape *s,
                     const struct vs_plan *plan, float *lat, struct vs_mem *mem, struct vs_err *err)
{
    const size_t in1 = (size_t)s->c * s->h * s->w, out1 = (size_t)3 * s->H * s->W;
    if (a->scaled) {
        if (v->kl.arch == VS_ARCH_AUTO && !v->kl.scaling_from_config)
            return vs_err_set(err, "scaled latents: %d latent channels fit %s, whose latent "
                              "scaling differs: open with the arch, pass a config, or pass "
                              "unscaled latents", s->c, s->c == 4 ? "SD 1.x/2.x and SDXL"
                                                                  : "SD3 and Flux.1");
        for (size_t i = 0; i < s->in_numel; i++)
            lat[i] = lat[i] / v->kl.scaling_factor + v->kl.shift_factor;
    }
    for (int b = 0; b < s->n; b++) {
        float *img;
        if (vs_plan_run(plan, &v->prog, lat + b * in1, &img, mem, NULL, err))
            return -1;
        vs_cast((char *)a->out + b * out1 * dtype_size(a->out_dtype), dtype_of(a->out_dtype), img,
                VS_DT_F32, out1);
        vs_mem_free(mem, img);
    }
    return 0;
}

static int decode_wan(vramshim_vae *v, const vramshim_vae_decode_args *a, const struct shape *s,
                      float *lat, const struct vs_allocator *alloc, size_t *peak,
                      struct vs_err *err)
{
    if (a->scaled && vs_wan_unscale(v->wm, lat, s->t, s->h, s->w, err))
        return -1;
    struct vs_wan_opts o = wan_opts(a, alloc);
    float *out = a->out_dtype == VRAMSHIM_VAE_F32 ? a->out : malloc(s->out_numel * sizeof *out);
    if (!out)
        return vs_err_set(err, "out of host memory for %zu decoded values", s->out_numel);
    struct vs_wan_stats st;
    int rc = vs_wan_decode(v->wm, lat, s->t, s->h, s->w, &o, out, &st, err);
    if (!rc && out != a->out)
        vs_cast(a->out, dtype_of(a->out_dtype), out, VS_DT_F32, s->out_numel);
    if (out != a->out)
        free(out);
    *peak = rc ? 0 : st.measured_peak;
    return rc;
}

EXPORT int vramshim_vae_decode(vramshim_vae *vae, const vramshim_vae_decode_args *args,
                               vramshim_vae_plan *plan, char *msg, size_t msg_len)
{
    struct vs_err err = {""};
    struct shape s;
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
    if (is_device(args->latents) || is_device(args->out)) {
        no_gpu(is_device(args->latents) ? "latents" : "out", &err);
        return report(VRAMSHIM_VAE_ERR_NO_GPU, &err, msg, msg_len);
    }
    struct vs_plan kl_plan = {0};
    int rc = make_plan(vae, args, &s, plan, vae->wan ? NULL : &kl_plan, &err);
    if (rc)
        return report(rc, &err, msg, msg_len);
    float *lat = malloc(s.in_numel * sizeof *lat);
    if (!lat) {
        vs_plan_free(&kl_plan);
        vs_err_set(&err, "out of host memory for %zu latent values", s.in_numel);
        return report(VRAMSHIM_VAE_ERR_OOM, &err, msg, msg_len);
    }
    vs_cast(lat, VS_DT_F32, args->latents, dtype_of(args->latents_dtype), s.in_numel);
    struct alloc_ctx actx = {args->allocator, args->stream, 0};
    struct vs_allocator alloc = {ctx_alloc, ctx_free, &actx};
    if (vae->wan)
        rc = decode_wan(vae, args, &s, lat, &alloc, &plan->measured_peak, &err);
    else {
        struct vs_mem mem;
        vs_mem_init_on(&mem, 0, &vs_cpu_backend, &alloc);
        rc = decode_kl(vae, args, &s, &kl_plan, lat, &mem, &err);
        plan->measured_peak = rc ? 0 : mem.peak[VS_POOL_WORK];
    }
    free(lat);
    vs_plan_free(&kl_plan);
    if (rc)
        return report(actx.failed ? VRAMSHIM_VAE_ERR_OOM : VRAMSHIM_VAE_ERR_ARG, &err, msg,
                      msg_len);
    return VRAMSHIM_VAE_OK;
}

EXPORT int vramshim_vae_gpu_status(char *msg, size_t msg_len)
{
    struct vs_err err = {""};
    const struct vs_cuda_libs *l = vs_cuda_libs();
    if (!l->gpu_usable)
        vs_err_set(&err, "no usable GPU: %s", l->why);
    else
        vs_err_set(&err, "%d GPU(s), CUDA runtime %s, cuDNN %s, cuBLAS %s; but this build has no "
                   "CUDA backend yet", l->devices, l->cudart_from, l->cudnn_from, l->cublas_from);
    return report(VRAMSHIM_VAE_ERR_NO_GPU, &err, msg, msg_len);
}
