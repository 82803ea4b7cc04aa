/* Loading the Wan decoder: original (ComfyUI wan_2.1_vae) key names and prefixed files give the
 * same decoder as diffusers names; missing, mis-shaped and unexpected tensors and files that are
 * not a Wan decoder fail with messages naming the file and the tensor. */
#include <math.h>
#include <stdio.h>

#include "tests/wan_fixture.h"

enum { BASE = 2, Z = 4, T = 2, LH = 3, LW = 2 };

/* Original (Wan-Video) name of diffusers tensor `d`, for the fixture's 4 up blocks of 3 ResNets
 * with resamplers on the first three. */
static void original_name(const char *d, char *out, size_t len)
{
    static const char *const parts[][2] = {
        {"norm1.gamma", "residual.0.gamma"}, {"conv1.", "residual.2."},
        {"norm2.gamma", "residual.3.gamma"}, {"conv2.", "residual.6."},
        {"conv_shortcut.", "shortcut."},
    };
    int i, j, n = 0;
    const char *rest = NULL;
    char module[64];
    if (sscanf(d, "decoder.mid_block.resnets.%d.%n", &i, &n) == 1 && n)
        snprintf(module, sizeof module, "decoder.middle.%d.", 2 * i), rest = d + n;
    else if (sscanf(d, "decoder.mid_block.attentions.0.%n", &n) == 0 && n) {
        snprintf(out, len, "decoder.middle.1.%s", d + n);
        return;
    } else if (sscanf(d, "decoder.up_blocks.%d.resnets.%d.%n", &i, &j, &n) == 2 && n)
        snprintf(module, sizeof module, "decoder.upsamples.%d.", 4 * i + j), rest = d + n;
    else if (sscanf(d, "decoder.up_blocks.%d.upsamplers.0.%n", &i, &n) == 1 && n) {
        snprintf(out, len, "decoder.upsamples.%d.%s", 4 * i + 3, d + n);
        return;
    } else if (!strncmp(d, "post_quant_conv.", 16)) {
        snprintf(out, len, "conv2.%s", d + 16);
        return;
    } else if (!strncmp(d, "decoder.conv_in.", 16)) {
        snprintf(out, len, "decoder.conv1.%s", d + 16);
        return;
    } else if (!strcmp(d, "decoder.norm_out.gamma")) {
        snprintf(out, len, "decoder.head.0.gamma");
        return;
    } else if (!strncmp(d, "decoder.conv_out.", 17)) {
        snprintf(out, len, "decoder.head.2.%s", d + 17);
        return;
    } else {
        cr_assert_fail("unmapped tensor %s", d);
    }
    for (size_t p = 0; p < sizeof parts / sizeof parts[0]; p++)
        if (!strncmp(rest, parts[p][0], strlen(parts[p][0]))) {
            snprintf(out, len, "%s%s%s", module, parts[p][1], rest + strlen(parts[p][0]));
            return;
        }
    cr_assert_fail("unmapped tensor %s", d);
}

/* Rewrites safetensors file `in` to `out` with every tensor renamed (original style when
 * `original`) and `prefix` prepended; the data area is copied unchanged. */
static void rename_file(const char *in, const char *out, bool original, const char *prefix)
{
    FILE *f = fopen(in, "rb");
    cr_assert(f);
    unsigned char len8[8];
    cr_assert_eq(fread(len8, 1, 8, f), 8);
    size_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | len8[i];
    char *text = calloc(1, hlen + 1);
    cr_assert_eq(fread(text, 1, hlen, f), hlen);
    json_error_t je;
    json_t *hdr = json_loads(text, 0, &je), *renamed = json_object();
    cr_assert(hdr, "%s", je.text);
    const char *key;
    json_t *val;
    json_object_foreach(hdr, key, val) {
        char name[256], full[300];
        if (!strcmp(key, "__metadata__")) {
            json_object_set(renamed, key, val);
            continue;
        }
        if (original)
            original_name(key, name, sizeof name);
        else
            snprintf(name, sizeof name, "%s", key);
        snprintf(full, sizeof full, "%s%s", prefix, name);
        json_object_set(renamed, full, val);
    }
    char *new_text = json_dumps(renamed, JSON_COMPACT);
    size_t nlen = strlen(new_text), padded = (nlen + 7) / 8 * 8;
    FILE *g = fopen(out, "wb");
    cr_assert(g);
    for (int i = 0; i < 8; i++)
        fputc((int)(padded >> (8 * i) & 0xff), g);
    fwrite(new_text, 1, nlen, g);
    for (size_t i = nlen; i < padded; i++)
        fputc(' ', g);
    char buf[65536];
    size_t got;
    while ((got = fread(buf, 1, sizeof buf, f)) > 0)
        fwrite(buf, 1, got, g);
    cr_assert_eq(fclose(g), 0);
    fclose(f);
    free(text);
    free(new_text);
    json_decref(hdr);
    json_decref(renamed);
}

static float *decode_file(const char *path, size_t *n)
{
    struct vs_wan_model *m;
    struct vs_err err = {{0}};
    cr_assert_eq(vs_wan_load(path, &m, &err), 0, "%s", err.msg);
    *n = (size_t)3 * vs_wan_out_frames(m, T) * LH * 8 * LW * 8;
    float *lat = wf_latents((size_t)Z * T * LH * LW, 3), *out = malloc(*n * sizeof *out);
    struct vs_wan_opts opts = {0};
    cr_assert_eq(vs_wan_decode(m, lat, T, LH, LW, &opts, out, NULL, &err), 0, "%s", err.msg);
    vs_wan_free(m);
    free(lat);
    return out;
}

Test(wan_weights, original_names_and_prefixes_load_the_same_decoder)
{
    json_t *man = wf_manifest(BASE, Z);
    char diffusers[64];
    snprintf(diffusers, sizeof diffusers, "%s", wf_write(man));
    json_decref(man);
    size_t n;
    float *ref = decode_file(diffusers, &n);
    const struct { bool original; const char *prefix; } variants[] = {
        {true, ""}, {true, "vae."}, {false, "first_stage_model."}};
    for (size_t v = 0; v < 3; v++) {
        char path[80];
        snprintf(path, sizeof path, "%s.renamed", diffusers);
        rename_file(diffusers, path, variants[v].original, variants[v].prefix);
        size_t n2;
        float *out = decode_file(path, &n2);
        unlink(path);
        cr_assert_eq(n2, n);
        cr_expect_arr_eq(out, ref, n * sizeof *out, "variant %zu (%s, prefix '%s') differs", v,
                         variants[v].original ? "original" : "diffusers", variants[v].prefix);
        free(out);
    }
    unlink(diffusers);
    free(ref);
}

/* Loads the fixture manifest after `edit`; returns the loader's message (static). */
static const char *load_error(void (*edit)(json_t *man))
{
    static struct vs_err err;
    json_t *man = wf_manifest(BASE, Z);
    edit(man);
    const char *path = wf_write(man);
    json_decref(man);
    struct vs_wan_model *m = NULL;
    memset(&err, 0, sizeof err);
    int rc = vs_wan_load(path, &m, &err);
    unlink(path);
    cr_expect_eq(rc, -1);
    cr_expect_null(m);
    return err.msg;
}

static void drop_bias(json_t *man)
{
    json_object_del(man, "decoder.up_blocks.1.resnets.2.conv2.bias");
}

static void wrong_in_channels(json_t *man)
{
    json_object_set_new(man, "decoder.up_blocks.1.resnets.1.conv1.weight",
                        json_pack("[iiiii]", 8, 6, 3, 3, 3));
}

static void extra_tensor(json_t *man)
{
    json_object_set_new(man, "decoder.up_blocks.0.resnets.0.norm3.gamma", json_pack("[i]", 8));
}

static void no_upsamplers(json_t *man)
{
    const char *key;
    void *tmp;
    json_t *val;
    json_object_foreach_safe(man, tmp, key, val) {
        (void)val;
        if (strstr(key, "up_blocks."))
            json_object_del(man, key);
    }
}

static void wrong_out_channels(json_t *man)
{
    json_object_set_new(man, "decoder.conv_out.weight", json_pack("[iiiii]", 4, 2, 3, 3, 3));
    json_object_set_new(man, "decoder.conv_out.bias", json_pack("[i]", 4));
}

Test(wan_weights, bad_tensors_are_named)
{
    const char *msg = load_error(drop_bias);
    cr_expect(strstr(msg, "missing tensor 'decoder.up_blocks.1.resnets.2.conv2.bias'"), "%s", msg);
    msg = load_error(wrong_in_channels);
    cr_expect(strstr(msg, "tensor 'decoder.up_blocks.1.resnets.1.conv1.weight' has shape "
                          "[8, 6, 3, 3, 3], expected [8, 8, 3, 3, 3]"), "%s", msg);
    msg = load_error(extra_tensor);
    cr_expect(strstr(msg, "unexpected tensor 'decoder.up_blocks.0.resnets.0.norm3.gamma'"), "%s",
              msg);
    msg = load_error(no_upsamplers);
    cr_expect(strstr(msg, "missing tensor 'decoder.norm_out.gamma'") ||
              strstr(msg, "no upsampling layers"), "%s", msg);
    msg = load_error(wrong_out_channels);
    cr_expect(strstr(msg, "'decoder.conv_out.weight' has 4 output channels, expected 3"), "%s",
              msg);
}

Test(wan_weights, other_files_are_refused_with_the_reason)
{
    struct vs_wan_model *m = NULL;
    struct vs_err err = {{0}};
    cr_expect_eq(vs_wan_load(VS_SOURCE_DIR "/tests/golden/sd_small.vae.safetensors", &m, &err), -1);
    cr_expect(strstr(err.msg, "decoder.conv_in.weight") && strstr(err.msg, "sd_small.vae"), "%s",
              err.msg);
    cr_expect_eq(vs_wan_load("/nonexistent/wan.safetensors", &m, &err), -1);
    cr_expect(strstr(err.msg, "/nonexistent/wan.safetensors: cannot open"), "%s", err.msg);
    char path[] = "/tmp/vs_wan_trunc_XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, "\x10\0\0", 3), 3);
    close(fd);
    cr_expect_eq(vs_wan_load(path, &m, &err), -1);
    cr_expect(strstr(err.msg, "truncated"), "%s", err.msg);
    unlink(path);
    cr_expect_null(m);
}

Test(wan_weights, unscale_applies_the_wan21_latent_statistics)
{
    struct vs_wan_model *m = wf_model(BASE, 16);
    const int n = 2; /* pixels per channel */
    float lat[16 * 2];
    for (int c = 0; c < 16; c++)
        lat[c * n] = 0.0f, lat[c * n + 1] = 1.0f;
    struct vs_err err = {{0}};
    cr_assert_eq(vs_wan_unscale(m, lat, 1, 1, n, &err), 0, "%s", err.msg);
    /* z * std + mean with ANCHORS 3.2's values: channel 0 (-0.7571, 2.8184), 7 (1.5508, 2.0743). */
    cr_expect_float_eq(lat[0], -0.7571f, 1e-6);
    cr_expect_float_eq(lat[1], -0.7571f + 2.8184f, 1e-6);
    cr_expect_float_eq(lat[7 * n], 1.5508f, 1e-6);
    cr_expect_float_eq(lat[7 * n + 1], 1.5508f + 2.0743f, 1e-6);
    vs_wan_free(m);

    m = wf_model(BASE, Z);
    cr_expect_eq(vs_wan_unscale(m, lat, 1, 1, n, &err), -1);
    cr_expect(strstr(err.msg, "for 16 channels, the decoder has 4"), "%s", err.msg);
    vs_wan_free(m);
}
