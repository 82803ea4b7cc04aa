/* GroupNorm over CHW planes, split so statistics can be combined over tiles exactly.
 *
 * Recipe used by the tiled planner at every synchronisation point:
 *   1. vs_gn_region_stats: per group (count, mean, M2 = sum of squared deviations) over one
 *      tile's OWNED region, two-pass (mean first, then deviations), accumulated in double;
 *   2. vs_gn_merge: Chan's pairwise merge of those per-tile statistics (exact in double:
 *      M2 = M2a + M2b + d^2 na nb / n with d the difference of the means);
 *   3. vs_gn_finish: mean and 1/sqrt(var + eps) with the biased variance, as PyTorch;
 *   4. vs_gn_apply: normalise a whole tile buffer (owned + halo), optionally fused with SiLU.
 * vs_groupnorm runs the same passes over one full plane (the monolithic path), so a split image
 * gets the statistics of the whole image up to double rounding. Groups <= VS_GN_MAX_GROUPS. */
#ifndef VS_KERNELS_CPU_GROUPNORM_H
#define VS_KERNELS_CPU_GROUPNORM_H

#include <stddef.h>

#include "kernels/window.h"

#define VS_GN_MAX_GROUPS 1024

struct vs_gn_stats {
    double count, mean, m2;
};

/* Statistics of region r of x (c channels, `plane` floats apart, each an r.H x r.W frame) into
 * st[groups]. */
void vs_gn_region_stats(const float *x, int c, size_t plane, struct vs_window r, int groups,
                        struct vs_gn_stats *st);
/* acc[g] = acc[g] (+) part[g]; an empty acc (count 0) takes part as is. */
void vs_gn_merge(int groups, struct vs_gn_stats *acc, const struct vs_gn_stats *part);
void vs_gn_finish(int groups, const struct vs_gn_stats *st, float eps, float *mean,
                  float *rstd);
/* x[c][plane] = (x - mean[g]) * rstd[g] * gamma[c] + beta[c], then SiLU if silu. */
void vs_gn_apply(float *x, int c, size_t plane, int groups, const float *mean, const float *rstd,
                 const float *gamma, const float *beta, int silu);
/* Whole-plane GroupNorm (+ optional SiLU). */
void vs_groupnorm(float *x, int c, int h, int w, int groups, float eps, const float *gamma,
                  const float *beta, int silu);

#endif
