/* Long work shows progress on a terminal: `trace timeline`, `trace export` and `trace
 * import-torch` on 250000 events print a line per tenth on stderr when it is a terminal (run
 * under script(1)), and nothing when it is not. */
#include "replay_fixture.h"
#include "tests/trace_gen.h"

TestSuite(trace_progress, .fini = fx_cleanup);

#define EVENTS 250000u

/* Runs `vramshim ARGS` on a terminal (script -q) and returns everything it printed. */
static char *on_terminal(const char *args)
{
    char cmd[2048], *out = fx_path("typescript.out");
    snprintf(cmd, sizeof cmd, "script -qec '%s %s' /dev/null >%s 2>&1", FX_CLI, args, out);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
    char *text = fx_slurp(out);
    free(out);
    return text;
}

Test(trace_progress, long_work_reports_tenths_on_a_terminal_only, .timeout = 300)
{
    char *trace = fx_path("big.jsonl"), *snap = fx_path("big.pickle"), args[1024];
    cr_assert_eq(tg_write_trace(trace, EVENTS), 0);
    cr_assert_eq(tg_write_snapshot(snap, EVENTS), 0);
    static const struct {
        const char *args, *line;
    } cases[] = {
        {"trace timeline %s -o %s/t.svg", "vramshim trace timeline: drawing 100% ("},
        {"trace export --format perfetto %s -o %s/t.json", "vramshim trace export: 50% ("},
        {"trace import-torch %s -o %s/i.jsonl", "vramshim trace import-torch: 100% (250000/250000 "
                                               "events)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        snprintf(args, sizeof args, cases[i].args, i == 2 ? snap : trace, fx_tmpdir());
        char *text = on_terminal(args);
        cr_expect(strstr(text, cases[i].line), "no '%s' in:\n%s", cases[i].line, text);
        free(text);
        struct fx_run r = fx_cli("%s", args);
        cr_expect_eq(r.status, 0, "%s", r.err);
        cr_expect_str_empty(r.err, "progress without a terminal: %s", r.err);
        fx_run_free(&r);
    }
    free(trace);
    free(snap);
}
