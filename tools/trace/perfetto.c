/* Chrome trace-event JSON export (see perfetto.h). Timestamps are microseconds since the
 * trace's first event. Each group gets a counter of its own name ("stage load"), so every
 * counter event carries one value and the export stays linear in the trace's length. */
#include "tools/trace/perfetto.h"

#include <stdlib.h>
#include <string.h>

#include "tools/trace/progress.h"

enum { VS_PID = 1, VS_TID_STAGES = 1, VS_TID_EVENTS = 2 };

static void vs_json_string(FILE *out, const char *s)
{
    fputc('"', out);
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(out, "\\%c", c);
        else if (c < 0x20)
            fprintf(out, "\\u%04x", c);
        else
            fputc(c, out);
    }
    fputc('"', out);
}

static double vs_us(const struct vs_analysis *a, uint64_t t_ns)
{
    return t_ns > a->t0 ? (double)(t_ns - a->t0) / 1e3 : 0.0;
}

static void vs_counter(FILE *out, const char *kind, const char *name, double ts, uint64_t v)
{
    fprintf(out, ",\n{\"ph\":\"C\",\"pid\":%d,\"ts\":%.3f,\"name\":", VS_PID, ts);
    if (kind) {
        char label[600];
        snprintf(label, sizeof label, "%s %s", kind, name);
        vs_json_string(out, label);
    } else {
        vs_json_string(out, name);
    }
    fprintf(out, ",\"args\":{\"bytes\":%llu}}", (unsigned long long)v);
}

/* An open stage slice, closed by the matching end (or the trace's end). */
struct vs_open_stage {
    const char *name;
    double ts;
};

static void vs_slice(FILE *out, const char *name, double from, double to)
{
    fprintf(out, ",\n{\"ph\":\"X\",\"pid\":%d,\"tid\":%d,\"cat\":\"stage\",\"ts\":%.3f,"
                 "\"dur\":%.3f,\"name\":", VS_PID, VS_TID_STAGES, from, to - from);
    vs_json_string(out, name);
    fputc('}', out);
}

static void vs_instant(FILE *out, const struct vs_analysis *a, const struct vs_tracefile_mark *m,
                       const char *group)
{
    static const char *const names[] = {[VS_TF_OOM] = "out of memory",
                                        [VS_TF_DEMOTE] = "demote", [VS_TF_PROMOTE] = "promote"};
    fprintf(out, ",\n{\"ph\":\"i\",\"pid\":%d,\"tid\":%d,\"s\":\"%s\",\"cat\":\"%s\",\"ts\":%.3f,"
                 "\"name\":\"%s\",\"args\":{\"bytes\":%llu,\"line\":%u,\"stage\":",
            VS_PID, VS_TID_EVENTS, m->kind == VS_TF_OOM ? "g" : "t",
            m->kind == VS_TF_OOM ? "oom" : "move", vs_us(a, m->t_ns), names[m->kind],
            (unsigned long long)m->size, m->line);
    vs_json_string(out, m->stage);
    fprintf(out, ",\"tag\":");
    vs_json_string(out, m->tag);
    fprintf(out, ",\"api\":");
    vs_json_string(out, m->api);
    if (group) {
        fprintf(out, ",\"block\":");
        vs_json_string(out, group);
    }
    fprintf(out, "}}");
}

/* Counters of the groups alloc i belongs to, and the totals, after a change. */
static void vs_counters_of(FILE *out, const struct vs_analysis *a, size_t i, double ts)
{
    for (int by = 0; by < VS_BY_SITE; by++) {
        const struct vs_trace_group *g = &a->groups[by][a->group_of[by][i]];
        vs_counter(out, vs_by_name(by), g->name, ts, g->live - g->host);
    }
    vs_counter(out, NULL, "live bytes", ts, a->live);
    vs_counter(out, NULL, "on host bytes", ts, a->host);
}

int vs_perfetto_write(struct vs_analysis *a, FILE *out, bool progress)
{
    const struct vs_tracefile *tr = a->trace;
    size_t total = tr->n_events + tr->n_marks, n_open = 0;
    struct vs_open_stage *open = malloc((tr->n_marks ? tr->n_marks : 1) * sizeof *open);
    if (!open)
        return -1;
    fprintf(out, "{\"displayTimeUnit\":\"ms\",\"traceEvents\":[\n"
                 "{\"ph\":\"M\",\"pid\":%d,\"name\":\"process_name\",\"args\":{\"name\":",
            VS_PID);
    vs_json_string(out, tr->path);
    fprintf(out, "}},\n{\"ph\":\"M\",\"pid\":%d,\"tid\":%d,\"name\":\"thread_name\","
                 "\"args\":{\"name\":\"stages\"}},\n{\"ph\":\"M\",\"pid\":%d,\"tid\":%d,"
                 "\"name\":\"thread_name\",\"args\":{\"name\":\"OOMs and moves\"}}",
            VS_PID, VS_TID_STAGES, VS_PID, VS_TID_EVENTS);
    if (tr->device_total)
        vs_counter(out, NULL, "device capacity bytes", 0.0, tr->device_total);
    vs_analysis_rewind(a);
    struct vs_step s;
    struct vs_trace_progress pr;
    vs_trace_progress_start(&pr, "vramshim trace export:", total, progress);
    while (vs_analysis_step(a, &s)) {
        double ts = (double)a->now / 1e3;
        if (s.event != SIZE_MAX) {
            const struct vs_tracefile_event *ev = &tr->events[s.event];
            vs_counters_of(out, a, ev->kind == VS_TF_ALLOC ? s.event : ev->alloc, ts);
        } else {
            const struct vs_tracefile_mark *m = &tr->marks[s.mark];
            if (m->kind == VS_TF_STAGE_BEGIN) {
                open[n_open++] = (struct vs_open_stage){m->stage ? m->stage : "(unnamed)", ts};
            } else if (m->kind == VS_TF_STAGE_END) {
                /* the innermost open stage of that name; an end without a begin is dropped */
                const char *name = m->stage ? m->stage : "(unnamed)";
                for (size_t k = n_open; k-- > 0;)
                    if (!strcmp(open[k].name, name)) {
                        vs_slice(out, name, open[k].ts, ts);
                        memmove(&open[k], &open[k + 1], (n_open - k - 1) * sizeof *open);
                        n_open--;
                        break;
                    }
            } else {
                bool block = m->kind != VS_TF_OOM && m->alloc != SIZE_MAX;
                vs_instant(out, a, m,
                           block ? a->groups[VS_BY_SITE][a->group_of[VS_BY_SITE][m->alloc]].name
                                 : NULL);
                if (block)
                    vs_counters_of(out, a, m->alloc, ts);
            }
        }
        vs_trace_progress_step(&pr, a->steps);
    }
    while (n_open-- > 0)
        vs_slice(out, open[n_open].name, open[n_open].ts, (double)a->duration / 1e3);
    free(open);
    fprintf(out, "\n]}\n");
    return ferror(out) ? -1 : 0;
}
