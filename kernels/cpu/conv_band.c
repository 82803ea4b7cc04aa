/* The banded SIMD convolution of conv2d.c and conv3d.c (conv_band.h); its kernel is
 * conv_band_simd.h, compiled here once per instruction set. */
#include "kernels/cpu/conv_band.h"

#include <immintrin.h>
#include <stdbool.h>
#include <stddef.h>

#include "kernels/cpu/parallel.h"

/* A band holds, for CB (input channel, live time tap) pairs, the tap rows of ROWS output rows
 * (ROWS + k - 1 input rows) over BAND_COLS output columns (plus the k - 1 columns right of them),
 * each row BAND_W floats, zero where the tap is outside the buffers: so the strips read
 * contiguous, unmasked, L1-resident rows whatever the planes' strides and borders, each input row
 * packed once for ROWS output rows, and a block's weights serve ROWS strips from L1. A band takes
 * whole channels, all their live time taps (CB / live of them). Its 30 KiB live on the stack of
 * each thread (no allocation that could fail). Below PARALLEL_MIN multiply-adds, starting threads
 * costs more than it saves. */
enum {
    OB = 6,         /* output channels per strip */
    CB = 16,        /* (input channel, time tap) pairs per band */
    ROWS = 4,       /* output rows per band */
    BAND_COLS = 64, /* output columns per band, a multiple of both strips' widths */
    BAND_W = 80,    /* >= BAND_COLS + 2, a multiple of 16 floats */
    BAND_FLOATS = CB * (ROWS + 2) * BAND_W,
    PARALLEL_MIN = 1 << 20,
};

struct strip_job {
    const float *w[OB]; /* each channel's [cin][kt][k][k] weights at the first live time tap (a
                           repeat of the last channel's past nb) */
    float bias[OB];
    float *out; /* plane of the block's first channel */
    size_t oplane;
    int nb, k, kt, live, ow; /* live: time taps from the first non-NULL one */
};

/* The time taps before dt0 are NULL (skipped). */
static int first_live(const struct vs_conv_band *j)
{
    int dt0 = 0;
    while (!j->in[dt0])
        dt0++;
    return dt0;
}

static void strip_setup(struct strip_job *s, const struct vs_conv_band *j, int dt0, int co0)
{
    const int kk = j->k * j->k;
    s->nb = j->cout - co0 < OB ? j->cout - co0 : OB;
    for (int b = 0; b < OB; b++) {
        int co = co0 + (b < s->nb ? b : s->nb - 1);
        s->w[b] = j->weight + ((size_t)co * j->cin * j->kt + dt0) * kk;
        s->bias[b] = j->bias ? j->bias[co] : 0.0f;
    }
    s->oplane = (size_t)j->oh * j->ow;
    s->out = j->out + (size_t)co0 * s->oplane;
    s->k = j->k;
    s->kt = j->kt;
    s->live = j->kt - dt0;
    s->ow = j->ow;
}

/* Items walk groups of channel blocks whose weights fit in L2 (GROUP_BYTES), all rows and bands
 * of a group, each band serving the whole group; so weights are read from L2 while rows stream.
 * (Larger groups pack each band for more blocks: 2 MiB measured faster than 0.5 and 1.) */
enum { GROUP_BYTES = 2048 << 10 };

struct item_plan {
    size_t blocks, group, bands, rows; /* channel blocks, blocks per group, bands per row, row
                                          blocks */
    int cols, nrows;                   /* output columns per band, output rows per row block */
};

static struct item_plan item_plan(const struct vs_conv_band *j)
{
    const size_t per = (size_t)OB * j->cin * j->kt * j->k * j->k * sizeof(float);
    /* 1x1 reads the input in place (conv_band_simd.h), one whole row at a time: the prefetchers
     * follow it, and the blocks of a group find it in L2 */
    const int cols = j->k == 1 ? j->ow : BAND_COLS, rows = j->k == 1 ? 1 : ROWS;
    return (struct item_plan){(size_t)(j->cout + OB - 1) / OB,
                              per >= GROUP_BYTES ? 1 : GROUP_BYTES / per,
                              (size_t)(j->ow + cols - 1) / cols, (size_t)(j->oh + rows - 1) / rows,
                              cols, rows};
}

/* item -> its first row y and row count, first column x0, first block and block count */
static void item_place(const struct vs_conv_band *j, const struct item_plan *p, size_t item,
                       int *y, int *nrows, int *x0, size_t *blk0, size_t *nblk)
{
    const size_t per_group = p->rows * p->bands, g = item / per_group;
    const size_t r = item % per_group;
    *blk0 = g * p->group;
    *nblk = p->blocks - *blk0 < p->group ? p->blocks - *blk0 : p->group;
    *y = (int)(r / p->bands) * p->nrows;
    *nrows = j->oh - *y < p->nrows ? j->oh - *y : p->nrows;
    *x0 = (int)(r % p->bands) * p->cols;
}

#include "kernels/cpu/simd_avx512.h"
#include "kernels/cpu/conv_band_simd.h"
#include "kernels/cpu/simd_undef.h"

#include "kernels/cpu/simd_avx2.h"
#include "kernels/cpu/conv_band_simd.h"
#include "kernels/cpu/simd_undef.h"

static void run(const struct vs_conv_band *j, vs_range_fn fn)
{
    if (j->oh <= 0 || j->ow <= 0 || j->cout <= 0)
        return;
    const struct item_plan p = item_plan(j);
    const size_t items = (p.blocks + p.group - 1) / p.group * p.rows * p.bands;
    const size_t macs =
        (size_t)j->cout * j->cin * j->kt * j->k * j->k * (size_t)j->oh * (size_t)j->ow;
    if (macs < PARALLEL_MIN)
        fn((void *)j, 0, items);
    else
        vs_parallel_for(items, fn, (void *)j);
}

void vs_conv_band_avx2(const struct vs_conv_band *j)
{
    run(j, range_avx2);
}

void vs_conv_band_avx512(const struct vs_conv_band *j)
{
    run(j, range_avx512);
}
