/* Runs a decoder program (kernels/kl_program.h) over tiles.
 *
 * A tiling partitions the image at the cut's resolution into owned rectangles; each tile's input
 * is its owned rectangle grown by `margin` pixels on interior edges (clipped at the image).
 *  - Synchronised (exact) mode: ops run round by round; a round takes every tile from one
 *    GroupNorm to the next. Each tile writes the statistics of its OWNED region per cell (one
 *    latent pixel scaled to the level, groupnorm.h) into one array of the whole image's cells,
 *    merged in row-major order after the round, so each norm sees the whole image's statistics
 *    with the same bits as a monolithic decode, which runs the same cells over the full frame
 *    (the array is PARK memory: counted). Between rounds a tile's buffers are parked
 *    (vs_mem pool PARK). A 3x3 conv pads with zeros only at true image borders and shrinks the
 *    buffer by one pixel on interior edges; margin >= program halo keeps owned pixels exact.
 *  - Standalone (blend) mode: each tile runs the whole tiled part alone, as if it were the image
 *    (zero padding on every edge, tile-local norm statistics), and is feathered into the output
 *    with linear ramps across the 2*margin overlap; the result is normalised by the weight sum.
 * A monolithic decode is one full-frame tile over the whole program.
 * With a dry vs_mem nothing is computed: only allocations are counted (the planner's
 * prediction). Buffers come from vs_mem only; layers do not allocate. */
#ifndef VS_KERNELS_TILE_EXEC_H
#define VS_KERNELS_TILE_EXEC_H

#include <stdint.h>

#include "kernels/error.h"
#include "kernels/kl_program.h"
#include "kernels/mem.h"

struct vs_tiling {
    int nty, ntx;
    int *ys, *xs; /* boundaries at the cut's resolution: nty + 1 and ntx + 1 entries */
    int margin;
    int standalone;
};

struct vs_progress {
    void (*fn)(void *ctx, long done, long total);
    void *ctx;
};

struct vs_exec_stats {
    double macs;          /* convolution multiply-adds performed (dry runs count too) */
    size_t full_frame_peak; /* WORK peak reached by the end of the full-frame part */
    /* FNV-1a hash of the bits of every GroupNorm's merged statistics (count, mean, M2 per group,
     * in program order): two decodes with equal digests normalised with identical statistics,
     * which rounding of the outputs can hide. 0 on a dry run. */
    uint64_t norm_digest;
};

/* Decodes one latent (c x h x w, decoder input scale) into *out (3 x h*up x w*up, allocated
 * from mem's PARK pool; caller frees with vs_mem_free). tiling NULL: monolithic.
 * stats may be NULL. */
int vs_exec_decode(const struct vs_program *p, const struct vs_tiling *tiling, const float *latent,
                   int h, int w, float **out, struct vs_mem *mem,
                   const struct vs_progress *progress, struct vs_exec_stats *stats,
                   struct vs_err *err);

#endif
