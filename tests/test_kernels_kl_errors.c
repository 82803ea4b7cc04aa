/* Bad weight files give precise messages naming the file and tensor, never a crash: truncated
 * files, bad headers, unsupported dtypes, missing, mis-shaped and extra tensors; prefixes
 * `vae.`/`first_stage_model.` are found. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kernels/kl_decoder.h"
#include "kernels/safetensors.h"
#include "tests/golden_weights.h"

#define GOLDEN VS_SOURCE_DIR "/tests/golden/"

static char path[64];

static void fresh_path(void)
{
    strcpy(path, "/tmp/vs_kl_err_XXXXXX");
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    close(fd);
}

static void cleanup(void)
{
    unlink(path);
}

TestSuite(kl_errors, .init = fresh_path, .fini = cleanup);

static const int widths[2] = {8, 16};

/* The small test decoder's manifest, edited by `edit`, written with generated weights. */
static void write_model(void (*edit)(json_t *man))
{
    char *text = gw_kl_manifest(4, 2, widths, 1, 1, 1), msg[256];
    json_t *man = json_loads(text, 0, NULL);
    free(text);
    if (edit)
        edit(man);
    text = json_dumps(man, JSON_COMPACT);
    json_decref(man);
    cr_assert_eq(gw_write_safetensors(path, text, "{\"norm_num_groups\": 4}", msg, sizeof msg), 0,
                 "%s", msg);
    free(text);
}

static void load_fails_with(const char *expected)
{
    struct vs_kl_decoder d;
    struct vs_err err;
    cr_assert_eq(vs_kl_load(&d, path, VS_ARCH_AUTO, &err), -1, "loading should fail with: %s",
                 expected);
    cr_assert(strstr(err.msg, expected), "message\n  %s\nlacks\n  %s", err.msg, expected);
    cr_assert(strstr(err.msg, path), "message names no file: %s", err.msg);
}

static void copy_prefix(const char *src, long bytes)
{
    FILE *in = fopen(src, "rb"), *out = fopen(path, "wb");
    cr_assert(in && out);
    for (long i = 0; i < bytes; i++) {
        int c = fgetc(in);
        cr_assert_neq(c, EOF);
        fputc(c, out);
    }
    fclose(in);
    fclose(out);
}

Test(kl_errors, truncated_data_names_the_tensor)
{
    copy_prefix(GOLDEN "sd_small.vae.safetensors", 200000);
    load_fails_with("truncated file: tensor '");
}

Test(kl_errors, truncated_header)
{
    copy_prefix(GOLDEN "sd_small.vae.safetensors", 100);
    load_fails_with("truncated file: header length");
    copy_prefix(GOLDEN "sd_small.vae.safetensors", 5);
    load_fails_with("truncated file: 5 bytes, not even the 8-byte header length");
}

static void write_raw(const char *header)
{
    FILE *f = fopen(path, "wb");
    size_t n = strlen(header);
    unsigned char len8[8] = {0};
    for (int i = 0; i < 8; i++)
        len8[i] = (unsigned char)(n >> (8 * i));
    fwrite(len8, 1, 8, f);
    fwrite(header, 1, n, f);
    for (int i = 0; i < 1024; i++)
        fputc(0, f);
    fclose(f);
}

Test(kl_errors, bad_json_header)
{
    write_raw("{\"decoder.conv_in.weight\": {\"dtype\": ");
    load_fails_with("bad header: JSON error at byte");
}

Test(kl_errors, unsupported_dtype_names_tensor_and_dtype)
{
    write_raw("{\"decoder.conv_in.weight\": {\"dtype\": \"I64\", \"shape\": [2, 4, 3, 3], "
              "\"data_offsets\": [0, 576]}}");
    load_fails_with(
        "tensor 'decoder.conv_in.weight' has dtype I64; only F32, F16 and BF16 are supported");
}

Test(kl_errors, size_mismatch_in_header)
{
    write_raw("{\"decoder.conv_in.weight\": {\"dtype\": \"F32\", \"shape\": [2, 4, 3, 3], "
              "\"data_offsets\": [0, 64]}}");
    load_fails_with(
        "tensor 'decoder.conv_in.weight' spans 64 bytes but F32 [2, 4, 3, 3] needs 288");
}

Test(kl_errors, no_decoder_at_all)
{
    write_raw("{\"encoder.conv_in.weight\": {\"dtype\": \"F32\", \"shape\": [4], "
              "\"data_offsets\": [0, 16]}}");
    load_fails_with("no decoder found: missing tensor 'decoder.conv_in.weight'");
}

static void drop_norm2_bias(json_t *m)
{
    json_object_del(m, "decoder.up_blocks.0.resnets.1.norm2.bias");
}

Test(kl_errors, missing_tensor_named_with_shape)
{
    write_model(drop_norm2_bias);
    load_fails_with(
        "missing tensor 'decoder.up_blocks.0.resnets.1.norm2.bias' (expected shape [16])");
}

static void reshape_conv(json_t *m)
{
    json_object_set_new(m, "decoder.up_blocks.1.resnets.0.conv2.weight",
                        json_pack("[iiii]", 8, 8, 5, 5));
}

Test(kl_errors, misshaped_tensor_shows_both_shapes)
{
    write_model(reshape_conv);
    load_fails_with("tensor 'decoder.up_blocks.1.resnets.0.conv2.weight' has shape [8, 8, 5, 5], "
                    "expected [8, 8, 3, 3]");
}

static void add_extra(json_t *m)
{
    json_object_set_new(m, "decoder.mid_block.resnets.0.extra.weight", json_pack("[i]", 3));
}

Test(kl_errors, extra_decoder_tensor_is_reported)
{
    write_model(add_extra);
    load_fails_with("extra tensor 'decoder.mid_block.resnets.0.extra.weight' is not part of an "
                    "AutoencoderKL decoder (1 extra in all)");
}

static void prefix_vae(json_t *m)
{
    json_t *copy = json_deep_copy(m);
    const char *k;
    json_t *v;
    json_object_clear(m);
    json_object_foreach(copy, k, v) {
        char name[256];
        snprintf(name, sizeof name, "vae.%s", k);
        json_object_set(m, name, v);
    }
    json_object_set_new(m, "encoder.conv_in.weight", json_pack("[i]", 2)); /* ignored */
    json_decref(copy);
}

Test(kl_errors, vae_prefix_and_encoder_tensors_are_accepted)
{
    write_model(prefix_vae);
    struct vs_kl_decoder d;
    struct vs_err err;
    cr_assert_eq(vs_kl_load(&d, path, VS_ARCH_AUTO, &err), 0, "%s", err.msg);
    cr_assert_eq(d.latent_channels, 4);
    cr_assert_eq(d.groups, 4);
    cr_assert_eq(d.nup, 2);
    cr_assert_eq(d.upscale, 2);
    vs_kl_free(&d);
}

Test(kl_errors, arch_with_wrong_latent_channels)
{
    write_model(NULL);
    struct vs_kl_decoder d;
    struct vs_err err;
    cr_assert_eq(vs_kl_load(&d, path, VS_ARCH_FLUX, &err), -1);
    cr_assert(strstr(err.msg, "--arch flux expects 16 latent channels but the decoder takes 4"),
              "%s", err.msg);
}

Test(kl_errors, groups_must_divide_channels)
{
    char *text = gw_kl_manifest(4, 2, widths, 1, 1, 1), msg[256];
    cr_assert_eq(gw_write_safetensors(path, text, "{\"norm_num_groups\": 3}", msg, sizeof msg), 0);
    free(text);
    load_fails_with("has 16 channels, not divisible by norm_num_groups 3");
}
