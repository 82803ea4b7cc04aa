/* Golden weight generator v1 (tools/golden/FORMAT.md): deterministic decoder weights from
 * tensor names, so the full-width golden cases need no weight file in the repository.
 *
 * gw_write_safetensors writes every tensor of a manifest ({name: shape} JSON, diffusers names)
 * as F32 into a safetensors file with the given `config` metadata, to be loaded through the
 * normal loader. Values: seed = FNV-1a-64(name); u = (splitmix64(seed + i) >> 40) * 2^-24 * 2 - 1;
 * norm scales 1 + 0.1u, rank >= 2: u / sqrt(fan_in), biases 0.1u (double, then float). */
#ifndef VS_TESTS_GOLDEN_WEIGHTS_H
#define VS_TESTS_GOLDEN_WEIGHTS_H

#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline uint64_t gw_fnv1a(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ull;
    }
    return h;
}

static inline uint64_t gw_splitmix64(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static inline int gw_ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

/* Fills out[numel] for tensor `name` of the given shape. */
static inline void gw_generate(const char *name, int rank, const int64_t *shape, float *out)
{
    size_t numel = 1;
    for (int i = 0; i < rank; i++)
        numel *= (size_t)shape[i];
    uint64_t seed = gw_fnv1a(name);
    int norm_scale = gw_ends_with(name, ".gamma") ||
                     (strstr(name, "norm") && gw_ends_with(name, ".weight"));
    double fan_in = rank >= 2 ? (double)numel / (double)shape[0] : 1;
    double s = 1.0 / sqrt(fan_in);
    for (size_t i = 0; i < numel; i++) {
        double u = (double)(gw_splitmix64(seed + i) >> 40) * (1.0 / 16777216.0) * 2.0 - 1.0;
        double v;
        if (norm_scale) {
            double t = 0.1 * u;
            v = 1.0 + t;
        } else if (rank >= 2)
            v = u * s;
        else
            v = 0.1 * u;
        out[i] = (float)v;
    }
}

/* Returns 0, or -1 with a message in msg. */
static inline int gw_write_safetensors(const char *path, const char *manifest_json,
                                       const char *config_json, char *msg, size_t msglen)
{
    json_error_t je;
    json_t *man = json_loads(manifest_json, 0, &je);
    if (!json_is_object(man)) {
        snprintf(msg, msglen, "weights_manifest is not a JSON object: %s", je.text);
        json_decref(man);
        return -1;
    }
    json_t *hdr = json_object();
    json_object_set_new(hdr, "__metadata__", json_pack("{ss}", "config", config_json));
    const char *name;
    json_t *shape;
    size_t offset = 0;
    json_object_foreach(man, name, shape) {
        size_t numel = 1;
        for (size_t i = 0; i < json_array_size(shape); i++)
            numel *= (size_t)json_integer_value(json_array_get(shape, i));
        json_object_set_new(hdr, name, json_pack("{ss sO s[II]}", "dtype", "F32", "shape", shape,
                                                 "data_offsets", (json_int_t)offset,
                                                 (json_int_t)(offset + 4 * numel)));
        offset += 4 * numel;
    }
    char *text = json_dumps(hdr, JSON_COMPACT);
    size_t hlen = strlen(text), padded = (hlen + 7) / 8 * 8;
    FILE *f = fopen(path, "wb");
    int ok = f != NULL;
    unsigned char len8[8];
    for (int i = 0; i < 8; i++)
        len8[i] = (unsigned char)(padded >> (8 * i));
    ok = ok && fwrite(len8, 1, 8, f) == 8 && fwrite(text, 1, hlen, f) == hlen;
    for (size_t i = hlen; ok && i < padded; i++)
        ok = fputc(' ', f) != EOF;
    json_object_foreach(man, name, shape) {
        int rank = (int)json_array_size(shape);
        int64_t dims[8];
        size_t numel = 1;
        for (int i = 0; i < rank && i < 8; i++)
            numel *= (size_t)(dims[i] = json_integer_value(json_array_get(shape, (size_t)i)));
        float *buf = malloc(numel * sizeof *buf);
        if (!ok || !buf) {
            free(buf);
            ok = 0;
            break;
        }
        gw_generate(name, rank, dims, buf);
        ok = fwrite(buf, sizeof *buf, numel, f) == numel;
        free(buf);
    }
    if (f && fclose(f))
        ok = 0;
    free(text);
    json_decref(hdr);
    json_decref(man);
    if (!ok)
        snprintf(msg, msglen, "%s: cannot write generated weights", path);
    return ok ? 0 : -1;
}

/* Manifest ({name: shape} JSON, diffusers names) of an AutoencoderKL decoder with the given
 * config, for test models of any size: up blocks run widths[nblocks-1] .. widths[0] as diffusers
 * does (reversed block_out_channels), each with layers + 1 ResNets and an upsampler except the
 * last. Caller frees the string. */
/* dst = a + b, cut to len (names here are far shorter). */
static inline void gw_join(char *dst, size_t len, const char *a, const char *b)
{
    size_t na = strlen(a), nb = strlen(b);
    na = na < len - 1 ? na : len - 1;
    nb = nb < len - 1 - na ? nb : len - 1 - na;
    memcpy(dst, a, na);
    memcpy(dst + na, b, nb);
    dst[na + nb] = 0;
}

static inline void gw_add(json_t *m, const char *name, int rank, int a, int b, int c, int d)
{
    json_t *s = json_array();
    int dims[4] = {a, b, c, d};
    for (int i = 0; i < rank; i++)
        json_array_append_new(s, json_integer(dims[i]));
    json_object_set_new(m, name, s);
}

static inline void gw_add_conv(json_t *m, const char *base, int cout, int cin, int k)
{
    char n[256];
    gw_join(n, sizeof n, base, ".weight");
    if (k)
        gw_add(m, n, 4, cout, cin, k, k);
    else
        gw_add(m, n, 2, cout, cin, 0, 0); /* linear */
    gw_join(n, sizeof n, base, ".bias");
    gw_add(m, n, 1, cout, 0, 0, 0);
}

static inline void gw_add_norm(json_t *m, const char *base, int c)
{
    char n[256];
    gw_join(n, sizeof n, base, ".weight");
    gw_add(m, n, 1, c, 0, 0, 0);
    gw_join(n, sizeof n, base, ".bias");
    gw_add(m, n, 1, c, 0, 0, 0);
}

static inline void gw_add_resnet(json_t *m, const char *base, int cin, int cout)
{
    char n[256];
    gw_join(n, sizeof n, base, ".norm1");
    gw_add_norm(m, n, cin);
    gw_join(n, sizeof n, base, ".conv1");
    gw_add_conv(m, n, cout, cin, 3);
    gw_join(n, sizeof n, base, ".norm2");
    gw_add_norm(m, n, cout);
    gw_join(n, sizeof n, base, ".conv2");
    gw_add_conv(m, n, cout, cout, 3);
    if (cin != cout) {
        gw_join(n, sizeof n, base, ".conv_shortcut");
        gw_add_conv(m, n, cout, cin, 1);
    }
}

static inline char *gw_kl_manifest(int zch, int nblocks, const int *widths, int layers,
                                   int post_quant, int attention)
{
    json_t *m = json_object();
    int top = widths[nblocks - 1];
    char n[256];
    if (post_quant)
        gw_add_conv(m, "post_quant_conv", zch, zch, 1);
    gw_add_conv(m, "decoder.conv_in", top, zch, 3);
    for (int i = 0; i < 2; i++) {
        snprintf(n, sizeof n, "decoder.mid_block.resnets.%d", i);
        gw_add_resnet(m, n, top, top);
    }
    if (attention) {
        gw_add_norm(m, "decoder.mid_block.attentions.0.group_norm", top);
        const char *proj[] = {"to_q", "to_k", "to_v", "to_out.0"};
        for (int i = 0; i < 4; i++) {
            snprintf(n, sizeof n, "decoder.mid_block.attentions.0.%s", proj[i]);
            gw_add_conv(m, n, top, top, 0);
        }
    }
    int c = top;
    for (int i = 0; i < nblocks; i++) {
        int out = widths[nblocks - 1 - i];
        for (int j = 0; j <= layers; j++) {
            snprintf(n, sizeof n, "decoder.up_blocks.%d.resnets.%d", i, j);
            gw_add_resnet(m, n, c, out);
            c = out;
        }
        if (i + 1 < nblocks) {
            snprintf(n, sizeof n, "decoder.up_blocks.%d.upsamplers.0.conv", i);
            gw_add_conv(m, n, c, c, 3);
        }
    }
    gw_add_norm(m, "decoder.conv_norm_out", c);
    gw_add_conv(m, "decoder.conv_out", 3, c, 3);
    char *text = json_dumps(m, JSON_COMPACT);
    json_decref(m);
    return text;
}

#endif
