/* The views of `vramshim trace` (cmd_trace.c parses the command line): each prints or writes one
 * view of an analysed trace and returns the exit status. */
#ifndef VS_CLI_TRACE_VIEWS_H
#define VS_CLI_TRACE_VIEWS_H

#include <stdbool.h>

#include "tools/trace/analysis.h"

enum vs_trace_at { VS_AT_PEAK, VS_AT_OOM, VS_AT_TIME };

struct vs_trace_opts {
    const char *path, *out, *format, *vram;
    enum vs_trace_at at;
    double at_seconds;
    unsigned long at_oom;   /* 1-based */
    int by;                 /* enum vs_by */
    bool json;
};

int vs_trace_summary(const struct vs_trace_opts *o, struct vs_analysis *a);
int vs_trace_top(const struct vs_trace_opts *o, struct vs_analysis *a);
int vs_trace_timeline(const struct vs_trace_opts *o, struct vs_analysis *a);
int vs_trace_export(const struct vs_trace_opts *o, struct vs_analysis *a);
/* Reads a PyTorch snapshot rather than a trace. */
int vs_trace_import_torch(const struct vs_trace_opts *o);

#endif
