/* `vramshim trace timeline` (SVG or HTML by the output's extension) and `vramshim trace export
 * --format perfetto`. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "tools/cli/trace_views.h"
#include "tools/trace/perfetto.h"
#include "tools/trace/timeline.h"

static bool vs_ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcasecmp(s + n - k, suffix);
}

/* Opens o->out for writing; prints why not. */
static FILE *vs_trace_open_out(const char *sub, const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f)
        fprintf(stderr, "vramshim trace %s: %s: %s\n", sub, path, strerror(errno));
    return f;
}

/* Closes f, removing the half-written file on failure. Returns the exit status. */
static int vs_trace_close_out(const char *sub, const char *path, FILE *f, int rc)
{
    if (fclose(f) || rc) {
        fprintf(stderr, "vramshim trace %s: %s: could not write the file%s\n", sub, path,
                rc ? " (out of memory)" : "");
        unlink(path);
        return 1;
    }
    return 0;
}

int vs_trace_timeline(const struct vs_trace_opts *o, struct vs_analysis *a)
{
    bool html = vs_ends_with(o->out, ".html") || vs_ends_with(o->out, ".htm");
    if (!html && !vs_ends_with(o->out, ".svg")) {
        fprintf(stderr, "vramshim trace timeline: -o %s: the name must end in .html or .svg\n",
                o->out);
        return 2;
    }
    struct vs_timeline tl;
    if (vs_timeline_build(&tl, a, (enum vs_by)o->by, true)) {
        fprintf(stderr, "vramshim trace timeline: out of memory\n");
        return 1;
    }
    FILE *f = vs_trace_open_out("timeline", o->out);
    int rc = 1;
    if (f)
        rc = vs_trace_close_out("timeline", o->out, f,
                                html ? vs_timeline_write_html(&tl, f)
                                     : vs_timeline_write_svg(&tl, f));
    if (!rc)
        printf("%s: %zu series by %s, %zu samples, written to %s\n", a->trace->path, tl.n_series,
               vs_by_name(tl.by), tl.n, o->out);
    vs_timeline_free(&tl);
    return rc;
}

int vs_trace_export(const struct vs_trace_opts *o, struct vs_analysis *a)
{
    if (!o->format || strcmp(o->format, "perfetto")) {
        fprintf(stderr, "vramshim trace export: --format %s: the one format is perfetto\n",
                o->format ? o->format : "(none given)");
        return 2;
    }
    FILE *f = vs_trace_open_out("export", o->out);
    if (!f)
        return 1;
    int rc = vs_trace_close_out("export", o->out, f,
                                vs_perfetto_write(a, f, true));
    if (!rc)
        printf("%s: %zu events exported to %s (open it in ui.perfetto.dev or chrome://tracing)\n",
               a->trace->path, a->trace->n_events + a->trace->n_marks, o->out);
    return rc;
}
