/* RMS norm per pixel (see rmsnorm.h). Pixels go in blocks so the sums of squares sit on the
 * stack (layers never allocate); blocks are split across threads. The operations follow torch's
 * order (divide by the clamped norm, then scale, then gamma) to stay within rounding of it. */
#include "kernels/cpu/rmsnorm.h"

#include <math.h>

#include "kernels/cpu/parallel.h"
#include "kernels/cpu/silu.h"

/* Below VS_RMS_PARALLEL_MIN values, starting threads costs more than it saves. */
enum { VS_RMS_BLOCK = 256, VS_RMS_PARALLEL_MIN = 1 << 16 };

struct rms_job {
    const float *in;
    float *out;
    int c;
    size_t n;
    const float *gamma;
    bool silu;
};

/* The clones differ only in the vector instructions the compiler picks for the per-pixel lanes
 * (no contraction, no reassociation in ISO C): identical bits. */
__attribute__((target_clones("avx512f", "avx2", "default"))) static void
rms_blocks(void *ctx, size_t begin, size_t end)
{
    const struct rms_job *j = ctx;
    const float scale = sqrtf((float)j->c);
    for (size_t b = begin; b < end; b++) {
        size_t p0 = b * VS_RMS_BLOCK;
        size_t np = j->n - p0 < VS_RMS_BLOCK ? j->n - p0 : VS_RMS_BLOCK;
        float norm[VS_RMS_BLOCK];
        for (size_t p = 0; p < np; p++)
            norm[p] = 0.0f;
        for (int c = 0; c < j->c; c++) {
            const float *x = j->in + (size_t)c * j->n + p0;
            for (size_t p = 0; p < np; p++)
                norm[p] += x[p] * x[p];
        }
        for (size_t p = 0; p < np; p++)
            norm[p] = fmaxf(sqrtf(norm[p]), 1e-12f);
        for (int c = 0; c < j->c; c++) {
            const float *x = j->in + (size_t)c * j->n + p0;
            float *y = j->out + (size_t)c * j->n + p0;
            for (size_t p = 0; p < np; p++)
                y[p] = x[p] / norm[p] * scale * j->gamma[c];
            if (j->silu)
                vs_silu(y, np);
        }
    }
}

void vs_rmsnorm(const float *in, float *out, int c, size_t n, const float *gamma, bool silu)
{
    struct rms_job job = {in, out, c, n, gamma, silu};
    size_t blocks = (n + VS_RMS_BLOCK - 1) / VS_RMS_BLOCK;
    if ((size_t)c * n < VS_RMS_PARALLEL_MIN) {
        rms_blocks(&job, 0, blocks);
        return;
    }
    vs_parallel_for(blocks, rms_blocks, &job);
}
