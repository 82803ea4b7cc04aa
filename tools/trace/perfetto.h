/* A trace as Chrome trace-event JSON (the format ui.perfetto.dev and chrome://tracing open):
 * a counter track per stage and per tag (bytes on the device) plus live and on-host totals,
 * a slice per stage, and instant events for OOMs, demotions and promotions. */
#ifndef VS_TRACE_PERFETTO_H
#define VS_TRACE_PERFETTO_H

#include <stdio.h>

#include "tools/trace/analysis.h"

/* Walks a's trace and writes the JSON to out. Returns 0, or -1 when writing failed. */
int vs_perfetto_write(struct vs_analysis *a, FILE *out, bool progress);

#endif
