/* libvramshim_vae's C API on the CPU: opening from a file and from caller tensors, the plan,
 * decodes equal to the decoder's own path bit for bit, and each documented error. */
#include <criterion/criterion.h>
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu/cast.h"
#include "kernels/kl_decoder.h"
#include "kernels/kl_program.h"
#include "kernels/plan.h"
#include "kernels/safetensors.h"
#include "kernels/wan.h"
#include "vramshim_vae.h"

#define GOLDEN VS_SOURCE_DIR "/tests/golden/"
#define SD GOLDEN "sd_small.vae.safetensors"
#define WAN GOLDEN "wan_small.vae.safetensors"

static char msg[1024];

/* latents [1][c][h][w] (or [1][c][t][h][w]) of the golden io file */
static float *golden_latents(const char *name, int64_t *shape, int *ndim)
{
    struct vs_st_file f;
    struct vs_err err;
    char path[512];
    snprintf(path, sizeof path, GOLDEN "%s.io.safetensors", name);
    cr_assert_eq(vs_st_open(&f, path, &err), 0, "%s", err.msg);
    const struct vs_st_tensor *t = vs_st_find(&f, "latents");
    cr_assert(t);
    float *lat = malloc(t->numel * sizeof *lat);
    cr_assert_eq(vs_st_read_f32(&f, t, lat, &err), 0, "%s", err.msg);
    *ndim = t->ndim;
    for (int i = 0; i < t->ndim; i++)
        shape[i] = t->shape[i];
    vs_st_close(&f);
    return lat;
}

static size_t numel(const int64_t *shape, int ndim)
{
    size_t n = 1;
    for (int i = 0; i < ndim; i++)
        n *= (size_t)shape[i];
    return n;
}

/* The existing path: vs_kl_load, vs_plan_make, vs_plan_run (as vramshim decode does). */
static float *reference_kl(const char *path, const float *lat, int h, int w,
                           enum vs_decode_mode mode, int tile_latent)
{
    struct vs_kl_decoder d;
    struct vs_program p;
    struct vs_plan plan;
    struct vs_err err;
    struct vs_mem mem;
    cr_assert_eq(vs_kl_load(&d, path, VS_ARCH_AUTO, &err), 0, "%s", err.msg);
    cr_assert_eq(vs_program_build(&p, &d, &err), 0, "%s", err.msg);
    cr_assert_eq(vs_plan_make(&plan, &p, h, w, mode, tile_latent, 0, &err), 0, "%s", err.msg);
    vs_mem_init(&mem, 0);
    float *out;
    cr_assert_eq(vs_plan_run(&plan, &p, lat, &out, &mem, NULL, &err), 0, "%s", err.msg);
    size_t n = (size_t)3 * h * d.upscale * w * d.upscale;
    float *copy = malloc(n * sizeof *copy);
    memcpy(copy, out, n * sizeof *copy);
    vs_mem_free(&mem, out);
    vs_plan_free(&plan);
    vs_program_free(&p);
    vs_kl_free(&d);
    return copy;
}

static vramshim_vae_decode_args args_for(const float *lat, void *out, const int64_t *shape,
                                         int ndim)
{
    vramshim_vae_decode_args a;
    memset(&a, 0, sizeof a);
    a.latents = lat;
    a.out = out;
    a.ndim = ndim;
    memcpy(a.shape, shape, (size_t)ndim * sizeof *shape);
    return a;
}

static vramshim_vae_decode_args kl_args(const float *lat, float *out, const int64_t *shape)
{
    return args_for(lat, out, shape, 4);
}

Test(vae_api, file_decode_equals_the_decoder_path_bit_for_bit)
{
    int64_t shape[8];
    int ndim;
    float *lat = golden_latents("sd_small", shape, &ndim);
    vramshim_vae *v;
    cr_assert_eq(vramshim_vae_open_file(SD, VRAMSHIM_VAE_ARCH_AUTO, &v, msg, sizeof msg), 0, "%s",
                 msg);
    const int h = (int)shape[2], w = (int)shape[3];
    const struct { vramshim_vae_mode mode; enum vs_decode_mode ref; int tile_px; } cases[] = {
        {VRAMSHIM_VAE_MONOLITHIC, VS_DECODE_MONOLITHIC, 0},
        {VRAMSHIM_VAE_EXACT, VS_DECODE_EXACT, 3},
        {VRAMSHIM_VAE_BLEND, VS_DECODE_BLEND, 5},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        vramshim_vae_plan plan;
        float *out = malloc((size_t)3 * 64 * h * w * sizeof *out);
        vramshim_vae_decode_args a = kl_args(lat, out, shape);
        a.mode = cases[c].mode;
        a.tile_px = cases[c].tile_px * 2; /* sd_small upsamples x2 */
        cr_assert_eq(vramshim_vae_decode(v, &a, &plan, msg, sizeof msg), 0, "%s", msg);
        float *ref = reference_kl(SD, lat, h, w, cases[c].ref, cases[c].tile_px);
        size_t n = (size_t)3 * (h * 2) * (w * 2); /* sd_small upsamples x2 */
        cr_assert_eq(memcmp(out, ref, n * sizeof *out), 0, "mode %d differs", (int)a.mode);
        cr_assert_eq(plan.measured_peak, plan.predicted_peak, "%s", plan.description);
        if (cases[c].mode != VRAMSHIM_VAE_MONOLITHIC)
            cr_assert_gt(plan.tiles_x * plan.tiles_y, 1, "%s", plan.description);
        free(ref);
        free(out);
    }
    vramshim_vae_close(v);
    free(lat);
}

/* Every tensor of a safetensors file, in memory, as the caller's tensors (raw dtype kept). */
struct mem_tensors {
    struct vs_st_file f;
    vramshim_vae_tensor *t;
    size_t n;
};

static void mem_open(struct mem_tensors *m, const char *path)
{
    struct vs_err err;
    cr_assert_eq(vs_st_open(&m->f, path, &err), 0, "%s", err.msg);
    m->n = m->f.count;
    m->t = calloc(m->n + 1, sizeof *m->t); /* room for one extra tensor */
    for (size_t i = 0; i < m->n; i++) {
        const struct vs_st_tensor *s = &m->f.tensors[i];
        vramshim_vae_tensor *t = &m->t[i];
        t->name = s->name;
        t->data = m->f.data + s->offset;
        t->dtype = s->dtype == VS_DT_F16 ? VRAMSHIM_VAE_F16
                   : s->dtype == VS_DT_BF16 ? VRAMSHIM_VAE_BF16 : VRAMSHIM_VAE_F32;
        t->ndim = s->ndim;
        memcpy(t->shape, s->shape, sizeof t->shape);
    }
}

static void mem_close(struct mem_tensors *m)
{
    free(m->t);
    vs_st_close(&m->f);
}

static void decode_both_ways(const char *path, const char *io)
{
    int64_t shape[8];
    int ndim;
    float *lat = golden_latents(io, shape, &ndim);
    struct mem_tensors m;
    mem_open(&m, path);
    vramshim_vae *vf, *vm;
    cr_assert_eq(vramshim_vae_open_file(path, VRAMSHIM_VAE_ARCH_AUTO, &vf, msg, sizeof msg), 0,
                 "%s", msg);
    cr_assert_eq(vramshim_vae_open_tensors(m.t, m.n, vs_st_meta(&m.f, "config"),
                                           VRAMSHIM_VAE_ARCH_AUTO, &vm, msg,
                                           sizeof msg), 0, "%s", msg);
    vramshim_vae_decode_args a = args_for(lat, NULL, shape, ndim);
    a.tile_px = 16;
    vramshim_vae_plan plan;
    cr_assert_eq(vramshim_vae_plan_decode(vf, &a, &plan, msg, sizeof msg), 0, "%s", msg);
    size_t out_n = ndim == 5 ? (size_t)3 * (1 + 4 * (shape[2] - 1)) * shape[3] * 8 * shape[4] * 8
                             : (size_t)3 * shape[2] * 2 * shape[3] * 2 * (size_t)shape[0];
    float *o1 = malloc(out_n * sizeof *o1), *o2 = malloc(out_n * sizeof *o2);
    a.out = o1;
    cr_assert_eq(vramshim_vae_decode(vf, &a, NULL, msg, sizeof msg), 0, "%s", msg);
    a.out = o2;
    cr_assert_eq(vramshim_vae_decode(vm, &a, NULL, msg, sizeof msg), 0, "%s", msg);
    cr_assert_eq(memcmp(o1, o2, out_n * sizeof *o1), 0, "%s: in-memory tensors decode differently",
                 path);
    /* half-precision output is the cast of the fp32 output */
    uint16_t *h = malloc(out_n * sizeof *h);
    a.out = h;
    a.out_dtype = VRAMSHIM_VAE_BF16;
    cr_assert_eq(vramshim_vae_decode(vm, &a, NULL, msg, sizeof msg), 0, "%s", msg);
    for (size_t i = 0; i < out_n; i++)
        cr_assert_eq(h[i], vs_f32_to_bf16(o1[i]), "bf16 output %zu", i);
    free(h);
    free(o1);
    free(o2);
    vramshim_vae_close(vf);
    vramshim_vae_close(vm);
    mem_close(&m);
    free(lat);
}

Test(vae_api, in_memory_tensors_decode_like_the_file)
{
    decode_both_ways(SD, "sd_small");
    decode_both_ways(GOLDEN "flux_small.vae.safetensors", "flux_small"); /* BF16 weights */
}

Test(vae_api, wan_decode_equals_the_decoder_path)
{
    int64_t shape[8];
    int ndim;
    float *lat = golden_latents("wan_small", shape, &ndim);
    cr_assert_eq(ndim, 5);
    decode_both_ways(WAN, "wan_small");
    /* against vs_wan_decode directly, 16 px tiles */
    struct vs_wan_model *m;
    struct vs_err err;
    cr_assert_eq(vs_wan_load(WAN, &m, &err), 0, "%s", err.msg);
    const int T = (int)shape[2], h = (int)shape[3], w = (int)shape[4];
    size_t n = (size_t)3 * vs_wan_out_frames(m, T) * h * 8 * w * 8;
    float *ref = malloc(n * sizeof *ref), *out = malloc(n * sizeof *out);
    struct vs_wan_opts o = {.tile = 16};
    cr_assert_eq(vs_wan_decode(m, lat, T, h, w, &o, ref, NULL, &err), 0, "%s", err.msg);
    vramshim_vae *v;
    cr_assert_eq(vramshim_vae_open_file(WAN, VRAMSHIM_VAE_ARCH_AUTO, &v, msg, sizeof msg), 0, "%s",
                 msg);
    vramshim_vae_decode_args a = args_for(lat, out, shape, 5);
    a.tile_px = 16;
    vramshim_vae_plan plan;
    cr_assert_eq(vramshim_vae_decode(v, &a, &plan, msg, sizeof msg), 0, "%s", msg);
    cr_assert_eq(memcmp(out, ref, n * sizeof *out), 0);
    cr_assert_gt(plan.tiles_x * plan.tiles_y, 1);
    cr_assert_eq(plan.measured_peak, plan.predicted_peak);
    a.mode = VRAMSHIM_VAE_BLEND;
    cr_assert_eq(vramshim_vae_decode(v, &a, NULL, msg, sizeof msg), VRAMSHIM_VAE_ERR_ARG);
    cr_assert(strstr(msg, "blend"), "%s", msg);
    vramshim_vae_close(v);
    vs_wan_free(m);
    free(ref);
    free(out);
    free(lat);
}

/* Wan 2.2 through the library: auto and --arch wan22 decode the original-name file (as ComfyUI's
 * wan2.2_vae.safetensors) to diffusers' output in tiles; an explicit arch of the other Wan
 * version is a weights error naming the decoder the file holds. */
Test(vae_api, wan22_decodes_to_diffusers_output)
{
    const char *path = GOLDEN "wan22_small_original.vae.safetensors";
    int64_t shape[8];
    int ndim;
    float *lat = golden_latents("wan22_small_original", shape, &ndim);
    struct vs_st_file f;
    struct vs_err err;
    cr_assert_eq(vs_st_open(&f, GOLDEN "wan22_small_original.io.safetensors", &err), 0, "%s",
                 err.msg);
    const struct vs_st_tensor *t = vs_st_find(&f, "output");
    float *want = malloc(t->numel * sizeof *want), *out = malloc(t->numel * sizeof *out);
    cr_assert_eq(vs_st_read_f32(&f, t, want, &err), 0, "%s", err.msg);
    const vramshim_vae_arch archs[] = {VRAMSHIM_VAE_ARCH_AUTO, VRAMSHIM_VAE_ARCH_WAN22};
    for (int k = 0; k < 2; k++) {
        vramshim_vae *v;
        cr_assert_eq(vramshim_vae_open_file(path, archs[k], &v, msg, sizeof msg), 0, "%s", msg);
        vramshim_vae_decode_args a = args_for(lat, out, shape, ndim);
        a.tile_px = 24;
        vramshim_vae_plan plan;
        cr_assert_eq(vramshim_vae_decode(v, &a, &plan, msg, sizeof msg), 0, "%s", msg);
        cr_expect_gt(plan.tiles_x * plan.tiles_y, 1);
        double worst = 0;
        for (size_t i = 0; i < t->numel; i++)
            worst = fmax(worst, fabs((double)out[i] - want[i]));
        cr_expect_leq(worst, 1e-4, "max-abs %g vs diffusers", worst);
        vramshim_vae_close(v);
    }
    vramshim_vae *v = (vramshim_vae *)1;
    cr_expect_eq(vramshim_vae_open_file(path, VRAMSHIM_VAE_ARCH_WAN21, &v, msg, sizeof msg),
                 VRAMSHIM_VAE_ERR_WEIGHTS);
    cr_expect_null(v);
    cr_expect(strstr(msg, "holds a Wan 2.2 decoder (residual up blocks), not Wan 2.1"), "%s", msg);
    cr_expect_eq(vramshim_vae_open_file(WAN, VRAMSHIM_VAE_ARCH_WAN22, &v, msg, sizeof msg),
                 VRAMSHIM_VAE_ERR_WEIGHTS);
    cr_expect(strstr(msg, "holds a Wan 2.1 decoder (no residual up blocks), not Wan 2.2"), "%s",
              msg);
    vs_st_close(&f);
    free(want);
    free(out);
    free(lat);
}

static const char *config; /* the file's diffusers config */

static void expect_open_error(const vramshim_vae_tensor *t, size_t n, int code, const char *a,
                              const char *b)
{
    vramshim_vae *v = (vramshim_vae *)1;
    cr_assert_eq(
        vramshim_vae_open_tensors(t, n, config, VRAMSHIM_VAE_ARCH_AUTO, &v, msg, sizeof msg), code,
        "%s", msg);
    cr_assert_null(v);
    cr_assert(strstr(msg, a), "message '%s' lacks '%s'", msg, a);
    cr_assert(!b || strstr(msg, b), "message '%s' lacks '%s'", msg, b);
}

Test(vae_api, tensor_errors_name_the_tensor)
{
    struct mem_tensors m;
    mem_open(&m, SD);
    config = vs_st_meta(&m.f, "config");
    /* an unknown decoder tensor */
    float one = 1;
    m.t[m.n] = (vramshim_vae_tensor){"decoder.mystery.weight", &one, VRAMSHIM_VAE_F32, 1, {1}};
    expect_open_error(m.t, m.n + 1, VRAMSHIM_VAE_ERR_WEIGHTS, "decoder.mystery.weight", NULL);
    /* a wrong shape: both shapes shown */
    size_t ci = 0;
    while (strcmp(m.t[ci].name, "decoder.conv_out.bias"))
        ci++;
    m.t[ci].shape[0] = 1;
    expect_open_error(m.t, m.n, VRAMSHIM_VAE_ERR_WEIGHTS, "decoder.conv_out.bias", "[3]");
    m.t[ci].shape[0] = 3;
    /* a bad dtype, a duplicate, a missing tensor */
    m.t[ci].dtype = (vramshim_vae_dtype)7;
    expect_open_error(m.t, m.n, VRAMSHIM_VAE_ERR_WEIGHTS, "decoder.conv_out.bias", "dtype");
    m.t[ci].dtype = VRAMSHIM_VAE_F32;
    m.t[m.n] = m.t[ci];
    expect_open_error(m.t, m.n + 1, VRAMSHIM_VAE_ERR_WEIGHTS, "decoder.conv_out.bias", "twice");
    m.t[ci] = m.t[m.n - 1];
    expect_open_error(m.t, m.n - 1, VRAMSHIM_VAE_ERR_WEIGHTS, "decoder.conv_out.bias", "missing");
    mem_close(&m);
    vramshim_vae *v;
    cr_assert_eq(vramshim_vae_open_file("/nonexistent.safetensors", VRAMSHIM_VAE_ARCH_AUTO, &v,
                                        msg, sizeof msg), VRAMSHIM_VAE_ERR_WEIGHTS);
    cr_assert(strstr(msg, "/nonexistent.safetensors"), "%s", msg);
    cr_assert_eq(vramshim_vae_open_file(SD, VRAMSHIM_VAE_ARCH_FLUX, &v, msg, sizeof msg),
                 VRAMSHIM_VAE_ERR_WEIGHTS);
    cr_assert(strstr(msg, "16 latent channels"), "%s", msg);
}

Test(vae_api, shape_errors_are_argument_errors)
{
    vramshim_vae *v;
    cr_assert_eq(vramshim_vae_open_file(SD, VRAMSHIM_VAE_ARCH_SD, &v, msg, sizeof msg), 0, "%s",
                 msg);
    float lat[4 * 8 * 8] = {0}, out[3 * 16 * 16];
    int64_t shape[4] = {1, 3, 8, 8};
    vramshim_vae_decode_args a = kl_args(lat, out, shape);
    cr_assert_eq(vramshim_vae_decode(v, &a, NULL, msg, sizeof msg), VRAMSHIM_VAE_ERR_ARG);
    cr_assert(strstr(msg, "3 channels") && strstr(msg, "takes 4"), "%s", msg);
    a.shape[1] = 4;
    a.ndim = 5;
    cr_assert_eq(vramshim_vae_decode(v, &a, NULL, msg, sizeof msg), VRAMSHIM_VAE_ERR_ARG);
    cr_assert(strstr(msg, "NCHW"), "%s", msg);
    a.ndim = 4;
    a.shape[2] = 0;
    cr_assert_eq(vramshim_vae_decode(v, &a, NULL, msg, sizeof msg), VRAMSHIM_VAE_ERR_ARG);
    cr_assert(strstr(msg, "shape[2] = 0"), "%s", msg);
    vramshim_vae_close(v);
}

/* A budget below every plan names the smallest budget that works, and that budget works. */
Test(vae_api, budget_too_small_names_the_smallest_that_works)
{
    int64_t shape[8];
    int ndim;
    float *lat = golden_latents("sd_small", shape, &ndim);
    vramshim_vae *v;
    cr_assert_eq(vramshim_vae_open_file(SD, VRAMSHIM_VAE_ARCH_AUTO, &v, msg, sizeof msg), 0, "%s",
                 msg);
    float *out = malloc((size_t)3 * 4 * shape[2] * shape[3] * sizeof *out);
    vramshim_vae_decode_args a = kl_args(lat, out, shape);
    a.budget = 1024;
    cr_assert_eq(vramshim_vae_decode(v, &a, NULL, msg, sizeof msg), VRAMSHIM_VAE_ERR_BUDGET, "%s",
                 msg);
    const char *at = strstr(msg, "smallest budget that works is");
    cr_assert(at, "%s", msg);
    size_t smallest;
    cr_assert_eq(sscanf(strchr(at, '(') + 1, "%zu bytes", &smallest), 1, "%s", msg);
    a.budget = smallest - 1;
    cr_assert_eq(vramshim_vae_plan_decode(v, &a, NULL, msg, sizeof msg), VRAMSHIM_VAE_ERR_BUDGET);
    a.budget = smallest;
    vramshim_vae_plan plan;
    cr_assert_eq(vramshim_vae_decode(v, &a, &plan, msg, sizeof msg), 0, "%s", msg);
    cr_assert_leq(plan.measured_peak, smallest);
    vramshim_vae_close(v);
    free(out);
    free(lat);
}

/* The caller's allocator serves working memory; when it fails mid-decode the call reports OOM,
 * every block it handed out has come back and the latents are untouched. */
struct counting {
    int allocs, live, fail_at;
};

static void *count_alloc(void *ctx, size_t bytes, void *stream)
{
    struct counting *c = ctx;
    cr_assert_null(stream);
    if (++c->allocs == c->fail_at)
        return NULL;
    c->live++;
    return malloc(bytes);
}

static void count_free(void *ctx, void *p, void *stream)
{
    struct counting *c = ctx;
    (void)stream;
    c->live--;
    free(p);
}

static void oom_case(const char *path, const char *io)
{
    int64_t shape[8];
    int ndim;
    float *lat = golden_latents(io, shape, &ndim);
    size_t in_n = numel(shape, ndim);
    float *keep = malloc(in_n * sizeof *keep);
    memcpy(keep, lat, in_n * sizeof *keep);
    vramshim_vae *v;
    cr_assert_eq(vramshim_vae_open_file(path, VRAMSHIM_VAE_ARCH_AUTO, &v, msg, sizeof msg), 0, "%s",
                 msg);
    size_t out_n = (size_t)3 * 64 * 64 * 64 * 8; /* larger than both cases' outputs */
    float *out = malloc(out_n * sizeof *out);
    struct counting c = {0, 0, 0};
    vramshim_vae_allocator al = {count_alloc, count_free, &c};
    vramshim_vae_decode_args a = args_for(lat, out, shape, ndim);
    a.tile_px = 16;
    a.allocator = &al;
    a.scaled = ndim == 5; /* Wan: the input is unscaled in a copy, never in place */
    cr_assert_eq(vramshim_vae_decode(v, &a, NULL, msg, sizeof msg), 0, "%s", msg);
    int total = c.allocs;
    cr_assert_gt(total, 3);
    cr_assert_eq(c.live, 0);
    for (int fail = 1; fail <= total; fail += total / 4 ? total / 4 : 1) {
        c = (struct counting){0, 0, fail};
        cr_assert_eq(vramshim_vae_decode(v, &a, NULL, msg, sizeof msg), VRAMSHIM_VAE_ERR_OOM,
                     "allocation %d of %d failed: %s", fail, total, msg);
        cr_assert_eq(c.live, 0, "%d blocks leaked after allocation %d failed", c.live, fail);
        cr_assert(strstr(msg, "out of"), "%s", msg);
    }
    cr_assert_eq(memcmp(lat, keep, in_n * sizeof *lat), 0, "the latents were modified");
    vramshim_vae_close(v);
    free(out);
    free(keep);
    free(lat);
}

Test(vae_api, out_of_memory_mid_decode_leaks_nothing)
{
    oom_case(SD, "sd_small");
    oom_case(WAN, "wan_small");
}

/* The library carries the CUDA runtime inside and dlopens the rest, so it loads on machines
 * with no GPU and no driver (as this one): nothing CUDA is NEEDED, and it exports only its API
 * (the static runtime's symbols stay hidden and cannot clash with a process's own libcudart). */
Test(vae_api, loads_without_any_cuda_library_and_hides_the_runtime)
{
    char cmd[512], line[512];
    snprintf(cmd, sizeof cmd, "readelf -d %s/libvramshim_vae.so", VS_BUILD_DIR);
    FILE *p = popen(cmd, "r");
    cr_assert(p);
    int needed = 0;
    while (fgets(line, sizeof line, p))
        if (strstr(line, "(NEEDED)")) {
            needed++;
            cr_assert(!strstr(line, "libcu"), "the library needs %s", line);
        }
    cr_assert_eq(pclose(p), 0);
    cr_assert_gt(needed, 0, "%s printed no NEEDED entries", cmd);
    snprintf(cmd, sizeof cmd, "nm -D --defined-only %s/libvramshim_vae.so", VS_BUILD_DIR);
    cr_assert((p = popen(cmd, "r")));
    int exported = 0;
    while (fgets(line, sizeof line, p)) {
        char type, name[256];
        unsigned long long addr;
        if (sscanf(line, "%llx %c %255s", &addr, &type, name) == 3) {
            cr_assert(!strncmp(name, "vramshim_vae_", 13), "exports %s", name);
            exported++;
        }
    }
    cr_assert_eq(pclose(p), 0);
    cr_assert_eq(exported, 6, "%d functions exported; the API has 6", exported);
}

/* Without a GPU, GPU work is refused with what is missing, and the CPU keeps decoding in the
 * same process (the latents untouched). A machine with a GPU skips this. */
Test(vae_api, gpu_work_without_a_gpu_is_refused_with_the_reason)
{
    if (vramshim_vae_gpu_status(msg, sizeof msg) == VRAMSHIM_VAE_OK)
        cr_skip_test("a GPU is usable here: %s", msg);
    printf("vae_api: GPU status: %s\n", msg);
    cr_assert(!strncmp(msg, "no usable GPU: ", 15), "%s", msg);
    /* the driver is the first thing missing on a machine without one: it is named */
    void *drv = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!drv)
        cr_assert(strstr(msg, "the CUDA driver libcuda.so.1 is not installed"), "%s", msg);
    else
        dlclose(drv);
    int64_t shape[8];
    int ndim;
    float *lat = golden_latents("sd_small", shape, &ndim);
    const size_t in_n = (size_t)4 * shape[2] * shape[3], out_n = in_n / 4 * 3 * 4;
    float *keep = malloc(in_n * sizeof *keep), *out = calloc(out_n, sizeof *out);
    memcpy(keep, lat, in_n * sizeof *keep);
    vramshim_vae *v;
    cr_assert_eq(vramshim_vae_open_file(SD, VRAMSHIM_VAE_ARCH_AUTO, &v, msg, sizeof msg), 0, "%s",
                 msg);
    vramshim_vae_decode_args a = kl_args(lat, out, shape);
    a.device = VRAMSHIM_VAE_DEVICE_CUDA;
    cr_assert_eq(vramshim_vae_decode(v, &a, NULL, msg, sizeof msg), VRAMSHIM_VAE_ERR_NO_GPU, "%s",
                 msg);
    cr_assert(strstr(msg, "device CUDA needs the GPU but none is usable: "), "%s", msg);
    if (!drv)
        cr_assert(strstr(msg, "libcuda.so.1"), "%s", msg);
    a.device = (vramshim_vae_device)7;
    cr_assert_eq(vramshim_vae_decode(v, &a, NULL, msg, sizeof msg), VRAMSHIM_VAE_ERR_ARG, "%s",
                 msg);
    cr_assert(strstr(msg, "device 7 is not a vramshim_vae_device"), "%s", msg);
    cr_assert_eq(memcmp(lat, keep, in_n * sizeof *lat), 0, "the latents were modified");
    for (int d = VRAMSHIM_VAE_DEVICE_AUTO; d <= VRAMSHIM_VAE_DEVICE_CPU; d++) {
        a.device = (vramshim_vae_device)d;
        cr_assert_eq(vramshim_vae_decode(v, &a, NULL, msg, sizeof msg), 0, "%s", msg);
    }
    vramshim_vae_close(v);
    free(out), free(keep), free(lat);
}

/* The header-only program (built against include/vramshim_vae.h alone) decodes. */
Test(vae_api, header_only_program_decodes)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s/vae/header_check %s 4 2>/dev/null | grep -q '^plan exact'",
             VS_BUILD_DIR, SD);
    cr_assert_eq(system(cmd), 0, "%s failed", cmd);
}
