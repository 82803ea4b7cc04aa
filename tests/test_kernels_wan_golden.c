/* Wan 2.1 and 2.2 decoders against diffusers' own AutoencoderKLWan.decode (tests/golden/,
 * tools/golden/FORMAT.md): max-abs error <= 1e-4 in fp32 for diffusers and original (F16) key
 * names, decoded in one tile and in several, and for the full Wan 2.1 widths with generator-v1
 * weights. Figures are printed. */
#include <math.h>
#include <stdio.h>

#include "kernels/safetensors.h"
#include "tests/wan_fixture.h"

#define GOLDEN VS_SOURCE_DIR "/tests/golden/"

static float *read_tensor(struct vs_st_file *f, const char *name, const struct vs_st_tensor **t)
{
    *t = vs_st_find(f, name);
    cr_assert(*t, "%s: no tensor '%s'", f->path, name);
    float *buf = malloc((*t)->numel * sizeof *buf);
    struct vs_err err;
    cr_assert_eq(vs_st_read_f32(f, *t, buf, &err), 0, "%s", err.msg);
    return buf;
}

/* The case's weights file, or generated weights written to a temporary file (*temp set). */
static const char *weights_path(struct vs_st_file *io, char *buf, size_t len, bool *temp)
{
    const char *weights = vs_st_meta(io, "weights");
    cr_assert(weights, "%s: no 'weights' metadata", io->path);
    *temp = false;
    if (!strncmp(weights, "file:", 5)) {
        snprintf(buf, len, GOLDEN "%s", weights + 5);
        return buf;
    }
    cr_assert_str_eq(weights, "generator:v1");
    const char *manifest = vs_st_meta(io, "weights_manifest");
    cr_assert(manifest, "%s: generator case without weights_manifest", io->path);
    snprintf(buf, len, "/tmp/vs_wan_golden_%d.safetensors", (int)getpid());
    char msg[1024];
    cr_assert_eq(gw_write_safetensors(buf, manifest, "{}", msg, sizeof msg), 0, "%s", msg);
    *temp = true;
    return buf;
}

static void golden(const char *name, const int *tiles, int n_tiles)
{
    char path[512];
    struct vs_err err = {{0}};
    struct vs_st_file io;
    snprintf(path, sizeof path, GOLDEN "%s.io.safetensors", name);
    cr_assert_eq(vs_st_open(&io, path, &err), 0, "%s", err.msg);
    const struct vs_st_tensor *lt, *ot;
    float *latents = read_tensor(&io, "latents", &lt), *want = read_tensor(&io, "output", &ot);
    cr_assert_eq(lt->ndim, 5);
    const int T = (int)lt->shape[2], h = (int)lt->shape[3], w = (int)lt->shape[4];

    bool temp;
    char wpath[512];
    struct vs_wan_model *m;
    weights_path(&io, wpath, sizeof wpath, &temp);
    int rc = vs_wan_load(wpath, &m, &err);
    if (temp)
        unlink(wpath);
    cr_assert_eq(rc, 0, "%s", err.msg);
    cr_assert_eq(vs_wan_latent_channels(m), (int)lt->shape[1]);
    cr_assert_eq(vs_wan_out_frames(m, T), (int)ot->shape[2]);

    float *got = malloc(ot->numel * sizeof *got);
    for (int i = 0; i < n_tiles; i++) {
        struct vs_wan_opts opts = {.tile = tiles[i]};
        struct vs_wan_stats st;
        cr_assert_eq(vs_wan_decode(m, latents, T, h, w, &opts, got, &st, &err), 0, "%s", err.msg);
        double worst = 0;
        for (size_t k = 0; k < ot->numel; k++)
            worst = fmax(worst, fabs((double)got[k] - want[k]));
        printf("golden %s (diffusers %s, torch %s): %dx%d tiles of %dx%d px: max-abs %.3g\n",
               name, vs_st_meta(&io, "diffusers_version"), vs_st_meta(&io, "torch_version"),
               st.plan.tiles_y, st.plan.tiles_x, st.plan.tile_h, st.plan.tile_w, worst);
        cr_expect_leq(worst, 1e-4, "%s, tile %d: max-abs %g vs diffusers", name, tiles[i], worst);
    }
    free(got);
    free(latents);
    free(want);
    vs_wan_free(m);
    vs_st_close(&io);
}

Test(wan_golden, small_diffusers_names)
{
    const int tiles[] = {0, 16, 20};
    golden("wan_small", tiles, 3);
}

Test(wan_golden, small_original_names_f16)
{
    const int tiles[] = {0, 24};
    golden("wan_small_original", tiles, 2);
}

/* One tile only: at 4x4 latents every tile's halo spans the whole frame, so tiles would cost a
 * full decode each; tiled == untiled is covered bit for bit by test_kernels_wan_decode. */
Test(wan_golden, full_width_generator_weights)
{
    const int tiles[] = {0};
    golden("wan_full", tiles, 1);
}

/* Wan 2.2 (residual up blocks with DupUp3D shortcuts, patch 2): a narrow decoder in diffusers
 * and original names, in one tile and in tiles cut inside a patch and a shortcut's 2x2 cell. */
Test(wan22_golden, small_diffusers_names)
{
    const int tiles[] = {0, 16, 24, 17};
    golden("wan22_small", tiles, 4);
}

Test(wan22_golden, small_original_names_f16)
{
    const int tiles[] = {0, 21};
    golden("wan22_small_original", tiles, 2);
}

/* The real widths (z_dim 48, decoder dims [1024, 1024, 1024, 512, 256], attention over 1024
 * channels) at 1x2 latent pixels, one tile (tiles: test_kernels_wan22_decode). */
Test(wan22_golden, full_width_generator_weights)
{
    const int tiles[] = {0};
    golden("wan22_full", tiles, 1);
}
