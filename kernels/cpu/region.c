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
