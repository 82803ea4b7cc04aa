/* Threads split tokens; each output is one contiguous dot product over cin. */
#include "kernels/cpu/linear.h"

#include "kernels/cpu/parallel.h"

struct lin_job {
    const float *x, *w, *b;
    float *y;
    int cin, cout;
};

static void lin_tokens(void *ctx, size_t begin, size_t end)
{
    const struct lin_job *j = ctx;
    for (size_t t = begin; t < end; t++) {
        const float *restrict xt = j->x + t * j->cin;
        float *yt = j->y + t * j->cout;
        for (int co = 0; co < j->cout; co++) {
            const float *restrict wr = j->w + (size_t)co * j->cin;
            float s = 0;
            for (int ci = 0; ci < j->cin; ci++)
                s += wr[ci] * xt[ci];
            yt[co] = s + (j->b ? j->b[co] : 0.0f);
        }
    }
}

void vs_linear(const float *x, const float *w, const float *b, float *y, size_t n, int cin,
               int cout)
{
    struct lin_job j = {x, w, b, y, cin, cout};
    vs_parallel_for(n, lin_tokens, &j);
}
