/* Planner for the AutoencoderKL decode: picks the tiling for a mode and a tile size or a memory
 * budget, and predicts the plan's peak memory by a dry run of the executor (same code path,
 * allocations counted, nothing computed).
 *
 * Modes: MONOLITHIC (one full-frame pass: the reference), EXACT (full-frame low-resolution
 * part, then tiles with halo = program halo on interior edges and GroupNorm statistics merged
 * over owned regions cell by cell: equals MONOLITHIC bit for bit), BLEND (same cut, tiles decoded
 * alone with tile-local statistics and an overlap of ceil(halo / 2) per side, feathered).
 * The budget limits WORKING memory (pool WORK: what an accelerator would hold); parked tile
 * state, the output image and the GroupNorm cells (pool PARK) are reported separately. Tile
 * sizes are in pixels at the cut's (latent) resolution; the owned tiles partition the image
 * into nearly equal rectangles. */
#ifndef VS_KERNELS_PLAN_H
#define VS_KERNELS_PLAN_H

#include <stddef.h>

#include "kernels/error.h"
#include "kernels/kl_program.h"
#include "kernels/tile_exec.h"

enum vs_decode_mode { VS_DECODE_EXACT, VS_DECODE_BLEND, VS_DECODE_MONOLITHIC };

struct vs_plan {
    enum vs_decode_mode mode;
    int lat_h, lat_w;
    int tile; /* largest owned tile edge, latent pixels (0: monolithic) */
    struct vs_tiling tiling;
    size_t predicted_work, predicted_park;
    double halo_overhead; /* tile input pixels (with halo/overlap) / image pixels */
    double conv_overhead; /* convolution multiply-adds / those of the monolithic decode */
    size_t full_frame_work; /* WORK peak of the full-frame part: a floor for any tile size */
};

/* tile: owned edge in latent pixels, 0 = choose (largest tile whose predicted working peak
 * fits budget; no budget: VS_PLAN_DEFAULT_TILE). budget: bytes of working memory, 0 = none. */
#define VS_PLAN_DEFAULT_TILE 64
int vs_plan_make(struct vs_plan *plan, const struct vs_program *p, int lat_h, int lat_w,
                 enum vs_decode_mode mode, int tile, size_t budget, struct vs_err *err);
void vs_plan_free(struct vs_plan *plan);
/* Runs the plan on one latent (decoder input scale); *out from mem's PARK pool. */
int vs_plan_run(const struct vs_plan *plan, const struct vs_program *p, const float *latent,
                float **out, struct vs_mem *mem, const struct vs_progress *progress,
                struct vs_err *err);
const char *vs_decode_mode_name(enum vs_decode_mode mode);
/* One line: mode, tile grid, tile and halo in output pixels, sync points, overheads. */
const char *vs_plan_describe(const struct vs_plan *plan, const struct vs_program *p, char *buf,
                             size_t len);

#endif
