/* `vramshim decode`: latents -> images (AutoencoderKL: SD 1.x/2.x, SDXL, SD3, Flux.1) or video
 * (Wan 2.1) with the C reference decoder on the CPU, or on the GPU through libvramshim_vae.so
 * (--device cuda|auto, decode_gpu.h).
 *
 * Output by extension: .png (images: one file, or NAME_<i>.png per batch item; video: numbered
 * frames NAME_<frame>.png), .y4m (video), .npy (raw float32 NCHW / NCTHW). Progress goes to
 * stderr; the last line states the plan, predicted and measured peak working memory and time.
 * Exit status: 0 success, 1 decode/file error, 2 usage error. */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/size.h"
#include "kernels/arch.h"
#include "kernels/array_io.h"
#include "kernels/checked.h"
#include "kernels/cpu/parallel.h"
#include "kernels/image_out.h"
#include "kernels/kl_decoder.h"
#include "kernels/kl_program.h"
#include "kernels/plan.h"
#include "kernels/safetensors.h"
#include "kernels/wan.h"
#include "policy/size.h"
#include "tools/cli/commands.h"
#include "tools/cli/decode_gpu.h"

#define WAN_FPS 16

struct decode_args {
    const char *vae, *latents, *out;
    const struct vs_arch_info *arch;
    enum vs_decode_mode mode;
    int tile_px; /* 0: auto */
    size_t budget;
    int scaled, threads, plan_only;
    int gpu; /* decode on the GPU through libvramshim_vae.so */
};

/* Largest latent height, width or frame count: the decoder's output sizes (8x per side) and
 * byte counts must stay far inside int and size_t. */
#define VS_LATENT_SIDE_MAX 65536

/* Largest --tile: a tile beyond the largest output side is the whole frame. */
#define VS_TILE_MAX (8 * VS_LATENT_SIDE_MAX)

/* A whole number from 1 to max, as typed (no sign, no trailing text). */
static bool parse_count(const char *s, int max, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || *end || errno || v < 1 || v > max || !isdigit((unsigned char)*s))
        return false;
    *out = (int)v;
    return true;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: vramshim decode --vae FILE --latents FILE -o OUT [options]\n"
            "\n"
            "Decodes latents with the VAE decoder in FILE (safetensors; diffusers or original key\n"
            "names). Latents: .safetensors (tensor 'latents' or the first) or .npy, NCHW (video:\n"
            "NCTHW). OUT: .png (images; video frames as OUT_0000.png...), .y4m (video), .npy (raw\n"
            "float32, values in [-1, 1] for comparisons).\n"
            "\n"
            "  --arch auto|sd|sdxl|sd3|flux|wan21|wan22\n"
            "                                       model family (auto: from the weights)\n"
            "  --mode exact|blend|monolithic        exact (default) equals the untiled decode;\n"
            "                                       blend uses tile-local statistics\n"
            "  --tile auto|PIXELS                   "
            "output pixels per tile side (auto: from --budget)\n"
            "  --budget SIZE                        working-memory budget, e.g. 512MiB, 2GiB\n"
            "  --device cpu|cuda|auto               "
            "cpu (default); auto: cuda when usable, else cpu\n"
            "  --scaled | --unscaled                latents as the diffusion model made them\n"
            "                                       (default) or as the VAE decoder takes them\n"
            "  --threads N                          worker threads (default: all CPUs)\n"
            "  --plan                               print the plan and its predicted memory, do\n"
            "                                       not decode (no -o needed)\n");
}

/* cuda needs libvramshim_vae.so and a usable GPU: without them --device cuda is refused with
 * the reason, auto says it in one line and decodes on the CPU. */
static int choose_device(const char *dev, int *gpu)
{
    char why[1024];
    *gpu = 0;
    if (!strcmp(dev, "cpu"))
        return 0;
    if (strcmp(dev, "cuda") && strcmp(dev, "auto")) {
        fprintf(stderr, "decode: --device '%s': expected cpu, cuda or auto\n", dev);
        return -1;
    }
    if (!vs_cli_gpu_usable(why, sizeof why)) {
        *gpu = 1;
        return 0;
    }
    if (!strcmp(dev, "cuda")) {
        fprintf(stderr, "decode: --device cuda: %s\n", why);
        return -1;
    }
    fprintf(stderr, "decode: --device auto: %s; decoding on the CPU\n", why);
    return 0;
}

static int parse_args(int argc, char **argv, struct decode_args *a)
{
    static const struct option opts[] = {
        {"vae", required_argument, 0, 'v'},   {"latents", required_argument, 0, 'l'},
        {"output", required_argument, 0, 'o'}, {"arch", required_argument, 0, 'a'},
        {"mode", required_argument, 0, 'm'},  {"tile", required_argument, 0, 't'},
        {"budget", required_argument, 0, 'b'}, {"device", required_argument, 0, 'd'},
        {"scaled", no_argument, 0, 's'},      {"unscaled", no_argument, 0, 'u'},
        {"threads", required_argument, 0, 'j'}, {"help", no_argument, 0, 'h'},
        {"plan", no_argument, 0, 'p'},
        {0, 0, 0, 0},
    };
    *a = (struct decode_args){.arch = vs_arch_by_name("auto"), .scaled = 1};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
        switch (c) {
        case 'v': a->vae = optarg; break;
        case 'l': a->latents = optarg; break;
        case 'o': a->out = optarg; break;
        case 's': a->scaled = 1; break;
        case 'u': a->scaled = 0; break;
        case 'p': a->plan_only = 1; break;
        case 'h': usage(stdout); return 1;
        case 'a':
            if (!(a->arch = vs_arch_by_name(optarg))) {
                fprintf(stderr, "decode: unknown --arch '%s' (auto, sd, sdxl, sd3, flux, wan21, "
                                "wan22)\n", optarg);
                return 2;
            }
            break;
        case 'm':
            if (!strcmp(optarg, "exact"))
                a->mode = VS_DECODE_EXACT;
            else if (!strcmp(optarg, "blend"))
                a->mode = VS_DECODE_BLEND;
            else if (!strcmp(optarg, "monolithic"))
                a->mode = VS_DECODE_MONOLITHIC;
            else {
                fprintf(stderr, "decode: unknown --mode '%s' (exact, blend, monolithic)\n", optarg);
                return 2;
            }
            break;
        case 't':
            if (strcmp(optarg, "auto") && !parse_count(optarg, VS_TILE_MAX, &a->tile_px)) {
                fprintf(stderr, "decode: --tile '%s' is neither 'auto' nor a pixel count from 1 "
                        "to %d\n", optarg, VS_TILE_MAX);
                return 2;
            }
            break;
        case 'b': {
            uint64_t budget;
            if (vs_policy_size_parse(optarg, &budget) != VS_SIZE_OK || budget == 0) {
                fprintf(stderr, "decode: --budget '%s' is not a size (e.g. 512MiB, 2GiB)\n",
                        optarg);
                return 2;
            }
            a->budget = (size_t)budget;
            break;
        }
        case 'd':
            if (choose_device(optarg, &a->gpu))
                return 2;
            break;
        case 'j':
            if (!parse_count(optarg, INT_MAX, &a->threads)) {
                fprintf(stderr, "decode: --threads '%s' is not a positive number\n", optarg);
                return 2;
            }
            break;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "decode: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (!a->vae || !a->latents || (!a->out && !a->plan_only)) {
        fprintf(stderr,
                "decode: --vae, --latents and -o are required (see vramshim decode --help)\n");
        return 2;
    }
    return 0;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

struct bar {
    const char *unit;
    long last;
};

static void progress(void *ctx, long done, long total)
{
    struct bar *b = ctx;
    if (!isatty(STDERR_FILENO))
        return; /* logs get the final line only */
    long width = 30, fill = total ? done * width / total : width;
    if (fill == b->last && done != total)
        return;
    b->last = fill;
    fprintf(stderr, "\rdecode [%.*s%*s] %ld/%ld %s", (int)fill,
            "##############################", (int)(width - fill), "", done, total, b->unit);
    if (done == total)
        fputc('\n', stderr);
    fflush(stderr);
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

/* NAME.png -> NAME_<i>.png (width digits). */
static void numbered(char *buf, size_t len, const char *path, int i, int digits)
{
    snprintf(buf, len, "%.*s_%0*d.png", (int)(strlen(path) - 4), path, digits, i);
}

static int write_images(const char *path, const float *imgs, int B, int H, int W,
                        struct vs_err *err)
{
    int64_t shape[4] = {B, 3, H, W};
    size_t plane = (size_t)H * W;
    if (ends_with(path, ".npy"))
        return vs_npy_write(path, imgs, 4, shape, err);
    if (!ends_with(path, ".png"))
        return vs_err_set(err, "%s: unknown output format for images (use .png or .npy)", path);
    for (int b = 0; b < B; b++) {
        char name[4096];
        if (B == 1)
            snprintf(name, sizeof name, "%s", path);
        else
            numbered(name, sizeof name, path, b, 1);
        if (vs_png_write(name, imgs + (size_t)b * 3 * plane, plane, H, W, err))
            return -1;
    }
    return 0;
}

static int latent_dims(const struct vs_array *l, const char *path, int video, int *B, int *C,
                       int *T, int *h, int *w, struct vs_err *err)
{
    int want = video ? 5 : 4, nd = l->ndim;
    if (nd != want && nd != want - 1)
        return vs_err_set(err, "%s: latents have %d dimensions; expected %s", path, nd,
                          video ? "NCTHW (or CTHW)" : "NCHW (or CHW)");
    const int64_t *s = l->shape + (nd == want);
    int64_t b = nd == want ? l->shape[0] : 1, t = video ? s[1] : 1;
    int64_t hh = s[video ? 2 : 1], ww = s[video ? 3 : 2];
    if (t < 1 || t > VS_LATENT_SIDE_MAX || hh < 1 || hh > VS_LATENT_SIDE_MAX || ww < 1 ||
        ww > VS_LATENT_SIDE_MAX) {
        char frames[48] = "";
        if (video)
            snprintf(frames, sizeof frames, "frames %" PRId64 ", ", t);
        return vs_err_set(err,
                          "%s: latent %sheight %" PRId64 " and width %" PRId64 ": each must be "
                          "between 1 and %d",
                          path, frames, hh, ww, VS_LATENT_SIDE_MAX);
    }
    if (b < 1)
        return vs_err_set(err, "%s: batch of 0 latents: nothing to decode", path);
    /* the readers bound every extent by VS_DIM_MAX, an int */
    *B = (int)b;
    *C = (int)s[0];
    *T = (int)t;
    *h = (int)hh;
    *w = (int)ww;
    return 0;
}

static void final_line(const char *plan, size_t predicted, size_t measured, size_t parked, double t,
                       int gpu)
{
    char a[32], b[32], c[32];
    fprintf(stderr,
            "decode: plan %s; peak working memory predicted %s, measured %s%s; parked/host %s; "
            "%.2f s\n",
            plan, vs_size_format(predicted, a, sizeof a), vs_size_format(measured, b, sizeof b),
            gpu ? " on the GPU" : "", vs_size_format(parked, c, sizeof c), t);
}

/* The decode of fp32, unscaled latents (host, ndim 4 or 5) into fp32 out (host) on the GPU,
 * with its final line. */
static int decode_on_gpu(const struct decode_args *a, const float *lat, int ndim,
                         const int64_t *shape, float *out, struct vs_err *err)
{
    vramshim_vae_decode_args d = {.latents = lat, .latents_dtype = VRAMSHIM_VAE_F32, .out = out,
                                  .out_dtype = VRAMSHIM_VAE_F32, .ndim = ndim,
                                  .mode = (vramshim_vae_mode)a->mode, .tile_px = a->tile_px,
                                  .budget = a->budget, .device = VRAMSHIM_VAE_DEVICE_CUDA};
    memcpy(d.shape, shape, (size_t)ndim * sizeof *shape);
    vramshim_vae_plan plan;
    double t;
    if (vs_cli_gpu_decode(a->vae, (vramshim_vae_arch)a->arch->arch, &d, &plan, &t, err))
        return -1;
    final_line(plan.description, plan.predicted_peak, plan.measured_peak, plan.predicted_parked,
               t, 1);
    return 0;
}

static int decode_kl(const struct decode_args *a, struct vs_array *lat, struct vs_err *err)
{
    struct vs_kl_decoder d;
    struct vs_program p = {0};
    struct vs_plan plan = {0};
    float *imgs = NULL;
    int B = 0, C = 0, T = 0, h = 0, w = 0, rc = -1;
    if (vs_kl_load(&d, a->vae, a->arch->arch, err))
        return -1;
    if (latent_dims(lat, a->latents, 0, &B, &C, &T, &h, &w, err))
        goto out;
    if (C != d.latent_channels) {
        vs_err_set(err, "%s: latents have %d channels but the decoder in %s takes %d", a->latents,
                   C, a->vae, d.latent_channels);
        goto out;
    }
    if (a->scaled) {
        if (d.arch == VS_ARCH_AUTO && !d.scaling_from_config) {
            vs_err_set(err, "%s: %d latent channels fit %s, whose latent scaling differs: pass "
                       "--arch, or --unscaled for latents already scaled for the decoder", a->vae,
                       C, C == 4 ? "SD 1.x/2.x and SDXL (--arch sd|sdxl)"
                                 : "SD3 and Flux.1 (--arch sd3|flux)");
            goto out;
        }
        /* The weights' own config wins over the family's figures; say so when they differ. */
        const struct vs_arch_info *fam = a->arch;
        if (fam->arch != VS_ARCH_AUTO && d.scaling_from_config &&
            (d.scaling_factor != fam->scaling_factor || d.shift_factor != fam->shift_factor))
            fprintf(stderr,
                    "decode: --arch %s scales latents with scaling_factor %g, shift_factor %g, "
                    "but the config in %s says %g, %g: using the file's\n",
                    fam->name, (double)fam->scaling_factor, (double)fam->shift_factor, a->vae,
                    (double)d.scaling_factor, (double)d.shift_factor);
        for (size_t i = 0; i < lat->numel; i++)
            lat->data[i] = lat->data[i] / d.scaling_factor + d.shift_factor;
    }
    if (vs_program_build(&p, &d, err))
        goto out;
    int tile = a->tile_px ? (a->tile_px + d.upscale - 1) / d.upscale : 0;
    if (vs_plan_make(&plan, &p, h, w, a->mode, tile, a->budget, err))
        goto out;
    char desc[256];
    vs_plan_describe(&plan, &p, desc, sizeof desc);
    if (a->plan_only) {
        char wk[32], pk[32];
        printf("plan %s; predicted peak working memory %s, parked/host %s (per image)\n", desc,
               vs_size_format(plan.predicted_work, wk, sizeof wk),
               vs_size_format(plan.predicted_park, pk, sizeof pk));
        rc = 0;
        goto out;
    }
    int H = h * d.upscale, W = w * d.upscale;
    size_t img = (size_t)3 * H * W, bytes;
    if (!vs_mul3_size(img, (size_t)B, sizeof *imgs, &bytes) || !(imgs = malloc(bytes))) {
        vs_err_set(err, "out of memory for %d decoded images", B);
        goto out;
    }
    if (a->gpu) {
        rc = decode_on_gpu(a, lat->data, 4, (int64_t[]){B, C, h, w}, imgs, err) ||
                     write_images(a->out, imgs, B, H, W, err)
                 ? -1
                 : 0;
        goto out;
    }
    struct vs_mem mem;
    vs_mem_init(&mem, 0);
    struct bar bar = {plan.mode == VS_DECODE_MONOLITHIC ? "steps" : "tile steps", -1};
    struct vs_progress prog = {progress, &bar};
    double t0 = now_s();
    for (int b = 0; b < B; b++) {
        float *out;
        bar.last = -1;
        if (vs_plan_run(&plan, &p, lat->data + (size_t)b * C * h * w, &out, &mem, &prog, err))
            goto out;
        memcpy(imgs + b * img, out, img * sizeof *out);
        vs_mem_free(&mem, out);
    }
    double t = now_s() - t0;
    if (write_images(a->out, imgs, B, H, W, err))
        goto out;
    final_line(desc, plan.predicted_work, mem.peak[VS_POOL_WORK], mem.peak[VS_POOL_PARK], t, 0);
    rc = 0;
out:
    free(imgs);
    vs_plan_free(&plan);
    vs_program_free(&p);
    vs_kl_free(&d);
    return rc;
}

static int write_video(const char *path, const float *v, int T, int H, int W, struct vs_err *err)
{
    int64_t shape[5] = {1, 3, T, H, W};
    size_t plane = (size_t)H * W;
    if (ends_with(path, ".npy"))
        return vs_npy_write(path, v, 5, shape, err);
    if (ends_with(path, ".y4m"))
        return vs_y4m_write(path, v, T, H, W, WAN_FPS, err);
    if (!ends_with(path, ".png"))
        return vs_err_set(err, "%s: unknown output format for video (use .y4m, .png or .npy)",
                          path);
    for (int t = 0; t < T; t++) {
        char name[4096];
        numbered(name, sizeof name, path, t, 4);
        if (vs_png_write(name, v + t * plane, (size_t)T * plane, H, W, err))
            return -1;
    }
    return 0;
}

/* Wan's causal 3-D convs have 5-D weights; the AutoencoderKL family has none. An unreadable
 * file answers no, and the KL loader then reports what is wrong with it. */
static int weights_have_3d_convs(const char *path)
{
    struct vs_st_file f;
    struct vs_err ignored;
    if (vs_st_open(&f, path, &ignored))
        return 0;
    int found = 0;
    for (size_t i = 0; i < f.count && !found; i++)
        found = f.tensors[i].ndim == 5;
    vs_st_close(&f);
    return found;
}

static int decode_wan(const struct decode_args *a, struct vs_array *lat, struct vs_err *err)
{
    struct vs_wan_model *m;
    int B = 0, C = 0, T = 0, h = 0, w = 0, rc = -1;
    float *out = NULL;
    if (a->mode == VS_DECODE_BLEND)
        return vs_err_set(err, "--mode blend: Wan has no GroupNorm, so every tiling is exact "
                          "and there is nothing to blend; use --mode exact");
    if (vs_wan_load(a->vae, &m, err))
        return -1;
    const int want = a->arch->arch == VS_ARCH_WAN22 ? 22 : a->arch->arch == VS_ARCH_WAN21 ? 21 : 0;
    if (vs_wan_check_version(m, want, a->vae, err))
        goto out;
    if (latent_dims(lat, a->latents, 1, &B, &C, &T, &h, &w, err))
        goto out;
    if (B != 1) {
        vs_err_set(err, "%s: %d videos in one batch; decode one video at a time", a->latents, B);
        goto out;
    }
    if (C != vs_wan_latent_channels(m)) {
        vs_err_set(err, "%s: latents have %d channels but the decoder in %s takes %d", a->latents,
                   C, a->vae, vs_wan_latent_channels(m));
        goto out;
    }
    if (a->scaled && vs_wan_unscale(m, lat->data, T, h, w, err))
        goto out;
    struct bar bar = {"steps", -1};
    /* monolithic: one tile over the whole frame (no tile, no budget) */
    int mono = a->mode == VS_DECODE_MONOLITHIC;
    struct vs_wan_opts opts = {
        mono ? 0 : a->tile_px, mono ? 0 : a->budget, progress, &bar, NULL, NULL};
    int S = vs_wan_spatial_scale(m), T2 = vs_wan_out_frames(m, T);
    struct vs_wan_stats st;
    char desc[256];
    if (a->plan_only) {
        if (vs_wan_plan(m, T, h, w, &opts, &st.plan, err))
            goto out;
        vs_wan_plan_describe(&st.plan, m, T, desc, sizeof desc);
        char wk[32];
        printf("plan %s; predicted peak working memory %s\n", desc,
               vs_size_format(st.plan.predicted_peak, wk, sizeof wk));
        rc = 0;
        goto out;
    }
    size_t frame = (size_t)3 * h * S * w * S, bytes;
    if (!vs_mul3_size(frame, (size_t)T2, sizeof *out, &bytes) || !(out = malloc(bytes))) {
        vs_err_set(err, "out of memory for %d decoded frames", T2);
        goto out;
    }
    if (a->gpu) {
        rc = decode_on_gpu(a, lat->data, 5, (int64_t[]){1, C, T, h, w}, out, err) ||
                     write_video(a->out, out, T2, h * S, w * S, err)
                 ? -1
                 : 0;
        goto out;
    }
    double t0 = now_s();
    if (vs_wan_decode(m, lat->data, T, h, w, &opts, out, &st, err))
        goto out;
    double t = now_s() - t0;
    if (write_video(a->out, out, T2, h * S, w * S, err))
        goto out;
    vs_wan_plan_describe(&st.plan, m, T, desc, sizeof desc);
    final_line(desc, st.plan.predicted_peak, st.measured_peak, 0, t, 0);
    rc = 0;
out:
    free(out);
    vs_wan_free(m);
    return rc;
}

int vs_cmd_decode(int argc, char **argv)
{
    struct decode_args a;
    int rc = parse_args(argc, argv, &a);
    if (rc)
        return rc == 1 ? 0 : rc;
    if (a.threads)
        vs_set_threads(a.threads);
    struct vs_err err;
    struct vs_array lat;
    if (vs_array_load(a.latents, &lat, &err)) {
        fprintf(stderr, "decode: %s\n", err.msg);
        return 1;
    }
    int video = a.arch->arch == VS_ARCH_WAN21 || a.arch->arch == VS_ARCH_WAN22 ||
                (a.arch->arch == VS_ARCH_AUTO && (lat.ndim == 5 || weights_have_3d_convs(a.vae)));
    rc = video ? decode_wan(&a, &lat, &err) : decode_kl(&a, &lat, &err);
    if (rc)
        fprintf(stderr, "decode: %s\n", err.msg);
    vs_array_free(&lat);
    return rc ? 1 : 0;
}
