/* GroupNorm over CHW planes, with statistics that do not depend on the tiling.
 *
 * Recipe of the tile executor (tile_exec.c) at every synchronisation point of the tiled part:
 *   1. vs_gn_cell_stats: per group and CELL (count, mean, M2 = sum of squared deviations) over
 *      a tile's owned region, cut into cells of one latent pixel scaled to the current level;
 *      each cell's statistics depend on the cell's values only (one fixed order of operations,
 *      in double), so a cell has the same bits in every tile and in the monolithic frame;
 *   2. vs_gn_merge_cells: Chan's pairwise merge (M2 = M2a + M2b + d^2 na nb / n with d the
 *      difference of the means) over all cells of the image, in one fixed order (row-major),
 *      after every tile reached the norm: the same bits whatever the tiling;
 *   3. vs_gn_finish: mean and 1/sqrt(var + eps) with the biased variance, as PyTorch;
 *   4. vs_gn_apply: normalise a whole tile buffer (owned + halo), optionally fused with SiLU.
 * The monolithic decode runs the same cells over the whole frame, so exact tiled and monolithic
 * decodes normalise with identical statistics. vs_gn_region_stats is one cell over a whole
 * region (full-frame norms, the attention block's, blend mode's tile-local ones).
 * Groups <= VS_GN_MAX_GROUPS. */
#ifndef VS_KERNELS_CPU_GROUPNORM_H
#define VS_KERNELS_CPU_GROUPNORM_H

#include <stddef.h>

#include "kernels/window.h"

#define VS_GN_MAX_GROUPS 1024

struct vs_gn_stats {
    double count, mean, m2;
};

/* One group's statistics over one cell; its count is the cell's size (channels x pixels). */
struct vs_gn_cell {
    double mean, m2;
};

/* Statistics of the cells of region r of x (c channels, `plane` floats apart, each an r.H x r.W
 * frame): r is cut into cells of ch x cw pixels (ch, cw >= 1 divide r.h, r.w); group g of the
 * region's cell (i, j) goes to cells[i * row_stride + j * groups + g]. Order per cell, the same
 * in the CUDA twin (kernels/cuda/groupnorm.cu): sum = 0; for each column left to right,
 * col = the column's values summed channel by channel, row by row, then sum += col; mean =
 * sum / count; M2 likewise over (x - mean)^2. */
void vs_gn_cell_stats(const float *x, int c, size_t plane, struct vs_window r, int ch, int cw,
                      int groups, struct vs_gn_cell *cells, size_t row_stride);
/* st[g]: cells[i * groups + g] for i = 0 .. n - 1, `count` values each, merged in that order. */
void vs_gn_merge_cells(int groups, const struct vs_gn_cell *cells, size_t n, double count,
                       struct vs_gn_stats *st);
/* Statistics of region r (one cell) into st[groups]; an empty region has count 0. */
void vs_gn_region_stats(const float *x, int c, size_t plane, struct vs_window r, int groups,
                        struct vs_gn_stats *st);
void vs_gn_finish(int groups, const struct vs_gn_stats *st, float eps, float *mean,
                  float *rstd);
/* x[c][plane] = (x - mean[g]) * rstd[g] * gamma[c] + beta[c], then SiLU if silu. */
void vs_gn_apply(float *x, int c, size_t plane, int groups, const float *mean, const float *rstd,
                 const float *gamma, const float *beta, int silu);
/* Whole-plane GroupNorm (+ optional SiLU). */
void vs_groupnorm(float *x, int c, int h, int w, int groups, float eps, const float *gamma,
                  const float *beta, int silu);

#endif
