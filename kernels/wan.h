/* Wan 2.1 and 2.2 causal 3D VAE decoders (diffusers AutoencoderKLWan.decode), C reference on the
 * CPU. Wan 2.2 (TI2V-5B, Ovi): 48 latent channels, residual up blocks whose shortcut duplicates
 * channels into space and time (DupUp3D), 12 output channels unpatchified 2x2 (16x spatial).
 *
 * For the CLI (decoder-sd): `vramshim decode --arch wan21|wan22` calls, in order,
 *   vs_wan_load(path, &model, &err);
 *   if (scaled) vs_wan_unscale(model, latents, T, h, w);   // diffusion latents -> decoder input
 *   vs_wan_plan(model, T, h, w, &opts, &plan, &err);        // optional: shows the plan first
 *   vs_wan_decode(model, latents, T, h, w, &opts, out, &stats, &err);
 *   vs_wan_free(model);
 * with latents [C][T][h][w] (NCTHW, N=1, float32) and out [3][T'][H][W], T' = vs_wan_out_frames,
 * H = h * vs_wan_spatial_scale. Output values are clamped to [-1, 1], as diffusers does.
 *
 * Decoding is causal, latent frame by latent frame, with each layer's frame cache carried across
 * frames and never restarted; the low-resolution part with the mid attention (global per frame)
 * runs full-frame, the rest in spatial tiles with exact halos. Wan has no GroupNorm (its RMS norm
 * is per pixel), so every tiling gives the values of the untiled decode: there is no separate
 * "blend" mode for Wan. The streaming API decodes a video in chunks of latent frames with the
 * same result as one pass.
 */
#ifndef VS_KERNELS_WAN_H
#define VS_KERNELS_WAN_H

#include <stddef.h>

#include "kernels/error.h"

struct vs_allocator;
struct vs_backend;
struct vs_wan_model; /* weights and layer list, read-only once loaded */

/* Loads the decoder from a safetensors file with diffusers (`post_quant_conv`, `decoder.conv_in`,
 * ...) or original Wan key names (`conv2`, `decoder.conv1`, ..., as ComfyUI's
 * wan_2.1_vae.safetensors and wan2.2_vae.safetensors), optionally under `vae.` or
 * `first_stage_model.`; the version follows from the names (Wan 2.2's residual up blocks).
 * Dimensions come from the tensor shapes. Missing, mis-shaped or unexpected decoder tensors are
 * errors naming the tensor. */
int vs_wan_load(const char *path, struct vs_wan_model **model, struct vs_err *err);
/* The same from opened weights (a file or tensors in memory); w stays the caller's. */
struct vs_weights;
int vs_wan_load_weights(struct vs_weights *w, struct vs_wan_model **model, struct vs_err *err);
void vs_wan_free(struct vs_wan_model *model);

int vs_wan_version(const struct vs_wan_model *model);          /* 21 or 22 */
/* 0 when `want` (21 or 22; 0: any) is the model's version, else an error naming `label` and the
 * decoder it holds (for an explicit --arch wan21|wan22). */
int vs_wan_check_version(const struct vs_wan_model *model, int want, const char *label,
                         struct vs_err *err);
int vs_wan_latent_channels(const struct vs_wan_model *model);
int vs_wan_spatial_scale(const struct vs_wan_model *model);   /* 8 for Wan 2.1, 16 for 2.2 */
int vs_wan_out_frames(const struct vs_wan_model *model, int latent_frames); /* 1 + 4 (T-1) */

/* Diffusion-model latents -> decoder input, in place: z = z * std + mean per channel (the
 * published latent statistics of Wan 2.1, 16 channels, or Wan 2.2, 48). Fails if the model's
 * latent channels are not those of its version. */
int vs_wan_unscale(const struct vs_wan_model *model, float *latents, int T, int h, int w,
                   struct vs_err *err);

/* Progress: `done` of `total` steps (a step = one tile over one latent frame, plus one step per
 * latent frame of the full-frame part). */
typedef void (*vs_wan_progress_fn)(void *ctx, long done, long total);

struct vs_wan_opts {
    int tile;          /* output pixels per tile side; 0: the largest tile the budget allows */
    size_t budget;     /* working-memory budget in bytes; 0: none (one tile when tile == 0) */
    vs_wan_progress_fn progress;
    void *progress_ctx;
    const struct vs_allocator *allocator; /* working memory; NULL: the backend's */
    const struct vs_backend *backend;     /* NULL: the CPU; latents and out in its memory */
};

struct vs_wan_plan {
    int tile_h, tile_w;          /* output pixels per tile (the last row/column may be smaller) */
    int tiles_y, tiles_x;
    int halo;                    /* latent pixels of halo at the cut, on interior edges */
    int cut_stage;               /* index of the first tiled layer (after the mid block) */
    double halo_overhead;        /* computed output-resolution pixels / output pixels */
    size_t predicted_peak;       /* bytes of working memory (outputs excluded) */
};

struct vs_wan_stats {
    struct vs_wan_plan plan;
    size_t measured_peak;        /* bytes, counted by kernels/mem.h */
};

/* Chooses tiles for a decode of T latent frames of h x w: opts->tile if set, else the largest
 * tile whose predicted peak fits opts->budget. Fails naming the budget when even the smallest
 * tile does not fit. */
int vs_wan_plan(const struct vs_wan_model *model, int T, int h, int w,
                const struct vs_wan_opts *opts, struct vs_wan_plan *plan, struct vs_err *err);

/* One line: frames, tile grid, tile and halo in output pixels, halo overhead. */
void vs_wan_plan_describe(const struct vs_wan_plan *plan, const struct vs_wan_model *model, int T,
                          char *buf, size_t len);

/* One-pass decode. latents [C][T][h][w]; out [3][T'][H][W]; stats may be NULL. */
int vs_wan_decode(const struct vs_wan_model *model, const float *latents, int T, int h, int w,
                  const struct vs_wan_opts *opts, float *out, struct vs_wan_stats *stats,
                  struct vs_err *err);

/* Streaming decode of a video of T latent frames in chunks: every push continues every layer's
 * frame cache from the previous push. The frames of a push land in out, the [3][T'][H][W] buffer
 * of the whole video. */
struct vs_wan_stream;
int vs_wan_stream_open(const struct vs_wan_model *model, int T, int h, int w,
                       const struct vs_wan_opts *opts, struct vs_wan_stream **stream,
                       struct vs_err *err);
/* latents [C][n][h][w]: the next n latent frames. */
int vs_wan_stream_push(struct vs_wan_stream *stream, const float *latents, int n, float *out,
                       struct vs_err *err);
/* Frees the stream; fills stats if not NULL. */
void vs_wan_stream_close(struct vs_wan_stream *stream, struct vs_wan_stats *stats);

#endif
