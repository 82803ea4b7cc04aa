/* `vramshim trace summary` and `vramshim trace top`. The summary is built once as a JSON object
 * (printed as is with --json) and the text view is read from it, so both always agree. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/cli/trace_views.h"
#include "tools/trace/units.h"

/* Call sites listed at the peak, groups listed at an OOM. */
enum { VS_SUMMARY_SITES = 10, VS_OOM_GROUPS = 5 };

static double vs_seconds(uint64_t ns)
{
    return (double)ns / 1e9;
}

static json_t *vs_bytes(uint64_t v)
{
    return json_integer((json_int_t)v);
}

static json_t *vs_summary_groups(const struct vs_analysis *a, enum vs_by by)
{
    json_t *arr = json_array();
    uint64_t *peak = malloc((a->n_groups[by] ? a->n_groups[by] : 1) * sizeof *peak);
    for (size_t g = 0; peak && g < a->n_groups[by]; g++)
        peak[g] = a->groups[by][g].peak;
    size_t *order = peak ? vs_groups_sorted(a, by, peak) : NULL;
    for (size_t i = 0; order && i < a->n_groups[by]; i++) {
        const struct vs_trace_group *g = &a->groups[by][order[i]];
        json_array_append_new(arr, json_pack("{s:s, s:o, s:f, s:I, s:o, s:o, s:o}", "name",
                                             g->name, "peak_bytes", vs_bytes(g->peak),
                                             "peak_s", vs_seconds(g->peak_t), "allocations",
                                             (json_int_t)g->allocs, "allocated_bytes",
                                             vs_bytes(g->alloc_bytes), "demoted_bytes",
                                             vs_bytes(g->demoted), "promoted_bytes",
                                             vs_bytes(g->promoted)));
    }
    free(order);
    free(peak);
    return arr;
}

/* {"name": bytes, ...} of the largest nonzero values, largest first. */
static json_t *vs_largest(const struct vs_analysis *a, enum vs_by by, const uint64_t *values,
                          size_t limit)
{
    json_t *arr = json_array();
    size_t *order = vs_groups_sorted(a, by, values);
    for (size_t i = 0; order && i < a->n_groups[by] && i < limit && values[order[i]]; i++)
        json_array_append_new(arr, json_pack("{s:s, s:o}", "name", a->groups[by][order[i]].name,
                                             "bytes", vs_bytes(values[order[i]])));
    free(order);
    return arr;
}

/* Walks from the start to the peak of live bytes and lists the call sites live there. */
static json_t *vs_summary_sites(struct vs_analysis *a)
{
    vs_analysis_rewind(a);
    struct vs_step s;
    while (a->steps < a->peak_live_step && vs_analysis_step(a, &s))
        ;
    uint64_t *live = malloc((a->n_groups[VS_BY_SITE] ? a->n_groups[VS_BY_SITE] : 1) * sizeof *live);
    json_t *arr = json_array();
    for (size_t g = 0; live && g < a->n_groups[VS_BY_SITE]; g++)
        live[g] = a->groups[VS_BY_SITE][g].live;
    if (live) {
        json_decref(arr);
        arr = vs_largest(a, VS_BY_SITE, live, VS_SUMMARY_SITES);
    }
    free(live);
    vs_analysis_rewind(a);
    return arr;
}

static json_t *vs_summary_oom(const struct vs_analysis *a, size_t n)
{
    const struct vs_oom *o = &a->ooms[n];
    const struct vs_tracefile_mark *m = &a->trace->marks[o->mark];
    char site[512];
    uint64_t cap = a->trace->device_total, resident = o->live - o->host;
    json_t *j = json_pack("{s:I, s:I, s:f, s:o, s:s?, s:s?, s:s, s:o, s:o}", "oom",
                          (json_int_t)n + 1, "line", (json_int_t)m->line, "t_s",
                          vs_seconds(o->t), "requested_bytes", vs_bytes(m->size), "stage",
                          m->stage, "tag", m->tag, "site",
                          vs_site_label(a->trace, m->site, 3, site, sizeof site), "live_bytes",
                          vs_bytes(o->live), "device_bytes", vs_bytes(resident));
    json_object_set_new(j, "free_bytes", cap ? vs_bytes(cap > resident ? cap - resident : 0)
                                             : json_null());
    if (!o->live_by[0])
        return j; /* beyond the detailed ones: counted only */
    json_object_set_new(j, "largest_gap_bytes", vs_bytes(o->largest_gap));
    json_object_set_new(j, "by_stage", vs_largest(a, VS_BY_STAGE, o->live_by[VS_BY_STAGE],
                                                  VS_OOM_GROUPS));
    json_object_set_new(j, "by_tag", vs_largest(a, VS_BY_TAG, o->live_by[VS_BY_TAG],
                                                VS_OOM_GROUPS));
    return j;
}

static json_t *vs_summary_json(struct vs_analysis *a)
{
    const struct vs_tracefile *t = a->trace;
    json_t *j = json_pack(
        "{s:s, s:s, s:I, s:I, s:f, s:o, s:f, s:o, s:f, s:o, s:I, s:o, s:I}", "trace", t->path,
        "format", t->format == VS_TF_RMM ? "rmm" : "vramshim", "allocations",
        (json_int_t)t->n_allocs, "frees", (json_int_t)(t->n_events - t->n_allocs),
        "duration_s", vs_seconds(a->duration), "peak_live_bytes", vs_bytes(a->peak_live),
        "peak_live_s", vs_seconds(a->peak_live_t), "peak_device_bytes",
        vs_bytes(a->peak_resident), "peak_device_s", vs_seconds(a->peak_resident_t),
        "demoted_bytes", vs_bytes(a->demoted), "demotions", (json_int_t)a->demotions,
        "promoted_bytes", vs_bytes(a->promoted), "promotions", (json_int_t)a->promotions);
    json_object_set_new(j, "device_total_bytes",
                        t->device_total ? vs_bytes(t->device_total) : json_null());
    uint64_t reserved_t = t->peak_reserved_t_ns > a->t0 ? t->peak_reserved_t_ns - a->t0 : 0;
    json_object_set_new(j, "peak_reserved_bytes",
                        t->has_reserved ? vs_bytes(t->peak_reserved) : json_null());
    json_object_set_new(j, "peak_reserved_s",
                        t->has_reserved ? json_real(vs_seconds(reserved_t)) : json_null());
    json_object_set_new(j, "stages", vs_summary_groups(a, VS_BY_STAGE));
    json_object_set_new(j, "tags", vs_summary_groups(a, VS_BY_TAG));
    json_object_set_new(j, "sites_at_peak", vs_summary_sites(a));
    json_t *ooms = json_array();
    for (size_t i = 0; i < a->n_ooms; i++)
        json_array_append_new(ooms, vs_summary_oom(a, i));
    json_object_set_new(j, "ooms", ooms);
    return j;
}

/* --- text, read from the JSON object --------------------------------------------------- */

static const char *vs_jsize(json_t *o, const char *key, char *buf, size_t len)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v))
        return "-";
    return vs_size_format((uint64_t)json_integer_value(v), buf, len);
}

static void vs_print_groups(json_t *j, const char *key, const char *title)
{
    char a[32], b[32], c[32], d[32];
    json_t *arr = json_object_get(j, key), *g;
    size_t i;
    printf("\n%-24s %12s %10s %7s %12s %12s %12s\n", title, "peak", "at", "allocs", "allocated",
           "demoted", "promoted");
    json_array_foreach(arr, i, g) {
        char at[32];
        printf("%-24s %12s %10s %7lld %12s %12s %12s\n",
               json_string_value(json_object_get(g, "name")), vs_jsize(g, "peak_bytes", a, 32),
               vs_seconds_format(json_real_value(json_object_get(g, "peak_s")), at, sizeof at),
               (long long)json_integer_value(json_object_get(g, "allocations")),
               vs_jsize(g, "allocated_bytes", b, 32), vs_jsize(g, "demoted_bytes", c, 32),
               vs_jsize(g, "promoted_bytes", d, 32));
    }
}

static void vs_print_named(json_t *arr, const char *title)
{
    char a[32];
    json_t *g;
    size_t i;
    printf("  %-9s", title);
    json_array_foreach(arr, i, g)
        printf("%s%s %s", i ? ", " : " ", json_string_value(json_object_get(g, "name")),
               vs_jsize(g, "bytes", a, 32));
    printf("%s\n", json_array_size(arr) ? "" : " -");
}

static void vs_print_oom(json_t *o)
{
    char a[32], b[32], c[32], d[32];
    const char *stage = json_string_value(json_object_get(o, "stage"));
    const char *tag = json_string_value(json_object_get(o, "tag"));
    char t[32];
    printf("\nout of memory %lld at %s (line %lld): %s requested in stage %s, tag %s, at %s\n",
           (long long)json_integer_value(json_object_get(o, "oom")),
           vs_seconds_format(json_real_value(json_object_get(o, "t_s")), t, sizeof t),
           (long long)json_integer_value(json_object_get(o, "line")),
           vs_jsize(o, "requested_bytes", a, 32), stage ? stage : "-", tag ? tag : "-",
           json_string_value(json_object_get(o, "site")));
    printf("  live %s, on device %s, free on device %s, largest gap between live blocks %s\n",
           vs_jsize(o, "live_bytes", a, 32), vs_jsize(o, "device_bytes", b, 32),
           vs_jsize(o, "free_bytes", c, 32), vs_jsize(o, "largest_gap_bytes", d, 32));
    if (json_object_get(o, "by_stage")) {
        vs_print_named(json_object_get(o, "by_stage"), "by stage:");
        vs_print_named(json_object_get(o, "by_tag"), "by tag:");
    }
}

static void vs_print_summary(json_t *j)
{
    char a[32], b[32];
    printf("trace        %s (%s, %lld allocations, %lld frees)\n",
           json_string_value(json_object_get(j, "trace")),
           strcmp(json_string_value(json_object_get(j, "format")), "rmm") ? "vramshim trace"
                                                                           : "RMM log",
           (long long)json_integer_value(json_object_get(j, "allocations")),
           (long long)json_integer_value(json_object_get(j, "frees")));
    char t[32];
    printf("duration     %s\n",
           vs_seconds_format(json_real_value(json_object_get(j, "duration_s")), t, sizeof t));
    printf("device       %s\n", vs_jsize(j, "device_total_bytes", a, 32));
    printf("peak live    %s at %s\n", vs_jsize(j, "peak_live_bytes", a, 32),
           vs_seconds_format(json_real_value(json_object_get(j, "peak_live_s")), t, sizeof t));
    printf("peak device  %s at %s (live minus demoted to host)\n",
           vs_jsize(j, "peak_device_bytes", a, 32),
           vs_seconds_format(json_real_value(json_object_get(j, "peak_device_s")), t, sizeof t));
    if (json_is_integer(json_object_get(j, "peak_reserved_bytes")))
        printf("peak reserved %s at %s (the arenas' physical memory, mapped and cached)\n",
               vs_jsize(j, "peak_reserved_bytes", a, 32),
               vs_seconds_format(json_real_value(json_object_get(j, "peak_reserved_s")), t,
                                 sizeof t));
    else
        printf("reserved     not recorded in this trace (pass-through, an older shim, an import "
               "or an RMM log)\n");
    printf("moves        demoted %s in %lld, promoted %s in %lld\n",
           vs_jsize(j, "demoted_bytes", a, 32),
           (long long)json_integer_value(json_object_get(j, "demotions")),
           vs_jsize(j, "promoted_bytes", b, 32),
           (long long)json_integer_value(json_object_get(j, "promotions")));
    vs_print_groups(j, "stages", "stage");
    vs_print_groups(j, "tags", "tag");
    printf("\ncall sites live at the peak (innermost frame of the program first)\n");
    json_t *g;
    size_t i;
    json_array_foreach(json_object_get(j, "sites_at_peak"), i, g)
        printf("  %12s  %s\n", vs_jsize(g, "bytes", a, 32),
               json_string_value(json_object_get(g, "name")));
    json_t *ooms = json_object_get(j, "ooms");
    if (!json_array_size(ooms))
        printf("\nno out-of-memory in the trace\n");
    json_array_foreach(ooms, i, g)
        vs_print_oom(g);
}

int vs_trace_summary(const struct vs_trace_opts *o, struct vs_analysis *a)
{
    json_t *j = vs_summary_json(a);
    if (o->json) {
        char *text = json_dumps(j, JSON_SORT_KEYS | JSON_INDENT(1) | JSON_REAL_PRECISION(9));
        printf("%s\n", text ? text : "{}");
        free(text);
    } else {
        vs_print_summary(j);
    }
    json_decref(j);
    return 0;
}

/* --- top ---------------------------------------------------------------------------------- */

/* Walks to the moment o asks for; prints why not and returns -1 when there is no such moment. */
static int vs_top_walk(const struct vs_trace_opts *o, struct vs_analysis *a, char *what,
                       size_t len)
{
    struct vs_step s;
    vs_analysis_rewind(a);
    if (o->at == VS_AT_PEAK) {
        while (a->steps < a->peak_live_step && vs_analysis_step(a, &s))
            ;
        snprintf(what, len, "at the peak of live bytes");
    } else if (o->at == VS_AT_OOM) {
        if (o->at_oom > a->n_ooms) {
            fprintf(stderr, "vramshim trace top: %s: --at-oom %lu, but the trace has %zu "
                            "out-of-memory event%s\n", a->trace->path, o->at_oom, a->n_ooms,
                    a->n_ooms == 1 ? "" : "s");
            return -1;
        }
        size_t mark = a->ooms[o->at_oom - 1].mark;
        while (vs_analysis_step(a, &s) && s.mark != mark)
            ;
        const struct vs_tracefile_mark *m = &a->trace->marks[mark];
        char req[32];
        snprintf(what, len, "at out-of-memory %lu (line %u, %s requested)", o->at_oom, m->line,
                 vs_size_format(m->size, req, sizeof req));
    } else {
        uint64_t t, until = (uint64_t)(o->at_seconds * 1e9);
        if (until > a->duration) {
            char end[32];
            fprintf(stderr, "vramshim trace top: %s: --at %g is past the end of the trace "
                            "(%s)\n", a->trace->path, o->at_seconds,
                    vs_seconds_format(vs_seconds(a->duration), end, sizeof end));
            return -1;
        }
        while (vs_analysis_peek_t(a, &t) && t <= until && vs_analysis_step(a, &s))
            ;
        char at[32];
        snprintf(what, len, "at %s", vs_seconds_format(o->at_seconds, at, sizeof at));
    }
    return 0;
}

int vs_trace_top(const struct vs_trace_opts *o, struct vs_analysis *a)
{
    char what[128];
    if (vs_top_walk(o, a, what, sizeof what))
        return 1;
    enum vs_by by = (enum vs_by)o->by;
    size_t n = a->n_groups[by];
    uint64_t *live = malloc((n ? n : 1) * sizeof *live);
    size_t *order = NULL;
    if (live) {
        for (size_t g = 0; g < n; g++)
            live[g] = a->groups[by][g].live;
        order = vs_groups_sorted(a, by, live);
    }
    if (!order) {
        free(live);
        fprintf(stderr, "vramshim trace top: out of memory\n");
        return 1;
    }
    char l[32], h[32], site[512];
    char t[32];
    printf("%s: %s live (%s on host), last event at %s\n\n", what,
           vs_size_format(a->live, l, sizeof l), vs_size_format(a->host, h, sizeof h),
           vs_seconds_format(vs_seconds(a->now), t, sizeof t));
    printf("%12s %7s %12s  %s%s\n", "live", "share", "on host", vs_by_name(by),
           by == VS_BY_SITE ? "" : "  (a call site)");
    for (size_t i = 0; i < n && live[order[i]]; i++) {
        const struct vs_trace_group *g = &a->groups[by][order[i]];
        printf("%12s %6.1f%% %12s  %s", vs_size_format(g->live, l, sizeof l),
               100.0 * (double)g->live / (double)a->live, vs_size_format(g->host, h, sizeof h),
               g->name);
        if (by != VS_BY_SITE)
            printf("  (%s)", vs_site_label(a->trace, g->site, 3, site, sizeof site));
        printf("\n");
    }
    if (!a->live)
        printf("(nothing live)\n");
    free(order);
    free(live);
    return 0;
}
