/* The events of a vramshim trace that are not allocs or frees, kept for diagnosis: marks (stage
 * changes, refused allocations, demotions and promotions) and call sites (see tracefile.h). */
#include <stdlib.h>
#include <string.h>
#include <uthash.h>

#include "tools/trace/tracefile.h"

struct vs_tracefile_site {
    uint32_t id;
    size_t n;
    const char **frames;
    UT_hash_handle hh;
};

struct vs_tracefile_sites {
    struct vs_tracefile_site *table;
};

int vs_tracefile_mark_add(struct vs_tracefile *trace, struct vs_tracefile_mark *mark, char *err,
                          size_t errlen)
{
    if (trace->n_marks == trace->cap_marks) {
        size_t cap = trace->cap_marks ? trace->cap_marks * 2 : 64;
        struct vs_tracefile_mark *grown = realloc(trace->marks, cap * sizeof *grown);
        if (!grown)
            return vs_tracefile_error(trace, mark->line, err, errlen, "out of memory");
        trace->marks = grown;
        trace->cap_marks = cap;
    }
    mark->before = trace->n_events;
    trace->marks[trace->n_marks++] = *mark;
    return 0;
}

int vs_tracefile_site_add(struct vs_tracefile *trace, unsigned line, uint32_t id,
                          const char *const *frames, size_t n, char *err, size_t errlen)
{
    if (!trace->sites && !(trace->sites = calloc(1, sizeof *trace->sites)))
        return vs_tracefile_error(trace, line, err, errlen, "out of memory");
    struct vs_tracefile_site *s = NULL;
    HASH_FIND(hh, trace->sites->table, &id, sizeof id, s);
    if (s)
        return vs_tracefile_error(trace, line, err, errlen, "call site %u is described twice",
                                  (unsigned)id);
    s = calloc(1, sizeof *s);
    if (!s || (n && !(s->frames = malloc(n * sizeof *s->frames)))) {
        free(s);
        return vs_tracefile_error(trace, line, err, errlen, "out of memory");
    }
    s->id = id;
    s->n = n;
    if (n)
        memcpy(s->frames, frames, n * sizeof *frames);
    HASH_ADD(hh, trace->sites->table, id, sizeof s->id, s);
    return 0;
}

const char *const *vs_tracefile_site_frames(const struct vs_tracefile *trace, uint32_t id,
                                            size_t *n)
{
    struct vs_tracefile_site *s = NULL;
    if (trace->sites)
        HASH_FIND(hh, trace->sites->table, &id, sizeof id, s);
    *n = s ? s->n : 0;
    return s ? s->frames : NULL;
}

void vs_tracefile_marks_free(struct vs_tracefile *trace)
{
    if (trace->sites) {
        struct vs_tracefile_site *s, *tmp;
        HASH_ITER(hh, trace->sites->table, s, tmp) {
            HASH_DEL(trace->sites->table, s);
            free(s->frames);
            free(s);
        }
        free(trace->sites);
    }
    free(trace->marks);
    trace->sites = NULL;
    trace->marks = NULL;
}
