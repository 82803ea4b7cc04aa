/* vramshim.decode on real torch and diffusers (the cached environments of tools/pyenv.sh):
 * random small-weight AutoencoderKL and AutoencoderKLWan (Wan 2.1, Wan 2.2) models decode
 * through the bundled decoder with a budget that forces several tiles, and equal the original
 * decode (tests/progs/py_decode_hooks.py); `vramshim run --decode exact` on a
 * StableDiffusionPipeline script (tests/progs/py_sd_pipeline.py: its 8x8 latents fit one tile at
 * the smallest budget). Each test says in one line when an environment is missing. */
#include <math.h>

#include "python_fixture.h"
#include "stages_fixture.h"

/* py_decode_hooks.py CASE with python/ on PYTHONPATH and VRAMSHIM_LOG=info; exit 0 expected. */
static struct vs_run run_case(const char *python, const char *version, const char *kase)
{
    const char *env[] = {"PYTHONPATH=" VS_SOURCE_DIR "/python", "VRAMSHIM_LOG=info",
                         "HF_HUB_OFFLINE=1", NULL};
    const char *argv[] = {"timeout", "-k", "10", "600", python,
                          VS_PYPROG("py_decode_hooks.py"), kase, NULL};
    struct vs_run r = vs_run(argv, 0, env);
    cr_assert_eq(r.status, 0, "Python %s, case %s: exit %d\n%s%s", version, kase, r.status,
                 r.out, r.raw_err);
    return r;
}

static int count(const char *text, const char *needle)
{
    int n = 0;
    for (const char *at = text; (at = strstr(at, needle)); at++)
        n++;
    return n;
}

/* Every decode went through the bundled decoder in several tiles, none fell back. */
static void expect_tiled_decodes(const struct vs_run *r, const char *target, int want,
                                 const char *version)
{
    char line[160];
    snprintf(line, sizeof line, "vramshim: decode diffusers %s (cpu ", target);
    cr_expect_eq(count(r->err, line), want, "Python %s: %d decodes of %s expected in\n%s",
                 version, want, target, r->err);
    cr_expect(!strstr(r->err, "runs unchanged"), "Python %s: a fallback in\n%s", version,
              r->err);
    cr_expect(!strstr(r->err, " 1x1 tiles") && !strstr(r->err, "one tile"),
              "Python %s: a decode in one tile in\n%s", version, r->err);
}

/* Case `kase`: n decodes of diffusers' `target`, each in tiles and within 1e-4. */
static void expect_exact_case(const char *python, const char *version, const char *kase,
                              const char *target, int n)
{
    struct vs_run r = run_case(python, version, kase);
    expect_tiled_decodes(&r, target, n, version);
    cr_expect_eq(count(r.out, "max-abs below 0.0001\n"), n, "Python %s:\n%s", version, r.out);
    vs_run_free(&r);
}

static void check_exact(const char *python, const char *version)
{
    /* three configurations, each decoded plainly, as a tuple and after enable_tiling */
    expect_exact_case(python, version, "exact", "AutoencoderKL.decode", 9);
}

Test(python_decode, autoencoderkl_configs_equal_the_original_in_tiles, .timeout = 1200)
{
    vs_each_pyenv(check_exact);
}

static void check_bf16(const char *python, const char *version)
{
    struct vs_run r = run_case(python, version, "bf16");
    expect_tiled_decodes(&r, "AutoencoderKL.decode", 1, version);
    cr_expect(strstr(r.err, "(cpu bfloat16 "), "Python %s:\n%s", version, r.err);
    cr_expect(strstr(r.out, "bf16 against fp32 compute max-abs below"), "%s", r.out);
    vs_run_free(&r);
}

Test(python_decode, bf16_weights_decode_in_fp32, .timeout = 1200)
{
    vs_each_pyenv(check_bf16);
}

static void check_wan(const char *python, const char *version)
{
    expect_exact_case(python, version, "wan", "AutoencoderKLWan.decode", 2);
}

Test(python_decode, wan21_equals_the_original_in_tiles, .timeout = 1200)
{
    vs_each_pyenv(check_wan);
}

static void check_wan22(const char *python, const char *version)
{
    expect_exact_case(python, version, "wan22", "AutoencoderKLWan.decode", 2);
}

/* Wan 2.2's AutoencoderKLWan (is_residual, patch_size 2: 12 channels unpatchified to 3 at 16x),
 * small widths, 3 latent frames in 12 tiles, also after enable_tiling(): max-abs <= 1e-4. */
Test(python_decode, wan22_equals_the_original_in_tiles, .timeout = 1200)
{
    vs_each_pyenv(check_wan22);
}

static void check_wan_repo(const char *python, const char *version)
{
    struct vs_run r = run_case(python, version, "wan_repo");
    cr_expect_eq(count(r.err, "vramshim: decode Wan2.1 WanVAE.decode (cpu float32 "), 2,
                 "Python %s:\n%s", version, r.err);
    cr_expect(strstr(r.err, "1x16x3x6x8 -> 1x3x9x48x64): wan21 causal, 3 latent frames -> 9, 8x6 "
                            "tiles"), "Python %s:\n%s", version, r.err);
    cr_expect_eq(count(r.out, "max-abs below 0.0001\n"), 2, "Python %s:\n%s", version, r.out);
    vs_run_free(&r);
}

/* The Wan2.1 repository on its stand-in (tests/progs/standins/wan/modules/vae.py). */
Test(python_decode, wan21_repository_wanvae_on_its_stand_in, .timeout = 1200)
{
    vs_each_pyenv(check_wan_repo);
}

static void check_comfy(const char *python, const char *version)
{
    struct vs_run r = run_case(python, version, "comfy");
    cr_expect_eq(count(r.err, "vramshim: decode ComfyUI VAE.decode (cpu float32 "), 3,
                 "Python %s:\n%s", version, r.err);
    cr_expect_eq(count(r.err, "vramshim: decode ComfyUI VAE.decode_tiled (cpu float32 "), 3,
                 "Python %s:\n%s", version, r.err);
    cr_expect(!strstr(r.err, "runs unchanged") && !strstr(r.err, "decode diffusers"),
              "Python %s: not substituted at the ComfyUI level:\n%s", version, r.err);
    cr_expect_eq(count(r.out, "max-abs below 0.0001\n"), 6, "Python %s:\n%s", version, r.out);
    vs_run_free(&r);
}

/* ComfyUI's VAE.decode and decode_tiled (LDM AutoencoderKL, WanVAE) on the stand-in
 * (tests/progs/standins/comfy/). */
Test(python_decode, comfyui_vae_decode_and_decode_tiled_on_the_stand_in, .timeout = 1200)
{
    vs_each_pyenv(check_comfy);
}

static void check_comfy_node(const char *python, const char *version)
{
    struct vs_run r = run_case(python, version, "comfy_node");
    cr_expect_str_eq(r.out, "VAE Decode (vramshim)\nnode max-abs below 0.0001\n", "Python %s",
                     version);
    cr_expect(strstr(r.err, "vramshim: decode ComfyUI VAE.decode (cpu float32 1x16x3x6x8"),
              "Python %s:\n%s", version, r.err);
    vs_run_free(&r);
}

/* integrations/comfyui's "VAE Decode (vramshim)" node on the ComfyUI stand-in. */
Test(python_decode, comfyui_node_decodes_through_the_bundled_decoder, .timeout = 1200)
{
    vs_each_pyenv(check_comfy_node);
}

static void check_direct_and_identity(const char *python, const char *version)
{
    struct vs_run r = run_case(python, version, "direct");
    cr_expect(strstr(r.out, "decode() direct max-abs below 0.0001\n"), "%s", r.out);
    cr_expect(strstr(r.out, "direct refused: Linear is not a module the decoder hooks"), "%s",
              r.out);
    vs_run_free(&r);
    r = run_case(python, version, "identity");
    cr_expect_str_eq(r.out, "install/remove restore the original methods\n");
    vs_run_free(&r);
}

Test(python_decode, direct_call_and_remove_restores_the_methods, .timeout = 1200)
{
    vs_each_pyenv(check_direct_and_identity);
}

static void check_fallback(const char *python, const char *version)
{
    struct vs_run r = run_case(python, version, "fallback");
    /* two calls, one line: once per reason */
    cr_expect_eq(count(r.err, "vramshim: decode: diffusers AutoencoderKL.decode runs unchanged: "
                              "AutoencoderKL with act_fn 'gelu' (the decoder has silu)\n"),
                 1, "Python %s:\n%s", version, r.err);
    cr_expect_eq(count(r.err, "runs unchanged: budget 1000 B is too small"), 1,
                 "Python %s:\n%s", version, r.err);
    cr_expect_eq(count(r.out, "falls back max-abs below 0\n"), 3, "%s", r.out);
    vs_run_free(&r);
}

Test(python_decode, unsupported_models_run_the_original_and_say_why_once, .timeout = 1200)
{
    vs_each_pyenv(check_fallback);
}

/* py_sd_pipeline.py into DIR/NAME.f32, plainly or under `vramshim run --decode exact` with the
 * README's policy and a trace (DIR/trace.jsonl). */
static struct vs_run run_pipeline(const char *python, const char *dir, int hooked)
{
    char model[300], out[300], trace[300];
    snprintf(model, sizeof model, "%s/model", dir);
    snprintf(out, sizeof out, "%s/%s.f32", dir, hooked ? "hooked" : "plain");
    snprintf(trace, sizeof trace, "%s/trace.jsonl", dir);
    const char *env[] = {"HF_HUB_OFFLINE=1", "VRAMSHIM_LOG=info", NULL};
    const char *plain[] = {"timeout", "-k", "10", "600", python, VS_PYPROG("py_sd_pipeline.py"),
                           model, out, NULL};
    const char *run[] = {"timeout", "-k", "10", "600", VS_CLI, "run", "--policy",
                         VS_PYPROG("py_sd_pipeline.ini"), "--trace", trace, "--decode", "exact",
                         "--decode-budget", "1MiB", "--", python,
                         VS_PYPROG("py_sd_pipeline.py"), model, out, NULL};
    return vs_run(hooked ? run : plain, 0, env);
}

static void check_pipeline(const char *python, const char *version)
{
    char dir[] = "/tmp/vs_decode_pipelineXXXXXX", path[300];
    cr_assert(mkdtemp(dir));
    float *img[2];
    for (int hooked = 0; hooked < 2; hooked++) {
        struct vs_run r = run_pipeline(python, dir, hooked);
        cr_assert_eq(r.status, 0, "Python %s: %s", version, r.raw_err);
        cr_expect_str_eq(r.out, "image 1x16x16x3\n");
        if (hooked) {
            cr_expect(strstr(r.err, "vramshim: decode diffusers AutoencoderKL.decode (cpu float32 "
                                    "1x4x8x8 -> 1x3x16x16): exact "),
                      "Python %s: no info line in\n%s", version, r.err);
        }
        vs_run_free(&r);
        snprintf(path, sizeof path, "%s/%s.f32", dir, hooked ? "hooked" : "plain");
        img[hooked] = (float *)vs_slurp(path);
        cr_assert(img[hooked], "no %s", path);
    }
    double err = 0;
    for (int i = 0; i < 16 * 16 * 3; i++)
        err = fmax(err, fabs((double)img[0][i] - img[1][i]));
    cr_expect_leq(err, 1e-4, "Python %s: max-abs %g", version, err);
    /* the substituted decode still opens the policy's decode stage */
    snprintf(path, sizeof path, "%s/trace.jsonl", dir);
    struct vs_trace t = vs_trace_load(path);
    char events[2048];
    vs_stage_events(&t, events, sizeof events);
    cr_expect(strstr(events, "begin:denoise:vramshim_stage_begin end:denoise:vramshim_stage_end "
                             "begin:decode:vramshim_stage_begin end:decode:vramshim_stage_end"),
              "Python %s: %s", version, events);
    vs_trace_free(&t);
    free(img[0]);
    free(img[1]);
    char rm[400];
    snprintf(rm, sizeof rm, "rm -rf '%s'", dir);
    cr_expect_eq(system(rm), 0);
}

Test(python_decode, stable_diffusion_pipeline_under_vramshim_run_decode, .timeout = 1800)
{
    vs_each_pyenv(check_pipeline);
}

static void check_comfy_settings(const char *python, const char *version)
{
    struct vs_run r = run_case(python, version, "comfy_settings");
    const char *file = "/default/comfy.settings.json";
    char want[512];
    /* on from the file at load: both stock nodes decode through the bundled decoder */
    snprintf(want, sizeof want, "%s, vramshim.SubstituteStockDecode = exact, budget 2MiB)\n",
             file);
    cr_expect(strstr(r.err, "vramshim: decode substitution on for the stock VAE Decode nodes (") &&
              strstr(r.err, want), "Python %s:\n%s", version, r.err);
    cr_expect_eq(count(r.err, "vramshim: decode ComfyUI VAE.decode (cpu float32 1x16x3x6x8"), 1,
                 "Python %s:\n%s", version, r.err);
    cr_expect_eq(count(r.err, "vramshim: decode ComfyUI VAE.decode_tiled (cpu float32 "), 1,
                 "Python %s:\n%s", version, r.err);
    cr_expect_eq(count(r.out, "max-abs below 0.0001\n"), 2, "Python %s:\n%s", version, r.out);
    /* off and each malformed file or field: one line naming the file and field, then the
     * original decode (two prompts each, one line) */
    static const char *const lines[] = {
        "vramshim: decode substitution off for the stock VAE Decode nodes (",
        "comfy.settings.json: vramshim.SubstituteStockDecode is \"exakt\", not one of off, exact, "
        "blend; the stock VAE Decode nodes decode unchanged\n",
        "comfy.settings.json: not JSON: Expecting property name enclosed in double quotes: "
        "line 1 column 44 (char 43); the stock VAE Decode nodes decode unchanged\n",
        "comfy.settings.json: a JSON list where ComfyUI writes an object; the stock VAE Decode "
        "nodes decode unchanged\n",
        "comfy.settings.json: vramshim.StockDecodeBudget: '2GB' is not a size (bytes, or a "
        "number with B, KiB, MiB, GiB or TiB, e.g. 2GiB); the stock VAE Decode nodes decode "
        "unchanged\n",
        "vramshim: vramshim.SubstituteStockDecode blend is not applied: VRAMSHIM_DECODE=exact "
        "(vramshim run --decode) takes precedence\n",
    };
    for (size_t i = 0; i < sizeof lines / sizeof *lines; i++)
        cr_expect_eq(count(r.err, lines[i]), 1, "Python %s: once: %s in\n%s", version, lines[i],
                     r.err);
    cr_expect_eq(count(r.out, "unchanged max-abs below 0\n"), 5, "Python %s:\n%s", version, r.out);
    vs_run_free(&r);
}

/* The stock VAE Decode nodes through the bundled decoder when ComfyUI's settings say so
 * (integrations/comfyui/web/vramshim.js, python/vramshim/comfyui.py), on the stand-in. */
Test(python_decode, comfyui_setting_substitutes_the_stock_vae_decode_nodes, .timeout = 1200)
{
    vs_each_pyenv(check_comfy_settings);
}
