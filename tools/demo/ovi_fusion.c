/* Demo generator: an Ovi-like audio+video fusion model on a 32 GiB GPU.
 *
 * character-ai/Ovi (ovi/ovi_fusion_engine.py) moves everything to the GPU in
 * OviFusionEngine.__init__: the fusion model (twin video and audio DiTs with cross-modal
 * fusion), the T5 text encoder and the two VAEs; they all stay resident. After the denoising loop
 * the video VAE decode (Wan 2.2 VAE, wrapped_decode) asks for 6.54 GB in one block while about
 * 2.5 GB are free: pass-through runs out of memory at the decode (stage decode). Under vramshim
 * with policy/examples/ovi-fusion-32gb.ini the decode stage first demotes the idle fusion model
 * and text encoder until 6.5 GiB are free (headroom), keeping the VAEs.
 *
 * Sizes (the seed's figures, bf16):
 * - fusion model 25 GB (23842 MiB): 30 video blocks of 500 MiB, 30 audio blocks of 280 MiB,
 *   embeddings and heads 442 MiB;
 * - text encoder 5 GB (4768 MiB): a 1000 MiB token embedding and 24 blocks of 157 MiB;
 * - Wan 2.2 video VAE 1.41 GB (1345 MiB; its decoder 555.05 M parameters, docs/decoder.md),
 *   MMAudio VAE and vocoder 290 MiB;
 * - 720x720, 121 frames: a denoising step's activations 1.8 GB (video, audio, cross-attention);
 *   the decode's 6.54 GB block, then the video (121x720x720x3 fp32, 717 MiB) written a latent
 *   frame group (128 MiB) at a time, and the audio (16 MiB). The 6.54 GB block is the seed's
 *   figure; for the real decoder at 720x720x121 vramshim's own decoder predicts 5.36 GiB of
 *   fp32 working memory in one tile, 3.83 GiB in 2x2 tiles under a 4 GiB budget (`make bench`).
 * The engine's loaders are called from its constructor (here: from fusion_load), so the text
 * encoder and the VAEs are made in stage `load` and carry their own tags.
 */
#include "tools/demo/lib/demo.h"

#define MiB VS_DEMO_MiB

static const struct vs_demo_tensor_spec fusion_tensors[] = {
    {"embeddings", MiB(442), 1}, {"video_blocks", MiB(500), 30}, {"audio_blocks", MiB(280), 30}};
static const struct vs_demo_model_spec fusion_spec = {"fusion", fusion_tensors, 3};

static const struct vs_demo_tensor_spec t5_tensors[] = {{"token_embedding", MiB(1000), 1},
                                                        {"blocks", MiB(157), 24}};
static const struct vs_demo_model_spec t5_spec = {"t5", t5_tensors, 2};

static const struct vs_demo_tensor_spec vae_tensors[] = {{"video", MiB(1345), 1},
                                                         {"audio", MiB(290), 1}};
static const struct vs_demo_model_spec vae_spec = {"vae", vae_tensors, 2};

enum { FRAME_GROUPS = 8 };

struct ovi_engine {
    struct vs_demo_model *fusion, *t5, *vae;
};

VS_DEMO_PHASE struct vs_demo_model *text_encoder_load(struct vs_demo *d)
{
    vs_demo_stage(d, "text_encoder_load", __func__);
    return vs_demo_model_load(d, &t5_spec);
}

VS_DEMO_PHASE struct vs_demo_model *vae_load(struct vs_demo *d)
{
    vs_demo_stage(d, "vae_load", __func__);
    return vs_demo_model_load(d, &vae_spec);
}

/* OviFusionEngine.__init__: the fusion model, then the loaders it calls. */
VS_DEMO_PHASE void fusion_load(struct vs_demo *d, struct ovi_engine *e)
{
    vs_demo_stage(d, "fusion_load", __func__);
    e->fusion = vs_demo_model_load(d, &fusion_spec);
    e->t5 = text_encoder_load(d);
    e->vae = vae_load(d);
    vs_demo_sync(d);
}

/* The video prompt, the audio prompt and the negative prompt. */
VS_DEMO_PHASE void text_encode(struct vs_demo *d, const struct ovi_engine *e,
                               struct vs_demo_buf context[3])
{
    vs_demo_stage(d, "text_encode", __func__);
    static const char *const names[3] = {"context.video", "context.audio", "context.negative"};
    for (unsigned p = 0; p < 3; p++) {
        struct vs_demo_buf hidden = vs_demo_buffer(d, "t5.hidden", MiB(64));
        vs_demo_model_apply(d, e->t5, &hidden, p);
        context[p] = vs_demo_buffer(d, names[p], MiB(4));
        vs_demo_combine(d, &context[p], &hidden, p);
        vs_demo_buffer_free(d, &hidden);
    }
    vs_demo_sync(d);
}

VS_DEMO_PHASE void fusion_denoise(struct vs_demo *d, const struct ovi_engine *e,
                                  struct vs_demo_buf context[3], struct vs_demo_buf latents[2])
{
    vs_demo_stage(d, "denoise", __func__);
    latents[0] = vs_demo_buffer(d, "latents.video", MiB(8));
    latents[1] = vs_demo_buffer(d, "latents.audio", MiB(2));
    for (unsigned step = 0; step < vs_demo_steps(d); step++) {
        struct vs_demo_buf video = vs_demo_buffer(d, "fusion.video_activations", MiB(1100));
        struct vs_demo_buf audio = vs_demo_buffer(d, "fusion.audio_activations", MiB(500));
        struct vs_demo_buf cross = vs_demo_buffer(d, "fusion.cross_attention", MiB(200));
        for (unsigned p = 0; p < 3; p++)
            vs_demo_combine(d, p == 1 ? &audio : &video, &context[p], step);
        vs_demo_model_apply(d, e->fusion, &video, step);
        vs_demo_combine(d, &cross, &video, step);
        vs_demo_combine(d, &audio, &cross, step);
        vs_demo_combine(d, &latents[0], &video, step);
        vs_demo_combine(d, &latents[1], &audio, step);
        vs_demo_buffer_free(d, &cross);
        vs_demo_buffer_free(d, &audio);
        vs_demo_buffer_free(d, &video);
    }
    vs_demo_sync(d);
}

/* wrapped_decode: one 6.54 GB block, then the video and the audio. */
VS_DEMO_PHASE void vae_decode(struct vs_demo *d, const struct ovi_engine *e,
                              struct vs_demo_buf latents[2])
{
    vs_demo_stage(d, "decode", __func__);
    struct vs_demo_buf work = vs_demo_buffer(d, "vae.decode_workspace", 6540000000ull);
    struct vs_demo_buf video = vs_demo_buffer(d, "video", MiB(717));
    for (unsigned g = 0; g < FRAME_GROUPS; g++) {
        struct vs_demo_buf group = vs_demo_buffer(d, "vae.frame_group", MiB(128));
        vs_demo_combine(d, &group, &latents[0], g);
        vs_demo_model_apply(d, e->vae, &group, g);
        vs_demo_combine(d, &work, &group, g);
        vs_demo_combine(d, &video, &work, g);
        vs_demo_buffer_free(d, &group);
    }
    struct vs_demo_buf audio = vs_demo_buffer(d, "audio", MiB(16));
    vs_demo_combine(d, &audio, &latents[1], 0);
    vs_demo_model_apply(d, e->vae, &audio, 0);
    vs_demo_sync(d);
    vs_demo_buffer_free(d, &audio);
    vs_demo_buffer_free(d, &video);
    vs_demo_buffer_free(d, &work);
}

static void ovi_generate(struct vs_demo *d)
{
    struct ovi_engine e;
    fusion_load(d, &e);
    struct vs_demo_buf context[3], latents[2];
    text_encode(d, &e, context);
    fusion_denoise(d, &e, context, latents);
    vae_decode(d, &e, latents);
    for (unsigned i = 0; i < 3; i++)
        vs_demo_buffer_free(d, &context[i]);
    vs_demo_buffer_free(d, &latents[0]);
    vs_demo_buffer_free(d, &latents[1]);
}

static const struct vs_demo_scenario ovi = {
    .name = "ovi-fusion",
    .title = "Ovi-like audio+video fusion model, 720x720x121, on a 32 GiB GPU",
    .policy = "ovi-fusion-32gb.ini",
    .expected_failure = "decode",
    .gpu_bytes = MiB(32768),
    .taken_bytes = 0,
    .api = VS_DEMO_API_SYNC,
    .steps = 10,
    .run = ovi_generate,
    .models = (const struct vs_demo_model_spec *const[]){&t5_spec, &fusion_spec, &vae_spec, NULL},
};

int main(int argc, char **argv)
{
    return vs_demo_main(&ovi, argc, argv);
}
