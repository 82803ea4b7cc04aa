/* Statistics run one (cell row, group) per task (channels of a group are contiguous: channel ci
 * belongs to group ci / (c / groups)); apply runs one channel per task. */
#include "kernels/cpu/groupnorm.h"

#include <math.h>
#include <stdbool.h>

#include "kernels/cpu/parallel.h"
#include "kernels/cpu/silu.h"

struct cell_job {
    const float *x;
    int c, groups, ch, cw;
    size_t plane, row_stride;
    struct vs_window r;
    struct vs_gn_cell *cells;
};

/* Columns per pass over a cell row (the column sums live on the stack), and columns summed
 * together in registers. */
enum { CHUNK = 256, BLOCK = 16 };

/* Adds row[0 .. m) (or its squared deviations from mu) into acc; m == BLOCK is the hot case,
 * with a constant trip count the compiler turns into vector adds. */
static inline void add_row(double *acc, const float *row, const double *mu, int m)
{
    if (mu)
        for (int l = 0; l < m; l++) {
            double d = row[l] - mu[l];
            acc[l] += d * d;
        }
    else
        for (int l = 0; l < m; l++)
            acc[l] += row[l];
}

/* col[k] = sum over the group's channels, then the cell row's rows, of column x0 + k's value
 * (mean NULL) or squared deviation from mean[k]. Columns are independent, so blocking them and
 * the clones (which differ only in the vector instructions the compiler picks across columns;
 * no contraction, no reassociation in ISO C) give identical bits. */
__attribute__((target_clones("avx512f", "avx2", "default"))) static void
column_sums(const struct cell_job *j, int g, int cy, int x0, int n, const double *mean, double *col)
{
    const int cpg = j->c / j->groups;
    for (int k0 = 0; k0 < n; k0 += BLOCK) {
        const int m = n - k0 < BLOCK ? n - k0 : BLOCK;
        double acc[BLOCK] = {0};
        const double *mu = mean ? mean + k0 : NULL;
        for (int ci = g * cpg; ci < (g + 1) * cpg; ci++)
            for (int y = cy * j->ch; y < (cy + 1) * j->ch; y++) {
                const float *row = j->x + (size_t)ci * j->plane +
                                   (size_t)(j->r.y0 + y) * j->r.W + j->r.x0 + x0 + k0;
                if (m == BLOCK)
                    add_row(acc, row, mu, BLOCK);
                else
                    add_row(acc, row, mu, m);
            }
        for (int l = 0; l < m; l++)
            col[k0 + l] = acc[l];
    }
}

/* One group over one row of cells: two passes (sums, then squared deviations from each cell's
 * mean), each adding the column sums into their cell left to right (cx, in: the cell of
 * column x0 + k and the column's place in it). */
static void cell_row(const struct cell_job *j, int g, int cy)
{
    struct vs_gn_cell *row = j->cells + (size_t)cy * j->row_stride + g;
    const size_t step = (size_t)j->groups;
    const int ncx = j->r.w / j->cw;
    const double count = (double)(j->c / j->groups) * j->ch * j->cw;
    double col[CHUNK], mean[CHUNK];
    for (int cx = 0; cx < ncx; cx++)
        row[cx * step] = (struct vs_gn_cell){0, 0};
    for (int x0 = 0, cx = 0, in = 0; x0 < j->r.w; x0 += CHUNK) {
        int n = j->r.w - x0 < CHUNK ? j->r.w - x0 : CHUNK;
        column_sums(j, g, cy, x0, n, NULL, col);
        for (int k = 0; k < n; k++) {
            row[cx * step].mean += col[k];
            if (++in == j->cw)
                in = 0, cx++;
        }
    }
    for (int cx = 0; cx < ncx; cx++)
        row[cx * step].mean /= count;
    for (int x0 = 0, cx = 0, in = 0; x0 < j->r.w; x0 += CHUNK) {
        int n = j->r.w - x0 < CHUNK ? j->r.w - x0 : CHUNK;
        for (int k = 0, c2 = cx, i2 = in; k < n; k++) {
            mean[k] = row[c2 * step].mean;
            if (++i2 == j->cw)
                i2 = 0, c2++;
        }
        column_sums(j, g, cy, x0, n, mean, col);
        for (int k = 0; k < n; k++) {
            row[cx * step].m2 += col[k];
            if (++in == j->cw)
                in = 0, cx++;
        }
    }
}

/* Tasks are (cell row, group) pairs; each writes its own cells only. */
static void cell_rows(void *ctx, size_t begin, size_t end)
{
    const struct cell_job *j = ctx;
    for (size_t t = begin; t < end; t++)
        cell_row(j, (int)(t % (size_t)j->groups), (int)(t / (size_t)j->groups));
}

void vs_gn_cell_stats(const float *x, int c, size_t plane, struct vs_window r, int ch, int cw,
                      int groups, struct vs_gn_cell *cells, size_t row_stride)
{
    struct cell_job j = {x, c, groups, ch, cw, plane, row_stride, r, cells};
    vs_parallel_for((size_t)(r.h / ch) * (size_t)groups, cell_rows, &j);
}

/* acc (+) b by Chan's formula; an empty acc takes b as is. */
static void merge(struct vs_gn_stats *acc, struct vs_gn_stats b)
{
    struct vs_gn_stats a = *acc;
    if (a.count == 0) {
        *acc = b;
        return;
    }
    double n = a.count + b.count, d = b.mean - a.mean;
    acc->count = n;
    acc->mean = a.mean + d * (b.count / n);
    acc->m2 = a.m2 + b.m2 + d * d * (a.count * b.count / n);
}

void vs_gn_merge_cells(int groups, const struct vs_gn_cell *cells, size_t n, double count,
                       struct vs_gn_stats *st)
{
    for (int g = 0; g < groups; g++)
        st[g] = (struct vs_gn_stats){0, 0, 0};
    for (size_t i = 0; i < n; i++)
        for (int g = 0; g < groups; g++) {
            const struct vs_gn_cell *cell = &cells[i * (size_t)groups + (size_t)g];
            merge(&st[g], (struct vs_gn_stats){count, cell->mean, cell->m2});
        }
}

void vs_gn_region_stats(const float *x, int c, size_t plane, struct vs_window r, int groups,
                        struct vs_gn_stats *st)
{
    struct vs_gn_cell cells[VS_GN_MAX_GROUPS];
    const bool empty = r.h == 0 || r.w == 0;
    if (!empty)
        vs_gn_cell_stats(x, c, plane, r, r.h, r.w, groups, cells, 0);
    for (int g = 0; g < groups; g++)
        st[g] = empty ? (struct vs_gn_stats){0, 0, 0}
                      : (struct vs_gn_stats){(double)(c / groups) * r.h * r.w, cells[g].mean,
                                             cells[g].m2};
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
