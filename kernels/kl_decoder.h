/* The AutoencoderKL decoder (SD 1.x/2.x, SDXL, SD3, Flux.1): its weights and structure.
 *
 * vs_kl_load reads diffusers or original (LDM) key names, with or without the
 * `first_stage_model.`/`vae.` prefix; the structure (latent channels, post_quant_conv present or
 * not, up blocks, ResNets per block, channel widths, shortcuts, mid attention) comes from tensor
 * shapes; norm_num_groups and the latent scaling come from the file's `config` metadata when
 * present (defaults: 32 groups, the architecture's scaling). Missing, mis-shaped and extra decoder
 * tensors are errors naming the tensor. Weights are held as float32 copies.
 * Up blocks are kept in execution order (diffusers numbering: up_blocks.0 runs first). */
#ifndef VS_KERNELS_KL_DECODER_H
#define VS_KERNELS_KL_DECODER_H

#include "kernels/arch.h"
#include "kernels/error.h"

struct vs_kl_conv {
    float *w, *b; /* [cout][cin][k][k], [cout] */
    int cin, cout, k;
};

struct vs_kl_norm {
    float *gamma, *beta;
    int c;
};

struct vs_kl_resnet {
    struct vs_kl_norm norm1, norm2;
    struct vs_kl_conv conv1, conv2, shortcut; /* shortcut.w NULL: identity */
};

struct vs_kl_attn {
    struct vs_kl_norm norm;
    struct vs_kl_conv q, k, v, out; /* k = 1; applied as token-major linears */
};

struct vs_kl_up {
    int nres;
    struct vs_kl_resnet *res;
    struct vs_kl_conv upconv; /* w NULL: no upsampler */
};

struct vs_kl_decoder {
    enum vs_arch arch; /* as given, or guessed from latent channels (VS_ARCH_AUTO if ambiguous) */
    int latent_channels, groups;
    float eps;
    float scaling_factor, shift_factor;
    int scaling_from_config;
    struct vs_kl_conv post_quant; /* w NULL: absent (SD3, Flux) */
    struct vs_kl_conv conv_in;
    struct vs_kl_resnet mid[2];
    int has_attn;
    struct vs_kl_attn attn;
    int nup;
    struct vs_kl_up *up;
    struct vs_kl_norm norm_out;
    struct vs_kl_conv conv_out;
    int upscale; /* output pixels per latent pixel: 2^(number of upsamplers) */
    char key_style[16]; /* "diffusers" or "original" */
};

/* arch: VS_ARCH_AUTO or the user's choice (sets the default scaling). */
int vs_kl_load(struct vs_kl_decoder *d, const char *path, enum vs_arch arch, struct vs_err *err);
/* The same from opened weights (a file or tensors in memory); w stays the caller's. */
struct vs_weights;
int vs_kl_load_weights(struct vs_kl_decoder *d, struct vs_weights *w, enum vs_arch arch,
                       struct vs_err *err);
void vs_kl_free(struct vs_kl_decoder *d);

#endif
