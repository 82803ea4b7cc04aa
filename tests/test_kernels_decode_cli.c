/* `vramshim decode` end to end on the golden files: .npy output equals diffusers' decode, PNG
 * output is a readable image of the right size, the final line reports plan, memory and time,
 * and user errors (wrong latent channels, other devices, tiny budgets, bad options) are precise. */
#include <criterion/criterion.h>
#include <dlfcn.h>
#include <math.h>
#include <spng.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kernels/array_io.h"
#include "kernels/safetensors.h"
#include "tests/golden_weights.h"

#define CLI VS_BUILD_DIR "/vramshim decode"
#define GOLDEN VS_SOURCE_DIR "/tests/golden/"

/* Runs the CLI with args; returns exit status, output (stdout+stderr) in buf. */
static int run(const char *args, char *buf, size_t len)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s %s 2>&1", CLI, args);
    FILE *p = popen(cmd, "r");
    cr_assert(p, "cannot run %s", cmd);
    size_t n = fread(buf, 1, len - 1, p);
    buf[n] = 0;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

Test(decode_cli, npy_output_equals_diffusers)
{
    char out[] = "/tmp/vs_cli_XXXXXX.npy", buf[8192];
    close(mkstemps(out, 4));
    char args[1024];
    snprintf(args, sizeof args, "--vae " GOLDEN "sd_small.vae.safetensors --latents " GOLDEN
             "sd_small.io.safetensors --unscaled --tile 8 -o %s", out);
    cr_assert_eq(run(args, buf, sizeof buf), 0, "%s", buf);
    cr_assert(strstr(buf, "decode: plan exact 3x2 tiles of 8 px, halo 14 px"), "%s", buf);
    cr_assert(strstr(buf, "peak working memory predicted"), "%s", buf);
    struct vs_array got;
    struct vs_err err;
    cr_assert_eq(vs_array_load(out, &got, &err), 0, "%s", err.msg);
    struct vs_st_file io;
    cr_assert_eq(vs_st_open(&io, GOLDEN "sd_small.io.safetensors", &err), 0, "%s", err.msg);
    const struct vs_st_tensor *t = vs_st_find(&io, "output");
    cr_assert_eq(got.numel, t->numel);
    cr_assert_eq(got.ndim, 4);
    float *want = malloc(t->numel * sizeof *want);
    vs_st_read_f32(&io, t, want, &err);
    double m = 0;
    for (size_t i = 0; i < t->numel; i++)
        m = fmax(m, fabs((double)got.data[i] - want[i]));
    printf("CLI exact tiled decode of sd_small: max-abs vs diffusers %.3g\n", m);
    cr_assert_leq(m, 1e-4);
    free(want);
    vs_st_close(&io);
    vs_array_free(&got);
    unlink(out);
}

Test(decode_cli, png_output_is_an_image_of_the_decoded_size)
{
    char out[] = "/tmp/vs_cli_XXXXXX.png", buf[8192], args[1024];
    close(mkstemps(out, 4));
    snprintf(args, sizeof args, "--vae " GOLDEN "flux_small.vae.safetensors --latents " GOLDEN
             "flux_small.io.safetensors --unscaled --mode blend -o %s", out);
    cr_assert_eq(run(args, buf, sizeof buf), 0, "%s", buf);
    FILE *f = fopen(out, "rb");
    cr_assert(f);
    spng_ctx *ctx = spng_ctx_new(0);
    spng_set_png_file(ctx, f);
    struct spng_ihdr ihdr;
    cr_assert_eq(spng_get_ihdr(ctx, &ihdr), 0);
    cr_assert_eq(ihdr.width, 24);
    cr_assert_eq(ihdr.height, 16);
    cr_assert_eq(ihdr.color_type, SPNG_COLOR_TYPE_TRUECOLOR);
    spng_ctx_free(ctx);
    fclose(f);
    unlink(out);
}

Test(decode_cli, wrong_latent_channels)
{
    char buf[8192];
    int rc = run("--vae " GOLDEN "sd_small.vae.safetensors --latents " GOLDEN
                 "flux_small.io.safetensors -o /tmp/never.png", buf, sizeof buf);
    cr_assert_eq(rc, 1);
    cr_assert(strstr(buf, "decode: " GOLDEN "flux_small.io.safetensors: latents have 16 channels "
                          "but the decoder in " GOLDEN "sd_small.vae.safetensors takes 4"),
              "%s", buf);
}

/* Without a GPU (the test machines): cuda is refused with what is missing, auto says it in one
 * line and decodes on the CPU, same final line. A machine with a GPU skips this. */
Test(decode_cli, device_cuda_refused_auto_uses_the_cpu)
{
    char buf[8192];
    int rc = run("--device cuda --vae x --latents y -o z.png", buf, sizeof buf);
    if (rc == 1 && strstr(buf, "decode: x:"))
        cr_skip_test("a GPU is usable here (the decode reached the weights file)");
    cr_assert_eq(rc, 2, "%s", buf);
    cr_assert(strstr(buf, "decode: --device cuda: no usable GPU: "), "%s", buf);
    void *drv = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!drv)
        cr_assert(strstr(buf, "the CUDA driver libcuda.so.1 is not installed"), "%s", buf);
    else
        dlclose(drv);
    cr_assert_eq(run("--device tpu --vae x --latents y -o z.png", buf, sizeof buf), 2);
    cr_assert(strstr(buf, "--device 'tpu': expected cpu, cuda or auto"), "%s", buf);
    cr_assert_eq(run("--device auto --unscaled --vae " GOLDEN
                     "sd_small.vae.safetensors --latents " GOLDEN
                     "sd_small.io.safetensors -o /tmp/vs_auto.npy",
                     buf, sizeof buf),
                 0, "%s", buf);
    cr_assert(strstr(buf, "decode: --device auto: no usable GPU: ") &&
                  strstr(buf, "; decoding on the CPU\n"), "%s", buf);
    cr_assert(strstr(buf, "decode: plan exact"), "%s", buf);
    unlink("/tmp/vs_auto.npy");
}

/* A driver that loads but cannot serve the CUDA runtime (here the simulated one) is told apart
 * from a missing driver. */
Test(decode_cli, device_cuda_with_a_driver_that_cannot_serve_the_runtime)
{
    char buf[8192];
    int rc = run("--device cuda --vae x --latents y -o z.png", buf, sizeof buf);
    if (rc == 1 && strstr(buf, "decode: x:"))
        cr_skip_test("a GPU is usable here");
    /* (leak detection off: the CUDA runtime unloads simcuda after its failed start-up, leaving
     * what simcuda's cuInit allocated; neither is the decoder's code) */
    FILE *p = popen("ASAN_OPTIONS=detect_leaks=0 LD_LIBRARY_PATH=" VS_BUILD_DIR "/sim " CLI
                    " --device cuda --vae x --latents y -o z.png 2>&1", "r");
    cr_assert(p);
    buf[fread(buf, 1, sizeof buf - 1, p)] = 0;
    int st = pclose(p);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 2, "%s", buf);
    cr_assert(strstr(buf, "decode: --device cuda: no usable GPU: "), "%s", buf);
    cr_assert(!strstr(buf, "not installed"), "simcuda's libcuda.so.1 was loadable: %s", buf);
}

/* The GPU decode lives in libvramshim_vae.so, loaded only when asked for: a CLI without it
 * decodes on the CPU and says where it looked when --device cuda is asked for. */
Test(decode_cli, device_cuda_without_the_library_says_where_it_looked)
{
    char dir[] = "/tmp/vs_cli_nolib_XXXXXX", cmd[4096], buf[8192];
    cr_assert(mkdtemp(dir));
    snprintf(cmd, sizeof cmd, "cp %s/vramshim %s/ && %s/vramshim decode --device cuda --vae x "
             "--latents y -o z.png 2>&1", VS_BUILD_DIR, dir, dir);
    FILE *p = popen(cmd, "r");
    cr_assert(p);
    buf[fread(buf, 1, sizeof buf - 1, p)] = 0;
    int st = pclose(p);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 2, "%s", buf);
    char want[256];
    snprintf(want, sizeof want,
             "decode: --device cuda: cannot load libvramshim_vae.so (looked in %s, "
             "%s/lib and the loader's paths",
             dir, dir);
    cr_assert(strstr(buf, want), "%s", buf);
}

Test(decode_cli, budget_too_small_and_bad_options)
{
    char buf[8192];
    cr_assert_eq(run("--budget 2KiB --unscaled --vae " GOLDEN "sd_small.vae.safetensors --latents "
                     GOLDEN "sd_small.io.safetensors -o /tmp/never.png", buf, sizeof buf), 1);
    cr_assert(strstr(buf, "budget 2.00 KiB is too small: the full-frame part"), "%s", buf);
    cr_assert_eq(run("--budget lots --vae a --latents b -o c", buf, sizeof buf), 2);
    cr_assert(strstr(buf, "--budget 'lots' is not a size"), "%s", buf);
    cr_assert_eq(run("--mode fast --vae a --latents b -o c", buf, sizeof buf), 2);
    cr_assert(strstr(buf, "unknown --mode 'fast' (exact, blend, monolithic)"), "%s", buf);
    cr_assert_eq(run("--vae a -o c", buf, sizeof buf), 2);
    cr_assert(strstr(buf, "--vae, --latents and -o are required"), "%s", buf);
}

Test(decode_cli, missing_files_are_named)
{
    char buf[8192];
    cr_assert_eq(run("--vae /nonexistent.safetensors --latents " GOLDEN
                     "sd_small.io.safetensors -o /tmp/never.png", buf, sizeof buf), 1);
    cr_assert(strstr(buf, "/nonexistent.safetensors: cannot open: No such file or directory"), "%s",
              buf);
    cr_assert_eq(run("--vae a --latents /tmp/latents.txt -o c", buf, sizeof buf), 1);
    cr_assert(
        strstr(buf, "/tmp/latents.txt: unknown latent format (expected .safetensors or .npy)"),
        "%s", buf);
}

/* sd_small latents * scaling_factor (0.18215 in the file's config), twice in a batch, as .npy */
Test(decode_cli, scaled_npy_batch_of_two_equals_diffusers)
{
    struct vs_st_file io;
    struct vs_err err;
    cr_assert_eq(vs_st_open(&io, GOLDEN "sd_small.io.safetensors", &err), 0, "%s", err.msg);
    const struct vs_st_tensor *l = vs_st_find(&io, "latents"), *o = vs_st_find(&io, "output");
    float *lat = malloc(2 * l->numel * sizeof *lat), *want = malloc(o->numel * sizeof *want);
    vs_st_read_f32(&io, l, lat, &err);
    vs_st_read_f32(&io, o, want, &err);
    for (size_t i = 0; i < l->numel; i++)
        lat[i + l->numel] = lat[i] = lat[i] * 0.18215f;
    char in[] = "/tmp/vs_cli_in_XXXXXX.npy", out[] = "/tmp/vs_cli_out_XXXXXX.npy", buf[8192],
         args[1024];
    close(mkstemps(in, 4));
    close(mkstemps(out, 4));
    int64_t shape[4] = {2, l->shape[1], l->shape[2], l->shape[3]};
    cr_assert_eq(vs_npy_write(in, lat, 4, shape, &err), 0, "%s", err.msg);
    snprintf(args, sizeof args, "--vae " GOLDEN "sd_small.vae.safetensors --latents %s --scaled "
             "--mode monolithic --threads 1 -o %s", in, out);
    cr_assert_eq(run(args, buf, sizeof buf), 0, "%s", buf);
    struct vs_array got;
    cr_assert_eq(vs_array_load(out, &got, &err), 0, "%s", err.msg);
    cr_assert(got.ndim == 4 && got.shape[0] == 2 && got.numel == 2 * o->numel);
    double m = 0;
    for (size_t i = 0; i < got.numel; i++)
        m = fmax(m, fabs((double)got.data[i] - want[i % o->numel]));
    cr_assert_leq(m, 1e-4, "max-abs %g", m);
    vs_array_free(&got);
    free(lat);
    free(want);
    vs_st_close(&io);
    unlink(in);
    unlink(out);
}

Test(decode_cli, wan_video_to_y4m_and_numbered_frames)
{
    char dir[] = "/tmp/vs_cli_wan_XXXXXX", buf[8192], args[1024], path[256];
    cr_assert(mkdtemp(dir));
    snprintf(args, sizeof args, "--vae " GOLDEN "wan_small.vae.safetensors --latents " GOLDEN
             "wan_small.io.safetensors --unscaled -o %s/v.y4m", dir);
    cr_assert_eq(run(args, buf, sizeof buf), 0, "%s", buf);
    cr_assert(strstr(buf, "decode: plan wan21 causal, 3 latent frames -> 9"), "%s", buf);
    snprintf(path, sizeof path, "%s/v.y4m", dir);
    FILE *f = fopen(path, "rb");
    cr_assert(f);
    char head[64] = {0};
    cr_assert(fgets(head, sizeof head, f));
    cr_assert(!strncmp(head, "YUV4MPEG2 W64 H48 F16:1", 23), "%s", head);
    long frames = 0;
    char line[16];
    while (fgets(line, sizeof line, f)) {
        if (!strcmp(line, "FRAME\n")) {
            frames++;
            fseek(f, 3 * 64 * 48, SEEK_CUR);
        }
    }
    fclose(f);
    cr_assert_eq(frames, 9);
    unlink(path);

    snprintf(args, sizeof args, "--vae " GOLDEN "wan_small.vae.safetensors --latents " GOLDEN
             "wan_small.io.safetensors --unscaled -o %s/f.png", dir);
    cr_assert_eq(run(args, buf, sizeof buf), 0, "%s", buf);
    for (int t = 0; t < 9; t++) {
        snprintf(path, sizeof path, "%s/f_%04d.png", dir, t);
        cr_assert_eq(access(path, R_OK), 0, "frame %s missing", path);
        unlink(path);
    }
    rmdir(dir);
}

/* Without a scaling_factor in the weights' config, 4 latent channels fit SD and SDXL alike. */
Test(decode_cli, ambiguous_scaling_asks_for_arch)
{
    static const int widths[2] = {8, 16};
    char vae[] = "/tmp/vs_cli_vae_XXXXXX.safetensors", msg[256], buf[8192], args[1024];
    close(mkstemps(vae, 12));
    char *man = gw_kl_manifest(4, 2, widths, 1, 1, 1);
    cr_assert_eq(gw_write_safetensors(vae, man, "{\"norm_num_groups\": 4}", msg, sizeof msg), 0,
                 "%s", msg);
    free(man);
    snprintf(args, sizeof args,
             "--vae %s --latents " GOLDEN "sd_small.io.safetensors -o /tmp/never.png", vae);
    cr_assert_eq(run(args, buf, sizeof buf), 1, "%s", buf);
    cr_assert(strstr(buf,
                     "4 latent channels fit SD 1.x/2.x and SDXL (--arch sd|sdxl), whose latent "
                     "scaling differs: pass --arch, or --unscaled"),
              "%s", buf);
    snprintf(args, sizeof args, "--vae %s --arch sdxl --latents " GOLDEN "sd_small.io.safetensors "
             "--plan", vae);
    cr_assert_eq(run(args, buf, sizeof buf), 0, "%s", buf);
    cr_assert(strstr(buf, "plan exact 1x1 tiles of 24 px, halo 14 px"), "%s", buf);
    unlink(vae);
}

/* Wan latents without a batch axis are 4-D like an image batch; --arch auto must still pick the
 * Wan decoder from the weights (their causal convs are 5-D). */
Test(decode_cli, auto_arch_recognises_wan_weights_with_4d_latents)
{
    struct vs_array lat;
    struct vs_err err;
    cr_assert_eq(vs_array_load(GOLDEN "wan_small.io.safetensors", &lat, &err), 0, "%s", err.msg);
    cr_assert_eq(lat.ndim, 5);
    char in[] = "/tmp/vs_wan4d_XXXXXX.npy", out[] = "/tmp/vs_wan4d_out_XXXXXX.npy", buf[8192];
    close(mkstemps(in, 4));
    close(mkstemps(out, 4));
    cr_assert_eq(vs_npy_write(in, lat.data, 4, lat.shape + 1, &err), 0, "%s", err.msg);
    char args[1024];
    snprintf(args, sizeof args, "--vae " GOLDEN "wan_small.vae.safetensors --latents %s "
             "--unscaled -o %s", in, out);
    cr_assert_eq(run(args, buf, sizeof buf), 0, "%s", buf);
    cr_expect(strstr(buf, "decode: plan wan21 causal, 3 latent frames -> 9"), "%s", buf);
    vs_array_free(&lat);
    unlink(in);
    unlink(out);
}

/* sd_small's config says scaling_factor 0.18215 (SD); --arch sdxl (0.13025) disagrees: the
 * file's figure is used and one line says so. */
Test(decode_cli, arch_and_config_that_disagree_are_reported)
{
    struct vs_st_file io;
    struct vs_err err;
    cr_assert_eq(vs_st_open(&io, GOLDEN "sd_small.io.safetensors", &err), 0, "%s", err.msg);
    const struct vs_st_tensor *l = vs_st_find(&io, "latents");
    float *lat = malloc(l->numel * sizeof *lat);
    vs_st_read_f32(&io, l, lat, &err);
    char in[] = "/tmp/vs_cli_in_XXXXXX.npy", out[] = "/tmp/vs_cli_out_XXXXXX.npy", buf[8192],
         args[1024];
    close(mkstemps(in, 4));
    close(mkstemps(out, 4));
    cr_assert_eq(vs_npy_write(in, lat, 4, l->shape, &err), 0, "%s", err.msg);
    const char *archs[] = {"sdxl", "sd"};
    for (int k = 0; k < 2; k++) {
        snprintf(args, sizeof args, "--vae " GOLDEN "sd_small.vae.safetensors --latents %s "
                 "--arch %s --mode monolithic --threads 1 -o %s", in, archs[k], out);
        cr_assert_eq(run(args, buf, sizeof buf), 0, "%s", buf);
        const char *note = strstr(buf, "decode: --arch sdxl scales latents with scaling_factor "
                                       "0.13025, shift_factor 0, but the config in ");
        if (k == 0)
            cr_expect(note && strstr(note, "says 0.18215, 0: using the file's"), "%s", buf);
        else
            cr_expect(!strstr(buf, "--arch"), "--arch sd agrees with the file:\n%s", buf);
    }
    free(lat);
    vs_st_close(&io);
    unlink(in);
    unlink(out);
}

/* Wan 2.2 from the original checkpoint names (as ComfyUI's wan2.2_vae.safetensors): --arch wan22
 * and --arch auto decode it to diffusers' output in tiles; --arch wan21 refuses it, and --arch
 * wan22 refuses a Wan 2.1 file, saying which decoder the file holds. */
Test(decode_cli, wan22_original_names_decode_to_diffusers_output)
{
    char out[] = "/tmp/vs_cli_wan22_XXXXXX.npy", buf[8192], args[1024];
    close(mkstemps(out, 4));
    const char *arch[] = {"wan22", "auto"};
    for (int k = 0; k < 2; k++) {
        snprintf(args, sizeof args, "--arch %s --vae " GOLDEN "wan22_small_original.vae.safetensors"
                 " --latents " GOLDEN "wan22_small_original.io.safetensors --unscaled --tile 24 "
                 "-o %s", arch[k], out);
        cr_assert_eq(run(args, buf, sizeof buf), 0, "%s", buf);
        cr_expect(strstr(buf, "decode: plan wan22 causal, 3 latent frames -> 9, 3x2 tiles of "
                              "24x24 px"), "%s", buf);
        struct vs_array got;
        struct vs_err err;
        cr_assert_eq(vs_array_load(out, &got, &err), 0, "%s", err.msg);
        struct vs_st_file io;
        cr_assert_eq(vs_st_open(&io, GOLDEN "wan22_small_original.io.safetensors", &err), 0, "%s",
                     err.msg);
        const struct vs_st_tensor *t = vs_st_find(&io, "output");
        cr_assert_eq(got.numel, t->numel);
        float *want = malloc(t->numel * sizeof *want);
        vs_st_read_f32(&io, t, want, &err);
        double m = 0;
        for (size_t i = 0; i < t->numel; i++)
            m = fmax(m, fabs((double)got.data[i] - want[i]));
        printf("CLI --arch %s tiled decode of wan22_small_original: max-abs vs diffusers %.3g\n",
               arch[k], m);
        cr_expect_leq(m, 1e-4);
        free(want);
        vs_st_close(&io);
        vs_array_free(&got);
    }
    snprintf(args, sizeof args, "--arch wan21 --vae " GOLDEN "wan22_small_original.vae.safetensors"
             " --latents " GOLDEN "wan22_small_original.io.safetensors --unscaled -o %s", out);
    cr_assert_eq(run(args, buf, sizeof buf), 1, "%s", buf);
    cr_expect(strstr(buf, "decode: " GOLDEN "wan22_small_original.vae.safetensors holds a Wan 2.2 "
                          "decoder (residual up blocks), not Wan 2.1"), "%s", buf);
    snprintf(args, sizeof args, "--arch wan22 --vae " GOLDEN "wan_small.vae.safetensors --latents "
             GOLDEN "wan_small.io.safetensors --unscaled -o %s", out);
    cr_assert_eq(run(args, buf, sizeof buf), 1, "%s", buf);
    cr_expect(strstr(buf, "holds a Wan 2.1 decoder (no residual up blocks), not Wan 2.2"), "%s",
              buf);
    unlink(out);
}
