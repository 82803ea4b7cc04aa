/* Frame cache of a causal conv3d (see conv3d_cache.h). Pushing rotates buffer pointers and
 * copies one frame, so the cache costs one frame copy per step. */
#include "kernels/cpu/conv3d_cache.h"

#include <string.h>

#include "kernels/backend.h"

size_t vs_conv3d_cache_floats(int kt, size_t frame_floats)
{
    return (size_t)(kt - 1) * frame_floats;
}

void vs_conv3d_cache_init(struct vs_conv3d_cache *cache, int kt, size_t frame_floats,
                          float *storage)
{
    cache->cap = kt - 1;
    cache->kept = 0;
    cache->frame_floats = frame_floats;
    for (int i = 0; i < cache->cap; i++)
        cache->frames[i] = storage + (size_t)i * frame_floats;
}

float *vs_conv3d_cache_slot(struct vs_conv3d_cache *cache)
{
    if (cache->cap == 0)
        return NULL;
    if (cache->kept == cache->cap) {
        float *oldest = cache->frames[0];
        memmove(cache->frames, cache->frames + 1, (size_t)(cache->cap - 1) * sizeof(float *));
        cache->frames[cache->cap - 1] = oldest;
        cache->kept--;
    }
    return cache->frames[cache->kept++];
}

void vs_conv3d_cache_frames(const struct vs_conv3d_cache *cache, int kt, const float *in,
                            const float **frames)
{
    frames[kt - 1] = in;
    for (int back = 1; back < kt; back++)
        frames[kt - 1 - back] = cache->kept - back >= 0 ? cache->frames[cache->kept - back] : NULL;
}

void vs_causal_conv3d_step_on(const struct vs_backend *be, const struct vs_conv3d *c,
                              struct vs_conv3d_cache *cache, const float *in,
                              const struct vs_window *win, float *out,
                              const struct vs_window *wout)
{
    const float *frames[VS_CONV3D_MAX_KT];
    vs_conv3d_cache_frames(cache, c->kt, in, frames);
    be->conv3d_frame(c, frames, win, out, wout);
    float *slot = vs_conv3d_cache_slot(cache);
    if (slot)
        be->copy(slot, in, cache->frame_floats * sizeof(float));
}

void vs_causal_conv3d_step(const struct vs_conv3d *c, struct vs_conv3d_cache *cache,
                           const float *in, const struct vs_window *win, float *out,
                           const struct vs_window *wout)
{
    vs_causal_conv3d_step_on(&vs_cpu_backend, c, cache, in, win, out, wout);
}
