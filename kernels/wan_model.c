/* Wan decoders: properties of the layer list and the latent statistics. */
#include "kernels/wan_model.h"

#include <stdlib.h>

#include "kernels/wan.h"

/* Wan 2.1's latent statistics (Wan-Video/Wan2.1 wan/modules/vae.py; diffusers config
 * latents_mean / latents_std). Diffusion latents are (mu - mean) / std. */
static const float wan21_mean[16] = {-0.7571f, -0.7089f, -0.9113f, 0.1075f,  -0.1745f, 0.9653f,
                                     -0.1517f, 1.5508f,  0.4134f,  -0.0715f, 0.5517f,  -0.3632f,
                                     -0.1922f, -0.9497f, 0.2503f,  -0.2921f};
static const float wan21_std[16] = {2.8184f, 1.4541f, 2.3275f, 2.6558f, 1.2196f, 1.7708f,
                                    2.6052f, 2.0743f, 3.2687f, 2.1526f, 2.8652f, 1.5579f,
                                    1.6382f, 1.1253f, 2.8251f, 1.9160f};

/* Wan 2.2's latent statistics (Wan-Video/Wan2.2 wan/modules/vae2_2.py, the TI2V-5B diffusers
 * config's latents_mean / latents_std). */
static const float wan22_mean[48] = {
    -0.2289f, -0.0052f, -0.1323f, -0.2339f, -0.2799f, 0.0174f,  0.1838f,  0.1557f,
    -0.1382f, 0.0542f,  0.2813f,  0.0891f,  0.1570f,  -0.0098f, 0.0375f,  -0.1825f,
    -0.2246f, -0.1207f, -0.0698f, 0.5109f,  0.2665f,  -0.2108f, -0.2158f, 0.2502f,
    -0.2055f, -0.0322f, 0.1109f,  0.1567f,  -0.0729f, 0.0899f,  -0.2799f, -0.1230f,
    -0.0313f, -0.1649f, 0.0117f,  0.0723f,  -0.2839f, -0.2083f, -0.0520f, 0.3748f,
    0.0152f,  0.1957f,  0.1433f,  -0.2944f, 0.3573f,  -0.0548f, -0.1681f, -0.0667f};
static const float wan22_std[48] = {
    0.4765f, 1.0364f, 0.4514f, 1.1677f, 0.5313f, 0.4990f, 0.4818f, 0.5013f, 0.8158f, 1.0344f,
    0.5894f, 1.0901f, 0.6885f, 0.6165f, 0.8454f, 0.4978f, 0.5759f, 0.3523f, 0.7135f, 0.6804f,
    0.5833f, 1.4146f, 0.8986f, 0.5659f, 0.7069f, 0.5338f, 0.4889f, 0.4917f, 0.4069f, 0.4999f,
    0.6866f, 0.4093f, 0.5709f, 0.6065f, 0.6415f, 0.4944f, 0.5726f, 1.2042f, 0.5458f, 1.6887f,
    0.3971f, 1.0600f, 0.3943f, 0.5537f, 0.5444f, 0.4089f, 0.7468f, 0.7744f};

int vs_wan_stage_radius(const struct vs_wan_stage *s)
{
    switch (s->kind) {
    case VS_WAN_UNPATCH:
        return 0;
    case VS_WAN_RES:
        return (s->conv.k - 1) / 2 + (s->conv2.k - 1) / 2;
    case VS_WAN_CONV:
    case VS_WAN_RESAMPLE:
    case VS_WAN_HEAD:
        return (s->conv.k - 1) / 2;
    case VS_WAN_ATTN:
        break;
    }
    return -1; /* global: needs the whole frame */
}

int vs_wan_stage_upscale(const struct vs_wan_stage *s)
{
    return s->kind == VS_WAN_RESAMPLE ? 2 : s->kind == VS_WAN_UNPATCH ? s->patch : 1;
}

void vs_wan_free(struct vs_wan_model *model)
{
    if (!model)
        return;
    for (int i = 0; i < model->n_owned; i++)
        free(model->owned[i]);
    free(model->owned);
    free(model->stages);
    free(model);
}

int vs_wan_version(const struct vs_wan_model *model)
{
    return model->version;
}

int vs_wan_check_version(const struct vs_wan_model *model, int want, const char *label,
                         struct vs_err *err)
{
    if (!want || model->version == want)
        return 0;
    return vs_err_set(err, "%s holds a Wan %s decoder (%s), not Wan %s", label,
                      model->version == 22 ? "2.2" : "2.1",
                      model->version == 22 ? "residual up blocks" : "no residual up blocks",
                      want == 22 ? "2.2" : "2.1");
}

int vs_wan_latent_channels(const struct vs_wan_model *model)
{
    return model->z_dim;
}

int vs_wan_spatial_scale(const struct vs_wan_model *model)
{
    int scale = 1;
    for (int i = 0; i < model->n_stages; i++)
        scale *= vs_wan_stage_upscale(&model->stages[i]);
    return scale;
}

int vs_wan_out_frames(const struct vs_wan_model *model, int latent_frames)
{
    /* Each temporal resample doubles every frame but the first. */
    long frames = latent_frames;
    for (int i = 0; i < model->n_stages; i++)
        if (model->stages[i].kind == VS_WAN_RESAMPLE && model->stages[i].temporal && frames > 0)
            frames = 1 + 2 * (frames - 1);
    return (int)frames;
}

int vs_wan_unscale(const struct vs_wan_model *model, float *latents, int T, int h, int w,
                   struct vs_err *err)
{
    const bool v22 = model->version == 22;
    const int n = v22 ? 48 : 16;
    const float *mean = v22 ? wan22_mean : wan21_mean, *std = v22 ? wan22_std : wan21_std;
    if (model->z_dim != n)
        return vs_err_set(err, "Wan %s latent statistics are for %d channels, the decoder has %d; "
                               "pass latents already unscaled (--unscaled)", v22 ? "2.2" : "2.1",
                          n, model->z_dim);
    size_t plane = (size_t)T * h * w;
    for (int c = 0; c < n; c++)
        for (size_t i = 0; i < plane; i++)
            latents[c * plane + i] = latents[c * plane + i] * std[c] + mean[c];
    return 0;
}
