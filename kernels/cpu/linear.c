/* Threads split tokens; the dots are vs_dots' (fixed order per output, see dots.h). */
#include "kernels/cpu/linear.h"

#include "kernels/cpu/dots.h"
#include "kernels/cpu/parallel.h"

struct lin_job {
    const float *x, *w, *b;
    float *y;
    int cin, cout;
};

static void lin_tokens(void *ctx, size_t begin, size_t end)
{
    const struct lin_job *j = ctx;
    float *y = j->y + begin * j->cout;
    vs_dots(j->x + begin * j->cin, (size_t)j->cin, end - begin, j->w, (size_t)j->cin,
            (size_t)j->cout, j->cin, y, (size_t)j->cout);
    if (j->b)
        for (size_t t = begin; t < end; t++, y += j->cout)
            for (int co = 0; co < j->cout; co++)
                y[co] += j->b[co];
}

void vs_linear(const float *x, const float *w, const float *b, float *y, size_t n, int cin,
               int cout)
{
    struct lin_job j = {x, w, b, y, cin, cout};
    vs_parallel_for(n, lin_tokens, &j);
}
