/* Progress lines (see progress.h). */
#include "tools/trace/progress.h"

#include <stdio.h>
#include <unistd.h>

void vs_trace_progress_start(struct vs_trace_progress *p, const char *what, size_t total,
                             bool wanted)
{
    *p = (struct vs_trace_progress){
        .what = what,
        .total = total,
        .on = wanted && total >= VS_TRACE_PROGRESS_MIN && isatty(STDERR_FILENO)};
}

void vs_trace_progress_step(struct vs_trace_progress *p, size_t done)
{
    if (!p->on)
        return;
    unsigned tenth = (unsigned)(done * 10 / p->total);
    if (tenth <= p->shown)
        return;
    p->shown = tenth;
    fprintf(stderr, "%s %u%% (%zu/%zu events)\n", p->what, tenth * 10, done, p->total);
}
