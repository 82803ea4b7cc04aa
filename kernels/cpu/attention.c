/* Blocks of QB queries meet blocks of KB keys so each key/value row loaded serves QB queries.
 * Per query: m = running max, l = running sum of exp(s - m), acc = running sum of exp(s - m) v;
 * a new block with a larger max rescales l and acc by exp(m_old - m_new). */
#include "kernels/cpu/attention.h"

#include <math.h>
#include <string.h>

#include "kernels/cpu/dots.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cpu/silu.h"

#define QB 8
#define KB 64

struct attn_job {
    const float *q, *k, *v;
    float *out;
    size_t n;
    int d;
    float scale;
};

/* The clones differ only in the vector instructions the compiler picks for the loops over
 * channels and keys (no contraction, no reassociation in ISO C): identical bits. */
__attribute__((target_clones("avx512f", "avx2", "default"))) static void
attend_block(const struct attn_job *j, size_t q0, size_t nq)
{
    float acc[QB][VS_ATTN_MAX_D], m[QB], l[QB], s[QB][KB];
    const int d = j->d;
    for (size_t i = 0; i < nq; i++) {
        memset(acc[i], 0, (size_t)d * sizeof(float));
        m[i] = -INFINITY;
        l[i] = 0;
    }
    for (size_t k0 = 0; k0 < j->n; k0 += KB) {
        size_t nk = j->n - k0 < KB ? j->n - k0 : KB;
        vs_dots(j->q + q0 * d, (size_t)d, nq, j->k + k0 * d, (size_t)d, nk, d, &s[0][0], KB);
        for (size_t i = 0; i < nq; i++) {
            float bmax = -INFINITY;
            for (size_t t = 0; t < nk; t++) {
                s[i][t] *= j->scale;
                bmax = s[i][t] > bmax ? s[i][t] : bmax;
            }
            float mnew = bmax > m[i] ? bmax : m[i];
            float corr = vs_expf(m[i] - mnew); /* exp(-inf) = 0 on the first block */
            l[i] *= corr;
            for (int c = 0; c < d; c++)
                acc[i][c] *= corr;
            for (size_t t = 0; t < nk; t++)
                s[i][t] -= mnew;
            vs_exp(s[i], nk);
            for (size_t t = 0; t < nk; t++)
                l[i] += s[i][t];
            m[i] = mnew;
        }
        for (size_t t = 0; t < nk; t++) {
            const float *restrict vt = j->v + (k0 + t) * d;
            for (size_t i = 0; i < nq; i++) {
                float p = s[i][t];
                float *restrict a = acc[i];
                for (int c = 0; c < d; c++)
                    a[c] += p * vt[c];
            }
        }
    }
    for (size_t i = 0; i < nq; i++) {
        float inv = 1.0f / l[i];
        float *o = j->out + (q0 + i) * d;
        for (int c = 0; c < d; c++)
            o[c] = acc[i][c] * inv;
    }
}

static void attend_range(void *ctx, size_t begin, size_t end)
{
    const struct attn_job *j = ctx;
    for (size_t b = begin; b < end; b++) {
        size_t q0 = b * QB;
        attend_block(j, q0, j->n - q0 < QB ? j->n - q0 : QB);
    }
}

int vs_attention(const float *q, const float *k, const float *v, float *out, size_t n, int d,
                 float scale)
{
    if (d < 1 || d > VS_ATTN_MAX_D)
        return -1;
    struct attn_job j = {q, k, v, out, n, d, scale};
    vs_parallel_for((n + QB - 1) / QB, attend_range, &j);
    return 0;
}
