/* Demo generator: ComfyUI running Wan 2.2 TI2V-5B text-to-video on a 24 GiB GPU of which an
 * LLM server in another process holds 5 GB.
 *
 * ComfyUI loads each model onto the GPU lazily, inside the node that first needs it
 * (comfy.model_management.load_models_gpu), and runs PyTorch with backend:cudaMallocAsync, so
 * every block comes from cuMemAllocAsync on a stream. With dynamic VRAM the text encoder and the
 * diffusion model stay resident into the VAE decode (ComfyUI PR #15456, issue #16299), and the
 * decode's workspace does not fit: pass-through runs out of memory at the decode (stage
 * decode). Under vramshim with policy/examples/comfyui-wan22-lend.ini ComfyUI keeps its models
 * resident (the next prompt uses them) and borrows what the decode lacks from the LLM server,
 * whose idle weights go to host memory (docs/lending.md).
 *
 * Sizes (ComfyUI's Wan 2.2 5B template files):
 * - text encoder umt5_xxl_fp8_e4m3fn_scaled.safetensors, 6.74 GB (6426 MiB): a 1002 MiB fp8
 *   token embedding and 24 blocks of 226 MiB;
 * - diffusion model wan2.2_ti2v_5B_fp16.safetensors, 10.0 GB (9537 MiB): 30 blocks of 310 MiB,
 *   embeddings 200 MiB, head 37 MiB;
 * - VAE wan2.2_vae.safetensors, 1.41 GB (1345 MiB), loaded by the VAEDecode node: the decoder
 *   is 555.05 M parameters, 1059 MiB in fp16 (docs/decoder.md, "Wan 2.2: the architecture"),
 *   the encoder the other 286 MiB;
 * - 1280x704, 121 frames: a sampling step's activations 2.4 GB; the decode's 4 GiB workspace,
 *   then the video (121x704x1280x3 fp32, 1248 MiB) a latent frame group (160 MiB) at a time.
 *   The workspace is the scenario's figure: the real decoder's fp32 PyTorch decode peaks at
 *   21.4 GiB live (`vramshim workload wan22-vae-decode`, weights and video included), and
 *   vramshim's own decoder predicts 9.33 GiB of working memory in one tile, 3.98 GiB in 3x2
 *   tiles under a 4 GiB budget (`make bench`).
 * The other process is the demo's LLM server (build/demo/llm_server, 4768 MiB of weights = 5 GB,
 * a request every 8 s), run beside it by `vramshim demo` on one shared simulated GPU, under
 * vramshim with policy/examples/llm-server-lend.ini in the vramshim run. Run alone, the program
 * models it with SIMCUDA_VRAM_TAKEN (`--describe` gives taken_bytes).
 */
#include "tools/demo/lib/demo.h"

#define MiB VS_DEMO_MiB

static const struct vs_demo_tensor_spec te_tensors[] = {{"token_embedding", MiB(1002), 1},
                                                        {"blocks", MiB(226), 24}};
static const struct vs_demo_model_spec te_spec = {"umt5", te_tensors, 2};

static const struct vs_demo_tensor_spec dm_tensors[] = {
    {"embeddings", MiB(200), 1}, {"blocks", MiB(310), 30}, {"head", MiB(37), 1}};
static const struct vs_demo_model_spec dm_spec = {"wan22_5b", dm_tensors, 3};

static const struct vs_demo_tensor_spec vae_tensors[] = {{"encoder", MiB(286), 1},
                                                         {"decoder", MiB(1059), 1}};
static const struct vs_demo_model_spec vae_spec = {"vae", vae_tensors, 2};

enum { FRAME_GROUPS = 8 };

VS_DEMO_PHASE struct vs_demo_model *text_encoder_load(struct vs_demo *d)
{
    vs_demo_stage(d, "text_encoder_load", __func__);
    return vs_demo_model_load(d, &te_spec);
}

/* The CLIPTextEncode node: loads the text encoder, then encodes its prompt. */
VS_DEMO_PHASE struct vs_demo_buf clip_text_encode(struct vs_demo *d, struct vs_demo_model **te,
                                                  const char *name, unsigned prompt)
{
    if (!*te)
        *te = text_encoder_load(d);
    vs_demo_stage(d, "text_encode", __func__);
    struct vs_demo_buf hidden = vs_demo_buffer(d, "umt5.hidden", MiB(64));
    vs_demo_model_apply(d, *te, &hidden, prompt);
    struct vs_demo_buf cond = vs_demo_buffer(d, name, MiB(4));
    vs_demo_combine(d, &cond, &hidden, prompt);
    vs_demo_buffer_free(d, &hidden);
    vs_demo_sync(d);
    return cond;
}

VS_DEMO_PHASE struct vs_demo_model *diffusion_model_load(struct vs_demo *d)
{
    vs_demo_stage(d, "diffusion_model_load", __func__);
    return vs_demo_model_load(d, &dm_spec);
}

/* The KSampler node: loads the diffusion model, then samples. */
VS_DEMO_PHASE struct vs_demo_buf common_ksampler(struct vs_demo *d, struct vs_demo_model **dm,
                                                 struct vs_demo_buf cond[2])
{
    *dm = diffusion_model_load(d);
    vs_demo_stage(d, "denoise", __func__);
    struct vs_demo_buf latents = vs_demo_buffer(d, "latents", MiB(10));
    for (unsigned step = 0; step < vs_demo_steps(d); step++) {
        struct vs_demo_buf act = vs_demo_buffer(d, "sample.activations", MiB(1400));
        struct vs_demo_buf attn = vs_demo_buffer(d, "sample.attention", MiB(1000));
        for (unsigned pass = 0; pass < 2; pass++) {
            vs_demo_combine(d, &attn, &cond[pass], step);
            vs_demo_model_apply(d, *dm, &act, 2 * step + pass);
            vs_demo_combine(d, &act, &attn, step);
        }
        vs_demo_combine(d, &latents, &act, step);
        vs_demo_buffer_free(d, &attn);
        vs_demo_buffer_free(d, &act);
    }
    vs_demo_sync(d);
    return latents;
}

VS_DEMO_PHASE struct vs_demo_model *vae_load(struct vs_demo *d)
{
    vs_demo_stage(d, "vae_load", __func__);
    return vs_demo_model_load(d, &vae_spec);
}

/* The VAEDecode node: loads the VAE, then decodes. */
VS_DEMO_PHASE void vae_decode(struct vs_demo *d, struct vs_demo_buf *latents)
{
    struct vs_demo_model *vae = vae_load(d);
    vs_demo_stage(d, "decode", __func__);
    struct vs_demo_buf work = vs_demo_buffer(d, "vae.decode_workspace", MiB(4096));
    struct vs_demo_buf video = vs_demo_buffer(d, "video", MiB(1248));
    for (unsigned g = 0; g < FRAME_GROUPS; g++) {
        struct vs_demo_buf group = vs_demo_buffer(d, "vae.frame_group", MiB(160));
        vs_demo_combine(d, &group, latents, g);
        vs_demo_model_apply(d, vae, &group, g);
        vs_demo_combine(d, &work, &group, g);
        vs_demo_combine(d, &video, &work, g);
        vs_demo_buffer_free(d, &group);
    }
    vs_demo_sync(d);
    vs_demo_buffer_free(d, &video);
    vs_demo_buffer_free(d, &work);
}

/* The workflow: CLIPTextEncode x2 -> KSampler -> VAEDecode. */
static void comfyui_prompt(struct vs_demo *d)
{
    struct vs_demo_model *te = NULL, *dm = NULL;
    struct vs_demo_buf cond[2];
    cond[0] = clip_text_encode(d, &te, "conditioning.positive", 0);
    cond[1] = clip_text_encode(d, &te, "conditioning.negative", 1);
    struct vs_demo_buf latents = common_ksampler(d, &dm, cond);
    vae_decode(d, &latents);
    vs_demo_buffer_free(d, &latents);
    vs_demo_buffer_free(d, &cond[0]);
    vs_demo_buffer_free(d, &cond[1]);
}

static const struct vs_demo_scenario comfyui = {
    .name = "comfyui-wan22-5b",
    .title = "ComfyUI, Wan 2.2 TI2V-5B 1280x704x121, on a 24 GiB GPU with 5 GB held by an LLM "
             "server",
    .policy = "comfyui-wan22-lend.ini",
    .expected_failure = "decode",
    .gpu_bytes = MiB(24576),
    .taken_bytes = 5000000000ull,
    .companion = "llm_server",
    .companion_policy = "llm-server-lend.ini",
    .companion_args = "--weights-mib 4768 --interval-ms 8000",
    .api = VS_DEMO_API_ASYNC,
    .steps = 10,
    .run = comfyui_prompt,
    .models = (const struct vs_demo_model_spec *const[]){&te_spec, &dm_spec, &vae_spec, NULL},
};

int main(int argc, char **argv)
{
    return vs_demo_main(&comfyui, argc, argv);
}
