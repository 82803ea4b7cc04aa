/* The decoder's backend table: every layer and memory operation the executors (tile_exec.c,
 * wan_stage.c, wan_part.c, wan_decode.c) perform on activations goes through one of these
 * pointers, so the same executor, planner and memory prediction drive the CPU reference
 * (kernels/cpu/backend.c) and a device backend.
 *
 * Invariants:
 * - Every float pointer handed to a layer lives in the backend's memory (host memory for the
 *   CPU backend, device memory for a GPU backend), weights included; statistics (vs_gn_stats,
 *   vs_gn_cell) and the norm's mean/rstd arrays are host memory on every backend (they are
 *   merged on the host in one fixed order, so a tiled decode normalises with the monolithic
 *   decode's statistics, bit for bit).
 * - Layers never allocate; buffers come from vs_mem (kernels/mem.h), which gets raw storage
 *   from the backend's allocator (or a caller's allocator, vramshim_vae.h).
 * - A layer's result does not depend on the tile geometry (see each CPU layer's header): that
 *   is what makes tiled decodes exact.
 */
#ifndef VS_KERNELS_BACKEND_H
#define VS_KERNELS_BACKEND_H

#include <stdbool.h>
#include <stddef.h>

#include "kernels/cpu/conv2d.h"
#include "kernels/cpu/conv3d_cache.h"
#include "kernels/cpu/groupnorm.h"
#include "kernels/cpu/space.h"
#include "kernels/safetensors.h"

/* Raw storage for vs_mem: alloc returns NULL when out of memory. */
struct vs_allocator {
    void *(*alloc)(void *ctx, size_t bytes);
    void (*free)(void *ctx, void *p);
    void *ctx;
};

struct vs_backend {
    const char *name;
    /* Memory. host_memory: buffers are host memory, so parking is bookkeeping only; otherwise
     * vs_mem parks a buffer by copying it to host memory (to_host) and back (from_host). */
    bool host_memory;
    struct vs_allocator allocator; /* default working memory */
    struct vs_allocator park_allocator; /* host memory for parked buffers (unused when
                                           host_memory); the device may read it (pinned) */
    int (*to_host)(void *host_dst, const void *src, size_t bytes);
    int (*from_host)(void *dst, const void *host_src, size_t bytes);
    void (*copy)(void *dst, const void *src, size_t bytes);
    void (*zero)(void *dst, size_t bytes);
    /* n values of dtype `from` at src to dtype `to` at dst (F32, F16, BF16; round to nearest
     * even when narrowing). */
    void (*cast)(void *dst, enum vs_dtype to, const void *src, enum vs_dtype from, size_t n);

    /* Convolutions (kernels/cpu/conv2d.h, conv3d.h); the causal step with its frame cache is
     * shared code over conv3d_frame and copy (vs_causal_conv3d_step_on). */
    void (*conv2d)(const float *in, float *out, const float *weight, const float *bias,
                   const struct vs_conv2d_geom *g);
    void (*conv3d_frame)(const struct vs_conv3d *c, const float *const *in,
                         const struct vs_window *win, float *out, const struct vs_window *wout);
    /* Norms (groupnorm.h, rmsnorm.h): statistics land in host memory. gn_cell_stats: the tiled
     * part's statistics, per cell (the same bits in every tile: exact tiling), into the
     * executor's cell array (vs_mem's PARK pool: pinned host memory that a device backend's
     * kernels write directly); gn_region_stats: one region (full-frame and tile-local norms). */
    void (*gn_cell_stats)(const float *x, int c, size_t plane, struct vs_window r, int ch, int cw,
                          int groups, struct vs_gn_cell *cells, size_t row_stride);
    void (*gn_region_stats)(const float *x, int c, size_t plane, struct vs_window r, int groups,
                            struct vs_gn_stats *st);
    void (*gn_apply)(float *x, int c, size_t plane, int groups, const float *mean,
                     const float *rstd, const float *gamma, const float *beta, int silu);
    void (*rmsnorm)(const float *in, float *out, int c, size_t n, const float *gamma, bool silu);
    /* Nearest x2 (upsample.h); Wan's temporal doubling is time_conv's channel split. */
    void (*upsample2x)(const float *in, float *out, int c, int h, int w);
    /* Channels to space and time (space.h): Wan 2.2's up-block shortcut and unpatchify. */
    void (*to_space)(float *dst, const struct vs_window *dwin, const float *src,
                     const struct vs_window *swin, const struct vs_to_space *g);
    /* Attention block pieces (linear.h, attention.h); attention returns -1 when d is out of
     * range. */
    void (*linear)(const float *x, const float *w, const float *b, float *y, size_t n, int cin,
                   int cout);
    int (*attention)(const float *q, const float *k, const float *v, float *out, size_t n, int d,
                     float scale);
    /* Region moves (region.h): crop (halo gather), add_crop (residual), transpose, and paste:
     * dst[c][y0 + y][x0 + x] = src[c][sy0 + y][sx0 + x] for y < h, x < w (scatter of a tile's
     * owned pixels), clamped to [-1, 1] when clamp. */
    void (*crop)(const float *src, int c, int sh, int sw, int y0, int x0, float *dst, int dh,
                 int dw);
    void (*add_crop)(float *dst, int c, int dh, int dw, const float *src, int sh, int sw, int y0,
                     int x0);
    void (*transpose)(const float *in, float *out, size_t rows, size_t cols);
    void (*paste)(float *dst, int c, int dh, int dw, int y0, int x0, const float *src, int sh,
                  int sw, int sy0, int sx0, int h, int w, bool clamp);
    /* Blend mode: out[c][y0 + y][x0 + x] += wy[y] * wx[x] * src[c][y][x] and the weight sum
     * wsum[y0 + y][x0 + x] += wy[y] * wx[x] (out: c x H x W); then out[c][i] /= wsum[i]. wy, wx
     * are host memory. */
    void (*blend_acc)(float *out, float *wsum, int c, int H, int W, int y0, int x0,
                      const float *src, int h, int w, const float *wy, const float *wx);
    void (*blend_div)(float *out, const float *wsum, int c, size_t hw);
};

extern const struct vs_backend vs_cpu_backend;

#endif
