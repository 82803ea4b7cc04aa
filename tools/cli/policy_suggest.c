/* `vramshim policy suggest TRACE -o POLICY.ini`: a starting policy from a trace with call sites.
 *
 * Phases: an allocation's phase function is the innermost frame of the program that is not a
 * helper (vs_mark_helpers): allocation wrappers and shared loaders are called from several
 * places, the function that called them names the phase (dit_load, T5EncoderModel.to_gpu).
 * Each phase function becomes a stage matching it, in the order the stages first allocate. A stage
 * evicts every other stage that holds memory while it runs but makes no allocation or free in that
 * time: memory that looks idle. A trace cannot show reads, so weights used without being
 * reallocated look idle too; the file says so. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uthash.h>

#include "policy/names.h"
#include "tools/cli/commands.h"
#include "tools/trace/analysis.h"
#include "tools/trace/units.h"

/* A frame shared by at least this share of allocations is context, not a phase. */
#define VS_SUGGEST_SHARED 0.95
enum { VS_SUGGEST_DEPTH = 16 };

struct vs_site_fns {
    uint32_t site;
    size_t n;
    const char *fn[VS_SUGGEST_DEPTH]; /* the program's frames, outermost first */
    UT_hash_handle hh;
};

struct vs_sstage {
    const char *fn;
    char name[VS_NAME_MAX + 1];
    uint64_t first_t, last_t, allocated, live;
    size_t allocs;
};

/* The function a frame names: a Python qualname or a native symbol (interned), NULL if none. */
static const char *vs_frame_fn(struct vs_tracefile *t, const char *frame)
{
    char buf[512];
    if (!strncmp(frame, "py:", 3)) {
        const char *q = strrchr(frame, ':');
        return q && q[1] ? vs_tracefile_intern(t, q + 1) : NULL;
    }
    const char *sym = strchr(frame, ' ');
    if (!sym)
        return NULL;
    snprintf(buf, sizeof buf, "%s", sym + 1);
    char *off = strstr(buf, "+0x");
    if (off)
        *off = '\0';
    return buf[0] ? vs_tracefile_intern(t, buf) : NULL;
}

/* The program's frames of a site, outermost first (only Python ones when it has any). */
static struct vs_site_fns *vs_site_fns(struct vs_tracefile *t, struct vs_site_fns **cache,
                                       uint32_t site)
{
    struct vs_site_fns *e = NULL;
    HASH_FIND(hh, *cache, &site, sizeof site, e);
    if (e || !(e = calloc(1, sizeof *e)))
        return e;
    e->site = site;
    size_t n = 0;
    const char *const *frames = vs_tracefile_site_frames(t, site, &n);
    bool python = false;
    for (size_t i = 0; i < n; i++)
        python = python || (!strncmp(frames[i], "py:", 3) && vs_frame_is_program(frames[i]));
    for (size_t i = n; i-- > 0 && e->n < VS_SUGGEST_DEPTH;) {
        if (!vs_frame_is_program(frames[i]) || python != !strncmp(frames[i], "py:", 3))
            continue;
        const char *fn = vs_frame_fn(t, frames[i]);
        if (fn)
            e->fn[e->n++] = fn;
    }
    HASH_ADD(hh, *cache, site, sizeof e->site, e);
    return e;
}

/* A stage name from a function: its qualified name (its last VS_NAME_MAX - 4 characters),
 * characters names cannot hold as '_', made unique among the first `n` stages. */
static void vs_stage_name(struct vs_sstage *stages, size_t n, const char *fn, char *out)
{
    size_t len = strlen(fn);
    char base[VS_NAME_MAX + 1];
    snprintf(base, sizeof base - 4, "%s",
             len > VS_NAME_MAX - 4 ? fn + len - (VS_NAME_MAX - 4) : fn);
    for (char *c = base; *c; c++)
        if (!vs_name_valid(c, 1))
            *c = '_';
    snprintf(out, VS_NAME_MAX + 1, "%s", base);
    for (unsigned k = 2;; k++) {
        bool taken = false;
        for (size_t i = 0; i < n; i++)
            taken = taken || !strcmp(stages[i].name, out);
        if (!taken)
            return;
        char tmp[64]; /* at most 28 + 1 + 10 characters: a valid name */
        snprintf(tmp, sizeof tmp, "%.28s_%u", base, k);
        memcpy(out, tmp, strlen(tmp) + 1);
    }
}

/* A call edge seen in some allocation's stack: caller -> callee (interned names). */
struct vs_edge {
    const char *key[2]; /* callee, caller */
    UT_hash_handle hh;
};

/* Per function: how many distinct callers it has, whether it is a helper. */
struct vs_fn_info {
    const char *fn;
    size_t callers, allocs;
    bool helper;
    UT_hash_handle hh;
};

static struct vs_fn_info *vs_info(struct vs_fn_info **table, const char *fn)
{
    struct vs_fn_info *f = NULL;
    HASH_FIND_PTR(*table, &fn, f);
    if (!f && (f = calloc(1, sizeof *f))) {
        f->fn = fn;
        HASH_ADD_PTR(*table, fn, f);
    }
    return f;
}

/* Helpers: functions called from several places (an allocation wrapper, Model.__init__), and
 * everything they call. An allocation's phase is its innermost frame that is not a helper: the
 * function that used a helper for its own purpose (dit_load, T5EncoderModel.to_gpu). When every
 * frame is a helper, the outermost frame that not (nearly) all allocations share. */
static void vs_mark_helpers(struct vs_fn_info **fns, struct vs_edge *edges)
{
    struct vs_edge *e, *tmp;
    HASH_ITER(hh, edges, e, tmp) {
        struct vs_fn_info *f = vs_info(fns, e->key[0]);
        if (f && ++f->callers > 1)
            f->helper = true;
    }
    for (bool changed = true; changed;) {
        changed = false;
        HASH_ITER(hh, edges, e, tmp) {
            struct vs_fn_info *callee = vs_info(fns, e->key[0]), *caller = vs_info(fns, e->key[1]);
            if (callee && caller && caller->helper && !callee->helper)
                changed = callee->helper = true;
        }
    }
}

static const char *vs_phase_of(struct vs_fn_info **fns, const struct vs_site_fns *se,
                               size_t with_frames)
{
    for (size_t k = se->n; k-- > 0;) {
        struct vs_fn_info *f = vs_info(fns, se->fn[k]);
        if (f && !f->helper)
            return se->fn[k];
    }
    for (size_t k = 0; k < se->n; k++) {
        struct vs_fn_info *f = vs_info(fns, se->fn[k]);
        if (f && (double)f->allocs < VS_SUGGEST_SHARED * (double)with_frames)
            return se->fn[k];
    }
    return se->fn[se->n - 1];
}

/* The phase function of each alloc (NULL: no frames of the program). */
static const char **vs_phase_fns(struct vs_tracefile *t)
{
    struct vs_site_fns *sites = NULL, *se, *stmp;
    struct vs_fn_info *fns = NULL, *f, *ftmp;
    struct vs_edge *edges = NULL, *e, *etmp;
    const char **phase = calloc(t->n_events ? t->n_events : 1, sizeof *phase);
    size_t with_frames = 0;
    for (int pass = 0; phase && pass < 2; pass++) {
        if (pass == 1)
            vs_mark_helpers(&fns, edges);
        for (size_t i = 0; i < t->n_events; i++) {
            const struct vs_tracefile_event *ev = &t->events[i];
            if (ev->kind != VS_TF_ALLOC || !ev->site || !(se = vs_site_fns(t, &sites, ev->site)) ||
                !se->n)
                continue;
            if (pass == 1) {
                phase[i] = vs_phase_of(&fns, se, with_frames);
                continue;
            }
            with_frames++;
            for (size_t k = 0; k < se->n; k++) {
                bool again = false; /* recursion counts once */
                for (size_t j = 0; j < k; j++)
                    again = again || se->fn[j] == se->fn[k];
                if (!again && (f = vs_info(&fns, se->fn[k])))
                    f->allocs++;
                if (!k || se->fn[k - 1] == se->fn[k])
                    continue;
                const char *key[2] = {se->fn[k], se->fn[k - 1]};
                HASH_FIND(hh, edges, key, sizeof key, e);
                if (!e && (e = calloc(1, sizeof *e))) {
                    memcpy(e->key, key, sizeof key);
                    HASH_ADD(hh, edges, key, sizeof e->key, e);
                }
            }
        }
    }
    HASH_ITER(hh, sites, se, stmp) {
        HASH_DEL(sites, se);
        free(se);
    }
    HASH_ITER(hh, fns, f, ftmp) {
        HASH_DEL(fns, f);
        free(f);
    }
    HASH_ITER(hh, edges, e, etmp) {
        HASH_DEL(edges, e);
        free(e);
    }
    return phase;
}

enum { VS_SUGGEST_STAGES = 64 };

struct vs_times {
    uint64_t *t;
    size_t n, cap;
};

/* Whether times (sorted) has one in [from, to]. */
static bool vs_any_in(const struct vs_times *times, uint64_t from, uint64_t to)
{
    size_t lo = 0, hi = times->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (times->t[mid] < from)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < times->n && times->t[lo] <= to;
}

static void vs_write_policy(FILE *out, const char *path, const struct vs_sstage *st, size_t n,
                            const uint64_t *idle)
{
    char a[32], b[32];
    fprintf(out,
            "; Suggested by `vramshim policy suggest` from %s.\n"
            "; Stages are the functions under which memory is allocated, in the order they first\n"
            "; allocate. Each evicts the stages whose memory stays live but sees no allocation or\n"
            "; free while it runs. A trace cannot show reads: memory used without being allocated\n"
            "; or freed (model weights) looks idle too. Keep such a stage out of the evict lists\n"
            "; of the stages that use it, or add it to their prefetch, before relying on this.\n"
            "\n[global]\neviction = on\n",
            path);
    for (size_t s = 0; s < n; s++) {
        fprintf(out, "\n; %s allocated in %zu allocation%s from %.3f s to %.3f s\n",
                vs_size_format(st[s].allocated, a, sizeof a), st[s].allocs,
                st[s].allocs == 1 ? "" : "s", (double)st[s].first_t / 1e9,
                (double)st[s].last_t / 1e9);
        fprintf(out, "[stage %s]\nmatch = %s\n", st[s].name, st[s].fn);
        size_t listed = 0;
        for (size_t o = 0; o < n; o++)
            if (idle[s * n + o]) {
                fprintf(out, "; %s: %s live and idle while %s runs\n", st[o].name,
                        vs_size_format(idle[s * n + o], b, sizeof b), st[s].name);
                listed++;
            }
        for (size_t o = 0, k = 0; listed && o < n; o++)
            if (idle[s * n + o])
                fprintf(out, "%s%s", k++ ? ", " : "evict = ", st[o].name);
        if (listed)
            fprintf(out, "\n");
    }
}

/* Stages from the phase functions; stage_of gets each event's stage (-1: none). */
static size_t vs_make_stages(const struct vs_tracefile *t, const char **phase,
                             struct vs_sstage *st, int *stage_of, struct vs_times *times)
{
    size_t n = 0;
    uint64_t t0 = t->n_events ? t->events[0].t_ns : 0;
    for (size_t i = 0; i < t->n_events; i++) {
        const struct vs_tracefile_event *ev = &t->events[i];
        int s = -1;
        if (ev->kind == VS_TF_FREE) {
            s = stage_of[ev->alloc];
        } else if (phase[i]) {
            for (size_t k = 0; k < n && s < 0; k++)
                if (st[k].fn == phase[i])
                    s = (int)k;
            if (s < 0 && n < VS_SUGGEST_STAGES) {
                st[n] = (struct vs_sstage){.fn = phase[i], .first_t = ev->t_ns - t0};
                vs_stage_name(st, n, phase[i], st[n].name);
                s = (int)n++;
            }
        }
        stage_of[i] = s;
        if (s < 0)
            continue;
        struct vs_times *tm = &times[s];
        if (tm->n == tm->cap) {
            size_t cap = tm->cap ? tm->cap * 2 : 64;
            uint64_t *grown = realloc(tm->t, cap * sizeof *grown);
            if (!grown)
                return 0;
            tm->t = grown;
            tm->cap = cap;
        }
        tm->t[tm->n++] = ev->t_ns - t0;
        st[s].last_t = ev->t_ns - t0;
        if (ev->kind == VS_TF_ALLOC) {
            st[s].allocs++;
            st[s].allocated += ev->size;
        }
    }
    return n;
}

/* idle[s * n + o]: bytes of stage o live when s first allocates, when o has no event while s
 * runs (0 otherwise). */
static void vs_idle(const struct vs_tracefile *t, const int *stage_of, const struct vs_sstage *st,
                    size_t n, const struct vs_times *times, uint64_t *idle)
{
    uint64_t live[VS_SUGGEST_STAGES] = {0};
    bool seen[VS_SUGGEST_STAGES] = {false};
    for (size_t i = 0; i < t->n_events; i++) {
        const struct vs_tracefile_event *ev = &t->events[i];
        int s = stage_of[i];
        if (s < 0)
            continue;
        if (!seen[s]) {
            seen[s] = true;
            for (size_t o = 0; o < n; o++)
                if ((size_t)s != o && live[o] &&
                    !vs_any_in(&times[o], st[s].first_t, st[s].last_t))
                    idle[(size_t)s * n + o] = live[o];
        }
        live[s] = ev->kind == VS_TF_ALLOC ? live[s] + ev->size : live[s] - ev->size;
    }
}

int vs_policy_suggest(int argc, char **argv)
{
    const char *path = NULL, *out_path = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-o") && i + 1 < argc) {
            out_path = argv[++i];
        } else if (argv[i][0] != '-' && !path) {
            path = argv[i];
        } else {
            fprintf(stderr, "vramshim policy suggest: unexpected argument '%s'\n", argv[i]);
            return 2;
        }
    }
    if (!path || !out_path) {
        fprintf(stderr, "usage: vramshim policy suggest TRACE -o POLICY.ini\n");
        return 2;
    }
    struct vs_tracefile t;
    char err[1024];
    if (vs_tracefile_read(path, &t, err, sizeof err)) {
        fprintf(stderr, "vramshim policy suggest: %s\n", err);
        return 1;
    }
    const char **phase = vs_phase_fns(&t);
    int *stage_of = malloc((t.n_events ? t.n_events : 1) * sizeof *stage_of);
    struct vs_sstage *st = calloc(VS_SUGGEST_STAGES, sizeof *st);
    struct vs_times *times = calloc(VS_SUGGEST_STAGES, sizeof *times);
    uint64_t *idle = calloc(VS_SUGGEST_STAGES * VS_SUGGEST_STAGES, sizeof *idle);
    int rc = 1;
    size_t n = 0;
    if (!phase || !stage_of || !st || !times || !idle)
        fprintf(stderr, "vramshim policy suggest: out of memory\n");
    else if (!(n = vs_make_stages(&t, phase, st, stage_of, times)))
        fprintf(stderr, "vramshim policy suggest: %s: no allocation has a call site with frames "
                        "of the program (trace with VRAMSHIM_TRACE_STACKS=1, the default)\n",
                path);
    else
        rc = 0;
    FILE *out = NULL;
    if (!rc && !(out = fopen(out_path, "w"))) {
        fprintf(stderr, "vramshim policy suggest: %s: cannot write it\n", out_path);
        rc = 1;
    }
    if (!rc) {
        vs_idle(&t, stage_of, st, n, times, idle);
        vs_write_policy(out, path, st, n, idle);
        if (fclose(out)) {
            fprintf(stderr, "vramshim policy suggest: %s: cannot write it\n", out_path);
            rc = 1;
        } else {
            printf("%s: %zu stages from %zu allocations, written to %s\n", path, n, t.n_allocs,
                   out_path);
        }
    }
    for (size_t s = 0; times && s < VS_SUGGEST_STAGES; s++)
        free(times[s].t);
    free(times);
    free(idle);
    free(st);
    free(stage_of);
    free(phase);
    vs_tracefile_free(&t);
    return rc;
}
