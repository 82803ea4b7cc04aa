/* Reading a trace for people: what was live when, grouped by stage, tag or call site.
 *
 * The analysis walks a trace's allocs, frees and marks in file order. At each step it knows the
 * live bytes of every group and how many of them sit in host memory (demoted); a full pass at
 * open gives the peaks, per-group totals and the state at every refused allocation (OOM).
 * Everything is linear in the trace's length.
 */
#ifndef VS_TRACE_ANALYSIS_H
#define VS_TRACE_ANALYSIS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tools/trace/tracefile.h"

enum vs_by { VS_BY_STAGE, VS_BY_TAG, VS_BY_SITE, VS_BY_N };

/* "stage", "tag", "site" */
const char *vs_by_name(enum vs_by by);
/* Parses "stage", "tag" or "site"; -1 when none of them. */
int vs_by_parse(const char *text);

struct vs_trace_group {
    const char *name;          /* "(no stage)", "(no tag)", "(no call site)" for none */
    uint32_t site;             /* a call site of the group's allocations (0: none) */
    /* totals over the whole trace */
    uint64_t peak, peak_t;     /* largest live bytes and when (ns since the trace began) */
    size_t allocs;
    uint64_t alloc_bytes, demoted, promoted;
    /* during a walk */
    uint64_t live, host;       /* live bytes; of them, demoted to host memory */
};

/* The state of the trace at one refused allocation. */
struct vs_oom {
    size_t mark;               /* index in trace->marks */
    uint64_t t;                /* ns since the trace began */
    uint64_t live, host;
    uint64_t largest_gap;      /* largest address gap between live blocks, 0 when < 2 live */
    uint64_t *live_by[VS_BY_N];/* per group, live bytes then (n_groups[by] each) */
};

struct vs_analysis {
    struct vs_tracefile *trace;
    struct vs_trace_group *groups[VS_BY_N];
    size_t n_groups[VS_BY_N];
    uint32_t *group_of[VS_BY_N]; /* per event: its alloc's group */
    uint64_t t0;                 /* first timestamp of the trace */
    uint64_t duration;           /* ns from the first to the last timestamp */
    uint64_t peak_live, peak_live_t;
    size_t peak_live_step;       /* steps to take from the start to stand at the peak */
    uint64_t peak_resident, peak_resident_t; /* live bytes minus those on host */
    uint64_t demoted, promoted;
    size_t demotions, promotions;
    struct vs_oom *ooms;
    size_t n_ooms;
    /* walk state */
    size_t ev, mark, steps;
    uint64_t live, host, now;    /* now: ns since the trace began */
    uint64_t *host_of;           /* per event: bytes of that alloc on host */
};

/* One step of a walk: an alloc or free (mark == SIZE_MAX) or a mark (event == SIZE_MAX). */
struct vs_step {
    size_t event, mark;
};

/* Analyses trace (which must stay alive, and gets the groups' names interned). Returns 0, or -1
 * with a message in err (out of memory). */
int vs_analysis_open(struct vs_analysis *a, struct vs_tracefile *trace, char *err, size_t errlen);
void vs_analysis_close(struct vs_analysis *a);

/* Rewinds the walk to the start of the trace (nothing live). */
void vs_analysis_rewind(struct vs_analysis *a);
/* Takes the next step, updating live bytes; false at the end of the trace. */
bool vs_analysis_step(struct vs_analysis *a, struct vs_step *step);
/* Timestamp of the next step (ns since the trace began); false at the end. */
bool vs_analysis_peek_t(const struct vs_analysis *a, uint64_t *t);

/* The innermost frame that belongs to the program rather than to PyTorch, CUDA libraries, the
 * C library, Python's interpreter or vramshim, with up to `depth` of its callers, as
 * "dit_load < wan_generate" (Python frames win when there are any of the program's).
 * Writes "(no call site)" when the trace has no frames for it. */
const char *vs_site_label(const struct vs_tracefile *trace, uint32_t site, unsigned depth,
                          char *buf, size_t len);

/* Whether a frame belongs to the program (vs_site_label's rule). */
bool vs_frame_is_program(const char *frame);

/* Indices of a's groups of `by`, sorted by `key` (per-group values) descending; caller frees. */
size_t *vs_groups_sorted(const struct vs_analysis *a, enum vs_by by, const uint64_t *key);

#endif
