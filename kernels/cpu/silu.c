/* x / (1 + exp(-x)) stays finite for every float x (exp overflow gives x / inf = -0). */
#include "kernels/cpu/silu.h"

#include <math.h>

void vs_silu(float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] = x[i] / (1.0f + expf(-x[i]));
}
