/* Statistics run one group per task (channels of a group are contiguous: channel ci belongs to
 * group ci / (c / groups)); apply runs one channel per task. */
#include "kernels/cpu/groupnorm.h"

#include <math.h>
#include <stdbool.h>

#include "kernels/cpu/parallel.h"
#include "kernels/cpu/silu.h"

struct stat_job {
    const float *x;
    int c, groups;
    size_t plane;
    struct vs_window r;
    struct vs_gn_stats *st;
};

static const float *row_of(const struct stat_job *j, int ci, int y)
{
    return j->x + (size_t)ci * j->plane + (size_t)(j->r.y0 + y) * j->r.W + j->r.x0;
}

/* Sums of a region's rows (of x, or of (x - mean)^2 when sq) in LANES independent partial sums,
 * lane l taking columns l, l + LANES, ... of every row in turn, then added in lane order: a fixed
 * order per group whatever the vector width. The clones differ only in the vector instructions
 * the compiler picks for the lanes (no contraction, no reassociation in ISO C), so they give
 * identical bits. */
enum { LANES = 8 };

__attribute__((target_clones("avx512f", "avx2", "default"))) static double
group_sum(const struct stat_job *j, int g, double mean, bool sq)
{
    const int cpg = j->c / j->groups, w = j->r.w;
    double acc[LANES] = {0}, s = 0;
    for (int ci = g * cpg; ci < (g + 1) * cpg; ci++)
        for (int y = 0; y < j->r.h; y++) {
            const float *row = row_of(j, ci, y);
            int x = 0;
            if (sq) {
                for (; x + LANES <= w; x += LANES)
                    for (int l = 0; l < LANES; l++) {
                        double d = row[x + l] - mean;
                        acc[l] += d * d;
                    }
                for (int l = 0; x < w; x++, l++) {
                    double d = row[x] - mean;
                    acc[l] += d * d;
                }
            } else {
                for (; x + LANES <= w; x += LANES)
                    for (int l = 0; l < LANES; l++)
                        acc[l] += row[x + l];
                for (int l = 0; x < w; x++, l++)
                    acc[l] += row[x];
            }
        }
    for (int l = 0; l < LANES; l++)
        s += acc[l];
    return s;
}

static void stats_groups(void *ctx, size_t begin, size_t end)
{
    const struct stat_job *j = ctx;
    const int cpg = j->c / j->groups;
    for (size_t g = begin; g < end; g++) {
        double n = (double)cpg * j->r.w * j->r.h;
        double mean = n > 0 ? group_sum(j, (int)g, 0, false) / n : 0;
        j->st[g] = (struct vs_gn_stats){n, mean, group_sum(j, (int)g, mean, true)};
    }
}

void vs_gn_region_stats(const float *x, int c, size_t plane, struct vs_window r, int groups,
                        struct vs_gn_stats *st)
{
    struct stat_job j = {x, c, groups, plane, r, st};
    vs_parallel_for((size_t)groups, stats_groups, &j);
}

void vs_gn_merge(int groups, struct vs_gn_stats *acc, const struct vs_gn_stats *part)
{
    for (int g = 0; g < groups; g++) {
        struct vs_gn_stats a = acc[g], b = part[g];
        double n = a.count + b.count;
        if (b.count == 0)
            continue;
        if (a.count == 0) {
            acc[g] = b;
            continue;
        }
        double d = b.mean - a.mean;
        acc[g].count = n;
        acc[g].mean = a.mean + d * (b.count / n);
        acc[g].m2 = a.m2 + b.m2 + d * d * (a.count * b.count / n);
    }
}

void vs_gn_finish(int groups, const struct vs_gn_stats *st, float eps, float *mean, float *rstd)
{
    for (int g = 0; g < groups; g++) {
        double var = st[g].count > 0 ? st[g].m2 / st[g].count : 0;
        mean[g] = (float)st[g].mean;
        rstd[g] = (float)(1.0 / sqrt(var + eps));
    }
}

struct apply_job {
    float *x;
    int c, groups, silu;
    size_t plane;
    const float *mean, *rstd, *gamma, *beta;
};

/* Clones as group_sum's: identical bits. */
__attribute__((target_clones("avx512f", "avx2", "default"))) static void
apply_channels(void *ctx, size_t begin, size_t end)
{
    const struct apply_job *j = ctx;
    const int cpg = j->c / j->groups;
    for (size_t ci = begin; ci < end; ci++) {
        int g = (int)ci / cpg;
        float scale = j->rstd[g] * j->gamma[ci];
        float shift = j->beta[ci] - j->mean[g] * scale;
        float *p = j->x + ci * j->plane;
        for (size_t i = 0; i < j->plane; i++)
            p[i] = p[i] * scale + shift;
        if (j->silu)
            vs_silu(p, j->plane);
    }
}

void vs_gn_apply(float *x, int c, size_t plane, int groups, const float *mean, const float *rstd,
                 const float *gamma, const float *beta, int silu)
{
    struct apply_job j = {x, c, groups, silu, plane, mean, rstd, gamma, beta};
    vs_parallel_for((size_t)c, apply_channels, &j);
}

void vs_groupnorm(float *x, int c, int h, int w, int groups, float eps, const float *gamma,
                  const float *beta, int silu)
{
    struct vs_gn_stats st[VS_GN_MAX_GROUPS];
    float mean[VS_GN_MAX_GROUPS], rstd[VS_GN_MAX_GROUPS];
    struct vs_window all = {0, 0, h, w, h, w};
    vs_gn_region_stats(x, c, (size_t)h * w, all, groups, st);
    vs_gn_finish(groups, st, eps, mean, rstd);
    vs_gn_apply(x, c, (size_t)h * w, groups, mean, rstd, gamma, beta, silu);
}
