/* AutoencoderKL decoder against diffusers' own output (tests/golden/, tools/golden/FORMAT.md):
 * max-abs error <= 1e-4 in fp32 for diffusers and original key names, BF16 weights without
 * post_quant_conv (Flux-style), and the full SDXL widths with generator-v1 weights. Each case
 * also decodes in exact tiled mode, which must give the monolithic image bit for bit. Figures
 * are printed. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kernels/kl_decoder.h"
#include "kernels/kl_program.h"
#include "kernels/plan.h"
#include "kernels/safetensors.h"
#include "tests/golden_weights.h"

#define GOLDEN VS_SOURCE_DIR "/tests/golden/"

struct io_case {
    struct vs_st_file io;
    float *latents, *output;
    int c, h, w, H, W;
};

static float *read_tensor(struct vs_st_file *f, const char *name)
{
    const struct vs_st_tensor *t = vs_st_find(f, name);
    cr_assert(t, "%s: no tensor '%s'", f->path, name);
    float *buf = malloc(t->numel * sizeof *buf);
    struct vs_err err;
    cr_assert_eq(vs_st_read_f32(f, t, buf, &err), 0, "%s", err.msg);
    return buf;
}

static void io_open(struct io_case *k, const char *name)
{
    struct vs_err err;
    char path[512];
    snprintf(path, sizeof path, GOLDEN "%s.io.safetensors", name);
    cr_assert_eq(vs_st_open(&k->io, path, &err), 0, "%s", err.msg);
    const struct vs_st_tensor *l = vs_st_find(&k->io, "latents"), *o = vs_st_find(&k->io, "output");
    cr_assert(l && o && l->ndim == 4 && o->ndim == 4);
    k->c = (int)l->shape[1], k->h = (int)l->shape[2], k->w = (int)l->shape[3];
    k->H = (int)o->shape[2], k->W = (int)o->shape[3];
    k->latents = read_tensor(&k->io, "latents");
    k->output = read_tensor(&k->io, "output");
}

static void io_close(struct io_case *k)
{
    free(k->latents);
    free(k->output);
    vs_st_close(&k->io);
}

/* The decoded image (caller frees). */
static float *decode_image(const struct vs_program *p, const struct io_case *k,
                           enum vs_decode_mode mode, int tile)
{
    struct vs_plan plan;
    struct vs_err err;
    struct vs_mem mem;
    vs_mem_init(&mem, 0);
    cr_assert_eq(vs_plan_make(&plan, p, k->h, k->w, mode, tile, 0, &err), 0, "%s", err.msg);
    float *out, *img = malloc((size_t)3 * k->H * k->W * sizeof *img);
    cr_assert_eq(vs_plan_run(&plan, p, k->latents, &out, &mem, NULL, &err), 0, "%s", err.msg);
    memcpy(img, out, (size_t)3 * k->H * k->W * sizeof *img);
    vs_mem_free(&mem, out);
    vs_plan_free(&plan);
    return img;
}

static double max_abs(const struct io_case *k, const float *img)
{
    double m = 0;
    for (size_t i = 0; i < (size_t)3 * k->H * k->W; i++)
        m = fmax(m, fabs((double)img[i] - k->output[i]));
    return m;
}

/* tile: exact-mode tile in latent px, which must give the monolithic image bit for bit. */
static void check_case(const char *name, const char *vae_path, int tile)
{
    struct io_case k;
    io_open(&k, name);
    struct vs_kl_decoder d;
    struct vs_err err;
    cr_assert_eq(vs_kl_load(&d, vae_path, VS_ARCH_AUTO, &err), 0, "%s", err.msg);
    cr_assert_eq(d.latent_channels, k.c);
    cr_assert_eq(k.H, k.h * d.upscale);
    struct vs_program p;
    cr_assert_eq(vs_program_build(&p, &d, &err), 0, "%s", err.msg);
    float *mono = decode_image(&p, &k, VS_DECODE_MONOLITHIC, 0);
    float *tiled = decode_image(&p, &k, VS_DECODE_EXACT, tile);
    size_t differing = 0;
    for (size_t i = 0; i < (size_t)3 * k.H * k.W; i++)
        differing += memcmp(&mono[i], &tiled[i], sizeof *mono) != 0;
    printf("golden %-18s (%s keys, %dx%d -> %dx%d): max-abs vs diffusers %.3g monolithic, "
           "exact tiled (%d latent px tiles): %zu values differ from monolithic\n", name,
           d.key_style, k.w, k.h, k.W, k.H, max_abs(&k, mono), tile, differing);
    cr_assert_leq(max_abs(&k, mono), 1e-4, "%s: monolithic max-abs %g", name, max_abs(&k, mono));
    cr_assert_eq(differing, 0, "%s: exact tiled differs from monolithic", name);
    free(mono);
    free(tiled);
    vs_program_free(&p);
    vs_kl_free(&d);
    io_close(&k);
}

Test(kl_golden, sd_small_diffusers_keys)
{
    check_case("sd_small", GOLDEN "sd_small.vae.safetensors", 3);
}

Test(kl_golden, sd_small_original_keys)
{
    check_case("sd_small_original", GOLDEN "sd_small_original.vae.safetensors", 3);
}

Test(kl_golden, flux_small_bf16_no_post_quant_conv)
{
    check_case("flux_small", GOLDEN "flux_small.vae.safetensors", 3);
}

Test(kl_golden, generator_matches_stored_small_weights)
{
    /* the small cases' weight files are generator-v1 values: check our generator bit for bit */
    struct vs_st_file f;
    struct vs_err err;
    cr_assert_eq(vs_st_open(&f, GOLDEN "sd_small.vae.safetensors", &err), 0, "%s", err.msg);
    for (size_t i = 0; i < f.count; i++) {
        const struct vs_st_tensor *t = &f.tensors[i];
        float *stored = read_tensor(&f, t->name), *gen = malloc(t->numel * sizeof *gen);
        gw_generate(t->name, t->ndim, t->shape, gen);
        for (size_t j = 0; j < t->numel; j++)
            cr_assert_eq(stored[j], gen[j], "%s[%zu]: stored %.9g generated %.9g", t->name, j,
                         stored[j], gen[j]);
        free(stored);
        free(gen);
    }
    vs_st_close(&f);
}

Test(kl_golden, sdxl_full_widths_generated_weights)
{
    struct vs_st_file io;
    struct vs_err err;
    cr_assert_eq(vs_st_open(&io, GOLDEN "sdxl_full.io.safetensors", &err), 0, "%s", err.msg);
    const char *manifest = vs_st_meta(&io, "weights_manifest"), *config = vs_st_meta(&io, "config");
    cr_assert(manifest && config, "sdxl_full: metadata lacks weights_manifest or config");
    char path[] = "/tmp/vs_sdxl_full_XXXXXX", msg[256];
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    close(fd);
    cr_assert_eq(gw_write_safetensors(path, manifest, config, msg, sizeof msg), 0, "%s", msg);
    vs_st_close(&io);
    check_case("sdxl_full", path, 3);
    unlink(path);
}
