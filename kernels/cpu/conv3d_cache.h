/* The frame cache of a causal conv3d: the last kt-1 input frames of one window.
 *
 * Invariants:
 * - The cache belongs to one layer and one window (one tile); frames pushed are [C][h][w] over
 *   that window. It is carried across frames and across chunks of a video, never restarted:
 *   a step over frames one at a time equals the conv over the whole zero-padded sequence.
 * - Frames missing at the start (fewer than kt-1 pushed) are the causal zero padding.
 * - Storage is the caller's ((kt-1) * frame_floats floats), so the caller accounts for it.
 */
#ifndef VS_KERNELS_CPU_CONV3D_CACHE_H
#define VS_KERNELS_CPU_CONV3D_CACHE_H

#include "kernels/cpu/conv3d.h"

#ifdef __cplusplus
extern "C" { /* also called from the CUDA sources */
#endif

struct vs_conv3d_cache {
    int cap;             /* kt - 1 */
    int kept;            /* frames held, 0..cap */
    size_t frame_floats;
    float *frames[VS_CONV3D_MAX_KT - 1]; /* oldest first */
};

/* Floats of storage a cache for a conv with kt time taps over frames of frame_floats needs. */
size_t vs_conv3d_cache_floats(int kt, size_t frame_floats);

/* Binds an empty cache to storage of vs_conv3d_cache_floats(kt, frame_floats) floats. */
void vs_conv3d_cache_init(struct vs_conv3d_cache *cache, int kt, size_t frame_floats,
                          float *storage);

/* The kt input frames of a step with current frame `in`, oldest first (NULL: zero padding). */
void vs_conv3d_cache_frames(const struct vs_conv3d_cache *cache, int kt, const float *in,
                            const float **frames);
/* Makes room for the current frame (dropping the oldest when full) and returns the slot it must
 * be copied into, or NULL when the conv keeps no frames. */
float *vs_conv3d_cache_slot(struct vs_conv3d_cache *cache);

/* Convolves the current frame `in` (over win) with the cached ones into out (over wout), then
 * pushes `in` into the cache, with the layers and copies of backend `be` (kernels/backend.h). */
struct vs_backend;
void vs_causal_conv3d_step_on(const struct vs_backend *be, const struct vs_conv3d *c,
                              struct vs_conv3d_cache *cache, const float *in,
                              const struct vs_window *win, float *out,
                              const struct vs_window *wout);
/* The same on the CPU backend. */
void vs_causal_conv3d_step(const struct vs_conv3d *c, struct vs_conv3d_cache *cache,
                           const float *in, const struct vs_window *win, float *out,
                           const struct vs_window *wout);

#ifdef __cplusplus
}
#endif

#endif
