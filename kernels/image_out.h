/* Decoded images and videos to files. Values map from [-1, 1] to 0..255 (clamped, rounded):
 * PNG via libspng (8-bit RGB), YUV4MPEG2 (.y4m, 4:4:4, BT.601 full range) for videos. */
#ifndef VS_KERNELS_IMAGE_OUT_H
#define VS_KERNELS_IMAGE_OUT_H

#include <stddef.h>

#include "kernels/error.h"

/* rgb planes: channel c of pixel (y, x) at rgb[c * cstride + y * w + x]. */
int vs_png_write(const char *path, const float *rgb, size_t cstride, int h, int w,
                 struct vs_err *err);
/* video [3][T][H][W] at `fps` frames per second. */
int vs_y4m_write(const char *path, const float *video, int T, int h, int w, int fps,
                 struct vs_err *err);

#endif
