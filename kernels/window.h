/* The decoder's one rectangle type.
 *
 * A window is a rectangle of a frame: rows [y0, y0+h) and columns [x0, x0+w) of an H x W frame.
 * The frame is an image plane at one resolution level (the Wan stages, conv3d.h) or a tile's
 * buffer (a GroupNorm statistics region: the tile's owned pixels inside its buffer, groupnorm.h).
 * Data over a window is stored [C][h][w], over the whole frame [C][H][W].
 *
 * Invariant (vs_window_valid): the rectangle lies inside its frame, 0 <= y0, 0 <= x0, 0 <= h,
 * 0 <= w, y0 + h <= H and x0 + w <= W. The Wan executor checks it for every stage's windows
 * before the stage runs (vs_wan_stage_windows_ok); every other window is its frame or a
 * clipped part of it by construction (vs_window_grow, the tile executor's stats_region).
 */
#ifndef VS_KERNELS_WINDOW_H
#define VS_KERNELS_WINDOW_H

#include <stdbool.h>
#include <stddef.h>

struct vs_window {
    int y0, x0, h, w; /* the rectangle, in frame coordinates */
    int H, W;         /* the whole frame */
};

static inline bool vs_window_valid(const struct vs_window *w)
{
    return w->y0 >= 0 && w->x0 >= 0 && w->h >= 0 && w->w >= 0 && w->y0 <= w->H - w->h &&
           w->x0 <= w->W - w->w;
}

static inline size_t vs_window_area(const struct vs_window *w)
{
    return (size_t)w->h * (size_t)w->w;
}

#endif
