/* Stages begun by call site: a native program whose functions a policy's match patterns name.
 * Each allocation carries the stage current when it was made and the tag its stack matched. */
#include "stages_fixture.h"

static const char policy[] = "[stage load]\n"
                             "match = stg_dit_load\n"
                             "\n"
                             "[tag vae]\n"
                             "match = stg_vae_load\n"
                             "\n"
                             "[stage decode]\n"
                             "match = stg_vae_*\n"
                             "evict = load\n";

static struct vs_run run_sites(const char *trace, const char *extra)
{
    char path[256];
    vs_write_policy(path, sizeof path, "sites", policy);
    static char env_policy[300], env_trace[300];
    snprintf(env_policy, sizeof env_policy, "VRAMSHIM_POLICY=%s", path);
    snprintf(env_trace, sizeof env_trace, "VRAMSHIM_TRACE=%s", trace);
    const char *env[] = {env_policy, env_trace, extra, NULL};
    struct vs_run r = vs_run_prog(VS_PROG("stages_sites_linked"), 1, env);
    unlink(path);
    cr_assert_eq(r.status, 0, "exit %d\n%s%s", r.status, r.out, r.raw_err);
    cr_expect_str_empty(r.err, "unexpected messages:\n%s", r.err);
    return r;
}

Test(stages_sites, allocations_begin_and_carry_the_stage_of_their_call_site)
{
    char trace[256];
    vs_trace_path(trace, sizeof trace, "stages_sites");
    struct vs_run r = run_sites(trace, NULL);

    struct vs_trace t = vs_trace_load(trace);
    char got[1024];
    vs_stage_events(&t, got, sizeof got);
    /* stg_vae_load matches "stg_vae_*" for the stage too: a tag rule never hides a stage rule. */
    cr_expect_str_eq(got, "begin:load:match end:load:match begin:decode:match");
    vs_alloc_events(&t, got, sizeof got);
    cr_expect_str_eq(got, "4194304/load/ 2097152/decode/vae 3145728/decode/ 1048576/decode/ "
                          "1048576/decode/");
    /* The stage event of a call-site stage names the allocation's site. */
    for (size_t i = 1; i < t.n; i++)
        if (!strcmp(vs_str(t.lines[i], "ev"), "stage"))
            cr_expect_gt(json_integer_value(json_object_get(t.lines[i], "site")), 0);
    vs_trace_free(&t);

    json_t *s = vs_stats_line(r.out, 0);
    cr_expect_str_eq(json_string_value(json_object_get(s, "stage")), "decode");
    cr_expect_eq(vs_usage(s, "stages", "load", "live_bytes"), 4 * MiB);
    cr_expect_eq(vs_usage(s, "stages", "decode", "live_bytes"), 7 * MiB);
    cr_expect_eq(vs_usage(s, "tags", "vae", "live_bytes"), 2 * MiB);
    json_decref(s);
    unlink(trace);
    vs_run_free(&r);
}

/* Matching does not depend on the trace's stacks: with VRAMSHIM_TRACE_STACKS=0 the stages are
 * the same and the events carry no site. */
Test(stages_sites, matching_works_without_trace_stacks)
{
    char trace[256];
    vs_trace_path(trace, sizeof trace, "stages_sites_nostacks");
    struct vs_run r = run_sites(trace, "VRAMSHIM_TRACE_STACKS=0");
    struct vs_trace t = vs_trace_load(trace);
    char got[1024];
    vs_alloc_events(&t, got, sizeof got);
    cr_expect_str_eq(got, "4194304/load/ 2097152/decode/vae 3145728/decode/ 1048576/decode/ "
                          "1048576/decode/");
    cr_expect_eq(vs_trace_count(&t, "site", NULL), 0);
    vs_trace_free(&t);
    unlink(trace);
    vs_run_free(&r);
}
