/* Pixel conversion shared by both writers: (v + 1) * 127.5, rounded and clamped. */
#include "kernels/image_out.h"

#include <errno.h>
#include <spng.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned char to_byte(float v)
{
    float b = (v + 1.0f) * 127.5f + 0.5f;
    return b <= 0.0f ? 0 : b >= 255.0f ? 255 : (unsigned char)b;
}

int vs_png_write(const char *path, const float *rgb, size_t cstride, int h, int w,
                 struct vs_err *err)
{
    size_t n = (size_t)h * w;
    unsigned char *px = malloc(3 * n);
    if (!px)
        return vs_err_set(err, "%s: out of memory for the image", path);
    for (size_t i = 0; i < n; i++)
        for (int c = 0; c < 3; c++)
            px[3 * i + c] = to_byte(rgb[c * cstride + i]);
    FILE *f = fopen(path, "wb");
    if (!f) {
        free(px);
        return vs_err_set(err, "%s: cannot create: %s", path, strerror(errno));
    }
    spng_ctx *ctx = spng_ctx_new(SPNG_CTX_ENCODER);
    struct spng_ihdr ihdr = {.width = (uint32_t)w, .height = (uint32_t)h, .bit_depth = 8,
                             .color_type = SPNG_COLOR_TYPE_TRUECOLOR};
    int rc = spng_set_png_file(ctx, f);
    if (!rc)
        rc = spng_set_ihdr(ctx, &ihdr);
    if (!rc)
        rc = spng_encode_image(ctx, px, 3 * n, SPNG_FMT_PNG, SPNG_ENCODE_FINALIZE);
    spng_ctx_free(ctx);
    free(px);
    if (fclose(f) || rc)
        return vs_err_set(err, "%s: PNG write failed: %s", path,
                          rc ? spng_strerror(rc) : strerror(errno));
    return 0;
}

int vs_y4m_write(const char *path, const float *video, int T, int h, int w, int fps,
                 struct vs_err *err)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return vs_err_set(err, "%s: cannot create: %s", path, strerror(errno));
    size_t n = (size_t)h * w, cs = (size_t)T * n;
    unsigned char *plane = malloc(3 * n);
    int ok = plane &&
             fprintf(f, "YUV4MPEG2 W%d H%d F%d:1 Ip A1:1 C444 XCOLORRANGE=FULL\n", w, h, fps) > 0;
    for (int t = 0; ok && t < T; t++) {
        for (size_t i = 0; i < n; i++) {
            float r = (video[t * n + i] + 1) * 127.5f, g = (video[cs + t * n + i] + 1) * 127.5f;
            float b = (video[2 * cs + t * n + i] + 1) * 127.5f;
            float y = 0.299f * r + 0.587f * g + 0.114f * b;
            /* to_byte expects [-1, 1] */
            plane[i] = to_byte(y / 127.5f - 1);
            plane[n + i] = to_byte((-0.168736f * r - 0.331264f * g + 0.5f * b) / 127.5f);
            plane[2 * n + i] = to_byte((0.5f * r - 0.418688f * g - 0.081312f * b) / 127.5f);
        }
        ok = fputs("FRAME\n", f) != EOF && fwrite(plane, 1, 3 * n, f) == 3 * n;
    }
    free(plane);
    if (fclose(f) || !ok)
        return vs_err_set(err, "%s: write failed: %s", path, strerror(errno));
    return 0;
}
