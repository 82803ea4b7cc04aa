/* Loader for the AutoencoderKL decoder. Names are built per key style by small helpers, so one
 * walk over the structure serves both styles; LDM up blocks are numbered in reverse
 * (up.N-1 runs first) and call the shortcut `nin_shortcut`, the final norm `norm_out`. */
#include "kernels/kl_decoder.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu/attention.h"
#include "kernels/cpu/groupnorm.h"
#include "kernels/weights.h"

#define MAX_EXTRA 8

struct loader {
    struct vs_weights w;
    int original; /* LDM key names */
    struct vs_err *err;
};

static int load_conv(struct loader *L, struct vs_kl_conv *c, const char *base, int cout, int cin,
                     int k)
{
    char name[320]; /* base (< 256) + suffix */
    snprintf(name, sizeof name, "%s.weight", base);
    int64_t ws[4] = {cout, cin, k, k}, bs[1] = {cout};
    if (!(c->w = vs_weights_get(&L->w, name, k == 1 ? 2 : 4, ws, L->err)))
        return -1;
    snprintf(name, sizeof name, "%s.bias", base);
    if (!(c->b = vs_weights_get(&L->w, name, 1, bs, L->err)))
        return -1;
    c->cout = cout;
    c->cin = cin;
    c->k = k;
    return 0;
}

static int load_norm(struct loader *L, struct vs_kl_norm *n, const char *base, int c)
{
    char name[320]; /* base (< 256) + suffix */
    int64_t s[1] = {c};
    snprintf(name, sizeof name, "%s.weight", base);
    if (!(n->gamma = vs_weights_get(&L->w, name, 1, s, L->err)))
        return -1;
    snprintf(name, sizeof name, "%s.bias", base);
    if (!(n->beta = vs_weights_get(&L->w, name, 1, s, L->err)))
        return -1;
    n->c = c;
    return 0;
}

/* Output channels of a conv from its weight's first dimension; -1 (error set) if missing. */
static int conv_out_channels(struct loader *L, const char *base, int dim)
{
    char name[320]; /* base (< 256) + suffix */
    snprintf(name, sizeof name, "%s.weight", base);
    const struct vs_st_tensor *t = vs_weights_peek(&L->w, name);
    if (!t || t->ndim <= dim)
        return vs_err_set(L->err, "%s: missing tensor '%s%s'", L->w.file.path, L->w.prefix,
                          name);
    return (int)t->shape[dim];
}

/* Whether the tensor named by fmt (with up to two %d filled from a, b) is in the file. */
static int exists(struct loader *L, const char *fmt, int a, int b)
{
    char name[256];
    snprintf(name, sizeof name, fmt, a, b);
    return vs_weights_peek(&L->w, name) != NULL;
}

static int load_resnet(struct loader *L, struct vs_kl_resnet *r, const char *base, int cin)
{
    char n[256];
    snprintf(n, sizeof n, "%s.conv1", base);
    int cout = conv_out_channels(L, n, 0);
    if (cout < 0)
        return -1;
    snprintf(n, sizeof n, "%s.norm1", base);
    if (load_norm(L, &r->norm1, n, cin))
        return -1;
    snprintf(n, sizeof n, "%s.conv1", base);
    if (load_conv(L, &r->conv1, n, cout, cin, 3))
        return -1;
    snprintf(n, sizeof n, "%s.norm2", base);
    if (load_norm(L, &r->norm2, n, cout))
        return -1;
    snprintf(n, sizeof n, "%s.conv2", base);
    if (load_conv(L, &r->conv2, n, cout, cout, 3))
        return -1;
    if (cin != cout) {
        snprintf(n, sizeof n, "%s.%s", base, L->original ? "nin_shortcut" : "conv_shortcut");
        if (load_conv(L, &r->shortcut, n, cout, cin, 1))
            return -1;
    }
    return 0;
}

static int load_attn(struct loader *L, struct vs_kl_attn *a, int c)
{
    /* diffusers, old diffusers, LDM */
    static const char *const names[3][5] = {
        {"group_norm", "to_q", "to_k", "to_v", "to_out.0"},
        {"group_norm", "query", "key", "value", "proj_attn"},
        {"norm", "q", "k", "v", "proj_out"},
    };
    const char *base = L->original ? "decoder.mid.attn_1" : "decoder.mid_block.attentions.0";
    int style = L->original ? 2 : exists(L, "decoder.mid_block.attentions.0.query.weight", 0, 0);
    char n[256];
    struct vs_kl_conv *convs[4] = {&a->q, &a->k, &a->v, &a->out};
    snprintf(n, sizeof n, "%s.%s", base, names[style][0]);
    if (load_norm(L, &a->norm, n, c))
        return -1;
    for (int i = 0; i < 4; i++) {
        snprintf(n, sizeof n, "%s.%s", base, names[style][i + 1]);
        if (load_conv(L, convs[i], n, c, c, 1))
            return -1;
    }
    return 0;
}

/* norm_num_groups and scaling from the `config` metadata (diffusers config JSON), if any. */
static void read_config(struct loader *L, struct vs_kl_decoder *d)
{
    const char *cfg = vs_st_meta(&L->w.file, "config");
    json_t *root = cfg ? json_loads(cfg, 0, NULL) : NULL;
    if (!root)
        return;
    json_t *g = json_object_get(root, "norm_num_groups");
    if (json_is_integer(g))
        d->groups = (int)json_integer_value(g);
    json_t *s = json_object_get(root, "scaling_factor");
    json_t *sh = json_object_get(root, "shift_factor");
    if (json_is_number(s)) {
        d->scaling_factor = (float)json_number_value(s);
        d->shift_factor = json_is_number(sh) ? (float)json_number_value(sh) : 0.0f;
        d->scaling_from_config = 1;
    }
    json_decref(root);
}

static int check_groups(struct loader *L, const struct vs_kl_decoder *d, int c, const char *what)
{
    if (d->groups < 1 || d->groups > VS_GN_MAX_GROUPS)
        return vs_err_set(L->err, "%s: norm_num_groups %d in the config is outside 1..%d",
                          L->w.file.path, d->groups, VS_GN_MAX_GROUPS);
    if (c % d->groups)
        return vs_err_set(L->err, "%s: %s has %d channels, not divisible by norm_num_groups %d",
                          L->w.file.path, what, c, d->groups);
    return 0;
}

static int load_up_blocks(struct loader *L, struct vs_kl_decoder *d, int *channels)
{
    const char *res_fmt = L->original ? "decoder.up.%d.block.%d.conv1.weight"
                                      : "decoder.up_blocks.%d.resnets.%d.conv1.weight";
    while (exists(L, res_fmt, d->nup, 0))
        d->nup++;
    if (!d->nup)
        return vs_err_set(L->err, "%s: missing tensor '%s%s' (no up blocks)", L->w.file.path,
                          L->w.prefix, L->original ? "decoder.up.0.block.0.conv1.weight"
                                                   : "decoder.up_blocks.0.resnets.0.conv1.weight");
    if (!(d->up = calloc((size_t)d->nup, sizeof *d->up)))
        return vs_err_set(L->err, "out of memory loading %s", L->w.file.path);
    d->upscale = 1;
    char base[256];
    for (int i = 0; i < d->nup; i++) {
        int file_idx = L->original ? d->nup - 1 - i : i;
        struct vs_kl_up *u = &d->up[i];
        while (exists(L, res_fmt, file_idx, u->nres))
            u->nres++;
        if (!(u->res = calloc((size_t)u->nres, sizeof *u->res)))
            return vs_err_set(L->err, "out of memory loading %s", L->w.file.path);
        for (int j = 0; j < u->nres; j++) {
            snprintf(base, sizeof base,
                     L->original ? "decoder.up.%d.block.%d" : "decoder.up_blocks.%d.resnets.%d",
                     file_idx, j);
            if (check_groups(L, d, *channels, base) || load_resnet(L, &u->res[j], base, *channels))
                return -1;
            *channels = u->res[j].conv1.cout;
            if (check_groups(L, d, *channels, base))
                return -1;
        }
        snprintf(base, sizeof base,
                 L->original ? "decoder.up.%d.upsample.conv"
                             : "decoder.up_blocks.%d.upsamplers.0.conv",
                 file_idx);
        if (exists(L, L->original ? "decoder.up.%d.upsample.conv.weight"
                                  : "decoder.up_blocks.%d.upsamplers.0.conv.weight", file_idx, 0)) {
            if (load_conv(L, &u->upconv, base, *channels, *channels, 3))
                return -1;
            d->upscale *= 2;
        }
    }
    return 0;
}

int vs_kl_load(struct vs_kl_decoder *d, const char *path, enum vs_arch arch, struct vs_err *err)
{
    struct vs_weights w;
    memset(d, 0, sizeof *d);
    if (vs_weights_open(&w, path, err))
        return -1;
    int rc = vs_kl_load_weights(d, &w, arch, err);
    vs_weights_close(&w);
    return rc;
}

int vs_kl_load_weights(struct vs_kl_decoder *d, struct vs_weights *w, enum vs_arch arch,
                       struct vs_err *err)
{
    memset(d, 0, sizeof *d);
    /* the loader works on a copy of the tensor table; use flags go back to w at the end */
    struct loader L = {.w = *w, .err = err};
    const char *path = w->file.path;
    static const char *const markers[] = {"decoder.conv_in.weight"};
    if (vs_weights_detect_prefix(&L.w, markers, 1, err))
        goto fail;
    L.original = !vs_weights_peek(&L.w, "decoder.mid_block.resnets.0.conv1.weight") &&
                 vs_weights_peek(&L.w, "decoder.mid.block_1.conv1.weight");
    snprintf(d->key_style, sizeof d->key_style, "%s", L.original ? "original" : "diffusers");
    d->groups = 32;
    d->eps = 1e-6f;
    read_config(&L, d);

    const struct vs_st_tensor *ci = vs_weights_peek(&L.w, "decoder.conv_in.weight");
    if (ci->ndim != 4) {
        vs_err_set(err, "%s: tensor '%s' has %d dimensions, expected 4 (a 2-D conv)", path,
                   ci->name, ci->ndim);
        goto fail;
    }
    int ch = (int)ci->shape[0];
    d->latent_channels = (int)ci->shape[1];
    if (vs_weights_peek(&L.w, "post_quant_conv.weight") &&
        load_conv(&L, &d->post_quant, "post_quant_conv", d->latent_channels, d->latent_channels, 1))
        goto fail;
    if (load_conv(&L, &d->conv_in, "decoder.conv_in", ch, d->latent_channels, 3))
        goto fail;
    for (int i = 0; i < 2; i++) {
        char base[64];
        snprintf(base, sizeof base,
                 L.original ? "decoder.mid.block_%d" : "decoder.mid_block.resnets.%d",
                 L.original ? i + 1 : i);
        if (check_groups(&L, d, ch, base) || load_resnet(&L, &d->mid[i], base, ch))
            goto fail;
        if (d->mid[i].conv1.cout != ch) {
            vs_err_set(err, "%s: mid-block ResNet '%s' changes channels %d -> %d", path, base, ch,
                       d->mid[i].conv1.cout);
            goto fail;
        }
        if (i == 0) {
            d->has_attn =
                L.original ? exists(&L, "decoder.mid.attn_1.norm.weight", 0, 0)
                           : exists(&L, "decoder.mid_block.attentions.0.group_norm.weight", 0, 0);
            if (d->has_attn && ch > VS_ATTN_MAX_D) {
                vs_err_set(err,
                           "%s: mid-block attention over %d channels; at most %d are supported",
                           path, ch, VS_ATTN_MAX_D);
                goto fail;
            }
            if (d->has_attn && load_attn(&L, &d->attn, ch))
                goto fail;
        }
    }
    if (load_up_blocks(&L, d, &ch))
        goto fail;
    if (check_groups(&L, d, ch, "the output norm") ||
        load_norm(&L, &d->norm_out, L.original ? "decoder.norm_out" : "decoder.conv_norm_out", ch))
        goto fail;
    if (load_conv(&L, &d->conv_out, "decoder.conv_out", 3, ch, 3)) /* RGB */
        goto fail;

    const char *extra[MAX_EXTRA];
    size_t n_extra = vs_weights_unused(&L.w, "decoder.", extra, MAX_EXTRA);
    n_extra += vs_weights_unused(&L.w, "post_quant_conv.",
                                 extra + (n_extra < MAX_EXTRA ? n_extra : MAX_EXTRA),
                                 n_extra < MAX_EXTRA ? MAX_EXTRA - n_extra : 0);
    if (n_extra) {
        vs_err_set(
            err, "%s: extra tensor '%s' is not part of an AutoencoderKL decoder (%zu extra in all)",
            path, extra[0], n_extra);
        goto fail;
    }

    const struct vs_arch_info *info = vs_arch_info(arch);
    if (arch == VS_ARCH_AUTO)
        /* 4 channels: SD or SDXL; 16: SD3 or Flux; the shapes cannot tell them apart */
        d->arch = VS_ARCH_AUTO;
    else if (info->latent_channels != d->latent_channels) {
        vs_err_set(err, "%s: --arch %s expects %d latent channels but the decoder takes %d", path,
                   info->name, info->latent_channels, d->latent_channels);
        goto fail;
    } else
        d->arch = arch;
    if (!d->scaling_from_config) {
        d->scaling_factor = info->scaling_factor;
        d->shift_factor = info->shift_factor;
    }
    *w = L.w;
    return 0;
fail:
    *w = L.w;
    vs_kl_free(d);
    return -1;
}

static void free_conv(struct vs_kl_conv *c)
{
    free(c->w);
    free(c->b);
}

static void free_norm(struct vs_kl_norm *n)
{
    free(n->gamma);
    free(n->beta);
}

static void free_resnet(struct vs_kl_resnet *r)
{
    free_norm(&r->norm1);
    free_norm(&r->norm2);
    free_conv(&r->conv1);
    free_conv(&r->conv2);
    free_conv(&r->shortcut);
}

void vs_kl_free(struct vs_kl_decoder *d)
{
    free_conv(&d->post_quant);
    free_conv(&d->conv_in);
    for (int i = 0; i < 2; i++)
        free_resnet(&d->mid[i]);
    free_norm(&d->attn.norm);
    free_conv(&d->attn.q);
    free_conv(&d->attn.k);
    free_conv(&d->attn.v);
    free_conv(&d->attn.out);
    for (int i = 0; i < d->nup; i++) {
        for (int j = 0; j < d->up[i].nres; j++)
            free_resnet(&d->up[i].res[j]);
        free(d->up[i].res);
        free_conv(&d->up[i].upconv);
    }
    free(d->up);
    free_norm(&d->norm_out);
    free_conv(&d->conv_out);
    memset(d, 0, sizeof *d);
}
