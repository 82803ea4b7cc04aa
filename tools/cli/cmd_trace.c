/* `vramshim trace SUBCOMMAND`: reading a trace for people (what held memory when, and at each
 * out-of-memory): summary, top, timeline, export. Exit status: 0 done, 1 bad input (the trace),
 * 2 bad usage. */
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/cli/commands.h"
#include "tools/cli/trace_views.h"
#include "tools/trace/units.h"

static void vs_trace_usage(FILE *out)
{
    fprintf(out,
            "usage: vramshim trace summary TRACE [--json]\n"
            "       vramshim trace top TRACE [--at-peak | --at-oom N | --at SECONDS]\n"
            "                                [--by site|stage|tag]\n"
            "       vramshim trace timeline TRACE -o FILE.html|FILE.svg [--by stage|tag|site]\n"
            "       vramshim trace export --format perfetto TRACE -o FILE.json\n"
            "       vramshim trace import-torch SNAPSHOT.pickle -o TRACE.jsonl [--vram SIZE]\n"
            "\n"
            "Reads a vramshim trace (VRAMSHIM_TRACE, `vramshim workload`) or an RMM log:\n"
            "  summary   duration, peaks, per stage and tag totals, the call sites live at the\n"
            "            peak, and what was live at every out-of-memory (--json for scripts)\n"
            "  top       the live set at one moment (default the peak), grouped, largest first\n"
            "  timeline  memory over time as a stacked area (HTML: hover and zoom; SVG: static)\n"
            "  export    Chrome/Perfetto trace-event JSON (ui.perfetto.dev, chrome://tracing)\n"
            "  import-torch  a PyTorch memory snapshot (_dump_snapshot) as a vramshim trace,\n"
            "            its Python frames as call sites (--vram: the device size to record)\n"
            "Exit status: 0 done, 1 the trace cannot be read, 2 bad usage.\n");
}

/* Reads and analyses path; prints the reader's error and returns -1 when it cannot. */
static int vs_trace_load(const char *path, struct vs_tracefile *trace, struct vs_analysis *a)
{
    char err[1024];
    if (vs_tracefile_read(path, trace, err, sizeof err)) {
        fprintf(stderr, "vramshim trace: %s\n", err);
        return -1;
    }
    if (!trace->n_events && !trace->n_marks) {
        fprintf(stderr, "vramshim trace: %s: no events after the header (an empty trace)\n",
                path);
        vs_tracefile_free(trace);
        return -1;
    }
    if (vs_analysis_open(a, trace, err, sizeof err)) {
        fprintf(stderr, "vramshim trace: %s\n", err);
        vs_tracefile_free(trace);
        return -1;
    }
    return 0;
}

static void vs_trace_unload(struct vs_tracefile *trace, struct vs_analysis *a)
{
    vs_analysis_close(a);
    vs_tracefile_free(trace);
}

enum { VS_OPT_JSON = 1, VS_OPT_AT = 2, VS_OPT_BY = 4, VS_OPT_OUT = 8, VS_OPT_FORMAT = 16,
       VS_OPT_VRAM = 32 };

static int vs_trace_opt_fail(const char *sub, const char *what, const char *arg)
{
    fprintf(stderr, "vramshim trace %s: %s '%s' (see vramshim trace --help)\n", sub, what, arg);
    return -1;
}

static int vs_trace_parse(const char *sub, int argc, char **argv, unsigned allowed,
                          struct vs_trace_opts *o)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        char *end;
        if ((allowed & VS_OPT_JSON) && !strcmp(a, "--json")) {
            o->json = true;
        } else if ((allowed & VS_OPT_AT) && !strcmp(a, "--at-peak")) {
            o->at = VS_AT_PEAK;
        } else if ((allowed & VS_OPT_AT) && !strcmp(a, "--at-oom") && v) {
            o->at_oom = strtoul(v, &end, 10);
            if (*end || !o->at_oom || *v == '-')
                return vs_trace_opt_fail(sub, "--at-oom wants an OOM number from 1, not", v);
            o->at = VS_AT_OOM;
            i++;
        } else if ((allowed & VS_OPT_AT) && !strcmp(a, "--at") && v) {
            o->at_seconds = strtod(v, &end);
            if (*end || end == v || !(o->at_seconds >= 0))
                return vs_trace_opt_fail(sub, "--at wants seconds since the trace began, not", v);
            o->at = VS_AT_TIME;
            i++;
        } else if ((allowed & VS_OPT_BY) && !strcmp(a, "--by") && v) {
            if ((o->by = vs_by_parse(v)) < 0)
                return vs_trace_opt_fail(sub, "--by wants site, stage or tag, not", v);
            i++;
        } else if ((allowed & VS_OPT_OUT) && !strcmp(a, "-o") && v) {
            o->out = argv[++i];
        } else if ((allowed & VS_OPT_FORMAT) && !strcmp(a, "--format") && v) {
            o->format = argv[++i];
        } else if ((allowed & VS_OPT_VRAM) && !strcmp(a, "--vram") && v) {
            o->vram = argv[++i];
        } else if (a[0] == '-' && a[1]) {
            return vs_trace_opt_fail(sub, "unknown option or missing value:", a);
        } else if (!o->path) {
            o->path = a;
        } else {
            return vs_trace_opt_fail(sub, "unexpected argument", a);
        }
    }
    if (!o->path) {
        fprintf(stderr, "vramshim trace %s: which trace? (see vramshim trace --help)\n", sub);
        return -1;
    }
    if ((allowed & VS_OPT_OUT) && !o->out) {
        fprintf(stderr, "vramshim trace %s: -o FILE is required\n", sub);
        return -1;
    }
    return 0;
}

int vs_cmd_trace(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        vs_trace_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    static const struct {
        const char *name;
        unsigned allowed;
        int default_by;
        int (*run)(const struct vs_trace_opts *o, struct vs_analysis *a);
    } subs[] = {
        {"summary", VS_OPT_JSON, VS_BY_SITE, vs_trace_summary},
        {"top", VS_OPT_AT | VS_OPT_BY, VS_BY_SITE, vs_trace_top},
        {"timeline", VS_OPT_OUT | VS_OPT_BY, VS_BY_STAGE, vs_trace_timeline},
        {"export", VS_OPT_OUT | VS_OPT_FORMAT, VS_BY_STAGE, vs_trace_export},
    };
    for (int k = 2; k < argc; k++)
        if (!strcmp(argv[k], "--help") || !strcmp(argv[k], "-h")) {
            vs_trace_usage(stdout);
            return 0;
        }
    if (!strcmp(argv[1], "import-torch")) {
        struct vs_trace_opts o = {0};
        if (vs_trace_parse(argv[1], argc - 1, argv + 1, VS_OPT_OUT | VS_OPT_VRAM, &o))
            return 2;
        return vs_trace_import_torch(&o);
    }
    for (size_t i = 0; i < sizeof subs / sizeof *subs; i++) {
        if (strcmp(argv[1], subs[i].name))
            continue;
        struct vs_trace_opts o = {.by = subs[i].default_by, .at = VS_AT_PEAK};
        if (vs_trace_parse(subs[i].name, argc - 1, argv + 1, subs[i].allowed, &o))
            return 2;
        struct vs_tracefile trace;
        struct vs_analysis a;
        if (vs_trace_load(o.path, &trace, &a))
            return 1;
        int rc = subs[i].run(&o, &a);
        vs_trace_unload(&trace, &a);
        return rc;
    }
    fprintf(stderr, "vramshim trace: unknown subcommand '%s' (see vramshim trace --help)\n",
            argv[1]);
    return 2;
}
