/* A text-to-image run on a DiT: a T5-style text encoder (bf16) encodes the prompt, is offloaded,
 * then a 20-step flow-matching loop runs a single-stream DiT (adaLN-modulated blocks, joint
 * attention over image and text tokens through a fused SDPA kernel, QK RMS norms, GELU MLP)
 * over 1024x1024 latents (16 channels, patch 2). Stages: text_encode, denoise. The DiT weights
 * and the final latents stay live at the end; the encoder's weights and everything else are
 * freed. --small keeps 20 steps with two-layer, 1024-wide models at 512x512. */
#include <stdio.h>

#include "tools/workloads/ops.h"
#include "tools/workloads/workloads.h"

#define VS_DIT_STEPS 20
#define VS_DIT_LATENT_CH 16
#define VS_DIT_PATCH 2
#define VS_DIT_FREQ_DIM 256
#define VS_DIT_ADALN_CHUNKS 6
#define VS_DIT_MLP_RATIO 4

struct vs_dit_config {
    uint64_t te_layers, te_dim, te_ff, te_heads, te_vocab, text_tokens;
    uint64_t layers, dim, heads, image;
};

static const struct vs_dit_config vs_dit_full = {24, 4096, 10240, 64, 32128, 512,
                                                 24, 3072, 24,  1024};
static const struct vs_dit_config vs_dit_small = {2, 1024, 2560, 16, 4096, 64,
                                                  2, 1024, 16, 512};

static struct vs_act vs_dit_tokens(uint64_t dim, uint64_t n)
{
    return (struct vs_act){VS_NO_TENSOR, dim, 1, 1, n};
}

/* Fused attention (flash): output and fp32 logsumexp per head and token. Consumes q, k, v. */
static struct vs_act vs_dit_sdpa(struct vs_emit *e, struct vs_act q, struct vs_act k,
                                 struct vs_act v, uint64_t heads, const char *mod)
{
    uint64_t n = q.w;
    struct vs_act out = vs_op_new(e, q.c, 1, 1, n, NULL, mod, "sdpa.out");
    char name[160];
    snprintf(name, sizeof name, "%s.sdpa.logsumexp", mod);
    vs_tensor lse = vs_emit_alloc(e, heads * n * sizeof(float), NULL, name);
    vs_emit_work(e, 4 * n * n * q.c, 4 * vs_act_bytes(e, out));
    vs_emit_unref(e, lse);
    vs_act_drop(e, q);
    vs_act_drop(e, k);
    vs_act_drop(e, v);
    return out;
}

/* T5LayerNorm: RMS over channels with a weight, fp32 statistics per token. Consumes x. */
static struct vs_act vs_dit_rms(struct vs_emit *e, struct vs_act x, const char *mod,
                                const char *sub)
{
    char name[160];
    snprintf(name, sizeof name, "%s.%s", mod, sub);
    vs_op_param(e, x.c, name, "weight");
    return vs_op_layer_norm(e, x, false, mod, sub);
}

static struct vs_act vs_dit_encoder_layer(struct vs_emit *e, const struct vs_dit_config *c,
                                          struct vs_act h, const char *mod)
{
    char sub[160];
    snprintf(sub, sizeof sub, "%s.attn", mod);
    struct vs_act n = vs_dit_rms(e, vs_act_keep(e, h), mod, "attn_norm");
    struct vs_act q = vs_op_linear(e, vs_act_keep(e, n), c->te_dim, false, sub, "q");
    struct vs_act k = vs_op_linear(e, vs_act_keep(e, n), c->te_dim, false, sub, "k");
    struct vs_act v = vs_op_linear(e, n, c->te_dim, false, sub, "v");
    struct vs_act a = vs_dit_sdpa(e, q, k, v, c->te_heads, sub);
    a = vs_op_linear(e, a, c->te_dim, false, sub, "o");
    h = vs_op_binary(e, h, a, mod, "attn_residual");
    snprintf(sub, sizeof sub, "%s.ffn", mod);
    n = vs_dit_rms(e, vs_act_keep(e, h), mod, "ffn_norm");
    struct vs_act gate = vs_op_linear(e, vs_act_keep(e, n), c->te_ff, false, sub, "wi_0");
    gate = vs_op_map(e, gate, gate, 8, sub, "gelu");
    struct vs_act up = vs_op_linear(e, n, c->te_ff, false, sub, "wi_1");
    struct vs_act f = vs_op_binary(e, gate, up, sub, "gated");
    f = vs_op_linear(e, f, c->te_dim, false, sub, "wo");
    return vs_op_binary(e, h, f, mod, "ffn_residual");
}

/* Token ids in, prompt embeddings out (one reference, for the caller). */
static struct vs_act vs_dit_text_encoder(struct vs_emit *e, const struct vs_dit_config *c)
{
    char mod[128];
    /* int64 ids: four bf16-sized elements per token */
    struct vs_act ids = vs_op_new(e, 4, 1, 1, c->text_tokens, NULL, "input_ids", NULL);
    vs_op_param(e, c->te_vocab * c->te_dim, "shared", "weight");
    struct vs_act h = vs_op_map(e, ids, vs_dit_tokens(c->te_dim, c->text_tokens), 0,
                                "encoder", "embed_tokens");
    for (uint64_t l = 0; l < c->te_layers; l++) {
        snprintf(mod, sizeof mod, "encoder.block.%llu", (unsigned long long)l);
        h = vs_dit_encoder_layer(e, c, h, mod);
    }
    return vs_dit_rms(e, h, "encoder", "final_layer_norm");
}

/* adaLN-modulated DiT block over all tokens. mods (6 x dim, one token) is kept by the caller. */
static struct vs_act vs_dit_block(struct vs_emit *e, const struct vs_dit_config *c,
                                  struct vs_act h, struct vs_act temb, const char *mod)
{
    char sub[160];
    uint64_t d = c->dim, head_dim = c->dim / c->heads;
    struct vs_act m = vs_op_map(e, vs_act_keep(e, temb), temb, 4, mod, "adaLN.silu");
    m = vs_op_linear(e, m, VS_DIT_ADALN_CHUNKS * d, true, mod, "adaLN.linear");

    struct vs_act n = vs_op_layer_norm(e, vs_act_keep(e, h), false, mod, "norm1");
    n = vs_op_binary(e, n, vs_act_keep(e, m), mod, "norm1.modulate");
    snprintf(sub, sizeof sub, "%s.attn", mod);
    struct vs_act qkv = vs_op_linear(e, n, 3 * d, true, sub, "qkv");
    struct vs_act q = vs_op_map(e, vs_act_keep(e, qkv), vs_dit_tokens(d, h.w), 8, sub, "q_norm");
    vs_op_param(e, head_dim, sub, "q_norm.weight");
    struct vs_act k = vs_op_map(e, vs_act_keep(e, qkv), vs_dit_tokens(d, h.w), 8, sub, "k_norm");
    vs_op_param(e, head_dim, sub, "k_norm.weight");
    struct vs_act a = vs_dit_sdpa(e, q, k, qkv, c->heads, sub); /* v is a view of qkv */
    a = vs_op_linear(e, a, d, true, sub, "proj");
    a = vs_op_binary(e, a, vs_act_keep(e, m), mod, "gate_msa");
    h = vs_op_binary(e, h, a, mod, "attn_residual");

    n = vs_op_layer_norm(e, vs_act_keep(e, h), false, mod, "norm2");
    n = vs_op_binary(e, n, vs_act_keep(e, m), mod, "norm2.modulate");
    snprintf(sub, sizeof sub, "%s.mlp", mod);
    struct vs_act f = vs_op_linear(e, n, VS_DIT_MLP_RATIO * d, true, sub, "fc1");
    f = vs_op_map(e, f, f, 8, sub, "gelu");
    f = vs_op_linear(e, f, d, true, sub, "fc2");
    f = vs_op_binary(e, f, m, mod, "gate_mlp");
    return vs_op_binary(e, h, f, mod, "mlp_residual");
}

/* One forward of the DiT: noise prediction for latents (kept by the caller). */
static struct vs_act vs_dit_forward(struct vs_emit *e, const struct vs_dit_config *c,
                                    struct vs_act latents, struct vs_act cond)
{
    char mod[128];
    uint64_t side = c->image / 8 / VS_DIT_PATCH, n_img = side * side;
    uint64_t patch_in = VS_DIT_LATENT_CH * VS_DIT_PATCH * VS_DIT_PATCH;
    struct vs_act t = vs_op_new(e, VS_DIT_FREQ_DIM, 1, 1, 1, NULL, "t_embedder", "freq");
    t = vs_op_linear(e, t, c->dim, true, "t_embedder", "mlp.0");
    t = vs_op_map(e, t, t, 4, "t_embedder", "mlp.1");
    t = vs_op_linear(e, t, c->dim, true, "t_embedder", "mlp.2");

    struct vs_act x = vs_op_map(e, vs_act_keep(e, latents), vs_dit_tokens(patch_in, n_img), 0,
                                "x_embedder", "patchify");
    x = vs_op_linear(e, x, c->dim, true, "x_embedder", "proj");
    struct vs_act ctx = vs_op_linear(e, vs_act_keep(e, cond), c->dim, true, "context_embedder",
                                     NULL);
    struct vs_act h = vs_op_new(e, c->dim, 1, 1, n_img + c->text_tokens, NULL, "tokens", "cat");
    vs_act_drop(e, x);
    vs_act_drop(e, ctx);
    for (uint64_t l = 0; l < c->layers; l++) {
        snprintf(mod, sizeof mod, "blocks.%llu", (unsigned long long)l);
        h = vs_dit_block(e, c, h, t, mod);
    }
    struct vs_act m = vs_op_map(e, vs_act_keep(e, t), t, 4, "final_layer", "adaLN.silu");
    m = vs_op_linear(e, m, 2 * c->dim, true, "final_layer", "adaLN.linear");
    struct vs_act img = h; /* h[:, :n_img], a view */
    img.w = n_img;
    struct vs_act n = vs_op_layer_norm(e, img, false, "final_layer", "norm");
    n = vs_op_binary(e, n, m, "final_layer", "modulate");
    n = vs_op_linear(e, n, patch_in, true, "final_layer", "linear");
    vs_act_drop(e, t);
    return vs_op_map(e, n, latents, 0, "final_layer", "unpatchify");
}

void vs_workload_dit_denoise(struct vs_emit *e, bool small)
{
    const struct vs_dit_config *c = small ? &vs_dit_small : &vs_dit_full;
    uint64_t side = c->image / 8;
    struct vs_act latents = {VS_NO_TENSOR, VS_DIT_LATENT_CH, 1, side, side};
    vs_emit_stage(e, "text_encode");
    vs_emit_set_phase(e, VS_PHASE_LOADING, "text_encoder");
    vs_dit_text_encoder(e, c);
    vs_emit_set_phase(e, VS_PHASE_RUNNING, NULL);
    struct vs_act cond = vs_dit_text_encoder(e, c);
    vs_emit_free_tagged(e, "text_encoder"); /* offloaded before the DiT comes in */

    vs_emit_stage(e, "denoise");
    vs_emit_set_phase(e, VS_PHASE_LOADING, "dit");
    vs_dit_forward(e, c, latents, vs_dit_tokens(c->te_dim, c->text_tokens));
    vs_emit_set_phase(e, VS_PHASE_RUNNING, NULL);
    latents = vs_op_new(e, latents.c, 1, side, side, "io", "latents", NULL);
    for (unsigned step = 0; step < VS_DIT_STEPS; step++) {
        struct vs_act v = vs_dit_forward(e, c, latents, cond);
        v = vs_op_map(e, v, v, 1, "scheduler", "dt_mul");
        vs_emit_tag_next(e, "io");
        latents = vs_op_binary(e, latents, v, "scheduler", "step");
    }
    vs_act_drop(e, cond);
}
