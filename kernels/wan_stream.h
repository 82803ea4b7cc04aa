/* Internal: opening a Wan decode stream for a given plan, and the planner's geometry helpers.
 * A stream opened with dry = 1 runs the executor's allocation sequence without computing (push
 * takes NULL latents and output), which is how the planner predicts a plan's peak. */
#ifndef VS_KERNELS_WAN_STREAM_H
#define VS_KERNELS_WAN_STREAM_H

#include "kernels/cpu/conv3d.h"
#include "kernels/wan.h"
#include "kernels/wan_model.h"

/* Windows of the tiled stages for the output window `out`: win[i - cut] is stage i's input
 * window, win[n_stages - cut] = *out (backward interval propagation: radius r grows a window
 * by r; nearest x2 maps rows [a, b] to [a/2, b/2]; clipped to the frame). */
void vs_wan_tile_windows(const struct vs_wan_model *m, const struct vs_window *out,
                         struct vs_window *win);

/* Fills plan's tile grid for output tiles of `tile` pixels (clipped to the frame), its halo and
 * halo overhead; leaves predicted_peak alone. */
void vs_wan_plan_geometry(const struct vs_wan_model *m, int h, int w, int tile,
                          struct vs_wan_plan *plan);

int vs_wan_stream_open_plan(const struct vs_wan_model *m, int T, int h, int w,
                            const struct vs_wan_plan *plan, int dry,
                            const struct vs_wan_opts *opts, struct vs_wan_stream **stream,
                            struct vs_err *err);

#endif
