/* One channel per task; each output value gathers one source value (see space.h). */
#include "kernels/cpu/space.h"

#include <stddef.h>

#include "kernels/cpu/parallel.h"

struct vs_window vs_to_space_src(const struct vs_window *d, int f)
{
    int y0 = d->y0 / f, x0 = d->x0 / f;
    return (struct vs_window){y0, x0, (d->y0 + d->h - 1) / f + 1 - y0,
                              (d->x0 + d->w - 1) / f + 1 - x0, d->H / f, d->W / f};
}

struct space_job {
    float *dst;
    const float *src;
    const struct vs_window *dwin, *swin;
    const struct vs_to_space *g;
};

static void space_channels(void *ctx, size_t begin, size_t end)
{
    const struct space_job *j = ctx;
    const struct vs_to_space *g = j->g;
    const struct vs_window *d = j->dwin, *s = j->swin;
    for (size_t c = begin; c < end; c++)
        for (int y = 0; y < d->h; y++) {
            const int Y = d->y0 + y;
            const int row_slot = (int)c * g->group + g->phase + Y % g->f * g->ystride;
            float *out = j->dst + (c * d->h + (size_t)y) * d->w;
            for (int x = 0; x < d->w; x++) {
                const int X = d->x0 + x;
                const int sc = (row_slot + X % g->f * g->xstride) / g->repeats;
                const float v = j->src[((size_t)sc * s->h + (size_t)(Y / g->f - s->y0)) * s->w +
                                       (size_t)(X / g->f - s->x0)];
                out[x] = g->add ? out[x] + v : v;
            }
        }
}

void vs_to_space(float *dst, const struct vs_window *dwin, const float *src,
                 const struct vs_window *swin, const struct vs_to_space *g)
{
    struct space_job j = {dst, src, dwin, swin, g};
    vs_parallel_for((size_t)g->c, space_channels, &j);
}
