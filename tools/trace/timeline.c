/* Sampling a trace for the timeline (see timeline.h). Two walks, both linear: the first finds
 * in each time slice the step of highest device use, the second records the series there. */
#include "tools/trace/timeline.h"

#include <stdlib.h>
#include <string.h>

#include "tools/trace/progress.h"

/* For each sample, the walk step (1-based count of steps taken) to stand at. */
static size_t *vs_timeline_pick(struct vs_analysis *a, size_t total, size_t *n, bool progress)
{
    size_t cap = total < VS_TIMELINE_SAMPLES ? total : VS_TIMELINE_SAMPLES;
    size_t *at = malloc((cap ? cap : 1) * sizeof *at);
    if (!at)
        return NULL;
    *n = 0;
    vs_analysis_rewind(a);
    struct vs_step s;
    size_t slice = SIZE_MAX;
    uint64_t best = 0;
    struct vs_trace_progress pr;
    vs_trace_progress_start(&pr, "vramshim trace timeline: sampling", total, progress);
    while (vs_analysis_step(a, &s)) {
        /* one sample per step for short traces, else the highest step of each time slice */
        size_t sl = total <= VS_TIMELINE_SAMPLES
                        ? a->steps - 1
                        : (size_t)((double)a->now / ((double)a->duration + 1.0) * (double)cap);
        uint64_t resident = a->live - a->host;
        if (sl != slice && *n < cap) {
            slice = sl;
            best = resident;
            at[(*n)++] = a->steps;
        } else if (resident > best) { /* same slice (or a clock that went back) */
            best = resident;
            at[*n - 1] = a->steps;
        }
        vs_trace_progress_step(&pr, a->steps);
    }
    return at;
}

int vs_timeline_build(struct vs_timeline *tl, struct vs_analysis *a, enum vs_by by, bool progress)
{
    memset(tl, 0, sizeof *tl);
    tl->a = a;
    tl->by = by;
    size_t total = a->trace->n_events + a->trace->n_marks, ng = a->n_groups[by];
    uint64_t *peak = malloc((ng ? ng : 1) * sizeof *peak);
    uint32_t *series_of = malloc((ng ? ng : 1) * sizeof *series_of);
    size_t *order = NULL, *at = vs_timeline_pick(a, total, &tl->n, progress);
    int rc = -1;
    if (!peak || !series_of || !at)
        goto out;
    for (size_t g = 0; g < ng; g++)
        peak[g] = a->groups[by][g].peak;
    if (!(order = vs_groups_sorted(a, by, peak)))
        goto out;
    tl->n_series = ng <= VS_TIMELINE_SERIES ? ng : VS_TIMELINE_SERIES;
    for (size_t i = 0; i < ng; i++)
        series_of[order[i]] = (uint32_t)(i < tl->n_series ? i : tl->n_series - 1);
    for (size_t i = 0; i < tl->n_series; i++) {
        const struct vs_trace_group *g = &a->groups[by][order[i]];
        bool other = ng > VS_TIMELINE_SERIES && i == tl->n_series - 1;
        tl->series[i].name = other ? "other groups" : g->name;
        if (other)
            snprintf(tl->series[i].site, sizeof tl->series[i].site, "%zu smaller groups",
                     ng - VS_TIMELINE_SERIES + 1);
        else
            vs_site_label(a->trace, g->site, 3, tl->series[i].site, sizeof tl->series[i].site);
        if (!(tl->series[i].v = calloc(tl->n ? tl->n : 1, sizeof(uint64_t))))
            goto out;
    }
    tl->t = calloc(tl->n ? tl->n : 1, sizeof *tl->t);
    tl->host = calloc(tl->n ? tl->n : 1, sizeof *tl->host);
    if (!tl->t || !tl->host)
        goto out;
    vs_analysis_rewind(a);
    struct vs_step s;
    struct vs_trace_progress pr;
    vs_trace_progress_start(&pr, "vramshim trace timeline: drawing", tl->n ? at[tl->n - 1] : 0,
                      progress);
    for (size_t k = 0; k < tl->n; k++) {
        while (a->steps < at[k] && vs_analysis_step(a, &s))
            vs_trace_progress_step(&pr, a->steps);
        tl->t[k] = a->now;
        tl->host[k] = a->host;
        for (size_t g = 0; g < ng; g++)
            tl->series[series_of[g]].v[k] += a->groups[by][g].live - a->groups[by][g].host;
    }
    for (size_t i = 0, moves = 0; i < a->trace->n_marks; i++)
        if (a->trace->marks[i].kind == VS_TF_DEMOTE || a->trace->marks[i].kind == VS_TF_PROMOTE)
            tl->moves_left_out += ++moves > VS_TIMELINE_MOVES;
    rc = 0;
out:
    free(peak);
    free(series_of);
    free(order);
    free(at);
    if (rc)
        vs_timeline_free(tl);
    return rc;
}

void vs_timeline_free(struct vs_timeline *tl)
{
    for (size_t i = 0; i < tl->n_series; i++)
        free(tl->series[i].v);
    free(tl->t);
    free(tl->host);
    memset(tl, 0, sizeof *tl);
}
