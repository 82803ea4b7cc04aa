/* Progress of long work on a trace: one line per tenth on stderr ("vramshim trace timeline:
 * drawing 40% (400000/1000000 events)"), only when stderr is a terminal and the work is large. */
#ifndef VS_TRACE_PROGRESS_H
#define VS_TRACE_PROGRESS_H

#include <stdbool.h>
#include <stddef.h>

/* Work on fewer events than this is quick enough to need no progress. */
#define VS_TRACE_PROGRESS_MIN 200000u

struct vs_trace_progress {
    const char *what;   /* "vramshim trace timeline: drawing" */
    size_t total;
    unsigned shown;     /* tenths printed */
    bool on;
};

/* Starts reporting `what` over `total` events when `wanted`, total >= VS_TRACE_PROGRESS_MIN and
 * stderr is a terminal. */
void vs_trace_progress_start(struct vs_trace_progress *p, const char *what, size_t total,
                             bool wanted);
/* `done` events of total are done. */
void vs_trace_progress_step(struct vs_trace_progress *p, size_t done);

#endif
