/* Stage changes from 4 threads while 8 threads allocate and free: no crash, every begin ends,
 * and the stats stay consistent (per-stage live bytes add up to the total). */
#include "stages_fixture.h"

Test(stages_threads, concurrent_stage_changes_while_eight_threads_allocate, .timeout = 60)
{
    char trace[256];
    vs_trace_path(trace, sizeof trace, "stages_threads");
    char env_trace[300];
    snprintf(env_trace, sizeof env_trace, "VRAMSHIM_TRACE=%s", trace);
    const char *env[] = {env_trace, "VRAMSHIM_LOG=error", NULL};
    struct vs_run r = vs_run_prog(VS_PROG("stages_threads_linked"), 1, env);
    cr_assert_eq(r.status, 0, "exit %d\n%s%s", r.status, r.out, r.raw_err);
    cr_expect_str_empty(r.err, "unexpected messages:\n%s", r.err);

    long begins = -1, ends = -1, bad = -1, live = -1;
    cr_assert(strstr(r.out, "begins "), "%s", r.out);
    sscanf(strstr(r.out, "begins "), "begins %ld\nends %ld\nbad %ld\nlive %ld", &begins, &ends,
           &bad, &live);
    cr_expect_eq(bad, 0, "unexpected return codes");
    cr_expect_gt(begins, 0, "no stage was begun");
    cr_expect_eq(begins, ends);

    json_t *s = vs_stats_line(r.out, 0);
    cr_expect(json_is_null(json_object_get(s, "stage")));
    cr_expect_eq(json_array_size(json_object_get(s, "stack")), 0);
    cr_expect_eq(json_integer_value(json_object_get(s, "live_bytes")), live);
    long long sum = 0;
    const char *name;
    json_t *u;
    json_object_foreach(json_object_get(s, "stages"), name, u)
        sum += json_integer_value(json_object_get(u, "live_bytes"));
    cr_expect_eq(sum, live, "stages add up to %lld bytes, live is %ld", sum, live);
    json_decref(s);

    struct vs_trace t = vs_trace_load(trace);
    long tb = 0, te = 0;
    for (size_t i = 1; i < t.n; i++) {
        if (strcmp(vs_str(t.lines[i], "ev"), "stage") != 0)
            continue;
        tb += !strcmp(vs_str(t.lines[i], "action"), "begin");
        te += !strcmp(vs_str(t.lines[i], "action"), "end");
    }
    cr_expect_eq(tb, begins);
    cr_expect_eq(te, ends);
    vs_trace_free(&t);
    unlink(trace);
    vs_run_free(&r);
}
