/* Demo generator: Wan2.1 T2V-1.3B text-to-video on a 12 GB GPU with 11.49 GiB usable.
 *
 * The official pipeline (Wan-Video/Wan2.1, wan/text2video.py) puts the DiT (WanModel) and the
 * VAE on the GPU in WanT2V.__init__, then WanT2V.generate() moves the umt5-xxl T5 encoder to the
 * GPU to encode the prompts. With the DiT resident the T5 does not fit: pass-through runs out of
 * memory while loading the T5 (stage text_encoder_load). Under vramshim with
 * policy/examples/wan21-t2v-1.3b-12gb.ini the DiT is demoted while the T5 loads and encodes,
 * comes back for the denoising loop, and both are idle during the VAE decode.
 *
 * Sizes (the released checkpoint files; weights stay in the dtype they are loaded in):
 * - DiT: diffusion_pytorch_model.safetensors, 1.42 B parameters in fp32 = 5.68 GB (5417 MiB):
 *   embeddings, 30 transformer blocks of 178 MiB, head.
 * - VAE: Wan2.1_VAE.pth, fp32 (the official code runs it in fp32), 508 MB (484 MiB).
 * - T5: models_t5_umt5-xxl-enc-bf16.pth, 11.36 GB (10835 MiB): a 256384 x 4096 bf16 token
 *   embedding (2003 MiB) and 24 blocks of 368 MiB.
 * - 832x480, 81 frames: latents 16x21x60x104 fp32 (8 MiB), text contexts 512x4096 fp32 (8 MiB)
 *   for the prompt and the negative prompt; a denoising step's activations ~1.5 GiB (attention
 *   and FFN over 32760 tokens of width 1536, two passes for classifier-free guidance); the VAE
 *   decode's causal feature cache ~3 GiB (ANCHORS: 8.1 GiB fp32 at 720p, x0.43 at 480p) and one
 *   192 MiB buffer per latent frame; the video 3x81x480x832 fp32 (370 MiB).
 * Pass-through: DiT + VAE = 5901 MiB, so 10 of the T5's 24 blocks fit after its embedding and
 * the 11th fails.
 */
#include "tools/demo/lib/demo.h"

#define MiB VS_DEMO_MiB

static const struct vs_demo_tensor_spec dit_tensors[] = {
    {"embeddings", MiB(70), 1}, {"blocks", MiB(178), 30}, {"head", MiB(7), 1}};
static const struct vs_demo_model_spec dit_spec = {"dit", dit_tensors, 3};

static const struct vs_demo_tensor_spec vae_tensors[] = {{"encoder", MiB(204), 1},
                                                         {"decoder", MiB(280), 1}};
static const struct vs_demo_model_spec vae_spec = {"vae", vae_tensors, 2};

static const struct vs_demo_tensor_spec t5_tensors[] = {{"token_embedding", MiB(2003), 1},
                                                        {"blocks", MiB(368), 24}};
static const struct vs_demo_model_spec t5_spec = {"t5", t5_tensors, 2};

enum { LATENT_FRAMES = 21 };

VS_DEMO_PHASE struct vs_demo_model *dit_load(struct vs_demo *d)
{
    vs_demo_stage(d, "dit_load", __func__);
    struct vs_demo_model *m = vs_demo_model_load(d, &dit_spec);
    vs_demo_sync(d);
    return m;
}

VS_DEMO_PHASE struct vs_demo_model *vae_load(struct vs_demo *d)
{
    vs_demo_stage(d, "vae_load", __func__);
    struct vs_demo_model *m = vs_demo_model_load(d, &vae_spec);
    vs_demo_sync(d);
    return m;
}

VS_DEMO_PHASE struct vs_demo_model *t5_load(struct vs_demo *d)
{
    vs_demo_stage(d, "text_encoder_load", __func__);
    struct vs_demo_model *m = vs_demo_model_load(d, &t5_spec);
    vs_demo_sync(d);
    return m;
}

/* Encodes the prompt and the negative prompt into context[0] and context[1]. */
VS_DEMO_PHASE void t5_encode(struct vs_demo *d, const struct vs_demo_model *t5,
                             struct vs_demo_buf context[2])
{
    vs_demo_stage(d, "text_encode", __func__);
    for (unsigned p = 0; p < 2; p++) {
        struct vs_demo_buf hidden = vs_demo_buffer(d, "t5.hidden", MiB(64));
        vs_demo_model_apply(d, t5, &hidden, p);
        context[p] = vs_demo_buffer(d, p ? "context.negative" : "context.prompt", MiB(8));
        vs_demo_combine(d, &context[p], &hidden, p);
        vs_demo_buffer_free(d, &hidden);
    }
    vs_demo_sync(d);
}

VS_DEMO_PHASE struct vs_demo_buf dit_denoise(struct vs_demo *d, const struct vs_demo_model *dit,
                                             struct vs_demo_buf context[2])
{
    vs_demo_stage(d, "denoise", __func__);
    struct vs_demo_buf latents = vs_demo_buffer(d, "latents", MiB(8));
    for (unsigned step = 0; step < vs_demo_steps(d); step++) {
        struct vs_demo_buf attn = vs_demo_buffer(d, "dit.attention", MiB(512));
        struct vs_demo_buf ffn = vs_demo_buffer(d, "dit.ffn", MiB(640));
        struct vs_demo_buf out = vs_demo_buffer(d, "dit.out", MiB(384));
        for (unsigned pass = 0; pass < 2; pass++) { /* conditional, unconditional */
            vs_demo_combine(d, &attn, &context[pass], step);
            vs_demo_model_apply(d, dit, &attn, 2 * step + pass);
            vs_demo_combine(d, &ffn, &attn, step);
            vs_demo_combine(d, &out, &ffn, step);
        }
        vs_demo_combine(d, &latents, &out, step);
        vs_demo_buffer_free(d, &out);
        vs_demo_buffer_free(d, &ffn);
        vs_demo_buffer_free(d, &attn);
    }
    vs_demo_sync(d);
    return latents;
}

VS_DEMO_PHASE void vae_decode(struct vs_demo *d, const struct vs_demo_model *vae,
                              struct vs_demo_buf *latents)
{
    vs_demo_stage(d, "decode", __func__);
    struct vs_demo_buf cache = vs_demo_buffer(d, "vae.feature_cache", MiB(3072));
    struct vs_demo_buf video = vs_demo_buffer(d, "video", MiB(370));
    for (unsigned f = 0; f < LATENT_FRAMES; f++) {
        struct vs_demo_buf frame = vs_demo_buffer(d, "vae.frame", MiB(192));
        vs_demo_combine(d, &frame, latents, f);
        vs_demo_model_apply(d, vae, &frame, f);
        vs_demo_combine(d, &cache, &frame, f);
        vs_demo_combine(d, &video, &cache, f);
        vs_demo_buffer_free(d, &frame);
    }
    vs_demo_sync(d);
    vs_demo_buffer_free(d, &cache);
    vs_demo_buffer_free(d, &video);
}

static void wan_generate(struct vs_demo *d)
{
    /* WanT2V.__init__ */
    struct vs_demo_model *dit = dit_load(d);
    struct vs_demo_model *vae = vae_load(d);
    /* WanT2V.generate */
    struct vs_demo_model *t5 = t5_load(d);
    struct vs_demo_buf context[2];
    t5_encode(d, t5, context);
    struct vs_demo_buf latents = dit_denoise(d, dit, context);
    vae_decode(d, vae, &latents);
    vs_demo_buffer_free(d, &latents);
    vs_demo_buffer_free(d, &context[0]);
    vs_demo_buffer_free(d, &context[1]);
}

static const struct vs_demo_scenario wan21 = {
    .name = "wan21-t2v-1.3b",
    .title = "Wan2.1 T2V-1.3B, 832x480x81, on a 12 GB GPU with 11.49 GiB usable",
    .policy = "wan21-t2v-1.3b-12gb.ini",
    .expected_failure = "text_encoder_load",
    .gpu_bytes = MiB(11766),
    .taken_bytes = 0,
    .api = VS_DEMO_API_SYNC,
    .steps = 10,
    .run = wan_generate,
    .models = (const struct vs_demo_model_spec *const[]){&t5_spec, &dit_spec, &vae_spec, NULL},
};

int main(int argc, char **argv)
{
    return vs_demo_main(&wan21, argc, argv);
}
