/* Test fixture for the Wan decoder tests: a Wan 2.1- or 2.2-shaped decoder of any width, with
 * generator v1 weights (tests/golden_weights.h), written as a diffusers-style safetensors file
 * and loaded through the normal loader. dims follow diffusers' WanDecoder3d: [4b, 4b, 4b, 2b, b]
 * for base_dim b, dim_mult [1, 2, 4, 4], two temporal upsamplers then one spatial one; Wan 2.2
 * (is_residual, patch_size 2) keeps each block's input width and ends in 12 channels. */
#ifndef VS_TESTS_WAN_FIXTURE_H
#define VS_TESTS_WAN_FIXTURE_H

#include <criterion/criterion.h>
#include <jansson.h>
#include <unistd.h>

#include "kernels/wan.h"
#include "tests/golden_weights.h"

static inline void wf_tensor(json_t *man, const char *name, int rank, int a, int b, int c, int d,
                             int e)
{
    int dims[5] = {a, b, c, d, e};
    json_t *shape = json_array();
    for (int i = 0; i < rank; i++)
        json_array_append_new(shape, json_integer(dims[i]));
    json_object_set_new(man, name, shape);
}

static inline void wf_conv(json_t *man, const char *prefix, int out, int in, int kt, int k)
{
    char name[256];
    snprintf(name, sizeof name, "%s.weight", prefix);
    if (kt)
        wf_tensor(man, name, 5, out, in, kt, k, k);
    else
        wf_tensor(man, name, 4, out, in, k, k, 0);
    snprintf(name, sizeof name, "%s.bias", prefix);
    wf_tensor(man, name, 1, out, 0, 0, 0, 0);
}

static inline void wf_res(json_t *man, const char *prefix, int in, int out)
{
    char name[128];
    snprintf(name, sizeof name, "%s.norm1.gamma", prefix);
    wf_tensor(man, name, 4, in, 1, 1, 1, 0);
    snprintf(name, sizeof name, "%s.conv1", prefix);
    wf_conv(man, name, out, in, 3, 3);
    snprintf(name, sizeof name, "%s.norm2.gamma", prefix);
    wf_tensor(man, name, 4, out, 1, 1, 1, 0);
    snprintf(name, sizeof name, "%s.conv2", prefix);
    wf_conv(man, name, out, out, 3, 3);
    if (in != out) {
        snprintf(name, sizeof name, "%s.conv_shortcut", prefix);
        wf_conv(man, name, out, in, 1, 1);
    }
}

/* Manifest {name: shape} of the decoder part, diffusers names, version 21 or 22. Caller
 * json_decref's it. */
static inline json_t *wf_manifest_v(int base, int z, int version)
{
    const int v22 = version == 22;
    json_t *man = json_object();
    const int dims[5] = {4 * base, 4 * base, 4 * base, 2 * base, base};
    char name[96];
    wf_conv(man, "post_quant_conv", z, z, 1, 1);
    wf_conv(man, "decoder.conv_in", dims[0], z, 3, 3);
    wf_res(man, "decoder.mid_block.resnets.0", dims[0], dims[0]);
    wf_tensor(man, "decoder.mid_block.attentions.0.norm.gamma", 3, dims[0], 1, 1, 0, 0);
    wf_conv(man, "decoder.mid_block.attentions.0.to_qkv", 3 * dims[0], dims[0], 0, 1);
    wf_conv(man, "decoder.mid_block.attentions.0.proj", dims[0], dims[0], 0, 1);
    wf_res(man, "decoder.mid_block.resnets.1", dims[0], dims[0]);
    for (int i = 0; i < 4; i++) {
        int in = i == 0 || v22 ? dims[i] : dims[i] / 2, out = dims[i + 1];
        for (int j = 0; j < 3; j++) {
            snprintf(name, sizeof name, "decoder.up_blocks.%d.resnets.%d", i, j);
            wf_res(man, name, j == 0 ? in : out, out);
        }
        const char *up = v22 ? "upsampler" : "upsamplers.0";
        if (i < 3) {
            snprintf(name, sizeof name, "decoder.up_blocks.%d.%s.resample.1", i, up);
            wf_conv(man, name, v22 ? out : out / 2, out, 0, 3);
        }
        if (i < 2) {
            snprintf(name, sizeof name, "decoder.up_blocks.%d.%s.time_conv", i, up);
            wf_conv(man, name, 2 * out, out, 3, 1);
        }
    }
    wf_tensor(man, "decoder.norm_out.gamma", 4, base, 1, 1, 1, 0);
    wf_conv(man, "decoder.conv_out", v22 ? 12 : 3, base, 3, 3);
    return man;
}

static inline json_t *wf_manifest(int base, int z)
{
    return wf_manifest_v(base, z, 21);
}

/* Writes the manifest's generated weights to a temporary file; returns its path (static). */
static inline const char *wf_write(json_t *man)
{
    static char path[64];
    snprintf(path, sizeof path, "/tmp/vs_wan_fixture_%d_XXXXXX", (int)getpid());
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    close(fd);
    char *text = json_dumps(man, JSON_COMPACT), msg[256];
    cr_assert_eq(gw_write_safetensors(path, text, "{}", msg, sizeof msg), 0, "%s", msg);
    free(text);
    return path;
}

/* A loaded decoder of base width `base`, z latent channels and version 21 or 22. */
static inline struct vs_wan_model *wf_model_v(int base, int z, int version)
{
    json_t *man = wf_manifest_v(base, z, version);
    const char *path = wf_write(man);
    json_decref(man);
    struct vs_wan_model *m;
    struct vs_err err = {{0}};
    int rc = vs_wan_load(path, &m, &err);
    unlink(path);
    cr_assert_eq(rc, 0, "%s", err.msg);
    return m;
}

static inline struct vs_wan_model *wf_model(int base, int z)
{
    return wf_model_v(base, z, 21);
}

/* Deterministic latents in [-2, 2). */
static inline float *wf_latents(size_t n, unsigned seed)
{
    float *p = malloc(n * sizeof *p);
    cr_assert(p);
    uint64_t s = seed;
    for (size_t i = 0; i < n; i++)
        p[i] = (float)((double)(gw_splitmix64(s + i) >> 40) / 16777216.0 * 4.0 - 2.0);
    return p;
}

/* A decode case: a decoder, latents [z][T][h][w] and its one-tile decode as the reference. */
struct wf_case {
    struct vs_wan_model *m;
    int z, T, h, w;
    float *latents, *ref;
    size_t out_n;
    struct vs_wan_stats ref_stats;
};

/* out [3][T'][H][W] of a decode with the given tile and budget (0: none). */
static inline float *wf_decode(const struct wf_case *c, int tile, size_t budget,
                               struct vs_wan_stats *stats)
{
    float *out = malloc(c->out_n * sizeof *out);
    cr_assert(out);
    struct vs_wan_opts opts = {.tile = tile, .budget = budget};
    struct vs_err err = {{0}};
    cr_assert_eq(vs_wan_decode(c->m, c->latents, c->T, c->h, c->w, &opts, out, stats, &err), 0,
                 "%s", err.msg);
    return out;
}

static inline void wf_case_open(struct wf_case *c, int base, int z, int version, int T, int h,
                                int w, unsigned seed)
{
    *c = (struct wf_case){.m = wf_model_v(base, z, version), .z = z, .T = T, .h = h, .w = w};
    c->latents = wf_latents((size_t)z * T * h * w, seed);
    int scale = vs_wan_spatial_scale(c->m);
    c->out_n = (size_t)3 * vs_wan_out_frames(c->m, T) * h * scale * w * scale;
    c->ref = wf_decode(c, 0, 0, &c->ref_stats);
}

static inline void wf_case_close(struct wf_case *c)
{
    free(c->ref);
    free(c->latents);
    vs_wan_free(c->m);
}

/* The reference video is clamped to [-1, 1] as diffusers clamps it, and not constant. */
static inline void wf_expect_clamped_and_varied(const struct wf_case *c)
{
    size_t outside = 0, varied = 0;
    for (size_t i = 0; i < c->out_n; i++) {
        outside += c->ref[i] < -1.0f || c->ref[i] > 1.0f;
        varied += c->ref[i] != c->ref[0];
    }
    cr_expect_eq(outside, 0);
    cr_expect_gt(varied, 0);
}

/* The video decoded by a stream fed the latents in chunks of chunks[0..n) frames. */
static inline float *wf_decode_chunked(const struct wf_case *c, const int *chunks, int n_chunks,
                                       int tile)
{
    float *out = malloc(c->out_n * sizeof *out);
    struct vs_wan_opts opts = {.tile = tile};
    struct vs_wan_stream *s;
    struct vs_err err = {{0}};
    cr_assert_eq(vs_wan_stream_open(c->m, c->T, c->h, c->w, &opts, &s, &err), 0, "%s", err.msg);
    const size_t plane = (size_t)c->h * c->w;
    int at = 0;
    for (int k = 0; k < n_chunks; k++) {
        const int n = chunks[k];
        float *part = malloc((size_t)c->z * n * plane * sizeof *part);
        for (int ch = 0; ch < c->z; ch++)
            memcpy(part + (size_t)ch * n * plane, c->latents + ((size_t)ch * c->T + at) * plane,
                   (size_t)n * plane * sizeof *part);
        cr_assert_eq(vs_wan_stream_push(s, part, n, out, &err), 0, "%s", err.msg);
        free(part);
        at += n;
    }
    vs_wan_stream_close(s, NULL);
    return out;
}

#endif
