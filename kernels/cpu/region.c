/* Plain row copies; threads split channels (or rows for the transpose). */
#include "kernels/cpu/region.h"

#include <string.h>

#include "kernels/cpu/parallel.h"

struct region_job {
    const float *src;
    float *dst;
    int sh, sw, y0, x0, dh, dw, add;
};

static void region_channels(void *ctx, size_t begin, size_t end)
{
    const struct region_job *j = ctx;
    for (size_t c = begin; c < end; c++)
        for (int y = 0; y < j->dh; y++) {
            const float *restrict s =
                j->src + (c * j->sh + (size_t)(y + j->y0)) * j->sw + j->x0;
            float *restrict d = j->dst + (c * j->dh + (size_t)y) * j->dw;
            if (j->add)
                for (int x = 0; x < j->dw; x++)
                    d[x] += s[x];
            else
                memcpy(d, s, (size_t)j->dw * sizeof *d);
        }
}

void vs_crop(const float *src, int c, int sh, int sw, int y0, int x0, float *dst, int dh, int dw)
{
    struct region_job j = {src, dst, sh, sw, y0, x0, dh, dw, 0};
    vs_parallel_for((size_t)c, region_channels, &j);
}

void vs_add_crop(float *dst, int c, int dh, int dw, const float *src, int sh, int sw, int y0,
                 int x0)
{
    struct region_job j = {src, dst, sh, sw, y0, x0, dh, dw, 1};
    vs_parallel_for((size_t)c, region_channels, &j);
}

struct tr_job {
    const float *in;
    float *out;
    size_t rows, cols;
};

static void tr_rows(void *ctx, size_t begin, size_t end)
{
    const struct tr_job *j = ctx;
    for (size_t r = begin; r < end; r++)
        for (size_t c = 0; c < j->cols; c++)
            j->out[c * j->rows + r] = j->in[r * j->cols + c];
}

void vs_transpose(const float *in, float *out, size_t rows, size_t cols)
{
    struct tr_job j = {in, out, rows, cols};
    vs_parallel_for(rows, tr_rows, &j);
}

struct paste_job {
    float *dst;
    const float *src;
    int dh, dw, y0, x0, sh, sw, sy0, sx0, h, w;
    bool clamp;
};

static void paste_channels(void *ctx, size_t begin, size_t end)
{
    const struct paste_job *j = ctx;
    for (size_t c = begin; c < end; c++)
        for (int y = 0; y < j->h; y++) {
            const float *restrict s =
                j->src + (c * j->sh + (size_t)(j->sy0 + y)) * j->sw + j->sx0;
            float *restrict d = j->dst + (c * j->dh + (size_t)(j->y0 + y)) * j->dw + j->x0;
            if (!j->clamp)
                memcpy(d, s, (size_t)j->w * sizeof *d);
            else
                for (int x = 0; x < j->w; x++)
                    d[x] = s[x] < -1.0f ? -1.0f : s[x] > 1.0f ? 1.0f : s[x];
        }
}

void vs_paste(float *dst, int c, int dh, int dw, int y0, int x0, const float *src, int sh, int sw,
              int sy0, int sx0, int h, int w, bool clamp)
{
    struct paste_job j = {dst, src, dh, dw, y0, x0, sh, sw, sy0, sx0, h, w, clamp};
    vs_parallel_for((size_t)c, paste_channels, &j);
}

/* Sequential: the weight sum is shared by all channels and blend is not the fast path. */
void vs_blend_acc(float *out, float *wsum, int c, int H, int W, int y0, int x0, const float *src,
                  int h, int w, const float *wy, const float *wx)
{
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            float wgt = wy[y] * wx[x];
            size_t o = (size_t)(y0 + y) * W + x0 + x;
            wsum[o] += wgt;
            for (int ci = 0; ci < c; ci++)
                out[(size_t)ci * H * W + o] += wgt * src[((size_t)ci * h + y) * w + x];
        }
}

void vs_blend_div(float *out, const float *wsum, int c, size_t hw)
{
    for (size_t i = 0; i < (size_t)c * hw; i++)
        out[i] /= wsum[i % hw];
}
