/* Memory over time: a trace sampled into at most VS_TIMELINE_SAMPLES points per series (each
 * sample is the moment of highest device use in its time slice, so no peak is lost), the
 * largest groups as series, and the trace's stage changes, OOMs and moves as markers. Written
 * as a static SVG or a self-contained HTML page (hover, zoom) by timeline_write.c. */
#ifndef VS_TRACE_TIMELINE_H
#define VS_TRACE_TIMELINE_H

#include <stdio.h>

#include "tools/trace/analysis.h"

enum { VS_TIMELINE_SAMPLES = 2000, VS_TIMELINE_SERIES = 10, VS_TIMELINE_MOVES = 5000 };

struct vs_timeline_series {
    const char *name;
    char site[512];    /* a call site of the group */
    uint64_t *v;       /* bytes on the device per sample */
};

struct vs_timeline {
    const struct vs_analysis *a;
    enum vs_by by;
    size_t n;               /* samples */
    uint64_t *t;            /* ns since the trace began, per sample */
    uint64_t *host;         /* bytes on host per sample */
    struct vs_timeline_series series[VS_TIMELINE_SERIES];
    size_t n_series;        /* the last one is "other groups" when there are more groups */
    size_t moves_left_out;  /* moves beyond VS_TIMELINE_MOVES, not drawn */
};

/* Samples a's trace (walking it); progress: lines on a terminal (progress.h). Returns 0, or -1
 * when out of memory. */
int vs_timeline_build(struct vs_timeline *tl, struct vs_analysis *a, enum vs_by by,
                      bool progress);
void vs_timeline_free(struct vs_timeline *tl);

int vs_timeline_write_svg(const struct vs_timeline *tl, FILE *out);
int vs_timeline_write_html(const struct vs_timeline *tl, FILE *out);

#endif
