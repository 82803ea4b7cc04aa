/* SDXL VAE decode (diffusers AutoencoderKL, ANCHORS §3.1) at 1024x1024 in fp16, as PyTorch
 * allocates it with the cudaMallocAsync backend: decoder weights first, then every activation
 * (GroupNorm outputs and statistics, SiLU, convs with cuDNN workspaces, nearest upsampling,
 * the mid-block attention through SDPA's math path with its full score matrix, residual adds)
 * freed when its last holder lets go. Latents and the decoded image stay live at the end, as
 * do the weights. --small decodes 256x256 with the same layers. */
#include <stdio.h>

#include "tools/workloads/ops.h"
#include "tools/workloads/workloads.h"

#define VS_SDXL_GROUPS 32
#define VS_SDXL_LATENT_CH 4
#define VS_SDXL_MID_CH 512
#define VS_SDXL_OUT_CH 3
#define VS_SDXL_RESNETS_PER_UP 3
#define VS_SDXL_UP_BLOCKS 4

/* Output channels of each up block, in execution order (block_out_channels reversed). */
static const uint64_t vs_sdxl_up_ch[VS_SDXL_UP_BLOCKS] = {512, 512, 256, 128};

static struct vs_act vs_sdxl_silu(struct vs_emit *e, struct vs_act x, const char *mod,
                                  const char *sub)
{
    return vs_op_map(e, x, x, 4, mod, sub);
}

/* ResnetBlock2D.forward: (shortcut(x) + conv2(silu(norm2(conv1(silu(norm1(x))))))) / 1. */
static struct vs_act vs_sdxl_resnet(struct vs_emit *e, struct vs_act x, uint64_t cout,
                                    const char *mod)
{
    struct vs_act h = vs_op_group_norm(e, vs_act_keep(e, x), VS_SDXL_GROUPS, mod, "norm1");
    h = vs_sdxl_silu(e, h, mod, "norm1.silu");
    h = vs_op_conv(e, h, cout, 1, 3, 3, false, mod, "conv1");
    h = vs_op_group_norm(e, h, VS_SDXL_GROUPS, mod, "norm2");
    h = vs_sdxl_silu(e, h, mod, "norm2.silu");
    h = vs_op_conv(e, h, cout, 1, 3, 3, false, mod, "conv2");
    if (x.c != cout)
        x = vs_op_conv(e, x, cout, 1, 1, 1, false, mod, "conv_shortcut");
    struct vs_act y = vs_op_binary(e, x, h, mod, "add");
    return vs_op_map(e, y, y, 1, mod, "output_scale");
}

/* Attention with AttnProcessor2_0 on a 4-D input, one head of width C. SDPA takes the math
 * path (head_dim 512 is beyond the fused kernels): scaled q and k, the N x N scores, their
 * softmax, then attn @ v. q, k, v and the GroupNorm output live until the processor returns. */
static struct vs_act vs_sdxl_attention(struct vs_emit *e, struct vs_act x, const char *mod)
{
    uint64_t c = x.c, n = x.h * x.w;
    struct vs_act residual = vs_act_keep(e, x);
    struct vs_act gn = vs_op_group_norm(e, x, VS_SDXL_GROUPS, mod, "group_norm");
    gn = (struct vs_act){gn.t, c, 1, 1, n}; /* view(B, C, HW).transpose(1, 2) */
    struct vs_act q = vs_op_linear(e, vs_act_keep(e, gn), c, true, mod, "to_q");
    struct vs_act k = vs_op_linear(e, vs_act_keep(e, gn), c, true, mod, "to_k");
    struct vs_act v = vs_op_linear(e, vs_act_keep(e, gn), c, true, mod, "to_v");

    struct vs_act qs = vs_op_map(e, vs_act_keep(e, q), q, 1, mod, "sdpa.query_scaled");
    struct vs_act ks = vs_op_map(e, vs_act_keep(e, k), k, 1, mod, "sdpa.key_scaled");
    struct vs_act scores_shape = {VS_NO_TENSOR, n, 1, 1, n};
    struct vs_act scores = vs_op_matmul(e, vs_act_keep(e, qs), ks, scores_shape, 2 * n * n * c,
                                        mod, "sdpa.scores");
    struct vs_act probs = vs_op_map(e, scores, scores, 5, mod, "sdpa.softmax");
    struct vs_act h = vs_op_matmul(e, vs_act_keep(e, probs), vs_act_keep(e, v), q, 2 * n * n * c,
                                   mod, "sdpa.out");
    vs_act_drop(e, qs);
    vs_act_drop(e, probs);
    vs_act_drop(e, gn); /* hidden_states now names the SDPA output */

    h = vs_op_linear(e, h, c, true, mod, "to_out.0");
    struct vs_act img = {VS_NO_TENSOR, c, 1, x.h, x.w};
    h = vs_op_map(e, h, img, 0, mod, "to_out.reshape"); /* transpose(-1, -2).reshape copies */
    h = vs_op_binary(e, h, vs_act_keep(e, residual), mod, "residual");
    h = vs_op_map(e, h, h, 1, mod, "rescale_output");
    vs_act_drop(e, residual);
    vs_act_drop(e, q);
    vs_act_drop(e, k);
    vs_act_drop(e, v);
    return h;
}

/* Decoder.forward from the post_quant_conv output to conv_out. */
static struct vs_act vs_sdxl_decoder(struct vs_emit *e, struct vs_act z)
{
    char mod[128];
    struct vs_act x = vs_op_conv(e, z, VS_SDXL_MID_CH, 1, 3, 3, false, "decoder", "conv_in");
    x = vs_sdxl_resnet(e, x, VS_SDXL_MID_CH, "decoder.mid_block.resnets.0");
    x = vs_sdxl_attention(e, x, "decoder.mid_block.attentions.0");
    x = vs_sdxl_resnet(e, x, VS_SDXL_MID_CH, "decoder.mid_block.resnets.1");
    for (unsigned b = 0; b < VS_SDXL_UP_BLOCKS; b++) {
        for (unsigned r = 0; r < VS_SDXL_RESNETS_PER_UP; r++) {
            snprintf(mod, sizeof mod, "decoder.up_blocks.%u.resnets.%u", b, r);
            x = vs_sdxl_resnet(e, x, vs_sdxl_up_ch[b], mod);
        }
        if (b + 1 == VS_SDXL_UP_BLOCKS)
            break;
        snprintf(mod, sizeof mod, "decoder.up_blocks.%u.upsamplers.0", b);
        struct vs_act up = {VS_NO_TENSOR, x.c, 1, 2 * x.h, 2 * x.w};
        x = vs_op_map(e, x, up, 0, mod, "interpolate");
        x = vs_op_conv(e, x, x.c, 1, 3, 3, false, mod, "conv");
    }
    x = vs_op_group_norm(e, x, VS_SDXL_GROUPS, "decoder", "conv_norm_out");
    x = vs_sdxl_silu(e, x, "decoder", "conv_act");
    return vs_op_conv(e, x, VS_SDXL_OUT_CH, 1, 3, 3, false, "decoder", "conv_out");
}

static struct vs_act vs_sdxl_decode(struct vs_emit *e, struct vs_act latents)
{
    struct vs_act z = vs_op_conv(e, vs_act_keep(e, latents), VS_SDXL_LATENT_CH, 1, 1, 1, false,
                                 "post_quant_conv", NULL);
    return vs_sdxl_decoder(e, z);
}

void vs_workload_sdxl_vae_decode(struct vs_emit *e, bool small)
{
    uint64_t side = (small ? 256 : 1024) / 8;
    struct vs_act shape = {VS_NO_TENSOR, VS_SDXL_LATENT_CH, 1, side, side};
    vs_emit_stage(e, "decode");
    vs_emit_set_phase(e, VS_PHASE_LOADING, "vae");
    vs_sdxl_decode(e, shape);
    vs_emit_set_phase(e, VS_PHASE_RUNNING, NULL);
    struct vs_act latents = vs_op_new(e, VS_SDXL_LATENT_CH, 1, side, side, "io", "latents", NULL);
    struct vs_act image = vs_sdxl_decode(e, latents);
    /* VaeImageProcessor.postprocess: (image * 0.5 + 0.5).clamp(0, 1). The pipeline keeps the
     * latents and the result until it returns: they are live at the end. */
    image = vs_op_map(e, image, image, 1, "postprocess", "mul");
    image = vs_op_map(e, image, image, 1, "postprocess", "add");
    vs_emit_tag_next(e, "io");
    vs_op_map(e, image, image, 1, "image", NULL);
}
