/* `vramshim trace export --format perfetto`: Chrome trace-event JSON with a counter per stage and
 * tag, a slice per stage, instants for OOMs and moves; the counts come from the trace itself. */

#include "replay_fixture.h"

TestSuite(trace_export, .fini = fx_cleanup);

static size_t count_ph(json_t *events, const char *ph, const char *cat)
{
    size_t n = 0, i;
    json_t *e;
    json_array_foreach(events, i, e)
        n += !strcmp(json_string_value(json_object_get(e, "ph")), ph) &&
             (!cat || !strcmp(json_string_value(json_object_get(e, "cat")), cat));
    return n;
}

static bool has_counter(json_t *events, const char *name)
{
    size_t i;
    json_t *e;
    json_array_foreach(events, i, e)
        if (!strcmp(json_string_value(json_object_get(e, "ph")), "C") &&
            !strcmp(json_string_value(json_object_get(e, "name")), name))
            return true;
    return false;
}

static void check_export(const char *trace)
{
    char *out = fx_path("p.json");
    struct fx_run r = fx_cli("trace export --format perfetto %s -o %s", trace, out);
    cr_assert_eq(r.status, 0, "%s", r.err);
    fx_run_free(&r);
    json_error_t err;
    json_t *doc = json_load_file(out, 0, &err), *events = json_object_get(doc, "traceEvents");
    cr_assert(json_is_array(events), "not trace-event JSON: %s", err.text);
    json_t *sum = fx_cli_json(0, "trace summary %s --json", trace);
    char *text = fx_slurp(trace);
    size_t begins = 0; /* stage lines that do not end a stage */
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n"))
        begins += strstr(line, "\"ev\":\"stage\"") && !strstr(line, "\"action\":\"end\"");
    free(text);
    cr_expect_eq(count_ph(events, "X", "stage"), begins, "one slice per stage run");
    cr_expect_eq(count_ph(events, "i", "oom"), json_array_size(json_object_get(sum, "ooms")));
    cr_expect_eq(count_ph(events, "i", "move"),
                 (size_t)(json_integer_value(json_object_get(sum, "demotions")) +
                          json_integer_value(json_object_get(sum, "promotions"))));
    size_t i;
    json_t *g;
    json_array_foreach(json_object_get(sum, "stages"), i, g) {
        char name[256];
        snprintf(name, sizeof name, "stage %s", json_string_value(json_object_get(g, "name")));
        cr_expect(has_counter(events, name), "no counter %s", name);
    }
    json_array_foreach(json_object_get(sum, "tags"), i, g) {
        char name[256];
        snprintf(name, sizeof name, "tag %s", json_string_value(json_object_get(g, "name")));
        cr_expect(has_counter(events, name), "no counter %s", name);
    }
    cr_expect(has_counter(events, "live bytes"));
    json_decref(sum);
    json_decref(doc);
    free(out);
}

Test(trace_export, demo_traces_export_stages_counters_ooms_and_moves)
{
    fx_demo_wan();
    char trace[512];
    snprintf(trace, sizeof trace, "%s/demo/wan21-t2v-1.3b.vramshim.jsonl", fx_tmpdir());
    check_export(trace);
    snprintf(trace, sizeof trace, "%s/demo/wan21-t2v-1.3b.passthrough.jsonl", fx_tmpdir());
    check_export(trace);
    check_export(FX_WORKLOADS "/dit-denoise-small.jsonl");
}

Test(trace_export, only_perfetto)
{
    struct fx_run r = fx_cli("trace export --format pprof %s/dit-denoise-small.jsonl -o x.json",
                             FX_WORKLOADS);
    cr_expect_eq(r.status, 2);
    cr_expect(strstr(r.err, "--format pprof: the one format is perfetto"), "%s", r.err);
    fx_run_free(&r);
}
