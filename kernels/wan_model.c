/* Wan 2.1 decoder: properties of the layer list and the latent statistics. */
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

int vs_wan_stage_radius(const struct vs_wan_stage *s)
{
    switch (s->kind) {
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

int vs_wan_stage_frames_out(const struct vs_wan_stage *s, long f)
{
    return s->kind == VS_WAN_RESAMPLE && s->temporal && f > 0 ? 2 : 1;
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

int vs_wan_latent_channels(const struct vs_wan_model *model)
{
    return model->z_dim;
}

int vs_wan_spatial_scale(const struct vs_wan_model *model)
{
    int scale = 1;
    for (int i = 0; i < model->n_stages; i++)
        if (model->stages[i].kind == VS_WAN_RESAMPLE)
            scale *= 2;
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
    if (model->z_dim != 16)
        return vs_err_set(err, "Wan latent statistics are for 16 channels, the decoder has %d; "
                               "pass latents already unscaled (--unscaled)", model->z_dim);
    size_t plane = (size_t)T * h * w;
    for (int c = 0; c < 16; c++)
        for (size_t i = 0; i < plane; i++)
            latents[c * plane + i] = latents[c * plane + i] * wan21_std[c] + wan21_mean[c];
    return 0;
}
