/* One channel per task; each input row is written to two output rows. */
#include "kernels/cpu/upsample.h"

#include <stddef.h>
#include <string.h>

#include "kernels/cpu/parallel.h"

struct up_job {
    const float *in;
    float *out;
    int h, w;
};

static void up_channels(void *ctx, size_t begin, size_t end)
{
    const struct up_job *j = ctx;
    const size_t ow = 2 * (size_t)j->w;
    for (size_t c = begin; c < end; c++) {
        const float *in = j->in + c * j->h * j->w;
        float *out = j->out + c * 4 * j->h * j->w;
        for (int y = 0; y < j->h; y++) {
            float *o = out + 2 * (size_t)y * ow;
            for (int x = 0; x < j->w; x++)
                o[2 * x] = o[2 * x + 1] = in[(size_t)y * j->w + x];
            memcpy(o + ow, o, ow * sizeof *o);
        }
    }
}

void vs_upsample_nearest2x(const float *in, float *out, int c, int h, int w)
{
    struct up_job j = {in, out, h, w};
    vs_parallel_for((size_t)c, up_channels, &j);
}
