/* Trace analysis (see analysis.h): groups, the walk, the full pass at open and call site labels. */
#include "tools/trace/analysis.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uthash.h>

static const char *const vs_by_names[VS_BY_N] = {"stage", "tag", "site"};
static const char *const vs_by_none[VS_BY_N] = {"(no stage)", "(no tag)", "(no call site)"};

const char *vs_by_name(enum vs_by by)
{
    return vs_by_names[by];
}

int vs_by_parse(const char *text)
{
    for (int by = 0; by < VS_BY_N; by++)
        if (!strcmp(text, vs_by_names[by]))
            return by;
    return -1;
}

/* --- call site labels ------------------------------------------------------------------- */

/* Modules and Python files that are not the program's own code. */
static const char *const vs_foreign_modules[] = {
    "libvramshim", "libcuda", "libcudart", "libcublas", "libcudnn", "libnccl", "libtorch",
    "libc10", "libpython", "libc.so", "libstdc++", "libgcc_s", "ld-linux", "libm.so",
    "libpthread", "libdl", "python", "?"};
static const char *const vs_foreign_python[] = {"/torch/", "/vramshim/", "<frozen"};

static bool vs_frame_foreign(const char *frame);

bool vs_frame_is_program(const char *frame)
{
    return !vs_frame_foreign(frame);
}

static bool vs_frame_foreign(const char *frame)
{
    if (!strncmp(frame, "py:", 3)) {
        for (size_t i = 0; i < sizeof vs_foreign_python / sizeof *vs_foreign_python; i++)
            if (strstr(frame, vs_foreign_python[i]))
                return true;
        return false;
    }
    for (size_t i = 0; i < sizeof vs_foreign_modules / sizeof *vs_foreign_modules; i++)
        if (!strncmp(frame, vs_foreign_modules[i], strlen(vs_foreign_modules[i])))
            return true;
    return false;
}

/* "Model.allocate (main.py:18)" for "py:/x/main.py:18:Model.allocate"; "dit_load" for
 * "prog+0x22 dit_load+0x2b"; the module and offset when no symbol is known. */
static int vs_frame_short(const char *frame, char *buf, size_t len)
{
    if (!strncmp(frame, "py:", 3)) {
        const char *qual = strrchr(frame, ':');
        const char *line = qual;
        while (line > frame + 3 && line[-1] != ':')
            line--;
        const char *file = frame + 3;
        for (const char *p = file; p < line; p++)
            if (*p == '/')
                file = p + 1;
        if (line <= frame + 3)
            return snprintf(buf, len, "%s", frame + 3);
        return snprintf(buf, len, "%s (%.*s%.*s)", qual + 1, (int)(line - 1 - file), file,
                        (int)(qual - line + 1), line - 1);
    }
    const char *sym = strchr(frame, ' ');
    if (!sym)
        return snprintf(buf, len, "%s", frame);
    const char *off = strstr(sym + 1, "+0x");
    return snprintf(buf, len, "%.*s", off ? (int)(off - sym - 1) : (int)strlen(sym + 1), sym + 1);
}

const char *vs_site_label(const struct vs_tracefile *trace, uint32_t site, unsigned depth,
                          char *buf, size_t len)
{
    size_t n = 0;
    const char *const *frames = site ? vs_tracefile_site_frames(trace, site, &n) : NULL;
    bool python = false;
    for (size_t i = 0; i < n; i++)
        python = python || (!strncmp(frames[i], "py:", 3) && !vs_frame_foreign(frames[i]));
    size_t used = 0;
    unsigned shown = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n && shown < depth && used < len; i++) {
        if (vs_frame_foreign(frames[i]) || python != !strncmp(frames[i], "py:", 3))
            continue;
        if (shown++) {
            int k = snprintf(buf + used, len - used, " < ");
            used += k > 0 ? (size_t)k : 0;
        }
        if (used < len) {
            int k = vs_frame_short(frames[i], buf + used, len - used);
            used += k > 0 ? (size_t)k : 0;
        }
    }
    if (!shown)
        snprintf(buf, len, "%s", n ? frames[0] : vs_by_none[VS_BY_SITE]);
    return buf;
}

/* --- groups ------------------------------------------------------------------------------ */

/* Group index by interned name (pointer identity), while opening. */
struct vs_group_key {
    const char *name;
    uint32_t index;
    UT_hash_handle hh;
};

struct vs_site_key {
    uint32_t site;
    const char *label;
    UT_hash_handle hh;
};

static int vs_group_index(struct vs_analysis *a, enum vs_by by, struct vs_group_key **table,
                          const char *name, uint32_t site, uint32_t *out)
{
    struct vs_group_key *k = NULL;
    HASH_FIND_PTR(*table, &name, k);
    if (k) {
        *out = k->index;
        return 0;
    }
    size_t n = a->n_groups[by];
    struct vs_trace_group *grown = realloc(a->groups[by], (n + 1) * sizeof *grown);
    if (!grown || !(k = calloc(1, sizeof *k))) {
        if (grown)
            a->groups[by] = grown;
        return -1;
    }
    a->groups[by] = grown;
    grown[n] = (struct vs_trace_group){.name = name, .site = site};
    k->name = name;
    k->index = (uint32_t)n;
    HASH_ADD_PTR(*table, name, k);
    a->n_groups[by] = n + 1;
    *out = (uint32_t)n;
    return 0;
}

/* The label of site, interned, cached per site id. */
static const char *vs_site_name(struct vs_analysis *a, struct vs_site_key **cache, uint32_t site)
{
    struct vs_site_key *k = NULL;
    HASH_FIND(hh, *cache, &site, sizeof site, k);
    if (k)
        return k->label;
    char label[512];
    const char *name = vs_tracefile_intern(a->trace, vs_site_label(a->trace, site, 3, label,
                                                                   sizeof label));
    if (!name || !(k = calloc(1, sizeof *k)))
        return NULL;
    k->site = site;
    k->label = name;
    HASH_ADD(hh, *cache, site, sizeof k->site, k);
    return name;
}

/* Assigns every alloc its three groups (frees share their alloc's). */
static int vs_analysis_group(struct vs_analysis *a)
{
    struct vs_group_key *tables[VS_BY_N] = {0};
    struct vs_site_key *sites = NULL;
    int rc = 0;
    const char *none[VS_BY_N];
    for (int by = 0; by < VS_BY_N; by++) {
        none[by] = vs_tracefile_intern(a->trace, vs_by_none[by]);
        a->group_of[by] = malloc((a->trace->n_events ? a->trace->n_events : 1) * sizeof(uint32_t));
        if (!none[by] || !a->group_of[by])
            rc = -1;
    }
    for (size_t i = 0; !rc && i < a->trace->n_events; i++) {
        const struct vs_tracefile_event *ev = &a->trace->events[i];
        if (ev->kind == VS_TF_FREE) {
            for (int by = 0; by < VS_BY_N; by++)
                a->group_of[by][i] = a->group_of[by][ev->alloc];
            continue;
        }
        const char *site = ev->site ? vs_site_name(a, &sites, ev->site) : none[VS_BY_SITE];
        const char *names[VS_BY_N] = {ev->stage ? ev->stage : none[VS_BY_STAGE],
                                      ev->tag ? ev->tag : none[VS_BY_TAG], site};
        for (int by = 0; !rc && by < VS_BY_N; by++)
            rc = !names[by] ? -1
                            : vs_group_index(a, by, &tables[by], names[by], ev->site,
                                             &a->group_of[by][i]);
    }
    for (int by = 0; by < VS_BY_N; by++) {
        struct vs_group_key *k, *tmp;
        HASH_ITER(hh, tables[by], k, tmp) {
            HASH_DEL(tables[by], k);
            free(k);
        }
    }
    struct vs_site_key *s, *tmp;
    HASH_ITER(hh, sites, s, tmp) {
        HASH_DEL(sites, s);
        free(s);
    }
    return rc;
}

/* --- the walk ------------------------------------------------------------------------------ */

void vs_analysis_rewind(struct vs_analysis *a)
{
    for (int by = 0; by < VS_BY_N; by++)
        for (size_t g = 0; g < a->n_groups[by]; g++)
            a->groups[by][g].live = a->groups[by][g].host = 0;
    if (a->host_of)
        memset(a->host_of, 0, a->trace->n_events * sizeof *a->host_of);
    a->ev = a->mark = a->steps = 0;
    a->live = a->host = a->now = 0;
}

static uint64_t vs_since(const struct vs_analysis *a, uint64_t t)
{
    return t > a->t0 ? t - a->t0 : 0;
}

bool vs_analysis_peek_t(const struct vs_analysis *a, uint64_t *t)
{
    const struct vs_tracefile *tr = a->trace;
    if (a->mark < tr->n_marks && tr->marks[a->mark].before <= a->ev)
        *t = vs_since(a, tr->marks[a->mark].t_ns);
    else if (a->ev < tr->n_events)
        *t = vs_since(a, tr->events[a->ev].t_ns);
    else
        return false;
    return true;
}

/* Moves `bytes` of alloc i to (demote) or from (promote) host memory. */
static void vs_analysis_move(struct vs_analysis *a, size_t i, uint64_t bytes, bool demote)
{
    uint64_t *host = &a->host_of[i];
    uint64_t size = a->trace->events[i].size;
    uint64_t delta = demote ? (bytes < size - *host ? bytes : size - *host)
                            : (bytes < *host ? bytes : *host);
    *host = demote ? *host + delta : *host - delta;
    a->host = demote ? a->host + delta : a->host - delta;
    for (int by = 0; by < VS_BY_N; by++) {
        struct vs_trace_group *g = &a->groups[by][a->group_of[by][i]];
        g->host = demote ? g->host + delta : g->host - delta;
    }
}

bool vs_analysis_step(struct vs_analysis *a, struct vs_step *step)
{
    const struct vs_tracefile *tr = a->trace;
    if (a->mark < tr->n_marks && tr->marks[a->mark].before <= a->ev) {
        const struct vs_tracefile_mark *m = &tr->marks[a->mark];
        *step = (struct vs_step){.event = SIZE_MAX, .mark = a->mark++};
        a->now = vs_since(a, m->t_ns);
        if ((m->kind == VS_TF_DEMOTE || m->kind == VS_TF_PROMOTE) && m->alloc != SIZE_MAX)
            vs_analysis_move(a, m->alloc, m->size, m->kind == VS_TF_DEMOTE);
    } else if (a->ev < tr->n_events) {
        const struct vs_tracefile_event *ev = &tr->events[a->ev];
        *step = (struct vs_step){.event = a->ev, .mark = SIZE_MAX};
        a->now = vs_since(a, ev->t_ns);
        if (ev->kind == VS_TF_FREE && a->host_of[ev->alloc])
            vs_analysis_move(a, ev->alloc, a->host_of[ev->alloc], false);
        for (int by = 0; by < VS_BY_N; by++) {
            struct vs_trace_group *g = &a->groups[by][a->group_of[by][a->ev]];
            g->live = ev->kind == VS_TF_ALLOC ? g->live + ev->size : g->live - ev->size;
        }
        a->live = ev->kind == VS_TF_ALLOC ? a->live + ev->size : a->live - ev->size;
        a->ev++;
    } else {
        return false;
    }
    a->steps++;
    return true;
}

/* --- the full pass ------------------------------------------------------------------------- */

static int vs_block_cmp(const void *x, const void *y)
{
    const uint64_t *a = x, *b = y;
    return a[0] < b[0] ? -1 : a[0] > b[0];
}

/* Largest address gap between the blocks live before event `upto` (free_at: per alloc, the
 * event that frees it). */
static uint64_t vs_largest_gap(const struct vs_tracefile *tr, const size_t *free_at, size_t upto)
{
    size_t n = 0;
    uint64_t (*blocks)[2] = malloc((upto ? upto : 1) * sizeof *blocks);
    if (!blocks)
        return 0;
    for (size_t i = 0; i < upto; i++)
        if (tr->events[i].kind == VS_TF_ALLOC && free_at[i] >= upto) {
            blocks[n][0] = tr->events[i].ptr;
            blocks[n++][1] = tr->events[i].ptr + tr->events[i].size;
        }
    qsort(blocks, n, sizeof *blocks, vs_block_cmp);
    uint64_t gap = 0, end = n ? blocks[0][1] : 0;
    for (size_t i = 1; i < n; i++) {
        if (blocks[i][0] > end && blocks[i][0] - end > gap)
            gap = blocks[i][0] - end;
        if (blocks[i][1] > end)
            end = blocks[i][1];
    }
    free(blocks);
    return gap;
}

/* At most this many OOMs get the live set and address gaps (each costs a pass over the events
 * before it); later ones are counted. */
enum { VS_OOM_DETAILED = 64 };

static int vs_analysis_oom(struct vs_analysis *a, size_t mark, const size_t *free_at)
{
    struct vs_oom *grown = realloc(a->ooms, (a->n_ooms + 1) * sizeof *grown);
    if (!grown)
        return -1;
    a->ooms = grown;
    struct vs_oom *o = &grown[a->n_ooms++];
    *o = (struct vs_oom){.mark = mark, .t = a->now, .live = a->live, .host = a->host};
    if (a->n_ooms > VS_OOM_DETAILED)
        return 0;
    o->largest_gap = vs_largest_gap(a->trace, free_at, a->ev);
    for (int by = 0; by < VS_BY_N; by++) {
        if (!(o->live_by[by] = calloc(a->n_groups[by] ? a->n_groups[by] : 1, sizeof(uint64_t))))
            return -1;
        for (size_t g = 0; g < a->n_groups[by]; g++)
            o->live_by[by][g] = a->groups[by][g].live;
    }
    return 0;
}

/* The whole trace once: peaks, per-group totals, moves and OOMs. */
static int vs_analysis_pass(struct vs_analysis *a)
{
    const struct vs_tracefile *tr = a->trace;
    size_t *free_at = malloc((tr->n_events ? tr->n_events : 1) * sizeof *free_at);
    if (!free_at)
        return -1;
    for (size_t i = 0; i < tr->n_events; i++) {
        free_at[i] = SIZE_MAX;
        if (tr->events[i].kind == VS_TF_FREE)
            free_at[tr->events[i].alloc] = i;
    }
    vs_analysis_rewind(a);
    struct vs_step s;
    int rc = 0;
    while (!rc && vs_analysis_step(a, &s)) {
        if (s.mark != SIZE_MAX) {
            const struct vs_tracefile_mark *m = &tr->marks[s.mark];
            bool demote = m->kind == VS_TF_DEMOTE;
            if (m->kind == VS_TF_OOM) {
                rc = vs_analysis_oom(a, s.mark, free_at);
            } else if (demote || m->kind == VS_TF_PROMOTE) {
                *(demote ? &a->demoted : &a->promoted) += m->size;
                (*(demote ? &a->demotions : &a->promotions))++;
                for (int by = 0; m->alloc != SIZE_MAX && by < VS_BY_N; by++) {
                    struct vs_trace_group *g = &a->groups[by][a->group_of[by][m->alloc]];
                    *(demote ? &g->demoted : &g->promoted) += m->size;
                }
            }
        } else if (tr->events[s.event].kind == VS_TF_ALLOC) {
            const struct vs_tracefile_event *ev = &tr->events[s.event];
            for (int by = 0; by < VS_BY_N; by++) {
                struct vs_trace_group *g = &a->groups[by][a->group_of[by][s.event]];
                g->allocs++;
                g->alloc_bytes += ev->size;
                if (g->live > g->peak) {
                    g->peak = g->live;
                    g->peak_t = a->now;
                }
            }
            if (a->live > a->peak_live) {
                a->peak_live = a->live;
                a->peak_live_t = a->now;
                a->peak_live_step = a->steps;
            }
        }
        if (a->live - a->host > a->peak_resident) {
            a->peak_resident = a->live - a->host;
            a->peak_resident_t = a->now;
        }
        a->duration = a->now;
    }
    free(free_at);
    vs_analysis_rewind(a);
    return rc;
}

int vs_analysis_open(struct vs_analysis *a, struct vs_tracefile *trace, char *err, size_t errlen)
{
    memset(a, 0, sizeof *a);
    a->trace = trace;
    a->t0 = UINT64_MAX;
    if (trace->n_events)
        a->t0 = trace->events[0].t_ns;
    if (trace->n_marks && trace->marks[0].t_ns < a->t0)
        a->t0 = trace->marks[0].t_ns;
    if (a->t0 == UINT64_MAX)
        a->t0 = 0;
    a->host_of = calloc(trace->n_events ? trace->n_events : 1, sizeof *a->host_of);
    if (!a->host_of || vs_analysis_group(a) || vs_analysis_pass(a)) {
        vs_analysis_close(a);
        snprintf(err, errlen, "%s: out of memory while analysing the trace", trace->path);
        return -1;
    }
    return 0;
}

void vs_analysis_close(struct vs_analysis *a)
{
    for (int by = 0; by < VS_BY_N; by++) {
        free(a->groups[by]);
        free(a->group_of[by]);
    }
    for (size_t i = 0; i < a->n_ooms; i++)
        for (int by = 0; by < VS_BY_N; by++)
            free(a->ooms[i].live_by[by]);
    free(a->ooms);
    free(a->host_of);
    memset(a, 0, sizeof *a);
}

static const uint64_t *vs_sort_key;

static int vs_key_cmp(const void *x, const void *y)
{
    uint64_t a = vs_sort_key[*(const size_t *)x], b = vs_sort_key[*(const size_t *)y];
    if (a != b)
        return a < b ? 1 : -1;
    return *(const size_t *)x < *(const size_t *)y ? -1 : 1;
}

size_t *vs_groups_sorted(const struct vs_analysis *a, enum vs_by by, const uint64_t *key)
{
    size_t n = a->n_groups[by];
    size_t *idx = malloc((n ? n : 1) * sizeof *idx);
    if (!idx)
        return NULL;
    for (size_t i = 0; i < n; i++)
        idx[i] = i;
    vs_sort_key = key;
    qsort(idx, n, sizeof *idx, vs_key_cmp);
    return idx;
}
